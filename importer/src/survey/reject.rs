//! Rejected records written back in their file's own format, each with an
//! added `error` column or property, so a volunteer can fix just those rows
//! and import the reject file again.

use std::io::Write;

use serde_json::Value;

use super::{Format, RawRecord, Record};
use crate::problem::RowProblem;
use crate::{Error, Result};

/// The shape of a CSV file, kept for its reject file.
#[derive(Debug, Clone)]
pub(crate) struct CsvShape {
    pub(crate) header: csv::ByteRecord,
    pub(crate) delimiter: u8,
    pub(crate) bom: bool,
    pub(crate) crlf: bool,
}

enum Sink {
    Csv { writer: Box<csv::Writer<Box<dyn Write + Send>>>, width: usize },
    GeoJson { out: Box<dyn Write + Send>, first: bool },
    GeoJsonSeq { out: Box<dyn Write + Send> },
    Gpx { out: Box<dyn Write + Send> },
    Kml { out: Box<dyn Write + Send> },
}

/// Writes rejected records ([`super::SurveySource::reject_writer`]).
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
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `field value: reason; ...` for the rejected problems (warnings follow).
fn describe(record: &Record, extra: &[RowProblem]) -> String {
    let mut all: Vec<&RowProblem> = record.problems.iter().chain(extra).collect();
    all.sort_by_key(|p| !p.is_rejected());
    all.iter()
        .map(|p| {
            let warn = if p.is_rejected() { "" } else { "warning: " };
            if p.value.is_empty() {
                format!("{warn}{}: {}", p.field, p.reason)
            } else {
                format!("{warn}{} {}: {}", p.field, p.value, p.reason)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl RejectWriter {
    pub(crate) fn new(
        mut out: Box<dyn Write + Send>,
        format: Format,
        csv: Option<CsvShape>,
        file: &str,
    ) -> Result<RejectWriter> {
        let io = |e: std::io::Error| Error::Io { file: format!("reject file of {file}"), source: e };
        let sink = match (format, csv) {
            (Format::Csv, Some(shape)) => {
                if shape.bom {
                    out.write_all(&[0xEF, 0xBB, 0xBF]).map_err(io)?;
                }
                let mut writer = csv::WriterBuilder::new()
                    .delimiter(shape.delimiter)
                    .flexible(true)
                    .terminator(if shape.crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                    .from_writer(out);
                let mut header = shape.header.clone();
                header.push_field(b"error");
                writer.write_byte_record(&header).map_err(|e| io(e.into()))?;
                Sink::Csv { writer: Box::new(writer), width: shape.header.len() }
            }
            (Format::GeoJson, _) | (Format::Csv, None) => {
                out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[\n").map_err(io)?;
                Sink::GeoJson { out, first: true }
            }
            (Format::GeoJsonSeq, _) => Sink::GeoJsonSeq { out },
            (Format::Gpx, _) => {
                out.write_all(
                    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                      <gpx version=\"1.1\" creator=\"orchardmap (rejected rows)\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n",
                )
                .map_err(io)?;
                Sink::Gpx { out }
            }
            (Format::Kml, _) => {
                out.write_all(
                    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                      <kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document>\n",
                )
                .map_err(io)?;
                Sink::Kml { out }
            }
        };
        Ok(RejectWriter { sink, file: file.to_owned() })
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io { file: format!("reject file of {}", self.file), source: e }
    }

    /// Writes one rejected record with its problems (and `extra` ones found
    /// after reading, such as an unknown orchard).
    pub fn write(&mut self, record: &Record, extra: &[RowProblem]) -> Result<()> {
        let error = describe(record, extra);
        let result: std::io::Result<()> = match (&mut self.sink, &record.raw) {
            (Sink::Csv { writer, width }, RawRecord::Csv(fields)) => {
                let mut row = fields.clone();
                while row.len() < *width {
                    row.push_field(b"");
                }
                row.push_field(error.as_bytes());
                writer.write_byte_record(&row).map_err(std::io::Error::from)
            }
            (Sink::GeoJson { out, first }, RawRecord::Json(feature)) => {
                let sep = if *first { "" } else { ",\n" };
                *first = false;
                write!(out, "{sep}{}", with_error(feature, &error))
            }
            (Sink::GeoJsonSeq { out }, RawRecord::Json(feature)) => writeln!(out, "{}", with_error(feature, &error)),
            (Sink::Gpx { out }, RawRecord::Xml { lon, lat, values }) => {
                let mut s = format!("<wpt lat=\"{}\" lon=\"{}\">", xml_escape(lat), xml_escape(lon));
                let mut desc = None;
                for (name, value) in values {
                    if name == "desc" {
                        desc = Some(value.clone());
                        continue;
                    }
                    s.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
                }
                let desc = match desc {
                    Some(d) => format!("{d} | error: {error}"),
                    None => format!("error: {error}"),
                };
                s.push_str(&format!("<desc>{}</desc></wpt>\n", xml_escape(&desc)));
                out.write_all(s.as_bytes())
            }
            (Sink::Kml { out }, RawRecord::Xml { lon, lat, values }) => {
                let mut s = String::from("<Placemark>");
                let mut data = String::new();
                for (name, value) in values {
                    if name == "name" || name == "description" {
                        s.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
                    } else {
                        data.push_str(&format!(
                            "<Data name=\"{}\"><value>{}</value></Data>",
                            xml_escape(name),
                            xml_escape(value)
                        ));
                    }
                }
                data.push_str(&format!("<Data name=\"error\"><value>{}</value></Data>", xml_escape(&error)));
                s.push_str(&format!("<ExtendedData>{data}</ExtendedData>"));
                if !lon.is_empty() || !lat.is_empty() {
                    s.push_str(&format!(
                        "<Point><coordinates>{},{}</coordinates></Point>",
                        xml_escape(lon),
                        xml_escape(lat)
                    ));
                }
                s.push_str("</Placemark>\n");
                out.write_all(s.as_bytes())
            }
            // A record of another format cannot reach this writer.
            _ => Ok(()),
        };
        result.map_err(|e| self.io(e))
    }

    /// Closes the document and flushes.
    pub fn finish(self) -> Result<()> {
        let file = self.file.clone();
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

fn with_error(feature: &Value, error: &str) -> Value {
    let mut f = feature.clone();
    if let Some(obj) = f.as_object_mut() {
        let props = obj.entry("properties").or_insert_with(|| Value::Object(Default::default()));
        if !props.is_object() {
            *props = Value::Object(Default::default());
        }
        if let Some(p) = props.as_object_mut() {
            p.insert("error".into(), Value::String(error.to_owned()));
        }
    }
    f
}
