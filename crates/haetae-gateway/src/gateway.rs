//! The [`Gateway`]: owns the routing table (swapped whole when a policy is applied), the
//! upstream client, metrics and the event sink; [`Gateway::start`] binds the client
//! listener (plain or TLS, HTTP/1.1 and HTTP/2) and the admin listener (`/health`,
//! `/metrics`), and [`RunningGateway::shutdown`] stops accepting and lets in-flight
//! requests finish within the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use haetae_core::config::GatewayConfig;
use haetae_core::{
    Component, Event, EventCategory, EventKind, Outcome, PolicySnapshot, Severity, ValidationErrors,
};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bus::EventSink;
use crate::filter::{FilterServices, SystemClock};
use crate::filters::FilterRegistry;
use crate::h1::serve as h1;
use crate::isolation::BreakerSettings;
use crate::metrics::GatewayMetrics;
use crate::pool::{PoolSettings, Pools};
use crate::proxy::{self, ConnInfo, ProxyBody, ProxySettings, ProxyState};
use crate::request::TlsInfo;
use crate::routing::{RoutingTable, Upstream};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A `[gateway]` setting is unusable.
    #[error("gateway.{key}: {message}")]
    Setting {
        /// The key under `[gateway]`.
        key: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: {path}: {message}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A filter's state in the health report and the heartbeat.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FilterState {
    /// The instance id.
    pub id: String,
    /// The kind.
    pub kind: String,
    /// `closed`, `open` or `half-open`.
    pub breaker: &'static str,
    /// Phase calls so far.
    pub calls: u64,
    /// Failures so far (panics, errors, timeouts).
    pub failures: u64,
}

/// What `/health` reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Health {
    /// `ok`, or `degraded` when a breaker is open.
    pub status: &'static str,
    /// The running policy's version.
    pub policy_version: u64,
    /// Services routed.
    pub services: usize,
    /// Every filter instance.
    pub filters: Vec<FilterState>,
}

/// The security filter engine.
pub struct Gateway {
    state: Arc<ProxyState>,
    registry: FilterRegistry,
    config: GatewayConfig,
    default_upstream: Option<Upstream>,
    apply: Mutex<()>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listen", &self.config.listen)
            .field("policy_version", &self.policy_version())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway with an empty policy (every request gets the default answer) that sends
    /// events to `events` and builds filters from `registry`.
    pub fn new(
        config: &GatewayConfig,
        events: Arc<dyn EventSink>,
        registry: FilterRegistry,
    ) -> Result<Gateway, GatewayError> {
        Gateway::with_shared_state(config, events, None, registry)
    }

