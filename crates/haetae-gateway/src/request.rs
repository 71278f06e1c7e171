//! What a filter sees of an exchange: the request (method, path, parameters parsed once and
//! shared, headers, cookies, client address, TLS facts), the response when there is one,
//! the bounded body views filters asked for, and the per-request attributes filters pass on.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, request, response};

/// The most parameters parsed from one query string or body; the rest are ignored (and
/// `Params::truncated` says so), so a hostile request cannot make parsing unbounded.
pub const MAX_PARAMS: usize = 1024;

/// The deepest JSON nesting flattened into parameters.
const MAX_JSON_DEPTH: usize = 16;

/// Facts about the client's TLS connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsInfo {
    /// The server name the client asked for (SNI).
    pub server_name: Option<String>,
    /// The negotiated protocol version, e.g. `TLSv1_3`.
    pub protocol: Option<String>,
    /// The negotiated ALPN protocol, e.g. `h2`.
    pub alpn: Option<String>,
    /// The negotiated cipher suite.
    pub cipher_suite: Option<String>,
}

/// Name/value pairs decoded from a query string, a form body or a JSON body, in order.
/// Names may repeat.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// More than [`MAX_PARAMS`] pairs were present; only the first were kept.
    pub truncated: bool,
}

impl Params {
    /// The first value for `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value for `name`.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many pairs were kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// No pairs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    #[must_use]
    pub fn from_urlencoded(text: &[u8]) -> Params {
        let mut params = Params::default();
        for piece in text.split(|&b| b == b'&') {
            if piece.is_empty() {
                continue;
            }
            if params.pairs.len() == MAX_PARAMS {
                params.truncated = true;
                break;
            }
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &b""[..]),
            };
            params
                .pairs
                .push((percent_decode_form(name), percent_decode_form(value)));
        }
        params
    }

    /// Flattens a JSON document into pairs: `{"a": {"b": 1}, "c": [true]}` gives `a.b=1`
    /// and `c[0]=true`. Strings are given without quotes. Not JSON: no pairs.
    #[must_use]
    pub fn from_json(body: &[u8]) -> Params {
        let mut params = Params::default();
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            flatten_json(&value, String::new(), 0, &mut params);
        }
        params
    }
}

