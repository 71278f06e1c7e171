//! Encrypted recordings of remote-support sessions (issue 10, point 7): the format the agent
//! console writes (`assets/remote/recording.js`), the key wrapping that only the holder of
//! the organisation's recording private key can undo, and the decryption auditors run (in
//! the browser, `assets/remote/playback.js`, or with `haetae remote export-recording`).
//! The Center stores ciphertext and the wrapped key only; see `docs/remote.md`, "Recording".
//!
//! Algorithms, all approved by the KISA guide and NIST (see `haetae_crypto::registry`):
//! - the recording key: 32 random bytes (AES-256-GCM), fresh for each recording;
//! - wrapping: ECDH P-256 between a fresh ephemeral key and the organisation's static
//!   recording key (NIST SP 800-56A, ephemeral-static), HKDF-SHA-256, AES-256-GCM;
//! - chunks: AES-256-GCM under the recording key, nonce `0^32 || index u64`, so an index is
//!   never sealed twice (the console resends the same ciphertext when it retries).
//!
//! Everything WebCrypto offers, so the browser needs no third-party code, and what
//! `haetae-crypto` implements, so the auditor's command undoes it.

use std::fmt;

use haetae_crypto::kdf::{KdfHash, hkdf};
use haetae_crypto::pk::EcdhP256Secret;
use haetae_crypto::{CipherSuite, SymmetricCipher};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The wrapping scheme's name, stored with every recording.
pub const ALG: &str = "ECDH-P256+HKDF-SHA256+AES-256-GCM";
/// The largest encrypted chunk the Center accepts.
pub const MAX_CHUNK_BYTES: usize = 4 << 20;
/// Most chunks in one recording.
pub const MAX_CHUNKS: i64 = 50_000;
/// Most bytes in one recording (chunks together).
pub const MAX_RECORDING_BYTES: i64 = 512 << 20;
/// GCM tag length: the shortest possible chunk (an empty final chunk).
pub const TAG_LEN: usize = 16;
/// An uncompressed SEC1 P-256 point.
pub const PUBLIC_KEY_LEN: usize = 65;
/// A wrapped 32-byte key with its tag.
pub const WRAPPED_LEN: usize = 48;

const KEK_SALT: &[u8] = b"haetae-recording-v1";
const WRAP_AAD: &[u8] = b"haetae-recording-key-v1";
const CHUNK_AAD: &[u8] = b"haetae-recording-chunk-v1";
const KEY_ID_LABEL: &[u8] = b"haetae-recording-key-id";
const BUNDLE_MAGIC: &[u8] = b"haetae-recording v1\n";
const KEY_FILE_KIND: &str = "haetae-recording-private-key";

/// Why a recording, key or bundle could not be used. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    /// A key, key file or field that is not what it should be.
    #[error("{what}: {why}")]
    Invalid {
        /// What was read.
        what: String,
        /// What is wrong.
        why: String,
    },
    /// The wrapped key does not open with this private key (another key, or altered).
    #[error(
        "the recording key does not unwrap with this private key (key id {expected} was used; this key is {got}), or the wrapped key was altered"
    )]
    WrongKey {
        /// The key id the recording names.
        expected: String,
        /// The key id of the key given.
        got: String,
    },
    /// A chunk that does not decrypt: altered, reordered or from another recording.
    #[error("chunk {index} does not decrypt: altered, moved or from another recording")]
    Chunk {
        /// Its index.
        index: u64,
    },
    /// The decrypted records are malformed.
    #[error("chunk {index}, offset {offset}: {why}")]
    Records {
        /// The chunk.
        index: u64,
        /// Where in its plaintext.
        offset: usize,
        /// What is wrong.
        why: String,
    },
    /// Randomness or another cryptographic failure.
    #[error("cryptography: {0}")]
    Crypto(String),
}

fn invalid(what: &str, why: impl fmt::Display) -> RecordingError {
    RecordingError::Invalid {
        what: what.to_owned(),
        why: why.to_string(),
    }
}

fn crypto(e: impl fmt::Display) -> RecordingError {
    RecordingError::Crypto(e.to_string())
}

/// The organisation's recording public key (P-256, uncompressed SEC1).
#[derive(Clone, PartialEq, Eq)]
pub struct RecordingPublicKey {
    sec1: Vec<u8>,
}

impl fmt::Debug for RecordingPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordingPublicKey({})", self.key_id())
    }
}

