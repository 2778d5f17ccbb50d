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
//! # Survey imports
//! [`Storage::begin_import`] opens one write transaction for a whole survey
//! file and hands back an [`ImportWriter`] that takes the accepted rows batch
//! by batch. Nothing is visible to anyone else until [`ImportWriter::commit`];
//! dropping the writer, an error, or the process being killed at any moment
//! leaves the database exactly as it was (SQLite: one `BEGIN IMMEDIATE`
//! transaction on a WAL database; PostgreSQL: one transaction). Each import
//! records the file (name, SHA-256, format, see [`Storage::find_import`]) and
//! the identity of every row it wrote (see [`ImportWriter::known_row_keys`]),
//! so importing the same file or the same rows again adds nothing. Every
//! update of a stored tree keeps the version it replaces
//! ([`Storage::tree_history`]).
//!
//! What callers can rely on, on both backends:
//! - Writers are serialised (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a
//!   transaction-level advisory lock), so change-log order is commit order.
//!   An open import holds that lock until it commits or is dropped.
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
//! - A removed tree's id and code are never given to another tree
//!   ([`Storage::remove_tree`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod common;
mod error;
pub mod migrate;
mod pg_copy;
pub mod photos;
pub mod postgis;
mod postgres;
mod postgres_import;
mod postgres_trace;
mod sqlite;
mod sqlite_edit;
mod sqlite_import;
mod sqlite_trace;
pub mod trace;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use geo_core::{
    Actor, LonLat, NewTree, NewTreeRecord, Orchard, OrchardId, RemovalReason, Role, Survey, SurveyId, Tree, TreeChange,
    TreeCode, TreeId, TreeRecord, TreeRef, User,
};

pub use error::{Error, Result};
pub use postgres::{DEFAULT_BULK_INDEX_ROWS, PostgresStore};
pub use sqlite::SqliteStore;
pub use trace::{ScanCount, Tag, TagAssignment, TagBatch, TraceStorage};

/// Which database engine a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// One entry of the change log: tree `tree_id` was created, changed or removed.
///
/// The log stores a bulk import's consecutive tree ids as one row covering a
/// block of sequence numbers; [`Storage::changes_since`] hands them out one
/// tree at a time, each with its own `seq`, so callers never see the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Position in the log; strictly increasing in commit order (there may be gaps).
    pub seq: i64,
    /// The tree concerned. Read it again to learn its new state (absent = removed).
    pub tree_id: TreeId,
}

/// A stored tree reduced to what de-duplication needs ([`Storage::tree_points`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreePoint {
    /// Database id.
    pub id: TreeId,
    /// Tag code.
    pub code: TreeCode,
    /// Position (WGS 84).
    pub location: LonLat,
}

/// What an import records about the file it comes from ([`Storage::begin_import`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportMeta {
    /// The file's name as the user gave it (for messages; not an identity).
    pub file_name: String,
    /// SHA-256 of the file's content, hex (the file's identity: one import per content).
    pub file_sha256: String,
    /// The format it was read as (`csv`, `geojson`, ...).
    pub format: String,
    /// The survey recorded for the import; its `id` is ignored (a new one is assigned).
    pub survey: Survey,
    /// The survey's id in the tool that produced the file (KoboToolbox, ODK), if any.
    pub external_id: Option<String>,
}

/// An earlier import of the same file content ([`Storage::find_import`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorImport {
    /// The survey that import recorded.
    pub survey_id: SurveyId,
    /// The file name it had then.
    pub file_name: String,
    /// When it was committed.
    pub imported_at: DateTime<Utc>,
}

/// A version of a tree that a later change replaced ([`Storage::tree_history`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TreeVersion {
    /// The tree exactly as it was stored, `version` included.
    pub tree: Tree,
    /// When the change replacing it was made.
    pub replaced_at: DateTime<Utc>,
    /// The survey whose import replaced it; `None` for an edit ([`Storage::update_tree`],
    /// [`Storage::edit_tree`]) or a removal ([`Storage::remove_tree`]).
    pub replaced_by: Option<SurveyId>,
}

/// One survey import in progress: a single write transaction, fed batch by
/// batch ([`Storage::begin_import`]).
///
/// Nothing it writes is visible to others before [`ImportWriter::commit`].
/// Dropping it without committing rolls everything back, survey and file
/// record included. After any method returns an error the import is
/// abandoned: later calls, `commit` included, fail with [`Error::Aborted`];
/// drop it.
///
/// Row keys identify rows across imports (an external id such as a KoboToolbox
/// `_uuid`, or a hash of the row's content). The store keeps a 64-bit hash of
/// each key, not the key itself: two different keys collide with probability
/// about n²/2⁶⁵ for n recorded keys (≈ 3·10⁻⁸ for a million). A collision can
/// only make a new row look imported before (it is then reported and skipped),
/// never store a tree twice.
#[async_trait]
pub trait ImportWriter: Send {
    /// For each key, whether a row with that identity was already written: by
    /// an earlier import, by an earlier call of this one, or earlier in `keys`
    /// itself (so a row repeated within a file counts once).
    async fn known_row_keys(&mut self, keys: &[String]) -> Result<Vec<bool>>;

