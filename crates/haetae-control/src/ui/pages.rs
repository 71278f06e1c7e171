//! The UI's pages, rendered on the server from the same store and rules as the API. Pages
//! read; every change is made by `assets/app.js` calling the API with the CSRF token, so
//! the API is the one place where input is checked.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::macros::format_description;

use super::i18n::{Lang, t};
use crate::auth::{self, Permission, Role};
use crate::http::AppState;
use crate::http::api::{EventsQuery, GATEWAY_ONLINE_MICROS, dashboard_figures};
use crate::http::error::ApiError;
use crate::http::session::{self, LoginOutcome, Principal};
use crate::policy as gov;
use crate::store::{from_micros, now_micros};

const LOGIN_CSRF_COOKIE: &str = "haetae_login_csrf";

/// HTML-escapes text for element content and quoted attributes.
#[must_use]
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn time_text(us: i64) -> String {
    from_micros(us)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_accept_language(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The caller of a page, and the language to answer in.
pub struct Page {
    lang: Lang,
    principal: Principal,
}

impl Page {
    pub(crate) fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }

    pub(crate) fn can(&self, p: Permission) -> bool {
        self.principal.user.role.allows(p)
    }

    /// The logged-in user.
    pub(crate) fn principal_user(&self) -> crate::store::users::User {
        self.principal.user.clone()
    }

    /// The logged-in user's name.
    pub(crate) fn principal_name(&self) -> String {
        self.principal.user.username.clone()
    }
}

pub(crate) async fn page(state: &AppState, headers: &HeaderMap) -> Result<Page, Response> {
    match session::authenticate(state, headers).await {
        Ok(Some(principal)) => Ok(Page {
            lang: lang_of(headers),
            principal,
        }),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(e.into_response()),
    }
}

const NAV: &[(&str, &str)] = &[
    ("/", "nav.dashboard"),
    ("/services", "nav.services"),
    ("/filters", "nav.filters"),
    ("/matrix", "nav.matrix"),
    ("/security-check", "nav.security_check"),
    ("/lists", "nav.lists"),
    ("/wasm", "nav.wasm"),
    ("/policy", "nav.policy"),
    ("/events", "nav.events"),
    ("/analysis", "nav.analysis"),
    ("/alerts", "nav.alerts"),
    ("/audit", "nav.audit"),
    ("/users", "nav.users"),
    ("/remote", "nav.remote"),
    ("/account", "nav.account"),
];

pub(crate) fn layout(p: &Page, active: &str, body: &str) -> Response {
    // A remote-support agent sees the console and its account, nothing else.
    let agent_only = !p.can(Permission::Read);
    if agent_only && !matches!(active, "/remote" | "/account") {
        let mut r = layout(
            p,
            "/remote",
            &format!("<p class=\"error\">{}</p>", p.t("forbidden")),
        );
        *r.status_mut() = axum::http::StatusCode::FORBIDDEN;
        return r;
    }
    let mut nav = String::new();
    for (href, key) in NAV {
        if agent_only && !matches!(*href, "/remote" | "/account") {
            continue;
        }
        let cls = if *href == active {
            " class=\"active\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{href}\"{cls}>{}</a>", p.t(key));
    }
    let title = NAV
        .iter()
        .find(|(h, _)| *h == active)
        .map_or("", |(_, k)| p.t(k));
    Html(format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"csrf-token\" content=\"{csrf}\">\
         <title>{title} · {app}</title><link rel=\"icon\" href=\"/assets/icon.svg\"><link rel=\"stylesheet\" href=\"/assets/app.css\">\
         <script type=\"module\" src=\"/assets/app.js\"></script></head>\
         <body><header><span class=\"brand\">{app}</span><nav>{nav}</nav>\
         <form method=\"post\" action=\"/logout\" class=\"logout\"><input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\">\
         <span class=\"who\">{user} ({role})</span><button>{logout}</button></form></header>\
         <main><h1>{title}</h1><p id=\"flash\" class=\"flash\" hidden></p>{body}</main></body></html>",
        lang = p.lang.code(),
        csrf = esc(p.principal.csrf_token()),
        app = p.t("app.title"),
        user = esc(&p.principal.user.username),
        role = p.principal.user.role,
        logout = p.t("nav.logout"),
    ))
    .into_response()
}

pub(crate) fn forbidden(p: &Page, active: &str) -> Response {
    let mut r = layout(
        p,
        active,
        &format!("<p class=\"error\">{}</p>", p.t("forbidden")),
    );
    *r.status_mut() = axum::http::StatusCode::FORBIDDEN;
    r
}

pub(crate) fn api_error_page(e: ApiError) -> Response {
    e.into_response()
}

// ---------------------------------------------------------------------------------------
// Login

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    otp: String,
    #[serde(default)]
    login_csrf: String,
}

fn login_html(lang: Lang, token: &str, message: Option<&str>, secure: bool) -> Response {
    let msg = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m)))
        .unwrap_or_default();
    let mut r = Html(format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"/assets/icon.svg\"><link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body class=\"login\"><main>\
         <h1>{app}</h1>{msg}<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"login_csrf\" value=\"{token}\">\
         <label>{u}<input name=\"username\" autocomplete=\"username\" required maxlength=\"64\"></label>\
         <label>{pw}<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"1024\"></label>\
         <label>{otp}<input name=\"otp\" autocomplete=\"one-time-code\" inputmode=\"numeric\" maxlength=\"64\"></label>\
         <button type=\"submit\">{submit}</button></form></main></body></html>",
        lang = lang.code(),
        title = t(lang, "login.title"),
        app = t(lang, "app.title"),
        u = t(lang, "login.username"),
        pw = t(lang, "login.password"),
        otp = t(lang, "login.otp"),
        submit = t(lang, "login.submit"),
    ))
    .into_response();
    // `Secure` over HTTPS, like the session cookie.
    let secure = if secure { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_CSRF_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// GET /login.
pub async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_html(
        lang_of(&headers),
        &auth::new_secret(),
        None,
        state.secure_cookies,
    )
}

