//! Tile coordinates and tile bytes: the same input is read as
//! - a tile path as the API takes it (`/tiles/trees/{z}/{x}/{y}.mvt`, each part
//!   percent-decoded as the router does, then `api::parse_tile_address`),
//! - a `z/x/y` string (`TileId::from_str`),
//! - three little-endian `u32` for `TileId::new` and the tile math on the result,
//! - a Mapbox Vector Tile (`tiles::mvt::decode`, and the encoder on what it decoded),
//! - a PMTiles archive (`tiles::pmtiles::PmtilesReader`).
#![no_main]

use geo_core::LonLat;
use libfuzzer_sys::fuzz_target;
use tiles::mvt::{self, LayerBuilder, TileBuilder};
use tiles::pmtiles::{self, PmtilesReader};
use tiles::{MAX_ZOOM, TileId, tile_for};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        api_path(text);
        if let Ok(tile) = text.parse::<TileId>() {
            check_tile(tile);
        }
    }
    if let Some(words) = data.get(..12) {
        let word = |i: usize| u32::from_le_bytes([words[i], words[i + 1], words[i + 2], words[i + 3]]);
        let (z, x, y) = (word(0), word(4), word(8));
        let valid = z <= u32::from(MAX_ZOOM) && u64::from(x) < 1u64 << z && u64::from(y) < 1u64 << z;
        match TileId::new(z, x, y) {
            Ok(tile) => {
                assert!(valid, "TileId::new({z}, {x}, {y}) accepted");
                assert_eq!((u32::from(tile.z()), tile.x(), tile.y()), (z, x, y));
                check_tile(tile);
            }
            Err(e) => assert!(!valid, "TileId::new({z}, {x}, {y}) refused: {e}"),
        }
    }
    vector_tile(data);
    archive(data);
});

/// The tile route's path: `{z}/{x}/{y}.ext` after `/tiles/trees/`, each segment percent-decoded.
fn api_path(text: &str) {
    let path = text.strip_prefix("/tiles/trees/").unwrap_or(text);
    let segments: Vec<&str> = path.split('/').collect();
    let [z, x, y] = segments.as_slice() else { return };
    let decode = |s: &str| percent_decode(s);
    let (Some(z), Some(x), Some(y)) = (decode(z), decode(x), decode(y)) else { return };
    if let Ok((tile, format)) = api::parse_tile_address(&z, &x, &y) {
        assert!(tile.z() <= api::MAX_TILE_ZOOM, "{text:?} gave zoom {}", tile.z());
        let side = 1u64 << tile.z();
        assert!(u64::from(tile.x()) < side && u64::from(tile.y()) < side, "{text:?} gave {tile}");
        let suffix = match format {
            api::TileFormat::Mvt => ".mvt",
            api::TileFormat::Png { scale: 2 } => "@2x.png",
            api::TileFormat::Png { .. } => ".png",
        };
        assert!(y.ends_with(suffix), "{text:?} read as {suffix}");
        check_tile(tile);
    }
}

