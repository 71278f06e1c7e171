//! The policy as stored: one working draft that every edit changes, the published versions
//! (immutable, numbered from 1), and the security-check requirements of each service.

use std::collections::BTreeMap;

use haetae_core::PolicySnapshot;
use serde::Serialize;
use sqlx::Row;

use super::{Db, Store, StoreError, ctx, with_db};

/// A published version as listed (without the snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    /// The version number.
    pub version: i64,
    /// When it was published.
    pub created_at: i64,
    /// Who published it.
    pub author: String,
    /// Why.
    pub comment: String,
}

fn parse_snapshot(text: &str, what: &str) -> Result<PolicySnapshot, StoreError> {
    PolicySnapshot::from_json(text)
        .map_err(|e| StoreError::Corrupt(format!("{what} is not a policy: {e}")))
}

impl Store {
    /// The working draft, or `None` when nobody has edited one yet.
    pub async fn draft(&self) -> Result<Option<PolicySnapshot>, StoreError> {
        let text: Option<String> = with_db!(&self.db, pool => {
            sqlx::query("SELECT snapshot FROM policy_draft WHERE id = 1")
                .fetch_optional(pool)
                .await
                .map_err(ctx("reading the draft"))?
                .map(|r| r.try_get("snapshot"))
                .transpose()
                .map_err(ctx("reading the draft"))?
        });
        text.map(|t| parse_snapshot(&t, "the draft")).transpose()
    }

