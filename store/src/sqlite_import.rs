//! The SQLite import writer: one rusqlite connection on a thread of its own,
//! holding one `BEGIN IMMEDIATE` transaction for the whole import, fed batch
//! by batch through a channel.
//!
//! # Why rusqlite and a thread
//! sqlx's SQLite driver sends every statement and every value through a
//! worker thread (about 10 µs a statement), far too slow for a million rows.
//! rusqlite links the same libsqlite3 (see Cargo.toml) and runs prepared
//! statements in place. The connection lives on one thread for the whole
//! import, so its prepared statements and page cache do too.
//!
//! # Atomicity
//! Everything, survey and file record included, is written inside the one
//! transaction; nothing touches the database before `BEGIN IMMEDIATE` or
//! after `COMMIT` but a checkpoint. Dropping the writer closes the channel;
//! the thread then rolls back. If the process dies, the transaction was never
//! committed: with WAL, frames written without a commit record (a cache
//! spill) are ignored by every reader and by recovery, so the database is
//! exactly as before.
//!
//! # Speed
//! - Trees go in through multi-row INSERTs (one statement execution per
//!   [`ROWS_PER_INSERT`] trees), the shared timestamp bound once per statement.
//!   Their only secondary index is on `code_serial`, which new trees append to
//!   (a derived code's serial is the tree id; see migrations/sqlite/0002).
//! - Derived codes are checked against the claimed codes ahead of the id
//!   counter, read once at the start; claimed codes by one index lookup each.
//! - Row keys: every recorded hash is read into memory once; each new one is
//!   one more integer in the tree's row (`row_key`).
//! - Orchards and surveys are checked in memory (under the write lock they
//!   cannot change), so this connection leaves foreign keys unchecked.
//! - The change log is written at commit: one row per run of consecutive ids.
//! - The commit does not checkpoint; the thread does that after answering.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use geo_core::{NewTree, OrchardId, SurveyId, Tree, TreeCode, TreeId, TreeRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Statement, params};
use tokio::sync::oneshot;

use crate::common::{
    KeySet, Touched, change_rows, check_draft, code_for, code_serial, corrupt, known_hashes, normalise_sha256, now,
    repeated_code, resurveyed_tree, row_key_hash,
};
use crate::sqlite::{
    Columns, HISTORY_INSERT_SQL, NEXT_SEQ_SQL, NEXT_TREE_ID_SQL, REMOVED_SERIALS_SQL, WRITE_WAIT, driver_error,
    parse_time, time_text,
};
use crate::{Error, ImportMeta, ImportWriter, Result};

/// Trees per multi-row INSERT: 14 values a tree plus the shared timestamp.
const ROWS_PER_INSERT: usize = 128;
/// Values bound per tree.
const VALUES_PER_TREE: usize = 14;
/// The import connection's page cache, in KiB: a million new trees (about
/// 200 MB of pages) stay in memory until commit instead of spilling to the
/// WAL half-way. Allocated only as used; beyond it pages spill (still safe).
const CACHE_KIB: i64 = 512 * 1024;

type Reply<T> = oneshot::Sender<Result<T>>;

enum Command {
    Known(Vec<i64>, Reply<Vec<bool>>),
    Insert(Vec<(String, NewTree)>, Reply<Vec<(TreeId, TreeCode)>>),
    Update(Vec<(String, TreeRef, NewTree)>, Reply<Vec<Tree>>),
    Commit(Reply<SurveyId>),
}

/// Starts the import thread and waits until its transaction is open and the
/// survey and file are recorded.
pub(crate) async fn begin(path: PathBuf, meta: ImportMeta) -> Result<Box<dyn ImportWriter>> {
    let sha = normalise_sha256(&meta.file_sha256)?;
    let (commands, inbox) = std::sync::mpsc::channel();
    let (ready, started) = oneshot::channel();
    std::thread::Builder::new()
        .name("orchardmap-import".into())
        .spawn(move || run(&path, meta, sha, inbox, ready))
        .map_err(|e| Error::Aborted(format!("cannot start the import thread: {e}")))?;
    started.await.map_err(|_| Error::Aborted("the import thread stopped while starting".into()))??;
    Ok(Box::new(SqliteImport { commands, broken: None }))
}

