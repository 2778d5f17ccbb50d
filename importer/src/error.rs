//! Errors that concern a whole file.
//!
//! A problem with one row or one feature that can be reported and skipped is
//! not an [`Error`]: it is a [`RowProblem`](crate::RowProblem) in the import
//! result. An [`Error`] means the file as a whole could not be used; its
//! message always starts with the file name.

use crate::problem::FeatureProblem;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many feature problems an [`Error::InvalidFeatures`] message lists before "and N more".
const LISTED: usize = 10;

/// A file could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading failed.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// File name.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing (or only blank space).
    #[error("{file}: the file is empty")]
    Empty {
        /// File name.
        file: String,
    },
    /// The file is not UTF-8 text (for instance UTF-16, as some spreadsheets save).
    #[error("{file}: {reason}")]
    Encoding {
        /// File name.
        file: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The CSV header lacks required columns.
    #[error("{file}: missing required column{} {} (the header has: {found})",
        if .columns.len() == 1 { "" } else { "s" }, .columns.join(", "))]
    MissingColumns {
        /// File name.
        file: String,
        /// The missing columns, by their canonical names.
        columns: Vec<&'static str>,
        /// The header as found.
        found: String,
    },
    /// A CSV column appears more than once in the header.
    #[error("{file}: column {column} appears more than once in the header")]
    DuplicateColumn {
        /// File name.
        file: String,
        /// The repeated column (canonical name).
        column: &'static str,
    },
    /// The CSV reader failed at some line.
    #[error("{file} line {line}: {reason}")]
    Csv {
        /// File name.
        file: String,
        /// 1-based line.
        line: u64,
        /// What went wrong.
        reason: String,
    },
    /// The file is not valid JSON.
    #[error("{file}: not valid JSON: {source}")]
    Json {
        /// File name.
        file: String,
        /// The parser's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The JSON is not a GeoJSON FeatureCollection (or Feature).
    #[error("{file}: {reason}")]
    NotGeoJson {
        /// File name.
        file: String,
        /// What was expected and found.
        reason: String,
    },
    /// Some features are not valid orchards; nothing from the file is used.
    #[error("{file}: {} invalid feature{}: {}{}",
        .problems.len(),
        if .problems.len() == 1 { "" } else { "s" },
        .problems.iter().take(LISTED).map(|p| p.describe()).collect::<Vec<_>>().join("; "),
        if .problems.len() > LISTED { format!("; and {} more", .problems.len() - LISTED) } else { String::new() })]
    InvalidFeatures {
        /// File name.
        file: String,
        /// Every problem found, feature by feature.
        problems: Vec<FeatureProblem>,
    },
    /// Columns or properties cannot be mapped to fields (no coordinates, a bad `--map`).
    #[error("{file}: {reason}")]
    Mapping {
        /// File name.
        file: String,
        /// What is missing or wrong, with the columns found.
        reason: String,
    },
    /// The file is not well-formed in its format (broken quoting, XML or JSON).
    #[error("{file}: {reason}")]
    Malformed {
        /// File name.
        file: String,
        /// Where and what.
        reason: String,
    },
    /// An import option is invalid; names the option and the value.
    #[error("{0}")]
    Options(String),
    /// The database refused the import; nothing was written.
    #[error("nothing was imported: {0}")]
    Store(#[from] store::Error),
    /// A worker thread failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The name of the file the error is about.
    pub fn file(&self) -> &str {
        match self {
            Error::Io { file, .. }
            | Error::Empty { file }
            | Error::Encoding { file, .. }
            | Error::MissingColumns { file, .. }
            | Error::DuplicateColumn { file, .. }
            | Error::Csv { file, .. }
            | Error::Json { file, .. }
            | Error::NotGeoJson { file, .. }
            | Error::InvalidFeatures { file, .. }
            | Error::Mapping { file, .. }
            | Error::Malformed { file, .. } => file,
            Error::Options(_) | Error::Store(_) | Error::Internal(_) => "",
        }
    }
}
