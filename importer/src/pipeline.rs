//! The import pipeline: a survey file in, trees in the store, a report out.
//!
//! Two threads share the work so parsing and writing overlap: a blocking
//! thread streams the file through a [`SurveySource`], places each row in an
//! orchard, de-duplicates it against the stored trees and the rows before it
//! and writes rejected rows to the reject file; the async side feeds the
//! accepted rows in batches to one [`ImportWriter`] (one transaction) and
//! commits only when the whole file has been read. Any fatal error, or a
//! dry run, drops the writer instead: the database is left as it was.
//!
//! Every row read ends in exactly one of four states: inserted, updated,
//! duplicate or rejected ([`Report::read`] is their sum).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use geo_core::{
    LonLat, NewTree, Orchard, OrchardId, OrchardLocator, PointGrid, Survey, SurveyId, TreeCode, TreeId, TreeRef,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use store::{ImportMeta, ImportWriter, Storage};

use crate::problem::{RowProblem, Severity};
use crate::survey::{Format, Record, RecordAt, RejectWriter, SourceOptions, SurveySource};
use crate::{Error, Result};

/// Most problems listed in a [`Report`]; the counts by reason always cover
/// every row, and the reject file holds every rejected row.
pub const MAX_LISTED_PROBLEMS: usize = 100_000;

/// Rows handed to the store at a time.
const BATCH_ROWS: usize = 8_192;

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Format, coordinate system, column mapping and validation rules.
    pub source: SourceOptions,
    /// Who made the survey (recorded with it).
    pub surveyor: String,
    /// The device, when known.
    pub device: Option<String>,
    /// Do everything, report it, then roll back: nothing is written.
    pub dry_run: bool,
    /// Insert rows closer than `same_tree_radius_m` to another tree instead of
    /// reporting them as duplicates.
    pub allow_near: bool,
    /// A new row this close (metres) to a tree is a probable duplicate of it.
    pub same_tree_radius_m: f64,
    /// A new row this close (metres) to a tree gets a "nearby tree" warning.
    pub nearby_radius_m: f64,
    /// Rows listed in a dry run's preview.
    pub preview_rows: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            source: SourceOptions::default(),
            surveyor: "unknown".into(),
            device: None,
            dry_run: false,
            allow_near: false,
            same_tree_radius_m: 2.0,
            nearby_radius_m: 4.0,
            preview_rows: 10,
        }
    }
}

/// The option names [`ImportOptions::set`] understands (the CLI flags and
/// the `POST /api/imports` form fields use the same names).
pub const OPTION_NAMES: &[&str] = &[
    "format",
    "crs",
    "swap_xy",
    "map",
    "region",
    "accuracy_warn_m",
    "accuracy_reject_m",
    "same_tree_radius_m",
    "nearby_radius_m",
    "allow_near",
    "dry_run",
    "surveyor",
    "device",
    "orchard",
];

fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_metres(name: &str, value: &str, max: f64) -> std::result::Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=max).contains(&v) => Ok(v),
        _ => Err(format!("{name} {value:?}: expected a number of metres within 0..{max}")),
    }
}

