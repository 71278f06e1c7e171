//! The gateway's acceptance tests: a real gateway and real upstreams on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use haetae_core::PolicySnapshot;
use http::{Request, StatusCode};

fn restrict_policy(upstream: std::net::SocketAddr, mode: &str) -> String {
    format!(
        r#"
        version = 1
        [[services]]
        id = "bank"
        upstream = "http://{upstream}"

        [[filters]]
        id = "device"
        kind = "device-info"

        [[filters]]
        id = "restrict"
        kind = "restrict"
        mode = "{mode}"
        config = {{ device_lists = ["restricted-devices"], users = ["blocked-user"], user_header = "X-User-Id", notice_path = "/notice" }}

        [[mappings]]
        service = "bank"
        filters = ["device", "restrict"]

        [lists.restricted-devices]
        kind = "device"
        entries = ["BLOCKED-DEVICE-1"]
        "#
    )
}

const BLOCKED_UA: &str =
    "Mozilla/5.0 (Linux; Android 14) HaetaeApp/3.2.1 HaetaeDevice/BLOCKED-DEVICE-1";

#[tokio::test]
async fn requests_are_routed_by_host_method_and_path() {
    let a = spawn_backend("a").await;
    let b = spawn_backend("b").await;
    let gw = TestGateway::start(&format!(
        r#"
        [[services]]
        id = "transfer"
        upstream = "http://{a}"
        [[services.match]]
        host = "bank.example"
        methods = ["POST"]
        path_prefix = "/bank/transfer"

        [[services]]
        id = "rest"
        upstream = "http://{b}"
        [[services.match]]
        path_prefix = "/bank"
        "#
    ))
    .await;
    let c = client();
    let post = |host: &str, path: &str| {
        Request::post(gw.url(path))
            .header("host", host)
            .body(ProxiedBody::Bytes(Some("x=1".into())))
            .unwrap()
    };
    let r = send(&c, post("bank.example", "/bank/transfer/go")).await;
    assert_eq!(r.header("x-backend"), Some("a"));
    assert_eq!(r.header("x-seen-path"), Some("/bank/transfer/go"));
    let r = send(&c, post("other.example", "/bank/transfer/go")).await;
    assert_eq!(
        r.header("x-backend"),
        Some("b"),
        "another host falls through"
    );
    let r = send(
        &c,
        get(&gw.url("/bank/transfer"), &[("host", "bank.example")]),
    )
    .await;
    assert_eq!(
        r.header("x-backend"),
        Some("b"),
        "GET is not the transfer service"
    );
    let r = send(&c, get(&gw.url("/elsewhere"), &[])).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "no service matches: the default"
    );
    gw.stop().await;
}

