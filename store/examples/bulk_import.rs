//! Times the store's share of a survey import: N new trees (default
//! 1,000,000) fed to an [`store::ImportWriter`] in batches of 8,192 rows, as
//! the import pipeline does (`known_row_keys`, then `insert_trees`), then
//! `commit`; first into an empty database, then N more into the database
//! now holding N. Also times `tree_points` (what de-duplication loads).
//! The drafts are built before the clock starts: parsing is not included.
//!
//! ```sh
//! cargo run --release -p orchardmap-store --example bulk_import                 # SQLite, temporary file
//! cargo run --release -p orchardmap-store --example bulk_import -- big.db 200000
//! cargo run --release -p orchardmap-store --example bulk_import -- postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! With a PostgreSQL URL, a fresh database is created next to the one named
//! and dropped afterwards. A SQLite path must not exist yet.
// A panic in an example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use geo_core::{Cultivar, Health, LonLat, NewTree, Orchard, OrchardId, Survey, SurveyId};
use sqlx::Connection as _;
use store::{ImportBatch, ImportMeta, Storage};

const BATCH: usize = 8_192;
const PER_ORCHARD: usize = 100;

/// A small deterministic generator (xorshift) so the example needs no extra crates.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn orchard(i: usize) -> Orchard {
    Orchard {
        id: OrchardId::new(format!("BENCH-{i:06}")).unwrap(),
        name: format!("Vườn {i}"),
        owner: "bench".into(),
        commune: "Ea Tiêu".into(),
        district: "Cư Kuin".into(),
        province: "Đắk Lắk".into(),
        planting_area_code: None,
        gln: None,
        boundary: None,
    }
}

/// `n` trees in orchards of 100 on 9 m grids, as a survey export would have them,
/// with row keys shaped like KoboToolbox `_uuid`s.
fn batches(round: usize, n: usize, orchards: &[Orchard]) -> Vec<Vec<(String, NewTree)>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ round as u64);
    let cultivars = [Cultivar::new("Ri6"), Cultivar::new("Monthong"), Cultivar::new("Musang King")];
    let origin = LonLat::new(107.9, 12.3);
    let mut out = Vec::with_capacity(n.div_ceil(BATCH));
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        let o = (i / PER_ORCHARD) % orchards.len();
        let slot = i % PER_ORCHARD;
        let centre = origin.offset_m((o % 300) as f64 * 300.0, (o / 300) as f64 * 300.0 + round as f64 * 0.5);
        let tree = NewTree {
            code: None,
            location: centre.offset_m((slot % 10) as f64 * 9.0 + rng.unit(), (slot / 10) as f64 * 9.0 + rng.unit()),
            accuracy_m: Some(2.0 + rng.unit() * 6.0),
            cultivar: cultivars[slot % 3].clone(),
            planted_year: Some(2012 + (o % 12) as i32),
            health: if slot % 50 == 0 { Health::Poor } else { Health::Good },
            height_m: if slot % 2 == 0 { Some(3.0 + rng.unit() * 5.0) } else { None },
            girth_cm: Some(40.0 + rng.unit() * 80.0),
            orchard_id: orchards[o].id.clone(),
            survey_id: None,
        };
        let key = format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", round, i >> 16, i & 0xfff, (i >> 12) & 0xfff, i);
        batch.push((key, tree));
        if batch.len() == BATCH {
            out.push(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
        }
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

async fn import(
    store: &dyn Storage,
    round: usize,
    batches: Vec<Vec<(String, NewTree)>>,
) -> (usize, Duration, Duration) {
    let meta = ImportMeta {
        file_name: format!("bench-{round}.csv"),
        file_sha256: format!("{:064x}", 0xbe9c_0000 + round),
        format: "csv".into(),
        survey: Survey {
            id: SurveyId(0),
            surveyor: "bench".into(),
            surveyed_at: Utc::now(),
            source: format!("bench-{round}.csv"),
            device: None,
        },
        external_id: None,
    };
    let started = Instant::now();
    let mut writer = store.begin_import(meta).await.unwrap();
    let mut n = 0;
    for batch in batches {
        let keys: Vec<String> = batch.iter().map(|(k, _)| k.clone()).collect();
        let known = writer.known_row_keys(&keys).await.unwrap();
        assert!(!known.iter().any(|k| *k), "keys are fresh");
        n += writer.insert_trees(batch).await.unwrap().len();
    }
    let fed = started.elapsed();
    writer.commit().await.unwrap();
    (n, fed, started.elapsed() - fed)
}

async fn run(location: &str, n: usize) {
    let store = store::open(location).await.unwrap();
    let orchards: Vec<Orchard> = (0..n.div_ceil(PER_ORCHARD).min(10_000)).map(orchard).collect();
    store.import(ImportBatch { orchards: orchards.clone(), ..Default::default() }).await.unwrap();
    for round in 0..2 {
        let batches = batches(round, n, &orchards);
        let held = store.count_trees().await.unwrap();
        let (inserted, fed, commit) = import(store.as_ref(), round, batches).await;
        println!(
            "{:?}: {inserted} new trees into a database holding {held}: {:.2?} (batches {:.2?} + commit {:.2?})",
            store.backend(),
            fed + commit,
            fed,
            commit
        );
        let started = Instant::now();
        let points = store.tree_points().await.unwrap();
        println!("{:?}: tree_points of {} trees: {:.2?}", store.backend(), points.len(), started.elapsed());
    }
    let started = Instant::now();
    let mut at = 0;
    let mut followed = 0;
    loop {
        let page = store.changes_since(at, 20_000).await.unwrap();
        let Some(last) = page.last() else { break };
        at = last.seq;
        followed += page.len();
    }
    println!("{:?}: changes_since over {followed} changes: {:.2?}", store.backend(), started.elapsed());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next();
    let n: usize = args.next().map(|a| a.parse().expect("N must be a number")).unwrap_or(1_000_000);
    match target {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let name = format!("orchardmap_bench_{}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut admin).await.unwrap();
            let (base, _) = url.rsplit_once('/').expect("a URL naming a database");
            run(&format!("{base}/{name}"), n).await;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE \"{name}\" WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        Some(path) => {
            assert!(!std::path::Path::new(&path).exists(), "{path} exists: give a new file");
            run(&path, n).await;
        }
        None => {
            let dir = std::env::temp_dir().join(format!("orchardmap-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            run(dir.join("bench.db").to_str().unwrap(), n).await;
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
