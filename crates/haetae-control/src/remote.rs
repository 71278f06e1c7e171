//! Central control of remote support (issue 10, point 8): each agent's grade and the
//! networks it may log in from, the Center's Ed25519 key that signs session policies, and
//! the small rate limiter of the customer's scanning endpoint. The HTTP side is in
//! [`crate::ui::remote`]; storage in [`crate::store::remote`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use haetae_crypto::pk::Ed25519KeyPair;
use haetae_remote::policy::Grade;
use ipnet::IpNet;

use crate::auth::Role;
use crate::recording::RecordingPublicKey;
use crate::store::users::User;
use crate::store::{Store, StoreError};

/// Most networks in one agent's allowlist.
pub const MAX_NETWORKS: usize = 32;

/// The address a request came from (the TCP peer; the Center trusts no forwarding header).
/// `None` when the server was not started with connection info (in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| canonical(c.0.ip())),
        ))
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so `10.0.0.0/8` matches `::ffff:10.1.2.3`.
#[must_use]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Parses an allowlist: each entry a CIDR network (`10.0.0.0/8`, `2001:db8::/32`) or a bare
/// address (a /32 or /128). Returns the normalised text of each.
///
/// # Errors
/// The first entry that is neither, or more than [`MAX_NETWORKS`] entries.
pub fn parse_networks(entries: &[String]) -> Result<Vec<IpNet>, String> {
    let entries: Vec<&str> = entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if entries.len() > MAX_NETWORKS {
        return Err(format!("at most {MAX_NETWORKS} networks per agent"));
    }
    entries
        .into_iter()
        .map(|e| {
            e.parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{e:?} is not an IP address or a CIDR network"))
        })
        .collect()
}

/// Whether `ip` may be used under `networks` (an empty list allows every address; an
/// unknown address is allowed only by an empty list).
#[must_use]
pub fn network_allows(networks: &[IpNet], ip: Option<IpAddr>) -> bool {
    if networks.is_empty() {
        return true;
    }
    ip.map(canonical)
        .is_some_and(|ip| networks.iter().any(|n| n.contains(&ip)))
}

/// What a user may do at the agent console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRules {
    /// The grade.
    pub grade: Grade,
    /// The login networks (empty: anywhere).
    pub networks: Vec<IpNet>,
}

/// The rules for `user`: its stored settings, or the defaults — `indirect` for the `agent`
/// role (least privilege until an administrator says otherwise), `direct` for admins and
/// security officers, who may use the console too.
///
/// # Errors
/// The store's.
pub async fn rules_for(store: &Store, user: &User) -> Result<AgentRules, StoreError> {
    match store.remote_agent(user.id).await? {
        Some(s) => Ok(AgentRules {
            grade: s.grade.parse().unwrap_or(Grade::Indirect),
            // Stored lists were validated on the way in; an entry that no longer parses
            // makes the list refuse everything rather than allow everything.
            networks: parse_networks(&s.allow_from)
                .unwrap_or_else(|_| vec![IpNet::from(IpAddr::from([255, 255, 255, 255]))]),
        }),
        None => Ok(AgentRules {
            grade: if user.role == Role::Agent {
                Grade::Indirect
            } else {
                Grade::Direct
            },
            networks: Vec::new(),
        }),
    }
}

/// Remote-support state shared by the handlers.
#[derive(Debug, Default)]
pub struct RemoteState {
    key: tokio::sync::OnceCell<Arc<Ed25519KeyPair>>,
    scans: std::sync::Mutex<HashMap<(i64, IpAddr), (Instant, u32)>>,
    recording_key: Option<RecordingPublicKey>,
}

/// Scans a customer may ask for per session and address within [`SCAN_WINDOW`].
pub const SCANS_PER_WINDOW: u32 = 20;
/// The customer's scan rate window.
pub const SCAN_WINDOW: Duration = Duration::from_secs(60);

impl RemoteState {
    /// State whose agent consoles record every session to `recording_key` (the
    /// organisation's recording public key, `control.recording_key`), or record nothing.
    #[must_use]
    pub fn with_recording_key(recording_key: Option<RecordingPublicKey>) -> RemoteState {
        RemoteState {
            recording_key,
            ..RemoteState::default()
        }
    }

    /// The organisation's recording public key, when sessions are recorded.
    #[must_use]
    pub fn recording_key(&self) -> Option<&RecordingPublicKey> {
        self.recording_key.as_ref()
    }

    /// The Center's policy-signing key: read from the store (made there on first use, so
    /// every Center on one database signs with the same key).
    ///
    /// # Errors
    /// The store's, or no randomness for a new key.
    pub async fn signing_key(&self, store: &Store) -> Result<Arc<Ed25519KeyPair>, StoreError> {
        self.key
            .get_or_try_init(|| async {
                let mut seed = [0u8; 32];
                haetae_crypto::error::os_random(&mut seed)
                    .map_err(|e| StoreError::Corrupt(format!("no randomness for a key: {e}")))?;
                let fresh = hex::encode(seed);
                seed.fill(0);
                let stored = store
                    .remote_signing_seed(&fresh, crate::store::now_micros())
                    .await?;
                let bytes: [u8; 32] = hex::decode(&stored)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        StoreError::Corrupt("the policy-signing key is not 32 hex bytes".into())
                    })?;
                Ok(Arc::new(Ed25519KeyPair::from_seed(&bytes)))
            })
            .await
            .cloned()
    }

    /// Counts one customer scan for `session` from `ip`; `false` when over the limit.
    pub fn allow_scan(&self, session: i64, ip: Option<IpAddr>) -> bool {
        let ip = ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let now = Instant::now();
        let mut m = self
            .scans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() > 10_000 {
            m.retain(|_, (t, _)| now.duration_since(*t) < SCAN_WINDOW);
        }
        let e = m.entry((session, ip)).or_insert((now, 0));
        if now.duration_since(e.0) >= SCAN_WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= SCANS_PER_WINDOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_parse_and_match() {
        let nets = parse_networks(&[
            "10.0.0.0/8".into(),
            " 192.0.2.7 ".into(),
            String::new(),
            "2001:db8::/32".into(),
        ])
        .unwrap();
        assert_eq!(nets.len(), 3);
        assert!(network_allows(&nets, Some("10.9.8.7".parse().unwrap())));
        assert!(network_allows(
            &nets,
            Some("::ffff:10.1.1.1".parse().unwrap())
        ));
        assert!(network_allows(&nets, Some("192.0.2.7".parse().unwrap())));
        assert!(!network_allows(&nets, Some("192.0.2.8".parse().unwrap())));
        assert!(network_allows(&nets, Some("2001:db8::1".parse().unwrap())));
        assert!(!network_allows(&nets, None));
        assert!(network_allows(&[], None));
        assert!(parse_networks(&["10.0.0.0/33".into()]).is_err());
        assert!(parse_networks(&["example.com".into()]).is_err());
        let many: Vec<String> = (0..=MAX_NETWORKS).map(|i| format!("10.0.0.{i}")).collect();
        assert!(parse_networks(&many).is_err());
    }

    #[test]
    fn the_customer_scan_limit_counts_per_session_and_address() {
        let s = RemoteState::default();
        let ip = Some("192.0.2.1".parse().unwrap());
        for _ in 0..SCANS_PER_WINDOW {
            assert!(s.allow_scan(1, ip));
        }
        assert!(!s.allow_scan(1, ip));
        assert!(s.allow_scan(2, ip));
    }
}
