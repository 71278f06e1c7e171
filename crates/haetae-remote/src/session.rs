//! The rules of a support session on top of the [`Channel`]: who may send what, keyboard
//! and mouse control only while the customer grants it, file data only after the receiver's
//! person accepted the offer, and every file checked against its size and SHA-256.
//!
//! The customer's side enforces these rules on what it receives, so a modified agent
//! console cannot escalate: an agent without the direct-control grade cannot even ask for
//! control, and input events after a revoke are dropped, not executed.

use std::collections::HashMap;

use haetae_crypto::hash::{HashAlgorithm, Hasher};
use subtle::ConstantTimeEq;

use crate::channel::{Channel, ChannelError, Role};
use crate::policy::{PolicyError, PolicyGrant};
use crate::protocol::{AppMessage, MessageType, PeerMessage, SessionId};

/// Most file transfers in progress per direction.
pub const MAX_TRANSFERS: usize = 8;

/// What the agent may do in this session (from the agent's grade in the Center).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct SessionPolicy {
    /// May show the laser pointer.
    pub pointer: bool,
    /// May draw over the customer's screen.
    pub drawing: bool,
    /// May send a URL for the customer to open.
    pub url_push: bool,
    /// `direct` grade: may request keyboard/mouse control.
    pub direct_control: bool,
    /// May send and receive files.
    pub file_transfer: bool,
    /// Largest file accepted, in bytes.
    pub max_file_size: u64,
}

impl SessionPolicy {
    /// Nothing beyond chat and the screen: what the customer's side allows until a valid
    /// Center-signed policy has arrived.
    #[must_use]
    pub fn none() -> Self {
        SessionPolicy {
            pointer: false,
            drawing: false,
            url_push: false,
            direct_control: false,
            file_transfer: false,
            max_file_size: 0,
        }
    }

    /// The `indirect` grade: pointer, drawing and URLs only.
    #[must_use]
    pub fn indirect() -> Self {
        SessionPolicy {
            pointer: true,
            drawing: true,
            url_push: true,
            direct_control: false,
            file_transfer: false,
            max_file_size: 0,
        }
    }

    /// The `direct` grade: control and files (up to 2 GiB) too.
    #[must_use]
    pub fn direct() -> Self {
        SessionPolicy {
            pointer: true,
            drawing: true,
            url_push: true,
            direct_control: true,
            file_transfer: true,
            max_file_size: 2 << 30,
        }
    }
}

/// Why a message was refused. [`SessionError::Channel`] with a fatal channel error ends the
/// session; the others refuse one message and the session goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The channel failed (see [`ChannelError::is_fatal`]).
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// This role may never send this type (a modified client): the session ends.
    #[error("a {role:?} may not send {kind:?}; the session ends")]
    WrongSender {
        /// The sender's role.
        role: Role,
        /// The message type.
        kind: MessageType,
    },
    /// The agent's grade does not allow it.
    #[error("{kind:?} is not allowed by the agent's grade")]
    NotPermitted {
        /// The message type.
        kind: MessageType,
    },
    /// Keyboard/mouse control is not granted (never granted, or revoked).
    #[error("control is not granted; input event dropped")]
    ControlNotGranted,
    /// The agent's session policy is not the Center's, not for this session, expired, sent
    /// twice, or sent to a side that has none to check: the session ends.
    #[error("session policy refused: {0}")]
    Policy(PolicyError),
    /// Control was granted without a pending request.
    #[error("control can only be granted after the agent asked for it")]
    NoControlRequest,
    /// A file message for a transfer that is not in a state that allows it.
    #[error("file transfer {id}: {why}")]
    File {
        /// Transfer id.
        id: u32,
        /// What was wrong.
        why: &'static str,
    },
}

impl SessionError {
    /// Whether the session must end.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            SessionError::Channel(e) => e.is_fatal(),
            SessionError::WrongSender { .. } | SessionError::Policy(_) => true,
            _ => false,
        }
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum TransferState {
    Offered,
    Accepted,
}

#[derive(Debug)]
struct Transfer {
    size: u64,
    sha256: [u8; 32],
    received: u64,
    state: TransferState,
    hasher: Option<Hasher>,
}

/// What [`Session::receive`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// A message to act on.
    Message(AppMessage),
    /// A file arrived whole and its SHA-256 matches the offer: it may now be scanned and
    /// offered for saving.
    FileComplete {
        /// Transfer id.
        id: u32,
        /// Its size.
        size: u64,
    },
}

