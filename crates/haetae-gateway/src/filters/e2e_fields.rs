//! `e2e-fields`: end-to-end protection of sensitive form fields (password, PIN, account and
//! card numbers), the "보안키패드" integration of seed `001` §3.3. The browser encrypts the
//! fields under a key it agrees with the gateway (ECDH P-256 or X25519, HKDF-SHA-256,
//! AES-256-GCM); the gateway decrypts them before forwarding, so the business application
//! receives plaintext and nothing in between (proxies, logs, browser extensions reading the
//! DOM) sees it.
//!
//! The gateway serves:
//! - `GET /haetae/e2e.js`: the client ES module (written here, no third-party code): it
//!   encrypts the fields of forms marked `data-haetae-e2e` and draws the virtual keypad for
//!   inputs marked `data-haetae-keypad`. No inline script is needed (strict CSP).
//! - `GET /haetae/e2e/session`: a page session: the current public key, its key id and a
//!   fresh single-use server nonce that expires after `nonce_ttl_secs`.
//!
//! A protected field's value is `hte1.<kid>.<cipher>.<nonce>.<epk>.<iv>.<ciphertext>`
//! (base64url without padding): the key id, the cipher (`A256GCM`, or `ARIA256GCM` for app
//! clients), the page nonce, the client's ephemeral public key, the GCM IV and the
//! ciphertext with its tag. The GCM key is HKDF-SHA-256(salt = nonce, ikm = ECDH secret,
//! info = `haetae-e2e/v1|<kid>|<cipher>`), the associated data `haetae-e2e/v1|<field name>`
//! (so a ciphertext cannot be moved to another field). All protected fields of one request
//! carry the same nonce, which is consumed by the request (compare-and-swap in the shared
//! store, so a replay is refused on every gateway of the cluster).
//!
//! A configured field that does not decrypt (unknown key, wrong nonce, altered, replayed,
//! or plaintext when `require_encrypted`) makes the whole request refused with 400: the
//! ciphertext is never passed on.
//!
//! Keys: one key pair per deployment, kept in `<key_dir>/e2e-keys.json` (mode 0600, the
//! directory 0700); a new pair is made when the newest is older than `rotate_after_days`,
//! and the `keep_previous` older ones still decrypt pages issued before the rotation. The
//! private keys never appear in logs, events or `Debug` output.
//!
//! ```toml
//! [[policy.filters]]
//! id = "e2e"
//! kind = "e2e-fields"
//! config = { fields = ["password", "pin"], paths = ["/transfer"], key_dir = "/var/lib/haetae/gateway/e2e-keys" }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use haetae_core::{FilterInstance, PolicySnapshot, Severity};
use haetae_crypto::kdf::{KdfHash, hkdf};
use haetae_crypto::pk::{EcdhP256Secret, X25519Secret};
use haetae_crypto::symmetric::{CipherSuite, SymmetricCipher};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::filter::{
    Decision, FilterContext, FilterError, LocalResponse, Modification, PhaseResult, Phases, Reason,
    SecurityFilter,
};
use crate::filters::{BuildResult, ConfigProblem, typed_config};
use crate::request::percent_decode_form;

/// The kind name in policies.
pub const KIND: &str = "e2e-fields";

/// Where the client module is served.
pub const CLIENT_PATH: &str = "/haetae/e2e.js";

/// Where a page gets its session (public key and nonce).
pub const SESSION_PATH: &str = "/haetae/e2e/session";

/// The client module.
pub const CLIENT_JS: &str = include_str!("../../assets/e2e.js");

/// The prefix of a protected value.
const TOKEN_PREFIX: &str = "hte1.";

/// The key file's name inside `key_dir`.
const KEY_FILE: &str = "e2e-keys.json";

/// The longest protected value accepted (a password of 1 KiB, encoded).
const MAX_TOKEN: usize = 4096;

/// The longest decrypted value.
const MAX_PLAINTEXT: usize = 1024;

/// How often an unknown key id makes the key file be read again.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// How often the age of the current key is checked.
const ROTATE_CHECK: Duration = Duration::from_secs(60);

/// The server key's curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum Curve {
    /// NIST P-256 (every browser's WebCrypto).
    #[default]
    #[serde(rename = "P-256")]
    P256,
    /// X25519 (WebCrypto in current Chromium, Firefox and Safari).
    #[serde(rename = "X25519")]
    X25519,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::X25519 => "X25519",
        }
    }
}

