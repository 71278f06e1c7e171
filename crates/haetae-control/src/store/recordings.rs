//! Encrypted session recordings as stored (issue 10, point 7): one row per recording with the
//! wrapped key, and its chunks as the agent console uploaded them. Everything here is
//! ciphertext; the format is in [`crate::recording`].

use serde::Serialize;
use sqlx::Row;

use super::{Db, Store, StoreError, ctx, with_db};
use crate::recording::{MAX_CHUNKS, MAX_RECORDING_BYTES, SealedChunk, WrappedKey};

/// A recording as the Center knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RecordingRow {
    /// Numeric id.
    pub id: i64,
    /// The support session.
    pub session_id: i64,
    /// The agent whose console recorded it.
    pub agent: String,
    /// The wrapping scheme.
    pub alg: String,
    /// The recording public key's fingerprint.
    pub key_id: String,
    /// The ephemeral P-256 public key (hex).
    pub ephemeral: String,
    /// The wrapped recording key (hex).
    pub wrapped_key: String,
    /// When the console started it (microseconds).
    pub started_at: i64,
    /// Chunks stored.
    pub chunks: i64,
    /// Bytes stored (ciphertext).
    pub bytes: i64,
    /// The index of the chunk marked last, once it arrived.
    pub last_index: Option<i64>,
}

impl RecordingRow {
    /// Whether every chunk from 0 to the last one is here.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.last_index.is_some_and(|l| l + 1 == self.chunks)
    }

    /// The wrapped key as the format has it.
    #[must_use]
    pub fn wrapped(&self) -> WrappedKey {
        WrappedKey {
            alg: self.alg.clone(),
            key_id: self.key_id.clone(),
            ephemeral: self.ephemeral.clone(),
            wrapped: self.wrapped_key.clone(),
        }
    }
}

/// One stored chunk, without its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChunkInfo {
    /// Its index.
    pub index: i64,
    /// Marked last.
    pub last: bool,
    /// Ciphertext bytes.
    pub size: i64,
    /// SHA-256 of the ciphertext (hex).
    pub sha256: String,
}

/// What became of an uploaded chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkPut {
    /// Stored now.
    Stored,
    /// The same chunk was already stored (a retry): nothing changed.
    Same,
    /// Another chunk holds this index, or it contradicts the last chunk.
    Conflict(String),
    /// The recording would exceed its limits.
    Full(String),
}

const RECORDING_COLUMNS: &str = "id, session_id, agent, alg, key_id, ephemeral, wrapped_key, \
    started_at, chunks, bytes, last_index";

