//! The HTTP/1.1 client codec of the upstream pool, without I/O: request heads written into
//! a buffer, response heads parsed (with `httparse`) and their body framing decided
//! strictly (RFC 9112 §6), and the chunked transfer coding decoded incrementally.
//!
//! Everything here is bounded: a response head may be at most [`MAX_HEAD`] bytes with at
//! most [`MAX_HEADERS`] fields, a chunk-size line at most [`MAX_CHUNK_LINE`] bytes, the
//! trailer section at most [`MAX_TRAILERS`] bytes. Malformed input is an error, never a
//! panic (the fuzz target `h1_response` feeds it arbitrary bytes). It depends only on
//! `bytes`, `http` and `httparse` so the fuzz build can compile it on its own.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// The longest response head accepted (status line, fields, blank line). nginx's default
/// `proxy_buffer_size` is 4 or 8 KiB; 64 KiB leaves room for large cookies.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header fields a response head may carry (hyper's default is 100).
pub const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (size, extensions, CRLF).
pub const MAX_CHUNK_LINE: usize = 4096;
/// The largest trailer section (ignored, but read to its end).
pub const MAX_TRAILERS: usize = 16 * 1024;

/// What is wrong with a response, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParseError {}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a response to `HEAD`, a `1xx`, `204` or `304`.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the upstream closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request after this response (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a body that
    /// does not end with the connection).
    pub keep_alive: bool,
}

/// Parses a response head from the start of `buf`. `Ok(None)`: incomplete, read more.
/// On success the head's bytes are removed from `buf` (the header values share them);
/// what follows (the body's first bytes) stays. `method` is the request's: a response to
/// `HEAD` has no body.
pub fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, ParseError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Pass 1 on the borrowed buffer: the head's length, status, version, where each field
    // is, and the framing facts. Field positions are offsets, so the values can share the
    // head's bytes once it is split off (no copy per field).
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD {
                Err(ParseError("the response head is larger than 64 KiB"))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ParseError("the response head has more than 100 fields"));
        }
        Err(e) => return Err(parse_error(e)),
    };
    if len > MAX_HEAD {
        return Err(ParseError("the response head is larger than 64 KiB"));
    }
    let version = match response.version {
        Some(1) => Version::HTTP_11,
        Some(0) => Version::HTTP_10,
        _ => return Err(ParseError("the response is not HTTP/1.x")),
    };
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(ParseError("invalid status code"))?;
    let base = buf.as_ptr() as usize;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let count = response.headers.len();
    for (h, span) in response.headers.iter().zip(spans.iter_mut()) {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = content_length(h.value)?;
            if length.is_some_and(|l| l != n) {
                return Err(ParseError("conflicting Content-Length values"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only `chunked`, once: any other coding (or `chunked` twice) is refused,
            // as nginx does; a proxy that guessed could be desynchronised.
            if transfer_encoding || !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(ParseError("unsupported Transfer-Encoding"));
            }
            transfer_encoding = true;
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        let n = name.as_ptr() as usize - base;
        let v = h.value.as_ptr() as usize - base;
        // The head is at most MAX_HEAD bytes: the offsets fit.
        *span = (n as u32, name.len() as u32, v as u32, h.value.len() as u32);
    }
    if chunked && length.is_some() {
        // RFC 9112 §6.3: "ought to be handled as an error"; a strict proxy does not
        // forward a message two parties may frame differently (request smuggling).
        return Err(ParseError(
            "both Transfer-Encoding and Content-Length (a smuggling risk)",
        ));
    }
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    for &(n, nl, v, vl) in &spans[..count] {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let name = HeaderName::from_bytes(&head[n..n + nl])
            .map_err(|_| ParseError("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl))
            .map_err(|_| ParseError("invalid header value"))?;
        headers.append(name, value);
    }
    let framing = if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    let persistent = match version {
        Version::HTTP_11 => !close,
        _ => keep_alive_token && !close,
    };
    Ok(Some(Head {
        status,
        version,
        headers,
        framing,
        keep_alive: persistent && framing != Framing::Close,
    }))
}

fn parse_error(e: httparse::Error) -> ParseError {
    ParseError(match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Version => "invalid HTTP version",
        _ => "malformed response head",
    })
}

/// A `Content-Length` value: digits, or a list of the same digits (RFC 9110 §8.6 lets a
/// recipient accept `42, 42`); no sign, no spaces inside, at most 18 digits.
fn content_length(value: &[u8]) -> Result<u64, ParseError> {
    let mut found: Option<u64> = None;
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(ParseError("invalid Content-Length"));
        }
        let n = digits
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(ParseError("conflicting Content-Length values"));
        }
        found = Some(n);
    }
    found.ok_or(ParseError("invalid Content-Length"))
}

/// What [`Chunked::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes (never empty).
    Data(Bytes),
    /// `buf` holds no complete next step: read more.
    NeedMore,
    /// The last chunk and the trailer section have been read.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailers { seen: usize },
    Done,
}

