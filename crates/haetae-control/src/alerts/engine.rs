//! The rule engine: sees every stored event (and heartbeats), keeps per-rule, per-group
//! windows in memory with bounded size, and returns the alerts to raise.
//!
//! Threshold windows count event time, so a burst that arrives late (a gateway's spool
//! after an outage) is judged by when it happened. State is in memory: after a restart a
//! threshold starts counting again, and quiet periods start afresh.

use std::collections::{HashMap, VecDeque};

use haetae_core::Event;
use serde_json::json;

use super::{Alert, AlertRule, Condition};
use crate::store::gateways::GatewayStatus;
use crate::store::micros;

/// The most groups one rule tracks; beyond it, groups idle longer than the rule's window
/// are dropped, and if that is not enough the rule's state is reset.
pub const MAX_GROUPS_PER_RULE: usize = 50_000;

const MINUTE_US: i64 = 60_000_000;

#[derive(Debug, Default)]
struct RuleState {
    /// Per group: the times of the latest matching events (at most `count`).
    windows: HashMap<String, VecDeque<i64>>,
    /// Per group: when the rule last fired for it.
    fired: HashMap<String, i64>,
}

/// Evaluates alert rules.
#[derive(Debug, Default)]
pub struct Engine {
    rules: Vec<AlertRule>,
    state: HashMap<String, RuleState>,
}

fn bound<V>(map: &mut HashMap<String, V>, keep: impl Fn(&V) -> bool) {
    if map.len() >= MAX_GROUPS_PER_RULE {
        map.retain(|_, v| keep(v));
        if map.len() >= MAX_GROUPS_PER_RULE {
            map.clear();
        }
    }
}

impl Engine {
    /// An engine with these rules.
    #[must_use]
    pub fn new(rules: Vec<AlertRule>) -> Engine {
        let mut e = Engine::default();
        e.set_rules(rules);
        e
    }

    /// Replaces the rules; the state of a rule that is unchanged is kept.
    pub fn set_rules(&mut self, rules: Vec<AlertRule>) {
        let old: HashMap<&str, &AlertRule> =
            self.rules.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut state = HashMap::new();
        for r in &rules {
            if old.get(r.id.as_str()) == Some(&r)
                && let Some(s) = self.state.remove(&r.id)
            {
                state.insert(r.id.clone(), s);
            }
        }
        self.state = state;
        self.rules = rules.into_iter().filter(|r| r.enabled).collect();
    }

    /// The notifier ids of a rule.
    #[must_use]
    pub fn notify_of(&self, rule_id: &str) -> Vec<String> {
        self.rules
            .iter()
            .find(|r| r.id == rule_id)
            .map(|r| r.notify.clone())
            .unwrap_or_default()
    }

    /// Whether any enabled rule exists.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the rule may fire for `group` at `now` (quiet period), recording it if so.
    fn may_fire(state: &mut RuleState, rule: &AlertRule, group: &str, now: i64) -> bool {
        let quiet = i64::from(rule.quiet_minutes) * MINUTE_US;
        if let Some(last) = state.fired.get(group)
            && quiet > 0
            && now - last < quiet
        {
            return false;
        }
        bound(&mut state.fired, |t| now - t < quiet);
        state.fired.insert(group.to_owned(), now);
        true
    }