impl RecordingPublicKey {
    /// Reads the key from its hex form (130 hex digits, `04…`), as `control.recording_key`
    /// holds it. The point is checked to lie on the curve.
    ///
    /// # Errors
    /// [`RecordingError::Invalid`] naming what is wrong.
    pub fn from_hex(text: &str) -> Result<Self, RecordingError> {
        let what = "recording public key";
        let bytes = hex::decode(text.trim())
            .map_err(|e| invalid(what, format!("not hex ({e}); expected 130 hex digits")))?;
        Self::from_sec1(&bytes)
    }

    /// The key from an uncompressed SEC1 point.
    ///
    /// # Errors
    /// [`RecordingError::Invalid`] for a wrong length or a point off the curve.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, RecordingError> {
        let what = "recording public key";
        if bytes.len() != PUBLIC_KEY_LEN || bytes[0] != 4 {
            return Err(invalid(
                what,
                format!(
                    "expected an uncompressed P-256 point (65 bytes starting with 04), got {} bytes",
                    bytes.len()
                ),
            ));
        }
        // A throwaway agreement checks that the point lies on the curve.
        let probe = EcdhP256Secret::generate().map_err(crypto)?;
        probe
            .agree(bytes)
            .map_err(|_| invalid(what, "not a point on P-256"))?;
        Ok(RecordingPublicKey {
            sec1: bytes.to_vec(),
        })
    }

    /// The point (65 bytes).
    #[must_use]
    pub fn sec1(&self) -> &[u8] {
        &self.sec1
    }

    /// The hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(&self.sec1)
    }

    /// A short fingerprint (32 hex digits of SHA-256 over a label and the point) that names
    /// the key in every recording, so an auditor sees at once which key a recording needs.
    #[must_use]
    pub fn key_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(KEY_ID_LABEL);
        h.update(&self.sec1);
        hex::encode(&h.finalize()[..16])
    }
}

/// The organisation's recording private key, held by auditors only (never by the Center).
pub struct RecordingPrivateKey {
    secret: EcdhP256Secret,
    scalar: Zeroizing<Vec<u8>>,
    public: RecordingPublicKey,
}

impl fmt::Debug for RecordingPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordingPrivateKey({}, ..)", self.public.key_id())
    }
}

