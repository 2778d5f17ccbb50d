//! The PostgreSQL backend.
//!
//! # Change-log order
//! `changes.seq` comes from an identity sequence, and sequence values are
//! handed out when a row is inserted, not when its transaction commits. Two
//! concurrent writers could therefore commit out of order: A takes seq 10, B
//! takes seq 11, B commits, a follower reads `seq > 9`, sees 11 and moves its
//! position to 11; then A commits 10, which that follower never reads.
//!
//! To rule this out every writing transaction first takes the
//! transaction-level advisory lock [`WRITE_LOCK`] (`pg_advisory_xact_lock`),
//! held until it commits or rolls back. Writers thus run one at a time, so
//! sequence order is commit order and `seq > last` misses nothing. The lock
//! also makes the checks an import makes (codes taken, orchards present) hold
//! until its commit. Writers are few (imports, edits); readers never take it.
//!
//! Writes that no follower reads through the change log and that no
//! concurrent writer can invalidate go without it, so they never wait for an
//! import (which holds the lock from start to commit): accounts (unique
//! constraints settle races) and farm-diary records (append-only). Orchard
//! writes do take it: their `updated_at` is what servers follow.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use geo_core::{
    Actor, LonLat, NewTree, NewTreeRecord, Orchard, OrchardId, RemovalReason, Role, Survey, SurveyId, Tree, TreeChange,
    TreeCode, TreeId, TreeRecord, User, UserId,
};
use sqlx::postgres::{PgConnection, PgDatabaseError, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::common::{
    IdSource, UserRow, assemble_changes, assemble_users, assign_ids, bad_correction, change_rows, check_user_name,
    check_values, code_serial, corrupt, decode_error, encode_boundary, encode_record, expand_changes,
    history_change_columns, history_columns, history_from_row, history_row_from_row, id_runs, normalise_sha256, now,
    orchard_columns, orchard_from_row, orchard_time, prepare, record_columns, record_from_row, seq_count,
    sorted_orchards, stored_tree, survey_columns, survey_creator, survey_from_row, tree_columns, tree_from_row,
    user_columns,
};
use crate::{
    Backend, Change, Error, ImportBatch, ImportMeta, ImportWriter, Imported, PriorImport, Result, Storage, TreePoint,
    TreeVersion,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Key of the advisory lock every writing transaction holds (see the module
/// documentation). Any fixed number works as long as every writer uses the
/// same one; this is "orchmap" in ASCII.
pub const WRITE_LOCK: i64 = 0x006f_7263_686d_6170;

/// Connections in the pool: enough for concurrent API reads beside a writer.
const MAX_CONNECTIONS: u32 = 8;

/// How long to wait for a connection (also bounds how long `connect` retries an unreachable server).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Default of [`PostgresStore::with_bulk_index_rows`].
pub const DEFAULT_BULK_INDEX_ROWS: u64 = 50_000;

/// Trees per INSERT ... SELECT FROM UNNEST(arrays): one statement of 12 array
/// parameters (no per-row placeholders, so no 65,535-parameter limit); the
/// chunking only bounds the size of a single message.
const ROWS_PER_INSERT: usize = 20_000;

/// The PostgreSQL backend. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    location: String,
    postgis: bool,
    /// See [`PostgresStore::with_bulk_index_rows`].
    pub(crate) bulk_index_rows: u64,
}

impl PostgresStore {
    /// Connects to the server at `url` (`postgres://user:password@host:port/database`)
    /// and applies any pending migration (sqlx serialises concurrent migrators
    /// with an advisory lock of its own).
    ///
    /// Any failure gives [`Error::Open`] whose location is the URL with the
    /// password replaced by `***`.
    pub async fn connect(url: &str) -> Result<Self> {
        let mode = crate::postgis::PostgisMode::from_env()
            .map_err(|e| Error::Open { location: redact(url), reason: e.to_string() })?;
        Self::connect_with(url, mode).await
    }

    /// As [`PostgresStore::connect`], with the PostGIS columns as `postgis` says
    /// rather than as `ORCHARDMAP_POSTGIS` does.
    pub async fn connect_with(url: &str, postgis: crate::postgis::PostgisMode) -> Result<Self> {
        let location = redact(url);
        let fail = |reason: String| Error::Open { location: location.clone(), reason };
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|e| fail(e.to_string()))?;
        MIGRATOR.run(&pool).await.map_err(|e| fail(format!("migrating the schema: {e}")))?;
        let postgis = crate::postgis::set_up(&pool, postgis).await.map_err(|e| fail(e.to_string()))?;
        tracing::debug!(location = %location, postgis, "PostgreSQL database open");
        Ok(Self { pool, location, postgis, bulk_index_rows: DEFAULT_BULK_INDEX_ROWS })
    }

    /// From how many new trees an import rebuilds the PostGIS index of `trees`
    /// once at commit instead of inserting every point into it (default
    /// [`DEFAULT_BULK_INDEX_ROWS`]). It does so only when the import has also
    /// brought at least a quarter as many trees as the table held: building
    /// the GiST index costs about 1.6 µs per tree of the table, inserting into it
    /// about 6 µs per new tree. From then until commit the import holds an
    /// exclusive lock on `trees`, so outside readers of the table (QGIS, exports
    /// by SQL) wait for it; orchardmap's servers answer from memory meanwhile.
    pub fn with_bulk_index_rows(mut self, rows: u64) -> Self {
        self.bulk_index_rows = rows;
        self
    }

    /// Whether trees and orchards have their PostGIS `geom` columns (see `ORCHARDMAP_POSTGIS`).
    pub fn has_postgis(&self) -> bool {
        self.postgis
    }

    /// `url` with its password replaced by `***` (for messages).
    pub fn redacted(url: &str) -> String {
        redact(url)
    }

    /// The server URL without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction holding [`WRITE_LOCK`]. READ COMMITTED whatever the
    /// server default: each statement must see what earlier writers committed
    /// while this one waited for the lock.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }

    /// A read-only transaction that sees one snapshot for all its statements.
    async fn begin_read(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?)
    }

    /// [`Storage::update_tree`] and [`Storage::edit_tree`]: `actor` is recorded
    /// as the author of the new version (in the history row of the one it replaces).
    async fn write_tree(&self, tree: &Tree, actor: Option<&Actor>) -> Result<Tree> {
        check_values(tree.location, tree.accuracy_m, tree.height_m, tree.girth_cm)?;
        let mut tx = self.begin_write().await?;
        let stored: Option<(i64, DateTime<Utc>, i64)> =
            sqlx::query_as("SELECT version, created_at, code_serial FROM trees WHERE id = $1")
                .bind(tree.id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| decode_error("trees", e))?;
        let Some((current, created_at, stored_serial)) = stored else { return Err(Error::NotFound(tree.id)) };
        if current != tree.version {
            return Err(Error::Conflict { id: tree.id, current, given: tree.version });
        }
        let other: Option<i64> = sqlx::query_scalar("SELECT id FROM trees WHERE code_serial = $1 AND id <> $2")
            .bind(code_serial(&tree.code))
            .bind(tree.id.0)
            .fetch_optional(&mut *tx)
            .await?;
        if other.is_some() {
            return Err(Error::DuplicateCode(tree.code.to_string()));
        }
        if code_serial(&tree.code) != stored_serial && removed_code(&mut tx, &tree.code).await? {
            return Err(Error::DuplicateCode(tree.code.to_string()));
        }
        let orchard: Option<String> = sqlx::query_scalar("SELECT id FROM orchards WHERE id = $1")
            .bind(tree.orchard_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if orchard.is_none() {
            return Err(Error::UnknownOrchard(tree.orchard_id.clone()));
        }
        if let Some(SurveyId(s)) = tree.survey_id {
            let survey: Option<i64> =
                sqlx::query_scalar("SELECT id FROM surveys WHERE id = $1").bind(s).fetch_optional(&mut *tx).await?;
            if survey.is_none() {
                return Err(Error::Invalid { field: "survey_id", reason: format!("survey {s} does not exist") });
            }
        }
        // Never before created_at, even if this machine's clock is behind the one that created it.
        let at = now().max(created_at);
        sqlx::query(HISTORY_CHANGE_SQL)
            .bind(tree.id.0)
            .bind(at)
            .bind(actor.map(|a| a.name.as_str()))
            .bind(actor.and_then(|a| a.user_id).map(|u| u.0))
            .bind(None::<&str>)
            .bind(None::<i64>)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(concat!(
            "UPDATE trees SET code = $1, lon = $2, lat = $3, accuracy_m = $4, cultivar = $5, planted_year = $6, ",
            "health = $7, height_m = $8, girth_cm = $9, orchard_id = $10, survey_id = $11, updated_at = $12, ",
            "version = version + 1, row_key = NULL, code_serial = $15 WHERE id = $13 AND version = $14 RETURNING ",
            tree_columns!()
        ))
        .bind(tree.code.as_str())
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
        .bind(tree.id.0)
        .bind(tree.version)
        .bind(code_serial(&tree.code))
        .fetch_optional(&mut *tx)
        .await
        .map_err(duplicate_code_error)?;
        // Only a writer ignoring WRITE_LOCK could have changed the row since the version check.
        let Some(row) = row else { return Err(Error::Conflict { id: tree.id, current, given: tree.version }) };
        let updated = tree_from_row(&row)?;
        log_change(&mut tx, tree.id, at).await?;
        tx.commit().await?;
        Ok(updated)
    }
}

/// `url` with the password (in the user info or a `password=` parameter) replaced by `***`.
/// Errs on the side of hiding: the user info ends at the *last* `@`, so a
/// password holding an unescaped `/`, `?` or `@` is still hidden whole.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not URL-shaped: it could hold a password anywhere, so show nothing of it.
        return "<PostgreSQL URL>".to_string();
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, tail)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{tail}"),
            None => rest.to_string(),
        },
        None => rest.to_string(),
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, q),
        None => return format!("{scheme}://{rest}"),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{scheme}://{before_query}?{}", params.join("&"))
}

