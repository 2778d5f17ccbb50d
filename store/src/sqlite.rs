//! The SQLite backend: one file, WAL mode, writers serialised by `BEGIN IMMEDIATE`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt as _;
use geo_core::{
    Actor, LonLat, NewTree, NewTreeRecord, Orchard, OrchardId, RemovalReason, Role, Survey, SurveyId, Tree, TreeChange,
    TreeCode, TreeId, TreeRecord, User, UserId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite, Transaction};

use rusqlite::types::ValueRef;

use crate::common::{
    IdSource, RawTree, UserRow, assemble_changes, assemble_users, assign_ids, bad_correction, change_rows,
    check_user_name, check_values, code_serial, code_serial_agrees, corrupt, decode_error, encode_boundary,
    encode_record, expand_changes, history_change_columns, history_columns, history_from_row, history_row_from_row,
    id_runs, normalise_sha256, now, orchard_columns, orchard_from_row, orchard_time, prepare, record_columns,
    record_from_row, sorted_orchards, stored_tree, survey_columns, survey_creator, survey_from_row, tree_columns,
    tree_from_row, user_columns,
};
use crate::sqlite_edit::EditWriter;
use crate::{
    Backend, Change, Error, ImportBatch, ImportMeta, ImportWriter, Imported, PriorImport, Result, Storage, TreePoint,
    TreeVersion,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections in the pool. WAL lets readers run beside the one writer; more
/// connections than this buys nothing on the small machines the file backend
/// is meant for, and each one is a thread plus a page cache.
const MAX_CONNECTIONS: u32 = 4;

/// How long a writer waits for another process's write transaction to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a writer waits for another process's write transaction to finish
/// (also used by the import writer's own connection).
pub(crate) const WRITE_WAIT: Duration = BUSY_TIMEOUT;

/// Page cache per connection, in KiB (SQLite's convention for negative values).
/// The default 2 MiB makes a million-tree import spill to the WAL mid-transaction.
/// Pages are only allocated as used.
const CACHE_KIB: i64 = 64 * 1024;

/// Trees per multi-row INSERT: 15 bound values a row stays far below
/// SQLite's limit of 32,766, and the statement for a full chunk is prepared
/// once per connection and reused.
const ROWS_PER_INSERT: usize = 500;
const VALUES_PER_ROW: usize = 15;
const _: () = assert!(ROWS_PER_INSERT * VALUES_PER_ROW <= 32_766);

/// The SQLite backend. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    path: PathBuf,
    /// The thread that applies single-tree edits (see [`crate::sqlite_edit`]).
    edits: EditWriter,
    /// Set for `:memory:`: the private directory holding the database, removed with the last clone.
    _scratch: Option<Arc<ScratchDir>>,
}

/// A private directory under the system temporary directory, removed (with
/// everything in it) when dropped.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> std::io::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let mut attempts = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("orchardmap-memory-{}-{n}-{nanos}", std::process::id()));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&dir) {
                Ok(()) => return Ok(Self(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 100 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Connections still open keep working on the unlinked files until they close.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it when missing, and applies
    /// any pending migration. `:memory:` opens a private database in a fresh
    /// directory under the system temporary directory, removed when the last
    /// clone of the store is dropped (for tests and trials: it behaves exactly
    /// like a file database, bulk imports and fast reads included).
    ///
    /// Connections use WAL journaling, `synchronous = NORMAL` (durable at each
    /// checkpoint, never corrupt), foreign keys and a 5 s busy timeout.
    ///
    /// A file that is not a SQLite database, cannot be read or created, or
    /// whose migrations fail gives [`Error::Open`] naming `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let location = path.display().to_string();
        let fail = |reason: String| Error::Open { location: location.clone(), reason };
        if !code_serial_agrees() {
            // Stored code serials would no longer find trees by code (see common::code_serial).
            return Err(fail("this build's tag codes no longer match the stored code serials".into()));
        }
        let (scratch, path) = if path == Path::new(":memory:") {
            let dir = ScratchDir::create().map_err(|e| fail(format!("creating a temporary directory: {e}")))?;
            let file = dir.0.join("orchardmap.db");
            (Some(Arc::new(dir)), file)
        } else {
            (None, path.to_path_buf())
        };
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", (-CACHE_KIB).to_string())
            // Statement journals (multi-row INSERTs inside a transaction need
            // one) and sort spills in memory, not in temporary files.
            .pragma("temp_store", "memory");
        // Connecting runs the pragmas, which read the file header: a file that is
        // not a database fails here ("file is not a database"), not at first use.
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| fail(e.to_string()))?;
        MIGRATOR.run(&pool).await.map_err(|e| fail(format!("migrating the schema: {e}")))?;
        tracing::debug!(path = %location, "SQLite database open");
        let edits = EditWriter::start(&path)?;
        Ok(Self { pool, path, edits, _scratch: scratch })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection, waiting for those in use (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the database's write lock
    /// at once (waiting up to the busy timeout), so writers run one after the
    /// other: checks made inside stay true until commit, change-log order is
    /// commit order, and no transaction fails half-way upgrading a read lock.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// [`Storage::update_tree`] and [`Storage::edit_tree`]: `actor` is recorded
    /// as the author of the new version (in the history row of the one it replaces).
    async fn write_tree(&self, tree: &Tree, actor: Option<&Actor>) -> Result<Tree> {
        check_values(tree.location, tree.accuracy_m, tree.height_m, tree.girth_cm)?;
        self.edits.write(tree.clone(), actor.cloned()).await
    }
}

/// A rusqlite error as this crate reports database errors.
pub(crate) fn driver_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Database(sqlx::Error::AnyDriverError(Box::new(e)))
}

