//! `POST /api/imports`: the survey import over HTTP.
//!
//! A multipart form: the file in a part named `file` (its filename tells the
//! format unless a `format` field does), and any of the import options as
//! text fields with the CLI's names (`crs`, `map`, `dry_run`, `allow_near`,
//! `surveyor`, ... see [`importer::pipeline::OPTION_NAMES`]). Option fields
//! must come before the file part, as browsers and curl send them in order.
//! The upload is streamed to a temporary file while it is hashed, so memory
//! stays bounded whatever its size; the answer is the same JSON report as
//! `orchardmap import --report`.

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

/// The largest upload accepted (a 1,000,000-tree CSV is about 85 MB).
pub const MAX_UPLOAD_BYTES: usize = 2 << 30;

fn bad_form(message: impl Into<String>) -> AppError {
    AppError::bad("file", message)
}

/// `POST /api/imports`.
/// Needs a volunteer or admin token; the account is recorded as the surveyor
/// unless the form names one.
pub async fn create_import(
    State(state): State<AppState>,
    caller: Caller,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Report>)> {
    let user = require_surveyor(caller)?;
    let mut opts = ImportOptions { surveyor: user.name.clone(), ..ImportOptions::default() };
    let mut upload: Option<(String, std::fs::File, String, u64)> = None;
    while let Some(mut field) =
        form.next_field().await.map_err(|e| bad_form(format!("the multipart body is malformed: {e}")))?
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
            while let Some(chunk) =
                field.chunk().await.map_err(|e| bad_form(format!("the upload of {file_name} broke off: {e}")))?
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
            let value =
                field.text().await.map_err(|e| AppError::bad("form", format!("field {name:?} is not text: {e}")))?;
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
