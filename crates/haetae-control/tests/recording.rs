//! Encrypted session recordings as a client sees them (issue 10, point 7): the agent console
//! starts a recording with a key wrapped to the organisation's recording key and uploads
//! chunks (CSRF, its own session only, idempotent per index, size limits); auditors read the
//! ciphertext and only the recording private key decrypts it (a wrong key is refused); the
//! database holds no plaintext.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use haetae_bus::Bus;
use haetae_control::center::ensure_first_admin;
use haetae_control::http::{AppState, router};
use haetae_control::recording::{
    self, CODEC_H264, Record, RecordingError, RecordingPrivateKey, RecordingPublicKey,
};
use haetae_control::remote::RemoteState;
use haetae_control::store::Store;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN_PW: &str = "admin password for tests";
const AGENT_PW: &str = "agent password for tests";

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
    fn signed_in(mut self, s: &Session) -> Self {
        self.headers.push(("cookie", s.cookie.clone()));
        self.headers.push(("x-csrf-token", s.csrf.clone()));
        self
    }
    fn cookie_only(mut self, s: &Session) -> Self {
        self.headers.push(("cookie", s.cookie.clone()));
        self
    }
}

impl App {
    async fn new(recording_key: Option<RecordingPublicKey>) -> App {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(None, dir.path()).await.unwrap();
        ensure_first_admin(&store, Some(ADMIN_PW.into()))
            .await
            .unwrap();
        let mut state = AppState::new(store, Bus::in_process(), false);
        state.remote = std::sync::Arc::new(RemoteState::with_recording_key(recording_key));
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

    async fn raw(
        &self,
        method: Method,
        uri: &str,
        s: &Session,
        body: Vec<u8>,
        csrf: bool,
    ) -> (StatusCode, Vec<u8>) {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("cookie", &s.cookie);
        if csrf {
            b = b.header("x-csrf-token", &s.csrf);
        }
        let resp = self
            .app
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        (
            status,
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    }

    async fn user(&self, admin: &Session, name: &str, role: &str) -> Session {
        let r = self
            .send(
                Req::new(Method::POST, "/api/v1/users")
                    .json(&json!({ "username": name, "password": AGENT_PW, "role": role }))
                    .signed_in(admin),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
        self.login(name, AGENT_PW, None).await
    }

    /// Registers a support session for `s`; returns the Center's answer.
    async fn session(&self, s: &Session, sid: &str) -> Value {
        let r = self
            .send(
                Req::new(Method::POST, "/remote/session")
                    .json(&json!({ "sid": sid }))
                    .signed_in(s),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json
    }
}

const CHAT: &str = "계좌번호 110-123-456789 확인했습니다";
const FRAME: &[u8] = &[
    0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21,
];

fn records(meta_session: i64) -> Vec<u8> {
    let mut plain = Vec::new();
    for r in [
        Record::Meta {
            t_us: 0,
            json: json!({ "v": 1, "session": meta_session }).to_string(),
        },
        Record::Frame {
            t_us: 1000,
            key: true,
            codec: CODEC_H264,
            width: 1280,
            height: 720,
            timestamp_us: 0,
            data: FRAME.to_vec(),
        },
        Record::Event {
            t_us: 2000,
            json: json!({ "dir": "customer", "type": "Chat", "text": CHAT }).to_string(),
        },
    ] {
        r.encode_into(&mut plain);
    }
    plain
}

#[tokio::test]
async fn a_recording_is_stored_as_ciphertext_and_only_the_private_key_replays_it() {
    let org = RecordingPrivateKey::generate().unwrap();
    let t = App::new(Some(org.public_key().clone())).await;
    let admin = t.login("admin", ADMIN_PW, None).await;
    let started = t.session(&admin, "00112233445566778899aabbccddeeff").await;
    assert_eq!(
        started["recording"]["key"],
        json!(org.public_key().to_hex())
    );
    assert_eq!(
        started["recording"]["key_id"],
        json!(org.public_key().key_id())
    );
    let sid = started["session"].as_i64().unwrap();

    // A key wrapped to another key is refused: the Center decides who can replay.
    let stranger = RecordingPrivateKey::generate().unwrap();
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    let foreign = recording::wrap(stranger.public_key(), &key).unwrap();
    let uri = format!("/remote/session/{sid}/recording");
    let r = t
        .send(
            Req::new(Method::POST, &uri)
                .json(&serde_json::to_value(&foreign).unwrap())
                .signed_in(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json["error"]["field"], "key_id");
    let mut malformed =
        serde_json::to_value(recording::wrap(org.public_key(), &key).unwrap()).unwrap();
    malformed["wrapped"] = json!("00");
    let r = t
        .send(
            Req::new(Method::POST, &uri)
                .json(&malformed)
                .signed_in(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // Without the CSRF token: refused.
    let wrapped = recording::wrap(org.public_key(), &key).unwrap();
    let body = serde_json::to_value(&wrapped).unwrap();
    let r = t
        .send(Req::new(Method::POST, &uri).json(&body).cookie_only(&admin))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = t
        .send(Req::new(Method::POST, &uri).json(&body).signed_in(&admin))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rid = r.json["recording"].as_i64().unwrap();
    let r = t
        .send(Req::new(Method::POST, &uri).json(&body).signed_in(&admin))
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "one recording per session: {}",
        r.text
    );

    // Chunks: idempotent per index, nothing else under a stored index, size limits, CSRF.
    let c0 = recording::seal_chunk(&key, 0, false, &records(sid)).unwrap();
    let c1 = recording::seal_chunk(&key, 1, true, &[]).unwrap();
    let put = |i: u64, last: u8| format!("/remote/recording/{rid}/chunk/{i}?last={last}");
    assert_eq!(
        t.raw(Method::PUT, &put(0, 0), &admin, c0.clone(), false)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.raw(Method::PUT, &put(0, 0), &admin, c0.clone(), true)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        t.raw(Method::PUT, &put(0, 0), &admin, c0.clone(), true)
            .await
            .0,
        StatusCode::OK
    );
    let mut altered = c0.clone();
    altered[5] ^= 1;
    assert_eq!(
        t.raw(Method::PUT, &put(0, 0), &admin, altered, true)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        t.raw(Method::PUT, &put(2, 0), &admin, vec![0; 8], true)
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let big = vec![0u8; recording::MAX_CHUNK_BYTES + 1];
    let (status, _) = t.raw(Method::PUT, &put(2, 0), &admin, big, true).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        t.raw(Method::PUT, &put(0, 7), &admin, c0.clone(), true)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.raw(Method::PUT, &put(1, 1), &admin, c1.clone(), true)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        t.raw(Method::PUT, &put(2, 0), &admin, c1.clone(), true)
            .await
            .0,
        StatusCode::CONFLICT
    );

    // Another agent cannot add to it; a viewer and an agent cannot read it.
    let lee = t.user(&admin, "lee", "agent").await;
    assert_eq!(
        t.raw(Method::PUT, &put(3, 0), &lee, c1.clone(), true)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let viewer = t.user(&admin, "park", "viewer").await;
    let meta_uri = format!("/api/v1/remote/recordings/{rid}");
    for s in [&lee, &viewer] {
        let r = t
            .send(Req::new(Method::GET, &meta_uri).cookie_only(s))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }

    // An auditor reads the ciphertext; the read is audited.
    let auditor = t.user(&admin, "choi", "auditor").await;
    let r = t
        .send(Req::new(Method::GET, &meta_uri).cookie_only(&auditor))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["complete"], json!(true));
    assert_eq!(r.json["chunks"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["recording"]["wrapped_key"], json!(wrapped.wrapped));
    let (status, chunk) = t
        .raw(
            Method::GET,
            &format!("{meta_uri}/chunks/0"),
            &auditor,
            Vec::new(),
            false,
        )
        .await;
    assert_eq!((status, chunk), (StatusCode::OK, c0.clone()));
    let (status, bundle) = t
        .raw(
            Method::GET,
            &format!("{meta_uri}/bundle"),
            &auditor,
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let audit: Vec<String> = t
        .state
        .store
        .audit_page(None, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "remote.recording_start",
        "remote.recording_read",
        "remote.recording_export",
    ] {
        assert!(audit.iter().any(|x| x == a), "{a} missing from {audit:?}");
    }

    // Only the private key decrypts it.
    let (header, chunks) = recording::read_bundle(&bundle).unwrap();
    assert_eq!(
        (header.recording, header.session, header.agent.as_str()),
        (rid, sid, "admin")
    );
    let d = recording::decrypt(&org, &header, &chunks).unwrap();
    assert!(d.complete);
    let (h264, events, summary) = recording::export(&d);
    assert_eq!(h264, FRAME);
    assert!(events.contains(CHAT), "{events}");
    assert_eq!(summary.meta.unwrap()["session"], json!(sid));
    let err = recording::decrypt(&stranger, &header, &chunks).unwrap_err();
    assert!(matches!(err, RecordingError::WrongKey { .. }), "{err}");

    // No plaintext at rest: neither the chat nor an H.264 start code is anywhere in the
    // database files (main file and write-ahead log).
    t.state.store.clone().close().await;
    let mut at_rest = Vec::new();
    for entry in std::fs::read_dir(t._dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            at_rest.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(
        at_rest.windows(c0.len()).any(|w| w == c0.as_slice()),
        "the ciphertext is stored"
    );
    let find = |needle: &[u8]| at_rest.windows(needle.len()).any(|w| w == needle);
    assert!(!find(CHAT.as_bytes()), "chat plaintext at rest");
    assert!(!find(&key), "the recording key at rest");
    assert!(
        !find(&[0, 0, 0, 1, 0x67, 0x42]),
        "an H.264 start code at rest"
    );
}

#[tokio::test]
async fn without_a_recording_key_nothing_is_recorded() {
    let t = App::new(None).await;
    let admin = t.login("admin", ADMIN_PW, None).await;
    let started = t.session(&admin, "ffeeddccbbaa99887766554433221100").await;
    assert_eq!(started["recording"], Value::Null);
    let sid = started["session"].as_i64().unwrap();
    let org = RecordingPrivateKey::generate().unwrap();
    let body = serde_json::to_value(recording::wrap(org.public_key(), &[3; 32]).unwrap()).unwrap();
    let r = t
        .send(
            Req::new(Method::POST, &format!("/remote/session/{sid}/recording"))
                .json(&body)
                .signed_in(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("recording_key"), "{}", r.text);
    // The playback page says so for a session without a recording.
    let r = t
        .send(Req::new(Method::GET, &format!("/remote/history/{sid}/playback")).cookie_only(&admin))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("rp-none"), "{}", r.text);
}
