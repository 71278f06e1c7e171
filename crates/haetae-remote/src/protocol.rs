//! The typed remote-support messages and their versioned binary encoding (see
//! `docs/remote.md` for the tables). Three layers, each a frame of [`crate::codec`]:
//!
//! - [`RelayMessage`]: between a client and the relay (open, code, join, pairing, refusals,
//!   and [`RelayMessage::Peer`], which carries bytes the relay forwards without reading);
//! - [`PeerMessage`]: between agent and customer, inside `Peer`: the key agreement in the
//!   clear (public values only) and [`PeerMessage::Sealed`] frames after it;
//! - [`AppMessage`]: what a sealed frame holds (chat, screen, input, control, files,
//!   pointer, drawing, URL, bye, error). Its type byte travels in the clear, authenticated as
//!   associated data, as `remote-e2e.md` specifies.
//!
//! Every field has a maximum checked before allocation; decoding never panics.

use crate::codec::{Codec, DecodeError, FRAME_HEADER, Reader, Writer, frame, unframe};

/// Most bytes of chat text in one message.
pub const MAX_CHAT: usize = 4096;
/// Most data bytes in one screen or file chunk.
pub const MAX_CHUNK: usize = 64 * 1024;
/// Most bytes of a sealed frame's ciphertext (largest body plus the 16-byte tag).
pub const MAX_SEALED: usize = MAX_CHUNK + 256;
/// Most bytes of one encoded [`PeerMessage`].
pub const MAX_PEER_FRAME: usize = MAX_SEALED + 64;
/// Most bytes of one encoded [`RelayMessage`]: what a relay accepts as one WebSocket message.
pub const MAX_RELAY_FRAME: usize = MAX_PEER_FRAME + 16;
/// Most bytes of a file name (no path: a bare name).
pub const MAX_FILE_NAME: usize = 255;
/// Most bytes of a pushed URL.
pub const MAX_URL: usize = 2048;
/// Longest signed session policy text.
pub const MAX_POLICY: usize = 1024;
/// Most points in one freehand path.
pub const MAX_PATH_POINTS: usize = 1024;
/// Most bytes of an agent id.
pub const MAX_AGENT_ID: usize = 64;
/// Most bytes of an error message.
pub const MAX_ERROR_TEXT: usize = 512;
/// Most bytes of a key code name (`KeyboardEvent.code`, e.g. `KeyA`, `ShiftLeft`).
pub const MAX_KEY_CODE: usize = 32;

/// A session id chosen by the relay: 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 16]);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the whole id in logs: the first four bytes tell sessions apart.
        write!(
            f,
            "SessionId({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Which end of the session a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The bank's agent console.
    Agent,
    /// The customer's page (or helper).
    Customer,
}

/// Bytes of a resume token ([`RelayMessage::ResumeToken`]).
pub const RESUME_TOKEN_LEN: usize = 32;

/// Why the relay refused a request. Deliberately coarse: a wrong, expired, burned or used
/// code all read [`RefuseReason::InvalidOrExpired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// The code is not valid now (wrong, expired, used, burned).
    InvalidOrExpired,
    /// Too many failed attempts from this address; retry after the time given.
    TooManyAttempts,
    /// This address may not open agent sessions.
    NotAllowed,
    /// The relay is at its session limit.
    Busy,
    /// The code belongs to a session waiting on another relay.
    OtherRelay,
    /// The message was not valid at this point.
    Protocol,
    /// The relay cannot reach its shared state right now.
    Unavailable,
}

/// Why a session or connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// One side said goodbye.
    Normal,
    /// Nothing moved for longer than the idle timeout.
    Idle,
    /// The other side's connection closed.
    PeerLeft,
    /// A malformed or out-of-place message.
    Protocol,
    /// A frame above the size limit.
    TooLarge,
    /// No customer joined before the code expired.
    PairTimeout,
    /// The relay is stopping.
    Shutdown,
    /// The humans found the short authentication strings differ.
    SasMismatch,
    /// A frame failed to open or arrived out of order: the channel closed (fail closed).
    Integrity,
}

macro_rules! byte_enum {
    ($ty:ident, $what:literal, { $($variant:ident = $value:literal),+ $(,)? }) => {
        impl $ty {
            /// The wire byte.
            #[must_use]
            pub fn to_u8(self) -> u8 {
                match self { $($ty::$variant => $value),+ }
            }
            fn from_u8(v: u8, at: usize) -> Result<Self, DecodeError> {
                match v {
                    $($value => Ok($ty::$variant),)+
                    _ => Err(DecodeError::Unknown { what: $what, at, value: u32::from(v) }),
                }
            }
        }
        impl Codec for $ty {
            fn encode(&self, w: &mut Writer) {
                w.u8(self.to_u8());
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let at = r.offset();
                let v = r.u8($what)?;
                Self::from_u8(v, at)
            }
        }
    };
}

byte_enum!(Role, "role", { Agent = 0, Customer = 1 });
byte_enum!(RefuseReason, "refuse reason", {
    InvalidOrExpired = 1, TooManyAttempts = 2, NotAllowed = 3, Busy = 4, OtherRelay = 5,
    Protocol = 6, Unavailable = 7,
});
byte_enum!(EndReason, "end reason", {
    Normal = 0, Idle = 1, PeerLeft = 2, Protocol = 3, TooLarge = 4, PairTimeout = 5,
    Shutdown = 6, SasMismatch = 7, Integrity = 8,
});

