//! The session policy the Control Center signs for one agent and one session (issue 10,
//! point 8): the agent's grade, the features it may use, its name, the session id and an
//! expiry, signed with the Center's Ed25519 key.
//!
//! The agent console fetches it from the Center once the relay has given it a session id,
//! and forwards it inside the end-to-end channel ([`AppMessage::Policy`], right after
//! `SasConfirmed`). The customer's side fetched the Center's public key from its own origin
//! beforehand; it checks the signature, the session id and the expiry, and from then on
//! refuses whatever the grade does not allow. A modified agent console can forward only a
//! policy the Center signed for *this* session and *this* agent; it cannot make one up or
//! widen one, so it cannot escalate.
//!
//! The signed text is plain lines, so the JavaScript page parses exactly what Rust parses:
//!
//! ```text
//! haetae-remote-policy v1
//! sid=<32 lower-case hex digits>
//! agent=<1-64 bytes, no control characters>
//! grade=indirect|direct
//! features=<comma list in this order: pointer,drawing,url,control,files>
//! max_file=<bytes, decimal>
//! issued=<unix seconds>
//! expires=<unix seconds>
//! ```
//!
//! Every line ends with `\n`; keys come in this order, each once; nothing else is allowed.
//! `control` and `files` are only valid with the `direct` grade; `max_file` is 0 without
//! `files`.
//!
//! [`AppMessage::Policy`]: crate::protocol::AppMessage::Policy

use std::fmt;
use std::str::FromStr;

use haetae_crypto::pk::{Ed25519KeyPair, ed25519_verify};

use crate::protocol::{MAX_POLICY, SessionId};
use crate::session::SessionPolicy;

/// The first line of every policy.
pub const HEADER: &str = "haetae-remote-policy v1";
/// How far past its expiry a policy is still accepted, for clocks that differ (seconds).
pub const CLOCK_LEEWAY_SECS: u64 = 300;
/// Longest agent name.
pub const MAX_AGENT: usize = 64;
/// The largest file the `direct` grade allows by default (2 GiB).
pub const DEFAULT_MAX_FILE: u64 = 2 << 30;

/// An agent's grade, set by an administrator in the Control Center.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grade {
    /// Pointer, drawing and URLs only.
    Indirect,
    /// Also keyboard/mouse control and files.
    Direct,
}

impl Grade {
    /// The name in the policy, the API and the database.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Grade::Indirect => "indirect",
            Grade::Direct => "direct",
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A grade name that is neither `indirect` nor `direct`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown grade {0:?}: expected indirect or direct")]
pub struct UnknownGrade(pub String);

impl FromStr for Grade {
    type Err = UnknownGrade;
    fn from_str(s: &str) -> Result<Grade, UnknownGrade> {
        match s {
            "indirect" => Ok(Grade::Indirect),
            "direct" => Ok(Grade::Direct),
            other => Err(UnknownGrade(other.to_owned())),
        }
    }
}

/// What the agent may use in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Features {
    /// The laser pointer.
    pub pointer: bool,
    /// Drawing over the customer's screen.
    pub drawing: bool,
    /// Sending a URL for the customer to open.
    pub url: bool,
    /// Asking for keyboard/mouse control (direct grade only).
    pub control: bool,
    /// Sending and receiving files (direct grade only).
    pub files: bool,
}

const FEATURE_NAMES: [&str; 5] = ["pointer", "drawing", "url", "control", "files"];

impl Features {
    /// Everything the grade allows.
    #[must_use]
    pub fn of(grade: Grade) -> Features {
        let direct = grade == Grade::Direct;
        Features {
            pointer: true,
            drawing: true,
            url: true,
            control: direct,
            files: direct,
        }
    }

    fn flags(self) -> [bool; 5] {
        [
            self.pointer,
            self.drawing,
            self.url,
            self.control,
            self.files,
        ]
    }

    /// Whether every feature here is allowed by `grade`.
    #[must_use]
    pub fn within(self, grade: Grade) -> bool {
        let max = Features::of(grade).flags();
        self.flags().iter().zip(max).all(|(&f, m)| !f || m)
    }

