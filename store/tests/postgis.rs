//! PostGIS on PostgreSQL (`TEST_DATABASE_URL`): with the extension, trees and orchards carry
//! `geom` columns with GiST indexes that follow every write; without it (`PostgisMode::Off`, or a
//! server without the extension), the same operations work and there is no such column.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Fixture, Kind, draft, orchard};
use geo_core::{Actor, LonLat, Tree, polygon_from_ring};
use sqlx::Connection as _;
use store::postgis::PostgisMode;
use store::{ImportBatch, PostgresStore, Storage};

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
