//! Every route in `api::ROUTES` is served by the router and documented in the
//! OpenAPI document, the document lists nothing else, and answers that once
//! disagreed with it (found by scripts/schemathesis.sh) now agree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{StatusCode, header};
use common::{get, send, world};
use serde_json::Value;

#[tokio::test]
async fn every_listed_route_is_served_and_documented() {
    let w = world().await;
    let s = &w.state;
    let doc = get(s, "/api/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.body["paths"].as_object().unwrap();
    for (method, template) in api::ROUTES {
        let op = paths.get(*template).and_then(|p| p.get(method.to_lowercase()));
        assert!(op.is_some(), "{method} {template} missing from /api/openapi.json");
        let uri = template
            .replace("{id}", &w.trees_a[0].to_string())
            .replace("{name}", "nobody")
            .replace("{sha256}", &"0".repeat(64))
            .replace("{collectionId}", "trees")
            .replace("{featureId}", &w.trees_a[0].to_string());
        let r = send(s, method, &uri, Some(&w.admin), &[], vec![]).await;
        let fallback = r.body["error"]["message"].as_str() == Some("no such endpoint");
        assert!(
            r.status != StatusCode::METHOD_NOT_ALLOWED && !fallback,
            "{method} {uri} is not routed: {} {}",
            r.status,
            r.body
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert!(documented >= api::ROUTES.len());
}

/// The schema the document gives for this answer of `method path`: by its status and
/// media type. Panics when either is not documented.
fn documented<'a>(doc: &'a Value, method: &str, path: &str, r: &common::Reply) -> &'a Value {
    let responses = &doc["paths"][path][method]["responses"];
    let response = resolve(doc, &responses[r.status.as_str()]);
    assert!(response.is_object(), "{method} {path}: status {} is not documented", r.status);
    let media_type = r.headers[header::CONTENT_TYPE].to_str().unwrap().split(';').next().unwrap().trim();
    let media = &response["content"][media_type];
    assert!(media.is_object(), "{method} {path}: {media_type} is not documented for {}", r.status);
    &media["schema"]
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => resolve(doc, doc.pointer(&r[1..]).unwrap_or_else(|| panic!("{r} does not resolve"))),
        None => v,
    }
}

/// Whether `value` is valid under the OpenAPI 3.0 `schema` (the keywords the document uses).
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        conforms(doc, s, value, at)?;
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.iter().any(|s| conforms(doc, s, value, at).is_ok())
    {
        return Err(format!("{at}: valid under none of anyOf"));
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let n = one.iter().filter(|s| conforms(doc, s, value, at).is_ok()).count();
        if n != 1 {
            return Err(format!("{at}: valid under {n} of oneOf, not exactly one"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let ok = match schema["type"].as_str() {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => return Err(format!("{at}: type {other}?")),
    };
    if !ok {
        return Err(format!("{at}: {value} is not of type {}", schema["type"]));
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap()) {
                return Err(format!("{at}: {name} is required"));
            }
        }
        for (name, v) in object {
            match schema["properties"].get(name) {
                Some(s) => conforms(doc, s, v, &format!("{at}/{name}"))?,
                None if schema["additionalProperties"] == false => return Err(format!("{at}: {name} is not allowed")),
                None => {}
            }
        }
    }
    if let Some(items) = value.as_array() {
        for (i, v) in items.iter().enumerate() {
            conforms(doc, &schema["items"], v, &format!("{at}/{i}"))?;
        }
    }
    Ok(())
}

/// Answers schemathesis found at odds with the document: each is documented with its
/// status and media type, and a JSON body is valid under its schema.
#[tokio::test]
async fn answers_found_by_schemathesis_are_documented() {
    let w = world().await;
    let s = &w.state;
    let doc = get(s, "/api/openapi.json", None).await.body;
    let check = |path: &'static str, r: common::Reply| {
        let schema = documented(&doc, "get", path, &r);
        if r.headers[header::CONTENT_TYPE].to_str().unwrap().contains("json") {
            let body: Value = serde_json::from_slice(&r.bytes).unwrap();
            if let Err(e) = conforms(&doc, schema, &body, "") {
                let body = body.to_string();
                panic!("GET {path} ({}): {e}: {}", r.status, &body[..body.len().min(400)]);
            }
        }
    };
    // The GeoJSON export was documented as an opaque file; it is a FeatureCollection with the
    // orchards' fields (and an empty one when nothing matches).
    for uri in ["/api/export?format=geojson", "/api/export?format=geojson&bbox=0,0,0,0"] {
        let r = get(s, uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        check("/api/export", r);
    }
    // An empty page of OGC items is both a page of trees and one of orchards (was `oneOf`).
    for uri in ["/ogc/collections/orchards/items?bbox=0,0,0,0", "/ogc/collections/trees/items?bbox=0,0,0,0"] {
        let r = get(s, uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        check("/ogc/collections/{collectionId}/items", r);
    }
    // One tile route serves vector tiles and PNG images (was documented as vector tiles only).
    for uri in ["/tiles/trees/0/0/0.mvt", "/tiles/trees/0/0/0.png", "/tiles/trees/0/0/0@2x.png"] {
        let r = get(s, uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        check("/tiles/trees/{z}/{x}/{y}", r);
    }
    // The resolver's 404 is a page for a person (was documented as JSON only), and JSON when a
    // linkset is asked for a tag no tree has.
    let tag =
        send(s, "POST", "/api/tags", Some(&w.volunteer), &[], common::json(serde_json::json!({ "count": 1 }))).await;
    assert_eq!(tag.status, StatusCode::CREATED, "{}", tag.body);
    let code = tag.body["codes"][0].as_str().unwrap().to_string();
    for (path, uri) in [
        ("/t/{code}", "/t/0".to_string()),
        ("/t/{code}", "/t/AAAAAAA?lang=en".to_string()),
        ("/t/{code}", format!("/t/{code}?linkType=linkset")),
        ("/l/{code}", "/l/LAAAAAAA?lang=vi".to_string()),
        ("/414/{gln}/254/{code}", "/414/0/254/0".to_string()),
        ("/01/{gtin}/10/{lot}", "/01/0/10/0".to_string()),
    ] {
        let r = get(s, &uri, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        check(path, r);
    }
}
