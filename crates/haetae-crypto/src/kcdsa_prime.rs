//! KCDSA (TTAK.KO-12.0001/R4), the Korean discrete-logarithm signature, over domain
//! parameters the caller supplies (from a certificate or a peer): `p` of 2048 or 3072 bits,
//! `q` of 224 bits (with SHA-224) or 256 bits (with SHA-256), and a generator `g` of order
//! `q`. Generating domain parameters is not offered.
//!
//! - Keys: a private `x` in `[1, q-1]`; the public `y = g^(x^-1 mod q) mod p`.
//! - `z` is the low 64 bytes (the hash's block) of `y`, binding the signature to the key.
//! - Sign: a fresh random `k`; `W = g^k mod p`; `R = H(W)`; `E = (R XOR H(z || M)) mod q`;
//!   `S = x (k - E) mod q`. The signature is `R || S`.
//! - Verify: `E` as above, `W' = y^S g^E mod p`, accept when `H(W') == R`.
//!
//! The arithmetic is `crypto-bigint` (already in the tree through `rsa`): the exponentiations
//! with secret exponents (`g^k`, the inversion of `x`) run in constant time; the private
//! exponent is zeroized on drop. 2048-bit parameters give 112-bit strength, accepted until
//! the end of 2030.

use std::fmt;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, NonZero, Odd};
use sha2::Digest;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{CryptoError, os_random};

const ALGORITHM: &str = "KCDSA";

fn parameter(message: String) -> CryptoError {
    CryptoError::Parameter {
        algorithm: "KCDSA domain parameters".to_owned(),
        message,
    }
}

/// `bytes` as an integer of `precision` bits (`None` when it does not fit).
fn uint(bytes: &[u8], precision: u32) -> Option<BoxedUint> {
    BoxedUint::from_be_slice(bytes, precision).ok()
}

fn bad_signature() -> CryptoError {
    CryptoError::BadSignature {
        algorithm: ALGORITHM.to_owned(),
    }
}

/// Validated KCDSA domain parameters.
#[derive(Clone)]
pub struct KcdsaParams {
    p: Odd<BoxedUint>,
    q: Odd<BoxedUint>,
    g: BoxedUint,
    p_monty: BoxedMontyParams,
    p_len: usize,
    q_len: usize,
}

impl fmt::Debug for KcdsaParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KcdsaParams")
            .field("p_bits", &self.p.bits())
            .field("q_bits", &self.q.bits())
            .finish_non_exhaustive()
    }
}

impl KcdsaParams {
    /// Checks and keeps `(p, q, g)` given as big-endian bytes: `p` of 2048 or 3072 bits,
    /// `q` of 224 (only with a 2048-bit `p`) or 256 bits dividing `p - 1`, and `1 < g < p`
    /// with `g^q = 1 mod p`. The hash is SHA-224 for a 224-bit `q`, SHA-256 otherwise.
    ///
    /// # Errors
    /// [`CryptoError::Parameter`] naming the check that failed.
    pub fn new(p: &[u8], q: &[u8], g: &[u8]) -> Result<Self, CryptoError> {
        let p_int = BoxedUint::from_be_slice_vartime(p);
        let q_int = BoxedUint::from_be_slice_vartime(q);
        let (p_bits, q_bits) = (p_int.bits(), q_int.bits());
        if !matches!((p_bits, q_bits), (2048, 224 | 256) | (3072, 256)) {
            return Err(parameter(format!(
                "p must have 2048 or 3072 bits and q 224 (p 2048 only) or 256 bits; got p {p_bits}, q {q_bits}"
            )));
        }
        let p_odd: Odd<BoxedUint> = Option::from(Odd::new(p_int.clone()))
            .ok_or_else(|| parameter("p is even".to_owned()))?;
        let q_odd: Odd<BoxedUint> = Option::from(Odd::new(q_int.clone()))
            .ok_or_else(|| parameter("q is even".to_owned()))?;
        let one = BoxedUint::one_with_precision(p_int.bits_precision());
        let p_minus_1 = p_int.wrapping_sub(&one);
        let q_wide = uint(q, p_int.bits_precision())
            .ok_or_else(|| parameter("q is longer than p".to_owned()))?;
        let q_nz: NonZero<BoxedUint> = Option::from(NonZero::new(q_wide.clone()))
            .ok_or_else(|| parameter("q is zero".to_owned()))?;
        if !bool::from(p_minus_1.rem_vartime(&q_nz).is_zero()) {
            return Err(parameter("q does not divide p - 1".to_owned()));
        }
        let g_int = uint(g, p_int.bits_precision())
            .ok_or_else(|| parameter("g must satisfy 1 < g < p".to_owned()))?;
        if g_int <= one || g_int >= p_int {
            return Err(parameter("g must satisfy 1 < g < p".to_owned()));
        }
        let p_monty = BoxedMontyParams::new(p_odd.clone());
        let g_to_q = BoxedMontyForm::new(g_int.clone(), &p_monty)
            .pow(&q_wide)
            .retrieve();
        if g_to_q != one {
            return Err(parameter(
                "g does not have order q (g^q mod p is not 1)".to_owned(),
            ));
        }
        Ok(KcdsaParams {
            p_len: p_bits.div_ceil(8) as usize,
            q_len: q_bits.div_ceil(8) as usize,
            p: p_odd,
            q: q_odd,
            g: g_int,
            p_monty,
        })
    }

