//! Leaving nothing behind: when the session ends the helper deletes its temporary folder
//! and, when it runs as the downloaded helper, its own binary (Linux lets a running program
//! unlink its file; the process keeps running from memory until it exits). It never
//! installs a service or an autostart entry and needs no administrator rights.

use std::path::{Path, PathBuf};

/// The helper's private temporary folder (mode 0700), removed at the end.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `haetae-helper-<random>` under the system's temporary folder.
    ///
    /// # Errors
    /// The folder cannot be created, or no entropy.
    pub fn create() -> std::io::Result<TempDir> {
        let mut random = [0u8; 8];
        haetae_crypto::error::os_random(&mut random).map_err(std::io::Error::other)?;
        let path = std::env::temp_dir().join(format!("haetae-helper-{}", hex::encode(random)));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&path)?;
        Ok(TempDir { path })
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What the removal did.
#[derive(Debug, Default)]
pub struct Removed {
    /// Paths deleted.
    pub deleted: Vec<PathBuf>,
    /// Paths that could not be deleted, with why.
    pub failed: Vec<(PathBuf, String)>,
}

/// Deletes the temporary folder and, if given, the helper's own binary.
#[must_use]
pub fn remove(temp: &TempDir, own_binary: Option<&Path>) -> Removed {
    let mut out = Removed::default();
    match std::fs::remove_dir_all(&temp.path) {
        Ok(()) => out.deleted.push(temp.path.clone()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => out.failed.push((temp.path.clone(), e.to_string())),
    }
    if let Some(bin) = own_binary {
        match std::fs::remove_file(bin) {
            Ok(()) => out.deleted.push(bin.to_path_buf()),
            Err(e) => out.failed.push((bin.to_path_buf(), e.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temp_dir_and_binary_are_removed() {
        let temp = TempDir::create().unwrap();
        std::fs::write(temp.path().join("staged"), b"x").unwrap();
        let other = tempfile::tempdir().unwrap();
        let bin = other.path().join("haetae-helper");
        std::fs::write(&bin, b"binary").unwrap();
        let r = remove(&temp, Some(&bin));
        assert!(r.failed.is_empty(), "{:?}", r.failed);
        assert!(!temp.path().exists());
        assert!(!bin.exists());
    }
}
