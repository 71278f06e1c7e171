//! One-time access codes: the digits an agent reads to the customer on the phone.
//!
//! A code of `d` digits (6-9, default 9) is a 3-digit *slot* followed by `d - 3` *secret*
//! digits, both drawn uniformly from the OS CSPRNG (rejection sampling, no modulo bias).
//! The slot names the code's record in the shared `haetae-bus` KV bucket, so every relay
//! sees the same codes; the record holds only a SHA-256 verifier of the whole code, which is
//! compared in constant time. Because a wrong guess names a slot, failures are counted *per
//! code*: the fifth wrong secret burns the code, and a sixth guess fails even when right.
//!
//! - unique while live: a slot is taken with the KV's create-if-absent, so two live codes
//!   never share one; a code is single use (a compare-and-swap marks it used, so two
//!   customers racing with the right code cannot both get in);
//! - bounded life: the record's TTL is the code's (default 5 minutes, at most 30);
//! - per address: more than 6 failures in a minute make the address wait 60 s, more than
//!   30 in an hour block it for an hour (IPv6: per /64);
//! - the answer never says more than "invalid or expired" about a code.
//!
//! `docs/remote.md` works out what a guesser can achieve under these limits.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use haetae_bus::{BusError, KvStore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::channel::hash_parts;
use crate::protocol::SessionId;

/// Digits of the slot part of a code.
pub const SLOT_DIGITS: u32 = 3;
/// How many codes can be live at once per bucket (one per slot).
pub const SLOTS: u32 = 1000;
/// The KV bucket the codes live in.
pub const BUCKET: &str = "remote-codes";
/// The bucket's maximum entry age: the longest IP block.
pub const BUCKET_MAX_AGE: Duration = Duration::from_secs(3600);

/// The limits of access codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePolicy {
    /// Digits per code, 6-9.
    pub digits: u32,
    /// How long a code stays valid, at most 30 minutes.
    pub ttl: Duration,
    /// Wrong tries that burn a code.
    pub max_failures_per_code: u32,
    /// Failures per address in one minute before it must wait.
    pub ip_failures_per_minute: i64,
    /// How long it waits.
    pub ip_wait: Duration,
    /// Failures per address in one hour before it is blocked.
    pub ip_failures_per_hour: i64,
    /// How long a block lasts (at most [`BUCKET_MAX_AGE`]).
    pub ip_block: Duration,
}

impl Default for CodePolicy {
    fn default() -> Self {
        CodePolicy {
            digits: 9,
            ttl: Duration::from_secs(300),
            max_failures_per_code: 5,
            ip_failures_per_minute: 6,
            ip_wait: Duration::from_secs(60),
            ip_failures_per_hour: 30,
            ip_block: Duration::from_secs(3600),
        }
    }
}

impl CodePolicy {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`CodeError::Policy`] naming the field.
    pub fn validate(&self) -> Result<(), CodeError> {
        let bad = |field: &'static str, rule: &'static str| CodeError::Policy { field, rule };
        if !(6..=9).contains(&self.digits) {
            return Err(bad("digits", "6 to 9"));
        }
        if self.ttl.is_zero() || self.ttl > Duration::from_secs(1800) {
            return Err(bad("ttl", "1 second to 30 minutes"));
        }
        if !(1..=10).contains(&self.max_failures_per_code) {
            return Err(bad("max_failures_per_code", "1 to 10"));
        }
        if self.ip_failures_per_minute < 1 || self.ip_failures_per_hour < 1 {
            return Err(bad("ip_failures_per_*", "at least 1"));
        }
        if self.ip_wait.is_zero()
            || self.ip_block.is_zero()
            || self.ip_wait > BUCKET_MAX_AGE
            || self.ip_block > BUCKET_MAX_AGE
        {
            return Err(bad("ip_wait/ip_block", "1 second to 1 hour"));
        }
        Ok(())
    }

    fn secret_digits(&self) -> u32 {
        self.digits - SLOT_DIGITS
    }
}

