//! Notifiers: where alerts (and, for SIEM forwarders, events) go.
//!
//! - `webhook`: an HTTP(S) POST of the alert as JSON, signed with HMAC-SHA256 over
//!   `<timestamp>.<body>` in `X-Haetae-Signature: sha256=<hex>` with the time in
//!   `X-Haetae-Timestamp` (a receiver rejects old timestamps against replay).
//! - `syslog`: RFC 5424 (or CEF, or ECS JSON lines) over TCP (octet-counted frames,
//!   RFC 6587), TLS (RFC 5425) or UDP (RFC 5426, one message per datagram).
//! - `splunk-hec`: Splunk's HTTP Event Collector with `Authorization: Splunk <token>`.
//!
//! Each notifier has one worker with a bounded queue: the ingest path only `try_send`s, so
//! a slow or dead receiver never slows ingest; when the queue is full the newest items are
//! dropped and counted. A batch that fails is retried with exponential backoff (0.5 s
//! doubling to 30 s) up to [`MAX_ATTEMPTS`] times, then counted as failed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use haetae_core::{Event, Severity};
use hmac::digest::{KeyInit, Mac};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use super::{Alert, Invalid, format, invalid, is_id};

/// Items waiting per notifier; more are dropped (and counted).
pub const QUEUE: usize = 10_000;
/// Items sent in one batch (one write, or one HEC request).
pub const MAX_BATCH: usize = 500;
/// Tries per batch before it is counted as failed.
pub const MAX_ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(10);
/// UDP messages are cut to this many bytes (RFC 5426 asks receivers for at least 2048;
/// most take 8 KiB).
pub const MAX_UDP: usize = 8192;

/// The header with the signature, `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-haetae-signature";
/// The header with the signing time, seconds since the epoch.
pub const TIMESTAMP_HEADER: &str = "x-haetae-timestamp";

/// What kind of receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifierKind {
    /// HTTP(S) POST of each alert, HMAC-signed.
    Webhook,
    /// A syslog receiver (or any TCP/UDP line collector for ECS JSON).
    Syslog,
    /// Splunk HTTP Event Collector.
    SplunkHec,
}

/// Syslog transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP, octet-counted frames.
    #[default]
    Tcp,
    /// TLS over TCP.
    Tls,
    /// UDP datagrams.
    Udp,
}

/// Syslog payload format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// RFC 5424 with structured data.
    #[default]
    Rfc5424,
    /// ArcSight CEF in an RFC 5424 header.
    Cef,
    /// ECS JSON, one object per line (no syslog header).
    Ecs,
}

/// A notifier's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifier {
    /// Stable id, 1-64 of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// What it is.
    #[serde(default)]
    pub name: String,
    /// Disabled notifiers get nothing.
    #[serde(default = "super::yes")]
    pub enabled: bool,
    /// `webhook`, `syslog` or `splunk-hec`.
    #[schema(value_type = String)]
    pub kind: NotifierKind,
    /// `http(s)://...` for `webhook` and `splunk-hec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `host:port` for `syslog`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `tcp` (default), `tls` or `udp`, for `syslog`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub transport: Option<Transport>,
    /// `rfc5424` (default), `cef` or `ecs`, for `syslog`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub format: Option<Format>,
    /// The webhook's HMAC key or the HEC token. Never returned by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// An extra trusted CA certificate (PEM) for TLS/HTTPS receivers with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Also forward events (not only alerts); SIEM forwarders only.
    #[serde(default)]
    pub forward_events: bool,
    /// Forward only events of at least this severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub min_severity: Option<Severity>,
}

fn http_url(n: &Notifier) -> Result<hyper::Uri, Invalid> {
    let Some(url) = n.url.as_deref() else {
        return Err(invalid("url", "required for this kind"));
    };
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| invalid("url", format!("not a URL: {e}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(invalid(
            "url",
            "must be http://host/... or https://host/...",
        )),
    }
}

fn parse_ca(pem: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, Invalid> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("ca_pem", format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("ca_pem", "no certificate in it"));
    }
    Ok(certs)
}

