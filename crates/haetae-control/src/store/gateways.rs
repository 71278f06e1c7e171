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
}