/// A timestamp exactly as sqlx writes a `DateTime<Utc>` into SQLite.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A timestamp as stored (see [`time_text`]); anything else is corrupt.
pub(crate) fn parse_time(table: &'static str, name: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(table, format!("column {name}: {text:?}: {e}")))
}

/// A read-only rusqlite connection for the large reads (see [`read_all_trees`]).
fn open_reader(path: &Path) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn =
        rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(driver_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(driver_error)?;
    Ok(conn)
}

/// Id, code and position of every tree, through rusqlite (see [`read_all_trees`]).
fn read_tree_points(path: &Path) -> Result<Vec<TreePoint>> {
    let conn = open_reader(path)?;
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM trees", [], |r| r.get(0)).map_err(driver_error)?;
    let mut stmt = conn.prepare("SELECT id, code, lon, lat FROM trees").map_err(driver_error)?;
    let mut rows = stmt.query([]).map_err(driver_error)?;
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    while let Some(row) = rows.next().map_err(driver_error)? {
        let c = Columns(row);
        let id = c.int(0, "id")?;
        let bad = |what: String| corrupt("trees", format!("tree {id}: {what}"));
        let code = TreeCode::parse(c.text(1, "code")?).map_err(|e| bad(e.to_string()))?;
        let location = LonLat::new(c.real(2, "lon")?, c.real(3, "lat")?);
        if !location.is_valid() {
            return Err(bad(format!("position {},{} is not a valid lon,lat", location.lon, location.lat)));
        }
        out.push(TreePoint { id: TreeId(id), code, location });
    }
    Ok(out)
}

/// Every tree, read with rusqlite on the calling (blocking) thread through a
/// read-only connection of its own: values are decoded in place from the
/// statement instead of being copied one by one to another thread, which is
/// what makes the start-up load of a million trees take seconds, not tens of
/// seconds (see Cargo.toml). One statement reads one WAL snapshot, so the
/// result is consistent even while others write.
fn read_all_trees(path: &Path) -> Result<Vec<Tree>> {
    let conn = open_reader(path)?;
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM trees", [], |r| r.get(0)).map_err(driver_error)?;
    let mut stmt =
        conn.prepare(concat!("SELECT ", tree_columns!(), " FROM trees ORDER BY id")).map_err(driver_error)?;
    let mut rows = stmt.query([]).map_err(driver_error)?;
    // A hint only (rows may be added between the two statements).
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    while let Some(row) = rows.next().map_err(driver_error)? {
        out.push(tree_from_rusqlite(row)?);
    }
    Ok(out)
}

/// A tree from a rusqlite row of [`tree_columns!`].
pub(crate) fn tree_from_rusqlite(row: &rusqlite::Row<'_>) -> Result<Tree> {
    let c = Columns(row);
    let planted_year = c.opt_int(6, "planted_year")?;
    let planted_year = planted_year
        .map(|y| i32::try_from(y).map_err(|_| corrupt("trees", format!("column planted_year: {y} is out of range"))))
        .transpose()?;
    RawTree {
        id: c.int(0, "id")?,
        code: c.text(1, "code")?,
        lon: c.real(2, "lon")?,
        lat: c.real(3, "lat")?,
        accuracy_m: c.opt_real(4, "accuracy_m")?,
        cultivar: c.text(5, "cultivar")?,
        planted_year,
        health: c.text(7, "health")?,
        height_m: c.opt_real(8, "height_m")?,
        girth_cm: c.opt_real(9, "girth_cm")?,
        orchard_id: c.text(10, "orchard_id")?,
        survey_id: c.opt_int(11, "survey_id")?,
        created_at: c.time(12, "created_at")?,
        updated_at: c.time(13, "updated_at")?,
        version: c.int(14, "version")?,
    }
    .into_tree()
}

/// Typed access to a rusqlite row of `trees`; a value of the wrong type is [`Error::Corrupt`].
pub(crate) struct Columns<'r, 's>(pub(crate) &'r rusqlite::Row<'s>);

