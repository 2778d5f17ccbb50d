//! Orchards.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use geo_core::{Orchard, OrchardId};
use geo_types::{Coord, LineString, Polygon};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::{Caller, actor, require_surveyor};
use crate::error::{AppError, Result};
use crate::geojson::orchard_feature;
use crate::routes::edit::object;

/// `GET /api/orchards/{id}`: the orchard with its boundary and tree count
/// (the owner only for signed-in callers).
pub async fn get_orchard(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response> {
    let not_found = || AppError::NotFound(format!("no orchard with id {id:?}"));
    let Ok(orchard_id) = OrchardId::new(id.clone()) else { return Err(not_found()) };
    let orchard = state.store.orchard(&orchard_id).await?.ok_or_else(not_found)?;
    let count = state.cache.read().orchard_tree_count(&orchard_id);
    let mut feature = orchard_feature(&orchard, count);
    if !caller.sees_private() {
        strip_private(&mut feature);
    }
    Ok(for_caller(geojson(feature), &caller))
}

/// `GET /api/orchards`: every orchard with its tree count (no boundaries; ask
/// for one orchard for its boundary). Owners only for signed-in callers.
pub async fn list_orchards(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    let orchards = state.cache.orchards();
    let mut all: Vec<_> = orchards.values().collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let set = state.cache.read();
    let items: Vec<Value> = all
        .into_iter()
        .map(|o| {
            let mut f = orchard_feature(o, set.orchard_tree_count(&o.id));
            f["geometry"] = Value::Null;
            if !caller.sees_private() {
                strip_private(&mut f);
            }
            f
        })
        .collect();
    let body = json!({ "type": "FeatureCollection", "numberReturned": items.len(), "features": items });
    Ok(for_caller(geojson(body), &caller))
}

fn geojson(body: Value) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/geo+json")], axum::Json(body)).into_response()
}

/// A read whose content depends on who asks: it varies with `Authorization`, and one
/// showing private fields is kept by no cache (a CDN or proxy must never hand an owner's
/// name to the next, anonymous, reader).
fn for_caller(mut response: Response, caller: &Caller) -> Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Authorization"));
    if caller.sees_private() {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    }
    response
}

/// Removes what only signed-in users may see (the owner) from an orchard feature.
pub fn strip_private(feature: &mut Value) {
    if let Some(props) = feature.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("owner");
    }
}

/// Reads a GeoJSON Polygon geometry, refusing open rings (which
/// `geo_types::Polygon` would silently close) and malformed positions.
fn boundary(v: &Value) -> Result<Option<Polygon<f64>>> {
    if v.is_null() {
        return Ok(None);
    }
    let bad = |m: String| AppError::bad("boundary", m);
    if v.get("type").and_then(Value::as_str) != Some("Polygon") {
        return Err(bad("must be a GeoJSON Polygon geometry ({\"type\":\"Polygon\",\"coordinates\":[...]})".into()));
    }
    let rings = v.get("coordinates").and_then(Value::as_array).ok_or_else(|| bad("has no coordinates array".into()))?;
    if rings.is_empty() {
        return Err(bad("has no ring".into()));
    }
    let mut out: Vec<LineString<f64>> = Vec::with_capacity(rings.len());
    for (r, ring) in rings.iter().enumerate() {
        let positions = ring.as_array().ok_or_else(|| bad(format!("ring {r} is not an array of positions")))?;
        let mut coords = Vec::with_capacity(positions.len());
        for (i, p) in positions.iter().enumerate() {
            let xy = p.as_array().filter(|a| a.len() >= 2).and_then(|a| Some((a[0].as_f64()?, a[1].as_f64()?)));
            let Some((x, y)) = xy else { return Err(bad(format!("ring {r} position {i} is not [lon, lat]: {p}"))) };
            coords.push(Coord { x, y });
        }
        if coords.len() < 4 {
            return Err(bad(format!("ring {r} has {} positions; a ring needs at least 4", coords.len())));
        }
        if coords.first() != coords.last() {
            return Err(bad(format!("ring {r} is not closed: its first and last positions differ")));
        }
        out.push(LineString(coords));
    }
    let exterior = out.remove(0);
    Ok(Some(Polygon::new(exterior, out)))
}