/// The async handle: each call is one message to the thread and one answer back.
struct SqliteImport {
    commands: std::sync::mpsc::Sender<Command>,
    /// Why the import cannot go on, once it cannot.
    broken: Option<String>,
}

impl SqliteImport {
    async fn call<T>(&mut self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        if let Some(why) = &self.broken {
            return Err(Error::Aborted(why.clone()));
        }
        // Stays set if this future is dropped before the answer arrives: the
        // batch's fate is then unknown and the import must not be committed.
        self.broken = Some("an earlier call was cancelled before it finished".into());
        let (reply, answer) = oneshot::channel();
        if self.commands.send(command(reply)).is_err() {
            let why = "the import's database thread has stopped".to_string();
            self.broken = Some(why.clone());
            return Err(Error::Aborted(why));
        }
        match answer.await {
            Ok(Ok(value)) => {
                self.broken = None;
                Ok(value)
            }
            Ok(Err(e)) => {
                self.broken = Some(e.to_string());
                Err(e)
            }
            Err(_) => {
                let why = "the import's database thread has stopped".to_string();
                self.broken = Some(why.clone());
                Err(Error::Aborted(why))
            }
        }
    }
}

#[async_trait]
impl ImportWriter for SqliteImport {
    async fn known_row_keys(&mut self, keys: &[String]) -> Result<Vec<bool>> {
        let hashes = keys.iter().map(|k| row_key_hash(k)).collect();
        self.call(|reply| Command::Known(hashes, reply)).await
    }

    async fn insert_trees(&mut self, rows: Vec<(String, NewTree)>) -> Result<Vec<(TreeId, TreeCode)>> {
        self.call(|reply| Command::Insert(rows, reply)).await
    }

    async fn update_trees(&mut self, rows: Vec<(String, TreeRef, NewTree)>) -> Result<Vec<Tree>> {
        self.call(|reply| Command::Update(rows, reply)).await
    }

    async fn commit(mut self: Box<Self>) -> Result<SurveyId> {
        self.call(Command::Commit).await
    }
}

/// The import thread. Returns when the handle is dropped (rolling back) or
/// after a commit.
fn run(
    path: &Path,
    meta: ImportMeta,
    sha: String,
    inbox: std::sync::mpsc::Receiver<Command>,
    ready: oneshot::Sender<Result<()>>,
) {
    let conn = match open_writer(path) {
        Ok(conn) => conn,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    match Import::start(&conn, meta, sha) {
        Ok(mut import) => {
            if ready.send(Ok(())).is_ok() && import.serve(&inbox) {
                drop(import);
                // After replying: the caller goes on while the WAL is copied
                // back. Passive: never waits for readers; whatever is left is
                // checkpointed later by any connection.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "checkpoint after import failed; it happens later");
                }
                return;
            }
        }
        Err(e) => {
            let _ = ready.send(Err(e));
        }
    }
    // Dropped, failed or never started: leave nothing behind.
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "rolling back an import failed; closing the connection rolls it back");
        }
    }
}

/// The import connection: WAL (set on the file when the store created it),
/// `synchronous = NORMAL` (a commit survives a crash of the process, and a
/// power cut back to an earlier commit, never a torn one), no automatic
/// checkpoint inside the commit (see [`run`]), no foreign-key checks (module docs).
fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(driver_error)?;
    conn.busy_timeout(WRITE_WAIT).map_err(driver_error)?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -{CACHE_KIB}; PRAGMA wal_autocheckpoint = 0;"
    ))
    .map_err(driver_error)?;
    Ok(conn)
}

/// A stored tree as an update needs it.
struct Current {
    id: i64,
    code: TreeCode,
    version: i64,
    created_at: DateTime<Utc>,
}

