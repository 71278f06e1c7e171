//! `haetae scan`: runs the document inspector (`haetae-docscan`) over files, directories
//! (recursively) and stdin, in parallel, and prints one line per file (or JSON lines, or a
//! SARIF log) with a summary table. Exit codes: 0 all clean, 1 something suspicious or
//! vulnerable, 2 some file could not be scanned.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use haetae_core::{Severity, Verdict};
use haetae_docscan::{Limits, Report, sarif, scan_reader};
use indicatif::{ProgressBar, ProgressStyle};

use crate::quarantine::{Action, ActionPolicy, Store, StoreArgs};
use haetae_docscan::report_html::ConversionSummary;

mod disarm;
mod watch;
use rayon::prelude::*;

/// When `--disarm` also runs the `LibreOffice` conversion test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SofficeWhen {
    /// When `soffice`/`libreoffice` is on PATH and can be sandboxed.
    Auto,
    /// Never.
    Off,
}

/// Flags of `haetae scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories to scan (directories recursively); `-` reads stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One JSON object per file per line on stdout instead of the human report.
    #[arg(long)]
    json: bool,
    /// Also write a SARIF 2.1.0 log to this file.
    #[arg(long, value_name = "FILE")]
    sarif: Option<PathBuf>,
    /// Files scanned at once (default: one per CPU).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Time budget per file, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    time_budget_ms: u64,
    /// Memory budget per file, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mib: u64,
    /// How deep containers may nest.
    #[arg(long, default_value_t = 10)]
    max_depth: u32,
    /// Container entries per file.
    #[arg(long, default_value_t = 10_000)]
    max_entries: u64,
    /// Largest decompression ratio a compressed part may have.
    #[arg(long, default_value_t = 512)]
    max_ratio: u64,
    /// Print only files that are not clean (human output).
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Name to use for the claimed type when reading stdin.
    #[arg(long, value_name = "NAME")]
    stdin_name: Option<String>,
    /// What to do with a `vulnerable` file after the scan (default `allow`, or the policy's).
    #[arg(long, value_enum, value_name = "ACTION")]
    on_vulnerable: Option<Action>,
    /// What to do with a `suspicious` file after the scan (default `allow`, or the policy's).
    #[arg(long, value_enum, value_name = "ACTION")]
    on_suspicious: Option<Action>,
    /// An action policy (TOML): actions by verdict (`[verdicts]`) and by finding code
    /// (`[codes]`); the flags above override its verdicts.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write an HTML and a JSON report (findings, similar known vulnerabilities with CVE
    /// links, actions taken) for every file that is not clean into this folder.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// The inflow source recorded with each analysis (`cli`, `upload`, `email`, `usb`,
    /// `watch`, `remote-support`, `api`, or a deployment's own lower-case name; default
    /// `cli`, or `watch` with `--watch`).
    #[arg(long, value_name = "NAME")]
    pub(crate) source: Option<String>,
    /// Write a rebuilt copy of each file without its active content into this folder, with
    /// a `.disarm.json` sidecar of what was removed (a failed conversion counts as a
    /// finding: exit 1).
    #[arg(long, value_name = "DIR")]
    disarm: Option<PathBuf>,
    /// With `--disarm`: also convert each original `LibreOffice` reads to PDF with
    /// `soffice --headless --convert-to` (sandboxed: no network, own profile, timeout) as a
    /// second conversion test, when it is on PATH (`auto`), or never (`off`).
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    soffice: SofficeWhen,
    /// Keep running and scan every file that appears or changes under the given folders
    /// once its writer has closed it (or it was moved in whole), applying the actions.
    #[arg(long)]
    pub(crate) watch: bool,
    #[command(flatten)]
    store: StoreArgs,
}

