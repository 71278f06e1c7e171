//! The relay: a WebSocket server that pairs an agent and a customer by access code and
//! forwards their frames without reading them.
//!
//! An agent connects and sends [`RelayMessage::AgentOpen`]; the relay issues a code
//! ([`crate::codes`], shared KV) and answers [`RelayMessage::CodeIssued`]. The customer
//! connects and sends [`RelayMessage::CustomerJoin`] with the code; on success both get
//! [`RelayMessage::Paired`] and from then on the relay copies [`RelayMessage::Peer`] bytes
//! from one to the other. It never holds a key: the peer bytes are the key agreement's
//! public values and AES-256-GCM frames.
//!
//! Limits: frame size (WebSocket message limit), frames per second and bytes per second per
//! session and in total (shaping: a sender over its rate is read more slowly), a pairing
//! wait of the code's life, an idle timeout over both directions, a session cap, an agent
//! address allowlist and an optional `Origin` allowlist. Each session leaves one
//! `remote.session` event (who, when, bytes and frames each way, end reason); every code
//! issue, use and failure leaves an event too.
//!
//! TLS is not terminated here: in production the relay sits behind the gateway (which joins
//! WebSocket upgrades byte for byte) or another TLS terminator on port 443.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt as _, StreamExt as _};
use haetae_core::agent_ticket::TicketKey;
use haetae_core::event::{Component, EventCategory, Outcome};
use haetae_core::{Event, Severity};
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::channel::hash_parts;
use crate::codes::{AccessCodes, CodeError, Failure};
use crate::protocol::{EndReason, MAX_RELAY_FRAME, RefuseReason, RelayMessage, Role, SessionId};
use crate::registry::{Registry, RegistryPolicy, ResumeError, ResumeToken};

/// Where relay events go (the bus emitter, a log writer, a test's list).
pub type EventOut = Arc<dyn Fn(Event) + Send + Sync>;

/// The relay's limits and identity.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// This relay's id, stored with the codes it issues.
    pub relay_id: String,
    /// Largest WebSocket message accepted, at most [`MAX_RELAY_FRAME`].
    pub max_frame: usize,
    /// Time for a new connection to finish the WebSocket handshake and say what it wants.
    pub hello_timeout: Duration,
    /// A paired session with no frame in either direction for this long ends.
    pub idle_timeout: Duration,
    /// Bytes per second one session may forward (both directions together).
    pub session_bytes_per_sec: u64,
    /// Bytes per second the whole relay forwards.
    pub total_bytes_per_sec: u64,
    /// Frames per second one connection may send.
    pub frames_per_sec: u64,
    /// Sessions (waiting or paired) at once.
    pub max_sessions: usize,
    /// Open connections at once (including ones that have not said hello yet); more are
    /// closed at accept.
    pub max_connections: usize,
    /// Addresses that may open agent sessions (the agents' networks).
    pub agent_networks: Vec<IpNet>,
    /// `Origin` headers accepted from browsers; empty accepts any (native clients send none).
    pub allowed_origins: Vec<String>,
    /// Frames queued towards one side before the sender is slowed down.
    pub queue_frames: usize,
    /// When set, an agent must open its WebSocket with `?ticket=T`, a ticket the Control
    /// Center issued to a logged-in user ([`haetae_core::agent_ticket`]); the agent's name
    /// is the ticket's, whatever `AgentOpen` claims. `haetae up` sets it; a standalone
    /// relay without a Center relies on `agent_networks` alone.
    pub agent_tickets: Option<TicketKey>,
    /// Resume after a lost connection or relay: how long a session can be resumed after
    /// its relay last refreshed it, how long the first side back waits for the other, how
    /// many resumes a session may have.
    pub resume: RegistryPolicy,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            relay_id: "relay-1".into(),
            max_frame: MAX_RELAY_FRAME,
            hello_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            session_bytes_per_sec: 4 << 20,
            total_bytes_per_sec: 400 << 20,
            frames_per_sec: 1000,
            max_sessions: 2000,
            max_connections: 10_000,
            agent_networks: vec![
                "127.0.0.0/8".parse().unwrap_or_else(|_| IpNet::default()),
                "::1/128".parse().unwrap_or_else(|_| IpNet::default()),
            ],
            allowed_origins: Vec::new(),
            queue_frames: 32,
            agent_tickets: None,
            resume: RegistryPolicy::default(),
        }
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The listening socket.
    #[error("relay: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A limit out of range.
    #[error("relay: {field} {rule}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Its rule.
        rule: &'static str,
    },
}

