//! A real `kill -9` of a process in the middle of an import leaves the
//! database exactly as it was; killed around its commit, the database holds
//! all of the import or none of it. The test binary runs itself as the child
//! (the ignored `child_imports_until_killed`), on SQLite and, when
//! `TEST_DATABASE_URL` is set, on PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fixture, Kind, draft, orchard, survey, with_fixture};
use geo_core::{NewTree, Tree, TreeId};
use store::{ImportBatch, ImportMeta, Storage};

const LOCATION: &str = "ORCHARDMAP_KILL_TEST_DB";
const MARKER: &str = "ORCHARDMAP_KILL_TEST_MARKER";
const COMMIT: &str = "ORCHARDMAP_KILL_TEST_COMMIT";
const BATCH: usize = 2_000;
const BATCHES_BEFORE_COMMIT: usize = 20;

fn meta() -> ImportMeta {
    ImportMeta {
        file_name: "killed.csv".into(),
        file_sha256: format!("{:064x}", 0xdead_u64),
        format: "csv".into(),
        survey: survey("killed"),
        external_id: None,
    }
}

fn batch(b: usize) -> Vec<(String, NewTree)> {
    (0..BATCH).map(|i| (format!("row-{b}-{i}"), draft("DL-001", b * BATCH + i))).collect()
}

/// The child: imports batch after batch, touching `marker` once under way,
/// until killed; with `COMMIT` set, commits after a fixed number of batches
/// (touching `marker` just before) and then waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of kill_9_*; does nothing when run by hand"]
async fn child_imports_until_killed() {
    let (Ok(location), Ok(marker)) = (std::env::var(LOCATION), std::env::var(MARKER)) else { return };
    let commit = std::env::var(COMMIT).is_ok();
    let store = store::open(&location).await.unwrap();
    let mut writer = store.begin_import(meta()).await.unwrap();
    for b in 0.. {
        let rows = batch(b);
        let keys: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
        writer.known_row_keys(&keys).await.unwrap();
        writer.insert_trees(rows).await.unwrap();
        if b == 2 && !commit {
            std::fs::write(&marker, "importing").unwrap();
        }
        if commit && b + 1 == BATCHES_BEFORE_COMMIT {
            std::fs::write(&marker, "committing").unwrap();
            writer.commit().await.unwrap();
            std::fs::write(&marker, "committed").unwrap();
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
}

fn spawn_child(location: &str, marker: &Path, commit: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_imports_until_killed", "--ignored", "--test-threads=1"])
        .env(LOCATION, location)
        .env(MARKER, marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if commit {
        command.env(COMMIT, "1");
    }
    command.spawn().unwrap()
}

fn wait_for(marker: &Path, child: &mut Child) {
    let started = Instant::now();
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child ended before the marker appeared: {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the child never got under way");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Some milliseconds, different from run to run.
fn jitter(max_ms: u64) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    Duration::from_micros(u64::from(nanos) % (max_ms * 1000))
}

async fn snapshot(store: &dyn Storage) -> (Vec<Tree>, i64, usize) {
    (
        store.all_trees().await.unwrap(),
        store.last_change().await.unwrap(),
        store.changes_since(0, u32::MAX).await.unwrap().len(),
    )
}

async fn kill_mid_import(fx: Arc<Fixture>) {
    let dir = tempfile::tempdir().unwrap();
    let location = fx.location();
    let store = fx.open().await;
    let base = store
        .import(ImportBatch {
            survey: Some(survey("base")),
            orchards: vec![orchard("DL-001")],
            trees: vec![draft("DL-001", 0)],
        })
        .await
        .unwrap();
    let before = snapshot(store.as_ref()).await;
    drop(store);

    for round in 0..3 {
        let marker: PathBuf = dir.path().join(format!("marker-{round}"));
        let mut child = spawn_child(&location, &marker, false);
        wait_for(&marker, &mut child);
        std::thread::sleep(jitter(150));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let store = fx.open().await;
        assert_eq!(snapshot(store.as_ref()).await, before, "round {round}");
        assert!(store.find_import(&meta().file_sha256).await.unwrap().is_none());
        assert!(store.tree_history(base.trees[0].id).await.unwrap().is_empty());
        drop(store);
    }
    // Not locked, not damaged: the same file imports now.
    let store = fx.open().await;
    let mut writer = store.begin_import(meta()).await.unwrap();
    assert_eq!(writer.known_row_keys(&["row-0-0".into()]).await.unwrap(), [false]);
    writer.insert_trees(batch(0)).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(store.count_trees().await.unwrap(), 1 + BATCH as u64);
}

async fn kill_around_commit(fx: Arc<Fixture>) {
    let dir = tempfile::tempdir().unwrap();
    let location = fx.location();
    let store = fx.open().await;
    store.import(ImportBatch { orchards: vec![orchard("DL-001")], ..Default::default() }).await.unwrap();
    drop(store);
    let total = (BATCH * BATCHES_BEFORE_COMMIT) as u64;

    let marker = dir.path().join("marker");
    let mut child = spawn_child(&location, &marker, true);
    wait_for(&marker, &mut child);
    std::thread::sleep(jitter(40));
    child.kill().unwrap();
    child.wait().unwrap();
    let committed = std::fs::read_to_string(&marker).unwrap() == "committed";

    let store = fx.open().await;
    // A PostgreSQL server finishes a COMMIT it has received even when the client
    // is killed meanwhile, so the outcome may land just after the kill: read
    // until the backend of the killed process is done (all of it or none of it
    // visible, as one), at most 5 s. SQLite's outcome is settled at once.
    let (mut count, mut prior, mut changes);
    let mut tries = 0;
    loop {
        count = store.count_trees().await.unwrap();
        prior = store.find_import(&meta().file_sha256).await.unwrap();
        changes = store.changes_since(0, u32::MAX).await.unwrap();
        let settled = (count == 0 && prior.is_none() && changes.is_empty())
            || (count == total && prior.is_some() && changes.len() as u64 == total);
        tries += 1;
        if settled || tries >= 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if count == 0 {
        assert!(!committed, "the child saw its commit succeed, yet nothing is stored");
        assert!(prior.is_none() && changes.is_empty());
    } else {
        // All of it: every tree, the file record and one change per tree.
        assert_eq!(count, total);
        assert!(prior.is_some());
        assert_eq!(changes.len() as u64, total);
        let ids: std::collections::HashSet<TreeId> = changes.iter().map(|c| c.tree_id).collect();
        assert_eq!(ids.len() as u64, total);
    }
    eprintln!("killed around the commit: {}", if count == 0 { "nothing stored" } else { "all stored" });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_9_mid_import() {
    with_fixture(Kind::Sqlite, "sqlite_kill_9_mid_import", kill_mid_import).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_mid_import() {
    with_fixture(Kind::Postgres, "postgres_kill_9_mid_import", kill_mid_import).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_9_around_commit() {
    with_fixture(Kind::Sqlite, "sqlite_kill_9_around_commit", kill_around_commit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_around_commit() {
    with_fixture(Kind::Postgres, "postgres_kill_9_around_commit", kill_around_commit).await;
}
