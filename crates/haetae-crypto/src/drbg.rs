//! Deterministic random bit generators from NIST SP 800-90A Rev. 1: HMAC-DRBG over SHA-256
//! and CTR-DRBG over AES-256 without a derivation function. Both seed themselves from the
//! operating system (`from_os`) and reseed from it after [`RESEED_INTERVAL`] requests; the
//! `instantiate` constructors take caller entropy for known-answer tests. State is zeroized
//! on drop and never printed.

use cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{CryptoError, os_random};
use crate::mac::{HmacHash, hmac};

/// Requests between reseeds (SP 800-90A allows 2^48; haetae reseeds far sooner).
pub const RESEED_INTERVAL: u64 = 1 << 20;
/// The most bytes one request may return (SP 800-90A: 2^19 bits).
pub const MAX_REQUEST: usize = 1 << 16;

fn too_large(algorithm: &str, len: usize) -> CryptoError {
    CryptoError::TooLong {
        algorithm: algorithm.to_owned(),
        len,
        max: MAX_REQUEST as u64,
    }
}

fn reseed_required(algorithm: &str) -> CryptoError {
    CryptoError::Parameter {
        algorithm: algorithm.to_owned(),
        message: "reseed required: instantiated from caller entropy and the reseed interval is used up; call reseed".to_owned(),
    }
}

/// HMAC-DRBG with SHA-256 (security strength 256).
pub struct HmacDrbg {
    key: [u8; 32],
    value: [u8; 32],
    reseed_counter: u64,
    from_os: bool,
}

impl std::fmt::Debug for HmacDrbg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacDrbg { .. }")
    }
}

impl HmacDrbg {
    /// Instantiates from caller-supplied entropy, nonce and personalization string.
    pub fn instantiate(entropy: &[u8], nonce: &[u8], personalization: &[u8]) -> Self {
        let mut drbg = HmacDrbg {
            key: [0; 32],
            value: [1; 32],
            reseed_counter: 1,
            from_os: false,
        };
        drbg.update(&[entropy, nonce, personalization]);
        drbg
    }

    /// Instantiates from 256 bits of OS entropy and a 128-bit OS nonce.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn from_os(personalization: &[u8]) -> Result<Self, CryptoError> {
        let mut seed = Zeroizing::new([0u8; 48]);
        os_random(seed.as_mut())?;
        let mut drbg = Self::instantiate(&seed[..32], &seed[32..], personalization);
        drbg.from_os = true;
        Ok(drbg)
    }

    fn hmac_into(&self, parts: &[&[u8]]) -> [u8; 32] {
        let data = Zeroizing::new(parts.concat());
        let mut out = [0u8; 32];
        out.copy_from_slice(&hmac(HmacHash::Sha256, &self.key, &data));
        out
    }

    fn update(&mut self, provided: &[&[u8]]) {
        let provided = Zeroizing::new(provided.concat());
        self.key = self.hmac_into(&[&self.value, &[0x00], &provided]);
        self.value = self.hmac_into(&[&self.value]);
        if !provided.is_empty() {
            self.key = self.hmac_into(&[&self.value, &[0x01], &provided]);
            self.value = self.hmac_into(&[&self.value]);
        }
    }

    /// Mixes fresh entropy (and optional additional input) into the state.
    pub fn reseed(&mut self, entropy: &[u8], additional: &[u8]) {
        self.update(&[entropy, additional]);
        self.reseed_counter = 1;
    }

    /// Fills `out` (at most [`MAX_REQUEST`] bytes) with optional additional input.
    ///
    /// # Errors
    /// Request too large, reseed needed (caller-seeded), or OS entropy failure.
    pub fn generate(&mut self, out: &mut [u8], additional: &[u8]) -> Result<(), CryptoError> {
        if out.len() > MAX_REQUEST {
            return Err(too_large("HMAC-DRBG", out.len()));
        }
        if self.reseed_counter > RESEED_INTERVAL {
            if !self.from_os {
                return Err(reseed_required("HMAC-DRBG"));
            }
            let mut entropy = Zeroizing::new([0u8; 32]);
            os_random(entropy.as_mut())?;
            self.reseed(entropy.as_ref(), &[]);
        }
        if !additional.is_empty() {
            self.update(&[additional]);
        }
        for chunk in out.chunks_mut(32) {
            self.value = self.hmac_into(&[&self.value]);
            chunk.copy_from_slice(&self.value[..chunk.len()]);
        }
        self.update(&[additional]);
        self.reseed_counter += 1;
        Ok(())
    }
}

