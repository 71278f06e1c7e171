//! Notifiers against real local receivers: an HTTP server for webhooks and Splunk HEC,
//! TCP, TLS and UDP syslog listeners.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use haetae_control::alerts::Alert;
use haetae_control::alerts::notify::{
    Dispatcher, Notifier, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign,
};
use haetae_core::{Component, Event, Outcome, Severity};
use tokio::io::AsyncReadExt;

const KEY: &str = "a webhook key of enough length";

fn alert(id: &str) -> Alert {
    Alert {
        id: id.into(),
        ts: 1_700_000_000_000_000,
        rule_id: "restricted".into(),
        severity: "high".into(),
        summary: "restricted: restrict.block user kim".into(),
        detail: serde_json::json!({ "group": "kim", "count": 3 }),
        ack_by: None,
        ack_at: None,
    }
}

fn notifier(json: serde_json::Value) -> Notifier {
    let n: Notifier = serde_json::from_value(json).unwrap();
    n.validate().unwrap();
    n
}

#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(State(r): State<Received>, headers: HeaderMap, body: String) -> StatusCode {
    {
        let mut fail = r.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    r.requests.lock().unwrap().push((headers, body));
    StatusCode::OK
}

async fn http_receiver(fail_first: u32) -> (String, Received) {
    let received = Received::default();
    *received.fail_first.lock().unwrap() = fail_first;
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), received)
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>, secs: u64) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing arrived within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_webhook_gets_the_alert_signed_with_hmac_and_retried_after_failures() {
    let (url, received) = http_receiver(2).await;
    let d = Dispatcher::new();
    d.configure(vec![notifier(serde_json::json!({
        "id": "hook", "kind": "webhook", "url": url, "secret": KEY
    }))]);
    d.alert(&alert("a-1"), &["hook".to_owned()]);
    d.alert(&alert("not-for-it"), &["other".to_owned()]);
    let (headers, body) = wait_for(|| received.requests.lock().unwrap().first().cloned(), 10).await;
    // Two 503s came first: delivered on the third try (backoff 0.5 s, then 1 s).
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "alert");
    assert_eq!(v["alert"]["id"], "a-1");
    assert_eq!(v["alert"]["detail"]["group"], "kim");
    let ts: i64 = headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
    let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(signature, sign(KEY.as_bytes(), ts, &body));
    assert_ne!(signature, sign(b"another key of some length", ts, &body));
    assert_eq!(headers["x-haetae-delivery"], "a-1");
    // The worker counts the delivery once the receiver's answer is in.
    wait_for(|| (d.stats()["hook"].sent == 1).then_some(()), 5).await;
    let stats = d.stats();
    assert_eq!(stats["hook"].sent, 1);
    assert!(
        stats["hook"]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 503")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        received.requests.lock().unwrap().len(),
        1,
        "only its own rule's alert"
    );
}

#[test]
fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
    // Computed independently: python3 -c 'import hmac,hashlib;
    // print(hmac.new(b"Jefe", b"1700000000.what do ya want for nothing?", hashlib.sha256).hexdigest())'
    assert_eq!(
        sign(b"Jefe", 1_700_000_000, "what do ya want for nothing?"),
        "sha256=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"
    );
    assert_ne!(sign(b"Jefe", 1, "a"), sign(b"Jefe", 0, "a"));
}

