//! The policy model: which protected [`Service`]s exist, which [`FilterInstance`]s are
//! configured, and which filters run, in which order, for each service ([`Mapping`]).
//! A [`PolicySnapshot`] is one immutable, versioned whole: the Control Center publishes it,
//! gateways validate it and swap it in atomically, or keep the one they have.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The longest time budget a filter may be given. Anything longer belongs in the
/// application, not in front of it.
pub const MAX_FILTER_BUDGET_MS: u64 = 60_000;

/// The budget a filter instance gets when its configuration names none.
pub const DEFAULT_FILTER_BUDGET_MS: u64 = 50;

/// A complete, versioned policy: services, filter instances, mappings and lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySnapshot {
    /// Monotonic version; the Control Center increments it on every publish.
    #[serde(default)]
    pub version: u64,
    /// When this version was created (UTC).
    #[serde(default = "now", with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The protected services (transactions).
    #[serde(default)]
    pub services: Vec<Service>,
    /// The configured filter instances.
    #[serde(default)]
    pub filters: Vec<FilterInstance>,
    /// Service -> ordered filter instances.
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Named lists that filters refer to (restricted devices, users, IP ranges, fraud
    /// accounts).
    #[serde(default)]
    pub lists: BTreeMap<String, PolicyList>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Default for PolicySnapshot {
    fn default() -> Self {
        PolicySnapshot {
            version: 0,
            created_at: now(),
            services: Vec::new(),
            filters: Vec::new(),
            mappings: Vec::new(),
            lists: BTreeMap::new(),
        }
    }
}

/// A protected business service (a "transaction" in the seed paper): which requests belong
/// to it and where they go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Stable id, `[A-Za-z0-9._-]`, unique in the policy.
    pub id: String,
    /// Display name (defaults to the id).
    #[serde(default)]
    pub name: String,
    /// Requests that match any of these rules belong to the service. No rule matches every
    /// request. Written `[[services.match]]` in TOML.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<RouteMatch>,
    /// Where matching requests are forwarded, and how: `http://` (HTTP/1.1), `https://`
    /// (TLS; HTTP/2 or HTTP/1.1 by ALPN) or `h2c://` (cleartext HTTP/2 with prior
    /// knowledge), then `host[:port][/base]`. See [`UPSTREAM_SCHEMES`].
    pub upstream: String,
    /// Free text for the Control Center.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl Service {
    /// The name to show: `name`, or the id when no name was given.
    #[must_use]
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// One rule that selects requests for a service. Every field that is set must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// The `Host` (without port), exact, or `*.example.com` for any subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Allowed methods, upper case; empty allows every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// The path starts with this (segment-wise: `/bank` matches `/bank` and `/bank/x`, not
    /// `/banking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The whole path matches this regular expression (anchored at both ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_pattern: Option<String>,
    /// A transaction-code parameter that must carry one of the given values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionMatch>,
}

/// Selects a transaction by a request parameter, as many banking front ends route every
/// transaction through one URL with a code such as `?trxCd=TRF001`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionMatch {
    /// The query or form parameter name.
    pub param: String,
    /// The values that select this service.
    pub values: Vec<String>,
}

/// What a filter instance does with its decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    /// Decide and act.
    #[default]
    Enforce,
    /// Decide and log the decision as an event, never act on it.
    Monitor,
    /// Configured but not run.
    Off,
}

/// What happens to a request when a filter fails (panics, errors, or exceeds its budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// The request continues as if the filter had said "continue". The default: a failing
    /// security part must not take the service down.
    #[default]
    FailOpen,
    /// The request is refused with 503.
    FailClosed,
}

/// One configured use of a filter kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterInstance {
    /// Stable id, `[A-Za-z0-9._-]`, unique in the policy.
    pub id: String,
    /// The filter kind, e.g. `device-info`, `restrict`, `injection`, or `wasm`.
    pub kind: String,
    /// The kind's own configuration; the kind validates it when the chain is built.
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    pub config: serde_json::Value,
    /// Enforce, monitor or off.
    #[serde(default)]
    pub mode: FilterMode,
    /// Fail-open or fail-closed.
    #[serde(default)]
    pub failure: FailurePolicy,
    /// Time budget per phase call, in milliseconds.
    #[serde(default = "default_budget")]
    pub budget_ms: u64,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn is_empty_object(v: &serde_json::Value) -> bool {
    v.as_object().is_some_and(serde_json::Map::is_empty)
}

