//! The one error type of the cryptographic operations. Messages name the algorithm and the
//! expected value; decryption failures never say which check failed (no padding oracle).

use crate::policy::PolicyError;

/// What went wrong in a cryptographic operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A key of the wrong length.
    #[error("{algorithm} needs a {expected}-byte key, got {got} bytes")]
    KeyLength {
        /// The algorithm.
        algorithm: String,
        /// The length it needs, in bytes.
        expected: String,
        /// The length given.
        got: usize,
    },
    /// A nonce or IV of the wrong length.
    #[error("{suite} needs a {expected}-byte nonce/IV, got {got} bytes")]
    NonceLength {
        /// The cipher suite.
        suite: String,
        /// The length it needs.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// Authentication or padding failed: wrong key, nonce or associated data, or the data
    /// was altered. Deliberately says no more.
    #[error(
        "decryption failed: the data was altered, or the key, nonce or associated data differ from encryption"
    )]
    DecryptionFailed,
    /// Associated data given to a mode that cannot authenticate it.
    #[error(
        "{suite} does not authenticate data, so it cannot take associated data; use a GCM suite (e.g. ARIA-256-GCM)"
    )]
    NotAuthenticated {
        /// The cipher suite.
        suite: String,
    },
    /// A name that is not a suite or algorithm this crate implements.
    #[error("{name:?} is not supported: {why}")]
    Unsupported {
        /// The name given.
        name: String,
        /// Why, and what to use.
        why: String,
    },
    /// The input is larger than the algorithm allows.
    #[error("{algorithm}: input too long ({len} bytes; at most {max})")]
    TooLong {
        /// The algorithm.
        algorithm: String,
        /// The length given.
        len: usize,
        /// The most allowed.
        max: u64,
    },
    /// A parameter outside its allowed range (iterations, output length, key size).
    #[error("{algorithm}: {message}")]
    Parameter {
        /// The algorithm.
        algorithm: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Entropy(String),
    /// A key, signature or encoding that does not parse.
    #[error("{what}: {message}")]
    Encoding {
        /// What was being read.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// A signature that does not verify.
    #[error("{algorithm}: signature does not verify")]
    BadSignature {
        /// The algorithm.
        algorithm: String,
    },
    /// A key could not be loaded from its file or environment variable (the message never
    /// contains key material).
    #[error("master key from {source_name}: {message}")]
    KeySource {
        /// The file path or variable name.
        source_name: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A key id that the key ring does not hold.
    #[error(
        "key {id:?} is not in the key ring (retired, or data from another deployment); keep retired keys until their data is re-encrypted"
    )]
    UnknownKey {
        /// The key id found in the data.
        id: String,
    },
    /// Refused by the policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Fills `buf` from the operating system's random source.
///
/// # Errors
/// [`CryptoError::Entropy`] when the OS source fails.
pub fn os_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Entropy(e.to_string()))
}