impl RelayConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`RelayError::Config`].
    pub fn validate(&self) -> Result<(), RelayError> {
        let bad = |field, rule| Err(RelayError::Config { field, rule });
        if self.max_frame < 1024 || self.max_frame > MAX_RELAY_FRAME {
            return bad("max_frame", "must be 1 KiB to the protocol's largest frame");
        }
        if self.idle_timeout < Duration::from_secs(1)
            || self.hello_timeout < Duration::from_millis(100)
        {
            return bad(
                "idle_timeout/hello_timeout",
                "must be at least 1 s / 100 ms",
            );
        }
        if self.session_bytes_per_sec == 0
            || self.total_bytes_per_sec == 0
            || self.frames_per_sec == 0
        {
            return bad("rates", "must be above zero");
        }
        if self.resume.resume_wait < Duration::from_secs(1)
            || self.resume.resume_window < self.resume.resume_wait
            || self.resume.resume_window > crate::codes::BUCKET_MAX_AGE
        {
            return bad(
                "resume_wait/resume_window",
                "must be at least 1 s, the window at least the wait and at most an hour",
            );
        }
        if self.max_sessions == 0 || self.queue_frames == 0 || self.max_connections == 0 {
            return bad(
                "max_sessions/max_connections/queue_frames",
                "must be above zero",
            );
        }
        Ok(())
    }
}

/// A rate limiter that shapes: [`TokenBucket::take`] says how long to wait.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` units per second, bursts of up to one second's worth.
    #[must_use]
    pub fn new(rate: u64) -> Self {
        let rate = rate as f64;
        TokenBucket {
            rate,
            burst: rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    /// Takes `n` units; returns how long the caller must wait to stay within the rate.
    pub fn take(&mut self, n: u64) -> Duration {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((-self.tokens / self.rate).min(60.0))
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One side's half of a pairing: frames to the other side, frames from it.
struct Link {
    to_peer: mpsc::Sender<Vec<u8>>,
    from_peer: mpsc::Receiver<Vec<u8>>,
    record: Arc<SessionRecord>,
    /// The resume token to hand this side before `Paired` (a fresh pairing).
    token: Option<ResumeToken>,
}

/// The history of one paired session; emits its event when the last side lets go.
struct SessionRecord {
    sid: SessionId,
    agent: String,
    agent_ip: IpAddr,
    customer_ip: IpAddr,
    paired_at: SystemTime,
    started: Instant,
    bytes_a2c: AtomicU64,
    bytes_c2a: AtomicU64,
    frames_a2c: AtomicU64,
    frames_c2a: AtomicU64,
    last_activity_ms: AtomicU64,
    end: Mutex<Option<(EndReason, &'static str)>>,
    bucket: Mutex<TokenBucket>,
    shared: Arc<Shared>,
    /// Resumes of this session before this pairing (0: the first pairing).
    resumes: u32,
}

impl SessionRecord {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last_activity_ms.load(Ordering::Relaxed)))
    }
    fn end(&self, reason: EndReason, by: &'static str) {
        lock(&self.end).get_or_insert((reason, by));
    }
    fn end_reason(&self) -> EndReason {
        lock(&self.end).map_or(EndReason::PeerLeft, |e| e.0)
    }
}

impl Drop for SessionRecord {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::Relaxed);
        let (reason, by) = lock(&self.end).unwrap_or((EndReason::PeerLeft, "unknown"));
        let a2c = self.bytes_a2c.load(Ordering::Relaxed);
        let c2a = self.bytes_c2a.load(Ordering::Relaxed);
        let normal = matches!(reason, EndReason::Normal | EndReason::PeerLeft);
        let started = time::OffsetDateTime::from(self.paired_at);
        let event = Event::new(Component::Remote, "remote.session")
            .category(EventCategory::Session)
            .outcome(if normal { Outcome::Success } else { Outcome::Failure })
            .severity(if normal { Severity::Info } else { Severity::Low })
            .duration(self.started.elapsed())
            .user_id(self.agent.clone())
            .source_ip(self.customer_ip)
            .message(format!(
                "support session by {} ended ({reason:?}, by {by}): {a2c} bytes to the customer, {c2a} bytes to the agent",
                self.agent
            ))
            .label("session", session_label(&self.sid))
            .label("agent_ip", self.agent_ip.to_string())
            .label(
                "started",
                started
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            )
            .label("end_reason", format!("{reason:?}"))
            .label("ended_by", by)
            .label("bytes_to_customer", a2c.to_string())
            .label("bytes_to_agent", c2a.to_string())
            .label("frames_to_customer", self.frames_a2c.load(Ordering::Relaxed).to_string())
            .label("frames_to_agent", self.frames_c2a.load(Ordering::Relaxed).to_string())
            .label("resumes", self.resumes.to_string());
        (self.shared.events)(event);
    }
}

