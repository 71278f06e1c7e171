//! Shared fixtures for the gateway's integration tests: a real upstream on 127.0.0.1 that
//! reports what it received, a gateway on ephemeral ports, an event collector, test-only
//! filter kinds (panicking, sleeping, body-reading), and a small HTTP client.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use haetae_core::config::GatewayConfig;
use haetae_core::{Event, PolicySnapshot};
use haetae_gateway::filters::{BuildResult, FilterRegistry};
use haetae_gateway::{
    Decision, EventSink, FilterContext, Gateway, LocalResponse, Modification, PhaseResult, Phases,
    Reason, RunningGateway, SecurityFilter,
};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

// A P-256 test CA and a localhost/127.0.0.1 server certificate it signed, made for this
// test with `openssl req`/`openssl x509 -req` (valid for 100 years).
pub const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBiDCCAS+gAwIBAgIUbfqEjqJBh/rBAajT0urDifDCgY8wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaGFldGFlIHRlc3QgQ0EwIBcNMjYxMTIzMDIwMzAyWhgPMjEy
NjEwMzAwMjAzMDJaMBkxFzAVBgNVBAMMDmhhZXRhZSB0ZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEHDtSY24lHtKaE7uZdeiaPWXM68AstUYy+4Ki4JxK
6AnpZlq6E/Vc3SI/TYXugL1QIgdlRyS2nt2G9ocJbZEIMKNTMFEwHQYDVR0OBBYE
FLHhdVL7sXFlkSY0cBeRTasxOlRFMB8GA1UdIwQYMBaAFLHhdVL7sXFlkSY0cBeR
TasxOlRFMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgPxVthZ/3
zqvUhnTnR3uiwMJJjiO7s1dERJ4ZI1308KICIAlQLoWJqSpKqqQa/XyUC/MwAumz
nb0uO/0e5u/nyA0e
-----END CERTIFICATE-----
";
pub const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBvjCCAWSgAwIBAgIUd4MHHC2Ago1h9srqGvqrkyXZPC4wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaGFldGFlIHRlc3QgQ0EwIBcNMjYxMTIzMDIwMzAyWhgPMjEy
NjEwMzAwMjAzMDJaMBQxEjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEG
CCqGSM49AwEHA0IABIR5Cr0z4Z28+CvaJ3Dh/YYpo3F2LqIwdHVQOSK6jAtWJpXC
uemrgRWN0u2kUyUAFEnvBVTs4T7bx7lTc21AeHOjgYwwgYkwGgYDVR0RBBMwEYIJ
bG9jYWxob3N0hwR/AAABMAkGA1UdEwQCMAAwCwYDVR0PBAQDAgeAMBMGA1UdJQQM
MAoGCCsGAQUFBwMBMB0GA1UdDgQWBBQdw/ct2o1QIggEVENlq7/6Y22BZjAfBgNV
HSMEGDAWgBSx4XVS+7FxZZEmNHAXkU2rMTpURTAKBggqhkjOPQQDAgNIADBFAiEA
0CRo0onVTvvs10ugwYtA02K/p1iEYNrTHx6sFn5ep68CICBiNYTTosw0ajf7eUqs
EzVrwk54GrH/2yHXxcAhMROu
-----END CERTIFICATE-----
";
pub const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRCmI98PBWwVM4LxV
iXnA461hrt/CfwL3oCR1KygF3uehRANCAASEeQq9M+GdvPgr2idw4f2GKaNxdi6i
MHR1UDkiuowLViaVwrnpq4EVjdLtpFMlABRJ7wVU7OE+28e5U3NtQHhz
-----END PRIVATE KEY-----
";

/// Collects every event, for assertions.
#[derive(Debug, Default)]
pub struct Collector(Mutex<Vec<Event>>);

impl EventSink for Collector {
    fn emit(&self, event: Event) -> bool {
        self.0.lock().unwrap().push(event);
        true
    }
}

impl Collector {
    pub fn with_action(&self, action: &str) -> Vec<Event> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.event.action == action)
            .cloned()
            .collect()
    }

    pub fn count(&self, action: &str) -> usize {
        self.with_action(action).len()
    }

    pub fn actions(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event.action.clone())
            .collect()
    }
}

