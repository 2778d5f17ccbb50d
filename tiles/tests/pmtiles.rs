#![allow(clippy::unwrap_used, clippy::expect_used)]
//! PMTiles v3 archives: tile ids, writing, reading back, leaf directories,
//! metadata, and rejection of broken archives.
//!
//! `PMTILES_SAMPLE=/tmp/sample cargo test -p orchardmap-tiles --test pmtiles sample`
//! also writes `/tmp/sample.pmtiles` (gzipped vector tiles of a few orchards)
//! and `/tmp/sample-leaves.pmtiles` (100,000 tiles in leaf directories), to
//! check with other PMTiles readers (`pmtiles show`, the Python `pmtiles` package).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use geo_core::{BBox, LonLat};
use proptest::prelude::*;
use tiles::TileId;
use tiles::pmtiles::{
    ArchiveError, Compression, HEADER_LEN, Header, PmtilesReader, PmtilesWriter, ROOT_LIMIT, TileType,
    orchard_metadata, tile_id, tile_zxy,
};

fn t(z: u32, x: u32, y: u32) -> TileId {
    TileId::new(z, x, y).unwrap()
}

/// Cư M'gar, Đắk Lắk: where the test orchards are.
fn bounds() -> BBox {
    BBox { min_lon: 108.0, min_lat: 12.6, max_lon: 108.25, max_lat: 12.85 }
}

fn write(writer: PmtilesWriter, metadata: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    let n = writer.finish(metadata, &mut out).unwrap();
    assert_eq!(n, out.len() as u64);
    out
}

#[test]
fn tile_ids_match_the_reference_implementation() {
    // Values from the spec's reference implementations' tests (Go, Python, C++, Dart).
    let known: [((u8, u32, u32), u64); 12] = [
        ((0, 0, 0), 0),
        ((1, 0, 0), 1),
        ((1, 0, 1), 2),
        ((1, 1, 1), 3),
        ((1, 1, 0), 4),
        ((2, 0, 0), 5),
        ((3, 0, 0), 21),
        ((4, 0, 0), 85),
        ((12, 3423, 1763), 19_078_479),
        ((20, 1234, 5678), 366_563_052_717),
        ((25, 1234, 5678), 375_299_988_763_469),
        ((26, 67_108_863, 0), 6_004_799_503_160_660),
    ];
    for ((z, x, y), id) in known {
        assert_eq!(tile_id(z, x, y), id, "{z}/{x}/{y}");
        assert_eq!(tile_zxy(id), (z, x, y), "{id}");
    }
    // The last tile of each zoom is one before the first of the next.
    assert_eq!(tile_zxy(4), (1, 1, 0));
    assert_eq!(tile_zxy(20).0, 2);
    // The extremes of a u64: the last id of zoom 31, and ids beyond it (zoom 32).
    let last31 = tile_id(31, (1 << 31) - 1, 0);
    assert_eq!(tile_zxy(last31), (31, (1 << 31) - 1, 0));
    assert_eq!(tile_zxy(last31 + 1), (32, 0, 0));
    assert_eq!(tile_zxy(u64::MAX).0, 32);
}

#[test]
#[should_panic(expected = "outside")]
fn tile_id_refuses_a_column_beyond_the_grid() {
    tile_id(2, 4, 0);
}

proptest! {
    #[test]
    fn tile_id_round_trips(z in 0u8..=31, fx in 0.0f64..1.0, fy in 0.0f64..1.0) {
        let n = 1u64 << z;
        let (x, y) = ((fx * n as f64) as u32, (fy * n as f64) as u32);
        let id = tile_id(z, x, y);
        prop_assert_eq!(tile_zxy(id), (z, x, y));
        // Ids of zoom z come after all ids of lower zooms and before the next zoom's.
        prop_assert!(id >= tile_id(z, 0, 0));
        if z < 31 {
            prop_assert!(id < tile_id(z + 1, 0, 0));
        }
    }

    #[test]
    fn zxy_round_trips_and_the_curve_is_continuous(id in 0u64..tile_id(31, 0, 0)) {
        let (z, x, y) = tile_zxy(id);
        prop_assert_eq!(tile_id(z, x, y), id);
        // Consecutive ids within a zoom are neighbouring tiles (a Hilbert curve).
        let (z2, x2, y2) = tile_zxy(id + 1);
        if z2 == z {
            prop_assert_eq!(x.abs_diff(x2) + y.abs_diff(y2), 1);
        }
    }
}

