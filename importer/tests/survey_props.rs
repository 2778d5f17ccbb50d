//! Property tests of `SurveySource`, every format:
//!
//! * no input makes a reader panic: arbitrary bytes, and the realistic files
//!   of `tests/data/` with random edits;
//! * every record of a generated file (hostile values: separators, quotes,
//!   newlines, markup, Vietnamese text, numbers out of range) comes out
//!   exactly once, in order, where it is in the file; and every rejected
//!   record written to a reject file reads back once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use geo_core::VIETNAM;
use importer::{Format, Record, RecordAt, Result, SourceOptions, SurveySource};
use proptest::collection::vec;
use proptest::prelude::*;

const FORMATS: [Option<Format>; 6] =
    [None, Some(Format::Csv), Some(Format::GeoJson), Some(Format::GeoJsonSeq), Some(Format::Gpx), Some(Format::Kml)];

fn opts(format: Option<Format>) -> SourceOptions {
    let mut opts = SourceOptions::default();
    opts.rules.this_year = 2026;
    opts.format = format;
    opts
}

fn open(bytes: &[u8], name: &str, opts: SourceOptions) -> Result<SurveySource> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_owned());
    SurveySource::open(Box::new(std::io::Cursor::new(bytes.to_vec())), name, ext.as_deref(), opts)
}

/// Reads everything, checking what must hold of any file; returns the records.
fn check(bytes: &[u8], name: &str, opts: SourceOptions) -> Vec<Record> {
    let source = match open(bytes, name, opts) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.to_string().starts_with(name), "{e}");
            return Vec::new();
        }
    };
    let mut records: Vec<Record> = Vec::new();
    let mut results = source.peekable();
    while let Some(result) = results.next() {
        match result {
            Ok(r) => records.push(r),
            Err(e) => {
                assert!(e.to_string().starts_with(name), "{e}");
                assert!(results.next().is_none(), "records after a fatal error");
            }
        }
    }
    for pair in records.windows(2) {
        assert!(pair[0].at < pair[1].at, "{} then {}", pair[0].at, pair[1].at);
    }
    for r in &records {
        let rejected = r.problems.iter().any(|p| p.is_rejected());
        assert_eq!(rejected, r.tree.is_none(), "{}: {:?}", r.at, r.problems);
        assert!(r.problems.iter().all(|p| p.file == name && p.line == r.at.number()));
        assert!(r.key.starts_with("h:") || r.key.starts_with("uuid:"), "{}", r.key);
        if let Some(t) = &r.tree {
            assert!(t.validate(&VIETNAM, 2026).is_ok(), "accepted an invalid tree: {t:?}");
        }
    }
    records
}

fn data_files() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Bytes that matter to some parser.
const TOKENS: [&[u8]; 16] =
    [b"\"", b",", b";", b"\t", b"\r\n", b"\n", b"\r", b"<", b">", b"</wpt>", b"{", b"}", b"]", b"\\", b"&amp", b"\xc3"];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    Replace(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Insert(at, t)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Replace(at, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Insert(at, t) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[t].iter().copied());
            }
            Edit::Replace(at, b) => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = b;
                }
            }
        }
    }
}

/// A value as volunteers (and spreadsheets) write them, good and bad.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        2 => Just("12.6405427".to_owned()),
        2 => Just("108.1270364".to_owned()),
        1 => Just("12,64".to_owned()),
        1 => Just("1e400".to_owned()),
        1 => Just("NaN".to_owned()),
        1 => Just("-0".to_owned()),
        2 => Just("Ri6".to_owned()),
        1 => Just("Chuồng Bò".to_owned()),
        1 => Just("tốt".to_owned()),
        1 => Just("good".to_owned()),
        1 => Just("2019".to_owned()),
        1 => Just("2031".to_owned()),
        1 => Just("\"quoted, with; separators\"".to_owned()),
        1 => Just("two\r\nlines\nand a third".to_owned()),
        1 => Just("<b>&amp; markup</b> ]]> <![CDATA[".to_owned()),
        1 => Just("{\"json\": [1, 2]}".to_owned()),
        1 => Just("Giống: Ri6; Tình trạng: tốt".to_owned()),
        1 => Just("8NXQ33M".to_owned()),
        1 => (-200.0f64..200.0).prop_map(|v| v.to_string()),
        1 => (0.0f64..40.0).prop_map(|v| format!("{v:.1}")),
        2 => "[ -~àáạăắđêếệôốơớưứ]{0,16}",
    ]
}

