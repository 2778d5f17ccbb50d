//! OGC API – Features under `/ogc`: the real router over a temporary SQLite
//! store, driven with `oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use geo_core::{BBox, Cultivar, Health, LonLat, NewTree, Orchard, OrchardId, Role, Tree, polygon_from_ring};
use http_body_util::BodyExt;
use serde_json::Value;
use store::ImportBatch;
use tower::ServiceExt;

const ORIGIN: LonLat = LonLat::new(108.05, 12.68);

struct World {
    _dir: tempfile::TempDir,
    state: api::AppState,
    trees: Vec<Tree>,
    token: String,
}

fn orchard(id: &str, owner: &str, at: Option<LonLat>) -> Orchard {
    Orchard {
        id: OrchardId::new(id).unwrap(),
        name: format!("Vườn {id}"),
        owner: owner.into(),
        commune: "Ea Tiêu".into(),
        district: "Cư Kuin".into(),
        province: "Đắk Lắk".into(),
        planting_area_code: Some(format!("VN-{id}")),
        gln: None,
        boundary: at.map(|at| {
            polygon_from_ring(&[
                at.offset_m(-5.0, -5.0),
                at.offset_m(100.0, -5.0),
                at.offset_m(100.0, 100.0),
                at.offset_m(-5.0, 100.0),
                at.offset_m(-5.0, -5.0),
            ])
        }),
    }
}

/// Orchard A (30 Ri6 trees), orchard B 1 km east (30 Monthong), orchard C
/// without a boundary (5 trees), and a volunteer's token.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(dir.path().join("ogc.db").to_str().unwrap()).await.unwrap();
    let b_at = ORIGIN.offset_m(1000.0, 0.0);
    let c_at = ORIGIN.offset_m(0.0, 2000.0);
    let orchards = vec![
        orchard("DL-A", "Nguyễn Văn Tám, 0905 123 456", Some(ORIGIN)),
        orchard("DL-B", "Trần Thị Hai, 0912 000 111", Some(b_at)),
        orchard("DL-C", "Lê Văn Ba", None),
    ];
    let mut trees = vec![];
    for (o, at, n, cultivar) in [(0, ORIGIN, 30, "Ri6"), (1, b_at, 30, "Monthong"), (2, c_at, 5, "Ri6")] {
        trees.extend((0..n).map(|i| NewTree {
            code: None,
            location: at.offset_m((i % 10) as f64 * 9.0, (i / 10) as f64 * 9.0),
            accuracy_m: Some(3.0),
            cultivar: Cultivar::new(cultivar),
            planted_year: Some(2010 + i % 5),
            health: if i % 4 == 3 { Health::Poor } else { Health::Good },
            height_m: None,
            girth_cm: None,
            orchard_id: orchards[o].id.clone(),
            survey_id: None,
        }));
    }
    let imported = store.import(ImportBatch { survey: None, orchards, trees }).await.unwrap();
    let (token, hash) = api::auth::new_token();
    store.create_user("Lan", Role::Volunteer, &[], &hash).await.unwrap();
    let cache = Arc::new(api::TreeCache::load(store.as_ref()).await.unwrap());
    World { _dir: dir, state: api::AppState::new(store, cache), trees: imported.trees, token }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn send(state: &api::AppState, method: &str, uri: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = api::router(state.clone()).oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

async fn get(state: &api::AppState, uri: &str) -> Reply {
    send(state, "GET", uri, &[], vec![]).await
}

fn link<'a>(body: &'a Value, rel: &str) -> Option<&'a Value> {
    body["links"].as_array().unwrap().iter().find(|l| l["rel"] == rel)
}

fn href(body: &Value, rel: &str) -> Option<String> {
    link(body, rel).map(|l| l["href"].as_str().unwrap().to_string())
}

