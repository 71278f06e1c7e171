//! The REST API under `/api/v1`: every resource the UI shows, for automation too. Each
//! handler checks the caller's permission first and answers bad input with a 4xx
//! [`ApiError`] naming the field.

// utoipa's `params(...)` expansion writes fully qualified paths.
#![allow(unused_qualifications)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration as StdDuration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use haetae_core::{FilterInstance, FilterMode, Mapping, PolicyList, PolicySnapshot, Service};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use super::session::{self, LoginOutcome, Principal};
use super::state::AppState;
use crate::auth::{self, Permission, Role};
use crate::policy::{self as gov, Change, CheckRow, Control, FilterKind};
use crate::store::audit::{AuditEntry, AuditVerification};
use crate::store::events::{EventQuery, MinuteCount, StoredEvent, TopColumn, TopEntry};
use crate::store::gateways::GatewayStatus;
use crate::store::policy::VersionInfo;
use crate::store::users::{ApiTokenInfo, User};
use crate::store::{from_micros, now_micros};

/// A gateway is shown online when its last heartbeat is younger than this.
pub const GATEWAY_ONLINE_MICROS: i64 = 60_000_000;

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------------
// Session

/// Name and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
    /// The 6-digit TOTP code (or a recovery code) when the account has a second factor.
    #[serde(default)]
    pub otp: Option<String>,
}

/// Who is logged in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The user name.
    pub username: String,
    /// The role.
    pub role: String,
    /// The token to send as `X-CSRF-Token` on state-changing calls (empty for API tokens).
    pub csrf_token: String,
}

/// Logs in and sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", request_body = LoginRequest, tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    crate::remote::ClientAddr(ip): crate::remote::ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    if req.username.len() > 64 || req.password.len() > auth::MAX_PASSWORD_LEN {
        return Err(ApiError::invalid(
            "username",
            "user name or password too long",
        ));
    }
    if req.otp.as_ref().is_some_and(|o| o.len() > 64) {
        return Err(ApiError::invalid("otp", "at most 64 characters"));
    }
    match session::login(
        &state,
        &req.username,
        &req.password,
        req.otp.as_deref(),
        "api",
        ip,
    )
    .await?
    {
        LoginOutcome::Success {
            session_id,
            csrf_token,
            user,
        } => {
            let mut resp = Json(SessionInfo {
                username: user.username,
                role: user.role.to_string(),
                csrf_token,
            })
            .into_response();
            if let Ok(v) =
                HeaderValue::from_str(&session::session_cookie(&session_id, state.secure_cookies))
            {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
        LoginOutcome::Refused => Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            ..ApiError::invalid("password", "wrong user name or password")
        }),
        LoginOutcome::SecondFactorRequired => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "otp_required",
            "this account has a second factor: send the 6-digit code (or a recovery code) as otp",
            Some("otp"),
        )),
        LoginOutcome::Locked => Err(ApiError {
            status: StatusCode::LOCKED,
            ..ApiError::invalid(
                "username",
                "too many failed logins: the account is locked for 15 minutes",
            )
        }),
    }
}

/// The caller's user name, role and CSRF token.
#[utoipa::path(get, path = "/api/v1/session", tag = "session", responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub async fn whoami(p: Principal) -> Json<SessionInfo> {
    Json(SessionInfo {
        username: p.user.username.clone(),
        role: p.user.role.to_string(),
        csrf_token: p.csrf_token().to_owned(),
    })
}

/// Logs out (ends the session).
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, p: Principal) -> ApiResult<Response> {
    if let session::Via::Session { token_hash, .. } = &p.via {
        state.store.delete_session(token_hash).await?;
        state
            .store
            .append_audit(&p.actor, "auth.logout", &p.user.username, &json!({}))
            .await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(state.secure_cookies)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------------------
// Draft editing

/// Applies `change` to the draft under the policy lock, saves it and audits it.
async fn edit_draft<F>(
    state: &AppState,
    p: &Principal,
    action: &str,
    target: &str,
    change: F,
) -> ApiResult<PolicySnapshot>
where
    F: FnOnce(&mut PolicySnapshot) -> ApiResult<serde_json::Value>,
{
    p.require(Permission::EditPolicy, "change the policy")?;
    let _guard = state.publish_lock.lock().await;
    let mut draft = gov::current_draft(state).await?;
    let detail = change(&mut draft)?;
    state
        .store
        .save_draft(&draft, &p.actor, now_micros())
        .await?;
    state
        .store
        .append_audit(&p.actor, action, target, &detail)
        .await?;
    Ok(draft)
}

/// Validates one item alone (as the only item of a policy) and maps `<prefix>[0].x` paths
/// to `x`, so the error names the field of the request body.
fn check_item(policy: &PolicySnapshot, prefix: &str) -> ApiResult<()> {
    match policy.validate() {
        Ok(()) => Ok(()),
        Err(mut errors) => {
            for e in &mut errors.0 {
                if let Some(rest) = e.path.strip_prefix(prefix) {
                    e.path = rest.trim_start_matches('.').to_owned();
                }
            }
            Err(ApiError::invalid_policy(&errors))
        }
    }
}

fn check_service(s: &Service) -> ApiResult<()> {
    check_item(
        &PolicySnapshot {
            services: vec![s.clone()],
            ..PolicySnapshot::default()
        },
        "services[0]",
    )
}

fn check_filter(f: &FilterInstance) -> ApiResult<()> {
    let known = gov::filter_kinds().iter().any(|k| k.kind == f.kind) || f.kind == "wasm";
    if !known {
        let names: Vec<&str> = gov::filter_kinds().iter().map(|k| k.kind).collect();
        return Err(ApiError::invalid(
            "kind",
            format!(
                "unknown filter kind {:?}; known kinds: {}, wasm",
                f.kind,
                names.join(", ")
            ),
        ));
    }
    check_item(
        &PolicySnapshot {
            filters: vec![f.clone()],
            ..PolicySnapshot::default()
        },
        "filters[0]",
    )
}

fn check_list(name: &str, l: &PolicyList) -> ApiResult<()> {
    let policy = PolicySnapshot {
        lists: BTreeMap::from([(name.to_owned(), l.clone())]),
        ..PolicySnapshot::default()
    };
    check_item(&policy, &format!("lists.{name}"))
}

/// The services of the draft.
#[utoipa::path(get, path = "/api/v1/services", tag = "policy", responses((status = 200, body = Object, description = "array of haetae-core Service")))]
pub async fn list_services(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<Service>>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(gov::current_draft(&state).await?.services))
}

/// Adds a service to the draft.
#[utoipa::path(post, path = "/api/v1/services", tag = "policy", request_body(content = Object, description = "a haetae-core Service: id, name, match, upstream, description"),
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_service(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(service): ApiJson<Service>,
) -> ApiResult<(StatusCode, Json<Service>)> {
    check_service(&service)?;
    let id = service.id.clone();
    let s2 = service.clone();
    edit_draft(&state, &p, "service.create", &id, move |d| {
        if d.service(&s2.id).is_some() {
            return Err(ApiError::conflict(
                "id",
                format!("a service with id {:?} exists; use PUT to change it", s2.id),
            ));
        }
        d.services.push(s2.clone());
        Ok(serde_json::to_value(&s2).unwrap_or_default())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(service)))
}

/// Replaces a service in the draft.
#[utoipa::path(put, path = "/api/v1/services/{id}", tag = "policy", params(("id" = String, Path)), request_body(content = Object),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_service(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(service): ApiJson<Service>,
) -> ApiResult<Json<Service>> {
    if service.id != id {
        return Err(ApiError::invalid(
            "id",
            format!(
                "the body's id {:?} differs from the path's {id:?}",
                service.id
            ),
        ));
    }
    check_service(&service)?;
    let s2 = service.clone();
    edit_draft(&state, &p, "service.update", &id, move |d| {
        let slot = d
            .services
            .iter_mut()
            .find(|s| s.id == s2.id)
            .ok_or_else(|| ApiError::not_found(format!("no service {:?} in the draft", s2.id)))?;
        *slot = s2.clone();
        Ok(serde_json::to_value(&s2).unwrap_or_default())
    })
    .await?;
    Ok(Json(service))
}

