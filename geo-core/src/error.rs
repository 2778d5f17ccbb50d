//! Errors and validation problems.

use std::fmt;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem found in a record: which field, which value, and why it is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// The field name, as it appears in the API and the sample CSV (`lat`, `cultivar`, ...).
    pub field: String,
    /// The offending value as text (empty when the value is missing).
    pub value: String,
    /// Why the value is not acceptable, in plain words.
    pub reason: String,
}

impl Problem {
    /// A problem with `field` holding `value`.
    pub fn new(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        Self { field: field.into(), value: value.to_string(), reason: reason.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.field, self.reason)
        } else {
            write!(f, "{} {}: {}", self.field, self.value, self.reason)
        }
    }
}

/// Errors raised by the domain types.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record failed validation; every problem is listed.
    #[error("invalid record: {}", join(.0))]
    Invalid(Vec<Problem>),
    /// A tag code could not be parsed.
    #[error("tree code {value:?}: {reason}")]
    BadCode {
        /// What was given.
        value: String,
        /// Why it is not a valid code.
        reason: &'static str,
    },
    /// A value could not be parsed into a domain type.
    #[error("{field} {value:?}: {reason}")]
    Parse {
        /// The field being parsed.
        field: &'static str,
        /// What was given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

fn join(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
