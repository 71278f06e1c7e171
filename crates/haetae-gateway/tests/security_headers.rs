//! `security-headers` through a real gateway: an upstream on 127.0.0.1 that sends weak or
//! no security headers, and what the client receives in enforce and monitor mode.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use haetae_core::PolicySnapshot;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// An upstream whose `/weak` page sends its own weak frame options and advertises its
/// software; every other path sends no security headers at all.
async fn spawn_weak_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let mut r = Response::new(Full::new(Bytes::from_static(b"page")));
                    if req.uri().path() == "/weak" {
                        let h = r.headers_mut();
                        h.insert("x-frame-options", "ALLOWALL".parse().unwrap());
                        h.insert("x-powered-by", "PHP/5.4".parse().unwrap());
                    }
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn policy(upstream: SocketAddr, mode: &str, config: &str) -> String {
    format!(
        r#"
        [[services]]
        id = "bank"
        upstream = "http://{upstream}"
        [[filters]]
        id = "headers"
        kind = "security-headers"
        mode = "{mode}"
        config = {{ {config} }}
        [[mappings]]
        service = "bank"
        filters = ["headers"]
        "#
    )
}

#[tokio::test]
async fn missing_security_headers_are_added_with_bank_defaults() {
    let up = spawn_weak_upstream().await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let r = get_text(&gw.url("/")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'self'")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(
        r.header("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    let events = gw.events.with_action("security-headers.modify");
    assert_eq!(events.len(), 1, "one event per response, the engine's");
    assert!(gw.events.with_action("security-headers.applied").is_empty());
    let labels = &events[0].labels;
    assert_eq!(labels.get("mode").map(String::as_str), Some("enforce"));
    assert_eq!(
        labels.get("headers_set").map(String::as_str),
        Some(
            "strict-transport-security,content-security-policy,x-content-type-options,\
             x-frame-options,referrer-policy"
        )
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_upstreams_own_value_is_kept_unless_values_are_enforced() {
    let up = spawn_weak_upstream().await;
    let gw = TestGateway::start(&policy(up, "enforce", "")).await;
    let r = get_text(&gw.url("/weak")).await;
    assert_eq!(r.header("x-frame-options"), Some("ALLOWALL"));
    assert_eq!(
        r.header("x-powered-by"),
        None,
        "software banners are removed"
    );
    gw.stop().await;

    let gw = TestGateway::start(&policy(
        up,
        "enforce",
        r#"frame_options = "DENY", enforce_values = true"#,
    ))
    .await;
    let r = get_text(&gw.url("/weak")).await;
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let e = &gw.events.with_action("security-headers.modify")[0];
    assert!(
        e.labels["headers_set"]
            .split(',')
            .any(|h| h == "x-frame-options"),
        "the replaced value is named: {:?}",
        e.labels
    );
    assert_eq!(
        e.labels.get("headers_removed").map(String::as_str),
        Some("x-powered-by")
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_empty_value_leaves_that_header_to_the_upstream() {
    let up = spawn_weak_upstream().await;
    let gw = TestGateway::start(&policy(up, "enforce", r#"csp = """#)).await;
    let r = get_text(&gw.url("/")).await;
    assert_eq!(r.header("content-security-policy"), None);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    gw.stop().await;
}

#[tokio::test]
async fn monitor_mode_reports_missing_headers_without_changing_the_response() {
    let up = spawn_weak_upstream().await;
    let gw = TestGateway::start(&policy(up, "monitor", "enforce_values = true")).await;
    let r = get_text(&gw.url("/weak")).await;
    assert_eq!(r.header("strict-transport-security"), None);
    assert_eq!(r.header("x-frame-options"), Some("ALLOWALL"));
    assert_eq!(r.header("x-powered-by"), Some("PHP/5.4"));
    let m = &gw.events.with_action("security-headers.modify")[0];
    assert_eq!(m.labels["mode"], "monitor");
    let set: Vec<&str> = m.labels["headers_set"].split(',').collect();
    assert!(set.contains(&"strict-transport-security"), "{set:?}");
    assert!(set.contains(&"x-frame-options"), "{set:?}");
    assert_eq!(m.labels["headers_removed"], "x-powered-by");
    gw.stop().await;
}

#[tokio::test]
async fn a_response_that_already_has_every_header_causes_no_event() {
    let up = spawn_weak_upstream().await;
    // Only frame options configured, and the upstream's /weak page has its own.
    let config =
        r#"hsts = "", csp = "", content_type_options = "", referrer_policy = "", remove = []"#;
    let gw = TestGateway::start(&policy(up, "enforce", config)).await;
    let r = get_text(&gw.url("/weak")).await;
    assert_eq!(r.header("x-frame-options"), Some("ALLOWALL"));
    assert!(gw.events.with_action("security-headers.modify").is_empty());
    gw.stop().await;
}

#[test]
fn an_invalid_configuration_is_rejected_with_its_path() {
    let policy = PolicySnapshot::from_toml(&policy(
        "127.0.0.1:9".parse().unwrap(),
        "enforce",
        r#"hsts = "max-age=300""#,
    ))
    .unwrap();
    let gateway = haetae_gateway::Gateway::new(
        &haetae_core::config::GatewayConfig::default(),
        std::sync::Arc::new(Collector::default()),
        registry(),
    )
    .unwrap();
    let err = gateway.apply_policy(&policy).unwrap_err().to_string();
    assert!(err.contains("config.hsts"), "{err}");
    assert!(err.contains("under a day"), "{err}");
}