impl Codec for SessionId {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SessionId(r.array("session id")?))
    }
}

/// Between a client (agent console, customer page, helper) and the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayMessage {
    /// Agent → relay: open a session and issue an access code for it.
    AgentOpen {
        /// The agent's id (from the Center login), for the session history.
        agent: String,
    },
    /// Relay → agent: the code to read to the customer, and the session it opens.
    CodeIssued {
        /// The session.
        sid: SessionId,
        /// The access code, decimal digits.
        code: String,
        /// Seconds until the code expires.
        expires_in_secs: u32,
    },
    /// Customer → relay: join the session this code opens.
    CustomerJoin {
        /// The digits the customer typed.
        code: String,
    },
    /// Relay → both: the other side is here; the key agreement may start.
    Paired {
        /// The session.
        sid: SessionId,
    },
    /// Relay → client: the request was refused; the connection closes.
    Refused {
        /// Why.
        reason: RefuseReason,
        /// Seconds to wait before trying again (0 when waiting does not help).
        retry_after_secs: u32,
    },
    /// Either way: opaque bytes for the other side (an encoded [`PeerMessage`]).
    Peer(Vec<u8>),
    /// Relay → client: the other side is gone.
    PeerGone {
        /// Why.
        reason: EndReason,
    },
    /// Either way: this side ends the connection.
    Bye {
        /// Why.
        reason: EndReason,
    },
    /// Client → relay, instead of `AgentOpen`/`CustomerJoin` after a lost connection: resume
    /// session `sid` as `role` with the token the relay gave this side last.
    Resume {
        /// The session.
        sid: SessionId,
        /// Which side this is.
        role: Role,
        /// The side's current resume token (single use).
        token: [u8; RESUME_TOKEN_LEN],
    },
    /// Relay → client, before `Paired` (at pairing and after each resume): the token that
    /// resumes this side's session once; the relay keeps only its hash.
    ResumeToken {
        /// The token.
        token: [u8; RESUME_TOKEN_LEN],
    },
}

impl RelayMessage {
    /// Encodes as one frame.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let ty = match self {
            RelayMessage::AgentOpen { agent } => {
                w.string(agent);
                1
            }
            RelayMessage::CodeIssued {
                sid,
                code,
                expires_in_secs,
            } => {
                sid.encode(&mut w);
                w.string(code).u32(*expires_in_secs);
                2
            }
            RelayMessage::CustomerJoin { code } => {
                w.string(code);
                3
            }
            RelayMessage::Paired { sid } => {
                sid.encode(&mut w);
                4
            }
            RelayMessage::Refused {
                reason,
                retry_after_secs,
            } => {
                reason.encode(&mut w);
                w.u32(*retry_after_secs);
                5
            }
            RelayMessage::Peer(bytes) => {
                w.raw(bytes);
                6
            }
            RelayMessage::PeerGone { reason } => {
                reason.encode(&mut w);
                7
            }
            RelayMessage::Bye { reason } => {
                reason.encode(&mut w);
                8
            }
            RelayMessage::Resume { sid, role, token } => {
                sid.encode(&mut w);
                role.encode(&mut w);
                w.raw(token);
                9
            }
            RelayMessage::ResumeToken { token } => {
                w.raw(token);
                10
            }
        };
        frame(ty, &w.into_bytes())
    }

    /// Decodes one frame.
    ///
    /// # Errors
    /// Any [`DecodeError`]; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (ty, body) = unframe(bytes, MAX_RELAY_FRAME - FRAME_HEADER)?;
        let mut r = Reader::at(body, FRAME_HEADER);
        let msg = match ty {
            1 => RelayMessage::AgentOpen {
                agent: r.string(MAX_AGENT_ID, "agent id")?,
            },
            2 => {
                let sid = SessionId::read(&mut r)?;
                let at = r.offset();
                let code = r.string(9, "access code")?;
                check_digits(&code, at)?;
                RelayMessage::CodeIssued {
                    sid,
                    code,
                    expires_in_secs: r.u32("code lifetime")?,
                }
            }
            3 => {
                // Up to 32 bytes, so that a customer's typo (spaces, dashes) reaches the
                // relay and is counted as a failed attempt rather than a protocol error.
                RelayMessage::CustomerJoin {
                    code: r.string(32, "access code")?,
                }
            }
            4 => RelayMessage::Paired {
                sid: SessionId::read(&mut r)?,
            },
            5 => RelayMessage::Refused {
                reason: RefuseReason::read(&mut r)?,
                retry_after_secs: r.u32("retry after")?,
            },
            6 => {
                let rest = r.remaining();
                if rest > MAX_PEER_FRAME {
                    return Err(DecodeError::TooLong {
                        what: "peer frame",
                        at: r.offset(),
                        len: rest,
                        max: MAX_PEER_FRAME,
                    });
                }
                RelayMessage::Peer(r.take(rest, "peer frame")?.to_vec())
            }
            7 => RelayMessage::PeerGone {
                reason: EndReason::read(&mut r)?,
            },
            8 => RelayMessage::Bye {
                reason: EndReason::read(&mut r)?,
            },
            9 => RelayMessage::Resume {
                sid: SessionId::read(&mut r)?,
                role: Role::read(&mut r)?,
                token: r.array("resume token")?,
            },
            10 => RelayMessage::ResumeToken {
                token: r.array("resume token")?,
            },
            other => {
                return Err(DecodeError::Unknown {
                    what: "relay message type",
                    at: 1,
                    value: u32::from(other),
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

fn check_digits(code: &str, at: usize) -> Result<(), DecodeError> {
    if (6..=9).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            what: "access code",
            at,
            why: "an issued code is 6 to 9 decimal digits",
        })
    }
}

/// Between agent and customer, through the relay: the key agreement of `remote-e2e.md`
/// (public values only) and the sealed frames after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage {
    /// Customer → agent, step 1: `H("haetae-commit" || sid || pkC || nC)`.
    Commit {
        /// The commitment.
        commit: [u8; 32],
    },
    /// Agent → customer, step 2: sent only after the commitment arrived.
    AgentKey {
        /// X25519 public key `pkA`.
        public: [u8; 32],
        /// Nonce `nA`.
        nonce: [u8; 32],
    },
    /// Customer → agent, step 3: the values committed to.
    CustomerKey {
        /// X25519 public key `pkC`.
        public: [u8; 32],
        /// Nonce `nC`.
        nonce: [u8; 32],
    },
    /// A sealed [`AppMessage`]: AES-256-GCM under the direction's key.
    Sealed {
        /// Sequence number, per direction, from 0.
        seq: u64,
        /// The [`AppMessage`] type byte (authenticated, not encrypted).
        kind: u8,
        /// Ciphertext and 16-byte tag.
        ciphertext: Vec<u8>,
    },
    /// Either side, in the clear: the session is abandoned (the humans saw different
    /// short authentication strings, or a check failed).
    Abort {
        /// Why.
        reason: EndReason,
    },
    /// Either side, after a resume: a fresh X25519 key and nonce for the next key
    /// generation, authenticated by an HMAC under the current resume secret (see
    /// [`crate::channel::Channel::start_rekey`]).
    Rekey {
        /// The generation these keys open (1 for the first resume).
        generation: u32,
        /// Fresh X25519 public key.
        public: [u8; 32],
        /// Fresh nonce.
        nonce: [u8; 32],
        /// HMAC-SHA-256 under the resume secret.
        mac: [u8; 32],
    },
}

