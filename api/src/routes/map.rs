//! The map page: `GET /` (HTML), its MapLibre style `GET /map/style.json`, its
//! script and stylesheet (`/map/app.js`, `/map/app.css`, embedded from
//! `api/assets/`) and MapLibre GL JS itself (`/map/vendor/maplibre-gl.js|css`).
//!
//! MapLibre is not copied into the repository: it is served from the npm
//! package's `dist/` folder when that is present at run time ([`MapSettings::assets`],
//! else `node_modules/maplibre-gl/dist` in the working directory or in the
//! source tree), and otherwise the page loads the same pinned version from a
//! public CDN.
//!
//! The style has no `glyphs` (no font server is needed, so it works offline):
//! every layer is a circle, fill or line; cluster counts are drawn by the page
//! as HTML labels over the cluster circles.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use geo_core::{BBox, KNOWN_CULTIVARS};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::{AppError, Result};

/// The MapLibre GL JS version the page is written for (pinned in `package.json`).
pub const MAPLIBRE_VERSION: &str = "5.24.1";

/// The default basemap: OpenStreetMap's standard raster tiles.
pub const OSM_TILES: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

const APP_JS: &str = include_str!("../../assets/map/app.js");
const APP_CSS: &str = include_str!("../../assets/map/app.css");
const PAGE_HTML: &str = include_str!("../../assets/map/index.html");

/// Health states and their colours on the map (and in the legend).
pub const HEALTH_COLORS: [(&str, &str); 4] =
    [("good", "#1e9e4a"), ("fair", "#e3b100"), ("poor", "#f0640f"), ("dead", "#6d4c41")];

/// Colours of the known cultivars (in [`KNOWN_CULTIVARS`] order), then of any other.
const CULTIVAR_PALETTE: [&str; 8] =
    ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4"];
const OTHER_COLOR: &str = "#9e9e9e";

/// Cluster colour by the share of poor and dead trees in it.
const CLUSTER_STOPS: [(f64, &str); 4] = [(0.05, "#2e9d57"), (0.15, "#d9a400"), (0.3, "#ee6a12"), (0.5, "#b3261e")];

/// How the map page is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSettings {
    /// Raster basemap URL template with `{z}`, `{x}`, `{y}` (`None`: no basemap, for offline use).
    pub basemap: Option<String>,
    /// The `dist/` folder of the `maplibre-gl` npm package (`None`: look in `node_modules`).
    pub assets: Option<PathBuf>,
}

impl Default for MapSettings {
    /// The OpenStreetMap basemap, MapLibre from `node_modules` when installed.
    fn default() -> Self {
        Self { basemap: Some(OSM_TILES.to_string()), assets: None }
    }
}

impl MapSettings {
    /// The folder MapLibre GL JS is served from, if it holds `maplibre-gl.js`:
    /// [`MapSettings::assets`] when given, else `node_modules/maplibre-gl/dist`
    /// in the working directory, else in the source tree this was built from.
    pub fn vendor_dir(&self) -> Option<PathBuf> {
        let candidates = match &self.assets {
            Some(dir) => vec![dir.clone()],
            None => vec![
                PathBuf::from("node_modules/maplibre-gl/dist"),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/maplibre-gl/dist"),
            ],
        };
        candidates.into_iter().find(|dir| dir.join("maplibre-gl.js").is_file())
    }
}

/// The routes of the map page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/map/style.json", get(style_json))
        .route("/map/app.js", get(app_js))
        .route("/map/app.css", get(app_css))
        .route("/map/vendor/maplibre-gl.js", get(vendor_js))
        .route("/map/vendor/maplibre-gl.css", get(vendor_css))
}

/// Where a basemap URL's tiles come from, for the attribution.
fn basemap_attribution(url: &str) -> String {
    if url.contains("openstreetmap.org") {
        "© <a href=\"https://www.openstreetmap.org/copyright\">OpenStreetMap</a> contributors".to_string()
    } else {
        let host = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(url);
        format!("Basemap: {}", host.replace(['<', '>', '&', '"'], ""))
    }
}