/// Removes a service (and its mapping) from the draft.
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "policy", params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_service(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id2 = id.clone();
    edit_draft(&state, &p, "service.delete", &id, move |d| {
        let before = d.services.len();
        d.services.retain(|s| s.id != id2);
        if d.services.len() == before {
            return Err(ApiError::not_found(format!(
                "no service {id2:?} in the draft"
            )));
        }
        d.mappings.retain(|m| m.service != id2);
        Ok(json!({}))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The filter kinds the gateway knows, with their configuration schemas.
#[utoipa::path(get, path = "/api/v1/filter-kinds", tag = "policy", responses((status = 200, body = [FilterKind])))]
pub async fn list_filter_kinds(p: Principal) -> ApiResult<Json<Vec<FilterKind>>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(gov::filter_kinds()))
}

/// The filter instances of the draft.
#[utoipa::path(get, path = "/api/v1/filters", tag = "policy", responses((status = 200, body = Object, description = "array of haetae-core FilterInstance")))]
pub async fn list_filters(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<FilterInstance>>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(gov::current_draft(&state).await?.filters))
}

/// Adds a filter instance to the draft.
#[utoipa::path(post, path = "/api/v1/filters", tag = "policy", request_body(content = Object, description = "a haetae-core FilterInstance: id, kind, config, mode, failure, budget_ms"),
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_filter(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(filter): ApiJson<FilterInstance>,
) -> ApiResult<(StatusCode, Json<FilterInstance>)> {
    check_filter(&filter)?;
    let f2 = filter.clone();
    edit_draft(&state, &p, "filter.create", &filter.id, move |d| {
        if d.filter(&f2.id).is_some() {
            return Err(ApiError::conflict(
                "id",
                format!("a filter with id {:?} exists; use PUT to change it", f2.id),
            ));
        }
        d.filters.push(f2.clone());
        Ok(serde_json::to_value(&f2).unwrap_or_default())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(filter)))
}

/// Replaces a filter instance in the draft.
#[utoipa::path(put, path = "/api/v1/filters/{id}", tag = "policy", params(("id" = String, Path)), request_body(content = Object),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_filter(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(filter): ApiJson<FilterInstance>,
) -> ApiResult<Json<FilterInstance>> {
    if filter.id != id {
        return Err(ApiError::invalid(
            "id",
            format!(
                "the body's id {:?} differs from the path's {id:?}",
                filter.id
            ),
        ));
    }
    check_filter(&filter)?;
    let f2 = filter.clone();
    edit_draft(&state, &p, "filter.update", &id, move |d| {
        let slot = d
            .filters
            .iter_mut()
            .find(|f| f.id == f2.id)
            .ok_or_else(|| ApiError::not_found(format!("no filter {:?} in the draft", f2.id)))?;
        *slot = f2.clone();
        Ok(serde_json::to_value(&f2).unwrap_or_default())
    })
    .await?;
    Ok(Json(filter))
}

/// Removes a filter instance from the draft and from every chain.
#[utoipa::path(delete, path = "/api/v1/filters/{id}", tag = "policy", params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_filter(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id2 = id.clone();
    edit_draft(&state, &p, "filter.delete", &id, move |d| {
        let before = d.filters.len();
        d.filters.retain(|f| f.id != id2);
        if d.filters.len() == before {
            return Err(ApiError::not_found(format!(
                "no filter {id2:?} in the draft"
            )));
        }
        for m in &mut d.mappings {
            m.filters.retain(|f| *f != id2);
        }
        Ok(json!({}))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The ordered filter chains of the draft.
#[utoipa::path(get, path = "/api/v1/mappings", tag = "policy", responses((status = 200, body = Object, description = "array of haetae-core Mapping")))]
pub async fn list_mappings(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<Mapping>>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(gov::current_draft(&state).await?.mappings))
}

/// A service's chain.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainRequest {
    /// Filter instance ids in the order they run.
    pub filters: Vec<String>,
    /// Per-cell modes (`enforce`, `monitor`, `off`) for some of `filters`, overriding the
    /// instance's mode for this service. Absent: the cells keep their modes.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub modes: Option<BTreeMap<String, FilterMode>>,
}

