//! Survey files of every format, streamed as [`Record`]s.
//!
//! [`SurveySource::open`] detects the format ([`Format`]: content first,
//! then the extension; [`SourceOptions::format`] overrides), maps columns
//! or properties to [`Field`]s ([`Mapping`]) and then yields one [`Record`]
//! per row, feature, waypoint or placemark, reading the file as it goes:
//! memory stays bounded whatever the file's size (one record at a time,
//! plus the reader's buffers; a single record larger than 64 MiB is an
//! error). Each record carries the tree it describes (or none when it is
//! rejected), every problem found, its identity ([`Record::key`]) and what a
//! [`RejectWriter`] needs to write it back.
//!
//! The iterator yields `Err` only for what makes the rest of the file
//! unreadable (broken XML, a JSON feature that never ends, an I/O error),
//! and then ends. Everything else about a record is a
//! [`RowProblem`](crate::RowProblem) in it.

mod build;
mod csv_source;
mod fields;
mod json_source;
mod key;
mod reject;
mod values;
mod xml_source;

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use chrono::{DateTime, Utc};
use geo_core::{NewTree, OrchardId, Region, TreeRef, VIETNAM};

use crate::problem::RowProblem;
use crate::{Error, Reprojector, Result};

pub use fields::{ALIASES, Field, field_of};
pub use reject::RejectWriter;
pub use values::{CULTIVAR_NAMES, HEALTH_WORDS};

/// Largest single record (CSV row, JSON feature, waypoint, placemark) read, in bytes.
#[cfg(not(test))]
pub(crate) const MAX_RECORD_BYTES: usize = 64 << 20;
/// Small in unit tests, which read past it.
#[cfg(test)]
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 20;

/// The formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Delimited text: plain CSV, KoboToolbox and ODK Central exports.
    Csv,
    /// A GeoJSON FeatureCollection of points.
    GeoJson,
    /// Newline-delimited GeoJSON features (GeoJSONSeq, NDJSON).
    GeoJsonSeq,
    /// GPX 1.1 waypoints.
    Gpx,
    /// KML placemarks.
    Kml,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::GeoJson => "geojson",
            Format::GeoJsonSeq => "geojsonseq",
            Format::Gpx => "gpx",
            Format::Kml => "kml",
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    /// The format names of [`Format`]'s `Display`, and the usual file
    /// extensions (`tsv`, `json`, `ndjson`, `geojsonl`, `jsonl` ...).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "tab" | "txt" | "kobo" | "odk" => Format::Csv,
            "geojson" | "json" => Format::GeoJson,
            "geojsonseq" | "geojsonl" | "geojsons" | "ndjson" | "jsonl" | "ldjson" => Format::GeoJsonSeq,
            "gpx" => Format::Gpx,
            "kml" => Format::Kml,
            other => return Err(format!("unknown format {other:?}: expected csv, geojson, geojsonseq, gpx or kml")),
        })
    }
}

/// Validation thresholds.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Points outside are rejected (default Vietnam).
    pub region: Region,
    /// GPS accuracy (metres) above which a row gets a warning (default 10).
    pub accuracy_warn_m: f64,
    /// GPS accuracy (metres) above which a row is rejected (default 25).
    pub accuracy_reject_m: f64,
    /// Planting years and survey times after this year are in the future.
    pub this_year: i32,
}

impl Default for Rules {
    fn default() -> Self {
        use chrono::Datelike;
        Self { region: VIETNAM, accuracy_warn_m: 10.0, accuracy_reject_m: 25.0, this_year: Utc::now().year() }
    }
}

/// How to read a file.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// The format; detected when `None`.
    pub format: Option<Format>,
    /// Coordinate system of the file's coordinates (CSV lat/lon or x/y
    /// columns, GeoJSON geometry); WGS 84 degrees when `None`. KoboToolbox
    /// geopoints, GPX and KML are WGS 84 by definition.
    pub crs: Option<Reprojector>,
    /// The file's x and y (longitude and latitude) are swapped: swap them
    /// back. Without it a swapped row is rejected, saying so.
    pub swap_xy: bool,
    /// `(field, column)` overrides of the detected mapping (`--map
    /// field=column`); an empty column unmaps the field.
    pub mapping: Vec<(String, String)>,
    /// Thresholds.
    pub rules: Rules,
    /// Orchard for rows that name none.
    pub default_orchard: Option<OrchardId>,
}