/// Every feature id of every page, following `next` links from `first`.
async fn walk(state: &api::AppState, first: &str) -> (Vec<Value>, Vec<Value>) {
    let mut pages = vec![];
    let mut ids = vec![];
    let mut next = Some(first.to_string());
    while let Some(uri) = next {
        let r = get(state, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        ids.extend(r.body["features"].as_array().unwrap().iter().map(|f| f["id"].clone()));
        next = href(&r.body, "next");
        pages.push(r.body);
        assert!(pages.len() < 100, "paging does not end");
    }
    (pages, ids)
}

fn bbox_param(b: &BBox) -> String {
    format!("{},{},{},{}", b.min_lon, b.min_lat, b.max_lon, b.max_lat)
}

#[tokio::test]
async fn landing_page_conformance_and_api_document() {
    let w = world().await;
    let r = get(&w.state, "/ogc").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    assert!(r.body["title"].is_string() && r.body["description"].is_string());
    for rel in ["self", "service-desc", "service-doc", "conformance", "data"] {
        assert!(link(&r.body, rel).is_some(), "no {rel} link: {}", r.body);
    }
    let desc = link(&r.body, "service-desc").unwrap();
    assert_eq!(desc["href"], "/api/openapi.json");
    assert_eq!(desc["type"], "application/vnd.oai.openapi+json;version=3.0");
    assert_eq!(href(&r.body, "data").unwrap(), "/ogc/collections");
    assert_eq!(href(&r.body, "conformance").unwrap(), "/ogc/conformance");

    // Behind a host, links are absolute (clients such as GDAL need them so).
    let r = send(&w.state, "GET", "/ogc", &[("host", "maps.example:8080")], vec![]).await;
    assert_eq!(href(&r.body, "data").unwrap(), "http://maps.example:8080/ogc/collections");

    let r = get(&w.state, "/ogc/conformance").await;
    assert_eq!(r.status, StatusCode::OK);
    let classes: Vec<&str> = r.body["conformsTo"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for class in ["core", "geojson", "oas30"] {
        let uri = format!("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{class}");
        assert!(classes.contains(&uri.as_str()), "{classes:?}");
    }

    for uri in ["/ogc/api", "/api/openapi.json"] {
        let r = get(&w.state, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.body["openapi"], "3.0.3", "{uri}");
        assert!(r.body["paths"]["/ogc/collections/{collectionId}/items"]["get"].is_object());
    }
    assert_eq!(get(&w.state, "/ogc?f=json").await.status, StatusCode::OK);
    assert_eq!(get(&w.state, "/ogc?f=html").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn collections_carry_extents_from_the_data() {
    let w = world().await;
    let r = get(&w.state, "/ogc/collections").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(link(&r.body, "self").is_some());
    let all = r.body["collections"].as_array().unwrap();
    let ids: Vec<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["trees", "orchards"]);

    let trees_box = BBox::around(w.trees.iter().map(|t| t.location)).unwrap();
    let trees = &all[0];
    let bbox: Vec<f64> =
        trees["extent"]["spatial"]["bbox"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let expect = [trees_box.min_lon, trees_box.min_lat, trees_box.max_lon, trees_box.max_lat];
    for (got, want) in bbox.iter().zip(expect) {
        assert!((got - want).abs() < 1e-9, "{bbox:?} vs {expect:?}");
    }
    assert_eq!(trees["itemType"], "feature");
    assert_eq!(trees["crs"][0], "http://www.opengis.net/def/crs/OGC/1.3/CRS84");
    let interval = &trees["extent"]["temporal"]["interval"][0];
    assert!(interval[0].is_string() && interval[1].is_string(), "{interval}");
    assert!(href(trees, "items").unwrap().ends_with("/ogc/collections/trees/items"));
    assert_eq!(link(trees, "items").unwrap()["type"], "application/geo+json");

    // Orchards: the boundaries' box (orchard C has none).
    let orchards = &all[1];
    let corners = [ORIGIN.offset_m(-5.0, -5.0), ORIGIN.offset_m(1100.0, 100.0)];
    let bbox: Vec<f64> =
        orchards["extent"]["spatial"]["bbox"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let expect = [corners[0].lon, corners[0].lat, corners[1].lon, corners[1].lat];
    for (got, want) in bbox.iter().zip(expect) {
        assert!((got - want).abs() < 1e-9, "{bbox:?} vs {expect:?}");
    }

    let one = get(&w.state, "/ogc/collections/orchards").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["id"], "orchards");
    let missing = get(&w.state, "/ogc/collections/bananas").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn items_page_through_every_match_once() {
    let w = world().await;
    // A box over orchard A and half of B's columns.
    let bbox = BBox::around([ORIGIN.offset_m(-1.0, -1.0), ORIGIN.offset_m(1040.0, 50.0)]).unwrap();
    let inside: HashSet<i64> = w.trees.iter().filter(|t| bbox.contains(t.location)).map(|t| t.id.0).collect();
    assert!(inside.len() > 30 && inside.len() < 60, "{}", inside.len());

    let first = format!("/ogc/collections/trees/items?bbox={}&limit=7&f=json", bbox_param(&bbox));
    let r = get(&w.state, &first).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/geo+json");
    assert_eq!(r.body["type"], "FeatureCollection");
    assert_eq!(r.body["numberMatched"], inside.len());
    assert_eq!(r.body["numberReturned"], 7);
    assert!(r.body["timeStamp"].is_string());
    assert!(href(&r.body, "self").unwrap().contains("limit=7"));
    assert_eq!(href(&r.body, "collection").unwrap(), "/ogc/collections/trees");
    let next = href(&r.body, "next").unwrap();
    assert!(
        next.contains("bbox=") && next.contains("limit=7") && next.contains("f=json") && next.contains("cursor="),
        "{next}"
    );
    let feature = &r.body["features"][0];
    for field in [
        "id",
        "code",
        "cultivar",
        "health",
        "planted_year",
        "height_m",
        "girth_cm",
        "accuracy_m",
        "orchard",
        "updated_at",
        "version",
    ] {
        assert!(feature["properties"].get(field).is_some(), "no {field}: {feature}");
    }

    let (pages, ids) = walk(&w.state, &first).await;
    assert_eq!(pages.len(), inside.len().div_ceil(7));
    let seen: Vec<i64> = ids.iter().map(|v| v.as_i64().unwrap()).collect();
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a tree was served twice");
    assert_eq!(unique, inside);
    assert!(pages.iter().all(|p| p["numberMatched"] == inside.len()));

    // Without a box: every tree, default page of 10.
    let r = get(&w.state, "/ogc/collections/trees/items").await;
    assert_eq!(r.body["numberMatched"], w.trees.len());
    assert_eq!(r.body["numberReturned"], 10);
    let (_, ids) = walk(&w.state, "/ogc/collections/trees/items?limit=10000").await;
    assert_eq!(ids.len(), w.trees.len());

    // Orchards page too, by id.
    let (pages, ids) = walk(&w.state, "/ogc/collections/orchards/items?limit=2").await;
    assert_eq!(pages.len(), 2);
    assert_eq!(ids, ["DL-A", "DL-B", "DL-C"]);
}

async fn matched(state: &api::AppState, uri: &str) -> usize {
    let r = get(state, uri).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    r.body["numberMatched"].as_u64().unwrap() as usize
}

#[tokio::test]
async fn datetime_and_property_filters() {
    let w = world().await;
    let count = |f: &dyn Fn(&Tree) -> bool| w.trees.iter().filter(|t| f(t)).count();
    let items = "/ogc/collections/trees/items";
    assert_eq!(matched(&w.state, &format!("{items}?cultivar=Monthong")).await, 30);
    assert_eq!(matched(&w.state, &format!("{items}?health=poor")).await, count(&|t| t.health == Health::Poor));
    assert_eq!(
        matched(&w.state, &format!("{items}?planted_year=2012")).await,
        count(&|t| t.planted_year == Some(2012))
    );
    assert_eq!(
        matched(&w.state, &format!("{items}?orchard=DL-B&health=poor")).await,
        count(&|t| { t.orchard_id.as_str() == "DL-B" && t.health == Health::Poor })
    );
    assert_eq!(
        matched(&w.state, &format!("{items}?planted_from=2011&planted_to=2012&cultivar=ri6")).await,
        count(&|t| { t.cultivar.as_str() == "Ri6" && matches!(t.planted_year, Some(2011..=2012)) })
    );
    assert_eq!(matched(&w.state, &format!("{items}?q=vuon%20dl-c")).await, 5, "q looks in the orchard's name");
    let code = w.trees[3].code.as_str().to_string();
    let r = get(&w.state, &format!("{items}?code={code}")).await;
    assert_eq!(r.body["numberMatched"], 1);
    assert_eq!(r.body["features"][0]["id"], w.trees[3].id.0);

    // datetime against updated_at: change one tree, later than the import.
    let before = w.trees.iter().map(|t| t.updated_at).max().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let id = w.trees[0].id.0;
    let auth = format!("Bearer {}", w.token);
    let patched = send(
        &w.state,
        "PATCH",
        &format!("/api/trees/{id}"),
        &[("authorization", &auth), ("if-match", "\"1\""), ("content-type", "application/json")],
        br#"{"health":"fair"}"#.to_vec(),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let enc = |s: &str| s.replace('+', "%2B");
    let after = (before + chrono::Duration::milliseconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let r = get(&w.state, &format!("{items}?datetime={}/..", enc(&after))).await;
    assert_eq!(r.body["numberMatched"], 1, "{}", r.body);
    assert_eq!(r.body["features"][0]["id"], id);
    assert_eq!(
        matched(&w.state, &format!("{items}?datetime=../{}", enc(&before.to_rfc3339()))).await,
        w.trees.len() - 1
    );
    assert_eq!(matched(&w.state, &format!("{items}?datetime=../2001-01-01")).await, 0);
    assert_eq!(matched(&w.state, &format!("{items}?datetime=2001-01-01/..&cultivar=Monthong")).await, 30);

    // Orchards: equality on their properties; datetime matches all (they carry no time).
    assert_eq!(matched(&w.state, "/ogc/collections/orchards/items?province=dak%20lak").await, 3);
    assert_eq!(matched(&w.state, "/ogc/collections/orchards/items?name=V%C6%B0%E1%BB%9Dn%20DL-B").await, 1);
    assert_eq!(matched(&w.state, "/ogc/collections/orchards/items?planting_area_code=vn-dl-c").await, 1);
    assert_eq!(matched(&w.state, "/ogc/collections/orchards/items?datetime=2020-01-01/..").await, 3);
    let near_b = BBox::around([ORIGIN.offset_m(1050.0, 50.0), ORIGIN.offset_m(1060.0, 60.0)]).unwrap();
    let r = get(&w.state, &format!("/ogc/collections/orchards/items?bbox={}", bbox_param(&near_b))).await;
    assert_eq!(r.body["numberMatched"], 1);
    assert_eq!(r.body["features"][0]["id"], "DL-B");
}

#[tokio::test]
async fn bad_parameters_are_400_and_unknown_things_404() {
    let w = world().await;
    for (uri, param) in [
        ("/ogc/collections/trees/items?bbox=108,12,108.1", "bbox"),
        ("/ogc/collections/trees/items?bbox=a,b,c,d", "bbox"),
        ("/ogc/collections/trees/items?bbox=108,12,108.1,12.1,0,5", "bbox"),
        ("/ogc/collections/trees/items?limit=0", "limit"),
        ("/ogc/collections/trees/items?limit=10001", "limit"),
        ("/ogc/collections/trees/items?limit=ten", "limit"),
        ("/ogc/collections/trees/items?colour=red", "query"),
        ("/ogc/collections/trees/items?datetime=yesterday", "datetime"),
        ("/ogc/collections/trees/items?datetime=../..", "datetime"),
        ("/ogc/collections/trees/items?cursor=abc", "cursor"),
        ("/ogc/collections/trees/items?health=sick", "health"),
        ("/ogc/collections/trees/items?planted_year=old", "planted_year"),
        ("/ogc/collections/trees/items?f=html", "f"),
        ("/ogc/collections/orchards/items?cultivar=Ri6", "query"),
        ("/ogc/collections/orchards/items?limit=0", "limit"),
    ] {
        let r = get(&w.state, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "bad_parameter", "{uri}");
        assert!(r.body["error"]["message"].as_str().unwrap().starts_with(param), "{uri}: {}", r.body);
    }
    for uri in [
        "/ogc/collections/bananas",
        "/ogc/collections/bananas/items",
        "/ogc/collections/trees/items/999999",
        "/ogc/collections/trees/items/not-a-tree",
        "/ogc/collections/orchards/items/DL-Z",
        "/ogc/collections/orchards/items/not%20an%20id",
    ] {
        let r = get(&w.state, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "not_found", "{uri}");
    }
}

#[tokio::test]
async fn single_features_and_orchards_never_show_their_owner() {
    let w = world().await;
    let tree = &w.trees[5];
    for key in [tree.id.0.to_string(), tree.code.as_str().to_string()] {
        let r = get(&w.state, &format!("/ogc/collections/trees/items/{key}")).await;
        assert_eq!(r.status, StatusCode::OK, "{key}");
        assert_eq!(r.headers["content-type"], "application/geo+json");
        assert_eq!(r.body["id"], tree.id.0);
        assert_eq!(r.body["geometry"]["type"], "Point");
        assert_eq!(href(&r.body, "self").unwrap(), format!("/ogc/collections/trees/items/{}", tree.id.0));
        assert_eq!(href(&r.body, "collection").unwrap(), "/ogc/collections/trees");
    }

    // Not even to a signed-in caller: the OGC API is public data only.
    let auth = format!("Bearer {}", w.token);
    for headers in [vec![], vec![("authorization", auth.as_str())]] {
        let r = send(&w.state, "GET", "/ogc/collections/orchards/items", &headers, vec![]).await;
        assert_eq!(r.status, StatusCode::OK);
        let features = r.body["features"].as_array().unwrap();
        assert_eq!(features.len(), 3);
        for f in features {
            assert!(f["properties"].get("owner").is_none(), "{f}");
            for field in ["name", "commune", "district", "province", "planting_area_code", "tree_count"] {
                assert!(f["properties"].get(field).is_some(), "no {field}: {f}");
            }
        }
        assert_eq!(features[0]["geometry"]["type"], "Polygon");
        assert_eq!(features[0]["properties"]["tree_count"], 30);
        assert!(features[2]["geometry"].is_null(), "DL-C has no boundary");
        let one = send(&w.state, "GET", "/ogc/collections/orchards/items/DL-A", &headers, vec![]).await;
        assert_eq!(one.status, StatusCode::OK);
        assert!(one.body["properties"].get("owner").is_none());
        assert!(!one.body.to_string().contains("Tám"), "the owner's name leaked: {}", one.body);
    }
}
