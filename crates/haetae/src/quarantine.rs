//! `haetae quarantine list|show|restore|purge|audit`, and what `haetae scan` does with a
//! file after its verdict (`--on-vulnerable`, `--on-suspicious`, `--report`): the document
//! inspector's actions by policy (issue 5), over the library's encrypted, crash-safe
//! quarantine store (`haetae_docscan::quarantine`) and its knowledge base.
//!
//! The store lives in `<data_dir>/quarantine`; its 32-byte key comes from
//! `HAETAE_QUARANTINE_KEY` (64 hex digits) when set, else from `<data_dir>/quarantine.key`
//! (owner-only), which the first quarantining creates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use haetae_core::config::Config;
use haetae_crypto::{CipherSuite, MasterKeySource};
use haetae_docscan::Report;
use haetae_docscan::kb::{AuditRow, InflowSource, KnowledgeBase, QuarantineRow};
use haetae_docscan::quarantine::{Entry, Meta, Quarantine};
use haetae_docscan::report_html::{self, ActionTaken, FileReport};

/// The variable holding the quarantine key (64 hex digits).
pub const KEY_ENV: &str = "HAETAE_QUARANTINE_KEY";

/// Flags shared by the commands that open the store.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The quarantine folder (default: `<data_dir>/quarantine`).
    #[arg(long, value_name = "DIR")]
    pub quarantine_dir: Option<PathBuf>,
    /// Encryption of quarantined content at rest.
    #[arg(long, value_enum, default_value_t = SuiteArg::Aes256Gcm)]
    pub suite: SuiteArg,
    /// The knowledge base that mirrors entries and the audit trail: a SQLite file or a
    /// `postgres://` URL (default: `<data_dir>/docscan-kb.sqlite`).
    #[arg(long, value_name = "TARGET")]
    pub kb: Option<String>,
}

/// The authenticated suites the store accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuiteArg {
    /// AES-256-GCM.
    #[value(name = "AES-256-GCM")]
    Aes256Gcm,
    /// ARIA-256-GCM (KS X 1213).
    #[value(name = "ARIA-256-GCM")]
    Aria256Gcm,
}

/// `haetae quarantine ...`
#[derive(Debug, Args)]
pub struct QuarantineArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: QuarantineCommand,
}

#[derive(Debug, Subcommand)]
enum QuarantineCommand {
    /// Every entry: id, state, verdict, size, source, original path.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One entry with its findings.
    Show { id: String },
    /// Write an entry back (never over an existing file).
    Restore {
        id: String,
        /// Where to write it (default: where it was).
        #[arg(long, value_name = "PATH")]
        to: Option<PathBuf>,
    },
    /// Delete an entry's content for good (the entry and its audit stay).
    Purge { id: String },
    /// The audit trail (quarantine, restore, purge, recover).
    Audit,
}

/// What to do with a file after its verdict. Ordered: when several apply, the last wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Nothing.
    Allow,
    /// Record the analysis in the knowledge base.
    Log,
    /// Replace the file with its rebuilt copy without active content; the original goes
    /// into the quarantine. A file that cannot be rebuilt is quarantined instead.
    Disarm,
    /// Move the file into the encrypted quarantine (and record it).
    Quarantine,
    /// Delete the file (and record it).
    Delete,
}

impl Action {
    const fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Log => "log",
            Action::Disarm => "disarm",
            Action::Quarantine => "quarantine",
            Action::Delete => "delete",
        }
    }
}