fn default_budget() -> u64 {
    DEFAULT_FILTER_BUDGET_MS
}

impl FilterInstance {
    /// A new instance of `kind` with an empty config, enforce mode, fail-open and the default
    /// budget.
    #[must_use]
    pub fn new(id: impl Into<String>, kind: impl Into<String>) -> FilterInstance {
        FilterInstance {
            id: id.into(),
            kind: kind.into(),
            config: empty_object(),
            mode: FilterMode::default(),
            failure: FailurePolicy::default(),
            budget_ms: DEFAULT_FILTER_BUDGET_MS,
        }
    }

    /// Deserialises the config into the kind's typed form.
    pub fn typed_config<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.config.clone())
    }
}

/// Where a `wasm` filter instance names a module of the Control Center's module store:
/// `config.stored`, instead of a file (`config.module`). The Center resolves `name` (and
/// `version`, or `sha256`; neither: the newest version) when the policy is published and
/// fills in every field, so a published policy pins the exact bytes; gateways fetch those
/// bytes from the bus by `sha256` and check them (and `signature` against their trusted
/// keys) before running them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmModuleRef {
    /// The module's name in the store.
    pub name: String,
    /// The version (1, 2, ...) of that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// SHA-256 of the module's bytes, 64 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The module's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The Ed25519 signature over the module's bytes (128 hex digits), when it was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The id of the trusted key that signature verified against at upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// The `config` key of a `wasm` filter instance that holds a [`WasmModuleRef`].
pub const WASM_STORED_KEY: &str = "stored";

impl WasmModuleRef {
    /// The SHA-256 as bytes, when `sha256` is set and well formed.
    #[must_use]
    pub fn digest(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        let text = self.sha256.as_deref()?;
        (text.len() == 64 && hex::decode_to_slice(text, &mut out).is_ok()).then_some(out)
    }
}

impl FilterInstance {
    /// The store module a `wasm` instance names in `config.stored`: `None` for other kinds
    /// and for modules loaded from a file; `Err` (saying why) when `stored` is malformed.
    pub fn wasm_module_ref(&self) -> Option<Result<WasmModuleRef, String>> {
        if self.kind != "wasm" {
            return None;
        }
        let value = self.config.get(WASM_STORED_KEY)?;
        Some(
            serde_json::from_value(value.clone())
                .map_err(|e| format!("filters.{}.config.stored: {e}", self.id)),
        )
    }
}

/// The ordered filter chain of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The service's id.
    pub service: String,
    /// Filter instance ids, in the order they run.
    pub filters: Vec<String>,
    /// Per-cell modes of the mapping matrix: for this service only, the filter (a key, one
    /// of `filters`) runs in this mode instead of its instance's `mode`. Absent keys use the
    /// instance's mode. Optional, so policies written before it existed still load.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modes: BTreeMap<String, FilterMode>,
}

impl Mapping {
    /// A mapping of `service` to `filters` in order, each in its instance's own mode.
    #[must_use]
    pub fn new(service: impl Into<String>, filters: Vec<String>) -> Mapping {
        Mapping {
            service: service.into(),
            filters,
            modes: BTreeMap::new(),
        }
    }

    /// The mode `filter` runs in for this service: the cell's mode when set, else
    /// `instance_mode`.
    #[must_use]
    pub fn mode_of(&self, filter: &str, instance_mode: FilterMode) -> FilterMode {
        self.modes.get(filter).copied().unwrap_or(instance_mode)
    }
}

/// What a list holds; decides how its entries are validated and matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// Device identifiers.
    Device,
    /// User ids.
    User,
    /// IP addresses and CIDR ranges.
    Ip,
    /// Account numbers (e.g. reported fraud accounts).
    Account,
    /// Anything else; matched as exact strings.
    Generic,
}