/// `e2e-fields`' configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct E2eFieldsConfig {
    /// The form or JSON fields to decrypt (JSON fields by their flattened path, e.g.
    /// `auth.pin`).
    pub fields: Vec<String>,
    /// Path prefixes whose requests are decrypted; empty: every path of the service.
    pub paths: Vec<String>,
    /// Where the key pairs are kept (created 0700 if missing).
    pub key_dir: PathBuf,
    /// The curve of new key pairs.
    pub curve: Curve,
    /// The ciphers clients may use: `AES-256-GCM` (browsers), `ARIA-256-GCM` (app clients
    /// with their own ARIA).
    pub ciphers: Vec<String>,
    /// A new key pair is made when the newest is older than this.
    pub rotate_after_days: u64,
    /// Older key pairs kept (and accepted) after a rotation.
    pub keep_previous: usize,
    /// How long a page's nonce may be used, in seconds.
    pub nonce_ttl_secs: u64,
    /// The most request body bytes read; a form or JSON body on a protected path that is
    /// longer is refused (413), since its fields could not all be decrypted.
    pub max_body: usize,
    /// A configured field sent in plaintext is refused (`false`: passed on, with an event).
    pub require_encrypted: bool,
    /// Separates unrelated deployments sharing one store: `[A-Za-z0-9_-]`.
    pub namespace: String,
}

impl Default for E2eFieldsConfig {
    fn default() -> Self {
        E2eFieldsConfig {
            fields: vec![
                "password".into(),
                "pin".into(),
                "account_number".into(),
                "card_number".into(),
            ],
            paths: Vec::new(),
            key_dir: PathBuf::from("haetae-data/gateway/e2e-keys"),
            curve: Curve::P256,
            ciphers: vec!["AES-256-GCM".into()],
            rotate_after_days: 30,
            keep_previous: 1,
            nonce_ttl_secs: 600,
            max_body: 256 * 1024,
            require_encrypted: true,
            namespace: "default".into(),
        }
    }
}

/// One stored key pair.
#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    curve: Curve,
    /// Unix seconds.
    created: i64,
    /// The private key, hex.
    secret: String,
}

#[derive(Default, Serialize, Deserialize)]
struct KeyFile {
    /// Newest first.
    keys: Vec<StoredKey>,
}

/// A loaded private key.
enum PrivateKey {
    P256(EcdhP256Secret),
    X25519(X25519Secret),
}

impl PrivateKey {
    fn from_stored(k: &StoredKey) -> Result<PrivateKey, String> {
        let bytes = Zeroizing::new(
            hex::decode(&k.secret).map_err(|_| format!("key {}: secret is not hex", k.kid))?,
        );
        match k.curve {
            Curve::P256 => EcdhP256Secret::from_scalar(&bytes)
                .map(PrivateKey::P256)
                .map_err(|e| format!("key {}: {e}", k.kid)),
            Curve::X25519 => {
                let arr: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("key {}: an X25519 secret is 32 bytes", k.kid))?;
                Ok(PrivateKey::X25519(X25519Secret::from_bytes(arr)))
            }
        }
    }

    fn public(&self) -> Vec<u8> {
        match self {
            PrivateKey::P256(k) => k.public_key_sec1(),
            PrivateKey::X25519(k) => k.public_key().to_vec(),
        }
    }

    fn agree(&self, peer: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        match self {
            PrivateKey::P256(k) => k.agree(peer).ok(),
            PrivateKey::X25519(k) => {
                let peer: [u8; 32] = peer.try_into().ok()?;
                k.agree(&peer).ok().map(|s| Zeroizing::new(s.to_vec()))
            }
        }
    }
}

struct LoadedKey {
    kid: String,
    curve: Curve,
    created: i64,
    key: PrivateKey,
    public: Vec<u8>,
}

struct KeyState {
    /// Newest first.
    keys: Vec<LoadedKey>,
    loaded: Instant,
    rotation_checked: Instant,
}

