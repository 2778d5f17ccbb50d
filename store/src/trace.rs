//! Traceability records: pre-printed tags, harvest lots and scan counts
//! ([`TraceStorage`], implemented by both backends).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use geo_core::{Actor, LabResult, Lot, LotCode, LotId, NewLot, OrchardId, TreeCode, TreeId, UserId};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::Result;
use crate::error::Error;

/// Pre-printed tag codes are drawn from serial numbers at and above this one,
/// far beyond any tree id (ids derive codes from the bottom of the 31^6
/// space), so a reserved code never meets a code derived for a new tree.
pub const TAG_SERIAL_BASE: u64 = 600_000_000;

/// Most tags one call of [`TraceStorage::issue_tags`] reserves.
pub const MAX_TAGS_PER_BATCH: u32 = 10_000;

/// A pre-printed tag code ([`TraceStorage::issue_tags`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The code printed on the tag.
    pub code: TreeCode,
    /// The batch it was issued in.
    pub batch: i64,
    /// When.
    pub issued_at: DateTime<Utc>,
    /// By whom.
    pub issued_by: String,
}

/// One batch of reserved tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagBatch {
    /// Batch number (1, 2, ...).
    pub batch: i64,
    /// The codes, in serial order.
    pub codes: Vec<TreeCode>,
    /// When they were issued.
    pub issued_at: DateTime<Utc>,
}

/// A tag put on a tree, or moved to another by an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagAssignment {
    /// The tag.
    pub code: TreeCode,
    /// The tree that carries it from then on.
    pub tree_id: TreeId,
    /// `false`: first assignment; `true`: an admin's re-assignment.
    pub reassign: bool,
    /// Who.
    pub by: String,
    /// Their account.
    pub by_user: Option<UserId>,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, for a re-assignment.
    pub note: Option<String>,
}

/// Scans of one public code in one hour from one coarse place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCount {
    /// The scanned code (a tree code or a lot code).
    pub code: String,
    /// The hour (truncated).
    pub hour: DateTime<Utc>,
    /// A coarse place key, empty when the reader shared none.
    pub place: String,
    /// Number of scans.
    pub count: u64,
}

/// Tags, lots and scans, on both backends. Part of [`crate::Storage`].
#[async_trait]
pub trait TraceStorage: Send + Sync {
    /// Reserves `count` (1..=[`MAX_TAGS_PER_BATCH`]) new tag codes that no tree
    /// has and no earlier batch reserved, as one new batch. [`Error::Invalid`]
    /// (`count`) outside that range.
    async fn issue_tags(&self, count: u32, actor: &Actor) -> Result<TagBatch>;

    /// A reserved tag, `None` when the code was never issued as a tag.
    async fn tag(&self, code: &TreeCode) -> Result<Option<Tag>>;

    /// The codes of a batch, in serial order (empty for an unknown batch).
    async fn tag_batch(&self, batch: i64) -> Result<Vec<TreeCode>>;

    /// Records that a tag was put on a tree (or moved by an admin).
    async fn record_tag_assignment(&self, assignment: &TagAssignment) -> Result<()>;

    /// Every assignment of a tag, oldest first.
    async fn tag_assignments(&self, code: &TreeCode) -> Result<Vec<TagAssignment>>;

    /// Stores a lot made of `tree_ids` (checked by the caller to be in the
    /// lot's orchard; stored sorted, each once). [`Error::UnknownOrchard`] for an
    /// unknown orchard; non-finite numbers are [`Error::Invalid`].
    async fn create_lot(&self, lot: &NewLot, tree_ids: &[TreeId], actor: &Actor) -> Result<Lot>;

    /// One lot.
    async fn lot(&self, id: LotId) -> Result<Option<Lot>>;

    /// Lots, newest first, of one orchard or of all.
    async fn lots(&self, orchard: Option<&OrchardId>) -> Result<Vec<Lot>>;

    /// Revokes a lot's labels (recall, copies found); `None` for an unknown
    /// lot. Revoking twice keeps the first time and reason.
    async fn revoke_lot(&self, id: LotId, reason: &str, actor: &Actor) -> Result<Option<Lot>>;