impl Drop for HmacDrbg {
    fn drop(&mut self) {
        self.key.zeroize();
        self.value.zeroize();
    }
}

/// CTR-DRBG with AES-256 and no derivation function (seed length 48 bytes).
pub struct CtrDrbg {
    key: [u8; 32],
    value: [u8; 16],
    reseed_counter: u64,
    from_os: bool,
}

impl std::fmt::Debug for CtrDrbg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CtrDrbg { .. }")
    }
}

/// The seed length of CTR-DRBG over AES-256.
pub const CTR_DRBG_SEED_LEN: usize = 48;

fn pad_seed(input: &[u8], algorithm: &str) -> Result<Zeroizing<[u8; 48]>, CryptoError> {
    if input.len() > CTR_DRBG_SEED_LEN {
        return Err(CryptoError::Parameter {
            algorithm: algorithm.to_owned(),
            message: format!(
                "without a derivation function the input is at most {CTR_DRBG_SEED_LEN} bytes, got {}",
                input.len()
            ),
        });
    }
    let mut seed = Zeroizing::new([0u8; 48]);
    seed[..input.len()].copy_from_slice(input);
    Ok(seed)
}

impl CtrDrbg {
    /// Instantiates from exactly 48 bytes of entropy and a personalization string of at
    /// most 48 bytes.
    ///
    /// # Errors
    /// [`CryptoError::Parameter`] for wrong lengths.
    pub fn instantiate(entropy: &[u8], personalization: &[u8]) -> Result<Self, CryptoError> {
        if entropy.len() != CTR_DRBG_SEED_LEN {
            return Err(CryptoError::Parameter {
                algorithm: "CTR-DRBG".to_owned(),
                message: format!(
                    "needs {CTR_DRBG_SEED_LEN} bytes of entropy without a derivation function, got {}",
                    entropy.len()
                ),
            });
        }
        let mut seed = pad_seed(personalization, "CTR-DRBG")?;
        for (s, e) in seed.iter_mut().zip(entropy) {
            *s ^= e;
        }
        let mut drbg = CtrDrbg {
            key: [0; 32],
            value: [0; 16],
            reseed_counter: 1,
            from_os: false,
        };
        drbg.update(&seed);
        Ok(drbg)
    }

    /// Instantiates from 48 bytes of OS entropy.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`], or a personalization string over 48 bytes.
    pub fn from_os(personalization: &[u8]) -> Result<Self, CryptoError> {
        let mut entropy = Zeroizing::new([0u8; 48]);
        os_random(entropy.as_mut())?;
        let mut drbg = Self::instantiate(entropy.as_ref(), personalization)?;
        drbg.from_os = true;
        Ok(drbg)
    }

    fn increment(&mut self) {
        let v = u128::from_be_bytes(self.value).wrapping_add(1);
        self.value = v.to_be_bytes();
    }

    fn update(&mut self, provided: &[u8; 48]) {
        let cipher = aes::Aes256::new(&self.key.into());
        let mut temp = Zeroizing::new([0u8; 48]);
        for chunk in temp.chunks_mut(16) {
            self.increment();
            let mut block = self.value.into();
            cipher.encrypt_block(&mut block);
            chunk.copy_from_slice(&block);
        }
        for (t, p) in temp.iter_mut().zip(provided) {
            *t ^= p;
        }
        self.key.copy_from_slice(&temp[..32]);
        self.value.copy_from_slice(&temp[32..]);
    }

