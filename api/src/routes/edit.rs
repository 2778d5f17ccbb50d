//! Writing trees: create, patch with optimistic concurrency, remove with a
//! reason; and reading a tree's history.
//!
//! The version is the tree's `ETag` (`"3"`); `PATCH` and `DELETE` need it in
//! `If-Match`, and a stale one gets 412 with nothing written. Every write goes
//! to the database first, then straight into this server's index (other
//! servers pick it up from the change log).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Datelike;
use geo_core::{Cultivar, Health, LonLat, NewTree, OrchardId, RemovalReason, Tree, TreeCode, TreeId, VIETNAM};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::{Caller, actor, require_surveyor};
use crate::error::{AppError, Result};
use crate::geojson::TreeFeature;
use crate::params::Params;

/// The `ETag` of a tree version.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// The version an `If-Match` header names: `"3"`, `W/"3"` or `3`. 428 when
/// absent, 400 when unreadable.
fn if_match(headers: &HeaderMap) -> Result<i64> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Err(AppError::PreconditionRequired(
            "If-Match is required: send the tree's ETag (its version) from your last read".into(),
        ));
    };
    let text = raw.to_str().unwrap_or_default().trim();
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse::<i64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| AppError::bad("If-Match", format!("{text:?} is not a tree version such as \"3\"")))
}

/// The current year in Vietnam (UTC+7), for planting-year checks.
pub fn this_year() -> i32 {
    (chrono::Utc::now() + chrono::Duration::hours(7)).year()
}

/// The tree as GeoJSON with its `ETag`.
fn tree_response(status: StatusCode, tree: &Tree) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/geo+json"))],
        Json(TreeFeature::new(tree, None)),
    )
        .into_response();
    response.headers_mut().insert(header::ETAG, etag(tree.version));
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/api/trees/{}", tree.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    response
}

/// Reads a JSON object body, naming what is wrong with it.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AppError::bad("body", "must be a JSON object")),
        Err(e) => Err(AppError::bad("body", format!("is not valid JSON: {e}"))),
    }
}

/// The fields a tree body may carry, and the JSON type each needs.
const TREE_FIELDS: [&str; 10] =
    ["lon", "lat", "accuracy_m", "cultivar", "planted_year", "health", "height_m", "girth_cm", "orchard", "code"];

fn number(field: &'static str, v: &Value) -> Result<Option<f64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_f64().map(Some).ok_or_else(|| AppError::bad(field, format!("{n} is not a number"))),
        other => Err(AppError::bad(field, format!("{other} is not a number"))),
    }
}

fn text<'a>(field: &'static str, v: &'a Value) -> Result<&'a str> {
    v.as_str().ok_or_else(|| AppError::bad(field, format!("{v} is not a string")))
}

