//! `restrict`: transaction restriction. A request from a restricted device (as collected by
//! `device-info`, which must run earlier in the chain), a restricted user (identified from a
//! header, a cookie, or a claim of a bearer JWT) or a restricted IP/CIDR is sent to a notice
//! page, and the decision event names the user and the device. In monitor mode only the
//! event is written. The JWT is read, not verified: it identifies the user for restriction;
//! authentication stays with the application.
//!
//! ```toml
//! [[policy.filters]]
//! id = "restrict"
//! kind = "restrict"
//! config = { device_lists = ["restricted-devices"], users = ["blocked-user"],
//!            user_header = "X-User-Id", notice_path = "/notice" }
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use haetae_core::{FilterInstance, ListKind, PolicySnapshot, Severity};
use http::StatusCode;
use ipnet::IpNet;
use serde::Deserialize;

use crate::filter::{
    Decision, FilterContext, LocalResponse, Notice, PhaseResult, Phases, Reason, SecurityFilter,
};
use crate::filters::{BuildResult, ConfigProblem, list_entries, typed_config};

/// The kind name in policies.
pub const KIND: &str = "restrict";

/// The longest bearer token read for a claim.
const MAX_JWT: usize = 8 * 1024;

/// How a restricted request reaches the notice page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NoticeVia {
    /// The request is replaced by `GET <notice_path>` to the same upstream.
    #[default]
    Forward,
    /// `302 Found` to `notice_path`.
    Redirect,
    /// The gateway answers `403` with `notice_html` itself.
    Page,
}

/// `restrict`'s configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RestrictConfig {
    /// Names of `device` lists in the policy.
    pub device_lists: Vec<String>,
    /// Device ids restricted inline.
    pub devices: Vec<String>,
    /// Names of `user` lists in the policy.
    pub user_lists: Vec<String>,
    /// User ids restricted inline.
    pub users: Vec<String>,
    /// Names of `ip` lists in the policy.
    pub ip_lists: Vec<String>,
    /// IP addresses and CIDR ranges restricted inline.
    pub ips: Vec<String>,
    /// The header carrying the user id.
    pub user_header: Option<String>,
    /// The cookie carrying the user id.
    pub user_cookie: Option<String>,
    /// The claim of the bearer JWT (in `Authorization`) carrying the user id, e.g. `sub`.
    pub user_jwt_claim: Option<String>,
    /// The notice page's path.
    pub notice_path: String,
    /// How the client gets there.
    pub notice: NoticeVia,
    /// The page served with `notice = "page"`.
    pub notice_html: Option<String>,
}

/// The `restrict` filter.
#[derive(Debug)]
pub struct RestrictFilter {
    devices: HashSet<String>,
    users: HashSet<String>,
    nets: Vec<IpNet>,
    user_header: Option<http::HeaderName>,
    user_cookie: Option<String>,
    user_jwt_claim: Option<String>,
    notice_path: String,
    notice: NoticeVia,
    notice_html: Bytes,
}

const DEFAULT_NOTICE_HTML: &str = "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>이용 제한 안내</title></head>\n<body><h1>이용이 제한된 거래입니다</h1><p>This transaction is restricted for your device or account. Please contact customer support.</p></body></html>\n";

/// Builds the filter from its instance and the policy's lists.
pub fn build(instance: &FilterInstance, policy: &PolicySnapshot) -> BuildResult {
    let cfg: RestrictConfig = typed_config(instance)?;
    Ok(Arc::new(RestrictFilter::new(&cfg, policy)?))
}

