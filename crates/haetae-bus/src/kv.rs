//! Shared key-value state with per-key TTL and compare-and-swap: the one place where
//! gateways and relays agree on who holds a session, how many attempts a user made, or
//! whether a remote-support access code is still unused.
//!
//! Every write returns the key's new *revision*; a writer that must not overwrite someone
//! else's change passes the revision it read to [`KvStore::compare_and_swap`]. An entry whose
//! TTL has passed is absent for every operation, on every backend, even before it is swept.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::BusError;

/// A boxed, sendable future: what the object-safe traits of this crate return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One value as read, with the revision to pass to [`KvStore::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The bytes stored.
    pub value: Vec<u8>,
    /// The revision of this value; greater than every earlier revision in the bucket.
    pub revision: u64,
    /// When the entry stops existing, if it was written with a TTL.
    pub expires_at: Option<SystemTime>,
}

/// How many times [`KvStore::increment`] retries after losing a compare-and-swap race.
pub const INCREMENT_ATTEMPTS: u32 = 64;

/// A bucket of shared state. Obtain one with [`crate::Bus::kv`]; share it as
/// `Arc<dyn KvStore>`.
///
/// TTLs: `ttl: None` keeps the entry until it is deleted (or, on NATS, until the bucket's
/// maximum age removes it); `Some(d)` makes it absent `d` after the write. A TTL longer than
/// the bucket's maximum age is refused with [`BusError::TtlTooLong`].
pub trait KvStore: Send + Sync + fmt::Debug {
    /// The bucket's name as given to [`crate::Bus::kv`].
    fn bucket(&self) -> &str;

    /// The current value and revision, or `None` when absent, deleted or expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KvEntry>, BusError>>;

    /// Writes unconditionally; returns the new revision.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64, BusError>>;

    /// Writes only if the key is absent (or expired); otherwise [`BusError::KeyExists`].
    fn create<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64, BusError>>;

    /// Writes only if the key is present, unexpired and at revision `expected`; otherwise
    /// [`BusError::RevisionMismatch`].
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: u64,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64, BusError>>;

    /// Removes the key. Deleting an absent key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BusError>>;

    /// Adds `delta` to the counter at `key` (absent counts as 0) and returns the new value.
    /// The TTL applies when the counter is created and is kept by later increments, so a
    /// counter counts within a fixed window (`fds`: "5 failures in 10 minutes").
    /// Built on [`KvStore::create`] and [`KvStore::compare_and_swap`], so concurrent
    /// increments from many gateways are never lost; gives up with [`BusError::Contended`]
    /// after [`INCREMENT_ATTEMPTS`] lost races. The value is stored as decimal ASCII.
    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, BusError>> {
        Box::pin(async move {
            for _ in 0..INCREMENT_ATTEMPTS {
                match self.get(key).await? {
                    None => {
                        let text = delta.to_string();
                        match self.create(key, text.as_bytes(), ttl).await {
                            Ok(_) => return Ok(delta),
                            Err(e) if e.is_conflict() => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Some(entry) => {
                        let current = parse_counter(self.bucket(), key, &entry)?;
                        let next = current.saturating_add(delta);
                        // The window left, never longer than the one asked for: the
                        // backend's expiry may come from another clock (a store that
                        // keeps monotonic deadlines reports them as wall-clock times,
                        // and a wall clock stepped back by NTP makes them look later),
                        // and a remainder above the bucket's maximum age is refused.
                        // Without a TTL the counter lives as any untimed entry does
                        // (on NATS: the bucket's maximum age from its last write).
                        let remaining = ttl.and_then(|asked| {
                            entry.expires_at.map(|at| {
                                at.duration_since(SystemTime::now())
                                    .unwrap_or(Duration::from_millis(1))
                                    .min(asked)
                                    .max(Duration::from_millis(1))
                            })
                        });
                        let text = next.to_string();
                        match self
                            .compare_and_swap(key, entry.revision, text.as_bytes(), remaining)
                            .await
                        {
                            Ok(_) => return Ok(next),
                            Err(e) if e.is_conflict() => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                tokio::task::yield_now().await;
            }
            Err(BusError::Contended {
                bucket: self.bucket().to_owned(),
                key: key.to_owned(),
                attempts: INCREMENT_ATTEMPTS,
            })
        })
    }
}

fn parse_counter(bucket: &str, key: &str, entry: &KvEntry) -> Result<i64, BusError> {
    std::str::from_utf8(&entry.value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| BusError::Decode {
            what: "counter",
            location: format!("{bucket}/{key}@{}", entry.revision),
            message: "the value is not a decimal integer".into(),
        })
}

/// Bucket names: what NATS accepts, so a name that works embedded also works distributed.
pub(crate) fn check_bucket_name(name: &str) -> Result<(), BusError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidName {
            what: "bucket",
            name: name.to_owned(),
            rule: "1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
        })
    }
}

/// Keys: NATS KV's rule (no spaces, no wildcards; dots separate tokens), checked the same
/// way on every backend.
pub(crate) fn check_key(key: &str) -> Result<(), BusError> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidName {
            what: "key",
            name: key.to_owned(),
            rule: "1-1024 characters of A-Z, a-z, 0-9, '-', '/', '_', '=', '.' (not first, last or doubled); hash or encode other identifiers",
        })
    }
}

