//! `orchardmap export`: trees from the database to a GeoJSON, CSV, KML or
//! GeoPackage file, streamed page by page (never every tree in memory).
//!
//! The database is read in pages of [`PAGE`] trees by id
//! ([`store::Storage::trees_after`]) while a blocking thread filters them
//! (bounding box and attribute filter) and feeds the importer's export
//! writers. The file is written beside its final name (`FILE.partial`) and
//! renamed when complete, so a failed export never leaves half a file under
//! the name asked for.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use geo_core::{BBox, Cultivar, Health, Orchard, OrchardId, Tree, TreeFilter, TreeId};
use importer::export::{ExportError, ExportFormat, ExportOptions, ExportRow, GpkgWriter, TextExportWriter};

/// Trees read from the database per query.
pub const PAGE: u32 = 5000;

/// What `orchardmap export` was asked for.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    orchardmap export --out trees.gpkg\n  \
    orchardmap export --format geojson --out - --province \"Đắk Lắk\" --health poor,dead\n  \
    orchardmap export --out ri6.csv --cultivar Ri6 --bbox 108.0,12.6,108.2,12.8\n  \
    orchardmap export --out owners.kml --orchard DL-CK-EATIEU-001 --include-private")]
pub struct ExportArgs {
    /// SQLite file path or postgres:// URL.
    #[arg(long, env = "DATABASE_URL", default_value = "orchardmap.db")]
    pub db: String,
    /// geojson, csv, kml or gpkg [default: from the extension of --out].
    #[arg(long, value_parser = parse_format)]
    pub format: Option<ExportFormat>,
    /// The file to write; `-` writes to stdout (geojson, csv and kml only).
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    pub out: String,
    /// Only trees inside this box (WGS 84 degrees).
    #[arg(long, value_name = "MINLON,MINLAT,MAXLON,MAXLAT", value_parser = parse_bbox, allow_hyphen_values = true)]
    pub bbox: Option<BBox>,
    /// Only these cultivars (repeatable or comma-separated; names are normalised: `ri 6` = Ri6).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub cultivar: Vec<String>,
    /// Only these health states: good, fair, poor, dead (repeatable or comma-separated).
    #[arg(long, value_name = "STATE", value_delimiter = ',', value_parser = parse_health)]
    pub health: Vec<Health>,
    /// Only trees planted in or after this year.
    #[arg(long, value_name = "YEAR")]
    pub planted_from: Option<i32>,
    /// Only trees planted in or before this year.
    #[arg(long, value_name = "YEAR")]
    pub planted_to: Option<i32>,
    /// Only trees of these orchards (ids; repeatable or comma-separated).
    #[arg(long, value_name = "ID", value_delimiter = ',', value_parser = parse_orchard)]
    pub orchard: Vec<OrchardId>,
    /// Only trees of orchards with this planting-area code (mã số vùng trồng).
    #[arg(long, value_name = "CODE")]
    pub planting_area_code: Option<String>,
    /// Only trees of orchards in this commune (case and diacritics ignored).
    #[arg(long, value_name = "NAME")]
    pub commune: Option<String>,
    /// Only trees of orchards in this district.
    #[arg(long, value_name = "NAME")]
    pub district: Option<String>,
    /// Only trees of orchards in this province.
    #[arg(long, value_name = "NAME")]
    pub province: Option<String>,
    /// Only trees changed at or after this time (RFC 3339, e.g. 2025-03-01T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub updated_since: Option<DateTime<Utc>>,
    /// Only trees whose tag code or orchard name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub q: Option<String>,
    /// Include private fields (the orchard owner's name). Off by default.
    #[arg(long)]
    pub include_private: bool,
}

fn parse_format(s: &str) -> Result<ExportFormat, String> {
    s.parse().map_err(|e: ExportError| e.to_string())
}

fn parse_bbox(s: &str) -> Result<BBox, String> {
    s.parse().map_err(|e: geo_core::Error| e.to_string())
}

fn parse_health(s: &str) -> Result<Health, String> {
    s.parse().map_err(|e: geo_core::Error| e.to_string())
}

fn parse_orchard(s: &str) -> Result<OrchardId, String> {
    OrchardId::new(s.trim()).map_err(|e| e.to_string())
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2025-03-01T00:00:00Z ({e})"))
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

impl ExportArgs {
    /// The attribute filter the options ask for.
    pub fn filter(&self) -> anyhow::Result<TreeFilter> {
        match (self.planted_from, self.planted_to) {
            (Some(from), Some(to)) if from > to => bail!("--planted-from {from} is after --planted-to {to}"),
            _ => {}
        }
        Ok(TreeFilter {
            cultivars: self.cultivar.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).map(Cultivar::new).collect(),
            health: self.health.clone(),
            planted_from: self.planted_from,
            planted_to: self.planted_to,
            orchards: self.orchard.clone(),
            planting_area_code: text(&self.planting_area_code),
            commune: text(&self.commune),
            district: text(&self.district),
            province: text(&self.province),
            updated_since: self.updated_since,
            text: text(&self.q),
        })
    }

    /// The format: `--format`, else the extension of `--out`.
    pub fn format(&self) -> anyhow::Result<ExportFormat> {
        if let Some(format) = self.format {
            return Ok(format);
        }
        match ExportFormat::from_file_name(&self.out) {
            Some(format) if self.out != "-" => Ok(format),
            _ => bail!("--format: give geojson, csv, kml or gpkg (it cannot be told from --out {:?})", self.out),
        }
    }
}

