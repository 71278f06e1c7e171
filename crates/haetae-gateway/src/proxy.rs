//! The request path: route the request, run the service's filter chain phase by phase,
//! forward to the upstream with streaming bodies and proper forwarding headers, and act on
//! the decisions. Nothing here locks: the routing table is one `ArcSwap` load, and an
//! in-flight request keeps the table (and chain) it started with.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version, request};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use ipnet::IpNet;

use crate::chain::{Phase, PhaseEnv, PhaseOutcome, run_phase};
use crate::filter::{Decision, FilterServices, LocalResponse, Modification, Notice};
use crate::metrics::{GatewayMetrics, ServiceStats};
use crate::pool::{PoolError, Pools};
use crate::request::{Attributes, BodyView, RequestView, ResponseView, TlsInfo, request_host};
use crate::routing::{RoutingTable, Upstream, UpstreamProtocol};

/// The error type of bodies on the proxy path.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body on its way through the gateway: streamed from the peer, or (partly) buffered.
#[derive(Debug)]
pub enum ProxyBody {
    /// Streamed as it arrives (hyper: HTTP/2, upgraded connections, upstream responses
    /// from hyper's client).
    Streaming(Incoming),
    /// A request body streamed from a client connection the gateway's own HTTP/1.1 server
    /// reads.
    Client(ClientBody),
    /// Bytes the gateway holds (a local response, or a buffered body).
    Full(Option<Bytes>),
    /// A response streamed from a pooled HTTP/1.1 upstream connection, which goes back to
    /// the pool when the body has been read to its end.
    Upstream(UpstreamBody),
    /// A body whose start was buffered for a filter; the rest streams on.
    Prefixed {
        /// The buffered start.
        prefix: Option<Bytes>,
        /// Trailers that arrived while buffering.
        trailers: Option<HeaderMap>,
        /// The rest of the body, if it did not end while buffering.
        rest: Option<Box<ProxyBody>>,
    },
}

/// A response body from a pooled upstream connection (see [`ProxyBody::Upstream`]): read
/// from the socket as the client takes it; the connection goes back to the pool when the
/// body has been read to its end, and is closed when the body is dropped before that.
pub struct UpstreamBody(crate::h1::ResponseBody);

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A request body read from a client connection of the gateway's own HTTP/1.1 server
/// (see [`ProxyBody::Client`]), as the request path takes it.
#[derive(Debug)]
pub struct ClientBody(pub(crate) crate::h1::serve::ClientBody);

impl ProxyBody {
    /// An empty body.
    #[must_use]
    pub fn empty() -> ProxyBody {
        ProxyBody::Full(None)
    }

    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        let b = bytes.into();
        ProxyBody::Full((!b.is_empty()).then_some(b))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Streaming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            ProxyBody::Client(b) => Pin::new(&mut b.0).poll_frame(cx),
            ProxyBody::Upstream(u) => Pin::new(&mut u.0).poll_frame(cx),
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
            ProxyBody::Prefixed {
                prefix,
                trailers,
                rest,
            } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                if let Some(r) = rest {
                    return Pin::new(&mut **r).poll_frame(cx);
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Streaming(b) => b.is_end_stream(),
            ProxyBody::Client(b) => b.0.is_end_stream(),
            ProxyBody::Upstream(u) => u.0.is_end_stream(),
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Prefixed {
                prefix,
                trailers,
                rest,
            } => {
                prefix.is_none()
                    && trailers.is_none()
                    && rest.as_ref().is_none_or(|r| Body::is_end_stream(&**r))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Streaming(b) => b.size_hint(),
            ProxyBody::Client(b) => b.0.size_hint(),
            ProxyBody::Upstream(u) => u.0.size_hint(),
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Prefixed { prefix, rest, .. } => {
                let p = prefix.as_ref().map_or(0, |b| b.len() as u64);
                match rest {
                    None => SizeHint::with_exact(p),
                    Some(r) => {
                        let h = r.size_hint();
                        let mut s = SizeHint::new();
                        s.set_lower(h.lower() + p);
                        if let Some(u) = h.upper() {
                            s.set_upper(u + p);
                        }
                        s
                    }
                }
            }
        }
    }
}

/// The connector upstream requests use: plain HTTP or TLS (rustls), HTTP/1.1 or HTTP/2
/// by ALPN.
pub type UpstreamConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// What the request path needs that does not change with the policy.
pub(crate) struct ProxySettings {
    pub upstream_timeout: Duration,
    pub default_status: StatusCode,
    pub trusted_proxies: Vec<IpNet>,
}

/// Shared by every connection.
pub(crate) struct ProxyState {
    pub table: ArcSwap<RoutingTable>,
    pub services: FilterServices,
    pub metrics: Arc<GatewayMetrics>,
    /// `http://` and `https://` upstreams.
    pub client: Client<UpstreamConnector, ProxyBody>,
    /// `h2c://` upstreams (HTTP/2 with prior knowledge).
    pub h2c_client: Client<HttpConnector, ProxyBody>,
    /// `http://` upstreams (HTTP/1.1 keep-alive connections).
    pub pools: Pools,
    pub settings: ProxySettings,
}

/// The forwarding values of one `Host`: `X-Forwarded-Host` and the `Forwarded` element.
type HostValues = (HeaderValue, Option<HeaderValue>, HeaderValue);

