//! Public-key cryptography from RustCrypto: RSA-OAEP and RSA-PSS (SHA-256, at least 2048
//! bits, 3072 by default), ECDSA over P-256 and P-384 (deterministic nonces, RFC 6979),
//! Ed25519, ECDH over P-256 and X25519. Private keys zeroize on drop and their `Debug`
//! shows no key bytes.

use std::fmt;

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use crate::error::{CryptoError, os_random};

/// The operating system's generator as an infallible `CryptoRng`. Every key generation
/// first draws from the OS through [`os_random`] so an unavailable source is reported as
/// [`CryptoError::Entropy`] before this is used.
fn os_rng() -> Result<rand_core::UnwrapErr<getrandom::SysRng>, CryptoError> {
    let mut probe = [0u8; 1];
    os_random(&mut probe)?;
    Ok(rand_core::UnwrapErr(getrandom::SysRng))
}

/// Draws `len` OS random bytes until `accept` takes them as a scalar (rejection sampling;
/// a retry happens with probability below 2^-32 on these curves).
fn random_scalar<T>(len: usize, accept: impl Fn(&[u8]) -> Option<T>) -> Result<T, CryptoError> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    loop {
        os_random(&mut bytes)?;
        if let Some(value) = accept(&bytes) {
            return Ok(value);
        }
    }
}

fn encoding(what: &str, e: impl fmt::Display) -> CryptoError {
    CryptoError::Encoding {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

fn bad_signature(algorithm: &str) -> CryptoError {
    CryptoError::BadSignature {
        algorithm: algorithm.to_owned(),
    }
}

/// The smallest RSA modulus haetae accepts (112-bit strength, valid until 2030).
pub const RSA_MIN_BITS: usize = 2048;
/// The RSA modulus haetae generates by default (128-bit strength).
pub const RSA_DEFAULT_BITS: usize = 3072;
/// The largest RSA modulus haetae accepts (bounds the cost of hostile keys).
pub const RSA_MAX_BITS: usize = 8192;

fn check_rsa_bits(bits: usize) -> Result<(), CryptoError> {
    if bits < RSA_MIN_BITS {
        return Err(CryptoError::Policy(crate::policy::PolicyError::Refused {
            name: format!("RSA-{bits}"),
            why: "an RSA modulus below 2048 bits gives less than 112-bit strength (KISA guide, NIST SP 800-131A)",
            instead: "RSA-3072 (the default) or ECDSA-P256",
        }));
    }
    if bits > RSA_MAX_BITS {
        return Err(CryptoError::Parameter {
            algorithm: "RSA".to_owned(),
            message: format!("{bits}-bit modulus is above the {RSA_MAX_BITS}-bit limit"),
        });
    }
    Ok(())
}

/// An RSA private key for OAEP decryption and PSS signing (SHA-256 in both).
pub struct RsaKeyPair {
    key: rsa::RsaPrivateKey,
}

impl fmt::Debug for RsaKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaKeyPair {{ bits: {}, .. }}", self.bits())
    }
}

impl RsaKeyPair {
    /// Generates a key of `bits` (2048..=8192; use [`RSA_DEFAULT_BITS`]).
    ///
    /// # Errors
    /// A modulus outside the allowed range, or an OS random failure.
    pub fn generate(bits: usize) -> Result<Self, CryptoError> {
        check_rsa_bits(bits)?;
        let key = rsa::RsaPrivateKey::new(&mut os_rng()?, bits)
            .map_err(|e| encoding("RSA key generation", e))?;
        Ok(RsaKeyPair { key })
    }

    /// Reads a PKCS#8 DER private key, refusing moduli under 2048 bits.
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] or the policy refusal.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = rsa::RsaPrivateKey::from_pkcs8_der(der)
            .map_err(|e| encoding("RSA private key (PKCS#8 DER)", e))?;
        check_rsa_bits(key.n().bits() as usize)?;
        Ok(RsaKeyPair { key })
    }

    /// The PKCS#8 DER encoding, in a buffer zeroized on drop.
    ///
    /// # Errors
    /// [`CryptoError::Encoding`].
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let doc = self
            .key
            .to_pkcs8_der()
            .map_err(|e| encoding("RSA private key", e))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bits() as usize
    }

    /// The public half.
    pub fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey {
            key: self.key.to_public_key(),
        }
    }

    /// Decrypts an RSA-OAEP (SHA-256) ciphertext, with blinding.
    ///
    /// # Errors
    /// [`CryptoError::DecryptionFailed`] for any invalid ciphertext.
    pub fn decrypt_oaep(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.key
            .decrypt_blinded(&mut os_rng()?, rsa::Oaep::<sha2::Sha256>::new(), ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::DecryptionFailed)
    }

    /// Signs `message` with RSA-PSS (SHA-256, salt as long as the hash).
    ///
    /// # Errors
    /// An OS random failure or an internal signing error.
    pub fn sign_pss(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let signer = rsa::pss::SigningKey::<sha2::Sha256>::new(self.key.clone());
        let signature = signer
            .try_sign_with_rng(&mut os_rng()?, message)
            .map_err(|e| encoding("RSA-PSS signing", e))?;
        Ok(signature.to_vec())
    }
}