impl<'r> Columns<'r, '_> {
    fn value(&self, i: usize, name: &str) -> Result<ValueRef<'r>> {
        self.0.get_ref(i).map_err(|e| corrupt("trees", format!("column {name}: {e}")))
    }

    fn wrong(name: &str, v: ValueRef<'_>, wanted: &str) -> Error {
        corrupt("trees", format!("column {name}: expected {wanted}, found {}", v.data_type()))
    }

    pub(crate) fn opt_int(&self, i: usize, name: &str) -> Result<Option<i64>> {
        match self.value(i, name)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(v) => Ok(Some(v)),
            v => Err(Self::wrong(name, v, "an integer")),
        }
    }

    pub(crate) fn int(&self, i: usize, name: &str) -> Result<i64> {
        self.opt_int(i, name)?.ok_or_else(|| corrupt("trees", format!("column {name}: is NULL")))
    }

    pub(crate) fn opt_real(&self, i: usize, name: &str) -> Result<Option<f64>> {
        match self.value(i, name)? {
            ValueRef::Null => Ok(None),
            ValueRef::Real(v) => Ok(Some(v)),
            v => Err(Self::wrong(name, v, "a number")),
        }
    }

    pub(crate) fn real(&self, i: usize, name: &str) -> Result<f64> {
        self.opt_real(i, name)?.ok_or_else(|| corrupt("trees", format!("column {name}: is NULL")))
    }

    pub(crate) fn text(&self, i: usize, name: &str) -> Result<&'r str> {
        match self.value(i, name)? {
            ValueRef::Text(bytes) => {
                std::str::from_utf8(bytes).map_err(|e| corrupt("trees", format!("column {name}: {e}")))
            }
            v => Err(Self::wrong(name, v, "text")),
        }
    }

    /// RFC 3339, as sqlx writes a `DateTime<Utc>`.
    pub(crate) fn time(&self, i: usize, name: &str) -> Result<DateTime<Utc>> {
        parse_time("trees", name, self.text(i, name)?)
    }
}

/// Ids and codes from inside the import transaction.
struct Ids<'c> {
    conn: &'c mut SqliteConnection,
    next: Option<i64>,
}

impl IdSource for Ids<'_> {
    async fn taken_codes(&mut self, codes: &[TreeCode]) -> Result<HashSet<String>> {
        // One bound JSON array instead of chunks of `?` lists: no bound-value limit.
        let list = json_ints(codes.iter().map(code_serial));
        // Codes of removed trees are never given again: they count as taken.
        let taken: Vec<String> = sqlx::query_scalar(
            "SELECT code FROM trees WHERE code_serial IN (SELECT value FROM json_each(?1)) \
             UNION ALL SELECT code FROM tree_history \
             WHERE removal_reason IS NOT NULL AND code_serial IN (SELECT value FROM json_each(?1))",
        )
        .bind(list)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(taken.into_iter().collect())
    }

    async fn fresh_ids(&mut self, n: usize) -> Result<Vec<i64>> {
        let next = match self.next {
            Some(next) => next,
            // Safe only because the transaction holds the write lock: nobody
            // else can insert a tree between this read and our inserts.
            None => sqlx::query_scalar::<_, i64>(NEXT_TREE_ID_SQL).fetch_one(&mut *self.conn).await?,
        };
        let n = i64::try_from(n).map_err(|_| corrupt("trees", "too many trees in one import"))?;
        self.next = Some(next + n);
        Ok((next..next + n).collect())
    }
}

/// A JSON array of strings (for `json_each`).
fn json_strings<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    // Serialising strings cannot fail; an empty array is the harmless fallback.
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

/// A JSON array of integers (for `json_each`).
pub(crate) fn json_ints(items: impl Iterator<Item = i64>) -> String {
    let mut out = String::from("[");
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v}");
    }
    out.push(']');
    out
}

/// `INSERT INTO trees ... VALUES (...), ...` for `rows` trees.
///
/// Anonymous `?` placeholders only: sqlx looks every placeholder's name up
/// with `sqlite3_bind_parameter_name`, which scans the statement's list of
/// named ones, so numbered placeholders (`?1`, which count as named) make
/// binding a 7,000-value statement quadratic (it dominated a 1M-tree import).
fn insert_trees_sql(rows: usize) -> String {
    const ROW: &str = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)";
    let mut sql = String::with_capacity(200 + rows * (ROW.len() + 1));
    sql.push_str(
        "INSERT INTO trees (id, code, code_serial, lon, lat, accuracy_m, cultivar, planted_year, health, height_m, \
         girth_cm, orchard_id, survey_id, created_at, updated_at, version) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(ROW);
    }
    sql
}

fn full_chunk_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| insert_trees_sql(ROWS_PER_INSERT))
}

#[async_trait]
impl Storage for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn import(&self, batch: ImportBatch) -> Result<Imported> {
        let p = prepare(batch)?;
        let mut tx = self.begin_write().await?;
        // Taken under the write lock, so orchards' updated_at follows commit order.
        let at = now();