/// A session id as logs show it: a hash prefix, never the id itself.
#[must_use]
pub fn session_label(sid: &SessionId) -> String {
    let h = hash_parts(&[b"haetae-session-label", &sid.0]);
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// An agent waiting for its customer: where to hand the pairing, and the agent's address.
type Waiting = (oneshot::Sender<Link>, IpAddr);

/// A side back after a lost connection, waiting for the other: where to hand the pairing,
/// its role and its address.
type ResumeWaiting = (oneshot::Sender<Link>, Role, IpAddr);

/// What `stop` holds: running, stopping (clients told, sessions resumable), killed.
const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const KILLED: u8 = 2;

struct Shared {
    config: RelayConfig,
    codes: AccessCodes,
    registry: Registry,
    waiting: Mutex<HashMap<[u8; 16], Waiting>>,
    resuming: Mutex<HashMap<[u8; 16], ResumeWaiting>>,
    live: AtomicUsize,
    total: Mutex<TokenBucket>,
    events: EventOut,
    stop: watch::Receiver<u8>,
}

impl Shared {
    fn killed(&self) -> bool {
        *self.stop.borrow() == KILLED
    }
}

/// A relay that is serving.
#[derive(Debug)]
pub struct RunningRelay {
    addr: SocketAddr,
    path: &'static str,
    stop: watch::Sender<u8>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningRelay {
    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `ws://` URL clients connect to.
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.addr, self.path)
    }

    /// Stops accepting, tells every connected client (`Bye { Shutdown }`) and returns when
    /// the accept loop has ended.
    pub async fn stop(self) {
        let _ = self.stop.send(STOPPING);
        let _ = self.task.await;
    }

    /// Drops every connection at once, telling no one, as a crashed relay process would
    /// (for failover tests); the sessions' registry records stay, so the clients can
    /// resume elsewhere.
    pub async fn kill(self) {
        let _ = self.stop.send(KILLED);
        let _ = self.task.await;
    }
}

/// Starts a relay on `listen`.
///
/// # Errors
/// [`RelayError::Config`], [`RelayError::Listen`].
pub async fn serve(
    listen: SocketAddr,
    config: RelayConfig,
    codes: AccessCodes,
    events: EventOut,
) -> Result<RunningRelay, RelayError> {
    config.validate()?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| RelayError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| RelayError::Listen {
        addr: listen,
        source,
    })?;
    Ok(start(
        addr,
        "/",
        Incoming::Listener(listener),
        config,
        codes,
        events,
    ))
}

/// Starts a relay on connections another server accepted and handed over (the Control
/// Center's listener passes those whose request is `GET /relay`, so `haetae up` serves the
/// Center and the relay on one address). `addr` is that server's address, for [`RunningRelay::url`].
/// The relay stops when `stop` is called or every sender of `handed` is gone.
///
/// # Errors
/// [`RelayError::Config`].
pub fn serve_handed(
    addr: SocketAddr,
    handed: mpsc::Receiver<(TcpStream, SocketAddr)>,
    config: RelayConfig,
    codes: AccessCodes,
    events: EventOut,
) -> Result<RunningRelay, RelayError> {
    config.validate()?;
    Ok(start(
        addr,
        "/relay",
        Incoming::Handed(handed),
        config,
        codes,
        events,
    ))
}

/// Where connections come from.
enum Incoming {
    Listener(TcpListener),
    Handed(mpsc::Receiver<(TcpStream, SocketAddr)>),
}

impl Incoming {
    /// The next connection; `None` when handed connections can no longer come.
    async fn next(&mut self) -> Option<std::io::Result<(TcpStream, SocketAddr)>> {
        match self {
            Incoming::Listener(l) => Some(l.accept().await),
            Incoming::Handed(rx) => rx.recv().await.map(Ok),
        }
    }
}

fn start(
    addr: SocketAddr,
    path: &'static str,
    incoming: Incoming,
    config: RelayConfig,
    codes: AccessCodes,
    events: EventOut,
) -> RunningRelay {
    let (stop_tx, stop_rx) = watch::channel(RUNNING);
    // Every event names this relay (`haetae.instance`).
    let instance = config.relay_id.clone();
    let events: EventOut = Arc::new(move |e: Event| events(e.instance(instance.clone())));
    let registry = Registry::new(codes.kv(), config.resume.clone(), config.relay_id.clone());
    let shared = Arc::new(Shared {
        total: Mutex::new(TokenBucket::new(config.total_bytes_per_sec)),
        config,
        codes,
        registry,
        waiting: Mutex::new(HashMap::new()),
        resuming: Mutex::new(HashMap::new()),
        live: AtomicUsize::new(0),
        events,
        stop: stop_rx.clone(),
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(shared.config.max_connections));
    let task = tokio::spawn(accept_loop(incoming, shared, slots, stop_rx));
    RunningRelay {
        addr,
        path,
        stop: stop_tx,
        task,
    }
}

async fn accept_loop(
    mut incoming: Incoming,
    shared: Arc<Shared>,
    slots: Arc<tokio::sync::Semaphore>,
    mut stop: watch::Receiver<u8>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = incoming.next() => match accepted {
                None => return,
                Some(Ok((stream, peer))) => {
                    // Over the connection limit: closed at once (dropping the stream).
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        connection(shared, stream, peer).await;
                        drop(slot);
                    });
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "relay: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

type Ws = WebSocketStream<TcpStream>;

/// The `ticket` query parameter of the upgrade request's target, if any (hex only; anything
/// else is kept as is and fails verification).
fn ticket_param(req: &Request) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("ticket="))
        .filter(|t| t.len() <= haetae_core::agent_ticket::MAX_TICKET_HEX)
        .map(str::to_owned)
}

