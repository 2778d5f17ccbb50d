//! Editing with history, the farm diary, photos and search, through the router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use axum::http::StatusCode;
use common::{ORIGIN, etag, get, json, png, send, world};
use serde_json::{Value, json};

#[tokio::test]
async fn patch_needs_the_current_version_and_history_says_who_changed_what() {
    let w = world().await;
    let s = &w.state;
    let id = w.trees_a[0];
    let uri = format!("/api/trees/{id}");
    let v1 = etag(s, id).await;
    assert_eq!(v1, "\"1\"");
    let poor_before =
        get(s, "/api/trees?cultivar=Ri6&health=poor&limit=1000", None).await.body["numberMatched"].clone();

    let r = send(s, "PATCH", &uri, Some(&w.volunteer), &[], json(json!({"health": "poor"}))).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_REQUIRED, "{}", r.body);

    let moved = ORIGIN.offset_m(3.0, 4.0);
    let patch = json!({"health": "poor", "height_m": 7.5, "lon": moved.lon, "lat": moved.lat});
    let r = send(s, "PATCH", &uri, Some(&w.volunteer), &[("if-match", &v1)], json(patch)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["etag"], "\"2\"");
    assert_eq!(r.body["properties"]["health"], "poor");

    // The same stale version again: 412, nothing overwritten.
    let r = send(s, "PATCH", &uri, Some(&w.admin), &[("if-match", &v1)], json(json!({"health": "dead"}))).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.body);
    let now = get(s, &uri, None).await;
    assert_eq!(now.body["properties"]["health"], "poor");
    assert_eq!(now.body["properties"]["version"], 2);

    // The index moved at once: the nearest tree to the new position is this one.
    let near = get(s, &format!("/api/trees/nearest?lon={}&lat={}", moved.lon, moved.lat), None).await;
    assert_eq!(near.body["features"][0]["id"], id);
    assert!(near.body["features"][0]["properties"]["distance_m"].as_f64().unwrap() < 0.01);

    // Filtered searches see the new health at once.
    let poor = get(s, "/api/trees?cultivar=Ri6&health=poor&limit=1000", None).await;
    assert_eq!(poor.body["numberMatched"].as_u64(), poor_before.as_u64().map(|n| n + 1));
    assert!(ids(&poor.body).contains(&id));

    // Bad values are named; unknown fields refused.
    let r = send(s, "PATCH", &uri, Some(&w.admin), &[("if-match", "\"2\"")], json(json!({"lat": 95.0}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["problems"][0]["field"], "lat");
    let r = send(s, "PATCH", &uri, Some(&w.admin), &[("if-match", "\"2\"")], json(json!({"colour": "red"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("colour"));

    // The farmer changes the health of a tree in their orchard.
    let r = send(s, "PATCH", &uri, Some(&w.farmer), &[("if-match", "\"2\"")], json(json!({"health": "fair"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A cultivar no tree had before is searchable straight away, in a box and near a point.
    let r =
        send(s, "PATCH", &uri, Some(&w.volunteer), &[("if-match", "\"3\"")], json(json!({"cultivar": "Kanyao"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bbox = format!("{},{},{},{}", moved.lon - 0.01, moved.lat - 0.01, moved.lon + 0.01, moved.lat + 0.01);
    for q in [
        "cultivar=Kanyao&health=fair".to_string(),
        format!("cultivar=Kanyao&bbox={bbox}"),
        format!("cultivar=Kanyao&lon={}&lat={}&radius_m=50", moved.lon, moved.lat),
    ] {
        let r = get(s, &format!("/api/trees?{q}"), None).await;
        assert_eq!(ids(&r.body), [id], "{q}: {}", r.body);
    }
    assert_eq!(get(s, "/api/trees?cultivar=Kanyao&health=good", None).await.body["numberMatched"], 0);
    let r =
        send(s, "PATCH", &uri, Some(&w.volunteer), &[("if-match", "\"4\"")], json(json!({"cultivar": "Ri6"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(get(s, "/api/trees?cultivar=Kanyao", None).await.body["numberMatched"], 0);

    let h = get(s, &format!("{uri}/history"), None).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    let changes = h.body["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 5, "{}", h.body);
    assert_eq!(changes[0]["action"], "create");
    assert_eq!(changes[1]["action"], "update");
    assert_eq!(changes[1]["by"], "Lan");
    let fields: HashSet<&str> =
        changes[1]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, HashSet::from(["health", "height_m", "location"]));
    let health = changes[1]["fields"].as_array().unwrap().iter().find(|f| f["field"] == "health").unwrap();
    assert_eq!((health["from"].as_str(), health["to"].as_str()), (Some("good"), Some("poor")));
    assert_eq!(changes[2]["by"], "Ông Tám");
    assert_eq!(changes[2]["version"], 3);
}

#[tokio::test]
async fn removal_keeps_history_and_answers_410() {
    let w = world().await;
    let s = &w.state;
    let id = w.trees_a[5];
    let uri = format!("/api/trees/{id}");
    let tag = etag(s, id).await;
    let r = send(s, "DELETE", &uri, Some(&w.volunteer), &[("if-match", &tag)], vec![]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a reason is required: {}", r.body);
    let r = send(s, "DELETE", &format!("{uri}?reason=burnt"), Some(&w.volunteer), &[("if-match", &tag)], vec![]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(s, "DELETE", &uri, Some(&w.volunteer), &[("if-match", &tag)], json(json!({"reason": "dead"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let gone = get(s, &uri, None).await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.body);
    assert!(gone.body["error"]["message"].as_str().unwrap().contains("dead"));
    let h = get(s, &format!("{uri}/history"), None).await;
    let last = h.body["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["reason"].as_str(), last["by"].as_str()),
        (Some("remove"), Some("dead"), Some("Lan"))
    );
    // Gone from searches and the index.
    let all = get(s, "/api/trees?orchard=DL-A&limit=1000", None).await;
    assert_eq!(all.body["numberMatched"], 39);
    assert!(all.body["features"].as_array().unwrap().iter().all(|f| f["id"] != id));
    // A new tree never takes the removed id or code.
    let code = r.body["code"].as_str().unwrap().to_string();
    let new = json!({"lon": ORIGIN.lon, "lat": ORIGIN.lat, "cultivar": "Ri6", "health": "good", "orchard": "DL-A"});
    let created = send(s, "POST", "/api/trees", Some(&w.admin), &[], json(new)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_ne!(created.body["properties"]["code"], code);
    assert!(created.headers["location"].to_str().unwrap().starts_with("/api/trees/"));
}

#[tokio::test]
async fn records_are_append_only_with_corrections() {
    let w = world().await;
    let s = &w.state;
    let uri = format!("/api/trees/{}/records", w.trees_a[1]);
    let harvest = json!({"date": "2026-06-10", "kind": "harvest", "fruit_count": 42, "weight_kg": 130.5});
    let r = send(s, "POST", &uri, Some(&w.farmer), &[], json(harvest)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let first = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["author"], "Ông Tám");
    let fix = json!({"date": "2026-06-10", "kind": "harvest", "fruit_count": 40, "weight_kg": 124.0, "corrects": first, "note": "miscounted"});
    let r = send(s, "POST", &uri, Some(&w.farmer), &[], json(fix)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A correction must name a record of the same tree.
    let other = format!("/api/trees/{}/records", w.trees_a[2]);
    let bad = json!({"date": "2026-06-10", "kind": "observation", "corrects": first});
    let r = send(s, "POST", &other, Some(&w.farmer), &[], json(bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Invalid values are all named.
    let bad = json!({"date": "2099-01-01", "kind": "harvest", "fruit_count": 0, "weight_kg": -1.0});
    let r = send(s, "POST", &uri, Some(&w.farmer), &[], json(bad)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let fields: Vec<&str> =
        r.body["error"]["problems"].as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["date", "fruit_count", "weight_kg"]);
    let r = send(s, "POST", &uri, Some(&w.farmer), &[], json(json!({"date": "2026-06-10", "kind": "dance"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let list = get(s, &uri, None).await;
    let records = list.body["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["corrects"], first);
    assert_eq!(get(s, &format!("{uri}?kind=spray"), None).await.body["records"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn photos_are_checked_stored_by_content_and_served_with_thumbnails() {
    let w = world().await;
    let s = &w.state;
    let uri = format!("/api/trees/{}/photos", w.trees_a[3]);
    let r = send(s, "POST", &uri, Some(&w.farmer), &[("content-type", "image/png")], b"<svg>not a png</svg>".to_vec())
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    let mut truncated = png();
    truncated.truncate(40);
    let r = send(s, "POST", &uri, Some(&w.farmer), &[("content-type", "image/png")], truncated).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    // The content type is taken from the bytes, not the header.
    let r = send(
        s,
        "POST",
        &format!("{uri}?note=la%20v%C3%A0ng"),
        Some(&w.farmer),
        &[("content-type", "image/jpeg")],
        png(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["record"]["content_type"], "image/png");
    let url = r.body["photo"]["url"].as_str().unwrap().to_string();
    let full = get(s, &url, None).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.bytes, png());
    assert_eq!(full.headers["content-type"], "image/png");
    let thumb = get(s, r.body["photo"]["thumbnail_url"].as_str().unwrap(), None).await;
    assert_eq!(thumb.status, StatusCode::OK);
    assert_eq!(&thumb.bytes[..3], &[0xff, 0xd8, 0xff]);
    let cached = send(s, "GET", &url, None, &[("if-none-match", full.headers["etag"].to_str().unwrap())], vec![]).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    // No path tricks.
    assert_eq!(get(s, "/api/photos/..%2F..%2Fapi.db", None).await.status, StatusCode::BAD_REQUEST);
    // Too large: 413 and nothing stored.
    let mut small = w.state.clone();
    small.max_photo_bytes = 64;
    let r = send(&small, "POST", &uri, Some(&w.farmer), &[], png()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
}

fn ids(body: &Value) -> Vec<i64> {
    body["features"].as_array().unwrap().iter().map(|f| f["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn search_combines_filters_with_space_and_pages() {
    let w = world().await;
    let s = &w.state;
    // Attribute filters alone.
    let r = get(s, "/api/trees?cultivar=Ri6&health=poor&limit=1000", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["numberMatched"], 10);
    let r = get(s, "/api/trees?planted_from=2015&planted_to=2016&orchard=DL-B", None).await;
    assert_eq!(r.body["numberMatched"], 8);
    let r = get(
        s,
        "/api/trees?commune=ea%20tieu&province=%C4%90%E1%BA%AFk%20L%E1%BA%AFk&planting_area_code=vn-dlk-0002",
        None,
    )
    .await;
    assert_eq!(r.body["numberMatched"], 40);
    let r = get(s, "/api/trees?q=b%C3%A0%20hai", None).await;
    assert_eq!(r.body["numberMatched"], 40);
    let code = get(s, &format!("/api/trees/{}", w.trees_a[7]), None).await.body["properties"]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let r = get(s, &format!("/api/trees?q={code}"), None).await;
    assert_eq!(ids(&r.body), [w.trees_a[7]]);

    // Near a point, filtered, nearest first, paged by cursor without gaps or repeats.
    let at = ORIGIN.offset_m(40.0, 40.0);
    let first = get(s, &format!("/api/trees?lon={}&lat={}&health=good&limit=7", at.lon, at.lat), None).await;
    let mut seen = ids(&first.body);
    let mut distances: Vec<f64> = first.body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["distance_m"].as_f64().unwrap())
        .collect();
    let mut next = first.body["links"][0]["href"].as_str().map(str::to_string);
    while let Some(href) = next {
        if seen.len() >= 30 {
            break;
        }
        let page = get(s, &href, None).await;
        seen.extend(ids(&page.body));
        distances.extend(
            page.body["features"].as_array().unwrap().iter().map(|f| f["properties"]["distance_m"].as_f64().unwrap()),
        );
        next = page.body["links"][0]["href"].as_str().map(str::to_string);
    }
    assert!(seen.len() >= 30);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len(), "no repeats");
    assert!(distances.windows(2).all(|p| p[0] <= p[1] + 1e-6), "nearest first: {distances:?}");

    // Radius + filter: numberMatched counts all; sort by id allowed with a radius.
    let r =
        get(s, &format!("/api/trees?lon={}&lat={}&radius_m=30&sort=id&limit=2", ORIGIN.lon, ORIGIN.lat), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let matched = r.body["numberMatched"].as_u64().unwrap();
    assert!(matched > 2 && ids(&r.body).windows(2).all(|p| p[0] < p[1]));

    // Bad parameters are named.
    for (q, param) in [
        ("health=sick", "health"),
        ("radius_m=5", "radius_m"),
        ("sort=colour", "sort"),
        ("lon=108", "lat"),
        ("cursor=zz&lon=108&lat=12", "cursor"),
    ] {
        let r = get(s, &format!("/api/trees?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.body["error"]["message"].as_str().unwrap().starts_with(param), "{q}: {}", r.body);
    }
}

#[tokio::test]
async fn orchards_are_created_and_boundaries_validated() {
    let w = world().await;
    let s = &w.state;
    let ring = |pts: &[(f64, f64)]| json!({"type": "Polygon", "coordinates": [pts.iter().map(|(x, y)| [*x, *y]).collect::<Vec<_>>()]});
    let open = ring(&[(108.0, 12.0), (108.01, 12.0), (108.01, 12.01), (108.0, 12.01)]);
    let body = json!({"id": "DL-X", "name": "X", "province": "Đắk Lắk", "boundary": open});
    let r = send(s, "POST", "/api/orchards", Some(&w.volunteer), &[], json(body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("not closed"), "{}", r.body);
    let bow = ring(&[(108.0, 12.0), (108.01, 12.01), (108.01, 12.0), (108.0, 12.01), (108.0, 12.0)]);
    let body = json!({"id": "DL-X", "name": "X", "province": "Đắk Lắk", "boundary": bow});
    let r = send(s, "POST", "/api/orchards", Some(&w.volunteer), &[], json(body)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("self-intersection"), "{}", r.body);
    let good = ring(&[(108.0, 12.0), (108.01, 12.0), (108.01, 12.01), (108.0, 12.01), (108.0, 12.0)]);
    let body = json!({"id": "DL-X", "name": "X", "province": "Đắk Lắk", "owner": "A Ma", "boundary": good});
    let r = send(s, "POST", "/api/orchards", Some(&w.volunteer), &[], json(body.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = send(s, "POST", "/api/orchards", Some(&w.volunteer), &[], json(body)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = send(
        s,
        "PATCH",
        "/api/orchards/DL-X",
        Some(&w.volunteer),
        &[],
        json(json!({"planting_area_code": "VN-DLK-0777"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Search sees the new code at once.
    let new = json!({"lon": 108.005, "lat": 12.005, "cultivar": "Ri6", "health": "good", "orchard": "DL-X"});
    assert_eq!(send(s, "POST", "/api/trees", Some(&w.volunteer), &[], json(new)).await.status, StatusCode::CREATED);
    let r = get(s, "/api/trees?planting_area_code=VN-DLK-0777", None).await;
    assert_eq!(r.body["numberMatched"], 1);
}