/// The action policy of `haetae scan --policy FILE`: actions by verdict and by finding
/// code; a file gets the strongest action that applies (`allow` < `log` < `disarm` <
/// `quarantine` < `delete`).
///
/// ```toml
/// [verdicts]
/// vulnerable = "quarantine"
/// suspicious = "log"
/// [codes]
/// OLE-VBA-PROJECT = "quarantine"   # macros, even in an otherwise suspicious file
/// ZIP-RATIO = "delete"
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionPolicy {
    #[serde(default)]
    verdicts: VerdictActions,
    #[serde(default)]
    codes: std::collections::BTreeMap<String, Action>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictActions {
    vulnerable: Option<Action>,
    suspicious: Option<Action>,
}

impl ActionPolicy {
    /// The policy file (if any) with the flags' verdict actions over it.
    ///
    /// # Errors
    /// The file cannot be read or is not a policy: the error names the file and the place.
    pub fn load(
        file: Option<&Path>,
        on_vulnerable: Option<Action>,
        on_suspicious: Option<Action>,
    ) -> anyhow::Result<ActionPolicy> {
        let mut policy = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the action policy {}", path.display()))?;
                toml::from_str::<ActionPolicy>(&text)
                    .map_err(|e| anyhow::anyhow!("action policy {}: {e}", path.display()))?
            }
            None => ActionPolicy::default(),
        };
        if on_vulnerable.is_some() {
            policy.verdicts.vulnerable = on_vulnerable;
        }
        if on_suspicious.is_some() {
            policy.verdicts.suspicious = on_suspicious;
        }
        Ok(policy)
    }

    /// The action for one scanned file.
    #[must_use]
    pub fn action_for(&self, r: &Report) -> Action {
        let by_verdict = match r.verdict {
            haetae_core::Verdict::Vulnerable => self.verdicts.vulnerable,
            haetae_core::Verdict::Suspicious => self.verdicts.suspicious,
            haetae_core::Verdict::Clean => None,
        };
        r.findings
            .iter()
            .filter_map(|f| self.codes.get(&f.code).copied())
            .chain(by_verdict)
            .max()
            .unwrap_or(Action::Allow)
    }

    /// Every action the policy can take.
    fn actions(&self) -> impl Iterator<Item = Action> + '_ {
        [self.verdicts.vulnerable, self.verdicts.suspicious]
            .into_iter()
            .flatten()
            .chain(self.codes.values().copied())
    }

    /// Whether any file could get more than `allow`.
    #[must_use]
    pub fn acts(&self) -> bool {
        self.actions().any(|a| a != Action::Allow)
    }

    /// Whether any file could be quarantined (disarm keeps the original there).
    #[must_use]
    pub fn quarantines(&self) -> bool {
        self.actions()
            .any(|a| matches!(a, Action::Quarantine | Action::Disarm))
    }
}

fn actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "haetae".to_owned())
}

fn suite(arg: SuiteArg) -> anyhow::Result<CipherSuite> {
    let name = match arg {
        SuiteArg::Aes256Gcm => "AES-256-GCM",
        SuiteArg::Aria256Gcm => "ARIA-256-GCM",
    };
    CipherSuite::parse(name).with_context(|| format!("cipher suite {name}"))
}

