//! A million trees: import and start-up load, timed and printed (no timing
//! assertions). Ignored by default; run it in release mode:
//!
//! ```sh
//! cargo test --release -p orchardmap-store --test bulk -- --ignored --nocapture
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test --release -p orchardmap-store --test bulk -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{Fixture, Kind, draft, orchard, survey, with_fixture};
use geo_core::NewTree;
use store::ImportBatch;

const ORCHARDS: usize = 1_000;

async fn million(fx: std::sync::Arc<Fixture>) {
    // BULK_TREES overrides the count (e.g. to profile a smaller run).
    let n: usize = std::env::var("BULK_TREES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let store = fx.open().await;
    let orchards: Vec<String> = (0..ORCHARDS).map(|i| format!("DL-{i:04}")).collect();
    // Trees come orchard by orchard, as surveys record them.
    let per_orchard = n.div_ceil(ORCHARDS);
    let trees: Vec<NewTree> = (0..n).map(|i| draft(&orchards[i / per_orchard], i % 100_000)).collect();
    let batch =
        ImportBatch { survey: Some(survey("bulk")), orchards: orchards.iter().map(|o| orchard(o)).collect(), trees };

    let started = Instant::now();
    let imported = store.import(batch).await.unwrap();
    let import = started.elapsed();
    assert_eq!(imported.trees.len(), n);
    drop(imported);

    // Twice: the first read may still find pages out of the cache.
    for round in 1..=2 {
        let started = Instant::now();
        let all = store.all_trees().await.unwrap();
        let load = started.elapsed();
        assert_eq!(all.len(), n);
        println!("{:?}: all_trees #{round} of {n} trees: {load:.2?}", store.backend());
    }
    println!("{:?}: import of {n} trees in one batch: {import:.2?}", store.backend());

    let started = Instant::now();
    let changes = store.changes_since(0, 20_000).await.unwrap();
    println!("{:?}: changes_since (20,000): {:.2?}", store.backend(), started.elapsed());
    let started = Instant::now();
    let ids: Vec<_> = changes.iter().map(|c| c.tree_id).collect();
    assert_eq!(store.trees_by_ids(&ids).await.unwrap().len(), 20_000);
    println!("{:?}: trees_by_ids (20,000): {:.2?}", store.backend(), started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a million rows: run by hand, in release mode"]
async fn sqlite_million_trees() {
    with_fixture(Kind::Sqlite, "sqlite_million_trees", million).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a million rows: run by hand, in release mode"]
async fn postgres_million_trees() {
    with_fixture(Kind::Postgres, "postgres_million_trees", million).await;
}