/// The state of one import, on its thread.
struct Import<'c> {
    conn: &'c Connection,
    survey_id: i64,
    /// The next tree id to hand out; ids at or above `first_id` are this import's.
    next_id: i64,
    first_id: i64,
    inserted: u64,
    updated: u64,
    orchards: HashSet<OrchardId>,
    /// Surveys known to exist.
    surveys: HashSet<i64>,
    /// Recorded row-key hashes; read on first use.
    keys: Option<KeySet>,
    /// Serials at or above `next_id` that claimed codes of stored or removed trees hold: derived codes skip them.
    claimed_ahead: HashSet<i64>,
    /// Serials of removed trees' codes: never given to another tree.
    removed: HashSet<i64>,
    /// Codes this import claimed explicitly.
    claimed: HashSet<TreeCode>,
    touched: Touched,
    /// Why the import cannot go on, once it cannot.
    failed: Option<String>,
    insert_many: Statement<'c>,
    insert_one: Statement<'c>,
    by_serial: Statement<'c>,
    by_id: Statement<'c>,
    history: Statement<'c>,
    update: Statement<'c>,
}

/// `INSERT INTO trees` for `rows` trees; `?1` is the timestamp all share.
fn insert_trees_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO trees (id, code, code_serial, lon, lat, accuracy_m, cultivar, planted_year, health, height_m, \
         girth_cm, orchard_id, survey_id, row_key, created_at, updated_at, version) VALUES ",
    );
    for r in 0..rows {
        let p = 2 + r * VALUES_PER_TREE;
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for k in 0..VALUES_PER_TREE {
            sql.push_str(&format!("?{},", p + k));
        }
        sql.push_str("?1,?1,1)");
    }
    sql
}

/// A new tree's values, bound from parameter `p` on.
struct NewRow<'a> {
    id: i64,
    code: TreeCode,
    tree: &'a NewTree,
    survey: i64,
    row_key: Option<i64>,
}

fn bind_tree(stmt: &mut Statement<'_>, p: usize, row: &NewRow<'_>) -> Result<()> {
    let t = row.tree;
    let bind = |stmt: &mut Statement<'_>| -> rusqlite::Result<()> {
        stmt.raw_bind_parameter(p, row.id)?;
        stmt.raw_bind_parameter(p + 1, row.code.as_str())?;
        stmt.raw_bind_parameter(p + 2, code_serial(&row.code))?;
        stmt.raw_bind_parameter(p + 3, t.location.lon)?;
        stmt.raw_bind_parameter(p + 4, t.location.lat)?;
        stmt.raw_bind_parameter(p + 5, t.accuracy_m)?;
        stmt.raw_bind_parameter(p + 6, t.cultivar.as_str())?;
        stmt.raw_bind_parameter(p + 7, t.planted_year)?;
        stmt.raw_bind_parameter(p + 8, t.health.as_str())?;
        stmt.raw_bind_parameter(p + 9, t.height_m)?;
        stmt.raw_bind_parameter(p + 10, t.girth_cm)?;
        stmt.raw_bind_parameter(p + 11, t.orchard_id.as_str())?;
        stmt.raw_bind_parameter(p + 12, t.survey_id.map_or(row.survey, |s| s.0))?;
        stmt.raw_bind_parameter(p + 13, row.row_key)
    };
    bind(stmt).map_err(driver_error)
}

