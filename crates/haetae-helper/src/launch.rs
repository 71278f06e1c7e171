//! What the customer's page hands the helper when it offers it: the Center's origin (the only
//! page allowed to pair), a one-time launch ticket, the remote-support session it is for, the
//! Center's policy key, and the ticket's expiry.
//!
//! The launch file is JSON, read once and deleted at once (so the ticket does not stay on
//! disk, and it is never on the command line, where every local process could read it):
//!
//! ```json
//! {"origin":"https://support.bank.example","ticket":"<64 hex digits>",
//!  "session":"<32 hex digits>","policy_key":"<64 hex digits>","expires":1765000000}
//! ```

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use haetae_remote::channel::hash_parts;
use haetae_remote::protocol::SessionId;
use zeroize::Zeroizing;

/// The longest a launch ticket may live (seconds): the page offers the helper when the agent
/// asks for control, and the customer starts it within minutes.
pub const MAX_TICKET_LIFE_SECS: u64 = 15 * 60;
/// Failed pairing proofs before the ticket is burned and the helper ends.
pub const MAX_PAIRING_FAILURES: u8 = 3;
/// Largest launch file accepted (bytes).
pub const MAX_LAUNCH_FILE: u64 = 4096;

/// A launch file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The file could not be read or removed.
    #[error("launch file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// Not the expected JSON.
    #[error("launch file: {0}")]
    Format(String),
    /// A field is wrong.
    #[error("launch file: field `{field}`: {problem}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLaunch {
    origin: String,
    ticket: String,
    session: String,
    policy_key: String,
    expires: u64,
}

/// A checked launch configuration.
pub struct Launch {
    /// The exact `Origin` the pairing page must send (`scheme://host[:port]`).
    pub origin: String,
    /// The one-time ticket.
    pub ticket: Ticket,
    /// The relay session the signed policy must name.
    pub session: SessionId,
    /// The Control Center's Ed25519 policy key.
    pub policy_key: [u8; 32],
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("origin", &self.origin)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Unix seconds now.
#[must_use]
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hex_field<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], LaunchError> {
    let mut out = [0u8; N];
    if text.len() != 2 * N || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(LaunchError::Field {
            field,
            problem: "expected lower-case hex digits of the right length",
        });
    }
    hex::decode_to_slice(text, &mut out).map_err(|_| LaunchError::Field {
        field,
        problem: "expected lower-case hex digits of the right length",
    })?;
    Ok(out)
}

/// Checks that `origin` is what a browser sends in `Origin`: `http` or `https`, a host, an
/// optional port, nothing else.
fn origin_ok(origin: &str) -> bool {
    let rest = if let Some(r) = origin.strip_prefix("https://") {
        r
    } else if let Some(r) = origin.strip_prefix("http://") {
        r
    } else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.[]:".contains(&b));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && !p.starts_with('0')
    });
    host_ok && port_ok
}

impl Launch {
    /// Parses and checks a launch document at time `now` (unix seconds).
    ///
    /// # Errors
    /// [`LaunchError::Format`] or [`LaunchError::Field`] naming the field.
    pub fn parse(text: &str, now: u64) -> Result<Launch, LaunchError> {
        let raw: RawLaunch =
            serde_json::from_str(text).map_err(|e| LaunchError::Format(e.to_string()))?;
        if !origin_ok(&raw.origin) {
            return Err(LaunchError::Field {
                field: "origin",
                problem: "expected http(s)://host[:port] in lower case, with no path",
            });
        }
        let secret = Zeroizing::new(hex_field::<32>("ticket", &raw.ticket)?);
        if raw.expires <= now {
            return Err(LaunchError::Field {
                field: "expires",
                problem: "the ticket has already expired",
            });
        }
        if raw.expires - now > MAX_TICKET_LIFE_SECS {
            return Err(LaunchError::Field {
                field: "expires",
                problem: "a launch ticket lives at most 15 minutes",
            });
        }
        Ok(Launch {
            origin: raw.origin,
            ticket: Ticket::new(secret, raw.expires),
            session: SessionId(hex_field::<16>("session", &raw.session)?),
            policy_key: hex_field::<32>("policy_key", &raw.policy_key)?,
        })
    }

    /// Reads the launch file, deletes it, and parses it.
    ///
    /// # Errors
    /// [`LaunchError::Io`] when it cannot be read or removed, or a parse error.
    pub fn from_file(path: &Path) -> Result<Launch, LaunchError> {
        let io = |source| LaunchError::Io {
            path: path.display().to_string(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_LAUNCH_FILE {
            return Err(LaunchError::Format(format!(
                "{len} bytes; a launch file is at most {MAX_LAUNCH_FILE}"
            )));
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        std::fs::remove_file(path).map_err(io)?;
        Launch::parse(&text, now_unix())
    }
}

/// The state of the launch ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    /// Not used yet.
    Fresh,
    /// A page paired with it.
    Used,
    /// Too many failed proofs.
    Burned,
}

/// Why the ticket cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Past its expiry.
    #[error("the launch ticket has expired")]
    Expired,
    /// Already used by a paired page.
    #[error("the launch ticket has already been used")]
    Used,
    /// Burned after failed proofs.
    #[error("the launch ticket was burned after failed pairing attempts")]
    Burned,
}

/// The one-time launch ticket: 256 random bits the page and the helper share.
///
/// It never travels and is never compared as text: the pairing channel's session id is
/// derived from it ([`Ticket::channel_sid`]), so the channel's keys depend on it and only
/// a page that holds it can produce a first frame that authenticates (AES-256-GCM's tag,
/// checked in constant time).
pub struct Ticket {
    secret: Zeroizing<[u8; 32]>,
    expires: u64,
    state: TicketState,
    failures: u8,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("expires", &self.expires)
            .field("state", &self.state)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// The pairing channel's session id for a ticket: `H("haetae-helper-pair v1" || ticket)`,
/// first 16 bytes. The page computes the same.
#[must_use]
pub fn channel_sid(secret: &[u8; 32]) -> SessionId {
    let digest = hash_parts(&[b"haetae-helper-pair v1", secret]);
    let mut sid = [0u8; 16];
    sid.copy_from_slice(&digest[..16]);
    SessionId(sid)
}

impl Ticket {
    /// A ticket with its secret and expiry (unix seconds).
    #[must_use]
    pub fn new(secret: Zeroizing<[u8; 32]>, expires: u64) -> Ticket {
        Ticket {
            secret,
            expires,
            state: TicketState::Fresh,
            failures: 0,
        }
    }

