//! A Rust client of the relay (for the native helper, the tests and the benchmarks): opens
//! or joins a session, runs the key agreement over it, and moves [`PeerMessage`]s.
//!
//! [`SupportLink`] is the session as an application sees it: it sends and receives
//! [`AppMessage`]s under the [`Session`] rules and survives the loss of its relay — it
//! reconnects (the relay it was on first, then the next ones of its list, with bounded
//! backoff), presents its single-use resume token, re-keys with the other side and
//! retransmits what the other side did not receive.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::channel::{AgentHandshake, ChannelError, CustomerHandshake, PendingChannel};
use crate::codec::DecodeError;
use crate::protocol::{
    AppMessage, EndReason, MAX_RELAY_FRAME, PeerMessage, RESUME_TOKEN_LEN, RefuseReason,
    RelayMessage, Role, SessionId,
};
use crate::session::{Delivered, Session, SessionError};

/// What went wrong between this client and the relay or the other side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The WebSocket failed.
    #[error("relay connection: {0}")]
    Socket(String),
    /// The relay refused.
    #[error("the relay refused: {reason:?} (retry after {retry_after_secs} s)")]
    Refused {
        /// Why.
        reason: RefuseReason,
        /// Seconds to wait.
        retry_after_secs: u32,
    },
    /// The connection closed.
    #[error("the relay closed the connection")]
    Closed,
    /// The other side left, or the relay ended the session.
    #[error("the session ended: {0:?}")]
    Ended(EndReason),
    /// The relay sent something that does not decode.
    #[error("bad message from the relay: {0}")]
    Decode(#[from] DecodeError),
    /// A message that does not belong here.
    #[error("unexpected message from the relay: {0}")]
    Unexpected(&'static str),
    /// The key agreement failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The session rules refused a message (see [`SessionError::is_fatal`]).
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// One connection to a relay.
#[derive(Debug)]
pub struct RelayClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    resume_token: Option<[u8; RESUME_TOKEN_LEN]>,
}

impl RelayClient {
    /// Connects to a `ws://` URL.
    ///
    /// # Errors
    /// [`ClientError::Socket`].
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_RELAY_FRAME))
            .max_frame_size(Some(MAX_RELAY_FRAME));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .map_err(|e| ClientError::Socket(e.to_string()))?;
        Ok(RelayClient {
            ws,
            resume_token: None,
        })
    }

    /// The resume token the relay gave at pairing (none from a relay without a registry).
    #[must_use]
    pub fn resume_token(&self) -> Option<[u8; RESUME_TOKEN_LEN]> {
        self.resume_token
    }

    /// `Paired`, after the resume token that precedes it.
    async fn paired(&mut self) -> Result<SessionId, ClientError> {
        loop {
            match self.recv().await? {
                RelayMessage::ResumeToken { token } => self.resume_token = Some(token),
                RelayMessage::Paired { sid } => return Ok(sid),
                other => return Err(refusal(&other)),
            }
        }
    }

    /// Sends one relay message.
    ///
    /// # Errors
    /// [`ClientError::Socket`].
    pub async fn send(&mut self, msg: &RelayMessage) -> Result<(), ClientError> {
        self.send_raw(msg.encode()).await
    }

    /// Sends bytes as one WebSocket message (tests use it to send malformed frames).
    ///
    /// # Errors
    /// [`ClientError::Socket`].
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.ws
            .send(Message::binary(bytes))
            .await
            .map_err(|e| ClientError::Socket(e.to_string()))
    }

    /// The next relay message.
    ///
    /// # Errors
    /// [`ClientError::Closed`], [`ClientError::Socket`], [`ClientError::Decode`].
    pub async fn recv(&mut self) -> Result<RelayMessage, ClientError> {
        loop {
            match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Err(ClientError::Closed),
                Some(Ok(Message::Binary(b))) => return Ok(RelayMessage::decode(&b)?),
                Some(Ok(Message::Text(_))) => return Err(ClientError::Unexpected("text message")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(ClientError::Socket(e.to_string())),
            }
        }
    }

    /// Opens a session as agent `agent`: returns the client, the code and the session id.
    ///
    /// # Errors
    /// [`ClientError::Refused`] and connection errors.
    pub async fn open_as_agent(
        url: &str,
        agent: &str,
    ) -> Result<(Self, String, SessionId), ClientError> {
        let mut client = RelayClient::connect(url).await?;
        client
            .send(&RelayMessage::AgentOpen {
                agent: agent.to_owned(),
            })
            .await?;
        match client.recv().await? {
            RelayMessage::CodeIssued { sid, code, .. } => Ok((client, code, sid)),
            other => Err(refusal(&other)),
        }
    }

    /// Agent: waits until a customer joined.
    ///
    /// # Errors
    /// [`ClientError::Ended`] when the code expired, connection errors.
    pub async fn wait_paired(&mut self) -> Result<SessionId, ClientError> {
        self.paired().await
    }

    /// Joins a session with `code` as the customer.
    ///
    /// # Errors
    /// [`ClientError::Refused`] (wrong code, too many attempts) and connection errors.
    pub async fn join_as_customer(url: &str, code: &str) -> Result<(Self, SessionId), ClientError> {
        let mut client = RelayClient::connect(url).await?;
        client
            .send(&RelayMessage::CustomerJoin {
                code: code.to_owned(),
            })
            .await?;
        let sid = client.paired().await?;
        Ok((client, sid))
    }

    /// Sends a message to the other side.
    ///
    /// # Errors
    /// [`ClientError::Socket`].
    pub async fn send_peer(&mut self, msg: &PeerMessage) -> Result<(), ClientError> {
        self.send(&RelayMessage::Peer(msg.encode())).await
    }

    /// The other side's next message, as bytes (undecoded).
    ///
    /// # Errors
    /// [`ClientError::Ended`] when the other side or the relay ended the session.
    pub async fn recv_peer_bytes(&mut self) -> Result<Vec<u8>, ClientError> {
        match self.recv().await? {
            RelayMessage::Peer(bytes) => Ok(bytes),
            other => Err(refusal(&other)),
        }
    }

    /// The other side's next message.
    ///
    /// # Errors
    /// As [`RelayClient::recv_peer_bytes`], plus [`ClientError::Decode`].
    pub async fn recv_peer(&mut self) -> Result<PeerMessage, ClientError> {
        Ok(PeerMessage::decode(&self.recv_peer_bytes().await?)?)
    }

    /// Agent: runs the key agreement; returns the channel waiting for the SAS comparison.
    ///
    /// # Errors
    /// Channel errors (a substituted key), connection errors.
    pub async fn agree_as_agent(&mut self, sid: SessionId) -> Result<PendingChannel, ClientError> {
        let mut hs = AgentHandshake::start(sid)?;
        let commit = self.recv_peer().await?;
        let key = hs.on_commit(&commit)?;
        self.send_peer(&key).await?;
        let customer_key = self.recv_peer().await?;
        Ok(hs.on_customer_key(&customer_key)?)
    }

    /// Customer: runs the key agreement; returns the channel waiting for the agent's
    /// confirmation (see [`PendingChannel::on_confirmation`]).
    ///
    /// # Errors
    /// Channel errors, connection errors.
    pub async fn agree_as_customer(
        &mut self,
        sid: SessionId,
    ) -> Result<PendingChannel, ClientError> {
        let (hs, commit) = CustomerHandshake::start(sid)?;
        self.send_peer(&commit).await?;
        let agent_key = self.recv_peer().await?;
        let (reveal, pending) = hs.on_agent_key(&agent_key)?;
        self.send_peer(&reveal).await?;
        Ok(pending)
    }

    /// Splits into a sending and a receiving half, for clients that read and write at the
    /// same time (a screen stream one way, input and files the other).
    #[must_use]
    pub fn split(self) -> (RelaySender, RelayReceiver) {
        let (sink, stream) = self.ws.split();
        (RelaySender { sink }, RelayReceiver { stream })
    }

    /// Says goodbye to the relay and closes.
    pub async fn bye(mut self) {
        let _ = self
            .send(&RelayMessage::Bye {
                reason: EndReason::Normal,
            })
            .await;
        let _ = self.ws.close(None).await;
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sending half of a [`RelayClient`].
#[derive(Debug)]
pub struct RelaySender {
    sink: futures_util::stream::SplitSink<Socket, Message>,
}

impl RelaySender {
    /// Sends one relay message.
    ///
    /// # Errors
    /// [`ClientError::Socket`].
    pub async fn send(&mut self, msg: &RelayMessage) -> Result<(), ClientError> {
        self.sink
            .send(Message::binary(msg.encode()))
            .await
            .map_err(|e| ClientError::Socket(e.to_string()))
    }

    /// Sends a message to the other side.
    ///
    /// # Errors
    /// [`ClientError::Socket`].
    pub async fn send_peer(&mut self, msg: &PeerMessage) -> Result<(), ClientError> {
        self.send(&RelayMessage::Peer(msg.encode())).await
    }
}

/// The receiving half of a [`RelayClient`].
#[derive(Debug)]
pub struct RelayReceiver {
    stream: futures_util::stream::SplitStream<Socket>,
}

impl RelayReceiver {
    /// The next relay message.
    ///
    /// # Errors
    /// [`ClientError::Closed`], [`ClientError::Socket`], [`ClientError::Decode`].
    pub async fn recv(&mut self) -> Result<RelayMessage, ClientError> {
        loop {
            match self.stream.next().await {
                None | Some(Ok(Message::Close(_))) => return Err(ClientError::Closed),
                Some(Ok(Message::Binary(b))) => return Ok(RelayMessage::decode(&b)?),
                Some(Ok(Message::Text(_))) => return Err(ClientError::Unexpected("text message")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(ClientError::Socket(e.to_string())),
            }
        }
    }

    /// The other side's next message, undecoded.
    ///
    /// # Errors
    /// [`ClientError::Ended`] when the session ended, connection errors.
    pub async fn recv_peer_bytes(&mut self) -> Result<Vec<u8>, ClientError> {
        match self.recv().await? {
            RelayMessage::Peer(bytes) => Ok(bytes),
            other => Err(refusal(&other)),
        }
    }
}

fn refusal(msg: &RelayMessage) -> ClientError {
    match msg {
        RelayMessage::Refused {
            reason,
            retry_after_secs,
        } => ClientError::Refused {
            reason: *reason,
            retry_after_secs: *retry_after_secs,
        },
        RelayMessage::PeerGone { reason } | RelayMessage::Bye { reason } => {
            ClientError::Ended(*reason)
        }
        RelayMessage::AgentOpen { .. } => ClientError::Unexpected("AgentOpen"),
        RelayMessage::CodeIssued { .. } => ClientError::Unexpected("CodeIssued"),
        RelayMessage::CustomerJoin { .. } => ClientError::Unexpected("CustomerJoin"),
        RelayMessage::Paired { .. } => ClientError::Unexpected("Paired"),
        RelayMessage::Peer(_) => ClientError::Unexpected("Peer"),
        RelayMessage::Resume { .. } => ClientError::Unexpected("Resume"),
        RelayMessage::ResumeToken { .. } => ClientError::Unexpected("ResumeToken"),
    }
}

/// Whether a session that ended this way may come back on another connection: the other
/// side's connection dropped, or the relay is going away.
#[must_use]
pub fn resumable(reason: EndReason) -> bool {
    matches!(reason, EndReason::PeerLeft | EndReason::Shutdown)
}

/// How a [`SupportLink`] reconnects.
#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    /// The session is given up when it is not back after this long.
    pub give_up_after: Duration,
    /// Wait before going round the relay list again, doubling each round.
    pub initial_backoff: Duration,
    /// The longest such wait.
    pub max_backoff: Duration,
    /// Time to connect to one relay and get its answer.
    pub connect_timeout: Duration,
    /// An `Ack` goes out at least this often while reliable messages wait for one.
    pub ack_interval: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            give_up_after: Duration::from_secs(45),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            ack_interval: Duration::from_millis(500),
        }
    }
}