        if !p.orchard_refs.is_empty() {
            let found: HashSet<String> =
                sqlx::query_scalar("SELECT id FROM orchards WHERE id IN (SELECT value FROM json_each(?1))")
                    .bind(json_strings(p.orchard_refs.iter().map(OrchardId::as_str)))
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
            if let Some(missing) = p.orchard_refs.iter().find(|o| !found.contains(o.as_str())) {
                return Err(Error::UnknownOrchard(missing.clone()));
            }
        }
        if !p.survey_refs.is_empty() {
            let found: HashSet<i64> =
                sqlx::query_scalar("SELECT id FROM surveys WHERE id IN (SELECT value FROM json_each(?1))")
                    .bind(json_ints(p.survey_refs.iter().copied()))
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
            if let Some(missing) = p.survey_refs.iter().find(|s| !found.contains(s)) {
                return Err(Error::Invalid { field: "survey_id", reason: format!("survey {missing} does not exist") });
            }
        }

        let (ids, codes) = assign_ids(&mut Ids { conn: &mut tx, next: None }, &p.trees, &p.claimed).await?;

        let survey_id = match &p.survey {
            None => None,
            Some(s) => Some(SurveyId(
                sqlx::query_scalar(
                    "INSERT INTO surveys (surveyor, surveyed_at, source, device) VALUES (?1, ?2, ?3, ?4) RETURNING id",
                )
                .bind(&s.surveyor)
                .bind(s.surveyed_at)
                .bind(&s.source)
                .bind(&s.device)
                .fetch_one(&mut *tx)
                .await?,
            )),
        };

        for (o, boundary) in &p.orchards {
            sqlx::query(
                "INSERT INTO orchards (id, name, owner, commune, district, province, planting_area_code, boundary, \
                 created_at, updated_at, gln) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, owner = excluded.owner, \
                 commune = excluded.commune, district = excluded.district, province = excluded.province, \
                 planting_area_code = excluded.planting_area_code, boundary = excluded.boundary, \
                 updated_at = excluded.updated_at, gln = COALESCE(excluded.gln, orchards.gln)",
            )
            .bind(o.id.as_str())
            .bind(&o.name)
            .bind(&o.owner)
            .bind(&o.commune)
            .bind(&o.district)
            .bind(&o.province)
            .bind(&o.planting_area_code)
            .bind(boundary)
            .bind(at)
            .bind(&o.gln)
            .execute(&mut *tx)
            .await?;
        }

        // Formatted once rather than twice per tree, exactly as sqlx encodes a DateTime<Utc>.
        let at_text = at.to_rfc3339_opts(SecondsFormat::AutoSi, false);
        let mut start = 0;
        while start < p.trees.len() {
            let end = (start + ROWS_PER_INSERT).min(p.trees.len());
            let query = if end - start == ROWS_PER_INSERT {
                sqlx::query(full_chunk_sql())
            } else {
                // The last, shorter chunk: a one-off statement, kept out of the statement cache.
                sqlx::query(AssertSqlSafe(insert_trees_sql(end - start))).persistent(false)
            };
            let mut query = query;
            for i in start..end {
                let t = &p.trees[i];
                query = query
                    .bind(ids[i])
                    .bind(codes[i].as_str())
                    .bind(code_serial(&codes[i]))
                    .bind(t.location.lon)
                    .bind(t.location.lat)
                    .bind(t.accuracy_m)
                    .bind(t.cultivar.as_str())
                    .bind(t.planted_year)
                    .bind(t.health.as_str())
                    .bind(t.height_m)
                    .bind(t.girth_cm)
                    .bind(t.orchard_id.as_str())
                    .bind(t.survey_id.or(survey_id).map(|s| s.0))
                    .bind(at_text.as_str())
                    .bind(at_text.as_str());
            }
            query.execute(&mut *tx).await?;
            start = end;
        }

        log_changes(&mut tx, &id_runs(ids.iter().copied()), at).await?;
        tx.commit().await?;

