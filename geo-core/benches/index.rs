//! TreeIndex benchmarks on 1,000,000 trees (fixed seeds).
//!
//! `cargo bench -p orchardmap-geo-core --bench index`
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use geo_core::{BBox, TreeIndex};

mod fixture;

const TREES: usize = 1_000_000;

fn index_benches(c: &mut Criterion) {
    let trees = fixture::orchard_trees(TREES, 7);
    let queries = fixture::queries_near(&trees, 4096, 11);

    let mut group = c.benchmark_group("tree_index_1m");
    group.sample_size(10);
    group.bench_function("bulk_load", |b| {
        b.iter_batched(|| trees.clone(), |t| black_box(TreeIndex::bulk_load(t)), BatchSize::LargeInput)
    });
    group.finish();

    let index = TreeIndex::bulk_load(trees.clone());
    let mut group = c.benchmark_group("tree_index_1m");
    let mut i = 0;
    group.bench_function("nearest_k1", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(index.nearest_one(queries[i]))
        })
    });
    group.bench_function("nearest_k10", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(index.nearest(queries[i], 10))
        })
    });
    // Boxes of 95 m x 95 m over whole orchards (10 x 10 trees, 9 m apart): about 100 trees each.
    let boxes: Vec<BBox> = trees
        .iter()
        .step_by(100)
        .take(4096)
        .map(|(_, first)| {
            let sw = first.offset_m(-7.0, -7.0);
            let ne = first.offset_m(88.0, 88.0);
            BBox { min_lon: sw.lon, min_lat: sw.lat, max_lon: ne.lon, max_lat: ne.lat }
        })
        .collect();
    let mean: f64 = boxes.iter().map(|b| index.in_bbox(b).count() as f64).sum::<f64>() / boxes.len() as f64;
    println!("bbox queries return {mean:.1} trees on average");
    group.bench_function("bbox_about_100", |b| {
        b.iter(|| {
            i = (i + 1) % boxes.len();
            black_box(index.in_bbox(&boxes[i]).map(|e| e.id.0).sum::<i64>())
        })
    });
    group.bench_function("within_30m", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(index.within_radius(queries[i], 30.0))
        })
    });
    group.finish();
}

criterion_group!(benches, index_benches);
criterion_main!(benches);