fn collect(path: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<Report>) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => match std::fs::read_dir(path) {
            Ok(rd) => {
                let mut children: Vec<PathBuf> =
                    rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                children.sort();
                for c in children {
                    collect(&c, out, errors);
                }
            }
            Err(e) => errors.push(Report::unreadable(
                Some(path.display().to_string()),
                format!("cannot list directory: {e}"),
            )),
        },
        Ok(m) if m.file_type().is_symlink() => {
            // Follow links to files, never to directories (no loops).
            if std::fs::metadata(path).is_ok_and(|t| t.is_file()) {
                out.push(path.to_owned());
            }
        }
        Ok(_) => out.push(path.to_owned()),
        Err(e) => errors.push(Report::unreadable(
            Some(path.display().to_string()),
            format!("cannot read: {e}; check the path and permissions"),
        )),
    }
}

fn scan_one(path: &Path, limits: &Limits) -> Report {
    let name = path.display().to_string();
    match std::fs::File::open(path) {
        Ok(f) => match scan_reader(std::io::BufReader::new(f), Some(&name), limits) {
            Ok(r) => r,
            Err(e) => Report::unreadable(Some(name), format!("read error: {e}")),
        },
        Err(e) => Report::unreadable(Some(name), format!("cannot open: {e}")),
    }
}

fn colour(verdict: Verdict, tty: bool) -> (&'static str, &'static str) {
    if !tty {
        return ("", "");
    }
    match verdict {
        Verdict::Clean => ("\x1b[32m", "\x1b[0m"),
        Verdict::Suspicious => ("\x1b[33m", "\x1b[0m"),
        Verdict::Vulnerable => ("\x1b[1;31m", "\x1b[0m"),
    }
}

fn human(r: &Report, tty: bool) -> String {
    let path = r.path.as_deref().unwrap_or("-");
    if let Some(err) = &r.error {
        return format!("error       {path}: {err}\n");
    }
    let (on, off) = colour(r.verdict, tty);
    let claimed = r.claimed_type.map_or("?", |t| t.as_str());
    let mut s = format!(
        "{on}{:<11}{off} {path}  [{claimed} -> {}]\n",
        r.verdict.as_str(),
        r.detected_type
    );
    for f in &r.findings {
        if f.severity == Severity::Info && r.verdict == Verdict::Clean {
            continue;
        }
        let cve = if f.cve.is_empty() {
            String::new()
        } else {
            format!(" [{}]", f.cve.join(", "))
        };
        s.push_str(&format!(
            "    {:<8} {:<24} {}: {}{cve}\n",
            f.severity.as_str(),
            f.code,
            f.location,
            f.message
        ));
    }
    s
}

