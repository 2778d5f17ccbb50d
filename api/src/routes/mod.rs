//! Request handlers, one module per resource.

pub mod edit;
pub mod export;
pub mod home;
pub mod imports;
pub mod lots;
pub mod map;
pub mod ogc;
pub mod orchards;
pub mod records;
pub mod resolver;
pub mod tiles;
pub mod trees;
pub mod users;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;

/// `GET /healthz`: the process is up and its index is loaded.
pub async fn healthz(State(state): State<AppState>) -> Json<Value> {
    let trees = state.cache.read().len();
    Json(json!({ "status": "ok", "trees": trees, "change_seq": state.cache.applied_seq() }))
}

/// `GET /readyz`: ready for writes: the database answers within 2 s (200), else 503 naming why.
/// Reads go on from memory either way; a load balancer sends writes elsewhere meanwhile.
pub async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let applied = state.cache.applied_seq();
    let (status, body) = match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.last_change()).await
    {
        Ok(Ok(seq)) => (
            axum::http::StatusCode::OK,
            json!({ "status": "ready", "database": "ok", "change_seq": seq, "applied_seq": applied }),
        ),
        Ok(Err(e)) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "database": e.to_string(), "applied_seq": applied }),
        ),
        Err(_) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "database": "no answer within 2 s", "applied_seq": applied }),
        ),
    };
    (status, Json(body)).into_response()
}
