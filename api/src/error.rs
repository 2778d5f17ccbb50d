//! The one error type of the API and its JSON body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Result alias for handlers.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// An error answered as `{"error": {"code": "...", "message": "..."}}`.
///
/// 4xx bodies say exactly what is wrong; 5xx bodies are opaque to the client
/// and the cause is logged with context instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// A query or path parameter is missing or malformed; names the parameter.
    #[error("{param}: {message}")]
    BadParameter {
        /// The parameter's name.
        param: &'static str,
        /// What is wrong with it, including the value.
        message: String,
    },
    /// Nothing with this identifier.
    #[error("{0}")]
    NotFound(String),
    /// No valid credentials (no token, a malformed, unknown or revoked one).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but the account lacks the right (or not allowed here at all).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the stored state (a name or code already taken).
    #[error("{0}")]
    Conflict(String),
    /// A write without `If-Match` where the version must be given.
    #[error("{0}")]
    PreconditionRequired(String),
    /// `If-Match` names a version that is no longer current; nothing was written.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The thing existed and was removed.
    #[error("{0}")]
    Gone(String),
    /// The request body is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The body is not of a type this endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A request body that is well-formed but has invalid values; every problem listed.
    #[error("{message}")]
    Invalid {
        /// Summary naming every problem.
        message: String,
        /// The problems, field by field.
        problems: Vec<geo_core::Problem>,
    },
    /// An uploaded file cannot be used at all; names the file and what is wrong.
    #[error("{0}")]
    BadFile(String),
    /// The server is still loading its index.
    #[error("the tree index is still loading")]
    Unavailable,
    /// The database cannot be reached: reads go on from memory, writes must wait.
    #[error("the database is unavailable ({0}); reads are answered from memory; retry this request shortly")]
    DatabaseUnavailable(String),
    /// Anything else: logged, answered as a bare 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// An error for a body whose values fail validation.
    pub fn invalid(e: geo_core::Error) -> Self {
        match e {
            geo_core::Error::Invalid(problems) => {
                let message = problems
                    .iter()
                    .map(|p| format!("{} {:?}: {}", p.field, p.value, p.reason))
                    .collect::<Vec<_>>()
                    .join("; ");
                AppError::Invalid { message, problems }
            }
            geo_core::Error::Parse { field, value, reason } => AppError::Invalid {
                message: format!("{field} {value:?}: {reason}"),
                problems: vec![geo_core::Problem { field: field.to_string(), value, reason }],
            },
            other => AppError::Invalid { message: other.to_string(), problems: vec![] },
        }
    }

    /// A bad-parameter error.
    pub fn bad(param: &'static str, message: impl Into<String>) -> Self {
        Self::BadParameter { param, message: message.into() }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadParameter { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::PreconditionRequired(_) => (StatusCode::PRECONDITION_REQUIRED, "precondition_required"),
            AppError::PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            AppError::Gone(_) => (StatusCode::GONE, "gone"),
            AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AppError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            AppError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            AppError::BadFile(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_file"),
            AppError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::DatabaseUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<store::Error> for AppError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NotFound(id) => AppError::NotFound(format!("tree {id} not found")),
            store::Error::Invalid { field, reason } => AppError::BadParameter { param: field, message: reason },
            store::Error::Conflict { id, current, given } => AppError::PreconditionFailed(format!(
                "tree {id} is at version {current}, not {given}: someone changed it first; read it again"
            )),
            store::Error::UnknownOrchard(id) => AppError::bad("orchard", format!("orchard {id} does not exist")),
            store::Error::DuplicateCode(code) => AppError::Conflict(format!("tree code {code} is already in use")),
            store::Error::NoSuchTree(r) => AppError::NotFound(format!("{r} not found")),
            e if e.is_unavailable() => AppError::DatabaseUnavailable(e.to_string()),
            e if e.is_unstorable_text() => AppError::bad(
                "text",
                "a text value contains a character that cannot be stored (U+0000, a NUL); nothing was saved",
            ),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<importer::Error> for AppError {
    fn from(e: importer::Error) -> Self {
        match e {
            importer::Error::Store(e) => e.into(),
            importer::Error::Internal(cause) => AppError::Internal(cause),
            importer::Error::Io { file, source } => AppError::Internal(format!("{file}: {source}")),
            importer::Error::Options(message) => AppError::bad("form", message),
            other => AppError::BadFile(other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            AppError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "internal server error".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({ "error": { "code": code, "message": message } });
        if let AppError::Invalid { problems, .. } = &self {
            body["error"]["problems"] = json!(problems);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"orchardmap\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("2"));
        }
        response
    }
}
