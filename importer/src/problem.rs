//! Problems found in one row or one feature.

use std::fmt;

use serde::Serialize;

/// Longest value kept in a problem, in characters; longer values are cut with `…`.
const MAX_VALUE_CHARS: usize = 80;

/// Keeps a value short enough for a message.
pub(crate) fn shorten(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_VALUE_CHARS).collect();
    if chars.next().is_some() { format!("{head}…") } else { head }
}

/// What a problem means for its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The row is imported; someone should look at the value.
    Warning,
    /// The row is not imported.
    Rejected,
}

/// One problem in one row of a CSV file (or one feature, waypoint or
/// placemark of a [`SurveySource`](crate::SurveySource)).
///
/// Displays as `survey.csv line 57: lat 1270.5: latitude must be within -90..90`
/// (warnings as `survey.csv line 12: warning: cultivar Ri 7: ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    /// The file's name, as given to the reader.
    pub file: String,
    /// 1-based physical line where the row starts (the header is line 1).
    /// For GeoJSON, GPX and KML records read by a
    /// [`SurveySource`](crate::SurveySource) this is the 0-based feature
    /// index ([`RecordAt::number`](crate::RecordAt::number)); the record's
    /// [`RecordAt`](crate::RecordAt) says which.
    pub line: u64,
    /// The column (canonical name such as `lat`), `location` for the position
    /// as a whole, or `row` for the row's shape.
    pub field: String,
    /// The offending value as written (empty when missing; long values are cut).
    pub value: String,
    /// Why it is not acceptable.
    pub reason: String,
    /// Whether the row was rejected or only flagged.
    pub severity: Severity,
}

impl RowProblem {
    /// True when the row was not imported because of this problem.
    pub fn is_rejected(&self) -> bool {
        self.severity == Severity::Rejected
    }

    /// The problem as a domain [`geo_core::Problem`] (field, value, reason).
    pub fn to_problem(&self) -> geo_core::Problem {
        geo_core::Problem::new(self.field.clone(), &self.value, self.reason.clone())
    }
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: ", self.file, self.line)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if self.value.is_empty() {
            write!(f, "{}: {}", self.field, self.reason)
        } else {
            write!(f, "{} {}: {}", self.field, self.value, self.reason)
        }
    }
}

/// One problem in one feature of a GeoJSON file.
///
/// Displays as `orchards.geojson: features[3] (DL-CK-EATIEU-004): planting_area_code VN DL: must be ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeatureProblem {
    /// The file's name, as given to the reader.
    pub file: String,
    /// 0-based index in the `features` array.
    pub index: usize,
    /// The orchard id, when the feature has a readable one.
    pub id: Option<String>,
    /// The property (`id`, `name`, ...), `geometry`, or `boundary` for the polygon's shape.
    pub field: String,
    /// The offending value (empty when missing; long values are cut).
    pub value: String,
    /// Why it is not acceptable (or, for a warning, what was done).
    pub reason: String,
}

impl FeatureProblem {
    /// The problem without the file name (used inside [`Error::InvalidFeatures`](crate::Error::InvalidFeatures)).
    pub fn describe(&self) -> String {
        let mut out = format!("features[{}]", self.index);
        if let Some(id) = &self.id {
            out.push_str(&format!(" ({id})"));
        }
        if self.value.is_empty() {
            out.push_str(&format!(": {}: {}", self.field, self.reason));
        } else {
            out.push_str(&format!(": {} {}: {}", self.field, self.value, self.reason));
        }
        out
    }
}

impl fmt::Display for FeatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        assert_eq!(shorten("abc"), "abc");
        let long = "ạ".repeat(200);
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn display_reads_like_a_compiler_message() {
        let p = RowProblem {
            file: "survey.csv".into(),
            line: 57,
            field: "lat".into(),
            value: "1270.5".into(),
            reason: "latitude must be within -90..90".into(),
            severity: Severity::Rejected,
        };
        assert_eq!(p.to_string(), "survey.csv line 57: lat 1270.5: latitude must be within -90..90");
        let w = RowProblem { severity: Severity::Warning, value: String::new(), ..p };
        assert_eq!(w.to_string(), "survey.csv line 57: warning: lat: latitude must be within -90..90");
        let f = FeatureProblem {
            file: "o.geojson".into(),
            index: 3,
            id: Some("DL-1".into()),
            field: "name".into(),
            value: String::new(),
            reason: "is required".into(),
        };
        assert_eq!(f.to_string(), "o.geojson: features[3] (DL-1): name: is required");
    }
}
