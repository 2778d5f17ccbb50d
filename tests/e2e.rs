//! End-to-end tests: the real `orchardmap` binary on port 0 against a temporary SQLite file.
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{BIN, Db, features, get, text};

fn start(db: impl AsRef<std::ffi::OsStr>, demo: bool) -> common::Server {
    common::start_with(db, demo, &[])
}

#[tokio::test]
async fn demo_serves_the_sample_and_answers_spatial_questions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(dir.path(), "demo");
    let server = start(&db, true);
    let base = &server.base;

    let (status, health) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    let count = health["trees"].as_u64().unwrap();
    assert!((9_000..=11_000).contains(&count), "{count} trees");

    // A tree by id, then the same tree by its tag code.
    let (status, tree) = get(&format!("{base}/api/trees/1")).await;
    assert_eq!(status, 200);
    assert_eq!(tree["type"], "Feature");
    assert_eq!(tree["geometry"]["type"], "Point");
    let code = tree["properties"]["code"].as_str().unwrap().to_string();
    let lon = tree["geometry"]["coordinates"][0].as_f64().unwrap();
    let lat = tree["geometry"]["coordinates"][1].as_f64().unwrap();
    assert!((107.0..110.0).contains(&lon) && (11.0..14.0).contains(&lat), "GeoJSON order is [lon, lat]");
    let (_, by_code) = get(&format!("{base}/api/trees/{}", code.to_lowercase())).await;
    assert_eq!(by_code["id"], tree["id"]);

    // The nearest tree to a tree's own position is that tree, at distance 0; then sorted.
    let (status, near) = get(&format!("{base}/api/trees/nearest?lon={lon}&lat={lat}&k=5")).await;
    assert_eq!(status, 200);
    let near = features(&near);
    assert_eq!(near.len(), 5);
    assert_eq!(near[0]["id"], tree["id"]);
    let d: Vec<f64> = near.iter().map(|f| f["properties"]["distance_m"].as_f64().unwrap()).collect();
    assert_eq!(d[0], 0.0);
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");
    assert!(d[1] > 3.0 && d[1] < 15.0, "planting grid 8-10 m with GPS noise, got {}", d[1]);

    // Everything within the 4th neighbour's distance is exactly the first 4 or more.
    let (_, within) = get(&format!("{base}/api/trees/within?lon={lon}&lat={lat}&radius_m={}", d[3] + 0.001)).await;
    let within = features(&within);
    assert!(within.len() >= 4);
    assert!(within.iter().all(|f| f["properties"]["distance_m"].as_f64().unwrap() <= d[3] + 0.001));

    // Paging through a bbox visits every matched tree exactly once.
    let bbox = format!("{},{},{},{}", lon - 0.003, lat - 0.003, lon + 0.003, lat + 0.003);
    let mut url = format!("{base}/api/trees?bbox={bbox}&limit=50");
    let mut seen = std::collections::HashSet::new();
    let mut matched = None;
    for _ in 0..1000 {
        let (status, page) = get(&url).await;
        assert_eq!(status, 200);
        matched = page["numberMatched"].as_u64();
        for f in features(&page) {
            assert!(seen.insert(f["id"].as_i64().unwrap()), "tree served twice");
        }
        match page["links"].as_array().and_then(|l| l.iter().find(|l| l["rel"] == "next")) {
            Some(next) => url = format!("{base}{}", next["href"].as_str().unwrap()),
            None => break,
        }
    }
    assert!(seen.len() > 50, "bbox should span several pages");
    assert_eq!(Some(seen.len() as u64), matched);

    // The orchard, with its boundary and a tree count matching the trees that name it.
    let orchard_id = tree["properties"]["orchard"].as_str().unwrap();
    let (status, orchard) = get(&format!("{base}/api/orchards/{orchard_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(orchard["geometry"]["type"], "Polygon");
    assert!(orchard["properties"]["tree_count"].as_u64().unwrap() > 10);
}

#[tokio::test]
async fn bad_requests_get_json_errors_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(dir.path(), "errors");
    let server = start(&db, true);
    let base = &server.base;
    let cases = [
        ("/api/trees?bbox=1,2,3", 400, "bbox"),
        ("/api/trees?bbox=108,12,107,13", 400, "bbox"),
        ("/api/trees?health=sick", 400, "health"),
        ("/api/trees?radius_m=5", 400, "radius_m"),
        ("/api/trees/nearest?lon=108&lat=95&k=3", 400, "lat"),
        ("/api/trees/nearest?lon=108&lat=12&k=0", 400, "k"),
        ("/api/trees/nearest?lon=108&lat=12&k=100000", 400, "k"),
        ("/api/trees/nearest?lon=abc&lat=12", 400, "lon"),
        ("/api/trees/within?lon=108&lat=12&radius_m=-5", 400, "radius_m"),
        ("/api/trees?bbox=107,12,109,13&cursor=zz", 400, "cursor"),
        ("/api/trees/999999999", 404, "999999999"),
        ("/api/trees/not-a-code", 404, "not-a-code"),
        ("/api/orchards/NO-SUCH-ORCHARD", 404, "NO-SUCH-ORCHARD"),
        ("/api/orchards/..%2F..%2Fetc", 404, "etc"),
    ];
    for (path, status, named) in cases {
        let (got, body) = get(&format!("{base}{path}")).await;
        assert_eq!(got, status, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{path}: message {message:?} should name {named}");
        assert!(body["error"]["code"].is_string(), "{path}");
    }
}

#[tokio::test]
async fn a_running_server_sees_trees_imported_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(dir.path(), "follow");
    let server = start(&db, true);
    let base = &server.base;
    let (_, before) = get(&format!("{base}/healthz")).await;
    let before = before["trees"].as_u64().unwrap();

    // A tree in an existing orchard, placed well away from its neighbours.
    let (_, tree) = get(&format!("{base}/api/trees/1")).await;
    let orchard = tree["properties"]["orchard"].as_str().unwrap();
    let lon = tree["geometry"]["coordinates"][0].as_f64().unwrap() + 0.0002;
    let lat = tree["geometry"]["coordinates"][1].as_f64().unwrap() + 0.0002;
    let csv = dir.path().join("new.csv");
    std::fs::write(
        &csv,
        format!(
            "lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at\n\
             {lat:.7},{lon:.7},3.0,Ri6,2024,good,{orchard},2025-06-01T08:00:00Z\n"
        ),
    )
    .unwrap();
    let status =
        Command::new(BIN).arg("import").arg(&csv).arg("--db").arg(&db).env("RUST_LOG", "warn").status().unwrap();
    assert!(status.success());

    let written = Instant::now();
    loop {
        let (_, near) = get(&format!("{base}/api/trees/nearest?lon={lon}&lat={lat}&k=1")).await;
        let hit =
            features(&near).first().map(|f| f["properties"]["distance_m"].as_f64().unwrap() < 0.01).unwrap_or(false);
        if hit {
            break;
        }
        assert!(written.elapsed() < Duration::from_secs(2), "tree not visible 2 s after the import");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, after) = get(&format!("{base}/healthz")).await;
    assert_eq!(after["trees"].as_u64().unwrap(), before + 1);
}

