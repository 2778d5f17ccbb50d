//! Service metrics in the Prometheus text exposition format (version 0.0.4),
//! written by hand: request counts and latency histograms per route, and the
//! counters other code updates (imports, cache hits and misses, rate limiting,
//! failed authentications).
//!
//! Requests are labelled with the route *template* axum matched (`/api/trees/{id}`,
//! never `/api/trees/123`) and unmatched paths with `route="unmatched"`, so the
//! number of series stays bounded whatever clients ask for. Recording a request
//! takes a shared read lock and a few relaxed atomic increments.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Prefix of every metric name.
pub const PREFIX: &str = "orchardmap_";

/// Upper bounds of the latency histogram's buckets, in seconds (Prometheus' defaults
/// with 0.5 ms, 1 ms and 2.5 ms added below).
pub const LATENCY_BUCKETS: [f64; 13] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Methods with a label of their own; any other method is counted as `other`.
const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(method: &Method) -> usize {
    METHODS.iter().position(|m| *m == method.as_str()).unwrap_or(METHODS.len() - 1)
}

fn class_index(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, CLASSES.len()) - 1
}

/// Counts and latencies of one (route, method).
#[derive(Default)]
struct Series {
    by_class: [AtomicU64; CLASSES.len()],
    /// Non-cumulative bucket counts; the last one is above the largest bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Series {
    fn record(&self, status: StatusCode, latency: Duration) {
        self.by_class[class_index(status)].fetch_add(1, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|le| secs <= *le).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Every method's series of one route.
#[derive(Default)]
struct RouteStats {
    by_method: [Series; METHODS.len()],
}

#[derive(Default)]
struct HitMiss {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The service's metrics; share one in an `Arc` ([`AppState::metrics`]).
pub struct Metrics {
    started: Instant,
    routes: RwLock<HashMap<String, RouteStats>>,
    imports: Mutex<BTreeMap<String, u64>>,
    caches: RwLock<BTreeMap<String, HitMiss>>,
    rate_limited_public: AtomicU64,
    rate_limited_auth: AtomicU64,
    auth_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            routes: RwLock::default(),
            imports: Mutex::default(),
            caches: RwLock::default(),
            rate_limited_public: AtomicU64::new(0),
            rate_limited_auth: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("Metrics").field("routes", &routes).finish_non_exhaustive()
    }
}

/// Which limit refused a request (the `limit` label of `orchardmap_rate_limited_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The per-client limit on requests without an `Authorization` header.
    Public,
    /// Too many failed authentications from one client.
    AuthFailures,
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one request: `route` is the matched route template (or [`UNMATCHED`]).
    pub fn record_request(&self, method: &Method, route: &str, status: StatusCode, latency: Duration) {
        let method = method_index(method);
        {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(stats) = routes.get(route) {
                stats.by_method[method].record(status, latency);
                return;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes.entry(route.to_owned()).or_default().by_method[method].record(status, latency);
    }

    /// Counts one finished import by its outcome (`imported`, `rejected`, `failed`, `dry_run`, ...).
    pub fn record_import(&self, outcome: &str) {
        let mut imports = self.imports.lock().unwrap_or_else(PoisonError::into_inner);
        *imports.entry(outcome.to_owned()).or_default() += 1;
    }

    /// Counts a hit of the named cache.
    pub fn cache_hit(&self, cache: &str) {
        self.cache_count(cache, true);
    }

    /// Counts a miss of the named cache.
    pub fn cache_miss(&self, cache: &str) {
        self.cache_count(cache, false);
    }

    fn cache_count(&self, cache: &str, hit: bool) {
        let bump = |c: &HitMiss| if hit { &c.hits } else { &c.misses }.fetch_add(1, Ordering::Relaxed);
        {
            let caches = self.caches.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = caches.get(cache) {
                bump(c);
                return;
            }
        }
        let mut caches = self.caches.write().unwrap_or_else(PoisonError::into_inner);
        bump(caches.entry(cache.to_owned()).or_default());
    }

    /// Counts a request refused by a rate limit.
    pub fn rate_limited(&self, limit: Limit) {
        match limit {
            Limit::Public => &self.rate_limited_public,
            Limit::AuthFailures => &self.rate_limited_auth,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed authentication (done by [`crate::middleware::AuthFailures::record_failure`]).
    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Every metric in the text exposition format, followed by `extra` gauges given as
    /// (name, help, value); names get the `orchardmap_` prefix unless they have it.
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_requests(&mut out);
        self.render_counters(&mut out);
        family(&mut out, "uptime_seconds", "Seconds since the server started.", "gauge");
        sample(&mut out, "uptime_seconds", "", self.started.elapsed().as_secs_f64());
        for (name, help, value) in extra {
            let name = name.strip_prefix(PREFIX).unwrap_or(name);
            family(&mut out, name, help, "gauge");
            sample(&mut out, name, "", *value);
        }
        out
    }

    fn render_requests(&self, out: &mut String) {
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        family(out, "http_requests_total", "HTTP requests by method, route template and status class.", "counter");
        for route in &names {
            for (m, series) in routes[*route].by_method.iter().enumerate() {
                for (c, count) in series.by_class.iter().enumerate() {
                    let n = load(count);
                    if n > 0 {
                        let labels =
                            format!("method=\"{}\",route=\"{}\",status=\"{}\"", METHODS[m], escape(route), CLASSES[c]);
                        sample(out, "http_requests_total", &labels, n as f64);
                    }
                }
            }
        }

        let name = "http_request_duration_seconds";
        family(out, name, "Time to the response head, by method and route template.", "histogram");
        for route in &names {
            for (m, series) in routes[*route].by_method.iter().enumerate() {
                let counts: Vec<u64> = series.buckets.iter().map(load).collect();
                let total: u64 = counts.iter().sum();
                if total == 0 {
                    continue;
                }
                let labels = format!("method=\"{}\",route=\"{}\"", METHODS[m], escape(route));
                let mut cumulative = 0;
                for (le, n) in LATENCY_BUCKETS.iter().zip(&counts) {
                    cumulative += n;
                    sample(out, &format!("{name}_bucket"), &format!("{labels},le=\"{le}\""), cumulative as f64);
                }
                sample(out, &format!("{name}_bucket"), &format!("{labels},le=\"+Inf\""), total as f64);
                sample(out, &format!("{name}_sum"), &labels, load(&series.sum_nanos) as f64 / 1e9);
                sample(out, &format!("{name}_count"), &labels, total as f64);
            }
        }
    }

    fn render_counters(&self, out: &mut String) {
        family(out, "imports_total", "Survey imports by outcome.", "counter");
        for (outcome, n) in self.imports.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            sample(out, "imports_total", &format!("outcome=\"{}\"", escape(outcome)), *n as f64);
        }

        let caches = self.caches.read().unwrap_or_else(PoisonError::into_inner);
        for (name, help, hits) in [
            ("cache_hits_total", "Cache hits by cache.", true),
            ("cache_misses_total", "Cache misses by cache.", false),
        ] {
            family(out, name, help, "counter");
            for (cache, c) in caches.iter() {
                let n = if hits { &c.hits } else { &c.misses }.load(Ordering::Relaxed);
                sample(out, name, &format!("cache=\"{}\"", escape(cache)), n as f64);
            }
        }
        drop(caches);

        family(out, "rate_limited_total", "Requests refused with 429, by the limit that refused them.", "counter");
        sample(out, "rate_limited_total", "limit=\"public\"", self.rate_limited_public.load(Ordering::Relaxed) as f64);
        sample(
            out,
            "rate_limited_total",
            "limit=\"auth_failures\"",
            self.rate_limited_auth.load(Ordering::Relaxed) as f64,
        );

        family(out, "auth_failures_total", "Failed authentications (bad, unknown or revoked tokens).", "counter");
        sample(out, "auth_failures_total", "", self.auth_failures.load(Ordering::Relaxed) as f64);
    }
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {PREFIX}{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    let value = if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        value.to_string()
    };
    if labels.is_empty() {
        let _ = writeln!(out, "{PREFIX}{name} {value}");
    } else {
        let _ = writeln!(out, "{PREFIX}{name}{{{labels}}} {value}");
    }
}

/// A label value escaped for the exposition format.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Middleware recording every request's method, route template, status class and latency.
/// Put it outside the rate limit and the timeout so that their 429 and 503 are counted.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = next.run(req).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    metrics.record_request(&method, route, response.status(), started.elapsed());
    response
}

/// `GET /metrics`: every metric, plus the size of the tree index and the number of
/// clients the rate limiter is tracking.
pub async fn metrics_handler(State(state): State<AppState>) -> Response {
    let trees = state.cache.read().len() as f64;
    let clients = state.rate_limiter.tracked() as f64;
    let body = state.metrics.render(&[
        ("trees_in_index", "Trees in this server's in-memory index.", trees),
        ("rate_limiter_clients", "Clients the public rate limiter is tracking.", clients),
    ]);
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_extras() {
        let m = Metrics::new();
        m.record_request(&Method::GET, "/api/trees/{id}", StatusCode::OK, Duration::from_micros(700));
        m.record_request(&Method::GET, "/api/trees/{id}", StatusCode::NOT_FOUND, Duration::from_secs(10));
        m.record_request(
            &Method::from_bytes(b"BREW").unwrap_or(Method::GET),
            UNMATCHED,
            StatusCode::OK,
            Duration::ZERO,
        );
        m.record_import("imported");
        m.cache_hit("tiles");
        m.cache_hit("tiles");
        m.cache_miss("tiles");
        m.rate_limited(Limit::Public);
        m.auth_failure();
        let text = m.render(&[("trees_in_index", "Trees.", 25.0)]);
        for line in [
            "# TYPE orchardmap_http_requests_total counter",
            "orchardmap_http_requests_total{method=\"GET\",route=\"/api/trees/{id}\",status=\"2xx\"} 1",
            "orchardmap_http_requests_total{method=\"GET\",route=\"/api/trees/{id}\",status=\"4xx\"} 1",
            "orchardmap_http_requests_total{method=\"other\",route=\"unmatched\",status=\"2xx\"} 1",
            "orchardmap_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/trees/{id}\",le=\"0.0005\"} 0",
            "orchardmap_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/trees/{id}\",le=\"0.001\"} 1",
            "orchardmap_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/trees/{id}\",le=\"5\"} 1",
            "orchardmap_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/trees/{id}\",le=\"+Inf\"} 2",
            "orchardmap_http_request_duration_seconds_count{method=\"GET\",route=\"/api/trees/{id}\"} 2",
            "orchardmap_http_request_duration_seconds_sum{method=\"GET\",route=\"/api/trees/{id}\"} 10.0007",
            "orchardmap_imports_total{outcome=\"imported\"} 1",
            "orchardmap_cache_hits_total{cache=\"tiles\"} 2",
            "orchardmap_cache_misses_total{cache=\"tiles\"} 1",
            "orchardmap_rate_limited_total{limit=\"public\"} 1",
            "orchardmap_auth_failures_total 1",
            "# TYPE orchardmap_trees_in_index gauge",
            "orchardmap_trees_in_index 25",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every sample line has a TYPE for its family.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap_or_default();
            let base = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {base} ")) || text.contains(&format!("# TYPE {name} ")), "{l}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
