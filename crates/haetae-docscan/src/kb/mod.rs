//! The vulnerability knowledge base (seed 002 (c)): every analysis with its file hash, inflow
//! source and findings, the known vulnerabilities with their CVEs and signatures, and the
//! quarantine's metadata and audit trail.
//!
//! SQLite by default (one file, WAL), PostgreSQL for a `postgres://` URL; both run the same
//! queries and the same schema (`migrations/{sqlite,postgres}`). The known vulnerabilities
//! ship with the crate (`src/kb/known.json`) and are written on every open, so an upgrade of
//! haetae upgrades them; entries learned from unknown files are `unconfirmed` until an
//! analyst confirms them.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};

use crate::finding::Finding;

/// The known vulnerabilities shipped with haetae.
pub const KNOWN: &str = include_str!("known.json");

/// Why the knowledge base failed.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The database could not be opened or reached.
    #[error(
        "cannot open the knowledge base {target}: {source}. Check the path or URL and that the server is running"
    )]
    Open {
        /// File or URL (password removed).
        target: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the knowledge base schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("knowledge base query failed while {context}: {source}")]
    Query {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored value could not be read back.
    #[error("knowledge base data is corrupt: {0}")]
    Corrupt(String),
    /// A value given to the knowledge base is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

fn ctx(context: &'static str) -> impl FnOnce(sqlx::Error) -> KbError {
    move |source| KbError::Query { context, source }
}

fn corrupt(what: &str) -> impl FnOnce(serde_json::Error) -> KbError + '_ {
    move |e| KbError::Corrupt(format!("{what}: {e}"))
}

/// Where a file came from. A short lower-case name: `upload`, `email`, `usb`, `watch`,
/// `cli`, `remote-support`, `api` or a deployment's own (letters, digits, `-`, `_`, `.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InflowSource(String);

impl InflowSource {
    /// The well-known sources.
    pub const WELL_KNOWN: [&'static str; 7] = [
        "upload",
        "email",
        "usb",
        "watch",
        "cli",
        "remote-support",
        "api",
    ];

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InflowSource {
    type Err = KbError;
    fn from_str(s: &str) -> Result<Self, KbError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if ok {
            Ok(InflowSource(s.to_owned()))
        } else {
            Err(KbError::Invalid(format!(
                "inflow source {s:?} must be 1-64 lower-case letters, digits, '-', '_' or '.' (e.g. {})",
                Self::WELL_KNOWN.join(", ")
            )))
        }
    }
}

impl TryFrom<String> for InflowSource {
    type Error = KbError;
    fn try_from(s: String) -> Result<Self, KbError> {
        s.parse()
    }
}

impl From<InflowSource> for String {
    fn from(s: InflowSource) -> String {
        s.0
    }
}

impl std::fmt::Display for InflowSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an analyst stands behind a knowledge-base entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Shipped with haetae or confirmed by an analyst.
    Confirmed,
    /// Learned from a file that matched nothing known; waits for an analyst.
    Unconfirmed,
}

impl Status {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Confirmed => "confirmed",
            Status::Unconfirmed => "unconfirmed",
        }
    }
}

/// What a known vulnerability looks like to the verifiers: the finding codes it raises, the
/// file types it arrives in and the places (normalised locations) it sits. See
/// [`crate::analysis`] for how a new analysis is compared with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Finding codes.
    pub codes: Vec<String>,
    /// File types (`FileType::as_str`).
    #[serde(default)]
    pub file_types: Vec<String>,
    /// Normalised locations (digits replaced by `#`, see [`crate::analysis::normalise_location`]).
    #[serde(default)]
    pub locations: Vec<String>,
}

/// One entry of the knowledge base's vulnerability table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownVulnerability {
    /// Stable id (`cve-2017-11882`, `learned-<hash>`).
    pub id: String,
    /// Short name.
    pub name: String,
    /// CVE ids, most specific first.
    #[serde(default)]
    pub cves: Vec<String>,
    /// What it is and how it is exploited.
    pub description: String,
    /// References (NVD, vendor advisories).
    #[serde(default)]
    pub links: Vec<String>,
    /// What the verifiers see.
    pub signature: Signature,
    /// Confirmed or learned.
    #[serde(default = "confirmed")]
    pub status: Status,
}

