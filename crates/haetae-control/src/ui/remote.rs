//! Remote support in the browser (issue 10, `docs/remote.md`): the customer's page at `/r`
//! (and `/r/CODE`, a link that carries the code), open to anyone because the customer has no
//! account, and the agent console at `/remote` for users with the `RemoteSupport` permission
//! (the `agent` role, admins and security officers), each under its grade and login networks
//! ([`crate::remote`]). Both pages are static
//! HTML plus ES modules from `assets/remote/`; they talk to the relay (`/relay` on this
//! address in `haetae up`) over a WebSocket and encrypt end to end in the browser, so the
//! Center serves code and never sees a session's content. No inline script or style: the
//! Center's CSP applies unchanged.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use haetae_remote::policy::{Features, Grade, PolicyGrant};
use haetae_remote::protocol::SessionId;
use serde::Deserialize;
use serde_json::json;

use super::pages::{self, esc, layout, page};
use crate::auth::Permission;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiJson};
use crate::http::session::Principal;
use crate::remote::ClientAddr;
use crate::store::now_micros;

const PROTO_JS: &str = include_str!("../../assets/remote/proto.js");
const LINK_JS: &str = include_str!("../../assets/remote/link.js");
const CUSTOMER_JS: &str = include_str!("../../assets/remote/customer.js");
const AGENT_JS: &str = include_str!("../../assets/remote/agent.js");
const REMOTE_CSS: &str = include_str!("../../assets/remote/remote.css");

/// The customer's page: code, consent, SAS, sharing, chat, the agent's pointer and the
/// "an agent is supporting you" banner. The same document for `/r` and `/r/CODE`; the
/// script reads the code from the path, so nothing from the URL is rendered here.
const CUSTOMER_HTML: &str = r#"<!doctype html><html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>원격지원 · Remote support</title><link rel="icon" href="/assets/icon.svg">
<link rel="stylesheet" href="/assets/remote/remote.css">
<script type="module" src="/assets/remote/customer.js"></script></head>
<body class="rs-customer">
<div id="rs-banner" class="rs-banner" hidden><span>상담원이 원격지원 중입니다 / An agent is supporting you</span>
<button id="rs-end" type="button">지원 종료 / End</button></div>
<main class="rs-main">
<h1>원격지원 <span class="muted">Remote support</span></h1>
<section id="rs-step-code" class="card">
<form id="rs-code-form" autocomplete="off">
<label for="rs-code">상담원이 알려 준 접속 번호 / The code the agent gave you</label>
<input id="rs-code" name="code" inputmode="numeric" maxlength="15" required>
<section id="rs-consent" class="rs-consent">
<h2>동의 / Consent</h2>
<p>상담원이 이 지원 세션 동안 공유하신 화면(또는 이 탭)을 볼 수 있습니다. 화면 공유는 다음 단계에서 직접 선택하시며 언제든 멈출 수 있습니다.</p>
<p>채팅과 파일 전송 기록은 서버에 보관되며, 세션은 녹화될 수 있습니다. 녹화본은 권한이 있는 감사 담당자만 볼 수 있습니다.</p>
<p>세션 내용은 종단 간 암호화되어 중계 서버도 읽을 수 없습니다. 화면에 보이는 6자리 확인 번호를 상담원과 전화로 맞춰 보세요.</p>
<p lang="en">The agent will see the screen (or this tab) you share during this session. You choose what to share in the next step and can stop at any time.</p>
<p lang="en">Chat and file-transfer history is kept on the server, and the session may be recorded; only authorised auditors can replay a recording.</p>
<p lang="en">The session is end-to-end encrypted: the relay cannot read it. Compare the 6-digit check number on your screen with the agent on the phone.</p>
<label class="rs-check"><input id="rs-agree" type="checkbox" required> 위 내용을 읽었고 동의합니다 / I have read this and agree</label>
</section>
<button id="rs-connect" type="submit">동의하고 연결 / Agree and connect</button>
</form>
</section>
<section id="rs-step-sas" class="card" hidden>
<h2>확인 번호 / Check number</h2>
<p>상담원에게 이 번호를 불러 주세요. 상담원의 화면에도 같은 번호가 보여야 합니다.<br><span lang="en">Read this number to the agent; the agent must see the same number.</span></p>
<p id="rs-sas" class="rs-sas"></p>
<p class="muted">상담원이 확인할 때까지 아무것도 전송되지 않습니다 / Nothing is sent until the agent confirms.</p>
</section>
<section id="rs-step-share" class="card" hidden>
<p>상담원이 확인 번호를 확인했습니다 / The agent confirmed the check number.</p>
<button id="rs-share" type="button">화면 공유 시작 / Start sharing</button>
<span id="rs-share-state" class="muted"></span>
</section>
<p id="rs-agent-name" class="muted"></p>
<section id="rs-url-box" class="card rs-url-box" hidden>
<p>상담원이 이 주소를 열도록 보냈습니다. 주소를 확인하고 결정하세요. / The agent sent this address. Check it, then decide.</p>
<p><code id="rs-url-text" class="rs-url-text"></code></p>
<button id="rs-url-open" type="button">새 탭에서 열기 / Open in a new tab</button> <button id="rs-url-refuse" type="button" class="secondary">열지 않기 / Do not open</button>
</section>
<section id="rs-files-box" class="card" hidden>
<h2>파일 / Files</h2>
<p class="muted">받은 파일은 저장하기 전에 검사합니다 / Received files are scanned before you can save them.</p>
<ol id="rs-files" class="rs-files"></ol>
</section>
<section id="rs-send-file-box" class="card" hidden>
<label>상담원에게 파일 보내기 / Send a file to the agent <input id="rs-send-file" type="file"></label>
</section>
<section id="rs-chat-box" class="card rs-chat" hidden>
<h2>채팅 / Chat</h2>
<ol id="rs-chat-log" class="rs-chat-log"></ol>
<form id="rs-chat-form" autocomplete="off"><input id="rs-chat-input" maxlength="1000" aria-label="메시지 / Message"><button type="submit">보내기 / Send</button></form>
</section>
<p id="rs-status" class="rs-status" role="status"></p>
</main>
<canvas id="rs-draw" class="rs-draw" hidden></canvas>
<div id="rs-pointer" class="rs-pointer" hidden></div>
</body></html>
"#;

