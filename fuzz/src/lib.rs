//! What the fuzz targets in `fuzz_targets/` share: the survey-file harness.
//!
//! A survey input is two option bytes followed by the file's bytes. The option
//! bytes choose what a volunteer or the service may choose: the import options
//! the CLI and `POST /api/imports` set through [`ImportOptions::set`] (format,
//! `crs`, `swap_xy`, `map`, `orchard`, `region`), the file name's extension
//! that guides format detection, and how the file reaches the reader (all at
//! once, as the bundled sample does, or through a small buffer, so records
//! straddle the buffer's refills as they do in any file larger than the
//! pipeline's 64 KiB buffer).

use std::io::{BufRead, BufReader, Cursor};

use importer::pipeline::ImportOptions;
use importer::{Error, Format, RecordAt, RejectWriter, Severity, SurveySource};

/// The file name every survey input is read under; every problem and error must name it.
pub const FILE: &str = "fuzz-survey";

/// Coordinate systems a volunteer passes with `--crs` (or the form field `crs`).
const CRSS: [&str; 8] = [
    "EPSG:9218",
    "EPSG:3405",
    "EPSG:32648",
    "EPSG:4756",
    "EPSG:3857",
    "EPSG:5897",
    "+proj=tmerc +lat_0=0 +lon_0=107.75 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 \
     +towgs84=-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278 +units=m",
    "EPSG:4326",
];

/// Buffer sizes of the reader under the survey: 0 = the whole file in one buffer.
const BUFFERS: [usize; 4] = [0, 1 << 16, 61, 7];

/// The survey formats, one per fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// CSV in every dialect (plain, KoboToolbox, ODK Central; `,` `;` tab).
    Csv,
    /// GeoJSON FeatureCollections and newline-delimited GeoJSON.
    GeoJson,
    /// GPX waypoints.
    Gpx,
    /// KML placemarks.
    Kml,
}

impl Family {
    /// File extensions a file of this family arrives with (`None`: no extension).
    fn extensions(self) -> [Option<&'static str>; 4] {
        match self {
            Family::Csv => [Some("csv"), Some("tsv"), Some("txt"), None],
            Family::GeoJson => [Some("geojson"), Some("ndjson"), Some("json"), Some("geojsonl")],
            Family::Gpx => [Some("gpx"), None, Some("xml"), Some("GPX")],
            Family::Kml => [Some("kml"), None, Some("xml"), Some("KML")],
        }
    }

    /// The `format` option a user would give for a file of this family.
    fn formats(self) -> [&'static str; 2] {
        match self {
            Family::Csv => ["csv", "kobo"],
            Family::GeoJson => ["geojson", "geojsonseq"],
            Family::Gpx => ["gpx", "gpx"],
            Family::Kml => ["kml", "kml"],
        }
    }

    /// True for the formats that take `--crs` (GPX and KML are WGS 84 by definition).
    fn takes_crs(self) -> bool {
        matches!(self, Family::Csv | Family::GeoJson)
    }
}

