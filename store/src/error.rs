//! Storage errors.

use geo_core::{OrchardId, SurveyId, TreeId, TreeRef};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be opened, created or migrated; names the location.
    #[error("cannot open database {location}: {reason}")]
    Open {
        /// File path or URL (password removed).
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// The tree does not exist.
    #[error("tree {0} not found")]
    NotFound(TreeId),
    /// Optimistic concurrency: the stored version is not the one the caller read.
    #[error("tree {id} was changed by someone else (stored version {current}, yours {given})")]
    Conflict {
        /// The tree.
        id: TreeId,
        /// Version in the database.
        current: i64,
        /// Version the caller based the change on.
        given: i64,
    },
    /// A tree refers to an orchard that is neither stored nor in the same import.
    #[error("orchard {0} is unknown")]
    UnknownOrchard(OrchardId),
    /// A tag code is already used by another tree (or twice in one import).
    #[error("tree code {0} is already in use")]
    DuplicateCode(String),
    /// A value cannot be stored as given: a number that is not finite, a
    /// position outside -180..180 / -90..90, a survey that does not exist, or a
    /// tree id beyond the tag-code space. Nothing was written.
    #[error("cannot store {field}: {reason}")]
    Invalid {
        /// The offending field (`lon`, `boundary`, `survey_id`, ...).
        field: &'static str,
        /// Why it cannot be stored, including the value.
        reason: String,
    },
    /// A stored value could not be read back into a domain type (corrupt row).
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An update names a tree that does not exist (by id or by code, as given).
    #[error("{0} not found")]
    NoSuchTree(TreeRef),
    /// A file with the same content was imported before; nothing was written.
    #[error("a file with SHA-256 {file_sha256} was already imported (survey {})", survey_id.0)]
    AlreadyImported {
        /// The content hash.
        file_sha256: String,
        /// The survey that earlier import recorded.
        survey_id: SurveyId,
    },
    /// An import cannot go on: an earlier call failed (it is rolled back when
    /// dropped) or its connection went away.
    #[error("import abandoned: {0}")]
    Aborted(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// Whether the database refused a text value it cannot hold (PostgreSQL
    /// stores no U+0000 in text); nothing of that write was kept.
    pub fn is_unstorable_text(&self) -> bool {
        let Error::Database(sqlx::Error::Database(db)) = self else { return false };
        // 22021: character_not_in_repertoire (a NUL in text); 22P05: untranslatable_character.
        db.code().is_some_and(|c| matches!(c.as_ref(), "22021" | "22P05"))
    }

    /// Whether the database could not be reached (connection refused, lost or
    /// closed, the server shutting down or starting, no connection free in
    /// time). A write that failed so was not committed unless the failure came
    /// while committing; reads and writes may be tried again once
    /// [`crate::Storage::last_change`] answers.
    pub fn is_unavailable(&self) -> bool {
        let Error::Database(e) = self else { return false };
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                true
            }
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                // Class 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
                c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
            }),
            sqlx::Error::Protocol(m) => m.contains("closed") || m.contains("connection"),
            _ => false,
        }
    }
}
