//! The gateway's own HTTP/1.1 server for client connections (plain TCP, and TLS that
//! negotiated `http/1.1` or no ALPN protocol): one task per connection that reads a
//! request head into a reused buffer, runs the request path on the same task (no service
//! future per request, no body channel between tasks), and writes the response — head and
//! a small body in one write. The next request is read only when the response has been
//! written (pipelined requests wait in the buffer).
//!
//! The request body streams from the socket as the request path reads it (a
//! [`ClientBody`]); nothing is buffered unless a filter asks. When the response has been
//! written and the body was not read to its end, a remaining `Content-Length` body of at
//! most [`DRAIN_MAX`] bytes is read and dropped; otherwise the response says
//! `Connection: close`, and the connection closes.
//!
//! Two kinds of connection go to hyper instead, with the bytes read so far replayed in
//! front of the socket: one that opens with the HTTP/2 preface (h2c with prior knowledge),
//! and one whose request asks for a WebSocket upgrade (hyper's upgrade machinery joins it
//! to the upstream's, see `proxy::switch_protocols`); the connection stays hyper's after
//! that.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response, Version, header};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::codec::{Chunked, Decoded};
use super::server_codec::{
    BodyFraming, H2_PREFACE, LAST_CHUNK, RequestError, RequestHead, ResponseFraming, encode_chunk,
    encode_refusal, encode_response_head, maybe_h2_preface, parse_request_head, response_framing,
};
use crate::proxy::{BoxError, ProxyBody};

/// The largest unread `Content-Length` request body read and dropped after the response
/// so that the connection can carry the next request; a larger one closes it.
pub(crate) const DRAIN_MAX: u64 = 64 * 1024;
/// Body data of a response up to this size is copied next to the head or its chunk
/// framing (one write); larger frames are written from where they are.
const COPY_BELOW: usize = 16 * 1024;
/// How much room a read makes in the read buffer.
const READ_CHUNK: usize = 16 * 1024;
/// The read buffer's size at the start of a connection.
const FIRST_READ: usize = 4 * 1024;
/// The interim response to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A client connection: plain TCP, or TLS on TCP.
pub(crate) enum ClientIo {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ClientIo::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientIo::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            ClientIo::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Tcp(s) => Pin::new(s).poll_flush(cx),
            ClientIo::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ClientIo::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// A connection handed to hyper: the bytes already read come first, then the socket.
pub(crate) struct Rewind {
    prefix: Bytes,
    io: ClientIo,
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Where a request body stands.
#[derive(Debug)]
enum BodyState {
    /// Read to its end, or there was none.
    Done,
    /// This many bytes still to read.
    Length(u64),
    /// Chunked, decoding.
    Chunked(Chunked),
    /// Malformed, or the client closed inside it: the connection cannot go on.
    Failed,
}

/// What the connection task and the request body share: the socket, the read buffer and
/// the body's progress. Locked only inside a poll (never across an await), so the body may
/// be read from another task (hyper's upstream client) while the connection writes.
struct Inner {
    io: Option<ClientIo>,
    rbuf: BytesMut,
    body: BodyState,
    /// The request whose body this is (a body kept past its request reads nothing).
    generation: u64,
    /// Bytes of `100 Continue` still to write before the body is read; `None` when none
    /// is owed.
    continue_left: Option<usize>,
}

struct Shared(Mutex<Inner>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The body of a request on a client connection, read from the socket as the request
/// path takes it. Malformed chunked framing and a client that closes inside the body are
/// errors.
pub(crate) struct ClientBody {
    shared: Arc<Shared>,
    generation: u64,
    /// The remaining length when known (`Content-Length`), for `size_hint`.
    hint: Option<u64>,
    done: bool,
}

impl std::fmt::Debug for ClientBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBody")
            .field("remaining", &self.hint)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the client closed the connection inside the request body")]
    Closed,
    #[error("malformed chunked request body: {0}")]
    Chunked(super::codec::ParseError),
    #[error("reading the request body: {0}")]
    Io(io::Error),
    #[error("the request body is no longer readable (its request has ended)")]
    Stale,
}

fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(READ_CHUNK);
    }
}

