//! `/api/v1/alerts`, `/api/v1/alert-rules` and `/api/v1/notifiers`.
//!
//! Reading alerts and rules needs `Read`; changing rules and acknowledging alerts needs
//! `EditPolicy`; notifiers (where event data leaves the Center, with their secrets) are for
//! admins only. Every change is in the audit log (secrets never are).

// utoipa's `params(...)` expansion writes fully qualified paths.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use super::session::Principal;
use super::state::AppState;
use crate::alerts::notify::{Notifier, NotifierStats};
use crate::alerts::{Alert, AlertRule, MAX_NOTIFIERS, MAX_RULES};
use crate::auth::Permission;

type ApiResult<T> = Result<T, ApiError>;

/// Alert page parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AlertQuery {
    /// 1..=500, default 100.
    pub limit: Option<u32>,
    /// Only alerts older than this time (microseconds since the epoch).
    pub before: Option<i64>,
}

/// Raised alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, body = [Alert]), (status = 400, body = ErrorBody)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<Vec<Alert>>> {
    p.require(Permission::Read, "see alerts")?;
    Ok(Json(
        state.store.alerts(q.limit.unwrap_or(100), q.before).await?,
    ))
}

/// Acknowledges an alert.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn ack_alert(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.require(Permission::EditPolicy, "acknowledge alerts")?;
    if id.len() > 64 || !state.store.acknowledge_alert(&id, &p.user.username).await? {
        return Err(ApiError::not_found(format!(
            "no unacknowledged alert {id:?}"
        )));
    }
    state
        .store
        .append_audit(&p.actor, "alert.ack", &id, &json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Alert rules.
#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "alerts",
    responses((status = 200, body = [AlertRule])))]
pub async fn list_rules(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<AlertRule>>> {
    p.require(Permission::Read, "see alert rules")?;
    Ok(Json(state.store.alert_rules().await?))
}

fn check_id(path_id: &str, body_id: &str) -> ApiResult<()> {
    if path_id != body_id {
        return Err(ApiError::invalid(
            "id",
            format!("the body's id {body_id:?} differs from the path's {path_id:?}"),
        ));
    }
    Ok(())
}

/// Creates or replaces an alert rule.
#[utoipa::path(put, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = String, Path)), request_body = AlertRule,
    responses((status = 200, body = AlertRule), (status = 400, body = ErrorBody)))]
pub async fn put_rule(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(rule): ApiJson<AlertRule>,
) -> ApiResult<Json<AlertRule>> {
    p.require(Permission::EditPolicy, "change alert rules")?;
    check_id(&id, &rule.id)?;
    rule.validate()
        .map_err(|e| ApiError::invalid(&e.field, e.message))?;
    let notifiers = state.store.notifiers().await?;
    for (i, n) in rule.notify.iter().enumerate() {
        if !notifiers.iter().any(|x| &x.id == n) {
            return Err(ApiError::invalid(
                &format!("notify[{i}]"),
                format!("no notifier {n:?}"),
            ));
        }
    }
    let rules = state.store.alert_rules().await?;
    if rules.len() >= MAX_RULES && !rules.iter().any(|r| r.id == rule.id) {
        return Err(ApiError::invalid(
            "id",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    state.store.put_alert_rule(&rule).await?;
    state
        .store
        .append_audit(
            &p.actor,
            "alert-rule.put",
            &rule.id,
            &serde_json::to_value(&rule).unwrap_or_default(),
        )
        .await?;
    state.alerts.reload(&state.store).await?;
    Ok(Json(rule))
}

/// Deletes an alert rule.
#[utoipa::path(delete, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.require(Permission::EditPolicy, "change alert rules")?;
    if !state.store.delete_alert_rule(&id).await? {
        return Err(ApiError::not_found(format!("no alert rule {id:?}")));
    }
    state
        .store
        .append_audit(&p.actor, "alert-rule.delete", &id, &json!({}))
        .await?;
    state.alerts.reload(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A notifier as the API shows it: no secret, whether one is set, and delivery counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotifierView {
    /// The configuration, with `secret` left out.
    #[serde(flatten)]
    pub notifier: Notifier,
    /// Whether a secret (HMAC key, HEC token) is set.
    pub has_secret: bool,
    /// Delivery counters since this Center started (absent when disabled).
    pub stats: Option<NotifierStats>,
}

fn view(mut n: Notifier, stats: Option<NotifierStats>) -> NotifierView {
    let has_secret = n.secret.take().is_some();
    NotifierView {
        notifier: n,
        has_secret,
        stats,
    }
}

/// Notifiers (admins only).
#[utoipa::path(get, path = "/api/v1/notifiers", tag = "alerts",
    responses((status = 200, body = [NotifierView]), (status = 403, body = ErrorBody)))]
pub async fn list_notifiers(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<NotifierView>>> {
    p.require(Permission::ManageUsers, "see notifiers")?;
    let mut stats = state.alerts.dispatcher.stats();
    Ok(Json(
        state
            .store
            .notifiers()
            .await?
            .into_iter()
            .map(|n| {
                let s = stats.remove(&n.id);
                view(n, s)
            })
            .collect(),
    ))
}

/// Creates or replaces a notifier (admins only). Without `secret`, an existing notifier
/// keeps its secret.
#[utoipa::path(put, path = "/api/v1/notifiers/{id}", tag = "alerts", params(("id" = String, Path)), request_body = Notifier,
    responses((status = 200, body = NotifierView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_notifier(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(mut n): ApiJson<Notifier>,
) -> ApiResult<Json<NotifierView>> {
    p.require(Permission::ManageUsers, "change notifiers")?;
    check_id(&id, &n.id)?;
    let existing = state.store.notifiers().await?;
    if n.secret.is_none()
        && let Some(old) = existing.iter().find(|x| x.id == n.id && x.kind == n.kind)
    {
        n.secret.clone_from(&old.secret);
    }
    n.validate()
        .map_err(|e| ApiError::invalid(&e.field, e.message))?;
    if existing.len() >= MAX_NOTIFIERS && !existing.iter().any(|x| x.id == n.id) {
        return Err(ApiError::invalid(
            "id",
            format!("at most {MAX_NOTIFIERS} notifiers"),
        ));
    }
    state.store.put_notifier(&n).await?;
    let shown = view(n, None);
    state
        .store
        .append_audit(
            &p.actor,
            "notifier.put",
            &shown.notifier.id,
            &json!({ "notifier": serde_json::to_value(&shown.notifier).unwrap_or_default(),
                     "has_secret": shown.has_secret }),
        )
        .await?;
    state.alerts.reload(&state.store).await?;
    Ok(Json(shown))
}

/// Deletes a notifier (admins only); rules that named it stop notifying it.
#[utoipa::path(delete, path = "/api/v1/notifiers/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_notifier(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.require(Permission::ManageUsers, "change notifiers")?;
    if !state.store.delete_notifier(&id).await? {
        return Err(ApiError::not_found(format!("no notifier {id:?}")));
    }
    state
        .store
        .append_audit(&p.actor, "notifier.delete", &id, &json!({}))
        .await?;
    state.alerts.reload(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}