/// The key file an auditor keeps: a JSON Web Key (RFC 7517) for ECDH on P-256, which the
/// playback page imports with WebCrypto as it is, plus haetae's own fields.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    kind: String,
    key_id: String,
    kty: String,
    crv: String,
    x: String,
    y: String,
    d: String,
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn b64url_decode(what: &str, s: &str) -> Result<Zeroizing<Vec<u8>>, RecordingError> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 3 / 4));
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in s.bytes() {
        let v = match ch {
            b'A'..=b'Z' => ch - b'A',
            b'a'..=b'z' => ch - b'a' + 26,
            b'0'..=b'9' => ch - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err(invalid(what, "not base64url")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    if bits >= 6 {
        return Err(invalid(what, "not base64url (bad length)"));
    }
    Ok(out)
}

impl RecordingPrivateKey {
    /// A new key pair (OS randomness).
    ///
    /// # Errors
    /// [`RecordingError::Crypto`] without randomness.
    pub fn generate() -> Result<Self, RecordingError> {
        let mut scalar = Zeroizing::new(vec![0u8; 32]);
        loop {
            haetae_crypto::error::os_random(&mut scalar).map_err(crypto)?;
            if let Ok(k) = Self::from_scalar(&scalar) {
                return Ok(k);
            }
        }
    }

    fn from_scalar(scalar: &[u8]) -> Result<Self, RecordingError> {
        let secret =
            EcdhP256Secret::from_scalar(scalar).map_err(|e| invalid("recording private key", e))?;
        let public = RecordingPublicKey {
            sec1: secret.public_key_sec1(),
        };
        Ok(RecordingPrivateKey {
            secret,
            scalar: Zeroizing::new(scalar.to_vec()),
            public,
        })
    }

    /// The public half (what `control.recording_key` names).
    #[must_use]
    pub fn public_key(&self) -> &RecordingPublicKey {
        &self.public
    }

    /// The key file (JSON Web Key plus `kind` and `key_id`), in a buffer zeroized on drop.
    #[must_use]
    pub fn to_key_file(&self) -> Zeroizing<String> {
        let p = &self.public.sec1;
        let mut file = KeyFile {
            kind: KEY_FILE_KIND.to_owned(),
            key_id: self.public.key_id(),
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x: b64url(&p[1..33]),
            y: b64url(&p[33..65]),
            d: b64url(&self.scalar),
        };
        let text = serde_json::to_string_pretty(&file).unwrap_or_default();
        let out = Zeroizing::new(format!("{text}\n"));
        file.d.zeroize();
        drop(Zeroizing::new(text));
        out
    }

    /// Reads a key file; checks that `x`/`y` are the public half of `d`.
    ///
    /// # Errors
    /// [`RecordingError::Invalid`] naming the field.
    pub fn from_key_file(text: &str) -> Result<Self, RecordingError> {
        let what = "recording key file";
        let mut file: KeyFile = serde_json::from_str(text).map_err(|e| {
            invalid(
                what,
                format!("{e} (expected the JSON written by `haetae remote keygen`)"),
            )
        })?;
        let d = Zeroizing::new(std::mem::take(&mut file.d));
        if file.kind != KEY_FILE_KIND || file.kty != "EC" || file.crv != "P-256" {
            return Err(invalid(
                what,
                format!("kind {KEY_FILE_KIND:?}, kty \"EC\" and crv \"P-256\" expected"),
            ));
        }
        let scalar = b64url_decode("recording key file: d", &d)?;
        if scalar.len() != 32 {
            return Err(invalid(what, "d must be 32 bytes"));
        }
        let key = Self::from_scalar(&scalar)?;
        let x = b64url_decode("recording key file: x", &file.x)?;
        let y = b64url_decode("recording key file: y", &file.y)?;
        if x.as_slice() != &key.public.sec1[1..33] || y.as_slice() != &key.public.sec1[33..65] {
            return Err(invalid(what, "x/y are not the public half of d"));
        }
        Ok(key)
    }
}

/// A recording key wrapped to the organisation's recording key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// [`ALG`].
    pub alg: String,
    /// The recording public key's [`RecordingPublicKey::key_id`].
    pub key_id: String,
    /// The ephemeral P-256 public key (hex, 65 bytes).
    pub ephemeral: String,
    /// The AES-256-GCM-sealed recording key (hex, 48 bytes).
    pub wrapped: String,
}

impl WrappedKey {
    /// Checks the form of every field (lengths, hex, a point on the curve), as the Center
    /// does before storing one.
    ///
    /// # Errors
    /// [`RecordingError::Invalid`] naming the field.
    pub fn check(&self) -> Result<(), RecordingError> {
        if self.alg != ALG {
            return Err(invalid("alg", format!("must be {ALG:?}")));
        }
        if self.key_id.len() != 32 || !self.key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("key_id", "32 hex digits"));
        }
        RecordingPublicKey::from_hex(&self.ephemeral)
            .map_err(|e| invalid("ephemeral", e.to_string()))?;
        match hex::decode(&self.wrapped) {
            Ok(w) if w.len() == WRAPPED_LEN => Ok(()),
            _ => Err(invalid("wrapped", "48 bytes in hex")),
        }
    }
}

fn kek(
    shared: &[u8],
    ephemeral: &[u8],
    recipient: &[u8],
) -> Result<SymmetricCipher, RecordingError> {
    let mut info = Vec::with_capacity(2 * PUBLIC_KEY_LEN);
    info.extend_from_slice(ephemeral);
    info.extend_from_slice(recipient);
    let key = hkdf(KdfHash::Sha256, Some(KEK_SALT), shared, &info, 32).map_err(crypto)?;
    aes(&key)
}

fn aes(key: &[u8]) -> Result<SymmetricCipher, RecordingError> {
    let suite = CipherSuite::parse("AES-256-GCM").map_err(crypto)?;
    SymmetricCipher::new_zeroizing(suite, key).map_err(crypto)
}

/// Wraps `key` to `to` (what the agent console does in WebCrypto; here for tests and Rust
/// recorders).
///
/// # Errors
/// [`RecordingError::Crypto`] without randomness.
pub fn wrap(to: &RecordingPublicKey, key: &[u8; 32]) -> Result<WrappedKey, RecordingError> {
    let eph = EcdhP256Secret::generate().map_err(crypto)?;
    let eph_pub = eph.public_key_sec1();
    let shared = eph.agree(&to.sec1).map_err(crypto)?;
    let sealed = kek(&shared, &eph_pub, &to.sec1)?
        .encrypt(&[0u8; 12], WRAP_AAD, key)
        .map_err(crypto)?;
    Ok(WrappedKey {
        alg: ALG.to_owned(),
        key_id: to.key_id(),
        ephemeral: hex::encode(eph_pub),
        wrapped: hex::encode(sealed),
    })
}