/// Why one resume attempt did not work.
enum Attempt {
    /// Try the next relay.
    Retry,
    /// The session cannot come back.
    Final(ClientError),
}

/// A support session that outlives its relay (see the module documentation).
#[derive(Debug)]
pub struct SupportLink {
    urls: Vec<String>,
    current: usize,
    sid: SessionId,
    role: Role,
    token: Option<[u8; RESUME_TOKEN_LEN]>,
    client: Option<RelayClient>,
    session: Session,
    policy: ReconnectPolicy,
    resumes: u32,
}

impl SupportLink {
    /// A link over a paired and confirmed `client` (connected to `urls[current]`), with the
    /// relays to fall back on.
    ///
    /// # Errors
    /// [`ClientError::Unexpected`] for an empty list or an index outside it.
    pub fn new(
        urls: Vec<String>,
        current: usize,
        client: RelayClient,
        session: Session,
        policy: ReconnectPolicy,
    ) -> Result<Self, ClientError> {
        if current >= urls.len() {
            return Err(ClientError::Unexpected(
                "relay index outside the relay list",
            ));
        }
        Ok(SupportLink {
            sid: session.channel().sid(),
            role: session.role(),
            token: client.resume_token(),
            urls,
            current,
            client: Some(client),
            session,
            policy,
            resumes: 0,
        })
    }

