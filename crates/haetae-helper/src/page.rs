//! The page's side of the pairing, in Rust: what the customer's page does in JavaScript
//! (the same channel code as `proto.js`), used by the tests and as the reference for the
//! page.

use futures_util::{SinkExt, StreamExt};
use haetae_remote::channel::{AgentHandshake, Channel};
use haetae_remote::protocol::{AppMessage, PeerMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::launch::channel_sid;

/// Why the page could not talk to the helper.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The WebSocket was refused or failed (the HTTP status for a refused upgrade).
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The helper closed the connection.
    #[error("the helper closed the connection")]
    Closed,
    /// A channel or protocol error.
    #[error("channel: {0}")]
    Channel(String),
}

/// A page paired with the helper.
pub struct PageLink {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    channel: Channel,
}

impl std::fmt::Debug for PageLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageLink").finish_non_exhaustive()
    }
}

/// The HTTP status of a refused upgrade, if that is what `e` is.
#[must_use]
pub fn refused_status(e: &PageError) -> Option<u16> {
    match e {
        PageError::WebSocket(s) => s
            .strip_prefix("HTTP ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok()),
        _ => None,
    }
}

fn ws_err(e: &tokio_tungstenite::tungstenite::Error) -> PageError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(resp) => PageError::WebSocket(format!("HTTP {}", resp.status().as_u16())),
        other => PageError::WebSocket(other.to_string()),
    }
}

impl PageLink {
    /// Connects to the helper on 127.0.0.1:`port` as `origin`, and pairs with `ticket`.
    ///
    /// # Errors
    /// [`PageError`]; a wrong ticket shows as [`PageError::Closed`] on the first receive.
    pub async fn connect(
        port: u16,
        origin: &str,
        ticket: &[u8; 32],
    ) -> Result<PageLink, PageError> {
        let mut req = format!("ws://127.0.0.1:{port}/")
            .into_client_request()
            .map_err(|e| ws_err(&e))?;
        req.headers_mut().insert(
            "origin",
            HeaderValue::from_str(origin).map_err(|e| PageError::WebSocket(e.to_string()))?,
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| ws_err(&e))?;
        let ch = |e: haetae_remote::channel::ChannelError| PageError::Channel(e.to_string());
        let mut handshake = AgentHandshake::start(channel_sid(ticket)).map_err(ch)?;
        let commit = recv_peer(&mut ws).await?;
        let agent_key = handshake.on_commit(&commit).map_err(ch)?;
        ws.send(Message::binary(agent_key.encode()))
            .await
            .map_err(|e| ws_err(&e))?;
        let customer_key = recv_peer(&mut ws).await?;
        let pending = handshake.on_customer_key(&customer_key).map_err(ch)?;
        let (channel, first) = pending.confirm_sas().map_err(ch)?;
        ws.send(Message::binary(first.encode()))
            .await
            .map_err(|e| ws_err(&e))?;
        Ok(PageLink { ws, channel })
    }

    /// Seals and sends one message; returns its sequence number.
    ///
    /// # Errors
    /// [`PageError`].
    pub async fn send(&mut self, msg: &AppMessage) -> Result<u64, PageError> {
        let seq = self.channel.next_send_seq();
        let frame = self
            .channel
            .seal(msg)
            .map_err(|e| PageError::Channel(e.to_string()))?;
        self.ws
            .send(Message::binary(frame.encode()))
            .await
            .map_err(|e| ws_err(&e))?;
        Ok(seq)
    }

    /// Sends raw bytes (tests: replays and tampering).
    ///
    /// # Errors
    /// [`PageError`].
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), PageError> {
        self.ws
            .send(Message::binary(bytes))
            .await
            .map_err(|e| ws_err(&e))
    }

    /// Seals a message without sending it (tests).
    ///
    /// # Errors
    /// [`PageError::Channel`].
    pub fn seal(&mut self, msg: &AppMessage) -> Result<PeerMessage, PageError> {
        self.channel
            .seal(msg)
            .map_err(|e| PageError::Channel(e.to_string()))
    }

    /// Receives and opens the next message, with the sequence number it came with.
    ///
    /// # Errors
    /// [`PageError::Closed`] when the helper closed, [`PageError::Channel`].
    pub async fn recv(&mut self) -> Result<(u64, AppMessage), PageError> {
        let frame = recv_peer(&mut self.ws).await?;
        let seq = match &frame {
            PeerMessage::Sealed { seq, .. } => *seq,
            _ => u64::MAX,
        };
        let msg = self
            .channel
            .open(&frame)
            .map_err(|e| PageError::Channel(e.to_string()))?;
        Ok((seq, msg))
    }
}

async fn recv_peer(
    ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
) -> Result<PeerMessage, PageError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => {
                return PeerMessage::decode(&b).map_err(|e| PageError::Channel(e.to_string()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return Err(PageError::Closed),
        }
    }
}
