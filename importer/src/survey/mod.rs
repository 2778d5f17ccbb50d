//! Survey files of every format, streamed as [`Record`]s.
//!
//! [`SurveySource::open`] detects the format (content first, then the
//! extension; [`SourceOptions::format`] overrides), maps columns or
//! properties to [`Field`]s and then yields one [`Record`] per row, feature,
//! waypoint or placemark without reading the whole file into memory. Each
//! record carries the tree it describes (or none when it is rejected), every
//! problem found, and what a [`RejectWriter`] needs to write it back.

mod csv_source;
mod fields;
mod json_source;
mod reject;
mod xml_source;

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use chrono::{DateTime, Utc};
use geo_core::{Cultivar, Health, LonLat, NewTree, OrchardId, Region, TreeCode, TreeId, TreeRef, VIETNAM};

use crate::problem::{RowProblem, Severity, shorten};
use crate::text::{fold, suggest_cultivar};
use crate::{Error, Reprojector, Result};

pub use fields::{Field, field_of};
pub use reject::RejectWriter;

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
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" | "kobo" | "odk" => Format::Csv,
            "geojson" | "json" => Format::GeoJson,
            "geojsonseq" | "geojsonl" | "ndjson" | "jsonl" | "geojsons" => Format::GeoJsonSeq,
            "gpx" => Format::Gpx,
            "kml" => Format::Kml,
            other => return Err(format!("unknown format {other:?}: expected csv, geojson, geojsonseq, gpx or kml")),
        })
    }
}

impl Format {
    fn from_extension(ext: &str) -> Option<Format> {
        ext.parse().ok()
    }
}

/// Validation thresholds.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Points outside are rejected (default Vietnam).
    pub region: Region,
    /// GPS accuracy (metres) above which a row gets a warning.
    pub accuracy_warn_m: f64,
    /// GPS accuracy (metres) above which a row is rejected.
    pub accuracy_reject_m: f64,
    /// Planting years after this are in the future.
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
    /// Coordinate system of the coordinates; WGS 84 degrees when `None`.
    pub crs: Option<Reprojector>,
    /// Latitude and longitude are swapped in the file: swap them back.
    pub swap_xy: bool,
    /// `(field, column)` overrides of the detected mapping.
    pub mapping: Vec<(String, String)>,
    /// Thresholds.
    pub rules: Rules,
    /// Orchard for rows that name none.
    pub default_orchard: Option<OrchardId>,
}

/// Where a record is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordAt {
    /// 1-based physical line where the row starts (CSV).
    Line(u64),
    /// 0-based index of the feature, waypoint or placemark.
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

/// A record as found in the file, to write it back to a reject file.
#[derive(Debug, Clone)]
pub enum RawRecord {
    /// CSV fields.
    Csv(csv::ByteRecord),
    /// A GeoJSON feature.
    Json(serde_json::Value),
    /// A GPX waypoint or KML placemark: its coordinates and child values.
    Xml {
        /// `lon lat` as written.
        lon: String,
        /// Latitude as written.
        lat: String,
        /// Child elements and data, in order.
        values: Vec<(String, String)>,
    },
}

/// One row, feature, waypoint or placemark.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where it is in the file.
    pub at: RecordAt,
    /// Its identity across imports: the external id when the file has one,
    /// otherwise a hash of its content.
    pub key: String,
    /// The tree, or `None` when the record is rejected.
    pub tree: Option<NewTree>,
    /// The orchard the record names, if any.
    pub orchard: Option<OrchardId>,
    /// An existing tree the record names (by id or tag code).
    pub target: Option<TreeRef>,
    /// When the tree was surveyed.
    pub surveyed_at: Option<DateTime<Utc>>,
    /// The submission id in the tool that made the file.
    pub external_id: Option<String>,
    /// Every problem: warnings and rejections.
    pub problems: Vec<RowProblem>,
    /// The record as written.
    pub raw: RawRecord,
}

/// How fields were found: `field <- column` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Field to column or property name.
    pub fields: BTreeMap<Field, String>,
    /// Columns not used.
    pub ignored: Vec<String>,
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (field, column) in &self.fields {
            writeln!(f, "{} <- {column}", field.name())?;
        }
        if !self.ignored.is_empty() {
            writeln!(f, "(ignored: {})", self.ignored.join(", "))?;
        }
        Ok(())
    }
}

