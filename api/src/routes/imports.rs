//! `POST /api/imports`: the survey import over HTTP.
//!
//! A multipart form: the file in a part named `file` (its filename tells the
//! format unless a `format` field does), and any of the import options as
//! text fields with the CLI's names (`crs`, `map`, `dry_run`, `allow_near`,
//! `surveyor`, ... see [`importer::pipeline::OPTION_NAMES`]). Option fields
//! must come before the file part, as browsers and curl send them in order.
//! The upload is streamed to a temporary file while it is hashed, so memory
//! stays bounded whatever its size; the answer is the same JSON report as
//! `orchardmap import --report`. A `Content-Encoding: gzip` body is decoded on
//! the way ([`crate::middleware::decode_body`]); the limit
//! ([`crate::Hygiene::max_import_bytes`]) counts decoded bytes: 413 beyond it.

use std::io::{BufReader, Seek, Write};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use importer::pipeline::{self, ImportOptions, Input, Report};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{Caller, require_surveyor};
use crate::error::{AppError, Result};

/// The default largest upload ([`crate::Hygiene::max_import_bytes`]; a 1,000,000-tree CSV is about 85 MB).
pub const MAX_UPLOAD_BYTES: usize = 2 << 30;

fn bad_form(message: impl Into<String>) -> AppError {
    AppError::bad("file", message)
}

/// Most bytes the form may hold before its first boundary and in one part's headers: the
/// multipart parser keeps them in memory until their end, so they are bounded while they
/// arrive ([`PartHeads`]), not only by the upload limit.
const MAX_PART_HEAD: usize = 16 * 1024;

/// Most bytes of one option field (they are read whole; only the file part is streamed to disk).
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// The bytes before the first boundary or in one part's headers passed [`MAX_PART_HEAD`].
#[derive(Debug, thiserror::Error)]
#[error("the multipart form has more than {MAX_PART_HEAD} bytes of part headers (or before its first boundary)")]
struct HeadTooLong;

/// Watches a multipart body as it streams past the parser: the bytes before the first
/// delimiter (`--boundary`) and from each delimiter (`CRLF--boundary`) to the blank line
/// ending that part's headers are counted, [`HeadTooLong`] past [`MAX_PART_HEAD`]; part
/// contents are not.
struct PartHeads {
    delimiter: Vec<u8>,
    /// The first delimiter was seen.
    started: bool,
    /// Between a delimiter and the end of that part's headers.
    in_head: bool,
    /// Bytes counted since the last delimiter or blank line.
    head: usize,
    /// The end of the previous chunk, where a delimiter may begin.
    tail: Vec<u8>,
}

impl PartHeads {
    fn new(boundary: &str) -> Self {
        Self {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            started: false,
            in_head: false,
            head: 0,
            tail: vec![],
        }
    }

    fn check(&mut self, chunk: &[u8]) -> std::result::Result<(), HeadTooLong> {
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let counting = !self.started || self.in_head;
            // A delimiter inside the body starts a line; the first may open the body.
            let pattern: &[u8] = match (self.started, self.in_head) {
                (false, _) => &self.delimiter[2..],
                (true, true) => b"\r\n\r\n",
                (true, false) => &self.delimiter,
            };
            match find(&buf[pos..], pattern) {
                Some(i) => {
                    if counting && self.head + i > MAX_PART_HEAD {
                        return Err(HeadTooLong);
                    }
                    pos += i + pattern.len();
                    self.in_head = !self.started || !self.in_head;
                    self.started = true;
                    self.head = 0;
                }
                None => {
                    let keep = (pattern.len() - 1).min(buf.len() - pos);
                    if counting {
                        self.head += buf.len() - pos - keep;
                        if self.head > MAX_PART_HEAD {
                            return Err(HeadTooLong);
                        }
                    }
                    self.tail = buf.split_off(buf.len() - keep);
                    return Ok(());
                }
            }
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The multipart form of `request`, its part headers bounded on the way ([`PartHeads`]).
async fn form(request: axum::extract::Request, state: &AppState) -> Result<Multipart> {
    use axum::extract::FromRequest;
    use futures_util::StreamExt;
    let content_type = request.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let request = match content_type.and_then(boundary_of).filter(|b| !b.is_empty()) {
        Some(boundary) => {
            let mut heads = PartHeads::new(&boundary);
            request.map(move |body| {
                axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
                    let chunk = chunk.map_err(axum::BoxError::from)?;
                    heads.check(&chunk)?;
                    Ok::<_, axum::BoxError>(chunk)
                }))
            })
        }
        None => request,
    };
    Multipart::from_request(request, state).await.map_err(|e| bad_form(e.body_text()))
}

