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

/// An HTTP/1.1 upstream that closes every connection after one response
/// (`Connection: close`), counting connections.
async fn spawn_closing_backend() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"closing")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn an_http1_upstream_connection_is_reused_and_closed_when_idle() {
    let (backend, accepted) = spawn_counted_backend("h1", None).await;
    let config = GatewayConfig {
        upstream_idle_timeout_ms: 300,
        ..GatewayConfig::default()
    };
    let gw = TestGateway::start_with(&policy(&format!("http://{backend}")), config).await;
    let c = client();
    for i in 0..5 {
        // Bodies both ways: the connection goes back to the pool once the response body
        // has been read to its end.
        let req = http::Request::post(gw.url(&format!("/k/{i}")))
            .body(ProxiedBody::Zeros { remaining: 70_000 })
            .unwrap();
        let a = send(&c, req).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, "received=70000");
        assert_eq!(a.header("x-seen-version"), Some("HTTP/1.1"));
        assert_eq!(a.header("x-seen-host"), Some(gw.addr.to_string().as_str()));
        let a = send(&c, get(&gw.url("/zeros/200000"), &[])).await;
        assert_eq!(a.body.len(), 200_000);
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one keep-alive connection"
    );

    // Idle past upstream_idle_timeout_ms: the pooled connection is closed, the next
    // request opens a new one.
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let a = send(&c, get(&gw.url("/after-idle"), &[])).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    gw.stop().await;
}

#[tokio::test]
async fn an_upstream_that_closes_its_connections_is_reconnected_and_a_dead_one_answers_502() {
    let (backend, accepted) = spawn_closing_backend().await;
    let dead = {
        // A port with nothing listening.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw = TestGateway::start(&format!(
        "[[services]]\nid = \"dead\"\nupstream = \"http://{dead}\"\n[[services.match]]\npath_prefix = \"/dead\"\n\
         [[services]]\nid = \"closing\"\nupstream = \"http://{backend}\"\n"
    ))
    .await;
    let c = client();
    for _ in 0..4 {
        let a = send(&c, get(&gw.url("/x"), &[])).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, "closing");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    let a = send(&c, get(&gw.url("/dead/x"), &[])).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    let events = gw.events.with_action("gateway.upstream_failed");
    assert_eq!(events.len(), 1, "{:?}", gw.events.actions());
    assert_eq!(
        events[0].labels.get("failure").map(String::as_str),
        Some("connect")
    );
    let message = events[0].message.as_deref().unwrap_or_default();
    assert!(
        message.contains(&format!("cannot connect to {dead}")),
        "{message}"
    );
    gw.stop().await;
}
