//! Relay capacity on loopback: starts a relay in this process, pairs `SESSIONS` agent/customer
//! pairs through it by code, and has every customer send `FRAMES` frames of `BYTES` bytes
//! (sealed-frame sized, opaque to the relay) to its agent while the agent answers each with
//! a small frame. Prints pairing time, forwarded MB/s and the round-trip latency
//! percentiles through the relay (two relay hops per round trip). With `RATE` > 0 every
//! session sends `RATE` frames per second (a screen stream: 30 frames of 4 KiB is ~1 Mbit/s)
//! and the round trip shows the latency the relay adds at that load; with 0 they send as
//! fast as they can (throughput; the latency is then queueing).
//!
//! `cargo run --release -p haetae-remote --example relay_load -- [SESSIONS] [FRAMES] [BYTES] [RATE]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use haetae_bus::Bus;
use haetae_remote::client::RelayClient;
use haetae_remote::codes::{AccessCodes, BUCKET, BUCKET_MAX_AGE, CodePolicy};
use haetae_remote::protocol::RelayMessage;
use haetae_remote::relay::{EventOut, RelayConfig, serve};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let sessions = arg(1, 100);
    let frames = arg(2, 200);
    let bytes = arg(3, 16 * 1024);
    let rate = arg(4, 0);
    let kv = Bus::in_process().kv(BUCKET, BUCKET_MAX_AGE).await.unwrap();
    let codes = AccessCodes::new(kv, CodePolicy::default(), "relay-1").unwrap();
    let events: EventOut = Arc::new(|_| {});
    let config = RelayConfig {
        session_bytes_per_sec: 1 << 40,
        total_bytes_per_sec: 1 << 40,
        frames_per_sec: 1 << 30,
        ..RelayConfig::default()
    };
    let relay = serve("127.0.0.1:0".parse().unwrap(), config, codes, events)
        .await
        .unwrap();
    let url = relay.url();

    let started = Instant::now();
    let mut pairs = Vec::new();
    for _ in 0..sessions {
        let (mut agent, code, _) = RelayClient::open_as_agent(&url, "load").await.unwrap();
        let (customer, _) = RelayClient::join_as_customer(&url, &code).await.unwrap();
        agent.wait_paired().await.unwrap();
        pairs.push((agent, customer));
    }
    let pairing = started.elapsed();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut agent, mut customer) in pairs {
        tasks.push(tokio::spawn(async move {
            let echo = tokio::spawn(async move {
                for _ in 0..frames {
                    agent.recv_peer_bytes().await.unwrap();
                    agent.send(&RelayMessage::Peer(vec![1; 32])).await.unwrap();
                }
                agent
            });
            let mut rtts = Vec::with_capacity(frames);
            let mut pace = (rate > 0).then(|| {
                let mut every = tokio::time::interval(Duration::from_secs(1) / rate as u32);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                every
            });
            for _ in 0..frames {
                if let Some(pace) = pace.as_mut() {
                    pace.tick().await;
                }
                let t = Instant::now();
                customer
                    .send(&RelayMessage::Peer(vec![0; bytes]))
                    .await
                    .unwrap();
                customer.recv_peer_bytes().await.unwrap();
                rtts.push(t.elapsed());
            }
            let _agent = echo.await.unwrap();
            rtts
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let forwarded = (sessions * frames * (bytes + 32)) as f64;
    println!(
        "sessions {sessions}, frames {frames} x {bytes} B each, rate {rate}/s (0: unpaced): paired in {pairing:.2?} ({:.1} ms/session); forwarded {:.1} MB in {elapsed:.2?} = {:.1} MB/s; round trip through the relay p50 {:.2?} p95 {:.2?} p99 {:.2?}",
        pairing.as_secs_f64() * 1000.0 / sessions as f64,
        forwarded / 1e6,
        forwarded / 1e6 / elapsed.as_secs_f64(),
        percentile(&all, 0.50),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
    );
    relay.stop().await;
}
