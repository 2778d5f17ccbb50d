//! Unit tests of the survey readers on small inline files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use geo_core::{Health, LonLat, TreeRef};

use super::*;

fn opts() -> SourceOptions {
    let mut opts = SourceOptions::default();
    opts.rules.this_year = 2026;
    opts
}

fn open_with(bytes: &[u8], name: &str, opts: SourceOptions) -> Result<SurveySource> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_owned());
    SurveySource::open(Box::new(std::io::Cursor::new(bytes.to_vec())), name, ext.as_deref(), opts)
}

fn records_with(bytes: &[u8], name: &str, opts: SourceOptions) -> Vec<Record> {
    open_with(bytes, name, opts).unwrap().map(|r| r.unwrap()).collect()
}

fn records(text: &str, name: &str) -> Vec<Record> {
    records_with(text.as_bytes(), name, opts())
}

/// Each record's problems as `field value: reason` (warnings prefixed).
fn problems(r: &Record) -> Vec<String> {
    r.problems
        .iter()
        .map(|p| {
            let w = if p.is_rejected() { "" } else { "warning: " };
            format!("{w}{} {}: {}", p.field, p.value, p.reason)
        })
        .collect()
}

const HEADER: &str = "lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at";
const GOOD: &str = "12.6405427,108.1270364,4.4,Ri6,2021,good,DL-CK-EATIEU-001,2025-03-03T01:16:17Z";

#[test]
fn a_sample_row_becomes_a_tree() {
    let rs = records(&format!("{HEADER}\n{GOOD}\n"), "t.csv");
    assert_eq!(rs.len(), 1);
    let r = &rs[0];
    assert_eq!(r.at, RecordAt::Line(2));
    assert!(r.problems.is_empty(), "{:?}", problems(r));
    let t = r.tree.as_ref().unwrap();
    assert_eq!(t.location, LonLat::new(108.1270364, 12.6405427));
    assert_eq!(t.accuracy_m, Some(4.4));
    assert_eq!((t.cultivar.as_str(), t.planted_year, t.health), ("Ri6", Some(2021), Health::Good));
    assert_eq!(t.orchard_id.as_str(), "DL-CK-EATIEU-001");
    assert_eq!(r.orchard.as_ref().map(|o| o.as_str()), Some("DL-CK-EATIEU-001"));
    assert_eq!(r.surveyed_at.unwrap().to_rfc3339(), "2025-03-03T01:16:17+00:00");
    assert!(r.key.starts_with("h:") && r.key.len() == 34, "{}", r.key);
    assert_eq!(r.target, None);
    assert!(!r.is_rejected());
}

#[test]
fn format_detection_reads_content_before_names() {
    assert_eq!(detect(b"lat,lon\n1,2", Some("csv")), Format::Csv);
    assert_eq!(detect(b"lat,lon\n1,2", Some("geojson")), Format::Csv, "text that is not JSON");
    assert_eq!(detect(b"\xEF\xBB\xBF  <?xml version='1.0'?>\n<gpx version='1.1'>", None), Format::Gpx);
    assert_eq!(detect(b"<?xml version='1.0'?><kml xmlns='x'>", Some("xml")), Format::Kml);
    assert_eq!(detect(b"<?xml version='1.0'?><Document><Placemark>", None), Format::Kml);
    assert_eq!(detect(b"{\"type\": \"FeatureCollection\", \"features\": [", Some("json")), Format::GeoJson);
    assert_eq!(detect(b"{\n  \"features\" : [ {\"type\": \"Feature\"", None), Format::GeoJson);
    assert_eq!(detect(b"{\"type\":\"Feature\",\"geometry\":null}\n{\"type\":\"Feature\"", None), Format::GeoJsonSeq);
    assert_eq!(detect(b"\x1e{\"type\":\"Feature\"}", Some("geojson")), Format::GeoJsonSeq);
    assert_eq!("NDJSON".parse::<Format>(), Ok(Format::GeoJsonSeq));
    assert_eq!("tsv".parse::<Format>(), Ok(Format::Csv));
    assert!("xlsx".parse::<Format>().unwrap_err().contains("xlsx"));
    for f in [Format::Csv, Format::GeoJson, Format::GeoJsonSeq, Format::Gpx, Format::Kml] {
        assert_eq!(f.to_string().parse::<Format>(), Ok(f));
    }
}

#[test]
fn whole_file_problems_are_errors_naming_the_file() {
    let err = |bytes: &[u8], name: &str| open_with(bytes, name, opts()).unwrap_err().to_string();
    assert_eq!(err(b"  \n", "e.csv"), "e.csv: the file is empty");
    assert!(err(b"\xFF\xFEl\0a\0", "u.csv").contains("UTF-16"));
    assert!(err(b"PK\x03\x04rest", "trees.kmz").contains("ZIP"));
    let e = err(b"name,giong\nA,Ri6\n", "nocoords.csv");
    assert!(e.starts_with("nocoords.csv: no coordinate columns") && e.contains("name, giong"), "{e}");
    let e = err(b"lat,giong\n1,Ri6\n", "half.csv");
    assert!(e.contains("a lat column but no lon column"), "{e}");
    let e = err(b"lat\xfd\xfe,lon\n", "bad.csv");
    assert!(e.contains("header is not UTF-8"), "{e}");
}

