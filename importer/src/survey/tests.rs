use std::io::Cursor;

use proptest::prelude::*;

use super::*;

fn open_with(bytes: &[u8], name: &str, opts: SourceOptions) -> Result<SurveySource> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_owned());
    SurveySource::open(Box::new(Cursor::new(bytes.to_vec())), name, ext.as_deref(), opts)
}

fn records(bytes: &[u8], name: &str, opts: SourceOptions) -> (Format, Vec<Record>) {
    let source = open_with(bytes, name, opts).unwrap_or_else(|e| panic!("{e}"));
    let format = source.format();
    (format, source.map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect())
}

fn reasons(r: &Record) -> String {
    r.problems.iter().map(|p| format!("{} {} {}", p.field, p.value, p.reason)).collect::<Vec<_>>().join(" | ")
}

const KOBO: &str = "\u{feff}start;end;thong_tin/Mã vườn;thong_tin/Vị trí cây;thong_tin/_Vị trí cây_latitude;\
thong_tin/_Vị trí cây_longitude;thong_tin/_Vị trí cây_altitude;thong_tin/_Vị trí cây_precision;Giống;Năm trồng;\
Tình trạng;Ghi chú;_id;_uuid;_submission_time\r\n\
2025-03-03T08:10:00.000+07:00;2025-03-03T08:12:00.000+07:00;DL-CK-EATIEU-001;12.6405 108.1270 512 4.4;12.6405;108.1270;512;4.4;\
Ri6;2021;tốt;\"cây đẹp; nhiều trái\";101;0f7c5a34-1111-4c1e-9a55-2b7f4f5d0a01;2025-03-03T01:15:00\r\n\
2025-03-03T08:13:00.000+07:00;2025-03-03T08:14:00.000+07:00;DL-CK-EATIEU-001;12.6406 108.1271 511 12.0;12.6406;108.1271;511;12.0;\
Monthon;2030;chết;\"ghi chú\r\nhai dòng\";102;0f7c5a34-2222-4c1e-9a55-2b7f4f5d0a02;2025-03-03T01:16:00\r\n";

#[test]
fn kobo_export_with_bom_crlf_semicolons_and_vietnamese_labels() {
    let source = open_with(KOBO.as_bytes(), "kobo.csv", SourceOptions::default()).unwrap();
    assert_eq!(source.format(), Format::Csv);
    let mapping = source.mapping().to_string();
    assert!(mapping.contains("lat <- thong_tin/_Vị trí cây_latitude"), "{mapping}");
    assert!(mapping.contains("accuracy_m <- thong_tin/_Vị trí cây_precision"), "{mapping}");
    assert!(mapping.contains("external_id <- _uuid"), "{mapping}");
    assert!(mapping.contains("planted_year <- Năm trồng"), "{mapping}");
    let rows: Vec<Record> = source.map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let first = &rows[0];
    assert_eq!(first.at, RecordAt::Line(2));
    let tree = first.tree.as_ref().unwrap_or_else(|| panic!("{}", reasons(first)));
    assert_eq!(tree.location, LonLat::new(108.1270, 12.6405));
    assert_eq!(tree.accuracy_m, Some(4.4));
    assert_eq!(tree.health, Health::Good);
    assert_eq!(first.orchard.as_ref().map(|o| o.as_str()), Some("DL-CK-EATIEU-001"));
    assert_eq!(first.key, "0f7c5a34-1111-4c1e-9a55-2b7f4f5d0a01");
    assert_eq!(first.surveyed_at.map(|t| t.to_rfc3339()), Some("2025-03-03T01:15:00+00:00".into()));
    // The second row starts on line 3 and spans two lines (a newline inside quotes):
    // accuracy 12 m warns, "Monthon" suggests Monthong, 2030 is in the future.
    let second = &rows[1];
    assert_eq!(second.at, RecordAt::Line(3));
    assert!(second.tree.is_none());
    let all = reasons(second);
    assert!(all.contains("accuracy_m 12 GPS fix is worse than 10 m"), "{all}");
    assert!(all.contains("did you mean Monthong?"), "{all}");
    assert!(all.contains("planted_year 2030"), "{all}");
}