#[tokio::test]
async fn a_dead_webhook_never_blocks_and_drops_beyond_its_queue() {
    // Nothing listens on this port: every try fails; the caller never waits.
    let d = Dispatcher::new();
    d.configure(vec![notifier(serde_json::json!({
        "id": "dead", "kind": "webhook", "url": "http://127.0.0.1:9/x"
    }))]);
    let start = std::time::Instant::now();
    for i in 0..(haetae_control::alerts::notify::QUEUE + 100) {
        d.alert(&alert(&format!("a-{i}")), &["dead".to_owned()]);
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let stats = d.stats();
    assert!(stats["dead"].dropped >= 99, "{:?}", stats["dead"]);
    assert_eq!(stats["dead"].sent, 0);
}

fn event(user: &str) -> Event {
    Event::new(Component::Gateway, "restrict.block")
        .outcome(Outcome::Failure)
        .severity(Severity::High)
        .user_id(user)
        .service_id("transfer")
        .instance("gw-1")
}

/// Reads octet-counted frames ("<len> <msg>") until `n` arrived.
async fn read_frames(stream: &mut (impl AsyncReadExt + Unpin), n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 4096];
    while frames.len() < n {
        let got = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("frames within 10 s")
            .unwrap();
        assert!(
            got > 0,
            "the connection closed after {} frames",
            frames.len()
        );
        buf.extend_from_slice(&chunk[..got]);
        while let Some(sp) = buf.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
            if buf.len() < sp + 1 + len {
                break;
            }
            frames.push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
    frames
}

#[tokio::test]
async fn syslog_over_tcp_carries_rfc5424_frames_of_events_and_alerts() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let d = Dispatcher::new();
    d.configure(vec![notifier(serde_json::json!({
        "id": "siem", "kind": "syslog", "address": addr.to_string(),
        "forward_events": true, "min_severity": "medium"
    }))]);
    d.events(&[event("kim"), event("lee").severity(Severity::Low)]);
    d.alert(&alert("a-2"), &[]);
    let (mut conn, _) = listener.accept().await.unwrap();
    let frames = read_frames(&mut conn, 2).await;
    assert!(frames[0].starts_with("<83>1 "), "{}", frames[0]);
    assert!(frames[0].contains(" gw-1 haetae-gateway - restrict.block [haetae@32473 "));
    assert!(frames[0].contains(" user=\"kim\""));
    assert!(
        frames[1].contains(" haetae-control - alert.raised "),
        "{}",
        frames[1]
    );
    assert!(frames[1].ends_with("restricted: restrict.block user kim"));
    // The low-severity event was not forwarded.
    assert!(frames.iter().all(|f| !f.contains("user=\"lee\"")));
}