#[test]
fn map_overrides_name_unknown_fields_and_columns() {
    let text = "Vĩ độ,Kinh độ,X1,Giống,health\n12.64,108.12,Ri6,Ri6,good\n";
    let mut o = opts();
    o.mapping = vec![("colour".into(), "X1".into())];
    let e = open_with(text.as_bytes(), "m.csv", o).unwrap_err().to_string();
    assert!(e.contains("unknown field \"colour\"") && e.contains("planted_year"), "{e}");
    let mut o = opts();
    o.mapping = vec![("cultivar".into(), "Giong cay".into())];
    let e = open_with(text.as_bytes(), "m.csv", o).unwrap_err().to_string();
    assert!(e.contains("--map cultivar=Giong cay: no such column") && e.contains("Vĩ độ, Kinh độ, X1"), "{e}");

    // A folded name finds the column; the override wins over detection.
    let mut o = opts();
    o.mapping = vec![("cultivar".into(), "x1".into()), ("Tình trạng".into(), "health".into())];
    let src = open_with(text.as_bytes(), "m.csv", o).unwrap();
    let shown = src.mapping().to_string();
    assert!(shown.contains("cultivar <- X1\n") && shown.contains("lat <- Vĩ độ\n"), "{shown}");
    assert!(shown.contains("(not used: Giống)"), "{shown}");

    // An empty column unmaps a field.
    let text = "lat,lon,cultivar,health,id\n12.64,108.12,Ri6,good,7\n";
    assert_eq!(records(text, "a.csv")[0].target, Some(TreeRef::Id(geo_core::TreeId(7))));
    let mut o = opts();
    o.mapping = vec![("tree_id".into(), String::new())];
    let rs = records_with(text.as_bytes(), "a.csv", o);
    assert_eq!(rs[0].target, None);
}

#[test]
fn mapping_displays_field_from_column_lines() {
    let src = open_with(format!("{HEADER},note\n{GOOD},x\n").as_bytes(), "t.csv", opts()).unwrap();
    assert_eq!(
        src.mapping().to_string(),
        "lat <- lat\nlon <- lon\naccuracy_m <- accuracy_m\ncultivar <- cultivar\nplanted_year <- planted_year\n\
         health <- health\norchard <- orchard\nsurveyed_at <- surveyed_at\n(not used: note)\n"
    );
    assert_eq!(src.format(), Format::Csv);
}

#[test]
fn csv_lines_are_where_records_start() {
    // CRLF, a blank line, a quoted field over two lines, a last line without newline.
    let text = format!(
        "{HEADER},note\r\n{GOOD},a\r\n\r\n12.6406,108.1271,4,Ri6,2021,good,DL-1,,\"two\r\nlines\"\r\n12.6407,108.1272,4,Ri6,2021,good,DL-1,,c"
    );
    let rs = records(&text, "t.csv");
    let lines: Vec<u64> = rs.iter().map(|r| r.at.number()).collect();
    assert_eq!(lines, vec![2, 4, 6]);
    assert!(rs.iter().all(|r| !r.is_rejected()), "{:?}", rs.iter().map(problems).collect::<Vec<_>>());
    // LF only, CR only (old Mac spreadsheets), and Excel's `sep=` line.
    let lf = format!("{HEADER}\n\n\n{GOOD}\n{GOOD}\n");
    assert_eq!(records(&lf, "t.csv").iter().map(|r| r.at.number()).collect::<Vec<_>>(), vec![4, 5]);
    let cr = format!("{HEADER}\r{GOOD}\r\r{GOOD}\r");
    assert_eq!(records(&cr, "t.csv").iter().map(|r| r.at.number()).collect::<Vec<_>>(), vec![2, 4]);
    let sep = format!("sep=;\r\n{}\r\n{}\r\n", HEADER.replace(',', ";"), GOOD.replace(',', ";"));
    let rs = records(&sep, "t.csv");
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].at, RecordAt::Line(3));
    assert!(!rs[0].is_rejected());
}

