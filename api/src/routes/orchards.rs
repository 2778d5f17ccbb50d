//! Orchards.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use geo_core::OrchardId;

use crate::AppState;
use crate::error::{AppError, Result};
use crate::geojson::orchard_feature;

/// `GET /api/orchards/{id}`: the orchard with its boundary and tree count.
pub async fn get_orchard(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let not_found = || AppError::NotFound(format!("no orchard with id {id:?}"));
    let Ok(orchard_id) = OrchardId::new(id.clone()) else { return Err(not_found()) };
    let orchard = state.store.orchard(&orchard_id).await?.ok_or_else(not_found)?;
    let count = state.cache.read().orchard_tree_count(&orchard_id);
    Ok(([(axum::http::header::CONTENT_TYPE, "application/geo+json")], axum::Json(orchard_feature(&orchard, count)))
        .into_response())
}