/// An incremental decoder of the chunked transfer coding (RFC 9112 §7.1). Chunk
/// extensions are skipped; trailer fields are read and dropped (bounded).
#[derive(Debug, Clone)]
pub struct Chunked {
    state: ChunkState,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked::new()
    }
}

impl Chunked {
    #[must_use]
    pub fn new() -> Chunked {
        Chunked {
            state: ChunkState::Size,
        }
    }

    /// Decodes from the start of `buf`, consuming what it used.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ParseError> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(Decoded::Done),
                ChunkState::Size => {
                    let Some(line) =
                        take_line(buf, MAX_CHUNK_LINE, "chunk-size line longer than 4 KiB")?
                    else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        ChunkState::Trailers { seen: 0 }
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Err(ParseError("chunk data not followed by CRLF"));
                        }
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ParseError("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers { seen } => {
                    let room = MAX_TRAILERS.saturating_sub(seen);
                    let Some(line) = take_line(buf, room, "trailer section larger than 16 KiB")?
                    else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    } else {
                        if line.iter().any(|&b| b == b'\r' || b == 0) || !line.contains(&b':') {
                            return Err(ParseError("malformed trailer field"));
                        }
                        self.state = ChunkState::Trailers {
                            seen: seen + line.len() + 2,
                        };
                    }
                }
            }
        }
    }
}

/// Takes one CRLF-terminated line (without the CRLF) from `buf`; `None` when `buf` holds
/// no full line yet. A line longer than `max` (CRLF included) or ended by a bare LF is an
/// error.
fn take_line(
    buf: &mut BytesMut,
    max: usize,
    too_long: &'static str,
) -> Result<Option<BytesMut>, ParseError> {
    let window = &buf[..buf.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) => {
            if end == 0 || buf[end - 1] != b'\r' {
                return Err(ParseError("line not ended by CRLF in chunked body"));
            }
            let mut line = buf.split_to(end + 1);
            line.truncate(end - 1);
            Ok(Some(line))
        }
        None if buf.len() >= max => Err(ParseError(too_long)),
        None => Ok(None),
    }
}

/// `chunk-size [ chunk-ext ]`: 1 to 15 hex digits, then nothing or extensions starting
/// with `;` (after optional whitespace).
fn chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Err(ParseError("invalid chunk size"));
    }
    let rest = &line[digits..];
    let ext = rest.trim_ascii_start();
    if !(ext.is_empty() || ext[0] == b';') || rest.iter().any(|&b| b < 0x20 && b != b'\t') {
        return Err(ParseError("invalid chunk extension"));
    }
    Ok(line[..digits].iter().fold(0u64, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        (n << 4) | u64::from(v)
    }))
}

/// How a request body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no `Content-Length` (a `GET` without a body).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (the length is not known in advance).
    Chunked,
}