impl PeerMessage {
    /// Encodes as one frame.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let ty = match self {
            PeerMessage::Commit { commit } => {
                w.raw(commit);
                0x10
            }
            PeerMessage::AgentKey { public, nonce } => {
                w.raw(public).raw(nonce);
                0x11
            }
            PeerMessage::CustomerKey { public, nonce } => {
                w.raw(public).raw(nonce);
                0x12
            }
            PeerMessage::Sealed {
                seq,
                kind,
                ciphertext,
            } => {
                w.u64(*seq).u8(*kind).bytes32(ciphertext);
                0x13
            }
            PeerMessage::Abort { reason } => {
                reason.encode(&mut w);
                0x14
            }
            PeerMessage::Rekey {
                generation,
                public,
                nonce,
                mac,
            } => {
                w.u32(*generation).raw(public).raw(nonce).raw(mac);
                0x15
            }
        };
        frame(ty, &w.into_bytes())
    }

    /// Decodes one frame.
    ///
    /// # Errors
    /// Any [`DecodeError`]; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (ty, body) = unframe(bytes, MAX_PEER_FRAME - FRAME_HEADER)?;
        let mut r = Reader::at(body, FRAME_HEADER);
        let msg = match ty {
            0x10 => PeerMessage::Commit {
                commit: r.array("commitment")?,
            },
            0x11 => PeerMessage::AgentKey {
                public: r.array("agent public key")?,
                nonce: r.array("agent nonce")?,
            },
            0x12 => PeerMessage::CustomerKey {
                public: r.array("customer public key")?,
                nonce: r.array("customer nonce")?,
            },
            0x13 => {
                let seq = r.u64("sequence number")?;
                let at = r.offset();
                let kind = r.u8("sealed message type")?;
                MessageType::from_u8(kind, at)?;
                PeerMessage::Sealed {
                    seq,
                    kind,
                    ciphertext: r.bytes32(MAX_SEALED, "ciphertext")?.to_vec(),
                }
            }
            0x14 => PeerMessage::Abort {
                reason: EndReason::read(&mut r)?,
            },
            0x15 => PeerMessage::Rekey {
                generation: r.u32("key generation")?,
                public: r.array("rekey public key")?,
                nonce: r.array("rekey nonce")?,
                mac: r.array("rekey mac")?,
            },
            other => {
                return Err(DecodeError::Unknown {
                    what: "peer message type",
                    at: 1,
                    value: u32::from(other),
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

/// The type byte of an [`AppMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum MessageType {
    SasConfirmed,
    Chat,
    Ack,
    ScreenFrame,
    ScreenChunk,
    KeyFrameRequest,
    Input,
    ControlRequest,
    ControlGrant,
    ControlRevoke,
    FileOffer,
    FileAccept,
    FileRefuse,
    FileChunk,
    FileDone,
    Pointer,
    Drawing,
    DrawingClear,
    UrlPush,
    Bye,
    Error,
    Policy,
    Resume,
}

byte_enum!(MessageType, "sealed message type", {
    SasConfirmed = 0x20, Chat = 0x21, Ack = 0x22, ScreenFrame = 0x23, ScreenChunk = 0x24,
    KeyFrameRequest = 0x25, Input = 0x26, ControlRequest = 0x27, ControlGrant = 0x28,
    ControlRevoke = 0x29, FileOffer = 0x2a, FileAccept = 0x2b, FileRefuse = 0x2c,
    FileChunk = 0x2d, FileDone = 0x2e, Pointer = 0x2f, Drawing = 0x30, DrawingClear = 0x31,
    UrlPush = 0x32, Bye = 0x33, Error = 0x34, Policy = 0x35, Resume = 0x36,
});

impl MessageType {
    /// Decodes a type byte.
    ///
    /// # Errors
    /// [`DecodeError::Unknown`].
    pub fn parse(v: u8) -> Result<Self, DecodeError> {
        MessageType::from_u8(v, 0)
    }

    /// Whether the receiver acknowledges it and a sender retransmits it after a reconnect
    /// (chat, control, files, consent, drawings, URLs); screen data, input, the pointer and
    /// the acknowledgements themselves are never retransmitted.
    #[must_use]
    pub fn is_reliable(self) -> bool {
        !matches!(
            self,
            MessageType::ScreenFrame
                | MessageType::ScreenChunk
                | MessageType::KeyFrameRequest
                | MessageType::Input
                | MessageType::Pointer
                | MessageType::Ack
                | MessageType::Resume
        )
    }
}

/// The video codec of a screen frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 Constrained Baseline (`avc1.42E0xx`), Annex B.
    H264,
    /// VP8.
    Vp8,
    /// A still image (PNG), for slow links and tests.
    Png,
}
byte_enum!(VideoCodec, "video codec", { H264 = 1, Vp8 = 2, Png = 3 });

/// A mouse button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum MouseButton {
    Left,
    Middle,
    Right,
}
byte_enum!(MouseButton, "mouse button", { Left = 0, Middle = 1, Right = 2 });

/// A keyboard or mouse event from the agent. Coordinates are fractions of the shared
/// screen in 1/65535 units, so they do not depend on either side's scaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// The pointer moved.
    PointerMove {
        /// x in 1/65535 of the width.
        x: u16,
        /// y in 1/65535 of the height.
        y: u16,
    },
    /// A button went down or up at a position.
    Button {
        /// Which button.
        button: MouseButton,
        /// Pressed (true) or released.
        down: bool,
        /// x.
        x: u16,
        /// y.
        y: u16,
    },
    /// The wheel turned.
    Wheel {
        /// Horizontal steps.
        dx: i16,
        /// Vertical steps.
        dy: i16,
    },
    /// A key went down or up.
    Key {
        /// `KeyboardEvent.code` (`KeyA`, `Enter`, `ShiftLeft`).
        code: String,
        /// Pressed (true) or released.
        down: bool,
        /// Modifier bits: 1 Shift, 2 Control, 4 Alt, 8 Meta.
        modifiers: u8,
    },
}