/// The store's key: the environment variable, else the key file (created when `create`).
fn key(data_dir: &Path, create: bool) -> anyhow::Result<haetae_crypto::SecretKey> {
    if std::env::var_os(KEY_ENV).is_some() {
        return Ok(MasterKeySource::Env(KEY_ENV.to_owned()).load(32)?);
    }
    let path = data_dir.join("quarantine.key");
    if !path.exists() {
        if !create {
            bail!(
                "no quarantine key: set {KEY_ENV} or keep {} (made by the first `haetae scan --on-vulnerable quarantine`)",
                path.display()
            );
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let fresh = haetae_crypto::SecretKey::generate(32)?;
        let hex = zeroize::Zeroizing::new(
            fresh
                .expose()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
        write_owner_only(&path, hex.as_bytes())?;
    }
    Ok(MasterKeySource::File(path).load(32)?)
}

fn write_owner_only(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// An open store with its knowledge base.
pub struct Store {
    quarantine: Option<Quarantine>,
    kb: KnowledgeBase,
    rt: tokio::runtime::Runtime,
}

impl Store {
    /// Opens the knowledge base, and the quarantine when `with_quarantine` (creating its key
    /// when `create_key`). Recovery of a crash's half-done move is reported on stderr.
    ///
    /// # Errors
    /// Key, folder or database problems, each naming what and where.
    pub fn open(
        config: &Config,
        args: &StoreArgs,
        with_quarantine: bool,
        create_key: bool,
    ) -> anyhow::Result<Store> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        let target = args.kb.clone().unwrap_or_else(|| {
            config
                .data_dir
                .join("docscan-kb.sqlite")
                .display()
                .to_string()
        });
        if !target.starts_with("postgres") {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        }
        let kb = rt
            .block_on(KnowledgeBase::open(&target))
            .with_context(|| format!("knowledge base {target}"))?;
        let quarantine = if with_quarantine {
            let dir = args
                .quarantine_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("quarantine"));
            let key = key(&config.data_dir, create_key)?;
            let (q, recovered) = Quarantine::open(&dir, suite(args.suite)?, key.expose())
                .with_context(|| format!("quarantine {}", dir.display()))?;
            for line in &recovered {
                eprintln!(
                    "haetae: quarantine recovery: {} {} ({})",
                    line.action, line.entry_id, line.detail
                );
                rt.block_on(kb.audit(&AuditRow {
                    entry_id: line.entry_id.clone(),
                    action: line.action.clone(),
                    actor: line.actor.clone(),
                    detail: line.detail.clone(),
                    at: line.at,
                }))?;
            }
            Some(q)
        } else {
            None
        };
        Ok(Store { quarantine, kb, rt })
    }

    fn quarantine(&self) -> anyhow::Result<&Quarantine> {
        self.quarantine
            .as_ref()
            .context("the quarantine store is not open")
    }

    fn mirror(&self, e: &Entry, action: &str, detail: String) -> anyhow::Result<()> {
        self.rt.block_on(async {
            self.kb
                .put_quarantine(&QuarantineRow {
                    id: e.id.clone(),
                    sha256: e.sha256.clone(),
                    original_path: e.original_path.clone(),
                    source: e.meta.source.clone(),
                    verdict: e.meta.verdict.clone(),
                    findings: e.meta.findings.clone(),
                    size: i64::try_from(e.size).unwrap_or(i64::MAX),
                    quarantined_at: e.quarantined_at,
                    state: e.state.as_str().to_owned(),
                })
                .await?;
            self.kb
                .audit(&AuditRow {
                    entry_id: e.id.clone(),
                    action: action.to_owned(),
                    actor: actor(),
                    detail,
                    at: now_ms(),
                })
                .await
        })?;
        Ok(())
    }

    /// Takes `action` on the scanned file of `report` (with `source` as inflow), records the
    /// analysis (similar known vulnerabilities) and, when `report_dir` is given, writes the
    /// HTML and JSON report. Returns what was done.
    ///
    /// # Errors
    /// Only knowledge-base failures; a failed action is reported in the result.
    pub fn act(
        &self,
        report: &Report,
        action: Action,
        source: &InflowSource,
        report_dir: Option<&Path>,
        conversion: Option<report_html::ConversionSummary>,
    ) -> anyhow::Result<ActionTaken> {
        let analysis = self
            .rt
            .block_on(haetae_docscan::analysis::analyse(&self.kb, report, source))?;
        let path = report.path.as_deref().filter(|p| *p != "-");
        let taken = match (action, path) {
            (Action::Allow | Action::Log, _) => ActionTaken {
                action: action.as_str().to_owned(),
                detail: "recorded in the knowledge base".to_owned(),
                ok: true,
            },
            (_, None) => ActionTaken {
                action: action.as_str().to_owned(),
                detail: "standard input has no file to act on".to_owned(),
                ok: false,
            },
            (Action::Disarm, Some(p)) => self.disarm_in_place(report, Path::new(p), source)?,
            (Action::Quarantine, Some(p)) => {
                let meta = Meta {
                    source: source.to_string(),
                    verdict: report.verdict.as_str().to_owned(),
                    findings: report.findings.clone(),
                    actor: actor(),
                };
                match self.quarantine()?.quarantine(Path::new(p), meta) {
                    Ok(entry) => {
                        self.mirror(&entry, "quarantine", entry.original_path.clone())?;
                        ActionTaken {
                            action: "quarantine".to_owned(),
                            detail: format!("entry {}", entry.id),
                            ok: true,
                        }
                    }
                    Err(e) => ActionTaken {
                        action: "quarantine".to_owned(),
                        detail: e.to_string(),
                        ok: false,
                    },
                }
            }
            (Action::Delete, Some(p)) => match std::fs::remove_file(p) {
                Ok(()) => {
                    self.rt.block_on(self.kb.audit(&AuditRow {
                        entry_id: report.sha256.clone(),
                        action: "delete".to_owned(),
                        actor: actor(),
                        detail: p.to_owned(),
                        at: now_ms(),
                    }))?;
                    ActionTaken {
                        action: "delete".to_owned(),
                        detail: format!("deleted {p}"),
                        ok: true,
                    }
                }
                Err(e) => ActionTaken {
                    action: "delete".to_owned(),
                    detail: format!("cannot delete {p}: {e}"),
                    ok: false,
                },
            },
        };
        if let Some(dir) = report_dir {
            let file_report = FileReport {
                scan: report.clone(),
                source: source.to_string(),
                analysis: Some(analysis),
                conversion,
                actions: vec![taken.clone()],
                version: env!("CARGO_PKG_VERSION").to_owned(),
            };
            report_html::write(dir, &file_report)
                .with_context(|| format!("cannot write the report into {}", dir.display()))?;
        }
        Ok(taken)
    }
}

impl Store {
    /// The `disarm` action: the original into the quarantine (crash-safe), then its rebuilt
    /// copy written in its place (temporary file, fsync, rename). Nothing is lost at any
    /// step: until the copy is in place the original is in the quarantine.
    fn disarm_in_place(
        &self,
        report: &Report,
        path: &Path,
        source: &InflowSource,
    ) -> anyhow::Result<ActionTaken> {
        let taken = |ok: bool, detail: String| ActionTaken {
            action: "disarm".to_owned(),
            detail,
            ok,
        };
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => return Ok(taken(false, format!("cannot read {}: {e}", path.display()))),
        };
        let rebuilt = haetae_docscan::convert::disarm(
            &data,
            report.detected_type,
            &haetae_docscan::Limits::default(),
        );
        let meta = Meta {
            source: source.to_string(),
            verdict: report.verdict.as_str().to_owned(),
            findings: report.findings.clone(),
            actor: actor(),
        };
        let entry = match self.quarantine()?.quarantine(path, meta) {
            Ok(e) => e,
            Err(e) => return Ok(taken(false, e.to_string())),
        };
        self.mirror(&entry, "quarantine", entry.original_path.clone())?;
        let copy = match rebuilt {
            Ok(d) => d,
            Err(e) => {
                return Ok(taken(
                    true,
                    format!("{e}; quarantined instead as entry {}", entry.id),
                ));
            }
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // A plain-text rendition (OLE2, HWP) goes beside it as `<name>.txt`: a `.doc` name
        // over text would mislead every reader.
        let rendition = copy.file_type != report.detected_type;
        let target = if rendition {
            let mut name = path.as_os_str().to_owned();
            name.push(".txt");
            PathBuf::from(name)
        } else {
            path.to_path_buf()
        };
        let tmp = dir.join(format!(".haetae-disarm-{}", entry.id));
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&copy.bytes)?;
            f.sync_all()?;
            // Never over a file that appeared meanwhile.
            std::fs::hard_link(&tmp, &target)?;
            std::fs::remove_file(&tmp)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Ok(taken(
                false,
                format!(
                    "the original is in the quarantine as entry {}, but its copy could not be written to {}: {e}",
                    entry.id,
                    target.display()
                ),
            ));
        }
        let removed: Vec<String> = copy.removed.iter().map(|r| r.what.clone()).collect();
        Ok(taken(
            true,
            format!(
                "{} (removed: {}); original in the quarantine as entry {}",
                if rendition {
                    format!("replaced by its text rendition {}", target.display())
                } else {
                    "replaced by its rebuilt copy".to_owned()
                },
                if removed.is_empty() {
                    "nothing".to_owned()
                } else {
                    removed.join(", ")
                },
                entry.id
            ),
        ))
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    )
    .unwrap_or(i64::MAX)
}

