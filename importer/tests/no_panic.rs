//! No input makes the readers panic, and what they accept is valid.
#![allow(clippy::unwrap_used)]

use geo_core::VIETNAM;
use importer::{Error, parse_orchards_geojson, read_orchards_geojson, read_trees_csv};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

const HEADER: &str = "lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at";

/// Checks the invariants of a CSV import of `text`.
fn check_csv(bytes: &[u8]) {
    let physical_lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    match read_trees_csv(bytes, "fuzz.csv", 2026) {
        Ok(import) => {
            for row in &import.rows {
                assert!(row.tree.validate(&VIETNAM, 2026).is_ok(), "accepted an invalid tree: {row:?}");
                assert!(row.line >= 2);
                assert!(!import.rejected().any(|p| p.line == row.line), "row both accepted and rejected");
            }
            for p in &import.problems {
                assert!(p.line >= 2, "{p}");
                let cr_only = !bytes.contains(&b'\n');
                assert!(cr_only || p.line <= physical_lines, "{p} beyond the {physical_lines} lines");
                assert!(p.to_string().starts_with("fuzz.csv line "));
            }
            assert!(import.rows.len() <= import.rows_read);
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.csv"), "{e}"),
    }
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("12.68".to_string()),
        Just("108.05".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("2019".to_string()),
        Just("99999999999999999999".to_string()),
        Just("good".to_string()),
        Just("chết".to_string()),
        Just("Ri6".to_string()),
        Just("Chuồng Bò".to_string()),
        Just("DL-CK-EATIEU-001".to_string()),
        Just("2024-03-15".to_string()),
        Just("2024-03-15T08:30:00+07:00".to_string()),
        Just("\"quoted, with comma\"".to_string()),
        Just("\"multi\nline\"".to_string()),
        Just("\"unterminated".to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        "[^,\n\"]{0,12}",
    ]
}

fn row() -> impl Strategy<Value = String> {
    vec(field(), 0..11).prop_map(|fields| fields.join(","))
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("type"),
        Just("features"),
        Just("geometry"),
        Just("coordinates"),
        Just("properties"),
        Just("id"),
        Just("name"),
        Just("province"),
        Just("planting_area_code"),
        Just("owner"),
    ]
    .prop_map(str::to_string)
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-200.0f64..200.0).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("Feature"),
            Just("FeatureCollection"),
            Just("Polygon"),
            Just("MultiPolygon"),
            Just("Point"),
            Just("DL-1"),
            Just("Đắk Lắk"),
            Just(""),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            vec((json_key(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn csv_never_panics_on_bytes(bytes in vec(any::<u8>(), 0..600)) {
        check_csv(&bytes);
    }

    #[test]
    fn csv_never_panics_on_text(text in "\\PC{0,300}") {
        check_csv(text.as_bytes());
    }

    #[test]
    fn csv_never_panics_after_a_header(body in "[-0-9a-zA-Z.,\"\r\n :TZ+đồ\u{feff}]{0,400}") {
        check_csv(format!("{HEADER}\n{body}").as_bytes());
    }

    #[test]
    fn csv_rows_of_plausible_and_hostile_values(rows in vec(row(), 0..25), crlf in any::<bool>()) {
        let end = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("{HEADER}{end}");
        for r in &rows {
            text.push_str(r);
            text.push_str(end);
        }
        check_csv(text.as_bytes());
    }

    #[test]
    fn geojson_never_panics_on_bytes(bytes in vec(any::<u8>(), 0..600)) {
        if let Err(e) = read_orchards_geojson(&bytes[..], "fuzz.geojson") {
            prop_assert!(e.to_string().starts_with("fuzz.geojson"));
        }
    }

    #[test]
    fn geojson_never_panics_on_json(value in json()) {
        for doc in [
            value.clone(),
            serde_json::json!({"type": "FeatureCollection", "features": [value.clone()]}),
            serde_json::json!({"type": "Feature", "properties": value.clone(), "geometry": null}),
            serde_json::json!({"type": "Feature", "properties": {"id": "DL-1", "name": "x", "province": "y"},
                               "geometry": {"type": "Polygon", "coordinates": value.clone()}}),
            serde_json::json!({"type": "Feature", "properties": {"id": "DL-1", "name": "x", "province": "y"},
                               "geometry": {"type": "MultiPolygon", "coordinates": value.clone()}}),
        ] {
            match parse_orchards_geojson(doc.to_string().as_bytes(), "fuzz.geojson") {
                Ok(import) => {
                    for o in &import.orchards {
                        prop_assert!(o.validate(&VIETNAM).is_ok());
                    }
                }
                Err(Error::InvalidFeatures { problems, .. }) => prop_assert!(!problems.is_empty()),
                Err(e) => prop_assert!(e.to_string().starts_with("fuzz.geojson")),
            }
        }
    }
}