/// Reads one survey input the way the import pipeline does, and checks what the
/// pipeline relies on: every record either carries a valid tree or is rejected
/// with a problem, every problem and error names the file, records come in file
/// order, a fatal error ends the stream, and rejected records can be written back.
pub fn survey(data: &[u8], family: Family) {
    let [a, b, rest @ ..] = data else { return };
    let (a, b) = (*a, *b);
    let mut file = rest;

    let mut opts = ImportOptions::default();
    if a & 0b1 != 0 {
        let format = family.formats()[usize::from(a >> 1 & 1)];
        opts.set("format", format).expect("a known format");
    }
    if family.takes_crs() && a & 0b100 != 0 {
        opts.set("crs", CRSS[usize::from(a >> 3 & 0b111)]).expect("a built-in CRS");
    }
    if a & 0b100_0000 != 0 {
        opts.set("swap_xy", "true").expect("a flag");
    }
    let extension = family.extensions()[usize::from(b & 0b11)];
    let buffer = BUFFERS[usize::from(b >> 2 & 0b11)];
    if b & 0b1_0000 != 0 {
        opts.set("orchard", "DL-CK-EATIEU-001").expect("an orchard id");
    }
    if b & 0b10_0000 != 0 {
        opts.set("region", "-180,-90,180,90").expect("a bbox");
    }
    if a & 0b1000_0000 != 0 {
        // `--map field=column` given on the first line; the survey follows it.
        let end = file.iter().position(|&c| c == b'\n').unwrap_or(file.len());
        let Ok(map) = std::str::from_utf8(&file[..end]) else { return };
        if opts.set("map", map).is_err() {
            return;
        }
        file = file.get(end + 1..).unwrap_or_default();
    }
    let source = opts.source;
    let rules = source.rules.clone();

    let name = match extension {
        Some(ext) => format!("{FILE}.{ext}"),
        None => FILE.to_owned(),
    };
    let ext = extension.map(str::to_ascii_lowercase);
    let bytes = file.to_vec();
    let reader: Box<dyn BufRead + Send> = match buffer {
        0 => Box::new(Cursor::new(bytes)),
        n => Box::new(BufReader::with_capacity(n, Cursor::new(bytes))),
    };
    let mut source = match SurveySource::open(reader, &name, ext.as_deref(), source) {
        Ok(source) => source,
        Err(e) => return check_error(&e, &name),
    };
    let format = source.format();
    let _ = source.mapping().to_string();
    let mut rejects = match source.reject_writer(Box::new(Vec::new())) {
        Ok(w) => Some(w),
        Err(e) => {
            check_error(&e, &name);
            None
        }
    };

    let mut last: Option<RecordAt> = None;
    let mut failed = false;
    for item in source.by_ref() {
        assert!(!failed, "a record after a fatal error");
        let record = match item {
            Ok(record) => record,
            Err(e) => {
                check_error(&e, &name);
                failed = true;
                continue;
            }
        };
        match (format, record.at) {
            (Format::Csv, RecordAt::Line(n)) => assert!(n >= 2, "CSV record at line {n}: the header is line 1"),
            (Format::Csv, at) => panic!("CSV record at {at}"),
            (_, RecordAt::Feature(_)) => {}
            (_, at) => panic!("{format} record at {at}"),
        }
        if let Some(before) = last {
            assert!(record.at > before, "record at {} after {before}", record.at);
        }
        last = Some(record.at);
        assert!(
            record.key.starts_with("uuid:") || record.key.starts_with("h:"),
            "record key {:?} is neither uuid: nor h:",
            record.key
        );
        for p in &record.problems {
            assert_eq!(p.file, name, "problem {p} does not name the file");
            assert_eq!(p.line, record.at.number(), "problem {p} is not at the record's {}", record.at);
            let _ = p.to_string();
        }
        match &record.tree {
            Some(tree) => {
                assert!(
                    record.problems.iter().all(|p| p.severity == Severity::Warning),
                    "an accepted record with a rejection: {:?}",
                    record.problems
                );
                assert!(
                    rules.region.bbox.contains(tree.location),
                    "accepted tree at {:?} outside the region {:?}",
                    tree.location,
                    rules.region.bbox
                );
                if let Err(e) = tree.validate(&rules.region, rules.this_year) {
                    panic!("accepted tree {tree:?} fails validation: {e}");
                }
            }
            None => assert!(
                record.problems.iter().any(|p| p.severity == Severity::Rejected),
                "a rejected record without a rejection: {:?}",
                record.problems
            ),
        }
        if record.is_rejected() {
            if let Some(w) = rejects.as_mut() {
                write_back(w, &record, &name);
            }
        }
    }
    if let Some(w) = rejects {
        if let Err(e) = w.finish() {
            check_error(&e, &name);
        }
    }
}

fn write_back(w: &mut RejectWriter, record: &importer::Record, name: &str) {
    if let Err(e) = w.write(record, &[]) {
        check_error(&e, name);
    }
}

/// An error about the file must name it (options errors name the option and the file).
fn check_error(e: &Error, name: &str) {
    let message = e.to_string();
    match e {
        Error::Options(_) => assert!(message.contains(name), "options error {message:?} does not name the file"),
        Error::Store(_) | Error::Internal(_) => panic!("reading a survey gave {message:?}"),
        _ => {
            assert_eq!(e.file(), name, "error {message:?} is about another file");
            assert!(message.starts_with(name), "error {message:?} does not start with the file name");
        }
    }
}
