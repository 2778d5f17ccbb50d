//! Tree CSV files: the form of `data/trees.csv`, as volunteers export it from a spreadsheet.

use std::collections::BTreeSet;
use std::io::Read;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use csv::ByteRecord;
use geo_core::{Cultivar, Health, LonLat, NewTree, OrchardId, Survey, SurveyId, TreeCode, VIETNAM};

use crate::error::{Error, Result};
use crate::problem::{RowProblem, Severity, shorten};
use crate::text::suggest_cultivar;

/// GPS accuracy (metres) above which a row gets a warning.
pub const ACCURACY_WARNING_M: f64 = 10.0;

/// Offset of local time in Vietnam (Asia/Ho_Chi_Minh, UTC+7, no daylight saving).
const VIETNAM_OFFSET_S: i32 = 7 * 3600;

/// A column the reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Lat,
    Lon,
    Accuracy,
    Cultivar,
    PlantedYear,
    Health,
    Orchard,
    SurveyedAt,
    Code,
    Height,
    Girth,
}

impl Column {
    const ALL: [Column; 11] = [
        Column::Lat,
        Column::Lon,
        Column::Accuracy,
        Column::Cultivar,
        Column::PlantedYear,
        Column::Health,
        Column::Orchard,
        Column::SurveyedAt,
        Column::Code,
        Column::Height,
        Column::Girth,
    ];

    /// Canonical name: the header of `data/trees.csv` and the field in problems.
    fn name(self) -> &'static str {
        match self {
            Column::Lat => "lat",
            Column::Lon => "lon",
            Column::Accuracy => "accuracy_m",
            Column::Cultivar => "cultivar",
            Column::PlantedYear => "planted_year",
            Column::Health => "health",
            Column::Orchard => "orchard",
            Column::SurveyedAt => "surveyed_at",
            Column::Code => "code",
            Column::Height => "height_m",
            Column::Girth => "girth_cm",
        }
    }

    /// Other header spellings accepted (after trimming and lower-casing).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::Lat => &["latitude"],
            Column::Lon => &["lng", "long", "longitude"],
            Column::Accuracy => &["accuracy"],
            Column::Cultivar => &["variety"],
            Column::PlantedYear => &["year_planted"],
            Column::Orchard => &["orchard_id"],
            Column::Height => &["height"],
            Column::Girth => &["girth"],
            Column::Health | Column::SurveyedAt | Column::Code => &[],
        }
    }

    fn required(self) -> bool {
        matches!(self, Column::Lat | Column::Lon | Column::Cultivar | Column::Health | Column::Orchard)
    }

    fn from_header(name: &str) -> Option<Column> {
        let name = name.trim().to_lowercase();
        Column::ALL.into_iter().find(|c| c.name() == name || c.aliases().contains(&name.as_str()))
    }
}

/// Columns a tree CSV must have.
pub const REQUIRED_COLUMNS: [&str; 5] = ["lat", "lon", "cultivar", "health", "orchard"];
/// Columns a tree CSV may have; other columns are ignored.
pub const OPTIONAL_COLUMNS: [&str; 6] = ["accuracy_m", "planted_year", "surveyed_at", "code", "height_m", "girth_cm"];

/// One accepted row of a tree CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeRow {
    /// 1-based physical line where the row starts (the header is line 1).
    pub line: u64,
    /// The tree, validated against [`VIETNAM`].
    pub tree: NewTree,
    /// When the tree was recorded (the `surveyed_at` column), in UTC.
    pub surveyed_at: Option<DateTime<Utc>>,
}

/// What [`read_trees_csv`] found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvImport {
    /// The file name given to the reader.
    pub file_name: String,
    /// Accepted rows, in file order (rows with only warnings are accepted).
    pub rows: Vec<TreeRow>,
    /// Every problem, in file order: rejected rows and warnings.
    pub problems: Vec<RowProblem>,
    /// Data rows read (not counting the header and blank rows).
    pub rows_read: usize,
    /// Header columns that were not understood and were ignored.
    pub ignored_columns: Vec<String>,
}