    /// As [`Gateway::new`], with shared key-value state for the filters that keep state
    /// across requests and gateways.
    pub fn with_shared_state(
        config: &GatewayConfig,
        events: Arc<dyn EventSink>,
        kv: Option<Arc<dyn crate::bus::KvStore>>,
        registry: FilterRegistry,
    ) -> Result<Gateway, GatewayError> {
        let default_upstream = match &config.default_upstream {
            Some(url) => Some(
                Upstream::parse(url).map_err(|message| GatewayError::Setting {
                    key: "default_upstream",
                    message: format!("{url:?}: {message}"),
                })?,
            ),
            None => None,
        };
        let default_status =
            StatusCode::from_u16(config.default_status).map_err(|_| GatewayError::Setting {
                key: "default_status",
                message: format!("{} is not an HTTP status", config.default_status),
            })?;
        let mut trusted_proxies = Vec::new();
        for entry in &config.trusted_proxies {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| GatewayError::Setting {
                    key: "trusted_proxies",
                    message: format!("{entry:?} is not an IP address or CIDR range"),
                })?;
            trusted_proxies.push(net);
        }
        let metrics = Arc::new(GatewayMetrics::new(BreakerSettings {
            failures: config.breaker_failures.max(1),
            window: Duration::from_millis(config.breaker_window_ms),
            cooldown: Duration::from_millis(config.breaker_cooldown_ms),
        }));
        let (client, h2c_client) = upstream_clients(config)?;
        let state = Arc::new(ProxyState {
            table: ArcSwap::from_pointee(RoutingTable::empty(default_upstream.clone())),
            services: FilterServices {
                events,
                kv,
                clock: Arc::new(SystemClock),
                instance: Arc::from(config.instance.as_str()),
            },
            metrics,
            client,
            h2c_client,
            pools: Pools::new(PoolSettings {
                connect_timeout: Duration::from_millis(config.upstream_connect_timeout_ms),
                idle_timeout: Duration::from_millis(config.upstream_idle_timeout_ms),
            }),
            settings: ProxySettings {
                upstream_timeout: Duration::from_millis(config.upstream_timeout_ms),
                default_status,
                trusted_proxies,
            },
        });
        Ok(Gateway {
            state,
            registry,
            config: config.clone(),
            default_upstream,
            apply: Mutex::new(()),
        })
    }

    /// Validates `policy`, builds every chain, and swaps the new routing table in: new
    /// requests use it, in-flight ones finish on the old one. An invalid policy is rejected
    /// whole with every problem, the running one stays, and an event says so.
    pub fn apply_policy(&self, policy: &PolicySnapshot) -> Result<(), ValidationErrors> {
        let _one_at_a_time = self
            .apply
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let metrics = &self.state.metrics;
        match RoutingTable::build(
            policy,
            &self.registry,
            metrics,
            self.config.max_body_buffer,
            self.default_upstream.clone(),
        ) {
            Ok(table) => {
                self.state.table.store(Arc::new(table));
                metrics
                    .policy_version
                    .store(policy.version, Ordering::Relaxed);
                metrics.policy_applied.fetch_add(1, Ordering::Relaxed);
                self.emit(
                    self.event("gateway.policy_applied")
                        .category(EventCategory::Configuration)
                        .outcome(Outcome::Success)
                        .policy_version(policy.version)
                        .message(format!(
                            "policy version {} applied: {} service(s), {} filter(s)",
                            policy.version,
                            policy.services.len(),
                            policy.filters.len()
                        )),
                );
                Ok(())
            }
            Err(errors) => {
                metrics.policy_rejected.fetch_add(1, Ordering::Relaxed);
                self.emit(
                    self.event("gateway.policy_rejected")
                        .category(EventCategory::Configuration)
                        .outcome(Outcome::Failure)
                        .severity(Severity::High)
                        .label("rejected_version", policy.version.to_string())
                        .message(errors.to_string()),
                );
                Err(errors)
            }
        }
    }

    /// The running policy's version.
    #[must_use]
    pub fn policy_version(&self) -> u64 {
        self.state.table.load().version()
    }

    /// The running routing table.
    #[must_use]
    pub fn routing_table(&self) -> Arc<RoutingTable> {
        self.state.table.load_full()
    }

    /// The counters.
    #[must_use]
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.state.metrics
    }

    /// The `/metrics` text: the gateway's counters and, when the event sink has them, the
    /// emitter's delivery counters.
    #[must_use]
    pub fn metrics_text(&self) -> String {
        let mut text = self.state.metrics.render();
        if let Some(stats) = self.state.services.events.stats() {
            crate::metrics::render_emitter(&mut text, &stats);
        }
        text
    }

    /// The settings the gateway was built with.
    #[must_use]
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The health report: policy version and every filter's state.
    #[must_use]
    pub fn health(&self) -> Health {
        let table = self.state.table.load();
        let filters: Vec<FilterState> = self
            .state
            .metrics
            .filters()
            .iter()
            .map(|f| FilterState {
                id: f.id.clone(),
                kind: f.kind.clone(),
                breaker: f.breaker_state().as_str(),
                calls: f.calls.load(Ordering::Relaxed),
                failures: crate::metrics::FailureKind::ALL[..3]
                    .iter()
                    .map(|k| f.failures_of(*k))
                    .sum(),
            })
            .collect();
        Health {
            status: if filters.iter().any(|f| f.breaker != "closed") {
                "degraded"
            } else {
                "ok"
            },
            policy_version: table.version(),
            services: table.routes().len(),
            filters,
        }
    }

    /// The heartbeat event: policy version and every filter's breaker state.
    #[must_use]
    pub fn heartbeat(&self) -> Event {
        let health = self.health();
        let mut e = self
            .event("gateway.heartbeat")
            .kind(EventKind::State)
            .category(EventCategory::Host)
            .policy_version(health.policy_version)
            .label("status", health.status)
            .label("services", health.services.to_string());
        for f in &health.filters {
            e = e.label(format!("filter.{}", f.id), f.breaker);
        }
        e
    }

    fn event(&self, action: &str) -> Event {
        Event::new(Component::Gateway, action).instance(self.config.instance.as_str())
    }

    fn emit(&self, event: Event) {
        if self.state.services.events.emit(event) {
            self.state
                .metrics
                .events_emitted
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.state
                .metrics
                .events_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Binds `listen` and `admin_listen` and serves until [`RunningGateway::shutdown`].
    pub async fn start(self: &Arc<Self>) -> Result<RunningGateway, GatewayError> {
        let tls = match (&self.config.tls_cert, &self.config.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            (None, None) => None,
            _ => {
                return Err(GatewayError::Setting {
                    key: "tls_cert",
                    message: "tls_cert and tls_key must be given together".into(),
                });
            }
        };
        let listener = bind(self.config.listen).await?;
        let admin = bind(self.config.admin_listen).await?;
        let addr = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: self.config.listen,
            source,
        })?;
        let admin_addr = admin.local_addr().map_err(|source| GatewayError::Bind {
            addr: self.config.admin_listen,
            source,
        })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let grace = Duration::from_millis(self.config.shutdown_grace_ms);
        let header_timeout = Duration::from_millis(self.config.client_header_timeout_ms);
        let state = Arc::clone(&self.state);
        let traffic = tokio::spawn(serve_traffic(
            listener,
            tls,
            state,
            shutdown_rx.clone(),
            grace,
            header_timeout,
        ));
        let admin_task = tokio::spawn(serve_admin(admin, Arc::clone(self), shutdown_rx.clone()));
        let heartbeat = tokio::spawn(heartbeat_loop(
            Arc::clone(self),
            Duration::from_millis(self.config.heartbeat_interval_ms.max(100)),
            shutdown_rx.clone(),
        ));
        let reaper = tokio::spawn(prune_idle_connections(
            Arc::clone(&self.state),
            (Duration::from_millis(self.config.upstream_idle_timeout_ms) / 4)
                .clamp(Duration::from_millis(250), Duration::from_secs(5)),
            shutdown_rx,
        ));
        tracing::info!(%addr, %admin_addr, policy_version = self.policy_version(), "gateway listening");
        Ok(RunningGateway {
            addr,
            admin_addr,
            shutdown: shutdown_tx,
            tasks: vec![traffic, admin_task, heartbeat, reaper],
        })
    }
}