impl Notifier {
    /// Checks the fields this kind needs.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !is_id(&self.id) {
            return Err(invalid("id", "1-64 of A-Z a-z 0-9 . _ -"));
        }
        if self.name.len() > 200 {
            return Err(invalid("name", "at most 200 bytes"));
        }
        if let Some(pem) = &self.ca_pem {
            parse_ca(pem)?;
        }
        if self.secret.as_ref().is_some_and(|s| s.len() > 512) {
            return Err(invalid("secret", "at most 512 bytes"));
        }
        match self.kind {
            NotifierKind::Webhook => {
                http_url(self)?;
                if self.forward_events {
                    return Err(invalid(
                        "forward_events",
                        "webhooks get alerts only; use a syslog or splunk-hec notifier for events",
                    ));
                }
                if self.secret.as_ref().is_some_and(|s| s.len() < 16) {
                    return Err(invalid("secret", "at least 16 bytes"));
                }
            }
            NotifierKind::SplunkHec => {
                http_url(self)?;
                if self.secret.as_ref().is_none_or(String::is_empty) {
                    return Err(invalid("secret", "the HEC token is required"));
                }
            }
            NotifierKind::Syslog => {
                let Some(addr) = self.address.as_deref() else {
                    return Err(invalid("address", "host:port is required for syslog"));
                };
                let (host, port) = addr
                    .rsplit_once(':')
                    .ok_or_else(|| invalid("address", "host:port"))?;
                if host.is_empty() || !matches!(port.parse::<u16>(), Ok(p) if p != 0) {
                    return Err(invalid("address", "host:port with a port 1-65535"));
                }
            }
        }
        if self.kind != NotifierKind::Syslog
            && (self.address.is_some() || self.transport.is_some() || self.format.is_some())
        {
            return Err(invalid(
                "address",
                "address, transport and format are for syslog notifiers",
            ));
        }
        Ok(())
    }
}