/// Unwraps a recording key with the private key.
///
/// # Errors
/// [`RecordingError::WrongKey`] when it is not the key the recording was made for (or the
/// wrapped key was altered); [`RecordingError::Invalid`] for malformed fields.
pub fn unwrap(
    with: &RecordingPrivateKey,
    wrapped: &WrappedKey,
) -> Result<Zeroizing<[u8; 32]>, RecordingError> {
    wrapped.check()?;
    let wrong = || RecordingError::WrongKey {
        expected: wrapped.key_id.clone(),
        got: with.public.key_id(),
    };
    let eph = hex::decode(&wrapped.ephemeral).map_err(|e| invalid("ephemeral", e))?;
    let sealed = hex::decode(&wrapped.wrapped).map_err(|e| invalid("wrapped", e))?;
    let shared = with
        .secret
        .agree(&eph)
        .map_err(|e| invalid("ephemeral", e))?;
    let plain = Zeroizing::new(
        kek(&shared, &eph, &with.public.sec1)?
            .decrypt(&[0u8; 12], WRAP_AAD, &sealed)
            .map_err(|_| wrong())?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(wrong());
    }
    key.copy_from_slice(&plain);
    Ok(key)
}

fn chunk_nonce_aad(index: u64, last: bool) -> ([u8; 12], Vec<u8>) {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&index.to_be_bytes());
    let mut aad = CHUNK_AAD.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    (nonce, aad)
}

/// Seals one chunk's plaintext (a run of records) under the recording key.
///
/// # Errors
/// [`RecordingError::Crypto`].
pub fn seal_chunk(
    key: &[u8; 32],
    index: u64,
    last: bool,
    plaintext: &[u8],
) -> Result<Vec<u8>, RecordingError> {
    let (nonce, aad) = chunk_nonce_aad(index, last);
    aes(key)?.encrypt(&nonce, &aad, plaintext).map_err(crypto)
}

/// Opens one chunk.
///
/// # Errors
/// [`RecordingError::Chunk`] for anything that does not authenticate.
pub fn open_chunk(
    key: &[u8; 32],
    index: u64,
    last: bool,
    ciphertext: &[u8],
) -> Result<Vec<u8>, RecordingError> {
    let (nonce, aad) = chunk_nonce_aad(index, last);
    aes(key)?
        .decrypt(&nonce, &aad, ciphertext)
        .map_err(|_| RecordingError::Chunk { index })
}

/// Video codecs in a recording (as the `ScreenFrame` message numbers them).
pub const CODEC_H264: u8 = 1;
/// VP8.
pub const CODEC_VP8: u8 = 2;

/// One record inside a chunk's plaintext: `kind u8 | t_us u64 | length u32 | body`, where
/// `t_us` is microseconds since the recording started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Kind 1: the recording's header (JSON object: session, agent, start time, ...).
    Meta {
        /// Microseconds since the start.
        t_us: u64,
        /// The JSON text.
        json: String,
    },
    /// Kind 2: one encoded screen frame as the console received it:
    /// `key u8 | codec u8 | width u16 | height u16 | timestamp_us u64 | data`.
    Frame {
        /// Microseconds since the start.
        t_us: u64,
        /// A key frame.
        key: bool,
        /// [`CODEC_H264`] or [`CODEC_VP8`].
        codec: u8,
        /// Width.
        width: u16,
        /// Height.
        height: u16,
        /// The encoder's timestamp.
        timestamp_us: u64,
        /// The encoded frame (H.264 in Annex B form).
        data: Vec<u8>,
    },
    /// Kind 3: a session event (JSON object: chat, pointer, drawing, control, URL, file
    /// decisions, end).
    Event {
        /// Microseconds since the start.
        t_us: u64,
        /// The JSON text.
        json: String,
    },
}

impl Record {
    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let (kind, t_us, body): (u8, u64, Vec<u8>) = match self {
            Record::Meta { t_us, json } => (1, *t_us, json.as_bytes().to_vec()),
            Record::Event { t_us, json } => (3, *t_us, json.as_bytes().to_vec()),
            Record::Frame {
                t_us,
                key,
                codec,
                width,
                height,
                timestamp_us,
                data,
            } => {
                let mut b = Vec::with_capacity(14 + data.len());
                b.push(u8::from(*key));
                b.push(*codec);
                b.extend_from_slice(&width.to_be_bytes());
                b.extend_from_slice(&height.to_be_bytes());
                b.extend_from_slice(&timestamp_us.to_be_bytes());
                b.extend_from_slice(data);
                (2, *t_us, b)
            }
        };
        out.push(kind);
        out.extend_from_slice(&t_us.to_be_bytes());
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&body);
    }
}

