//! Event delivery: producers hand events to an [`EventEmitter`] without ever waiting; a
//! background task batches them and publishes them at least once, keeping undeliverable
//! batches in a bounded backlog (on disk when a spool folder is configured) and re-sending
//! them in order. The Control Center reads them back through an [`EventSubscription`],
//! acknowledging each batch once it is stored; an unacknowledged batch is delivered again.
//!
//! Every event carries its own id (`event.id`, a UUID v7); the backends use it to drop
//! duplicates (JetStream's `Nats-Msg-Id`), and ingest stays idempotent beyond that window.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use haetae_core::Event;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::kv::BoxFuture;
use crate::spool::{Backlog, Spool};
use crate::{BusError, deadline_after};

/// How an [`EventEmitter`] queues, batches and keeps events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitterOptions {
    /// Events the queue holds before [`EventEmitter::emit`] starts refusing them.
    pub queue_capacity: usize,
    /// The most events published as one batch.
    pub max_batch: usize,
    /// How long the first event of a batch waits for company before the batch is sent.
    pub linger: Duration,
    /// Where undeliverable batches are kept across restarts. `None` keeps them in memory
    /// (at most `memory_backlog_events`), and they are lost if the process stops.
    pub spool_dir: Option<PathBuf>,
    /// The most bytes the spool folder holds; the oldest batches are dropped beyond it.
    pub spool_max_bytes: u64,
    /// The most events the in-memory backlog holds when there is no spool folder.
    pub memory_backlog_events: u64,
    /// How long one batch may take to be acknowledged before it counts as failed.
    pub publish_timeout: Duration,
    /// How long to wait after a failure before re-sending the backlog.
    pub retry_interval: Duration,
}

impl Default for EmitterOptions {
    fn default() -> Self {
        EmitterOptions {
            queue_capacity: 65_536,
            max_batch: 512,
            linger: Duration::from_millis(20),
            spool_dir: None,
            spool_max_bytes: 256 * 1024 * 1024,
            memory_backlog_events: 65_536,
            publish_timeout: Duration::from_secs(5),
            retry_interval: Duration::from_secs(1),
        }
    }
}

impl EmitterOptions {
    /// The defaults with a spool folder, e.g. `<data_dir>/spool/events`.
    #[must_use]
    pub fn spooled(dir: impl Into<PathBuf>) -> EmitterOptions {
        EmitterOptions {
            spool_dir: Some(dir.into()),
            ..EmitterOptions::default()
        }
    }
}

/// The emitter's counters, for `/metrics`. All are totals since the emitter started except
/// `backlog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmitterStats {
    /// Events accepted by [`EventEmitter::emit`].
    pub queued: u64,
    /// Events found in the spool folder at start (left by an earlier run).
    pub resumed: u64,
    /// Events the backend acknowledged.
    pub sent: u64,
    /// Events put in the backlog because the backend was unreachable or a backlog was
    /// already waiting (so order is kept).
    pub spooled: u64,
    /// Events refused by `emit` because the queue was full or the emitter shut down.
    pub dropped_queue_full: u64,
    /// Accepted events lost: the oldest dropped from a full backlog, unreadable spool lines,
    /// or batches the spool folder could not take.
    pub dropped_backlog: u64,
    /// Events the backend can never take (larger than the server's maximum message size);
    /// each is logged with its id.
    pub dropped_too_large: u64,
    /// Publish attempts that failed (each is retried).
    pub publish_failures: u64,
    /// Events waiting in the backlog now.
    pub backlog: u64,
}

impl EmitterStats {
    /// Events accepted but neither delivered nor dropped yet.
    #[must_use]
    pub fn pending(&self) -> u64 {
        (self.queued + self.resumed)
            .saturating_sub(self.sent + self.dropped_backlog + self.dropped_too_large)
    }
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    resumed: AtomicU64,
    sent: AtomicU64,
    spooled: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_backlog: AtomicU64,
    dropped_too_large: AtomicU64,
    publish_failures: AtomicU64,
    backlog: AtomicU64,
}

