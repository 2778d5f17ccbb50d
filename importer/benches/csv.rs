//! Parsing the 10,000-tree sample CSV (`data/trees.csv`), and parsing plus
//! validating 1,000,000 rows of the same shape through [`SurveySource`]
//! (the importer's streaming reader, as `orchardmap import` uses it).
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use importer::{SourceOptions, SurveySource};

fn sample_bytes() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/trees.csv");
    match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => panic!("{path}: {e}; generate it with `cargo run -p orchardmap-sample -- --out data`"),
    }
}

/// `rows` rows shaped like the sample: its rows repeated, each repetition
/// shifted north by 0.01° (about 1.1 km) so no two rows share a position.
fn million_rows(sample: &[u8], rows: usize) -> Vec<u8> {
    let text = std::str::from_utf8(sample).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let body: Vec<(f64, &str)> = lines
        .map(|l| {
            let (lat, rest) = l.split_once(',').unwrap();
            (lat.parse::<f64>().unwrap(), rest)
        })
        .collect();
    let mut out = String::with_capacity(rows * 90);
    out.push_str(header);
    out.push('\n');
    for i in 0..rows {
        let (lat, rest) = body[i % body.len()];
        let shift = (i / body.len()) as f64 * 0.01;
        out.push_str(&format!("{:.7},{rest}\n", lat + shift));
    }
    out.into_bytes()
}

fn sample_csv(c: &mut Criterion) {
    let bytes = sample_bytes();
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

/// Reads every record and counts the accepted ones.
fn read_all(bytes: &'static [u8]) -> usize {
    let mut opts = SourceOptions::default();
    opts.rules.this_year = 2026;
    let source = SurveySource::open(Box::new(bytes), "trees.csv", Some("csv"), opts).unwrap();
    source.map(|r| r.unwrap()).filter(|r| r.tree.is_some()).count()
}

fn survey_source(c: &mut Criterion) {
    let sample = sample_bytes();
    let small: &'static [u8] = Box::leak(sample.clone().into_boxed_slice());
    let big: &'static [u8] = Box::leak(million_rows(&sample, 1_000_000).into_boxed_slice());
    // Every generated row is valid.
    assert_eq!(read_all(big), 1_000_000);

    let mut group = c.benchmark_group("survey_source_csv");
    group.throughput(Throughput::Elements(10_158));
    group.bench_function("sample_10k", |b| b.iter(|| read_all(std::hint::black_box(small))));
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("rows_1m", |b| b.iter(|| read_all(std::hint::black_box(big))));
    group.finish();
}

criterion_group!(benches, sample_csv, survey_source);
criterion_main!(benches);