/// Parses a chunk's plaintext into records.
///
/// # Errors
/// [`RecordingError::Records`] with the offset of the first malformed record.
pub fn parse_records(index: u64, plain: &[u8]) -> Result<Vec<Record>, RecordingError> {
    let bad = |offset: usize, why: &str| RecordingError::Records {
        index,
        offset,
        why: why.to_owned(),
    };
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < plain.len() {
        let head = plain
            .get(at..at + 13)
            .ok_or_else(|| bad(at, "truncated record header"))?;
        let kind = head[0];
        let t_us = u64::from_be_bytes(head[1..9].try_into().unwrap_or_default());
        let len = u32::from_be_bytes(head[9..13].try_into().unwrap_or_default()) as usize;
        let body = plain
            .get(at + 13..(at + 13).saturating_add(len))
            .ok_or_else(|| bad(at, "record longer than the chunk"))?;
        let text = || {
            String::from_utf8(body.to_vec())
                .ok()
                .filter(|t| {
                    serde_json::from_str::<serde_json::Value>(t).is_ok_and(|v| v.is_object())
                })
                .ok_or_else(|| bad(at, "not a JSON object"))
        };
        out.push(match kind {
            1 => Record::Meta {
                t_us,
                json: text()?,
            },
            3 => Record::Event {
                t_us,
                json: text()?,
            },
            2 => {
                if body.len() < 14 {
                    return Err(bad(at, "frame record shorter than its header"));
                }
                let codec = body[1];
                if body[0] > 1 || !(codec == CODEC_H264 || codec == CODEC_VP8) {
                    return Err(bad(at, "frame flags or codec out of range"));
                }
                Record::Frame {
                    t_us,
                    key: body[0] == 1,
                    codec,
                    width: u16::from_be_bytes([body[2], body[3]]),
                    height: u16::from_be_bytes([body[4], body[5]]),
                    timestamp_us: u64::from_be_bytes(body[6..14].try_into().unwrap_or_default()),
                    data: body[14..].to_vec(),
                }
            }
            _ => return Err(bad(at, "unknown record kind")),
        });
        at += 13 + len;
    }
    Ok(out)
}

/// What a bundle says about its recording (not secret, not trusted: every field that
/// matters is bound by the cryptography).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleHeader {
    /// The Center's recording id.
    pub recording: i64,
    /// The Center's session id.
    pub session: i64,
    /// The agent.
    pub agent: String,
    /// When the recording started (microseconds).
    pub started_at: i64,
    /// The wrapped recording key.
    pub key: WrappedKey,
}

/// One encrypted chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    /// Its index (0, 1, ...).
    pub index: u64,
    /// The last chunk of the recording.
    pub last: bool,
    /// The ciphertext and tag.
    pub data: Vec<u8>,
}