#[test]
fn odk_central_export() {
    let csv = "SubmissionDate,tree-location-Latitude,tree-location-Longitude,tree-location-Altitude,\
tree-location-Accuracy,tree-cultivar,tree-health,tree-orchard,meta-instanceID,SubmitterName,KEY\n\
2025-04-01T02:00:00.000Z,12.70,108.05,500,3.5,Musang King,fair,DL-A,uuid:aa,Lan,uuid:aa\n";
    let (format, rows) = records(csv.as_bytes(), "odk.csv", SourceOptions::default());
    assert_eq!(format, Format::Csv);
    let r = &rows[0];
    let tree = r.tree.as_ref().unwrap_or_else(|| panic!("{}", reasons(r)));
    assert_eq!(tree.location, LonLat::new(108.05, 12.70));
    assert_eq!(tree.cultivar.as_str(), "Musang King");
    assert_eq!(tree.health, Health::Fair);
    assert_eq!(tree.accuracy_m, Some(3.5));
    assert_eq!(r.key, "uuid:aa");
}

#[test]
fn raw_geopoint_column_alone_is_enough() {
    let csv = "vi_tri,giong,tinh_trang,ma_vuon\n\"12.6405 108.1270 512 6.5\",Ri6,khá,DL-A\n";
    let (_, rows) = records(csv.as_bytes(), "g.csv", SourceOptions::default());
    let tree = rows[0].tree.as_ref().unwrap_or_else(|| panic!("{}", reasons(&rows[0])));
    assert_eq!(tree.location, LonLat::new(108.1270, 12.6405));
    assert_eq!(tree.accuracy_m, Some(6.5));
}

#[test]
fn vn2000_grid_coordinates_are_reprojected() {
    // PROJ 9.1.1 `cs2cs EPSG:4326 EPSG:9218`: lat 12.70, lon 108.30 -> E 478084.7064, N 1404503.7499.
    let csv = "Toa_do_X\tToa_do_Y\tGiống\tTình trạng\tMã vườn\n478084.7064\t1404503.7499\tRi6\ttốt\tDL-A\n";
    let mut opts = SourceOptions { crs: Some(crate::Reprojector::parse("EPSG:9218").unwrap()), ..Default::default() };
    opts.mapping = vec![("x".into(), "Toa_do_X".into()), ("y".into(), "Toa_do_Y".into())];
    let (_, rows) = records(csv.as_bytes(), "vn2000.tsv", opts);
    let tree = rows[0].tree.as_ref().unwrap_or_else(|| panic!("{}", reasons(&rows[0])));
    assert!((tree.location.lat - 12.70).abs() < 1e-7, "{:?}", tree.location);
    assert!((tree.location.lon - 108.30).abs() < 1e-7, "{:?}", tree.location);
    // Without --crs the file is refused, naming what to pass.
    let err = open_with(csv.as_bytes(), "vn2000.tsv", SourceOptions::default()).unwrap_err().to_string();
    assert!(err.contains("--crs"), "{err}");
}

#[test]
fn swapped_coordinates_are_named_and_swapped_only_on_request() {
    let csv = "lat,lon,cultivar,health,orchard\n108.05,12.68,Ri6,good,DL-A\n";
    let (_, rows) = records(csv.as_bytes(), "s.csv", SourceOptions::default());
    assert!(rows[0].tree.is_none());
    assert!(reasons(&rows[0]).contains("look like lon,lat"), "{}", reasons(&rows[0]));
    let (_, rows) = records(csv.as_bytes(), "s.csv", SourceOptions { swap_xy: true, ..Default::default() });
    assert_eq!(rows[0].tree.as_ref().map(|t| t.location), Some(LonLat::new(108.05, 12.68)));
}

#[test]
fn outside_the_region_and_bad_numbers_are_rejected_with_their_values() {
    let csv = "lat,lon,cultivar,health,orchard,accuracy_m\n\
               48.85,2.35,Ri6,good,DL-A,3\n\
               12,68,108.05,Ri6,good,DL-A,3\n\
               12.68,108.05,Ri6,good,DL-A,30\n";
    let (_, rows) = records(csv.as_bytes(), "r.csv", SourceOptions::default());
    assert!(reasons(&rows[0]).contains("location 48.8500000,2.3500000 is outside Vietnam"), "{}", reasons(&rows[0]));
    assert!(reasons(&rows[1]).contains("row"), "{}", reasons(&rows[1]));
    assert!(reasons(&rows[2]).contains("accuracy_m 30 GPS fix is worse than 25 m"), "{}", reasons(&rows[2]));
    assert!(rows.iter().all(|r| r.tree.is_none()));
}

