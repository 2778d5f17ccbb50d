//! Survey files as volunteers bring them (`tests/data/`), read through
//! `SurveySource`: KoboToolbox and ODK Central CSV exports, VN-2000
//! coordinates, GeoJSON from QGIS, newline-delimited GeoJSON, GPX from a
//! handheld unit, KML from Google Earth; and the committed sample.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use geo_core::{Health, TreeCode, TreeRef, VIETNAM};
use importer::{Format, Record, RecordAt, Reprojector, SourceOptions, SurveySource};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn opts() -> SourceOptions {
    let mut opts = SourceOptions::default();
    opts.rules.this_year = 2026;
    opts
}

fn open(name: &str, opts: SourceOptions) -> SurveySource {
    let file = std::fs::File::open(data(name)).unwrap();
    let ext = name.rsplit_once('.').map(|(_, e)| e);
    SurveySource::open(Box::new(BufReader::new(file)), name, ext, opts).unwrap()
}

fn read(name: &str, opts: SourceOptions) -> Vec<Record> {
    open(name, opts).map(|r| r.unwrap()).collect()
}

fn lines(records: &[Record], accepted: bool) -> Vec<u64> {
    records.iter().filter(|r| r.is_rejected() != accepted).map(|r| r.at.number()).collect()
}

fn messages(r: &Record) -> Vec<String> {
    r.problems.iter().map(|p| format!("{} {}: {}", p.field, p.value, p.reason)).collect()
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

/// Reads a file, writes its rejected records to a reject file and reads that back.
fn rejects_round_trip(name: &str, opts: SourceOptions) -> (Vec<Record>, Vec<u8>, Vec<Record>) {
    let source = open(name, opts.clone());
    let out = Shared::default();
    let mut writer = source.reject_writer(Box::new(out.clone())).unwrap();
    let records: Vec<Record> = source.map(|r| r.unwrap()).collect();
    for r in records.iter().filter(|r| r.is_rejected()) {
        writer.write(r, &[]).unwrap();
    }
    writer.finish().unwrap();
    let bytes = out.0.lock().unwrap().clone();
    let ext = name.rsplit_once('.').map(|(_, e)| e);
    let again = SurveySource::open(Box::new(std::io::Cursor::new(bytes.clone())), "rejected", ext, opts)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    (records, bytes, again)
}

#[test]
fn kobo_export_with_bom_crlf_semicolons_and_vietnamese_labels() {
    let source = open("kobo_vi.csv", opts());
    assert_eq!(source.format(), Format::Csv);
    let mapping = source.mapping().to_string();
    for line in [
        "lat <- nhom_cay/_Vị trí cây_latitude",
        "lon <- nhom_cay/_Vị trí cây_longitude",
        "geopoint <- nhom_cay/Vị trí cây",
        "accuracy_m <- nhom_cay/_Vị trí cây_precision",
        "cultivar <- nhom_cay/Giống",
        "planted_year <- nhom_cay/Năm trồng",
        "health <- nhom_cay/Tình trạng",
        "orchard <- nhom_cay/Mã vườn",
        "height_m <- nhom_cay/Chiều cao (m)",
        "submitted_at <- _submission_time",
        "external_id <- _uuid",
    ] {
        assert!(mapping.lines().any(|l| l == line), "{line} missing from\n{mapping}");
    }
    assert!(mapping.contains("(not used: start, end, nhom_cay/Ghi chú, _id, _validation_status"), "{mapping}");

    let rs: Vec<Record> = source.map(|r| r.unwrap()).collect();
    // Line 3's note spans two lines; line 10 is blank.
    assert_eq!(rs.iter().map(|r| r.at.number()).collect::<Vec<_>>(), vec![2, 3, 5, 6, 7, 8, 9, 11]);
    assert_eq!(lines(&rs, true), vec![2, 3, 5, 7, 9, 11]);
    assert_eq!(messages(&rs[3]), vec!["accuracy_m 32.5: GPS accuracy is worse than 25 m: survey this tree again"]);
    assert_eq!(messages(&rs[5]), vec!["planted_year 2031: is in the future (this year is 2026)"]);
    assert_eq!(messages(&rs[2]), vec!["cultivar Ri 7: is not a known cultivar; did you mean Ri6?"]);
    assert!(!rs[2].problems[0].is_rejected());
    assert_eq!(messages(&rs[4]), vec!["accuracy_m 12: GPS accuracy is worse than 10 m"]);

    let t = rs[1].tree.as_ref().unwrap();
    assert_eq!(
        (t.health, t.height_m, t.accuracy_m),
        (Health::Fair, Some(5.5), Some(3.9)),
        "decimal comma in a ';' file"
    );
    let dead = rs[6].tree.as_ref().unwrap();
    assert_eq!((dead.cultivar.as_str(), dead.health), ("Monthong", Health::Dead), "Thái / Chết");
    assert_eq!(rs[7].orchard, None);
    assert_eq!(rs[7].tree.as_ref().unwrap().orchard_id.as_str(), "unassigned");
    assert_eq!(rs[0].key, "uuid:6f1c2a44-6d0e-4a53-9d3b-0b9f6f2b2f11");
    assert_eq!(rs[0].surveyed_at.unwrap().to_rfc3339(), "2025-03-03T01:12:02+00:00");
    assert!(rs.iter().all(|r| r.key.starts_with("uuid:")));
}

#[test]
fn kobo_rejects_keep_the_export_shape() {
    let (records, bytes, again) = rejects_round_trip("kobo_vi.csv", opts());
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("\u{feff}start;end;nhom_cay/Mã vườn;"));
    assert!(text.split('\n').next().unwrap().ends_with(";_index;error\r"));
    assert_eq!(text.matches("\r\n").count(), 3, "header and two rows, CRLF");
    assert!(text.contains(";GPS yếu dưới tán;40211004;7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f;"));
    let rejected: Vec<&Record> = records.iter().filter(|r| r.is_rejected()).collect();
    assert_eq!(again.len(), rejected.len());
    for (a, b) in again.iter().zip(&rejected) {
        assert_eq!(a.key, b.key);
        assert_eq!(messages(a), messages(b), "the same problems again");
    }
}

