//! `single-session`: duplicate-login and session-hijack prevention at the gateway. A
//! successful login (a `POST` to the login path answered with a `Set-Cookie` of the session
//! cookie) registers user -> session, bound to the device (device id from `device-info`,
//! `User-Agent`) and the client's IP prefix. A second login of the same user kicks the old
//! session (default), is rejected, or is allowed up to `max_sessions`. Every request that
//! carries a registered session is checked: kicked, logged-out or timed-out sessions are
//! sent to a notice page, a cookie replayed from another device is blocked (or stepped up),
//! and an IP change is reported. State lives in the shared `KvStore`, so it holds across
//! every gateway of a cluster; session ids are stored only as salted SHA-256 hashes, and
//! neither they nor the hashes' inputs ever appear in events.
//!
//! ```toml
//! [[policy.filters]]
//! id = "session"
//! kind = "single-session"
//! config = { session_cookie = "JSESSIONID", login_path = "/login", user_param = "username",
//!            on_duplicate = "kick-old", idle_timeout_secs = 600 }
//! ```

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use haetae_bus::BusError;
use haetae_core::{EventCategory, EventKind, FilterInstance, PolicySnapshot, Severity};
use http::{HeaderName, Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::bus::KvStore;
use crate::filter::{
    Decision, FilterContext, FilterError, LocalResponse, Modification, Notice, PhaseResult, Phases,
    Reason, SecurityFilter,
};
use crate::filters::restrict::NoticeVia;
use crate::filters::{BuildResult, ConfigProblem, typed_config};

/// The kind name in policies.
pub const KIND: &str = "single-session";

/// The key of the cluster-wide salt in the shared store.
const SALT_KEY: &str = "single-session.salt";

/// How long a gateway uses its copy of the salt before checking the store again.
const SALT_RECHECK: Duration = Duration::from_secs(60);

/// How often the salt is rewritten so a bucket's maximum age never removes it.
const SALT_REFRESH: Duration = Duration::from_secs(3600);

/// The most sessions remembered per user (active ones; more are kicked).
const MAX_TRACKED: usize = 16;

/// Attempts at a compare-and-swap update of a user's session list.
const CAS_ATTEMPTS: usize = 8;

/// The longest user id kept.
const MAX_USER: usize = 128;

/// The longest session cookie value hashed; longer values are not sessions we issued.
const MAX_SESSION_ID: usize = 4096;

/// What to do when a user logs in while holding `max_sessions` sessions already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicatePolicy {
    /// The older session's next request is refused and sent to the "logged in elsewhere"
    /// notice; the new login succeeds. One session per user.
    #[default]
    KickOld,
    /// The new login is refused (its `Set-Cookie` never reaches the client). One session
    /// per user.
    RejectNew,
    /// Up to `max_sessions` sessions; a login beyond that kicks the oldest.
    AllowN,
}

/// What to do with a session used from another device than it was created on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MismatchAction {
    /// Refuse the request with 403 and revoke the session (the cookie is compromised).
    #[default]
    Block,
    /// Send the client to `step_up_path` for additional authentication.
    StepUp,
    /// Only the event.
    Log,
}

/// What to do when a session's client IP prefix changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum IpChangeAction {
    /// An event (mobile networks change addresses), and the new prefix is remembered.
    #[default]
    Log,
    /// Treat it like a device mismatch (`on_binding_mismatch`).
    Mismatch,
    /// Nothing.
    Ignore,
}

/// `single-session`'s configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SingleSessionConfig {
    /// The application's session cookie.
    pub session_cookie: String,
    /// The login service's path (exact); a `POST` there answered with a status below 400
    /// and a `Set-Cookie` of `session_cookie` is a successful login.
    pub login_path: String,
    /// The form or JSON field of the login request holding the user id.
    pub user_param: Option<String>,
    /// A response header by which the application names the logged-in user (removed
    /// before the response reaches the client); preferred over `user_param`.
    pub user_response_header: Option<String>,
    /// Paths whose request ends the session (the `Set-Cookie` deleting the session cookie
    /// is recognised too).
    pub logout_paths: Vec<String>,
    /// The policy for a second login.
    pub on_duplicate: DuplicatePolicy,
    /// Sessions a user may hold with `allow-n`.
    pub max_sessions: usize,
    /// What a session used from another device gets.
    pub on_binding_mismatch: MismatchAction,
    /// What an IP prefix change gets.
    pub on_ip_change: IpChangeAction,
    /// Bits of an IPv4 address that make its prefix.
    pub ipv4_prefix: u8,
    /// Bits of an IPv6 address that make its prefix.
    pub ipv6_prefix: u8,
    /// Seconds without a request after which the session has expired.
    pub idle_timeout_secs: u64,
    /// Seconds after login after which the session has expired, however active.
    pub absolute_timeout_secs: u64,
    /// How a refused session reaches its notice: `page` (the gateway's own page),
    /// `redirect` or `forward` (to the paths below).
    pub notice: NoticeVia,
    /// "You were logged out because you logged in elsewhere."
    pub kicked_path: String,
    /// "Your session has expired; please log in again."
    pub expired_path: String,
    /// Additional authentication, for `on_binding_mismatch = "step-up"`.
    pub step_up_path: String,
    /// Separates the sessions of unrelated services sharing one store: `[A-Za-z0-9_-]`.
    pub namespace: String,
}