/// Replaces a service's filter chain in the draft (an empty list removes the mapping).
#[utoipa::path(put, path = "/api/v1/mappings/{service}", tag = "policy", params(("service" = String, Path)), request_body = ChainRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_mapping(
    State(state): State<AppState>,
    p: Principal,
    Path(service): Path<String>,
    ApiJson(req): ApiJson<ChainRequest>,
) -> ApiResult<Json<Vec<Mapping>>> {
    let s2 = service.clone();
    let draft = edit_draft(&state, &p, "mapping.set", &service, move |d| {
        if d.service(&s2).is_none() {
            return Err(ApiError::not_found(format!(
                "no service {s2:?} in the draft"
            )));
        }
        for (i, f) in req.filters.iter().enumerate() {
            if d.filter(f).is_none() {
                return Err(ApiError::invalid(
                    &format!("filters[{i}]"),
                    format!("no filter {f:?} in the draft"),
                ));
            }
            if req.filters[..i].contains(f) {
                return Err(ApiError::invalid(
                    &format!("filters[{i}]"),
                    format!("filter {f:?} appears twice"),
                ));
            }
        }
        if let Some(modes) = &req.modes
            && let Some(f) = modes.keys().find(|f| !req.filters.contains(*f))
        {
            return Err(ApiError::invalid(
                &format!("modes.{f}"),
                format!("filter {f:?} is not in filters"),
            ));
        }
        let mut modes = req.modes.clone().unwrap_or_else(|| {
            d.mappings
                .iter()
                .find(|m| m.service == s2)
                .map(|m| m.modes.clone())
                .unwrap_or_default()
        });
        modes.retain(|f, _| req.filters.contains(f));
        d.mappings.retain(|m| m.service != s2);
        if !req.filters.is_empty() {
            let mut m = Mapping::new(s2.clone(), req.filters.clone());
            m.modes.clone_from(&modes);
            d.mappings.push(m);
        }
        Ok(json!({ "filters": req.filters, "modes": modes }))
    })
    .await?;
    Ok(Json(draft.mappings))
}

/// One cell of the mapping matrix.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CellRequest {
    /// Whether the filter is in the service's chain (added at the end).
    pub mapped: bool,
    /// The cell's mode for a mapped filter: `enforce`, `monitor`, `off`, or `inherit` (the
    /// instance's own mode). Absent: unchanged.
    #[serde(default)]
    pub mode: Option<CellMode>,
}

/// A mapping-matrix cell's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CellMode {
    /// The filter instance's own mode.
    Inherit,
    /// Decide and act, for this service.
    Enforce,
    /// Decide and log only, for this service.
    Monitor,
    /// Do not run, for this service (the filter stays in the chain's order).
    Off,
}

/// Sets one cell of the mapping matrix in the draft: adds the filter to the end of the
/// service's chain, or removes it, and sets the cell's mode.
#[utoipa::path(put, path = "/api/v1/matrix/{service}/{filter}", tag = "policy", params(("service" = String, Path), ("filter" = String, Path)), request_body = CellRequest,
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn set_cell(
    State(state): State<AppState>,
    p: Principal,
    Path((service, filter)): Path<(String, String)>,
    ApiJson(req): ApiJson<CellRequest>,
) -> ApiResult<Json<Vec<Mapping>>> {
    let (s2, f2) = (service.clone(), filter.clone());
    let draft = edit_draft(
        &state,
        &p,
        "mapping.cell",
        &format!("{service}/{filter}"),
        move |d| {
            if d.service(&s2).is_none() {
                return Err(ApiError::not_found(format!(
                    "no service {s2:?} in the draft"
                )));
            }
            if d.filter(&f2).is_none() {
                return Err(ApiError::not_found(format!(
                    "no filter {f2:?} in the draft"
                )));
            }
            if !req.mapped && req.mode.is_some_and(|m| m != CellMode::Inherit) {
                return Err(ApiError::invalid(
                    "mode",
                    "an unmapped cell has no mode; set mapped to true",
                ));
            }
            let idx = d.mappings.iter().position(|m| m.service == s2);
            let i = match (idx, req.mapped) {
                (Some(i), true) => {
                    if !d.mappings[i].filters.contains(&f2) {
                        d.mappings[i].filters.push(f2.clone());
                    }
                    Some(i)
                }
                (None, true) => {
                    d.mappings.push(Mapping::new(s2.clone(), vec![f2.clone()]));
                    Some(d.mappings.len() - 1)
                }
                (Some(i), false) => {
                    d.mappings[i].filters.retain(|f| *f != f2);
                    d.mappings[i].modes.remove(&f2);
                    if d.mappings[i].filters.is_empty() {
                        d.mappings.remove(i);
                    }
                    None
                }
                (None, false) => None,
            };
            if let (Some(i), Some(mode)) = (i, req.mode) {
                let modes = &mut d.mappings[i].modes;
                match mode {
                    CellMode::Inherit => {
                        modes.remove(&f2);
                    }
                    CellMode::Enforce => {
                        modes.insert(f2.clone(), FilterMode::Enforce);
                    }
                    CellMode::Monitor => {
                        modes.insert(f2.clone(), FilterMode::Monitor);
                    }
                    CellMode::Off => {
                        modes.insert(f2.clone(), FilterMode::Off);
                    }
                }
            }
            Ok(json!({ "mapped": req.mapped, "mode": req.mode }))
        },
    )
    .await?;
    Ok(Json(draft.mappings))
}

/// The named lists of the draft.
#[utoipa::path(get, path = "/api/v1/lists", tag = "policy", responses((status = 200, body = Object, description = "name -> haetae-core PolicyList")))]
pub async fn list_lists(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<BTreeMap<String, PolicyList>>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(gov::current_draft(&state).await?.lists))
}

/// Creates or replaces a named list in the draft.
#[utoipa::path(put, path = "/api/v1/lists/{name}", tag = "policy", params(("name" = String, Path)), request_body(content = Object, description = "a haetae-core PolicyList: kind (device|user|ip|account|generic), entries, description"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_list(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    ApiJson(list): ApiJson<PolicyList>,
) -> ApiResult<Json<PolicyList>> {
    if list.entries.len() > 100_000 {
        return Err(ApiError::invalid(
            "entries",
            "at most 100000 entries per list",
        ));
    }
    check_list(&name, &list)?;
    let (n2, l2) = (name.clone(), list.clone());
    edit_draft(&state, &p, "list.put", &name, move |d| {
        let detail = json!({ "kind": l2.kind, "entries": l2.entries.len() });
        d.lists.insert(n2, l2);
        Ok(detail)
    })
    .await?;
    Ok(Json(list))
}

