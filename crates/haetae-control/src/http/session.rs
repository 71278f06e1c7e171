//! Who is calling: the [`Principal`] extractor (session cookie or API token), with the CSRF
//! check for state-changing calls made with a session, and login/logout.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::{self, Permission};
use crate::store::now_micros;
use crate::store::users::User;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "haetae_session";
/// The header the UI sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session.
    Session {
        /// The digest the session is stored under.
        token_hash: String,
        /// The session's CSRF token.
        csrf_token: String,
    },
    /// An API token (no CSRF: a token is never sent by a browser on its own).
    Token,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// How the audit log names them: the user name, or `name (token tokenname)`.
    pub actor: String,
    /// Session or token.
    pub via: Via,
}

impl Principal {
    /// `Ok` when the role grants `permission`; a 403 naming the action otherwise.
    pub fn require(&self, permission: Permission, what: &str) -> Result<(), ApiError> {
        if self.user.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(what))
        }
    }

    /// The CSRF token to put in pages (empty for token callers).
    #[must_use]
    pub fn csrf_token(&self) -> &str {
        match &self.via {
            Via::Session { csrf_token, .. } => csrf_token,
            Via::Token => "",
        }
    }
}

/// The value of one cookie.
#[must_use]
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Finds the caller of a request without the CSRF check (pages use it for GETs).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    let now = now_micros();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthenticated)?;
        let found = state
            .store
            .api_token_user(&auth::digest(token), now)
            .await?;
        return match found {
            Some((user, name)) if !user.disabled => Ok(Some(Principal {
                actor: format!("{} (token {name})", user.username),
                user,
                via: Via::Token,
            })),
            _ => Err(ApiError::unauthenticated()),
        };
    }
    let Some(session_id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let token_hash = auth::digest(session_id);
    let Some(session) = state.store.session(&token_hash).await? else {
        return Ok(None);
    };
    if session.expires_at < now
        || session.last_seen + auth::SESSION_IDLE_MICROS < now
        || session.user.disabled
    {
        state.store.delete_session(&token_hash).await?;
        return Ok(None);
    }
    // Touch at most once a minute: the idle limit is coarse, writes are not free.
    if now - session.last_seen > 60_000_000 {
        state.store.touch_session(&token_hash, now).await?;
    }
    Ok(Some(Principal {
        actor: session.user.username.clone(),
        user: session.user,
        via: Via::Session {
            token_hash,
            csrf_token: session.csrf_token,
        },
    }))
}