    /// The session (rules, channel counters).
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The relay the link is on (or was on last).
    #[must_use]
    pub fn current_url(&self) -> &str {
        &self.urls[self.current]
    }

    /// Resumes so far.
    #[must_use]
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    /// Sends a message. While the connection is down (or resuming) a reliable message is
    /// kept and sent once the session is back; others are dropped.
    ///
    /// # Errors
    /// [`ClientError::Session`] (the rules refused it; fatal ones end the session).
    pub async fn send(&mut self, msg: &AppMessage) -> Result<(), ClientError> {
        match self.session.send_or_queue(msg) {
            Ok(Some(frame)) => {
                self.write(&frame).await;
                Ok(())
            }
            Ok(None) | Err(SessionError::Channel(ChannelError::Resuming)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a frame; a write that fails marks the connection lost (the next
    /// [`SupportLink::recv`] resumes; reliable messages are kept until acknowledged).
    async fn write(&mut self, frame: &PeerMessage) {
        if let Some(client) = &mut self.client
            && client.send_peer(frame).await.is_err()
        {
            self.client = None;
        }
    }

    /// Says goodbye to the other side and the relay.
    pub async fn bye(mut self) {
        let _ = self
            .send(&AppMessage::Bye {
                reason: EndReason::Normal,
            })
            .await;
        if let Some(client) = self.client.take() {
            client.bye().await;
        }
    }

    /// The next message from the other side (acknowledgements are handled here), resuming
    /// on another relay when the connection is lost.
    ///
    /// # Errors
    /// [`ClientError::Ended`] when the other side ended the session or it could not be
    /// resumed; [`ClientError::Session`] for a refused message (fatal ones end it);
    /// [`ClientError::Decode`].
    pub async fn recv(&mut self) -> Result<Delivered, ClientError> {
        loop {
            let Some(client) = &mut self.client else {
                self.resume().await?;
                continue;
            };
            let next = tokio::time::timeout(self.policy.ack_interval, client.recv()).await;
            let msg = match next {
                Err(_) => {
                    self.ack(true).await?;
                    continue;
                }
                Ok(Ok(msg)) => msg,
                Ok(Err(ClientError::Closed | ClientError::Socket(_))) => {
                    self.client = None;
                    continue;
                }
                Ok(Err(e)) => return Err(e),
            };
            match msg {
                RelayMessage::Peer(bytes) => {
                    let peer = PeerMessage::decode(&bytes)?;
                    let delivered = self.session.receive(&peer)?;
                    self.ack(false).await?;
                    if matches!(
                        delivered,
                        Delivered::Message(AppMessage::Ack { .. } | AppMessage::Resume { .. })
                    ) {
                        continue;
                    }
                    return Ok(delivered);
                }
                RelayMessage::PeerGone { reason } | RelayMessage::Bye { reason }
                    if resumable(reason) =>
                {
                    self.client = None;
                }
                other => return Err(refusal(&other)),
            }
        }
    }

    async fn ack(&mut self, force: bool) -> Result<(), ClientError> {
        match self.session.channel_mut().take_ack(force) {
            Ok(Some(frame)) => {
                self.write(&frame).await;
                Ok(())
            }
            Ok(None) | Err(ChannelError::Resuming | ChannelError::Backlog { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reconnects and resumes: the relay it was on first, then the next ones, round after
    /// round with a growing pause, until [`ReconnectPolicy::give_up_after`].
    async fn resume(&mut self) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + self.policy.give_up_after;
        let mut backoff = self.policy.initial_backoff;
        let n = self.urls.len();
        for attempt in 0usize.. {
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            if attempt > 0 && attempt % n == 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.policy.max_backoff);
            }
            let index = (self.current + attempt) % n;
            match self.try_resume(index, deadline).await {
                Ok(()) => {
                    self.current = index;
                    self.resumes = self.resumes.saturating_add(1);
                    return Ok(());
                }
                Err(Attempt::Retry) => {}
                Err(Attempt::Final(e)) => return Err(e),
            }
        }
        Err(ClientError::Ended(EndReason::PeerLeft))
    }

    async fn try_resume(
        &mut self,
        index: usize,
        deadline: tokio::time::Instant,
    ) -> Result<(), Attempt> {
        let Some(token) = self.token else {
            return Err(Attempt::Final(ClientError::Ended(EndReason::PeerLeft)));
        };
        let connect_by = (tokio::time::Instant::now() + self.policy.connect_timeout).min(deadline);
        let Ok(Ok(mut client)) =
            tokio::time::timeout_at(connect_by, RelayClient::connect(&self.urls[index])).await
        else {
            return Err(Attempt::Retry);
        };
        let resume = RelayMessage::Resume {
            sid: self.sid,
            role: self.role,
            token,
        };
        if client.send(&resume).await.is_err() {
            return Err(Attempt::Retry);
        }
        // The new token, then (once the other side is back too) Paired.
        loop {
            let by = if self.token == Some(token) {
                connect_by
            } else {
                deadline
            };
            match tokio::time::timeout_at(by, client.recv()).await {
                Ok(Ok(RelayMessage::ResumeToken { token })) => self.token = Some(token),
                Ok(Ok(RelayMessage::Paired { sid })) if sid == self.sid => break,
                Ok(Ok(RelayMessage::Refused { reason, .. }))
                    if !matches!(
                        reason,
                        RefuseReason::InvalidOrExpired | RefuseReason::NotAllowed
                    ) =>
                {
                    return Err(Attempt::Retry);
                }
                Ok(Ok(other)) => return Err(Attempt::Final(refusal(&other))),
                Ok(Err(ClientError::Decode(e))) => {
                    return Err(Attempt::Final(ClientError::Decode(e)));
                }
                Ok(Err(_)) | Err(_) => return Err(Attempt::Retry),
            }
        }
        // Fresh keys, authenticated by the session's resume secret.
        let rekey = self
            .session
            .channel_mut()
            .start_rekey()
            .map_err(|e| Attempt::Final(e.into()))?;
        if client.send_peer(&rekey).await.is_err() {
            return Err(Attempt::Retry);
        }
        let mut expecting_rekey = true;
        loop {
            let bytes = match tokio::time::timeout_at(deadline, client.recv()).await {
                Ok(Ok(RelayMessage::Peer(bytes))) => bytes,
                Ok(Ok(RelayMessage::PeerGone { reason } | RelayMessage::Bye { reason }))
                    if resumable(reason) =>
                {
                    return Err(Attempt::Retry);
                }
                Ok(Ok(other)) => return Err(Attempt::Final(refusal(&other))),
                Ok(Err(ClientError::Decode(e))) => {
                    return Err(Attempt::Final(ClientError::Decode(e)));
                }
                Ok(Err(_)) | Err(_) => return Err(Attempt::Retry),
            };
            let peer = PeerMessage::decode(&bytes).map_err(|e| Attempt::Final(e.into()))?;
            if expecting_rekey {
                let first = self
                    .session
                    .channel_mut()
                    .on_rekey(&peer)
                    .map_err(|e| Attempt::Final(e.into()))?;
                if client.send_peer(&first).await.is_err() {
                    return Err(Attempt::Retry);
                }
                expecting_rekey = false;
                continue;
            }
            match self.session.receive(&peer) {
                Ok(Delivered::Message(AppMessage::Resume { .. })) => break,
                Ok(_) => {
                    return Err(Attempt::Final(ClientError::Unexpected(
                        "a message before Resume",
                    )));
                }
                Err(e) => return Err(Attempt::Final(e.into())),
            }
        }
        let frames = self
            .session
            .channel_mut()
            .retransmit()
            .map_err(|e| Attempt::Final(e.into()))?;
        for frame in &frames {
            if client.send_peer(frame).await.is_err() {
                // Lost again: the next resume sends them again (they stay unacknowledged).
                return Err(Attempt::Retry);
            }
        }
        self.client = Some(client);
        Ok(())
    }
}