/// Where a record is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordAt {
    /// 1-based physical line where the row starts (CSV; the header is line 1).
    Line(u64),
    /// 0-based index of the feature (GeoJSON), waypoint (GPX) or placemark (KML).
    Feature(u64),
}

impl RecordAt {
    /// The line, or the feature index, as a number.
    pub fn number(&self) -> u64 {
        match *self {
            RecordAt::Line(n) | RecordAt::Feature(n) => n,
        }
    }
}

impl fmt::Display for RecordAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordAt::Line(n) => write!(f, "line {n}"),
            RecordAt::Feature(n) => write!(f, "feature {n}"),
        }
    }
}

/// A record as found in its file, for [`RejectWriter`] to write it back.
#[derive(Debug, Clone)]
pub struct RawRecord(pub(crate) RawKind);

#[derive(Debug, Clone)]
pub(crate) enum RawKind {
    /// The fields of a CSV row.
    Csv(csv_source::CsvFields),
    /// A GeoJSON feature.
    Json(serde_json::Value),
    /// Text that is not valid JSON, as read.
    JsonText(String),
    /// A GPX waypoint or KML placemark.
    Xml(Box<xml_source::XmlRaw>),
}

/// One row, feature, waypoint or placemark.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where it is in the file.
    pub at: RecordAt,
    /// Its identity across imports: `uuid:...` from a KoboToolbox `_uuid` or
    /// ODK `KEY`, otherwise `h:` and a 128-bit hash of its mapped values
    /// (and geometry), so the same rows give the same keys in any file.
    pub key: String,
    /// The tree, or `None` when the record is rejected. Its `orchard_id` is
    /// the row's orchard, else [`SourceOptions::default_orchard`], else the
    /// placeholder `unassigned` (the pipeline places the tree by boundary).
    pub tree: Option<NewTree>,
    /// The orchard the record names, if any.
    pub orchard: Option<OrchardId>,
    /// An existing tree the record names: by id, else by tag code.
    pub target: Option<TreeRef>,
    /// When the tree was surveyed (or, failing that, the form submitted).
    pub surveyed_at: Option<DateTime<Utc>>,
    /// The record's id in the tool that made the file (Kobo `_uuid`, ODK
    /// `KEY`, GeoJSON feature `id`).
    pub external_id: Option<String>,
    /// Every problem: warnings and rejections.
    pub problems: Vec<RowProblem>,
    /// The record as written.
    pub raw: RawRecord,
}

impl Record {
    /// True when the record is not imported.
    pub fn is_rejected(&self) -> bool {
        self.tree.is_none()
    }
}

/// How fields were found: where the position comes from, and which column
/// or property each field is read from.
///
/// Displays one line per field, `lat <- _Vị trí cây_latitude`, after a
/// `position <- ...` line for formats with a geometry, and a last line
/// listing the columns not used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Where positions come from when not from columns (`geometry`, `<wpt lat lon>`, ...).
    pub position: Option<String>,
    /// Field to column or property name.
    pub fields: BTreeMap<Field, String>,
    /// Columns or properties not used.
    pub ignored: Vec<String>,
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.position {
            writeln!(f, "position <- {p}")?;
        }
        for (field, column) in &self.fields {
            writeln!(f, "{} <- {column}", field.name())?;
        }
        if !self.ignored.is_empty() {
            writeln!(f, "(not used: {})", self.ignored.join(", "))?;
        }
        Ok(())
    }
}

/// What every reader needs to turn values into a record.
pub(crate) struct Context {
    pub(crate) file: String,
    pub(crate) opts: SourceOptions,
    /// `--map` overrides resolved to fields; `None` unmaps the field.
    pub(crate) overrides: Vec<(Field, Option<String>)>,
    /// The coordinate system to convert from (`None`: WGS 84 degrees).
    pub(crate) crs: Option<Reprojector>,
    /// Accept `12,64` as a number (files separated by `;` or tabs).
    pub(crate) decimal_comma: bool,
    /// Orchard of trees whose row names none (see [`Record::tree`]).
    pub(crate) unassigned: OrchardId,
}