/// The deployment's key pairs, on disk and in memory.
struct KeyStore {
    dir: PathBuf,
    curve: Curve,
    rotate_after: i64,
    keep_previous: usize,
    state: Mutex<KeyState>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .iter()
            .map(|k| k.kid.clone())
            .collect();
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl KeyStore {
    /// Opens (or creates) the key file and rotates when due.
    fn open(
        dir: &Path,
        curve: Curve,
        rotate_after: i64,
        keep_previous: usize,
    ) -> Result<KeyStore, String> {
        let store = KeyStore {
            dir: dir.to_owned(),
            curve,
            rotate_after,
            keep_previous,
            state: Mutex::new(KeyState {
                keys: Vec::new(),
                loaded: Instant::now(),
                rotation_checked: Instant::now(),
            }),
        };
        store.reload()?;
        store.rotate_if_due(now_unix())?;
        Ok(store)
    }

    fn path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    fn read_file(&self) -> Result<KeyFile, String> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a key file ({e})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn load(file: &KeyFile) -> Result<Vec<LoadedKey>, String> {
        file.keys
            .iter()
            .map(|k| {
                let key = PrivateKey::from_stored(k)?;
                Ok(LoadedKey {
                    kid: k.kid.clone(),
                    curve: k.curve,
                    created: k.created,
                    public: key.public(),
                    key,
                })
            })
            .collect()
    }

    fn reload(&self) -> Result<(), String> {
        let file = self.read_file()?;
        let keys = Self::load(&file)?;
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.keys = keys;
        st.loaded = Instant::now();
        Ok(())
    }

    /// Makes a new key pair when there is none or the newest is too old; writes the file
    /// atomically (temporary file, then rename).
    fn rotate_if_due(&self, now: i64) -> Result<(), String> {
        {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.rotation_checked = Instant::now();
            if st
                .keys
                .first()
                .is_some_and(|k| now - k.created < self.rotate_after)
            {
                return Ok(());
            }
        }
        // Another gateway sharing the directory may have rotated already.
        let mut file = self.read_file()?;
        if file
            .keys
            .first()
            .is_some_and(|k| now - k.created < self.rotate_after)
        {
            return self.reload();
        }
        let (kid, secret) = new_key(self.curve, now)?;
        file.keys.insert(
            0,
            StoredKey {
                kid,
                curve: self.curve,
                created: now,
                secret: secret.to_string(),
            },
        );
        file.keys.truncate(1 + self.keep_previous);
        self.write_file(&file)?;
        let keys = Self::load(&file)?;
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.keys = keys;
        st.loaded = Instant::now();
        Ok(())
    }

    fn write_file(&self, file: &KeyFile) -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| {
                format!(
                    "{}: cannot create the key directory: {e}",
                    self.dir.display()
                )
            })?;
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(file).map_err(|e| format!("key file encoding: {e}"))?,
        );
        let tmp = self
            .dir
            .join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.path())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: cannot write the key file: {e}", self.path().display())
        })
    }

    /// The current key's id, curve and public key.
    fn current(&self) -> Option<(String, Curve, Vec<u8>)> {
        let needs_check = {
            let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.rotation_checked.elapsed() >= ROTATE_CHECK
        };
        if needs_check && let Err(e) = self.rotate_if_due(now_unix()) {
            tracing::error!("e2e-fields: key rotation failed, keeping the current key: {e}");
        }
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.keys
            .first()
            .map(|k| (k.kid.clone(), k.curve, k.public.clone()))
    }

    /// The ECDH secret of key `kid` with `peer`; reads the file again (at most every few
    /// seconds) when the id is not known, for keys rotated by another gateway.
    fn agree(&self, kid: &str, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
        for attempt in 0..2 {
            {
                let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(k) = st.keys.iter().find(|k| k.kid == kid) {
                    return k.key.agree(peer).ok_or("e2e-bad-key-share");
                }
                if attempt == 1 || st.loaded.elapsed() < RELOAD_INTERVAL {
                    return Err("e2e-unknown-key");
                }
            }
            if let Err(e) = self.reload() {
                tracing::error!("e2e-fields: cannot read the key file again: {e}");
                return Err("e2e-unknown-key");
            }
        }
        Err("e2e-unknown-key")
    }
}

/// A new key: its id (date and random) and secret (hex).
fn new_key(curve: Curve, now: i64) -> Result<(String, Zeroizing<String>), String> {
    let mut id = [0u8; 6];
    getrandom::fill(&mut id).map_err(|e| format!("no randomness for a key id: {e}"))?;
    let date = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default();
    let kid = format!("k{date}{}", hex::encode(id));
    for _ in 0..16 {
        let mut scalar = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut scalar[..]).map_err(|e| format!("no randomness for a key: {e}"))?;
        let ok = match curve {
            Curve::P256 => EcdhP256Secret::from_scalar(&scalar[..]).is_ok(),
            Curve::X25519 => true,
        };
        if ok {
            return Ok((kid, Zeroizing::new(hex::encode(&scalar[..]))));
        }
    }
    Err("could not draw a valid P-256 scalar".into())
}

/// A client cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientCipher {
    Aes256Gcm,
    Aria256Gcm,
}

impl ClientCipher {
    fn from_config(name: &str) -> Option<ClientCipher> {
        match name.to_ascii_uppercase().replace('_', "-").as_str() {
            "AES-256-GCM" => Some(ClientCipher::Aes256Gcm),
            "ARIA-256-GCM" => Some(ClientCipher::Aria256Gcm),
            _ => None,
        }
    }

    fn from_token(tag: &str) -> Option<ClientCipher> {
        match tag {
            "A256GCM" => Some(ClientCipher::Aes256Gcm),
            "ARIA256GCM" => Some(ClientCipher::Aria256Gcm),
            _ => None,
        }
    }