    /// Only what both allow (the grade and the organisation's toggles).
    #[must_use]
    pub fn and(self, other: Features) -> Features {
        Features {
            pointer: self.pointer && other.pointer,
            drawing: self.drawing && other.drawing,
            url: self.url && other.url,
            control: self.control && other.control,
            files: self.files && other.files,
        }
    }
}

/// The content of a session policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyGrant {
    /// The session it is for.
    pub sid: SessionId,
    /// The agent's user name in the Center.
    pub agent: String,
    /// The agent's grade.
    pub grade: Grade,
    /// What the agent may use (within the grade).
    pub features: Features,
    /// Largest file in bytes (0 without `files`).
    pub max_file: u64,
    /// When the Center signed it (unix seconds).
    pub issued: u64,
    /// When it stops being valid (unix seconds).
    pub expires: u64,
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The signature is not the Center's for these bytes.
    #[error("the session policy's signature is not the Control Center's")]
    BadSignature,
    /// The text does not follow the format.
    #[error("the session policy is malformed: {0}")]
    Malformed(&'static str),
    /// Signed for another session.
    #[error("the session policy was signed for another session")]
    OtherSession,
    /// Past its expiry (beyond the clock leeway).
    #[error("the session policy has expired")]
    Expired,
    /// A feature the grade does not allow.
    #[error("the session policy grants more than the agent's grade allows")]
    BeyondGrade,
    /// The policy would not fit in a message, or the agent name cannot be carried.
    #[error("cannot sign this policy: {0}")]
    Unsignable(&'static str),
}

/// A policy as sent: the signed text and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPolicy {
    /// The text.
    pub payload: String,
    /// Ed25519 over the text's bytes.
    pub signature: [u8; 64],
}

fn agent_ok(agent: &str) -> bool {
    !agent.is_empty() && agent.len() <= MAX_AGENT && !agent.chars().any(char::is_control)
}