async fn customer_page() -> Response {
    Html(CUSTOMER_HTML).into_response()
}

fn asset(body: &'static str, ctype: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(ctype),
    );
    h.insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    r
}

/// The agent console: issue a code, compare the SAS, watch, chat, point, end; the
/// session's event log beside the screen.
pub async fn agent_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.can(Permission::RemoteSupport) {
        return pages::forbidden(&p, "/remote");
    }
    let rules = match crate::remote::rules_for(&state.store, &p.principal_user()).await {
        Ok(r) => r,
        Err(e) => return pages::api_error_page(e.into()),
    };
    let mut admin_links = String::new();
    if p.can(Permission::ManageUsers) {
        let _ = write!(
            admin_links,
            "<a href=\"/remote/agents\">{}</a> ",
            p.t("remote.agents")
        );
    }
    if p.can(Permission::ReadAudit) {
        let _ = write!(
            admin_links,
            "<a href=\"/remote/history\">{}</a>",
            p.t("remote.history")
        );
    }
    let body = format!(
        "<link rel=\"stylesheet\" href=\"/assets/remote/remote.css\">\
         <script type=\"module\" src=\"/assets/remote/agent.js\"></script>\
         <p class=\"rs-admin-links\">{admin_links}</p>\
         <div id=\"rs-agent\" class=\"rs-agent\" data-agent=\"{agent}\" data-grade=\"{grade}\">\
         <section class=\"card rs-controls\">\
         <span class=\"muted\">{grade_label}: <strong id=\"rs-grade\">{grade}</strong></span> \
         <button id=\"rs-issue\" type=\"button\">{issue}</button> \
         <span class=\"rs-code-label\">{code_label}</span> <strong id=\"rs-code\" class=\"rs-code\"></strong> \
         <span id=\"rs-link\" class=\"muted\"></span>\
         <div id=\"rs-sas-box\" class=\"rs-sas-box\" hidden><span>{sas_label}</span> <strong id=\"rs-sas\" class=\"rs-sas\"></strong> \
         <button id=\"rs-sas-ok\" type=\"button\">{sas_ok}</button> <button id=\"rs-sas-bad\" type=\"button\" class=\"danger\">{sas_bad}</button></div>\
         <button id=\"rs-end\" type=\"button\" hidden>{end}</button> <span id=\"rs-state\" class=\"muted\"></span>\
         <span id=\"rs-fps\" class=\"muted\"></span>\
         <div id=\"rs-tools\" class=\"rs-tools\" hidden>\
         <label class=\"rs-check\"><input id=\"rs-draw\" type=\"checkbox\"> {draw}</label> \
         <button id=\"rs-clear\" type=\"button\">{clear}</button> \
         <form id=\"rs-url-form\" class=\"rs-inline\" autocomplete=\"off\"><input id=\"rs-url\" type=\"url\" maxlength=\"2048\" placeholder=\"https://\" aria-label=\"{url}\"><button type=\"submit\">{url}</button></form> \
         <button id=\"rs-control\" type=\"button\" hidden>{control}</button> \
         <label id=\"rs-file-label\" class=\"rs-file-label\" hidden>{file} <input id=\"rs-file\" type=\"file\"></label>\
         </div></section>\
         <div class=\"rs-work\"><div class=\"rs-screen-box\"><canvas id=\"rs-screen\" class=\"rs-screen\" width=\"1280\" height=\"720\"></canvas></div>\
         <aside class=\"rs-side\"><section class=\"card rs-chat\"><h2>{chat}</h2><ol id=\"rs-chat-log\" class=\"rs-chat-log\"></ol>\
         <form id=\"rs-chat-form\" autocomplete=\"off\"><input id=\"rs-chat-input\" maxlength=\"1000\" aria-label=\"{chat}\" disabled>\
         <button type=\"submit\">{send}</button></form></section>\
         <section class=\"card\"><h2>{files}</h2><ol id=\"rs-files\" class=\"rs-files\"></ol></section>\
         <section class=\"card\"><h2>{log}</h2><ol id=\"rs-log\" class=\"rs-log\"></ol></section></aside></div></div>",
        agent = esc(&p.principal_name()),
        issue = p.t("remote.issue"),
        code_label = p.t("remote.code"),
        sas_label = p.t("remote.sas"),
        sas_ok = p.t("remote.sas_ok"),
        sas_bad = p.t("remote.sas_bad"),
        end = p.t("remote.end"),
        chat = p.t("remote.chat"),
        send = p.t("remote.send"),
        log = p.t("remote.log"),
        grade = rules.grade,
        grade_label = p.t("remote.grade"),
        draw = p.t("remote.draw"),
        clear = p.t("remote.clear"),
        url = p.t("remote.url"),
        control = p.t("remote.control"),
        file = p.t("remote.file"),
        files = p.t("remote.files"),
    );
    layout(&p, "/remote", &body)
}

