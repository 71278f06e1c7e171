//! The distributed shape in one process, on real sockets: one Control Center on PostgreSQL,
//! gateways, and NATS JetStream between them, as `haetae control` and `haetae gateway` run
//! them (the same library calls), plus an upstream application and an HTTP client.
//!
//! Each cluster works in a private NATS namespace (streams and buckets `dist_<random>_*`,
//! the event stream capped at 64 MiB because JetStream reserves a stream's `max_bytes` up
//! front) and a private PostgreSQL schema, both removed when the cluster is dropped.
//!
//! Used by `tests/distributed.rs` and `examples/propagation.rs`.

#![allow(dead_code)] // each user takes the parts it needs

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use haetae_bus::{Bus, EmitterOptions, EventEmitter, NatsOptions};
use haetae_control::{ControlCenter, ControlHandle, ControlOptions};
use haetae_core::PolicySnapshot;
use haetae_core::config::GatewayConfig;
use haetae_gateway::{EventSink, FilterRegistry, Gateway, RunningGateway, watch_bus_policy};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::time::Instant;

/// The first admin's password in every cluster.
pub const ADMIN_PASSWORD: &str = "distributed test admin password";
/// The event stream's cap: small, since JetStream reserves it on the server.
pub const EVENT_MAX_BYTES: i64 = 64 * 1024 * 1024;

/// Both services the tests need, or `None` (the caller skips) when either variable is unset.
pub fn services() -> Option<(String, String)> {
    let pg = std::env::var("HAETAE_TEST_PG").ok()?;
    let nats = std::env::var("HAETAE_TEST_NATS").ok()?;
    Some((pg, nats))
}

fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}_{}", &id[id.len() - 20..])
}

/// A private NATS namespace, its streams (and KV buckets' streams) deleted on drop.
pub struct NatsNamespace {
    pub url: String,
    pub name: String,
}

impl NatsNamespace {
    pub fn new(url: &str) -> NatsNamespace {
        NatsNamespace {
            url: url.to_owned(),
            name: unique("dist"),
        }
    }

    pub fn options(&self, client: &str) -> NatsOptions {
        NatsOptions {
            namespace: self.name.clone(),
            client_name: Some(client.to_owned()),
            request_timeout: Duration::from_secs(2),
            event_max_age: Duration::from_secs(3600),
            event_max_bytes: EVENT_MAX_BYTES,
            ..NatsOptions::default()
        }
    }

    pub async fn bus(&self, client: &str) -> Bus {
        Bus::connect_nats(&self.url, self.options(client))
            .await
            .unwrap_or_else(|e| panic!("NATS at {}: {e}", self.url))
    }
}

impl Drop for NatsNamespace {
    fn drop(&mut self) {
        let url = self.url.clone();
        let prefixes = [format!("{}_", self.name), format!("KV_{}_", self.name)];
        // Drop cannot await: clean up on a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(Ok(client)) =
                    tokio::time::timeout(Duration::from_secs(2), async_nats::connect(&url)).await
                else {
                    return;
                };
                let js = async_nats::jetstream::new(client);
                let names: Vec<String> = js
                    .stream_names()
                    .filter_map(|n| async move { n.ok() })
                    .collect()
                    .await;
                for name in names {
                    if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                        let _ = js.delete_stream(&name).await;
                    }
                }
            });
        })
        .join();
    }
}

/// A private PostgreSQL schema, dropped on drop. `url` selects it through the connection's
/// `search_path`, so `control.database_url` alone points a Center at it.
pub struct PgSchema {
    pub base_url: String,
    pub name: String,
    pub url: String,
}