/// An RSA public key for OAEP encryption and PSS verification.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    key: rsa::RsaPublicKey,
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey {{ bits: {} }}", self.key.n().bits())
    }
}

impl RsaPublicKey {
    /// Reads a DER `SubjectPublicKeyInfo`, refusing moduli under 2048 bits.
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] or the policy refusal.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = rsa::RsaPublicKey::from_public_key_der(der)
            .map_err(|e| encoding("RSA public key (SPKI DER)", e))?;
        check_rsa_bits(key.n().bits() as usize)?;
        Ok(RsaPublicKey { key })
    }

    /// The DER `SubjectPublicKeyInfo`.
    ///
    /// # Errors
    /// [`CryptoError::Encoding`].
    pub fn to_spki_der(&self) -> Result<Vec<u8>, CryptoError> {
        let doc = self
            .key
            .to_public_key_der()
            .map_err(|e| encoding("RSA public key", e))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// Encrypts a short message (a key, at most `bytes - 66`) with RSA-OAEP (SHA-256).
    ///
    /// # Errors
    /// Message too long, or an OS random failure.
    pub fn encrypt_oaep(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let max = self.key.size().saturating_sub(66);
        if message.len() > max {
            return Err(CryptoError::TooLong {
                algorithm: "RSA-OAEP".to_owned(),
                len: message.len(),
                max: max as u64,
            });
        }
        self.key
            .encrypt(&mut os_rng()?, rsa::Oaep::<sha2::Sha256>::new(), message)
            .map_err(|e| encoding("RSA-OAEP encryption", e))
    }

    /// Verifies an RSA-PSS (SHA-256) signature.
    ///
    /// # Errors
    /// [`CryptoError::BadSignature`].
    pub fn verify_pss(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let signature =
            rsa::pss::Signature::try_from(signature).map_err(|_| bad_signature("RSA-PSS"))?;
        rsa::pss::VerifyingKey::<sha2::Sha256>::new(self.key.clone())
            .verify(message, &signature)
            .map_err(|_| bad_signature("RSA-PSS"))
    }
}

/// An elliptic curve for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcdsaCurve {
    /// NIST P-256 with SHA-256.
    P256,
    /// NIST P-384 with SHA-384.
    P384,
}

enum EcdsaSecret {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// An ECDSA signing key (deterministic signatures, RFC 6979; `r || s` encoding).
pub struct EcdsaKeyPair {
    secret: EcdsaSecret,
}

impl fmt::Debug for EcdsaKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcdsaKeyPair {{ curve: {:?}, .. }}", self.curve())
    }
}

impl EcdsaKeyPair {
    /// Generates a key on `curve`.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn generate(curve: EcdsaCurve) -> Result<Self, CryptoError> {
        let len = match curve {
            EcdsaCurve::P256 => 32,
            EcdsaCurve::P384 => 48,
        };
        random_scalar(len, |bytes| Self::from_scalar(curve, bytes).ok())
    }

    /// A key from its scalar (32 bytes for P-256, 48 for P-384).
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] for a wrong length or an out-of-range scalar.
    pub fn from_scalar(curve: EcdsaCurve, scalar: &[u8]) -> Result<Self, CryptoError> {
        let secret = match curve {
            EcdsaCurve::P256 => EcdsaSecret::P256(
                p256::ecdsa::SigningKey::from_slice(scalar)
                    .map_err(|e| encoding("P-256 private scalar", e))?,
            ),
            EcdsaCurve::P384 => EcdsaSecret::P384(
                p384::ecdsa::SigningKey::from_slice(scalar)
                    .map_err(|e| encoding("P-384 private scalar", e))?,
            ),
        };
        Ok(EcdsaKeyPair { secret })
    }

    /// The curve.
    pub fn curve(&self) -> EcdsaCurve {
        match self.secret {
            EcdsaSecret::P256(_) => EcdsaCurve::P256,
            EcdsaSecret::P384(_) => EcdsaCurve::P384,
        }
    }

    /// The public key as an uncompressed SEC1 point.
    pub fn public_key_sec1(&self) -> Vec<u8> {
        match &self.secret {
            EcdsaSecret::P256(k) => k.verifying_key().to_sec1_bytes().to_vec(),
            EcdsaSecret::P384(k) => k.verifying_key().to_sec1_bytes().to_vec(),
        }
    }

    /// Signs `message` (hashed with SHA-256 or SHA-384 by curve); `r || s`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.secret {
            EcdsaSecret::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
            EcdsaSecret::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
        }
    }
}