/// Facts about one client connection.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: Option<TlsInfo>,
    /// The peer's address as an `X-Forwarded-For` hop, written once per connection.
    forwarded_for: HeaderValue,
    /// The `Forwarded` element `for=<peer>;proto=<scheme>`, written once per connection.
    forwarded: HeaderValue,
    /// The peer is in `trusted_proxies`: its forwarding headers are believed and kept.
    trusted: bool,
    /// The forwarding values written for the last `Host` on this connection (a client
    /// sends the same one on every request): `Host`, `X-Forwarded-Host`, `Forwarded`.
    last_host: std::sync::Mutex<Option<HostValues>>,
    /// The same as request-head lines (see [`forwarding_lines`]), for the last `Host`.
    last_lines: std::sync::Mutex<Option<(Option<HeaderValue>, Bytes)>>,
}

impl ConnInfo {
    /// The facts of a connection from `peer`, over TLS when `tls` is given; `trusted` are
    /// the proxies whose forwarding headers are believed.
    pub(crate) fn new(peer: SocketAddr, tls: Option<TlsInfo>, trusted: &[IpNet]) -> ConnInfo {
        let proto = if tls.is_some() { "https" } else { "http" };
        let ip = peer.ip();
        let node = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("\"[{v6}]\""),
        };
        // Both are ASCII digits, dots, colons, brackets and quotes: always valid values.
        let value = |text: String| {
            HeaderValue::from_maybe_shared(Bytes::from(text))
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        };
        ConnInfo {
            peer,
            tls,
            forwarded_for: value(ip.to_string()),
            forwarded: value(format!("for={node};proto={proto}")),
            trusted: trusted.iter().any(|n| n.contains(&ip)),
            last_host: std::sync::Mutex::new(None),
            last_lines: std::sync::Mutex::new(None),
        }
    }
}

struct ActiveGuard<'a>(&'a GatewayMetrics);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active_requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Handles one request from the client. Never fails: every problem becomes a response.
pub(crate) async fn handle(
    state: &Arc<ProxyState>,
    conn: &ConnInfo,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    state
        .metrics
        .active_requests
        .fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(&state.metrics);
    if let Err(problem) = check_host(&req) {
        tracing::debug!(peer = %conn.peer, "refused: {problem}");
        state.metrics.unmatched.count_status(400);
        return local(LocalResponse::text(
            StatusCode::BAD_REQUEST,
            format!("Bad request: {problem}.\n"),
        ));
    }
    let table = state.table.load_full();
    let (parts, body) = req.into_parts();
    let Some(index) = table.route_index(&parts) else {
        let response = match &table.default_upstream {
            Some(upstream) => {
                forward(state, upstream, parts, body, conn, &state.metrics.unmatched).await
            }
            None => local(LocalResponse::text(
                state.settings.default_status,
                format!("{}\n", state.settings.default_status),
            )),
        };
        state
            .metrics
            .unmatched
            .count_status(response.status().as_u16());
        return response;
    };
    let route = &table.routes[index];
    let response = if route.chain.is_empty() {
        forward(state, &route.upstream, parts, body, conn, &route.stats).await
    } else {
        // Boxed: the filter path's state is large, and the plain path should not carry
        // (and move) it in every request's future.
        let client_ip = if conn.trusted {
            client_ip(conn.peer, &parts.headers, &state.settings.trusted_proxies)
        } else {
            conn.peer.ip()
        };
        Box::pin(run_exchange(
            state, &table, index, parts, body, conn, client_ip,
        ))
        .await
    };
    route.stats.count_status(response.status().as_u16());
    response
}

/// An HTTP/1.1 request must carry exactly one `Host`, a valid `host[:port]` without
/// user info (RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code
/// to any HTTP/1.1 request message that lacks a Host header field and to any request
/// message that contains more than one Host header field line or a Host header field with
/// an invalid field value"). Routing, `X-Forwarded-Host` and the upstream's `Host` all
/// come from it. HTTP/1.0 may omit it; HTTP/2 carries `:authority`, and a `Host` it sends
/// must be valid too.
fn check_host<B>(req: &Request<B>) -> Result<(), &'static str> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let Some(host) = hosts.next() else {
        return if req.version() == Version::HTTP_11 {
            Err("an HTTP/1.1 request needs a Host header")
        } else {
            Ok(())
        };
    };
    if hosts.next().is_some() {
        return Err("more than one Host header");
    }
    if !valid_host(host.as_bytes()) {
        return Err("the Host header is not a valid host[:port]");
    }
    Ok(())
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP literal in brackets
/// (hex digits, colons, dots), or a non-empty reg-name / IPv4 address (unreserved
/// characters, percent signs, sub-delimiters), then optionally `:` and at most 5 digits.
/// No user info, path, query, spaces or controls. Checked by hand: this runs on every
/// request.
fn valid_host(bytes: &[u8]) -> bool {
    let (host_ok, rest) = if let Some(literal) = bytes.strip_prefix(b"[") {
        let Some(end) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let inside = &literal[..end];
        (
            !inside.is_empty()
                && inside
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
            &literal[end + 1..],
        )
    } else {
        let end = bytes.iter().position(|&b| b == b':').unwrap_or(bytes.len());
        let name = &bytes[..end];
        (
            !name.is_empty()
                && name.iter().all(|&b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'-' | b'.'
                                | b'_'
                                | b'~'
                                | b'%'
                                | b'!'
                                | b'$'
                                | b'&'
                                | b'\''
                                | b'('
                                | b')'
                                | b'*'
                                | b'+'
                                | b','
                                | b';'
                                | b'='
                        )
                }),
            &bytes[end..],
        )
    };
    host_ok
        && match rest.split_first() {
            None => true,
            Some((b':', port)) => port.len() <= 5 && port.iter().all(u8::is_ascii_digit),
            Some(_) => false,
        }
}

