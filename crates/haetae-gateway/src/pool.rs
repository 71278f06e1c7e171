//! The connection pool for `http://` (HTTP/1.1) upstreams: per upstream address a stack of
//! idle keep-alive connections, taken most recent first. It is what the request path uses
//! on every plain upstream request, so it does only what that needs: one uncontended lock
//! to take a connection and one to give it back (when the response body has been read to
//! its end), no hashing, no task per request. `https://` and `h2c://` upstreams go through
//! hyper-util's pooled client (TLS, ALPN, HTTP/2 multiplexing).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{Method, Request, Response};

use crate::h1::{self, Conn, Failed, H1Error, RequestBody, ResponseBody};
use crate::proxy::ProxyBody;

/// Idle connections kept per upstream beyond which the oldest are closed.
const MAX_IDLE_PER_UPSTREAM: usize = 512;

/// A connection idle for less than this is not expected to have been closed by an upstream
/// keep-alive timeout (nginx's is 75 s, Apache's 5 s, Node's 5 s): an idempotent request
/// sent on it is not sent again after it was written (a request that was not written at
/// all is always sent again).
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
    /// The exchange failed (the connection, the response, or the client's request body).
    #[error("{0}")]
    Request(#[from] H1Error),
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

struct Idle {
    conn: Conn,
    since: Instant,
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

    pub(crate) fn conn(&self) -> &Conn {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// A method a request of which may be sent twice (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl H1Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used open idle connection, and since when it was idle.
    fn take(&self) -> Option<(Conn, Instant)> {
        loop {
            // Checked outside the lock; a closed one is dropped (closed) outside it too.
            let i = self.lock().pop()?;
            if i.conn.is_reusable() {
                return Some((i.conn, i.since));
            }
        }
    }

    fn put(&self, conn: Conn) {
        let now = Instant::now();
        let oldest = {
            let mut idle = self.lock();
            let oldest = (idle.len() >= MAX_IDLE_PER_UPSTREAM).then(|| idle.remove(0));
            idle.push(Idle { conn, since: now });
            oldest
        };
        drop(oldest);
    }

    fn prune(&self, now: Instant) {
        let timeout = self.settings.idle_timeout;
        // Closed outside the lock.
        let expired: Vec<Idle> = {
            let mut idle = self.lock();
            let (keep, expired) = std::mem::take(&mut *idle).into_iter().partition(|i| {
                i.conn.is_reusable() && now.saturating_duration_since(i.since) < timeout
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
        Ok(Conn::new(stream))
    }

    /// Sends `req` (origin-form URI, `Host` set) on the most recently used idle connection,
    /// or a new one, and returns the response, whose body holds the connection until it
    /// has been read to its end.
    ///
    /// A request is sent again — once, and only on a newly opened connection — when a
    /// reused connection turns out to be stale (the upstream closed it while idle), and
    /// only when that cannot run it twice: the connection failed before any byte of the
    /// request was written, or, for an idempotent request without a body on a connection
    /// idle for at least [`STALE_AFTER`], the upstream closed it without a byte of
    /// response. A non-idempotent request (POST, PATCH, ...) whose bytes were written is
    /// never sent again: the upstream may have acted on it, and the client gets 502.
    ///
    /// `extra` are header lines (each ending in CRLF) written after the request's fields:
    /// the forwarding headers, rendered once per connection (see `proxy::forward`).
    pub(crate) async fn send(
        self: &Arc<Self>,
        req: Request<ProxyBody>,
        extra: &[u8],
    ) -> Result<Response<ResponseBody>, PoolError> {
        let (parts, body) = req.into_parts();
        // A small body is read before a connection is taken: a slow client does not hold
        // one, and the body can be sent again.
        let mut body = RequestBody::prepare(body).await?;
        let Some((conn, since)) = self.take() else {
            let conn = self.connect().await?;
            return self
                .exchange(conn, &parts, extra, &mut body)
                .await
                .map_err(|f| f.error.into());
        };
        let replayable =
            since.elapsed() >= STALE_AFTER && idempotent(&parts.method) && body.is_empty();
        match self.exchange(conn, &parts, extra, &mut body).await {
            Ok(done) => return Ok(done),
            Err(f) if !f.written => {}
            Err(f) if replayable && !f.heard && f.error.is_stale() => {}
            Err(f) => return Err(f.error.into()),
        }
        tracing::debug!(
            upstream = %format_args!("{}:{}", self.host, self.port),
            "a kept-alive upstream connection was stale; sending the request on a new one"
        );
        let conn = self.connect().await?;
        self.exchange(conn, &parts, extra, &mut body)
            .await
            .map_err(|f| f.error.into())
    }

    /// One request on one connection.
    async fn exchange(
        self: &Arc<Self>,
        mut conn: Conn,
        parts: &http::request::Parts,
        extra: &[u8],
        body: &mut RequestBody,
    ) -> Result<Response<ResponseBody>, Failed> {
        let done = h1::exchange(&mut conn, parts, extra, body).await?;
        let head = done.head;
        let body = ResponseBody::new(
            Checkin {
                pool: Arc::clone(self),
                conn,
            },
            head.framing,
            done.reusable,
        );
        let mut response = Response::new(body);
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        *response.headers_mut() = head.headers;
        Ok(response)
    }
}
