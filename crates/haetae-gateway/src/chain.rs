//! A service's [`FilterChain`]: its filter instances in order, each with its mode, failure
//! policy, time budget, circuit breaker and counters; and the one place where a phase is
//! run across the chain with every failure isolated (`run_phase`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use haetae_core::{
    EventCategory, EventKind, FailurePolicy, FilterInstance, FilterMode, Outcome, Severity,
};
use http::StatusCode;

use crate::filter::{
    Decision, FilterContext, FilterServices, LocalResponse, Modification, Phases, Reason,
    SecurityFilter, request_event,
};
use crate::isolation::{Admission, Guarded, Transition, run_guarded};
use crate::metrics::{FailureKind, FilterHealth, GatewayMetrics};
use crate::request::{Attributes, RequestView, ResponseView};

/// A phase of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `on_request_headers`.
    RequestHeaders,
    /// `on_request_body`.
    RequestBody,
    /// `on_response_headers`.
    ResponseHeaders,
    /// `on_response_body`.
    ResponseBody,
    /// `on_log`.
    Log,
}

impl Phase {
    /// The phase's name in events.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::RequestHeaders => "request_headers",
            Phase::RequestBody => "request_body",
            Phase::ResponseHeaders => "response_headers",
            Phase::ResponseBody => "response_body",
            Phase::Log => "log",
        }
    }

    fn wanted_by(self, p: &Phases) -> bool {
        match self {
            Phase::RequestHeaders => p.request_headers,
            Phase::RequestBody => p.request_body.is_some(),
            Phase::ResponseHeaders => p.response_headers,
            Phase::ResponseBody => p.response_body.is_some(),
            Phase::Log => p.log,
        }
    }

    fn in_reverse(self) -> bool {
        matches!(self, Phase::ResponseHeaders | Phase::ResponseBody)
    }
}

/// One filter instance in a chain.
pub struct FilterSlot {
    pub(crate) id: Arc<str>,
    pub(crate) kind: Arc<str>,
    pub(crate) mode: FilterMode,
    pub(crate) failure: FailurePolicy,
    pub(crate) budget: Duration,
    pub(crate) phases: Phases,
    pub(crate) filter: Arc<dyn SecurityFilter>,
    pub(crate) health: Arc<FilterHealth>,
}

impl std::fmt::Debug for FilterSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterSlot")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("mode", &self.mode)
            .field("failure", &self.failure)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl FilterSlot {
    pub(crate) fn new(
        instance: &FilterInstance,
        filter: Arc<dyn SecurityFilter>,
        metrics: &GatewayMetrics,
    ) -> FilterSlot {
        FilterSlot {
            id: Arc::from(instance.id.as_str()),
            kind: Arc::from(instance.kind.as_str()),
            mode: instance.mode,
            failure: instance.failure,
            budget: Duration::from_millis(instance.budget_ms),
            phases: filter.phases(),
            health: metrics.filter(&instance.id, &instance.kind),
            filter,
        }
    }
}

/// The ordered filters of one service, immutable once built. Filters in `off` mode are
/// not in it.
#[derive(Debug, Default)]
pub struct FilterChain {
    pub(crate) slots: Vec<FilterSlot>,
    /// The most request body bytes any filter asked to see.
    pub(crate) request_body_limit: Option<usize>,
    /// The most response body bytes any filter asked to see.
    pub(crate) response_body_limit: Option<usize>,
    pub(crate) wants: Phases,
}

impl FilterChain {
    /// A chain of these slots; body limits are capped at `max_body_buffer`.
    pub(crate) fn new(slots: Vec<FilterSlot>, max_body_buffer: usize) -> FilterChain {
        let mut wants = Phases::default();
        let mut req = None::<usize>;
        let mut resp = None::<usize>;
        for s in &slots {
            wants.request_headers |= s.phases.request_headers;
            wants.response_headers |= s.phases.response_headers;
            wants.log |= s.phases.log;
            if let Some(n) = s.phases.request_body {
                req = Some(req.unwrap_or(0).max(n.min(max_body_buffer)));
            }
            if let Some(n) = s.phases.response_body {
                resp = Some(resp.unwrap_or(0).max(n.min(max_body_buffer)));
            }
        }
        wants.request_body = req;
        wants.response_body = resp;
        FilterChain {
            slots,
            request_body_limit: req,
            response_body_limit: resp,
            wants,
        }
    }