/// Reads once into `rbuf`: the byte count (0 at end of stream).
fn poll_read_into(
    io: &mut ClientIo,
    rbuf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    make_room(rbuf);
    let read = io.read_buf(rbuf);
    std::pin::pin!(read).poll(cx)
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut guard = this.shared.lock();
        let inner = &mut *guard;
        macro_rules! fail {
            ($e:expr) => {{
                inner.body = BodyState::Failed;
                this.done = true;
                this.hint = Some(0);
                return Poll::Ready(Some(Err(Box::new($e))));
            }};
        }
        if inner.generation != this.generation {
            // The connection has moved on: the state is another request's, left alone.
            this.done = true;
            this.hint = Some(0);
            return Poll::Ready(Some(Err(Box::new(BodyError::Stale))));
        }
        let Some(io) = inner.io.as_mut() else {
            fail!(BodyError::Stale)
        };
        // `100 Continue` first: the client sends the body only after it.
        if let Some(left) = inner.continue_left {
            let mut left = left;
            while left > 0 {
                let from = CONTINUE.len() - left;
                match Pin::new(&mut *io).poll_write(cx, &CONTINUE[from..]) {
                    Poll::Ready(Ok(0)) => {
                        fail!(BodyError::Io(io::ErrorKind::WriteZero.into()))
                    }
                    Poll::Ready(Ok(n)) => left -= n,
                    Poll::Ready(Err(e)) => fail!(BodyError::Io(e)),
                    Poll::Pending => {
                        inner.continue_left = Some(left);
                        return Poll::Pending;
                    }
                }
            }
            if let Poll::Ready(Err(e)) = Pin::new(&mut *io).poll_flush(cx) {
                fail!(BodyError::Io(e))
            }
            inner.continue_left = None;
        }
        loop {
            match &mut inner.body {
                BodyState::Done => {
                    this.done = true;
                    this.hint = Some(0);
                    return Poll::Ready(None);
                }
                BodyState::Failed => fail!(BodyError::Stale),
                BodyState::Length(left) => {
                    if !inner.rbuf.is_empty() {
                        let n = usize::try_from(*left)
                            .map_or(inner.rbuf.len(), |l| l.min(inner.rbuf.len()));
                        let data = inner.rbuf.split_to(n).freeze();
                        *left -= n as u64;
                        this.hint = Some(*left);
                        if *left == 0 {
                            inner.body = BodyState::Done;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                BodyState::Chunked(decoder) => match decoder.decode(&mut inner.rbuf) {
                    Ok(Decoded::Data(d)) => return Poll::Ready(Some(Ok(Frame::data(d)))),
                    Ok(Decoded::Done) => {
                        inner.body = BodyState::Done;
                        continue;
                    }
                    Ok(Decoded::NeedMore) => {}
                    Err(e) => fail!(BodyError::Chunked(e)),
                },
            }
            let Some(io) = inner.io.as_mut() else {
                fail!(BodyError::Stale)
            };
            match poll_read_into(io, &mut inner.rbuf, cx) {
                Poll::Ready(Ok(0)) => fail!(BodyError::Closed),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => fail!(BodyError::Io(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.hint == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.hint {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// What a connection needs from the listener.
pub(crate) struct ServeCtx {
    /// The client-side header timeout (`gateway.client_header_timeout_ms`): from the moment
    /// the connection waits for a request until its head is complete.
    pub header_timeout: Duration,
    /// Turns `true` when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// What runs a request, and what takes over a connection hyper must serve.
pub(crate) trait Service {
    /// Answers one request; never fails (every problem is a response).
    fn call(&self, req: Request<ProxyBody>) -> impl Future<Output = Response<ProxyBody>> + Send;
    /// Serves the rest of the connection with hyper (h2c, WebSocket upgrades).
    fn hand_over(self, io: Rewind) -> impl Future<Output = ()> + Send;
}

/// Serves one client connection until it closes, the client asks to close, a request is
/// refused, or the gateway shuts down.
pub(crate) async fn serve<S: Service>(io: ClientIo, service: S, mut ctx: ServeCtx) {
    let shared = Arc::new(Shared(Mutex::new(Inner {
        io: Some(io),
        rbuf: BytesMut::with_capacity(FIRST_READ),
        body: BodyState::Done,
        generation: 0,
        continue_left: None,
    })));
    let mut wbuf = BytesMut::with_capacity(FIRST_READ);
    let mut first = true;
    let timer = tokio::time::sleep(ctx.header_timeout);
    tokio::pin!(timer);
    loop {
        // The head: parsed from what is buffered, read for until complete or timed out.
        timer
            .as_mut()
            .reset(tokio::time::Instant::now() + ctx.header_timeout);
        let head = loop {
            let step = {
                let mut inner = shared.lock();
                if first && maybe_h2_preface(&inner.rbuf) {
                    if inner.rbuf.len() >= H2_PREFACE.len() {
                        let prefix = inner.rbuf.split().freeze();
                        match inner.io.take() {
                            Some(io) => Step::HandOver(Rewind { prefix, io }),
                            None => return,
                        }
                    } else {
                        Step::Read
                    }
                } else {
                    match parse_request_head(&mut inner.rbuf) {
                        Ok(Some(head)) => Step::Head(head),
                        Ok(None) => Step::Read,
                        Err(e) => Step::Refuse(e),
                    }
                }
            };
            match step {
                Step::Head(head) => break head,
                Step::HandOver(io) => {
                    service.hand_over(io).await;
                    return;
                }
                Step::Refuse(e) => {
                    refuse(&shared, &mut wbuf, &e).await;
                    return;
                }
                Step::Read => {}
            }
            let idle = shared.lock().rbuf.is_empty();
            let read = std::future::poll_fn(|cx| {
                let mut inner = shared.lock();
                let inner = &mut *inner;
                match inner.io.as_mut() {
                    Some(io) => poll_read_into(io, &mut inner.rbuf, cx),
                    None => Poll::Ready(Ok(0)),
                }
            });
            tokio::select! {
                biased;
                n = read => match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                () = &mut timer => {
                    tracing::debug!("client request head not complete within {:?}", ctx.header_timeout);
                    return;
                }
                // An idle keep-alive connection closes at shutdown; one inside a head
                // finishes its request first.
                _ = ctx.shutdown.changed(), if idle => return,
            }
        };
        first = false;
        if websocket_upgrade(&head) {
            // hyper reads this head again (its bytes, then whatever followed them).
            let io = {
                let mut inner = shared.lock();
                let rest = inner.rbuf.split();
                let mut prefix = BytesMut::with_capacity(head.raw.len() + rest.len());
                prefix.extend_from_slice(&head.raw);
                prefix.extend_from_slice(&rest);
                inner.io.take().map(|io| Rewind {
                    prefix: prefix.freeze(),
                    io,
                })
            };
            if let Some(io) = io {
                service.hand_over(io).await;
            }
            return;
        }
        let RequestHead {
            method,
            uri,
            version,
            headers,
            framing,
            keep_alive,
            expect_continue,
            raw: _,
        } = head;
        let body = {
            let mut inner = shared.lock();
            inner.generation += 1;
            inner.continue_left = None;
            match framing {
                BodyFraming::None => {
                    inner.body = BodyState::Done;
                    ProxyBody::empty()
                }
                BodyFraming::Length(_) | BodyFraming::Chunked => {
                    let (state, hint) = match framing {
                        BodyFraming::Length(n) => (BodyState::Length(n), Some(n)),
                        _ => (BodyState::Chunked(Chunked::new()), None),
                    };
                    inner.body = state;
                    if expect_continue {
                        inner.continue_left = Some(CONTINUE.len());
                    }
                    ProxyBody::Client(crate::proxy::ClientBody(ClientBody {
                        shared: Arc::clone(&shared),
                        generation: inner.generation,
                        hint,
                        done: false,
                    }))
                }
            }
        };
        let mut request = Request::new(body);
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri;
        *request.version_mut() = version;
        *request.headers_mut() = headers;
        let response = service.call(request).await;

        // The answer: can the connection carry another request after it?
        let (parts, mut body) = response.into_parts();
        let framing = response_framing(
            &method,
            version,
            parts.status,
            &parts.headers,
            body.size_hint().exact(),
        );
        let (request_done, drain) = {
            let inner = shared.lock();
            match inner.body {
                BodyState::Done => (true, 0),
                BodyState::Length(n) if n <= DRAIN_MAX && inner.continue_left.is_none() => {
                    (false, n)
                }
                _ => (false, u64::MAX),
            }
        };
        let shutting_down = *ctx.shutdown.borrow();
        let keep = keep_alive
            && (request_done || drain != u64::MAX)
            && framing != ResponseFraming::Close
            && !shutting_down;
        let connection: Option<&'static [u8]> = if !keep {
            Some(b"close")
        } else if version == Version::HTTP_10 {
            Some(b"keep-alive")
        } else {
            None
        };
        wbuf.clear();
        encode_response_head(
            &mut wbuf,
            parts.status,
            &parts.headers,
            framing,
            connection,
            Some(&date_now()),
        );
        drop(parts);
        let complete = match write_body(&shared, &mut wbuf, &mut body, framing).await {
            Ok(complete) => complete,
            Err(e) => {
                tracing::debug!("writing the response: {e}");
                return;
            }
        };
        drop(body);
        if !keep || !complete {
            close(&shared, !request_done).await;
            return;
        }
        if !request_done && !drain_body(&shared, drain, ctx.header_timeout).await {
            close(&shared, true).await;
            return;
        }
    }
}

/// What the head loop does next.
// A temporary on the connection task's stack: boxing the head would cost an allocation
// per request.
#[allow(clippy::large_enum_variant)]
enum Step {
    Head(RequestHead),
    Read,
    Refuse(RequestError),
    HandOver(Rewind),
}

/// The request asks for a WebSocket upgrade the gateway relays (see
/// `proxy::requested_upgrade`): HTTP/1.1, `Upgrade` named in `Connection`, one `Upgrade:
/// websocket`.
fn websocket_upgrade(head: &RequestHead) -> bool {
    if head.version != Version::HTTP_11 || !head.headers.contains_key(header::UPGRADE) {
        return false;
    }
    let listed = head
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let mut values = head.headers.get_all(header::UPGRADE).iter();
    listed
        && values
            .next()
            .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"websocket"))
        && values.next().is_none()
}

/// Writes all of `buf` (and flushes).
async fn write_all(shared: &Shared, buf: &[u8]) -> io::Result<()> {
    let mut sent = 0;
    std::future::poll_fn(|cx| {
        let mut inner = shared.lock();
        let Some(io) = inner.io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        while sent < buf.len() {
            match Pin::new(&mut *io).poll_write(cx, &buf[sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut *io).poll_flush(cx)
    })
    .await
}

/// Writes the head in `wbuf` and the body with `framing`. `Ok(false)`: the body ended
/// early or broke (the response is incomplete; the connection must close).
async fn write_body(
    shared: &Shared,
    wbuf: &mut BytesMut,
    body: &mut ProxyBody,
    framing: ResponseFraming,
) -> io::Result<bool> {
    if framing == ResponseFraming::Bodiless {
        write_all(shared, wbuf).await?;
        return Ok(true);
    }
    let mut left = match framing {
        ResponseFraming::Length(n) => n,
        _ => u64::MAX,
    };
    let chunked = framing == ResponseFraming::Chunked;
    let mut ended = false;
    let mut broken = false;
    // What the body has ready now goes with the head; then the head is written even when
    // the body has nothing yet (a slow upstream, a stream of events).
    loop {
        if left == 0 || body.is_end_stream() {
            ended = true;
            break;
        }
        let polled =
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await;
        match polled {
            Poll::Pending => break,
            Poll::Ready(None) => {
                ended = true;
                break;
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!("response body failed: {e}");
                broken = true;
                break;
            }
            Poll::Ready(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue; // trailers are not relayed
                };
                let data = clip(data, &mut left, &mut broken);
                if data.len() < COPY_BELOW {
                    if chunked {
                        encode_chunk(wbuf, &data);
                    } else {
                        wbuf.extend_from_slice(&data);
                    }
                } else {
                    write_all(shared, wbuf).await?;
                    wbuf.clear();
                    write_data(shared, wbuf, &data, chunked).await?;
                }
                if broken {
                    break;
                }
            }
        }
    }
    if ended && chunked {
        wbuf.extend_from_slice(LAST_CHUNK);
    }
    write_all(shared, wbuf).await?;
    wbuf.clear();
    if ended || broken {
        return Ok(ended && !broken && (left == 0 || left == u64::MAX));
    }
    // The rest streams as it comes.
    use http_body_util::BodyExt;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!("response body failed: {e}");
                return Ok(false);
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let data = clip(data, &mut left, &mut broken);
        write_data(shared, wbuf, &data, chunked).await?;
        if broken {
            return Ok(false);
        }
        if left == 0 {
            return Ok(true);
        }
    }
    if chunked {
        write_all(shared, LAST_CHUNK).await?;
    }
    Ok(left == 0 || left == u64::MAX)
}

/// Cuts `data` at the announced length; more than announced breaks the response.
fn clip(mut data: Bytes, left: &mut u64, broken: &mut bool) -> Bytes {
    if *left != u64::MAX {
        if data.len() as u64 > *left {
            data.truncate(usize::try_from(*left).unwrap_or(0));
            *broken = true;
        }
        *left -= data.len() as u64;
    }
    data
}

/// Writes one piece of body: a chunk (framing copied, large data written from where it is)
/// or the bytes.
async fn write_data(
    shared: &Shared,
    wbuf: &mut BytesMut,
    data: &[u8],
    chunked: bool,
) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    if !chunked {
        return write_all(shared, data).await;
    }
    wbuf.clear();
    if data.len() < COPY_BELOW {
        encode_chunk(wbuf, data);
        write_all(shared, wbuf).await?;
    } else {
        super::codec::push_chunk_size(wbuf, data.len() as u64);
        write_all(shared, wbuf).await?;
        write_all(shared, data).await?;
        write_all(shared, b"\r\n").await?;
    }
    wbuf.clear();
    Ok(())
}

/// Reads and drops the `left` bytes of an unread request body (within `timeout`). `false`:
/// the body could not be read (closed, failed, timed out).
async fn drain_body(shared: &Shared, mut left: u64, timeout: Duration) -> bool {
    // A body still held by the request path reads nothing more.
    shared.lock().generation += 1;
    let drained = std::future::poll_fn(|cx| {
        let mut inner = shared.lock();
        let inner = &mut *inner;
        loop {
            let n = usize::try_from(left).map_or(inner.rbuf.len(), |l| l.min(inner.rbuf.len()));
            inner.rbuf.advance(n);
            left -= n as u64;
            if left == 0 {
                inner.body = BodyState::Done;
                return Poll::Ready(true);
            }
            let Some(io) = inner.io.as_mut() else {
                return Poll::Ready(false);
            };
            match poll_read_into(io, &mut inner.rbuf, cx) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(false),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    tokio::time::timeout(timeout, drained)
        .await
        .unwrap_or(false)
}

/// Answers a refused head and closes.
async fn refuse(shared: &Shared, wbuf: &mut BytesMut, error: &RequestError) {
    tracing::debug!("request refused: {error}");
    wbuf.clear();
    encode_refusal(wbuf, error);
    let _ = write_all(shared, wbuf).await;
    close(shared, true).await;
}

/// The most a closing connection reads and drops of what the client still sends, and for
/// how long.
const LINGER_BYTES: usize = 1 << 20;
const LINGER: Duration = Duration::from_secs(1);

/// Ends the connection: a TLS `close_notify` or a TCP FIN, then the socket is dropped (a
/// body still held elsewhere reads nothing more). With `linger`, what the client is still
/// sending (a refused request's rest, an unread body) is read and dropped for a moment
/// first: closing a socket with unread input resets it, and the client could lose the
/// answer.
async fn close(shared: &Shared, linger: bool) {
    let shut = std::future::poll_fn(|cx| {
        let mut inner = shared.lock();
        match inner.io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    });
    let _ = tokio::time::timeout(LINGER, shut).await;
    if linger {
        let mut dropped = 0;
        let drain = std::future::poll_fn(|cx| {
            let mut inner = shared.lock();
            let inner = &mut *inner;
            loop {
                dropped += inner.rbuf.len();
                inner.rbuf.clear();
                let Some(io) = inner.io.as_mut() else {
                    return Poll::Ready(());
                };
                if dropped > LINGER_BYTES {
                    return Poll::Ready(());
                }
                match poll_read_into(io, &mut inner.rbuf, cx) {
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(()),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Pending => return Poll::Pending,
                }
            }
        });
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
    let mut inner = shared.lock();
    inner.io = None;
    inner.body = BodyState::Failed;
}

/// The current second, kept by [`date_ticker`] while a listener runs (0: not kept; read
/// the clock).
static NOW_SECS: AtomicU64 = AtomicU64::new(0);

fn clock_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Keeps [`NOW_SECS`] current (four times a second) until shutdown: a response reads an
/// atomic instead of the clock.
pub(crate) async fn date_ticker(mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        NOW_SECS.store(clock_secs(), Ordering::Relaxed);
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
    }
    NOW_SECS.store(0, Ordering::Relaxed);
}

/// `Date` (RFC 9110 §5.6.7, IMF-fixdate), formatted once a second per thread.
fn date_now() -> [u8; 29] {
    use std::cell::Cell;
    thread_local! {
        static CACHED: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
    }
    let secs = match NOW_SECS.load(Ordering::Relaxed) {
        0 => clock_secs(),
        s => s,
    };
    CACHED.with(|c| {
        let (at, text) = c.get();
        if at == secs {
            return text;
        }
        let text = imf_fixdate(secs);
        c.set((secs, text));
        text
    })
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for `secs` after the Unix epoch.
pub(crate) fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = [0u8; 29];
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    let two = |v: i64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    out[5..7].copy_from_slice(&two(day));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    let y = year.clamp(0, 9999);
    out[12..16].copy_from_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
    ]);
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(h as i64));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(m as i64));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(s as i64));
    out[25..29].copy_from_slice(b" GMT");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_imf_fixdate() {
        assert_eq!(
            &super::imf_fixdate(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(&super::imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            &super::imf_fixdate(951_782_400),
            b"Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            &super::imf_fixdate(4_102_444_799),
            b"Thu, 31 Dec 2099 23:59:59 GMT"
        );
    }
}
