//! Harvest lots: fruit from one orchard's trees, harvested on one day, packed
//! and labelled for buyers; their lab results and the pre-harvest-interval
//! check of the trees' spray records.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::account::UserId;
use crate::code::TreeCode;
use crate::error::{Error, Problem, Result};
use crate::gs1;
use crate::model::{Orchard, OrchardId, TreeId};
use crate::record::{RecordDetails, TreeRecord};

/// Database id of a harvest lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LotId(pub i64);

/// Longest lot code or GS1 lot number (AI 10 allows 20 characters).
pub const MAX_LOT_CHARS: usize = 20;

/// A lot's public code: `L` followed by the 7-character code of its id
/// ([`TreeCode::from_serial`]), e.g. `LK7DW3QX`. Short, self-checking, and within
/// GS1's lot rules (≤ 20 characters from character set 82).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LotCode(String);

impl LotCode {
    /// The code of lot `id`.
    pub fn for_id(id: LotId) -> Result<Self> {
        let serial =
            u64::try_from(id.0).map_err(|_| Error::BadCode { value: id.0.to_string(), reason: "negative lot id" })?;
        Ok(Self(format!("L{}", TreeCode::from_serial(serial)?.as_str())))
    }

    /// Parses a lot code (`L` + a valid 7-character tag code; lower case accepted).
    pub fn parse(input: &str) -> Result<Self> {
        let t = input.trim();
        let rest = t
            .strip_prefix('L')
            .or_else(|| t.strip_prefix('l'))
            .ok_or(Error::BadCode { value: input.to_string(), reason: "a lot code starts with L" })?;
        let code = TreeCode::parse(rest)?;
        Ok(Self(format!("L{}", code.as_str())))
    }

    /// The lot id this code stands for.
    pub fn id(&self) -> LotId {
        // Parsed or built from a valid code, so the tag part always parses.
        TreeCode::parse(&self.0[1..]).map(|c| LotId(c.serial() as i64)).unwrap_or(LotId(-1))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LotCode {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<LotCode> for String {
    fn from(c: LotCode) -> String {
        c.0
    }
}

impl std::fmt::Display for LotCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A substance a lab tested the fruit for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Analyte {
    /// Cadmium (heavy metal), mg/kg.
    Cadmium,
    /// Auramine O (a banned yellow dye), mg/kg; any detection fails.
    AuramineO,
}

impl Analyte {
    /// Both analytes, in display order.
    pub const ALL: [Analyte; 2] = [Analyte::Cadmium, Analyte::AuramineO];

    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Analyte::Cadmium => "cadmium",
            Analyte::AuramineO => "auramine_o",
        }
    }

    /// The highest level that passes, in mg/kg: cadmium 0.05 mg/kg (the EU and
    /// Codex maximum for fruit), Auramine O 0 (not permitted in food at all).
    pub fn limit_mg_per_kg(self) -> f64 {
        match self {
            Analyte::Cadmium => 0.05,
            Analyte::AuramineO => 0.0,
        }
    }
}

/// One laboratory result for a lot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabResult {
    /// What was tested for.
    pub analyte: Analyte,
    /// Level found in mg/kg; `None` when not detected.
    #[serde(default)]
    pub value_mg_per_kg: Option<f64>,
    /// The laboratory's name (and accreditation, e.g. `VILAS 1234`).
    pub laboratory: String,
    /// The day of the test report.
    pub tested_on: NaiveDate,
    /// The report's number, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_no: Option<String>,
}

impl LabResult {
    /// Whether the level is within the analyte's limit ([`Analyte::limit_mg_per_kg`]).
    pub fn passed(&self) -> bool {
        match self.value_mg_per_kg {
            None => true,
            Some(v) => v <= self.analyte.limit_mg_per_kg(),
        }
    }
}

/// Which trees a lot's fruit came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotTrees {
    /// Every tree of the orchard at the time the lot is created.
    WholeOrchard,
    /// These trees (all in the lot's orchard).
    Trees(Vec<TreeId>),
}

