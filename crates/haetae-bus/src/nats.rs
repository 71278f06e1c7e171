//! The NATS JetStream backend for the distributed shape: the policy in a KV bucket that every
//! gateway watches, events in a stream (one message per event, `Nats-Msg-Id` = `event.id`,
//! so re-sent batches are dropped as duplicates) read by durable pull consumers, and shared
//! state in KV buckets whose values carry their own expiry.
//!
//! Names on the server, for namespace `haetae` (see [`NatsOptions::namespace`]): bucket
//! `haetae_policy` (key `current`), stream `haetae_events` (subject `haetae.events`), and
//! `haetae_kv_<bucket>` for each [`crate::Bus::kv`] bucket.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, consumer, kv, stream};
use futures_util::StreamExt;
use haetae_core::{Event, PolicySnapshot};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::events::{
    BatchAck, EventBatch, EventSink, EventSource, ReceivedEvent, SubscribeOptions,
};
use crate::kv::{BoxFuture, KvEntry, KvStore, check_key, check_ttl, envelope};
use crate::policy::{PolicyCell, PolicySender, offer};
use crate::{Backend, BusError};

/// How to reach NATS and how to lay out haetae's streams and buckets on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsOptions {
    /// Prefix of every stream and bucket name, so several deployments (or test runs) can
    /// share one NATS account: `[A-Za-z0-9_-]`, at most 32 characters.
    pub namespace: String,
    /// The name this client shows in the server's monitoring (e.g. the gateway's name).
    pub client_name: Option<String>,
    /// How long to wait for the first connection.
    pub connect_timeout: Duration,
    /// How long to wait for a JetStream answer (API calls, publish acknowledgements).
    pub request_timeout: Duration,
    /// How long the event stream keeps events (a Control Center may be down this long).
    pub event_max_age: Duration,
    /// The most bytes the event stream keeps; the oldest go first. `-1`: no limit.
    pub event_max_bytes: i64,
    /// How long the stream remembers event ids to drop duplicates.
    pub duplicate_window: Duration,
    /// Copies of each stream in a NATS cluster (1 for a single server, 3 for a cluster).
    pub replicas: usize,
    /// PEM file of the CA certificates that sign the server's certificate. (User and
    /// password, when the server wants them, go in the URL: `nats://user:pass@host:4222`;
    /// they are never shown in messages.)
    pub root_certificates: Option<PathBuf>,
    /// Refuse to talk to the server without TLS.
    pub require_tls: bool,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            namespace: "haetae".into(),
            client_name: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            event_max_age: Duration::from_secs(7 * 24 * 3600),
            event_max_bytes: 8 * 1024 * 1024 * 1024,
            duplicate_window: Duration::from_secs(10 * 60),
            replicas: 1,
            root_certificates: None,
            require_tls: false,
        }
    }
}

/// The key of the one policy entry.
const POLICY_KEY: &str = "current";
/// How often `publish_policy` retries when another publisher wrote in between.
const PUBLISH_ATTEMPTS: u32 = 8;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What haetae needs on the server: the event stream and the policy bucket. Created once
/// JetStream answers (at connect, or on first use when connecting in the background).
#[derive(Debug)]
struct Layout {
    policy: kv::Store,
    events: stream::Stream,
}

/// The connection, shared with emitters' sinks and the policy watcher.
#[derive(Debug)]
struct Shared {
    client: async_nats::Client,
    js: jetstream::Context,
    options: NatsOptions,
    subject: String,
    layout: tokio::sync::OnceCell<Layout>,
}

