//! Map tiles through the router: content against the search API, caching
//! headers, compression, filters, errors, and invalidation on change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Read as _;

use axum::http::StatusCode;
use common::{ORIGIN, etag, get, json, send, world, world_of};
use serde_json::json;
use tiles::{TileId, mvt};

fn tree_ids(bytes: &[u8]) -> BTreeSet<u64> {
    let tile = mvt::decode(bytes).unwrap();
    tile.layer("trees").map(|l| l.features.iter().filter_map(|f| f.id).collect()).unwrap_or_default()
}

/// PATCHes tree `id` with `body`, sending its current ETag in If-Match.
async fn patch(s: &api::AppState, token: &str, id: i64, body: serde_json::Value) -> common::Reply {
    let v = etag(s, id).await;
    send(s, "PATCH", &format!("/api/trees/{id}"), Some(token), &[("if-match", &v)], json(body)).await
}

fn path(t: TileId, ext: &str) -> String {
    format!("/tiles/trees/{}/{}/{}.{ext}", t.z(), t.x(), t.y())
}

#[tokio::test]
async fn a_tile_holds_the_trees_the_api_finds_there() {
    let w = world().await;
    let s = &w.state;
    let t = tiles::tile_for(ORIGIN.offset_m(40.0, 40.0), 17).unwrap();
    let r = get(s, &path(t, "mvt"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], tiles::MVT_CONTENT_TYPE);
    let b = t.bounds();
    let api =
        get(s, &format!("/api/trees?bbox={},{},{},{}&limit=1000", b.min_lon, b.min_lat, b.max_lon, b.max_lat), None)
            .await;
    let expected: BTreeSet<u64> =
        api.body["features"].as_array().unwrap().iter().map(|f| f["id"].as_u64().unwrap()).collect();
    assert!(!expected.is_empty());
    let got = tree_ids(&r.bytes);
    // The tile also has the trees in its buffer; every tree of the square is there.
    assert!(got.is_superset(&expected), "missing {:?}", expected.difference(&got).collect::<Vec<_>>());
    let decoded = mvt::decode(&r.bytes).unwrap();
    let orchards = decoded.layer("orchards").unwrap();
    assert!(orchards.features.iter().any(|f| f.get("orchard").and_then(|v| v.as_str()) == Some("DL-A")));

    // The same data gives the same bytes and tag; If-None-Match gives 304.
    let again = get(s, &path(t, "mvt"), None).await;
    assert_eq!(again.bytes, r.bytes);
    let tag = r.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(again.headers["etag"].to_str().unwrap(), tag);
    let not_modified = send(s, "GET", &path(t, "mvt"), None, &[("if-none-match", &tag)], vec![]).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert!(not_modified.bytes.is_empty());
    assert!(r.headers["cache-control"].to_str().unwrap().contains("max-age"));

    // brotli when preferred, gzip when that is what is accepted; the same tile inside.
    let br = send(s, "GET", &path(t, "mvt"), None, &[("accept-encoding", "gzip;q=0.8, br")], vec![]).await;
    assert_eq!(br.headers["content-encoding"], "br");
    let mut plain = Vec::new();
    brotli::Decompressor::new(&br.bytes[..], 4096).read_to_end(&mut plain).unwrap();
    assert_eq!(plain, r.bytes);
    let gz = send(s, "GET", &path(t, "mvt"), None, &[("accept-encoding", "br;q=0.5, gzip;q=0.8")], vec![]).await;
    assert_eq!(gz.headers["content-encoding"], "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz.bytes[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(plain, r.bytes);
    let refused = send(s, "GET", &path(t, "mvt"), None, &[("accept-encoding", "gzip;q=0")], vec![]).await;
    assert!(refused.headers.get("content-encoding").is_none());

    // Filters: only poor trees, and the tile differs.
    let poor = get(s, &format!("{}?health=poor", path(t, "mvt")), None).await;
    let decoded = mvt::decode(&poor.bytes).unwrap();
    let trees = decoded.layer("trees").unwrap();
    assert!(!trees.features.is_empty());
    for f in &trees.features {
        let health = f.get("health").and_then(|v| v.as_str());
        assert!(health == Some("poor") || f.get("clustered").is_some(), "{f:?}");
    }
    assert_ne!(poor.headers["etag"], r.headers["etag"]);
}

#[tokio::test]
async fn a_changed_tree_is_in_its_tile_at_once_and_other_tiles_stay_cached() {
    let w = world().await;
    let s = &w.state;
    let id = w.trees_a[0];
    let at = get(s, &format!("/api/trees/{id}"), None).await.body["geometry"]["coordinates"].clone();
    let here = geo_core::LonLat::new(at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
    let home = tiles::tile_for(here, 18).unwrap();
    let far = tiles::tile_for(ORIGIN.offset_m(1040.0, 40.0), 18).unwrap();
    assert_ne!(home, far);
    let before = get(s, &path(home, "mvt"), None).await;
    let far_before = get(s, &path(far, "mvt"), None).await;
    assert!(tree_ids(&far_before.bytes).len() > 1);
    let health_of = |bytes: &[u8]| {
        let tile = mvt::decode(bytes).unwrap();
        let f = tile.layer("trees").unwrap().features.iter().find(|f| f.id == Some(id as u64)).cloned().unwrap();
        f.get("health").and_then(|v| v.as_str()).map(str::to_string)
    };
    assert_eq!(health_of(&before.bytes).as_deref(), Some("good"));

    let r = patch(s, &w.volunteer, id, json!({"health": "dead"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = get(s, &path(home, "mvt"), None).await;
    assert_eq!(health_of(&after.bytes).as_deref(), Some("dead"));
    assert_ne!(after.headers["etag"], before.headers["etag"]);
    // The tile at every zoom that shows it was invalidated; a tile far away was not.
    for z in [0u8, 5, 12, 16, 20] {
        let t = tiles::tile_for(here, z).unwrap();
        assert!(s.cache.tiles().get(t, "mvt").is_none() || z == 18, "z{z} still cached");
    }
    assert!(s.cache.tiles().get(far, "mvt").is_some(), "a tile without the tree was invalidated");

    // Moving it 200 m: it leaves its old tile and appears in the new one.
    let moved = here.offset_m(0.0, 200.0);
    let new_home = tiles::tile_for(moved, 18).unwrap();
    let _ = get(s, &path(new_home, "mvt"), None).await;
    let r = patch(s, &w.volunteer, id, json!({"lon": moved.lon, "lat": moved.lat})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!tree_ids(&get(s, &path(home, "mvt"), None).await.bytes).contains(&(id as u64)));
    assert!(tree_ids(&get(s, &path(new_home, "mvt"), None).await.bytes).contains(&(id as u64)));
}

#[tokio::test]
async fn bad_addresses_are_named_and_empty_tiles_are_empty() {
    let w = world().await;
    let s = &w.state;
    for (uri, part) in [
        ("/tiles/trees/21/0/0.mvt", "z"),
        ("/tiles/trees/x/0/0.mvt", "z"),
        ("/tiles/trees/2/4/0.mvt", "x"),
        ("/tiles/trees/2/0/9.mvt", "y"),
        ("/tiles/trees/2/0/0.gif", "y"),
        ("/tiles/trees/2/0/0.mvt?colour=red", "query"),
        ("/tiles/trees/2/0/0.mvt?health=sick", "health"),
    ] {
        let r = get(s, uri, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(part), "{uri}: {message}");
    }
    // Over the Atlantic: a valid, empty tile.
    let r = get(s, "/tiles/trees/10/300/400.mvt", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(tree_ids(&r.bytes).is_empty());
}

#[tokio::test]
async fn tilejson_describes_the_tiles() {
    let w = world().await;
    let r =
        send(&w.state, "GET", "/tiles/trees.json?health=poor", None, &[("host", "maps.example:8080")], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["tilejson"], "3.0.0");
    assert_eq!(r.body["tiles"][0], "http://maps.example:8080/tiles/trees/{z}/{x}/{y}.mvt?health=poor");
    let bounds: Vec<f64> = r.body["bounds"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(bounds[0] <= ORIGIN.lon && bounds[2] > ORIGIN.lon && bounds[1] <= ORIGIN.lat && bounds[3] > ORIGIN.lat);
    let layers: Vec<&str> =
        r.body["vector_layers"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(layers, ["trees", "orchards"]);
    assert_eq!(r.body["maxzoom"], 20);
}

/// Width, height and the number of pixels that are not transparent.
fn png_summary(bytes: &[u8]) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    let opaque = buf[..info.buffer_size()].chunks(4).filter(|p| p[3] > 0).count();
    (info.width, info.height, opaque)
}

#[tokio::test]
async fn png_tiles_draw_the_trees() {
    let w = world().await;
    let s = &w.state;
    let t = tiles::tile_for(ORIGIN.offset_m(40.0, 40.0), 17).unwrap();
    let one = get(s, &path(t, "png"), None).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.headers["content-type"], "image/png");
    let (w1, h1, drawn1) = png_summary(&one.bytes);
    assert_eq!((w1, h1), (256, 256));
    assert!(drawn1 > 40 * 10, "40 trees drawn: {drawn1} pixels");
    let two = get(s, &format!("/tiles/trees/{}/{}/{}@2x.png", t.z(), t.x(), t.y()), None).await;
    let (w2, h2, drawn2) = png_summary(&two.bytes);
    assert_eq!((w2, h2), (512, 512));
    assert!(drawn2 > drawn1 * 3, "{drawn2} vs {drawn1}");
    // Filtered: fewer trees drawn.
    let poor = get(s, &format!("{}?health=poor", path(t, "png")), None).await;
    let (_, _, drawn_poor) = png_summary(&poor.bytes);
    assert!(drawn_poor > 0 && drawn_poor < drawn1, "{drawn_poor} vs {drawn1}");
    // Over the Atlantic: transparent.
    let empty = get(s, "/tiles/trees/10/300/400.png", None).await;
    assert_eq!(png_summary(&empty.bytes).2, 0);
    // PNG is compressed already: never gzipped again.
    let r = send(s, "GET", &path(t, "png"), None, &[("accept-encoding", "gzip")], vec![]).await;
    assert!(r.headers.get("content-encoding").is_none());
}

/// Sums `point_count` (1 for a tree) and the health counts over a tile's features.
fn stands_for(bytes: &[u8]) -> (u64, [u64; 4]) {
    let tile = mvt::decode(bytes).unwrap();
    let mut total = 0;
    let mut health = [0u64; 4];
    for f in &tile.layer("trees").unwrap().features {
        let int = |k: &str| f.get(k).and_then(|v| v.as_i64()).unwrap_or(0) as u64;
        if f.get("clustered").is_some() {
            total += int("point_count");
            for (i, k) in ["good", "fair", "poor", "dead"].iter().enumerate() {
                health[i] += int(k);
            }
        } else {
            total += 1;
            let i = ["good", "fair", "poor", "dead"]
                .iter()
                .position(|h| f.get("health").and_then(|v| v.as_str()) == Some(*h));
            health[i.unwrap()] += 1;
        }
    }
    (total, health)
}

#[tokio::test]
async fn low_zooms_are_clusters_that_count_every_tree_and_follow_changes() {
    let w = world_of(1500).await;
    let s = &w.state;
    let z0 = get(s, "/tiles/trees/0/0/0.mvt", None).await;
    let decoded = mvt::decode(&z0.bytes).unwrap();
    let features = &decoded.layer("trees").unwrap().features;
    assert!(features.len() < 50, "{} features at z0", features.len());
    let c = features.iter().find(|f| f.get("clustered").is_some()).expect("a cluster");
    assert!(c.get("point_count_abbreviated").and_then(|v| v.as_str()).is_some());
    let (total, health) = stands_for(&z0.bytes);
    assert_eq!(total, 3000);
    assert_eq!(health, [2250, 0, 750, 0]);
    // Health-only filter from the counts; a cultivar filter clusters the matching trees.
    let (poor, _) = stands_for(&get(s, "/tiles/trees/0/0/0.mvt?health=poor", None).await.bytes);
    assert_eq!(poor, 750);
    let (ri6, _) = stands_for(&get(s, "/tiles/trees/0/0/0.mvt?cultivar=Ri6", None).await.bytes);
    assert_eq!(ri6, 1500);
    // PNG at z0: clusters drawn.
    assert!(png_summary(&get(s, "/tiles/trees/0/0/0.png", None).await.bytes).2 > 100);

    // A change shows in the cached cluster tile at once.
    let id = w.trees_a[0];
    let r = patch(s, &w.volunteer, id, json!({"health": "dead"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (total, health) = stands_for(&get(s, "/tiles/trees/0/0/0.mvt", None).await.bytes);
    assert_eq!((total, health), (3000, [2249, 0, 750, 1]));
}

#[tokio::test]
async fn an_offline_pack_holds_the_live_tiles() {
    let w = world().await;
    let s = &w.state;
    let (lo, hi) = (ORIGIN.offset_m(-50.0, -50.0), ORIGIN.offset_m(1150.0, 150.0));
    let bbox = format!("{},{},{},{}", lo.lon, lo.lat, hi.lon, hi.lat);
    let r = get(s, &format!("/tiles/pack?bbox={bbox}&minzoom=12&maxzoom=17"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/vnd.pmtiles");
    let archive = tiles::pmtiles::PmtilesReader::new(&r.bytes).unwrap();
    let header = archive.header();
    assert_eq!((header.min_zoom, header.max_zoom), (12, 17));
    let metadata = archive.metadata_json().unwrap();
    let layers: Vec<&str> =
        metadata["vector_layers"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(layers, ["trees", "orchards"]);
    let mut packed = 0;
    let mut trees_seen = BTreeSet::new();
    for entry in archive.tiles() {
        let (tile, gz) = entry.unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut bytes).unwrap();
        let live = get(s, &path(tile, "mvt"), None).await;
        assert_eq!(bytes, live.bytes, "tile {}/{}/{} differs from the live one", tile.z(), tile.x(), tile.y());
        if tile.z() == 17 {
            trees_seen.extend(tree_ids(&bytes));
        }
        packed += 1;
    }
    assert!(packed >= 6, "{packed} tiles");
    // Every tree of both orchards is in the deepest zoom of the pack.
    let all: BTreeSet<u64> = w.trees_a.iter().chain(&w.trees_b).map(|id| *id as u64).collect();
    assert!(trees_seen.is_superset(&all));

    for (q, part) in [
        ("bbox=1,2,3", "bbox"),
        (&format!("bbox={bbox}&minzoom=18&maxzoom=17") as &str, "minzoom"),
        (&format!("bbox={bbox}&maxzoom=21"), "maxzoom"),
        ("bbox=100,10,110,20&minzoom=0&maxzoom=20", "bbox"),
        ("bbox=-30,-10,-29,-9", "bbox"),
    ] {
        let r = get(s, &format!("/tiles/pack?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.body["error"]["message"].as_str().unwrap().starts_with(part), "{q}: {}", r.body);
    }
}

/// Draws the SVG the API serves (unit squares `M x y h1v1h-1z` on a white
/// square) at 6 px a module and decodes it with rqrr, an independent decoder.
fn decode_qr_svg(svg: &str) -> String {
    let side: usize = svg.split("viewBox=\"0 0 ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let path = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
    let mut dark = vec![false; side * side];
    // One `M x y h w v h h-w z` per rectangle of dark modules.
    for rect in path.split('z').filter(|s| !s.is_empty()) {
        let (xy, rest) = rect.trim_start_matches('M').split_once('h').unwrap();
        let (x, y) = xy.split_once(' ').unwrap();
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        let (w, rest) = rest.split_once('v').unwrap();
        let h = rest.split('h').next().unwrap();
        let (w, h): (usize, usize) = (w.parse().unwrap(), h.parse().unwrap());
        for yy in y..y + h {
            for xx in x..x + w {
                dark[yy * side + xx] = true;
            }
        }
    }
    const PX: usize = 6;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(side * PX, side * PX, |x, y| {
        if dark[(y / PX) * side + x / PX] { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn a_tree_tag_qr_code_decodes_to_the_tree_record() {
    let w = world().await;
    let s = &w.state;
    let id = w.trees_a[3];
    let tree = get(s, &format!("/api/trees/{id}"), None).await;
    let code = tree.body["properties"]["code"].as_str().unwrap().to_string();
    let r = send(s, "GET", &format!("/api/trees/{id}/qr.svg"), None, &[("host", "om.example")], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "image/svg+xml");
    let svg = String::from_utf8(r.bytes).unwrap();
    // The tag holds the tree's signed public link (issue: QR traceability).
    let url = decode_qr_svg(&svg);
    assert!(url.starts_with(&format!("http://om.example/t/{code}?8030=")), "{url}");
    assert_eq!(r.headers["x-qr-content"], url.as_str());
    // By tag code too; the link it holds opens the tree's page, genuine.
    let by_code = get(s, &format!("/api/trees/{code}/qr.svg"), None).await;
    assert_eq!(by_code.status, StatusCode::OK);
    let page = get(s, &format!("{}&lang=en", url.trim_start_matches("http://om.example")), None).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8(page.bytes).unwrap();
    assert!(html.contains(&code) && html.contains("class=\"banner genuine\""));
    assert_eq!(get(s, "/api/trees/999999/qr.svg", None).await.status, StatusCode::NOT_FOUND);
}
