//! The map page and what it loads: `/`, `/map/style.json`, `/map/app.js|css`, `/map/vendor/...`.
//! (The page itself is tested in a browser by scripts/map-e2e.sh.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{get, send, world};

fn content_type(r: &common::Reply) -> &str {
    r.headers.get("content-type").unwrap().to_str().unwrap()
}

fn text(r: &common::Reply) -> String {
    String::from_utf8(r.bytes.clone()).unwrap()
}

#[tokio::test]
async fn page_loads_maplibre_from_the_npm_package_when_installed_else_from_the_cdn() {
    let w = world().await;
    let vendor = tempfile::tempdir().unwrap();
    std::fs::write(vendor.path().join("maplibre-gl.js"), "/* maplibre */").unwrap();
    std::fs::write(vendor.path().join("maplibre-gl.css"), ".maplibregl-map{}").unwrap();

    let mut installed = w.state.clone();
    installed.map = Arc::new(api::MapSettings { assets: Some(vendor.path().to_path_buf()), basemap: None });
    let page = get(&installed, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(content_type(&page).starts_with("text/html"));
    let html = text(&page);
    assert!(html.contains(r#"<script src="/map/vendor/maplibre-gl.js">"#), "{html}");
    assert!(html.contains(r#"href="/map/vendor/maplibre-gl.css""#));
    assert!(html.contains(r#"<script src="/map/app.js">"#) && html.contains(r#"href="/map/app.css""#));
    assert!(!html.contains("{{"), "every placeholder is filled");
    let js = get(&installed, "/map/vendor/maplibre-gl.js", None).await;
    assert_eq!((js.status, text(&js).as_str()), (StatusCode::OK, "/* maplibre */"));
    assert!(content_type(&js).starts_with("text/javascript"));
    let css = get(&installed, "/map/vendor/maplibre-gl.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(content_type(&css).starts_with("text/css"));

    let mut missing = w.state.clone();
    missing.map = Arc::new(api::MapSettings { assets: Some(vendor.path().join("nowhere")), basemap: None });
    let html = text(&get(&missing, "/", None).await);
    assert!(html.contains("https://unpkg.com/maplibre-gl@5.24.1/dist/maplibre-gl.js"), "{html}");
    assert!(html.contains("https://unpkg.com/maplibre-gl@5.24.1/dist/maplibre-gl.css"));
    let js = get(&missing, "/map/vendor/maplibre-gl.js", None).await;
    assert_eq!(js.status, StatusCode::NOT_FOUND);
    assert!(js.body["error"]["message"].as_str().unwrap().contains("npm ci"), "{}", js.body);
}

#[tokio::test]
async fn style_points_at_this_servers_tiles_with_the_configured_basemap() {
    let w = world().await;
    let r = send(&w.state, "GET", "/map/style.json", None, &[("host", "map.example.vn")], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(content_type(&r).starts_with("application/json"));
    let style = &r.body;
    assert_eq!(style["version"], 8);
    assert_eq!(style["sources"]["trees"]["url"], "http://map.example.vn/tiles/trees.json");
    // Default basemap: OpenStreetMap, credited.
    assert_eq!(style["sources"]["basemap"]["tiles"][0], "https://tile.openstreetmap.org/{z}/{x}/{y}.png");
    assert!(style["sources"]["basemap"]["attribution"].as_str().unwrap().contains("OpenStreetMap"));
    // Centred on the trees served, their extent in the metadata.
    let bounds = style["metadata"]["orchardmap"]["bounds"].as_array().unwrap();
    let (lon, lat) = (style["center"][0].as_f64().unwrap(), style["center"][1].as_f64().unwrap());
    assert!(bounds[0].as_f64().unwrap() <= lon && lon <= bounds[2].as_f64().unwrap());
    assert!(bounds[1].as_f64().unwrap() <= lat && lat <= bounds[3].as_f64().unwrap());

    let mut offline = w.state.clone();
    offline.map = Arc::new(api::MapSettings { basemap: None, assets: None });
    let style = get(&offline, "/map/style.json", None).await.body;
    assert!(style["sources"].get("basemap").is_none());
    assert!(style["layers"].as_array().unwrap().iter().all(|l| l["source"] != "basemap"));
}

#[tokio::test]
async fn script_and_stylesheet_are_served() {
    let w = world().await;
    let js = get(&w.state, "/map/app.js", None).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(content_type(&js).starts_with("text/javascript"));
    assert!(text(&js).contains("/map/style.json"));
    let css = get(&w.state, "/map/app.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(content_type(&css).starts_with("text/css"));
    // The former home page moved to /about.
    let about = get(&w.state, "/about", None).await;
    assert_eq!(about.status, StatusCode::OK);
    assert!(text(&about).contains("/healthz"));
}
