//! Shared set-up of the API tests: a temporary SQLite store with two orchards,
//! trees in each, accounts of every role, and a way to send any request.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use geo_core::{Cultivar, Health, LonLat, NewTree, Orchard, OrchardId, Role, polygon_from_ring};
use http_body_util::BodyExt;
use serde_json::Value;
use store::ImportBatch;
use tower::ServiceExt;

/// South-west corner of orchard A; orchard B is 1 km east.
pub const ORIGIN: LonLat = LonLat::new(108.05, 12.68);

/// The world the tests run in.
pub struct World {
    pub dir: tempfile::TempDir,
    pub state: api::AppState,
    pub admin: String,
    pub volunteer: String,
    pub farmer: String,
    /// Tree ids in orchard A (the farmer's) and B.
    pub trees_a: Vec<i64>,
    pub trees_b: Vec<i64>,
}

fn orchard(id: &str, name: &str, owner: &str, at: LonLat, code: &str) -> Orchard {
    Orchard {
        id: OrchardId::new(id).unwrap(),
        name: name.into(),
        owner: owner.into(),
        commune: "Ea Tiêu".into(),
        district: "Cư Kuin".into(),
        province: "Đắk Lắk".into(),
        planting_area_code: Some(code.into()),
        gln: None,
        boundary: Some(polygon_from_ring(&[
            at.offset_m(-5.0, -5.0),
            at.offset_m(100.0, -5.0),
            at.offset_m(100.0, 100.0),
            at.offset_m(-5.0, 100.0),
            at.offset_m(-5.0, -5.0),
        ])),
    }
}

fn trees(orchard: &OrchardId, at: LonLat, n: usize, cultivar: &str) -> Vec<NewTree> {
    (0..n)
        .map(|i| NewTree {
            code: None,
            location: at.offset_m((i % 10) as f64 * 9.0, (i / 10) as f64 * 9.0),
            accuracy_m: Some(3.0),
            cultivar: Cultivar::new(cultivar),
            planted_year: Some(2010 + (i % 10) as i32),
            health: if i % 4 == 3 { Health::Poor } else { Health::Good },
            height_m: None,
            girth_cm: None,
            orchard_id: orchard.clone(),
            survey_id: None,
        })
        .collect()
}

pub async fn world() -> World {
    world_of(40).await
}

/// A world with `n` trees in each of the two orchards.
pub async fn world_of(n: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(dir.path().join("api.db").to_str().unwrap()).await.unwrap();
    let b_at = ORIGIN.offset_m(1000.0, 0.0);
    let a = orchard("DL-A", "Vườn Ông Tám", "Nguyễn Văn Tám, 0905 123 456", ORIGIN, "VN-DLK-0001");
    let b = orchard("DL-B", "Vườn Bà Hai", "Trần Thị Hai, 0912 000 111", b_at, "VN-DLK-0002");
    let mut all = trees(&a.id, ORIGIN, n, "Ri6");
    all.extend(trees(&b.id, b_at, n, "Monthong"));
    let imported = store.import(ImportBatch { survey: None, orchards: vec![a.clone(), b], trees: all }).await.unwrap();
    let (trees_a, trees_b): (Vec<_>, Vec<_>) = imported.trees.iter().partition(|t| t.orchard_id == a.id);
    let mut tokens = vec![];
    for (name, role, orchards) in [
        ("Admin", Role::Admin, vec![]),
        ("Lan", Role::Volunteer, vec![]),
        ("Ông Tám", Role::Farmer, vec![a.id.clone()]),
    ] {
        let (token, hash) = api::auth::new_token();
        store.create_user(name, role, &orchards, &hash).await.unwrap();
        tokens.push(token);
    }
    let cache = Arc::new(api::TreeCache::load(store.as_ref()).await.unwrap());
    let mut state = api::AppState::new(store, cache);
    state.photos = Some(Arc::new(store::photos::PhotoStore::new(dir.path().join("photos"))));
    let farmer = tokens.pop().unwrap();
    let volunteer = tokens.pop().unwrap();
    let admin = tokens.pop().unwrap();
    World {
        dir,
        state,
        admin,
        volunteer,
        farmer,
        trees_a: trees_a.iter().map(|t| t.id.0).collect(),
        trees_b: trees_b.iter().map(|t| t.id.0).collect(),
    }
}

/// A response: status, headers and the body as JSON (Null when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

/// Sends a request; `token` adds `Authorization: Bearer`.
pub async fn send(
    state: &api::AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = api::router(state.clone()).oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body, bytes }
}

pub async fn get(state: &api::AppState, uri: &str, token: Option<&str>) -> Reply {
    send(state, "GET", uri, token, &[], vec![]).await
}

/// JSON request body.
pub fn json(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

/// The current ETag of a tree.
pub async fn etag(state: &api::AppState, id: i64) -> String {
    let r = get(state, &format!("/api/trees/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "GET tree {id}: {}", r.body);
    r.headers["etag"].to_str().unwrap().to_string()
}

/// A small valid PNG (8 x 8, one colour).
pub fn png() -> Vec<u8> {
    // Built by hand: signature, IHDR, one IDAT (zlib stored block), IEND.
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    fn adler(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc(&body).to_be_bytes());
    }
    let (w, h) = (8u32, 8u32);
    let mut raw = vec![];
    for _ in 0..h {
        raw.push(0u8);
        raw.extend([30u8, 140, 60].repeat(w as usize));
    }
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend((raw.len() as u16).to_le_bytes());
    z.extend((!(raw.len() as u16)).to_le_bytes());
    z.extend(&raw);
    z.extend(adler(&raw).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = vec![];
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}
