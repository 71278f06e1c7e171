//! The web UI: server-rendered pages (HTML from [`pages`]), our own CSS and one ES module,
//! no third-party script, Korean and English strings in [`i18n`].

pub mod analysis;
pub mod i18n;
pub mod pages;
pub mod recordings;
pub mod remote;
pub mod wasm;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;

const APP_CSS: &str = include_str!("../../assets/app.css");
const APP_JS: &str = include_str!("../../assets/app.js");
const ICON_SVG: &str = include_str!("../../assets/icon.svg");

fn asset(body: &'static str, ctype: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The UI's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(remote::routes())
        .merge(recordings::routes())
        .route(
            "/assets/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/icon.svg",
            get(|| async { asset(ICON_SVG, "image/svg+xml") }),
        )
        .route(
            "/favicon.ico",
            get(|| async { axum::response::Redirect::permanent("/assets/icon.svg") }),
        )
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", axum::routing::post(pages::logout_submit))
        .route("/", get(pages::dashboard))
        .route("/services", get(pages::services))
        .route("/filters", get(pages::filters))
        .route("/matrix", get(pages::matrix))
        .route("/security-check", get(pages::security_check))
        .route("/lists", get(pages::lists))
        .route("/wasm", get(wasm::wasm_modules))
        .route("/policy", get(pages::policy))
        .route("/events", get(pages::events))
        .route("/analysis", get(analysis::analysis))
        .route("/alerts", get(pages::alerts))
        .route("/audit", get(pages::audit))
        .route("/users", get(pages::users))
        .route("/account", get(pages::account))
}