impl PgSchema {
    pub async fn new(base_url: &str) -> PgSchema {
        let name = unique("haetae_dist");
        let pool = sqlx::PgPool::connect(base_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at HAETAE_TEST_PG: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&pool)
            .await
            .expect("create the schema");
        pool.close().await;
        let sep = if base_url.contains('?') { '&' } else { '?' };
        PgSchema {
            url: format!("{base_url}{sep}options=-c%20search_path%3D{name}"),
            base_url: base_url.to_owned(),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.base_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// One running gateway, wired as `haetae gateway` wires it on NATS: events to the bus's
/// spooled emitter, shared state in a KV bucket, the policy from the bus's watch.
pub struct GatewayNode {
    pub gateway: Arc<Gateway>,
    pub running: RunningGateway,
    pub emitter: Arc<EventEmitter>,
    pub bus: Bus,
}

impl GatewayNode {
    pub async fn start(ns: &NatsNamespace, instance: &str, spool: &std::path::Path) -> Self {
        let bus = ns.bus(instance).await;
        let emitter = Arc::new(
            bus.event_emitter(EmitterOptions::spooled(spool.join(instance)))
                .expect("the event emitter"),
        );
        let kv = bus
            .kv("gateway", Duration::from_secs(3600))
            .await
            .expect("the shared-state bucket");
        let config = GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            instance: instance.to_owned(),
            heartbeat_interval_ms: 1_000,
            default_status: 503,
            ..GatewayConfig::default()
        };
        let gateway = Arc::new(
            Gateway::with_shared_state(
                &config,
                Arc::clone(&emitter) as Arc<dyn EventSink>,
                Some(kv),
                FilterRegistry::standard(),
            )
            .expect("the gateway"),
        );
        let running = gateway.start().await.expect("the gateway listens");
        tokio::spawn(watch_bus_policy(
            Arc::clone(&gateway),
            bus.clone(),
            None,
            running.shutdown_signal(),
        ));
        GatewayNode {
            gateway,
            running,
            emitter,
            bus,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// Stops serving and flushes every queued event to the bus.
    pub async fn stop(self) {
        self.running.shutdown().await;
        let stats = self.emitter.shutdown(Duration::from_secs(10)).await;
        assert_eq!(stats.pending(), 0, "events left unsent: {stats:?}");
    }
}

/// An upstream application: answers every request `200 ok`.
pub async fn upstream() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the upstream");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// An HTTP/1.1 client with pooled connections.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// One answer.
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl Default for Http {
    fn default() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Http {
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut req = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| format!("{method} {url}: no answer in 10 s"))?
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{method} {url}: body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// A Control Center, two (or more) gateways, and what connects them.
pub struct Cluster {
    pub nats: NatsNamespace,
    pub pg: PgSchema,
    pub dir: tempfile::TempDir,
    pub center: Option<ControlHandle>,
    pub gateways: Vec<GatewayNode>,
    pub upstream: SocketAddr,
    pub http: Http,
    /// An API token of the first admin (survives Center restarts: it is in the database).
    pub token: String,
}

impl Cluster {
    /// Starts the Center first, then `gateways` gateways named `gw-1`, `gw-2`, ...
    pub async fn start(pg_url: &str, nats_url: &str, gateways: usize) -> Cluster {
        let nats = NatsNamespace::new(nats_url);
        let pg = PgSchema::new(pg_url).await;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let upstream = upstream().await;
        let mut cluster = Cluster {
            nats,
            pg,
            dir,
            center: None,
            gateways: Vec::new(),
            upstream,
            http: Http::default(),
            token: String::new(),
        };
        cluster.start_center().await;
        cluster.token = cluster.admin_token().await;
        for i in 1..=gateways {
            let node = GatewayNode::start(
                &cluster.nats,
                &format!("gw-{i}"),
                &cluster.dir.path().join("spool"),
            )
            .await;
            cluster.gateways.push(node);
        }
        cluster
    }

    /// Starts (or restarts) the Control Center as `haetae control` does: PostgreSQL from
    /// the URL, NATS as its bus, the first admin's password given.
    pub async fn start_center(&mut self) {
        assert!(self.center.is_none(), "the Center runs already");
        let options = ControlOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: Some(self.pg.url.clone()),
            data_dir: self.dir.path().join("center"),
            retention_days: 0,
            secure_cookies: false,
            admin_password: Some(ADMIN_PASSWORD.into()),
            tls: None,
            relay_handoff: None,
            agent_tickets: None,
            recording_key: None,
            wasm: Default::default(),
        };
        let bus = self.nats.bus("control").await;
        let handle = ControlCenter::start(options, bus)
            .await
            .unwrap_or_else(|e| panic!("the Control Center: {e}"));
        self.center = Some(handle);
    }

    /// Stops the Control Center (the gateways keep running).
    pub async fn stop_center(&mut self) {
        if let Some(c) = self.center.take() {
            c.shutdown().await;
        }
    }

    pub fn center(&self) -> &ControlHandle {
        self.center.as_ref().expect("the Center is running")
    }

    pub fn center_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.center().local_addr())
    }

    async fn admin_token(&self) -> String {
        let login = self
            .http
            .send(
                "POST",
                &self.center_url("/api/v1/session"),
                &[],
                Some(&json!({ "username": "admin", "password": ADMIN_PASSWORD })),
            )
            .await
            .expect("log in");
        assert_eq!(login.status, 200, "log in: {:?}", login.body);
        let cookie = login
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("haetae_session="))
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let csrf = login.json()["csrf_token"]
            .as_str()
            .expect("a CSRF token")
            .to_owned();
        let cookie = format!("haetae_session={cookie}");
        let token = self
            .http
            .send(
                "POST",
                &self.center_url("/api/v1/tokens"),
                &[("cookie", &cookie), ("x-csrf-token", &csrf)],
                Some(&json!({ "name": "distributed test" })),
            )
            .await
            .expect("create a token");
        assert_eq!(token.status, 201, "create a token: {:?}", token.body);
        token.json()["token"]
            .as_str()
            .expect("the token")
            .to_owned()
    }

    /// Calls the Center's API with the admin's token.
    pub async fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {}", self.token);
        self.http
            .send(
                method,
                &self.center_url(path),
                &[("authorization", &auth)],
                body,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Replaces the draft with `policy` and publishes it; returns the new version and
    /// when the publish call was sent.
    pub async fn publish(&self, policy: &PolicySnapshot) -> (u64, Instant) {
        let body = serde_json::to_value(policy).expect("a policy as JSON");
        let r = self.api("PUT", "/api/v1/policy/draft", Some(&body)).await;
        assert_eq!(r.status, 200, "draft: {}", String::from_utf8_lossy(&r.body));
        let sent = Instant::now();
        let r = self
            .api(
                "POST",
                "/api/v1/policy/publish",
                Some(&json!({ "comment": "distributed test" })),
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "publish: {}",
            String::from_utf8_lossy(&r.body)
        );
        let version = r.json()["version"].as_u64().expect("a version number");
        (version, sent)
    }

    /// Waits until every gateway runs `version` (or a later one), polling every
    /// millisecond; returns how long after `since` each got it, or `None` past `limit`.
    pub async fn wait_running(
        &self,
        version: u64,
        since: Instant,
        limit: Duration,
    ) -> Option<Vec<Duration>> {
        let mut seen: Vec<Option<Duration>> = vec![None; self.gateways.len()];
        loop {
            for (i, g) in self.gateways.iter().enumerate() {
                if seen[i].is_none() && g.gateway.policy_version() >= version {
                    seen[i] = Some(since.elapsed());
                }
            }
            if seen.iter().all(Option::is_some) {
                return Some(seen.into_iter().flatten().collect());
            }
            if since.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Sends `GET <path>` through gateway `i`.
    pub async fn through(&self, i: usize, path: &str) -> Result<Reply, String> {
        let url = format!("http://{}{path}", self.gateways[i].addr());
        self.http.send("GET", &url, &[], None).await
    }

    /// The `url.path` of every stored event with `action`, with how often each is stored.
    pub async fn stored_paths(&self, action: &str) -> HashMap<String, u32> {
        let store = self.center().store();
        let mut out = HashMap::new();
        let mut before = None;
        loop {
            let page = store
                .search_events(&haetae_control::store::events::EventQuery {
                    action: Some(action.to_owned()),
                    limit: haetae_control::store::events::MAX_SEARCH_LIMIT,
                    before: before.clone(),
                    ..Default::default()
                })
                .await
                .expect("search events");
            let Some(last) = page.last() else {
                return out;
            };
            before = Some((last.ts, last.id.clone()));
            for e in &page {
                let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                if let Some(p) = body["url"]["path"].as_str() {
                    *out.entry(p.to_owned()).or_insert(0) += 1;
                }
            }
        }
    }
}

/// A policy every request matches: the upstream as the one service, and `restrict` in
/// monitor mode on every loopback client, so each request passes (200) and produces one
/// `restrict.notice` event naming its path. `marker` goes into the notice path, so
/// successive versions differ.
pub fn traffic_policy(upstream: SocketAddr, marker: &str) -> PolicySnapshot {
    PolicySnapshot::from_toml(&format!(
        r#"
        version = 1
        [[services]]
        id = "bank"
        upstream = "http://{upstream}"
        [[filters]]
        id = "restrict-loopback"
        kind = "restrict"
        mode = "monitor"
        config = {{ ips = ["127.0.0.0/8"], notice_path = "/notice/{marker}" }}
        [[mappings]]
        service = "bank"
        filters = ["restrict-loopback"]
        "#
    ))
    .expect("the test policy")
}