/// The exchange for a route with filters: every phase, in the documented order.
async fn run_exchange(
    state: &Arc<ProxyState>,
    table: &Arc<RoutingTable>,
    index: usize,
    parts: request::Parts,
    body: ProxyBody,
    conn: &ConnInfo,
    client_ip: IpAddr,
) -> Response<ProxyBody> {
    let route = &table.routes[index];
    let chain = &route.chain;
    let env = PhaseEnv {
        services: &state.services,
        metrics: &state.metrics,
        policy_version: table.version,
    };
    let mut view = RequestView::new(
        parts,
        conn.peer,
        client_ip,
        conn.tls.clone(),
        Some(Arc::clone(&route.service_id)),
    );
    let mut attributes = Attributes::default();
    // The log and the response phases read the request after it was forwarded: keep a copy.
    let keep_request = chain.wants(Phase::Log)
        || chain.wants(Phase::ResponseHeaders)
        || chain.response_body_limit.is_some();
    let mut stop = None;
    if chain.wants(Phase::RequestHeaders)
        && let PhaseOutcome::Stop(d) = run_phase(
            chain,
            Phase::RequestHeaders,
            &env,
            &mut view,
            None,
            &mut attributes,
        )
        .await
    {
        stop = Some(d);
    }
    let mut body = body;
    if stop.is_none()
        && let Some(limit) = chain.request_body_limit
    {
        match buffer_prefix(body, limit, &state.metrics).await {
            Ok((seen, rest)) => {
                view.body = Some(seen);
                body = rest;
            }
            Err(e) => {
                tracing::debug!(peer = %conn.peer, "client body failed while buffering: {e}");
                return local(LocalResponse::text(
                    StatusCode::BAD_REQUEST,
                    "Bad request body.\n",
                ));
            }
        }
        if let PhaseOutcome::Stop(d) = run_phase(
            chain,
            Phase::RequestBody,
            &env,
            &mut view,
            None,
            &mut attributes,
        )
        .await
        {
            stop = Some(d);
        }
        if view.body_replaced
            && let Some(b) = &view.body
        {
            body = ProxyBody::full(b.bytes.clone());
        }
    }

    let mut response = match stop {
        Some(Decision::Respond(resp, _) | Decision::Serve(resp)) => local(resp),
        Some(Decision::Notice(Notice::Redirect { location }, _)) => redirect(&location),
        Some(Decision::Notice(Notice::Forward { path }, reason)) => {
            // Replace the request by GET <notice page>; the client's body is not sent.
            let parts = &mut view.parts;
            parts.method = Method::GET;
            parts.uri = match path.parse::<http::uri::PathAndQuery>() {
                Ok(pq) => http::Uri::from(pq),
                Err(_) => http::Uri::from_static("/"),
            };
            for h in [
                header::CONTENT_LENGTH,
                header::CONTENT_TYPE,
                header::TRANSFER_ENCODING,
            ] {
                parts.headers.remove(h);
            }
            // The notice page is a plain page, never a tunnel.
            parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
            if let Ok(v) = HeaderValue::from_str(&reason.rule) {
                parts
                    .headers
                    .insert(HeaderName::from_static("x-haetae-notice"), v);
            }
            let parts = take_parts(&mut view, keep_request);
            forward(
                state,
                &route.upstream,
                parts,
                ProxyBody::empty(),
                conn,
                &route.stats,
            )
            .await
        }
        Some(Decision::Continue | Decision::Modify(_)) | None => {
            let parts = take_parts(&mut view, keep_request);
            forward(state, &route.upstream, parts, body, conn, &route.stats).await
        }
    };

    if chain.wants(Phase::ResponseHeaders) || chain.response_body_limit.is_some() {
        response = response_phases(state, &env, chain, &mut view, &mut attributes, response).await;
    }

    if chain.wants(Phase::Log) {
        attributes.set("response.status", response.status().as_str());
        let state = Arc::clone(state);
        let table = Arc::clone(table);
        let mut log = Box::pin(async move {
            let env = PhaseEnv {
                services: &state.services,
                metrics: &state.metrics,
                policy_version: table.version,
            };
            let chain = &table.routes[index].chain;
            let _ = run_phase(chain, Phase::Log, &env, &mut view, None, &mut attributes).await;
        });
        // A log phase that does not wait (the usual case: build an event, queue it) ends
        // in this first poll and costs no task; one that waits finishes in its own task
        // (it is polled again there, with a real waker).
        if log
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
            .is_pending()
        {
            tokio::spawn(log);
        }
    }
    response
}