/// How long an agent ticket stays valid: it is only checked when the console opens the
/// relay's WebSocket, right after fetching it.
const TICKET_TTL_SECS: u64 = 120;

/// `GET /remote/ticket`: a short-lived agent ticket for the relay, naming the logged-in
/// user, for those who may use the agent console. `{"ticket": null}` when the relay beside
/// this Center does not ask for one. JSON only, never cached; another site cannot read it
/// (same-origin), and a GET changes nothing, so no CSRF token is needed.
pub async fn agent_ticket(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
) -> Response {
    let json = |status: StatusCode, body: serde_json::Value| {
        let mut r = (status, axum::Json(body)).into_response();
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        r
    };
    let principal = match crate::http::session::authenticate(&state, &headers).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "log in first"}),
            );
        }
        Err(e) => return e.into_response(),
    };
    if !principal.user.role.allows(Permission::RemoteSupport) {
        return json(
            StatusCode::FORBIDDEN,
            serde_json::json!({"error": "this account may not use the agent console"}),
        );
    }
    if let Err(e) = check_network(&state, &principal, ip, "ticket").await {
        return e.into_response();
    }
    let Some(key) = &state.agent_tickets else {
        return json(StatusCode::OK, serde_json::json!({"ticket": null}));
    };
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + TICKET_TTL_SECS;
    match key.issue(&principal.user.username, expires) {
        Ok(ticket) => json(StatusCode::OK, serde_json::json!({"ticket": ticket})),
        Err(e) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({"error": e.to_string()}),
        ),
    }
}

