//! The in-process backend for the embedded shape (`haetae up`): policy in a watch cell, events
//! in a bounded log with durable consumers and redelivery, state in expiring maps. Same
//! semantics as the NATS backend, nothing to install; nothing survives the process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use haetae_core::{Event, PolicySnapshot};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::events::{
    BatchAck, EventBatch, EventSink, EventSource, ReceivedEvent, SubscribeOptions,
};
use crate::kv::{BoxFuture, KvEntry, KvStore, check_key, check_ttl};
use crate::policy::{PolicyCell, offer};
use crate::{Backend, BusError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-updated in a way that
    // matters more than stopping the bus would; carry on with the data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Limits of the in-process backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProcessOptions {
    /// Events the log keeps; beyond it the oldest are dropped (and counted). Events are
    /// removed earlier once every durable subscriber acknowledged them.
    pub event_capacity: usize,
    /// Keys one KV bucket holds; `create`/`put` of a new key beyond it fail with
    /// [`BusError::Full`].
    pub kv_max_keys: usize,
}

impl Default for InProcessOptions {
    fn default() -> Self {
        InProcessOptions {
            event_capacity: 200_000,
            kv_max_keys: 1_000_000,
        }
    }
}

#[derive(Debug)]
pub(crate) struct InProcess {
    policy: watch::Sender<Option<Arc<PolicySnapshot>>>,
    events: Arc<EventLog>,
    buckets: Mutex<HashMap<String, Arc<MemoryKv>>>,
    options: InProcessOptions,
}

impl InProcess {
    pub(crate) fn new(options: InProcessOptions) -> InProcess {
        InProcess {
            policy: watch::Sender::new(None),
            events: Arc::new(EventLog::new(options.event_capacity)),
            buckets: Mutex::new(HashMap::new()),
            options,
        }
    }
}

impl Backend for InProcess {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn publish_policy(&self, snapshot: Arc<PolicySnapshot>) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let offered = snapshot.version;
            if offer(&self.policy, snapshot) {
                Ok(())
            } else {
                let current = self.policy.borrow().as_ref().map_or(0, |s| s.version);
                Err(BusError::StaleVersion { current, offered })
            }
        })
    }

    fn latest_policy(&self) -> BoxFuture<'_, Result<Option<Arc<PolicySnapshot>>, BusError>> {
        Box::pin(async move { Ok(self.policy.borrow().clone()) })
    }

    fn watch_policy(&self) -> BoxFuture<'_, Result<PolicyCell, BusError>> {
        Box::pin(async move { Ok(self.policy.subscribe()) })
    }

    fn event_sink(&self) -> Arc<dyn EventSink> {
        self.events.clone()
    }

    fn subscribe_events<'a>(
        &'a self,
        durable: &'a str,
        options: &'a SubscribeOptions,
    ) -> BoxFuture<'a, Result<Box<dyn EventSource>, BusError>> {
        Box::pin(async move {
            self.events.register(durable, options.ack_wait);
            let source: Box<dyn EventSource> = Box::new(LogReader {
                log: self.events.clone(),
                durable: durable.to_owned(),
            });
            Ok(source)
        })
    }

    fn kv<'a>(
        &'a self,
        bucket: &'a str,
        max_age: Duration,
    ) -> BoxFuture<'a, Result<Arc<dyn KvStore>, BusError>> {
        Box::pin(async move {
            let store = lock(&self.buckets)
                .entry(bucket.to_owned())
                .or_insert_with(|| {
                    Arc::new(MemoryKv::new(bucket, max_age, self.options.kv_max_keys))
                })
                .clone();
            let store: Arc<dyn KvStore> = store;
            Ok(store)
        })
    }
}

// --- events -------------------------------------------------------------------------------

/// The in-process event stream: sequence numbers from 1, duplicates (same `event.id`) dropped
/// while the first copy is retained.
#[derive(Debug)]
pub(crate) struct EventLog {
    state: Mutex<LogState>,
    /// The next sequence number; bumped on every append so readers wake.
    appended: watch::Sender<u64>,
    capacity: usize,
}