    fn token_tag(self) -> &'static str {
        match self {
            ClientCipher::Aes256Gcm => "A256GCM",
            ClientCipher::Aria256Gcm => "ARIA256GCM",
        }
    }

    fn suite(self) -> &'static str {
        match self {
            ClientCipher::Aes256Gcm => "AES-256-GCM",
            ClientCipher::Aria256Gcm => "ARIA-256-GCM",
        }
    }
}

/// The `e2e-fields` filter.
#[derive(Debug)]
pub struct E2eFieldsFilter {
    cfg: E2eFieldsConfig,
    ciphers: Vec<ClientCipher>,
    keys: Arc<KeyStore>,
}

/// Builds the filter from its instance.
pub fn build(instance: &FilterInstance, _policy: &PolicySnapshot) -> BuildResult {
    let cfg: E2eFieldsConfig = typed_config(instance)?;
    Ok(Arc::new(E2eFieldsFilter::new(cfg)?))
}

impl E2eFieldsFilter {
    /// The filter with this configuration (opening or creating its keys), or every problem
    /// with it.
    pub fn new(cfg: E2eFieldsConfig) -> Result<E2eFieldsFilter, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        if cfg.fields.is_empty() {
            problems.push(ConfigProblem::new(
                "config.fields",
                "no field to decrypt; name the protected form or JSON fields, e.g. [\"pin\"]",
            ));
        }
        for (i, f) in cfg.fields.iter().enumerate() {
            if f.is_empty() || f.len() > 256 {
                problems.push(ConfigProblem::new(
                    format!("config.fields[{i}]"),
                    "a field name is 1 to 256 characters",
                ));
            }
        }
        for (i, p) in cfg.paths.iter().enumerate() {
            if !p.starts_with('/') {
                problems.push(ConfigProblem::new(
                    format!("config.paths[{i}]"),
                    format!("{p:?} must be a path prefix starting with '/'"),
                ));
            }
        }
        let mut ciphers = Vec::new();
        for (i, c) in cfg.ciphers.iter().enumerate() {
            match ClientCipher::from_config(c) {
                Some(c) => ciphers.push(c),
                None => problems.push(ConfigProblem::new(
                    format!("config.ciphers[{i}]"),
                    format!("{c:?} is not offered; use \"AES-256-GCM\" or \"ARIA-256-GCM\""),
                )),
            }
        }
        if cfg.ciphers.is_empty() {
            problems.push(ConfigProblem::new(
                "config.ciphers",
                "no cipher; browsers need \"AES-256-GCM\"",
            ));
        }
        if cfg.rotate_after_days == 0 || cfg.rotate_after_days > 3650 {
            problems.push(ConfigProblem::new(
                "config.rotate_after_days",
                format!("{} days; use 1 to 3650", cfg.rotate_after_days),
            ));
        }
        if cfg.keep_previous > 8 {
            problems.push(ConfigProblem::new(
                "config.keep_previous",
                format!("{} old keys; at most 8", cfg.keep_previous),
            ));
        }
        if !(10..=24 * 3600).contains(&cfg.nonce_ttl_secs) {
            problems.push(ConfigProblem::new(
                "config.nonce_ttl_secs",
                format!("{} s; use 10 to 86400", cfg.nonce_ttl_secs),
            ));
        }
        if cfg.max_body < 1024 {
            problems.push(ConfigProblem::new(
                "config.max_body",
                format!(
                    "{} bytes is too small for a form; at least 1024",
                    cfg.max_body
                ),
            ));
        }
        if cfg.namespace.is_empty()
            || cfg.namespace.len() > 32
            || !cfg
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(ConfigProblem::new(
                "config.namespace",
                format!("{:?}: use 1 to 32 of [A-Za-z0-9_-]", cfg.namespace),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let rotate_after = i64::try_from(cfg.rotate_after_days * 86_400).unwrap_or(i64::MAX);
        let keys = KeyStore::open(&cfg.key_dir, cfg.curve, rotate_after, cfg.keep_previous)
            .map_err(|e| vec![ConfigProblem::new("config.key_dir", e)])?;
        Ok(E2eFieldsFilter {
            cfg,
            ciphers,
            keys: Arc::new(keys),
        })
    }

    /// The current key id (for tests and operators).
    #[must_use]
    pub fn current_key_id(&self) -> Option<String> {
        self.keys.current().map(|(kid, _, _)| kid)
    }

    fn nonce_key(&self, nonce: &str) -> String {
        format!("e2e-fields.{}.n.{nonce}", self.cfg.namespace)
    }

    fn protects(&self, path: &str) -> bool {
        self.cfg.paths.is_empty() || self.cfg.paths.iter().any(|p| path.starts_with(p.as_str()))
    }

    async fn session(&self, ctx: &FilterContext<'_>) -> PhaseResult {
        let kv = ctx.kv().ok_or_else(|| {
            FilterError::new("e2e-fields needs the shared store for page nonces; none configured")
        })?;
        let (kid, curve, public) = self
            .keys
            .current()
            .ok_or_else(|| FilterError::new("e2e-fields has no key pair"))?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)
            .map_err(|e| FilterError::new(format!("no randomness for a nonce: {e}")))?;
        let nonce = b64url_encode(&nonce);
        let ttl = Duration::from_secs(self.cfg.nonce_ttl_secs);
        kv.create(&self.nonce_key(&nonce), b"issued", Some(ttl))
            .await
            .map_err(|e| FilterError::new(format!("cannot store the page nonce: {e}")))?;
        let exp = ctx.clock().now_utc().unix_timestamp()
            + i64::try_from(self.cfg.nonce_ttl_secs).unwrap_or(600);
        let body = serde_json::json!({
            "v": 1,
            "kid": kid,
            "crv": curve.name(),
            "pub": b64url_encode(&public),
            "nonce": nonce,
            "exp": exp,
            "cipher": self.ciphers.first().copied().unwrap_or(ClientCipher::Aes256Gcm).suite(),
        });
        let mut resp = LocalResponse {
            status: StatusCode::OK,
            headers: vec![(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from(body.to_string()),
        };
        no_store(&mut resp);
        Ok(Decision::Serve(resp))
    }

    fn reject(&self, status: StatusCode, rule: &'static str, message: String) -> Decision {
        let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "The request is too large for its protected fields to be checked.\n"
        } else {
            "The protected fields of this request could not be read. Reload the page and try again.\n"
        };
        let mut resp = LocalResponse::text(status, text);
        no_store(&mut resp);
        Decision::Respond(resp, Reason::new(rule, Severity::Medium, message))
    }

    /// Decrypts the configured fields of a body, or says why not (rule, message).
    async fn decrypt_body(
        &self,
        ctx: &FilterContext<'_>,
        kind: BodyKind,
        body: &[u8],
    ) -> Result<Option<Vec<u8>>, (&'static str, String)> {
        // The configured fields present, with their values.
        let found: Vec<(String, String)> = match kind {
            BodyKind::Form => crate::request::Params::from_urlencoded(body)
                .iter()
                .filter(|(n, _)| self.cfg.fields.iter().any(|f| f == n))
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            BodyKind::Json => crate::request::Params::from_json(body)
                .iter()
                .filter(|(n, _)| self.cfg.fields.iter().any(|f| f == n))
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
        };
        if found.is_empty() {
            return Ok(None);
        }
        let mut plain: HashMap<String, Zeroizing<String>> = HashMap::new();
        let mut nonce_used: Option<String> = None;
        let mut plaintext_fields = Vec::new();
        // One key derivation per (key id, cipher, nonce, client key) within the request.
        let mut derived: HashMap<(String, String, String, String), Zeroizing<Vec<u8>>> =
            HashMap::new();
        for (name, value) in &found {
            let Some(rest) = value.strip_prefix(TOKEN_PREFIX) else {
                plaintext_fields.push(name.clone());
                continue;
            };
            if value.len() > MAX_TOKEN {
                return Err((
                    "e2e-malformed",
                    format!("field {name:?}: protected value too long"),
                ));
            }
            let parts: Vec<&str> = rest.split('.').collect();
            let [kid, tag, nonce, epk, iv, ct] = parts.as_slice() else {
                return Err((
                    "e2e-malformed",
                    format!("field {name:?}: not a protected value"),
                ));
            };
            let cipher = ClientCipher::from_token(tag)
                .filter(|c| self.ciphers.contains(c))
                .ok_or_else(|| {
                    (
                        "e2e-cipher-refused",
                        format!("field {name:?}: cipher {tag:?} not accepted"),
                    )
                })?;
            match &nonce_used {
                Some(n) if n != nonce => {
                    return Err((
                        "e2e-malformed",
                        "protected fields of one request carry different page nonces".into(),
                    ));
                }
                Some(_) => {}
                None => nonce_used = Some((*nonce).to_owned()),
            }
            let decode = |s: &str, what: &str| {
                b64url_decode(s).ok_or_else(|| {
                    (
                        "e2e-malformed",
                        format!("field {name:?}: {what} is not base64url"),
                    )
                })
            };
            let nonce_bytes = decode(nonce, "the nonce")?;
            let epk_bytes = decode(epk, "the client key")?;
            let iv_bytes = decode(iv, "the IV")?;
            let ct_bytes = decode(ct, "the ciphertext")?;
            if nonce_bytes.len() != 16 || iv_bytes.len() != 12 || ct_bytes.len() < 16 {
                return Err((
                    "e2e-malformed",
                    format!("field {name:?}: wrong part lengths"),
                ));
            }
            let cache_key = (
                (*kid).to_owned(),
                (*tag).to_owned(),
                (*nonce).to_owned(),
                (*epk).to_owned(),
            );
            if !derived.contains_key(&cache_key) {
                let shared = self.keys.agree(kid, &epk_bytes).map_err(|rule| {
                    (
                        rule,
                        format!("field {name:?}: key {kid:?} unknown or client key invalid"),
                    )
                })?;
                let info = format!("haetae-e2e/v1|{kid}|{tag}");
                let key = hkdf(
                    KdfHash::Sha256,
                    Some(&nonce_bytes),
                    &shared,
                    info.as_bytes(),
                    32,
                )
                .map_err(|e| ("e2e-internal", e.to_string()))?;
                derived.insert(cache_key.clone(), key);
            }
            let key = &derived[&cache_key];
            let suite =
                CipherSuite::parse(cipher.suite()).map_err(|e| ("e2e-internal", e.to_string()))?;
            let aead = SymmetricCipher::new_zeroizing(suite, key)
                .map_err(|e| ("e2e-internal", e.to_string()))?;
            let aad = format!("haetae-e2e/v1|{name}");
            let pt = Zeroizing::new(aead.decrypt(&iv_bytes, aad.as_bytes(), &ct_bytes).map_err(
                |_| {
                    (
                        "e2e-undecryptable",
                        format!("field {name:?}: does not decrypt (altered, or another key)"),
                    )
                },
            )?);
            if pt.len() > MAX_PLAINTEXT {
                return Err((
                    "e2e-malformed",
                    format!("field {name:?}: decrypted value too long"),
                ));
            }
            let text = String::from_utf8(pt.to_vec()).map_err(|_| {
                (
                    "e2e-malformed",
                    format!("field {name:?}: decrypted value is not UTF-8"),
                )
            })?;
            plain.insert(name.clone(), Zeroizing::new(text));
        }
        if !plaintext_fields.is_empty() && self.cfg.require_encrypted {
            return Err((
                "e2e-plaintext",
                format!(
                    "protected fields sent without encryption: {}",
                    plaintext_fields.join(", ")
                ),
            ));
        }
        if !plaintext_fields.is_empty() {
            let event = ctx
                .event("e2e-fields.plaintext")
                .severity(Severity::Low)
                .rule("e2e-plaintext")
                .message(format!(
                    "protected fields sent without encryption (allowed by require_encrypted = false): {}",
                    plaintext_fields.join(", ")
                ));
            ctx.emit(event);
        }
        let Some(nonce) = nonce_used else {
            return Ok(None);
        };
        self.consume_nonce(ctx, &nonce).await?;
        let new_body = match kind {
            BodyKind::Form => rewrite_form(body, &plain),
            BodyKind::Json => rewrite_json(body, &plain).ok_or((
                "e2e-malformed",
                "the JSON body could not be rewritten".to_owned(),
            ))?,
        };
        Ok(Some(new_body))
    }

    /// Marks the page nonce used; refuses an unknown, expired or already used one.
    async fn consume_nonce(
        &self,
        ctx: &FilterContext<'_>,
        nonce: &str,
    ) -> Result<(), (&'static str, String)> {
        let Some(kv) = ctx.kv() else {
            return Err((
                "e2e-internal",
                "no shared store to check the page nonce".to_owned(),
            ));
        };
        let key = self.nonce_key(nonce);
        let entry = kv
            .get(&key)
            .await
            .map_err(|e| ("e2e-internal", format!("the shared store: {e}")))?;
        let Some(entry) = entry else {
            return Err((
                "e2e-nonce-expired",
                "the page nonce is unknown or expired".to_owned(),
            ));
        };
        if entry.value != b"issued" {
            return Err(("e2e-replay", "the page nonce was already used".to_owned()));
        }
        let ttl = Duration::from_secs(self.cfg.nonce_ttl_secs);
        match kv
            .compare_and_swap(&key, entry.revision, b"used", Some(ttl))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => {
                Err(("e2e-replay", "the page nonce was already used".to_owned()))
            }
            Err(e) => Err(("e2e-internal", format!("the shared store: {e}"))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum BodyKind {
    Form,
    Json,
}

fn no_store(resp: &mut LocalResponse) {
    resp.headers
        .push((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    resp.headers.push((
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ));
}

/// The client module's response.
fn client_module() -> LocalResponse {
    LocalResponse {
        status: StatusCode::OK,
        headers: vec![
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ],
        body: Bytes::from_static(CLIENT_JS.as_bytes()),
    }
}

#[async_trait::async_trait]
impl SecurityFilter for E2eFieldsFilter {
    fn phases(&self) -> Phases {
        Phases {
            request_headers: true,
            request_body: Some(self.cfg.max_body),
            ..Phases::default()
        }
    }

    async fn on_request_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        let path = ctx.request.path();
        if !path.starts_with("/haetae/") {
            return Ok(Decision::Continue);
        }
        let method = ctx.request.method();
        if method != Method::GET && method != Method::HEAD {
            return Ok(Decision::Continue);
        }
        match path {
            CLIENT_PATH => Ok(Decision::Serve(client_module())),
            SESSION_PATH => self.session(ctx).await,
            _ => Ok(Decision::Continue),
        }
    }

    async fn on_request_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        if !self.protects(ctx.request.path()) {
            return Ok(Decision::Continue);
        }
        let content_type = ctx
            .request
            .header("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let kind = if content_type.starts_with("application/x-www-form-urlencoded") {
            BodyKind::Form
        } else if content_type.starts_with("application/json")
            || (content_type.starts_with("application/") && content_type.contains("+json"))
        {
            BodyKind::Json
        } else {
            return Ok(Decision::Continue);
        };
        let Some(body) = ctx.request.body() else {
            return Ok(Decision::Continue);
        };
        if !body.complete {
            return Ok(self.reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                "e2e-body-too-large",
                format!(
                    "a form or JSON body longer than {} bytes on a protected path",
                    body.bytes.len()
                ),
            ));
        }
        let bytes = body.bytes.clone();
        match self.decrypt_body(ctx, kind, &bytes).await {
            Ok(None) => Ok(Decision::Continue),
            Ok(Some(new_body)) => Ok(Decision::Modify(vec![Modification::ReplaceBody(
                Bytes::from(new_body),
            )])),
            Err(("e2e-internal", message)) => Err(FilterError::new(message)),
            Err((rule, message)) => Ok(self.reject(StatusCode::BAD_REQUEST, rule, message)),
        }
    }
}

/// The form body with the decrypted fields' values replaced; every other pair is kept
/// byte for byte.
fn rewrite_form(body: &[u8], plain: &HashMap<String, Zeroizing<String>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for (i, piece) in body.split(|&b| b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let name_raw = piece.split(|&b| b == b'=').next().unwrap_or(piece);
        let name = percent_decode_form(name_raw);
        match plain.get(&name) {
            Some(value) => {
                out.extend_from_slice(name_raw);
                out.push(b'=');
                form_encode(value.as_bytes(), &mut out);
            }
            None => out.extend_from_slice(piece),
        }
    }
    out
}

/// `application/x-www-form-urlencoded` encoding of a value.
fn form_encode(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b),
            b' ' => out.push(b'+'),
            _ => {
                out.push(b'%');
                out.push(b"0123456789ABCDEF"[usize::from(b >> 4)]);
                out.push(b"0123456789ABCDEF"[usize::from(b & 15)]);
            }
        }
    }
}

