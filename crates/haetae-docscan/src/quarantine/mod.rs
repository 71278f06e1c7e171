//! The quarantine store (seed 002 (b)): a folder per deployment where dangerous files are
//! moved, content-addressed and encrypted at rest with `haetae-crypto` (AES-256-GCM by
//! default, ARIA-256-GCM on request), with one metadata file per entry and an append-only
//! audit trail (`audit.jsonl`).
//!
//! ```text
//! DIR/blobs/<sha256>          magic "HQB1", suite name, nonce || ciphertext || tag
//!                             (the SHA-256 is the associated data)
//! DIR/entries/<id>.json       original path, inflow source, time, verdict, findings, state
//! DIR/audit.jsonl             one JSON line per action (quarantine, restore, purge, recover)
//! ```
//!
//! Moving a file in never loses the only copy: the encrypted blob is written to a temporary
//! name, fsynced and renamed; then the entry is written the same way in state `moving`; only
//! then is the original (re-hashed to be sure it did not change) removed and its folder
//! fsynced, and the entry set to `quarantined`. [`Quarantine::open`] finishes or undoes
//! whatever a crash interrupted, so afterwards every file is in exactly one place.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use haetae_crypto::{CipherSuite, SymmetricCipher};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::finding::Finding;
use crate::kb::now_ms;

const MAGIC: &[u8; 4] = b"HQB1";

/// Largest file the store takes (it is encrypted in memory).
pub const MAX_FILE: u64 = 2 * 1024 * 1024 * 1024;

/// Why a quarantine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Encryption or decryption failed (wrong key, altered blob).
    #[error("cannot {what} {id}: {source}. Is this the store's key?")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// Entry or blob.
        id: String,
        /// The crypto error.
        source: haetae_crypto::CryptoError,
    },
    /// No entry with this id.
    #[error("no quarantine entry {0}; `haetae quarantine list` shows the ids")]
    NotFound(String),
    /// The operation does not fit the entry's state or the file system.
    #[error("{0}")]
    Refused(String),
    /// Stored data could not be read back.
    #[error("quarantine data is corrupt: {0}")]
    Corrupt(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> QuarantineError {
    let path = path.display().to_string();
    move |source| QuarantineError::Io { what, path, source }
}

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Being moved in (the original may still exist); [`Quarantine::open`] resolves it.
    Moving,
    /// In the store, original removed.
    Quarantined,
    /// Given back.
    Restored,
    /// Deleted for good (the entry stays for the record).
    Purged,
}

impl State {
    /// The name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Moving => "moving",
            State::Quarantined => "quarantined",
            State::Restored => "restored",
            State::Purged => "purged",
        }
    }
}

/// What is known about a file when it is quarantined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Inflow source (`watch`, `email`, ...).
    pub source: String,
    /// Verdict of the scan.
    pub verdict: String,
    /// Findings of the scan.
    pub findings: Vec<Finding>,
    /// Who asked (OS user or service).
    pub actor: String,
}

/// One quarantined file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Entry id (16 hex digits).
    pub id: String,
    /// SHA-256 of the content (and the blob's name).
    pub sha256: String,
    /// Where the file was.
    pub original_path: String,
    /// Size in bytes.
    pub size: u64,
    /// When (Unix milliseconds).
    pub quarantined_at: i64,
    /// The cipher suite of the blob.
    pub suite: String,
    /// State.
    pub state: State,
    /// Scan metadata.
    pub meta: Meta,
}

/// One line of `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    /// When (Unix milliseconds).
    pub at: i64,
    /// `quarantine`, `restore`, `purge`, `recover`.
    pub action: String,
    /// Entry id.
    pub entry_id: String,
    /// Who.
    pub actor: String,
    /// Paths, reasons.
    pub detail: String,
}

/// The store.
#[derive(Debug)]
pub struct Quarantine {
    dir: PathBuf,
    cipher: SymmetricCipher,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sync_dir(dir: &Path) -> Result<(), QuarantineError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot fsync folder", dir))
}