impl Codec for InputEvent {
    fn encode(&self, w: &mut Writer) {
        match self {
            InputEvent::PointerMove { x, y } => {
                w.u8(1).u16(*x).u16(*y);
            }
            InputEvent::Button { button, down, x, y } => {
                w.u8(2);
                button.encode(w);
                w.bool(*down).u16(*x).u16(*y);
            }
            InputEvent::Wheel { dx, dy } => {
                w.u8(3).i16(*dx).i16(*dy);
            }
            InputEvent::Key {
                code,
                down,
                modifiers,
            } => {
                w.u8(4).string(code).bool(*down).u8(*modifiers);
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        Ok(match r.u8("input event kind")? {
            1 => InputEvent::PointerMove {
                x: r.u16("x")?,
                y: r.u16("y")?,
            },
            2 => InputEvent::Button {
                button: MouseButton::read(r)?,
                down: r.bool("button down")?,
                x: r.u16("x")?,
                y: r.u16("y")?,
            },
            3 => InputEvent::Wheel {
                dx: r.i16("wheel dx")?,
                dy: r.i16("wheel dy")?,
            },
            4 => {
                let code_at = r.offset();
                let code = r.string(MAX_KEY_CODE, "key code")?;
                if code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(DecodeError::Invalid {
                        what: "key code",
                        at: code_at,
                        why: "a key code is 1-32 ASCII letters and digits",
                    });
                }
                let down = r.bool("key down")?;
                let modifiers_at = r.offset();
                let modifiers = r.u8("modifiers")?;
                if modifiers > 0x0f {
                    return Err(DecodeError::Invalid {
                        what: "modifiers",
                        at: modifiers_at,
                        why: "only bits 0-3 (Shift, Control, Alt, Meta) are defined",
                    });
                }
                InputEvent::Key {
                    code,
                    down,
                    modifiers,
                }
            }
            other => {
                return Err(DecodeError::Unknown {
                    what: "input event kind",
                    at,
                    value: u32::from(other),
                });
            }
        })
    }
}

/// A shape the agent draws over the customer's screen (same coordinates as input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A straight line.
    Line {
        /// Start.
        from: (u16, u16),
        /// End.
        to: (u16, u16),
    },
    /// A rectangle outline between two corners.
    Rect {
        /// One corner.
        from: (u16, u16),
        /// The opposite corner.
        to: (u16, u16),
    },
    /// An ellipse inside the rectangle between two corners.
    Ellipse {
        /// One corner.
        from: (u16, u16),
        /// The opposite corner.
        to: (u16, u16),
    },
    /// A freehand path.
    Path {
        /// 2 to [`MAX_PATH_POINTS`] points.
        points: Vec<(u16, u16)>,
    },
}

