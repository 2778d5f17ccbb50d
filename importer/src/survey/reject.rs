//! Rejected records written back in their file's own format, each with its
//! errors added, so a volunteer can fix just those rows and import the
//! reject file again:
//!
//! * CSV: the same separator, BOM, line ends and header, plus an `error`
//!   column (reused when the file already has one: a reject file itself);
//! * GeoJSON / newline-delimited GeoJSON: the feature with an `error`
//!   property (a feature that is not valid JSON is kept as text in
//!   `invalid_json`);
//! * GPX: the waypoint as read, the error on its own `error:` line of `<desc>`;
//! * KML: the placemark as read, with a `<Data name="error">` element.
//!
//! The error text lists the rejections first, then the warnings:
//! `lat 108.1: latitude must be within -90..90; warning: cultivar Ri 7: ...`.

use std::io::Write;

use serde_json::Value;

use super::csv_source::CsvShape;
use super::{RawKind, Record};
use crate::problem::RowProblem;
use crate::{Error, Result};

/// The shape of the input, for its reject file.
pub(crate) enum Shape {
    Csv(CsvShape),
    /// `true` for newline-delimited GeoJSON.
    Json(bool),
    Xml {
        kml: bool,
        /// The input's root start tag (with its namespace declarations).
        root: Option<String>,
    },
}

enum Sink {
    Csv { writer: Box<csv::Writer<Box<dyn Write + Send>>>, width: usize, error_column: Option<usize> },
    GeoJson { out: Box<dyn Write + Send>, first: bool },
    GeoJsonSeq { out: Box<dyn Write + Send> },
    Gpx { out: Box<dyn Write + Send> },
    Kml { out: Box<dyn Write + Send> },
}

/// Writes rejected records ([`super::SurveySource::reject_writer`]); call
/// [`RejectWriter::finish`] to close the document.
pub struct RejectWriter {
    sink: Sink,
    file: String,
}