/// Removes a named list from the draft.
#[utoipa::path(delete, path = "/api/v1/lists/{name}", tag = "policy", params(("name" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_list(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let n2 = name.clone();
    edit_draft(&state, &p, "list.delete", &name, move |d| {
        d.lists
            .remove(&n2)
            .ok_or_else(|| ApiError::not_found(format!("no list {n2:?} in the draft")))?;
        Ok(json!({}))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// Security-check requirements

/// The security controls a service can be required to have.
#[utoipa::path(get, path = "/api/v1/controls", tag = "security-check", responses((status = 200, body = [Control])))]
pub async fn list_controls(p: Principal) -> ApiResult<Json<Vec<Control>>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(gov::controls()))
}

/// Required controls per service.
#[utoipa::path(get, path = "/api/v1/requirements", tag = "security-check", responses((status = 200, body = Object, description = "service id -> control ids")))]
pub async fn get_requirements(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<BTreeMap<String, Vec<String>>>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(state.store.requirements().await?))
}

/// A service's required controls.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequirementsRequest {
    /// Control ids (see `/api/v1/controls`).
    pub controls: Vec<String>,
}

/// Replaces the required controls of a service.
#[utoipa::path(put, path = "/api/v1/requirements/{service}", tag = "security-check", params(("service" = String, Path)), request_body = RequirementsRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn put_requirements(
    State(state): State<AppState>,
    p: Principal,
    Path(service): Path<String>,
    ApiJson(req): ApiJson<RequirementsRequest>,
) -> ApiResult<Json<Vec<String>>> {
    p.require(Permission::EditPolicy, "change requirements")?;
    if service.is_empty() || service.len() > 128 {
        return Err(ApiError::invalid(
            "service",
            "a service id is 1-128 characters",
        ));
    }
    let known = gov::controls();
    let mut controls = req.controls.clone();
    controls.sort();
    controls.dedup();
    for (i, c) in controls.iter().enumerate() {
        if !known.iter().any(|k| k.id == c) {
            let ids: Vec<&str> = known.iter().map(|k| k.id).collect();
            return Err(ApiError::invalid(
                &format!("controls[{i}]"),
                format!("unknown control {c:?}; known: {}", ids.join(", ")),
            ));
        }
    }
    state.store.set_requirements(&service, &controls).await?;
    state
        .store
        .append_audit(
            &p.actor,
            "requirements.set",
            &service,
            &json!({ "controls": controls }),
        )
        .await?;
    Ok(Json(controls))
}

/// Which policy a view is computed over.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SourceQuery {
    /// `draft` (default) or `published`.
    pub source: Option<String>,
}

async fn policy_by_source(state: &AppState, source: Option<&str>) -> ApiResult<PolicySnapshot> {
    match source.unwrap_or("draft") {
        "draft" => gov::current_draft(state).await,
        "published" => match state.store.latest_version_number().await? {
            Some(v) => Ok(state.store.version(v).await?.unwrap_or_default()),
            None => Ok(PolicySnapshot::default()),
        },
        other => Err(ApiError::invalid(
            "source",
            format!("{other:?} is not `draft` or `published`"),
        )),
    }
}

/// The security-check matrix: per service, each control's state (`met`, `gap`,
/// `monitor-only`, `provided`, `not-required`).
#[utoipa::path(get, path = "/api/v1/security-check", tag = "security-check", params(SourceQuery), responses((status = 200, body = [CheckRow]), (status = 400, body = ErrorBody)))]
pub async fn security_check(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<SourceQuery>,
) -> ApiResult<Json<Vec<CheckRow>>> {
    p.require(Permission::Read, "read the policy")?;
    let policy = policy_by_source(&state, q.source.as_deref()).await?;
    Ok(Json(gov::security_check(
        &policy,
        &state.store.requirements().await?,
    )))
}

// ---------------------------------------------------------------------------------------
// Policy versions

/// The draft and what validation says about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftView {
    /// The draft policy.
    #[schema(value_type = Object)]
    pub policy: PolicySnapshot,
    /// Every problem, with its path; empty when the draft can be published.
    pub problems: Vec<super::error::Problem>,
    /// What publishing would change, against the latest version.
    pub changes: Vec<Change>,
}

/// The working draft, its problems and its changes against the latest version.
#[utoipa::path(get, path = "/api/v1/policy/draft", tag = "policy", responses((status = 200, body = DraftView)))]
pub async fn get_draft(State(state): State<AppState>, p: Principal) -> ApiResult<Json<DraftView>> {
    p.require(Permission::Read, "read the policy")?;
    let policy = gov::current_draft(&state).await?;
    let problems = match policy.validate() {
        Ok(()) => Vec::new(),
        Err(e) => {
            e.0.into_iter()
                .map(|e| super::error::Problem {
                    field: e.path,
                    message: e.message,
                })
                .collect()
        }
    };
    let published = policy_by_source(&state, Some("published")).await?;
    let changes = gov::diff(&published, &policy);
    Ok(Json(DraftView {
        policy,
        problems,
        changes,
    }))
}

/// Replaces the whole draft (for automation: policy as code).
#[utoipa::path(put, path = "/api/v1/policy/draft", tag = "policy", request_body(content = Object, description = "a haetae-core PolicySnapshot"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn put_draft(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(policy): ApiJson<PolicySnapshot>,
) -> ApiResult<Json<PolicySnapshot>> {
    let saved = edit_draft(&state, &p, "policy.draft_replace", "draft", move |d| {
        *d = policy;
        Ok(json!({ "services": d.services.len(), "filters": d.filters.len() }))
    })
    .await?;
    Ok(Json(saved))
}

/// Why a version is published.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// A note for the audit log and the version list.
    #[serde(default)]
    pub comment: String,
}

/// A published version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    /// Its number.
    pub version: u64,
}