#[derive(Debug)]
struct LogState {
    /// Sequence of `messages[0]`.
    first_seq: u64,
    messages: VecDeque<Event>,
    ids: HashMap<Uuid, u64>,
    consumers: HashMap<String, Consumer>,
    dropped: u64,
}

impl LogState {
    fn next_seq(&self) -> u64 {
        self.first_seq + self.messages.len() as u64
    }

    /// Removes events every consumer has acknowledged.
    fn trim_acknowledged(&mut self) {
        let Some(floor) = self.consumers.values().map(Consumer::floor).min() else {
            return;
        };
        while self.first_seq < floor {
            let Some(event) = self.messages.pop_front() else {
                break;
            };
            self.ids.remove(&event.event.id);
            self.first_seq += 1;
        }
    }
}

#[derive(Debug)]
struct Consumer {
    /// The next never-delivered sequence.
    next_seq: u64,
    /// Delivered, not yet acknowledged: sequence -> (redeliver at, deliveries so far).
    pending: BTreeMap<u64, (Instant, u64)>,
    ack_wait: Duration,
}

impl Consumer {
    /// Every sequence below this is acknowledged.
    fn floor(&self) -> u64 {
        self.pending
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_seq)
            .min(self.next_seq)
    }
}

/// When a delivery made at `now` is due again; saturating for absurd waits.
fn due_after(now: Instant, ack_wait: Duration) -> Instant {
    now.checked_add(ack_wait)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl EventLog {
    fn new(capacity: usize) -> EventLog {
        EventLog {
            state: Mutex::new(LogState {
                first_seq: 1,
                messages: VecDeque::new(),
                ids: HashMap::new(),
                consumers: HashMap::new(),
                dropped: 0,
            }),
            appended: watch::Sender::new(1),
            capacity: capacity.max(1),
        }
    }

    fn register(&self, durable: &str, ack_wait: Duration) {
        let mut s = lock(&self.state);
        let first = s.first_seq;
        s.consumers
            .entry(durable.to_owned())
            .or_insert_with(|| Consumer {
                next_seq: first,
                pending: BTreeMap::new(),
                ack_wait: ack_wait.max(Duration::from_millis(1)),
            });
    }

    fn append(&self, events: &[Event]) {
        let next = {
            let mut s = lock(&self.state);
            for event in events {
                if s.ids.contains_key(&event.event.id) {
                    continue;
                }
                let seq = s.next_seq();
                s.ids.insert(event.event.id, seq);
                s.messages.push_back(event.clone());
                if s.messages.len() > self.capacity
                    && let Some(old) = s.messages.pop_front()
                {
                    s.ids.remove(&old.event.id);
                    s.first_seq += 1;
                    s.dropped += 1;
                    if s.dropped.is_power_of_two() {
                        tracing::warn!(
                            dropped = s.dropped,
                            capacity = self.capacity,
                            "the in-process event log is full; the oldest unacknowledged events were dropped"
                        );
                    }
                }
            }
            s.next_seq()
        };
        self.appended.send_replace(next);
    }

    /// Takes up to `max` deliverable events for `durable`: expired unacknowledged ones first,
    /// then new ones.
    fn take(&self, durable: &str, max: usize) -> Vec<ReceivedEvent> {
        let mut s = lock(&self.state);
        let now = Instant::now();
        let first = s.first_seq;
        let next = s.next_seq();
        let LogState {
            messages,
            consumers,
            ..
        } = &mut *s;
        let Some(c) = consumers.get_mut(durable) else {
            return Vec::new();
        };
        // Events dropped from a full log can no longer be delivered.
        c.pending.retain(|seq, _| *seq >= first);
        c.next_seq = c.next_seq.max(first);
        let mut out = Vec::new();
        let ack_wait = c.ack_wait;
        for (seq, (due, deliveries)) in &mut c.pending {
            if out.len() >= max {
                break;
            }
            if *due <= now {
                *due = due_after(now, ack_wait);
                *deliveries += 1;
                let index = usize::try_from(*seq - first).unwrap_or(usize::MAX);
                if let Some(event) = messages.get(index) {
                    out.push(ReceivedEvent {
                        event: event.clone(),
                        delivery_count: *deliveries,
                        stream_sequence: *seq,
                    });
                }
            }
        }
        while out.len() < max && c.next_seq < next {
            let seq = c.next_seq;
            let index = usize::try_from(seq - first).unwrap_or(usize::MAX);
            if let Some(event) = messages.get(index) {
                out.push(ReceivedEvent {
                    event: event.clone(),
                    delivery_count: 1,
                    stream_sequence: seq,
                });
            }
            c.pending.insert(seq, (due_after(now, ack_wait), 1));
            c.next_seq += 1;
        }
        out.sort_by_key(|r| r.stream_sequence);
        out
    }

    /// The earliest time an unacknowledged event of `durable` becomes due again.
    fn next_due(&self, durable: &str) -> Option<Instant> {
        let s = lock(&self.state);
        s.consumers
            .get(durable)
            .and_then(|c| c.pending.values().map(|(due, _)| *due).min())
    }

    fn ack(&self, durable: &str, seqs: &[u64]) {
        let mut s = lock(&self.state);
        if let Some(c) = s.consumers.get_mut(durable) {
            for seq in seqs {
                c.pending.remove(seq);
            }
        }
        s.trim_acknowledged();
    }
}

impl EventSink for EventLog {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move {
            self.append(events);
            Ok(0)
        })
    }
}