fn write_point(w: &mut Writer, p: (u16, u16)) {
    w.u16(p.0).u16(p.1);
}
fn read_point(r: &mut Reader<'_>) -> Result<(u16, u16), DecodeError> {
    Ok((r.u16("x")?, r.u16("y")?))
}

impl Codec for Shape {
    fn encode(&self, w: &mut Writer) {
        match self {
            Shape::Line { from, to } | Shape::Rect { from, to } | Shape::Ellipse { from, to } => {
                w.u8(match self {
                    Shape::Line { .. } => 1,
                    Shape::Rect { .. } => 2,
                    _ => 3,
                });
                write_point(w, *from);
                write_point(w, *to);
            }
            Shape::Path { points } => {
                w.u8(4);
                w.u16(u16::try_from(points.len()).unwrap_or(u16::MAX));
                for p in points.iter().take(usize::from(u16::MAX)) {
                    write_point(w, *p);
                }
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        Ok(match r.u8("shape kind")? {
            1 => Shape::Line {
                from: read_point(r)?,
                to: read_point(r)?,
            },
            2 => Shape::Rect {
                from: read_point(r)?,
                to: read_point(r)?,
            },
            3 => Shape::Ellipse {
                from: read_point(r)?,
                to: read_point(r)?,
            },
            4 => {
                let count_at = r.offset();
                let count = usize::from(r.u16("point count")?);
                if !(2..=MAX_PATH_POINTS).contains(&count) {
                    return Err(DecodeError::Invalid {
                        what: "point count",
                        at: count_at,
                        why: "a path has 2 to 1024 points",
                    });
                }
                let mut points = Vec::with_capacity(count);
                for _ in 0..count {
                    points.push(read_point(r)?);
                }
                Shape::Path { points }
            }
            other => {
                return Err(DecodeError::Unknown {
                    what: "shape kind",
                    at,
                    value: u32::from(other),
                });
            }
        })
    }
}

/// What a sealed frame carries, after the key agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppMessage {
    /// Agent → customer: the agent confirmed that both short authentication strings match.
    /// The first sealed frame of a session; it is also the key confirmation.
    SasConfirmed,
    /// Chat text.
    Chat {
        /// The sender's message number (for acknowledgement and de-duplication).
        id: u64,
        /// The text (at most [`MAX_CHAT`] bytes).
        text: String,
    },
    /// The receiver has received this many reliable messages (see
    /// [`MessageType::is_reliable`]) from the sender since the session started; the sender
    /// may forget them.
    Ack {
        /// Reliable messages received so far in this direction.
        seq: u64,
    },
    /// Customer → agent: a screen frame starts; its data follows in `chunks` chunks.
    ScreenFrame {
        /// Frame number (wraps).
        frame: u32,
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
        /// The codec.
        codec: VideoCodec,
        /// Whether it decodes alone.
        key_frame: bool,
        /// Capture time in microseconds since the session started.
        timestamp_us: u64,
        /// Encoded length in bytes.
        total_len: u32,
        /// Number of [`AppMessage::ScreenChunk`] that follow.
        chunks: u16,
    },
    /// Customer → agent: part of a screen frame.
    ScreenChunk {
        /// Frame number.
        frame: u32,
        /// Chunk index from 0.
        index: u16,
        /// The bytes (at most [`MAX_CHUNK`]).
        data: Vec<u8>,
    },
    /// Agent → customer: send a key frame (one was lost).
    KeyFrameRequest,
    /// Agent → customer: a keyboard or mouse event (only while control is granted).
    Input(InputEvent),
    /// Agent → customer: asks for keyboard/mouse control.
    ControlRequest,
    /// Customer → agent: the customer granted control.
    ControlGrant,
    /// Customer → agent: the customer took control back.
    ControlRevoke,
    /// Offers a file.
    FileOffer {
        /// Transfer id, chosen by the sender.
        id: u32,
        /// Bare file name (no directories).
        name: String,
        /// Size in bytes.
        size: u64,
        /// SHA-256 of the whole file.
        sha256: [u8; 32],
    },
    /// The receiver's human accepted the offer.
    FileAccept {
        /// Transfer id.
        id: u32,
    },
    /// The receiver's human refused the offer (or a check failed).
    FileRefuse {
        /// Transfer id.
        id: u32,
    },
    /// Part of an accepted file.
    FileChunk {
        /// Transfer id.
        id: u32,
        /// Offset of `data` in the file.
        offset: u64,
        /// The bytes (at most [`MAX_CHUNK`]).
        data: Vec<u8>,
    },
    /// The sender has sent every chunk.
    FileDone {
        /// Transfer id.
        id: u32,
    },
    /// Agent → customer: the laser pointer.
    Pointer {
        /// x.
        x: u16,
        /// y.
        y: u16,
        /// Shown (true) or hidden.
        visible: bool,
    },
    /// Agent → customer: a shape to draw over the screen.
    Drawing {
        /// The shape.
        shape: Shape,
        /// Colour as 0xRRGGBBAA.
        color: u32,
        /// Line width in pixels, 1-32.
        width: u8,
    },
    /// Agent → customer: remove every drawing.
    DrawingClear,
    /// Agent → customer: a web address to open (the customer accepts or not).
    UrlPush {
        /// An `https://` or `http://` URL.
        url: String,
    },
    /// Ends the session.
    Bye {
        /// Why.
        reason: EndReason,
    },
    /// Something the receiver could not do (a non-fatal error).
    Error {
        /// Error code.
        code: u16,
        /// Human-readable text.
        message: String,
    },
    /// Agent → customer, right after `SasConfirmed`: the session policy the Control Center
    /// signed for this agent and session (see [`crate::policy`]); the customer's side
    /// checks the signature with the Center's public key and holds the agent to it.
    Policy {
        /// The signed text (`haetae-remote-policy v1` lines).
        payload: String,
        /// Ed25519 signature of the payload's bytes by the Center's key.
        signature: [u8; 64],
    },
    /// Either side, the first sealed frame under new keys after a resume: how many reliable
    /// messages this side has received so far; the other side retransmits the rest.
    Resume {
        /// Reliable messages received so far in this direction.
        received: u64,
    },
}

impl AppMessage {
    /// Its type byte.
    #[must_use]
    pub fn message_type(&self) -> MessageType {
        match self {
            AppMessage::SasConfirmed => MessageType::SasConfirmed,
            AppMessage::Chat { .. } => MessageType::Chat,
            AppMessage::Ack { .. } => MessageType::Ack,
            AppMessage::ScreenFrame { .. } => MessageType::ScreenFrame,
            AppMessage::ScreenChunk { .. } => MessageType::ScreenChunk,
            AppMessage::KeyFrameRequest => MessageType::KeyFrameRequest,
            AppMessage::Input(_) => MessageType::Input,
            AppMessage::ControlRequest => MessageType::ControlRequest,
            AppMessage::ControlGrant => MessageType::ControlGrant,
            AppMessage::ControlRevoke => MessageType::ControlRevoke,
            AppMessage::FileOffer { .. } => MessageType::FileOffer,
            AppMessage::FileAccept { .. } => MessageType::FileAccept,
            AppMessage::FileRefuse { .. } => MessageType::FileRefuse,
            AppMessage::FileChunk { .. } => MessageType::FileChunk,
            AppMessage::FileDone { .. } => MessageType::FileDone,
            AppMessage::Pointer { .. } => MessageType::Pointer,
            AppMessage::Drawing { .. } => MessageType::Drawing,
            AppMessage::DrawingClear => MessageType::DrawingClear,
            AppMessage::UrlPush { .. } => MessageType::UrlPush,
            AppMessage::Bye { .. } => MessageType::Bye,
            AppMessage::Error { .. } => MessageType::Error,
            AppMessage::Policy { .. } => MessageType::Policy,
            AppMessage::Resume { .. } => MessageType::Resume,
        }
    }

