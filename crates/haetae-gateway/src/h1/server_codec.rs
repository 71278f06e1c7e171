//! The HTTP/1.1 server codec of the client listener, without I/O: request heads parsed
//! (with `httparse`) from the connection's read buffer, their body framing decided strictly
//! (RFC 9112 §6), and response heads written. The chunked transfer coding of request bodies
//! is decoded by the client codec's [`Chunked`](super::codec::Chunked).
//!
//! Request smuggling is refused, never guessed around: `Transfer-Encoding` together with
//! `Content-Length`, any transfer coding but a single `chunked`, `Transfer-Encoding` in an
//! HTTP/1.0 request, more than one `Content-Length` field (even with equal values), a list
//! or a malformed value in it — each is a `400` and the connection closes. Field names with
//! whitespace before the colon, obsolete line folding and bare CR are `httparse` errors.
//!
//! Everything is bounded: a request head may be at most [`MAX_REQUEST_HEAD`] bytes with at
//! most [`MAX_REQUEST_HEADERS`] fields (`431` beyond). Malformed input is an error, never a
//! panic (the fuzz target `h1_request` feeds it arbitrary bytes). It depends only on
//! `bytes`, `http`, `httparse` and the client codec, so the fuzz build compiles it alone.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

use super::codec::{push_chunk_size, push_decimal};

/// The longest request head accepted (request line, fields, blank line); a longer one is
/// answered `431`. nginx's default is 4 buffers of 8 KiB; 64 KiB leaves room for cookies.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// The most header fields a request may carry (hyper's default is 100); more is `431`.
pub const MAX_REQUEST_HEADERS: usize = 100;

/// Why a request head was refused: the status to answer with and the reason (for the
/// answer's body and the debug log). The connection closes after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestError {
    /// `400`, `431`, `501` or `505`.
    pub status: StatusCode,
    /// What is wrong, in a few words.
    pub reason: &'static str,
}

impl RequestError {
    const fn bad(reason: &'static str) -> RequestError {
        RequestError {
            status: StatusCode::BAD_REQUEST,
            reason,
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.status.as_u16())
    }
}

impl std::error::Error for RequestError {}

/// How a request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`, or `Content-Length: 0`.
    None,
    /// `Content-Length` bytes (more than zero).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: BodyFraming,
    /// The client lets the connection carry another request after this one (HTTP/1.1
    /// without `Connection: close`, HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// HTTP/1.1 `Expect: 100-continue` with a body: the client waits for `100 Continue`
    /// (sent when the body is first read) before sending it.
    pub expect_continue: bool,
    /// The head's bytes as received (the target and the values share them).
    pub raw: Bytes,
}

/// The bytes that open an HTTP/2 connection with prior knowledge (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `buf` starts with (or, while incomplete, could still become) the HTTP/2 preface.
#[must_use]
pub fn maybe_h2_preface(buf: &[u8]) -> bool {
    let n = buf.len().min(H2_PREFACE.len());
    n > 0 && buf[..n] == H2_PREFACE[..n]
}

