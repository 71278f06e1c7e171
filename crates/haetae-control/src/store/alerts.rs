//! Alert rules and notifiers (stored as their JSON documents) and the alerts raised.

use sqlx::{QueryBuilder, Row};

use super::{Store, StoreError, ctx, now_micros, with_db};
use crate::alerts::notify::Notifier;
use crate::alerts::{Alert, AlertRule};

/// The most alerts one listing returns.
pub const MAX_ALERT_LIMIT: u32 = 500;

fn corrupt(what: &str, e: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("a stored {what} is not valid JSON: {e}"))
}

impl Store {
    /// Every alert rule, by id.
    pub async fn alert_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        let bodies: Vec<String> = with_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT body FROM alert_rules ORDER BY id")
                .fetch_all(pool)
                .await
                .map_err(ctx("listing alert rules"))?
        });
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| corrupt("alert rule", &e)))
            .collect()
    }

    /// Creates or replaces a rule.
    pub async fn put_alert_rule(&self, rule: &AlertRule) -> Result<(), StoreError> {
        let body = serde_json::to_string(rule).map_err(|e| corrupt("alert rule", &e))?;
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO alert_rules (id, body, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(&rule.id)
            .bind(body)
            .bind(now_micros())
            .execute(pool)
            .await
            .map_err(ctx("storing an alert rule"))?;
        });
        Ok(())
    }

    /// Deletes a rule; whether it existed.
    pub async fn delete_alert_rule(&self, id: &str) -> Result<bool, StoreError> {
        Ok(with_db!(&self.db, pool => {
            sqlx::query("DELETE FROM alert_rules WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map_err(ctx("deleting an alert rule"))?
                .rows_affected()
        }) > 0)
    }

    /// Every notifier (with its secret), by id.
    pub async fn notifiers(&self) -> Result<Vec<Notifier>, StoreError> {
        let bodies: Vec<String> = with_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT body FROM notifiers ORDER BY id")
                .fetch_all(pool)
                .await
                .map_err(ctx("listing notifiers"))?
        });
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| corrupt("notifier", &e)))
            .collect()
    }

    /// Creates or replaces a notifier.
    pub async fn put_notifier(&self, n: &Notifier) -> Result<(), StoreError> {
        let body = serde_json::to_string(n).map_err(|e| corrupt("notifier", &e))?;
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO notifiers (id, body, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(&n.id)
            .bind(body)
            .bind(now_micros())
            .execute(pool)
            .await
            .map_err(ctx("storing a notifier"))?;
        });
        Ok(())
    }

    /// Deletes a notifier; whether it existed.
    pub async fn delete_notifier(&self, id: &str) -> Result<bool, StoreError> {
        Ok(with_db!(&self.db, pool => {
            sqlx::query("DELETE FROM notifiers WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map_err(ctx("deleting a notifier"))?
                .rows_affected()
        }) > 0)
    }

    /// Stores raised alerts.
    pub async fn insert_alerts(&self, alerts: &[Alert]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        with_db!(&self.db, pool => {
            for chunk in alerts.chunks(500) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO alerts (id, ts, rule_id, severity, summary, detail) ",
                );
                qb.push_values(chunk, |mut row, a| {
                    row.push_bind(a.id.clone())
                        .push_bind(a.ts)
                        .push_bind(a.rule_id.clone())
                        .push_bind(a.severity.clone())
                        .push_bind(a.summary.clone())
                        .push_bind(a.detail.to_string());
                });
                qb.push(" ON CONFLICT (id) DO NOTHING");
                qb.build()
                    .execute(pool)
                    .await
                    .map_err(ctx("storing alerts"))?;
            }
        });
        Ok(())
    }

    /// Alerts, newest first; `before` is the previous page's last `ts`.
    pub async fn alerts(&self, limit: u32, before: Option<i64>) -> Result<Vec<Alert>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_ALERT_LIMIT));
        let rows = with_db!(&self.db, pool => {
            let mut qb = QueryBuilder::new(
                "SELECT id, ts, rule_id, severity, summary, detail, ack_by, ack_at FROM alerts",
            );
            if let Some(b) = before {
                qb.push(" WHERE ts < ").push_bind(b);
            }
            qb.push(" ORDER BY ts DESC, id DESC LIMIT ").push_bind(limit);
            qb.build()
                .fetch_all(pool)
                .await
                .map_err(ctx("listing alerts"))?
                .iter()
                .map(|r| {
                    Ok::<_, sqlx::Error>((
                        r.try_get::<String, _>("id")?,
                        r.try_get::<i64, _>("ts")?,
                        r.try_get::<String, _>("rule_id")?,
                        r.try_get::<String, _>("severity")?,
                        r.try_get::<String, _>("summary")?,
                        r.try_get::<String, _>("detail")?,
                        r.try_get::<Option<String>, _>("ack_by")?,
                        r.try_get::<Option<i64>, _>("ack_at")?,
                    ))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(ctx("reading alerts"))?
        });
        rows.into_iter()
            .map(
                |(id, ts, rule_id, severity, summary, detail, ack_by, ack_at)| {
                    Ok(Alert {
                        id,
                        ts,
                        rule_id,
                        severity,
                        summary,
                        detail: serde_json::from_str(&detail).map_err(|e| corrupt("alert", &e))?,
                        ack_by,
                        ack_at,
                    })
                },
            )
            .collect()
    }

    /// Marks an alert acknowledged by `user`; whether it existed and was not yet.
    pub async fn acknowledge_alert(&self, id: &str, user: &str) -> Result<bool, StoreError> {
        Ok(with_db!(&self.db, pool => {
            sqlx::query("UPDATE alerts SET ack_by = $1, ack_at = $2 WHERE id = $3 AND ack_by IS NULL")
                .bind(user)
                .bind(now_micros())
                .bind(id)
                .execute(pool)
                .await
                .map_err(ctx("acknowledging an alert"))?
                .rows_affected()
        }) > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::both_backends;

    fn alert(id: &str, ts: i64) -> Alert {
        Alert {
            id: id.into(),
            ts,
            rule_id: "r".into(),
            severity: "high".into(),
            summary: format!("alert {id}"),
            detail: serde_json::json!({ "group": "alice" }),
            ack_by: None,
            ack_at: None,
        }
    }

    both_backends!(rules_notifiers_and_alerts_round_trip, |store| {
        let rule: AlertRule = serde_json::from_str(
            r#"{"id":"r","condition":{"type":"threshold","count":3,"minutes":5},"notify":["hook"]}"#,
        )
        .unwrap();
        store.put_alert_rule(&rule).await.unwrap();
        store.put_alert_rule(&rule).await.unwrap();
        assert_eq!(store.alert_rules().await.unwrap(), [rule]);
        let n: Notifier = serde_json::from_str(
            r#"{"id":"hook","kind":"webhook","url":"http://127.0.0.1:9/x","secret":"0123456789abcdef"}"#,
        )
        .unwrap();
        store.put_notifier(&n).await.unwrap();
        assert_eq!(store.notifiers().await.unwrap(), [n]);
        assert!(store.delete_notifier("hook").await.unwrap());
        assert!(!store.delete_notifier("hook").await.unwrap());
        assert!(store.delete_alert_rule("r").await.unwrap());

        store
            .insert_alerts(&[alert("a1", 100), alert("a2", 200), alert("a1", 100)])
            .await
            .unwrap();
        let all = store.alerts(10, None).await.unwrap();
        assert_eq!(
            all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["a2", "a1"]
        );
        assert_eq!(all[0].detail["group"], "alice");
        assert_eq!(store.alerts(10, Some(200)).await.unwrap().len(), 1);
        assert!(store.acknowledge_alert("a1", "officer").await.unwrap());
        assert!(!store.acknowledge_alert("a1", "officer").await.unwrap());
        let a1 = store.alerts(10, None).await.unwrap().pop().unwrap();
        assert_eq!(a1.ack_by.as_deref(), Some("officer"));
    });
}