#[test]
fn separators_bom_and_decimal_commas() {
    let tab = format!("\u{feff}{}\n{}\n", HEADER.replace(',', "\t"), GOOD.replace(',', "\t"));
    let rs = records(&tab, "t.tsv");
    assert!(!rs[0].is_rejected(), "{:?}", problems(&rs[0]));
    // `;` files from Vietnamese-locale spreadsheets write decimal commas.
    let semi = "vĩ độ;kinh độ;giống;tình trạng;chiều cao (m)\n12,6405427;108,1270364;Ri6;tốt;6,5\n";
    let rs = records(semi, "t.csv");
    let t = rs[0].tree.as_ref().unwrap();
    assert_eq!((t.location.lat, t.location.lon, t.height_m), (12.6405427, 108.1270364, Some(6.5)));
    // In a comma-separated file a decimal comma is a mistake (it splits the value).
    let rs = records("lat,lon,cultivar,health,accuracy\n12.64,108.12,Ri6,good,\"4,5\"\n", "t.csv");
    assert_eq!(problems(&rs[0]), vec!["accuracy_m 4,5: is not a number (use '.' as the decimal separator)"]);
}

#[test]
fn rows_wider_than_the_header_and_bad_utf8_are_rejected() {
    let rs = records("lat,lon,cultivar,health\n12.64,108.12,Ri6,good,extra\n", "t.csv");
    assert!(problems(&rs[0])[0].starts_with("row : has 5 fields but the header has 4"));
    let mut bytes = b"lat,lon,cultivar,health\n12.64,108.12,Gi\xf4ng,good\n".to_vec();
    let rs = records_with(&bytes, "t.csv", opts());
    assert_eq!(problems(&rs[0]), vec!["cultivar Gi\u{fffd}ng: is not UTF-8 text (save the file as \"CSV UTF-8\")"]);
    bytes.truncate(0);
}

#[test]
fn swapped_coordinates_are_named_and_only_swapped_when_asked() {
    let text = "lat,lon,cultivar,health\n108.1270364,12.6405427,Ri6,good\n";
    let rs = records(text, "t.csv");
    assert_eq!(
        problems(&rs[0]),
        vec![
            "location lat 108.1270364, lon 12.6405427: values look like lon,lat; pass --swap-xy if the columns are swapped"
        ]
    );
    let mut o = opts();
    o.swap_xy = true;
    let rs = records_with(text.as_bytes(), "t.csv", o.clone());
    assert_eq!(rs[0].tree.as_ref().unwrap().location, LonLat::new(108.1270364, 12.6405427));
    // --swap-xy on a file that is in order says so.
    let rs = records_with(b"lat,lon,cultivar,health\n12.64,108.12,Ri6,good\n", "t.csv", o);
    assert!(problems(&rs[0])[0].contains("--swap-xy was given but the columns are not swapped"));
    // GeoJSON written [lat, lon].
    let nd = r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[12.64,108.12]},"properties":{"cultivar":"Ri6","health":"good"}}"#;
    let rs = records(nd, "t.ndjson");
    assert!(problems(&rs[0])[0].contains("values look like lon,lat; pass --swap-xy"), "{:?}", problems(&rs[0]));
}

#[test]
fn coordinates_out_of_range_or_region_name_the_value() {
    let text = "lat,lon,cultivar,health\n1270.5,108.12,Ri6,good\n1.3521,103.8198,Ri6,good\n12.64,,Ri6,good\nabc,108.1,Ri6,good\n";
    let rs = records(text, "t.csv");
    assert_eq!(problems(&rs[0]), vec!["lat 1270.5: latitude must be within -90..90"]);
    assert_eq!(
        problems(&rs[1]),
        vec!["location lat 1.3521, lon 103.8198: is outside Vietnam (lat 8..23.5, lon 102..117.5)"]
    );
    assert_eq!(problems(&rs[2]), vec!["lon : is required (the row has no value for it)"]);
    assert_eq!(problems(&rs[3]), vec!["lat abc: is not a number"]);
    // The region is configurable.
    let mut o = opts();
    o.rules.region = Region {
        name: "Singapore",
        bbox: geo_core::BBox { min_lon: 103.6, min_lat: 1.2, max_lon: 104.1, max_lat: 1.5 },
    };
    let rs = records_with(text.as_bytes(), "t.csv", o);
    assert!(!rs[1].is_rejected());
    assert!(rs[0].is_rejected());
}

#[test]
fn x_y_columns_in_degrees_or_projected() {
    // QGIS "AS_XY" exports of a WGS 84 layer: X = longitude, Y = latitude.
    let rs = records("X,Y,cultivar,health\n108.1270364,12.6405427,Ri6,good\n", "t.csv");
    assert_eq!(rs[0].tree.as_ref().unwrap().location, LonLat::new(108.1270364, 12.6405427));
    let text = "x,y,cultivar,health\n478084.7064,1404503.7499,Ri6,good\n";
    let rs = records(text, "t.csv");
    assert!(problems(&rs[0])[0].contains("pass --crs"), "{:?}", problems(&rs[0]));
    // DOMAIN.md reference: lat 12.70, lon 108.30 is E 478084.7064, N 1404503.7499 in EPSG:9218.
    let mut o = opts();
    o.crs = Some(crate::Reprojector::parse("EPSG:9218").unwrap());
    let rs = records_with(text.as_bytes(), "t.csv", o);
    let p = rs[0].tree.as_ref().unwrap().location;
    assert!((p.lat - 12.70).abs() < 2e-7 && (p.lon - 108.30).abs() < 2e-7, "{p:?}");
}

