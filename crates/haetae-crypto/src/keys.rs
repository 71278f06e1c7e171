//! Keys: validated [`KeyId`]s, [`SecretKey`] buffers that zeroize and never print, a
//! [`KeyRing`] that encrypts with its current key and decrypts with any key it still holds
//! (rotation without re-encrypting everything at once), and envelope encryption for data at
//! rest: each object gets a fresh data key, wrapped by the ring's master key, which is
//! loaded from a file or an environment variable ([`MasterKeySource`]).
//!
//! Sealed formats (all integers big-endian; the header is authenticated as associated data):
//! - key-ring ciphertext: `"HK1" | id_len:u8 | id | nonce | ciphertext || tag`
//! - envelope: `"HE1" | suite_len:u8 | suite | wrapped_len:u16 | wrapped data key (a key-ring
//!   ciphertext) | nonce | ciphertext || tag`

use std::fmt;
use std::path::PathBuf;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{CryptoError, os_random};
use crate::symmetric::{CipherSuite, SymmetricCipher};

/// A key identifier: 1 to 64 characters from `A-Z a-z 0-9 . _ -`. It names a key; it is
/// never derived from the key's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates `id`.
    ///
    /// # Errors
    /// [`CryptoError::Parameter`] saying which rule it breaks.
    pub fn new(id: &str) -> Result<Self, CryptoError> {
        let ok_len = (1..=64).contains(&id.len());
        let ok_chars = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok_len && ok_chars {
            Ok(KeyId(id.to_owned()))
        } else {
            Err(CryptoError::Parameter {
                algorithm: "key id".to_owned(),
                message: format!(
                    "{id:?} must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-' (for example \"master-2026-11\")"
                ),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Secret key bytes: zeroized on drop, compared in constant time, `Debug` shows the length.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

impl SecretKey {
    /// `len` random bytes from the OS.
    ///
    /// # Errors
    /// [`CryptoError::Entropy`].
    pub fn generate(len: usize) -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        os_random(&mut bytes)?;
        Ok(SecretKey(bytes))
    }

    /// Takes ownership of `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        SecretKey(Zeroizing::new(bytes))
    }

    /// The key bytes (for handing to a cipher; do not log).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey {{ len: {}, .. }}", self.0.len())
    }
}

/// Where a master key comes from: a file (32 raw bytes, or 64 hex digits) readable by its
/// owner only, or an environment variable holding 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// A key file.
    File(PathBuf),
    /// An environment variable name.
    Env(String),
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl MasterKeySource {
    /// Loads a `len`-byte key. Errors name the file or variable, never its contents.
    ///
    /// # Errors
    /// [`CryptoError::KeySource`] saying what is wrong and how to fix it.
    pub fn load(&self, len: usize) -> Result<SecretKey, CryptoError> {
        let (name, raw) = match self {
            MasterKeySource::File(path) => {
                let name = path.display().to_string();
                let fail = |message: String| CryptoError::KeySource {
                    source_name: name.clone(),
                    message,
                };
                let meta =
                    std::fs::metadata(path).map_err(|e| fail(format!("cannot read it ({e})")))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = meta.permissions().mode();
                    if mode & 0o077 != 0 {
                        return Err(fail(format!(
                            "the file is readable by others (mode {:o}); run `chmod 600 {name}`",
                            mode & 0o777
                        )));
                    }
                }
                if meta.len() > 4096 {
                    return Err(fail("the file is too large to be a key".to_owned()));
                }
                let bytes = Zeroizing::new(
                    std::fs::read(path).map_err(|e| fail(format!("cannot read it ({e})")))?,
                );
                (name, bytes)
            }
            MasterKeySource::Env(var) => {
                let value = std::env::var(var).map_err(|_| CryptoError::KeySource {
                    source_name: format!("${var}"),
                    message: format!(
                        "the variable is not set; export {len} bytes as {} hex digits",
                        2 * len
                    ),
                })?;
                (format!("${var}"), Zeroizing::new(value.into_bytes()))
            }
        };
        if raw.len() == len && matches!(self, MasterKeySource::File(_)) {
            return Ok(SecretKey::from_bytes(raw.to_vec()));
        }
        let text = std::str::from_utf8(&raw).unwrap_or("");
        match decode_hex(text) {
            Some(bytes) if bytes.len() == len => Ok(SecretKey::from_bytes(bytes)),
            _ => Err(CryptoError::KeySource {
                source_name: name,
                message: format!(
                    "expected {len} raw bytes or {} hex digits; generate one with `head -c {len} /dev/urandom | xxd -p -c {len}`",
                    2 * len
                ),
            }),
        }
    }
}