#[allow(clippy::result_large_err)] // the signature tungstenite's handshake callback requires
fn origin_check(
    allowed: Vec<String>,
    ticket: Arc<Mutex<Option<String>>>,
) -> impl FnOnce(&Request, Response) -> Result<Response, ErrorResponse> {
    move |req: &Request, resp: Response| {
        *lock(&ticket) = ticket_param(req);
        if allowed.is_empty() {
            return Ok(resp);
        }
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        match origin {
            Some(o) if !allowed.iter().any(|a| a.eq_ignore_ascii_case(o)) => {
                let mut refuse = ErrorResponse::new(Some("origin not allowed".into()));
                *refuse.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::FORBIDDEN;
                Err(refuse)
            }
            _ => Ok(resp),
        }
    }
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(shared.config.max_frame))
        .max_frame_size(Some(shared.config.max_frame));
    let hello = shared.config.hello_timeout;
    let ticket = Arc::new(Mutex::new(None));
    let accept = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        origin_check(shared.config.allowed_origins.clone(), Arc::clone(&ticket)),
        Some(ws_config),
    );
    let Ok(Ok(mut ws)) = tokio::time::timeout(hello, accept).await else {
        return;
    };
    let first = match tokio::time::timeout(hello, next_binary(&mut ws)).await {
        Ok(Ok(Some(bytes))) => RelayMessage::decode(&bytes),
        _ => return close(&mut ws, None).await,
    };
    match first {
        Ok(RelayMessage::AgentOpen { agent }) => {
            let ticket = lock(&ticket).take();
            match ticket_agent(&shared, ticket.as_deref(), agent, peer.ip()) {
                Ok(agent) => agent_side(&shared, ws, peer.ip(), agent).await,
                Err(()) => refuse(&mut ws, RefuseReason::NotAllowed, Duration::ZERO).await,
            }
        }
        Ok(RelayMessage::CustomerJoin { code }) => {
            customer_side(&shared, ws, peer.ip(), &code).await;
        }
        Ok(RelayMessage::Resume { sid, role, token }) => {
            resume_side(&shared, ws, peer.ip(), sid, role, token).await;
        }
        _ => {
            refuse(&mut ws, RefuseReason::Protocol, Duration::ZERO).await;
        }
    }
}

/// The next binary message; `Ok(None)` when the connection closed; text is an error.
async fn next_binary(ws: &mut Ws) -> Result<Option<Vec<u8>>, EndReason> {
    loop {
        match ws.next().await {
            Some(Err(WsError::Capacity(_))) => return Err(EndReason::TooLarge),
            // A reset or a broken socket is the same as a close: the side left.
            None | Some(Ok(Message::Close(_)) | Err(_)) => return Ok(None),
            Some(Ok(Message::Binary(b))) => return Ok(Some(b.to_vec())),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Text(_))) => return Err(EndReason::Protocol),
        }
    }
}

/// Writes `first` and whatever else is already queued for this side (up to the queue's
/// size), then flushes once: one write to the socket for a burst of frames instead of one
/// per frame.
async fn write_batch(ws: &mut Ws, first: Vec<u8>, queue: &mut mpsc::Receiver<Vec<u8>>) -> bool {
    if ws
        .feed(Message::binary(RelayMessage::Peer(first).encode()))
        .await
        .is_err()
    {
        return false;
    }
    for _ in 0..queue.max_capacity() {
        let Ok(next) = queue.try_recv() else { break };
        if ws
            .feed(Message::binary(RelayMessage::Peer(next).encode()))
            .await
            .is_err()
        {
            return false;
        }
    }
    ws.flush().await.is_ok()
}

async fn send(ws: &mut Ws, msg: &RelayMessage) -> bool {
    ws.send(Message::binary(msg.encode())).await.is_ok()
}

