//! The end-to-end channel between agent and customer, as `remote-e2e.md` specifies: a key
//! agreement with a hash commitment (the customer commits to its key before it sees the
//! agent's), a 6-digit short authentication string (SAS) that the two people compare on the
//! phone, and per-direction AES-256-GCM keys with counter nonces. All algorithms come from
//! `haetae-crypto` (X25519, SHA-256, HKDF-SHA-256, AES-256-GCM).
//!
//! Every failure is final: a frame that fails to open, arrives out of order or repeats
//! closes the channel, and nothing falls back to a weaker mode.
//!
//! ```
//! use haetae_remote::channel::{AgentHandshake, CustomerHandshake};
//! use haetae_remote::protocol::{AppMessage, SessionId};
//!
//! let sid = SessionId([7; 16]);
//! let (customer, commit) = CustomerHandshake::start(sid).unwrap();
//! let mut agent = AgentHandshake::start(sid).unwrap();
//! let agent_key = agent.on_commit(&commit).unwrap();
//! let (customer_key, customer) = customer.on_agent_key(&agent_key).unwrap();
//! let agent = agent.on_customer_key(&customer_key).unwrap();
//! assert_eq!(agent.sas(), customer.sas()); // the people compare these on the phone
//! let (mut agent, confirmed) = agent.confirm_sas().unwrap();
//! let mut customer = customer.on_confirmation(&confirmed).unwrap();
//! let sealed = customer.seal(&AppMessage::Chat { id: 1, text: "hello".into() }).unwrap();
//! assert!(matches!(agent.open(&sealed).unwrap(), AppMessage::Chat { .. }));
//! ```

use std::collections::VecDeque;
use std::fmt;

use haetae_crypto::kdf::{KdfHash, hkdf};
use haetae_crypto::pk::X25519Secret;
use haetae_crypto::{CipherSuite, CryptoError, SymmetricCipher};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::codec::DecodeError;
use crate::protocol::{AppMessage, EndReason, MessageType, PeerMessage, SessionId};

pub use crate::protocol::Role;

/// A direction of traffic; its byte is part of every frame's associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Agent to customer (byte 0).
    AgentToCustomer,
    /// Customer to agent (byte 1).
    CustomerToAgent,
}

impl Direction {
    fn byte(self) -> u8 {
        match self {
            Direction::AgentToCustomer => 0,
            Direction::CustomerToAgent => 1,
        }
    }
    fn sending(role: Role) -> Self {
        match role {
            Role::Agent => Direction::AgentToCustomer,
            Role::Customer => Direction::CustomerToAgent,
        }
    }
}

/// Why the channel refused something. Every variant except [`ChannelError::Encode`] closes
/// the channel for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// A handshake message arrived that this step does not expect.
    #[error("key agreement: expected {expected}, got {got}")]
    Unexpected {
        /// What this step waits for.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// The customer's key does not match its commitment: someone substituted it.
    #[error("key agreement: the customer's key does not match its commitment (key substitution)")]
    CommitMismatch,
    /// The other side abandoned the session.
    #[error("the other side aborted the session: {0:?}")]
    Aborted(EndReason),
    /// A sequence number other than the next one: replay, reordering or a dropped frame.
    #[error("frame {got} arrived where frame {expected} was due (replayed, reordered or dropped)")]
    Sequence {
        /// The number expected.
        expected: u64,
        /// The number received.
        got: u64,
    },
    /// The frame did not authenticate: it was altered, or keys differ.
    #[error("frame {seq} failed to authenticate (altered in transit, or the keys differ)")]
    Integrity {
        /// Its sequence number.
        seq: u64,
    },
    /// The frame opened but its contents are malformed.
    #[error("frame {seq}: {source}")]
    Malformed {
        /// Its sequence number.
        seq: u64,
        /// What is wrong.
        source: DecodeError,
    },
    /// The customer received something before the agent's SAS confirmation.
    #[error("a {got:?} frame arrived before the agent confirmed the short authentication string")]
    NotConfirmed {
        /// Its type.
        got: MessageType,
    },
    /// This side's sequence numbers are used up (2^64 frames): the session must re-key.
    #[error("sequence numbers exhausted; start a new session")]
    Exhausted,
    /// The channel already failed or was closed.
    #[error("the channel is closed")]
    Closed,
    /// A message to send breaks a field limit (the channel stays open).
    #[error("message not sent: {0}")]
    Encode(DecodeError),
    /// The cryptographic library refused (no entropy, a small-order public key).
    #[error("cryptography: {0}")]
    Crypto(CryptoError),
    /// The channel is re-keying after a lost connection: nothing is sealed now (reliable
    /// messages can be queued with [`Channel::send_or_queue`]). The channel stays open.
    #[error("the session is resuming; try again once it is open")]
    Resuming,
    /// Too many reliable messages wait for the other side's acknowledgement; send again
    /// after the next `Ack`. The channel stays open.
    #[error(
        "too many unacknowledged messages ({messages} messages, {bytes} bytes); wait for an acknowledgement"
    )]
    Backlog {
        /// Messages waiting.
        messages: usize,
        /// Their encoded size.
        bytes: usize,
    },
    /// The resume protocol was broken: a re-key that does not authenticate or repeats an
    /// old one, an acknowledgement of messages never sent, a frame where `Resume` was due.
    #[error("resume: {0}")]
    Resume(&'static str),
}

impl ChannelError {
    /// Whether the channel is closed after this error.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            ChannelError::Encode(_) | ChannelError::Resuming | ChannelError::Backlog { .. }
        )
    }
}

impl From<CryptoError> for ChannelError {
    fn from(e: CryptoError) -> Self {
        ChannelError::Crypto(e)
    }
}

fn kind_name(msg: &PeerMessage) -> &'static str {
    match msg {
        PeerMessage::Commit { .. } => "Commit",
        PeerMessage::AgentKey { .. } => "AgentKey",
        PeerMessage::CustomerKey { .. } => "CustomerKey",
        PeerMessage::Sealed { .. } => "Sealed",
        PeerMessage::Abort { .. } => "Abort",
        PeerMessage::Rekey { .. } => "Rekey",
    }
}

