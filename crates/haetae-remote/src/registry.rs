//! The session registry in the shared `haetae-bus` KV: what a relay needs to let the two
//! ends of a paired session resume on *another* relay after the one they were on is gone.
//!
//! One record per paired session (`session.<sid hex>` in the codes' bucket): the agent, the
//! two addresses, the relay holding the pairing, the SHA-256 of each side's current resume
//! token (never the token), how many resumes it has had, and — during a resume — which side
//! waits on which relay. The record lives [`RegistryPolicy::resume_window`] after its last
//! refresh (the relay holding the session refreshes it while it runs), so a session whose
//! relay died can be resumed within that window and not after; a session that ended for
//! good (goodbye, idle, protocol error) is deleted.
//!
//! A token is single use: presenting it swaps in the hash of a fresh one by
//! compare-and-swap, so of two connections presenting the same token one at most gets in,
//! and a token seen on the wire once is worthless afterwards.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use haetae_bus::KvStore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::channel::hash_parts;
use crate::codes::CodeError;
use crate::protocol::{RESUME_TOKEN_LEN, Role, SessionId};

/// A resume token as the relay hands it out.
pub type ResumeToken = [u8; RESUME_TOKEN_LEN];

/// How long sessions can be resumed and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPolicy {
    /// A session can be resumed this long after its relay last refreshed its record.
    pub resume_window: Duration,
    /// The first side back waits this long for the other one.
    pub resume_wait: Duration,
    /// Most resumes (counting each side's) in one session.
    pub max_resumes: u32,
}

impl Default for RegistryPolicy {
    fn default() -> Self {
        RegistryPolicy {
            resume_window: Duration::from_secs(60),
            resume_wait: Duration::from_secs(30),
            max_resumes: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WaitingSide {
    role: String,
    relay: String,
    since_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    agent: String,
    agent_ip: String,
    customer_ip: String,
    relay: String,
    agent_token: String,
    customer_token: String,
    resumes: u32,
    waiting: Option<WaitingSide>,
    paired_ms: u64,
}

/// What [`Registry::claim`] decided for a side that presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The other side is not back yet: wait here for it.
    Wait {
        /// This side's next token.
        token: ResumeToken,
        /// The session's agent.
        agent: String,
        /// Resumes so far, this one included.
        resumes: u32,
    },
    /// The other side waits on this relay: pair them.
    Pair {
        /// This side's next token.
        token: ResumeToken,
        /// The session's agent.
        agent: String,
        /// Resumes so far, this one included.
        resumes: u32,
    },
}

/// Why a resume was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// No such session, a wrong or used token, too many resumes: all read the same.
    #[error("cannot resume: unknown session or invalid token ({detail})")]
    Invalid {
        /// For the event only.
        detail: &'static str,
    },
    /// The other side already waits on another relay (the token was not used).
    #[error("the other side resumes on relay {relay}")]
    OtherRelay {
        /// That relay.
        relay: String,
    },
    /// The shared state failed.
    #[error("session registry: {0}")]
    Store(String),
}

impl From<CodeError> for ResumeError {
    fn from(e: CodeError) -> Self {
        ResumeError::Store(e.to_string())
    }
}

impl From<haetae_bus::BusError> for ResumeError {
    fn from(e: haetae_bus::BusError) -> Self {
        ResumeError::Store(e.to_string())
    }
}

/// The registry over the shared KV bucket (the codes' bucket: [`crate::codes::BUCKET`]).
#[derive(Debug, Clone)]
pub struct Registry {
    kv: Arc<dyn KvStore>,
    policy: RegistryPolicy,
    relay: String,
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

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Agent => "agent",
        Role::Customer => "customer",
    }
}

/// What the KV keeps of a token: `H("haetae-resume-token" || sid || role || token)`.
fn token_hash(sid: &SessionId, role: Role, token: &ResumeToken) -> String {
    hex(&hash_parts(&[
        b"haetae-resume-token",
        &sid.0,
        role_name(role).as_bytes(),
        token,
    ]))
}