    /// Mixes 48 bytes of fresh entropy and optional additional input (at most 48 bytes).
    ///
    /// # Errors
    /// [`CryptoError::Parameter`] for wrong lengths.
    pub fn reseed(&mut self, entropy: &[u8], additional: &[u8]) -> Result<(), CryptoError> {
        if entropy.len() != CTR_DRBG_SEED_LEN {
            return Err(CryptoError::Parameter {
                algorithm: "CTR-DRBG".to_owned(),
                message: format!("reseed needs {CTR_DRBG_SEED_LEN} bytes of entropy"),
            });
        }
        let mut seed = pad_seed(additional, "CTR-DRBG")?;
        for (s, e) in seed.iter_mut().zip(entropy) {
            *s ^= e;
        }
        self.update(&seed);
        self.reseed_counter = 1;
        Ok(())
    }

    /// Fills `out` (at most [`MAX_REQUEST`] bytes) with optional additional input (at most
    /// 48 bytes).
    ///
    /// # Errors
    /// Request too large, reseed needed (caller-seeded), or OS entropy failure.
    pub fn generate(&mut self, out: &mut [u8], additional: &[u8]) -> Result<(), CryptoError> {
        if out.len() > MAX_REQUEST {
            return Err(too_large("CTR-DRBG", out.len()));
        }
        if self.reseed_counter > RESEED_INTERVAL {
            if !self.from_os {
                return Err(reseed_required("CTR-DRBG"));
            }
            let mut entropy = Zeroizing::new([0u8; 48]);
            os_random(entropy.as_mut())?;
            self.reseed(entropy.as_ref(), &[])?;
        }
        let additional = pad_seed(additional, "CTR-DRBG")?;
        if additional.iter().any(|&b| b != 0) {
            self.update(&additional);
        }
        let cipher = aes::Aes256::new(&self.key.into());
        for chunk in out.chunks_mut(16) {
            self.increment();
            let mut block = self.value.into();
            cipher.encrypt_block(&mut block);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        self.update(&additional);
        self.reseed_counter += 1;
        Ok(())
    }
}

impl Drop for CtrDrbg {
    fn drop(&mut self) {
        self.key.zeroize();
        self.value.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_seeded_generators_differ() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        HmacDrbg::from_os(b"t")
            .unwrap()
            .generate(&mut a, &[])
            .unwrap();
        HmacDrbg::from_os(b"t")
            .unwrap()
            .generate(&mut b, &[])
            .unwrap();
        assert_ne!(a, b);
        CtrDrbg::from_os(b"t")
            .unwrap()
            .generate(&mut a, &[])
            .unwrap();
        CtrDrbg::from_os(b"t")
            .unwrap()
            .generate(&mut b, &[])
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn requests_over_the_limit_are_refused() {
        let mut big = vec![0u8; MAX_REQUEST + 1];
        assert!(
            HmacDrbg::from_os(b"")
                .unwrap()
                .generate(&mut big, &[])
                .is_err()
        );
        assert!(
            CtrDrbg::from_os(b"")
                .unwrap()
                .generate(&mut big, &[])
                .is_err()
        );
    }

    #[test]
    fn a_caller_seeded_generator_stops_when_its_reseed_interval_is_used_up() {
        let mut drbg = HmacDrbg::instantiate(&[1; 32], &[2; 16], &[]);
        drbg.reseed_counter = RESEED_INTERVAL + 1;
        assert!(drbg.generate(&mut [0; 8], &[]).is_err());
        drbg.reseed(&[3; 32], &[]);
        assert!(drbg.generate(&mut [0; 8], &[]).is_ok());
    }

    #[test]
    fn ctr_drbg_refuses_short_entropy() {
        assert!(CtrDrbg::instantiate(&[0; 32], &[]).is_err());
    }

    #[test]
    fn debug_output_hides_the_state() {
        let drbg = HmacDrbg::instantiate(&[9; 32], &[9; 16], &[]);
        assert_eq!(format!("{drbg:?}"), "HmacDrbg { .. }");
    }
}