/// Copies tree `$1` into `tree_history` as it is now, replaced at `$2` by
/// `$3` (actor name) / `$4` (account); for a removal `$5` is the reason and
/// `$6` the code's serial (both NULL for an edit).
const HISTORY_CHANGE_SQL: &str = concat!(
    "INSERT INTO tree_history (",
    history_columns!(),
    ", row_key, changed_by, changed_by_user, removal_reason, code_serial) SELECT ",
    tree_columns!(),
    ", $2, NULL, row_key, $3, $4, $5, $6 FROM trees WHERE id = $1"
);

/// The code serials of every removed tree (never given to another tree).
pub(crate) const REMOVED_SERIALS_SQL: &str =
    "SELECT code_serial FROM tree_history WHERE removal_reason IS NOT NULL AND code_serial IS NOT NULL";

/// Whether `code` is the code of a removed tree (never given to another tree).
async fn removed_code(conn: &mut PgConnection, code: &TreeCode) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT tree_id FROM tree_history WHERE removal_reason IS NOT NULL AND code_serial = $1 LIMIT 1",
    )
    .bind(code_serial(code))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// The orchards assigned to account `user`.
async fn orchards_of<'e>(conn: impl sqlx::Executor<'e, Database = Postgres>, user: i64) -> Result<Vec<OrchardId>> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT orchard_id FROM user_orchards WHERE user_id = $1")
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

