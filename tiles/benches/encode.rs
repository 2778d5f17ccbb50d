//! Encoding a realistic dense tile: z16 (about 600 m across in the Central
//! Highlands) holding ~1,000 trees and a few orchard boundaries, some of them
//! crossing the tile edge so clipping is exercised.
// A panic in a bench's setup is a failed bench; unwrap is fine here.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use geo_core::LonLat;
use tiles::{TileId, TilePoint, TilePolygon, encode_trees_tile, tile_for};

const CULTIVARS: [&str; 4] = ["Ri6", "Monthong", "Musang King", "Black Thorn"];
const HEALTH: [&str; 4] = ["good", "fair", "poor", "dead"];

fn fixture() -> (TileId, Vec<TilePoint>, Vec<TilePolygon>) {
    let tile = tile_for(LonLat::new(108.05, 12.68), 16).unwrap();
    let b = tile.bounds();
    let (w, h) = (b.max_lon - b.min_lon, b.max_lat - b.min_lat);
    // A 32 × 32 planting grid with a little deterministic jitter: 1,024 trees.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut jitter = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1000) as f64 / 1000.0 - 0.5
    };
    let mut trees = Vec::new();
    for i in 0..32u64 {
        for j in 0..32u64 {
            let id = i * 32 + j;
            let lon = b.min_lon + (i as f64 + 0.5 + 0.3 * jitter()) / 32.0 * w;
            let lat = b.min_lat + (j as f64 + 0.5 + 0.3 * jitter()) / 32.0 * h;
            trees.push(TilePoint {
                id: 10_000 + id,
                location: LonLat::new(lon, lat),
                code: format!("DUR-{id:05}"),
                cultivar: CULTIVARS[(id % 4) as usize].into(),
                health: HEALTH[(id % 7 % 4) as usize].into(),
                planted_year: Some(2010 + (id % 12) as i32),
                orchard: format!("DL-CMG-{:03}", id / 256),
            });
        }
    }
    // Four orchards, one per quadrant, each a 64-vertex ring poking past the
    // tile edge, one with a pond.
    let orchards = (0..4)
        .map(|k| {
            let (cx, cy) =
                (b.min_lon + w * (0.1 + 0.8 * f64::from(k % 2)), b.min_lat + h * (0.1 + 0.8 * f64::from(k / 2)));
            let ring = |r: f64| -> Vec<LonLat> {
                (0..64)
                    .map(|a| {
                        let t = f64::from(a) / 64.0 * std::f64::consts::TAU;
                        LonLat::new(cx + r * w * t.cos(), cy + r * h * t.sin() * (1.0 + 0.1 * (5.0 * t).sin()))
                    })
                    .collect()
            };
            TilePolygon {
                orchard: format!("DL-CMG-{k:03}"),
                name: format!("Vườn {k}"),
                planting_area_code: (k % 2 == 0).then(|| format!("VN-DLK-{k:04}")),
                exterior: ring(0.4),
                holes: if k == 0 { vec![ring(0.05)] } else { Vec::new() },
            }
        })
        .collect();
    (tile, trees, orchards)
}

fn bench(c: &mut Criterion) {
    let (tile, trees, orchards) = fixture();
    let bytes = encode_trees_tile(tile, &trees, &orchards);
    let decoded = tiles::mvt::decode(&bytes).unwrap();
    let count = |name| decoded.layer(name).map_or(0, |l| l.features.len());
    println!(
        "z16 fixture {tile}: {} trees, {} orchards in the tile, {} bytes",
        count(tiles::TREES_LAYER),
        count(tiles::ORCHARDS_LAYER),
        bytes.len()
    );
    c.bench_function("encode_trees_tile z16 1024 trees 4 orchards", |b| {
        b.iter(|| encode_trees_tile(black_box(tile), black_box(&trees), black_box(&orchards)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
