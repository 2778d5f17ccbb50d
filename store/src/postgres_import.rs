//! The PostgreSQL import writer: one transaction holding [`WRITE_LOCK`] for
//! the whole import. New trees go in with one binary `COPY ... FROM STDIN`
//! streamed batch after batch ([`CopyStream`]): the server stores a batch
//! while the import reads and places the next. Anything else the import asks
//! of the database (codes claimed by the rows, a block of tree ids, updates)
//! first ends the COPY and waits for it; tree ids are taken from the sequence
//! in growing blocks (each as large as all before it, up to [`ID_BLOCK`]) so
//! that a survey of new untagged trees needs a dozen such stops a million
//! rows, and the unused rest of the last block is given back at commit.
//! Updates are a few array-bound statements per batch. Row keys are read into
//! memory once and written in each tree's `row_key`. The change log is
//! written at commit, one row per run of ids.
//!
//! Dropping the writer drops the transaction (a COPY in progress is aborted;
//! sqlx rolls the transaction back when the connection goes back to the
//! pool); a killed process's transaction is
//! rolled back by the server when the connection closes. Sequences are not
//! transactional: a rolled-back import leaves gaps in tree, survey and change
//! numbers, nothing else.
//!
//! [`WRITE_LOCK`]: crate::postgres::WRITE_LOCK
//! [`CopyStream`]: crate::pg_copy::CopyStream

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use geo_core::{NewTree, OrchardId, SurveyId, Tree, TreeCode, TreeId, TreeRef};
use sqlx::postgres::PgConnection;
use sqlx::{Postgres, Transaction};

use crate::common::{
    KeySet, Touched, check_draft, code_for, code_serial, corrupt, decode_error, history_columns, known_hashes,
    normalise_sha256, now, repeated_code, resurveyed_tree, row_key_hash, tree_columns,
};
use crate::pg_copy::{CopyStream, Rows};
use crate::postgres::{Ids, PostgresStore, REMOVED_SERIALS_SQL, duplicate_code_error, log_changes};
use crate::{Error, ImportMeta, ImportWriter, Result};

/// The most tree ids taken from the sequence at a time (the unused rest is given back at commit).
const ID_BLOCK: usize = 131_072;

/// The columns of `trees` an import writes, in the order of [`PgImport::encode`].
const COPY_TREES: &str = "COPY trees (id, code, code_serial, lon, lat, accuracy_m, cultivar, planted_year, health, \
     height_m, girth_cm, orchard_id, survey_id, row_key, created_at, updated_at, version) FROM STDIN (FORMAT binary)";
/// How many columns that is.
const COPY_COLUMNS: i16 = 17;

/// A stored tree as an update needs it.
#[derive(Clone, Copy)]
struct Current {
    id: i64,
    code: TreeCode,
    version: i64,
    created_at: DateTime<Utc>,
}

/// One import in progress (see the module documentation).
pub(crate) struct PgImport {
    tx: TxState,
    survey_id: i64,
    /// The first tree id this import took; later ones are larger (one sequence).
    first_id: Option<i64>,
    /// Ids taken from the sequence and not used yet: `next..=last`.
    spare_ids: Option<(i64, i64)>,
    /// How many ids this import has taken from the sequence.
    ids_taken: i64,
    inserted: u64,
    updated: u64,
    orchards: HashSet<OrchardId>,
    /// Surveys known to exist.
    surveys: HashSet<i64>,
    /// Recorded row-key hashes; read on first use.
    keys: Option<KeySet>,
    /// Codes this import claimed explicitly.
    claimed: HashSet<TreeCode>,
    /// Serials of claimed codes above every stored id, and of removed trees'
    /// codes: derived codes skip them.
    claimed_ahead: HashSet<i64>,
    /// Serials of removed trees' codes: never given to another tree.
    removed: HashSet<i64>,
    touched: Touched,
    /// Why the import cannot go on, once it cannot.
    broken: Option<String>,
    /// What happens to the PostGIS index of `trees` (see [`BulkIndex`]).
    bulk: BulkIndex,
}

