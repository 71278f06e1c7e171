//! Security fundamentals for haetae: the approved cryptography every other part uses.
//!
//! The [`registry`] lists every algorithm haetae offers with its family, security strength and
//! standard; a [`CryptoPolicy`] (KISA guide + NIST SP 800-57/131A: 112-bit strength until
//! 2030, 128-bit after) decides whether a choice may be used and, when not, says why and
//! what to use instead.
//!
//! ```
//! use haetae_crypto::{CryptoPolicy, Purpose};
//! use time::macros::date;
//!
//! let policy = CryptoPolicy::kisa(date!(2026 - 11 - 23));
//! assert!(policy.check("ARIA-256-GCM", Purpose::Encryption).is_ok());
//! let refused = policy.check("AES-128-ECB", Purpose::Encryption).unwrap_err();
//! assert!(refused.to_string().contains("use GCM"));
//! ```

pub mod block;
pub mod drbg;
pub mod error;
pub mod hash;
pub mod kdf;
pub mod keys;
pub mod lsh;
pub mod mac;
pub mod pk;
pub mod policy;
pub mod registry;
pub mod symmetric;

pub use error::CryptoError;
pub use keys::{KeyId, KeyRing, MasterKeySource, SecretKey};
pub use policy::{Approval, CryptoPolicy, DeploymentChoices, PolicyError, Purpose};
pub use registry::{AlgorithmInfo, Family, Origin, Restriction};
pub use symmetric::{BlockCipherKind, CipherSuite, Mode, SymmetricCipher};