async fn close(ws: &mut Ws, bye: Option<EndReason>) {
    if let Some(reason) = bye {
        let _ = send(ws, &RelayMessage::Bye { reason }).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
}

async fn refuse(ws: &mut Ws, reason: RefuseReason, retry_after: Duration) {
    let retry_after_secs = u32::try_from(retry_after.as_secs()).unwrap_or(u32::MAX);
    let _ = send(
        ws,
        &RelayMessage::Refused {
            reason,
            retry_after_secs,
        },
    )
    .await;
    close(ws, None).await;
}

fn code_event(action: &str, ip: IpAddr, outcome: Outcome, message: String) -> Event {
    Event::new(Component::Remote, action)
        .category(EventCategory::Authentication)
        .outcome(outcome)
        .source_ip(ip)
        .message(message)
}

fn random_sid() -> Option<SessionId> {
    let mut sid = [0u8; 16];
    haetae_crypto::error::os_random(&mut sid).ok()?;
    Some(SessionId(sid))
}

/// The agent's name: with tickets required, the one a valid ticket names (the claim in
/// `AgentOpen` must be the same), otherwise the claim. A refusal is an event.
fn ticket_agent(
    shared: &Shared,
    ticket: Option<&str>,
    claimed: String,
    ip: IpAddr,
) -> Result<String, ()> {
    let Some(key) = &shared.config.agent_tickets else {
        return Ok(claimed);
    };
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let why = match ticket.map(|t| key.verify(t, now)) {
        Some(Ok(agent)) if agent == claimed => return Ok(agent),
        Some(Ok(agent)) => format!("a ticket for {agent} was presented as {claimed}"),
        Some(Err(e)) => e.to_string(),
        None => "no agent ticket".to_owned(),
    };
    (shared.events)(
        code_event(
            "remote.agent_refused",
            ip,
            Outcome::Failure,
            format!("agent connection from {ip} refused: {why}"),
        )
        .severity(Severity::Medium),
    );
    Err(())
}

async fn agent_side(shared: &Arc<Shared>, mut ws: Ws, ip: IpAddr, agent: String) {
    if !shared.config.agent_networks.iter().any(|n| n.contains(&ip)) {
        (shared.events)(
            code_event(
                "remote.agent_refused",
                ip,
                Outcome::Failure,
                format!("agent {agent} connected from {ip}, outside the agent networks"),
            )
            .severity(Severity::Medium)
            .user_id(agent),
        );
        return refuse(&mut ws, RefuseReason::NotAllowed, Duration::ZERO).await;
    }
    let open = shared.live.load(Ordering::Relaxed) + lock(&shared.waiting).len();
    if open >= shared.config.max_sessions {
        return refuse(&mut ws, RefuseReason::Busy, Duration::from_secs(10)).await;
    }
    let Some(sid) = random_sid() else {
        return refuse(&mut ws, RefuseReason::Unavailable, Duration::from_secs(1)).await;
    };
    let issued = match shared.codes.issue(&agent, sid).await {
        Ok(issued) => issued,
        Err(e) => {
            tracing::warn!(error = %e, "relay: cannot issue an access code");
            let reason = match e {
                CodeError::Exhausted => RefuseReason::Busy,
                _ => RefuseReason::Unavailable,
            };
            return refuse(&mut ws, reason, Duration::from_secs(5)).await;
        }
    };
    let ttl = shared.codes.policy().ttl;
    (shared.events)(
        code_event(
            "remote.code_issued",
            ip,
            Outcome::Success,
            format!("access code issued to {agent}, valid {} s", ttl.as_secs()),
        )
        .user_id(agent.clone())
        .label("session", session_label(&sid)),
    );
    let (tx, rx) = oneshot::channel();
    lock(&shared.waiting).insert(sid.0, (tx, ip));
    let expires_in_secs = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
    if !send(
        &mut ws,
        &RelayMessage::CodeIssued {
            sid,
            code: issued.code.clone(),
            expires_in_secs,
        },
    )
    .await
    {
        lock(&shared.waiting).remove(&sid.0);
        let _ = shared.codes.withdraw(&issued).await;
        return;
    }
    let mut stop = shared.stop.clone();
    let outcome = tokio::select! {
        link = rx => link.ok(),
        () = tokio::time::sleep(ttl) => {
            close(&mut ws, Some(EndReason::PairTimeout)).await;
            None
        }
        // While waiting the agent may only leave; anything else ends the wait too.
        _ = next_binary(&mut ws) => None,
        _ = stop.changed() => {
            if !shared.killed() {
                close(&mut ws, Some(EndReason::Shutdown)).await;
            }
            None
        }
    };
    lock(&shared.waiting).remove(&sid.0);
    let Some(link) = outcome else {
        let _ = shared.codes.withdraw(&issued).await;
        return;
    };
    if let Some(token) = link.token {
        let _ = send(&mut ws, &RelayMessage::ResumeToken { token }).await;
    }
    if send(&mut ws, &RelayMessage::Paired { sid }).await {
        forward(shared, ws, link, Side::Agent).await;
    } else {
        link.record.end(EndReason::PeerLeft, "agent");
    }
}

async fn customer_side(shared: &Arc<Shared>, mut ws: Ws, ip: IpAddr, code: &str) {
    let redeemed = match shared.codes.redeem(code, ip).await {
        Ok(r) => r,
        Err(e) => {
            let (reason, retry, detail, severity) = match &e {
                CodeError::InvalidOrExpired { detail } => {
                    let severity = match detail {
                        Failure::Wrong { burned: true, .. } | Failure::Burned => Severity::Medium,
                        _ => Severity::Low,
                    };
                    (
                        RefuseReason::InvalidOrExpired,
                        Duration::ZERO,
                        format!("{detail:?}"),
                        severity,
                    )
                }
                CodeError::TooManyAttempts { retry_after } => (
                    RefuseReason::TooManyAttempts,
                    *retry_after,
                    "address limited".to_owned(),
                    Severity::Medium,
                ),
                CodeError::OtherRelay { relay } => (
                    RefuseReason::OtherRelay,
                    Duration::ZERO,
                    format!("session is on relay {relay}"),
                    Severity::Info,
                ),
                other => (
                    RefuseReason::Unavailable,
                    Duration::from_secs(5),
                    other.to_string(),
                    Severity::Medium,
                ),
            };
            (shared.events)(
                code_event(
                    "remote.code_failed",
                    ip,
                    Outcome::Failure,
                    format!("access code refused for {ip}: {detail}"),
                )
                .severity(severity)
                .label("detail", detail),
            );
            return refuse(&mut ws, reason, retry).await;
        }
    };
    let waiting = lock(&shared.waiting).remove(&redeemed.sid.0);
    let Some((agent_tx, agent_ip)) = waiting else {
        // The agent left between issue and join (or this relay restarted).
        return refuse(&mut ws, RefuseReason::InvalidOrExpired, Duration::ZERO).await;
    };
    let (to_customer, customer_rx) = mpsc::channel(shared.config.queue_frames);
    let (to_agent, agent_rx) = mpsc::channel(shared.config.queue_frames);
    shared.live.fetch_add(1, Ordering::Relaxed);
    let record = Arc::new(SessionRecord {
        sid: redeemed.sid,
        agent: redeemed.agent.clone(),
        agent_ip,
        customer_ip: ip,
        paired_at: SystemTime::now(),
        started: Instant::now(),
        bytes_a2c: AtomicU64::new(0),
        bytes_c2a: AtomicU64::new(0),
        frames_a2c: AtomicU64::new(0),
        frames_c2a: AtomicU64::new(0),
        last_activity_ms: AtomicU64::new(0),
        end: Mutex::new(None),
        bucket: Mutex::new(TokenBucket::new(shared.config.session_bytes_per_sec)),
        shared: Arc::clone(shared),
        resumes: 0,
    });
    // The registry record lets both ends resume on any relay sharing the KV. Without it
    // (the KV is down) the session still runs; it just cannot be resumed.
    let tokens = match shared
        .registry
        .register(&redeemed.sid, &redeemed.agent, agent_ip, ip)
        .await
    {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "relay: session not registered; it cannot be resumed");
            None
        }
    };
    (shared.events)(
        code_event(
            "remote.code_used",
            ip,
            Outcome::Success,
            format!("customer at {ip} joined {}'s session", redeemed.agent),
        )
        .user_id(redeemed.agent.clone())
        .label("session", session_label(&redeemed.sid)),
    );
    let agent_link = Link {
        to_peer: to_customer,
        from_peer: agent_rx,
        record: Arc::clone(&record),
        token: tokens.map(|t| t.0),
    };
    let customer_link = Link {
        to_peer: to_agent,
        from_peer: customer_rx,
        record,
        token: None,
    };
    if agent_tx.send(agent_link).is_err() {
        customer_link.record.end(EndReason::PeerLeft, "agent");
        return refuse(&mut ws, RefuseReason::InvalidOrExpired, Duration::ZERO).await;
    }
    if let Some((_, token)) = tokens {
        let _ = send(&mut ws, &RelayMessage::ResumeToken { token }).await;
    }
    if send(&mut ws, &RelayMessage::Paired { sid: redeemed.sid }).await {
        forward(shared, ws, customer_link, Side::Customer).await;
    } else {
        customer_link.record.end(EndReason::PeerLeft, "customer");
    }
}

