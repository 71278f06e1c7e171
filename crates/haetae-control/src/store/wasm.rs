//! The Proxy-Wasm module store: every uploaded version of every module name, with its
//! bytes, SHA-256 and optional signature. Versions count up per name from 1.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, ctx, with_db};

/// One stored module version, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WasmModuleInfo {
    /// The module's name.
    pub name: String,
    /// Its version (1, 2, ... per name).
    pub version: i64,
    /// SHA-256 of the bytes, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// Ed25519 signature over the bytes (128 hex digits), if signed.
    pub signature: Option<String>,
    /// The trusted key the signature verified against at upload.
    pub key_id: Option<String>,
    /// Free text given at upload.
    pub description: String,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When (microseconds since the epoch).
    pub uploaded_at: i64,
}

/// A version to store.
#[derive(Debug, Clone)]
pub struct NewWasmModule<'a> {
    /// The name.
    pub name: &'a str,
    /// SHA-256, hex.
    pub sha256: &'a str,
    /// The bytes.
    pub bytes: &'a [u8],
    /// Signature, hex.
    pub signature: Option<&'a str>,
    /// Key id.
    pub key_id: Option<&'a str>,
    /// Free text.
    pub description: &'a str,
    /// Uploader.
    pub uploaded_by: &'a str,
    /// Time (microseconds).
    pub uploaded_at: i64,
}

const COLUMNS: &str =
    "name, version, sha256, size, signature, key_id, description, uploaded_by, uploaded_at";

fn info(r: &impl RowLike) -> Result<WasmModuleInfo, sqlx::Error> {
    r.info()
}

/// Reading a [`WasmModuleInfo`] from a row of either backend.
trait RowLike {
    fn info(&self) -> Result<WasmModuleInfo, sqlx::Error>;
}

macro_rules! row_like {
    ($row:ty) => {
        impl RowLike for $row {
            fn info(&self) -> Result<WasmModuleInfo, sqlx::Error> {
                Ok(WasmModuleInfo {
                    name: self.try_get("name")?,
                    version: self.try_get("version")?,
                    sha256: self.try_get("sha256")?,
                    size: self.try_get("size")?,
                    signature: self.try_get("signature")?,
                    key_id: self.try_get("key_id")?,
                    description: self.try_get("description")?,
                    uploaded_by: self.try_get("uploaded_by")?,
                    uploaded_at: self.try_get("uploaded_at")?,
                })
            }
        }
    };
}
row_like!(sqlx::sqlite::SqliteRow);
row_like!(sqlx::postgres::PgRow);