#[tokio::test]
async fn forwarding_headers_are_added_and_hop_by_hop_headers_removed() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&format!(
        "[[services]]\nid = \"all\"\nupstream = \"http://{a}\"\n"
    ))
    .await;
    let r = send(
        &client(),
        get(
            &gw.url("/x"),
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("connection", "connection-scoped"),
                ("connection-scoped", "secret"),
            ],
        ),
    )
    .await;
    // The peer is not a trusted proxy: its X-Forwarded-For is replaced, not appended to.
    assert_eq!(r.header("x-seen-xff"), Some("127.0.0.1"));
    assert!(
        r.header("x-seen-forwarded")
            .unwrap()
            .starts_with("for=127.0.0.1;proto=http")
    );
    assert_eq!(
        r.header("x-seen-hop"),
        None,
        "a header named in Connection is not forwarded"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_100_mb_body_streams_through_with_flat_memory() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&restrict_policy(a, "enforce")).await;
    let c = client();
    // Warm up the connection pools and allocator first.
    send(&c, get(&gw.url("/warm"), &[])).await;
    let before = rss_kib();
    const SIZE: u64 = 100 * 1024 * 1024;
    let req = Request::post(gw.url("/upload"))
        .body(ProxiedBody::Zeros { remaining: SIZE })
        .unwrap();
    let r = send(&c, req).await;
    let after = rss_kib();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        format!("received={SIZE}"),
        "every byte arrived upstream"
    );
    assert_eq!(
        gw.gateway
            .metrics()
            .body_buffered_bytes
            .load(Ordering::Relaxed),
        0,
        "no filter asked for the body, so none was buffered"
    );
    let growth_mib = after.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 32,
        "RSS grew by {growth_mib} MiB while 100 MiB streamed (before {before} KiB, after {after} KiB)"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_100_mb_response_streams_back_with_flat_memory() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&restrict_policy(a, "enforce")).await;
    let c = client();
    send(&c, get(&gw.url("/warm"), &[])).await;
    let before = rss_kib();
    const SIZE: u64 = 100 * 1024 * 1024;
    let resp = c
        .request(get(&gw.url(&format!("/zeros/{SIZE}")), &[]))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut received = 0u64;
    let mut peak = before;
    let mut next_sample = 0u64;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if let Some(d) = frame.unwrap().data_ref() {
            received += d.len() as u64;
        }
        if received >= next_sample {
            peak = peak.max(rss_kib());
            next_sample += 4 << 20;
        }
    }
    peak = peak.max(rss_kib());
    assert_eq!(received, SIZE, "every byte arrived at the client");
    let growth_mib = peak.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 32,
        "RSS grew by {growth_mib} MiB while 100 MiB streamed back (before {before} KiB, peak {peak} KiB)"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_filter_that_asks_sees_a_bounded_view_and_the_whole_body_still_goes_upstream() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&format!(
        r#"
        [[services]]
        id = "all"
        upstream = "http://{a}"
        [[filters]]
        id = "peek"
        kind = "test-body-peek"
        [[mappings]]
        service = "all"
        filters = ["peek"]
        "#
    ))
    .await;
    let c = client();
    let form = |body: String| {
        Request::post(gw.url("/pay"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(ProxiedBody::Bytes(Some(body.into())))
            .unwrap()
    };
    let r = send(&c, form("amount=13&to=1".into())).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the filter read the form and refused"
    );
    assert_eq!(r.header("x-backend"), None);
    let long = format!("amount=1&pad={}", "p".repeat(10_000));
    let r = send(&c, form(long.clone())).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        format!("received={}", long.len()),
        "the whole body went upstream"
    );
    let seen = r.header("x-seen-body-seen").unwrap();
    let (n, complete) = seen.split_once(':').unwrap();
    assert_eq!(n, "64", "the view is cut at the asked limit");
    assert_eq!(complete, "false");
    gw.stop().await;
}

#[tokio::test]
async fn a_restricted_device_is_forwarded_to_the_notice_page_and_the_event_names_its_user() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&restrict_policy(a, "enforce")).await;
    let c = client();
    let req = Request::post(gw.url("/bank/transfer"))
        .header("user-agent", BLOCKED_UA)
        .header("x-user-id", "kim-1234")
        .body(ProxiedBody::Bytes(Some("amount=1000".into())))
        .unwrap();
    let r = send(&c, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("x-seen-path"),
        Some("/notice"),
        "forwarded to the notice page"
    );
    assert_eq!(r.header("x-seen-method"), Some("GET"));
    assert_eq!(
        r.body, "received=0",
        "the transfer's body never reached the app"
    );
    assert_eq!(r.header("x-seen-notice"), Some("restricted-device"));
    let events = gw.events.with_action("restrict.notice");
    assert_eq!(events.len(), 1, "{:?}", gw.events.actions());
    let e = &events[0];
    assert_eq!(e.user.as_ref().unwrap().id, "kim-1234");
    assert_eq!(e.device.as_ref().unwrap().id, "BLOCKED-DEVICE-1");
    assert_eq!(e.rule.as_ref().unwrap().name, "restricted-device");
    assert_eq!(e.labels["mode"], "enforce");
    assert_eq!(e.haetae.filter.as_deref(), Some("restrict"));
    assert_eq!(e.haetae.policy_version, Some(1));
    // A user on the list is restricted from any device; others pass.
    let r = send(&c, get(&gw.url("/bank"), &[("x-user-id", "blocked-user")])).await;
    assert_eq!(r.header("x-seen-path"), Some("/notice"));
    let r = send(&c, get(&gw.url("/bank"), &[("x-user-id", "kim-1234")])).await;
    assert_eq!(r.header("x-seen-path"), Some("/bank"));
    gw.stop().await;
}

