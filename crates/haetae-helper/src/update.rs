//! Signed updates: the helper runs a newer build only if it carries a minisign signature
//! (Ed25519 over the file's BLAKE2b-512) by the organisation's release key. Unsigned files,
//! other keys, a changed byte, and minisign's legacy (not pre-hashed) format are refused.

use std::path::{Path, PathBuf};

use minisign_verify::{PublicKey, Signature};

/// Largest update accepted (bytes).
pub const MAX_UPDATE: u64 = 256 << 20;

/// Why an update was refused.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The release key is not a minisign public key.
    #[error("release key: {0}")]
    Key(String),
    /// No signature, or not a minisign signature.
    #[error("signature: {0}")]
    Signature(String),
    /// The signature does not verify.
    #[error("the update is not signed by the release key (or was changed after signing): {0}")]
    Refused(String),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// Too large.
    #[error("the update is {0} bytes; at most {MAX_UPDATE} are accepted")]
    TooLarge(u64),
}

fn key(release_key: &str) -> Result<PublicKey, UpdateError> {
    // Either the bare base64 line or the whole `.pub` file.
    let text = release_key.trim();
    let parsed = if text.contains('\n') {
        PublicKey::decode(text)
    } else {
        PublicKey::from_base64(text)
    };
    parsed.map_err(|e| UpdateError::Key(e.to_string()))
}

/// Verifies `data` against a minisign `signature` (the `.minisig` file's text) by
/// `release_key` (base64, or the `.pub` file's text). Returns the trusted comment.
///
/// # Errors
/// [`UpdateError::Key`], [`UpdateError::Signature`], [`UpdateError::Refused`].
pub fn verify(release_key: &str, data: &[u8], signature: &str) -> Result<String, UpdateError> {
    let key = key(release_key)?;
    let sig = Signature::decode(signature).map_err(|e| UpdateError::Signature(e.to_string()))?;
    key.verify(data, &sig, false)
        .map_err(|e| UpdateError::Refused(e.to_string()))?;
    Ok(sig.trusted_comment().to_owned())
}

/// Verifies the update at `file` with its signature at `file.minisig` (or `signature`),
/// and only then copies it into `dir` as an executable file only the user can run.
///
/// # Errors
/// Any [`UpdateError`]; nothing is written then.
pub fn stage(
    release_key: &str,
    file: &Path,
    signature: Option<&Path>,
    dir: &Path,
) -> Result<PathBuf, UpdateError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| UpdateError::Io { path, source }
    };
    let len = std::fs::metadata(file).map_err(io(file))?.len();
    if len > MAX_UPDATE {
        return Err(UpdateError::TooLarge(len));
    }
    let sig_path = signature.map_or_else(
        || {
            let mut p = file.as_os_str().to_owned();
            p.push(".minisig");
            PathBuf::from(p)
        },
        Path::to_path_buf,
    );
    let sig = match std::fs::read_to_string(&sig_path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UpdateError::Signature(format!(
                "{}: the update is unsigned (no signature file)",
                sig_path.display()
            )));
        }
        Err(e) => return Err(io(&sig_path)(e)),
    };
    let data = std::fs::read(file).map_err(io(file))?;
    verify(release_key, &data, &sig)?;
    let name = file
        .file_name()
        .map_or_else(|| "update".into(), |n| n.to_string_lossy().into_owned());
    let target = dir.join(name);
    write_private(&target, &data).map_err(io(&target))?;
    Ok(target)
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with the minisign tool (`testdata/`): a release key, a file it signed, the same
    // file signed by another key, and a legacy-format signature.
    const KEY: &str = include_str!("../testdata/release.pub");
    const DATA: &[u8] = include_bytes!("../testdata/update.bin");
    const GOOD: &str = include_str!("../testdata/update.bin.good.minisig");
    const OTHER: &str = include_str!("../testdata/update.bin.otherkey.minisig");
    const LEGACY: &str = include_str!("../testdata/update.bin.legacy.minisig");

    #[test]
    fn a_good_signature_is_accepted() {
        assert_eq!(
            verify(KEY, DATA, GOOD).unwrap(),
            "haetae-helper test release"
        );
        let bare = KEY.lines().nth(1).unwrap();
        verify(bare, DATA, GOOD).unwrap();
    }

    #[test]
    fn bad_signatures_are_refused() {
        let mut changed = DATA.to_vec();
        changed[0] ^= 1;
        assert!(matches!(
            verify(KEY, &changed, GOOD),
            Err(UpdateError::Refused(_))
        ));
        assert!(verify(KEY, DATA, OTHER).is_err());
        assert!(matches!(
            verify(KEY, DATA, LEGACY),
            Err(UpdateError::Refused(_))
        ));
        assert!(matches!(
            verify(KEY, DATA, ""),
            Err(UpdateError::Signature(_))
        ));
        assert!(matches!(
            verify(KEY, DATA, "garbage\nlines\n"),
            Err(UpdateError::Signature(_))
        ));
        // The trusted comment is signed too.
        let forged = GOOD.replace("haetae-helper test release", "haetae-helper 99.0");
        assert!(verify(KEY, DATA, &forged).is_err());
        assert!(matches!(
            verify("not a key", DATA, GOOD),
            Err(UpdateError::Key(_))
        ));
    }

    #[test]
    fn only_a_verified_update_is_staged() {
        let src = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = src.path().join("haetae-helper");
        std::fs::write(&file, DATA).unwrap();
        // Unsigned.
        let e = stage(KEY, &file, None, dir.path()).unwrap_err();
        assert!(e.to_string().contains("unsigned"), "{e}");
        // Wrong key.
        let sig = src.path().join("haetae-helper.minisig");
        std::fs::write(&sig, OTHER).unwrap();
        assert!(stage(KEY, &file, None, dir.path()).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Good.
        std::fs::write(&sig, GOOD).unwrap();
        let staged = stage(KEY, &file, None, dir.path()).unwrap();
        assert_eq!(std::fs::read(&staged).unwrap(), DATA);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&staged).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
