//! Message digests: SHA-2 and SHA-3 (RustCrypto `sha2`, `sha3`) and LSH (this crate), behind
//! one [`HashAlgorithm`] and one incremental [`Hasher`]. SHA-1 is deliberately absent here:
//! the policy allows it only inside HMAC, key derivation and DRBGs ([`crate::mac`]).

use sha2::Digest;

use crate::error::CryptoError;
use crate::lsh::{Lsh256, Lsh512};

/// A digest algorithm approved for plain hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-224 (112-bit collision strength: valid until 2030).
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA-512/256.
    Sha512_256,
    /// SHA3-224 (valid until 2030).
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
    /// LSH-256-256 (KS X 3262).
    Lsh256,
    /// LSH-512-512 (KS X 3262).
    Lsh512,
}

impl HashAlgorithm {
    /// Every algorithm.
    pub const ALL: [HashAlgorithm; 11] = [
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha512_256,
        HashAlgorithm::Sha3_224,
        HashAlgorithm::Sha3_256,
        HashAlgorithm::Sha3_384,
        HashAlgorithm::Sha3_512,
        HashAlgorithm::Lsh256,
        HashAlgorithm::Lsh512,
    ];

    /// The registry name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha224 => "SHA-224",
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha384 => "SHA-384",
            HashAlgorithm::Sha512 => "SHA-512",
            HashAlgorithm::Sha512_256 => "SHA-512/256",
            HashAlgorithm::Sha3_224 => "SHA3-224",
            HashAlgorithm::Sha3_256 => "SHA3-256",
            HashAlgorithm::Sha3_384 => "SHA3-384",
            HashAlgorithm::Sha3_512 => "SHA3-512",
            HashAlgorithm::Lsh256 => "LSH-256",
            HashAlgorithm::Lsh512 => "LSH-512",
        }
    }

    /// Looks an algorithm up by its registry name (case and separators are free).
    ///
    /// # Errors
    /// [`CryptoError::Unsupported`], with a pointer to HMAC for SHA-1.
    pub fn parse(name: &str) -> Result<Self, CryptoError> {
        let wanted = crate::registry::normalise(name);
        if let Some(found) = Self::ALL
            .into_iter()
            .find(|a| crate::registry::normalise(a.name()) == wanted)
        {
            return Ok(found);
        }
        let why = if wanted == "sha1" {
            "SHA-1 is allowed only inside HMAC, KDFs and DRBGs, not as a digest; use SHA-256"
        } else {
            "not an approved digest; use SHA-256, SHA-384, SHA3-256 or LSH-256"
        };
        Err(CryptoError::Unsupported {
            name: name.to_owned(),
            why: why.to_owned(),
        })
    }

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha224 | HashAlgorithm::Sha3_224 => 28,
            HashAlgorithm::Sha256
            | HashAlgorithm::Sha512_256
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Lsh256 => 32,
            HashAlgorithm::Sha384 | HashAlgorithm::Sha3_384 => 48,
            HashAlgorithm::Sha512 | HashAlgorithm::Sha3_512 | HashAlgorithm::Lsh512 => 64,
        }
    }
}

/// An incremental digest.
#[derive(Debug, Clone)]
pub enum Hasher {
    /// SHA-224.
    Sha224(sha2::Sha224),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    Sha384(sha2::Sha384),
    /// SHA-512.
    Sha512(sha2::Sha512),
    /// SHA-512/256.
    Sha512_256(sha2::Sha512_256),
    /// SHA3-224.
    Sha3_224(sha3::Sha3_224),
    /// SHA3-256.
    Sha3_256(sha3::Sha3_256),
    /// SHA3-384.
    Sha3_384(sha3::Sha3_384),
    /// SHA3-512.
    Sha3_512(sha3::Sha3_512),
    /// LSH-256-256.
    Lsh256(Lsh256),
    /// LSH-512-512.
    Lsh512(Lsh512),
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            HashAlgorithm::Sha512_256 => Hasher::Sha512_256(sha2::Sha512_256::new()),
            HashAlgorithm::Sha3_224 => Hasher::Sha3_224(sha3::Sha3_224::new()),
            HashAlgorithm::Sha3_256 => Hasher::Sha3_256(sha3::Sha3_256::new()),
            HashAlgorithm::Sha3_384 => Hasher::Sha3_384(sha3::Sha3_384::new()),
            HashAlgorithm::Sha3_512 => Hasher::Sha3_512(sha3::Sha3_512::new()),
            HashAlgorithm::Lsh256 => Hasher::Lsh256(Lsh256::new()),
            HashAlgorithm::Lsh512 => Hasher::Lsh512(Lsh512::new()),
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha512_256(h) => h.update(data),
            Hasher::Sha3_224(h) => h.update(data),
            Hasher::Sha3_256(h) => h.update(data),
            Hasher::Sha3_384(h) => h.update(data),
            Hasher::Sha3_512(h) => h.update(data),
            Hasher::Lsh256(h) => h.update(data),
            Hasher::Lsh512(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Sha512_256(h) => h.finalize().to_vec(),
            Hasher::Sha3_224(h) => h.finalize().to_vec(),
            Hasher::Sha3_256(h) => h.finalize().to_vec(),
            Hasher::Sha3_384(h) => h.finalize().to_vec(),
            Hasher::Sha3_512(h) => h.finalize().to_vec(),
            Hasher::Lsh256(h) => h.finalize(),
            Hasher::Lsh512(h) => h.finalize(),
        }
    }
}

/// The digest of `data` in one call.
pub fn digest(algorithm: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(data);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_outputs_its_declared_length() {
        for alg in HashAlgorithm::ALL {
            assert_eq!(digest(alg, b"x").len(), alg.output_len(), "{}", alg.name());
        }
    }

    #[test]
    fn sha1_is_not_a_digest_and_the_error_points_to_hmac() {
        let err = HashAlgorithm::parse("SHA-1").unwrap_err();
        assert!(err.to_string().contains("inside HMAC"), "{err}");
        assert_eq!(
            HashAlgorithm::parse("sha512/256").unwrap(),
            HashAlgorithm::Sha512_256
        );
    }
}