#[derive(Debug, Default)]
struct EmitterShared {
    counters: Counters,
    /// Woken after every step of the background task.
    progress: Notify,
    /// Asks the background task to stop accepting and finish.
    shutdown: Notify,
    finished: AtomicBool,
}

/// Where an emitter publishes: one implementation per backend.
pub(crate) trait EventSink: Send + Sync {
    /// Publishes the batch and waits until the backend has stored every event of it.
    /// Returns how many events the backend can never take (too large) and were skipped.
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<u64, BusError>>;
}

/// The producer's handle: cheap to clone, safe to share between threads, never blocks.
/// Create with [`crate::Bus::event_emitter`].
#[derive(Clone)]
pub struct EventEmitter {
    queue: mpsc::Sender<Event>,
    shared: Arc<EmitterShared>,
}

impl fmt::Debug for EventEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventEmitter")
            .field("stats", &self.stats())
            .finish()
    }
}

impl EventEmitter {
    /// Starts the background task on the current Tokio runtime.
    pub(crate) fn start(
        sink: Arc<dyn EventSink>,
        options: EmitterOptions,
    ) -> Result<EventEmitter, BusError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BusError::NoRuntime {
            what: "an event emitter",
        })?;
        let backlog = match &options.spool_dir {
            Some(dir) => Backlog::Disk(Spool::open(dir, options.spool_max_bytes)?),
            None => Backlog::memory(options.memory_backlog_events),
        };
        let shared = Arc::new(EmitterShared::default());
        shared
            .counters
            .resumed
            .store(backlog.events(), Ordering::Relaxed);
        shared
            .counters
            .backlog
            .store(backlog.events(), Ordering::Relaxed);
        let (queue, rx) = mpsc::channel(options.queue_capacity.max(1));
        let task = Delivery {
            rx,
            sink,
            backlog,
            shared: shared.clone(),
            options,
            retry_at: None,
        };
        runtime.spawn(task.run());
        Ok(EventEmitter { queue, shared })
    }

    /// Queues an event for delivery and returns at once. `false` (and counted in
    /// [`EmitterStats::dropped_queue_full`]) when the queue is full or the emitter is shut
    /// down: the caller's request goes on either way.
    pub fn emit(&self, event: Event) -> bool {
        let c = &self.shared.counters;
        if self.queue.try_send(event).is_ok() {
            c.queued.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            c.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// The counters now.
    #[must_use]
    pub fn stats(&self) -> EmitterStats {
        let c = &self.shared.counters;
        EmitterStats {
            queued: c.queued.load(Ordering::Relaxed),
            resumed: c.resumed.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            spooled: c.spooled.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            dropped_backlog: c.dropped_backlog.load(Ordering::Relaxed),
            dropped_too_large: c.dropped_too_large.load(Ordering::Relaxed),
            publish_failures: c.publish_failures.load(Ordering::Relaxed),
            backlog: c.backlog.load(Ordering::Relaxed),
        }
    }

    /// Waits until every accepted event is delivered (or dropped and counted), at most
    /// `timeout`. Returns whether that happened.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        loop {
            let progressed = self.shared.progress.notified();
            if self.stats().pending() == 0 {
                return true;
            }
            if self.shared.finished.load(Ordering::Acquire) {
                return false;
            }
            // Re-check at least every 50 ms: `emit` does not wake this waiter.
            let step = (Instant::now() + Duration::from_millis(50)).min(deadline);
            if tokio::time::timeout_at(step, progressed).await.is_err()
                && Instant::now() >= deadline
            {
                return self.stats().pending() == 0;
            }
        }
    }

    /// Stops accepting events, delivers what is queued (batches still undeliverable stay in
    /// the spool folder for the next start), and waits for the background task to finish, at
    /// most `timeout`. Returns the final counters.
    pub async fn shutdown(&self, timeout: Duration) -> EmitterStats {
        self.shared.shutdown.notify_one();
        let deadline = deadline_after(timeout);
        while !self.shared.finished.load(Ordering::Acquire) && Instant::now() < deadline {
            let progressed = self.shared.progress.notified();
            if self.shared.finished.load(Ordering::Acquire) {
                break;
            }
            let step = (Instant::now() + Duration::from_millis(50)).min(deadline);
            let _ = tokio::time::timeout_at(step, progressed).await;
        }
        self.stats()
    }
}