/// A survey file being read.
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
    Csv(csv_source::CsvSource),
    Json(json_source::JsonSource),
    Xml(xml_source::XmlSource),
}

/// What every reader needs to turn values into a record.
pub(crate) struct Context {
    pub(crate) file: String,
    pub(crate) opts: SourceOptions,
    /// `--map` overrides resolved to fields.
    pub(crate) overrides: Vec<(Field, String)>,
}

fn detect(head: &[u8], ext: Option<&str>) -> Format {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<') {
        let lower = trimmed.to_ascii_lowercase();
        if lower.contains("<gpx") {
            return Format::Gpx;
        }
        if lower.contains("<kml") {
            return Format::Kml;
        }
    }
    if trimmed.starts_with('\u{1e}') {
        return Format::GeoJsonSeq;
    }
    if trimmed.starts_with('{') {
        // One complete feature on the first line: newline-delimited.
        let first = trimmed.lines().next().unwrap_or("");
        let is_feature = serde_json::from_str::<serde_json::Value>(first)
            .ok()
            .is_some_and(|v| v.get("type").and_then(|t| t.as_str()) == Some("Feature"));
        return if is_feature { Format::GeoJsonSeq } else { Format::GeoJson };
    }
    ext.and_then(Format::from_extension).unwrap_or(Format::Csv)
}

