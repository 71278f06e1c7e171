//! EC-KCDSA (TTAK.KO-12.0015/R3, ISO/IEC 14888-3), the Korean elliptic-curve signature in
//! the KISA guide, over NIST P-256 with SHA-256.
//!
//! - Keys: a private scalar `x` in `[1, n-1]`; the public point is `Q = x^-1 G`.
//! - `z` is `Qx || Qy` cut or zero-padded to the hash's block (64 bytes for SHA-256: for
//!   P-256 exactly `Qx || Qy`), binding the signature to the signer's key.
//! - Sign: a fresh random `k`; `r = H(x-coordinate of kG)`; `e = (r XOR H(z || M)) mod n`;
//!   `s = x (k - e) mod n`. The signature is `r || s` (32 + 32 bytes).
//! - Verify: `e` as above, `W' = sQ + eG`, accept when `H(x-coordinate of W') == r`.
//!
//! The curve arithmetic is RustCrypto's `p256` (constant-time scalar multiplication); the
//! private scalar lives in a `p256::SecretKey`, which zeroizes on drop. Only P-256/SHA-256 is
//! offered: it is the combination whose hash length equals the group order's, so no
//! truncation rule is involved.

use std::fmt;

use p256::elliptic_curve::Field;
use p256::elliptic_curve::ff::PrimeField;
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::{AffinePoint, FieldBytes, ProjectivePoint, PublicKey, Scalar, SecretKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{CryptoError, os_random};

const ALGORITHM: &str = "EC-KCDSA-P256";

/// An EC-KCDSA signing key over P-256 with SHA-256. `Debug` shows no key bytes.
pub struct EcKcdsaKeyPair {
    secret: SecretKey,
    public: PublicKey,
}

impl fmt::Debug for EcKcdsaKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcKcdsaKeyPair").finish_non_exhaustive()
    }
}

/// `z = Qx || Qy` (64 bytes, SHA-256's block length).
fn public_binding(public: &AffinePoint) -> [u8; 64] {
    let mut z = [0u8; 64];
    z[..32].copy_from_slice(&public.x());
    z[32..].copy_from_slice(&public.y());
    z
}

/// `e = (r XOR H(z || M)) mod n`.
fn challenge(r: &[u8; 32], public: &AffinePoint, message: &[u8]) -> Scalar {
    let mut h = Sha256::new();
    h.update(public_binding(public));
    h.update(message);
    let v = h.finalize();
    let mut x = [0u8; 32];
    for (out, (a, b)) in x.iter_mut().zip(r.iter().zip(v.iter())) {
        *out = a ^ b;
    }
    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(x))
}

fn hash_x(point: &AffinePoint) -> [u8; 32] {
    Sha256::digest(point.x()).into()
}