    /// Replaces the working draft.
    pub async fn save_draft(
        &self,
        snapshot: &PolicySnapshot,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let text =
            serde_json::to_string(snapshot).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO policy_draft (id, snapshot, updated_at, updated_by) VALUES (1, $1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(&text)
            .bind(now)
            .bind(by)
            .execute(pool)
            .await
            .map_err(ctx("saving the draft"))?;
        });
        Ok(())
    }

    /// Stores `snapshot` as the next version (its `version` field is set to it), at least
    /// `min_version`, and returns it. Concurrent publishers get distinct versions: the
    /// insert fails for the loser, which retries with the next number.
    pub async fn insert_version(
        &self,
        snapshot: &PolicySnapshot,
        min_version: i64,
        author: &str,
        comment: &str,
        now: i64,
    ) -> Result<PolicySnapshot, StoreError> {
        for _attempt in 0..5 {
            let next = (self.latest_version_number().await?.unwrap_or(0) + 1).max(min_version);
            let mut versioned = snapshot.clone();
            versioned.version = u64::try_from(next).unwrap_or(1);
            versioned.created_at = super::from_micros(now);
            let text = serde_json::to_string(&versioned)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let inserted = with_db!(&self.db, pool => {
                sqlx::query(
                    "INSERT INTO policy_versions (version, created_at, author, comment, snapshot) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING",
                )
                .bind(next)
                .bind(now)
                .bind(author)
                .bind(comment)
                .bind(&text)
                .execute(pool)
                .await
                .map_err(ctx("storing a policy version"))?
                .rows_affected()
            });
            if inserted == 1 {
                return Ok(versioned);
            }
        }
        Err(StoreError::Corrupt(
            "could not allocate a policy version number after 5 attempts; try again".into(),
        ))
    }

    /// The highest published version number.
    pub async fn latest_version_number(&self) -> Result<Option<i64>, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("SELECT MAX(version) AS v FROM policy_versions")
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get::<Option<i64>, _>("v"))
                .map_err(ctx("finding the latest version"))
        })
    }

    /// One published version.
    pub async fn version(&self, version: i64) -> Result<Option<PolicySnapshot>, StoreError> {
        let text: Option<String> = with_db!(&self.db, pool => {
            sqlx::query("SELECT snapshot FROM policy_versions WHERE version = $1")
                .bind(version)
                .fetch_optional(pool)
                .await
                .map_err(ctx("reading a policy version"))?
                .map(|r| r.try_get("snapshot"))
                .transpose()
                .map_err(ctx("reading a policy version"))?
        });
        text.map(|t| parse_snapshot(&t, &format!("policy version {version}")))
            .transpose()
    }

    /// Published versions, newest first.
    pub async fn list_versions(&self, limit: u32) -> Result<Vec<VersionInfo>, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "SELECT version, created_at, author, comment FROM policy_versions ORDER BY version DESC LIMIT $1",
            )
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(pool)
            .await
            .map_err(ctx("listing policy versions"))?
            .iter()
            .map(|r| {
                Ok(VersionInfo {
                    version: r.try_get("version")?,
                    created_at: r.try_get("created_at")?,
                    author: r.try_get("author")?,
                    comment: r.try_get("comment")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(ctx("reading policy versions"))
        })
    }

    /// The required controls of every service that has any, by service id.
    pub async fn requirements(&self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let rows: Vec<(String, String)> = with_db!(&self.db, pool => {
            sqlx::query("SELECT service_id, control FROM requirements ORDER BY service_id, control")
                .fetch_all(pool)
                .await
                .map_err(ctx("reading requirements"))?
                .iter()
                .map(|r| Ok((r.try_get("service_id")?, r.try_get("control")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(ctx("reading requirements"))?
        });
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (service, control) in rows {
            map.entry(service).or_default().push(control);
        }
        Ok(map)
    }

    /// Replaces the required controls of one service.
    pub async fn set_requirements(
        &self,
        service_id: &str,
        controls: &[String],
    ) -> Result<(), StoreError> {
        macro_rules! replace {
            ($tx:ident) => {{
                sqlx::query("DELETE FROM requirements WHERE service_id = $1")
                    .bind(service_id)
                    .execute(&mut *$tx)
                    .await
                    .map_err(ctx("replacing requirements"))?;
                for control in controls {
                    sqlx::query("INSERT INTO requirements (service_id, control) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(service_id)
                        .bind(control)
                        .execute(&mut *$tx)
                        .await
                        .map_err(ctx("replacing requirements"))?;
                }
            }};
        }
        match &self.db {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(ctx("replacing requirements"))?;
                replace!(tx);
                tx.commit().await.map_err(ctx("replacing requirements"))?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(ctx("replacing requirements"))?;
                replace!(tx);
                tx.commit().await.map_err(ctx("replacing requirements"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::both_backends;
    use haetae_core::Service;

    fn policy() -> PolicySnapshot {
        PolicySnapshot {
            services: vec![Service {
                id: "transfer".into(),
                name: "Transfer".into(),
                matches: vec![],
                upstream: "http://127.0.0.1:9000".into(),
                description: String::new(),
            }],
            ..PolicySnapshot::default()
        }
    }

    both_backends!(
        the_draft_is_absent_until_saved_and_then_replaced_whole,
        |store| {
            assert_eq!(store.draft().await.unwrap(), None);
            let p = policy();
            store.save_draft(&p, "admin", 1).await.unwrap();
            assert_eq!(store.draft().await.unwrap().unwrap().services, p.services);
            store
                .save_draft(&PolicySnapshot::default(), "admin", 2)
                .await
                .unwrap();
            assert!(store.draft().await.unwrap().unwrap().services.is_empty());
        }
    );

    both_backends!(versions_are_numbered_from_one_and_kept_unchanged, |store| {
        let v1 = store
            .insert_version(&policy(), 1, "admin", "first", 10)
            .await
            .unwrap();
        let v2 = store
            .insert_version(&PolicySnapshot::default(), 1, "officer", "empty", 20)
            .await
            .unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        assert_eq!(store.version(1).await.unwrap().unwrap(), v1);
        assert_eq!(store.latest_version_number().await.unwrap(), Some(2));
        let listed = store.list_versions(10).await.unwrap();
        assert_eq!(listed[0].version, 2);
        assert_eq!(listed[1].comment, "first");
        assert_eq!(store.version(3).await.unwrap(), None);
        let v7 = store
            .insert_version(
                &PolicySnapshot::default(),
                7,
                "admin",
                "ahead of the bus",
                30,
            )
            .await
            .unwrap();
        assert_eq!(v7.version, 7);
    });

    both_backends!(requirements_are_replaced_per_service, |store| {
        store
            .set_requirements("transfer", &["otp".into(), "e2e".into()])
            .await
            .unwrap();
        store
            .set_requirements("balance", &["device-info".into()])
            .await
            .unwrap();
        store
            .set_requirements("transfer", &["certificate".into()])
            .await
            .unwrap();
        let map = store.requirements().await.unwrap();
        assert_eq!(map["transfer"], ["certificate"]);
        assert_eq!(map["balance"], ["device-info"]);
    });
}