#[tokio::test]
async fn the_device_info_filter_writes_a_transaction_log_event_without_secrets() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&restrict_policy(a, "enforce")).await;
    let r = send(
        &client(),
        get(
            &gw.url("/bank/balance?session=SECRET-SESSION"),
            &[
                ("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) HaetaeApp/3.2.1 HaetaeDevice/PHONE-7"),
                ("cookie", "JSESSIONID=SECRET-SESSION"),
                ("x-user-id", "kim-1234"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // on_log runs after the response, off the response path.
    let deadline = Instant::now() + Duration::from_secs(2);
    while gw.events.count("device-info.transaction") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events = gw.events.with_action("device-info.transaction");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.device.as_ref().unwrap().id, "PHONE-7");
    assert_eq!(e.user.as_ref().unwrap().id, "kim-1234");
    assert_eq!(e.labels["device.os"], "iOS 17.4");
    assert_eq!(e.labels["device.app_version"], "3.2.1");
    assert_eq!(e.http.as_ref().unwrap().response_status_code, Some(200));
    let json = e.to_json();
    assert!(!json.contains("SECRET-SESSION"), "{json}");
    gw.stop().await;
}

#[tokio::test]
async fn monitor_mode_lets_a_restricted_device_through_and_still_emits_the_event() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&restrict_policy(a, "monitor")).await;
    let r = send(
        &client(),
        get(
            &gw.url("/bank/transfer"),
            &[("user-agent", BLOCKED_UA), ("x-user-id", "kim-1234")],
        ),
    )
    .await;
    assert_eq!(
        r.header("x-seen-path"),
        Some("/bank/transfer"),
        "not acted on"
    );
    let events = gw.events.with_action("restrict.notice");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].labels["mode"], "monitor");
    assert_eq!(events[0].user.as_ref().unwrap().id, "kim-1234");
    gw.stop().await;
}

fn failing_policy(upstream: std::net::SocketAddr, failure: &str) -> String {
    format!(
        r#"
        [[services]]
        id = "all"
        upstream = "http://{upstream}"
        [[filters]]
        id = "boom"
        kind = "test-panic"
        failure = "{failure}"
        [[mappings]]
        service = "all"
        filters = ["boom"]
        "#
    )
}