impl std::fmt::Debug for RejectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RejectWriter").field("file", &self.file).finish()
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The problems as one line: rejections first, then warnings.
fn describe(record: &Record, extra: &[RowProblem]) -> String {
    let mut all: Vec<&RowProblem> = record.problems.iter().chain(extra).collect();
    all.sort_by_key(|p| !p.is_rejected());
    all.iter()
        .map(|p| {
            let warn = if p.is_rejected() { "" } else { "warning: " };
            let text = if p.value.is_empty() {
                format!("{warn}{}: {}", p.field, p.reason)
            } else {
                format!("{warn}{} {}: {}", p.field, p.value, p.reason)
            };
            text.replace(['\n', '\r'], " ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

const GPX_ROOT: &str = "<gpx version=\"1.1\" creator=\"orchardmap\" xmlns=\"http://www.topografix.com/GPX/1/1\">";
const KML_ROOT: &str = "<kml xmlns=\"http://www.opengis.net/kml/2.2\">";

impl RejectWriter {
    pub(crate) fn new(mut out: Box<dyn Write + Send>, shape: Shape, file: &str) -> Result<RejectWriter> {
        let io = |e: std::io::Error| Error::Io { file: format!("reject file of {file}"), source: e };
        let sink = match shape {
            Shape::Csv(shape) => {
                if shape.bom {
                    out.write_all(b"\xEF\xBB\xBF").map_err(io)?;
                }
                let end: &[u8] = if shape.crlf { b"\r\n" } else { b"\n" };
                if shape.sep_line {
                    out.write_all(&[b"sep=".as_slice(), &[shape.delimiter], end].concat()).map_err(io)?;
                }
                let mut writer = csv::WriterBuilder::new()
                    .delimiter(shape.delimiter)
                    .flexible(true)
                    .terminator(if shape.crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                    .from_writer(out);
                let error_column = shape.header.iter().position(|h| h == b"error");
                let mut header = shape.header.clone();
                if error_column.is_none() {
                    header.push_field(b"error");
                }
                writer.write_byte_record(&header).map_err(|e| io(e.into()))?;
                Sink::Csv { writer: Box::new(writer), width: shape.header.len(), error_column }
            }
            Shape::Json(false) => {
                out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[\n").map_err(io)?;
                Sink::GeoJson { out, first: true }
            }
            Shape::Json(true) => Sink::GeoJsonSeq { out },
            Shape::Xml { kml: false, root } => {
                let root = root.filter(|r| r.starts_with("<gpx") || r.contains(":gpx")).unwrap_or(GPX_ROOT.into());
                write!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{root}\n").map_err(io)?;
                Sink::Gpx { out }
            }
            Shape::Xml { kml: true, root } => {
                let root = root.filter(|r| r.starts_with("<kml") || r.contains(":kml")).unwrap_or(KML_ROOT.into());
                write!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{root}<Document>\n").map_err(io)?;
                Sink::Kml { out }
            }
        };
        Ok(RejectWriter { sink, file: file.to_owned() })
    }

    /// Writes one record with its problems and `extra` ones found after
    /// reading (an unknown orchard, a duplicate ...).
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn write(&mut self, record: &Record, extra: &[RowProblem]) -> Result<()> {
        let error = describe(record, extra);
        let result: std::io::Result<()> = match (&mut self.sink, &record.raw.0) {
            (Sink::Csv { writer, width, error_column }, RawKind::Csv(fields)) => {
                let mut row = csv::ByteRecord::with_capacity(fields.byte_len() + error.len(), *width + 1);
                let last = fields.len().saturating_sub(1);
                for (i, field) in fields.iter().enumerate() {
                    // Records keep the `\r` of CRLF line ends on their last field.
                    let field = if i == last { field.strip_suffix(b"\r").unwrap_or(field) } else { field };
                    row.push_field(if Some(i) == *error_column { error.as_bytes() } else { field });
                }
                match *error_column {
                    Some(i) if i < row.len() => {}
                    Some(i) => {
                        while row.len() < i {
                            row.push_field(b"");
                        }
                        row.push_field(error.as_bytes());
                    }
                    None => {
                        while row.len() < *width {
                            row.push_field(b"");
                        }
                        row.push_field(error.as_bytes());
                    }
                }
                writer.write_byte_record(&row).map_err(std::io::Error::from)
            }
            (Sink::GeoJson { out, first }, RawKind::Json(_) | RawKind::JsonText(_)) => {
                let sep = if *first { "" } else { ",\n" };
                *first = false;
                write!(out, "{sep}{}", json_with_error(&record.raw.0, &error))
            }
            (Sink::GeoJsonSeq { out }, RawKind::Json(_) | RawKind::JsonText(_)) => {
                writeln!(out, "{}", json_with_error(&record.raw.0, &error))
            }
            (Sink::Gpx { out }, RawKind::Xml(raw)) => {
                let xml = &raw.xml;
                let text = match &raw.desc {
                    Some((start, end, desc)) if *start <= *end && *end <= xml.len() => {
                        let kept: Vec<&str> = desc.lines().filter(|l| !l.trim_start().starts_with("error:")).collect();
                        let mut new_desc = kept.join("\n");
                        if !new_desc.is_empty() {
                            new_desc.push('\n');
                        }
                        new_desc.push_str("error: ");
                        new_desc.push_str(&error);
                        splice(xml, *start, *end, &xml_escape(&new_desc))
                    }
                    _ => {
                        let desc = format!("<desc>{}</desc>", xml_escape(&format!("error: {error}")));
                        splice(xml, raw.insert_at, raw.insert_at, &desc)
                    }
                };
                writeln!(out, "{text}")
            }
            (Sink::Kml { out }, RawKind::Xml(raw)) => {
                let data = format!("<Data name=\"error\"><value>{}</value></Data>", xml_escape(&error));
                let insert = if raw.in_extended_data { data } else { format!("<ExtendedData>{data}</ExtendedData>") };
                writeln!(out, "{}", splice(&raw.xml, raw.insert_at, raw.insert_at, &insert))
            }
            // A record of another file cannot be written in this one's format.
            _ => {
                return Err(Error::Options(format!(
                    "{}: the rejected {} is not from this file's format",
                    self.file, record.at
                )));
            }
        };
        result.map_err(|e| Error::Io { file: format!("reject file of {}", self.file), source: e })
    }

    /// Closes the document and flushes.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn finish(self) -> Result<()> {
        let file = self.file;
        let io = |e: std::io::Error| Error::Io { file: format!("reject file of {file}"), source: e };
        match self.sink {
            Sink::Csv { mut writer, .. } => writer.flush().map_err(io),
            Sink::GeoJson { mut out, .. } => out.write_all(b"\n]}\n").and_then(|()| out.flush()).map_err(io),
            Sink::GeoJsonSeq { mut out } => out.flush().map_err(io),
            Sink::Gpx { mut out } => out.write_all(b"</gpx>\n").and_then(|()| out.flush()).map_err(io),
            Sink::Kml { mut out } => out.write_all(b"</Document></kml>\n").and_then(|()| out.flush()).map_err(io),
        }
    }
}

/// `text` with `start..end` replaced by `insert` (positions clamped to char boundaries).
fn splice(text: &str, start: usize, end: usize, insert: &str) -> String {
    let start = floor_boundary(text, start);
    let end = floor_boundary(text, end).max(start);
    let mut out = String::with_capacity(text.len() + insert.len());
    out.push_str(&text[..start]);
    out.push_str(insert);
    out.push_str(&text[end..]);
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn json_with_error(raw: &RawKind, error: &str) -> Value {
    let mut feature = match raw {
        RawKind::Json(v) => v.clone(),
        RawKind::JsonText(text) => serde_json::json!({
            "type": "Feature", "geometry": null, "properties": {"invalid_json": text}
        }),
        _ => Value::Null,
    };
    if !feature.is_object() {
        feature = serde_json::json!({"type": "Feature", "geometry": null, "properties": {"value": feature}});
    }
    if let Some(obj) = feature.as_object_mut() {
        let props = obj.entry("properties").or_insert_with(|| Value::Object(Default::default()));
        if !props.is_object() {
            let old = std::mem::take(props);
            *props = serde_json::json!({ "properties": old });
        }
        if let Some(p) = props.as_object_mut() {
            p.insert("error".into(), Value::String(error.to_owned()));
        }
    }
    feature
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splicing_respects_char_boundaries() {
        assert_eq!(splice("<a>ạb</a>", 3, 3, "X"), "<a>Xạb</a>");
        assert_eq!(splice("ạ", 1, 1, "X"), "Xạ");
        assert_eq!(splice("abc", 5, 9, "X"), "abcX");
        assert_eq!(xml_escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
