//! What both backends share: the column lists, decoding rows into domain types
//! (never panicking: bad values become [`Error::Corrupt`]), the boundary codec,
//! the checks made before anything is written, and the id/code assignment of an import.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use geo_core::{
    ChangeAction, Cultivar, Health, LonLat, NewTree, NewTreeRecord, Orchard, OrchardId, RecordDetails, RecordId,
    RemovalReason, Role, Survey, SurveyId, Tree, TreeChange, TreeCode, TreeId, TreeRecord, User, UserId, diff_trees,
};
use geo_types::{Coord, LineString, Polygon};
use serde::Deserialize as _;
use serde::de::IntoDeserializer as _;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{Change, Error, ImportBatch, Result, TreeVersion};

/// The columns every tree query selects, in the order [`tree_from_row`] reads them.
/// A macro (not a const) so it can be spliced into `concat!` and the queries
/// stay `&'static str`, which sqlx 0.9 accepts without an injection audit.
macro_rules! tree_columns {
    () => {
        "id, code, lon, lat, accuracy_m, cultivar, planted_year, health, height_m, girth_cm, \
         orchard_id, survey_id, created_at, updated_at, version"
    };
}
pub(crate) use tree_columns;

/// The columns a `tree_history` query selects: [`tree_columns!`] in the same
/// order (the tree id first), then `replaced_at` and `replaced_by_survey`
/// ([`history_from_row`]).
macro_rules! history_columns {
    () => {
        "tree_id, code, lon, lat, accuracy_m, cultivar, planted_year, health, height_m, girth_cm, \
         orchard_id, survey_id, created_at, updated_at, version, replaced_at, replaced_by_survey"
    };
}
pub(crate) use history_columns;

/// What a `tree_changes` query selects after [`history_columns!`] (from index
/// 17 on, read by [`history_row_from_row`]): who made the change that replaced
/// the version, why it was removed, and the surveyor of the import that
/// replaced it.
macro_rules! history_change_columns {
    () => {
        "changed_by, changed_by_user, removal_reason, \
         (SELECT surveyor FROM surveys WHERE surveys.id = tree_history.replaced_by_survey)"
    };
}
pub(crate) use history_change_columns;

/// The columns every account query selects, in the order [`UserRow`] is read.
macro_rules! user_columns {
    () => {
        "id, name, role, created_at, revoked_at"
    };
}
pub(crate) use user_columns;

/// The columns every record query selects, in the order [`record_from_row`] reads them.
macro_rules! record_columns {
    () => {
        "id, tree_id, date, details, quantity, note, corrects, author, author_id, created_at"
    };
}
pub(crate) use record_columns;

/// The columns every orchard query selects, in the order [`orchard_from_row`] reads them.
macro_rules! orchard_columns {
    () => {
        "id, name, owner, commune, district, province, planting_area_code, boundary, gln"
    };
}
pub(crate) use orchard_columns;

/// The columns every survey query selects, in the order [`survey_from_row`] reads them.
macro_rules! survey_columns {
    () => {
        "id, surveyor, surveyed_at, source, device"
    };
}
pub(crate) use survey_columns;

/// The current time as stored: PostgreSQL keeps microseconds, so both
/// backends do, and a value read back equals the value returned at write time.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// When an orchard write happens, given the newest `updated_at` stored: now,
/// but always after that one, so [`crate::Storage::orchards_updated_at`]
/// moves with every write even if clocks disagree.
pub(crate) fn orchard_time(newest: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let at = now();
    match newest {
        Some(newest) => at.max(newest + chrono::Duration::microseconds(1)),
        None => at,
    }
}

pub(crate) fn corrupt(table: &'static str, reason: impl Into<String>) -> Error {
    Error::Corrupt { table, reason: reason.into() }
}

/// A value sqlx could not decode is a corrupt row, not a failure to talk to the database.
pub(crate) fn decode_error(table: &'static str, e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => corrupt(table, e.to_string()),
        e => Error::Database(e),
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid { field, reason: reason.into() }
}

/// Reads column `index` (named `name` for the message), turning any decoding
/// failure into [`Error::Corrupt`].
fn col<'r, R, T>(row: &'r R, index: usize, table: &'static str, name: &str) -> Result<T>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(index).map_err(|e| corrupt(table, format!("column {name}: {e}")))
}

