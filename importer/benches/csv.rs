//! Parsing the 10,000-tree sample CSV (`data/trees.csv`).
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn sample_csv(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/trees.csv");
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => panic!("{path}: {e}; generate it with `cargo run -p orchardmap-sample -- --out data`"),
    };
    let mut group = c.benchmark_group("trees_csv");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("sample_10k", |b| {
        b.iter(|| {
            let import = importer::parse_trees_csv(std::hint::black_box(&bytes), "trees.csv", 2026);
            std::hint::black_box(import.map(|i| i.rows.len()).unwrap_or(0))
        })
    });
    group.finish();
}

criterion_group!(benches, sample_csv);
criterion_main!(benches);
