//! [`TraceStorage`] on SQLite. `postgres_trace.rs` is the same logic with
//! PostgreSQL placeholders and types; change both together.

use async_trait::async_trait;
use geo_core::{Actor, Lot, LotId, NewLot, OrchardId, TreeCode, TreeId, UserId};

use crate::Result;
use crate::common::now;
use crate::error::Error;
use crate::sqlite::SqliteStore;
use crate::trace::{
    MAX_TAGS_PER_BATCH, ScanCount, TAG_SERIAL_BASE, Tag, TagAssignment, TagBatch, TraceStorage, gtin14, lot_columns,
    lot_from_row, lot_values, sorted_ids, tag_code,
};

impl SqliteStore {
    async fn lot_tree_ids(&self, id: i64) -> Result<Vec<TreeId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT tree_id FROM lot_trees WHERE lot_id = ?1 ORDER BY tree_id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(TreeId).collect())
    }
}

#[async_trait]
impl TraceStorage for SqliteStore {
    async fn issue_tags(&self, count: u32, actor: &Actor) -> Result<TagBatch> {
        if count == 0 || count > MAX_TAGS_PER_BATCH {
            return Err(Error::Invalid {
                field: "count",
                reason: format!("{count}: issue 1 to {MAX_TAGS_PER_BATCH} tags at a time"),
            });
        }
        let mut tx = self.begin_write().await?;
        let batch: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(batch), 0) + 1 FROM tags").fetch_one(&mut *tx).await?;
        let mut serial: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(serial) + 1, ?1) FROM tags")
            .bind(TAG_SERIAL_BASE as i64)
            .fetch_one(&mut *tx)
            .await?;
        let at = now();
        let mut codes = Vec::with_capacity(count as usize);
        while codes.len() < count as usize {
            let code = TreeCode::from_serial(serial as u64).map_err(|e| Error::Invalid {
                field: "count",
                reason: format!("the tag code space is used up: {e}"),
            })?;
            let taken: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM trees WHERE code_serial = ?1 \
                 UNION ALL SELECT 1 FROM tree_history WHERE code_serial = ?1 AND removal_reason IS NOT NULL LIMIT 1",
            )
            .bind(serial)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_none() {
                sqlx::query("INSERT INTO tags (code, serial, batch, issued_at, issued_by) VALUES (?1, ?2, ?3, ?4, ?5)")
                    .bind(code.as_str())
                    .bind(serial)
                    .bind(batch)
                    .bind(at)
                    .bind(&actor.name)
                    .execute(&mut *tx)
                    .await?;
                codes.push(code);
            }
            serial += 1;
        }
        tx.commit().await?;
        Ok(TagBatch { batch, codes, issued_at: at })
    }

    async fn tag(&self, code: &TreeCode) -> Result<Option<Tag>> {
        let row: Option<(i64, chrono::DateTime<chrono::Utc>, String)> =
            sqlx::query_as("SELECT batch, issued_at, issued_by FROM tags WHERE code = ?1")
                .bind(code.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(batch, issued_at, issued_by)| Tag { code: *code, batch, issued_at, issued_by }))
    }

    async fn tag_batch(&self, batch: i64) -> Result<Vec<TreeCode>> {
        let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM tags WHERE batch = ?1 ORDER BY serial")
            .bind(batch)
            .fetch_all(&self.pool)
            .await?;
        codes.iter().map(|c| tag_code("tags", c)).collect()
    }

    async fn record_tag_assignment(&self, a: &TagAssignment) -> Result<()> {
        sqlx::query(
            "INSERT INTO tag_assignments (code, tree_id, action, by_name, by_user, at, note) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(a.code.as_str())
        .bind(a.tree_id.0)
        .bind(if a.reassign { "reassign" } else { "assign" })
        .bind(&a.by)
        .bind(a.by_user.map(|u| u.0))
        .bind(a.at)
        .bind(&a.note)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tag_assignments(&self, code: &TreeCode) -> Result<Vec<TagAssignment>> {
        type Row = (i64, String, String, Option<i64>, chrono::DateTime<chrono::Utc>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT tree_id, action, by_name, by_user, at, note FROM tag_assignments WHERE code = ?1 ORDER BY id",
        )
        .bind(code.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(tree, action, by, by_user, at, note)| TagAssignment {
                code: *code,
                tree_id: TreeId(tree),
                reassign: action == "reassign",
                by,
                by_user: by_user.map(UserId),
                at,
                note,
            })
            .collect())
    }

    async fn create_lot(&self, lot: &NewLot, tree_ids: &[TreeId], actor: &Actor) -> Result<Lot> {
        let lab = lot_values(lot)?;
        let ids = sorted_ids(tree_ids);
        let mut tx = self.begin_write().await?;
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM orchards WHERE id = ?1")
            .bind(lot.orchard_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(Error::UnknownOrchard(lot.orchard_id.clone()));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO lots (orchard_id, whole_orchard, harvest_date, weight_kg, boxes, packing_house, lab_results, \
             domestic, gtin, created_by, created_by_user, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
        )
        .bind(lot.orchard_id.as_str())
        .bind(matches!(lot.trees, geo_core::LotTrees::WholeOrchard))
        .bind(lot.harvest_date)
        .bind(lot.weight_kg)
        .bind(lot.boxes.map(i64::from))
        .bind(&lot.packing_house)
        .bind(&lab)
        .bind(lot.domestic)
        .bind(gtin14(lot))
        .bind(&actor.name)
        .bind(actor.user_id.map(|u| u.0))
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        for chunk in ids.chunks(400) {
            let mut sql = String::from("INSERT INTO lot_trees (lot_id, tree_id) VALUES ");
            for (i, _) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(?1, ?{})", i + 2));
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false).bind(id);
            for t in chunk {
                q = q.bind(*t);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.lot(LotId(id)).await?.ok_or_else(|| Error::Corrupt { table: "lots", reason: format!("lot {id} vanished") })
    }

    async fn lot(&self, id: LotId) -> Result<Option<Lot>> {
        let row = sqlx::query(concat!("SELECT ", lot_columns!(), " FROM lots WHERE id = ?1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(lot_from_row(&row, self.lot_tree_ids(id.0).await?)?)),
        }
    }

    async fn lots(&self, orchard: Option<&OrchardId>) -> Result<Vec<Lot>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            lot_columns!(),
            " FROM lots WHERE ?1 IS NULL OR orchard_id = ?1 ORDER BY id DESC"
        ))
        .bind(orchard.map(OrchardId::as_str))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = sqlx::Row::try_get(&row, 0)?;
            out.push(lot_from_row(&row, self.lot_tree_ids(id).await?)?);
        }
        Ok(out)
    }

    async fn revoke_lot(&self, id: LotId, reason: &str, actor: &Actor) -> Result<Option<Lot>> {
        let _ = actor;
        sqlx::query("UPDATE lots SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL")
            .bind(id.0)
            .bind(now())
            .bind(format!("{reason} ({})", actor.name))
            .execute(&self.pool)
            .await?;
        self.lot(id).await
    }

    async fn add_scans(&self, scans: &[ScanCount]) -> Result<()> {
        if scans.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for s in scans {
            sqlx::query(
                "INSERT INTO scans (code, hour, place, count) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (code, hour, place) DO UPDATE SET count = scans.count + excluded.count",
            )
            .bind(&s.code)
            .bind(s.hour)
            .bind(&s.place)
            .bind(i64::try_from(s.count).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn scan_counts(&self, code: &str) -> Result<Vec<ScanCount>> {
        let rows: Vec<(chrono::DateTime<chrono::Utc>, String, i64)> =
            sqlx::query_as("SELECT hour, place, count FROM scans WHERE code = ?1 ORDER BY hour, place")
                .bind(code)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(hour, place, count)| ScanCount { code: code.to_string(), hour, place, count: count.max(0) as u64 })
            .collect())
    }

    async fn most_scanned(&self, limit: u32) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT code, SUM(count) AS n FROM scans GROUP BY code ORDER BY n DESC, code LIMIT ?1")
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(c, n)| (c, n.max(0) as u64)).collect())
    }
}