/// A failure reading the multipart body: 413 when the body passed the upload limit
/// (counted after decoding a gzip body), else 400 naming the cause.
fn upload_error(e: &axum::extract::multipart::MultipartError, what: &str, limit: usize) -> AppError {
    let mut cause = String::new();
    let mut too_large = e.status() == StatusCode::PAYLOAD_TOO_LARGE;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(d) = s.downcast_ref::<crate::middleware::BodyDecodeError>() {
            too_large |= d.too_large;
        }
        if s.is::<HeadTooLong>() {
            return AppError::TooLarge(s.to_string());
        }
        cause = s.to_string();
        source = s.source();
    }
    if too_large {
        return AppError::TooLarge(format!("the upload is larger than the limit of {limit} bytes"));
    }
    bad_form(if cause.is_empty() { format!("{what}: {e}") } else { format!("{what}: {e}: {cause}") })
}

/// `POST /api/imports`.
/// Needs a volunteer or admin token; the account is recorded as the surveyor
/// unless the form names one.
pub async fn create_import(
    State(state): State<AppState>,
    caller: Caller,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<Report>)> {
    let user = require_surveyor(caller)?;
    let limit = state.hygiene.max_import_bytes;
    let mut form = form(request, &state).await?;
    let mut opts = ImportOptions { surveyor: user.name.clone(), ..ImportOptions::default() };
    let mut upload: Option<(String, std::fs::File, String, u64)> = None;
    while let Some(mut field) =
        form.next_field().await.map_err(|e| upload_error(&e, "the multipart body is malformed", limit))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if upload.is_some() {
                return Err(bad_form("only one file per import"));
            }
            let file_name = field.file_name().map(str::to_owned).unwrap_or_else(|| "upload".into());
            let mut spool = tempfile::tempfile().map_err(|e| AppError::Internal(format!("temp file: {e}")))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| upload_error(&e, &format!("the upload of {file_name} broke off"), limit))?
            {
                hasher.update(&chunk);
                size += chunk.len() as u64;
                spool.write_all(&chunk).map_err(|e| AppError::Internal(format!("temp file: {e}")))?;
            }
            spool.rewind().map_err(|e| AppError::Internal(format!("temp file: {e}")))?;
            upload = Some((file_name, spool, format!("{:x}", hasher.finalize()), size));
        } else {
            if upload.is_some() {
                return Err(AppError::bad("form", format!("field {name:?} must come before the file part")));
            }
            let mut value = Vec::new();
            while let Some(chunk) =
                field.chunk().await.map_err(|e| upload_error(&e, &format!("field {name:?} broke off"), limit))?
            {
                if value.len() + chunk.len() > MAX_FIELD_BYTES {
                    return Err(AppError::TooLarge(format!(
                        "form field {name:?} is longer than {MAX_FIELD_BYTES} bytes"
                    )));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value)
                .map_err(|_| AppError::bad("form", format!("field {name:?} is not UTF-8 text")))?;
            opts.set(&name, &value).map_err(|message| AppError::bad("form", message))?;
        }
    }
    let Some((file_name, spool, sha256, size)) = upload else {
        return Err(bad_form("missing: send the survey in a multipart part named \"file\""));
    };
    let input = Input::from_reader(&file_name, sha256, Some(size), Box::new(BufReader::with_capacity(1 << 16, spool)));
    let report = match pipeline::import(state.store.clone(), input, opts, None, Arc::new(|_| {})).await {
        Ok(report) => report,
        Err(e) => {
            state.metrics.record_import("failed");
            return Err(e.into());
        }
    };
    state.metrics.record_import(if report.survey_id.is_some() { "imported" } else { "nothing_written" });
    // Make the new trees visible to this server's next request, not just within the follow interval.
    state.cache.catch_up(state.store.as_ref()).await?;
    let status = if report.survey_id.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(report)))
}
