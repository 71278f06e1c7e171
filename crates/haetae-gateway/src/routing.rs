//! The Filter Manager's product: an immutable [`RoutingTable`] built from one
//! [`PolicySnapshot`] (service match -> upstream and filter chain). A policy that does not
//! validate, or whose filters cannot be built from their configuration, is rejected whole
//! with every problem listed.

use std::sync::Arc;

use haetae_core::{FilterMode, PolicySnapshot, RouteMatch, ValidationError, ValidationErrors};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Uri, request};
use regex::Regex;

use crate::chain::{FilterChain, FilterSlot};
use crate::filters::FilterRegistry;
use crate::metrics::{GatewayMetrics, ServiceStats};
use crate::request::{Params, request_host};

/// The protocol spoken to an upstream, named by its URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// `http://`: HTTP/1.1 over TCP.
    Http1,
    /// `https://`: TLS, then HTTP/2 or HTTP/1.1 as the upstream chooses by ALPN.
    Tls,
    /// `h2c://`: cleartext HTTP/2 with prior knowledge (RFC 9113 §3.3).
    H2c,
}

impl UpstreamProtocol {
    /// The name used in metrics labels, events and logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::Http1 => "http1",
            UpstreamProtocol::Tls => "tls",
            UpstreamProtocol::H2c => "h2c",
        }
    }
}

/// Where a route's requests go.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The scheme of the URIs sent: `http` (also for h2c) or `https`.
    scheme: Scheme,
    protocol: UpstreamProtocol,
    authority: Authority,
    /// The base path without a trailing slash (`""` for none).
    base_path: String,
    /// The URL as configured, for logs and events.
    url: Arc<str>,
    /// The HTTP/1.1 connection pool of this address, looked up on first use (pools outlive
    /// routing tables).
    pool: std::sync::OnceLock<Arc<crate::pool::H1Pool>>,
}

impl Upstream {
    /// Parses an `http://`, `https://` or `h2c://` `host[:port][/base]` URL.
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let uri: Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
        let (scheme, protocol) = match uri.scheme_str() {
            Some("http") => (Scheme::HTTP, UpstreamProtocol::Http1),
            Some("https") => (Scheme::HTTPS, UpstreamProtocol::Tls),
            Some("h2c") => (Scheme::HTTP, UpstreamProtocol::H2c),
            Some(other) => {
                return Err(format!(
                    "scheme {other} is not http, https or h2c (cleartext HTTP/2)"
                ));
            }
            None => return Err("not an absolute URL".to_owned()),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| "has no host".to_owned())?;
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Upstream {
            scheme,
            protocol,
            authority,
            base_path,
            url: Arc::from(url),
            pool: std::sync::OnceLock::new(),
        })
    }

    /// The origin-form target (`/base/path?query`) for an HTTP/1.1 request.
    pub(crate) fn origin_target(
        &self,
        path_and_query: Option<&PathAndQuery>,
    ) -> Result<Uri, http::Error> {
        let pq = match (self.base_path.is_empty(), path_and_query) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => {
                let rest = pq.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{}{rest}", self.base_path))?
            }
        };
        Ok(Uri::from(pq))
    }

    /// The upstream's `host[:port]`.
    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The HTTP/1.1 connection pool of this upstream's address.
    pub(crate) fn pool(&self, pools: &crate::pool::Pools) -> &Arc<crate::pool::H1Pool> {
        self.pool.get_or_init(|| pools.get(&self.authority))
    }

    /// The URI to send a request for `path_and_query` to.
    pub(crate) fn target(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let pq = match (self.base_path.is_empty(), path_and_query) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => {
                let rest = pq.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{}{rest}", self.base_path))?
            }
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }

    /// Whether the upstream uses TLS.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.protocol == UpstreamProtocol::Tls
    }

    /// The protocol spoken to the upstream.
    #[must_use]
    pub fn protocol(&self) -> UpstreamProtocol {
        self.protocol
    }

    /// The URL as configured.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// One compiled `[[services.match]]` rule.
#[derive(Debug)]
struct CompiledMatch {
    host: Option<HostRule>,
    methods: Vec<Method>,
    path_prefix: Option<String>,
    path_pattern: Option<Regex>,
    transaction: Option<(String, Vec<String>)>,
}

#[derive(Debug)]
enum HostRule {
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Subdomain(String),
}