/// Logs a change of tree `id` (one change-log row; the caller holds [`WRITE_LOCK`]).
async fn log_change(conn: &mut PgConnection, id: TreeId, at: DateTime<Utc>) -> Result<()> {
    sqlx::query("INSERT INTO changes (tree_id, changed_at) VALUES ($1, $2)").bind(id.0).bind(at).execute(conn).await?;
    Ok(())
}

/// Logs a change of every tree in `runs` (sorted, disjoint runs of ids), one
/// row per run, each standing for a block of sequence numbers (see
/// migrations/postgres/0002_imports.sql). The block is reserved by moving the
/// identity sequence past it; under [`WRITE_LOCK`] nobody takes a number in between.
pub(crate) async fn log_changes(conn: &mut PgConnection, runs: &[(i64, i64)], at: DateTime<Utc>) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let n = seq_count(runs);
    let last: i64 = sqlx::query_scalar(
        "SELECT setval(pg_get_serial_sequence('changes', 'seq'), \
         nextval(pg_get_serial_sequence('changes', 'seq')) + $1 - 1)",
    )
    .bind(n)
    .fetch_one(&mut *conn)
    .await?;
    let rows = change_rows(last - n + 1, runs);
    sqlx::query(
        "INSERT INTO changes (seq, tree_id, tree_id_to, changed_at) \
         SELECT seq, tree_id, tree_id_to, $4 FROM UNNEST($1::int8[], $2::int8[], $3::int8[]) AS u(seq, tree_id, tree_id_to)",
    )
    .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ids and codes from inside the import transaction.
