//! The gateway's counters and histograms, kept in atomics on the request path and written
//! in the Prometheus text format on the admin listener's `/metrics`. Per-filter state
//! (counters and the circuit breaker) lives here, keyed by filter instance id, so it
//! survives policy swaps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bus::EmitterStats;
use crate::isolation::{BreakerSettings, BreakerState, CircuitBreaker};

/// Upper bounds of the duration histogram buckets, in seconds.
const BUCKETS_SECONDS: [f64; 14] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1,
];

/// A fixed-bucket histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS_SECONDS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// How many observations.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS_SECONDS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Decision kinds, in the order of [`FilterHealth::decisions`].
pub const DECISION_KINDS: [&str; 4] = ["continue", "respond", "notice", "modify"];

/// Why a filter call failed, in the order of [`FilterHealth::failures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The filter panicked.
    Panic,
    /// The filter returned an error.
    Error,
    /// The filter exceeded its time budget.
    Timeout,
    /// The breaker was open; the filter was not called.
    BreakerOpen,
}

impl FailureKind {
    /// Every kind, in index order.
    pub const ALL: [FailureKind; 4] = [
        FailureKind::Panic,
        FailureKind::Error,
        FailureKind::Timeout,
        FailureKind::BreakerOpen,
    ];

    /// The name in metrics and events.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Panic => "panic",
            FailureKind::Error => "error",
            FailureKind::Timeout => "timeout",
            FailureKind::BreakerOpen => "breaker_open",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One filter instance's counters and breaker.
#[derive(Debug)]
pub struct FilterHealth {
    /// The instance id.
    pub id: String,
    /// The filter kind.
    pub kind: String,
    /// Phase calls made.
    pub calls: AtomicU64,
    /// Decisions by kind ([`DECISION_KINDS`] order), whatever the mode.
    pub decisions: [AtomicU64; 4],
    /// Failures by kind ([`FailureKind::ALL`] order).
    pub failures: [AtomicU64; 4],
    /// How often the breaker opened.
    pub breaker_opened: AtomicU64,
    /// Time per phase call.
    pub duration: Histogram,
    /// The breaker.
    pub breaker: CircuitBreaker,
}

impl FilterHealth {
    fn new(id: &str, kind: &str, settings: BreakerSettings) -> FilterHealth {
        FilterHealth {
            id: id.to_owned(),
            kind: kind.to_owned(),
            calls: AtomicU64::default(),
            decisions: Default::default(),
            failures: Default::default(),
            breaker_opened: AtomicU64::default(),
            duration: Histogram::default(),
            breaker: CircuitBreaker::new(settings),
        }
    }