/// Tree colour by health, as a MapLibre expression.
fn health_color() -> Value {
    let mut expr = vec![json!("match"), json!(["get", "health"])];
    for (health, color) in HEALTH_COLORS {
        expr.push(json!(health));
        expr.push(json!(color));
    }
    expr.push(json!(OTHER_COLOR));
    Value::Array(expr)
}

/// The known cultivars with their colours.
fn cultivar_colors() -> impl Iterator<Item = (&'static str, &'static str)> {
    KNOWN_CULTIVARS.iter().copied().zip(CULTIVAR_PALETTE.iter().copied().cycle())
}

/// Tree colour by cultivar, as a MapLibre expression.
fn cultivar_color() -> Value {
    let mut expr = vec![json!("match"), json!(["get", "cultivar"])];
    for (cultivar, color) in cultivar_colors() {
        expr.push(json!(cultivar));
        expr.push(json!(color));
    }
    expr.push(json!(OTHER_COLOR));
    Value::Array(expr)
}

/// The MapLibre style of the map page: trees and orchards from the vector
/// tiles of `{base}/tiles/trees.json` over an optional raster `basemap` (a URL
/// template; `None`: a plain background, nothing fetched from elsewhere).
///
/// Layers, bottom up: `background`, `basemap`, `orchards-fill`,
/// `orchards-line`, `clusters` (coloured by the share of poor and dead trees,
/// sized by count), `trees` (coloured by health) and `results` (rings around
/// search and "near me" results, from the GeoJSON source `results` the page
/// fills). There is no text layer and no `glyphs`: the page writes cluster
/// counts as HTML. `metadata.orchardmap` carries the colour schemes (health
/// and cultivar expressions and their legends) the page switches between.
pub fn style(base: &str, basemap: Option<&str>) -> Value {
    let base = base.trim_end_matches('/');
    let mut sources = Map::new();
    sources.insert("trees".into(), json!({ "type": "vector", "url": format!("{base}/tiles/trees.json") }));
    if let Some(url) = basemap {
        sources.insert(
            "basemap".into(),
            json!({
                "type": "raster",
                "tiles": [url],
                "tileSize": 256,
                "maxzoom": 19,
                "attribution": basemap_attribution(url),
            }),
        );
    }
    sources.insert(
        "results".into(),
        json!({ "type": "geojson", "data": { "type": "FeatureCollection", "features": [] } }),
    );

    let is_cluster = json!(["has", "point_count"]);
    let count = json!(["to-number", ["get", "point_count"], 1]);
    let poor_share = json!([
        "/",
        ["+", ["to-number", ["get", "poor"], 0], ["to-number", ["get", "dead"], 0]],
        ["max", count.clone(), 1]
    ]);
    let mut cluster_color = vec![json!("interpolate"), json!(["linear"]), poor_share];
    for (share, color) in CLUSTER_STOPS {
        cluster_color.push(json!(share));
        cluster_color.push(json!(color));
    }

    let mut layers =
        vec![json!({ "id": "background", "type": "background", "paint": { "background-color": "#eef1e8" } })];
    if basemap.is_some() {
        layers.push(
            json!({ "id": "basemap", "type": "raster", "source": "basemap", "paint": { "raster-opacity": 0.9 } }),
        );
    }
    layers.extend([
        json!({
            "id": "orchards-fill",
            "type": "fill",
            "source": "trees",
            "source-layer": "orchards",
            "paint": {
                "fill-color": "#8bc34a",
                "fill-opacity": ["interpolate", ["linear"], ["zoom"], 10, 0.08, 16, 0.18],
            },
        }),
        json!({
            "id": "orchards-line",
            "type": "line",
            "source": "trees",
            "source-layer": "orchards",
            "paint": {
                "line-color": "#4e7a27",
                "line-width": ["interpolate", ["linear"], ["zoom"], 10, 0.5, 16, 1.5],
                "line-opacity": 0.8,
            },
        }),
        json!({
            "id": "clusters",
            "type": "circle",
            "source": "trees",
            "source-layer": "trees",
            "filter": is_cluster,
            "paint": {
                "circle-color": Value::Array(cluster_color),
                "circle-radius": ["interpolate", ["linear"], count, 2, 10, 100, 14, 1000, 19, 10000, 26],
                "circle-opacity": 0.88,
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": 2,
            },
        }),
        json!({
            "id": "trees",
            "type": "circle",
            "source": "trees",
            "source-layer": "trees",
            "filter": ["!", is_cluster],
            "paint": {
                "circle-color": health_color(),
                "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 2.5, 14, 4, 17, 7, 20, 12],
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": ["interpolate", ["linear"], ["zoom"], 10, 0.4, 16, 1.5],
            },
        }),
        json!({
            "id": "results",
            "type": "circle",
            "source": "results",
            "paint": {
                "circle-color": ["case", ["==", ["get", "kind"], "me"], "#1565c0", "rgba(0,0,0,0)"],
                "circle-radius": ["case", ["==", ["get", "kind"], "me"], 7, 13],
                "circle-stroke-color": "#1565c0",
                "circle-stroke-width": 3,
            },
        }),
    ]);

    let legend = |pairs: &mut dyn Iterator<Item = (&'static str, &'static str)>| -> Value {
        Value::Array(pairs.map(|(value, color)| json!({ "value": value, "color": color })).collect())
    };
    json!({
        "version": 8,
        "name": "orchardmap",
        "metadata": {
            "orchardmap": {
                "maplibre": MAPLIBRE_VERSION,
                "basemap": basemap.is_some(),
                "color_by": { "health": health_color(), "cultivar": cultivar_color() },
                "legend": {
                    "health": legend(&mut HEALTH_COLORS.into_iter()),
                    "cultivar": legend(&mut cultivar_colors().chain([("other", OTHER_COLOR)])),
                    "cluster": CLUSTER_STOPS.iter().map(|(s, c)| json!({ "share": s, "color": c })).collect::<Vec<_>>(),
                },
                "cultivars": KNOWN_CULTIVARS,
            }
        },
        // Đắk Lắk; the handler centres it on the trees served.
        "center": [108.05, 12.68],
        "zoom": 9,
        "sources": sources,
        "layers": layers,
    })
}

