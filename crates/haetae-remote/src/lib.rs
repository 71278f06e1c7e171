//! Remote support for haetae: a bank's agent helps a customer whose browser is enough, over
//! a relay that pairs them by a one-time code and never sees what they exchange.
//!
//! - [`protocol`]: the typed wire messages (relay, key agreement, sealed application
//!   messages) over the bounded, versioned [`codec`]; decoding never panics.
//! - [`channel`]: the end-to-end channel of `remote-e2e.md`: X25519 with a hash commitment,
//!   a 6-digit short authentication string the two people compare, HKDF-SHA-256 and
//!   per-direction AES-256-GCM with sequence numbers; any failure closes it for good.
//! - [`session`]: the rules over the channel: who may send what, control only while the
//!   customer grants it, files only after the receiver's consent and with a matching SHA-256.
//! - [`policy`]: the session policy (grade, features, agent, session, expiry) the Control
//!   Center signs with Ed25519 and the customer's side checks, so the grade holds end to end.
//! - [`codes`] (feature `net`): one-time 6-9 digit access codes in the shared `haetae-bus`
//!   KV with per-code and per-address attempt limits.
//! - [`registry`] (feature `net`): the paired sessions in the same KV, with single-use,
//!   hashed resume tokens, so that another relay can take a session over.
//! - [`relay`] and [`client`] (feature `net`): the WebSocket relay and a Rust client of it;
//!   [`client::SupportLink`] survives the loss of a relay (reconnect, resume, re-key,
//!   retransmission of unacknowledged messages).
//!
//! ```
//! use haetae_remote::channel::{AgentHandshake, CustomerHandshake};
//! use haetae_remote::protocol::{AppMessage, SessionId};
//! use haetae_remote::session::{Session, SessionPolicy};
//!
//! let sid = SessionId([1; 16]);
//! let (customer, commit) = CustomerHandshake::start(sid).unwrap();
//! let mut agent = AgentHandshake::start(sid).unwrap();
//! let reveal = agent.on_commit(&commit).unwrap();
//! let (customer_key, customer) = customer.on_agent_key(&reveal).unwrap();
//! let agent = agent.on_customer_key(&customer_key).unwrap();
//! assert_eq!(agent.sas(), customer.sas());
//! let (agent, confirmation) = agent.confirm_sas().unwrap();
//! let customer = customer.on_confirmation(&confirmation).unwrap();
//!
//! let mut agent = Session::new(agent, SessionPolicy::indirect());
//! let mut customer = Session::new(customer, SessionPolicy::indirect());
//! // An indirect-grade agent cannot ask for control; the customer's side refuses it too.
//! assert!(agent.send(&AppMessage::ControlRequest).is_err());
//! let frame = agent.send(&AppMessage::UrlPush { url: "https://bank.example/".into() }).unwrap();
//! assert!(customer.receive(&frame).is_ok());
//! ```
#![forbid(unsafe_code)]

pub mod channel;
pub mod codec;
pub mod policy;
pub mod protocol;
pub mod session;

#[cfg(feature = "net")]
pub mod client;
#[cfg(feature = "net")]
pub mod codes;
#[cfg(feature = "net")]
pub mod registry;
#[cfg(feature = "net")]
pub mod relay;