impl Shared {
    /// The stream and bucket, creating them on first success; an error (NATS unreachable)
    /// is not remembered, so the next call tries again.
    async fn layout(&self) -> Result<&Layout, BusError> {
        if let Some(layout) = self.layout.get() {
            return Ok(layout);
        }
        // While the client is not connected, say so at once instead of spending request
        // timeouts (callers such as the emitter and the policy watcher retry by themselves).
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(BusError::nats(
                "reach JetStream",
                "not connected yet; the client keeps trying in the background",
            ));
        }
        self.layout.get_or_try_init(|| self.create_layout()).await
    }

    async fn create_layout(&self) -> Result<Layout, BusError> {
        let options = &self.options;
        let ns = &options.namespace;
        let stream_name = format!("{ns}_events");
        let events = ensure_stream(
            &self.js,
            stream::Config {
                name: stream_name.clone(),
                description: Some("haetae security events, one message per event".into()),
                subjects: vec![self.subject.clone()],
                retention: stream::RetentionPolicy::Limits,
                discard: stream::DiscardPolicy::Old,
                max_age: options.event_max_age,
                max_bytes: options.event_max_bytes,
                duplicate_window: options.duplicate_window.min(options.event_max_age),
                storage: stream::StorageType::File,
                num_replicas: options.replicas,
                ..stream::Config::default()
            },
            &format!("create the event stream {stream_name}"),
        )
        .await?;
        let policy = open_bucket(
            &self.js,
            &format!("{ns}_policy"),
            Duration::ZERO,
            options.replicas,
            "haetae policy: the current PolicySnapshot",
        )
        .await?;
        Ok(Layout { policy, events })
    }

    async fn current_policy(&self) -> Result<Option<(Arc<PolicySnapshot>, u64)>, BusError> {
        let entry = self
            .layout()
            .await?
            .policy
            .entry(POLICY_KEY)
            .await
            .map_err(|e| BusError::nats("read the current policy", e))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let snapshot = decode_policy(&entry)?;
                Ok(Some((Arc::new(snapshot), entry.revision)))
            }
            _ => Ok(None),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Nats {
    shared: Arc<Shared>,
    /// The watched policy, shared by every `watch_policy`, started on first use.
    policy_cell: Mutex<Option<Arc<PolicySender>>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.watcher).take() {
            task.abort();
        }
    }
}

/// The URL(s) without passwords, for messages and logs: `nats://user:***@host:4222`.
pub(crate) fn redact_url(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            match rest.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split_once(':').map_or("", |(u, _)| u);
                    let sep = if scheme.is_empty() { "" } else { "://" };
                    if user.is_empty() {
                        format!("{scheme}{sep}***@{host}")
                    } else {
                        format!("{scheme}{sep}{user}:***@{host}")
                    }
                }
                None => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn check_namespace(ns: &str) -> Result<(), BusError> {
    let ok = !ns.is_empty()
        && ns.len() <= 32
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidName {
            what: "namespace",
            name: ns.to_owned(),
            rule: "1-32 characters of A-Z, a-z, 0-9, '_' or '-'",
        })
    }
}

/// Reconnect quickly at first, then every 2 s at most, forever: a gateway must come back by
/// itself after a NATS outage.
fn reconnect_delay(attempts: usize) -> Duration {
    let exp = u32::try_from(attempts.min(5)).unwrap_or(5);
    Duration::from_millis(100 * 2u64.pow(exp)).min(Duration::from_secs(2))
}

/// How often stream creation is tried: JetStream answers some creates with a transient
/// error (code 500 "error creating store") when it is busy, or while a cluster elects.
const CREATE_ATTEMPTS: u32 = 4;

/// Gets the stream, creating it if missing, retrying transient failures.
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
    what: &str,
) -> Result<stream::Stream, BusError> {
    let mut attempt = 1;
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(e) if attempt < CREATE_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "cannot {what} yet; retrying");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(BusError::nats(what, e)),
        }
    }
}

