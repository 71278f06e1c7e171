//! What every request handler shares: the store, the bus, the live feed for the dashboard,
//! and the lock that serialises publishing.

use std::sync::Arc;

use haetae_bus::Bus;
use serde::Serialize;
use tokio::sync::{Mutex, broadcast};

use crate::alerts::Alert;
use crate::alerts::engine::Engine;
use crate::alerts::notify::Dispatcher;
use crate::store::{Store, StoreError};

/// One message on the dashboard's live feed (Server-Sent Events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveEvent {
    /// `event.id`.
    pub id: String,
    /// Microseconds since the epoch.
    pub ts: i64,
    /// `event.action`.
    pub action: String,
    /// `event.outcome`.
    pub outcome: String,
    /// `service.id`.
    pub service: Option<String>,
    /// `user.id`.
    pub user: Option<String>,
    /// `device.id`.
    pub device: Option<String>,
    /// `haetae.filter`.
    pub filter: Option<String>,
    /// Severity name.
    pub severity: String,
}

/// The shared state of the HTTP server.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The bus policies are published on.
    pub bus: Bus,
    /// Newly stored events, for Server-Sent Events.
    pub live: broadcast::Sender<Arc<Vec<LiveEvent>>>,
    /// Publishing reads the latest version and writes the next: one at a time.
    pub publish_lock: Arc<Mutex<()>>,
    /// Whether cookies get the `Secure` attribute (the Center is reached over HTTPS).
    pub secure_cookies: bool,
    /// Alert rules, their state, and the notifiers.
    pub alerts: Arc<Alerting>,
    /// The key agent tickets for the remote-support relay are made with, when a relay that
    /// requires them runs beside this Center (`haetae up`); see `GET /remote/ticket`.
    pub agent_tickets: Option<haetae_core::agent_ticket::TicketKey>,
    /// Remote support: the policy-signing key and the customer scan limiter.
    pub remote: Arc<crate::remote::RemoteState>,
    /// The Proxy-Wasm module store's trusted keys and size cap.
    pub wasm: Arc<crate::wasm::WasmSettings>,
}

/// The alerting part of the state.
#[derive(Debug)]
pub struct Alerting {
    /// The rule engine (never held across an `await`).
    pub engine: std::sync::Mutex<Engine>,
    /// Webhooks and SIEM forwarders.
    pub dispatcher: Dispatcher,
    /// Newly raised alerts, for Server-Sent Events.
    pub live: broadcast::Sender<Arc<Vec<Alert>>>,
}

impl Alerting {
    fn new() -> Alerting {
        Alerting {
            engine: std::sync::Mutex::new(Engine::default()),
            dispatcher: Dispatcher::new(),
            live: broadcast::channel(64).0,
        }
    }

    /// Loads rules and notifiers from the store into the engine and the dispatcher (after
    /// every change, and periodically for changes made by another Center on the same
    /// database).
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let rules = store.alert_rules().await?;
        let notifiers = store.notifiers().await?;
        self.engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .set_rules(rules);
        self.dispatcher.configure(notifiers);
        Ok(())
    }
}

impl AppState {
    /// State over a store and a bus.
    #[must_use]
    pub fn new(store: Store, bus: Bus, secure_cookies: bool) -> AppState {
        AppState {
            store,
            bus,
            live: broadcast::channel(256).0,
            publish_lock: Arc::new(Mutex::new(())),
            secure_cookies,
            alerts: Arc::new(Alerting::new()),
            agent_tickets: None,
            remote: Arc::new(crate::remote::RemoteState::default()),
            wasm: Arc::new(crate::wasm::WasmSettings::default()),
        }
    }
}
