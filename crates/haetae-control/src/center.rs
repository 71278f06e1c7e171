//! The running Control Center: opens the store, creates the first admin, starts event
//! ingest and retention, and serves the API and UI until shut down. Prints nothing; the
//! caller shows the address and the first admin's password.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use haetae_bus::Bus;
use haetae_core::Config;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{self, Role};
use crate::http::{self, AppState};
use crate::store::{Store, StoreError, now_micros};

/// The name of the first admin.
pub const FIRST_ADMIN: &str = "admin";
/// The variable that sets the first admin's password instead of a random one.
pub const ADMIN_PASSWORD_VAR: &str = "HAETAE_ADMIN_PASSWORD";

/// How to run a Control Center.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// Where to listen (port 0 picks a free one).
    pub listen: SocketAddr,
    /// `postgres://...`, or `None` for SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The data folder (the SQLite file lives here).
    pub data_dir: PathBuf,
    /// Events older than this many days are deleted (0 keeps everything).
    pub retention_days: u32,
    /// Set the `Secure` cookie attribute (the Center is reached over HTTPS, e.g. behind a
    /// TLS-terminating proxy).
    pub secure_cookies: bool,
    /// The first admin's password; `None` generates a random one.
    pub admin_password: Option<String>,
    /// PEM certificate chain and private key: serve HTTPS (and mark cookies `Secure`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Connections whose request is `GET /relay` (a WebSocket to the remote-support relay)
    /// go here instead of to the Center, so that `haetae up` serves both on one address.
    /// Plain HTTP only: with `tls` set the Center keeps every connection.
    pub relay_handoff: Option<RelayHandoff>,
    /// The key of the agent tickets the relay beside this Center requires (see
    /// [`haetae_core::agent_ticket`]); the Center issues them at `GET /remote/ticket`.
    pub agent_tickets: Option<haetae_core::agent_ticket::TicketKey>,
    /// The organisation's recording public key (hex): agent consoles record sessions
    /// encrypted to it (`control.recording_key`). `None`: no recording.
    pub recording_key: Option<String>,
    /// The Proxy-Wasm module store: trusted signing keys and the size cap (`[wasm]`).
    pub wasm: haetae_core::WasmDeployConfig,
}

/// Where the Center hands the relay's connections (see [`ControlOptions::relay_handoff`]).
pub type RelayHandoff = tokio::sync::mpsc::Sender<(tokio::net::TcpStream, SocketAddr)>;

/// The request line prefix of a relay connection.
const RELAY_PREFIX: &[u8] = b"GET /relay";

/// Whether a connection whose first bytes are `head` is for the relay: `Some(true)` for
/// `GET /relay` followed by a space, `?` or `/`; `Some(false)` as soon as it cannot be;
/// `None` while `head` is too short to tell.
#[must_use]
pub fn is_relay_request(head: &[u8]) -> Option<bool> {
    let n = head.len().min(RELAY_PREFIX.len());
    if head[..n] != RELAY_PREFIX[..n] {
        return Some(false);
    }
    match head.get(RELAY_PREFIX.len()) {
        None => None,
        Some(b' ' | b'?' | b'/') => Some(true),
        Some(_) => Some(false),
    }
}

impl ControlOptions {
    /// Options from the configuration, with the first admin's password from
    /// `HAETAE_ADMIN_PASSWORD` in `env` when set.
    pub fn from_config(
        config: &Config,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> ControlOptions {
        ControlOptions {
            listen: config.control.listen,
            database_url: config.control.database_url.clone(),
            data_dir: config.data_dir.clone(),
            retention_days: 90,
            secure_cookies: false,
            tls: config
                .control
                .tls_cert
                .clone()
                .zip(config.control.tls_key.clone()),
            relay_handoff: None,
            agent_tickets: None,
            recording_key: config.control.recording_key.clone(),
            wasm: config.wasm.clone(),
            admin_password: env
                .into_iter()
                .find(|(k, _)| k == ADMIN_PASSWORD_VAR)
                .map(|(_, v)| v),
        }
    }
}

/// Why the Control Center could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The first admin's password was refused.
    #[error("{ADMIN_PASSWORD_VAR}: {0}")]
    AdminPassword(auth::PasswordError),
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: {source}. Choose another address with control.listen")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// `control.recording_key` is not a P-256 public key.
    #[error("control.recording_key: {0}")]
    RecordingKey(String),
    /// The certificate or key for HTTPS.
    #[error("control.tls_cert/tls_key {path}: {message}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `[wasm]` setting (a trusted key that is not one).
    #[error("{0}")]
    Wasm(String),
}