/// Opens the KV bucket `name`, creating it if missing. The bucket's stream is created here
/// with the layout every NATS KV client expects (stream `KV_<name>`, subjects
/// `$KV.<name>.>`, rollups allowed, direct get) rather than by `create_key_value`, whose
/// account query does not parse the answer of the nats-server 2.9 that Debian ships.
async fn open_bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
    replicas: usize,
    description: &str,
) -> Result<kv::Store, BusError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    ensure_stream(
        js,
        stream::Config {
            name: format!("KV_{name}"),
            description: Some(description.to_owned()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            ..stream::Config::default()
        },
        &format!("create KV bucket {name}"),
    )
    .await?;
    js.get_key_value(name)
        .await
        .map_err(|e| BusError::nats(format!("open KV bucket {name}"), e))
}

impl Nats {
    /// Connects. With `wait`, fails unless the server answers now and the stream and
    /// bucket exist; without, returns at once and connects in the background.
    pub(crate) async fn connect(
        url: &str,
        options: NatsOptions,
        wait: bool,
    ) -> Result<Nats, BusError> {
        check_namespace(&options.namespace)?;
        let mut connect = async_nats::ConnectOptions::new()
            .connection_timeout(options.connect_timeout)
            .request_timeout(Some(options.request_timeout))
            .max_reconnects(None)
            .reconnect_delay_callback(reconnect_delay)
            .event_callback(|event| async move {
                tracing::info!(%event, "NATS connection");
            });
        if !wait {
            connect = connect.retry_on_initial_connect();
        }
        if let Some(name) = &options.client_name {
            connect = connect.name(name);
        }
        if let Some(path) = &options.root_certificates {
            connect = connect.add_root_certificates(path.clone());
        }
        if options.require_tls {
            connect = connect.require_tls(true);
        }
        let shown = redact_url(url);
        let client = connect
            .connect(url)
            .await
            .map_err(|e| BusError::Unavailable {
                backend: "nats",
                operation: format!("connect to {shown}"),
                message: format!("{e}; check that nats-server runs with JetStream (-js) there"),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(options.request_timeout);
        let subject = format!("{}.events", options.namespace);
        let shared = Arc::new(Shared {
            client,
            js,
            options,
            subject,
            layout: tokio::sync::OnceCell::new(),
        });
        if wait {
            shared.layout().await?;
        }
        Ok(Nats {
            shared,
            policy_cell: Mutex::new(None),
            watcher: Mutex::new(None),
        })
    }
}

fn decode_policy(entry: &kv::Entry) -> Result<PolicySnapshot, BusError> {
    std::str::from_utf8(&entry.value)
        .map_err(|e| e.to_string())
        .and_then(|text| PolicySnapshot::from_json(text).map_err(|e| e.to_string()))
        .map_err(|message| BusError::Decode {
            what: "policy",
            location: format!("{}/{}@{}", entry.bucket, entry.key, entry.revision),
            message,
        })
}

/// Follows the policy entry and offers every version to the cell, re-subscribing after any
/// error (a NATS restart) so watchers resume by themselves. Ends when the bus is dropped.
async fn follow_policy(shared: Arc<Shared>, cell: Weak<PolicySender>) {
    let mut failures = 0usize;
    loop {
        let watch = match shared.layout().await {
            Ok(layout) => layout.policy.watch_with_history(POLICY_KEY).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the policy yet; retrying");
                if cell.strong_count() == 0 {
                    return;
                }
                failures += 1;
                tokio::time::sleep(reconnect_delay(failures)).await;
                continue;
            }
        };
        match watch {
            Ok(mut updates) => {
                while let Some(update) = updates.next().await {
                    let Some(cell) = cell.upgrade() else { return };
                    match update {
                        Ok(entry) if entry.operation == kv::Operation::Put => {
                            failures = 0;
                            match decode_policy(&entry) {
                                Ok(snapshot) => {
                                    offer(&cell, Arc::new(snapshot));
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "ignored an unreadable policy");
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "the policy watch broke; re-subscribing");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch the policy yet; retrying"),
        }
        if cell.strong_count() == 0 {
            return;
        }
        failures += 1;
        tokio::time::sleep(reconnect_delay(failures)).await;
    }
}

impl Backend for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn publish_policy(&self, snapshot: Arc<PolicySnapshot>) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let json = serde_json::to_vec(&*snapshot).map_err(|e| BusError::Decode {
                what: "policy",
                location: format!("version {}", snapshot.version),
                message: e.to_string(),
            })?;
            let policy = &self.shared.layout().await?.policy;
            for _ in 0..PUBLISH_ATTEMPTS {
                let current = match self.shared.current_policy().await {
                    Ok(current) => current,
                    Err(e @ BusError::Decode { .. }) => {
                        tracing::warn!(error = %e, "the stored policy is unreadable; replacing it");
                        policy
                            .put(POLICY_KEY, json.into())
                            .await
                            .map_err(|e| BusError::nats("publish the policy", e))?;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                let written = match current {
                    Some((current, revision)) => {
                        if snapshot.version <= current.version {
                            return Err(BusError::StaleVersion {
                                current: current.version,
                                offered: snapshot.version,
                            });
                        }
                        match policy
                            .update(POLICY_KEY, json.clone().into(), revision)
                            .await
                        {
                            Ok(_) => true,
                            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => false,
                            Err(e) => return Err(BusError::nats("publish the policy", e)),
                        }
                    }
                    None => match policy.create(POLICY_KEY, json.clone().into()).await {
                        Ok(_) => true,
                        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => false,
                        Err(e) => return Err(BusError::nats("publish the policy", e)),
                    },
                };
                if written {
                    return Ok(());
                }
            }
            Err(BusError::nats(
                "publish the policy",
                format!("{PUBLISH_ATTEMPTS} concurrent publishers kept winning; retry"),
            ))
        })
    }

    fn latest_policy(&self) -> BoxFuture<'_, Result<Option<Arc<PolicySnapshot>>, BusError>> {
        Box::pin(async move { Ok(self.shared.current_policy().await?.map(|(s, _)| s)) })
    }

    fn watch_policy(&self) -> BoxFuture<'_, Result<PolicyCell, BusError>> {
        Box::pin(async move {
            let mut slot = lock(&self.policy_cell);
            if let Some(cell) = slot.as_ref() {
                return Ok(cell.subscribe());
            }
            let cell = Arc::new(watch::Sender::new(None));
            let task = tokio::spawn(follow_policy(
                Arc::clone(&self.shared),
                Arc::downgrade(&cell),
            ));
            *lock(&self.watcher) = Some(task);
            let receiver = cell.subscribe();
            *slot = Some(cell);
            Ok(receiver)
        })
    }

    fn event_sink(&self) -> Arc<dyn EventSink> {
        Arc::new(NatsSink {
            shared: Arc::clone(&self.shared),
        })
    }

    fn subscribe_events<'a>(
        &'a self,
        durable: &'a str,
        options: &'a SubscribeOptions,
    ) -> BoxFuture<'a, Result<Box<dyn EventSource>, BusError>> {
        Box::pin(async move {
            let shared = &self.shared;
            let consumer = shared
                .layout()
                .await?
                .events
                .get_or_create_consumer::<consumer::pull::Config>(
                    durable,
                    consumer::pull::Config {
                        durable_name: Some(durable.to_owned()),
                        description: Some("haetae event ingest".into()),
                        deliver_policy: consumer::DeliverPolicy::All,
                        ack_policy: consumer::AckPolicy::Explicit,
                        ack_wait: options.ack_wait,
                        max_deliver: -1,
                        filter_subject: shared.subject.clone(),
                        num_replicas: shared.options.replicas,
                        ..consumer::pull::Config::default()
                    },
                )
                .await
                .map_err(|e| {
                    BusError::nats(format!("create the durable event consumer {durable}"), e)
                })?;
            let source: Box<dyn EventSource> = Box::new(NatsReader {
                consumer,
                client: shared.client.clone(),
                request_timeout: shared.options.request_timeout,
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
            let shared = &self.shared;
            // Not before the server has answered once: the same rule as everything else.
            shared.layout().await?;
            let name = format!("{}_kv_{bucket}", shared.options.namespace);
            let store = open_bucket(
                &shared.js,
                &name,
                max_age,
                shared.options.replicas,
                "haetae shared state (values carry their own expiry)",
            )
            .await?;
            let kv: Arc<dyn KvStore> = Arc::new(NatsKv {
                bucket: bucket.to_owned(),
                store,
                max_age,
            });
            Ok(kv)
        })
    }
}

// --- events -------------------------------------------------------------------------------

struct NatsSink {
    shared: Arc<Shared>,
}

impl EventSink for NatsSink {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move {
            // The server refuses a message above its max_payload; such an event would block
            // the backlog forever, so it is skipped and counted instead.
            let shared = &self.shared;
            // Creates the stream first if the bus connected in the background.
            shared.layout().await?;
            let max_payload = shared.client.server_info().max_payload;
            let mut refused = 0;
            let mut acks = Vec::with_capacity(events.len());
            for event in events {
                let json = event.to_json();
                if max_payload > 0 && json.len() + HEADER_ALLOWANCE > max_payload {
                    tracing::error!(
                        event_id = %event.id(),
                        bytes = json.len(),
                        max_payload,
                        "an event larger than the NATS server accepts was dropped"
                    );
                    refused += 1;
                    continue;
                }
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    event.id().to_string().as_str(),
                );
                let ack = shared
                    .js
                    .publish_with_headers(shared.subject.clone(), headers, json.into())
                    .await
                    .map_err(|e| BusError::nats("publish an event", e))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await
                    .map_err(|e| BusError::nats("confirm an event was stored", e))?;
            }
            Ok(refused)
        })
    }
}