    /// Adds scan counts (summing with those stored for the same code, hour and place).
    async fn add_scans(&self, scans: &[ScanCount]) -> Result<()>;

    /// Every scan count of a code, oldest hour first.
    async fn scan_counts(&self, code: &str) -> Result<Vec<ScanCount>>;

    /// The `limit` most scanned codes with their total scans, most first.
    async fn most_scanned(&self, limit: u32) -> Result<Vec<(String, u64)>>;
}

/// The columns every lot query selects, in the order [`lot_from_row`] reads them.
macro_rules! lot_columns {
    () => {
        "id, orchard_id, whole_orchard, harvest_date, weight_kg, boxes, packing_house, lab_results, domestic, gtin, \
         created_by, created_by_user, created_at, revoked_at, revoked_reason"
    };
}
pub(crate) use lot_columns;

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corrupt { table: "lots", reason: reason.into() }
}

/// Decodes a row selected with [`lot_columns!`]; the tree ids come separately.
pub(crate) fn lot_from_row<'r, R>(row: &'r R, tree_ids: Vec<TreeId>) -> Result<Lot>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    macro_rules! col {
        ($i:expr, $name:expr) => {
            row.try_get($i).map_err(|e| corrupt(format!("column {}: {e}", $name)))?
        };
    }
    let id: i64 = col!(0, "id");
    let orchard: String = col!(1, "orchard_id");
    let lab: String = col!(7, "lab_results");
    let lab_results: Vec<LabResult> =
        serde_json::from_str(&lab).map_err(|e| corrupt(format!("lot {id}: lab_results: {e}")))?;
    let boxes: Option<i64> = col!(5, "boxes");
    let by_user: Option<i64> = col!(11, "created_by_user");
    Ok(Lot {
        id: LotId(id),
        code: LotCode::for_id(LotId(id)).map_err(|e| corrupt(format!("lot {id}: {e}")))?,
        orchard_id: OrchardId::new(orchard.as_str()).map_err(|e| corrupt(format!("lot {id}: {e}")))?,
        tree_ids,
        whole_orchard: col!(2, "whole_orchard"),
        harvest_date: col!(3, "harvest_date"),
        weight_kg: col!(4, "weight_kg"),
        boxes: boxes.map(|b| u32::try_from(b).map_err(|_| corrupt(format!("lot {id}: boxes {b}")))).transpose()?,
        packing_house: col!(6, "packing_house"),
        lab_results,
        domestic: col!(8, "domestic"),
        gtin: col!(9, "gtin"),
        created_by: col!(10, "created_by"),
        created_by_id: by_user.map(UserId),
        created_at: col!(12, "created_at"),
        revoked_at: col!(13, "revoked_at"),
        revoked_reason: col!(14, "revoked_reason"),
    })
}

/// Checks what a database could not keep faithfully and encodes the lab results.
pub(crate) fn lot_values(lot: &NewLot) -> Result<String> {
    if !lot.weight_kg.is_finite() {
        return Err(Error::Invalid { field: "weight_kg", reason: format!("{} is not a finite number", lot.weight_kg) });
    }
    for r in &lot.lab_results {
        if r.value_mg_per_kg.is_some_and(|v| !v.is_finite()) {
            return Err(Error::Invalid { field: "value_mg_per_kg", reason: "not a finite number".into() });
        }
    }
    serde_json::to_string(&lot.lab_results).map_err(|e| Error::Invalid { field: "lab_results", reason: e.to_string() })
}

/// The GTIN as stored: 14 digits.
pub(crate) fn gtin14(lot: &NewLot) -> Option<String> {
    lot.gtin.as_deref().map(|g| geo_core::gs1::normalise_gtin(g).unwrap_or_else(|| g.to_string()))
}

/// Tree ids sorted, each once.
pub(crate) fn sorted_ids(ids: &[TreeId]) -> Vec<i64> {
    let mut v: Vec<i64> = ids.iter().map(|t| t.0).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A stored tag code back into a [`TreeCode`].
pub(crate) fn tag_code(table: &'static str, code: &str) -> Result<TreeCode> {
    TreeCode::parse(code).map_err(|e| Error::Corrupt { table, reason: e.to_string() })
}
