//! Pairing on loopback: only the Center's page with the launch ticket pairs, once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use haetae_helper::launch::{Ticket, TicketError, now_unix};
use haetae_helper::page::{PageError, PageLink, refused_status};
use haetae_helper::pairing::{self, Pairing, PairingError};
use haetae_remote::protocol::AppMessage;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use zeroize::Zeroizing;

const ORIGIN: &str = "http://127.0.0.1:7400";

struct Helper {
    port: u16,
    ticket: [u8; 32],
    pairing: Arc<Pairing>,
    accepted: JoinHandle<Result<pairing::PairedLink, PairingError>>,
}

async fn helper(life_secs: u64) -> Helper {
    let mut ticket = [0u8; 32];
    haetae_crypto::error::os_random(&mut ticket).unwrap();
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let pairing = Pairing::new(
        ORIGIN.into(),
        port,
        Ticket::new(Zeroizing::new(ticket), now_unix() + life_secs),
    );
    let p = pairing.clone();
    let accepted = tokio::spawn(async move {
        let link = pairing::accept(&listener, &p).await?;
        // Keep refusing others while "the session runs".
        tokio::spawn(pairing::refuse_rest(listener, p));
        Ok(link)
    });
    Helper {
        port,
        ticket,
        pairing,
        accepted,
    }
}

fn status(r: Result<PageLink, PageError>) -> Option<u16> {
    refused_status(&r.expect_err("should have been refused"))
}

#[tokio::test]
async fn the_page_with_the_ticket_pairs_and_talks_sealed() {
    let h = helper(60).await;
    let mut page = PageLink::connect(h.port, ORIGIN, &h.ticket).await.unwrap();
    let (mut ws, mut channel) = h.accepted.await.unwrap().unwrap();
    page.send(&AppMessage::ControlRequest).await.unwrap();
    let frame = pairing::recv(&mut ws).await.unwrap();
    assert_eq!(channel.open(&frame).unwrap(), AppMessage::ControlRequest);
    assert_eq!(h.pairing.available(), Err(TicketError::Used));
}

#[tokio::test]
async fn another_origin_is_refused() {
    let h = helper(60).await;
    for origin in [
        "http://evil.example",
        "http://127.0.0.1:7401",
        "null",
        "https://127.0.0.1:7400",
    ] {
        let r = PageLink::connect(h.port, origin, &h.ticket).await;
        assert_eq!(status(r), Some(403), "{origin}");
    }
    // The refusals cost the ticket nothing: the right page still pairs.
    PageLink::connect(h.port, ORIGIN, &h.ticket).await.unwrap();
    assert!(h.accepted.await.unwrap().is_ok());
}

#[tokio::test]
async fn a_rebound_host_name_is_refused() {
    let h = helper(60).await;
    // DNS rebinding: a name that resolves to 127.0.0.1 still sends its own Host.
    let mut req = format!("ws://127.0.0.1:{}/", h.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_static(ORIGIN));
    req.headers_mut().insert(
        "host",
        HeaderValue::from_str(&format!("rebind.example:{}", h.port)).unwrap(),
    );
    let e = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
}

#[tokio::test]
async fn a_process_without_the_ticket_cannot_pair_and_three_tries_burn_it() {
    let h = helper(60).await;
    for attempt in 1..=3u8 {
        // The commitment covers the ticket-derived session id: a page with another ticket
        // sees the helper's key "substituted" and gives up; the helper counts the attempt.
        let e = PageLink::connect(h.port, ORIGIN, &[attempt; 32])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("commitment"), "{e}");
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), h.accepted)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        ended,
        Err(PairingError::Ticket(TicketError::Burned))
    ));
    // Even the right ticket is refused now.
    let r = PageLink::connect(h.port, ORIGIN, &h.ticket).await;
    assert!(r.is_err());
}

#[tokio::test]
async fn a_forged_first_frame_is_refused_and_the_right_page_then_pairs() {
    use futures_util::SinkExt;
    use haetae_remote::channel::AgentHandshake;
    use haetae_remote::protocol::PeerMessage;
    use tokio_tungstenite::tungstenite::Message;

    let h = helper(60).await;
    // A local process that goes through the whole key agreement without the ticket and
    // sends a confirmation it had to make up.
    let mut req = format!("ws://127.0.0.1:{}/", h.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_static(ORIGIN));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let commit = PeerMessage::decode(&ws.next().await.unwrap().unwrap().into_data()).unwrap();
    let mut guess = AgentHandshake::start(haetae_helper::launch::channel_sid(&[7; 32])).unwrap();
    let reveal = guess.on_commit(&commit).unwrap();
    ws.send(Message::binary(reveal.encode())).await.unwrap();
    let customer_key = ws.next().await.unwrap().unwrap();
    assert!(customer_key.is_binary());
    let forged = PeerMessage::Sealed {
        seq: 0,
        kind: 0x20,
        ciphertext: vec![0x42; 16],
    };
    ws.send(Message::binary(forged.encode())).await.unwrap();
    // The helper closes without a word.
    let after = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap();
    assert!(!matches!(after, Some(Ok(Message::Binary(_)))), "{after:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.pairing.available(), Ok(()));
    PageLink::connect(h.port, ORIGIN, &h.ticket).await.unwrap();
    assert!(h.accepted.await.unwrap().is_ok());
}

#[tokio::test]
async fn a_replayed_ticket_and_a_second_client_are_refused() {
    let h = helper(60).await;
    let _page = PageLink::connect(h.port, ORIGIN, &h.ticket).await.unwrap();
    let _link = h.accepted.await.unwrap().unwrap();
    // Same ticket again: used.
    let r = PageLink::connect(h.port, ORIGIN, &h.ticket).await;
    assert_eq!(status(r), Some(410));
}

#[tokio::test]
async fn a_second_client_during_pairing_is_refused() {
    let h = helper(60).await;
    // The first connection is upgraded and holds the pairing slot (it has not answered the
    // commitment yet).
    let mut req = format!("ws://127.0.0.1:{}/", h.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_static(ORIGIN));
    let (mut first, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let commit = first.next().await.unwrap().unwrap();
    assert!(commit.is_binary());
    let r = PageLink::connect(h.port, ORIGIN, &h.ticket).await;
    assert_eq!(status(r), Some(409));
    // The slot frees when the first one goes away; the page then pairs.
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    PageLink::connect(h.port, ORIGIN, &h.ticket).await.unwrap();
    assert!(h.accepted.await.unwrap().is_ok());
}

#[tokio::test]
async fn an_expired_ticket_ends_pairing() {
    let h = helper(1).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), h.accepted)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        ended,
        Err(PairingError::Ticket(TicketError::Expired))
    ));
}