    /// Counts a failure.
    pub fn count_failure(&self, kind: FailureKind) {
        self.failures[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// How many failures of a kind.
    #[must_use]
    pub fn failures_of(&self, kind: FailureKind) -> u64 {
        self.failures[kind.index()].load(Ordering::Relaxed)
    }

    /// Counts a decision.
    pub fn count_decision(&self, kind: &str) {
        if let Some(i) = DECISION_KINDS.iter().position(|k| *k == kind) {
            self.decisions[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The breaker's state.
    #[must_use]
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }
}

/// Per-service request counters.
#[derive(Debug, Default)]
pub struct ServiceStats {
    /// The service's id (empty for requests that matched no service).
    pub service_id: Box<str>,
    /// Responses by status class: index 0 for 1xx ... 4 for 5xx.
    pub responses: [AtomicU64; 5],
    /// Upstream could not be reached (connect error, reset).
    pub upstream_errors: AtomicU64,
    /// Upstream did not answer within the timeout.
    pub upstream_timeouts: AtomicU64,
    /// The TLS handshake with the upstream failed (untrusted or wrong certificate, no
    /// common protocol version).
    pub upstream_tls_errors: AtomicU64,
    /// Upstream failure events are emitted at most once per second per service: the
    /// millisecond (of [`monotonic_ms`]) before which the next one is held back, and how
    /// many were held back since the last one.
    upstream_event_after_ms: AtomicU64,
    upstream_events_held: AtomicU64,
}

/// Milliseconds since the first call in this process (a monotonic clock for rate limits).
pub(crate) fn monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl ServiceStats {
    /// Whether an upstream failure event may be emitted now (at most one per second per
    /// service); `Some(n)` with the number of failures whose events were held back since
    /// the last one.
    pub(crate) fn upstream_event_due(&self) -> Option<u64> {
        let now = monotonic_ms();
        let after = self.upstream_event_after_ms.load(Ordering::Relaxed);
        if now >= after
            && self
                .upstream_event_after_ms
                .compare_exchange(after, now + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.upstream_events_held.swap(0, Ordering::Relaxed))
        } else {
            self.upstream_events_held.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Counts a response status.
    pub fn count_status(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything the gateway counts.
#[derive(Debug)]
pub struct GatewayMetrics {
    breaker: BreakerSettings,
    filters: Mutex<BTreeMap<String, Arc<FilterHealth>>>,
    services: Mutex<BTreeMap<String, Arc<ServiceStats>>>,
    /// Requests that matched no service.
    pub unmatched: Arc<ServiceStats>,
    /// The version of the policy in force.
    pub policy_version: AtomicU64,
    /// Policies applied.
    pub policy_applied: AtomicU64,
    /// Policies rejected (invalid).
    pub policy_rejected: AtomicU64,
    /// Body bytes buffered for filters that asked to see a body.
    pub body_buffered_bytes: AtomicU64,
    /// Requests being handled now.
    pub active_requests: AtomicI64,
    /// Connections switched to another protocol (WebSocket) and tunnelled.
    pub upgrades: AtomicU64,
    /// Tunnels (upgraded connections) open now.
    pub tunnels_active: AtomicI64,
    /// Events emitted / dropped by the sink.
    pub events_emitted: AtomicU64,
    /// Events the sink refused.
    pub events_dropped: AtomicU64,
}

impl GatewayMetrics {
    /// Empty metrics; filters get breakers with `breaker` settings.
    #[must_use]
    pub fn new(breaker: BreakerSettings) -> GatewayMetrics {
        GatewayMetrics {
            breaker,
            filters: Mutex::default(),
            services: Mutex::default(),
            unmatched: Arc::default(),
            policy_version: AtomicU64::default(),
            policy_applied: AtomicU64::default(),
            policy_rejected: AtomicU64::default(),
            body_buffered_bytes: AtomicU64::default(),
            active_requests: AtomicI64::default(),
            upgrades: AtomicU64::default(),
            tunnels_active: AtomicI64::default(),
            events_emitted: AtomicU64::default(),
            events_dropped: AtomicU64::default(),
        }
    }

    /// The health record of a filter instance (created on first use; kept across policy
    /// swaps while the id keeps its kind).
    pub fn filter(&self, id: &str, kind: &str) -> Arc<FilterHealth> {
        let mut map = self
            .filters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(id) {
            Some(h) if h.kind == kind => Arc::clone(h),
            _ => {
                let h = Arc::new(FilterHealth::new(id, kind, self.breaker));
                map.insert(id.to_owned(), Arc::clone(&h));
                h
            }
        }
    }

    /// Forgets filters that are no longer in the policy.
    pub fn retain_filters(&self, ids: &[&str]) {
        self.filters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|id, _| ids.contains(&id.as_str()));
    }

    /// Every filter's health record.
    pub fn filters(&self) -> Vec<Arc<FilterHealth>> {
        self.filters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The counters of a service.
    pub fn service(&self, id: &str) -> Arc<ServiceStats> {
        Arc::clone(
            self.services
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(id.to_owned())
                .or_insert_with(|| {
                    Arc::new(ServiceStats {
                        service_id: id.into(),
                        ..ServiceStats::default()
                    })
                }),
        )
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let g =
            |out: &mut String, name: &str, help: &str, kind: &str, v: &dyn std::fmt::Display| {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
                );
            };
        g(
            &mut out,
            "haetae_gateway_policy_version",
            "Version of the policy in force.",
            "gauge",
            &self.policy_version.load(Ordering::Relaxed),
        );
        g(
            &mut out,
            "haetae_gateway_policy_applied_total",
            "Policies validated and swapped in.",
            "counter",
            &self.policy_applied.load(Ordering::Relaxed),
        );
        g(
            &mut out,
            "haetae_gateway_policy_rejected_total",
            "Policies rejected as invalid; the running one stayed.",
            "counter",
            &self.policy_rejected.load(Ordering::Relaxed),
        );
        g(
            &mut out,
            "haetae_gateway_body_buffered_bytes_total",
            "Body bytes buffered for filters that asked to see a body.",
            "counter",
            &self.body_buffered_bytes.load(Ordering::Relaxed),
        );
        g(
            &mut out,
            "haetae_gateway_active_requests",
            "Requests being handled.",
            "gauge",
            &self.active_requests.load(Ordering::Relaxed),
        );
        g(
            &mut out,
            "haetae_gateway_upgrades_total",
            "Connections switched to another protocol (WebSocket) and tunnelled to the upstream.",
            "counter",
            &self.upgrades.load(Ordering::Relaxed),
        );
        g(
            &mut out,
            "haetae_gateway_tunnels_active",
            "Upgraded connections open now.",
            "gauge",
            &self.tunnels_active.load(Ordering::Relaxed),
        );
        g(
            &mut out,
            "haetae_gateway_events_emitted_total",
            "Events handed to the event sink.",
            "counter",
            &self.events_emitted.load(Ordering::Relaxed),
        );
        g(
            &mut out,
            "haetae_gateway_events_dropped_total",
            "Events the sink could not take.",
            "counter",
            &self.events_dropped.load(Ordering::Relaxed),
        );

        let services = self
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let all: Vec<(&str, &ServiceStats)> = services
            .iter()
            .map(|(k, v)| (k.as_str(), &**v))
            .chain([("", &*self.unmatched)])
            .collect();
        out.push_str("# HELP haetae_gateway_responses_total Responses by service (empty: unmatched) and status class.\n# TYPE haetae_gateway_responses_total counter\n");
        for (id, s) in &all {
            for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "haetae_gateway_responses_total{{service=\"{id}\",class=\"{class}\"}} {}",
                    s.responses[i].load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP haetae_gateway_upstream_errors_total Upstream failures by service and kind.\n# TYPE haetae_gateway_upstream_errors_total counter\n");
        for (id, s) in &all {
            let _ = writeln!(
                out,
                "haetae_gateway_upstream_errors_total{{service=\"{id}\",kind=\"connect\"}} {}\nhaetae_gateway_upstream_errors_total{{service=\"{id}\",kind=\"tls\"}} {}\nhaetae_gateway_upstream_errors_total{{service=\"{id}\",kind=\"timeout\"}} {}",
                s.upstream_errors.load(Ordering::Relaxed),
                s.upstream_tls_errors.load(Ordering::Relaxed),
                s.upstream_timeouts.load(Ordering::Relaxed)
            );
        }

        let filters = self.filters();
        out.push_str("# HELP haetae_filter_calls_total Phase calls per filter instance.\n# TYPE haetae_filter_calls_total counter\n");
        for f in &filters {
            let _ = writeln!(
                out,
                "haetae_filter_calls_total{{filter=\"{}\",kind=\"{}\"}} {}",
                f.id,
                f.kind,
                f.calls.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP haetae_filter_decisions_total Decisions per filter instance and kind (monitor mode included).\n# TYPE haetae_filter_decisions_total counter\n");
        for f in &filters {
            for (i, d) in DECISION_KINDS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "haetae_filter_decisions_total{{filter=\"{}\",decision=\"{d}\"}} {}",
                    f.id,
                    f.decisions[i].load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP haetae_filter_failures_total Filter failures by kind (panic, error, timeout, breaker_open).\n# TYPE haetae_filter_failures_total counter\n");
        for f in &filters {
            for k in FailureKind::ALL {
                let _ = writeln!(
                    out,
                    "haetae_filter_failures_total{{filter=\"{}\",reason=\"{}\"}} {}",
                    f.id,
                    k.as_str(),
                    f.failures_of(k)
                );
            }
        }
        out.push_str("# HELP haetae_filter_breaker_open Whether the filter's circuit breaker is open (1), half-open (0.5) or closed (0).\n# TYPE haetae_filter_breaker_open gauge\n");
        for f in &filters {
            let v = match f.breaker_state() {
                BreakerState::Closed => "0",
                BreakerState::HalfOpen => "0.5",
                BreakerState::Open => "1",
            };
            let _ = writeln!(out, "haetae_filter_breaker_open{{filter=\"{}\"}} {v}", f.id);
        }
        out.push_str("# HELP haetae_filter_breaker_opened_total How often the filter's breaker opened.\n# TYPE haetae_filter_breaker_opened_total counter\n");
        for f in &filters {
            let _ = writeln!(
                out,
                "haetae_filter_breaker_opened_total{{filter=\"{}\"}} {}",
                f.id,
                f.breaker_opened.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP haetae_filter_duration_seconds Time per filter phase call.\n# TYPE haetae_filter_duration_seconds histogram\n");
        for f in &filters {
            f.duration.write(
                &mut out,
                "haetae_filter_duration_seconds",
                &format!("filter=\"{}\"", f.id),
            );
        }
        #[cfg(feature = "wasm")]
        crate::wasm::render_metrics(&mut out);
        out
    }
}

/// Writes the event emitter's delivery counters (queued, sent, spooled, dropped by reason,
/// backlog) in the Prometheus text format.
pub fn render_emitter(out: &mut String, s: &EmitterStats) {
    let counters: [(&str, &str, u64); 5] = [
        (
            "haetae_gateway_emitter_queued_total",
            "Events the emitter accepted into its queue.",
            s.queued,
        ),
        (
            "haetae_gateway_emitter_resumed_total",
            "Events found in the spool at start (left by an earlier run).",
            s.resumed,
        ),
        (
            "haetae_gateway_emitter_sent_total",
            "Events delivered (acknowledged by the bus, or written to the log).",
            s.sent,
        ),
        (
            "haetae_gateway_emitter_spooled_total",
            "Events put in the backlog (spool) because the bus was unreachable.",
            s.spooled,
        ),
        (
            "haetae_gateway_emitter_publish_failures_total",
            "Publish attempts that failed and were retried.",
            s.publish_failures,
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    out.push_str("# HELP haetae_gateway_emitter_dropped_total Events lost, by reason: queue_full (refused at once), backlog (oldest dropped from a full spool), too_large (the bus can never take it).\n# TYPE haetae_gateway_emitter_dropped_total counter\n");
    for (reason, v) in [
        ("queue_full", s.dropped_queue_full),
        ("backlog", s.dropped_backlog),
        ("too_large", s.dropped_too_large),
    ] {
        let _ = writeln!(
            out,
            "haetae_gateway_emitter_dropped_total{{reason=\"{reason}\"}} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP haetae_gateway_emitter_backlog Events waiting in the backlog now.\n# TYPE haetae_gateway_emitter_backlog gauge\nhaetae_gateway_emitter_backlog {}",
        s.backlog
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> GatewayMetrics {
        GatewayMetrics::new(BreakerSettings {
            failures: 2,
            window: Duration::from_secs(1),
            cooldown: Duration::from_secs(1),
        })
    }

    #[test]
    fn a_histogram_is_cumulative_in_the_exposition() {
        let m = metrics();
        let f = m.filter("f1", "restrict");
        f.duration.observe(Duration::from_micros(3));
        f.duration.observe(Duration::from_millis(3));
        f.duration.observe(Duration::from_secs(3));
        let text = m.render();
        assert!(
            text.contains("haetae_filter_duration_seconds_bucket{filter=\"f1\",le=\"0.000005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("haetae_filter_duration_seconds_bucket{filter=\"f1\",le=\"0.005\"} 2")
        );
        assert!(
            text.contains("haetae_filter_duration_seconds_bucket{filter=\"f1\",le=\"+Inf\"} 3")
        );
        assert!(text.contains("haetae_filter_duration_seconds_count{filter=\"f1\"} 3"));
    }

    #[test]
    fn a_filter_keeps_its_record_across_lookups_unless_its_kind_changes() {
        let m = metrics();
        let a = m.filter("f1", "restrict");
        a.calls.fetch_add(5, Ordering::Relaxed);
        assert_eq!(m.filter("f1", "restrict").calls.load(Ordering::Relaxed), 5);
        assert_eq!(
            m.filter("f1", "device-info").calls.load(Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn emitter_counters_are_written_by_name_and_drop_reason() {
        let mut text = String::new();
        render_emitter(
            &mut text,
            &EmitterStats {
                queued: 7,
                sent: 5,
                spooled: 2,
                dropped_queue_full: 3,
                dropped_backlog: 1,
                backlog: 2,
                ..EmitterStats::default()
            },
        );
        for line in [
            "haetae_gateway_emitter_queued_total 7",
            "haetae_gateway_emitter_sent_total 5",
            "haetae_gateway_emitter_spooled_total 2",
            "haetae_gateway_emitter_dropped_total{reason=\"queue_full\"} 3",
            "haetae_gateway_emitter_dropped_total{reason=\"backlog\"} 1",
            "haetae_gateway_emitter_dropped_total{reason=\"too_large\"} 0",
            "haetae_gateway_emitter_backlog 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn statuses_are_counted_by_class() {
        let m = metrics();
        let s = m.service("svc");
        s.count_status(200);
        s.count_status(503);
        s.count_status(999);
        let text = m.render();
        assert!(text.contains("haetae_gateway_responses_total{service=\"svc\",class=\"2xx\"} 1"));
        assert!(text.contains("haetae_gateway_responses_total{service=\"svc\",class=\"5xx\"} 2"));
    }
}