/// Delivery counters of one notifier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct NotifierStats {
    /// Items delivered.
    pub sent: u64,
    /// Items given up on after every retry.
    pub failed: u64,
    /// Items dropped because the queue was full.
    pub dropped: u64,
    /// Items waiting.
    pub queued: u64,
    /// The last delivery error (no secrets in it).
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Stats {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

#[derive(Debug, Clone)]
enum Item {
    Alert(Arc<Alert>),
    Event(Arc<Event>),
}

#[derive(Debug)]
struct Worker {
    notifier: Notifier,
    tx: mpsc::Sender<Item>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

/// Sends alerts and events to the configured notifiers.
#[derive(Debug, Default)]
pub struct Dispatcher {
    workers: Mutex<HashMap<String, Worker>>,
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if let Ok(w) = self.workers.get_mut() {
            for (_, worker) in w.drain() {
                worker.task.abort();
            }
        }
    }
}

impl Dispatcher {
    /// A dispatcher with no notifier.
    #[must_use]
    pub fn new() -> Dispatcher {
        Dispatcher::default()
    }

    /// Starts, restarts (when changed) and stops workers to match `notifiers`. Must run
    /// inside a Tokio runtime.
    pub fn configure(&self, notifiers: Vec<Notifier>) {
        let mut workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let wanted: HashMap<String, Notifier> = notifiers
            .into_iter()
            .filter(|n| n.enabled)
            .map(|n| (n.id.clone(), n))
            .collect();
        workers.retain(|id, w| {
            let keep = wanted.get(id) == Some(&w.notifier);
            if !keep {
                w.task.abort();
            }
            keep
        });
        for (id, n) in wanted {
            if workers.contains_key(&id) {
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let stats = Arc::new(Stats::default());
            let task = tokio::spawn(run(n.clone(), rx, Arc::clone(&stats)));
            workers.insert(
                id,
                Worker {
                    notifier: n,
                    tx,
                    stats,
                    task,
                },
            );
        }
    }

    fn offer(w: &Worker, item: Item) {
        if w.tx.try_send(item).is_err() {
            w.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues an alert for the notifiers in `ids` and for every event forwarder.
    pub fn alert(&self, alert: &Alert, ids: &[String]) {
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let item = Item::Alert(Arc::new(alert.clone()));
        for (id, w) in workers.iter() {
            if ids.contains(id) || w.notifier.forward_events {
                Dispatcher::offer(w, item.clone());
            }
        }
    }

    /// Queues events for every notifier that forwards events (never blocks).
    pub fn events(&self, events: &[Event]) {
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for w in workers.values().filter(|w| w.notifier.forward_events) {
            let min = w.notifier.min_severity.unwrap_or(Severity::Info);
            for e in events.iter().filter(|e| e.event.severity >= min) {
                Dispatcher::offer(w, Item::Event(Arc::new(e.clone())));
            }
        }
    }

    /// Counters per running notifier id.
    #[must_use]
    pub fn stats(&self) -> BTreeMap<String, NotifierStats> {
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        workers
            .iter()
            .map(|(id, w)| {
                (
                    id.clone(),
                    NotifierStats {
                        sent: w.stats.sent.load(Ordering::Relaxed),
                        failed: w.stats.failed.load(Ordering::Relaxed),
                        dropped: w.stats.dropped.load(Ordering::Relaxed),
                        queued: (QUEUE - w.tx.capacity()) as u64,
                        last_error: w
                            .stats
                            .last_error
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .clone(),
                    },
                )
            })
            .collect()
    }
}

async fn run(n: Notifier, mut rx: mpsc::Receiver<Item>, stats: Arc<Stats>) {
    let mut sink = match Sink::new(&n) {
        Ok(s) => s,
        Err(e) => {
            *stats
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            return;
        }
    };
    let mut batch: Vec<Item> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(i) => batch.push(i),
                Err(_) => break,
            }
        }
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 0;
        while !batch.is_empty() {
            let (delivered, result) = sink.send(&batch).await;
            stats.sent.fetch_add(delivered as u64, Ordering::Relaxed);
            batch.drain(..delivered.min(batch.len()));
            match result {
                Ok(()) => batch.clear(),
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(notifier = %n.id, attempt, error = %e, "notification failed");
                    *stats
                        .last_error
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                    if attempt >= MAX_ATTEMPTS {
                        stats
                            .failed
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        batch.clear();
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

trait Stream: tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

enum Sink {
    Http {
        client: Box<HttpClient>,
        url: hyper::Uri,
        kind: NotifierKind,
        secret: Option<String>,
    },
    Stream {
        address: String,
        tls: Option<tokio_rustls::TlsConnector>,
        format: Format,
        conn: Option<Box<dyn Stream>>,
    },
    Udp {
        address: String,
        format: Format,
        socket: Option<tokio::net::UdpSocket>,
    },
}

fn tls_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    if let Some(pem) = ca_pem {
        for c in parse_ca(pem).map_err(|e| e.message)? {
            roots
                .add(c)
                .map_err(|e| format!("ca_pem: unusable certificate: {e}"))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Sink {
    fn new(n: &Notifier) -> Result<Sink, String> {
        match n.kind {
            NotifierKind::Webhook | NotifierKind::SplunkHec => {
                let url = http_url(n).map_err(|e| e.message)?;
                let tls = tls_config(n.ca_pem.as_deref())?;
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(TIMEOUT));
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((*tls).clone())
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Ok(Sink::Http {
                    client: Box::new(Client::builder(TokioExecutor::new()).build(connector)),
                    url,
                    kind: n.kind,
                    secret: n.secret.clone(),
                })
            }
            NotifierKind::Syslog => {
                let address = n.address.clone().unwrap_or_default();
                let format = n.format.unwrap_or_default();
                match n.transport.unwrap_or_default() {
                    Transport::Udp => Ok(Sink::Udp {
                        address,
                        format,
                        socket: None,
                    }),
                    t => Ok(Sink::Stream {
                        address,
                        tls: if t == Transport::Tls {
                            Some(tokio_rustls::TlsConnector::from(tls_config(
                                n.ca_pem.as_deref(),
                            )?))
                        } else {
                            None
                        },
                        format,
                        conn: None,
                    }),
                }
            }
        }
    }

    /// Sends items in order; returns how many were delivered and whether all were.
    async fn send(&mut self, items: &[Item]) -> (usize, Result<(), String>) {
        match self {
            Sink::Http {
                client,
                url,
                kind,
                secret,
            } => match kind {
                NotifierKind::SplunkHec => {
                    let body: String = items
                        .iter()
                        .map(|i| format::splunk_hec(&as_event(i)))
                        .collect::<Vec<_>>()
                        .join("\n");
                    let token = secret.as_deref().unwrap_or_default();
                    match post(
                        client,
                        url,
                        body,
                        &[("authorization", format!("Splunk {token}"))],
                    )
                    .await
                    {
                        Ok(()) => (items.len(), Ok(())),
                        Err(e) => (0, Err(e)),
                    }
                }
                _ => {
                    for (done, item) in items.iter().enumerate() {
                        let Item::Alert(alert) = item else {
                            continue;
                        };
                        let body =
                            serde_json::json!({ "type": "alert", "alert": &**alert }).to_string();
                        let mut headers = vec![("x-haetae-delivery", alert.id.clone())];
                        if let Some(key) = secret.as_deref() {
                            let ts = time::OffsetDateTime::now_utc().unix_timestamp();
                            headers.push((TIMESTAMP_HEADER, ts.to_string()));
                            headers.push((SIGNATURE_HEADER, sign(key.as_bytes(), ts, &body)));
                        }
                        if let Err(e) = post(client, url, body, &headers).await {
                            return (done, Err(e));
                        }
                    }
                    (items.len(), Ok(()))
                }
            },
            Sink::Stream {
                address,
                tls,
                format,
                conn,
            } => {
                let mut buf = Vec::new();
                for i in items {
                    let line = render(*format, &as_event(i));
                    if *format == Format::Ecs {
                        buf.extend_from_slice(line.as_bytes());
                        buf.push(b'\n');
                    } else {
                        // RFC 6587 octet counting: "<length> <message>".
                        buf.extend_from_slice(format!("{} ", line.len()).as_bytes());
                        buf.extend_from_slice(line.as_bytes());
                    }
                }
                if conn.is_none() {
                    match connect(address, tls.as_ref()).await {
                        Ok(c) => *conn = Some(c),
                        Err(e) => return (0, Err(e)),
                    }
                }
                let Some(c) = conn.as_mut() else {
                    return (0, Err("not connected".into()));
                };
                let written = tokio::time::timeout(TIMEOUT, async {
                    c.write_all(&buf).await?;
                    c.flush().await
                })
                .await;
                match written {
                    Ok(Ok(())) => (items.len(), Ok(())),
                    Ok(Err(e)) => {
                        *conn = None;
                        (0, Err(format!("writing to {address}: {e}")))
                    }
                    Err(_) => {
                        *conn = None;
                        (0, Err(format!("writing to {address}: timed out")))
                    }
                }
            }
            Sink::Udp {
                address,
                format,
                socket,
            } => {
                if socket.is_none() {
                    let bind = if address.starts_with('[') {
                        "[::]:0"
                    } else {
                        "0.0.0.0:0"
                    };
                    let s = match tokio::net::UdpSocket::bind(bind).await {
                        Ok(s) => s,
                        Err(e) => return (0, Err(format!("binding a UDP socket: {e}"))),
                    };
                    if let Err(e) = s.connect(address.as_str()).await {
                        return (0, Err(format!("resolving {address}: {e}")));
                    }
                    *socket = Some(s);
                }
                let Some(s) = socket.as_ref() else {
                    return (0, Err("no socket".into()));
                };
                for (done, i) in items.iter().enumerate() {
                    let line = render(*format, &as_event(i));
                    let mut end = line.len().min(MAX_UDP);
                    while !line.is_char_boundary(end) {
                        end -= 1;
                    }
                    if let Err(e) = s.send(&line.as_bytes()[..end]).await {
                        return (done, Err(format!("sending to {address}: {e}")));
                    }
                }
                (items.len(), Ok(()))
            }
        }
    }
}

fn as_event(i: &Item) -> Event {
    match i {
        Item::Alert(a) => a.to_event(),
        Item::Event(e) => (**e).clone(),
    }
}

fn render(f: Format, e: &Event) -> String {
    let host = "haetae-control";
    match f {
        Format::Rfc5424 => format::rfc5424(e, host),
        Format::Cef => format::cef(e, host),
        Format::Ecs => format::ecs(e),
    }
}

async fn connect(
    address: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<Box<dyn Stream>, String> {
    let tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| format!("connecting to {address}: timed out"))?
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let host = address
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host}: not a TLS server name: {e}"))?;
    let stream = tokio::time::timeout(TIMEOUT, tls.connect(name, tcp))
        .await
        .map_err(|_| format!("TLS handshake with {address}: timed out"))?
        .map_err(|e| format!("TLS handshake with {address}: {e}"))?;
    Ok(Box::new(stream))
}

/// `sha256=<hex of HMAC-SHA256(key, "<ts>.<body>")>`.
#[must_use]
pub fn sign(key: &[u8], ts: i64, body: &str) -> String {
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) else {
        // HMAC takes keys of any length; unreachable, but never panic.
        return String::new();
    };
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(
    client: &HttpClient,
    url: &hyper::Uri,
    body: String,
    headers: &[(&str, String)],
) -> Result<(), String> {
    let mut req = hyper::Request::post(url.clone())
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("haetae-control/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("building the request: {e}"))?;
    // Errors name the host only: a URL's path or query may hold a token.
    let host = url.host().unwrap_or("?").to_owned();
    let resp = tokio::time::timeout(TIMEOUT, client.request(req))
        .await
        .map_err(|_| format!("POST to {host}: timed out"))?
        .map_err(|e| format!("POST to {host}: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST to {host}: HTTP {}", resp.status().as_u16()))
    }
}