/// A `trees` row as the database returned it, before any domain check.
/// Each backend fills it its own way; [`RawTree::into_tree`] is the one place
/// that turns stored values into a [`Tree`].
pub(crate) struct RawTree<'a> {
    pub id: i64,
    pub code: &'a str,
    pub lon: f64,
    pub lat: f64,
    pub accuracy_m: Option<f64>,
    pub cultivar: &'a str,
    pub planted_year: Option<i32>,
    pub health: &'a str,
    pub height_m: Option<f64>,
    pub girth_cm: Option<f64>,
    pub orchard_id: &'a str,
    pub survey_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl RawTree<'_> {
    /// Checks every value; anything a [`Tree`] cannot hold is [`Error::Corrupt`] naming the tree.
    pub(crate) fn into_tree(self) -> Result<Tree> {
        let id = self.id;
        let bad = |what: &str| corrupt("trees", format!("tree {id}: {what}"));
        let code = TreeCode::parse(self.code).map_err(|e| bad(&e.to_string()))?;
        let location = LonLat::new(self.lon, self.lat);
        if !location.is_valid() {
            return Err(bad(&format!("position {},{} is not a valid lon,lat", location.lon, location.lat)));
        }
        let finite = |name: &str, v: Option<f64>| match v {
            Some(v) if !v.is_finite() => Err(bad(&format!("{name} {v} is not a finite number"))),
            v => Ok(v),
        };
        let health = health_from_str(self.health)
            .ok_or_else(|| bad(&format!("health {:?} is not good/fair/poor/dead", self.health)))?;
        let orchard_id = OrchardId::new(self.orchard_id).map_err(|e| bad(&e.to_string()))?;
        Ok(Tree {
            id: TreeId(id),
            code,
            location,
            accuracy_m: finite("accuracy_m", self.accuracy_m)?,
            cultivar: cultivar_from_str(self.cultivar),
            planted_year: self.planted_year,
            health,
            height_m: finite("height_m", self.height_m)?,
            girth_cm: finite("girth_cm", self.girth_cm)?,
            orchard_id,
            survey_id: self.survey_id.map(SurveyId),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

/// Decodes one sqlx row selected with [`tree_columns!`].
pub(crate) fn tree_from_row<'r, R>(row: &'r R) -> Result<Tree>
where
    R: Row,
    usize: ColumnIndex<R>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "trees";
    RawTree {
        id: col(row, 0, T, "id")?,
        code: col(row, 1, T, "code")?,
        lon: col(row, 2, T, "lon")?,
        lat: col(row, 3, T, "lat")?,
        accuracy_m: col(row, 4, T, "accuracy_m")?,
        cultivar: col(row, 5, T, "cultivar")?,
        planted_year: col(row, 6, T, "planted_year")?,
        health: col(row, 7, T, "health")?,
        height_m: col(row, 8, T, "height_m")?,
        girth_cm: col(row, 9, T, "girth_cm")?,
        orchard_id: col(row, 10, T, "orchard_id")?,
        survey_id: col(row, 11, T, "survey_id")?,
        created_at: col(row, 12, T, "created_at")?,
        updated_at: col(row, 13, T, "updated_at")?,
        version: col(row, 14, T, "version")?,
    }
    .into_tree()
}

/// Decodes one `tree_history` row selected with [`history_columns!`].
pub(crate) fn history_from_row<'r, R>(row: &'r R) -> Result<TreeVersion>
where
    R: Row,
    usize: ColumnIndex<R>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "tree_history";
    let tree = tree_from_row(row).map_err(|e| match e {
        Error::Corrupt { reason, .. } => corrupt(T, reason),
        e => e,
    })?;
    let replaced_by: Option<i64> = col(row, 16, T, "replaced_by_survey")?;
    Ok(TreeVersion { tree, replaced_at: col(row, 15, T, "replaced_at")?, replaced_by: replaced_by.map(SurveyId) })
}

/// Decodes one row selected with [`orchard_columns!`].
pub(crate) fn orchard_from_row<'r, R>(row: &'r R) -> Result<Orchard>
where
    R: Row,
    usize: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "orchards";
    let id: &str = col(row, 0, T, "id")?;
    let bad = |what: String| corrupt(T, format!("orchard {id:?}: {what}"));
    let orchard_id = OrchardId::new(id).map_err(|e| bad(e.to_string()))?;
    let boundary: Option<&str> = col(row, 7, T, "boundary")?;
    let boundary = boundary.map(|b| decode_boundary(b).map_err(|e| bad(format!("boundary: {e}")))).transpose()?;
    Ok(Orchard {
        id: orchard_id,
        name: col(row, 1, T, "name")?,
        owner: col(row, 2, T, "owner")?,
        commune: col(row, 3, T, "commune")?,
        district: col(row, 4, T, "district")?,
        province: col(row, 5, T, "province")?,
        planting_area_code: col(row, 6, T, "planting_area_code")?,
        gln: col(row, 8, T, "gln")?,
        boundary,
    })
}

/// Decodes one row selected with [`survey_columns!`].
pub(crate) fn survey_from_row<'r, R>(row: &'r R) -> Result<Survey>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "surveys";
    Ok(Survey {
        id: SurveyId(col(row, 0, T, "id")?),
        surveyor: col(row, 1, T, "surveyor")?,
        surveyed_at: col(row, 2, T, "surveyed_at")?,
        source: col(row, 3, T, "source")?,
        device: col(row, 4, T, "device")?,
    })
}

// ---------------------------------------------------------------------------
// Accounts

/// Longest account name accepted, in characters.
pub(crate) const MAX_USER_NAME_CHARS: usize = 100;

/// Refuses an account name that is empty, longer than [`MAX_USER_NAME_CHARS`]
/// or holds control characters (names appear in logs and history).
pub(crate) fn check_user_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(invalid("name", format!("account name {name:?} must not be empty")));
    }
    let chars = name.chars().count();
    if chars > MAX_USER_NAME_CHARS {
        let start: String = name.chars().take(40).collect();
        return Err(invalid(
            "name",
            format!("account name {start:?}... is {chars} characters long, more than {MAX_USER_NAME_CHARS}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", format!("account name {name:?} must not contain control characters")));
    }
    Ok(())
}

/// The orchards of a new account: each once, sorted.
pub(crate) fn sorted_orchards(orchards: &[OrchardId]) -> Vec<OrchardId> {
    let mut out = orchards.to_vec();
    out.sort();
    out.dedup();
    out
}