#[test]
fn small_zooms_cover_every_tile_once() {
    for z in 0..=6u8 {
        let n = 1u32 << z;
        let mut ids: Vec<u64> = (0..n).flat_map(|x| (0..n).map(move |y| tile_id(z, x, y))).collect();
        ids.sort_unstable();
        let first = tile_id(z, 0, 0);
        assert_eq!(ids, (first..first + u64::from(n) * u64::from(n)).collect::<Vec<_>>());
    }
}

/// A few hundred tiles around Cư M'gar at z10..=z14: distinct ones, and runs
/// of identical "ocean" tiles and repeats scattered around.
fn sample_tiles() -> BTreeMap<TileId, Vec<u8>> {
    let mut tiles = BTreeMap::new();
    let ocean = b"\x1f\x8b empty ocean tile".to_vec();
    for z in 10..=14u32 {
        let centre = tiles::tile_for(LonLat::new(108.1, 12.7), z as u8).unwrap();
        for dx in 0..8u32 {
            for dy in 0..8u32 {
                let tile = t(z, centre.x() + dx, centre.y() + dy);
                let bytes = match (dx + dy) % 4 {
                    0 | 1 => format!("tile {tile} of a durian orchard").into_bytes(),
                    2 => ocean.clone(),
                    _ => b"shared".to_vec(),
                };
                tiles.insert(tile, bytes);
            }
        }
    }
    // A full run: every tile of zoom 3 is the same ocean.
    for x in 0..8 {
        for y in 0..8 {
            tiles.insert(t(3, x, y), ocean.clone());
        }
    }
    tiles
}

#[test]
fn an_archive_reads_back_tile_for_tile() {
    let tiles = sample_tiles();
    let mut writer = PmtilesWriter::new(Compression::Gzip, bounds(), 3, 14);
    // Added in reverse order, with a first version of one tile replaced later.
    let replaced = *tiles.keys().nth(150).unwrap();
    writer.add_tile(replaced, b"first version");
    for (tile, bytes) in tiles.iter().rev() {
        writer.add_tile(*tile, bytes);
    }
    assert_eq!(writer.len(), tiles.len() + 1);
    let metadata = orchard_metadata("Cư M'gar", 3, 14);
    let pack = write(writer, &metadata);
    let reader = PmtilesReader::new(&pack).unwrap();

    for (tile, bytes) in &tiles {
        assert_eq!(reader.tile(*tile).unwrap(), Some(&bytes[..]), "{tile}");
    }
    for missing in [t(0, 0, 0), t(3, 0, 0).children().unwrap()[0], t(14, 0, 0), t(10, 500, 500), t(15, 0, 0)] {
        assert_eq!(reader.tile(missing).unwrap(), None, "{missing}");
    }
    // The iterator gives every tile once, in tile id order.
    let listed: Vec<(TileId, &[u8])> = reader.tiles().collect::<Result<_, _>>().unwrap();
    assert_eq!(listed.len(), tiles.len());
    let ids: Vec<u64> = listed.iter().map(|(t, _)| tile_id(t.z(), t.x(), t.y())).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    for (tile, bytes) in &listed {
        assert_eq!(tiles.get(tile).map(Vec::as_slice), Some(*bytes));
    }

    let h = reader.header();
    let distinct: std::collections::HashSet<&Vec<u8>> = tiles.values().collect();
    assert_eq!(h.version, 3);
    assert_eq!(h.addressed_tiles, tiles.len() as u64);
    assert_eq!(h.tile_contents, distinct.len() as u64);
    // Runs make fewer entries than tiles: zoom 3 alone is one entry.
    assert!(h.tile_entries < h.addressed_tiles);
    let zoom3 = tile_id(3, 0, 0);
    assert!(reader.root_entries().iter().any(|e| e.tile_id == zoom3 && e.run_length == 64));
    assert!(h.clustered);
    assert_eq!(h.internal_compression, Compression::Gzip);
    assert_eq!(h.tile_compression, Compression::Gzip);
    assert_eq!(h.tile_type, TileType::Mvt);
    assert_eq!((h.min_zoom, h.max_zoom), (3, 14));
    assert_eq!(
        (h.min_lon_e7, h.min_lat_e7, h.max_lon_e7, h.max_lat_e7),
        (1_080_000_000, 126_000_000, 1_082_500_000, 128_500_000)
    );
    assert_eq!(h.bounds(), bounds());
    assert_eq!((h.center_zoom, h.center_lon_e7, h.center_lat_e7), (3, 1_081_250_000, 127_250_000));
    // Sections in the usual order, back to back, the root within the first 16 KiB.
    assert_eq!(h.root_offset, HEADER_LEN as u64);
    assert!(h.root_offset + h.root_length <= ROOT_LIMIT as u64);
    assert_eq!(h.metadata_offset, h.root_offset + h.root_length);
    assert_eq!(h.leaf_offset, h.metadata_offset + h.metadata_length);
    assert_eq!(h.leaf_length, 0);
    assert_eq!(h.data_offset, h.leaf_offset);
    assert_eq!(h.data_offset + h.data_length, pack.len() as u64);
    // Deduplicated: the data is exactly the distinct blobs.
    assert_eq!(h.data_length, distinct.iter().map(|b| b.len() as u64).sum::<u64>());
    // Every root entry is a tile (no leaves needed).
    assert!(reader.root_entries().iter().all(|e| e.run_length > 0));

    // The header parses to the same value it serialises from.
    assert_eq!(Header::parse(&h.to_bytes()).unwrap(), *h);
    assert_eq!(&pack[..7], b"PMTiles");
    assert_eq!(pack[7], 3);

    assert_eq!(reader.metadata_json().unwrap(), metadata);
}