fn string(body: &Map<String, Value>, field: &'static str) -> Result<Option<String>> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(other) => Err(AppError::bad(field, format!("{other} is not a string"))),
    }
}

/// Applies an orchard body (create or merge patch) to `orchard`.
fn apply(orchard: &mut Orchard, body: &Map<String, Value>) -> Result<()> {
    for key in body.keys() {
        if !matches!(
            key.as_str(),
            "id" | "name" | "owner" | "commune" | "district" | "province" | "planting_area_code" | "gln" | "boundary"
        ) {
            return Err(AppError::bad("body", format!("unknown field {key:?}")));
        }
    }
    if let Some(v) = string(body, "name")? {
        orchard.name = v;
    }
    if let Some(v) = string(body, "owner")? {
        orchard.owner = v;
    }
    if let Some(v) = string(body, "commune")? {
        orchard.commune = v;
    }
    if let Some(v) = string(body, "district")? {
        orchard.district = v;
    }
    if let Some(v) = string(body, "province")? {
        orchard.province = v;
    }
    if body.contains_key("planting_area_code") {
        orchard.planting_area_code = string(body, "planting_area_code")?.filter(|c| !c.is_empty());
    }
    if body.contains_key("gln") {
        orchard.gln = string(body, "gln")?.filter(|c| !c.is_empty());
    }
    if let Some(b) = body.get("boundary") {
        orchard.boundary = boundary(b)?;
    }
    orchard.validate(&geo_core::VIETNAM).map_err(AppError::invalid)
}

/// `POST /api/orchards` (volunteer, admin): a new orchard: `id`, `name`,
/// `province` required; `owner`, `commune`, `district`,
/// `planting_area_code`, `boundary` (GeoJSON Polygon: closed rings, not
/// self-intersecting). 409 when the id is taken.
pub async fn create_orchard(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response> {
    let user = require_surveyor(caller)?;
    let body = object(&body)?;
    let id = match body.get("id") {
        Some(Value::String(s)) => OrchardId::new(s.as_str())
            .map_err(|_| AppError::bad("id", format!("{s:?}: 1-40 characters of A-Z, a-z, 0-9, '-', '_'")))?,
        _ => return Err(AppError::bad("id", "is required (e.g. DL-CK-EATIEU-101)")),
    };
    if state.store.orchard(&id).await?.is_some() {
        return Err(AppError::Conflict(format!("orchard {id} already exists; PATCH /api/orchards/{id} changes it")));
    }
    let mut orchard = Orchard {
        id: id.clone(),
        name: String::new(),
        owner: String::new(),
        commune: String::new(),
        district: String::new(),
        province: String::new(),
        planting_area_code: None,
        gln: None,
        boundary: None,
    };
    apply(&mut orchard, &body)?;
    state.store.put_orchard(&orchard, &actor(&user)).await?;
    state.cache.refresh_orchards(state.store.as_ref()).await?;
    let mut response = (StatusCode::CREATED, geojson(orchard_feature(&orchard, 0))).into_response();
    if let Ok(loc) = axum::http::HeaderValue::from_str(&format!("/api/orchards/{id}")) {
        response.headers_mut().insert(axum::http::header::LOCATION, loc);
    }
    Ok(response)
}

/// `PATCH /api/orchards/{id}` (volunteer, admin): changes the fields given
/// (`null` clears `planting_area_code` or `boundary`).
pub async fn patch_orchard(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response> {
    let user = require_surveyor(caller)?;
    let not_found = || AppError::NotFound(format!("no orchard with id {id:?}"));
    let orchard_id = OrchardId::new(id.clone()).map_err(|_| not_found())?;
    let mut orchard = state.store.orchard(&orchard_id).await?.ok_or_else(not_found)?;
    let body = object(&body)?;
    if let Some(v) = body.get("id") {
        if v.as_str() != Some(orchard_id.as_str()) {
            return Err(AppError::bad("id", "cannot be changed"));
        }
    }
    apply(&mut orchard, &body)?;
    state.store.put_orchard(&orchard, &actor(&user)).await?;
    state.cache.refresh_orchards(state.store.as_ref()).await?;
    let count = state.cache.read().orchard_tree_count(&orchard_id);
    Ok(geojson(orchard_feature(&orchard, count)))
}
