//! One interface for every block cipher and mode: a [`CipherSuite`] (`ARIA-256-GCM`,
//! `SEED-128-CBC`, `LEA-256-CTR`, ...) and a keyed [`SymmetricCipher`] that encrypts and
//! decrypts with an explicit nonce, or seals and opens with a fresh random nonce.
//!
//! AES comes from RustCrypto (`aes`), and AES-128/256-GCM from `ring` for speed; ARIA, SEED,
//! LEA and HIGHT are this crate's own [`crate::block`] implementations of the `cipher`
//! traits, so RustCrypto's generic GCM (`aes-gcm`), `ctr` and `cbc` run over all of them.

use std::fmt;

use aes_gcm::AesGcm;
use aes_gcm::aead::AeadInOut;
use cipher::consts::{U12, U16};
use cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, BlockSizeUser,
    InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper, block_padding::Pkcs7,
};

use crate::block::{Hight, Lea128, Lea192, Lea256, Seed};
use crate::error::{CryptoError, os_random};

/// A block cipher haetae offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockCipherKind {
    /// AES with a 128-bit key (FIPS 197).
    Aes128,
    /// AES with a 192-bit key.
    Aes192,
    /// AES with a 256-bit key.
    Aes256,
    /// ARIA with a 128-bit key (KS X 1213, RFC 5794).
    Aria128,
    /// ARIA with a 192-bit key.
    Aria192,
    /// ARIA with a 256-bit key.
    Aria256,
    /// SEED (128-bit key, RFC 4269).
    Seed128,
    /// LEA with a 128-bit key (KS X 3246).
    Lea128,
    /// LEA with a 192-bit key.
    Lea192,
    /// LEA with a 256-bit key.
    Lea256,
    /// HIGHT (64-bit block, 128-bit key).
    Hight,
}

impl BlockCipherKind {
    /// Every cipher.
    pub const ALL: [BlockCipherKind; 11] = [
        BlockCipherKind::Aes128,
        BlockCipherKind::Aes192,
        BlockCipherKind::Aes256,
        BlockCipherKind::Aria128,
        BlockCipherKind::Aria192,
        BlockCipherKind::Aria256,
        BlockCipherKind::Seed128,
        BlockCipherKind::Lea128,
        BlockCipherKind::Lea192,
        BlockCipherKind::Lea256,
        BlockCipherKind::Hight,
    ];

    /// The registry name (`ARIA-256`).
    pub fn name(self) -> &'static str {
        match self {
            BlockCipherKind::Aes128 => "AES-128",
            BlockCipherKind::Aes192 => "AES-192",
            BlockCipherKind::Aes256 => "AES-256",
            BlockCipherKind::Aria128 => "ARIA-128",
            BlockCipherKind::Aria192 => "ARIA-192",
            BlockCipherKind::Aria256 => "ARIA-256",
            BlockCipherKind::Seed128 => "SEED-128",
            BlockCipherKind::Lea128 => "LEA-128",
            BlockCipherKind::Lea192 => "LEA-192",
            BlockCipherKind::Lea256 => "LEA-256",
            BlockCipherKind::Hight => "HIGHT",
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            BlockCipherKind::Aes192 | BlockCipherKind::Aria192 | BlockCipherKind::Lea192 => 24,
            BlockCipherKind::Aes256 | BlockCipherKind::Aria256 | BlockCipherKind::Lea256 => 32,
            _ => 16,
        }
    }

    /// Block length in bytes.
    pub fn block_len(self) -> usize {
        if self == BlockCipherKind::Hight {
            8
        } else {
            16
        }
    }
}

/// A mode of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Galois/Counter Mode with a 96-bit nonce and a 128-bit tag (SP 800-38D). Authenticated.
    Gcm,
    /// Counter mode, the whole block as a big-endian counter (SP 800-38A). Not authenticated.
    Ctr,
    /// Cipher block chaining with PKCS#7 padding (SP 800-38A). Not authenticated; for
    /// interoperating with legacy clients (SEED-CBC keypads).
    CbcPkcs7,
    /// Counter with CBC-MAC (SP 800-38C) with a 96-bit nonce and a 128-bit tag, as TLS and
    /// `IPsec` use it; at most 2^24 - 1 bytes per message. Authenticated. For other nonce
    /// and tag lengths use [`crate::ccm::CcmCipher`].
    Ccm,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 4] = [Mode::Gcm, Mode::Ccm, Mode::Ctr, Mode::CbcPkcs7];

    /// The registry name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Gcm => "GCM",
            Mode::Ctr => "CTR",
            Mode::CbcPkcs7 => "CBC",
            Mode::Ccm => "CCM",
        }
    }
}