/// Why a code could not be issued or redeemed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The code is not valid now. The display is the same whatever the detail; the
    /// detail is for the session history only.
    #[error("invalid or expired code")]
    InvalidOrExpired {
        /// What exactly (never shown to the customer).
        detail: Failure,
    },
    /// This address failed too often; it may try again after `retry_after`.
    #[error("too many failed attempts; try again in {} s", retry_after.as_secs())]
    TooManyAttempts {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The code is right but its session waits on another relay (the code stays valid).
    #[error("the session is on relay {relay}")]
    OtherRelay {
        /// That relay's id.
        relay: String,
    },
    /// Every slot holds a live code.
    #[error("no free code slot ({SLOTS} codes are live); try again when some expire")]
    Exhausted,
    /// A policy value out of range.
    #[error("access code policy: {field} must be {rule}")]
    Policy {
        /// The field.
        field: &'static str,
        /// Its range.
        rule: &'static str,
    },
    /// The shared state failed.
    #[error("access code store: {0}")]
    Store(String),
    /// No entropy from the OS.
    #[error("access code: {0}")]
    Random(String),
}

impl From<BusError> for CodeError {
    fn from(e: BusError) -> Self {
        CodeError::Store(e.to_string())
    }
}

/// What was wrong with a code, for the history only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not the configured number of digits.
    Format,
    /// No live code in that slot.
    Unknown,
    /// The slot is live but the secret differs; `failures` so far on this code.
    Wrong {
        /// Failures on this code including this one.
        failures: u32,
        /// Whether this failure burned the code.
        burned: bool,
    },
    /// The code was burned by earlier failures.
    Burned,
    /// The code was already used.
    Used,
    /// The agent withdrew the code.
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Live,
    Used,
    Burned,
    Withdrawn,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    sid: String,
    agent: String,
    relay: String,
    verifier: String,
    failures: u32,
    state: State,
    expires_ms: u64,
}

/// A code just issued.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// The digits to read to the customer.
    pub code: String,
    /// The session it opens.
    pub sid: SessionId,
    /// When it stops working.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("sid", &self.sid)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A code redeemed: the customer may join this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    /// The session.
    pub sid: SessionId,
    /// The agent who issued the code.
    pub agent: String,
}

/// The access codes of one deployment, over the shared KV bucket.
#[derive(Debug, Clone)]
pub struct AccessCodes {
    kv: Arc<dyn KvStore>,
    policy: CodePolicy,
    relay: String,
}

/// A uniform integer in `0..n` from the OS CSPRNG (rejection sampling: no modulo bias).
///
/// # Errors
/// [`CodeError::Random`].
pub fn uniform_below(n: u32) -> Result<u32, CodeError> {
    let n = n.max(1);
    // The largest multiple of n that fits: values at or above it are drawn again.
    let zone = u32::MAX - (u32::MAX % n + 1) % n;
    loop {
        let mut b = [0u8; 4];
        haetae_crypto::error::os_random(&mut b).map_err(|e| CodeError::Random(e.to_string()))?;
        let r = u32::from_be_bytes(b);
        if r <= zone {
            return Ok(r % n);
        }
    }
}