/// One durable subscriber's view of the log.
struct LogReader {
    log: Arc<EventLog>,
    durable: String,
}

struct LogAck {
    log: Arc<EventLog>,
    durable: String,
    seqs: Vec<u64>,
}

impl BatchAck for LogAck {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move {
            self.log.ack(&self.durable, &self.seqs);
            Ok(())
        })
    }
}

impl EventSource for LogReader {
    fn fetch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<EventBatch, BusError>> {
        Box::pin(async move {
            let deadline = crate::deadline_after(wait);
            let mut appended = self.log.appended.subscribe();
            loop {
                appended.borrow_and_update();
                let events = self.log.take(&self.durable, max);
                if !events.is_empty() {
                    let ack = LogAck {
                        log: self.log.clone(),
                        durable: self.durable.clone(),
                        seqs: events.iter().map(|e| e.stream_sequence).collect(),
                    };
                    return Ok(EventBatch::new(events, Vec::new(), Some(Box::new(ack))));
                }
                if Instant::now() >= deadline {
                    return Ok(EventBatch::new(Vec::new(), Vec::new(), None));
                }
                let wake = self
                    .log
                    .next_due(&self.durable)
                    .map_or(deadline, |due| due.min(deadline));
                tokio::select! {
                    _ = appended.changed() => {}
                    () = tokio::time::sleep_until(wake) => {}
                }
            }
        })
    }
}

// --- key-value ----------------------------------------------------------------------------

/// One in-process bucket. Revisions are per bucket, as on NATS.
#[derive(Debug)]
pub(crate) struct MemoryKv {
    name: String,
    max_age: Duration,
    max_keys: usize,
    state: Mutex<KvState>,
}

#[derive(Debug)]
struct KvState {
    entries: HashMap<String, Slot>,
    revision: u64,
    last_sweep: Instant,
}

#[derive(Debug)]
struct Slot {
    value: Vec<u8>,
    revision: u64,
    expires: Option<Instant>,
}

impl Slot {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

/// How often writes sweep expired entries out of a bucket.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl MemoryKv {
    fn new(name: &str, max_age: Duration, max_keys: usize) -> MemoryKv {
        MemoryKv {
            name: name.to_owned(),
            max_age,
            max_keys: max_keys.max(1),
            state: Mutex::new(KvState {
                entries: HashMap::new(),
                revision: 0,
                last_sweep: Instant::now(),
            }),
        }
    }

    /// The entry's lifetime: its own TTL, or else the bucket's maximum age.
    fn expiry(&self, ttl: Option<Duration>, now: Instant) -> Option<Instant> {
        ttl.or((!self.max_age.is_zero()).then_some(self.max_age))
            .and_then(|t| now.checked_add(t))
    }