/// A harvest lot as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLot {
    /// The orchard the fruit comes from.
    pub orchard_id: OrchardId,
    /// Which of its trees.
    pub trees: LotTrees,
    /// The day of harvest (local date in the orchard).
    pub harvest_date: NaiveDate,
    /// Net weight in kilograms.
    pub weight_kg: f64,
    /// Number of boxes (labels) packed, if known: scans beyond it are suspicious.
    #[serde(default)]
    pub boxes: Option<u32>,
    /// Packing-house code (mã số cơ sở đóng gói), e.g. `VN-DLPH-0042`.
    #[serde(default)]
    pub packing_house: Option<String>,
    /// Lab results (cadmium, Auramine O).
    #[serde(default)]
    pub lab_results: Vec<LabResult>,
    /// For the domestic market: a lot that needs no planting-area code.
    #[serde(default)]
    pub domestic: bool,
    /// The product's GTIN, when the packer has one (then the label is `/01/{gtin}/10/{lot}`).
    #[serde(default)]
    pub gtin: Option<String>,
}

/// A stored harvest lot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lot {
    /// Database id.
    pub id: LotId,
    /// Public code.
    pub code: LotCode,
    /// The orchard the fruit comes from.
    pub orchard_id: OrchardId,
    /// The trees, resolved when the lot was created (by id, ascending).
    pub tree_ids: Vec<TreeId>,
    /// Whether the lot was made for the whole orchard.
    pub whole_orchard: bool,
    /// Day of harvest.
    pub harvest_date: NaiveDate,
    /// Net weight in kilograms.
    pub weight_kg: f64,
    /// Boxes packed, if known.
    pub boxes: Option<u32>,
    /// Packing-house code.
    pub packing_house: Option<String>,
    /// Lab results.
    pub lab_results: Vec<LabResult>,
    /// For the domestic market only.
    pub domestic: bool,
    /// GTIN-14, if any.
    pub gtin: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// Their account.
    pub created_by_id: Option<UserId>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When the lot's labels were revoked (recalled, or found copied), if they were.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why.
    pub revoked_reason: Option<String>,
}

impl NewLot {
    /// Checks the values against the lot's orchard: every problem with its
    /// field and value. `today` is the caller's date. A lot for an orchard
    /// without a planting-area code must be marked `domestic`.
    pub fn validate(&self, orchard: &Orchard, today: NaiveDate) -> Result<()> {
        let mut p = Vec::new();
        if orchard.id != self.orchard_id {
            p.push(Problem::new("orchard_id", self.orchard_id.as_str(), "does not match the orchard checked"));
        }
        let has_puc = orchard.planting_area_code.as_deref().is_some_and(|c| !c.trim().is_empty());
        if !has_puc && !self.domestic {
            p.push(Problem::new(
                "domestic",
                "false",
                format!(
                    "orchard {} has no planting-area code: a lot for export needs one; mark the lot domestic",
                    orchard.id.as_str()
                ),
            ));
        }
        if self.harvest_date > today + chrono::Days::new(1) {
            p.push(Problem::new("harvest_date", self.harvest_date, "is in the future"));
        }
        if self.harvest_date < NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN) {
            p.push(Problem::new("harvest_date", self.harvest_date, "is before 2000"));
        }
        if !(self.weight_kg.is_finite() && self.weight_kg > 0.0 && self.weight_kg <= 1_000_000.0) {
            p.push(Problem::new("weight_kg", self.weight_kg, "must be more than 0 and at most 1,000,000 kg"));
        }
        if let Some(b) = self.boxes {
            if b == 0 || b > 1_000_000 {
                p.push(Problem::new("boxes", b, "must be between 1 and 1,000,000"));
            }
        }
        if let Some(ph) = &self.packing_house {
            if !gs1::valid_cset82(ph, 40) {
                p.push(Problem::new(
                    "packing_house",
                    ph,
                    "must be 1 to 40 letters, digits or - . / _ (no spaces or accents)",
                ));
            }
        }
        if let Some(g) = &self.gtin {
            if gs1::normalise_gtin(g).is_none() {
                p.push(Problem::new("gtin", g, "is not a GTIN-8, -12, -13 or -14 with a valid check digit"));
            }
        }
        if let LotTrees::Trees(ids) = &self.trees {
            if ids.is_empty() {
                p.push(Problem::new("trees", "[]", "name at least one tree, or use whole_orchard"));
            }
            if ids.len() > 100_000 {
                p.push(Problem::new("trees", ids.len(), "at most 100,000 trees a lot"));
            }
        }
        for (i, r) in self.lab_results.iter().enumerate() {
            if let Some(v) = r.value_mg_per_kg {
                if !(v.is_finite() && (0.0..=10_000.0).contains(&v)) {
                    p.push(Problem::new(format!("lab_results[{i}].value_mg_per_kg"), v, "must be 0 to 10000"));
                }
            }
            if r.laboratory.trim().is_empty() || r.laboratory.chars().count() > 200 {
                p.push(Problem::new(
                    format!("lab_results[{i}].laboratory"),
                    &r.laboratory,
                    "must be 1 to 200 characters",
                ));
            }
            if r.tested_on > today + chrono::Days::new(1) {
                p.push(Problem::new(format!("lab_results[{i}].tested_on"), r.tested_on, "is in the future"));
            }
            if let Some(n) = &r.report_no {
                if n.chars().count() > 100 {
                    p.push(Problem::new(format!("lab_results[{i}].report_no"), n, "is longer than 100 characters"));
                }
            }
        }
        if p.is_empty() { Ok(()) } else { Err(Error::Invalid(p)) }
    }
}

