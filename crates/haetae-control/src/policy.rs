//! Governing the policy: the catalogue of filter kinds and security controls, the
//! security-check matrix (required controls per service against the filters mapped), the
//! diff between two policies, and publish / rollback through the bus.

use std::collections::{BTreeMap, BTreeSet};

use haetae_core::{FilterMode, PolicySnapshot};
use serde::Serialize;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::now_micros;

/// A filter kind the gateway knows, with the shape of its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FilterKind {
    /// The kind's name, as in `FilterInstance::kind`.
    pub kind: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The configuration fields: name -> type and meaning (a JSON Schema object).
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
}

/// The filter kinds of `haetae-gateway`.
#[must_use]
pub fn filter_kinds() -> Vec<FilterKind> {
    vec![
        FilterKind {
            kind: "device-info",
            description: "Collects the device identifier and app version from the request and logs the transaction.",
            config_schema: json!({
                "type": "object",
                "properties": {
                    "user_agent_pattern": { "type": "string", "description": "regex with a named group `device` over User-Agent" },
                    "id_header": { "type": "string", "description": "header carrying the device id" },
                    "app_version_pattern": { "type": "string" },
                    "transaction_log": { "type": "boolean" },
                    "sample_rate": { "type": "number", "minimum": 0, "maximum": 1 }
                }
            }),
        },
        FilterKind {
            kind: "restrict",
            description: "Refuses requests from restricted devices, users or IP ranges and sends them to a notice page.",
            config_schema: json!({
                "type": "object",
                "properties": {
                    "device_lists": { "type": "array", "items": { "type": "string" }, "description": "names of device lists" },
                    "devices": { "type": "array", "items": { "type": "string" } },
                    "user_lists": { "type": "array", "items": { "type": "string" } },
                    "users": { "type": "array", "items": { "type": "string" } },
                    "ip_lists": { "type": "array", "items": { "type": "string" } },
                    "ips": { "type": "array", "items": { "type": "string" } },
                    "user_header": { "type": "string" },
                    "user_cookie": { "type": "string" },
                    "user_jwt_claim": { "type": "string" },
                    "notice_path": { "type": "string" }
                }
            }),
        },
        FilterKind {
            kind: "injection",
            description: "Detects SQL injection, XSS and path traversal in parameters.",
            config_schema: json!({ "type": "object" }),
        },
        FilterKind {
            kind: "single-session",
            description: "Allows one live session per user across all gateways.",
            config_schema: json!({ "type": "object" }),
        },
        FilterKind {
            kind: "e2e",
            description: "Requires end-to-end encrypted input fields.",
            config_schema: json!({ "type": "object" }),
        },
        FilterKind {
            kind: "step-up",
            description: "Requires a second factor (OTP, security card or certificate) for the transaction.",
            config_schema: json!({
                "type": "object",
                "properties": { "methods": { "type": "array", "items": { "enum": ["otp", "security-card", "certificate"] } } }
            }),
        },
        FilterKind {
            kind: "fds",
            description: "Fraud detection: scores transactions by rules and counters.",
            config_schema: json!({ "type": "object" }),
        },
        FilterKind {
            kind: "upload-scan",
            description: "Hands uploaded files to the document inspector.",
            config_schema: json!({ "type": "object" }),
        },
    ]
}

/// A security control a service may be required to have (seed paper, Table 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Control {
    /// Stable id.
    pub id: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Korean name.
    pub name_ko: &'static str,
    /// The filter kinds that provide it when mapped in enforce mode.
    pub satisfied_by: Vec<&'static str>,
    /// For `step-up`: the method the filter's `methods` must list.
    pub method: Option<&'static str>,
}