#[test]
fn metadata_round_trips_with_vector_layers() {
    let mut metadata = orchard_metadata("Đắk Lắk trees", 10, 18);
    metadata["generated_at"] = "2025-06-01T00:00:00Z".into();
    let mut writer =
        PmtilesWriter::new(Compression::None, bounds(), 10, 18).with_center(LonLat::new(108.05, 12.68), 16);
    writer.add_tile(t(10, 819, 478), b"x");
    let pack = write(writer, &metadata);
    let reader = PmtilesReader::new(&pack).unwrap();

    // Stored gzipped.
    let h = reader.header();
    let raw = &pack[h.metadata_offset as usize..(h.metadata_offset + h.metadata_length) as usize];
    let mut text = String::new();
    flate2::read::GzDecoder::new(raw).read_to_string(&mut text).unwrap();
    assert_eq!(text, reader.metadata().unwrap());

    let back = reader.metadata_json().unwrap();
    assert_eq!(back, metadata);
    assert_eq!(back["name"], "Đắk Lắk trees");
    let layers = back["vector_layers"].as_array().unwrap();
    let trees = layers.iter().find(|l| l["id"] == "trees").unwrap();
    for field in [
        "code",
        "cultivar",
        "health",
        "planted_year",
        "orchard",
        "clustered",
        "point_count",
        "point_count_abbreviated",
        "good",
        "fair",
        "poor",
        "dead",
    ] {
        assert!(trees["fields"].get(field).is_some(), "trees.{field}");
    }
    assert_eq!((trees["minzoom"].as_u64(), trees["maxzoom"].as_u64()), (Some(10), Some(18)));
    let orchards = layers.iter().find(|l| l["id"] == "orchards").unwrap();
    let fields: Vec<&str> = orchards["fields"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields.len(), 3);
    for field in ["orchard", "name", "planting_area_code"] {
        assert!(fields.contains(&field), "orchards.{field}");
    }
    assert_eq!(h.tile_compression, Compression::None);
    assert_eq!((h.center_zoom, h.center_lon_e7, h.center_lat_e7), (16, 1_080_500_000, 126_800_000));
}