impl PolicyGrant {
    /// The session rules this policy stands for.
    #[must_use]
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            pointer: self.features.pointer,
            drawing: self.features.drawing,
            url_push: self.features.url,
            direct_control: self.features.control && self.grade == Grade::Direct,
            file_transfer: self.features.files && self.grade == Grade::Direct,
            max_file_size: if self.features.files {
                self.max_file
            } else {
                0
            },
        }
    }

    /// The text that is signed.
    ///
    /// # Errors
    /// [`PolicyError::Unsignable`] for a bad agent name or an over-long result,
    /// [`PolicyError::BeyondGrade`] when the features exceed the grade.
    pub fn encode(&self) -> Result<String, PolicyError> {
        if !agent_ok(&self.agent) {
            return Err(PolicyError::Unsignable(
                "the agent name must be 1-64 bytes without control characters",
            ));
        }
        if !self.features.within(self.grade) {
            return Err(PolicyError::BeyondGrade);
        }
        let names: Vec<&str> = FEATURE_NAMES
            .iter()
            .zip(self.features.flags())
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect();
        let max_file = if self.features.files {
            self.max_file
        } else {
            0
        };
        let text = format!(
            "{HEADER}\nsid={}\nagent={}\ngrade={}\nfeatures={}\nmax_file={max_file}\nissued={}\nexpires={}\n",
            hex_lower(&self.sid.0),
            self.agent,
            self.grade,
            names.join(","),
            self.issued,
            self.expires
        );
        if text.len() > MAX_POLICY {
            return Err(PolicyError::Unsignable("the policy text is too long"));
        }
        Ok(text)
    }

    /// Signs it with the Center's key.
    ///
    /// # Errors
    /// As [`PolicyGrant::encode`].
    pub fn sign(&self, key: &Ed25519KeyPair) -> Result<SignedPolicy, PolicyError> {
        let payload = self.encode()?;
        let signature = key.sign(payload.as_bytes());
        Ok(SignedPolicy { payload, signature })
    }

    /// Parses the text (after the signature was checked).
    ///
    /// # Errors
    /// [`PolicyError::Malformed`], [`PolicyError::BeyondGrade`].
    pub fn parse(text: &str) -> Result<PolicyGrant, PolicyError> {
        let body = text.strip_suffix('\n').ok_or(PolicyError::Malformed(
            "the last line must end with a newline",
        ))?;
        let mut lines = body.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(PolicyError::Malformed("the first line must be the header"));
        }
        let mut field = |key: &'static str| -> Result<&str, PolicyError> {
            let line = lines
                .next()
                .ok_or(PolicyError::Malformed("a field is missing"))?;
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix('='))
                .ok_or(PolicyError::Malformed("fields out of order or misspelt"))
        };
        let sid_hex = field("sid")?;
        let agent = field("agent")?.to_owned();
        let grade: Grade = field("grade")?
            .parse()
            .map_err(|_| PolicyError::Malformed("unknown grade"))?;
        let features_text = field("features")?;
        let max_file = number(field("max_file")?)?;
        let issued = number(field("issued")?)?;
        let expires = number(field("expires")?)?;
        if lines.next().is_some() {
            return Err(PolicyError::Malformed("extra lines after expires"));
        }
        let sid = SessionId(parse_sid(sid_hex)?);
        if !agent_ok(&agent) {
            return Err(PolicyError::Malformed("bad agent name"));
        }
        let mut flags = [false; 5];
        let mut next = 0;
        if !features_text.is_empty() {
            for name in features_text.split(',') {
                let Some(pos) = FEATURE_NAMES.iter().position(|n| *n == name) else {
                    return Err(PolicyError::Malformed("unknown feature"));
                };
                if pos < next {
                    return Err(PolicyError::Malformed("features repeated or out of order"));
                }
                flags[pos] = true;
                next = pos + 1;
            }
        }
        let [pointer, drawing, url, control, files] = flags;
        let features = Features {
            pointer,
            drawing,
            url,
            control,
            files,
        };
        if !features.within(grade) {
            return Err(PolicyError::BeyondGrade);
        }
        if !files && max_file != 0 {
            return Err(PolicyError::Malformed("max_file without files"));
        }
        if expires < issued {
            return Err(PolicyError::Malformed("expires before it was issued"));
        }
        Ok(PolicyGrant {
            sid,
            agent,
            grade,
            features,
            max_file,
            issued,
            expires,
        })
    }
}

fn number(s: &str) -> Result<u64, PolicyError> {
    if s.is_empty()
        || s.len() > 20
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(PolicyError::Malformed("a number is not canonical decimal"));
    }
    s.parse()
        .map_err(|_| PolicyError::Malformed("a number is out of range"))
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn parse_sid(s: &str) -> Result<[u8; 16], PolicyError> {
    let bad = PolicyError::Malformed("sid must be 32 lower-case hex digits");
    if s.len() != 32 {
        return Err(bad);
    }
    let mut out = [0u8; 16];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = h << 4 | l,
            _ => return Err(bad),
        }
    }
    Ok(out)
}

