//! The farm diary of a tree (care and harvest records) and its photos.
//!
//! Records are append-only: `POST` adds one (a correction names the record it
//! corrects), nothing edits or deletes them. Reading is public (the tree page
//! shows recent care); writing needs an account that may tend the tree's orchard.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use geo_core::{NewTreeRecord, RecordDetails};
use serde_json::json;

use crate::AppState;
use crate::auth::{Caller, actor, require_tender};
use crate::error::{AppError, Result};
use crate::params::Params;
use crate::routes::edit::{load, missing, resolve};

/// Today in Vietnam (UTC+7): records are dated by the orchard's calendar.
fn today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(7)).date_naive()
}

/// `GET /api/trees/{id}/records?kind=`: the tree's records, oldest first.
pub async fn list_records(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let id = resolve(&state, &id)?;
    let params = Params::parse(raw.as_deref());
    let kind = params.get("kind").map(str::to_string);
    if let Some(k) = &kind {
        if !geo_core::RECORD_KINDS.contains(&k.as_str()) {
            return Err(AppError::bad("kind", format!("{k:?} is not one of {}", geo_core::RECORD_KINDS.join(", "))));
        }
    }
    let records = state.store.tree_records(id).await?;
    if records.is_empty() && state.store.tree(id).await?.is_none() {
        // No records and no tree: say whether it was removed or never existed.
        if let AppError::NotFound(m) = missing(&state, id).await {
            return Err(AppError::NotFound(m));
        }
    }
    let records: Vec<_> =
        records.into_iter().filter(|r| kind.as_deref().is_none_or(|k| r.details.kind() == k)).collect();
    Ok(Json(json!({ "tree_id": id, "records": records })).into_response())
}

/// `POST /api/trees/{id}/records`: appends one record (JSON: `date`, `kind`
/// and the kind's fields, optional `note` and `corrects`). 201 with the record.
pub async fn add_record(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response> {
    let id = resolve(&state, &id)?;
    let tree = load(&state, id).await?;
    let user = require_tender(caller, &tree.orchard_id)?;
    let record: NewTreeRecord =
        serde_json::from_slice(&body).map_err(|e| AppError::bad("body", format!("is not a tree record: {e}")))?;
    if matches!(record.details, RecordDetails::Photo { .. }) {
        return Err(AppError::bad("kind", "photos are added with POST /api/trees/{id}/photos (the image itself)"));
    }
    record.validate(today()).map_err(AppError::invalid)?;
    let stored = state.store.add_record(id, record, &actor(&user)).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `POST /api/trees/{id}/photos?date=&note=`: the body is the image itself
/// (JPEG or PNG, checked from its bytes whatever the Content-Type says), up
/// to the configured size. Stored content-addressed; a `photo` record points
/// to it. 201 with the record and the photo's URLs.
pub async fn add_photo(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<Response> {
    let id = resolve(&state, &id)?;
    let tree = load(&state, id).await?;
    let user = require_tender(caller, &tree.orchard_id)?;
    let Some(photos) = state.photos.clone() else {
        return Err(AppError::Forbidden("this server keeps no photos (no photo folder configured)".into()));
    };
    if body.len() > state.max_photo_bytes {
        return Err(AppError::TooLarge(format!(
            "the photo is {} bytes; the limit is {} bytes",
            body.len(),
            state.max_photo_bytes
        )));
    }
    let params = Params::parse(raw.as_deref());
    let date = match params.get("date") {
        None | Some("") => today(),
        Some(d) => d
            .parse::<chrono::NaiveDate>()
            .map_err(|_| AppError::bad("date", format!("{d:?} is not a date (YYYY-MM-DD)")))?,
    };
    let note = params.get("note").map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let max = state.max_photo_bytes;
    let stored = tokio::task::spawn_blocking(move || photos.put(&body, max))
        .await
        .map_err(|e| AppError::Internal(format!("photo task failed: {e}")))?
        .map_err(photo_error)?;
    let record = NewTreeRecord {
        date,
        details: RecordDetails::Photo {
            sha256: stored.sha256.clone(),
            content_type: stored.kind.content_type().to_string(),
        },
        note,
        corrects: None,
    };
    record.validate(today()).map_err(AppError::invalid)?;
    let record = state.store.add_record(id, record, &actor(&user)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "record": record,
            "photo": {
                "sha256": stored.sha256,
                "width": stored.width,
                "height": stored.height,
                "bytes": stored.bytes,
                "url": format!("/api/photos/{}", stored.sha256),
                "thumbnail_url": format!("/api/photos/{}?size=thumb", stored.sha256),
            }
        })),
    )
        .into_response())
}

fn photo_error(e: store::photos::PhotoError) -> AppError {
    use store::photos::PhotoError;
    match e {
        PhotoError::TooLarge { .. } => AppError::TooLarge(e.to_string()),
        PhotoError::NotAnImage => AppError::UnsupportedMediaType(format!("{e}: send a JPEG or PNG image")),
        PhotoError::Corrupt(_) => AppError::BadFile(e.to_string()),
        PhotoError::BadName(_) => AppError::bad("sha256", e.to_string()),
        other => AppError::Internal(other.to_string()),
    }
}

/// `GET /api/photos/{sha256}?size=thumb`: a stored photo (or its 256-px
/// thumbnail). Content-addressed, so cacheable forever.
pub async fn get_photo(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let thumbnail = match params.get("size") {
        None | Some("") | Some("full") => false,
        Some("thumb") => true,
        Some(other) => return Err(AppError::bad("size", format!("{other:?} is not one of full, thumb"))),
    };
    let Some(photos) = state.photos.clone() else {
        return Err(AppError::NotFound(format!("no photo {sha256}")));
    };
    let found = photos.open(&sha256, thumbnail).map_err(photo_error)?;
    let Some((path, content_type)) = found else { return Err(AppError::NotFound(format!("no photo {sha256}"))) };
    let etag = format!("\"{sha256}{}\"", if thumbnail { "-t" } else { "" });
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let bytes = tokio::fs::read(&path).await.map_err(|e| AppError::Internal(format!("{}: {e}", path.display())))?;
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}
