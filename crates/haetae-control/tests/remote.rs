//! Central control of remote support as a client sees it: the `agent` role, grades and login
//! networks set by an administrator, enforced at login, at ticket and session issue; the
//! session policy the Center signs (checked with the key it publishes); the history an agent
//! console reports; the customer's scanning endpoint bound to a live session.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use haetae_bus::Bus;
use haetae_control::center::ensure_first_admin;
use haetae_control::http::{AppState, router};
use haetae_control::store::Store;
use haetae_remote::policy::{Grade, verify};
use haetae_remote::protocol::SessionId;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN_PW: &str = "admin password for tests";
const AGENT_PW: &str = "agent password for tests";
const INSIDE: &str = "10.20.1.2:40000";
const OUTSIDE: &str = "192.0.2.9:40000";

struct App {
    app: Router,
    state: AppState,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    json: Value,
    text: String,
}

#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

struct Req<'a> {
    method: Method,
    uri: &'a str,
    body: Body,
    json: bool,
    headers: Vec<(&'a str, String)>,
    from: Option<&'a str>,
}

impl<'a> Req<'a> {
    fn new(method: Method, uri: &'a str) -> Self {
        Req {
            method,
            uri,
            body: Body::empty(),
            json: false,
            headers: Vec::new(),
            from: None,
        }
    }
    fn json(mut self, v: &Value) -> Self {
        self.body = Body::from(v.to_string());
        self.json = true;
        self
    }
    fn bytes(mut self, b: Vec<u8>) -> Self {
        self.body = Body::from(b);
        self
    }
    fn signed_in(mut self, s: &Session) -> Self {
        self.headers.push(("cookie", s.cookie.clone()));
        self.headers.push(("x-csrf-token", s.csrf.clone()));
        self
    }
    fn cookie_only(mut self, s: &Session) -> Self {
        self.headers.push(("cookie", s.cookie.clone()));
        self
    }
    fn header(mut self, k: &'a str, v: &str) -> Self {
        self.headers.push((k, v.to_owned()));
        self
    }
    fn from(mut self, addr: &'a str) -> Self {
        self.from = Some(addr);
        self
    }
}

impl App {
    async fn new() -> App {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(None, dir.path()).await.unwrap();
        ensure_first_admin(&store, Some(ADMIN_PW.into()))
            .await
            .unwrap();
        let state = AppState::new(store, Bus::in_process(), false);
        App {
            app: router(state.clone()),
            state,
            _dir: dir,
        }
    }