/// Every control the security-check matrix knows.
#[must_use]
pub fn controls() -> Vec<Control> {
    let c = |id, en, ko, by: &[&'static str], method| Control {
        id,
        name_en: en,
        name_ko: ko,
        satisfied_by: by.to_vec(),
        method,
    };
    vec![
        c("otp", "OTP", "OTP", &["step-up"], Some("otp")),
        c(
            "security-card",
            "Security card",
            "보안카드",
            &["step-up"],
            Some("security-card"),
        ),
        c(
            "certificate",
            "Certificate",
            "인증서",
            &["step-up"],
            Some("certificate"),
        ),
        c("e2e", "E2E encryption", "E2E 암호화", &["e2e"], None),
        c(
            "device-info",
            "Device information",
            "단말정보 수집",
            &["device-info"],
            None,
        ),
        c(
            "restrict",
            "Restricted devices/users",
            "단말/사용자 차단",
            &["restrict"],
            None,
        ),
        c(
            "injection",
            "Injection defence",
            "인젝션 방어",
            &["injection"],
            None,
        ),
        c(
            "single-session",
            "Single session",
            "중복 로그인 방지",
            &["single-session"],
            None,
        ),
        c("fds", "Fraud detection", "이상거래 탐지", &["fds"], None),
        c(
            "upload-scan",
            "Upload inspection",
            "업로드 파일 검사",
            &["upload-scan"],
            None,
        ),
    ]
}

/// One service's row of the security-check matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CheckRow {
    /// The service's id.
    pub service: String,
    /// Per control id: `not-required`, `met`, `monitor-only` (mapped but not enforcing)
    /// or `gap` (required, not mapped).
    pub cells: BTreeMap<String, String>,
    /// How many required controls are not met.
    pub gaps: usize,
}

/// The security-check matrix of a policy: for each service, each control's state.
#[must_use]
pub fn security_check(
    policy: &PolicySnapshot,
    required: &BTreeMap<String, Vec<String>>,
) -> Vec<CheckRow> {
    let catalogue = controls();
    policy
        .services
        .iter()
        .map(|service| {
            let needs: BTreeSet<&str> = required
                .get(&service.id)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let chain = policy.chain_with_modes(&service.id);
            let mut cells = BTreeMap::new();
            let mut gaps = 0;
            for control in &catalogue {
                let providing: Vec<_> = chain
                    .iter()
                    .filter(|(f, _)| control.satisfied_by.contains(&f.kind.as_str()))
                    .filter(|(f, _)| {
                        control.method.is_none_or(|m| {
                            f.config
                                .get("methods")
                                .and_then(|v| v.as_array())
                                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(m)))
                        })
                    })
                    .collect();
                let state = if providing.iter().any(|(_, m)| *m == FilterMode::Enforce) {
                    "met"
                } else if providing.iter().any(|(_, m)| *m == FilterMode::Monitor) {
                    "monitor-only"
                } else {
                    "none"
                };
                let cell = match (needs.contains(control.id), state) {
                    (true, "met") => "met",
                    (true, "monitor-only") => {
                        gaps += 1;
                        "monitor-only"
                    }
                    (true, _) => {
                        gaps += 1;
                        "gap"
                    }
                    (false, "met") => "provided",
                    (false, _) => "not-required",
                };
                cells.insert(control.id.to_owned(), cell.to_owned());
            }
            CheckRow {
                service: service.id.clone(),
                cells,
                gaps,
            }
        })
        .collect()
}

/// One difference between two policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// `added`, `removed` or `changed`.
    pub op: String,
    /// `service`, `filter`, `mapping` or `list`.
    pub kind: String,
    /// The id (or service id for mappings, name for lists).
    pub id: String,
    /// The old value (JSON), for `removed` and `changed`.
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    /// The new value (JSON), for `added` and `changed`.
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
}

fn diff_keyed(
    kind: &str,
    a: &BTreeMap<String, serde_json::Value>,
    b: &BTreeMap<String, serde_json::Value>,
    out: &mut Vec<Change>,
) {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let (op, before, after) = match (a.get(k), b.get(k)) {
            (Some(x), None) => ("removed", Some(x.clone()), None),
            (None, Some(y)) => ("added", None, Some(y.clone())),
            (Some(x), Some(y)) if x != y => ("changed", Some(x.clone()), Some(y.clone())),
            _ => continue,
        };
        out.push(Change {
            op: op.into(),
            kind: kind.into(),
            id: k.clone(),
            before,
            after,
        });
    }
}