#[test]
fn map_overrides_and_unknown_fields_or_columns() {
    let csv = "A,B,C,D,E\n12.68,108.05,Ri6,good,DL-A\n";
    let mapping = ["lat=A", "lon=B", "cultivar=C", "health=D", "orchard=E"]
        .iter()
        .map(|m| m.split_once('=').map(|(f, c)| (f.to_owned(), c.to_owned())).unwrap())
        .collect();
    let (_, rows) = records(csv.as_bytes(), "m.csv", SourceOptions { mapping, ..Default::default() });
    assert!(rows[0].tree.is_some(), "{}", reasons(&rows[0]));
    let bad = SourceOptions { mapping: vec![("colour".into(), "A".into())], ..Default::default() };
    assert!(open_with(csv.as_bytes(), "m.csv", bad).unwrap_err().to_string().contains("unknown field \"colour\""));
    let missing = SourceOptions { mapping: vec![("lat".into(), "Z".into())], ..Default::default() };
    assert!(open_with(csv.as_bytes(), "m.csv", missing).unwrap_err().to_string().contains("no such column"));
}

const GEOJSON: &str = r#"{"type": "FeatureCollection", "name": "khảo sát", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
"features": [
{"type": "Feature", "id": "t-1", "geometry": {"type": "Point", "coordinates": [108.0500, 12.6800]}, "properties": {"giống": "Ri6", "tình trạng": "tốt", "mã vườn": "DL-A", "năm trồng": 2019}},
{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[108, 12], [108.1, 12], [108, 12.1], [108, 12]]]}, "properties": {}},
{"type": "Feature", "geometry": {"type": "Point", "coordinates": [108.0501, 12.6801, 500]}, "properties": {"cultivar": "Monthong", "health": "poor"}}
]}"#;

#[test]
fn geojson_feature_collection_streams_features() {
    let (format, rows) = records(GEOJSON.as_bytes(), "survey.geojson", SourceOptions::default());
    assert_eq!(format, Format::GeoJson);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].key, "t-1");
    let t = rows[0].tree.as_ref().unwrap_or_else(|| panic!("{}", reasons(&rows[0])));
    assert_eq!((t.location, t.planted_year), (LonLat::new(108.05, 12.68), Some(2019)));
    assert_eq!(rows[1].at, RecordAt::Feature(1));
    assert!(reasons(&rows[1]).contains("geometry Polygon only Point features are trees"));
    assert!(rows[2].tree.is_some() && rows[2].orchard.is_none(), "{}", reasons(&rows[2]));
}

#[test]
fn newline_delimited_geojson() {
    let seq = "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[108.05,12.68]},\"properties\":{\"cultivar\":\"Ri6\",\"health\":\"good\"}}\n\n\
               {\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[108.06,12.69]},\"properties\":{\"cultivar\":\"Ri6\",\"health\":\"dead\"}}\n";
    let (format, rows) = records(seq.as_bytes(), "s.json", SourceOptions::default());
    assert_eq!(format, Format::GeoJsonSeq);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].tree.as_ref().map(|t| t.health), Some(Health::Dead));
}

const GPX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="eTrex 32x" xmlns="http://www.topografix.com/GPX/1/1">
  <metadata><time>2025-03-04T01:00:00Z</time></metadata>
  <wpt lat="12.680000" lon="108.050000"><ele>512.3</ele><time>2025-03-04T01:02:03Z</time><name>001</name>
    <desc>Ri6 &amp; ghép</desc><extensions><cultivar>Ri6</cultivar><health>good</health><orchard>DL-A</orchard></extensions></wpt>
  <wpt lat="12.680100" lon="108.050100"><name>002</name></wpt>
  <trk><name>walk</name><trkseg><trkpt lat="12.6" lon="108.0"/></trkseg></trk>
</gpx>"#;

#[test]
fn gpx_waypoints_with_extensions() {
    let (format, rows) = records(GPX.as_bytes(), "etrex.gpx", SourceOptions::default());
    assert_eq!(format, Format::Gpx);
    assert_eq!(rows.len(), 2, "track points are not trees");
    let t = rows[0].tree.as_ref().unwrap_or_else(|| panic!("{}", reasons(&rows[0])));
    assert_eq!(t.location, LonLat::new(108.05, 12.68));
    assert_eq!(rows[0].surveyed_at.map(|t| t.to_rfc3339()), Some("2025-03-04T01:02:03+00:00".into()));
    assert!(reasons(&rows[1]).contains("cultivar"), "{}", reasons(&rows[1]));
}

const KML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>Vườn</name>
<Placemark><name>Cây 1</name><ExtendedData><Data name="Giống"><value>Musang King</value></Data>
<Data name="Tình trạng"><value>yếu</value></Data><Data name="Mã vườn"><value>DL-A</value></Data></ExtendedData>
<Point><coordinates>108.05,12.68,0</coordinates></Point></Placemark>
<Placemark><name>ranh giới</name><Polygon><outerBoundaryIs><LinearRing><coordinates>108,12 108.1,12 108,12.1 108,12</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
</Document></kml>"#;

