//! `haetae remote`: the organisation's recording key pair and the auditor's offline export
//! of an encrypted session recording (`haetae_control::recording` owns the format).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use haetae_control::recording::{self, RecordingPrivateKey};

/// `haetae remote ...`
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Make the organisation's recording key pair: writes the private key file (for
    /// auditors only; never give it to the Center) and prints the public key for
    /// `control.recording_key`.
    Keygen {
        /// Where to write the private key file (created with mode 0600; never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Decrypt a recording bundle (downloaded from the session's playback page or
    /// `GET /api/v1/remote/recordings/{id}/bundle`) with the recording private key: writes
    /// `recording.h264` (H.264 Annex B), `events.jsonl` and `summary.json` into DIR.
    ExportRecording {
        /// The encrypted bundle (`.hrec`).
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
        /// The recording private key file from `haetae remote keygen`.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The output folder (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Runs a `haetae remote` subcommand.
pub fn run(command: &RemoteCommand) -> anyhow::Result<ExitCode> {
    match command {
        RemoteCommand::Keygen { out } => keygen(out),
        RemoteCommand::ExportRecording { bundle, key, out } => export(bundle, key, out),
    }
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let key = RecordingPrivateKey::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .with_context(|| format!("cannot create {} (it must not exist yet)", out.display()))?;
    file.write_all(key.to_key_file().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let public = key.public_key();
    println!(
        "recording private key written to {} (key id {})",
        out.display(),
        public.key_id()
    );
    println!("keep it with the auditors; the Center needs only the public key:");
    println!();
    println!("[control]");
    println!("recording_key = \"{}\"", public.to_hex());
    Ok(ExitCode::SUCCESS)
}

fn export(bundle: &Path, key: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    let key_text = zeroize::Zeroizing::new(
        std::fs::read_to_string(key)
            .with_context(|| format!("cannot read the key file {}", key.display()))?,
    );
    let private = RecordingPrivateKey::from_key_file(&key_text)
        .with_context(|| format!("key file {}", key.display()))?;
    let bytes = std::fs::read(bundle)
        .with_context(|| format!("cannot read the bundle {}", bundle.display()))?;
    let (header, chunks) =
        recording::read_bundle(&bytes).with_context(|| format!("bundle {}", bundle.display()))?;
    let decrypted = recording::decrypt(&private, &header, &chunks)
        .with_context(|| format!("bundle {}", bundle.display()))?;
    let (h264, events, summary) = recording::export(&decrypted);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let write = |name: &str, data: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))
    };
    write("recording.h264", &h264)?;
    write("events.jsonl", events.as_bytes())?;
    let summary_json = serde_json::json!({
        "recording": header.recording,
        "session": header.session,
        "agent": header.agent,
        "summary": summary,
    });
    write("summary.json", format!("{summary_json:#}\n").as_bytes())?;
    println!(
        "recording {} of session {} ({}): {} H.264 frames ({} key frames), {} events, {:.1} s{} -> {}",
        header.recording,
        header.session,
        header.agent,
        summary.frames,
        summary.key_frames,
        summary.events,
        summary.duration_ms as f64 / 1000.0,
        if summary.complete {
            ""
        } else {
            ", INCOMPLETE (no last chunk)"
        },
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
