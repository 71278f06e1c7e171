//! `e2e-fields` through real gateways and a real upstream on 127.0.0.1: the client module
//! and page sessions are served, protected form and JSON fields reach the application as
//! plaintext, and everything that does not decrypt (altered, replayed, plaintext, foreign
//! key, expired nonce, a body too long to read) is refused before the upstream. Also
//! monitor mode, a missing shared store, and two gateways sharing the key directory and
//! the store.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use haetae_bus::{Bus, KvStore};
use haetae_core::PolicySnapshot;
use haetae_core::config::GatewayConfig;
use haetae_gateway::filters::e2e_fields::seal_field;
use haetae_gateway::{EventSink, Gateway, RunningGateway};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// An application that answers with the body it received (and counts requests).
async fn spawn_echo(calls: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let calls = Arc::clone(&calls);
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let calls = Arc::clone(&calls);
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let length = req
                            .headers()
                            .get("content-length")
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut r = Response::new(Full::new(body));
                        r.headers_mut()
                            .insert("x-seen-length", length.parse().unwrap());
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

struct E2eGateway {
    running: RunningGateway,
    events: Arc<Collector>,
    calls: Arc<AtomicUsize>,
}

async fn memory_kv() -> Arc<dyn KvStore> {
    Bus::in_process()
        .kv("gateway", Duration::from_secs(24 * 3600))
        .await
        .unwrap()
}

impl E2eGateway {
    async fn start(
        kv: Option<Arc<dyn KvStore>>,
        key_dir: &Path,
        extra: &str,
        instance_extra: &str,
    ) -> E2eGateway {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = spawn_echo(Arc::clone(&calls)).await;
        let config = GatewayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            instance: "gw-e2e".into(),
            ..GatewayConfig::default()
        };
        let events = Arc::new(Collector::default());
        let gateway = Arc::new(
            Gateway::with_shared_state(
                &config,
                Arc::clone(&events) as Arc<dyn EventSink>,
                kv,
                registry(),
            )
            .unwrap(),
        );
        let policy = PolicySnapshot::from_toml(&format!(
            r#"
            [[services]]
            id = "bank"
            upstream = "http://{app}"
            [[filters]]
            id = "e2e"
            kind = "e2e-fields"
            {instance_extra}
            config = {{ fields = ["pin", "auth.password", "account_number"], key_dir = {dir:?}, paths = ["/transfer", "/api/"] {extra} }}
            [[mappings]]
            service = "bank"
            filters = ["e2e"]
            "#,
            dir = key_dir.display().to_string(),
        ))
        .unwrap();
        gateway.apply_policy(&policy).expect("the policy is valid");
        let running = gateway.start().await.unwrap();
        E2eGateway {
            running,
            events,
            calls,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    async fn session(&self) -> serde_json::Value {
        let r = send(&client(), get(&self.url("/haetae/e2e/session"), &[])).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        serde_json::from_str(&r.body).unwrap()
    }

    async fn post(&self, path: &str, content_type: &str, body: String) -> Answer {
        let req = Request::post(self.url(path))
            .header("content-type", content_type)
            .body(ProxiedBody::Bytes(Some(Bytes::from(body))))
            .unwrap();
        send(&client(), req).await
    }
}

fn key_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("haetae-e2e-{name}-"))
        .tempdir()
        .unwrap()
}

#[tokio::test]
async fn the_client_module_and_page_sessions_are_served_without_alerts() {
    let dir = key_dir("serve");
    let gw = E2eGateway::start(Some(memory_kv().await), dir.path(), "", "").await;
    let js = send(&client(), get(&gw.url("/haetae/e2e.js"), &[])).await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(js.body.contains("export async function openSession"));
    let s1 = gw.session().await;
    let s2 = gw.session().await;
    assert_eq!(s1["crv"], "P-256");
    assert_eq!(s1["kid"], s2["kid"], "one key per deployment");
    assert_ne!(s1["nonce"], s2["nonce"], "a fresh nonce per page");
    assert_eq!(
        gw.calls.load(Ordering::SeqCst),
        0,
        "served by the gateway, not the app"
    );
    assert!(
        !gw.events
            .actions()
            .iter()
            .any(|a| a.starts_with("e2e-fields")),
        "serving the module is not an incident: {:?}",
        gw.events.actions()
    );
    gw.running.shutdown().await;
}

