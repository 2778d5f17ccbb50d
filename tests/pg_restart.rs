//! PostgreSQL restarted under load: a private PostgreSQL cluster (initdb in a temporary folder,
//! run as the `postgres` system user on a free port) is stopped and started again while clients
//! read and write. Reads keep being answered from memory, `/readyz` says 503 while the database is
//! away, writes answer 503 (never 500) and succeed when retried, no write is applied twice, and
//! the server follows the database again without a restart. Runs where the PostgreSQL server
//! programs are installed and the test runs as root (CI); skipped elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{BIN, get, start_with, text};
use serde_json::json;

/// The PostgreSQL server programs (`/usr/lib/postgresql/<version>/bin`), if installed.
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path()).collect();
    versions.sort();
    versions.into_iter().rev().map(|v| v.join("bin")).find(|b| b.join("initdb").exists())
}

/// A private cluster, stopped and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    Command::new("runuser").args(["-u", "postgres", "--"]).arg(program).args(args).output().expect("runuser")
}

impl Cluster {
    fn start() -> Option<Self> {
        let bin = pg_bin()?;
        if !nix_root() {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("om-pg-").tempdir_in("/tmp").unwrap();
        let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
        assert!(chown.success());
        let data = dir.path().join("data");
        let o = as_postgres(&bin.join("initdb"), &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres"]);
        assert!(o.status.success(), "initdb: {}", text(&o));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = Self { bin, dir, port };
        c.pg_ctl("start");
        Some(c)
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let o = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &options, "-m", "fast", "-w", action],
        );
        assert!(o.status.success(), "pg_ctl {action}: {}", text(&o));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(&self.bin.join("pg_ctl"), &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"]);
    }
}

fn nix_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_loses_nothing_and_needs_no_server_restart() {
    let Some(cluster) = Cluster::start() else {
        eprintln!("no PostgreSQL server programs or not root: restart test skipped");
        return;
    };
    let url = cluster.url();
    let keys = cluster.dir.path().join("keys.json");
    let server = start_with(&url, true, &["--rate-limit", "0", "--keys", keys.to_str().unwrap()]);
    let out = Command::new(BIN).args(["user", "add", "--name", "w", "--role", "admin", "--db", &url]).output().unwrap();
    let token =
        String::from_utf8_lossy(&out.stdout).split_whitespace().find(|w| w.starts_with("om_")).unwrap().to_string();
    let base = Arc::new(server.base.clone());
    let (_, health) = get(&format!("{base}/healthz")).await;
    let trees = health["trees"].as_u64().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (reads_ok, reads_bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut readers = Vec::new();
    for r in 0..4u64 {
        let (base, stop, ok, bad) = (base.clone(), stop.clone(), reads_ok.clone(), reads_bad.clone());
        readers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                i = (i * 7919 + 13) % trees + 1;
                let status = client.get(format!("{base}/api/trees/{i}")).send().await.map(|r| r.status().as_u16()).ok();
                let counter = if status == Some(200) { &ok } else { &bad };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // One writer: PATCHes tree 1's health again and again, retrying each write until it is acknowledged.
    let (acked, unavailable, other_errors) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writer = {
        let (base, stop, acked, unavailable, other) =
            (base.clone(), stop.clone(), acked.clone(), unavailable.clone(), other_errors.clone());
        let token = token.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut version = 1u64;
            while !stop.load(Ordering::Relaxed) {
                let n = acked.load(Ordering::Relaxed) + 1;
                let r = client
                    .patch(format!("{base}/api/trees/1"))
                    .bearer_auth(&token)
                    .header("if-match", format!("\"{version}\""))
                    .json(&json!({"health": if n % 2 == 0 { "good" } else { "fair" }}))
                    .send()
                    .await;
                match r.map(|r| r.status().as_u16()) {
                    Ok(200) => {
                        version += 1;
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(503) => {
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    status => {
                        eprintln!("write answered {status:?}");
                        other.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            version
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_stop = acked.load(Ordering::Relaxed);
    cluster.pg_ctl("stop");
    let down = Instant::now();
    // While the database is away: /readyz 503, reads still 200, writes 503.
    let (status, ready) = loop {
        let (s, r) = get(&format!("{base}/readyz")).await;
        if s == 503 || down.elapsed() > Duration::from_secs(10) {
            break (s, r);
        }
    };
    assert_eq!(status, 503, "{ready}");
    let reads_while_down = reads_ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(reads_ok.load(Ordering::Relaxed) > reads_while_down, "reads go on while the database is away");
    let failed_writes = unavailable.load(Ordering::Relaxed);
    assert!(
        failed_writes > 0,
        "writes were tried while the database was away: acked {}, other errors {}",
        acked.load(Ordering::Relaxed),
        other_errors.load(Ordering::Relaxed)
    );
    cluster.pg_ctl("start");
    let back = Instant::now();
    loop {
        let (s, _) = get(&format!("{base}/readyz")).await;
        if s == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(30), "/readyz not 200 30 s after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Writes succeed again without restarting the server.
    let resumed = acked.load(Ordering::Relaxed);
    let again = Instant::now();
    while acked.load(Ordering::Relaxed) < resumed + 3 {
        assert!(again.elapsed() < Duration::from_secs(30), "writes did not resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let last_version = writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    println!(
        "reads 200: {}, other: {}; writes acknowledged {} ({} before the stop), 503 while away: {}, other errors: {}",
        reads_ok.load(Ordering::Relaxed),
        reads_bad.load(Ordering::Relaxed),
        acked.load(Ordering::Relaxed),
        before_stop,
        unavailable.load(Ordering::Relaxed),
        other_errors.load(Ordering::Relaxed)
    );
    assert_eq!(reads_bad.load(Ordering::Relaxed), 0, "every read was answered");
    assert_eq!(other_errors.load(Ordering::Relaxed), 0, "no 500 and no lost connection to the server");
    // Every acknowledged write is in the database once: the version counts them exactly.
    let (_, tree) = get(&format!("{base}/api/trees/1")).await;
    assert_eq!(tree["properties"]["version"].as_u64(), Some(last_version));
    assert_eq!(last_version, acked.load(Ordering::Relaxed) + 1);
    let store = store::open(&url).await.unwrap();
    let stored = store.tree(geo_core::TreeId(1)).await.unwrap().unwrap();
    assert_eq!(stored.version as u64, last_version);
    assert_eq!(store.tree_history(geo_core::TreeId(1)).await.unwrap().len() as u64, last_version - 1);
    // The server follows the database again: a tree imported by another process appears.
    let (_, one) = get(&format!("{base}/api/trees/2")).await;
    let orchard = one["properties"]["orchard"].as_str().unwrap().to_string();
    let csv = cluster.dir.path().join("late.csv");
    std::fs::write(&csv, format!("lat,lon,cultivar,health,orchard\n12.9001,108.3001,Ri6,good,{orchard}\n")).unwrap();
    let o = Command::new(BIN).arg("import").arg(&csv).args(["--allow-near", "--db", &url]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let seen = Instant::now();
    loop {
        let (_, h) = get(&format!("{base}/healthz")).await;
        if h["trees"].as_u64() == Some(trees + 1) {
            break;
        }
        assert!(seen.elapsed() < Duration::from_secs(20), "the import after the restart never reached the server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