/// The background task that moves events from the queue to the backend.
struct Delivery {
    rx: mpsc::Receiver<Event>,
    sink: Arc<dyn EventSink>,
    backlog: Backlog,
    shared: Arc<EmitterShared>,
    options: EmitterOptions,
    /// When the backlog is next re-sent; `None` means as soon as possible.
    retry_at: Option<Instant>,
}

/// Backlog batches re-sent per round, so the queue keeps being drained meanwhile.
const RESEND_PER_ROUND: usize = 16;

impl Delivery {
    async fn run(mut self) {
        let mut open = true;
        let mut batch = Vec::with_capacity(self.options.max_batch);
        loop {
            if open {
                open = self.gather(&mut batch).await;
            }
            if !batch.is_empty() {
                let events =
                    std::mem::replace(&mut batch, Vec::with_capacity(self.options.max_batch));
                if self.backlog.is_empty() {
                    if let Err(e) = self.publish(&events).await {
                        tracing::warn!(error = %e, events = events.len(), "event batch not delivered; keeping it for a retry");
                        self.retry_at = Some(deadline_after(self.options.retry_interval));
                        self.keep(&events);
                    }
                } else {
                    self.keep(&events);
                }
            }
            let resend_due = self.retry_at.is_none_or(|t| Instant::now() >= t);
            if !self.backlog.is_empty() && (resend_due || !open) {
                self.resend(if open { RESEND_PER_ROUND } else { usize::MAX })
                    .await;
            }
            self.shared.progress.notify_waiters();
            if !open {
                break;
            }
        }
        if let Backlog::Memory { events, .. } = &self.backlog
            && *events > 0
        {
            // Only a spool folder outlives the process.
            tracing::warn!(
                events = *events,
                "the emitter stopped with undelivered events in memory; they are lost"
            );
            let c = &self.shared.counters;
            c.dropped_backlog.fetch_add(*events, Ordering::Relaxed);
        }
        self.shared.finished.store(true, Ordering::Release);
        self.shared.progress.notify_waiters();
    }