/// Room for the message id header and protocol framing within `max_payload`.
const HEADER_ALLOWANCE: usize = 256;

struct NatsReader {
    consumer: consumer::PullConsumer,
    client: async_nats::Client,
    /// Bounds every exchange, so a fetch or an ack never hangs while NATS is away.
    request_timeout: Duration,
}

struct NatsAck {
    messages: Vec<jetstream::Message>,
    client: async_nats::Client,
    request_timeout: Duration,
}

impl BatchAck for NatsAck {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move {
            let acks = async {
                for m in &self.messages {
                    m.ack()
                        .await
                        .map_err(|e| BusError::nats("acknowledge events", e))?;
                }
                // The acks are plain messages; make sure they left before reporting success.
                self.client
                    .flush()
                    .await
                    .map_err(|e| BusError::nats("acknowledge events", e))
            };
            tokio::time::timeout(self.request_timeout, acks)
                .await
                .unwrap_or_else(|_| {
                    Err(BusError::nats(
                        "acknowledge events",
                        format!(
                            "no answer within {:?}; the batch will come again",
                            self.request_timeout
                        ),
                    ))
                })
        })
    }
}

impl NatsReader {
    /// Reads one pull request's messages into `into`; returns how many arrived.
    async fn drain(
        &self,
        mut batch: consumer::pull::Batch,
        events: &mut Vec<ReceivedEvent>,
        keep: &mut Vec<jetstream::Message>,
        rejected: &mut Vec<BusError>,
    ) -> Result<(), BusError> {
        while let Some(message) = batch.next().await {
            let message = match message {
                Ok(m) => m,
                // What arrived is kept; the rest comes in the next batch.
                Err(e) if !events.is_empty() => {
                    tracing::debug!(error = %e, "event fetch ended early");
                    break;
                }
                Err(e) => return Err(BusError::nats("fetch events", e)),
            };
            let (sequence, delivered) = match message.info() {
                Ok(info) => (
                    info.stream_sequence,
                    u64::try_from(info.delivered).unwrap_or(1),
                ),
                Err(_) => (0, 1),
            };
            let decoded = std::str::from_utf8(&message.payload)
                .map_err(|e| e.to_string())
                .and_then(|text| Event::from_json(text).map_err(|e| e.to_string()));
            match decoded {
                Ok(event) => {
                    events.push(ReceivedEvent {
                        event,
                        delivery_count: delivered,
                        stream_sequence: sequence,
                    });
                    keep.push(message);
                }
                Err(why) => {
                    rejected.push(BusError::Decode {
                        what: "event",
                        location: format!("stream sequence {sequence}"),
                        message: why,
                    });
                    // Never deliverable; tell the server to stop trying.
                    let _ = message.ack_with(jetstream::AckKind::Term).await;
                }
            }
        }
        Ok(())
    }
}