fn verifier(code: &str) -> [u8; 32] {
    hash_parts(&[b"haetae-access-code-v1", code.as_bytes()])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The KV key part for an address: IPv4 as dotted digits, IPv6 by its /64 prefix (one
/// customer usually holds a whole /64, so counting single IPv6 addresses limits nothing).
#[must_use]
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}-{:x}-{:x}-{:x}--64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl AccessCodes {
    /// Codes over `kv` (a bucket with a maximum age of at least [`BUCKET_MAX_AGE`]) for the
    /// relay named `relay`.
    ///
    /// # Errors
    /// [`CodeError::Policy`].
    pub fn new(
        kv: Arc<dyn KvStore>,
        policy: CodePolicy,
        relay: impl Into<String>,
    ) -> Result<Self, CodeError> {
        policy.validate()?;
        Ok(AccessCodes {
            kv,
            policy,
            relay: relay.into(),
        })
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &CodePolicy {
        &self.policy
    }

    /// The shared bucket (the session registry keeps its records beside the codes).
    #[must_use]
    pub fn kv(&self) -> Arc<dyn KvStore> {
        Arc::clone(&self.kv)
    }

    /// Issues a code for `agent` opening session `sid`.
    ///
    /// # Errors
    /// [`CodeError::Exhausted`] when every slot holds a live code,
    /// [`CodeError::Store`], [`CodeError::Random`].
    pub async fn issue(&self, agent: &str, sid: SessionId) -> Result<IssuedCode, CodeError> {
        let secret_space = 10u32.pow(self.policy.secret_digits());
        // Random slots first; when most are live, walk every slot from a random start, so
        // a code is refused only when all slots are really taken.
        let start = uniform_below(SLOTS)?;
        for attempt in 0..16 + SLOTS {
            let slot = if attempt < 16 {
                uniform_below(SLOTS)?
            } else {
                (start + attempt - 16) % SLOTS
            };
            let secret = uniform_below(secret_space)?;
            let width = usize::try_from(self.policy.secret_digits()).unwrap_or(6);
            let code = format!("{slot:03}{secret:0width$}");
            let expires_at = SystemTime::now() + self.policy.ttl;
            let record = Record {
                sid: hex(&sid.0),
                agent: agent.to_owned(),
                relay: self.relay.clone(),
                verifier: hex(&verifier(&code)),
                failures: 0,
                state: State::Live,
                expires_ms: now_ms()
                    .saturating_add(u64::try_from(self.policy.ttl.as_millis()).unwrap_or(u64::MAX)),
            };
            let bytes = serde_json::to_vec(&record).map_err(|e| CodeError::Store(e.to_string()))?;
            match self
                .kv
                .create(&slot_key(slot), &bytes, Some(self.policy.ttl))
                .await
            {
                Ok(_) => {
                    return Ok(IssuedCode {
                        code,
                        sid,
                        expires_at,
                    });
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(CodeError::Exhausted)
    }

    /// Withdraws a code that was not used (the agent left). Does nothing if the slot now
    /// holds another session's code.
    ///
    /// # Errors
    /// [`CodeError::Store`].
    pub async fn withdraw(&self, issued: &IssuedCode) -> Result<(), CodeError> {
        let Some(slot) = parse_slot(&issued.code) else {
            return Ok(());
        };
        let key = slot_key(slot);
        for _ in 0..16 {
            let Some(entry) = self.kv.get(&key).await? else {
                return Ok(());
            };
            let Ok(mut record) = serde_json::from_slice::<Record>(&entry.value) else {
                return Ok(());
            };
            if record.sid != hex(&issued.sid.0) || record.state != State::Live {
                return Ok(());
            }
            record.state = State::Withdrawn;
            if self.store(&key, entry.revision, &record).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// How long `ip` must still wait, if it is limited now.
    ///
    /// # Errors
    /// [`CodeError::Store`].
    pub async fn address_limited(&self, ip: IpAddr) -> Result<Option<Duration>, CodeError> {
        let addr = address_key(ip);
        for key in [format!("ip.block.{addr}"), format!("ip.wait.{addr}")] {
            if let Some(entry) = self.kv.get(&key).await? {
                let left = entry
                    .expires_at
                    .and_then(|at| at.duration_since(SystemTime::now()).ok())
                    .unwrap_or(Duration::from_secs(1));
                return Ok(Some(left.max(Duration::from_secs(1))));
            }
        }
        Ok(None)
    }

    /// Redeems `code` for a customer at `ip`. Counts the failure against the address (and
    /// the code, when the slot is live); marks the code used on success.
    ///
    /// # Errors
    /// [`CodeError::TooManyAttempts`] before looking at the code when the address is
    /// limited; [`CodeError::InvalidOrExpired`]; [`CodeError::OtherRelay`];
    /// [`CodeError::Store`].
    pub async fn redeem(&self, code: &str, ip: IpAddr) -> Result<Redeemed, CodeError> {
        if let Some(retry_after) = self.address_limited(ip).await? {
            return Err(CodeError::TooManyAttempts { retry_after });
        }
        match self.check(code).await {
            Err(CodeError::InvalidOrExpired { detail }) => {
                self.count_failure(ip).await?;
                Err(CodeError::InvalidOrExpired { detail })
            }
            other => other,
        }
    }

    async fn check(&self, code: &str) -> Result<Redeemed, CodeError> {
        let invalid = |detail| CodeError::InvalidOrExpired { detail };
        let well_formed = code.len() == usize::try_from(self.policy.digits).unwrap_or(0)
            && code.bytes().all(|b| b.is_ascii_digit());
        let slot = parse_slot(code).filter(|_| well_formed);
        let Some(slot) = slot else {
            return Err(invalid(Failure::Format));
        };
        let key = slot_key(slot);
        let presented = verifier(code);
        for _ in 0..16 {
            let Some(entry) = self.kv.get(&key).await? else {
                return Err(invalid(Failure::Unknown));
            };
            let mut record: Record = serde_json::from_slice(&entry.value)
                .map_err(|e| CodeError::Store(format!("code record {key}: {e}")))?;
            match record.state {
                State::Live => {}
                State::Used => return Err(invalid(Failure::Used)),
                State::Burned => return Err(invalid(Failure::Burned)),
                State::Withdrawn => return Err(invalid(Failure::Withdrawn)),
            }
            let matches = bool::from(hex(&presented).as_bytes().ct_eq(record.verifier.as_bytes()));
            if !matches {
                record.failures = record.failures.saturating_add(1);
                let burned = record.failures >= self.policy.max_failures_per_code;
                if burned {
                    record.state = State::Burned;
                }
                if self.store(&key, entry.revision, &record).await? {
                    return Err(invalid(Failure::Wrong {
                        failures: record.failures,
                        burned,
                    }));
                }
                continue;
            }
            if record.relay != self.relay {
                return Err(CodeError::OtherRelay {
                    relay: record.relay,
                });
            }
            let Some(sid) = unhex16(&record.sid) else {
                return Err(CodeError::Store(format!(
                    "code record {key}: bad session id"
                )));
            };
            record.state = State::Used;
            if self.store(&key, entry.revision, &record).await? {
                return Ok(Redeemed {
                    sid: SessionId(sid),
                    agent: record.agent,
                });
            }
        }
        Err(CodeError::Store(format!(
            "code record {key}: too many concurrent updates"
        )))
    }

    /// Writes `record` at `key` if it is still at `revision`, keeping the code's expiry.
    /// `Ok(false)` when another writer got there first (the callers read again).
    async fn store(&self, key: &str, revision: u64, record: &Record) -> Result<bool, CodeError> {
        let left = record.expires_ms.saturating_sub(now_ms()).max(1);
        let ttl = Duration::from_millis(left).min(self.policy.ttl);
        let bytes = serde_json::to_vec(record).map_err(|e| CodeError::Store(e.to_string()))?;
        match self
            .kv
            .compare_and_swap(key, revision, &bytes, Some(ttl))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Counts a failed attempt from `ip` (a wrong code, or a wrong resume token) against
    /// the address limits.
    pub(crate) async fn count_failure(&self, ip: IpAddr) -> Result<(), CodeError> {
        let addr = address_key(ip);
        let minute = self
            .kv
            .increment(
                &format!("ip.fail-m.{addr}"),
                1,
                Some(Duration::from_secs(60)),
            )
            .await?;
        let hour = self
            .kv
            .increment(
                &format!("ip.fail-h.{addr}"),
                1,
                Some(Duration::from_secs(3600)),
            )
            .await?;
        if hour > self.policy.ip_failures_per_hour {
            self.kv
                .put(
                    &format!("ip.block.{addr}"),
                    b"1",
                    Some(self.policy.ip_block),
                )
                .await?;
        } else if minute > self.policy.ip_failures_per_minute {
            self.kv
                .put(&format!("ip.wait.{addr}"), b"1", Some(self.policy.ip_wait))
                .await?;
        }
        Ok(())
    }
}

fn slot_key(slot: u32) -> String {
    format!("code.{slot:03}")
}

fn parse_slot(code: &str) -> Option<u32> {
    code.get(..3)?.parse().ok()
}