const RING_MAGIC: &[u8; 3] = b"HK1";
const ENVELOPE_MAGIC: &[u8; 3] = b"HE1";

/// Keys under one AEAD suite: the current key encrypts, every held key decrypts.
pub struct KeyRing {
    suite: CipherSuite,
    keys: Vec<(KeyId, SymmetricCipher)>,
    current: usize,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("suite", &self.suite.to_string())
            .field("current", &self.current_id().as_str())
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    /// A ring with one key, which is current. `suite` must be authenticated (GCM).
    ///
    /// # Errors
    /// An unauthenticated suite or a key of the wrong length.
    pub fn new(suite: CipherSuite, id: KeyId, key: &SecretKey) -> Result<Self, CryptoError> {
        if !suite.is_authenticated() {
            return Err(CryptoError::NotAuthenticated {
                suite: suite.to_string(),
            });
        }
        // Ring keys live long and are retired while the process runs: key them so that
        // every copy of the schedule is zeroized on drop (no `ring` AES-GCM).
        let cipher = SymmetricCipher::new_zeroizing(suite, key.expose())?;
        Ok(KeyRing {
            suite,
            keys: vec![(id, cipher)],
            current: 0,
        })
    }

    /// A ring whose one key is loaded from `source`.
    ///
    /// # Errors
    /// See [`MasterKeySource::load`] and [`KeyRing::new`].
    pub fn from_source(
        suite: CipherSuite,
        id: KeyId,
        source: &MasterKeySource,
    ) -> Result<Self, CryptoError> {
        let key = source.load(suite.cipher.key_len())?;
        Self::new(suite, id, &key)
    }

    /// The suite.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The id of the key that encrypts.
    pub fn current_id(&self) -> &KeyId {
        &self.keys[self.current].0
    }

