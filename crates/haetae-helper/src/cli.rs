//! The command line, shared by `haetae helper` and the standalone `haetae-helper` binary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::launch::Launch;
use crate::{RunConfig, update};

/// The native remote-support helper (X11).
#[derive(Debug, Parser)]
#[command(name = "haetae-helper", version, about)]
pub struct StandaloneCli {
    /// What to do.
    #[command(flatten)]
    pub args: HelperArgs,
}

/// `haetae helper ...`.
#[derive(Debug, Args)]
pub struct HelperArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: HelperCommand,
}

/// The helper's commands.
#[derive(Debug, Subcommand)]
pub enum HelperCommand {
    /// Pair with the customer's page on 127.0.0.1 (prints {"port":N}), run the session, then
    /// remove the helper's files.
    Run {
        /// The launch file from the page (JSON: origin, ticket, session, `policy_key`,
        /// expires); deleted as soon as it is read.
        #[arg(long)]
        launch: PathBuf,
        /// X display (default: $DISPLAY).
        #[arg(long)]
        display: Option<String>,
        /// Milliseconds remote input pauses after the customer moves the pointer.
        #[arg(long, default_value_t = 1000)]
        local_pause_ms: u64,
        /// Delete this program's own file at the end (the downloaded `haetae-helper` only).
        #[arg(long)]
        self_delete: bool,
    },
    /// Verify a minisign-signed update and copy it into a folder only if it verifies.
    VerifyUpdate {
        /// The release public key: the base64 line or the `.pub` file.
        #[arg(long)]
        key: String,
        /// The signature file (default: FILE.minisig).
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Where to put the verified file (default: only verify).
        #[arg(long)]
        stage_dir: Option<PathBuf>,
        /// The update.
        file: PathBuf,
    },
}

fn key_text(key: &str) -> String {
    std::fs::read_to_string(key).unwrap_or_else(|_| key.to_owned())
}

/// Runs a command. `standalone` is true for the downloaded `haetae-helper` binary (the only
/// one that may delete itself).
#[must_use]
pub fn main(args: &HelperArgs, standalone: bool) -> ExitCode {
    match &args.command {
        HelperCommand::Run {
            launch,
            display,
            local_pause_ms,
            self_delete,
        } => {
            let (self_delete, local_pause_ms) = (*self_delete, *local_pause_ms);
            if self_delete && !standalone {
                eprintln!("haetae helper: --self-delete is for the downloaded haetae-helper only");
                return ExitCode::from(2);
            }
            let launch = match Launch::from_file(launch) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("haetae helper: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let self_delete = if self_delete {
                match std::env::current_exe() {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!("haetae helper: cannot find its own file: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                None
            };
            let config = RunConfig {
                launch,
                display: display.clone(),
                local_pause: Duration::from_millis(local_pause_ms),
                self_delete,
            };
            match crate::run(config) {
                Ok(end) => {
                    let removed: Vec<String> = end
                        .removed
                        .deleted
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    let failed: Vec<String> = end
                        .removed
                        .failed
                        .iter()
                        .map(|(p, e)| format!("{}: {e}", p.display()))
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({"end": format!("{:?}", end.reason), "removed": removed, "not_removed": failed})
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("haetae helper: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        HelperCommand::VerifyUpdate {
            key,
            signature,
            stage_dir,
            file,
        } => {
            let key = key_text(key);
            let result = match stage_dir {
                Some(dir) => update::stage(&key, file, signature.as_deref(), dir)
                    .map(|p| format!("verified; staged at {}", p.display())),
                None => {
                    let sig_path = signature.clone().unwrap_or_else(|| {
                        let mut p = file.clone().into_os_string();
                        p.push(".minisig");
                        PathBuf::from(p)
                    });
                    match (std::fs::read(file), std::fs::read_to_string(&sig_path)) {
                        (Ok(data), Ok(sig)) => update::verify(&key, &data, &sig)
                            .map(|comment| format!("verified (trusted comment: {comment})")),
                        (Err(e), _) => Err(update::UpdateError::Io {
                            path: file.display().to_string(),
                            source: e,
                        }),
                        (_, Err(e)) => Err(update::UpdateError::Signature(format!(
                            "{}: {e} (an unsigned update is refused)",
                            sig_path.display()
                        ))),
                    }
                }
            };
            match result {
                Ok(msg) => {
                    println!("{}: {msg}", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("haetae helper: {}: refused: {e}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The shape `haetae` embeds: `haetae [global flags] helper <command>`.
    #[derive(Debug, Parser)]
    #[command(name = "haetae", propagate_version = true, version)]
    struct Outer {
        #[arg(long, short = 'c', global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: OuterCommand,
    }

    #[derive(Debug, Subcommand)]
    enum OuterCommand {
        Helper(HelperArgs),
    }

    #[test]
    fn the_command_line_is_consistent_alone_and_inside_haetae() {
        StandaloneCli::command().debug_assert();
        Outer::command().debug_assert();
        let parsed = Outer::try_parse_from([
            "haetae",
            "helper",
            "run",
            "--launch",
            "l.json",
            "--local-pause-ms",
            "250",
        ])
        .unwrap();
        let OuterCommand::Helper(HelperArgs {
            command:
                HelperCommand::Run {
                    launch,
                    local_pause_ms,
                    self_delete,
                    ..
                },
        }) = parsed.command
        else {
            panic!("not run");
        };
        assert_eq!(
            (launch, local_pause_ms, self_delete),
            (PathBuf::from("l.json"), 250, false)
        );
        assert!(Outer::try_parse_from(["haetae", "helper", "run"]).is_err());
    }

    #[test]
    fn haetae_helper_refuses_to_delete_haetae() {
        let args = HelperArgs {
            command: HelperCommand::Run {
                launch: PathBuf::from("/nonexistent/launch.json"),
                display: None,
                local_pause_ms: 1000,
                self_delete: true,
            },
        };
        assert_eq!(main(&args, false), ExitCode::from(2));
    }

    #[test]
    fn verify_update_accepts_the_good_signature_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("update.bin");
        std::fs::write(&file, include_bytes!("../testdata/update.bin")).unwrap();
        let key = include_str!("../testdata/release.pub")
            .lines()
            .nth(1)
            .unwrap();
        let check = |sig: &str| {
            std::fs::write(dir.path().join("update.bin.minisig"), sig).unwrap();
            main(
                &HelperArgs {
                    command: HelperCommand::VerifyUpdate {
                        key: key.into(),
                        signature: None,
                        stage_dir: None,
                        file: file.clone(),
                    },
                },
                true,
            )
        };
        assert_eq!(
            check(include_str!("../testdata/update.bin.good.minisig")),
            ExitCode::SUCCESS
        );
        assert_eq!(
            check(include_str!("../testdata/update.bin.otherkey.minisig")),
            ExitCode::FAILURE
        );
    }
}