    /// Adds new trees, recording each row key (a key already recorded keeps its
    /// first tree). Drafts without a code get the code derived from their new
    /// id; a draft whose `survey_id` is `None` gets the import's survey.
    /// Returns each tree's id and code, in input order.
    ///
    /// Fails with [`Error::UnknownOrchard`], [`Error::Invalid`] (values, unknown
    /// survey) or [`Error::DuplicateCode`] when a claimed code belongs to a tree
    /// stored before this import or claimed earlier in it. A claimed code that
    /// this import had derived for an untagged tree goes to the claimer; the
    /// untagged tree then takes a fresh id and code (the id and code returned
    /// for it earlier are then out of date; rare, and logged).
    async fn insert_trees(&mut self, rows: Vec<(String, NewTree)>) -> Result<Vec<(TreeId, TreeCode)>>;

    /// Re-surveys existing trees: each row's values replace those of the tree
    /// it names (by id or by code). The version replaced is kept in the tree's
    /// history; the version goes up by one and `updated_at` is now. The tree
    /// keeps its code unless the draft claims another one, and its survey
    /// becomes the draft's or else the import's. Returns the stored trees, in
    /// input order.
    ///
    /// Fails with [`Error::NoSuchTree`] naming the reference when no tree
    /// answers to it, and as [`ImportWriter::insert_trees`] for bad values.
    async fn update_trees(&mut self, rows: Vec<(String, TreeRef, NewTree)>) -> Result<Vec<Tree>>;

    /// Commits everything: trees, row keys, history, change-log entries, the
    /// survey and the file record. Returns the survey's id.
    async fn commit(self: Box<Self>) -> Result<SurveyId>;
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
pub trait Storage: TraceStorage + Send + Sync + std::fmt::Debug + 'static {
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
    /// the stored tree with version + 1 and a new `updated_at`. The version it
    /// replaces is kept in the tree's history ([`Storage::tree_history`]).
    /// [`Error::Conflict`] when someone else changed it first, [`Error::NotFound`] when absent.
    async fn update_tree(&self, tree: &Tree) -> Result<Tree>;

    /// The newest change sequence number (0 when the log is empty).
    async fn last_change(&self) -> Result<i64>;
    /// Up to `limit` changes after `seq`, oldest first.
    async fn changes_since(&self, seq: i64, limit: u32) -> Result<Vec<Change>>;

    /// The import of the file whose content has this SHA-256 (hex, any case), if any.
    async fn find_import(&self, file_sha256: &str) -> Result<Option<PriorImport>>;

    /// Id, code and position of every tree, in no particular order: what
    /// de-duplication needs, read much faster than [`Storage::all_trees`].
    async fn tree_points(&self) -> Result<Vec<TreePoint>>;

    /// Starts an import (see [`ImportWriter`]): takes the write lock (waiting
    /// for other writers as every write does), then records the survey and the
    /// file inside the new transaction. Fails with [`Error::AlreadyImported`]
    /// when a committed import already has this file's SHA-256, and with
    /// [`Error::Invalid`] for an empty SHA-256.
    async fn begin_import(&self, meta: ImportMeta) -> Result<Box<dyn ImportWriter>>;

    /// The versions of a tree that later changes replaced, oldest first
    /// (empty for a tree never changed, or one that does not exist). For a
    /// removed tree the last one is the version it had when removed.
    async fn tree_history(&self, id: TreeId) -> Result<Vec<TreeVersion>>;

    // ---- Accounts -------------------------------------------------------

    /// Creates an account. `token_sha256` is the SHA-256 of its API token (the
    /// token itself is never stored). Fails with [`Error::Invalid`] (`name`)
    /// when the name is empty, longer than 100 characters, holds control
    /// characters or is taken (names compare exactly), [`Error::Invalid`]
    /// (`token_sha256`) when another account has the same token, and
    /// [`Error::UnknownOrchard`] for an unknown orchard. The account's
    /// orchards come back sorted, each once.
    async fn create_user(
        &self,
        name: &str,
        role: Role,
        orchards: &[OrchardId],
        token_sha256: &[u8; 32],
    ) -> Result<User>;

    /// Every account, revoked ones included, ordered by id.
    async fn users(&self) -> Result<Vec<User>>;

