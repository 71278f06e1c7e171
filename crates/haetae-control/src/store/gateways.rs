//! Gateways as the Control Center last heard from them: each heartbeat replaces the row of
//! its instance.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, ctx, with_db};

/// A gateway's last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GatewayStatus {
    /// The instance name (`haetae.instance`).
    pub instance: String,
    /// When the last heartbeat arrived (microseconds since the epoch).
    pub last_seen: i64,
    /// The policy version it runs.
    pub policy_version: Option<i64>,
    /// Filter and breaker states as reported (JSON object text).
    pub detail: String,
}

impl Store {
    /// Records a heartbeat.
    pub async fn record_heartbeat(&self, status: &GatewayStatus) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO gateways (instance, last_seen, policy_version, detail) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (instance) DO UPDATE SET last_seen = excluded.last_seen, \
                 policy_version = excluded.policy_version, detail = excluded.detail \
                 WHERE gateways.last_seen <= excluded.last_seen",
            )
            .bind(&status.instance)
            .bind(status.last_seen)
            .bind(status.policy_version)
            .bind(&status.detail)
            .execute(pool)
            .await
            .map_err(ctx("recording a heartbeat"))?;
        });
        Ok(())
    }

    /// Records that `instance` applied policy `version` at `at` (its `gateway.policy_applied`
    /// event), so the dashboard shows the new version before the next heartbeat. Like a
    /// heartbeat it is ignored when a later report is already stored; the filter states of
    /// the last heartbeat stay.
    pub async fn record_policy_applied(
        &self,
        instance: &str,
        at: i64,
        version: i64,
    ) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO gateways (instance, last_seen, policy_version, detail) VALUES ($1, $2, $3, '{}') \
                 ON CONFLICT (instance) DO UPDATE SET last_seen = excluded.last_seen, \
                 policy_version = excluded.policy_version \
                 WHERE gateways.last_seen <= excluded.last_seen",
            )
            .bind(instance)
            .bind(at)
            .bind(version)
            .execute(pool)
            .await
            .map_err(ctx("recording an applied policy"))?;
        });
        Ok(())
    }

    /// Every gateway ever heard from, by name.
    pub async fn gateways(&self) -> Result<Vec<GatewayStatus>, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("SELECT instance, last_seen, policy_version, detail FROM gateways ORDER BY instance")
                .fetch_all(pool)
                .await
                .map_err(ctx("listing gateways"))?
                .iter()
                .map(|r| {
                    Ok(GatewayStatus {
                        instance: r.try_get("instance")?,
                        last_seen: r.try_get("last_seen")?,
                        policy_version: r.try_get("policy_version")?,
                        detail: r.try_get("detail")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(ctx("reading gateways"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::both_backends;

    fn beat(instance: &str, at: i64, version: i64) -> GatewayStatus {
        GatewayStatus {
            instance: instance.into(),
            last_seen: at,
            policy_version: Some(version),
            detail: "{}".into(),
        }
    }

    both_backends!(
        a_newer_heartbeat_replaces_an_older_one_but_not_the_reverse,
        |store| {
            store.record_heartbeat(&beat("gw-1", 100, 1)).await.unwrap();
            store.record_heartbeat(&beat("gw-1", 200, 2)).await.unwrap();
            store.record_heartbeat(&beat("gw-1", 150, 1)).await.unwrap();
            store.record_heartbeat(&beat("gw-2", 120, 2)).await.unwrap();
            let all = store.gateways().await.unwrap();
            assert_eq!(all, [beat("gw-1", 200, 2), beat("gw-2", 120, 2)]);
        }
    );

    both_backends!(
        an_applied_policy_updates_the_version_and_keeps_the_filter_states,
        |store| {
            let mut first = beat("gw-1", 100, 1);
            first.detail = r#"{"filter.restrict-1":"open"}"#.into();
            store.record_heartbeat(&first).await.unwrap();
            store.record_policy_applied("gw-1", 130, 2).await.unwrap();
            store.record_policy_applied("gw-1", 110, 1).await.unwrap();
            store.record_policy_applied("gw-9", 50, 3).await.unwrap();
            let all = store.gateways().await.unwrap();
            assert_eq!(
                all[0],
                GatewayStatus {
                    instance: "gw-1".into(),
                    last_seen: 130,
                    policy_version: Some(2),
                    detail: r#"{"filter.restrict-1":"open"}"#.into(),
                }
            );
            assert_eq!(all[1], beat("gw-9", 50, 3));
        }
    );
}
