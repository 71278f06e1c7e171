//! CCM (Counter with CBC-MAC, NIST SP 800-38C / RFC 3610) over any 128-bit block cipher
//! haetae offers: AES, ARIA, SEED and LEA.
//!
//! [`crate::SymmetricCipher`] offers CCM with the TLS/IPsec parameters (12-byte nonce,
//! 16-byte tag, so at most 2^24 - 1 bytes of plaintext per message). [`CcmCipher`] takes the
//! nonce length (7 to 13 bytes) and tag length (4 to 16, even) of the standard for
//! interoperating with a peer that fixed other values.
//!
//! This is our implementation rather than RustCrypto's `ccm` crate because that crate fixes
//! the nonce and tag lengths as types, and a peer's lengths are only known at run time. The
//! tag is compared in constant time; on a failed tag the decrypted plaintext is zeroized
//! and never returned.

use cipher::consts::U16;
use cipher::{Block, BlockCipherEncrypt, BlockSizeUser, KeyInit};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::CryptoError;
use crate::symmetric::{BlockCipherKind, ModeEngine};

/// CCM over block cipher `C` with run-time nonce and tag lengths (already validated).
pub(crate) struct CcmEngine<C> {
    cipher: C,
    nonce_len: usize,
    tag_len: usize,
}

/// Checks CCM's parameter rules (SP 800-38C A.1): nonce 7..=13 bytes, tag 4..=16 and even.
pub(crate) fn check_parameters(nonce_len: usize, tag_len: usize) -> Result<(), CryptoError> {
    if !(7..=13).contains(&nonce_len) {
        return Err(CryptoError::Parameter {
            algorithm: "CCM".to_owned(),
            message: format!("the nonce must be 7 to 13 bytes, got {nonce_len}"),
        });
    }
    if !(4..=16).contains(&tag_len) || !tag_len.is_multiple_of(2) {
        return Err(CryptoError::Parameter {
            algorithm: "CCM".to_owned(),
            message: format!("the tag must be 4, 6, 8, 10, 12, 14 or 16 bytes, got {tag_len}"),
        });
    }
    Ok(())
}

