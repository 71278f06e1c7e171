//! The connection pool for `http://` (HTTP/1.1) upstreams: per upstream address a stack of
//! idle keep-alive connections, taken most recent first. It is what the request path uses
//! on every plain upstream request, so it does only what that needs: one uncontended lock
//! to take a connection and one to give it back (when the response body has been read to
//! its end), no hashing, no task per request. `https://` and `h2c://` upstreams go through
//! hyper-util's pooled client (TLS, ALPN, HTTP/2 multiplexing).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{Method, Request, Response};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::proxy::ProxyBody;

/// Idle connections kept per upstream beyond which the oldest are closed.
const MAX_IDLE_PER_UPSTREAM: usize = 512;

/// A connection idle for less than this is not expected to have been closed by an upstream
/// keep-alive timeout (nginx's is 75 s, Apache's 5 s, Node's 5 s): an idempotent request
/// sent on it is not copied for sending again after it was written (a request that was
/// not written at all is always sent again).
const STALE_AFTER: Duration = Duration::from_millis(250);

/// How a pooled exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    /// No connection could be opened (refused, unreachable, name not resolved, timed out).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The connection failed during the exchange.
    #[error("{0}")]
    Request(#[from] hyper::Error),
}

/// The settings every pool shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSettings {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
}

/// The pools of every HTTP/1.1 upstream, by `host:port`; kept across policy swaps so a new
/// routing table reuses the connections of the old one.
#[derive(Debug)]
pub(crate) struct Pools {
    settings: PoolSettings,
    by_addr: Mutex<HashMap<String, Arc<H1Pool>>>,
}

impl Pools {
    pub(crate) fn new(settings: PoolSettings) -> Pools {
        Pools {
            settings,
            by_addr: Mutex::default(),
        }
    }

    /// The pool for `authority` (port 80 when it names none), created on first use.
    pub(crate) fn get(&self, authority: &Authority) -> Arc<H1Pool> {
        let host = authority.host();
        // `[::1]` -> `::1` for connecting.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = authority.port_u16().unwrap_or(80);
        let key = format!("{host}:{port}");
        let mut map = self
            .by_addr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(key).or_insert_with(|| {
            Arc::new(H1Pool {
                host: host.to_owned(),
                port,
                settings: self.settings,
                idle: Mutex::default(),
            })
        }))
    }

    /// Closes the connections idle for longer than the idle timeout, in every pool.
    pub(crate) fn prune(&self) {
        let pools: Vec<Arc<H1Pool>> = self
            .by_addr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let now = Instant::now();
        for p in pools {
            p.prune(now);
        }
    }
}