    /// The channel session id derived from the secret.
    #[must_use]
    pub fn channel_sid(&self) -> SessionId {
        channel_sid(&self.secret)
    }

    /// Its state.
    #[must_use]
    pub fn state(&self) -> TicketState {
        self.state
    }

    /// Whether a page may try to pair now.
    ///
    /// # Errors
    /// Why not.
    pub fn available(&self, now: u64) -> Result<(), TicketError> {
        match self.state {
            TicketState::Used => Err(TicketError::Used),
            TicketState::Burned => Err(TicketError::Burned),
            TicketState::Fresh if now >= self.expires => Err(TicketError::Expired),
            TicketState::Fresh => Ok(()),
        }
    }

    /// A page proved the ticket: it is used from now on.
    pub fn consume(&mut self) {
        self.state = TicketState::Used;
    }

    /// A page failed the proof; returns true when that burned the ticket.
    pub fn failed(&mut self) -> bool {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= MAX_PAIRING_FAILURES {
            self.state = TicketState::Burned;
            true
        } else {
            false
        }
    }

    /// The expiry (unix seconds).
    #[must_use]
    pub fn expires(&self) -> u64 {
        self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(origin: &str, expires: u64) -> String {
        format!(
            r#"{{"origin":"{origin}","ticket":"{}","session":"{}","policy_key":"{}","expires":{expires}}}"#,
            "ab".repeat(32),
            "cd".repeat(16),
            "ef".repeat(32)
        )
    }

    #[test]
    fn a_good_launch_parses() {
        let l = Launch::parse(&doc("http://127.0.0.1:7400", 1_100), 1_000).unwrap();
        assert_eq!(l.origin, "http://127.0.0.1:7400");
        assert_eq!(l.session, SessionId([0xcd; 16]));
        assert_eq!(l.ticket.available(1_000), Ok(()));
        assert_eq!(l.ticket.available(1_100), Err(TicketError::Expired));
        assert!(Launch::parse(&doc("https://support.bank.example", 1_100), 1_000).is_ok());
    }

    #[test]
    fn bad_launches_name_the_field() {
        for (origin, field) in [
            ("http://127.0.0.1:7400/", "origin"),
            ("HTTP://x", "origin"),
            ("ftp://x", "origin"),
            ("http://", "origin"),
            ("http://x:0", "origin"),
            ("http://x:123456", "origin"),
            ("null", "origin"),
        ] {
            let e = Launch::parse(&doc(origin, 1_100), 1_000).unwrap_err();
            assert!(e.to_string().contains(field), "{origin}: {e}");
        }
        let e = Launch::parse(&doc("http://x", 1_000), 1_000).unwrap_err();
        assert!(e.to_string().contains("expires"), "{e}");
        let e = Launch::parse(&doc("http://x", 1_000 + 16 * 60), 1_000).unwrap_err();
        assert!(e.to_string().contains("15 minutes"), "{e}");
        let bad_ticket = doc("http://x", 1_100).replace(&"ab".repeat(32), &"AB".repeat(32));
        let e = Launch::parse(&bad_ticket, 1_000).unwrap_err();
        assert!(e.to_string().contains("ticket"), "{e}");
        let e = Launch::parse("{\"origin\":1}", 1_000).unwrap_err();
        assert!(matches!(e, LaunchError::Format(_)), "{e}");
        let extra = doc("http://x", 1_100).replace("{", "{\"x\":1,");
        assert!(Launch::parse(&extra, 1_000).is_err());
    }

    #[test]
    fn a_ticket_is_single_use_and_burns_after_failures() {
        let mut t = Ticket::new(Zeroizing::new([1; 32]), 2_000);
        assert_eq!(t.available(1_000), Ok(()));
        assert!(!t.failed());
        assert!(!t.failed());
        assert!(t.failed());
        assert_eq!(t.available(1_000), Err(TicketError::Burned));
        let mut t = Ticket::new(Zeroizing::new([1; 32]), 2_000);
        t.consume();
        assert_eq!(t.available(1_000), Err(TicketError::Used));
        assert_ne!(channel_sid(&[1; 32]), channel_sid(&[2; 32]));
    }

    #[test]
    fn the_launch_file_is_deleted_after_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("launch.json");
        std::fs::write(&path, doc("http://x", now_unix() + 60)).unwrap();
        Launch::from_file(&path).unwrap();
        assert!(!path.exists());
    }
}