fn unexpected(expected: &'static str, got: &PeerMessage) -> ChannelError {
    match got {
        PeerMessage::Abort { reason } => ChannelError::Aborted(*reason),
        other => ChannelError::Unexpected {
            expected,
            got: kind_name(other),
        },
    }
}

/// SHA-256 over length-prefixed parts (`||` of `remote-e2e.md`: each part as a 4-byte
/// big-endian length and its bytes), so no two different part lists hash the same input.
#[must_use]
pub fn hash_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = haetae_crypto::hash::Hasher::new(haetae_crypto::hash::HashAlgorithm::Sha256);
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        h.update(&len.to_be_bytes());
        h.update(part);
    }
    let out = h.finalize();
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&out[..32]);
    digest
}

/// `commit = H("haetae-commit" || sid || pkC || nC)`.
#[must_use]
pub fn commitment(sid: &SessionId, public: &[u8; 32], nonce: &[u8; 32]) -> [u8; 32] {
    hash_parts(&[b"haetae-commit", &sid.0, public, nonce])
}

fn random32() -> Result<[u8; 32], ChannelError> {
    let mut out = [0u8; 32];
    haetae_crypto::error::os_random(&mut out)?;
    Ok(out)
}

/// The customer's side of the key agreement, after it sent its commitment.
pub struct CustomerHandshake {
    sid: SessionId,
    secret: X25519Secret,
    public: [u8; 32],
    nonce: [u8; 32],
    commit: [u8; 32],
}

impl fmt::Debug for CustomerHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerHandshake")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

impl CustomerHandshake {
    /// Step 1: a fresh key pair and nonce; returns the commitment to send.
    ///
    /// # Errors
    /// [`ChannelError::Crypto`] when the OS has no entropy.
    pub fn start(sid: SessionId) -> Result<(Self, PeerMessage), ChannelError> {
        let secret = X25519Secret::generate()?;
        Ok(Self::from_parts(sid, secret, random32()?))
    }

    /// Step 1 with a given key and nonce (test vectors only: never reuse either).
    #[must_use]
    pub fn from_parts(
        sid: SessionId,
        secret: X25519Secret,
        nonce: [u8; 32],
    ) -> (Self, PeerMessage) {
        let public = secret.public_key();
        let commit = commitment(&sid, &public, &nonce);
        (
            CustomerHandshake {
                sid,
                secret,
                public,
                nonce,
                commit,
            },
            PeerMessage::Commit { commit },
        )
    }

    /// Step 3: on the agent's key, reveals the committed key and nonce.
    ///
    /// # Errors
    /// [`ChannelError::Unexpected`] for anything but `AgentKey`, [`ChannelError::Aborted`],
    /// [`ChannelError::Crypto`] for a small-order agent key.
    pub fn on_agent_key(
        self,
        msg: &PeerMessage,
    ) -> Result<(PeerMessage, PendingChannel), ChannelError> {
        let PeerMessage::AgentKey { public, nonce } = msg else {
            return Err(unexpected("AgentKey", msg));
        };
        let shared = self.secret.agree(public)?;
        let pending = PendingChannel::derive(
            Role::Customer,
            self.sid,
            &self.commit,
            (public, nonce),
            (&self.public, &self.nonce),
            &shared,
        )?;
        Ok((
            PeerMessage::CustomerKey {
                public: self.public,
                nonce: self.nonce,
            },
            pending,
        ))
    }
}

/// The agent's side of the key agreement.
pub struct AgentHandshake {
    sid: SessionId,
    secret: X25519Secret,
    public: [u8; 32],
    nonce: [u8; 32],
    commit: Option<[u8; 32]>,
}

impl fmt::Debug for AgentHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentHandshake")
            .field("sid", &self.sid)
            .field("commit_received", &self.commit.is_some())
            .finish_non_exhaustive()
    }
}

impl AgentHandshake {
    /// A fresh key pair and nonce; nothing is sent until the commitment arrives.
    ///
    /// # Errors
    /// [`ChannelError::Crypto`] when the OS has no entropy.
    pub fn start(sid: SessionId) -> Result<Self, ChannelError> {
        Ok(Self::from_parts(
            sid,
            X25519Secret::generate()?,
            random32()?,
        ))
    }

    /// With a given key and nonce (test vectors only).
    #[must_use]
    pub fn from_parts(sid: SessionId, secret: X25519Secret, nonce: [u8; 32]) -> Self {
        let public = secret.public_key();
        AgentHandshake {
            sid,
            secret,
            public,
            nonce,
            commit: None,
        }
    }

    /// Step 2: on the customer's commitment, reveals the agent's key and nonce. A second
    /// commitment is refused (the first one binds the customer).
    ///
    /// # Errors
    /// [`ChannelError::Unexpected`], [`ChannelError::Aborted`].
    pub fn on_commit(&mut self, msg: &PeerMessage) -> Result<PeerMessage, ChannelError> {
        match (msg, self.commit) {
            (PeerMessage::Commit { commit }, None) => {
                self.commit = Some(*commit);
                Ok(PeerMessage::AgentKey {
                    public: self.public,
                    nonce: self.nonce,
                })
            }
            (_, Some(_)) => Err(unexpected("CustomerKey", msg)),
            (_, None) => Err(unexpected("Commit", msg)),
        }
    }

    /// Step 3 (agent side): checks the customer's key against its commitment and derives
    /// the session.
    ///
    /// # Errors
    /// [`ChannelError::CommitMismatch`], [`ChannelError::Unexpected`],
    /// [`ChannelError::Aborted`], [`ChannelError::Crypto`].
    pub fn on_customer_key(self, msg: &PeerMessage) -> Result<PendingChannel, ChannelError> {
        let Some(commit) = self.commit else {
            return Err(unexpected("Commit", msg));
        };
        let PeerMessage::CustomerKey { public, nonce } = msg else {
            return Err(unexpected("CustomerKey", msg));
        };
        let expected = commitment(&self.sid, public, nonce);
        if !bool::from(expected.ct_eq(&commit)) {
            return Err(ChannelError::CommitMismatch);
        }
        let shared = self.secret.agree(public)?;
        PendingChannel::derive(
            Role::Agent,
            self.sid,
            &commit,
            (&self.public, &self.nonce),
            (public, nonce),
            &shared,
        )
    }
}

