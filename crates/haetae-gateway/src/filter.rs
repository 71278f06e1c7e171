//! The filter API: the [`SecurityFilter`] trait with one method per phase, the
//! [`Decision`] each phase returns, and the small [`FilterContext`] a filter gets. A filter
//! knows nothing of the proxy's plumbing; everything it may use comes through the context.
//!
//! Phase order for one request (the engine documents and enforces it):
//! 1. `on_request_headers`, chain order;
//! 2. `on_request_body`, chain order, only for filters that ask (bounded buffered view);
//! 3. the upstream call;
//! 4. `on_response_headers`, reverse chain order;
//! 5. `on_response_body`, reverse chain order, only for filters that ask;
//! 6. `on_log`, chain order, after the response is decided, off the response path.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use haetae_core::{Component, Event, FilterMode, Severity};
use http::{HeaderName, HeaderValue, StatusCode};
use time::OffsetDateTime;

use crate::bus::{EventSink, KvStore};
use crate::request::{Attributes, RequestView, ResponseView};

/// Which phases a filter takes part in; the engine calls no other phase method, so a
/// filter pays nothing for the phases it does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Phases {
    /// Call `on_request_headers`.
    pub request_headers: bool,
    /// Buffer up to this many request body bytes and call `on_request_body`.
    pub request_body: Option<usize>,
    /// Call `on_response_headers`.
    pub response_headers: bool,
    /// Buffer up to this many response body bytes and call `on_response_body`.
    pub response_body: Option<usize>,
    /// Call `on_log` once the response is decided.
    pub log: bool,
}

/// What a filter wants done with the request (or response) it just saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go on to the next filter.
    Continue,
    /// Answer the client directly; the upstream is not called (or its response dropped).
    Respond(LocalResponse, Reason),
    /// Send the client to a notice page.
    Notice(Notice, Reason),
    /// Change headers (the request's in request phases, the response's in response
    /// phases) and go on.
    Modify(Vec<Modification>),
    /// Answer the client with content the filter owns (e.g. `e2e-fields`' client module
    /// at `/haetae/e2e.js`). Not a security stop: no alert event, and served in monitor
    /// mode too.
    Serve(LocalResponse),
}

impl Decision {
    /// The decision's kind as used in metrics and event actions.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Continue => "continue",
            Decision::Respond(..) => "respond",
            Decision::Notice(..) => "notice",
            Decision::Modify(..) => "modify",
            Decision::Serve(..) => "serve",
        }
    }
}

/// Why a filter stopped a request: the rule, a sentence for the event, and how serious.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The rule that matched, e.g. `restricted-device`.
    pub rule: Cow<'static, str>,
    /// A sentence for the event; never a secret.
    pub message: String,
    /// How serious.
    pub severity: Severity,
}

impl Reason {
    /// A reason.
    #[must_use]
    pub fn new(
        rule: impl Into<Cow<'static, str>>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Reason {
        Reason {
            rule: rule.into(),
            message: message.into(),
            severity,
        }
    }
}

/// A response the gateway writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// The status.
    pub status: StatusCode,
    /// Headers to send.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Bytes,
}

impl LocalResponse {
    /// A `text/plain` response.
    #[must_use]
    pub fn text(status: StatusCode, body: impl Into<Bytes>) -> LocalResponse {
        LocalResponse {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            body: body.into(),
        }
    }

    /// A `text/html` response.
    #[must_use]
    pub fn html(status: StatusCode, body: impl Into<Bytes>) -> LocalResponse {
        LocalResponse {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body: body.into(),
        }
    }
}

/// How a client is sent to a notice page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `302 Found` with `Location`; the client asks for the page itself.
    Redirect {
        /// The page's URL or path.
        location: String,
    },
    /// The request is replaced by `GET <path>` to the same upstream (the Servlet
    /// "forward" of the seed paper): the URL in the browser stays, the app renders the
    /// notice. In a response phase this becomes a redirect.
    Forward {
        /// The upstream path of the notice page.
        path: String,
    },
}

/// One header change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modification {
    /// Replace every value of the header with this one.
    SetHeader(HeaderName, HeaderValue),
    /// Add a value.
    AppendHeader(HeaderName, HeaderValue),
    /// Remove the header.
    RemoveHeader(HeaderName),
    /// Replace the request body the upstream gets (request-body phase only, and only when
    /// the body was buffered completely; ignored otherwise). `Content-Length` is set to the
    /// new length and `Transfer-Encoding` dropped. Later filters see the new body.
    ReplaceBody(Bytes),
}

/// Why a filter could not decide. The engine applies the filter's failure policy.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

impl FilterError {
    /// An error with a message saying what went wrong.
    pub fn new(message: impl Into<String>) -> FilterError {
        FilterError(message.into())
    }
}

