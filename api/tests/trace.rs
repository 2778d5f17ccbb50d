//! QR traceability through the API: the resolver and its pages in three
//! languages, signatures, harvest lots, pre-printed tags, label sheets, EPCIS
//! events and scan flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{ORIGIN, get, json, send, world};
use serde_json::{Value, json};

const HOST: &str = "om.example";

/// Decodes a QR PNG with rqrr (independent of the encoder).
fn decode_png(bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.line_size / w;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * info.line_size + x * channels]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

/// The signed link a tree's tag holds, read back from its PNG.
async fn tag_url(s: &api::AppState, key: &str) -> String {
    let r = send(s, "GET", &format!("/api/trees/{key}/qr.png"), None, &[("host", HOST)], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.headers["content-type"], "image/png");
    let url = decode_png(&r.bytes);
    assert_eq!(r.headers["x-qr-content"], url.as_str());
    url
}

fn path_of(url: &str) -> &str {
    url.trim_start_matches(&format!("http://{HOST}"))
}

fn html(r: &common::Reply) -> String {
    String::from_utf8(r.bytes.clone()).unwrap()
}

async fn code_of(s: &api::AppState, id: i64) -> String {
    get(s, &format!("/api/trees/{id}"), None).await.body["properties"]["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn tree_links_redirect_by_language_and_pages_come_in_three_languages() {
    let w = world().await;
    let s = &w.state;
    let code = code_of(s, w.trees_a[0]).await;
    for (accept, lang) in [("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en-US,en;q=0.9", "en"), ("vi", "vi"), ("fr", "vi")] {
        let r = send(s, "GET", &format!("/t/{code}"), None, &[("accept-language", accept)], vec![]).await;
        assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{accept}");
        assert_eq!(r.headers["location"], format!("/t/{code}?lang={lang}").as_str());
    }
    let words = [("vi", "Giống"), ("en", "Cultivar"), ("zh", "品种")];
    for (lang, word) in words {
        let r = get(s, &format!("/t/{code}?lang={lang}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        let page = html(&r);
        assert!(page.contains(&format!("<html lang=\"{lang}\"")), "{lang}");
        assert!(page.contains(word), "{lang} page lacks {word}");
        for needed in [code.as_str(), "Ri6", "Vườn Ông Tám", "VN-DLK-0001", "Cư Kuin", "Đắk Lắk"] {
            assert!(page.contains(needed), "{lang} page lacks {needed}");
        }
        // Private owner details never appear.
        assert!(!page.contains("Nguyễn Văn Tám") && !page.contains("0905"), "{lang} page shows the owner");
        // The switch offers the two other languages.
        for other in ["vi", "en", "zh"] {
            assert!(page.contains(&format!("?lang={other}")), "{lang} page lacks the {other} switch");
        }
    }
    // Unknown and malformed codes: a page that says so, 404.
    let r = get(s, "/t/23456789?lang=en", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(html(&r).contains("<html lang=\"en\""));
}

#[tokio::test]
async fn labels_say_whether_they_are_genuine_unsigned_or_tampered() {
    let w = world().await;
    let s = &w.state;
    let url = tag_url(s, &w.trees_a[1].to_string()).await;
    let code = code_of(s, w.trees_a[1]).await;
    assert!(url.starts_with(&format!("http://{HOST}/t/{code}?8030=")), "{url}");
    let genuine = get(s, &format!("{}&lang=en", path_of(&url)), None).await;
    assert!(html(&genuine).contains("class=\"banner genuine\""));
    let unsigned = get(s, &format!("/t/{code}?lang=en"), None).await;
    assert!(html(&unsigned).contains("class=\"banner unsigned\""));
    // Another tree's signature on this code.
    let other = tag_url(s, &w.trees_a[2].to_string()).await;
    let sig = other.split("8030=").nth(1).unwrap();
    let copied = get(s, &format!("/t/{code}?lang=en&8030={sig}"), None).await;
    assert!(html(&copied).contains("class=\"banner tampered\""));
    // The served keys verify the label offline.
    let jwks = get(s, "/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let keys = geo_core::trust::PublicKeys::from_jwks(&jwks.body).unwrap();
    let (_, verdict) = geo_core::trust::verify_url(&url, &keys).unwrap();
    assert!(verdict.is_genuine(), "{verdict:?}");
    let (_, verdict) = geo_core::trust::verify_url(&format!("http://{HOST}/t/{code}?8030={sig}"), &keys).unwrap();
    assert_eq!(verdict, geo_core::trust::Verdict::Tampered);
}

#[tokio::test]
async fn qr_images_decode_to_their_links_at_every_level() {
    let w = world().await;
    let s = &w.state;
    let code = code_of(s, w.trees_a[4]).await;
    let url = tag_url(s, &code).await;
    for (ec, size) in [("L", 3), ("M", 4), ("Q", 8), ("H", 6)] {
        let r =
            send(s, "GET", &format!("/api/trees/{code}/qr.png?ec={ec}&size={size}"), None, &[("host", HOST)], vec![])
                .await;
        assert_eq!(r.status, StatusCode::OK, "{ec}");
        assert_eq!(decode_png(&r.bytes), url, "level {ec}");
    }
    let svg = send(s, "GET", &format!("/api/trees/{code}/qr.svg?size=300"), None, &[("host", HOST)], vec![]).await;
    assert_eq!(svg.headers["content-type"], "image/svg+xml");
    assert!(html(&svg).contains("width=\"300\""));
    for bad in ["ec=X", "size=0", "size=abc", "size=41"] {
        let r = get(s, &format!("/api/trees/{code}/qr.png?{bad}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
}

#[tokio::test]
async fn gs1_links_resolve_to_pages_linksets_and_link_types() {
    let w = world().await;
    let s = &w.state;
    let patch =
        send(s, "PATCH", "/api/orchards/DL-A", Some(&w.admin), &[], json(json!({"gln": "9520123456788"}))).await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.body);
    let bad = send(s, "PATCH", "/api/orchards/DL-A", Some(&w.admin), &[], json(json!({"gln": "9520123456789"}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let code = code_of(s, w.trees_a[0]).await;
    let url = tag_url(s, &code).await;
    assert!(url.starts_with(&format!("http://{HOST}/414/9520123456788/254/{code}?8030=")), "{url}");
    // A human is sent to the page in their language, signature kept; the page says genuine.
    let r = send(s, "GET", path_of(&url), None, &[("accept-language", "zh")], vec![]).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    let location = r.headers["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("/t/{code}?lang=zh&8030=")), "{location}");
    assert!(html(&get(s, &location, None).await).contains("class=\"banner genuine\""));
    // Linkset by Accept header and by linkType.
    for (uri, accept) in
        [(path_of(&url).to_string(), "application/linkset+json"), (format!("/t/{code}?linkType=linkset"), "*/*")]
    {
        let r = send(s, "GET", &uri, None, &[("accept", accept), ("host", HOST)], vec![]).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.headers["content-type"], "application/linkset+json");
        let set = &r.body["linkset"][0];
        assert_eq!(set["anchor"], format!("http://{HOST}/414/9520123456788/254/{code}"));
        let pip = set["https://ref.gs1.org/voc/pip"].as_array().unwrap();
        let langs: Vec<&str> = pip.iter().map(|l| l["hreflang"][0].as_str().unwrap()).collect();
        assert_eq!(langs, ["vi", "en", "zh"]);
        assert!(set["https://ref.gs1.org/voc/defaultLink"].is_array());
        assert!(set["https://ref.gs1.org/voc/epcis"].is_array());
    }
    let r = send(s, "GET", &format!("/t/{code}?linkType=gs1:epcis"), None, &[("host", HOST)], vec![]).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers["location"], format!("http://{HOST}/api/epcis/events?tree={code}").as_str());
    assert_eq!(get(s, &format!("/t/{code}?linkType=gs1:nonsense"), None).await.status, StatusCode::BAD_REQUEST);
    // Another GLN, a broken check digit, qualifiers in the wrong order: not this tree.
    for bad in [format!("/414/9506000134352/254/{code}"), format!("/414/9520123456789/254/{code}")] {
        assert_eq!(get(s, &bad, None).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
    let about = get(s, "/.well-known/gs1resolver", None).await;
    assert_eq!(about.body["supportedPrimaryKeys"], json!(["01", "414"]));
}

fn lot_body(orchard: &str, trees: Value) -> Value {
    json!({
        "orchard_id": orchard,
        "trees": trees,
        "harvest_date": "2026-06-10",
        "weight_kg": 1250.5,
        "boxes": 2,
        "packing_house": "VN-DLPH-0042",
        "gtin": "9506000134352",
        "lab_results": [
            {"analyte": "cadmium", "value_mg_per_kg": 0.012, "laboratory": "Trung tâm Kiểm nghiệm <Đắk Lắk>", "tested_on": "2026-06-08", "report_no": "KN-612"},
            {"analyte": "auramine_o", "value_mg_per_kg": null, "laboratory": "Lab B", "tested_on": "2026-06-08"}
        ]
    })
}

#[tokio::test]
async fn farmers_create_lots_buyers_read_them_and_admins_revoke_them() {
    let w = world().await;
    let s = &w.state;
    let (t0, t1) = (w.trees_a[0], w.trees_a[1]);
    // A spray within its pre-harvest interval on one tree, an old one on the other.
    for (tree, date, product) in [(t0, "2026-06-05", "Abamectin"), (t1, "2026-04-01", "Mancozeb")] {
        let rec = json!({"date": date, "kind": "spray", "product": product, "dose": "20 ml / 16 l", "phi_days": 7});
        let r = send(s, "POST", &format!("/api/trees/{tree}/records"), Some(&w.farmer), &[], json(rec)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // Only trees of the lot's orchard; only the farmer's own orchards.
    let wrong = send(
        s,
        "POST",
        "/api/lots",
        Some(&w.farmer),
        &[],
        json(lot_body("DL-A", json!({"trees": [t0, w.trees_b[0]]}))),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    let theirs =
        send(s, "POST", "/api/lots", Some(&w.farmer), &[], json(lot_body("DL-B", json!("whole_orchard")))).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(s, "POST", "/api/lots", None, &[], json(lot_body("DL-A", json!("whole_orchard")))).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = send(
        s,
        "POST",
        "/api/lots",
        Some(&w.farmer),
        &[("host", HOST)],
        json(lot_body("DL-A", json!({"trees": [t0, t1]}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let lot_code = r.body["lot"]["code"].as_str().unwrap().to_string();
    let url = r.body["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("http://{HOST}/01/09506000134352/10/{lot_code}?8030=")), "{url}");
    // The lot's own QR label decodes to the same link.
    let qr = send(s, "GET", &format!("/api/lots/{lot_code}/qr.png"), None, &[("host", HOST)], vec![]).await;
    assert_eq!(decode_png(&qr.bytes), url);
    // The GS1 link sends a buyer to the page in Chinese, genuine.
    let r = send(s, "GET", path_of(&url), None, &[("accept-language", "zh-CN")], vec![]).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    let location = r.headers["location"].to_str().unwrap().to_string();
    let page = html(&get(s, &location, None).await);
    assert!(page.contains("class=\"banner genuine\""), "{page}");
    for needed in ["VN-DLK-0001", "2026-06-10", "VN-DLPH-0042", "Ri6", "镉", "Abamectin", "Mancozeb", "不合格", "合格"]
    {
        assert!(page.contains(needed), "lot page lacks {needed}");
    }
    // Lab names are escaped; the owner is not shown.
    assert!(page.contains("&lt;Đắk Lắk&gt;") && !page.contains("<Đắk Lắk>"));
    assert!(!page.contains("Nguyễn Văn Tám"));
    for (lang, word) in [("vi", "Thời gian cách ly"), ("en", "Pre-harvest interval"), ("zh", "安全间隔期")] {
        let p = html(&get(s, &format!("/l/{lot_code}?lang={lang}"), None).await);
        assert!(p.contains(word), "{lang} lot page lacks {word}");
    }
    // Revoked by an admin: the page says so; farmers may not revoke.
    let body = json(json!({"reason": "labels copied at market X"}));
    assert_eq!(
        send(s, "POST", &format!("/api/lots/{lot_code}/revoke"), Some(&w.farmer), &[], body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let r = send(s, "POST", &format!("/api/lots/{lot_code}/revoke"), Some(&w.admin), &[], body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = html(&get(s, &format!("{}&lang=en", path_of(&location).replace("lang=zh&", "")), None).await);
    assert!(page.contains("class=\"banner revoked\"") && page.contains("labels copied at market X"), "{page}");
    let listed = get(s, "/api/lots?orchard=DL-A", None).await;
    assert_eq!(listed.body["lots"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_lot_needs_a_planting_area_code_unless_domestic() {
    let w = world().await;
    let s = &w.state;
    let orchard = json!({"id": "DL-C", "name": "Vườn C", "owner": "C", "commune": "Ea Tiêu", "district": "Cư Kuin", "province": "Đắk Lắk"});
    assert_eq!(send(s, "POST", "/api/orchards", Some(&w.admin), &[], json(orchard)).await.status, StatusCode::CREATED);
    let tree =
        json!({"lon": ORIGIN.lon + 0.05, "lat": ORIGIN.lat, "cultivar": "Ri6", "health": "good", "orchard": "DL-C"});
    let t = send(s, "POST", "/api/trees", Some(&w.volunteer), &[], json(tree)).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    let export =
        send(s, "POST", "/api/lots", Some(&w.admin), &[], json(lot_body("DL-C", json!("whole_orchard")))).await;
    assert_eq!(export.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", export.body);
    assert!(export.body.to_string().contains("domestic"), "{}", export.body);
    let mut body = lot_body("DL-C", json!("whole_orchard"));
    body["domestic"] = json!(true);
    let ok = send(s, "POST", "/api/lots", Some(&w.admin), &[], json(body)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["lot"]["tree_ids"].as_array().unwrap().len(), 1);
    let code = ok.body["lot"]["code"].as_str().unwrap();
    let page = html(&get(s, &format!("/l/{code}?lang=en"), None).await);
    assert!(page.contains("Domestic market only"), "{page}");
}

#[tokio::test]
async fn pre_printed_tags_are_registered_once_and_reassigned_by_admins() {
    let w = world().await;
    let s = &w.state;
    assert_eq!(
        send(s, "POST", "/api/tags", Some(&w.farmer), &[], json(json!({"count": 2}))).await.status,
        StatusCode::FORBIDDEN
    );
    let r = send(s, "POST", "/api/tags", Some(&w.volunteer), &[], json(json!({"count": 3}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.body["codes"][0].as_str().unwrap().to_string();
    let batch = r.body["batch"].as_i64().unwrap();
    // Scanning the unassigned tag opens the registration page.
    let page = html(&get(s, &format!("/t/{code}?lang=en"), None).await);
    assert!(page.contains(&format!("/api/tags/{code}/register")), "{page}");
    assert!(page.contains("watchPosition") && page.contains("capture=\"environment\""));
    let spot = ORIGIN.offset_m(50.0, 55.0);
    let body = json!({"lon": spot.lon, "lat": spot.lat, "accuracy_m": 4.2, "cultivar": "Musang King", "planted_year": 2019, "health": "good", "height_m": 3.5});
    let uri = format!("/api/tags/{code}/register");
    assert_eq!(send(s, "POST", &uri, Some(&w.farmer), &[], json(body.clone())).await.status, StatusCode::FORBIDDEN);
    let made = send(s, "POST", &uri, Some(&w.volunteer), &[], json(body.clone())).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(
        made.body["tree"]["properties"]["code"].as_str().or(made.body["tree"]["code"].as_str()),
        Some(code.as_str())
    );
    let tree = get(s, &format!("/api/trees/{code}"), None).await;
    assert_eq!(tree.body["properties"]["orchard"], "DL-A", "placed in the orchard whose boundary holds it");
    assert_eq!(tree.body["properties"]["cultivar"], "Musang King");
    // The tag now opens the tree; a second registration is refused, an admin may re-assign.
    assert!(html(&get(s, &format!("/t/{code}?lang=en"), None).await).contains("Musang King"));
    let again = send(s, "POST", &uri, Some(&w.volunteer), &[], json(body.clone())).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let mut moved = body.clone();
    moved["reassign"] = json!(true);
    moved["note"] = json!("tag fell off, put on the neighbour");
    moved["lon"] = json!(ORIGIN.offset_m(60.0, 55.0).lon);
    assert_eq!(send(s, "POST", &uri, Some(&w.volunteer), &[], json(moved.clone())).await.status, StatusCode::FORBIDDEN);
    let r = send(s, "POST", &uri, Some(&w.admin), &[], json(moved)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tag = get(s, &format!("/api/tags/{code}"), None).await;
    let actions: Vec<&str> =
        tag.body["assignments"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["assign", "reassign"]);
    assert_eq!(tag.body["assignments"][0]["by"], "Lan");
    assert_eq!(tag.body["assignments"][1]["by"], "Admin");
    // The history of the tree names who moved the tag.
    let id = tree.body["id"].as_i64().unwrap();
    let history = get(s, &format!("/api/trees/{id}/history"), None).await;
    assert!(history.body.to_string().contains("Admin"), "{}", history.body);
    // A code never issued is not registrable; the batch prints as a sheet.
    let never = send(s, "POST", "/api/tags/23456789/register", Some(&w.volunteer), &[], json(body)).await;
    assert_eq!(never.status, StatusCode::NOT_FOUND);
    let sheet = get(s, &format!("/api/labels?batch={batch}&format=svg"), Some(&w.volunteer)).await;
    assert_eq!(sheet.status, StatusCode::OK);
    assert!(html(&sheet).contains(&code));
}

#[tokio::test]
async fn label_sheets_for_orchards_and_lots() {
    let w = world().await;
    let s = &w.state;
    let pdf = get(s, "/api/labels?orchard=DL-A&format=pdf", Some(&w.farmer)).await;
    assert_eq!(pdf.status, StatusCode::OK, "{}", pdf.body);
    assert_eq!(pdf.headers["content-type"], "application/pdf");
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    let svg = get(s, "/api/labels?orchard=DL-A&format=svg", Some(&w.farmer)).await;
    let text = html(&svg);
    for id in &w.trees_a {
        assert!(text.contains(&code_of(s, *id).await), "sheet lacks tree {id}");
    }
    assert!(text.contains("Vườn Ông Tám"));
    assert_eq!(get(s, "/api/labels?orchard=DL-B", Some(&w.farmer)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(s, "/api/labels?orchard=DL-A", None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(s, "/api/labels?orchard=DL-A&format=doc", Some(&w.farmer)).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(get(s, "/api/labels", Some(&w.farmer)).await.status, StatusCode::BAD_REQUEST);
    let lot = send(s, "POST", "/api/lots", Some(&w.farmer), &[], json(lot_body("DL-A", json!("whole_orchard")))).await;
    let code = lot.body["lot"]["code"].as_str().unwrap();
    let sheet = get(s, &format!("/api/labels?lot={code}&format=svg&count=7"), Some(&w.farmer)).await;
    assert_eq!(sheet.status, StatusCode::OK);
    let n = html(&sheet).matches(code).count();
    assert!(n >= 7, "{n} labels of lot {code}");
}

#[tokio::test]
async fn epcis_events_of_a_lot() {
    let w = world().await;
    let s = &w.state;
    let lot = send(
        s,
        "POST",
        "/api/lots",
        Some(&w.farmer),
        &[],
        json(lot_body("DL-A", json!({"trees": [w.trees_a[0], w.trees_a[1], w.trees_a[2]]}))),
    )
    .await;
    let code = lot.body["lot"]["code"].as_str().unwrap();
    let r = send(s, "GET", &format!("/api/epcis/events?lot={code}"), None, &[("host", HOST)], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/ld+json");
    let doc = &r.body;
    assert_eq!(doc["type"], "EPCISDocument");
    assert_eq!(doc["schemaVersion"], "2.0");
    assert!(doc["@context"].to_string().contains("https://ref.gs1.org/standards/epcis/epcis-context.jsonld"));
    let events = doc["epcisBody"]["eventList"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "ObjectEvent").count(), 3);
    assert!(kinds.contains(&"TransformationEvent") && kinds.contains(&"AggregationEvent"));
    let mut ids = std::collections::HashSet::new();
    for e in events {
        assert!(e["eventTime"].as_str().unwrap().ends_with("+07:00"), "{e}");
        assert_eq!(e["eventTimeZoneOffset"], "+07:00");
        let id = e["eventID"].as_str().unwrap();
        assert!(id.starts_with("ni:///sha-256;") && ids.insert(id.to_string()), "{id}");
        if e["type"] == "ObjectEvent" {
            assert_eq!(e["action"], "ADD");
        }
    }
    let transform = events.iter().find(|e| e["type"] == "TransformationEvent").unwrap();
    assert_eq!(transform["inputEPCList"].as_array().unwrap().len(), 3);
    assert_eq!(get(s, "/api/epcis/events", None).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(get(s, "/api/epcis/events?lot=L23456789", None).await.status, StatusCode::NOT_FOUND);
    let tree = get(s, &format!("/api/epcis/events?tree={}", code_of(s, w.trees_a[0]).await), None).await;
    assert_eq!(tree.body["epcisBody"]["eventList"][0]["bizStep"], "commissioning");
}

#[tokio::test]
async fn scans_are_counted_and_copied_labels_are_flagged() {
    let w = world().await;
    let s = &w.state;
    let mut body = lot_body("DL-A", json!("whole_orchard"));
    body["boxes"] = json!(1);
    let lot = send(s, "POST", "/api/lots", Some(&w.farmer), &[], json(body)).await;
    let code = lot.body["lot"]["code"].as_str().unwrap().to_string();
    let limit = geo_core::scan::lot_scan_limit(1);
    let mut last = String::new();
    for _ in 0..=limit {
        last = html(&get(s, &format!("/l/{code}?lang=en"), None).await);
    }
    // Language switches are not new scans.
    let switched = html(&get(s, &format!("/l/{code}?lang=vi&via=switch"), None).await);
    assert!(last.contains("class=\"flags\""), "{last}");
    assert!(switched.contains(&(limit + 1).to_string()), "the switch shows the same count");
    assert_eq!(get(s, "/api/scans/flagged", Some(&w.volunteer)).await.status, StatusCode::FORBIDDEN);
    let flagged = get(s, "/api/scans/flagged", Some(&w.admin)).await;
    assert_eq!(flagged.status, StatusCode::OK);
    let listed: Vec<&Value> =
        flagged.body["flagged"].as_array().unwrap().iter().filter(|f| f["code"] == code.as_str()).collect();
    assert_eq!(listed.len(), 1, "{}", flagged.body);
    assert_eq!(listed[0]["scans"], limit + 1);
    assert_eq!(listed[0]["flags"][0]["kind"], "more_scans_than_boxes");
    // Counts are stored: the database has them after the flush.
    let stored: u64 = s.store.scan_counts(&code).await.unwrap().iter().map(|c| c.count).sum();
    assert_eq!(stored, limit + 1);
}

#[tokio::test]
async fn shared_places_are_coarse_and_flag_a_tag_seen_in_many_places() {
    let w = world().await;
    let s = &w.state;
    let code = code_of(s, w.trees_a[5]).await;
    let page = html(&get(s, &format!("/t/{code}?lang=vi"), None).await);
    assert!(page.contains(&format!("/api/scans/{code}/place")) && page.contains("Chia sẻ vị trí"));
    // Two positions 200 m apart are one place; four cells ~20 km apart are four.
    for (lat, lon) in [(12.68, 108.05), (12.6818, 108.05), (12.88, 108.25), (13.08, 108.45), (13.28, 108.65)] {
        let r = send(s, "POST", &format!("/api/scans/{code}/place"), None, &[], json(json!({"lat": lat, "lon": lon})))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    let bad =
        send(s, "POST", &format!("/api/scans/{code}/place"), None, &[], json(json!({"lat": 95.0, "lon": 108.0}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown =
        send(s, "POST", "/api/scans/23456789/place", None, &[], json(json!({"lat": 12.0, "lon": 108.0}))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let page = html(&get(s, &format!("/t/{code}?lang=en"), None).await);
    assert!(page.contains("class=\"flags\""), "4 places flag a tree tag");
    let flagged = get(s, "/api/scans/flagged", Some(&w.admin)).await;
    let entry =
        flagged.body["flagged"].as_array().unwrap().iter().find(|f| f["code"] == code.as_str()).cloned().unwrap();
    assert_eq!(entry["places"], 4);
    assert_eq!(entry["scans"], 2, "place reports are not scans; the two page views are");
    // Only cells are stored, never the position.
    let stored = s.store.scan_counts(&code).await.unwrap();
    assert!(stored.iter().all(|c| c.place.is_empty() || c.place.matches('.').count() == 2), "{stored:?}");
}

#[tokio::test]
async fn an_all_digit_tag_code_is_found_as_a_code() {
    let w = world().await;
    let s = &w.state;
    // A valid code of digits only (the alphabet has 2-9), claimed by a new tree.
    let code = (0u32..)
        .flat_map(|i| {
            let payload: String = (0..6).map(|k| char::from(b'2' + ((i >> (3 * k)) & 7) as u8)).collect();
            (b'2'..=b'9').map(move |c| format!("{payload}{}", char::from(c)))
        })
        .find(|c| geo_core::TreeCode::parse(c).is_ok())
        .unwrap();
    let tree = json!({"lon": ORIGIN.lon + 0.0002, "lat": ORIGIN.lat + 0.0002, "cultivar": "Ri6", "health": "good", "orchard": "DL-A", "code": code});
    let made = send(s, "POST", "/api/trees", Some(&w.volunteer), &[], json(tree)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let id = made.body["id"].as_i64().unwrap();
    assert_eq!(get(s, &format!("/api/trees/{code}"), None).await.body["id"], id);
    let r = send(s, "GET", &format!("/api/trees/{code}/qr.png"), None, &[("host", HOST)], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(decode_png(&r.bytes).contains(&format!("/t/{code}?8030=")));
    // An id still wins when a tree has it.
    assert_eq!(get(s, &format!("/api/trees/{}", w.trees_a[0]), None).await.body["id"], w.trees_a[0]);
}
