//! The message bus of haetae: how the Control Center, gateways and relays talk.
//!
//! Three things travel on it, each with the guarantees the platform promises:
//! - **policy** ([`Bus::publish_policy`], [`Bus::watch_policy`]): versioned
//!   [`PolicySnapshot`]s; a version is published only if it is greater than the current
//!   one, and a watcher (also one that was offline) first gets the latest, then every newer
//!   one;
//! - **events** ([`Bus::event_emitter`], [`Bus::subscribe_events`]): producers never wait;
//!   delivery is batched and at least once, with a bounded disk spool while the backend is
//!   away, and explicit acknowledgement on the consumer side;
//! - **shared state** ([`Bus::kv`]): key-value buckets with per-key TTL, compare-and-swap
//!   and counters ([`KvStore`]).
//!
//! Two backends with the same semantics: in-process ([`Bus::in_process`], for `haetae up`)
//! and NATS JetStream (for many gateways and Control Centers). `docs/bus.md` describes both.
//!
//! ```
//! use std::time::Duration;
//! use haetae_bus::{Bus, EmitterOptions};
//! use haetae_core::{Component, Event, PolicySnapshot};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let bus = Bus::in_process();
//!
//! // The Control Center publishes; a gateway watches.
//! bus.publish_policy(PolicySnapshot { version: 1, ..Default::default() }).await?;
//! let mut policy = bus.watch_policy().await?;
//! assert_eq!(policy.next().await.unwrap().version, 1);
//!
//! // The gateway reports; the Control Center ingests and acknowledges.
//! let events = bus.event_emitter(EmitterOptions::default())?;
//! assert!(events.emit(Event::new(Component::Gateway, "restrict.block")));
//! let mut ingest = bus.subscribe_events("control-center").await?;
//! let batch = ingest.next_batch(100, Duration::from_secs(1)).await?;
//! assert_eq!(batch.events[0].event.event.action, "restrict.block");
//! batch.ack().await?;
//!
//! // Gateways share state with TTLs.
//! let sessions = bus.kv("single-session", Duration::from_secs(3600)).await?;
//! sessions.create("user-1", b"gw-1", Some(Duration::from_secs(1800))).await?;
//! assert!(sessions.create("user-1", b"gw-2", None).await.unwrap_err().is_conflict());
//! # Ok::<(), haetae_bus::BusError>(())
//! # }).unwrap();
//! ```

mod error;
mod events;
mod kv;
mod memory;
pub mod modules;
mod nats;
mod policy;
mod spool;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use haetae_core::PolicySnapshot;
use haetae_core::config::{BusBackend, BusConfig};

pub use error::BusError;
pub use events::{
    EmitterOptions, EmitterStats, EventBatch, EventEmitter, EventSubscription, ReceivedEvent,
    SubscribeOptions,
};
pub use kv::{BoxFuture, INCREMENT_ATTEMPTS, KvEntry, KvStore};
pub use memory::InProcessOptions;
pub use nats::NatsOptions;
pub use policy::PolicyWatch;

use events::{EventSink, EventSource};
use policy::PolicyCell;

/// A NATS URL (or comma-separated list) fit for logs and messages: passwords and tokens
/// replaced by `***` (`nats://gw:***@10.0.0.1:4222`). Every error of this crate already
/// shows URLs this way.
#[must_use]
pub fn redacted_url(url: &str) -> String {
    nats::redact_url(url)
}

/// `Instant::now() + d`, saturating far in the future instead of overflowing (a duration
/// from configuration may be anything).
pub(crate) fn deadline_after(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// What each backend provides; the [`Bus`] handle adds the checks common to all.
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    fn name(&self) -> &'static str;
    fn publish_policy(&self, snapshot: Arc<PolicySnapshot>) -> BoxFuture<'_, Result<(), BusError>>;
    fn latest_policy(&self) -> BoxFuture<'_, Result<Option<Arc<PolicySnapshot>>, BusError>>;
    fn watch_policy(&self) -> BoxFuture<'_, Result<PolicyCell, BusError>>;
    fn event_sink(&self) -> Arc<dyn EventSink>;
    fn subscribe_events<'a>(
        &'a self,
        durable: &'a str,
        options: &'a SubscribeOptions,
    ) -> BoxFuture<'a, Result<Box<dyn EventSource>, BusError>>;
    fn kv<'a>(
        &'a self,
        bucket: &'a str,
        max_age: Duration,
    ) -> BoxFuture<'a, Result<Arc<dyn KvStore>, BusError>>;
}