/// An upstream that answers with what it saw: `x-backend` (its name), `x-seen-path`,
/// `x-seen-method`, `x-seen-xff`, `x-seen-forwarded`, `x-seen-notice`, `x-seen-body-seen`,
/// `x-seen-version` (`HTTP/1.1`, `HTTP/2.0`), `x-seen-host`, `x-seen-authority` (HTTP/2's
/// `:authority`), and a body `received=<n>` counting the request body bytes it streamed.
pub async fn spawn_backend(name: &'static str) -> SocketAddr {
    spawn_counted_backend(name, None).await.0
}

/// [`spawn_backend`] behind TLS when `tls` is given (HTTP/1.1 or HTTP/2 as its ALPN says),
/// and the number of connections it accepted so far.
pub async fn spawn_counted_backend(
    name: &'static str,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| backend_answer(name, req));
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    Some(tls) => {
                        // A failed handshake (the gateway refused the certificate) just
                        // ends the connection.
                        if let Ok(stream) = tls.accept(stream).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// A TLS acceptor with the test certificate ([`CERT`], for `localhost` and 127.0.0.1,
/// signed by [`CA`]) offering these ALPN protocols.
pub fn test_tls_acceptor(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn backend_answer(
    name: &'static str,
    req: Request<Incoming>,
) -> Result<Response<ProxiedBody>, Infallible> {
    let (parts, mut body) = req.into_parts();
    // `/zeros/<n>` streams n zero bytes back.
    if let Some(n) = parts.uri.path().strip_prefix("/zeros/") {
        let remaining = n.parse().unwrap_or(0);
        return Ok(Response::new(ProxiedBody::Zeros { remaining }));
    }
    let mut received: u64 = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(d) = frame.data_ref() {
            received += d.len() as u64;
        }
    }
    let mut r = Response::new(ProxiedBody::Bytes(Some(Bytes::from(format!(
        "received={received}"
    )))));
    let h = r.headers_mut();
    h.insert("x-backend", HeaderValue::from_static(name));
    let copy = |h: &mut http::HeaderMap, from: &str, to: &'static str| {
        if let Some(v) = parts.headers.get(from) {
            h.insert(to, v.clone());
        }
    };
    copy(h, "x-forwarded-for", "x-seen-xff");
    copy(h, "forwarded", "x-seen-forwarded");
    copy(h, "x-haetae-notice", "x-seen-notice");
    copy(h, "x-body-seen", "x-seen-body-seen");
    copy(h, "connection-scoped", "x-seen-hop");
    copy(h, "host", "x-seen-host");
    h.insert(
        "x-seen-version",
        HeaderValue::from_str(&format!("{:?}", parts.version)).unwrap(),
    );
    if let Some(a) = parts.uri.authority() {
        h.insert(
            "x-seen-authority",
            HeaderValue::from_str(a.as_str()).unwrap(),
        );
    }
    h.insert(
        "x-seen-path",
        HeaderValue::from_str(parts.uri.path()).unwrap(),
    );
    h.insert(
        "x-seen-method",
        HeaderValue::from_str(parts.method.as_str()).unwrap(),
    );
    Ok(r)
}

/// Test-only filter: panics in `on_request_headers`.
pub struct Panicking;

#[async_trait::async_trait]
impl SecurityFilter for Panicking {
    fn phases(&self) -> Phases {
        Phases {
            request_headers: true,
            ..Phases::default()
        }
    }
    async fn on_request_headers(&self, _ctx: &mut FilterContext<'_>) -> PhaseResult {
        panic!("test filter panicked on purpose");
    }
}

/// Test-only filter: sleeps for its configured `ms` in `on_request_headers`.
pub struct Sleeping(pub Duration);

#[async_trait::async_trait]
impl SecurityFilter for Sleeping {
    fn phases(&self) -> Phases {
        Phases {
            request_headers: true,
            ..Phases::default()
        }
    }
    async fn on_request_headers(&self, _ctx: &mut FilterContext<'_>) -> PhaseResult {
        tokio::time::sleep(self.0).await;
        Ok(Decision::Continue)
    }
}

/// Test-only filter: blocks its thread for its configured `ms` in `on_request_headers` (no
/// await: the call is over on its first poll, past its budget).
pub struct Blocking(pub Duration);

#[async_trait::async_trait]
impl SecurityFilter for Blocking {
    fn phases(&self) -> Phases {
        Phases {
            request_headers: true,
            ..Phases::default()
        }
    }
    async fn on_request_headers(&self, _ctx: &mut FilterContext<'_>) -> PhaseResult {
        std::thread::sleep(self.0);
        Ok(Decision::Continue)
    }
}

/// Test-only filter: reads up to 64 body bytes; refuses `amount=13`, otherwise tells the
/// upstream how many bytes it saw in `x-body-seen`.
pub struct BodyPeek;

#[async_trait::async_trait]
impl SecurityFilter for BodyPeek {
    fn phases(&self) -> Phases {
        Phases {
            request_body: Some(64),
            ..Phases::default()
        }
    }
    async fn on_request_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        if ctx.request.param("amount") == Some("13") {
            return Ok(Decision::Respond(
                LocalResponse::text(StatusCode::FORBIDDEN, "unlucky\n"),
                Reason::new("unlucky-amount", haetae_core::Severity::Low, "amount 13"),
            ));
        }
        let body = ctx.request.body().expect("the body phase has a body view");
        let seen = format!("{}:{}", body.bytes.len(), body.complete);
        Ok(Decision::Modify(vec![Modification::SetHeader(
            http::HeaderName::from_static("x-body-seen"),
            HeaderValue::from_str(&seen).unwrap(),
        )]))
    }
}