/// Checks a policy received in session `sid` against the Center's public key at time
/// `now_unix`: the signature first (nothing in the text is believed before), then the
/// format, the session id, the expiry (with [`CLOCK_LEEWAY_SECS`]) and the grade.
///
/// # Errors
/// Any [`PolicyError`].
pub fn verify(
    center_key: &[u8; 32],
    payload: &str,
    signature: &[u8; 64],
    sid: SessionId,
    now_unix: u64,
) -> Result<PolicyGrant, PolicyError> {
    ed25519_verify(center_key, payload.as_bytes(), signature)
        .map_err(|_| PolicyError::BadSignature)?;
    let grant = PolicyGrant::parse(payload)?;
    if grant.sid != sid {
        return Err(PolicyError::OtherSession);
    }
    if now_unix > grant.expires.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(PolicyError::Expired);
    }
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(grade: Grade) -> PolicyGrant {
        PolicyGrant {
            sid: SessionId([0xab; 16]),
            agent: "kim.agent".into(),
            grade,
            features: Features::of(grade),
            max_file: if grade == Grade::Direct {
                DEFAULT_MAX_FILE
            } else {
                0
            },
            issued: 1_000,
            expires: 2_000,
        }
    }

    #[test]
    fn a_signed_policy_verifies_and_round_trips() {
        let key = Ed25519KeyPair::from_seed(&[5; 32]);
        for grade in [Grade::Indirect, Grade::Direct] {
            let g = grant(grade);
            let s = g.sign(&key).unwrap();
            let back = verify(&key.public_key(), &s.payload, &s.signature, g.sid, 1_500).unwrap();
            assert_eq!(back, g);
            assert_eq!(back.session_policy().direct_control, grade == Grade::Direct);
        }
        let text = grant(Grade::Indirect).encode().unwrap();
        assert_eq!(
            text,
            "haetae-remote-policy v1\nsid=abababababababababababababababab\nagent=kim.agent\ngrade=indirect\nfeatures=pointer,drawing,url\nmax_file=0\nissued=1000\nexpires=2000\n"
        );
    }

    #[test]
    fn forged_altered_other_session_and_expired_policies_are_refused() {
        let key = Ed25519KeyPair::from_seed(&[5; 32]);
        let other = Ed25519KeyPair::from_seed(&[6; 32]);
        let g = grant(Grade::Indirect);
        let s = g.sign(&key).unwrap();
        let pk = key.public_key();
        // Another key's signature.
        let forged = g.sign(&other).unwrap();
        assert_eq!(
            verify(&pk, &forged.payload, &forged.signature, g.sid, 1_500),
            Err(PolicyError::BadSignature)
        );
        // An indirect agent's console rewrites its grade: the signature no longer matches.
        let escalated = s.payload.replace("grade=indirect", "grade=direct").replace(
            "features=pointer,drawing,url",
            "features=pointer,drawing,url,control,files",
        );
        assert_eq!(
            verify(&pk, &escalated, &s.signature, g.sid, 1_500),
            Err(PolicyError::BadSignature)
        );
        assert_eq!(
            verify(&pk, &s.payload, &s.signature, SessionId([1; 16]), 1_500),
            Err(PolicyError::OtherSession)
        );
        assert!(
            verify(
                &pk,
                &s.payload,
                &s.signature,
                g.sid,
                2_000 + CLOCK_LEEWAY_SECS
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                &pk,
                &s.payload,
                &s.signature,
                g.sid,
                2_001 + CLOCK_LEEWAY_SECS
            ),
            Err(PolicyError::Expired)
        );
    }

    #[test]
    fn the_center_cannot_sign_and_nobody_can_parse_more_than_the_grade() {
        let key = Ed25519KeyPair::from_seed(&[5; 32]);
        let mut g = grant(Grade::Indirect);
        g.features.control = true;
        assert_eq!(g.sign(&key), Err(PolicyError::BeyondGrade));
        let text = "haetae-remote-policy v1\nsid=abababababababababababababababab\nagent=a\ngrade=indirect\nfeatures=pointer,files\nmax_file=5\nissued=1\nexpires=2\n";
        assert_eq!(PolicyGrant::parse(text), Err(PolicyError::BeyondGrade));
    }

    #[test]
    fn malformed_texts_are_refused_without_panicking() {
        let good = grant(Grade::Direct).encode().unwrap();
        let bad = [
            String::new(),
            good.trim_end().to_owned(),
            good.replace("sid=", "sid=0"),
            good.replace("features=pointer,drawing", "features=drawing,pointer"),
            good.replace("features=pointer,drawing", "features=pointer,pointer"),
            good.replace("max_file=2147483648", "max_file=02147483648"),
            good.replace("max_file=2147483648", "max_file=-1"),
            good.replace("agent=kim.agent", "agent="),
            good.replace("grade=direct", "grade=root"),
            format!("{good}extra=1\n"),
            good.replace("issued=1000\n", ""),
            good.replace("ab", "AB"),
        ];
        for text in bad {
            assert!(
                matches!(PolicyGrant::parse(&text), Err(PolicyError::Malformed(_))),
                "accepted {text:?}"
            );
        }
    }
}