    /// The filter instance ids, in order.
    pub fn filter_ids(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| &*s.id)
    }

    /// No filter to run.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether any filter takes part in a phase.
    #[must_use]
    pub fn wants(&self, phase: Phase) -> bool {
        phase.wanted_by(&self.wants)
    }
}

/// What running a phase across the chain concluded.
#[derive(Debug)]
pub(crate) enum PhaseOutcome {
    /// Every filter continued (header modifications already applied).
    Continue,
    /// A filter in enforce mode (or a failing fail-closed one) ended the exchange.
    Stop(Decision),
}

/// The shared things a phase run needs.
pub(crate) struct PhaseEnv<'a> {
    pub services: &'a FilterServices,
    pub metrics: &'a GatewayMetrics,
    pub policy_version: u64,
}

/// Runs one phase over the chain: in chain order for request phases and the log, in
/// reverse for response phases. Header modifications are applied to `request` (request
/// phases) or `response` (response phases) before the next filter runs.
pub(crate) async fn run_phase(
    chain: &FilterChain,
    phase: Phase,
    env: &PhaseEnv<'_>,
    request: &mut RequestView,
    mut response: Option<&mut ResponseView>,
    attributes: &mut Attributes,
) -> PhaseOutcome {
    let n = chain.slots.len();
    for i in 0..n {
        let slot = if phase.in_reverse() {
            &chain.slots[n - 1 - i]
        } else {
            &chain.slots[i]
        };
        if !phase.wanted_by(&slot.phases) {
            continue;
        }
        let decision =
            call_filter(slot, phase, env, request, response.as_deref(), attributes).await;
        match decision {
            Decision::Continue => {}
            Decision::Modify(mods) => {
                let headers = match response.as_deref_mut() {
                    Some(r) if matches!(phase, Phase::ResponseHeaders | Phase::ResponseBody) => {
                        &mut r.parts.headers
                    }
                    _ => &mut request.parts.headers,
                };
                let mut new_body = None;
                for m in mods {
                    match m {
                        Modification::ReplaceBody(b) => new_body = Some(b),
                        m => crate::proxy::apply_modification(headers, m),
                    }
                }
                if let Some(b) = new_body
                    && phase == Phase::RequestBody
                {
                    request.replace_body(b);
                }
            }
            stop @ (Decision::Respond(..) | Decision::Notice(..) | Decision::Serve(..)) => {
                return PhaseOutcome::Stop(stop);
            }
        }
    }
    PhaseOutcome::Continue
}