    fn hash(&self, parts: &[&[u8]]) -> Vec<u8> {
        if self.q.bits() == 224 {
            let mut h = sha2::Sha224::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        } else {
            let mut h = sha2::Sha256::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
    }

    fn q_nz(&self) -> &NonZero<BoxedUint> {
        self.q.as_nz_ref()
    }

    /// `x` as fixed-length big-endian bytes.
    fn to_bytes(x: &BoxedUint, len: usize) -> Vec<u8> {
        let bytes = x.to_be_bytes();
        bytes[bytes.len() - len..].to_vec()
    }

    /// `g^e mod p` as `p_len` bytes (constant time in `e`).
    fn g_pow(&self, e: &BoxedUint) -> BoxedMontyForm {
        BoxedMontyForm::new(self.g.clone(), &self.p_monty).pow(e)
    }

    /// `z`: the low 64 bytes of `y` (SHA-224's and SHA-256's block length).
    fn binding(&self, y_bytes: &[u8]) -> Vec<u8> {
        y_bytes[y_bytes.len().saturating_sub(64)..].to_vec()
    }

    /// `E = (R XOR H(z || M)) mod q`.
    fn challenge(&self, r: &[u8], y_bytes: &[u8], message: &[u8]) -> BoxedUint {
        let h = self.hash(&[&self.binding(y_bytes), message]);
        let xored: Vec<u8> = r.iter().zip(&h).map(|(a, b)| a ^ b).collect();
        // At most 32 bytes into q's precision (at least 256 bits): always fits.
        BoxedUint::from_be_slice_truncated(&xored, self.q.bits_precision()).rem(self.q_nz())
    }

    fn hash_len(&self) -> usize {
        if self.q.bits() == 224 { 28 } else { 32 }
    }
}

/// A KCDSA signing key. The private exponent is zeroized on drop; `Debug` shows no key bytes.
pub struct KcdsaKeyPair {
    params: KcdsaParams,
    x: BoxedUint,
    y_bytes: Vec<u8>,
}

impl Drop for KcdsaKeyPair {
    fn drop(&mut self) {
        self.x.zeroize();
    }
}

impl fmt::Debug for KcdsaKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KcdsaKeyPair")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl KcdsaKeyPair {
    /// A key from its private `x` (big-endian, `1 <= x < q`).
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] for an out-of-range `x`.
    pub fn from_private(params: &KcdsaParams, x: &[u8]) -> Result<Self, CryptoError> {
        let out_of_range = || CryptoError::Encoding {
            what: "KCDSA private key".to_owned(),
            message: format!("must be {} bytes with 1 <= x < q", params.q_len),
        };
        if x.len() != params.q_len {
            return Err(out_of_range());
        }
        let x = uint(x, params.q.bits_precision()).ok_or_else(out_of_range)?;
        if bool::from(x.is_zero()) || x >= *params.q.as_ref() {
            return Err(out_of_range());
        }
        let x_inv: BoxedUint =
            Option::from(x.invert_odd_mod(&params.q)).ok_or_else(out_of_range)?;
        let y = params.g_pow(&x_inv).retrieve();
        let y_bytes = KcdsaParams::to_bytes(&y, params.p_len);
        Ok(KcdsaKeyPair {
            params: params.clone(),
            x,
            y_bytes,
        })
    }

    /// A new key from the operating system's random source.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn generate(params: &KcdsaParams) -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new(vec![0u8; params.q_len]);
        loop {
            os_random(&mut bytes)?;
            if let Ok(key) = Self::from_private(params, &bytes) {
                return Ok(key);
            }
        }
    }

    /// The public key `y` as `p`-length big-endian bytes.
    pub fn public_key(&self) -> Vec<u8> {
        self.y_bytes.clone()
    }

    /// Signs `message` with a fresh random `k`: `R || S`.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut k = Zeroizing::new(vec![0u8; self.params.q_len]);
        loop {
            os_random(&mut k)?;
            if let Some(signature) = self.sign_with_k(message, &k) {
                return Ok(signature);
            }
        }
    }

    /// The signature for one `k`; `None` when `k` is out of range or `S` is 0.
    fn sign_with_k(&self, message: &[u8], k_bytes: &[u8]) -> Option<Vec<u8>> {
        let params = &self.params;
        let mut k = uint(k_bytes, params.q.bits_precision())?;
        if bool::from(k.is_zero()) || k >= *params.q.as_ref() {
            k.zeroize();
            return None;
        }
        let w = KcdsaParams::to_bytes(&params.g_pow(&k).retrieve(), params.p_len);
        let r = params.hash(&[&w]);
        let e = params.challenge(&r, &self.y_bytes, message);
        let q = params.q_nz();
        let mut k_minus_e = k.sub_mod(&e, q);
        let s = self.x.mul_mod(&k_minus_e, q);
        k.zeroize();
        k_minus_e.zeroize();
        if bool::from(s.is_zero()) {
            return None;
        }
        let mut out = r;
        out.extend(KcdsaParams::to_bytes(&s, params.q_len));
        Some(out)
    }
}

