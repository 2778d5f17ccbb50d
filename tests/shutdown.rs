//! Graceful shutdown of `orchardmap serve`, end to end: SIGTERM closes the listener, lets the
//! requests in flight finish within `--shutdown-timeout`, cuts short (and rolls back) an import
//! that outlasts it, and the process exits 0 within a bound.
//!
//! Each scenario runs on SQLite, and on a fresh PostgreSQL database when `TEST_DATABASE_URL`
//! names a server. No timing assertion but the exit bound (the timeout plus 10 s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{BIN, PgDatabase, text};

/// Where a scenario keeps its data.
enum Backend {
    Sqlite(PathBuf),
    Postgres(PgDatabase),
}

impl Backend {
    fn location(&self) -> String {
        match self {
            Backend::Sqlite(p) => p.display().to_string(),
            Backend::Postgres(db) => db.url.clone(),
        }
    }
}

/// A server started by a test, its stderr kept in a file (the log lines are checked).
struct Serving {
    child: Child,
    addr: SocketAddr,
    trees: u64,
    log: PathBuf,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    fn start(backend: &Backend, dir: &Path, name: &str, extra: &[&str]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--rate-limit", "0", "--db"]).arg(backend.location()).args(extra);
        cmd.arg("--keys").arg(dir.join("keys.json"));
        cmd.env("RUST_LOG", "info").stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("spawn orchardmap");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the serving line");
        let url = line.split_whitespace().find(|w| w.starts_with("http://"));
        let url = url.unwrap_or_else(|| panic!("no URL in {line:?}: {}", std::fs::read_to_string(&log).unwrap()));
        let addr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        let trees = line.split_whitespace().nth(2).and_then(|n| n.parse().ok()).unwrap();
        Serving { child, addr, trees, log }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `bound`.
    fn exit_within(&mut self, bound: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < bound, "still running {bound:?} after SIGTERM:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn admin_token(backend: &Backend) -> String {
    let out = Command::new(BIN)
        .args(["user", "add", "--name", "shutdown-test", "--role", "admin", "--db", &backend.location()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A survey of `rows` trees on a 11-m grid in an empty area (row `area` of 0.05° bands, south of
/// the sample), all in the sample's first orchard: every row is accepted.
fn survey(rows: usize, area: usize) -> Vec<u8> {
    let mut csv = String::from("lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at\n");
    for i in 0..rows {
        let lat = 11.0 + area as f64 * 0.05 + (i / 300) as f64 * 0.0001;
        let lon = 107.5 + (i % 300) as f64 * 0.0001;
        csv.push_str(&format!("{lat:.7},{lon:.7},3.0,Ri6,2020,good,DL-CK-EATIEU-001,2025-03-03T01:16:17Z\n"));
    }
    csv.into_bytes()
}

const BOUNDARY: &str = "shutdown-test-boundary";

/// `POST /api/imports` as a request head and a body (the body's last bytes may be held back).
fn import_request(token: &str, file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"survey.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let head = format!(
        "POST /api/imports HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    (head.into_bytes(), body)
}

/// Reads a response head: status and headers (lower-case names).
fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a response"));
    }
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, headers));
        }
        if let Some((name, value)) = l.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
}

/// Reads a response body (Content-Length or chunked).
fn read_body(reader: &mut BufReader<TcpStream>, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let mut body = Vec::new();
    if let Some(len) = header("content-length") {
        body.resize(len.parse().unwrap(), 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("chunk size: {e}")))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// A GET on a connection of its own: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let (mut stream, mut reader) = connect(addr);
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let (status, headers) = read_head(&mut reader).unwrap();
    (status, read_body(&mut reader, &headers).unwrap())
}

/// Scans of a tag code stored in the database (written every 2 s and at shutdown).
fn stored_scans(backend: &Backend, code: &str) -> i64 {
    let sql = format!("SELECT coalesce(sum(count), 0) FROM scans WHERE code = '{code}'");
    match backend {
        Backend::Sqlite(path) => rusqlite::Connection::open(path).unwrap().query_row(&sql, [], |r| r.get(0)).unwrap(),
        Backend::Postgres(db) => {
            let out = Command::new("psql").args([db.url.as_str(), "-Atc", &sql]).output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        }
    }
}

/// A request whose answer is read later: the connection and its reader.
fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

/// Sends an import's head and waits for `100 Continue`: the handler is then running.
fn start_import(addr: SocketAddr, head: &[u8]) -> (TcpStream, BufReader<TcpStream>) {
    let (mut stream, mut reader) = connect(addr);
    stream.write_all(head).unwrap();
    let (status, _) = read_head(&mut reader).unwrap();
    assert_eq!(status, 100, "the server did not ask for the body");
    (stream, reader)
}

/// Polls until the import's write transaction is open (its write lock is held): SQLite's
/// reserved lock, PostgreSQL's advisory lock. False if the import was answered first.
fn wait_for_write_lock(backend: &Backend, reader: &BufReader<TcpStream>) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if !reader.buffer().is_empty() || answered(reader.get_ref()) {
            return false;
        }
        let held = match backend {
            Backend::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(Duration::ZERO).unwrap();
                match conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
                    Ok(()) => false,
                    Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => true,
                    Err(e) => panic!("probing the write lock: {e}"),
                }
            }
            Backend::Postgres(db) => {
                let out = Command::new("psql")
                    .args([
                        db.url.as_str(),
                        "-Atc",
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    ])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", text(&out));
                String::from_utf8_lossy(&out.stdout).trim() != "0"
            }
        };
        if held {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the import's transaction did not start within 120 s");
}