#[derive(Debug, Clone)]
struct Row {
    lat: String,
    lon: String,
    cultivar: String,
    health: String,
    planted_year: String,
    accuracy: String,
    note: String,
    blank_before: bool,
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop_oneof![3 => (8.5f64..23.0).prop_map(|v| format!("{v:.7}")), 1 => value()],
        prop_oneof![3 => (102.5f64..117.0).prop_map(|v| format!("{v:.7}")), 1 => value()],
        prop_oneof![2 => Just("Ri6".to_owned()), 1 => value()],
        prop_oneof![2 => Just("good".to_owned()), 1 => value()],
        value(),
        value(),
        value(),
        any::<bool>(),
    )
        .prop_map(|(lat, lon, cultivar, health, planted_year, accuracy, note, blank_before)| Row {
            lat,
            lon,
            cultivar,
            health,
            planted_year,
            accuracy,
            note,
            blank_before,
        })
}

/// XML text can hold any character but a few controls.
fn xml_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Debug, Clone, Copy)]
struct CsvStyle {
    delimiter: u8,
    crlf: bool,
    bom: bool,
}

/// The file, and for CSV the line of each row.
fn write_file(rows: &[Row], format: Format, style: CsvStyle) -> (Vec<u8>, Vec<u64>) {
    let mut out = Vec::new();
    let mut lines = Vec::new();
    match format {
        Format::Csv => {
            if style.bom {
                out.extend_from_slice(b"\xEF\xBB\xBF");
            }
            let end: &[u8] = if style.crlf { b"\r\n" } else { b"\n" };
            let mut w = csv::WriterBuilder::new()
                .delimiter(style.delimiter)
                .terminator(if style.crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                .from_writer(Vec::new());
            w.write_record(["lat", "lon", "cultivar", "health", "planted_year", "accuracy_m", "external_id", "note"])
                .unwrap();
            out.extend_from_slice(&w.into_inner().unwrap());
            for (i, r) in rows.iter().enumerate() {
                if r.blank_before {
                    out.extend_from_slice(end);
                }
                lines.push(out.iter().filter(|&&b| b == b'\n').count() as u64 + 1);
                let mut w = csv::WriterBuilder::new()
                    .delimiter(style.delimiter)
                    .terminator(if style.crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                    .from_writer(Vec::new());
                let id = format!("row-{i}");
                w.write_record([&r.lat, &r.lon, &r.cultivar, &r.health, &r.planted_year, &r.accuracy, &id, &r.note])
                    .unwrap();
                out.extend_from_slice(&w.into_inner().unwrap());
            }
        }
        Format::GeoJson | Format::GeoJsonSeq => {
            let features: Vec<String> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let geometry = match (r.lon.parse::<f64>(), r.lat.parse::<f64>()) {
                        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
                            serde_json::json!({"type": "Point", "coordinates": [x, y]})
                        }
                        _ => serde_json::Value::Null,
                    };
                    let mut props = serde_json::json!({
                        "cultivar": r.cultivar, "health": r.health, "planted_year": r.planted_year,
                        "accuracy_m": r.accuracy, "external_id": format!("row-{i}"), "note": r.note,
                    });
                    if geometry.is_null() {
                        props["lat"] = r.lat.clone().into();
                        props["lon"] = r.lon.clone().into();
                    }
                    serde_json::json!({"type": "Feature", "geometry": geometry, "properties": props}).to_string()
                })
                .collect();
            if format == Format::GeoJson {
                out.extend_from_slice(b"{\"type\": \"FeatureCollection\", \"name\": \"t\", \"features\": [\n");
                out.extend_from_slice(features.join(",\n").as_bytes());
                out.extend_from_slice(b"\n]}\n");
            } else {
                for (f, r) in features.iter().zip(rows) {
                    if r.blank_before {
                        out.extend_from_slice(b"\n\x1e");
                    }
                    out.extend_from_slice(f.as_bytes());
                    out.push(b'\n');
                }
            }
        }
        Format::Gpx => {
            out.extend_from_slice(b"<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" xmlns=\"http://www.topografix.com/GPX/1/1\" xmlns:om=\"urn:om\">\n");
            for (i, r) in rows.iter().enumerate() {
                let wpt = format!(
                    "<wpt lat=\"{}\" lon=\"{}\"><desc>{}</desc><extensions><om:cultivar>{}</om:cultivar>\
                     <om:health>{}</om:health><om:planted_year>{}</om:planted_year><om:accuracy_m>{}</om:accuracy_m>\
                     <om:external_id>row-{i}</om:external_id></extensions></wpt>\n",
                    xml_text(&r.lat),
                    xml_text(&r.lon),
                    xml_text(&r.note),
                    xml_text(&r.cultivar),
                    xml_text(&r.health),
                    xml_text(&r.planted_year),
                    xml_text(&r.accuracy)
                );
                out.extend_from_slice(wpt.as_bytes());
            }
            out.extend_from_slice(b"</gpx>\n");
        }
        Format::Kml => {
            out.extend_from_slice(
                b"<?xml version=\"1.0\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document><Folder>\n",
            );
            for (i, r) in rows.iter().enumerate() {
                let data = |name: &str, v: &str| format!("<Data name=\"{name}\"><value>{}</value></Data>", xml_text(v));
                let pm = format!(
                    "<Placemark><name>{}</name><ExtendedData>{}{}{}{}{}</ExtendedData><Point><coordinates>{},{}</coordinates></Point></Placemark>\n",
                    xml_text(&r.note),
                    data("cultivar", &r.cultivar),
                    data("health", &r.health),
                    data("planted_year", &r.planted_year),
                    data("accuracy_m", &r.accuracy),
                    data("external_id", &format!("row-{i}")),
                    xml_text(&r.lon),
                    xml_text(&r.lat),
                );
                out.extend_from_slice(pm.as_bytes());
            }
            out.extend_from_slice(b"</Folder></Document></kml>\n");
        }
    }
    (out, lines)
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn ext(format: Format) -> &'static str {
    match format {
        Format::Csv => "csv",
        Format::GeoJson => "geojson",
        Format::GeoJsonSeq => "ndjson",
        Format::Gpx => "gpx",
        Format::Kml => "kml",
    }
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::Csv),
        Just(Format::GeoJson),
        Just(Format::GeoJsonSeq),
        Just(Format::Gpx),
        Just(Format::Kml)
    ]
}