/// Calls one filter's phase with its breaker, budget and panic guard, counts and reports
/// what happened, and returns the decision to act on (already reduced to `Continue` for
/// monitor mode and fail-open failures).
async fn call_filter(
    slot: &FilterSlot,
    phase: Phase,
    env: &PhaseEnv<'_>,
    request: &RequestView,
    response: Option<&ResponseView>,
    attributes: &mut Attributes,
) -> Decision {
    let health = &*slot.health;
    let start = Instant::now();
    let admission = health.breaker.admit(start);
    if admission == Admission::Refused {
        health.count_failure(FailureKind::BreakerOpen);
        return on_failure(
            slot,
            phase,
            env,
            request,
            attributes,
            FailureKind::BreakerOpen,
            None,
        );
    }
    health.calls.fetch_add(1, Ordering::Relaxed);
    let result = {
        let mut ctx = FilterContext {
            request,
            response,
            attributes: &mut *attributes,
            services: env.services,
            filter_id: &slot.id,
            mode: slot.mode,
            policy_version: env.policy_version,
        };
        let filter = &*slot.filter;
        let budget = slot.budget;
        let outcome = match phase {
            Phase::Log => run_guarded(filter.on_log(&mut ctx), start, budget)
                .await
                .map(|r| r.map(|()| Decision::Continue)),
            Phase::RequestHeaders => {
                run_guarded(filter.on_request_headers(&mut ctx), start, budget).await
            }
            Phase::RequestBody => {
                run_guarded(filter.on_request_body(&mut ctx), start, budget).await
            }
            Phase::ResponseHeaders => {
                run_guarded(filter.on_response_headers(&mut ctx), start, budget).await
            }
            Phase::ResponseBody => {
                run_guarded(filter.on_response_body(&mut ctx), start, budget).await
            }
        };
        match outcome {
            Err(Guarded::Timeout) => Err((FailureKind::Timeout, None)),
            Err(Guarded::Panic(panic)) => Err((FailureKind::Panic, Some(panic))),
            Ok(Err(e)) => Err((FailureKind::Error, Some(e.0))),
            Ok(Ok(d)) => Ok(d),
        }
    };
    let elapsed = start.elapsed();
    health.duration.observe(elapsed);
    // A filter that blocked its thread past the budget could not be cut, but it failed.
    let result = match result {
        Ok(_) if elapsed > slot.budget => Err((FailureKind::Timeout, None)),
        other => other,
    };
    match result {
        Ok(decision) => {
            if health.breaker.record_success(admission) == Transition::Closed {
                breaker_event(slot, env, "closed");
            }
            health.count_decision(decision.kind());
            act_on(slot, phase, env, request, attributes, decision, elapsed)
        }
        Err((kind, message)) => {
            health.count_failure(kind);
            if health.breaker.record_failure(admission, Instant::now()) == Transition::Opened {
                health.breaker_opened.fetch_add(1, Ordering::Relaxed);
                breaker_event(slot, env, "open");
            }
            on_failure(
                slot,
                phase,
                env,
                request,
                attributes,
                kind,
                message.as_deref(),
            )
        }
    }
}

/// Reports a non-continue decision and returns what the engine should do with it.
fn act_on(
    slot: &FilterSlot,
    phase: Phase,
    env: &PhaseEnv<'_>,
    request: &RequestView,
    attributes: &Attributes,
    decision: Decision,
    elapsed: Duration,
) -> Decision {
    if matches!(decision, Decision::Continue | Decision::Serve(_)) {
        return decision;
    }
    let enforced = slot.mode == FilterMode::Enforce;
    let mut event = request_event(
        format!("{}.{}", slot.kind, decision.kind()),
        request,
        attributes,
        &env.services.instance,
        env.policy_version,
    )
    .filter(&*slot.id)
    .category(EventCategory::Web)
    .duration(elapsed)
    .label("phase", phase.as_str())
    .label("mode", if enforced { "enforce" } else { "monitor" });
    match &decision {
        Decision::Respond(resp, reason) => {
            event = with_reason(event, reason)
                .kind(EventKind::Alert)
                .category(EventCategory::IntrusionDetection)
                .label("response_status", resp.status.as_str());
        }
        Decision::Notice(notice, reason) => {
            let (via, to) = match notice {
                crate::filter::Notice::Redirect { location } => ("redirect", location.as_str()),
                crate::filter::Notice::Forward { path } => ("forward", path.as_str()),
            };
            event = with_reason(event, reason)
                .kind(EventKind::Alert)
                .category(EventCategory::IntrusionDetection)
                .label("notice_via", via)
                .label("notice_page", to);
        }
        Decision::Modify(mods) => {
            event = event.label("modifications", mods.len().to_string());
            // What changed, by header name (never a value: a filter may set a cookie).
            let (mut set, mut removed, mut body) = (String::new(), String::new(), false);
            for m in mods {
                let (list, name) = match m {
                    Modification::SetHeader(n, _) | Modification::AppendHeader(n, _) => {
                        (&mut set, n)
                    }
                    Modification::RemoveHeader(n) => (&mut removed, n),
                    Modification::ReplaceBody(_) => {
                        body = true;
                        continue;
                    }
                };
                if !list.is_empty() {
                    list.push(',');
                }
                list.push_str(name.as_str());
            }
            if !set.is_empty() {
                event = event.label("headers_set", set);
            }
            if !removed.is_empty() {
                event = event.label("headers_removed", removed);
            }
            if body {
                event = event.label("body_replaced", "true");
            }
        }
        Decision::Continue | Decision::Serve(_) => {}
    }
    event = event.outcome(if enforced && !matches!(decision, Decision::Modify(_)) {
        Outcome::Failure
    } else {
        Outcome::Unknown
    });
    emit(env, event);
    if enforced {
        decision
    } else {
        Decision::Continue
    }
}

