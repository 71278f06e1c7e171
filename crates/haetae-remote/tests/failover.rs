//! Relay failover (issue 10, point 1): two relays share one bus KV (codes and the session
//! registry); a session paired through relay A goes on through relay B after A dies, with
//! no new code and no new SAS, and no chat message sent around the failure is lost or
//! delivered twice.
//!
//! Two variants: both relays on one in-process bus (always run), and each relay on its own
//! connection to NATS JetStream, as two relay processes in a cluster would be (ignored
//! without `HAETAE_TEST_NATS`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use haetae_bus::{Bus, KvStore, NatsOptions};
use haetae_core::Event;
use haetae_remote::client::{ClientError, ReconnectPolicy, RelayClient, SupportLink};
use haetae_remote::codes::{AccessCodes, BUCKET, BUCKET_MAX_AGE, CodePolicy};
use haetae_remote::protocol::{AppMessage, RefuseReason, RelayMessage, Role};
use haetae_remote::relay::{EventOut, RelayConfig, RunningRelay, serve};
use haetae_remote::session::{Delivered, Session, SessionPolicy};

type Events = Arc<Mutex<Vec<Event>>>;

async fn relay(kv: Arc<dyn KvStore>, id: &str, events: &Events) -> RunningRelay {
    let codes = AccessCodes::new(kv, CodePolicy::default(), id).unwrap();
    let sink = Arc::clone(events);
    let out: EventOut = Arc::new(move |e| sink.lock().unwrap().push(e));
    let config = RelayConfig {
        relay_id: id.into(),
        ..RelayConfig::default()
    };
    serve("127.0.0.1:0".parse().unwrap(), config, codes, out)
        .await
        .unwrap()
}

fn chat(id: u64, text: &str) -> AppMessage {
    AppMessage::Chat {
        id,
        text: text.into(),
    }
}

/// Agent and customer paired by code on `urls[0]`, SAS confirmed, each with the relay list.
/// Also returns the customer's first resume token (to show it cannot be used twice).
async fn paired(urls: &[String]) -> (SupportLink, SupportLink, [u8; 32]) {
    let (mut agent_ws, code, _) = RelayClient::open_as_agent(&urls[0], "agent-kim")
        .await
        .unwrap();
    let join = {
        let url = urls[0].clone();
        tokio::spawn(async move {
            let (mut ws, sid) = RelayClient::join_as_customer(&url, &code).await.unwrap();
            let pending = ws.agree_as_customer(sid).await.unwrap();
            (ws, pending)
        })
    };
    let sid = agent_ws.wait_paired().await.unwrap();
    let agent_pending = agent_ws.agree_as_agent(sid).await.unwrap();
    let (mut customer_ws, customer_pending) = join.await.unwrap();
    assert_eq!(agent_pending.sas(), customer_pending.sas());
    let (agent_ch, confirm) = agent_pending.confirm_sas().unwrap();
    agent_ws.send_peer(&confirm).await.unwrap();
    let first = customer_ws.recv_peer().await.unwrap();
    let customer_ch = customer_pending.on_confirmation(&first).unwrap();
    let customer_token = customer_ws
        .resume_token()
        .expect("the relay hands out a resume token at pairing");
    assert!(agent_ws.resume_token().is_some());
    let agent = SupportLink::new(
        urls.to_vec(),
        0,
        agent_ws,
        Session::new(agent_ch, SessionPolicy::direct()),
        ReconnectPolicy::default(),
    )
    .unwrap();
    let customer = SupportLink::new(
        urls.to_vec(),
        0,
        customer_ws,
        Session::new(customer_ch, SessionPolicy::direct()),
        ReconnectPolicy::default(),
    )
    .unwrap();
    (agent, customer, customer_token)
}

/// Receives until `want` chat messages have arrived; returns their texts.
async fn chats(link: &mut SupportLink, want: usize) -> Result<Vec<String>, ClientError> {
    let mut got = Vec::new();
    while got.len() < want {
        if let Delivered::Message(AppMessage::Chat { text, .. }) = link.recv().await? {
            got.push(text);
        }
    }
    Ok(got)
}