impl EcKcdsaKeyPair {
    /// Generates a key from the operating system's random source.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        loop {
            os_random(bytes.as_mut())?;
            if let Ok(key) = Self::from_scalar(bytes.as_ref()) {
                return Ok(key);
            }
        }
    }

    /// A key from its private scalar `x` (32 bytes, big-endian, in `[1, n-1]`).
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] for a wrong length or an out-of-range scalar.
    pub fn from_scalar(scalar: &[u8]) -> Result<Self, CryptoError> {
        if scalar.len() != 32 {
            return Err(CryptoError::Encoding {
                what: "EC-KCDSA P-256 private scalar".to_owned(),
                message: format!("must be 32 bytes, got {}", scalar.len()),
            });
        }
        let secret = SecretKey::from_slice(scalar).map_err(|e| CryptoError::Encoding {
            what: "EC-KCDSA P-256 private scalar".to_owned(),
            message: e.to_string(),
        })?;
        let x = secret.to_nonzero_scalar();
        let x_inv: Scalar = Option::from(x.as_ref().invert()).ok_or(CryptoError::Encoding {
            what: "EC-KCDSA P-256 private scalar".to_owned(),
            message: "not invertible".to_owned(),
        })?;
        let q = (ProjectivePoint::GENERATOR * x_inv).to_affine();
        let public = PublicKey::from_affine(q).map_err(|e| CryptoError::Encoding {
            what: "EC-KCDSA P-256 public key".to_owned(),
            message: e.to_string(),
        })?;
        Ok(EcKcdsaKeyPair { secret, public })
    }

    /// The public key `Q` as an uncompressed SEC1 point (65 bytes).
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.public.to_sec1_bytes().to_vec()
    }

    /// Signs `message` with a fresh random `k`: `r || s`, 64 bytes.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut k_bytes = Zeroizing::new([0u8; 32]);
        loop {
            os_random(k_bytes.as_mut())?;
            if let Some(signature) = self.sign_with_k(message, &k_bytes) {
                return Ok(signature);
            }
        }
    }

    /// The signature for one `k` (big-endian); `None` when `k` is out of range or `s` is 0,
    /// and the caller draws another `k`.
    fn sign_with_k(&self, message: &[u8], k_bytes: &[u8; 32]) -> Option<Vec<u8>> {
        let k: Scalar = Option::from(Scalar::from_repr(FieldBytes::from(*k_bytes)))?;
        if bool::from(k.is_zero()) {
            return None;
        }
        let w = (ProjectivePoint::GENERATOR * k).to_affine();
        let r = hash_x(&w);
        let e = challenge(&r, self.public.as_affine(), message);
        let s = *self.secret.to_nonzero_scalar().as_ref() * (k - e);
        if bool::from(s.is_zero()) {
            return None;
        }
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&r);
        out.extend_from_slice(&s.to_repr());
        Some(out)
    }
}

