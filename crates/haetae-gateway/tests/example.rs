//! `examples/gateway-restrict.toml` as shipped: it loads, validates, and does what its
//! comments say (served here on ephemeral ports instead of 8080, upstream replaced by a
//! test backend).

mod common;

use std::sync::Arc;

use common::*;
use haetae_core::Config;
use haetae_gateway::{EventSink, FilterRegistry, Gateway};
use http::StatusCode;

const EXAMPLE: &str = include_str!("../../../examples/gateway-restrict.toml");

#[test]
fn the_restrict_example_loads_with_the_settings_the_issue_names() {
    let config = Config::load(Some(("gateway-restrict.toml", EXAMPLE)), Vec::new())
        .unwrap()
        .config;
    assert_eq!(config.gateway.listen, "127.0.0.1:8080".parse().unwrap());
    let policy = config.policy.expect("the example carries its policy");
    assert_eq!(policy.services[0].upstream, "http://127.0.0.1:9000");
    assert!(policy.services[0].matches.is_empty(), "every path");
    assert_eq!(policy.mappings[0].filters, ["device", "restrict"]);
    assert_eq!(
        policy.lists["restricted-devices"].entries,
        ["BLOCKED-DEVICE-1"]
    );
    assert_eq!(policy.lists["restricted-users"].entries, ["blocked-user"]);
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
async fn the_restrict_example_sends_the_blocked_device_and_user_to_the_notice_page() {
    let backend = spawn_backend("bank").await;
    let mut config = Config::load(Some(("gateway-restrict.toml", EXAMPLE)), Vec::new())
        .unwrap()
        .config;
    config.gateway.listen = "127.0.0.1:0".parse().unwrap();
    config.gateway.admin_listen = "127.0.0.1:0".parse().unwrap();
    let mut policy = config.policy.take().unwrap();
    policy.services[0].upstream = format!("http://{backend}");
    let events = Arc::new(Collector::default());
    let gateway = Arc::new(
        Gateway::new(
            &config.gateway,
            Arc::clone(&events) as Arc<dyn EventSink>,
            FilterRegistry::standard(),
        )
        .unwrap(),
    );
    gateway.apply_policy(&policy).unwrap();
    let running = gateway.start().await.unwrap();
    let url = format!("http://{}/transfer", running.addr);
    let c = client();
    let r = send(
        &c,
        get(
            &url,
            &[
                ("user-agent", "MyBank/1.0 HaetaeDevice/BLOCKED-DEVICE-1"),
                ("x-user-id", "kim"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-seen-path"), Some("/notice"));
    let r = send(&c, get(&url, &[("x-user-id", "blocked-user")])).await;
    assert_eq!(r.header("x-seen-path"), Some("/notice"));
    let r = send(
        &c,
        get(&url, &[("user-agent", "MyBank/1.0 HaetaeDevice/GOOD-1")]),
    )
    .await;
    assert_eq!(r.header("x-seen-path"), Some("/transfer"));
    let notices = events.with_action("restrict.notice");
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0].user.as_ref().unwrap().id, "kim");
    assert_eq!(notices[0].device.as_ref().unwrap().id, "BLOCKED-DEVICE-1");
    running.shutdown().await;
}