#[tokio::test]
async fn syslog_reconnects_after_the_receiver_drops_the_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let d = Dispatcher::new();
    d.configure(vec![notifier(serde_json::json!({
        "id": "siem", "kind": "syslog", "address": addr.to_string(), "format": "cef",
        "forward_events": true
    }))]);
    d.events(&[event("first")]);
    let (mut conn, _) = listener.accept().await.unwrap();
    let frames = read_frames(&mut conn, 1).await;
    assert!(frames[0].contains("CEF:0|haetae|haetae|"), "{}", frames[0]);
    assert!(frames[0].contains(" suser=first"));
    drop(conn);
    // The first write after the drop may still succeed into the dead socket's buffer; keep
    // sending until the new connection shows up with an event on it.
    let d = Arc::new(d);
    let sender = {
        let d = Arc::clone(&d);
        tokio::spawn(async move {
            for i in 0..100 {
                d.events(&[event(&format!("again-{i}"))]);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(15), listener.accept())
        .await
        .expect("a reconnect")
        .unwrap();
    let frames = read_frames(&mut conn, 1).await;
    assert!(frames[0].contains(" suser=again-"), "{}", frames[0]);
    sender.abort();
}

#[tokio::test]
async fn syslog_over_udp_sends_one_datagram_per_message_in_ecs() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let d = Dispatcher::new();
    d.configure(vec![notifier(serde_json::json!({
        "id": "udp", "kind": "syslog", "address": addr.to_string(), "transport": "udp",
        "format": "ecs", "forward_events": true
    }))]);
    d.events(&[event("kim"), event("lee")]);
    let mut buf = vec![0u8; 65536];
    let mut users = Vec::new();
    for _ in 0..2 {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        users.push(v["user"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(users, ["kim", "lee"]);
}

// A P-256 test CA and a localhost/127.0.0.1 server certificate it signed (the gateway's
// TLS test pair, valid for 100 years).
const CA: &str = "-----BEGIN CERTIFICATE-----
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
const CERT: &str = "-----BEGIN CERTIFICATE-----
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
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRCmI98PBWwVM4LxV
iXnA461hrt/CfwL3oCR1KygF3uehRANCAASEeQq9M+GdvPgr2idw4f2GKaNxdi6i
MHR1UDkiuowLViaVwrnpq4EVjdLtpFMlABRJ7wVU7OE+28e5U3NtQHhz
-----END PRIVATE KEY-----
";

#[tokio::test]
async fn syslog_over_tls_verifies_the_receiver_against_the_given_ca() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();

    // Without the CA the handshake fails and nothing is delivered.
    let untrusted = Dispatcher::new();
    untrusted.configure(vec![notifier(serde_json::json!({
        "id": "tls", "kind": "syslog", "address": format!("localhost:{port}"),
        "transport": "tls", "forward_events": true
    }))]);
    untrusted.events(&[event("nobody")]);
    let (tcp, _) = listener.accept().await.unwrap();
    assert!(
        acceptor.accept(tcp).await.is_err(),
        "the client refused our certificate"
    );
    drop(untrusted);

    // A second listener, so a retry of the refused client cannot be taken for the next one.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let d = Dispatcher::new();
    d.configure(vec![notifier(serde_json::json!({
        "id": "tls", "kind": "syslog", "address": format!("localhost:{port}"),
        "transport": "tls", "ca_pem": CA, "forward_events": true
    }))]);
    d.events(&[event("kim")]);
    let (tcp, _) = listener.accept().await.unwrap();
    let mut tls = acceptor.accept(tcp).await.unwrap();
    let frames = read_frames(&mut tls, 1).await;
    assert!(frames[0].contains(" user=\"kim\""), "{}", frames[0]);
}

#[tokio::test]
async fn splunk_hec_gets_a_batch_with_the_token() {
    let (url, received) = http_receiver(0).await;
    let d = Dispatcher::new();
    d.configure(vec![notifier(serde_json::json!({
        "id": "hec", "kind": "splunk-hec", "url": url, "secret": "hec-token-1",
        "forward_events": true
    }))]);
    d.events(&[event("kim"), event("lee")]);
    let mut users = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while users.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "HEC got {users:?}");
        for (headers, body) in received.requests.lock().unwrap().drain(..) {
            assert_eq!(headers["authorization"], "Splunk hec-token-1");
            for line in body.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["sourcetype"], "haetae:ecs");
                users.push(v["event"]["user"]["id"].as_str().unwrap().to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(users, ["kim", "lee"]);
}

#[test]
fn notifiers_are_validated_with_the_field_at_fault() {
    let err = |json: serde_json::Value| {
        serde_json::from_value::<Notifier>(json)
            .unwrap()
            .validate()
            .unwrap_err()
            .field
    };
    assert_eq!(err(serde_json::json!({"id":"w","kind":"webhook"})), "url");
    assert_eq!(
        err(serde_json::json!({"id":"w","kind":"webhook","url":"ftp://x/"})),
        "url"
    );
    assert_eq!(
        err(serde_json::json!({"id":"w","kind":"webhook","url":"http://x/","secret":"short"})),
        "secret"
    );
    assert_eq!(
        err(serde_json::json!({"id":"w","kind":"webhook","url":"http://x/","forward_events":true})),
        "forward_events"
    );
    assert_eq!(
        err(serde_json::json!({"id":"s","kind":"syslog","address":"host"})),
        "address"
    );
    assert_eq!(
        err(serde_json::json!({"id":"s","kind":"syslog","address":"h:0"})),
        "address"
    );
    assert_eq!(
        err(
            serde_json::json!({"id":"h","kind":"splunk-hec","url":"https://s:8088/services/collector"})
        ),
        "secret"
    );
    assert_eq!(
        err(serde_json::json!({"id":"s","kind":"syslog","address":"h:514","ca_pem":"nope"})),
        "ca_pem"
    );
}
