//! The gateway's own HTTP/1.1 client for `http://` upstreams, run on the request task
//! itself: no connection task and no channel between tasks (hyper's `client::conn::http1`
//! needs both, and their hand-over cost about as much per request as the rest of the
//! client). One exchange on a pooled connection writes the request head — with the body in
//! the same write when it is small — streams a larger body (its `Content-Length`, or
//! chunked when the length is not known), reads the response head and returns a
//! [`ResponseBody`] that streams the body from the socket and gives the connection back to
//! its pool when the body has been read to its end. [`codec`] holds the parsing and
//! encoding; this module the I/O.
//!
//! Requests that ask for a protocol upgrade (WebSocket) do not come here: they go through
//! hyper's client, whose upgrade machinery joins the two connections.
//!
//! The server half for client connections is [`serve`] (I/O) and [`server_codec`]
//! (request heads, framing, response heads).

pub(crate) mod codec;
pub(crate) mod serve;
pub(crate) mod server_codec;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, request};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};

use crate::pool::Checkin;
use crate::proxy::{BoxError, ProxyBody};
use codec::{Chunked, Decoded, Framing, Head, MAX_HEAD, ParseError, RequestFraming};

/// Request bodies of known length up to this size are read first and sent with the head
/// in one write; larger ones, and those of unknown length, stream.
const SMALL_BODY: u64 = 16 * 1024;
/// Chunks of a streamed request body up to this size are copied next to their chunk
/// framing (one small write); larger ones are written from where they are.
const COPY_BELOW: usize = 4 * 1024;
/// How much room a read makes in the read buffer: also the largest body frame a read
/// yields.
const READ_CHUNK: usize = 32 * 1024;
/// Interim (`1xx`) responses skipped before the final one, at most.
const MAX_INTERIM: usize = 16;

/// How an exchange or a response body failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    #[error("writing the request: {0}")]
    Write(io::Error),
    #[error("reading the response: {0}")]
    Read(io::Error),
    #[error("the upstream closed the connection without a response")]
    Closed,
    #[error("the upstream closed the connection inside the response head")]
    ClosedInHead,
    #[error("the upstream closed the connection before the end of the response body")]
    ClosedInBody,
    #[error("invalid response from the upstream: {0}")]
    Invalid(ParseError),
    #[error("more than {MAX_INTERIM} interim (1xx) responses")]
    TooManyInterim,
    #[error("reading the request body from the client: {0}")]
    RequestBody(BoxError),
    #[error("the request body was {0} than its Content-Length")]
    RequestLength(&'static str),
}