        let orchards = p.orchards.len();
        let trees = p
            .trees
            .into_iter()
            .zip(ids.into_iter().zip(codes))
            .map(|(t, (id, code))| stored_tree(t, id, code, survey_id, at))
            .collect::<Vec<_>>();
        tracing::debug!(trees = trees.len(), orchards, "import committed");
        Ok(Imported { survey_id, orchards, trees })
    }

    async fn orchard(&self, id: &OrchardId) -> Result<Option<Orchard>> {
        let row = sqlx::query(concat!("SELECT ", orchard_columns!(), " FROM orchards WHERE id = ?1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(orchard_from_row).transpose()
    }

    async fn orchards(&self) -> Result<Vec<Orchard>> {
        let rows = sqlx::query(concat!("SELECT ", orchard_columns!(), " FROM orchards ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(orchard_from_row).collect()
    }

    async fn survey(&self, id: SurveyId) -> Result<Option<Survey>> {
        let row = sqlx::query(concat!("SELECT ", survey_columns!(), " FROM surveys WHERE id = ?1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(survey_from_row).transpose()
    }

    async fn tree(&self, id: TreeId) -> Result<Option<Tree>> {
        let row = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id = ?1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tree_from_row).transpose()
    }

    async fn tree_by_code(&self, code: &TreeCode) -> Result<Option<Tree>> {
        let row = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE code_serial = ?1 AND code = ?2"))
            .bind(code_serial(code))
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tree_from_row).transpose()
    }

    async fn trees_by_ids(&self, ids: &[TreeId]) -> Result<Vec<Tree>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = sqlx::query(concat!(
            "SELECT ",
            tree_columns!(),
            " FROM trees WHERE id IN (SELECT value FROM json_each(?1))"
        ))
        .bind(json_ints(ids.iter().map(|id| id.0)))
        .fetch(&self.pool);
        let mut out = Vec::with_capacity(ids.len());
        while let Some(row) = rows.try_next().await? {
            out.push(tree_from_row(&row)?);
        }
        Ok(out)
    }

    async fn all_trees(&self) -> Result<Vec<Tree>> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || read_all_trees(&path)).await.map_err(driver_error)?
    }

    async fn count_trees(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trees").fetch_one(&self.pool).await?;
        u64::try_from(n).map_err(|_| corrupt("trees", format!("negative count {n}")))
    }

    async fn update_tree(&self, tree: &Tree) -> Result<Tree> {
        self.write_tree(tree, None).await
    }

    async fn last_change(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes").fetch_one(&self.pool).await?)
    }

    async fn changes_since(&self, seq: i64, limit: u32) -> Result<Vec<Change>> {
        // Every row yields at least one change after `seq`: `limit` rows are enough.
        let rows: Vec<(i64, i64, Option<i64>)> =
            sqlx::query_as("SELECT seq, tree_id, tree_id_to FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")
                .bind(seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| decode_error("changes", e))?;
        expand_changes(&rows, seq, limit)
    }

    async fn find_import(&self, file_sha256: &str) -> Result<Option<PriorImport>> {
        let Ok(sha) = normalise_sha256(file_sha256) else { return Ok(None) };
        let row: Option<(i64, String, DateTime<Utc>)> =
            sqlx::query_as("SELECT survey_id, file_name, imported_at FROM imports WHERE file_sha256 = ?1")
                .bind(sha)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| decode_error("imports", e))?;
        Ok(row.map(|(survey_id, file_name, imported_at)| PriorImport {
            survey_id: SurveyId(survey_id),
            file_name,
            imported_at,
        }))
    }

    async fn tree_points(&self) -> Result<Vec<TreePoint>> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || read_tree_points(&path)).await.map_err(driver_error)?
    }

    async fn begin_import(&self, meta: ImportMeta) -> Result<Box<dyn ImportWriter>> {
        crate::sqlite_import::begin(self.path.clone(), meta).await
    }

    async fn tree_history(&self, id: TreeId) -> Result<Vec<TreeVersion>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            history_columns!(),
            " FROM tree_history WHERE tree_id = ?1 ORDER BY version"
        ))
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(history_from_row).collect()
    }

    async fn create_user(
        &self,
        name: &str,
        role: Role,
        orchards: &[OrchardId],
        token_sha256: &[u8; 32],
    ) -> Result<User> {
        check_user_name(name)?;
        let orchards = sorted_orchards(orchards);
        let mut tx = self.begin_write().await?;
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE name = ?1").bind(name).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            return Err(Error::Invalid { field: "name", reason: format!("an account named {name:?} already exists") });
        }
        let same_token: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE token_sha256 = ?1")
            .bind(&token_sha256[..])
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(other) = same_token {
            return Err(Error::Invalid {
                field: "token_sha256",
                reason: format!("account {other} already has this token; make another token"),
            });
        }
        for orchard in &orchards {
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM orchards WHERE id = ?1")
                .bind(orchard.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(Error::UnknownOrchard(orchard.clone()));
            }
        }
        let row = sqlx::query(concat!(
            "INSERT INTO users (name, role, token_sha256, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING ",
            user_columns!()
        ))
        .bind(name)
        .bind(role.as_str())
        .bind(&token_sha256[..])
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        let user = UserRow::from_row(&row)?;
        for orchard in &orchards {
            sqlx::query("INSERT INTO user_orchards (user_id, orchard_id) VALUES (?1, ?2)")
                .bind(user.id)
                .bind(orchard.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        user.into_user(orchards)
    }

    async fn users(&self) -> Result<Vec<User>> {
        // An account's orchards are written with it and never change, so
        // two plain reads agree (pairs of an account created in between are ignored).
        let rows =
            sqlx::query(concat!("SELECT ", user_columns!(), " FROM users ORDER BY id")).fetch_all(&self.pool).await?;
        let rows = rows.iter().map(UserRow::from_row).collect::<Result<Vec<_>>>()?;
        let pairs: Vec<(i64, String)> = sqlx::query_as("SELECT user_id, orchard_id FROM user_orchards")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| decode_error("user_orchards", e))?;
        assemble_users(rows, pairs)
    }

    async fn revoke_user(&self, name: &str) -> Result<Option<User>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!(
            "UPDATE users SET revoked_at = COALESCE(revoked_at, ?1) WHERE name = ?2 RETURNING ",
            user_columns!()
        ))
        .bind(now())
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = UserRow::from_row(&row)?;
        let orchards = orchards_of(&mut *tx, user.id).await?;
        tx.commit().await?;
        user.into_user(orchards).map(Some)
    }

    async fn user_by_token(&self, token_sha256: &[u8; 32]) -> Result<Option<User>> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE token_sha256 = ?1"))
            .bind(&token_sha256[..])
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let user = UserRow::from_row(&row)?;
        // Written with the account and never changed: no snapshot needed.
        let orchards = orchards_of(&self.pool, user.id).await?;
        user.into_user(orchards).map(Some)
    }

    async fn create_tree(&self, tree: NewTree, actor: &Actor) -> Result<Tree> {
        check_values(tree.location, tree.accuracy_m, tree.height_m, tree.girth_cm)?;
        let mut tx = self.begin_write().await?;
        let orchard: Option<String> = sqlx::query_scalar("SELECT id FROM orchards WHERE id = ?1")
            .bind(tree.orchard_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if orchard.is_none() {
            return Err(Error::UnknownOrchard(tree.orchard_id.clone()));
        }
        if let Some(SurveyId(s)) = tree.survey_id {
            let survey: Option<i64> =
                sqlx::query_scalar("SELECT id FROM surveys WHERE id = ?1").bind(s).fetch_optional(&mut *tx).await?;
            if survey.is_none() {
                return Err(Error::Invalid { field: "survey_id", reason: format!("survey {s} does not exist") });
            }
        }
        let claimed: HashSet<TreeCode> = tree.code.into_iter().collect();
        let (ids, codes) =
            assign_ids(&mut Ids { conn: &mut tx, next: None }, std::slice::from_ref(&tree), &claimed).await?;
        let Some((&id, &code)) = ids.first().zip(codes.first()) else {
            return Err(corrupt("trees", "asked for a tree id, got none"));
        };
        let at = now();
        let row = sqlx::query(concat!(
            "INSERT INTO trees (id, code, code_serial, lon, lat, accuracy_m, cultivar, planted_year, health, ",
            "height_m, girth_cm, orchard_id, survey_id, created_at, updated_at, version) ",
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, 1) RETURNING ",
            tree_columns!()
        ))
        .bind(id)
        .bind(code.as_str())
        .bind(code_serial(&code))
        .bind(tree.location.lon)
        .bind(tree.location.lat)
        .bind(tree.accuracy_m)
        .bind(tree.cultivar.as_str())
        .bind(tree.planted_year)
        .bind(tree.health.as_str())
        .bind(tree.height_m)
        .bind(tree.girth_cm)
        .bind(tree.orchard_id.as_str())
        .bind(tree.survey_id.map(|s| s.0))
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        let created = tree_from_row(&row)?;
        sqlx::query("INSERT INTO tree_creations (tree_id, created_by, created_by_user) VALUES (?1, ?2, ?3)")
            .bind(id)
            .bind(&actor.name)
            .bind(actor.user_id.map(|u| u.0))
            .execute(&mut *tx)
            .await?;
        log_change(&mut tx, created.id, at).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn edit_tree(&self, tree: &Tree, actor: &Actor) -> Result<Tree> {
        self.write_tree(tree, Some(actor)).await
    }

    async fn remove_tree(&self, id: TreeId, version: i64, reason: RemovalReason, actor: &Actor) -> Result<Tree> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id = ?1"))
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Err(Error::NotFound(id)) };
        let tree = tree_from_row(&row)?;
        if tree.version != version {
            return Err(Error::Conflict { id, current: tree.version, given: version });
        }
        // Never before its last change, even if this machine's clock is behind.
        let at = now().max(tree.updated_at);
        sqlx::query(HISTORY_CHANGE_SQL)
            .bind(id.0)
            .bind(at)
            .bind(actor.name.as_str())
            .bind(actor.user_id.map(|u| u.0))
            .bind(reason.as_str())
            .bind(code_serial(&tree.code))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM trees WHERE id = ?1").bind(id.0).execute(&mut *tx).await?;
        log_change(&mut tx, id, at).await?;
        tx.commit().await?;
        Ok(tree)
    }

    async fn removed_tree(&self, id: TreeId) -> Result<Option<(Tree, RemovalReason, DateTime<Utc>)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            history_columns!(),
            ", ",
            history_change_columns!(),
            " FROM tree_history WHERE tree_id = ?1 AND removal_reason IS NOT NULL"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let h = history_row_from_row(&row)?;
        Ok(h.removal_reason.map(|reason| (h.version.tree, reason, h.version.replaced_at)))
    }

    async fn tree_changes(&self, id: TreeId) -> Result<Vec<TreeChange>> {
        // One read transaction: history and current row from one snapshot.
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            history_columns!(),
            ", ",
            history_change_columns!(),
            " FROM tree_history WHERE tree_id = ?1 ORDER BY version"
        ))
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        let history = rows.iter().map(history_row_from_row).collect::<Result<Vec<_>>>()?;
        let row = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id = ?1"))
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        let current = row.as_ref().map(tree_from_row).transpose()?;
        let Some(first) = history.first().map(|h| &h.version.tree).or(current.as_ref()) else {
            return Ok(Vec::new());
        };
        let creation: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT created_by, created_by_user FROM tree_creations WHERE tree_id = ?1")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| decode_error("tree_creations", e))?;
        let creator = match creation {
            Some((by, user)) => (by, user.map(UserId), None),
            None => {
                let surveyor: Option<String> = match first.survey_id {
                    Some(s) => {
                        sqlx::query_scalar("SELECT surveyor FROM surveys WHERE id = ?1")
                            .bind(s.0)
                            .fetch_optional(&mut *tx)
                            .await?
                    }
                    None => None,
                };
                survey_creator(first, surveyor)
            }
        };
        tx.commit().await?;
        Ok(assemble_changes(history, current, creator))
    }

    async fn add_record(&self, tree_id: TreeId, record: NewTreeRecord, actor: &Actor) -> Result<TreeRecord> {
        let (details, quantity) = encode_record(&record)?;
        let mut tx = self.begin_write().await?;
        let known: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM trees WHERE id = ?1 \
             UNION ALL SELECT tree_id FROM tree_history WHERE tree_id = ?1 AND removal_reason IS NOT NULL LIMIT 1",
        )
        .bind(tree_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        if known.is_none() {
            return Err(Error::NotFound(tree_id));
        }
        if let Some(corrects) = record.corrects {
            let owner: Option<i64> = sqlx::query_scalar("SELECT tree_id FROM tree_records WHERE id = ?1")
                .bind(corrects.0)
                .fetch_optional(&mut *tx)
                .await?;
            if owner != Some(tree_id.0) {
                return Err(bad_correction(tree_id, corrects, owner));
            }
        }
        let row = sqlx::query(concat!(
            "INSERT INTO tree_records (tree_id, date, kind, details, quantity, note, corrects, author, author_id, ",
            "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING ",
            record_columns!()
        ))
        .bind(tree_id.0)
        .bind(record.date)
        .bind(record.details.kind())
        .bind(&details)
        .bind(quantity)
        .bind(&record.note)
        .bind(record.corrects.map(|r| r.0))
        .bind(&actor.name)
        .bind(actor.user_id.map(|u| u.0))
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        let stored = record_from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn tree_records(&self, tree_id: TreeId) -> Result<Vec<TreeRecord>> {
        let rows =
            sqlx::query(concat!("SELECT ", record_columns!(), " FROM tree_records WHERE tree_id = ?1 ORDER BY id"))
                .bind(tree_id.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn put_orchard(&self, orchard: &Orchard, actor: &Actor) -> Result<bool> {
        let boundary = orchard.boundary.as_ref().map(encode_boundary).transpose()?;
        let mut tx = self.begin_write().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM orchards WHERE id = ?1")
            .bind(orchard.id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let newest: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT MAX(updated_at) FROM orchards")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| decode_error("orchards", e))?;
        let at = orchard_time(newest);
        let sql = if exists.is_some() {
            "UPDATE orchards SET name = ?2, owner = ?3, commune = ?4, district = ?5, province = ?6, \
             planting_area_code = ?7, boundary = ?8, updated_at = ?9, updated_by = ?10, gln = ?11 WHERE id = ?1"
        } else {
            "INSERT INTO orchards (id, name, owner, commune, district, province, planting_area_code, boundary, \
             created_at, updated_at, updated_by, gln) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)"
        };
        sqlx::query(sql)
            .bind(orchard.id.as_str())
            .bind(&orchard.name)
            .bind(&orchard.owner)
            .bind(&orchard.commune)
            .bind(&orchard.district)
            .bind(&orchard.province)
            .bind(&orchard.planting_area_code)
            .bind(boundary)
            .bind(at)
            .bind(&actor.name)
            .bind(&orchard.gln)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(exists.is_none())
    }

    async fn orchards_updated_at(&self) -> Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar("SELECT MAX(updated_at) FROM orchards")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| decode_error("orchards", e))
    }

    async fn backup(&self, out: &std::path::Path) -> Result<()> {
        if out.exists() {
            return Err(Error::Invalid {
                field: "out",
                reason: format!("{} exists; choose a new file", out.display()),
            });
        }
        let target = out
            .to_str()
            .ok_or_else(|| Error::Invalid { field: "out", reason: format!("{} is not valid UTF-8", out.display()) })?;
        sqlx::query("VACUUM INTO ?1").bind(target).execute(&self.pool).await?;
        Ok(())
    }

    async fn trees_after(&self, after: TreeId, limit: u32) -> Result<Vec<Tree>> {
        let rows = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id > ?1 ORDER BY id LIMIT ?2"))
            .bind(after.0)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tree_from_row).collect()
    }
}