/// Writes a request head: `METHOD target HTTP/1.1`, the fields as the proxy prepared them
/// (any `Content-Length` or `Transfer-Encoding` among them is replaced by `framing`'s),
/// then `extra` (whole header lines the proxy rendered from `http` values, each ending in
/// CRLF), and the blank line. Names and values come from `http` types, which admit no CR,
/// LF or NUL: nothing can be injected.
pub fn encode_head(
    out: &mut BytesMut,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    extra: &[u8],
    framing: RequestFraming,
) {
    out.reserve(64 + target.len() + headers.len() * 48 + extra.len());
    out.extend_from_slice(method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(extra);
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            push_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends the chunk-size line of a chunk of `n` bytes (`n` in hex, CRLF).
pub fn push_chunk_size(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, ParseError> {
        parse_head(&mut BytesMut::from(text), &Method::GET)
    }

    fn framing(text: &str) -> Framing {
        head(text).unwrap().unwrap().framing
    }

    #[test]
    fn a_head_is_split_off_and_the_body_bytes_stay() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\nServer: t\r\n\r\nhello+next",
        );
        let h = parse_head(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        let xa: Vec<_> = h.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(h.headers["server"], "t");
        assert_eq!(&buf[..], b"hello+next");
    }

    #[test]
    fn an_incomplete_head_asks_for_more_and_an_oversized_one_is_refused() {
        assert!(head("").unwrap().is_none());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
        let mut big = String::from("HTTP/1.1 200 OK\r\n");
        while big.len() < MAX_HEAD {
            big.push_str("X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(head(&big).is_err(), "more than 64 KiB without an end");
        let mut many = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(
            head(&many).unwrap_err().0,
            "the response head has more than 100 fields"
        );
    }

    #[test]
    fn framing_follows_rfc_9112_and_ambiguity_is_refused() {
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ntransfer-encoding:  Chunked \r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), Framing::Close);
        assert!(!head("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap().keep_alive);
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            Framing::Empty
        );
        assert_eq!(
            framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
            Framing::Empty
        );
        assert_eq!(framing("HTTP/1.1 100 Continue\r\n\r\n"), Framing::Empty);
        let mut b = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
        let h = parse_head(&mut b, &Method::HEAD).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Empty, "a response to HEAD has no body");
        // Same length repeated: accepted (RFC 9110 §8.6).
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
            Framing::Length(3)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n"),
            Framing::Length(3)
        );
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n",
        ] {
            assert!(!matches!(head(bad), Ok(Some(_))), "{bad:?} was accepted");
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        let ka = |t: &str| head(t).unwrap().unwrap().keep_alive;
        assert!(ka("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Close\r\n\r\n"
        ));
        assert!(!ka(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: x, close\r\n\r\n"
        ));
        assert!(!ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        ));
    }

    fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), ParseError> {
        let mut d = Chunked::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match d.decode(&mut buf)? {
                Decoded::Data(b) => {
                    assert!(!b.is_empty());
                    out.extend_from_slice(&b);
                }
                Decoded::Done => return Ok((out, buf.len())),
                Decoded::NeedMore if fed < input.len() => {
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
                Decoded::NeedMore => return Err(ParseError("ran out")),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_the_same_however_they_arrive() {
        let body = b"5;name=value\r\nhello\r\nA \t; x\r\n, world!!!\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, 100] {
            let (out, left) = decode_all(body, step).unwrap();
            assert_eq!(out, b"hello, world!!!", "step {step}");
            assert!(left <= 4, "what follows stays");
        }
        let (out, _) = decode_all(b"0\r\n\r\n", 1).unwrap();
        assert!(out.is_empty());
        let (out, _) = decode_all(b"000010\r\n0123456789abcdef\r\n0\r\n\r\n", 5).unwrap();
        assert_eq!(out.len(), 16);
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        for bad in [
            &b"5\r\nhelloXX0\r\n\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"g\r\n",
            b"\r\n",
            b"-5\r\nhello\r\n",
            b"1000000000000000\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"5;\x01\r\nhello\r\n0\r\n\r\n",
            b"0\r\nno-colon\r\n\r\n",
            b"0\r\nX: y\n\r\n",
        ] {
            assert!(
                decode_all(bad, 3).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_LINE));
        assert!(decode_all(long.as_bytes(), 1000).is_err());
        let trailers = format!("0\r\n{}\r\n", "X: y\r\n".repeat(MAX_TRAILERS / 6 + 1));
        assert!(decode_all(trailers.as_bytes(), 1000).is_err());
    }

    #[test]
    fn request_heads_carry_the_framing_of_the_body_sent() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("bank.example"));
        h.insert("content-length", HeaderValue::from_static("999"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        let mut out = BytesMut::new();
        encode_head(
            &mut out,
            &Method::POST,
            "/t?q=1",
            &h,
            b"",
            RequestFraming::Length(12_345),
        );
        assert_eq!(
            &out[..],
            b"POST /t?q=1 HTTP/1.1\r\nhost: bank.example\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 12345\r\n\r\n"
        );
        out.clear();
        encode_head(
            &mut out,
            &Method::PUT,
            "/",
            &HeaderMap::new(),
            b"x-forwarded-proto: http\r\n",
            RequestFraming::Chunked,
        );
        assert_eq!(
            &out[..],
            b"PUT / HTTP/1.1\r\nx-forwarded-proto: http\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        out.clear();
        encode_head(
            &mut out,
            &Method::GET,
            "/",
            &HeaderMap::new(),
            b"",
            RequestFraming::None,
        );
        assert_eq!(&out[..], b"GET / HTTP/1.1\r\n\r\n");
        out.clear();
        push_chunk_size(&mut out, 0x1f2e);
        push_decimal(&mut out, 0);
        push_decimal(&mut out, u64::MAX);
        assert_eq!(&out[..], b"1f2e\r\n018446744073709551615");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A fixed pseudo-random stream mixed with fragments of real responses.
        let pieces: [&[u8]; 10] = [
            b"HTTP/1.1 200 OK\r\n",
            b"Content-Length: 3\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"\r\n",
            b"5\r\nhello\r\n",
            b"0\r\n\r\n",
            b"HTTP/1.0 100 Continue\r\n\r\n",
            b":",
            b"\xff\x00",
            b"ffffffffffffffff\r\n",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..(next() % 12) {
                let r = next();
                if r % 3 == 0 {
                    input.push((r >> 8) as u8);
                } else {
                    input.extend_from_slice(pieces[(r >> 8) as usize % pieces.len()]);
                }
            }
            let mut buf = BytesMut::from(&input[..]);
            if let Ok(Some(h)) = parse_head(&mut buf, &Method::GET)
                && h.framing == Framing::Chunked
            {
                let _ = decode_all(&buf, 1 + (next() % 9) as usize);
            }
            let _ = decode_all(&input, 1 + (next() % 9) as usize);
        }
    }
}