/// Applies the members of `body` to `tree` (JSON merge-patch rules: `null`
/// clears an optional field). Unknown members are refused by name.
fn apply(tree: &mut Tree, body: &Map<String, Value>) -> Result<()> {
    for (key, v) in body {
        match key.as_str() {
            "lon" | "lat" => {
                let value = number(if key == "lon" { "lon" } else { "lat" }, v)?
                    .ok_or_else(|| AppError::bad(if key == "lon" { "lon" } else { "lat" }, "cannot be null"))?;
                if key == "lon" {
                    tree.location = LonLat::new(value, tree.location.lat);
                } else {
                    tree.location = LonLat::new(tree.location.lon, value);
                }
            }
            "accuracy_m" => tree.accuracy_m = number("accuracy_m", v)?,
            "height_m" => tree.height_m = number("height_m", v)?,
            "girth_cm" => tree.girth_cm = number("girth_cm", v)?,
            "planted_year" => {
                tree.planted_year = match v {
                    Value::Null => None,
                    Value::Number(n) => Some(
                        n.as_i64()
                            .and_then(|y| i32::try_from(y).ok())
                            .ok_or_else(|| AppError::bad("planted_year", format!("{n} is not a year")))?,
                    ),
                    other => return Err(AppError::bad("planted_year", format!("{other} is not a year"))),
                }
            }
            "cultivar" => tree.cultivar = Cultivar::new(text("cultivar", v)?),
            "health" => {
                let h = text("health", v)?;
                tree.health = h
                    .parse::<Health>()
                    .map_err(|_| AppError::bad("health", format!("{h:?} is not one of good, fair, poor, dead")))?;
            }
            "orchard" => {
                let o = text("orchard", v)?;
                tree.orchard_id =
                    OrchardId::new(o).map_err(|_| AppError::bad("orchard", format!("{o:?} is not an orchard id")))?;
            }
            "code" => {
                let c = text("code", v)?;
                tree.code = TreeCode::parse(c).map_err(|e| AppError::bad("code", e.to_string()))?;
            }
            "version" | "id" => {} // Bookkeeping sent back as read: the version comes from If-Match.
            other => {
                return Err(AppError::bad(
                    "body",
                    format!("unknown field {other:?}; a tree has {}", TREE_FIELDS.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

/// `POST /api/trees` (volunteer, admin): a new tree from a JSON object with
/// `lon`, `lat`, `cultivar`, `health`, `orchard` and optionally `code`,
/// `accuracy_m`, `planted_year`, `height_m`, `girth_cm`. 201 with the tree,
/// its `ETag` and `Location`.
pub async fn create_tree(State(state): State<AppState>, caller: Caller, body: axum::body::Bytes) -> Result<Response> {
    let user = require_surveyor(caller)?;
    let body = object(&body)?;
    for required in ["lon", "lat", "cultivar", "health", "orchard"] {
        if body.get(required).is_none_or(Value::is_null) {
            return Err(AppError::bad("body", format!("{required} is required")));
        }
    }
    // A template tree to patch: every required member is then overwritten.
    let placeholder = OrchardId::new("_").map_err(|e| AppError::Internal(e.to_string()))?;
    let mut draft = Tree {
        id: TreeId(0),
        code: TreeCode::from_serial(0).map_err(|e| AppError::Internal(e.to_string()))?,
        location: LonLat::new(0.0, 0.0),
        accuracy_m: None,
        cultivar: Cultivar::new(""),
        planted_year: None,
        health: Health::Good,
        height_m: None,
        girth_cm: None,
        orchard_id: placeholder,
        survey_id: None,
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
        version: 1,
    };
    apply(&mut draft, &body)?;
    let new = NewTree {
        code: body.contains_key("code").then_some(draft.code),
        location: draft.location,
        accuracy_m: draft.accuracy_m,
        cultivar: draft.cultivar,
        planted_year: draft.planted_year,
        health: draft.health,
        height_m: draft.height_m,
        girth_cm: draft.girth_cm,
        orchard_id: draft.orchard_id,
        survey_id: None,
    };
    new.validate(&VIETNAM, this_year()).map_err(AppError::invalid)?;
    if state.cache.orchard(&new.orchard_id).is_none() && state.store.orchard(&new.orchard_id).await?.is_none() {
        return Err(AppError::bad("orchard", format!("orchard {} does not exist", new.orchard_id)));
    }
    let tree = state.store.create_tree(new, &actor(&user)).await?;
    state.cache.apply(tree.clone());
    tracing::info!(tree = %tree.id, code = %tree.code, by = %user.name, "tree created");
    Ok(tree_response(StatusCode::CREATED, &tree))
}

/// `PATCH /api/trees/{id}`: changes the fields given (JSON merge patch).
/// Needs `If-Match`. Volunteers and admins may change anything; farmers only
/// the `health` of trees in their orchards.
pub async fn patch_tree(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    let user = caller.require()?;
    let id = tree_id(&id)?;
    let version = if_match(&headers)?;
    let body = object(&body)?;
    // The tree as this server holds it when that is the version the client
    // names (a version number names one content; the store checks it again
    // under its write lock); otherwise, as the database has it (this server
    // may not have caught up with another's write yet).
    let held = state.cache.read().get(id).filter(|t| t.version == version).cloned();
    let current = match held {
        Some(tree) => Tree::clone(&tree),
        None => load(&state, id).await?,
    };
    if !user.may_survey() {
        if !user.may_tend(&current.orchard_id) {
            return Err(AppError::Forbidden(format!(
                "tree {id} is in orchard {}, which is not assigned to account {}",
                current.orchard_id, user.name
            )));
        }
        if let Some(field) = body.keys().find(|k| !matches!(k.as_str(), "health" | "id" | "version")) {
            return Err(AppError::Forbidden(format!(
                "a farmer account may change a tree's health only, not {field:?}"
            )));
        }
    }
    if current.version != version {
        return Err(AppError::PreconditionFailed(format!(
            "tree {id} is at version {}, not {version}: someone changed it first; read it again",
            current.version
        )));
    }
    let mut edited = current.clone();
    apply(&mut edited, &body)?;
    if edited.orchard_id != current.orchard_id && !user.may_tend(&edited.orchard_id) {
        return Err(AppError::Forbidden(format!(
            "orchard {} is not assigned to account {}",
            edited.orchard_id, user.name
        )));
    }
    edited.validate(&VIETNAM, this_year()).map_err(AppError::invalid)?;
    if edited == current {
        return Ok(tree_response(StatusCode::OK, &current));
    }
    let stored = state.store.edit_tree(&edited, &actor(&user)).await?;
    state.cache.apply(stored.clone());
    Ok(tree_response(StatusCode::OK, &stored))
}

/// `DELETE /api/trees/{id}?reason=dead|cut|mistaken` (volunteer, admin; the
/// reason may also come as a JSON body `{"reason": ...}`). Needs `If-Match`.
/// The tree leaves the map; its history keeps it.
pub async fn delete_tree(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<Response> {
    let user = require_surveyor(caller)?;
    let id = tree_id(&id)?;
    let version = if_match(&headers)?;
    let params = Params::parse(raw.as_deref());
    let from_body =
        if body.is_empty() { None } else { object(&body)?.get("reason").and_then(Value::as_str).map(str::to_string) };
    let reason_text = params
        .get("reason")
        .map(str::to_string)
        .or(from_body)
        .ok_or_else(|| AppError::bad("reason", "is required: dead, cut or mistaken"))?;
    let reason: RemovalReason = reason_text
        .parse()
        .map_err(|_| AppError::bad("reason", format!("{reason_text:?} is not one of dead, cut, mistaken")))?;
    load(&state, id).await?;
    let removed = state.store.remove_tree(id, version, reason, &actor(&user)).await?;
    state.cache.forget(id);
    tracing::info!(tree = %id, reason = reason.as_str(), by = %user.name, "tree removed");
    Ok(Json(json!({ "id": removed.id, "code": removed.code.as_str(), "removed": true, "reason": reason }))
        .into_response())
}

/// `GET /api/trees/{id}/history`: every change, oldest first.
pub async fn history(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let id = resolve(&state, &id)?;
    let changes = state.store.tree_changes(id).await?;
    if changes.is_empty() {
        return Err(AppError::NotFound(format!("tree {id} has no history: it never existed")));
    }
    Ok(Json(json!({ "tree_id": id, "changes": changes })).into_response())
}

/// A tree id from the path (ids only: writes never take a code).
fn tree_id(raw: &str) -> Result<TreeId> {
    raw.parse::<i64>().map(TreeId).map_err(|_| AppError::bad("id", format!("{raw:?} is not a tree id")))
}

/// A tree id from an id or a tag code in the path (for reads).
///
/// A tag code may be all digits (`2345678`): a number is an id when a tree has
/// that id, else a code when a tree has that code, else an id (for 404/410).
pub fn resolve(state: &AppState, raw: &str) -> Result<TreeId> {
    if let Ok(id) = raw.parse::<i64>() {
        let set = state.cache.read();
        if set.get(TreeId(id)).is_some() {
            return Ok(TreeId(id));
        }
        let by_code = TreeCode::parse(raw).ok().and_then(|c| set.by_code(&c).map(|t| t.id));
        return Ok(by_code.unwrap_or(TreeId(id)));
    }
    let code = TreeCode::parse(raw).map_err(|_| AppError::NotFound(format!("no tree with id or code {raw:?}")))?;
    state
        .cache
        .read()
        .by_code(&code)
        .map(|t| t.id)
        .ok_or_else(|| AppError::NotFound(format!("no tree with id or code {raw:?}")))
}

/// The stored tree, 410 when removed, 404 when it never existed.
pub async fn load(state: &AppState, id: TreeId) -> Result<Tree> {
    if let Some(tree) = state.store.tree(id).await? {
        return Ok(tree);
    }
    Err(missing(state, id).await)
}

/// The error for a tree that is not stored: 410 with why, or 404.
pub async fn missing(state: &AppState, id: TreeId) -> AppError {
    match state.store.removed_tree(id).await {
        Ok(Some((tree, reason, at))) => AppError::Gone(format!(
            "tree {id} ({}) was removed on {} ({}); see /api/trees/{id}/history",
            tree.code,
            at.format("%Y-%m-%d"),
            reason.as_str()
        )),
        Ok(None) => AppError::NotFound(format!("no tree with id {id}")),
        Err(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        let mut h = HeaderMap::new();
        assert!(matches!(if_match(&h), Err(AppError::PreconditionRequired(_))));
        for (raw, v) in [("\"3\"", 3), ("W/\"12\"", 12), ("7", 7)] {
            h.insert(header::IF_MATCH, HeaderValue::from_static(raw));
            assert_eq!(if_match(&h).unwrap(), v);
        }
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"abc\""));
        assert!(if_match(&h).unwrap_err().to_string().contains("abc"));
    }
}