    /// Looks at one event (a stored event or a heartbeat) and returns the alerts it raises.
    pub fn observe(&mut self, e: &Event) -> Vec<Alert> {
        let mut out = Vec::new();
        let ts = micros(e.timestamp);
        for rule in &self.rules {
            let state = self.state.entry(rule.id.clone()).or_default();
            match rule.condition {
                Condition::Each => {
                    if !rule.filter.matches(e) {
                        continue;
                    }
                    let Some(group) = rule.group_by.key(e) else {
                        continue;
                    };
                    if Engine::may_fire(state, rule, &group, ts) {
                        out.push(raise(
                            rule,
                            ts,
                            format!("{}: {}{}", title(rule), e.event.action, who(e)),
                            json!({ "group": group, "event_id": e.id().to_string(),
                                    "action": e.event.action }),
                        ));
                    }
                }
                Condition::Threshold { count, minutes } => {
                    if !rule.filter.matches(e) {
                        continue;
                    }
                    let Some(group) = rule.group_by.key(e) else {
                        continue;
                    };
                    let window = i64::from(minutes) * MINUTE_US;
                    bound(&mut state.windows, |w| {
                        w.back().is_some_and(|last| ts - last < window)
                    });
                    let w = state.windows.entry(group.clone()).or_default();
                    w.push_back(ts);
                    while w.len() > count as usize {
                        w.pop_front();
                    }
                    let (lo, hi) = w
                        .iter()
                        .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
                    if w.len() == count as usize && hi - lo <= window {
                        w.clear();
                        if Engine::may_fire(state, rule, &group, ts) {
                            let whom = if group.is_empty() {
                                String::new()
                            } else {
                                format!(" for {} {group}", rule.group_by.as_str())
                            };
                            out.push(raise(
                                rule,
                                ts,
                                format!(
                                    "{}: {count} × {} within {minutes} min{whom}",
                                    title(rule),
                                    e.event.action
                                ),
                                json!({ "group": group, "count": count, "minutes": minutes,
                                        "event_id": e.id().to_string(),
                                        "action": e.event.action }),
                            ));
                        }
                    }
                }
                Condition::BreakerOpen => {
                    if e.event.action != crate::ingest::HEARTBEAT_ACTION {
                        continue;
                    }
                    let instance = e.haetae.instance.as_deref().unwrap_or("?");
                    for (label, value) in &e.labels {
                        let Some(filter) = label.strip_prefix("filter.") else {
                            continue;
                        };
                        if value != "open" {
                            continue;
                        }
                        let group = format!("{instance}/{filter}");
                        if Engine::may_fire(state, rule, &group, ts) {
                            out.push(raise(
                                rule,
                                ts,
                                format!(
                                    "{}: filter {filter} on gateway {instance} has its breaker open",
                                    title(rule)
                                ),
                                json!({ "group": group, "instance": instance, "filter": filter }),
                            ));
                        }
                    }
                }
                Condition::GatewaySilent { .. } => {}
            }
        }
        out
    }

    /// Checks gateway heartbeats against `gateway-silent` rules at `now` (microseconds).
    pub fn check_gateways(&mut self, gateways: &[GatewayStatus], now: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let Condition::GatewaySilent { minutes } = rule.condition else {
                continue;
            };
            let state = self.state.entry(rule.id.clone()).or_default();
            for g in gateways {
                let silent = now - g.last_seen;
                if silent < i64::from(minutes) * MINUTE_US {
                    // Heard from again: it may alert at once the next time it falls silent.
                    state.fired.remove(&g.instance);
                    continue;
                }
                if state.fired.contains_key(&g.instance) {
                    continue;
                }
                state.fired.insert(g.instance.clone(), now);
                out.push(raise(
                    rule,
                    now,
                    format!(
                        "{}: gateway {} silent for {} min",
                        title(rule),
                        g.instance,
                        silent / MINUTE_US
                    ),
                    json!({ "group": g.instance, "instance": g.instance,
                            "last_seen": g.last_seen }),
                ));
            }
        }
        out
    }
}

fn title(rule: &AlertRule) -> &str {
    if rule.name.is_empty() {
        &rule.id
    } else {
        &rule.name
    }
}

fn who(e: &Event) -> String {
    let mut s = String::new();
    if let Some(u) = &e.user {
        s.push_str(&format!(" user {}", u.id));
    }
    if let Some(d) = &e.device {
        s.push_str(&format!(" device {}", d.id));
    }
    if let Some(svc) = &e.service {
        s.push_str(&format!(" service {}", svc.id));
    }
    s
}