/// Refuses a console action from outside the agent's login networks, with an audit event.
async fn check_network(
    state: &AppState,
    principal: &Principal,
    ip: Option<std::net::IpAddr>,
    what: &str,
) -> Result<crate::remote::AgentRules, ApiError> {
    let rules = crate::remote::rules_for(&state.store, &principal.user).await?;
    if !crate::remote::network_allows(&rules.networks, ip) {
        state
            .store
            .append_audit(
                &principal.user.username,
                "remote.agent_refused",
                &principal.user.username,
                &json!({ "reason": "address not in the agent's allowlist", "address": ip.map(|i| i.to_string()), "at": what }),
            )
            .await?;
        return Err(ApiError::forbidden(
            "use the agent console from this address",
        ));
    }
    Ok(rules)
}

/// The largest file the browser pages transfer (each side holds it in memory to hash and
/// scan it).
pub const MAX_PAGE_FILE: u64 = 16 << 20;
/// How long a session policy is valid (a support session longer than this needs a new code).
pub const POLICY_TTL_SECS: u64 = 12 * 3600;

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// `GET /remote/policy-key`: the Center's Ed25519 public key (hex), which the customer's page
/// fetches from its own origin to check the session policy the agent forwards.
pub async fn policy_key(State(state): State<AppState>) -> Result<Response, ApiError> {
    let key = state.remote.signing_key(&state.store).await?;
    Ok(no_store(
        axum::Json(json!({ "alg": "Ed25519", "key": hex::encode(key.public_key()) }))
            .into_response(),
    ))
}

#[derive(Debug, Deserialize)]
struct SessionRequest {
    /// The relay's session id, 32 hex digits.
    sid: String,
}

fn sid_hash(sid: &[u8; 16]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"haetae-remote-sid-v1");
    h.update(sid);
    hex::encode(h.finalize())
}

fn parse_sid(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

/// `POST /remote/session` (CSRF): registers the session the relay just gave the agent and
/// returns the policy the Center signs for it: the agent's grade and features, name, session
/// and expiry. The console forwards it to the customer inside the encrypted channel.
async fn start_session(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    principal: Principal,
    ApiJson(req): ApiJson<SessionRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::RemoteSupport, "use the agent console")?;
    let rules = check_network(&state, &principal, ip, "session").await?;
    let sid = parse_sid(&req.sid)
        .ok_or_else(|| ApiError::invalid("sid", "the session id is 32 lower-case hex digits"))?;
    let now = now_micros();
    let now_s = u64::try_from(now / 1_000_000).unwrap_or(0);
    let features = Features::of(rules.grade);
    let grant = PolicyGrant {
        sid: SessionId(sid),
        agent: principal.user.username.clone(),
        grade: rules.grade,
        features,
        max_file: if features.files { MAX_PAGE_FILE } else { 0 },
        issued: now_s,
        expires: now_s + POLICY_TTL_SECS,
    };
    let key = state.remote.signing_key(&state.store).await?;
    let signed = grant
        .sign(&key)
        .map_err(|e| ApiError::invalid("agent", e.to_string()))?;
    let Some(row) = state
        .store
        .create_remote_session(
            &sid_hash(&sid),
            &principal.user.username,
            rules.grade.as_str(),
            now,
        )
        .await?
    else {
        return Err(ApiError::conflict(
            "sid",
            "this session is already registered",
        ));
    };
    state
        .store
        .append_audit(
            &principal.user.username,
            "remote.session_start",
            &row.id.to_string(),
            &json!({ "grade": rules.grade.as_str(), "address": ip.map(|i| i.to_string()) }),
        )
        .await?;
    Ok(no_store(
        axum::Json(json!({
            "session": row.id,
            "grade": rules.grade.as_str(),
            "payload": signed.payload,
            "signature": hex::encode(signed.signature),
            "max_file": grant.max_file,
            // The console records the session, encrypted to this key, when one is set.
            "recording": state.remote.recording_key().map(|k| json!({
                "key": k.to_hex(),
                "key_id": k.key_id(),
            })),
        }))
        .into_response(),
    ))
}

/// What the console may record: chat, file-transfer records, consent and control events.
const HISTORY_KINDS: &[&str] = &[
    "chat", "file", "consent", "control", "url", "drawing", "sas", "policy", "end",
];
const MAX_DETAIL: usize = 8 * 1024;

#[derive(Debug, Deserialize)]
struct HistoryRequest {
    kind: String,
    actor: String,
    detail: serde_json::Value,
}

async fn own_session(
    state: &AppState,
    principal: &Principal,
    id: i64,
) -> Result<crate::store::remote::RemoteSessionRow, ApiError> {
    principal.require(Permission::RemoteSupport, "use the agent console")?;
    match state.store.remote_session(id).await? {
        Some(s) if s.agent == principal.user.username => Ok(s),
        _ => Err(ApiError::not_found(format!("no session {id} of yours"))),
    }
}

