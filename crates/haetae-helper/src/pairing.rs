//! Pairing with the customer's page: a WebSocket on 127.0.0.1 at a random port that only the
//! Center's origin may open, one connection at a time, and a key agreement (haetae-remote's
//! channel) whose keys depend on the launch ticket. From then on every message is sealed
//! with AES-256-GCM and numbered: nothing on the machine can read, forge, replay or reorder
//! the page's commands.
//!
//! Wire: one WebSocket binary message = one encoded [`PeerMessage`]. The helper plays the
//! channel's *customer* role (it commits first), the page the *agent* role; the channel's
//! session id is [`crate::launch::channel_sid`] of the ticket:
//!
//! ```text
//! helper -> page  Commit
//! page -> helper  AgentKey
//! helper -> page  CustomerKey
//! page -> helper  Sealed(SasConfirmed)   // authenticates only with the ticket's keys
//! then Sealed(AppMessage) both ways
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use haetae_remote::channel::{Channel, CustomerHandshake};
use haetae_remote::protocol::{MAX_PEER_FRAME, PeerMessage};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::launch::{Ticket, TicketError, now_unix};

/// Time a connection has for the WebSocket handshake and the key agreement.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A paired connection: the WebSocket and the open channel.
pub type PairedLink = (WebSocketStream<TcpStream>, Channel);

/// Why pairing ended without a page.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    /// The ticket expired or was burned before a page paired.
    #[error("{0}")]
    Ticket(TicketError),
    /// The listener failed.
    #[error("loopback listener: {0}")]
    Io(#[from] std::io::Error),
}

/// The pairing state shared by the connections.
#[derive(Debug)]
pub struct Pairing {
    origin: String,
    port: u16,
    ticket: Mutex<Ticket>,
    busy: AtomicBool,
}

/// Why one connection was turned away (for the tests and the log; the page sees an HTTP
/// status or a closed socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not the Center's origin (403).
    Origin,
    /// Not addressed to 127.0.0.1 at our port: DNS rebinding (403).
    Host,
    /// Another page is pairing or paired (409).
    Busy,
    /// The ticket is used, burned or expired (410).
    Ticket,
    /// The key agreement failed: the page does not hold the ticket, or broke the protocol.
    Proof,
}

fn refuse(status: StatusCode, text: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(text.into()));
    *r.status_mut() = status;
    r
}

impl Pairing {
    /// Pairing for `origin` with `ticket`, on `port`.
    #[must_use]
    pub fn new(origin: String, port: u16, ticket: Ticket) -> Arc<Pairing> {
        Arc::new(Pairing {
            origin,
            port,
            ticket: Mutex::new(ticket),
            busy: AtomicBool::new(false),
        })
    }

    fn ticket(&self) -> std::sync::MutexGuard<'_, Ticket> {
        self.ticket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the ticket can still pair (it has not expired, burned or been used).
    ///
    /// # Errors
    /// Why not.
    pub fn available(&self) -> Result<(), TicketError> {
        self.ticket().available(now_unix())
    }

