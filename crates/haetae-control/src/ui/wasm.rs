//! `/wasm`: the Proxy-Wasm module store. Every module with its versions (SHA-256, size,
//! signature, who uploaded it), an upload form (the file is read and sent by
//! `assets/app.js` to `POST /api/v1/wasm-modules/{name}` with the CSRF token), and delete
//! buttons for versions no policy uses.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::pages::{api_error_page, esc, forbidden, layout, page, time_text};
use crate::auth::Permission;
use crate::http::AppState;
use crate::http::error::ApiError;

/// GET /wasm.
pub async fn wasm_modules(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.can(Permission::Read) {
        return forbidden(&p, "/wasm");
    }
    let modules = match state.store.wasm_modules().await {
        Ok(m) => m,
        Err(e) => return api_error_page(ApiError::from(e)),
    };
    let mut body = String::new();
    if state.wasm.trusted.is_empty() {
        let _ = write!(body, "<p class=\"hint\">{}</p>", p.t("wasm.unsigned_ok"));
    } else {
        let ids: Vec<&str> = state.wasm.trusted.iter().map(|k| k.id.as_str()).collect();
        let _ = write!(
            body,
            "<p class=\"hint\">{} <code>{}</code></p>",
            p.t("wasm.signed_only"),
            esc(&ids.join(", "))
        );
    }
    let _ = write!(
        body,
        "<table id=\"wasm-modules\"><tr><th>{}</th><th>{}</th><th>SHA-256</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        p.t("col.name"),
        p.t("col.version"),
        p.t("wasm.size"),
        p.t("wasm.signature"),
        p.t("col.author"),
        p.t("col.time"),
    );
    if modules.is_empty() {
        let _ = write!(body, "<tr><td colspan=\"8\">{}</td></tr>", p.t("wasm.none"));
    }
    for m in &modules {
        let versions = match state.store.wasm_module_versions(&m.name).await {
            Ok(v) => v,
            Err(e) => return api_error_page(ApiError::from(e)),
        };
        for v in &versions {
            let signed = match (&v.signature, &v.key_id) {
                (Some(_), Some(id)) => {
                    format!("{} <code>{}</code>", p.t("wasm.signed_by"), esc(id))
                }
                (Some(_), None) => p.t("wasm.signed_unchecked").to_owned(),
                (None, _) => p.t("wasm.unsigned").to_owned(),
            };
            let del = if p.can(Permission::EditPolicy) {
                format!(
                    "<button class=\"danger\" data-call=\"DELETE\" \
                     data-url=\"/api/v1/wasm-modules/{name}/versions/{ver}\">{}</button>",
                    p.t("form.delete"),
                    name = esc(&v.name),
                    ver = v.version,
                )
            } else {
                String::new()
            };
            let _ = write!(
                body,
                "<tr><td>{name}</td><td><a href=\"/api/v1/wasm-modules/{name}/versions/{ver}\">v{ver}</a></td>\
                 <td><code>{sha}</code></td><td>{size}</td><td>{signed}</td><td>{by}</td><td>{at}</td><td>{del}</td></tr>",
                name = esc(&v.name),
                ver = v.version,
                sha = esc(&v.sha256),
                size = v.size,
                by = esc(&v.uploaded_by),
                at = esc(&time_text(v.uploaded_at)),
            );
        }
    }
    body.push_str("</table>");
    let _ = write!(
        body,
        "<p class=\"hint\">{} <code>config = {{ stored = {{ name = \"…\", version = 1 }} }}</code></p>",
        p.t("wasm.how_to_use")
    );
    if p.can(Permission::EditPolicy) {
        let _ = write!(
            body,
            "<form class=\"card\" id=\"wasm-upload\" data-wasm-upload>\
             <h2>{}</h2>\
             <label>{}<input name=\"name\" required maxlength=\"64\" pattern=\"[A-Za-z0-9_\\-][A-Za-z0-9._\\-]*\"></label>\
             <label>{}<input name=\"file\" type=\"file\" accept=\".wasm,application/wasm\" required></label>\
             <label>{} ({})<input name=\"signature\" maxlength=\"128\" pattern=\"[0-9A-Fa-f]{{128}}\"></label>\
             <label>{}<input name=\"description\" maxlength=\"500\"></label>\
             <button type=\"submit\">{}</button></form>",
            p.t("wasm.upload"),
            p.t("col.name"),
            p.t("wasm.file"),
            p.t("wasm.signature"),
            p.t("wasm.signature_hint"),
            p.t("col.description"),
            p.t("wasm.upload"),
        );
    }
    layout(&p, "/wasm", &body)
}