/// A named list in the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyList {
    /// What the entries are.
    pub kind: ListKind,
    /// The entries.
    #[serde(default)]
    pub entries: Vec<String>,
    /// Free text for the Control Center.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// One problem in a policy: where (`services[3].upstream`) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// The path to the offending value, e.g. `mappings[0].filters[2]`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a policy, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the policy has {} problem(s):", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Collects problems with their paths.
#[derive(Default)]
struct Problems(Vec<ValidationError>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

const ID_RULE: &str = "must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' or '-'";

/// The schemes an upstream URL may have; the scheme also names the protocol spoken to the
/// upstream: `http` is HTTP/1.1, `https` is TLS with HTTP/2 or HTTP/1.1 chosen by ALPN,
/// `h2c` is cleartext HTTP/2 with prior knowledge (RFC 9113 §3.3).
pub const UPSTREAM_SCHEMES: [&str; 3] = ["http", "https", "h2c"];

/// Checks an upstream URL: one of [`UPSTREAM_SCHEMES`], a host, no query string.
fn check_upstream(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a URL ({e}): {url:?}"))?;
    match uri.scheme_str() {
        Some(s) if UPSTREAM_SCHEMES.contains(&s) => {}
        Some(other) => {
            return Err(format!(
                "scheme {other:?} is not http, https or h2c (cleartext HTTP/2)"
            ));
        }
        None => {
            return Err(format!(
                "not an absolute URL (expected http://host:port): {url:?}"
            ));
        }
    }
    match uri.authority() {
        Some(a) if !a.host().is_empty() => {}
        _ => return Err(format!("has no host: {url:?}")),
    }
    if uri.query().is_some() {
        return Err("must not carry a query string".into());
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a host name (letters, digits, '-', dots; '*.' prefix for subdomains; no port)"
        ))
    }
}

impl PolicySnapshot {
    /// Parses a policy from TOML (the gateway's file format).
    pub fn from_toml(text: &str) -> Result<PolicySnapshot, toml::de::Error> {
        toml::from_str(text)
    }

    /// Parses a policy from JSON (the Control Center's and the bus's format).
    pub fn from_json(text: &str) -> Result<PolicySnapshot, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The service with this id.
    #[must_use]
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The filter instance with this id.
    #[must_use]
    pub fn filter(&self, id: &str) -> Option<&FilterInstance> {
        self.filters.iter().find(|f| f.id == id)
    }

    /// The ordered filter instances mapped to a service (empty when it has no mapping).
    /// Ids that name no filter are skipped; [`PolicySnapshot::validate`] reports them.
    #[must_use]
    pub fn chain_for(&self, service_id: &str) -> Vec<&FilterInstance> {
        self.mappings
            .iter()
            .filter(|m| m.service == service_id)
            .flat_map(|m| m.filters.iter().filter_map(|id| self.filter(id)))
            .collect()
    }

    /// The service's filter chain with the mode each filter runs in for this service (the
    /// matrix cell's mode, else the instance's).
    #[must_use]
    pub fn chain_with_modes(&self, service_id: &str) -> Vec<(&FilterInstance, FilterMode)> {
        self.mappings
            .iter()
            .filter(|m| m.service == service_id)
            .flat_map(|m| {
                m.filters
                    .iter()
                    .filter_map(|id| self.filter(id).map(|f| (f, m.mode_of(id, f.mode))))
            })
            .collect()
    }