#[test]
fn accuracy_thresholds_warn_then_reject() {
    let text = "lat,lon,cultivar,health,accuracy\n12.64,108.12,Ri6,good,9.9\n12.64,108.13,Ri6,good,10.5\n\
                12.64,108.14,Ri6,good,25.1\n12.64,108.15,Ri6,good,-1\n";
    let rs = records(text, "t.csv");
    assert!(rs[0].problems.is_empty());
    assert_eq!(problems(&rs[1]), vec!["warning: accuracy_m 10.5: GPS accuracy is worse than 10 m"]);
    assert!(!rs[1].is_rejected());
    assert_eq!(problems(&rs[2]), vec!["accuracy_m 25.1: GPS accuracy is worse than 25 m: survey this tree again"]);
    assert!(rs[3].is_rejected());
    let mut o = opts();
    o.rules.accuracy_warn_m = 5.0;
    o.rules.accuracy_reject_m = 10.0;
    let rs = records_with(text.as_bytes(), "t.csv", o);
    assert!(rs[0].problems[0].to_string().contains("worse than 5 m"));
    assert!(rs[1].is_rejected());
}

#[test]
fn values_in_vietnamese_and_every_problem_of_a_row() {
    let text = "vĩ độ,kinh độ,giống,năm trồng,tình trạng,mã vườn,thời gian,chiều cao,chu vi\n\
                12.64,108.12,Sầu riêng Thái,2018,Khỏe,DL-1,15/03/2024 08:30,7.5,120\n\
                12.64,108.13,Ri 7,2031,xanh,DL 1,hôm qua,-2,abc\n";
    let rs = records(text, "vn.csv");
    let t = rs[0].tree.as_ref().unwrap();
    assert_eq!(
        (t.cultivar.as_str(), t.health, t.height_m, t.girth_cm),
        ("Monthong", Health::Good, Some(7.5), Some(120.0))
    );
    assert_eq!(rs[0].surveyed_at.unwrap().to_rfc3339(), "2024-03-15T01:30:00+00:00");
    assert_eq!(
        problems(&rs[1]),
        vec![
            "warning: cultivar Ri 7: is not a known cultivar; did you mean Ri6?",
            "health xanh: must be good, fair, poor or dead (tốt, khá, yếu or chết)",
            "orchard DL 1: is not an orchard id (1-40 characters of A-Z, a-z, 0-9, '-' or '_')",
            "surveyed_at hôm qua: is not a date (e.g. 2024-03-15T08:30:00+07:00, 2024-03-15 08:30 or 15/03/2024 08:30, taken as Vietnam time)",
            "girth_cm abc: is not a number",
        ]
    );
    // With a readable health the tree-level checks run too (future planting year, height).
    let rs = records("lat,lon,giong,nam trong,tinh trang,chieu cao\n12.64,108.12,Ri6,2031,tot,-2\n", "vn.csv");
    assert_eq!(
        problems(&rs[0]),
        vec![
            "planted_year 2031: is in the future (this year is 2026)",
            "height_m -2: must be a number above 0 and at most 60"
        ]
    );
    let rs = records("lat,lon,cultivar,health,date\n12.64,108.12,Ri6,good,2027-01-02\n", "t.csv");
    assert_eq!(problems(&rs[0]), vec!["surveyed_at 2027-01-02: is in the future (this year is 2026)"]);
}

#[test]
fn tree_ids_and_tag_codes_target_existing_trees() {
    let text = "lat,lon,cultivar,health,tree_id,tag\n12.64,108.12,Ri6,good,42,\n12.64,108.13,Ri6,good,,8NXQ33M\n\
                12.64,108.14,Ri6,good,0,\n12.64,108.15,Ri6,good,,8NXQ33N\n";
    let rs = records(text, "t.csv");
    assert_eq!(rs[0].target, Some(TreeRef::Id(geo_core::TreeId(42))));
    let code = geo_core::TreeCode::parse("8NXQ33M").unwrap();
    assert_eq!(rs[1].target, Some(TreeRef::Code(code)));
    assert_eq!(rs[1].tree.as_ref().unwrap().code, Some(code));
    assert_eq!(problems(&rs[2]), vec!["tree_id 0: is not a tree id (a whole number above 0)"]);
    assert!(problems(&rs[3])[0].starts_with("code 8NXQ33N:"));
}