impl H1Error {
    /// A failure of the kind a connection the upstream closed while idle gives: end of
    /// stream or a reset, not a malformed response or a timeout.
    pub(crate) fn is_stale(&self) -> bool {
        match self {
            H1Error::Closed => true,
            H1Error::Write(e) | H1Error::Read(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// One upstream connection and its buffers (kept across requests).
pub(crate) struct Conn {
    stream: TcpStream,
    /// Bytes read and not used yet.
    rbuf: BytesMut,
    /// The request head being written (and a small body with it).
    wbuf: BytesMut,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
        }
    }

    /// Open and quiet: nothing buffered, no byte and no end of stream waiting on the
    /// socket (an upstream that closed an idle connection, or wrote to it unasked, makes
    /// it unusable). Costs no system call while the socket has had no event.
    pub(crate) fn is_reusable(&self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// A request body, ready to be sent (and sent again on a new connection when nothing of
/// it was written).
pub(crate) enum RequestBody {
    /// None.
    Empty,
    /// A small body read in full, sent with the head.
    Small(Bytes),
    /// A body streamed as it arrives, with its length when known. Taken when the head has
    /// been written.
    Stream(Option<ProxyBody>, Option<u64>),
}

impl RequestBody {
    /// Reads a small body of known length in full; leaves any other to stream.
    pub(crate) async fn prepare(mut body: ProxyBody) -> Result<RequestBody, H1Error> {
        if body.is_end_stream() {
            return Ok(RequestBody::Empty);
        }
        let length = body.size_hint().exact();
        let Some(expected) = length.filter(|&n| n <= SMALL_BODY) else {
            return Ok(RequestBody::Stream(Some(body), length));
        };
        let mut first: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(H1Error::RequestBody)?.into_data() else {
                // Trailers: `Trailer` is hop-by-hop and removed, so none are announced.
                continue;
            };
            total += data.len() as u64;
            if total > expected {
                return Err(H1Error::RequestLength("longer"));
            }
            match first.take() {
                None if joined.is_empty() => first = Some(data),
                None => joined.extend_from_slice(&data),
                Some(f) => {
                    joined.reserve(usize::try_from(expected).unwrap_or(0));
                    joined.extend_from_slice(&f);
                    joined.extend_from_slice(&data);
                }
            }
        }
        if total < expected {
            return Err(H1Error::RequestLength("shorter"));
        }
        Ok(match first {
            Some(f) => RequestBody::Small(f),
            None if joined.is_empty() => RequestBody::Small(Bytes::new()),
            None => RequestBody::Small(joined.freeze()),
        })
    }

    /// No body at all (a request that may be sent again whole).
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Small(b) => b.is_empty(),
            RequestBody::Stream(..) => false,
        }
    }
}

/// An exchange that failed: the error, whether any byte of the request was written, and
/// whether any byte of response arrived.
pub(crate) struct Failed {
    pub error: H1Error,
    pub written: bool,
    pub heard: bool,
}

/// A response head, and whether the connection may carry another request after its body.
pub(crate) struct Exchanged {
    pub head: Head,
    pub reusable: bool,
}

/// Sends one request on `conn` and reads the response head. `parts` carries the
/// origin-form target and the headers as the proxy prepared them.
pub(crate) async fn exchange(
    conn: &mut Conn,
    parts: &request::Parts,
    extra: &[u8],
    body: &mut RequestBody,
) -> Result<Exchanged, Failed> {
    let mut written = false;
    let mut heard = false;
    let framing = match body {
        RequestBody::Stream(_, Some(n)) => RequestFraming::Length(*n),
        RequestBody::Stream(_, None) => RequestFraming::Chunked,
        RequestBody::Small(b) if !b.is_empty() => RequestFraming::Length(b.len() as u64),
        // A body-less POST, PUT or PATCH says so (some servers wait for a length).
        _ if matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) => {
            RequestFraming::Length(0)
        }
        _ => RequestFraming::None,
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    conn.wbuf.clear();
    codec::encode_head(
        &mut conn.wbuf,
        &parts.method,
        target,
        &parts.headers,
        extra,
        framing,
    );
    if let RequestBody::Small(b) = body {
        conn.wbuf.extend_from_slice(b);
    }
    // The head (and a small body): the only write of most requests.
    let mut sent = 0;
    let mut complete = true;
    let mut write_error = None;
    while sent < conn.wbuf.len() {
        match conn.stream.write(&conn.wbuf[sent..]).await {
            Ok(0) => {
                write_error = Some(io::Error::from(io::ErrorKind::WriteZero));
                break;
            }
            Ok(n) => {
                sent += n;
                written = true;
            }
            Err(e) => {
                write_error = Some(e);
                break;
            }
        }
    }
    if let Some(e) = write_error {
        if !written {
            return Err(Failed {
                error: H1Error::Write(e),
                written,
                heard,
            });
        }
        // Part of the request went out: the upstream may have answered (and closed)
        // early; its response, if any, is what the client gets.
        return match read_head(conn, &parts.method, &mut heard).await {
            Ok(head) => Ok(Exchanged {
                head,
                reusable: false,
            }),
            Err(_) => Err(Failed {
                error: H1Error::Write(e),
                written,
                heard,
            }),
        };
    }
    if let RequestBody::Stream(stream, length) = body
        && let Some(stream) = stream.take()
    {
        let chunked = framing == RequestFraming::Chunked;
        match send_stream(conn, stream, *length, chunked, &mut heard).await {
            Ok(all) => complete = all,
            Err(error) => {
                // An upstream that answered before failing still gave its answer.
                if matches!(error, H1Error::Write(_) | H1Error::Read(_))
                    && let Ok(head) = read_head(conn, &parts.method, &mut heard).await
                {
                    return Ok(Exchanged {
                        head,
                        reusable: false,
                    });
                }
                return Err(Failed {
                    error,
                    written,
                    heard,
                });
            }
        }
    }
    match read_head(conn, &parts.method, &mut heard).await {
        Ok(head) => {
            let reusable =
                complete && head.keep_alive && head.status != StatusCode::SWITCHING_PROTOCOLS;
            Ok(Exchanged { head, reusable })
        }
        Err(error) => Err(Failed {
            error,
            written,
            heard,
        }),
    }
}

/// Reads until a final response head has been parsed, skipping interim (`1xx`) ones but
/// `101`.
async fn read_head(conn: &mut Conn, method: &Method, heard: &mut bool) -> Result<Head, H1Error> {
    let mut interim = 0;
    loop {
        match codec::parse_head(&mut conn.rbuf, method).map_err(H1Error::Invalid)? {
            Some(head)
                if head.status.is_informational()
                    && head.status != StatusCode::SWITCHING_PROTOCOLS =>
            {
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(H1Error::TooManyInterim);
                }
                continue;
            }
            Some(head) => return Ok(head),
            None => {}
        }
        make_room(&mut conn.rbuf);
        let n = conn
            .stream
            .read_buf(&mut conn.rbuf)
            .await
            .map_err(H1Error::Read)?;
        if n == 0 {
            return Err(if conn.rbuf.is_empty() {
                H1Error::Closed
            } else {
                H1Error::ClosedInHead
            });
        }
        *heard = true;
    }
}

fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(READ_CHUNK);
    }
}

/// What happened while a request body was being sent.
enum Heard {
    /// The slices were written.
    Written,
    /// The upstream answered (a complete final head is buffered) or closed: sending stops.
    Stop,
}

/// Streams a request body, listening all along for an early response (an upstream may
/// refuse a body with `413` before reading it). `Ok(false)`: sending stopped early, the
/// request is incomplete and the connection must not be reused.
async fn send_stream(
    conn: &mut Conn,
    mut body: ProxyBody,
    length: Option<u64>,
    chunked: bool,
    heard: &mut bool,
) -> Result<bool, H1Error> {
    let Conn { stream, rbuf, wbuf } = conn;
    let (mut rd, mut wr) = stream.split();
    let mut sent = 0u64;
    loop {
        let next = {
            let listen = rbuf.len() < MAX_HEAD;
            tokio::select! {
                biased;
                r = read_some(&mut rd, rbuf), if listen => Err(r),
                f = body.frame() => Ok(f),
            }
        };
        let frame = match next {
            Err(read) => {
                if hear(read, rbuf, heard)? {
                    return Ok(false);
                }
                continue;
            }
            Ok(None) => break,
            Ok(Some(f)) => f.map_err(H1Error::RequestBody)?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        if length.is_some_and(|l| sent > l) {
            return Err(H1Error::RequestLength("longer"));
        }
        wbuf.clear();
        let outcome = if chunked {
            codec::push_chunk_size(wbuf, data.len() as u64);
            if data.len() < COPY_BELOW {
                wbuf.extend_from_slice(&data);
                wbuf.extend_from_slice(b"\r\n");
                write_hearing(&mut wr, &mut rd, rbuf, &mut [IoSlice::new(wbuf)], heard).await?
            } else {
                let slices = &mut [
                    IoSlice::new(wbuf),
                    IoSlice::new(&data),
                    IoSlice::new(b"\r\n"),
                ];
                write_hearing(&mut wr, &mut rd, rbuf, slices, heard).await?
            }
        } else {
            write_hearing(&mut wr, &mut rd, rbuf, &mut [IoSlice::new(&data)], heard).await?
        };
        if matches!(outcome, Heard::Stop) {
            return Ok(false);
        }
    }
    if length.is_some_and(|l| sent < l) {
        return Err(H1Error::RequestLength("shorter"));
    }
    if chunked {
        let end = &mut [IoSlice::new(b"0\r\n\r\n")];
        if matches!(
            write_hearing(&mut wr, &mut rd, rbuf, end, heard).await?,
            Heard::Stop
        ) {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn read_some(rd: &mut ReadHalf<'_>, rbuf: &mut BytesMut) -> io::Result<usize> {
    make_room(rbuf);
    rd.read_buf(rbuf).await
}

/// Takes in a read done while sending: `true` when sending should stop (the upstream
/// closed, or a complete final response head is buffered).
fn hear(read: io::Result<usize>, rbuf: &BytesMut, heard: &mut bool) -> Result<bool, H1Error> {
    match read.map_err(H1Error::Read)? {
        0 => Ok(true),
        _ => {
            *heard = true;
            Ok(final_head_buffered(rbuf))
        }
    }
}

/// Whether `buf` starts with zero or more interim heads and then a complete final one (or
/// with something that cannot be a head: reading it will say what is wrong).
fn final_head_buffered(buf: &[u8]) -> bool {
    let mut at = 0;
    for _ in 0..=MAX_INTERIM {
        let mut fields = [httparse::EMPTY_HEADER; codec::MAX_HEADERS];
        let mut r = httparse::Response::new(&mut fields);
        match r.parse(&buf[at..]) {
            Ok(httparse::Status::Complete(n)) => match r.code {
                Some(c) if (100..200).contains(&c) && c != 101 => at += n,
                _ => return true,
            },
            Ok(httparse::Status::Partial) => return false,
            Err(_) => return true,
        }
    }
    true
}

/// Writes `slices` in full while reading what the upstream sends meanwhile.
async fn write_hearing(
    wr: &mut WriteHalf<'_>,
    rd: &mut ReadHalf<'_>,
    rbuf: &mut BytesMut,
    mut slices: &mut [IoSlice<'_>],
    heard: &mut bool,
) -> Result<Heard, H1Error> {
    while !slices.is_empty() {
        let event = {
            let listen = rbuf.len() < MAX_HEAD;
            tokio::select! {
                biased;
                r = read_some(rd, rbuf), if listen => Err(r),
                w = wr.write_vectored(slices) => Ok(w),
            }
        };
        match event {
            Err(read) => {
                if hear(read, rbuf, heard)? {
                    return Ok(Heard::Stop);
                }
            }
            Ok(w) => {
                let n = w.map_err(H1Error::Write)?;
                if n == 0 {
                    return Err(H1Error::Write(io::ErrorKind::WriteZero.into()));
                }
                IoSlice::advance_slices(&mut slices, n);
            }
        }
    }
    Ok(Heard::Written)
}

#[derive(Debug)]
enum BodyState {
    Length(u64),
    Chunked(Chunked),
    Close,
    Done,
}

/// A response body read from a pooled connection as the client takes it; the connection
/// goes back to its pool when the body has been read to its end and the response allowed
/// keep-alive, and is closed when the body is dropped before that (its next bytes would
/// belong to this response). At most one read's worth ([`READ_CHUNK`]) is buffered.
pub(crate) struct ResponseBody {
    conn: Option<Checkin>,
    state: BodyState,
    reusable: bool,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("state", &self.state)
            .field("pooled", &self.conn.is_some())
            .finish()
    }
}

impl ResponseBody {
    /// The body of a response with `framing` on `conn`. A body already at its end gives
    /// the connection back at once.
    pub(crate) fn new(conn: Checkin, framing: Framing, reusable: bool) -> ResponseBody {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunked::new()),
            Framing::Close => BodyState::Close,
        };
        let mut body = ResponseBody {
            conn: Some(conn),
            state,
            reusable,
        };
        if matches!(body.state, BodyState::Done) {
            body.finish();
        }
        body
    }

    /// The body has ended: the connection goes back when it may carry another request.
    fn finish(&mut self) {
        self.state = BodyState::Done;
        if let Some(c) = self.conn.take()
            && self.reusable
            && c.conn().rbuf.is_empty()
        {
            c.checkin();
        }
    }

    fn fail(&mut self, e: H1Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = BodyState::Done;
        self.conn = None;
        Poll::Ready(Some(Err(Box::new(e))))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(checkin) = this.conn.as_mut() else {
                this.state = BodyState::Done;
                return Poll::Ready(None);
            };
            let conn = checkin.conn_mut();
            match &mut this.state {
                BodyState::Done => {
                    this.finish();
                    return Poll::Ready(None);
                }
                BodyState::Length(left) => {
                    if !conn.rbuf.is_empty() {
                        let n = usize::try_from(*left)
                            .map_or(conn.rbuf.len(), |l| l.min(conn.rbuf.len()));
                        let data = conn.rbuf.split_to(n).freeze();
                        *left -= n as u64;
                        if *left == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                BodyState::Chunked(decoder) => match decoder.decode(&mut conn.rbuf) {
                    Ok(Decoded::Data(d)) => return Poll::Ready(Some(Ok(Frame::data(d)))),
                    Ok(Decoded::Done) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::NeedMore) => {}
                    Err(e) => return this.fail(H1Error::Invalid(e)),
                },
                BodyState::Close => {
                    if !conn.rbuf.is_empty() {
                        let data = conn.rbuf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
            }
            make_room(&mut conn.rbuf);
            let read = loop {
                match conn.stream.try_read_buf(&mut conn.rbuf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Err(e) = ready!(conn.stream.poll_read_ready(cx)) {
                            break Err(e);
                        }
                    }
                    other => break other,
                }
            };
            match read {
                Ok(0) if matches!(this.state, BodyState::Close) => {
                    // The end of a close-delimited body: the connection is done too.
                    this.state = BodyState::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(H1Error::ClosedInBody),
                Ok(_) => {}
                Err(e) => return this.fail(H1Error::Read(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, BodyState::Done | BodyState::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            BodyState::Length(n) => SizeHint::with_exact(n),
            BodyState::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