/// Whether bytes of an answer are waiting on the connection.
fn answered(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let ready = !matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    ready
}

/// Trees in the database, counted by a fresh server on it (which also proves it opens).
fn trees_after_restart(backend: &Backend, dir: &Path) -> u64 {
    let mut server = Serving::start(backend, dir, "restart", &[]);
    let trees = server.trees;
    server.sigterm();
    assert!(server.exit_within(Duration::from_secs(40)).success(), "{}", server.log());
    trees
}

/// SQLite: the file is sound, and holds `trees` trees and no import of `sha256` unless `imported`.
fn check_sqlite(backend: &Backend, trees: u64, sha256: &str, imported: bool) {
    let Backend::Sqlite(path) = backend else { return };
    let conn = rusqlite::Connection::open(path).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let mut fk = conn.prepare("PRAGMA foreign_key_check").unwrap();
    assert_eq!(fk.query_map([], |_| Ok(())).unwrap().count(), 0, "foreign keys hold");
    let count: i64 = conn.query_row("SELECT count(*) FROM trees", [], |r| r.get(0)).unwrap();
    assert_eq!(count as u64, trees);
    let imports: i64 =
        conn.query_row("SELECT count(*) FROM imports WHERE file_sha256 = ?1", [sha256], |r| r.get(0)).unwrap();
    assert_eq!(imports, i64::from(imported));
}

