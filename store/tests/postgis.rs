//! PostGIS on PostgreSQL (`TEST_DATABASE_URL`): with the extension, trees and orchards carry
//! `geom` columns with GiST indexes that follow every write; without it (`PostgisMode::Off`, or a
//! server without the extension), the same operations work and there is no such column.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Fixture, Kind, draft, orchard, survey};
use geo_core::{Actor, LonLat, Tree, polygon_from_ring};
use sqlx::Connection as _;
use store::postgis::PostgisMode;
use store::{ImportBatch, ImportMeta, PostgresStore, Storage};

async fn fixture() -> Option<Fixture> {
    let f = Fixture::new(Kind::Postgres).await;
    if f.is_none() {
        eprintln!("TEST_DATABASE_URL is not set: PostGIS tests skipped");
    }
    f
}

async fn conn(f: &Fixture) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&f.location()).await.unwrap()
}

async fn has_column(f: &Fixture, table: &str) -> bool {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = 'geom'",
    )
    .bind(table)
    .fetch_one(&mut conn(f).await)
    .await
    .unwrap();
    n == 1
}

async fn available(f: &Fixture) -> bool {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")
        .fetch_one(&mut conn(f).await)
        .await
        .unwrap();
    n == 1
}

fn boundary_orchard(id: &str) -> geo_core::Orchard {
    let at = LonLat::new(108.1234, 12.6543);
    let mut o = orchard(id);
    o.boundary = Some(polygon_from_ring(&[
        at.offset_m(-5.0, -5.0),
        at.offset_m(100.0, -5.0),
        at.offset_m(100.0, 100.0),
        at.offset_m(-5.0, 100.0),
        at.offset_m(-5.0, -5.0),
    ]));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geometry_columns_follow_every_write_when_postgis_is_there() {
    let Some(f) = fixture().await else { return };
    if !available(&f).await {
        eprintln!("the server has no PostGIS extension: skipped (CI installs postgresql-15-postgis-3)");
        f.cleanup_now().await;
        return;
    }
    let pg = PostgresStore::connect_with(&f.location(), PostgisMode::On).await.unwrap();
    assert!(pg.has_postgis());
    let store: Arc<dyn Storage> = Arc::new(pg);
    let imported = store
        .import(ImportBatch {
            survey: None,
            orchards: vec![boundary_orchard("GIS-1")],
            trees: (0..50).map(|i| draft("GIS-1", i)).collect(),
        })
        .await
        .unwrap();
    assert!(has_column(&f, "trees").await && has_column(&f, "orchards").await);
    let mut c = conn(&f).await;
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM trees WHERE ST_X(geom) <> lon OR ST_Y(geom) <> lat OR ST_SRID(geom) <> 4326",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    // An edit moves the geometry with the tree.
    let t = &imported.trees[0];
    let moved = Tree { location: LonLat::new(t.location.lon + 0.001, t.location.lat), ..t.clone() };
    store.edit_tree(&moved, &Actor::system("gis")).await.unwrap();
    let (x, y): (f64, f64) = sqlx::query_as("SELECT ST_X(geom), ST_Y(geom) FROM trees WHERE id = $1")
        .bind(t.id.0)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!((x, y), (moved.location.lon, moved.location.lat));
    // GIS queries work on the columns: every tree of the sample lies in its orchard's polygon but the moved one.
    let inside: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM trees t JOIN orchards o ON o.id = t.orchard_id WHERE ST_Contains(o.geom, t.geom)",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(inside, 49);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE indexdef LIKE '%USING gist (geom)%' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(indexes, ["orchards_geom", "trees_geom"]);
    // Opening again (a second server) keeps them, once.
    let again = PostgresStore::connect_with(&f.location(), PostgisMode::Auto).await.unwrap();
    assert!(again.has_postgis());
    f.cleanup_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_postgis_everything_else_works() {
    let Some(f) = fixture().await else { return };
    let pg = PostgresStore::connect_with(&f.location(), PostgisMode::Off).await.unwrap();
    assert!(!pg.has_postgis());
    let store: Arc<dyn Storage> = Arc::new(pg);
    let imported = store
        .import(ImportBatch {
            survey: None,
            orchards: vec![boundary_orchard("NOGIS-1")],
            trees: (0..20).map(|i| draft("NOGIS-1", i)).collect(),
        })
        .await
        .unwrap();
    let t = &imported.trees[3];
    let moved = Tree { location: LonLat::new(t.location.lon + 0.001, t.location.lat), ..t.clone() };
    let stored = store.edit_tree(&moved, &Actor::system("x")).await.unwrap();
    assert_eq!(store.tree(t.id).await.unwrap().unwrap(), stored);
    assert_eq!(store.count_trees().await.unwrap(), 20);
    assert!(!has_column(&f, "trees").await && !has_column(&f, "orchards").await);
    f.cleanup_now().await;
}

fn meta(n: u64) -> ImportMeta {
    ImportMeta {
        file_name: format!("bulk-{n}.csv"),
        file_sha256: format!("{n:064x}"),
        format: "csv".into(),
        survey: survey("bulk"),
        external_id: None,
    }
}

fn rows(from: usize, n: usize) -> Vec<(String, geo_core::NewTree)> {
    (from..from + n).map(|i| (format!("row-{i}"), draft("GIS-1", i))).collect()
}

/// Whether another session can read `trees` within 300 ms (`false`: it waited for a lock).
async fn readable(f: &Fixture) -> bool {
    let mut c = conn(f).await;
    sqlx::query("SET lock_timeout = '300ms'").execute(&mut c).await.unwrap();
    match sqlx::query_scalar::<_, i64>("SELECT count(*) FROM trees").fetch_one(&mut c).await {
        Ok(_) => true,
        Err(e) if e.to_string().contains("lock timeout") => false,
        Err(e) => panic!("reading trees: {e}"),
    }
}

/// Trees found through the GiST index (sequential scans off) in a box around the fixture's trees.
async fn found_by_index(f: &Fixture) -> i64 {
    let mut c = conn(f).await;
    sqlx::query("SET enable_seqscan = off").execute(&mut c).await.unwrap();
    let plan: Vec<String> =
        sqlx::query_scalar("EXPLAIN SELECT count(*) FROM trees WHERE geom && ST_MakeEnvelope(100, 0, 120, 20, 4326)")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert!(plan.iter().any(|line| line.contains("trees_geom")), "the index is not used: {plan:?}");
    sqlx::query_scalar("SELECT count(*) FROM trees WHERE geom && ST_MakeEnvelope(100, 0, 120, 20, 4326)")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_import_builds_the_gist_index_again_and_a_small_one_keeps_it() {
    let Some(f) = fixture().await else { return };
    if !available(&f).await {
        eprintln!("the server has no PostGIS extension: skipped (CI installs postgresql-15-postgis-3)");
        f.cleanup_now().await;
        return;
    }
    let pg = PostgresStore::connect_with(&f.location(), PostgisMode::On).await.unwrap().with_bulk_index_rows(100);
    let store: Arc<dyn Storage> = Arc::new(pg);
    store.import(ImportBatch { survey: None, orchards: vec![boundary_orchard("GIS-1")], trees: vec![] }).await.unwrap();

    // 300 new trees into an empty table: from the 100th the index is dropped (the table is
    // locked meanwhile) and built again at commit.
    let mut w = store.begin_import(meta(1)).await.unwrap();
    w.insert_trees(rows(0, 60)).await.unwrap();
    assert!(readable(&f).await, "60 rows are below the threshold: the table stays readable");
    w.insert_trees(rows(60, 60)).await.unwrap();
    assert!(!readable(&f).await, "past the threshold the import holds the table");
    w.insert_trees(rows(120, 180)).await.unwrap();
    w.commit().await.unwrap();
    assert!(readable(&f).await);
    assert_eq!(found_by_index(&f).await, 300);

    // A bulk import rolled back leaves the index as it was.
    let mut w = store.begin_import(meta(2)).await.unwrap();
    w.insert_trees(rows(300, 200)).await.unwrap();
    assert!(!readable(&f).await);
    drop(w);
    assert!(readable(&f).await);
    assert_eq!(found_by_index(&f).await, 300);

    // 100 more into 300 (a third of the table): rebuilt.
    let mut w = store.begin_import(meta(3)).await.unwrap();
    w.insert_trees(rows(500, 100)).await.unwrap();
    assert!(!readable(&f).await);
    w.commit().await.unwrap();
    // 120 into a table whose ids reach 600 (the rolled-back import used ids too): past the
    // threshold but under a quarter of the table, so the index is kept row by row, never locked.
    let mut w = store.begin_import(meta(4)).await.unwrap();
    w.insert_trees(rows(600, 120)).await.unwrap();
    assert!(readable(&f).await, "a small import keeps the index and never locks the table");
    w.commit().await.unwrap();
    assert_eq!(found_by_index(&f).await, 520);
    f.cleanup_now().await;
}