    /// Revokes the account with this name (its token stops working at once);
    /// `None` when there is no such account. Revoking twice keeps the first time.
    /// On PostgreSQL this does not wait for an import in progress.
    async fn revoke_user(&self, name: &str) -> Result<Option<User>>;

    /// The account whose token has this SHA-256, revoked or not (callers check
    /// [`User::is_active`]).
    async fn user_by_token(&self, token_sha256: &[u8; 32]) -> Result<Option<User>>;

    // ---- Editing with history ---------------------------------------------

    /// Creates one tree (version 1), recording `actor` as its creator. The id
    /// is new (never one a removed tree had) and the code, when the draft has
    /// none, is derived from it. Fails as [`ImportWriter::insert_trees`].
    async fn create_tree(&self, tree: NewTree, actor: &Actor) -> Result<Tree>;

    /// As [`Storage::update_tree`] (same version check, same errors), recording
    /// `actor` as the author of the new version. A code that a removed tree
    /// had is [`Error::DuplicateCode`] here too.
    async fn edit_tree(&self, tree: &Tree, actor: &Actor) -> Result<Tree>;

    /// Removes a tree whose stored version is `version`: it leaves `trees`
    /// (and the index of every server, through the change log) but its last
    /// version stays in its history with the reason and the actor (the last
    /// entry of [`Storage::tree_history`]). Its id and code are never given to
    /// another tree: a later claim of the code, by an import or an edit, is
    /// [`Error::DuplicateCode`]. Returns the removed version.
    /// [`Error::Conflict`] when stale, [`Error::NotFound`] when absent (a tree
    /// removed already included); nothing is written then.
    async fn remove_tree(&self, id: TreeId, version: i64, reason: RemovalReason, actor: &Actor) -> Result<Tree>;

    /// A removed tree's last version, why and when it was removed; `None` for a
    /// tree that exists or never existed.
    async fn removed_tree(&self, id: TreeId) -> Result<Option<(Tree, RemovalReason, DateTime<Utc>)>>;

    /// A tree's whole history, oldest first: its creation (every field, by its
    /// survey's surveyor or the account that created it), each change (the
    /// fields that changed from what to what, by whom: an account, or the
    /// survey import that re-surveyed it), and its removal if removed. Empty
    /// for a tree that never existed.
    ///
    /// `by` is an account name, a surveyor (with `survey_id`), `import` for a
    /// tree imported without a survey, or `unknown` for a change made through
    /// [`Storage::update_tree`], which records no actor.
    async fn tree_changes(&self, id: TreeId) -> Result<Vec<TreeChange>>;

    // ---- Farm diary ---------------------------------------------------------

    /// Appends a record to a tree's diary (a removed tree's too).
    /// [`Error::NotFound`] for a tree that never existed; [`Error::Invalid`]
    /// (`corrects`) when `corrects` names no record of this tree. Values are
    /// checked by the caller ([`NewTreeRecord::validate`]); non-finite numbers
    /// are refused here too ([`Error::Invalid`] naming `amount_kg`, `percent`
    /// or `weight_kg`). Numbers come back bit for bit.
    async fn add_record(&self, tree_id: TreeId, record: NewTreeRecord, actor: &Actor) -> Result<TreeRecord>;

    /// A tree's records, oldest first (by id), removed trees included.
    async fn tree_records(&self, tree_id: TreeId) -> Result<Vec<TreeRecord>>;

    // ---- Orchards and paging ----------------------------------------------

    /// Creates the orchard or replaces the one with its id (every field,
    /// boundary included); returns whether it was created. Its `updated_at`
    /// becomes now, and always later than any stored one, so
    /// [`Storage::orchards_updated_at`] moves. A boundary with a non-finite
    /// coordinate is [`Error::Invalid`] (`boundary`); other checks
    /// ([`Orchard::validate`]) are the caller's.
    async fn put_orchard(&self, orchard: &Orchard, actor: &Actor) -> Result<bool>;

    /// The newest `updated_at` of any orchard (`None` without orchards):
    /// servers reload their orchard list when it moves.
    async fn orchards_updated_at(&self) -> Result<Option<DateTime<Utc>>>;

    /// Up to `limit` trees with an id greater than `after`, by id: exports page
    /// through every tree with this without holding them all.
    async fn trees_after(&self, after: TreeId, limit: u32) -> Result<Vec<Tree>>;

    /// Writes a consistent copy of the whole database to `out` (a new file)
    /// while the database stays in use: SQLite's `VACUUM INTO`, one read
    /// snapshot, so writers go on meanwhile and the copy holds exactly the
    /// transactions committed before it started. PostgreSQL answers
    /// [`Error::Invalid`] naming `pg_dump` (its own online backup).
    async fn backup(&self, out: &std::path::Path) -> Result<()>;
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