/// Writes a bundle: `"haetae-recording v1\n" | header length u32 | header JSON | chunks`,
/// each chunk `index u64 | last u8 | length u32 | ciphertext`.
#[must_use]
pub fn write_bundle(header: &BundleHeader, chunks: &[SealedChunk]) -> Vec<u8> {
    let head = serde_json::to_vec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(
        BUNDLE_MAGIC.len()
            + 4
            + head.len()
            + chunks.iter().map(|c| 13 + c.data.len()).sum::<usize>(),
    );
    out.extend_from_slice(BUNDLE_MAGIC);
    out.extend_from_slice(&u32::try_from(head.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&head);
    for c in chunks {
        out.extend_from_slice(&c.index.to_be_bytes());
        out.push(u8::from(c.last));
        out.extend_from_slice(&u32::try_from(c.data.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&c.data);
    }
    out
}

/// Reads a bundle.
///
/// # Errors
/// [`RecordingError::Invalid`] naming what is wrong and where.
pub fn read_bundle(bytes: &[u8]) -> Result<(BundleHeader, Vec<SealedChunk>), RecordingError> {
    let what = "recording bundle";
    let rest = bytes
        .strip_prefix(BUNDLE_MAGIC)
        .ok_or_else(|| invalid(what, "does not start with \"haetae-recording v1\""))?;
    let len = rest
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| invalid(what, "truncated header length"))?;
    let head = rest
        .get(4..4 + len)
        .ok_or_else(|| invalid(what, "truncated header"))?;
    let header: BundleHeader =
        serde_json::from_slice(head).map_err(|e| invalid("recording bundle header", e))?;
    let mut at = 4 + len;
    let mut chunks = Vec::new();
    while at < rest.len() {
        let offset = BUNDLE_MAGIC.len() + at;
        let h = rest
            .get(at..at + 13)
            .ok_or_else(|| invalid(what, format!("truncated chunk header at byte {offset}")))?;
        let index = u64::from_be_bytes(h[..8].try_into().unwrap_or_default());
        let last = match h[8] {
            0 => false,
            1 => true,
            _ => return Err(invalid(what, format!("bad chunk flag at byte {offset}"))),
        };
        let n = u32::from_be_bytes(h[9..13].try_into().unwrap_or_default()) as usize;
        if n > MAX_CHUNK_BYTES {
            return Err(invalid(
                what,
                format!("chunk at byte {offset} is over {MAX_CHUNK_BYTES} bytes"),
            ));
        }
        let data = rest
            .get(at + 13..at + 13 + n)
            .ok_or_else(|| invalid(what, format!("truncated chunk at byte {offset}")))?;
        chunks.push(SealedChunk {
            index,
            last,
            data: data.to_vec(),
        });
        at += 13 + n;
    }
    Ok((header, chunks))
}

/// A decrypted recording.
#[derive(Debug, Default)]
pub struct Decrypted {
    /// Every record, in order.
    pub records: Vec<Record>,
    /// Whether the chunks run from 0 to one marked last without a gap.
    pub complete: bool,
}

/// Decrypts every chunk with the private key: the chunks must be in index order from 0
/// (a gap stops the recording there, and `complete` is false).
///
/// # Errors
/// [`RecordingError::WrongKey`] for another key, [`RecordingError::Chunk`] for a chunk that
/// does not authenticate, [`RecordingError::Records`] for malformed plaintext.
pub fn decrypt(
    with: &RecordingPrivateKey,
    header: &BundleHeader,
    chunks: &[SealedChunk],
) -> Result<Decrypted, RecordingError> {
    let key = unwrap(with, &header.key)?;
    let mut out = Decrypted::default();
    for (expected, c) in (0u64..).zip(chunks) {
        if c.index != expected {
            return Ok(out);
        }
        let plain = open_chunk(&key, c.index, c.last, &c.data)?;
        out.records.extend(parse_records(c.index, &plain)?);
        if c.last {
            out.complete = true;
            break;
        }
    }
    Ok(out)
}

/// What [`export`] wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// H.264 frames written.
    pub frames: u64,
    /// Key frames among them.
    pub key_frames: u64,
    /// Frames in another codec (VP8), not written to the H.264 file.
    pub other_codec_frames: u64,
    /// Events written.
    pub events: u64,
    /// Length of the recording in milliseconds (last record).
    pub duration_ms: u64,
    /// Whether the recording ended with its last chunk.
    pub complete: bool,
    /// The recording's header record.
    pub meta: Option<serde_json::Value>,
}