/// Parses a request head from the start of `buf`. `Ok(None)`: incomplete, read more. On
/// success the head's bytes are removed from `buf` (the target and the header values share
/// them); what follows (the body, or a pipelined request) stays.
pub fn parse_request_head(buf: &mut BytesMut) -> Result<Option<RequestHead>, RequestError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_REQUEST_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_REQUEST_HEAD {
                Err(too_large("the request head is larger than 64 KiB"))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(too_large("the request has more than 100 header fields"));
        }
        Err(httparse::Error::Version) => return Err(VERSION),
        Err(e) => return Err(parse_error(e)),
    };
    if len > MAX_REQUEST_HEAD {
        return Err(too_large("the request head is larger than 64 KiB"));
    }
    let version = match request.version {
        Some(1) => Version::HTTP_11,
        Some(0) => Version::HTTP_10,
        _ => return Err(VERSION),
    };
    let method = request
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(RequestError::bad("invalid method"))?;
    let base = buf.as_ptr() as usize;
    let path = request.path.unwrap_or_default();
    let target = (path.as_ptr() as usize - base, path.len());
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    let count = request.headers.len();
    for (h, span) in request.headers.iter().zip(spans.iter_mut()) {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if length.is_some() {
                return Err(RequestError::bad(
                    "more than one Content-Length field (a smuggling risk)",
                ));
            }
            length = Some(content_length(h.value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only `chunked`, once, alone: a list (`gzip, chunked`), another coding, or a
            // second field is refused, as a proxy that guessed could be desynchronised
            // from the upstream.
            if chunked || !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(RequestError::bad(
                    "unsupported Transfer-Encoding (only one `chunked` is accepted)",
                ));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
        let n = name.as_ptr() as usize - base;
        let v = h.value.as_ptr() as usize - base;
        // The head is at most MAX_REQUEST_HEAD bytes: the offsets fit.
        *span = (n as u32, name.len() as u32, v as u32, h.value.len() as u32);
    }
    if chunked && length.is_some() {
        // RFC 9112 §6.1: "A server MAY reject a request that contains both
        // Content-Length and Transfer-Encoding"; a proxy must, or the upstream may frame
        // it differently.
        return Err(RequestError::bad(
            "both Transfer-Encoding and Content-Length (a smuggling risk)",
        ));
    }
    if chunked && version == Version::HTTP_10 {
        // RFC 9112 §6.1: a transfer coding in an HTTP/1.0 message is faulty framing.
        return Err(RequestError::bad(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1))
        .map_err(|_| RequestError::bad("invalid request target"))?;
    // `*` only with OPTIONS, authority-form only with CONNECT and CONNECT only with it
    // (RFC 9112 §3.2).
    let asterisk = target.1 == 1 && head[target.0] == b'*';
    let authority_form = uri.scheme().is_none() && uri.authority().is_some();
    if (asterisk && method != Method::OPTIONS) || (authority_form != (method == Method::CONNECT)) {
        return Err(RequestError::bad(
            "the request target does not fit the method",
        ));
    }
    // Room for the fields the proxy adds (forwarding headers, `Host`) without growing.
    let mut headers = HeaderMap::with_capacity(count + 6);
    for &(n, nl, v, vl) in &spans[..count] {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let name = HeaderName::from_bytes(&head[n..n + nl])
            .map_err(|_| RequestError::bad("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl))
            .map_err(|_| RequestError::bad("invalid header value"))?;
        headers.append(name, value);
    }
    let framing = if chunked {
        BodyFraming::Chunked
    } else {
        match length {
            Some(0) | None => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
        }
    };
    let keep_alive = match version {
        Version::HTTP_11 => !close,
        _ => keep_alive_token && !close,
    };
    Ok(Some(RequestHead {
        method,
        uri,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue: expect_continue
            && version == Version::HTTP_11
            && framing != BodyFraming::None,
        raw: head,
    }))
}

/// A request line without `HTTP/1.0` or `HTTP/1.1` where the version belongs.
const VERSION: RequestError = RequestError {
    status: StatusCode::HTTP_VERSION_NOT_SUPPORTED,
    reason: "not an HTTP/1.0 or HTTP/1.1 request line",
};

fn too_large(reason: &'static str) -> RequestError {
    RequestError {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        reason,
    }
}

fn parse_error(e: httparse::Error) -> RequestError {
    RequestError::bad(match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid method or request line",
        _ => "malformed request head",
    })
}

/// A `Content-Length` value: 1 to 18 ASCII digits and nothing else (no sign, no list, no
/// spaces inside; the surrounding whitespace `httparse` leaves is trimmed).
fn content_length(value: &[u8]) -> Result<u64, RequestError> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::bad("invalid Content-Length"));
    }
    Ok(digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// How a response body is delimited on the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body is written (`HEAD`, `1xx`, `204`, `304`); the fields stay as given.
    Bodiless,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 client, length unknown).
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 client, length unknown).
    Close,
}

/// The framing of a response with `status` and `headers` to a request with `method` and
/// `version`, whose body has `exact` bytes when known. A body of known length is sent with
/// that length (it wins over a `Content-Length` field that disagrees); otherwise a valid
/// single `Content-Length` field is believed.
#[must_use]
pub fn response_framing(
    method: &Method,
    version: Version,
    status: StatusCode,
    headers: &HeaderMap,
    exact: Option<u64>,
) -> ResponseFraming {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return ResponseFraming::Bodiless;
    }
    if let Some(n) = exact {
        return ResponseFraming::Length(n);
    }
    let mut values = headers.get_all(http::header::CONTENT_LENGTH).iter();
    if let (Some(v), None) = (values.next(), values.next())
        && let Ok(n) = content_length(v.as_bytes())
    {
        return ResponseFraming::Length(n);
    }
    if version == Version::HTTP_11 {
        ResponseFraming::Chunked
    } else {
        ResponseFraming::Close
    }
}