/// A started gateway.
#[derive(Debug)]
pub struct RunningGateway {
    /// The client listener's address.
    pub addr: SocketAddr,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningGateway {
    /// A receiver that turns `true` when shutdown begins (for companion tasks).
    #[must_use]
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, and
    /// returns when every listener is closed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

type UpstreamClients = (
    Client<proxy::UpstreamConnector, ProxyBody>,
    Client<HttpConnector, ProxyBody>,
);

/// The pooled upstream clients: one for `http://` (HTTP/1.1) and `https://` (TLS, HTTP/2 or
/// HTTP/1.1 by ALPN), one for `h2c://` (HTTP/2 with prior knowledge; one multiplexed
/// connection per upstream, opened again when it closes).
fn upstream_clients(config: &GatewayConfig) -> Result<UpstreamClients, GatewayError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_millis(
        config.upstream_connect_timeout_ms,
    )));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match &config.upstream_ca {
        Some(path) => builder.with_tls_config(upstream_tls(path, provider)?),
        None => match builder.with_provider_and_native_roots(Arc::clone(&provider)) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(
                    "no system CA certificates ({e}); https upstreams will fail verification (set gateway.upstream_ca)"
                );
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config(provider, rustls::RootCertStore::empty())?)
            }
        },
    };
    let connector = builder
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http.clone());
    let idle = Duration::from_millis(config.upstream_idle_timeout_ms);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(idle)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector);
    let mut h2c = http;
    h2c.enforce_http(true);
    let h2c_client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .pool_idle_timeout(idle)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        // A dead upstream connection is noticed between requests, not by the next request.
        .http2_keep_alive_interval(Some(Duration::from_secs(30)))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        .build(h2c);
    Ok((client, h2c_client))
}