impl<C> CcmEngine<C>
where
    C: BlockSizeUser<BlockSize = U16> + BlockCipherEncrypt,
{
    pub(crate) fn new(cipher: C, nonce_len: usize, tag_len: usize) -> Self {
        CcmEngine {
            cipher,
            nonce_len,
            tag_len,
        }
    }

    /// Bytes of the length field (`q` in SP 800-38C, `L` in RFC 3610).
    fn q(&self) -> usize {
        15 - self.nonce_len
    }

    /// The largest payload the length field can express.
    fn max_payload(&self) -> u64 {
        let bits = 8 * self.q() as u32;
        if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        }
    }

    /// CBC-MAC over `B0 || encoded(aad) || payload`, each zero-padded to the block size.
    fn cbc_mac(&self, nonce: &[u8], aad: &[u8], payload: &[u8]) -> Block<C> {
        let q = self.q();
        let mut y = Block::<C>::default();
        let adata = if aad.is_empty() { 0 } else { 0x40 };
        y[0] = adata | ((((self.tag_len - 2) / 2) as u8) << 3) | (q as u8 - 1);
        y[1..1 + self.nonce_len].copy_from_slice(nonce);
        let len = (payload.len() as u64).to_be_bytes();
        y[16 - q..].copy_from_slice(&len[8 - q..]);
        self.cipher.encrypt_block(&mut y);
        if !aad.is_empty() {
            // SP 800-38C A.2.2: the length of the associated data, then the data.
            let a = aad.len() as u64;
            let mut header = Vec::with_capacity(10 + aad.len());
            if a < (1 << 16) - (1 << 8) {
                header.extend_from_slice(&(a as u16).to_be_bytes());
            } else if a <= u64::from(u32::MAX) {
                header.extend_from_slice(&[0xff, 0xfe]);
                header.extend_from_slice(&(a as u32).to_be_bytes());
            } else {
                header.extend_from_slice(&[0xff, 0xff]);
                header.extend_from_slice(&a.to_be_bytes());
            }
            header.extend_from_slice(aad);
            self.absorb(&mut y, &header);
        }
        self.absorb(&mut y, payload);
        y
    }

    fn absorb(&self, y: &mut Block<C>, data: &[u8]) {
        for chunk in data.chunks(16) {
            for (state, byte) in y.iter_mut().zip(chunk) {
                *state ^= byte;
            }
            self.cipher.encrypt_block(y);
        }
    }

    /// The counter block `Ctr_i`: flags `q - 1`, the nonce, `i` in `q` bytes.
    fn counter_block(&self, nonce: &[u8], i: u64) -> Block<C> {
        let q = self.q();
        let mut block = Block::<C>::default();
        block[0] = q as u8 - 1;
        block[1..1 + self.nonce_len].copy_from_slice(nonce);
        let counter = i.to_be_bytes();
        block[16 - q..].copy_from_slice(&counter[8 - q..]);
        block
    }

    /// XORs the keystream `S_1, S_2, ...` into `data`, eight counter blocks per cipher call
    /// so that pipelined implementations (AES-NI) run them together.
    fn apply_keystream(&self, nonce: &[u8], data: &mut [u8]) {
        const BATCH: usize = 8;
        let mut keystream = [Block::<C>::default(); BATCH];
        let mut counter = 1u64;
        for chunk in data.chunks_mut(16 * BATCH) {
            let blocks = chunk.len().div_ceil(16);
            for block in &mut keystream[..blocks] {
                *block = self.counter_block(nonce, counter);
                counter += 1;
            }
            self.cipher.encrypt_blocks(&mut keystream[..blocks]);
            for (d, k) in chunk
                .iter_mut()
                .zip(keystream.iter().flat_map(|b| b.iter()))
            {
                *d ^= k;
            }
        }
        keystream.iter_mut().for_each(Zeroize::zeroize);
    }

    /// `T xor MSB_t(S_0)`.
    fn masked_tag(&self, nonce: &[u8], mac: &Block<C>) -> Block<C> {
        let mut s0 = self.counter_block(nonce, 0);
        self.cipher.encrypt_block(&mut s0);
        for (s, m) in s0.iter_mut().zip(mac.iter()) {
            *s ^= m;
        }
        s0
    }

    fn check_lengths(&self, nonce: &[u8], payload_len: usize) -> Result<(), CryptoError> {
        if nonce.len() != self.nonce_len {
            return Err(CryptoError::NonceLength {
                suite: String::new(),
                expected: self.nonce_len,
                got: nonce.len(),
            });
        }
        if payload_len as u64 > self.max_payload() {
            return Err(CryptoError::TooLong {
                algorithm: format!("CCM with a {}-byte nonce", self.nonce_len),
                len: payload_len,
                max: self.max_payload(),
            });
        }
        Ok(())
    }
}

impl<C> ModeEngine for CcmEngine<C>
where
    C: BlockSizeUser<BlockSize = U16> + BlockCipherEncrypt + Send + Sync,
{
    fn encrypt(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.check_lengths(nonce, plaintext.len())?;
        let mac = self.cbc_mac(nonce, aad, plaintext);
        let tag = self.masked_tag(nonce, &mac);
        let mut out = Vec::with_capacity(plaintext.len() + self.tag_len);
        out.extend_from_slice(plaintext);
        self.apply_keystream(nonce, &mut out);
        out.extend_from_slice(&tag[..self.tag_len]);
        Ok(out)
    }

    fn decrypt(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let body_len = ciphertext
            .len()
            .checked_sub(self.tag_len)
            .ok_or(CryptoError::DecryptionFailed)?;
        self.check_lengths(nonce, body_len)?;
        let (body, tag) = ciphertext.split_at(body_len);
        let mut plaintext = body.to_vec();
        self.apply_keystream(nonce, &mut plaintext);
        let mac = self.cbc_mac(nonce, aad, &plaintext);
        let expected = self.masked_tag(nonce, &mac);
        if bool::from(expected[..self.tag_len].ct_eq(tag)) {
            Ok(plaintext)
        } else {
            plaintext.zeroize();
            Err(CryptoError::DecryptionFailed)
        }
    }
}

