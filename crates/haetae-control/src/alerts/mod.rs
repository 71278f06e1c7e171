//! Alerts: rules over the event stream ([`engine`]), the alerts they raise, and where alerts
//! and events go ([`notify`]: signed webhooks and SIEM forwarders in the formats of
//! [`format`]).
//!
//! A rule has a condition (every matching event, N matching events of one group within M
//! minutes, a filter's breaker open, a gateway silent), an event filter, the alert's
//! severity, a quiet period per group (so one attacker does not raise thousands of alerts)
//! and the notifiers to call. Alerts always go to the UI (stored, and pushed to the
//! dashboard's live feed).

pub mod engine;
pub mod format;
pub mod notify;

use haetae_core::{Event, Severity};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most alert rules.
pub const MAX_RULES: usize = 200;
/// The most notifiers.
pub const MAX_NOTIFIERS: usize = 50;
/// The largest `count` of a threshold rule (the engine keeps that many times per group).
pub const MAX_THRESHOLD_COUNT: u32 = 1000;
/// The longest window, quiet period or silence, in minutes (one day).
pub const MAX_MINUTES: u32 = 1440;

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Stable id, 1-64 of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// What it is for, shown in the UI and in notifications.
    #[serde(default)]
    pub name: String,
    /// Disabled rules raise nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The alert's severity: `info`, `low`, `medium`, `high`, `critical`.
    #[serde(default = "default_severity")]
    #[schema(value_type = String)]
    pub severity: Severity,
    /// When it fires: `{"type":"each"}`, `{"type":"threshold","count":5,"minutes":10}`,
    /// `{"type":"breaker-open"}`, `{"type":"gateway-silent","minutes":5}`.
    #[schema(value_type = Object)]
    pub condition: Condition,
    /// Which events count (all fields optional; every set field must match).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: EventFilter,
    /// Counts and quiet periods are per value of this event field: `none`, `user`,
    /// `device`, `source-ip`, `service`, `filter`, `instance`.
    #[serde(default)]
    #[schema(value_type = String)]
    pub group_by: GroupBy,
    /// After firing, the same rule and group stays quiet this many minutes (0: never).
    #[serde(default = "default_quiet")]
    pub quiet_minutes: u32,
    /// Ids of the notifiers that get this rule's alerts (the UI always does).
    #[serde(default)]
    pub notify: Vec<String>,
}

pub(crate) fn yes() -> bool {
    true
}
fn default_severity() -> Severity {
    Severity::High
}
fn default_quiet() -> u32 {
    1
}

/// When a rule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Condition {
    /// Every matching event (subject to the quiet period).
    Each,
    /// `count` matching events of one group within `minutes`.
    Threshold {
        /// How many.
        count: u32,
        /// Within how many minutes (event time).
        minutes: u32,
    },
    /// A gateway's heartbeat reports a filter's breaker open.
    BreakerOpen,
    /// A gateway sent no heartbeat for `minutes`.
    GatewaySilent {
        /// How many minutes of silence.
        minutes: u32,
    },
}

/// What an event must carry to count. Text fields match exactly, except that a value ending
/// in `*` matches by prefix (`restrict.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// `event.action`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `event.outcome`: `success`, `failure`, `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// `haetae.component`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// `service.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `haetae.filter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// At least this severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
}

fn text_matches(want: Option<&String>, have: Option<&str>) -> bool {
    match want {
        None => true,
        Some(w) => match (w.strip_suffix('*'), have) {
            (_, None) => false,
            (Some(prefix), Some(h)) => h.starts_with(prefix),
            (None, Some(h)) => h == w,
        },
    }
}

