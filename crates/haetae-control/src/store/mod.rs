//! Storage: one [`Store`] over SQLite (the embedded default, one file in the data folder) or
//! PostgreSQL (the distributed shape), with the same schema, migrations and behaviour on both.
//! Every query is written once and run on either pool by [`with_db!`].

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;

pub mod alerts;
pub mod audit;
pub mod events;
pub mod gateways;
pub mod policy;
pub mod recordings;
pub mod remote;
pub mod totp;
pub mod users;
pub mod wasm;

/// The file name of the SQLite database inside the data folder.
pub const SQLITE_FILE: &str = "control.sqlite3";

/// Why the store failed: what was being done and the database's own message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error(
        "cannot open the database {target}: {source}. Check the path or URL and that the server is running"
    )]
    Open {
        /// The file or URL (without its password).
        target: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed while {context}: {source}")]
    Query {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored value could not be read back (a row written by something else).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Wraps a driver error with what the store was doing.
pub(crate) fn ctx(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}

/// The database behind a [`Store`].
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on whichever pool the store has; `$pool` is bound to it.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_db;

/// The Control Center's database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: Db,
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

fn migrator(backend: Backend) -> Migrator {
    let files: &[(i64, &str, &'static str)] = match backend {
        Backend::Sqlite => &[
            (
                1,
                "init",
                include_str!("../../migrations/sqlite/0001_init.sql"),
            ),
            (
                2,
                "alerts",
                include_str!("../../migrations/sqlite/0002_alerts.sql"),
            ),
            (
                3,
                "totp",
                include_str!("../../migrations/sqlite/0003_totp.sql"),
            ),
            (
                4,
                "event_indexes",
                include_str!("../../migrations/sqlite/0004_event_indexes.sql"),
            ),
            (
                5,
                "remote",
                include_str!("../../migrations/sqlite/0005_remote.sql"),
            ),
            (
                6,
                "wasm_modules",
                include_str!("../../migrations/sqlite/0006_wasm_modules.sql"),
            ),
            (
                7,
                "recordings",
                include_str!("../../migrations/sqlite/0007_recordings.sql"),
            ),
        ],
        Backend::Postgres => &[
            (
                1,
                "init",
                include_str!("../../migrations/postgres/0001_init.sql"),
            ),
            (
                2,
                "alerts",
                include_str!("../../migrations/postgres/0002_alerts.sql"),
            ),
            (
                3,
                "totp",
                include_str!("../../migrations/postgres/0003_totp.sql"),
            ),
            (
                4,
                "event_indexes",
                include_str!("../../migrations/postgres/0004_event_indexes.sql"),
            ),
            (
                5,
                "remote",
                include_str!("../../migrations/postgres/0005_remote.sql"),
            ),
            (
                6,
                "wasm_modules",
                include_str!("../../migrations/postgres/0006_wasm_modules.sql"),
            ),
            (
                7,
                "recordings",
                include_str!("../../migrations/postgres/0007_recordings.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    name.to_owned().into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

impl Store {
    /// Opens the store the configuration names: PostgreSQL when `database_url` is set,
    /// otherwise the SQLite file [`SQLITE_FILE`] in `data_dir` (created with the folder).
    /// Brings the schema up to date either way.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store, StoreError> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Store::open_postgres(url, None).await
            }
            Some(url) => Err(StoreError::Open {
                target: redact_url(url),
                source: sqlx::Error::Configuration(
                    "control.database_url must start with postgres:// (or be unset for SQLite)"
                        .into(),
                ),
            }),
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
                    target: data_dir.display().to_string(),
                    source: sqlx::Error::Io(e),
                })?;
                Store::open_sqlite(&data_dir.join(SQLITE_FILE)).await
            }
        }
    }

    /// Opens (creating if missing) a SQLite database file in WAL mode.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                target: path.display().to_string(),
                source,
            })?;
        migrator(Backend::Sqlite).run(&pool).await?;
        Ok(Store {
            db: Db::Sqlite(pool),
        })
    }

    /// Connects to PostgreSQL. `schema`, when given, is created if missing and used as the
    /// search path, so several Control Center databases (or test runs) share one server.
    pub async fn open_postgres(url: &str, schema: Option<&str>) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            target: redact_url(url),
            source,
        };
        let mut options = PgConnectOptions::from_str(url).map_err(open_err)?;
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                || schema.is_empty()
            {
                return Err(open_err(sqlx::Error::Configuration(
                    format!("schema name {schema:?} must be lower-case letters, digits and '_'")
                        .into(),
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
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        migrator(Backend::Postgres).run(&pool).await?;
        Ok(Store {
            db: Db::Postgres(pool),
        })
    }

    /// Which database this store runs on.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        with_db!(&self.db, pool => pool.close().await);
    }
}

/// A URL without its password, for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Microseconds since the Unix epoch: how every time is stored.
#[must_use]
pub fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The inverse of [`micros`]; out-of-range values clamp to the epoch.
#[must_use]
pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Now, in microseconds.
#[must_use]
pub fn now_micros() -> i64 {
    micros(OffsetDateTime::now_utc())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Opens a fresh store on each backend for tests: a temporary SQLite file, or a private
    //! schema on the PostgreSQL server named by `HAETAE_TEST_PG`.

    use super::Store;

    /// A store in a temporary folder; keep the folder alive as long as the store.
    pub async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Store::open(None, dir.path()).await.expect("open sqlite");
        (store, dir)
    }

    /// A store in a schema of its own on the test PostgreSQL server.
    pub async fn postgres() -> Store {
        let url = std::env::var("HAETAE_TEST_PG")
            .expect("HAETAE_TEST_PG must name a PostgreSQL database for this test");
        let schema = format!("haetae_test_{}", uuid::Uuid::now_v7().simple());
        let store = Store::open_postgres(&url, Some(&schema))
            .await
            .expect("open postgres");
        drop_stale_schemas(&store).await;
        store
    }

    /// Drops test schemas left by runs more than six hours ago (the name carries a UUID v7,
    /// so its creation time), keeping the shared test database from growing forever.
    async fn drop_stale_schemas(store: &Store) {
        use sqlx::Row;
        let super::Db::Postgres(pool) = &store.db else {
            return;
        };
        let Ok(rows) =
            sqlx::query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'haetae\\_test\\_%'")
                .fetch_all(pool)
                .await
        else {
            return;
        };
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(6 * 3600);
        for row in rows {
            let Ok(name) = row.try_get::<String, _>("nspname") else {
                continue;
            };
            let created = uuid::Uuid::parse_str(name.trim_start_matches("haetae_test_"))
                .ok()
                .and_then(|u| u.get_timestamp())
                .map(|t| {
                    let (secs, nanos) = t.to_unix();
                    std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos)
                });
            if created.is_some_and(|c| c < cutoff) {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .execute(pool)
                .await;
            }
        }
    }

    /// Declares a test that runs the same async body on SQLite and on PostgreSQL.
    macro_rules! both_backends {
        ($name:ident, |$store:ident| $body:block) => {
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test]
                async fn sqlite() {
                    let ($store, _dir) = $crate::store::testing::sqlite().await;
                    $body
                }

                #[tokio::test]
                #[ignore = "needs HAETAE_TEST_PG"]
                async fn postgres() {
                    let $store = $crate::store::testing::postgres().await;
                    $body
                }
            }
        };
    }
    pub(crate) use both_backends;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_errors_hide_the_password() {
        assert_eq!(
            redact_url("postgres://haetae:s3cret@db.example:5432/haetae"),
            "postgres://haetae:***@db.example:5432/haetae"
        );
        assert_eq!(redact_url("postgres://db/haetae"), "postgres://db/haetae");
    }

    #[test]
    fn micros_round_trip() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(from_micros(micros(t)), t);
    }

    #[tokio::test]
    async fn a_database_url_that_is_not_postgres_is_refused_with_a_hint() {
        let err = Store::open(Some("mysql://x"), Path::new("/nonexistent"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("must start with postgres://"), "{err}");
    }

    #[tokio::test]
    async fn opening_an_existing_sqlite_file_again_keeps_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(None, dir.path()).await.unwrap();
        first.close().await;
        let again = Store::open(None, dir.path()).await.unwrap();
        assert_eq!(again.backend(), Backend::Sqlite);
    }
}
