//! The gateway's one seam to the message bus (`haetae-bus`): where events go, which shared
//! state filters get, and the policy watch. Everything the gateway emits passes through
//! [`EventSink`], so the backend (`haetae-bus`'s `EventEmitter` with its bounded queue and
//! disk spool, the log, a test collector) is chosen in one place.

use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use haetae_core::Event;
use tokio::sync::watch;

pub use haetae_bus::{Bus, EmitterOptions, EventEmitter, KvStore};

use crate::gateway::Gateway;
use crate::policy_source::{LastGoodPolicy, apply_and_keep};

/// Takes events without ever blocking the request path.
pub trait EventSink: Send + Sync {
    /// Queues an event. `false` when it had to be dropped (the sink counts drops).
    fn emit(&self, event: Event) -> bool;
}

/// Writes each event as one JSON line to the log (target `haetae::event`, level info):
/// the sink of a standalone gateway with no bus. A log shipper can take it from there.
#[derive(Debug, Default)]
pub struct LogEventSink {
    emitted: AtomicU64,
}

impl LogEventSink {
    /// How many events were written.
    #[must_use]
    pub fn emitted(&self) -> u64 {
        self.emitted.load(Ordering::Relaxed)
    }
}

impl EventSink for LogEventSink {
    fn emit(&self, event: Event) -> bool {
        self.emitted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(target: "haetae::event", "{}", event.to_json());
        true
    }
}

/// Sends every event to each of several sinks (e.g. the bus and the log); accepted when
/// any of them took it.
pub struct EventTee(pub Vec<Arc<dyn EventSink>>);

impl EventSink for EventTee {
    fn emit(&self, event: Event) -> bool {
        let mut taken = false;
        if let Some((last, rest)) = self.0.split_last() {
            for sink in rest {
                taken |= sink.emit(event.clone());
            }
            taken |= last.emit(event);
        }
        taken
    }
}

/// The bus's emitter: a bounded queue that never blocks, batches, and spools to disk while
/// the bus is unreachable.
impl EventSink for EventEmitter {
    fn emit(&self, event: Event) -> bool {
        EventEmitter::emit(self, event)
    }
}

/// Applies every policy the bus publishes (the first one as soon as there is one), keeping
/// each accepted one as the last good policy. Ends at shutdown or when the bus closes.
pub async fn watch_bus_policy(
    gateway: Arc<Gateway>,
    bus: Bus,
    last_good: Option<LastGoodPolicy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut policies = match bus.watch_policy().await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cannot watch the policy on the bus ({e}); keeping the running policy");
            return;
        }
    };
    loop {
        tokio::select! {
            next = policies.next() => match next {
                Some(policy) => {
                    if policy.version != gateway.policy_version() {
                        apply_and_keep(&gateway, &policy, last_good.as_ref());
                    }
                }
                None => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}