pub(crate) struct Ids<'c> {
    pub(crate) conn: &'c mut PgConnection,
}

impl IdSource for Ids<'_> {
    async fn taken_codes(&mut self, codes: &[TreeCode]) -> Result<HashSet<String>> {
        let list: Vec<i64> = codes.iter().map(code_serial).collect();
        // Codes of removed trees are never given again: they count as taken.
        let taken: Vec<String> = sqlx::query_scalar(
            "SELECT code FROM trees WHERE code_serial = ANY($1) \
             UNION ALL SELECT code FROM tree_history WHERE removal_reason IS NOT NULL AND code_serial = ANY($1)",
        )
        .bind(list)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(taken.into_iter().collect())
    }

    async fn fresh_ids(&mut self, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        Ok(self.fresh_block(n).await?.collect())
    }
}

impl Ids<'_> {
    /// A block of `n` (at least one) consecutive ids in one round trip: the
    /// sequence moves past it. Every writer takes ids under WRITE_LOCK, so
    /// nobody takes one in between.
    pub(crate) async fn fresh_block(&mut self, n: usize) -> Result<std::ops::RangeInclusive<i64>> {
        let n = i64::try_from(n.max(1)).map_err(|_| corrupt("trees", "too many trees in one import"))?;
        let last: i64 = sqlx::query_scalar("SELECT setval('tree_ids', nextval('tree_ids') + $1 - 1)")
            .bind(n)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(last - n + 1..=last)
    }
}

/// A unique violation on an account's name or token as [`Error::Invalid`]
/// (a concurrent [`Storage::create_user`] took it first); `e` otherwise.
fn user_conflict(e: sqlx::Error, name: &str) -> Error {
    let constraint = e.as_database_error().filter(|db| db.is_unique_violation()).and_then(|db| db.constraint());
    match constraint {
        Some("users_name_key") => {
            Error::Invalid { field: "name", reason: format!("an account named {name:?} already exists") }
        }
        Some("users_token_sha256_key") => Error::Invalid {
            field: "token_sha256",
            reason: "another account already has this token; make another token".into(),
        },
        _ => Error::Database(e),
    }
}

/// `e` as [`Error::DuplicateCode`] when it is a unique violation on `trees.code`.
pub(crate) fn duplicate_code_error(e: sqlx::Error) -> Error {
    duplicate_code(&e).map_or(Error::Database(e), Error::DuplicateCode)
}

/// The code named by a unique violation on `trees.code_serial`, if that is what `e` is.
/// Unreachable while every writer holds [`WRITE_LOCK`] (the code is checked
/// first); kept for writers outside this crate.
fn duplicate_code(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() || db.constraint() != Some("trees_code_serial_key") {
        return None;
    }
    // "Key (code_serial)=(12345) already exists."
    let detail = db.try_downcast_ref::<PgDatabaseError>()?.detail()?;
    let (_, rest) = detail.split_once(")=(")?;
    let serial = rest.split_once(')').map_or(rest, |(serial, _)| serial);
    let code = serial.parse::<u64>().ok().and_then(|s| TreeCode::from_serial(s).ok());
    Some(code.map_or_else(|| format!("with serial {serial}"), |c| c.to_string()))
}

#[async_trait]
impl Storage for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn import(&self, batch: ImportBatch) -> Result<Imported> {
        let p = prepare(batch)?;
        let mut tx = self.begin_write().await?;
        // Taken under WRITE_LOCK, so orchards' updated_at follows commit order.
        let at = now();

