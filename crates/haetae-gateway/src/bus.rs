//! The gateway's one seam to the message bus: where events go. Everything the gateway
//! emits passes through [`EventSink`], so the backend (the log, `haetae-bus`'s
//! `EventEmitter` with its disk spool, a test collector) is chosen in one place.

use std::sync::atomic::{AtomicU64, Ordering};

use haetae_core::Event;

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
