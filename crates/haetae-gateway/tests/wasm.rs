//! Proxy-Wasm filters (`kind = "wasm"`) through a real gateway on 127.0.0.1: the WAT
//! fixtures of `examples/wasm/wat/` (compiled here with the `wat` crate) and the C example
//! (`examples/wasm/c/`, built with clang for wasm32-wasi). Checks blocking and header
//! changes, the time budget (an endless loop), the memory cap (a memory bomb) and that a
//! trap in any callback affects only the request that caused it.
#![cfg(feature = "wasm")]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use haetae_core::config::GatewayConfig;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/wasm/wat/{name}.wat"))
}

/// Compiles a WAT fixture to a `.wasm` file in `dir`.
fn wasm_file(dir: &Path, name: &str) -> PathBuf {
    let bytes = wat::parse_file(fixture(name)).expect("the WAT fixture parses");
    let out = dir.join(format!("{name}.wasm"));
    std::fs::write(&out, bytes).unwrap();
    out
}

/// An upstream that answers 200 with the request headers it got, one `name: value` a line.
async fn spawn_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let mut text = String::new();
                    for (k, v) in req.headers() {
                        text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                    }
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn policy(upstream: SocketAddr, module: &Path, extra: &str, config: &str) -> String {
    format!(
        r#"
        [[services]]
        id = "bank"
        upstream = "http://{upstream}"
        [[filters]]
        id = "wasm-filter"
        kind = "wasm"
        {extra}
        config = {{ module = "{}", {config} }}
        [[mappings]]
        service = "bank"
        filters = ["wasm-filter"]
        "#,
        module.display()
    )
}

/// A gateway config whose circuit breaker does not open during a test that fails on
/// purpose.
fn tolerant() -> GatewayConfig {
    GatewayConfig {
        breaker_failures: 10_000,
        ..GatewayConfig::default()
    }
}

fn post(url: &str, body: &'static str) -> Request<ProxiedBody> {
    Request::post(url)
        .header("content-type", "text/plain")
        .body(ProxiedBody::Bytes(Some(Bytes::from_static(
            body.as_bytes(),
        ))))
        .unwrap()
}

