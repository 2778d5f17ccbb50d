//! Copying a SQLite deployment to PostgreSQL ([`sqlite_to_postgres`]): every
//! table, row for row and value for value, in one PostgreSQL transaction, then
//! checked table by table (row count and an order-independent checksum of
//! every value read back from both databases).
//!
//! The target must be empty (a fresh database, migrated here) or hold exactly
//! the same data, in which case nothing is written and the check is repeated:
//! running the migration twice is safe. Anything else is refused, naming the
//! table that differs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};
use sqlx::Connection as _;

use crate::error::Error;
use crate::{PostgresStore, Result, SqliteStore};

/// The tables, parents before children. `_sqlx_migrations` is each database's own.
pub const TABLES: [&str; 15] = [
    "orchards",
    "surveys",
    "imports",
    "trees",
    "changes",
    "tree_history",
    "tree_creations",
    "users",
    "user_orchards",
    "tree_records",
    "tags",
    "tag_assignments",
    "lots",
    "lot_trees",
    "scans",
];

/// One table's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The table.
    pub table: &'static str,
    /// Rows in it (both databases).
    pub rows: u64,
    /// SHA-256 (hex, first 16 characters) of the multiset of its rows' values.
    pub checksum: String,
}

/// What [`sqlite_to_postgres`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// `false` when the target already held the same data (nothing written).
    pub copied: bool,
    /// Per table, in [`TABLES`] order.
    pub tables: Vec<TableReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Text,
    Bool,
    Time,
    Date,
    Bytes,
}

fn kind_of(pg_type: &str) -> Result<Kind> {
    Ok(match pg_type {
        "bigint" | "integer" | "smallint" => Kind::Int,
        "double precision" | "real" => Kind::Float,
        "text" | "character varying" => Kind::Text,
        "boolean" => Kind::Bool,
        "timestamp with time zone" => Kind::Time,
        "date" => Kind::Date,
        "bytea" => Kind::Bytes,
        other => return Err(Error::Invalid { field: "schema", reason: format!("column type {other} is not handled") }),
    })
}

fn bad(table: &str, column: &str, what: impl std::fmt::Display) -> Error {
    Error::Corrupt { table: "migration", reason: format!("{table}.{column}: {what}") }
}

/// A SQLite value in canonical form (what the checksum covers), `None` for NULL.
fn canonical_sqlite(v: ValueRef<'_>, kind: Kind, table: &str, column: &str) -> Result<Option<String>> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| bad(table, column, e));
    Ok(Some(match (kind, v) {
        (_, ValueRef::Null) => return Ok(None),
        (Kind::Int, ValueRef::Integer(i)) => i.to_string(),
        (Kind::Float, ValueRef::Real(f)) => format!("{:016x}", f.to_bits()),
        (Kind::Float, ValueRef::Integer(i)) => format!("{:016x}", (i as f64).to_bits()),
        (Kind::Bool, ValueRef::Integer(i)) => (i != 0).to_string(),
        (Kind::Text | Kind::Date, ValueRef::Text(t)) => text(t)?,
        (Kind::Time, ValueRef::Text(t)) => {
            let t = text(t)?;
            let at = DateTime::parse_from_rfc3339(&t).map_err(|e| bad(table, column, format!("{t:?}: {e}")))?;
            at.with_timezone(&Utc).timestamp_micros().to_string()
        }
        (Kind::Bytes, ValueRef::Blob(b)) => hex(b),
        (k, other) => return Err(bad(table, column, format!("{:?} value where {k:?} is expected", other.data_type()))),
    }))
}