#[tokio::test]
async fn a_panicking_filter_that_fails_open_lets_traffic_through() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&failing_policy(a, "fail-open")).await;
    let r = send(&client(), get(&gw.url("/x"), &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-backend"), Some("a"));
    let failures = gw.events.with_action("gateway.filter_failure");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].labels["reason"], "panic");
    assert!(
        failures[0]
            .message
            .as_ref()
            .unwrap()
            .contains("panicked on purpose")
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_panicking_filter_that_fails_closed_returns_503_and_its_breaker_opens_after_n_failures() {
    let a = spawn_backend("a").await;
    let config = haetae_core::config::GatewayConfig {
        breaker_failures: 3,
        breaker_window_ms: 60_000,
        breaker_cooldown_ms: 60_000,
        ..Default::default()
    };
    let gw = TestGateway::start_with(&failing_policy(a, "fail-closed"), config).await;
    let c = client();
    for _ in 0..5 {
        let r = send(&c, get(&gw.url("/x"), &[])).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.header("x-backend"), None);
    }
    let health = gw.gateway.health();
    let boom = health.filters.iter().find(|f| f.id == "boom").unwrap();
    assert_eq!(boom.breaker, "open");
    assert_eq!(
        boom.calls, 3,
        "after the breaker opened the filter was not called"
    );
    assert_eq!(health.status, "degraded");
    assert_eq!(gw.events.count("gateway.breaker_open"), 1);
    assert_eq!(gw.events.count("gateway.filter_failure"), 3);
    let metrics = get_text(&format!("http://{}/metrics", gw.admin)).await.body;
    assert!(
        metrics.contains("haetae_filter_breaker_open{filter=\"boom\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("haetae_filter_failures_total{filter=\"boom\",reason=\"panic\"} 3"));
    assert!(
        metrics.contains("haetae_filter_failures_total{filter=\"boom\",reason=\"breaker_open\"} 2")
    );
    gw.stop().await;
}

/// A filter that never awaits ends on its first poll, which runs without a timer: one
/// that blocked its thread past its budget still counts as over budget, and fails closed.
#[tokio::test]
async fn a_filter_that_blocks_past_its_budget_counts_as_a_timeout() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&format!(
        r#"
        [[services]]
        id = "all"
        upstream = "http://{a}"
        [[filters]]
        id = "blocker"
        kind = "test-block"
        failure = "fail-closed"
        budget_ms = 20
        config = {{ ms = 80 }}
        [[mappings]]
        service = "all"
        filters = ["blocker"]
        "#
    ))
    .await;
    let r = send(&client(), get(&gw.url("/x"), &[])).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "fail-closed");
    let failures = gw.events.with_action("gateway.filter_failure");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].labels["reason"], "timeout");
    gw.stop().await;
}

#[tokio::test]
async fn a_sleeping_filter_is_cut_at_its_budget() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&format!(
        r#"
        [[services]]
        id = "all"
        upstream = "http://{a}"
        [[filters]]
        id = "slow"
        kind = "test-sleep"
        budget_ms = 50
        config = {{ ms = 10000 }}
        [[mappings]]
        service = "all"
        filters = ["slow"]
        "#
    ))
    .await;
    let started = Instant::now();
    let r = send(&client(), get(&gw.url("/x"), &[])).await;
    let took = started.elapsed();
    assert_eq!(r.status, StatusCode::OK, "fail-open: the request went on");
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(
        took < Duration::from_millis(1000),
        "cut at the budget, not after 10 s: {took:?}"
    );
    let failures = gw.events.with_action("gateway.filter_failure");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].labels["reason"], "timeout");
    gw.stop().await;
}

#[tokio::test]
async fn an_invalid_policy_is_rejected_whole_and_the_running_one_stays() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&restrict_policy(a, "enforce")).await;
    let bad = PolicySnapshot::from_toml(
        r#"
        version = 2
        [[services]]
        id = "bank"
        upstream = "gopher://x"
        [[filters]]
        id = "restrict"
        kind = "restrict"
        config = { notice_path = "notice" }
        [[mappings]]
        service = "bank"
        filters = ["restrict", "missing"]
        "#,
    )
    .unwrap();
    let errors = gw.gateway.apply_policy(&bad).unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "services[0].upstream",
            "mappings[0].filters[1]",
            "filters[0].config.notice_path"
        ]
    );
    assert_eq!(gw.gateway.policy_version(), 1);
    assert_eq!(gw.events.count("gateway.policy_rejected"), 1);
    let r = send(
        &client(),
        get(&gw.url("/bank"), &[("user-agent", BLOCKED_UA)]),
    )
    .await;
    assert_eq!(
        r.header("x-seen-path"),
        Some("/notice"),
        "the old chain still runs"
    );
    gw.stop().await;
}

