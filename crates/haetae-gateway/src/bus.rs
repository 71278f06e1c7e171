//! The gateway's one seam to the message bus (`haetae-bus`): where events go, which shared
//! state filters get, and the policy watch. Everything the gateway emits passes through
//! [`EventSink`], so the backend (`haetae-bus`'s `EventEmitter` with its bounded queue and
//! disk spool, the log, a test collector) is chosen in one place.

use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use haetae_core::Event;
use tokio::sync::watch;

pub use haetae_bus::{Bus, EmitterOptions, EmitterStats, EventEmitter, KvStore};

use crate::gateway::Gateway;
use crate::policy_source::{LastGoodPolicy, ModuleTrust, prepare_and_apply};

/// Takes events without ever blocking the request path.
pub trait EventSink: Send + Sync {
    /// Queues an event. `false` when it had to be dropped (the sink counts drops).
    fn emit(&self, event: Event) -> bool;

    /// The delivery counters (queued, sent, spooled, dropped) of a sink that queues, for
    /// `/metrics`. `None` for a sink without them.
    fn stats(&self) -> Option<EmitterStats> {
        None
    }
}

/// Writes each event as one JSON line (the event's own ECS JSON, not wrapped in the log's
/// format) to standard error, the log's stream, when the log shows target `haetae::event`
/// at level info: the sink of a standalone gateway with no bus. A log shipper can take it
/// from there.
///
/// The request path only queues the event (a bounded queue, never waiting); a writer
/// thread, started on first use, serialises the events and writes them in batches (one
/// write per batch), so neither the JSON encoding nor the write costs the request
/// anything. When the queue is full the event is dropped and counted.
pub struct LogEventSink {
    capacity: usize,
    queue: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<Event>>>,
    counters: Arc<LogCounters>,
    output: std::sync::Mutex<Option<LogOutput>>,
}

impl std::fmt::Debug for LogEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogEventSink")
            .field("capacity", &self.capacity)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Where the writer thread writes.
enum LogOutput {
    /// Standard error, when the log filter shows `haetae::event` at info.
    Stderr,
    /// Any writer, every event.
    Writer(Box<dyn std::io::Write + Send>),
}

#[derive(Debug, Default)]
struct LogCounters {
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
}

impl Default for LogEventSink {
    fn default() -> Self {
        LogEventSink::with_capacity(65_536)
    }
}

impl LogEventSink {
    /// How long the writer waits after the first event of a batch for more to arrive.
    const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