/// Runs the response phases on an upstream (or notice) response.
async fn response_phases(
    state: &ProxyState,
    env: &PhaseEnv<'_>,
    chain: &crate::chain::FilterChain,
    view: &mut RequestView,
    attributes: &mut Attributes,
    response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    let (parts, body) = response.into_parts();
    let mut rv = ResponseView { parts, body: None };
    let mut body = body;
    let mut stop = None;
    if chain.wants(Phase::ResponseHeaders)
        && let PhaseOutcome::Stop(d) = run_phase(
            chain,
            Phase::ResponseHeaders,
            env,
            view,
            Some(&mut rv),
            attributes,
        )
        .await
    {
        stop = Some(d);
    }
    if stop.is_none()
        && let Some(limit) = chain.response_body_limit
        && matches!(body, ProxyBody::Streaming(_) | ProxyBody::Upstream(_))
    {
        match buffer_prefix(body, limit, &state.metrics).await {
            Ok((seen, rest)) => {
                rv.body = Some(seen);
                body = rest;
            }
            Err(e) => {
                tracing::debug!("upstream body failed while buffering: {e}");
                return local(LocalResponse::text(
                    StatusCode::BAD_GATEWAY,
                    "Bad gateway.\n",
                ));
            }
        }
        if let PhaseOutcome::Stop(d) = run_phase(
            chain,
            Phase::ResponseBody,
            env,
            view,
            Some(&mut rv),
            attributes,
        )
        .await
        {
            stop = Some(d);
        }
    }
    match stop {
        Some(Decision::Respond(resp, _) | Decision::Serve(resp)) => local(resp),
        Some(Decision::Notice(
            Notice::Redirect { location } | Notice::Forward { path: location },
            _,
        )) => redirect(&location),
        _ => Response::from_parts(rv.parts, body),
    }
}

/// The request parts for forwarding: moved out of the view, or cloned when the log phase
/// still needs the view.
fn take_parts(view: &mut RequestView, keep: bool) -> request::Parts {
    if keep {
        let p = &view.parts;
        // Field by field: `Request::builder` would check again what is already valid.
        let mut parts = Request::new(()).into_parts().0;
        parts.method = p.method.clone();
        parts.uri = p.uri.clone();
        parts.version = p.version;
        parts.headers = p.headers.clone();
        // The extensions carry the client connection's upgrade handle (WebSocket): they go
        // with the forwarded request; the log phase does not need them.
        parts.extensions = std::mem::take(&mut view.parts.extensions);
        parts
    } else {
        std::mem::replace(&mut view.parts, Request::new(()).into_parts().0)
    }
}

/// Reads up to `limit` body bytes (plus the rest of the frame that crosses it) for a filter,
/// and returns the view and the body to forward (the buffered start, then the rest).
async fn buffer_prefix(
    mut incoming: ProxyBody,
    limit: usize,
    metrics: &GatewayMetrics,
) -> Result<(BodyView, ProxyBody), BoxError> {
    let hint = usize::try_from(incoming.size_hint().upper().unwrap_or(0)).unwrap_or(limit);
    let mut buf = BytesMut::with_capacity(hint.min(limit));
    let mut trailers = None;
    let mut complete = false;
    loop {
        if buf.len() >= limit {
            break;
        }
        match incoming.frame().await {
            None => {
                complete = true;
                break;
            }
            Some(frame) => match frame?.into_data() {
                Ok(data) => buf.extend_from_slice(&data),
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    complete = true;
                    break;
                }
            },
        }
    }
    if !complete && incoming.is_end_stream() {
        complete = true;
    }
    metrics
        .body_buffered_bytes
        .fetch_add(buf.len() as u64, Ordering::Relaxed);
    let all = buf.freeze();
    let seen = BodyView {
        bytes: all.slice(..all.len().min(limit)),
        complete: complete && all.len() <= limit,
    };
    let body = ProxyBody::Prefixed {
        prefix: (!all.is_empty()).then_some(all),
        trailers,
        rest: (!complete).then(|| Box::new(incoming)),
    };
    Ok((seen, body))
}

