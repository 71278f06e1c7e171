//! Session recordings over HTTP (issue 10, point 7; format in [`crate::recording`]).
//!
//! - The agent console (cookie + CSRF, the `RemoteSupport` permission, its own session only)
//!   starts a recording with the wrapped key (`POST /remote/session/{id}/recording`) and
//!   uploads encrypted chunks (`PUT /remote/recording/{id}/chunk/{index}?last=0|1`),
//!   idempotent per index, within the size limits.
//! - Auditors (the `ReadAudit` permission: auditors and admins) read the ciphertext
//!   (`GET /api/v1/remote/recordings/{id}`, `.../chunks/{index}`, `.../bundle`) and play it at
//!   `/remote/history/{session}/playback`, which decrypts in the browser with the private key
//!   file the auditor loads there; the key never goes to the Center. Every read is in the
//!   audit log.

use std::fmt::Write as _;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use super::pages::{self, esc, layout, page};
use crate::auth::Permission;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiJson, ErrorBody};
use crate::http::session::Principal;
use crate::recording::{self, BundleHeader, MAX_CHUNK_BYTES, TAG_LEN, WrappedKey};
use crate::store::now_micros;
use crate::store::recordings::{ChunkInfo, ChunkPut, RecordingRow};

const RECORDING_JS: &str = include_str!("../../assets/remote/recording.js");
const PLAYBACK_JS: &str = include_str!("../../assets/remote/playback.js");
const PLAYBACK_CSS: &str = include_str!("../../assets/remote/playback.css");

/// How long after its session ended a recording still takes chunks (the console uploads
/// what it holds when the session ends).
pub const UPLOAD_GRACE_MICROS: i64 = 10 * 60 * 1_000_000;

fn asset(body: &'static str, ctype: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /remote/session/{id}/recording` (CSRF): the console starts recording its session
/// with a recording key wrapped to the organisation's recording key.
async fn start_recording(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    ApiJson(key): ApiJson<WrappedKey>,
) -> Result<Response, ApiError> {
    principal.require(Permission::RemoteSupport, "use the agent console")?;
    let session = match state.store.remote_session(id).await? {
        Some(s) if s.agent == principal.user.username => s,
        _ => return Err(ApiError::not_found(format!("no session {id} of yours"))),
    };
    if session.ended_at.is_some() {
        return Err(ApiError::conflict("session", "this session has ended"));
    }
    let Some(org) = state.remote.recording_key() else {
        return Err(ApiError::conflict(
            "recording",
            "recording is not configured on this Center (control.recording_key)",
        ));
    };
    key.check()
        .map_err(|e| ApiError::invalid("key", e.to_string()))?;
    if key.key_id != org.key_id() {
        return Err(ApiError::invalid(
            "key_id",
            format!(
                "the key must be wrapped to this Center's recording key {}",
                org.key_id()
            ),
        ));
    }
    let Some(row) = state
        .store
        .create_recording(session.id, &principal.user.username, &key, now_micros())
        .await?
    else {
        return Err(ApiError::conflict(
            "session",
            "this session is already being recorded",
        ));
    };
    state
        .store
        .append_audit(
            &principal.actor,
            "remote.recording_start",
            &row.id.to_string(),
            &json!({ "session": session.id, "key_id": row.key_id }),
        )
        .await?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            axum::Json(json!({
                "recording": row.id,
                "max_chunk": MAX_CHUNK_BYTES,
                "max_chunks": recording::MAX_CHUNKS,
                "max_bytes": recording::MAX_RECORDING_BYTES,
            })),
        )
            .into_response(),
    ))
}

#[derive(Debug, Deserialize)]
struct ChunkQuery {
    #[serde(default)]
    last: Option<u8>,
}

/// `PUT /remote/recording/{id}/chunk/{index}?last=0|1` (CSRF): one encrypted chunk. 201
/// stored, 200 the same chunk again (a retry), 409 other content for a stored index or
/// after the last chunk, 413 over the limits.
async fn put_chunk(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, index)): Path<(i64, i64)>,
    Query(q): Query<ChunkQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    principal.require(Permission::RemoteSupport, "use the agent console")?;
    let rec = match state.store.recording(id).await? {
        Some(r) if r.agent == principal.user.username => r,
        _ => return Err(ApiError::not_found(format!("no recording {id} of yours"))),
    };
    let last = match q.last.unwrap_or(0) {
        0 => false,
        1 => true,
        _ => return Err(ApiError::invalid("last", "0 or 1")),
    };
    if !(0..recording::MAX_CHUNKS).contains(&index) {
        return Err(ApiError::invalid(
            "index",
            format!("0 to {}", recording::MAX_CHUNKS - 1),
        ));
    }
    if body.len() < TAG_LEN || body.len() > MAX_CHUNK_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid",
            format!("a chunk is {TAG_LEN} to {MAX_CHUNK_BYTES} bytes of ciphertext"),
            Some("body"),
        ));
    }
    if let Some(s) = state.store.remote_session(rec.session_id).await?
        && s.ended_at
            .is_some_and(|t| now_micros() - t > UPLOAD_GRACE_MICROS)
    {
        return Err(ApiError::conflict(
            "session",
            "the session ended too long ago to add to its recording",
        ));
    }
    match state
        .store
        .put_recording_chunk(rec.id, index, last, &body, now_micros())
        .await?
    {
        ChunkPut::Stored => Ok(StatusCode::CREATED.into_response()),
        ChunkPut::Same => Ok(StatusCode::OK.into_response()),
        ChunkPut::Conflict(why) => Err(ApiError::conflict("index", why)),
        ChunkPut::Full(why) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
            why,
            Some("body"),
        )),
    }
}