fn confirmed() -> Status {
    Status::Confirmed
}

/// The seed entries shipped with the crate.
///
/// # Errors
/// Only if the shipped JSON is broken (a test keeps it valid).
pub fn known_vulnerabilities() -> Result<Vec<KnownVulnerability>, KbError> {
    serde_json::from_str(KNOWN).map_err(corrupt("src/kb/known.json"))
}

/// A stored analysis: one scan of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    /// Row id.
    pub id: i64,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The path or name it came with.
    pub path: Option<String>,
    /// Where it came from.
    pub source: InflowSource,
    /// Detected type.
    pub file_type: String,
    /// Verdict (`clean`, `suspicious`, `vulnerable`).
    pub verdict: String,
    /// The findings with their codes and locations.
    pub findings: Vec<Finding>,
    /// The closest known vulnerability, if any scored.
    pub best_match: Option<String>,
    /// Its similarity, 0-100.
    pub best_score: Option<u8>,
    /// When (Unix milliseconds).
    pub created_at: i64,
}

/// A new analysis to record (see [`KnowledgeBase::record_analysis`]).
#[derive(Debug, Clone)]
pub struct NewAnalysis<'a> {
    /// The scan.
    pub report: &'a crate::Report,
    /// Where the file came from.
    pub source: &'a InflowSource,
    /// The closest known vulnerability and its score.
    pub best: Option<(&'a str, u8)>,
}

/// A quarantine entry's metadata as the knowledge base keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineRow {
    /// Entry id.
    pub id: String,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Where the file was.
    pub original_path: String,
    /// Inflow source.
    pub source: String,
    /// Verdict when quarantined.
    pub verdict: String,
    /// Findings when quarantined.
    pub findings: Vec<Finding>,
    /// Size in bytes.
    pub size: i64,
    /// When (Unix milliseconds).
    pub quarantined_at: i64,
    /// `quarantined`, `restored` or `purged`.
    pub state: String,
}

/// One line of the quarantine's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// The entry acted on.
    pub entry_id: String,
    /// `quarantine`, `restore`, `purge`, `recover`.
    pub action: String,
    /// Who (OS user or service name).
    pub actor: String,
    /// Free text: paths, reasons.
    pub detail: String,
    /// When (Unix milliseconds).
    pub at: i64,
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// Which database a [`KnowledgeBase`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

fn migrator(backend: Backend) -> Migrator {
    let sql: &'static str = match backend {
        Backend::Sqlite => include_str!("../../migrations/sqlite/0001_init.sql"),
        Backend::Postgres => include_str!("../../migrations/postgres/0001_init.sql"),
    };
    Migrator::with_migrations(vec![Migration::new(
        1,
        "docscan knowledge base".into(),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )])
}

/// The password-free form of a database URL, for messages.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = url.get(scheme + 3..at).unwrap_or_default();
            let user = userinfo.split(':').next().unwrap_or_default();
            format!(
                "{}{user}:***{}",
                url.get(..scheme + 3).unwrap_or_default(),
                url.get(at..).unwrap_or_default()
            )
        }
        _ => url.to_owned(),
    }
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    )
    .unwrap_or(i64::MAX)
}

/// The knowledge base.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    db: Db,
}

