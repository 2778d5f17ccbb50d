//! Test databases: a fresh SQLite file per test, and (when `TEST_DATABASE_URL`
//! names a PostgreSQL server) a fresh database per test, dropped afterwards.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{TimeZone, Utc};
use geo_core::{Cultivar, Health, LonLat, NewTree, Orchard, OrchardId, Survey, SurveyId};
use sqlx::Connection as _;
use store::Storage;

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One test's private database.
#[derive(Debug)]
pub enum Fixture {
    Sqlite { _dir: tempfile::TempDir, path: PathBuf },
    Postgres { admin: String, url: String, name: String },
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..].find('/').map_or(base.len(), |i| host_start + i);
    format!("{}/{name}{query}", &base[..host_end])
}

impl Fixture {
    /// A fresh database, or `None` for PostgreSQL when `TEST_DATABASE_URL` is unset.
    pub async fn new(kind: Kind) -> Option<Self> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("orchardmap.db");
                Some(Fixture::Sqlite { _dir: dir, path })
            }
            Kind::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
                // Unique across parallel tests (counter) and parallel test binaries (pid, clock).
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
                let name = format!(
                    "orchardmap_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    nanos
                );
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let url = with_database(&admin, &name);
                Some(Fixture::Postgres { admin, url, name })
            }
        }
    }

    /// What `store::open` is given.
    pub fn location(&self) -> String {
        match self {
            Fixture::Sqlite { path, .. } => path.display().to_string(),
            Fixture::Postgres { url, .. } => url.clone(),
        }
    }

    /// Opens (and migrates) the database through the public entry point.
    pub async fn open(&self) -> Arc<dyn Storage> {
        store::open(&self.location()).await.unwrap()
    }

    /// Runs raw SQL behind the store's back (to plant corrupt rows).
    pub async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Fixture::Sqlite { path, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Fixture::Postgres { url, .. } => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Drops the database now (tests that manage the fixture themselves).
    pub async fn cleanup_now(&self) {
        self.cleanup().await;
    }

    async fn cleanup(&self) {
        if let Fixture::Postgres { admin, name, .. } = self {
            // FORCE: a pool the test leaked may still hold connections.
            let drop = async {
                let mut conn = sqlx::PgConnection::connect(admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            };
            if let Err(e) = drop.await {
                eprintln!("could not drop test database {name}: {e}");
            }
        }
    }
}

/// Runs `body` against a fresh database of `kind` and removes the database
/// afterwards, also when `body` panics (the panic is then re-raised).
pub async fn with_fixture<F, Fut>(kind: Kind, test: &str, body: F)
where
    F: FnOnce(Arc<Fixture>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(fixture) = Fixture::new(kind).await else {
        eprintln!("skipping {test} on PostgreSQL: TEST_DATABASE_URL is not set");
        return;
    };
    let fixture = Arc::new(fixture);
    let outcome = tokio::spawn(body(fixture.clone())).await;
    fixture.cleanup().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("{test} was cancelled: {e}");
    }
}

// ---------------------------------------------------------------------------
// Test data

pub fn orchard(id: &str) -> Orchard {
    Orchard {
        id: OrchardId::new(id).unwrap(),
        name: format!("Vườn {id}"),
        owner: "Y Blang Niê".into(),
        commune: "Ea Tiêu".into(),
        district: "Cư Kuin".into(),
        province: "Đắk Lắk".into(),
        planting_area_code: Some(format!("VN-DLOR-{id}")),
        gln: None,
        boundary: None,
    }
}

/// Draft `i` in `orchard`: positions 1e-7 degree apart, every optional field
/// varied so a mixed-up column would show.
pub fn draft(orchard: &str, i: usize) -> NewTree {
    let k = i as f64;
    NewTree {
        code: None,
        location: LonLat::new(108.123_456_7 + k * 1e-7, 12.654_321_0 - k * 1e-7),
        accuracy_m: if i % 3 == 0 { None } else { Some(0.5 + k / 8.0) },
        cultivar: Cultivar::new(["Ri6", "Monthong", "Musang King", "Sáu Hữu"][i % 4]),
        planted_year: if i % 5 == 0 { None } else { Some(2000 + (i % 25) as i32) },
        health: Health::ALL[i % 4],
        height_m: if i % 2 == 0 { Some(3.25 + k / 16.0) } else { None },
        girth_cm: if i % 7 == 0 { None } else { Some(40.0 + k) },
        orchard_id: OrchardId::new(orchard).unwrap(),
        survey_id: None,
    }
}

pub fn survey(surveyor: &str) -> Survey {
    Survey {
        id: SurveyId(0),
        surveyor: surveyor.into(),
        surveyed_at: Utc.with_ymd_and_hms(2025, 3, 14, 7, 30, 5).unwrap() + chrono::Duration::microseconds(123_456),
        source: "survey.csv".into(),
        device: Some("Garmin GPSMAP 66sr".into()),
    }
}
