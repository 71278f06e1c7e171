//! A user's TOTP second factor: the pending secret during enrolment, the active secret,
//! the last step accepted (so a code works once), and recovery codes as SHA-256 digests.

use sqlx::Row;

use super::{Store, StoreError, ctx, now_micros, with_db};

/// A user's second-factor state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TotpState {
    /// The active secret (hex), when the second factor is on.
    pub secret: Option<String>,
    /// A secret being enrolled (hex), until a code confirms it.
    pub pending: Option<String>,
    /// The last accepted time step.
    pub last_step: Option<i64>,
    /// Unused recovery codes left.
    pub recovery_left: i64,
}

impl Store {
    /// The second-factor state of a user (default when the user does not exist).
    pub async fn totp_state(&self, user_id: i64) -> Result<TotpState, StoreError> {
        with_db!(&self.db, pool => {
            let row = sqlx::query(
                "SELECT totp_secret, totp_pending, totp_last_step, \
                 (SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = users.id AND r.used_at IS NULL) AS left_codes \
                 FROM users WHERE id = $1",
            )
            .bind(user_id)
            .fetch_optional(pool)
            .await
            .map_err(ctx("reading the second factor"))?;
            let Some(row) = row else {
                return Ok(TotpState::default());
            };
            Ok(TotpState {
                secret: row.try_get("totp_secret").map_err(ctx("reading the second factor"))?,
                pending: row.try_get("totp_pending").map_err(ctx("reading the second factor"))?,
                last_step: row.try_get("totp_last_step").map_err(ctx("reading the second factor"))?,
                recovery_left: row.try_get("left_codes").map_err(ctx("reading the second factor"))?,
            })
        })
    }

    /// Starts (or restarts) enrolment with a pending secret.
    pub async fn set_totp_pending(&self, user_id: i64, secret_hex: &str) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
                .bind(secret_hex)
                .bind(user_id)
                .execute(pool)
                .await
                .map_err(ctx("starting TOTP enrolment"))?;
        });
        Ok(())
    }

    /// Turns the second factor on with `secret_hex`, the step just used, and recovery-code
    /// digests (replacing any earlier ones), in one transaction.
    pub async fn enable_totp(
        &self,
        user_id: i64,
        secret_hex: &str,
        step: i64,
        recovery_digests: &[String],
    ) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            let mut tx = pool.begin().await.map_err(ctx("enabling TOTP"))?;
            sqlx::query(
                "UPDATE users SET totp_secret = $1, totp_pending = NULL, totp_last_step = $2 WHERE id = $3",
            )
            .bind(secret_hex)
            .bind(step)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(ctx("enabling TOTP"))?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(ctx("replacing recovery codes"))?;
            for d in recovery_digests {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(d)
                    .execute(&mut *tx)
                    .await
                    .map_err(ctx("storing recovery codes"))?;
            }
            tx.commit().await.map_err(ctx("enabling TOTP"))?;
        });
        Ok(())
    }

    /// Turns the second factor off and deletes the recovery codes.
    pub async fn disable_totp(&self, user_id: i64) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            let mut tx = pool.begin().await.map_err(ctx("disabling TOTP"))?;
            sqlx::query(
                "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE id = $1",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(ctx("disabling TOTP"))?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(ctx("deleting recovery codes"))?;
            tx.commit().await.map_err(ctx("disabling TOTP"))?;
        });
        Ok(())
    }

    /// Records `step` as used unless it (or a later one) was already: false means the
    /// code was replayed, also by a concurrent login.
    pub async fn claim_totp_step(&self, user_id: i64, step: i64) -> Result<bool, StoreError> {
        Ok(with_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 \
                 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            )
            .bind(step)
            .bind(user_id)
            .execute(pool)
            .await
            .map_err(ctx("recording a TOTP step"))?
            .rows_affected()
        }) == 1)
    }

    /// Uses a recovery code (by digest): true when it existed and was unused.
    pub async fn use_recovery_code(&self, user_id: i64, digest: &str) -> Result<bool, StoreError> {
        Ok(with_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
            )
            .bind(now_micros())
            .bind(user_id)
            .bind(digest)
            .execute(pool)
            .await
            .map_err(ctx("using a recovery code"))?
            .rows_affected()
        }) == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::store::testing::both_backends;

    both_backends!(totp_enrol_claim_recover_and_disable, |store| {
        let id = store
            .create_user("kim", "$argon2id$fake", Role::Viewer, 1)
            .await
            .unwrap()
            .unwrap()
            .id;
        assert_eq!(store.totp_state(id).await.unwrap(), TotpState::default());
        store.set_totp_pending(id, "aa").await.unwrap();
        assert_eq!(
            store.totp_state(id).await.unwrap().pending.as_deref(),
            Some("aa")
        );
        store
            .enable_totp(id, "aa", 100, &["d1".into(), "d2".into()])
            .await
            .unwrap();
        let s = store.totp_state(id).await.unwrap();
        assert_eq!(s.secret.as_deref(), Some("aa"));
        assert_eq!(s.pending, None);
        assert_eq!(s.recovery_left, 2);
        assert!(!store.claim_totp_step(id, 100).await.unwrap(), "replay");
        assert!(store.claim_totp_step(id, 101).await.unwrap());
        assert!(store.use_recovery_code(id, "d1").await.unwrap());
        assert!(!store.use_recovery_code(id, "d1").await.unwrap(), "once");
        assert!(!store.use_recovery_code(id, "nope").await.unwrap());
        assert_eq!(store.totp_state(id).await.unwrap().recovery_left, 1);
        store.disable_totp(id).await.unwrap();
        assert_eq!(store.totp_state(id).await.unwrap(), TotpState::default());
    });
}