#[test]
fn kml_placemarks_with_extended_data() {
    let (format, rows) = records(KML.as_bytes(), "earth.kml", SourceOptions::default());
    assert_eq!(format, Format::Kml);
    assert_eq!(rows.len(), 2);
    let t = rows[0].tree.as_ref().unwrap_or_else(|| panic!("{}", reasons(&rows[0])));
    assert_eq!((t.location, t.health), (LonLat::new(108.05, 12.68), Health::Poor));
    assert!(reasons(&rows[1]).contains("only Point placemarks"), "{}", reasons(&rows[1]));
}

fn rejects_of(bytes: &[u8], name: &str) -> String {
    let source = open_with(bytes, name, SourceOptions::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    struct Pipe(std::sync::mpsc::Sender<Vec<u8>>);
    impl std::io::Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = source.reject_writer(Box::new(Pipe(tx))).unwrap();
    let recs: Vec<Record> = open_with(bytes, name, SourceOptions::default()).unwrap().map(|r| r.unwrap()).collect();
    for r in recs.iter().filter(|r| r.tree.is_none()) {
        writer.write(r, &[]).unwrap();
    }
    writer.finish().unwrap();
    drop(source);
    String::from_utf8(rx.try_iter().flatten().collect()).unwrap()
}

#[test]
fn reject_files_keep_the_format_and_read_back() {
    let csv = rejects_of(KOBO.as_bytes(), "kobo.csv");
    assert!(csv.starts_with('\u{feff}'), "keeps the BOM");
    assert!(csv.lines().next().unwrap().ends_with(";error"), "{csv}");
    assert!(csv.contains("did you mean Monthong"), "{csv}");
    let again: Vec<Record> =
        open_with(csv.as_bytes(), "kobo.rejected.csv", SourceOptions::default()).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(again.len(), 1, "the reject file is itself importable");

    let gj = rejects_of(GEOJSON.as_bytes(), "g.geojson");
    let v: serde_json::Value = serde_json::from_str(&gj).unwrap();
    assert!(v["features"][0]["properties"]["error"].as_str().unwrap().contains("Polygon"), "{gj}");

    let gpx = rejects_of(GPX.as_bytes(), "w.gpx");
    assert!(gpx.contains("<wpt lat=\"12.680100\"") && gpx.contains("error: cultivar"), "{gpx}");
    let again: Vec<Record> =
        open_with(gpx.as_bytes(), "w.rejected.gpx", SourceOptions::default()).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(again.len(), 1);

    let kml = rejects_of(KML.as_bytes(), "e.kml");
    assert!(kml.contains("<Data name=\"error\">"), "{kml}");
}

#[test]
fn utf16_and_empty_files_are_refused_by_name() {
    let e = open_with(&[0xFF, 0xFE, b'l', 0], "excel.csv", SourceOptions::default()).unwrap_err().to_string();
    assert!(e.starts_with("excel.csv") && e.contains("UTF-16"), "{e}");
    let e = open_with(b"", "empty.csv", SourceOptions::default()).unwrap_err().to_string();
    assert!(e.contains("empty.csv"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No input makes any reader panic; every record is either a tree or carries a rejection.
    #[test]
    fn readers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), which in 0usize..5) {
        let name = ["x.csv", "x.geojson", "x.ndjson", "x.gpx", "x.kml"][which];
        let format = Some(name.rsplit_once('.').unwrap().1.parse::<Format>().unwrap());
        if let Ok(source) = open_with(&bytes, name, SourceOptions { format, ..Default::default() }) {
            for r in source.take(1000).flatten() {
                prop_assert!(r.tree.is_some() || r.problems.iter().any(|p| p.is_rejected()));
            }
        }
    }

    /// Every CSV row comes out exactly once, in order, whatever its content.
    #[test]
    fn every_csv_row_is_one_record(rows in prop::collection::vec(("[0-9.,-]{0,12}", "[0-9.]{0,12}", "[A-Za-zốế ]{0,8}"), 1..30)) {
        let mut csv = String::from("lat,lon,cultivar,health,orchard\n");
        for (lat, lon, cultivar) in &rows {
            csv.push_str(&format!("\"{lat}\",\"{lon}\",\"{cultivar}\",good,DL-A\n"));
        }
        let source = open_with(csv.as_bytes(), "p.csv", SourceOptions::default()).unwrap();
        let lines: Vec<u64> = source.map(|r| r.unwrap().at.number()).collect();
        let expected: Vec<u64> = (2..2 + rows.len() as u64).collect();
        prop_assert_eq!(lines, expected);
    }
}