#[test]
fn a_file_that_is_not_a_database_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.db");
    std::fs::write(&bogus, "these are field notes, not a database\n".repeat(200)).unwrap();
    let out = Command::new(BIN).args(["serve", "--bind", "127.0.0.1:0", "--db"]).arg(&bogus).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notes.db"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn import_reports_rejected_rows_with_line_field_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(dir.path(), "import");
    let orchards = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/orchards.geojson");
    let out = Command::new(BIN).arg("import").arg(&orchards).arg("--db").arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first_orchard: Value = serde_json::from_str(&std::fs::read_to_string(&orchards).unwrap()).unwrap();
    let orchard = first_orchard["features"][0]["properties"]["id"].as_str().unwrap().to_string();

    let csv = dir.path().join("survey.csv");
    std::fs::write(
        &csv,
        format!(
            "lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at\n\
             12.6800000,108.0500000,3.0,Ri6,2019,good,{orchard},2025-06-01T08:00:00Z\n\
             1270.5,108.0500100,3.0,Ri6,2019,good,{orchard},2025-06-01T08:00:00Z\n\
             12.6801000,108.0500000,3.0,Ri6,2019,splendid,{orchard},2025-06-01T08:00:00Z\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN).arg("import").arg(&csv).arg("--db").arg(&db).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "some rows rejected");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("survey.csv line 3") && report.contains("1270.5"), "{report}");
    assert!(report.contains("survey.csv line 4") && report.contains("splendid"), "{report}");

    // A tree naming an orchard that does not exist is rejected with its line; nothing is written.
    std::fs::write(
        &csv,
        "lat,lon,accuracy_m,cultivar,planted_year,health,orchard,surveyed_at\n\
         12.6802000,108.0500000,3.0,Ri6,2019,good,NO-SUCH-ORCHARD,2025-06-01T08:00:00Z\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("import").arg(&csv).arg("--db").arg(&db).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("survey.csv line 2: orchard NO-SUCH-ORCHARD"), "{report}");
    assert!(report.contains("inserted 0"), "{report}");

    // A file that is not a CSV of trees at all: a file-level error naming it, exit 1.
    std::fs::write(&csv, "name,colour\nfoo,bar\n").unwrap();
    let out = Command::new(BIN).arg("import").arg(&csv).arg("--db").arg(&db).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("survey.csv") && stderr.contains("lat"), "{stderr}");
}

fn sample(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

fn import(db: impl AsRef<std::ffi::OsStr>, file: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("import")
        .arg(file)
        .arg("--db")
        .arg(db)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run orchardmap import")
}

/// A database holding the sample orchards (boundaries) and no trees.
fn orchards_only(dir: &Path) -> Db {
    let db = Db::new(dir, "survey");
    let out = import(&db, &sample("orchards.geojson"), &[]);
    assert!(out.status.success(), "{}", text(&out));
    db
}

async fn tree_count(db: &Db) -> u64 {
    let store = store::open(&db.location()).await.unwrap();
    store.count_trees().await.unwrap()
}

/// The sample's rows, moved `copies` times by about 1.1 km so no copy
/// duplicates another or the sample; each copy keeps its orchard column.
fn big_csv(path: &Path, copies: usize) -> usize {
    let sample = std::fs::read_to_string(sample("trees.csv")).unwrap();
    let mut lines = sample.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let mut out = String::with_capacity(sample.len() * copies);
    out.push_str(header);
    out.push('\n');
    for copy in 0..copies {
        for row in &rows {
            let (lat, rest) = row.split_once(',').unwrap();
            let lat: f64 = lat.parse().unwrap();
            out.push_str(&format!("{:.7},{rest}\n", lat + 0.01 * (copy + 1) as f64));
        }
    }
    std::fs::write(path, out).unwrap();
    rows.len() * copies
}

#[tokio::test]
async fn a_second_import_of_the_same_file_adds_nothing_and_moved_rows_are_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = orchards_only(dir.path());
    let trees = sample("trees.csv");
    // The sample holds a few pairs of distinct trees less than 2 m apart (GPS noise).
    let out = import(&db, &trees, &["--allow-near"]);
    assert!(out.status.success(), "{}", text(&out));
    let count = tree_count(&db).await;
    assert!(count > 9_000, "{count}");

    let again = import(&db, &trees, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already imported as survey"), "{}", text(&again));
    assert_eq!(tree_count(&db).await, count);

    // Other bytes, same trees half a metre away: every row is a probable duplicate.
    let moved = dir.path().join("moved.csv");
    let body = std::fs::read_to_string(&trees).unwrap();
    let mut lines = body.lines();
    let mut shifted = format!("{}\n", lines.next().unwrap());
    for row in lines {
        let (lat, rest) = row.split_once(',').unwrap();
        shifted.push_str(&format!("{:.7},{rest}\n", lat.parse::<f64>().unwrap() + 0.000_004_5));
    }
    std::fs::write(&moved, shifted).unwrap();
    let report_path = dir.path().join("report.json");
    let out = import(&db, &moved, &["--report", report_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["read"].as_u64().unwrap(), count);
    assert_eq!(report["duplicates"].as_u64().unwrap(), count, "{}", text(&out));
    assert_eq!(report["inserted"].as_u64().unwrap(), 0);
    assert_eq!(tree_count(&db).await, count);
    let reason = report["problems"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("probable duplicate of stored tree") && reason.contains("0.5 m"), "{reason}");
}

#[tokio::test]
async fn rejected_rows_go_to_a_reject_file_in_the_input_format_and_import_again_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let db = orchards_only(dir.path());
    let orchards: Value = serde_json::from_str(&std::fs::read_to_string(sample("orchards.geojson")).unwrap()).unwrap();
    let orchard = orchards["features"][0]["properties"]["id"].as_str().unwrap().to_string();
    let csv = dir.path().join("khảo sát.csv");
    std::fs::write(
        &csv,
        format!(
            "\u{feff}lat;lon;accuracy_m;cultivar;planted_year;health;orchard;surveyed_at\r\n\
             12.6800000;108.0500000;3.0;Ri6;2019;good;{orchard};2025-06-01T08:00:00Z\r\n\
             95.1;108.0500300;3.0;Ri6;2019;good;{orchard};2025-06-01T08:00:00Z\r\n\
             12.6803000;108.0500000;3.0;Monthong;2090;good;{orchard};2025-06-01T08:00:00Z\r\n"
        ),
    )
    .unwrap();
    let out = import(&db, &csv, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(tree_count(&db).await, 1);
    let rejects = dir.path().join("khảo sát.rejected.csv");
    let written =
        std::fs::read_to_string(&rejects).unwrap_or_else(|e| panic!("{}: {e}\n{}", rejects.display(), text(&out)));
    let mut lines = written.lines();
    let header = lines.next().unwrap();
    assert!(header.contains(';') && header.ends_with("error"), "{header}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{written}");
    assert!(rows[0].starts_with("95.1;") && rows[0].contains("lat"), "{}", rows[0]);
    assert!(rows[1].contains("2090") && rows[1].contains("planted_year"), "{}", rows[1]);

    // The volunteer fixes the two rows in the reject file and imports it: both go in.
    let fixed = written.replace("95.1;108.0500300", "12.6806000;108.0500300").replace(";2090;", ";2020;");
    let fixed_path = dir.path().join("fixed.csv");
    std::fs::write(&fixed_path, fixed).unwrap();
    let out = import(&db, &fixed_path, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tree_count(&db).await, 3);
}

#[tokio::test]
async fn dry_run_shows_mapping_and_preview_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = orchards_only(dir.path());
    let out = import(&db, &sample("trees.csv"), &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("mapping:") && shown.contains("lat <- lat"), "{shown}");
    assert!(shown.contains("preview:") && shown.contains("insert"), "{shown}");
    assert!(shown.contains("dry run"), "{shown}");
    assert_eq!(tree_count(&db).await, 0);
    assert!(!dir.path().join("trees.rejected.csv").exists());
}

#[tokio::test]
async fn killing_an_import_at_any_moment_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = orchards_only(dir.path());
    let small = import(&db, &sample("trees.csv"), &["--allow-near"]);
    assert!(small.status.success(), "{}", text(&small));
    let before = tree_count(&db).await;
    let big = dir.path().join("big.csv");
    let rows = big_csv(&big, 30);

    for delay_ms in [50u64, 300, 800, 1500] {
        let mut child = Command::new(BIN)
            .arg("import")
            .arg(&big)
            .arg("--db")
            .arg(&db)
            .arg("--allow-near")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SIGKILL: no destructor, no rollback by the process itself.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        if status.success() {
            break; // this machine imported it all before the kill; the others still count
        }
        assert_eq!(tree_count(&db).await, before, "after a kill at {delay_ms} ms");
    }
    // The database is intact and takes the whole file afterwards.
    let out = import(&db, &big, &["--allow-near"]);
    assert!(out.status.success(), "{}", text(&out));
    let after = tree_count(&db).await;
    assert!(after == before + rows as u64 || after == before, "{after}");
    let store = store::open(&db.location()).await.unwrap();
    assert_eq!(store.count_trees().await.unwrap(), after);
}

#[tokio::test]
async fn imports_over_http_return_the_report_and_show_the_trees_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = orchards_only(dir.path());
    // An account made on the command line; its token is the only line on stdout.
    let out = Command::new(BIN)
        .args(["user", "add", "--name", "Trần Thị B", "--role", "volunteer", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("om_"), "{token}");
    let listed = Command::new(BIN).args(["user", "list", "--db"]).arg(&db).output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("Trần Thị B") && listed.contains("volunteer") && !listed.contains(&token), "{listed}");
    let server = start(&db, false);
    let base = &server.base;
    let csv = std::fs::read(sample("trees.csv")).unwrap();
    let form = reqwest::multipart::Form::new()
        .text("surveyor", "Trần Thị B")
        .text("nearby_radius_m", "4")
        .part("file", reqwest::multipart::Part::bytes(csv.clone()).file_name("trees.csv"));
    let anonymous = reqwest::Client::new()
        .post(format!("{base}/api/imports"))
        .multipart(reqwest::multipart::Form::new().text("surveyor", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/imports"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let report: Value = resp.json().await.unwrap();
    let inserted = report["inserted"].as_u64().unwrap();
    assert!(inserted > 9_000, "{report}");
    assert_eq!(report["format"], "csv");
    let (_, health) = get(&format!("{base}/healthz")).await;
    assert_eq!(health["trees"].as_u64().unwrap(), inserted, "visible as soon as the answer arrives");

    // Same file again: nothing added; a bad option: 400 naming it; no file: 400.
    let again = common::post_import(base, &token, "trees.csv", csv).await;
    assert!(again["already_imported"]["survey_id"].is_number(), "{again}");
    let form = reqwest::multipart::Form::new().text("nearby_radius_m", "far").text("x", "y");
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/imports"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("nearby_radius_m"), "{body}");
}

#[tokio::test]
async fn an_offline_pack_from_the_command_line_holds_the_served_tiles() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(dir.path(), "pack");
    let server = start(&db, true);
    let (_, one) = get(&format!("{}/api/trees?limit=1", server.base)).await;
    let at = &features(&one)[0]["geometry"]["coordinates"];
    let (lon, lat) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
    let bbox = format!("{},{},{},{}", lon - 0.005, lat - 0.005, lon + 0.005, lat + 0.005);
    let out = dir.path().join("area.pmtiles");
    let status = Command::new(BIN)
        .args(["tiles", "pack", "--minzoom", "14", "--maxzoom", "17", "--bbox", &bbox, "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&out).unwrap();
    let archive = tiles::pmtiles::PmtilesReader::new(&bytes).unwrap();
    let mut compared = 0;
    for entry in archive.tiles() {
        let (tile, gz) = entry.unwrap();
        let mut packed = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut packed).unwrap();
        let url = format!("{}/tiles/trees/{}/{}/{}.mvt", server.base, tile.z(), tile.x(), tile.y());
        let live = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        assert_eq!(packed, live.to_vec(), "{url}");
        compared += 1;
    }
    assert!(compared >= 4, "{compared} tiles");
    // A pack too large for one archive is refused, naming the limit.
    let refused = Command::new(BIN)
        .args(["tiles", "pack", "--minzoom", "0", "--maxzoom", "20", "--bbox", "100,10,110,20", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(dir.path().join("big.pmtiles"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("tiles, more than"));
    assert!(!dir.path().join("big.pmtiles").exists());
}

fn run(args: &[&str], db: &Path) -> std::process::Output {
    Command::new(BIN).args(args).arg("--db").arg(db).env("RUST_LOG", "warn").output().expect("run orchardmap")
}

/// The signed link a tree's tag holds, as the running server prints it.
async fn served_tag_url(base: &str, code: &str) -> String {
    let resp = reqwest::get(format!("{base}/api/trees/{code}/qr.svg")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.headers()["x-qr-content"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn labels_tags_and_offline_verification_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let server = start(&db, true);
    let keys = dir.path().join("demo.db.keys.json");
    assert!(keys.exists(), "the key file is created beside the database");
    let (_, orchards) = get(&format!("{}/api/orchards", server.base)).await;
    let orchard = features(&orchards)[0]["properties"]["id"].as_str().unwrap().to_string();
    let (_, trees) = get(&format!("{}/api/trees?orchard={orchard}&limit=1000", server.base)).await;
    let codes: Vec<String> =
        features(&trees).iter().map(|f| f["properties"]["code"].as_str().unwrap().to_string()).collect();
    assert!(!codes.is_empty());

    // Tag sheets of the orchard, PDF and SVG, with the public base URL.
    for format in ["pdf", "svg"] {
        let out = dir.path().join(format!("tags.{format}"));
        let args = ["labels", "--orchard", &orchard, "--format", format, "--public-url", "https://om.example"];
        let o = Command::new(BIN).args(args).arg("--out").arg(&out).arg("--db").arg(&db).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let bytes = std::fs::read(&out).unwrap();
        if format == "pdf" {
            assert!(bytes.starts_with(b"%PDF-"));
        } else {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(codes.iter().all(|c| svg.contains(c.as_str())), "every tree's code is on the sheet");
        }
    }
    let o = run(&["labels", "--orchard", "NO-SUCH", "--out", "x.pdf", "--public-url", "https://om.example"], &db);
    assert!(!o.status.success() && text(&o).contains("NO-SUCH"), "{}", text(&o));

    // Pre-printed tags: a batch of 5, each opening the registration page.
    let sheet = dir.path().join("batch.svg");
    let o = Command::new(BIN)
        .args(["tags", "issue", "--count", "5", "--format", "svg", "--public-url", "https://om.example", "--out"])
        .arg(&sheet)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let svg = std::fs::read_to_string(&sheet).unwrap();
    let issued = String::from_utf8_lossy(&o.stdout).to_string();
    let first = issued.split('(').nth(1).unwrap().split(' ').next().unwrap().to_string();
    assert!(svg.contains(&first), "{issued}");
    let page = reqwest::get(format!("{}/t/{first}?lang=en", server.base)).await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("/api/tags/{first}/register")));

    // Offline verification: genuine, tampered, with the local keys or a saved JWKS.
    let url = served_tag_url(&server.base, &codes[0]).await;
    let o = Command::new(BIN).args(["verify", &url, "--db"]).arg(&db).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("genuine"));
    let other = served_tag_url(&server.base, &codes[1]).await;
    let forged = format!("{}?8030={}", url.split('?').next().unwrap(), other.split("8030=").nth(1).unwrap());
    let o = Command::new(BIN).args(["verify", &forged, "--db"]).arg(&db).output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let unsigned = url.split('?').next().unwrap().to_string();
    assert_eq!(Command::new(BIN).args(["verify", &unsigned, "--db"]).arg(&db).output().unwrap().status.code(), Some(3));
    let jwks = dir.path().join("jwks.json");
    let served = reqwest::get(format!("{}/.well-known/jwks.json", server.base)).await.unwrap().text().await.unwrap();
    std::fs::write(&jwks, &served).unwrap();
    let o = Command::new(BIN).args(["verify", &url, "--jwks"]).arg(&jwks).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Rotation: the server signs with the new key within seconds; old labels stay genuine.
    let old_kid: Value = serde_json::from_str(&served).unwrap();
    let old_kid = old_kid["keys"][0]["kid"].as_str().unwrap().to_string();
    let o = run(&["keys", "rotate"], &db);
    assert!(o.status.success(), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(10);
    let new_url = loop {
        let u = served_tag_url(&server.base, &codes[0]).await;
        if u != url {
            break u;
        }
        assert!(Instant::now() < deadline, "the server did not pick up the rotated key");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for u in [&url, &new_url] {
        let o = Command::new(BIN).args(["verify", u, "--db"]).arg(&db).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    // Revoking the old key: its labels are reported revoked, offline and on the page.
    let o = run(&["keys", "revoke", &old_kid], &db);
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new(BIN).args(["verify", &url, "--db"]).arg(&db).output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let path = url.split_once("//").unwrap().1.split_once('/').unwrap().1;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = reqwest::get(format!("{}/{path}&lang=en", server.base)).await.unwrap().text().await.unwrap();
        if page.contains("class=\"banner revoked\"") {
            break;
        }
        assert!(Instant::now() < deadline, "the page does not say revoked");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