impl CsvImport {
    /// The accepted trees, in file order.
    pub fn trees(&self) -> impl Iterator<Item = &NewTree> + '_ {
        self.rows.iter().map(|r| &r.tree)
    }

    /// The accepted trees, by value.
    pub fn into_trees(self) -> Vec<NewTree> {
        self.rows.into_iter().map(|r| r.tree).collect()
    }

    /// Problems that made rows be rejected.
    pub fn rejected(&self) -> impl Iterator<Item = &RowProblem> + '_ {
        self.problems.iter().filter(|p| p.severity == Severity::Rejected)
    }

    /// Problems that only flag accepted values.
    pub fn warnings(&self) -> impl Iterator<Item = &RowProblem> + '_ {
        self.problems.iter().filter(|p| p.severity == Severity::Warning)
    }

    /// Number of rows rejected (a row with several problems counts once).
    pub fn rejected_rows(&self) -> usize {
        self.rejected().map(|p| p.line).collect::<BTreeSet<_>>().len()
    }

    /// The orchards the accepted trees refer to (they must exist before the trees are stored).
    pub fn orchard_ids(&self) -> BTreeSet<&OrchardId> {
        self.rows.iter().map(|r| &r.tree.orchard_id).collect()
    }

    /// The earliest `surveyed_at` of the accepted rows.
    pub fn earliest_surveyed_at(&self) -> Option<DateTime<Utc>> {
        self.rows.iter().filter_map(|r| r.surveyed_at).min()
    }

    /// The latest `surveyed_at` of the accepted rows.
    pub fn latest_surveyed_at(&self) -> Option<DateTime<Utc>> {
        self.rows.iter().filter_map(|r| r.surveyed_at).max()
    }

    /// A survey for this file: made by `surveyor`, at the earliest `surveyed_at`
    /// (or `fallback` when no accepted row has one), with the file name as source.
    pub fn survey(&self, surveyor: &str, fallback: DateTime<Utc>) -> Survey {
        Survey {
            id: SurveyId(0),
            surveyor: surveyor.to_string(),
            surveyed_at: self.earliest_surveyed_at().unwrap_or(fallback),
            source: self.file_name.clone(),
            device: None,
        }
    }
}

/// Reads a tree CSV (the form of `data/trees.csv`).
///
/// * Header required; column order is free; names are matched without regard
///   to case or surrounding spaces. Required: `lat`, `lon`, `cultivar`,
///   `health`, `orchard`. Optional: `accuracy_m`, `planted_year`,
///   `surveyed_at`, `code`, `height_m`, `girth_cm`. Other columns are ignored
///   (listed in [`CsvImport::ignored_columns`]).
/// * `,` separator, `"` quoting (fields may span lines), UTF-8 with or without
///   BOM, LF, CRLF or CR line ends. Blank rows are skipped.
/// * Rows are rejected for missing or unparseable values, unknown health, a bad
///   orchard id or tree code, a bad or future `surveyed_at`, and everything
///   [`NewTree::validate`] reports against [`VIETNAM`] and `this_year`
///   (ranges, planting year in the future, ...). Every problem of a row is listed.
/// * Warnings (row kept): unknown cultivar (with the closest known name),
///   `accuracy_m` above [`ACCURACY_WARNING_M`].
/// * `surveyed_at` is RFC 3339, or `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (also
///   with `T`) taken as Vietnam local time (UTC+7).
///
/// `file_name` is only used in messages. Errors concern the file as a whole
/// (unreadable, empty, not UTF-8, missing columns) and name it.
pub fn read_trees_csv<R: Read>(mut reader: R, file_name: &str, this_year: i32) -> Result<CsvImport> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|source| Error::Io { file: file_name.to_string(), source })?;
    parse_trees_csv(&bytes, file_name, this_year)
}

/// [`read_trees_csv`] on bytes already in memory.
pub fn parse_trees_csv(bytes: &[u8], file_name: &str, this_year: i32) -> Result<CsvImport> {
    let file = file_name.to_string();
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Error::Encoding { file, reason: "the file is UTF-16 text; save it as \"CSV UTF-8\"".into() });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Empty { file });
    }
    // Old Mac spreadsheets end lines with CR alone; count those as line ends too.
    let converted;
    let bytes = if !bytes.contains(&b'\n') && bytes.contains(&b'\r') {
        converted = bytes.iter().map(|&b| if b == b'\r' { b'\n' } else { b }).collect::<Vec<u8>>();
        converted.as_slice()
    } else {
        bytes
    };

    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = ByteRecord::new();
    let csv_error = |e: csv::Error, file: &str| Error::Csv {
        file: file.to_string(),
        line: e.position().map_or(0, csv::Position::line),
        reason: e.to_string(),
    };

    // Header: the first non-blank record.
    loop {
        if !reader.read_byte_record(&mut record).map_err(|e| csv_error(e, &file))? {
            return Err(Error::Empty { file });
        }
        if !is_blank(&record) {
            break;
        }
    }
    let header = Header::parse(&record, &file)?;
    // Count physical lines from byte offsets (see `LineCounter::line_at`).
    let mut lines = LineCounter { bytes, offset: 0, line: 1 };

    let mut out = CsvImport {
        file_name: file.clone(),
        rows: Vec::new(),
        problems: Vec::new(),
        rows_read: 0,
        ignored_columns: header.ignored.clone(),
    };
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e, &file)),
        }
        if is_blank(&record) {
            continue;
        }
        out.rows_read += 1;
        let line = lines.line_at(record.position().map_or(0, csv::Position::byte));
        let mut row =
            Row { file: &file, line, header: &header, record: &record, problems: Vec::new(), failed: Vec::new() };
        let parsed = row.parse(this_year);
        let rejected = row.problems.iter().any(RowProblem::is_rejected);
        row.problems.sort_by_key(|p| rank(&p.field));
        out.problems.append(&mut row.problems);
        if let (false, Some((tree, surveyed_at))) = (rejected, parsed) {
            out.rows.push(TreeRow { line, tree, surveyed_at });
        }
    }
    Ok(out)
}

