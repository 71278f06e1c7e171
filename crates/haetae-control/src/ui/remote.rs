//! Remote support in the browser (issue 10, `docs/remote.md`): the customer's page at `/r`
//! (and `/r/CODE`, a link that carries the code), open to anyone because the customer has no
//! account, and the agent console at `/remote` for logged-in users who may change policy
//! (admin, security-officer: there is no separate `agent` role yet). Both pages are static
//! HTML plus ES modules from `assets/remote/`; they talk to the relay (`/relay` on this
//! address in `haetae up`) over a WebSocket and encrypt end to end in the browser, so the
//! Center serves code and never sees a session's content. No inline script or style: the
//! Center's CSP applies unchanged.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::pages::{self, esc, layout, page};
use crate::auth::Permission;
use crate::http::AppState;

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
<section id="rs-chat-box" class="card rs-chat" hidden>
<h2>채팅 / Chat</h2>
<ol id="rs-chat-log" class="rs-chat-log"></ol>
<form id="rs-chat-form" autocomplete="off"><input id="rs-chat-input" maxlength="1000" aria-label="메시지 / Message"><button type="submit">보내기 / Send</button></form>
</section>
<p id="rs-status" class="rs-status" role="status"></p>
</main>
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
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(ctype),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
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
    if !p.can(Permission::EditPolicy) {
        return pages::forbidden(&p, "/remote");
    }
    let body = format!(
        "<link rel=\"stylesheet\" href=\"/assets/remote/remote.css\">\
         <script type=\"module\" src=\"/assets/remote/agent.js\"></script>\
         <div id=\"rs-agent\" class=\"rs-agent\" data-agent=\"{agent}\">\
         <section class=\"card rs-controls\">\
         <button id=\"rs-issue\" type=\"button\">{issue}</button> \
         <span class=\"rs-code-label\">{code_label}</span> <strong id=\"rs-code\" class=\"rs-code\"></strong> \
         <span id=\"rs-link\" class=\"muted\"></span>\
         <div id=\"rs-sas-box\" class=\"rs-sas-box\" hidden><span>{sas_label}</span> <strong id=\"rs-sas\" class=\"rs-sas\"></strong> \
         <button id=\"rs-sas-ok\" type=\"button\">{sas_ok}</button> <button id=\"rs-sas-bad\" type=\"button\" class=\"danger\">{sas_bad}</button></div>\
         <button id=\"rs-end\" type=\"button\" hidden>{end}</button> <span id=\"rs-state\" class=\"muted\"></span>\
         <span id=\"rs-fps\" class=\"muted\"></span></section>\
         <div class=\"rs-work\"><div class=\"rs-screen-box\"><canvas id=\"rs-screen\" class=\"rs-screen\" width=\"1280\" height=\"720\"></canvas></div>\
         <aside class=\"rs-side\"><section class=\"card rs-chat\"><h2>{chat}</h2><ol id=\"rs-chat-log\" class=\"rs-chat-log\"></ol>\
         <form id=\"rs-chat-form\" autocomplete=\"off\"><input id=\"rs-chat-input\" maxlength=\"1000\" aria-label=\"{chat}\" disabled>\
         <button type=\"submit\">{send}</button></form></section>\
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
pub async fn agent_ticket(State(state): State<AppState>, headers: HeaderMap) -> Response {
    use axum::http::{StatusCode, header};
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
    if !principal.user.role.allows(Permission::EditPolicy) {
        return json(
            StatusCode::FORBIDDEN,
            serde_json::json!({"error": "this account may not use the agent console"}),
        );
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

/// The routes of both pages and their assets.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/r", get(customer_page))
        .route("/r/{code}", get(customer_page))
        .route("/remote", get(agent_page))
        .route("/remote/ticket", get(agent_ticket))
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
