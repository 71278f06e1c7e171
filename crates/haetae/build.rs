//! Records the git commit the binary was built from, for `haetae version`.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HAETAE_GIT_COMMIT");
    // Rebuild when HEAD moves (a checkout or a new commit).
    for path in ["../../.git/HEAD", "../../.git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("HAETAE_GIT_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let commit = match commit {
        Some(c) if !c.is_empty() => {
            if dirty {
                format!("{c}-modified")
            } else {
                c
            }
        }
        _ => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=HAETAE_GIT_COMMIT={commit}");
}