/// One end of a support session: the channel plus the rules.
#[derive(Debug)]
pub struct Session {
    channel: Channel,
    policy: SessionPolicy,
    control_requested: bool,
    control_granted: bool,
    /// Offers we received, by id.
    incoming: HashMap<u32, Transfer>,
    /// Offers we sent, by id: (size, accepted, bytes sent).
    outgoing: HashMap<u32, (u64, bool, u64)>,
    dropped_inputs: u64,
    /// The customer's side: how to check the agent's signed policy, and what it granted.
    policy_check: Option<PolicyCheck>,
    grant: Option<PolicyGrant>,
}

/// What the customer's side needs to check the agent's signed policy.
#[derive(Debug, Clone, Copy)]
struct PolicyCheck {
    center_key: [u8; 32],
    sid: SessionId,
    now_unix: u64,
}

fn allowed_from(role: Role, kind: MessageType) -> bool {
    use MessageType as T;
    match kind {
        T::SasConfirmed
        | T::KeyFrameRequest
        | T::Input
        | T::ControlRequest
        | T::Pointer
        | T::Drawing
        | T::DrawingClear
        | T::UrlPush
        | T::Policy => role == Role::Agent,
        T::ScreenFrame | T::ScreenChunk | T::ControlGrant | T::ControlRevoke => {
            role == Role::Customer
        }
        T::Chat
        | T::Ack
        | T::FileOffer
        | T::FileAccept
        | T::FileRefuse
        | T::FileChunk
        | T::FileDone
        | T::Bye
        | T::Error
        | T::Resume => true,
    }
}

fn other(role: Role) -> Role {
    match role {
        Role::Agent => Role::Customer,
        Role::Customer => Role::Agent,
    }
}

impl Session {
    /// A session over an open channel, under the agent's policy.
    #[must_use]
    pub fn new(channel: Channel, policy: SessionPolicy) -> Self {
        Session {
            channel,
            policy,
            control_requested: false,
            control_granted: false,
            incoming: HashMap::new(),
            outgoing: HashMap::new(),
            dropped_inputs: 0,
            policy_check: None,
            grant: None,
        }
    }

    /// The customer's side of a session whose agent must show a policy the Center signed
    /// (key `center_key`) for session `sid`: until it does, only chat and the screen flow
    /// ([`SessionPolicy::none`]); after it, exactly what the policy grants. A bad, foreign,
    /// expired or second policy ends the session.
    #[must_use]
    pub fn awaiting_policy(
        channel: Channel,
        center_key: [u8; 32],
        sid: SessionId,
        now_unix: u64,
    ) -> Self {
        let mut s = Session::new(channel, SessionPolicy::none());
        s.policy_check = Some(PolicyCheck {
            center_key,
            sid,
            now_unix,
        });
        s
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// The Center-signed policy the agent showed, once checked.
    #[must_use]
    pub fn grant(&self) -> Option<&PolicyGrant> {
        self.grant.as_ref()
    }

    /// This side's role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.channel.role()
    }

    /// Whether keyboard/mouse control is granted now.
    #[must_use]
    pub fn control_granted(&self) -> bool {
        self.control_granted
    }

    /// Input events received and dropped because control was not granted.
    #[must_use]
    pub fn dropped_inputs(&self) -> u64 {
        self.dropped_inputs
    }

    /// The channel (for its sequence numbers and state).
    #[must_use]
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The channel, for a resume (re-key, retransmission, acknowledgements).
    pub fn channel_mut(&mut self) -> &mut Channel {
        &mut self.channel
    }

    fn check_grade(&self, kind: MessageType) -> Result<(), SessionError> {
        let needs_direct = matches!(
            kind,
            MessageType::ControlRequest | MessageType::ControlGrant | MessageType::Input
        );
        let tool_refused = match kind {
            MessageType::Pointer => !self.policy.pointer,
            MessageType::Drawing | MessageType::DrawingClear => !self.policy.drawing,
            MessageType::UrlPush => !self.policy.url_push,
            _ => false,
        };
        if tool_refused {
            return Err(SessionError::NotPermitted { kind });
        }
        let needs_files = matches!(
            kind,
            MessageType::FileOffer
                | MessageType::FileAccept
                | MessageType::FileChunk
                | MessageType::FileDone
        );
        if (needs_direct && !self.policy.direct_control)
            || (needs_files && !self.policy.file_transfer)
        {
            return Err(SessionError::NotPermitted { kind });
        }
        Ok(())
    }

