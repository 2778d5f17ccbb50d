//! Router tests: the real router over a temporary SQLite store, driven with `oneshot`.
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use geo_core::{Cultivar, Health, LonLat, NewTree, Orchard, OrchardId, polygon_from_ring};
use http_body_util::BodyExt;
use serde_json::Value;
use store::ImportBatch;
use tower::ServiceExt;

const ORIGIN: LonLat = LonLat::new(108.05, 12.68);

async fn state_with_grid(dir: &tempfile::TempDir) -> api::AppState {
    let store = store::open(dir.path().join("router.db").to_str().unwrap()).await.unwrap();
    let orchard = Orchard {
        id: OrchardId::new("DL-TEST-001").unwrap(),
        name: "Vườn thử <b>nghiệm</b>".into(),
        owner: "Y Blang Niê".into(),
        commune: "Ea Tiêu".into(),
        district: "Cư Kuin".into(),
        province: "Đắk Lắk".into(),
        planting_area_code: Some("VN-DLOR-0001".into()),
        gln: None,
        boundary: Some(polygon_from_ring(&[
            ORIGIN.offset_m(-5.0, -5.0),
            ORIGIN.offset_m(50.0, -5.0),
            ORIGIN.offset_m(50.0, 50.0),
            ORIGIN.offset_m(-5.0, 50.0),
            ORIGIN.offset_m(-5.0, -5.0),
        ])),
    };
    // A 5 x 5 grid, 9 m apart.
    let trees = (0..25)
        .map(|i| NewTree {
            code: None,
            location: ORIGIN.offset_m((i % 5) as f64 * 9.0, (i / 5) as f64 * 9.0),
            accuracy_m: Some(3.0),
            cultivar: Cultivar::new("Ri6"),
            planted_year: Some(2015 + i % 5),
            health: if i == 24 { Health::Dead } else { Health::Good },
            height_m: None,
            girth_cm: None,
            orchard_id: orchard.id.clone(),
            survey_id: None,
        })
        .collect();
    store.import(ImportBatch { survey: None, orchards: vec![orchard], trees }).await.unwrap();
    let cache = Arc::new(api::TreeCache::load(store.as_ref()).await.unwrap());
    api::AppState::new(store, cache)
}

async fn call(state: &api::AppState, uri: &str) -> (StatusCode, Value) {
    let resp = api::router(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn nearest_within_and_bbox_agree_with_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_grid(&dir).await;
    let q = ORIGIN.offset_m(9.0, 0.5);
    let (status, body) = call(&state, &format!("/api/trees/nearest?lon={}&lat={}&k=3", q.lon, q.lat)).await;
    assert_eq!(status, StatusCode::OK);
    let f = body["features"].as_array().unwrap();
    assert_eq!(f.len(), 3);
    assert!((f[0]["properties"]["distance_m"].as_f64().unwrap() - 0.5).abs() < 0.002);

    // Radius 9.01 m around the grid origin: the origin and its two neighbours.
    let (_, body) =
        call(&state, &format!("/api/trees/within?lon={}&lat={}&radius_m=9.01", ORIGIN.lon, ORIGIN.lat)).await;
    assert_eq!(body["numberMatched"], 3);

    // Paging: 25 trees, 10 a page.
    let sw = ORIGIN.offset_m(-1.0, -1.0);
    let ne = ORIGIN.offset_m(40.0, 40.0);
    let (_, page) =
        call(&state, &format!("/api/trees?bbox={},{},{},{}&limit=10", sw.lon, sw.lat, ne.lon, ne.lat)).await;
    assert_eq!(page["numberMatched"], 25);
    assert_eq!(page["numberReturned"], 10);
    let next = page["links"][0]["href"].as_str().unwrap().to_string();
    let (_, page2) = call(&state, &next).await;
    assert_eq!(page2["numberReturned"], 10);
    assert!(page2["features"][0]["id"].as_i64() > page["features"][9]["id"].as_i64());
}

#[tokio::test]
async fn tree_by_id_and_code_and_orchard_count() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_grid(&dir).await;
    let (status, tree) = call(&state, "/api/trees/25").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tree["properties"]["health"], "dead");
    assert_eq!(tree["properties"]["version"], 1);
    let code = tree["properties"]["code"].as_str().unwrap();
    let (status, same) = call(&state, &format!("/api/trees/{}-{}", &code[..3], &code[3..])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["id"], 25);

    let (status, orchard) = call(&state, "/api/orchards/DL-TEST-001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orchard["properties"]["tree_count"], 25);
    assert_eq!(orchard["properties"]["planting_area_code"], "VN-DLOR-0001");
    assert_eq!(orchard["geometry"]["coordinates"][0].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn bad_input_is_a_400_that_names_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_grid(&dir).await;
    for (uri, param) in [
        ("/api/trees/nearest?lon=108&lat=95", "lat"),
        ("/api/trees/nearest?lon=108&lat=12&k=0", "k"),
        ("/api/trees/nearest?lon=108&lat=12&k=1001", "k"),
        ("/api/trees/within?lon=108&lat=12", "radius_m"),
        ("/api/trees/within?lon=108&lat=12&radius_m=NaN", "radius_m"),
        ("/api/trees?bbox=108,12,108.1", "bbox"),
        ("/api/trees?bbox=108,12,108.1,12.1&limit=-1", "limit"),
    ] {
        let (status, body) = call(&state, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error"]["code"], "bad_parameter", "{uri}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with(param), "{uri}: {body}");
    }
    let (status, body) = call(&state, "/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}