impl EventSource for NatsReader {
    fn fetch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<EventBatch, BusError>> {
        Box::pin(async move {
            let limit = wait.saturating_add(self.request_timeout.saturating_mul(2));
            tokio::time::timeout(limit, self.fetch_within(max, wait))
                .await
                .unwrap_or_else(|_| {
                    Err(BusError::nats(
                        "fetch events",
                        format!("no answer within {limit:?}"),
                    ))
                })
        })
    }
}

impl NatsReader {
    async fn fetch_within(&self, max: usize, wait: Duration) -> Result<EventBatch, BusError> {
        {
            let mut events = Vec::new();
            let mut keep = Vec::new();
            let mut rejected = Vec::new();
            // What is there now, without waiting.
            let now = self
                .consumer
                .fetch()
                .max_messages(max)
                .messages()
                .await
                .map_err(|e| BusError::nats("fetch events", e))?;
            self.drain(now, &mut events, &mut keep, &mut rejected)
                .await?;
            if events.is_empty() && rejected.is_empty() && wait >= Duration::from_millis(10) {
                // Wait for the first, then take what else is there.
                let first = self
                    .consumer
                    .batch()
                    .max_messages(1)
                    .expires(wait)
                    .messages()
                    .await
                    .map_err(|e| BusError::nats("fetch events", e))?;
                self.drain(first, &mut events, &mut keep, &mut rejected)
                    .await?;
                if !events.is_empty() && max > 1 {
                    let more = self
                        .consumer
                        .fetch()
                        .max_messages(max - 1)
                        .messages()
                        .await
                        .map_err(|e| BusError::nats("fetch events", e))?;
                    self.drain(more, &mut events, &mut keep, &mut rejected)
                        .await?;
                }
            }
            let ack: Option<Box<dyn BatchAck>> = (!keep.is_empty()).then(|| {
                Box::new(NatsAck {
                    messages: keep,
                    client: self.client.clone(),
                    request_timeout: self.request_timeout,
                }) as Box<dyn BatchAck>
            });
            Ok(EventBatch::new(events, rejected, ack))
        }
    }
}