impl ImportOptions {
    /// Sets one option from text, as given on the command line or in a form
    /// field; the error names the option and the value. `map` takes
    /// `field=column` and may be given several times.
    pub fn set(&mut self, name: &str, value: &str) -> std::result::Result<(), String> {
        let flag = |v: &str| parse_flag(v).ok_or_else(|| format!("{name} {v:?}: expected true or false"));
        match name {
            "format" => {
                self.source.format = Some(value.parse::<Format>().map_err(|e| format!("format {value:?}: {e}"))?)
            }
            "crs" => {
                let crs = crate::Reprojector::parse(value).map_err(|e| format!("crs {value:?}: {e}"))?;
                self.source.crs = Some(crs);
            }
            "swap_xy" => self.source.swap_xy = flag(value)?,
            "map" => {
                let (field, column) = value
                    .split_once('=')
                    .ok_or_else(|| format!("map {value:?}: expected field=column, e.g. lat=Vĩ độ"))?;
                self.source.mapping.push((field.trim().to_owned(), column.trim().to_owned()));
            }
            "region" => {
                let bbox: geo_core::BBox = value
                    .parse()
                    .map_err(|e| format!("region {value:?}: {e} (expected minLon,minLat,maxLon,maxLat)"))?;
                self.source.rules.region = geo_core::Region { name: "the configured region", bbox };
            }
            "accuracy_warn_m" => self.source.rules.accuracy_warn_m = parse_metres(name, value, 10_000.0)?,
            "accuracy_reject_m" => self.source.rules.accuracy_reject_m = parse_metres(name, value, 10_000.0)?,
            "same_tree_radius_m" => self.same_tree_radius_m = parse_metres(name, value, 100.0)?,
            "nearby_radius_m" => self.nearby_radius_m = parse_metres(name, value, 100.0)?,
            "allow_near" => self.allow_near = flag(value)?,
            "dry_run" => self.dry_run = flag(value)?,
            "surveyor" => self.surveyor = value.trim().to_owned(),
            "device" => self.device = Some(value.trim().to_owned()).filter(|d| !d.is_empty()),
            "orchard" => {
                let id = OrchardId::new(value.trim()).map_err(|e| format!("orchard {value:?}: {e}"))?;
                self.source.default_orchard = Some(id);
            }
            other => return Err(format!("unknown option {other:?}; known: {}", OPTION_NAMES.join(", "))),
        }
        Ok(())
    }

    /// Checks that the options agree with each other (after every `set`).
    pub fn check(&self) -> std::result::Result<(), String> {
        let rules = &self.source.rules;
        if rules.accuracy_reject_m < rules.accuracy_warn_m {
            return Err(format!(
                "accuracy_reject_m {} is below accuracy_warn_m {}",
                rules.accuracy_reject_m, rules.accuracy_warn_m
            ));
        }
        if self.nearby_radius_m < self.same_tree_radius_m {
            return Err(format!(
                "nearby_radius_m {} is below same_tree_radius_m {}",
                self.nearby_radius_m, self.same_tree_radius_m
            ));
        }
        Ok(())
    }
}

/// A file to import: its name for messages, its bytes as a stream, and the
/// SHA-256 of its content (the identity that makes a second import a no-op).
pub struct Input {
    name: String,
    extension: Option<String>,
    sha256: String,
    size: Option<u64>,
    reader: Box<dyn BufRead + Send>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("size", &self.size)
            .finish()
    }
}

fn extension_of(name: &str) -> Option<String> {
    Path::new(name).extension().map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// SHA-256 of everything `reader` yields, as lowercase hex, and its length.
pub fn sha256_of(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((format!("{:x}", hasher.finalize()), len))
}

impl Input {
    /// Opens a file: hashes it (one streaming pass), then opens it again for
    /// reading. Errors name the path.
    pub fn from_path(path: &Path) -> Result<Input> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| Error::Io { file: name.clone(), source: e };
        let (sha256, size) = sha256_of(std::fs::File::open(path).map_err(io)?).map_err(io)?;
        let file = std::fs::File::open(path).map_err(io)?;
        Ok(Input {
            extension: extension_of(&name),
            name,
            sha256,
            size: Some(size),
            reader: Box::new(BufReader::with_capacity(1 << 16, file)),
        })
    }

    /// Bytes already in memory (the bundled sample, a test).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Input {
        let mut hasher = Sha256::new();
        hasher.update(&bytes);
        Input {
            name: name.to_owned(),
            extension: extension_of(name),
            sha256: format!("{:x}", hasher.finalize()),
            size: Some(bytes.len() as u64),
            reader: Box::new(std::io::Cursor::new(bytes)),
        }
    }

    /// A stream whose hash the caller computed (an upload hashed while it was
    /// spooled to disk).
    pub fn from_reader(name: &str, sha256: String, size: Option<u64>, reader: Box<dyn BufRead + Send>) -> Input {
        Input { name: name.to_owned(), extension: extension_of(name), sha256, size, reader }
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size in bytes, when known.
    pub fn size(&self) -> Option<u64> {
        self.size
    }
}

