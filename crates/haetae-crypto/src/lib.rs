//! Security fundamentals for haetae: the approved cryptography every other part uses, so
//! that no developer picks an algorithm or a key length on their own.
//!
//! - [`registry`] lists every algorithm haetae offers (and the ones it refuses) with family,
//!   security strength and standard; a [`CryptoPolicy`] (KISA guide + NIST SP 800-57/131A:
//!   112-bit strength until 2030, 128-bit after; SHA-1 only inside HMAC/KDF/RNG) decides
//!   whether a choice may be used and, when not, says why and what to use instead.
//! - [`symmetric`]: one interface, [`SymmetricCipher`], for AES (RustCrypto; AES-GCM via
//!   `ring`) and ARIA/SEED/LEA/HIGHT ([`block`], implemented here) in GCM, CCM ([`ccm`]), CTR
//!   and CBC-PKCS#7.
//! - [`hash`] (SHA-2, SHA-3, [`lsh`]), [`mac`] (HMAC, CMAC, GMAC), [`kdf`] (HKDF, PBKDF2,
//!   Argon2id), [`drbg`] (HMAC-DRBG, CTR-DRBG), [`pk`] (RSA-OAEP/PSS, ECDSA, Ed25519, ECDH,
//!   X25519), [`kcdsa`] (EC-KCDSA over P-256), [`kcdsa_prime`] (KCDSA over given domain
//!   parameters) and [`keys`] (key ids, key ring with rotation,
//!   envelope encryption). [`has160`] exists only for HMAC-HAS-160 with legacy peers.
//!
//! ```
//! use haetae_crypto::{CipherSuite, CryptoPolicy, Purpose, SymmetricCipher};
//! use time::macros::date;
//!
//! let policy = CryptoPolicy::kisa(date!(2026 - 11 - 23));
//! let refused = policy.check("AES-128-ECB", Purpose::Encryption).unwrap_err();
//! assert!(refused.to_string().contains("use GCM"));
//!
//! let approved = policy.check("ARIA-256-GCM", Purpose::Encryption).unwrap();
//! let suite = CipherSuite::parse(&approved.name).unwrap();
//! let cipher = SymmetricCipher::new(suite, &[7u8; 32]).unwrap();
//! let sealed = cipher.seal(b"account 1002", b"PIN block").unwrap();
//! assert_eq!(cipher.open(b"account 1002", &sealed).unwrap(), b"PIN block");
//! ```

pub mod block;
pub mod ccm;
pub mod drbg;
pub mod error;
pub mod has160;
pub mod hash;
pub mod kcdsa;
pub mod kcdsa_prime;
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