/// Runs `haetae scan`.
pub fn run(config: &haetae_core::config::Config, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let default_source = if args.watch { "watch" } else { "cli" };
    let source: haetae_docscan::kb::InflowSource = args
        .source
        .as_deref()
        .unwrap_or(default_source)
        .parse()
        .map_err(|e| anyhow::anyhow!("--source: {e}"))?;
    // Read once, before any file: a bad policy stops the command here.
    let policy = ActionPolicy::load(
        args.policy.as_deref(),
        args.on_vulnerable,
        args.on_suspicious,
    )?;
    let limits = Limits {
        time: Duration::from_millis(args.time_budget_ms),
        memory_bytes: args.memory_mib.saturating_mul(1024 * 1024),
        max_depth: args.max_depth,
        max_entries: args.max_entries,
        max_ratio: args.max_ratio,
    };
    if args.watch {
        return watch::run(config, args, policy, &limits, &source);
    }
    let started = Instant::now();
    let mut files = Vec::new();
    let mut reports: Vec<Report> = Vec::new();
    let mut stdin = false;
    for p in &args.paths {
        if p.as_os_str() == "-" {
            stdin = true;
        } else {
            collect(p, &mut files, &mut reports);
        }
    }
    let stdout_tty = std::io::stdout().is_terminal();
    let progress = if std::io::stderr().is_terminal() && files.len() > 1 {
        let pb = ProgressBar::new(files.len() as u64);
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(pb)
    } else {
        None
    };
    let out = Mutex::new(std::io::stdout());
    let emit = |r: &Report| {
        let line = if args.json {
            serde_json::to_string(r)
                .map(|s| s + "\n")
                .unwrap_or_default()
        } else if args.quiet && r.verdict == Verdict::Clean && r.error.is_none() {
            String::new()
        } else {
            human(r, stdout_tty)
        };
        if line.is_empty() {
            return;
        }
        let write = || {
            if let Ok(mut o) = out.lock() {
                let _ = o.write_all(line.as_bytes());
            }
        };
        match &progress {
            Some(pb) => pb.suspend(write),
            None => write(),
        }
    };
    for r in &reports {
        emit(r);
    }
    if stdin {
        let name = args.stdin_name.clone();
        let r =
            scan_reader(std::io::stdin().lock(), name.as_deref(), &limits).unwrap_or_else(|e| {
                Report::unreadable(name.clone(), format!("cannot read stdin: {e}"))
            });
        emit(&r);
        reports.push(r);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start the scanning threads")?;
    let scanned: Vec<Report> = pool.install(|| {
        files
            .par_iter()
            .map(|p| {
                let r = scan_one(p, &limits);
                emit(&r);
                if let Some(pb) = &progress {
                    pb.inc(1);
                }
                r
            })
            .collect()
    });
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    reports.extend(scanned);
    // Disarm first: an action may move the original away.
    let mut conversions = Vec::with_capacity(reports.len());
    let converter = args
        .disarm
        .as_ref()
        .map(|_| disarm::Converter::new(args.soffice == SofficeWhen::Auto));
    if let Some(disarm::Converter::Absent(why)) = &converter
        && !args.quiet
    {
        eprintln!("haetae scan: LibreOffice conversion test skipped: {why}");
    }
    for r in &reports {
        conversions.push(match (&args.disarm, &converter) {
            (Some(dir), Some(c)) => disarm::one(dir, r, &limits, c)?,
            _ => None,
        });
    }
    let conversion_failed = conversions.iter().flatten().any(|c| !c.failures.is_empty());
    act_on(config, args, policy, &source, &reports, &conversions)?;
    if let Some(path) = &args.sarif {
        let log = sarif::to_sarif(&reports, env!("CARGO_PKG_VERSION"));
        let text = serde_json::to_string_pretty(&log)?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the SARIF log to {}", path.display()))?;
    }
    let code = summarise(&reports, started.elapsed());
    if conversion_failed && exit_code(&reports) == 0 {
        // A file that cannot be converted is what a reader would choke on.
        return Ok(ExitCode::from(1));
    }
    Ok(code)
}

/// Opens the knowledge base (and the quarantine when an action needs it) when the flags
/// ask for actions or reports; `None` when they do not.
pub(crate) fn open_store(
    config: &haetae_core::config::Config,
    args: &ScanArgs,
    policy: ActionPolicy,
) -> anyhow::Result<Option<(Store, ActionPolicy)>> {
    if !policy.acts() && args.report.is_none() {
        return Ok(None);
    }
    let store = Store::open(config, &args.store, policy.quarantines(), true)?;
    Ok(Some((store, policy)))
}

/// Takes the flags' action on one scanned file and writes its report; `false` when the
/// action failed (said on stderr; the file stays where it was).
pub(crate) fn act_one(
    (store, policy): &(Store, ActionPolicy),
    args: &ScanArgs,
    source: &haetae_docscan::kb::InflowSource,
    r: &Report,
    conversion: Option<ConversionSummary>,
) -> anyhow::Result<bool> {
    if r.error.is_some() {
        return Ok(true);
    }
    let action = policy.action_for(r);
    if r.verdict == Verdict::Clean && action == Action::Allow {
        return Ok(true);
    }
    let taken = store.act(r, action, source, args.report.as_deref(), conversion)?;
    let path = r.path.as_deref().unwrap_or("-");
    if taken.ok {
        if action != Action::Allow {
            eprintln!("haetae scan: {path}: {} ({})", taken.action, taken.detail);
        }
    } else {
        eprintln!(
            "haetae scan: {path}: {} failed: {}",
            taken.action, taken.detail
        );
    }
    Ok(taken.ok)
}

/// The actions by verdict and the reports, after every file was scanned (so a slow
/// knowledge base never holds the scanning threads).
fn act_on(
    config: &haetae_core::config::Config,
    args: &ScanArgs,
    policy: ActionPolicy,
    source: &haetae_docscan::kb::InflowSource,
    reports: &[Report],
    conversions: &[Option<ConversionSummary>],
) -> anyhow::Result<()> {
    let Some(store) = open_store(config, args, policy)? else {
        return Ok(());
    };
    let mut failed = 0usize;
    for (r, c) in reports.iter().zip(conversions) {
        if !act_one(&store, args, source, r, c.clone())? {
            failed += 1;
        }
    }
    if let Some(dir) = &args.report {
        eprintln!("haetae scan: reports in {}", dir.display());
    }
    if failed > 0 {
        anyhow::bail!("{failed} action(s) failed (see above); the files are where they were");
    }
    Ok(())
}

fn summarise(reports: &[Report], elapsed: Duration) -> ExitCode {
    let bytes: u64 = reports.iter().map(|r| r.size).sum();
    let count = |v: Verdict| {
        reports
            .iter()
            .filter(|r| r.error.is_none() && r.verdict == v)
            .count()
    };
    let errors = reports.iter().filter(|r| r.error.is_some()).count();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "\nfiles   bytes        seconds  MB/s     clean  suspicious  vulnerable  errors"
    );
    let _ = writeln!(
        e,
        "{:<7} {:<12} {:<8.2} {:<8.1} {:<6} {:<11} {:<11} {}",
        reports.len(),
        bytes,
        secs,
        bytes as f64 / 1e6 / secs,
        count(Verdict::Clean),
        count(Verdict::Suspicious),
        count(Verdict::Vulnerable),
        errors
    );
    ExitCode::from(exit_code(reports))
}