    /// Writes `value` if `allowed` says so given the live entry (or its absence).
    fn write(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        allowed: impl FnOnce(Option<&Slot>) -> Result<(), BusError>,
    ) -> Result<u64, BusError> {
        check_key(key)?;
        check_ttl(&self.name, ttl, self.max_age)?;
        let now = Instant::now();
        let mut s = lock(&self.state);
        if now.duration_since(s.last_sweep) >= SWEEP_EVERY || s.entries.len() >= self.max_keys {
            s.entries.retain(|_, slot| slot.live(now));
            s.last_sweep = now;
        }
        let current = s.entries.get(key).filter(|slot| slot.live(now));
        allowed(current)?;
        if current.is_none() && !s.entries.contains_key(key) && s.entries.len() >= self.max_keys {
            return Err(BusError::Full {
                bucket: self.name.clone(),
                limit: self.max_keys,
            });
        }
        s.revision += 1;
        let revision = s.revision;
        s.entries.insert(
            key.to_owned(),
            Slot {
                value: value.to_vec(),
                revision,
                expires: self.expiry(ttl, now),
            },
        );
        Ok(revision)
    }

    /// Number of entries held, expired or not (for tests of sweeping).
    #[cfg(test)]
    fn held(&self) -> usize {
        lock(&self.state).entries.len()
    }
}

impl KvStore for MemoryKv {
    fn bucket(&self) -> &str {
        &self.name
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KvEntry>, BusError>> {
        Box::pin(async move {
            check_key(key)?;
            let now = Instant::now();
            let s = lock(&self.state);
            Ok(s.entries
                .get(key)
                .filter(|slot| slot.live(now))
                .map(|slot| KvEntry {
                    value: slot.value.clone(),
                    revision: slot.revision,
                    expires_at: slot
                        .expires
                        .map(|at| SystemTime::now() + at.saturating_duration_since(now)),
                }))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move { self.write(key, value, ttl, |_| Ok(())) })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move {
            self.write(key, value, ttl, |current| match current {
                None => Ok(()),
                Some(_) => Err(BusError::KeyExists {
                    bucket: self.name.clone(),
                    key: key.to_owned(),
                }),
            })
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: u64,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move {
            self.write(key, value, ttl, |current| match current {
                Some(slot) if slot.revision == expected => Ok(()),
                _ => Err(BusError::RevisionMismatch {
                    bucket: self.name.clone(),
                    key: key.to_owned(),
                    expected,
                }),
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            check_key(key)?;
            let mut s = lock(&self.state);
            if s.entries.remove(key).is_some() {
                s.revision += 1;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_swept_by_later_writes() {
        let kv = MemoryKv::new("sweep", Duration::ZERO, 100);
        for i in 0..10 {
            kv.put(&format!("k{i}"), b"v", Some(Duration::from_millis(10)))
                .await
                .unwrap();
        }
        assert_eq!(kv.held(), 10);
        tokio::time::advance(SWEEP_EVERY + Duration::from_millis(1)).await;
        kv.put("other", b"v", None).await.unwrap();
        assert_eq!(kv.held(), 1);
    }

    #[tokio::test]
    async fn a_full_bucket_refuses_new_keys_but_accepts_updates() {
        let kv = MemoryKv::new("small", Duration::ZERO, 2);
        kv.put("a", b"1", None).await.unwrap();
        kv.put("b", b"1", None).await.unwrap();
        assert!(matches!(
            kv.put("c", b"1", None).await,
            Err(BusError::Full { limit: 2, .. })
        ));
        kv.put("a", b"2", None).await.unwrap();
    }

    #[tokio::test]
    async fn a_full_event_log_drops_the_oldest() {
        let log = EventLog::new(3);
        log.register("c", Duration::from_secs(30));
        let events: Vec<Event> = (0..5)
            .map(|i| Event::new(haetae_core::Component::Gateway, format!("e{i}")))
            .collect();
        log.append(&events);
        let got = log.take("c", 10);
        let actions: Vec<&str> = got.iter().map(|r| r.event.event.action.as_str()).collect();
        assert_eq!(actions, ["e2", "e3", "e4"]);
        assert_eq!(lock(&log.state).dropped, 2);
    }
}
