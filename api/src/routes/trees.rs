//! Tree records and spatial queries.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use geo_core::{TreeCode, TreeId};
use serde_json::json;

use crate::AppState;
use crate::error::{AppError, Result};
use crate::geojson::{TreeCollection, TreeFeature};
use crate::params::Params;

/// Largest `k` for `/api/trees/nearest`.
pub const MAX_K: usize = 1000;
/// Largest `radius_m` for `/api/trees/within`.
pub const MAX_RADIUS_M: f64 = 5000.0;
/// Largest page size (`limit`).
pub const MAX_LIMIT: usize = 10_000;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 100;

fn geojson(body: impl serde::Serialize) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/geo+json")], Json(body)).into_response()
}

/// `GET /api/trees/{id}`: one tree by numeric id or tag code.
pub async fn get_tree(State(state): State<AppState>, Path(key): Path<String>) -> Result<Response> {
    let set = state.cache.read();
    let by_id = key.parse::<i64>().ok().and_then(|id| set.get(TreeId(id)));
    let tree = match by_id {
        Some(t) => t,
        None => {
            let code = TreeCode::parse(&key).ok();
            match code.as_ref().and_then(|c| set.by_code(c)) {
                Some(t) => t,
                None => return Err(AppError::NotFound(format!("no tree with id or code {key:?}"))),
            }
        }
    };
    Ok(geojson(TreeFeature::new(tree, None)))
}

/// `GET /api/trees?bbox=...&limit=N&cursor=C`: trees in a box, by id, paged.
pub async fn list_trees(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let bbox = params.bbox()?;
    let limit = params.usize_in("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let after = match params.get("cursor") {
        None | Some("") => i64::MIN,
        Some(c) => {
            c.parse::<i64>().map_err(|_| AppError::bad("cursor", format!("{c:?} is not a cursor from a next link")))?
        }
    };
    let set = state.cache.read();
    let mut ids: Vec<TreeId> = set.index.in_bbox(&bbox).map(|e| e.id).collect();
    ids.sort_unstable();
    let matched = ids.len();
    let start = ids.partition_point(|id| id.0 <= after);
    let page = &ids[start..(start + limit).min(ids.len())];
    let features: Vec<TreeFeature<'_>> =
        page.iter().filter_map(|id| set.get(*id)).map(|t| TreeFeature::new(t, None)).collect();
    let mut links = vec![];
    if start + limit < ids.len() {
        if let Some(last) = page.last() {
            links.push(json!({
                "rel": "next",
                "type": "application/geo+json",
                "href": format!("/api/trees?bbox={bbox}&limit={limit}&cursor={}", last.0),
            }));
        }
    }
    Ok(geojson(TreeCollection::new(features, Some(matched), links)))
}

/// `GET /api/trees/nearest?lon=&lat=&k=`: the k nearest trees, nearest first, with `distance_m`.
pub async fn nearest(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let at = params.point()?;
    let k = params.usize_in("k", 1, 1, MAX_K)?;
    let set = state.cache.read();
    let features: Vec<TreeFeature<'_>> = set
        .index
        .nearest(at, k)
        .into_iter()
        .filter_map(|n| set.get(n.id).map(|t| TreeFeature::new(t, Some(n.distance_m))))
        .collect();
    Ok(geojson(TreeCollection::new(features, None, vec![])))
}

/// `GET /api/trees/within?lon=&lat=&radius_m=&limit=`: trees within a radius, nearest first.
pub async fn within(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let at = params.point()?;
    let radius = params.f64_in("radius_m", 0.0, MAX_RADIUS_M)?;
    let limit = params.usize_in("limit", MAX_LIMIT, 1, MAX_LIMIT)?;
    let set = state.cache.read();
    let found = set.index.within_radius(at, radius);
    let matched = found.len();
    let features: Vec<TreeFeature<'_>> = found
        .into_iter()
        .take(limit)
        .filter_map(|n| set.get(n.id).map(|t| TreeFeature::new(t, Some(n.distance_m))))
        .collect();
    Ok(geojson(TreeCollection::new(features, Some(matched), vec![])))
}