/// A PostgreSQL value (read as text, UTC session) in the same canonical form.
fn canonical_pg(v: Option<&str>, kind: Kind, table: &str, column: &str) -> Result<Option<String>> {
    let Some(v) = v else { return Ok(None) };
    Ok(Some(match kind {
        Kind::Int | Kind::Text | Kind::Date => v.to_string(),
        Kind::Float => {
            let f: f64 = v.parse().map_err(|e| bad(table, column, format!("{v:?}: {e}")))?;
            format!("{:016x}", f.to_bits())
        }
        Kind::Bool => (v == "t" || v == "true").to_string(),
        Kind::Time => {
            let at = NaiveDateTime::parse_from_str(v.trim_end_matches("+00"), "%Y-%m-%d %H:%M:%S%.f")
                .map_err(|e| bad(table, column, format!("{v:?}: {e}")))?;
            at.and_utc().timestamp_micros().to_string()
        }
        Kind::Bytes => v.trim_start_matches("\\x").to_string(),
    }))
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// Order-independent checksum of rows: the sum (mod 2^256, as four wrapping u64) of each row's SHA-256.
#[derive(Default)]
struct Multiset([u64; 4], u64);

impl Multiset {
    fn add(&mut self, row: &[Option<String>]) {
        let mut h = Sha256::new();
        for v in row {
            match v {
                None => h.update([0u8]),
                Some(s) => {
                    h.update([1u8]);
                    h.update((s.len() as u64).to_le_bytes());
                    h.update(s.as_bytes());
                }
            }
        }
        let d = h.finalize();
        for (i, chunk) in d.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            self.0[i] = self.0[i].wrapping_add(u64::from_le_bytes(w));
        }
        self.1 += 1;
    }

    fn hex(&self) -> String {
        self.0.iter().map(|w| format!("{w:016x}")).collect::<String>()[..16].to_string()
    }
}