#[test]
fn odk_central_export() {
    let source = open("odk_central.csv", opts());
    let mapping = source.mapping().to_string();
    for line in [
        "lat <- tree-location-Latitude",
        "accuracy_m <- tree-location-Accuracy",
        "cultivar <- tree-cultivar",
        "planted_year <- tree-planted_year",
        "code <- tree-tag",
        "girth_cm <- tree-girth",
        "submitted_at <- SubmissionDate",
        "external_id <- meta-instanceID",
    ] {
        assert!(mapping.lines().any(|l| l == line), "{line} missing from\n{mapping}");
    }
    assert!(mapping.contains("KEY, SubmitterID, SubmitterName"), "{mapping}");
    let rs: Vec<Record> = source.map(|r| r.unwrap()).collect();
    assert_eq!(lines(&rs, true), vec![2, 3]);
    assert_eq!(rs[0].key, "uuid:a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!(rs[0].external_id.as_deref(), Some("uuid:a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a5b"));
    assert_eq!(rs[0].target, Some(TreeRef::Code(TreeCode::parse("8NXQ33M").unwrap())));
    assert_eq!(rs[0].tree.as_ref().unwrap().girth_cm, Some(95.0));
    assert_eq!(rs[0].surveyed_at.unwrap().to_rfc3339(), "2025-03-04T02:01:11.532+00:00");
    assert_eq!(messages(&rs[2]), vec!["girth_cm abc: is not a number"]);
    assert!(messages(&rs[3])[0].starts_with("code 8NXQ33N: "));
}

/// Expected positions from PROJ 9.1.1 (`cs2cs EPSG:4326 EPSG:9218`, /work/shared/data/crs-reference.csv).
const VN2000_LAT_LON: [(f64, f64); 3] = [(12.5, 108.1), (12.95, 108.65), (13.3, 108.4)];

fn assert_near(r: &Record, (lat, lon): (f64, f64)) {
    let p = r.tree.as_ref().unwrap_or_else(|| panic!("{} rejected: {:?}", r.at, messages(r))).location;
    // 1e-7 degrees is about a centimetre.
    assert!((p.lat - lat).abs() < 1.5e-7 && (p.lon - lon).abs() < 1.5e-7, "{}: {p:?} vs {lat},{lon}", r.at);
}

#[test]
fn vn2000_eastings_and_northings_with_crs() {
    let mut o = opts();
    o.crs = Some(Reprojector::parse("EPSG:9218").unwrap());
    let rs = read("vn2000_daklak.csv", o.clone());
    for (r, expected) in rs.iter().zip(VN2000_LAT_LON) {
        assert_near(r, expected);
    }
    assert_eq!(
        messages(&rs[3]),
        vec![
            "location x 1382405.052, y 456330.1927: values look like northing,easting (in Vietnam X is often the \
             northing); pass --swap-xy if the columns are swapped"
        ]
    );
    // --swap-xy swaps every row: now only the swapped row is in place.
    o.swap_xy = true;
    let rs = read("vn2000_daklak.csv", o);
    assert_eq!(lines(&rs, true), vec![5]);
    assert_near(&rs[3], VN2000_LAT_LON[0]);
    // Without --crs the metres are not taken for degrees.
    let rs = read("vn2000_daklak.csv", opts());
    assert!(rs.iter().all(|r| r.is_rejected() && messages(r)[0].contains("pass --crs")));
}

#[test]
fn qgis_geojson_in_vn2000_names_its_crs() {
    let source = open("qgis_vn2000.geojson", opts());
    assert_eq!(source.format(), Format::GeoJson);
    assert!(source.mapping().to_string().starts_with("position <- geometry, EPSG:9218"));
    let rs: Vec<Record> = source.map(|r| r.unwrap()).collect();
    assert_near(&rs[0], VN2000_LAT_LON[0]);
    assert_near(&rs[1], VN2000_LAT_LON[1]);
    assert_eq!(rs[1].tree.as_ref().unwrap().cultivar.as_str(), "Monthong");
    assert_eq!(rs[2].at, RecordAt::Feature(2));
    assert!(messages(&rs[2])[0].contains("no coordinates"));
}

#[test]
fn newline_delimited_geojson() {
    let rs = read("trees.ndjson", opts());
    assert_eq!(rs.len(), 5);
    assert_eq!(lines(&rs, true), vec![0, 1, 4]);
    assert_eq!(rs[0].key, "uuid:5b1f8a20-7c3e-4d2a-9f41-2a6c0e9d7b11");
    assert_eq!(rs[0].surveyed_at.unwrap().to_rfc3339(), "2025-03-07T01:00:10+00:00");
    assert!(messages(&rs[2])[0].ends_with("values look like lon,lat; pass --swap-xy if the columns are swapped"));
    assert_eq!(rs[3].problems.len(), 1);
    assert!(messages(&rs[3])[0].contains("is not valid JSON"));
    let t = rs[4].tree.as_ref().unwrap();
    assert_eq!((t.cultivar.as_str(), t.health), ("Sáu Hữu", Health::Dead));
    assert_eq!(rs[4].target, Some(TreeRef::Code(TreeCode::parse("FARV4R2").unwrap())));
    let (_, bytes, again) = rejects_round_trip("trees.ndjson", opts());
    assert_eq!(String::from_utf8(bytes).unwrap().lines().count(), 2);
    assert_eq!(again.len(), 2);
}

#[test]
fn gpx_from_a_handheld_unit() {
    let source = open("handheld.gpx", opts());
    assert_eq!(source.format(), Format::Gpx);
    let mapping = source.mapping().to_string();
    assert!(
        mapping.contains("cultivar <- desc \"Giống: ...\"") && mapping.contains("surveyed_at <- time"),
        "{mapping}"
    );
    let rs: Vec<Record> = source.map(|r| r.unwrap()).collect();
    assert_eq!(rs.len(), 6, "waypoints only, not track points");
    assert_eq!(lines(&rs, true), vec![0, 1, 4]);
    let t = rs[0].tree.as_ref().unwrap();
    assert_eq!((t.cultivar.as_str(), t.planted_year, t.health), ("Ri6", Some(2019), Health::Good));
    assert_eq!(rs[0].orchard.as_ref().map(|o| o.as_str()), Some("DL-CK-EATIEU-003"));
    assert_eq!(rs[1].tree.as_ref().unwrap().health, Health::Fair);
    assert_eq!(
        messages(&rs[2]),
        vec!["cultivar : is required", "health : is required (good, fair, poor or dead; tốt, khá, yếu or chết)"]
    );
    assert!(messages(&rs[3])[0].contains("is outside Vietnam"));
    let t = rs[4].tree.as_ref().unwrap();
    assert_eq!((t.cultivar.as_str(), t.accuracy_m), ("Musang King", Some(14.5)), "from <extensions>");
    assert_eq!(rs[4].problems.len(), 1);

    let (_, bytes, again) = rejects_round_trip("handheld.gpx", opts());
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("creator=\"GPSMAP 65s\""));
    assert!(text.contains("<name>003</name><desc>error: cultivar: is required;"), "{text}");
    assert_eq!(again.len(), 3);
}

