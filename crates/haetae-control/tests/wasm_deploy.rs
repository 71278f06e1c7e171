//! Proxy-Wasm modules deployed through the Control Center while a gateway serves: upload a
//! module with the API, name it in a `wasm` filter, publish, and the gateway fetches it from
//! the bus, checks and compiles it off the request path and swaps its routing table in one
//! step; undeploying is publishing without it. Under load from many keep-alive clients, no
//! request fails: every answer is the upstream's 200 or the filter's own 403.
//!
//! The Center is `ControlCenter::start` on a real listener (as `haetae up` runs it); the
//! gateway is a real `Gateway` watching the same bus with `watch_bus_policy_with`. The
//! in-process bus always; NATS JetStream too when `HAETAE_TEST_NATS` is set.

#[path = "support/cluster.rs"]
mod cluster;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use haetae_bus::Bus;
use haetae_control::{ControlCenter, ControlHandle, ControlOptions};
use haetae_core::config::GatewayConfig;
use haetae_core::{Event, TrustedKey, WasmDeployConfig};
use haetae_gateway::{EventSink, FilterRegistry, Gateway, ModuleTrust, watch_bus_policy_with};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::time::Instant;

const ADMIN_PW: &str = "wasm deploy test admin password";

fn block_module() -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wasm/wat/block.wat");
    wat::parse_file(path).expect("the WAT fixture parses")
}

struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) -> bool {
        true
    }
}

/// The Center's API over HTTP, logged in as the first admin.
struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    cookie: String,
    csrf: String,
}

struct Reply {
    status: u16,
    bytes: Bytes,
    json: Value,
    text: String,
}

impl Api {
    async fn login(addr: SocketAddr) -> Api {
        let mut api = Api {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            cookie: String::new(),
            csrf: String::new(),
        };
        let body = json!({ "username": "admin", "password": ADMIN_PW }).to_string();
        let req = hyper::Request::post(format!("{}/api/v1/session", api.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = api.client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap();
        api.cookie = cookie.split(';').next().unwrap().to_owned();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        api.csrf = v["csrf_token"].as_str().unwrap().to_owned();
        api
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Bytes,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("content-type", content_type);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            bytes,
        }
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        self.send(method, path, "application/json", body, &[]).await
    }

    async fn upload(&self, name: &str, bytes: &[u8], signature: Option<&str>) -> Reply {
        let extra: Vec<(&str, &str)> = signature
            .map(|s| vec![("x-module-signature", s)])
            .unwrap_or_default();
        self.send(
            "POST",
            &format!("/api/v1/wasm-modules/{name}?description=test"),
            "application/wasm",
            Bytes::copy_from_slice(bytes),
            &extra,
        )
        .await
    }

    /// Replaces the draft and publishes it; the new version.
    async fn publish(&self, policy: Value) -> Result<u64, Reply> {
        let r = self.json("PUT", "/api/v1/policy/draft", Some(policy)).await;
        assert_eq!(r.status, 200, "draft: {}", r.text);
        let r = self
            .json(
                "POST",
                "/api/v1/policy/publish",
                Some(json!({ "comment": "wasm deploy test" })),
            )
            .await;
        if r.status == 200 {
            Ok(r.json["version"].as_u64().unwrap())
        } else {
            Err(r)
        }
    }
}

fn policy(upstream: SocketAddr, with_filter: Option<Value>) -> Value {
    let mut p = json!({
        "services": [{ "id": "bank", "upstream": format!("http://{upstream}") }],
        "filters": [],
        "mappings": [{ "service": "bank", "filters": [] }],
    });
    if let Some(stored) = with_filter {
        p["filters"] = json!([{
            "id": "wasm-block",
            "kind": "wasm",
            "failure": "fail-closed",
            "config": { "stored": stored, "configuration": "x-scanner", "instances": 4 },
        }]);
        p["mappings"][0]["filters"] = json!(["wasm-block"]);
    }
    p
}

async fn start_center(dir: &std::path::Path, bus: Bus, wasm: WasmDeployConfig) -> ControlHandle {
    let options = ControlOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: None,
        data_dir: dir.to_path_buf(),
        retention_days: 90,
        secure_cookies: false,
        admin_password: Some(ADMIN_PW.into()),
        tls: None,
        relay_handoff: None,
        agent_tickets: None,
        recording_key: None,
        wasm,
    };
    ControlCenter::start(options, bus).await.unwrap()
}