/// `POST /remote/session/{id}/history` (CSRF): one record from the agent's console.
async fn add_history(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<HistoryRequest>,
) -> Result<Response, ApiError> {
    let session = own_session(&state, &principal, id).await?;
    if !HISTORY_KINDS.contains(&req.kind.as_str()) {
        return Err(ApiError::invalid(
            "kind",
            format!("one of {}", HISTORY_KINDS.join(", ")),
        ));
    }
    if !matches!(req.actor.as_str(), "agent" | "customer") {
        return Err(ApiError::invalid("actor", "agent or customer"));
    }
    let detail = req.detail.to_string();
    if !req.detail.is_object() || detail.len() > MAX_DETAIL {
        return Err(ApiError::invalid(
            "detail",
            format!("a JSON object of at most {MAX_DETAIL} bytes"),
        ));
    }
    if !state
        .store
        .append_remote_history(session.id, now_micros(), &req.kind, &req.actor, &detail)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "limit",
            "this session's history is full",
            None,
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct EndRequest {
    reason: String,
}

/// `POST /remote/session/{id}/end` (CSRF).
async fn end_session(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<EndRequest>,
) -> Result<Response, ApiError> {
    let session = own_session(&state, &principal, id).await?;
    let reason: String = req
        .reason
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    state
        .store
        .end_remote_session(session.id, now_micros(), &reason)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct ScanQuery {
    #[serde(default)]
    name: Option<String>,
}

fn scan(data: &[u8], name: Option<&str>) -> serde_json::Value {
    let name = name.filter(|n| n.len() <= 255);
    let report = haetae_docscan::scan_bytes(data, name, &haetae_docscan::Limits::default());
    let findings: Vec<serde_json::Value> = report
        .findings
        .iter()
        .take(50)
        .map(|f| json!({ "code": f.code, "severity": f.severity, "message": f.message }))
        .collect();
    json!({
        "verdict": report.verdict.as_str(),
        "size": report.size,
        "sha256": report.sha256,
        "type": report.detected_type,
        "findings": findings,
    })
}

async fn scan_blocking(
    data: axum::body::Bytes,
    name: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    if data.len() as u64 > MAX_PAGE_FILE {
        return Err(ApiError::invalid(
            "body",
            format!("at most {MAX_PAGE_FILE} bytes"),
        ));
    }
    tokio::task::spawn_blocking(move || scan(&data, name.as_deref()))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "scan",
                "the scan failed",
                None,
            )
        })
}

/// `POST /remote/scan?name=FILE` (CSRF): the agent's console has a received file scanned
/// with `haetae-docscan` before offering it for saving.
async fn agent_scan(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    principal: Principal,
    Query(q): Query<ScanQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    principal.require(Permission::RemoteSupport, "use the agent console")?;
    check_network(&state, &principal, ip, "scan").await?;
    let report = scan_blocking(body, q.name).await?;
    Ok(no_store(axum::Json(report).into_response()))
}

/// `POST /r/scan?name=FILE` with `X-Haetae-Session: <sid hex>`: the customer's page (no
/// account) has a received file scanned. Only for a registered, live session (started less
/// than the policy lifetime ago and not ended), at most [`crate::remote::SCANS_PER_WINDOW`]
/// a minute per session and address. The answer to an unknown session says nothing more.
async fn customer_scan(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<ScanQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "session",
            "no live support session",
            None,
        )
    };
    let sid = headers
        .get("x-haetae-session")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_sid)
        .ok_or_else(refused)?;
    let session = state
        .store
        .remote_session_by_sid(&sid_hash(&sid))
        .await?
        .ok_or_else(refused)?;
    let age = now_micros() - session.started_at;
    if session.ended_at.is_some() || age > i64::try_from(POLICY_TTL_SECS).unwrap_or(0) * 1_000_000 {
        return Err(refused());
    }
    if !state.remote.allow_scan(session.id, ip) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate",
            "too many scans; wait a minute",
            None,
        ));
    }
    let report = scan_blocking(body, q.name).await?;
    Ok(no_store(axum::Json(report).into_response()))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Networks {
    List(Vec<String>),
    Text(String),
}

#[derive(Debug, Deserialize)]
struct AgentRequest {
    grade: String,
    #[serde(default)]
    allow_from: Option<Networks>,
}