/// POST /login: checks the login CSRF pair, then the password; sets the session cookie.
pub async fn login_submit(
    State(state): State<AppState>,
    crate::remote::ClientAddr(ip): crate::remote::ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers);
    let cookie_token = session::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie_token.is_empty() || !auth::secrets_equal(cookie_token, &form.login_csrf) {
        return login_html(
            lang,
            &auth::new_secret(),
            Some(t(lang, "login.expired")),
            state.secure_cookies,
        );
    }
    if form.username.len() > 64 || form.password.len() > auth::MAX_PASSWORD_LEN {
        return login_html(
            lang,
            &auth::new_secret(),
            Some(t(lang, "login.refused")),
            state.secure_cookies,
        );
    }
    let otp = Some(form.otp.as_str()).filter(|o| !o.is_empty() && o.len() <= 64);
    match session::login(&state, &form.username, &form.password, otp, "web", ip).await {
        Ok(LoginOutcome::Success {
            session_id, user, ..
        }) => {
            let home = if user.role.allows(Permission::Read) {
                "/"
            } else {
                "/remote"
            };
            let mut r = Redirect::to(home).into_response();
            if let Ok(v) =
                HeaderValue::from_str(&session::session_cookie(&session_id, state.secure_cookies))
            {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(LoginOutcome::Refused) => login_html(
            lang,
            &auth::new_secret(),
            Some(t(lang, "login.refused")),
            state.secure_cookies,
        ),
        Ok(LoginOutcome::Locked) => login_html(
            lang,
            &auth::new_secret(),
            Some(t(lang, "login.locked")),
            state.secure_cookies,
        ),
        Ok(LoginOutcome::SecondFactorRequired) => login_html(
            lang,
            &auth::new_secret(),
            Some(t(lang, "login.otp_required")),
            state.secure_cookies,
        ),
        Err(e) => api_error_page(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    _csrf: String,
}

/// POST /logout (with the CSRF token as a form field).
pub async fn logout_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Ok(Some(p)) = session::authenticate(&state, &headers).await {
        if !session::csrf_ok(&p, &headers, Some(&form._csrf)) {
            return ApiError::csrf().into_response();
        }
        if let session::Via::Session { token_hash, .. } = &p.via {
            let _ = state.store.delete_session(token_hash).await;
            let _ = state
                .store
                .append_audit(
                    &p.actor,
                    "auth.logout",
                    &p.user.username,
                    &serde_json::json!({}),
                )
                .await;
        }
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(state.secure_cookies)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

// ---------------------------------------------------------------------------------------
// Dashboard

fn top_table(p: &Page, key: &str, rows: &[crate::store::events::TopEntry]) -> String {
    let id = key.trim_start_matches("dash.").replace('_', "-");
    let mut s = format!(
        "<section class=\"card\"><h2>{}</h2><table class=\"compact\" id=\"{id}\" data-none=\"{}\">",
        p.t(key),
        p.t("none")
    );
    if rows.is_empty() {
        let _ = write!(s, "<tr><td class=\"muted\">{}</td></tr>", p.t("none"));
    }
    for r in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&r.value),
            r.count
        );
    }
    s.push_str("</table></section>");
    s
}

/// GET /: figures, the live chart and the latest events.
pub async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let d = match dashboard_figures(&state).await {
        Ok(d) => d,
        Err(e) => return api_error_page(e),
    };
    let online = d.gateways.iter().filter(|g| g.online).count();
    let mut body = format!(
        "<div class=\"figures\" data-live-dashboard>\
         <div class=\"figure\"><span>{}</span><strong id=\"fig-events\">{}</strong></div>\
         <div class=\"figure blocked\"><span>{}</span><strong id=\"fig-blocked\">{}</strong></div>\
         <div class=\"figure\"><span>{}</span><strong id=\"fig-gateways\">{}/{}</strong></div>\
         <div class=\"figure\"><span>{}</span><strong id=\"fig-version\">{}</strong></div></div>\
         <section class=\"card\"><h2>{}</h2><svg id=\"chart\" viewBox=\"0 0 1200 140\" role=\"img\" aria-label=\"{}\"></svg></section>",
        p.t("dash.events_24h"),
        d.events_24h,
        p.t("dash.blocked_24h"),
        d.blocked_24h,
        p.t("dash.gateways_online"),
        online,
        d.gateways.len(),
        p.t("dash.policy_version"),
        d.policy_version
            .map_or_else(|| "—".to_owned(), |v| format!("v{v}")),
        p.t("dash.chart"),
        p.t("dash.chart"),
    );
    let recent = state.store.alerts(10, None).await.unwrap_or_default();
    body.push_str(&alerts_table(&p, "latest-alerts", &recent, false));
    body.push_str("<div class=\"grid4\">");
    body.push_str(&top_table(&p, "dash.top_users", &d.top_users));
    body.push_str(&top_table(&p, "dash.top_devices", &d.top_devices));
    body.push_str(&top_table(&p, "dash.top_filters", &d.top_filters));
    body.push_str(&top_table(&p, "dash.top_services", &d.top_services));
    body.push_str("</div>");
    let _ = write!(
        body,
        "<section class=\"card\"><h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        p.t("dash.gateways"),
        p.t("col.name"),
        p.t("col.state"),
        p.t("col.version"),
        p.t("col.last_seen")
    );
    let now = now_micros();
    for g in &d.gateways {
        let on = now - g.status.last_seen < GATEWAY_ONLINE_MICROS;
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.status.instance),
            if on { "ok" } else { "bad" },
            p.t(if on { "online" } else { "offline" }),
            g.status
                .policy_version
                .map_or_else(String::new, |v| format!("v{v}")),
            time_text(g.status.last_seen)
        );
    }
    body.push_str("</table></section>");
    let _ = write!(
        body,
        "<section class=\"card\"><h2>{}</h2><table id=\"filter-problems\" data-none=\"{}\"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        p.t("dash.filter_problems"),
        p.t("dash.filters_all_running"),
        p.t("col.gateway"),
        p.t("col.filter"),
        p.t("col.state"),
    );
    if d.filter_problems.is_empty() {
        let _ = write!(
            body,
            "<tr><td class=\"muted\" colspan=\"3\">{}</td></tr>",
            p.t("dash.filters_all_running")
        );
    }
    for f in &d.filter_problems {
        let _ = write!(
            body,
            "<tr class=\"filter-{}\"><td>{}</td><td>{}</td><td class=\"bad\">{}</td></tr>",
            esc(&f.state),
            esc(&f.gateway),
            esc(&f.filter),
            esc(&f.state)
        );
    }
    body.push_str("</tbody></table></section>");
    let _ = write!(
        body,
        "<section class=\"card\"><h2>{}</h2><table id=\"latest-events\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        p.t("dash.latest"),
        p.t("col.time"),
        p.t("col.action"),
        p.t("col.outcome"),
        p.t("col.service"),
        p.t("col.user"),
        p.t("col.device"),
        p.t("col.filter"),
    );
    for e in &d.latest {
        let _ = write!(
            body,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.outcome),
            time_text(e.ts),
            esc(&e.action),
            esc(&e.outcome),
            esc(e.service_id.as_deref().unwrap_or("")),
            esc(e.user_id.as_deref().unwrap_or("")),
            esc(e.device_id.as_deref().unwrap_or("")),
            esc(e.filter_id.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</tbody></table></section>");
    layout(&p, "/", &body)
}

// ---------------------------------------------------------------------------------------
// Policy pages

async fn draft_or_error(state: &AppState) -> Result<haetae_core::PolicySnapshot, Response> {
    gov::current_draft(state).await.map_err(api_error_page)
}

/// GET /services.
pub async fn services(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let draft = match draft_or_error(&state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut body = format!(
        "<table id=\"services\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        p.t("col.id"),
        p.t("col.name"),
        p.t("col.match"),
        p.t("col.upstream")
    );
    for s in &draft.services {
        let matches: Vec<String> = s
            .matches
            .iter()
            .map(|m| serde_json::to_string(m).unwrap_or_default())
            .collect();
        let del = if p.can(Permission::EditPolicy) {
            format!(
                "<button class=\"danger\" data-call=\"DELETE\" data-url=\"/api/v1/services/{}\">{}</button>",
                esc(&s.id),
                p.t("form.delete")
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{del}</td></tr>",
            esc(&s.id),
            esc(s.display_name()),
            esc(&matches.join(" ")),
            esc(&s.upstream)
        );
    }
    body.push_str("</table>");
    if p.can(Permission::EditPolicy) {
        let _ = write!(
            body,
            "<form class=\"card\" data-api=\"/api/v1/services\" data-method=\"POST\" data-shape=\"service\" id=\"new-service\">\
             <h2>{}</h2><label>{}<input name=\"id\" required maxlength=\"128\"></label>\
             <label>{}<input name=\"name\" maxlength=\"200\"></label>\
             <label>{}<input name=\"path_prefix\" placeholder=\"/bank/transfer\" maxlength=\"500\"></label>\
             <label>{}<input name=\"upstream\" required placeholder=\"http://127.0.0.1:9000\" maxlength=\"500\"></label>\
             <button type=\"submit\">{}</button></form>",
            p.t("services.new"),
            p.t("col.id"),
            p.t("col.name"),
            p.t("form.path_prefix"),
            p.t("col.upstream"),
            p.t("form.create")
        );
    }
    layout(&p, "/services", &body)
}

fn mode_name(m: haetae_core::FilterMode) -> &'static str {
    match m {
        haetae_core::FilterMode::Enforce => "enforce",
        haetae_core::FilterMode::Monitor => "monitor",
        haetae_core::FilterMode::Off => "off",
    }
}

/// GET /filters.
pub async fn filters(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let draft = match draft_or_error(&state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut body = format!(
        "<table id=\"filters\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        p.t("col.id"),
        p.t("col.kind"),
        p.t("col.mode"),
        p.t("col.failure"),
        p.t("col.budget"),
        p.t("col.config")
    );
    for f in &draft.filters {
        let failure = serde_json::to_value(f.failure)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let del = if p.can(Permission::EditPolicy) {
            format!(
                "<button class=\"danger\" data-call=\"DELETE\" data-url=\"/api/v1/filters/{}\">{}</button>",
                esc(&f.id),
                p.t("form.delete")
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"mode-{m}\">{m}</td><td>{}</td><td class=\"num\">{}</td><td><code>{}</code></td><td>{del}</td></tr>",
            esc(&f.id),
            esc(&f.kind),
            esc(&failure),
            f.budget_ms,
            esc(&f.config.to_string()),
            m = mode_name(f.mode),
        );
    }
    body.push_str("</table>");
    if p.can(Permission::EditPolicy) {
        let kinds: String = gov::filter_kinds()
            .iter()
            .map(|k| {
                format!(
                    "<option value=\"{0}\" title=\"{1}\">{0}</option>",
                    k.kind,
                    esc(k.description)
                )
            })
            .collect();
        let _ = write!(
            body,
            "<form class=\"card\" data-api=\"/api/v1/filters\" data-method=\"POST\" data-shape=\"filter\" id=\"new-filter\">\
             <h2>{}</h2><label>{}<input name=\"id\" required maxlength=\"128\"></label>\
             <label>{}<select name=\"kind\">{kinds}</select></label>\
             <label>{}<select name=\"mode\"><option>enforce</option><option>monitor</option><option>off</option></select></label>\
             <label>{}<select name=\"failure\"><option>fail-open</option><option>fail-closed</option></select></label>\
             <label>{}<input name=\"budget_ms\" type=\"number\" min=\"1\" max=\"60000\" value=\"50\"></label>\
             <label>{}<textarea name=\"config\" rows=\"3\">{{}}</textarea></label>\
             <button type=\"submit\">{}</button></form>",
            p.t("filters.new"),
            p.t("col.id"),
            p.t("col.kind"),
            p.t("col.mode"),
            p.t("col.failure"),
            p.t("col.budget"),
            p.t("col.config"),
            p.t("form.create")
        );
    }
    layout(&p, "/filters", &body)
}

/// GET /matrix: services x filters; a click toggles the cell in the draft.
pub async fn matrix(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let draft = match draft_or_error(&state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let editable = p.can(Permission::EditPolicy);
    let mut body = format!(
        "<p class=\"muted\">{}</p><table id=\"matrix\" class=\"matrix\"><tr><th></th>",
        p.t("matrix.hint")
    );
    for f in &draft.filters {
        let _ = write!(
            body,
            "<th title=\"{}\">{}<br><small>{}</small></th>",
            esc(&f.kind),
            esc(&f.id),
            esc(&f.kind)
        );
    }
    body.push_str("</tr>");
    for s in &draft.services {
        let mapping = draft.mappings.iter().find(|m| m.service == s.id);
        let chain = mapping.map(|m| m.filters.clone()).unwrap_or_default();
        let _ = write!(body, "<tr><th>{}</th>", esc(&s.id));
        for f in &draft.filters {
            let pos = chain.iter().position(|c| *c == f.id);
            let cell_mode = mapping.and_then(|m| m.modes.get(&f.id).copied());
            let mode = cell_mode.unwrap_or(f.mode);
            let (cls, label) = match pos {
                Some(i) => (
                    format!("mapped mode-{}", mode_name(mode)),
                    format!("{}. {}", i + 1, mode_name(mode)),
                ),
                None => ("unmapped".to_owned(), p.t("matrix.unmapped").to_owned()),
            };
            let disabled = if editable { "" } else { " disabled" };
            let _ = write!(
                body,
                "<td class=\"{cls}\"><button class=\"cell\" data-service=\"{}\" data-filter=\"{}\" data-mapped=\"{}\"{disabled}>{label}</button>",
                esc(&s.id),
                esc(&f.id),
                pos.is_some()
            );
            if pos.is_some() {
                let _ = write!(
                    body,
                    "<select class=\"cell-mode\" aria-label=\"{} {} / {}\" data-service=\"{}\" data-filter=\"{}\"{disabled}>",
                    esc(p.t("matrix.mode")),
                    esc(&s.id),
                    esc(&f.id),
                    esc(&s.id),
                    esc(&f.id)
                );
                let inherit = format!("{} ({})", p.t("matrix.inherit"), mode_name(f.mode));
                for (value, text) in [
                    ("inherit", inherit.as_str()),
                    ("enforce", "enforce"),
                    ("monitor", "monitor"),
                    ("off", "off"),
                ] {
                    let selected = match cell_mode {
                        None => value == "inherit",
                        Some(m) => value == mode_name(m),
                    };
                    let _ = write!(
                        body,
                        "<option value=\"{value}\"{}>{}</option>",
                        if selected { " selected" } else { "" },
                        esc(text)
                    );
                }
                body.push_str("</select>");
            }
            body.push_str("</td>");
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    layout(&p, "/matrix", &body)
}

/// GET /security-check: required controls per service against the mapped filters.
pub async fn security_check(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let draft = match draft_or_error(&state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let required = match state.store.requirements().await {
        Ok(r) => r,
        Err(e) => return api_error_page(e.into()),
    };
    let rows = gov::security_check(&draft, &required);
    let controls = gov::controls();
    let mut body = format!(
        "<p class=\"muted\">{}</p><table id=\"security-check\" class=\"matrix\"><tr><th></th>",
        p.t("check.hint")
    );
    for c in &controls {
        let _ = write!(
            body,
            "<th>{}</th>",
            if p.lang == Lang::Ko {
                c.name_ko
            } else {
                c.name_en
            }
        );
    }
    let _ = write!(body, "<th>{}</th></tr>", p.t("col.gaps"));
    for r in &rows {
        let _ = write!(
            body,
            "<tr data-service=\"{}\"><th>{}</th>",
            esc(&r.service),
            esc(&r.service)
        );
        for c in &controls {
            let state = r.cells.get(c.id).map_or("not-required", String::as_str);
            let _ = write!(
                body,
                "<td class=\"check-{state}\" data-control=\"{}\">{}</td>",
                c.id,
                p.t(&format!("check.{state}"))
            );
        }
        let _ = write!(
            body,
            "<td class=\"num {}\">{}</td></tr>",
            if r.gaps > 0 { "bad" } else { "ok" },
            r.gaps
        );
    }
    body.push_str("</table>");
    if p.can(Permission::EditPolicy) && !draft.services.is_empty() {
        let services: String = draft
            .services
            .iter()
            .map(|s| {
                let req = required.get(&s.id).map(|v| v.join(" ")).unwrap_or_default();
                format!(
                    "<option data-required=\"{}\">{}</option>",
                    esc(&req),
                    esc(&s.id)
                )
            })
            .collect();
        let boxes: String = controls
            .iter()
            .map(|c| {
                format!(
                    "<label class=\"inline\"><input type=\"checkbox\" name=\"controls\" value=\"{}\">{}</label>",
                    c.id,
                    if p.lang == Lang::Ko { c.name_ko } else { c.name_en }
                )
            })
            .collect();
        let _ = write!(
            body,
            "<form class=\"card\" data-api=\"/api/v1/requirements/{{service}}\" data-method=\"PUT\" data-shape=\"requirements\" id=\"requirements\">\
             <h2>{}</h2><label>{}<select name=\"service\">{services}</select></label><div>{boxes}</div>\
             <button type=\"submit\">{}</button></form>",
            p.t("check.edit"),
            p.t("col.service"),
            p.t("form.save")
        );
    }
    layout(&p, "/security-check", &body)
}

/// GET /lists.
pub async fn lists(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let draft = match draft_or_error(&state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut body = format!(
        "<table id=\"lists\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        p.t("col.name"),
        p.t("col.kind"),
        p.t("col.entries"),
        p.t("col.description")
    );
    for (name, l) in &draft.lists {
        let kind = serde_json::to_value(l.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let shown: Vec<&str> = l.entries.iter().take(20).map(String::as_str).collect();
        let more = if l.entries.len() > 20 {
            format!(" … (+{})", l.entries.len() - 20)
        } else {
            String::new()
        };
        let del = if p.can(Permission::EditPolicy) {
            format!(
                "<button class=\"danger\" data-call=\"DELETE\" data-url=\"/api/v1/lists/{}\">{}</button>",
                esc(name),
                p.t("form.delete")
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code>{}</td><td>{}</td><td>{del}</td></tr>",
            esc(name),
            esc(&kind),
            esc(&shown.join(", ")),
            esc(&more),
            esc(&l.description)
        );
    }
    body.push_str("</table>");
    if p.can(Permission::EditPolicy) {
        let _ = write!(
            body,
            "<form class=\"card\" data-api=\"/api/v1/lists/{{name}}\" data-method=\"PUT\" data-shape=\"list\" id=\"new-list\">\
             <h2>{}</h2><label>{}<input name=\"name\" required maxlength=\"128\"></label>\
             <label>{}<select name=\"kind\"><option>device</option><option>user</option><option>ip</option><option>account</option><option>generic</option></select></label>\
             <label>{} ({})<textarea name=\"entries\" rows=\"5\"></textarea></label>\
             <label>{}<input name=\"description\" maxlength=\"500\"></label>\
             <button type=\"submit\">{}</button></form>",
            p.t("lists.new"),
            p.t("col.name"),
            p.t("col.kind"),
            p.t("col.entries"),
            p.t("lists.entries_hint"),
            p.t("col.description"),
            p.t("form.save")
        );
    }
    layout(&p, "/lists", &body)
}

/// GET /policy: the draft's problems and changes, publish, versions, rollback, diff.
pub async fn policy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let draft = match draft_or_error(&state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let latest = match state.store.latest_version_number().await {
        Ok(Some(v)) => state
            .store
            .version(v)
            .await
            .ok()
            .flatten()
            .unwrap_or_default(),
        Ok(None) => haetae_core::PolicySnapshot::default(),
        Err(e) => return api_error_page(e.into()),
    };
    let versions = match state.store.list_versions(100).await {
        Ok(v) => v,
        Err(e) => return api_error_page(e.into()),
    };
    let mut body = format!(
        "<section class=\"card\" id=\"draft\"><h2>{}</h2>",
        p.t("policy.draft")
    );
    match draft.validate() {
        Ok(()) => {
            let _ = write!(body, "<p class=\"ok\">{}</p>", p.t("policy.no_problems"));
        }
        Err(errors) => {
            let _ = write!(
                body,
                "<h3>{}</h3><ul class=\"problems\">",
                p.t("policy.problems")
            );
            for e in errors.0 {
                let _ = write!(
                    body,
                    "<li class=\"bad\"><code>{}</code> {}</li>",
                    esc(&e.path),
                    esc(&e.message)
                );
            }
            body.push_str("</ul>");
        }
    }
    let changes = gov::diff(&latest, &draft);
    let _ = write!(body, "<h3>{}</h3>", p.t("policy.changes"));
    body.push_str(&changes_html(&p, &changes));
    if p.can(Permission::EditPolicy) {
        let _ = write!(
            body,
            "<form data-api=\"/api/v1/policy/publish\" data-method=\"POST\" data-shape=\"publish\" id=\"publish\">\
             <label>{}<input name=\"comment\" maxlength=\"1000\"></label><button type=\"submit\">{}</button></form>",
            p.t("col.comment"),
            p.t("policy.publish")
        );
    }
    body.push_str("</section>");
    match crate::http::rollout_api::latest_rollout(&state).await {
        Ok(r) => body.push_str(&rollout_html(&p, &r)),
        Err(e) => return api_error_page(e),
    }
    let _ = write!(
        body,
        "<section class=\"card\"><h2>{}</h2><table id=\"versions\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        p.t("policy.versions"),
        p.t("col.version"),
        p.t("col.time"),
        p.t("col.author"),
        p.t("col.comment")
    );
    for v in &versions {
        let rb = if p.can(Permission::EditPolicy) {
            format!(
                "<button data-call=\"POST\" data-url=\"/api/v1/policy/rollback\" data-body='{{\"version\":{}}}'>{}</button>",
                v.version,
                p.t("policy.rollback")
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>v{}</td><td>{}</td><td>{}</td><td>{}</td><td>{rb}</td></tr>",
            v.version,
            time_text(v.created_at),
            esc(&v.author),
            esc(&v.comment)
        );
    }
    body.push_str("</table></section>");
    let _ = write!(
        body,
        "<form class=\"card\" id=\"diff-form\"><h2>{}</h2><label>{}<input name=\"from\" required size=\"6\"></label>\
         <label>{}<input name=\"to\" required size=\"6\" value=\"draft\"></label><button type=\"submit\">{}</button>\
         <div id=\"diff-result\"></div></form>",
        p.t("policy.diff"),
        p.t("policy.from"),
        p.t("policy.to"),
        p.t("form.search")
    );
    layout(&p, "/policy", &body)
}

/// Where the latest version runs: one row per gateway, refusals with their problems.
fn rollout_html(p: &Page, r: &crate::http::rollout_api::Rollout) -> String {
    let Some(version) = r.version else {
        return String::new();
    };
    let mut s = format!(
        "<section class=\"card\"><h2>{} v{version}</h2><table id=\"rollout\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        p.t("policy.rollout"),
        p.t("col.gateway"),
        p.t("col.state"),
        p.t("col.version"),
        p.t("policy.rollout_problems"),
    );
    if r.gateways.is_empty() {
        let _ = write!(
            s,
            "<tr><td class=\"muted\" colspan=\"4\">{}</td></tr>",
            p.t("none")
        );
    }
    for g in &r.gateways {
        let (class, key) = match g.state.as_str() {
            "running" => ("ok", "policy.rollout_running"),
            "rejected" => ("bad", "policy.rollout_rejected"),
            _ => ("muted", "policy.rollout_pending"),
        };
        let _ = write!(
            s,
            "<tr data-gateway=\"{}\" data-state=\"{}\"><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td><pre class=\"problems\">{}</pre></td></tr>",
            esc(&g.gateway),
            esc(&g.state),
            esc(&g.gateway),
            p.t(key),
            g.running_version
                .map_or_else(String::new, |v| format!("v{v}")),
            esc(g.problems.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table></section>");
    s
}

fn changes_html(p: &Page, changes: &[gov::Change]) -> String {
    if changes.is_empty() {
        return format!("<p class=\"muted\">{}</p>", p.t("policy.no_changes"));
    }
    let mut s = String::from("<ul class=\"changes\">");
    for c in changes {
        let _ = write!(
            s,
            "<li class=\"change-{}\">{} {} <code>{}</code></li>",
            esc(&c.op),
            esc(&c.op),
            esc(&c.kind),
            esc(&c.id)
        );
    }
    s.push_str("</ul>");
    s
}

/// GET /events: search form, results, export links.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let field = |name: &str, key: &str, v: &Option<String>| {
        format!(
            "<label>{}<input name=\"{name}\" value=\"{}\" maxlength=\"256\"></label>",
            p.t(key),
            esc(v.as_deref().unwrap_or(""))
        )
    };
    let mut body =
        String::from("<form method=\"get\" action=\"/events\" class=\"card filters-form\">");
    body.push_str(&field("from", "policy.from", &q.from));
    body.push_str(&field("to", "policy.to", &q.to));
    body.push_str(&field("action", "col.action", &q.action));
    body.push_str(&field("outcome", "col.outcome", &q.outcome));
    body.push_str(&field("user", "col.user", &q.user));
    body.push_str(&field("device", "col.device", &q.device));
    body.push_str(&field("service", "col.service", &q.service));
    let _ = write!(
        body,
        "<button type=\"submit\">{}</button></form>",
        p.t("form.search")
    );
    let query = match q.to_store() {
        Ok(q) => q,
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"error\">{}</p>",
                esc(&e.body.error.message)
            );
            return layout(&p, "/events", &body);
        }
    };
    if p.can(Permission::ReadAudit) {
        let qs = serde_urlencode(&q);
        let _ = write!(
            body,
            "<p><a href=\"/api/v1/events/export?format=csv{qs}\">{}</a> · <a href=\"/api/v1/events/export?format=jsonl{qs}\">{}</a></p>",
            p.t("events.export_csv"),
            p.t("events.export_jsonl")
        );
    }
    let rows = match state.store.search_events(&query).await {
        Ok(r) => r,
        Err(e) => return api_error_page(e.into()),
    };
    if rows.is_empty() {
        let _ = write!(body, "<p class=\"muted\">{}</p>", p.t("events.none"));
    } else {
        let _ = write!(
            body,
            "<table id=\"events\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            p.t("col.time"),
            p.t("col.action"),
            p.t("col.outcome"),
            p.t("col.severity"),
            p.t("col.service"),
            p.t("col.user"),
            p.t("col.device"),
            p.t("col.filter")
        );
        for e in &rows {
            let _ = write!(
                body,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.outcome),
                time_text(e.ts),
                esc(&e.action),
                esc(&e.outcome),
                e.severity,
                esc(e.service_id.as_deref().unwrap_or("")),
                esc(e.user_id.as_deref().unwrap_or("")),
                esc(e.device_id.as_deref().unwrap_or("")),
                esc(e.filter_id.as_deref().unwrap_or(""))
            );
        }
        body.push_str("</table>");
    }
    layout(&p, "/events", &body)
}

/// The search fields as `&k=v` pairs for the export links.
fn serde_urlencode(q: &EventsQuery) -> String {
    let mut s = String::new();
    for (k, v) in [
        ("from", &q.from),
        ("to", &q.to),
        ("action", &q.action),
        ("outcome", &q.outcome),
        ("user", &q.user),
        ("device", &q.device),
        ("service", &q.service),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            let _ = write!(s, "&amp;{k}={}", url_component(v));
        }
    }
    s
}

/// Percent-encodes `v` for a query string (unreserved characters stay).
pub(crate) fn url_component(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// GET /audit: the newest 200 rows and a verify button.
pub async fn audit(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.can(Permission::ReadAudit) {
        return forbidden(&p, "/audit");
    }
    let rows = match state.store.audit_page(None, 200).await {
        Ok(r) => r,
        Err(e) => return api_error_page(e.into()),
    };
    let mut body = format!(
        "<p><button id=\"verify-audit\">{}</button> <span id=\"verify-result\"></span></p>\
         <table id=\"audit\"><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>hash</th></tr>",
        p.t("audit.verify"),
        p.t("col.time"),
        p.t("col.actor"),
        p.t("col.action"),
        p.t("col.target"),
        p.t("col.detail")
    );
    for r in &rows {
        let _ = write!(
            body,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code title=\"{}\">{}…</code></td></tr>",
            r.seq,
            time_text(r.ts),
            esc(&r.actor),
            esc(&r.action),
            esc(&r.target),
            esc(&r.detail),
            esc(&r.hash),
            esc(r.hash.get(..12).unwrap_or(""))
        );
    }
    body.push_str("</table>");
    layout(&p, "/audit", &body)
}

/// GET /users: users and API tokens (admins only).
pub async fn users(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.can(Permission::ManageUsers) {
        return forbidden(&p, "/users");
    }
    let (users, tokens) = match (
        state.store.list_users().await,
        state.store.list_api_tokens().await,
    ) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(e), _) | (_, Err(e)) => return api_error_page(e.into()),
    };
    let now = now_micros();
    let mut body = format!(
        "<table id=\"users\"><tr><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        p.t("col.name"),
        p.t("col.role"),
        p.t("col.state")
    );
    for u in &users {
        let state_text = if u.disabled {
            "disabled".to_owned()
        } else if u.locked_until.is_some_and(|t| t > now) {
            "locked".to_owned()
        } else {
            "active".to_owned()
        };
        let del = if u.username == p.principal.user.username {
            String::new()
        } else {
            format!(
                "<button class=\"danger\" data-call=\"DELETE\" data-url=\"/api/v1/users/{}\">{}</button>",
                esc(&u.username),
                p.t("form.delete")
            )
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{state_text}</td><td>{del}</td></tr>",
            esc(&u.username),
            u.role
        );
    }
    body.push_str("</table>");
    let roles: String = Role::ALL
        .iter()
        .map(|r| format!("<option>{r}</option>"))
        .collect();
    let _ = write!(
        body,
        "<form class=\"card\" data-api=\"/api/v1/users\" data-method=\"POST\" data-shape=\"plain\" id=\"new-user\"><h2>{}</h2>\
         <label>{}<input name=\"username\" required maxlength=\"64\"></label>\
         <label>{}<input name=\"password\" type=\"password\" required minlength=\"12\" autocomplete=\"new-password\"></label>\
         <label>{}<select name=\"role\">{roles}</select></label><button type=\"submit\">{}</button></form>",
        p.t("users.new"),
        p.t("col.name"),
        p.t("login.password"),
        p.t("col.role"),
        p.t("form.create")
    );
    let _ = write!(
        body,
        "<h2>{}</h2><table id=\"tokens\"><tr><th>ID</th><th>{}</th><th>{}</th><th></th></tr>",
        p.t("users.tokens"),
        p.t("col.name"),
        p.t("col.user")
    );
    for tk in &tokens {
        let revoke = if tk.revoked {
            "revoked".to_owned()
        } else {
            format!(
                "<button class=\"danger\" data-call=\"DELETE\" data-url=\"/api/v1/tokens/{}\">{}</button>",
                tk.id,
                p.t("form.delete")
            )
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{revoke}</td></tr>",
            tk.id,
            esc(&tk.name),
            esc(&tk.username)
        );
    }
    body.push_str("</table>");
    let _ = write!(
        body,
        "<form class=\"card\" data-api=\"/api/v1/tokens\" data-method=\"POST\" data-shape=\"plain\" data-show=\"token\" id=\"new-token\"><h2>{}</h2>\
         <label>{}<input name=\"name\" required maxlength=\"64\"></label><button type=\"submit\">{}</button></form>",
        p.t("users.new_token"),
        p.t("col.name"),
        p.t("form.create")
    );
    layout(&p, "/users", &body)
}

// ---------------------------------------------------------------------------------------
// Alerts

fn alerts_table(p: &Page, id: &str, alerts: &[crate::alerts::Alert], ack: bool) -> String {
    let mut body = format!(
        "<section class=\"card\"><h2>{}</h2><table id=\"{id}\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        p.t("alerts.latest"),
        p.t("col.time"),
        p.t("col.severity"),
        p.t("col.rule"),
        p.t("col.summary"),
        p.t("col.ack"),
    );
    for a in alerts {
        let acked = match (&a.ack_by, ack && p.can(Permission::EditPolicy)) {
            (Some(by), _) => esc(by),
            (None, true) => format!(
                "<button data-call=\"POST\" data-url=\"/api/v1/alerts/{}/ack\">{}</button>",
                esc(&a.id),
                p.t("alerts.ack")
            ),
            (None, false) => String::new(),
        };
        let _ = write!(
            body,
            "<tr class=\"sev-{}\" data-alert-id=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{acked}</td></tr>",
            esc(&a.severity),
            esc(&a.id),
            time_text(a.ts),
            esc(&a.severity),
            esc(&a.rule_id),
            esc(&a.summary),
        );
    }
    body.push_str("</tbody></table></section>");
    body
}

fn condition_text(c: &crate::alerts::Condition) -> String {
    use crate::alerts::Condition;
    match c {
        Condition::Each => "each".into(),
        Condition::Threshold { count, minutes } => format!("≥ {count} / {minutes} min"),
        Condition::BreakerOpen => "breaker-open".into(),
        Condition::GatewaySilent { minutes } => format!("gateway-silent {minutes} min"),
    }
}

/// GET /alerts: latest alerts (acknowledge), rules, and for admins the notifiers.
pub async fn alerts(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (recent, rules) = match (
        state.store.alerts(100, None).await,
        state.store.alert_rules().await,
    ) {
        (Ok(a), Ok(r)) => (a, r),
        (Err(e), _) | (_, Err(e)) => return api_error_page(e.into()),
    };
    let edit = p.can(Permission::EditPolicy);
    let mut body = alerts_table(&p, "alerts", &recent, true);
    let _ = write!(
        body,
        "<section class=\"card\"><h2>{}</h2><table id=\"alert-rules\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        p.t("alerts.rules"),
        p.t("col.id"),
        p.t("col.name"),
        p.t("col.severity"),
        p.t("col.condition"),
        p.t("col.filter"),
        p.t("col.group_by"),
        p.t("col.notify"),
    );
    for r in &rules {
        let del = if edit {
            format!(
                "<button class=\"danger\" data-call=\"DELETE\" data-url=\"/api/v1/alert-rules/{}\">{}</button>",
                esc(&r.id),
                p.t("form.delete")
            )
        } else {
            String::new()
        };
        let filter = serde_json::to_string(&r.filter).unwrap_or_default();
        let _ = write!(
            body,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{del}</td></tr>",
            if r.enabled { "" } else { "muted" },
            esc(&r.id),
            esc(&r.name),
            r.severity.as_str(),
            esc(&condition_text(&r.condition)),
            esc(&filter),
            r.group_by.as_str(),
            esc(&r.notify.join(", ")),
        );
    }
    body.push_str("</table></section>");
    if edit {
        let sev: String = haetae_core::Severity::ALL
            .iter()
            .rev()
            .map(|s| format!("<option>{}</option>", s.as_str()))
            .collect();
        let _ = write!(
            body,
            "<form class=\"card\" data-api=\"/api/v1/alert-rules/{{id}}\" data-method=\"PUT\" data-shape=\"alertRule\" id=\"new-rule\">\
             <h2>{}</h2><label>{}<input name=\"id\" required maxlength=\"64\"></label>\
             <label>{}<input name=\"name\" maxlength=\"200\"></label>\
             <label>{}<select name=\"severity\">{sev}</select></label>\
             <label>{}<select name=\"type\"><option>each</option><option>threshold</option><option>breaker-open</option><option>gateway-silent</option></select></label>\
             <label>{}<input name=\"count\" type=\"number\" min=\"1\" max=\"1000\" value=\"5\"></label>\
             <label>{}<input name=\"minutes\" type=\"number\" min=\"1\" max=\"1440\" value=\"10\"></label>\
             <label>{}<input name=\"action\" placeholder=\"restrict.*\"></label>\
             <label>{}<select name=\"outcome\"><option value=\"\"></option><option>failure</option><option>success</option></select></label>\
             <label>{}<input name=\"service\"></label>\
             <label>{}<select name=\"group_by\"><option>none</option><option>user</option><option>device</option><option>source-ip</option><option>service</option><option>filter</option><option>instance</option></select></label>\
             <label>{}<input name=\"quiet_minutes\" type=\"number\" min=\"0\" max=\"1440\" value=\"1\"></label>\
             <label>{}<input name=\"notify\" placeholder=\"hook-1, siem\"></label>\
             <button type=\"submit\">{}</button></form>",
            p.t("alerts.new_rule"),
            p.t("col.id"),
            p.t("col.name"),
            p.t("col.severity"),
            p.t("col.condition"),
            p.t("col.count"),
            p.t("col.minutes"),
            p.t("col.action"),
            p.t("col.outcome"),
            p.t("col.service"),
            p.t("col.group_by"),
            p.t("col.quiet"),
            p.t("col.notify"),
            p.t("form.save"),
        );
    }
    if p.can(Permission::ManageUsers) {
        let notifiers = state.store.notifiers().await.unwrap_or_default();
        let stats = state.alerts.dispatcher.stats();
        let _ = write!(
            body,
            "<section class=\"card\"><h2>{}</h2><table id=\"notifiers\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
            p.t("alerts.notifiers"),
            p.t("col.id"),
            p.t("col.kind"),
            p.t("col.url"),
            p.t("col.forward_events"),
            p.t("col.delivery"),
        );
        for n in &notifiers {
            let kind = serde_json::to_value(n.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let target = n.url.as_deref().or(n.address.as_deref()).unwrap_or("");
            let delivery = stats.get(&n.id).map_or_else(String::new, |s| {
                format!(
                    "sent {} · failed {} · dropped {} · queued {}{}",
                    s.sent,
                    s.failed,
                    s.dropped,
                    s.queued,
                    s.last_error
                        .as_deref()
                        .map_or_else(String::new, |e| format!(" · {e}"))
                )
            });
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><button class=\"danger\" data-call=\"DELETE\" data-url=\"/api/v1/notifiers/{}\">{}</button></td></tr>",
                esc(&n.id),
                esc(&kind),
                esc(target),
                n.forward_events,
                esc(&delivery),
                esc(&n.id),
                p.t("form.delete"),
            );
        }
        body.push_str("</table></section>");
        let sev: String = haetae_core::Severity::ALL
            .iter()
            .map(|s| format!("<option>{}</option>", s.as_str()))
            .collect();
        let _ = write!(
            body,
            "<form class=\"card\" data-api=\"/api/v1/notifiers/{{id}}\" data-method=\"PUT\" data-shape=\"notifier\" id=\"new-notifier\">\
             <h2>{}</h2><label>{}<input name=\"id\" required maxlength=\"64\"></label>\
             <label>{}<select name=\"kind\"><option>webhook</option><option>syslog</option><option>splunk-hec</option></select></label>\
             <label>{}<input name=\"url\" placeholder=\"https://...\"></label>\
             <label>{}<input name=\"address\" placeholder=\"siem.example:6514\"></label>\
             <label>{}<select name=\"transport\"><option>tcp</option><option>tls</option><option>udp</option></select></label>\
             <label>{}<select name=\"format\"><option>rfc5424</option><option>cef</option><option>ecs</option></select></label>\
             <label>{}<input name=\"secret\" type=\"password\" autocomplete=\"off\"></label>\
             <label><input name=\"forward_events\" type=\"checkbox\" value=\"true\"> {}</label>\
             <label>{}<select name=\"min_severity\">{sev}</select></label>\
             <button type=\"submit\">{}</button></form>",
            p.t("alerts.new_notifier"),
            p.t("col.id"),
            p.t("col.kind"),
            p.t("col.url"),
            p.t("col.address"),
            p.t("col.transport"),
            p.t("col.format"),
            p.t("col.secret"),
            p.t("col.forward_events"),
            p.t("col.min_severity"),
            p.t("form.save"),
        );
    }
    layout(&p, "/alerts", &body)
}

/// GET /account: the caller's second factor (enrol, confirm, turn off).
pub async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match page(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let s = match state.store.totp_state(p.principal.user.id).await {
        Ok(s) => s,
        Err(e) => return api_error_page(e.into()),
    };
    let on = s.secret.is_some();
    let mut body = format!(
        "<section class=\"card\" id=\"totp\" data-enabled=\"{on}\"><h2>{}</h2><p id=\"totp-state\" class=\"{}\">{}</p>",
        p.t("account.totp"),
        if on { "ok" } else { "muted" },
        p.t(if on {
            "account.totp_on"
        } else {
            "account.totp_off"
        }),
    );
    if on {
        let _ = write!(
            body,
            "<p>{}: {}</p>\
             <form data-api=\"/api/v1/account/totp/disable\" data-method=\"POST\" id=\"totp-disable\">\
             <label>{}<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"1024\"></label>\
             <label>{}<input name=\"code\" autocomplete=\"one-time-code\" required maxlength=\"64\"></label>\
             <button type=\"submit\" class=\"danger\">{}</button></form>",
            p.t("account.recovery_left"),
            s.recovery_left,
            p.t("login.password"),
            p.t("form.code"),
            p.t("account.totp_disable"),
        );
    } else {
        let _ = write!(
            body,
            "<button id=\"totp-start\">{}</button>\
             <div id=\"totp-enrol\" hidden><p>{}</p><img id=\"totp-qr\" class=\"qr\" alt=\"{}\" width=\"232\" height=\"232\"><p><code id=\"totp-secret\"></code></p><p><code id=\"totp-uri\" class=\"wrap\"></code></p>\
             <form id=\"totp-confirm\"><label>{}<input name=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required maxlength=\"6\"></label>\
             <button type=\"submit\">{}</button></form></div>\
             <div id=\"totp-recovery\" hidden><p>{}</p><pre id=\"totp-codes\"></pre></div>",
            p.t("account.totp_enable"),
            p.t("account.totp_scan"),
            p.t("account.totp_qr"),
            p.t("form.code"),
            p.t("account.totp_confirm"),
            p.t("account.recovery"),
        );
    }
    body.push_str("</section>");
    layout(&p, "/account", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_attribute_breakouts() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }
}
