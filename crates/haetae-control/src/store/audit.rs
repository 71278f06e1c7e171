//! The append-only audit log: every change made through the Control Center, each row chained
//! to the one before by a SHA-256 hash, so that [`Store::verify_audit_log`] finds any row that
//! was modified, removed or inserted afterwards.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Db, Store, StoreError, ctx, now_micros, with_db};

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The most rows one audit-log page returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// One audit-log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When, in microseconds since the epoch.
    pub ts: i64,
    /// Who: a user name, `token:<name>`, or `system`.
    pub actor: String,
    /// What, dotted: `policy.publish`, `user.create`, `auth.login_failed`.
    pub action: String,
    /// What it was done to: a service id, a user name, a policy version.
    pub target: String,
    /// Details as JSON text (never a password or token).
    pub detail: String,
    /// The previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// What the verifier found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// Rows checked.
    pub rows: i64,
    /// `true` when every row's hash matches its content and its predecessor.
    pub intact: bool,
    /// The first row that does not match, if any.
    pub first_bad_seq: Option<i64>,
    /// Why that row does not match.
    pub problem: Option<String>,
}

/// The hash of a row: SHA-256 over the previous hash and every field, each length-prefixed
/// so that no two different rows hash the same input.
#[must_use]
pub fn row_hash(
    prev_hash: &str,
    seq: i64,
    ts: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash.as_bytes(),
        &seq.to_be_bytes(),
        &ts.to_be_bytes(),
        actor.as_bytes(),
        action.as_bytes(),
        target.as_bytes(),
        detail.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

fn read_entry<R>(r: &R) -> Result<AuditEntry, sqlx::Error>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'v> i64: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> String: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        ts: r.try_get("ts")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl Store {
    /// Appends a row to the audit log. Appends are serialised (an exclusive write
    /// transaction on SQLite, an advisory lock on PostgreSQL) so the chain never forks, even
    /// with several Control Centers on one database.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<AuditEntry, StoreError> {
        let detail = detail.to_string();
        let ts = now_micros();
        macro_rules! append {
            ($tx:ident) => {{
                let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *$tx)
                    .await
                    .map_err(ctx("reading the audit log's last row"))?;
                let (prev_seq, prev_hash) = match last {
                    Some(r) => (
                        r.try_get::<i64, _>("seq").map_err(ctx("reading the audit log"))?,
                        r.try_get::<String, _>("hash").map_err(ctx("reading the audit log"))?,
                    ),
                    None => (0, GENESIS_HASH.to_owned()),
                };
                let seq = prev_seq + 1;
                let hash = row_hash(&prev_hash, seq, ts, actor, action, target, &detail);
                sqlx::query(
                    "INSERT INTO audit_log (seq, ts, actor, action, target, detail, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(seq)
                .bind(ts)
                .bind(actor)
                .bind(action)
                .bind(target)
                .bind(&detail)
                .bind(&prev_hash)
                .bind(&hash)
                .execute(&mut *$tx)
                .await
                .map_err(ctx("appending to the audit log"))?;
                AuditEntry {
                    seq,
                    ts,
                    actor: actor.to_owned(),
                    action: action.to_owned(),
                    target: target.to_owned(),
                    detail: detail.clone(),
                    prev_hash,
                    hash,
                }
            }};
        }
        let entry = match &self.db {
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(ctx("opening a connection"))?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
                    .await
                    .map_err(ctx("locking the audit log"))?;
                let entry = append!(tx);
                tx.commit()
                    .await
                    .map_err(ctx("committing to the audit log"))?;
                entry
            }
            Db::Postgres(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(ctx("starting an audit append"))?;
                // One lock id for the audit chain: "haetae audit" as a number.
                sqlx::query("SELECT pg_advisory_xact_lock(7400000001)")
                    .execute(&mut *tx)
                    .await
                    .map_err(ctx("locking the audit log"))?;
                let entry = append!(tx);
                tx.commit()
                    .await
                    .map_err(ctx("committing to the audit log"))?;
                entry
            }
        };
        Ok(entry)
    }

    /// Audit rows, newest first, older than `before_seq` when given.
    pub async fn audit_page(
        &self,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_AUDIT_PAGE));
        with_db!(&self.db, pool => {
            sqlx::query(
                "SELECT seq, ts, actor, action, target, detail, prev_hash, hash FROM audit_log \
                 WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
            )
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(ctx("reading the audit log"))?
            .iter()
            .map(read_entry)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ctx("reading the audit log"))
        })
    }

    /// Walks the whole chain in order and checks every row's hash, its link to the row
    /// before, and that no sequence number is missing. Reads in pages, so memory stays
    /// bounded however long the log is.
    pub async fn verify_audit_log(&self) -> Result<AuditVerification, StoreError> {
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut expected_seq = 1_i64;
        let mut rows = 0_i64;
        loop {
            let page: Vec<AuditEntry> = with_db!(&self.db, pool => {
                sqlx::query(
                    "SELECT seq, ts, actor, action, target, detail, prev_hash, hash FROM audit_log \
                     WHERE seq >= $1 ORDER BY seq LIMIT 1000",
                )
                .bind(expected_seq)
                .fetch_all(pool)
                .await
                .map_err(ctx("reading the audit log"))?
                .iter()
                .map(read_entry)
                .collect::<Result<Vec<_>, _>>()
                .map_err(ctx("reading the audit log"))?
            });
            if page.is_empty() {
                return Ok(AuditVerification {
                    rows,
                    intact: true,
                    first_bad_seq: None,
                    problem: None,
                });
            }
            for e in &page {
                rows += 1;
                let problem = if e.seq != expected_seq {
                    Some(format!(
                        "row {expected_seq} is missing (next row is {})",
                        e.seq
                    ))
                } else if e.prev_hash != prev_hash {
                    Some("its prev_hash does not match the previous row's hash".to_owned())
                } else if row_hash(
                    &e.prev_hash,
                    e.seq,
                    e.ts,
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.detail,
                ) != e.hash
                {
                    Some("its content does not match its hash (the row was modified)".to_owned())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Ok(AuditVerification {
                        rows,
                        intact: false,
                        first_bad_seq: Some(expected_seq),
                        problem: Some(problem),
                    });
                }
                prev_hash.clone_from(&e.hash);
                expected_seq += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::both_backends;
    use serde_json::json;

    async fn three_rows(store: &Store) {
        for (i, action) in ["user.create", "policy.publish", "user.delete"]
            .iter()
            .enumerate()
        {
            store
                .append_audit("admin", action, &format!("t{i}"), &json!({ "n": i }))
                .await
                .unwrap();
        }
    }

    both_backends!(rows_are_chained_from_the_genesis_hash, |store| {
        three_rows(&store).await;
        let page = store.audit_page(None, 10).await.unwrap();
        assert_eq!(page.len(), 3);
        assert_eq!(page[2].prev_hash, GENESIS_HASH);
        assert_eq!(page[1].prev_hash, page[2].hash);
        assert_eq!(page[0].prev_hash, page[1].hash);
        let v = store.verify_audit_log().await.unwrap();
        assert_eq!(
            v,
            AuditVerification {
                rows: 3,
                intact: true,
                first_bad_seq: None,
                problem: None
            }
        );
    });

    both_backends!(the_verifier_detects_a_modified_row, |store| {
        three_rows(&store).await;
        with_db!(&store.db, pool => {
            sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2").execute(pool).await.unwrap();
        });
        let v = store.verify_audit_log().await.unwrap();
        assert!(!v.intact);
        assert_eq!(v.first_bad_seq, Some(2));
        assert!(v.problem.unwrap().contains("modified"));
    });

    both_backends!(the_verifier_detects_a_deleted_row, |store| {
        three_rows(&store).await;
        with_db!(&store.db, pool => {
            sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(pool).await.unwrap();
        });
        let v = store.verify_audit_log().await.unwrap();
        assert_eq!(v.first_bad_seq, Some(2));
        assert!(v.problem.unwrap().contains("missing"));
    });

    both_backends!(
        the_verifier_detects_a_rehashed_row_by_the_broken_link,
        |store| {
            three_rows(&store).await;
            let rows = store.audit_page(None, 10).await.unwrap();
            let second = rows.iter().find(|e| e.seq == 2).unwrap();
            let forged = row_hash(
                &second.prev_hash,
                2,
                second.ts,
                "mallory",
                &second.action,
                &second.target,
                &second.detail,
            );
            with_db!(&store.db, pool => {
                sqlx::query("UPDATE audit_log SET actor = 'mallory', hash = $1 WHERE seq = 2")
                    .bind(&forged)
                    .execute(pool)
                    .await
                    .unwrap();
            });
            let v = store.verify_audit_log().await.unwrap();
            assert_eq!(v.first_bad_seq, Some(3));
        }
    );

    both_backends!(concurrent_appends_never_fork_the_chain, |store| {
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.append_audit("admin", "x.y", &i.to_string(), &json!({}))
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let v = store.verify_audit_log().await.unwrap();
        assert!(v.intact, "{v:?}");
        assert_eq!(v.rows, 20);
    });
}