fn with_reason(event: haetae_core::Event, reason: &Reason) -> haetae_core::Event {
    event
        .rule(reason.rule.clone().into_owned())
        .message(reason.message.clone())
        .severity(reason.severity)
}

/// Reports a failure and applies the failure policy.
fn on_failure(
    slot: &FilterSlot,
    phase: Phase,
    env: &PhaseEnv<'_>,
    request: &RequestView,
    attributes: &Attributes,
    kind: FailureKind,
    message: Option<&str>,
) -> Decision {
    let fail_closed = slot.failure == FailurePolicy::FailClosed;
    // A refused call is reported by the breaker's own open/closed events and counted in
    // metrics; one event per refused request would flood the Control Center.
    if kind != FailureKind::BreakerOpen {
        let text = match (message, kind) {
            (Some(m), _) => format!("filter {} failed in {}: {m}", slot.id, phase.as_str()),
            (None, FailureKind::Timeout) => format!(
                "filter {} exceeded its budget of {} ms in {}",
                slot.id,
                slot.budget.as_millis(),
                phase.as_str()
            ),
            (None, _) => format!("filter {} failed in {}", slot.id, phase.as_str()),
        };
        let event = request_event(
            "gateway.filter_failure",
            request,
            attributes,
            &env.services.instance,
            env.policy_version,
        )
        .filter(&*slot.id)
        .kind(EventKind::PipelineError)
        .category(EventCategory::Host)
        .severity(Severity::Medium)
        .message(text)
        .label("reason", kind.as_str())
        .label("phase", phase.as_str())
        .label(
            "failure_policy",
            if fail_closed {
                "fail-closed"
            } else {
                "fail-open"
            },
        );
        emit(env, event);
    }
    // In monitor mode a filter never acts, not even by failing closed.
    if fail_closed && slot.mode == FilterMode::Enforce && phase != Phase::Log {
        Decision::Respond(
            LocalResponse::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable.\n",
            ),
            Reason::new("filter-failure", Severity::Medium, kind.as_str()),
        )
    } else {
        Decision::Continue
    }
}

fn breaker_event(slot: &FilterSlot, env: &PhaseEnv<'_>, state: &str) {
    let s = slot.health.breaker.settings();
    let event = haetae_core::Event::new(
        haetae_core::Component::Gateway,
        format!("gateway.breaker_{state}"),
    )
    .instance(&*env.services.instance)
    .policy_version(env.policy_version)
    .filter(&*slot.id)
    .kind(EventKind::State)
    .category(EventCategory::Host)
    .severity(if state == "open" {
        Severity::High
    } else {
        Severity::Info
    })
    .message(if state == "open" {
        format!(
            "filter {} failed {} times within {} ms; not called for {} ms, then one trial",
            slot.id,
            s.failures,
            s.window.as_millis(),
            s.cooldown.as_millis()
        )
    } else {
        format!("filter {} recovered; breaker closed", slot.id)
    });
    emit(env, event);
}

fn emit(env: &PhaseEnv<'_>, event: haetae_core::Event) {
    if env.services.events.emit(event) {
        env.metrics.events_emitted.fetch_add(1, Ordering::Relaxed);
    } else {
        env.metrics.events_dropped.fetch_add(1, Ordering::Relaxed);
    }
}
