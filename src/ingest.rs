//! From survey files to the store: runs the importer, prints its report, and
//! writes the accepted rows as one `ImportBatch` (one transaction).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::{Datelike, Utc};
use geo_core::OrchardId;
use importer::{FileKind, RowProblem, Severity};
use store::{ImportBatch, Storage};

/// The bundled sample, compiled in so `serve --demo` works from any directory.
const SAMPLE_ORCHARDS: &[u8] = include_bytes!("../data/orchards.geojson");
const SAMPLE_TREES: &[u8] = include_bytes!("../data/trees.csv");

/// What an import did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Trees written (or that would be, in a dry run).
    pub imported: usize,
    /// Rows not imported.
    pub rejected: usize,
    /// Rows imported with a warning.
    pub warnings: usize,
    /// Orchards created or updated.
    pub orchards: usize,
}

fn kind_of(path: &Path) -> anyhow::Result<FileKind> {
    let name = path.to_string_lossy();
    match FileKind::from_file_name(&name) {
        Some(kind) => Ok(kind),
        None => bail!("{name}: unknown file type; expected a trees .csv or an orchards .geojson"),
    }
}

/// Marks rows naming an orchard that is neither stored nor being imported as
/// rejected, so the report names the line instead of failing the whole file.
fn reject_unknown_orchards(parsed: &mut importer::CsvImport, known: &BTreeSet<OrchardId>) {
    let file = parsed.file_name.clone();
    let mut kept = Vec::with_capacity(parsed.rows.len());
    for row in std::mem::take(&mut parsed.rows) {
        if known.contains(&row.tree.orchard_id) {
            kept.push(row);
        } else {
            parsed.problems.push(RowProblem {
                file: file.clone(),
                line: row.line,
                field: "orchard".into(),
                value: row.tree.orchard_id.to_string(),
                reason: "is not a known orchard (import its boundary GeoJSON first)".into(),
                severity: Severity::Rejected,
            });
        }
    }
    parsed.rows = kept;
    parsed.problems.sort_by_key(|p| p.line);
}

async fn import_trees_csv(
    store: &dyn Storage,
    bytes: &[u8],
    file_name: &str,
    surveyor: &str,
    dry_run: bool,
    quiet: bool,
) -> anyhow::Result<Outcome> {
    let now = Utc::now();
    let mut parsed = importer::parse_trees_csv(bytes, file_name, now.year())?;
    let known: BTreeSet<OrchardId> = store.orchards().await?.into_iter().map(|o| o.id).collect();
    reject_unknown_orchards(&mut parsed, &known);
    if !quiet {
        for problem in &parsed.problems {
            println!("{problem}");
        }
    }
    let rejected_rows: BTreeSet<u64> = parsed.rejected().map(|p| p.line).collect();
    let warned_rows: BTreeSet<u64> = parsed.warnings().map(|p| p.line).collect();
    let mut outcome = Outcome {
        imported: parsed.rows.len(),
        rejected: rejected_rows.len(),
        warnings: warned_rows.difference(&rejected_rows).count(),
        orchards: 0,
    };
    if !dry_run && !parsed.rows.is_empty() {
        let survey = parsed.survey(surveyor, now);
        let written = store
            .import(ImportBatch { survey: Some(survey), orchards: vec![], trees: parsed.into_trees() })
            .await
            .with_context(|| format!("{file_name}: nothing was imported"))?;
        outcome.imported = written.trees.len();
    }
    if !quiet {
        println!(
            "{file_name}: {} trees {}, {} rows rejected, {} rows with warnings",
            outcome.imported,
            if dry_run { "would be imported (dry run)" } else { "imported" },
            outcome.rejected,
            outcome.warnings
        );
    }
    Ok(outcome)
}

async fn import_orchards(
    store: &dyn Storage,
    bytes: &[u8],
    file_name: &str,
    dry_run: bool,
    quiet: bool,
) -> anyhow::Result<Outcome> {
    let parsed = importer::parse_orchards_geojson(bytes, file_name)?;
    if !quiet {
        for warning in &parsed.warnings {
            println!("warning: {warning}");
        }
    }
    let count = parsed.orchards.len();
    if !dry_run {
        store
            .import(ImportBatch { survey: None, orchards: parsed.orchards, trees: vec![] })
            .await
            .with_context(|| format!("{file_name}: nothing was imported"))?;
    }
    if !quiet {
        println!("{file_name}: {count} orchards {}", if dry_run { "checked (dry run)" } else { "imported" });
    }
    Ok(Outcome { orchards: count, ..Outcome::default() })
}

/// `orchardmap import FILE`.
pub async fn import_file(path: &Path, db: &str, surveyor: &str, dry_run: bool) -> anyhow::Result<Outcome> {
    let kind = kind_of(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file_name =
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let store = store::open(db).await?;
    match kind {
        FileKind::TreesCsv => import_trees_csv(store.as_ref(), &bytes, &file_name, surveyor, dry_run, false).await,
        FileKind::OrchardsGeoJson => import_orchards(store.as_ref(), &bytes, &file_name, dry_run, false).await,
        _ => bail!("{file_name}: this file type cannot be imported yet"),
    }
}

/// Imports the bundled sample (orchards, then trees) for `serve --demo`.
pub async fn import_sample(store: &dyn Storage) -> anyhow::Result<Outcome> {
    let orchards = import_orchards(store, SAMPLE_ORCHARDS, "data/orchards.geojson", false, true).await?;
    let trees = import_trees_csv(store, SAMPLE_TREES, "data/trees.csv", "orchardmap sample", false, true).await?;
    if trees.rejected > 0 {
        bail!("the bundled sample has {} rejected rows", trees.rejected);
    }
    Ok(Outcome { orchards: orchards.orchards, ..trees })
}
