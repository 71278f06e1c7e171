//! The gateway on `haetae-bus` (in-process backend): events leave through the bus's
//! emitter, policies published on the bus are applied and kept on disk, and filters get the
//! bus's shared key-value state.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use haetae_bus::{Bus, EmitterOptions};
use haetae_core::PolicySnapshot;
use haetae_core::config::GatewayConfig;
use haetae_gateway::filters::BuildResult;
use haetae_gateway::{
    Decision, EventSink, FilterContext, FilterError, Gateway, LastGoodPolicy, PhaseResult, Phases,
    SecurityFilter, watch_bus_policy,
};
use http::StatusCode;

/// Test-only filter: counts requests per client in the shared state and tells the upstream.
struct Counting;

#[async_trait::async_trait]
impl SecurityFilter for Counting {
    fn phases(&self) -> Phases {
        Phases {
            request_headers: true,
            ..Phases::default()
        }
    }
    async fn on_request_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        let kv = ctx
            .kv()
            .ok_or_else(|| FilterError::new("no shared state"))?;
        let n = kv
            .increment("requests", 1, None)
            .await
            .map_err(|e| FilterError::new(e.to_string()))?;
        ctx.attributes.set("count", n.to_string());
        Ok(Decision::Continue)
    }
}

fn config() -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        ..GatewayConfig::default()
    }
}

#[tokio::test]
async fn a_policy_published_on_the_bus_is_applied_and_kept_as_the_last_good_one() {
    let backend = spawn_backend("a").await;
    let bus = Bus::in_process();
    let emitter = Arc::new(bus.event_emitter(EmitterOptions::default()).unwrap());
    let gateway =
        Arc::new(Gateway::new(&config(), emitter as Arc<dyn EventSink>, registry()).unwrap());
    let running = gateway.start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("haetae-gw-bus-{}", std::process::id()));
    let last_good = LastGoodPolicy::in_data_dir(&dir);
    tokio::spawn(watch_bus_policy(
        Arc::clone(&gateway),
        bus.clone(),
        Some(last_good.clone()),
        running.shutdown_signal(),
    ));
    let url = format!("http://{}/x", running.addr);
    assert_eq!(
        get_text(&url).await.status,
        StatusCode::NOT_FOUND,
        "empty policy: the default"
    );
    let mut policy = PolicySnapshot::from_toml(&format!(
        "[[services]]\nid = \"all\"\nupstream = \"http://{backend}\"\n"
    ))
    .unwrap();
    policy.version = 5;
    bus.publish_policy(policy.clone()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while gateway.policy_version() != 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gateway.policy_version(), 5);
    assert_eq!(get_text(&url).await.status, StatusCode::OK);
    assert_eq!(last_good.load().unwrap(), Some(policy));
    running.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn decision_events_reach_a_bus_subscriber() {
    let backend = spawn_backend("a").await;
    let bus = Bus::in_process();
    let mut subscription = bus.subscribe_events("test-ingest").await.unwrap();
    let emitter = Arc::new(bus.event_emitter(EmitterOptions::default()).unwrap());
    let gateway =
        Arc::new(Gateway::new(&config(), emitter as Arc<dyn EventSink>, registry()).unwrap());
    let policy = PolicySnapshot::from_toml(&format!(
        r#"
        version = 3
        [[services]]
        id = "all"
        upstream = "http://{backend}"
        [[filters]]
        id = "restrict"
        kind = "restrict"
        mode = "monitor"
        config = {{ users = ["blocked-user"], user_header = "X-User-Id", notice_path = "/notice" }}
        [[mappings]]
        service = "all"
        filters = ["restrict"]
        "#
    ))
    .unwrap();
    gateway.apply_policy(&policy).unwrap();
    let running = gateway.start().await.unwrap();
    let r = send(
        &client(),
        get(
            &format!("http://{}/t", running.addr),
            &[("x-user-id", "blocked-user")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut found = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while found.is_none() && Instant::now() < deadline {
        let batch = subscription
            .next_batch(100, Duration::from_millis(200))
            .await
            .unwrap();
        found = batch
            .events
            .iter()
            .find(|e| e.event.event.action == "restrict.notice")
            .map(|e| e.event.clone());
        batch.ack().await.unwrap();
    }
    let event = found.expect("the decision event reached the subscriber");
    assert_eq!(event.user.unwrap().id, "blocked-user");
    assert_eq!(event.haetae.policy_version, Some(3));
    // The emitter's delivery counters are on the admin listener's /metrics.
    let metrics_url = format!("http://{}/metrics", running.admin_addr);
    let value = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = get_text(&metrics_url).await.body;
        if value(&text, "haetae_gateway_emitter_sent_total") >= 1 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(value(&text, "haetae_gateway_emitter_queued_total") >= 1);
    assert!(value(&text, "haetae_gateway_emitter_sent_total") >= 1);
    assert_eq!(value(&text, "haetae_gateway_emitter_spooled_total"), 0);
    assert_eq!(
        value(
            &text,
            "haetae_gateway_emitter_dropped_total{reason=\"queue_full\"}"
        ),
        0
    );
    running.shutdown().await;
}

#[tokio::test]
async fn filters_get_the_bus_shared_state() {
    let backend = spawn_backend("a").await;
    let bus = Bus::in_process();
    let kv = bus
        .kv("gateway-test", Duration::from_secs(60))
        .await
        .unwrap();
    let mut registry = registry();
    registry.register(
        "test-count",
        Arc::new(|_, _| -> BuildResult { Ok(Arc::new(Counting)) }),
    );
    let events = Arc::new(Collector::default());
    let gateway = Arc::new(
        Gateway::with_shared_state(
            &config(),
            Arc::clone(&events) as Arc<dyn EventSink>,
            Some(Arc::clone(&kv)),
            registry,
        )
        .unwrap(),
    );
    let policy = PolicySnapshot::from_toml(&format!(
        r#"
        [[services]]
        id = "all"
        upstream = "http://{backend}"
        [[filters]]
        id = "count"
        kind = "test-count"
        [[mappings]]
        service = "all"
        filters = ["count"]
        "#
    ))
    .unwrap();
    gateway.apply_policy(&policy).unwrap();
    let running = gateway.start().await.unwrap();
    let c = client();
    for _ in 0..3 {
        let r = send(&c, get(&format!("http://{}/t", running.addr), &[])).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let entry = kv
        .get("requests")
        .await
        .unwrap()
        .expect("the filter wrote its counter");
    assert_eq!(entry.value, b"3");
    assert_eq!(events.count("gateway.filter_failure"), 0);
    running.shutdown().await;
}