/// The import's transaction: ready for a statement, or streaming new trees.
enum TxState {
    Ready(Transaction<'static, Postgres>),
    Copying(CopyStream),
    /// The COPY task ended without handing the transaction back (it was rolled back).
    Lost,
}

/// The PostGIS index of `trees` during an import (see
/// [`PostgresStore::with_bulk_index_rows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BulkIndex {
    /// Kept up row by row (no PostGIS, or a small import so far).
    Kept,
    /// Dropped in this transaction once the import has `rows` new trees and a
    /// quarter of the `table` (trees stored when the import began).
    From { rows: u64, table: u64 },
    /// Dropped; built again before the commit.
    Dropped,
}

impl std::fmt::Debug for PgImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgImport").field("survey_id", &self.survey_id).finish_non_exhaustive()
    }
}

impl PgImport {
    /// Opens the transaction (taking the write lock) and records the survey and the file.
    pub(crate) async fn begin(store: &PostgresStore, meta: ImportMeta) -> Result<PgImport> {
        let sha = normalise_sha256(&meta.file_sha256)?;
        let mut tx = store.begin_write().await?;
        let prior: Option<i64> = sqlx::query_scalar("SELECT survey_id FROM imports WHERE file_sha256 = $1")
            .bind(&sha)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(survey_id) = prior {
            return Err(Error::AlreadyImported { file_sha256: sha, survey_id: SurveyId(survey_id) });
        }
        let s = &meta.survey;
        let survey_id: i64 = sqlx::query_scalar(
            "INSERT INTO surveys (surveyor, surveyed_at, source, device) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&s.surveyor)
        .bind(s.surveyed_at.trunc_subsecs(6))
        .bind(&s.source)
        .bind(&s.device)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO imports (survey_id, file_name, file_sha256, format, external_id, imported_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(survey_id)
        .bind(&meta.file_name)
        .bind(&sha)
        .bind(&meta.format)
        .bind(&meta.external_id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        // Ids come from the sequence, above every stored one (and above those
        // of rolled-back imports, which are never handed out again).
        let claimed_ahead: Vec<i64> = sqlx::query_scalar(
            "SELECT code_serial FROM trees WHERE code_serial > (SELECT COALESCE(MAX(id), 0) FROM trees)",
        )
        .fetch_all(&mut *tx)
        .await?;
        // Removed trees' codes are never given again: neither claimed nor derived.
        let removed: HashSet<i64> =
            sqlx::query_scalar(REMOVED_SERIALS_SQL).fetch_all(&mut *tx).await?.into_iter().collect();
        let bulk = if store.has_postgis() {
            // Tree ids come from one sequence: the largest is about the number of rows, at index cost.
            let table: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM trees").fetch_one(&mut *tx).await?;
            BulkIndex::From { rows: store.bulk_index_rows, table: u64::try_from(table).unwrap_or(0) }
        } else {
            BulkIndex::Kept
        };
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM orchards").fetch_all(&mut *tx).await?;
        let orchards = ids
            .into_iter()
            .map(|id| OrchardId::new(&id).map_err(|e| corrupt("orchards", format!("orchard {id:?}: {e}"))))
            .collect::<Result<HashSet<_>>>()?;
        Ok(PgImport {
            tx: TxState::Ready(tx),
            survey_id,
            first_id: None,
            spare_ids: None,
            ids_taken: 0,
            inserted: 0,
            updated: 0,
            orchards,
            surveys: HashSet::from([survey_id]),
            keys: None,
            claimed: HashSet::new(),
            claimed_ahead: claimed_ahead.into_iter().chain(removed.iter().copied()).collect(),
            removed,
            touched: Touched::default(),
            broken: None,
            bulk,
        })
    }

    /// Before each call: refuses to go on after a failure. The mark stays if
    /// the call's future is dropped half-way (that batch's fate is unknown).
    fn enter(&mut self) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(Error::Aborted(why.clone()));
        }
        self.broken = Some("an earlier call was cancelled before it finished".into());
        Ok(())
    }

    /// After each call: a failure ends the import.
    fn leave<T>(&mut self, result: Result<T>) -> Result<T> {
        self.broken = result.as_ref().err().map(ToString::to_string);
        result
    }

    /// The transaction, once any COPY in progress has ended and the server
    /// has stored (or refused) everything it was sent.
    async fn conn(&mut self) -> Result<&mut PgConnection> {
        match std::mem::replace(&mut self.tx, TxState::Lost) {
            TxState::Copying(stream) => {
                let finished = stream.finish().await;
                if let Some(tx) = finished.tx {
                    self.tx = TxState::Ready(tx);
                }
                let stored = finished.result.map_err(duplicate_code_error)?;
                if stored != finished.sent {
                    return Err(corrupt(
                        "trees",
                        format!("sent {} new trees, the server stored {stored}", finished.sent),
                    ));
                }
            }
            other => self.tx = other,
        }
        match &mut self.tx {
            TxState::Ready(tx) => Ok(&mut **tx),
            TxState::Copying(_) | TxState::Lost => Err(Error::Aborted("the import's connection was lost".into())),
        }
    }

    /// Every recorded row key: those of the current trees and of the versions they replaced.
    async fn recorded_keys(&mut self) -> Result<&mut KeySet> {
        if self.keys.is_none() {
            let hashes: Vec<i64> = sqlx::query_scalar(
                "SELECT row_key FROM trees WHERE row_key IS NOT NULL \
                 UNION ALL SELECT row_key FROM tree_history WHERE row_key IS NOT NULL",
            )
            .fetch_all(self.conn().await?)
            .await?;
            let mut keys = KeySet::with_capacity_and_hasher(hashes.len(), Default::default());
            keys.extend(hashes);
            self.keys = Some(keys);
        }
        Ok(self.keys.get_or_insert_with(KeySet::default))
    }

    /// Row-key hashes for trees about to be written: `None` for a key recorded
    /// already (it keeps its first tree) or repeated among `keys`.
    async fn record_keys<'k>(&mut self, keys: impl Iterator<Item = &'k String>) -> Result<Vec<Option<i64>>> {
        let recorded = self.recorded_keys().await?;
        Ok(keys
            .map(|k| {
                let hash = row_key_hash(k);
                recorded.insert(hash).then_some(hash)
            })
            .collect())
    }