#[test]
fn keys_follow_content_not_layout() {
    let a = records(&format!("{HEADER}\n{GOOD}\n"), "a.csv");
    // Another separator, CRLF, BOM, another column order, quoting, and an extra column.
    let b = records(
        "\u{feff}surveyed_at;orchard;lat;lon;accuracy_m;cultivar;planted_year;health;note\r\n\
         2025-03-03T01:16:17Z;DL-CK-EATIEU-001;\"12.6405427\";108.1270364;4.4;Ri6;2021;good;x\r\n",
        "b.csv",
    );
    assert_eq!(a[0].key, b[0].key);
    let c = records(&format!("{HEADER}\n{}\n", GOOD.replace("4.4", "4.5")), "c.csv");
    assert_ne!(a[0].key, c[0].key);
    // Kobo `_uuid` and ODK `KEY` are keys, and the same submission in both gives the same key.
    let kobo =
        records("lat,lon,cultivar,health,_uuid\n12.64,108.12,Ri6,good,3F2504E0-4F89-11D3-9A0C-0305E82C3301\n", "k.csv");
    let odk = records(
        "lat,lon,cultivar,health,KEY\n12.64,108.12,Ri6,good,uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301\n",
        "o.csv",
    );
    assert_eq!(kobo[0].key, "uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    assert_eq!(kobo[0].key, odk[0].key);
    assert_eq!(kobo[0].external_id.as_deref(), Some("3F2504E0-4F89-11D3-9A0C-0305E82C3301"));
}

#[test]
fn kobo_raw_geopoints_and_submission_times() {
    let text = "Vị trí cây,_Vị trí cây_latitude,_Vị trí cây_longitude,Giống,Tình trạng,_submission_time,_id\n\
                12.6405 108.1270 512 4.5,,,Ri6,tốt,2025-03-03T01:12:02,1\n";
    let src = open_with(text.as_bytes(), "k.csv", opts()).unwrap();
    assert!(src.mapping().to_string().contains("geopoint <- Vị trí cây\n"));
    let rs: Vec<Record> = src.map(|r| r.unwrap()).collect();
    let t = rs[0].tree.as_ref().unwrap();
    assert_eq!((t.location, t.accuracy_m), (LonLat::new(108.1270, 12.6405), Some(4.5)));
    // Kobo's `_submission_time` is UTC without a zone.
    assert_eq!(rs[0].surveyed_at.unwrap().to_rfc3339(), "2025-03-03T01:12:02+00:00");
    assert_eq!(rs[0].target, None, "Kobo's _id is not a tree id");
}

#[test]
fn geojson_is_read_feature_by_feature() {
    let text = r#"{"type": "FeatureCollection", "name": "cay", "bbox": [108, 12, 109, 13],
      "features": [
        {"type": "Feature", "id": 7, "geometry": {"type": "Point", "coordinates": [108.12, 12.64, 510]},
         "properties": {"cultivar": "Ri6", "health": "good", "planted_year": 2019, "note": {"nested": true}}},
        {"type": "Feature", "geometry": null, "properties": {"lat": 12.65, "lon": 108.13, "cultivar": "Ri6", "health": "fair"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[108, 12], [108.1, 12.1]]}, "properties": {}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [108.14, 12.66]}, "properties": {"cultivar": "Ri6", "health": 5,}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": ["108.14", 12.66]}, "properties": {"cultivar": "Ri6", "health": "good"}}
      ],
      "crs": "ignored after the features"}"#;
    let src = open_with(text.as_bytes(), "t.geojson", opts()).unwrap();
    assert_eq!(src.format(), Format::GeoJson);
    assert!(src.mapping().to_string().starts_with("position <- geometry\ncultivar <- cultivar\n"));
    let rs: Vec<Record> = src.map(|r| r.unwrap()).collect();
    assert_eq!(rs.iter().map(|r| r.at).collect::<Vec<_>>(), (0..5).map(RecordAt::Feature).collect::<Vec<_>>());
    assert!(!rs[0].is_rejected());
    assert_eq!(rs[0].external_id.as_deref(), Some("7"));
    assert!(rs[0].key.starts_with("h:"), "a short feature id is not unique enough for a key");
    assert_eq!(rs[1].tree.as_ref().unwrap().location, LonLat::new(108.13, 12.65));
    assert_eq!(problems(&rs[2]), vec!["geometry LineString: only Point features are trees"]);
    assert_eq!(rs[3].problems.len(), 1);
    assert!(problems(&rs[3])[0].contains("is not valid JSON"));
    assert!(problems(&rs[4])[0].starts_with("geometry "));
    assert_ne!(rs[2].key, rs[3].key);
}