/// Physical line numbers of increasing byte offsets.
struct LineCounter<'b> {
    bytes: &'b [u8],
    offset: usize,
    line: u64,
}

impl LineCounter<'_> {
    /// The 1-based line where the record reported at byte `offset` starts
    /// (offsets must not decrease). The csv crate reports a record from the end
    /// of the previous one: line ends and blank lines before it are skipped here.
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut end = usize::try_from(offset).unwrap_or(usize::MAX).clamp(self.offset, self.bytes.len());
        while let Some(b'\r' | b'\n') = self.bytes.get(end) {
            end += 1;
        }
        self.line += self.bytes[self.offset..end].iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset = end;
        self.line
    }
}

fn is_blank(record: &ByteRecord) -> bool {
    record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// Where each known column is.
struct Header {
    index: [Option<usize>; Column::ALL.len()],
    width: usize,
    ignored: Vec<String>,
}

impl Header {
    fn parse(record: &ByteRecord, file: &str) -> Result<Header> {
        let mut index = [None; Column::ALL.len()];
        let mut ignored = Vec::new();
        let mut names = Vec::new();
        for (i, raw) in record.iter().enumerate() {
            let name = std::str::from_utf8(raw).map_err(|_| Error::Encoding {
                file: file.to_string(),
                reason: "the header is not UTF-8 text; save the file as \"CSV UTF-8\"".into(),
            })?;
            names.push(name.trim().to_string());
            match Column::from_header(name) {
                Some(col) => {
                    let slot = &mut index[col as usize];
                    if slot.is_some() {
                        return Err(Error::DuplicateColumn { file: file.to_string(), column: col.name() });
                    }
                    *slot = Some(i);
                }
                None if name.trim().is_empty() => {}
                None => ignored.push(name.trim().to_string()),
            }
        }
        let missing: Vec<&'static str> = Column::ALL
            .into_iter()
            .filter(|c| c.required() && index[*c as usize].is_none())
            .map(Column::name)
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingColumns {
                file: file.to_string(),
                columns: missing,
                found: shorten(&names.join(",")),
            });
        }
        Ok(Header { index, width: record.len(), ignored })
    }
}

/// A field as found in a row.
enum Field<'r> {
    /// No such column, no such field, or only blank space.
    Missing,
    /// Present but not readable (already reported).
    Invalid,
    /// Trimmed, non-empty text.
    Text(&'r str),
}

/// One data row being read: collects its problems.
struct Row<'a> {
    file: &'a str,
    line: u64,
    header: &'a Header,
    record: &'a ByteRecord,
    problems: Vec<RowProblem>,
    /// Columns whose value could not be read: their placeholders must not be reported again.
    failed: Vec<&'static str>,
}

impl<'a> Row<'a> {
    fn report(&mut self, severity: Severity, field: &str, value: &str, reason: impl Into<String>) {
        self.problems.push(RowProblem {
            file: self.file.to_string(),
            line: self.line,
            field: field.to_string(),
            value: shorten(value),
            reason: reason.into(),
            severity,
        });
    }

    fn reject(&mut self, col: Column, value: &str, reason: impl Into<String>) {
        self.failed.push(col.name());
        self.report(Severity::Rejected, col.name(), value, reason);
    }

