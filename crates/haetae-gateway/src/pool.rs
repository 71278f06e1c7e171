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
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::proxy::ProxyBody;

/// Idle connections kept per upstream beyond which the oldest are closed.
const MAX_IDLE_PER_UPSTREAM: usize = 512;

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

struct Idle {
    sender: http1::SendRequest<ProxyBody>,
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
    sender: http1::SendRequest<ProxyBody>,
}

impl Checkin {
    /// Gives the connection back to its pool for the next request.
    pub(crate) fn checkin(self) {
        self.pool.put(self.sender);
    }
}

impl H1Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self) -> Option<http1::SendRequest<ProxyBody>> {
        let mut idle = self.lock();
        while let Some(i) = idle.pop() {
            if !i.sender.is_closed() {
                return Some(i.sender);
            }
        }
        None
    }

    fn put(&self, sender: http1::SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.lock();
        if idle.len() >= MAX_IDLE_PER_UPSTREAM {
            idle.remove(0);
        }
        idle.push(Idle { sender, since: now });
    }

    fn prune(&self, now: Instant) {
        let timeout = self.settings.idle_timeout;
        // Dropped outside the lock: closing a connection wakes its task.
        let expired: Vec<Idle> = {
            let mut idle = self.lock();
            let (keep, expired) = std::mem::take(&mut *idle).into_iter().partition(|i| {
                !i.sender.is_closed() && now.saturating_duration_since(i.since) < timeout
            });
            *idle = keep;
            expired
        };
        drop(expired);
    }

    async fn connect(&self) -> Result<http1::SendRequest<ProxyBody>, PoolError> {
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
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("upstream connection ended: {e}");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (origin-form URI, `Host` set) on an idle connection, or a new one, and
    /// returns the response with the connection on loan. A request that a reused
    /// connection closed before it was sent goes out again on another.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut req: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Checkin), PoolError> {
        // Idle connections tried before a new one is opened: they can have been closed by
        // the upstream while idle.
        let mut reused_tries = 4;
        loop {
            let (mut sender, fresh) = match (reused_tries > 0).then(|| self.take()).flatten() {
                Some(s) => {
                    reused_tries -= 1;
                    (s, false)
                }
                None => (self.connect().await?, true),
            };
            if let Err(e) = sender.ready().await {
                if fresh {
                    return Err(e.into());
                }
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => {
                    return Ok((
                        response,
                        Checkin {
                            pool: Arc::clone(self),
                            sender,
                        },
                    ));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }
}
