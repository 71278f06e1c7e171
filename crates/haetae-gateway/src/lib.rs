//! The haetae security filter engine: a reverse proxy in front of a bank's services that
//! runs, for every request, the ordered security filters mapped to the request's service,
//! without touching the application.
//!
//! A [`Gateway`] is built from the `[gateway]` settings, an [`EventSink`] and a
//! [`FilterRegistry`]; [`Gateway::apply_policy`] swaps in the routing table built from a
//! [`haetae_core::PolicySnapshot`] (in-flight requests finish on the old one);
//! [`Gateway::start`] serves traffic and the admin endpoints. Filters implement
//! [`SecurityFilter`] (phase methods, see [`filter`] for the order) and are isolated:
//! panics, errors and overruns follow each instance's failure policy, and a circuit breaker
//! stops a filter that keeps failing.
//!
//! ```
//! use std::sync::Arc;
//! use haetae_core::{config::GatewayConfig, PolicySnapshot};
//! use haetae_gateway::{FilterRegistry, Gateway, LogEventSink};
//!
//! let policy = PolicySnapshot::from_toml(r#"
//!     version = 1
//!     [[services]]
//!     id = "all"
//!     upstream = "http://127.0.0.1:9000"
//!     [[filters]]
//!     id = "device"
//!     kind = "device-info"
//!     [[filters]]
//!     id = "restrict"
//!     kind = "restrict"
//!     config = { devices = ["BLOCKED-DEVICE-1"], notice_path = "/notice" }
//!     [[mappings]]
//!     service = "all"
//!     filters = ["device", "restrict"]
//! "#).unwrap();
//! let gateway = Gateway::new(&GatewayConfig::default(), Arc::new(LogEventSink::default()),
//!     FilterRegistry::standard()).unwrap();
//! gateway.apply_policy(&policy).unwrap();
//! assert_eq!(gateway.policy_version(), 1);
//! ```

pub mod bus;
pub mod chain;
pub mod filter;
pub mod filters;
pub mod gateway;
mod h1;
pub mod isolation;
pub mod metrics;
pub mod policy_source;
mod pool;
pub mod proxy;
pub mod request;
pub mod routing;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use bus::{EventSink, EventTee, LogEventSink, watch_bus_policy, watch_bus_policy_with};
pub use chain::{FilterChain, Phase};
pub use filter::{
    Clock, Decision, FilterContext, FilterError, LocalResponse, Modification, Notice, PhaseResult,
    Phases, Reason, SecurityFilter, SystemClock,
};
pub use filters::{ConfigProblem, FilterRegistry};
pub use gateway::{FilterState, Gateway, GatewayError, Health, RunningGateway};
pub use policy_source::{
    LastGoodPolicy, ModuleTrust, apply_and_keep, prepare_and_apply, read_policy_file,
    watch_policy_file,
};
pub use request::{Attributes, BodyView, Device, Params, RequestView, ResponseView, TlsInfo};
pub use routing::{RoutingTable, Upstream, UpstreamProtocol};