    /// Fills `batch` from the queue: waits for a first event (or the backlog's retry time, or
    /// shutdown), then takes more until the batch is full or `linger` has passed. Returns
    /// false once the queue is closed and empty.
    async fn gather(&mut self, batch: &mut Vec<Event>) -> bool {
        // A waiting backlog (also one left by an earlier run) is re-sent without waiting
        // for new events.
        let retry_at = if self.backlog.is_empty() {
            None
        } else {
            Some(self.retry_at.unwrap_or_else(Instant::now))
        };
        let first = tokio::select! {
            event = self.rx.recv() => event,
            () = sleep_until_some(retry_at) => return true,
            () = self.shared.shutdown.notified() => {
                self.rx.close();
                self.rx.recv().await
            }
        };
        let Some(first) = first else { return false };
        batch.push(first);
        // While waiting to retry, the batch can only go to the backlog: keep filling it until
        // the retry time rather than writing one small spool file per linger.
        let deadline = match self.retry_at {
            Some(at) if !self.backlog.is_empty() => at.max(deadline_after(self.options.linger)),
            _ => deadline_after(self.options.linger),
        };
        while batch.len() < self.options.max_batch {
            match self.rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Ok(Some(e)) => batch.push(e),
                        Ok(None) => return false,
                        Err(_) => break,
                    }
                }
            }
        }
        true
    }

    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        let c = &self.shared.counters;
        let result =
            match tokio::time::timeout(self.options.publish_timeout, self.sink.publish(events))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(BusError::Unavailable {
                    backend: "event backend",
                    operation: "publish an event batch".into(),
                    message: format!(
                        "no acknowledgement within {:?}",
                        self.options.publish_timeout
                    ),
                }),
            };
        match result {
            Ok(refused) => {
                c.sent.fetch_add(
                    (events.len() as u64).saturating_sub(refused),
                    Ordering::Relaxed,
                );
                c.dropped_too_large.fetch_add(refused, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                c.publish_failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Puts a batch behind the backlog, counting what a full backlog drops.
    fn keep(&mut self, events: &[Event]) {
        let c = &self.shared.counters;
        match self.backlog.push(events) {
            Ok(pushed) => {
                c.spooled.fetch_add(pushed.kept, Ordering::Relaxed);
                c.dropped_backlog
                    .fetch_add(pushed.dropped, Ordering::Relaxed);
                if pushed.dropped > 0 {
                    tracing::warn!(
                        dropped = pushed.dropped,
                        "the event backlog is full; the oldest events were dropped"
                    );
                }
            }
            Err(e) => {
                c.dropped_backlog
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                tracing::error!(error = %e, events = events.len(), "events could not be spooled and were dropped");
            }
        }
        c.backlog.store(self.backlog.events(), Ordering::Relaxed);
    }

    /// Re-sends up to `rounds` backlog batches, oldest first, stopping at the first failure.
    async fn resend(&mut self, rounds: usize) {
        let c = &self.shared.counters;
        for _ in 0..rounds {
            let events = match self.backlog.front() {
                Ok(Some((events, _unreadable))) => events,
                Ok(None) => {
                    self.retry_at = None;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "a spooled batch could not be read; skipping it");
                    Vec::new()
                }
            };
            if !events.is_empty()
                && let Err(e) = self.publish(&events).await
            {
                tracing::debug!(error = %e, backlog = self.backlog.events(), "backlog not re-sent yet");
                self.retry_at = Some(deadline_after(self.options.retry_interval));
                break;
            }
            let front_events = self.backlog.events();
            if let Err(e) = self.backlog.remove_front() {
                tracing::error!(error = %e, "a delivered spool file could not be removed; it may be sent twice");
            }
            // What a damaged or unreadable file held beyond the events read is lost.
            let removed = front_events.saturating_sub(self.backlog.events());
            let lost = removed.saturating_sub(events.len() as u64);
            c.dropped_backlog.fetch_add(lost, Ordering::Relaxed);
            c.backlog.store(self.backlog.events(), Ordering::Relaxed);
            self.shared.progress.notify_waiters();
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One event as received by a subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The event.
    pub event: Event,
    /// 1 on first delivery, more when it is delivered again (not acknowledged in time).
    pub delivery_count: u64,
    /// Its position in the event stream.
    pub stream_sequence: u64,
}

/// Acknowledges a delivered batch on its backend.
pub(crate) trait BatchAck: Send {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>>;
}

/// A batch of events delivered to a subscriber. Store them, then call
/// [`EventBatch::ack`]; a batch dropped without `ack` is delivered again after the
/// subscription's `ack_wait`.
pub struct EventBatch {
    /// The events, in stream order.
    pub events: Vec<ReceivedEvent>,
    /// Messages in the stream that are not haetae events (each says where and why); they
    /// are not delivered again.
    pub rejected: Vec<BusError>,
    ack: Option<Box<dyn BatchAck>>,
}

impl fmt::Debug for EventBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBatch")
            .field("events", &self.events.len())
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

impl EventBatch {
    pub(crate) fn new(
        events: Vec<ReceivedEvent>,
        rejected: Vec<BusError>,
        ack: Option<Box<dyn BatchAck>>,
    ) -> EventBatch {
        EventBatch {
            events,
            rejected,
            ack,
        }
    }

    /// True when nothing arrived within the wait.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Confirms the whole batch is stored, so it is not delivered again.
    pub async fn ack(mut self) -> Result<(), BusError> {
        match self.ack.take() {
            Some(ack) => ack.ack().await,
            None => Ok(()),
        }
    }
}

/// How a subscriber's durable consumer behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// How long a delivered batch may stay unacknowledged before it is delivered again.
    /// On NATS this is fixed when the durable consumer is first created.
    pub ack_wait: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// Where a subscription reads from: one implementation per backend.
pub(crate) trait EventSource: Send {
    fn fetch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<EventBatch, BusError>>;
}

/// A durable subscription to the event stream, from [`crate::Bus::subscribe_events`].
/// Its position survives restarts (it is named); several processes using the same name
/// share the work, each event going to one of them.
pub struct EventSubscription {
    source: Box<dyn EventSource>,
}

impl fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSubscription").finish_non_exhaustive()
    }
}

impl EventSubscription {
    pub(crate) fn new(source: Box<dyn EventSource>) -> EventSubscription {
        EventSubscription { source }
    }

    /// Up to `max` events, waiting at most `wait` for the first one; an empty batch when
    /// none came. Events not acknowledged in time come again in a later batch.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<EventBatch, BusError> {
        self.source.fetch(max.max(1), wait).await
    }
}