struct TestGateway {
    gateway: Arc<Gateway>,
    running: haetae_gateway::RunningGateway,
}

async fn start_gateway(bus: Bus, trust: ModuleTrust) -> TestGateway {
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        breaker_failures: 1_000_000,
        ..GatewayConfig::default()
    };
    let gateway =
        Arc::new(Gateway::new(&config, Arc::new(NoEvents), FilterRegistry::standard()).unwrap());
    let running = gateway.start().await.unwrap();
    tokio::spawn(watch_bus_policy_with(
        Arc::clone(&gateway),
        bus,
        None,
        trust,
        running.shutdown_signal(),
    ));
    TestGateway { gateway, running }
}

async fn wait_for_version(gw: &Gateway, version: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.policy_version() != version {
        assert!(
            Instant::now() < deadline,
            "the gateway did not apply version {version} (runs {})",
            gw.policy_version()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    total: AtomicU64,
    ok: AtomicU64,
    blocked: AtomicU64,
    scanner_passed: AtomicU64,
    bad: AtomicU64,
    first_bad: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn bad(&self, what: String) {
        self.bad.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_bad.lock().unwrap();
        if first.len() < 10 {
            first.push(what);
        }
    }
}

/// `clients` keep-alive connections sending requests one after the other until `stop`;
/// every third request carries the header the filter blocks. A reconnect after a closed
/// connection counts as a failure.
fn spawn_load(
    addr: SocketAddr,
    clients: usize,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let stop = Arc::clone(stop);
            let tally = Arc::clone(tally);
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let scanner = n % 3 == 0;
                    let mut req =
                        hyper::Request::get(format!("/account/{n}")).header("host", "bank.test");
                    if scanner {
                        req = req.header("x-scanner", "sqlmap/1.7");
                    }
                    let req = req.body(Full::new(Bytes::new())).unwrap();
                    if sender.ready().await.is_err() {
                        tally.bad("the connection closed".into());
                        return;
                    }
                    let resp = match sender.send_request(req).await {
                        Ok(r) => r,
                        Err(e) => {
                            tally.bad(format!("request failed: {e}"));
                            return;
                        }
                    };
                    let status = resp.status().as_u16();
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes);
                    tally.total.fetch_add(1, Ordering::Relaxed);
                    match (status, scanner, body) {
                        (200, false, Ok(_)) => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        (200, true, Ok(_)) => {
                            tally.scanner_passed.fetch_add(1, Ordering::Relaxed);
                        }
                        (403, true, Ok(b)) if b.as_ref() == b"blocked by wasm\n" => {
                            tally.blocked.fetch_add(1, Ordering::Relaxed);
                        }
                        (s, scanner, b) => tally.bad(format!(
                            "status {s} (scanner header: {scanner}): {:?}",
                            b.map(|b| String::from_utf8_lossy(&b).into_owned())
                        )),
                    }
                }
            })
        })
        .collect()
}

async fn upstream() -> SocketAddr {
    cluster::upstream().await
}