    async fn check_survey(&mut self, survey: Option<SurveyId>) -> Result<()> {
        let Some(SurveyId(s)) = survey else { return Ok(()) };
        if self.surveys.contains(&s) {
            return Ok(());
        }
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM surveys WHERE id = $1")
            .bind(s)
            .fetch_optional(self.conn().await?)
            .await?;
        if found.is_none() {
            return Err(Error::Invalid { field: "survey_id", reason: format!("survey {s} does not exist") });
        }
        self.surveys.insert(s);
        Ok(())
    }

    /// `n` unused tree ids, in increasing order: from the spare ones, then
    /// from a new block of the sequence.
    async fn fresh_ids(&mut self, n: usize) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let Some((next, last)) = self.spare_ids else {
                // Each block as large as all before it (up to ID_BLOCK): a
                // rolled-back import loses at most about as many ids as it used.
                let ahead = usize::try_from(self.ids_taken).unwrap_or(ID_BLOCK).min(ID_BLOCK);
                let block = Ids { conn: self.conn().await? }.fresh_block((n - ids.len()).max(ahead)).await?;
                self.ids_taken += *block.end() - *block.start() + 1;
                self.spare_ids = Some((*block.start(), *block.end()));
                continue;
            };
            let take = i64::try_from(n - ids.len()).unwrap_or(i64::MAX).min(last - next + 1);
            ids.extend(next..next + take);
            self.spare_ids = (next + take <= last).then_some((next + take, last));
        }
        if self.first_id.is_none() {
            self.first_id = ids.first().copied();
        }
        Ok(ids)
    }

    /// Gives the sequence back the ids this import took and did not use.
    /// Every writer takes ids under the write lock this import holds, so none
    /// were taken after them; the condition keeps it so for any other writer.
    async fn return_spare_ids(&mut self) -> Result<()> {
        let Some((next, last)) = self.spare_ids.take() else { return Ok(()) };
        let (value, is_called) = if next > 1 { (next - 1, true) } else { (1, false) };
        sqlx::query("SELECT setval('tree_ids', $1, $2) FROM tree_ids WHERE last_value = $3")
            .bind(value)
            .bind(is_called)
            .bind(last)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    /// Which stored trees (this import's included) hold `codes`.
    async fn holders(&mut self, codes: &[TreeCode]) -> Result<HashMap<TreeCode, i64>> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let serials: Vec<i64> = codes.iter().map(code_serial).collect();
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT code, id FROM trees WHERE code_serial = ANY($1)")
            .bind(serials)
            .fetch_all(self.conn().await?)
            .await
            .map_err(|e| decode_error("trees", e))?;
        rows.into_iter()
            .map(|(code, id)| {
                let code = TreeCode::parse(&code).map_err(|e| corrupt("trees", format!("tree {id}: {e}")))?;
                Ok((code, id))
            })
            .collect()
    }

    /// `n` fresh ids whose derived codes (serial = id) no claim holds and
    /// `reserved` (serials) does not name.
    async fn derive(&mut self, n: usize, reserved: &HashSet<i64>) -> Result<Vec<(i64, TreeCode)>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            for id in self.fresh_ids(n - out.len()).await? {
                if reserved.contains(&id) || self.claimed_ahead.contains(&id) {
                    tracing::debug!(id, "derived tag code already claimed; taking another id");
                } else {
                    out.push((id, code_for(id)?));
                }
            }
        }
        Ok(out)
    }

    /// Makes `code` free for a claim: a tree this import gave that code as its
    /// derived one moves to a fresh id; any other holder, or a removed tree
    /// that had it, makes it a duplicate.
    async fn claim(&mut self, code: TreeCode, holder: Option<i64>, reserved: &HashSet<i64>) -> Result<()> {
        if self.removed.contains(&code_serial(&code)) {
            return Err(Error::DuplicateCode(code.to_string()));
        }
        if let Some(holder) = holder {
            let derived_here = self.first_id.is_some_and(|first| holder >= first)
                && !self.claimed.contains(&code)
                && code_for(holder).ok() == Some(code);
            if !derived_here {
                return Err(Error::DuplicateCode(code.to_string()));
            }
            let moved = self.derive(1, reserved).await?;
            let Some(&(id, new_code)) = moved.first() else {
                return Err(corrupt("trees", "asked for a tree id, got none"));
            };
            sqlx::query("UPDATE trees SET id = $1, code = $2, code_serial = $3 WHERE id = $4")
                .bind(id)
                .bind(new_code.as_str())
                .bind(code_serial(&new_code))
                .bind(holder)
                .execute(self.conn().await?)
                .await?;
            sqlx::query("UPDATE tree_history SET tree_id = $1 WHERE tree_id = $2")
                .bind(id)
                .bind(holder)
                .execute(self.conn().await?)
                .await?;
            self.touched.remove(holder);
            self.touched.add(id);
            tracing::info!(
                from = holder, to = id, code = %code,
                "a later row claims the tag code derived for an untagged tree of this import; that tree moves"
            );
        }
        self.claimed_ahead.insert(code_serial(&code));
        self.claimed.insert(code);
        Ok(())
    }

    async fn insert(&mut self, rows: Vec<(String, NewTree)>) -> Result<Vec<(TreeId, TreeCode)>> {
        for (_, t) in &rows {
            check_draft(t, &self.orchards)?;
            self.check_survey(t.survey_id).await?;
        }
        if let Some(code) = repeated_code(rows.iter().filter_map(|(_, t)| t.code)) {
            return Err(Error::DuplicateCode(code.to_string()));
        }
        // Serials claimed by this batch: no derived code may take them.
        let reserved: HashSet<i64> = rows.iter().filter_map(|(_, t)| t.code.as_ref().map(code_serial)).collect();
        let claims: Vec<TreeCode> = rows.iter().filter_map(|(_, t)| t.code).collect();
        let holders = self.holders(&claims).await?;
        for code in &claims {
            self.claim(*code, holders.get(code).copied(), &reserved).await?;
        }
        let claimed_ids = self.fresh_ids(claims.len()).await?;
        let mut derived = self.derive(rows.len() - claims.len(), &reserved).await?.into_iter();
        let mut claimed_ids = claimed_ids.into_iter();
        let mut assigned = Vec::with_capacity(rows.len());
        for (_, t) in &rows {
            let next = match t.code {
                Some(code) => claimed_ids.next().map(|id| (id, code)),
                None => derived.next(),
            };
            assigned.push(next.ok_or_else(|| corrupt("trees", "fewer tree ids than trees"))?);
        }

        if let BulkIndex::From { rows: from, table } = self.bulk {
            let after = self.inserted + rows.len() as u64;
            if after >= from && after.saturating_mul(4) >= table {
                self.bulk = if crate::postgis::drop_trees_index(self.conn().await?).await? {
                    tracing::debug!(
                        trees = after,
                        table,
                        "bulk import: the trees' GiST index is built again at commit"
                    );
                    BulkIndex::Dropped
                } else {
                    BulkIndex::Kept
                };
            }
        }
        let row_keys = self.record_keys(rows.iter().map(|(k, _)| k)).await?;
        let encoded = self.encode(&rows, &assigned, row_keys);
        self.stream(encoded).await?;

        for &(id, _) in &assigned {
            self.touched.add(id);
        }
        self.inserted += rows.len() as u64;
        Ok(assigned.into_iter().map(|(id, code)| (TreeId(id), code)).collect())
    }

    /// New trees as rows of [`COPY_TREES`].
    fn encode(&self, rows: &[(String, NewTree)], assigned: &[(i64, TreeCode)], row_keys: Vec<Option<i64>>) -> Rows {
        let at = now();
        let mut out = Rows::with_capacity(rows.len() * 190);
        for (((_, t), &(id, code)), row_key) in rows.iter().zip(assigned).zip(row_keys) {
            out.row(COPY_COLUMNS);
            out.put(id);
            out.put(code.as_str());
            out.put(code_serial(&code));
            out.put(t.location.lon);
            out.put(t.location.lat);
            out.put(t.accuracy_m);
            out.put(t.cultivar.as_str());
            out.put(t.planted_year);
            out.put(t.health.as_str());
            out.put(t.height_m);
            out.put(t.girth_cm);
            out.put(t.orchard_id.as_str());
            out.put(t.survey_id.map_or(self.survey_id, |s| s.0));
            out.put(row_key);
            out.put(at);
            out.put(at);
            out.put(1i64);
        }
        out
    }

    /// Queues `rows` on the COPY, starting it if none is in progress.
    async fn stream(&mut self, rows: Rows) -> Result<()> {
        if rows.len() == 0 {
            return Ok(());
        }
        self.tx = match std::mem::replace(&mut self.tx, TxState::Lost) {
            TxState::Ready(tx) => TxState::Copying(CopyStream::begin(tx, COPY_TREES)),
            other => other,
        };
        let queued = match &mut self.tx {
            TxState::Copying(stream) => stream.send(rows).await,
            TxState::Ready(_) | TxState::Lost => false,
        };
        if !queued {
            // The COPY stopped early: ending it says why.
            self.conn().await?;
            return Err(Error::Aborted("the server stopped reading new trees".into()));
        }
        Ok(())
    }

    async fn current(&mut self, ids: &[i64], serials: &[i64]) -> Result<Vec<Current>> {
        let rows: Vec<(i64, String, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, code, version, created_at FROM trees WHERE id = ANY($1) OR code_serial = ANY($2)",
        )
        .bind(ids)
        .bind(serials)
        .fetch_all(self.conn().await?)
        .await
        .map_err(|e| decode_error("trees", e))?;
        rows.into_iter()
            .map(|(id, code, version, created_at)| {
                let code = TreeCode::parse(&code).map_err(|e| corrupt("trees", format!("tree {id}: {e}")))?;
                Ok(Current { id, code, version, created_at })
            })
            .collect()
    }

    async fn update(&mut self, rows: Vec<(String, TreeRef, NewTree)>) -> Result<Vec<Tree>> {
        for (_, _, t) in &rows {
            check_draft(t, &self.orchards)?;
            self.check_survey(t.survey_id).await?;
        }
        let ids: Vec<i64> =
            rows.iter().filter_map(|(_, r, _)| if let TreeRef::Id(id) = r { Some(id.0) } else { None }).collect();
        let serials: Vec<i64> = rows
            .iter()
            .filter_map(|(_, r, _)| if let TreeRef::Code(c) = r { Some(code_serial(c)) } else { None })
            .collect();
        let found = self.current(&ids, &serials).await?;
        let mut by_id: HashMap<i64, Current> = found.iter().map(|c| (c.id, *c)).collect();
        let mut id_of_code: HashMap<TreeCode, i64> = found.iter().map(|c| (c.code, c.id)).collect();

        let batch_at = now();
        // Rows in groups that name each tree once, applied one group after the other.
        let mut groups: Vec<Vec<(Current, TreeCode, &NewTree)>> = vec![Vec::new()];
        let mut in_group: HashSet<i64> = HashSet::new();
        let mut out = Vec::with_capacity(rows.len());
        for (_, target, t) in &rows {
            let id = match target {
                TreeRef::Id(id) => Some(id.0),
                TreeRef::Code(code) => id_of_code.get(code).copied(),
            };
            let Some(current) = id.and_then(|id| by_id.get(&id).copied()) else {
                return Err(Error::NoSuchTree(target.clone()));
            };
            let code = t.code.unwrap_or(current.code);
            if code != current.code {
                let holder = self.holders(&[code]).await?.get(&code).copied();
                self.claim(code, holder, &HashSet::new()).await?;
                id_of_code.remove(&current.code);
                id_of_code.insert(code, current.id);
            }
            if !in_group.insert(current.id) {
                groups.push(Vec::new());
                in_group.clear();
                in_group.insert(current.id);
            }
            let at = batch_at.max(current.created_at);
            let survey_id = t.survey_id.unwrap_or(SurveyId(self.survey_id));
            out.push(resurveyed_tree(
                t.clone(),
                (current.id, current.version, current.created_at),
                code,
                survey_id,
                at,
            ));
            by_id.insert(current.id, Current { code, version: current.version + 1, ..current });
            if let Some(group) = groups.last_mut() {
                group.push((current, code, t));
            }
        }

        let row_keys = self.record_keys(rows.iter().map(|(k, _, _)| k)).await?;
        let mut done = 0;
        for group in groups.iter().filter(|g| !g.is_empty()) {
            let trees = &out[done..done + group.len()];
            let keys = &row_keys[done..done + group.len()];
            done += group.len();
            let ids: Vec<i64> = trees.iter().map(|t| t.id.0).collect();
            sqlx::query(concat!(
                "INSERT INTO tree_history (",
                history_columns!(),
                ", row_key) SELECT ",
                tree_columns!(),
                ", $2, $3, row_key FROM trees WHERE id = ANY($1)"
            ))
            .bind(&ids)
            .bind(batch_at)
            .bind(self.survey_id)
            .execute(self.conn().await?)
            .await?;
            sqlx::query(
                "UPDATE trees SET code = u.code, code_serial = u.code_serial, lon = u.lon, lat = u.lat, accuracy_m = u.accuracy_m, \
                 cultivar = u.cultivar, planted_year = u.planted_year, health = u.health, height_m = u.height_m, \
                 girth_cm = u.girth_cm, orchard_id = u.orchard_id, survey_id = u.survey_id, \
                 updated_at = u.updated_at, row_key = u.row_key, version = trees.version + 1 \
                 FROM UNNEST($1::int8[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::text[], \
                 $7::int4[], $8::text[], $9::float8[], $10::float8[], $11::text[], $12::int8[], $13::timestamptz[], \
                 $14::int8[], $15::int8[]) AS u(id, code, lon, lat, accuracy_m, cultivar, planted_year, health, \
                 height_m, girth_cm, orchard_id, survey_id, updated_at, row_key, code_serial) WHERE trees.id = u.id",
            )
            .bind(&ids)
            .bind(trees.iter().map(|t| t.code.as_str()).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.location.lon).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.location.lat).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.accuracy_m).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.cultivar.as_str()).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.planted_year).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.health.as_str()).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.height_m).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.girth_cm).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.orchard_id.as_str()).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.survey_id.map(|s| s.0)).collect::<Vec<_>>())
            .bind(trees.iter().map(|t| t.updated_at).collect::<Vec<_>>())
            .bind(keys)
            .bind(trees.iter().map(|t| code_serial(&t.code)).collect::<Vec<_>>())
            .execute(self.conn().await?)
            .await
            .map_err(duplicate_code_error)?;
        }

        for t in &out {
            self.touched.add(t.id.0);
        }
        self.updated += out.len() as u64;
        Ok(out)
    }
}

