//! Remote support as stored: each agent's grade and login networks, the Center's
//! policy-signing key, and support sessions with their history (issue 10, points 7 and 8).
//! The rules live in [`crate::remote`].

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, ctx, with_db};

/// An agent's remote-support settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgentSettings {
    /// The user's name.
    pub username: String,
    /// `indirect` or `direct`.
    pub grade: String,
    /// IP networks (CIDR) the agent may log in from; empty = anywhere.
    pub allow_from: Vec<String>,
    /// When an administrator last changed them.
    pub updated_at: i64,
}

/// A support session as the Center knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RemoteSessionRow {
    /// Numeric id.
    pub id: i64,
    /// SHA-256 (hex) of the relay's session id.
    #[serde(skip)]
    pub sid_hash: String,
    /// The agent's user name.
    pub agent: String,
    /// The grade the Center signed for it.
    pub grade: String,
    /// When the agent registered it.
    pub started_at: i64,
    /// When it ended, if the console said so.
    pub ended_at: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

/// One history record of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HistoryRow {
    /// When (microseconds).
    pub at: i64,
    /// `chat`, `file`, `consent`, `control`, `url`, `end`, ...
    pub kind: String,
    /// `agent` or `customer`.
    pub actor: String,
    /// The record as JSON text.
    pub detail: String,
}

/// Most history records kept per session; more are refused.
pub const MAX_HISTORY_PER_SESSION: i64 = 20_000;