#[test]
fn geojson_that_is_cut_short_or_not_a_collection() {
    let cut = r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[108.12,12.64]},"properties":{"cultivar":"Ri6","health":"good"}},{"type":"Feat"#;
    let results: Vec<Result<Record>> = open_with(cut.as_bytes(), "cut.geojson", opts()).unwrap().collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    let e = results[1].as_ref().unwrap_err().to_string();
    assert!(e.starts_with("cut.geojson: feature 1 never ends"), "{e}");

    let err = |t: &str| open_with(t.as_bytes(), "x.geojson", opts()).unwrap_err().to_string();
    let mut o = opts();
    o.format = Some(Format::GeoJson);
    let single = r#"{"type": "Feature", "geometry": null, "properties": {}}"#;
    let e = open_with(single.as_bytes(), "x.geojson", o).unwrap_err().to_string();
    assert!(e.contains("single Feature"), "{e}");
    // Detected, a single Feature is a sequence of one.
    assert_eq!(records(single, "x.geojson").len(), 1);
    assert!(err(r#"{"type": "FeatureCollection", "features": {}}"#).contains("\"features\" is not an array"));
    assert!(err(r#"{"type": "FeatureCollection"}"#).contains("no \"features\" array"));
    let mut o = opts();
    o.format = Some(Format::GeoJson);
    assert!(open_with(b"[1, 2]", "x.json", o).unwrap_err().to_string().contains("does not start with '{'"));
    // An empty collection has no records.
    assert_eq!(records(r#"{"type":"FeatureCollection","features":[]}"#, "e.geojson").len(), 0);
}

#[test]
fn newline_delimited_geojson_with_record_separators() {
    let f = r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[108.12,12.64]},"properties":{"giống":"Ri6","tình trạng":"tốt"}}"#;
    let text = format!("\u{1e}{f}\n\u{1e}{f}\n\n{}\n", f.replace("12.64", "12.65"));
    let rs = records(&text, "t.geojsons");
    assert_eq!(rs.len(), 3);
    assert!(rs.iter().all(|r| !r.is_rejected()));
    assert_eq!(rs[0].key, rs[1].key);
    assert_ne!(rs[0].key, rs[2].key);
}

#[test]
fn geojson_crs_member_converts_positions() {
    let text = r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::9218"}},
      "features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[478084.7064,1404503.7499]},"properties":{"giong":"Ri6","tinh_trang":"tot"}}]}"#;
    let src = open_with(text.as_bytes(), "q.geojson", opts()).unwrap();
    assert!(src.crs().is_some());
    let rs: Vec<Record> = src.map(|r| r.unwrap()).collect();
    let p = rs[0].tree.as_ref().unwrap().location;
    assert!((p.lat - 12.70).abs() < 2e-7 && (p.lon - 108.30).abs() < 2e-7, "{p:?}");
}

const GPX: &str = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1" xmlns:om="urn:om">
<wpt lat="12.64" lon="108.12"><ele>500</ele><time>2025-03-05T01:12:40Z</time><name>001</name>
<desc>Giống: Ri6; Tình trạng: tốt</desc><sym>Flag</sym></wpt>
<wpt lat="12.65" lon="108.13"><name>002</name><extensions><om:giong>Monthong</om:giong><om:health>poor</om:health></extensions></wpt>
<wpt lat="12.66" lon="abc"><desc>Giống: Ri6; Tình trạng: tốt</desc></wpt>
<wpt lat="12.67" lon="108.15"/>
</gpx>"#;

#[test]
fn gpx_waypoints_with_desc_pairs_and_extensions() {
    let src = open_with(GPX.as_bytes(), "h.gpx", opts()).unwrap();
    assert_eq!(src.format(), Format::Gpx);
    let shown = src.mapping().to_string();
    assert!(shown.contains("cultivar <- desc \"Giống: ...\"") && shown.contains("surveyed_at <- time"), "{shown}");
    let rs: Vec<Record> = src.map(|r| r.unwrap()).collect();
    assert_eq!(rs.len(), 4);
    let t = rs[0].tree.as_ref().unwrap();
    assert_eq!((t.location, t.cultivar.as_str(), t.health), (LonLat::new(108.12, 12.64), "Ri6", Health::Good));
    assert_eq!(rs[0].surveyed_at.unwrap().to_rfc3339(), "2025-03-05T01:12:40+00:00");
    assert_eq!(rs[1].tree.as_ref().unwrap().cultivar.as_str(), "Monthong");
    assert_eq!(
        problems(&rs[2]),
        vec!["location lat=\"12.66\" lon=\"abc\": the waypoint's lat and lon must be numbers"]
    );
    assert!(rs[3].is_rejected());
    assert_eq!(rs[3].at, RecordAt::Feature(3));
}

#[test]
fn kml_placemarks_with_extended_and_schema_data() {
    let text = r##"<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document><Folder>
      <Placemark><name>A</name><ExtendedData><Data name="giống"><value>Ri6</value></Data><Data name="tình trạng"><value>tốt</value></Data></ExtendedData>
        <Point><coordinates> 108.12,12.64,0 </coordinates></Point></Placemark>
      <Placemark><ExtendedData><SchemaData schemaUrl="#s"><SimpleData name="cultivar">Musang King</SimpleData><SimpleData name="health">dead</SimpleData></SchemaData></ExtendedData>
        <Point><coordinates>108.13,12.65</coordinates></Point></Placemark>
      <Placemark><name>B</name><description>cultivar: Ri6
health: fair</description><Point><coordinates>108.14;12.66</coordinates></Point></Placemark>
    </Folder></Document></kml>"##;
    let rs = records(text, "g.kml");
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0].tree.as_ref().unwrap().location, LonLat::new(108.12, 12.64));
    assert_eq!(rs[1].tree.as_ref().unwrap().health, Health::Dead);
    assert_eq!(problems(&rs[2]), vec!["coordinates 108.14;12.66: is not lon,lat[,altitude]"]);
    // --crs does not apply to KML.
    let mut o = opts();
    o.crs = Some(crate::Reprojector::parse("EPSG:9218").unwrap());
    assert!(open_with(text.as_bytes(), "g.kml", o).unwrap_err().to_string().contains("WGS 84"));
}

#[test]
fn broken_xml_ends_the_file_with_an_error() {
    let text = GPX.replace("</wpt>\n<wpt lat=\"12.65\"", "</wpx>\n<wpt lat=\"12.65\"");
    let results: Vec<Result<Record>> =
        open_with(text.as_bytes(), "b.gpx", opts()).map(|s| s.collect()).unwrap_or_else(|e| vec![Err(e)]);
    let last = results.last().unwrap();
    assert!(last.as_ref().unwrap_err().to_string().starts_with("b.gpx: byte "), "{results:?}");
    let cut = &GPX[..GPX.find("<sym>").unwrap()];
    let results: Vec<Result<Record>> =
        open_with(cut.as_bytes(), "c.gpx", opts()).map(|s| s.collect()).unwrap_or_else(|e| vec![Err(e)]);
    assert!(results.iter().any(|r| r.as_ref().is_err_and(|e| e.to_string().contains("ends inside a waypoint"))));
}

/// Writes every rejected record of `text` to a reject file and returns it.
fn rejects_of(text: &[u8], name: &str, o: SourceOptions) -> (Vec<Record>, Vec<u8>) {
    let src = open_with(text, name, o).unwrap();
    let out = SharedBuf::default();
    let mut w = src.reject_writer(Box::new(out.clone())).unwrap();
    let rs: Vec<Record> = src.map(|r| r.unwrap()).collect();
    for r in rs.iter().filter(|r| r.is_rejected()) {
        w.write(r, &[]).unwrap();
    }
    w.finish().unwrap();
    let bytes = out.0.lock().unwrap().clone();
    (rs, bytes)
}

#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn csv_rejects_keep_the_file_shape_and_read_back() {
    let text = "\u{feff}sep=;\r\nvĩ độ;kinh độ;giống;tình trạng;ghi chú\r\n12,64;108,12;Ri6;tốt;a\r\n\
                108,12;12,64;Ri6;tốt;\"b;\r\nc\"\r\n12,65;108,13;Ri6;xanh;d\r\n";
    let (rs, out) = rejects_of(text.as_bytes(), "v.csv", opts());
    assert_eq!(rs.iter().filter(|r| r.is_rejected()).count(), 2);
    let written = String::from_utf8(out.clone()).unwrap();
    let expected = "\u{feff}sep=;\r\nvĩ độ;kinh độ;giống;tình trạng;ghi chú;error\r\n\
        108,12;12,64;Ri6;tốt;\"b;\r\nc\";\"location lat 108.12, lon 12.64: values look like lon,lat; pass --swap-xy if the columns are swapped\"\r\n\
        12,65;108,13;Ri6;xanh;d;health xanh: must be good, fair, poor or dead (tốt, khá, yếu or chết)\r\n";
    assert_eq!(written, expected);
    // The reject file reads back with the same records; its `error` column is not a field.
    let src = open_with(&out, "v.rejected.csv", opts()).unwrap();
    assert!(src.mapping().to_string().contains("(not used: ghi chú, error)"));
    let again: Vec<Record> = src.map(|r| r.unwrap()).collect();
    assert_eq!(again.iter().map(|r| r.at.number()).collect::<Vec<_>>(), vec![3, 5]);
    assert_eq!(again.iter().map(|r| r.key.clone()).collect::<Vec<_>>(), vec![rs[1].key.clone(), rs[2].key.clone()]);
    // Rejecting the reject file again replaces its error column instead of adding one.
    let (_, twice) = rejects_of(&out, "v.rejected.csv", opts());
    assert_eq!(String::from_utf8(twice).unwrap(), expected);
}

#[test]
fn geojson_and_ndjson_rejects_carry_an_error_property() {
    let fc = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","geometry":{"type":"Point","coordinates":[108.12,12.64]},"properties":{"cultivar":"Ri6","health":"good"}},
      {"type":"Feature","geometry":{"type":"Point","coordinates":[108.12,12.64]},"properties":{"cultivar":"Ri6"}},
      {"type":"Feature","geometry":{"type":"Point" "coordinates":[1,2]}}]}"#;
    let (_, out) = rejects_of(fc.as_bytes(), "t.geojson", opts());
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let features = v["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    assert_eq!(
        features[0]["properties"]["error"],
        "health: is required (good, fair, poor or dead; tốt, khá, yếu or chết)"
    );
    assert_eq!(features[0]["properties"]["cultivar"], "Ri6");
    assert!(features[1]["properties"]["invalid_json"].as_str().unwrap().contains("\"Point\" \"coordinates\""));
    // NDJSON: one feature per line.
    let nd: String = fc.lines().skip(1).take(2).map(|l| l.trim().trim_end_matches(',').to_owned() + "\n").collect();
    let (_, out) = rejects_of(nd.as_bytes(), "t.ndjson", opts());
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 1);
    let again = records(&text, "t.rejected.ndjson");
    assert_eq!(again.len(), 1);
    assert!(again[0].is_rejected());
}