/// A `users` row as selected with [`user_columns!`], before its orchards are attached.
pub(crate) struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl UserRow {
    /// Decodes one row selected with [`user_columns!`].
    pub(crate) fn from_row<'r, R>(row: &'r R) -> Result<Self>
    where
        R: Row,
        usize: ColumnIndex<R>,
        i64: Decode<'r, R::Database> + Type<R::Database>,
        String: Decode<'r, R::Database> + Type<R::Database>,
        DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
    {
        const T: &str = "users";
        Ok(UserRow {
            id: col(row, 0, T, "id")?,
            name: col(row, 1, T, "name")?,
            role: col(row, 2, T, "role")?,
            created_at: col(row, 3, T, "created_at")?,
            revoked_at: col(row, 4, T, "revoked_at")?,
        })
    }

    /// The account, with its orchards (sorted here).
    pub(crate) fn into_user(self, mut orchards: Vec<OrchardId>) -> Result<User> {
        let role = Role::ALL.into_iter().find(|r| r.as_str() == self.role).ok_or_else(|| {
            corrupt("users", format!("user {}: role {:?} is not admin/volunteer/farmer", self.id, self.role))
        })?;
        orchards.sort();
        Ok(User {
            id: UserId(self.id),
            name: self.name,
            role,
            orchards,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

/// Accounts from their rows and every `(user_id, orchard_id)` pair of theirs.
pub(crate) fn assemble_users(rows: Vec<UserRow>, pairs: Vec<(i64, String)>) -> Result<Vec<User>> {
    let mut by_user: HashMap<i64, Vec<OrchardId>> = HashMap::new();
    for (user, orchard) in pairs {
        let id = OrchardId::new(&orchard)
            .map_err(|e| corrupt("user_orchards", format!("user {user}: orchard {orchard:?}: {e}")))?;
        by_user.entry(user).or_default().push(id);
    }
    rows.into_iter()
        .map(|row| {
            let orchards = by_user.remove(&row.id).unwrap_or_default();
            row.into_user(orchards)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// History with authors, removals

/// A removal reason as stored ([`RemovalReason::as_str`]); anything else is corrupt.
fn reason_from_str(s: &str, tree: i64) -> Result<RemovalReason> {
    [RemovalReason::Dead, RemovalReason::Cut, RemovalReason::Mistaken]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| corrupt("tree_history", format!("tree {tree}: removal reason {s:?} is not dead/cut/mistaken")))
}

/// Who a change is attributed to when nothing better is known: an import
/// without a survey (trees), or an edit made without an actor ([`crate::Storage::update_tree`]).
pub(crate) const IMPORT_ACTOR: &str = "import";
/// See [`IMPORT_ACTOR`].
pub(crate) const UNRECORDED_ACTOR: &str = "unknown";

/// One `tree_history` row with what [`crate::Storage::tree_changes`] needs about
/// the change that replaced it.
pub(crate) struct HistoryRow {
    pub version: TreeVersion,
    pub changed_by: Option<String>,
    pub changed_by_user: Option<i64>,
    pub removal_reason: Option<RemovalReason>,
    /// The surveyor of the survey whose import replaced this version.
    pub surveyor: Option<String>,
}

/// Decodes one row selected with [`history_columns!`] then [`history_change_columns!`].
pub(crate) fn history_row_from_row<'r, R>(row: &'r R) -> Result<HistoryRow>
where
    R: Row,
    usize: ColumnIndex<R>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "tree_history";
    let version = history_from_row(row)?;
    let reason: Option<&str> = col(row, 19, T, "removal_reason")?;
    let removal_reason = reason.map(|r| reason_from_str(r, version.tree.id.0)).transpose()?;
    Ok(HistoryRow {
        changed_by: col(row, 17, T, "changed_by")?,
        changed_by_user: col(row, 18, T, "changed_by_user")?,
        removal_reason,
        surveyor: col(row, 20, T, "surveyor")?,
        version,
    })
}

/// Who created a tree: `(by, account, survey)`.
pub(crate) type Creator = (String, Option<UserId>, Option<SurveyId>);

/// The creator of a tree that has no creation record: its first version's
/// survey (found by the caller: `surveyor`), or else an import.
pub(crate) fn survey_creator(first: &Tree, surveyor: Option<String>) -> Creator {
    match (first.survey_id, surveyor) {
        (Some(survey), Some(surveyor)) => (surveyor, None, Some(survey)),
        (survey, _) => (IMPORT_ACTOR.to_string(), None, survey),
    }
}

/// A tree's changes, oldest first, from its history rows (ordered by
/// version), its current row (`None` when removed) and its creator.
pub(crate) fn assemble_changes(history: Vec<HistoryRow>, current: Option<Tree>, creator: Creator) -> Vec<TreeChange> {
    let mut versions: Vec<&Tree> = history.iter().map(|h| &h.version.tree).collect();
    versions.extend(current.as_ref());
    let Some(first) = versions.first() else { return Vec::new() };
    let (by, user_id, survey_id) = creator;
    let mut out = Vec::with_capacity(versions.len() + 1);
    out.push(TreeChange {
        version: first.version,
        action: ChangeAction::Create,
        at: first.created_at,
        by,
        user_id,
        survey_id,
        fields: diff_trees(None, first),
        reason: None,
    });
    for (i, h) in history.iter().enumerate() {
        let (by, user_id, survey_id) = match (h.version.replaced_by, &h.surveyor) {
            (Some(survey), Some(surveyor)) => (surveyor.clone(), None, Some(survey)),
            (Some(survey), None) => (IMPORT_ACTOR.to_string(), None, Some(survey)),
            (None, _) => (
                h.changed_by.clone().unwrap_or_else(|| UNRECORDED_ACTOR.to_string()),
                h.changed_by_user.map(UserId),
                None,
            ),
        };
        let change = match (versions.get(i + 1), h.removal_reason) {
            (Some(next), _) => TreeChange {
                version: next.version,
                action: ChangeAction::Update,
                at: h.version.replaced_at,
                by,
                user_id,
                survey_id,
                fields: diff_trees(Some(&h.version.tree), next),
                reason: None,
            },
            (None, Some(reason)) => TreeChange {
                version: h.version.tree.version,
                action: ChangeAction::Remove,
                at: h.version.replaced_at,
                by,
                user_id,
                survey_id,
                fields: Vec::new(),
                reason: Some(reason),
            },
            // A last history row without a current tree nor a removal: only
            // a row deleted behind the store's back; nothing more to say.
            (None, None) => continue,
        };
        out.push(change);
    }
    out
}

// ---------------------------------------------------------------------------
// Farm diary

/// The one number a record kind measures, with its field name: kept in the
/// `quantity` column so that it reads back bit for bit (serde_json's float
/// parser is not correctly rounded for every 17-digit number).
fn record_quantity(details: &RecordDetails) -> Option<(&'static str, f64)> {
    match details {
        RecordDetails::Fertiliser { amount_kg, .. } => amount_kg.map(|v| ("amount_kg", v)),
        RecordDetails::Flowering { percent } => percent.map(|v| ("percent", v)),
        RecordDetails::Harvest { weight_kg, .. } => Some(("weight_kg", *weight_kg)),
        RecordDetails::Observation { .. }
        | RecordDetails::Spray { .. }
        | RecordDetails::FruitSet { .. }
        | RecordDetails::Photo { .. } => None,
    }
}

/// Puts the stored `quantity` back into the details read from JSON.
fn restore_quantity(details: &mut RecordDetails, quantity: Option<f64>, record: i64) -> Result<()> {
    let slot = match details {
        RecordDetails::Fertiliser { amount_kg, .. } => amount_kg,
        RecordDetails::Flowering { percent } => percent,
        RecordDetails::Harvest { weight_kg, .. } => {
            *weight_kg = quantity
                .ok_or_else(|| corrupt("tree_records", format!("record {record}: harvest without quantity")))?;
            return Ok(());
        }
        RecordDetails::Observation { .. }
        | RecordDetails::Spray { .. }
        | RecordDetails::FruitSet { .. }
        | RecordDetails::Photo { .. } => return Ok(()),
    };
    *slot = quantity;
    Ok(())
}

/// A record as stored: its details as JSON and its measured number. Refuses
/// a number that is not finite (JSON has none; SQLite would store NULL).
pub(crate) fn encode_record(record: &NewTreeRecord) -> Result<(String, Option<f64>)> {
    let quantity = record_quantity(&record.details);
    if let Some((field, v)) = quantity {
        if !v.is_finite() {
            return Err(invalid(field, format!("{v} is not a finite number")));
        }
    }
    let json = serde_json::to_string(&record.details)
        .map_err(|e| invalid("details", format!("cannot be written as JSON: {e}")))?;
    Ok((json, quantity.map(|(_, v)| v)))
}

/// Decodes one row selected with [`record_columns!`].
pub(crate) fn record_from_row<'r, R>(row: &'r R) -> Result<TreeRecord>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "tree_records";
    let id: i64 = col(row, 0, T, "id")?;
    let details: &str = col(row, 3, T, "details")?;
    let mut details: RecordDetails =
        serde_json::from_str(details).map_err(|e| corrupt(T, format!("record {id}: details {details:?}: {e}")))?;
    restore_quantity(&mut details, col(row, 4, T, "quantity")?, id)?;
    let corrects: Option<i64> = col(row, 6, T, "corrects")?;
    let author_id: Option<i64> = col(row, 8, T, "author_id")?;
    Ok(TreeRecord {
        id: RecordId(id),
        tree_id: TreeId(col(row, 1, T, "tree_id")?),
        date: col(row, 2, T, "date")?,
        details,
        note: col(row, 5, T, "note")?,
        corrects: corrects.map(RecordId),
        author: col(row, 7, T, "author")?,
        author_id: author_id.map(UserId),
        created_at: col(row, 9, T, "created_at")?,
    })
}

/// The error for a record that names as corrected a record that is not one of this tree's.
pub(crate) fn bad_correction(tree: TreeId, corrects: RecordId, owner: Option<i64>) -> Error {
    let reason = match owner {
        Some(other) => format!("record {} belongs to tree {other}, not to tree {tree}", corrects.0),
        None => format!("record {} does not exist (tree {tree})", corrects.0),
    };
    invalid("corrects", reason)
}

/// Only the exact stored spellings: the store writes [`Health::as_str`].
fn health_from_str(s: &str) -> Option<Health> {
    Health::ALL.into_iter().find(|h| h.as_str() == s)
}

/// The cultivar exactly as stored. [`Cultivar::new`] would re-normalise it, and
/// a name that arrived through serde un-normalised would then come back changed.
fn cultivar_from_str(s: &str) -> Cultivar {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    // Deserialising a transparent String newtype from a string cannot fail;
    // fall back to the normalised form rather than panic all the same.
    Cultivar::deserialize(de).unwrap_or_else(|_| Cultivar::new(s))
}

// ---------------------------------------------------------------------------
// Boundary codec

/// Writes a polygon as the `coordinates` member of a GeoJSON Polygon:
/// `[[[lon,lat],...],[hole...]...]`, exterior ring first.
///
/// Numbers use Rust's shortest round-trip formatting and are read back with
/// Rust's correctly rounded parser, so every coordinate returns bit for bit
/// (serde_json's default float parser is only approximately rounded).
pub(crate) fn encode_boundary(polygon: &Polygon<f64>) -> Result<String> {
    let rings = std::iter::once(polygon.exterior()).chain(polygon.interiors());
    let mut out = String::with_capacity(32 * polygon.exterior().0.len() + 4);
    out.push('[');
    for (r, ring) in rings.enumerate() {
        if r > 0 {
            out.push(',');
        }
        out.push('[');
        for (i, c) in ring.0.iter().enumerate() {
            if !c.x.is_finite() || !c.y.is_finite() {
                return Err(invalid("boundary", format!("position {},{} is not a pair of finite numbers", c.x, c.y)));
            }
            if i > 0 {
                out.push(',');
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "[{},{}]", c.x, c.y);
        }
        out.push(']');
    }
    out.push(']');
    Ok(out)
}

/// Reads what [`encode_boundary`] wrote (any JSON whitespace allowed).
pub(crate) fn decode_boundary(text: &str) -> std::result::Result<Polygon<f64>, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let mut rings = Vec::new();
    p.list(|p| {
        let mut ring = Vec::new();
        p.list(|p| {
            let mut xy = [0.0; 2];
            let mut n = 0;
            p.list(|p| {
                let v = p.number()?;
                *xy.get_mut(n).ok_or_else(|| p.error("a position must have exactly two numbers"))? = v;
                n += 1;
                Ok(())
            })?;
            if n != 2 {
                return Err(p.error("a position must have exactly two numbers"));
            }
            ring.push(Coord { x: xy[0], y: xy[1] });
            Ok(())
        })?;
        rings.push(LineString(ring));
        Ok(())
    })?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.error("unexpected text after the polygon"));
    }
    let mut rings = rings.into_iter();
    let exterior = rings.next().ok_or_else(|| "a polygon needs an exterior ring".to_string())?;
    Ok(Polygon::new(exterior, rings.collect()))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} (at byte {})", self.i)
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `[ item, item, ... ]`, possibly empty.
    fn list(
        &mut self,
        mut item: impl FnMut(&mut Self) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        if !self.eat(b'[') {
            return Err(self.error("expected '['"));
        }
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            item(self)?;
            if self.eat(b']') {
                return Ok(());
            }
            if !self.eat(b',') {
                return Err(self.error("expected ',' or ']'"));
            }
        }
    }

    fn number(&mut self) -> std::result::Result<f64, String> {
        self.ws();
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.error("expected a number"))?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(&format!("expected a number, found {text:?}"))),
        }
    }
}