fn keyed<T: Serialize>(
    items: impl IntoIterator<Item = (String, T)>,
) -> BTreeMap<String, serde_json::Value> {
    items
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            )
        })
        .collect()
}

/// What changed from `a` to `b`, by services, filters, mappings and lists.
#[must_use]
pub fn diff(a: &PolicySnapshot, b: &PolicySnapshot) -> Vec<Change> {
    let mut out = Vec::new();
    diff_keyed(
        "service",
        &keyed(a.services.iter().map(|s| (s.id.clone(), s))),
        &keyed(b.services.iter().map(|s| (s.id.clone(), s))),
        &mut out,
    );
    diff_keyed(
        "filter",
        &keyed(a.filters.iter().map(|f| (f.id.clone(), f))),
        &keyed(b.filters.iter().map(|f| (f.id.clone(), f))),
        &mut out,
    );
    diff_keyed(
        "mapping",
        &keyed(a.mappings.iter().map(|m| (m.service.clone(), &m.filters))),
        &keyed(b.mappings.iter().map(|m| (m.service.clone(), &m.filters))),
        &mut out,
    );
    diff_keyed(
        "list",
        &keyed(a.lists.iter().map(|(k, v)| (k.clone(), v))),
        &keyed(b.lists.iter().map(|(k, v)| (k.clone(), v))),
        &mut out,
    );
    out
}

/// The draft, or (when none was saved) the latest published version, or an empty policy.
pub async fn current_draft(state: &AppState) -> Result<PolicySnapshot, ApiError> {
    if let Some(d) = state.store.draft().await? {
        return Ok(d);
    }
    if let Some(v) = state.store.latest_version_number().await?
        && let Some(p) = state.store.version(v).await?
    {
        return Ok(p);
    }
    Ok(PolicySnapshot::default())
}