/// What happened to one row, as listed in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    /// Imported; the problem is a warning.
    Warning,
    /// Not inserted: a probable duplicate or a row imported before.
    Duplicate,
    /// Not imported.
    Rejected,
}

/// One listed problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedProblem {
    /// `line 57` or `feature 12`.
    pub at: String,
    /// What happened to the row.
    pub status: RowStatus,
    /// The field concerned.
    pub field: String,
    /// Its value as written.
    pub value: String,
    /// Why.
    pub reason: String,
}

/// A row as it would be imported (dry-run preview).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewRow {
    /// `line 2` or `feature 0`.
    pub at: String,
    /// `insert`, `update tree code K7DW3QX`, `duplicate` or `rejected`.
    pub action: String,
    /// Position after reprojection.
    pub lon: Option<f64>,
    /// Position after reprojection.
    pub lat: Option<f64>,
    /// Orchard the row lands in.
    pub orchard: Option<String>,
    /// Cultivar as normalised.
    pub cultivar: Option<String>,
    /// Planting year.
    pub planted_year: Option<i32>,
    /// Health.
    pub health: Option<String>,
}

/// An earlier import of the same file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EarlierImport {
    /// Its survey.
    pub survey_id: i64,
    /// The file name it had then.
    pub file_name: String,
    /// When it was imported.
    pub imported_at: DateTime<Utc>,
}

