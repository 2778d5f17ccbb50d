//! `GET /api/trees/{id}/qr.svg`: the QR code on a tree's tag, pointing at the
//! tree's record by its tag code (mixed case is kept out of the URL's path
//! only where it must be: tag codes are upper-case letters and digits).
//!
//! Error correction Q (tags hang outdoors and get scratched) and the
//! standard 4-module quiet zone; drawn as one SVG path of unit squares, so
//! it prints sharp at any size.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use qrcode::{EcLevel, QrCode};

use crate::AppState;
use crate::error::{AppError, Result};

/// Modules of white around the code (the QR standard's quiet zone).
pub const QUIET_ZONE: usize = 4;

/// The URL a tree's tag encodes.
pub fn tag_url(origin: &str, code: &str) -> String {
    format!("{origin}/api/trees/{code}")
}

/// An SVG of `data` as a QR code at error correction Q: a white square and one
/// black path with a `M x y h1v1h-1z` square per dark module.
pub fn qr_svg(data: &str) -> Result<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::Q)
        .map_err(|e| AppError::bad("id", format!("cannot encode {data:?} as a QR code: {e}")))?;
    let width = code.width();
    let colors = code.to_colors();
    let side = width + 2 * QUIET_ZONE;
    let mut path = String::with_capacity(colors.len() * 6);
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

/// `GET /api/trees/{id}/qr.svg` (id or tag code).
pub async fn tree_qr(State(state): State<AppState>, Path(key): Path<String>, headers: HeaderMap) -> Result<Response> {
    let id = crate::routes::edit::resolve(&state, &key)?;
    let held = state.cache.read().get(id).map(|tree| tree.code.as_str().to_string());
    let Some(code) = held else { return Err(crate::routes::edit::missing(&state, id).await) };
    let svg = qr_svg(&tag_url(&crate::routes::tiles::origin(&headers), &code))?;
    let mut response = svg.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    Ok(response)
}