impl Default for SingleSessionConfig {
    fn default() -> Self {
        SingleSessionConfig {
            session_cookie: "JSESSIONID".into(),
            login_path: "/login".into(),
            user_param: Some("username".into()),
            user_response_header: None,
            logout_paths: vec!["/logout".into()],
            on_duplicate: DuplicatePolicy::KickOld,
            max_sessions: 2,
            on_binding_mismatch: MismatchAction::Block,
            on_ip_change: IpChangeAction::Log,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            idle_timeout_secs: 600,
            absolute_timeout_secs: 12 * 3600,
            notice: NoticeVia::Page,
            kicked_path: "/session/duplicate-login".into(),
            expired_path: "/session/expired".into(),
            step_up_path: "/auth/step-up".into(),
            namespace: "default".into(),
        }
    }
}

/// A session's state as stored (key `single-session.<ns>.s.<salted hash of the id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SessionRecord {
    /// The user id.
    user: String,
    /// Salted hash of the device binding (device id, `User-Agent`).
    fp: String,
    /// The client's IP prefix last seen.
    ip: String,
    /// Login time, Unix seconds.
    created: i64,
    /// Last request, Unix seconds (updated at most every `touch_interval`).
    seen: i64,
    /// Where the session stands.
    state: SessionState,
    /// The gateway instance that registered it.
    via: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SessionState {
    Active,
    Kicked,
    LoggedOut,
    Expired,
    Revoked,
}

/// A user's sessions (key `single-session.<ns>.u.<salted hash of the user id>`): session
/// hashes with their login times, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UserSessions {
    sessions: Vec<(String, i64)>,
}

#[derive(Debug)]
struct CachedSalt {
    salt: [u8; 32],
    checked: Instant,
    refreshed: Instant,
}

/// The `single-session` filter.
#[derive(Debug)]
pub struct SingleSessionFilter {
    cfg: SingleSessionConfig,
    user_header: Option<HeaderName>,
    salt: Mutex<Option<CachedSalt>>,
}

/// Builds the filter from its instance.
pub fn build(instance: &FilterInstance, _policy: &PolicySnapshot) -> BuildResult {
    let cfg: SingleSessionConfig = typed_config(instance)?;
    Ok(Arc::new(SingleSessionFilter::new(cfg)?))
}

fn check_path(field: &str, path: &str, problems: &mut Vec<ConfigProblem>) {
    if !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err() {
        problems.push(ConfigProblem::new(
            format!("config.{field}"),
            format!("{path:?} must be a URL path starting with '/', e.g. \"/login\""),
        ));
    }
}