/// The outcome of an import (also the JSON of `--report` and of
/// `POST /api/imports`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The file's name.
    pub file: String,
    /// The format it was read as.
    pub format: String,
    /// SHA-256 of its content.
    pub sha256: String,
    /// How columns or properties were mapped to fields (`field <- column`).
    pub mapping: Vec<String>,
    /// True when nothing was written on purpose.
    pub dry_run: bool,
    /// The survey recorded (absent in a dry run or when nothing was new).
    pub survey_id: Option<i64>,
    /// Set when this very file was imported before: nothing was done.
    pub already_imported: Option<EarlierImport>,
    /// Rows (records, features, waypoints) read.
    pub read: u64,
    /// New trees.
    pub inserted: u64,
    /// Existing trees re-surveyed.
    pub updated: u64,
    /// Rows not inserted as probable duplicates or as rows imported before.
    pub duplicates: u64,
    /// Rows not imported.
    pub rejected: u64,
    /// Imported rows that carry at least one warning.
    pub warnings: u64,
    /// Rejected rows by their first reason (`field: reason`).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Warnings by reason.
    pub warnings_by_reason: BTreeMap<String, u64>,
    /// Duplicates by reason.
    pub duplicates_by_reason: BTreeMap<String, u64>,
    /// Problems row by row, in file order, at most [`MAX_LISTED_PROBLEMS`].
    pub problems: Vec<ListedProblem>,
    /// True when more problems occurred than are listed.
    pub problems_truncated: bool,
    /// The first rows as they would be imported (dry runs only).
    pub preview: Vec<PreviewRow>,
    /// Where rejected rows were written, if anywhere.
    pub reject_file: Option<String>,
    /// Wall time of the import, in milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    fn new(input: &Input, format: String, mapping: Vec<String>, dry_run: bool) -> Self {
        Report {
            file: input.name.clone(),
            format,
            sha256: input.sha256.clone(),
            mapping,
            dry_run,
            survey_id: None,
            already_imported: None,
            read: 0,
            inserted: 0,
            updated: 0,
            duplicates: 0,
            rejected: 0,
            warnings: 0,
            rejected_by_reason: BTreeMap::new(),
            warnings_by_reason: BTreeMap::new(),
            duplicates_by_reason: BTreeMap::new(),
            problems: Vec::new(),
            problems_truncated: false,
            preview: Vec::new(),
            reject_file: None,
            elapsed_ms: 0,
        }
    }

    fn list(&mut self, at: &RecordAt, status: RowStatus, field: &str, value: &str, reason: &str) {
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(ListedProblem {
                at: at.to_string(),
                status,
                field: field.to_owned(),
                value: value.to_owned(),
                reason: reason.to_owned(),
            });
        } else {
            self.problems_truncated = true;
        }
    }

    fn reject(&mut self, at: &RecordAt, problems: &[RowProblem]) {
        self.rejected += 1;
        let first = problems.iter().find(|p| p.is_rejected()).or(problems.first());
        if let Some(p) = first {
            *self.rejected_by_reason.entry(reason_key(&p.field, &p.reason)).or_default() += 1;
        }
        for p in problems {
            let status = if p.is_rejected() { RowStatus::Rejected } else { RowStatus::Warning };
            self.list(at, status, &p.field, &p.value, &p.reason);
        }
    }

    fn duplicate(&mut self, at: &RecordAt, field: &str, value: &str, reason: String, summary: &str) {
        self.duplicates += 1;
        *self.duplicates_by_reason.entry(summary.to_owned()).or_default() += 1;
        self.list(at, RowStatus::Duplicate, field, value, &reason);
    }

    fn warn(&mut self, at: &RecordAt, problems: &[RowProblem]) {
        if problems.is_empty() {
            return;
        }
        self.warnings += 1;
        for p in problems {
            *self.warnings_by_reason.entry(reason_key(&p.field, &p.reason)).or_default() += 1;
            self.list(at, RowStatus::Warning, &p.field, &p.value, &p.reason);
        }
    }

    /// Row accounting holds: every row read is in exactly one state.
    pub fn accounted(&self) -> bool {
        self.read == self.inserted + self.updated + self.duplicates + self.rejected
    }

    /// The terminal summary: counts, then counts by reason.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{} ({}, sha256 {}…)", self.file, self.format, &self.sha256[..self.sha256.len().min(12)]);
        if let Some(earlier) = &self.already_imported {
            let _ = writeln!(
                s,
                "  already imported as survey {} ({}, {}): nothing to do",
                earlier.survey_id,
                earlier.file_name,
                earlier.imported_at.format("%Y-%m-%d %H:%M UTC")
            );
            return s;
        }
        let _ = writeln!(
            s,
            "  read {}  inserted {}  updated {}  duplicates {}  warnings {}  rejected {}{}",
            self.read,
            self.inserted,
            self.updated,
            self.duplicates,
            self.warnings,
            self.rejected,
            if self.dry_run { "  (dry run: nothing written)" } else { "" }
        );
        for (title, counts) in [
            ("rejected", &self.rejected_by_reason),
            ("duplicates", &self.duplicates_by_reason),
            ("warnings", &self.warnings_by_reason),
        ] {
            if !counts.is_empty() {
                let _ = writeln!(s, "  {title} by reason:");
                let mut sorted: Vec<_> = counts.iter().collect();
                sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                for (reason, n) in sorted {
                    let _ = writeln!(s, "    {n:>8}  {reason}");
                }
            }
        }
        if let Some(path) = &self.reject_file {
            let _ = writeln!(s, "  rejected rows written to {path} (fix them there and import that file)");
        }
        if let Some(id) = self.survey_id {
            let _ = writeln!(s, "  recorded as survey {id}");
        }
        s
    }
}

/// The key a problem is counted under: its field and reason with every
/// number replaced by `N`, so "tree 12 is 3.1 m away" and "tree 40 is 2.5 m
/// away" count as one reason.
fn reason_key(field: &str, reason: &str) -> String {
    let mut key = format!("{field}: ");
    let mut in_number = false;
    for c in reason.chars() {
        let digit = c.is_ascii_digit() || (in_number && c == '.');
        if digit && !in_number {
            key.push('N');
        } else if !digit {
            key.push(c);
        }
        in_number = digit;
    }
    key
}

/// Progress of a running import, for a progress bar.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Rows read so far.
    pub rows: u64,
    /// Bytes of the input consumed so far.
    pub bytes: u64,
}

/// A reader that counts what passes through it, for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.count.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.consume(amt)
    }
}

