//! The shared vocabulary of haetae.
//!
//! Every other crate speaks in these types: one structured security [`Event`] shaped after
//! Elastic ECS, the [`Severity`] and [`Verdict`] scales, the policy model that the Control
//! Center publishes and the gateway runs ([`PolicySnapshot`] with its [`Service`]s,
//! [`FilterInstance`]s and [`Mapping`]s), and the typed [`Config`] of a deployment.
//! This crate does no I/O: callers read files and sockets and hand the bytes here.
//!
//! ```
//! use haetae_core::{Component, Event, Severity};
//!
//! let event = Event::new(Component::Gateway, "restrict.block")
//!     .severity(Severity::High)
//!     .user_id("blocked-user")
//!     .device_id("BLOCKED-DEVICE-1");
//! let json = event.to_json();
//! assert_eq!(Event::from_json(&json).unwrap(), event);
//! ```

pub mod agent_ticket;
pub mod config;
pub mod event;
pub mod policy;
pub mod severity;

pub use config::{
    BusBackend, Config, ConfigError, Loaded, LogFormat, TrustedKey, WasmDeployConfig,
};
pub use event::{Component, Event, EventCategory, EventKind, Outcome};
pub use policy::{
    FailurePolicy, FilterInstance, FilterMode, ListKind, Mapping, PolicyList, PolicySnapshot,
    RouteMatch, Service, TransactionMatch, ValidationError, ValidationErrors, WasmModuleRef,
};
pub use severity::{Severity, Verdict};