/// The result of a phase method.
pub type PhaseResult = Result<Decision, FilterError>;

/// A security filter: one kind of check, configured per instance, run in each phase it
/// declares in [`SecurityFilter::phases`]. Implementations live one per file under
/// `filters/` and are registered in [`crate::filters::registry`].
///
/// Every method has a default that continues, so a filter implements only its phases.
/// A method may `.await` (shared state lookups); the engine cuts it at its time budget.
#[async_trait::async_trait]
pub trait SecurityFilter: Send + Sync + 'static {
    /// Which phases to call.
    fn phases(&self) -> Phases;

    /// The request line and headers have arrived.
    async fn on_request_headers(&self, _ctx: &mut FilterContext<'_>) -> PhaseResult {
        Ok(Decision::Continue)
    }

    /// The request body (up to the asked limit) has arrived.
    async fn on_request_body(&self, _ctx: &mut FilterContext<'_>) -> PhaseResult {
        Ok(Decision::Continue)
    }

    /// The upstream's response headers have arrived.
    async fn on_response_headers(&self, _ctx: &mut FilterContext<'_>) -> PhaseResult {
        Ok(Decision::Continue)
    }

    /// The response body (up to the asked limit) has arrived.
    async fn on_response_body(&self, _ctx: &mut FilterContext<'_>) -> PhaseResult {
        Ok(Decision::Continue)
    }

    /// The exchange is decided (the status is known); record what is worth recording.
    async fn on_log(&self, _ctx: &mut FilterContext<'_>) -> Result<(), FilterError> {
        Ok(())
    }
}

/// The time source filters use, so tests can fix the time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Wall-clock time, UTC.
    fn now_utc(&self) -> OffsetDateTime;
    /// Monotonic time for durations.
    fn instant(&self) -> Instant;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// What the engine shares with every filter for the lifetime of a gateway.
#[derive(Clone)]
pub struct FilterServices {
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Shared key-value state (`haetae-bus`), when the deployment has one.
    pub kv: Option<Arc<dyn KvStore>>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The gateway's name in events.
    pub instance: Arc<str>,
}

impl std::fmt::Debug for FilterServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterServices")
            .field("instance", &self.instance)
            .field("kv", &self.kv.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything a filter may use while it runs one phase of one request.
pub struct FilterContext<'a> {
    /// The request (headers as modified by earlier filters, parameters parsed once).
    pub request: &'a RequestView,
    /// The upstream's response, in the response phases.
    pub response: Option<&'a ResponseView>,
    /// What earlier filters learned; this filter may add to it.
    pub attributes: &'a mut Attributes,
    pub(crate) services: &'a FilterServices,
    pub(crate) filter_id: &'a str,
    pub(crate) mode: FilterMode,
    pub(crate) policy_version: u64,
}

impl FilterContext<'_> {
    /// The id of the running filter instance.
    #[must_use]
    pub fn filter_id(&self) -> &str {
        self.filter_id
    }

    /// The instance's mode. In `monitor` the engine does not act on decisions; a filter
    /// rarely needs to know.
    #[must_use]
    pub fn mode(&self) -> FilterMode {
        self.mode
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        &*self.services.clock
    }

    /// Shared key-value state (TTL, compare-and-swap) from `haetae-bus`, when the
    /// deployment has one.
    #[must_use]
    pub fn kv(&self) -> Option<&Arc<dyn KvStore>> {
        self.services.kv.as_ref()
    }

    /// A new gateway event about this request, filled with what is known: the filter,
    /// service, policy version, client address, method, path (never the query), user and
    /// device.
    #[must_use]
    pub fn event(&self, action: impl Into<String>) -> Event {
        request_event(
            action,
            self.request,
            self.attributes,
            &self.services.instance,
            self.policy_version,
        )
        .filter(self.filter_id)
    }

    /// Sends an event; never blocks. `false` when it had to be dropped (and counted).
    pub fn emit(&self, event: Event) -> bool {
        self.services.events.emit(event)
    }
}

/// An event about a request with the fields every gateway event carries.
pub(crate) fn request_event(
    action: impl Into<String>,
    request: &RequestView,
    attributes: &Attributes,
    instance: &str,
    policy_version: u64,
) -> Event {
    let mut e = Event::new(Component::Gateway, action)
        .instance(instance)
        .policy_version(policy_version)
        .source_ip(request.client_ip())
        .http_method(request.method().as_str())
        .url_path(request.path());
    if let Some(service) = request.service() {
        e = e.service_id(service);
    }
    if let Some(user) = &attributes.user_id {
        e = e.user_id(user.as_str());
    }
    if let Some(device) = attributes.device_id() {
        e = e.device_id(device);
    }
    e
}
