//! Delimited text: `,` `;` or tab (sniffed from the header, or Excel's
//! `sep=;` first line), with or without a BOM, LF, CRLF or CR line ends,
//! quoted fields with separators and newlines inside. KoboToolbox and ODK
//! Central exports are CSV with their own column names ([`super::field_of`]).
//!
//! Rows are read one at a time into one reused `csv::ByteRecord`. Each
//! record's line is the physical line where it starts, counted from the
//! reader's position and the newlines inside the row's quoted fields.

use std::io::{BufRead, Read};

use super::build::{Builder, Cache, Values};
use super::{Context, Field, MAX_RECORD_BYTES, Mapping, RawKind, RawRecord, Record, RecordAt, field_of};
use crate::text::fold;
use crate::{Error, Result};

/// The fields of a CSV row, kept for the reject file in one allocation:
/// the field bytes, then each field's end as a little-endian `u32`, then the
/// number of fields as a `u32`.
#[derive(Clone)]
pub(crate) struct CsvFields(Box<[u8]>);

impl CsvFields {
    fn of(record: &csv::ByteRecord) -> CsvFields {
        let bytes = record.as_slice();
        let mut out = Vec::with_capacity(bytes.len() + 4 * (record.len() + 1));
        out.extend_from_slice(bytes);
        for i in 0..record.len() {
            let end = record.range(i).map_or(0, |r| r.end);
            out.extend_from_slice(&(end as u32).to_le_bytes());
        }
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        CsvFields(out.into_boxed_slice())
    }

    fn word(&self, at: usize) -> usize {
        let mut w = [0u8; 4];
        if let Some(b) = self.0.get(at..at + 4) {
            w.copy_from_slice(b);
        }
        u32::from_le_bytes(w) as usize
    }

    /// The fields, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let n = self.word(self.0.len().saturating_sub(4));
        let ends_at = self.0.len().saturating_sub(4 * (n + 1));
        let mut start = 0;
        (0..n).map(move |i| {
            let end = self.word(ends_at + 4 * i).clamp(start, ends_at);
            let field = &self.0[start..end];
            start = end;
            field
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.word(self.0.len().saturating_sub(4))
    }

    pub(crate) fn byte_len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for CsvFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

/// What a reject file needs to look like its input.
#[derive(Debug, Clone)]
pub(crate) struct CsvShape {
    /// Column names (trimmed).
    pub(crate) header: csv::ByteRecord,
    pub(crate) delimiter: u8,
    pub(crate) bom: bool,
    pub(crate) crlf: bool,
    /// The file started with Excel's `sep=` line.
    pub(crate) sep_line: bool,
}

/// The file as the csv reader sees it: CR-only line ends turned into LF,
/// and a final LF added when the last line has none, so that every record
/// ends with exactly one consumed `\n` (which the line count relies on).
struct CsvInput {
    inner: Box<dyn BufRead + Send>,
    cr_only: bool,
    last: Option<u8>,
    finished: bool,
    /// Bytes read since the last record ended (reset by [`CsvSource`]): a
    /// record larger than [`MAX_RECORD_BYTES`] is an error, not a reason to
    /// hold the rest of the file in memory (a quote that is never closed).
    since_record: usize,
}

/// What [`CsvInput`] reports when a record grows too large.
const TOO_LARGE: &str = "record too large";

impl Read for CsvInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            if !self.finished && self.last.is_some_and(|b| b != b'\n') {
                self.finished = true;
                self.last = Some(b'\n');
                buf[0] = b'\n';
                return Ok(1);
            }
            return Ok(0);
        }
        let chunk = &mut buf[..n];
        if self.cr_only {
            for b in chunk.iter_mut() {
                if *b == b'\r' {
                    *b = b'\n';
                }
            }
        }
        self.since_record += n;
        if self.since_record > MAX_RECORD_BYTES + READ_BUFFER {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, TOO_LARGE));
        }
        self.last = Some(chunk[n - 1]);
        Ok(n)
    }
}

