//! Key derivation and password storage: HKDF (RFC 5869) and PBKDF2 (RFC 8018) from
//! RustCrypto over SHA-2, and Argon2id (RFC 9106) for stored passwords in the PHC string
//! format. Derived keys come back in `Zeroizing` buffers.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use zeroize::Zeroizing;

use crate::error::{CryptoError, os_random};

/// The hash inside HKDF or PBKDF2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KdfHash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl KdfHash {
    fn output_len(self) -> usize {
        match self {
            KdfHash::Sha256 => 32,
            KdfHash::Sha384 => 48,
            KdfHash::Sha512 => 64,
        }
    }
}

/// HKDF extract-and-expand: `len` bytes of key material from `ikm`.
///
/// # Errors
/// [`CryptoError::Parameter`] when `len` exceeds 255 hash lengths.
pub fn hkdf(
    hash: KdfHash,
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut okm = Zeroizing::new(vec![0u8; len]);
    let result = match hash {
        KdfHash::Sha256 => hkdf::Hkdf::<sha2::Sha256>::new(salt, ikm).expand(info, &mut okm),
        KdfHash::Sha384 => hkdf::Hkdf::<sha2::Sha384>::new(salt, ikm).expand(info, &mut okm),
        KdfHash::Sha512 => hkdf::Hkdf::<sha2::Sha512>::new(salt, ikm).expand(info, &mut okm),
    };
    result.map_err(|_| CryptoError::Parameter {
        algorithm: "HKDF".to_owned(),
        message: format!(
            "asked for {len} bytes; at most {} with this hash",
            255 * hash.output_len()
        ),
    })?;
    Ok(okm)
}

/// The PBKDF2 iteration count haetae uses for passwords (OWASP 2023 for HMAC-SHA-256).
pub const PBKDF2_PASSWORD_ITERATIONS: u32 = 600_000;
/// The fewest iterations PBKDF2 accepts at all (NIST SP 800-132).
pub const PBKDF2_MIN_ITERATIONS: u32 = 1_000;

/// PBKDF2-HMAC: `len` bytes from `password` and `salt` (at least 16 bytes, SP 800-132).
/// For stored passwords prefer [`PasswordHashing`]; when PBKDF2 is required use
/// [`PBKDF2_PASSWORD_ITERATIONS`].
///
/// # Errors
/// [`CryptoError::Parameter`] for fewer than 1,000 iterations, a short salt or `len` 0.
pub fn pbkdf2(
    hash: KdfHash,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let refuse = |message: String| CryptoError::Parameter {
        algorithm: "PBKDF2".to_owned(),
        message,
    };
    if iterations < PBKDF2_MIN_ITERATIONS {
        return Err(refuse(format!(
            "{iterations} iterations is below the minimum of {PBKDF2_MIN_ITERATIONS}; for passwords use {PBKDF2_PASSWORD_ITERATIONS}"
        )));
    }
    if salt.len() < 16 {
        return Err(refuse(format!(
            "a {}-byte salt is too short; use 16 random bytes or more",
            salt.len()
        )));
    }
    if len == 0 {
        return Err(refuse(
            "the output length must be at least 1 byte".to_owned(),
        ));
    }
    Ok(pbkdf2_unchecked(hash, password, salt, iterations, len))
}

/// PBKDF2 without the parameter floor, for known-answer tests against published vectors.
#[doc(hidden)]
pub fn pbkdf2_unchecked(
    hash: KdfHash,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    match hash {
        KdfHash::Sha256 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
        }
        KdfHash::Sha384 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha384>(password, salt, iterations, &mut out);
        }
        KdfHash::Sha512 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, &mut out);
        }
    }
    out
}

/// Argon2id password storage: hashes to a PHC string (`$argon2id$v=19$m=...`) with a fresh
/// 16-byte salt from the OS, and verifies a password against one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHashing {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for PasswordHashing {
    /// OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        PasswordHashing {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordHashing {
    fn argon2(&self) -> Result<argon2::Argon2<'static>, CryptoError> {
        let params = argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| CryptoError::Parameter {
                algorithm: "Argon2id".to_owned(),
                message: e.to_string(),
            })?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    /// Hashes `password` into a PHC string to store.
    ///
    /// # Errors
    /// Bad parameters or an OS random failure.
    pub fn hash(&self, password: &[u8]) -> Result<String, CryptoError> {
        let mut salt = [0u8; 16];
        os_random(&mut salt)?;
        let hash = self
            .argon2()?
            .hash_password_with_salt(password, &salt)
            .map_err(|e| CryptoError::Parameter {
                algorithm: "Argon2id".to_owned(),
                message: e.to_string(),
            })?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches the stored PHC string (its own parameters are used).
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] when `stored` is not an Argon2 PHC string.
    pub fn verify(&self, password: &[u8], stored: &str) -> Result<bool, CryptoError> {
        let parsed = argon2::password_hash::phc::PasswordHash::new(stored).map_err(|e| {
            CryptoError::Encoding {
                what: "stored password hash".to_owned(),
                message: format!("not a PHC string ({e})"),
            }
        })?;
        Ok(argon2::Argon2::default()
            .verify_password(password, &parsed)
            .is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHashing {
        PasswordHashing {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn a_stored_password_verifies_and_a_wrong_one_does_not() {
        let stored = cheap().hash(b"correct horse").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored}"
        );
        assert!(cheap().verify(b"correct horse", &stored).unwrap());
        assert!(!cheap().verify(b"Correct horse", &stored).unwrap());
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_their_salt() {
        assert_ne!(cheap().hash(b"pw").unwrap(), cheap().hash(b"pw").unwrap());
    }

    #[test]
    fn a_malformed_stored_hash_is_an_encoding_error() {
        assert!(matches!(
            cheap().verify(b"pw", "plaintext-password"),
            Err(CryptoError::Encoding { .. })
        ));
    }

    #[test]
    fn pbkdf2_refuses_few_iterations_and_short_salts() {
        let err = pbkdf2(KdfHash::Sha256, b"pw", &[0; 16], 999, 32).unwrap_err();
        assert!(err.to_string().contains("600000"), "{err}");
        assert!(pbkdf2(KdfHash::Sha256, b"pw", &[0; 8], 1000, 32).is_err());
    }

    #[test]
    fn hkdf_refuses_more_than_255_blocks() {
        assert!(hkdf(KdfHash::Sha256, None, b"k", b"", 255 * 32).is_ok());
        assert!(hkdf(KdfHash::Sha256, None, b"k", b"", 255 * 32 + 1).is_err());
    }
}
