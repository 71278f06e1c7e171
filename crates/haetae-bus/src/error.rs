//! The one error type of the bus: what failed, on which backend, bucket, key or file, and
//! what the caller can do about it.

use std::path::PathBuf;

use haetae_core::ValidationErrors;

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The backend (the NATS server) could not be reached or did not answer in time. The
    /// operation may be retried; events are spooled meanwhile.
    #[error("{backend} is unavailable while trying to {operation}: {message}")]
    Unavailable {
        /// `nats` or `in-process`.
        backend: &'static str,
        /// What was being done, e.g. `publish the policy`.
        operation: String,
        /// The client's message.
        message: String,
    },
    /// A policy was published whose version is not greater than the one already current.
    #[error(
        "policy version {offered} was not published: version {current} is already current; publish a greater version"
    )]
    StaleVersion {
        /// The version on the bus.
        current: u64,
        /// The version offered.
        offered: u64,
    },
    /// A policy that fails [`haetae_core::PolicySnapshot::validate`] was offered.
    #[error("policy version {version} was not published: {errors}")]
    InvalidPolicy {
        /// The version offered.
        version: u64,
        /// Every problem found.
        errors: ValidationErrors,
    },
    /// `create` found the key present (and not expired).
    #[error("key {key:?} in bucket {bucket:?} already exists")]
    KeyExists {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// `compare_and_swap` (or `delete` with an expected revision) found another revision:
    /// someone else wrote the key first. Read it again and decide.
    #[error(
        "key {key:?} in bucket {bucket:?} is not at revision {expected} (it was changed, deleted or expired); read it again"
    )]
    RevisionMismatch {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: u64,
    },
    /// A name (bucket, key, durable consumer) that the backend cannot hold.
    #[error("{what} {name:?} is not allowed: {rule}")]
    InvalidName {
        /// `bucket`, `key` or `durable consumer`.
        what: &'static str,
        /// The name given.
        name: String,
        /// What names must look like.
        rule: &'static str,
    },
    /// A requested TTL is longer than the bucket's maximum age.
    #[error("TTL of {ttl_ms} ms exceeds the maximum age of bucket {bucket:?} ({max_ms} ms)")]
    TtlTooLong {
        /// The bucket.
        bucket: String,
        /// The TTL asked for.
        ttl_ms: u128,
        /// The bucket's maximum age.
        max_ms: u128,
    },
    /// A stored value could not be read back (not written by haetae, or corrupted).
    #[error("cannot decode {what} at {location}: {message}")]
    Decode {
        /// `policy`, `event`, `kv value`, `counter`.
        what: &'static str,
        /// Where: `bucket/key@revision`, `stream seq 42`, `spool file 0001.jsonl line 3`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The in-process store is full (its configured key limit).
    #[error("bucket {bucket:?} is full ({limit} keys); raise the limit or shorten TTLs")]
    Full {
        /// The bucket.
        bucket: String,
        /// The limit.
        limit: usize,
    },
    /// The spool folder could not be used.
    #[error("event spool {path}: {source}; check that the folder exists and is writable")]
    Spool {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An emitter was created outside a Tokio runtime.
    #[error("{what} needs a Tokio runtime; create it from within one")]
    NoRuntime {
        /// What was being created.
        what: &'static str,
    },
    /// A counter increment lost the compare-and-swap race too many times in a row.
    #[error(
        "increment of {key:?} in bucket {bucket:?} gave up after {attempts} conflicting writers"
    )]
    Contended {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// How many attempts were made.
        attempts: u32,
    },
}

impl BusError {
    /// True for [`BusError::KeyExists`] and [`BusError::RevisionMismatch`]: another writer
    /// won; read again and decide.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            BusError::KeyExists { .. } | BusError::RevisionMismatch { .. }
        )
    }

    /// True when the backend could not be reached; retrying later may succeed.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BusError::Unavailable { .. })
    }

    pub(crate) fn nats(operation: impl Into<String>, err: impl std::fmt::Display) -> BusError {
        BusError::Unavailable {
            backend: "nats",
            operation: operation.into(),
            message: err.to_string(),
        }
    }
}