#[test]
fn gpx_and_kml_rejects_read_back() {
    let (rs, out) = rejects_of(GPX.as_bytes(), "h.gpx", opts());
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.contains("xmlns:om=\"urn:om\""), "{text}");
    assert!(text.contains("<desc>Giống: Ri6; Tình trạng: tốt\nerror: location lat=&quot;12.66&quot;"), "{text}");
    assert!(text.contains("<wpt lat=\"12.67\" lon=\"108.15\"><desc>error: cultivar: is required;"), "{text}");
    let again = records_with(&out, "h.rejected.gpx", opts());
    assert_eq!(again.len(), rs.iter().filter(|r| r.is_rejected()).count());
    assert_eq!(again[1].key, rs[3].key, "the error in <desc> is not part of the row");

    let kml = r#"<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>A</name>
      <ExtendedData><Data name="cultivar"><value>Ri6</value></Data></ExtendedData><Point><coordinates>108.12,12.64</coordinates></Point></Placemark>
      <Placemark><name>B</name><Point><coordinates>108.12,12.64</coordinates></Point></Placemark></Document></kml>"#;
    let (rs, out) = rejects_of(kml.as_bytes(), "g.kml", opts());
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.contains("<ExtendedData><Data name=\"error\"><value>health: is required"), "{text}");
    assert!(text.contains("<name>B</name><ExtendedData><Data name=\"error\">"), "{text}");
    let again = records_with(&out, "g.rejected.kml", opts());
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].key, rs[0].key);
    // Rejected again: still one error element each.
    let (_, twice) = rejects_of(&out, "g.rejected.kml", opts());
    assert_eq!(String::from_utf8(twice).unwrap().matches("name=\"error\"").count(), 2);
}