    /// Checks the whole policy and reports every problem with its path, so an operator can
    /// fix them all in one pass. A policy that fails validation must not be run.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut p = Problems::default();
        self.validate_services(&mut p);
        self.validate_filters(&mut p);
        self.validate_mappings(&mut p);
        self.validate_lists(&mut p);
        if p.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(p.0))
        }
    }

    fn validate_services(&self, p: &mut Problems) {
        let mut seen = BTreeSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let at = format!("services[{i}]");
            if !is_id(&s.id) {
                p.add(format!("{at}.id"), format!("{:?} {ID_RULE}", s.id));
            } else if !seen.insert(s.id.as_str()) {
                p.add(
                    format!("{at}.id"),
                    format!("duplicate service id {:?}", s.id),
                );
            }
            if let Err(e) = check_upstream(&s.upstream) {
                p.add(format!("{at}.upstream"), e);
            }
            for (j, m) in s.matches.iter().enumerate() {
                validate_match(m, &format!("{at}.match[{j}]"), p);
            }
        }
    }

    fn validate_filters(&self, p: &mut Problems) {
        let mut seen = BTreeSet::new();
        for (i, f) in self.filters.iter().enumerate() {
            let at = format!("filters[{i}]");
            if !is_id(&f.id) {
                p.add(format!("{at}.id"), format!("{:?} {ID_RULE}", f.id));
            } else if !seen.insert(f.id.as_str()) {
                p.add(
                    format!("{at}.id"),
                    format!("duplicate filter id {:?}", f.id),
                );
            }
            if f.kind.is_empty()
                || !f
                    .kind
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                p.add(
                    format!("{at}.kind"),
                    format!(
                        "{:?} is not a filter kind (lower-case letters, digits, '-')",
                        f.kind
                    ),
                );
            }
            if !(f.config.is_object() || f.config.is_null()) {
                p.add(format!("{at}.config"), "must be a table (object)");
            }
            if f.budget_ms == 0 || f.budget_ms > MAX_FILTER_BUDGET_MS {
                p.add(
                    format!("{at}.budget_ms"),
                    format!("{} is out of range 1..={MAX_FILTER_BUDGET_MS}", f.budget_ms),
                );
            }
        }
    }

    fn validate_mappings(&self, p: &mut Problems) {
        let mut mapped = BTreeSet::new();
        for (i, m) in self.mappings.iter().enumerate() {
            let at = format!("mappings[{i}]");
            if self.service(&m.service).is_none() {
                p.add(
                    format!("{at}.service"),
                    format!("no service has id {:?}", m.service),
                );
            } else if !mapped.insert(m.service.as_str()) {
                p.add(
                    format!("{at}.service"),
                    format!(
                        "service {:?} is mapped twice; put all its filters in one mapping",
                        m.service
                    ),
                );
            }
            let mut in_chain = BTreeSet::new();
            for (j, id) in m.filters.iter().enumerate() {
                if self.filter(id).is_none() {
                    p.add(
                        format!("{at}.filters[{j}]"),
                        format!("no filter has id {id:?}"),
                    );
                } else if !in_chain.insert(id.as_str()) {
                    p.add(
                        format!("{at}.filters[{j}]"),
                        format!("filter {id:?} appears twice in this chain"),
                    );
                }
            }
            for id in m.modes.keys() {
                if !m.filters.iter().any(|f| f == id) {
                    p.add(
                        format!("{at}.modes.{id}"),
                        format!(
                            "a mode is set for filter {id:?}, which is not in this mapping's filters"
                        ),
                    );
                }
            }
        }
    }

    fn validate_lists(&self, p: &mut Problems) {
        for (name, list) in &self.lists {
            let at = format!("lists.{name}");
            if !is_id(name) {
                p.add(at.clone(), format!("list name {name:?} {ID_RULE}"));
            }
            for (j, entry) in list.entries.iter().enumerate() {
                if entry.trim().is_empty() {
                    p.add(format!("{at}.entries[{j}]"), "empty entry");
                } else if list.kind == ListKind::Ip
                    && entry.parse::<std::net::IpAddr>().is_err()
                    && entry.parse::<ipnet::IpNet>().is_err()
                {
                    p.add(
                        format!("{at}.entries[{j}]"),
                        format!("{entry:?} is not an IP address or CIDR range"),
                    );
                }
            }
        }
    }
}