// --- key-value ----------------------------------------------------------------------------

/// A KV bucket on NATS. Per-key TTL: the expiry is stored in the value (see
/// [`envelope`]); an expired value is absent to every operation and is replaced by `create`
/// with a compare-and-swap on its revision. The bucket's `max_age` removes every value at
/// most that long after its last write, so expired values do not pile up.
#[derive(Debug)]
struct NatsKv {
    bucket: String,
    store: kv::Store,
    max_age: Duration,
}

/// A live value read from NATS.
struct Live {
    entry: KvEntry,
}

impl NatsKv {
    fn location(&self, key: &str) -> String {
        format!("{}/{key}", self.bucket)
    }

    /// The stored entry: `Ok(None)` when absent or deleted; otherwise its revision and, if
    /// it is live, its value.
    async fn read(&self, key: &str) -> Result<Option<(u64, Option<Live>)>, BusError> {
        check_key(key)?;
        let entry = self
            .store
            .entry(key)
            .await
            .map_err(|e| BusError::nats(format!("read {}", self.location(key)), e))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(None);
        };
        let (value, expires_at) =
            envelope::open(&entry.value).map_err(|message| BusError::Decode {
                what: "kv value",
                location: format!("{}@{}", self.location(key), entry.revision),
                message,
            })?;
        let live = expires_at
            .is_none_or(|at| at > SystemTime::now())
            .then(|| Live {
                entry: KvEntry {
                    value: value.to_vec(),
                    revision: entry.revision,
                    expires_at,
                },
            });
        Ok(Some((entry.revision, live)))
    }

    fn conflict(&self, key: &str, expected: u64) -> BusError {
        BusError::RevisionMismatch {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            expected,
        }
    }

    fn exists(&self, key: &str) -> BusError {
        BusError::KeyExists {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
        }
    }
}

