//! Authentication and authorisation rules: roles and what each may do, Argon2id password
//! hashing, random secrets for sessions, CSRF and API tokens (stored only as SHA-256
//! digests), constant-time comparison, lockout after repeated failures.

use std::fmt;
use std::str::FromStr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Failed logins in a row that lock an account.
pub const LOCKOUT_THRESHOLD: i64 = 5;
/// How long a locked account stays locked, in microseconds (15 minutes).
pub const LOCKOUT_MICROS: i64 = 15 * 60 * 1_000_000;
/// A session ends this long after login whatever happens (8 hours).
pub const SESSION_MAX_MICROS: i64 = 8 * 3600 * 1_000_000;
/// A session ends after this long without a request (30 minutes).
pub const SESSION_IDLE_MICROS: i64 = 30 * 60 * 1_000_000;
/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest password accepted (Argon2 input is bounded so a login cannot be made slow).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// API tokens start with this, so secret scanners can find leaked ones.
pub const API_TOKEN_PREFIX: &str = "hct_";

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, including users and tokens.
    Admin,
    /// Policies: services, filters, mappings, lists, requirements, publish and rollback.
    SecurityOfficer,
    /// Read everything, including the audit log and exports; change nothing.
    Auditor,
    /// Read dashboards, policies and events.
    Viewer,
    /// A remote-support agent: the agent console (`/remote`) and its own account, nothing
    /// else; its grade and the addresses it may log in from are set per agent.
    Agent,
}

/// A permission checked on every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See dashboards, policies, gateways and events.
    Read,
    /// Change the draft policy, requirements and lists; publish and roll back.
    EditPolicy,
    /// Read the audit log and verify it; export events.
    ReadAudit,
    /// Manage users and API tokens.
    ManageUsers,
    /// Use the remote-support agent console (issue codes, support customers).
    RemoteSupport,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::SecurityOfficer,
        Role::Auditor,
        Role::Viewer,
        Role::Agent,
    ];

    /// The name used in the API, the database and the UI.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SecurityOfficer => "security-officer",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
            Role::Agent => "agent",
        }
    }

    /// Whether this role grants `permission`.
    #[must_use]
    pub const fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => !matches!(self, Role::Agent),
            Permission::EditPolicy => matches!(self, Role::Admin | Role::SecurityOfficer),
            Permission::ReadAudit => matches!(self, Role::Admin | Role::Auditor),
            Permission::ManageUsers => matches!(self, Role::Admin),
            Permission::RemoteSupport => {
                matches!(self, Role::Admin | Role::SecurityOfficer | Role::Agent)
            }
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a role name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, security-officer, auditor, viewer or agent")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Why a password was refused before hashing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Too short.
    #[error("the password must be at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    /// Too long.
    #[error("the password must be at most {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    /// The hasher failed (no randomness available).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Hashes a password with Argon2id (v1.3, m=19 MiB, t=2, p=1: the OWASP baseline) and a
/// random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string. Never panics; a malformed hash never
/// matches.
#[must_use]
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A hash to verify against when the user does not exist, so that an unknown name takes
/// as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that matches nothing").unwrap_or_default())
}

/// `n` random bytes as lower-case hex. Panics only if the operating system has no source
/// of randomness, in which case nothing secure can be done at all.
#[must_use]
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    hex::encode(bytes)
}

/// A new session id, CSRF token or API token secret (256 bits).
#[must_use]
pub fn new_secret() -> String {
    random_hex(32)
}

/// A new API token: the prefix and 256 random bits.
#[must_use]
pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", new_secret())
}

/// The SHA-256 digest under which a session id or API token is stored. The secrets are 256
/// random bits, so a fast hash is enough: nothing to brute-force.
#[must_use]
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets in time that depends only on their lengths.
#[must_use]
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A random password for the first admin: 20 characters from an alphabet without
/// look-alikes (about 115 bits).
#[must_use]
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Whether a user name is acceptable: 1-64 of `[a-z0-9._-]`, starting with a letter or
/// digit.
#[must_use]
pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse battern", &h));
    }

    #[test]
    fn hashing_the_same_password_twice_uses_different_salts() {
        assert_ne!(
            hash_password("same password 1").unwrap(),
            hash_password("same password 1").unwrap()
        );
    }

    #[test]
    fn short_and_huge_passwords_are_refused_before_hashing() {
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            hash_password(&"x".repeat(2000)),
            Err(PasswordError::TooLong)
        );
        assert!(!verify_password(&"x".repeat(2000), decoy_hash()));
    }

    #[test]
    fn a_malformed_stored_hash_never_matches() {
        assert!(!verify_password("anything at all", "not a phc string"));
        assert!(!verify_password("anything at all", ""));
    }

    #[test]
    fn roles_grant_exactly_their_permissions() {
        use Permission::*;
        let table = [
            (Role::Admin, [true, true, true, true, true]),
            (Role::SecurityOfficer, [true, true, false, false, true]),
            (Role::Auditor, [true, false, true, false, false]),
            (Role::Viewer, [true, false, false, false, false]),
            // An agent: the console and nothing administrative, not even reading.
            (Role::Agent, [false, false, false, false, true]),
        ];
        for (role, expected) in table {
            let got =
                [Read, EditPolicy, ReadAudit, ManageUsers, RemoteSupport].map(|p| role.allows(p));
            assert_eq!(got, expected, "{role}");
        }
    }

    #[test]
    fn role_names_round_trip_and_unknown_names_say_the_choices() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        let err = "root".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("security-officer"), "{err}");
    }

    #[test]
    fn secrets_are_distinct_and_compare_exactly() {
        let a = new_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_secret());
        assert!(secrets_equal(&a, &a.clone()));
        assert!(!secrets_equal(&a, &new_secret()));
        assert!(!secrets_equal(&a, &a[..63]));
        assert!(new_api_token().starts_with(API_TOKEN_PREFIX));
        assert_eq!(digest("abc").len(), 64);
    }

    #[test]
    fn user_names_are_restricted_to_a_safe_alphabet() {
        assert!(valid_username("officer.kim"));
        assert!(!valid_username(""));
        assert!(!valid_username("-admin"));
        assert!(!valid_username("Admin"));
        assert!(!valid_username("a<script>"));
    }

    #[test]
    fn random_passwords_are_long_enough_to_be_accepted() {
        let p = random_password();
        assert_eq!(p.len(), 20);
        assert!(hash_password(&p).is_ok());
    }
}