impl EventFilter {
    /// Whether `e` passes.
    #[must_use]
    pub fn matches(&self, e: &Event) -> bool {
        let outcome = match e.event.outcome {
            haetae_core::Outcome::Success => "success",
            haetae_core::Outcome::Failure => "failure",
            haetae_core::Outcome::Unknown => "unknown",
        };
        text_matches(self.action.as_ref(), Some(&e.event.action))
            && text_matches(self.outcome.as_ref(), Some(outcome))
            && text_matches(self.component.as_ref(), Some(e.haetae.component.as_str()))
            && text_matches(
                self.service.as_ref(),
                e.service.as_ref().map(|s| s.id.as_str()),
            )
            && text_matches(self.filter.as_ref(), e.haetae.filter.as_deref())
            && self.min_severity.is_none_or(|m| e.event.severity >= m)
    }
}

/// The event field a rule groups by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    /// One group for everything.
    #[default]
    None,
    /// `user.id`.
    User,
    /// `device.id`.
    Device,
    /// `source.ip`.
    SourceIp,
    /// `service.id`.
    Service,
    /// `haetae.filter`.
    Filter,
    /// `haetae.instance`.
    Instance,
}

impl GroupBy {
    /// The group `e` belongs to; `None` when the event lacks the field (it then does not
    /// count for a grouped rule).
    #[must_use]
    pub fn key(self, e: &Event) -> Option<String> {
        match self {
            GroupBy::None => Some(String::new()),
            GroupBy::User => e.user.as_ref().map(|u| u.id.clone()),
            GroupBy::Device => e.device.as_ref().map(|d| d.id.clone()),
            GroupBy::SourceIp => e.source.as_ref().map(|s| s.ip.to_string()),
            GroupBy::Service => e.service.as_ref().map(|s| s.id.clone()),
            GroupBy::Filter => e.haetae.filter.clone(),
            GroupBy::Instance => e.haetae.instance.clone(),
        }
    }

    /// The name used in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::None => "none",
            GroupBy::User => "user",
            GroupBy::Device => "device",
            GroupBy::SourceIp => "source-ip",
            GroupBy::Service => "service",
            GroupBy::Filter => "filter",
            GroupBy::Instance => "instance",
        }
    }
}

/// A problem with a rule or notifier: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field, e.g. `condition.count`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Whether `id` is 1-64 of `A-Z a-z 0-9 . _ -`.
#[must_use]
pub fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl AlertRule {
    /// Checks ranges and lengths (not whether the notifiers exist).
    pub fn validate(&self) -> Result<(), Invalid> {
        if !is_id(&self.id) {
            return Err(invalid("id", "1-64 of A-Z a-z 0-9 . _ -"));
        }
        if self.name.len() > 200 {
            return Err(invalid("name", "at most 200 bytes"));
        }
        match self.condition {
            Condition::Threshold { count, minutes } => {
                if count == 0 || count > MAX_THRESHOLD_COUNT {
                    return Err(invalid(
                        "condition.count",
                        format!("{count} is out of range 1..={MAX_THRESHOLD_COUNT}"),
                    ));
                }
                if minutes == 0 || minutes > MAX_MINUTES {
                    return Err(invalid(
                        "condition.minutes",
                        format!("{minutes} is out of range 1..={MAX_MINUTES}"),
                    ));
                }
            }
            Condition::GatewaySilent { minutes } => {
                if minutes == 0 || minutes > MAX_MINUTES {
                    return Err(invalid(
                        "condition.minutes",
                        format!("{minutes} is out of range 1..={MAX_MINUTES}"),
                    ));
                }
            }
            Condition::Each | Condition::BreakerOpen => {}
        }
        if self.quiet_minutes > MAX_MINUTES {
            return Err(invalid(
                "quiet_minutes",
                format!("{} is out of range 0..={MAX_MINUTES}", self.quiet_minutes),
            ));
        }
        for (name, v) in [
            ("filter.action", &self.filter.action),
            ("filter.outcome", &self.filter.outcome),
            ("filter.component", &self.filter.component),
            ("filter.service", &self.filter.service),
            ("filter.filter", &self.filter.filter),
        ] {
            if v.as_ref().is_some_and(|s| s.is_empty() || s.len() > 200) {
                return Err(invalid(name, "1-200 bytes when set"));
            }
        }
        if self.notify.len() > MAX_NOTIFIERS {
            return Err(invalid("notify", format!("at most {MAX_NOTIFIERS}")));
        }
        for (i, n) in self.notify.iter().enumerate() {
            if !is_id(n) {
                return Err(invalid(&format!("notify[{i}]"), "not a notifier id"));
            }
        }
        Ok(())
    }
}