/// A side back after a lost connection (its relay died, or its own network dropped):
/// checks its single-use token in the registry, hands it the next one, and pairs it with the
/// other side when that one is (or comes) back to this relay within the resume wait. The
/// limits of a fresh session hold: agent networks, the session cap, address limits for
/// wrong tokens, the idle timeout and rates of the new pairing.
async fn resume_side(
    shared: &Arc<Shared>,
    mut ws: Ws,
    ip: IpAddr,
    sid: SessionId,
    role: Role,
    token: ResumeToken,
) {
    match shared.codes.address_limited(ip).await {
        Ok(None) => {}
        Ok(Some(retry)) => return refuse(&mut ws, RefuseReason::TooManyAttempts, retry).await,
        Err(_) => {
            return refuse(&mut ws, RefuseReason::Unavailable, Duration::from_secs(1)).await;
        }
    }
    if role == Role::Agent && !shared.config.agent_networks.iter().any(|n| n.contains(&ip)) {
        (shared.events)(
            code_event(
                "remote.agent_refused",
                ip,
                Outcome::Failure,
                format!("agent resume from {ip}, outside the agent networks"),
            )
            .severity(Severity::Medium),
        );
        return refuse(&mut ws, RefuseReason::NotAllowed, Duration::ZERO).await;
    }
    let open = shared.live.load(Ordering::Relaxed)
        + lock(&shared.waiting).len()
        + lock(&shared.resuming).len();
    if open >= shared.config.max_sessions {
        return refuse(&mut ws, RefuseReason::Busy, Duration::from_secs(1)).await;
    }
    let other_here = lock(&shared.resuming)
        .get(&sid.0)
        .is_some_and(|(_, r, _)| *r != role);
    let claim = shared.registry.claim(&sid, role, &token, other_here).await;
    let (next, agent, resumes) = match claim {
        Ok(
            crate::registry::Claim::Wait {
                token,
                agent,
                resumes,
            }
            | crate::registry::Claim::Pair {
                token,
                agent,
                resumes,
            },
        ) => (token, agent, resumes),
        Err(e) => {
            let (reason, retry, severity) = match &e {
                ResumeError::Invalid { .. } => {
                    let _ = shared.codes.count_failure(ip).await;
                    (
                        RefuseReason::InvalidOrExpired,
                        Duration::ZERO,
                        Severity::Medium,
                    )
                }
                ResumeError::OtherRelay { .. } => {
                    (RefuseReason::OtherRelay, Duration::ZERO, Severity::Info)
                }
                ResumeError::Store(_) => (
                    RefuseReason::Unavailable,
                    Duration::from_secs(1),
                    Severity::Medium,
                ),
            };
            (shared.events)(
                code_event(
                    "remote.resume_failed",
                    ip,
                    Outcome::Failure,
                    format!("{role:?} resume refused for {ip}: {e}"),
                )
                .severity(severity)
                .label("session", session_label(&sid)),
            );
            return refuse(&mut ws, reason, retry).await;
        }
    };
    if !send(&mut ws, &RelayMessage::ResumeToken { token: next }).await {
        return;
    }
    // Pair with the other side if it waits here; otherwise wait for it (a same-side
    // waiter from an earlier attempt is replaced: its connection is stale).
    let waiter = {
        let mut map = lock(&shared.resuming);
        match map.remove(&sid.0) {
            Some((tx, r, other_ip)) if r != role => Some((tx, other_ip)),
            _ => None,
        }
    };
    let link = if let Some((other_tx, other_ip)) = waiter {
        let (agent_ip, customer_ip) = match role {
            Role::Agent => (ip, other_ip),
            Role::Customer => (other_ip, ip),
        };
        let (mine, theirs) = pair_links(shared, sid, agent.clone(), agent_ip, customer_ip, resumes);
        if other_tx.send(theirs).is_err() {
            mine.record.end(EndReason::PeerLeft, "relay");
            drop(mine);
            return wait_for_other(shared, ws, ip, sid, role).await;
        }
        (shared.events)(
            code_event(
                "remote.session_resumed",
                ip,
                Outcome::Success,
                format!("{agent}'s session resumed on this relay (resume {resumes})"),
            )
            .user_id(agent)
            .label("session", session_label(&sid)),
        );
        mine
    } else {
        return wait_for_other(shared, ws, ip, sid, role).await;
    };
    if send(&mut ws, &RelayMessage::Paired { sid }).await {
        forward(shared, ws, link, side_of(role)).await;
    } else {
        link.record.end(EndReason::PeerLeft, side_of(role).name());
    }
}