fn flatten_json(value: &serde_json::Value, path: String, depth: usize, out: &mut Params) {
    use serde_json::Value;
    if out.pairs.len() == MAX_PARAMS {
        out.truncated = true;
        return;
    }
    if depth > MAX_JSON_DEPTH {
        out.truncated = true;
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten_json(v, p, depth + 1, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten_json(v, format!("{path}[{i}]"), depth + 1, out);
            }
        }
        Value::String(s) => out.pairs.push((path, s.clone())),
        Value::Null => out.pairs.push((path, String::new())),
        other => out.pairs.push((path, other.to_string())),
    }
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept as written and
/// invalid UTF-8 is replaced, so decoding never fails.
#[must_use]
pub fn percent_decode_form(input: &[u8]) -> String {
    // Runs without '+' or '%' (most of a form) are copied whole.
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = memchr::memchr2(b'+', b'%', rest) {
        let (run, tail) = rest.split_at(i);
        out.extend_from_slice(run);
        let hex = |k: usize| tail.get(k).copied().and_then(hex_value);
        rest = match (tail.first(), hex(1), hex(2)) {
            (Some(b'+'), _, _) => {
                out.push(b' ');
                &tail[1..]
            }
            (_, Some(h), Some(l)) => {
                out.push(h << 4 | l);
                &tail[3..]
            }
            _ => {
                out.push(b'%');
                &tail[1..]
            }
        };
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A body as a filter sees it: at most the configured number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyView {
    /// The bytes buffered (all of the body when `complete`).
    pub bytes: Bytes,
    /// The whole body is in `bytes`; when false the body was longer than the limit and the
    /// rest streamed on unseen.
    pub complete: bool,
}

/// The request as filters see it. Built once per request; parsed parts are computed on
/// first use and shared by every filter in the chain.
#[derive(Debug)]
pub struct RequestView {
    pub(crate) parts: request::Parts,
    peer: SocketAddr,
    client_ip: IpAddr,
    tls: Option<TlsInfo>,
    service: Option<std::sync::Arc<str>>,
    pub(crate) body: Option<BodyView>,
    query: OnceLock<Params>,
    body_params: OnceLock<Params>,
    cookies: OnceLock<Vec<(String, String)>>,
    pub(crate) body_replaced: bool,
}

impl RequestView {
    /// A view of a request from `peer`, whose client address (after trusted proxies) is
    /// `client_ip`.
    #[must_use]
    pub fn new(
        parts: request::Parts,
        peer: SocketAddr,
        client_ip: IpAddr,
        tls: Option<TlsInfo>,
        service: Option<std::sync::Arc<str>>,
    ) -> RequestView {
        RequestView {
            parts,
            peer,
            client_ip,
            tls,
            service,
            body: None,
            query: OnceLock::new(),
            body_params: OnceLock::new(),
            cookies: OnceLock::new(),
            body_replaced: false,
        }
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    /// The request target.
    #[must_use]
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The path, without the query string.
    #[must_use]
    pub fn path(&self) -> &str {
        self.parts.uri.path()
    }

    /// The headers, as modified by earlier filters.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The first value of a header as text (`None` when absent or not visible ASCII).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The host the client asked for, lower case, without the port.
    #[must_use]
    pub fn host(&self) -> Option<&str> {
        request_host(&self.parts)
    }

    /// The TCP peer.
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The client's address: the peer, or for a trusted proxy the last untrusted
    /// `X-Forwarded-For` hop.
    #[must_use]
    pub fn client_ip(&self) -> IpAddr {
        self.client_ip
    }

    /// The client's TLS connection, when it used TLS.
    #[must_use]
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The id of the service the request was routed to.
    #[must_use]
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// The query parameters, decoded.
    pub fn query(&self) -> &Params {
        self.query.get_or_init(|| {
            Params::from_urlencoded(self.parts.uri.query().unwrap_or_default().as_bytes())
        })
    }

    /// The body as buffered for the body phase: `None` before that phase or when no filter
    /// in the chain asked for it.
    #[must_use]
    pub fn body(&self) -> Option<&BodyView> {
        self.body.as_ref()
    }

    /// Form (`application/x-www-form-urlencoded`) or JSON body parameters, decoded from
    /// the buffered body; empty when there is none or it is of another type.
    pub fn body_params(&self) -> &Params {
        self.body_params.get_or_init(|| {
            let Some(body) = &self.body else {
                return Params::default();
            };
            let content_type = self
                .header("content-type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if content_type.starts_with("application/x-www-form-urlencoded") {
                Params::from_urlencoded(&body.bytes)
            } else if content_type.starts_with("application/json")
                || (content_type.starts_with("application/") && content_type.contains("+json"))
            {
                Params::from_json(&body.bytes)
            } else {
                Params::default()
            }
        })
    }

    /// Replaces a completely buffered body (what `Modification::ReplaceBody` does):
    /// later filters and the upstream see `bytes`. `false` (nothing changed) when the body
    /// was not buffered completely.
    pub(crate) fn replace_body(&mut self, bytes: Bytes) -> bool {
        match &self.body {
            Some(b) if b.complete => {}
            _ => return false,
        }
        self.parts.headers.remove(http::header::TRANSFER_ENCODING);
        self.parts.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(bytes.len()),
        );
        self.body = Some(BodyView {
            bytes,
            complete: true,
        });
        self.body_params = OnceLock::new();
        self.body_replaced = true;
        true
    }

    /// A parameter from the query, or else from the body.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query()
            .get(name)
            .or_else(|| self.body_params().get(name))
    }

    /// The cookies the client sent, in order.
    pub fn cookies(&self) -> &[(String, String)] {
        self.cookies.get_or_init(|| {
            let mut out = Vec::new();
            for value in self.parts.headers.get_all(http::header::COOKIE) {
                // Not `to_str`: a cookie header with one non-ASCII byte would otherwise hide
                // every cookie in it from the filters that inspect them.
                let text = String::from_utf8_lossy(value.as_bytes());
                for piece in text.split(';') {
                    if out.len() == MAX_PARAMS {
                        return out;
                    }
                    let piece = piece.trim();
                    if piece.is_empty() {
                        continue;
                    }
                    let (n, v) = piece.split_once('=').unwrap_or((piece, ""));
                    out.push((n.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
                }
            }
            out
        })
    }

    /// The first cookie called `name`.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The host a request names (the `Host` header, or the URI authority for HTTP/2), lower
/// case, without the port.
pub(crate) fn request_host(parts: &request::Parts) -> Option<&str> {
    let raw = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str))?;
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    Some(host)
}

/// The upstream's response as filters see it in the response phases.
#[derive(Debug)]
pub struct ResponseView {
    pub(crate) parts: response::Parts,
    pub(crate) body: Option<BodyView>,
}

impl ResponseView {
    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.parts.status
    }

    /// The headers, as modified by earlier filters.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The first value of a header as text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as buffered for the response-body phase.
    #[must_use]
    pub fn body(&self) -> Option<&BodyView> {
        self.body.as_ref()
    }
}

/// The device facts the `device-info` filter collects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The device identifier the app reported, normalised (trimmed, at most 128 visible
    /// ASCII characters).
    pub id: Option<String>,
    /// The operating system, e.g. `Android 14` or `iOS 17.4`.
    pub os: Option<String>,
    /// The banking app's version.
    pub app_version: Option<String>,
    /// The client address.
    pub ip: IpAddr,
}

