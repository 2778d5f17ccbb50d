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

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use geo_core::{LonLat, Orchard, OrchardId, Survey, SurveyId, Tree, TreeCode, TreeId};
use sqlx::postgres::{PgConnection, PgDatabaseError, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::common::{
    IdSource, assign_ids, change_rows, check_values, code_serial, corrupt, decode_error, expand_changes,
    history_columns, history_from_row, id_runs, normalise_sha256, now, orchard_columns, orchard_from_row, prepare,
    seq_count, stored_tree, survey_columns, survey_from_row, tree_columns, tree_from_row,
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
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Trees per INSERT ... SELECT FROM UNNEST(arrays): one statement of 12 array
/// parameters (no per-row placeholders, so no 65,535-parameter limit); the
/// chunking only bounds the size of a single message.
const ROWS_PER_INSERT: usize = 20_000;

/// The PostgreSQL backend. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    location: String,
}

impl PostgresStore {
    /// Connects to the server at `url` (`postgres://user:password@host:port/database`)
    /// and applies any pending migration (sqlx serialises concurrent migrators
    /// with an advisory lock of its own).
    ///
    /// Any failure gives [`Error::Open`] whose location is the URL with the
    /// password replaced by `***`.
    pub async fn connect(url: &str) -> Result<Self> {
        let location = redact(url);
        let fail = |reason: String| Error::Open { location: location.clone(), reason };
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|e| fail(e.to_string()))?;
        MIGRATOR.run(&pool).await.map_err(|e| fail(format!("migrating the schema: {e}")))?;
        tracing::debug!(location = %location, "PostgreSQL database open");
        Ok(Self { pool, location })
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

/// Copies tree `$1` into `tree_history` as it is now, replaced at `$2` by survey `$3`.
const HISTORY_INSERT_SQL: &str = concat!(
    "INSERT INTO tree_history (",
    history_columns!(),
    ", row_key) SELECT ",
    tree_columns!(),
    ", $2, $3, row_key FROM trees WHERE id = $1"
);

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
        let taken: Vec<String> = sqlx::query_scalar("SELECT code FROM trees WHERE code_serial = ANY($1)")
            .bind(list)
            .fetch_all(&mut *self.conn)
            .await?;
        Ok(taken.into_iter().collect())
    }

    async fn fresh_ids(&mut self, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let n = i64::try_from(n).map_err(|_| corrupt("trees", "too many trees in one import"))?;
        // A block of n consecutive ids in one round trip: the sequence moves
        // past it. Every writer takes ids under WRITE_LOCK, so nobody takes
        // one in between.
        let last: i64 = sqlx::query_scalar("SELECT setval('tree_ids', nextval('tree_ids') + $1 - 1)")
            .bind(n)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok((last - n + 1..=last).collect())
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
        let at = now();
        let mut tx = self.begin_write().await?;

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
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, owner = excluded.owner, \
                 commune = excluded.commune, district = excluded.district, province = excluded.province, \
                 planting_area_code = excluded.planting_area_code, boundary = excluded.boundary, \
                 updated_at = excluded.updated_at",
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
        check_values(tree.location, tree.accuracy_m, tree.height_m, tree.girth_cm)?;
        let mut tx = self.begin_write().await?;
        let stored: Option<(i64, DateTime<Utc>)> =
            sqlx::query_as("SELECT version, created_at FROM trees WHERE id = $1")
                .bind(tree.id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| decode_error("trees", e))?;
        let Some((current, created_at)) = stored else { return Err(Error::NotFound(tree.id)) };
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
        sqlx::query(HISTORY_INSERT_SQL).bind(tree.id.0).bind(at).bind(None::<i64>).execute(&mut *tx).await?;
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
        sqlx::query("INSERT INTO changes (tree_id, changed_at) VALUES ($1, $2)")
            .bind(tree.id.0)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(updated)
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