async fn failover(kv_a: Arc<dyn KvStore>, kv_b: Arc<dyn KvStore>) {
    let events: Events = Arc::default();
    let a = relay(kv_a, "relay-a", &events).await;
    let b = relay(kv_b, "relay-b", &events).await;
    let urls = vec![a.url(), b.url()];
    let (mut agent, mut customer, old_token) = paired(&urls).await;

    // Before the failure.
    agent.send(&chat(1, "a1")).await.unwrap();
    customer.send(&chat(1, "c1")).await.unwrap();
    assert_eq!(chats(&mut customer, 1).await.unwrap(), ["a1"]);
    assert_eq!(chats(&mut agent, 1).await.unwrap(), ["c1"]);

    // Around the failure: some sent while A still runs (in flight or already through),
    // some after A died (written to dead sockets): all must arrive, once, in order.
    agent.send(&chat(2, "a2")).await.unwrap();
    agent.send(&chat(3, "a3")).await.unwrap();
    customer.send(&chat(2, "c2")).await.unwrap();
    let killed = Instant::now();
    a.kill().await;
    agent.send(&chat(4, "a4")).await.unwrap();
    customer.send(&chat(3, "c3")).await.unwrap();
    customer.send(&chat(4, "c4")).await.unwrap();

    let agent_side = tokio::spawn(async move {
        let got = tokio::time::timeout(Duration::from_secs(10), chats(&mut agent, 3)).await;
        (agent, got, killed.elapsed())
    });
    let customer_side = tokio::spawn(async move {
        let got = tokio::time::timeout(Duration::from_secs(10), chats(&mut customer, 3)).await;
        (customer, got, killed.elapsed())
    });
    let (mut agent, agent_got, agent_took) = agent_side.await.unwrap();
    let (mut customer, customer_got, customer_took) = customer_side.await.unwrap();
    let agent_got = agent_got.expect("the agent is back within 10 s").unwrap();
    let customer_got = customer_got
        .expect("the customer is back within 10 s")
        .unwrap();
    assert_eq!(
        customer_got,
        ["a2", "a3", "a4"],
        "nothing lost, nothing twice"
    );
    assert_eq!(agent_got, ["c2", "c3", "c4"], "nothing lost, nothing twice");
    assert!(agent_took < Duration::from_secs(10) && customer_took < Duration::from_secs(10));
    eprintln!(
        "failover: agent back after {agent_took:?}, customer after {customer_took:?}; \
         agent re-keyed {} time(s)",
        agent.session().channel().rekeys()
    );
    assert_eq!(agent.current_url(), urls[1]);
    assert_eq!(customer.current_url(), urls[1]);
    assert_eq!(agent.resumes(), 1);
    assert_eq!(customer.resumes(), 1);
    assert_eq!(agent.session().channel().rekeys(), 1);

    // The session goes on through B, both ways.
    agent.send(&chat(5, "a5 on B")).await.unwrap();
    assert_eq!(chats(&mut customer, 1).await.unwrap(), ["a5 on B"]);
    customer.send(&chat(5, "c5 on B")).await.unwrap();
    assert_eq!(chats(&mut agent, 1).await.unwrap(), ["c5 on B"]);

    // B's events say the session was resumed there.
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.event.action == "remote.session_resumed"
                && e.haetae.instance.as_deref() == Some("relay-b")),
        "no remote.session_resumed event from relay-b"
    );

    // A token is single use: the customer's first one is worthless now.
    let sid = customer.session().channel().sid();
    let mut thief = RelayClient::connect(&urls[1]).await.unwrap();
    thief
        .send(&RelayMessage::Resume {
            sid,
            role: Role::Customer,
            token: old_token,
        })
        .await
        .unwrap();
    assert_eq!(
        thief.recv().await.unwrap(),
        RelayMessage::Refused {
            reason: RefuseReason::InvalidOrExpired,
            retry_after_secs: 0
        }
    );

    // A goodbye ends it for good: it cannot be resumed afterwards.
    agent.bye().await;
    assert!(matches!(
        customer.recv().await,
        Ok(Delivered::Message(AppMessage::Bye { .. }))
    ));
    b.stop().await;
}

#[tokio::test]
async fn a_session_survives_the_death_of_its_relay_on_one_in_process_bus() {
    let kv = Bus::in_process().kv(BUCKET, BUCKET_MAX_AGE).await.unwrap();
    failover(Arc::clone(&kv), kv).await;
}

#[tokio::test]
#[ignore = "needs HAETAE_TEST_NATS (a NATS server with JetStream)"]
async fn a_session_survives_the_death_of_its_relay_with_each_relay_on_its_own_nats_connection() {
    let url = std::env::var("HAETAE_TEST_NATS").expect("HAETAE_TEST_NATS");
    let namespace = format!(
        "fo{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    );
    let options = || NatsOptions {
        namespace: namespace.clone(),
        ..NatsOptions::default()
    };
    let bus_a = Bus::connect_nats(&url, options()).await.unwrap();
    let bus_b = Bus::connect_nats(&url, options()).await.unwrap();
    let kv_a = bus_a.kv(BUCKET, BUCKET_MAX_AGE).await.unwrap();
    let kv_b = bus_b.kv(BUCKET, BUCKET_MAX_AGE).await.unwrap();
    failover(kv_a, kv_b).await;
}