/// The TLS settings for `https://` upstreams verified against the CA certificates in the
/// PEM file `path` (`gateway.upstream_ca`) instead of the system's trusted roots.
fn upstream_tls(
    path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<rustls::ClientConfig, GatewayError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let ca_error = |message: String| GatewayError::Tls {
        path: path.to_path_buf(),
        message: format!("upstream_ca: {message}"),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_error(format!("cannot read the file: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(ca_error("no CERTIFICATE block in the file".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| ca_error(format!("certificate {} is not a usable CA: {e}", i + 1)))?;
    }
    tls_config(provider, roots)
}

fn tls_config(
    provider: Arc<rustls::crypto::CryptoProvider>,
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConfig, GatewayError> {
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Setting {
            key: "upstream_ca",
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Closes pooled upstream connections idle for longer than `upstream_idle_timeout_ms`.
async fn prune_idle_connections(
    state: Arc<ProxyState>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => state.pools.prune(),
            _ = shutdown.changed() => break,
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })
}

/// Reads the certificate chain and key and builds a TLS acceptor offering h2 and
/// http/1.1.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, GatewayError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| GatewayError::Tls {
            path: cert.to_owned(),
            message: format!("cannot read a PEM certificate chain: {e}"),
        })?;
    if certs.is_empty() {
        return Err(GatewayError::Tls {
            path: cert.to_owned(),
            message: "no CERTIFICATE block found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| GatewayError::Tls {
        path: key.to_owned(),
        message: format!("cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| GatewayError::Tls {
        path: cert.to_owned(),
        message: e.to_string(),
    })?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| GatewayError::Tls {
        path: cert.to_owned(),
        message: format!("the key does not fit the certificate or is unsupported: {e}"),
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// What the gateway's own HTTP/1.1 server runs for a connection: the request path, and
/// hyper for the connections it hands over (h2c with prior knowledge, WebSocket upgrades).
struct ConnService {
    state: Arc<ProxyState>,
    conn: Arc<ConnInfo>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// Keeps the graceful shutdown waiting for this connection while it lives.
    watcher: hyper_util::server::graceful::Watcher,
}

impl h1::Service for ConnService {
    fn call(&self, req: Request<ProxyBody>) -> impl Future<Output = Response<ProxyBody>> + Send {
        proxy::handle(&self.state, &self.conn, req)
    }

    async fn hand_over(self, io: h1::Rewind) {
        let ConnService {
            state,
            conn,
            builder,
            watcher,
        } = self;
        let peer = conn.peer;
        let service = hyper_service(state, conn);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        if let Err(e) = watcher.watch(connection).await {
            tracing::debug!(%peer, "connection ended: {e}");
        }
    }
}

/// The request path as a hyper service (HTTP/2 connections and those handed over).
fn hyper_service(
    state: Arc<ProxyState>,
    conn: Arc<ConnInfo>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ProxyBody>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response<ProxyBody>, std::convert::Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    service_fn(move |req: Request<Incoming>| {
        let state = Arc::clone(&state);
        let conn = Arc::clone(&conn);
        async move {
            Ok::<_, std::convert::Infallible>(
                proxy::handle(&state, &conn, req.map(ProxyBody::Streaming)).await,
            )
        }
    })
}

async fn serve_traffic(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<ProxyState>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
    header_timeout: Duration,
) {
    // hyper serves HTTP/2 (TLS with ALPN h2, h2c with prior knowledge) and upgraded
    // connections; the gateway's own server every other HTTP/1.x connection. Both are
    // tracked by the graceful shutdown (an own connection holds a watcher while it lives).
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    tokio::spawn(h1::date_ticker(shutdown.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        let ctx = h1::ServeCtx {
            header_timeout,
            shutdown: shutdown.clone(),
        };
        match &tls {
            None => {
                let conn = Arc::new(ConnInfo::new(peer, None, &state.settings.trusted_proxies));
                let service = ConnService {
                    state,
                    conn,
                    builder,
                    watcher,
                };
                tokio::spawn(h1::serve(h1::ClientIo::Tcp(stream), service, ctx));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let tls_stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let session = tls_stream.get_ref().1;
                    let h2 = session.alpn_protocol() == Some(b"h2");
                    let info = TlsInfo {
                        server_name: session.server_name().map(str::to_owned),
                        protocol: session.protocol_version().map(|v| format!("{v:?}")),
                        alpn: session
                            .alpn_protocol()
                            .map(|a| String::from_utf8_lossy(a).into_owned()),
                        cipher_suite: session
                            .negotiated_cipher_suite()
                            .map(|c| format!("{:?}", c.suite())),
                    };
                    let conn = Arc::new(ConnInfo::new(
                        peer,
                        Some(info),
                        &state.settings.trusted_proxies,
                    ));
                    if h2 {
                        let service = hyper_service(state, conn);
                        let connection = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls_stream), service)
                            .into_owned();
                        if let Err(e) = watcher.watch(connection).await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    } else {
                        let service = ConnService {
                            state,
                            conn,
                            builder,
                            watcher,
                        };
                        h1::serve(h1::ClientIo::Tls(Box::new(tls_stream)), service, ctx).await;
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period of {grace:?} over; closing remaining connections");
    }
}

async fn serve_admin(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let gateway = Arc::clone(&gateway);
        let service = service_fn(move |req: Request<Incoming>| {
            let gateway = Arc::clone(&gateway);
            async move { Ok::<_, std::convert::Infallible>(admin_response(&gateway, req.uri().path())) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}

fn admin_response(gateway: &Gateway, path: &str) -> Response<ProxyBody> {
    let (status, content_type, body) = match path {
        "/health" => {
            let h = gateway.health();
            let body = serde_json::to_vec(&h).unwrap_or_default();
            (StatusCode::OK, "application/json", Bytes::from(body))
        }
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(gateway.metrics_text()),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"not found; try /health or /metrics\n"),
        ),
    };
    let mut r = Response::new(ProxyBody::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

async fn heartbeat_loop(
    gateway: Arc<Gateway>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => gateway.emit(gateway.heartbeat()),
            _ = shutdown.changed() => break,
        }
    }
}