/// Deploys and undeploys the block filter `cycles` times while the load runs.
async fn deploy_and_undeploy_under_load(center_bus: Bus, gateway_bus: Bus) {
    let dir = tempfile::tempdir().unwrap();
    let center = start_center(dir.path(), center_bus, WasmDeployConfig::default()).await;
    let api = Api::login(center.local_addr()).await;
    let gw = start_gateway(gateway_bus, ModuleTrust::default()).await;
    let up = upstream().await;

    let v = api
        .publish(policy(up, None))
        .await
        .unwrap_or_else(|r| panic!("{}", r.text));
    wait_for_version(&gw.gateway, v).await;

    let module = block_module();
    let r = api.upload("block", &module, None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["version"], 1);
    let sha = r.json["sha256"].as_str().unwrap().to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let load = spawn_load(gw.running.addr, 32, &stop, &tally);
    tokio::time::sleep(Duration::from_millis(300)).await;

    for cycle in 0..3 {
        // Deploy: the module by name (the newest version), pinned at publish.
        let blocked_before = tally.blocked.load(Ordering::Relaxed);
        let v = api
            .publish(policy(up, Some(json!({ "name": "block" }))))
            .await
            .unwrap_or_else(|r| panic!("cycle {cycle}: {}", r.text));
        wait_for_version(&gw.gateway, v).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            tally.blocked.load(Ordering::Relaxed) > blocked_before,
            "cycle {cycle}: the deployed filter blocked nothing"
        );
        if cycle == 0 {
            // The published version pins the bytes.
            let r = api
                .json("GET", &format!("/api/v1/policy/versions/{v}"), None)
                .await;
            let stored = &r.json["policy"]["filters"][0]["config"]["stored"];
            let stored = if stored.is_null() {
                &r.json["filters"][0]["config"]["stored"]
            } else {
                stored
            };
            assert_eq!(stored["sha256"], sha, "{}", r.text);
            assert_eq!(stored["version"], 1, "{}", r.text);
            // A version the published policy uses cannot be deleted.
            let r = api
                .json("DELETE", "/api/v1/wasm-modules/block/versions/1", None)
                .await;
            assert_eq!(r.status, 409, "{}", r.text);
        }
        // Undeploy.
        let passed_before = tally.scanner_passed.load(Ordering::Relaxed);
        let v = api
            .publish(policy(up, None))
            .await
            .unwrap_or_else(|r| panic!("{}", r.text));
        wait_for_version(&gw.gateway, v).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            tally.scanner_passed.load(Ordering::Relaxed) > passed_before,
            "cycle {cycle}: the undeployed filter still blocks"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let first_bad = tally.first_bad.lock().unwrap().clone();
    let total = tally.total.load(Ordering::Relaxed);
    eprintln!(
        "load: {total} requests, {} ok, {} blocked by the filter, {} scanner requests passed \
         while undeployed, {} failed",
        tally.ok.load(Ordering::Relaxed),
        tally.blocked.load(Ordering::Relaxed),
        tally.scanner_passed.load(Ordering::Relaxed),
        tally.bad.load(Ordering::Relaxed)
    );
    assert_eq!(tally.bad.load(Ordering::Relaxed), 0, "{first_bad:?}");
    assert!(total > 1000, "too little load to mean anything: {total}");

    // Unused now: it can be deleted, and the audit log has both.
    let r = api
        .json("DELETE", "/api/v1/wasm-modules/block/versions/1", None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = api.json("GET", "/api/v1/audit?limit=200", None).await;
    assert!(r.text.contains("wasm.upload"), "{}", r.text);
    assert!(r.text.contains("wasm.delete"), "{}", r.text);
    gw.running.shutdown().await;
    center.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_and_undeploy_under_load_fail_no_request_on_the_in_process_bus() {
    let bus = Bus::in_process();
    deploy_and_undeploy_under_load(bus.clone(), bus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs NATS JetStream: set HAETAE_TEST_NATS"]
async fn deploy_and_undeploy_under_load_fail_no_request_over_nats() {
    let url = std::env::var("HAETAE_TEST_NATS").expect("HAETAE_TEST_NATS");
    let ns = cluster::NatsNamespace::new(&url);
    let center_bus = ns.bus("center").await;
    let gateway_bus = ns.bus("gateway").await;
    deploy_and_undeploy_under_load(center_bus, gateway_bus).await;
}

fn key(seed: u8) -> (haetae_crypto::pk::Ed25519KeyPair, String) {
    let pair = haetae_crypto::pk::Ed25519KeyPair::from_seed(&[seed; 32]);
    let public = hex::encode(pair.public_key());
    (pair, public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_trusted_keys_only_signed_modules_are_stored_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::in_process();
    let (signer, public) = key(1);
    let (stranger, stranger_public) = key(2);
    let wasm = WasmDeployConfig {
        trusted_keys: vec![public.clone()],
        max_module_bytes: 64 * 1024,
    };
    let center = start_center(dir.path(), bus.clone(), wasm.clone()).await;
    let api = Api::login(center.local_addr()).await;
    let module = block_module();

    // Refused: unsigned, signed by another key, a signature of other bytes, too large, not
    // Wasm, a bad name.
    let r = api.upload("block", &module, None).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (422, Some("unsigned")),
        "{}",
        r.text
    );
    let r = api
        .upload("block", &module, Some(&hex::encode(stranger.sign(&module))))
        .await;
    assert_eq!(r.json["error"]["code"], "bad_signature", "{}", r.text);
    let r = api
        .upload(
            "block",
            &module,
            Some(&hex::encode(signer.sign(b"other bytes"))),
        )
        .await;
    assert_eq!(r.json["error"]["code"], "bad_signature", "{}", r.text);
    // (The Center answers before reading a body whose Content-Length is over the cap and
    // closes the connection: sent on a connection of its own.)
    let big = vec![0u8; 64 * 1024 + 1];
    let r = api
        .send(
            "POST",
            "/api/v1/wasm-modules/block",
            "application/wasm",
            Bytes::from(big),
            &[("connection", "close")],
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    let r = api.upload("block", b"#!/bin/sh\nrm -rf /\n", None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api.upload("..", &module, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api.json("GET", "/api/v1/wasm-modules", None).await;
    assert_eq!(r.json, json!([]), "nothing was stored: {}", r.text);

    // Accepted, with the key's id.
    let r = api
        .upload("block", &module, Some(&hex::encode(signer.sign(&module))))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key_id = TrustedKey::id_of(&signer.public_key());
    assert_eq!(r.json["key_id"], key_id);
    let r = api
        .json("GET", "/api/v1/wasm-modules/block/versions", None)
        .await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(1), "{}", r.text);
    let r = api
        .send(
            "GET",
            "/api/v1/wasm-modules/block/versions/1",
            "",
            Bytes::new(),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.bytes.as_ref(), module.as_slice());

    // A gateway trusting the signer runs it; one trusting only another key refuses the
    // policy and keeps its running one.
    let trusting = start_gateway(bus.clone(), ModuleTrust::from_config(&wasm).unwrap()).await;
    let other_trust = WasmDeployConfig {
        trusted_keys: vec![stranger_public],
        ..wasm.clone()
    };
    let suspicious =
        start_gateway(bus.clone(), ModuleTrust::from_config(&other_trust).unwrap()).await;
    let up = upstream().await;
    let v1 = api
        .publish(policy(up, None))
        .await
        .unwrap_or_else(|r| panic!("{}", r.text));
    wait_for_version(&trusting.gateway, v1).await;
    wait_for_version(&suspicious.gateway, v1).await;
    let v2 = api
        .publish(policy(up, Some(json!({ "name": "block", "version": 1 }))))
        .await
        .unwrap_or_else(|r| panic!("{}", r.text));
    wait_for_version(&trusting.gateway, v2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(suspicious.gateway.policy_version(), v1);

    let get = |addr: SocketAddr| async move {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let req = hyper::Request::get(format!("http://{addr}/x"))
            .header("x-scanner", "1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        client.request(req).await.unwrap().status().as_u16()
    };
    assert_eq!(get(trusting.running.addr).await, 403);
    assert_eq!(get(suspicious.running.addr).await, 200);

    // A module name the store does not have: publishing is refused, naming the filter.
    let r = api
        .publish(policy(up, Some(json!({ "name": "missing" }))))
        .await
        .unwrap_err();
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("not in the module store"), "{}", r.text);

    // The OpenAPI document lists the module API.
    let r = api.json("GET", "/api/v1/openapi.json", None).await;
    assert!(r.json["paths"]["/api/v1/wasm-modules/{name}"]["post"].is_object());
    trusting.running.shutdown().await;
    suspicious.running.shutdown().await;
    center.shutdown().await;
}
