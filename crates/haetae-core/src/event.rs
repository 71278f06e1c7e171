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
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        // `write_json` writes UTF-8 only (the fields are `String`s, the rest ASCII).
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends the JSON form to `out`: the same bytes as serialising the event with
    /// `serde_json` (its `Serialize` implementation), written field by field without going
    /// through serde, about four times cheaper. Events are written on every request (the
    /// gateway's transaction log), so this matters. A timestamp that is not UTC or outside
    /// years 0..=9999 (only a parsed event can carry one) goes through `serde_json`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let start = out.len();
        if !json::write_event(self, out) {
            out.truncate(start);
            // Serialising this type cannot fail: every field is a string, number, map with
            // string keys or a timestamp within RFC 3339's range (we only create "now").
            if let Err(e) = serde_json::to_writer(&mut *out, self) {
                out.truncate(start);
                out.extend_from_slice(
                    format!(
                        "{{\"event\":{{\"id\":\"{}\",\"action\":\"serialization_error\"}},\"error\":{:?}}}",
                        self.event.id,
                        e.to_string()
                    )
                    .as_bytes(),
                );
            }
        }
    }

    /// Parses the JSON form.
    pub fn from_json(json: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// The hand-written JSON writer behind [`Event::write_json`]; the test
/// `the_json_writer_writes_what_serde_writes` holds it to `serde_json`'s output.
mod json {
    use std::io::Write as _;
    use std::net::IpAddr;

    use super::{Component, Event, EventCategory, EventKind, Outcome};

    /// Writes `event`; `false` (and a partial write the caller drops) for a timestamp
    /// this writer does not handle.
    pub(super) fn write_event(e: &Event, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(b"{\"@timestamp\":\"");
        if !timestamp(e, out) {
            return false;
        }
        let ev = &e.event;
        out.extend_from_slice(b"\",\"event\":{\"id\":\"");
        let mut buf = uuid::Uuid::encode_buffer();
        out.extend_from_slice(ev.id.hyphenated().encode_lower(&mut buf).as_bytes());
        out.extend_from_slice(b"\",\"kind\":\"");
        out.extend_from_slice(kind(ev.kind).as_bytes());
        out.push(b'"');
        if !ev.category.is_empty() {
            out.extend_from_slice(b",\"category\":[");
            for (i, c) in ev.category.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                out.extend_from_slice(category(*c).as_bytes());
                out.push(b'"');
            }
            out.push(b']');
        }
        out.extend_from_slice(b",\"action\":");
        string(out, &ev.action);
        out.extend_from_slice(b",\"outcome\":\"");
        out.extend_from_slice(outcome(ev.outcome).as_bytes());
        out.extend_from_slice(b"\",\"severity\":");
        number(out, u64::from(ev.severity.ecs_number()));
        if let Some(score) = ev.risk_score {
            out.extend_from_slice(b",\"risk_score\":");
            // The same float formatting as serde_json's (it is serde_json's).
            if serde_json::to_writer(&mut *out, &score).is_err() {
                return false;
            }
        }
        if let Some(d) = ev.duration {
            out.extend_from_slice(b",\"duration\":");
            number(out, d);
        }
        out.push(b'}');
        if let Some(m) = &e.message {
            out.extend_from_slice(b",\"message\":");
            string(out, m);
        }
        if let Some(r) = &e.rule {
            out.extend_from_slice(b",\"rule\":{\"name\":");
            string(out, &r.name);
            if let Some(id) = &r.id {
                out.extend_from_slice(b",\"id\":");
                string(out, id);
            }
            if !r.reference.is_empty() {
                out.extend_from_slice(b",\"reference\":[");
                for (i, x) in r.reference.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    string(out, x);
                }
                out.push(b']');
            }
            out.push(b'}');
        }
        if let Some(src) = &e.source {
            out.extend_from_slice(b",\"source\":{\"ip\":\"");
            ip(out, src.ip);
            out.extend_from_slice(b"\"}");
        }
        for (name, value) in [
            (&b",\"user\":{\"id\":"[..], e.user.as_ref().map(|u| &u.id)),
            (
                &b",\"user_agent\":{\"original\":"[..],
                e.user_agent.as_ref().map(|u| &u.original),
            ),
            (
                &b",\"device\":{\"id\":"[..],
                e.device.as_ref().map(|d| &d.id),
            ),
            (
                &b",\"service\":{\"id\":"[..],
                e.service.as_ref().map(|s| &s.id),
            ),
            (&b",\"url\":{\"path\":"[..], e.url.as_ref().map(|u| &u.path)),
        ] {
            if let Some(v) = value {
                out.extend_from_slice(name);
                string(out, v);
                out.push(b'}');
            }
        }
        if let Some(h) = &e.http {
            out.extend_from_slice(b",\"http\":{");
            let mut first = true;
            if let Some(m) = &h.request_method {
                out.extend_from_slice(b"\"request_method\":");
                string(out, m);
                first = false;
            }
            if let Some(code) = h.response_status_code {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"response_status_code\":");
                number(out, u64::from(code));
            }
            out.push(b'}');
        }
        if let Some(f) = &e.file {
            out.extend_from_slice(b",\"file\":{");
            let mut first = true;
            if let Some(n) = &f.name {
                out.extend_from_slice(b"\"name\":");
                string(out, n);
                first = false;
            }
            if let Some(size) = f.size {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"size\":");
                number(out, size);
                first = false;
            }
            if let Some(h) = &f.sha256 {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"sha256\":");
                string(out, h);
            }
            out.push(b'}');
        }
        let h = &e.haetae;
        out.extend_from_slice(b",\"haetae\":{\"component\":\"");
        out.extend_from_slice(component(h.component).as_bytes());
        out.push(b'"');
        if let Some(i) = &h.instance {
            out.extend_from_slice(b",\"instance\":");
            string(out, i);
        }
        if let Some(f) = &h.filter {
            out.extend_from_slice(b",\"filter\":");
            string(out, f);
        }
        if let Some(v) = h.policy_version {
            out.extend_from_slice(b",\"policy_version\":");
            number(out, v);
        }
        out.push(b'}');
        if !e.labels.is_empty() {
            out.extend_from_slice(b",\"labels\":{");
            for (i, (k, v)) in e.labels.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, k);
                out.push(b':');
                string(out, v);
            }
            out.push(b'}');
        }
        out.push(b'}');
        true
    }

    /// RFC 3339 as the `time` crate writes it (`time::serde::rfc3339`): seconds, then a
    /// fraction without trailing zeros when there is one, then `Z`. Only UTC timestamps of
    /// years 0..=9999.
    fn timestamp(e: &Event, out: &mut Vec<u8>) -> bool {
        let t = e.timestamp;
        let year = t.year();
        if !t.offset().is_utc() || !(0..10_000).contains(&year) {
            return false;
        }
        let year = year.unsigned_abs();
        let two = |out: &mut Vec<u8>, v: u8| out.extend_from_slice(&[b'0' + v / 10, b'0' + v % 10]);
        two(out, u8::try_from(year / 100).unwrap_or(0));
        two(out, u8::try_from(year % 100).unwrap_or(0));
        out.push(b'-');
        two(out, u8::from(t.month()));
        out.push(b'-');
        two(out, t.day());
        out.push(b'T');
        two(out, t.hour());
        out.push(b':');
        two(out, t.minute());
        out.push(b':');
        two(out, t.second());
        let mut nanos = t.nanosecond();
        if nanos != 0 {
            let mut digits = [b'0'; 9];
            for d in digits.iter_mut().rev() {
                *d = b'0' + u8::try_from(nanos % 10).unwrap_or(0);
                nanos /= 10;
            }
            let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
            out.push(b'.');
            out.extend_from_slice(&digits[..len]);
        }
        out.push(b'Z');
        true
    }

    fn number(out: &mut Vec<u8>, mut v: u64) {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
            if v == 0 {
                break;
            }
        }
        out.extend_from_slice(&buf[i..]);
    }

    fn ip(out: &mut Vec<u8>, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    number(out, u64::from(octet));
                }
            }
            // Writing to a Vec cannot fail.
            IpAddr::V6(v6) => {
                let _ = write!(out, "{v6}");
            }
        }
    }

    /// A JSON string as `serde_json` writes it: `"` and `\\` escaped, `\b \f \n \r \t`
    /// for those controls, `\u00XX` (lower-case hex) for the other controls below 0x20,
    /// everything else (DEL, non-ASCII) as is.
    fn string(out: &mut Vec<u8>, s: &str) {
        out.push(b'"');
        let bytes = s.as_bytes();
        let mut from = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                0x0c => b"\\f",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => {
                    out.extend_from_slice(&bytes[from..i]);
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xf)],
                    ]);
                    from = i + 1;
                    continue;
                }
                _ => continue,
            };
            out.extend_from_slice(&bytes[from..i]);
            out.extend_from_slice(escape);
            from = i + 1;
        }
        out.extend_from_slice(&bytes[from..]);
        out.push(b'"');
    }

    fn kind(k: EventKind) -> &'static str {
        match k {
            EventKind::Event => "event",
            EventKind::Alert => "alert",
            EventKind::Metric => "metric",
            EventKind::State => "state",
            EventKind::PipelineError => "pipeline_error",
        }
    }

    fn category(c: EventCategory) -> &'static str {
        match c {
            EventCategory::Authentication => "authentication",
            EventCategory::Configuration => "configuration",
            EventCategory::File => "file",
            EventCategory::IntrusionDetection => "intrusion_detection",
            EventCategory::Malware => "malware",
            EventCategory::Network => "network",
            EventCategory::Session => "session",
            EventCategory::Web => "web",
            EventCategory::Iam => "iam",
            EventCategory::Vulnerability => "vulnerability",
            EventCategory::Host => "host",
        }
    }

    fn outcome(o: Outcome) -> &'static str {
        match o {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }

    fn component(c: Component) -> &'static str {
        c.as_str()
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

    /// Every enum value, every optional field present and absent, strings with every kind
    /// of character JSON escapes, IPv4 and IPv6, timestamps with and without a fraction.
    #[test]
    fn the_json_writer_writes_what_serde_writes() {
        let awkward = "q\"b\\s/\u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f} \u{7f}é기\u{2028}😀";
        let kinds = [
            EventKind::Event,
            EventKind::Alert,
            EventKind::Metric,
            EventKind::State,
            EventKind::PipelineError,
        ];
        let categories = [
            EventCategory::Authentication,
            EventCategory::Configuration,
            EventCategory::File,
            EventCategory::IntrusionDetection,
            EventCategory::Malware,
            EventCategory::Network,
            EventCategory::Session,
            EventCategory::Web,
            EventCategory::Iam,
            EventCategory::Vulnerability,
            EventCategory::Host,
        ];
        let components = [
            Component::Gateway,
            Component::Docscan,
            Component::Remote,
            Component::Control,
        ];
        let mut events = vec![full_event(), Event::new(Component::Docscan, "scan.file")];
        for (i, kind) in kinds.iter().enumerate() {
            for (j, category) in categories.iter().enumerate() {
                let mut e = Event::new(components[(i + j) % 4], format!("a.{awkward}.{j}"))
                    .kind(*kind)
                    .category(*category)
                    .outcome([Outcome::Success, Outcome::Failure, Outcome::Unknown][j % 3])
                    .severity(Severity::ALL[(i + j) % 5]);
                if j % 2 == 0 {
                    e = e
                        .message(awkward)
                        .rule(awkward)
                        .source_ip("2001:db8::7".parse().unwrap())
                        .http_status(404)
                        .label(awkward, awkward)
                        .label("a", "")
                        .policy_version(u64::MAX);
                } else {
                    e = e
                        .http_method("GET")
                        .risk_score(0.1 * j as f64)
                        .duration(std::time::Duration::from_nanos(j as u64))
                        .source_ip("10.0.0.255".parse().unwrap())
                        .user_agent(awkward)
                        .file(FileInfo {
                            size: Some(0),
                            ..FileInfo::default()
                        })
                        .filter(awkward);
                }
                if j % 3 == 0 {
                    e.rule.get_or_insert_with(RuleInfo::default).id = Some(awkward.into());
                    e = e.rule_reference("a").rule_reference(awkward);
                    e.file = Some(FileInfo {
                        sha256: Some("ab".into()),
                        ..FileInfo::default()
                    });
                }
                events.push(e);
            }
        }
        let base = full_event().timestamp;
        for nanos in [0, 1, 10, 120_000_000, 999_999_999, 100_000_000, 5_000] {
            let mut e = full_event();
            e.timestamp = base.replace_nanosecond(nanos).unwrap();
            events.push(e);
        }
        // Not UTC: through serde_json.
        let mut e = full_event();
        e.timestamp = base.to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap());
        events.push(e);
        for e in &events {
            let mut mine = Vec::new();
            e.write_json(&mut mine);
            let serde = serde_json::to_vec(e).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&mine),
                String::from_utf8_lossy(&serde)
            );
            assert_eq!(e.to_json().as_bytes(), serde);
        }
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
