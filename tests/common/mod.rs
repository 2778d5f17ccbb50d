//! What the end-to-end tests share: the built binary, a server on port 0, HTTP helpers, and fresh
//! PostgreSQL databases.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_orchardmap");

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Where the keys of a PostgreSQL-backed server live when the test named none (never the working directory).
    _keys: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `orchardmap serve` on a free port with the database `db` (a SQLite path or a postgres:// URL) and
/// `extra` flags; returns once it says where it listens.
pub fn start_with(db: impl AsRef<OsStr>, demo: bool, extra: &[&str]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--db"]).arg(&db).args(extra).env("RUST_LOG", "warn");
    let on_postgres = db.as_ref().to_string_lossy().starts_with("postgres");
    let keys = (on_postgres && !extra.contains(&"--keys")).then(|| tempfile::tempdir().unwrap());
    if let Some(dir) = &keys {
        cmd.arg("--keys").arg(dir.path().join("keys.json"));
    }
    if demo {
        cmd.arg("--demo");
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn orchardmap");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the serving line");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    Server { child, base, _keys: keys }
}

/// GET as JSON.
pub async fn get(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.expect("JSON body");
    (status, body)
}

/// Uploads `bytes` as the survey file `file_name` to `POST /api/imports` with `token`; the JSON answer.
pub async fn post_import(base: &str, token: &str, file_name: &str, bytes: Vec<u8>) -> Value {
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()));
    reqwest::Client::new()
        .post(format!("{base}/api/imports"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON body")
}

pub fn features(v: &Value) -> &Vec<Value> {
    v["features"].as_array().expect("features array")
}

/// A command's stdout and stderr, for messages.
pub fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A new, empty database on the PostgreSQL server named by `TEST_DATABASE_URL`, dropped (with any
/// connections left) when this goes out of scope. `None` when the variable is unset.
pub struct PgDatabase {
    admin: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl PgDatabase {
    pub fn create(tag: &str) -> Option<Self> {
        let admin = std::env::var("TEST_DATABASE_URL").ok()?;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("om_e2e_{tag}_{}_{n}", std::process::id());
        let (server, _) = admin.rsplit_once('/').expect("TEST_DATABASE_URL ends in /DATABASE");
        let url = format!("{server}/{name}");
        let db = Self { admin, name, url };
        db.psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name));
        db.psql(&format!("CREATE DATABASE {}", db.name));
        Some(db)
    }

    fn psql(&self, sql: &str) {
        let out = Command::new("psql").args([self.admin.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]).output();
        let out = out.expect("run psql");
        assert!(out.status.success(), "psql {sql}: {}", text(&out));
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([self.admin.as_str(), "-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

/// A test's database: a SQLite file in `dir`, or, with `E2E_BACKEND=postgres` (and
/// `TEST_DATABASE_URL`), a fresh PostgreSQL database dropped at the end.
pub enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(PgDatabase, std::ffi::OsString),
}

impl Db {
    pub fn new(dir: &std::path::Path, name: &str) -> Self {
        if std::env::var("E2E_BACKEND").is_ok_and(|b| b == "postgres") {
            let db = PgDatabase::create(name).expect("E2E_BACKEND=postgres needs TEST_DATABASE_URL");
            let url = std::ffi::OsString::from(&db.url);
            Db::Postgres(db, url)
        } else {
            Db::Sqlite(dir.join(format!("{name}.db")))
        }
    }

    /// What `--db` and `store::open` take.
    pub fn location(&self) -> String {
        match self {
            Db::Sqlite(p) => p.display().to_string(),
            Db::Postgres(db, _) => db.url.clone(),
        }
    }
}

impl AsRef<OsStr> for Db {
    fn as_ref(&self) -> &OsStr {
        match self {
            Db::Sqlite(p) => p.as_os_str(),
            Db::Postgres(_, url) => url,
        }
    }
}