    /// Seals a message from this side, after checking that this side may send it now.
    ///
    /// # Errors
    /// [`SessionError::WrongSender`] (nothing is sent), [`SessionError::NotPermitted`],
    /// [`SessionError::ControlNotGranted`], [`SessionError::File`], channel errors.
    pub fn send(&mut self, msg: &AppMessage) -> Result<PeerMessage, SessionError> {
        self.send_inner(msg, false)?
            .ok_or(SessionError::Channel(ChannelError::Resuming))
    }

    /// As [`Session::send`], but during a resume a reliable message is kept for
    /// retransmission ([`Channel::send_or_queue`]): `Ok(None)`.
    ///
    /// # Errors
    /// As [`Session::send`].
    pub fn send_or_queue(&mut self, msg: &AppMessage) -> Result<Option<PeerMessage>, SessionError> {
        self.send_inner(msg, true)
    }

    fn send_inner(
        &mut self,
        msg: &AppMessage,
        queue: bool,
    ) -> Result<Option<PeerMessage>, SessionError> {
        let role = self.role();
        let kind = msg.message_type();
        if !allowed_from(role, kind) {
            return Err(SessionError::WrongSender { role, kind });
        }
        self.check_grade(kind)?;
        match msg {
            AppMessage::Input(_) if !self.control_granted => {
                return Err(SessionError::ControlNotGranted);
            }
            AppMessage::ControlGrant if !self.control_requested => {
                return Err(SessionError::NoControlRequest);
            }
            AppMessage::FileOffer { id, size, .. } => {
                if *size > self.policy.max_file_size {
                    return Err(SessionError::File {
                        id: *id,
                        why: "larger than the session's file size limit",
                    });
                }
                if self.outgoing.contains_key(id) || self.outgoing.len() >= MAX_TRANSFERS {
                    return Err(SessionError::File {
                        id: *id,
                        why: "id in use, or too many transfers in progress",
                    });
                }
            }
            AppMessage::FileAccept { id } => match self.incoming.get(id) {
                Some(t) if t.state == TransferState::Offered => {}
                _ => {
                    return Err(SessionError::File {
                        id: *id,
                        why: "no pending offer with this id",
                    });
                }
            },
            AppMessage::FileChunk { id, offset, data } => match self.outgoing.get(id) {
                Some((size, true, sent))
                    if *offset == *sent && sent.saturating_add(data.len() as u64) <= *size => {}
                _ => {
                    return Err(SessionError::File {
                        id: *id,
                        why: "not accepted by the receiver, or chunk out of order or past the offered size",
                    });
                }
            },
            _ => {}
        }
        let sealed = if queue {
            self.channel.send_or_queue(msg)?
        } else {
            Some(self.channel.seal(msg)?)
        };
        // State changes only once the frame exists (or is queued).
        match msg {
            AppMessage::ControlGrant => self.control_granted = true,
            AppMessage::ControlRevoke => {
                self.control_granted = false;
                self.control_requested = false;
            }
            AppMessage::ControlRequest => self.control_requested = true,
            AppMessage::FileOffer { id, size, .. } => {
                self.outgoing.insert(*id, (*size, false, 0));
            }
            AppMessage::FileAccept { id } => {
                if let Some(t) = self.incoming.get_mut(id) {
                    t.state = TransferState::Accepted;
                    t.hasher = Some(Hasher::new(HashAlgorithm::Sha256));
                }
            }
            AppMessage::FileRefuse { id } => {
                self.incoming.remove(id);
                self.outgoing.remove(id);
            }
            AppMessage::FileChunk { id, data, .. } => {
                if let Some(t) = self.outgoing.get_mut(id) {
                    t.2 += data.len() as u64;
                }
            }
            AppMessage::FileDone { id } => {
                self.outgoing.remove(id);
            }
            _ => {}
        }
        Ok(sealed)
    }

