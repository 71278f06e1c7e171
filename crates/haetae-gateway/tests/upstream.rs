//! Upstream protocols: cleartext HTTP/2 (`h2c://`), TLS with HTTP/2 or HTTP/1.1 chosen by
//! ALPN and verified against `gateway.upstream_ca`, and an untrusted upstream certificate
//! (502 and a `gateway.upstream_failed` event). Real sockets on 127.0.0.1.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use haetae_core::config::GatewayConfig;
use haetae_gateway::{EventSink, Gateway, GatewayError};
use http::StatusCode;

fn policy(upstream: &str) -> String {
    format!("[[services]]\nid = \"bank\"\nupstream = \"{upstream}\"\n")
}

/// Writes the test CA to a file of its own and returns the directory and the file.
fn ca_file(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("haetae-gw-upstream-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ca.pem");
    std::fs::write(&file, CA).unwrap();
    (dir, file)
}

#[tokio::test]
async fn an_h2c_upstream_gets_http2_over_one_pooled_connection() {
    let (backend, accepted) = spawn_counted_backend("h2c", None).await;
    let gw = TestGateway::start(&policy(&format!("h2c://{backend}"))).await;
    let c = client();
    for i in 0..5 {
        let a = send(&c, get(&gw.url(&format!("/bank/{i}?a=1")), &[])).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.header("x-seen-version"), Some("HTTP/2.0"));
        assert_eq!(a.header("x-seen-path"), Some(format!("/bank/{i}").as_str()));
        // `:authority` is the upstream's; no `Host` that could differ from it
        // (RFC 9113 §8.3.1); the client's host rides in Forwarded / X-Forwarded-Host.
        assert_eq!(
            a.header("x-seen-authority"),
            Some(backend.to_string().as_str())
        );
        assert_eq!(a.header("x-seen-host"), None);
        let forwarded = a.header("x-seen-forwarded").unwrap();
        assert!(forwarded.ends_with(";host=127.0.0.1"), "{forwarded}");
    }
    // HTTP/2 multiplexes: every request went over the same upstream connection.
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // Concurrent requests share it too, and bodies stream both ways.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        let url = gw.url("/upload");
        tasks.push(tokio::spawn(async move {
            let req = http::Request::post(url)
                .body(ProxiedBody::Zeros { remaining: 300_000 })
                .unwrap();
            send(&c, req).await
        }));
    }
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, "received=300000");
        assert_eq!(a.header("x-seen-version"), Some("HTTP/2.0"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    gw.stop().await;
}

#[tokio::test]
async fn an_https_upstream_negotiates_http2_by_alpn_with_the_configured_ca() {
    let (dir, ca) = ca_file("alpn");
    let (h2_backend, h2_accepted) =
        spawn_counted_backend("tls-h2", Some(test_tls_acceptor(&[b"h2", b"http/1.1"]))).await;
    let (h1_backend, _) =
        spawn_counted_backend("tls-h1", Some(test_tls_acceptor(&[b"http/1.1"]))).await;
    let config = GatewayConfig {
        upstream_ca: Some(ca),
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(
        &format!(
            "[[services]]\nid = \"h2\"\nupstream = \"https://localhost:{}\"\n[[services.match]]\npath_prefix = \"/h2\"\n\
             [[services]]\nid = \"h1\"\nupstream = \"https://127.0.0.1:{}\"\n",
            h2_backend.port(),
            h1_backend.port()
        ),
        config,
    )
    .await;
    let c = client();
    for _ in 0..3 {
        let a = send(&c, get(&gw.url("/h2/x"), &[])).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.header("x-backend"), Some("tls-h2"));
        assert_eq!(a.header("x-seen-version"), Some("HTTP/2.0"));
        assert_eq!(
            a.header("x-seen-authority"),
            Some(format!("localhost:{}", h2_backend.port()).as_str())
        );
        assert_eq!(a.header("x-seen-host"), None);
        assert!(
            a.header("x-seen-forwarded")
                .unwrap()
                .contains("proto=http;host=")
        );
    }
    assert_eq!(h2_accepted.load(Ordering::SeqCst), 1);

    // An upstream that offers only http/1.1 gets HTTP/1.1, with its own name as `Host`.
    let a = send(&c, get(&gw.url("/other"), &[])).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.header("x-backend"), Some("tls-h1"));
    assert_eq!(a.header("x-seen-version"), Some("HTTP/1.1"));
    assert_eq!(
        a.header("x-seen-host"),
        Some(format!("127.0.0.1:{}", h1_backend.port()).as_str())
    );
    assert!(gw.events.with_action("gateway.upstream_failed").is_empty());
    gw.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_untrusted_upstream_certificate_answers_502_with_an_event() {
    // No upstream_ca: the system's roots do not know the test CA.
    let (backend, _) =
        spawn_counted_backend("untrusted", Some(test_tls_acceptor(&[b"h2", b"http/1.1"]))).await;
    let gw = TestGateway::start(&policy(&format!("https://localhost:{}", backend.port()))).await;
    let c = client();
    for _ in 0..3 {
        let a = send(&c, get(&gw.url("/x"), &[])).await;
        assert_eq!(a.status, StatusCode::BAD_GATEWAY);
        assert_eq!(a.header("x-backend"), None);
    }
    // One event per second per service; the rest are counted.
    let events = gw.events.with_action("gateway.upstream_failed");
    assert_eq!(events.len(), 1, "{:?}", gw.events.actions());
    let e = &events[0];
    assert_eq!(e.labels.get("failure").map(String::as_str), Some("tls"));
    assert_eq!(
        e.labels.get("upstream").map(String::as_str),
        Some(format!("https://localhost:{}", backend.port()).as_str())
    );
    assert_eq!(e.service.as_ref().map(|s| s.id.as_str()), Some("bank"));
    let message = e.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("certificate") && message.contains("UnknownIssuer"),
        "{message}"
    );
    let metrics = gw.gateway.metrics_text();
    assert!(
        metrics.contains("haetae_gateway_upstream_errors_total{service=\"bank\",kind=\"tls\"} 3"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_unusable_upstream_ca_file_is_reported_with_its_path() {
    let dir = std::env::temp_dir().join(format!("haetae-gw-upstream-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not-a-ca.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    for path in [not_pem.clone(), dir.join("missing.pem")] {
        let config = GatewayConfig {
            upstream_ca: Some(path.clone()),
            ..GatewayConfig::default()
        };
        let err = Gateway::new(
            &config,
            std::sync::Arc::new(Collector::default()) as std::sync::Arc<dyn EventSink>,
            registry(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, GatewayError::Tls { path: p, .. } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains("upstream_ca"), "{err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