impl<'c> Import<'c> {
    /// Opens the transaction and records the survey and the file.
    fn start(conn: &'c Connection, meta: ImportMeta, sha: String) -> Result<Self> {
        let db = driver_error;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        let prior: Option<i64> = conn
            .query_row("SELECT survey_id FROM imports WHERE file_sha256 = ?1", [&sha], |r| r.get(0))
            .optional()
            .map_err(db)?;
        if let Some(survey_id) = prior {
            return Err(Error::AlreadyImported { file_sha256: sha, survey_id: SurveyId(survey_id) });
        }
        let s = &meta.survey;
        conn.execute(
            "INSERT INTO surveys (surveyor, surveyed_at, source, device) VALUES (?1, ?2, ?3, ?4)",
            params![s.surveyor, time_text(s.surveyed_at.trunc_subsecs(6)), s.source, s.device],
        )
        .map_err(db)?;
        let survey_id = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO imports (survey_id, file_name, file_sha256, format, external_id, imported_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![survey_id, meta.file_name, sha, meta.format, meta.external_id, time_text(now())],
        )
        .map_err(db)?;
        // Safe only because the transaction holds the write lock: nobody else
        // can insert a tree before this import commits.
        // Above removed trees' ids too: those are never given again.
        let next_id: i64 = conn.query_row(NEXT_TREE_ID_SQL, [], |r| r.get(0)).map_err(db)?;
        let mut removed = HashSet::new();
        {
            let mut stmt = conn.prepare(REMOVED_SERIALS_SQL).map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            while let Some(row) = rows.next().map_err(db)? {
                removed.insert(Columns(row).int(0, "code_serial").map_err(|e| relabel(e, "tree_history"))?);
            }
        }
        let mut claimed_ahead: HashSet<i64> = removed.iter().copied().filter(|&s| s >= next_id).collect();
        {
            let mut stmt = conn.prepare("SELECT code_serial FROM trees WHERE code_serial >= ?1").map_err(db)?;
            let mut rows = stmt.query([next_id]).map_err(db)?;
            while let Some(row) = rows.next().map_err(db)? {
                claimed_ahead.insert(Columns(row).int(0, "code_serial")?);
            }
        }
        let mut orchards = HashSet::new();
        {
            let mut stmt = conn.prepare("SELECT id FROM orchards").map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            while let Some(row) = rows.next().map_err(db)? {
                let id: String = row.get(0).map_err(|e| corrupt("orchards", e.to_string()))?;
                orchards.insert(OrchardId::new(&id).map_err(|e| corrupt("orchards", format!("orchard {id:?}: {e}")))?);
            }
        }
        let prepare = |sql: &str| conn.prepare(sql).map_err(db);
        Ok(Import {
            conn,
            survey_id,
            next_id,
            first_id: next_id,
            inserted: 0,
            updated: 0,
            orchards,
            surveys: HashSet::from([survey_id]),
            keys: None,
            claimed_ahead,
            removed,
            claimed: HashSet::new(),
            touched: Touched::default(),
            failed: None,
            insert_many: prepare(&insert_trees_sql(ROWS_PER_INSERT))?,
            insert_one: prepare(&insert_trees_sql(1))?,
            by_serial: prepare("SELECT id, code, version, created_at FROM trees WHERE code_serial = ?1")?,
            by_id: prepare("SELECT id, code, version, created_at FROM trees WHERE id = ?1")?,
            history: prepare(HISTORY_INSERT_SQL)?,
            update: prepare(
                "UPDATE trees SET code = ?1, code_serial = ?2, lon = ?3, lat = ?4, accuracy_m = ?5, cultivar = ?6, \
                 planted_year = ?7, health = ?8, height_m = ?9, girth_cm = ?10, orchard_id = ?11, survey_id = ?12, \
                 row_key = ?13, updated_at = ?14, version = version + 1 WHERE id = ?15",
            )?,
        })
    }