#[async_trait]
impl ImportWriter for PgImport {
    async fn known_row_keys(&mut self, keys: &[String]) -> Result<Vec<bool>> {
        self.enter()?;
        let hashes: Vec<i64> = keys.iter().map(|k| row_key_hash(k)).collect();
        let result = match self.recorded_keys().await {
            Ok(recorded) => Ok(known_hashes(recorded, &hashes)),
            Err(e) => Err(e),
        };
        self.leave(result)
    }

    async fn insert_trees(&mut self, rows: Vec<(String, NewTree)>) -> Result<Vec<(TreeId, TreeCode)>> {
        self.enter()?;
        let result = self.insert(rows).await;
        self.leave(result)
    }

    async fn update_trees(&mut self, rows: Vec<(String, TreeRef, NewTree)>) -> Result<Vec<Tree>> {
        self.enter()?;
        let result = self.update(rows).await;
        self.leave(result)
    }

    async fn commit(mut self: Box<Self>) -> Result<SurveyId> {
        self.enter()?;
        if self.bulk == BulkIndex::Dropped {
            crate::postgis::rebuild_trees_index(self.conn().await?).await?;
        }
        let at = now();
        let runs = std::mem::take(&mut self.touched).into_runs();
        log_changes(self.conn().await?, &runs, at).await?;
        sqlx::query(
            "UPDATE imports SET imported_at = $1, trees_inserted = $2, trees_updated = $3 WHERE survey_id = $4",
        )
        .bind(at)
        .bind(i64::try_from(self.inserted).unwrap_or(i64::MAX))
        .bind(i64::try_from(self.updated).unwrap_or(i64::MAX))
        .bind(self.survey_id)
        .execute(self.conn().await?)
        .await?;
        self.return_spare_ids().await?;
        let survey_id = SurveyId(self.survey_id);
        let (inserted, updated) = (self.inserted, self.updated);
        let TxState::Ready(tx) = std::mem::replace(&mut self.tx, TxState::Lost) else {
            return Err(Error::Aborted("the import's connection was lost".into()));
        };
        tx.commit().await?;
        tracing::debug!(survey = survey_id.0, inserted, updated, "import committed");
        Ok(survey_id)
    }
}