/// Verifies an EC-KCDSA P-256/SHA-256 `r || s` signature under a SEC1 public key.
///
/// # Errors
/// [`CryptoError::Encoding`] for a public key that is not a P-256 point,
/// [`CryptoError::BadSignature`] otherwise.
pub fn ec_kcdsa_verify(
    public_sec1: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let public = PublicKey::from_sec1_bytes(public_sec1).map_err(|e| CryptoError::Encoding {
        what: "EC-KCDSA P-256 public key".to_owned(),
        message: e.to_string(),
    })?;
    let bad = || CryptoError::BadSignature {
        algorithm: ALGORITHM.to_owned(),
    };
    if signature.len() != 64 {
        return Err(bad());
    }
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    let s: Scalar = Option::from(Scalar::from_repr(FieldBytes::from(s_bytes))).ok_or_else(bad)?;
    if bool::from(s.is_zero()) {
        return Err(bad());
    }
    let e = challenge(&r, public.as_affine(), message);
    let w = ProjectivePoint::from(*public.as_affine()) * s + ProjectivePoint::GENERATOR * e;
    if bool::from(w.is_identity()) {
        return Err(bad());
    }
    let expected = hash_x(&w.to_affine());
    if bool::from(expected.ct_eq(&r)) {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    const MESSAGE: &[u8] = b"This is a sample message for EC-KCDSA implementation validation.";

    /// KISA, "EC-KCDSA 전자서명 알고리즘에 대한 소스코드 활용 매뉴얼" (source-code manual),
    /// P-256 / SHA-256 example, and KISA-WP-2011-0022 (final report), P-256 / SHA-256:
    /// private key, public key, the nonce `k` and the signature `(r, s)` for the message
    /// above. Signing with the published `k` must reproduce the published signature.
    #[test]
    fn signing_with_the_published_k_reproduces_the_kisa_signatures() {
        for (x, qx, qy, k, r, s) in [
            (
                "45EC2DF3 E517515A 0C370E56 00C86A20 A851E0A6 5BFE114B F1743778 F0E96EA7",
                "4829D795 FA134536 7B55BA09 CC6E10DA 20B42DD7 5F980E91 E5EE14EA 75701FF2",
                "63DB1BE5 9253C399 68CCFD61 22ACC8B7 31F3EACE 2EB005DE 711A1F5E 96ABD97F",
                "2937297B 5522150B A43D13F6 1F7C96D4 A13C24FA BEDA8EA9 A7C5788F 7CFD7C08",
                "0055529A E29603F9 D7ACEC4A 2B7A6CC8 51D73155 5EBB8B58 DC7C0C02 CFB35AE6",
                "4D1BED4D BADB43A9 A179A708 3FD679E9 4BCF3E1B DFE5E009 792FA35F 65A9487D",
            ),
            (
                "72F18E52 29AC104D 502CD0E6 30E997A8 B66B0EA1 9C7B6824 1168E66F 9750571D",
                "61D4ECD0 385E17FC 300D45EC 7B2630C4 C45A8602 A9CAC191 BF5B1EC6 AA2C3344",
                "5E6D9361 1B1A6FF6 707269A1 2153313C 0269359D D71E3D20 8E6154D0 AC364C6E",
                "08B7FE4B 44541FD7 FA396709 08A2FD7A A58DF7AC 1F9C4B05 3090B32C 9EA5227C",
                "CB376EDE B670D86D 53120246 BA2F3CFE 10BF7EF3 97D3133C FC3C2483 022A308A",
                "17C6B60D 9CC5340E 89918742 83F94F06 FBD9B8CE 77F8BD93 F9B04A94 250BEF0A",
            ),
        ] {
            let key = EcKcdsaKeyPair::from_scalar(&unhex(x)).unwrap();
            let public = key.public_key_sec1();
            assert_eq!(public[0], 0x04);
            assert_eq!(hex::encode_upper(&public[1..33]), qx.replace(' ', ""));
            assert_eq!(hex::encode_upper(&public[33..]), qy.replace(' ', ""));
            let k: [u8; 32] = unhex(k).try_into().unwrap();
            let sig = key.sign_with_k(MESSAGE, &k).unwrap();
            assert_eq!(hex::encode_upper(&sig[..32]), r.replace(' ', ""));
            assert_eq!(hex::encode_upper(&sig[32..]), s.replace(' ', ""));
            ec_kcdsa_verify(&public, MESSAGE, &sig).unwrap();
        }
    }

    #[test]
    fn random_signatures_verify_and_altered_ones_do_not() {
        let key = EcKcdsaKeyPair::generate().unwrap();
        let public = key.public_key_sec1();
        let sig = key.sign(b"transfer").unwrap();
        assert_eq!(sig.len(), 64);
        ec_kcdsa_verify(&public, b"transfer", &sig).unwrap();
        assert_ne!(sig, key.sign(b"transfer").unwrap(), "k is fresh each time");
        assert!(ec_kcdsa_verify(&public, b"transfeR", &sig).is_err());
        for i in [0, 31, 32, 63] {
            let mut bad = sig.clone();
            bad[i] ^= 1;
            assert!(ec_kcdsa_verify(&public, b"transfer", &bad).is_err(), "{i}");
        }
        let other = EcKcdsaKeyPair::generate().unwrap().public_key_sec1();
        assert!(ec_kcdsa_verify(&other, b"transfer", &sig).is_err());
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let key = EcKcdsaKeyPair::generate().unwrap();
        let public = key.public_key_sec1();
        for sig in [
            vec![],
            vec![0; 63],
            vec![0; 65],
            vec![0; 64],
            vec![0xff; 64],
        ] {
            assert!(matches!(
                ec_kcdsa_verify(&public, b"m", &sig),
                Err(CryptoError::BadSignature { .. })
            ));
        }
        assert!(matches!(
            ec_kcdsa_verify(&[4; 65], b"m", &[1; 64]),
            Err(CryptoError::Encoding { .. })
        ));
        assert!(EcKcdsaKeyPair::from_scalar(&[0; 32]).is_err());
        assert!(EcKcdsaKeyPair::from_scalar(&[0xff; 32]).is_err());
        assert!(EcKcdsaKeyPair::from_scalar(&[1; 31]).is_err());
        assert_eq!(format!("{key:?}"), "EcKcdsaKeyPair { .. }");
    }
}