/// `PUT /api/v1/remote/agents/{username}` (admins, CSRF): sets an agent's grade and login
/// networks (`allow_from`: a list, or one string separated by commas, spaces or newlines).
async fn put_agent(
    State(state): State<AppState>,
    principal: Principal,
    Path(username): Path<String>,
    ApiJson(req): ApiJson<AgentRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageUsers, "set agents' grades")?;
    let grade: Grade = req
        .grade
        .parse()
        .map_err(|e: haetae_remote::policy::UnknownGrade| {
            ApiError::invalid("grade", e.to_string())
        })?;
    let entries: Vec<String> = match req.allow_from {
        None => Vec::new(),
        Some(Networks::List(l)) => l,
        Some(Networks::Text(t)) => t
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::to_owned)
            .collect(),
    };
    let nets =
        crate::remote::parse_networks(&entries).map_err(|e| ApiError::invalid("allow_from", e))?;
    let user = state
        .store
        .user_by_name(&username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {username:?}")))?;
    let texts: Vec<String> = nets.iter().map(ToString::to_string).collect();
    state
        .store
        .set_remote_agent(user.id, grade.as_str(), &texts, now_micros())
        .await?;
    state
        .store
        .append_audit(
            &principal.actor,
            "remote.agent_set",
            &user.username,
            &json!({ "grade": grade.as_str(), "allow_from": texts }),
        )
        .await?;
    let settings = state.store.remote_agent(user.id).await?;
    Ok(axum::Json(settings).into_response())
}

/// `GET /api/v1/remote/agents` (admins): every agent's settings.
async fn list_agents(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageUsers, "see agents' grades")?;
    Ok(axum::Json(state.store.list_remote_agents().await?).into_response())
}

/// `GET /remote/agents`: the administrators' page for grades and networks.
async fn agents_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.can(Permission::ManageUsers) {
        return pages::forbidden(&p, "/remote");
    }
    let users = match state.store.list_users().await {
        Ok(u) => u,
        Err(e) => return pages::api_error_page(e.into()),
    };
    let mut body = format!(
        "<h2>{}</h2><table id=\"rs-agents\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        p.t("remote.agents"),
        p.t("col.name"),
        p.t("col.role"),
        p.t("remote.grade"),
        p.t("remote.allow_from"),
    );
    for u in users
        .iter()
        .filter(|u| u.role.allows(Permission::RemoteSupport))
    {
        let rules = match crate::remote::rules_for(&state.store, u).await {
            Ok(r) => r,
            Err(e) => return pages::api_error_page(e.into()),
        };
        let nets: Vec<String> = rules.networks.iter().map(ToString::to_string).collect();
        let opt = |g: Grade| {
            format!(
                "<option{}>{g}</option>",
                if rules.grade == g { " selected" } else { "" }
            )
        };
        let _ = write!(
            body,
            "<tr><td>{name}</td><td>{role}</td><td colspan=\"2\">\
             <form class=\"rs-inline\" data-api=\"/api/v1/remote/agents/{{username}}\" data-method=\"PUT\" data-shape=\"plain\">\
             <input type=\"hidden\" name=\"username\" value=\"{name}\">\
             <select name=\"grade\" aria-label=\"{grade_l}\">{i}{d}</select> \
             <input name=\"allow_from\" value=\"{nets}\" maxlength=\"2000\" aria-label=\"{nets_l}\"> \
             <button type=\"submit\">{save}</button></form></td></tr>",
            name = esc(&u.username),
            role = u.role,
            i = opt(Grade::Indirect),
            d = opt(Grade::Direct),
            nets = esc(&nets.join(", ")),
            grade_l = p.t("remote.grade"),
            nets_l = p.t("remote.allow_from"),
            save = p.t("remote.save"),
        );
    }
    body.push_str("</table>");
    layout(&p, "/remote", &body)
}