/// A raised alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// Unique id (UUID v7).
    pub id: String,
    /// When it was raised (microseconds since the epoch).
    pub ts: i64,
    /// The rule that raised it.
    pub rule_id: String,
    /// The alert's severity.
    pub severity: String,
    /// One line for people.
    pub summary: String,
    /// The rule's name, the group, counts and the last event's id.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Who acknowledged it.
    pub ack_by: Option<String>,
    /// When (microseconds since the epoch).
    pub ack_at: Option<i64>,
}

impl Alert {
    /// The alert as an ECS event (`event.kind = alert`), for SIEM forwarders.
    #[must_use]
    pub fn to_event(&self) -> Event {
        let severity = self.severity.parse().unwrap_or(Severity::High);
        let mut e = Event::new(haetae_core::Component::Control, "alert.raised")
            .kind(haetae_core::EventKind::Alert)
            .severity(severity)
            .rule(self.rule_id.clone())
            .message(self.summary.clone())
            .label("alert.id", self.id.clone());
        if let Ok(ts) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.ts) * 1000)
        {
            e.timestamp = ts;
        }
        if let Some(obj) = self.detail.as_object() {
            for (k, v) in obj {
                if let Some(s) = v.as_str() {
                    e = e.label(format!("alert.{k}"), s);
                } else if v.is_number() {
                    e = e.label(format!("alert.{k}"), v.to_string());
                }
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haetae_core::{Component, Outcome};

    #[test]
    fn rules_parse_with_defaults_and_reject_unknown_fields() {
        let r: AlertRule = serde_json::from_str(
            r#"{"id":"blocks","condition":{"type":"threshold","count":5,"minutes":10},
                "filter":{"action":"restrict.*","outcome":"failure"},"group_by":"user"}"#,
        )
        .unwrap();
        assert!(r.enabled);
        assert_eq!(r.severity, Severity::High);
        assert_eq!(r.quiet_minutes, 1);
        assert_eq!(r.group_by, GroupBy::User);
        r.validate().unwrap();
        assert!(
            serde_json::from_str::<AlertRule>(r#"{"id":"x","condition":{"type":"each"},"x":1}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<AlertRule>(r#"{"id":"x","condition":{"type":"sometimes"}}"#)
                .is_err()
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut r: AlertRule = serde_json::from_str(
            r#"{"id":"t","condition":{"type":"threshold","count":0,"minutes":10}}"#,
        )
        .unwrap();
        assert_eq!(r.validate().unwrap_err().field, "condition.count");
        r.condition = Condition::GatewaySilent { minutes: 5000 };
        assert_eq!(r.validate().unwrap_err().field, "condition.minutes");
        r.condition = Condition::Each;
        r.id = "bad id".into();
        assert_eq!(r.validate().unwrap_err().field, "id");
        r.id = "ok".into();
        r.notify = vec!["a b".into()];
        assert_eq!(r.validate().unwrap_err().field, "notify[0]");
    }

    #[test]
    fn filters_match_exactly_or_by_prefix_and_by_severity() {
        let e = Event::new(Component::Gateway, "restrict.block")
            .outcome(Outcome::Failure)
            .severity(Severity::Medium)
            .service_id("transfer");
        let f = |json: &str| {
            serde_json::from_str::<EventFilter>(json)
                .unwrap()
                .matches(&e)
        };
        assert!(f("{}"));
        assert!(f(r#"{"action":"restrict.*","service":"transfer"}"#));
        assert!(!f(r#"{"action":"restrict"}"#));
        assert!(!f(r#"{"filter":"x"}"#), "the event has no filter");
        assert!(f(r#"{"min_severity":"medium"}"#));
        assert!(!f(r#"{"min_severity":"high"}"#));
        assert!(!f(r#"{"outcome":"success"}"#));
    }
}