/// What the writer thread is given and gives back.
struct Job {
    format: ExportFormat,
    options: ExportOptions,
    /// `None`: stdout.
    path: Option<PathBuf>,
    /// The name in messages.
    name: String,
    bbox: Option<BBox>,
    filter: TreeFilter,
    orchards: HashMap<OrchardId, Orchard>,
}

/// Trees read and trees written.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    read: u64,
    written: u64,
    /// stdout was closed by the reader (`| head`): stopped early, quietly.
    closed: bool,
}

/// Writes every page received to the output; returns the counts.
fn write_pages(job: Job, mut pages: tokio::sync::mpsc::Receiver<Vec<Tree>>) -> anyhow::Result<Counts> {
    let Job { format, options, path, name, bbox, filter, orchards } = job;
    let mut counts = Counts::default();
    let wanted = |tree: &'_ Tree| -> bool {
        bbox.is_none_or(|b| b.contains(tree.location)) && filter.matches(tree, orchards.get(&tree.orchard_id))
    };
    if !format.is_text() {
        let path = path.context("a GeoPackage needs a file: give --out FILE")?;
        let mut writer = GpkgWriter::create(&path, options)?;
        while let Some(page) = pages.blocking_recv() {
            counts.read += page.len() as u64;
            for tree in page.iter().filter(|t| wanted(t)) {
                writer.write(&ExportRow::new(tree, orchards.get(&tree.orchard_id)))?;
            }
        }
        counts.written = writer.finish()?;
        return Ok(counts);
    }
    let out: Box<dyn Write + Send> = match &path {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    let mut writer = TextExportWriter::new(format, out, options, name)?;
    let mut feed = || -> Result<(), ExportError> {
        writer.begin()?;
        while let Some(page) = pages.blocking_recv() {
            counts.read += page.len() as u64;
            for tree in page.iter().filter(|t| wanted(t)) {
                writer.write(&ExportRow::new(tree, orchards.get(&tree.orchard_id)))?;
            }
        }
        Ok(())
    };
    let fed = feed();
    counts.written = writer.count();
    let result = fed.and_then(|()| writer.finish().map(drop));
    match result {
        Ok(()) => Ok(counts),
        // `orchardmap export --out - | head`: the reader had enough.
        Err(ExportError::Io { source, .. }) if path.is_none() && source.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(Counts { closed: true, ..counts })
        }
        Err(e) => Err(e.into()),
    }
}

/// `FILE.partial`, beside `FILE`.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

/// `orchardmap export`: writes the trees the options select to `--out` and
/// reports the count on stderr.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let format = args.format()?;
    let filter = args.filter()?;
    let to_stdout = args.out == "-";
    if to_stdout && !format.is_text() {
        bail!("--out -: a GeoPackage is a SQLite file and cannot go to stdout; give a file name");
    }
    let options = ExportOptions { include_private: args.include_private };
    let store = store::open(&args.db).await.with_context(|| format!("cannot open database {}", args.db))?;
    let orchards: HashMap<OrchardId, Orchard> = store
        .orchards()
        .await
        .with_context(|| format!("cannot read the orchards from {}", args.db))?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();

    let out = PathBuf::from(&args.out);
    let partial = (!to_stdout).then(|| partial_path(&out));
    let name = if to_stdout { "stdout".to_string() } else { out.display().to_string() };
    let job = Job { format, options, path: partial.clone(), name: name.clone(), bbox: args.bbox, filter, orchards };
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Tree>>(2);
    let writer = tokio::task::spawn_blocking(move || write_pages(job, rx));

    // Read page after page while the writer thread writes the previous one.
    let mut after = TreeId(i64::MIN);
    let read: anyhow::Result<()> = async {
        loop {
            let page =
                store.trees_after(after, PAGE).await.with_context(|| format!("cannot read trees from {}", args.db))?;
            let Some(last) = page.last().map(|t| t.id) else { return Ok(()) };
            if last <= after {
                bail!("the database returned tree {last} after tree {after}: pages must go up by id");
            }
            after = last;
            if tx.send(page).await.is_err() {
                return Ok(()); // The writer stopped; its result says why.
            }
        }
    }
    .await;
    drop(tx);
    let written = match writer.await {
        Ok(result) => result,
        Err(e) => Err(anyhow::anyhow!("the export thread failed: {e}")),
    };
    let outcome = read.and(written);
    let counts = match outcome {
        Ok(counts) => counts,
        Err(e) => {
            if let Some(partial) = &partial {
                let _ = std::fs::remove_file(partial);
            }
            return Err(match partial {
                Some(_) => e.context(format!("nothing written to {name}")),
                None => e.context("export to stdout stopped"),
            });
        }
    };
    if let Some(partial) = &partial {
        std::fs::rename(partial, &out)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    }
    if counts.closed {
        return Ok(());
    }
    let private = if options.include_private { ", private fields included" } else { "" };
    eprintln!("wrote {} of {} trees to {name} ({format}{private})", counts.written, counts.read);
    Ok(())
}
