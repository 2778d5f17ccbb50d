//! Measures the heap memory and build time of a ClusterPyramid of 1,000,000
//! trees, exactly, by counting the bytes the allocator hands out while
//! building it (as geo-core's `index_memory` example does for the R-tree).
//!
//! `cargo run --release -p orchardmap-tiles --example cluster_memory [trees]`
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::time::Instant;

use cap::Cap;
use tiles::cluster::ClusterPyramid;

#[allow(dead_code)] // the example uses only the tree generators
#[path = "../benches/cluster_fixture/mod.rs"]
mod fixture;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn main() {
    let n = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000usize);
    // The worst case for memory: half the trees spread over 100 km (one per
    // cell from about z15 up), half within 20 m (tiles too full up to z20), so
    // every zoom would add n / 2 cells; the cell budget stops the pyramid.
    let mut mixed = fixture::uniform(n / 2, 3);
    mixed.extend(fixture::clumped(n - n / 2, 4).into_iter().map(|(id, at, h)| {
        let near = geo_core::LonLat::new(108.05 + (at.lon - 108.05) / 100.0, 12.68 + (at.lat - 12.68) / 100.0);
        (id + n as u64, near, h)
    }));
    let sets = [
        ("uniform 100 km", fixture::uniform(n, 1)),
        ("clumped 2 km", fixture::clumped(n, 2)),
        ("half over 100 km, half within 20 m", mixed),
    ];
    for (name, trees) in sets {
        let before = ALLOCATOR.allocated();
        let start = Instant::now();
        let pyramid = ClusterPyramid::build(&trees);
        let took = start.elapsed();
        let heap = ALLOCATOR.allocated() - before;
        println!("{name}: {} trees", pyramid.len());
        println!("  build: {:.0} ms", took.as_secs_f64() * 1e3);
        println!(
            "  clustered zooms: 0..={:?}, {} cells ({:.2} per tree)",
            pyramid.clustered_zooms(),
            pyramid.cell_count(),
            pyramid.cell_count() as f64 / n as f64
        );
        println!("  heap bytes held: {heap} ({:.1} bytes/tree)", heap as f64 / n as f64);
        println!(
            "  heap_bytes() estimate: {} ({:.1} bytes/tree)",
            pyramid.heap_bytes(),
            pyramid.heap_bytes() as f64 / n as f64
        );
        drop(pyramid);
    }
}