impl Store {
    /// Stores `module` as the next version of its name; returns what was stored. Two
    /// uploads of the same name at once: one gets the next version, the other fails on the
    /// unique (name, version) and is retried once with the version after.
    pub async fn insert_wasm_module(
        &self,
        module: &NewWasmModule<'_>,
    ) -> Result<WasmModuleInfo, StoreError> {
        let size = i64::try_from(module.bytes.len()).unwrap_or(i64::MAX);
        let mut last_error = None;
        for _ in 0..3 {
            let result: Result<(), sqlx::Error> = with_db!(&self.db, pool => {
                sqlx::query(
                    "INSERT INTO wasm_modules (name, version, sha256, size, bytes, signature, \
                     key_id, description, uploaded_by, uploaded_at) \
                     SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9 \
                     FROM wasm_modules WHERE name = $1",
                )
                .bind(module.name)
                .bind(module.sha256)
                .bind(size)
                .bind(module.bytes)
                .bind(module.signature)
                .bind(module.key_id)
                .bind(module.description)
                .bind(module.uploaded_by)
                .bind(module.uploaded_at)
                .execute(pool)
                .await
                .map(|_| ())
            });
            match result {
                Ok(()) => {
                    return self
                        .wasm_module_versions(module.name)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| {
                            StoreError::Corrupt("a stored module vanished at once".into())
                        });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(ctx("storing a Wasm module")(
            last_error.unwrap_or(sqlx::Error::RowNotFound),
        ))
    }

    /// The newest version of every name, by name.
    pub async fn wasm_modules(&self) -> Result<Vec<WasmModuleInfo>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM wasm_modules m WHERE version = \
             (SELECT MAX(version) FROM wasm_modules n WHERE n.name = m.name) ORDER BY name"
        );
        with_db!(&self.db, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(pool)
                .await
                .map_err(ctx("listing Wasm modules"))?
                .iter()
                .map(|r| info(r).map_err(ctx("reading a Wasm module")))
                .collect()
        })
    }

    /// Every version of `name`, newest first.
    pub async fn wasm_module_versions(
        &self,
        name: &str,
    ) -> Result<Vec<WasmModuleInfo>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM wasm_modules WHERE name = $1 ORDER BY version DESC");
        with_db!(&self.db, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(name)
                .fetch_all(pool)
                .await
                .map_err(ctx("listing a Wasm module's versions"))?
                .iter()
                .map(|r| info(r).map_err(ctx("reading a Wasm module")))
                .collect()
        })
    }

    /// One version with its bytes.
    pub async fn wasm_module(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<(WasmModuleInfo, Vec<u8>)>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS}, bytes FROM wasm_modules WHERE name = $1 AND version = $2");
        with_db!(&self.db, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(name)
                .bind(version)
                .fetch_optional(pool)
                .await
                .map_err(ctx("reading a Wasm module"))?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let meta = info(&r).map_err(ctx("reading a Wasm module"))?;
                    let bytes: Vec<u8> = r.try_get("bytes").map_err(ctx("reading a Wasm module"))?;
                    Ok(Some((meta, bytes)))
                }
            }
        })
    }

    /// The newest version of `name` whose SHA-256 is `sha256`.
    pub async fn wasm_module_by_digest(
        &self,
        name: &str,
        sha256: &str,
    ) -> Result<Option<WasmModuleInfo>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM wasm_modules WHERE name = $1 AND sha256 = $2 \
             ORDER BY version DESC LIMIT 1"
        );
        with_db!(&self.db, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(name)
                .bind(sha256)
                .fetch_optional(pool)
                .await
                .map_err(ctx("finding a Wasm module by SHA-256"))?
                .map(|r| info(&r).map_err(ctx("reading a Wasm module")))
                .transpose()
        })
    }

    /// Deletes one version; `false` when there was none.
    pub async fn delete_wasm_module(&self, name: &str, version: i64) -> Result<bool, StoreError> {
        with_db!(&self.db, pool => {
            let done = sqlx::query("DELETE FROM wasm_modules WHERE name = $1 AND version = $2")
                .bind(name)
                .bind(version)
                .execute(pool)
                .await
                .map_err(ctx("deleting a Wasm module"))?;
            Ok(done.rows_affected() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::both_backends;

    fn new<'a>(name: &'a str, sha256: &'a str, bytes: &'a [u8]) -> NewWasmModule<'a> {
        NewWasmModule {
            name,
            sha256,
            bytes,
            signature: None,
            key_id: None,
            description: "",
            uploaded_by: "admin",
            uploaded_at: 1,
        }
    }

    both_backends!(
        versions_count_up_per_name_and_delete_one_at_a_time,
        |store| {
            let a1 = store
                .insert_wasm_module(&new("a", "11", b"one"))
                .await
                .unwrap();
            let a2 = store
                .insert_wasm_module(&new("a", "22", b"two!"))
                .await
                .unwrap();
            let b1 = store
                .insert_wasm_module(&new("b", "33", b"x"))
                .await
                .unwrap();
            assert_eq!((a1.version, a2.version, b1.version), (1, 2, 1));
            assert_eq!(a2.size, 4);
            let newest: Vec<_> = store
                .wasm_modules()
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.name, m.version))
                .collect();
            assert_eq!(newest, vec![("a".to_owned(), 2), ("b".to_owned(), 1)]);
            let (meta, bytes) = store.wasm_module("a", 1).await.unwrap().unwrap();
            assert_eq!(
                (meta.sha256.as_str(), bytes.as_slice()),
                ("11", &b"one"[..])
            );
            assert_eq!(
                store
                    .wasm_module_by_digest("a", "22")
                    .await
                    .unwrap()
                    .map(|m| m.version),
                Some(2)
            );
            assert!(store.delete_wasm_module("a", 2).await.unwrap());
            assert!(!store.delete_wasm_module("a", 2).await.unwrap());
            assert_eq!(store.wasm_module_versions("a").await.unwrap().len(), 1);
            let a2_again = store
                .insert_wasm_module(&new("a", "44", b"3"))
                .await
                .unwrap();
            assert_eq!(a2_again.version, 2);
        }
    );
}
