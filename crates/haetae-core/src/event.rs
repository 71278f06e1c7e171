//! The one structured security event every haetae part emits, shaped after Elastic ECS so
//! that SIEMs ingest it without mapping. `docs/events.md` lists every field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Severity;

/// Which haetae part produced an event (`haetae.component`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// The security filter engine in front of the services.
    Gateway,
    /// The document inspector.
    Docscan,
    /// Remote support (relay, sessions).
    Remote,
    /// The Control Center itself (logins, policy changes, alerts).
    Control,
}

impl Component {
    /// The lowercase name used in JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Component::Gateway => "gateway",
            Component::Docscan => "docscan",
            Component::Remote => "remote",
            Component::Control => "control",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ECS `event.kind`: what sort of record this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Something happened (a request was checked, a file was scanned).
    #[default]
    Event,
    /// A detection that needs attention.
    Alert,
    /// A periodic measurement (heartbeats, counters).
    Metric,
    /// A state snapshot (filter states, breaker states).
    State,
    /// haetae itself failed to process something (a filter crashed).
    PipelineError,
}

/// ECS `event.category`: the broad area an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    /// Logins, step-up authentication.
    Authentication,
    /// Policy and settings changes.
    Configuration,
    /// Files: uploads, scans, transfers.
    File,
    /// Attack detections (injection, restricted devices, fraud rules).
    IntrusionDetection,
    /// Malicious or malformed documents.
    Malware,
    /// Connections and traffic.
    Network,
    /// Sessions: duplicate logins, hijack attempts, remote-support sessions.
    Session,
    /// HTTP requests and responses.
    Web,
    /// Users, roles and grades.
    Iam,
    /// Known vulnerability classes (CVE-linked findings).
    Vulnerability,
    /// The health of haetae's own parts.
    Host,
}

/// ECS `event.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action succeeded (a login), or the check passed.
    Success,
    /// The action failed or was refused (a blocked request).
    Failure,
    /// Not known or not applicable.
    #[default]
    Unknown,
}

/// ECS `event.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventInfo {
    /// Unique id (UUID v7, time-ordered) used for idempotent ingest.
    pub id: Uuid,
    /// What sort of record this is.
    #[serde(default)]
    pub kind: EventKind,
    /// Broad areas; may be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<EventCategory>,
    /// The specific action, dotted: `<filter or part>.<what>`, e.g. `restrict.block`.
    pub action: String,
    /// Whether the action succeeded.
    #[serde(default)]
    pub outcome: Outcome,
    /// Numeric severity per ECS (see [`Severity::ecs_number`]); read back into the band.
    #[serde(with = "ecs_severity")]
    pub severity: Severity,
    /// Risk score 0..=100 where a scoring filter computed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<f64>,
    /// How long the action took, in nanoseconds (ECS `event.duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

/// ECS `rule.*`: the rule or filter that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RuleInfo {
    /// Rule name, e.g. `restricted-device` or `JPEG-COM-LENGTH`.
    pub name: String,
    /// Stable rule id where the rule set has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// References (CVE ids, URLs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference: Vec<String>,
}

/// ECS `source.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The client address as the gateway saw it (after trusted-proxy handling).
    pub ip: IpAddr,
}

/// ECS `user.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user id as the business application knows it. Never a password or session id.
    pub id: String,
}

/// ECS `user_agent.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAgentInfo {
    /// The `User-Agent` header as sent.
    pub original: String,
}

/// ECS `device.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device identifier collected by the `device-info` filter.
    pub id: String,
}

/// ECS `service.*`: the protected business service (transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// The id of the [`crate::Service`] in the policy.
    pub id: String,
}

/// ECS `url.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlInfo {
    /// The request path, without the query string (queries may carry secrets).
    pub path: String,
}

/// ECS `http.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HttpInfo {
    /// The request method, upper case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_method: Option<String>,
    /// The response status the client received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status_code: Option<u16>,
}

/// ECS `file.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileInfo {
    /// File name as given by the uploader or the path scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Lower-case hex SHA-256 of the content (ECS `file.hash.sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// `haetae.*`: fields of our own, outside ECS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaetaeInfo {
    /// Which part emitted the event.
    pub component: Component,
    /// Which running instance (gateway or relay name) emitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The id of the filter instance that decided, for gateway events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The version of the policy in force when the event happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
}