/// Durable consumer names: what NATS accepts.
pub(crate) fn check_durable_name(name: &str) -> Result<(), BusError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidName {
            what: "durable consumer",
            name: name.to_owned(),
            rule: "1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use haetae_core::Component;

    use super::*;

    /// A backend that can be switched off: stores what it accepts, refuses while down, or
    /// never answers while hung.
    #[derive(Default)]
    struct Switchable {
        stored: Mutex<Vec<Event>>,
        down: AtomicBool,
        hung: AtomicBool,
    }

    impl EventSink for Switchable {
        fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<u64, BusError>> {
            Box::pin(async move {
                if self.hung.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                if self.down.load(Ordering::SeqCst) {
                    return Err(BusError::Unavailable {
                        backend: "test",
                        operation: "publish".into(),
                        message: "switched off".into(),
                    });
                }
                self.stored.lock().unwrap().extend_from_slice(events);
                Ok(0)
            })
        }
    }

    impl Switchable {
        fn ids(&self) -> Vec<uuid::Uuid> {
            self.stored.lock().unwrap().iter().map(Event::id).collect()
        }
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::new(Component::Gateway, format!("t.{i}")))
            .collect()
    }

    fn quick() -> EmitterOptions {
        EmitterOptions {
            linger: Duration::from_millis(2),
            retry_interval: Duration::from_millis(50),
            max_batch: 10,
            ..EmitterOptions::default()
        }
    }

    #[tokio::test]
    async fn emit_refuses_and_counts_when_the_queue_is_full() {
        let sink = Arc::new(Switchable::default());
        sink.hung.store(true, Ordering::SeqCst);
        let emitter = EventEmitter::start(
            sink.clone(),
            EmitterOptions {
                queue_capacity: 4,
                max_batch: 1,
                ..quick()
            },
        )
        .unwrap();
        let mut accepted = 0;
        for e in events(20) {
            if emitter.emit(e) {
                accepted += 1;
            }
            tokio::task::yield_now().await;
        }
        let stats = emitter.stats();
        assert!(
            accepted <= 5,
            "the queue holds 4 plus the batch in hand: {stats:?}"
        );
        assert_eq!(stats.queued, accepted);
        assert_eq!(stats.dropped_queue_full, 20 - accepted);
    }

    #[tokio::test]
    async fn batches_wait_in_the_backlog_while_the_backend_is_down_and_go_out_in_order() {
        let sink = Arc::new(Switchable::default());
        sink.down.store(true, Ordering::SeqCst);
        let emitter = EventEmitter::start(sink.clone(), quick()).unwrap();
        let sent = events(35);
        for e in &sent[..20] {
            assert!(emitter.emit(e.clone()));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while emitter.stats().backlog < 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!emitter.flush(Duration::from_millis(50)).await);
        let stats = emitter.stats();
        assert_eq!((stats.backlog, stats.sent), (20, 0), "{stats:?}");
        assert!(stats.publish_failures >= 1);
        for e in &sent[20..] {
            assert!(emitter.emit(e.clone()));
        }
        sink.down.store(false, Ordering::SeqCst);
        assert!(
            emitter.flush(Duration::from_secs(5)).await,
            "{:?}",
            emitter.stats()
        );
        assert_eq!(sink.ids(), sent.iter().map(Event::id).collect::<Vec<_>>());
        let stats = emitter.stats();
        assert_eq!(
            (stats.sent, stats.backlog, stats.dropped_backlog),
            (35, 0, 0)
        );
    }

    #[tokio::test]
    async fn a_spool_left_by_an_earlier_run_is_sent_first_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let down = Arc::new(Switchable::default());
        down.down.store(true, Ordering::SeqCst);
        let options = EmitterOptions {
            spool_dir: Some(dir.path().to_owned()),
            ..quick()
        };
        let first_run = EventEmitter::start(down, options.clone()).unwrap();
        let early = events(12);
        for e in &early {
            first_run.emit(e.clone());
        }
        let stats = first_run.shutdown(Duration::from_secs(5)).await;
        assert_eq!(stats.backlog, 12, "{stats:?}");

        let up = Arc::new(Switchable::default());
        let second_run = EventEmitter::start(up.clone(), options).unwrap();
        assert_eq!(second_run.stats().resumed, 12);
        let late = events(3);
        for e in &late {
            second_run.emit(e.clone());
        }
        assert!(second_run.flush(Duration::from_secs(5)).await);
        let want: Vec<_> = early.iter().chain(&late).map(Event::id).collect();
        assert_eq!(up.ids(), want);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn events_left_in_memory_at_shutdown_are_counted_as_lost() {
        let sink = Arc::new(Switchable::default());
        sink.down.store(true, Ordering::SeqCst);
        let emitter = EventEmitter::start(sink, quick()).unwrap();
        for e in events(7) {
            emitter.emit(e);
        }
        let stats = emitter.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            (stats.sent, stats.dropped_backlog, stats.pending()),
            (0, 7, 0)
        );
    }

    #[tokio::test]
    async fn a_spool_left_by_an_earlier_run_is_sent_without_new_events() {
        let dir = tempfile::tempdir().unwrap();
        let down = Arc::new(Switchable::default());
        down.down.store(true, Ordering::SeqCst);
        let options = EmitterOptions {
            spool_dir: Some(dir.path().to_owned()),
            ..quick()
        };
        let first_run = EventEmitter::start(down, options.clone()).unwrap();
        let early = events(5);
        for e in &early {
            first_run.emit(e.clone());
        }
        first_run.shutdown(Duration::from_secs(5)).await;

        let up = Arc::new(Switchable::default());
        let second_run = EventEmitter::start(up.clone(), options).unwrap();
        assert!(
            second_run.flush(Duration::from_secs(5)).await,
            "{:?}",
            second_run.stats()
        );
        assert_eq!(up.ids(), early.iter().map(Event::id).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn during_an_outage_trickling_events_are_spooled_in_few_files() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Switchable::default());
        sink.down.store(true, Ordering::SeqCst);
        let emitter = EventEmitter::start(
            sink,
            EmitterOptions {
                spool_dir: Some(dir.path().to_owned()),
                retry_interval: Duration::from_millis(400),
                max_batch: 512,
                ..quick()
            },
        )
        .unwrap();
        for e in events(40) {
            emitter.emit(e);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while emitter.stats().backlog < 40 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(emitter.stats().backlog, 40);
        assert!(
            files <= 6,
            "40 events over 0.4 s in {files} files, not one per linger"
        );
    }

    #[tokio::test]
    async fn emit_after_shutdown_is_refused() {
        let sink = Arc::new(Switchable::default());
        let emitter = EventEmitter::start(sink.clone(), quick()).unwrap();
        emitter.emit(events(1).remove(0));
        let stats = emitter.shutdown(Duration::from_secs(5)).await;
        assert_eq!(stats.sent, 1);
        assert!(!emitter.emit(events(1).remove(0)));
        assert_eq!(emitter.stats().dropped_queue_full, 1);
    }

    #[test]
    fn an_emitter_needs_a_runtime() {
        let err = EventEmitter::start(Arc::new(Switchable::default()), quick()).unwrap_err();
        assert!(matches!(err, BusError::NoRuntime { .. }), "{err:?}");
    }
}