    /// Opens a frame from the other side and applies the rules.
    ///
    /// # Errors
    /// Fatal: channel failures and [`SessionError::WrongSender`]. Not fatal (the message is
    /// dropped): [`SessionError::NotPermitted`], [`SessionError::ControlNotGranted`],
    /// [`SessionError::NoControlRequest`], [`SessionError::File`].
    pub fn receive(&mut self, frame: &PeerMessage) -> Result<Delivered, SessionError> {
        let msg = self.channel.open(frame)?;
        let sender = other(self.role());
        let kind = msg.message_type();
        if !allowed_from(sender, kind) {
            return Err(SessionError::WrongSender { role: sender, kind });
        }
        self.check_grade(kind)?;
        match &msg {
            AppMessage::Policy { payload, signature } => {
                if let Some(check) = self.policy_check {
                    if self.grant.is_some() {
                        return Err(SessionError::Policy(PolicyError::Malformed(
                            "a second policy in one session",
                        )));
                    }
                    let grant = crate::policy::verify(
                        &check.center_key,
                        payload,
                        signature,
                        check.sid,
                        check.now_unix,
                    )
                    .map_err(SessionError::Policy)?;
                    self.policy = grant.session_policy();
                    self.grant = Some(grant);
                }
            }
            AppMessage::Input(_) if !self.control_granted => {
                self.dropped_inputs += 1;
                return Err(SessionError::ControlNotGranted);
            }
            AppMessage::ControlRequest => self.control_requested = true,
            AppMessage::ControlGrant => {
                if !self.control_requested {
                    return Err(SessionError::NoControlRequest);
                }
                self.control_granted = true;
            }
            AppMessage::ControlRevoke => {
                self.control_granted = false;
                self.control_requested = false;
            }
            AppMessage::FileOffer {
                id, size, sha256, ..
            } => {
                if *size > self.policy.max_file_size {
                    return Err(SessionError::File {
                        id: *id,
                        why: "larger than the session's file size limit",
                    });
                }
                if self.incoming.contains_key(id) || self.incoming.len() >= MAX_TRANSFERS {
                    return Err(SessionError::File {
                        id: *id,
                        why: "id in use, or too many transfers in progress",
                    });
                }
                self.incoming.insert(
                    *id,
                    Transfer {
                        size: *size,
                        sha256: *sha256,
                        received: 0,
                        state: TransferState::Offered,
                        hasher: None,
                    },
                );
            }
            AppMessage::FileAccept { id } => match self.outgoing.get_mut(id) {
                Some(t) if !t.1 => t.1 = true,
                _ => {
                    return Err(SessionError::File {
                        id: *id,
                        why: "accept for an offer this side did not make",
                    });
                }
            },
            AppMessage::FileRefuse { id } => {
                self.outgoing.remove(id);
                self.incoming.remove(id);
            }
            AppMessage::FileChunk { id, offset, data } => {
                let Some(t) = self.incoming.get_mut(id) else {
                    return Err(SessionError::File {
                        id: *id,
                        why: "data for a transfer that was never offered",
                    });
                };
                if t.state != TransferState::Accepted {
                    // Data before consent: drop the transfer entirely.
                    self.incoming.remove(id);
                    return Err(SessionError::File {
                        id: *id,
                        why: "data before the receiver accepted; transfer cancelled",
                    });
                }
                let end = t.received.saturating_add(data.len() as u64);
                if *offset != t.received || end > t.size {
                    self.incoming.remove(id);
                    return Err(SessionError::File {
                        id: *id,
                        why: "chunk out of order or past the offered size; transfer cancelled",
                    });
                }
                t.received = end;
                if let Some(h) = t.hasher.as_mut() {
                    h.update(data);
                }
            }
            AppMessage::FileDone { id } => {
                let Some(t) = self.incoming.remove(id) else {
                    return Err(SessionError::File {
                        id: *id,
                        why: "done for a transfer that was never offered",
                    });
                };
                let digest = t.hasher.map(Hasher::finalize).unwrap_or_default();
                let complete = t.state == TransferState::Accepted
                    && t.received == t.size
                    && bool::from(digest.as_slice().ct_eq(&t.sha256));
                if !complete {
                    return Err(SessionError::File {
                        id: *id,
                        why: "incomplete, or its SHA-256 differs from the offer: discard it",
                    });
                }
                return Ok(Delivered::FileComplete {
                    id: *id,
                    size: t.size,
                });
            }
            _ => {}
        }
        Ok(Delivered::Message(msg))
    }
}