/// A handle on the bus. Cheap to clone; every clone talks to the same backend.
#[derive(Clone, Debug)]
pub struct Bus {
    backend: Arc<dyn Backend>,
}

impl Bus {
    /// An in-process bus with default limits: everything stays in this process, so every
    /// part that must talk shares clones of this one handle.
    #[must_use]
    pub fn in_process() -> Bus {
        Bus::in_process_with(InProcessOptions::default())
    }

    /// An in-process bus with the given limits.
    #[must_use]
    pub fn in_process_with(options: InProcessOptions) -> Bus {
        Bus {
            backend: Arc::new(memory::InProcess::new(options)),
        }
    }

    /// A bus on NATS JetStream at `url` (`nats://host:4222`, several separated by commas).
    /// Creates the event stream and the policy bucket if they are missing. Fails if the
    /// server cannot be reached now; once connected, the client reconnects by itself
    /// forever, and emitters spool meanwhile.
    pub async fn connect_nats(url: &str, options: NatsOptions) -> Result<Bus, BusError> {
        Ok(Bus {
            backend: Arc::new(nats::Nats::connect(url, options, true).await?),
        })
    }

    /// A bus on NATS that does not wait for the server: returns at once (failing only on a
    /// malformed URL or option) and connects in the background, for a gateway that must start
    /// and serve during a NATS outage. Until the server answers, emitters spool, policy
    /// watches wait (serve the last good policy meanwhile), and other operations fail with
    /// [`BusError::Unavailable`]; all of them work once it is back.
    pub async fn connect_nats_in_background(
        url: &str,
        options: NatsOptions,
    ) -> Result<Bus, BusError> {
        Ok(Bus {
            backend: Arc::new(nats::Nats::connect(url, options, false).await?),
        })
    }

    /// The bus the configuration names: in-process for `embedded`, NATS with default
    /// options for `nats`. An in-process bus is new on every call: build it once and share
    /// clones.
    pub async fn from_config(config: &BusConfig) -> Result<Bus, BusError> {
        match config.backend {
            BusBackend::Embedded => Ok(Bus::in_process()),
            BusBackend::Nats => Bus::connect_nats(&config.nats_url, NatsOptions::default()).await,
        }
    }

    /// `in-process` or `nats`.
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Publishes a policy if it is valid and its version is greater than the current one
    /// ([`BusError::StaleVersion`] otherwise; version 0 is never published).
    pub async fn publish_policy(&self, snapshot: PolicySnapshot) -> Result<(), BusError> {
        policy::check_publishable(&snapshot)?;
        self.backend.publish_policy(Arc::new(snapshot)).await
    }

    /// The current policy, if one was ever published.
    pub async fn latest_policy(&self) -> Result<Option<Arc<PolicySnapshot>>, BusError> {
        self.backend.latest_policy().await
    }

    /// Watches the policy: the first [`PolicyWatch::next`] gives the current snapshot (as
    /// soon as there is one), later calls each newer version.
    pub async fn watch_policy(&self) -> Result<PolicyWatch, BusError> {
        Ok(PolicyWatch::new(
            self.backend.watch_policy().await?,
            Arc::clone(&self.backend),
        ))
    }

    /// Starts an event emitter (its background task runs on the current Tokio runtime).
    pub fn event_emitter(&self, options: EmitterOptions) -> Result<EventEmitter, BusError> {
        EventEmitter::start(self.backend.event_sink(), options)
    }

    /// Subscribes to the event stream as the durable consumer `durable` (e.g.
    /// `control-center`), with the default acknowledgement wait (30 s).
    pub async fn subscribe_events(&self, durable: &str) -> Result<EventSubscription, BusError> {
        self.subscribe_events_with(durable, &SubscribeOptions::default())
            .await
    }

    /// Subscribes with explicit options.
    pub async fn subscribe_events_with(
        &self,
        durable: &str,
        options: &SubscribeOptions,
    ) -> Result<EventSubscription, BusError> {
        events::check_durable_name(durable)?;
        Ok(EventSubscription::new(
            self.backend.subscribe_events(durable, options).await?,
        ))
    }

    /// The key-value bucket `bucket`, created on first use. `max_age` bounds every entry's
    /// lifetime (zero: unbounded) and is the longest TTL a write may ask for; on NATS it is
    /// fixed when the bucket is created.
    pub async fn kv(&self, bucket: &str, max_age: Duration) -> Result<Arc<dyn KvStore>, BusError> {
        kv::check_bucket_name(bucket)?;
        self.backend.kv(bucket, max_age).await
    }
}