/// Validates the draft and publishes it as the next version to every gateway.
#[utoipa::path(post, path = "/api/v1/policy/publish", tag = "policy", request_body = PublishRequest,
    responses((status = 200, body = Published), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<PublishRequest>,
) -> ApiResult<Json<Published>> {
    p.require(Permission::EditPolicy, "publish the policy")?;
    if req.comment.len() > 1000 {
        return Err(ApiError::invalid("comment", "at most 1000 bytes"));
    }
    let draft = gov::current_draft(&state).await?;
    let v = gov::publish(&state, &draft, &p.actor, &req.comment, "policy.publish").await?;
    Ok(Json(Published { version: v.version }))
}

/// Page size.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LimitQuery {
    /// 1..=1000, default 100.
    pub limit: Option<u32>,
}

/// Published versions, newest first.
#[utoipa::path(get, path = "/api/v1/policy/versions", tag = "policy", params(LimitQuery), responses((status = 200, body = [VersionInfo])))]
pub async fn list_versions(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<Json<Vec<VersionInfo>>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(
        state.store.list_versions(q.limit.unwrap_or(100)).await?,
    ))
}

fn parse_version(field: &str, text: &str) -> ApiResult<i64> {
    text.parse::<i64>().ok().filter(|v| *v >= 1).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!("{text:?} is not a version number (1, 2, ...)"),
        )
    })
}

/// One published version.
#[utoipa::path(get, path = "/api/v1/policy/versions/{version}", tag = "policy", params(("version" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_version(
    State(state): State<AppState>,
    p: Principal,
    Path(version): Path<String>,
) -> ApiResult<Json<PolicySnapshot>> {
    p.require(Permission::Read, "read the policy")?;
    let v = parse_version("version", &version)?;
    state
        .store
        .version(v)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no policy version {v}")))
}

/// Two policies to compare.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DiffQuery {
    /// A version number.
    pub from: String,
    /// A version number or `draft`.
    pub to: String,
}

/// What changed between two versions (or a version and the draft).
#[utoipa::path(get, path = "/api/v1/policy/diff", tag = "policy", params(DiffQuery), responses((status = 200, body = [Change]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> ApiResult<Json<Vec<Change>>> {
    p.require(Permission::Read, "read the policy")?;
    let load = |field: &'static str, text: String| {
        let state = state.clone();
        async move {
            if text == "draft" {
                return gov::current_draft(&state).await;
            }
            let v = parse_version(field, &text)?;
            state
                .store
                .version(v)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no policy version {v}")))
        }
    };
    let a = load("from", q.from).await?;
    let b = load("to", q.to).await?;
    Ok(Json(gov::diff(&a, &b)))
}

/// Which version to return to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version whose content is published again.
    pub version: i64,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// Publishes an earlier version's content as a new version (versions never go backwards on
/// the bus), and makes it the draft.
#[utoipa::path(post, path = "/api/v1/policy/rollback", tag = "policy", request_body = RollbackRequest,
    responses((status = 200, body = Published), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<RollbackRequest>,
) -> ApiResult<Json<Published>> {
    p.require(Permission::EditPolicy, "roll back the policy")?;
    if req.comment.len() > 1000 {
        return Err(ApiError::invalid("comment", "at most 1000 bytes"));
    }
    let old = state
        .store
        .version(req.version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no policy version {}", req.version)))?;
    let comment = if req.comment.is_empty() {
        format!("rollback to v{}", req.version)
    } else {
        req.comment.clone()
    };
    let v = gov::publish(&state, &old, &p.actor, &comment, "policy.rollback").await?;
    state.store.save_draft(&v, &p.actor, now_micros()).await?;
    Ok(Json(Published { version: v.version }))
}

// ---------------------------------------------------------------------------------------
// Gateways, events, dashboard

/// A gateway with its online state.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayView {
    /// The last heartbeat.
    #[serde(flatten)]
    pub status: GatewayStatus,
    /// Heard from within the last minute.
    pub online: bool,
}

/// Every gateway heard from, with its last heartbeat.
#[utoipa::path(get, path = "/api/v1/gateways", tag = "monitoring", responses((status = 200, body = [GatewayView])))]
pub async fn list_gateways(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<GatewayView>>> {
    p.require(Permission::Read, "see gateways")?;
    Ok(Json(gateway_views(&state).await?))
}

pub(crate) async fn gateway_views(state: &AppState) -> ApiResult<Vec<GatewayView>> {
    let now = now_micros();
    Ok(state
        .store
        .gateways()
        .await?
        .into_iter()
        .map(|status| GatewayView {
            online: now - status.last_seen < GATEWAY_ONLINE_MICROS,
            status,
        })
        .collect())
}

/// Event search parameters (all optional).
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// RFC 3339 time: at or after.
    pub from: Option<String>,
    /// RFC 3339 time: before.
    pub to: Option<String>,
    /// `gateway`, `docscan`, `remote`, `control`.
    pub component: Option<String>,
    /// `event.action`.
    pub action: Option<String>,
    /// `success`, `failure`, `unknown`.
    pub outcome: Option<String>,
    /// `user.id`.
    pub user: Option<String>,
    /// `device.id`.
    pub device: Option<String>,
    /// `service.id`.
    pub service: Option<String>,
    /// 1..=1000, default 100.
    pub limit: Option<u32>,
    /// Paging: the previous page's last `ts`.
    pub before_ts: Option<i64>,
    /// Paging: the previous page's last `id` (with `before_ts`).
    pub before_id: Option<String>,
    /// Export format: `csv` or `jsonl`.
    pub format: Option<String>,
}

pub(crate) fn parse_time(field: &str, text: Option<&str>) -> ApiResult<Option<OffsetDateTime>> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
                ApiError::invalid(
                    field,
                    format!("{t:?} is not an RFC 3339 time like 2026-01-31T09:00:00Z ({e})"),
                )
            })
        })
        .transpose()
}