// ---------------------------------------------------------------------------
// Checks before writing

/// Refuses values the database could not keep faithfully: SQLite turns NaN
/// into NULL, and a position out of range would make every later load fail.
pub(crate) fn check_values(
    location: LonLat,
    accuracy_m: Option<f64>,
    height_m: Option<f64>,
    girth_cm: Option<f64>,
) -> Result<()> {
    if !location.lon.is_finite() || !(-180.0..=180.0).contains(&location.lon) {
        return Err(invalid("lon", format!("longitude {} is not within -180..180", location.lon)));
    }
    if !location.lat.is_finite() || !(-90.0..=90.0).contains(&location.lat) {
        return Err(invalid("lat", format!("latitude {} is not within -90..90", location.lat)));
    }
    for (field, v) in [("accuracy_m", accuracy_m), ("height_m", height_m), ("girth_cm", girth_cm)] {
        if let Some(v) = v.filter(|v| !v.is_finite()) {
            return Err(invalid(field, format!("{v} is not a finite number")));
        }
    }
    Ok(())
}

/// The tag code derived from a tree id.
pub(crate) fn code_for(id: i64) -> Result<TreeCode> {
    u64::try_from(id)
        .ok()
        .and_then(|serial| TreeCode::from_serial(serial).ok())
        .ok_or_else(|| invalid("code", format!("tree id {id} is beyond the tag-code space; claim codes explicitly")))
}