/// Sends the request upstream and returns its response, or a 502/504 of our own.
async fn forward(
    state: &ProxyState,
    upstream: &Upstream,
    mut parts: request::Parts,
    body: ProxyBody,
    conn: &ConnInfo,
    stats: &ServiceStats,
) -> Response<ProxyBody> {
    let protocol = upstream.protocol();
    // An HTTP/1.1 upgrade (WebSocket) is passed through: the handshake goes upstream with
    // its `Connection: upgrade` and `Upgrade`, and on `101` both sides are joined. Over
    // HTTP/2 (h2c; TLS may negotiate it) there is no such upgrade.
    let upgrade = if protocol == UpstreamProtocol::H2c {
        None
    } else {
        requested_upgrade(&parts).and_then(|protocol| {
            parts
                .extensions
                .remove::<hyper::upgrade::OnUpgrade>()
                .map(|client| (protocol, client))
        })
    };
    // Plain HTTP/1.1 upstreams go through the gateway's own pool and client (origin-form
    // target); CONNECT (authority-form), upgrades (hyper joins the upgraded connections)
    // and the other protocols through hyper-util's client.
    let pooled =
        protocol == UpstreamProtocol::Http1 && parts.method != Method::CONNECT && upgrade.is_none();
    let target = if pooled {
        upstream.origin_target(parts.uri.path_and_query())
    } else {
        upstream.target(parts.uri.path_and_query())
    };
    let uri = match target {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("cannot build the upstream URI: {e}");
            return local(LocalResponse::text(
                StatusCode::BAD_REQUEST,
                "Bad request target.\n",
            ));
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    if let Some((protocol, _)) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol.clone());
    }
    // To a pooled upstream, the forwarding headers of an untrusted peer (the usual case)
    // are written into the request head as lines rendered once per connection and `Host`;
    // otherwise they go into the header map.
    let forwarding = if pooled && !conn.trusted {
        Some(forwarding_lines(&mut parts, conn))
    } else {
        add_forwarding_headers(&mut parts, conn);
        None
    };
    if protocol == UpstreamProtocol::Http1 {
        // Plain HTTP/1.1 upstreams see the client's `Host` (or, from a client that sent
        // none, the host of its absolute-form target, else the upstream's own).
        if !parts.headers.contains_key(header::HOST) {
            let host = parts
                .uri
                .authority()
                .unwrap_or_else(|| upstream.authority())
                .as_str();
            if let Ok(v) = HeaderValue::from_str(host) {
                parts.headers.insert(header::HOST, v);
            }
        }
    } else {
        // HTTP/2 carries the target in `:authority`, which is the upstream's own name, and
        // forbids a `Host` that differs from it (RFC 9113 §8.3.1); over TLS the upstream
        // is addressed by the name its certificate is checked for, and an HTTP/1.1
        // connection gets that name as `Host`. The client's host stays in
        // `X-Forwarded-Host` and `Forwarded: host=`.
        parts.headers.remove(header::HOST);
    }
    parts.uri = uri;
    parts.version = if protocol == UpstreamProtocol::H2c {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    let req = Request::from_parts(parts, body);
    let timeout = state.settings.upstream_timeout;
    let outcome = if pooled {
        let pool = upstream.pool(&state.pools);
        let extra = forwarding.as_deref().unwrap_or_default();
        match tokio::time::timeout(timeout, pool.send(req, extra)).await {
            Ok(Ok(response)) => Ok(Upstreamed::Pooled(response)),
            Ok(Err(e)) => Err(match &e {
                PoolError::Connect { .. } => ("connect", error_chain(&e)),
                PoolError::Request(_) => ("request", error_chain(&e)),
            }),
            Err(_) => Err(("timeout", String::new())),
        }
    } else {
        let sent = match protocol {
            UpstreamProtocol::H2c => state.h2c_client.request(req),
            UpstreamProtocol::Http1 | UpstreamProtocol::Tls => state.client.request(req),
        };
        match tokio::time::timeout(timeout, sent).await {
            Ok(Ok(response)) => Ok(Upstreamed::Hyper(response)),
            Ok(Err(e)) => Err((upstream_failure_kind(&e), error_chain(&e))),
            Err(_) => Err(("timeout", String::new())),
        }
    };
    let response = match outcome {
        Ok(r) => r,
        Err(("timeout", _)) => {
            stats.upstream_timeouts.fetch_add(1, Ordering::Relaxed);
            let detail = format!(
                "no response headers within {} ms (gateway.upstream_timeout_ms)",
                timeout.as_millis()
            );
            tracing::warn!(upstream = upstream.url(), "upstream timed out: {detail}");
            upstream_failed(state, upstream, stats, "timeout", &detail);
            return local(LocalResponse::text(
                StatusCode::GATEWAY_TIMEOUT,
                "Gateway timeout.\n",
            ));
        }
        Err((kind, detail)) => {
            if kind == "tls" {
                stats.upstream_tls_errors.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(
                upstream = upstream.url(),
                kind,
                "upstream request failed: {detail}"
            );
            upstream_failed(state, upstream, stats, kind, &detail);
            return local(LocalResponse::text(
                StatusCode::BAD_GATEWAY,
                "Bad gateway.\n",
            ));
        }
    };
    let (mut parts, body) = match response {
        Upstreamed::Hyper(response) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            return switch_protocols(state, upstream, response, upgrade);
        }
        Upstreamed::Hyper(response) => {
            let (parts, body) = response.into_parts();
            (parts, ProxyBody::Streaming(body))
        }
        Upstreamed::Pooled(response) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            // Upgrades do not take the pooled path: this 101 answers a request that did
            // not ask for one, and cannot be relayed (its connection is closed).
            tracing::warn!(
                upstream = upstream.url(),
                "upstream switched protocols without an upgrade request"
            );
            return local(LocalResponse::text(
                StatusCode::BAD_GATEWAY,
                "Bad gateway.\n",
            ));
        }
        Upstreamed::Pooled(response) => {
            let (parts, body) = response.into_parts();
            (parts, ProxyBody::Upstream(UpstreamBody(body)))
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body)
}

/// A response from the gateway's own HTTP/1.1 client or from hyper's.
enum Upstreamed {
    Pooled(Response<crate::h1::ResponseBody>),
    Hyper(Response<Incoming>),
}

/// What kind of upstream failure `e` is: `tls` (the handshake failed: an untrusted or
/// mismatched certificate, no common version), `connect` (refused, unreachable, reset
/// before the request was sent), or `request` (the connection failed during the
/// exchange).
fn upstream_failure_kind(e: &hyper_util::client::legacy::Error) -> &'static str {
    // The TLS connector wraps the handshake's `rustls::Error` in an `io::Error`, itself in
    // another; `io::Error::source` skips the wrapped error, so descend with `get_ref`.
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut depth = 0;
    while let Some(s) = next
        && depth < 16
    {
        if s.is::<rustls::Error>() {
            return "tls";
        }
        next = match s.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
        depth += 1;
    }
    if e.is_connect() { "connect" } else { "request" }
}

