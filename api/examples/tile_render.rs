//! Uncached tile rendering through the service's own code path, on a real
//! database: for every zoom 0..=20, `N` random tiles that contain a tree
//! (the tile of a random tree), each rendered once as MVT and as PNG (1x and
//! @2x), exactly as `GET /tiles/trees/...` renders before caching.
//!
//! `cargo run --release -p orchardmap-api --example tile_render -- /tmp/orchardmap-1m.db [N]`
// A panic in an example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use api::{TileFormat, TreeCache, render_tile};
use geo_core::TreeFilter;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let db = args.next().unwrap_or_else(|| "/tmp/orchardmap-1m.db".into());
    let n: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(400);
    let store = store::open(&db).await.unwrap();
    let started = Instant::now();
    let cache = TreeCache::load(store.as_ref()).await.unwrap();
    let positions: Vec<geo_core::LonLat> = cache.read().index.iter().map(|e| e.location).collect();
    println!(
        "{} trees loaded in {:.1} s; {n} random tiles with trees per zoom",
        positions.len(),
        started.elapsed().as_secs_f64()
    );
    {
        let set = cache.read();
        println!(
            "cluster pyramid: zooms 0..={:?} clustered, {} cells, ~{:.1} B/tree",
            set.pyramid.clustered_zooms(),
            set.pyramid.cell_count(),
            set.pyramid.heap_bytes() as f64 / positions.len() as f64
        );
    }
    let filter = TreeFilter::default();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    println!("zoom  MVT p50 / p99 / max ms   max features  max KB   PNG p50 / p99 ms   PNG@2x p50 / p99 ms");
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for z in 0..=api::MAX_TILE_ZOOM {
        let mut times = [Vec::new(), Vec::new(), Vec::new()];
        let (mut max_features, mut max_bytes) = (0usize, 0usize);
        for _ in 0..n {
            let at = positions[(next() % positions.len() as u64) as usize];
            let tile = tiles::tile_for(at, z).unwrap();
            for (i, format) in
                [TileFormat::Mvt, TileFormat::Png { scale: 1 }, TileFormat::Png { scale: 2 }].into_iter().enumerate()
            {
                let t = Instant::now();
                let bytes = render_tile(&cache, tile, format, &filter);
                times[i].push(t.elapsed().as_secs_f64() * 1000.0);
                if i == 0 {
                    let decoded = tiles::mvt::decode(&bytes).unwrap();
                    let features = decoded.layer("trees").map_or(0, |l| l.features.len());
                    max_features = max_features.max(features);
                    max_bytes = max_bytes.max(bytes.len());
                }
            }
        }
        for t in &mut times {
            t.sort_by(f64::total_cmp);
        }
        let p = |i: usize, q: f64| percentile(&times[i], q);
        worst = (worst.0.max(p(0, 99.0)), worst.1.max(p(1, 99.0)), worst.2.max(p(2, 99.0)));
        println!(
            "{z:>4}  {:>7.3} / {:>6.3} / {:>6.3}   {max_features:>12}  {:>6.1}   {:>6.3} / {:>6.3}     {:>6.3} / {:>6.3}",
            p(0, 50.0),
            p(0, 99.0),
            times[0][times[0].len() - 1],
            max_bytes as f64 / 1024.0,
            p(1, 50.0),
            p(1, 99.0),
            p(2, 50.0),
            p(2, 99.0)
        );
    }
    println!("worst p99 over all zooms: MVT {:.3} ms, PNG {:.3} ms, PNG@2x {:.3} ms", worst.0, worst.1, worst.2);
}
