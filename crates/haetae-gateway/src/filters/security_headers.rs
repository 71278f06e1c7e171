//! `security-headers`: adds the browser security headers a bank's pages must carry (HSTS,
//! CSP, `X-Content-Type-Options`, frame options, referrer policy) to every upstream
//! response of the services it is mapped to, and removes headers that advertise the
//! server's software. With `enforce_values = true` an upstream's own (weaker) value is
//! replaced; by default the upstream's value is kept and only missing headers are added.
//! Per service: map a differently configured instance to each service.
//!
//! ```toml
//! [[policy.filters]]
//! id = "headers"
//! kind = "security-headers"
//! config = { csp = "default-src 'self'", frame_options = "DENY", enforce_values = true }
//! ```

use std::sync::Arc;

use haetae_core::{FilterInstance, PolicySnapshot};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::filter::{Decision, FilterContext, Modification, PhaseResult, Phases, SecurityFilter};
use crate::filters::{BuildResult, ConfigProblem, typed_config};

/// The kind name in policies.
pub const KIND: &str = "security-headers";

/// `security-headers`' configuration. Each header's value is sent as written; an empty
/// string means "do not add this header".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityHeadersConfig {
    /// `Strict-Transport-Security`.
    pub hsts: String,
    /// `Content-Security-Policy`.
    pub csp: String,
    /// `Content-Security-Policy-Report-Only` (for trying a stricter policy first).
    pub csp_report_only: String,
    /// `X-Content-Type-Options`.
    pub content_type_options: String,
    /// `X-Frame-Options`.
    pub frame_options: String,
    /// `Referrer-Policy`.
    pub referrer_policy: String,
    /// `Permissions-Policy`.
    pub permissions_policy: String,
    /// Replace the upstream's own value of a configured header (otherwise it is kept).
    pub enforce_values: bool,
    /// Response headers removed because they advertise the server's software.
    pub remove: Vec<String>,
}

impl Default for SecurityHeadersConfig {
    fn default() -> Self {
        SecurityHeadersConfig {
            hsts: "max-age=31536000; includeSubDomains".into(),
            csp: "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
                .into(),
            csp_report_only: String::new(),
            content_type_options: "nosniff".into(),
            frame_options: "SAMEORIGIN".into(),
            referrer_policy: "strict-origin-when-cross-origin".into(),
            permissions_policy: String::new(),
            enforce_values: false,
            remove: vec!["x-powered-by".into(), "x-aspnet-version".into()],
        }
    }
}

/// The `security-headers` filter.
#[derive(Debug)]
pub struct SecurityHeadersFilter {
    headers: Vec<(HeaderName, HeaderValue)>,
    enforce_values: bool,
    remove: Vec<HeaderName>,
}

/// Builds the filter from its instance.
pub fn build(instance: &FilterInstance, _policy: &PolicySnapshot) -> BuildResult {
    let cfg: SecurityHeadersConfig = typed_config(instance)?;
    Ok(Arc::new(SecurityHeadersFilter::new(&cfg)?))
}

impl SecurityHeadersFilter {
    /// The filter with this configuration, or every problem with it.
    pub fn new(cfg: &SecurityHeadersConfig) -> Result<SecurityHeadersFilter, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut headers = Vec::new();
        let fields: [(&str, &'static str, &str); 7] = [
            ("hsts", "strict-transport-security", &cfg.hsts),
            ("csp", "content-security-policy", &cfg.csp),
            (
                "csp_report_only",
                "content-security-policy-report-only",
                &cfg.csp_report_only,
            ),
            (
                "content_type_options",
                "x-content-type-options",
                &cfg.content_type_options,
            ),
            ("frame_options", "x-frame-options", &cfg.frame_options),
            ("referrer_policy", "referrer-policy", &cfg.referrer_policy),
            (
                "permissions_policy",
                "permissions-policy",
                &cfg.permissions_policy,
            ),
        ];
        for (field, name, value) in fields {
            if value.is_empty() {
                continue;
            }
            match HeaderValue::from_str(value) {
                Ok(v) => headers.push((HeaderName::from_static(name), v)),
                Err(_) => problems.push(ConfigProblem::new(
                    format!("config.{field}"),
                    format!("{value:?} cannot be sent as a header value (control characters?)"),
                )),
            }
        }
        if let Some(max_age) = hsts_max_age(&cfg.hsts)
            && max_age < 86_400
        {
            problems.push(ConfigProblem::new(
                "config.hsts",
                format!(
                    "max-age={max_age} is under a day; use at least max-age=31536000 \
                     (or \"\" to leave HSTS to the upstream)"
                ),
            ));
        }
        let mut remove = Vec::new();
        for (i, name) in cfg.remove.iter().enumerate() {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(n) => remove.push(n),
                Err(_) => problems.push(ConfigProblem::new(
                    format!("config.remove[{i}]"),
                    format!("{name:?} is not a header name"),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(SecurityHeadersFilter {
            headers,
            enforce_values: cfg.enforce_values,
            remove,
        })
    }
}

/// The `max-age` of an HSTS value, when it has a numeric one.
fn hsts_max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

#[async_trait::async_trait]
impl SecurityFilter for SecurityHeadersFilter {
    fn phases(&self) -> Phases {
        Phases {
            response_headers: true,
            ..Phases::default()
        }
    }

    async fn on_response_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        let Some(response) = ctx.response else {
            return Ok(Decision::Continue);
        };
        // The engine's `security-headers.modify` event names the headers set and removed
        // (in both modes): the audit of which pages lack which headers. No event of our own,
        // so a response costs one event, not two.
        let upstream = response.headers();
        let mut mods = Vec::new();
        for (name, value) in &self.headers {
            match upstream.get(name) {
                None => mods.push(Modification::SetHeader(name.clone(), value.clone())),
                Some(have) if self.enforce_values && have != value => {
                    mods.push(Modification::SetHeader(name.clone(), value.clone()));
                }
                Some(_) => {}
            }
        }
        for name in &self.remove {
            if upstream.contains_key(name) {
                mods.push(Modification::RemoveHeader(name.clone()));
            }
        }
        if mods.is_empty() {
            return Ok(Decision::Continue);
        }
        Ok(Decision::Modify(mods))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_build_and_name_five_headers() {
        let f = SecurityHeadersFilter::new(&SecurityHeadersConfig::default()).unwrap();
        let names: Vec<&str> = f.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "strict-transport-security",
                "content-security-policy",
                "x-content-type-options",
                "x-frame-options",
                "referrer-policy"
            ]
        );
    }

    #[test]
    fn a_short_hsts_and_bad_values_are_config_errors() {
        let err = SecurityHeadersFilter::new(&SecurityHeadersConfig {
            hsts: "max-age=60".into(),
            csp: "default-src\n'self'".into(),
            remove: vec!["bad header".into()],
            ..SecurityHeadersConfig::default()
        })
        .unwrap_err();
        let paths: Vec<&str> = err.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["config.csp", "config.hsts", "config.remove[0]"]);
    }

    #[test]
    fn hsts_max_age_is_read_from_any_directive_position() {
        assert_eq!(
            hsts_max_age("includeSubDomains; max-age=\"600\""),
            Some(600)
        );
        assert_eq!(hsts_max_age("max-age=abc"), None);
        assert_eq!(hsts_max_age(""), None);
    }
}
