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