/// The H.264 elementary stream (Annex B) and the events as JSON lines
/// (`{"t_ms": ..., ...event}`), from a decrypted recording.
#[must_use]
pub fn export(rec: &Decrypted) -> (Vec<u8>, String, ExportSummary) {
    let mut h264 = Vec::new();
    let mut events = String::new();
    let mut s = ExportSummary {
        complete: rec.complete,
        ..ExportSummary::default()
    };
    for r in &rec.records {
        match r {
            Record::Meta { json, .. } => s.meta = serde_json::from_str(json).ok(),
            Record::Frame {
                t_us,
                key,
                codec,
                data,
                ..
            } => {
                s.duration_ms = s.duration_ms.max(t_us / 1000);
                if *codec == CODEC_H264 {
                    h264.extend_from_slice(data);
                    s.frames += 1;
                    s.key_frames += u64::from(*key);
                } else {
                    s.other_codec_frames += 1;
                }
            }
            Record::Event { t_us, json } => {
                s.duration_ms = s.duration_ms.max(t_us / 1000);
                let mut v: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(json).unwrap_or_default();
                v.insert("t_ms".into(), (t_us / 1000).into());
                events.push_str(&serde_json::Value::Object(v).to_string());
                events.push('\n');
                s.events += 1;
            }
        }
    }
    (h264, events, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut plain = Vec::new();
        for r in [
            Record::Meta {
                t_us: 0,
                json: r#"{"session":7,"agent":"kim"}"#.into(),
            },
            Record::Frame {
                t_us: 10_000,
                key: true,
                codec: CODEC_H264,
                width: 1280,
                height: 720,
                timestamp_us: 5,
                data: vec![0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x65, 9, 9],
            },
            Record::Event {
                t_us: 20_000,
                json: r#"{"dir":"customer","type":"Chat","text":"계좌 확인"}"#.into(),
            },
        ] {
            r.encode_into(&mut plain);
        }
        plain
    }

    #[test]
    fn a_wrapped_key_opens_only_with_its_private_key() {
        let org = RecordingPrivateKey::generate().unwrap();
        let other = RecordingPrivateKey::generate().unwrap();
        let key = [7u8; 32];
        let w = wrap(org.public_key(), &key).unwrap();
        w.check().unwrap();
        assert_eq!(w.key_id, org.public_key().key_id());
        assert_eq!(*unwrap(&org, &w).unwrap(), key);
        let err = unwrap(&other, &w).unwrap_err();
        assert!(matches!(err, RecordingError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains(&w.key_id), "{err}");
        let mut bad = w.clone();
        let mut b = hex::decode(&bad.wrapped).unwrap();
        b[3] ^= 1;
        bad.wrapped = hex::encode(b);
        assert!(unwrap(&org, &bad).is_err());
        let mut bad = w;
        bad.ephemeral = format!("04{}", "00".repeat(64));
        assert!(matches!(
            unwrap(&org, &bad),
            Err(RecordingError::Invalid { .. })
        ));
    }

    #[test]
    fn the_key_file_round_trips_and_refuses_a_mismatched_public_half() {
        let k = RecordingPrivateKey::generate().unwrap();
        let file = k.to_key_file();
        assert!(!format!("{k:?}").contains(&b64url(&k.scalar)));
        let back = RecordingPrivateKey::from_key_file(&file).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let other = RecordingPrivateKey::generate().unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&file).unwrap();
        let o: serde_json::Value = serde_json::from_str(&other.to_key_file()).unwrap();
        v["x"] = o["x"].clone();
        let err = RecordingPrivateKey::from_key_file(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("public half"), "{err}");
        assert!(RecordingPrivateKey::from_key_file("{}").is_err());
        assert!(RecordingPrivateKey::from_key_file("not json").is_err());
        // base64url both ways, every length.
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(
                b64url_decode("t", &b64url(&data)).unwrap().as_slice(),
                &data[..]
            );
        }
        assert!(b64url_decode("t", "a").is_err());
        assert!(b64url_decode("t", "ab+c").is_err());
    }

    #[test]
    fn public_keys_are_checked() {
        let k = RecordingPrivateKey::generate().unwrap();
        let hex = k.public_key().to_hex();
        assert_eq!(RecordingPublicKey::from_hex(&hex).unwrap(), *k.public_key());
        assert!(RecordingPublicKey::from_hex("04abcd").is_err());
        assert!(RecordingPublicKey::from_hex("zz").is_err());
        let mut off = hex.into_bytes();
        off[100] = if off[100] == b'0' { b'1' } else { b'0' };
        assert!(RecordingPublicKey::from_hex(std::str::from_utf8(&off).unwrap()).is_err());
    }

    #[test]
    fn chunks_bind_their_index_and_last_flag() {
        let key = [9u8; 32];
        let plain = sample();
        let c = seal_chunk(&key, 3, false, &plain).unwrap();
        assert_eq!(open_chunk(&key, 3, false, &c).unwrap(), plain);
        assert!(open_chunk(&key, 4, false, &c).is_err());
        assert!(open_chunk(&key, 3, true, &c).is_err());
        assert!(open_chunk(&[8u8; 32], 3, false, &c).is_err());
        let empty = seal_chunk(&key, 4, true, &[]).unwrap();
        assert_eq!(empty.len(), TAG_LEN);
    }

    #[test]
    fn records_round_trip_and_malformed_ones_are_refused_with_their_offset() {
        let plain = sample();
        let r = parse_records(0, &plain).unwrap();
        assert_eq!(r.len(), 3);
        let mut again = Vec::new();
        for x in &r {
            x.encode_into(&mut again);
        }
        assert_eq!(again, plain);
        for cut in 1..plain.len() {
            let _ = parse_records(0, &plain[..cut]); // never panics
        }
        let err = parse_records(2, &plain[..plain.len() - 1]).unwrap_err();
        assert!(err.to_string().starts_with("chunk 2, offset"), "{err}");
        let mut bad = plain.clone();
        bad[0] = 9;
        assert!(parse_records(0, &bad).is_err());
    }

    #[test]
    fn a_bundle_decrypts_and_exports_annex_b_and_events() {
        let org = RecordingPrivateKey::generate().unwrap();
        let key = [5u8; 32];
        let plain = sample();
        let header = BundleHeader {
            recording: 1,
            session: 7,
            agent: "kim".into(),
            started_at: 1,
            key: wrap(org.public_key(), &key).unwrap(),
        };
        let chunks = vec![
            SealedChunk {
                index: 0,
                last: false,
                data: seal_chunk(&key, 0, false, &plain).unwrap(),
            },
            SealedChunk {
                index: 1,
                last: true,
                data: seal_chunk(&key, 1, true, &[]).unwrap(),
            },
        ];
        let bytes = write_bundle(&header, &chunks);
        let (h, c) = read_bundle(&bytes).unwrap();
        assert_eq!((h.clone(), c.clone()), (header, chunks));
        let d = decrypt(&org, &h, &c).unwrap();
        assert!(d.complete);
        let (h264, events, s) = export(&d);
        assert_eq!(
            h264,
            vec![0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x65, 9, 9]
        );
        assert!(
            events.contains("계좌 확인") && events.contains("\"t_ms\":20"),
            "{events}"
        );
        assert_eq!((s.frames, s.key_frames, s.events), (1, 1, 1));
        // Without the last chunk: decrypts, not complete. A swapped chunk: refused.
        assert!(!decrypt(&org, &h, &c[..1]).unwrap().complete);
        let mut moved = c.clone();
        moved[1].index = 0;
        moved.swap(0, 1);
        assert!(decrypt(&org, &h, &moved).is_err());
        for cut in 0..bytes.len() {
            let _ = read_bundle(&bytes[..cut]); // never panics
        }
        assert!(read_bundle(b"something else").is_err());
    }

    /// `testdata/recording-vector.json`: a key file and a bundle made here, which the
    /// browser's implementation (`tests/browser/remote-recording-format.test.mjs`) must open
    /// to the same records. `HAETAE_WRITE_VECTORS=1` writes a new one.
    #[test]
    fn the_shared_vector_decrypts_to_the_sample_records() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/recording-vector.json"
        );
        if std::env::var_os("HAETAE_WRITE_VECTORS").is_some() {
            let org = RecordingPrivateKey::generate().unwrap();
            let key = [0x42u8; 32];
            let header = BundleHeader {
                recording: 3,
                session: 7,
                agent: "kim".into(),
                started_at: 1_765_000_000_000_000,
                key: wrap(org.public_key(), &key).unwrap(),
            };
            let plain = sample();
            let (a, b) = plain.split_at(13 + 27);
            let chunks = [
                SealedChunk {
                    index: 0,
                    last: false,
                    data: seal_chunk(&key, 0, false, a).unwrap(),
                },
                SealedChunk {
                    index: 1,
                    last: true,
                    data: seal_chunk(&key, 1, true, b).unwrap(),
                },
            ];
            let v = serde_json::json!({
                "key_file": *org.to_key_file(),
                "bundle": hex::encode(write_bundle(&header, &chunks)),
                "records_hex": hex::encode(&plain),
            });
            std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")).unwrap();
            std::fs::write(path, format!("{v:#}\n")).unwrap();
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let org = RecordingPrivateKey::from_key_file(v["key_file"].as_str().unwrap()).unwrap();
        let bundle = hex::decode(v["bundle"].as_str().unwrap()).unwrap();
        let (h, c) = read_bundle(&bundle).unwrap();
        let d = decrypt(&org, &h, &c).unwrap();
        assert!(d.complete);
        let mut again = Vec::new();
        for r in &d.records {
            r.encode_into(&mut again);
        }
        assert_eq!(hex::encode(again), v["records_hex"].as_str().unwrap());
        assert_eq!(parse_records(0, &sample()).unwrap(), d.records);
    }

    #[test]
    fn every_algorithm_is_approved_by_the_kisa_policy() {
        use haetae_crypto::{CryptoPolicy, Purpose};
        let policy = CryptoPolicy::kisa(time::macros::date!(2026 - 12 - 01));
        for (name, purpose) in [
            ("ECDH-P256", Purpose::KeyAgreement),
            ("HKDF-SHA-256", Purpose::KeyDerivation),
            ("AES-256-GCM", Purpose::Encryption),
        ] {
            assert!(policy.check(name, purpose).is_ok(), "{name}");
        }
    }
}
