//! Cluster tiles with 1,000,000 trees, uniform over 100 km × 100 km and
//! clumped into 2 km × 2 km: pyramid build, one-tree updates, and whole tile
//! renders (pyramid or R-tree, MVT encoding included) at zooms 0..=20.
//!
//! `cargo bench -p orchardmap-tiles --bench cluster`
//!
//! Before criterion runs, a table gives per zoom the median, p99 and maximum
//! of 400 individually timed renders of random tiles holding trees, and the
//! largest tile (features, bytes) seen. `CLUSTER_TABLE_ONLY=1` stops after it.
// A panic in a bench's setup is a failed bench; unwrap is fine here.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use geo_core::{Health, LonLat};
use tiles::cluster::ClusterPyramid;
use tiles::{TREES_LAYER, mvt};

#[allow(dead_code)]
mod cluster_fixture;
use cluster_fixture::{Path, Rng, World};

const TREES: usize = 1_000_000;
const ZOOMS: [u8; 12] = [0, 4, 8, 10, 11, 12, 13, 14, 16, 18, 19, 20];

fn worlds() -> Vec<(&'static str, World)> {
    vec![
        ("uniform", World::new(cluster_fixture::uniform(TREES, 1))),
        ("clumped", World::new(cluster_fixture::clumped(TREES, 2))),
    ]
}

fn table(worlds: &[(&str, World)]) {
    println!("{TREES} trees; per zoom: 400 random tiles holding trees, each rendered once, uncached");
    println!("dist     L  zoom  path       median    p99       max     max features  max bytes");
    for (name, world) in worlds {
        let top = world.pyramid.clustered_zooms().map_or(-1, i32::from);
        for z in 0..=20u8 {
            let tiles = cluster_fixture::tiles_with_trees(&world.trees, z, 400, u64::from(z) + 7);
            let mut times = Vec::with_capacity(tiles.len());
            let (mut features, mut bytes) = (0, 0);
            let mut paths = Vec::new();
            for tile in &tiles {
                let start = Instant::now();
                let (out, path) = world.render(*tile);
                times.push(start.elapsed());
                bytes = bytes.max(out.len());
                let decoded = mvt::decode(&out).unwrap();
                features = features.max(decoded.layer(TREES_LAYER).map_or(0, |l| l.features.len()));
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
            times.sort();
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            let ms = |d: Duration| format!("{:.3}ms", d.as_secs_f64() * 1e3);
            let path = paths
                .iter()
                .map(|p| match p {
                    Path::Pyramid => "pyramid",
                    Path::Raw => "raw",
                    Path::OnTheFly => "on-the-fly",
                })
                .collect::<Vec<_>>()
                .join("+");
            println!(
                "{name:8} {top:2}  z{z:<3}  {path:10} {:9} {:9} {:9} {features:12}  {bytes:9}",
                ms(at(0.5)),
                ms(at(0.99)),
                ms(at(1.0))
            );
        }
    }
}

fn bench(c: &mut Criterion, worlds: &[(&str, World)]) {
    let mut group = c.benchmark_group("cluster_build");
    group.sample_size(10);
    for (name, world) in worlds {
        group.bench_function(BenchmarkId::new("build_1M", name), |b| {
            b.iter(|| ClusterPyramid::build(black_box(&world.trees)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cluster_update");
    for (name, world) in worlds {
        let mut pyramid = world.pyramid.clone();
        let mut rng = Rng::new(5);
        group.bench_function(BenchmarkId::new("move_and_regrade_1M", name), |b| {
            b.iter(|| {
                let (id, at, h) = world.trees[rng.below(world.trees.len())];
                let to = LonLat::new(at.lon + 1e-5, at.lat);
                pyramid.update(id, (at, h), (to, Health::Poor));
                pyramid.update(id, (to, Health::Poor), (at, h));
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cluster_tile");
    for (name, world) in worlds {
        for z in ZOOMS {
            let tiles = cluster_fixture::tiles_with_trees(&world.trees, z, 64, u64::from(z) + 1);
            let mut i = 0;
            group.bench_function(BenchmarkId::new(*name, format!("z{z}")), |b| {
                b.iter(|| {
                    i = (i + 1) % tiles.len();
                    black_box(world.render(tiles[i]))
                })
            });
        }
    }
    group.finish();
}

fn main() {
    let worlds = worlds();
    table(&worlds);
    if std::env::var_os("CLUSTER_TABLE_ONLY").is_some() {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &worlds);
    c.final_summary();
}
