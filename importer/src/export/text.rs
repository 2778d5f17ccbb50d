//! The text formats: GeoJSON, CSV and KML, written incrementally.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};

use super::{
    COLUMNS, ExportError, ExportFormat, ExportOptions, ExportResult, ExportRow, LAT, LON, Val, column_count, rfc3339,
    values,
};

/// Buffer between the writer and its output (one `write` call per 64 KiB).
const BUFFER: usize = 64 * 1024;

/// Where the text goes: CSV through the csv crate, the others as they are.
enum Sink<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Plain(BufWriter<W>),
}

/// Writes trees as GeoJSON, CSV or KML to `W`, one tree at a time, in
/// bounded memory (see the [module documentation](super)).
///
/// Call [`begin`](Self::begin) (or let the first [`write`](Self::write) do
/// it), [`write`](Self::write) for each tree, then [`finish`](Self::finish),
/// which completes the document (closing brackets, end tags) and gives the
/// output back. The output is buffered here: `W` need not be.
///
/// * GeoJSON: an RFC 7946 FeatureCollection, one Feature per line; the
///   feature `id` is the tree's id, coordinates have 7 decimals (about 1 cm),
///   absent values are `null`.
/// * CSV: a header row then one row per tree, UTF-8, RFC 4180 quoting,
///   coordinates in full precision, absent values empty, times RFC 3339 UTC.
/// * KML 2.2: a Document with one Placemark per tree (`name` = tag code,
///   `ExtendedData`/`Data` per present value, a `Point`).
pub struct TextExportWriter<W: Write> {
    format: ExportFormat,
    sink: Sink<W>,
    columns: usize,
    file: String,
    begun: bool,
    count: u64,
    buf: String,
}

