//! Exports in every format, for no tree, one and several, with text that
//! needs escaping; read back with serde_json, the csv crate, quick-xml,
//! rusqlite (and GDAL's `ogrinfo` when installed) and the survey importer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufReader;
use std::path::Path;

use chrono::{DateTime, Utc};
use geo_core::{Cultivar, Health, LonLat, Orchard, OrchardId, SurveyId, Tree, TreeCode, TreeId, TreeRef};
use importer::export::{COLUMNS, columns};
use importer::{ExportFormat, ExportOptions, ExportRow, GpkgWriter, SourceOptions, SurveySource, TextExportWriter};

const PUBLIC: ExportOptions = ExportOptions { include_private: false };
const PRIVATE: ExportOptions = ExportOptions { include_private: true };

fn orchards() -> Vec<Orchard> {
    vec![
        Orchard {
            id: OrchardId::new("DL-CK-EATIEU-001").unwrap(),
            name: "Vườn \"Ông Tám\", lô <3> & 4 'B'".into(),
            owner: "Nguyễn Văn Tám; \"chú Tám\"".into(),
            commune: "Ea Tiêu".into(),
            district: "Cư Kuin".into(),
            province: "Đắk Lắk".into(),
            planting_area_code: Some("VN-DLK-0123".into()),
            gln: None,
            boundary: None,
        },
        Orchard {
            id: OrchardId::new("DL-BMT-HOATHANG-002").unwrap(),
            name: "Vườn bà Hương\nline two\ttab".into(),
            owner: "Trần Thị Hương".into(),
            commune: "Hòa Thắng".into(),
            district: "Buôn Ma Thuột".into(),
            province: "Đắk Lắk".into(),
            planting_area_code: None,
            gln: None,
            boundary: None,
        },
    ]
}

fn time(secs: i64, micros: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, micros * 1000).unwrap()
}

/// `n` trees over both orchards, the last one of an orchard not given
/// (no orchard fields), with every optional value absent on odd ids.
fn trees(n: usize) -> Vec<Tree> {
    let cultivars = ["Ri6", "Musang King", "Cơm Vàng, \"hạt lép\" <A&B>", "Sáu Hữu"];
    (1..=n as i64)
        .map(|i| {
            let odd = i % 2 == 1;
            Tree {
                id: TreeId(i * 7),
                code: TreeCode::from_serial((i * 7) as u64).unwrap(),
                location: LonLat::new(108.1270364 + i as f64 * 1.1e-4, 12.6405427 - i as f64 * 0.7e-4),
                accuracy_m: (!odd).then_some(4.4),
                cultivar: Cultivar::new(cultivars[i as usize % cultivars.len()]),
                planted_year: (!odd).then_some(2015 + (i % 8) as i32),
                health: Health::ALL[i as usize % 4],
                height_m: (!odd).then_some(6.5),
                girth_cm: (!odd).then_some(88.25),
                orchard_id: if i as usize == n && n > 1 {
                    OrchardId::new("NO-SUCH-ORCHARD").unwrap()
                } else {
                    orchards()[i as usize % 2].id.clone()
                },
                survey_id: (!odd).then_some(SurveyId(3)),
                created_at: time(1_741_000_000 + i, 0),
                updated_at: time(1_741_100_000 + i, 123_456),
                version: i,
            }
        })
        .collect()
}

fn orchard_of<'a>(orchards: &'a [Orchard], tree: &Tree) -> Option<&'a Orchard> {
    orchards.iter().find(|o| o.id == tree.orchard_id)
}

