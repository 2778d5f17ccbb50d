//! Map tiles: `GET /tiles/trees/{z}/{x}/{y}.mvt|.png|@2x.png` and the
//! TileJSON that describes them.
//!
//! Tiles come from the in-memory trees (never the database): the cluster
//! pyramid at low zoom, the R-tree's trees above it. Rendered tiles are kept
//! in the [`crate::tilecache::TileCache`] by address and variant (format plus
//! the filter's canonical query); a tree change invalidates exactly the tiles
//! that show it. Responses carry a strong `ETag` (a digest of the bytes, so
//! the same data gives the same tag), answer `If-None-Match` with 304, and
//! are gzip-compressed when the client accepts it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use geo_core::{BBox, TreeFilter};
use serde_json::json;
use sha2::{Digest, Sha256};
use tiles::TileId;

use crate::AppState;
use crate::error::{AppError, Result};
use crate::params::Params;
use crate::tilecache::CachedTile;

/// Deepest zoom served (the TileJSON's `maxzoom`; clients over-zoom beyond).
pub const MAX_TILE_ZOOM: u8 = 20;

/// The filter parameters tiles accept.
const TILE_FILTERS: [&str; 3] = ["cultivar", "health", "orchard"];

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Mapbox Vector Tile.
    Mvt,
    /// PNG, 256 × 256 (`scale` 1) or 512 × 512 (`@2x`, scale 2).
    Png {
        /// Pixel density.
        scale: u32,
    },
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Mvt => "mvt",
            Format::Png { scale: 1 } => "png",
            Format::Png { .. } => "png@2x",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Mvt => tiles::MVT_CONTENT_TYPE,
            Format::Png { .. } => "image/png",
        }
    }
}

/// Parses the `{z}/{x}/{y}.ext` parts, naming the part that is wrong.
pub fn parse_address(z: &str, x: &str, y_ext: &str) -> Result<(TileId, Format)> {
    let (y, format) = if let Some(y) = y_ext.strip_suffix(".mvt") {
        (y, Format::Mvt)
    } else if let Some(y) = y_ext.strip_suffix("@2x.png") {
        (y, Format::Png { scale: 2 })
    } else if let Some(y) = y_ext.strip_suffix(".png") {
        (y, Format::Png { scale: 1 })
    } else {
        return Err(AppError::bad("y", format!("{y_ext:?} must end in .mvt, .png or @2x.png")));
    };
    let number = |name: &'static str, raw: &str| -> Result<u32> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::bad(name, format!("{raw:?} is not a whole number")));
        }
        raw.parse::<u32>().map_err(|_| AppError::bad(name, format!("{raw} is too large")))
    };
    let (z, x, y) = (number("z", z)?, number("x", x)?, number("y", y)?);
    if z > u32::from(MAX_TILE_ZOOM) {
        return Err(AppError::bad("z", format!("{z} is outside 0..{MAX_TILE_ZOOM}")));
    }
    let side = 1u64 << z;
    for (name, v) in [("x", x), ("y", y)] {
        if u64::from(v) >= side {
            return Err(AppError::bad(name, format!("{v} is outside 0..{} at zoom {z}", side - 1)));
        }
    }
    let tile = TileId::new(z, x, y).map_err(|e| AppError::bad("z", e.to_string()))?;
    Ok((tile, format))
}

/// The filter and its canonical query (the cache variant), from the tile URL's query.
fn tile_filter(raw: Option<&str>) -> Result<(TreeFilter, String)> {
    let params = Params::parse(raw);
    let mut canonical: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if value.is_empty() {
            continue;
        }
        if !TILE_FILTERS.contains(&key.as_ref()) {
            return Err(AppError::bad(
                "query",
                format!("{key:?} is not a tile filter; tiles take {}", TILE_FILTERS.join(", ")),
            ));
        }
    }
    let filter = params.tree_filter()?;
    // Canonical form: each list sorted, keys in a fixed order, so equal filters share cache entries.
    let mut cultivars: Vec<&str> = filter.cultivars.iter().map(|c| c.as_str()).collect();
    cultivars.sort_unstable();
    let mut health: Vec<&str> = filter.health.iter().map(|h| h.as_str()).collect();
    health.sort_unstable();
    health.dedup();
    let mut orchards: Vec<&str> = filter.orchards.iter().map(|o| o.as_str()).collect();
    orchards.sort_unstable();
    for (k, v) in [("cultivar", cultivars), ("health", health), ("orchard", orchards)] {
        if !v.is_empty() {
            canonical.push((k.into(), v.join(",")));
        }
    }
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(canonical).finish();
    Ok((filter, query))
}

