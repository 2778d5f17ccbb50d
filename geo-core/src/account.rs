//! People who use the API: accounts, roles and what each role may do.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::OrchardId;

/// Database id of a user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What an account may do.
///
/// - `Admin`: everything, users included.
/// - `Volunteer`: create and update trees and orchards, import surveys, add records.
/// - `Farmer`: only within the orchards assigned to them: care and harvest
///   records and the status (health) of their trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Administrator.
    Admin,
    /// Field volunteer.
    Volunteer,
    /// Farmer, limited to their orchards.
    Farmer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Volunteer, Role::Farmer];

    /// The lower-case name (`admin`, `volunteer`, `farmer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Volunteer => "volunteer",
            Role::Farmer => "farmer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "volunteer" => Ok(Role::Volunteer),
            "farmer" => Ok(Role::Farmer),
            _ => Err(Error::Parse {
                field: "role",
                value: s.to_string(),
                reason: "must be one of admin, volunteer, farmer".into(),
            }),
        }
    }
}

/// A user account. The API token itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Database id.
    pub id: UserId,
    /// Display name, unique among accounts.
    pub name: String,
    /// What the account may do.
    pub role: Role,
    /// Orchards assigned to the account (meaningful for farmers), sorted.
    pub orchards: Vec<OrchardId>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When its token was revoked; a revoked account authenticates no request.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl User {
    /// Whether the account may still authenticate.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// Whether the account may write to trees of `orchard` (records, status).
    /// Admins and volunteers may write anywhere; farmers only in their orchards.
    pub fn may_tend(&self, orchard: &OrchardId) -> bool {
        match self.role {
            Role::Admin | Role::Volunteer => true,
            Role::Farmer => self.orchards.binary_search(orchard).is_ok(),
        }
    }

    /// Whether the account may create trees, move them, change their
    /// attributes, remove them, edit orchards and import surveys.
    pub fn may_survey(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Volunteer)
    }

    /// Whether the account may manage users and everything else.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Who made a change, as recorded in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The account, when the change came through the API or the CLI with one.
    pub user_id: Option<UserId>,
    /// The account's name, or a description such as `import` or `cli`.
    pub name: String,
}

impl Actor {
    /// The actor for a signed-in user.
    pub fn user(user: &User) -> Self {
        Self { user_id: Some(user.id), name: user.name.clone() }
    }

    /// An actor that is not an account (the command line, a system task).
    pub fn system(name: impl Into<String>) -> Self {
        Self { user_id: None, name: name.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, orchards: &[&str]) -> User {
        let mut orchards: Vec<OrchardId> = orchards.iter().map(|o| OrchardId::new(*o).unwrap()).collect();
        orchards.sort();
        User { id: UserId(1), name: "a".into(), role, orchards, created_at: Utc::now(), revoked_at: None }
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert_eq!(" Admin ".parse::<Role>().unwrap(), Role::Admin);
        let err = "owner".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("owner"), "{err}");
    }

    #[test]
    fn farmers_tend_only_their_orchards() {
        let a = OrchardId::new("A").unwrap();
        let b = OrchardId::new("B").unwrap();
        let farmer = user(Role::Farmer, &["B", "A"]);
        let farmer = User { orchards: vec![a.clone(), b.clone()], ..farmer };
        assert!(farmer.may_tend(&a) && farmer.may_tend(&b));
        assert!(!farmer.may_tend(&OrchardId::new("C").unwrap()));
        assert!(!farmer.may_survey() && !farmer.is_admin());
        let volunteer = user(Role::Volunteer, &[]);
        assert!(volunteer.may_tend(&a) && volunteer.may_survey() && !volunteer.is_admin());
        let admin = user(Role::Admin, &[]);
        assert!(admin.may_tend(&a) && admin.may_survey() && admin.is_admin());
    }
}