/// The separator of the header line: the most frequent of `,` `;` tab outside quotes.
fn sniff(head: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            b'\n' | b'\r' if !quoted => break,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

pub(crate) struct CsvSource {
    reader: csv::Reader<CsvInput>,
    record: csv::ByteRecord,
    /// Column of each field.
    columns: [Option<usize>; Field::COUNT],
    shape: CsvShape,
    /// Lines before what the csv reader sees (Excel's `sep=` line).
    line_offset: u64,
    /// The last line of the last record read.
    last_line: u64,
    cache: Cache,
    done: bool,
}

/// The csv reader's buffer.
const READ_BUFFER: usize = 1 << 16;

/// `after_line`: the last line of the last record read.
fn csv_error(file: &str, e: csv::Error, after_line: u64) -> Error {
    let line = e.position().map(csv::Position::line);
    match e.into_kind() {
        csv::ErrorKind::Io(source) if source.to_string() == TOO_LARGE => Error::Malformed {
            file: file.to_owned(),
            reason: format!(
                "the record after line {after_line} is larger than {} MiB: is a quote (\") never closed?",
                MAX_RECORD_BYTES >> 20
            ),
        },
        csv::ErrorKind::Io(source) => Error::Io { file: file.to_owned(), source },
        other => Error::Malformed {
            file: file.to_owned(),
            reason: match line {
                Some(line) => format!("line {line}: {other:?}"),
                None => format!("{other:?}"),
            },
        },
    }
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    record.as_slice().iter().all(u8::is_ascii_whitespace)
}

/// The index of `column` among `names`: the exact name, else the only name
/// equal to it once folded (so `--map lat=vi do` finds `Vĩ độ`).
fn find_column(names: &[String], column: &str) -> Option<usize> {
    if let Some(i) = names.iter().position(|n| n == column) {
        return Some(i);
    }
    let want = fold(column);
    let mut found = names.iter().enumerate().filter(|(_, n)| fold(n) == want).map(|(i, _)| i);
    match (found.next(), found.next()) {
        (Some(i), None) => Some(i),
        _ => None,
    }
}

/// Columns holding a Kobo raw geopoint: `X` beside `_X_latitude`.
fn kobo_geopoints(names: &[String]) -> Vec<usize> {
    let labels: Vec<String> = names
        .iter()
        .filter_map(|n| {
            let base = n.rsplit('/').next().unwrap_or(n);
            let key = fold(base);
            (base.starts_with('_') && key.ends_with("latitude")).then(|| key.trim_end_matches("latitude").to_owned())
        })
        .filter(|label| !label.is_empty())
        .collect();
    names
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            let base = n.rsplit('/').next().unwrap_or(n);
            !base.starts_with('_') && labels.contains(&fold(base))
        })
        .map(|(i, _)| i)
        .collect()
}

impl CsvSource {
    pub(crate) fn open(mut reader: Box<dyn BufRead + Send>, ctx: &mut Context) -> Result<(CsvSource, Mapping)> {
        let file = ctx.file.clone();
        let io = |e: std::io::Error| Error::Io { file: file.clone(), source: e };
        let bom = reader.fill_buf().map_err(io)?.starts_with(b"\xEF\xBB\xBF");
        if bom {
            reader.consume(3);
        }
        // Excel's `sep=;` line names the separator.
        let mut delimiter = None;
        let mut line_offset = 0;
        {
            let head = reader.fill_buf().map_err(io)?;
            if head.len() >= 5 && head[..4].eq_ignore_ascii_case(b"sep=") && matches!(head.get(5), Some(b'\r' | b'\n'))
            {
                delimiter = Some(head[4]);
                let end = head.iter().position(|&b| b == b'\n').map_or(head.len(), |i| i + 1);
                reader.consume(end);
                line_offset = 1;
            }
        }
        let head = reader.fill_buf().map_err(io)?;
        let delimiter = delimiter.unwrap_or_else(|| sniff(head));
        let first_line_end = head.iter().position(|&b| b == b'\n');
        let cr_only = first_line_end.is_none() && head.contains(&b'\r');
        let crlf = cr_only || first_line_end.is_some_and(|i| i > 0 && head[i - 1] == b'\r');

        let input = CsvInput { inner: reader, cr_only, last: None, finished: false, since_record: 0 };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(false)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(READ_BUFFER)
            .from_reader(input);
        let mut record = csv::ByteRecord::new();
        loop {
            if !reader.read_byte_record(&mut record).map_err(|e| csv_error(&file, e, line_offset))? {
                return Err(Error::Empty { file });
            }
            if !is_blank(&record) {
                break;
            }
        }
        let mut names = Vec::with_capacity(record.len());
        for raw in record.iter() {
            let name = std::str::from_utf8(raw).map_err(|_| Error::Encoding {
                file: file.clone(),
                reason: "the header is not UTF-8 text; save the file as \"CSV UTF-8\"".into(),
            })?;
            names.push(name.trim().to_owned());
        }

        // Detected fields (first column wins), Kobo raw geopoints, then the overrides.
        let mut columns: [Option<usize>; Field::COUNT] = [None; Field::COUNT];
        for (i, name) in names.iter().enumerate() {
            if let Some(field) = field_of(name).filter(|f| !ctx.is_overridden(*f)) {
                columns[field.index()].get_or_insert(i);
            }
        }
        if !ctx.is_overridden(Field::Geopoint) {
            if let Some(&i) = kobo_geopoints(&names).first() {
                if columns.iter().all(|c| *c != Some(i)) {
                    columns[Field::Geopoint.index()] = Some(i);
                }
            }
        }
        for (field, column) in &ctx.overrides {
            let Some(column) = column else {
                columns[field.index()] = None;
                continue;
            };
            let Some(i) = find_column(&names, column) else {
                return Err(Error::Mapping {
                    file,
                    reason: format!("--map {field}={column}: no such column (the header has: {})", names.join(", ")),
                });
            };
            // The column now holds this field only.
            for c in columns.iter_mut() {
                if *c == Some(i) {
                    *c = None;
                }
            }
            columns[field.index()] = Some(i);
        }
        let has = |f: Field| columns[f.index()].is_some();
        for (a, b) in [(Field::Lat, Field::Lon), (Field::X, Field::Y)] {
            if has(a) != has(b) {
                let (found, missing) = if has(a) { (a, b) } else { (b, a) };
                return Err(Error::Mapping {
                    file,
                    reason: format!(
                        "a {found} column but no {missing} column (use --map {missing}=COLUMN); the header has: {}",
                        names.join(", ")
                    ),
                });
            }
        }
        if !(has(Field::Lat) || has(Field::X) || has(Field::Geopoint)) {
            return Err(Error::Mapping {
                file,
                reason: format!(
                    "no coordinate columns: expected lat and lon (vĩ độ, kinh độ), x and y (with --crs), or a \
                     KoboToolbox/ODK geopoint; name them with --map lat=COLUMN --map lon=COLUMN. The header has: {}",
                    names.join(", ")
                ),
            });
        }

        let mapping = Mapping {
            position: None,
            fields: Field::ALL.iter().filter_map(|f| columns[f.index()].map(|i| (*f, names[i].clone()))).collect(),
            ignored: names
                .iter()
                .enumerate()
                .filter(|(i, n)| !n.is_empty() && !columns.contains(&Some(*i)))
                .map(|(_, n)| n.clone())
                .collect(),
        };
        ctx.decimal_comma = delimiter != b',';
        let header = names.iter().map(String::as_bytes).collect::<csv::ByteRecord>();
        let shape = CsvShape { header, delimiter, bom, crlf, sep_line: line_offset > 0 };
        let last_line = reader.position().line().saturating_sub(1) + line_offset;
        let src =
            CsvSource { reader, record, columns, shape, line_offset, last_line, cache: Cache::default(), done: false };
        Ok((src, mapping))
    }

