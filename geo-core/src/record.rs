//! The farm diary of a tree (care and harvest records) and the history of
//! changes to a tree's own fields.
//!
//! Records are append-only: a mistake is corrected by a new record that names
//! the one it corrects (`corrects`), so what an inspector saw stays visible.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::account::UserId;
use crate::error::{Error, Problem, Result};
use crate::model::{Health, SurveyId, Tree, TreeId};

/// Database id of a tree record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(pub i64);

/// What a record says, by kind. Serialised with a `kind` member
/// (`observation`, `fertiliser`, `spray`, `flowering`, `fruit_set`, `harvest`, `photo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecordDetails {
    /// Something seen on the tree (pests, disease, growth); may report a health.
    Observation {
        /// Health seen, if assessed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        health: Option<Health>,
    },
    /// Fertiliser applied.
    Fertiliser {
        /// Product name (e.g. `NPK 16-16-8`).
        product: String,
        /// Amount per tree in kilograms, if measured.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount_kg: Option<f64>,
    },
    /// Plant-protection product sprayed.
    Spray {
        /// Product name.
        product: String,
        /// Dose as written on the label or mixed (e.g. `20 ml / 16 l`).
        dose: String,
        /// Pre-harvest interval in days: no harvest before `date + phi_days`.
        phi_days: u32,
        /// Pest or disease targeted, if noted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    /// Flowering observed.
    Flowering {
        /// Share of branches in flower, 0..=100, if estimated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<f64>,
    },
    /// Fruit set counted.
    FruitSet {
        /// Young fruits counted on the tree.
        fruit_count: u32,
    },
    /// Fruit harvested from this tree.
    Harvest {
        /// Number of fruits.
        fruit_count: u32,
        /// Total weight in kilograms.
        weight_kg: f64,
    },
    /// A photo of the tree, stored content-addressed.
    Photo {
        /// SHA-256 of the image bytes, lower-case hex (the photo's address).
        sha256: String,
        /// `image/jpeg` or `image/png`.
        content_type: String,
    },
}

impl RecordDetails {
    /// The kind's name as serialised.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordDetails::Observation { .. } => "observation",
            RecordDetails::Fertiliser { .. } => "fertiliser",
            RecordDetails::Spray { .. } => "spray",
            RecordDetails::Flowering { .. } => "flowering",
            RecordDetails::FruitSet { .. } => "fruit_set",
            RecordDetails::Harvest { .. } => "harvest",
            RecordDetails::Photo { .. } => "photo",
        }
    }
}

/// Every record kind's serialised name.
pub const RECORD_KINDS: [&str; 7] =
    ["observation", "fertiliser", "spray", "flowering", "fruit_set", "harvest", "photo"];