/// `GET /tiles/trees/{z}/{x}/{y}.mvt` (also `.png`, `@2x.png`), optionally
/// filtered by `cultivar`, `health`, `orchard`.
pub async fn tree_tile(
    State(state): State<AppState>,
    Path((z, x, y)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let (tile, format) = parse_address(&z, &x, &y)?;
    let (filter, query) = tile_filter(raw.as_deref())?;
    let variant = if query.is_empty() { format.name().to_string() } else { format!("{}?{query}", format.name()) };
    let tiles = state.cache.tiles();
    let cached = match tiles.get(tile, &variant) {
        Some(hit) => {
            state.metrics.cache_hit("tiles");
            hit
        }
        None => {
            state.metrics.cache_miss("tiles");
            let epoch = tiles.epoch();
            let cache = state.cache.clone();
            let rendered = tokio::task::spawn_blocking(move || render(&cache, tile, format, &filter))
                .await
                .map_err(|e| AppError::Internal(format!("tile rendering failed: {e}")))?;
            let rendered = Arc::new(finish(rendered, format));
            tiles.put(tile, &variant, rendered.clone(), epoch);
            rendered
        }
    };
    Ok(respond(&cached, format, &headers))
}

/// Renders one tile from the trees in memory, as the tile route does before caching.
pub fn render(cache: &crate::TreeCache, tile: TileId, format: Format, filter: &TreeFilter) -> Vec<u8> {
    let orchards = cache.orchards();
    let set = cache.read();
    // Vector tiles carry the encoder's buffer; raster tiles every symbol reaching into the tile.
    let pad = match format {
        Format::Mvt => f64::from(tiles::BUFFER) / f64::from(tiles::EXTENT),
        Format::Png { .. } => f64::from(tiles::raster::MAX_SYMBOL_RADIUS) / f64::from(tiles::raster::TILE_SIZE),
    };
    let content = crate::cache::tile_content(&set, &orchards, tile, filter, pad);
    match format {
        Format::Mvt => content.mvt(tile),
        Format::Png { scale } => content.png(tile, scale),
    }
}

/// The cache entry for rendered bytes: digest and, for MVT, the gzip and brotli forms.
fn finish(body: Vec<u8>, format: Format) -> CachedTile {
    use std::io::Write as _;
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>());
    let (gzip, br) = match format {
        Format::Mvt if !body.is_empty() => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            // Writing to a Vec cannot fail.
            let _ = gz.write_all(&body);
            let mut br = Vec::with_capacity(body.len() / 2);
            {
                // Quality 5: most of brotli's gain over gzip on small tiles at a fraction of its top cost.
                let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 20);
                let _ = w.write_all(&body);
            }
            (gz.finish().ok().map(Bytes::from), Some(Bytes::from(br)))
        }
        _ => (None, None),
    };
    CachedTile { body: Bytes::from(body), gzip, br, etag }
}

/// The quality the client gives `coding` in `Accept-Encoding` (0 when not accepted; `*` counts).
fn accepted(headers: &HeaderMap, coding: &str) -> f32 {
    let mut best: Option<f32> = None;
    let mut star: Option<f32> = None;
    for value in headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()) {
        for part in value.split(',') {
            let mut it = part.split(';');
            let name = it.next().unwrap_or_default().trim();
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if name.eq_ignore_ascii_case(coding) {
                best = Some(best.map_or(q, |b: f32| b.max(q)));
            } else if name == "*" {
                star = Some(q);
            }
        }
    }
    best.or(star).unwrap_or(0.0)
}