    fn field(&mut self, col: Column) -> Field<'a> {
        let record: &'a ByteRecord = self.record;
        let Some(raw) = self.header.index[col as usize].and_then(|i| record.get(i)) else {
            return Field::Missing;
        };
        match std::str::from_utf8(raw) {
            Ok(text) if text.trim().is_empty() => Field::Missing,
            Ok(text) => Field::Text(text.trim()),
            Err(_) => {
                let lossy = String::from_utf8_lossy(raw).into_owned();
                self.reject(col, &lossy, "is not UTF-8 text (save the file as \"CSV UTF-8\")");
                Field::Invalid
            }
        }
    }

    /// The text of `col`, reporting a missing required value.
    fn text(&mut self, col: Column) -> Option<String> {
        match self.field(col) {
            Field::Text(t) => Some(t.to_string()),
            Field::Invalid => None,
            Field::Missing => {
                if col.required() {
                    self.reject(col, "", "is required");
                }
                None
            }
        }
    }

    fn number(&mut self, col: Column) -> Option<f64> {
        let text = self.text(col)?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            Ok(_) => {
                self.reject(col, &text, "is not a finite number");
                None
            }
            Err(_) if text.contains(',') && text.replace(',', ".").parse::<f64>().is_ok() => {
                self.reject(col, &text, "is not a number (use '.' as the decimal separator)");
                None
            }
            Err(_) => {
                self.reject(col, &text, "is not a number");
                None
            }
        }
    }

    fn year(&mut self, col: Column) -> Option<i32> {
        let text = self.text(col)?;
        if let Ok(y) = text.parse::<i32>() {
            return Some(y);
        }
        // Spreadsheets sometimes write whole numbers as 2018.0.
        match text.parse::<f64>() {
            Ok(v) if v.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&v) => Some(v as i32),
            _ => {
                self.reject(col, &text, "is not a year (a whole number such as 2018)");
                None
            }
        }
    }

    /// Parses the row. Returns the tree (with placeholders where values were
    /// unreadable) only when every required value could be read.
    fn parse(&mut self, this_year: i32) -> Option<(NewTree, Option<DateTime<Utc>>)> {
        if self.record.len() > self.header.width {
            let (found, width) = (self.record.len(), self.header.width);
            self.report(
                Severity::Rejected,
                "row",
                "",
                format!("has {found} fields but the header has {width} (a value containing ',' must be quoted)"),
            );
        }
        let lat = self.number(Column::Lat);
        let lon = self.number(Column::Lon);
        let accuracy_m = self.number(Column::Accuracy);
        let cultivar_text = self.text(Column::Cultivar);
        let planted_year = self.year(Column::PlantedYear);
        let health = self.text(Column::Health).and_then(|text| match text.parse::<Health>() {
            Ok(h) => Some(h),
            Err(e) => {
                self.reject(Column::Health, &text, domain_reason(e));
                None
            }
        });
        let orchard = self.text(Column::Orchard).and_then(|text| match OrchardId::new(text.as_str()) {
            Ok(id) => Some(id),
            Err(e) => {
                self.reject(Column::Orchard, &text, domain_reason(e));
                None
            }
        });
        let surveyed_at = self.text(Column::SurveyedAt).and_then(|text| match parse_time(&text) {
            Some(t) if vietnam().is_some_and(|tz| t.with_timezone(&tz).year() > this_year) => {
                self.reject(Column::SurveyedAt, &text, format!("is in the future (this year is {this_year})"));
                None
            }
            Some(t) => Some(t),
            None => {
                self.reject(
                    Column::SurveyedAt,
                    &text,
                    "is not a date (use RFC 3339 such as 2024-03-15T08:30:00+07:00, or YYYY-MM-DD [HH:MM:SS] in Vietnam time)",
                );
                None
            }
        });
        let code = self.text(Column::Code).and_then(|text| match TreeCode::parse(&text) {
            Ok(c) => Some(c),
            Err(e) => {
                self.reject(Column::Code, &text, domain_reason(e));
                None
            }
        });
        let height_m = self.number(Column::Height);
        let girth_cm = self.number(Column::Girth);

        let cultivar = Cultivar::new(cultivar_text.as_deref().unwrap_or(""));
        if cultivar_text.is_some() && !cultivar.is_known() && cultivar.as_str().chars().count() <= 60 {
            let reason = match suggest_cultivar(cultivar.as_str()) {
                Some(known) => format!("is not a known cultivar; did you mean {known}?"),
                None => format!("is not a known cultivar (known: {})", geo_core::KNOWN_CULTIVARS.join(", ")),
            };
            self.report(Severity::Warning, Column::Cultivar.name(), cultivar.as_str(), reason);
        }
        if let Some(a) = accuracy_m.filter(|a| *a > ACCURACY_WARNING_M) {
            self.report(
                Severity::Warning,
                Column::Accuracy.name(),
                &format_number(a),
                format!("GPS fix is worse than {ACCURACY_WARNING_M} m; the position may be off by that much"),
            );
        }

        // Validate what was read; unreadable values get harmless placeholders
        // whose problems are not reported again.
        let placeholder_orchard = || OrchardId::new("placeholder").ok();
        let tree = NewTree {
            code,
            location: LonLat::new(lon.unwrap_or(108.0), lat.unwrap_or(12.7)),
            accuracy_m,
            cultivar,
            planted_year,
            health: health.unwrap_or(Health::Good),
            height_m,
            girth_cm,
            orchard_id: orchard.clone().or_else(placeholder_orchard)?,
            survey_id: None,
        };
        let position_failed = lat.is_none() || lon.is_none();
        match tree.validate(&VIETNAM, this_year) {
            Ok(()) => {}
            Err(geo_core::Error::Invalid(problems)) => {
                for p in problems {
                    let about_position = matches!(p.field.as_str(), "lat" | "lon" | "location");
                    if self.failed.contains(&p.field.as_str()) || (position_failed && about_position) {
                        continue;
                    }
                    self.report(Severity::Rejected, &p.field, &p.value, p.reason);
                }
            }
            Err(other) => self.report(Severity::Rejected, "row", "", other.to_string()),
        }
        let complete = lat.is_some() && lon.is_some() && health.is_some() && orchard.is_some();
        complete.then_some((tree, surveyed_at))
    }
}