fn export_text(format: ExportFormat, trees: &[Tree], options: ExportOptions) -> String {
    let orchards = orchards();
    let mut w = TextExportWriter::new(format, Vec::new(), options, format!("test.{format}")).unwrap();
    w.begin().unwrap();
    for tree in trees {
        w.write(&ExportRow::new(tree, orchard_of(&orchards, tree))).unwrap();
        if tree.id.0 % 3 == 0 {
            w.flush().unwrap();
        }
    }
    assert_eq!(w.count(), trees.len() as u64);
    String::from_utf8(w.finish().unwrap()).unwrap()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// What each format should hold for `tree` under `column`, as text (`None` = absent).
fn expected(tree: &Tree, column: &str) -> Option<String> {
    let orchards = orchards();
    let o = orchard_of(&orchards, tree);
    match column {
        "id" => Some(tree.id.0.to_string()),
        "code" => Some(tree.code.as_str().to_string()),
        "lon" => Some(tree.location.lon.to_string()),
        "lat" => Some(tree.location.lat.to_string()),
        "accuracy_m" => tree.accuracy_m.map(|v| v.to_string()),
        "cultivar" => Some(tree.cultivar.as_str().to_string()),
        "planted_year" => tree.planted_year.map(|v| v.to_string()),
        "health" => Some(tree.health.as_str().to_string()),
        "height_m" => tree.height_m.map(|v| v.to_string()),
        "girth_cm" => tree.girth_cm.map(|v| v.to_string()),
        "orchard" => Some(tree.orchard_id.to_string()),
        "orchard_name" => o.map(|o| o.name.clone()),
        "planting_area_code" => o.and_then(|o| o.planting_area_code.clone()),
        "commune" => o.map(|o| o.commune.clone()),
        "district" => o.map(|o| o.district.clone()),
        "province" => o.map(|o| o.province.clone()),
        "survey_id" => tree.survey_id.map(|s| s.0.to_string()),
        "created_at" => Some(rfc3339(tree.created_at)),
        "updated_at" => Some(rfc3339(tree.updated_at)),
        "version" => Some(tree.version.to_string()),
        "owner" => o.map(|o| o.owner.clone()),
        other => panic!("unknown column {other}"),
    }
}

fn survey_options() -> SourceOptions {
    let mut opts = SourceOptions::default();
    opts.rules.this_year = 2026;
    opts
}

/// Reads an export back through the survey importer: every record names
/// its tree by id and carries the same values.
fn reimport(text: &str, ext: &str, trees: &[Tree]) {
    let reader = Box::new(BufReader::new(std::io::Cursor::new(text.as_bytes().to_vec())));
    let source = SurveySource::open(reader, &format!("export.{ext}"), Some(ext), survey_options()).unwrap();
    let records: Vec<_> = source.map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), trees.len());
    for (record, tree) in records.iter().zip(trees) {
        let problems: Vec<String> = record.problems.iter().map(|p| p.to_string()).collect();
        let new = record.tree.as_ref().unwrap_or_else(|| panic!("{ext}: tree {} rejected: {problems:?}", tree.id));
        assert_eq!(record.target, Some(TreeRef::Id(tree.id)), "{ext}");
        assert_eq!(new.code, Some(tree.code), "{ext}");
        assert!((new.location.lon - tree.location.lon).abs() < 1e-7, "{ext}");
        assert!((new.location.lat - tree.location.lat).abs() < 1e-7, "{ext}");
        assert_eq!(new.cultivar, tree.cultivar, "{ext}");
        assert_eq!(new.health, tree.health, "{ext}");
        assert_eq!(new.planted_year, tree.planted_year, "{ext}");
        assert_eq!(new.accuracy_m, tree.accuracy_m, "{ext}");
        assert_eq!(new.height_m, tree.height_m, "{ext}");
        assert_eq!(new.girth_cm, tree.girth_cm, "{ext}");
        assert_eq!(new.orchard_id, tree.orchard_id, "{ext}");
    }
}

#[test]
fn formats_know_their_names_and_types() {
    let f: ExportFormat = "gpkg".parse().unwrap();
    assert_eq!((f.content_type(), f.extension()), ("application/geopackage+sqlite3", "gpkg"));
    assert_eq!(ExportFormat::Csv.content_type(), "text/csv; charset=utf-8");
    assert!("xlsx".parse::<ExportFormat>().is_err());
    let e = TextExportWriter::new(ExportFormat::GeoPackage, Vec::new(), PUBLIC, "out.gpkg").unwrap_err();
    assert!(e.to_string().starts_with("out.gpkg: "), "{e}");
}