/// A record as submitted, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTreeRecord {
    /// The day the work or observation happened (local date in the orchard).
    pub date: NaiveDate,
    /// What happened.
    #[serde(flatten)]
    pub details: RecordDetails,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The record of the same tree that this one corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<RecordId>,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeRecord {
    /// Database id; increases with each record.
    pub id: RecordId,
    /// The tree.
    pub tree_id: TreeId,
    /// The day it happened.
    pub date: NaiveDate,
    /// What happened.
    #[serde(flatten)]
    pub details: RecordDetails,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The record this one corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<RecordId>,
    /// Who wrote it (account name).
    pub author: String,
    /// The account, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<UserId>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// Longest free text accepted in a record (characters).
pub const MAX_NOTE_CHARS: usize = 2000;

impl NewTreeRecord {
    /// Checks the values: every problem with its field and value. `today` is
    /// the caller's date (geo-core reads no clock); a record may not be dated
    /// more than one day ahead (time zones) nor before 1950.
    pub fn validate(&self, today: NaiveDate) -> Result<()> {
        let mut problems = Vec::new();
        let mut bad = |field: &'static str, value: String, reason: &str| {
            problems.push(Problem { field: field.to_string(), value, reason: reason.to_string() });
        };
        if self.date > today + chrono::Days::new(1) {
            bad("date", self.date.to_string(), "is in the future");
        }
        if self.date < NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or(NaiveDate::MIN) {
            bad("date", self.date.to_string(), "is before 1950");
        }
        if let Some(note) = &self.note {
            if note.chars().count() > MAX_NOTE_CHARS {
                bad("note", format!("{} characters", note.chars().count()), "is longer than 2000 characters");
            }
        }
        let text = |field: &'static str, value: &str, bad: &mut dyn FnMut(&'static str, String, &str)| {
            if value.trim().is_empty() {
                bad(field, value.to_string(), "must not be empty");
            } else if value.chars().count() > 200 {
                bad(field, value.chars().take(40).collect::<String>() + "...", "is longer than 200 characters");
            }
        };
        match &self.details {
            RecordDetails::Observation { .. } => {}
            RecordDetails::Fertiliser { product, amount_kg } => {
                text("product", product, &mut bad);
                if let Some(kg) = amount_kg {
                    if !(kg.is_finite() && *kg > 0.0 && *kg <= 100.0) {
                        bad("amount_kg", kg.to_string(), "must be more than 0 and at most 100 kg per tree");
                    }
                }
            }
            RecordDetails::Spray { product, dose, phi_days, target } => {
                text("product", product, &mut bad);
                text("dose", dose, &mut bad);
                if *phi_days > 365 {
                    bad("phi_days", phi_days.to_string(), "must be at most 365 days");
                }
                if let Some(t) = target {
                    text("target", t, &mut bad);
                }
            }
            RecordDetails::Flowering { percent } => {
                if let Some(p) = percent {
                    if !(p.is_finite() && (0.0..=100.0).contains(p)) {
                        bad("percent", p.to_string(), "must be between 0 and 100");
                    }
                }
            }
            RecordDetails::FruitSet { fruit_count } => {
                if *fruit_count > 10_000 {
                    bad("fruit_count", fruit_count.to_string(), "must be at most 10000");
                }
            }
            RecordDetails::Harvest { fruit_count, weight_kg } => {
                if *fruit_count == 0 || *fruit_count > 2_000 {
                    bad("fruit_count", fruit_count.to_string(), "must be between 1 and 2000");
                }
                if !(weight_kg.is_finite() && *weight_kg > 0.0 && *weight_kg <= 10_000.0) {
                    bad("weight_kg", weight_kg.to_string(), "must be more than 0 and at most 10000 kg");
                }
            }
            RecordDetails::Photo { sha256, content_type } => {
                if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    bad("sha256", sha256.clone(), "must be 64 lower-case hex digits");
                }
                if content_type != "image/jpeg" && content_type != "image/png" {
                    bad("content_type", content_type.clone(), "must be image/jpeg or image/png");
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(Error::Invalid(problems)) }
    }
}

/// How a tree came to a version ([`TreeChange`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// The tree was created (by an import or through the API).
    Create,
    /// Some fields changed.
    Update,
    /// The tree was removed (see `reason`).
    Remove,
}

/// Why a tree was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemovalReason {
    /// The tree died.
    Dead,
    /// The tree was cut down.
    Cut,
    /// The record was a mistake (no such tree).
    Mistaken,
}

impl RemovalReason {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalReason::Dead => "dead",
            RemovalReason::Cut => "cut",
            RemovalReason::Mistaken => "mistaken",
        }
    }
}

impl std::str::FromStr for RemovalReason {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dead" => Ok(RemovalReason::Dead),
            "cut" => Ok(RemovalReason::Cut),
            "mistaken" => Ok(RemovalReason::Mistaken),
            _ => Err(Error::Parse {
                field: "reason",
                value: s.to_string(),
                reason: "must be one of dead, cut, mistaken".into(),
            }),
        }
    }
}

/// One field that a change altered, with its value before and after (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field name as in the tree's JSON (`health`, `location`, ...).
    pub field: String,
    /// Value before (`null` when absent).
    pub from: Value,
    /// Value after (`null` when absent).
    pub to: Value,
}