    /// The body bytes (what is encrypted); the type byte goes beside them.
    #[must_use]
    pub fn encode_body(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            AppMessage::SasConfirmed
            | AppMessage::KeyFrameRequest
            | AppMessage::ControlRequest
            | AppMessage::ControlGrant
            | AppMessage::ControlRevoke
            | AppMessage::DrawingClear => {}
            AppMessage::Chat { id, text } => {
                w.u64(*id).string(text);
            }
            AppMessage::Ack { seq } => {
                w.u64(*seq);
            }
            AppMessage::Resume { received } => {
                w.u64(*received);
            }
            AppMessage::ScreenFrame {
                frame,
                width,
                height,
                codec,
                key_frame,
                timestamp_us,
                total_len,
                chunks,
            } => {
                w.u32(*frame).u16(*width).u16(*height);
                codec.encode(&mut w);
                w.bool(*key_frame)
                    .u64(*timestamp_us)
                    .u32(*total_len)
                    .u16(*chunks);
            }
            AppMessage::ScreenChunk { frame, index, data } => {
                w.u32(*frame).u16(*index).bytes32(data);
            }
            AppMessage::Input(event) => event.encode(&mut w),
            AppMessage::FileOffer {
                id,
                name,
                size,
                sha256,
            } => {
                w.u32(*id).string(name).u64(*size).raw(sha256);
            }
            AppMessage::FileAccept { id }
            | AppMessage::FileRefuse { id }
            | AppMessage::FileDone { id } => {
                w.u32(*id);
            }
            AppMessage::FileChunk { id, offset, data } => {
                w.u32(*id).u64(*offset).bytes32(data);
            }
            AppMessage::Pointer { x, y, visible } => {
                w.u16(*x).u16(*y).bool(*visible);
            }
            AppMessage::Drawing {
                shape,
                color,
                width,
            } => {
                shape.encode(&mut w);
                w.u32(*color).u8(*width);
            }
            AppMessage::UrlPush { url } => {
                w.string(url);
            }
            AppMessage::Bye { reason } => reason.encode(&mut w),
            AppMessage::Error { code, message } => {
                w.u16(*code).string(message);
            }
            AppMessage::Policy { payload, signature } => {
                w.string(payload).raw(signature);
            }
        }
        w.into_bytes()
    }