        if !p.orchard_refs.is_empty() {
            let list: Vec<&str> = p.orchard_refs.iter().map(OrchardId::as_str).collect();
            let found: HashSet<String> = sqlx::query_scalar("SELECT id FROM orchards WHERE id = ANY($1)")
                .bind(list)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            if let Some(missing) = p.orchard_refs.iter().find(|o| !found.contains(o.as_str())) {
                return Err(Error::UnknownOrchard(missing.clone()));
            }
        }
        if !p.survey_refs.is_empty() {
            let found: HashSet<i64> = sqlx::query_scalar("SELECT id FROM surveys WHERE id = ANY($1)")
                .bind(&p.survey_refs)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            if let Some(missing) = p.survey_refs.iter().find(|s| !found.contains(s)) {
                return Err(Error::Invalid { field: "survey_id", reason: format!("survey {missing} does not exist") });
            }
        }

        let (ids, codes) = assign_ids(&mut Ids { conn: &mut tx }, &p.trees, &p.claimed).await?;

        let survey_id = match &p.survey {
            None => None,
            Some(s) => Some(SurveyId(
                sqlx::query_scalar(
                    "INSERT INTO surveys (surveyor, surveyed_at, source, device) VALUES ($1, $2, $3, $4) RETURNING id",
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
                 created_at, updated_at, gln) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) \
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

        for (chunk, (chunk_ids, chunk_codes)) in
            p.trees.chunks(ROWS_PER_INSERT).zip(ids.chunks(ROWS_PER_INSERT).zip(codes.chunks(ROWS_PER_INSERT)))
        {
            sqlx::query(
                "INSERT INTO trees (id, code, lon, lat, accuracy_m, cultivar, planted_year, health, height_m, \
                 girth_cm, orchard_id, survey_id, created_at, updated_at, version, code_serial) \
                 SELECT id, code, lon, lat, accuracy_m, cultivar, planted_year, health, height_m, girth_cm, \
                 orchard_id, survey_id, $13, $13, 1, code_serial \
                 FROM UNNEST($1::int8[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::text[], \
                 $7::int4[], $8::text[], $9::float8[], $10::float8[], $11::text[], $12::int8[], $14::int8[]) \
                 AS u(id, code, lon, lat, accuracy_m, cultivar, planted_year, health, height_m, girth_cm, \
                 orchard_id, survey_id, code_serial)",
            )
            .bind(chunk_ids)
            .bind(chunk_codes.iter().map(TreeCode::as_str).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.location.lon).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.location.lat).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.accuracy_m).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.cultivar.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.planted_year).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.health.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.height_m).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.girth_cm).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.orchard_id.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.survey_id.or(survey_id).map(|s| s.0)).collect::<Vec<_>>())
            .bind(at)
            .bind(chunk_codes.iter().map(code_serial).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(|e| duplicate_code(&e).map_or(Error::Database(e), Error::DuplicateCode))?;
        }

        // Under WRITE_LOCK: these sequence numbers become visible in order (module docs).
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
        let row = sqlx::query(concat!("SELECT ", orchard_columns!(), " FROM orchards WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(orchard_from_row).transpose()
    }

    async fn orchards(&self) -> Result<Vec<Orchard>> {
        // Byte order, as SQLite and Rust sort, whatever the database's collation.
        let rows = sqlx::query(concat!("SELECT ", orchard_columns!(), " FROM orchards ORDER BY id COLLATE \"C\""))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(orchard_from_row).collect()
    }

    async fn survey(&self, id: SurveyId) -> Result<Option<Survey>> {
        let row = sqlx::query(concat!("SELECT ", survey_columns!(), " FROM surveys WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(survey_from_row).transpose()
    }

    async fn tree(&self, id: TreeId) -> Result<Option<Tree>> {
        let row = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tree_from_row).transpose()
    }

    async fn tree_by_code(&self, code: &TreeCode) -> Result<Option<Tree>> {
        let row = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE code_serial = $1 AND code = $2"))
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
        let list: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let mut rows = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id = ANY($1)"))
            .bind(list)
            .fetch(&self.pool);
        let mut out = Vec::with_capacity(ids.len());
        while let Some(row) = rows.try_next().await? {
            out.push(tree_from_row(&row)?);
        }
        Ok(out)
    }

    async fn all_trees(&self) -> Result<Vec<Tree>> {
        let mut rows = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees ORDER BY id")).fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await? {
            out.push(tree_from_row(&row)?);
        }
        Ok(out)
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
            sqlx::query_as("SELECT seq, tree_id, tree_id_to FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
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
            sqlx::query_as("SELECT survey_id, file_name, imported_at FROM imports WHERE file_sha256 = $1")
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
        let mut rows =
            sqlx::query_as::<_, (i64, String, f64, f64)>("SELECT id, code, lon, lat FROM trees").fetch(&self.pool);
        let mut out = Vec::new();
        while let Some((id, code, lon, lat)) = rows.try_next().await.map_err(|e| decode_error("trees", e))? {
            let bad = |what: String| corrupt("trees", format!("tree {id}: {what}"));
            let code = TreeCode::parse(&code).map_err(|e| bad(e.to_string()))?;
            let location = LonLat::new(lon, lat);
            if !location.is_valid() {
                return Err(bad(format!("position {lon},{lat} is not a valid lon,lat")));
            }
            out.push(TreePoint { id: TreeId(id), code, location });
        }
        Ok(out)
    }

    async fn begin_import(&self, meta: ImportMeta) -> Result<Box<dyn ImportWriter>> {
        Ok(Box::new(crate::postgres_import::PgImport::begin(self, meta).await?))
    }

    async fn tree_history(&self, id: TreeId) -> Result<Vec<TreeVersion>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            history_columns!(),
            " FROM tree_history WHERE tree_id = $1 ORDER BY version"
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
        // No WRITE_LOCK (accounts are not in the change log, and an import may
        // hold it for minutes): the unique constraints settle a race.
        let mut tx = self.pool.begin().await?;
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            return Err(Error::Invalid { field: "name", reason: format!("an account named {name:?} already exists") });
        }
        let same_token: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE token_sha256 = $1")
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
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM orchards WHERE id = $1")
                .bind(orchard.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(Error::UnknownOrchard(orchard.clone()));
            }
        }
        let row = sqlx::query(concat!(
            "INSERT INTO users (name, role, token_sha256, created_at) VALUES ($1, $2, $3, $4) RETURNING ",
            user_columns!()
        ))
        .bind(name)
        .bind(role.as_str())
        .bind(&token_sha256[..])
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| user_conflict(e, name))?;
        let user = UserRow::from_row(&row)?;
        for orchard in &orchards {
            sqlx::query("INSERT INTO user_orchards (user_id, orchard_id) VALUES ($1, $2)")
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
        // No WRITE_LOCK: a revocation must not wait for an import to finish.
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(concat!(
            "UPDATE users SET revoked_at = COALESCE(revoked_at, $1) WHERE name = $2 RETURNING ",
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
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE token_sha256 = $1"))
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
        let orchard: Option<String> = sqlx::query_scalar("SELECT id FROM orchards WHERE id = $1")
            .bind(tree.orchard_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if orchard.is_none() {
            return Err(Error::UnknownOrchard(tree.orchard_id.clone()));
        }
        if let Some(SurveyId(s)) = tree.survey_id {
            let survey: Option<i64> =
                sqlx::query_scalar("SELECT id FROM surveys WHERE id = $1").bind(s).fetch_optional(&mut *tx).await?;
            if survey.is_none() {
                return Err(Error::Invalid { field: "survey_id", reason: format!("survey {s} does not exist") });
            }
        }
        let claimed: HashSet<TreeCode> = tree.code.into_iter().collect();
        let (ids, codes) = assign_ids(&mut Ids { conn: &mut tx }, std::slice::from_ref(&tree), &claimed).await?;
        let Some((&id, &code)) = ids.first().zip(codes.first()) else {
            return Err(corrupt("trees", "asked for a tree id, got none"));
        };
        let at = now();
        let row = sqlx::query(concat!(
            "INSERT INTO trees (id, code, code_serial, lon, lat, accuracy_m, cultivar, planted_year, health, ",
            "height_m, girth_cm, orchard_id, survey_id, created_at, updated_at, version) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, 1) RETURNING ",
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
        sqlx::query("INSERT INTO tree_creations (tree_id, created_by, created_by_user) VALUES ($1, $2, $3)")
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
        let row = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id = $1"))
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
        sqlx::query("DELETE FROM trees WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
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
            " FROM tree_history WHERE tree_id = $1 AND removal_reason IS NOT NULL"
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
        let mut tx = self.begin_read().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            history_columns!(),
            ", ",
            history_change_columns!(),
            " FROM tree_history WHERE tree_id = $1 ORDER BY version"
        ))
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        let history = rows.iter().map(history_row_from_row).collect::<Result<Vec<_>>>()?;
        let row = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        let current = row.as_ref().map(tree_from_row).transpose()?;
        let Some(first) = history.first().map(|h| &h.version.tree).or(current.as_ref()) else {
            return Ok(Vec::new());
        };
        let creation: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT created_by, created_by_user FROM tree_creations WHERE tree_id = $1")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| decode_error("tree_creations", e))?;
        let creator = match creation {
            Some((by, user)) => (by, user.map(UserId), None),
            None => {
                let surveyor: Option<String> = match first.survey_id {
                    Some(s) => {
                        sqlx::query_scalar("SELECT surveyor FROM surveys WHERE id = $1")
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
        // No WRITE_LOCK: records are not in the change log, a tree once stored
        // never disappears from both `trees` and its history, and records are
        // never changed, so the checks below stay true until the commit.
        let mut tx = self.pool.begin().await?;
        let known: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM trees WHERE id = $1 \
             UNION ALL SELECT tree_id FROM tree_history WHERE tree_id = $1 AND removal_reason IS NOT NULL LIMIT 1",
        )
        .bind(tree_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        if known.is_none() {
            return Err(Error::NotFound(tree_id));
        }
        if let Some(corrects) = record.corrects {
            let owner: Option<i64> = sqlx::query_scalar("SELECT tree_id FROM tree_records WHERE id = $1")
                .bind(corrects.0)
                .fetch_optional(&mut *tx)
                .await?;
            if owner != Some(tree_id.0) {
                return Err(bad_correction(tree_id, corrects, owner));
            }
        }
        let row = sqlx::query(concat!(
            "INSERT INTO tree_records (tree_id, date, kind, details, quantity, note, corrects, author, author_id, ",
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ",
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
            sqlx::query(concat!("SELECT ", record_columns!(), " FROM tree_records WHERE tree_id = $1 ORDER BY id"))
                .bind(tree_id.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn put_orchard(&self, orchard: &Orchard, actor: &Actor) -> Result<bool> {
        let boundary = orchard.boundary.as_ref().map(encode_boundary).transpose()?;
        let mut tx = self.begin_write().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM orchards WHERE id = $1")
            .bind(orchard.id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let newest: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT MAX(updated_at) FROM orchards")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| decode_error("orchards", e))?;
        let at = orchard_time(newest);
        let sql = if exists.is_some() {
            "UPDATE orchards SET name = $2, owner = $3, commune = $4, district = $5, province = $6, \
             planting_area_code = $7, boundary = $8, updated_at = $9, updated_by = $10, gln = $11 WHERE id = $1"
        } else {
            "INSERT INTO orchards (id, name, owner, commune, district, province, planting_area_code, boundary, \
             created_at, updated_at, updated_by, gln) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)"
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
        Err(Error::Invalid {
            field: "db",
            reason: format!(
                "a PostgreSQL database is backed up with its own tools, e.g. pg_dump --format=custom --file {} (online, consistent)",
                out.display()
            ),
        })
    }

    async fn trees_after(&self, after: TreeId, limit: u32) -> Result<Vec<Tree>> {
        let rows = sqlx::query(concat!("SELECT ", tree_columns!(), " FROM trees WHERE id > $1 ORDER BY id LIMIT $2"))
            .bind(after.0)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tree_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:s3cret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(redact("postgres://u:p@ss@db/x?sslmode=require"), "postgres://u:***@db/x?sslmode=require");
        assert_eq!(redact("postgresql://db/x?user=u&password=s3cret"), "postgresql://db/x?user=u&password=***");
        assert_eq!(redact("postgres://postgres@127.0.0.1:5432/test"), "postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(redact("postgres://u:a/b?c@db/x"), "postgres://u:***@db/x");
        assert_eq!(redact("postgres://db/x?password=p@b"), "postgres://db/x?password=***");
        assert_eq!(redact("host=db password=s3cret"), "<PostgreSQL URL>");
    }
}