#[tokio::test]
async fn health_and_metrics_are_served_on_the_admin_listener() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&restrict_policy(a, "enforce")).await;
    send(&client(), get(&gw.url("/bank"), &[])).await;
    let health = get_text(&format!("http://{}/health", gw.admin)).await;
    assert_eq!(health.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["policy_version"], 1);
    assert_eq!(json["filters"].as_array().unwrap().len(), 2);
    let metrics = get_text(&format!("http://{}/metrics", gw.admin)).await;
    assert!(metrics.body.contains("haetae_gateway_policy_version 1"));
    assert!(
        metrics
            .body
            .contains("haetae_gateway_responses_total{service=\"bank\",class=\"2xx\"} 1")
    );
    assert!(
        metrics
            .body
            .contains("haetae_filter_calls_total{filter=\"restrict\",kind=\"restrict\"} 1")
    );
    let hb = gw.gateway.heartbeat();
    assert_eq!(hb.haetae.policy_version, Some(1));
    assert_eq!(hb.labels["filter.restrict"], "closed");
    gw.stop().await;
}

#[tokio::test]
async fn an_unreachable_upstream_gives_502_and_is_counted() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = TestGateway::start(&format!(
        "[[services]]\nid = \"gone\"\nupstream = \"http://127.0.0.1:{port}\"\n"
    ))
    .await;
    let r = send(&client(), get(&gw.url("/x"), &[])).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let metrics = gw.gateway.metrics().render();
    assert!(
        metrics
            .contains("haetae_gateway_upstream_errors_total{service=\"gone\",kind=\"connect\"} 1")
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_policy_swaps_under_load_fail_no_request() {
    let a = spawn_backend("a").await;
    let b = spawn_backend("b").await;
    let gw = TestGateway::start(&restrict_policy(a, "enforce")).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        let url = gw.url("/bank/balance");
        workers.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                match c
                    .request(get(&url, &[("user-agent", "HaetaeDevice/OK-1")]))
                    .await
                {
                    Ok(resp) if resp.status() == StatusCode::OK => {
                        use http_body_util::BodyExt;
                        match resp.into_body().collect().await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for version in 2..102u64 {
        let upstream = if version % 2 == 0 { b } else { a };
        let mut policy = PolicySnapshot::from_toml(&restrict_policy(upstream, "enforce")).unwrap();
        policy.version = version;
        gw.gateway.apply_policy(&policy).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(gw.gateway.policy_version(), 101);
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during the swaps",
        ok + failed
    );
    assert!(
        ok >= 100,
        "the load generator ran through the swaps ({ok} requests)"
    );
    assert_eq!(
        gw.gateway.metrics().policy_applied.load(Ordering::Relaxed),
        101
    );
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let a = spawn_backend("a").await;
    let gw = TestGateway::start(&format!(
        r#"
        [[services]]
        id = "all"
        upstream = "http://{a}"
        [[filters]]
        id = "slow"
        kind = "test-sleep"
        budget_ms = 2000
        config = {{ ms = 300 }}
        [[mappings]]
        service = "all"
        filters = ["slow"]
        "#
    ))
    .await;
    let url = gw.url("/x");
    let in_flight = tokio::spawn(async move { send(&client(), get(&url, &[])).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = gw.addr;
    gw.stop().await;
    let r = in_flight.await.unwrap();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the request that was in flight completed"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}

/// Test-only filter: errors while `failing` is set.
struct Flaky(Arc<AtomicBool>);

#[async_trait::async_trait]
impl haetae_gateway::SecurityFilter for Flaky {
    fn phases(&self) -> haetae_gateway::Phases {
        haetae_gateway::Phases {
            request_headers: true,
            ..Default::default()
        }
    }
    async fn on_request_headers(
        &self,
        _ctx: &mut haetae_gateway::FilterContext<'_>,
    ) -> haetae_gateway::PhaseResult {
        if self.0.load(Ordering::Relaxed) {
            Err(haetae_gateway::FilterError::new(
                "backend of the filter unavailable",
            ))
        } else {
            Ok(haetae_gateway::Decision::Continue)
        }
    }
}

#[tokio::test]
async fn an_open_breaker_lets_one_trial_through_after_the_cooldown_and_closes_on_success() {
    let a = spawn_backend("a").await;
    let failing = Arc::new(AtomicBool::new(true));
    let mut registry = registry();
    let flag = Arc::clone(&failing);
    registry.register(
        "test-flaky",
        Arc::new(move |_, _| -> haetae_gateway::filters::BuildResult {
            Ok(Arc::new(Flaky(Arc::clone(&flag))))
        }),
    );
    let config = haetae_core::config::GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        breaker_failures: 2,
        breaker_window_ms: 60_000,
        breaker_cooldown_ms: 200,
        ..Default::default()
    };
    let events = Arc::new(Collector::default());
    let gateway = Arc::new(
        haetae_gateway::Gateway::new(
            &config,
            Arc::clone(&events) as Arc<dyn haetae_gateway::EventSink>,
            registry,
        )
        .unwrap(),
    );
    let policy = PolicySnapshot::from_toml(&format!(
        r#"
        [[services]]
        id = "all"
        upstream = "http://{a}"
        [[filters]]
        id = "flaky"
        kind = "test-flaky"
        failure = "fail-closed"
        [[mappings]]
        service = "all"
        filters = ["flaky"]
        "#
    ))
    .unwrap();
    gateway.apply_policy(&policy).unwrap();
    let running = gateway.start().await.unwrap();
    let url = format!("http://{}/x", running.addr);
    let c = client();
    for _ in 0..3 {
        assert_eq!(
            send(&c, get(&url, &[])).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(gateway.health().filters[0].breaker, "open");
    failing.store(false, Ordering::Relaxed);
    assert_eq!(
        send(&c, get(&url, &[])).await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "still cooling down: not called"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        send(&c, get(&url, &[])).await.status,
        StatusCode::OK,
        "the trial call succeeded"
    );
    assert_eq!(gateway.health().filters[0].breaker, "closed");
    assert_eq!(events.count("gateway.breaker_open"), 1);
    assert_eq!(events.count("gateway.breaker_closed"), 1);
    assert_eq!(send(&c, get(&url, &[])).await.status, StatusCode::OK);
    running.shutdown().await;
}

#[tokio::test]
async fn requests_that_match_no_service_go_to_the_default_upstream_when_one_is_set() {
    let a = spawn_backend("a").await;
    let fallback = spawn_backend("fallback").await;
    let config = haetae_core::config::GatewayConfig {
        default_upstream: Some(format!("http://{fallback}")),
        ..Default::default()
    };
    let gw = TestGateway::start_with(
        &format!(
            "[[services]]\nid = \"bank\"\nupstream = \"http://{a}\"\n[[services.match]]\npath_prefix = \"/bank\"\n"
        ),
        config,
    )
    .await;
    let c = client();
    assert_eq!(
        send(&c, get(&gw.url("/bank/x"), &[]))
            .await
            .header("x-backend"),
        Some("a")
    );
    let r = send(&c, get(&gw.url("/other"), &[])).await;
    assert_eq!(r.header("x-backend"), Some("fallback"));
    assert_eq!(r.header("x-seen-path"), Some("/other"));
    gw.stop().await;
}

/// The `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)).
fn websocket_accept(key: &str) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in digest.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads an HTTP/1.1 head (up to the blank line) from a socket, byte by byte so nothing
/// after it is consumed.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = stream.read_u8().await.expect("the head arrives");
        head.push(b);
        assert!(head.len() < 16 * 1024, "head too long");
    }
    String::from_utf8(head).unwrap()
}

fn head_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A WebSocket server (RFC 6455) on a raw socket: completes the handshake, then answers
/// each text frame with a text frame of the same payload upper-cased. It reports the
/// handshake headers it saw in `x-seen-*` headers of its `101`.
async fn spawn_websocket_backend() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let head = read_head(&mut s).await;
                let key = head_value(&head, "sec-websocket-key").unwrap_or_default();
                let upgrade = head_value(&head, "upgrade").unwrap_or_default();
                let connection = head_value(&head, "connection").unwrap_or_default();
                let device = head_value(&head, "user-agent").unwrap_or_default();
                if !upgrade.eq_ignore_ascii_case("websocket") {
                    // A plain request (the notice page): a plain answer naming the path.
                    let path = head.split(' ').nth(1).unwrap_or_default();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Seen-Path: {path}\r\nX-Seen-Upgrade: {upgrade}\r\n\r\nnotice"
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                    return;
                }
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nX-Seen-Upgrade: {upgrade}\r\nX-Seen-Connection: {connection}\r\nX-Seen-Ua: {device}\r\n\r\n",
                    websocket_accept(key)
                );
                s.write_all(answer.as_bytes()).await.unwrap();
                // Frames: FIN+text, masked (client) payload < 126 bytes.
                loop {
                    let mut h = [0u8; 2];
                    if s.read_exact(&mut h).await.is_err() {
                        return;
                    }
                    let opcode = h[0] & 0x0f;
                    let len = usize::from(h[1] & 0x7f);
                    let mut mask = [0u8; 4];
                    s.read_exact(&mut mask).await.unwrap();
                    let mut payload = vec![0u8; len];
                    s.read_exact(&mut payload).await.unwrap();
                    for (i, b) in payload.iter_mut().enumerate() {
                        *b ^= mask[i % 4];
                    }
                    if opcode == 0x8 {
                        let _ = s.write_all(&[0x88, 0]).await;
                        return;
                    }
                    let reply = payload.to_ascii_uppercase();
                    let mut frame = vec![0x81, u8::try_from(reply.len()).unwrap()];
                    frame.extend_from_slice(&reply);
                    s.write_all(&frame).await.unwrap();
                }
            });
        }
    });
    addr
}