/// The reason inside a domain parse error, without repeating field and value.
fn domain_reason(e: geo_core::Error) -> String {
    match e {
        geo_core::Error::Parse { reason, .. } => reason,
        geo_core::Error::BadCode { reason, .. } => reason.to_string(),
        other => other.to_string(),
    }
}

fn format_number(v: f64) -> String {
    format!("{v}")
}

/// Vietnam's offset (always `Some`: UTC+7 is in range).
fn vietnam() -> Option<FixedOffset> {
    FixedOffset::east_opt(VIETNAM_OFFSET_S)
}

/// Order of problems within a row: the row's shape, then columns in header-of-the-sample order.
fn rank(field: &str) -> usize {
    match field {
        "row" => 0,
        "location" => 5,
        _ => Column::ALL.iter().position(|c| c.name() == field).map_or(100, |i| 2 * (i + 1)),
    }
}

/// Parses a `surveyed_at` value: RFC 3339, or a date / date-time without
/// offset taken as Vietnam local time (UTC+7).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(text, fmt).ok())
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN)))?;
    vietnam()?.from_local_datetime(&local).single().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEADER: &str = "lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at";
    const GOOD: &str = "12.6404903,108.1269790,4.4,Ri6,2021,good,DL-CK-EATIEU-001,2025-03-03T01:16:17Z";

    fn read(text: &str) -> CsvImport {
        read_trees_csv(text.as_bytes(), "survey.csv", 2026).unwrap()
    }

    fn only_problem(import: &CsvImport) -> &RowProblem {
        assert_eq!(import.problems.len(), 1, "{:#?}", import.problems);
        &import.problems[0]
    }

    /// Reads HEADER plus one row and returns its problems (as displayed).
    fn problems_of(row: &str) -> Vec<String> {
        read(&format!("{HEADER}\n{row}\n")).problems.iter().map(ToString::to_string).collect()
    }

    fn rejected(row: &str) -> Vec<String> {
        let import = read(&format!("{HEADER}\n{row}\n"));
        assert!(import.rows.is_empty(), "row was accepted: {row}");
        import.rejected().map(ToString::to_string).collect()
    }

    #[test]
    fn a_good_row_becomes_a_tree() {
        let import = read(&format!("{HEADER}\n{GOOD}\n"));
        assert!(import.problems.is_empty(), "{:?}", import.problems);
        assert_eq!(import.rows_read, 1);
        let row = &import.rows[0];
        assert_eq!(row.line, 2);
        let t = &row.tree;
        assert_eq!(t.location, LonLat::new(108.126979, 12.6404903));
        assert_eq!(t.accuracy_m, Some(4.4));
        assert_eq!(t.cultivar.as_str(), "Ri6");
        assert_eq!(t.planted_year, Some(2021));
        assert_eq!(t.health, Health::Good);
        assert_eq!(t.orchard_id.as_str(), "DL-CK-EATIEU-001");
        assert_eq!(row.surveyed_at.unwrap().to_rfc3339(), "2025-03-03T01:16:17+00:00");
        assert_eq!(import.orchard_ids().len(), 1);
    }

    #[test]
    fn columns_may_be_reordered_renamed_and_extra() {
        let text = "Orchard , note,Health,LONGITUDE,Latitude,cultivar,photo\n\
                    DL-1,ok,tốt,108.05,12.68,Chuồng Bò,img.jpg\n";
        let import = read(text);
        assert!(import.problems.is_empty(), "{:?}", import.problems);
        assert_eq!(import.ignored_columns, ["note", "photo"]);
        let t = &import.rows[0].tree;
        assert_eq!((t.location.lon, t.location.lat), (108.05, 12.68));
        assert_eq!(t.cultivar.as_str(), "Chuồng Bò");
        assert_eq!(t.health, Health::Good);
        assert_eq!((t.accuracy_m, t.planted_year), (None, None));
        assert_eq!(import.rows[0].surveyed_at, None);
    }

    #[test]
    fn optional_tree_columns_are_read() {
        let code = TreeCode::from_serial(5).unwrap();
        let text = format!(
            "lat,lon,cultivar,health,orchard,code,height_m,girth_cm\n12.68,108.05,Ri6,good,DL-1,{code},7.5,120\n"
        );
        let t = &read(&text).rows[0].tree;
        assert_eq!(t.code, Some(code));
        assert_eq!((t.height_m, t.girth_cm), (Some(7.5), Some(120.0)));
        let bad = read("lat,lon,cultivar,health,orchard,code\n12.68,108.05,Ri6,good,DL-1,0OIL\n");
        assert!(
            only_problem(&bad).to_string().starts_with("survey.csv line 2: code 0OIL: contains a character outside")
        );
    }

    #[test]
    fn bom_crlf_and_quotes_are_handled() {
        let text = format!(
            "\u{feff}\"lat\",lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at\r\n{GOOD}\r\n\"12.68\",\"108.05\",\"3,5\",\"Musang King\",2019,fair,DL-2,2024-05-01\r\n"
        );
        let import = read(&text);
        assert_eq!(import.rows.len(), 1);
        assert_eq!(import.rows[0].line, 2);
        // "3,5" is quoted, so it is one field, but not a number.
        let p = only_problem(&import);
        assert_eq!(
            p.to_string(),
            "survey.csv line 3: accuracy_m 3,5: is not a number (use '.' as the decimal separator)"
        );
    }

    #[test]
    fn line_numbers_count_physical_lines_of_multi_line_fields() {
        let text = format!(
            "{HEADER}\n\
             {GOOD}\n\
             12.68,108.05,4,\"Ri6\",2019,good,DL-1,\"2024-05-01\n\
             second line of a field\"\n\
             \n\
             1270.5,108.05,4,Ri6,2019,good,DL-1,2024-05-01\n"
        );
        let import = read(&text);
        assert_eq!(import.rows_read, 3);
        let lines: Vec<u64> = import.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 6], "{:#?}", import.problems);
        assert_eq!(import.problems[1].to_string(), "survey.csv line 6: lat 1270.5: latitude must be within -90..90");
    }

    #[test]
    fn line_numbers_with_crlf_and_cr_only() {
        let text = format!("{HEADER}\r\n{GOOD}\r\n\"x\r\ny\",108.05,4,Ri6,2019,good,DL-1,\r\n{GOOD}\r\n");
        let import = read(&text);
        assert_eq!(import.problems[0].line, 3);
        assert_eq!(import.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 5]);
        let mac = format!("{HEADER}\r{GOOD}\rbad,108.05,4,Ri6,2019,good,DL-1,\r");
        let import = read(&mac);
        assert_eq!(import.rows[0].line, 2);
        assert_eq!(import.problems[0].line, 3);
    }

    #[test]
    fn every_rejection_reason() {
        let cases: [(&str, &str); 16] = [
            (",108.05,4,Ri6,2019,good,DL-1,", "line 2: lat: is required"),
            ("abc,108.05,4,Ri6,2019,good,DL-1,", "lat abc: is not a number"),
            ("NaN,108.05,4,Ri6,2019,good,DL-1,", "lat NaN: is not a finite number"),
            ("12.68,188.05,4,Ri6,2019,good,DL-1,", "lon 188.05: longitude must be within -180..180"),
            ("48.85,2.35,4,Ri6,2019,good,DL-1,", "location 2.35,48.85: lon,lat is outside Vietnam"),
            ("108.05,12.68,4,Ri6,2019,good,DL-1,", "(values look like lat,lon swapped)"),
            ("12.68,108.05,-1,Ri6,2019,good,DL-1,", "accuracy_m -1: GPS accuracy must be 0 or more metres"),
            ("12.68,108.05,4,,2019,good,DL-1,", "cultivar: is required"),
            ("12.68,108.05,4,Ri6,2031,good,DL-1,", "planted_year 2031: is in the future (this year is 2026)"),
            ("12.68,108.05,4,Ri6,1850,good,DL-1,", "planted_year 1850: is before 1900"),
            ("12.68,108.05,4,Ri6,2019.5,good,DL-1,", "planted_year 2019.5: is not a year"),
            ("12.68,108.05,4,Ri6,2019,sick,DL-1,", "health sick: must be one of good, fair, poor, dead"),
            ("12.68,108.05,4,Ri6,2019,,DL-1,", "health: is required"),
            ("12.68,108.05,4,Ri6,2019,good,Vườn 1,", "orchard Vườn 1: must be 1-40 characters"),
            ("12.68,108.05,4,Ri6,2019,good,DL-1,2024-02-30", "surveyed_at 2024-02-30: is not a date"),
            (
                "12.68,108.05,4,Ri6,2019,good,DL-1,2027-01-01T00:00:00Z",
                "surveyed_at 2027-01-01T00:00:00Z: is in the future",
            ),
        ];
        for (row, expected) in cases {
            let problems = rejected(row);
            assert!(problems.iter().any(|p| p.contains(expected)), "{row}: expected {expected:?} in {problems:#?}");
            assert!(problems.iter().all(|p| p.starts_with("survey.csv line 2: ")), "{problems:?}");
        }
        let long = "x".repeat(61);
        assert!(
            rejected(&format!("12.68,108.05,4,{long},2019,good,DL-1,"))[0].contains("is longer than 60 characters")
        );
        let empty_orchard = rejected("12.68,108.05,4,Ri6,2019,good,,");
        assert_eq!(empty_orchard, ["survey.csv line 2: orchard: is required"]);
    }

    #[test]
    fn all_problems_of_a_row_are_listed_once() {
        let problems = rejected("abc,108.05,-3,,2031,sick,bad id!,yesterday");
        assert_eq!(
            problems,
            [
                "survey.csv line 2: lat abc: is not a number",
                "survey.csv line 2: accuracy_m -3: GPS accuracy must be 0 or more metres",
                "survey.csv line 2: cultivar: is required",
                "survey.csv line 2: planted_year 2031: is in the future (this year is 2026)",
                "survey.csv line 2: health sick: must be one of good, fair, poor, dead",
                "survey.csv line 2: orchard bad id!: must be 1-40 characters of A-Z, a-z, 0-9, '-' or '_'",
                "survey.csv line 2: surveyed_at yesterday: is not a date (use RFC 3339 such as 2024-03-15T08:30:00+07:00, or YYYY-MM-DD [HH:MM:SS] in Vietnam time)",
            ]
        );
    }

    #[test]
    fn row_shape_problems() {
        // Too many fields: an unquoted comma.
        let problems = rejected("12.68,108.05,4,Musang King, D197,2019,good,DL-1,");
        assert!(problems[0].starts_with("survey.csv line 2: row: has 9 fields but the header has 8"), "{problems:?}");
        // Too few: the missing trailing fields are empty.
        let import = read(&format!("{HEADER}\n12.68,108.05,4,Ri6,2019,good,DL-1\n12.68,108.05\n"));
        assert_eq!(import.rows.len(), 1);
        let p: Vec<String> = import.rejected().map(ToString::to_string).collect();
        assert_eq!(
            p,
            [
                "survey.csv line 3: cultivar: is required",
                "survey.csv line 3: health: is required",
                "survey.csv line 3: orchard: is required"
            ]
        );
        // Blank rows and rows of empty fields are skipped.
        let import = read(&format!("{HEADER}\n\n,,,,,,,\n  ,\n{GOOD}\n"));
        assert_eq!((import.rows_read, import.rows.len(), import.problems.len()), (1, 1, 0));
        assert_eq!(import.rows[0].line, 5);
    }

    #[test]
    fn warnings_keep_the_row() {
        let import = read(&format!(
            "{HEADER}\n\
             12.68,108.05,12.5,Ri 7,2019,good,DL-1,\n\
             12.68,108.05,3,Chuong Bo,2019,good,DL-1,\n\
             12.68,108.05,3,Xoài,2019,good,DL-1,\n"
        ));
        assert_eq!(import.rows.len(), 3);
        assert_eq!(import.rejected().count(), 0);
        let w: Vec<String> = import.warnings().map(ToString::to_string).collect();
        assert_eq!(
            w,
            [
                "survey.csv line 2: warning: accuracy_m 12.5: GPS fix is worse than 10 m; the position may be off by that much",
                "survey.csv line 2: warning: cultivar Ri 7: is not a known cultivar; did you mean Ri6?",
                "survey.csv line 3: warning: cultivar Chuong Bo: is not a known cultivar; did you mean Chuồng Bò?",
                "survey.csv line 4: warning: cultivar Xoài: is not a known cultivar (known: Ri6, Monthong, Musang King, Black Thorn, Chuồng Bò, Khổ Qua Xanh, Sáu Hữu, Cơm Vàng)",
            ]
        );
        assert_eq!(import.rows[0].tree.cultivar.as_str(), "Ri 7", "kept as written");
        // Aliases known to geo-core are normalised silently.
        assert!(problems_of("12.68,108.05,3,dona,2019,good,DL-1,").is_empty());
    }

    #[test]
    fn surveyed_at_forms() {
        let utc = |s: &str| parse_time(s).map(|t| t.to_rfc3339());
        assert_eq!(utc("2024-03-15T08:30:00+07:00").as_deref(), Some("2024-03-15T01:30:00+00:00"));
        assert_eq!(utc("2024-03-15T01:30:00Z").as_deref(), Some("2024-03-15T01:30:00+00:00"));
        assert_eq!(utc("2024-03-15T01:30:00.250Z").as_deref(), Some("2024-03-15T01:30:00.250+00:00"));
        assert_eq!(utc("2024-03-15 08:30:00").as_deref(), Some("2024-03-15T01:30:00+00:00"));
        assert_eq!(utc("2024-03-15 08:30:00+07:00").as_deref(), Some("2024-03-15T01:30:00+00:00"));
        assert_eq!(utc("2024-03-15 08:30:00+0700").as_deref(), Some("2024-03-15T01:30:00+00:00"));
        assert_eq!(utc("2024-03-15T08:30:00").as_deref(), Some("2024-03-15T01:30:00+00:00"));
        assert_eq!(utc("2024-03-15 08:30").as_deref(), Some("2024-03-15T01:30:00+00:00"));
        assert_eq!(utc("2024-03-15").as_deref(), Some("2024-03-14T17:00:00+00:00"));
        assert_eq!(utc(" 2024-03-15 ").as_deref(), Some("2024-03-14T17:00:00+00:00"));
        for bad in ["15/03/2024", "2024-13-01", "2024-03-15 25:00:00", "", "now"] {
            assert_eq!(utc(bad), None, "{bad}");
        }
        // The survey starts at the earliest accepted row.
        let import = read(&format!(
            "{HEADER}\n{GOOD}\n12.68,108.05,4,Ri6,2019,good,DL-1,2024-06-01 07:00:00\n12.68,108.05,4,Ri6,2019,good,DL-1,\n"
        ));
        assert_eq!(import.earliest_surveyed_at().unwrap().to_rfc3339(), "2024-06-01T00:00:00+00:00");
        assert_eq!(import.latest_surveyed_at().unwrap().to_rfc3339(), "2025-03-03T01:16:17+00:00");
        let survey = import.survey("Hoa", Utc::now());
        assert_eq!((survey.source.as_str(), survey.surveyor.as_str()), ("survey.csv", "Hoa"));
        assert_eq!(survey.surveyed_at, import.earliest_surveyed_at().unwrap());
        // The year boundary is judged in Vietnam time.
        assert!(problems_of("12.68,108.05,4,Ri6,2019,good,DL-1,2026-12-31T20:00:00Z")[0].contains("in the future"));
        assert!(problems_of("12.68,108.05,4,Ri6,2019,good,DL-1,2026-12-31T16:00:00Z").is_empty());
    }

    #[test]
    fn file_level_errors_name_the_file() {
        let err = |bytes: &[u8]| read_trees_csv(bytes, "survey.csv", 2026).unwrap_err().to_string();
        assert_eq!(err(b""), "survey.csv: the file is empty");
        assert_eq!(err(b"\xEF\xBB\xBF \r\n\n"), "survey.csv: the file is empty");
        assert_eq!(
            err(b"lat,lon,cultivar,health\n1,2,3,4\n"),
            "survey.csv: missing required column orchard (the header has: lat,lon,cultivar,health)"
        );
        assert_eq!(
            err(b"latitude,longitude,note\n"),
            "survey.csv: missing required columns cultivar, health, orchard (the header has: latitude,longitude,note)"
        );
        assert_eq!(
            err(b"lat,latitude,lon,cultivar,health,orchard\n"),
            "survey.csv: column lat appears more than once in the header"
        );
        assert!(err(b"\xFF\xFEl\0a\0t\0").contains("UTF-16"));
        assert!(err(b"l\xE0t,lon\n").contains("not UTF-8"));
        let e = read_trees_csv(&b""[..], "x.csv", 2026).unwrap_err();
        assert_eq!(e.file(), "x.csv");
        // A header alone is a valid, empty survey.
        let import = read(HEADER);
        assert_eq!((import.rows_read, import.rows.len()), (0, 0));
    }

    #[test]
    fn invalid_utf8_in_a_row_rejects_only_that_row() {
        let mut bytes = format!("{HEADER}\n").into_bytes();
        bytes.extend_from_slice(b"12.68,108.05,4,Ri\xFF6,2019,good,DL-1,\n");
        bytes.extend_from_slice(format!("{GOOD}\n").as_bytes());
        let import = read_trees_csv(bytes.as_slice(), "survey.csv", 2026).unwrap();
        assert_eq!(import.rows.len(), 1);
        let p = only_problem(&import);
        assert_eq!((p.line, p.field.as_str()), (2, "cultivar"));
        assert!(p.reason.contains("not UTF-8"));
    }

    #[test]
    fn reading_errors_are_reported() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let e = read_trees_csv(Failing, "survey.csv", 2026).unwrap_err();
        assert_eq!(e.to_string(), "survey.csv: cannot read: disk on fire");
    }

    #[test]
    fn whole_year_written_as_decimal_is_accepted() {
        let import = read(&format!("{HEADER}\n12.68,108.05,4,Ri6,2018.0,good,DL-1,\n"));
        assert_eq!(import.rows[0].tree.planted_year, Some(2018));
    }

    #[test]
    fn problems_with_huge_values_are_cut() {
        let huge = "9".repeat(10_000);
        let problems = rejected(&format!("{huge}x,108.05,4,Ri6,2019,good,DL-1,"));
        assert!(problems[0].len() < 200, "{}", problems[0]);
    }
}