    pub(crate) fn shape(&self) -> CsvShape {
        self.shape.clone()
    }

    pub(crate) fn next_record(&mut self, ctx: &Context) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        loop {
            self.reader.get_mut().since_record = 0;
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(csv_error(&ctx.file, e, self.last_line)));
                }
            }
            self.last_line = self.reader.position().line().saturating_sub(1) + self.line_offset;
            if !is_blank(&self.record) {
                break;
            }
        }
        let record = &self.record;
        // Every record ends with one consumed `\n` (see `CsvInput`): it starts
        // that many lines, and those inside its quoted fields, before the end.
        let start = record.position().map_or(1, csv::Position::line);
        let end = self.reader.position().line();
        let inside = record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
        let line = end.saturating_sub(inside + 1).max(start) + self.line_offset;

        let mut builder = Builder::new(ctx, RecordAt::Line(line));
        let width = self.shape.header.len();
        if record.len() > width {
            builder.reject(
                "row",
                "",
                format!(
                    "has {} fields but the header has {width} (quote values that contain the separator)",
                    record.len()
                ),
            );
        }
        let mut values = Values::new();
        // One UTF-8 check for the whole row (fields split at ASCII bytes, so
        // each is valid when the row is); field by field only when it fails.
        let whole = std::str::from_utf8(record.as_slice()).ok();
        for field in Field::ALL {
            let Some(i) = self.columns[field.index()] else { continue };
            if let (Some(whole), Some(range)) = (whole, record.range(i)) {
                if let Some(text) = whole.get(range) {
                    values.set(field, text);
                }
                continue;
            }
            let Some(bytes) = record.get(i) else { continue };
            match std::str::from_utf8(bytes) {
                Ok(text) => values.set(field, text),
                Err(_) => builder.fail(
                    field,
                    &String::from_utf8_lossy(bytes),
                    "is not UTF-8 text (save the file as \"CSV UTF-8\")",
                ),
            }
        }
        let raw = RawRecord(RawKind::Csv(CsvFields::of(record)));
        Some(Ok(builder.finish(&mut self.cache, &values, None, None, raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_separator_outside_quotes() {
        assert_eq!(sniff(b"lat,lon,cultivar\n1;2;3"), b',');
        assert_eq!(sniff(b"lat;lon;\"a,b,c,d\"\n"), b';');
        assert_eq!(sniff(b"lat\tlon\tcultivar\r\n"), b'\t');
        assert_eq!(sniff(b"lat"), b',');
    }

    #[test]
    fn rows_are_kept_whole_in_one_buffer() {
        for fields in [vec![], vec![""], vec!["a", "", "bc", "ạ\r\n"], vec![""; 300]] {
            let record: csv::ByteRecord = fields.iter().map(|f| f.as_bytes()).collect();
            let kept = CsvFields::of(&record);
            assert_eq!(kept.len(), fields.len());
            assert_eq!(kept.iter().collect::<Vec<_>>(), fields.iter().map(|f| f.as_bytes()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn kobo_raw_geopoints_sit_beside_their_parts() {
        let names: Vec<String> =
            ["start", "nhom/Vị trí cây", "nhom/_Vị trí cây_latitude", "nhom/_Vị trí cây_longitude"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(kobo_geopoints(&names), vec![1]);
        assert_eq!(find_column(&names, "start"), Some(0));
        assert_eq!(find_column(&names, "NHOM/vi tri cay"), Some(1));
        assert_eq!(find_column(&names, "nothing"), None);
    }
}