fn raise(rule: &AlertRule, ts: i64, summary: String, mut detail: serde_json::Value) -> Alert {
    if let Some(o) = detail.as_object_mut() {
        o.insert("rule_name".into(), json!(rule.name));
    }
    Alert {
        id: uuid::Uuid::now_v7().to_string(),
        ts,
        rule_id: rule.id.clone(),
        severity: rule.severity.as_str().to_owned(),
        summary,
        detail,
        ack_by: None,
        ack_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haetae_core::{Component, Outcome};
    use time::OffsetDateTime;

    fn rule(json: &str) -> AlertRule {
        let r: AlertRule = serde_json::from_str(json).unwrap();
        r.validate().unwrap();
        r
    }

    fn block(user: &str, at_secs: i64) -> Event {
        let mut e = Event::new(Component::Gateway, "restrict.block")
            .outcome(Outcome::Failure)
            .user_id(user)
            .device_id("dev-9");
        e.timestamp = OffsetDateTime::from_unix_timestamp(1_700_000_000 + at_secs).unwrap();
        e
    }

    #[test]
    fn threshold_fires_on_the_nth_event_of_one_group_within_the_window() {
        let mut engine = Engine::new(vec![rule(
            r#"{"id":"blocks","condition":{"type":"threshold","count":3,"minutes":1},
                "filter":{"action":"restrict.*"},"group_by":"user","quiet_minutes":0}"#,
        )]);
        assert!(engine.observe(&block("alice", 0)).is_empty());
        assert!(engine.observe(&block("bob", 1)).is_empty());
        assert!(engine.observe(&block("alice", 10)).is_empty());
        let fired = engine.observe(&block("alice", 20));
        assert_eq!(fired.len(), 1, "the third block of alice within a minute");
        assert_eq!(fired[0].detail["group"], "alice");
        assert!(
            fired[0]
                .summary
                .contains("3 × restrict.block within 1 min for user alice")
        );
        // Spread over more than a minute: no alert.
        assert!(engine.observe(&block("bob", 100)).is_empty());
        assert!(engine.observe(&block("bob", 200)).is_empty());
    }

    #[test]
    fn the_quiet_period_suppresses_repeats_per_group() {
        let mut engine = Engine::new(vec![rule(
            r#"{"id":"restricted","condition":{"type":"each"},
                "filter":{"action":"restrict.block"},"group_by":"user","quiet_minutes":5}"#,
        )]);
        assert_eq!(engine.observe(&block("alice", 0)).len(), 1);
        assert!(engine.observe(&block("alice", 60)).is_empty(), "quiet");
        assert_eq!(engine.observe(&block("bob", 60)).len(), 1, "another group");
        assert_eq!(
            engine.observe(&block("alice", 301)).len(),
            1,
            "quiet is over"
        );
    }

    #[test]
    fn breaker_open_and_silent_gateways_raise_alerts() {
        let mut engine = Engine::new(vec![
            rule(r#"{"id":"breaker","condition":{"type":"breaker-open"}}"#),
            rule(r#"{"id":"silent","condition":{"type":"gateway-silent","minutes":2}}"#),
        ]);
        let beat = Event::new(Component::Gateway, crate::ingest::HEARTBEAT_ACTION)
            .instance("gw-1")
            .label("filter.restrict-1", "open")
            .label("filter.device", "closed");
        let fired = engine.observe(&beat);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].detail["filter"], "restrict-1");
        let gw = |seen| GatewayStatus {
            instance: "gw-1".into(),
            last_seen: seen,
            policy_version: Some(1),
            detail: "{}".into(),
        };
        let now = 10 * MINUTE_US;
        assert!(
            engine
                .check_gateways(&[gw(now - MINUTE_US)], now)
                .is_empty()
        );
        assert_eq!(
            engine.check_gateways(&[gw(now - 3 * MINUTE_US)], now).len(),
            1
        );
        assert!(
            engine
                .check_gateways(&[gw(now - 3 * MINUTE_US)], now + MINUTE_US)
                .is_empty(),
            "one alert per silence"
        );
    }

    #[test]
    fn disabled_rules_raise_nothing_and_groups_stay_bounded() {
        let mut engine = Engine::new(vec![rule(
            r#"{"id":"off","enabled":false,"condition":{"type":"each"}}"#,
        )]);
        assert!(engine.is_empty());
        assert!(engine.observe(&block("alice", 0)).is_empty());
        let mut engine = Engine::new(vec![rule(
            r#"{"id":"t","condition":{"type":"threshold","count":2,"minutes":1},"group_by":"user"}"#,
        )]);
        for i in 0..(MAX_GROUPS_PER_RULE + 10) {
            engine.observe(&block(&format!("u{i}"), 0));
        }
        assert!(engine.state["t"].windows.len() <= MAX_GROUPS_PER_RULE);
    }
}