#[test]
fn geojson_is_a_feature_collection() {
    for n in [0, 1, 5] {
        let trees = trees(n);
        for options in [PUBLIC, PRIVATE] {
            let text = export_text(ExportFormat::GeoJson, &trees, options);
            let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(json["type"], "FeatureCollection");
            let features = json["features"].as_array().unwrap();
            assert_eq!(features.len(), n);
            for (f, tree) in features.iter().zip(&trees) {
                assert_eq!(f["type"], "Feature");
                assert_eq!(f["id"], tree.id.0);
                assert_eq!(f["geometry"]["type"], "Point");
                let c = f["geometry"]["coordinates"].as_array().unwrap();
                assert!((c[0].as_f64().unwrap() - tree.location.lon).abs() < 1e-7);
                assert!((c[1].as_f64().unwrap() - tree.location.lat).abs() < 1e-7);
                let props = f["properties"].as_object().unwrap();
                let want: Vec<&str> = columns(options).iter().copied().filter(|c| *c != "lon" && *c != "lat").collect();
                assert_eq!(props.keys().map(String::as_str).collect::<Vec<_>>().len(), want.len());
                for column in want {
                    let have = match &props[column] {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    assert_eq!(have, expected(tree, column), "{column}");
                }
                assert_eq!(props.contains_key("owner"), options.include_private);
            }
        }
        if n > 0 {
            reimport(&export_text(ExportFormat::GeoJson, &trees, PUBLIC), "geojson", &trees);
        }
    }
}

#[test]
fn csv_reads_back() {
    for n in [0, 1, 5] {
        let trees = trees(n);
        for options in [PUBLIC, PRIVATE] {
            let text = export_text(ExportFormat::Csv, &trees, options);
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
            assert_eq!(header, columns(options));
            assert_eq!(header.contains(&"owner".to_string()), options.include_private);
            let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            assert_eq!(rows.len(), n);
            for (row, tree) in rows.iter().zip(&trees) {
                for (column, value) in header.iter().zip(row.iter()) {
                    let want = expected(tree, column).unwrap_or_default();
                    assert_eq!(value, want, "{column}");
                }
                // Coordinates in full precision: bit for bit.
                assert_eq!(row[2].parse::<f64>().unwrap(), tree.location.lon);
                assert_eq!(row[3].parse::<f64>().unwrap(), tree.location.lat);
            }
        }
        if n > 0 {
            reimport(&export_text(ExportFormat::Csv, &trees, PUBLIC), "csv", &trees);
        }
    }
}

/// A KML placemark as read: name, data (name, value) and coordinates.
type Placemark = (String, Vec<(String, String)>, String);

/// Placemarks of a KML document.
fn parse_kml(text: &str) -> Vec<Placemark> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut placemarks = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut current: Option<Placemark> = None;
    let mut data_name = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                let name = String::from_utf8(e.local_name().as_ref().to_vec()).unwrap();
                if name == "Placemark" {
                    current = Some(Default::default());
                }
                if name == "Data" {
                    let attr = e.try_get_attribute("name").unwrap().unwrap();
                    data_name = attr.unescape_value().unwrap().into_owned();
                }
                path.push(name);
            }
            Event::End(_) if path.pop().as_deref() == Some("Placemark") => placemarks.push(current.take().unwrap()),
            Event::Text(t) => {
                let text = t.unescape().unwrap().into_owned();
                if let Some((name, data, coordinates)) = current.as_mut() {
                    match path.last().map(String::as_str) {
                        Some("name") => name.push_str(&text),
                        Some("value") => data.push((data_name.clone(), text)),
                        Some("coordinates") => coordinates.push_str(&text),
                        _ => {}
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(path.is_empty(), "unclosed elements: {path:?}");
    placemarks
}

#[test]
fn kml_parses_with_quick_xml() {
    for n in [0, 1, 5] {
        let trees = trees(n);
        for options in [PUBLIC, PRIVATE] {
            let text = export_text(ExportFormat::Kml, &trees, options);
            assert!(text.starts_with(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\">"
            ));
            let placemarks = parse_kml(&text);
            assert_eq!(placemarks.len(), n);
            for ((name, data, coordinates), tree) in placemarks.iter().zip(&trees) {
                assert_eq!(name, tree.code.as_str());
                let (lon, lat) = coordinates.split_once(',').unwrap();
                assert!((lon.parse::<f64>().unwrap() - tree.location.lon).abs() < 1e-7);
                assert!((lat.parse::<f64>().unwrap() - tree.location.lat).abs() < 1e-7);
                let want: Vec<(String, String)> = columns(options)
                    .iter()
                    .filter(|c| **c != "lon" && **c != "lat")
                    .filter_map(|c| expected(tree, c).map(|v| (c.to_string(), v)))
                    .collect();
                assert_eq!(data, &want);
                assert_eq!(
                    data.iter().any(|(k, _)| k == "owner"),
                    options.include_private && want.iter().any(|(k, _)| k == "owner")
                );
            }
        }
        if n > 0 {
            reimport(&export_text(ExportFormat::Kml, &trees, PUBLIC), "kml", &trees);
        }
    }
}

#[test]
fn private_fields_only_when_asked() {
    let trees = trees(3);
    for format in [ExportFormat::GeoJson, ExportFormat::Csv, ExportFormat::Kml] {
        let public = export_text(format, &trees, PUBLIC);
        let private = export_text(format, &trees, PRIVATE);
        assert!(!public.contains("owner") && !public.contains("Nguyễn Văn Tám"), "{format}");
        assert!(private.contains("owner") && private.contains("Nguyễn Văn Tám"), "{format}");
    }
    let dir = tempfile::tempdir().unwrap();
    for (options, name) in [(PUBLIC, "public.gpkg"), (PRIVATE, "private.gpkg")] {
        let path = dir.path().join(name);
        write_gpkg(&path, &trees, options);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let columns = table_columns(&conn);
        assert_eq!(columns.contains(&"owner".to_string()), options.include_private);
        let bytes = std::fs::read(&path).unwrap();
        let has_owner = bytes.windows("Nguyễn Văn Tám".len()).any(|w| w == "Nguyễn Văn Tám".as_bytes());
        assert_eq!(has_owner, options.include_private, "{name}");
    }
}

fn write_gpkg(path: &Path, trees: &[Tree], options: ExportOptions) -> u64 {
    let orchards = orchards();
    let mut w = GpkgWriter::create(path, options).unwrap();
    for tree in trees {
        w.write(&ExportRow::new(tree, orchard_of(&orchards, tree))).unwrap();
    }
    w.finish().unwrap()
}

fn table_columns(conn: &rusqlite::Connection) -> Vec<String> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('trees') ORDER BY cid").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
}

/// Decodes a GeoPackageBinary point: (srs_id, lon, lat).
fn decode_point(blob: &[u8]) -> (i32, f64, f64) {
    assert_eq!(&blob[..3], b"GP\x00", "magic and version");
    let flags = blob[3];
    assert_eq!(flags & 0b0010_0000, 0, "standard binary");
    assert_eq!(flags & 0b0001_0000, 0, "not empty");
    assert_eq!(flags & 1, 1, "little-endian header");
    let envelope = match (flags >> 1) & 0b111 {
        0 => 0,
        1 => 32,
        2 | 3 => 48,
        4 => 64,
        e => panic!("bad envelope indicator {e}"),
    };
    let srs = i32::from_le_bytes(blob[4..8].try_into().unwrap());
    let wkb = &blob[8 + envelope..];
    assert_eq!(wkb.len(), 21);
    assert_eq!(wkb[0], 1, "little-endian WKB");
    assert_eq!(u32::from_le_bytes(wkb[1..5].try_into().unwrap()), 1, "WKB Point");
    let x = f64::from_le_bytes(wkb[5..13].try_into().unwrap());
    let y = f64::from_le_bytes(wkb[13..21].try_into().unwrap());
    (srs, x, y)
}

fn check_gpkg(path: &Path, trees: &[Tree], options: ExportOptions) {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(pragma("application_id"), 0x4750_4B47);
    assert_eq!(pragma("user_version"), 10300);
    assert_eq!(conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).unwrap(), "ok");
    assert_eq!(conn.query_row("PRAGMA foreign_key_check", [], |_| Ok(())).ok(), None, "foreign keys hold");

    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
    let tables: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    for table in [
        "gpkg_contents",
        "gpkg_extensions",
        "gpkg_geometry_columns",
        "gpkg_spatial_ref_sys",
        "rtree_trees_geom",
        "trees",
    ] {
        assert!(tables.contains(&table.to_string()), "{table} missing from {tables:?}");
    }
    let srs: Vec<(i64, String, i64)> = conn
        .prepare("SELECT srs_id, organization, organization_coordsys_id FROM gpkg_spatial_ref_sys ORDER BY srs_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(srs, [(-1, "NONE".into(), -1), (0, "NONE".into(), 0), (4326, "EPSG".into(), 4326)]);
    let wkt: String =
        conn.query_row("SELECT definition FROM gpkg_spatial_ref_sys WHERE srs_id = 4326", [], |r| r.get(0)).unwrap();
    assert!(wkt.starts_with("GEOGCS[\"WGS 84\"") && wkt.ends_with("AUTHORITY[\"EPSG\",\"4326\"]]"), "{wkt}");
    let geometry: (String, String, String, i64, i64, i64) = conn
        .query_row("SELECT * FROM gpkg_geometry_columns", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap();
    assert_eq!(geometry, ("trees".into(), "geom".into(), "POINT".into(), 4326, 0, 0));
    let (data_type, srs_id, bounds): (String, i64, [Option<f64>; 4]) = conn
        .query_row(
            "SELECT data_type, srs_id, min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'trees'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?])),
        )
        .unwrap();
    assert_eq!((data_type.as_str(), srs_id), ("features", 4326));
    let want = geo_core::BBox::around(trees.iter().map(|t| t.location));
    assert_eq!(
        bounds,
        want.map_or([None; 4], |b| [Some(b.min_lon), Some(b.min_lat), Some(b.max_lon), Some(b.max_lat)])
    );
    let extension: String = conn
        .query_row(
            "SELECT extension_name FROM gpkg_extensions WHERE table_name = 'trees' AND column_name = 'geom'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(extension, "gpkg_rtree_index");

    let mut want_columns = vec!["fid".to_string(), "geom".to_string()];
    want_columns.extend(columns(options).iter().map(|c| c.to_string()));
    assert_eq!(table_columns(&conn), want_columns);

    let count: i64 = conn.query_row("SELECT count(*) FROM trees", [], |r| r.get(0)).unwrap();
    assert_eq!(count, trees.len() as i64);
    let indexed: i64 = conn.query_row("SELECT count(*) FROM rtree_trees_geom", [], |r| r.get(0)).unwrap();
    assert_eq!(indexed, trees.len() as i64);
    let rtree: String = conn.query_row("SELECT rtreecheck('rtree_trees_geom')", [], |r| r.get(0)).unwrap();
    assert_eq!(rtree, "ok");

    let names = columns(options).join(", ");
    let mut stmt = conn.prepare(&format!("SELECT fid, geom, {names} FROM trees ORDER BY fid")).unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut i = 0;
    while let Some(row) = rows.next().unwrap() {
        let tree = &trees[i];
        i += 1;
        let fid: i64 = row.get(0).unwrap();
        let (srs, x, y) = decode_point(&row.get::<_, Vec<u8>>(1).unwrap());
        assert_eq!((srs, x, y), (4326, tree.location.lon, tree.location.lat));
        // The spatial index finds the tree at its position.
        let hit: i64 = conn
            .query_row(
                "SELECT count(*) FROM rtree_trees_geom WHERE id = ?1 AND minx <= ?2 AND maxx >= ?2 AND miny <= ?3 AND maxy >= ?3",
                rusqlite::params![fid, x, y],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hit, 1);
        for (k, column) in columns(options).iter().enumerate() {
            let have: Option<String> = match row.get_ref(k + 2).unwrap() {
                rusqlite::types::ValueRef::Null => None,
                rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8(t.to_vec()).unwrap()),
                rusqlite::types::ValueRef::Blob(_) => panic!("{column} is a blob"),
            };
            let want = match *column {
                "created_at" | "updated_at" => expected(tree, column).map(|_| {
                    let t = if *column == "created_at" { tree.created_at } else { tree.updated_at };
                    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
                }),
                _ => expected(tree, column),
            };
            assert_eq!(have, want, "{column}");
        }
    }
    assert_eq!(i, trees.len());
    check_with_ogrinfo(path, trees.len());
}

/// `ogrinfo -so FILE trees` when GDAL is installed: right count, EPSG:4326,
/// no error or warning.
fn check_with_ogrinfo(path: &Path, count: usize) {
    let output = match std::process::Command::new("ogrinfo").arg("-so").arg("-ro").arg(path).arg("trees").output() {
        Ok(output) => output,
        Err(_) => {
            eprintln!("ogrinfo not on PATH: skipping the GDAL check of {} (apt-get install gdal-bin)", path.display());
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ogrinfo failed: {stdout}\n{stderr}");
    assert!(stderr.trim().is_empty(), "ogrinfo complained: {stderr}");
    assert!(stdout.contains("Geometry: Point"), "{stdout}");
    assert!(stdout.contains(&format!("Feature Count: {count}\n")), "{stdout}");
    assert!(stdout.contains("ID[\"EPSG\",4326]") || stdout.contains("AUTHORITY[\"EPSG\",\"4326\"]"), "{stdout}");
    assert!(stdout.contains("FID Column = fid") && stdout.contains("Geometry Column = geom"), "{stdout}");
    assert!(stdout.contains("updated_at: DateTime"), "{stdout}");
}

#[test]
fn geopackage_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    for n in [0, 1, 5] {
        let trees = trees(n);
        for (options, private) in [(PUBLIC, ""), (PRIVATE, "-private")] {
            let path = dir.path().join(format!("trees-{n}{private}.gpkg"));
            assert_eq!(write_gpkg(&path, &trees, options), n as u64);
            check_gpkg(&path, &trees, options);
        }
    }
}

#[test]
fn geopackage_replaces_an_existing_file_and_names_a_bad_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.gpkg");
    std::fs::write(&path, b"not a database at all").unwrap();
    write_gpkg(&path, &trees(2), PUBLIC);
    write_gpkg(&path, &trees(3), PUBLIC);
    check_gpkg(&path, &trees(3), PUBLIC);
    let bad = dir.path().join("no/such/dir/x.gpkg");
    let e = GpkgWriter::create(&bad, PUBLIC).unwrap_err().to_string();
    assert!(e.starts_with(&bad.display().to_string()), "{e}");
}

#[test]
fn output_errors_name_the_file() {
    #[derive(Debug)]
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::other("disk full"))
        }
    }
    for format in [ExportFormat::GeoJson, ExportFormat::Csv, ExportFormat::Kml] {
        let w = TextExportWriter::new(format, Broken, PUBLIC, "out.txt").unwrap();
        let e = w.finish().unwrap_err().to_string();
        assert_eq!(e, "out.txt: cannot write: disk full");
    }
    assert_eq!(COLUMNS.last(), Some(&"owner"));
}