/// The first tree id never used: above every stored tree and every tree that
/// has history, removed ones included (two primary-key lookups). Safe only
/// inside a write transaction (nobody else can take an id before its commit).
pub(crate) const NEXT_TREE_ID_SQL: &str = "SELECT MAX(COALESCE((SELECT MAX(id) FROM trees), 0), \
     COALESCE((SELECT MAX(tree_id) FROM tree_history), 0)) + 1";

/// The code serials of every removed tree (never given to another tree).
pub(crate) const REMOVED_SERIALS_SQL: &str =
    "SELECT code_serial FROM tree_history WHERE removal_reason IS NOT NULL AND code_serial IS NOT NULL";

/// Copies tree `?1` into `tree_history` as it is now, replaced at `?2` by
/// `?3` (actor name) / `?4` (account); for a removal `?5` is the reason and
/// `?6` the code's serial (both NULL for an edit).
pub(crate) const HISTORY_CHANGE_SQL: &str = concat!(
    "INSERT INTO tree_history (",
    history_columns!(),
    ", row_key, changed_by, changed_by_user, removal_reason, code_serial) SELECT ",
    tree_columns!(),
    ", ?2, NULL, row_key, ?3, ?4, ?5, ?6 FROM trees WHERE id = ?1"
);

/// Copies tree `?1` into `tree_history` as it is now, replaced at `?2` by survey `?3`.
pub(crate) const HISTORY_INSERT_SQL: &str = concat!(
    "INSERT INTO tree_history (",
    history_columns!(),
    ", row_key) SELECT ",
    tree_columns!(),
    ", ?2, ?3, row_key FROM trees WHERE id = ?1"
);