impl KvStore for NatsKv {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KvEntry>, BusError>> {
        Box::pin(async move {
            Ok(self
                .read(key)
                .await?
                .and_then(|(_, live)| live)
                .map(|l| l.entry))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move {
            check_key(key)?;
            check_ttl(&self.bucket, ttl, self.max_age)?;
            let sealed = envelope::seal(value, ttl, SystemTime::now());
            self.store
                .put(key, sealed.into())
                .await
                .map_err(|e| BusError::nats(format!("write {}", self.location(key)), e))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64, BusError>> {
        Box::pin(async move {
            check_key(key)?;
            check_ttl(&self.bucket, ttl, self.max_age)?;
            let sealed = envelope::seal(value, ttl, SystemTime::now());
            match self.store.create(key, sealed.clone().into()).await {
                Ok(revision) => return Ok(revision),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(BusError::nats(format!("create {}", self.location(key)), e)),
            }
            // Present: only an expired value may be replaced, and only if nobody else does.
            match self.read(key).await {
                Ok(Some((revision, None))) => {
                    match self.store.update(key, sealed.into(), revision).await {
                        Ok(revision) => Ok(revision),
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            Err(self.exists(key))
                        }
                        Err(e) => Err(BusError::nats(format!("create {}", self.location(key)), e)),
                    }
                }
                // A value not written by haetae-bus is present: it exists.
                Ok(_) | Err(BusError::Decode { .. }) => Err(self.exists(key)),
                Err(e) => Err(e),
            }
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
            check_key(key)?;
            check_ttl(&self.bucket, ttl, self.max_age)?;
            // An expired value is absent: its old holder cannot renew it.
            match self.read(key).await? {
                Some((revision, Some(_))) if revision == expected => {}
                _ => return Err(self.conflict(key, expected)),
            }
            let sealed = envelope::seal(value, ttl, SystemTime::now());
            match self.store.update(key, sealed.into(), expected).await {
                Ok(revision) => Ok(revision),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    Err(self.conflict(key, expected))
                }
                Err(e) => Err(BusError::nats(format!("update {}", self.location(key)), e)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            check_key(key)?;
            self.store
                .delete(key)
                .await
                .map_err(|e| BusError::nats(format!("delete {}", self.location(key)), e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_hidden_in_urls() {
        assert_eq!(
            redact_url("nats://gw:s3cret@10.0.0.1:4222"),
            "nats://gw:***@10.0.0.1:4222"
        );
        assert_eq!(redact_url("nats://t0ken@h:4222"), "nats://***@h:4222");
        assert_eq!(
            redact_url("nats://a:b@h1:4222,nats://h2:4222"),
            "nats://a:***@h1:4222,nats://h2:4222"
        );
        assert_eq!(redact_url("127.0.0.1:4222"), "127.0.0.1:4222");
    }

    #[test]
    fn reconnect_delays_grow_to_two_seconds_and_stay() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(100));
        assert_eq!(reconnect_delay(3), Duration::from_millis(800));
        assert_eq!(reconnect_delay(1_000_000), Duration::from_secs(2));
    }

    #[test]
    fn namespaces_follow_the_stream_name_rule() {
        assert!(check_namespace("haetae").is_ok());
        for bad in ["", "a.b", "a b", "a>", &"n".repeat(33)] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }
}