/// One entry of a tree's history: who did what, when, to which fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeChange {
    /// The version the change produced (for a removal: the last version).
    pub version: i64,
    /// What kind of change.
    pub action: ChangeAction,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: an account name, or the survey import that made it.
    pub by: String,
    /// The account, when a person made it through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The survey whose import made it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_id: Option<SurveyId>,
    /// Fields altered, from what to what (for `create`: every field from null).
    pub fields: Vec<FieldChange>,
    /// Why a tree was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RemovalReason>,
}

/// Fields that are bookkeeping, not the tree's description: never listed as changed.
const BOOKKEEPING: [&str; 4] = ["id", "version", "created_at", "updated_at"];

/// The fields that differ between two versions of a tree, in field order
/// (`before = None`: every field of `after`, as for a creation).
pub fn diff_trees(before: Option<&Tree>, after: &Tree) -> Vec<FieldChange> {
    let to_map = |t: &Tree| match serde_json::to_value(t) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let after = to_map(after);
    let before = before.map(to_map).unwrap_or_default();
    let mut out = Vec::new();
    for (field, to) in &after {
        if BOOKKEEPING.contains(&field.as_str()) {
            continue;
        }
        let from = before.get(field).cloned().unwrap_or(Value::Null);
        if &from != to {
            out.push(FieldChange { field: field.clone(), from, to: to.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cultivar, LonLat, OrchardId, TreeCode};

    fn tree() -> Tree {
        Tree {
            id: TreeId(7),
            code: TreeCode::from_serial(7).unwrap(),
            location: LonLat { lon: 108.0, lat: 12.7 },
            accuracy_m: Some(3.0),
            cultivar: Cultivar::new("Ri6"),
            planted_year: Some(2018),
            health: Health::Good,
            height_m: None,
            girth_cm: None,
            orchard_id: OrchardId::new("A").unwrap(),
            survey_id: None,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            version: 1,
        }
    }

    #[test]
    fn diff_lists_exactly_the_changed_fields() {
        let a = tree();
        let b = Tree { health: Health::Poor, height_m: Some(4.5), version: 2, updated_at: Utc::now(), ..a.clone() };
        let d = diff_trees(Some(&a), &b);
        let fields: Vec<&str> = d.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["health", "height_m"]);
        assert_eq!(d[0].from, Value::from("good"));
        assert_eq!(d[0].to, Value::from("poor"));
        assert_eq!(d[1].from, Value::Null);
        assert!(diff_trees(Some(&a), &a).is_empty());
        let created = diff_trees(None, &a);
        assert!(created.iter().any(|c| c.field == "code") && created.iter().all(|c| c.from.is_null()));
    }

    #[test]
    fn records_round_trip_with_a_kind_member() {
        let json = r#"{"date":"2026-03-01","kind":"spray","product":"Abamectin","dose":"20 ml / 16 l","phi_days":14}"#;
        let r: NewTreeRecord = serde_json::from_str(json).unwrap();
        assert_eq!(r.details.kind(), "spray");
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        r.validate(today).unwrap();
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["kind"], "spray");
        assert_eq!(back["phi_days"], 14);
        assert!(serde_json::from_str::<NewTreeRecord>(r#"{"date":"2026-03-01","kind":"dance"}"#).is_err());
    }

    #[test]
    fn validation_names_every_bad_field() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let r = NewTreeRecord {
            date: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            details: RecordDetails::Harvest { fruit_count: 0, weight_kg: f64::NAN },
            note: None,
            corrects: None,
        };
        let err = r.validate(today).unwrap_err().to_string();
        assert!(err.contains("date") && err.contains("fruit_count") && err.contains("weight_kg"), "{err}");
        let photo = NewTreeRecord {
            date: today,
            details: RecordDetails::Photo { sha256: "x".into(), content_type: "image/gif".into() },
            note: None,
            corrects: None,
        };
        let err = photo.validate(today).unwrap_err().to_string();
        assert!(err.contains("sha256") && err.contains("image/gif"), "{err}");
    }
}
