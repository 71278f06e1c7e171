//! Events per second through NATS JetStream: haetae's `EventEmitter` and durable subscription
//! beside plain async-nats doing the same work (one message per event with `Nats-Msg-Id`,
//! acknowledgements awaited per batch of 512; pull-consume with explicit acks), on the same
//! events, against the same server. Run by `bench/bus.sh`.
//!
//! `cargo run --release -p haetae-bus --example bus_bench -- <nats-url> <events>`

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use haetae_bus::{Bus, EmitterOptions, NatsOptions};
use haetae_core::{Component, Event, Outcome, Severity};

const BATCH: usize = 512;

fn sample_events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            Event::new(Component::Gateway, "restrict.block")
                .severity(Severity::High)
                .outcome(Outcome::Failure)
                .user_id(format!("user-{}", i % 1000))
                .device_id(format!("DEVICE-{}", i % 97))
                .service_id("transfer")
                .url_path("/bank/transfer")
                .http_method("POST")
                .http_status(403)
                .source_ip(std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8]))
                .filter("restrict-1")
                .policy_version(7)
        })
        .collect()
}

async fn peer_publish(js: &jetstream::Context, subject: &str, events: &[Event]) -> Duration {
    let start = Instant::now();
    for chunk in events.chunks(BATCH) {
        let mut acks = Vec::with_capacity(chunk.len());
        for e in chunk {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                e.id().to_string().as_str(),
            );
            acks.push(
                js.publish_with_headers(subject.to_owned(), headers, e.to_json().into())
                    .await
                    .expect("publish"),
            );
        }
        for a in acks {
            a.await.expect("ack");
        }
    }
    start.elapsed()
}

async fn peer_consume(stream: &stream::Stream, subject: &str, n: usize) -> Duration {
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            "bench",
            consumer::pull::Config {
                durable_name: Some("bench".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                filter_subject: subject.to_owned(),
                ..Default::default()
            },
        )
        .await
        .expect("consumer");
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .messages()
            .await
            .expect("fetch");
        while let Some(m) = batch.next().await {
            let m = m.expect("message");
            let _event = Event::from_json(std::str::from_utf8(&m.payload).unwrap()).unwrap();
            m.ack().await.expect("ack");
            got += 1;
        }
    }
    start.elapsed()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let n: usize = args
        .next()
        .map_or(100_000, |s| s.parse().expect("<events> is a number"));
    let events = sample_events(n);
    let bytes: usize = events.iter().map(|e| e.to_json().len()).sum();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let peer_ns = format!("bench_peer_{}", &run[run.len() - 12..]);
    let ours_ns = format!("bench_haetae_{}", &run[run.len() - 12..]);

    // Peer: plain async-nats, same stream settings as haetae's.
    let client = async_nats::connect(&url).await.expect("connect");
    let js = jetstream::new(client);
    let peer_subject = format!("{peer_ns}.events");
    let peer_stream = js
        .get_or_create_stream(stream::Config {
            name: format!("{peer_ns}_events"),
            subjects: vec![peer_subject.clone()],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .expect("peer stream");
    let peer_pub = peer_publish(&js, &peer_subject, &events).await;
    let peer_sub = peer_consume(&peer_stream, &peer_subject, n).await;

    // haetae: the emitter (queue large enough that nothing is refused) and a subscription.
    let bus = Bus::connect_nats(
        &url,
        NatsOptions {
            namespace: ours_ns.clone(),
            ..NatsOptions::default()
        },
    )
    .await
    .expect("haetae bus");
    let emitter = bus
        .event_emitter(EmitterOptions {
            queue_capacity: n.max(1),
            max_batch: BATCH,
            ..EmitterOptions::default()
        })
        .expect("emitter");
    let start = Instant::now();
    let mut emit_time = Duration::ZERO;
    for e in &events {
        let e = e.clone();
        let t = Instant::now();
        let accepted = emitter.emit(e);
        emit_time += t.elapsed();
        assert!(accepted, "queue sized to hold every event");
    }
    assert!(
        emitter.flush(Duration::from_secs(600)).await,
        "{:?}",
        emitter.stats()
    );
    let ours_pub = start.elapsed();
    let mut sub = bus.subscribe_events("bench").await.expect("subscribe");
    let start = Instant::now();
    let mut got = 0;
    while got < n {
        let batch = sub
            .next_batch(500, Duration::from_secs(1))
            .await
            .expect("batch");
        got += batch.events.len();
        batch.ack().await.expect("ack");
    }
    let ours_sub = start.elapsed();

    for name in [
        format!("{peer_ns}_events"),
        format!("{ours_ns}_events"),
        format!("KV_{ours_ns}_policy"),
    ] {
        let _ = js.delete_stream(&name).await;
    }

    println!(
        "{n} events, {:.0} bytes each on average, {url}",
        bytes as f64 / n as f64
    );
    println!("| measure | async-nats (peer) | haetae-bus | haetae / peer |");
    println!("|---|---:|---:|---:|");
    println!(
        "| publish, events/s (stored and acknowledged) | {:.0} | {:.0} | {:.2} |",
        rate(n, peer_pub),
        rate(n, ours_pub),
        rate(n, ours_pub) / rate(n, peer_pub)
    );
    println!(
        "| consume + ack, events/s | {:.0} | {:.0} | {:.2} |",
        rate(n, peer_sub),
        rate(n, ours_sub),
        rate(n, ours_sub) / rate(n, peer_sub)
    );
    println!(
        "| caller's time in emit (mean, including its clock reads) | - | {:.0} ns | - |",
        emit_time.as_nanos() as f64 / n as f64
    );
}