/// A value as COPY's text format writes it.
fn copy_field(out: &mut String, v: ValueRef<'_>, kind: Kind, table: &str, column: &str) -> Result<()> {
    match (kind, v) {
        (_, ValueRef::Null) => out.push_str("\\N"),
        (Kind::Int, ValueRef::Integer(i)) => {
            let _ = write!(out, "{i}");
        }
        (Kind::Float, ValueRef::Real(f)) => {
            let _ = write!(out, "{f:?}");
        }
        (Kind::Float, ValueRef::Integer(i)) => {
            let _ = write!(out, "{i}");
        }
        (Kind::Bool, ValueRef::Integer(i)) => out.push(if i != 0 { 't' } else { 'f' }),
        (Kind::Text | Kind::Date | Kind::Time, ValueRef::Text(t)) => {
            let t = std::str::from_utf8(t).map_err(|e| bad(table, column, e))?;
            for c in t.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
        (Kind::Bytes, ValueRef::Blob(b)) => {
            out.push_str("\\\\x");
            out.push_str(&hex(b));
        }
        (k, other) => return Err(bad(table, column, format!("{:?} value where {k:?} is expected", other.data_type()))),
    }
    Ok(())
}

/// Copies the SQLite database at `from` into the PostgreSQL database at `to`
/// (see the module documentation). `progress` hears each table as it is done.
pub async fn sqlite_to_postgres(from: &Path, to: &str, progress: impl Fn(&TableReport)) -> Result<MigrationReport> {
    // Both schemas brought up to date by their own migrations first.
    drop(SqliteStore::open(from).await?);
    let target = PostgresStore::connect(to).await?;
    let pool = target.pool.clone();
    let from = from.to_path_buf();
    let sqlite = tokio::task::spawn_blocking(move || {
        rusqlite::Connection::open_with_flags(&from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    })
    .await
    .map_err(|e| Error::Aborted(e.to_string()))?
    .map_err(crate::sqlite::driver_error)?;
    let sqlite = std::sync::Arc::new(std::sync::Mutex::new(sqlite));

    let mut conn = pool.acquire().await?;
    sqlx::query("SET TimeZone = 'UTC'").execute(&mut *conn).await?;
    // The columns to copy: PostgreSQL's, but not generated ones (PostGIS geom).
    let mut columns: HashMap<&'static str, Vec<(String, Kind)>> = HashMap::new();
    for table in TABLES {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER' \
             ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
        let cols = rows.into_iter().map(|(c, t)| Ok((c, kind_of(&t)?))).collect::<Result<Vec<_>>>()?;
        columns.insert(table, cols);
    }
    let mut empty = true;
    for table in TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut *conn)
            .await?;
        empty &= n == 0;
    }
    if empty {
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(crate::postgres::WRITE_LOCK).execute(&mut *tx).await?;
        for table in TABLES {
            let cols = &columns[table];
            let names: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
            let select = format!("SELECT {} FROM {table}", names.join(", "));
            let (db, table_cols) = (sqlite.clone(), cols.clone());
            // Read the SQLite table into COPY text on a blocking thread, 50,000 rows a chunk, handed over
            // through a small channel: a table of tens of millions of rows is never held whole.
            let (send, mut chunks) = tokio::sync::mpsc::channel::<String>(4);
            let reader = tokio::task::spawn_blocking(move || -> Result<()> {
                let db = db.lock().map_err(|_| Error::Aborted("SQLite connection poisoned".into()))?;
                let mut stmt = db.prepare(&select).map_err(crate::sqlite::driver_error)?;
                let mut rows = stmt.query([]).map_err(crate::sqlite::driver_error)?;
                let mut out = String::new();
                let mut n = 0;
                while let Some(row) = rows.next().map_err(crate::sqlite::driver_error)? {
                    for (i, (name, kind)) in table_cols.iter().enumerate() {
                        if i > 0 {
                            out.push('\t');
                        }
                        let v = row.get_ref(i).map_err(crate::sqlite::driver_error)?;
                        copy_field(&mut out, v, *kind, table, name)?;
                    }
                    out.push('\n');
                    n += 1;
                    if n % 50_000 == 0 && send.blocking_send(std::mem::take(&mut out)).is_err() {
                        return Ok(()); // the writer gave up; its error is reported
                    }
                }
                if !out.is_empty() {
                    let _ = send.blocking_send(out);
                }
                Ok(())
            });
            let statement = format!("COPY {table} ({}) FROM STDIN", names.join(", "));
            let mut copy = (*tx).copy_in_raw(&statement).await?;
            while let Some(chunk) = chunks.recv().await {
                copy.send(chunk.into_bytes()).await?;
            }
            reader.await.map_err(|e| Error::Aborted(e.to_string()))??;
            copy.finish().await?;
        }
        // Sequences continue after what was copied (tree ids also after removed trees').
        for (table, column, extra) in [
            ("trees", "id", "SELECT max(tree_id) FROM tree_history"),
            ("surveys", "id", "SELECT 0"),
            ("changes", "seq", "SELECT 0"),
            ("users", "id", "SELECT 0"),
            ("tree_records", "id", "SELECT 0"),
            ("tag_assignments", "id", "SELECT 0"),
            ("lots", "id", "SELECT 0"),
        ] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                 GREATEST(COALESCE((SELECT max({column}) FROM {table}), 0), COALESCE(({extra}), 0), 1))"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }

    // Check: both sides read back, value by value.
    let mut tables = Vec::new();
    for table in TABLES {
        let cols = &columns[table];
        let names: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
        let (db, table_cols) = (sqlite.clone(), cols.clone());
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let left = tokio::task::spawn_blocking(move || -> Result<Multiset> {
            let db = db.lock().map_err(|_| Error::Aborted("SQLite connection poisoned".into()))?;
            let mut stmt = db.prepare(&select).map_err(crate::sqlite::driver_error)?;
            let mut rows = stmt.query([]).map_err(crate::sqlite::driver_error)?;
            let mut set = Multiset::default();
            let mut values = Vec::with_capacity(table_cols.len());
            while let Some(row) = rows.next().map_err(crate::sqlite::driver_error)? {
                values.clear();
                for (i, (name, kind)) in table_cols.iter().enumerate() {
                    let v = row.get_ref(i).map_err(crate::sqlite::driver_error)?;
                    values.push(canonical_sqlite(v, *kind, table, name)?);
                }
                set.add(&values);
            }
            Ok(set)
        })
        .await
        .map_err(|e| Error::Aborted(e.to_string()))??;
        let as_text: Vec<String> = names.iter().map(|c| format!("{c}::text")).collect();
        let select = format!("SELECT {} FROM {table}", as_text.join(", "));
        // Streamed: a table of tens of millions of rows is never held whole.
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut *conn);
        let mut right = Multiset::default();
        while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
            let row = &row;
            let mut values = Vec::with_capacity(cols.len());
            for (i, (name, kind)) in cols.iter().enumerate() {
                let v: Option<&str> = sqlx::Row::try_get(row, i).map_err(|e| bad(table, name, e))?;
                values.push(canonical_pg(v, *kind, table, name)?);
            }
            right.add(&values);
        }
        if (left.1, left.hex()) != (right.1, right.hex()) {
            return Err(Error::Invalid {
                field: "to",
                reason: format!(
                    "table {table} differs: SQLite {} rows (checksum {}), PostgreSQL {} rows (checksum {}){}",
                    left.1,
                    left.hex(),
                    right.1,
                    right.hex(),
                    if empty { "" } else { "; migrate into an empty database" }
                ),
            });
        }
        let report = TableReport { table, rows: left.1, checksum: left.hex() };
        progress(&report);
        tables.push(report);
    }
    Ok(MigrationReport { copied: empty, tables })
}
