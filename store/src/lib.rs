//! Persistence for orchardmap. All SQL of the project lives in this crate.
//!
//! One [`Storage`] trait, two backends chosen by [`open`] from the location:
//! a SQLite file (the default; created and migrated on first use, WAL mode) or
//! a PostgreSQL server (`postgres://` or `postgresql://` URL). Each backend has
//! its own migrations under `migrations/<backend>/`.
//!
//! Every write to `trees` also appends to the `changes` table in the same
//! transaction. Its sequence is what running servers follow
//! ([`Storage::changes_since`]) to keep their in-memory index in step with
//! writes made by other processes.
//!
//! What callers can rely on, on both backends:
//! - Writers are serialised (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a
//!   transaction-level advisory lock), so change-log order is commit order.
//! - Timestamps are kept to the microsecond (PostgreSQL's precision): a
//!   survey's `surveyed_at` comes back without its nanoseconds.
//! - Coordinates and every other float come back bit for bit, boundaries
//!   included (stored as the GeoJSON Polygon `coordinates` member, as text).
//! - Values a database could not keep faithfully (NaN, a position outside
//!   -180..180 / -90..90, an unknown survey id) are refused with
//!   [`Error::Invalid`] before anything is written; rows that cannot be read
//!   back are [`Error::Corrupt`], never a panic.
//! - A derived tag code that someone already claimed explicitly is never
//!   reused: that tree takes the next free id (ids may then have gaps).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod common;
mod error;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use geo_core::{NewTree, Orchard, OrchardId, Survey, SurveyId, Tree, TreeCode, TreeId};

pub use error::{Error, Result};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which database engine a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// One entry of the change log: tree `tree_id` was created, changed or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Position in the log; strictly increasing in commit order.
    pub seq: i64,
    /// The tree concerned. Read it again to learn its new state (absent = removed).
    pub tree_id: TreeId,
}

/// Everything one import writes, applied in one transaction: all of it or nothing.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    /// The survey the trees come from, if any; its id is given to every tree
    /// whose `survey_id` is `None`.
    pub survey: Option<Survey>,
    /// Orchards to create or update (matched by id) before the trees are added.
    pub orchards: Vec<Orchard>,
    /// Trees to add.
    pub trees: Vec<NewTree>,
}

/// What an import wrote.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The stored survey's id.
    pub survey_id: Option<SurveyId>,
    /// Number of orchards created or updated.
    pub orchards: usize,
    /// The stored trees with their ids and codes, in input order.
    pub trees: Vec<Tree>,
}

/// The storage operations orchardmap needs, implemented once per backend.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Writes a whole import atomically. Tree codes absent from the drafts are
    /// assigned from the tree id ([`TreeCode::from_serial`]). Fails with
    /// [`Error::UnknownOrchard`] or [`Error::DuplicateCode`] (nothing written).
    async fn import(&self, batch: ImportBatch) -> Result<Imported>;

    /// One orchard.
    async fn orchard(&self, id: &OrchardId) -> Result<Option<Orchard>>;
    /// All orchards, ordered by id.
    async fn orchards(&self) -> Result<Vec<Orchard>>;

    /// One survey.
    async fn survey(&self, id: SurveyId) -> Result<Option<Survey>>;

    /// One tree by id.
    async fn tree(&self, id: TreeId) -> Result<Option<Tree>>;
    /// One tree by its tag code.
    async fn tree_by_code(&self, code: &TreeCode) -> Result<Option<Tree>>;
    /// The trees among `ids` that exist, in any order.
    async fn trees_by_ids(&self, ids: &[TreeId]) -> Result<Vec<Tree>>;
    /// Every tree (start-up load), ordered by id.
    async fn all_trees(&self) -> Result<Vec<Tree>>;
    /// Number of trees.
    async fn count_trees(&self) -> Result<u64>;

    /// Stores `tree` if the stored version still equals `tree.version`; returns
    /// the stored tree with version + 1 and a new `updated_at`.
    /// [`Error::Conflict`] when someone else changed it first, [`Error::NotFound`] when absent.
    async fn update_tree(&self, tree: &Tree) -> Result<Tree>;

    /// The newest change sequence number (0 when the log is empty).
    async fn last_change(&self) -> Result<i64>;
    /// Up to `limit` changes after `seq`, oldest first.
    async fn changes_since(&self, seq: i64, limit: u32) -> Result<Vec<Change>>;
}

/// Opens (creating and migrating as needed) the database at `location`:
/// a `postgres://` / `postgresql://` URL, a `sqlite:` URL, or a file path
/// (`:memory:` for a private in-memory SQLite database). Failures are
/// [`Error::Open`] naming the location (without any password).
pub async fn open(location: &str) -> Result<Arc<dyn Storage>> {
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(location).await?))
    } else {
        let path = location.strip_prefix("sqlite://").or_else(|| location.strip_prefix("sqlite:")).unwrap_or(location);
        Ok(Arc::new(SqliteStore::open(std::path::Path::new(path)).await?))
    }
}