impl CompiledMatch {
    fn compile(m: &RouteMatch) -> Result<CompiledMatch, String> {
        let host = m.host.as_ref().map(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix('*') {
                Some(rest) => HostRule::Subdomain(rest.to_owned()),
                None => HostRule::Exact(h),
            }
        });
        let methods = m
            .methods
            .iter()
            .map(|s| Method::from_bytes(s.as_bytes()).map_err(|e| format!("method {s:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let path_pattern = match &m.path_pattern {
            Some(p) => Some(
                regex::RegexBuilder::new(&format!("^(?:{p})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("path_pattern: {e}"))?,
            ),
            None => None,
        };
        Ok(CompiledMatch {
            host,
            methods,
            path_prefix: m
                .path_prefix
                .as_ref()
                .map(|p| p.trim_end_matches('/').to_owned()),
            path_pattern,
            transaction: m
                .transaction
                .as_ref()
                .map(|t| (t.param.clone(), t.values.clone())),
        })
    }

    fn matches(&self, parts: &request::Parts, query: &mut Option<Params>) -> bool {
        if let Some(rule) = &self.host {
            let Some(host) = request_host(parts) else {
                return false;
            };
            let ok = match rule {
                HostRule::Exact(h) => host.eq_ignore_ascii_case(h),
                HostRule::Subdomain(suffix) => {
                    host.len() > suffix.len()
                        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                }
            };
            if !ok {
                return false;
            }
        }
        if !self.methods.is_empty() && !self.methods.contains(&parts.method) {
            return false;
        }
        let path = parts.uri.path();
        if let Some(prefix) = &self.path_prefix {
            // Segment-wise: `/bank` matches `/bank` and `/bank/x`, not `/banking`.
            let ok = path.starts_with(prefix.as_str())
                && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'));
            if !ok {
                return false;
            }
        }
        if let Some(re) = &self.path_pattern
            && !re.is_match(path)
        {
            return false;
        }
        if let Some((param, values)) = &self.transaction {
            let q = query.get_or_insert_with(|| {
                Params::from_urlencoded(parts.uri.query().unwrap_or_default().as_bytes())
            });
            if !q.get(param).is_some_and(|v| values.iter().any(|x| x == v)) {
                return false;
            }
        }
        true
    }
}

/// A service as the gateway runs it.
#[derive(Debug)]
pub struct Route {
    pub(crate) service_id: Arc<str>,
    matches: Vec<CompiledMatch>,
    pub(crate) upstream: Upstream,
    pub(crate) chain: FilterChain,
    pub(crate) stats: Arc<ServiceStats>,
}

impl Route {
    /// The service id.
    #[must_use]
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// The filter chain.
    #[must_use]
    pub fn chain(&self) -> &FilterChain {
        &self.chain
    }
}

/// The routing table built from one policy: services in policy order, first match wins.
#[derive(Debug)]
pub struct RoutingTable {
    pub(crate) version: u64,
    pub(crate) routes: Vec<Route>,
    pub(crate) default_upstream: Option<Upstream>,
}

impl RoutingTable {
    /// An empty table (every request gets the default).
    #[must_use]
    pub fn empty(default_upstream: Option<Upstream>) -> RoutingTable {
        RoutingTable {
            version: 0,
            routes: Vec::new(),
            default_upstream,
        }
    }

    /// The policy version this table was built from.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The routes, in match order.
    #[must_use]
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route whose service matches the request.
    #[must_use]
    pub fn route(&self, parts: &request::Parts) -> Option<&Route> {
        self.route_index(parts).map(|i| &self.routes[i])
    }

    pub(crate) fn route_index(&self, parts: &request::Parts) -> Option<usize> {
        let mut query = None;
        self.routes.iter().position(|r| {
            r.matches.is_empty() || r.matches.iter().any(|m| m.matches(parts, &mut query))
        })
    }

    /// Validates the policy, builds every filter, and returns the table, or every problem.
    pub fn build(
        policy: &PolicySnapshot,
        registry: &FilterRegistry,
        metrics: &GatewayMetrics,
        max_body_buffer: usize,
        default_upstream: Option<Upstream>,
    ) -> Result<RoutingTable, ValidationErrors> {
        let mut errors = match policy.validate() {
            Ok(()) => Vec::new(),
            Err(e) => e.0,
        };
        // Build every filter instance once (a chain shares it), collecting config errors.
        let mut built: Vec<Option<Arc<dyn crate::SecurityFilter>>> = Vec::new();
        for (i, f) in policy.filters.iter().enumerate() {
            // Off everywhere: the instance's mode and every matrix cell that overrides it.
            let runs_somewhere = f.mode != FilterMode::Off
                || policy.mappings.iter().any(|m| {
                    m.filters.contains(&f.id) && m.mode_of(&f.id, f.mode) != FilterMode::Off
                });
            if !runs_somewhere {
                built.push(None);
                continue;
            }
            match registry.build(f, policy) {
                Ok(filter) => built.push(Some(filter)),
                Err(problems) => {
                    for p in problems {
                        errors.push(ValidationError {
                            path: if p.path.is_empty() {
                                format!("filters[{i}]")
                            } else {
                                format!("filters[{i}].{}", p.path)
                            },
                            message: p.message,
                        });
                    }
                    built.push(None);
                }
            }
        }
        let mut routes = Vec::with_capacity(policy.services.len());
        for (i, s) in policy.services.iter().enumerate() {
            let upstream = match Upstream::parse(&s.upstream) {
                Ok(u) => Some(u),
                Err(e) => {
                    if !errors
                        .iter()
                        .any(|x| x.path == format!("services[{i}].upstream"))
                    {
                        errors.push(ValidationError {
                            path: format!("services[{i}].upstream"),
                            message: e,
                        });
                    }
                    None
                }
            };
            let mut matches = Vec::new();
            for (j, m) in s.matches.iter().enumerate() {
                match CompiledMatch::compile(m) {
                    Ok(c) => matches.push(c),
                    Err(e) => {
                        let path = format!("services[{i}].match[{j}]");
                        if !errors.iter().any(|x| x.path.starts_with(&path)) {
                            errors.push(ValidationError { path, message: e });
                        }
                    }
                }
            }
            let mut slots = Vec::new();
            for (mapping, id) in policy
                .mappings
                .iter()
                .filter(|m| m.service == s.id)
                .flat_map(|m| m.filters.iter().map(move |id| (m, id)))
            {
                if let Some(idx) = policy.filters.iter().position(|f| &f.id == id)
                    && let Some(filter) = &built[idx]
                {
                    // The matrix cell's mode (per service) overrides the instance's.
                    let mode = mapping.mode_of(id, policy.filters[idx].mode);
                    if mode == FilterMode::Off {
                        continue;
                    }
                    let mut slot =
                        FilterSlot::new(&policy.filters[idx], Arc::clone(filter), metrics);
                    slot.mode = mode;
                    slots.push(slot);
                }
            }
            if let Some(upstream) = upstream {
                routes.push(Route {
                    service_id: Arc::from(s.id.as_str()),
                    matches,
                    upstream,
                    chain: FilterChain::new(slots, max_body_buffer),
                    stats: metrics.service(&s.id),
                });
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors));
        }
        let ids: Vec<&str> = policy.filters.iter().map(|f| f.id.as_str()).collect();
        metrics.retain_filters(&ids);
        Ok(RoutingTable {
            version: policy.version,
            routes,
            default_upstream,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolation::BreakerSettings;
    use std::time::Duration;

    fn metrics() -> GatewayMetrics {
        GatewayMetrics::new(BreakerSettings {
            failures: 5,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(30),
        })
    }

    fn table(toml: &str) -> RoutingTable {
        let policy = PolicySnapshot::from_toml(toml).unwrap();
        RoutingTable::build(&policy, &FilterRegistry::standard(), &metrics(), 1024, None).unwrap()
    }

    fn parts(method: &str, uri: &str, host: &str) -> request::Parts {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    const SERVICES: &str = r#"
        [[services]]
        id = "transfer"
        upstream = "http://127.0.0.1:9001"
        [[services.match]]
        host = "bank.example"
        methods = ["POST"]
        path_prefix = "/bank/transfer"

        [[services]]
        id = "api"
        upstream = "http://127.0.0.1:9002/base/"
        [[services.match]]
        host = "*.api.example"
        path_pattern = "/v[0-9]+/.*"

        [[services]]
        id = "trx"
        upstream = "http://127.0.0.1:9003"
        [[services.match]]
        path_prefix = "/trx"
        transaction = { param = "trxCd", values = ["TRF001", "TRF002"] }
    "#;

    fn routed(t: &RoutingTable, method: &str, uri: &str, host: &str) -> Option<String> {
        t.route(&parts(method, uri, host))
            .map(|r| r.service_id().to_owned())
    }

    #[test]
    fn routes_by_host_method_and_segmentwise_path_prefix() {
        let t = table(SERVICES);
        assert_eq!(
            routed(&t, "POST", "/bank/transfer", "bank.example").as_deref(),
            Some("transfer")
        );
        assert_eq!(
            routed(&t, "POST", "/bank/transfer/x", "BANK.example:443").as_deref(),
            Some("transfer")
        );
        assert_eq!(routed(&t, "GET", "/bank/transfer", "bank.example"), None);
        assert_eq!(routed(&t, "POST", "/bank/transferx", "bank.example"), None);
        assert_eq!(routed(&t, "POST", "/bank/transfer", "other.example"), None);
    }

    #[test]
    fn routes_by_subdomain_and_anchored_pattern() {
        let t = table(SERVICES);
        assert_eq!(
            routed(&t, "GET", "/v1/x", "a.api.example").as_deref(),
            Some("api")
        );
        assert_eq!(routed(&t, "GET", "/v1/x", "api.example"), None);
        assert_eq!(routed(&t, "GET", "/x/v1/x", "a.api.example"), None);
    }

    #[test]
    fn routes_by_transaction_code_in_the_query() {
        let t = table(SERVICES);
        assert_eq!(
            routed(&t, "GET", "/trx?trxCd=TRF002", "h").as_deref(),
            Some("trx")
        );
        assert_eq!(routed(&t, "GET", "/trx?trxCd=INQ001", "h"), None);
    }

    #[test]
    fn the_upstream_base_path_prefixes_the_request_path() {
        let u = Upstream::parse("http://127.0.0.1:9002/base/").unwrap();
        let pq = PathAndQuery::from_static("/v1/x?a=1");
        assert_eq!(
            u.target(Some(&pq)).unwrap().to_string(),
            "http://127.0.0.1:9002/base/v1/x?a=1"
        );
        let u = Upstream::parse("https://b.example").unwrap();
        assert_eq!(
            u.target(Some(&pq)).unwrap().to_string(),
            "https://b.example/v1/x?a=1"
        );
        assert_eq!(u.protocol(), UpstreamProtocol::Tls);
        // h2c names the protocol; the request itself is an ordinary `http` URI.
        let u = Upstream::parse("h2c://127.0.0.1:9003").unwrap();
        assert_eq!(u.protocol(), UpstreamProtocol::H2c);
        assert_eq!(
            u.target(Some(&pq)).unwrap().to_string(),
            "http://127.0.0.1:9003/v1/x?a=1"
        );
        assert!(Upstream::parse("h2://b.example").is_err());
    }

    #[test]
    fn an_invalid_policy_is_rejected_with_every_problem_including_filter_configs() {
        let policy = PolicySnapshot::from_toml(
            r#"
            [[services]]
            id = "a"
            upstream = "ftp://x"
            [[filters]]
            id = "r"
            kind = "restrict"
            config = { user_from = "nowhere", notice_path = "x" }
            [[filters]]
            id = "z"
            kind = "no-such-kind"
            [[mappings]]
            service = "a"
            filters = ["r", "z"]
            "#,
        )
        .unwrap();
        let err = RoutingTable::build(&policy, &FilterRegistry::standard(), &metrics(), 1024, None)
            .unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"services[0].upstream"), "{err}");
        assert!(
            paths.iter().any(|p| p.starts_with("filters[0].config")),
            "{err}"
        );
        assert!(paths.contains(&"filters[1].kind"), "{err}");
    }

    #[test]
    fn a_matrix_cell_mode_overrides_the_instance_mode_for_that_service_only() {
        let t = table(
            r#"
            [[services]]
            id = "a"
            upstream = "http://127.0.0.1:9"
            match = [{ path_prefix = "/a" }]
            [[services]]
            id = "b"
            upstream = "http://127.0.0.1:9"
            match = [{ path_prefix = "/b" }]
            [[services]]
            id = "c"
            upstream = "http://127.0.0.1:9"
            match = [{ path_prefix = "/c" }]
            [[filters]]
            id = "h"
            kind = "security-headers"
            mode = "off"
            [[mappings]]
            service = "a"
            filters = ["h"]
            modes = { h = "monitor" }
            [[mappings]]
            service = "b"
            filters = ["h"]
            [[mappings]]
            service = "c"
            filters = ["h"]
            modes = { h = "enforce" }
            "#,
        );
        let modes = |id: &str| -> Vec<FilterMode> {
            let r = t.routes.iter().find(|r| &*r.service_id == id).unwrap();
            r.chain.slots.iter().map(|s| s.mode).collect()
        };
        assert_eq!(modes("a"), [FilterMode::Monitor]);
        assert!(
            modes("b").is_empty(),
            "the instance is off and b has no cell mode"
        );
        assert_eq!(modes("c"), [FilterMode::Enforce]);
    }
}
