//! Storage errors.

use geo_core::{OrchardId, TreeId};

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
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}