impl SurveySource {
    /// Opens a survey: detects the format and reads the header (CSV) or up
    /// to the first feature. `file_name` is used in every message.
    pub fn open(
        mut reader: Box<dyn BufRead + Send>,
        file_name: &str,
        extension: Option<&str>,
        opts: SourceOptions,
    ) -> Result<SurveySource> {
        let io = |e: std::io::Error| Error::Io { file: file_name.to_owned(), source: e };
        let head = reader.fill_buf().map_err(io)?;
        if head.is_empty() {
            return Err(Error::Empty { file: file_name.to_owned() });
        }
        if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err(Error::Encoding {
                file: file_name.to_owned(),
                reason: "is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\")".into(),
            });
        }
        let format = opts.format.unwrap_or_else(|| detect(head, extension));
        let mut overrides = Vec::new();
        for (field, column) in &opts.mapping {
            let Some(f) = Field::from_name(field) else {
                return Err(Error::Mapping {
                    file: file_name.to_owned(),
                    reason: format!(
                        "--map {field}={column}: unknown field {field:?} (fields: {})",
                        Field::ALL.map(Field::name).join(", ")
                    ),
                });
            };
            overrides.push((f, column.clone()));
        }
        let ctx = Context { file: file_name.to_owned(), opts, overrides };
        let (inner, mapping) = match format {
            Format::Csv => {
                let (src, mapping) = csv_source::CsvSource::open(reader, &ctx)?;
                (Inner::Csv(src), mapping)
            }
            Format::GeoJson | Format::GeoJsonSeq => {
                let src = json_source::JsonSource::open(reader, &ctx, format == Format::GeoJsonSeq)?;
                (Inner::Json(src), Mapping::default())
            }
            Format::Gpx | Format::Kml => {
                (Inner::Xml(xml_source::XmlSource::new(reader, format == Format::Kml)), Mapping::default())
            }
        };
        Ok(SurveySource { format, mapping, inner, ctx })
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// How columns map to fields (CSV; property-based formats map each
    /// feature's properties by name and show the names they understand).
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// A writer for rejected records in this file's own format.
    pub fn reject_writer(&self, out: Box<dyn std::io::Write + Send>) -> Result<RejectWriter> {
        let header = match &self.inner {
            Inner::Csv(src) => Some(src.header_for_rejects()),
            _ => None,
        };
        RejectWriter::new(out, self.format, header, &self.ctx.file)
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

/// The whole globe: the region check is done before validation, with its own message.
const WORLD: geo_core::BBox = geo_core::BBox { min_lon: -180.0, min_lat: -90.0, max_lon: 180.0, max_lat: 90.0 };

/// 64-bit FNV-1a, as 16 hex digits: a stable identity for a record's content.
pub(crate) fn content_key(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0x1f;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Turns the values of one record into a [`Record`], collecting every problem.
pub(crate) struct Builder<'c> {
    ctx: &'c Context,
    at: RecordAt,
    problems: Vec<RowProblem>,
    rejected: bool,
}

impl<'c> Builder<'c> {
    pub(crate) fn new(ctx: &'c Context, at: RecordAt) -> Self {
        Builder { ctx, at, problems: Vec::new(), rejected: false }
    }

    fn report(&mut self, severity: Severity, field: &str, value: &str, reason: impl Into<String>) {
        self.rejected |= severity == Severity::Rejected;
        self.problems.push(RowProblem {
            file: self.ctx.file.clone(),
            line: self.at.number(),
            field: field.to_owned(),
            value: shorten(value),
            reason: reason.into(),
            severity,
        });
    }

    pub(crate) fn reject(&mut self, field: &str, value: &str, reason: impl Into<String>) {
        self.report(Severity::Rejected, field, value, reason);
    }

    fn number(&mut self, field: Field, text: Option<&str>) -> Option<f64> {
        let text = text?.trim();
        if text.is_empty() {
            return None;
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ if text.contains(',') && text.replace(',', ".").parse::<f64>().is_ok() => {
                self.reject(field.name(), text, "is not a number (use '.' as the decimal separator)");
                None
            }
            _ => {
                self.reject(field.name(), text, "is not a number");
                None
            }
        }
    }

    /// Builds the record. `get` answers the text of a field; `point` is a
    /// geometry's `(x, y)` when the format has one.
    pub(crate) fn build<'r>(
        mut self,
        get: &dyn Fn(Field) -> Option<&'r str>,
        point: Option<(f64, f64)>,
        key: Option<String>,
        content_key: impl FnOnce() -> String,
        raw: RawRecord,
    ) -> Record {
        let rules = &self.ctx.opts.rules;
        let text = |f: Field| get(f).map(str::trim).filter(|s| !s.is_empty());

        // Position: explicit lat/lon, projected x/y, a raw geopoint, or the geometry.
        let crs = self.ctx.opts.crs.as_ref().filter(|c| !c.is_wgs84());
        let mut accuracy = self.number(Field::Accuracy, text(Field::Accuracy));
        let mut xy: Option<(f64, f64, &'static str)> = None;
        let (lat_t, lon_t, x_t, y_t) = (text(Field::Lat), text(Field::Lon), text(Field::X), text(Field::Y));
        if lat_t.is_some() || lon_t.is_some() {
            let lat = self.number(Field::Lat, lat_t);
            let lon = self.number(Field::Lon, lon_t);
            match (lon, lat) {
                (Some(lon), Some(lat)) => xy = Some((lon, lat, "lon,lat")),
                _ if lat_t.is_none() => self.reject("lat", "", "is required"),
                _ if lon_t.is_none() => self.reject("lon", "", "is required"),
                _ => {}
            }
        } else if x_t.is_some() || y_t.is_some() {
            let x = self.number(Field::X, x_t);
            let y = self.number(Field::Y, y_t);
            if let (Some(x), Some(y)) = (x, y) {
                xy = Some((x, y, "x,y"));
            } else if x_t.is_none() || y_t.is_none() {
                self.reject(if x_t.is_none() { "x" } else { "y" }, "", "is required");
            }
        } else if let Some(raw_point) = text(Field::Geopoint) {
            let parts: Vec<&str> = raw_point.split_whitespace().collect();
            match parts.as_slice() {
                [lat, lon, rest @ ..] => match (lat.parse::<f64>(), lon.parse::<f64>()) {
                    (Ok(lat), Ok(lon)) if lat.is_finite() && lon.is_finite() => {
                        xy = Some((lon, lat, "lon,lat"));
                        if accuracy.is_none() {
                            accuracy = rest.get(1).and_then(|a| a.parse::<f64>().ok()).filter(|a| a.is_finite());
                        }
                    }
                    _ => self.reject("geopoint", raw_point, "is not \"lat lon [alt accuracy]\""),
                },
                _ => self.reject("geopoint", raw_point, "is not \"lat lon [alt accuracy]\""),
            }
        } else if let Some((x, y)) = point {
            xy = Some((x, y, "x,y"));
        } else {
            self.reject("location", "", "no coordinates: expected lat and lon columns, x and y, or a point geometry");
        }

        let mut location = None;
        if let Some((mut x, mut y, _)) = xy {
            if self.ctx.opts.swap_xy {
                std::mem::swap(&mut x, &mut y);
            }
            let value = || format!("{x},{y}");
            let converted = match crs {
                Some(crs) => crs.to_wgs84(x, y).map_err(|e| e.to_string()),
                None => Ok(LonLat::new(x, y)),
            };
            match converted {
                Err(reason) => self.reject("location", &value(), reason),
                Ok(p) if !(-90.0..=90.0).contains(&p.lat) || !(-180.0..=180.0).contains(&p.lon) => {
                    let swapped = LonLat::new(p.lat, p.lon);
                    if crs.is_none() && rules.region.bbox.contains(swapped) {
                        self.reject(
                            "location",
                            &value(),
                            "values look like lon,lat swapped; pass --swap-xy if the columns are swapped",
                        );
                    } else if !(-90.0..=90.0).contains(&p.lat) {
                        self.reject("lat", &format!("{}", p.lat), "latitude must be within -90..90");
                    } else {
                        self.reject("lon", &format!("{}", p.lon), "longitude must be within -180..180");
                    }
                }
                Ok(p) if !rules.region.bbox.contains(p) => {
                    let swapped = LonLat::new(p.lat, p.lon);
                    if crs.is_none() && rules.region.bbox.contains(swapped) {
                        self.reject(
                            "location",
                            &value(),
                            "values look like lon,lat swapped; pass --swap-xy if the columns are swapped",
                        );
                    } else {
                        self.reject(
                            "location",
                            &format!("{:.7},{:.7}", p.lat, p.lon),
                            format!("is outside {} ({})", rules.region.name, rules.region.bbox),
                        );
                    }
                }
                Ok(p) => location = Some(p),
            }
        }

        if let Some(a) = accuracy {
            if a < 0.0 {
                self.reject("accuracy_m", &a.to_string(), "must not be negative");
            } else if a > rules.accuracy_reject_m {
                self.reject(
                    "accuracy_m",
                    &a.to_string(),
                    format!("GPS fix is worse than {} m; survey this tree again", rules.accuracy_reject_m),
                );
            } else if a > rules.accuracy_warn_m {
                self.report(
                    Severity::Warning,
                    "accuracy_m",
                    &a.to_string(),
                    format!("GPS fix is worse than {} m; the position may be off by that much", rules.accuracy_warn_m),
                );
            }
        }

        let cultivar_text = text(Field::Cultivar);
        let cultivar = Cultivar::new(cultivar_text.unwrap_or(""));
        match &cultivar_text {
            None => self.reject("cultivar", "", "is required"),
            Some(t) if !cultivar.is_known() => {
                let reason = match suggest_cultivar(t) {
                    Some(known) => format!("is not a known cultivar; did you mean {known}?"),
                    None => format!("is not a known cultivar (known: {})", geo_core::KNOWN_CULTIVARS.join(", ")),
                };
                self.report(Severity::Warning, "cultivar", t, reason);
            }
            Some(_) => {}
        }

        let planted_year = text(Field::PlantedYear).and_then(|t| {
            let year = t
                .parse::<i32>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().filter(|v| v.fract() == 0.0 && v.abs() < 1e6).map(|v| v as i32));
            if year.is_none() {
                self.reject("planted_year", t, "is not a year (a whole number such as 2018)");
            }
            year
        });

        let health = match text(Field::Health) {
            None => {
                self.reject("health", "", "is required (good, fair, poor or dead)");
                None
            }
            Some(t) => match parse_health(t) {
                Some(h) => Some(h),
                None => {
                    self.reject("health", t, "must be one of good, fair, poor, dead (tốt, khá, yếu, chết)");
                    None
                }
            },
        };

        let orchard = text(Field::Orchard).and_then(|t| match OrchardId::new(t) {
            Ok(id) => Some(id),
            Err(e) => {
                self.reject("orchard", t, e.to_string());
                None
            }
        });

        let mut target = None;
        let mut code = None;
        if let Some(t) = text(Field::TreeId) {
            match t.parse::<i64>() {
                Ok(id) if id > 0 => target = Some(TreeRef::Id(TreeId(id))),
                _ => self.reject("tree_id", t, "is not a tree id (a positive whole number)"),
            }
        }
        if let Some(t) = text(Field::Code) {
            match TreeCode::parse(t) {
                Ok(c) => {
                    if target.is_none() {
                        target = Some(TreeRef::Code(c));
                    }
                    code = Some(c);
                }
                Err(e) => self.reject("code", t, e.to_string()),
            }
        }

        // Kobo and ODK write submission times in UTC, without an offset; a survey
        // time without one is Vietnam local time.
        let submitted = || text(Field::SubmittedAt).map(|t| if has_offset(t) { t.to_owned() } else { format!("{t}Z") });
        let surveyed_text = text(Field::SurveyedAt).map(str::to_owned).or_else(submitted);
        let surveyed_at = surveyed_text.and_then(|t| match crate::parse_time(&t) {
            Some(time) => Some(time),
            None => {
                self.reject(
                    "surveyed_at",
                    &t,
                    "is not a date (RFC 3339 such as 2024-03-15T08:30:00+07:00, or YYYY-MM-DD [HH:MM:SS] in Vietnam time)",
                );
                None
            }
        });

        let height_m = self.number(Field::Height, text(Field::Height));
        let girth_cm = self.number(Field::Girth, text(Field::Girth));
        let external_id = text(Field::ExternalId).map(str::to_owned);

        let mut tree = None;
        if let (Some(location), Some(health)) = (location, health) {
            let candidate = NewTree {
                code,
                location,
                accuracy_m: accuracy,
                cultivar,
                planted_year,
                health,
                height_m,
                girth_cm,
                orchard_id: orchard
                    .clone()
                    .or_else(|| self.ctx.opts.default_orchard.clone())
                    .unwrap_or_else(unassigned_orchard),
                survey_id: None,
            };
            if let Err(geo_core::Error::Invalid(problems)) =
                candidate.validate(&Region { name: rules.region.name, bbox: WORLD }, rules.this_year)
            {
                for p in problems {
                    if !self.problems.iter().any(|q| q.field == p.field) {
                        self.reject(&p.field, &p.value, p.reason);
                    }
                }
            }
            tree = Some(candidate);
        }
        if self.rejected {
            tree = None;
        }
        let key = key.or_else(|| external_id.clone()).unwrap_or_else(content_key);
        Record { at: self.at, key, tree, orchard, target, surveyed_at, external_id, problems: self.problems, raw }
    }
}

/// The orchard id a tree has before the pipeline places it.
fn unassigned_orchard() -> OrchardId {
    // The pipeline replaces it, or rejects the row, before anything is stored.
    #[allow(clippy::expect_used)]
    OrchardId::new("unassigned").expect("a constant, valid orchard id")
}

/// True when a date-time ends with `Z` or a `+hh:mm` / `-hh:mm` / `+hhmm` offset.
fn has_offset(t: &str) -> bool {
    let b = t.trim().as_bytes();
    if b.last().is_some_and(|c| c.eq_ignore_ascii_case(&b'Z')) {
        return true;
    }
    // A time part must exist, or `2025-03-03` would read as an offset of -03.
    let has_time = b.contains(&b':');
    let sign_at = |back: usize| b.len() > back + 10 && matches!(b[b.len() - back - 1], b'+' | b'-');
    has_time && (sign_at(5) || sign_at(4))
}

/// Health in English or Vietnamese, any case, with or without diacritics.
fn parse_health(text: &str) -> Option<Health> {
    if let Ok(h) = text.parse::<Health>() {
        return Some(h);
    }
    Some(match fold(text).as_str() {
        "good" | "tot" | "khoe" | "binhthuong" => Health::Good,
        "fair" | "kha" | "trungbinh" => Health::Fair,
        "poor" | "yeu" | "kem" | "benh" | "saubenh" => Health::Poor,
        "dead" | "chet" | "dachet" => Health::Dead,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