/// The most TLS handshakes in progress at once; more wait in the kernel's accept queue.
const MAX_HANDSHAKES: usize = 256;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A rustls acceptor from PEM files (TLS 1.2 and 1.3, ALPN h2 and http/1.1).
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |path: &std::path::Path, message: String| StartError::Tls {
        path: path.to_owned(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| fail(cert, format!("cannot read a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(fail(cert, "no CERTIFICATE block found".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        fail(
            key,
            format!("cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(cert, e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| {
        fail(
            cert,
            format!("the key does not fit the certificate or is unsupported: {e}"),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// Connections for `axum::serve` that take a first step before the Center serves them (a TLS
/// handshake; a look at the request line): TCP accepts in one task, each first step in its
/// own (bounded in number and time), so a slow or silent client never holds up the others.
/// A step that answers `None` keeps the connection from the Center (a failed handshake, a
/// connection handed to the relay).
struct PreparedListener<Io> {
    ready: tokio::sync::mpsc::Receiver<(Io, SocketAddr)>,
    local: SocketAddr,
    acceptor_task: JoinHandle<()>,
}

impl<Io: Send + 'static> PreparedListener<Io> {
    fn new<F, Fut>(tcp: tokio::net::TcpListener, prepare: F) -> std::io::Result<Self>
    where
        F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Io>> + Send + 'static,
    {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let acceptor_task = tokio::spawn(async move {
            loop {
                let Ok(permit) = std::sync::Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "Control Center: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let step = prepare(stream, peer);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Some(io) = step.await {
                        let _ = tx.send((io, peer)).await;
                    }
                });
            }
        });
        Ok(PreparedListener {
            ready,
            local,
            acceptor_task,
        })
    }
}

/// HTTPS: each connection's TLS handshake, within [`HANDSHAKE_TIMEOUT`].
fn tls_listener(
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) -> std::io::Result<PreparedListener<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>> {
    PreparedListener::new(tcp, move |stream, peer| {
        let acceptor = acceptor.clone();
        async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Some(tls),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    None
                }
            }
        }
    })
}

/// Plain HTTP, except connections whose first request is for the relay (`GET /relay`),
/// which go to the relay's channel. The first bytes are peeked, not consumed; a connection
/// that says nothing within [`HANDSHAKE_TIMEOUT`] goes to the Center, whose own header
/// timeout then applies.
fn demux_listener(
    tcp: tokio::net::TcpListener,
    relay: RelayHandoff,
) -> std::io::Result<PreparedListener<tokio::net::TcpStream>> {
    PreparedListener::new(tcp, move |stream, peer| {
        let relay = relay.clone();
        async move {
            let for_relay = tokio::time::timeout(HANDSHAKE_TIMEOUT, peek_relay(&stream))
                .await
                .unwrap_or(false);
            if for_relay {
                let _ = relay.send((stream, peer)).await;
                None
            } else {
                Some(stream)
            }
        }
    })
}

