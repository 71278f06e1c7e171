//! `/api/v1/account/totp`: the caller's own TOTP second factor (enrol, confirm, turn off),
//! and `/api/v1/users/{username}/totp` for an admin to reset someone's (lost phone).
//! Every step is in the audit log; secrets and codes never are.

// utoipa's `params(...)` expansion writes fully qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ErrorBody};
use super::session::Principal;
use super::state::AppState;
use crate::auth::{self, Permission};
use crate::store::now_micros;
use crate::totp;

type ApiResult<T> = Result<T, ApiError>;

/// The caller's second-factor state.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpStatus {
    /// Whether logins need a code.
    pub enabled: bool,
    /// Whether an enrolment waits for its first code.
    pub pending: bool,
    /// Unused recovery codes left.
    pub recovery_left: i64,
}

/// Whether the caller has a second factor.
#[utoipa::path(get, path = "/api/v1/account/totp", tag = "session",
    responses((status = 200, body = TotpStatus), (status = 401, body = ErrorBody)))]
pub async fn totp_status(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<TotpStatus>> {
    let s = state.store.totp_state(p.user.id).await?;
    Ok(Json(TotpStatus {
        enabled: s.secret.is_some(),
        pending: s.pending.is_some(),
        recovery_left: s.recovery_left,
    }))
}

/// A new secret for the authenticator app (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// The secret in Base32, for typing into the app.
    pub secret: String,
    /// The same as an `otpauth://` URI.
    pub otpauth_uri: String,
    /// The URI as a QR code: a standalone SVG document (black modules on white, quiet zone
    /// included) for the app to scan.
    pub qr_svg: String,
}

/// Starts enrolment: a new pending secret. Logins do not need a code until it is
/// confirmed.
#[utoipa::path(post, path = "/api/v1/account/totp", tag = "session",
    responses((status = 200, body = TotpEnrolment), (status = 409, body = ErrorBody)))]
pub async fn totp_start(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<TotpEnrolment>> {
    if state.store.totp_state(p.user.id).await?.secret.is_some() {
        return Err(ApiError::conflict(
            "totp",
            "the second factor is on already; turn it off first to enrol a new device",
        ));
    }
    let secret =
        totp::new_secret().map_err(|e| ApiError::invalid("totp", format!("no randomness: {e}")))?;
    let otpauth_uri = totp::otpauth_uri(&p.user.username, &secret);
    // A user name is at most 64 bytes, so the URI always fits a QR code; should it not,
    // the enrolment fails before anything is stored.
    let qr_svg = crate::qr::svg(&otpauth_uri, "otpauth QR code")
        .map_err(|e| ApiError::invalid("totp", e.to_string()))?;
    state
        .store
        .set_totp_pending(p.user.id, &hex::encode(&secret))
        .await?;
    state
        .store
        .append_audit(&p.actor, "totp.enrol", &p.user.username, &json!({}))
        .await?;
    Ok(Json(TotpEnrolment {
        secret: totp::base32_encode(&secret),
        otpauth_uri,
        qr_svg,
    }))
}

/// A code from the authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// The 6-digit code.
    pub code: String,
}

/// The recovery codes, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each works once instead of a code.
    pub recovery_codes: Vec<String>,
}

fn now_seconds() -> i64 {
    now_micros() / 1_000_000
}

/// Confirms enrolment with a code from the app; turns the second factor on and returns
/// new recovery codes.
#[utoipa::path(post, path = "/api/v1/account/totp/confirm", tag = "session", request_body = TotpCode,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn totp_confirm(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<TotpCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    let s = state.store.totp_state(p.user.id).await?;
    let Some(pending) = s.pending else {
        return Err(ApiError::conflict(
            "code",
            "no enrolment is waiting: start one with POST /api/v1/account/totp",
        ));
    };
    let secret = hex::decode(&pending).unwrap_or_default();
    let Some(step) = totp::verify(&secret, &req.code, now_seconds(), None) else {
        return Err(ApiError::invalid(
            "code",
            "wrong code: check the app's clock and enter the current 6-digit code",
        ));
    };
    let codes = totp::new_recovery_codes()
        .map_err(|e| ApiError::invalid("code", format!("no randomness: {e}")))?;
    let digests: Vec<String> = codes
        .iter()
        .map(|c| auth::digest(&totp::normalize_recovery_code(c)))
        .collect();
    state
        .store
        .enable_totp(p.user.id, &pending, step, &digests)
        .await?;
    state
        .store
        .append_audit(&p.actor, "totp.enable", &p.user.username, &json!({}))
        .await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turning the second factor off: the password and a current code (or recovery code).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisable {
    /// The account's password.
    pub password: String,
    /// A current code or an unused recovery code.
    pub code: String,
}

/// Turns the caller's second factor off.
#[utoipa::path(post, path = "/api/v1/account/totp/disable", tag = "session", request_body = TotpDisable,
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn totp_disable(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<TotpDisable>,
) -> ApiResult<StatusCode> {
    if req.password.len() > auth::MAX_PASSWORD_LEN || req.code.len() > 64 {
        return Err(ApiError::invalid("password", "too long"));
    }
    let s = state.store.totp_state(p.user.id).await?;
    let Some(secret_hex) = s.secret else {
        return Err(ApiError::conflict("code", "the second factor is off"));
    };
    let hash = p.user.password_hash.clone();
    let pw = req.password.clone();
    let password_ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash))
        .await
        .unwrap_or(false);
    if !password_ok {
        return Err(ApiError::invalid("password", "wrong password or code"));
    }
    let secret = hex::decode(&secret_hex).unwrap_or_default();
    let code_ok = match totp::verify(&secret, &req.code, now_seconds(), s.last_step) {
        Some(step) => state.store.claim_totp_step(p.user.id, step).await?,
        None => {
            let normal = totp::normalize_recovery_code(&req.code);
            normal.len() == 10
                && state
                    .store
                    .use_recovery_code(p.user.id, &auth::digest(&normal))
                    .await?
        }
    };
    if !code_ok {
        return Err(ApiError::invalid("code", "wrong password or code"));
    }
    state.store.disable_totp(p.user.id).await?;
    state
        .store
        .append_audit(&p.actor, "totp.disable", &p.user.username, &json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resets a user's second factor (admins; for a lost device).
#[utoipa::path(delete, path = "/api/v1/users/{username}/totp", tag = "users", params(("username" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn totp_reset(
    State(state): State<AppState>,
    p: Principal,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    p.require(Permission::ManageUsers, "reset second factors")?;
    let Some(user) = state.store.user_by_name(&username).await? else {
        return Err(ApiError::not_found(format!("no user {username:?}")));
    };
    state.store.disable_totp(user.id).await?;
    state
        .store
        .append_audit(&p.actor, "totp.reset", &username, &json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
