//! Service hygiene: JSON errors for every rejection, body limits, timeouts, the
//! public rate limit, CORS for public reads and the metrics endpoint.
// A panic in a test, bench or example is a failure report; unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::{AppState, Hygiene};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::{get, post};
use geo_core::Role;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

struct World {
    _dir: tempfile::TempDir,
    state: AppState,
    token: String,
}

async fn world(hygiene: Hygiene) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(dir.path().join("hygiene.db").to_str().unwrap()).await.unwrap();
    let (token, hash) = api::auth::new_token();
    store.create_user("Lan", Role::Volunteer, &[], &hash).await.unwrap();
    let cache = Arc::new(api::TreeCache::load(store.as_ref()).await.unwrap());
    World { _dir: dir, state: AppState::new(store, cache).with_hygiene(hygiene), token }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

/// A request: (name, value) headers; `peer` sets the connection's address as `serve` would.
fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: Vec<u8>, peer: Option<[u8; 4]>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::from(body)).unwrap();
    if let Some(ip) = peer {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    }
    req
}

async fn send_to(router: Router, req: Request<Body>) -> Reply {
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Reply { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text }
}

async fn send(state: &AppState, req: Request<Body>) -> Reply {
    send_to(api::router(state.clone()), req).await
}

/// Asserts the API's error shape with this status and code.
fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("application/json"), "{:?}", r.headers);
    assert_eq!(r.body["error"]["code"], code, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
}

/// A router of test handlers behind the hygiene layers.
fn test_router(state: &AppState) -> Router {
    #[derive(serde::Deserialize)]
    struct Point {
        #[allow(dead_code)]
        lon: f64,
    }
    let routes = Router::new()
        .route("/echo", post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }))
        .route("/point", post(|axum::Json(_): axum::Json<Point>| async { "ok" }))
        .route("/n/{n}", get(|Path(n): Path<u32>| async move { n.to_string() }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "done"
            }),
        )
        .route("/boom", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database password is hunter2") }));
    api::middleware::layers(routes, state).with_state(state.clone())
}

#[tokio::test]
async fn extractor_rejections_come_back_as_json_errors() {
    let w =
        world(Hygiene { max_body_bytes: 1000, request_timeout: Duration::from_millis(20), ..Hygiene::default() }).await;
    let app = test_router(&w.state);
    let json = [("content-type", "application/json")];

    let r = send_to(app.clone(), request("POST", "/echo", &json, b"{\"a\":1}".to_vec(), None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["a"], 1);

    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(2000)).into_bytes();
    let r = send_to(app.clone(), request("POST", "/echo", &json, big, None)).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    let r =
        send_to(app.clone(), request("POST", "/echo", &[("content-type", "text/plain")], b"{}".to_vec(), None)).await;
    assert_error(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    let r = send_to(app.clone(), request("POST", "/echo", &json, b"{not json".to_vec(), None)).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");

    let r = send_to(app.clone(), request("POST", "/point", &json, b"{\"lon\":\"east\"}".to_vec(), None)).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("lon"), "{}", r.text);

    let r = send_to(app.clone(), request("GET", "/n/abc", &[], vec![], None)).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");

    let r = send_to(app.clone(), request("DELETE", "/echo", &[], vec![], None)).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(r.headers.contains_key("allow"), "the Allow header is kept");
    assert_eq!(r.headers["allow"], "POST");

    // 5xx bodies are opaque.
    let r = send_to(app.clone(), request("GET", "/boom", &[], vec![], None)).await;
    assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert!(!r.text.contains("hunter2"));

    let r = send_to(app.clone(), request("GET", "/slow", &[], vec![], None)).await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "timeout");
}

