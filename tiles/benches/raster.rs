//! Rendering and PNG-encoding raster tiles: a dense z17–z18 tile of ~2,000
//! tree dots, a tile of 300 clusters packed as tight as a clusterer would
//! leave them, a stress tile of 300 big clusters piled on each other, and an
//! empty tile, each at scale 1 (256 px) and 2 (512 px). The `rgba` cases
//! leave out the PNG encoding, so the split between drawing and encoding
//! can be read off.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use geo_core::Health;
use tiles::raster::{Mark, render_png, render_rgba};

/// A deterministic xorshift in `-0.5..0.5`.
fn jitter(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 10_000) as f64 / 10_000.0 - 0.5
}

/// 2,025 trees on a 45 × 45 grid (about 5.7 px apart at scale 1, so dots
/// nearly touch), spilling a little past the tile edge, mostly healthy.
fn trees() -> Vec<Mark> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut marks = Vec::new();
    for i in 0..45 {
        for j in 0..45 {
            let health = match (i * 31 + j * 17) % 20 {
                0 => Health::Dead,
                1 | 2 => Health::Poor,
                3..=6 => Health::Fair,
                _ => Health::Good,
            };
            let x = -0.01 + f64::from(i) / 44.0 * 1.02 + jitter(&mut seed) * 0.004;
            let y = -0.01 + f64::from(j) / 44.0 * 1.02 + jitter(&mut seed) * 0.004;
            marks.push(Mark::Tree { x, y, health });
        }
    }
    marks
}

/// A cluster of about `count` trees at `(x, y)` with a random health mix.
fn cluster(seed: &mut u64, x: f64, y: f64, count: u32) -> Mark {
    let sick = (jitter(seed) + 0.5) * 0.5;
    let poor = (f64::from(count) * sick * 0.7) as u32;
    let dead = (f64::from(count) * sick * 0.3) as u32;
    let fair = (count - poor - dead) / 5;
    Mark::Cluster { x, y, count, counts: [count - poor - dead - fair, fair, poor, dead] }
}

/// 300 clusters on a jittered 17 × 18 grid 15 px apart (the densest a
/// clusterer would leave them), 2 to ~300 trees each, log-uniformly: their
/// circles (12–22 px radius) overlap their neighbours'.
fn clusters() -> Vec<Mark> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..300)
        .map(|i| {
            let x = (f64::from(i % 17) + 0.5 + jitter(&mut seed) * 0.3) / 17.0;
            let y = (f64::from(i / 17) + 0.5 + jitter(&mut seed) * 0.3) / 18.0;
            let count = 10f64.powf(0.3 + (jitter(&mut seed) + 0.5) * 2.2) as u32;
            cluster(&mut seed, x, y, count)
        })
        .collect()
}

/// A stress case: 300 clusters thrown anywhere over the tile and its
/// margin, 2 to ~50,000 trees each (up to 32 px radius), so the circles
/// cover the tile about seven times over.
fn clusters_stacked() -> Vec<Mark> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..300)
        .map(|_| {
            let x = jitter(&mut seed) * 1.1 + 0.5;
            let y = jitter(&mut seed) * 1.1 + 0.5;
            let count = 10f64.powf(0.3 + (jitter(&mut seed) + 0.5) * 4.4) as u32;
            cluster(&mut seed, x, y, count)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let cases = [
        ("trees_2025", trees()),
        ("clusters_300", clusters()),
        ("clusters_300_stacked", clusters_stacked()),
        ("empty", Vec::new()),
    ];
    let mut group = c.benchmark_group("raster");
    for (name, marks) in &cases {
        for scale in [1, 2] {
            group.bench_function(format!("png/{name}/x{scale}"), |b| b.iter(|| render_png(black_box(marks), scale)));
            group.bench_function(format!("rgba/{name}/x{scale}"), |b| b.iter(|| render_rgba(black_box(marks), scale)));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