/// What both sides derive from the key agreement (exposed for the shared test vectors).
pub struct SessionSecrets {
    /// `H(sid || commit || pkA || nA || pkC || nC)`.
    pub transcript: [u8; 32],
    /// The 6-digit short authentication string.
    pub sas: String,
    /// AES-256-GCM key for agent → customer.
    pub key_a2c: Zeroizing<Vec<u8>>,
    /// AES-256-GCM key for customer → agent.
    pub key_c2a: Zeroizing<Vec<u8>>,
    /// The secret a failover resume proves knowledge of.
    pub resume: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SessionSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSecrets")
            .field("sas", &self.sas)
            .finish_non_exhaustive()
    }
}

/// Derives transcript, SAS and keys (step 4 and 5 of `remote-e2e.md`).
///
/// # Errors
/// [`ChannelError::Crypto`] (HKDF length; not reached).
pub fn derive_secrets(
    sid: &SessionId,
    commit: &[u8; 32],
    agent: (&[u8; 32], &[u8; 32]),
    customer: (&[u8; 32], &[u8; 32]),
    shared: &[u8; 32],
) -> Result<SessionSecrets, ChannelError> {
    let transcript = hash_parts(&[&sid.0, commit, agent.0, agent.1, customer.0, customer.1]);
    let sas_hash = hash_parts(&[b"haetae-sas", &transcript, shared]);
    let first = u32::from_be_bytes([sas_hash[0], sas_hash[1], sas_hash[2], sas_hash[3]]);
    let sas = format!("{:06}", first % 1_000_000);
    let key = |info: &[u8]| hkdf(KdfHash::Sha256, Some(&transcript), shared, info, 32);
    Ok(SessionSecrets {
        transcript,
        sas,
        key_a2c: key(b"haetae rs v1 a->c")?,
        key_c2a: key(b"haetae rs v1 c->a")?,
        resume: key(b"haetae rs v1 resume")?,
    })
}

/// The nonce of frame `seq`: 32 zero bits, then `seq` big-endian.
#[must_use]
pub fn frame_nonce(seq: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    nonce
}

/// The associated data of a frame: `sid || direction || seq || type`.
#[must_use]
pub fn frame_aad(sid: &SessionId, direction: Direction, seq: u64, kind: u8) -> [u8; 26] {
    let mut aad = [0u8; 26];
    aad[..16].copy_from_slice(&sid.0);
    aad[16] = direction.byte();
    aad[17..25].copy_from_slice(&seq.to_be_bytes());
    aad[25] = kind;
    aad
}

/// Keys agreed, short authentication string shown; waiting for the people to compare it.
/// Nothing but the confirmation (or an abort) flows in this state.
pub struct PendingChannel {
    role: Role,
    sid: SessionId,
    secrets: SessionSecrets,
}

impl fmt::Debug for PendingChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingChannel")
            .field("role", &self.role)
            .field("sid", &self.sid)
            .field("sas", &self.secrets.sas)
            .finish()
    }
}

impl PendingChannel {
    fn derive(
        role: Role,
        sid: SessionId,
        commit: &[u8; 32],
        agent: (&[u8; 32], &[u8; 32]),
        customer: (&[u8; 32], &[u8; 32]),
        shared: &[u8; 32],
    ) -> Result<Self, ChannelError> {
        Ok(PendingChannel {
            role,
            sid,
            secrets: derive_secrets(&sid, commit, agent, customer, shared)?,
        })
    }

    /// The 6 digits to show this side's person.
    #[must_use]
    pub fn sas(&self) -> &str {
        &self.secrets.sas
    }

    /// The secrets, for test vectors and the recording key wrap.
    #[must_use]
    pub fn secrets(&self) -> &SessionSecrets {
        &self.secrets
    }

    /// Agent only: the agent clicked "matches". Opens the channel and returns the first
    /// sealed frame ([`AppMessage::SasConfirmed`]), which is also the key confirmation.
    ///
    /// # Errors
    /// [`ChannelError::Unexpected`] on the customer's side (only the agent confirms).
    pub fn confirm_sas(self) -> Result<(Channel, PeerMessage), ChannelError> {
        if self.role != Role::Agent {
            return Err(ChannelError::Unexpected {
                expected: "the agent's confirmation",
                got: "a confirmation from the customer's side",
            });
        }
        let mut channel = Channel::new(self.role, self.sid, &self.secrets)?;
        let first = channel.seal(&AppMessage::SasConfirmed)?;
        Ok((channel, first))
    }

    /// Customer only: the first frame from the agent must be its sealed confirmation.
    ///
    /// # Errors
    /// [`ChannelError::Aborted`] (the agent saw a different SAS), [`ChannelError::NotConfirmed`],
    /// or any frame error.
    pub fn on_confirmation(self, msg: &PeerMessage) -> Result<Channel, ChannelError> {
        if self.role != Role::Customer {
            return Err(ChannelError::Unexpected {
                expected: "nothing: the agent confirms",
                got: kind_name(msg),
            });
        }
        let mut channel = Channel::new(self.role, self.sid, &self.secrets)?;
        match channel.open(msg)? {
            AppMessage::SasConfirmed => Ok(channel),
            other => Err(ChannelError::NotConfirmed {
                got: other.message_type(),
            }),
        }
    }

    /// The person saw a different string: the message that tells the other side.
    #[must_use]
    pub fn reject(self) -> PeerMessage {
        PeerMessage::Abort {
            reason: EndReason::SasMismatch,
        }
    }
}

/// Most reliable messages kept for retransmission until the other side acknowledges them.
pub const MAX_UNACKED_MESSAGES: usize = 1024;
/// Most bytes (encoded bodies) of reliable messages kept for retransmission.
pub const MAX_UNACKED_BYTES: usize = 8 << 20;
/// The receiver acknowledges after this many reliable messages (and when asked, e.g. on a
/// timer: [`Channel::take_ack`]).
pub const ACK_EVERY: u64 = 8;

/// The bytes `H` hashes for a part list: each part as a 4-byte big-endian length and its
/// bytes (the MAC input of a re-key).
fn length_prefixed(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Agent => 0,
        Role::Customer => 1,
    }
}