#[tokio::test]
async fn protected_form_fields_reach_the_application_as_plaintext() {
    let dir = key_dir("form");
    let gw = E2eGateway::start(Some(memory_kv().await), dir.path(), "", "").await;
    let s = gw.session().await;
    let pin = seal_field(&s, "AES-256-GCM", "pin", "730519").unwrap();
    let account = seal_field(&s, "AES-256-GCM", "account_number", "110-234-567890").unwrap();
    assert!(pin.starts_with(&format!("hte1.{}.A256GCM.", s["kid"].as_str().unwrap())));
    let body = format!("amount=50000&pin={pin}&account_number={account}&memo=rent+%26+bills");
    let r = gw
        .post("/transfer", "application/x-www-form-urlencoded", body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        "amount=50000&pin=730519&account_number=110-234-567890&memo=rent+%26+bills"
    );
    assert_eq!(
        r.header("x-seen-length"),
        Some(r.body.len().to_string().as_str())
    );
    let modify = gw.events.with_action("e2e-fields.modify");
    assert_eq!(modify.len(), 1);
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_json_field_is_decrypted_by_its_path_and_aria_is_accepted_when_configured() {
    let dir = key_dir("json");
    let gw = E2eGateway::start(
        Some(memory_kv().await),
        dir.path(),
        r#", ciphers = ["AES-256-GCM", "ARIA-256-GCM"], curve = "X25519""#,
        "",
    )
    .await;
    let s = gw.session().await;
    assert_eq!(s["crv"], "X25519");
    let pw = seal_field(&s, "ARIA-256-GCM", "auth.password", "비밀 pass 1!").unwrap();
    assert!(pw.contains(".ARIA256GCM."));
    let body = serde_json::json!({"auth": {"user": "kim", "password": pw}, "n": 3}).to_string();
    let r = gw.post("/api/login", "application/json", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seen: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(seen["auth"]["password"], "비밀 pass 1!");
    assert_eq!(seen["auth"]["user"], "kim");
    assert_eq!(seen["n"], 3);
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_cipher_not_configured_is_refused() {
    let dir = key_dir("cipher");
    let gw = E2eGateway::start(Some(memory_kv().await), dir.path(), "", "").await;
    let s = gw.session().await;
    let pin = seal_field(&s, "ARIA-256-GCM", "pin", "1234").unwrap();
    let r = gw
        .post(
            "/transfer",
            "application/x-www-form-urlencoded",
            format!("pin={pin}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(gw.calls.load(Ordering::SeqCst), 0);
    let e = &gw.events.with_action("e2e-fields.respond")[0];
    assert_eq!(e.rule.as_ref().unwrap().name, "e2e-cipher-refused");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_replayed_request_is_refused_and_never_forwarded() {
    let dir = key_dir("replay");
    let gw = E2eGateway::start(Some(memory_kv().await), dir.path(), "", "").await;
    let s = gw.session().await;
    let body = format!(
        "pin={}",
        seal_field(&s, "AES-256-GCM", "pin", "1111").unwrap()
    );
    let ct = "application/x-www-form-urlencoded";
    assert_eq!(
        gw.post("/transfer", ct, body.clone()).await.body,
        "pin=1111"
    );
    let r = gw.post("/transfer", ct, body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("1111"));
    assert_eq!(
        gw.calls.load(Ordering::SeqCst),
        1,
        "the replay never reached the app"
    );
    let e = &gw.events.with_action("e2e-fields.respond")[0];
    assert_eq!(e.rule.as_ref().unwrap().name, "e2e-replay");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn altered_plaintext_foreign_and_unissued_values_are_all_refused() {
    let dir = key_dir("bad");
    let other_dir = key_dir("other");
    let kv = memory_kv().await;
    let gw = E2eGateway::start(Some(Arc::clone(&kv)), dir.path(), "", "").await;
    let other = E2eGateway::start(Some(memory_kv().await), other_dir.path(), "", "").await;
    let ct = "application/x-www-form-urlencoded";
    let rule_of_last = |gw: &E2eGateway| {
        let all = gw.events.with_action("e2e-fields.respond");
        all.last().unwrap().rule.as_ref().unwrap().name.clone()
    };

    // Altered: one ciphertext character flipped.
    let s = gw.session().await;
    let mut pin = seal_field(&s, "AES-256-GCM", "pin", "2222").unwrap();
    // Not the last character: it may carry padding bits, and flipping those makes the
    // value malformed base64 (a different rule) rather than an altered ciphertext.
    let at = pin.len() - 5;
    let c = pin.as_bytes()[at];
    assert_ne!(c, b'.', "{pin}");
    pin.replace_range(at..=at, if c == b'A' { "B" } else { "A" });
    let r = gw.post("/transfer", ct, format!("pin={pin}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(rule_of_last(&gw), "e2e-undecryptable");

    // Moved to another field: the field name is bound to the ciphertext.
    let s = gw.session().await;
    let pin = seal_field(&s, "AES-256-GCM", "pin", "3333").unwrap();
    let r = gw
        .post("/transfer", ct, format!("account_number={pin}"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(rule_of_last(&gw), "e2e-undecryptable");

    // Plaintext in a protected field.
    let r = gw.post("/transfer", ct, "pin=4444".to_owned()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(rule_of_last(&gw), "e2e-plaintext");

    // Encrypted for another deployment's key.
    let foreign = other.session().await;
    let pin = seal_field(&foreign, "AES-256-GCM", "pin", "5555").unwrap();
    let r = gw.post("/transfer", ct, format!("pin={pin}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(rule_of_last(&gw), "e2e-unknown-key");

    // Our key, but a nonce this deployment never issued.
    let mut forged = gw.session().await;
    forged["nonce"] = serde_json::Value::from("AAAAAAAAAAAAAAAAAAAAAA");
    let pin = seal_field(&forged, "AES-256-GCM", "pin", "6666").unwrap();
    let r = gw.post("/transfer", ct, format!("pin={pin}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(rule_of_last(&gw), "e2e-nonce-expired");

    // Garbage.
    let r = gw.post("/transfer", ct, "pin=hte1.x.y".to_owned()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(rule_of_last(&gw), "e2e-malformed");

    assert_eq!(
        gw.calls.load(Ordering::SeqCst),
        0,
        "nothing reached the app"
    );
    // Unprotected paths and requests without protected fields pass untouched.
    assert_eq!(
        gw.post("/other", ct, "pin=7777".to_owned()).await.body,
        "pin=7777"
    );
    assert_eq!(
        gw.post("/transfer", ct, "amount=1".to_owned()).await.body,
        "amount=1"
    );
    gw.running.shutdown().await;
    other.running.shutdown().await;
}

#[tokio::test]
async fn a_protected_form_too_long_to_read_is_refused() {
    let dir = key_dir("long");
    let gw = E2eGateway::start(Some(memory_kv().await), dir.path(), ", max_body = 1024", "").await;
    let body = format!("memo={}&pin=1", "x".repeat(4000));
    let r = gw
        .post("/transfer", "application/x-www-form-urlencoded", body)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(gw.calls.load(Ordering::SeqCst), 0);
    gw.running.shutdown().await;
}

#[tokio::test]
async fn monitor_mode_reports_but_forwards_as_sent() {
    let dir = key_dir("monitor");
    let gw = E2eGateway::start(
        Some(memory_kv().await),
        dir.path(),
        "",
        r#"mode = "monitor""#,
    )
    .await;
    // The module is served in monitor mode too.
    let js = send(&client(), get(&gw.url("/haetae/e2e.js"), &[])).await;
    assert_eq!(js.status, StatusCode::OK);
    let r = gw
        .post(
            "/transfer",
            "application/x-www-form-urlencoded",
            "pin=9999".to_owned(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "pin=9999");
    let e = &gw.events.with_action("e2e-fields.respond")[0];
    assert_eq!(e.labels["mode"], "monitor");
    assert_eq!(e.rule.as_ref().unwrap().name, "e2e-plaintext");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn without_a_shared_store_sessions_fail_by_the_failure_policy() {
    let dir = key_dir("nokv");
    let gw = E2eGateway::start(None, dir.path(), "", r#"failure = "fail-closed""#).await;
    let r = send(&client(), get(&gw.url("/haetae/e2e/session"), &[])).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let failure = &gw.events.with_action("gateway.filter_failure")[0];
    assert!(
        failure.message.as_deref().unwrap().contains("shared store"),
        "{:?}",
        failure.message
    );
    gw.running.shutdown().await;
}

#[tokio::test]
async fn two_gateways_sharing_keys_and_store_decrypt_each_others_pages_once() {
    let dir = key_dir("cluster");
    let kv = memory_kv().await;
    let a = E2eGateway::start(Some(Arc::clone(&kv)), dir.path(), "", "").await;
    let b = E2eGateway::start(Some(Arc::clone(&kv)), dir.path(), "", "").await;
    let s = a.session().await;
    let body = format!(
        "pin={}",
        seal_field(&s, "AES-256-GCM", "pin", "8080").unwrap()
    );
    let ct = "application/x-www-form-urlencoded";
    assert_eq!(b.post("/transfer", ct, body.clone()).await.body, "pin=8080");
    let r = a.post("/transfer", ct, body).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "replayed on the other gateway"
    );
    a.running.shutdown().await;
    b.running.shutdown().await;
}

#[tokio::test]
async fn the_private_key_is_in_no_event_or_answer() {
    let dir = key_dir("secret");
    let gw = E2eGateway::start(Some(memory_kv().await), dir.path(), "", "").await;
    let s = gw.session().await;
    let ct = "application/x-www-form-urlencoded";
    let _ = gw.post("/transfer", ct, "pin=1".to_owned()).await;
    let body = format!(
        "pin={}",
        seal_field(&s, "AES-256-GCM", "pin", "4242").unwrap()
    );
    let _ = gw.post("/transfer", ct, body).await;
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("e2e-keys.json")).unwrap()).unwrap();
    let secret = file["keys"][0]["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    let all = gw
        .events
        .actions()
        .iter()
        .flat_map(|a| gw.events.with_action(a))
        .map(|e| e.to_json())
        .collect::<String>();
    assert!(!all.contains(&secret));
    assert!(!all.contains("4242"), "no plaintext in events");
    assert!(!s.to_string().contains(&secret));
    gw.running.shutdown().await;
}
