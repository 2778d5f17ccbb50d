//! Measures the heap memory of a TreeIndex of 1,000,000 trees, exactly, by
//! counting the bytes the allocator hands out while building it.
//!
//! `cargo run --release -p orchardmap-geo-core --example index_memory`
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;

use cap::Cap;
use geo_core::TreeIndex;

#[allow(dead_code)] // the example uses only the tree generator
#[path = "../benches/fixture.rs"]
mod fixture;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let n = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000usize);
    let trees = fixture::orchard_trees(n, 7);
    let before_bytes = ALLOCATOR.allocated();
    let before_rss = rss_kib();
    let index = TreeIndex::bulk_load(trees.iter().copied());
    let after_bytes = ALLOCATOR.allocated();
    let after_rss = rss_kib();
    let heap = after_bytes - before_bytes;
    println!("trees: {}", index.len());
    println!("heap bytes held by the index: {heap} ({:.1} bytes/tree)", heap as f64 / n as f64);
    if let (Some(a), Some(b)) = (before_rss, after_rss) {
        println!("resident set growth: {} KiB ({:.1} bytes/tree)", b - a, (b - a) as f64 * 1024.0 / n as f64);
    }
    println!("size_of entry: {} bytes", std::mem::size_of::<geo_core::IndexedTree>());
    drop(trees);
}