/// A million trees to GeoPackage and GeoJSON, timed:
/// `cargo test --release -p orchardmap-importer --test export -- --ignored --nocapture`.
#[test]
#[ignore = "timing: a million trees"]
fn million_trees_timing() {
    let orchards = orchards();
    let base = trees(2).remove(1);
    let all: Vec<Tree> = (0..1_000_000i64)
        .map(|i| Tree {
            id: TreeId(i + 1),
            code: TreeCode::from_serial(i as u64 + 1).unwrap(),
            location: LonLat::new(107.5 + (i % 1000) as f64 * 1e-3, 11.5 + (i / 1000) as f64 * 1e-3),
            version: 1 + i % 5,
            ..base.clone()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();

    let path = dir.path().join("million.gpkg");
    let started = std::time::Instant::now();
    let mut w = GpkgWriter::create(&path, PUBLIC).unwrap();
    for tree in &all {
        w.write(&ExportRow::new(tree, orchard_of(&orchards, tree))).unwrap();
    }
    let written = started.elapsed();
    assert_eq!(w.finish().unwrap(), 1_000_000);
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "gpkg: 1M trees in {:?} (rows {written:?}, index and commit {:?}; {} MB)",
        started.elapsed(),
        started.elapsed() - written,
        size / 1_000_000
    );
    check_with_ogrinfo(&path, all.len());

    for format in [ExportFormat::GeoJson, ExportFormat::Csv, ExportFormat::Kml] {
        let path = dir.path().join(format!("million.{}", format.extension()));
        let started = std::time::Instant::now();
        let file = std::fs::File::create(&path).unwrap();
        let mut w = TextExportWriter::new(format, file, PUBLIC, path.display().to_string()).unwrap();
        for tree in &all {
            w.write(&ExportRow::new(tree, orchard_of(&orchards, tree))).unwrap();
        }
        w.finish().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        eprintln!("{format}: 1M trees in {:?} ({} MB)", started.elapsed(), size / 1_000_000);
    }
}