fn split_networks(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_session<R>(r: &R) -> Result<RemoteSessionRow, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'v> i64: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> Option<i64>: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> String: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> Option<String>: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
{
    let c = || ctx("reading a remote session");
    Ok(RemoteSessionRow {
        id: r.try_get("id").map_err(c())?,
        sid_hash: r.try_get("sid_hash").map_err(c())?,
        agent: r.try_get("agent").map_err(c())?,
        grade: r.try_get("grade").map_err(c())?,
        started_at: r.try_get("started_at").map_err(c())?,
        ended_at: r.try_get("ended_at").map_err(c())?,
        end_reason: r.try_get("end_reason").map_err(c())?,
    })
}

const SESSION_COLUMNS: &str = "id, sid_hash, agent, grade, started_at, ended_at, end_reason";

impl Store {
    /// The remote-support settings of a user, if an administrator set any.
    pub async fn remote_agent(&self, user_id: i64) -> Result<Option<AgentSettings>, StoreError> {
        with_db!(&self.db, pool => {
            let row = sqlx::query(
                "SELECT u.username, a.grade, a.allow_from, a.updated_at FROM remote_agents a \
                 JOIN users u ON u.id = a.user_id WHERE a.user_id = $1",
            )
            .bind(user_id)
            .fetch_optional(pool)
            .await
            .map_err(ctx("reading an agent's settings"))?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let c = || ctx("reading an agent's settings");
                    let allow: String = r.try_get("allow_from").map_err(c())?;
                    Ok(Some(AgentSettings {
                        username: r.try_get("username").map_err(c())?,
                        grade: r.try_get("grade").map_err(c())?,
                        allow_from: split_networks(&allow),
                        updated_at: r.try_get("updated_at").map_err(c())?,
                    }))
                }
            }
        })
    }

    /// Every agent setting, by user name.
    pub async fn list_remote_agents(&self) -> Result<Vec<AgentSettings>, StoreError> {
        with_db!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT u.username, a.grade, a.allow_from, a.updated_at FROM remote_agents a \
                 JOIN users u ON u.id = a.user_id ORDER BY u.username",
            )
            .fetch_all(pool)
            .await
            .map_err(ctx("listing agents"))?;
            rows.iter()
                .map(|r| {
                    let c = || ctx("listing agents");
                    let allow: String = r.try_get("allow_from").map_err(c())?;
                    Ok(AgentSettings {
                        username: r.try_get("username").map_err(c())?,
                        grade: r.try_get("grade").map_err(c())?,
                        allow_from: split_networks(&allow),
                        updated_at: r.try_get("updated_at").map_err(c())?,
                    })
                })
                .collect()
        })
    }

    /// Sets (or replaces) a user's grade and login networks (already validated).
    pub async fn set_remote_agent(
        &self,
        user_id: i64,
        grade: &str,
        allow_from: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let allow = allow_from.join(",");
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO remote_agents (user_id, grade, allow_from, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id) DO UPDATE SET grade = excluded.grade, \
                 allow_from = excluded.allow_from, updated_at = excluded.updated_at",
            )
            .bind(user_id)
            .bind(grade)
            .bind(&allow)
            .bind(now)
            .execute(pool)
            .await
            .map_err(ctx("saving an agent's settings"))?;
        });
        Ok(())
    }

    /// The policy-signing seed (hex): the stored one, or `fresh_hex` stored now if there is
    /// none (several Centers on one database end up with the same key).
    pub async fn remote_signing_seed(
        &self,
        fresh_hex: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO remote_signing_key (id, seed_hex, created_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(fresh_hex)
            .bind(now)
            .execute(pool)
            .await
            .map_err(ctx("storing the policy-signing key"))?;
            sqlx::query("SELECT seed_hex FROM remote_signing_key WHERE id = 1")
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get("seed_hex"))
                .map_err(ctx("reading the policy-signing key"))
        })
    }

    /// Registers a support session; `Ok(None)` when this session id is already registered.
    pub async fn create_remote_session(
        &self,
        sid_hash: &str,
        agent: &str,
        grade: &str,
        now: i64,
    ) -> Result<Option<RemoteSessionRow>, StoreError> {
        let inserted = with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO remote_sessions (sid_hash, agent, grade, started_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (sid_hash) DO NOTHING",
            )
            .bind(sid_hash)
            .bind(agent)
            .bind(grade)
            .bind(now)
            .execute(pool)
            .await
            .map_err(ctx("registering a remote session"))?
            .rows_affected()
        });
        if inserted == 0 {
            return Ok(None);
        }
        self.remote_session_by_sid(sid_hash).await
    }

    /// The session with this session-id hash.
    pub async fn remote_session_by_sid(
        &self,
        sid_hash: &str,
    ) -> Result<Option<RemoteSessionRow>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM remote_sessions WHERE sid_hash = $1");
        with_db!(&self.db, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(sid_hash)
                .fetch_optional(pool)
                .await
                .map_err(ctx("finding a remote session"))?
            {
                Some(r) => read_session(&r).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The session with this id.
    pub async fn remote_session(&self, id: i64) -> Result<Option<RemoteSessionRow>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM remote_sessions WHERE id = $1");
        with_db!(&self.db, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(ctx("finding a remote session"))?
            {
                Some(r) => read_session(&r).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The newest sessions first, at most `limit`.
    pub async fn list_remote_sessions(
        &self,
        limit: i64,
    ) -> Result<Vec<RemoteSessionRow>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM remote_sessions ORDER BY started_at DESC, id DESC LIMIT $1"
        );
        with_db!(&self.db, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(ctx("listing remote sessions"))?
                .iter()
                .map(read_session)
                .collect()
        })
    }

    /// Marks a session ended (the first end counts).
    pub async fn end_remote_session(
        &self,
        id: i64,
        now: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE remote_sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .bind(reason)
            .execute(pool)
            .await
            .map_err(ctx("ending a remote session"))?;
        });
        Ok(())
    }

    /// Appends a history record; `false` when the session already has
    /// [`MAX_HISTORY_PER_SESSION`] records.
    pub async fn append_remote_history(
        &self,
        session_id: i64,
        at: i64,
        kind: &str,
        actor: &str,
        detail: &str,
    ) -> Result<bool, StoreError> {
        with_db!(&self.db, pool => {
            let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM remote_history WHERE session_id = $1")
                .bind(session_id)
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(ctx("counting a session's history"))?;
            if n >= MAX_HISTORY_PER_SESSION {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO remote_history (session_id, at, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(session_id)
            .bind(at)
            .bind(kind)
            .bind(actor)
            .bind(detail)
            .execute(pool)
            .await
            .map_err(ctx("storing a session's history"))?;
        });
        Ok(true)
    }

    /// A session's history, oldest first.
    pub async fn remote_history(&self, session_id: i64) -> Result<Vec<HistoryRow>, StoreError> {
        with_db!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT at, kind, actor, detail FROM remote_history WHERE session_id = $1 ORDER BY id",
            )
            .bind(session_id)
            .fetch_all(pool)
            .await
            .map_err(ctx("reading a session's history"))?;
            rows.iter()
                .map(|r| {
                    let c = || ctx("reading a session's history");
                    Ok(HistoryRow {
                        at: r.try_get("at").map_err(c())?,
                        kind: r.try_get("kind").map_err(c())?,
                        actor: r.try_get("actor").map_err(c())?,
                        detail: r.try_get("detail").map_err(c())?,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::Role;
    use crate::store::testing::both_backends;

    both_backends!(agents_keys_sessions_and_history_round_trip, |store| {
        let id = store
            .create_user("lee", "$argon2id$fake", Role::Agent, 1)
            .await
            .unwrap()
            .unwrap()
            .id;
        assert_eq!(store.remote_agent(id).await.unwrap(), None);
        store
            .set_remote_agent(
                id,
                "indirect",
                &["10.0.0.0/8".into(), "192.0.2.7/32".into()],
                5,
            )
            .await
            .unwrap();
        let a = store.remote_agent(id).await.unwrap().unwrap();
        assert_eq!(a.grade, "indirect");
        assert_eq!(a.allow_from, ["10.0.0.0/8", "192.0.2.7/32"]);
        store.set_remote_agent(id, "direct", &[], 6).await.unwrap();
        let a = store.remote_agent(id).await.unwrap().unwrap();
        assert_eq!(
            (a.grade.as_str(), a.allow_from.len(), a.updated_at),
            ("direct", 0, 6)
        );
        assert_eq!(store.list_remote_agents().await.unwrap().len(), 1);

        // The first seed stays.
        assert_eq!(store.remote_signing_seed("aa", 1).await.unwrap(), "aa");
        assert_eq!(store.remote_signing_seed("bb", 2).await.unwrap(), "aa");

        let s = store
            .create_remote_session("h1", "lee", "direct", 10)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .create_remote_session("h1", "lee", "direct", 11)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .append_remote_history(s.id, 12, "chat", "agent", "{\"text\":\"hi\"}")
                .await
                .unwrap()
        );
        store
            .append_remote_history(s.id, 13, "file", "customer", "{}")
            .await
            .unwrap();
        store.end_remote_session(s.id, 20, "normal").await.unwrap();
        store.end_remote_session(s.id, 30, "again").await.unwrap();
        let back = store.remote_session(s.id).await.unwrap().unwrap();
        assert_eq!(
            (back.ended_at, back.end_reason.as_deref()),
            (Some(20), Some("normal"))
        );
        let h = store.remote_history(s.id).await.unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0].kind.as_str(), h[1].actor.as_str()),
            ("chat", "customer")
        );
        assert_eq!(store.list_remote_sessions(10).await.unwrap()[0].id, s.id);
        assert!(store.remote_session_by_sid("h1").await.unwrap().is_some());
    });
}