/// Runs `haetae quarantine ...`.
///
/// # Errors
/// Store problems, unknown ids, refusals (restore over an existing file, purge twice).
pub fn run(config: &Config, args: &QuarantineArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(config, &args.store, true, false)?;
    let q = store.quarantine()?;
    match &args.command {
        QuarantineCommand::List { json } => {
            let entries = q.list()?;
            if *json {
                for e in &entries {
                    println!("{}", serde_json::to_string(e)?);
                }
            } else {
                println!(
                    "{:<26} {:<11} {:<10} {:>10}  {:<8} path",
                    "id", "state", "verdict", "bytes", "source"
                );
                for e in &entries {
                    println!(
                        "{:<26} {:<11} {:<10} {:>10}  {:<8} {}",
                        e.id,
                        e.state.as_str(),
                        e.meta.verdict,
                        e.size,
                        e.meta.source,
                        e.original_path
                    );
                }
                println!("{} entries", entries.len());
            }
        }
        QuarantineCommand::Show { id } => {
            println!("{}", serde_json::to_string_pretty(&q.get(id)?)?);
        }
        QuarantineCommand::Restore { id, to } => {
            let path = q.restore(id, to.as_deref(), &actor())?;
            let e = q.get(id)?;
            store.mirror(&e, "restore", format!("to {}", path.display()))?;
            println!("restored {} to {}", e.id, path.display());
        }
        QuarantineCommand::Purge { id } => {
            let e = q.purge(id, &actor())?;
            store.mirror(&e, "purge", e.original_path.clone())?;
            println!("purged {}", e.id);
        }
        QuarantineCommand::Audit => {
            for line in q.audit_trail()? {
                println!(
                    "{}  {:<10} {:<26} {:<12} {}",
                    line.at, line.action, line.entry_id, line.actor, line.detail
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