    /// The ids of every key held, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|(id, _)| id)
    }

    /// Adds `key` as the new current key; older keys stay for decryption.
    ///
    /// # Errors
    /// A duplicate id or a key of the wrong length.
    pub fn rotate(&mut self, id: KeyId, key: &SecretKey) -> Result<(), CryptoError> {
        if self.keys.iter().any(|(held, _)| *held == id) {
            return Err(CryptoError::Parameter {
                algorithm: "key ring".to_owned(),
                message: format!("key id {id} is already in the ring; choose a new id"),
            });
        }
        let cipher = SymmetricCipher::new_zeroizing(self.suite, key.expose())?;
        self.keys.push((id, cipher));
        self.current = self.keys.len() - 1;
        Ok(())
    }

    /// Drops a non-current key; data under it can no longer be decrypted.
    ///
    /// # Errors
    /// The current key, or an id not held.
    pub fn retire(&mut self, id: &KeyId) -> Result<(), CryptoError> {
        let index = self
            .keys
            .iter()
            .position(|(held, _)| held == id)
            .ok_or_else(|| CryptoError::UnknownKey { id: id.to_string() })?;
        if index == self.current {
            return Err(CryptoError::Parameter {
                algorithm: "key ring".to_owned(),
                message: format!("{id} is the current key; rotate to a new key before retiring it"),
            });
        }
        self.keys.remove(index);
        if index < self.current {
            self.current -= 1;
        }
        Ok(())
    }

    /// Encrypts under the current key: `"HK1" | id_len | id | nonce | ct || tag`.
    ///
    /// # Errors
    /// OS random failure or input too long.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (id, cipher) = &self.keys[self.current];
        let mut header = Vec::with_capacity(4 + id.0.len());
        header.extend_from_slice(RING_MAGIC);
        // KeyId is at most 64 bytes, so its length fits one byte.
        header.push(id.0.len() as u8);
        header.extend_from_slice(id.0.as_bytes());
        let bound = [header.as_slice(), aad].concat();
        let sealed = cipher.seal(&bound, plaintext)?;
        header.extend_from_slice(&sealed);
        Ok(header)
    }

    /// The key id a key-ring ciphertext names.
    ///
    /// # Errors
    /// [`CryptoError::Encoding`] when `sealed` is not a key-ring ciphertext.
    pub fn key_id_of(sealed: &[u8]) -> Result<KeyId, CryptoError> {
        Self::split(sealed).map(|(id, _, _)| id)
    }

    fn split(sealed: &[u8]) -> Result<(KeyId, &[u8], &[u8]), CryptoError> {
        let malformed = |message: &str| CryptoError::Encoding {
            what: "key-ring ciphertext".to_owned(),
            message: message.to_owned(),
        };
        if sealed.len() < 4 || &sealed[..3] != RING_MAGIC {
            return Err(malformed("does not start with the HK1 header"));
        }
        let id_len = usize::from(sealed[3]);
        let id_end = 4 + id_len;
        let id_bytes = sealed
            .get(4..id_end)
            .ok_or_else(|| malformed("truncated key id"))?;
        let id = std::str::from_utf8(id_bytes)
            .ok()
            .and_then(|s| KeyId::new(s).ok())
            .ok_or_else(|| malformed("the key id is not valid"))?;
        Ok((id, &sealed[..id_end], &sealed[id_end..]))
    }

    /// Decrypts with whichever held key the ciphertext names.
    ///
    /// # Errors
    /// [`CryptoError::UnknownKey`], [`CryptoError::Encoding`] or
    /// [`CryptoError::DecryptionFailed`].
    pub fn decrypt(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (id, header, body) = Self::split(sealed)?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(held, _)| *held == id)
            .ok_or_else(|| CryptoError::UnknownKey { id: id.to_string() })?;
        let bound = [header, aad].concat();
        cipher.open(&bound, body)
    }

    /// Envelope-encrypts `plaintext` under a fresh `data_suite` key wrapped by this ring.
    ///
    /// # Errors
    /// An unauthenticated data suite, OS random failure, input too long.
    pub fn seal_envelope(
        &self,
        data_suite: CipherSuite,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if !data_suite.is_authenticated() {
            return Err(CryptoError::NotAuthenticated {
                suite: data_suite.to_string(),
            });
        }
        let suite_name = data_suite.to_string();
        let data_key = SecretKey::generate(data_suite.cipher.key_len())?;
        let wrapped = self.encrypt(suite_name.as_bytes(), data_key.expose())?;
        let mut out = Vec::with_capacity(plaintext.len() + wrapped.len() + 64);
        out.extend_from_slice(ENVELOPE_MAGIC);
        // Suite names are short ASCII (at most "ARIA-256-GCM"); wrapped keys are < 200 bytes.
        out.push(suite_name.len() as u8);
        out.extend_from_slice(suite_name.as_bytes());
        out.extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
        out.extend_from_slice(&wrapped);
        let bound = [out.as_slice(), aad].concat();
        let body = SymmetricCipher::new_zeroizing(data_suite, data_key.expose())?
            .seal(&bound, plaintext)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`KeyRing::seal_envelope`] produced (with this ring or a rotated one that
    /// still holds the wrapping key).
    ///
    /// # Errors
    /// [`CryptoError::Encoding`], [`CryptoError::UnknownKey`] or
    /// [`CryptoError::DecryptionFailed`].
    pub fn open_envelope(&self, aad: &[u8], envelope: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let malformed = |message: &str| CryptoError::Encoding {
            what: "envelope".to_owned(),
            message: message.to_owned(),
        };
        if envelope.len() < 4 || &envelope[..3] != ENVELOPE_MAGIC {
            return Err(malformed("does not start with the HE1 header"));
        }
        let suite_end = 4 + usize::from(envelope[3]);
        let suite_name = envelope
            .get(4..suite_end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| malformed("truncated or invalid suite name"))?;
        let data_suite = CipherSuite::parse(suite_name)?;
        if !data_suite.is_authenticated() {
            return Err(malformed("the data suite is not authenticated"));
        }
        let len_bytes = envelope
            .get(suite_end..suite_end + 2)
            .ok_or_else(|| malformed("truncated wrapped-key length"))?;
        let wrapped_len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let wrapped_end = suite_end + 2 + wrapped_len;
        let wrapped = envelope
            .get(suite_end + 2..wrapped_end)
            .ok_or_else(|| malformed("truncated wrapped key"))?;
        let data_key = SecretKey::from_bytes(self.decrypt(suite_name.as_bytes(), wrapped)?);
        let bound = [&envelope[..wrapped_end], aad].concat();
        SymmetricCipher::new_zeroizing(data_suite, data_key.expose())?
            .open(&bound, &envelope[wrapped_end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> CipherSuite {
        CipherSuite::parse("ARIA-256-GCM").unwrap()
    }

    fn ring(id: &str) -> KeyRing {
        KeyRing::new(
            suite(),
            KeyId::new(id).unwrap(),
            &SecretKey::generate(32).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn ring_keys_are_keyed_so_that_their_schedules_zeroize_even_for_aes_gcm() {
        let aes = CipherSuite::parse("AES-256-GCM").unwrap();
        let mut ring = KeyRing::new(
            aes,
            KeyId::new("a").unwrap(),
            &SecretKey::generate(32).unwrap(),
        )
        .unwrap();
        ring.rotate(KeyId::new("b").unwrap(), &SecretKey::generate(32).unwrap())
            .unwrap();
        assert!(ring.keys.iter().all(|(_, c)| c.zeroizes_on_drop()));
        let sealed = ring.encrypt(b"", b"x").unwrap();
        assert_eq!(ring.decrypt(b"", &sealed).unwrap(), b"x");
    }

    #[test]
    fn key_ids_are_validated_with_an_example_in_the_error() {
        assert!(KeyId::new("master-2026.11_a").is_ok());
        for bad in ["", "has space", "ü", &"x".repeat(65)] {
            let err = KeyId::new(bad).unwrap_err();
            assert!(err.to_string().contains("master-2026-11"), "{err}");
        }
    }

    #[test]
    fn after_rotation_new_data_uses_the_new_key_and_old_data_still_decrypts() {
        let mut ring = ring("k1");
        let old = ring.encrypt(b"", b"old record").unwrap();
        ring.rotate(KeyId::new("k2").unwrap(), &SecretKey::generate(32).unwrap())
            .unwrap();
        let new = ring.encrypt(b"", b"new record").unwrap();
        assert_eq!(KeyRing::key_id_of(&old).unwrap().as_str(), "k1");
        assert_eq!(KeyRing::key_id_of(&new).unwrap().as_str(), "k2");
        assert_eq!(ring.decrypt(b"", &old).unwrap(), b"old record");
        assert_eq!(ring.decrypt(b"", &new).unwrap(), b"new record");
    }

    #[test]
    fn a_retired_key_no_longer_decrypts_and_the_error_says_so() {
        let mut ring = ring("k1");
        let old = ring.encrypt(b"", b"x").unwrap();
        ring.rotate(KeyId::new("k2").unwrap(), &SecretKey::generate(32).unwrap())
            .unwrap();
        ring.retire(&KeyId::new("k1").unwrap()).unwrap();
        let err = ring.decrypt(b"", &old).unwrap_err();
        assert!(matches!(err, CryptoError::UnknownKey { .. }), "{err}");
        assert!(
            ring.retire(&KeyId::new("k2").unwrap()).is_err(),
            "current key retired"
        );
    }

    #[test]
    fn a_changed_key_id_in_the_header_fails_authentication() {
        let mut ring = ring("k1");
        ring.rotate(KeyId::new("k2").unwrap(), &SecretKey::generate(32).unwrap())
            .unwrap();
        let mut sealed = ring.encrypt(b"", b"x").unwrap();
        sealed[5] = b'1'; // "k2" -> "k1": a held key, but not the one that sealed it
        assert_eq!(
            ring.decrypt(b"", &sealed),
            Err(CryptoError::DecryptionFailed)
        );
    }

    #[test]
    fn envelopes_round_trip_and_survive_master_key_rotation() {
        let mut ring = ring("master-1");
        let data = CipherSuite::parse("LEA-256-GCM").unwrap();
        let sealed = ring
            .seal_envelope(data, b"file-42", b"quarantined bytes")
            .unwrap();
        ring.rotate(
            KeyId::new("master-2").unwrap(),
            &SecretKey::generate(32).unwrap(),
        )
        .unwrap();
        assert_eq!(
            ring.open_envelope(b"file-42", &sealed).unwrap(),
            b"quarantined bytes"
        );
        assert_eq!(
            ring.open_envelope(b"file-43", &sealed),
            Err(CryptoError::DecryptionFailed)
        );
    }

    #[test]
    fn truncated_envelopes_and_ciphertexts_are_errors_at_every_length() {
        let ring = ring("m");
        let data = CipherSuite::parse("AES-256-GCM").unwrap();
        let sealed = ring.seal_envelope(data, b"", b"payload").unwrap();
        for len in 0..sealed.len() {
            assert!(
                ring.open_envelope(b"", &sealed[..len]).is_err(),
                "len {len}"
            );
        }
        let ct = ring.encrypt(b"", b"payload").unwrap();
        for len in 0..ct.len() {
            assert!(ring.decrypt(b"", &ct[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn every_byte_of_an_envelope_or_ciphertext_set_to_any_value_is_an_error_not_a_panic() {
        // A deterministic sweep in place of a fuzz target: each header byte (magic, lengths,
        // suite name, key id, nonce) and each body byte takes every value; only the
        // original bytes may open.
        let ring = ring("m");
        let data = CipherSuite::parse("LEA-128-CCM").unwrap();
        let sealed = ring.seal_envelope(data, b"", b"payload").unwrap();
        let ct = ring.encrypt(b"", b"payload").unwrap();
        for (blob, is_envelope) in [(&sealed, true), (&ct, false)] {
            for i in 0..blob.len() {
                for value in 0..=255u8 {
                    if value == blob[i] {
                        continue;
                    }
                    let mut altered = blob.clone();
                    altered[i] = value;
                    let opened = if is_envelope {
                        ring.open_envelope(b"", &altered)
                    } else {
                        ring.decrypt(b"", &altered)
                    };
                    assert!(opened.is_err(), "byte {i} = {value}");
                }
            }
        }
    }

    #[test]
    fn secret_keys_and_rings_print_no_key_bytes() {
        let key = SecretKey::from_bytes(vec![0xAB; 32]);
        assert_eq!(format!("{key:?}"), "SecretKey { len: 32, .. }");
        let ring = KeyRing::new(suite(), KeyId::new("m").unwrap(), &key).unwrap();
        let debug = format!("{ring:?}");
        assert!(
            !debug.contains("171") && !debug.to_lowercase().contains("abab"),
            "{debug}"
        );
    }

    #[test]
    fn a_master_key_loads_from_a_private_file_in_raw_or_hex_form() {
        let dir = std::env::temp_dir().join(format!("haetae-crypto-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("raw.key");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        let hexed = dir.join("hex.key");
        std::fs::write(&hexed, format!("{}\n", "07".repeat(32))).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [&raw, &hexed] {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        let a = MasterKeySource::File(raw.clone()).load(32).unwrap();
        let b = MasterKeySource::File(hexed).load(32).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = MasterKeySource::File(raw).load(32).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_or_malformed_master_key_variable_says_what_to_export() {
        let err = MasterKeySource::Env("HAETAE_TEST_SURELY_UNSET_KEY_VAR".to_owned())
            .load(32)
            .unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }
}