/// Where the rows go: what the blocking side hands to the writer.
enum Accepted {
    Insert { key: String, tree: NewTree },
    Update { key: String, target: TreeRef, tree: NewTree },
}

impl Accepted {
    fn key(&self) -> &str {
        match self {
            Accepted::Insert { key, .. } | Accepted::Update { key, .. } => key,
        }
    }
}

/// One batch of accepted rows with where they came from.
struct Batch {
    rows: Vec<(RecordAt, Accepted)>,
}

/// What the stored trees look like to the pipeline.
struct Known {
    by_id: HashMap<TreeId, LonLat>,
    by_code: HashMap<TreeCode, TreeId>,
    grid: PointGrid<TreeId>,
    orchards: HashMap<OrchardId, ()>,
    locator: OrchardLocator,
}

async fn load_known(store: &dyn Storage, radius_m: f64) -> Result<Known> {
    let (points, orchards) = tokio::try_join!(store.tree_points(), store.orchards()).map_err(Error::Store)?;
    let orchards: Vec<Orchard> = orchards;
    tokio::task::spawn_blocking(move || {
        let mut by_id = HashMap::with_capacity(points.len());
        let mut by_code = HashMap::with_capacity(points.len());
        let mut grid = PointGrid::with_capacity(radius_m, points.len());
        for p in points {
            by_id.insert(p.id, p.location);
            by_code.insert(p.code, p.id);
            grid.insert(p.location, p.id);
        }
        let locator = OrchardLocator::new(&orchards);
        Known { by_id, by_code, grid, orchards: orchards.into_iter().map(|o| (o.id, ())).collect(), locator }
    })
    .await
    .map_err(|e| Error::Internal(format!("loading the stored trees failed: {e}")))
}

fn short(d: f64) -> String {
    format!("{d:.1} m")
}