/// Whether the request carries the session's CSRF token in [`CSRF_HEADER`].
#[must_use]
pub fn csrf_ok(principal: &Principal, headers: &HeaderMap, form_token: Option<&str>) -> bool {
    match &principal.via {
        Via::Token => true,
        Via::Session { csrf_token, .. } => {
            let sent = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .or(form_token);
            sent.is_some_and(|s| auth::secrets_equal(s, csrf_token))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Principal, ApiError> {
        let principal = authenticate(state, &parts.headers)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !csrf_ok(&principal, &parts.headers, None) {
            return Err(ApiError::csrf());
        }
        Ok(principal)
    }
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in: the session id for the cookie and the CSRF token.
    Success {
        /// The session id (the cookie's value; stored only as a digest).
        session_id: String,
        /// The CSRF token.
        csrf_token: String,
        /// The user.
        user: User,
    },
    /// Wrong name or password (the answer does not say which).
    Refused,
    /// Too many failures: locked for a while.
    Locked,
    /// The password was right, but the account has a TOTP second factor and no code (or
    /// recovery code) came with it.
    SecondFactorRequired,
}

/// Checks a name and password, applies the lockout, opens a session and audits the
/// attempt. Takes the same time for unknown names as for wrong passwords.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    otp: Option<&str>,
    client: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<LoginOutcome, ApiError> {
    let now = now_micros();
    let user = state.store.user_by_name(username).await?;
    let Some(user) = user else {
        let _ = auth::verify_password(password, auth::decoy_hash());
        state
            .store
            .append_audit(
                "anonymous",
                "auth.login_failed",
                username,
                &json!({ "reason": "unknown user", "client": client }),
            )
            .await?;
        return Ok(LoginOutcome::Refused);
    };
    if user.locked_until.is_some_and(|t| t > now) {
        let _ = auth::verify_password(password, auth::decoy_hash());
        state
            .store
            .append_audit(
                &user.username,
                "auth.login_locked",
                &user.username,
                &json!({ "client": client }),
            )
            .await?;
        return Ok(LoginOutcome::Locked);
    }
    let hash = user.password_hash.clone();
    let pw = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash))
        .await
        .unwrap_or(false);
    if !ok || user.disabled {
        let failures = state
            .store
            .record_failed_login(user.id, auth::LOCKOUT_THRESHOLD, now + auth::LOCKOUT_MICROS)
            .await?;
        let locked = failures >= auth::LOCKOUT_THRESHOLD;
        state
            .store
            .append_audit(
                &user.username,
                "auth.login_failed",
                &user.username,
                &json!({ "reason": if user.disabled { "disabled" } else { "wrong password" }, "failures": failures, "locked": locked, "client": client }),
            )
            .await?;
        return Ok(if locked {
            LoginOutcome::Locked
        } else {
            LoginOutcome::Refused
        });
    }
    let totp = state.store.totp_state(user.id).await?;
    if let Some(secret_hex) = &totp.secret {
        let Some(code) = otp.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(LoginOutcome::SecondFactorRequired);
        };
        let secret = hex::decode(secret_hex).unwrap_or_default();
        let now_s = now / 1_000_000;
        let accepted = match crate::totp::verify(&secret, code, now_s, totp.last_step) {
            Some(step) => state.store.claim_totp_step(user.id, step).await?,
            None => {
                let normal = crate::totp::normalize_recovery_code(code);
                normal.len() == 10
                    && state
                        .store
                        .use_recovery_code(user.id, &auth::digest(&normal))
                        .await?
            }
        };
        if !accepted {
            let failures = state
                .store
                .record_failed_login(user.id, auth::LOCKOUT_THRESHOLD, now + auth::LOCKOUT_MICROS)
                .await?;
            let locked = failures >= auth::LOCKOUT_THRESHOLD;
            state
                .store
                .append_audit(
                    &user.username,
                    "auth.login_failed",
                    &user.username,
                    &json!({ "reason": "wrong second factor", "failures": failures, "locked": locked, "client": client }),
                )
                .await?;
            return Ok(if locked {
                LoginOutcome::Locked
            } else {
                LoginOutcome::Refused
            });
        }
    }
    // A remote-support agent logs in only from the networks an administrator allowed. The
    // refusal is a failed login in every respect (same answer, same count towards the
    // lockout), so that it tells an outsider nothing about the password; the reason goes to
    // the audit log only.
    if user.role == auth::Role::Agent {
        let rules = crate::remote::rules_for(&state.store, &user).await?;
        if !crate::remote::network_allows(&rules.networks, ip) {
            let failures = state
                .store
                .record_failed_login(user.id, auth::LOCKOUT_THRESHOLD, now + auth::LOCKOUT_MICROS)
                .await?;
            let locked = failures >= auth::LOCKOUT_THRESHOLD;
            state
                .store
                .append_audit(
                    &user.username,
                    "auth.login_refused",
                    &user.username,
                    &json!({ "reason": "address not in the agent's allowlist", "address": ip.map(|i| i.to_string()), "failures": failures, "locked": locked, "client": client }),
                )
                .await?;
            return Ok(if locked {
                LoginOutcome::Locked
            } else {
                LoginOutcome::Refused
            });
        }
    }
    state.store.clear_failed_logins(user.id).await?;
    let session_id = auth::new_secret();
    let csrf_token = auth::new_secret();
    state
        .store
        .create_session(
            &auth::digest(&session_id),
            user.id,
            &csrf_token,
            now,
            now + auth::SESSION_MAX_MICROS,
        )
        .await?;
    state
        .store
        .append_audit(
            &user.username,
            "auth.login",
            &user.username,
            &json!({ "client": client }),
        )
        .await?;
    Ok(LoginOutcome::Success {
        session_id,
        csrf_token,
        user,
    })
}

/// The `Set-Cookie` value that opens a session.
#[must_use]
pub fn session_cookie(session_id: &str, secure: bool) -> String {
    let max_age = auth::SESSION_MAX_MICROS / 1_000_000;
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

/// The `Set-Cookie` value that ends a session.
#[must_use]
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}