/// The scheme and host the client used, for absolute URLs in the style.
fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1:8080");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    format!("{proto}://{host}")
}

fn with_type(content_type: &'static str, cache: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// `GET /map/style.json`: the style of [`style`], centred on the trees served
/// (their extent is in `metadata.orchardmap.bounds`).
pub async fn style_json(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut body = style(&origin(&headers), state.map.basemap.as_deref());
    let extent = {
        let set = state.cache.read();
        BBox::around(set.index.iter().map(|e| e.location))
    };
    if let Some(b) = extent {
        body["center"] = json!([(b.min_lon + b.max_lon) / 2.0, (b.min_lat + b.max_lat) / 2.0]);
        body["metadata"]["orchardmap"]["bounds"] = json!([b.min_lon, b.min_lat, b.max_lon, b.max_lat]);
    }
    with_type("application/json", "no-cache", axum::Json(body))
}

/// `GET /`: the map page. MapLibre comes from `/map/vendor/` when the npm
/// package is installed, else from the CDN (same pinned version).
pub async fn page(State(state): State<AppState>) -> Response {
    let (js, css) = if state.map.vendor_dir().is_some() {
        ("/map/vendor/maplibre-gl.js".to_string(), "/map/vendor/maplibre-gl.css".to_string())
    } else {
        let cdn = format!("https://unpkg.com/maplibre-gl@{MAPLIBRE_VERSION}/dist");
        (format!("{cdn}/maplibre-gl.js"), format!("{cdn}/maplibre-gl.css"))
    };
    let html = PAGE_HTML.replace("{{maplibre_js}}", &js).replace("{{maplibre_css}}", &css);
    with_type("text/html; charset=utf-8", "no-cache", Html(html))
}

/// `GET /map/app.js`: the page's script.
pub async fn app_js() -> Response {
    with_type("text/javascript; charset=utf-8", "no-cache", APP_JS)
}

/// `GET /map/app.css`: the page's stylesheet.
pub async fn app_css() -> Response {
    with_type("text/css; charset=utf-8", "no-cache", APP_CSS)
}

async fn vendor(state: &AppState, file: &str) -> Result<Vec<u8>> {
    let missing = || {
        AppError::NotFound(format!(
            "{file} is not installed on this server (run `npm ci` in the repository, or pass --assets); \
             the map page loads it from the CDN instead"
        ))
    };
    let dir = state.map.vendor_dir().ok_or_else(missing)?;
    tokio::fs::read(dir.join(file)).await.map_err(|_| missing())
}

/// `GET /map/vendor/maplibre-gl.js`: MapLibre GL JS from the npm package (404 when not installed).
pub async fn vendor_js(State(state): State<AppState>) -> Result<Response> {
    Ok(with_type("text/javascript; charset=utf-8", "public, max-age=3600", vendor(&state, "maplibre-gl.js").await?))
}

/// `GET /map/vendor/maplibre-gl.css`: MapLibre's stylesheet from the npm package (404 when not installed).
pub async fn vendor_css(State(state): State<AppState>) -> Result<Response> {
    Ok(with_type("text/css; charset=utf-8", "public, max-age=3600", vendor(&state, "maplibre-gl.css").await?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn layer_ids(style: &Value) -> Vec<&str> {
        style["layers"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn style_has_tree_source_and_layers_without_text() {
        let s = style("http://example.org:8080/", None);
        assert_eq!(s["version"], 8);
        assert_eq!(s["sources"]["trees"]["url"], "http://example.org:8080/tiles/trees.json");
        assert!(s["sources"].get("basemap").is_none());
        assert!(s.get("glyphs").is_none());
        assert_eq!(layer_ids(&s), ["background", "orchards-fill", "orchards-line", "clusters", "trees", "results"]);
        for layer in s["layers"].as_array().unwrap() {
            assert_ne!(layer["type"], "symbol", "no glyphs: no text layers");
            if layer["source"] == "trees" {
                let wanted = if layer["id"].as_str().unwrap().starts_with("orchards") { "orchards" } else { "trees" };
                assert_eq!(layer["source-layer"], wanted);
            }
        }
        let meta = &s["metadata"]["orchardmap"];
        assert_eq!(meta["legend"]["health"].as_array().unwrap().len(), 4);
        assert_eq!(meta["legend"]["cultivar"].as_array().unwrap().len(), KNOWN_CULTIVARS.len() + 1);
        assert_eq!(meta["color_by"]["health"], s["layers"][4]["paint"]["circle-color"]);
    }

    #[test]
    fn basemap_is_a_raster_source_with_attribution() {
        let s = style("http://h", Some(OSM_TILES));
        assert_eq!(s["sources"]["basemap"]["tiles"][0], OSM_TILES);
        assert!(s["sources"]["basemap"]["attribution"].as_str().unwrap().contains("OpenStreetMap"));
        assert_eq!(layer_ids(&s)[..2], ["background", "basemap"]);
        let other = style("http://h", Some("https://tiles.example.vn/{z}/{x}/{y}.png"));
        assert_eq!(other["sources"]["basemap"]["attribution"], "Basemap: tiles.example.vn");
    }

    #[test]
    fn pinned_version_matches_package_json() {
        let package: Value = serde_json::from_str(include_str!("../../../package.json")).unwrap();
        assert_eq!(package["dependencies"]["maplibre-gl"], MAPLIBRE_VERSION);
    }
}