impl RestrictFilter {
    /// The filter with this configuration, or every problem with it.
    pub fn new(
        cfg: &RestrictConfig,
        policy: &PolicySnapshot,
    ) -> Result<RestrictFilter, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut devices: HashSet<String> = list_entries(
            policy,
            &cfg.device_lists,
            ListKind::Device,
            "device_lists",
            &mut problems,
        )
        .into_iter()
        .collect();
        devices.extend(cfg.devices.iter().cloned());
        let mut users: HashSet<String> = list_entries(
            policy,
            &cfg.user_lists,
            ListKind::User,
            "user_lists",
            &mut problems,
        )
        .into_iter()
        .collect();
        users.extend(cfg.users.iter().cloned());
        let ip_entries = list_entries(
            policy,
            &cfg.ip_lists,
            ListKind::Ip,
            "ip_lists",
            &mut problems,
        );
        let mut nets = Vec::new();
        for (i, e) in ip_entries.iter().chain(&cfg.ips).enumerate() {
            let parsed = e
                .parse::<IpNet>()
                .or_else(|_| e.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(n) => nets.push(n),
                Err(_) if i >= ip_entries.len() => problems.push(ConfigProblem::new(
                    format!("config.ips[{}]", i - ip_entries.len()),
                    format!("{e:?} is not an IP address or CIDR range"),
                )),
                // List entries are reported by the policy's own validation.
                Err(_) => {}
            }
        }
        let user_header = match &cfg.user_header {
            Some(h) => match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push(ConfigProblem::new(
                        "config.user_header",
                        format!("{h:?} is not a header name"),
                    ));
                    None
                }
            },
            None => None,
        };
        if !users.is_empty()
            && cfg.user_header.is_none()
            && cfg.user_cookie.is_none()
            && cfg.user_jwt_claim.is_none()
        {
            problems.push(ConfigProblem::new(
                "config",
                "users are restricted but no user source is set: add user_header, user_cookie or user_jwt_claim",
            ));
        }
        if !cfg.notice_path.starts_with('/') {
            problems.push(ConfigProblem::new(
                "config.notice_path",
                format!(
                    "{:?} must be a path starting with '/', e.g. \"/notice\"",
                    cfg.notice_path
                ),
            ));
        } else if cfg.notice_path.parse::<http::uri::PathAndQuery>().is_err() {
            problems.push(ConfigProblem::new(
                "config.notice_path",
                format!("{:?} is not a valid URL path", cfg.notice_path),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(RestrictFilter {
            devices,
            users,
            nets,
            user_header,
            user_cookie: cfg.user_cookie.clone(),
            user_jwt_claim: cfg.user_jwt_claim.clone(),
            notice_path: cfg.notice_path.clone(),
            notice: cfg.notice,
            notice_html: Bytes::from(
                cfg.notice_html
                    .clone()
                    .unwrap_or_else(|| DEFAULT_NOTICE_HTML.to_owned()),
            ),
        })
    }

    fn user_id(&self, ctx: &FilterContext<'_>) -> Option<String> {
        if let Some(h) = &self.user_header
            && let Some(v) = ctx.request.headers().get(h).and_then(|v| v.to_str().ok())
            && !v.trim().is_empty()
        {
            return Some(v.trim().to_owned());
        }
        if let Some(c) = &self.user_cookie
            && let Some(v) = ctx.request.cookie(c)
            && !v.is_empty()
        {
            return Some(v.to_owned());
        }
        if let Some(claim) = &self.user_jwt_claim {
            let token = ctx.request.header("authorization").and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })?;
            return jwt_claim(token.trim(), claim);
        }
        None
    }

    fn notice(&self, reason: Reason) -> Decision {
        match self.notice {
            NoticeVia::Forward => Decision::Notice(
                Notice::Forward {
                    path: self.notice_path.clone(),
                },
                reason,
            ),
            NoticeVia::Redirect => Decision::Notice(
                Notice::Redirect {
                    location: self.notice_path.clone(),
                },
                reason,
            ),
            NoticeVia::Page => Decision::Respond(
                LocalResponse::html(StatusCode::FORBIDDEN, self.notice_html.clone()),
                reason,
            ),
        }
    }
}

/// A claim of a JWT's payload as text (strings as-is, numbers written out), without
/// verifying the signature. Malformed or oversized tokens give `None`.
#[must_use]
pub fn jwt_claim(token: &str, claim: &str) -> Option<String> {
    if token.len() > MAX_JWT {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    let bytes = base64url_decode(payload)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match value.get(claim)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Decodes unpadded (or padded) base64url.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[async_trait::async_trait]
impl SecurityFilter for RestrictFilter {
    fn phases(&self) -> Phases {
        Phases {
            request_headers: true,
            ..Phases::default()
        }
    }

    async fn on_request_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        if ctx.attributes.user_id.is_none()
            && let Some(user) = self.user_id(ctx)
        {
            ctx.attributes.user_id = Some(user);
        }
        // The notice page itself is never restricted, or the client would loop.
        if ctx.request.path() == self.notice_path {
            return Ok(Decision::Continue);
        }
        if let Some(device) = ctx.attributes.device_id()
            && self.devices.contains(device)
        {
            return Ok(self.notice(Reason::new(
                "restricted-device",
                Severity::High,
                format!("request from restricted device {device}"),
            )));
        }
        if let Some(user) = &ctx.attributes.user_id
            && self.users.contains(user)
        {
            return Ok(self.notice(Reason::new(
                "restricted-user",
                Severity::High,
                format!("request by restricted user {user}"),
            )));
        }
        let ip = ctx.request.client_ip();
        if self.nets.iter().any(|n| n.contains(&ip)) {
            return Ok(self.notice(Reason::new(
                "restricted-ip",
                Severity::High,
                format!("request from restricted address {ip}"),
            )));
        }
        Ok(Decision::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_claim_is_read_without_verification() {
        // {"alg":"none"} . {"sub":"blocked-user","n":42} . (no signature)
        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJibG9ja2VkLXVzZXIiLCJuIjo0Mn0.";
        assert_eq!(jwt_claim(token, "sub").as_deref(), Some("blocked-user"));
        assert_eq!(jwt_claim(token, "n").as_deref(), Some("42"));
        assert_eq!(jwt_claim(token, "missing"), None);
        assert_eq!(jwt_claim("not a jwt", "sub"), None);
        assert_eq!(jwt_claim("a.!!!.c", "sub"), None);
    }

    #[test]
    fn lists_must_exist_and_hold_the_right_kind() {
        let policy = PolicySnapshot::from_toml(
            r#"
            [lists.ips]
            kind = "ip"
            entries = ["10.0.0.0/8"]
            "#,
        )
        .unwrap();
        let cfg = RestrictConfig {
            device_lists: vec!["ips".into(), "missing".into()],
            ips: vec!["not-an-ip".into()],
            users: vec!["u".into()],
            notice_path: "/notice".into(),
            ..RestrictConfig::default()
        };
        let err = RestrictFilter::new(&cfg, &policy).unwrap_err();
        let paths: Vec<&str> = err.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "config.device_lists[0]",
                "config.device_lists[1]",
                "config.ips[0]",
                "config"
            ]
        );
    }
}