/// Checks a draft of a survey import for everything that needs no database
/// beyond the set of stored orchards.
pub(crate) fn check_draft(t: &NewTree, orchards: &HashSet<OrchardId>) -> Result<()> {
    check_values(t.location, t.accuracy_m, t.height_m, t.girth_cm)?;
    if !orchards.contains(&t.orchard_id) {
        return Err(Error::UnknownOrchard(t.orchard_id.clone()));
    }
    Ok(())
}

/// A claimed code appears twice among `codes`: the second one, if any.
pub(crate) fn repeated_code(codes: impl Iterator<Item = TreeCode>) -> Option<TreeCode> {
    let mut seen = HashSet::new();
    codes.into_iter().find(|c| !seen.insert(*c))
}

/// The lower-case hex form of a SHA-256 as given; refuses anything else.
pub(crate) fn normalise_sha256(sha: &str) -> Result<String> {
    let sha = sha.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("file_sha256", format!("{sha:?} is not a SHA-256 in hex (64 characters)")));
    }
    Ok(sha)
}

// ---------------------------------------------------------------------------
// Tag codes as numbers

/// 31^6, the number of tag-code payloads.
const CODE_SPACE: u64 = 887_503_681;

/// The serial number a tag code stands for: the inverse of
/// [`TreeCode::from_serial`], so a code derived from tree id n gives n.
///
/// geo-core maps serial s to payload (s × 190,071,437 + 104,729) mod 31^6
/// (a fixed bijection: printed tags depend on it); this undoes it with the
/// inverse multiplier. migrations/sqlite/0002_imports.sql computes the same
/// in SQL for trees stored before; [`code_serial_agrees`] checks both against
/// geo-core, and the SQLite store refuses to open if it ever disagreed.
pub(crate) fn code_serial(code: &TreeCode) -> i64 {
    // Below 31^6 < 2^30: always fits.
    i64::try_from(code.serial()).unwrap_or(i64::MAX)
}

/// [`code_serial`] undoes [`TreeCode::from_serial`] (spot checks across the space).
pub(crate) fn code_serial_agrees() -> bool {
    [0, 1, 2, 30, 31, 961, 104_729, 190_071_437, 500_000_001, CODE_SPACE - 1]
        .into_iter()
        .chain((0..64).map(|k| k * 13_867_245 + 7))
        .all(|s| TreeCode::from_serial(s).is_ok_and(|c| code_serial(&c) == s as i64))
}

// ---------------------------------------------------------------------------
// Row identities