fn new_token() -> Result<ResumeToken, ResumeError> {
    let mut t = [0u8; RESUME_TOKEN_LEN];
    haetae_crypto::error::os_random(&mut t).map_err(|e| ResumeError::Store(e.to_string()))?;
    Ok(t)
}

fn key(sid: &SessionId) -> String {
    format!("session.{}", hex(&sid.0))
}

impl Registry {
    /// A registry for relay `relay` over `kv` (a bucket whose maximum age is at least the
    /// resume window).
    #[must_use]
    pub fn new(kv: Arc<dyn KvStore>, policy: RegistryPolicy, relay: impl Into<String>) -> Self {
        Registry {
            kv,
            policy,
            relay: relay.into(),
        }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &RegistryPolicy {
        &self.policy
    }

    /// Records a session just paired on this relay; returns the agent's and the customer's
    /// first resume tokens.
    ///
    /// # Errors
    /// [`ResumeError::Store`].
    pub async fn register(
        &self,
        sid: &SessionId,
        agent: &str,
        agent_ip: IpAddr,
        customer_ip: IpAddr,
    ) -> Result<(ResumeToken, ResumeToken), ResumeError> {
        let (a, c) = (new_token()?, new_token()?);
        let record = Record {
            agent: agent.to_owned(),
            agent_ip: agent_ip.to_string(),
            customer_ip: customer_ip.to_string(),
            relay: self.relay.clone(),
            agent_token: token_hash(sid, Role::Agent, &a),
            customer_token: token_hash(sid, Role::Customer, &c),
            resumes: 0,
            waiting: None,
            paired_ms: now_ms(),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| ResumeError::Store(e.to_string()))?;
        self.kv
            .put(&key(sid), &bytes, Some(self.policy.resume_window))
            .await?;
        Ok((a, c))
    }

    /// Keeps the record of a session that is running on this relay (called periodically):
    /// it can be resumed for another resume window from now.
    ///
    /// # Errors
    /// [`ResumeError::Store`].
    pub async fn refresh(&self, sid: &SessionId) -> Result<(), ResumeError> {
        for _ in 0..8 {
            let Some(entry) = self.kv.get(&key(sid)).await? else {
                return Ok(());
            };
            match self
                .kv
                .compare_and_swap(
                    &key(sid),
                    entry.revision,
                    &entry.value,
                    Some(self.policy.resume_window),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Forgets a session that ended for good: it cannot be resumed any more.
    ///
    /// # Errors
    /// [`ResumeError::Store`].
    pub async fn remove(&self, sid: &SessionId) -> Result<(), ResumeError> {
        Ok(self.kv.delete(&key(sid)).await?)
    }

    /// A side presents its token on this relay. On success the token is used up (the
    /// record holds the hash of the returned next one) and the answer says whether the
    /// other side already waits here.
    ///
    /// `other_waits_here` tells whether this relay really holds a waiting connection of the
    /// other side (the record may name this relay for a side whose connection is gone).
    ///
    /// # Errors
    /// [`ResumeError::Invalid`], [`ResumeError::OtherRelay`] (token not used),
    /// [`ResumeError::Store`].
    pub async fn claim(
        &self,
        sid: &SessionId,
        role: Role,
        token: &ResumeToken,
        other_waits_here: bool,
    ) -> Result<Claim, ResumeError> {
        let presented = token_hash(sid, role, token);
        for _ in 0..16 {
            let Some(entry) = self.kv.get(&key(sid)).await? else {
                return Err(ResumeError::Invalid {
                    detail: "unknown or expired session",
                });
            };
            let mut record: Record = serde_json::from_slice(&entry.value)
                .map_err(|e| ResumeError::Store(format!("session record: {e}")))?;
            let stored = match role {
                Role::Agent => &record.agent_token,
                Role::Customer => &record.customer_token,
            };
            if !bool::from(presented.as_bytes().ct_eq(stored.as_bytes())) {
                return Err(ResumeError::Invalid {
                    detail: "wrong or already used token",
                });
            }
            if record.resumes >= self.policy.max_resumes {
                return Err(ResumeError::Invalid {
                    detail: "too many resumes",
                });
            }
            let now = now_ms();
            let wait_ms = u64::try_from(self.policy.resume_wait.as_millis()).unwrap_or(u64::MAX);
            let other = match role {
                Role::Agent => "customer",
                Role::Customer => "agent",
            };
            let other_waiting = record
                .waiting
                .as_ref()
                .filter(|w| w.role == other && now.saturating_sub(w.since_ms) < wait_ms);
            let pair = match other_waiting {
                Some(w) if w.relay == self.relay && other_waits_here => true,
                Some(w) if w.relay != self.relay => {
                    return Err(ResumeError::OtherRelay {
                        relay: w.relay.clone(),
                    });
                }
                _ => false,
            };
            let next = new_token()?;
            let hashed = token_hash(sid, role, &next);
            match role {
                Role::Agent => record.agent_token = hashed,
                Role::Customer => record.customer_token = hashed,
            }
            record.resumes = record.resumes.saturating_add(1);
            record.relay.clone_from(&self.relay);
            record.waiting = if pair {
                None
            } else {
                Some(WaitingSide {
                    role: role_name(role).to_owned(),
                    relay: self.relay.clone(),
                    since_ms: now,
                })
            };
            let bytes =
                serde_json::to_vec(&record).map_err(|e| ResumeError::Store(e.to_string()))?;
            match self
                .kv
                .compare_and_swap(
                    &key(sid),
                    entry.revision,
                    &bytes,
                    Some(self.policy.resume_window),
                )
                .await
            {
                Ok(_) => {
                    let (agent, resumes) = (record.agent, record.resumes);
                    return Ok(if pair {
                        Claim::Pair {
                            token: next,
                            agent,
                            resumes,
                        }
                    } else {
                        Claim::Wait {
                            token: next,
                            agent,
                            resumes,
                        }
                    });
                }
                Err(e) if e.is_conflict() => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ResumeError::Store(
            "session record: too many concurrent updates".into(),
        ))
    }

    /// A side that waited here gave up (or its connection closed): the record no longer
    /// says it waits, so the other side does not look for it on this relay.
    ///
    /// # Errors
    /// [`ResumeError::Store`].
    pub async fn stop_waiting(&self, sid: &SessionId, role: Role) -> Result<(), ResumeError> {
        for _ in 0..8 {
            let Some(entry) = self.kv.get(&key(sid)).await? else {
                return Ok(());
            };
            let mut record: Record = serde_json::from_slice(&entry.value)
                .map_err(|e| ResumeError::Store(format!("session record: {e}")))?;
            let mine = record
                .waiting
                .as_ref()
                .is_some_and(|w| w.role == role_name(role) && w.relay == self.relay);
            if !mine {
                return Ok(());
            }
            record.waiting = None;
            let bytes =
                serde_json::to_vec(&record).map_err(|e| ResumeError::Store(e.to_string()))?;
            match self
                .kv
                .compare_and_swap(
                    &key(sid),
                    entry.revision,
                    &bytes,
                    Some(self.policy.resume_window),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The agent and addresses of a registered session (for the relay's events).
    ///
    /// # Errors
    /// [`ResumeError::Store`].
    pub async fn addresses(
        &self,
        sid: &SessionId,
    ) -> Result<Option<(String, IpAddr, IpAddr)>, ResumeError> {
        let Some(entry) = self.kv.get(&key(sid)).await? else {
            return Ok(None);
        };
        let record: Record = serde_json::from_slice(&entry.value)
            .map_err(|e| ResumeError::Store(format!("session record: {e}")))?;
        let parse = |s: &str| s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(Some((
            record.agent,
            parse(&record.agent_ip),
            parse(&record.customer_ip),
        )))
    }
}