fn side_of(role: Role) -> Side {
    match role {
        Role::Agent => Side::Agent,
        Role::Customer => Side::Customer,
    }
}

/// Two linked halves of a (resumed) pairing: this side's and the other's.
fn pair_links(
    shared: &Arc<Shared>,
    sid: SessionId,
    agent: String,
    agent_ip: IpAddr,
    customer_ip: IpAddr,
    resumes: u32,
) -> (Link, Link) {
    let (to_customer, customer_rx) = mpsc::channel(shared.config.queue_frames);
    let (to_agent, agent_rx) = mpsc::channel(shared.config.queue_frames);
    shared.live.fetch_add(1, Ordering::Relaxed);
    let record = Arc::new(SessionRecord {
        sid,
        agent,
        agent_ip,
        customer_ip,
        paired_at: SystemTime::now(),
        started: Instant::now(),
        bytes_a2c: AtomicU64::new(0),
        bytes_c2a: AtomicU64::new(0),
        frames_a2c: AtomicU64::new(0),
        frames_c2a: AtomicU64::new(0),
        last_activity_ms: AtomicU64::new(0),
        end: Mutex::new(None),
        bucket: Mutex::new(TokenBucket::new(shared.config.session_bytes_per_sec)),
        shared: Arc::clone(shared),
        resumes,
    });
    let agent_link = Link {
        to_peer: to_customer,
        from_peer: agent_rx,
        record: Arc::clone(&record),
        token: None,
    };
    let customer_link = Link {
        to_peer: to_agent,
        from_peer: customer_rx,
        record,
        token: None,
    };
    (agent_link, customer_link)
}

/// The first side back waits (at most the resume wait) for the other to come to this relay.
async fn wait_for_other(shared: &Arc<Shared>, mut ws: Ws, ip: IpAddr, sid: SessionId, role: Role) {
    let (tx, rx) = oneshot::channel();
    lock(&shared.resuming).insert(sid.0, (tx, role, ip));
    let mut stop = shared.stop.clone();
    let outcome = tokio::select! {
        link = rx => link.ok(),
        () = tokio::time::sleep(shared.config.resume.resume_wait) => {
            // The other side did not come back in time: the session is over.
            let _ = send(&mut ws, &RelayMessage::PeerGone { reason: EndReason::PairTimeout }).await;
            let _ = shared.registry.remove(&sid).await;
            close(&mut ws, None).await;
            None
        }
        _ = next_binary(&mut ws) => None,
        _ = stop.changed() => {
            if !shared.killed() {
                close(&mut ws, Some(EndReason::Shutdown)).await;
            }
            None
        }
    };
    let Some(link) = outcome else {
        {
            let mut map = lock(&shared.resuming);
            if map
                .get(&sid.0)
                .is_some_and(|(tx, r, _)| *r == role && tx.is_closed())
            {
                map.remove(&sid.0);
            }
        }
        if !shared.killed() {
            let _ = shared.registry.stop_waiting(&sid, role).await;
        }
        return;
    };
    if send(&mut ws, &RelayMessage::Paired { sid }).await {
        forward(shared, ws, link, side_of(role)).await;
    } else {
        link.record.end(EndReason::PeerLeft, side_of(role).name());
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Agent,
    Customer,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Agent => "agent",
            Side::Customer => "customer",
        }
    }
}

