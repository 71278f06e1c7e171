//! Agent tickets: how the remote-support relay knows that an agent connection belongs to a
//! user who logged in to the Control Center (issue 10, point 8).
//!
//! The Center issues a ticket to a logged-in agent (`GET /remote/ticket`); the agent console
//! opens the relay's WebSocket with `?ticket=...`; the relay accepts `AgentOpen` only with a
//! valid, unexpired ticket and takes the agent's name from it, not from what the console
//! claims. Both sides hold the same 32-byte key (in `haetae up`, a random one made at start
//! and never written anywhere).
//!
//! Wire form: lower-case hex of `version (1) | expires_unix u64 BE | agent length u8 | agent
//! (UTF-8, 1..=64 bytes) | HMAC-SHA-256 over everything before it (32)`. The MAC is checked
//! in constant time before anything else in the ticket is believed.
//!
//! ```
//! use haetae_core::agent_ticket::{TicketKey, TicketError};
//!
//! let key = TicketKey::from_bytes([7; 32]);
//! let ticket = key.issue("kim.agent", 1_000 + 600).unwrap();
//! assert_eq!(key.verify(&ticket, 1_000).unwrap(), "kim.agent");
//! assert_eq!(key.verify(&ticket, 1_601), Err(TicketError::Expired));
//! assert_eq!(TicketKey::from_bytes([8; 32]).verify(&ticket, 1_000), Err(TicketError::BadMac));
//! ```

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
/// Longest agent name a ticket carries (the relay's `AgentOpen` limit).
pub const MAX_AGENT_LEN: usize = 64;
/// Longest ticket in its hex form.
pub const MAX_TICKET_HEX: usize = 2 * (1 + 8 + 1 + MAX_AGENT_LEN + MAC_LEN);

/// Why a ticket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not hex, too short or too long, or its fields do not add up.
    #[error("the agent ticket is malformed")]
    Malformed,
    /// The MAC does not match: forged, altered, or made with another key.
    #[error("the agent ticket's MAC does not match")]
    BadMac,
    /// Past its expiry time.
    #[error("the agent ticket has expired")]
    Expired,
    /// The agent name is empty, longer than 64 bytes, or has control characters.
    #[error("the agent name cannot be put in a ticket (1 to 64 bytes, no control characters)")]
    BadAgent,
}

/// The key both the Center and the relay hold. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct TicketKey([u8; 32]);

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    /// A key from its bytes (callers draw them from the OS's random source).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> TicketKey {
        TicketKey(bytes)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length, so this cannot fail; a fresh MAC keyed with
        // zeros would only make every ticket refused, never accepted.
        <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()))
    }

    /// A ticket for `agent` that expires at `expires_unix` (seconds since the epoch).
    pub fn issue(&self, agent: &str, expires_unix: u64) -> Result<String, TicketError> {
        if agent.is_empty() || agent.len() > MAX_AGENT_LEN || agent.chars().any(char::is_control) {
            return Err(TicketError::BadAgent);
        }
        let mut body = Vec::with_capacity(1 + 8 + 1 + agent.len() + MAC_LEN);
        body.push(VERSION);
        body.extend_from_slice(&expires_unix.to_be_bytes());
        body.push(u8::try_from(agent.len()).map_err(|_| TicketError::BadAgent)?);
        body.extend_from_slice(agent.as_bytes());
        let mut mac = self.mac();
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes());
        Ok(hex::encode(body))
    }

    /// The agent named by `ticket` if its MAC is right and it has not expired at `now_unix`.
    pub fn verify(&self, ticket: &str, now_unix: u64) -> Result<String, TicketError> {
        if ticket.len() > MAX_TICKET_HEX {
            return Err(TicketError::Malformed);
        }
        let raw = hex::decode(ticket).map_err(|_| TicketError::Malformed)?;
        if raw.len() < 1 + 8 + 1 + 1 + MAC_LEN {
            return Err(TicketError::Malformed);
        }
        let (body, tag) = raw.split_at(raw.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| TicketError::BadMac)?;
        let (&version, rest) = body.split_first().ok_or(TicketError::Malformed)?;
        if version != VERSION {
            return Err(TicketError::Malformed);
        }
        let (expires, rest) = rest.split_at_checked(8).ok_or(TicketError::Malformed)?;
        let expires = u64::from_be_bytes(expires.try_into().map_err(|_| TicketError::Malformed)?);
        let (&len, agent) = rest.split_first().ok_or(TicketError::Malformed)?;
        if usize::from(len) != agent.len() {
            return Err(TicketError::Malformed);
        }
        let agent = std::str::from_utf8(agent).map_err(|_| TicketError::Malformed)?;
        if now_unix >= expires {
            return Err(TicketError::Expired);
        }
        Ok(agent.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TicketKey {
        TicketKey::from_bytes([42; 32])
    }

    #[test]
    fn a_ticket_names_its_agent_until_it_expires() {
        let t = key().issue("이상담", 500).unwrap();
        assert_eq!(key().verify(&t, 0).unwrap(), "이상담");
        assert_eq!(key().verify(&t, 499).unwrap(), "이상담");
        assert_eq!(key().verify(&t, 500), Err(TicketError::Expired));
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let t = key().issue("agent-1", 1000).unwrap();
        let raw = hex::decode(&t).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let r = key().verify(&hex::encode(&bad), 0);
            assert_eq!(r, Err(TicketError::BadMac), "byte {i}");
        }
        // A longer expiry or another name cannot be spliced in without the key.
        let other = key().issue("admin", 1000).unwrap();
        let spliced = format!("{}{}", &other[..other.len() - 64], &t[t.len() - 64..]);
        assert_eq!(key().verify(&spliced, 0), Err(TicketError::BadMac));
    }

    #[test]
    fn malformed_tickets_and_names_are_refused() {
        for bad in ["", "zz", "00", &"00".repeat(200)] {
            assert_eq!(key().verify(bad, 0), Err(TicketError::Malformed), "{bad:?}");
        }
        assert_eq!(key().issue("", 1), Err(TicketError::BadAgent));
        assert_eq!(key().issue(&"a".repeat(65), 1), Err(TicketError::BadAgent));
        assert_eq!(key().issue("a\nb", 1), Err(TicketError::BadAgent));
        assert!(key().issue(&"a".repeat(64), 1).unwrap().len() <= MAX_TICKET_HEX);
    }

    #[test]
    fn the_key_is_not_printed() {
        assert_eq!(format!("{:?}", key()), "TicketKey(..)");
    }
}