/// Verifies an ECDSA `r || s` signature under a SEC1 public key.
///
/// # Errors
/// [`CryptoError::Encoding`] for a bad key, [`CryptoError::BadSignature`] otherwise.
pub fn ecdsa_verify(
    curve: EcdsaCurve,
    public_sec1: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    match curve {
        EcdsaCurve::P256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_sec1)
                .map_err(|e| encoding("P-256 public key", e))?;
            let sig = p256::ecdsa::Signature::from_slice(signature)
                .map_err(|_| bad_signature("ECDSA-P256"))?;
            key.verify(message, &sig)
                .map_err(|_| bad_signature("ECDSA-P256"))
        }
        EcdsaCurve::P384 => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_sec1)
                .map_err(|e| encoding("P-384 public key", e))?;
            let sig = p384::ecdsa::Signature::from_slice(signature)
                .map_err(|_| bad_signature("ECDSA-P384"))?;
            key.verify(message, &sig)
                .map_err(|_| bad_signature("ECDSA-P384"))
        }
    }
}

/// An Ed25519 signing key (RFC 8032).
pub struct Ed25519KeyPair {
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for Ed25519KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519KeyPair { .. }")
    }
}

impl Ed25519KeyPair {
    /// Generates a key.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn generate() -> Result<Self, CryptoError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        os_random(seed.as_mut())?;
        Ok(Self::from_seed(&seed))
    }

    /// The key whose 32-byte seed (RFC 8032 "secret key") is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Ed25519KeyPair {
            key: ed25519_dalek::SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The 64-byte signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// Verifies an Ed25519 signature (strict: rejects non-canonical and small-order inputs).
///
/// # Errors
/// [`CryptoError::Encoding`] for a bad key, [`CryptoError::BadSignature`] otherwise.
pub fn ed25519_verify(public: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let public: [u8; 32] = public
        .try_into()
        .map_err(|_| encoding("Ed25519 public key", "must be 32 bytes"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|e| encoding("Ed25519 public key", e))?;
    let signature =
        ed25519_dalek::Signature::from_slice(signature).map_err(|_| bad_signature("Ed25519"))?;
    key.verify_strict(message, &signature)
        .map_err(|_| bad_signature("Ed25519"))
}

/// An X25519 private key (RFC 7748).
pub struct X25519Secret {
    secret: x25519_dalek::StaticSecret,
}

impl fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X25519Secret { .. }")
    }
}

impl X25519Secret {
    /// Generates a key.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        os_random(bytes.as_mut())?;
        Ok(Self::from_bytes(*bytes))
    }

    /// The key with scalar `bytes` (clamped as RFC 7748 says).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        X25519Secret {
            secret: x25519_dalek::StaticSecret::from(bytes),
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.secret).to_bytes()
    }

    /// The shared secret with `peer`; refuses small-order peers (an all-zero result).
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] for a small-order peer key.
    pub fn agree(&self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
        if !shared.was_contributory() {
            return Err(encoding(
                "X25519 peer key",
                "small-order point (the shared secret would be all zeros)",
            ));
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

/// An ECDH private key on P-256 (NIST SP 800-56A).
pub struct EcdhP256Secret {
    secret: p256::SecretKey,
}

impl fmt::Debug for EcdhP256Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EcdhP256Secret { .. }")
    }
}

impl EcdhP256Secret {
    /// Generates a key.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn generate() -> Result<Self, CryptoError> {
        random_scalar(32, |bytes| {
            p256::SecretKey::from_slice(bytes)
                .ok()
                .map(|secret| EcdhP256Secret { secret })
        })
    }

    /// A key from its private scalar (32 bytes, big-endian, in `[1, n-1]`), for static keys
    /// kept by the caller.
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] for a wrong length or an out-of-range scalar.
    pub fn from_scalar(scalar: &[u8]) -> Result<Self, CryptoError> {
        if scalar.len() != 32 {
            return Err(encoding(
                "P-256 private scalar",
                format!("must be 32 bytes, got {}", scalar.len()),
            ));
        }
        p256::SecretKey::from_slice(scalar)
            .map(|secret| EcdhP256Secret { secret })
            .map_err(|e| encoding("P-256 private scalar", e))
    }

    /// The public key as an uncompressed SEC1 point.
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.secret.public_key().to_sec1_bytes().to_vec()
    }

    /// The shared secret (the x coordinate) with a SEC1-encoded peer key, which is checked
    /// to lie on the curve.
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] for an invalid peer key.
    pub fn agree(&self, peer_sec1: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let peer = p256::PublicKey::from_sec1_bytes(peer_sec1)
            .map_err(|e| encoding("P-256 peer public key", e))?;
        let shared = elliptic_curve_dh(&self.secret, &peer);
        Ok(shared)
    }
}