/// What earlier filters learned about this request, for later filters, the transaction log
/// and events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The device, once `device-info` ran.
    pub device: Option<Device>,
    /// The user id, once a filter identified it.
    pub user_id: Option<String>,
    others: Vec<(String, String)>,
}

impl Attributes {
    /// Sets a free-form attribute (replacing an earlier value).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.others.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.others.push((name, value)),
        }
    }

    /// A free-form attribute.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.others
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The device id, when known.
    #[must_use]
    pub fn device_id(&self) -> Option<&str> {
        self.device.as_ref().and_then(|d| d.id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(uri: &str, headers: &[(&str, &str)]) -> RequestView {
        let mut b = http::Request::builder().uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        let peer: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        RequestView::new(parts, peer, peer.ip(), None, None)
    }

    #[test]
    fn query_parameters_are_percent_and_plus_decoded() {
        let v = view("/t?a=1&b=x+y%20z&a=2&flag&bad=%zz%4", &[]);
        let q = v.query();
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get_all("a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(q.get("b"), Some("x y z"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("bad"), Some("%zz%4"));
    }

    /// The byte-at-a-time decoding the run-copying one must equal.
    fn decode_reference(input: &[u8]) -> String {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < input.len() => {
                    match (hex_value(input[i + 1]), hex_value(input[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push(h << 4 | l);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn form_decoding_equals_the_byte_at_a_time_reference() {
        // Every string of up to 4 bytes over an alphabet of the interesting bytes, and
        // longer pseudo-random ones.
        let alphabet = [b'%', b'+', b'4', b'1', b'f', b'F', b'z', 0xC3, 0xA9, b'a'];
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=4 {
            let mut idx = vec![0usize; len];
            loop {
                cases.push(idx.iter().map(|&k| alphabet[k]).collect());
                let mut p = 0;
                while p < len {
                    idx[p] += 1;
                    if idx[p] < alphabet.len() {
                        break;
                    }
                    idx[p] = 0;
                    p += 1;
                }
                if p == len {
                    break;
                }
            }
        }
        let mut x = 0x9E37_79B9_u32;
        for _ in 0..2000 {
            let len = (x % 64) as usize;
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(alphabet[(x % alphabet.len() as u32) as usize]);
            }
            cases.push(v);
        }
        for c in &cases {
            assert_eq!(percent_decode_form(c), decode_reference(c), "{c:?}");
        }
    }

    #[test]
    fn invalid_utf8_in_a_parameter_is_replaced_not_rejected() {
        assert_eq!(percent_decode_form(b"%ff%41"), "\u{fffd}A");
    }

    #[test]
    fn a_query_with_too_many_parameters_is_cut_and_marked() {
        let text = "a=1&".repeat(MAX_PARAMS + 10);
        let p = Params::from_urlencoded(text.as_bytes());
        assert_eq!(p.len(), MAX_PARAMS);
        assert!(p.truncated);
    }

    #[test]
    fn form_and_json_bodies_become_parameters() {
        let mut v = view(
            "/t",
            &[("content-type", "application/x-www-form-urlencoded")],
        );
        v.body = Some(BodyView {
            bytes: Bytes::from_static(b"amount=1000&to=123-45"),
            complete: true,
        });
        assert_eq!(v.param("amount"), Some("1000"));
        let mut v = view("/t", &[("content-type", "application/json; charset=utf-8")]);
        v.body = Some(BodyView {
            bytes: Bytes::from_static(
                br#"{"transfer":{"amount":1000,"to":"123"},"tags":["a",null]}"#,
            ),
            complete: true,
        });
        let p = v.body_params();
        assert_eq!(p.get("transfer.amount"), Some("1000"));
        assert_eq!(p.get("transfer.to"), Some("123"));
        assert_eq!(p.get("tags[0]"), Some("a"));
        assert_eq!(p.get("tags[1]"), Some(""));
    }

    #[test]
    fn deeply_nested_json_is_cut_not_recursed_without_bound() {
        let body = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let p = Params::from_json(body.as_bytes());
        assert!(p.truncated);
    }

    #[test]
    fn cookies_from_every_cookie_header_are_parsed() {
        let v = view("/", &[("cookie", "a=1; b=\"two\""), ("cookie", "c=3;;")]);
        assert_eq!(v.cookie("a"), Some("1"));
        assert_eq!(v.cookie("b"), Some("two"));
        assert_eq!(v.cookie("c"), Some("3"));
        assert_eq!(v.cookie("d"), None);
    }

    #[test]
    fn the_host_is_read_without_its_port() {
        assert_eq!(
            view("/", &[("host", "bank.example:8443")]).host(),
            Some("bank.example")
        );
        assert_eq!(view("/", &[("host", "[::1]:80")]).host(), Some("::1"));
        assert_eq!(view("http://a.example/x", &[]).host(), Some("a.example"));
    }
}