    /// A sink to standard error whose queue holds at most `capacity` events not yet
    /// written.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> LogEventSink {
        LogEventSink {
            capacity: capacity.max(1),
            queue: std::sync::OnceLock::new(),
            counters: Arc::default(),
            output: std::sync::Mutex::new(Some(LogOutput::Stderr)),
        }
    }

    /// A sink that writes every event, one JSON line each, to `out` (a file, a pipe).
    #[must_use]
    pub fn writing_to(capacity: usize, out: Box<dyn std::io::Write + Send>) -> LogEventSink {
        LogEventSink {
            output: std::sync::Mutex::new(Some(LogOutput::Writer(out))),
            ..LogEventSink::with_capacity(capacity)
        }
    }

    /// How many events were accepted (queued for writing).
    #[must_use]
    pub fn emitted(&self) -> u64 {
        self.counters.queued.load(Ordering::Relaxed)
    }

    /// How many events were written (or, for standard error with `haetae::event` not
    /// shown by the log filter, passed over).
    #[must_use]
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Waits until every accepted event is written, at most `timeout`. Returns whether
    /// that happened.
    pub async fn flush(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let c = &self.counters;
            if c.written.load(Ordering::Acquire) >= c.queued.load(Ordering::Acquire) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    fn sender(&self) -> Option<&std::sync::mpsc::SyncSender<Event>> {
        self.queue
            .get_or_init(|| {
                let output = self
                    .output
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()?;
                let (tx, rx) = std::sync::mpsc::sync_channel::<Event>(self.capacity);
                let counters = Arc::clone(&self.counters);
                let spawned = std::thread::Builder::new()
                    .name("haetae-event-log".into())
                    .spawn(move || write_events(&rx, &counters, output));
                match spawned {
                    Ok(_) => Some(tx),
                    Err(e) => {
                        tracing::error!(
                            "cannot start the event log writer ({e}); events are not written"
                        );
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// The writer thread: waits for an event, lets a batch gather for [`LogEventSink::LINGER`],
/// and writes everything queued with one write. Ends when the sink is dropped and the
/// queue is empty.
fn write_events(
    rx: &std::sync::mpsc::Receiver<Event>,
    counters: &LogCounters,
    mut output: LogOutput,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Ok(first) = rx.recv() {
        std::thread::sleep(LogEventSink::LINGER);
        let shown = match output {
            LogOutput::Stderr => {
                tracing::enabled!(target: "haetae::event", tracing::Level::INFO)
            }
            LogOutput::Writer(_) => true,
        };
        let mut n = 0u64;
        for event in std::iter::once(first).chain(rx.try_iter()) {
            n += 1;
            if shown {
                // The event's own JSON writer: serde_json's bytes, about four times cheaper.
                event.write_json(&mut buf);
                buf.push(b'\n');
            }
            if buf.len() >= 60 * 1024 {
                write_batch(&mut output, &mut buf);
            }
        }
        write_batch(&mut output, &mut buf);
        counters.written.fetch_add(n, Ordering::Release);
    }
}

fn write_batch(output: &mut LogOutput, buf: &mut Vec<u8>) {
    use std::io::Write as _;
    if buf.is_empty() {
        return;
    }
    let result = match output {
        // Under the stream's lock, so no other log line lands inside a batch.
        LogOutput::Stderr => std::io::stderr().lock().write_all(buf),
        LogOutput::Writer(w) => w.write_all(buf).and_then(|()| w.flush()),
    };
    if let Err(e) = result {
        tracing::warn!("cannot write events to the log: {e}");
    }
    buf.clear();
}

impl EventSink for LogEventSink {
    fn emit(&self, event: Event) -> bool {
        let c = &self.counters;
        let Some(tx) = self.sender() else {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        // Counted before sending, so `written` never runs ahead of `queued`.
        c.queued.fetch_add(1, Ordering::Release);
        if tx.try_send(event).is_ok() {
            true
        } else {
            c.queued.fetch_sub(1, Ordering::Release);
            c.dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    fn stats(&self) -> Option<EmitterStats> {
        let c = &self.counters;
        let queued = c.queued.load(Ordering::Relaxed);
        let sent = c.written.load(Ordering::Relaxed);
        Some(EmitterStats {
            queued,
            sent,
            dropped_queue_full: c.dropped.load(Ordering::Relaxed),
            backlog: queued.saturating_sub(sent),
            ..EmitterStats::default()
        })
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

    /// The first sink's counters that has them (the bus emitter, in `haetae up`).
    fn stats(&self) -> Option<EmitterStats> {
        self.0.iter().find_map(|s| s.stats())
    }
}

/// The bus's emitter: a bounded queue that never blocks, batches, and spools to disk while
/// the bus is unreachable.
impl EventSink for EventEmitter {
    fn emit(&self, event: Event) -> bool {
        EventEmitter::emit(self, event)
    }

    fn stats(&self) -> Option<EmitterStats> {
        Some(EventEmitter::stats(self))
    }
}

/// Applies every policy the bus publishes (the first one as soon as there is one), keeping
/// each accepted one as the last good policy. Ends at shutdown or when the bus closes.
/// Store modules are taken without checking signatures; see [`watch_bus_policy_with`].
pub async fn watch_bus_policy(
    gateway: Arc<Gateway>,
    bus: Bus,
    last_good: Option<LastGoodPolicy>,
    shutdown: watch::Receiver<bool>,
) {
    watch_bus_policy_with(gateway, bus, last_good, ModuleTrust::default(), shutdown).await;
}

/// As [`watch_bus_policy`], fetching the Proxy-Wasm modules of the Control Center's store
/// that a policy names from the bus and checking them against `trust` before applying it
/// ([`prepare_and_apply`]).
pub async fn watch_bus_policy_with(
    gateway: Arc<Gateway>,
    bus: Bus,
    last_good: Option<LastGoodPolicy>,
    trust: ModuleTrust,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut policies = match bus.watch_policy().await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cannot watch the policy on the bus ({e}); keeping the running policy");
            return;
        }
    };
    let mut modules: Option<Arc<dyn KvStore>> = None;
    loop {
        tokio::select! {
            next = policies.next() => match next {
                Some(policy) => {
                    if policy.version == gateway.policy_version() {
                        continue;
                    }
                    let needs_modules = policy
                        .filters
                        .iter()
                        .any(|f| f.wasm_module_ref().is_some());
                    if needs_modules && modules.is_none() {
                        match bus
                            .kv(haetae_bus::modules::MODULE_BUCKET, std::time::Duration::ZERO)
                            .await
                        {
                            Ok(kv) => modules = Some(kv),
                            Err(e) => tracing::error!(
                                "cannot open the bus bucket of Wasm modules: {e}"
                            ),
                        }
                    }
                    tokio::select! {
                        _ = prepare_and_apply(
                            &gateway,
                            policy,
                            modules.as_deref(),
                            &trust,
                            last_good.as_ref(),
                        ) => {}
                        _ = shutdown.changed() => return,
                    }
                }
                None => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haetae_core::Component;

    #[tokio::test]
    async fn the_log_sink_queues_writes_later_and_counts_what_it_drops() {
        let sink = LogEventSink::with_capacity(1);
        let accepted = (0..10)
            .filter(|i| sink.emit(Event::new(Component::Gateway, format!("test.{i}"))))
            .count() as u64;
        let stats = sink.stats().unwrap();
        assert_eq!(stats.queued, accepted);
        assert!(accepted >= 1);
        assert_eq!(stats.queued + stats.dropped_queue_full, 10);
        assert!(
            stats.dropped_queue_full >= 1,
            "a queue of one cannot take ten at once"
        );
        assert!(sink.flush(std::time::Duration::from_secs(5)).await);
        let stats = sink.stats().unwrap();
        assert_eq!(stats.sent, accepted);
        assert_eq!(stats.backlog, 0);
        assert_eq!(sink.written(), sink.emitted());
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_log_sink_writes_each_event_as_one_json_line() {
        let out = Shared::default();
        let sink = LogEventSink::writing_to(1024, Box::new(out.clone()));
        for i in 0..50 {
            assert!(sink.emit(
                Event::new(Component::Gateway, format!("test.{i}")).message("a \"quoted\"\nline")
            ));
        }
        assert!(sink.flush(std::time::Duration::from_secs(5)).await);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let events: Vec<Event> = text
            .lines()
            .map(|l| Event::from_json(l).expect("each line is one event"))
            .collect();
        assert_eq!(events.len(), 50);
        assert_eq!(events[49].event.action, "test.49");
        assert_eq!(events[0].message.as_deref(), Some("a \"quoted\"\nline"));
    }
}