/// The blocking half: reads, places, de-duplicates; sends batches; returns
/// the report so far.
#[allow(clippy::too_many_arguments)]
fn read_rows(
    mut source: SurveySource,
    known: Known,
    opts: &ImportOptions,
    mut report: Report,
    mut rejects: Option<RejectWriter>,
    tx: tokio::sync::mpsc::Sender<Batch>,
    bytes: Arc<AtomicU64>,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Report> {
    let near_radius = opts.nearby_radius_m.max(opts.same_tree_radius_m);
    let mut in_file: PointGrid<u64> = PointGrid::new(near_radius);
    let mut row_of_line: Vec<RecordAt> = Vec::new();
    let mut claimed_codes: HashMap<TreeCode, String> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let file = report.file.clone();
    for record in source.by_ref() {
        let mut record: Record = record?;
        report.read += 1;
        if report.read % 16_384 == 0 {
            progress(Progress { rows: report.read, bytes: bytes.load(Ordering::Relaxed) });
        }
        let preview = report.dry_run && report.preview.len() < opts.preview_rows;
        let Some(mut tree) = record.tree.take() else {
            if preview {
                report.preview.push(preview_row(&record, None, "rejected"));
            }
            report.reject(&record.at, &record.problems);
            if let Some(w) = rejects.as_mut() {
                w.write(&record, &[])?;
            }
            continue;
        };
        let warnings: Vec<RowProblem> = record.problems.iter().filter(|p| !p.is_rejected()).cloned().collect();
        let mut extra: Vec<RowProblem> = Vec::new();
        let problem = |field: &str, value: String, reason: String, severity| RowProblem {
            file: file.clone(),
            line: record.at.number(),
            field: field.to_owned(),
            value,
            reason,
            severity,
        };

        // The orchard: named and known, or found from the boundaries.
        match &record.orchard {
            Some(id) if known.orchards.contains_key(id) => tree.orchard_id = id.clone(),
            Some(id) => extra.push(problem(
                "orchard",
                id.to_string(),
                "is not a known orchard (import its boundary GeoJSON first)".into(),
                Severity::Rejected,
            )),
            None => match opts.source.default_orchard.as_ref().filter(|id| known.orchards.contains_key(*id)) {
                Some(id) => tree.orchard_id = id.clone(),
                None => match known.locator.locate(tree.location) {
                    Some(id) => tree.orchard_id = id.clone(),
                    None => extra.push(problem(
                        "orchard",
                        String::new(),
                        "the row names no orchard and lies inside no known orchard boundary".into(),
                        Severity::Rejected,
                    )),
                },
            },
        }

        // Re-survey of an existing tree, or a new tree (maybe claiming a pre-printed tag).
        let mut target = None;
        match record.target.clone() {
            Some(TreeRef::Id(id)) if known.by_id.contains_key(&id) => target = Some(TreeRef::Id(id)),
            Some(TreeRef::Id(id)) => {
                extra.push(problem("tree_id", id.to_string(), "no stored tree has this id".into(), Severity::Rejected))
            }
            Some(TreeRef::Code(code)) if known.by_code.contains_key(&code) => target = Some(TreeRef::Code(code)),
            Some(TreeRef::Code(code)) => tree.code = Some(code),
            None => {}
        }
        if let Some(code) = &tree.code {
            if target.is_none() {
                if let Some(first) = claimed_codes.get(code) {
                    extra.push(problem(
                        "code",
                        code.to_string(),
                        format!("tag code already used by {first} of this file"),
                        Severity::Rejected,
                    ));
                }
            }
        }

        if extra.iter().any(|p| p.is_rejected()) {
            let mut all = record.problems.clone();
            all.extend(extra.iter().cloned());
            if preview {
                report.preview.push(preview_row(&record, Some(&tree), "rejected"));
            }
            report.reject(&record.at, &all);
            if let Some(w) = rejects.as_mut() {
                w.write(&record, &extra)?;
            }
            continue;
        }

        // De-duplication of new trees against stored trees and earlier rows.
        let mut row_warnings = warnings;
        if target.is_none() {
            let stored = known.grid.nearest_within(tree.location, near_radius);
            let earlier = in_file.nearest_within(tree.location, near_radius);
            let position = tree.location;
            let location = || format!("{:.7},{:.7}", position.lat, position.lon);
            let mut duplicate = None;
            if let Some((id, d)) = stored {
                if d <= opts.same_tree_radius_m && !opts.allow_near {
                    duplicate = Some((
                        format!("probable duplicate of stored tree {id} ({} away)", short(d)),
                        "probable duplicate of a stored tree",
                    ));
                } else {
                    row_warnings.push(problem(
                        "location",
                        location(),
                        format!("stored tree {id} is {} away", short(d)),
                        Severity::Warning,
                    ));
                }
            }
            if duplicate.is_none() {
                if let Some((row, d)) = earlier {
                    let at = row_of_line.get(row as usize).map(ToString::to_string).unwrap_or_default();
                    if d <= opts.same_tree_radius_m && !opts.allow_near {
                        duplicate = Some((
                            format!("probable duplicate of {at} of this file ({} away)", short(d)),
                            "probable duplicate of an earlier row",
                        ));
                    } else {
                        row_warnings.push(problem(
                            "location",
                            location(),
                            format!("the tree of {at} is {} away", short(d)),
                            Severity::Warning,
                        ));
                    }
                }
            }
            if let Some((reason, summary)) = duplicate {
                if preview {
                    report.preview.push(preview_row(&record, Some(&tree), "duplicate"));
                }
                let reason = format!("{reason}; not inserted (--allow-near inserts it)");
                report.duplicate(&record.at, "location", &location(), reason, summary);
                continue;
            }
        }
        let index = row_of_line.len() as u64;
        row_of_line.push(record.at);
        in_file.insert(tree.location, index);
        if let (Some(code), None) = (&tree.code, &target) {
            claimed_codes.insert(*code, record.at.to_string());
        }
        report.warn(&record.at, &row_warnings);
        if preview {
            let action = match &target {
                Some(t) => format!("update {t}"),
                None => "insert".to_owned(),
            };
            report.preview.push(preview_row(&record, Some(&tree), &action));
        }
        let key = std::mem::take(&mut record.key);
        let accepted = match target {
            Some(target) => Accepted::Update { key, target, tree },
            None => Accepted::Insert { key, tree },
        };
        batch.push((record.at, accepted));
        if batch.len() >= BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if tx.blocking_send(Batch { rows: full }).is_err() {
                // The writer side failed; its error is the one to report.
                return Ok(report);
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Batch { rows: batch });
    }
    if let Some(w) = rejects {
        w.finish()?;
    }
    progress(Progress { rows: report.read, bytes: bytes.load(Ordering::Relaxed) });
    Ok(report)
}

fn preview_row(record: &Record, tree: Option<&NewTree>, action: &str) -> PreviewRow {
    PreviewRow {
        at: record.at.to_string(),
        action: action.to_owned(),
        lon: tree.map(|t| t.location.lon),
        lat: tree.map(|t| t.location.lat),
        orchard: tree.map(|t| t.orchard_id.to_string()).or_else(|| record.orchard.as_ref().map(|o| o.to_string())),
        cultivar: tree.map(|t| t.cultivar.to_string()),
        planted_year: tree.and_then(|t| t.planted_year),
        health: tree.map(|t| t.health.to_string()),
    }
}

/// Counts the writer side settles: rows of a batch imported before, inserts
/// and updates.
#[derive(Default)]
struct Written {
    inserted: u64,
    updated: u64,
    already: Vec<(RecordAt, String)>,
}

async fn write_batch(writer: &mut dyn ImportWriter, batch: Batch, written: &mut Written) -> Result<()> {
    let keys: Vec<String> = batch.rows.iter().map(|(_, a)| a.key().to_owned()).collect();
    let known = writer.known_row_keys(&keys).await.map_err(Error::Store)?;
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for ((at, accepted), seen) in batch.rows.into_iter().zip(known) {
        if seen {
            written.already.push((at, accepted.key().to_owned()));
            continue;
        }
        match accepted {
            Accepted::Insert { key, tree } => inserts.push((key, tree)),
            Accepted::Update { key, target, tree } => updates.push((key, target, tree)),
        }
    }
    if !inserts.is_empty() {
        written.inserted += writer.insert_trees(inserts).await.map_err(Error::Store)?.len() as u64;
    }
    if !updates.is_empty() {
        written.updated += writer.update_trees(updates).await.map_err(Error::Store)?.len() as u64;
    }
    Ok(())
}

/// Imports one survey file into `store`, as one transaction. See the module
/// documentation. `reject_path` is where rejected rows are written (in the
/// input's format, with an added error column), only if there are any and
/// this is not a dry run. `progress` is called from a worker thread.
pub async fn import(
    store: Arc<dyn Storage>,
    input: Input,
    opts: ImportOptions,
    reject_path: Option<&Path>,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<Report> {
    let started = std::time::Instant::now();
    opts.check().map_err(Error::Options)?;
    if let Some(earlier) = store.find_import(&input.sha256).await.map_err(Error::Store)? {
        let mut report = Report::new(&input, "-".into(), Vec::new(), opts.dry_run);
        report.already_imported = Some(EarlierImport {
            survey_id: earlier.survey_id.0,
            file_name: earlier.file_name,
            imported_at: earlier.imported_at,
        });
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let known = load_known(store.as_ref(), opts.nearby_radius_m.max(opts.same_tree_radius_m)).await?;
    let bytes = Arc::new(AtomicU64::new(0));
    let counting = Counting { inner: input.reader, count: bytes.clone() };
    let name = input.name.clone();
    let ext = input.extension.clone();
    let source_opts = opts.source.clone();
    let input_meta = Input { reader: Box::new(std::io::empty()), ..input };
    // Opening reads the header or the first features: blocking I/O.
    let source =
        tokio::task::spawn_blocking(move || SurveySource::open(Box::new(counting), &name, ext.as_deref(), source_opts))
            .await
            .map_err(|e| Error::Internal(format!("opening the file failed: {e}")))??;
    let format: Format = source.format();
    let mapping: Vec<String> = source.mapping().to_string().lines().map(str::to_owned).collect();
    let report = Report::new(&input_meta, format.to_string(), mapping, opts.dry_run);

    let rejects = match (reject_path, opts.dry_run) {
        (Some(path), false) => Some(RejectSpool::new(path)),
        _ => None,
    };
    let reject_writer = match &rejects {
        Some(spool) => Some(source.reject_writer(Box::new(spool.writer()?))?),
        None => None,
    };

    let surveyed_at = Utc::now();
    let meta = ImportMeta {
        file_name: input_meta.name.clone(),
        file_sha256: input_meta.sha256.clone(),
        format: format.to_string(),
        survey: Survey {
            id: SurveyId(0),
            surveyor: opts.surveyor.clone(),
            surveyed_at,
            source: input_meta.name.clone(),
            device: opts.device.clone(),
        },
        external_id: None,
    };
    let mut writer = store.begin_import(meta).await.map_err(Error::Store)?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(4);
    let reader_opts = opts.clone();
    let reading = tokio::task::spawn_blocking(move || {
        read_rows(source, known, &reader_opts, report, reject_writer, tx, bytes, progress.as_ref())
    });
    let mut written = Written::default();
    let mut write_error = None;
    while let Some(batch) = rx.recv().await {
        if let Err(e) = write_batch(writer.as_mut(), batch, &mut written).await {
            write_error = Some(e);
            break;
        }
    }
    drop(rx);
    let read_result = reading.await.map_err(|e| Error::Internal(format!("reading the file failed: {e}")))?;
    if let Some(e) = write_error {
        return Err(e); // the writer is dropped: rolled back
    }
    let mut report = read_result?;
    report.inserted = written.inserted;
    report.updated = written.updated;
    for (at, key) in written.already {
        report.duplicate(
            &at,
            "row",
            &key,
            "this row was imported before (same row identity)".into(),
            "imported before",
        );
    }
    report.problems.sort_by_key(|p| natural_at(&p.at));

    if opts.dry_run {
        drop(writer); // roll back
    } else if report.inserted + report.updated > 0 {
        let survey = writer.commit().await.map_err(Error::Store)?;
        report.survey_id = Some(survey.0);
    } else {
        drop(writer); // nothing new: no empty survey either
    }
    if let Some(spool) = rejects {
        report.reject_file = spool.keep_if(report.rejected > 0)?;
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Sort key for `line 57` / `feature 12` that orders numbers numerically.
fn natural_at(at: &str) -> (String, u64) {
    match at.rsplit_once(' ') {
        Some((kind, n)) => (kind.to_owned(), n.parse().unwrap_or(u64::MAX)),
        None => (at.to_owned(), 0),
    }
}

/// The reject file is written beside its final path and renamed into place
/// only when there were rejected rows, so an import without rejections
/// leaves no empty file and a failed one no half-written file.
struct RejectSpool {
    path: std::path::PathBuf,
    partial: std::path::PathBuf,
}

impl RejectSpool {
    fn new(path: &Path) -> Self {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        Self { path: path.to_owned(), partial: partial.into() }
    }

    fn writer(&self) -> Result<impl Write + Send + 'static> {
        let file = std::fs::File::create(&self.partial)
            .map_err(|e| Error::Io { file: self.partial.display().to_string(), source: e })?;
        Ok(std::io::BufWriter::new(file))
    }

    fn keep_if(self, keep: bool) -> Result<Option<String>> {
        if keep {
            std::fs::rename(&self.partial, &self.path)
                .map_err(|e| Error::Io { file: self.path.display().to_string(), source: e })?;
            Ok(Some(self.path.display().to_string()))
        } else {
            let _ = std::fs::remove_file(&self.partial);
            Ok(None)
        }
    }
}

impl Drop for RejectSpool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// The default reject file for an input: `survey.csv` → `survey.rejected.csv`.
pub fn default_reject_path(input: &Path) -> std::path::PathBuf {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "import".into());
    let name = match input.extension() {
        Some(ext) => format!("{stem}.rejected.{}", ext.to_string_lossy()),
        None => format!("{stem}.rejected"),
    };
    input.with_file_name(name)
}