impl EventsQuery {
    /// Checks and converts to a store query.
    pub fn to_store(&self) -> ApiResult<EventQuery> {
        for (field, v) in [
            ("component", &self.component),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("user", &self.user),
            ("device", &self.device),
            ("service", &self.service),
            ("before_id", &self.before_id),
        ] {
            if v.as_ref().is_some_and(|v| v.len() > 256) {
                return Err(ApiError::invalid(field, "at most 256 bytes"));
            }
        }
        if let Some(o) = &self.outcome
            && !["success", "failure", "unknown", ""].contains(&o.as_str())
        {
            return Err(ApiError::invalid(
                "outcome",
                format!("{o:?} is not success, failure or unknown"),
            ));
        }
        let limit = self.limit.unwrap_or(100);
        if !(1..=crate::store::events::MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(ApiError::invalid("limit", "must be 1..=1000"));
        }
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Ok(EventQuery {
            from: parse_time("from", self.from.as_deref())?,
            to: parse_time("to", self.to.as_deref())?,
            component: nonempty(&self.component),
            action: nonempty(&self.action),
            outcome: nonempty(&self.outcome),
            user: nonempty(&self.user),
            device: nonempty(&self.device),
            service: nonempty(&self.service),
            limit,
            before: self
                .before_ts
                .map(|ts| (ts, self.before_id.clone().unwrap_or_else(|| "~".repeat(36)))),
        })
    }
}

/// Finds events, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsQuery), responses((status = 200, body = [StoredEvent]), (status = 400, body = ErrorBody)))]
pub async fn search_events(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Vec<StoredEvent>>> {
    p.require(Permission::Read, "search events")?;
    Ok(Json(state.store.search_events(&q.to_store()?).await?))
}

/// The most rows one export returns.
pub const MAX_EXPORT_ROWS: usize = 100_000;

/// A CSV field, quoted when needed, with spreadsheet formulas neutralised.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Exports matching events (up to 100 000, newest first) as CSV or JSON Lines.
#[utoipa::path(get, path = "/api/v1/events/export", tag = "events", params(EventsQuery),
    responses((status = 200, content_type = "text/csv"), (status = 400, body = ErrorBody)))]
pub async fn export_events(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Response> {
    p.require(Permission::ReadAudit, "export events")?;
    let csv = match q.format.as_deref().unwrap_or("csv") {
        "csv" => true,
        "jsonl" => false,
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("{other:?} is not csv or jsonl"),
            ));
        }
    };
    let mut query = EventsQuery {
        limit: Some(1000),
        ..q
    }
    .to_store()?;
    let mut out = String::new();
    if csv {
        out.push_str(
            "timestamp,id,component,action,outcome,severity,user,device,service,source_ip,filter\n",
        );
    }
    let mut rows = 0;
    while rows < MAX_EXPORT_ROWS {
        let page = state.store.search_events(&query).await?;
        let Some(last) = page.last() else { break };
        query.before = Some((last.ts, last.id.clone()));
        for e in &page {
            rows += 1;
            if csv {
                let ts = from_micros(e.ts).format(&Rfc3339).unwrap_or_default();
                let fields = [
                    ts.as_str(),
                    &e.id,
                    &e.component,
                    &e.action,
                    &e.outcome,
                    &e.severity.to_string(),
                    e.user_id.as_deref().unwrap_or(""),
                    e.device_id.as_deref().unwrap_or(""),
                    e.service_id.as_deref().unwrap_or(""),
                    e.source_ip.as_deref().unwrap_or(""),
                    e.filter_id.as_deref().unwrap_or(""),
                ];
                out.push_str(
                    &fields
                        .iter()
                        .map(|f| csv_field(f))
                        .collect::<Vec<_>>()
                        .join(","),
                );
            } else {
                out.push_str(&e.body);
            }
            out.push('\n');
        }
    }
    state
        .store
        .append_audit(
            &p.actor,
            "events.export",
            if csv { "csv" } else { "jsonl" },
            &json!({ "rows": rows }),
        )
        .await?;
    let (ctype, name) = if csv {
        ("text/csv; charset=utf-8", "events.csv")
    } else {
        ("application/x-ndjson", "events.jsonl")
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out,
    )
        .into_response())
}

/// The dashboard's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// Events per minute over the last hour.
    pub per_minute: Vec<MinuteCount>,
    /// Events in the last 24 hours.
    pub events_24h: i64,
    /// Blocked (outcome failure) in the last 24 hours.
    pub blocked_24h: i64,
    /// Most blocked users, last 24 hours.
    pub top_users: Vec<TopEntry>,
    /// Most blocked devices, last 24 hours.
    pub top_devices: Vec<TopEntry>,
    /// Most blocking filters, last 24 hours.
    pub top_filters: Vec<TopEntry>,
    /// Most blocked services, last 24 hours.
    pub top_services: Vec<TopEntry>,
    /// Gateways and whether they are online.
    pub gateways: Vec<GatewayView>,
    /// The latest published version.
    pub policy_version: Option<i64>,
    /// The latest events.
    pub latest: Vec<StoredEvent>,
    /// Filters that do not run as configured: a breaker open or half-open on an online
    /// gateway (from its heartbeat), or switched off in the published policy.
    pub filter_problems: Vec<FilterProblem>,
}

/// A filter that is in error or stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FilterProblem {
    /// The gateway reporting it (empty for a filter switched off in the policy).
    pub gateway: String,
    /// The filter instance id.
    pub filter: String,
    /// `open` or `half-open` (circuit breaker), or `off` (mode in the published policy).
    pub state: String,
}

/// Breakers not closed on online gateways, then filters off in `policy`.
fn filter_problems(
    gateways: &[GatewayView],
    policy: Option<&haetae_core::PolicySnapshot>,
) -> Vec<FilterProblem> {
    let mut out = Vec::new();
    for g in gateways.iter().filter(|g| g.online) {
        let Ok(labels) =
            serde_json::from_str::<std::collections::BTreeMap<String, String>>(&g.status.detail)
        else {
            continue;
        };
        for (key, state) in labels {
            if let Some(filter) = key.strip_prefix("filter.")
                && state != "closed"
            {
                out.push(FilterProblem {
                    gateway: g.status.instance.clone(),
                    filter: filter.to_owned(),
                    state,
                });
            }
        }
    }
    for f in policy.map_or(&[][..], |p| &p.filters[..]) {
        if f.mode == haetae_core::FilterMode::Off {
            out.push(FilterProblem {
                gateway: String::new(),
                filter: f.id.clone(),
                state: "off".into(),
            });
        }
    }
    out
}

