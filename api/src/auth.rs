//! Who is calling: bearer tokens, accounts and the rights of each role.
//!
//! A token is `om_` followed by 43 base64url characters (32 random bytes). The
//! database keeps only its SHA-256; a request's token is hashed and looked up
//! by that hash, so no comparison ever runs on the secret itself (the time a
//! lookup takes can only depend on a hash the caller cannot steer). A missing token
//! makes the caller [`Caller::Anonymous`] (public data only); a malformed,
//! unknown or revoked one is 401, whatever the route.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use geo_core::{Actor, OrchardId, User};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;

/// Prefix of every API token (lets secret scanners recognise leaked tokens).
pub const TOKEN_PREFIX: &str = "om_";

/// A new random API token and its SHA-256 (what the database keeps).
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", base64url(&bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a token as presented.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_PREFIX.len() + 43
        && token.starts_with(TOKEN_PREFIX)
        && token[TOKEN_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How long a checked token is trusted without asking the database again: a
/// token revoked by another process (the CLI, another server) stops working
/// within this time; one revoked through this server's API at once.
pub const TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// When a token was looked up, and the account it named (`None`: unknown).
type CachedToken = (std::time::Instant, Option<User>);

/// Accounts of recently presented tokens, by token hash, each for [`TOKEN_TTL`].
/// Saves a database round trip per authenticated request (profiling the mixed
/// load showed that lookup as the largest server cost). Bounded: cleared
/// whole when it reaches 10,000 entries.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedToken>>,
}

impl TokenCache {
    const MAX: usize = 10_000;

    fn get(&self, hash: &[u8; 32]) -> Option<Option<User>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (at, user) = entries.get(hash)?;
        (at.elapsed() < TOKEN_TTL).then(|| user.clone())
    }

    /// The account last seen for this token, however long ago (used only while the database is unreachable).
    fn stale(&self, hash: &[u8; 32]) -> Option<Option<User>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(hash).map(|(_, user)| user.clone())
    }

    fn put(&self, hash: [u8; 32], user: Option<User>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert(hash, (std::time::Instant::now(), user));
    }

    /// Forgets every cached token (after an account changed here).
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No `Authorization` header: public data only.
    Anonymous,
    /// A valid token of an active account.
    User(User),
}

impl Caller {
    /// The account, or 401 for an anonymous caller.
    pub fn require(self) -> Result<User, AppError> {
        match self {
            Caller::User(u) => Ok(u),
            Caller::Anonymous => {
                Err(AppError::Unauthorized("this needs an API token: Authorization: Bearer om_...".into()))
            }
        }
    }

    /// The account when signed in.
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::User(u) => Some(u),
            Caller::Anonymous => None,
        }
    }

    /// Whether private fields (orchard owners) may be shown: to any signed-in account.
    pub fn sees_private(&self) -> bool {
        matches!(self, Caller::User(_))
    }
}

/// Middleware: a request carrying `Authorization` is authenticated before any
/// route sees it, so a bad, unknown or revoked token gets 401 on every route
/// (public ones included) and counts as a failed sign-in for its address.
/// The caller is left in the request's extensions for [`Caller`].
pub async fn authenticate(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !request.headers().contains_key(AUTHORIZATION) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    match identify(&parts, &state).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(axum::extract::Request::from_parts(parts, body)).await
        }
        Err(e) => {
            if matches!(e, AppError::Unauthorized(_)) {
                let ip =
                    crate::middleware::client_ip(&parts.headers, &parts.extensions, state.hygiene.trust_forwarded_for);
                state.auth_failures.record_failure(ip);
            }
            e.into_response()
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        identify(parts, state).await
    }
}

async fn identify(parts: &Parts, state: &AppState) -> Result<Caller, AppError> {
    {
        let Some(value) = parts.headers.get(AUTHORIZATION) else { return Ok(Caller::Anonymous) };
        let fail = |message: &str| AppError::Unauthorized(message.to_string());
        let Ok(value) = value.to_str() else { return Err(fail("the Authorization header is not readable text")) };
        let Some(token) = value.strip_prefix("Bearer ").map(str::trim) else {
            return Err(fail("the Authorization header must be 'Bearer <token>'"));
        };
        if !well_formed(token) {
            return Err(fail("the token is not an orchardmap API token"));
        }
        let hash = token_hash(token);
        let user = match state.tokens.get(&hash) {
            Some(user) => user,
            None => match state.store.user_by_token(&hash).await {
                Ok(user) => {
                    state.tokens.put(hash, user.clone());
                    user
                }
                // The database is unreachable: a token checked before keeps signing in (reads go on from
                // memory; writes fail on their own with 503 until the database is back).
                Err(e) if e.is_unavailable() => state.tokens.stale(&hash).ok_or_else(|| AppError::from(e))?,
                Err(e) => return Err(e.into()),
            },
        };
        match user {
            Some(user) if user.is_active() => Ok(Caller::User(user)),
            Some(_) => Err(fail("this token was revoked")),
            None => Err(fail("unknown token")),
        }
    }
}

/// The right a request needs, checked against the caller.
pub fn require_surveyor(caller: Caller) -> Result<User, AppError> {
    let user = caller.require()?;
    if user.may_survey() {
        Ok(user)
    } else {
        Err(AppError::Forbidden(format!(
            "a {} account cannot do this; it needs a volunteer or admin account",
            user.role
        )))
    }
}

/// The caller must be an admin.
pub fn require_admin(caller: Caller) -> Result<User, AppError> {
    let user = caller.require()?;
    if user.is_admin() {
        Ok(user)
    } else {
        Err(AppError::Forbidden(format!("a {} account cannot do this; it needs an admin account", user.role)))
    }
}

/// The caller must be allowed to tend trees of `orchard` (records, status).
pub fn require_tender(caller: Caller, orchard: &OrchardId) -> Result<User, AppError> {
    let user = caller.require()?;
    if user.may_tend(orchard) {
        Ok(user)
    } else {
        Err(AppError::Forbidden(format!("orchard {orchard} is not assigned to account {}", user.name)))
    }
}

/// The actor recorded in history for `user`.
pub fn actor(user: &User) -> Actor {
    Actor::user(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert!(well_formed(&a) && well_formed(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), ha);
        assert_ne!(ha, hb);
        assert!(!well_formed("om_short") && !well_formed(&a.replace("om_", "xx_")));
    }

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
