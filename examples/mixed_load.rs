//! Mixed read/write load against a running `orchardmap serve`, then a check
//! that every acknowledged write is in the database and in the index.
//!
//! ```text
//! cargo run --release --example mixed_load -- --base http://127.0.0.1:8080 --token om_... \
//!     --db /tmp/orchardmap-1m.db --seconds 30 --connections 32 --write-percent 10 --max-id 1000000
//! ```
//!
//! `connections` tasks, each with its own client (one keep-alive connection),
//! loop until the deadline choosing operations with a seeded RNG: reads are
//! spread evenly over GET /api/trees/{id}, a small bbox search, nearest k=5 and
//! a filtered bbox search (health=good, cultivar=Ri6); writes PATCH the health
//! of a tree the task owns (id % connections == task index), with the version
//! from the tree's ETag in If-Match. Every request's latency is recorded.
//! Scripted by `scripts/mixed-load.sh`.
// A panic in an example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The synthetic database's square (store/examples/synthetic.rs): 100 km from (107.9, 12.3).
const LON: (f64, f64) = (107.9, 108.8);
const LAT: (f64, f64) = (12.3, 13.2);
const HEALTH_CYCLE: [&str; 3] = ["good", "fair", "poor"];

struct Args {
    base: String,
    token: String,
    db: String,
    seconds: u64,
    connections: u64,
    write_percent: u32,
    max_id: u64,
    /// Trees each task edits (drawn once from the ids it owns), so trees get several versions.
    write_set: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        base: "http://127.0.0.1:8080".into(),
        token: String::new(),
        db: String::new(),
        seconds: 30,
        connections: 32,
        write_percent: 10,
        max_id: 1_000_000,
        write_set: 1000,
        seed: 42,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--base" => a.base = value.trim_end_matches('/').to_string(),
            "--token" => a.token = value,
            "--db" => a.db = value,
            "--seconds" => a.seconds = num(&value)?,
            "--connections" => a.connections = num(&value)?.max(1),
            "--write-percent" => a.write_percent = num(&value)?.min(100) as u32,
            "--max-id" => a.max_id = num(&value)?.max(1),
            "--write-set" => a.write_set = num(&value)?.max(1) as usize,
            "--seed" => a.seed = num(&value)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.token.is_empty() || a.db.is_empty() {
        return Err("--token and --db are required".into());
    }
    Ok(a)
}

#[derive(Default)]
struct TaskResult {
    latencies_us: Vec<u32>,
    /// Latencies by kind, for the per-kind percentiles.
    kind_latencies_us: [Vec<u32>; 6],
    /// Requests slower than 20 ms, by second of the run they started in.
    slow_by_second: HashMap<u64, u64>,
    run_started: Option<Instant>,
    statuses: HashMap<u16, u64>,
    by_kind: [u64; 6],
    errors: Vec<String>,
    error_count: u64,
    /// id -> (version, health) of the last acknowledged write.
    acked: HashMap<i64, (i64, String)>,
    writes_acked: u64,
}

const KINDS: [&str; 6] = ["get", "bbox", "nearest", "filtered", "get-for-etag", "patch"];

impl TaskResult {
    fn latency(&mut self, kind: usize, started: Instant) {
        let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        self.latencies_us.push(us);
        self.kind_latencies_us[kind].push(us);
        if us > 20_000 {
            let second = self.run_started.map_or(0, |r| started.saturating_duration_since(r).as_secs());
            *self.slow_by_second.entry(second).or_default() += 1;
        }
    }
    fn record(&mut self, kind: usize, started: Instant, status: u16, what: &str) {
        self.latency(kind, started);
        *self.statuses.entry(status).or_default() += 1;
        self.by_kind[kind] += 1;
        if !(200..300).contains(&status) {
            self.error_count += 1;
            if self.errors.len() < 5 {
                self.errors.push(format!("{} {what}: {status}", KINDS[kind]));
            }
        }
    }
    fn transport_error(&mut self, kind: usize, started: Instant, what: &str, e: &reqwest::Error) {
        self.latency(kind, started);
        *self.statuses.entry(0).or_default() += 1;
        self.by_kind[kind] += 1;
        self.error_count += 1;
        if self.errors.len() < 5 {
            self.errors.push(format!("{} {what}: {e}", KINDS[kind]));
        }
    }
}

fn etag_version(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let raw = headers.get(reqwest::header::ETAG)?.to_str().ok()?;
    raw.trim_start_matches("W/").trim_matches('"').parse().ok()
}

fn props(body: &[u8]) -> Option<(i64, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let p = v.get("properties")?;
    Some((p.get("version")?.as_i64()?, p.get("health")?.as_str()?.to_string()))
}

fn next_health(current: &str) -> &'static str {
    let i = HEALTH_CYCLE.iter().position(|h| *h == current).map_or(0, |i| i + 1);
    HEALTH_CYCLE[i % HEALTH_CYCLE.len()]
}