impl SingleSessionFilter {
    /// The filter with this configuration, or every problem with it.
    pub fn new(cfg: SingleSessionConfig) -> Result<SingleSessionFilter, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        if cfg.session_cookie.is_empty()
            || !cfg
                .session_cookie
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            problems.push(ConfigProblem::new(
                "config.session_cookie",
                format!("{:?} is not a cookie name", cfg.session_cookie),
            ));
        }
        check_path("login_path", &cfg.login_path, &mut problems);
        for (i, p) in cfg.logout_paths.iter().enumerate() {
            check_path(&format!("logout_paths[{i}]"), p, &mut problems);
        }
        check_path("kicked_path", &cfg.kicked_path, &mut problems);
        check_path("expired_path", &cfg.expired_path, &mut problems);
        check_path("step_up_path", &cfg.step_up_path, &mut problems);
        let user_header = match &cfg.user_response_header {
            Some(h) => match HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push(ConfigProblem::new(
                        "config.user_response_header",
                        format!("{h:?} is not a header name"),
                    ));
                    None
                }
            },
            None => None,
        };
        if cfg.user_param.is_none() && cfg.user_response_header.is_none() {
            problems.push(ConfigProblem::new(
                "config",
                "no way to tell who logged in: set user_param (the login form's user field) \
                 or user_response_header",
            ));
        }
        if cfg.on_duplicate == DuplicatePolicy::AllowN
            && !(2..=MAX_TRACKED).contains(&cfg.max_sessions)
        {
            problems.push(ConfigProblem::new(
                "config.max_sessions",
                format!(
                    "{} sessions with allow-n; use 2 to {MAX_TRACKED} (kick-old allows one)",
                    cfg.max_sessions
                ),
            ));
        }
        if cfg.idle_timeout_secs == 0 || cfg.idle_timeout_secs > cfg.absolute_timeout_secs {
            problems.push(ConfigProblem::new(
                "config.idle_timeout_secs",
                format!(
                    "{} s must be above 0 and at most absolute_timeout_secs ({} s)",
                    cfg.idle_timeout_secs, cfg.absolute_timeout_secs
                ),
            ));
        }
        if cfg.absolute_timeout_secs > 23 * 3600 {
            problems.push(ConfigProblem::new(
                "config.absolute_timeout_secs",
                format!(
                    "{} s is longer than the shared store keeps entries (23 h at most)",
                    cfg.absolute_timeout_secs
                ),
            ));
        }
        if cfg.ipv4_prefix > 32 || cfg.ipv6_prefix > 128 {
            problems.push(ConfigProblem::new(
                "config.ipv4_prefix",
                "prefix lengths are at most 32 (IPv4) and 128 (IPv6)",
            ));
        }
        if cfg.namespace.is_empty()
            || cfg.namespace.len() > 32
            || !cfg
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(ConfigProblem::new(
                "config.namespace",
                format!("{:?}: use 1 to 32 of [A-Za-z0-9_-]", cfg.namespace),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(SingleSessionFilter {
            cfg,
            user_header,
            salt: Mutex::new(None),
        })
    }

    fn session_key(&self, hash: &str) -> String {
        format!("single-session.{}.s.{hash}", self.cfg.namespace)
    }

    fn user_key(&self, hash: &str) -> String {
        format!("single-session.{}.u.{hash}", self.cfg.namespace)
    }

    fn record_ttl(&self) -> Duration {
        Duration::from_secs(self.cfg.absolute_timeout_secs + 60)
    }

    /// Seconds between writes of a session's last-seen time.
    fn touch_interval(&self) -> i64 {
        i64::try_from((self.cfg.idle_timeout_secs / 10).clamp(1, 30)).unwrap_or(30)
    }

    /// The cluster's salt: read from (or created in) the shared store, cached, checked
    /// again every minute, and rewritten hourly so the store's maximum age never drops it.
    async fn salt(&self, kv: &dyn KvStore) -> Result<[u8; 32], FilterError> {
        let now = Instant::now();
        let cached = {
            let guard = self.salt.lock().unwrap_or_else(PoisonError::into_inner);
            guard.as_ref().map(|c| (c.salt, c.checked, c.refreshed))
        };
        if let Some((salt, checked, _)) = cached
            && now.duration_since(checked) < SALT_RECHECK
        {
            return Ok(salt);
        }
        let stored = kv.get(SALT_KEY).await.map_err(kv_error)?;
        let (salt, refreshed) = match stored {
            Some(entry) => {
                let salt: [u8; 32] = entry.value.as_slice().try_into().map_err(|_| {
                    FilterError::new("the shared store's single-session salt is not 32 bytes")
                })?;
                let mut refreshed = cached.map_or(now, |c| c.2);
                if now.duration_since(refreshed) >= SALT_REFRESH {
                    // Rewrite the same value; losing the race to another gateway is fine.
                    let _ = kv
                        .compare_and_swap(SALT_KEY, entry.revision, &salt, None)
                        .await;
                    refreshed = now;
                }
                (salt, refreshed)
            }
            None => {
                // Absent: keep ours if we had one (so sessions stay recognisable), else a
                // new random one. Whoever creates it first wins.
                let mut salt = [0u8; 32];
                match cached {
                    Some((s, _, _)) => salt = s,
                    None => getrandom::fill(&mut salt).map_err(|e| {
                        FilterError::new(format!("no randomness for the session salt: {e}"))
                    })?,
                }
                match kv.create(SALT_KEY, &salt, None).await {
                    Ok(_) => (salt, now),
                    Err(BusError::KeyExists { .. }) => {
                        let entry = kv.get(SALT_KEY).await.map_err(kv_error)?.ok_or_else(|| {
                            FilterError::new("the single-session salt vanished while read")
                        })?;
                        let salt = entry.value.as_slice().try_into().map_err(|_| {
                            FilterError::new(
                                "the shared store's single-session salt is not 32 bytes",
                            )
                        })?;
                        (salt, now)
                    }
                    Err(e) => return Err(kv_error(e)),
                }
            }
        };
        *self.salt.lock().unwrap_or_else(PoisonError::into_inner) = Some(CachedSalt {
            salt,
            checked: now,
            refreshed,
        });
        Ok(salt)
    }

    fn notice(
        &self,
        path: &str,
        html: &'static str,
        status: StatusCode,
        reason: Reason,
    ) -> Decision {
        match self.cfg.notice {
            NoticeVia::Page => Decision::Respond(LocalResponse::html(status, html), reason),
            NoticeVia::Redirect => Decision::Notice(
                Notice::Redirect {
                    location: path.to_owned(),
                },
                reason,
            ),
            NoticeVia::Forward => Decision::Notice(
                Notice::Forward {
                    path: path.to_owned(),
                },
                reason,
            ),
        }
    }

    fn kicked_notice(&self, reason: Reason) -> Decision {
        self.notice(
            &self.cfg.kicked_path,
            KICKED_HTML,
            StatusCode::CONFLICT,
            reason,
        )
    }

    fn expired_notice(&self, reason: Reason) -> Decision {
        self.notice(
            &self.cfg.expired_path,
            EXPIRED_HTML,
            StatusCode::UNAUTHORIZED,
            reason,
        )
    }

    fn is_notice_path(&self, path: &str) -> bool {
        path == self.cfg.kicked_path
            || path == self.cfg.expired_path
            || path == self.cfg.step_up_path
    }

    fn ip_prefix(&self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.cfg.ipv4_prefix))
                    .unwrap_or(0);
                format!(
                    "{}/{}",
                    std::net::Ipv4Addr::from(bits & mask),
                    self.cfg.ipv4_prefix
                )
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.cfg.ipv6_prefix))
                    .unwrap_or(0);
                format!(
                    "{}/{}",
                    std::net::Ipv6Addr::from(bits & mask),
                    self.cfg.ipv6_prefix
                )
            }
        }
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(kv_error)`
fn kv_error(e: BusError) -> FilterError {
    FilterError::new(format!("shared session state unavailable: {e}"))
}

/// Lower-case hex SHA-256 of the salt, a domain tag and the value.
fn salted_hash(salt: &[u8; 32], domain: &str, value: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(domain.as_bytes());
    h.update([0u8]);
    h.update(value);
    let digest = h.finalize();
    let mut out = String::with_capacity(64);
    for b in &digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// The device binding of a request: the device id `device-info` found and the
/// `User-Agent`.
fn binding_input(ctx: &FilterContext<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(ctx.attributes.device_id().unwrap_or_default().as_bytes());
    v.push(0);
    v.extend_from_slice(
        ctx.request
            .header("user-agent")
            .unwrap_or_default()
            .as_bytes(),
    );
    v
}

/// What a `Set-Cookie` does to the cookie `name`: `Some(Some(value))` sets it,
/// `Some(None)` deletes it (empty value, `Max-Age=0` or less), `None` leaves it alone.
fn session_cookie_change<'a>(set_cookie: &'a str, name: &str) -> Option<Option<&'a str>> {
    let mut parts = set_cookie.split(';');
    let (n, v) = parts.next()?.split_once('=')?;
    if n.trim() != name {
        return None;
    }
    let v = v.trim().trim_matches('"');
    let deleted = v.is_empty()
        || parts.any(|a| {
            a.trim().split_once('=').is_some_and(|(k, val)| {
                k.trim().eq_ignore_ascii_case("max-age")
                    && val.trim().parse::<i64>().is_ok_and(|s| s <= 0)
            })
        });
    Some(if deleted { None } else { Some(v) })
}

/// A short, non-reversible reference to a session for events (8 hex digits of its salted
/// hash): enough to correlate events, useless for replaying.
fn session_ref(hash: &str) -> &str {
    hash.get(..8).unwrap_or(hash)
}

const KICKED_HTML: &str = "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>중복 로그인 안내</title></head>\n<body><h1>다른 곳에서 로그인되어 현재 세션이 종료되었습니다</h1><p>You were logged out because you logged in elsewhere. If this was not you, change your password and contact customer support.</p></body></html>\n";

const EXPIRED_HTML: &str = "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>세션 만료</title></head>\n<body><h1>세션이 만료되었습니다</h1><p>Your session has ended. Please log in again.</p></body></html>\n";

const REJECTED_HTML: &str = "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>중복 로그인 거부</title></head>\n<body><h1>이미 다른 곳에서 로그인되어 있습니다</h1><p>You are already logged in elsewhere. Log out there first, or contact customer support.</p></body></html>\n";

const BLOCKED_HTML: &str = "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>세션 보호</title></head>\n<body><h1>다른 기기에서 사용된 세션이 차단되었습니다</h1><p>This session was used from another device and has been ended for your protection. Please log in again.</p></body></html>\n";

impl SingleSessionFilter {
    async fn set_state(
        &self,
        kv: &dyn KvStore,
        key: &str,
        mut record: SessionRecord,
        state: SessionState,
    ) -> Result<(), FilterError> {
        record.state = state;
        let value = serde_json::to_vec(&record).map_err(|e| FilterError::new(e.to_string()))?;
        kv.put(key, &value, Some(self.record_ttl()))
            .await
            .map_err(kv_error)?;
        Ok(())
    }

    async fn read_record(
        kv: &dyn KvStore,
        key: &str,
    ) -> Result<Option<(SessionRecord, u64)>, FilterError> {
        let Some(entry) = kv.get(key).await.map_err(kv_error)? else {
            return Ok(None);
        };
        // A record we cannot read is treated as absent (and overwritten at next login).
        Ok(serde_json::from_slice(&entry.value)
            .ok()
            .map(|r| (r, entry.revision)))
    }

    /// Removes a session from its user's list (logout, expiry, revocation).
    async fn forget(
        &self,
        kv: &dyn KvStore,
        salt: &[u8; 32],
        user: &str,
        hash: &str,
    ) -> Result<(), FilterError> {
        let key = self.user_key(&salted_hash(salt, "user", user.as_bytes()));
        for _ in 0..CAS_ATTEMPTS {
            let Some(entry) = kv.get(&key).await.map_err(kv_error)? else {
                return Ok(());
            };
            let mut list: UserSessions = serde_json::from_slice(&entry.value).unwrap_or_default();
            list.sessions.retain(|(h, _)| h != hash);
            let value = serde_json::to_vec(&list).map_err(|e| FilterError::new(e.to_string()))?;
            match kv
                .compare_and_swap(&key, entry.revision, &value, Some(self.record_ttl()))
                .await
            {
                Ok(_) => return Ok(()),
                Err(BusError::RevisionMismatch { .. }) => {}
                Err(e) => return Err(kv_error(e)),
            }
        }
        Ok(())
    }

    /// Ends a session in `state` and drops it from its user's list.
    async fn end(
        &self,
        kv: &dyn KvStore,
        salt: &[u8; 32],
        hash: &str,
        record: SessionRecord,
        state: SessionState,
    ) -> Result<(), FilterError> {
        let user = record.user.clone();
        self.set_state(kv, &self.session_key(hash), record, state)
            .await?;
        self.forget(kv, salt, &user, hash).await
    }

    fn session_event(
        ctx: &FilterContext<'_>,
        action: &str,
        hash: &str,
        severity: Severity,
    ) -> haetae_core::Event {
        ctx.event(action)
            .category(EventCategory::Session)
            .severity(severity)
            .label("session_ref", session_ref(hash))
    }

    /// Registers a new session for `user` and applies the duplicate-login policy. Returns
    /// the refusal when the new login is rejected.
    async fn register(
        &self,
        ctx: &FilterContext<'_>,
        kv: &dyn KvStore,
        salt: &[u8; 32],
        user: &str,
        session_id: &str,
    ) -> Result<Option<Decision>, FilterError> {
        let now = ctx.clock().now_utc().unix_timestamp();
        let hash = salted_hash(salt, "session", session_id.as_bytes());
        let user_key = self.user_key(&salted_hash(salt, "user", user.as_bytes()));
        let limit = match self.cfg.on_duplicate {
            DuplicatePolicy::AllowN => self.cfg.max_sessions,
            DuplicatePolicy::KickOld | DuplicatePolicy::RejectNew => 1,
        };
        for _ in 0..CAS_ATTEMPTS {
            let entry = kv.get(&user_key).await.map_err(kv_error)?;
            let mut list: UserSessions = entry
                .as_ref()
                .and_then(|e| serde_json::from_slice(&e.value).ok())
                .unwrap_or_default();
            // Keep only sessions that are still active (and not this one).
            let mut active = Vec::new();
            for (h, created) in list.sessions.drain(..).take(MAX_TRACKED * 2) {
                if h == hash {
                    continue;
                }
                if let Some((r, _)) = Self::read_record(kv, &self.session_key(&h)).await?
                    && r.state == SessionState::Active
                {
                    active.push((h, created, r));
                }
            }
            active.sort_by_key(|(_, created, _)| *created);
            if self.cfg.on_duplicate == DuplicatePolicy::RejectNew && active.len() >= limit {
                ctx.emit(
                    Self::session_event(
                        ctx,
                        "single-session.login_rejected",
                        &hash,
                        Severity::Medium,
                    )
                    .user_id(user)
                    .kind(EventKind::Alert)
                    .label("sessions", active.len().to_string()),
                );
                return Ok(Some(Decision::Respond(
                    LocalResponse::html(StatusCode::CONFLICT, REJECTED_HTML),
                    Reason::new(
                        "duplicate-login-rejected",
                        Severity::Medium,
                        format!("second login of user {user} refused: already logged in"),
                    ),
                )));
            }
            let excess = (active.len() + 1).saturating_sub(limit);
            let kicked: Vec<_> = active.drain(..excess).collect();
            let mut sessions: Vec<(String, i64)> =
                active.iter().map(|(h, c, _)| (h.clone(), *c)).collect();
            sessions.push((hash.clone(), now));
            let value = serde_json::to_vec(&UserSessions { sessions })
                .map_err(|e| FilterError::new(e.to_string()))?;
            let written = match entry {
                Some(e) => {
                    kv.compare_and_swap(&user_key, e.revision, &value, Some(self.record_ttl()))
                        .await
                }
                None => kv.create(&user_key, &value, Some(self.record_ttl())).await,
            };
            match written {
                Ok(_) => {}
                Err(BusError::RevisionMismatch { .. } | BusError::KeyExists { .. }) => continue,
                Err(e) => return Err(kv_error(e)),
            }
            let record = SessionRecord {
                user: user.to_owned(),
                fp: salted_hash(salt, "binding", &binding_input(ctx)),
                ip: self.ip_prefix(ctx.request.client_ip()),
                created: now,
                seen: now,
                state: SessionState::Active,
                via: ctx.services.instance.to_string(),
            };
            let value = serde_json::to_vec(&record).map_err(|e| FilterError::new(e.to_string()))?;
            kv.put(&self.session_key(&hash), &value, Some(self.record_ttl()))
                .await
                .map_err(kv_error)?;
            for (old, _, r) in kicked {
                self.set_state(kv, &self.session_key(&old), r.clone(), SessionState::Kicked)
                    .await?;
                ctx.emit(
                    Self::session_event(ctx, "single-session.kicked", &old, Severity::Medium)
                        .user_id(user)
                        .kind(EventKind::Alert)
                        .label("kicked_by", session_ref(&hash).to_owned())
                        .label("registered_via", r.via)
                        .message(format!(
                            "user {user} logged in again; the older session was ended"
                        )),
                );
            }
            ctx.emit(
                Self::session_event(ctx, "single-session.login", &hash, Severity::Info)
                    .user_id(user)
                    .label("policy", format!("{:?}", self.cfg.on_duplicate)),
            );
            return Ok(None);
        }
        Err(FilterError::new(format!(
            "the session list of user {user} kept changing; gave up after {CAS_ATTEMPTS} attempts"
        )))
    }

    /// The checks on a request carrying a registered session.
    async fn check(
        &self,
        ctx: &mut FilterContext<'_>,
        kv: &dyn KvStore,
        salt: &[u8; 32],
        session_id: &str,
    ) -> PhaseResult {
        let hash = salted_hash(salt, "session", session_id.as_bytes());
        let key = self.session_key(&hash);
        let Some((mut record, revision)) = Self::read_record(kv, &key).await? else {
            // Not a session this gateway cluster saw log in (anonymous, or from before).
            return Ok(Decision::Continue);
        };
        if ctx.attributes.user_id.is_none() {
            ctx.attributes.user_id = Some(record.user.clone());
        }
        let enforce = ctx.mode() == haetae_core::FilterMode::Enforce;
        let user = record.user.clone();
        match record.state {
            SessionState::Active => {}
            SessionState::Kicked => {
                return Ok(self.kicked_notice(Reason::new(
                    "session-kicked",
                    Severity::Medium,
                    format!("session of user {user} ended by a later login elsewhere"),
                )));
            }
            SessionState::LoggedOut | SessionState::Expired => {
                return Ok(self.expired_notice(Reason::new(
                    "session-ended",
                    Severity::Low,
                    format!("session of user {user} has ended ({:?})", record.state),
                )));
            }
            SessionState::Revoked => {
                return Ok(Decision::Respond(
                    LocalResponse::html(StatusCode::FORBIDDEN, BLOCKED_HTML),
                    Reason::new(
                        "session-revoked",
                        Severity::High,
                        format!("session of user {user} was revoked after use from another device"),
                    ),
                ));
            }
        }
        let now = ctx.clock().now_utc().unix_timestamp();
        let absolute = i64::try_from(self.cfg.absolute_timeout_secs).unwrap_or(i64::MAX);
        let idle = i64::try_from(self.cfg.idle_timeout_secs).unwrap_or(i64::MAX);
        let timed_out = if now - record.created > absolute {
            Some("absolute")
        } else if now - record.seen > idle {
            Some("idle")
        } else {
            None
        };
        if let Some(which) = timed_out {
            if enforce {
                self.end(kv, salt, &hash, record, SessionState::Expired)
                    .await?;
            }
            ctx.emit(
                Self::session_event(ctx, "single-session.expired", &hash, Severity::Low)
                    .label("timeout", which),
            );
            return Ok(self.expired_notice(Reason::new(
                "session-timeout",
                Severity::Low,
                format!("session of user {user} passed its {which} timeout"),
            )));
        }
        // Device binding, compared in constant time.
        let fp = salted_hash(salt, "binding", &binding_input(ctx));
        let mut mismatch = !bool::from(fp.as_bytes().ct_eq(record.fp.as_bytes()));
        let prefix = self.ip_prefix(ctx.request.client_ip());
        let mut changed = false;
        if prefix != record.ip {
            match self.cfg.on_ip_change {
                IpChangeAction::Ignore => {}
                IpChangeAction::Mismatch => mismatch = true,
                IpChangeAction::Log => {
                    ctx.emit(
                        Self::session_event(ctx, "single-session.ip_changed", &hash, Severity::Low)
                            .label("previous_prefix", record.ip.clone())
                            .label("prefix", prefix.clone()),
                    );
                    record.ip = prefix;
                    changed = true;
                }
            }
        }
        if mismatch {
            let reason = Reason::new(
                "session-binding-mismatch",
                Severity::High,
                format!("session of user {user} used from another device or network"),
            );
            ctx.emit(
                Self::session_event(
                    ctx,
                    "single-session.binding_mismatch",
                    &hash,
                    Severity::High,
                )
                .kind(EventKind::Alert)
                .label("action", format!("{:?}", self.cfg.on_binding_mismatch)),
            );
            return Ok(match self.cfg.on_binding_mismatch {
                MismatchAction::Block => {
                    if enforce {
                        self.end(kv, salt, &hash, record, SessionState::Revoked)
                            .await?;
                    }
                    Decision::Respond(
                        LocalResponse::html(StatusCode::FORBIDDEN, BLOCKED_HTML),
                        reason,
                    )
                }
                MismatchAction::StepUp => Decision::Notice(
                    Notice::Redirect {
                        location: self.cfg.step_up_path.clone(),
                    },
                    reason,
                ),
                MismatchAction::Log => Decision::Continue,
            });
        }
        if self
            .cfg
            .logout_paths
            .iter()
            .any(|p| p == ctx.request.path())
        {
            self.end(kv, salt, &hash, record, SessionState::LoggedOut)
                .await?;
            ctx.emit(Self::session_event(
                ctx,
                "single-session.logout",
                &hash,
                Severity::Info,
            ));
            return Ok(Decision::Continue);
        }
        if changed || now - record.seen >= self.touch_interval() {
            record.seen = now;
            let value = serde_json::to_vec(&record).map_err(|e| FilterError::new(e.to_string()))?;
            // Lost races are fine: whoever won kicked, ended or touched it.
            match kv
                .compare_and_swap(&key, revision, &value, Some(self.record_ttl()))
                .await
            {
                Ok(_) | Err(BusError::RevisionMismatch { .. }) => {}
                Err(e) => return Err(kv_error(e)),
            }
        }
        Ok(Decision::Continue)
    }
}

#[async_trait::async_trait]
impl SecurityFilter for SingleSessionFilter {
    fn phases(&self) -> Phases {
        Phases {
            request_headers: true,
            request_body: self.cfg.user_param.as_ref().map(|_| 16 * 1024),
            response_headers: true,
            ..Phases::default()
        }
    }

    async fn on_request_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        if self.is_notice_path(ctx.request.path()) {
            return Ok(Decision::Continue);
        }
        let Some(session_id) = ctx
            .request
            .cookie(&self.cfg.session_cookie)
            .filter(|v| !v.is_empty() && v.len() <= MAX_SESSION_ID)
            .map(str::to_owned)
        else {
            return Ok(Decision::Continue);
        };
        let kv = ctx.kv().cloned().ok_or_else(|| {
            FilterError::new(
                "single-session needs shared state: run the gateway with a bus (haetae up, or \
                 [bus] in the configuration)",
            )
        })?;
        let salt = self.salt(&*kv).await?;
        self.check(ctx, &*kv, &salt, &session_id).await
    }

    async fn on_request_body(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        if ctx.request.method() == Method::POST
            && ctx.request.path() == self.cfg.login_path
            && let Some(field) = &self.cfg.user_param
            && let Some(user) = ctx.request.param(field)
        {
            let user = user.trim();
            if !user.is_empty() && user.len() <= MAX_USER {
                ctx.attributes.set("single-session.login_user", user);
            }
        }
        Ok(Decision::Continue)
    }

    async fn on_response_headers(&self, ctx: &mut FilterContext<'_>) -> PhaseResult {
        let Some(response) = ctx.response else {
            return Ok(Decision::Continue);
        };
        let mut mods = Vec::new();
        let named_user = self.user_header.as_ref().and_then(|h| {
            let v = response.headers().get(h)?;
            mods.push(Modification::RemoveHeader(h.clone()));
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|u| !u.is_empty() && u.len() <= MAX_USER)
                .map(str::to_owned)
        });
        let mut set = None;
        let mut deleted = false;
        for v in response.headers().get_all(http::header::SET_COOKIE) {
            let Ok(text) = v.to_str() else { continue };
            match session_cookie_change(text, &self.cfg.session_cookie) {
                Some(Some(id)) if id.len() <= MAX_SESSION_ID => set = Some(id.to_owned()),
                Some(None) => deleted = true,
                _ => {}
            }
        }
        let is_login = ctx.request.method() == Method::POST
            && ctx.request.path() == self.cfg.login_path
            && response.status().as_u16() < 400;
        if is_login && let Some(session_id) = set {
            let user = named_user
                .or_else(|| {
                    ctx.attributes
                        .get("single-session.login_user")
                        .map(str::to_owned)
                })
                .or_else(|| ctx.attributes.user_id.clone());
            let Some(user) = user else {
                ctx.emit(
                    ctx.event("single-session.login_unidentified")
                        .category(EventCategory::Session)
                        .severity(Severity::Low)
                        .message("a login succeeded but no user id was found; session not tracked"),
                );
                return Ok(Decision::Modify(mods));
            };
            let kv = ctx.kv().cloned().ok_or_else(|| {
                FilterError::new("single-session needs shared state: run the gateway with a bus")
            })?;
            let salt = self.salt(&*kv).await?;
            ctx.attributes.user_id = Some(user.clone());
            if let Some(refusal) = self.register(ctx, &*kv, &salt, &user, &session_id).await? {
                return Ok(refusal);
            }
        } else if deleted
            && let Some(session_id) = ctx
                .request
                .cookie(&self.cfg.session_cookie)
                .filter(|v| !v.is_empty() && v.len() <= MAX_SESSION_ID)
                .map(str::to_owned)
            && let Some(kv) = ctx.kv().cloned()
        {
            // The application deleted its session cookie: a logout.
            let salt = self.salt(&*kv).await?;
            let hash = salted_hash(&salt, "session", session_id.as_bytes());
            if let Some((record, _)) = Self::read_record(&*kv, &self.session_key(&hash)).await?
                && record.state == SessionState::Active
            {
                self.end(&*kv, &salt, &hash, record, SessionState::LoggedOut)
                    .await?;
                ctx.emit(Self::session_event(
                    ctx,
                    "single-session.logout",
                    &hash,
                    Severity::Info,
                ));
            }
        }
        Ok(if mods.is_empty() {
            Decision::Continue
        } else {
            Decision::Modify(mods)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_sets_or_deletes_the_session_cookie() {
        assert_eq!(
            session_cookie_change("JSESSIONID=abc; Path=/; HttpOnly", "JSESSIONID"),
            Some(Some("abc"))
        );
        assert_eq!(
            session_cookie_change("JSESSIONID=; Path=/", "JSESSIONID"),
            Some(None)
        );
        assert_eq!(
            session_cookie_change("JSESSIONID=abc; Max-Age=0", "JSESSIONID"),
            Some(None)
        );
        assert_eq!(session_cookie_change("other=abc", "JSESSIONID"), None);
        assert_eq!(session_cookie_change("garbage", "JSESSIONID"), None);
    }

    #[test]
    fn hashes_depend_on_salt_domain_and_value() {
        let a = salted_hash(&[1; 32], "session", b"id");
        assert_eq!(a.len(), 64);
        assert_ne!(a, salted_hash(&[2; 32], "session", b"id"));
        assert_ne!(a, salted_hash(&[1; 32], "user", b"id"));
        assert_ne!(a, salted_hash(&[1; 32], "session", b"id2"));
        assert!(!a.contains("id"));
    }

    #[test]
    fn ip_prefixes_mask_the_host_part() {
        let f = SingleSessionFilter::new(SingleSessionConfig::default()).unwrap();
        assert_eq!(
            f.ip_prefix("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            f.ip_prefix("2001:db8:1:2::5".parse().unwrap()),
            "2001:db8:1::/48"
        );
    }

    #[test]
    fn inconsistent_settings_are_config_errors() {
        let err = SingleSessionFilter::new(SingleSessionConfig {
            session_cookie: "a b".into(),
            user_param: None,
            on_duplicate: DuplicatePolicy::AllowN,
            max_sessions: 1,
            idle_timeout_secs: 0,
            namespace: "has space".into(),
            ..SingleSessionConfig::default()
        })
        .unwrap_err();
        let paths: Vec<&str> = err.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "config.session_cookie",
                "config",
                "config.max_sessions",
                "config.idle_timeout_secs",
                "config.namespace"
            ]
        );
    }
}