fn sha256_hex(bytes: &[u8]) -> String {
    // The file identity the store records; computed by the binary's own report where it is
    // answered, here by the system tool to stay independent of the code under test.
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// (1) and (3): a slow export read by a slow client and an import whose upload is held back,
/// both started before SIGTERM, complete in full; the listener is closed meanwhile; exit 0.
fn in_flight_requests_finish(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(&backend);
    let mut server = Serving::start(&backend, dir.path(), "drain", &["--demo"]);
    let before = server.trees;

    // An export, its head read, its body not yet: the server cannot have finished it.
    let (mut export, mut export_reader) = connect(server.addr);
    export.write_all(b"GET /api/export?format=geojson HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let (status, export_headers) = read_head(&mut export_reader).unwrap();
    assert_eq!(status, 200);
    // An import, all but the last bytes of its upload sent: its handler waits for them.
    let file = survey(2_000, 0);
    let (head, body) = import_request(&token, &file);
    let (mut import, mut import_reader) = start_import(server.addr, &head);
    let (sent, held) = body.split_at(body.len() - 64);
    import.write_all(sent).unwrap();
    // A scan of a tree's tag, counted in memory: written at shutdown at the latest.
    let (status, tree) = get(server.addr, "/api/trees/1");
    assert_eq!(status, 200);
    let tree: Value = serde_json::from_slice(&tree).unwrap();
    let code = tree["properties"]["code"].as_str().unwrap().to_string();
    assert_eq!(get(server.addr, &format!("/t/{code}?lang=en")).0, 200);

    server.sigterm();
    // New connections are refused once the server has seen the signal.
    let start = Instant::now();
    loop {
        match TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            Err(e) => panic!("connecting after SIGTERM: {e}"),
            Ok(_) => {
                assert!(start.elapsed() < Duration::from_secs(30), "still accepting 30 s after SIGTERM");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    assert!(server.child.try_wait().unwrap().is_none(), "exited with the import still in flight");

    // The import completes: committed, and its report delivered.
    import.write_all(held).unwrap();
    let (status, headers) = read_head(&mut import_reader).unwrap();
    let report: Value = serde_json::from_slice(&read_body(&mut import_reader, &headers).unwrap()).unwrap();
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["inserted"], 2_000, "{report}");
    assert!(report["survey_id"].as_i64().is_some(), "{report}");
    // The export completes with every tree.
    let exported: Value = serde_json::from_slice(&read_body(&mut export_reader, &export_headers).unwrap()).unwrap();
    assert_eq!(exported["features"].as_array().unwrap().len() as u64, before);

    let status = server.exit_within(Duration::from_secs(30 + 10));
    let log = server.log();
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(log.contains("no longer accepting connections"), "{log}");
    assert!(log.contains("every request in flight finished"), "{log}");
    assert!(!log.contains("cut short"), "{log}");
    assert_eq!(stored_scans(&backend, &code), 1, "the scan is written at shutdown");

    let after = trees_after_restart(&backend, dir.path());
    assert_eq!(after, before + 2_000);
    check_sqlite(&backend, after, &sha256_hex(&file), true);
}

/// (2): an import still running when a short `--shutdown-timeout` ends is cut short: exit 0 within
/// the bound, and none of its rows, nor its survey, is in the database afterwards.
fn import_outlasting_the_timeout_is_rolled_back(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(&backend);
    let mut server = Serving::start(&backend, dir.path(), "cut", &["--demo", "--shutdown-timeout", "1"]);
    let before = server.trees;

    // Large enough that its transaction is open for seconds in a debug build.
    let file = survey(150_000, 1);
    let (head, body) = import_request(&token, &file);
    let (mut import, mut reader) = start_import(server.addr, &head);
    import.write_all(&body).unwrap();
    let mid_import = wait_for_write_lock(&backend, &reader);
    server.sigterm();

    let answer = read_head(&mut reader).and_then(|(status, headers)| Ok((status, read_body(&mut reader, &headers)?)));
    let status = server.exit_within(Duration::from_secs(1 + 10));
    let log = server.log();
    assert!(status.success(), "exit status {status}:\n{log}");
    let acknowledged = matches!(&answer, Ok((201, _)));
    if mid_import {
        // SIGTERM came with the transaction open, and the import needs far more than 1 s: it
        // was cut short, the client was told so (or the connection closed), nothing is kept.
        assert!(log.contains("cut short 1 request(s): POST /api/imports"), "{log}");
        assert!(log.contains("rolled back"), "{log}");
        match &answer {
            Ok((503, body)) => assert!(String::from_utf8_lossy(body).contains("shutting_down")),
            Ok((status, body)) => panic!("answered {status}: {}", String::from_utf8_lossy(body)),
            Err(_) => {} // closed before the 503 went out
        }
    } else {
        eprintln!("the import was answered before its transaction was seen open: nothing was cut short");
    }
    let after = trees_after_restart(&backend, dir.path());
    let expected = if acknowledged { before + 150_000 } else { before };
    assert_eq!(after, expected, "all of the import or none of it");
    check_sqlite(&backend, after, &sha256_hex(&file), acknowledged);
}

/// (3): an import whose transaction is open at SIGTERM but finishes within the timeout is
/// committed and its report delivered.
fn import_within_the_timeout_is_committed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token(&backend);
    let mut server = Serving::start(&backend, dir.path(), "finish", &["--demo", "--shutdown-timeout", "60"]);
    let before = server.trees;

    let file = survey(30_000, 2);
    let (head, body) = import_request(&token, &file);
    let (mut import, mut reader) = start_import(server.addr, &head);
    import.write_all(&body).unwrap();
    wait_for_write_lock(&backend, &reader);
    server.sigterm();

    let (status, headers) = read_head(&mut reader).unwrap();
    let report: Value = serde_json::from_slice(&read_body(&mut reader, &headers).unwrap()).unwrap();
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["inserted"], 30_000, "{report}");
    let status = server.exit_within(Duration::from_secs(60 + 10));
    let log = server.log();
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(!log.contains("cut short"), "{log}");

    let after = trees_after_restart(&backend, dir.path());
    assert_eq!(after, before + 30_000);
    check_sqlite(&backend, after, &sha256_hex(&file), true);
}

fn sqlite(dir: &tempfile::TempDir) -> Backend {
    Backend::Sqlite(dir.path().join("shutdown.db"))
}

#[test]
fn sqlite_sigterm_lets_in_flight_requests_finish_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    in_flight_requests_finish(sqlite(&dir));
}

#[test]
fn sqlite_sigterm_rolls_back_an_import_that_outlasts_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    import_outlasting_the_timeout_is_rolled_back(sqlite(&dir));
}

#[test]
fn sqlite_sigterm_commits_an_import_that_finishes_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    import_within_the_timeout_is_committed(sqlite(&dir));
}

#[test]
fn postgres_sigterm_lets_in_flight_requests_finish_and_refuses_new_connections() {
    if let Some(db) = PgDatabase::create("sd_drain") {
        in_flight_requests_finish(Backend::Postgres(db));
    }
}

#[test]
fn postgres_sigterm_rolls_back_an_import_that_outlasts_the_timeout() {
    if let Some(db) = PgDatabase::create("sd_cut") {
        import_outlasting_the_timeout_is_rolled_back(Backend::Postgres(db));
    }
}

#[test]
fn postgres_sigterm_commits_an_import_that_finishes_within_the_timeout() {
    if let Some(db) = PgDatabase::create("sd_finish") {
        import_within_the_timeout_is_committed(Backend::Postgres(db));
    }
}
