//! Streams a survey file through the format layer only (no database), for
//! profiling the parse and validation share of an import:
//!
//! `cargo run --release -p orchardmap-importer --example parse_only -- FILE`
// A panic in an example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::BufReader;
use std::time::Instant;

use importer::{SourceOptions, SurveySource};

fn main() {
    let path = std::env::args().nth(1).expect("usage: parse_only FILE");
    let started = Instant::now();
    let file = std::fs::File::open(&path).unwrap();
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_owned());
    let source = SurveySource::open(
        Box::new(BufReader::with_capacity(1 << 16, file)),
        &path,
        ext.as_deref(),
        SourceOptions::default(),
    )
    .unwrap();
    let (mut trees, mut rejected, mut problems) = (0u64, 0u64, 0u64);
    for record in source {
        let record = record.unwrap();
        problems += record.problems.len() as u64;
        if record.tree.is_some() { trees += 1 } else { rejected += 1 }
    }
    let elapsed = started.elapsed();
    println!(
        "{path}: {trees} trees, {rejected} rejected, {problems} problems in {:.2} s ({:.2} µs/record)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / (trees + rejected).max(1) as f64
    );
}