/// A recording as auditors see it: the wrapped key and the list of chunks.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecordingView {
    /// The recording (wrapped key included: useless without the private key).
    pub recording: RecordingRow,
    /// Every chunk from 0 to the one marked last is here.
    pub complete: bool,
    /// The chunks, by index.
    pub chunks: Vec<ChunkInfo>,
}

async fn auditor_recording(
    state: &AppState,
    principal: &Principal,
    id: i64,
) -> Result<RecordingRow, ApiError> {
    principal.require(Permission::ReadAudit, "replay session recordings")?;
    state
        .store
        .recording(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no recording {id}")))
}

/// A recording's wrapped key and chunk list (auditors and admins; the read is audited).
#[utoipa::path(get, path = "/api/v1/remote/recordings/{id}", tag = "remote",
    params(("id" = i64, Path, description = "recording id")),
    responses((status = 200, body = RecordingView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_recording(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let rec = auditor_recording(&state, &principal, id).await?;
    let chunks = state.store.recording_chunks(rec.id).await?;
    state
        .store
        .append_audit(
            &principal.actor,
            "remote.recording_read",
            &rec.id.to_string(),
            &json!({ "session": rec.session_id }),
        )
        .await?;
    Ok(no_store(
        axum::Json(RecordingView {
            complete: rec.complete(),
            recording: rec,
            chunks,
        })
        .into_response(),
    ))
}

fn octets(data: Vec<u8>, filename: Option<String>) -> Response {
    let mut r = Body::from(data).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(f) =
        filename.and_then(|f| HeaderValue::from_str(&format!("attachment; filename=\"{f}\"")).ok())
    {
        h.insert(header::CONTENT_DISPOSITION, f);
    }
    no_store(r)
}

/// One encrypted chunk (auditors and admins).
#[utoipa::path(get, path = "/api/v1/remote/recordings/{id}/chunks/{index}", tag = "remote",
    params(("id" = i64, Path, description = "recording id"), ("index" = i64, Path, description = "chunk index")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "the ciphertext (AES-256-GCM, tag last)"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_chunk(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, index)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let rec = auditor_recording(&state, &principal, id).await?;
    let chunk = state
        .store
        .recording_chunk(rec.id, index)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no chunk {index} in recording {id}")))?;
    let mut r = octets(chunk.data, None);
    r.headers_mut().insert(
        "x-haetae-last",
        HeaderValue::from_static(if chunk.last { "1" } else { "0" }),
    );
    Ok(r)
}

/// The whole recording as one file for `haetae remote export-recording` (auditors and
/// admins; audited): the header (wrapped key, session, agent) and every chunk, encrypted.
#[utoipa::path(get, path = "/api/v1/remote/recordings/{id}/bundle", tag = "remote",
    params(("id" = i64, Path, description = "recording id")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "haetae-recording v1 bundle"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_bundle(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let rec = auditor_recording(&state, &principal, id).await?;
    let mut chunks = Vec::new();
    for info in state.store.recording_chunks(rec.id).await? {
        if let Some(c) = state.store.recording_chunk(rec.id, info.index).await? {
            chunks.push(c);
        }
    }
    state
        .store
        .append_audit(
            &principal.actor,
            "remote.recording_export",
            &rec.id.to_string(),
            &json!({ "session": rec.session_id, "chunks": chunks.len() }),
        )
        .await?;
    let header = BundleHeader {
        recording: rec.id,
        session: rec.session_id,
        agent: rec.agent.clone(),
        started_at: rec.started_at,
        key: rec.wrapped(),
    };
    Ok(octets(
        recording::write_bundle(&header, &chunks),
        Some(format!(
            "session-{}-recording-{}.hrec",
            rec.session_id, rec.id
        )),
    ))
}

fn size_text(bytes: i64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// `GET /remote/history/{id}/playback`: the auditor's player for a session's recording.
async fn playback_page(
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
    let (session, rec) = match (
        state.store.remote_session(id).await,
        state.store.recording_of_session(id).await,
    ) {
        (Ok(Some(s)), Ok(r)) => (s, r),
        (Ok(None), _) => {
            return pages::api_error_page(ApiError::not_found(format!("no session {id}")));
        }
        (Err(e), _) | (_, Err(e)) => return pages::api_error_page(e.into()),
    };
    let mut body = format!(
        "<link rel=\"stylesheet\" href=\"/assets/remote/playback.css\">\
         <h2>녹화 재생 / Recording playback · <a href=\"/remote/history/{id}\">#{id}</a> {agent}</h2>",
        agent = esc(&session.agent),
    );
    let Some(rec) = rec else {
        body.push_str(
            "<p id=\"rp-none\">이 세션은 녹화되지 않았습니다 / This session was not recorded.</p>",
        );
        return layout(&p, "/remote", &body);
    };
    let _ = write!(
        body,
        "<script type=\"module\" src=\"/assets/remote/playback.js\"></script>\
         <div id=\"rp\" class=\"rp\" data-recording=\"{rid}\" data-session=\"{id}\" data-agent=\"{agent}\">\
         <p class=\"muted\">{chunks} chunks · {size} · {state_text} · key <code>{key_id}</code> · \
         <a id=\"rp-bundle\" href=\"/api/v1/remote/recordings/{rid}/bundle\">암호화된 녹화 내려받기 / download (encrypted)</a></p>\
         <section class=\"card\"><label for=\"rp-key\">녹화 개인키 파일 / Recording private key file</label> \
         <input id=\"rp-key\" type=\"file\" accept=\".json,application/json\"> \
         <span class=\"muted\">키는 이 브라우저 안에서만 쓰이며 서버로 보내지 않습니다 / The key is used in this browser only and never sent to the server.</span>\
         <p id=\"rp-status\" class=\"rp-status\" role=\"status\"></p></section>\
         <div class=\"rp-work\"><div class=\"rp-screen-box\"><canvas id=\"rp-screen\" class=\"rp-screen\" width=\"1280\" height=\"720\"></canvas>\
         <canvas id=\"rp-overlay\" class=\"rp-overlay\" width=\"1280\" height=\"720\"></canvas></div>\
         <aside class=\"rp-side card\"><h3>타임라인 / Timeline</h3><ol id=\"rp-events\" class=\"rp-events\"></ol></aside></div>\
         <div class=\"rp-controls\"><button id=\"rp-play\" type=\"button\" disabled>재생 / Play</button> \
         <input id=\"rp-seek\" type=\"range\" min=\"0\" max=\"0\" value=\"0\" step=\"1\" disabled aria-label=\"chunk\"> \
         <span id=\"rp-time\" class=\"muted\"></span></div></div>",
        rid = rec.id,
        agent = esc(&session.agent),
        chunks = rec.chunks,
        size = size_text(rec.bytes),
        state_text = if rec.complete() {
            "완전함 / complete"
        } else {
            "불완전 (마지막 조각 없음) / incomplete (no last chunk)"
        },
        key_id = esc(&rec.key_id),
    );
    layout(&p, "/remote", &body)
}

/// The link to the player that the history page shows for a recorded session.
pub async fn playback_link(state: &AppState, session: i64) -> String {
    match state.store.recording_of_session(session).await {
        Ok(Some(r)) => format!(
            "<p><a id=\"rs-playback\" href=\"/remote/history/{session}/playback\">녹화 재생 / Play the recording</a> \
             <span class=\"muted\">({} chunks, {})</span></p>",
            r.chunks,
            size_text(r.bytes)
        ),
        _ => String::new(),
    }
}

/// The routes.
pub fn routes() -> Router<AppState> {
    let chunk_limit = axum::extract::DefaultBodyLimit::max(MAX_CHUNK_BYTES + 1024);
    Router::new()
        .route("/remote/session/{id}/recording", post(start_recording))
        .route(
            "/remote/recording/{id}/chunk/{index}",
            put(put_chunk).layer(chunk_limit),
        )
        .route("/remote/history/{id}/playback", get(playback_page))
        .route("/api/v1/remote/recordings/{id}", get(get_recording))
        .route(
            "/api/v1/remote/recordings/{id}/chunks/{index}",
            get(get_chunk),
        )
        .route("/api/v1/remote/recordings/{id}/bundle", get(get_bundle))
        .route(
            "/assets/remote/recording.js",
            get(|| async { asset(RECORDING_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/remote/playback.js",
            get(|| async { asset(PLAYBACK_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/remote/playback.css",
            get(|| async { asset(PLAYBACK_CSS, "text/css; charset=utf-8") }),
        )
}
