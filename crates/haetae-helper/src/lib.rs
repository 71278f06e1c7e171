//! The native remote-support helper (issue 11): the small program a customer runs only when
//! the agent needs to control the mouse and keyboard, and that removes itself afterwards.
//!
//! - [`launch`]: the launch file the page hands over (origin, one-time ticket, session,
//!   policy key), read once and deleted.
//! - [`pairing`]: the loopback WebSocket (127.0.0.1, random port, `Origin` and `Host`
//!   checked, one page) and the key agreement bound to the ticket (haetae-remote's channel).
//! - [`control`]: injection only under a Center-signed `direct` policy and the customer's
//!   consent, local input wins, Ctrl+Alt+Shift takes control back.
//! - [`x11`]: `XTest` injection, the `XInput` 2 Ctrl+Alt+Shift watcher, the notice window.
//! - [`update`]: minisign-signed updates; [`removal`]: deleting itself at the end.
//! - [`page`]: the page's side in Rust (tests; the reference for the page's JavaScript).
//!
//! Only X11 (Linux and other Unix desktops) is built; see `docs/helper.md`.
#![forbid(unsafe_code)]

pub mod cli;
pub mod control;
pub mod launch;
pub mod page;
pub mod pairing;
pub mod removal;
pub mod update;
pub mod x11;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use haetae_remote::protocol::{AppMessage, EndReason, PeerMessage};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::control::{Controller, Desktop, Outcome, RevokeSignal};
use crate::launch::{Launch, now_unix};
use crate::pairing::{PairedLink, Pairing};
use crate::x11::LocalEvent;

/// How a helper run is set up.
#[derive(Debug)]
pub struct RunConfig {
    /// What the page handed over.
    pub launch: Launch,
    /// The X display (`None`: `$DISPLAY`).
    pub display: Option<String>,
    /// How long remote input pauses after the customer moves the pointer.
    pub local_pause: Duration,
    /// The helper's own binary, deleted at the end (the downloaded helper; not `haetae`).
    pub self_delete: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunEnd {
    /// Why the session ended (or `PairTimeout` when no page paired).
    pub reason: EndReason,
    /// What was removed.
    pub removed: removal::Removed,
}

/// A runtime error before the session could start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The display.
    #[error("{0}")]
    Desktop(#[from] control::DesktopError),
    /// Files or sockets.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the helper: listens, prints `{"port":N}` on stdout, pairs with the page, runs the
/// session, and removes itself. Blocks until the end.
///
/// # Errors
/// No display (nothing is listened on then), or no loopback socket.
pub fn run(config: RunConfig) -> Result<RunEnd, RunError> {
    let RunConfig {
        launch,
        display,
        local_pause,
        self_delete,
    } = config;
    let temp = removal::TempDir::create()?;
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_async(launch, display.as_deref(), local_pause));
    let removed = removal::remove(&temp, self_delete.as_deref());
    result.map(|reason| RunEnd { reason, removed })
}

async fn run_async(
    launch: Launch,
    display: Option<&str>,
    local_pause: Duration,
) -> Result<EndReason, RunError> {
    // Fail before listening if the display cannot be driven or watched.
    let mut desktop = x11::X11Desktop::connect(display)?;
    desktop.pointer()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let signal = RevokeSignal::new();
    let watcher_tx = tx.clone();
    x11::spawn_revoke_watcher(
        display,
        signal.clone(),
        Box::new(move |event| {
            let _ = watcher_tx.send(event);
        }),
    )?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{{\"port\":{port}}}")?;
    stdout.flush()?;
    drop(stdout);
    let pairing = Pairing::new(launch.origin, port, launch.ticket);
    // No page before the ticket expired or burned: end (and remove the helper).
    let Ok(mut link) = pairing::accept(&listener, &pairing).await else {
        return Ok(EndReason::PairTimeout);
    };
    let refusing = tokio::spawn(pairing::refuse_rest(listener, pairing.clone()));
    let notice = match x11::Notice::show(
        display,
        Box::new(move |event| {
            let _ = tx.send(event);
        }),
    ) {
        Ok(notice) => notice,
        Err(e) => {
            // No notice, no session: the customer must see that one runs.
            let bye = AppMessage::Bye {
                reason: EndReason::Shutdown,
            };
            let _ = send(&mut link, &bye).await;
            refusing.abort();
            return Err(e.into());
        }
    };
    let mut controller = Controller::new(desktop, launch.policy_key, launch.session, signal);
    controller.set_local_pause(local_pause);
    let reason = session(&mut controller, link, rx).await;
    controller.release_all();
    notice.close();
    refusing.abort();
    Ok(reason)
}

async fn send(link: &mut PairedLink, msg: &AppMessage) -> Result<u64, EndReason> {
    let seq = link.1.next_send_seq();
    let frame = link.1.seal(msg).map_err(|_| EndReason::Protocol)?;
    link.0
        .send(Message::binary(frame.encode()))
        .await
        .map_err(|_| EndReason::PeerLeft)?;
    Ok(seq)
}

async fn session<D: Desktop>(
    controller: &mut Controller<D>,
    mut link: PairedLink,
    mut local: mpsc::UnboundedReceiver<LocalEvent>,
) -> EndReason {
    let reason = loop {
        tokio::select! {
            biased;
            event = local.recv() => match event {
                Some(LocalEvent::Revoked) => {
                    controller.revoke_locally();
                    match send(&mut link, &AppMessage::ControlRevoke).await {
                        Ok(seq) => controller.revoke_sent(seq),
                        Err(reason) => break reason,
                    }
                }
                Some(LocalEvent::EndClicked) => {
                    let _ = send(&mut link, &AppMessage::Bye { reason: EndReason::Normal }).await;
                    break EndReason::Normal;
                }
                Some(LocalEvent::DisplayLost) | None => {
                    controller.revoke_locally();
                    let _ = send(&mut link, &AppMessage::Bye { reason: EndReason::Shutdown }).await;
                    break EndReason::Shutdown;
                }
            },
            frame = link.0.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Text(_))) => break EndReason::Protocol,
                    _ => break EndReason::PeerLeft,
                };
                let Ok(peer) = PeerMessage::decode(&bytes) else {
                    break EndReason::Protocol;
                };
                let Ok(msg) = link.1.open(&peer) else {
                    break EndReason::Integrity;
                };
                match controller.handle(msg, now_unix()) {
                    Outcome::Quiet => {}
                    Outcome::Reply(reply) => {
                        if let Err(reason) = send(&mut link, &reply).await {
                            break reason;
                        }
                    }
                    Outcome::End(reason) => {
                        let _ = send(&mut link, &AppMessage::Bye { reason }).await;
                        break reason;
                    }
                }
            }
        }
    };
    let _ = link.0.close(None).await;
    reason
}
