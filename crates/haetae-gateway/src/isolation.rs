//! Fault isolation for filters: a panic inside a phase becomes an error value
//! ([`CatchUnwind`]), and a [`CircuitBreaker`] stops calling a filter that keeps failing,
//! then lets one trial call through after a cool-down (half-open).

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Polls a future and turns a panic during any poll into `Err(message)`.
pub(crate) struct CatchUnwind<F: ?Sized> {
    inner: Pin<Box<F>>,
}

impl<F: Future + ?Sized> CatchUnwind<F> {
    pub(crate) fn new(inner: Pin<Box<F>>) -> CatchUnwind<F> {
        CatchUnwind { inner }
    }
}

impl<F: Future + ?Sized> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// How a guarded call ended without a value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Guarded {
    /// The call was cut at its budget while it waited.
    Timeout,
    /// The call panicked; the panic's message.
    Panic(String),
}

/// Runs `fut` inside a panic guard, cut once `budget` has passed since `start`.
///
/// The first poll happens inline, without a timer: a filter phase that does not wait (the
/// usual case: headers read, attributes set, an event queued) ends there and costs no timer
/// registration. Only a call still pending after it is put under a timer for what is left
/// of its budget. Either way a panic in any poll becomes [`Guarded::Panic`] and a call not
/// done by the deadline [`Guarded::Timeout`]; a call that blocked its thread past the
/// budget is the caller's to judge (it measures the elapsed time).
pub(crate) async fn run_guarded<T, F: Future<Output = T> + ?Sized>(
    fut: Pin<Box<F>>,
    start: Instant,
    budget: Duration,
) -> Result<T, Guarded> {
    let mut guarded = CatchUnwind::new(fut);
    let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut guarded).poll(cx))).await;
    let out = match first {
        Poll::Ready(out) => out,
        Poll::Pending => {
            let left = budget.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, guarded).await {
                Ok(out) => out,
                Err(_) => return Err(Guarded::Timeout),
            }
        }
    };
    out.map_err(Guarded::Panic)
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// The breaker's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failures within `window` that open the breaker.
    pub failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long an open breaker waits before a trial call.
    pub cooldown: Duration,
}

/// The states of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down is over.
    Open,
    /// One trial call is under way; others are refused.
    HalfOpen,
}

impl BreakerState {
    /// The name used in metrics, events and the heartbeat.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    fn from_u8(v: u8) -> BreakerState {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Call the filter.
    Call,
    /// Call the filter as the half-open trial; report its outcome.
    Trial,
    /// Do not call; apply the failure policy.
    Refused,
}

/// What a recorded outcome changed, so the caller can report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    None,
    /// The breaker opened (threshold reached, or a trial failed).
    Opened,
    /// A trial succeeded: the breaker closed.
    Closed,
}

/// A lock-free circuit breaker: counts failures in a fixed window, opens at the threshold,
/// admits one trial after the cool-down.
#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    epoch: Instant,
    state: AtomicU8,
    window_start_ms: AtomicU64,
    window_failures: AtomicU32,
    opened_at_ms: AtomicU64,
}

impl CircuitBreaker {
    /// A closed breaker.
    #[must_use]
    pub fn new(settings: BreakerSettings) -> CircuitBreaker {
        CircuitBreaker {
            settings,
            epoch: Instant::now(),
            state: AtomicU8::new(0),
            window_start_ms: AtomicU64::new(0),
            window_failures: AtomicU32::new(0),
            opened_at_ms: AtomicU64::new(0),
        }
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    fn now_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Whether a call may go ahead now.
    pub fn admit(&self, now: Instant) -> Admission {
        match self.state() {
            BreakerState::Closed => Admission::Call,
            BreakerState::HalfOpen => Admission::Refused,
            BreakerState::Open => {
                let opened = self.opened_at_ms.load(Ordering::Acquire);
                let cooldown = u64::try_from(self.settings.cooldown.as_millis()).unwrap_or(0);
                if self.now_ms(now).saturating_sub(opened) >= cooldown
                    && self
                        .state
                        .compare_exchange(1, 2, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    Admission::Trial
                } else {
                    Admission::Refused
                }
            }
        }
    }

    /// Records a successful call.
    pub fn record_success(&self, admission: Admission) -> Transition {
        if admission == Admission::Trial {
            self.window_failures.store(0, Ordering::Release);
            self.state.store(0, Ordering::Release);
            return Transition::Closed;
        }
        Transition::None
    }

    /// Records a failed call (panic, error or budget exceeded).
    pub fn record_failure(&self, admission: Admission, now: Instant) -> Transition {
        let now_ms = self.now_ms(now);
        if admission == Admission::Trial {
            self.opened_at_ms.store(now_ms, Ordering::Release);
            self.state.store(1, Ordering::Release);
            return Transition::Opened;
        }
        let window = u64::try_from(self.settings.window.as_millis()).unwrap_or(u64::MAX);
        let start = self.window_start_ms.load(Ordering::Acquire);
        let count = if now_ms.saturating_sub(start) > window {
            self.window_start_ms.store(now_ms, Ordering::Release);
            self.window_failures.store(1, Ordering::Release);
            1
        } else {
            self.window_failures.fetch_add(1, Ordering::AcqRel) + 1
        };
        if count >= self.settings.failures.max(1) {
            self.opened_at_ms.store(now_ms, Ordering::Release);
            if self
                .state
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Transition::Opened;
            }
        }
        Transition::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings {
            failures: 3,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(5),
        })
    }

    #[test]
    fn the_breaker_opens_at_the_threshold_within_the_window() {
        let b = breaker();
        let t = Instant::now();
        assert_eq!(b.record_failure(Admission::Call, t), Transition::None);
        assert_eq!(b.record_failure(Admission::Call, t), Transition::None);
        assert_eq!(b.record_failure(Admission::Call, t), Transition::Opened);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(t + Duration::from_secs(1)), Admission::Refused);
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_open_it() {
        let b = breaker();
        let t = Instant::now();
        for i in 0..10 {
            b.record_failure(Admission::Call, t + Duration::from_secs(11 * i));
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn after_the_cooldown_one_trial_is_admitted_and_its_success_closes_it() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record_failure(Admission::Call, t);
        }
        let later = t + Duration::from_secs(6);
        assert_eq!(b.admit(later), Admission::Trial);
        assert_eq!(
            b.admit(later),
            Admission::Refused,
            "only one trial at a time"
        );
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.record_success(Admission::Trial), Transition::Closed);
        assert_eq!(b.admit(later), Admission::Call);
    }

    #[test]
    fn a_failed_trial_opens_it_again_for_another_cooldown() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record_failure(Admission::Call, t);
        }
        let later = t + Duration::from_secs(6);
        assert_eq!(b.admit(later), Admission::Trial);
        assert_eq!(
            b.record_failure(Admission::Trial, later),
            Transition::Opened
        );
        assert_eq!(b.admit(later + Duration::from_secs(1)), Admission::Refused);
        assert_eq!(b.admit(later + Duration::from_secs(6)), Admission::Trial);
    }

    #[test]
    fn a_panic_in_a_future_becomes_an_error() {
        let fut = Box::pin(async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
            1
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = rt.block_on(CatchUnwind::new(fut));
        assert_eq!(out, Err("boom".to_owned()));
    }
}