/// An error and its causes on one line: `client error (Connect): invalid peer
/// certificate: UnknownIssuer`.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Emits `gateway.upstream_failed` (at most one per second per service; the count of
/// failures held back since the last one rides along).
fn upstream_failed(
    state: &ProxyState,
    upstream: &Upstream,
    stats: &ServiceStats,
    kind: &'static str,
    detail: &str,
) {
    let Some(held) = stats.upstream_event_due() else {
        return;
    };
    let mut event =
        haetae_core::Event::new(haetae_core::Component::Gateway, "gateway.upstream_failed")
            .instance(&*state.services.instance)
            .kind(haetae_core::EventKind::Event)
            .category(haetae_core::EventCategory::Network)
            .outcome(haetae_core::Outcome::Failure)
            .severity(if kind == "tls" {
                haetae_core::Severity::High
            } else {
                haetae_core::Severity::Medium
            })
            .label("upstream", upstream.url())
            .label("upstream.protocol", upstream.protocol().as_str())
            .label("failure", kind)
            .message(format!(
                "upstream {} failed ({kind}): {detail}",
                upstream.url()
            ));
    if !stats.service_id.is_empty() {
        event = event.service_id(&*stats.service_id);
    }
    if held > 0 {
        event = event.label("failures_not_reported", held.to_string());
    }
    if state.services.events.emit(event) {
        state.metrics.events_emitted.fetch_add(1, Ordering::Relaxed);
    } else {
        state.metrics.events_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The protocol a request asks to upgrade to, when the gateway lets it through: HTTP/1.1
/// with `Upgrade` named in `Connection` (RFC 9110 §7.8) and exactly one `Upgrade` value,
/// `websocket`. Any other upgrade (`h2c`, which would let a client speak HTTP/2 to the
/// upstream past the filters, `TLS/1.0`, a list of protocols) is not relayed: the request
/// goes upstream as a plain request, its `Upgrade` and `Connection` stripped with the other
/// hop-by-hop headers. HTTP/2 has no such upgrade.
fn requested_upgrade(parts: &request::Parts) -> Option<HeaderValue> {
    if parts.version != Version::HTTP_11 {
        return None;
    }
    let listed = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !listed {
        return None;
    }
    let mut values = parts.headers.get_all(header::UPGRADE).iter();
    let value = values.next()?;
    (values.next().is_none()
        && value
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"websocket"))
    .then(|| HeaderValue::from_static("websocket"))
}

/// The upstream agreed to switch protocols: answer the client with the upstream's `101`
/// and join the two upgraded connections byte for byte until either side closes.
fn switch_protocols(
    state: &ProxyState,
    upstream: &Upstream,
    mut response: Response<Incoming>,
    upgrade: Option<(HeaderValue, hyper::upgrade::OnUpgrade)>,
) -> Response<ProxyBody> {
    let Some((_, client)) = upgrade else {
        // A 101 the client did not ask for cannot be relayed.
        tracing::warn!(
            upstream = upstream.url(),
            "upstream switched protocols without an upgrade request"
        );
        return local(LocalResponse::text(
            StatusCode::BAD_GATEWAY,
            "Bad gateway.\n",
        ));
    };
    let upstream_side = hyper::upgrade::on(&mut response);
    let (mut parts, _) = response.into_parts();
    let protocol = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(p) = protocol {
        parts.headers.insert(header::UPGRADE, p);
    }
    let metrics = Arc::clone(&state.metrics);
    metrics.upgrades.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        metrics.tunnels_active.fetch_add(1, Ordering::Relaxed);
        match tokio::try_join!(client, upstream_side) {
            Ok((client, upstream)) => {
                let mut client = hyper_util::rt::TokioIo::new(client);
                let mut upstream = hyper_util::rt::TokioIo::new(upstream);
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!("upgraded connection ended: {e}");
                }
            }
            Err(e) => tracing::debug!("protocol switch failed: {e}"),
        }
        metrics.tunnels_active.fetch_sub(1, Ordering::Relaxed);
    });
    Response::from_parts(parts, ProxyBody::empty())
}

