//! Trees, orchards and surveys.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use geo_types::Polygon;
use serde::{Deserialize, Serialize};

use crate::code::TreeCode;
use crate::error::{Error, Result};
use crate::geodesy::LonLat;

/// Database identifier of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TreeId(pub i64);

impl fmt::Display for TreeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a survey row or a request names an existing tree: by database id or
/// by the tag code printed on its trunk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TreeRef {
    /// By database id.
    Id(TreeId),
    /// By tag code.
    Code(crate::TreeCode),
}

impl fmt::Display for TreeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeRef::Id(id) => write!(f, "tree id {id}"),
            TreeRef::Code(code) => write!(f, "tree code {code}"),
        }
    }
}

/// Database identifier of a survey (one upload by one volunteer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SurveyId(pub i64);

/// Identifier of an orchard: a short human-readable key such as `DL-CMG-EATIEU-007`
/// (ASCII letters, digits, `-` and `_`, 1 to 40 characters), the same in every database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrchardId(String);

impl OrchardId {
    /// Checks and wraps an orchard identifier.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let ok =
            !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(id))
        } else {
            Err(Error::Parse {
                field: "orchard",
                value: id,
                reason: "must be 1-40 characters of A-Z, a-z, 0-9, '-' or '_'".into(),
            })
        }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrchardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OrchardId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Health of a tree as judged in the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Vigorous, no visible problem.
    Good,
    /// Some stress or disease, still productive.
    Fair,
    /// Serious decline (e.g. Phytophthora root rot), needs care.
    Poor,
    /// Dead; kept so the gap in the planting grid is explained.
    Dead,
}

impl Health {
    /// All values, best first.
    pub const ALL: [Health; 4] = [Health::Good, Health::Fair, Health::Poor, Health::Dead];

    /// The lower-case English name used in the API, the database and the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Good => "good",
            Health::Fair => "fair",
            Health::Poor => "poor",
            Health::Dead => "dead",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Health {
    type Err = Error;
    /// Accepts the English names and the Vietnamese words volunteers write
    /// (`tốt`, `khá`/`trung bình`, `yếu`/`kém`, `chết`), in any case.
    fn from_str(s: &str) -> Result<Self> {
        let v = s.trim().to_lowercase();
        Ok(match v.as_str() {
            "good" | "tốt" | "tot" => Health::Good,
            "fair" | "khá" | "kha" | "trung bình" | "trung binh" => Health::Fair,
            "poor" | "yếu" | "yeu" | "kém" | "kem" => Health::Poor,
            "dead" | "chết" | "chet" => Health::Dead,
            _ => {
                return Err(Error::Parse {
                    field: "health",
                    value: s.to_string(),
                    reason: "must be one of good, fair, poor, dead".into(),
                });
            }
        })
    }
}

/// Durian cultivars seen in Central Highlands surveys, with their canonical spelling.
pub const KNOWN_CULTIVARS: &[&str] =
    &["Ri6", "Monthong", "Musang King", "Black Thorn", "Chuồng Bò", "Khổ Qua Xanh", "Sáu Hữu", "Cơm Vàng"];

/// A durian cultivar name. Known names are normalised to their canonical
/// spelling (`ri 6` → `Ri6`, `Dona` → `Monthong`, `D197` → `Musang King`);
/// other names are kept as given (validation flags them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cultivar(String);

impl Cultivar {
    /// Normalises a cultivar name.
    pub fn new(name: &str) -> Self {
        let key: String =
            name.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
        let canonical = match key.as_str() {
            "ri6" => Some("Ri6"),
            "monthong" | "dona" | "monthongdona" => Some("Monthong"),
            "musangking" | "d197" => Some("Musang King"),
            "blackthorn" | "d200" => Some("Black Thorn"),
            _ => KNOWN_CULTIVARS
                .iter()
                .find(|k| {
                    k.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect::<String>() == key
                })
                .copied(),
        };
        Self(canonical.map(str::to_string).unwrap_or_else(|| name.trim().to_string()))
    }

    /// True when the name is one of [`KNOWN_CULTIVARS`].
    pub fn is_known(&self) -> bool {
        KNOWN_CULTIVARS.contains(&self.0.as_str())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cultivar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tree as stored: one durian tree standing at one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Database identifier.
    pub id: TreeId,
    /// Public tag code printed under the tree's QR code.
    pub code: TreeCode,
    /// Where the trunk stands (WGS 84).
    pub location: LonLat,
    /// Horizontal GPS accuracy of the fix in metres, when the device reported it.
    pub accuracy_m: Option<f64>,
    /// Cultivar.
    pub cultivar: Cultivar,
    /// Year the tree was planted.
    pub planted_year: Option<i32>,
    /// Health.
    pub health: Health,
    /// Height in metres.
    pub height_m: Option<f64>,
    /// Trunk girth at breast height, in centimetres.
    pub girth_cm: Option<f64>,
    /// The orchard the tree belongs to.
    pub orchard_id: OrchardId,
    /// The survey that recorded it, if any.
    pub survey_id: Option<SurveyId>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases by one on every change (optimistic concurrency).
    pub version: i64,
}

/// A tree not yet stored: what a survey row or an API request provides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTree {
    /// A pre-printed tag code to claim; the store assigns one when absent.
    pub code: Option<TreeCode>,
    /// Where the trunk stands (WGS 84).
    pub location: LonLat,
    /// Horizontal GPS accuracy in metres.
    pub accuracy_m: Option<f64>,
    /// Cultivar.
    pub cultivar: Cultivar,
    /// Year planted.
    pub planted_year: Option<i32>,
    /// Health.
    pub health: Health,
    /// Height in metres.
    pub height_m: Option<f64>,
    /// Trunk girth in centimetres.
    pub girth_cm: Option<f64>,
    /// The orchard the tree belongs to.
    pub orchard_id: OrchardId,
    /// The survey that recorded it.
    pub survey_id: Option<SurveyId>,
}

/// An orchard: one farmer's block of trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orchard {
    /// Identifier.
    pub id: OrchardId,
    /// Display name, e.g. `Vườn ông Y Blang Niê`.
    pub name: String,
    /// Owner's name.
    pub owner: String,
    /// Commune (xã / phường).
    pub commune: String,
    /// District (huyện).
    pub district: String,
    /// Province (tỉnh).
    pub province: String,
    /// Registered planting-area code (mã số vùng trồng, PUC), e.g. `VN-DLOR-0123`.
    pub planting_area_code: Option<String>,
    /// The orchard's GS1 Global Location Number (13 digits), when it has one:
    /// its trees' public links are then `/414/{gln}/254/{tree code}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gln: Option<String>,
    /// Boundary (WGS 84 lon/lat), when surveyed.
    pub boundary: Option<Polygon<f64>>,
}

/// A survey: one batch of trees recorded by one person with one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Survey {
    /// Identifier (assigned by the store; `SurveyId(0)` before).
    pub id: SurveyId,
    /// Who surveyed.
    pub surveyor: String,
    /// When the survey was made.
    pub surveyed_at: DateTime<Utc>,
    /// Where the data came from: the file name or the app.
    pub source: String,
    /// The device (phone model, GPS unit), when known.
    pub device: Option<String>,
}
