//! `haetae scan --watch DIR...`: the inflow trigger for folders (a download folder, a
//! mounted USB drive, a file-server share). Every file that appears or changes under the
//! folders is scanned once it is complete and the actions of `--on-vulnerable` /
//! `--on-suspicious` / `--report` are applied, until the process is stopped.
//!
//! *Complete* means: its writer closed it (inotify's close-after-write on Linux), or it was
//! moved or renamed into the folder whole. A file still being written is never scanned,
//! however long the writer pauses. Where the platform reports no close events, a file is
//! complete once its size and modification time have not changed for [`SETTLE`].
//! A file is scanned again only when its content changed (size, modification time).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use haetae_docscan::Limits;
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};

use super::{ScanArgs, act_one, human, open_store, scan_one};

/// How long a file must stay unchanged where the platform has no close events.
const SETTLE: Duration = Duration::from_millis(1500);

/// Identity of one version of a file: size and modification time.
fn version(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    m.is_file()
        .then(|| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// Runs the watch loop; returns only on an error of the watcher itself.
pub(super) fn run(
    config: &haetae_core::config::Config,
    args: &ScanArgs,
    policy: crate::quarantine::ActionPolicy,
    limits: &Limits,
    source: &haetae_docscan::kb::InflowSource,
) -> anyhow::Result<ExitCode> {
    let folders: Vec<&PathBuf> = args.paths.iter().collect();
    for f in &folders {
        if f.as_os_str() == "-" || !f.is_dir() {
            anyhow::bail!("--watch needs folders; {} is not one", f.display());
        }
    }
    let store = open_store(config, args, policy)?;
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .context("cannot start watching")?;
    for f in &folders {
        watcher
            .watch(f, RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", f.display()))?;
    }
    eprintln!(
        "haetae scan: watching {} (source {source}); stop with Ctrl-C",
        folders
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let close_events = cfg!(target_os = "linux");
    // Files seen changing, waiting to be complete: path -> (version, since).
    let mut pending: HashMap<PathBuf, (Option<(u64, SystemTime)>, Instant)> = HashMap::new();
    // The version of each file last scanned.
    let mut scanned: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    let stdout_tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let scan = |path: &Path, scanned: &mut HashMap<PathBuf, (u64, SystemTime)>| {
        let Some(v) = version(path) else {
            return Ok(());
        };
        if scanned.get(path) == Some(&v) {
            return Ok(());
        }
        // Bounded: one entry per file seen; past 100,000 the memory starts over (a file
        // that changes again afterwards is scanned again, which is only more work).
        if scanned.len() > 100_000 {
            scanned.clear();
        }
        scanned.insert(path.to_owned(), v);
        let r = scan_one(path, limits);
        let line = if args.json {
            serde_json::to_string(&r)
                .map(|s| s + "\n")
                .unwrap_or_default()
        } else if args.quiet && r.verdict == haetae_core::Verdict::Clean && r.error.is_none() {
            String::new()
        } else {
            human(&r, stdout_tty)
        };
        if !line.is_empty() {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
        if let Some(store) = &store {
            act_one(store, args, source, &r, None)?;
        }
        anyhow::Ok(())
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(event)) => {
                let complete = match event.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                    | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
                        true
                    }
                    EventKind::Create(CreateKind::File | CreateKind::Any)
                    | EventKind::Modify(_) => false,
                    _ => continue,
                };
                // A rename reports (from, to): the last path is where the file is now.
                let paths: Vec<PathBuf> = if matches!(
                    event.kind,
                    EventKind::Modify(ModifyKind::Name(RenameMode::Both))
                ) {
                    event.paths.last().cloned().into_iter().collect()
                } else {
                    event.paths
                };
                for p in paths {
                    if complete {
                        pending.remove(&p);
                        scan(&p, &mut scanned)?;
                    } else if !close_events {
                        pending.insert(p.clone(), (version(&p), Instant::now()));
                    }
                }
            }
            Ok(Err(e)) => eprintln!("haetae scan: watch error: {e}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the folder watcher stopped")
            }
        }
        // Without close events: a file unchanged for SETTLE is complete.
        let now = Instant::now();
        let ready: Vec<PathBuf> = pending
            .iter_mut()
            .filter_map(|(p, (v, since))| {
                let current = version(p);
                if current != *v {
                    *v = current;
                    *since = now;
                    None
                } else {
                    (now.duration_since(*since) >= SETTLE).then(|| p.clone())
                }
            })
            .collect();
        for p in ready {
            pending.remove(&p);
            scan(&p, &mut scanned)?;
        }
    }
}