/// A response the gateway writes itself.
pub(crate) fn local(resp: LocalResponse) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(resp.body));
    *r.status_mut() = resp.status;
    for (n, v) in resp.headers {
        r.headers_mut().append(n, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(location: &str) -> Response<ProxyBody> {
    let mut r = local(LocalResponse::text(StatusCode::FOUND, "Found.\n"));
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Applies one header modification.
pub(crate) fn apply_modification(headers: &mut HeaderMap, m: Modification) {
    match m {
        Modification::SetHeader(n, v) => {
            headers.insert(n, v);
        }
        Modification::AppendHeader(n, v) => {
            headers.append(n, v);
        }
        Modification::RemoveHeader(n) => {
            headers.remove(n);
        }
        // Bodies are replaced by the phase runner, not here.
        Modification::ReplaceBody(_) => {}
    }
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1): the fixed set (with `HTTP2-Settings`)
/// and any named in `Connection`. `TE: trailers` is kept (HTTP/2 upstreams need it).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names first: most messages carry none of these, and then nothing
    // is removed (each removal hashes the name again).
    if !headers.keys().any(|n| {
        n == header::CONNECTION
            || n == header::PROXY_AUTHENTICATE
            || n == header::PROXY_AUTHORIZATION
            || n == header::TRAILER
            || n == header::TRANSFER_ENCODING
            || n == header::UPGRADE
            || n == header::TE
            || n.as_str() == "keep-alive"
            || n.as_str() == "proxy-connection"
            || n.as_str() == "http2-settings"
    }) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for n in listed {
            headers.remove(n);
        }
    }
    for n in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(n);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    // Only meaningful with `Upgrade: h2c` (RFC 7540 §3.2), which is never relayed; removed
    // even when `Connection` does not name it.
    headers.remove("http2-settings");
    if headers
        .get(header::TE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// `X-Forwarded-Host` (the request's host without a port) and the `Forwarded` element
/// for a request on `conn`.
fn host_values(parts: &request::Parts, conn: &ConnInfo) -> (Option<HeaderValue>, HeaderValue) {
    // The host as one value: shared with the `Host` header when it carries no port.
    let host: Option<(HeaderValue, &str)> = {
        let full = parts.headers.get(header::HOST);
        match request_host(parts) {
            Some(h) if full.is_some_and(|f| f.as_bytes() == h.as_bytes()) => {
                full.cloned().map(|v| (v, h))
            }
            Some(h) => HeaderValue::from_str(h).ok().map(|v| (v, h)),
            None => None,
        }
    };
    let forwarded = host.as_ref().and_then(|(_, h)| {
        h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
            .then(|| {
                let base = conn.forwarded.as_bytes();
                let mut v = BytesMut::with_capacity(base.len() + 6 + h.len());
                v.extend_from_slice(base);
                v.extend_from_slice(b";host=");
                v.extend_from_slice(h.as_bytes());
                HeaderValue::from_maybe_shared(v.freeze()).ok()
            })
            .flatten()
    });
    (
        host.map(|(v, _)| v),
        forwarded.unwrap_or_else(|| conn.forwarded.clone()),
    )
}

/// Writes the forwarding headers. From a peer in `trusted_proxies` the client's own are
/// believed: the peer is appended to `X-Forwarded-For` (all its field lines joined) and a
/// `Forwarded` element (RFC 7239) is appended, and `X-Forwarded-Proto` and
/// `X-Forwarded-Host` are kept when present (they describe the request the trusted proxy
/// received) and set otherwise. From any other peer they are the client's claims and could
/// forge the address an upstream logs or trusts: all four are removed and the gateway's own
/// written — `X-Forwarded-For: <peer>`, `X-Forwarded-Proto`, `X-Forwarded-Host` (the
/// client's host, without a port; absent when there is none) and one `Forwarded` element.
fn add_forwarding_headers(parts: &mut request::Parts, conn: &ConnInfo) {
    let proto = if conn.tls.is_some() { "https" } else { "http" };
    let (host, forwarded) = match parts.headers.get(header::HOST) {
        Some(h) => {
            let mut last = conn
                .last_host
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*last {
                Some((k, host, fwd)) if k == h => (host.clone(), fwd.clone()),
                _ => {
                    let (host, fwd) = host_values(parts, conn);
                    *last = Some((h.clone(), host.clone(), fwd.clone()));
                    (host, fwd)
                }
            }
        }
        None => host_values(parts, conn),
    };
    let headers = &mut parts.headers;
    if !conn.trusted {
        // The usual case: one hash per header, nothing to join.
        headers.insert(X_FORWARDED_FOR, conn.forwarded_for.clone());
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        match host {
            Some(v) => {
                headers.insert(X_FORWARDED_HOST, v);
            }
            None => {
                headers.remove(X_FORWARDED_HOST);
            }
        }
        headers.insert(header::FORWARDED, forwarded);
        return;
    }
    // The connection's values were written once; a request only appends to them.
    let hop = conn.forwarded_for.as_bytes();
    let mut joined = BytesMut::new();
    for prev in headers.get_all(X_FORWARDED_FOR) {
        let prev = prev.as_bytes().trim_ascii();
        if !prev.is_empty() {
            joined.extend_from_slice(prev);
            joined.extend_from_slice(b", ");
        }
    }
    let xff = if joined.is_empty() {
        Some(conn.forwarded_for.clone())
    } else {
        joined.extend_from_slice(hop);
        HeaderValue::from_maybe_shared(joined.freeze()).ok()
    };
    match xff {
        Some(v) => {
            headers.insert(X_FORWARDED_FOR, v);
        }
        None => {
            headers.remove(X_FORWARDED_FOR);
        }
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !headers.contains_key(X_FORWARDED_HOST)
        && let Some(v) = host
    {
        headers.insert(X_FORWARDED_HOST, v);
    }
    headers.append(header::FORWARDED, forwarded);
}

/// The forwarding headers for a request from a peer that is not a trusted proxy, as
/// request-head lines — the values [`add_forwarding_headers`] would write into the map
/// (`X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` when there is a host,
/// `Forwarded`) — rendered once per connection and `Host` and reused; the client's own
/// are removed from the map. Saves four hashed inserts per request on the pooled path.
fn forwarding_lines(parts: &mut request::Parts, conn: &ConnInfo) -> Bytes {
    let headers = &mut parts.headers;
    if headers.keys().any(|n| {
        n == X_FORWARDED_FOR
            || n == X_FORWARDED_PROTO
            || n == X_FORWARDED_HOST
            || n == header::FORWARDED
    }) {
        headers.remove(X_FORWARDED_FOR);
        headers.remove(X_FORWARDED_PROTO);
        headers.remove(X_FORWARDED_HOST);
        headers.remove(header::FORWARDED);
    }
    let host = parts.headers.get(header::HOST);
    let mut last = conn
        .last_lines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((key, lines)) = &*last
        && key.as_ref() == host
    {
        return lines.clone();
    }
    let (x_host, forwarded) = host_values(parts, conn);
    let proto: &[u8] = if conn.tls.is_some() {
        b"https"
    } else {
        b"http"
    };
    let mut out = BytesMut::with_capacity(128);
    for (name, value) in [
        (
            &b"x-forwarded-for: "[..],
            Some(conn.forwarded_for.as_bytes()),
        ),
        (b"x-forwarded-proto: ", Some(proto)),
        (
            b"x-forwarded-host: ",
            x_host.as_ref().map(HeaderValue::as_bytes),
        ),
        (b"forwarded: ", Some(forwarded.as_bytes())),
    ] {
        if let Some(v) = value {
            out.extend_from_slice(name);
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
    let lines = out.freeze();
    *last = Some((host.cloned(), lines.clone()));
    lines
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` hop that is not itself trusted.
#[must_use]
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = peer.ip();
    if trusted.is_empty() || !trusted.iter().any(|n| n.contains(&peer_ip)) {
        return peer_ip;
    }
    let mut client = peer_ip;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for hop in text.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return client;
            };
            client = ip;
            if !trusted.iter().any(|n| n.contains(&ip)) {
                return client;
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
        let mut h = HeaderMap::new();
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut h);
        assert!(h.contains_key(header::TE));
    }

    #[test]
    fn host_values_are_checked_by_the_rfc_grammar() {
        for ok in [
            "bank.example",
            "bank.example:8443",
            "bank.example:",
            "127.0.0.1:80",
            "[::1]",
            "[2001:db8::1]:443",
            "xn--bcher-kva.example",
            "a_b~c%41",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "user@bank.example",
            "bank example",
            "bank.example/admin",
            "bank.example?x",
            "bank.example#x",
            "bank.example:80:80",
            "bank.example:123456",
            "bank.example:8a",
            "[::1",
            "[]",
            "[::1]x",
            "[fe80::1%eth0]",
            "bank\texample",
            "b\u{e4}nk.example",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn forwarding_headers_from_a_trusted_proxy_are_appended_to() {
        let trusted: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.1.1.1"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(
            header::FORWARDED,
            HeaderValue::from_static("for=198.51.100.1"),
        );
        h.insert(header::HOST, HeaderValue::from_static("bank.example:8443"));
        let conn = ConnInfo::new("192.0.2.9:1234".parse().unwrap(), None, &trusted);
        let h = forwarded_headers(h, &conn);
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 10.1.1.1, 192.0.2.9");
        assert_eq!(h["x-forwarded-proto"], "https", "the trusted proxy's");
        assert_eq!(h["x-forwarded-host"], "bank.example");
        let forwarded: Vec<&HeaderValue> = h.get_all(header::FORWARDED).iter().collect();
        assert_eq!(
            forwarded,
            [
                "for=198.51.100.1",
                "for=192.0.2.9;proto=http;host=bank.example"
            ]
        );
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_replaced() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let forged = || {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
            h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            h.insert(
                "x-forwarded-host",
                HeaderValue::from_static("admin.internal"),
            );
            h.insert(header::FORWARDED, HeaderValue::from_static("for=10.0.0.1"));
            h
        };
        let mut h = forged();
        h.insert(header::HOST, HeaderValue::from_static("bank.example:8443"));
        let conn = ConnInfo::new("192.0.2.9:1234".parse().unwrap(), None, &trusted);
        let h = forwarded_headers(h, &conn);
        assert_eq!(h["x-forwarded-for"], "192.0.2.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "bank.example");
        let forwarded: Vec<&HeaderValue> = h.get_all(header::FORWARDED).iter().collect();
        assert_eq!(forwarded, ["for=192.0.2.9;proto=http;host=bank.example"]);
        let v6 = ConnInfo::new(
            "[2001:db8::1]:443".parse().unwrap(),
            Some(TlsInfo::default()),
            &trusted,
        );
        let h = forwarded_headers(forged(), &v6);
        assert_eq!(h[header::FORWARDED], "for=\"[2001:db8::1]\";proto=https");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert!(!h.contains_key("x-forwarded-host"), "no host: none forged");
        // A host without a port is shared with `Host`.
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("bank.example"));
        let h = forwarded_headers(h, &v6);
        assert_eq!(h["x-forwarded-host"], "bank.example");
        assert_eq!(
            h[header::FORWARDED],
            "for=\"[2001:db8::1]\";proto=https;host=bank.example"
        );
    }

    fn forwarded_headers(headers: HeaderMap, conn: &ConnInfo) -> HeaderMap {
        let mut parts = Request::new(()).into_parts().0;
        parts.headers = headers;
        add_forwarding_headers(&mut parts, conn);
        parts.headers
    }

    #[test]
    fn the_client_ip_comes_from_forwarded_for_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.5, 10.0.0.2"),
        );
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let untrusted_peer: SocketAddr = "198.51.100.7:1".parse().unwrap();
        let proxy_peer: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert_eq!(client_ip(untrusted_peer, &h, &trusted), untrusted_peer.ip());
        assert_eq!(
            client_ip(proxy_peer, &h, &trusted),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy_peer, &h, &[]), proxy_peer.ip());
    }
}