impl Context {
    /// The field an override gives a column or property name, if any:
    /// `Some(None)` when the name is overridden away from every field.
    pub(crate) fn override_for(&self, name: &str) -> Option<Field> {
        self.overrides.iter().find(|(_, c)| c.as_deref() == Some(name)).map(|(f, _)| *f)
    }

    /// True when `--map` set or unset `field`, so detection must not map it.
    pub(crate) fn is_overridden(&self, field: Field) -> bool {
        self.overrides.iter().any(|(f, _)| *f == field)
    }

    /// The field a column or property name maps to: an override, else
    /// detection (unless the detected field is overridden).
    pub(crate) fn field_for(&self, name: &str) -> Option<Field> {
        self.override_for(name).or_else(|| field_of(name).filter(|f| !self.is_overridden(*f)))
    }

    /// Checks that every `--map` column is among `names`.
    pub(crate) fn check_overrides<'n>(&self, names: impl Iterator<Item = &'n str> + Clone, what: &str) -> Result<()> {
        for (field, column) in &self.overrides {
            if let Some(column) = column {
                if !names.clone().any(|n| n == column) {
                    let list: Vec<&str> = names.clone().collect();
                    return Err(Error::Mapping {
                        file: self.file.clone(),
                        reason: format!(
                            "--map {field}={column}: no {what} named {column:?} (found: {})",
                            if list.is_empty() { "none".to_owned() } else { list.join(", ") }
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The format `head` (the start of the file) holds: XML root element, JSON
/// shape, else the extension, else CSV.
fn detect(head: &[u8], ext: Option<&str>) -> Format {
    let head = &head[..head.len().min(1 << 16)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let text = String::from_utf8_lossy(&head[start..]);
    let by_ext = ext.and_then(|e| e.parse::<Format>().ok());
    if text.starts_with('<') {
        let lower = text.to_ascii_lowercase();
        let gpx = lower.find("<gpx");
        let kml = lower.find("<kml");
        match (gpx, kml) {
            (Some(g), Some(k)) => return if g < k { Format::Gpx } else { Format::Kml },
            (Some(_), None) => return Format::Gpx,
            (None, Some(_)) => return Format::Kml,
            (None, None) => {}
        }
        if matches!(by_ext, Some(Format::Gpx | Format::Kml)) {
            return by_ext.unwrap_or(Format::Gpx);
        }
        if lower.contains("<wpt") {
            return Format::Gpx;
        }
        if lower.contains("<placemark") {
            return Format::Kml;
        }
    }
    if text.starts_with('\u{1e}') {
        return Format::GeoJsonSeq;
    }
    if text.starts_with('{') {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).take(1 << 15).collect();
        if compact.contains("\"FeatureCollection\"") || compact.contains("\"features\":[") {
            return Format::GeoJson;
        }
        if by_ext == Some(Format::GeoJson) && !compact.contains("\"Feature\"") {
            return Format::GeoJson;
        }
        return Format::GeoJsonSeq;
    }
    if text.starts_with('[') {
        return by_ext.unwrap_or(Format::GeoJsonSeq);
    }
    match by_ext {
        Some(f @ Format::Csv) => f,
        // Text that is neither XML nor JSON is read as CSV whatever its name.
        _ => Format::Csv,
    }
}

/// A survey file being read: an iterator of [`Record`]s.
pub struct SurveySource {
    format: Format,
    mapping: Mapping,
    inner: Inner,
    ctx: Context,
}

impl fmt::Debug for SurveySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SurveySource").field("format", &self.format).field("file", &self.ctx.file).finish()
    }
}

enum Inner {
    Csv(Box<csv_source::CsvSource>),
    Json(Box<json_source::JsonSource>),
    Xml(Box<xml_source::XmlSource>),
}

impl SurveySource {
    /// Opens a survey: detects the format, reads the header (CSV) or the
    /// first record (to show the mapping), and resolves `--map` overrides.
    /// `file_name` is used in every message; `extension_hint` (`"csv"`,
    /// `"gpx"` ...) helps detection when the content is ambiguous.
    ///
    /// # Errors
    /// The file is empty, UTF-16, a ZIP archive (KMZ, XLSX), has no usable
    /// header or coordinate columns, or a `--map` names an unknown field or
    /// column; [`Error::Io`] when reading fails.
    pub fn open(
        mut reader: Box<dyn BufRead + Send>,
        file_name: &str,
        extension_hint: Option<&str>,
        opts: SourceOptions,
    ) -> Result<SurveySource> {
        let file = file_name.to_owned();
        let head = reader.fill_buf().map_err(|e| Error::Io { file: file.clone(), source: e })?;
        if head.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Empty { file });
        }
        if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err(Error::Encoding {
                file,
                reason: "is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\")".into(),
            });
        }
        if head.starts_with(b"PK\x03\x04") {
            return Err(Error::Encoding {
                file,
                reason: "is a ZIP archive: unzip a KMZ and import its doc.kml; save a spreadsheet as \"CSV UTF-8\""
                    .into(),
            });
        }
        let format = opts.format.unwrap_or_else(|| detect(head, extension_hint));

        let mut overrides = Vec::new();
        for (field, column) in &opts.mapping {
            let Some(f) = Field::from_name(field) else {
                return Err(Error::Mapping {
                    file,
                    reason: format!(
                        "--map {field}={column}: unknown field {field:?} (fields: {})",
                        Field::ALL.map(Field::name).join(", ")
                    ),
                });
            };
            let column = column.trim();
            overrides.retain(|(o, _)| *o != f);
            overrides.push((f, (!column.is_empty()).then(|| column.to_owned())));
        }
        let crs = opts.crs.clone().filter(|c| !c.is_wgs84());
        if let (Some(c), Format::Gpx | Format::Kml) = (&crs, format) {
            return Err(Error::Options(format!(
                "{file}: --crs {} does not apply: {format} coordinates are WGS 84 longitude/latitude by definition",
                c.name()
            )));
        }
        let unassigned = OrchardId::new("unassigned").map_err(|e| Error::Internal(e.to_string()))?;
        let mut ctx = Context { file, opts, overrides, crs, decimal_comma: false, unassigned };
        let (inner, mapping) = match format {
            Format::Csv => {
                let (src, mapping) = csv_source::CsvSource::open(reader, &mut ctx)?;
                (Inner::Csv(Box::new(src)), mapping)
            }
            Format::GeoJson | Format::GeoJsonSeq => {
                let (src, mapping) = json_source::JsonSource::open(reader, &mut ctx, format == Format::GeoJsonSeq)?;
                (Inner::Json(Box::new(src)), mapping)
            }
            Format::Gpx | Format::Kml => {
                let (src, mapping) = xml_source::XmlSource::open(reader, &ctx, format == Format::Kml)?;
                (Inner::Xml(Box::new(src)), mapping)
            }
        };
        Ok(SurveySource { format, mapping, inner, ctx })
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// How columns map to fields. For GeoJSON, GPX and KML the mapping is
    /// that of the first record; later records are mapped by the same rules
    /// (each property by its name).
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The coordinate system positions are converted from, when not WGS 84
    /// (given, or read from a GeoJSON `crs` member).
    pub fn crs(&self) -> Option<&Reprojector> {
        self.ctx.crs.as_ref()
    }

    /// A writer for rejected records in this file's own format: CSV with
    /// the same separator, BOM, line ends and header plus an `error`
    /// column; GeoJSON features with an `error` property; GPX waypoints with
    /// the error in `<desc>`; KML placemarks with an `error` Data element.
    ///
    /// # Errors
    /// [`Error::Io`] when writing the start of the file fails.
    pub fn reject_writer(&self, out: Box<dyn std::io::Write + Send>) -> Result<RejectWriter> {
        let shape = match &self.inner {
            Inner::Csv(src) => reject::Shape::Csv(src.shape()),
            Inner::Json(_) => reject::Shape::Json(self.format == Format::GeoJsonSeq),
            Inner::Xml(src) => reject::Shape::Xml { kml: self.format == Format::Kml, root: src.root_tag() },
        };
        RejectWriter::new(out, shape, &self.ctx.file)
    }
}

impl Iterator for SurveySource {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Result<Record>> {
        match &mut self.inner {
            Inner::Csv(src) => src.next_record(&self.ctx),
            Inner::Json(src) => src.next_record(&self.ctx),
            Inner::Xml(src) => src.next_record(&self.ctx),
        }
    }
}

#[cfg(test)]
mod tests;
