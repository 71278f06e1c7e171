//! `/api/v1/policy/rollout`: where the latest published version runs. Each gateway either
//! runs it (its heartbeat or `gateway.policy_applied` says so), rejected it (its
//! `gateway.policy_rejected` event for that version, with the problems it found: a filter
//! configuration the gateway refuses keeps the previous policy running there), or has not
//! reported yet. The control plane's view of a rollout, as a NACK is in Envoy's xDS.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::api::{GatewayView, gateway_views};
use super::error::ApiError;
use super::session::Principal;
use super::state::AppState;
use crate::auth::Permission;
use crate::store::events::EventQuery;
use crate::store::from_micros;

type ApiResult<T> = Result<T, ApiError>;

/// The action of a gateway's report that it refused a policy.
pub const POLICY_REJECTED_ACTION: &str = "gateway.policy_rejected";

/// One gateway's state in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RolloutRow {
    /// The gateway's instance name.
    pub gateway: String,
    /// Heard from within the last minute.
    pub online: bool,
    /// The version it reports running.
    pub running_version: Option<i64>,
    /// `running` (this version or a later one), `rejected` or `pending`.
    pub state: String,
    /// For `rejected`: the gateway's message, naming every problem.
    pub problems: Option<String>,
}

/// The latest version's rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Rollout {
    /// The latest published version (absent before the first publish).
    pub version: Option<i64>,
    /// Every gateway heard from.
    pub gateways: Vec<RolloutRow>,
}

/// The rollout of `version`, published at `published_at` (microseconds).
pub async fn rollout_of(state: &AppState, version: i64, published_at: i64) -> ApiResult<Rollout> {
    let gateways = gateway_views(state).await?;
    let rejections = state
        .store
        .search_events(&EventQuery {
            from: Some(from_micros(published_at)),
            action: Some(POLICY_REJECTED_ACTION.into()),
            limit: crate::store::events::MAX_SEARCH_LIMIT,
            ..EventQuery::default()
        })
        .await?;
    // Newest first: the first rejection seen per gateway is its latest.
    let mut rejected: HashMap<String, String> = HashMap::new();
    for e in rejections {
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&e.body) else {
            continue;
        };
        let Some(instance) = body["haetae"]["instance"].as_str() else {
            continue;
        };
        if body["labels"]["rejected_version"].as_str() != Some(version.to_string().as_str()) {
            continue;
        }
        rejected
            .entry(instance.to_owned())
            .or_insert_with(|| body["message"].as_str().unwrap_or_default().to_owned());
    }
    let rows = gateways
        .into_iter()
        .map(|GatewayView { status, online }| {
            let running = status.policy_version.is_some_and(|v| v >= version);
            let problems = if running {
                None
            } else {
                rejected.get(&status.instance).cloned()
            };
            RolloutRow {
                state: if running {
                    "running"
                } else if problems.is_some() {
                    "rejected"
                } else {
                    "pending"
                }
                .into(),
                gateway: status.instance,
                online,
                running_version: status.policy_version,
                problems,
            }
        })
        .collect();
    Ok(Rollout {
        version: Some(version),
        gateways: rows,
    })
}

/// The latest version's rollout, or an empty one before the first publish.
pub async fn latest_rollout(state: &AppState) -> ApiResult<Rollout> {
    let Some(latest) = state.store.list_versions(1).await?.into_iter().next() else {
        return Ok(Rollout {
            version: None,
            gateways: Vec::new(),
        });
    };
    rollout_of(state, latest.version, latest.created_at).await
}

/// Where the latest published version runs, and which gateways refused it and why.
#[utoipa::path(get, path = "/api/v1/policy/rollout", tag = "policy", responses((status = 200, body = Rollout)))]
pub async fn rollout(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Rollout>> {
    p.require(Permission::Read, "read the policy")?;
    Ok(Json(latest_rollout(&state).await?))
}