fn respond(tile: &CachedTile, format: Format, headers: &HeaderMap) -> Response {
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == tile.etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // brotli when the client likes it at least as much as gzip, else gzip, else the tile as is.
        let (br, gz) = (accepted(headers, "br"), accepted(headers, "gzip"));
        let encoded = match (&tile.br, &tile.gzip) {
            (Some(b), _) if br > 0.0 && br >= gz => Some((b, "br")),
            (_, Some(g)) if gz > 0.0 => Some((g, "gzip")),
            _ => None,
        };
        match encoded {
            Some((bytes, coding)) => {
                let mut r = Response::new(Body::from(bytes.clone()));
                r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
                r
            }
            None => Response::new(Body::from(tile.body.clone())),
        }
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(etag) = HeaderValue::from_str(&tile.etag) {
        h.insert(header::ETAG, etag);
    }
    // Short freshness: trees change; revalidation with the ETag is cheap.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// The origin clients reached, for absolute URLs (`X-Forwarded-Proto` and `Host`).
pub fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1:8080");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// `GET /tiles/trees.json`: TileJSON 3.0.0 for the tree tiles (filters in
/// the query are carried into the tile URL template).
pub async fn tilejson(State(state): State<AppState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Result<Response> {
    let (_, query) = tile_filter(raw.as_deref())?;
    let base = origin(&headers);
    let suffix = if query.is_empty() { String::new() } else { format!("?{query}") };
    let extent = {
        let set = state.cache.read();
        BBox::around(set.index.iter().map(|e| e.location))
    };
    let bounds =
        extent.map_or([-180.0, -85.051_129, 180.0, 85.051_129], |b| [b.min_lon, b.min_lat, b.max_lon, b.max_lat]);
    let center = [(bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0, 12.0];
    let body = json!({
        "tilejson": "3.0.0",
        "name": "orchardmap trees",
        "description": "Surveyed trees and orchard boundaries; clustered at low zoom",
        "attribution": "orchardmap",
        "scheme": "xyz",
        "tiles": [format!("{base}/tiles/trees/{{z}}/{{x}}/{{y}}.mvt{suffix}")],
        "minzoom": 0,
        "maxzoom": MAX_TILE_ZOOM,
        "bounds": bounds,
        "center": center,
        "vector_layers": tiles::pmtiles::vector_layers(0, MAX_TILE_ZOOM),
    });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    Ok(response)
}

/// What a tile shows, taken from the trees in memory (see [`crate::cache::tile_content`]).
#[derive(Debug)]
pub enum TileContent {
    /// Trees one by one, in id order, with orchard boundaries.
    Trees {
        /// The trees.
        trees: Vec<Arc<geo_core::Tree>>,
        /// Orchard boundaries, in id order.
        orchards: Vec<tiles::TilePolygon>,
    },
    /// Clusters (a cluster of one tree is drawn as that tree).
    Clusters {
        /// The clusters, in the pyramid's order.
        clusters: Vec<tiles::Cluster>,
        /// The trees of one-tree clusters, by id.
        singles: HashMap<u64, Arc<geo_core::Tree>>,
        /// Orchard boundaries, in id order.
        orchards: Vec<tiles::TilePolygon>,
    },
}

impl TileContent {
    fn mvt(&self, tile: TileId) -> Vec<u8> {
        match self {
            TileContent::Trees { trees, orchards } => {
                let points: Vec<tiles::TilePoint> =
                    trees.iter().filter_map(|t| tiles::TilePoint::from_tree(t)).collect();
                tiles::encode_trees_tile(tile, &points, orchards)
            }
            TileContent::Clusters { clusters, singles, orchards } => tiles::encode_cluster_tile(
                tile,
                clusters,
                |id| singles.get(&id).and_then(|t| tiles::TilePoint::from_tree(t)),
                orchards,
            ),
        }
    }

    fn png(&self, tile: TileId, scale: u32) -> Vec<u8> {
        use tiles::raster::Mark;
        let marks: Vec<Mark> = match self {
            TileContent::Trees { trees, .. } => {
                trees.iter().map(|t| Mark::tree_at(tile, t.location, t.health)).collect()
            }
            TileContent::Clusters { clusters, singles, .. } => clusters
                .iter()
                .map(|c| match c.single.and_then(|id| singles.get(&id)) {
                    Some(t) => Mark::tree_at(tile, t.location, t.health),
                    None => Mark::cluster_at(tile, c.location, c.counts),
                })
                .collect(),
        };
        tiles::raster::render_png(&marks, scale)
    }
}

/// The square a tile covers, widened by `pad` (a fraction of its side), in lon/lat.
pub fn buffered_bounds(tile: TileId, pad: f64) -> BBox {
    let b = tile.bounds();
    let (dlon, dlat) = ((b.max_lon - b.min_lon) * pad, (b.max_lat - b.min_lat) * pad);
    BBox {
        min_lon: (b.min_lon - dlon).max(-180.0),
        min_lat: (b.min_lat - dlat).max(-85.06),
        max_lon: (b.max_lon + dlon).min(180.0),
        max_lat: (b.max_lat + dlat).min(85.06),
    }
}

/// Sends what is written as chunks of a response body.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /tiles/pack?bbox=minLon,minLat,maxLon,maxLat&minzoom=10&maxzoom=18`:
/// an offline pack (PMTiles v3 of the vector tiles, see [`crate::pack`]),
/// streamed as it is written. 400 naming the parameter for a bad or too
/// large request, or an area without trees.
pub async fn pack(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let bbox = params.bbox()?;
    let max_zoom = params.usize_in("maxzoom", 18, 0, usize::from(MAX_TILE_ZOOM))? as u8;
    let min_zoom = params.usize_in("minzoom", 10, 0, usize::from(MAX_TILE_ZOOM))? as u8;
    let invalid = |e: crate::pack::PackError| match e {
        crate::pack::PackError::Invalid(field, reason) => AppError::bad(field, reason),
        other => AppError::Internal(other.to_string()),
    };
    crate::pack::tile_count(&bbox, min_zoom, max_zoom).map_err(invalid)?;
    if state.cache.read().index.in_bbox(&bbox).next().is_none() {
        return Err(AppError::bad("bbox", "holds no tree"));
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let cache = state.cache.clone();
    tokio::task::spawn_blocking(move || {
        let errors = tx.clone();
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx));
        let written = crate::pack::write_pack(&cache, bbox, min_zoom, max_zoom, &mut out)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|summary| std::io::Write::flush(&mut out).map(|()| summary));
        match written {
            Ok(summary) => tracing::info!(?summary, "offline pack sent"),
            Err(e) => {
                tracing::warn!(error = %e, "offline pack failed");
                // An error chunk aborts the response: the client sees an incomplete transfer.
                let _ = errors.blocking_send(Err(e));
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.pmtiles"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"orchardmap-pack.pmtiles\""));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_part_by_part() {
        assert_eq!(parse_address("3", "1", "2.mvt").unwrap().1, Format::Mvt);
        assert_eq!(parse_address("3", "1", "2@2x.png").unwrap().1, Format::Png { scale: 2 });
        for (z, x, y, part) in [
            ("21", "0", "0.mvt", "z"),
            ("a", "0", "0.mvt", "z"),
            ("3", "8", "0.mvt", "x"),
            ("3", "-1", "0.mvt", "x"),
            ("3", "0", "8.mvt", "y"),
            ("3", "0", "0.jpg", "y"),
            ("3", "0", ".mvt", "y"),
        ] {
            let e = parse_address(z, x, y).unwrap_err().to_string();
            assert!(e.starts_with(part), "{z}/{x}/{y}: {e}");
        }
    }

    #[test]
    fn equal_filters_share_one_variant() {
        let (_, a) = tile_filter(Some("health=poor,dead&cultivar=Ri6")).unwrap();
        let (_, b) = tile_filter(Some("cultivar=ri%206&health=dead,poor")).unwrap();
        assert_eq!(a, b);
        assert!(tile_filter(Some("bbox=1,2,3,4")).is_err());
    }
}