/// A file that never ends: `head`, then `filler` forever.
struct Endless {
    head: Vec<u8>,
    filler: &'static [u8],
    at: usize,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = if self.at < self.head.len() {
            &self.head[self.at..]
        } else {
            &self.filler[(self.at - self.head.len()) % self.filler.len()..]
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn endless_records_are_errors_not_memory() {
    let cases: [(&str, &str, &'static [u8]); 4] = [
        ("q.csv", "lat,lon,cultivar,health\n12.64,108.12,Ri6,\"good\n", b"still quoted,\n"),
        ("f.geojson", r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"a":["#, b"1,"),
        ("t.gpx", "<gpx><wpt lat=\"12.64\" lon=\"108.12\"><desc>", b"text "),
        ("p.kml", "<kml><Placemark><name>a</name>", b"<x>b</x>"),
    ];
    for (name, head, filler) in cases {
        let endless = Endless { head: head.as_bytes().to_vec(), filler, at: 0 };
        let reader = std::io::BufReader::with_capacity(1 << 16, endless);
        let ext = name.rsplit_once('.').map(|(_, e)| e);
        let result =
            SurveySource::open(Box::new(reader), name, ext, opts()).and_then(|s| s.collect::<Result<Vec<_>>>());
        let e = result.unwrap_err().to_string();
        let limit = format!("{} MiB", MAX_RECORD_BYTES >> 20);
        assert!(e.starts_with(name) && e.contains(&limit), "{e}");
    }
}

#[test]
fn a_control_character_in_any_value_rejects_the_row() {
    let text = format!(
        "{HEADER}\n{GOOD}\n12.6405427,108.1270364,4.4,Ri6\u{0}x,2021,good,DL-CK-EATIEU-001,2025-03-03T01:16:17Z\n\
         12.6405427,108.1270364,4.4,Ri6,2021,good,DL-CK\u{1b}-001,2025-03-03T01:16:17Z\n"
    );
    let rs = records(&text, "nul.csv");
    assert!(rs[0].tree.is_some(), "{:?}", problems(&rs[0]));
    assert!(rs[1].tree.is_none());
    assert!(
        problems(&rs[1]).contains(
            &"cultivar Ri6\u{0}x: contains a control character (such as U+0000); the file may be damaged".to_string()
        ),
        "{:?}",
        problems(&rs[1])
    );
    assert!(rs[2].tree.is_none());
    assert!(problems(&rs[2]).iter().any(|p| p.starts_with("orchard DL-CK\u{1b}-001: contains a control character")));
}