/// Computes the dashboard.
pub async fn dashboard_figures(state: &AppState) -> ApiResult<Dashboard> {
    let now = OffsetDateTime::now_utc();
    let day = now - time::Duration::hours(24);
    let s = &state.store;
    let per_day = s.events_per_minute(day).await?;
    let hour_start = crate::store::micros(now - time::Duration::hours(1));
    let gateways = gateway_views(state).await?;
    let policy_version = s.latest_version_number().await?;
    let published = match policy_version {
        Some(v) => s.version(v).await?,
        None => None,
    };
    let filter_problems = filter_problems(&gateways, published.as_ref());
    Ok(Dashboard {
        events_24h: per_day.iter().map(|m| m.total).sum(),
        blocked_24h: per_day.iter().map(|m| m.failures).sum(),
        per_minute: per_day
            .into_iter()
            .filter(|m| m.minute >= hour_start - 60_000_000)
            .collect(),
        top_users: s.top_failures(TopColumn::User, day, 5).await?,
        top_devices: s.top_failures(TopColumn::Device, day, 5).await?,
        top_filters: s.top_failures(TopColumn::Filter, day, 5).await?,
        top_services: s.top_failures(TopColumn::Service, day, 5).await?,
        gateways,
        policy_version,
        latest: s
            .search_events(&EventQuery {
                limit: 20,
                ..EventQuery::default()
            })
            .await?,
        filter_problems,
    })
}

