//! The REST API as a client sees it: authentication, CSRF, roles, input errors, policy
//! publishing through the bus, event ingest from the bus, and the OpenAPI document.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use haetae_bus::{Bus, EmitterOptions};
use haetae_control::center::ensure_first_admin;
use haetae_control::http::{AppState, router};
use haetae_control::ingest;
use haetae_control::store::Store;
use haetae_core::{Component, Event, Outcome};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN_PW: &str = "admin password for tests";

struct TestApp {
    app: Router,
    state: AppState,
    bus: Bus,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
    text: String,
}

/// A logged-in client: its cookie and CSRF token.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

impl TestApp {
    async fn new() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(None, dir.path()).await.unwrap();
        ensure_first_admin(&store, Some(ADMIN_PW.into()))
            .await
            .unwrap();
        let bus = Bus::in_process();
        let state = AppState::new(store, bus.clone(), false);
        TestApp {
            app: router(state.clone()),
            state,
            bus,
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            text,
        }
    }

    async fn login(&self, user: &str, password: &str) -> Session {
        let r = self
            .send(
                Method::POST,
                "/api/v1/session",
                Some(json!({ "username": user, "password": password })),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        Session {
            cookie,
            csrf: r.json["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn as_user(&self, s: &Session, method: Method, uri: &str, body: Option<Value>) -> Reply {
        self.send(
            method,
            uri,
            body,
            &[("cookie", &s.cookie), ("x-csrf-token", &s.csrf)],
        )
        .await
    }

    async fn admin(&self) -> Session {
        self.login("admin", ADMIN_PW).await
    }

    async fn user_with_role(&self, role: &str) -> Session {
        let admin = self.admin().await;
        let name = format!("{role}-user");
        let r = self
            .as_user(
                &admin,
                Method::POST,
                "/api/v1/users",
                Some(
                    json!({ "username": name, "password": "a long enough password", "role": role }),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        self.login(&name, "a long enough password").await
    }
}

fn service(id: &str) -> Value {
    json!({ "id": id, "name": "Transfer", "upstream": "http://127.0.0.1:9000", "match": [{ "path_prefix": "/bank/transfer" }] })
}

#[tokio::test]
async fn api_calls_without_credentials_get_401_with_a_json_error() {
    let t = TestApp::new().await;
    let r = t.send(Method::GET, "/api/v1/services", None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn login_sets_an_http_only_same_site_strict_cookie() {
    let t = TestApp::new().await;
    let r = t
        .send(
            Method::POST,
            "/api/v1/session",
            Some(json!({ "username": "admin", "password": ADMIN_PW })),
            &[],
        )
        .await;
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
}

#[tokio::test]
async fn a_state_changing_call_with_a_session_but_no_csrf_token_is_refused() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    let r = t
        .send(
            Method::POST,
            "/api/v1/services",
            Some(service("transfer")),
            &[("cookie", &s.cookie)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["error"]["code"], "csrf");
    let r = t
        .send(
            Method::POST,
            "/api/v1/services",
            Some(service("transfer")),
            &[("cookie", &s.cookie), ("x-csrf-token", "wrong")],
        )
        .await;
    assert_eq!(r.json["error"]["code"], "csrf");
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/services",
            Some(service("transfer")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_even_for_the_right_one() {
    let t = TestApp::new().await;
    for _ in 0..5 {
        let r = t
            .send(
                Method::POST,
                "/api/v1/session",
                Some(json!({ "username": "admin", "password": "wrong password!" })),
                &[],
            )
            .await;
        assert!(
            matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::LOCKED),
            "{}",
            r.status
        );
    }
    let r = t
        .send(
            Method::POST,
            "/api/v1/session",
            Some(json!({ "username": "admin", "password": ADMIN_PW })),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::LOCKED, "{}", r.text);
}

#[tokio::test]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer() {
    let t = TestApp::new().await;
    let a = t
        .send(
            Method::POST,
            "/api/v1/session",
            Some(json!({ "username": "nobody", "password": "whatever pass" })),
            &[],
        )
        .await;
    let b = t
        .send(
            Method::POST,
            "/api/v1/session",
            Some(json!({ "username": "admin", "password": "whatever pass" })),
            &[],
        )
        .await;
    assert_eq!((a.status, a.json.clone()), (b.status, b.json.clone()));
}

#[tokio::test]
async fn a_viewer_can_read_the_policy_but_not_change_or_publish_it() {
    let t = TestApp::new().await;
    let v = t.user_with_role("viewer").await;
    assert_eq!(
        t.as_user(&v, Method::GET, "/api/v1/services", None)
            .await
            .status,
        StatusCode::OK
    );
    let r = t
        .as_user(&v, Method::POST, "/api/v1/services", Some(service("x")))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["error"]["code"], "forbidden");
    let r = t
        .as_user(&v, Method::POST, "/api/v1/policy/publish", Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.as_user(&v, Method::GET, "/api/v1/audit", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_auditor_reads_the_audit_log_but_manages_no_users() {
    let t = TestApp::new().await;
    let a = t.user_with_role("auditor").await;
    assert_eq!(
        t.as_user(&a, Method::GET, "/api/v1/audit", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.as_user(&a, Method::GET, "/api/v1/users", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = t
        .as_user(
            &a,
            Method::PUT,
            "/api/v1/requirements/transfer",
            Some(json!({ "controls": ["otp"] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_bad_upstream_is_a_422_naming_the_field() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/services",
            Some(json!({ "id": "transfer", "upstream": "ftp://files" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json["error"]["field"], "upstream");
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_a_400_naming_the_field() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/services",
            Some(json!({ "id": 5, "upstream": "http://x" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json["error"]["field"], "id", "{}", r.text);
    let r = t
        .as_user(&s, Method::GET, "/api/v1/events?limit=5000", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["error"]["field"], "limit");
    let r = t
        .as_user(&s, Method::GET, "/api/v1/events?from=yesterday", None)
        .await;
    assert_eq!(r.json["error"]["field"], "from");
    let r = t
        .as_user(&s, Method::GET, "/api/v1/policy/versions/abc", None)
        .await;
    assert_eq!(r.json["error"]["field"], "version");
}

#[tokio::test]
async fn an_unknown_filter_kind_is_refused_with_the_known_kinds() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/filters",
            Some(json!({ "id": "f", "kind": "magic" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["error"]["field"], "kind");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restrict")
    );
}

async fn build_policy(t: &TestApp, s: &Session) {
    assert_eq!(
        t.as_user(
            s,
            Method::POST,
            "/api/v1/services",
            Some(service("transfer"))
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let r = t
        .as_user(s, Method::POST, "/api/v1/filters", Some(json!({ "id": "restrict-1", "kind": "restrict", "config": { "device_lists": ["blocked"] } })))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = t
        .as_user(
            s,
            Method::PUT,
            "/api/v1/matrix/transfer/restrict-1",
            Some(json!({ "mapped": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t
        .as_user(
            s,
            Method::PUT,
            "/api/v1/lists/blocked",
            Some(json!({ "kind": "device", "entries": ["BAD-1"] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn publishing_the_draft_puts_the_next_version_on_the_bus() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    build_policy(&t, &s).await;
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/policy/publish",
            Some(json!({ "comment": "first" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["version"], 1);
    let on_bus = t.bus.latest_policy().await.unwrap().unwrap();
    assert_eq!(on_bus.version, 1);
    assert_eq!(on_bus.chain_for("transfer")[0].id, "restrict-1");
    let versions = t
        .as_user(&s, Method::GET, "/api/v1/policy/versions", None)
        .await;
    assert_eq!(versions.json[0]["comment"], "first");
}

#[tokio::test]
async fn an_invalid_draft_is_not_published_and_every_problem_is_listed() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    let bad = json!({ "services": [{ "id": "a", "upstream": "nope" }], "mappings": [{ "service": "zzz", "filters": [] }] });
    assert_eq!(
        t.as_user(&s, Method::PUT, "/api/v1/policy/draft", Some(bad))
            .await
            .status,
        StatusCode::OK
    );
    let r = t
        .as_user(&s, Method::POST, "/api/v1/policy/publish", Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = r.json["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["services[0].upstream", "mappings[0].service"]);
    assert!(t.bus.latest_policy().await.unwrap().is_none());
}

#[tokio::test]
async fn rollback_publishes_the_old_content_as_a_new_version() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    build_policy(&t, &s).await;
    t.as_user(&s, Method::POST, "/api/v1/policy/publish", Some(json!({})))
        .await;
    t.as_user(&s, Method::DELETE, "/api/v1/services/transfer", None)
        .await;
    let r = t
        .as_user(&s, Method::POST, "/api/v1/policy/publish", Some(json!({})))
        .await;
    assert_eq!(r.json["version"], 2);
    let diff = t
        .as_user(&s, Method::GET, "/api/v1/policy/diff?from=1&to=2", None)
        .await;
    assert_eq!(diff.json[0]["op"], "removed");
    assert_eq!(diff.json[0]["id"], "transfer");
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/policy/rollback",
            Some(json!({ "version": 1 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["version"], 3);
    let on_bus = t.bus.latest_policy().await.unwrap().unwrap();
    assert_eq!(on_bus.version, 3);
    assert!(on_bus.service("transfer").is_some());
}

#[tokio::test]
async fn the_security_check_shows_a_gap_for_a_required_control_that_is_not_mapped() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    build_policy(&t, &s).await;
    let r = t
        .as_user(
            &s,
            Method::PUT,
            "/api/v1/requirements/transfer",
            Some(json!({ "controls": ["restrict", "otp"] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t
        .as_user(&s, Method::GET, "/api/v1/security-check", None)
        .await;
    assert_eq!(r.json[0]["cells"]["restrict"], "met");
    assert_eq!(r.json[0]["cells"]["otp"], "gap");
    assert_eq!(r.json[0]["gaps"], 1);
    let r = t
        .as_user(
            &s,
            Method::PUT,
            "/api/v1/requirements/transfer",
            Some(json!({ "controls": ["telepathy"] })),
        )
        .await;
    assert_eq!(r.json["error"]["field"], "controls[0]");
}

#[tokio::test]
async fn an_api_token_works_without_csrf_until_revoked() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "ci" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = r.json["token"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_i64().unwrap();
    let bearer = format!("Bearer {token}");
    let r = t
        .send(
            Method::POST,
            "/api/v1/services",
            Some(service("api")),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let audit = t
        .as_user(&s, Method::GET, "/api/v1/audit?limit=1", None)
        .await;
    assert_eq!(audit.json[0]["actor"], "admin (token ci)");
    t.as_user(&s, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    let r = t
        .send(
            Method::GET,
            "/api/v1/services",
            None,
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_change_is_in_the_audit_log_and_the_chain_verifies() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    build_policy(&t, &s).await;
    let r = t
        .as_user(&s, Method::GET, "/api/v1/audit?limit=100", None)
        .await;
    let actions: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.create",
        "auth.login",
        "service.create",
        "filter.create",
        "mapping.cell",
        "list.put",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let v = t
        .as_user(&s, Method::GET, "/api/v1/audit/verify", None)
        .await;
    assert_eq!(v.json["intact"], true);
}

#[tokio::test]
async fn events_emitted_on_the_bus_are_ingested_once_and_searchable() {
    let t = TestApp::new().await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ingest_task = tokio::spawn(ingest::run(t.state.clone(), t.bus.clone(), stop_rx));
    let emitter = t.bus.event_emitter(EmitterOptions::default()).unwrap();
    let blocked = Event::new(Component::Gateway, "restrict.block")
        .outcome(Outcome::Failure)
        .user_id("mallory")
        .device_id("BAD-1");
    assert!(emitter.emit(blocked.clone()));
    assert!(emitter.emit(blocked.clone()), "a redelivered event");
    assert!(
        emitter.emit(
            Event::new(Component::Gateway, "gateway.heartbeat")
                .instance("gw-1")
                .policy_version(4)
        )
    );
    assert!(emitter.flush(Duration::from_secs(5)).await);
    let s = t.admin().await;
    let mut found = Value::Null;
    for _ in 0..50 {
        found = t
            .as_user(&s, Method::GET, "/api/v1/events?user=mallory", None)
            .await
            .json;
        if found.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["id"], blocked.id().to_string());
    let gws = t.as_user(&s, Method::GET, "/api/v1/gateways", None).await;
    assert_eq!(gws.json[0]["instance"], "gw-1");
    assert_eq!(gws.json[0]["policy_version"], 4);
    assert_eq!(gws.json[0]["online"], true);
    // A gateway's report that it runs a new version shows at once, not at its next heartbeat.
    assert!(
        emitter.emit(
            Event::new(Component::Gateway, "gateway.policy_applied")
                .instance("gw-1")
                .policy_version(5)
        )
    );
    assert!(emitter.flush(Duration::from_secs(5)).await);
    let mut version = Value::Null;
    for _ in 0..50 {
        version = t
            .as_user(&s, Method::GET, "/api/v1/gateways", None)
            .await
            .json[0]["policy_version"]
            .clone();
        if version == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(version, 5);
    let hb = t
        .as_user(
            &s,
            Method::GET,
            "/api/v1/events?action=gateway.heartbeat",
            None,
        )
        .await;
    assert_eq!(
        hb.json.as_array().unwrap().len(),
        0,
        "heartbeats are not stored as events"
    );
    stop_tx.send(true).unwrap();
    ingest_task.await.unwrap();
}

#[tokio::test]
async fn csv_export_neutralises_spreadsheet_formulas() {
    let t = TestApp::new().await;
    let e = Event::new(Component::Gateway, "restrict.block").user_id("=HYPERLINK(\"http://evil\")");
    t.state.store.insert_events(&[e]).await.unwrap();
    let s = t.admin().await;
    let r = t
        .as_user(&s, Method::GET, "/api/v1/events/export?format=csv", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{}",
        r.text
    );
    let r = t
        .as_user(&s, Method::GET, "/api/v1/events/export?format=jsonl", None)
        .await;
    assert_eq!(r.text.lines().count(), 1);
    assert!(Event::from_json(r.text.trim()).is_ok());
}

#[tokio::test]
async fn the_openapi_document_lists_every_resource() {
    let t = TestApp::new().await;
    let r = t.send(Method::GET, "/api/v1/openapi.json", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.json["paths"].as_object().unwrap();
    for p in [
        "/api/v1/services",
        "/api/v1/filters",
        "/api/v1/filter-kinds",
        "/api/v1/matrix/{service}/{filter}",
        "/api/v1/requirements/{service}",
        "/api/v1/security-check",
        "/api/v1/lists/{name}",
        "/api/v1/policy/publish",
        "/api/v1/policy/diff",
        "/api/v1/policy/rollback",
        "/api/v1/gateways",
        "/api/v1/events",
        "/api/v1/events/export",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/alerts",
        "/api/v1/alerts/{id}/ack",
        "/api/v1/alert-rules/{id}",
        "/api/v1/notifiers/{id}",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_send_strangers_to_login() {
    let t = TestApp::new().await;
    let r = t.send(Method::GET, "/", None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/login");
    let r = t.send(Method::GET, "/login", None, &[]).await;
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(!r.text.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn the_ui_speaks_korean_by_default_and_english_when_preferred() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    let ko = t
        .send(Method::GET, "/", None, &[("cookie", &s.cookie)])
        .await;
    assert!(ko.text.contains("보안관제센터"), "{}", ko.text);
    let en = t
        .send(
            Method::GET,
            "/",
            None,
            &[("cookie", &s.cookie), ("accept-language", "en-US,en;q=0.9")],
        )
        .await;
    assert!(en.text.contains("Security Control Center"));
}

#[tokio::test]
async fn the_security_check_page_marks_gaps_in_a_red_class() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    build_policy(&t, &s).await;
    t.as_user(
        &s,
        Method::PUT,
        "/api/v1/requirements/transfer",
        Some(json!({ "controls": ["otp"] })),
    )
    .await;
    let r = t
        .send(
            Method::GET,
            "/security-check",
            None,
            &[("cookie", &s.cookie)],
        )
        .await;
    assert!(
        r.text.contains("class=\"check-gap\" data-control=\"otp\""),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn unknown_api_routes_answer_with_a_json_404() {
    let t = TestApp::new().await;
    let r = t.send(Method::GET, "/api/v1/nope", None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_matrix_cell_mode_goes_into_the_draft_and_is_published() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    build_policy(&t, &s).await;
    let r = t
        .as_user(
            &s,
            Method::PUT,
            "/api/v1/matrix/transfer/restrict-1",
            Some(json!({ "mapped": true, "mode": "monitor" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json[0]["modes"]["restrict-1"], "monitor");
    let r = t
        .as_user(
            &s,
            Method::PUT,
            "/api/v1/matrix/transfer/restrict-1",
            Some(json!({ "mapped": true, "mode": "loud" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = t
        .as_user(
            &s,
            Method::PUT,
            "/api/v1/mappings/transfer",
            Some(json!({ "filters": ["restrict-1"], "modes": { "nope": "off" } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json["error"]["field"], "modes.nope");
    // The page shows the cell's mode with a selector.
    let page = t.as_user(&s, Method::GET, "/matrix", None).await;
    assert!(
        page.text.contains("class=\"mapped mode-monitor\""),
        "{}",
        page.text
    );
    assert!(page.text.contains("<option value=\"monitor\" selected>"));
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/policy/publish",
            Some(json!({ "comment": "cell" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let latest = t.bus.latest_policy().await.unwrap().unwrap();
    assert_eq!(
        latest.mappings[0].modes.get("restrict-1"),
        Some(&haetae_core::FilterMode::Monitor)
    );
    // Back to the instance's own mode; unmapping removes the mode too.
    let r = t
        .as_user(
            &s,
            Method::PUT,
            "/api/v1/matrix/transfer/restrict-1",
            Some(json!({ "mapped": true, "mode": "inherit" })),
        )
        .await;
    assert!(r.json[0]["modes"].is_null(), "{}", r.text);
}

#[tokio::test]
async fn an_alert_rule_raises_alerts_from_ingested_events_with_roles_and_audit() {
    let t = TestApp::new().await;
    let admin = t.admin().await;
    let viewer = t.user_with_role("viewer").await;
    let rule = json!({
        "id": "blocked-user", "name": "user blocked 3 times", "severity": "high",
        "condition": { "type": "threshold", "count": 3, "minutes": 5 },
        "filter": { "action": "restrict.*", "outcome": "failure" },
        "group_by": "user", "quiet_minutes": 10
    });
    let r = t
        .as_user(
            &viewer,
            Method::PUT,
            "/api/v1/alert-rules/blocked-user",
            Some(rule.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut bad = rule.clone();
    bad["condition"]["count"] = json!(0);
    let r = t
        .as_user(
            &admin,
            Method::PUT,
            "/api/v1/alert-rules/blocked-user",
            Some(bad),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["error"]["field"], "condition.count");
    let mut unknown = rule.clone();
    unknown["notify"] = json!(["nowhere"]);
    let r = t
        .as_user(
            &admin,
            Method::PUT,
            "/api/v1/alert-rules/blocked-user",
            Some(unknown),
        )
        .await;
    assert_eq!(r.json["error"]["field"], "notify[0]", "{}", r.text);
    let r = t
        .as_user(
            &admin,
            Method::PUT,
            "/api/v1/alert-rules/blocked-user",
            Some(rule),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let block = |user: &str| {
        Event::new(Component::Gateway, "restrict.block")
            .outcome(Outcome::Failure)
            .user_id(user)
    };
    let mut live = t.state.alerts.live.subscribe();
    ingest::store_batch(
        &t.state,
        vec![block("mallory"), block("mallory"), block("alice")],
    )
    .await
    .unwrap();
    let none = t
        .as_user(&viewer, Method::GET, "/api/v1/alerts", None)
        .await;
    assert_eq!(none.json.as_array().unwrap().len(), 0);
    ingest::store_batch(&t.state, vec![block("mallory"), block("mallory")])
        .await
        .unwrap();
    let alerts = t
        .as_user(&viewer, Method::GET, "/api/v1/alerts", None)
        .await;
    let list = alerts.json.as_array().unwrap();
    assert_eq!(list.len(), 1, "one alert, then quiet: {}", alerts.text);
    assert_eq!(list[0]["rule_id"], "blocked-user");
    assert_eq!(list[0]["detail"]["group"], "mallory");
    let pushed = live.try_recv().unwrap();
    assert_eq!(pushed[0].id, list[0]["id"].as_str().unwrap());

    let id = list[0]["id"].as_str().unwrap();
    let r = t
        .as_user(
            &viewer,
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .as_user(
            &admin,
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let audit = t.as_user(&admin, Method::GET, "/api/v1/audit", None).await;
    let actions: Vec<&str> = audit
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"alert-rule.put"), "{actions:?}");
    assert!(actions.contains(&"alert.ack"), "{actions:?}");
    let page = t.as_user(&admin, Method::GET, "/alerts", None).await;
    assert!(page.text.contains("user blocked 3 times"), "{}", page.text);
}

#[tokio::test]
async fn notifiers_are_for_admins_and_never_show_their_secret() {
    let t = TestApp::new().await;
    let admin = t.admin().await;
    let officer = t.user_with_role("security-officer").await;
    let hook = json!({ "id": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook",
                       "secret": "a secret of sixteen+ bytes" });
    let r = t
        .as_user(
            &officer,
            Method::PUT,
            "/api/v1/notifiers/hook",
            Some(hook.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .as_user(&admin, Method::PUT, "/api/v1/notifiers/hook", Some(hook))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("sixteen"), "{}", r.text);
    assert_eq!(r.json["has_secret"], true);
    // Changing the URL without sending the secret keeps it.
    let r = t
        .as_user(
            &admin,
            Method::PUT,
            "/api/v1/notifiers/hook",
            Some(json!({ "id": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/other" })),
        )
        .await;
    assert_eq!(r.json["has_secret"], true, "{}", r.text);
    let list = t
        .as_user(&admin, Method::GET, "/api/v1/notifiers", None)
        .await;
    assert!(!list.text.contains("sixteen"), "{}", list.text);
    assert_eq!(list.json[0]["url"], "http://127.0.0.1:9/other");
    let audit = t.as_user(&admin, Method::GET, "/api/v1/audit", None).await;
    assert!(
        !audit.text.contains("sixteen"),
        "no secret in the audit log"
    );
    let r = t
        .as_user(
            &admin,
            Method::PUT,
            "/api/v1/notifiers/other",
            Some(json!({ "id": "hook", "kind": "webhook", "url": "http://x/" })),
        )
        .await;
    assert_eq!(r.json["error"]["field"], "id");
    let r = t
        .as_user(&admin, Method::DELETE, "/api/v1/notifiers/hook", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_totp_second_factor_is_enrolled_then_required_and_codes_work_once() {
    use haetae_control::totp;
    let t = TestApp::new().await;
    let s = t.admin().await;
    let r = t
        .as_user(&s, Method::POST, "/api/v1/account/totp", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secret = totp::base32_decode(r.json["secret"].as_str().unwrap()).unwrap();
    assert_eq!(secret.len(), 20);
    let qr = r.json["qr_svg"].as_str().unwrap();
    assert!(
        qr.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && qr.ends_with("</svg>"),
        "{qr}"
    );
    let now = || time::OffsetDateTime::now_utc().unix_timestamp();
    let wrong = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/account/totp/confirm",
            Some(json!({ "code": "000000" })),
        )
        .await;
    // (One chance in a million that 000000 is the current code.)
    if totp::code_at(&secret, now()) != "000000" {
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    }
    let code = totp::code_at(&secret, now());
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/account/totp/confirm",
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let recovery: Vec<String> = serde_json::from_value(r.json["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);

    let login = |otp: Option<&str>| {
        let mut body = json!({ "username": "admin", "password": ADMIN_PW });
        if let Some(o) = otp {
            body["otp"] = json!(o);
        }
        t.send(Method::POST, "/api/v1/session", Some(body), &[])
    };
    let r = login(None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"]["code"], "otp_required");
    // The enrolment's code is used up: a replay is refused.
    let r = login(Some(&code)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = login(Some(&recovery[0].to_uppercase())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = login(Some(&recovery[0])).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );
    let status = t
        .as_user(&s, Method::GET, "/api/v1/account/totp", None)
        .await;
    assert_eq!(status.json["enabled"], true);
    assert_eq!(status.json["recovery_left"], 9);
    // Turning it off needs the password and a code.
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/account/totp/disable",
            Some(json!({ "password": "not the password", "code": recovery[1] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["error"]["field"], "password");
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/account/totp/disable",
            Some(json!({ "password": ADMIN_PW, "code": recovery[2] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(login(None).await.status, StatusCode::OK);
    let audit = t.as_user(&s, Method::GET, "/api/v1/audit", None).await;
    for action in ["totp.enrol", "totp.enable", "totp.disable"] {
        assert!(audit.text.contains(action), "{action} missing");
    }
    assert!(
        !audit.text.contains(&recovery[3]),
        "no codes in the audit log"
    );
}

#[tokio::test]
async fn the_analysis_names_each_restricted_device_with_the_users_behind_it() {
    let t = TestApp::new().await;
    let attempt = |action: &str, user: &str, device: &str| {
        Event::new(Component::Gateway, action)
            .outcome(Outcome::Failure)
            .user_id(user)
            .device_id(device)
            .service_id("transfer")
    };
    t.state
        .store
        .insert_events(&[
            attempt("restrict.notice", "mallory", "LOST-PHONE-1"),
            attempt("restrict.notice", "mallory", "LOST-PHONE-1"),
            attempt("restrict.respond", "eve", "LOST-PHONE-1"),
            attempt("restrict.notice", "kim", "OLD-TABLET"),
            attempt("injection.block", "trudy", "LAPTOP-9"),
        ])
        .await
        .unwrap();
    let s = t.admin().await;
    let r = t
        .as_user(
            &s,
            Method::GET,
            "/api/v1/analysis?by=device&range=24h&action=restrict.*",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["by"], "device");
    assert_eq!(r.json["action"], "restrict.*");
    let rows = r.json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", r.text);
    assert_eq!(rows[0]["value"], "LOST-PHONE-1");
    assert_eq!(rows[0]["count"], 3);
    assert_eq!(rows[0]["users"][0]["value"], "mallory");
    assert_eq!(rows[0]["users"][1]["value"], "eve");
    assert_eq!(rows[1]["value"], "OLD-TABLET");
    assert!(r.json["series"].as_array().is_some_and(|s| !s.is_empty()));

    let bad = t
        .as_user(&s, Method::GET, "/api/v1/analysis?by=password", None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json["error"]["field"], "by");

    let page = t
        .send(
            Method::GET,
            "/analysis?by=device&range=24h&action=restrict.*",
            None,
            &[("cookie", &s.cookie)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("id=\"analysis-chart\""), "{}", page.text);
    assert!(page.text.contains("<tr data-value=\"LOST-PHONE-1\">"));
    assert!(page.text.contains("mallory (2), eve (1)"));
    assert!(
        !page.text.contains("LAPTOP-9"),
        "injection.block is not a restrict.* action"
    );
}

#[tokio::test]
async fn the_dashboard_lists_filters_with_an_open_breaker_or_switched_off() {
    let t = TestApp::new().await;
    t.state
        .store
        .record_heartbeat(&haetae_control::store::gateways::GatewayStatus {
            instance: "gw-1".into(),
            last_seen: haetae_control::store::now_micros(),
            policy_version: Some(1),
            detail: r#"{"filter.restrict-1":"open","filter.device-info-1":"closed","status":"degraded"}"#.into(),
        })
        .await
        .unwrap();
    let s = t.admin().await;
    let d = t.as_user(&s, Method::GET, "/api/v1/dashboard", None).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert_eq!(
        d.json["filter_problems"],
        json!([{ "gateway": "gw-1", "filter": "restrict-1", "state": "open" }])
    );
    let page = t
        .send(Method::GET, "/", None, &[("cookie", &s.cookie)])
        .await;
    assert!(
        page.text
            .contains("<tr class=\"filter-open\"><td>gw-1</td><td>restrict-1</td>"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn the_rollout_shows_which_gateways_run_refused_or_have_not_reported_the_latest_version() {
    let t = TestApp::new().await;
    let s = t.admin().await;
    let empty = t
        .as_user(&s, Method::GET, "/api/v1/policy/rollout", None)
        .await;
    assert_eq!(empty.json, json!({ "version": null, "gateways": [] }));
    build_policy(&t, &s).await;
    let r = t
        .as_user(
            &s,
            Method::POST,
            "/api/v1/policy/publish",
            Some(json!({ "comment": "v1" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let now = haetae_control::store::now_micros();
    for (gw, version) in [("gw-a", 1), ("gw-b", 0), ("gw-c", 0)] {
        t.state
            .store
            .record_heartbeat(&haetae_control::store::gateways::GatewayStatus {
                instance: gw.into(),
                last_seen: now,
                policy_version: Some(version),
                detail: "{}".into(),
            })
            .await
            .unwrap();
    }
    t.state
        .store
        .insert_events(&[Event::new(Component::Gateway, "gateway.policy_rejected")
            .instance("gw-b")
            .outcome(Outcome::Failure)
            .label("rejected_version", "1")
            .message("the policy has 1 problem(s):\n  filters[0].config.notice_path: \"\" must be a path")])
        .await
        .unwrap();
    let r = t
        .as_user(&s, Method::GET, "/api/v1/policy/rollout", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["version"], 1);
    let states: Vec<(&str, &str)> = r.json["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["gateway"].as_str().unwrap(), g["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("gw-a", "running"),
            ("gw-b", "rejected"),
            ("gw-c", "pending")
        ]
    );
    assert!(
        r.json["gateways"][1]["problems"]
            .as_str()
            .unwrap()
            .contains("notice_path")
    );
    let page = t
        .send(Method::GET, "/policy", None, &[("cookie", &s.cookie)])
        .await;
    assert!(
        page.text
            .contains("<tr data-gateway=\"gw-b\" data-state=\"rejected\">"),
        "{}",
        page.text
    );
    assert!(page.text.contains("filters[0].config.notice_path"));
}

#[tokio::test]
async fn the_remote_support_pages_customer_open_agent_console_for_operators_only() {
    let t = TestApp::new().await;
    // The customer's page is open to anyone (the customer has no account), with or without
    // the code in the path, under the same strict CSP: scripts are files, no inline style.
    for path in ["/r", "/r/123456789"] {
        let r = t.send(Method::GET, path, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert!(
            r.text
                .contains("상담원이 원격지원 중입니다 / An agent is supporting you")
        );
        assert!(
            r.text.contains("녹화") && r.text.contains("recorded"),
            "consent names recording"
        );
        assert!(!r.text.contains("<script>") && !r.text.contains("style="));
        assert!(
            !r.text.contains("123456789"),
            "nothing from the URL is rendered"
        );
    }
    for (asset, ctype) in [
        ("proto.js", "text/javascript"),
        ("link.js", "text/javascript"),
        ("customer.js", "text/javascript"),
        ("agent.js", "text/javascript"),
        ("remote.css", "text/css"),
    ] {
        let r = t
            .send(Method::GET, &format!("/assets/remote/{asset}"), None, &[])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(ctype)
        );
    }
    // The agent console: strangers go to the login page, a viewer may not issue codes, an
    // admin gets the console with its user name as the agent id.
    let r = t.send(Method::GET, "/remote", None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let viewer = t.user_with_role("viewer").await;
    let r = t
        .send(Method::GET, "/remote", None, &[("cookie", &viewer.cookie)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text.contains("rs-issue"));
    let admin = t.admin().await;
    let r = t
        .send(Method::GET, "/remote", None, &[("cookie", &admin.cookie)])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("id=\"rs-issue\"") && r.text.contains("data-agent=\"admin\""));
    assert!(r.text.contains("/assets/remote/agent.js"));

    // The relay's agent ticket: only for those who may use the console, never cached, and
    // null when no relay asks for one (this Center has no ticket key).
    let r = t.send(Method::GET, "/remote/ticket", None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t
        .send(
            Method::GET,
            "/remote/ticket",
            None,
            &[("cookie", &viewer.cookie)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .send(
            Method::GET,
            "/remote/ticket",
            None,
            &[("cookie", &admin.cookie)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.json["ticket"], Value::Null);
}

/// With a ticket key (as `haetae up` sets), the ticket names the logged-in user and the
/// relay's verification (same key) accepts it.
#[tokio::test]
async fn the_agent_ticket_names_the_logged_in_user() {
    use haetae_core::agent_ticket::TicketKey;
    let mut t = TestApp::new().await;
    let key = TicketKey::from_bytes([5; 32]);
    t.state.agent_tickets = Some(key.clone());
    t.app = router(t.state.clone());
    let admin = t.admin().await;
    let r = t
        .send(
            Method::GET,
            "/remote/ticket",
            None,
            &[("cookie", &admin.cookie)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ticket = r.json["ticket"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(key.verify(&ticket, now).unwrap(), "admin");
    assert!(key.verify(&ticket, now + 10 * 60).is_err(), "short-lived");
}