/// A masked client text frame.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode, 0x80 | u8::try_from(payload.len()).unwrap()];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test]
async fn a_websocket_is_passed_through_after_the_filters_saw_its_handshake() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = spawn_websocket_backend().await;
    let gw = TestGateway::start(&restrict_policy(backend, "enforce")).await;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let handshake = |user: &str| {
        format!(
            "GET /bank/stream HTTP/1.1\r\nHost: bank.example\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: MyBank/1 HaetaeDevice/DEV-7\r\nX-User-Id: {user}\r\n\r\n"
        )
    };

    // An allowed user: 101 with the upstream's accept, then frames both ways.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(handshake("kim").as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(
        head_value(&head, "sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "RFC 6455's sample key and accept"
    );
    assert_eq!(head_value(&head, "upgrade"), Some("websocket"));
    assert_eq!(head_value(&head, "x-seen-upgrade"), Some("websocket"));
    assert_eq!(head_value(&head, "x-seen-connection"), Some("upgrade"));
    for text in ["hello", "transfer 1000"] {
        s.write_all(&client_frame(0x1, text.as_bytes()))
            .await
            .unwrap();
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.unwrap();
        assert_eq!(h[0], 0x81, "a final text frame");
        let mut payload = vec![0u8; usize::from(h[1])];
        s.read_exact(&mut payload).await.unwrap();
        assert_eq!(payload, text.to_ascii_uppercase().as_bytes());
    }
    assert_eq!(
        gw.gateway.metrics().tunnels_active.load(Ordering::Relaxed),
        1
    );
    s.write_all(&client_frame(0x8, b"")).await.unwrap();
    let mut close = [0u8; 2];
    s.read_exact(&mut close).await.unwrap();
    assert_eq!(close, [0x88, 0]);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while gw.gateway.metrics().tunnels_active.load(Ordering::Relaxed) != 0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        gw.gateway.metrics().tunnels_active.load(Ordering::Relaxed),
        0
    );
    assert_eq!(gw.gateway.metrics().upgrades.load(Ordering::Relaxed), 1);

    // A restricted user: the filters saw the handshake and sent it to the notice page,
    // which is a plain page, not a tunnel.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(handshake("blocked-user").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(head_value(&head, "x-seen-path"), Some("/notice"));
    assert_eq!(head_value(&head, "x-seen-upgrade"), Some(""));
    assert_eq!(gw.events.count("restrict.notice"), 1);
    assert_eq!(gw.gateway.metrics().upgrades.load(Ordering::Relaxed), 1);
    gw.stop().await;
}