/// One structured security event. Build with [`Event::new`] and the builder methods; the
/// JSON form is ECS-shaped (`@timestamp`, `event.action`, `source.ip`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened, UTC, RFC 3339 with nanoseconds.
    #[serde(rename = "@timestamp", with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// ECS `event.*`.
    pub event: EventInfo,
    /// A human-readable sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// ECS `rule.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleInfo>,
    /// ECS `source.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
    /// ECS `user.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo>,
    /// ECS `user_agent.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<UserAgentInfo>,
    /// ECS `device.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
    /// ECS `service.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceInfo>,
    /// ECS `url.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlInfo>,
    /// ECS `http.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    /// ECS `file.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// haetae's own fields.
    pub haetae: HaetaeInfo,
    /// Free key/value labels (ECS `labels`), sorted for stable output.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Event {
    /// A new event of kind `event`, outcome `unknown`, severity `info`, stamped now, with a
    /// fresh time-ordered id.
    #[must_use]
    pub fn new(component: Component, action: impl Into<String>) -> Event {
        Event {
            timestamp: OffsetDateTime::now_utc(),
            event: EventInfo {
                id: Uuid::now_v7(),
                kind: EventKind::Event,
                category: Vec::new(),
                action: action.into(),
                outcome: Outcome::Unknown,
                severity: Severity::Info,
                risk_score: None,
                duration: None,
            },
            message: None,
            rule: None,
            source: None,
            user: None,
            user_agent: None,
            device: None,
            service: None,
            url: None,
            http: None,
            file: None,
            haetae: HaetaeInfo {
                component,
                instance: None,
                filter: None,
                policy_version: None,
            },
            labels: BTreeMap::new(),
        }
    }

    /// The unique id used for idempotent ingest.
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.event.id
    }

    /// Sets the severity.
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Event {
        self.event.severity = severity;
        self
    }

    /// Sets the kind.
    #[must_use]
    pub fn kind(mut self, kind: EventKind) -> Event {
        self.event.kind = kind;
        self
    }

    /// Adds a category.
    #[must_use]
    pub fn category(mut self, category: EventCategory) -> Event {
        if !self.event.category.contains(&category) {
            self.event.category.push(category);
        }
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> Event {
        self.event.outcome = outcome;
        self
    }

    /// Sets the risk score, clamped to 0..=100 (NaN becomes 0).
    #[must_use]
    pub fn risk_score(mut self, score: f64) -> Event {
        let score = if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 100.0)
        };
        self.event.risk_score = Some(score);
        self
    }

    /// Sets the duration of the action.
    #[must_use]
    pub fn duration(mut self, duration: std::time::Duration) -> Event {
        self.event.duration = Some(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        self
    }

    /// Sets the human-readable message.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Event {
        self.message = Some(message.into());
        self
    }

    /// Sets the rule name.
    #[must_use]
    pub fn rule(mut self, name: impl Into<String>) -> Event {
        self.rule.get_or_insert_with(RuleInfo::default).name = name.into();
        self
    }

    /// Adds a rule reference (a CVE id or URL).
    #[must_use]
    pub fn rule_reference(mut self, reference: impl Into<String>) -> Event {
        self.rule
            .get_or_insert_with(RuleInfo::default)
            .reference
            .push(reference.into());
        self
    }

    /// Sets the client address.
    #[must_use]
    pub fn source_ip(mut self, ip: IpAddr) -> Event {
        self.source = Some(SourceInfo { ip });
        self
    }

    /// Sets the user id.
    #[must_use]
    pub fn user_id(mut self, id: impl Into<String>) -> Event {
        self.user = Some(UserInfo { id: id.into() });
        self
    }

    /// Sets the original `User-Agent`.
    #[must_use]
    pub fn user_agent(mut self, original: impl Into<String>) -> Event {
        self.user_agent = Some(UserAgentInfo {
            original: original.into(),
        });
        self
    }

    /// Sets the device id.
    #[must_use]
    pub fn device_id(mut self, id: impl Into<String>) -> Event {
        self.device = Some(DeviceInfo { id: id.into() });
        self
    }

    /// Sets the protected service's id.
    #[must_use]
    pub fn service_id(mut self, id: impl Into<String>) -> Event {
        self.service = Some(ServiceInfo { id: id.into() });
        self
    }

    /// Sets the request path (callers strip the query string).
    #[must_use]
    pub fn url_path(mut self, path: impl Into<String>) -> Event {
        self.url = Some(UrlInfo { path: path.into() });
        self
    }

    /// Sets the request method.
    #[must_use]
    pub fn http_method(mut self, method: impl Into<String>) -> Event {
        self.http
            .get_or_insert_with(HttpInfo::default)
            .request_method = Some(method.into());
        self
    }

    /// Sets the response status.
    #[must_use]
    pub fn http_status(mut self, status: u16) -> Event {
        self.http
            .get_or_insert_with(HttpInfo::default)
            .response_status_code = Some(status);
        self
    }

    /// Sets the file name, size and SHA-256.
    #[must_use]
    pub fn file(mut self, file: FileInfo) -> Event {
        self.file = Some(file);
        self
    }

    /// Sets the emitting instance.
    #[must_use]
    pub fn instance(mut self, name: impl Into<String>) -> Event {
        self.haetae.instance = Some(name.into());
        self
    }

    /// Sets the deciding filter instance.
    #[must_use]
    pub fn filter(mut self, id: impl Into<String>) -> Event {
        self.haetae.filter = Some(id.into());
        self
    }

    /// Sets the policy version in force.
    #[must_use]
    pub fn policy_version(mut self, version: u64) -> Event {
        self.haetae.policy_version = Some(version);
        self
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Event {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The JSON form (one line, ECS-shaped).
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serialising this type cannot fail: every field is a string, number, map with
        // string keys or a timestamp within RFC 3339's range (we only create "now").
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"event\":{{\"id\":\"{}\",\"action\":\"serialization_error\"}},\"error\":{:?}}}",
                self.event.id,
                e.to_string()
            )
        })
    }

    /// Parses the JSON form.
    pub fn from_json(json: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// `event.severity` is a number in ECS; haetae reads any number back into its band and also
/// accepts the severity's name.
mod ecs_severity {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Severity;

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `with` passes by reference
    pub fn serialize<S: Serializer>(sev: &Severity, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(sev.ecs_number())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(u64),
        Name(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(n) => Ok(Severity::from_ecs_number(n)),
            Repr::Name(name) => name.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_event() -> Event {
        Event::new(Component::Gateway, "restrict.block")
            .kind(EventKind::Alert)
            .category(EventCategory::IntrusionDetection)
            .category(EventCategory::Web)
            .outcome(Outcome::Failure)
            .severity(Severity::High)
            .risk_score(87.5)
            .duration(std::time::Duration::from_micros(42))
            .message("request from a restricted device forwarded to the notice page")
            .rule("restricted-device")
            .rule_reference("CVE-2004-0200")
            .source_ip("203.0.113.7".parse().unwrap())
            .user_id("blocked-user")
            .user_agent("Mozilla/5.0 HaetaeDevice/BLOCKED-DEVICE-1")
            .device_id("BLOCKED-DEVICE-1")
            .service_id("transfer")
            .url_path("/bank/transfer")
            .http_method("POST")
            .http_status(302)
            .file(FileInfo {
                name: Some("invoice.pdf".into()),
                size: Some(1234),
                sha256: Some("00".repeat(32)),
            })
            .instance("gw-1")
            .filter("restrict-1")
            .policy_version(7)
            .label("notice", "/notice")
    }

    #[test]
    fn event_json_round_trips_every_field() {
        let event = full_event();
        let json = event.to_json();
        let back = Event::from_json(&json).expect("parses");
        assert_eq!(back, event);
    }

    #[test]
    fn event_json_uses_ecs_field_names() {
        let value: serde_json::Value = serde_json::from_str(&full_event().to_json()).unwrap();
        assert!(value["@timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(value["event"]["action"], "restrict.block");
        assert_eq!(value["event"]["kind"], "alert");
        assert_eq!(value["event"]["outcome"], "failure");
        assert_eq!(value["event"]["severity"], 73);
        assert_eq!(value["event"]["category"][0], "intrusion_detection");
        assert_eq!(value["source"]["ip"], "203.0.113.7");
        assert_eq!(value["user"]["id"], "blocked-user");
        assert_eq!(value["device"]["id"], "BLOCKED-DEVICE-1");
        assert_eq!(value["service"]["id"], "transfer");
        assert_eq!(value["haetae"]["component"], "gateway");
        assert_eq!(value["labels"]["notice"], "/notice");
    }

    #[test]
    fn minimal_event_omits_empty_fields() {
        let json = Event::new(Component::Docscan, "scan.file").to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["@timestamp", "event", "haetae"]);
    }

    #[test]
    fn each_event_gets_a_distinct_time_ordered_id() {
        let a = Event::new(Component::Control, "login");
        let b = Event::new(Component::Control, "login");
        assert_ne!(a.id(), b.id());
        assert!(a.id() < b.id(), "UUID v7 ids sort by creation time");
    }

    #[test]
    fn severity_is_read_from_any_ecs_number_or_its_name() {
        let mut value: serde_json::Value =
            serde_json::from_str(&Event::new(Component::Remote, "x").to_json()).unwrap();
        value["event"]["severity"] = serde_json::json!(80);
        let e: Event = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(e.event.severity, Severity::High);
        value["event"]["severity"] = serde_json::json!("critical");
        let e: Event = serde_json::from_value(value).unwrap();
        assert_eq!(e.event.severity, Severity::Critical);
    }

    #[test]
    fn risk_score_is_clamped_to_percent() {
        let e = Event::new(Component::Gateway, "fds.score").risk_score(250.0);
        assert_eq!(e.event.risk_score, Some(100.0));
        let e = Event::new(Component::Gateway, "fds.score").risk_score(f64::NAN);
        assert_eq!(e.event.risk_score, Some(0.0));
    }
}