fn read_recording<R>(r: &R) -> Result<RecordingRow, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'v> i64: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> Option<i64>: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
    for<'v> String: sqlx::Decode<'v, R::Database> + sqlx::Type<R::Database>,
{
    let c = || ctx("reading a recording");
    Ok(RecordingRow {
        id: r.try_get("id").map_err(c())?,
        session_id: r.try_get("session_id").map_err(c())?,
        agent: r.try_get("agent").map_err(c())?,
        alg: r.try_get("alg").map_err(c())?,
        key_id: r.try_get("key_id").map_err(c())?,
        ephemeral: r.try_get("ephemeral").map_err(c())?,
        wrapped_key: r.try_get("wrapped_key").map_err(c())?,
        started_at: r.try_get("started_at").map_err(c())?,
        chunks: r.try_get("chunks").map_err(c())?,
        bytes: r.try_get("bytes").map_err(c())?,
        last_index: r.try_get("last_index").map_err(c())?,
    })
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

impl Store {
    /// Starts the recording of a session (key already checked); `Ok(None)` when the session
    /// already has one.
    pub async fn create_recording(
        &self,
        session_id: i64,
        agent: &str,
        key: &WrappedKey,
        now: i64,
    ) -> Result<Option<RecordingRow>, StoreError> {
        let inserted = with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO remote_recordings (session_id, agent, alg, key_id, ephemeral, wrapped_key, started_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id) DO NOTHING",
            )
            .bind(session_id)
            .bind(agent)
            .bind(&key.alg)
            .bind(&key.key_id)
            .bind(&key.ephemeral)
            .bind(&key.wrapped)
            .bind(now)
            .execute(pool)
            .await
            .map_err(ctx("starting a recording"))?
            .rows_affected()
        });
        if inserted == 0 {
            return Ok(None);
        }
        self.recording_of_session(session_id).await
    }

    async fn recording_where(
        &self,
        column: &str,
        value: i64,
    ) -> Result<Option<RecordingRow>, StoreError> {
        let sql = format!("SELECT {RECORDING_COLUMNS} FROM remote_recordings WHERE {column} = $1");
        with_db!(&self.db, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(value)
                .fetch_optional(pool)
                .await
                .map_err(ctx("finding a recording"))?
            {
                Some(r) => read_recording(&r).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The recording with this id.
    pub async fn recording(&self, id: i64) -> Result<Option<RecordingRow>, StoreError> {
        self.recording_where("id", id).await
    }

    /// The recording of a session, if it was recorded.
    pub async fn recording_of_session(
        &self,
        session_id: i64,
    ) -> Result<Option<RecordingRow>, StoreError> {
        self.recording_where("session_id", session_id).await
    }

    /// Stores one chunk: idempotent per index (the same bytes again are [`ChunkPut::Same`],
    /// other bytes [`ChunkPut::Conflict`]), within [`MAX_CHUNKS`] and [`MAX_RECORDING_BYTES`],
    /// nothing after the chunk marked last and only one chunk marked last.
    pub async fn put_recording_chunk(
        &self,
        recording_id: i64,
        index: i64,
        last: bool,
        data: &[u8],
        now: i64,
    ) -> Result<ChunkPut, StoreError> {
        let digest = sha256_hex(data);
        let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
        // PostgreSQL locks the recording's row for the check-then-write; SQLite runs one
        // writing transaction at a time anyway.
        let lock = match &self.db {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE",
        };
        let select =
            format!("SELECT chunks, bytes, last_index FROM remote_recordings WHERE id = $1{lock}");
        with_db!(&self.db, pool => {
            let c = || ctx("storing a recording chunk");
            let mut tx = pool.begin().await.map_err(c())?;
            let Some(rec) = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                .bind(recording_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(c())?
            else {
                return Ok(ChunkPut::Conflict("no such recording".into()));
            };
            let chunks: i64 = rec.try_get("chunks").map_err(c())?;
            let bytes: i64 = rec.try_get("bytes").map_err(c())?;
            let last_index: Option<i64> = rec.try_get("last_index").map_err(c())?;
            if let Some(old) = sqlx::query(
                "SELECT last, sha256 FROM remote_recording_chunks WHERE recording_id = $1 AND idx = $2",
            )
            .bind(recording_id)
            .bind(index)
            .fetch_optional(&mut *tx)
            .await
            .map_err(c())?
            {
                let old_last: i64 = old.try_get("last").map_err(c())?;
                let old_sha: String = old.try_get("sha256").map_err(c())?;
                return Ok(if old_sha == digest && (old_last == 1) == last {
                    ChunkPut::Same
                } else {
                    ChunkPut::Conflict(format!("chunk {index} is already stored with other content"))
                });
            }
            if let Some(l) = last_index {
                if index > l {
                    return Ok(ChunkPut::Conflict(format!("chunk {index} comes after the last chunk ({l})")));
                }
                if last {
                    return Ok(ChunkPut::Conflict(format!("chunk {l} is already the last")));
                }
            }
            if last {
                let beyond: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM remote_recording_chunks WHERE recording_id = $1 AND idx > $2",
                )
                .bind(recording_id)
                .bind(index)
                .fetch_one(&mut *tx)
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(c())?;
                if beyond > 0 {
                    return Ok(ChunkPut::Conflict(format!("chunks after {index} exist; it cannot be the last")));
                }
            }
            if chunks + 1 > MAX_CHUNKS || index >= MAX_CHUNKS {
                return Ok(ChunkPut::Full(format!("a recording holds at most {MAX_CHUNKS} chunks")));
            }
            if bytes.saturating_add(size) > MAX_RECORDING_BYTES {
                return Ok(ChunkPut::Full(format!("a recording holds at most {MAX_RECORDING_BYTES} bytes")));
            }
            sqlx::query(
                "INSERT INTO remote_recording_chunks (recording_id, idx, last, received_at, sha256, data) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(recording_id)
            .bind(index)
            .bind(i64::from(last))
            .bind(now)
            .bind(&digest)
            .bind(data)
            .execute(&mut *tx)
            .await
            .map_err(c())?;
            sqlx::query(
                "UPDATE remote_recordings SET chunks = chunks + 1, bytes = bytes + $2, \
                 last_index = CASE WHEN $3 = 1 THEN $4 ELSE last_index END WHERE id = $1",
            )
            .bind(recording_id)
            .bind(size)
            .bind(i64::from(last))
            .bind(index)
            .execute(&mut *tx)
            .await
            .map_err(c())?;
            tx.commit().await.map_err(c())?;
            Ok(ChunkPut::Stored)
        })
    }

    /// A recording's chunks without their data, by index.
    pub async fn recording_chunks(&self, recording_id: i64) -> Result<Vec<ChunkInfo>, StoreError> {
        with_db!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT idx, last, sha256, LENGTH(data) AS size FROM remote_recording_chunks \
                 WHERE recording_id = $1 ORDER BY idx",
            )
            .bind(recording_id)
            .fetch_all(pool)
            .await
            .map_err(ctx("listing a recording's chunks"))?;
            rows.iter()
                .map(|r| {
                    let c = || ctx("listing a recording's chunks");
                    let last: i64 = r.try_get("last").map_err(c())?;
                    let size: i64 = match r.try_get::<i64, _>("size") {
                        Ok(n) => n,
                        Err(_) => i64::from(r.try_get::<i32, _>("size").map_err(c())?),
                    };
                    Ok(ChunkInfo {
                        index: r.try_get("idx").map_err(c())?,
                        last: last == 1,
                        size,
                        sha256: r.try_get("sha256").map_err(c())?,
                    })
                })
                .collect()
        })
    }

    /// One chunk's ciphertext.
    pub async fn recording_chunk(
        &self,
        recording_id: i64,
        index: i64,
    ) -> Result<Option<SealedChunk>, StoreError> {
        with_db!(&self.db, pool => {
            let row = sqlx::query(
                "SELECT last, data FROM remote_recording_chunks WHERE recording_id = $1 AND idx = $2",
            )
            .bind(recording_id)
            .bind(index)
            .fetch_optional(pool)
            .await
            .map_err(ctx("reading a recording chunk"))?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let c = || ctx("reading a recording chunk");
                    let last: i64 = r.try_get("last").map_err(c())?;
                    Ok(Some(SealedChunk {
                        index: u64::try_from(index).unwrap_or(0),
                        last: last == 1,
                        data: r.try_get("data").map_err(c())?,
                    }))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::recording::{self, RecordingPrivateKey};
    use crate::store::testing::both_backends;

    both_backends!(
        recordings_store_ciphertext_idempotently_within_limits,
        |store| {
            store
                .create_user("kim", "$argon2id$fake", Role::Agent, 1)
                .await
                .unwrap();
            let s = store
                .create_remote_session("rec-h1", "kim", "direct", 10)
                .await
                .unwrap()
                .unwrap();
            let org = RecordingPrivateKey::generate().unwrap();
            let key = recording::wrap(org.public_key(), &[1u8; 32]).unwrap();
            let r = store
                .create_recording(s.id, "kim", &key, 11)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.wrapped(), key);
            assert!(
                store
                    .create_recording(s.id, "kim", &key, 12)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                store.recording_of_session(s.id).await.unwrap().unwrap().id,
                r.id
            );

            let put = |i: i64, last: bool, d: &'static [u8]| {
                let store = store.clone();
                async move {
                    store
                        .put_recording_chunk(r.id, i, last, d, 20)
                        .await
                        .unwrap()
                }
            };
            assert_eq!(
                put(1, false, b"chunk one ciphertext").await,
                ChunkPut::Stored
            );
            assert_eq!(put(0, false, b"chunk zero").await, ChunkPut::Stored);
            // A retry with the same bytes changes nothing; other bytes are refused.
            assert_eq!(put(0, false, b"chunk zero").await, ChunkPut::Same);
            assert!(matches!(
                put(0, false, b"other").await,
                ChunkPut::Conflict(_)
            ));
            assert!(matches!(
                put(0, true, b"chunk zero").await,
                ChunkPut::Conflict(_)
            ));
            // The last chunk cannot come before a stored one.
            assert!(matches!(put(0, true, b"x").await, ChunkPut::Conflict(_)));
            assert_eq!(put(2, true, b"end").await, ChunkPut::Stored);
            assert!(matches!(
                put(3, false, b"late").await,
                ChunkPut::Conflict(_)
            ));
            let row = store.recording(r.id).await.unwrap().unwrap();
            assert_eq!((row.chunks, row.last_index, row.bytes), (3, Some(2), 33));
            assert!(row.complete());
            let list = store.recording_chunks(r.id).await.unwrap();
            assert_eq!(
                list.iter()
                    .map(|c| (c.index, c.last, c.size))
                    .collect::<Vec<_>>(),
                [(0, false, 10), (1, false, 20), (2, true, 3)]
            );
            let c = store.recording_chunk(r.id, 1).await.unwrap().unwrap();
            assert_eq!(c.data, b"chunk one ciphertext");
            assert!(store.recording_chunk(r.id, 9).await.unwrap().is_none());
            assert!(matches!(
                store
                    .put_recording_chunk(9999, 0, false, b"x", 1)
                    .await
                    .unwrap(),
                ChunkPut::Conflict(_)
            ));
            assert!(matches!(
                store
                    .put_recording_chunk(r.id, MAX_CHUNKS, false, b"x", 1)
                    .await
                    .unwrap(),
                ChunkPut::Conflict(_) | ChunkPut::Full(_)
            ));
        }
    );
}
