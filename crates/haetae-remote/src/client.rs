//! A Rust client of the relay (for the native helper, the tests and the benchmarks): opens
//! or joins a session, runs the key agreement over it, and moves [`PeerMessage`]s.

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::channel::{AgentHandshake, ChannelError, CustomerHandshake, PendingChannel};
use crate::codec::DecodeError;
use crate::protocol::{
    EndReason, MAX_RELAY_FRAME, PeerMessage, RefuseReason, RelayMessage, SessionId,
};

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
}

/// One connection to a relay.
#[derive(Debug)]
pub struct RelayClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
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
        Ok(RelayClient { ws })
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
        match self.recv().await? {
            RelayMessage::Paired { sid } => Ok(sid),
            other => Err(refusal(&other)),
        }
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
        match client.recv().await? {
            RelayMessage::Paired { sid } => Ok((client, sid)),
            other => Err(refusal(&other)),
        }
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
    }
}