/// The MAC of a re-key message: HMAC-SHA-256 under the session's resume secret over
/// `"haetae-rekey-mac" || sid || role || generation || public || nonce`.
#[must_use]
pub fn rekey_mac(
    resume: &[u8],
    sid: &SessionId,
    role: Role,
    generation: u32,
    public: &[u8; 32],
    nonce: &[u8; 32],
) -> [u8; 32] {
    let data = length_prefixed(&[
        b"haetae-rekey-mac",
        &sid.0,
        &[role_byte(role)],
        &generation.to_be_bytes(),
        public,
        nonce,
    ]);
    let tag = haetae_crypto::mac::hmac(haetae_crypto::mac::HmacHash::Sha256, resume, &data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&tag[..32]);
    out
}

/// A pair of traffic keys: agent → customer, customer → agent.
pub type KeyPair = (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>);

/// One side's half of a re-key: generation, public key, nonce.
pub type RekeyHalf<'a> = (u32, &'a [u8; 32], &'a [u8; 32]);

/// The traffic keys after a re-key: HKDF-SHA-256 with IKM = the fresh X25519 secret and
/// salt = `H("haetae-rekey" || sid || resume || genA || pkA || nA || genC || pkC || nC)`,
/// info as at the first key agreement. Returns `(a->c, c->a)`.
///
/// # Errors
/// [`ChannelError::Crypto`] (HKDF length; not reached).
pub fn rekey_keys(
    sid: &SessionId,
    resume: &[u8],
    agent: RekeyHalf<'_>,
    customer: RekeyHalf<'_>,
    shared: &[u8; 32],
) -> Result<KeyPair, ChannelError> {
    let salt = hash_parts(&[
        b"haetae-rekey",
        &sid.0,
        resume,
        &agent.0.to_be_bytes(),
        agent.1,
        agent.2,
        &customer.0.to_be_bytes(),
        customer.1,
        customer.2,
    ]);
    let key = |info: &[u8]| hkdf(KdfHash::Sha256, Some(&salt), shared, info, 32);
    Ok((key(b"haetae rs v1 a->c")?, key(b"haetae rs v1 c->a")?))
}

/// Where the channel is in a resume.
enum Phase {
    /// Sealing and opening.
    Open,
    /// This side sent its `Rekey` and waits for the other side's.
    Rekeying {
        secret: X25519Secret,
        public: [u8; 32],
        nonce: [u8; 32],
        generation: u32,
    },
    /// New keys are in place and this side's `Resume` is sent; the other side's `Resume`
    /// must be the first frame under them.
    AwaitingResume,
    /// The other side's `Resume` arrived; [`Channel::retransmit`] sends what it lacks.
    Retransmit,
}

/// An open channel: seals outgoing and opens incoming [`AppMessage`]s, each direction with
/// its own key and sequence numbers.
///
/// It also carries the session across a lost relay: every reliable message
/// ([`MessageType::is_reliable`]) it seals is numbered (from 1, per direction, for the
/// whole session) and kept until the other side acknowledges it (`Ack`, bounded by
/// [`MAX_UNACKED_MESSAGES`] and [`MAX_UNACKED_BYTES`]). After a reconnect,
/// [`Channel::start_rekey`] / [`Channel::on_rekey`] agree fresh keys authenticated by the
/// session's resume secret, each side's first frame under them is `Resume { received }`,
/// and [`Channel::retransmit`] sends again exactly the reliable messages the other side did
/// not receive: nothing is lost and nothing arrives twice.
pub struct Channel {
    role: Role,
    sid: SessionId,
    send: SymmetricCipher,
    recv: SymmetricCipher,
    send_seq: u64,
    recv_seq: u64,
    closed: bool,
    resume_key: Zeroizing<Vec<u8>>,
    phase: Phase,
    /// The last generation this side proposed in a `Rekey`.
    proposed: u32,
    /// The highest generation of a valid `Rekey` from the other side.
    peer_generation: u32,
    /// Re-keys completed.
    rekeys: u32,
    /// Reliable messages sealed or queued (the number of the last one).
    reliable_sent: u64,
    /// Reliable messages the other side has acknowledged.
    peer_acked: u64,
    /// Those not acknowledged yet, numbers `peer_acked + 1 ..= reliable_sent`.
    unacked: VecDeque<AppMessage>,
    unacked_bytes: usize,
    /// Reliable messages received.
    reliable_received: u64,
    /// The count last sent in an `Ack` or `Resume`.
    acked_sent: u64,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("role", &self.role)
            .field("sid", &self.sid)
            .field("send_seq", &self.send_seq)
            .field("recv_seq", &self.recv_seq)
            .field("closed", &self.closed)
            .field("rekeys", &self.rekeys)
            .field("reliable_sent", &self.reliable_sent)
            .field("peer_acked", &self.peer_acked)
            .field("reliable_received", &self.reliable_received)
            .finish_non_exhaustive()
    }
}

fn ciphers(
    role: Role,
    a2c: &[u8],
    c2a: &[u8],
) -> Result<(SymmetricCipher, SymmetricCipher), ChannelError> {
    let suite = CipherSuite::parse("AES-256-GCM")?;
    let (send_key, recv_key) = match role {
        Role::Agent => (a2c, c2a),
        Role::Customer => (c2a, a2c),
    };
    Ok((
        SymmetricCipher::new(suite, send_key)?,
        SymmetricCipher::new(suite, recv_key)?,
    ))
}

impl Channel {
    fn new(role: Role, sid: SessionId, secrets: &SessionSecrets) -> Result<Self, ChannelError> {
        let (send, recv) = ciphers(role, &secrets.key_a2c, &secrets.key_c2a)?;
        Ok(Channel {
            role,
            sid,
            send,
            recv,
            send_seq: 0,
            recv_seq: 0,
            closed: false,
            resume_key: secrets.resume.clone(),
            phase: Phase::Open,
            proposed: 0,
            peer_generation: 0,
            rekeys: 0,
            reliable_sent: 0,
            peer_acked: 0,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            reliable_received: 0,
            acked_sent: 0,
        })
    }

    /// This side's role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The session.
    #[must_use]
    pub fn sid(&self) -> SessionId {
        self.sid
    }

    /// Whether a fatal error closed the channel.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether frames can be sealed now (not in the middle of a resume).
    #[must_use]
    pub fn is_open(&self) -> bool {
        !self.closed && matches!(self.phase, Phase::Open)
    }

