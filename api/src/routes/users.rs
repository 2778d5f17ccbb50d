//! Accounts over HTTP (admins only) and `GET /api/me`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use geo_core::{OrchardId, Role, User};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Caller, new_token, require_admin};
use crate::error::{AppError, Result};

/// An account as shown (never its token or the token's hash).
fn shown(user: &User) -> serde_json::Value {
    json!({
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "orchards": user.orchards,
        "created_at": user.created_at,
        "revoked_at": user.revoked_at,
    })
}

/// `GET /api/me`: the signed-in account.
pub async fn me(caller: Caller) -> Result<Response> {
    let user = caller.require()?;
    Ok(Json(shown(&user)).into_response())
}

/// `GET /api/users` (admin): every account, revoked ones included.
pub async fn list_users(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    require_admin(caller)?;
    let users = state.store.users().await?;
    Ok(Json(json!({ "users": users.iter().map(shown).collect::<Vec<_>>() })).into_response())
}

/// Body of `POST /api/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
    #[serde(default)]
    orchards: Vec<String>,
}

/// `POST /api/users` (admin): creates an account; the token is in the answer
/// and nowhere else, ever.
pub async fn create_user(State(state): State<AppState>, caller: Caller, body: axum::body::Bytes) -> Result<Response> {
    require_admin(caller)?;
    let body: NewUser =
        serde_json::from_slice(&body).map_err(|e| AppError::bad("body", format!("is not a new account: {e}")))?;
    let role: Role = body
        .role
        .parse()
        .map_err(|_| AppError::bad("role", format!("{:?} is not one of admin, volunteer, farmer", body.role)))?;
    let mut orchards = Vec::with_capacity(body.orchards.len());
    for o in &body.orchards {
        orchards.push(
            OrchardId::new(o.as_str()).map_err(|_| AppError::bad("orchards", format!("{o:?} is not an orchard id")))?,
        );
    }
    if role == Role::Farmer && orchards.is_empty() {
        return Err(AppError::bad("orchards", "a farmer account needs at least one orchard"));
    }
    let (token, hash) = new_token();
    let user = match state.store.create_user(body.name.trim(), role, &orchards, &hash).await {
        Err(store::Error::Invalid { field: "name", reason }) => {
            return Err(AppError::Conflict(format!("name: {reason}")));
        }
        other => other?,
    };
    Ok((StatusCode::CREATED, Json(json!({ "user": shown(&user), "token": token }))).into_response())
}

/// `DELETE /api/users/{name}` (admin): revokes the account's token at once.
pub async fn revoke_user(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> Result<Response> {
    require_admin(caller)?;
    let user = state
        .store
        .revoke_user(&name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no account named {name:?}")))?;
    // Revoked here: stop trusting any cached token at once, not after TOKEN_TTL.
    state.tokens.clear();
    Ok(Json(shown(&user)).into_response())
}