/// Refuses a TTL longer than the bucket allows (`max_age` zero means unlimited).
pub(crate) fn check_ttl(
    bucket: &str,
    ttl: Option<Duration>,
    max_age: Duration,
) -> Result<(), BusError> {
    match ttl {
        Some(ttl) if !max_age.is_zero() && ttl > max_age => Err(BusError::TtlTooLong {
            bucket: bucket.to_owned(),
            ttl_ms: ttl.as_millis(),
            max_ms: max_age.as_millis(),
        }),
        _ => Ok(()),
    }
}

/// The stored form of a value on backends that share it between processes: a 3-byte tag,
/// the expiry as milliseconds since the Unix epoch (big-endian, 0 = none), then the value.
/// Expiry is wall-clock time, so hosts sharing a bucket need synchronised clocks (NTP).
pub(crate) mod envelope {
    use super::{Duration, SystemTime, UNIX_EPOCH};

    const TAG: &[u8; 3] = b"HK1";
    pub(crate) const HEADER: usize = 3 + 8;

    /// Wraps `value` with its expiry computed from `now + ttl`.
    pub(crate) fn seal(value: &[u8], ttl: Option<Duration>, now: SystemTime) -> Vec<u8> {
        let expires_ms = ttl
            .and_then(|t| now.checked_add(t))
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
            });
        let mut out = Vec::with_capacity(HEADER + value.len());
        out.extend_from_slice(TAG);
        out.extend_from_slice(&expires_ms.to_be_bytes());
        out.extend_from_slice(value);
        out
    }

    /// The value and its expiry, or why the bytes are not an envelope.
    pub(crate) fn open(stored: &[u8]) -> Result<(&[u8], Option<SystemTime>), String> {
        if stored.len() < HEADER {
            return Err(format!(
                "{} bytes is shorter than the {HEADER}-byte header",
                stored.len()
            ));
        }
        if &stored[..3] != TAG {
            return Err("missing the HK1 tag: not written by haetae-bus".into());
        }
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&stored[3..HEADER]);
        let ms = u64::from_be_bytes(ms);
        let expires = (ms != 0).then(|| UNIX_EPOCH + Duration::from_millis(ms));
        Ok((&stored[HEADER..], expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_round_trips_value_and_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let sealed = envelope::seal(b"session-owner", Some(Duration::from_secs(30)), now);
        let (value, expires) = envelope::open(&sealed).unwrap();
        assert_eq!(value, b"session-owner");
        assert_eq!(expires, Some(now + Duration::from_secs(30)));
    }

    #[test]
    fn an_envelope_without_ttl_never_expires() {
        let sealed = envelope::seal(b"", None, SystemTime::now());
        assert_eq!(envelope::open(&sealed).unwrap(), (&b""[..], None));
    }

    #[test]
    fn foreign_bytes_are_not_an_envelope() {
        assert!(envelope::open(b"short").is_err());
        assert!(envelope::open(b"XYZ0000000000value").is_err());
    }

    #[test]
    fn keys_follow_the_nats_rule_on_every_backend() {
        assert!(check_key("session/user-1").is_ok());
        assert!(check_key("fds.user=42").is_ok());
        for bad in ["", ".a", "a.", "a..b", "a b", "a*", "a>", "한글"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bucket_names_follow_the_nats_rule() {
        assert!(check_bucket_name("single-session_1").is_ok());
        for bad in ["", "a.b", "a b", &"x".repeat(65)] {
            assert!(check_bucket_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_ttl_longer_than_the_bucket_allows_is_refused() {
        let max = Duration::from_secs(60);
        assert!(check_ttl("b", Some(Duration::from_secs(61)), max).is_err());
        assert!(check_ttl("b", Some(Duration::from_secs(60)), max).is_ok());
        assert!(check_ttl("b", None, max).is_ok());
        assert!(check_ttl("b", Some(Duration::from_secs(1 << 40)), Duration::ZERO).is_ok());
    }
}
