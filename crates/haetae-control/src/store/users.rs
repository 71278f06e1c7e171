//! Users, login sessions and API tokens as stored. Secrets never reach the database in the
//! clear: passwords as Argon2id PHC strings, session ids and API tokens as SHA-256 digests.
//! The rules (hashing, lockout, expiry) live in [`crate::auth`].

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, ctx, with_db};
use crate::auth::Role;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Numeric id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    #[schema(value_type = String, example = "security-officer")]
    pub role: Role,
    /// Consecutive failed logins.
    pub failed_logins: i64,
    /// Locked until this time (microseconds since the epoch), if locked.
    pub locked_until: Option<i64>,
    /// A disabled user cannot log in or use tokens.
    pub disabled: bool,
    /// When it was created.
    pub created_at: i64,
    /// The Argon2id PHC string (never serialised).
    #[serde(skip)]
    pub password_hash: String,
}

/// A live session joined with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The user.
    pub user: User,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// When it expires absolutely.
    pub expires_at: i64,
    /// When it was last used.
    pub last_seen: i64,
}

/// An API token as listed (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiTokenInfo {
    /// Numeric id.
    pub id: i64,
    /// The owner's user name.
    pub username: String,
    /// A name for people.
    pub name: String,
    /// When it was created.
    pub created_at: i64,
    /// When it was last used.
    pub last_used: Option<i64>,
    /// Revoked tokens are refused.
    pub revoked: bool,
}

const USER_COLUMNS: &str = "u.id, u.username, u.password_hash, u.role, u.failed_logins, u.locked_until, u.disabled, u.created_at";

fn read_user<R>(r: &R) -> Result<User, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'v> i64: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> Option<i64>: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> String: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
{
    let read = ctx("reading a user");
    let role: String = r.try_get("role").map_err(ctx("reading a user"))?;
    let disabled: i64 = r.try_get("disabled").map_err(ctx("reading a user"))?;
    Ok(User {
        id: r.try_get("id").map_err(ctx("reading a user"))?,
        username: r.try_get("username").map_err(ctx("reading a user"))?,
        password_hash: r.try_get("password_hash").map_err(ctx("reading a user"))?,
        role: role.parse().map_err(|_| {
            StoreError::Corrupt(format!("unknown role {role:?} in the users table"))
        })?,
        failed_logins: r.try_get("failed_logins").map_err(ctx("reading a user"))?,
        locked_until: r.try_get("locked_until").map_err(ctx("reading a user"))?,
        disabled: disabled != 0,
        created_at: r.try_get("created_at").map_err(read)?,
    })
}

