//! `examples/gateway-standard.toml` as shipped: it loads, validates, and its chain does what
//! its comments say (served on ephemeral ports, upstream replaced by a test backend, with
//! the in-process bus's KV as `haetae gateway` gives a standalone gateway).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use haetae_bus::Bus;
use haetae_core::Config;
use haetae_gateway::{EventSink, FilterRegistry, Gateway};
use http::{Request, StatusCode};

const EXAMPLE: &str = include_str!("../../../examples/gateway-standard.toml");

/// Points `e2e-fields` at a temporary key directory (the example's is under `data_dir`).
fn private_key_dir(policy: &mut haetae_core::PolicySnapshot) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let e2e = policy
        .filters
        .iter_mut()
        .find(|f| f.kind == "e2e-fields")
        .expect("the example has e2e-fields");
    e2e.config["key_dir"] = serde_json::Value::from(dir.path().display().to_string());
    dir
}

#[test]
fn the_standard_example_loads_with_the_chain_in_order() {
    let config = Config::load(Some(("gateway-standard.toml", EXAMPLE)), Vec::new())
        .unwrap()
        .config;
    assert_eq!(config.gateway.listen, "127.0.0.1:8080".parse().unwrap());
    let mut policy = config.policy.expect("the example carries its policy");
    let _keys = private_key_dir(&mut policy);
    assert_eq!(policy.services[0].upstream, "http://127.0.0.1:9000");
    assert!(policy.services[0].matches.is_empty(), "every path");
    assert_eq!(
        policy.mappings[0].filters,
        [
            "device",
            "restrict",
            "e2e",
            "injection",
            "session",
            "fds",
            "uploads",
            "headers"
        ]
    );
    let gateway = Gateway::new(
        &config.gateway,
        Arc::new(Collector::default()),
        FilterRegistry::standard(),
    )
    .unwrap();
    gateway
        .apply_policy(&policy)
        .expect("the example policy is valid");
}

#[tokio::test]
async fn the_standard_example_adds_security_headers_and_refuses_a_vulnerable_upload_and_an_injection()
 {
    let backend = spawn_backend("bank").await;
    let mut config = Config::load(Some(("gateway-standard.toml", EXAMPLE)), Vec::new())
        .unwrap()
        .config;
    config.gateway.listen = "127.0.0.1:0".parse().unwrap();
    config.gateway.admin_listen = "127.0.0.1:0".parse().unwrap();
    let mut policy = config.policy.take().unwrap();
    policy.services[0].upstream = format!("http://{backend}");
    let _keys = private_key_dir(&mut policy);
    let kv = Bus::in_process()
        .kv("gateway", Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    let events = Arc::new(Collector::default());
    let gateway = Arc::new(
        Gateway::with_shared_state(
            &config.gateway,
            Arc::clone(&events) as Arc<dyn EventSink>,
            Some(kv),
            FilterRegistry::standard(),
        )
        .unwrap(),
    );
    gateway.apply_policy(&policy).unwrap();
    let running = gateway.start().await.unwrap();
    let url = |p: &str| format!("http://{}{p}", running.addr);
    let c = client();

    let r = send(&c, get(&url("/accounts"), &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("strict-transport-security").is_some());

    // A JPEG whose comment segment has length 1 (CVE-2004-0200).
    let jpeg: &[u8] = &[0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01, 0xFF, 0xD9];
    let req = Request::put(url("/profile/photo"))
        .header("content-type", "image/jpeg")
        .body(ProxiedBody::Bytes(Some(jpeg.into())))
        .unwrap();
    let r = send(&c, req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(events.count("upload-inspect.file"), 1);

    let r = send(
        &c,
        get(&url("/accounts?id=1%27%20OR%20%271%27%3D%271"), &[]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "injection blocks");
    assert!(r.header("x-haetae-incident").is_some());

    // e2e-fields serves its client module; a plaintext PIN is refused.
    let r = send(&c, get(&url("/haetae/e2e.js"), &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    let form = |body: &'static str| {
        Request::post(url("/transfer"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(ProxiedBody::Bytes(Some(body.into())))
            .unwrap()
    };
    let r = send(&c, form("amount=1000&pin=1234")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "plaintext PIN");
    // fds blocks a transfer to the listed fraud account.
    let r = send(
        &c,
        form("user_id=kim&amount=1000&payee_account=333-44-555555"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "fraud payee");
    assert_eq!(events.count("fds.decision"), 1);
    running.shutdown().await;
}