/// A block cipher and a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CipherSuite {
    /// The block cipher.
    pub cipher: BlockCipherKind,
    /// The mode.
    pub mode: Mode,
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.cipher.name(), self.mode.name())
    }
}

impl CipherSuite {
    /// A suite, refusing GCM and CCM over a 64-bit block.
    ///
    /// # Errors
    /// [`CryptoError::Unsupported`] for GCM or CCM over HIGHT.
    pub fn new(cipher: BlockCipherKind, mode: Mode) -> Result<Self, CryptoError> {
        if matches!(mode, Mode::Gcm | Mode::Ccm) && cipher.block_len() != 16 {
            return Err(CryptoError::Unsupported {
                name: format!("{}-{}", cipher.name(), mode.name()),
                why: format!(
                    "{} needs a 128-bit block; use HIGHT-CTR or HIGHT-CBC with an HMAC, or LEA-128-{}",
                    mode.name(),
                    mode.name()
                ),
            });
        }
        Ok(CipherSuite { cipher, mode })
    }

    /// Parses `ARIA-256-GCM`, `seed-cbc`, `LEA_128_CTR` (case and separators are free).
    ///
    /// # Errors
    /// [`CryptoError::Unsupported`] naming what is not known.
    pub fn parse(name: &str) -> Result<Self, CryptoError> {
        let unsupported = |why: &str| CryptoError::Unsupported {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        let wanted = crate::registry::normalise(name);
        for mode in Mode::ALL {
            let Some(cipher_part) = wanted.strip_suffix(&mode.name().to_ascii_lowercase()) else {
                continue;
            };
            let cipher_part = if cipher_part == "seed" {
                "seed128"
            } else {
                cipher_part
            };
            let cipher_part = if cipher_part == "hight128" {
                "hight"
            } else {
                cipher_part
            };
            let cipher = BlockCipherKind::ALL
                .into_iter()
                .find(|c| crate::registry::normalise(c.name()) == cipher_part)
                .ok_or_else(|| {
                    unsupported(
                        "unknown block cipher; choose AES, ARIA or LEA (128/192/256), SEED-128 or HIGHT",
                    )
                })?;
            return CipherSuite::new(cipher, mode);
        }
        if wanted.ends_with("ecb") {
            return Err(unsupported(
                "ECB leaks the plaintext's structure and is refused; use GCM",
            ));
        }
        Err(unsupported(
            "the mode must be GCM, CCM, CTR or CBC (for example ARIA-256-GCM)",
        ))
    }

    /// The nonce (GCM) or IV (CTR, CBC) length in bytes.
    pub fn nonce_len(self) -> usize {
        match self.mode {
            Mode::Gcm | Mode::Ccm => 12,
            Mode::Ctr | Mode::CbcPkcs7 => self.cipher.block_len(),
        }
    }

    /// The authentication tag length in bytes (0 for unauthenticated modes).
    pub fn tag_len(self) -> usize {
        if self.is_authenticated() { 16 } else { 0 }
    }

    /// Whether the mode authenticates the data.
    pub fn is_authenticated(self) -> bool {
        matches!(self.mode, Mode::Gcm | Mode::Ccm)
    }
}

/// What every keyed mode does; one implementation per mode, generic over the cipher.
pub(crate) trait ModeEngine: Send + Sync {
    fn encrypt(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError>;
    fn decrypt(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

/// Largest GCM plaintext (SP 800-38D: 2^39 - 256 bits).
const GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

struct GcmEngine<C: BlockSizeUser<BlockSize = U16>>(AesGcm<C, U12>);

impl<C> ModeEngine for GcmEngine<C>
where
    C: BlockSizeUser<BlockSize = U16> + BlockCipherEncrypt + Send + Sync,
{
    fn encrypt(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() as u64 > GCM_MAX_PLAINTEXT {
            return Err(CryptoError::TooLong {
                algorithm: "GCM".to_owned(),
                len: plaintext.len(),
                max: GCM_MAX_PLAINTEXT,
            });
        }
        let nonce = aes_gcm::Nonce::<U12>::try_from(nonce).map_err(|_| nonce_error())?;
        let mut out = Vec::with_capacity(plaintext.len() + 16);
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .encrypt_inout_detached(&nonce, aad, out.as_mut_slice().into())
            .map_err(|_| CryptoError::TooLong {
                algorithm: "GCM".to_owned(),
                len: plaintext.len(),
                max: GCM_MAX_PLAINTEXT,
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn decrypt(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = aes_gcm::Nonce::<U12>::try_from(nonce).map_err(|_| nonce_error())?;
        let body_len = ciphertext
            .len()
            .checked_sub(16)
            .ok_or(CryptoError::DecryptionFailed)?;
        let (body, tag) = ciphertext.split_at(body_len);
        let tag = aes_gcm::Tag::<U16>::try_from(tag).map_err(|_| CryptoError::DecryptionFailed)?;
        let mut out = body.to_vec();
        self.0
            .decrypt_inout_detached(&nonce, aad, out.as_mut_slice().into(), &tag)
            .map_err(|_| CryptoError::DecryptionFailed)?;
        Ok(out)
    }
}

/// Placeholder error replaced by the caller with the suite's name and lengths.
fn nonce_error() -> CryptoError {
    CryptoError::NonceLength {
        suite: String::new(),
        expected: 0,
        got: 0,
    }
}

/// Applies a CTR keystream for cipher `C` (one monomorphised function per counter layout).
type CtrKeystream<C> = fn(&C, &[u8], &mut [u8]) -> Result<(), CryptoError>;

/// CTR over cipher `C`.
struct CtrEngine<C> {
    cipher: C,
    apply: CtrKeystream<C>,
}

impl<C: Send + Sync> ModeEngine for CtrEngine<C> {
    fn encrypt(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if !aad.is_empty() {
            return Err(not_authenticated());
        }
        let mut out = plaintext.to_vec();
        (self.apply)(&self.cipher, nonce, &mut out)?;
        Ok(out)
    }

    fn decrypt(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.encrypt(nonce, aad, ciphertext)
    }
}

fn ctr128_keystream<C>(cipher: &C, iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError>
where
    C: Clone + BlockSizeUser<BlockSize = U16> + BlockCipherEncrypt,
{
    let core = ctr::CtrCore::<C, ctr::flavors::Ctr128BE>::inner_iv_slice_init(cipher.clone(), iv)
        .map_err(|_| nonce_error())?;
    StreamCipherCoreWrapper::from_core(core)
        .try_apply_keystream(buf)
        .map_err(|_| counter_exhausted(buf.len()))
}

fn ctr64_keystream(cipher: &Hight, iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
    let core =
        ctr::CtrCore::<Hight, ctr::flavors::Ctr64BE>::inner_iv_slice_init(cipher.clone(), iv)
            .map_err(|_| nonce_error())?;
    StreamCipherCoreWrapper::from_core(core)
        .try_apply_keystream(buf)
        .map_err(|_| counter_exhausted(buf.len()))
}

fn counter_exhausted(len: usize) -> CryptoError {
    CryptoError::TooLong {
        algorithm: "CTR".to_owned(),
        len,
        max: u64::MAX,
    }
}

fn not_authenticated() -> CryptoError {
    CryptoError::NotAuthenticated {
        suite: String::new(),
    }
}

struct CbcEngine<C>(C);

impl<C> ModeEngine for CbcEngine<C>
where
    C: Clone + Send + Sync + BlockSizeUser + BlockCipherEncrypt + BlockCipherDecrypt,
{
    fn encrypt(&self, iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if !aad.is_empty() {
            return Err(not_authenticated());
        }
        let mode = cbc::Encryptor::<C>::inner_iv_slice_init(self.0.clone(), iv)
            .map_err(|_| nonce_error())?;
        Ok(mode.encrypt_padded_vec::<Pkcs7>(plaintext))
    }

    fn decrypt(&self, iv: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if !aad.is_empty() {
            return Err(not_authenticated());
        }
        let mode = cbc::Decryptor::<C>::inner_iv_slice_init(self.0.clone(), iv)
            .map_err(|_| nonce_error())?;
        mode.decrypt_padded_vec::<Pkcs7>(ciphertext)
            .map_err(|_| CryptoError::DecryptionFailed)
    }
}

/// AES-128/256-GCM through `ring` (`BoringSSL`'s stitched AES-NI/VAES + CLMUL code), which is
/// two to three times faster than RustCrypto's separate CTR and GHASH passes on current
/// x86-64. `ring` keeps its own key schedule and does not zeroize it on drop (see
/// docs/crypto.md); the byte-for-byte agreement with RustCrypto is tested.
struct RingGcmEngine(ring::aead::LessSafeKey);

impl RingGcmEngine {
    fn new(algorithm: &'static ring::aead::Algorithm, key: &[u8]) -> Self {
        let Ok(unbound) = ring::aead::UnboundKey::new(algorithm, key) else {
            unreachable!("key length checked by SymmetricCipher::new")
        };
        RingGcmEngine(ring::aead::LessSafeKey::new(unbound))
    }

    fn nonce(nonce: &[u8]) -> Result<ring::aead::Nonce, CryptoError> {
        ring::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| nonce_error())
    }
}

impl ModeEngine for RingGcmEngine {
    fn encrypt(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = Self::nonce(nonce)?;
        let mut out = Vec::with_capacity(plaintext.len() + 16);
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), &mut out)
            .map_err(|_| CryptoError::TooLong {
                algorithm: "GCM".to_owned(),
                len: plaintext.len(),
                max: GCM_MAX_PLAINTEXT,
            })?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn decrypt(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = Self::nonce(nonce)?;
        let mut buf = ciphertext.to_vec();
        let len = self
            .0
            .open_in_place(nonce, ring::aead::Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::DecryptionFailed)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn wide_block_engine<C>(mode: Mode, key: &[u8]) -> Box<dyn ModeEngine>
where
    C: KeyInit
        + Clone
        + Send
        + Sync
        + 'static
        + BlockSizeUser<BlockSize = U16>
        + BlockCipherEncrypt
        + BlockCipherDecrypt,
{
    // The caller checked the key length against `BlockCipherKind::key_len`.
    let Ok(cipher) = C::new_from_slice(key) else {
        unreachable!("key length checked by SymmetricCipher::new")
    };
    match mode {
        Mode::Gcm => Box::new(GcmEngine(AesGcm::<C, U12>::from(cipher))),
        Mode::Ctr => Box::new(CtrEngine {
            cipher,
            apply: ctr128_keystream::<C>,
        }),
        Mode::CbcPkcs7 => Box::new(CbcEngine(cipher)),
        Mode::Ccm => Box::new(crate::ccm::CcmEngine::new(cipher, 12, 16)),
    }
}

fn hight_engine(mode: Mode, key: &[u8]) -> Box<dyn ModeEngine> {
    let Ok(cipher) = Hight::new_from_slice(key) else {
        unreachable!("key length checked by SymmetricCipher::new")
    };
    match mode {
        Mode::Ctr => Box::new(CtrEngine {
            cipher,
            apply: ctr64_keystream,
        }),
        // GCM and CCM were refused by `CipherSuite::new`.
        Mode::Gcm | Mode::Ccm | Mode::CbcPkcs7 => Box::new(CbcEngine(cipher)),
    }
}

/// A keyed cipher suite; `Debug` shows the suite only.
///
/// Every key schedule is zeroized on drop except the one inside `ring`, which
/// [`SymmetricCipher::new`] uses for AES-128/256-GCM because it is two to three times faster.
/// [`SymmetricCipher::new_zeroizing`] never uses `ring`; long-lived keys (the key ring's
/// master keys) are keyed that way, and [`SymmetricCipher::zeroizes_on_drop`] tells which
/// kind a value is.
pub struct SymmetricCipher {
    suite: CipherSuite,
    engine: Box<dyn ModeEngine>,
    zeroizes: bool,
}

impl fmt::Debug for SymmetricCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymmetricCipher")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SymmetricCipher {
    /// Keys `suite` with `key`.
    ///
    /// # Errors
    /// [`CryptoError::KeyLength`] when the key does not fit the cipher.
    pub fn new(suite: CipherSuite, key: &[u8]) -> Result<Self, CryptoError> {
        let suite = Self::check(suite, key)?;
        let (engine, zeroizes): (Box<dyn ModeEngine>, bool) = match (suite.cipher, suite.mode) {
            (BlockCipherKind::Aes128, Mode::Gcm) => (
                Box::new(RingGcmEngine::new(&ring::aead::AES_128_GCM, key)),
                false,
            ),
            (BlockCipherKind::Aes256, Mode::Gcm) => (
                Box::new(RingGcmEngine::new(&ring::aead::AES_256_GCM, key)),
                false,
            ),
            _ => (Self::rustcrypto_engine(suite.cipher, suite.mode, key), true),
        };
        Ok(SymmetricCipher {
            suite,
            engine,
            zeroizes,
        })
    }

    /// Like [`SymmetricCipher::new`], but every part of the key schedule is zeroized on drop:
    /// AES-GCM runs on RustCrypto's `aes-gcm` instead of `ring` (same output, about a third
    /// of the speed on AVX-512 machines). For keys that live long or are retired while the
    /// process runs.
    ///
    /// # Errors
    /// [`CryptoError::KeyLength`] when the key does not fit the cipher.
    pub fn new_zeroizing(suite: CipherSuite, key: &[u8]) -> Result<Self, CryptoError> {
        let suite = Self::check(suite, key)?;
        Ok(SymmetricCipher {
            suite,
            engine: Self::rustcrypto_engine(suite.cipher, suite.mode, key),
            zeroizes: true,
        })
    }

    /// Whether dropping this value zeroizes every copy of the expanded key (false only for
    /// AES-GCM keyed through `ring` by [`SymmetricCipher::new`]).
    pub fn zeroizes_on_drop(&self) -> bool {
        self.zeroizes
    }

    fn check(suite: CipherSuite, key: &[u8]) -> Result<CipherSuite, CryptoError> {
        let suite = CipherSuite::new(suite.cipher, suite.mode)?;
        if key.len() != suite.cipher.key_len() {
            return Err(CryptoError::KeyLength {
                algorithm: suite.cipher.name().to_owned(),
                expected: suite.cipher.key_len().to_string(),
                got: key.len(),
            });
        }
        Ok(suite)
    }

    fn rustcrypto_engine(cipher: BlockCipherKind, mode: Mode, key: &[u8]) -> Box<dyn ModeEngine> {
        match cipher {
            BlockCipherKind::Aes128 => wide_block_engine::<aes::Aes128>(mode, key),
            BlockCipherKind::Aes192 => wide_block_engine::<aes::Aes192>(mode, key),
            BlockCipherKind::Aes256 => wide_block_engine::<aes::Aes256>(mode, key),
            BlockCipherKind::Aria128 => wide_block_engine::<crate::block::Aria128>(mode, key),
            BlockCipherKind::Aria192 => wide_block_engine::<crate::block::Aria192>(mode, key),
            BlockCipherKind::Aria256 => wide_block_engine::<crate::block::Aria256>(mode, key),
            BlockCipherKind::Seed128 => wide_block_engine::<Seed>(mode, key),
            BlockCipherKind::Lea128 => wide_block_engine::<Lea128>(mode, key),
            BlockCipherKind::Lea192 => wide_block_engine::<Lea192>(mode, key),
            BlockCipherKind::Lea256 => wide_block_engine::<Lea256>(mode, key),
            BlockCipherKind::Hight => hight_engine(mode, key),
        }
    }

    /// The suite.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Encrypts with an explicit nonce (GCM) or IV (CTR, CBC). GCM output is ciphertext
    /// followed by the 16-byte tag. Never reuse a GCM nonce or a CTR IV under one key.
    ///
    /// # Errors
    /// A wrong nonce length, associated data for an unauthenticated mode, or input too long.
    pub fn encrypt(
        &self,
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.check_nonce(nonce)?;
        self.engine
            .encrypt(nonce, aad, plaintext)
            .map_err(|e| self.name_error(e, nonce))
    }

    /// Decrypts what [`SymmetricCipher::encrypt`] produced.
    ///
    /// # Errors
    /// [`CryptoError::DecryptionFailed`] when the tag or padding does not check.
    pub fn decrypt(
        &self,
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.check_nonce(nonce)?;
        self.engine
            .decrypt(nonce, aad, ciphertext)
            .map_err(|e| self.name_error(e, nonce))
    }

    /// Encrypts under a fresh random nonce from the OS: `nonce || ciphertext || tag`.
    /// Only for authenticated suites.
    ///
    /// # Errors
    /// [`CryptoError::NotAuthenticated`] for CTR/CBC; [`CryptoError::Entropy`].
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if !self.suite.is_authenticated() {
            return Err(CryptoError::NotAuthenticated {
                suite: self.suite.to_string(),
            });
        }
        let mut nonce = vec![0u8; self.suite.nonce_len()];
        os_random(&mut nonce)?;
        let body = self.encrypt(&nonce, aad, plaintext)?;
        nonce.extend_from_slice(&body);
        Ok(nonce)
    }

    /// Opens what [`SymmetricCipher::seal`] produced.
    ///
    /// # Errors
    /// [`CryptoError::DecryptionFailed`] for altered or foreign data.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if !self.suite.is_authenticated() {
            return Err(CryptoError::NotAuthenticated {
                suite: self.suite.to_string(),
            });
        }
        if sealed.len() < self.suite.nonce_len() + self.suite.tag_len() {
            return Err(CryptoError::DecryptionFailed);
        }
        let (nonce, body) = sealed.split_at(self.suite.nonce_len());
        self.decrypt(nonce, aad, body)
    }

    fn check_nonce(&self, nonce: &[u8]) -> Result<(), CryptoError> {
        if nonce.len() == self.suite.nonce_len() {
            Ok(())
        } else {
            Err(CryptoError::NonceLength {
                suite: self.suite.to_string(),
                expected: self.suite.nonce_len(),
                got: nonce.len(),
            })
        }
    }

    fn name_error(&self, error: CryptoError, nonce: &[u8]) -> CryptoError {
        match error {
            CryptoError::NonceLength { .. } => CryptoError::NonceLength {
                suite: self.suite.to_string(),
                expected: self.suite.nonce_len(),
                got: nonce.len(),
            },
            CryptoError::NotAuthenticated { .. } => CryptoError::NotAuthenticated {
                suite: self.suite.to_string(),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_suite() -> Vec<CipherSuite> {
        let mut suites = Vec::new();
        for cipher in BlockCipherKind::ALL {
            for mode in Mode::ALL {
                if let Ok(suite) = CipherSuite::new(cipher, mode) {
                    suites.push(suite);
                }
            }
        }
        suites
    }

    #[test]
    fn ring_and_rustcrypto_aes_gcm_agree_and_open_each_other() {
        for (cipher, key_len) in [(BlockCipherKind::Aes128, 16), (BlockCipherKind::Aes256, 32)] {
            let key: Vec<u8> = (0..key_len as u8).collect();
            let ring =
                SymmetricCipher::new(CipherSuite::new(cipher, Mode::Gcm).unwrap(), &key).unwrap();
            let rust = SymmetricCipher::rustcrypto_engine(cipher, Mode::Gcm, &key);
            for len in [0, 1, 15, 16, 17, 1000] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let ours = ring.encrypt(&[3; 12], b"aad", &pt).unwrap();
                assert_eq!(ours, rust.encrypt(&[3; 12], b"aad", &pt).unwrap(), "{len}");
                assert_eq!(rust.decrypt(&[3; 12], b"aad", &ours).unwrap(), pt);
            }
        }
    }

    #[test]
    fn only_ring_aes_gcm_leaves_its_key_schedule_unzeroized() {
        for suite in every_suite() {
            let key = vec![1u8; suite.cipher.key_len()];
            let fast = SymmetricCipher::new(suite, &key).unwrap();
            let ring_backed = suite.mode == Mode::Gcm
                && matches!(
                    suite.cipher,
                    BlockCipherKind::Aes128 | BlockCipherKind::Aes256
                );
            assert_eq!(fast.zeroizes_on_drop(), !ring_backed, "{suite}");
            let careful = SymmetricCipher::new_zeroizing(suite, &key).unwrap();
            assert!(careful.zeroizes_on_drop(), "{suite}");
            let nonce = vec![5u8; suite.nonce_len()];
            assert_eq!(
                fast.encrypt(&nonce, &[], b"same bytes either way").unwrap(),
                careful
                    .encrypt(&nonce, &[], b"same bytes either way")
                    .unwrap(),
                "{suite}"
            );
        }
    }

    #[test]
    fn suite_names_parse_back_to_the_same_suite() {
        for suite in every_suite() {
            assert_eq!(CipherSuite::parse(&suite.to_string()).unwrap(), suite);
        }
        assert_eq!(
            CipherSuite::parse("seed-cbc").unwrap().cipher,
            BlockCipherKind::Seed128
        );
    }

    #[test]
    fn ecb_and_gcm_over_hight_are_refused_by_name() {
        assert!(CipherSuite::parse("AES-128-ECB").is_err());
        assert!(CipherSuite::parse("HIGHT-GCM").is_err());
        assert!(CipherSuite::parse("HIGHT-CCM").is_err());
    }

    #[test]
    fn every_suite_decrypts_what_it_encrypts_for_lengths_around_the_block_size() {
        for suite in every_suite() {
            let key: Vec<u8> = (0..suite.cipher.key_len() as u8).collect();
            let cipher = SymmetricCipher::new(suite, &key).unwrap();
            let nonce = vec![7u8; suite.nonce_len()];
            for len in [0, 1, 7, 8, 15, 16, 17, 33, 100] {
                let plaintext: Vec<u8> = (0..len as u8).collect();
                let ct = cipher.encrypt(&nonce, &[], &plaintext).unwrap();
                assert_eq!(
                    cipher.decrypt(&nonce, &[], &ct).unwrap(),
                    plaintext,
                    "{suite} {len}"
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_in_a_gcm_ciphertext_fails_decryption() {
        let suite = CipherSuite::parse("ARIA-256-GCM").unwrap();
        let cipher = SymmetricCipher::new(suite, &[1; 32]).unwrap();
        let mut sealed = cipher.seal(b"account 123", b"transfer 100000 KRW").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(
            cipher.open(b"account 123", &sealed),
            Err(CryptoError::DecryptionFailed)
        );
    }

    #[test]
    fn gcm_rejects_different_associated_data() {
        let suite = CipherSuite::parse("LEA-128-GCM").unwrap();
        let cipher = SymmetricCipher::new(suite, &[1; 16]).unwrap();
        let sealed = cipher.seal(b"a", b"secret").unwrap();
        assert_eq!(
            cipher.open(b"b", &sealed),
            Err(CryptoError::DecryptionFailed)
        );
        assert_eq!(cipher.open(b"a", &sealed).unwrap(), b"secret");
    }

    #[test]
    fn unauthenticated_modes_refuse_associated_data_and_sealing() {
        let suite = CipherSuite::parse("SEED-CBC").unwrap();
        let cipher = SymmetricCipher::new(suite, &[1; 16]).unwrap();
        let err = cipher.encrypt(&[0; 16], b"aad", b"x").unwrap_err();
        assert!(err.to_string().contains("SEED-128-CBC"), "{err}");
        assert!(matches!(
            cipher.seal(&[], b"x"),
            Err(CryptoError::NotAuthenticated { .. })
        ));
    }

    #[test]
    fn a_wrong_key_length_names_the_cipher_and_the_length() {
        let suite = CipherSuite::parse("AES-256-GCM").unwrap();
        let err = SymmetricCipher::new(suite, &[0; 16]).unwrap_err();
        assert_eq!(err.to_string(), "AES-256 needs a 32-byte key, got 16 bytes");
    }

    #[test]
    fn a_wrong_nonce_length_is_an_error_not_a_panic() {
        let suite = CipherSuite::parse("AES-128-GCM").unwrap();
        let cipher = SymmetricCipher::new(suite, &[0; 16]).unwrap();
        let err = cipher.encrypt(&[0; 8], &[], b"x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "AES-128-GCM needs a 12-byte nonce/IV, got 8 bytes"
        );
    }

    #[test]
    fn truncated_or_misaligned_ciphertexts_fail_cleanly() {
        for name in ["AES-128-GCM", "SEED-128-CBC", "HIGHT-CBC"] {
            let suite = CipherSuite::parse(name).unwrap();
            let cipher = SymmetricCipher::new(suite, &[0; 16]).unwrap();
            let nonce = vec![0; suite.nonce_len()];
            for len in [0, 1, 5, 15, 17] {
                assert_eq!(
                    cipher.decrypt(&nonce, &[], &vec![0; len]),
                    Err(CryptoError::DecryptionFailed),
                    "{name} {len}"
                );
            }
        }
    }

    #[test]
    fn debug_output_shows_the_suite_and_no_key_material() {
        let suite = CipherSuite::parse("ARIA-128-GCM").unwrap();
        let cipher = SymmetricCipher::new(suite, &[0xAB; 16]).unwrap();
        let debug = format!("{cipher:?}");
        assert!(debug.contains("Aria128"), "{debug}");
        assert!(!debug.to_lowercase().contains("ab"), "{debug}");
    }
}