    /// Decodes a body of type `kind`.
    ///
    /// # Errors
    /// Any [`DecodeError`]; never panics.
    pub fn decode_body(kind: MessageType, body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let msg = match kind {
            MessageType::SasConfirmed => AppMessage::SasConfirmed,
            MessageType::KeyFrameRequest => AppMessage::KeyFrameRequest,
            MessageType::ControlRequest => AppMessage::ControlRequest,
            MessageType::ControlGrant => AppMessage::ControlGrant,
            MessageType::ControlRevoke => AppMessage::ControlRevoke,
            MessageType::DrawingClear => AppMessage::DrawingClear,
            MessageType::Chat => AppMessage::Chat {
                id: r.u64("chat id")?,
                text: r.string(MAX_CHAT, "chat text")?,
            },
            MessageType::Ack => AppMessage::Ack {
                seq: r.u64("acknowledged sequence number")?,
            },
            MessageType::Resume => AppMessage::Resume {
                received: r.u64("messages received")?,
            },
            MessageType::ScreenFrame => AppMessage::ScreenFrame {
                frame: r.u32("frame number")?,
                width: r.u16("width")?,
                height: r.u16("height")?,
                codec: VideoCodec::read(&mut r)?,
                key_frame: r.bool("key frame")?,
                timestamp_us: r.u64("timestamp")?,
                total_len: r.u32("frame length")?,
                chunks: r.u16("chunk count")?,
            },
            MessageType::ScreenChunk => AppMessage::ScreenChunk {
                frame: r.u32("frame number")?,
                index: r.u16("chunk index")?,
                data: r.bytes32(MAX_CHUNK, "screen chunk")?.to_vec(),
            },
            MessageType::Input => AppMessage::Input(InputEvent::read(&mut r)?),
            MessageType::FileOffer => {
                let id = r.u32("transfer id")?;
                let at = r.offset();
                let name = r.string(MAX_FILE_NAME, "file name")?;
                check_file_name(&name, at)?;
                AppMessage::FileOffer {
                    id,
                    name,
                    size: r.u64("file size")?,
                    sha256: r.array("file SHA-256")?,
                }
            }
            MessageType::FileAccept => AppMessage::FileAccept {
                id: r.u32("transfer id")?,
            },
            MessageType::FileRefuse => AppMessage::FileRefuse {
                id: r.u32("transfer id")?,
            },
            MessageType::FileDone => AppMessage::FileDone {
                id: r.u32("transfer id")?,
            },
            MessageType::FileChunk => AppMessage::FileChunk {
                id: r.u32("transfer id")?,
                offset: r.u64("file offset")?,
                data: r.bytes32(MAX_CHUNK, "file chunk")?.to_vec(),
            },
            MessageType::Pointer => AppMessage::Pointer {
                x: r.u16("x")?,
                y: r.u16("y")?,
                visible: r.bool("pointer visible")?,
            },
            MessageType::Drawing => {
                let shape = Shape::read(&mut r)?;
                let color = r.u32("colour")?;
                let at = r.offset();
                let width = r.u8("line width")?;
                if !(1..=32).contains(&width) {
                    return Err(DecodeError::Invalid {
                        what: "line width",
                        at,
                        why: "a line is 1 to 32 pixels wide",
                    });
                }
                AppMessage::Drawing {
                    shape,
                    color,
                    width,
                }
            }
            MessageType::UrlPush => {
                let at = r.offset();
                let url = r.string(MAX_URL, "URL")?;
                check_url(&url, at)?;
                AppMessage::UrlPush { url }
            }
            MessageType::Bye => AppMessage::Bye {
                reason: EndReason::read(&mut r)?,
            },
            MessageType::Error => AppMessage::Error {
                code: r.u16("error code")?,
                message: r.string(MAX_ERROR_TEXT, "error text")?,
            },
            MessageType::Policy => AppMessage::Policy {
                payload: r.string(MAX_POLICY, "session policy")?,
                signature: r.array("policy signature")?,
            },
        };
        r.finish()?;
        Ok(msg)
    }

    /// Checks the limits a decoder would check, so that a sender never seals a message the
    /// receiver must refuse (over-long text, a path in a file name, a `javascript:` URL).
    ///
    /// # Errors
    /// The [`DecodeError`] the receiver would report.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let body = self.encode_body();
        AppMessage::decode_body(self.message_type(), &body).and_then(|back| {
            if &back == self {
                Ok(())
            } else {
                Err(DecodeError::Invalid {
                    what: "message",
                    at: 0,
                    why: "a field exceeds its length prefix",
                })
            }
        })
    }
}

fn check_file_name(name: &str, at: usize) -> Result<(), DecodeError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control());
    if bad {
        Err(DecodeError::Invalid {
            what: "file name",
            at,
            why: "a file name is a bare name: not empty, no '/', '\\', ':' or control characters, not '.' or '..'",
        })
    } else {
        Ok(())
    }
}

fn check_url(url: &str, at: usize) -> Result<(), DecodeError> {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    if scheme_ok && !url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            what: "URL",
            at,
            why: "only http:// and https:// URLs without spaces or control characters are sent",
        })
    }
}