fn validate_match(m: &RouteMatch, at: &str, p: &mut Problems) {
    if let Some(host) = &m.host
        && let Err(e) = check_host(host)
    {
        p.add(format!("{at}.host"), e);
    }
    for (k, method) in m.methods.iter().enumerate() {
        let valid = http::Method::from_bytes(method.as_bytes()).is_ok()
            && !method.bytes().any(|b| b.is_ascii_lowercase());
        if !valid {
            p.add(
                format!("{at}.methods[{k}]"),
                format!("{method:?} is not an upper-case HTTP method"),
            );
        }
    }
    if let Some(prefix) = &m.path_prefix
        && !prefix.starts_with('/')
    {
        p.add(
            format!("{at}.path_prefix"),
            format!("{prefix:?} must start with '/'"),
        );
    }
    if let Some(pattern) = &m.path_pattern
        && let Err(e) = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
    {
        p.add(
            format!("{at}.path_pattern"),
            format!("not a valid regular expression: {e}"),
        );
    }
    if let Some(tx) = &m.transaction {
        if tx.param.is_empty() {
            p.add(format!("{at}.transaction.param"), "must not be empty");
        }
        if tx.values.is_empty() {
            p.add(
                format!("{at}.transaction.values"),
                "must list at least one transaction code",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        version = 3

        [[services]]
        id = "transfer"
        name = "Account transfer"
        upstream = "http://127.0.0.1:9000"
        [[services.match]]
        methods = ["POST"]
        path_prefix = "/bank/transfer"

        [[services]]
        id = "everything"
        upstream = "https://backend.example:8443/base"

        [[filters]]
        id = "device"
        kind = "device-info"

        [[filters]]
        id = "restrict-1"
        kind = "restrict"
        mode = "monitor"
        failure = "fail-closed"
        budget_ms = 5
        config = { user_header = "X-User-Id" }

        [[mappings]]
        service = "transfer"
        filters = ["device", "restrict-1"]

        [lists.restricted-devices]
        kind = "device"
        entries = ["BLOCKED-DEVICE-1"]

        [lists.office]
        kind = "ip"
        entries = ["10.0.0.0/8", "192.0.2.1"]
    "#;

    #[test]
    fn a_well_formed_policy_parses_and_validates() {
        let policy = PolicySnapshot::from_toml(EXAMPLE).expect("parses");
        assert_eq!(policy.validate(), Ok(()));
        assert_eq!(policy.version, 3);
        let chain: Vec<&str> = policy
            .chain_for("transfer")
            .iter()
            .map(|f| f.id.as_str())
            .collect();
        assert_eq!(chain, ["device", "restrict-1"]);
        let restrict = policy.filter("restrict-1").unwrap();
        assert_eq!(restrict.mode, FilterMode::Monitor);
        assert_eq!(restrict.failure, FailurePolicy::FailClosed);
        assert_eq!(restrict.config["user_header"], "X-User-Id");
        let device = policy.filter("device").unwrap();
        assert_eq!(device.budget_ms, DEFAULT_FILTER_BUDGET_MS);
        assert_eq!(device.failure, FailurePolicy::FailOpen);
        assert_eq!(
            policy.service("everything").unwrap().display_name(),
            "everything"
        );
    }

    #[test]
    fn json_round_trip_keeps_the_policy() {
        let policy = PolicySnapshot::from_toml(EXAMPLE).unwrap();
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(PolicySnapshot::from_json(&json).unwrap(), policy);
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let policy = PolicySnapshot::from_toml(
            r#"
            [[services]]
            id = "ok"
            upstream = "http://127.0.0.1:9000"

            [[services]]
            id = "ok"
            upstream = "ftp://files.example"
            [[services.match]]
            host = "bad host"
            methods = ["post", "GET"]
            path_prefix = "bank"
            path_pattern = "(unclosed"
            transaction = { param = "", values = [] }

            [[services]]
            id = "no url"
            upstream = "not a url"

            [[filters]]
            id = "f1"
            kind = "Restrict"
            budget_ms = 0
            config = 5

            [[mappings]]
            service = "missing"
            filters = ["f1", "nope", "f1"]

            [lists.ips]
            kind = "ip"
            entries = ["10.0.0.0/33", ""]
            "#,
        )
        .expect("the shape is right; the values are not");
        let errors = policy.validate().unwrap_err();
        let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "services[1].id",
                "services[1].upstream",
                "services[1].match[0].host",
                "services[1].match[0].methods[0]",
                "services[1].match[0].path_prefix",
                "services[1].match[0].path_pattern",
                "services[1].match[0].transaction.param",
                "services[1].match[0].transaction.values",
                "services[2].id",
                "services[2].upstream",
                "filters[0].kind",
                "filters[0].config",
                "filters[0].budget_ms",
                "mappings[0].service",
                "mappings[0].filters[1]",
                "mappings[0].filters[2]",
                "lists.ips.entries[0]",
                "lists.ips.entries[1]",
            ]
        );
        let text = errors.to_string();
        assert!(text.starts_with("the policy has 18 problem(s):"), "{text}");
        assert!(text.contains("services[1].upstream: scheme \"ftp\" is not http, https or h2c"));
        assert!(text.contains("mappings[0].filters[1]: no filter has id \"nope\""));
    }

    #[test]
    fn per_cell_modes_parse_default_to_the_instance_and_must_name_a_mapped_filter() {
        let mut policy = PolicySnapshot::from_toml(EXAMPLE).unwrap();
        assert!(
            policy.mappings[0].modes.is_empty(),
            "old policies load unchanged"
        );
        assert_eq!(
            policy.mappings[0].mode_of("device", FilterMode::Enforce),
            FilterMode::Enforce
        );
        let with_mode = EXAMPLE.replace(
            "filters = [\"device\", \"restrict-1\"]",
            "filters = [\"device\", \"restrict-1\"]\nmodes = { restrict-1 = \"off\" }",
        );
        let parsed = PolicySnapshot::from_toml(&with_mode).unwrap();
        assert_eq!(
            parsed.mappings[0].mode_of("restrict-1", FilterMode::Monitor),
            FilterMode::Off
        );
        parsed.validate().unwrap();
        let json = serde_json::to_string(&parsed.mappings[0]).unwrap();
        assert!(json.contains(r#""modes":{"restrict-1":"off"}"#), "{json}");

        policy.mappings[0]
            .modes
            .insert("nope".into(), FilterMode::Monitor);
        let errors = policy.validate().unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert_eq!(errors.0[0].path, "mappings[0].modes.nope");
        assert!(
            PolicySnapshot::from_toml(&EXAMPLE.replace(
                "filters = [\"device\", \"restrict-1\"]",
                "filters = [\"device\", \"restrict-1\"]\nmodes = { device = \"loud\" }",
            ))
            .is_err()
        );
    }

    #[test]
    fn a_service_mapped_twice_is_rejected() {
        let mut policy = PolicySnapshot::from_toml(EXAMPLE).unwrap();
        policy.mappings.push(Mapping::new("transfer", vec![]));
        let errors = policy.validate().unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].path, "mappings[1].service");
    }

    #[test]
    fn unknown_fields_are_rejected_at_parse_time_with_their_location() {
        let err = PolicySnapshot::from_toml(
            r#"
            [[services]]
            id = "a"
            upstrem = "http://x"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("upstrem"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn typed_config_reads_a_filters_own_settings() {
        #[derive(Deserialize)]
        struct RestrictConfig {
            user_header: String,
        }
        let policy = PolicySnapshot::from_toml(EXAMPLE).unwrap();
        let cfg: RestrictConfig = policy.filter("restrict-1").unwrap().typed_config().unwrap();
        assert_eq!(cfg.user_header, "X-User-Id");
    }

    #[test]
    fn upstream_schemes_name_the_protocol() {
        for ok in [
            "http://127.0.0.1:9000",
            "https://backend.example:8443/base",
            "h2c://127.0.0.1:9000",
            "h2c://grpc.internal/api",
        ] {
            assert_eq!(check_upstream(ok), Ok(()), "{ok}");
        }
        let err = check_upstream("h2://backend.example").unwrap_err();
        assert!(err.contains("\"h2\" is not http, https or h2c"), "{err}");
        assert!(check_upstream("h2c:///path").is_err());
        assert!(check_upstream("h2c://host:1/?q=1").is_err());
    }
}