#[tokio::test]
async fn the_real_router_answers_json_for_oversized_bodies_and_wrong_methods() {
    let w = world(Hygiene::default()).await;
    let big = vec![b' '; 2 * 1024 * 1024];
    let auth = format!("Bearer {}", w.token);
    let headers = [("content-type", "application/json"), ("authorization", auth.as_str())];
    let r = send(&w.state, request("POST", "/api/trees", &headers, big, None)).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    let r = send(&w.state, request("DELETE", "/healthz", &[], vec![], None)).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    let r = send(&w.state, request("GET", "/no/such/thing", &[], vec![], None)).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn anonymous_clients_are_rate_limited_per_address_and_signed_in_ones_are_not() {
    let w = world(Hygiene { rate_per_minute: 1, rate_burst: 3, ..Hygiene::default() }).await;
    let s = &w.state;
    let a = Some([198, 51, 100, 1]);
    for _ in 0..3 {
        let r = send(s, request("GET", "/api/trees?limit=1", &[], vec![], a)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = send(s, request("GET", "/api/trees?limit=1", &[], vec![], a)).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Another address has its own allowance.
    let r = send(s, request("GET", "/api/trees?limit=1", &[], vec![], Some([198, 51, 100, 2]))).await;
    assert_eq!(r.status, StatusCode::OK);
    // A signed-in client is not limited by it.
    let auth = format!("Bearer {}", w.token);
    for _ in 0..5 {
        let r = send(s, request("GET", "/api/trees?limit=1", &[("authorization", &auth)], vec![], a)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // Health checks are never limited, nor map tiles (a map view needs dozens at once).
    let r = send(s, request("GET", "/healthz", &[], vec![], a)).await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..10 {
        let r = send(s, request("GET", "/tiles/trees/3/6/3.mvt", &[], vec![], a)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // Without a peer address (oneshot), all requests share one allowance.
    for _ in 0..3 {
        assert_eq!(send(s, request("GET", "/", &[], vec![], None)).await.status, StatusCode::OK);
    }
    assert_eq!(send(s, request("GET", "/", &[], vec![], None)).await.status, StatusCode::TOO_MANY_REQUESTS);

    let metrics = send(s, request("GET", "/metrics", &[("authorization", &auth)], vec![], a)).await;
    assert!(metrics.text.contains("orchardmap_rate_limited_total{limit=\"public\"} 2"), "{}", metrics.text);

    // Off when the rate is 0.
    let w = world(Hygiene { rate_per_minute: 0, rate_burst: 1, ..Hygiene::default() }).await;
    for _ in 0..5 {
        assert_eq!(send(&w.state, request("GET", "/healthz", &[], vec![], a)).await.status, StatusCode::OK);
        assert_eq!(send(&w.state, request("GET", "/api/trees", &[], vec![], a)).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn auth_failures_are_limited_per_address() {
    let w = world(Hygiene { auth_failures_per_minute: 2, ..Hygiene::default() }).await;
    let f = &w.state.auth_failures;
    let ip = "198.51.100.9".parse().unwrap();
    assert!(f.check(ip).is_ok());
    f.record_failure(ip);
    f.record_failure(ip);
    assert!(f.check(ip).is_err());
    assert!(f.check("198.51.100.10".parse().unwrap()).is_ok());

    // The middleware refuses a blocked client's tokens before any lookup, and only its own.
    let auth = format!("Bearer {}", w.token);
    let r =
        send(&w.state, request("GET", "/api/me", &[("authorization", &auth)], vec![], Some([198, 51, 100, 9]))).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    let r =
        send(&w.state, request("GET", "/api/me", &[("authorization", &auth)], vec![], Some([198, 51, 100, 10]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Anonymous reads from the blocked address are still served (they carry no token).
    let r = send(&w.state, request("GET", "/api/trees", &[], vec![], Some([198, 51, 100, 9]))).await;
    assert_eq!(r.status, StatusCode::OK);

    let text = w.state.metrics.render(&[]);
    assert!(text.contains("orchardmap_auth_failures_total 2"), "{text}");
    assert!(text.contains("orchardmap_rate_limited_total{limit=\"auth_failures\"} 2"), "{text}");
}

#[tokio::test]
async fn cors_is_for_public_reads_only() {
    let w = world(Hygiene::default()).await;
    let s = &w.state;
    let origin = ("origin", "https://map.example.org");

    let r = send(s, request("GET", "/api/trees?limit=1", &[origin], vec![], None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert!(r.headers["access-control-expose-headers"].to_str().unwrap().contains("etag"));
    // Error answers to reads carry it too, so a page can read a 404 or a 429.
    let r = send(s, request("GET", "/api/trees/999999", &[origin], vec![], None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["access-control-allow-origin"], "*");

    let preflight = |method: &'static str, path: &'static str| {
        request(
            "OPTIONS",
            path,
            &[origin, ("access-control-request-method", method), ("access-control-request-headers", "if-none-match")],
            vec![],
            None,
        )
    };
    let r = send(s, preflight("GET", "/api/trees/1")).await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    let methods = r.headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("GET") && !methods.contains("PATCH"), "{methods}");
    assert!(r.headers["access-control-allow-headers"].to_str().unwrap().contains("if-none-match"));

    for (method, path) in [("PATCH", "/api/trees/1"), ("POST", "/api/trees"), ("DELETE", "/api/trees/1")] {
        let r = send(s, preflight(method, path)).await;
        assert!(!r.status.is_success(), "{method} preflight: {}", r.status);
        let cors: Vec<_> = r.headers.keys().filter(|k| k.as_str().starts_with("access-control-")).collect();
        assert!(cors.is_empty(), "{method} preflight got {cors:?}");
    }
    // A write itself gets no CORS header either.
    let r =
        send(s, request("POST", "/api/trees", &[origin, ("content-type", "application/json")], b"{}".to_vec(), None))
            .await;
    assert!(!r.headers.contains_key("access-control-allow-origin"), "{:?}", r.headers);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let w = world(Hygiene::default()).await;
    let s = &w.state;
    for uri in ["/api/trees/1", "/api/trees/2", "/api/trees/3", "/healthz", "/secret/../x", "/nope/123"] {
        send(s, request("GET", uri, &[], vec![], None)).await;
    }
    send(s, request("PATCH", "/api/trees/1", &[], b"{}".to_vec(), None)).await;
    s.metrics.record_import("imported");
    s.metrics.cache_hit("tiles");
    s.metrics.cache_miss("tiles");

    let r = send(s, request("GET", "/metrics", &[], vec![], None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = &r.text;
    for line in [
        "# TYPE orchardmap_http_requests_total counter",
        "orchardmap_http_requests_total{method=\"GET\",route=\"/api/trees/{id}\",status=\"4xx\"} 3",
        "orchardmap_http_requests_total{method=\"PATCH\",route=\"/api/trees/{id}\",status=\"4xx\"} 1",
        "orchardmap_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"2xx\"} 1",
        "orchardmap_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"4xx\"} 2",
        "# TYPE orchardmap_http_request_duration_seconds histogram",
        "orchardmap_http_request_duration_seconds_count{method=\"GET\",route=\"/api/trees/{id}\"} 3",
        "orchardmap_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/trees/{id}\",le=\"+Inf\"} 3",
        "orchardmap_imports_total{outcome=\"imported\"} 1",
        "orchardmap_cache_hits_total{cache=\"tiles\"} 1",
        "orchardmap_cache_misses_total{cache=\"tiles\"} 1",
        "# TYPE orchardmap_trees_in_index gauge",
        "orchardmap_trees_in_index 0",
        "orchardmap_auth_failures_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("# HELP orchardmap_http_requests_total "));
    // Raw paths never become labels.
    for raw in ["/api/trees/1\"", "/nope", "secret"] {
        assert!(!text.contains(raw), "{raw} in\n{text}");
    }
}