impl KnowledgeBase {
    /// Opens `target`: a `postgres://` URL, or a SQLite file path (created if missing).
    /// Brings the schema up to date and writes the shipped vulnerabilities.
    ///
    /// # Errors
    /// [`KbError`] naming the database and what failed.
    pub async fn open(target: &str) -> Result<KnowledgeBase, KbError> {
        if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            Self::open_postgres(target, None).await
        } else {
            let path = target.strip_prefix("sqlite://").unwrap_or(target);
            Self::open_sqlite(Path::new(path)).await
        }
    }

    /// Opens (creating) a SQLite file in WAL mode with full fsync on commit.
    ///
    /// # Errors
    /// [`KbError`] naming the file.
    pub async fn open_sqlite(path: &Path) -> Result<KnowledgeBase, KbError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| KbError::Open {
                target: parent.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| KbError::Open {
                target: path.display().to_string(),
                source,
            })?;
        migrator(Backend::Sqlite).run(&pool).await?;
        let kb = KnowledgeBase {
            db: Db::Sqlite(pool),
        };
        kb.seed().await?;
        Ok(kb)
    }

    /// Connects to PostgreSQL; `schema`, when given, is created and used as the search path
    /// (tests and several deployments on one server).
    ///
    /// # Errors
    /// [`KbError`] naming the URL without its password.
    pub async fn open_postgres(url: &str, schema: Option<&str>) -> Result<KnowledgeBase, KbError> {
        let open_err = |source| KbError::Open {
            target: redact_url(url),
            source,
        };
        let mut options = PgConnectOptions::from_str(url).map_err(open_err)?;
        if let Some(schema) = schema {
            if schema.is_empty()
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(KbError::Invalid(format!(
                    "schema name {schema:?} must be lower-case letters, digits and '_'"
                )));
            }
            let setup = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(open_err)?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&setup)
            .await
            .map_err(ctx("creating the schema"))?;
            setup.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        migrator(Backend::Postgres).run(&pool).await?;
        let kb = KnowledgeBase {
            db: Db::Postgres(pool),
        };
        kb.seed().await?;
        Ok(kb)
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the pool (waits for connections to finish).
    pub async fn close(&self) {
        with_db!(&self.db, pool => pool.close().await);
    }

    async fn seed(&self) -> Result<(), KbError> {
        for v in known_vulnerabilities()? {
            self.upsert_vulnerability(&v, "seed").await?;
        }
        Ok(())
    }

    /// Inserts or replaces a vulnerability entry. `origin` is `seed`, `learned` or `analyst`.
    ///
    /// # Errors
    /// [`KbError::Query`].
    pub async fn upsert_vulnerability(
        &self,
        v: &KnownVulnerability,
        origin: &str,
    ) -> Result<(), KbError> {
        let cves = serde_json::to_string(&v.cves).map_err(corrupt("cves"))?;
        let links = serde_json::to_string(&v.links).map_err(corrupt("links"))?;
        let signature = serde_json::to_string(&v.signature).map_err(corrupt("signature"))?;
        let now = now_ms();
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO vulnerabilities (id, name, cves, description, links, signature, status, origin, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, cves = excluded.cves, \
                 description = excluded.description, links = excluded.links, \
                 signature = excluded.signature, status = excluded.status, origin = excluded.origin",
            )
            .bind(&v.id)
            .bind(&v.name)
            .bind(&cves)
            .bind(&v.description)
            .bind(&links)
            .bind(&signature)
            .bind(v.status.as_str())
            .bind(origin)
            .bind(now)
            .execute(pool)
            .await
            .map_err(ctx("writing a vulnerability"))?;
        });
        Ok(())
    }

    /// Every vulnerability entry, ordered by id.
    ///
    /// # Errors
    /// [`KbError`].
    pub async fn vulnerabilities(&self) -> Result<Vec<KnownVulnerability>, KbError> {
        let sql = "SELECT id, name, cves, description, links, signature, status FROM vulnerabilities ORDER BY id";
        let rows: Vec<[String; 7]> = with_db!(&self.db, pool => {
            sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map_err(ctx("reading vulnerabilities"))?
                .iter()
                .map(|r| {
                    Ok([
                        r.try_get::<String, _>("id")?,
                        r.try_get("name")?,
                        r.try_get("cves")?,
                        r.try_get("description")?,
                        r.try_get("links")?,
                        r.try_get("signature")?,
                        r.try_get("status")?,
                    ])
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(ctx("reading vulnerabilities"))?
        });
        rows.into_iter()
            .map(|[id, name, cves, description, links, signature, status]| {
                Ok(KnownVulnerability {
                    cves: serde_json::from_str(&cves).map_err(corrupt("cves"))?,
                    links: serde_json::from_str(&links).map_err(corrupt("links"))?,
                    signature: serde_json::from_str(&signature).map_err(corrupt("signature"))?,
                    status: match status.as_str() {
                        "unconfirmed" => Status::Unconfirmed,
                        _ => Status::Confirmed,
                    },
                    id,
                    name,
                    description,
                })
            })
            .collect()
    }

    /// Records one analysis; returns its row id.
    ///
    /// # Errors
    /// [`KbError`].
    pub async fn record_analysis(&self, a: &NewAnalysis<'_>) -> Result<i64, KbError> {
        let findings = serde_json::to_string(&a.report.findings).map_err(corrupt("findings"))?;
        let sql = "INSERT INTO analyses (sha256, path, source, file_type, verdict, findings, best_match, best_score, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
        let id: i64 = with_db!(&self.db, pool => {
            sqlx::query(sql)
                .bind(&a.report.sha256)
                .bind(a.report.path.as_deref())
                .bind(a.source.as_str())
                .bind(a.report.detected_type.as_str())
                .bind(a.report.verdict.as_str())
                .bind(&findings)
                .bind(a.best.map(|b| b.0))
                .bind(a.best.map(|b| i32::from(b.1)))
                .bind(now_ms())
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get::<i64, _>("id"))
                .map_err(ctx("recording an analysis"))?
        });
        Ok(id)
    }

    /// The analyses of a file (by SHA-256), newest first.
    ///
    /// # Errors
    /// [`KbError`].
    pub async fn analyses_of(&self, sha256: &str) -> Result<Vec<AnalysisRecord>, KbError> {
        let sql = "SELECT id, sha256, path, source, file_type, verdict, findings, best_match, best_score, created_at \
                   FROM analyses WHERE sha256 = $1 ORDER BY id DESC";
        type Raw = (
            i64,
            String,
            Option<String>,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<i32>,
            i64,
        );
        let rows: Vec<Raw> = with_db!(&self.db, pool => {
            sqlx::query(sql)
                .bind(sha256)
                .fetch_all(pool)
                .await
                .map_err(ctx("reading analyses"))?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("sha256")?,
                        r.try_get("path")?,
                        r.try_get("source")?,
                        r.try_get("file_type")?,
                        r.try_get("verdict")?,
                        r.try_get("findings")?,
                        r.try_get("best_match")?,
                        r.try_get("best_score")?,
                        r.try_get("created_at")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(ctx("reading analyses"))?
        });
        rows.into_iter()
            .map(|r| {
                Ok(AnalysisRecord {
                    id: r.0,
                    sha256: r.1,
                    path: r.2,
                    source: r.3.parse()?,
                    file_type: r.4,
                    verdict: r.5,
                    findings: serde_json::from_str(&r.6).map_err(corrupt("findings"))?,
                    best_match: r.7,
                    best_score: r.8.and_then(|s| u8::try_from(s).ok()),
                    created_at: r.9,
                })
            })
            .collect()
    }

    /// Writes (or updates the state of) a quarantine entry's metadata.
    ///
    /// # Errors
    /// [`KbError`].
    pub async fn put_quarantine(&self, q: &QuarantineRow) -> Result<(), KbError> {
        let findings = serde_json::to_string(&q.findings).map_err(corrupt("findings"))?;
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO quarantine (id, sha256, original_path, source, verdict, findings, size, quarantined_at, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            )
            .bind(&q.id)
            .bind(&q.sha256)
            .bind(&q.original_path)
            .bind(&q.source)
            .bind(&q.verdict)
            .bind(&findings)
            .bind(q.size)
            .bind(q.quarantined_at)
            .bind(&q.state)
            .execute(pool)
            .await
            .map_err(ctx("writing quarantine metadata"))?;
        });
        Ok(())
    }

    /// Quarantine entries, newest first.
    ///
    /// # Errors
    /// [`KbError`].
    pub async fn quarantine_rows(&self) -> Result<Vec<QuarantineRow>, KbError> {
        let sql = "SELECT id, sha256, original_path, source, verdict, findings, size, quarantined_at, state \
                   FROM quarantine ORDER BY quarantined_at DESC, id";
        type Raw = (
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            String,
        );
        let rows: Vec<Raw> = with_db!(&self.db, pool => {
            sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map_err(ctx("reading quarantine metadata"))?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("sha256")?,
                        r.try_get("original_path")?,
                        r.try_get("source")?,
                        r.try_get("verdict")?,
                        r.try_get("findings")?,
                        r.try_get("size")?,
                        r.try_get("quarantined_at")?,
                        r.try_get("state")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(ctx("reading quarantine metadata"))?
        });
        rows.into_iter()
            .map(|r| {
                Ok(QuarantineRow {
                    id: r.0,
                    sha256: r.1,
                    original_path: r.2,
                    source: r.3,
                    verdict: r.4,
                    findings: serde_json::from_str(&r.5).map_err(corrupt("findings"))?,
                    size: r.6,
                    quarantined_at: r.7,
                    state: r.8,
                })
            })
            .collect()
    }

    /// Appends to the quarantine audit trail.
    ///
    /// # Errors
    /// [`KbError`].
    pub async fn audit(&self, a: &AuditRow) -> Result<(), KbError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO quarantine_audit (entry_id, action, actor, detail, at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&a.entry_id)
            .bind(&a.action)
            .bind(&a.actor)
            .bind(&a.detail)
            .bind(a.at)
            .execute(pool)
            .await
            .map_err(ctx("writing the audit trail"))?;
        });
        Ok(())
    }

    /// The audit trail, oldest first; of one entry when `entry` is given.
    ///
    /// # Errors
    /// [`KbError`].
    pub async fn audit_trail(&self, entry: Option<&str>) -> Result<Vec<AuditRow>, KbError> {
        let sql = "SELECT entry_id, action, actor, detail, at FROM quarantine_audit \
                   WHERE ($1 IS NULL OR entry_id = $1) ORDER BY id";
        let sql_pg = "SELECT entry_id, action, actor, detail, at FROM quarantine_audit \
                      WHERE ($1::text IS NULL OR entry_id = $1) ORDER BY id";
        let rows = match &self.db {
            Db::Sqlite(pool) => sqlx::query(sql)
                .bind(entry)
                .fetch_all(pool)
                .await
                .map_err(ctx("reading the audit trail"))?
                .iter()
                .map(audit_row)
                .collect::<Result<Vec<_>, sqlx::Error>>(),
            Db::Postgres(pool) => sqlx::query(sql_pg)
                .bind(entry)
                .fetch_all(pool)
                .await
                .map_err(ctx("reading the audit trail"))?
                .iter()
                .map(audit_row)
                .collect::<Result<Vec<_>, sqlx::Error>>(),
        };
        rows.map_err(ctx("reading the audit trail"))
    }
}