fn elliptic_curve_dh(secret: &p256::SecretKey, peer: &p256::PublicKey) -> Zeroizing<Vec<u8>> {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
    Zeroizing::new(shared.raw_secret_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_keys_under_2048_bits_are_refused_with_the_policy_reason() {
        let err = RsaKeyPair::generate(1024).unwrap_err();
        assert!(err.to_string().contains("RSA-1024 is refused"), "{err}");
        assert!(err.to_string().contains("RSA-3072"), "{err}");
    }

    #[test]
    fn rsa_oaep_and_pss_round_trip_and_reject_tampering() {
        let key = RsaKeyPair::generate(RSA_MIN_BITS).unwrap();
        let public = RsaPublicKey::from_spki_der(&key.public_key().to_spki_der().unwrap()).unwrap();
        let ct = public.encrypt_oaep(b"data key").unwrap();
        assert_eq!(key.decrypt_oaep(&ct).unwrap().as_slice(), b"data key");
        let mut bad = ct.clone();
        bad[10] ^= 1;
        assert_eq!(key.decrypt_oaep(&bad), Err(CryptoError::DecryptionFailed));
        let sig = key.sign_pss(b"approve").unwrap();
        assert!(public.verify_pss(b"approve", &sig).is_ok());
        assert!(public.verify_pss(b"approvE", &sig).is_err());
        assert!(public.verify_pss(b"approve", &sig[1..]).is_err());
        let again = RsaKeyPair::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(again.bits(), 2048);
        assert!(public.encrypt_oaep(&[0; 250]).is_err());
    }

    #[test]
    fn private_key_debug_output_shows_no_key_material() {
        let ed = Ed25519KeyPair::from_seed(&[0xAB; 32]);
        assert_eq!(format!("{ed:?}"), "Ed25519KeyPair { .. }");
        let ec = EcdsaKeyPair::from_scalar(EcdsaCurve::P256, &[0x11; 32]).unwrap();
        assert_eq!(format!("{ec:?}"), "EcdsaKeyPair { curve: P256, .. }");
        let x = X25519Secret::from_bytes([0x22; 32]);
        assert_eq!(format!("{x:?}"), "X25519Secret { .. }");
    }

    #[test]
    fn ecdsa_signatures_verify_and_a_changed_message_does_not() {
        for curve in [EcdsaCurve::P256, EcdsaCurve::P384] {
            let key = EcdsaKeyPair::generate(curve).unwrap();
            let sig = key.sign(b"transfer 100");
            let public = key.public_key_sec1();
            assert!(ecdsa_verify(curve, &public, b"transfer 100", &sig).is_ok());
            assert!(ecdsa_verify(curve, &public, b"transfer 900", &sig).is_err());
        }
    }

    #[test]
    fn ecdh_p256_and_x25519_agree_on_one_secret() {
        let (a, b) = (
            EcdhP256Secret::generate().unwrap(),
            EcdhP256Secret::generate().unwrap(),
        );
        assert_eq!(
            *a.agree(&b.public_key_sec1()).unwrap(),
            *b.agree(&a.public_key_sec1()).unwrap()
        );
        let (a, b) = (
            X25519Secret::generate().unwrap(),
            X25519Secret::generate().unwrap(),
        );
        assert_eq!(
            *a.agree(&b.public_key()).unwrap(),
            *b.agree(&a.public_key()).unwrap()
        );
    }

    #[test]
    fn x25519_refuses_a_small_order_peer() {
        let a = X25519Secret::generate().unwrap();
        assert!(a.agree(&[0; 32]).is_err());
    }

    #[test]
    fn ecdh_refuses_a_point_off_the_curve() {
        let a = EcdhP256Secret::generate().unwrap();
        let mut bad = a.public_key_sec1();
        bad[40] ^= 1;
        assert!(a.agree(&bad).is_err());
        assert!(a.agree(&[4, 1, 2]).is_err());
    }

    #[test]
    fn ed25519_rejects_garbage_without_panicking() {
        assert!(ed25519_verify(&[0; 31], b"m", &[0; 64]).is_err());
        assert!(ed25519_verify(&[0; 32], b"m", &[0; 10]).is_err());
    }
}