/// One example of every message, for tests and the shared vectors.
#[must_use]
pub fn examples() -> Vec<AppMessage> {
    vec![
        AppMessage::SasConfirmed,
        AppMessage::Chat {
            id: 1,
            text: "안녕하세요, 상담원입니다".into(),
        },
        AppMessage::Ack { seq: 41 },
        AppMessage::ScreenFrame {
            frame: 7,
            width: 1280,
            height: 720,
            codec: VideoCodec::H264,
            key_frame: true,
            timestamp_us: 1_000_000,
            total_len: 5,
            chunks: 1,
        },
        AppMessage::ScreenChunk {
            frame: 7,
            index: 0,
            data: vec![0, 0, 0, 1, 0x67],
        },
        AppMessage::KeyFrameRequest,
        AppMessage::Input(InputEvent::PointerMove { x: 100, y: 200 }),
        AppMessage::Input(InputEvent::Button {
            button: MouseButton::Left,
            down: true,
            x: 1,
            y: 2,
        }),
        AppMessage::Input(InputEvent::Wheel { dx: 0, dy: -3 }),
        AppMessage::Input(InputEvent::Key {
            code: "KeyA".into(),
            down: true,
            modifiers: 1,
        }),
        AppMessage::ControlRequest,
        AppMessage::ControlGrant,
        AppMessage::ControlRevoke,
        AppMessage::FileOffer {
            id: 3,
            name: "statement.pdf".into(),
            size: 3,
            sha256: [0xab; 32],
        },
        AppMessage::FileAccept { id: 3 },
        AppMessage::FileRefuse { id: 4 },
        AppMessage::FileChunk {
            id: 3,
            offset: 0,
            data: b"abc".to_vec(),
        },
        AppMessage::FileDone { id: 3 },
        AppMessage::Pointer {
            x: 32768,
            y: 16384,
            visible: true,
        },
        AppMessage::Drawing {
            shape: Shape::Path {
                points: vec![(0, 0), (10, 10), (20, 5)],
            },
            color: 0xff00_00ff,
            width: 3,
        },
        AppMessage::Drawing {
            shape: Shape::Rect {
                from: (1, 2),
                to: (3, 4),
            },
            color: 0x00ff_00ff,
            width: 1,
        },
        AppMessage::DrawingClear,
        AppMessage::UrlPush {
            url: "https://bank.example/help".into(),
        },
        AppMessage::Bye {
            reason: EndReason::Normal,
        },
        AppMessage::Error {
            code: 2,
            message: "file refused".into(),
        },
        AppMessage::Policy {
            payload: "haetae-remote-policy v1\nagent=kim\n".into(),
            signature: [7; 64],
        },
        AppMessage::Resume { received: 17 },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_message_round_trips() {
        for msg in examples() {
            let body = msg.encode_body();
            assert_eq!(
                AppMessage::decode_body(msg.message_type(), &body).unwrap(),
                msg
            );
            assert!(msg.validate().is_ok());
        }
    }

    #[test]
    fn every_relay_message_round_trips() {
        let sid = SessionId([9; 16]);
        for msg in [
            RelayMessage::AgentOpen {
                agent: "agent-7".into(),
            },
            RelayMessage::CodeIssued {
                sid,
                code: "012345678".into(),
                expires_in_secs: 300,
            },
            RelayMessage::CustomerJoin {
                code: "012345678".into(),
            },
            RelayMessage::Paired { sid },
            RelayMessage::Refused {
                reason: RefuseReason::TooManyAttempts,
                retry_after_secs: 60,
            },
            RelayMessage::Peer(vec![1, 2, 3]),
            RelayMessage::PeerGone {
                reason: EndReason::Idle,
            },
            RelayMessage::Bye {
                reason: EndReason::Normal,
            },
            RelayMessage::Resume {
                sid,
                role: Role::Customer,
                token: [5; RESUME_TOKEN_LEN],
            },
            RelayMessage::ResumeToken {
                token: [6; RESUME_TOKEN_LEN],
            },
        ] {
            assert_eq!(RelayMessage::decode(&msg.encode()).unwrap(), msg);
        }
    }

    #[test]
    fn a_file_name_with_a_path_is_refused() {
        for name in ["../etc/passwd", "a/b", "C:evil", "..", "", "a\u{0}b"] {
            let msg = AppMessage::FileOffer {
                id: 1,
                name: name.into(),
                size: 1,
                sha256: [0; 32],
            };
            assert!(
                matches!(
                    msg.validate(),
                    Err(DecodeError::Invalid {
                        what: "file name",
                        ..
                    })
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn only_web_urls_are_pushed() {
        for url in ["javascript:alert(1)", "file:///etc/passwd", "https://a b"] {
            let msg = AppMessage::UrlPush { url: url.into() };
            assert!(msg.validate().is_err(), "{url:?}");
        }
        assert!(
            AppMessage::UrlPush {
                url: "HTTPS://bank.example".into()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn over_long_chat_is_refused_by_validate() {
        let msg = AppMessage::Chat {
            id: 0,
            text: "x".repeat(MAX_CHAT + 1),
        };
        assert!(matches!(msg.validate(), Err(DecodeError::TooLong { .. })));
    }

    #[test]
    fn an_unknown_sealed_type_is_refused_at_decode() {
        let bytes = frame(0x13, &[0, 0, 0, 0, 0, 0, 0, 0, 0x99, 0, 0, 0, 0]);
        assert!(matches!(
            PeerMessage::decode(&bytes),
            Err(DecodeError::Unknown {
                what: "sealed message type",
                ..
            })
        ));
    }

    #[test]
    fn every_prefix_of_every_message_fails_cleanly() {
        for msg in examples() {
            let body = msg.encode_body();
            for cut in 0..body.len() {
                assert!(AppMessage::decode_body(msg.message_type(), &body[..cut]).is_err());
            }
        }
    }
}