/// The JSON body with the decrypted fields (by flattened path) replaced.
fn rewrite_json(body: &[u8], plain: &HashMap<String, Zeroizing<String>>) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    replace_json(&mut value, "", 0, plain);
    serde_json::to_vec(&value).ok()
}

fn replace_json(
    value: &mut serde_json::Value,
    path: &str,
    depth: usize,
    plain: &HashMap<String, Zeroizing<String>>,
) {
    use serde_json::Value;
    if depth > 16 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                replace_json(v, &p, depth + 1, plain);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                replace_json(v, &format!("{path}[{i}]"), depth + 1, plain);
            }
        }
        Value::String(s) => {
            if let Some(p) = plain.get(path) {
                *s = p.as_str().to_owned();
            }
        }
        _ => {}
    }
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding.
#[must_use]
pub fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(B64URL[idx as usize]));
        }
    }
    out
}

/// Decodes base64url without padding; `None` for anything else.
#[must_use]
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            };
            n |= u32::from(v) << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        for i in 0..produced {
            out.push((n >> (16 - 8 * i)) as u8);
        }
        // Non-canonical trailing bits are refused.
        let used_bits = produced * 8;
        let total_bits = chunk.len() * 6;
        if total_bits > used_bits
            && (n >> (24 - total_bits)) & ((1 << (total_bits - used_bits)) - 1) != 0
        {
            return None;
        }
    }
    Some(out)
}