fn audit_row<R: Row>(r: &R) -> Result<AuditRow, sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'v> i64: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> String: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditRow {
        entry_id: r.try_get("entry_id")?,
        action: r.try_get("action")?,
        actor: r.try_get("actor")?,
        detail: r.try_get("detail")?,
        at: r.try_get("at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, scan_bytes};

    fn jpeg_exploit() -> crate::Report {
        scan_bytes(
            &[0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01, 0xFF, 0xD9],
            Some("photo.jpg"),
            &Limits::default(),
        )
    }

    #[test]
    fn the_shipped_data_names_the_issue_cves() {
        let known = known_vulnerabilities().unwrap();
        let cves: Vec<&str> = known
            .iter()
            .flat_map(|k| k.cves.iter().map(String::as_str))
            .collect();
        for cve in [
            "CVE-2004-0200",
            "CVE-2017-11882",
            "CVE-2017-0199",
            "CVE-2021-40444",
            "CVE-2022-30190",
            "CVE-2017-8291",
            "CVE-2015-8126",
            "CVE-2009-3459",
        ] {
            assert!(cves.contains(&cve), "{cve} missing");
        }
        assert!(known.iter().any(|k| k.id == "zip-bomb"));
        let mut ids: Vec<&str> = known.iter().map(|k| k.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), known.len(), "duplicate ids");
    }

    #[test]
    fn sources_are_validated() {
        assert!("remote-support".parse::<InflowSource>().is_ok());
        let err = "USB Stick".parse::<InflowSource>().unwrap_err();
        assert!(err.to_string().contains("lower-case"));
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
    }

    pub(crate) async fn exercise(kb: &KnowledgeBase) {
        let known = kb.vulnerabilities().await.unwrap();
        assert_eq!(known.len(), known_vulnerabilities().unwrap().len());
        // Opening again (re-seeding) must not duplicate.
        kb.seed().await.unwrap();
        assert_eq!(kb.vulnerabilities().await.unwrap().len(), known.len());

        let report = jpeg_exploit();
        let source: InflowSource = "email".parse().unwrap();
        let id = kb
            .record_analysis(&NewAnalysis {
                report: &report,
                source: &source,
                best: Some(("cve-2004-0200", 100)),
            })
            .await
            .unwrap();
        let got = kb.analyses_of(&report.sha256).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, id);
        assert_eq!(got[0].source, source);
        assert_eq!(got[0].findings, report.findings);
        assert_eq!(got[0].best_score, Some(100));
        assert_eq!(got[0].verdict, "vulnerable");

        let learned = KnownVulnerability {
            id: "learned-x".into(),
            name: "unconfirmed".into(),
            cves: vec![],
            description: "d".into(),
            links: vec![],
            signature: Signature::default(),
            status: Status::Unconfirmed,
        };
        kb.upsert_vulnerability(&learned, "learned").await.unwrap();
        let all = kb.vulnerabilities().await.unwrap();
        assert_eq!(
            all.iter().find(|v| v.id == "learned-x").unwrap().status,
            Status::Unconfirmed
        );

        let row = QuarantineRow {
            id: "q1".into(),
            sha256: report.sha256.clone(),
            original_path: "/tmp/a.jpg".into(),
            source: "usb".into(),
            verdict: "vulnerable".into(),
            findings: report.findings.clone(),
            size: 8,
            quarantined_at: 1,
            state: "quarantined".into(),
        };
        kb.put_quarantine(&row).await.unwrap();
        kb.put_quarantine(&QuarantineRow {
            state: "restored".into(),
            ..row.clone()
        })
        .await
        .unwrap();
        let rows = kb.quarantine_rows().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "restored");
        for action in ["quarantine", "restore"] {
            kb.audit(&AuditRow {
                entry_id: "q1".into(),
                action: action.into(),
                actor: "tester".into(),
                detail: String::new(),
                at: 2,
            })
            .await
            .unwrap();
        }
        let trail = kb.audit_trail(Some("q1")).await.unwrap();
        assert_eq!(
            trail.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
            ["quarantine", "restore"]
        );
        assert!(kb.audit_trail(Some("other")).await.unwrap().is_empty());
        assert_eq!(kb.audit_trail(None).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn sqlite_stores_analyses_vulnerabilities_and_quarantine_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kb.sqlite3");
        let kb = KnowledgeBase::open(path.to_str().unwrap()).await.unwrap();
        assert_eq!(kb.backend(), Backend::Sqlite);
        exercise(&kb).await;
        kb.close().await;
        // Reopening keeps what was written and migrates nothing twice.
        let kb = KnowledgeBase::open(path.to_str().unwrap()).await.unwrap();
        assert_eq!(kb.quarantine_rows().await.unwrap().len(), 1);
    }

    #[tokio::test]
    #[ignore = "needs HAETAE_TEST_PG"]
    async fn postgres_runs_the_same_queries() {
        let url = std::env::var("HAETAE_TEST_PG").expect("HAETAE_TEST_PG");
        let schema = format!(
            "docscan_kb_{}_{}",
            std::process::id(),
            now_ms().rem_euclid(1_000_000)
        );
        let kb = KnowledgeBase::open_postgres(&url, Some(&schema))
            .await
            .unwrap();
        assert_eq!(kb.backend(), Backend::Postgres);
        exercise(&kb).await;
        kb.close().await;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&admin)
        .await
        .unwrap();
    }
}
