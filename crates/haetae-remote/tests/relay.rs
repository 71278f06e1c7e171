//! The relay on real sockets (127.0.0.1): pairing by code, chat and a file end to end, wrong
//! codes and attempt limits, tampering, control revocation, limits and the session history.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use haetae_bus::Bus;
use haetae_core::Event;
use haetae_crypto::hash::{HashAlgorithm, digest};
use haetae_remote::channel::ChannelError;
use haetae_remote::client::{ClientError, RelayClient};
use haetae_remote::codes::{AccessCodes, BUCKET, BUCKET_MAX_AGE, CodePolicy};
use haetae_remote::protocol::{
    AppMessage, EndReason, InputEvent, PeerMessage, RefuseReason, RelayMessage,
};
use haetae_remote::relay::{EventOut, RelayConfig, RunningRelay, serve};
use haetae_remote::session::{Delivered, Session, SessionError, SessionPolicy};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

struct Harness {
    relay: RunningRelay,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Harness {
    async fn start(config: RelayConfig) -> Harness {
        let kv = Bus::in_process().kv(BUCKET, BUCKET_MAX_AGE).await.unwrap();
        let codes = AccessCodes::new(kv, CodePolicy::default(), config.relay_id.clone()).unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let out: EventOut = Arc::new(move |e| sink.lock().unwrap().push(e));
        let relay = serve("127.0.0.1:0".parse().unwrap(), config, codes, out)
            .await
            .unwrap();
        Harness { relay, events }
    }

    fn url(&self) -> String {
        self.relay.url()
    }

    fn actions(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event.action.clone())
            .collect()
    }