impl<W: Write> std::fmt::Debug for TextExportWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextExportWriter")
            .field("format", &self.format)
            .field("file", &self.file)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl<W: Write> TextExportWriter<W> {
    /// A writer of `format` to `out`; `file` names the output in error
    /// messages. Writes nothing yet.
    ///
    /// # Errors
    /// [`ExportError::NotText`] for [`ExportFormat::GeoPackage`].
    pub fn new(format: ExportFormat, out: W, options: ExportOptions, file: impl Into<String>) -> ExportResult<Self> {
        let file = file.into();
        let sink = match format {
            ExportFormat::Csv => Sink::Csv(Box::new(
                csv::WriterBuilder::new().has_headers(false).buffer_capacity(BUFFER).from_writer(out),
            )),
            ExportFormat::GeoJson | ExportFormat::Kml => Sink::Plain(BufWriter::with_capacity(BUFFER, out)),
            ExportFormat::GeoPackage => return Err(ExportError::NotText { file, format }),
        };
        Ok(Self {
            format,
            sink,
            columns: column_count(options),
            file,
            begun: false,
            count: 0,
            buf: String::with_capacity(1024),
        })
    }

    /// The format written.
    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// Number of trees written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn io(&self, source: std::io::Error) -> ExportError {
        ExportError::Io { file: self.file.clone(), source }
    }

    /// Writes the start of the document (GeoJSON opening, CSV header, KML
    /// prologue). Does nothing when already done.
    ///
    /// # Errors
    /// [`ExportError::Io`] when the output fails.
    pub fn begin(&mut self) -> ExportResult<()> {
        if self.begun {
            return Ok(());
        }
        self.begun = true;
        let columns = &COLUMNS[..self.columns];
        let result = match &mut self.sink {
            Sink::Csv(csv) => csv.write_record(columns).map_err(std::io::Error::from),
            Sink::Plain(out) => match self.format {
                ExportFormat::GeoJson => out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":["),
                _ => out.write_all(KML_HEAD.as_bytes()),
            },
        };
        result.map_err(|e| self.io(e))
    }

    /// Writes one tree.
    ///
    /// # Errors
    /// [`ExportError::Value`] when the tree's position is not a finite
    /// number; [`ExportError::Io`] when the output fails.
    pub fn write(&mut self, row: &ExportRow<'_>) -> ExportResult<()> {
        self.begin()?;
        let tree = row.tree;
        if !tree.location.lon.is_finite() || !tree.location.lat.is_finite() {
            return Err(ExportError::Value {
                file: self.file.clone(),
                tree: tree.id.0,
                reason: format!("position {},{} is not a number", tree.location.lon, tree.location.lat),
            });
        }
        let values = values(row);
        let values = &values[..self.columns];
        self.buf.clear();
        let result = match &mut self.sink {
            Sink::Csv(csv) => write_csv(csv, values, &mut self.buf),
            Sink::Plain(out) => {
                match self.format {
                    ExportFormat::GeoJson => geojson_feature(&mut self.buf, tree.id.0, values, self.count == 0),
                    _ => kml_placemark(&mut self.buf, tree.id.0, tree.code.as_str(), values),
                }
                out.write_all(self.buf.as_bytes())
            }
        };
        result.map_err(|e| self.io(e))?;
        self.count += 1;
        Ok(())
    }

    /// Passes everything written so far on to the output and flushes it
    /// (an HTTP body sends it as one chunk). The document stays open.
    ///
    /// # Errors
    /// [`ExportError::Io`] when the output fails.
    pub fn flush(&mut self) -> ExportResult<()> {
        let result = match &mut self.sink {
            Sink::Csv(csv) => csv.flush(),
            Sink::Plain(out) => out.flush(),
        };
        result.map_err(|e| self.io(e))
    }

    /// Completes the document (an empty one when nothing was written),
    /// flushes it and gives the output back.
    ///
    /// # Errors
    /// [`ExportError::Io`] when the output fails.
    pub fn finish(mut self) -> ExportResult<W> {
        self.begin()?;
        let file = std::mem::take(&mut self.file);
        let io = |source| ExportError::Io { file: file.clone(), source };
        match self.sink {
            Sink::Csv(csv) => (*csv).into_inner().map_err(|e| io(e.into_error())),
            Sink::Plain(mut out) => {
                let tail: &[u8] = match self.format {
                    ExportFormat::GeoJson if self.count == 0 => b"]}\n",
                    ExportFormat::GeoJson => b"\n]}\n",
                    _ => KML_TAIL.as_bytes(),
                };
                out.write_all(tail).map_err(io)?;
                out.flush().map_err(io)?;
                out.into_inner().map_err(|e| io(e.into_error()))
            }
        }
    }
}

const KML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<kml xmlns=\"http://www.opengis.net/kml/2.2\">\n\
<Document>\n\
<name>orchardmap trees</name>\n";

const KML_TAIL: &str = "</Document>\n</kml>\n";