/// The reference client (for native apps and tests): encrypts `value` for field `name` as the
/// browser module does, under the session's public key.
///
/// # Errors
/// A message when the public key or randomness fails.
pub fn seal_field(
    session: &serde_json::Value,
    cipher: &str,
    name: &str,
    value: &str,
) -> Result<String, String> {
    let kid = session["kid"].as_str().ok_or("no kid")?;
    let nonce = session["nonce"].as_str().ok_or("no nonce")?;
    let public = b64url_decode(session["pub"].as_str().ok_or("no pub")?).ok_or("bad pub")?;
    let nonce_bytes = b64url_decode(nonce).ok_or("bad nonce")?;
    let (epk, shared) = match session["crv"].as_str() {
        Some("X25519") => {
            let e = X25519Secret::generate().map_err(|e| e.to_string())?;
            let peer: [u8; 32] = public.as_slice().try_into().map_err(|_| "bad X25519 key")?;
            let s = e.agree(&peer).map_err(|e| e.to_string())?;
            (e.public_key().to_vec(), Zeroizing::new(s.to_vec()))
        }
        _ => {
            let e = EcdhP256Secret::generate().map_err(|e| e.to_string())?;
            let s = e.agree(&public).map_err(|e| e.to_string())?;
            (e.public_key_sec1(), s)
        }
    };
    let c = ClientCipher::from_config(cipher).ok_or("unknown cipher")?;
    let tag = c.token_tag();
    let info = format!("haetae-e2e/v1|{kid}|{tag}");
    let key = hkdf(
        KdfHash::Sha256,
        Some(&nonce_bytes),
        &shared,
        info.as_bytes(),
        32,
    )
    .map_err(|e| e.to_string())?;
    let aead = SymmetricCipher::new(
        CipherSuite::parse(c.suite()).map_err(|e| e.to_string())?,
        &key,
    )
    .map_err(|e| e.to_string())?;
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).map_err(|e| e.to_string())?;
    let aad = format!("haetae-e2e/v1|{name}");
    let ct = aead
        .encrypt(&iv, aad.as_bytes(), value.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{TOKEN_PREFIX}{kid}.{tag}.{nonce}.{}.{}.{}",
        b64url_encode(&epk),
        b64url_encode(&iv),
        b64url_encode(&ct)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_refuses_garbage() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = b64url_encode(&data);
            assert!(!enc.contains('='));
            assert_eq!(b64url_decode(&enc).unwrap(), data, "length {len}");
        }
        assert_eq!(b64url_decode("AQ"), Some(vec![1]));
        assert!(b64url_decode("AR").is_none(), "non-canonical trailing bits");
        assert!(b64url_decode("A").is_none());
        assert!(
            b64url_decode("AB+/").is_none(),
            "standard alphabet is not base64url"
        );
    }

    #[test]
    fn form_rewrite_replaces_only_the_decrypted_fields() {
        let mut plain = HashMap::new();
        plain.insert("pin".to_owned(), Zeroizing::new("12 34&=".to_owned()));
        let out = rewrite_form(b"amount=1000&pin=hte1.x&memo=a%20b+c", &plain);
        assert_eq!(out, b"amount=1000&pin=12+34%26%3D&memo=a%20b+c");
        let params = crate::request::Params::from_urlencoded(&out);
        assert_eq!(params.get("pin"), Some("12 34&="));
    }

    #[test]
    fn json_rewrite_replaces_by_flattened_path() {
        let mut plain = HashMap::new();
        plain.insert("auth.pin".to_owned(), Zeroizing::new("4321".to_owned()));
        let out = rewrite_json(br#"{"auth":{"pin":"hte1.x"},"pin":"keep"}"#, &plain).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["auth"]["pin"], "4321");
        assert_eq!(v["pin"], "keep");
    }

    #[test]
    fn keys_are_created_private_persisted_and_rotated() {
        let dir = std::env::temp_dir().join(format!("haetae-e2e-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = KeyStore::open(&dir, Curve::P256, 86_400, 1).unwrap();
        let (kid1, _, pub1) = store.current().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key file is private: {mode:o}");
        let again = KeyStore::open(&dir, Curve::P256, 86_400, 1).unwrap();
        assert_eq!(
            again.current().unwrap().2,
            pub1,
            "the same key after a restart"
        );
        // Rotation: pretend a day passed.
        again.rotate_if_due(now_unix() + 86_401).unwrap();
        let (kid2, _, _) = again.current().unwrap();
        assert_ne!(kid1, kid2);
        let file = again.read_file().unwrap();
        assert_eq!(file.keys.len(), 2, "the previous key is kept");
        again.rotate_if_due(now_unix() + 3 * 86_401).unwrap();
        assert_eq!(
            again.read_file().unwrap().keys.len(),
            2,
            "only keep_previous old keys"
        );
        assert!(!format!("{again:?}").contains(&file.keys[0].secret));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