/// The standard kinds plus `test-panic`, `test-sleep` and `test-block` (config `ms`) and
/// `test-body-peek`.
pub fn registry() -> FilterRegistry {
    let mut r = FilterRegistry::standard();
    r.register(
        "test-panic",
        Arc::new(|_, _| -> BuildResult { Ok(Arc::new(Panicking)) }),
    );
    r.register(
        "test-sleep",
        Arc::new(|f, _| -> BuildResult {
            let ms = f
                .config
                .get("ms")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(1000);
            Ok(Arc::new(Sleeping(Duration::from_millis(ms))))
        }),
    );
    r.register(
        "test-block",
        Arc::new(|f, _| -> BuildResult {
            let ms = f
                .config
                .get("ms")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(100);
            Ok(Arc::new(Blocking(Duration::from_millis(ms))))
        }),
    );
    r.register(
        "test-body-peek",
        Arc::new(|_, _| -> BuildResult { Ok(Arc::new(BodyPeek)) }),
    );
    r
}

/// A running gateway on ephemeral ports with a policy applied.
pub struct TestGateway {
    pub gateway: Arc<Gateway>,
    pub running: Option<RunningGateway>,
    pub events: Arc<Collector>,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
}

impl TestGateway {
    pub async fn start(policy_toml: &str) -> TestGateway {
        TestGateway::start_with(policy_toml, GatewayConfig::default()).await
    }

    pub async fn start_with(policy_toml: &str, mut config: GatewayConfig) -> TestGateway {
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.admin_listen = "127.0.0.1:0".parse().unwrap();
        let events = Arc::new(Collector::default());
        let gateway = Arc::new(
            Gateway::new(
                &config,
                Arc::clone(&events) as Arc<dyn EventSink>,
                registry(),
            )
            .unwrap(),
        );
        let policy = PolicySnapshot::from_toml(policy_toml).expect("test policy parses");
        gateway.apply_policy(&policy).expect("test policy is valid");
        let running = gateway.start().await.unwrap();
        TestGateway {
            addr: running.addr,
            admin: running.admin_addr,
            gateway,
            running: Some(running),
            events,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

pub type TestClient = Client<HttpConnector, ProxiedBody>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A request body: bytes, or `n` zero bytes generated in 64 KiB chunks without buffering.
pub enum ProxiedBody {
    Bytes(Option<Bytes>),
    Zeros { remaining: u64 },
}

static ZEROS: [u8; 65536] = [0; 65536];

impl Body for ProxiedBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ProxiedBody::Bytes(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxiedBody::Zeros { remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = (*remaining).min(ZEROS.len() as u64);
                *remaining -= n;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                    &ZEROS[..usize::try_from(n).unwrap()],
                )))))
            }
        }
    }
    fn size_hint(&self) -> SizeHint {
        match self {
            ProxiedBody::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxiedBody::Zeros { remaining } => SizeHint::with_exact(*remaining),
        }
    }
}

/// A finished response: status, headers and body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn send(client: &TestClient, req: Request<ProxiedBody>) -> Answer {
    let resp = client.request(req).await.expect("the gateway answers");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("the body arrives").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Request<ProxiedBody> {
    let mut b = Request::get(url);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(ProxiedBody::Bytes(None)).unwrap()
}

pub async fn get_text(url: &str) -> Answer {
    send(&client(), get(url, &[])).await
}

/// Resident set size of this process in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
