//! The HTTP server: the API under `/api/v1`, the web UI, and the headers every answer
//! carries (strict CSP, no framing, no caching of pages with data).

pub mod account_api;
pub mod alerts_api;
pub mod analysis_api;
pub mod api;
pub mod error;
pub mod rollout_api;
pub mod session;
pub mod state;
pub mod wasm_api;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, put};

pub use state::AppState;

/// The Content-Security-Policy of every answer: only our own scripts, styles and images;
/// no inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The whole application: API, UI and static assets.
pub fn router(state: AppState) -> Router {
    use api::*;
    let v1 = Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/session", get(whoami).post(login).delete(logout))
        .route("/services", get(list_services).post(create_service))
        .route("/services/{id}", put(update_service).delete(delete_service))
        .route("/filter-kinds", get(list_filter_kinds))
        .route("/filters", get(list_filters).post(create_filter))
        .route("/filters/{id}", put(update_filter).delete(delete_filter))
        .route("/mappings", get(list_mappings))
        .route("/mappings/{service}", put(set_mapping))
        .route("/matrix/{service}/{filter}", put(set_cell))
        .route("/lists", get(list_lists))
        .route("/lists/{name}", put(put_list).delete(delete_list))
        .route("/controls", get(list_controls))
        .route("/requirements", get(get_requirements))
        .route("/requirements/{service}", put(put_requirements))
        .route("/security-check", get(security_check))
        .route("/policy/draft", get(get_draft).put(put_draft))
        .route("/policy/publish", axum::routing::post(publish))
        .route("/policy/versions", get(list_versions))
        .route("/policy/versions/{version}", get(get_version))
        .route("/policy/diff", get(diff))
        .route("/policy/rollback", axum::routing::post(rollback))
        .route("/policy/rollout", get(rollout_api::rollout))
        .route("/gateways", get(list_gateways))
        .route("/events", get(search_events))
        .route("/events/export", get(export_events))
        .route("/analysis", get(analysis_api::analysis))
        .route("/dashboard", get(dashboard))
        .route("/stream", get(stream))
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{username}",
            axum::routing::patch(update_user).delete(delete_user),
        )
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .route(
            "/account/totp",
            get(account_api::totp_status).post(account_api::totp_start),
        )
        .route(
            "/account/totp/confirm",
            axum::routing::post(account_api::totp_confirm),
        )
        .route(
            "/account/totp/disable",
            axum::routing::post(account_api::totp_disable),
        )
        .route(
            "/users/{username}/totp",
            axum::routing::delete(account_api::totp_reset),
        )
        .route("/alerts", get(alerts_api::list_alerts))
        .route(
            "/alerts/{id}/ack",
            axum::routing::post(alerts_api::ack_alert),
        )
        .route("/alert-rules", get(alerts_api::list_rules))
        .route(
            "/alert-rules/{id}",
            put(alerts_api::put_rule).delete(alerts_api::delete_rule),
        )
        .route("/notifiers", get(alerts_api::list_notifiers))
        .route(
            "/notifiers/{id}",
            put(alerts_api::put_notifier).delete(alerts_api::delete_notifier),
        )
        .route("/audit", get(audit_log))
        .route("/audit/verify", get(verify_audit))
        .route("/wasm-modules", get(wasm_api::list_modules))
        .route(
            "/wasm-modules/{name}",
            axum::routing::post(wasm_api::upload_module),
        )
        .route(
            "/wasm-modules/{name}/versions",
            get(wasm_api::list_versions),
        )
        .route(
            "/wasm-modules/{name}/versions/{version}",
            get(wasm_api::get_module).delete(wasm_api::delete_module),
        )
        .fallback(api_not_found);
    Router::new()
        .nest("/api/v1", v1)
        .merge(crate::ui::routes())
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}