impl Store {
    /// Creates a user; `Ok(None)` when the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let inserted = with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (username) DO NOTHING",
            )
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now)
            .execute(pool)
            .await
            .map_err(ctx("creating a user"))?
            .rows_affected()
        });
        if inserted == 0 {
            return Ok(None);
        }
        self.user_by_name(username).await
    }

    /// The user with this name.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1");
        with_db!(&self.db, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(username)
                .fetch_optional(pool)
                .await
                .map_err(ctx("finding a user"))?
            {
                Some(r) => read_user(&r).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username");
        with_db!(&self.db, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(pool)
                .await
                .map_err(ctx("listing users"))?
                .iter()
                .map(read_user)
                .collect()
        })
    }

    /// How many users exist.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("SELECT COUNT(*) AS n FROM users")
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(ctx("counting users"))
        })
    }

    /// Records a failed login: increments the counter and, when it reaches `threshold`,
    /// locks the account until `lock_until`. Returns the new count.
    pub async fn record_failed_login(
        &self,
        user_id: i64,
        threshold: i64,
        lock_until: i64,
    ) -> Result<i64, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE users SET failed_logins = failed_logins + 1, \
                 locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END \
                 WHERE id = $1 RETURNING failed_logins",
            )
            .bind(user_id)
            .bind(threshold)
            .bind(lock_until)
            .fetch_one(pool)
            .await
            .and_then(|r| r.try_get("failed_logins"))
            .map_err(ctx("recording a failed login"))
        })
    }

    /// Clears the failed-login counter and any lock.
    pub async fn clear_failed_logins(&self, user_id: i64) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                .bind(user_id)
                .execute(pool)
                .await
                .map_err(ctx("clearing failed logins"))?;
        });
        Ok(())
    }

    /// Changes a user's role, password hash or disabled flag; `false` when no such user.
    pub async fn update_user(
        &self,
        username: &str,
        role: Option<Role>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<bool, StoreError> {
        with_db!(&self.db, pool => {
            Ok(sqlx::query(
                "UPDATE users SET role = COALESCE($2, role), password_hash = COALESCE($3, password_hash), \
                 disabled = COALESCE($4, disabled) WHERE username = $1",
            )
            .bind(username)
            .bind(role.map(Role::as_str))
            .bind(password_hash)
            .bind(disabled.map(i64::from))
            .execute(pool)
            .await
            .map_err(ctx("updating a user"))?
            .rows_affected() == 1)
        })
    }

    /// Deletes a user with their sessions and tokens; `false` when no such user.
    pub async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        with_db!(&self.db, pool => {
            Ok(sqlx::query("DELETE FROM users WHERE username = $1")
                .bind(username)
                .execute(pool)
                .await
                .map_err(ctx("deleting a user"))?
                .rows_affected() == 1)
        })
    }

    /// Stores a new session by the digest of its id.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen, expires_at) \
                 VALUES ($1, $2, $3, $4, $4, $5)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map_err(ctx("creating a session"))?;
        });
        Ok(())
    }

    /// The session with this id digest and its user.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at, s.last_seen FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
        );
        with_db!(&self.db, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(token_hash)
                .fetch_optional(pool)
                .await
                .map_err(ctx("finding a session"))?
            {
                Some(r) => Ok(Some(SessionRow {
                    user: read_user(&r)?,
                    csrf_token: r.try_get("csrf_token").map_err(ctx("reading a session"))?,
                    expires_at: r.try_get("expires_at").map_err(ctx("reading a session"))?,
                    last_seen: r.try_get("last_seen").map_err(ctx("reading a session"))?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Marks a session as used now.
    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("UPDATE sessions SET last_seen = $2 WHERE token_hash = $1")
                .bind(token_hash)
                .bind(now)
                .execute(pool)
                .await
                .map_err(ctx("updating a session"))?;
        });
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await
                .map_err(ctx("ending a session"))?;
        });
        Ok(())
    }

    /// Ends every session of a user (after a password or role change).
    pub async fn delete_sessions_of(&self, user_id: i64) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(pool)
                .await
                .map_err(ctx("ending a user's sessions"))?;
        });
        Ok(())
    }

    /// Deletes sessions that expired before `now`.
    pub async fn purge_sessions(&self, now: i64) -> Result<u64, StoreError> {
        with_db!(&self.db, pool => {
            Ok(sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await
                .map_err(ctx("deleting expired sessions"))?
                .rows_affected())
        })
    }

    /// Stores a new API token by its digest.
    pub async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(user_id)
            .bind(name)
            .bind(token_hash)
            .bind(now)
            .fetch_one(pool)
            .await
            .and_then(|r| r.try_get("id"))
            .map_err(ctx("creating an API token"))
        })
    }

    /// The owner of the live (not revoked) token with this digest, marking it used.
    pub async fn api_token_user(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(User, String)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, t.name AS token_name FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked = 0"
        );
        let found = with_db!(&self.db, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(token_hash)
                .fetch_optional(pool)
                .await
                .map_err(ctx("finding an API token"))?
            {
                Some(r) => Some((read_user(&r)?, r.try_get::<String, _>("token_name").map_err(ctx("reading a token"))?)),
                None => None,
            }
        });
        if found.is_some() {
            with_db!(&self.db, pool => {
                sqlx::query("UPDATE api_tokens SET last_used = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map_err(ctx("marking an API token used"))?;
            });
        }
        Ok(found)
    }

    /// Every API token, newest first.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "SELECT t.id, u.username, t.name, t.created_at, t.last_used, t.revoked FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id ORDER BY t.id DESC",
            )
            .fetch_all(pool)
            .await
            .map_err(ctx("listing API tokens"))?
            .iter()
            .map(|r| {
                Ok(ApiTokenInfo {
                    id: r.try_get("id")?,
                    username: r.try_get("username")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    last_used: r.try_get("last_used")?,
                    revoked: r.try_get::<i64, _>("revoked")? != 0,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(ctx("reading API tokens"))
        })
    }

    /// Revokes a token; `false` when no such token.
    pub async fn revoke_api_token(&self, id: i64) -> Result<bool, StoreError> {
        with_db!(&self.db, pool => {
            Ok(sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map_err(ctx("revoking an API token"))?
                .rows_affected() == 1)
        })
    }
}
