//! Every route in `api::ROUTES` is served by the router and documented in the
//! OpenAPI document, and the document lists nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::{get, send, world};

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