    async fn wait_for(&self, action: &str) -> Event {
        for _ in 0..100 {
            if let Some(e) = self
                .events
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.event.action == action)
            {
                return e.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {action} event; got {:?}", self.actions());
    }
}

/// Agent and customer connected, keys agreed, SAS compared and confirmed.
async fn paired(url: &str) -> (RelayClient, Session, RelayClient, Session, String) {
    let (mut agent_ws, code, _) = RelayClient::open_as_agent(url, "agent-kim").await.unwrap();
    let join = {
        let url = url.to_owned();
        let code = code.clone();
        tokio::spawn(async move {
            let (mut ws, sid) = RelayClient::join_as_customer(&url, &code).await.unwrap();
            let pending = ws.agree_as_customer(sid).await.unwrap();
            (ws, pending)
        })
    };
    let sid = agent_ws.wait_paired().await.unwrap();
    let agent_pending = agent_ws.agree_as_agent(sid).await.unwrap();
    let (mut customer_ws, customer_pending) = join.await.unwrap();
    // The two people read the strings to each other.
    assert_eq!(agent_pending.sas(), customer_pending.sas());
    let (agent_ch, confirm) = agent_pending.confirm_sas().unwrap();
    agent_ws.send_peer(&confirm).await.unwrap();
    let first = customer_ws.recv_peer().await.unwrap();
    let customer_ch = customer_pending.on_confirmation(&first).unwrap();
    (
        agent_ws,
        Session::new(agent_ch, SessionPolicy::direct()),
        customer_ws,
        Session::new(customer_ch, SessionPolicy::direct()),
        code,
    )
}

async fn send(ws: &mut RelayClient, s: &mut Session, msg: &AppMessage) {
    let frame = s.send(msg).unwrap();
    ws.send_peer(&frame).await.unwrap();
}

async fn recv(ws: &mut RelayClient, s: &mut Session) -> Result<Delivered, SessionError> {
    let frame = ws.recv_peer().await.unwrap();
    s.receive(&frame)
}

#[tokio::test]
async fn two_clients_pair_by_code_and_exchange_chat_and_a_file() {
    let h = Harness::start(RelayConfig::default()).await;
    let (mut aw, mut a, mut cw, mut c, code) = paired(&h.url()).await;

    let hello = AppMessage::Chat {
        id: 1,
        text: "고객님, 화면을 보고 있습니다".into(),
    };
    send(&mut aw, &mut a, &hello).await;
    assert_eq!(
        recv(&mut cw, &mut c).await.unwrap(),
        Delivered::Message(hello)
    );
    let reply = AppMessage::Chat {
        id: 1,
        text: "네, 감사합니다".into(),
    };
    send(&mut cw, &mut c, &reply).await;
    assert_eq!(
        recv(&mut aw, &mut a).await.unwrap(),
        Delivered::Message(reply)
    );

    // A 200 KiB file from the agent, accepted by the customer, in 64 KiB chunks.
    let data: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sha: [u8; 32] = digest(HashAlgorithm::Sha256, &data).try_into().unwrap();
    send(
        &mut aw,
        &mut a,
        &AppMessage::FileOffer {
            id: 7,
            name: "안내서.pdf".into(),
            size: data.len() as u64,
            sha256: sha,
        },
    )
    .await;
    assert!(matches!(
        recv(&mut cw, &mut c).await.unwrap(),
        Delivered::Message(AppMessage::FileOffer { id: 7, .. })
    ));
    send(&mut cw, &mut c, &AppMessage::FileAccept { id: 7 }).await;
    recv(&mut aw, &mut a).await.unwrap();
    let mut received = Vec::new();
    for (i, part) in data.chunks(64 * 1024).enumerate() {
        send(
            &mut aw,
            &mut a,
            &AppMessage::FileChunk {
                id: 7,
                offset: (i * 64 * 1024) as u64,
                data: part.to_vec(),
            },
        )
        .await;
        match recv(&mut cw, &mut c).await.unwrap() {
            Delivered::Message(AppMessage::FileChunk { data, .. }) => received.extend(data),
            other => panic!("{other:?}"),
        }
    }
    send(&mut aw, &mut a, &AppMessage::FileDone { id: 7 }).await;
    assert_eq!(
        recv(&mut cw, &mut c).await.unwrap(),
        Delivered::FileComplete {
            id: 7,
            size: data.len() as u64
        }
    );
    assert_eq!(received, data);

    aw.bye().await;
    assert!(matches!(
        cw.recv().await.unwrap(),
        RelayMessage::PeerGone {
            reason: EndReason::Normal
        }
    ));
    let session = h.wait_for("remote.session").await;
    assert_eq!(session.user.as_ref().unwrap().id, "agent-kim");
    let labels = &session.labels;
    assert_eq!(labels["end_reason"], "Normal");
    assert_eq!(labels["ended_by"], "agent");
    assert!(labels["bytes_to_customer"].parse::<u64>().unwrap() > 200 * 1024);
    // The history never holds the code or any chat text.
    let all: String = h
        .events
        .lock()
        .unwrap()
        .iter()
        .map(Event::to_json)
        .collect();
    assert!(!all.contains(&code));
    assert!(!all.contains("감사합니다"));
    for action in ["remote.code_issued", "remote.code_used", "remote.session"] {
        assert!(h.actions().iter().any(|a| a == action), "{action}");
    }
}

#[tokio::test]
async fn a_wrong_code_is_refused_and_attempts_are_limited() {
    let h = Harness::start(RelayConfig::default()).await;
    let (_agent, code, _) = RelayClient::open_as_agent(&h.url(), "agent-lee")
        .await
        .unwrap();
    // Wrong secrets in the live slot: five burn the code.
    let last = code.as_bytes()[8];
    let wrong = format!(
        "{}{}",
        &code[..8],
        if last == b'9' {
            '0'
        } else {
            char::from(last + 1)
        }
    );
    for _ in 0..5 {
        match RelayClient::join_as_customer(&h.url(), &wrong).await {
            Err(ClientError::Refused {
                reason: RefuseReason::InvalidOrExpired,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
    // The sixth try fails although it is the right code.
    assert!(matches!(
        RelayClient::join_as_customer(&h.url(), &code).await,
        Err(ClientError::Refused {
            reason: RefuseReason::InvalidOrExpired,
            ..
        })
    ));
    // The seventh failure from this address in a minute: the address must wait.
    let _ = RelayClient::join_as_customer(&h.url(), "000000000").await;
    match RelayClient::join_as_customer(&h.url(), "000000000").await {
        Err(ClientError::Refused {
            reason: RefuseReason::TooManyAttempts,
            retry_after_secs,
        }) => assert!((1..=60).contains(&retry_after_secs)),
        other => panic!("{other:?}"),
    }
    let failures = h
        .actions()
        .iter()
        .filter(|a| *a == "remote.code_failed")
        .count();
    assert_eq!(failures, 8);
}

/// Forwards one TCP connection to the relay and keeps what the relay sent back.
async fn capturing_proxy(relay: std::net::SocketAddr) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(relay).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            keep.lock().unwrap().extend_from_slice(&buf[..n]);
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    (url, seen)
}

#[tokio::test]
async fn the_relay_sees_no_plaintext_and_a_tampered_frame_ends_the_session() {
    let h = Harness::start(RelayConfig::default()).await;
    let (mut aw, code, _) = RelayClient::open_as_agent(&h.url(), "agent-park")
        .await
        .unwrap();
    let (proxy_url, seen) = capturing_proxy(h.relay.local_addr()).await;
    let join = tokio::spawn(async move {
        let (mut ws, sid) = RelayClient::join_as_customer(&proxy_url, &code)
            .await
            .unwrap();
        let pending = ws.agree_as_customer(sid).await.unwrap();
        (ws, pending)
    });
    let sid = aw.wait_paired().await.unwrap();
    let ap = aw.agree_as_agent(sid).await.unwrap();
    let (mut cw, cp) = join.await.unwrap();
    let (achan, confirm) = ap.confirm_sas().unwrap();
    aw.send_peer(&confirm).await.unwrap();
    let first = cw.recv_peer().await.unwrap();
    let mut c = Session::new(cp.on_confirmation(&first).unwrap(), SessionPolicy::direct());
    let mut a = Session::new(achan, SessionPolicy::direct());

    let secret = "계좌 비밀번호 안내: 1234-5678";
    send(
        &mut aw,
        &mut a,
        &AppMessage::Chat {
            id: 1,
            text: secret.into(),
        },
    )
    .await;
    recv(&mut cw, &mut c).await.unwrap();
    let captured = seen.lock().unwrap().clone();
    assert!(captured.len() > 100);
    let contains = |needle: &[u8]| captured.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(&sid.0),
        "the capture is the real stream (the sid is in clear)"
    );
    assert!(
        !contains(secret.as_bytes()),
        "chat plaintext crossed the relay"
    );
    assert!(!contains("1234-5678".as_bytes()));

    // Altered in transit: one bit of the ciphertext flipped.
    let PeerMessage::Sealed {
        seq,
        kind,
        mut ciphertext,
    } = a
        .send(&AppMessage::Chat {
            id: 2,
            text: "transfer 100".into(),
        })
        .unwrap()
    else {
        panic!("sealed");
    };
    ciphertext[3] ^= 0x01;
    aw.send_peer(&PeerMessage::Sealed {
        seq,
        kind,
        ciphertext,
    })
    .await
    .unwrap();
    let err = recv(&mut cw, &mut c).await.unwrap_err();
    assert_eq!(err, SessionError::Channel(ChannelError::Integrity { seq }));
    assert!(err.is_fatal());
    // Fail closed: even a genuine next frame is refused now.
    send(
        &mut aw,
        &mut a,
        &AppMessage::Chat {
            id: 3,
            text: "next".into(),
        },
    )
    .await;
    assert_eq!(
        recv(&mut cw, &mut c).await.unwrap_err(),
        SessionError::Channel(ChannelError::Closed)
    );
}

#[tokio::test]
async fn after_a_revoke_input_events_are_not_delivered() {
    let h = Harness::start(RelayConfig::default()).await;
    let (mut aw, mut a, mut cw, mut c, _) = paired(&h.url()).await;
    send(&mut aw, &mut a, &AppMessage::ControlRequest).await;
    recv(&mut cw, &mut c).await.unwrap();
    send(&mut cw, &mut c, &AppMessage::ControlGrant).await;
    recv(&mut aw, &mut a).await.unwrap();
    let click = AppMessage::Input(InputEvent::Key {
        code: "Enter".into(),
        down: true,
        modifiers: 0,
    });
    send(&mut aw, &mut a, &click).await;
    assert_eq!(
        recv(&mut cw, &mut c).await.unwrap(),
        Delivered::Message(click.clone())
    );

    // Ctrl+Alt+Shift on the customer's side: revoke. The agent's next event crosses it.
    send(&mut cw, &mut c, &AppMessage::ControlRevoke).await;
    send(&mut aw, &mut a, &click).await;
    assert_eq!(
        recv(&mut cw, &mut c).await.unwrap_err(),
        SessionError::ControlNotGranted
    );
    // Once the agent's side hears of it, it cannot even send.
    recv(&mut aw, &mut a).await.unwrap();
    assert_eq!(a.send(&click), Err(SessionError::ControlNotGranted));
    // The session itself goes on.
    send(
        &mut aw,
        &mut a,
        &AppMessage::Chat {
            id: 1,
            text: "ok".into(),
        },
    )
    .await;
    assert!(recv(&mut cw, &mut c).await.is_ok());
}

#[tokio::test]
async fn an_agent_outside_the_agent_networks_is_refused() {
    let h = Harness::start(RelayConfig {
        agent_networks: vec!["10.0.0.0/8".parse().unwrap()],
        ..RelayConfig::default()
    })
    .await;
    assert!(matches!(
        RelayClient::open_as_agent(&h.url(), "agent-x").await,
        Err(ClientError::Refused {
            reason: RefuseReason::NotAllowed,
            ..
        })
    ));
    h.wait_for("remote.agent_refused").await;
}

/// With tickets required (as in `haetae up`), an agent needs one the Center issued, for the
/// name it opens with; customers need none.
#[tokio::test]
async fn an_agent_needs_a_valid_ticket_for_its_own_name_when_tickets_are_required() {
    use haetae_core::agent_ticket::TicketKey;
    let key = TicketKey::from_bytes([9; 32]);
    let h = Harness::start(RelayConfig {
        agent_tickets: Some(key.clone()),
        ..RelayConfig::default()
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let with = |t: &str| format!("{}?ticket={t}", h.url());
    let refused = |r: Result<_, ClientError>| {
        matches!(
            r,
            Err(ClientError::Refused {
                reason: RefuseReason::NotAllowed,
                ..
            })
        )
    };
    // No ticket, a ticket made with another key, an expired one, one for another agent.
    let forged = TicketKey::from_bytes([1; 32])
        .issue("agent-t", now + 60)
        .unwrap();
    let expired = key.issue("agent-t", now - 1).unwrap();
    let other = key.issue("agent-other", now + 60).unwrap();
    assert!(refused(
        RelayClient::open_as_agent(&h.url(), "agent-t").await
    ));
    for bad in [&forged, &expired, &other, &"zz".to_owned()] {
        assert!(
            refused(RelayClient::open_as_agent(&with(bad), "agent-t").await),
            "{bad}"
        );
    }
    assert!(
        h.actions()
            .iter()
            .filter(|a| *a == "remote.agent_refused")
            .count()
            >= 5
    );
    // The right ticket opens a session that a customer can join with the code.
    let ticket = key.issue("agent-t", now + 60).unwrap();
    let (mut agent, code, _) = RelayClient::open_as_agent(&with(&ticket), "agent-t")
        .await
        .unwrap();
    let (_customer, sid) = RelayClient::join_as_customer(&h.url(), &code)
        .await
        .unwrap();
    assert_eq!(agent.wait_paired().await.unwrap(), sid);
}

#[tokio::test]
async fn an_oversized_frame_ends_the_session() {
    let h = Harness::start(RelayConfig {
        max_frame: 4096,
        ..RelayConfig::default()
    })
    .await;
    let (mut aw, _a, mut cw, _c, _) = paired(&h.url()).await;
    aw.send(&RelayMessage::Peer(vec![0u8; 8192])).await.unwrap();
    assert!(matches!(
        cw.recv().await.unwrap(),
        RelayMessage::PeerGone {
            reason: EndReason::TooLarge
        }
    ));
    let session = h.wait_for("remote.session").await;
    assert_eq!(session.labels["end_reason"], "TooLarge");
}

#[tokio::test]
async fn an_idle_session_is_ended() {
    let h = Harness::start(RelayConfig {
        idle_timeout: Duration::from_secs(1),
        ..RelayConfig::default()
    })
    .await;
    let (mut aw, _a, mut cw, _c, _) = paired(&h.url()).await;
    let started = std::time::Instant::now();
    let a_end = aw.recv().await.unwrap();
    let c_end = cw.recv().await.unwrap();
    let idle = |m: &RelayMessage| {
        matches!(
            m,
            RelayMessage::Bye {
                reason: EndReason::Idle
            } | RelayMessage::PeerGone {
                reason: EndReason::Idle
            }
        )
    };
    assert!(idle(&a_end) && idle(&c_end), "{a_end:?} {c_end:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_session_is_shaped_to_its_bandwidth() {
    let h = Harness::start(RelayConfig {
        session_bytes_per_sec: 256 * 1024,
        ..RelayConfig::default()
    })
    .await;
    let (mut aw, _a, mut cw, _c, _) = paired(&h.url()).await;
    // 1 MiB through a 256 KiB/s session: the first second is the burst, the rest waits.
    let started = std::time::Instant::now();
    let sender = tokio::spawn(async move {
        for _ in 0..16 {
            aw.send(&RelayMessage::Peer(vec![7u8; 64 * 1024]))
                .await
                .unwrap();
        }
        aw
    });
    for _ in 0..16 {
        cw.recv_peer_bytes().await.unwrap();
    }
    let elapsed = started.elapsed();
    let _aw = sender.await.unwrap();
    assert!(elapsed >= Duration::from_millis(2500), "{elapsed:?}");
}

#[tokio::test]
async fn a_text_message_or_garbage_first_is_refused() {
    let h = Harness::start(RelayConfig::default()).await;
    let mut c = RelayClient::connect(&h.url()).await.unwrap();
    c.send_raw(vec![9, 9, 9]).await.unwrap();
    assert!(matches!(
        c.recv().await.unwrap(),
        RelayMessage::Refused {
            reason: RefuseReason::Protocol,
            ..
        }
    ));
}

#[tokio::test]
async fn both_directions_at_full_speed_do_not_wait_on_each_other() {
    // Tiny queues: a relay that blocked on one direction while the other is full would
    // stall here.
    let h = Harness::start(RelayConfig {
        queue_frames: 1,
        ..RelayConfig::default()
    })
    .await;
    let (aw, _a, cw, _c, _) = paired(&h.url()).await;
    let (mut a_tx, mut a_rx) = aw.split();
    let (mut c_tx, mut c_rx) = cw.split();
    const N: usize = 300;
    let run = async {
        let a_send = async {
            for _ in 0..N {
                a_tx.send(&RelayMessage::Peer(vec![1; 32 * 1024]))
                    .await
                    .unwrap();
            }
        };
        let c_send = async {
            for _ in 0..N {
                c_tx.send(&RelayMessage::Peer(vec![2; 32 * 1024]))
                    .await
                    .unwrap();
            }
        };
        let a_recv = async {
            for _ in 0..N {
                assert_eq!(a_rx.recv_peer_bytes().await.unwrap()[0], 2);
            }
        };
        let c_recv = async {
            for _ in 0..N {
                assert_eq!(c_rx.recv_peer_bytes().await.unwrap()[0], 1);
            }
        };
        tokio::join!(a_send, c_send, a_recv, c_recv);
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("traffic in both directions stalled");
}

#[tokio::test]
async fn a_browser_from_another_origin_is_refused_at_the_handshake() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let h = Harness::start(RelayConfig {
        allowed_origins: vec!["https://support.bank.example".into()],
        ..RelayConfig::default()
    })
    .await;
    let with_origin = |origin: &str| {
        let mut req = h.url().into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    assert!(
        tokio_tungstenite::connect_async(with_origin("https://evil.example"))
            .await
            .is_err()
    );
    assert!(
        tokio_tungstenite::connect_async(with_origin("https://support.bank.example"))
            .await
            .is_ok()
    );
    // Native clients send no Origin and are not browsers: accepted.
    assert!(RelayClient::connect(&h.url()).await.is_ok());
}