/// Copies frames between this side's socket and the other side's queue until either ends.
///
/// A frame read from this side waits in `pending` until the other side's queue has room
/// (and the rate limits allow it); meanwhile this side's socket is not read, but frames
/// from the other side keep flowing to it, so two busy directions never wait on each other.
async fn forward(shared: &Arc<Shared>, mut ws: Ws, link: Link, side: Side) {
    let Link {
        to_peer,
        mut from_peer,
        record,
        token: _,
    } = link;
    let refresh_every = shared.config.resume.resume_window / 3;
    let mut refreshed = Instant::now();
    let (bytes, frames) = match side {
        Side::Agent => (&record.bytes_a2c, &record.frames_a2c),
        Side::Customer => (&record.bytes_c2a, &record.frames_c2a),
    };
    let mut frame_bucket = TokenBucket::new(shared.config.frames_per_sec);
    let idle = shared.config.idle_timeout;
    let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(tick);
    let mut stop = shared.stop.clone();
    let mut pending: Option<Vec<u8>> = None;
    let mut not_before: Option<tokio::time::Instant> = None;
    record.touch();
    let ended: Option<EndReason> = loop {
        tokio::select! {
            () = tokio::time::sleep_until(not_before.unwrap_or_else(tokio::time::Instant::now)),
                if not_before.is_some() => {
                not_before = None;
            }
            permit = to_peer.reserve(), if pending.is_some() && not_before.is_none() => {
                let Ok(permit) = permit else { break None };
                if let Some(payload) = pending.take() {
                    bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
                    frames.fetch_add(1, Ordering::Relaxed);
                    permit.send(payload);
                    record.touch();
                }
            }
            incoming = next_binary(&mut ws), if pending.is_none() => {
                let raw = match incoming {
                    Ok(Some(raw)) => raw,
                    Ok(None) => { record.end(EndReason::PeerLeft, side.name()); break None; }
                    Err(reason) => { record.end(reason, side.name()); break Some(reason); }
                };
                match RelayMessage::decode(&raw) {
                    Ok(RelayMessage::Peer(payload)) => {
                        let n = payload.len() as u64;
                        let wait = frame_bucket.take(1)
                            .max(lock(&record.bucket).take(n))
                            .max(lock(&shared.total).take(n));
                        if !wait.is_zero() {
                            not_before = Some(tokio::time::Instant::now() + wait);
                        }
                        pending = Some(payload);
                    }
                    Ok(RelayMessage::Bye { .. }) => {
                        record.end(EndReason::Normal, side.name());
                        break None;
                    }
                    _ => {
                        record.end(EndReason::Protocol, side.name());
                        break Some(EndReason::Protocol);
                    }
                }
            }
            outgoing = from_peer.recv() => match outgoing {
                Some(payload) => {
                    // A client that stops reading holds the session no longer than the
                    // idle timeout.
                    match tokio::time::timeout(idle, write_batch(&mut ws, payload, &mut from_peer)).await {
                        Ok(true) => {}
                        Ok(false) => {
                            record.end(EndReason::PeerLeft, side.name());
                            break None;
                        }
                        Err(_) => {
                            record.end(EndReason::Idle, "relay");
                            break None;
                        }
                    }
                }
                None => {
                    let reason = record.end_reason();
                    let _ = send(&mut ws, &RelayMessage::PeerGone { reason }).await;
                    break None;
                }
            },
            _ = ticker.tick() => {
                if record.idle_for() >= idle {
                    record.end(EndReason::Idle, "relay");
                    break Some(EndReason::Idle);
                }
                // One side keeps the registry record alive while the session runs here.
                if side == Side::Agent && refreshed.elapsed() >= refresh_every {
                    refreshed = Instant::now();
                    let (shared, sid) = (Arc::clone(shared), record.sid);
                    tokio::spawn(async move {
                        if let Err(e) = shared.registry.refresh(&sid).await {
                            tracing::warn!(error = %e, "relay: cannot refresh a session's registry record");
                        }
                    });
                }
            }
            _ = stop.changed() => {
                if shared.killed() {
                    // As a crashed process: no goodbye, nothing cleaned up.
                    return;
                }
                record.end(EndReason::Shutdown, "relay");
                break Some(EndReason::Shutdown);
            }
        }
    };
    drop(to_peer);
    // A session that ended for good can no longer be resumed; one whose side only lost its
    // connection (or whose relay is stopping) can, on this relay or another.
    let reason = record.end_reason();
    if !matches!(reason, EndReason::PeerLeft | EndReason::Shutdown) {
        let _ = shared.registry.remove(&record.sid).await;
    }
    close(&mut ws, ended).await;
}