fn ccm_engine<C>(key: &[u8], nonce_len: usize, tag_len: usize) -> Box<dyn ModeEngine>
where
    C: KeyInit + BlockSizeUser<BlockSize = U16> + BlockCipherEncrypt + Send + Sync + 'static,
{
    let Ok(cipher) = C::new_from_slice(key) else {
        unreachable!("key length checked by the caller")
    };
    Box::new(CcmEngine::new(cipher, nonce_len, tag_len))
}

/// Builds the CCM engine for `cipher` (the key length and parameters already checked).
pub(crate) fn engine_for(
    cipher: BlockCipherKind,
    key: &[u8],
    nonce_len: usize,
    tag_len: usize,
) -> Result<Box<dyn ModeEngine>, CryptoError> {
    use crate::block::{Aria128, Aria192, Aria256, Lea128, Lea192, Lea256, Seed};
    Ok(match cipher {
        BlockCipherKind::Aes128 => ccm_engine::<aes::Aes128>(key, nonce_len, tag_len),
        BlockCipherKind::Aes192 => ccm_engine::<aes::Aes192>(key, nonce_len, tag_len),
        BlockCipherKind::Aes256 => ccm_engine::<aes::Aes256>(key, nonce_len, tag_len),
        BlockCipherKind::Aria128 => ccm_engine::<Aria128>(key, nonce_len, tag_len),
        BlockCipherKind::Aria192 => ccm_engine::<Aria192>(key, nonce_len, tag_len),
        BlockCipherKind::Aria256 => ccm_engine::<Aria256>(key, nonce_len, tag_len),
        BlockCipherKind::Seed128 => ccm_engine::<Seed>(key, nonce_len, tag_len),
        BlockCipherKind::Lea128 => ccm_engine::<Lea128>(key, nonce_len, tag_len),
        BlockCipherKind::Lea192 => ccm_engine::<Lea192>(key, nonce_len, tag_len),
        BlockCipherKind::Lea256 => ccm_engine::<Lea256>(key, nonce_len, tag_len),
        BlockCipherKind::Hight => {
            return Err(CryptoError::Unsupported {
                name: "HIGHT-CCM".to_owned(),
                why: "CCM needs a 128-bit block; use HIGHT-CTR or HIGHT-CBC with an HMAC, or LEA-128-CCM".to_owned(),
            });
        }
    })
}

/// CCM with the nonce and tag lengths chosen at run time, for interoperating with a peer
/// that fixed them (RFC 3610 packets use 13-byte nonces and 8- or 10-byte tags). For new
/// data use [`crate::SymmetricCipher`] with a `-CCM` or `-GCM` suite.
pub struct CcmCipher {
    cipher: BlockCipherKind,
    nonce_len: usize,
    tag_len: usize,
    engine: Box<dyn ModeEngine>,
}

impl std::fmt::Debug for CcmCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CcmCipher")
            .field("cipher", &self.cipher)
            .field("nonce_len", &self.nonce_len)
            .field("tag_len", &self.tag_len)
            .finish_non_exhaustive()
    }
}

impl CcmCipher {
    /// Keys CCM over `cipher` with `nonce_len`-byte nonces and `tag_len`-byte tags.
    ///
    /// # Errors
    /// [`CryptoError::KeyLength`], [`CryptoError::Parameter`] for lengths SP 800-38C does
    /// not allow, [`CryptoError::Unsupported`] for HIGHT (64-bit block).
    pub fn new(
        cipher: BlockCipherKind,
        key: &[u8],
        nonce_len: usize,
        tag_len: usize,
    ) -> Result<Self, CryptoError> {
        check_parameters(nonce_len, tag_len)?;
        if key.len() != cipher.key_len() {
            return Err(CryptoError::KeyLength {
                algorithm: cipher.name().to_owned(),
                expected: cipher.key_len().to_string(),
                got: key.len(),
            });
        }
        let engine = engine_for(cipher, key, nonce_len, tag_len)?;
        Ok(CcmCipher {
            cipher,
            nonce_len,
            tag_len,
            engine,
        })
    }