/// One spray record checked against a harvest date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhiCheck {
    /// The product sprayed.
    pub product: String,
    /// The last day it was sprayed on any of the lot's trees.
    pub last_sprayed: NaiveDate,
    /// Its pre-harvest interval in days.
    pub phi_days: u32,
    /// The first day harvest was allowed: `last_sprayed + phi_days`.
    pub harvest_allowed_from: NaiveDate,
    /// Whether the harvest date is on or after that day.
    pub passed: bool,
    /// How many of the lot's trees had this product sprayed within the window checked.
    pub trees: usize,
}

/// Checks the spray records of a lot's trees against its harvest date: one
/// entry per product (the latest spraying decides), products sorted by name.
/// Sprays after the harvest date are not the lot's concern and are left out;
/// a record that another corrects is replaced by the correction.
pub fn phi_checks<'a>(records: impl IntoIterator<Item = &'a TreeRecord>, harvest_date: NaiveDate) -> Vec<PhiCheck> {
    let records: Vec<&TreeRecord> = records.into_iter().collect();
    let corrected: std::collections::HashSet<_> = records.iter().filter_map(|r| r.corrects).collect();
    let mut by_product: std::collections::BTreeMap<
        String,
        (NaiveDate, u32, NaiveDate, std::collections::BTreeSet<TreeId>),
    > = std::collections::BTreeMap::new();
    for r in records {
        if corrected.contains(&r.id) || r.date > harvest_date {
            continue;
        }
        if let RecordDetails::Spray { product, phi_days, .. } = &r.details {
            let allowed = r.date + chrono::Days::new(u64::from(*phi_days));
            let key = product.trim().to_string();
            let e = by_product.entry(key).or_insert((r.date, *phi_days, allowed, Default::default()));
            if allowed > e.2 {
                e.2 = allowed;
                e.1 = *phi_days;
            }
            if r.date > e.0 {
                e.0 = r.date;
            }
            e.3.insert(r.tree_id);
        }
    }
    by_product
        .into_iter()
        .map(|(product, (last, phi, allowed, trees))| PhiCheck {
            product,
            last_sprayed: last,
            phi_days: phi,
            harvest_allowed_from: allowed,
            passed: harvest_date >= allowed,
            trees: trees.len(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::record::RecordId;

    fn orchard(puc: Option<&str>) -> Orchard {
        Orchard {
            id: OrchardId::new("EAK-001").unwrap(),
            name: "Vườn A".into(),
            owner: "Y Blang".into(),
            commune: "Ea Kao".into(),
            district: "Buôn Ma Thuột".into(),
            province: "Đắk Lắk".into(),
            planting_area_code: puc.map(str::to_string),
            gln: None,
            boundary: None,
        }
    }

    fn lot() -> NewLot {
        NewLot {
            orchard_id: OrchardId::new("EAK-001").unwrap(),
            trees: LotTrees::WholeOrchard,
            harvest_date: NaiveDate::from_ymd_opt(2026, 6, 10).unwrap(),
            weight_kg: 1200.0,
            boxes: Some(80),
            packing_house: Some("VN-DLPH-0042".into()),
            lab_results: vec![],
            domestic: false,
            gtin: None,
        }
    }

    #[test]
    fn export_lot_needs_a_planting_area_code() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 11).unwrap();
        assert!(lot().validate(&orchard(Some("VN-DLOR-0123")), today).is_ok());
        let Err(Error::Invalid(p)) = lot().validate(&orchard(None), today) else { panic!("accepted") };
        assert_eq!(p[0].field, "domestic");
        let domestic = NewLot { domestic: true, ..lot() };
        assert!(domestic.validate(&orchard(None), today).is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 11).unwrap();
        let bad = NewLot {
            weight_kg: f64::NAN,
            gtin: Some("12345678".into()),
            packing_house: Some("có dấu".into()),
            harvest_date: NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
            ..lot()
        };
        let Err(Error::Invalid(p)) = bad.validate(&orchard(Some("X")), today) else { panic!("accepted") };
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["harvest_date", "weight_kg", "packing_house", "gtin"]);
    }

    #[test]
    fn lot_codes_round_trip() {
        let c = LotCode::for_id(LotId(42)).unwrap();
        assert_eq!(c.as_str().len(), 8);
        assert!(gs1::valid_cset82(c.as_str(), MAX_LOT_CHARS));
        assert_eq!(LotCode::parse(&c.as_str().to_lowercase()).unwrap(), c);
        assert_eq!(c.id(), LotId(42));
        assert!(LotCode::parse("K7DW3QX").is_err());
    }

    fn spray(id: i64, tree: i64, date: (i32, u32, u32), product: &str, phi: u32) -> TreeRecord {
        TreeRecord {
            id: RecordId(id),
            tree_id: TreeId(tree),
            date: NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap(),
            details: RecordDetails::Spray {
                product: product.into(),
                dose: "20 ml / 16 l".into(),
                phi_days: phi,
                target: None,
            },
            note: None,
            corrects: None,
            author: "a".into(),
            author_id: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn pre_harvest_intervals() {
        let harvest = NaiveDate::from_ymd_opt(2026, 6, 10).unwrap();
        let records = vec![
            spray(1, 1, (2026, 5, 1), "Abamectin", 7),
            spray(2, 2, (2026, 6, 5), "Abamectin", 7),
            spray(3, 1, (2026, 5, 21), "Mancozeb", 21),
            spray(4, 1, (2026, 6, 20), "Copper", 7),
        ];
        let checks = phi_checks(&records, harvest);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].product, "Abamectin");
        assert!(!checks[0].passed);
        assert_eq!(checks[0].harvest_allowed_from, NaiveDate::from_ymd_opt(2026, 6, 12).unwrap());
        assert_eq!(checks[0].trees, 2);
        assert_eq!(checks[1].product, "Mancozeb");
        assert!(!checks[1].passed);
        let later = phi_checks(&records, NaiveDate::from_ymd_opt(2026, 6, 12).unwrap());
        assert!(later[0].passed);
        let mut corrected = spray(5, 2, (2026, 5, 1), "Abamectin", 7);
        corrected.corrects = Some(RecordId(2));
        let mut all = records.clone();
        all.push(corrected);
        assert!(phi_checks(&all, harvest)[0].passed);
    }
}
