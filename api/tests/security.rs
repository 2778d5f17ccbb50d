//! Security tests: who may call each route, failed sign-ins and their limit, markup in
//! stored text, SQL metacharacters in filters, path traversal, oversized and compressed
//! uploads, photo type checks, and private fields in public answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use api::{AppState, Hygiene, MapSettings};
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode};
use common::{ORIGIN, Reply, World, etag, get, json, png, send, world};
use geo_core::LonLat;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

// ------------------------------------------------------------------ helpers

/// Sends `req`, as `serve` would from client address `peer` (when given).
async fn call(state: &AppState, mut req: Request<Body>, peer: Option<IpAddr>) -> Reply {
    if let Some(ip) = peer {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, 40000)));
    }
    let resp = api::router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body, bytes }
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body).unwrap()
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.bytes).into_owned()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The state without the public and failed-authentication rate limits (tests that send
/// hundreds of requests from one address).
fn unlimited(state: &AppState) -> AppState {
    state.clone().with_hygiene(Hygiene { rate_per_minute: 0, auth_failures_per_minute: 0, ..Hygiene::default() })
}

/// `s` percent-encoded as a query value.
fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `s` percent-encoded as one path segment (everything but letters and digits).
fn segment(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") }).collect()
}

fn multipart(name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "SecBoundary7x";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A body sent in `chunk`-byte pieces, each after a pause as from a network (the reader
/// sees "not ready" between them); `pulled` counts the bytes the server asked for.
fn streamed(data: Vec<u8>, chunk: usize, pulled: Arc<AtomicUsize>) -> Body {
    use futures_util::StreamExt as _;
    let pieces: Vec<Bytes> = data.chunks(chunk).map(Bytes::copy_from_slice).collect();
    Body::from_stream(futures_util::stream::iter(pieces).then(move |piece| {
        let pulled = pulled.clone();
        async move {
            tokio::task::yield_now().await;
            pulled.fetch_add(piece.len(), Ordering::SeqCst);
            Ok::<_, std::io::Error>(piece)
        }
    }))
}

/// Counts the heap bytes each thread holds and the most it held, so that a test can tell
/// how much memory a request took (a `#[tokio::test]` runs its requests on its own thread).
struct CountingAllocator;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note_alloc(delta: isize) {
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// Starts measuring: the most this thread will hold above what it holds now.
fn peak_from_here() -> impl Fn() -> isize {
    let start = HELD.with(Cell::get);
    PEAK.with(|p| p.set(start));
    move || PEAK.with(Cell::get) - start
}

#[allow(unsafe_code)]
// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note_alloc(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note_alloc(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Trees in the database itself (a fresh load, not this server's memory).
async fn stored_trees(state: &AppState) -> usize {
    api::TreeCache::load(state.store.as_ref()).await.unwrap().read().len()
}

/// A CSV survey of `n` trees in orchard DL-A, `east_m` metres east of it (outside its trees).
fn survey_csv(n: usize, east_m: f64) -> String {
    let mut csv = String::from("lon,lat,cultivar,health,orchard\n");
    for i in 0..n {
        let p = ORIGIN.offset_m(east_m + (i % 20) as f64 * 5.0, 300.0 + (i / 20) as f64 * 5.0);
        csv.push_str(&format!("{:.7},{:.7},Ri6,good,DL-A\n", p.lon, p.lat));
    }
    csv
}

/// A 13-digit GLN with its check digit.
fn gln(first12: &str) -> String {
    format!("{first12}{}", geo_core::gs1::check_digit(first12).unwrap())
}

/// A folder holding MapLibre's two files and one more, with a secret file beside it.
fn vendor_folder(root: &Path) -> PathBuf {
    let dist = root.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("maplibre-gl.js"), "/* MAPLIBRE-JS-OK */").unwrap();
    std::fs::write(dist.join("maplibre-gl.css"), "/* MAPLIBRE-CSS-OK */").unwrap();
    std::fs::write(dist.join("other.txt"), "NOT-SERVED-FILE").unwrap();
    std::fs::write(root.join("secret.txt"), "TOP-SECRET-DATA").unwrap();
    dist
}

fn lot_body(orchard: &str) -> Value {
    json!({
        "orchard_id": orchard,
        "trees": "whole_orchard",
        "harvest_date": "2026-06-10",
        "weight_kg": 800.0,
        "boxes": 40,
        "packing_house": "VN-DLPH-0042",
        "gtin": "9506000134352",
        "lab_results": [],
    })
}

// ------------------------------------------------------------------ the role matrix

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Access {
    /// Anyone, without a token.
    Public,
    /// Any signed-in account.
    SignedIn,
    /// Volunteers and admins anywhere; farmers in their own orchards.
    Tender,
    /// Volunteers and admins.
    Surveyor,
    /// Admins.
    Admin,
}

/// The expected access of every route of `api::ROUTES`. A route added to the service
/// without a row here fails `every_route_answers_each_caller_as_its_access_says`.
const ACCESS: &[(&str, &str, Access)] = &[
    ("GET", "/", Access::Public),
    ("GET", "/about", Access::Public),
    ("GET", "/map/style.json", Access::Public),
    ("GET", "/map/app.js", Access::Public),
    ("GET", "/map/app.css", Access::Public),
    ("GET", "/map/vendor/maplibre-gl.js", Access::Public),
    ("GET", "/map/vendor/maplibre-gl.css", Access::Public),
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    ("GET", "/metrics", Access::Public),
    ("GET", "/api/openapi.json", Access::Public),
    ("GET", "/api/me", Access::SignedIn),
    ("GET", "/api/users", Access::Admin),
    ("POST", "/api/users", Access::Admin),
    ("DELETE", "/api/users/{name}", Access::Admin),
    ("GET", "/api/trees", Access::Public),
    ("POST", "/api/trees", Access::Surveyor),
    ("GET", "/api/trees/nearest", Access::Public),
    ("GET", "/api/trees/within", Access::Public),
    ("GET", "/api/trees/{id}", Access::Public),
    ("PATCH", "/api/trees/{id}", Access::Tender),
    ("DELETE", "/api/trees/{id}", Access::Surveyor),
    ("GET", "/api/trees/{id}/history", Access::Public),
    ("GET", "/api/trees/{id}/qr.svg", Access::Public),
    ("GET", "/api/trees/{id}/qr.png", Access::Public),
    ("GET", "/api/trees/{id}/records", Access::Public),
    ("POST", "/api/trees/{id}/records", Access::Tender),
    ("POST", "/api/trees/{id}/photos", Access::Tender),
    ("GET", "/api/photos/{sha256}", Access::Public),
    ("GET", "/api/orchards", Access::Public),
    ("POST", "/api/orchards", Access::Surveyor),
    ("GET", "/api/orchards/{id}", Access::Public),
    ("PATCH", "/api/orchards/{id}", Access::Surveyor),
    ("POST", "/api/imports", Access::Surveyor),
    ("GET", "/api/export", Access::Public),
    ("GET", "/ogc", Access::Public),
    ("GET", "/ogc/conformance", Access::Public),
    ("GET", "/ogc/api", Access::Public),
    ("GET", "/ogc/collections", Access::Public),
    ("GET", "/ogc/collections/{collectionId}", Access::Public),
    ("GET", "/ogc/collections/{collectionId}/items", Access::Public),
    ("GET", "/ogc/collections/{collectionId}/items/{featureId}", Access::Public),
    ("GET", "/tiles/trees.json", Access::Public),
    ("GET", "/tiles/pack", Access::Public),
    ("GET", "/tiles/trees/{z}/{x}/{y}", Access::Public),
    ("GET", "/t/{code}", Access::Public),
    ("GET", "/l/{code}", Access::Public),
    ("GET", "/414/{gln}/254/{code}", Access::Public),
    ("GET", "/01/{gtin}/10/{lot}", Access::Public),
    ("GET", "/.well-known/jwks.json", Access::Public),
    ("GET", "/.well-known/gs1resolver", Access::Public),
    ("GET", "/api/lots", Access::Public),
    ("POST", "/api/lots", Access::Tender),
    ("GET", "/api/lots/{code}", Access::Public),
    ("POST", "/api/lots/{code}/revoke", Access::Admin),
    ("GET", "/api/lots/{code}/qr.svg", Access::Public),
    ("GET", "/api/lots/{code}/qr.png", Access::Public),
    ("POST", "/api/tags", Access::Surveyor),
    ("GET", "/api/tags/{code}", Access::Public),
    ("POST", "/api/tags/{code}/register", Access::Surveyor),
    ("GET", "/api/labels", Access::Tender),
    ("GET", "/api/scans/flagged", Access::Admin),
    ("POST", "/api/scans/{code}/place", Access::Public),
    ("GET", "/api/epcis/events", Access::Public),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anonymous,
    /// The farmer, on things of their own orchard (A).
    FarmerOwn,
    /// The same farmer, on things of another orchard (B).
    FarmerOther,
    Volunteer,
    Admin,
}

const CALLERS: [Who; 5] = [Who::Anonymous, Who::FarmerOwn, Who::FarmerOther, Who::Volunteer, Who::Admin];

/// `None`: allowed (2xx or 3xx); else the refusal.
fn refusal(access: Access, who: Who) -> Option<StatusCode> {
    match (access, who) {
        (Access::Public, _) => None,
        (_, Who::Anonymous) => Some(StatusCode::UNAUTHORIZED),
        (Access::SignedIn, _) => None,
        (Access::Tender, Who::FarmerOther) => Some(StatusCode::FORBIDDEN),
        (Access::Tender, _) => None,
        (Access::Surveyor, Who::FarmerOwn | Who::FarmerOther) => Some(StatusCode::FORBIDDEN),
        (Access::Surveyor, _) => None,
        (Access::Admin, Who::Admin) => None,
        (Access::Admin, _) => Some(StatusCode::FORBIDDEN),
    }
}

/// Orchard A (the farmer's) or B.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    A,
    B,
}

/// What the matrix needs: the world, and things made for it in each orchard.
struct Matrix {
    w: World,
    s: AppState,
    codes: HashMap<&'static str, String>,
    lots: HashMap<&'static str, String>,
    /// The `/01/{gtin}/10/{lot}` path of orchard A's lot.
    gs1_lot_path: String,
    gln: String,
    photo: String,
    tags: Vec<String>,
    n: usize,
    removed: HashMap<&'static str, usize>,
}

struct Call {
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Call {
    fn get(uri: impl Into<String>) -> Self {
        Self { uri: uri.into(), headers: vec![], body: vec![] }
    }

    fn json(uri: impl Into<String>, body: Value) -> Self {
        Self { uri: uri.into(), headers: vec![("content-type".into(), "application/json".into())], body: json(body) }
    }

    fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl Matrix {
    async fn new() -> Self {
        let mut w = world().await;
        let vendor = vendor_folder(w.dir.path());
        w.state.map = Arc::new(MapSettings { basemap: None, assets: Some(vendor) });
        let s = unlimited(&w.state);
        let gln = gln("952012345678");
        let r = send(&s, "PATCH", "/api/orchards/DL-A", Some(&w.admin), &[], json(json!({"gln": gln}))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let mut codes = HashMap::new();
        let mut lots = HashMap::new();
        let mut gs1_lot_path = String::new();
        for (key, trees, orchard) in [("DL-A", &w.trees_a, "DL-A"), ("DL-B", &w.trees_b, "DL-B")] {
            let tree = get(&s, &format!("/api/trees/{}", trees[0]), None).await;
            codes.insert(key, tree.body["properties"]["code"].as_str().unwrap().to_string());
            let r = send(&s, "POST", "/api/lots", Some(&w.admin), &[], json(lot_body(orchard))).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            lots.insert(key, r.body["lot"]["code"].as_str().unwrap().to_string());
            if key == "DL-A" {
                let url = r.body["url"].as_str().unwrap();
                let path = &url[url.find("/01/").unwrap()..];
                gs1_lot_path = path.split('?').next().unwrap().to_string();
            }
        }
        let uri = format!("/api/trees/{}/photos", w.trees_a[1]);
        let r = send(&s, "POST", &uri, Some(&w.admin), &[("content-type", "image/png")], png()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let photo = r.body["photo"]["sha256"].as_str().unwrap().to_string();
        let r = send(&s, "POST", "/api/tags", Some(&w.admin), &[], json(json!({"count": 12}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let tags = r.body["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        Self { w, s, codes, lots, gs1_lot_path, gln, photo, tags, n: 0, removed: HashMap::new() }
    }

    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Anonymous => None,
            Who::FarmerOwn | Who::FarmerOther => Some(&self.w.farmer),
            Who::Volunteer => Some(&self.w.volunteer),
            Who::Admin => Some(&self.w.admin),
        }
    }

    /// A request for `method path` on things of orchard `side` that succeeds for a caller allowed to make it.
    async fn call_for(&mut self, method: &str, path: &str, side: Side) -> Call {
        self.n += 1;
        let n = self.n;
        let (orchard, trees, at) = match side {
            Side::A => ("DL-A", self.w.trees_a.clone(), ORIGIN),
            Side::B => ("DL-B", self.w.trees_b.clone(), ORIGIN.offset_m(1000.0, 0.0)),
        };
        let tree = trees[0];
        let code = self.codes[orchard].clone();
        let lot = self.lots[orchard].clone();
        let admin = self.w.admin.clone();
        // A free spot for new trees, away from the others.
        let spot = at.offset_m(150.0 + 4.0 * n as f64, 150.0);
        match (method, path) {
            (
                "GET",
                "/"
                | "/about"
                | "/map/style.json"
                | "/map/app.js"
                | "/map/app.css"
                | "/map/vendor/maplibre-gl.js"
                | "/map/vendor/maplibre-gl.css"
                | "/healthz"
                | "/readyz"
                | "/metrics"
                | "/api/openapi.json"
                | "/api/me"
                | "/api/users"
                | "/api/orchards"
                | "/ogc"
                | "/ogc/conformance"
                | "/ogc/api"
                | "/ogc/collections"
                | "/tiles/trees.json"
                | "/.well-known/jwks.json"
                | "/.well-known/gs1resolver"
                | "/api/scans/flagged",
            ) => Call::get(path),
            ("POST", "/api/users") => Call::json(path, json!({"name": format!("matrix {n}"), "role": "volunteer"})),
            ("DELETE", "/api/users/{name}") => {
                let name = format!("leaving-{n}");
                let body = json(json!({"name": name, "role": "volunteer"}));
                let r = send(&self.s, "POST", "/api/users", Some(&admin), &[], body).await;
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
                Call::get(format!("/api/users/{name}"))
            }
            ("GET", "/api/trees") => Call::get("/api/trees?limit=5"),
            ("POST", "/api/trees") => Call::json(
                path,
                json!({"lon": spot.lon, "lat": spot.lat, "cultivar": "Ri6", "health": "good", "orchard": orchard}),
            ),
            ("GET", "/api/trees/nearest") => Call::get(format!("/api/trees/nearest?lon={}&lat={}&k=3", at.lon, at.lat)),
            ("GET", "/api/trees/within") => {
                Call::get(format!("/api/trees/within?lon={}&lat={}&radius_m=30", at.lon, at.lat))
            }
            ("GET", "/api/trees/{id}" | "/api/trees/{id}/history" | "/api/trees/{id}/qr.svg")
            | ("GET", "/api/trees/{id}/qr.png" | "/api/trees/{id}/records") => {
                Call::get(path.replace("{id}", &tree.to_string()))
            }
            ("PATCH", "/api/trees/{id}") => {
                let tag = etag(&self.s, tree).await;
                let health = if n % 2 == 0 { "fair" } else { "poor" };
                Call::json(format!("/api/trees/{tree}"), json!({"health": health})).with("if-match", &tag)
            }
            ("DELETE", "/api/trees/{id}") => {
                let removed = self.removed.entry(orchard).or_insert(0);
                let victim = trees[20 + *removed];
                let tag = etag(&self.s, victim).await;
                Call::get(format!("/api/trees/{victim}?reason=cut")).with("if-match", &tag)
            }
            ("POST", "/api/trees/{id}/records") => Call::json(
                format!("/api/trees/{tree}/records"),
                json!({"date": "2026-03-01", "kind": "spray", "product": "Abamectin", "dose": "20 ml", "phi_days": 7}),
            ),
            ("POST", "/api/trees/{id}/photos") => Call {
                uri: format!("/api/trees/{tree}/photos"),
                headers: vec![("content-type".into(), "image/png".into())],
                body: png(),
            },
            ("GET", "/api/photos/{sha256}") => Call::get(format!("/api/photos/{}", self.photo)),
            ("POST", "/api/orchards") => {
                Call::json(path, json!({"id": format!("DL-M{n}"), "name": "Vườn mới", "province": "Đắk Lắk"}))
            }
            ("GET", "/api/orchards/{id}") => Call::get(format!("/api/orchards/{orchard}")),
            ("PATCH", "/api/orchards/{id}") => {
                Call::json(format!("/api/orchards/{orchard}"), json!({"district": "Cư Kuin"}))
            }
            ("POST", "/api/imports") => {
                let csv =
                    format!("lon,lat,cultivar,health,orchard\n{:.7},{:.7},Ri6,good,{orchard}\n", spot.lon, spot.lat);
                let (content_type, body) = multipart(&format!("matrix-{n}.csv"), csv.as_bytes());
                Call { uri: path.into(), headers: vec![("content-type".into(), content_type)], body }
            }
            ("GET", "/api/export") => Call::get(format!("/api/export?format=csv&orchard={orchard}")),
            ("GET", "/ogc/collections/{collectionId}") => Call::get("/ogc/collections/trees"),
            ("GET", "/ogc/collections/{collectionId}/items") => Call::get("/ogc/collections/trees/items?limit=2"),
            ("GET", "/ogc/collections/{collectionId}/items/{featureId}") => {
                Call::get(format!("/ogc/collections/trees/items/{tree}"))
            }
            ("GET", "/tiles/pack") => {
                let (sw, ne) = (at.offset_m(-20.0, -20.0), at.offset_m(120.0, 120.0));
                Call::get(format!("/tiles/pack?bbox={},{},{},{}&minzoom=16&maxzoom=16", sw.lon, sw.lat, ne.lon, ne.lat))
            }
            ("GET", "/tiles/trees/{z}/{x}/{y}") => {
                let t = tiles::tile_for(at, 16).unwrap();
                Call::get(format!("/tiles/trees/16/{}/{}.mvt", t.x(), t.y()))
            }
            ("GET", "/t/{code}") => Call::get(format!("/t/{code}")),
            ("GET", "/l/{code}") => Call::get(format!("/l/{lot}")),
            ("GET", "/414/{gln}/254/{code}") => Call::get(format!("/414/{}/254/{}", self.gln, self.codes["DL-A"])),
            ("GET", "/01/{gtin}/10/{lot}") => Call::get(self.gs1_lot_path.clone()),
            ("GET", "/api/lots") => Call::get(format!("/api/lots?orchard={orchard}")),
            ("POST", "/api/lots") => Call::json(path, lot_body(orchard)),
            ("GET", "/api/lots/{code}" | "/api/lots/{code}/qr.svg" | "/api/lots/{code}/qr.png") => {
                Call::get(path.replace("{code}", &lot))
            }
            ("POST", "/api/lots/{code}/revoke") => {
                let r = send(&self.s, "POST", "/api/lots", Some(&admin), &[], json(lot_body(orchard))).await;
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
                let fresh = r.body["lot"]["code"].as_str().unwrap();
                Call::json(format!("/api/lots/{fresh}/revoke"), json!({"reason": "labels copied"}))
            }
            ("POST", "/api/tags") => Call::json(path, json!({"count": 1})),
            ("GET", "/api/tags/{code}") => Call::get(format!("/api/tags/{}", self.tags[0])),
            ("POST", "/api/tags/{code}/register") => {
                let tag = self.tags.pop().unwrap();
                Call::json(
                    format!("/api/tags/{tag}/register"),
                    json!({"lon": spot.lon, "lat": spot.lat, "cultivar": "Ri6", "health": "good", "orchard": orchard}),
                )
            }
            ("GET", "/api/labels") => Call::get(format!("/api/labels?orchard={orchard}&format=svg")),
            ("POST", "/api/scans/{code}/place") => {
                Call::json(format!("/api/scans/{code}/place"), json!({"lat": at.lat, "lon": at.lon}))
            }
            ("GET", "/api/epcis/events") => Call::get(format!("/api/epcis/events?tree={code}")),
            _ => panic!("no request is written for {method} {path}: add it to Matrix::call_for"),
        }
    }
}

#[test]
fn every_route_has_an_expected_access_and_no_row_is_stale() {
    let listed: BTreeSet<(&str, &str)> = api::ROUTES.iter().copied().collect();
    let expected: BTreeSet<(&str, &str)> = ACCESS.iter().map(|(m, p, _)| (*m, *p)).collect();
    let missing: Vec<_> = listed.difference(&expected).collect();
    assert!(missing.is_empty(), "routes without an expected access in security.rs ACCESS: {missing:?}");
    let stale: Vec<_> = expected.difference(&listed).collect();
    assert!(stale.is_empty(), "ACCESS rows for routes the service no longer has: {stale:?}");
    assert_eq!(ACCESS.len(), expected.len(), "a route listed twice in ACCESS");
}

#[tokio::test]
async fn every_route_answers_each_caller_as_its_access_says() {
    let mut m = Matrix::new().await;
    let mut checked = 0;
    for (method, path) in api::ROUTES {
        let access = ACCESS
            .iter()
            .find(|(m, p, _)| m == method && p == path)
            .map(|(_, _, a)| *a)
            .unwrap_or_else(|| panic!("{method} {path} has no row in ACCESS"));
        for who in CALLERS {
            let side = if matches!(who, Who::FarmerOther | Who::Volunteer) { Side::B } else { Side::A };
            let c = m.call_for(method, path, side).await;
            let token = m.token(who).map(str::to_string);
            let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let seq_before = m.s.store.last_change().await.unwrap();
            let r = send(&m.s, method, &c.uri, token.as_deref(), &headers, c.body).await;
            let what = format!("{method} {} as {who:?}", c.uri);
            match refusal(access, who) {
                None => assert!(
                    r.status.is_success() || r.status.is_redirection(),
                    "{what}: expected to be allowed ({access:?}), got {}: {}",
                    r.status,
                    text(&r).chars().take(300).collect::<String>()
                ),
                Some(want) => {
                    assert_eq!(r.status, want, "{what} ({access:?}): {}", r.body);
                    let code = if want == StatusCode::UNAUTHORIZED { "unauthorized" } else { "forbidden" };
                    assert_eq!(r.body["error"]["code"], code, "{what}: {}", r.body);
                    if want == StatusCode::UNAUTHORIZED {
                        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"orchardmap\"", "{what}");
                    }
                    // A refused request changed no tree.
                    assert_eq!(m.s.store.last_change().await.unwrap(), seq_before, "{what} wrote a change");
                }
            }
            if method == &"DELETE" && path == &"/api/trees/{id}" && r.status.is_success() {
                *m.removed.entry(if side == Side::A { "DL-A" } else { "DL-B" }).or_insert(0) += 1;
            }
            checked += 1;
        }
    }
    assert_eq!(checked, api::ROUTES.len() * CALLERS.len());
}

// ------------------------------------------------------------------ tokens

/// The parts of a 401 every kind of bad token must share.
fn refusal_shape(r: &Reply) -> (StatusCode, String, String, String) {
    let keys: Vec<&str> =
        r.body["error"].as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    (
        r.status,
        r.body["error"]["code"].as_str().unwrap_or_default().to_string(),
        r.headers.get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default(),
        format!("{} {keys:?}", r.headers["content-type"].to_str().unwrap()),
    )
}

#[tokio::test]
async fn malformed_unknown_and_revoked_tokens_get_the_same_401_and_are_rate_limited_per_address() {
    let w = world().await;
    let limit = 5;
    let s = w.state.clone().with_hygiene(Hygiene {
        auth_failures_per_minute: limit,
        rate_per_minute: 0,
        ..Hygiene::default()
    });
    // A revoked account.
    let body = json(json!({"name": "Tạm", "role": "volunteer"}));
    let created = send(&s, "POST", "/api/users", Some(&w.admin), &[], body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let revoked = created.body["token"].as_str().unwrap().to_string();
    let r = send(&s, "DELETE", &format!("/api/users/{}", segment("Tạm")), Some(&w.admin), &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (unknown, _) = api::auth::new_token();
    let mut flipped = w.volunteer.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });

    let kinds: Vec<(&str, HeaderValue)> = vec![
        ("too short", HeaderValue::from_static("Bearer om_short")),
        ("far too long", HeaderValue::from_str(&format!("Bearer om_{}", "A".repeat(10_000))).unwrap()),
        ("other scheme", HeaderValue::from_static("Basic YWRtaW46YWRtaW4=")),
        ("empty", HeaderValue::from_static("Bearer ")),
        ("bad characters", HeaderValue::from_str(&format!("Bearer om_{}!", "A".repeat(42))).unwrap()),
        ("not text", HeaderValue::from_bytes(b"Bearer om_\xff\xfe\xfd").unwrap()),
        ("unknown", HeaderValue::from_str(&format!("Bearer {unknown}")).unwrap()),
        ("one character changed", HeaderValue::from_str(&format!("Bearer {flipped}")).unwrap()),
        ("revoked", HeaderValue::from_str(&format!("Bearer {revoked}")).unwrap()),
        ("valid plus a character", HeaderValue::from_str(&format!("Bearer {}x", w.admin)).unwrap()),
    ];
    let new_tree = json!({"lon": 108.06, "lat": 12.69, "cultivar": "Ri6", "health": "good", "orchard": "DL-A"});
    let mut shapes = BTreeSet::new();
    let mut failures = 0;
    for (i, (kind, value)) in kinds.iter().enumerate() {
        // Each kind from its own address: three failures each, under the limit.
        let peer = Some(IpAddr::from([10, 0, 0, i as u8 + 1]));
        for (method, uri, body) in [
            ("GET", "/api/trees?limit=1", vec![]),
            ("POST", "/api/trees", json(new_tree.clone())),
            ("GET", "/no/such/route", vec![]),
        ] {
            let mut req = request(method, uri, &[("content-type", "application/json")], Body::from(body));
            req.headers_mut().insert("authorization", value.clone());
            let r = call(&s, req, peer).await;
            failures += 1;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{kind} on {method} {uri}: {}", r.body);
            shapes.insert(refusal_shape(&r));
            // The error never repeats the secret presented.
            let presented = value.to_str().unwrap_or_default().trim_start_matches("Bearer ");
            if presented.len() > 12 {
                assert!(!text(&r).contains(presented), "{kind}: the token is echoed: {}", r.body);
            }
        }
    }
    assert_eq!(shapes.len(), 1, "every bad token must get the same kind of 401: {shapes:?}");
    let (status, code, challenge, _) = shapes.into_iter().next().unwrap();
    assert_eq!(
        (status, code.as_str(), challenge.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized", "Bearer realm=\"orchardmap\"")
    );
    assert_eq!(stored_trees(&s).await, w.trees_a.len() + w.trees_b.len(), "a refused write wrote");

    // One address passes the limit, with any mix of bad tokens.
    let attacker = Some(ip("192.0.2.50"));
    for token in [&unknown, &revoked, &flipped, &"om_short".to_string(), &unknown] {
        let r = send_from(&s, "/api/me", Some(token), attacker).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        failures += 1;
    }
    for token in [&w.admin, &unknown] {
        // Even a valid token is refused from there now, before any lookup.
        let r = send_from(&s, "/api/me", Some(token), attacker).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "rate_limited");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    // Other addresses are not affected, nor requests without a token from that address.
    let r = send_from(&s, "/api/me", Some(&w.volunteer), Some(ip("192.0.2.51"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(send_from(&s, "/api/trees?limit=1", None, attacker).await.status, StatusCode::OK);

    // A client cannot escape the limit with made-up X-Forwarded-For headers (not trusted by default)...
    let spoofer = Some(ip("192.0.2.60"));
    for i in 0..limit {
        let forwarded = format!("203.0.113.{i}");
        let mut req = request("GET", "/api/me", &[("x-forwarded-for", &forwarded)], Body::empty());
        req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {unknown}")).unwrap());
        assert_eq!(call(&s, req, spoofer).await.status, StatusCode::UNAUTHORIZED);
        failures += 1;
    }
    let mut req = request("GET", "/api/me", &[("x-forwarded-for", "203.0.113.250")], Body::empty());
    req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {}", w.admin)).unwrap());
    assert_eq!(call(&s, req, spoofer).await.status, StatusCode::TOO_MANY_REQUESTS);
    // ... nor by moving through the addresses of one IPv6 /64.
    for i in 1..=limit {
        let r = send_from(&s, "/api/me", Some(&unknown), Some(ip(&format!("2001:db8:1:2::{i}")))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        failures += 1;
    }
    let r = send_from(&s, "/api/me", Some(&w.admin), Some(ip("2001:db8:1:2::ffff"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = send_from(&s, "/api/me", Some(&w.admin), Some(ip("2001:db8:1:3::1"))).await;
    assert_eq!(r.status, StatusCode::OK);

    let metrics = s.metrics.render(&[]);
    assert!(metrics.contains(&format!("orchardmap_auth_failures_total {failures}")), "{failures} failures: {metrics}");
}

async fn send_from(s: &AppState, uri: &str, token: Option<&String>, peer: Option<IpAddr>) -> Reply {
    let mut req = request("GET", uri, &[], Body::empty());
    if let Some(t) = token {
        req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {t}")).unwrap());
    }
    call(s, req, peer).await
}

// ------------------------------------------------------------------ markup in stored text

const SCRIPT: &str = "<script>alert(1)</script>";
const BREAKOUT: &str = "\"><img src=x onerror=alert(1)>";
const JS_URL: &str = "javascript:alert(1)";
const END_SCRIPT: &str = "</script><script>alert(2)</script>";

/// Markup that must never reach a page as markup.
const RAW: [&str; 4] = ["<script>alert", "<img src=x", "\"><img", "</script><script>"];

/// HTML page checks: no payload as markup, no `javascript:` link, scripts only the page's own.
fn assert_inert(html: &str, what: &str) {
    for raw in RAW {
        assert!(!html.contains(raw), "{what}: {raw:?} appears as markup");
    }
    let lower = html.to_ascii_lowercase();
    for attr in ["href=\"javascript:", "src=\"javascript:", "href='javascript:", "action=\"javascript:"] {
        assert!(!lower.contains(attr), "{what}: {attr}");
    }
    assert_eq!(lower.matches("<script").count(), lower.matches("</script>").count(), "{what}: unbalanced scripts");
}

/// Opening tags that data could add.
fn tag_counts(html: &str) -> [usize; 5] {
    let lower = html.to_ascii_lowercase();
    ["<script", "<img", "<iframe", "<object", "<a "].map(|t| lower.matches(t).count())
}

/// The text of the JSON islands (`<script type="application/json">`) of a page.
fn json_islands(html: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = html;
    while let Some(i) = rest.find("<script type=\"application/json\"") {
        let start = i + rest[i..].find('>').unwrap() + 1;
        let end = start + rest[start..].find("</script>").unwrap();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

#[tokio::test]
async fn markup_in_stored_text_is_shown_as_text_on_every_page() {
    let w = world().await;
    let s = &unlimited(&w.state);
    let admin = Some(w.admin.as_str());
    let at = ORIGIN.offset_m(3000.0, 0.0);
    let ring: Vec<[f64; 2]> = [(-5.0, -5.0), (100.0, -5.0), (100.0, 100.0), (-5.0, 100.0), (-5.0, -5.0)]
        .iter()
        .map(|(e, n)| {
            let p = at.offset_m(*e, *n);
            [p.lon, p.lat]
        })
        .collect();
    let gln = gln("952000000777");
    let orchard = json!({
        "id": "DL-XSS",
        "name": format!("Vườn {SCRIPT}{BREAKOUT}"),
        "owner": SCRIPT,
        "commune": JS_URL,
        "district": END_SCRIPT,
        "province": format!("Đắk Lắk {BREAKOUT}"),
        "planting_area_code": "VN-DLK-0777",
        "gln": gln,
        "boundary": {"type": "Polygon", "coordinates": [ring]},
    });
    let r = send(s, "POST", "/api/orchards", admin, &[], json(orchard)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let tree = json!({"lon": at.lon, "lat": at.lat, "cultivar": format!("Ri6 {BREAKOUT}"), "health": "poor",
        "orchard": "DL-XSS"});
    let r = send(s, "POST", "/api/trees", admin, &[], json(tree)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["properties"]["cultivar"], format!("Ri6 {BREAKOUT}"), "stored as given");
    let id = r.body["id"].as_i64().unwrap();
    let code = r.body["properties"]["code"].as_str().unwrap().to_string();
    let spray = json!({"date": "2026-05-01", "kind": "spray", "product": SCRIPT, "dose": BREAKOUT, "phi_days": 7,
        "target": END_SCRIPT, "note": JS_URL});
    let r = send(s, "POST", &format!("/api/trees/{id}/records"), admin, &[], json(spray)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let fertiliser = json!({"date": "2026-05-02", "kind": "fertiliser", "product": END_SCRIPT, "amount_kg": 2.0});
    let r = send(s, "POST", &format!("/api/trees/{id}/records"), admin, &[], json(fertiliser)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut lot = lot_body("DL-XSS");
    lot["packing_house"] = json!("<script>alert(1)</script>");
    lot["lab_results"] = json!([
        {"analyte": "cadmium", "value_mg_per_kg": 0.01, "laboratory": SCRIPT, "tested_on": "2026-06-08",
            "report_no": BREAKOUT},
        {"analyte": "auramine_o", "value_mg_per_kg": null, "laboratory": END_SCRIPT, "tested_on": "2026-06-08"}
    ]);
    let r = send(s, "POST", "/api/lots", admin, &[], json(lot.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let lot_code = r.body["lot"]["code"].as_str().unwrap().to_string();
    let url = r.body["url"].as_str().unwrap();
    let gs1_lot = url[url.find("/01/").unwrap()..].split('?').next().unwrap().to_string();
    let r = send(s, "POST", "/api/lots", admin, &[], json(lot)).await;
    let revoked = r.body["lot"]["code"].as_str().unwrap().to_string();
    let reason = json!({"reason": format!("{SCRIPT} {BREAKOUT} {END_SCRIPT}")});
    let r = send(s, "POST", &format!("/api/lots/{revoked}/revoke"), admin, &[], json(reason)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(s, "POST", "/api/tags", admin, &[], json(json!({"count": 1}))).await;
    let tag = r.body["codes"][0].as_str().unwrap().to_string();

    // The same pages for plain data, to compare their markup with.
    let plain_code = get(s, &format!("/api/trees/{}", w.trees_a[0]), None).await.body["properties"]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(s, "POST", "/api/lots", admin, &[], json(lot_body("DL-A"))).await;
    let plain_lot = r.body["lot"]["code"].as_str().unwrap().to_string();

    let hostile_sig = q(&format!("{BREAKOUT}{END_SCRIPT}"));
    let hostile_host = "om.example\"><script>alert(3)</script>";
    // (page, request headers, the same page for plain data)
    type Page<'a> = (String, Vec<(&'a str, &'a str)>, Option<String>);
    let mut pages: Vec<Page<'_>> = vec![];
    for lang in ["vi", "en", "zh"] {
        pages.push((format!("/t/{code}?lang={lang}"), vec![], Some(format!("/t/{plain_code}?lang={lang}"))));
        pages.push((format!("/l/{lot_code}?lang={lang}"), vec![], Some(format!("/l/{plain_lot}?lang={lang}"))));
        pages.push((format!("/l/{revoked}?lang={lang}"), vec![], None));
    }
    pages.extend([
        (format!("/414/{gln}/254/{code}?lang=en"), vec![], None),
        (format!("{gs1_lot}?lang=en"), vec![], None),
        (format!("/t/{code}?lang=en&8030={hostile_sig}"), vec![], Some(format!("/t/{plain_code}?lang=en&8030=x"))),
        (format!("/t/{code}?lang=en"), vec![("host", hostile_host)], Some(format!("/t/{plain_code}?lang=en"))),
        (
            format!("/t/{tag}?lang=en&8030={hostile_sig}"),
            vec![("host", hostile_host)],
            Some(format!("/t/{tag}?lang=vi")),
        ),
        (format!("/t/{}?lang=en", segment(SCRIPT)), vec![], None),
        (format!("/l/{}?lang=en", segment(BREAKOUT)), vec![], None),
        (format!("/414/{}/254/{code}", segment(END_SCRIPT)), vec![], None),
        (format!("/t/{code}?lang=en&linkType={}", q(SCRIPT)), vec![], None),
        ("/about".to_string(), vec![("host", hostile_host)], None),
        ("/".to_string(), vec![("host", hostile_host)], None),
    ]);
    for (uri, headers, plain) in &pages {
        let r = send(s, "GET", uri, None, headers, vec![]).await;
        assert!(r.status.as_u16() < 500, "{uri}: {}", r.status);
        if let Some(location) = r.headers.get("location") {
            let location = location.to_str().unwrap();
            assert!(location.starts_with('/') || location.starts_with("http"), "{uri} -> {location}");
            assert!(!location.contains('<') && !location.contains('"'), "{uri} -> {location}");
            continue;
        }
        let html = text(&r);
        if r.headers["content-type"].to_str().unwrap().starts_with("application/json") {
            continue; // an error answered as JSON, not a page
        }
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{uri}");
        assert_inert(&html, uri);
        for island in json_islands(&html) {
            assert!(!island.contains('<') && !island.contains('>'), "{uri}: markup in a JSON island: {island}");
            serde_json::from_str::<Value>(island).unwrap();
        }
        if let Some(plain) = plain {
            let reference = text(&send(s, "GET", plain, None, &[], vec![]).await);
            assert_eq!(tag_counts(&html), tag_counts(&reference), "{uri}: the data added or removed tags");
        }
    }
    // The values did reach the pages, escaped.
    let tree_page = text(&get(s, &format!("/t/{code}?lang=en"), None).await);
    for shown in [
        "Vườn &lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
        "javascript:alert(1)",
    ] {
        assert!(tree_page.contains(shown), "the tree page lacks {shown}");
    }
    assert!(tree_page.contains("&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;"), "record product");
    let lot_page = text(&get(s, &format!("/l/{revoked}?lang=en"), None).await);
    assert!(lot_page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "lab, packing house and reason are shown");

    // OGC API answers JSON only (no HTML pages to escape), whatever the client asks for.
    for uri in [
        "/ogc",
        "/ogc/collections/orchards/items",
        "/ogc/collections/orchards/items/DL-XSS",
        "/ogc/collections/trees/items?f=html",
    ] {
        let r = send(s, "GET", uri, None, &[("accept", "text/html")], vec![]).await;
        let content_type = r.headers["content-type"].to_str().unwrap();
        assert!(!content_type.contains("html"), "{uri} answers {content_type}");
    }

    // The label sheet is an SVG served from this origin: its text is escaped too.
    let r = send(s, "GET", "/api/labels?orchard=DL-XSS&format=svg", admin, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let svg = text(&r);
    assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script"), "label sheet");
    assert!(!svg.contains("<img"));

    // The map popup is built from the tree's JSON with DOM nodes and text, never parsed HTML.
    let r = get(s, "/map/app.js", None).await;
    let js = text(&r);
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        ".setHTML(",
        "setHTMLUnsafe",
        "createContextualFragment",
        "DOMParser",
        "eval(",
        "new Function",
        "srcdoc",
    ] {
        assert!(!js.contains(sink), "app.js uses {sink}");
    }
    assert!(js.contains(".setDOMContent(") && js.contains("document.createElement("), "the popup is built from nodes");
    // Every link or source the page builds from data goes through encodeURIComponent.
    for attr in ["href: ", "src: "] {
        for (at, _) in js.match_indices(attr) {
            let line = js[at..].lines().next().unwrap();
            assert!(
                line.starts_with(&format!("{attr}'/")) && line.contains("encodeURIComponent("),
                "app.js builds an attribute from data without encoding it: {line}"
            );
        }
    }
    // The popup shows the tree's text as given, for the page to insert as text.
    let tree = get(s, &format!("/api/trees/{id}"), None).await;
    assert_eq!(tree.body["properties"]["cultivar"], format!("Ri6 {BREAKOUT}"));
}

// ------------------------------------------------------------------ SQL metacharacters

const NASTY: [&str; 9] = ["'", "\"; DROP TABLE trees;--", "' OR '1'='1", "%", "_", "\\", "\0", "%' OR 1=1 --", "*"];

/// The attribute filters of search, OGC items and exports (every one the service reads).
const FILTERS: [&str; 11] = api::params::Params::FILTER_NAMES;

fn matched(r: &Reply) -> u64 {
    r.body["numberMatched"].as_u64().unwrap_or_else(|| panic!("no numberMatched: {}", r.body))
}

#[tokio::test]
async fn sql_metacharacters_in_filters_and_values_are_plain_text() {
    let w = world().await;
    let s = &unlimited(&w.state);
    let admin = Some(w.admin.as_str());
    // Orchards whose names hold the characters, two trees each, 3 km and more from the others.
    let named = [
        ("DL-PCT", "Vườn 100% sạch", "Xã 50%"),
        ("DL-UND", "Vườn_Gạch", "Ea Tiêu"),
        ("DL-APO", "Vườn Ông Tư's", "Ea Tiêu"),
        ("DL-BSL", "Vườn Back\\slash", "Ea Tiêu"),
        ("DL-DRP", "\"; DROP TABLE trees;--", "'; DELETE FROM orchards;--"),
    ];
    for (i, (id, name, commune)) in named.iter().enumerate() {
        let body = json!({"id": id, "name": name, "commune": commune, "district": "Cư Kuin", "province": "Đắk Lắk",
            "owner": "O'Neil"});
        let r = send(s, "POST", "/api/orchards", admin, &[], json(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.body);
        for k in 0..2 {
            let p = ORIGIN.offset_m(3000.0 + 300.0 * i as f64 + 10.0 * k as f64, 0.0);
            let tree = json!({"lon": p.lon, "lat": p.lat, "cultivar": "Ri6", "health": "good", "orchard": id});
            let r = send(s, "POST", "/api/trees", admin, &[], json(tree)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
        // Stored and read back exactly.
        let r = get(s, &format!("/api/orchards/{id}"), admin).await;
        assert_eq!(
            (r.body["properties"]["name"].as_str(), r.body["properties"]["commune"].as_str()),
            (Some(*name), Some(*commune))
        );
    }
    let total = w.trees_a.len() + w.trees_b.len() + 2 * named.len();
    // Text values in a record, a user name and a lot go into the database as values.
    let record = json!({"date": "2026-03-01", "kind": "spray", "product": "'; DROP TABLE tree_records;--",
        "dose": "50% \\ _x_", "phi_days": 7, "note": "' OR '1'='1"});
    let r = send(s, "POST", &format!("/api/trees/{}/records", w.trees_a[0]), admin, &[], json(record)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = get(s, &format!("/api/trees/{}/records", w.trees_a[0]), None).await;
    assert_eq!(r.body["records"][0]["product"], "'; DROP TABLE tree_records;--");
    assert_eq!(r.body["records"][0]["dose"], "50% \\ _x_");
    let user = "O'Brien\"; DROP TABLE users;--";
    let r = send(s, "POST", "/api/users", admin, &[], json(json!({"name": user, "role": "volunteer"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = send(s, "DELETE", &format!("/api/users/{}", segment(user)), admin, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(s, "POST", "/api/users", admin, &[], json(json!({"name": "a\u{0}b", "role": "volunteer"}))).await;
    assert!(r.status.is_client_error(), "a NUL in an account name: {}", r.body);

    // A pattern character matches itself only: a LIKE or a glob would match everything.
    for (needle, want) in [
        ("%", 2),
        ("_", 2),
        ("'", 2),
        ("\\", 2),
        ("\"; DROP TABLE trees;--", 2),
        ("' OR '1'='1", 0),
        ("%' OR 1=1 --", 0),
        ("*", 0),
        ("\0", 0),
        ("%%", 0),
    ] {
        let r = get(s, &format!("/api/trees?q={}&limit=1000", q(needle)), None).await;
        assert_eq!(r.status, StatusCode::OK, "q={needle:?}: {}", r.body);
        assert_eq!(matched(&r), want, "search q={needle:?}");
        let r = get(s, &format!("/ogc/collections/trees/items?q={}&limit=1000", q(needle)), None).await;
        assert_eq!(matched(&r), want, "OGC q={needle:?}");
        let r = get(s, &format!("/api/export?format=geojson&q={}", q(needle)), None).await;
        assert_eq!(r.body["features"].as_array().map(Vec::len), Some(want as usize), "export q={needle:?}");
    }
    for (param, value, want) in
        [("commune", "Xã 50%", 2), ("commune", "%", 0), ("commune", "'; DELETE FROM orchards;--", 2)]
    {
        let r = get(s, &format!("/api/trees?{param}={}&limit=1000", q(value)), None).await;
        assert_eq!(matched(&r), want, "{param}={value:?}");
    }
    let r = get(s, &format!("/ogc/collections/orchards/items?name={}", q("Vườn 100% sạch")), None).await;
    assert_eq!(matched(&r), 1);
    let r = get(s, "/ogc/collections/orchards/items?name=%25", None).await;
    assert_eq!(matched(&r), 0, "an orchard name filter of % matches no orchard");

    // Every filter and identifier, with every metacharacter: never a server error.
    let t = tiles::tile_for(ORIGIN, 14).unwrap();
    for nasty in NASTY {
        let (v, p) = (q(nasty), segment(nasty));
        let mut uris: Vec<String> = vec![];
        for param in FILTERS.iter().chain(["bbox", "sort", "cursor", "limit"].iter()) {
            uris.push(format!("/api/trees?{param}={v}"));
            uris.push(format!("/ogc/collections/trees/items?{param}={v}"));
            uris.push(format!("/api/export?format=csv&{param}={v}"));
        }
        for param in ["cultivar", "health", "orchard"] {
            uris.push(format!("/tiles/trees/14/{}/{}.mvt?{param}={v}", t.x(), t.y()));
            uris.push(format!("/tiles/trees.json?{param}={v}"));
        }
        for param in ["name", "commune", "district", "province", "planting_area_code", "datetime", "bbox"] {
            uris.push(format!("/ogc/collections/orchards/items?{param}={v}"));
        }
        uris.extend([
            format!("/ogc/collections/trees/items?code={v}"),
            format!("/ogc/collections/trees/items?planted_year={v}"),
            format!("/api/export?format={v}"),
            format!("/api/lots?orchard={v}"),
            format!("/api/epcis/events?orchard={v}"),
            format!("/api/epcis/events?tree={v}"),
            format!("/api/epcis/events?lot={v}"),
            format!("/api/trees/nearest?lon={v}&lat=12&k=3"),
            format!("/api/trees/{}/records?kind={v}", w.trees_a[0]),
            format!("/api/trees/{p}"),
            format!("/api/trees/{p}/records"),
            format!("/api/trees/{p}/history"),
            format!("/api/orchards/{p}"),
            format!("/api/lots/{p}"),
            format!("/api/tags/{p}"),
            format!("/api/photos/{p}"),
            format!("/ogc/collections/{p}"),
            format!("/ogc/collections/trees/items/{p}"),
            format!("/t/{p}"),
            format!("/l/{p}"),
            format!("/tiles/pack?bbox={v}"),
            format!("/api/labels?orchard={v}"),
        ]);
        for uri in &uris {
            let r = send(s, "GET", uri, admin, &[], vec![]).await;
            assert!(r.status.as_u16() < 500, "{uri}: {} {}", r.status, text(&r));
        }
        let r = send(s, "DELETE", &format!("/api/users/{p}"), admin, &[], vec![]).await;
        assert!(r.status.is_client_error(), "DELETE /api/users/{p}: {}", r.body);
        let r = send(s, "PATCH", &format!("/api/orchards/{p}"), admin, &[], json(json!({"district": nasty}))).await;
        assert!(r.status.is_client_error(), "PATCH /api/orchards/{p}: {}", r.body);
    }
    // A NUL inside a stored value: kept as given, or refused; never a server error, and the data still loads.
    let body = json!({"id": "DL-NUL", "name": "Vườn\u{0}NUL", "province": "Đắk Lắk"});
    let r = send(s, "POST", "/api/orchards", admin, &[], json(body)).await;
    assert!(r.status.as_u16() < 500, "{}", r.body);
    if r.status.is_success() {
        assert_eq!(get(s, "/api/orchards/DL-NUL", None).await.body["properties"]["name"], "Vườn\u{0}NUL");
    }

    // Tables intact: every tree, orchard and account is still there, read from the database.
    assert_eq!(stored_trees(s).await, total);
    let reloaded = api::TreeCache::load(s.store.as_ref()).await.unwrap();
    assert!(reloaded.orchards().len() >= 2 + named.len());
    let r = send(s, "GET", "/api/users", admin, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<&str> = r.body["users"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    for name in ["Admin", "Lan", "Ông Tám"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(send(s, "GET", "/api/me", Some(&w.farmer), &[], vec![]).await.status, StatusCode::OK);
    let r = get(s, &format!("/api/trees/{}/records", w.trees_a[0]), None).await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 1);
}

// ------------------------------------------------------------------ path traversal

#[tokio::test]
async fn traversal_in_asset_tile_and_photo_paths_is_refused() {
    let w = world().await;
    let mut state = unlimited(&w.state);
    let vendor = vendor_folder(w.dir.path());
    let secret = w.dir.path().join("secret.txt");
    state.map = Arc::new(MapSettings { basemap: None, assets: Some(vendor.clone()) });
    let s = &state;
    // What is meant to be served is.
    let r = get(s, "/map/vendor/maplibre-gl.js", None).await;
    assert_eq!((r.status, text(&r).as_str()), (StatusCode::OK, "/* MAPLIBRE-JS-OK */"));
    let r = get(s, "/map/vendor/maplibre-gl.css", None).await;
    assert_eq!((r.status, text(&r).as_str()), (StatusCode::OK, "/* MAPLIBRE-CSS-OK */"));

    let absolute = secret.to_str().unwrap().to_string();
    let encoded_absolute = segment(&absolute);
    let attempts: Vec<String> = vec![
        "/map/vendor/../secret.txt".into(),
        "/map/vendor/../../secret.txt".into(),
        "/map/vendor/..%2fsecret.txt".into(),
        "/map/vendor/..%2Fsecret.txt".into(),
        "/map/vendor/%2e%2e%2fsecret.txt".into(),
        "/map/vendor/%2e%2e/secret.txt".into(),
        "/map/vendor/..%5csecret.txt".into(),
        "/map/vendor/%2e%2e%5csecret.txt".into(),
        "/map/vendor/..%252fsecret.txt".into(),
        "/map/vendor/%c0%ae%c0%ae/secret.txt".into(),
        "/map/vendor/....//secret.txt".into(),
        "/map/vendor/maplibre-gl.js/../../secret.txt".into(),
        "/map/vendor/maplibre-gl.js%00/../../secret.txt".into(),
        "/map/vendor/maplibre-gl.js%2f..%2f..%2fsecret.txt".into(),
        "/map/vendor/other.txt".into(),
        "/map/vendor/./other.txt".into(),
        "/map/vendor/%2e/other.txt".into(),
        format!("/map/vendor/{absolute}"),
        format!("/map/vendor/{encoded_absolute}"),
        format!("/map/vendor//{encoded_absolute}"),
        "/map/vendor/%2Fetc%2Fpasswd".into(),
        "/map/vendor//etc/passwd".into(),
        "/map/../../etc/passwd".into(),
        "/map/%2e%2e/%2e%2e/etc/passwd".into(),
        "/map/..%2f..%2fetc%2fpasswd".into(),
        "/map/app.js/../../../etc/passwd".into(),
        "/map/..%5c..%5cetc%5cpasswd".into(),
        "/..%2f..%2fetc%2fpasswd".into(),
        "/%2e%2e/%2e%2e/etc/passwd".into(),
        format!("/{encoded_absolute}"),
        // Tiles are drawn from memory: no path reaches a file.
        "/tiles/trees/../../../etc/passwd".into(),
        "/tiles/trees/%2e%2e/%2e%2e/passwd.mvt".into(),
        "/tiles/trees/1/0/..%2f..%2fetc%2fpasswd".into(),
        "/tiles/trees/1/0/0.mvt/../../../../etc/passwd".into(),
        "/tiles/trees/0/0/%2e%2e%5c%2e%2e%5csecret.mvt".into(),
        "/tiles/..%2f..%2fetc/passwd".into(),
        "/tiles/trees/0/0/..%2f..%2f..%2fsecret.txt".into(),
        format!("/tiles/trees/0/0/{encoded_absolute}"),
        format!("/tiles/trees/0/0/{encoded_absolute}.mvt"),
        "/tiles/trees.json/../../etc/passwd".into(),
        // Photos are looked up by their SHA-256 only.
        "/api/photos/..%2f..%2fapi.db".into(),
        "/api/photos/..%2Fapi.db".into(),
        "/api/photos/%2e%2e%2f%2e%2e%2fapi.db?size=thumb".into(),
        "/api/photos/..%5c..%5capi.db".into(),
        format!("/api/photos/{encoded_absolute}"),
        format!("/api/photos/{}%2f..%2f..%2f..%2fapi.db", "a".repeat(64)),
        format!("/api/photos/{}", "A".repeat(64)),
    ];
    for uri in &attempts {
        let r = get(s, uri, None).await;
        let body = text(&r);
        assert!(r.status.is_client_error(), "{uri}: {} {body}", r.status);
        for leaked in ["TOP-SECRET-DATA", "NOT-SERVED-FILE", "root:x:", "SQLite format 3"] {
            assert!(!body.contains(leaked), "{uri} served {leaked}");
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "TOP-SECRET-DATA", "the secret is really there");
}

// ------------------------------------------------------------------ oversized and compressed uploads

/// A gzip member whose deflate stream starts with `head` and then inflates to `mib` MiB of
/// zeros, built from one compressed MiB repeated (full flushes make the pieces identical),
/// so it is cheap to make. Its CRC and length are wrong on purpose: a server that reads it
/// to the end reports a corrupt body (400), not 413.
fn gzip_bomb(head: &[u8], mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    fn deflate(c: &mut Compress, mut input: &[u8], flush: FlushCompress) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            out.reserve(64 * 1024);
            let before = c.total_in();
            c.compress_vec(input, &mut out, flush).unwrap();
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
        }
    }
    let mut c = Compress::new(Compression::best(), false);
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(deflate(&mut c, head, FlushCompress::Full));
    let zeros = vec![0u8; 1 << 20];
    let piece = deflate(&mut c, &zeros, FlushCompress::Full);
    assert_eq!(piece, deflate(&mut c, &zeros, FlushCompress::Full), "repeatable pieces");
    for _ in 1..mib {
        out.extend_from_slice(&piece);
    }
    out.extend(deflate(&mut c, &[], FlushCompress::Finish));
    out.extend([0; 8]);
    out
}

#[tokio::test]
async fn oversized_and_compressed_bomb_uploads_get_413_after_reading_at_most_the_limit() {
    let w = world().await;
    let limit = 4 << 20;
    let mut state =
        w.state.clone().with_hygiene(Hygiene { max_import_bytes: limit, rate_per_minute: 0, ..Hygiene::default() });
    state.max_photo_bytes = 64 * 1024;
    let s = &state;
    let before = stored_trees(s).await;
    let auth = format!("Bearer {}", w.volunteer);

    // A plain survey over the limit, with and without a Content-Length.
    let (content_type, body) = multipart("big.csv", survey_csv(150_000, 500.0).as_bytes());
    assert!(body.len() > limit);
    let headers = [("content-type", content_type.as_str()), ("authorization", auth.as_str())];
    let r = call(s, request("POST", "/api/imports", &headers, Body::from(body.clone())), None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "too_large");
    let pulled = Arc::new(AtomicUsize::new(0));
    let r = call(s, request("POST", "/api/imports", &headers, streamed(body, 64 * 1024, pulled.clone())), None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(pulled.load(Ordering::SeqCst) <= limit + 128 * 1024, "read {} bytes", pulled.load(Ordering::SeqCst));

    // 10 MB of gzip that inflates to 10 GiB of zeros inside the file part, sent in 1 MiB pieces
    // (each inflates to about 1 GiB).
    let (content_type, head) = multipart("bomb.csv", b"lon,lat,cultivar,health,orchard\n");
    let head = &head[..head.len() - "\r\n--SecBoundary7x--\r\n".len()];
    let bomb = gzip_bomb(head, 10 * 1024);
    assert!(bomb.len() > 9_000_000 && bomb.len() < 12_000_000, "{} bytes", bomb.len());
    let gz_headers =
        [("content-type", content_type.as_str()), ("authorization", auth.as_str()), ("content-encoding", "gzip")];
    let big_limit = 32 << 20;
    let roomy =
        s.clone().with_hygiene(Hygiene { max_import_bytes: big_limit, rate_per_minute: 0, ..Hygiene::default() });
    let pulled = Arc::new(AtomicUsize::new(0));
    let req = request("POST", "/api/imports", &gz_headers, streamed(bomb, 1 << 20, pulled.clone()));
    let peak = peak_from_here();
    let r = call(&roomy, req, None).await;
    let held = peak();
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains(&big_limit.to_string()), "{}", r.body);
    // About 1 KiB of this gzip makes 1 MiB: the server stopped after the limit, not at the end...
    let read = pulled.load(Ordering::SeqCst);
    assert!(read < 2 << 20, "read {read} compressed bytes of the bomb");
    // ... and streamed the 32 MiB it decoded to the spool file, holding a few MiB at most.
    assert!(held < 8 << 20, "the request held {held} bytes at its peak");

    // A gzip bomb as a photo: the photo limit counts decoded bytes too.
    let mut image = png();
    image.extend(vec![0u8; 1 << 20]);
    let uri = format!("/api/trees/{}/photos", w.trees_a[0]);
    let photo_headers = [("content-type", "image/png"), ("authorization", auth.as_str()), ("content-encoding", "gzip")];
    let r = call(s, request("POST", &uri, &photo_headers, Body::from(gzip(&image))), None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    let r = call(s, request("POST", &uri, &photo_headers[..2], Body::from(image)), None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    let pulled = Arc::new(AtomicUsize::new(0));
    let r = call(
        s,
        request("POST", &uri, &photo_headers[..2], streamed(vec![0x89; 8 << 20], 16 * 1024, pulled.clone())),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(pulled.load(Ordering::SeqCst) < 1 << 20, "read {} bytes of an 8 MiB photo", pulled.load(Ordering::SeqCst));
    // A JSON body over its limit, gzip-encoded or not.
    let big = format!("{{\"name\":\"{}\",\"role\":\"volunteer\"}}", "x".repeat(2 << 20)).into_bytes();
    let admin_auth = format!("Bearer {}", w.admin);
    for encoded in [false, true] {
        let (body, coding) = if encoded { (gzip(&big), "gzip") } else { (big.clone(), "identity") };
        let headers = [
            ("content-type", "application/json"),
            ("authorization", admin_auth.as_str()),
            ("content-encoding", coding),
        ];
        let r = call(s, request("POST", "/api/users", &headers, Body::from(body)), None).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "gzip {encoded}: {}", r.body);
    }
    assert_eq!(stored_trees(s).await, before, "nothing was imported");
}

#[tokio::test]
async fn gzip_encoded_imports_are_decoded_and_other_encodings_get_415() {
    let w = world().await;
    let s = &unlimited(&w.state);
    let before = stored_trees(s).await;
    let auth = format!("Bearer {}", w.volunteer);
    let import = |name: &str, csv: String, coding: Option<&str>, compress: bool| {
        let (content_type, body) = multipart(name, csv.as_bytes());
        let body = if compress { gzip(&body) } else { body };
        let mut headers = vec![("content-type".to_string(), content_type), ("authorization".to_string(), auth.clone())];
        if let Some(c) = coding {
            headers.push(("content-encoding".into(), c.into()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        request("POST", "/api/imports", &headers, Body::from(body))
    };
    // Decoded and imported like the plain file.
    let r = call(s, import("gz.csv", survey_csv(30, 500.0), Some("gzip"), true), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["read"].as_u64(), r.body["inserted"].as_u64()), (Some(30), Some(30)), "{}", r.body);
    let r = call(s, import("xgz.csv", survey_csv(5, 800.0), Some("x-gzip"), true), None).await;
    assert_eq!(r.body["inserted"], 5, "{}", r.body);
    let r = call(s, import("id.csv", survey_csv(4, 1200.0), Some("identity"), false), None).await;
    assert_eq!(r.body["inserted"], 4, "{}", r.body);
    // Any body may come gzip-encoded: a JSON write too.
    let p = ORIGIN.offset_m(2500.0, 300.0);
    let tree = json(json!({"lon": p.lon, "lat": p.lat, "cultivar": "Ri6", "health": "good", "orchard": "DL-A"}));
    let headers =
        [("content-type", "application/json"), ("authorization", auth.as_str()), ("content-encoding", "gzip")];
    let r = call(s, request("POST", "/api/trees", &headers, Body::from(gzip(&tree))), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Two gzip members in a row are one body (RFC 1952).
    let (content_type, body) = multipart("two.csv", survey_csv(6, 1500.0).as_bytes());
    let (first, second) = body.split_at(body.len() / 2);
    let mut members = gzip(first);
    members.extend(gzip(second));
    let headers =
        [("content-type", content_type.as_str()), ("authorization", auth.as_str()), ("content-encoding", "gzip")];
    let r = call(s, request("POST", "/api/imports", &headers, Body::from(members)), None).await;
    assert_eq!(r.body["inserted"], 6, "{}", r.body);
    assert_eq!(stored_trees(s).await, before + 30 + 5 + 4 + 1 + 6);

    // Broken gzip: 400 naming the problem, nothing imported.
    let (content_type, body) = multipart("broken.csv", survey_csv(7, 1800.0).as_bytes());
    let full = gzip(&body);
    let mut garbage = full[..10].to_vec();
    garbage.extend(b"this is not deflate data at all, not at all");
    let mut bad_crc = full.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    let mut long_name = vec![0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 0xff];
    long_name.extend(vec![b'a'; 200_000]);
    for (what, data) in [
        ("truncated", full[..full.len() / 2].to_vec()),
        ("not deflate", garbage),
        ("wrong CRC", bad_crc),
        ("not gzip", body.clone()),
        ("a header name that never ends", long_name),
    ] {
        let headers =
            [("content-type", content_type.as_str()), ("authorization", auth.as_str()), ("content-encoding", "gzip")];
        let r = call(s, request("POST", "/api/imports", &headers, Body::from(data)), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("gzip"), "{what}: {}", r.body);
    }
    assert_eq!(stored_trees(s).await, before + 46, "a broken upload imported rows");

    // Any other coding: 415 before the body is read, on every route.
    for coding in ["br", "deflate", "compress", "zstd", "gzip, gzip", "gzip, br", "identity, deflate", "bogus"] {
        let r = call(s, import("other.csv", survey_csv(3, 2100.0), Some(coding), false), None).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{coding}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "unsupported_media_type");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("Content-Encoding"), "{}", r.body);
        let headers =
            [("content-type", "application/json"), ("authorization", auth.as_str()), ("content-encoding", coding)];
        let tree = json(json!({"lon": 108.06, "lat": 12.69, "cultivar": "Ri6", "health": "good", "orchard": "DL-A"}));
        let r = call(s, request("POST", "/api/trees", &headers, Body::from(tree)), None).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{coding}: {}", r.body);
    }
    let mut req = import("other.csv", survey_csv(3, 2100.0), None, false);
    req.headers_mut().insert("content-encoding", HeaderValue::from_bytes(b"gz\xffip").unwrap());
    assert_eq!(call(s, req, None).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(stored_trees(s).await, before + 46);
}

// ------------------------------------------------------------------ photos must be images

/// A baseline JPEG (8 x 8 grey), written by hand: enough structure for the decoder.
fn truncated_jpeg() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
    // A quantisation table, then a frame header, cut before the scan.
    j.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]);
    j.extend([1u8; 64]);
    j.extend([0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00]);
    j
}

#[tokio::test]
async fn photo_uploads_that_are_not_images_are_refused_naming_the_problem() {
    let w = world().await;
    let s = &unlimited(&w.state);
    let tree = w.trees_a[0];
    let uri = format!("/api/trees/{tree}/photos");
    let mut png_garbage = png()[..16].to_vec();
    png_garbage.extend(b"<html><script>alert(1)</script></html>".repeat(20));
    let mut png_cut = png();
    png_cut.truncate(png_cut.len() - 20);
    const NOT_IMAGE: &[&str] = &["JPEG or PNG"];
    let cases: Vec<(&str, &str, Vec<u8>, &[&str])> = vec![
        ("HTML", "image/jpeg", b"<!doctype html><html><script>alert(1)</script></html>".to_vec(), NOT_IMAGE),
        (
            "SVG with a script",
            "image/png",
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec(),
            NOT_IMAGE,
        ),
        ("PDF", "image/jpeg", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n".to_vec(), NOT_IMAGE),
        ("GIF", "image/gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00;".to_vec(), NOT_IMAGE),
        ("empty", "image/png", vec![], &["empty"]),
        ("a truncated JPEG", "image/jpeg", truncated_jpeg(), &["unusable image"]),
        ("a PNG header and garbage", "image/png", png_garbage, &["unusable image"]),
        ("a PNG cut short", "image/png", png_cut, &["unusable image"]),
    ];
    for (what, content_type, bytes, words) in cases {
        let r = send(s, "POST", &uri, Some(&w.volunteer), &[("content-type", content_type)], bytes).await;
        assert!(matches!(r.status.as_u16(), 400 | 415 | 422), "{what}: {} {}", r.status, r.body);
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(words.iter().any(|w| message.contains(w)), "{what}: {message}");
    }
    // Nothing was kept: no photo record, no file.
    let records = get(s, &format!("/api/trees/{tree}/records?kind=photo"), None).await;
    assert_eq!(records.body["records"], json!([]), "{}", records.body);
    let files = walk(&w.dir.path().join("photos"));
    assert!(files.is_empty(), "{files:?}");
    // A real image still goes in.
    let r = send(s, "POST", &uri, Some(&w.volunteer), &[("content-type", "image/png")], png()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

// ------------------------------------------------------------------ private fields

/// Everything a response could carry, as text: the body (gunzipped when encoded), header
/// values, and the strings inside vector tiles and offline packs.
fn readable(r: &Reply) -> String {
    let mut out: Vec<String> = r.headers.values().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    let mut bytes = r.bytes.clone();
    if r.headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut d = flate2::read::GzDecoder::new(&r.bytes[..]);
        bytes.clear();
        std::io::Read::read_to_end(&mut d, &mut bytes).unwrap();
    }
    out.push(String::from_utf8_lossy(&bytes).into_owned());
    let content_type = r.headers.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    if content_type == tiles::MVT_CONTENT_TYPE && !bytes.is_empty() {
        out.push(mvt_strings(&bytes));
    }
    if content_type == "application/vnd.pmtiles" {
        let reader = tiles::pmtiles::PmtilesReader::new(&bytes).unwrap();
        out.push(reader.metadata().unwrap());
        let h = reader.header().clone();
        let b = h.bounds();
        for z in h.min_zoom..=h.max_zoom {
            let (a, c) = (
                tiles::tile_for(LonLat::new(b.min_lon, b.max_lat), z).unwrap(),
                tiles::tile_for(LonLat::new(b.max_lon, b.min_lat), z).unwrap(),
            );
            for x in a.x()..=c.x() {
                for y in a.y()..=c.y() {
                    let id = tiles::TileId::new(u32::from(z), x, y).unwrap();
                    if let Some(gz) = reader.tile(id).unwrap() {
                        let mut tile = vec![];
                        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut tile).unwrap();
                        out.push(mvt_strings(&tile));
                    }
                }
            }
        }
    }
    out.join("\n")
}

/// Every key and string value of a vector tile.
fn mvt_strings(bytes: &[u8]) -> String {
    let tile = tiles::mvt::decode(bytes).unwrap();
    let mut out = vec![];
    for layer in &tile.layers {
        out.push(layer.name.clone());
        out.extend(layer.keys.iter().cloned());
        out.extend(layer.values.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    out.join("\n")
}

/// Collects the values of every member named `name`, at any depth.
fn members(v: &Value, name: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == name {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_string());
                    }
                }
                members(v, name, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| members(v, name, out)),
        _ => {}
    }
}

#[tokio::test]
async fn private_fields_never_appear_in_public_answers() {
    let mut w = world().await;
    let key_file = w.dir.path().join("keys.json");
    w.state.trace = Arc::new(api::trace::Trace::from_key_file(&key_file, None).unwrap());
    w.state.map = Arc::new(MapSettings { basemap: None, assets: Some(vendor_folder(w.dir.path())) });
    let s = &unlimited(&w.state);
    let admin = Some(w.admin.as_str());

    // An orchard whose owner is recorded with a phone number, with trees, care, a photo, a lot, a tag.
    let owner = "Phạm Thị Kín PRIVOWNER7, 0977 555 321";
    let at = ORIGIN.offset_m(5000.0, 2000.0);
    let ring: Vec<[f64; 2]> = [(-10.0, -10.0), (80.0, -10.0), (80.0, 80.0), (-10.0, 80.0), (-10.0, -10.0)]
        .iter()
        .map(|(e, n)| {
            let p = at.offset_m(*e, *n);
            [p.lon, p.lat]
        })
        .collect();
    let gln = gln("952000000555");
    let orchard = json!({"id": "DL-P", "name": "Vườn Kín", "owner": owner, "commune": "Ea Tiêu", "district": "Cư Kuin",
        "province": "Đắk Lắk", "planting_area_code": "VN-DLK-0555", "gln": gln,
        "boundary": {"type": "Polygon", "coordinates": [ring]}});
    let r = send(s, "POST", "/api/orchards", admin, &[], json(orchard)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut ids = vec![];
    for i in 0..3 {
        let p = at.offset_m(10.0 * i as f64, 10.0);
        let tree = json!({"lon": p.lon, "lat": p.lat, "cultivar": "Musang King", "health": "good", "orchard": "DL-P"});
        let r = send(s, "POST", "/api/trees", admin, &[], json(tree)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_i64().unwrap());
    }
    let id = ids[0];
    let code = get(s, &format!("/api/trees/{id}"), None).await.body["properties"]["code"].as_str().unwrap().to_string();
    let record = json!({"date": "2026-05-01", "kind": "spray", "product": "Abamectin", "dose": "20 ml", "phi_days": 7});
    let r = send(s, "POST", &format!("/api/trees/{id}/records"), admin, &[], json(record)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = send(s, "POST", &format!("/api/trees/{id}/photos"), admin, &[("content-type", "image/png")], png()).await;
    let photo = r.body["photo"]["sha256"].as_str().unwrap().to_string();
    let r = send(s, "POST", "/api/lots", admin, &[], json(lot_body("DL-P"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let lot = r.body["lot"]["code"].as_str().unwrap().to_string();
    let url = r.body["url"].as_str().unwrap();
    let gs1_lot = url[url.find("/01/").unwrap()..].split('?').next().unwrap().to_string();
    let r = send(s, "POST", "/api/tags", admin, &[], json(json!({"count": 1}))).await;
    let tag = r.body["codes"][0].as_str().unwrap().to_string();
    let p = at.offset_m(40.0, 40.0);
    let register =
        json!({"lon": p.lon, "lat": p.lat, "cultivar": "Ri6", "health": "good", "orchard": "DL-P", "note": "cây góc"});
    let r = send(s, "POST", &format!("/api/tags/{tag}/register"), admin, &[], json(register)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Signed in, the owner is shown: the data is there to leak.
    let r = get(s, "/api/orchards/DL-P", Some(&w.farmer)).await;
    assert_eq!(r.body["properties"]["owner"], owner);

    let mut secrets: Vec<String> = ["PRIVOWNER7", "0977 555 321", "Phạm Thị Kín", "Nguyễn Văn Tám", "0905 123 456"]
        .into_iter()
        .chain(["Trần Thị Hai", "0912 000 111"])
        .map(String::from)
        .collect();
    let tokens = [w.admin.clone(), w.volunteer.clone(), w.farmer.clone()];
    for t in &tokens {
        secrets.push(t.clone());
        secrets.push(t[3..].to_string());
        secrets.push(api::auth::token_hash(t).iter().map(|b| format!("{b:02x}")).collect());
    }
    let mut seeds = vec![];
    members(&serde_json::from_str(&std::fs::read_to_string(&key_file).unwrap()).unwrap(), "d", &mut seeds);
    assert!(!seeds.is_empty());
    let token_secrets: Vec<String> = secrets[7..].iter().cloned().chain(seeds.iter().cloned()).collect();
    secrets.extend(seeds);

    let (sw, ne) = (at.offset_m(-100.0, -100.0), at.offset_m(200.0, 200.0));
    let bbox = format!("{},{},{},{}", sw.lon, sw.lat, ne.lon, ne.lat);
    let linkset = [("accept", "application/linkset+json")];
    let uris = |template: &str| -> Vec<(String, &[(&str, &str)])> {
        let one = |u: String| vec![(u, &[][..])];
        match template {
            "/api/trees" => vec![
                ("/api/trees?orchard=DL-P".to_string(), &[][..]),
                (format!("/api/trees?bbox={bbox}"), &[][..]),
                ("/api/trees?q=K%C3%ADn".to_string(), &[][..]),
                (format!("/api/trees?lon={}&lat={}&radius_m=200", at.lon, at.lat), &[][..]),
            ],
            "/api/trees/nearest" => one(format!("/api/trees/nearest?lon={}&lat={}&k=5", at.lon, at.lat)),
            "/api/trees/within" => one(format!("/api/trees/within?lon={}&lat={}&radius_m=100", at.lon, at.lat)),
            "/api/trees/{id}" => vec![(format!("/api/trees/{id}"), &[][..]), (format!("/api/trees/{code}"), &[][..])],
            "/api/trees/{id}/history"
            | "/api/trees/{id}/qr.svg"
            | "/api/trees/{id}/qr.png"
            | "/api/trees/{id}/records" => one(template.replace("{id}", &id.to_string())),
            "/api/photos/{sha256}" => {
                vec![(format!("/api/photos/{photo}"), &[][..]), (format!("/api/photos/{photo}?size=thumb"), &[][..])]
            }
            "/api/orchards/{id}" => one("/api/orchards/DL-P".into()),
            "/api/export" => ["geojson", "csv", "kml", "gpkg"]
                .iter()
                .flat_map(|f| {
                    [
                        (format!("/api/export?format={f}"), &[][..]),
                        (format!("/api/export?format={f}&orchard=DL-P"), &[][..]),
                    ]
                })
                .collect(),
            "/ogc/collections/{collectionId}" => {
                vec![("/ogc/collections/trees".into(), &[][..]), ("/ogc/collections/orchards".into(), &[][..])]
            }
            "/ogc/collections/{collectionId}/items" => vec![
                ("/ogc/collections/trees/items?orchard=DL-P".into(), &[][..]),
                ("/ogc/collections/orchards/items".into(), &[][..]),
                ("/ogc/collections/orchards/items?name=V%C6%B0%E1%BB%9Dn%20K%C3%ADn".into(), &[][..]),
            ],
            "/ogc/collections/{collectionId}/items/{featureId}" => vec![
                (format!("/ogc/collections/trees/items/{id}"), &[][..]),
                ("/ogc/collections/orchards/items/DL-P".into(), &[][..]),
            ],
            "/tiles/pack" => one(format!("/tiles/pack?bbox={bbox}&minzoom=12&maxzoom=17")),
            "/tiles/trees/{z}/{x}/{y}" => (0..=20u8)
                .step_by(2)
                .flat_map(|z| {
                    let t = tiles::tile_for(at, z).unwrap();
                    let mvt = format!("/tiles/trees/{z}/{}/{}.mvt", t.x(), t.y());
                    [(mvt.clone(), &[][..]), (format!("{mvt}?orchard=DL-P"), &[][..])]
                })
                .chain([(
                    format!(
                        "/tiles/trees/16/{}/{}.png",
                        tiles::tile_for(at, 16).unwrap().x(),
                        tiles::tile_for(at, 16).unwrap().y()
                    ),
                    &[][..],
                )])
                .collect(),
            "/t/{code}" => vec![
                (format!("/t/{code}"), &[][..]),
                (format!("/t/{code}?lang=vi"), &[][..]),
                (format!("/t/{code}?lang=en"), &[][..]),
                (format!("/t/{code}?lang=zh"), &[][..]),
                (format!("/t/{code}"), &linkset[..]),
                (format!("/t/{tag}?lang=en"), &[][..]),
            ],
            "/414/{gln}/254/{code}" => vec![
                (format!("/414/{gln}/254/{code}?lang=en"), &[][..]),
                (format!("/414/{gln}/254/{code}"), &linkset[..]),
            ],
            "/l/{code}" => vec![
                (format!("/l/{lot}?lang=vi"), &[][..]),
                (format!("/l/{lot}?lang=en"), &[][..]),
                (format!("/l/{lot}"), &linkset[..]),
            ],
            "/01/{gtin}/10/{lot}" => vec![(format!("{gs1_lot}?lang=zh"), &[][..]), (gs1_lot.clone(), &linkset[..])],
            "/api/lots" => vec![("/api/lots".into(), &[][..]), ("/api/lots?orchard=DL-P".into(), &[][..])],
            "/api/lots/{code}" | "/api/lots/{code}/qr.svg" | "/api/lots/{code}/qr.png" => {
                one(template.replace("{code}", &lot))
            }
            "/api/tags/{code}" => one(format!("/api/tags/{tag}")),
            "/api/labels" => one("/api/labels?orchard=DL-P&format=svg".into()),
            "/api/epcis/events" => vec![
                (format!("/api/epcis/events?tree={code}"), &[][..]),
                (format!("/api/epcis/events?lot={lot}"), &[][..]),
                ("/api/epcis/events?orchard=DL-P".into(), &[][..]),
            ],
            other if !other.contains('{') => one(other.to_string()),
            other => panic!("no public request is written for GET {other}"),
        }
    };
    let mut fetched = 0;
    let mut private_shown = 0;
    let mut tile_strings = String::new();
    for (method, template) in api::ROUTES.iter().filter(|(m, _)| *m == "GET") {
        let access = ACCESS.iter().find(|(m, p, _)| m == method && p == template).map(|(_, _, a)| *a).unwrap();
        for (uri, headers) in uris(template) {
            // Anonymous: nothing private. Signed in as the farmer: the owner may show, never a secret.
            for (who, token, forbidden) in
                [("anonymous", None, &secrets), ("farmer", Some(w.farmer.as_str()), &token_secrets)]
            {
                let mut headers = headers.to_vec();
                headers.push(("accept-encoding", "gzip"));
                let r = send(s, "GET", &uri, token, &headers, vec![]).await;
                if access == Access::Public {
                    assert!(
                        r.status.is_success() || r.status.is_redirection(),
                        "{uri} as {who}: {} {}",
                        r.status,
                        r.body
                    );
                }
                let seen = readable(&r);
                for secret in forbidden.iter() {
                    assert!(!seen.contains(secret.as_str()), "GET {uri} as {who} shows {secret:?}");
                }
                if who == "farmer" && seen.contains("PRIVOWNER7") {
                    // Shown to the signed-in caller only: no shared cache may keep it.
                    let cache = r.headers.get("cache-control").map(|v| v.to_str().unwrap()).unwrap_or_default();
                    assert!(
                        cache.contains("private") || cache.contains("no-store"),
                        "GET {uri}: Cache-Control {cache:?}"
                    );
                    assert!(r.headers.get_all("vary").iter().any(|v| v.to_str().unwrap().contains("Authorization")));
                    private_shown += 1;
                }
                if uri.starts_with("/tiles/") {
                    tile_strings.push_str(&seen);
                }
                if who == "anonymous" && uri.starts_with("/api/export?format=gpkg&") {
                    assert!(seen.contains("Vườn Kín"), "the GeoPackage holds the orchard's public fields");
                }
                fetched += 1;
            }
        }
    }
    assert!(fetched > 150, "{fetched} requests");
    assert!(private_shown >= 2, "the owner was shown to the farmer on {private_shown} reads");
    // The tiles and packs were read: the orchard's public name and id are in them.
    assert!(tile_strings.contains("DL-P") && tile_strings.contains("Musang King"), "tiles were decoded");
}

#[tokio::test]
async fn import_forms_cannot_make_the_server_hold_large_parts_in_memory() {
    let w = world().await;
    let limit = 4 << 20;
    let state =
        w.state.clone().with_hygiene(Hygiene { max_import_bytes: limit, rate_per_minute: 0, ..Hygiene::default() });
    let s = &state;
    let auth = format!("Bearer {}", w.volunteer);
    let boundary = "SecBoundary7x";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let headers = [("content-type", content_type.as_str()), ("authorization", auth.as_str())];
    let csv = survey_csv(3, 700.0);
    let disposition = "Content-Disposition: form-data; name=\"file\"; filename=\"s.csv\"";
    let file_part = format!("--{boundary}\r\n{disposition}\r\n\r\n{csv}\r\n--{boundary}--\r\n");
    let mib3 = "x".repeat(3 << 20);
    // Only the file part is streamed to disk; what comes before it is held while it is parsed.
    for (what, body) in [
        (
            "an option field of 3 MiB",
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"surveyor\"\r\n\r\n{mib3}\r\n{file_part}"),
        ),
        (
            "part headers that never end",
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{mib3}"),
        ),
        ("3 MiB before the first boundary", format!("{mib3}\r\n{file_part}")),
    ] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let r = call(
            s,
            request("POST", "/api/imports", &headers, streamed(body.into_bytes(), 16 * 1024, pulled.clone())),
            None,
        )
        .await;
        assert!(matches!(r.status.as_u16(), 400 | 413), "{what}: {} {}", r.status, r.body);
        let read = pulled.load(Ordering::SeqCst);
        assert!(read <= 256 * 1024, "{what}: the server read {read} bytes before refusing");
    }
    // The same form with short parts is imported, even when it arrives a few bytes at a time
    // (boundaries and blank lines split across pieces).
    let body = format!(
        "preamble\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"surveyor\"\r\n\r\nLan\r\n{file_part}"
    );
    let pulled = Arc::new(AtomicUsize::new(0));
    let r = call(s, request("POST", "/api/imports", &headers, streamed(body.into_bytes(), 7, pulled)), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["inserted"].as_u64(), r.body["read"].as_u64()), (Some(3), Some(3)), "{}", r.body);
}