/// The 64-bit hash under which a row key is recorded (see `ImportWriter` in
/// lib.rs for the collision argument).
///
/// Stable forever: rows recorded by earlier imports are found by it, so any
/// change would make every earlier row look new. 8-byte little-endian words
/// (the last one zero-padded, the length folded into the seed) each go
/// through the SplitMix64 finaliser, a bijection with full avalanche.
pub(crate) fn row_key_hash(key: &str) -> i64 {
    fn mix(mut x: u64) -> u64 {
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    let bytes = key.as_bytes();
    let mut h = mix(0x6f72_6368_6172_646d ^ (bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    // Same bits, as SQL integers are signed.
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// A hasher for values that are already uniformly distributed hashes.
#[derive(Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = u64::from_ne_bytes(v.to_ne_bytes());
    }
}

/// Row-key hashes recorded so far (by earlier imports and this one).
pub(crate) type KeySet = HashSet<i64, std::hash::BuildHasherDefault<PassThrough>>;

/// [`crate::ImportWriter::known_row_keys`] for the keys' hashes against the
/// recorded set: a key is known when recorded, or when it appeared earlier in
/// the same call.
pub(crate) fn known_hashes(recorded: &KeySet, hashes: &[i64]) -> Vec<bool> {
    let mut in_call = KeySet::default();
    hashes.iter().map(|h| recorded.contains(h) || !in_call.insert(*h)).collect()
}

// ---------------------------------------------------------------------------
// The change log

/// The trees an import touched, kept as runs of consecutive ids (a bulk
/// import's new trees are one run) until the change log is written at commit.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    runs: Vec<(i64, i64)>,
}

impl Touched {
    pub(crate) fn add(&mut self, id: i64) {
        match self.runs.last_mut() {
            Some((from, to)) if (*from..=*to).contains(&id) => {}
            Some((_, to)) if *to + 1 == id => *to = id,
            _ => self.runs.push((id, id)),
        }
    }

    /// Forgets a tree (it moved to another id before anyone saw it).
    pub(crate) fn remove(&mut self, id: i64) {
        let mut out = Vec::with_capacity(self.runs.len() + 1);
        for &(from, to) in &self.runs {
            if (from..=to).contains(&id) {
                if from < id {
                    out.push((from, id - 1));
                }
                if id < to {
                    out.push((id + 1, to));
                }
            } else {
                out.push((from, to));
            }
        }
        self.runs = out;
    }

    /// Sorted, disjoint, non-adjacent runs covering every id added and not removed.
    pub(crate) fn into_runs(mut self) -> Vec<(i64, i64)> {
        self.runs.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(self.runs.len());
        for (from, to) in self.runs {
            match out.last_mut() {
                Some((_, last)) if from <= *last + 1 => *last = (*last).max(to),
                _ => out.push((from, to)),
            }
        }
        out
    }
}

/// Runs of consecutive ids among `ids` (any order, repeats allowed).
pub(crate) fn id_runs(ids: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
    let mut touched = Touched::default();
    for id in ids {
        touched.add(id);
    }
    touched.into_runs()
}

/// A change-log row for `runs[i]` and the sequence numbers it stands for:
/// given the first free sequence number, each run's row gets `seq` = the last
/// number of its block. Returns `(seq, from, to)`; `to` is `None` for one tree.
pub(crate) fn change_rows(first_seq: i64, runs: &[(i64, i64)]) -> Vec<(i64, i64, Option<i64>)> {
    let mut next = first_seq;
    runs.iter()
        .map(|&(from, to)| {
            let end = next + (to - from);
            next = end + 1;
            (end, from, (to != from).then_some(to))
        })
        .collect()
}

/// Sequence numbers all of `runs` need.
pub(crate) fn seq_count(runs: &[(i64, i64)]) -> i64 {
    runs.iter().map(|&(from, to)| to - from + 1).sum()
}

/// Expands change-log rows `(seq, tree_id, tree_id_to)` (ordered by seq) into
/// one [`Change`] per tree, keeping those after `after`, at most `limit`.
pub(crate) fn expand_changes(rows: &[(i64, i64, Option<i64>)], after: i64, limit: u32) -> Result<Vec<Change>> {
    let limit = limit as usize;
    let mut out = Vec::with_capacity(limit.min(rows.len().max(16) * 4));
    for &(seq, from, to) in rows {
        let to = to.unwrap_or(from);
        let span = to.checked_sub(from).filter(|s| *s >= 0);
        let Some(first) = span.and_then(|s| seq.checked_sub(s)) else {
            return Err(corrupt("changes", format!("change {seq}: tree range {from}..={to}")));
        };
        let skip = if after >= first { after - first + 1 } else { 0 };
        let mut id = from.saturating_add(skip);
        let mut s = first.saturating_add(skip);
        while id <= to && out.len() < limit {
            out.push(Change { seq: s, tree_id: TreeId(id) });
            id += 1;
            s += 1;
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// An import checked for everything that needs no database.
pub(crate) struct Prepared {
    /// The survey, its time cut to what the database keeps.
    pub survey: Option<Survey>,
    /// Orchards with their encoded boundaries; one per id (the last given wins).
    pub orchards: Vec<(Orchard, Option<String>)>,
    pub trees: Vec<NewTree>,
    /// Codes the drafts claim (all distinct).
    pub claimed: HashSet<TreeCode>,
    /// Orchards the trees refer to that the batch does not carry, in first-use order.
    pub orchard_refs: Vec<OrchardId>,
    /// Surveys the drafts name explicitly, in first-use order.
    pub survey_refs: Vec<i64>,
}

pub(crate) fn prepare(batch: ImportBatch) -> Result<Prepared> {
    let ImportBatch { survey, orchards, trees } = batch;
    let survey = survey.map(|s| Survey { surveyed_at: s.surveyed_at.trunc_subsecs(6), ..s });

    let mut by_id: HashMap<OrchardId, usize> = HashMap::new();
    let mut unique: Vec<(Orchard, Option<String>)> = Vec::with_capacity(orchards.len());
    for orchard in orchards {
        let boundary = orchard.boundary.as_ref().map(encode_boundary).transpose()?;
        match by_id.get(&orchard.id) {
            Some(&i) => unique[i] = (orchard, boundary),
            None => {
                by_id.insert(orchard.id.clone(), unique.len());
                unique.push((orchard, boundary));
            }
        }
    }

    let mut claimed = HashSet::new();
    let mut orchard_refs = Vec::new();
    let mut seen_orchards: HashSet<&OrchardId> = HashSet::new();
    let mut survey_refs = Vec::new();
    for t in &trees {
        check_values(t.location, t.accuracy_m, t.height_m, t.girth_cm)?;
        if let Some(code) = t.code {
            if !claimed.insert(code) {
                return Err(Error::DuplicateCode(code.to_string()));
            }
        }
        if !by_id.contains_key(&t.orchard_id) && seen_orchards.insert(&t.orchard_id) {
            orchard_refs.push(t.orchard_id.clone());
        }
        if let Some(SurveyId(s)) = t.survey_id {
            if !survey_refs.contains(&s) {
                survey_refs.push(s);
            }
        }
    }
    Ok(Prepared { survey, orchards: unique, trees, claimed, orchard_refs, survey_refs })
}

/// The database side of assigning ids and codes, implemented by each backend
/// inside its (serialised) write transaction.
pub(crate) trait IdSource {
    /// Which of `codes` stored trees already use.
    fn taken_codes(&mut self, codes: &[TreeCode]) -> impl Future<Output = Result<HashSet<String>>> + Send;
    /// `n` tree ids never used before.
    fn fresh_ids(&mut self, n: usize) -> impl Future<Output = Result<Vec<i64>>> + Send;
}

/// Gives every draft an id, and the drafts without a code the code derived
/// from their id. Fails with [`Error::DuplicateCode`] when a claimed code is
/// already stored (the first such draft in input order is named).
///
/// Claimed codes come from the same code space as derived ones (tags are
/// pre-printed from serials), so a derived code can already be in use: that
/// draft then takes another fresh id (the skipped id stays unused) rather
/// than failing an import the caller could do nothing about.
pub(crate) async fn assign_ids<S: IdSource>(
    source: &mut S,
    trees: &[NewTree],
    claimed: &HashSet<TreeCode>,
) -> Result<(Vec<i64>, Vec<TreeCode>)> {
    let claimed_list: Vec<TreeCode> = trees.iter().filter_map(|t| t.code).collect();
    if !claimed_list.is_empty() {
        let taken = source.taken_codes(&claimed_list).await?;
        if let Some(code) = claimed_list.iter().find(|c| taken.contains(c.as_str())) {
            return Err(Error::DuplicateCode(code.to_string()));
        }
    }

    let mut ids = source.fresh_ids(trees.len()).await?;
    if ids.len() != trees.len() {
        return Err(corrupt("trees", format!("asked for {} tree ids, got {}", trees.len(), ids.len())));
    }
    let mut codes = Vec::with_capacity(trees.len());
    let mut pending = Vec::new();
    for (i, t) in trees.iter().enumerate() {
        match t.code {
            Some(code) => codes.push(code),
            None => {
                codes.push(code_for(ids[i])?);
                pending.push(i);
            }
        }
    }
    while !pending.is_empty() {
        let (mut clash, unclaimed): (Vec<usize>, Vec<usize>) =
            pending.iter().partition(|&&i| claimed.contains(&codes[i]));
        let check: Vec<TreeCode> = unclaimed.iter().map(|&i| codes[i]).collect();
        let taken = source.taken_codes(&check).await?;
        clash.extend(unclaimed.into_iter().filter(|&i| taken.contains(codes[i].as_str())));
        if clash.is_empty() {
            break;
        }
        tracing::debug!(trees = clash.len(), "derived tag codes already claimed; taking other ids");
        let more = source.fresh_ids(clash.len()).await?;
        if more.len() != clash.len() {
            return Err(corrupt("trees", format!("asked for {} tree ids, got {}", clash.len(), more.len())));
        }
        for (&i, id) in clash.iter().zip(more) {
            ids[i] = id;
            codes[i] = code_for(id)?;
        }
        pending = clash;
    }
    Ok((ids, codes))
}

/// The stored form of a re-surveyed tree: the draft's values over the
/// tree's identity, one version on.
pub(crate) fn resurveyed_tree(
    t: NewTree,
    current: (i64, i64, DateTime<Utc>),
    code: TreeCode,
    survey_id: SurveyId,
    at: DateTime<Utc>,
) -> Tree {
    let (id, version, created_at) = current;
    Tree { survey_id: Some(survey_id), created_at, version: version + 1, ..stored_tree(t, id, code, None, at) }
}

/// The stored form of an imported draft.
pub(crate) fn stored_tree(t: NewTree, id: i64, code: TreeCode, survey_id: Option<SurveyId>, at: DateTime<Utc>) -> Tree {
    Tree {
        id: TreeId(id),
        code,
        location: t.location,
        accuracy_m: t.accuracy_m,
        cultivar: t.cultivar,
        planted_year: t.planted_year,
        health: t.health,
        height_m: t.height_m,
        girth_cm: t.girth_cm,
        orchard_id: t.orchard_id,
        survey_id: t.survey_id.or(survey_id),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn boundary_round_trips_bit_for_bit() {
        let ring = vec![
            Coord { x: 108.050_000_1, y: 12.680_000_000_000_001 },
            Coord { x: 108.1 + 1e-13, y: 12.68 },
            Coord { x: 0.1 + 0.2, y: -0.0 },
            Coord { x: 108.050_000_1, y: 12.680_000_000_000_001 },
        ];
        let hole = vec![Coord { x: 1e-7, y: 2.5e-8 }, Coord { x: 1.0, y: 1.0 }, Coord { x: 1e-7, y: 2.5e-8 }];
        let p = Polygon::new(LineString(ring), vec![LineString(hole)]);
        let text = encode_boundary(&p).unwrap();
        let back = decode_boundary(&text).unwrap();
        assert_eq!(back, p);
        for (a, b) in back.exterior().0.iter().zip(&p.exterior().0) {
            assert_eq!(a.x.to_bits(), b.x.to_bits());
            assert_eq!(a.y.to_bits(), b.y.to_bits());
        }
        // It is JSON, readable by other tools.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn boundary_refuses_garbage_and_non_finite() {
        for bad in
            ["", "[", "[[[1,2]]", "[[[1]]]", "[[[1,2,3]]]", "[[[1,x]]]", "[[[1,2]]] x", "{}", "[]", "[[[1e999,2]]]"]
        {
            assert!(decode_boundary(bad).is_err(), "{bad:?} accepted");
        }
        let p = Polygon::new(LineString(vec![Coord { x: f64::NAN, y: 1.0 }]), vec![]);
        assert!(matches!(encode_boundary(&p), Err(Error::Invalid { field: "boundary", .. })));
        // Whitespace is fine; geo-types closes an open ring, as it did when the polygon was made.
        assert_eq!(decode_boundary(" [ [ [ 1 , 2 ] , [3,4] ] ] ").unwrap().exterior().0.len(), 3);
    }

    #[test]
    fn cultivar_is_kept_as_stored() {
        assert_eq!(cultivar_from_str(" ri 6 ").as_str(), " ri 6 ");
        assert_eq!(cultivar_from_str("Ri6"), Cultivar::new("ri 6"));
    }

    #[test]
    fn row_key_hash_is_fixed_and_spreads() {
        assert_ne!(row_key_hash("a"), row_key_hash("a\0"));
        assert_ne!(row_key_hash("abcdefgh"), row_key_hash("abcdefgh\0"));
        assert_ne!(row_key_hash("ab"), row_key_hash("ba"));
        let hashes: HashSet<i64> = (0..200_000).map(|i| row_key_hash(&format!("row-{i}"))).collect();
        assert_eq!(hashes.len(), 200_000);
        // Both halves of the 64 bits are used.
        assert!(hashes.iter().any(|h| *h < 0) && hashes.iter().any(|h| *h > 0));
    }

    const ROW_KEY_EMPTY: i64 = 4_612_092_606_220_939_853;
    const ROW_KEY_UUID: i64 = -1_916_896_441_527_705_810;

    /// Fixed forever: earlier imports' rows are found by these values.
    #[test]
    fn row_key_hash_reference_values() {
        assert_eq!(row_key_hash(""), ROW_KEY_EMPTY);
        assert_eq!(row_key_hash("8c0f9a7e-2b1d-4c3e-9f00-1a2b3c4d5e6f"), ROW_KEY_UUID);
    }

    #[test]
    fn known_keys_counts_repeats_within_a_call() {
        let mut recorded = KeySet::default();
        recorded.insert(row_key_hash("old"));
        let hashes: Vec<i64> = ["new", "old", "new", "other"].iter().map(|s| row_key_hash(s)).collect();
        assert_eq!(known_hashes(&recorded, &hashes), [false, true, true, false]);
    }

    #[test]
    fn touched_runs() {
        let mut t = Touched::default();
        for id in [5, 6, 7, 8, 20, 21, 3, 9, 7] {
            t.add(id);
        }
        t.remove(21);
        t.remove(6);
        assert_eq!(t.into_runs(), [(3, 3), (5, 5), (7, 9), (20, 20)]);
        assert_eq!(id_runs([4, 2, 3, 10]), [(2, 4), (10, 10)]);
        assert!(id_runs([]).is_empty());
    }

    #[test]
    fn change_blocks_expand_one_tree_at_a_time() {
        let runs = [(10, 12), (20, 20), (30, 31)];
        assert_eq!(seq_count(&runs), 6);
        let rows = change_rows(5, &runs);
        assert_eq!(rows, [(7, 10, Some(12)), (8, 20, None), (10, 30, Some(31))]);
        let all = expand_changes(&rows, 0, 100).unwrap();
        let pairs: Vec<(i64, i64)> = all.iter().map(|c| (c.seq, c.tree_id.0)).collect();
        assert_eq!(pairs, [(5, 10), (6, 11), (7, 12), (8, 20), (9, 30), (10, 31)]);
        // From inside a block, with limits.
        let page: Vec<i64> = expand_changes(&rows, 5, 2).unwrap().iter().map(|c| c.seq).collect();
        assert_eq!(page, [6, 7]);
        assert_eq!(expand_changes(&rows, 9, 100).unwrap().len(), 1);
        assert!(expand_changes(&rows, 10, 100).unwrap().is_empty());
        assert!(expand_changes(&rows, 0, 0).unwrap().is_empty());
        assert!(expand_changes(&[(3, 9, Some(2))], 0, 10).is_err());
    }

    #[test]
    fn sha256_is_normalised_or_refused() {
        let sha = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(normalise_sha256(&format!(" {sha}\n")).unwrap(), sha.to_ascii_lowercase());
        assert!(normalise_sha256("").is_err());
        assert!(normalise_sha256(&sha[1..]).is_err());
        assert!(normalise_sha256(&format!("{}g", &sha[1..])).is_err());
    }

    #[test]
    fn code_serial_inverts_from_serial() {
        assert!(code_serial_agrees());
        for s in (0..200_000).chain(CODE_SPACE - 1000..CODE_SPACE) {
            assert_eq!(code_serial(&TreeCode::from_serial(s).unwrap()), s as i64);
        }
    }

    #[test]
    fn code_for_refuses_out_of_space_ids() {
        assert!(code_for(-1).is_err());
        assert!(code_for(i64::MAX).is_err());
        assert_eq!(code_for(7).unwrap(), TreeCode::from_serial(7).unwrap());
    }
}