/// Verifies a KCDSA `R || S` signature under the public key `y` (big-endian).
///
/// # Errors
/// [`CryptoError::Encoding`] for a public key outside `(1, p)`, [`CryptoError::BadSignature`]
/// otherwise.
pub fn kcdsa_verify(
    params: &KcdsaParams,
    public_y: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let bad_key = || CryptoError::Encoding {
        what: "KCDSA public key".to_owned(),
        message: "must satisfy 1 < y < p".to_owned(),
    };
    let y = uint(public_y, params.p.bits_precision()).ok_or_else(bad_key)?;
    let one = BoxedUint::one_with_precision(params.p.bits_precision());
    if y <= one || y >= *params.p.as_ref() {
        return Err(bad_key());
    }
    let y_bytes = KcdsaParams::to_bytes(&y, params.p_len);
    let hash_len = params.hash_len();
    if signature.len() != hash_len + params.q_len {
        return Err(bad_signature());
    }
    let (r, s_bytes) = signature.split_at(hash_len);
    let s = uint(s_bytes, params.q.bits_precision()).ok_or_else(bad_signature)?;
    if bool::from(s.is_zero()) || s >= *params.q.as_ref() {
        return Err(bad_signature());
    }
    let e = params.challenge(r, &y_bytes, message);
    let y_s = BoxedMontyForm::new(y, &params.p_monty).pow(&s);
    let w = KcdsaParams::to_bytes(&(y_s * params.g_pow(&e)).retrieve(), params.p_len);
    if bool::from(params.hash(&[&w]).ct_eq(r)) {
        Ok(())
    } else {
        Err(bad_signature())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// KISA-WP-2011-0022 (KISA's KCDSA final report), the (2048, 256, SHA-256) example:
    /// domain parameters, key pair, `k`, and the signature `(R, S)` for the message below.
    struct Kisa2048_256;

    impl Kisa2048_256 {
        const MESSAGE: &'static [u8] = b"This is a test message for KCDSA usage!";
        const P: &'static str = "f4119d06 45045e98 3045e27e 74ec6352 81ed1d9d 3a7053ff
            e519994b 98671be7 3f044683 6904aea9 b853aa32 a46169cc 4d0106d7 da4b16be
            41b5853d 31df183f 4fd3b8f9 81b94269 312fef6f 15ee9e1f da146179 a91daa7e
            b855d6a8 425fbbab 501c525f 733e0bc2 d3371370 a93b34bf 633d7e8d efa5601f
            233a69ac 91050162 f33d57fd bb3fa870 5a4b59a9 76bb4847 8ce6ef8e 170d91f1
            9cd36e17 d006855e e6616301 ff9b3c3f 291c3db9 132cebcb 786582a7 5c027bd1
            8e568d92 979b0d33 f571871a ca50755b a13a2d66 d7bcaa6c 53767bc7 c25a9967
            c033af3a 34b23070 c11b43e6 ceb1c584 7f69db51 f069fb57 5e88dacf d264970b
            0b4bdaaa c55ed467";
        const Q: &'static str =
            "dedc989a d0f984cd 4d3e54bf aebc2dd1 de19152c 49aa526d da4cab54 879ffb2d";
        const G: &'static str = "cf565bc4 f9628539 bf780966 2cc58dfe 6e8243de e7c3af77
            abc65dec 969b77be 8871afa3 4498d376 11c854e0 03c8928c 11c3f27c 18ba1a09
            b0628bae d37dc3e9 83026ae7 17cda927 829a7f7b 5aa1aa6c e0112880 61ebeb69
            2c7d6843 46c1878c c4a45067 eb927494 dd3202d6 c8fba6b3 8352d407 858ad3aa
            19b3e09f 2b75c849 df191568 0b8d4a35 c0ead2da 4436432f cdcbbcc4 3b74d12f
            266f4ae0 2d2e5538 530ec3ce 15f719d4 e86fdca8 892e0cfd f3e08d40 761b6d65
            0b59e132 082bfdff 64106e9b 85501a5c 7a63b85d da266923 cb5703b7 34f0a14c
            ab930343 0b4a9fc8 66da806a dad3da65 06fc2e32 5a12220f 9593c2e5 f9f00358
            5af63940 bb687369";
        const X: &'static str =
            "2a37f3f2 af743c65 92828433 ed60543d e76d097f 4ac99d9d 89b1a76b 0f72cf4d";
        const Y: &'static str = "0a78a3c3 376c7169 7c6afc13 dde77bfd bb755517 f2b5ce76
            1955d536 5b0e76eb 3ebfacd6 b3514c1d d64b0269 533790c3 72380efc 9bab77f2
            55d476a1 3262dd53 8b76c880 bceeade5 989cb259 2692c37c 6dc48bc8 1b556790
            88f19fe1 edcaccd7 0f40abd0 79d16f59 1bcce2b3 59151240 df6a5adc 1a8c4e17
            e2b78b5a 422f9d5d 7797320e e843e079 5ea691d8 358136d7 71afc16f cdb33c7f
            4aa12e6e e47d7ed2 7fd77fd6 6e3c11a2 157a21e5 74cd3281 0f51a74c a2a93a33
            b3e5579e 9a1efb06 a006133f ff64af12 230f252b cd40174d abac5120 e01a7578
            6d964859 5360bce3 71015ef6 f4ebd843 304d1bf2 a7b763a8 788c4f7f 206da4ec
            2e5171dc eeb24fb7";
        const K: &'static str =
            "95ce2d19 4c86bc96 f60abd47 9f1a9f43 8a348714 8104fec0 8218f0c7 ab574b9d";
        const R: &'static str =
            "11767369 438be94c 930e9d34 4856057b 65818275 f7fb1efa f248e71f 4af981b7";
        const S: &'static str =
            "c2d57c58 8bb2a3f3 cf705162 564b6660 d28a88f9 c732603b 447bf1b1 5801016c";

        fn params() -> KcdsaParams {
            KcdsaParams::new(&unhex(Self::P), &unhex(Self::Q), &unhex(Self::G)).unwrap()
        }
    }

    #[test]
    fn the_kisa_2048_256_example_gives_its_public_key_and_signature() {
        type V = Kisa2048_256;
        let params = V::params();
        let key = KcdsaKeyPair::from_private(&params, &unhex(V::X)).unwrap();
        assert_eq!(hex::encode(key.public_key()), hex::encode(unhex(V::Y)));
        let sig = key.sign_with_k(V::MESSAGE, &unhex(V::K)).unwrap();
        let expected = [unhex(V::R), unhex(V::S)].concat();
        assert_eq!(hex::encode(&sig), hex::encode(&expected));
        kcdsa_verify(&params, &unhex(V::Y), V::MESSAGE, &expected).unwrap();
        let mut altered = expected.clone();
        altered[40] ^= 1;
        assert!(kcdsa_verify(&params, &unhex(V::Y), V::MESSAGE, &altered).is_err());
        assert!(kcdsa_verify(&params, &unhex(V::Y), b"another", &expected).is_err());
    }

    /// KISA-WP-2011-0022, the (2048, 224, SHA-224) example: same message; the public key
    /// ends with the published `Z` and signing with the published `k` gives `(R, S)`.
    #[test]
    fn the_kisa_2048_224_sha224_example_gives_its_signature() {
        let p = unhex(
            "d478f35f 01c72832 bcbbd508 c4a340f4 33dcd60b 2e023c94 1fda5a09 3a220727
             73b3d962 af981c9e a037edcc edfc63a5 02d0dc9b 3e708789 4cf9b159 56b7bac8
             da216b66 bddbe71e 28e2f828 490aff3c 8d36be50 41728f4f ee34f7f1 9ab8a6ae
             6fe6fe65 13a504c1 99a83b88 707f43c7 d0913c9a 26c80fb3 861a698a 562c919b
             ffa798a0 6966d588 2822e448 e686bca6 08d83ef7 35937988 d65398ca aa995e98
             e53eb9a1 8cd0e05c 33ad0950 e2b87402 fc284972 3f69d564 62aaa089 57bb45ff
             854792c6 337247b6 888d0cf0 016e83d1 29e47c80 9a1bc68f 83739502 8e9b1658
             d5c178ec 1678a6fd 1daf0e0a 41f4b6ce bb642cec cb749ada 0fd4a2ba 94426efb",
        );
        let q = unhex("c223aad2 e86ecb17 11921a23 36d7eba9 b0d3dc82 4224a4cd db5ef0b7");
        let g = unhex(
            "cc824e25 383509a0 22781161 e3d2af50 9ae9184d 2751ccb3 3f6b8fad e18d86c6
             a2ad3b06 d9899118 57d26c59 f1fa85fb fb14e3d3 393cc3f2 fcf9da68 65014fc9
             b3e8c8c0 f8295f82 76bac6f6 944f56de eb48ab86 218f4071 33471505 e3b33c7b
             ea69108a 643267da 36e0762e 570b9b61 57897992 d0f7806f d6de0773 d61657db
             882d634c 8bd05403 3f2b34f2 28fc89b9 c5df6524 3a628121 34845b14 302c25fa
             d3ca1c92 fa552c5a f2ddfbe8 a67f03a3 79ac791f c196d204 c505558e 789ae98f
             aa1ce7fe 8dc7555a c6abbbb7 3d779f3d 1db8038f 22d2baf2 4e8adec1 5f6209de
             61e058cc 2913047d c071cb90 b0769ce2 296a5daa f94201df 82de0343 de50333f",
        );
        let params = KcdsaParams::new(&p, &q, &g).unwrap();
        let key = KcdsaKeyPair::from_private(
            &params,
            &unhex("12f3f124 ae8f9da6 9fbc0a60 63ac018c 002786f2 760daca3 e918d1e4"),
        )
        .unwrap();
        let z = unhex(
            "632b074a 2b0cc9b0 eaf6c473 20e7f30c 6042d052 1dbe7690 1768fe8e 9832a973
             1b31ff67 53918fdd 0ff774de 5c06292f 091a763d fef8c4d7 2925e054 6c0d69c0",
        );
        assert!(key.public_key().ends_with(&z));
        assert!(
            key.public_key()
                .starts_with(&unhex("62b69417 15910140 965e3540"))
        );
        let sig = key
            .sign_with_k(
                Kisa2048_256::MESSAGE,
                &unhex("10a3d44a 23d8204b 88aa4c1b 33806aeb 825354e9 2f986d44 532f4441"),
            )
            .unwrap();
        assert_eq!(
            hex::encode(&sig),
            hex::encode(unhex(
                "59f4d18d 4068e5f9 fff1fd6c ef7e3a1a 0a2d4671 000bf7d0 a236ff01
                 74e33c8c cd2a4816 18087e91 f8c1ddec f0b3ffa7 b1c84314 dca4a430"
            ))
        );
        kcdsa_verify(&params, &key.public_key(), Kisa2048_256::MESSAGE, &sig).unwrap();
    }

    #[test]
    fn random_signatures_verify_and_malformed_input_is_an_error() {
        let params = Kisa2048_256::params();
        let key = KcdsaKeyPair::generate(&params).unwrap();
        let sig = key.sign(b"transfer").unwrap();
        assert_eq!(sig.len(), 64);
        kcdsa_verify(&params, &key.public_key(), b"transfer", &sig).unwrap();
        for bad in [vec![], vec![0; 63], vec![0; 64], vec![0xff; 64]] {
            assert!(kcdsa_verify(&params, &key.public_key(), b"transfer", &bad).is_err());
        }
        assert!(kcdsa_verify(&params, &[1], b"transfer", &sig).is_err());
        assert!(KcdsaKeyPair::from_private(&params, &[0; 32]).is_err());
        assert!(KcdsaKeyPair::from_private(&params, &[0xff; 32]).is_err());
        assert!(!format!("{key:?}").contains("2a37"));
    }

    #[test]
    fn domain_parameters_are_checked() {
        type V = Kisa2048_256;
        let (p, q, g) = (unhex(V::P), unhex(V::Q), unhex(V::G));
        assert!(KcdsaParams::new(&p, &q, &[1]).is_err());
        assert!(KcdsaParams::new(&p, &q, &[2]).is_err(), "2 has not order q");
        let mut other_q = q.clone();
        other_q[31] ^= 2;
        assert!(KcdsaParams::new(&p, &other_q, &g).is_err());
        assert!(KcdsaParams::new(&p[1..], &q, &g).is_err());
    }
}