/// The first sequence number no change-log row has used (AUTOINCREMENT keeps
/// the highest ever used in `sqlite_sequence`, even if rows were deleted).
pub(crate) const NEXT_SEQ_SQL: &str = "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0), \
     COALESCE((SELECT MAX(seq) FROM changes), 0)) + 1";

/// The orchards assigned to account `user`.
async fn orchards_of<'e>(conn: impl sqlx::Executor<'e, Database = Sqlite>, user: i64) -> Result<Vec<OrchardId>> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT orchard_id FROM user_orchards WHERE user_id = ?1")
        .bind(user)
        .fetch_all(conn)
        .await
        .map_err(|e| decode_error("user_orchards", e))?;
    ids.into_iter()
        .map(|id| {
            OrchardId::new(&id).map_err(|e| corrupt("user_orchards", format!("user {user}: orchard {id:?}: {e}")))
        })
        .collect()
}

/// Logs a change of tree `id` (one change-log row).
async fn log_change(conn: &mut SqliteConnection, id: TreeId, at: DateTime<Utc>) -> Result<()> {
    sqlx::query("INSERT INTO changes (tree_id, changed_at) VALUES (?1, ?2)").bind(id.0).bind(at).execute(conn).await?;
    Ok(())
}

/// Logs a change of every tree in `runs` (sorted, disjoint runs of ids), one row per run.
async fn log_changes(tx: &mut SqliteConnection, runs: &[(i64, i64)], at: DateTime<Utc>) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let first: i64 = sqlx::query_scalar(NEXT_SEQ_SQL).fetch_one(&mut *tx).await?;
    for (seq, from, to) in change_rows(first, runs) {
        sqlx::query("INSERT INTO changes (seq, tree_id, tree_id_to, changed_at) VALUES (?1, ?2, ?3, ?4)")
            .bind(seq)
            .bind(from)
            .bind(to)
            .bind(at)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_has_a_placeholder_per_value() {
        let sql = insert_trees_sql(3);
        assert_eq!(sql.matches('?').count(), 3 * VALUES_PER_ROW);
        assert_eq!(sql.matches("),(").count(), 2);
    }

    #[test]
    fn json_lists() {
        assert_eq!(json_ints([1, -2, 30].into_iter()), "[1,-2,30]");
        assert_eq!(json_ints(std::iter::empty()), "[]");
        assert_eq!(json_strings(["a\"b", "c"].into_iter()), r#"["a\"b","c"]"#);
    }
}