/// Percent-decoding of a path segment as the router does it (`None` when not UTF-8).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// What holds for every valid tile: its range, its text form, its bounds, its
/// family and its PMTiles id.
fn check_tile(tile: TileId) {
    let (z, x, y) = (tile.z(), tile.x(), tile.y());
    assert!(z <= MAX_ZOOM);
    assert!(u64::from(x) < 1u64 << z && u64::from(y) < 1u64 << z, "{tile}");
    let text = tile.to_string();
    assert_eq!(text.parse::<TileId>().ok(), Some(tile), "{text} does not parse back");

    let b = tile.bounds();
    assert!(b.min_lon < b.max_lon && b.min_lat < b.max_lat, "{tile}: bounds {b:?}");
    assert!(b.min_lon >= -180.0 && b.max_lon <= 180.0, "{tile}: bounds {b:?}");
    assert!(
        b.min_lat >= -tiles::MAX_LATITUDE - 1e-9 && b.max_lat <= tiles::MAX_LATITUDE + 1e-9,
        "{tile}: bounds {b:?}"
    );
    let centre = LonLat::new((b.min_lon + b.max_lon) / 2.0, (b.min_lat + b.max_lat) / 2.0);
    assert_eq!(tile_for(centre, z).ok(), Some(tile), "the centre {centre:?} of {tile}");
    let (px, py) = tiles::lonlat_to_tile_pixel(centre, tile, tiles::EXTENT);
    let e = tiles::EXTENT as i32;
    assert!((0..=e).contains(&px) && (0..=e).contains(&py), "centre of {tile} at pixel ({px}, {py})");

    match tile.parent() {
        None => assert_eq!(z, 0),
        Some(p) => {
            assert_eq!((p.z(), p.x(), p.y()), (z - 1, x / 2, y / 2));
            assert!(p.children().is_some_and(|c| c.contains(&tile)), "{tile} is not a child of {p}");
        }
    }
    match tile.children() {
        None => assert_eq!(z, MAX_ZOOM),
        Some(children) => {
            for c in children {
                assert_eq!(c.parent(), Some(tile), "{c} is a child of {tile}");
            }
        }
    }

    let id = pmtiles::tile_id(z, x, y);
    assert_eq!(pmtiles::tile_zxy(id), (z, x, y), "PMTiles id {id} of {tile}");

    let containing = tiles::tiles_containing(centre, z);
    assert!(containing.contains(&tile), "tiles_containing({centre:?}, {z}) lacks {tile}: {containing:?}");
}

/// Decodes a vector tile; what decodes is normalised and encodes again to the same tile.
fn vector_tile(data: &[u8]) {
    let Ok(tile) = mvt::decode(data) else { return };
    let mut builder = TileBuilder::new();
    for layer in &tile.layers {
        let mut out = LayerBuilder::new(layer.name.clone(), layer.extent);
        for f in &layer.features {
            assert_eq!(f.geometry.normalized().as_ref(), Some(&f.geometry), "a decoded geometry is not normalised");
            let properties: Vec<(&str, mvt::Value)> =
                f.properties.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            assert!(out.add_feature(f.id, &properties, &f.geometry), "a decoded feature is not drawable");
        }
        builder.add_layer(out).expect("decoded layer names are unique");
    }
    let again = mvt::decode(&builder.encode()).expect("an encoded tile decodes");
    let non_empty: Vec<&mvt::Layer> = tile.layers.iter().filter(|l| !l.features.is_empty()).collect();
    assert_eq!(again.layers.len(), non_empty.len());
    for (a, b) in again.layers.iter().zip(non_empty) {
        assert_eq!((&a.name, a.extent), (&b.name, b.extent));
        assert_eq!(a.features.len(), b.features.len());
        for (fa, fb) in a.features.iter().zip(&b.features) {
            assert_eq!((fa.id, &fa.geometry), (fb.id, &fb.geometry), "layer {}", a.name);
        }
    }
}

/// Reads a PMTiles archive: header, metadata, directories and a bounded number of tiles.
fn archive(data: &[u8]) {
    let _ = pmtiles::Header::parse(data);
    let Ok(reader) = PmtilesReader::new(data) else { return };
    let header = reader.header();
    let _ = (header.bounds(), header.center());
    let _ = reader.metadata();
    let _ = reader.metadata_json();
    let entries: Vec<u64> = reader.root_entries().iter().take(64).map(|e| e.tile_id).collect();
    for id in entries {
        let _ = reader.tile_by_id(id);
        let _ = reader.tile_by_id(id.wrapping_add(1));
    }
    for item in reader.tiles().take(4096) {
        let Ok((tile, bytes)) = item else { break };
        assert!(!bytes.is_empty(), "tile {tile} with no bytes");
        assert_eq!(reader.tile(tile).ok().flatten(), Some(bytes), "tile {tile} listed but not found");
    }
}