/// Validates `snapshot`, stores it as the next version, publishes it on the bus and audits
/// it. The version number is above both the database's and the bus's latest.
pub async fn publish(
    state: &AppState,
    snapshot: &PolicySnapshot,
    actor: &str,
    comment: &str,
    action: &str,
) -> Result<PolicySnapshot, ApiError> {
    snapshot
        .validate()
        .map_err(|e| ApiError::invalid_policy(&e))?;
    let _guard = state.publish_lock.lock().await;
    // Wasm filters naming store modules: pinned to the exact bytes, which are on the bus
    // before the policy that names them.
    let pinned = crate::wasm::pin_modules(state, snapshot).await?;
    let snapshot = &pinned;
    let on_bus = state
        .bus
        .latest_policy()
        .await
        .map_err(|e| ApiError::bus(format!("cannot read the bus's current policy: {e}")))?
        .map_or(0, |p| p.version);
    let now = now_micros();
    let min_version = i64::try_from(on_bus).unwrap_or(i64::MAX - 1) + 1;
    let stored = state
        .store
        .insert_version(snapshot, min_version, actor, comment, now)
        .await?;
    state
        .bus
        .publish_policy(stored.clone())
        .await
        .map_err(|e| ApiError::bus(format!("version {} is stored but the bus refused it: {e}. Publish again once the bus is reachable", stored.version)))?;
    state
        .store
        .append_audit(
            actor,
            action,
            &format!("policy v{}", stored.version),
            &json!({ "version": stored.version, "comment": comment }),
        )
        .await?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use haetae_core::{FilterInstance, Mapping, Service};

    fn policy() -> PolicySnapshot {
        let mut restrict = FilterInstance::new("restrict-1", "restrict");
        restrict.mode = FilterMode::Enforce;
        let mut device = FilterInstance::new("device", "device-info");
        device.mode = FilterMode::Monitor;
        let mut otp = FilterInstance::new("otp", "step-up");
        otp.config = json!({ "methods": ["otp"] });
        PolicySnapshot {
            services: vec![
                Service {
                    id: "transfer".into(),
                    name: String::new(),
                    matches: vec![],
                    upstream: "http://127.0.0.1:1".into(),
                    description: String::new(),
                },
                Service {
                    id: "balance".into(),
                    name: String::new(),
                    matches: vec![],
                    upstream: "http://127.0.0.1:1".into(),
                    description: String::new(),
                },
            ],
            filters: vec![restrict, device, otp],
            mappings: vec![Mapping::new(
                "transfer",
                vec!["restrict-1".into(), "device".into(), "otp".into()],
            )],
            ..PolicySnapshot::default()
        }
    }

    #[test]
    fn a_required_control_without_a_mapped_filter_is_a_gap() {
        let required = BTreeMap::from([("balance".to_owned(), vec!["restrict".to_owned()])]);
        let rows = security_check(&policy(), &required);
        let balance = rows.iter().find(|r| r.service == "balance").unwrap();
        assert_eq!(balance.cells["restrict"], "gap");
        assert_eq!(balance.gaps, 1);
    }

    #[test]
    fn a_required_control_mapped_in_enforce_mode_is_met() {
        let required = BTreeMap::from([(
            "transfer".to_owned(),
            vec!["restrict".to_owned(), "otp".to_owned()],
        )]);
        let rows = security_check(&policy(), &required);
        let transfer = rows.iter().find(|r| r.service == "transfer").unwrap();
        assert_eq!(transfer.cells["restrict"], "met");
        assert_eq!(transfer.cells["otp"], "met");
        assert_eq!(transfer.gaps, 0);
    }

    #[test]
    fn a_control_mapped_only_in_monitor_mode_counts_as_a_gap() {
        let required = BTreeMap::from([("transfer".to_owned(), vec!["device-info".to_owned()])]);
        let rows = security_check(&policy(), &required);
        assert_eq!(rows[0].cells["device-info"], "monitor-only");
        assert_eq!(rows[0].gaps, 1);
    }

    #[test]
    fn a_matrix_cell_mode_overrides_the_instance_mode_in_the_check() {
        let required = BTreeMap::from([(
            "transfer".to_owned(),
            vec!["device-info".to_owned(), "restrict".to_owned()],
        )]);
        let mut p = policy();
        p.mappings[0]
            .modes
            .insert("device".into(), FilterMode::Enforce);
        p.mappings[0]
            .modes
            .insert("restrict-1".into(), FilterMode::Monitor);
        let rows = security_check(&p, &required);
        assert_eq!(rows[0].cells["device-info"], "met");
        assert_eq!(rows[0].cells["restrict"], "monitor-only");
        assert_eq!(rows[0].gaps, 1);
    }

    #[test]
    fn a_step_up_filter_meets_only_the_methods_it_lists() {
        let required = BTreeMap::from([("transfer".to_owned(), vec!["certificate".to_owned()])]);
        let rows = security_check(&policy(), &required);
        assert_eq!(rows[0].cells["certificate"], "gap");
    }

    #[test]
    fn diff_names_added_removed_and_changed_items() {
        let a = policy();
        let mut b = policy();
        b.services.retain(|s| s.id != "balance");
        b.filters[0].mode = FilterMode::Monitor;
        b.mappings.push(Mapping::new("new", vec![]));
        let changes: Vec<(String, String, String)> = diff(&a, &b)
            .into_iter()
            .map(|c| (c.op, c.kind, c.id))
            .collect();
        assert_eq!(
            changes,
            [
                ("removed".into(), "service".into(), "balance".into()),
                ("changed".into(), "filter".into(), "restrict-1".into()),
                ("added".into(), "mapping".into(), "new".into()),
            ]
        );
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn every_control_is_provided_by_a_known_filter_kind() {
        let kinds: BTreeSet<&str> = filter_kinds().iter().map(|k| k.kind).collect();
        for c in controls() {
            for k in &c.satisfied_by {
                assert!(kinds.contains(k), "{} names unknown kind {k}", c.id);
            }
        }
    }
}