    /// Answers commands until the handle is dropped (false) or a commit succeeds (true).
    fn serve(&mut self, inbox: &std::sync::mpsc::Receiver<Command>) -> bool {
        while let Ok(command) = inbox.recv() {
            match command {
                Command::Known(hashes, reply) => {
                    let _ = reply.send(self.guard(|i| i.known(&hashes)));
                }
                Command::Insert(rows, reply) => {
                    let _ = reply.send(self.guard(|i| i.insert(rows)));
                }
                Command::Update(rows, reply) => {
                    let _ = reply.send(self.guard(|i| i.update(rows)));
                }
                Command::Commit(reply) => {
                    let result = self.guard(Import::commit);
                    let committed = result.is_ok();
                    let _ = reply.send(result);
                    if committed {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Runs one command unless an earlier one failed; a failure ends the import.
    fn guard<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if let Some(why) = &self.failed {
            return Err(Error::Aborted(why.clone()));
        }
        let result = f(self);
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }

    /// Every recorded row key: those of the current trees and of the versions they replaced.
    fn recorded_keys(&mut self) -> Result<&mut KeySet> {
        if self.keys.is_none() {
            let db = driver_error;
            let mut keys = KeySet::default();
            for table in ["trees", "tree_history"] {
                let mut stmt =
                    self.conn.prepare(&format!("SELECT row_key FROM {table} WHERE row_key IS NOT NULL")).map_err(db)?;
                let mut rows = stmt.query([]).map_err(db)?;
                while let Some(row) = rows.next().map_err(db)? {
                    keys.insert(Columns(row).int(0, "row_key").map_err(|e| relabel(e, table))?);
                }
            }
            self.keys = Some(keys);
        }
        Ok(self.keys.get_or_insert_with(KeySet::default))
    }

    fn known(&mut self, hashes: &[i64]) -> Result<Vec<bool>> {
        Ok(known_hashes(self.recorded_keys()?, hashes))
    }

    /// Records a row key for a tree about to be written: `None` when the key
    /// is recorded already (it keeps its first tree).
    fn record_key(keys: &mut KeySet, key: &str) -> Option<i64> {
        let hash = row_key_hash(key);
        keys.insert(hash).then_some(hash)
    }

    fn check_survey(&mut self, survey: Option<SurveyId>) -> Result<()> {
        let Some(SurveyId(s)) = survey else { return Ok(()) };
        if self.surveys.contains(&s) {
            return Ok(());
        }
        let found: Option<i64> = self
            .conn
            .query_row("SELECT id FROM surveys WHERE id = ?1", [s], |r| r.get(0))
            .optional()
            .map_err(driver_error)?;
        if found.is_none() {
            return Err(Error::Invalid { field: "survey_id", reason: format!("survey {s} does not exist") });
        }
        self.surveys.insert(s);
        Ok(())
    }

    fn current_by_code(&mut self, code: TreeCode) -> Result<Option<Current>> {
        let found = read_current(&mut self.by_serial, code_serial(&code))?;
        // A serial names one code; a different stored text would be a corrupt row.
        Ok(found.filter(|c| c.code == code))
    }

    fn current_by_id(&mut self, id: i64) -> Result<Option<Current>> {
        read_current(&mut self.by_id, id)
    }

    /// A fresh id whose derived code nobody holds and `reserved` does not name.
    fn derive(&mut self, reserved: &HashSet<i64>) -> Result<(i64, TreeCode)> {
        loop {
            let id = self.next_id;
            self.next_id += 1;
            // The derived code's serial is the id itself.
            if self.claimed_ahead.contains(&id) || reserved.contains(&id) {
                tracing::debug!(id, "derived tag code already claimed; taking the next id");
                continue;
            }
            return Ok((id, code_for(id)?));
        }
    }

    /// Makes `code` free for a claim: a tree this import gave that code as its
    /// derived one moves to a fresh id; any other holder, or a removed tree
    /// that had it, makes it a duplicate.
    fn claim(&mut self, code: TreeCode, reserved: &HashSet<i64>) -> Result<()> {
        if self.removed.contains(&code_serial(&code)) {
            return Err(Error::DuplicateCode(code.to_string()));
        }
        if let Some(holder) = self.current_by_code(code)? {
            let derived_here =
                holder.id >= self.first_id && !self.claimed.contains(&code) && code_for(holder.id).ok() == Some(code);
            if !derived_here {
                return Err(Error::DuplicateCode(code.to_string()));
            }
            self.relocate(holder.id, code, reserved)?;
        }
        let serial = code_serial(&code);
        if serial >= self.next_id {
            self.claimed_ahead.insert(serial);
        }
        self.claimed.insert(code);
        Ok(())
    }

    /// Moves a tree inserted by this import to a fresh id and code (nobody
    /// outside the transaction has seen it).
    fn relocate(&mut self, old: i64, old_code: TreeCode, reserved: &HashSet<i64>) -> Result<()> {
        let (id, code) = self.derive(reserved)?;
        let db = driver_error;
        self.conn
            .execute(
                "UPDATE trees SET id = ?1, code = ?2, code_serial = ?3 WHERE id = ?4",
                params![id, code.as_str(), code_serial(&code), old],
            )
            .map_err(db)?;
        self.conn.execute("UPDATE tree_history SET tree_id = ?1 WHERE tree_id = ?2", [id, old]).map_err(db)?;
        self.touched.remove(old);
        self.touched.add(id);
        tracing::info!(
            from = old, to = id, code = %old_code,
            "a later row claims the tag code derived for an untagged tree of this import; that tree moves"
        );
        Ok(())
    }

    fn insert(&mut self, rows: Vec<(String, NewTree)>) -> Result<Vec<(TreeId, TreeCode)>> {
        for (_, t) in &rows {
            check_draft(t, &self.orchards)?;
            self.check_survey(t.survey_id)?;
        }
        if let Some(code) = repeated_code(rows.iter().filter_map(|(_, t)| t.code)) {
            return Err(Error::DuplicateCode(code.to_string()));
        }
        // Serials claimed by this batch: no derived code may take them.
        let reserved: HashSet<i64> = rows.iter().filter_map(|(_, t)| t.code.as_ref().map(code_serial)).collect();
        for (_, t) in &rows {
            if let Some(code) = t.code {
                self.claim(code, &reserved)?;
            }
        }
        let mut assigned = Vec::with_capacity(rows.len());
        for (_, t) in &rows {
            assigned.push(match t.code {
                Some(code) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    (id, code)
                }
                None => self.derive(&reserved)?,
            });
        }

        let survey = self.survey_id;
        let keys = self.recorded_keys()?;
        let new_rows: Vec<NewRow<'_>> = rows
            .iter()
            .zip(&assigned)
            .map(|((key, tree), &(id, code))| NewRow { id, code, tree, survey, row_key: Self::record_key(keys, key) })
            .collect();
        let at = time_text(now());
        let mut chunks = new_rows.chunks_exact(ROWS_PER_INSERT);
        for chunk in &mut chunks {
            let stmt = &mut self.insert_many;
            stmt.raw_bind_parameter(1, at.as_str()).map_err(driver_error)?;
            for (r, row) in chunk.iter().enumerate() {
                bind_tree(stmt, 2 + r * VALUES_PER_TREE, row)?;
            }
            stmt.raw_execute().map_err(driver_error)?;
        }
        for row in chunks.remainder() {
            let stmt = &mut self.insert_one;
            stmt.raw_bind_parameter(1, at.as_str()).map_err(driver_error)?;
            bind_tree(stmt, 2, row)?;
            stmt.raw_execute().map_err(driver_error)?;
        }
        drop(new_rows);

        for &(id, _) in &assigned {
            self.touched.add(id);
        }
        self.inserted += rows.len() as u64;
        Ok(assigned.into_iter().map(|(id, code)| (TreeId(id), code)).collect())
    }

    fn update(&mut self, rows: Vec<(String, TreeRef, NewTree)>) -> Result<Vec<Tree>> {
        let batch_at = now();
        let mut out = Vec::with_capacity(rows.len());
        for (key, target, t) in rows {
            check_draft(&t, &self.orchards)?;
            self.check_survey(t.survey_id)?;
            let current = match &target {
                TreeRef::Id(id) => self.current_by_id(id.0)?,
                TreeRef::Code(code) => self.current_by_code(*code)?,
            };
            let Some(current) = current else { return Err(Error::NoSuchTree(target)) };
            let code = t.code.unwrap_or(current.code);
            if code != current.code {
                self.claim(code, &HashSet::new())?;
            }
            // Never before created_at, even if this machine's clock is behind the one that created it.
            let at = batch_at.max(current.created_at);
            let at_text = time_text(at);
            let survey_id = t.survey_id.unwrap_or(SurveyId(self.survey_id));
            let row_key = Self::record_key(self.recorded_keys()?, &key);
            let db = driver_error;
            self.history.execute(params![current.id, at_text, self.survey_id]).map_err(db)?;
            self.update
                .execute(params![
                    code.as_str(),
                    code_serial(&code),
                    t.location.lon,
                    t.location.lat,
                    t.accuracy_m,
                    t.cultivar.as_str(),
                    t.planted_year,
                    t.health.as_str(),
                    t.height_m,
                    t.girth_cm,
                    t.orchard_id.as_str(),
                    survey_id.0,
                    row_key,
                    at_text,
                    current.id,
                ])
                .map_err(db)?;
            self.touched.add(current.id);
            out.push(resurveyed_tree(t, (current.id, current.version, current.created_at), code, survey_id, at));
        }
        self.updated += out.len() as u64;
        Ok(out)
    }

    fn commit(&mut self) -> Result<SurveyId> {
        let db = driver_error;
        let at = time_text(now());
        let runs = std::mem::take(&mut self.touched).into_runs();
        if !runs.is_empty() {
            let first: i64 = self.conn.query_row(NEXT_SEQ_SQL, [], |r| r.get(0)).map_err(db)?;
            let mut stmt = self
                .conn
                .prepare("INSERT INTO changes (seq, tree_id, tree_id_to, changed_at) VALUES (?1, ?2, ?3, ?4)")
                .map_err(db)?;
            for (seq, from, to) in change_rows(first, &runs) {
                stmt.execute(params![seq, from, to, at]).map_err(db)?;
            }
        }
        self.conn
            .execute(
                "UPDATE imports SET imported_at = ?1, trees_inserted = ?2, trees_updated = ?3 WHERE survey_id = ?4",
                params![at, self.inserted as i64, self.updated as i64, self.survey_id],
            )
            .map_err(db)?;
        self.conn.execute_batch("COMMIT").map_err(db)?;
        tracing::debug!(survey = self.survey_id, inserted = self.inserted, updated = self.updated, "import committed");
        Ok(SurveyId(self.survey_id))
    }
}

fn read_current(stmt: &mut Statement<'_>, key: impl rusqlite::ToSql) -> Result<Option<Current>> {
    let db = driver_error;
    let mut rows = stmt.query([key]).map_err(db)?;
    let Some(row) = rows.next().map_err(db)? else { return Ok(None) };
    let c = Columns(row);
    let id = c.int(0, "id")?;
    let code = TreeCode::parse(c.text(1, "code")?).map_err(|e| corrupt("trees", format!("tree {id}: {e}")))?;
    Ok(Some(Current {
        id,
        code,
        version: c.int(2, "version")?,
        created_at: parse_time("trees", "created_at", c.text(3, "created_at")?)?,
    }))
}

/// A corrupt-row error about another table.
fn relabel(e: Error, table: &'static str) -> Error {
    match e {
        Error::Corrupt { reason, .. } => corrupt(table, reason),
        e => e,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn insert_statement_has_every_placeholder() {
        let sql = insert_trees_sql(3);
        assert!(sql.contains("(?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?1,?1,1)"));
        assert!(sql.ends_with("(?30,?31,?32,?33,?34,?35,?36,?37,?38,?39,?40,?41,?42,?43,?1,?1,1)"));
        assert_eq!(sql.matches("?1,?1,1").count(), 3);
    }

    /// The migration's SQL serial agrees with code_serial for trees stored before it.
    #[test]
    fn migration_computes_code_serials() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite/0001_initial.sql")).unwrap();
        conn.execute_batch(
            "INSERT INTO orchards (id, name, owner, commune, district, province, created_at, updated_at) \
             VALUES ('O', 'n', 'o', 'c', 'd', 'p', 't', 't')",
        )
        .unwrap();
        let serials: Vec<u64> = vec![0, 1, 2, 31, 99_999, 123_456_789, 887_503_680];
        for (i, s) in serials.iter().enumerate() {
            let code = TreeCode::from_serial(*s).unwrap();
            conn.execute(
                "INSERT INTO trees (id, code, lon, lat, cultivar, health, orchard_id, created_at, updated_at) \
                 VALUES (?1, ?2, 1, 2, 'Ri6', 'good', 'O', 't', 't')",
                params![i as i64 + 1, code.as_str()],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO trees (id, code, lon, lat, cultivar, health, orchard_id, created_at, updated_at) \
                      VALUES (100, 'not-a-code', 1, 2, 'Ri6', 'good', 'O', 't', 't')",
            [],
        )
        .unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite/0002_imports.sql")).unwrap();
        let mut stmt = conn.prepare("SELECT id, code, code_serial FROM trees ORDER BY id").unwrap();
        let rows: Vec<(i64, String, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), serials.len() + 1);
        for ((_, code, serial), s) in rows.iter().zip(&serials) {
            assert_eq!(*serial, *s as i64, "{code}");
            assert_eq!(*serial, code_serial(&TreeCode::parse(code).unwrap()));
        }
        assert_eq!(rows[serials.len()].2, -100);
    }
}