/// One upstream connection: the request sender and a mark set whenever a byte arrives
/// from the upstream, which tells a stale keep-alive connection (closed with no byte of
/// response) from one that failed mid-response.
struct Conn {
    sender: http1::SendRequest<ProxyBody>,
    heard: Arc<AtomicBool>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// A TCP stream that sets `heard` when it reads a byte.
struct Marked {
    stream: tokio::net::TcpStream,
    heard: Arc<AtomicBool>,
}

impl AsyncRead for Marked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.heard.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Marked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The idle HTTP/1.1 connections to one upstream address.
pub(crate) struct H1Pool {
    host: String,
    port: u16,
    settings: PoolSettings,
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for H1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Pool")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// A connection on loan to one exchange: given back by [`Checkin::checkin`] when the
/// response has been read to its end, closed when dropped before that.
pub(crate) struct Checkin {
    pool: Arc<H1Pool>,
    conn: Conn,
}

impl Checkin {
    /// Gives the connection back to its pool for the next request.
    pub(crate) fn checkin(self) {
        self.pool.put(self.conn);
    }
}

/// The head of a request that may be sent again after a stale keep-alive connection ate
/// it: an idempotent method (RFC 9110 §9.2.2) and no body.
fn replayable(req: &Request<ProxyBody>) -> Option<Request<ProxyBody>> {
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    if !idempotent || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(ProxyBody::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    copy.headers_mut().clone_from(req.headers());
    Some(copy)
}

impl H1Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used open idle connection, and since when it was idle.
    fn take(&self) -> Option<(Conn, Instant)> {
        let mut idle = self.lock();
        while let Some(i) = idle.pop() {
            if !i.conn.sender.is_closed() {
                return Some((i.conn, i.since));
            }
        }
        None
    }

    fn put(&self, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.lock();
        if idle.len() >= MAX_IDLE_PER_UPSTREAM {
            idle.remove(0);
        }
        idle.push(Idle { conn, since: now });
    }

    fn prune(&self, now: Instant) {
        let timeout = self.settings.idle_timeout;
        // Dropped outside the lock: closing a connection wakes its task.
        let expired: Vec<Idle> = {
            let mut idle = self.lock();
            let (keep, expired) = std::mem::take(&mut *idle).into_iter().partition(|i| {
                !i.conn.sender.is_closed() && now.saturating_duration_since(i.since) < timeout
            });
            *idle = keep;
            expired
        };
        drop(expired);
    }

    async fn connect(&self) -> Result<Conn, PoolError> {
        let addr = || format!("{}:{}", self.host, self.port);
        let connecting = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(self.settings.connect_timeout, connecting).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(PoolError::Connect {
                    addr: addr(),
                    source,
                });
            }
            Err(_) => {
                return Err(PoolError::Connect {
                    addr: addr(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "no connection within {} ms (gateway.upstream_connect_timeout_ms)",
                            self.settings.connect_timeout.as_millis()
                        ),
                    ),
                });
            }
        };
        let _ = stream.set_nodelay(true);
        let heard = Arc::new(AtomicBool::new(false));
        let io = Marked {
            stream,
            heard: Arc::clone(&heard),
        };
        let (sender, conn) = http1::Builder::new().handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("upstream connection ended: {e}");
            }
        });
        Ok(Conn { sender, heard })
    }

    /// Sends `req` (origin-form URI, `Host` set) on the most recently used idle connection,
    /// or a new one, and returns the response with the connection on loan.
    ///
    /// A request is sent again — once, and only on a newly opened connection — when a
    /// reused connection turns out to be stale (the upstream closed it while idle), and
    /// only when that cannot run it twice: the connection failed before any byte of the
    /// request was written (hyper hands the unsent request back), or, for an idempotent
    /// request without a body on a connection idle for at least [`STALE_AFTER`], the
    /// upstream closed it without a byte of response. A
    /// non-idempotent request (POST, PATCH, ...) whose bytes were written is never sent
    /// again: the upstream may have acted on it, and the client gets 502.
    pub(crate) async fn send(
        self: &Arc<Self>,
        req: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Checkin), PoolError> {
        let Some((conn, since)) = self.take() else {
            let conn = self.connect().await?;
            return self.exchange(conn, req).await.map_err(|(e, _)| e);
        };
        // A copy of the head to send again costs a header map clone: kept only when the
        // connection sat idle long enough for an upstream keep-alive timeout to close it.
        let replay = if since.elapsed() >= STALE_AFTER {
            replayable(&req)
        } else {
            None
        };
        conn.heard.store(false, Ordering::Relaxed);
        let heard = Arc::clone(&conn.heard);
        let again = match self.exchange(conn, req).await {
            Ok(done) => return Ok(done),
            Err((_, Some(unsent))) => unsent,
            Err((e, None)) => match replay {
                Some(head) if !heard.load(Ordering::Relaxed) && stale(&e) => head,
                _ => return Err(e),
            },
        };
        tracing::debug!(
            upstream = %format_args!("{}:{}", self.host, self.port),
            "a kept-alive upstream connection was stale; sending the request on a new one"
        );
        let conn = self.connect().await?;
        self.exchange(conn, again).await.map_err(|(e, _)| e)
    }

    /// One request on one connection; on failure, the request when it was not sent.
    async fn exchange(
        self: &Arc<Self>,
        mut conn: Conn,
        req: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Checkin), (PoolError, Option<Request<ProxyBody>>)> {
        if let Err(e) = conn.sender.ready().await {
            return Err((e.into(), Some(req)));
        }
        match conn.sender.try_send_request(req).await {
            Ok(response) => Ok((
                response,
                Checkin {
                    pool: Arc::clone(self),
                    conn,
                },
            )),
            Err(mut e) => {
                let unsent = e.take_message();
                Err((e.into_error().into(), unsent))
            }
        }
    }
}

/// A failure of the kind a connection the upstream closed while idle gives: end of stream
/// or a reset, not a malformed response or a timeout.
fn stale(e: &PoolError) -> bool {
    let PoolError::Request(e) = e else {
        return false;
    };
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return true;
    }
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        })
}