#[test]
fn kml_from_google_earth() {
    let source = open("google_earth.kml", opts());
    assert_eq!(source.format(), Format::Kml);
    let mapping = source.mapping().to_string();
    assert!(mapping.contains("cultivar <- Giống\n") && mapping.contains("surveyed_at <- TimeStamp\n"), "{mapping}");
    let rs: Vec<Record> = source.map(|r| r.unwrap()).collect();
    assert_eq!(rs.len(), 4);
    assert_eq!(lines(&rs, true), vec![0, 1]);
    assert_eq!(rs[0].surveyed_at.unwrap().to_rfc3339(), "2025-03-06T01:05:00+00:00");
    let t = rs[1].tree.as_ref().unwrap();
    assert_eq!((t.cultivar.as_str(), t.health), ("Chuồng Bò", Health::Fair), "SchemaData");
    assert_eq!(messages(&rs[2]), vec!["geometry Polygon: only Point placemarks are trees"]);
    assert!(messages(&rs[3]).iter().any(|m| m.starts_with("health xanh tốt?: must be")));

    let (_, bytes, again) = rejects_round_trip("google_earth.kml", opts());
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("xmlns:gx=\"http://www.google.com/kml/ext/2.2\""));
    assert_eq!(text.matches("<Data name=\"error\">").count(), 2);
    assert_eq!(again.len(), 2);
}

#[test]
fn the_committed_sample_reads_as_the_legacy_reader_reads_it() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/trees.csv");
    let legacy = importer::read_trees_csv(std::fs::File::open(&path).unwrap(), "trees.csv", 2026).unwrap();
    let file = BufReader::new(std::fs::File::open(&path).unwrap());
    let rs: Vec<Record> =
        SurveySource::open(Box::new(file), "trees.csv", Some("csv"), opts()).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(rs.len(), legacy.rows_read);
    assert!(rs.iter().all(|r| !r.is_rejected()));
    for (r, row) in rs.iter().zip(&legacy.rows) {
        assert_eq!(r.at.number(), row.line);
        assert_eq!(r.tree.as_ref(), Some(&row.tree));
        assert_eq!(r.surveyed_at, row.surveyed_at);
        assert!(row.tree.validate(&VIETNAM, 2026).is_ok());
    }
    let warned = rs.iter().filter(|r| !r.problems.is_empty()).count();
    assert_eq!(warned, legacy.warnings().count());
    let keys: std::collections::HashSet<&str> = rs.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), rs.len(), "every sample row has its own key");
}