    /// Checks the upgrade request; on success this connection holds the one pairing slot.
    #[allow(
        clippy::result_large_err,
        reason = "tungstenite's upgrade callback answers with a whole HTTP response"
    )]
    fn admit(&self, req: &Request) -> Result<(), (Refusal, ErrorResponse)> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if header("origin") != Some(self.origin.as_str()) {
            return Err((
                Refusal::Origin,
                refuse(StatusCode::FORBIDDEN, "origin not allowed"),
            ));
        }
        if header("host") != Some(format!("127.0.0.1:{}", self.port).as_str()) {
            return Err((
                Refusal::Host,
                refuse(StatusCode::FORBIDDEN, "host not allowed"),
            ));
        }
        if self.available().is_err() {
            return Err((
                Refusal::Ticket,
                refuse(StatusCode::GONE, "ticket not valid"),
            ));
        }
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err((
                Refusal::Busy,
                refuse(StatusCode::CONFLICT, "already paired"),
            ));
        }
        Ok(())
    }

    /// Runs the WebSocket handshake and the key agreement on one connection.
    ///
    /// # Errors
    /// The [`Refusal`]. A [`Refusal::Proof`] frees the slot and counts against the ticket.
    #[allow(
        clippy::result_large_err,
        reason = "tungstenite's upgrade callback answers with a whole HTTP response"
    )]
    pub async fn pair(&self, stream: TcpStream) -> Result<PairedLink, Refusal> {
        let mut refusal = None;
        let mut admitted = false;
        let callback = |req: &Request, resp: Response| match self.admit(req) {
            Ok(()) => {
                admitted = true;
                Ok(resp)
            }
            Err((why, r)) => {
                refusal = Some(why);
                Err(r)
            }
        };
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_PEER_FRAME);
        config.max_frame_size = Some(MAX_PEER_FRAME);
        let accepted = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)),
        )
        .await;
        let Ok(Ok(ws)) = accepted else {
            if admitted {
                self.busy.store(false, Ordering::SeqCst);
            }
            return Err(refusal.unwrap_or(Refusal::Proof));
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.agree(ws)).await {
            Ok(Ok(link)) => Ok(link),
            Ok(Err(())) | Err(_) => {
                let burned = self.ticket().failed();
                if !burned {
                    self.busy.store(false, Ordering::SeqCst);
                }
                Err(Refusal::Proof)
            }
        }
    }

    async fn agree(&self, mut ws: WebSocketStream<TcpStream>) -> Result<PairedLink, ()> {
        let sid = self.ticket().channel_sid();
        let (handshake, commit) = CustomerHandshake::start(sid).map_err(|_| ())?;
        ws.send(Message::binary(commit.encode()))
            .await
            .map_err(|_| ())?;
        let agent_key = recv(&mut ws).await?;
        let (customer_key, pending) = handshake.on_agent_key(&agent_key).map_err(|_| ())?;
        ws.send(Message::binary(customer_key.encode()))
            .await
            .map_err(|_| ())?;
        let first = recv(&mut ws).await?;
        let mut ticket = self.ticket();
        // Checked again: the ticket may have expired during the key agreement.
        ticket.available(now_unix()).map_err(|_| ())?;
        // Opens only under keys derived with the ticket (AES-GCM tag, constant time).
        let channel = pending.on_confirmation(&first).map_err(|_| ())?;
        ticket.consume();
        drop(ticket);
        Ok((ws, channel))
    }
}

/// The next binary message as a [`PeerMessage`].
///
/// # Errors
/// Closed, a text message, or a frame that does not decode.
pub async fn recv(ws: &mut WebSocketStream<TcpStream>) -> Result<PeerMessage, ()> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return PeerMessage::decode(&b).map_err(|_| ()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return Err(()),
        }
    }
}

/// Accepts connections on `listener` until one pairs, or the ticket expires or burns. Every
/// other connection is refused; the listener goes on refusing after pairing while the
/// helper runs (the caller keeps `refuse_rest` going).
///
/// # Errors
/// [`PairingError::Ticket`] when no page can pair any more.
pub async fn accept(
    listener: &TcpListener,
    pairing: &Arc<Pairing>,
) -> Result<PairedLink, PairingError> {
    // Each connection reports back: the link, or `None` when its proof failed (the ticket
    // may have burned; the loop checks).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<PairedLink>>(4);
    loop {
        if let Err(e) = pairing.available() {
            return Err(PairingError::Ticket(e));
        }
        let wait = pairing.ticket().expires().saturating_sub(now_unix()).max(1);
        tokio::select! {
            link = rx.recv() => {
                if let Some(Some(link)) = link {
                    return Ok(link);
                }
            }
            conn = listener.accept() => {
                let (stream, _peer): (TcpStream, SocketAddr) = conn?;
                let pairing = pairing.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match pairing.pair(stream).await {
                        Ok(link) => {
                            let _ = tx.send(Some(link)).await;
                        }
                        Err(Refusal::Proof) => {
                            let _ = tx.send(None).await;
                        }
                        Err(_) => {}
                    }
                });
            }
            () = tokio::time::sleep(Duration::from_secs(wait)) => {}
        }
    }
}

/// After pairing: refuses every further connection (409) until dropped.
pub async fn refuse_rest(listener: TcpListener, pairing: Arc<Pairing>) {
    while let Ok((stream, _)) = listener.accept().await {
        let pairing = pairing.clone();
        tokio::spawn(async move {
            let _ = pairing.pair(stream).await;
        });
    }
}