/// Peeks at a connection's first bytes until [`is_relay_request`] can tell.
async fn peek_relay(stream: &tokio::net::TcpStream) -> bool {
    let mut head = [0u8; RELAY_PREFIX.len() + 1];
    loop {
        match stream.peek(&mut head).await {
            // Closed, or an error: the Center's server sees it and drops the connection.
            Ok(0) | Err(_) => return false,
            Ok(n) => match is_relay_request(&head[..n]) {
                Some(answer) => return answer,
                // A prefix of the relay's request line: wait for more bytes (peek returns
                // at once while the same bytes are waiting).
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

impl<Io> Drop for PreparedListener<Io> {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl<Io> axum::serve::Listener for PreparedListener<Io>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Io = Io;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task ended (its listener failed for good): serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod relay_prefix_tests {
    use super::is_relay_request;

    #[test]
    fn only_get_relay_goes_to_the_relay() {
        assert_eq!(is_relay_request(b"GET /relay HTTP/1.1\r\n"), Some(true));
        assert_eq!(is_relay_request(b"GET /relay?x=1 "), Some(true));
        assert_eq!(is_relay_request(b"GET /relay/ "), Some(true));
        assert_eq!(is_relay_request(b"GET /relays "), Some(false));
        assert_eq!(is_relay_request(b"GET / HTTP/1.1"), Some(false));
        assert_eq!(is_relay_request(b"POST /relay "), Some(false));
        assert_eq!(is_relay_request(b"\x16\x03\x01"), Some(false));
        assert_eq!(is_relay_request(b"GET /rel"), None);
        assert_eq!(is_relay_request(b"GET /relay"), None);
        assert_eq!(is_relay_request(b""), None);
    }
}

/// The first admin created on this start (only on the very first start of a database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialAdmin {
    /// The user name (`admin`).
    pub username: String,
    /// The password, to be shown once.
    pub password: String,
    /// Whether it was generated (not taken from `HAETAE_ADMIN_PASSWORD`).
    pub generated: bool,
}

/// The Security Control Center.
#[derive(Debug)]
pub struct ControlCenter;

/// A running Control Center.
#[derive(Debug)]
pub struct ControlHandle {
    addr: SocketAddr,
    initial_admin: Option<InitialAdmin>,
    store: Store,
    state: AppState,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Creates the first admin when there are no users at all.
pub async fn ensure_first_admin(
    store: &Store,
    password: Option<String>,
) -> Result<Option<InitialAdmin>, StartError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(auth::random_password);
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(|e| StartError::AdminPassword(auth::PasswordError::Hash(e.to_string())))?
        .map_err(StartError::AdminPassword)?;
    if store
        .create_user(FIRST_ADMIN, &hash, Role::Admin, now_micros())
        .await?
        .is_none()
    {
        // Another Control Center on the same database created it first.
        return Ok(None);
    }
    store
        .append_audit(
            "system",
            "user.create",
            FIRST_ADMIN,
            &json!({ "role": "admin", "first_start": true }),
        )
        .await?;
    Ok(Some(InitialAdmin {
        username: FIRST_ADMIN.into(),
        password,
        generated,
    }))
}

impl ControlCenter {
    /// Opens the store, creates the first admin if the database has no user, binds
    /// `options.listen`, and starts serving, ingesting events from `bus` and applying
    /// retention, all on the current Tokio runtime. Returns once the listener is bound.
    pub async fn start(options: ControlOptions, bus: Bus) -> Result<ControlHandle, StartError> {
        let recording_key = match options.recording_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(k) => Some(
                crate::recording::RecordingPublicKey::from_hex(k)
                    .map_err(|e| StartError::RecordingKey(e.to_string()))?,
            ),
        };
        let store = Store::open(options.database_url.as_deref(), &options.data_dir).await?;
        let initial_admin = ensure_first_admin(&store, options.admin_password.clone()).await?;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: options.listen,
            source,
        })?;
        let tls = match &options.tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        // Over HTTPS the session cookie is `Secure` whatever the flag says.
        let mut state = AppState::new(
            store.clone(),
            bus.clone(),
            options.secure_cookies || tls.is_some(),
        );
        state.agent_tickets = options.agent_tickets.clone();
        state.remote = std::sync::Arc::new(crate::remote::RemoteState::with_recording_key(
            recording_key,
        ));
        state.wasm = std::sync::Arc::new(
            crate::wasm::WasmSettings::from_config(&options.wasm).map_err(StartError::Wasm)?,
        );
        let (stop, stop_rx) = watch::channel(false);

        // With the peer address (agents' login allowlists, the customer scan limit).
        let app = http::router(state.clone());
        let mut server_stop = stop_rx.clone();
        let relay_handoff = options.relay_handoff.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.wait_for(|s| *s).await;
            };
            let result = match tls {
                Some(acceptor) => match tls_listener(listener, acceptor) {
                    Ok(tls_listener) => {
                        // `tap_io` (a no-op) gives axum's connection-info support for any
                        // listener whose address is a `SocketAddr`.
                        axum::serve(
                            axum::serve::ListenerExt::tap_io(tls_listener, |_| {}),
                            app.into_make_service_with_connect_info::<SocketAddr>(),
                        )
                        .with_graceful_shutdown(shutdown)
                        .await
                    }
                    Err(e) => Err(e),
                },
                None => match relay_handoff {
                    Some(relay) => match demux_listener(listener, relay) {
                        Ok(demux) => {
                            axum::serve(
                                axum::serve::ListenerExt::tap_io(demux, |_| {}),
                                app.into_make_service_with_connect_info::<SocketAddr>(),
                            )
                            .with_graceful_shutdown(shutdown)
                            .await
                        }
                        Err(e) => Err(e),
                    },
                    None => {
                        axum::serve(
                            listener,
                            app.into_make_service_with_connect_info::<SocketAddr>(),
                        )
                        .with_graceful_shutdown(shutdown)
                        .await
                    }
                },
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "the Control Center's HTTP server stopped");
            }
        });
        state.alerts.reload(&store).await?;
        let ingest = tokio::spawn(crate::ingest::run(state.clone(), bus, stop_rx.clone()));
        let alerting = tokio::spawn(crate::ingest::alert_loop(state.clone(), stop_rx.clone()));
        let retention = tokio::spawn(retention_loop(
            store.clone(),
            options.retention_days,
            stop_rx,
        ));
        Ok(ControlHandle {
            addr,
            initial_admin,
            store,
            state,
            stop,
            tasks: vec![server, ingest, alerting, retention],
        })
    }
}

async fn retention_loop(store: Store, days: u32, mut stop: watch::Receiver<bool>) {
    loop {
        if days > 0 {
            let cutoff = time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
            match store.delete_events_before(cutoff).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, days, "event retention"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "event retention failed; will retry in an hour");
                }
            }
        }
        let _ = store.purge_sessions(now_micros()).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

impl ControlHandle {
    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first admin, when this start created one (show the password once).
    #[must_use]
    pub fn initial_admin(&self) -> Option<&InitialAdmin> {
        self.initial_admin.as_ref()
    }

    /// The store (for tools and tests).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The shared state of the HTTP server (for the demo installer and tests).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops serving (finishing requests in flight), stops ingest and closes the database.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        self.store.close().await;
    }
}