/// Writes a response head: the status line (always `HTTP/1.1`, RFC 9110 §6.2), the fields
/// but the framing ones (`Content-Length`, `Transfer-Encoding`) and `Connection`, then the
/// framing's own, `Connection: close` or `keep-alive` as decided, `Date` when `date` is
/// given and the fields have none, and the blank line. Names and values come from `http`
/// types, which admit no CR, LF or NUL: nothing can be injected.
pub fn encode_response_head(
    out: &mut BytesMut,
    status: StatusCode,
    headers: &HeaderMap,
    framing: ResponseFraming,
    connection: Option<&'static [u8]>,
    date: Option<&[u8]>,
) {
    out.reserve(96 + headers.len() * 48);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
    let bodiless = framing == ResponseFraming::Bodiless;
    let no_length = status.is_informational() || status == StatusCode::NO_CONTENT;
    for (name, value) in headers {
        if name == http::header::TRANSFER_ENCODING
            || name == http::header::CONNECTION
            // A bodiless answer keeps the length the upstream gave (a HEAD's, a 304's), but
            // 1xx and 204 never carry one (RFC 9110 §8.6).
            || (name == http::header::CONTENT_LENGTH && (!bodiless || no_length))
        {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    match framing {
        ResponseFraming::Length(n) => {
            out.put_slice(b"content-length: ");
            push_decimal(out, n);
            out.put_slice(b"\r\n");
        }
        ResponseFraming::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
        ResponseFraming::Bodiless | ResponseFraming::Close => {}
    }
    if let Some(c) = connection {
        out.put_slice(b"connection: ");
        out.put_slice(c);
        out.put_slice(b"\r\n");
    }
    if let Some(d) = date
        && !headers.contains_key(http::header::DATE)
    {
        out.put_slice(b"date: ");
        out.put_slice(d);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Appends one chunk of a chunked body (size line, data, CRLF); nothing for empty data
/// (an empty chunk would end the body).
pub fn encode_chunk(out: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    push_chunk_size(out, data.len() as u64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// The end of a chunked body: the last chunk and an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A short plain-text answer the connection writes itself (a refused head), closing.
pub fn encode_refusal(out: &mut BytesMut, error: &RequestError) {
    let body = format!("Bad request: {}.\n", error.reason);
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    encode_response_head(
        out,
        error.status,
        &headers,
        ResponseFraming::Length(body.len() as u64),
        Some(b"close"),
        None,
    );
    out.put_slice(body.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<RequestHead>, RequestError> {
        parse_request_head(&mut BytesMut::from(text.as_bytes()))
    }

    fn refused(text: &str) -> StatusCode {
        match parse(text) {
            Err(e) => e.status,
            Ok(h) => panic!("accepted {text:?}: {h:?}"),
        }
    }

    fn framing(text: &str) -> BodyFraming {
        parse(text).unwrap().unwrap().framing
    }

    #[test]
    fn a_head_is_split_off_and_a_pipelined_request_stays() {
        let mut buf = BytesMut::from(
            &b"GET /a?x=1 HTTP/1.1\r\nHost: bank.example\r\nX-Two: 2\r\n\r\nGET /b HTTP/1.1\r\n"[..],
        );
        let h = parse_request_head(&mut buf).unwrap().unwrap();
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.uri, "/a?x=1");
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.headers["host"], "bank.example");
        assert_eq!(h.headers["x-two"], "2");
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(&buf[..], b"GET /b HTTP/1.1\r\n");
        assert!(
            parse_request_head(&mut buf).unwrap().is_none(),
            "incomplete"
        );
        assert!(parse_request_head(&mut BytesMut::new()).unwrap().is_none());
    }

    #[test]
    fn oversized_heads_and_too_many_fields_are_431() {
        let big = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_REQUEST_HEAD));
        assert_eq!(refused(&big), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let big = format!("{big}\r\n\r\n");
        assert_eq!(refused(&big), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let many: String = (0..=MAX_REQUEST_HEADERS)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect();
        assert_eq!(
            refused(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n"),
            BodyFraming::Length(12)
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length:  7 \r\n\r\n"),
            BodyFraming::Length(7)
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            BodyFraming::None
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"),
            BodyFraming::Chunked
        );
        assert_eq!(framing("GET / HTTP/1.0\r\n\r\n"), BodyFraming::None);
    }

    #[test]
    fn request_smuggling_is_refused_with_400() {
        for text in [
            // CL.TE and TE.CL.
            "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
            // Codings other than one `chunked`.
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
            // Whitespace before the colon hides the field from some parsers.
            "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length : 4\r\n\r\n",
            // Obsolete line folding.
            "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nX: a\r\n\tContent-Length: 4\r\n\r\n",
            // Duplicate or conflicting lengths, lists, signs, hex, spaces inside, overflow.
            "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 4, 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1 0\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            // A transfer coding in HTTP/1.0.
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            // Control bytes and bare CR.
            "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\rContent-Length: 4\r\n\r\n",
            "GET / HTTP/1.1\rHost: a\r\n\r\n",
            // Malformed request lines and targets.
            "GET  / HTTP/1.1\r\n\r\n",
            "G\x01T / HTTP/1.1\r\n\r\n",
            "GET * HTTP/1.1\r\n\r\n",
            "GET bank.example:443 HTTP/1.1\r\n\r\n",
            "CONNECT / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(refused(text), StatusCode::BAD_REQUEST, "{text:?}");
        }
        for text in ["GET / HTTP/2.0\r\n\r\n", "GET / x HTTP/1.1\r\n\r\n"] {
            assert_eq!(
                refused(text),
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "{text:?}"
            );
        }
        // The accepted neighbours of those.
        assert!(
            parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap()
                .is_some()
        );
        assert!(
            parse("CONNECT bank.example:443 HTTP/1.1\r\nHost: bank.example:443\r\n\r\n")
                .unwrap()
                .is_some()
        );
        assert!(
            parse("GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn keep_alive_and_expect_follow_the_version() {
        let h = |t: &str| parse(t).unwrap().unwrap();
        assert!(!h("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!h("GET / HTTP/1.1\r\nConnection: x, Close\r\n\r\n").keep_alive);
        assert!(!h("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(h("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        let post = "POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n";
        assert!(h(post).expect_continue);
        assert!(!h("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").expect_continue);
        assert!(
            !h("POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
                .expect_continue
        );
    }

    #[test]
    fn response_framing_and_heads() {
        let none = HeaderMap::new();
        let mut cl = HeaderMap::new();
        cl.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        let f = |m: Method, v, s: u16, h: &HeaderMap, e| {
            response_framing(&m, v, StatusCode::from_u16(s).unwrap(), h, e)
        };
        let v11 = Version::HTTP_11;
        assert_eq!(
            f(Method::HEAD, v11, 200, &cl, None),
            ResponseFraming::Bodiless
        );
        assert_eq!(
            f(Method::GET, v11, 204, &none, None),
            ResponseFraming::Bodiless
        );
        assert_eq!(
            f(Method::GET, v11, 304, &cl, None),
            ResponseFraming::Bodiless
        );
        assert_eq!(
            f(Method::GET, v11, 200, &cl, None),
            ResponseFraming::Length(42)
        );
        assert_eq!(
            f(Method::GET, v11, 200, &cl, Some(3)),
            ResponseFraming::Length(3)
        );
        assert_eq!(
            f(Method::GET, v11, 200, &none, None),
            ResponseFraming::Chunked
        );
        assert_eq!(
            f(Method::GET, Version::HTTP_10, 200, &none, None),
            ResponseFraming::Close
        );

        let mut out = BytesMut::new();
        let mut h = cl.clone();
        h.insert(http::header::CONNECTION, HeaderValue::from_static("x"));
        h.insert(
            http::header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-kept", HeaderValue::from_static("1"));
        encode_response_head(
            &mut out,
            StatusCode::OK,
            &h,
            ResponseFraming::Chunked,
            Some(b"close"),
            Some(b"Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 200 OK\r\nx-kept: 1\r\ntransfer-encoding: chunked\r\nconnection: close\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"[..]
        );
        // A HEAD answer keeps the upstream's length; a 204 never carries one.
        out.clear();
        encode_response_head(
            &mut out,
            StatusCode::OK,
            &cl,
            ResponseFraming::Bodiless,
            None,
            None,
        );
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n"[..]
        );
        out.clear();
        encode_response_head(
            &mut out,
            StatusCode::NO_CONTENT,
            &cl,
            ResponseFraming::Bodiless,
            None,
            None,
        );
        assert_eq!(&out[..], &b"HTTP/1.1 204 No Content\r\n\r\n"[..]);
        out.clear();
        encode_chunk(&mut out, b"hello");
        encode_chunk(&mut out, b"");
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(&out[..], &b"5\r\nhello\r\n0\r\n\r\n"[..]);
    }

    #[test]
    fn the_h2_preface_is_recognised_while_it_arrives() {
        assert!(maybe_h2_preface(b"PRI"));
        assert!(maybe_h2_preface(H2_PREFACE));
        assert!(!maybe_h2_preface(b"PRIX"));
        assert!(!maybe_h2_preface(b"GET / HTTP/1.1\r\n"));
        assert!(!maybe_h2_preface(b""));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let alphabet = b"GETPOST /HTP1.0\r\n:;,Content-LengthTransfer-Encodingchunked0123456789 \t\x00\x7f\xff";
        for _ in 0..20_000 {
            let mut text = Vec::new();
            for _ in 0..(seed % 200) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse_request_head(&mut BytesMut::from(&text[..]));
            let mut with_line = b"POST / HTTP/1.1\r\n".to_vec();
            with_line.extend_from_slice(&text);
            let _ = parse_request_head(&mut BytesMut::from(&with_line[..]));
        }
    }
}