fn write_csv<W: Write>(csv: &mut csv::Writer<W>, values: &[Val<'_>], buf: &mut String) -> std::io::Result<()> {
    for value in values {
        buf.clear();
        match *value {
            Val::Null => {}
            Val::Int(v) => {
                let _ = write!(buf, "{v}");
            }
            Val::Real(v) if v.is_finite() => {
                let _ = write!(buf, "{v}");
            }
            Val::Real(_) => {}
            Val::Text(v) => {
                csv.write_field(v)?;
                continue;
            }
            Val::Time(t) => buf.push_str(&rfc3339(t)),
        }
        csv.write_field(buf.as_bytes())?;
    }
    csv.write_record(std::iter::empty::<&[u8]>())?;
    Ok(())
}

/// One GeoJSON feature (with the separator before it), position as geometry.
fn geojson_feature(buf: &mut String, id: i64, values: &[Val<'_>], first: bool) {
    buf.push_str(if first { "\n" } else { ",\n" });
    let _ = write!(buf, "{{\"type\":\"Feature\",\"id\":{id},\"geometry\":{{\"type\":\"Point\",\"coordinates\":[");
    push_coordinate(buf, &values[LON]);
    buf.push(',');
    push_coordinate(buf, &values[LAT]);
    buf.push_str("]},\"properties\":{");
    let mut first_property = true;
    for (i, (name, value)) in COLUMNS.iter().zip(values).enumerate() {
        if i == LON || i == LAT {
            continue;
        }
        if !first_property {
            buf.push(',');
        }
        first_property = false;
        buf.push('"');
        buf.push_str(name);
        buf.push_str("\":");
        match *value {
            Val::Null => buf.push_str("null"),
            Val::Int(v) => {
                let _ = write!(buf, "{v}");
            }
            Val::Real(v) if v.is_finite() => {
                let _ = write!(buf, "{v}");
            }
            Val::Real(_) => buf.push_str("null"),
            Val::Text(v) => push_json_string(buf, v),
            Val::Time(t) => push_json_string(buf, &rfc3339(t)),
        }
    }
    buf.push_str("}}");
}

/// One KML placemark on a line of its own.
fn kml_placemark(buf: &mut String, id: i64, code: &str, values: &[Val<'_>]) {
    let _ = write!(buf, "<Placemark id=\"tree-{id}\"><name>");
    push_xml(buf, code);
    buf.push_str("</name><ExtendedData>");
    for (i, (name, value)) in COLUMNS.iter().zip(values).enumerate() {
        if i == LON || i == LAT {
            continue;
        }
        let start = buf.len();
        let _ = write!(buf, "<Data name=\"{name}\"><value>");
        match *value {
            Val::Null => {
                buf.truncate(start);
                continue;
            }
            Val::Int(v) => {
                let _ = write!(buf, "{v}");
            }
            Val::Real(v) if v.is_finite() => {
                let _ = write!(buf, "{v}");
            }
            Val::Real(_) => {
                buf.truncate(start);
                continue;
            }
            Val::Text(v) => push_xml(buf, v),
            Val::Time(t) => buf.push_str(&rfc3339(t)),
        }
        buf.push_str("</value></Data>");
    }
    buf.push_str("</ExtendedData><Point><coordinates>");
    push_coordinate(buf, &values[LON]);
    buf.push(',');
    push_coordinate(buf, &values[LAT]);
    buf.push_str("</coordinates></Point></Placemark>\n");
}

/// A coordinate with 7 decimals (about 1 cm), trailing zeros dropped.
fn push_coordinate(buf: &mut String, value: &Val<'_>) {
    let Val::Real(v) = *value else {
        buf.push('0');
        return;
    };
    let start = buf.len();
    let _ = write!(buf, "{v:.7}");
    let trimmed = buf[start..].trim_end_matches('0').trim_end_matches('.').len();
    buf.truncate(start + trimmed);
    if &buf[start..] == "-0" {
        buf.truncate(start);
        buf.push('0');
    }
}

/// `text` as a JSON string (RFC 8259 escapes).
fn push_json_string(buf: &mut String, text: &str) {
    buf.push('"');
    for c in text.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", u32::from(c));
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

/// `text` escaped for XML 1.0 content and attribute values; characters XML
/// cannot carry (control characters, U+FFFE, U+FFFF) become U+FFFD.
fn push_xml(buf: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => buf.push_str("&amp;"),
            '<' => buf.push_str("&lt;"),
            '>' => buf.push_str("&gt;"),
            '"' => buf.push_str("&quot;"),
            '\'' => buf.push_str("&apos;"),
            '\r' => buf.push_str("&#13;"),
            '\t' | '\n' => buf.push(c),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => buf.push('\u{FFFD}'),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_have_seven_decimals_at_most() {
        let cases =
            [(108.12703644, "108.1270364"), (12.5, "12.5"), (-0.00000001, "0"), (100.0, "100"), (-1.25, "-1.25")];
        for (v, want) in cases {
            let mut s = String::new();
            push_coordinate(&mut s, &Val::Real(v));
            assert_eq!(s, want);
        }
    }

    #[test]
    fn escapes() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        s.clear();
        push_xml(&mut s, "<a & 'b' \"c\">\u{0}");
        assert_eq!(s, "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;\u{FFFD}");
    }
}