/// The dashboard's figures: per-minute counts, top blocked users/devices/filters, gateways.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "monitoring", responses((status = 200, body = Dashboard)))]
pub async fn dashboard(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Dashboard>> {
    p.require(Permission::Read, "see the dashboard")?;
    Ok(Json(dashboard_figures(&state).await?))
}

/// Live feed of newly stored events (Server-Sent Events, event name `events`, data a JSON
/// array).
#[utoipa::path(get, path = "/api/v1/stream", tag = "monitoring", responses((status = 200, content_type = "text/event-stream")))]
pub async fn stream(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>> {
    p.require(Permission::Read, "see the live feed")?;
    let rx = state.live.subscribe();
    let alerts = state.alerts.live.subscribe();
    let stream = futures_util::stream::unfold((rx, alerts), |(mut rx, mut alerts)| async move {
        use tokio::sync::broadcast::error::RecvError;
        let event = tokio::select! {
            r = rx.recv() => match r {
                Ok(batch) => {
                    let data = serde_json::to_string(&*batch).unwrap_or_else(|_| "[]".into());
                    SseEvent::default().event("events").data(data)
                }
                Err(RecvError::Lagged(n)) => SseEvent::default().event("lagged").data(n.to_string()),
                Err(RecvError::Closed) => return None,
            },
            r = alerts.recv() => match r {
                Ok(batch) => {
                    let data = serde_json::to_string(&*batch).unwrap_or_else(|_| "[]".into());
                    SseEvent::default().event("alerts").data(data)
                }
                Err(RecvError::Lagged(n)) => SseEvent::default().event("lagged").data(n.to_string()),
                Err(RecvError::Closed) => return None,
            },
        };
        Some((Ok(event), (rx, alerts)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(StdDuration::from_secs(15))))
}

// ---------------------------------------------------------------------------------------
// Users and tokens

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1-64 of `a-z 0-9 . _ -`.
    pub username: String,
    /// At least 12 characters.
    pub password: String,
    /// `admin`, `security-officer`, `auditor` or `viewer`.
    pub role: String,
}

fn parse_role(text: &str) -> ApiResult<Role> {
    text.parse()
        .map_err(|e: auth::UnknownRole| ApiError::invalid("role", e.to_string()))
}

async fn hash_off_thread(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|_| ApiError::invalid("password", "hashing was interrupted; try again"))?
        .map_err(|e| ApiError::invalid("password", e.to_string()))
}

/// Every user.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = [User]), (status = 403, body = ErrorBody)))]
pub async fn list_users(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Vec<User>>> {
    p.require(Permission::ManageUsers, "list users")?;
    Ok(Json(state.store.list_users().await?))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    p.require(Permission::ManageUsers, "create users")?;
    if !auth::valid_username(&req.username) {
        return Err(ApiError::invalid(
            "username",
            "1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        ));
    }
    let role = parse_role(&req.role)?;
    let hash = hash_off_thread(req.password).await?;
    let user = state
        .store
        .create_user(&req.username, &hash, role, now_micros())
        .await?
        .ok_or_else(|| ApiError::conflict("username", format!("user {:?} exists", req.username)))?;
    state
        .store
        .append_audit(
            &p.actor,
            "user.create",
            &user.username,
            &json!({ "role": role }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Changes to a user (each optional).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New role.
    pub role: Option<String>,
    /// New password (ends the user's sessions).
    pub password: Option<String>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// `true` clears a lockout.
    pub unlock: Option<bool>,
}

/// Changes a user's role, password, disabled flag or lockout.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    p: Principal,
    Path(username): Path<String>,
    ApiJson(req): ApiJson<UserPatch>,
) -> ApiResult<Json<User>> {
    p.require(Permission::ManageUsers, "change users")?;
    let user = state
        .store
        .user_by_name(&username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {username:?}")))?;
    let role = req.role.as_deref().map(parse_role).transpose()?;
    if username == p.user.username
        && (role.is_some_and(|r| r != Role::Admin) || req.disabled == Some(true))
    {
        return Err(ApiError::invalid(
            "role",
            "you cannot demote or disable yourself; ask another admin",
        ));
    }
    let hash = match req.password {
        Some(pw) => Some(hash_off_thread(pw).await?),
        None => None,
    };
    state
        .store
        .update_user(&username, role, hash.as_deref(), req.disabled)
        .await?;
    if req.unlock == Some(true) {
        state.store.clear_failed_logins(user.id).await?;
    }
    if hash.is_some() || req.disabled == Some(true) || role.is_some() {
        state.store.delete_sessions_of(user.id).await?;
    }
    state
        .store
        .append_audit(&p.actor, "user.update", &username, &json!({ "role": role, "password_changed": hash.is_some(), "disabled": req.disabled, "unlock": req.unlock }))
        .await?;
    let updated = state
        .store
        .user_by_name(&username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {username:?}")))?;
    Ok(Json(updated))
}

/// Deletes a user with their sessions and tokens.
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    p: Principal,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    p.require(Permission::ManageUsers, "delete users")?;
    if username == p.user.username {
        return Err(ApiError::invalid(
            "username",
            "you cannot delete yourself; ask another admin",
        ));
    }
    if !state.store.delete_user(&username).await? {
        return Err(ApiError::not_found(format!("no user {username:?}")));
    }
    state
        .store
        .append_audit(&p.actor, "user.delete", &username, &json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every API token (without secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "users", responses((status = 200, body = [ApiTokenInfo])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<ApiTokenInfo>>> {
    p.require(Permission::ManageUsers, "list API tokens")?;
    Ok(Json(state.store.list_api_tokens().await?))
}

/// A new API token's owner and name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A name for people, 1-64 bytes.
    pub name: String,
    /// The user the token acts as (default: the caller).
    pub username: Option<String>,
}

/// A new API token: the secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Its id.
    pub id: i64,
    /// The secret, to send as `Authorization: Bearer <token>`.
    pub token: String,
}

/// Creates an API token acting as a user.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "users", request_body = NewToken, responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    p.require(Permission::ManageUsers, "create API tokens")?;
    if req.name.is_empty() || req.name.len() > 64 {
        return Err(ApiError::invalid("name", "1-64 bytes"));
    }
    let owner = match &req.username {
        Some(u) => state
            .store
            .user_by_name(u)
            .await?
            .ok_or_else(|| ApiError::invalid("username", format!("no user {u:?}")))?,
        None => p.user.clone(),
    };
    let token = auth::new_api_token();
    let id = state
        .store
        .create_api_token(owner.id, &req.name, &auth::digest(&token), now_micros())
        .await?;
    state
        .store
        .append_audit(
            &p.actor,
            "token.create",
            &req.name,
            &json!({ "id": id, "user": owner.username }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { id, token })))
}

/// Revokes an API token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "users", params(("id" = String, Path)), responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.require(Permission::ManageUsers, "revoke API tokens")?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("{id:?} is not a token id")))?;
    if !state.store.revoke_api_token(id).await? {
        return Err(ApiError::not_found(format!("no token {id}")));
    }
    state
        .store
        .append_audit(&p.actor, "token.revoke", &id.to_string(), &json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// Audit log

/// Audit page parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Rows older than this sequence number.
    pub before: Option<i64>,
    /// 1..=1000, default 100.
    pub limit: Option<u32>,
}

/// Audit-log rows, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = [AuditEntry]), (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    p.require(Permission::ReadAudit, "read the audit log")?;
    Ok(Json(
        state
            .store
            .audit_page(q.before, q.limit.unwrap_or(100))
            .await?,
    ))
}

/// Verifies the whole audit chain.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", responses((status = 200, body = AuditVerification), (status = 403, body = ErrorBody)))]
pub async fn verify_audit(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<AuditVerification>> {
    p.require(Permission::ReadAudit, "verify the audit log")?;
    Ok(Json(state.store.verify_audit_log().await?))
}

/// The OpenAPI document of this API.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "haetae Control Center API", description = "Policies, events, gateways, users and the audit log of the haetae Security Control Center."),
    paths(
        login, whoami, logout,
        list_services, create_service, update_service, delete_service,
        list_filter_kinds, list_filters, create_filter, update_filter, delete_filter,
        list_mappings, set_mapping, set_cell, list_lists, put_list, delete_list,
        list_controls, get_requirements, put_requirements, security_check,
        get_draft, put_draft, publish, list_versions, get_version, diff, rollback,
        list_gateways, search_events, export_events, dashboard, stream,
        list_users, create_user, update_user, delete_user, list_tokens, create_token, revoke_token,
        audit_log, verify_audit,
        super::alerts_api::list_alerts, super::alerts_api::ack_alert,
        super::alerts_api::list_rules, super::alerts_api::put_rule, super::alerts_api::delete_rule,
        super::alerts_api::list_notifiers, super::alerts_api::put_notifier, super::alerts_api::delete_notifier,
        super::account_api::totp_status, super::account_api::totp_start, super::account_api::totp_confirm,
        super::account_api::totp_disable, super::account_api::totp_reset,
        super::analysis_api::analysis, super::rollout_api::rollout,
        crate::ui::recordings::get_recording, crate::ui::recordings::get_chunk, crate::ui::recordings::get_bundle,
        super::wasm_api::list_modules, super::wasm_api::upload_module,
        super::wasm_api::list_versions, super::wasm_api::get_module, super::wasm_api::delete_module,
    ),
    components(schemas(ErrorBody, super::error::ErrorDetail, super::error::Problem, StoredEvent, MinuteCount, TopEntry, GatewayStatus, FilterProblem, VersionInfo, User, ApiTokenInfo, AuditEntry, AuditVerification, FilterKind, Control, CheckRow, Change, crate::alerts::Alert, crate::alerts::AlertRule, crate::alerts::notify::Notifier, crate::alerts::notify::NotifierStats, super::alerts_api::NotifierView, super::account_api::TotpStatus, super::account_api::TotpEnrolment, super::account_api::TotpCode, super::account_api::RecoveryCodes, super::account_api::TotpDisable, super::analysis_api::Analysis, super::rollout_api::Rollout, super::rollout_api::RolloutRow, crate::store::events::AggregateRow, crate::store::events::SeriesPoint, crate::ui::recordings::RecordingView, crate::store::recordings::RecordingRow, crate::store::recordings::ChunkInfo, crate::store::wasm::WasmModuleInfo)),
    modifiers(&SecuritySchemes),
    security(("session" = []), ("token" = [])),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(session::SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Serves the OpenAPI document (public, like the login page).
pub async fn openapi_json() -> Response {
    use utoipa::OpenApi;
    let doc = ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], doc).into_response()
}

/// Unknown `/api/v1` paths answer with a JSON 404.
pub async fn api_not_found() -> ApiError {
    ApiError::not_found("no such API route; see /api/v1/openapi.json")
}