    /// The sequence number the next sealed frame will carry.
    #[must_use]
    pub fn next_send_seq(&self) -> u64 {
        self.send_seq
    }

    /// Re-keys completed so far.
    #[must_use]
    pub fn rekeys(&self) -> u32 {
        self.rekeys
    }

    /// Reliable messages kept until the other side acknowledges them.
    #[must_use]
    pub fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }

    /// Reliable messages received so far.
    #[must_use]
    pub fn reliable_received(&self) -> u64 {
        self.reliable_received
    }

    fn fail(&mut self, e: ChannelError) -> ChannelError {
        if e.is_fatal() {
            self.closed = true;
        }
        e
    }

    fn seal_frame(&mut self, msg: &AppMessage) -> Result<PeerMessage, ChannelError> {
        let seq = self.send_seq;
        let Some(next) = seq.checked_add(1) else {
            return Err(self.fail(ChannelError::Exhausted));
        };
        let kind = msg.message_type().to_u8();
        let aad = frame_aad(&self.sid, Direction::sending(self.role), seq, kind);
        let ciphertext = match self
            .send
            .encrypt(&frame_nonce(seq), &aad, &msg.encode_body())
        {
            Ok(c) => c,
            Err(e) => return Err(self.fail(ChannelError::Crypto(e))),
        };
        self.send_seq = next;
        Ok(PeerMessage::Sealed {
            seq,
            kind,
            ciphertext,
        })
    }

    /// Keeps a reliable message for retransmission, within the bounds.
    fn keep(&mut self, msg: &AppMessage, size: usize) -> Result<(), ChannelError> {
        if self.unacked.len() >= MAX_UNACKED_MESSAGES
            || self.unacked_bytes.saturating_add(size) > MAX_UNACKED_BYTES
        {
            return Err(ChannelError::Backlog {
                messages: self.unacked.len(),
                bytes: self.unacked_bytes,
            });
        }
        self.unacked.push_back(msg.clone());
        self.unacked_bytes += size;
        self.reliable_sent += 1;
        Ok(())
    }

    /// Seals one message as the next frame of this side's direction.
    ///
    /// # Errors
    /// [`ChannelError::Encode`] for a message over its limits, [`ChannelError::Resuming`]
    /// during a resume, [`ChannelError::Backlog`] for a reliable message while too many
    /// wait for acknowledgement (all three leave the channel open);
    /// [`ChannelError::Closed`], [`ChannelError::Exhausted`].
    pub fn seal(&mut self, msg: &AppMessage) -> Result<PeerMessage, ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        if !matches!(self.phase, Phase::Open) {
            return Err(ChannelError::Resuming);
        }
        msg.validate().map_err(ChannelError::Encode)?;
        let reliable = msg.message_type().is_reliable();
        if reliable {
            let size = msg.encode_body().len();
            self.keep(msg, size)?;
        }
        self.seal_frame(msg)
    }

    /// Seals `msg` when the channel is open; during a resume keeps a reliable message for
    /// [`Channel::retransmit`] (`Ok(None)`: it will be sent, in order, once the session is
    /// back) and refuses others with [`ChannelError::Resuming`].
    ///
    /// # Errors
    /// As [`Channel::seal`].
    pub fn send_or_queue(&mut self, msg: &AppMessage) -> Result<Option<PeerMessage>, ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        if matches!(self.phase, Phase::Open) {
            return self.seal(msg).map(Some);
        }
        if !msg.message_type().is_reliable() {
            return Err(ChannelError::Resuming);
        }
        msg.validate().map_err(ChannelError::Encode)?;
        let size = msg.encode_body().len();
        self.keep(msg, size)?;
        Ok(None)
    }

    /// An `Ack` to send, if reliable messages arrived since the last one: when
    /// [`ACK_EVERY`] have, or any have and `force` (a timer) is set.
    ///
    /// # Errors
    /// As [`Channel::seal`].
    pub fn take_ack(&mut self, force: bool) -> Result<Option<PeerMessage>, ChannelError> {
        let waiting = self.reliable_received - self.acked_sent;
        if waiting == 0 || (!force && waiting < ACK_EVERY) || !self.is_open() {
            return Ok(None);
        }
        let received = self.reliable_received;
        let frame = self.seal(&AppMessage::Ack { seq: received })?;
        self.acked_sent = received;
        Ok(Some(frame))
    }

    /// Forgets the reliable messages the other side has (`count` in total).
    fn acknowledged(&mut self, count: u64) -> Result<(), ChannelError> {
        if count < self.peer_acked || count > self.reliable_sent {
            return Err(self.fail(ChannelError::Resume(
                "an acknowledgement of messages never sent (or going backwards)",
            )));
        }
        while self.peer_acked < count {
            if let Some(done) = self.unacked.pop_front() {
                self.unacked_bytes = self.unacked_bytes.saturating_sub(done.encode_body().len());
            }
            self.peer_acked += 1;
        }
        Ok(())
    }

    /// After a reconnect: this side's `Rekey` (a fresh X25519 key and nonce under a new
    /// generation, MAC'd with the resume secret). Until the re-key completes nothing is
    /// sealed. May be called again (another reconnect before the re-key finished): each
    /// call proposes a higher generation.
    ///
    /// # Errors
    /// [`ChannelError::Closed`], [`ChannelError::Crypto`] (no entropy).
    pub fn start_rekey(&mut self) -> Result<PeerMessage, ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        let generation = self.proposed.max(self.peer_generation).saturating_add(1);
        let secret = X25519Secret::generate()?;
        let nonce = random32()?;
        Ok(self.rekey_with(secret, nonce, generation))
    }

    /// [`Channel::start_rekey`] with a given key, nonce and generation (test vectors only).
    pub fn rekey_with(
        &mut self,
        secret: X25519Secret,
        nonce: [u8; 32],
        generation: u32,
    ) -> PeerMessage {
        let public = secret.public_key();
        let mac = rekey_mac(
            &self.resume_key,
            &self.sid,
            self.role,
            generation,
            &public,
            &nonce,
        );
        self.proposed = generation;
        self.phase = Phase::Rekeying {
            secret,
            public,
            nonce,
            generation,
        };
        PeerMessage::Rekey {
            generation,
            public,
            nonce,
            mac,
        }
    }

    /// The other side's `Rekey`: checks its MAC (the other role, a generation above every
    /// earlier one), installs the new keys with both sequence numbers back at 0 and returns
    /// this side's first frame under them, `Resume { received }`.
    ///
    /// # Errors
    /// [`ChannelError::Resume`] for a `Rekey` that does not authenticate or is not newer,
    /// [`ChannelError::Unexpected`] when this side has not started a re-key, crypto errors;
    /// all fatal.
    pub fn on_rekey(&mut self, msg: &PeerMessage) -> Result<PeerMessage, ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        let PeerMessage::Rekey {
            generation,
            public,
            nonce,
            mac,
        } = msg
        else {
            return Err(self.fail(unexpected("Rekey", msg)));
        };
        let Phase::Rekeying {
            secret,
            public: mine,
            nonce: my_nonce,
            generation: my_generation,
        } = &self.phase
        else {
            return Err(self.fail(ChannelError::Unexpected {
                expected: "a frame of the open channel",
                got: "Rekey",
            }));
        };
        let peer = match self.role {
            Role::Agent => Role::Customer,
            Role::Customer => Role::Agent,
        };
        let expected = rekey_mac(
            &self.resume_key,
            &self.sid,
            peer,
            *generation,
            public,
            nonce,
        );
        if !bool::from(expected.ct_eq(mac)) {
            return Err(self.fail(ChannelError::Resume(
                "the other side's re-key does not authenticate (not the session's key)",
            )));
        }
        if *generation <= self.peer_generation {
            return Err(self.fail(ChannelError::Resume(
                "a re-key replayed from an earlier resume",
            )));
        }
        let shared = match secret.agree(public) {
            Ok(s) => s,
            Err(e) => return Err(self.fail(ChannelError::Crypto(e))),
        };
        let (agent, customer) = match self.role {
            Role::Agent => (
                (*my_generation, mine, my_nonce),
                (*generation, public, nonce),
            ),
            Role::Customer => (
                (*generation, public, nonce),
                (*my_generation, mine, my_nonce),
            ),
        };
        let (a2c, c2a) = match rekey_keys(&self.sid, &self.resume_key, agent, customer, &shared) {
            Ok(k) => k,
            Err(e) => return Err(self.fail(e)),
        };
        let (send, recv) = match ciphers(self.role, &a2c, &c2a) {
            Ok(c) => c,
            Err(e) => return Err(self.fail(e)),
        };
        self.peer_generation = *generation;
        self.send = send;
        self.recv = recv;
        self.send_seq = 0;
        self.recv_seq = 0;
        self.phase = Phase::AwaitingResume;
        let received = self.reliable_received;
        let first = self.seal_frame(&AppMessage::Resume { received })?;
        self.acked_sent = received;
        Ok(first)
    }

    /// After the other side's `Resume`: seals again, under the new keys and in their
    /// original order, the reliable messages it did not receive (and those queued during
    /// the resume); the channel is open again.
    ///
    /// # Errors
    /// [`ChannelError::Unexpected`] when the other side's `Resume` has not arrived (fatal),
    /// [`ChannelError::Exhausted`].
    pub fn retransmit(&mut self) -> Result<Vec<PeerMessage>, ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        if !matches!(self.phase, Phase::Retransmit) {
            return Err(self.fail(ChannelError::Unexpected {
                expected: "the other side's Resume",
                got: "a retransmission request",
            }));
        }
        let pending: Vec<AppMessage> = self.unacked.iter().cloned().collect();
        let mut frames = Vec::with_capacity(pending.len());
        for msg in &pending {
            frames.push(self.seal_frame(msg)?);
        }
        self.phase = Phase::Open;
        self.rekeys = self.rekeys.saturating_add(1);
        Ok(frames)
    }

    /// Opens the next frame from the other side. Anything but the next sequence number, a
    /// frame that fails to authenticate, or a handshake message closes the channel.
    /// `Ack`s are applied here (and returned); after a re-key the first frame must be the
    /// other side's `Resume`, after which [`Channel::retransmit`] is due.
    ///
    /// # Errors
    /// [`ChannelError::Sequence`], [`ChannelError::Integrity`], [`ChannelError::Malformed`],
    /// [`ChannelError::Aborted`], [`ChannelError::Unexpected`], [`ChannelError::Resume`],
    /// [`ChannelError::Closed`].
    pub fn open(&mut self, msg: &PeerMessage) -> Result<AppMessage, ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        if matches!(self.phase, Phase::Rekeying { .. }) {
            return Err(self.fail(unexpected("Rekey", msg)));
        }
        let PeerMessage::Sealed {
            seq,
            kind,
            ciphertext,
        } = msg
        else {
            return Err(self.fail(unexpected("Sealed", msg)));
        };
        if *seq != self.recv_seq {
            let expected = self.recv_seq;
            return Err(self.fail(ChannelError::Sequence {
                expected,
                got: *seq,
            }));
        }
        let direction = match self.role {
            Role::Agent => Direction::CustomerToAgent,
            Role::Customer => Direction::AgentToCustomer,
        };
        let aad = frame_aad(&self.sid, direction, *seq, *kind);
        let Ok(body) = self.recv.decrypt(&frame_nonce(*seq), &aad, ciphertext) else {
            return Err(self.fail(ChannelError::Integrity { seq: *seq }));
        };
        let decoded =
            MessageType::parse(*kind).and_then(|kind| AppMessage::decode_body(kind, &body));
        let app = match decoded {
            Ok(app) => app,
            Err(source) => return Err(self.fail(ChannelError::Malformed { seq: *seq, source })),
        };
        // Exhaustion: the peer cannot send past u64::MAX either, so saturating is only
        // reached by a peer that breaks the rules; the next frame then fails.
        self.recv_seq = self.recv_seq.saturating_add(1);
        match (&self.phase, &app) {
            (Phase::AwaitingResume, AppMessage::Resume { received }) => {
                self.acknowledged(*received)?;
                self.phase = Phase::Retransmit;
            }
            (Phase::AwaitingResume, _) => {
                return Err(self.fail(ChannelError::Resume(
                    "the first frame after a re-key must be Resume",
                )));
            }
            (_, AppMessage::Resume { .. }) => {
                return Err(self.fail(ChannelError::Resume("a Resume outside a re-key")));
            }
            (_, AppMessage::Ack { seq }) => self.acknowledged(*seq)?,
            (_, other) if other.message_type().is_reliable() => {
                self.reliable_received = self.reliable_received.saturating_add(1);
            }
            _ => {}
        }
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Channel, Channel) {
        let sid = SessionId([1; 16]);
        let (customer, commit) = CustomerHandshake::start(sid).unwrap();
        let mut agent = AgentHandshake::start(sid).unwrap();
        let agent_key = agent.on_commit(&commit).unwrap();
        let (customer_key, customer) = customer.on_agent_key(&agent_key).unwrap();
        let agent = agent.on_customer_key(&customer_key).unwrap();
        assert_eq!(agent.sas(), customer.sas());
        let (agent, first) = agent.confirm_sas().unwrap();
        let customer = customer.on_confirmation(&first).unwrap();
        (agent, customer)
    }

    fn chat(text: &str) -> AppMessage {
        AppMessage::Chat {
            id: 0,
            text: text.into(),
        }
    }

    #[test]
    fn both_directions_carry_messages() {
        let (mut a, mut c) = pair();
        let f = a.seal(&chat("to customer")).unwrap();
        assert_eq!(c.open(&f).unwrap(), chat("to customer"));
        let f = c.seal(&chat("to agent")).unwrap();
        assert_eq!(a.open(&f).unwrap(), chat("to agent"));
    }

    #[test]
    fn a_replayed_frame_closes_the_channel() {
        let (mut a, mut c) = pair();
        let f = a.seal(&chat("once")).unwrap();
        c.open(&f).unwrap();
        assert!(matches!(
            c.open(&f),
            Err(ChannelError::Sequence {
                expected: 2,
                got: 1
            })
        ));
        assert!(c.is_closed());
        let next = a.seal(&chat("after")).unwrap();
        assert_eq!(c.open(&next), Err(ChannelError::Closed));
    }

    #[test]
    fn reordered_frames_close_the_channel() {
        let (mut a, mut c) = pair();
        let _first = a.seal(&chat("1")).unwrap();
        let second = a.seal(&chat("2")).unwrap();
        assert!(matches!(
            c.open(&second),
            Err(ChannelError::Sequence { .. })
        ));
    }

    #[test]
    fn a_flipped_bit_is_caught() {
        let (mut a, mut c) = pair();
        let PeerMessage::Sealed {
            seq,
            kind,
            mut ciphertext,
        } = a.seal(&chat("pay 100")).unwrap()
        else {
            panic!("sealed");
        };
        ciphertext[0] ^= 1;
        let tampered = PeerMessage::Sealed {
            seq,
            kind,
            ciphertext,
        };
        assert_eq!(c.open(&tampered), Err(ChannelError::Integrity { seq: 1 }));
    }

    #[test]
    fn a_changed_type_byte_is_caught() {
        let (mut a, mut c) = pair();
        let PeerMessage::Sealed {
            seq, ciphertext, ..
        } = a.seal(&AppMessage::ControlRequest).unwrap()
        else {
            panic!("sealed");
        };
        let retyped = PeerMessage::Sealed {
            seq,
            kind: MessageType::DrawingClear.to_u8(),
            ciphertext,
        };
        assert_eq!(c.open(&retyped), Err(ChannelError::Integrity { seq: 1 }));
    }

    #[test]
    fn a_frame_reflected_back_to_its_sender_is_refused() {
        let (mut a, _c) = pair();
        let mut a2 = a.seal(&chat("x")).unwrap();
        // The agent's own frame, offered to the agent as if the customer had sent it.
        if let PeerMessage::Sealed { seq, .. } = &mut a2 {
            *seq = 0;
        }
        assert!(matches!(a.open(&a2), Err(ChannelError::Integrity { .. })));
    }

    #[test]
    fn a_substituted_customer_key_breaks_the_commitment() {
        let sid = SessionId([2; 16]);
        let (_customer, commit) = CustomerHandshake::start(sid).unwrap();
        let mut agent = AgentHandshake::start(sid).unwrap();
        agent.on_commit(&commit).unwrap();
        let (_mitm, _) = CustomerHandshake::start(sid).unwrap();
        let forged = PeerMessage::CustomerKey {
            public: X25519Secret::generate().unwrap().public_key(),
            nonce: [0; 32],
        };
        assert_eq!(
            agent.on_customer_key(&forged).unwrap_err(),
            ChannelError::CommitMismatch
        );
    }

    #[test]
    fn a_relay_in_the_middle_gets_different_strings() {
        // The relay runs one handshake with each side, substituting its own keys.
        let sid = SessionId([3; 16]);
        let (customer, commit_c) = CustomerHandshake::start(sid).unwrap();
        let mut mitm_agent = AgentHandshake::start(sid).unwrap();
        let key_to_c = mitm_agent.on_commit(&commit_c).unwrap();
        let (ck, customer) = customer.on_agent_key(&key_to_c).unwrap();
        let mitm_agent_side = mitm_agent.on_customer_key(&ck).unwrap();

        let (mitm_customer, commit_m) = CustomerHandshake::start(sid).unwrap();
        let mut agent = AgentHandshake::start(sid).unwrap();
        let key_to_m = agent.on_commit(&commit_m).unwrap();
        let (mk, _mitm_customer_side) = mitm_customer.on_agent_key(&key_to_m).unwrap();
        let agent = agent.on_customer_key(&mk).unwrap();

        assert_eq!(customer.sas(), mitm_agent_side.sas());
        // What the two people read to each other. Equal with probability 1e-6.
        assert_ne!(customer.sas(), agent.sas());
    }

    #[test]
    fn the_customer_waits_for_the_confirmation() {
        let sid = SessionId([4; 16]);
        let (customer, commit) = CustomerHandshake::start(sid).unwrap();
        let mut agent = AgentHandshake::start(sid).unwrap();
        let ak = agent.on_commit(&commit).unwrap();
        let (ck, customer) = customer.on_agent_key(&ak).unwrap();
        let agent = agent.on_customer_key(&ck).unwrap();
        let mut open_agent = Channel::new(Role::Agent, sid, agent.secrets()).unwrap();
        let early = open_agent.seal(&AppMessage::ControlRequest).unwrap();
        assert_eq!(
            customer.on_confirmation(&early).unwrap_err(),
            ChannelError::NotConfirmed {
                got: MessageType::ControlRequest
            }
        );
    }

    #[test]
    fn an_abort_is_reported_as_such() {
        let sid = SessionId([5; 16]);
        let (customer, _) = CustomerHandshake::start(sid).unwrap();
        let abort = PeerMessage::Abort {
            reason: EndReason::SasMismatch,
        };
        assert_eq!(
            customer.on_agent_key(&abort).unwrap_err(),
            ChannelError::Aborted(EndReason::SasMismatch)
        );
    }

    #[test]
    fn the_agent_reveals_only_after_the_commitment_and_only_once() {
        let sid = SessionId([6; 16]);
        let mut agent = AgentHandshake::start(sid).unwrap();
        let premature = PeerMessage::CustomerKey {
            public: [9; 32],
            nonce: [9; 32],
        };
        assert!(agent.on_commit(&premature).is_err());
        agent
            .on_commit(&PeerMessage::Commit { commit: [1; 32] })
            .unwrap();
        assert!(
            agent
                .on_commit(&PeerMessage::Commit { commit: [2; 32] })
                .is_err()
        );
    }

    #[test]
    fn an_over_long_message_is_not_sent_and_the_channel_stays_open() {
        let (mut a, _c) = pair();
        let err = a.seal(&chat(&"x".repeat(5000))).unwrap_err();
        assert!(!err.is_fatal());
        assert!(!a.is_closed());
        assert_eq!(a.next_send_seq(), 1);
    }

    /// Both sides re-key and exchange Resume; returns what each retransmits.
    fn resume(a: &mut Channel, c: &mut Channel) -> (Vec<PeerMessage>, Vec<PeerMessage>) {
        let ar = a.start_rekey().unwrap();
        let cr = c.start_rekey().unwrap();
        let a_first = a.on_rekey(&cr).unwrap();
        let c_first = c.on_rekey(&ar).unwrap();
        assert!(matches!(
            a.open(&c_first).unwrap(),
            AppMessage::Resume { .. }
        ));
        assert!(matches!(
            c.open(&a_first).unwrap(),
            AppMessage::Resume { .. }
        ));
        (a.retransmit().unwrap(), c.retransmit().unwrap())
    }

    #[test]
    fn after_a_resume_exactly_the_lost_reliable_messages_arrive_once() {
        let (mut a, mut c) = pair();
        let f1 = a.seal(&chat("1")).unwrap();
        c.open(&f1).unwrap();
        let _lost2 = a.seal(&chat("2")).unwrap();
        let _lost_pointer = a
            .seal(&AppMessage::Pointer {
                x: 1,
                y: 1,
                visible: true,
            })
            .unwrap();
        let (from_a, from_c) = resume(&mut a, &mut c);
        assert!(from_c.is_empty());
        assert_eq!(from_a.len(), 1, "the chat, not the pointer");
        assert_eq!(c.open(&from_a[0]).unwrap(), chat("2"));
        // Queued during a second outage, sent after the second resume.
        let ar = a.start_rekey().unwrap();
        assert_eq!(a.send_or_queue(&chat("3")).unwrap(), None);
        assert_eq!(
            a.send_or_queue(&AppMessage::KeyFrameRequest),
            Err(ChannelError::Resuming)
        );
        assert_eq!(a.seal(&chat("x")), Err(ChannelError::Resuming));
        let cr = c.start_rekey().unwrap();
        let a_first = a.on_rekey(&cr).unwrap();
        let c_first = c.on_rekey(&ar).unwrap();
        a.open(&c_first).unwrap();
        c.open(&a_first).unwrap();
        let again = a.retransmit().unwrap();
        c.retransmit().unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(c.open(&again[0]).unwrap(), chat("3"));
        assert_eq!(a.rekeys(), 2);
        // And the channel goes on both ways.
        let f = c.seal(&chat("back")).unwrap();
        assert_eq!(a.open(&f).unwrap(), chat("back"));
    }

    #[test]
    fn a_rekey_without_the_session_secret_or_replayed_closes_the_channel() {
        let (mut a, mut c) = pair();
        a.start_rekey().unwrap();
        let PeerMessage::Rekey {
            generation,
            public,
            nonce,
            mut mac,
        } = c.start_rekey().unwrap()
        else {
            panic!("rekey");
        };
        mac[0] ^= 1;
        let forged = PeerMessage::Rekey {
            generation,
            public,
            nonce,
            mac,
        };
        assert!(matches!(a.on_rekey(&forged), Err(ChannelError::Resume(_))));
        assert!(a.is_closed());

        let (mut a, mut c) = pair();
        let ar = a.start_rekey().unwrap();
        let cr = c.start_rekey().unwrap();
        let a_first = a.on_rekey(&cr).unwrap();
        let c_first = c.on_rekey(&ar).unwrap();
        a.open(&c_first).unwrap();
        c.open(&a_first).unwrap();
        a.retransmit().unwrap();
        a.start_rekey().unwrap();
        assert!(matches!(a.on_rekey(&cr), Err(ChannelError::Resume(_))));
        assert!(a.is_closed());
    }

    #[test]
    fn acks_free_the_buffer_and_it_is_bounded() {
        let (mut a, mut c) = pair();
        for i in 0..ACK_EVERY {
            let f = a.seal(&chat(&i.to_string())).unwrap();
            c.open(&f).unwrap();
        }
        assert_eq!(a.unacknowledged(), 9);
        let ack = c.take_ack(false).unwrap().expect("an ack is due");
        a.open(&ack).unwrap();
        assert_eq!(a.unacknowledged(), 0);
        assert_eq!(c.take_ack(true).unwrap(), None);
        for _ in 0..MAX_UNACKED_MESSAGES {
            a.seal(&chat("x")).unwrap();
        }
        assert!(matches!(
            a.seal(&chat("one too many")),
            Err(ChannelError::Backlog { .. })
        ));
        assert!(!a.is_closed(), "backlog is not fatal");
        let bogus = c.seal(&AppMessage::Ack { seq: 5 }).unwrap();
        assert!(matches!(a.open(&bogus), Err(ChannelError::Resume(_))));
    }
}
