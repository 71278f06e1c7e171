//! The haetae Security Control Center: where the security team governs every gateway.
//!
//! It stores security events and policy in SQLite (embedded) or PostgreSQL (distributed),
//! keeps local users with roles and an append-only, hash-chained audit log, serves a REST API
//! under `/api/v1` with its OpenAPI document, and a server-rendered web UI in Korean and
//! English.
//!
//! ```
//! use haetae_control::auth::{Permission, Role};
//!
//! assert!(Role::SecurityOfficer.allows(Permission::EditPolicy));
//! assert!(!Role::Auditor.allows(Permission::EditPolicy));
//! ```

pub mod alerts;
pub mod auth;
pub mod store;
pub mod totp;

pub use store::{Backend, Store, StoreError};
pub mod center;
pub mod demo;
pub mod http;
pub mod ingest;
pub mod policy;
pub mod qr;
pub mod recording;
pub mod remote;
pub mod ui;
pub mod wasm;

pub use center::{
    ControlCenter, ControlHandle, ControlOptions, InitialAdmin, RelayHandoff, StartError,
};
