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
    /// Not allowed here (e.g. imports on a server bound to a public address).
    #[error("{0}")]
    Forbidden(String),
    /// An uploaded file cannot be used at all; names the file and what is wrong.
    #[error("{0}")]
    BadFile(String),
    /// The server is still loading its index.
    #[error("the tree index is still loading")]
    Unavailable,
    /// Anything else: logged, answered as a bare 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A bad-parameter error.
    pub fn bad(param: &'static str, message: impl Into<String>) -> Self {
        Self::BadParameter { param, message: message.into() }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadParameter { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::BadFile(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_file"),
            AppError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<store::Error> for AppError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NotFound(id) => AppError::NotFound(format!("tree {id} not found")),
            store::Error::Invalid { field, reason } => AppError::BadParameter { param: field, message: reason },
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
        (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
    }
}