    async fn send(&self, r: Req<'_>) -> Reply {
        let mut b = Request::builder().method(r.method).uri(r.uri);
        for (k, v) in &r.headers {
            b = b.header(*k, v);
        }
        if r.json {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let mut req = b.body(r.body).unwrap();
        if let Some(from) = r.from {
            let addr: SocketAddr = from.parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(addr));
        }
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn try_login(&self, user: &str, pw: &str, from: Option<&str>) -> Reply {
        let mut r = Req::new(Method::POST, "/api/v1/session")
            .json(&json!({ "username": user, "password": pw }));
        r.from = from;
        self.send(r).await
    }

    async fn login(&self, user: &str, pw: &str, from: Option<&str>) -> Session {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/json");
        b = b.header("accept", "application/json");
        let mut req = b
            .body(Body::from(
                json!({ "username": user, "password": pw }).to_string(),
            ))
            .unwrap();
        if let Some(from) = from {
            req.extensions_mut()
                .insert(ConnectInfo(from.parse::<SocketAddr>().unwrap()));
        }
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "login as {user}");
        let cookie = resp.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        Session {
            cookie,
            csrf: v["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// An admin session and an `agent` user with `grade` and `allow_from`.
    async fn with_agent(&self, name: &str, grade: &str, allow_from: Value) -> Session {
        let admin = self.login("admin", ADMIN_PW, None).await;
        let r = self
            .send(
                Req::new(Method::POST, "/api/v1/users")
                    .json(&json!({ "username": name, "password": AGENT_PW, "role": "agent" }))
                    .signed_in(&admin),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
        let uri = format!("/api/v1/remote/agents/{name}");
        let r = self
            .send(
                Req::new(Method::PUT, &uri)
                    .json(&json!({ "grade": grade, "allow_from": allow_from }))
                    .signed_in(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        admin
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        self.state
            .store
            .audit_page(None, 200)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.detail))
            .collect()
    }
}

#[tokio::test]
async fn an_agent_outside_its_allowlist_cannot_log_in() {
    let t = App::new().await;
    t.with_agent("lee", "indirect", json!("10.20.0.0/16, 192.0.2.200"))
        .await;
    // From outside: the same answer as a wrong password; the reason only in the audit log.
    let outside = t.try_login("lee", AGENT_PW, Some(OUTSIDE)).await;
    let wrong = t
        .try_login("lee", "not the password at all", Some(INSIDE))
        .await;
    assert_eq!(outside.status, StatusCode::UNAUTHORIZED, "{}", outside.text);
    assert_eq!(outside.status, wrong.status);
    assert_eq!(outside.json, wrong.json);
    assert!(!outside.text.contains("allowlist"), "{}", outside.text);
    let audit = t.audit_actions().await;
    assert!(
        audit.iter().any(|(a, d)| a == "auth.login_refused"
            && d.contains("allowlist")
            && d.contains("192.0.2.9")),
        "{audit:?}"
    );
    // It counts as a failed login, like the wrong password: the lockout tells nothing.
    let lee = t.state.store.user_by_name("lee").await.unwrap().unwrap();
    assert_eq!(lee.failed_logins, 2);
    // An unknown address (no connection info) is refused too: fail closed.
    let unknown = t.try_login("lee", AGENT_PW, None).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    // From inside, and from the single address.
    t.login("lee", AGENT_PW, Some(INSIDE)).await;
    t.login("lee", AGENT_PW, Some("192.0.2.200:1")).await;
    t.login("lee", AGENT_PW, Some("[::ffff:10.20.9.9]:1")).await;
    // A session opened inside and used from outside gets no ticket and no session policy.
    let s = t.login("lee", AGENT_PW, Some(INSIDE)).await;
    let r = t
        .send(
            Req::new(Method::GET, "/remote/ticket")
                .cookie_only(&s)
                .from(OUTSIDE),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = t
        .send(
            Req::new(Method::POST, "/remote/session")
                .json(&json!({ "sid": "00112233445566778899aabbccddeeff" }))
                .signed_in(&s)
                .from(OUTSIDE),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let refused = t
        .audit_actions()
        .await
        .into_iter()
        .filter(|(a, _)| a == "remote.agent_refused")
        .count();
    assert_eq!(refused, 2);
    let r = t
        .send(
            Req::new(Method::GET, "/remote/ticket")
                .cookie_only(&s)
                .from(INSIDE),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn an_agent_uses_the_console_and_nothing_administrative() {
    let t = App::new().await;
    t.with_agent("kim", "direct", json!([])).await;
    let s = t.login("kim", AGENT_PW, Some(OUTSIDE)).await;
    let get = |uri: &'static str| Req::new(Method::GET, uri).cookie_only(&s);
    assert_eq!(t.send(get("/remote")).await.status, StatusCode::OK);
    assert_eq!(t.send(get("/account")).await.status, StatusCode::OK);
    for uri in [
        "/",
        "/events",
        "/users",
        "/audit",
        "/remote/agents",
        "/remote/history",
    ] {
        assert_eq!(
            t.send(get(uri)).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
    }
    for uri in [
        "/api/v1/events",
        "/api/v1/policy/draft",
        "/api/v1/users",
        "/api/v1/remote/agents",
    ] {
        let r = t.send(get(uri)).await;
        assert!(
            r.status == StatusCode::FORBIDDEN,
            "{uri}: {} {}",
            r.status,
            r.text
        );
    }
    let r = t
        .send(
            Req::new(Method::PUT, "/api/v1/remote/agents/kim")
                .json(&json!({ "grade": "direct" }))
                .signed_in(&s),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Bad input from an admin is refused with the field named.
    let admin = t.login("admin", ADMIN_PW, None).await;
    for (body, field) in [
        (json!({ "grade": "root" }), "grade"),
        (
            json!({ "grade": "direct", "allow_from": "10.0.0.0/33" }),
            "allow_from",
        ),
    ] {
        let r = t
            .send(
                Req::new(Method::PUT, "/api/v1/remote/agents/kim")
                    .json(&body)
                    .signed_in(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json["error"]["field"], field, "{}", r.text);
    }
}

#[tokio::test]
async fn the_center_signs_the_agents_grade_for_the_session_and_keeps_its_history() {
    let t = App::new().await;
    let admin = t.with_agent("lee", "indirect", json!([])).await;
    let s = t.login("lee", AGENT_PW, Some(INSIDE)).await;
    let sid_hex = "00112233445566778899aabbccddeeff";
    // No CSRF token: refused.
    let r = t
        .send(
            Req::new(Method::POST, "/remote/session")
                .json(&json!({ "sid": sid_hex }))
                .cookie_only(&s),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .send(
            Req::new(Method::POST, "/remote/session")
                .json(&json!({ "sid": sid_hex }))
                .signed_in(&s),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let session = r.json["session"].as_i64().unwrap();
    let payload = r.json["payload"].as_str().unwrap().to_owned();
    let sig: [u8; 64] = hex::decode(r.json["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    // The customer's page: the key from the Center's own origin, no login.
    let k = t.send(Req::new(Method::GET, "/remote/policy-key")).await;
    assert_eq!(k.json["alg"], "Ed25519");
    let key: [u8; 32] = hex::decode(k.json["key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sid = SessionId(hex::decode(sid_hex).unwrap().try_into().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let grant = verify(&key, &payload, &sig, sid, now).unwrap();
    assert_eq!(grant.grade, Grade::Indirect);
    assert_eq!(grant.agent, "lee");
    assert!(!grant.session_policy().direct_control);
    assert!(!grant.session_policy().file_transfer);
    // The same session id twice: refused.
    let r = t
        .send(
            Req::new(Method::POST, "/remote/session")
                .json(&json!({ "sid": sid_hex }))
                .signed_in(&s),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // History from the console.
    let h = format!("/remote/session/{session}/history");
    for (kind, actor, detail) in [
        ("chat", "agent", json!({ "text": "안녕하세요" })),
        ("chat", "customer", json!({ "text": "네" })),
        (
            "file",
            "agent",
            json!({ "name": "a.txt", "size": 3, "sha256": "ab", "consent": "refused" }),
        ),
    ] {
        let r = t
            .send(
                Req::new(Method::POST, &h)
                    .json(&json!({ "kind": kind, "actor": actor, "detail": detail }))
                    .signed_in(&s),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    for bad in [
        json!({ "kind": "shell", "actor": "agent", "detail": {} }),
        json!({ "kind": "chat", "actor": "relay", "detail": {} }),
        json!({ "kind": "chat", "actor": "agent", "detail": "text" }),
        json!({ "kind": "chat", "actor": "agent", "detail": { "t": "x".repeat(9000) } }),
    ] {
        let r = t
            .send(Req::new(Method::POST, &h).json(&bad).signed_in(&s))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    // Another agent cannot write into it.
    t.with_agent("park", "direct", json!([])).await;
    let other = t.login("park", AGENT_PW, None).await;
    let r = t
        .send(
            Req::new(Method::POST, &h)
                .json(&json!({ "kind": "chat", "actor": "agent", "detail": {} }))
                .signed_in(&other),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let end = format!("/remote/session/{session}/end");
    let r = t
        .send(
            Req::new(Method::POST, &end)
                .json(&json!({ "reason": "Normal" }))
                .signed_in(&s),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Visible to admins and auditors afterwards, not to agents.
    let api = format!("/api/v1/remote/sessions/{session}");
    let r = t
        .send(Req::new(Method::GET, &api).cookie_only(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["session"]["agent"], "lee");
    assert_eq!(r.json["session"]["grade"], "indirect");
    assert_eq!(r.json["session"]["end_reason"], "Normal");
    assert_eq!(r.json["records"].as_array().unwrap().len(), 3);
    assert!(r.text.contains("안녕하세요"));
    let page = format!("/remote/history/{session}");
    let r = t
        .send(Req::new(Method::GET, &page).cookie_only(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("a.txt") && r.text.contains("refused"),
        "{}",
        r.text
    );
    let r = t.send(Req::new(Method::GET, &api).cookie_only(&s)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_customer_scan_needs_a_live_session_and_refuses_a_disguised_program() {
    let t = App::new().await;
    t.with_agent("lee", "direct", json!([])).await;
    let s = t.login("lee", AGENT_PW, None).await;
    let sid_hex = "ffeeddccbbaa99887766554433221100";
    let scan = |sid: Option<&str>, name: &'static str, body: Vec<u8>| {
        let mut r = Req::new(Method::POST, name).bytes(body).from(OUTSIDE);
        if let Some(sid) = sid {
            r = r.header("x-haetae-session", sid);
        }
        r
    };
    // Before the session exists: refused, and the answer says nothing more.
    let r = t
        .send(scan(Some(sid_hex), "/r/scan?name=a.txt", b"hello".to_vec()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .send(scan(None, "/r/scan?name=a.txt", b"hello".to_vec()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .send(
            Req::new(Method::POST, "/remote/session")
                .json(&json!({ "sid": sid_hex }))
                .signed_in(&s),
        )
        .await;
    let session = r.json["session"].as_i64().unwrap();
    assert_eq!(r.json["max_file"], 16 << 20);
    let r = t
        .send(scan(Some(sid_hex), "/r/scan?name=a.txt", b"hello".to_vec()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["verdict"], "clean");
    assert_eq!(
        r.json["sha256"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    // A Windows program named like a PDF: vulnerable, with findings.
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    exe.resize(512, 0);
    exe[0x3c] = 0x80;
    exe[0x80..0x84].copy_from_slice(b"PE\0\0");
    let r = t
        .send(scan(Some(sid_hex), "/r/scan?name=invoice.pdf", exe))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["verdict"], "vulnerable", "{}", r.text);
    assert!(!r.json["findings"].as_array().unwrap().is_empty());
    // The agent's side needs its login and CSRF token.
    let r = t
        .send(
            Req::new(Method::POST, "/remote/scan?name=a.txt")
                .bytes(b"x".to_vec())
                .cookie_only(&s),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .send(
            Req::new(Method::POST, "/remote/scan?name=a.txt")
                .bytes(b"x".to_vec())
                .signed_in(&s),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Rate limit per session and address.
    let mut limited = false;
    for _ in 0..25 {
        let r = t
            .send(scan(Some(sid_hex), "/r/scan?name=a.txt", b"x".to_vec()))
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited);
    // Once ended, the session scans nothing.
    let end = format!("/remote/session/{session}/end");
    t.send(
        Req::new(Method::POST, &end)
            .json(&json!({ "reason": "Normal" }))
            .signed_in(&s),
    )
    .await;
    let r = t
        .send(scan(Some(sid_hex), "/r/scan?name=a.txt", b"x".to_vec()).from(INSIDE))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