/// Writes `bytes` to `path` atomically and durably: temporary file, fsync, rename, fsync of
/// the folder.
fn write_durable(path: &Path, bytes: &[u8]) -> Result<(), QuarantineError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("cannot create", &tmp))?;
        f.write_all(bytes).map_err(io("cannot write", &tmp))?;
        f.sync_all().map_err(io("cannot fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io("cannot rename into place", path))?;
    sync_dir(dir)
}

fn read_file(path: &Path) -> Result<Vec<u8>, QuarantineError> {
    let f = File::open(path).map_err(io("cannot open", path))?;
    let len = f.metadata().map_err(io("cannot stat", path))?.len();
    if len > MAX_FILE {
        return Err(QuarantineError::Refused(format!(
            "{} is {len} bytes, more than the quarantine's limit of {MAX_FILE}",
            path.display()
        )));
    }
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(MAX_FILE + 1)
        .read_to_end(&mut data)
        .map_err(io("cannot read", path))?;
    Ok(data)
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

#[cfg(test)]
fn pause_point(dir: &Path, stage: &str) {
    if std::env::var("HAETAE_QUARANTINE_PAUSE_AT").as_deref() == Ok(stage) {
        let _ = fs::write(dir.join(format!("paused-{stage}")), b"");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

#[cfg(not(test))]
fn pause_point(_dir: &Path, _stage: &str) {}

impl Quarantine {
    /// Opens (creating) the store at `dir` with a 32-byte key for `suite` (AES-256-GCM or
    /// ARIA-256-GCM), and resolves what a crash left half done. Returns the store and the
    /// audit lines of what recovery did.
    ///
    /// # Errors
    /// Folder or key problems.
    pub fn open(
        dir: &Path,
        suite: CipherSuite,
        key: &[u8],
    ) -> Result<(Quarantine, Vec<AuditLine>), QuarantineError> {
        if !suite.is_authenticated() {
            return Err(QuarantineError::Refused(format!(
                "the quarantine needs an authenticated suite (AES-256-GCM or ARIA-256-GCM), not {suite}"
            )));
        }
        let cipher =
            SymmetricCipher::new(suite, key).map_err(|source| QuarantineError::Crypto {
                what: "key",
                id: "the store".into(),
                source,
            })?;
        for sub in ["blobs", "entries"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(io("cannot create", &p))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
        let q = Quarantine {
            dir: dir.to_owned(),
            cipher,
        };
        let recovered = q.recover()?;
        Ok((q, recovered))
    }

    /// The store's folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob_path(&self, sha: &str) -> PathBuf {
        self.dir.join("blobs").join(sha)
    }

    fn entry_path(&self, id: &str) -> PathBuf {
        self.dir.join("entries").join(format!("{id}.json"))
    }

    fn put_entry(&self, e: &Entry) -> Result<(), QuarantineError> {
        let json = serde_json::to_vec_pretty(e)
            .map_err(|err| QuarantineError::Corrupt(format!("entry {}: {err}", e.id)))?;
        write_durable(&self.entry_path(&e.id), &json)
    }

    fn audit(&self, action: &str, entry_id: &str, actor: &str, detail: String) -> AuditLine {
        let line = AuditLine {
            at: now_ms(),
            action: action.to_owned(),
            entry_id: entry_id.to_owned(),
            actor: actor.to_owned(),
            detail,
        };
        let path = self.dir.join("audit.jsonl");
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&path) {
                let _ = f.write_all(text.as_bytes()).and_then(|()| f.sync_data());
            }
        }
        line
    }

    /// The audit trail, oldest first.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn audit_trail(&self) -> Result<Vec<AuditLine>, QuarantineError> {
        let path = self.dir.join("audit.jsonl");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("cannot read", &path)(e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    fn seal(&self, sha: &str, data: &[u8]) -> Result<Vec<u8>, QuarantineError> {
        let sealed =
            self.cipher
                .seal(sha.as_bytes(), data)
                .map_err(|source| QuarantineError::Crypto {
                    what: "encrypt",
                    id: sha.to_owned(),
                    source,
                })?;
        let name = self.cipher.suite().to_string();
        let mut out = Vec::with_capacity(sealed.len() + 5 + name.len());
        out.extend_from_slice(MAGIC);
        out.push(u8::try_from(name.len()).unwrap_or(0));
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open_blob(&self, sha: &str) -> Result<Vec<u8>, QuarantineError> {
        let path = self.blob_path(sha);
        let raw = fs::read(&path).map_err(io("cannot read", &path))?;
        let bad = || QuarantineError::Corrupt(format!("blob {sha} has no valid header"));
        if raw.get(..4) != Some(MAGIC.as_slice()) {
            return Err(bad());
        }
        let n = usize::from(*raw.get(4).ok_or_else(bad)?);
        let name = raw.get(5..5 + n).ok_or_else(bad)?;
        let suite = self.cipher.suite().to_string();
        if name != suite.as_bytes() {
            return Err(QuarantineError::Refused(format!(
                "blob {sha} is encrypted with {}, the store is opened with {suite}",
                String::from_utf8_lossy(name)
            )));
        }
        let body = raw.get(5 + n..).ok_or_else(bad)?;
        let data =
            self.cipher
                .open(sha.as_bytes(), body)
                .map_err(|source| QuarantineError::Crypto {
                    what: "decrypt",
                    id: sha.to_owned(),
                    source,
                })?;
        if sha256_hex(&data) != sha {
            return Err(QuarantineError::Corrupt(format!(
                "blob {sha} decrypts to other content"
            )));
        }
        Ok(data)
    }

    /// Moves `path` into the store. The original is removed only after the encrypted copy and
    /// the entry are durable.
    ///
    /// # Errors
    /// I/O, a file changed while being moved, or a too large file; the original stays.
    pub fn quarantine(&self, path: &Path, meta: Meta) -> Result<Entry, QuarantineError> {
        let original = fs::canonicalize(path).map_err(io("cannot resolve", path))?;
        let data = read_file(&original)?;
        let sha = sha256_hex(&data);
        let blob = self.blob_path(&sha);
        if !blob.exists() {
            let sealed = self.seal(&sha, &data)?;
            write_durable(&blob, &sealed)?;
        }
        pause_point(&self.dir, "blob");
        let now = now_ms();
        let id = {
            let mut h = Sha256::new();
            h.update(sha.as_bytes());
            h.update(original.to_string_lossy().as_bytes());
            h.update(now.to_le_bytes());
            h.update(std::process::id().to_le_bytes());
            hex(h.finalize().get(..8).unwrap_or_default())
        };
        let mut entry = Entry {
            id,
            sha256: sha.clone(),
            original_path: original.to_string_lossy().into_owned(),
            size: data.len() as u64,
            quarantined_at: now,
            suite: self.cipher.suite().to_string(),
            state: State::Moving,
            meta,
        };
        self.put_entry(&entry)?;
        pause_point(&self.dir, "entry");
        // The file must still be what was encrypted.
        let again = read_file(&original)?;
        if sha256_hex(&again) != sha {
            self.discard(&entry)?;
            return Err(QuarantineError::Refused(format!(
                "{} changed while it was being quarantined; nothing was moved, try again once it is complete",
                original.display()
            )));
        }
        fs::remove_file(&original).map_err(io("cannot remove the original", &original))?;
        if let Some(parent) = original.parent() {
            sync_dir(parent)?;
        }
        pause_point(&self.dir, "removed");
        entry.state = State::Quarantined;
        self.put_entry(&entry)?;
        self.audit(
            "quarantine",
            &entry.id,
            &entry.meta.actor,
            format!(
                "{} ({} bytes, {})",
                entry.original_path, entry.size, entry.sha256
            ),
        );
        Ok(entry)
    }

    /// Removes an entry that never completed, and its blob when nothing else uses it.
    fn discard(&self, entry: &Entry) -> Result<(), QuarantineError> {
        let p = self.entry_path(&entry.id);
        fs::remove_file(&p).map_err(io("cannot remove", &p))?;
        self.drop_blob_if_unused(&entry.sha256)?;
        sync_dir(&self.dir.join("entries"))
    }

    fn drop_blob_if_unused(&self, sha: &str) -> Result<(), QuarantineError> {
        let used = self
            .entries()?
            .iter()
            .any(|e| e.sha256 == sha && matches!(e.state, State::Moving | State::Quarantined));
        let blob = self.blob_path(sha);
        if !used && blob.exists() {
            fs::remove_file(&blob).map_err(io("cannot remove", &blob))?;
            sync_dir(&self.dir.join("blobs"))?;
        }
        Ok(())
    }

    fn entries(&self) -> Result<Vec<Entry>, QuarantineError> {
        let dir = self.dir.join("entries");
        let mut out = Vec::new();
        for item in fs::read_dir(&dir).map_err(io("cannot list", &dir))? {
            let item = item.map_err(io("cannot list", &dir))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(".tmp-") || !name.ends_with(".json") {
                continue;
            }
            let text = fs::read(item.path()).map_err(io("cannot read", &item.path()))?;
            let e: Entry = serde_json::from_slice(&text)
                .map_err(|err| QuarantineError::Corrupt(format!("entry {name}: {err}")))?;
            out.push(e);
        }
        out.sort_by(|a, b| {
            b.quarantined_at
                .cmp(&a.quarantined_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Finishes or undoes what a crash interrupted: temporary files are removed; an entry
    /// still `moving` is completed when its blob is intact (the original, if it still exists
    /// unchanged, is removed) and dropped otherwise; blobs no entry uses are removed.
    fn recover(&self) -> Result<Vec<AuditLine>, QuarantineError> {
        let mut done = Vec::new();
        for sub in ["blobs", "entries"] {
            let dir = self.dir.join(sub);
            for item in fs::read_dir(&dir)
                .map_err(io("cannot list", &dir))?
                .flatten()
            {
                if item.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        for mut e in self.entries()? {
            if e.state != State::Moving {
                continue;
            }
            let original = PathBuf::from(&e.original_path);
            let blob_ok = self.open_blob(&e.sha256).is_ok();
            let original_same = read_file(&original).is_ok_and(|d| sha256_hex(&d) == e.sha256);
            if blob_ok && (original_same || !original.exists()) {
                if original_same {
                    fs::remove_file(&original).map_err(io("cannot remove", &original))?;
                    if let Some(parent) = original.parent() {
                        sync_dir(parent)?;
                    }
                }
                e.state = State::Quarantined;
                self.put_entry(&e)?;
                done.push(self.audit(
                    "recover",
                    &e.id,
                    "haetae",
                    format!("completed an interrupted quarantine of {}", e.original_path),
                ));
            } else {
                self.discard(&e)?;
                done.push(self.audit(
                    "recover",
                    &e.id,
                    "haetae",
                    format!(
                        "dropped an interrupted quarantine of {}: the original stays where it is",
                        e.original_path
                    ),
                ));
            }
        }
        let live: Vec<String> = self
            .entries()?
            .into_iter()
            .filter(|e| matches!(e.state, State::Moving | State::Quarantined))
            .map(|e| e.sha256)
            .collect();
        let blobs = self.dir.join("blobs");
        for item in fs::read_dir(&blobs)
            .map_err(io("cannot list", &blobs))?
            .flatten()
        {
            let name = item.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) {
                fs::remove_file(item.path()).map_err(io("cannot remove", &item.path()))?;
            }
        }
        Ok(done)
    }

    /// Every entry, newest first (restored and purged ones too).
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub fn list(&self) -> Result<Vec<Entry>, QuarantineError> {
        self.entries()
    }

    /// One entry by id (or a unique prefix of at least 4 digits).
    ///
    /// # Errors
    /// [`QuarantineError::NotFound`], or ambiguous prefix.
    pub fn get(&self, id: &str) -> Result<Entry, QuarantineError> {
        let all = self.entries()?;
        let hits: Vec<Entry> = all
            .into_iter()
            .filter(|e| e.id == id || (id.len() >= 4 && e.id.starts_with(id)))
            .collect();
        match hits.len() {
            0 => Err(QuarantineError::NotFound(id.to_owned())),
            1 => Ok(hits
                .into_iter()
                .next()
                .ok_or_else(|| QuarantineError::NotFound(id.to_owned()))?),
            n => Err(QuarantineError::Refused(format!(
                "{id} matches {n} entries; give more digits"
            ))),
        }
    }

    /// Decrypts an entry's content (for analysts; nothing is written).
    ///
    /// # Errors
    /// Wrong key, altered blob, or an entry no longer held.
    pub fn content(&self, id: &str) -> Result<Vec<u8>, QuarantineError> {
        let e = self.get(id)?;
        if e.state != State::Quarantined {
            return Err(QuarantineError::Refused(format!(
                "entry {} is {}, its content is no longer held",
                e.id,
                e.state.as_str()
            )));
        }
        self.open_blob(&e.sha256)
    }

    /// Writes an entry back to `to` (default: where it was). Never overwrites an existing
    /// file. Returns the path written.
    ///
    /// # Errors
    /// The target exists, wrong key, I/O.
    pub fn restore(
        &self,
        id: &str,
        to: Option<&Path>,
        actor: &str,
    ) -> Result<PathBuf, QuarantineError> {
        let mut e = self.get(id)?;
        let data = self.content(&e.id)?;
        let target = to.map_or_else(|| PathBuf::from(&e.original_path), Path::to_path_buf);
        if target.exists() {
            return Err(QuarantineError::Refused(format!(
                "{} exists; restore to another path with --to",
                target.display()
            )));
        }
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".haetae-restore-{}", e.id));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io("cannot create", &tmp))?;
            f.write_all(&data).map_err(io("cannot write", &tmp))?;
            f.sync_all().map_err(io("cannot fsync", &tmp))?;
        }
        // hard_link refuses to replace a file that appeared meanwhile.
        let linked = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        linked.map_err(io("cannot create", &target))?;
        sync_dir(dir)?;
        e.state = State::Restored;
        self.put_entry(&e)?;
        self.drop_blob_if_unused(&e.sha256)?;
        self.audit("restore", &e.id, actor, format!("to {}", target.display()));
        Ok(target)
    }

    /// Deletes an entry's content for good (the entry stays, state `purged`).
    ///
    /// # Errors
    /// Unknown id, I/O.
    pub fn purge(&self, id: &str, actor: &str) -> Result<Entry, QuarantineError> {
        let mut e = self.get(id)?;
        if e.state != State::Quarantined {
            return Err(QuarantineError::Refused(format!(
                "entry {} is {}; only quarantined entries can be purged",
                e.id,
                e.state.as_str()
            )));
        }
        e.state = State::Purged;
        self.put_entry(&e)?;
        self.drop_blob_if_unused(&e.sha256)?;
        self.audit("purge", &e.id, actor, e.original_path.clone());
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haetae_crypto::{BlockCipherKind, Mode};
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn suite() -> CipherSuite {
        CipherSuite::new(BlockCipherKind::Aes256, Mode::Gcm).unwrap()
    }

    const KEY: [u8; 32] = [0x42; 32];

    fn meta() -> Meta {
        Meta {
            source: "usb".into(),
            verdict: "vulnerable".into(),
            findings: Vec::new(),
            actor: "tester".into(),
        }
    }

    fn sample() -> Vec<u8> {
        (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn round_trip_is_byte_exact_and_audited() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("evil.docm");
        fs::write(&file, sample()).unwrap();
        let (q, _) = Quarantine::open(&tmp.path().join("q"), suite(), &KEY).unwrap();
        let e = q.quarantine(&file, meta()).unwrap();
        assert!(!file.exists());
        // Encrypted at rest: the blob does not contain the plaintext.
        let blob = fs::read(q.blob_path(&e.sha256)).unwrap();
        let plain = sample();
        assert!(!blob.windows(64).any(|w| w == &plain[1000..1064]));
        let listed = q.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, State::Quarantined);
        assert_eq!(listed[0].meta.source, "usb");
        let back = q.restore(&e.id[..6], None, "tester").unwrap();
        assert_eq!(fs::read(&back).unwrap(), sample());
        assert_eq!(q.get(&e.id).unwrap().state, State::Restored);
        assert!(!q.blob_path(&e.sha256).exists());
        let actions: Vec<String> = q
            .audit_trail()
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(actions, ["quarantine", "restore"]);
    }

    #[test]
    fn aria_works_and_a_wrong_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.bin");
        fs::write(&file, b"secret content").unwrap();
        let aria = CipherSuite::new(BlockCipherKind::Aria256, Mode::Gcm).unwrap();
        let dir = tmp.path().join("q");
        let (q, _) = Quarantine::open(&dir, aria, &KEY).unwrap();
        let e = q.quarantine(&file, meta()).unwrap();
        assert_eq!(q.content(&e.id).unwrap(), b"secret content");
        drop(q);
        let (other, _) = Quarantine::open(&dir, aria, &[1; 32]).unwrap();
        let err = other.content(&e.id).unwrap_err();
        assert!(err.to_string().contains("key"), "{err}");
        let err = other.restore(&e.id, None, "x").unwrap_err();
        assert!(err.to_string().contains("key"), "{err}");
        assert!(!file.exists());
    }

    #[test]
    fn restore_never_overwrites_and_purge_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.bin");
        fs::write(&file, b"one").unwrap();
        let (q, _) = Quarantine::open(&tmp.path().join("q"), suite(), &KEY).unwrap();
        let e = q.quarantine(&file, meta()).unwrap();
        fs::write(&file, b"new file at the same path").unwrap();
        let err = q.restore(&e.id, None, "x").unwrap_err();
        assert!(err.to_string().contains("exists"), "{err}");
        assert_eq!(fs::read(&file).unwrap(), b"new file at the same path");
        let other = tmp.path().join("b.bin");
        q.restore(&e.id, Some(&other), "x").unwrap();
        assert_eq!(fs::read(&other).unwrap(), b"one");
        let e2 = q.quarantine(&other, meta()).unwrap();
        q.purge(&e2.id, "x").unwrap();
        assert!(!q.blob_path(&e2.sha256).exists());
        assert!(q.content(&e2.id).is_err());
        assert!(matches!(
            q.get("ffffffff"),
            Err(QuarantineError::NotFound(_))
        ));
    }

    /// Run by `a_crash_mid_quarantine_leaves_the_file_in_one_place` as a child process; does
    /// nothing on its own.
    #[test]
    fn crash_child() {
        let Ok(dir) = std::env::var("HAETAE_QCHILD_DIR") else {
            return;
        };
        let dir = PathBuf::from(dir);
        let (q, _) = Quarantine::open(&dir.join("q"), suite(), &KEY).unwrap();
        q.quarantine(&dir.join("victim.bin"), meta()).unwrap();
    }

    fn places(dir: &Path) -> usize {
        let (q, _) = Quarantine::open(&dir.join("q"), suite(), &KEY).unwrap();
        let held = q
            .list()
            .unwrap()
            .into_iter()
            .filter(|e| e.state == State::Quarantined)
            .filter(|e| q.content(&e.id).unwrap() == sample())
            .count();
        let original = usize::from(fs::read(dir.join("victim.bin")).is_ok_and(|d| d == sample()));
        held + original
    }

    #[test]
    fn a_crash_mid_quarantine_leaves_the_file_in_one_place() {
        let exe = std::env::current_exe().unwrap();
        for stage in ["blob", "entry", "removed"] {
            let tmp = tempfile::tempdir().unwrap();
            fs::write(tmp.path().join("victim.bin"), sample()).unwrap();
            let mut child = Command::new(&exe)
                .args([
                    "--exact",
                    "quarantine::tests::crash_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("HAETAE_QCHILD_DIR", tmp.path())
                .env("HAETAE_QUARANTINE_PAUSE_AT", stage)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let marker = tmp.path().join("q").join(format!("paused-{stage}"));
            let deadline = Instant::now() + Duration::from_secs(60);
            while !marker.exists() {
                assert!(Instant::now() < deadline, "child never reached {stage}");
                assert!(child.try_wait().unwrap().is_none(), "child exited early");
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().unwrap(); // SIGKILL: no destructor, no cleanup
            child.wait().unwrap();
            let _ = fs::remove_file(&marker);
            assert_eq!(places(tmp.path()), 1, "after a crash at {stage}");
            // And the store is usable afterwards.
            let (q, _) = Quarantine::open(&tmp.path().join("q"), suite(), &KEY).unwrap();
            if let Some(e) = q
                .list()
                .unwrap()
                .into_iter()
                .find(|e| e.state == State::Quarantined)
            {
                let back = q.restore(&e.id, None, "t").unwrap();
                assert_eq!(fs::read(back).unwrap(), sample());
            }
        }
    }
}