fn time_text(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `GET /remote/history`: support sessions, newest first (admins and auditors).
async fn history_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.can(Permission::ReadAudit) {
        return pages::forbidden(&p, "/remote");
    }
    let sessions = match state.store.list_remote_sessions(200).await {
        Ok(s) => s,
        Err(e) => return pages::api_error_page(e.into()),
    };
    let mut body = format!(
        "<h2>{}</h2><table id=\"rs-sessions\"><tr><th>ID</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        p.t("remote.history"),
        p.t("remote.agent"),
        p.t("remote.grade"),
        p.t("remote.started"),
        p.t("remote.ended"),
    );
    for s in &sessions {
        let _ = write!(
            body,
            "<tr><td><a href=\"/remote/history/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.agent),
            esc(&s.grade),
            time_text(s.started_at),
            s.ended_at
                .map(|t| format!(
                    "{} ({})",
                    time_text(t),
                    esc(s.end_reason.as_deref().unwrap_or(""))
                ))
                .unwrap_or_default(),
            id = s.id,
        );
    }
    body.push_str("</table>");
    layout(&p, "/remote", &body)
}

/// `GET /remote/history/{id}`: one session's records (chat, files, consent, control).
async fn history_detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.can(Permission::ReadAudit) {
        return pages::forbidden(&p, "/remote");
    }
    let (session, records) = match (
        state.store.remote_session(id).await,
        state.store.remote_history(id).await,
    ) {
        (Ok(Some(s)), Ok(r)) => (s, r),
        (Ok(None), _) => {
            return pages::api_error_page(ApiError::not_found(format!("no session {id}")));
        }
        (Err(e), _) | (_, Err(e)) => return pages::api_error_page(e.into()),
    };
    let mut body = format!(
        "<h2>{} {id}: {} ({})</h2><p>{} {}{}</p><table id=\"rs-records\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        p.t("remote.history"),
        esc(&session.agent),
        esc(&session.grade),
        p.t("remote.started"),
        time_text(session.started_at),
        session
            .ended_at
            .map(|t| format!(
                " · {} {} ({})",
                p.t("remote.ended"),
                time_text(t),
                esc(session.end_reason.as_deref().unwrap_or(""))
            ))
            .unwrap_or_default(),
        p.t("col.time"),
        p.t("remote.records"),
        p.t("remote.agent"),
        p.t("remote.log"),
    );
    let link = super::recordings::playback_link(&state, id).await;
    body.insert_str(
        body.find("<table id=\"rs-records\"").unwrap_or(body.len()),
        &link,
    );
    for r in &records {
        let _ = write!(
            body,
            "<tr class=\"rs-rec rs-rec-{kind}\"><td>{}</td><td>{kind}</td><td>{}</td><td><code>{}</code></td></tr>",
            time_text(r.at),
            esc(&r.actor),
            esc(&r.detail),
            kind = esc(&r.kind),
        );
    }
    body.push_str("</table>");
    layout(&p, "/remote", &body)
}

/// `GET /api/v1/remote/sessions/{id}` (admins and auditors): a session and its records.
async fn history_api(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadAudit, "read support history")?;
    let session = state
        .store
        .remote_session(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session {id}")))?;
    let records = state.store.remote_history(id).await?;
    Ok(axum::Json(json!({ "session": session, "records": records })).into_response())
}

/// The routes of both pages and their assets.
pub fn routes() -> Router<AppState> {
    let scan_limit =
        axum::extract::DefaultBodyLimit::max(usize::try_from(MAX_PAGE_FILE).unwrap_or(usize::MAX));
    Router::new()
        .route("/r", get(customer_page))
        .route("/r/{code}", get(customer_page))
        .route("/r/scan", post(customer_scan).layer(scan_limit))
        .route("/remote", get(agent_page))
        .route("/remote/ticket", get(agent_ticket))
        .route("/remote/policy-key", get(policy_key))
        .route("/remote/session", post(start_session))
        .route("/remote/session/{id}/history", post(add_history))
        .route("/remote/session/{id}/end", post(end_session))
        .route("/remote/scan", post(agent_scan).layer(scan_limit))
        .route("/remote/agents", get(agents_page))
        .route("/remote/history", get(history_page))
        .route("/remote/history/{id}", get(history_detail))
        .route("/api/v1/remote/agents", get(list_agents))
        .route("/api/v1/remote/agents/{username}", put(put_agent))
        .route("/api/v1/remote/sessions/{id}", get(history_api))
        .route(
            "/assets/remote/proto.js",
            get(|| async { asset(PROTO_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/remote/link.js",
            get(|| async { asset(LINK_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/remote/customer.js",
            get(|| async { asset(CUSTOMER_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/remote/agent.js",
            get(|| async { asset(AGENT_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/remote/remote.css",
            get(|| async { asset(REMOTE_CSS, "text/css; charset=utf-8") }),
        )
}