fn csv_style() -> impl Strategy<Value = CsvStyle> {
    (prop_oneof![Just(b','), Just(b';'), Just(b'\t')], any::<bool>(), any::<bool>())
        .prop_map(|(delimiter, crlf, bom)| CsvStyle { delimiter, crlf, bom })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_reader_panics_on_bytes(bytes in vec(any::<u8>(), 0..800), f in 0..FORMATS.len()) {
        check(&bytes, "fuzz.dat", opts(FORMATS[f]));
    }

    #[test]
    fn no_reader_panics_on_edited_real_files(file in 0usize..7, edits in vec(edit(), 1..8), f in 0..FORMATS.len()) {
        let files = data_files();
        let (name, mut bytes) = files[file % files.len()].clone();
        apply(&mut bytes, &edits);
        check(&bytes, &name, opts(FORMATS[f]));
    }

    #[test]
    fn every_record_comes_out_once(rows in vec(row(), 0..24), format in format(), style in csv_style()) {
        let (bytes, lines) = write_file(&rows, format, style);
        let name = format!("gen.{}", ext(format));
        let records = check(&bytes, &name, opts(None));
        prop_assert_eq!(records.len(), rows.len(), "{}", String::from_utf8_lossy(&bytes));
        for (i, r) in records.iter().enumerate() {
            prop_assert_eq!(r.external_id.clone(), Some(format!("row-{i}")));
            let at = if format == Format::Csv { RecordAt::Line(lines[i]) } else { RecordAt::Feature(i as u64) };
            prop_assert_eq!(r.at, at);
        }

        // Rejected records written to a reject file read back once each, in order.
        let Ok(source) = open(&bytes, &name, opts(None)) else {
            // Only an empty newline-delimited file cannot be opened.
            prop_assert!(rows.is_empty() && format == Format::GeoJsonSeq);
            return Ok(());
        };
        let out = Shared::default();
        let mut writer = source.reject_writer(Box::new(out.clone())).unwrap();
        for r in records.iter().filter(|r| r.is_rejected()) {
            writer.write(r, &[]).unwrap();
        }
        writer.finish().unwrap();
        let rejected: Vec<Option<String>> =
            records.iter().filter(|r| r.is_rejected()).map(|r| r.external_id.clone()).collect();
        let written = out.0.lock().unwrap().clone();
        let again = check(&written, &format!("rejected.{}", ext(format)), opts(None));
        let ids: Vec<Option<String>> = again.iter().map(|r| r.external_id.clone()).collect();
        prop_assert_eq!(ids, rejected, "{}", String::from_utf8_lossy(&written));
    }
}