async fn run_task(task: u64, args: std::sync::Arc<Args>, run_started: Instant, deadline: Instant) -> TaskResult {
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(1).timeout(Duration::from_secs(30)).build().expect("client");
    let auth = format!("Bearer {}", args.token);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed.wrapping_mul(1_000_003).wrapping_add(task));
    let mut out = TaskResult {
        latencies_us: Vec::with_capacity(1 << 16),
        run_started: Some(run_started),
        ..TaskResult::default()
    };
    // The trees this task edits: ids in 1..=max_id with id % connections == task.
    let owned_count = (args.max_id.saturating_sub(task)) / args.connections + u64::from(task >= 1);
    let write_set: Vec<i64> = if owned_count == 0 {
        Vec::new()
    } else {
        (0..args.write_set)
            .map(|_| {
                let k = rng.gen_range(0..owned_count);
                let id = if task == 0 { (k + 1) * args.connections } else { task + k * args.connections };
                id as i64
            })
            .filter(|id| (1..=args.max_id as i64).contains(id))
            .collect()
    };
    // id -> (version, health) as this task last saw it.
    let mut known: HashMap<i64, (i64, String)> = HashMap::new();
    while Instant::now() < deadline {
        let write = !write_set.is_empty() && rng.gen_range(0..100) < args.write_percent;
        if write {
            let id = write_set[rng.gen_range(0..write_set.len())];
            #[allow(clippy::map_entry)] // the version is learned by an awaited request in between
            if !known.contains_key(&id) {
                let url = format!("{}/api/trees/{id}", args.base);
                let started = Instant::now();
                match client.get(&url).header("authorization", &auth).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let version = etag_version(r.headers());
                        let body = r.bytes().await.unwrap_or_default();
                        out.record(4, started, status, &url);
                        match (version, props(&body)) {
                            (Some(v), Some((_, health))) if status == 200 => {
                                known.insert(id, (v, health));
                            }
                            _ => continue,
                        }
                    }
                    Err(e) => {
                        out.transport_error(4, started, &url, &e);
                        continue;
                    }
                }
            }
            let (version, health) = known[&id].clone();
            let target = next_health(&health);
            let url = format!("{}/api/trees/{id}", args.base);
            let started = Instant::now();
            let sent = client
                .patch(&url)
                .header("authorization", &auth)
                .header("if-match", format!("\"{version}\""))
                .header("content-type", "application/json")
                .body(format!("{{\"health\":\"{target}\"}}"))
                .send()
                .await;
            match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let new_version = etag_version(r.headers());
                    let body = r.bytes().await.unwrap_or_default();
                    out.record(5, started, status, &url);
                    if (200..300).contains(&status) {
                        let Some(v) = new_version else {
                            out.error_count += 1;
                            out.errors.push(format!("patch {url}: no ETag"));
                            continue;
                        };
                        let acked_health = props(&body).map_or_else(|| target.to_string(), |(_, h)| h);
                        if acked_health != target && out.errors.len() < 5 {
                            out.errors.push(format!("patch {url}: asked {target}, got {acked_health}"));
                            out.error_count += 1;
                        }
                        known.insert(id, (v, acked_health.clone()));
                        out.acked.insert(id, (v, acked_health));
                        out.writes_acked += 1;
                    } else {
                        // Unknown state now: read it again before the next edit.
                        known.remove(&id);
                    }
                }
                Err(e) => {
                    out.transport_error(5, started, &url, &e);
                    known.remove(&id);
                }
            }
            continue;
        }
        let kind = rng.gen_range(0..4usize);
        let url = match kind {
            0 => format!("{}/api/trees/{}", args.base, rng.gen_range(1..=args.max_id)),
            1 => {
                let (lon, lat) = (rng.gen_range(LON.0..LON.1), rng.gen_range(LAT.0..LAT.1));
                format!("{}/api/trees?bbox={lon:.5},{lat:.5},{:.5},{:.5}&limit=20", args.base, lon + 0.01, lat + 0.01)
            }
            2 => {
                let (lon, lat) = (rng.gen_range(LON.0..LON.1), rng.gen_range(LAT.0..LAT.1));
                format!("{}/api/trees/nearest?lon={lon:.6}&lat={lat:.6}&k=5", args.base)
            }
            _ => {
                let (lon, lat) = (rng.gen_range(LON.0..LON.1), rng.gen_range(LAT.0..LAT.1));
                format!(
                    "{}/api/trees?bbox={lon:.5},{lat:.5},{:.5},{:.5}&health=good&cultivar=Ri6&limit=20",
                    args.base,
                    lon + 0.02,
                    lat + 0.02
                )
            }
        };
        let started = Instant::now();
        match client.get(&url).header("authorization", &auth).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                out.record(kind, started, status, &url);
            }
            Err(e) => out.transport_error(kind, started, &url, &e),
        }
    }
    out
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("mixed_load: {e}");
            eprintln!(
                "usage: mixed_load --base URL --token TOKEN --db DB [--seconds 30] [--connections 32] \
                 [--write-percent 10] [--max-id 1000000] [--write-set 1000] [--seed 42]"
            );
            return ExitCode::from(2);
        }
    };
    println!(
        "mixed load: {} for {} s, {} connections, {}% writes, ids 1..={}, {} trees edited per connection",
        args.base, args.seconds, args.connections, args.write_percent, args.max_id, args.write_set
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let handles: Vec<_> =
        (0..args.connections).map(|t| tokio::spawn(run_task(t, args.clone(), started, deadline))).collect();
    let mut total = TaskResult::default();
    let mut acked: HashMap<i64, (i64, String)> = HashMap::new();
    for h in handles {
        let r = h.await.expect("task");
        total.latencies_us.extend(r.latencies_us);
        for (s, n) in r.statuses {
            *total.statuses.entry(s).or_default() += n;
        }
        for k in 0..KINDS.len() {
            total.by_kind[k] += r.by_kind[k];
            total.kind_latencies_us[k].extend(&r.kind_latencies_us[k]);
        }
        for (second, n) in r.slow_by_second {
            *total.slow_by_second.entry(second).or_default() += n;
        }
        total.error_count += r.error_count;
        total.writes_acked += r.writes_acked;
        total.errors.extend(r.errors);
        acked.extend(r.acked);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = total.latencies_us;
    lat.sort_unstable();
    let n = lat.len();
    let writes = total.by_kind[5];
    println!("requests      {n} in {elapsed:.1} s");
    println!("req/s         {:.0}", n as f64 / elapsed);
    println!(
        "by kind       {}",
        KINDS.iter().zip(total.by_kind).map(|(k, c)| format!("{k}={c}")).collect::<Vec<_>>().join(" ")
    );
    println!(
        "writes        {writes} PATCH ({:.1}% of requests), {} acknowledged",
        100.0 * writes as f64 / n.max(1) as f64,
        total.writes_acked
    );
    println!(
        "latency ms    p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0)
    );
    for (k, name) in KINDS.iter().enumerate() {
        let l = &mut total.kind_latencies_us[k];
        l.sort_unstable();
        println!(
            "  {name:<12} p50 {:.2}  p99 {:.2}  max {:.2}",
            percentile(l, 50.0),
            percentile(l, 99.0),
            percentile(l, 100.0)
        );
    }
    let mut slow: Vec<_> = total.slow_by_second.into_iter().collect();
    slow.sort_unstable();
    println!(
        "over 20 ms    {} requests; by second of the run: {}",
        slow.iter().map(|(_, n)| n).sum::<u64>(),
        slow.iter().map(|(s, n)| format!("{s}s:{n}")).collect::<Vec<_>>().join(" ")
    );
    let mut statuses: Vec<_> = total.statuses.into_iter().collect();
    statuses.sort_unstable();
    println!("statuses      {}", statuses.iter().map(|(s, c)| format!("{s}:{c}")).collect::<Vec<_>>().join(" "));
    println!("errors        {}", total.error_count);
    for e in total.errors.iter().take(5) {
        println!("  {e}");
    }

    // VERIFY: every acknowledged write's last version and health, in the database and in the index.
    let verify_started = Instant::now();
    let store = match store::open(&args.db).await {
        Ok(s) => s,
        Err(e) => {
            println!("VERIFY FAILED: cannot open {}: {e}", args.db);
            return ExitCode::FAILURE;
        }
    };
    let client = reqwest::Client::new();
    let auth = format!("Bearer {}", args.token);
    let (mut db_bad, mut index_bad) = (0u64, 0u64);
    let mut mismatches = Vec::new();
    let mut ids: Vec<_> = acked.into_iter().collect();
    ids.sort_unstable_by_key(|(id, _)| *id);
    for (id, (version, health)) in &ids {
        match store.tree(geo_core::TreeId(*id)).await {
            Ok(Some(t)) if t.version == *version && t.health.as_str() == health => {}
            other => {
                db_bad += 1;
                if mismatches.len() < 5 {
                    let got = match other {
                        Ok(Some(t)) => format!("version {} health {}", t.version, t.health.as_str()),
                        Ok(None) => "missing".into(),
                        Err(e) => e.to_string(),
                    };
                    mismatches.push(format!("db tree {id}: acked version {version} health {health}, stored {got}"));
                }
            }
        }
        let url = format!("{}/api/trees/{id}", args.base);
        let got = match client.get(&url).header("authorization", &auth).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.bytes().await.unwrap_or_default();
                if status == 200 { props(&body) } else { None }
            }
            Err(_) => None,
        };
        if got.as_ref() != Some(&(*version, health.clone())) {
            index_bad += 1;
            if mismatches.len() < 5 {
                mismatches.push(format!("index tree {id}: acked version {version} health {health}, served {got:?}"));
            }
        }
    }
    println!(
        "verify        {} trees written: {} mismatched in the database, {} in the index ({:.1} s)",
        ids.len(),
        db_bad,
        index_bad,
        verify_started.elapsed().as_secs_f64()
    );
    for m in &mismatches {
        println!("  {m}");
    }
    let ok = total.error_count == 0 && db_bad == 0 && index_bad == 0 && ids.is_empty() != (args.write_percent > 0);
    println!("result        {}", if ok { "OK" } else { "FAILED" });
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