#[test]
fn many_distinct_tiles_go_to_leaf_directories() {
    // 100,000 distinct tiles at z11 (every third row), each with its own
    // bytes, of lengths 2..263.
    let mut writer = PmtilesWriter::new(Compression::None, bounds(), 11, 11).with_tile_type(TileType::Png);
    let mut expected = Vec::new();
    let tiles = (0..2048u32).flat_map(|x| (0..2048u32).step_by(3).map(move |y| t(11, x, y)));
    for (k, tile) in (0..100_000u64).zip(tiles) {
        // Lengths that do not repeat in a pattern gzip could fold away.
        let pad = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        let bytes = format!("{k}:{}", "p".repeat(pad)).into_bytes();
        writer.add_tile(tile, &bytes);
        expected.push((tile, bytes));
    }
    let pack = write(writer, &serde_json::json!({}));
    let reader = PmtilesReader::new(&pack).unwrap();
    let h = reader.header().clone();
    assert!(h.leaf_length > 0);
    assert!(h.root_offset + h.root_length <= ROOT_LIMIT as u64);
    assert!(reader.root_entries().len() > 1);
    assert!(reader.root_entries().iter().all(|e| e.run_length == 0));
    assert_eq!((h.addressed_tiles, h.tile_entries, h.tile_contents), (100_000, 100_000, 100_000));
    assert_eq!(h.tile_type, TileType::Png);

    // Spot checks through the leaves, and every tile through the iterator.
    for (tile, bytes) in expected.iter().step_by(997) {
        assert_eq!(reader.tile(*tile).unwrap(), Some(&bytes[..]), "{tile}");
    }
    assert_eq!(reader.tile(t(11, 0, 1)).unwrap(), None);
    assert_eq!(reader.tile(t(12, 0, 0)).unwrap(), None);
    expected.sort_by_key(|(t, _)| tile_id(t.z(), t.x(), t.y()));
    let mut n = 0;
    for (item, (tile, bytes)) in reader.tiles().zip(&expected) {
        let (got_tile, got_bytes) = item.unwrap();
        assert_eq!((got_tile, got_bytes), (*tile, &bytes[..]));
        n += 1;
    }
    assert_eq!(n, 100_000);
    if let Some(mut path) = std::env::var_os("PMTILES_SAMPLE") {
        path.push("-leaves.pmtiles");
        std::fs::write(path, &pack).unwrap();
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A pack as the offline export makes it: gzipped vector tiles of a grid of
/// trees, z10..=z16, empty tiles around them.
#[test]
fn sample_pack_of_vector_tiles() {
    let origin = LonLat::new(108.05, 12.68);
    let trees: Vec<tiles::TilePoint> = (0..400u64)
        .map(|i| tiles::TilePoint {
            id: i + 1,
            location: LonLat::new(origin.lon + (i % 20) as f64 * 9e-5, origin.lat + (i / 20) as f64 * 9e-5),
            code: format!("DUR-{:04}", i + 1),
            cultivar: if i % 3 == 0 { "Monthong" } else { "Ri6" }.into(),
            health: "good".into(),
            planted_year: Some(2010 + (i % 10) as i32),
            orchard: "DL-CMG-EATIEU-007".into(),
        })
        .collect();
    let area = BBox { min_lon: 108.04, min_lat: 12.67, max_lon: 108.07, max_lat: 12.70 };
    let mut writer = PmtilesWriter::new(Compression::Gzip, area, 10, 16).with_center(origin, 14);
    let mut written = BTreeMap::new();
    for z in 10..=16u8 {
        let nw = tiles::tile_for(LonLat::new(area.min_lon, area.max_lat), z).unwrap();
        let se = tiles::tile_for(LonLat::new(area.max_lon, area.min_lat), z).unwrap();
        for x in nw.x()..=se.x() {
            for y in nw.y()..=se.y() {
                let tile = t(u32::from(z), x, y);
                let mvt = tiles::encode_trees_tile(tile, &trees, &[]);
                writer.add_tile(tile, &gzip(&mvt));
                written.insert(tile, mvt);
            }
        }
    }
    let empty = written.values().filter(|m| m.is_empty()).count();
    assert!(empty > 10, "the sample should hold many empty tiles, has {empty}");
    let pack = write(writer, &orchard_metadata("Ea Tiêu sample", 10, 16));
    let reader = PmtilesReader::new(&pack).unwrap();
    let h = reader.header();
    assert_eq!(h.addressed_tiles, written.len() as u64);
    // All empty tiles share one gzipped blob.
    assert_eq!(h.tile_contents as usize, written.len() - empty + 1);
    for (tile, mvt) in &written {
        let stored = reader.tile(*tile).unwrap().unwrap();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(stored).read_to_end(&mut plain).unwrap();
        assert_eq!(&plain, mvt, "{tile}");
    }
    let z16 = tiles::tile_for(origin, 16).unwrap();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(reader.tile(z16).unwrap().unwrap()).read_to_end(&mut plain).unwrap();
    let decoded = tiles::mvt::decode(&plain).unwrap();
    assert!(!decoded.layer("trees").unwrap().features.is_empty());
    if let Some(mut path) = std::env::var_os("PMTILES_SAMPLE") {
        path.push(".pmtiles");
        std::fs::write(path, &pack).unwrap();
    }
}

#[test]
fn empty_tiles_are_left_out_and_later_adds_win() {
    let mut writer = PmtilesWriter::new(Compression::None, bounds(), 0, 2);
    writer.add_tile(t(0, 0, 0), b"");
    writer.add_tile(t(1, 0, 0), b"a");
    writer.add_tile(t(1, 0, 0), b"");
    writer.add_tile(t(2, 1, 1), b"");
    writer.add_tile(t(2, 1, 1), b"b");
    writer.add_tile(t(2, 1, 2), b"b");
    let pack = write(writer, &serde_json::json!({"name": "x"}));
    let reader = PmtilesReader::new(&pack).unwrap();
    assert_eq!(reader.tile(t(0, 0, 0)).unwrap(), None);
    assert_eq!(reader.tile(t(1, 0, 0)).unwrap(), None);
    assert_eq!(reader.tile(t(2, 1, 1)).unwrap(), Some(&b"b"[..]));
    assert_eq!(reader.tile(t(2, 1, 2)).unwrap(), Some(&b"b"[..]));
    let h = reader.header();
    assert_eq!((h.addressed_tiles, h.tile_contents, h.data_length), (2, 1, 1));
}

#[test]
fn the_writer_refuses_what_it_cannot_write() {
    let finish = |w: PmtilesWriter, m: serde_json::Value| w.finish(&m, &mut Vec::new()).unwrap_err().kind();
    let invalid = std::io::ErrorKind::InvalidInput;
    // Nothing to address.
    assert_eq!(finish(PmtilesWriter::new(Compression::None, bounds(), 0, 2), serde_json::json!({})), invalid);
    let mut w = PmtilesWriter::new(Compression::None, bounds(), 0, 2);
    w.add_tile(t(0, 0, 0), b"");
    assert_eq!(finish(w, serde_json::json!({})), invalid);
    // A tile beyond the declared zooms.
    let mut w = PmtilesWriter::new(Compression::None, bounds(), 0, 2);
    w.add_tile(t(3, 0, 0), b"x");
    assert_eq!(finish(w, serde_json::json!({})), invalid);
    // Metadata that is not an object.
    let mut w = PmtilesWriter::new(Compression::None, bounds(), 0, 2);
    w.add_tile(t(0, 0, 0), b"x");
    assert_eq!(finish(w, serde_json::json!([1, 2])), invalid);
}

#[test]
fn broken_archives_are_refused() {
    let mut writer = PmtilesWriter::new(Compression::None, bounds(), 0, 1);
    writer.add_tile(t(0, 0, 0), b"world");
    writer.add_tile(t(1, 1, 1), b"corner");
    let pack = write(writer, &serde_json::json!({}));
    assert!(PmtilesReader::new(&pack).is_ok());

    assert!(matches!(PmtilesReader::new(&pack[..100]), Err(ArchiveError::NotPmtiles { .. })));
    assert!(matches!(PmtilesReader::new(b"SQLite format 3\0 and so on"), Err(ArchiveError::NotPmtiles { .. })));
    let mut v2 = pack.clone();
    v2[7] = 2;
    assert!(matches!(PmtilesReader::new(&v2), Err(ArchiveError::NotPmtiles { .. })));
    // Truncated: the tile data section lies beyond the end.
    assert!(matches!(PmtilesReader::new(&pack[..pack.len() - 1]), Err(ArchiveError::Malformed { .. })));
    // Brotli directories are valid but not read here.
    let mut brotli = pack.clone();
    brotli[97] = Compression::Brotli.to_byte();
    assert!(matches!(PmtilesReader::new(&brotli), Err(ArchiveError::Unsupported { .. })));
    // A corrupted root directory.
    let mut corrupt = pack.clone();
    let h = Header::parse(&pack).unwrap();
    corrupt[h.root_offset as usize + 12] ^= 0xff;
    assert!(PmtilesReader::new(&corrupt).is_err());
    // Every prefix and a few byte flips fail cleanly or read, never panic.
    for cut in 0..pack.len() {
        let _ = PmtilesReader::new(&pack[..cut]).map(|r| r.tiles().count());
    }
    for i in 0..pack.len() {
        let mut flipped = pack.clone();
        flipped[i] = flipped[i].wrapping_add(97);
        if let Ok(r) = PmtilesReader::new(&flipped) {
            let _ = r.tiles().count();
            let _ = r.tile(t(1, 1, 1));
            let _ = r.metadata();
        }
    }
}

fn varints(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        let mut v = v;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out
}

/// An archive put together by hand, with an uncompressed root directory.
fn hand_made(directory: &[u8], data: &[u8]) -> Vec<u8> {
    let root_length = directory.len() as u64;
    let header = Header {
        version: 3,
        root_offset: HEADER_LEN as u64,
        root_length,
        metadata_offset: HEADER_LEN as u64 + root_length,
        metadata_length: 2,
        leaf_offset: HEADER_LEN as u64 + root_length + 2,
        leaf_length: 0,
        data_offset: HEADER_LEN as u64 + root_length + 2,
        data_length: data.len() as u64,
        addressed_tiles: 0,
        tile_entries: 0,
        tile_contents: 0,
        clustered: false,
        internal_compression: Compression::None,
        tile_compression: Compression::None,
        tile_type: TileType::Unknown,
        min_zoom: 0,
        max_zoom: 1,
        min_lon_e7: 0,
        min_lat_e7: 0,
        max_lon_e7: 0,
        max_lat_e7: 0,
        center_zoom: 0,
        center_lon_e7: 0,
        center_lat_e7: 0,
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(directory);
    out.extend_from_slice(b"{}");
    out.extend_from_slice(data);
    out
}

#[test]
fn uncompressed_directories_are_read_and_checked() {
    // Entries: ids 1 (run 2, "ab" at 0) and 4 ("c", right after: offset 0 = contiguous).
    let dir = varints(&[2, 1, 3, 2, 1, 2, 1, 1, 0]);
    let pack = hand_made(&dir, b"abc");
    let reader = PmtilesReader::new(&pack).unwrap();
    assert_eq!(reader.metadata().unwrap(), "{}");
    assert_eq!(reader.tile(t(1, 0, 0)).unwrap(), Some(&b"ab"[..]));
    assert_eq!(reader.tile(t(1, 0, 1)).unwrap(), Some(&b"ab"[..]));
    assert_eq!(reader.tile(t(1, 1, 1)).unwrap(), None);
    assert_eq!(reader.tile(t(1, 1, 0)).unwrap(), Some(&b"c"[..]));
    assert_eq!(reader.tiles().count(), 3);

    let refused = |dir: Vec<u8>, data: &[u8]| PmtilesReader::new(&hand_made(&dir, data)).map(|r| r.tiles().count());
    // No entries, a zero length, descending ids, a run past the last id, trailing bytes.
    assert!(refused(varints(&[0]), b"").is_err());
    assert!(refused(varints(&[1, 0, 1, 0, 1]), b"a").is_err());
    assert!(refused(varints(&[2, 5, 0, 1, 1, 1, 1, 1, 2]), b"ab").is_err());
    assert!(refused(varints(&[1, u64::MAX - 1, 5, 1, 1]), b"a").is_err());
    assert!(refused(varints(&[1, 0, 1, 1, 1, 7]), b"a").is_err());
    // A tile beyond the data section fails when read, not when opened.
    let reader = hand_made(&varints(&[1, 0, 1, 4, 1]), b"abc");
    let reader = PmtilesReader::new(&reader).unwrap();
    assert!(matches!(reader.tile(t(0, 0, 0)), Err(ArchiveError::Malformed { .. })));
    assert_eq!(reader.tiles().filter(Result::is_err).count(), 1);
}