#[tokio::test]
async fn a_wat_filter_blocks_on_a_header_and_changes_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let module = wasm_file(dir.path(), "block");
    let up = spawn_echo().await;
    let gw = TestGateway::start(&policy(
        up,
        &module,
        "",
        r#"configuration = "x-scanner", instances = 2"#,
    ))
    .await;
    let c = client();

    let r = send(&c, get(&gw.url("/login"), &[("x-scanner", "sqlmap/1.7")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, "blocked by wasm\n");
    let blocked = gw.events.with_action("wasm.respond");
    assert_eq!(blocked.len(), 1, "{:?}", gw.events.actions());
    assert_eq!(
        blocked[0].rule.as_ref().map(|r| r.name.as_str()),
        Some("wasm-block")
    );

    for _ in 0..5 {
        let r = send(&c, get(&gw.url("/account"), &[("user-agent", "bank-app")])).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("x-wasm-seen: yes\n"), "{}", r.body);
        assert_eq!(r.header("x-wasm-response"), Some("ok"));
    }
    assert_eq!(gw.events.count("gateway.filter_failure"), 0);
    gw.stop().await;

    // Monitor mode: reported, not acted on.
    let gw = TestGateway::start(&policy(
        up,
        &module,
        r#"mode = "monitor""#,
        r#"configuration = "x-scanner""#,
    ))
    .await;
    let r = send(&c, get(&gw.url("/login"), &[("x-scanner", "sqlmap")])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(gw.events.count("wasm.respond"), 1);
    gw.stop().await;
}

#[tokio::test]
async fn a_module_that_refuses_its_configuration_or_does_not_load_is_a_policy_error() {
    let dir = tempfile::tempdir().unwrap();
    let module = wasm_file(dir.path(), "block");
    let up: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let gateway = haetae_gateway::Gateway::new(
        &GatewayConfig::default(),
        std::sync::Arc::new(Collector::default()),
        registry(),
    )
    .unwrap();
    // block.wat refuses an empty configuration (proxy_on_configure returns false).
    let p =
        haetae_core::PolicySnapshot::from_toml(&policy(up, &module, "", "instances = 1")).unwrap();
    let err = format!("{:?}", gateway.apply_policy(&p).unwrap_err());
    assert!(err.contains("proxy_on_configure returned false"), "{err}");

    let missing = dir.path().join("missing.wasm");
    let p =
        haetae_core::PolicySnapshot::from_toml(&policy(up, &missing, "", "instances = 1")).unwrap();
    let err = format!("{:?}", gateway.apply_policy(&p).unwrap_err());
    assert!(
        err.contains("missing.wasm") && err.contains("config.module"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0\xff\xff").unwrap();
    let p =
        haetae_core::PolicySnapshot::from_toml(&policy(up, &garbage, "", "instances = 1")).unwrap();
    let err = format!("{:?}", gateway.apply_policy(&p).unwrap_err());
    assert!(err.contains("does not compile"), "{err}");
}

async fn timed(c: &TestClient, req: Request<ProxiedBody>) -> (Answer, Duration) {
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), send(c, req))
        .await
        .expect("the gateway answers despite the endless loop");
    (r, start.elapsed())
}

#[tokio::test]
async fn an_endless_loop_is_cut_at_the_budget_and_follows_the_failure_policy() {
    let dir = tempfile::tempdir().unwrap();
    let module = wasm_file(dir.path(), "loop");
    let up = spawn_echo().await;
    for (failure, expected) in [
        ("fail-open", StatusCode::OK),
        ("fail-closed", StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let gw = TestGateway::start_with(
            &policy(
                up,
                &module,
                &format!("budget_ms = 10\nfailure = \"{failure}\""),
                "instances = 1",
            ),
            tolerant(),
        )
        .await;
        let c = client();
        let (r, _) = timed(&c, get(&gw.url("/warm-up"), &[])).await;
        assert_eq!(r.status, StatusCode::OK);
        // The best of five, so a scheduling hiccup on a busy machine does not decide.
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let (r, took) = timed(&c, get(&gw.url("/spin"), &[])).await;
            assert_eq!(r.status, expected, "{failure}");
            best = best.min(took);
        }
        assert!(
            best < Duration::from_millis(20),
            "the loop was cut after {best:?}"
        );
        let failures = gw.events.with_action("gateway.filter_failure");
        assert_eq!(failures.len(), 5);
        let msg = failures[0].message.clone().unwrap_or_default();
        assert!(msg.contains("cut at its time budget of 10 ms"), "{msg}");
        // The instance was replaced: ordinary requests still pass.
        let (r, _) = timed(&c, get(&gw.url("/after"), &[])).await;
        assert_eq!(r.status, StatusCode::OK);
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_memory_bomb_traps_at_the_cap_and_the_gateway_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let module = wasm_file(dir.path(), "bomb");
    let up = spawn_echo().await;
    let gw = TestGateway::start_with(
        &policy(
            up,
            &module,
            "budget_ms = 2000\nfailure = \"fail-closed\"",
            "memory_limit_mb = 16, instances = 2, max_restarts_per_minute = 100",
        ),
        tolerant(),
    )
    .await;
    let c = client();
    // Warm up: one bomb, so allocator arenas and the first instances exist.
    let r = send(&c, get(&gw.url("/bomb"), &[])).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let before = rss_kib();
    for _ in 0..30 {
        let r = send(&c, get(&gw.url("/bomb"), &[])).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        let r = send(&c, get(&gw.url("/fine"), &[])).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let grown = rss_kib().saturating_sub(before);
    // 30 bombs of 16 MiB each would be 480 MiB if the instances were kept.
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    let failures = gw.events.with_action("gateway.filter_failure");
    assert_eq!(failures.len(), 31);
    let msg = failures[0].message.clone().unwrap_or_default();
    assert!(msg.contains("proxy_on_request_headers"), "{msg}");
    gw.stop().await;
}

#[tokio::test]
async fn a_trap_in_any_callback_only_affects_the_request_that_caused_it() {
    let dir = tempfile::tempdir().unwrap();
    let module = wasm_file(dir.path(), "trap");
    let up = spawn_echo().await;
    // letter, callback, whether the crashing request still gets its answer (the log
    // phase runs after the response is sent)
    for (letter, callback, answered) in [
        ('c', "proxy_on_context_create", false),
        ('h', "proxy_on_request_headers", false),
        ('u', "proxy_on_request_headers", false),
        ('b', "proxy_on_request_body", false),
        ('r', "proxy_on_response_headers", false),
        ('s', "proxy_on_response_body", false),
        ('d', "proxy_on_done", true),
        ('l', "proxy_on_done/proxy_on_log/proxy_on_delete", true),
        ('x', "proxy_on_done/proxy_on_log/proxy_on_delete", true),
    ] {
        let gw = TestGateway::start_with(
            &policy(
                up,
                &module,
                "failure = \"fail-closed\"",
                &format!(
                    "configuration = \"{letter}\", instances = 2, max_restarts_per_minute = 1000"
                ),
            ),
            tolerant(),
        )
        .await;
        let c = client();
        let mut tasks = Vec::new();
        for i in 0..24 {
            let c = c.clone();
            let path = if i % 3 == 0 { "/crash" } else { "/ok" };
            let url = gw.url(path);
            tasks.push(tokio::spawn(async move {
                (path, send(&c, post(&url, "amount=100")).await)
            }));
        }
        let mut crashed = 0;
        for t in tasks {
            let (path, r) = t.await.unwrap();
            if path == "/ok" {
                assert_eq!(
                    r.status,
                    StatusCode::OK,
                    "{letter}: an innocent request failed"
                );
                assert_eq!(r.header("x-trap-seen"), Some(letter.to_string().as_str()));
            } else {
                crashed += 1;
                let expected = if answered {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                assert_eq!(r.status, expected, "{letter}");
            }
        }
        // The log phase runs off the response path: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while gw.events.count("gateway.filter_failure") < crashed && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let failures = gw.events.with_action("gateway.filter_failure");
        assert_eq!(
            failures.len(),
            crashed,
            "{letter}: {:?}",
            failures
                .iter()
                .map(|e| (
                    e.message.clone(),
                    e.labels.get("phase").cloned(),
                    e.url.clone()
                ))
                .collect::<Vec<_>>()
        );
        let msg = failures[0].message.clone().unwrap_or_default();
        assert!(msg.contains(callback), "{letter}: {msg}");
        if letter == 'u' {
            assert!(
                msg.contains("unimplemented host function env.proxy_http_call"),
                "{msg}"
            );
        }
        gw.stop().await;
    }
}

#[tokio::test]
async fn restarts_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let module = wasm_file(dir.path(), "trap");
    let up = spawn_echo().await;
    let gw = TestGateway::start_with(
        &policy(
            up,
            &module,
            "",
            r#"configuration = "h", instances = 1, max_restarts_per_minute = 2"#,
        ),
        tolerant(),
    )
    .await;
    let c = client();
    for _ in 0..3 {
        let r = send(&c, get(&gw.url("/crash"), &[])).await;
        assert_eq!(r.status, StatusCode::OK, "fail-open");
    }
    // Three crashes, two restarts allowed: the filter now fails without running.
    let r = send(&c, get(&gw.url("/ok"), &[])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-trap-seen"), None, "the filter did not run");
    let failures = gw.events.with_action("gateway.filter_failure");
    let last = failures.last().unwrap().message.clone().unwrap_or_default();
    assert!(last.contains("max_restarts_per_minute"), "{last}");
    assert_eq!(gw.events.count("gateway.wasm_restart"), 2);
    gw.stop().await;
}

/// An example module: the file `env` names, or built here with `examples/wasm/build.sh`
/// into `dir`.
fn example_module(dir: &Path, env: &str, what: &str, file: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wasm/build.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(dir)
        .arg(what)
        .output()
        .expect("bash runs examples/wasm/build.sh");
    assert!(
        out.status.success(),
        "examples/wasm/build.sh {what} failed (C: install clang lld wasi-libc \
         libclang-rt-dev-wasm32; AssemblyScript: npm ci), or set {env}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(file)
}

/// The C example (`examples/wasm/c/block_header.c`).
#[tokio::test]
#[ignore = "needs clang with wasi-libc (examples/wasm/build.sh) or HAETAE_TEST_WASM_C=<block_header.wasm>"]
async fn the_c_filter_blocks_a_header_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let module = example_module(dir.path(), "HAETAE_TEST_WASM_C", "c", "block_header.wasm");
    let up = spawn_echo().await;
    let gw = TestGateway::start(&policy(
        up,
        &module,
        "",
        r#"configuration = "user-agent=SQLMap", instances = 2"#,
    ))
    .await;
    let c = client();
    for ua in ["sqlmap/1.7.2#stable", "Mozilla/5.0 (sqlMAP)"] {
        let r = send(&c, get(&gw.url("/login"), &[("user-agent", ua)])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{ua}");
        assert_eq!(r.body, "Request blocked by the C filter.\n");
    }
    let r = send(
        &c,
        get(&gw.url("/login"), &[("user-agent", "bank-app/3.1")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("x-c-filter: passed\n"), "{}", r.body);
    let blocked = gw.events.with_action("wasm.respond");
    assert_eq!(blocked.len(), 2);
    assert_eq!(
        blocked[0].rule.as_ref().map(|r| r.name.as_str()),
        Some("c-filter-pattern")
    );
    gw.stop().await;
}

/// The `AssemblyScript` example, built with a third-party SDK (`@solo-io/proxy-runtime`
/// 0.1.8): ABI compatibility with modules made for Envoy.
#[tokio::test]
#[ignore = "needs `npm ci` (assemblyscript, @solo-io/proxy-runtime) or HAETAE_TEST_WASM_AS=<as_block.wasm>"]
async fn the_assemblyscript_sdk_filter_runs_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let module = example_module(dir.path(), "HAETAE_TEST_WASM_AS", "as", "as_block.wasm");
    let up = spawn_echo().await;
    let gw = TestGateway::start(&policy(
        up,
        &module,
        "",
        r#"configuration = "x-scanner", root_id = "as_block", instances = 2"#,
    ))
    .await;
    let c = client();
    let r = send(&c, get(&gw.url("/login"), &[("x-scanner", "nikto")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, "blocked by AssemblyScript\n");
    for _ in 0..20 {
        let r = send(&c, get(&gw.url("/account"), &[])).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("x-as-filter: passed\n"), "{}", r.body);
        assert_eq!(r.header("x-as-root"), Some("as_block"));
    }
    let blocked = gw.events.with_action("wasm.respond");
    assert_eq!(blocked.len(), 1);
    assert_eq!(
        blocked[0].rule.as_ref().map(|r| r.name.as_str()),
        Some("as-block")
    );
    assert_eq!(
        gw.events.count("gateway.filter_failure"),
        0,
        "{:?}",
        gw.events.actions()
    );
    gw.stop().await;
}