/// 2 when some file could not be read, else 1 when something is not clean, else 0.
fn exit_code(reports: &[Report]) -> u8 {
    if reports.iter().any(|r| r.error.is_some()) {
        2
    } else if reports.iter().any(|r| r.verdict != Verdict::Clean) {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haetae_docscan::scan_bytes;

    fn scanned(data: &[u8], name: &str) -> Report {
        scan_bytes(data, Some(name), &Limits::default())
    }

    #[test]
    fn all_clean_files_exit_zero() {
        assert_eq!(exit_code(&[scanned(b"hello\n", "a.txt")]), 0);
    }

    #[test]
    fn a_vulnerable_file_exits_one() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01, 0xFF, 0xD9];
        assert_eq!(
            exit_code(&[scanned(b"hello\n", "a.txt"), scanned(&jpeg, "b.jpg")]),
            1
        );
    }

    #[test]
    fn an_unreadable_file_exits_two_even_beside_findings() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01, 0xFF, 0xD9];
        let unreadable = Report::unreadable(Some("x".into()), "cannot open".into());
        assert_eq!(exit_code(&[scanned(&jpeg, "b.jpg"), unreadable]), 2);
    }

    #[test]
    fn directories_are_walked_recursively_and_missing_paths_are_errors() {
        let dir = std::env::temp_dir().join(format!("haetae-scan-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), b"a").unwrap();
        std::fs::write(dir.join("sub/b.txt"), b"b").unwrap();
        let (mut files, mut errors) = (Vec::new(), Vec::new());
        collect(&dir, &mut files, &mut errors);
        collect(&dir.join("missing"), &mut files, &mut errors);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].error.as_deref().unwrap().contains("cannot read"));
    }
}
