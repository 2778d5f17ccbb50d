//! `orchardmap import`: survey files through the importer pipeline into the
//! store, with a progress bar on a terminal and a summary at the end; and
//! the bundled sample for `serve --demo`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use importer::pipeline::{self, ImportOptions, Input, Progress, Report, RowStatus};
use store::{ImportBatch, Storage};

/// The bundled sample, compiled in so `serve --demo` works from any directory.
const SAMPLE_ORCHARDS: &[u8] = include_bytes!("../data/orchards.geojson");
const SAMPLE_TREES: &[u8] = include_bytes!("../data/trees.csv");

/// What `orchardmap import` was asked to do.
#[derive(Debug)]
pub struct ImportJob {
    /// The survey or orchards file.
    pub file: PathBuf,
    /// Database location.
    pub db: String,
    /// Options as `name=value` pairs, in the order given (see [`pipeline::OPTION_NAMES`]).
    pub options: Vec<(&'static str, String)>,
    /// `--format orchards`: an orchards GeoJSON (boundaries), not trees.
    pub orchards: bool,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// Where to write rejected rows (default: beside the input).
    pub rejects: Option<PathBuf>,
}

/// What an import did, for the exit code.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Trees inserted or updated (or that would be, in a dry run).
    pub imported: u64,
    /// Rows not imported.
    pub rejected: u64,
    /// Orchards created or updated.
    pub orchards: usize,
}

/// True when a GeoJSON file holds orchard boundaries rather than tree
/// points: the first geometry type in its first megabyte is a polygon.
fn looks_like_orchards(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if !matches!(ext.as_str(), "geojson" | "json") {
        return Ok(false);
    }
    let mut head = Vec::with_capacity(1 << 20);
    std::fs::File::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .take(1 << 20)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&head);
    let first = |needle: &str| text.find(needle).unwrap_or(usize::MAX);
    let polygon = first("\"Polygon\"").min(first("\"MultiPolygon\""));
    Ok(polygon < first("\"Point\""))
}

async fn import_orchards(store: &dyn Storage, bytes: &[u8], file_name: &str, dry_run: bool) -> anyhow::Result<Outcome> {
    let parsed = importer::parse_orchards_geojson(bytes, file_name)?;
    for warning in &parsed.warnings {
        eprintln!("warning: {warning}");
    }
    let count = parsed.orchards.len();
    if !dry_run {
        store
            .import(ImportBatch { survey: None, orchards: parsed.orchards, trees: vec![] })
            .await
            .with_context(|| format!("{file_name}: nothing was imported"))?;
    }
    Ok(Outcome { orchards: count, ..Outcome::default() })
}

fn progress_bar(size: Option<u64>) -> Arc<dyn Fn(Progress) + Send + Sync> {
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return Arc::new(|_| {});
    }
    let bar = match size {
        Some(len) => indicatif::ProgressBar::new(len).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        None => indicatif::ProgressBar::new_spinner(),
    };
    Arc::new(move |p: Progress| {
        bar.set_position(p.bytes);
        bar.set_message(format!("{} rows", p.rows));
    })
}

/// `orchardmap import FILE ...`: prints the summary to stdout and returns
/// the outcome for the exit code.
pub async fn import_file(job: ImportJob) -> anyhow::Result<Outcome> {
    let store = store::open(&job.db).await?;
    let dry_run = job.options.iter().any(|(n, v)| *n == "dry_run" && v == "true");
    if job.orchards || looks_like_orchards(&job.file)? {
        let bytes = std::fs::read(&job.file).with_context(|| format!("cannot read {}", job.file.display()))?;
        let name = job.file.display().to_string();
        let outcome = import_orchards(store.as_ref(), &bytes, &name, dry_run).await?;
        println!(
            "{name}: {} orchards {}",
            outcome.orchards,
            if dry_run { "checked (dry run: nothing written)" } else { "imported" }
        );
        return Ok(outcome);
    }

    let mut opts = ImportOptions::default();
    for (name, value) in &job.options {
        if let Err(e) = opts.set(name, value) {
            bail!("--{}: {e}", name.replace('_', "-"));
        }
    }
    let input = Input::from_path(&job.file)?;
    let progress = progress_bar(input.size());
    let rejects = job.rejects.clone().unwrap_or_else(|| pipeline::default_reject_path(&job.file));
    let report = pipeline::import(store, input, opts, Some(&rejects), progress).await?;
    print_report(&report, dry_run);
    if let Some(path) = &job.report {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write the report to {}", path.display()))?;
        println!("  report written to {}", path.display());
    }
    Ok(Outcome { imported: report.inserted + report.updated, rejected: report.rejected, orchards: 0 })
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
fn print_report(report: &Report, dry_run: bool) {
    use std::fmt::Write as _;
    let mut out = String::new();
    if dry_run {
        let _ = writeln!(out, "mapping:");
        for line in &report.mapping {
            let _ = writeln!(out, "  {line}");
        }
        if !report.preview.is_empty() {
            let _ = writeln!(out, "preview:");
            for row in &report.preview {
                let at = |v: Option<f64>| v.map(|v| format!("{v:.7}")).unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "  {:<12} {:<28} {} {} {} {} {} {}",
                    row.at,
                    row.action,
                    at(row.lat),
                    at(row.lon),
                    row.orchard.as_deref().unwrap_or("-"),
                    row.cultivar.as_deref().unwrap_or("-"),
                    row.planted_year.map(|y| y.to_string()).unwrap_or_else(|| "-".into()),
                    row.health.as_deref().unwrap_or("-"),
                );
            }
        }
    }
    // Row by row first (a screenful), then the summary.
    const SHOWN: usize = 50;
    for p in report.problems.iter().take(SHOWN) {
        let status = match p.status {
            RowStatus::Rejected => "",
            RowStatus::Warning => "warning: ",
            RowStatus::Duplicate => "duplicate: ",
        };
        let value = if p.value.is_empty() { String::new() } else { format!(" {}", p.value) };
        let _ = writeln!(out, "{} {}: {status}{}{value}: {}", report.file, p.at, p.field, p.reason);
    }
    if report.problems.len() > SHOWN {
        let _ = writeln!(out, "  ... {} more in the report (--report FILE)", report.problems.len() - SHOWN);
    }
    out.push_str(&report.summary());
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
}

/// Imports the bundled sample (orchards, then trees) for `serve --demo`.
pub async fn import_sample(store: Arc<dyn Storage>) -> anyhow::Result<Outcome> {
    let orchards = import_orchards(store.as_ref(), SAMPLE_ORCHARDS, "data/orchards.geojson", false).await?;
    // The sample is known to hold distinct trees, a few of them under 2 m apart (GPS noise).
    let opts = ImportOptions { surveyor: "orchardmap sample".into(), allow_near: true, ..ImportOptions::default() };
    let input = Input::from_bytes("data/trees.csv", SAMPLE_TREES.to_vec());
    let report = pipeline::import(store, input, opts, None, Arc::new(|_| {})).await?;
    if report.rejected > 0 || report.duplicates > 0 {
        bail!(
            "the bundled sample has {} rejected and {} duplicate rows: {}",
            report.rejected,
            report.duplicates,
            report.summary()
        );
    }
    Ok(Outcome { imported: report.inserted, rejected: 0, orchards: orchards.orchards })
}