    /// Encrypts: `ciphertext || tag`.
    ///
    /// # Errors
    /// A wrong nonce length, or a plaintext longer than the length field allows.
    pub fn encrypt(
        &self,
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.engine
            .encrypt(nonce, aad, plaintext)
            .map_err(|e| self.name_error(e))
    }

    /// Decrypts and verifies what [`CcmCipher::encrypt`] produced.
    ///
    /// # Errors
    /// [`CryptoError::DecryptionFailed`] when the tag does not check.
    pub fn decrypt(
        &self,
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.engine
            .decrypt(nonce, aad, ciphertext)
            .map_err(|e| self.name_error(e))
    }

    fn name_error(&self, error: CryptoError) -> CryptoError {
        match error {
            CryptoError::NonceLength { expected, got, .. } => CryptoError::NonceLength {
                suite: format!("{}-CCM", self.cipher.name()),
                expected,
                got,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_outside_sp_800_38c_are_refused_with_the_rule() {
        for (n, t) in [(6, 16), (14, 16), (12, 3), (12, 5), (12, 18)] {
            let err = CcmCipher::new(BlockCipherKind::Aes128, &[0; 16], n, t).unwrap_err();
            assert!(err.to_string().contains("CCM"), "{err}");
        }
        assert!(CcmCipher::new(BlockCipherKind::Hight, &[0; 16], 12, 16).is_err());
    }

    #[test]
    fn a_seven_byte_nonce_allows_long_messages_and_a_thirteen_byte_nonce_caps_at_64_kib() {
        let short = CcmCipher::new(BlockCipherKind::Lea128, &[1; 16], 13, 16).unwrap();
        assert!(short.encrypt(&[0; 13], &[], &vec![0; 65_535]).is_ok());
        let err = short.encrypt(&[0; 13], &[], &vec![0; 65_536]).unwrap_err();
        assert!(
            matches!(err, CryptoError::TooLong { max: 65_535, .. }),
            "{err}"
        );
        let long = CcmCipher::new(BlockCipherKind::Lea128, &[1; 16], 7, 16).unwrap();
        assert!(long.encrypt(&[0; 7], &[], &vec![0; 70_000]).is_ok());
    }

    #[test]
    fn every_tag_and_nonce_length_round_trips_and_detects_tampering() {
        for cipher in BlockCipherKind::ALL {
            if cipher == BlockCipherKind::Hight {
                continue;
            }
            let key: Vec<u8> = (0..cipher.key_len() as u8).collect();
            for (n, t) in [(7, 4), (8, 6), (12, 16), (13, 8), (11, 10)] {
                let ccm = CcmCipher::new(cipher, &key, n, t).unwrap();
                let nonce = vec![9; n];
                for len in [0, 1, 15, 16, 17, 40] {
                    let pt: Vec<u8> = (0..len as u8).collect();
                    for aad in [&b""[..], b"hdr", &[7u8; 300][..]] {
                        let ct = ccm.encrypt(&nonce, aad, &pt).unwrap();
                        assert_eq!(ct.len(), len + t);
                        assert_eq!(ccm.decrypt(&nonce, aad, &ct).unwrap(), pt);
                        let mut bad = ct.clone();
                        bad[0] ^= 0x80;
                        assert_eq!(
                            ccm.decrypt(&nonce, aad, &bad),
                            Err(CryptoError::DecryptionFailed),
                            "{cipher:?} {n} {t} {len}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_ciphertext_shorter_than_the_tag_fails_without_panicking() {
        let ccm = CcmCipher::new(BlockCipherKind::Seed128, &[0; 16], 12, 16).unwrap();
        for len in [0, 1, 15] {
            assert_eq!(
                ccm.decrypt(&[0; 12], &[], &vec![0; len]),
                Err(CryptoError::DecryptionFailed)
            );
        }
        let err = ccm.decrypt(&[0; 11], &[], &[0; 20]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SEED-128-CCM needs a 12-byte nonce/IV, got 11 bytes"
        );
    }
}
