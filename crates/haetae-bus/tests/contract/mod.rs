//! The behaviour every bus backend must have, written once and run against each backend
//! (`tests/in_process.rs`, `tests/nats.rs`). Each function is one behaviour; names passed in
//! are unique per test so tests can share one NATS server.

#![allow(dead_code)] // each test binary uses the subset it needs

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use haetae_bus::{Bus, BusError, EmitterOptions, SubscribeOptions};
use haetae_core::{Component, Event, PolicySnapshot, Service};

pub fn policy(version: u64) -> PolicySnapshot {
    PolicySnapshot {
        version,
        services: vec![Service {
            id: "transfer".into(),
            name: String::new(),
            matches: Vec::new(),
            upstream: "http://127.0.0.1:9000".into(),
            description: format!("version {version}"),
        }],
        ..PolicySnapshot::default()
    }
}

pub fn events(n: usize, tag: &str) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new(Component::Gateway, format!("{tag}.{i}")))
        .collect()
}

/// Options that make a test fast: short linger and retry.
pub fn quick_emitter() -> EmitterOptions {
    EmitterOptions {
        linger: Duration::from_millis(5),
        retry_interval: Duration::from_millis(200),
        publish_timeout: Duration::from_secs(2),
        ..EmitterOptions::default()
    }
}

// --- policy -------------------------------------------------------------------------------

pub async fn a_published_policy_is_the_latest(bus: Bus) {
    assert_eq!(bus.latest_policy().await.unwrap(), None);
    bus.publish_policy(policy(3)).await.unwrap();
    let latest = bus.latest_policy().await.unwrap().unwrap();
    assert_eq!(latest.version, 3);
    assert_eq!(latest.services[0].description, "version 3");
}

pub async fn a_version_not_greater_than_the_current_is_refused(bus: Bus) {
    bus.publish_policy(policy(5)).await.unwrap();
    for offered in [5, 4] {
        match bus.publish_policy(policy(offered)).await {
            Err(BusError::StaleVersion {
                current: 5,
                offered: o,
            }) => assert_eq!(o, offered),
            other => panic!("version {offered}: expected StaleVersion, got {other:?}"),
        }
    }
    assert_eq!(bus.latest_policy().await.unwrap().unwrap().version, 5);
}

pub async fn an_invalid_policy_is_refused_with_its_problems(bus: Bus) {
    let mut bad = policy(1);
    bad.services[0].upstream = "ftp://nowhere".into();
    let err = bus.publish_policy(bad).await.unwrap_err();
    assert!(
        matches!(err, BusError::InvalidPolicy { version: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("services[0].upstream"), "{err}");
    assert_eq!(bus.latest_policy().await.unwrap(), None);
}

pub async fn a_watch_starts_with_the_latest_then_gets_each_newer(bus: Bus) {
    bus.publish_policy(policy(1)).await.unwrap();
    bus.publish_policy(policy(2)).await.unwrap();
    let mut watch = bus.watch_policy().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the latest comes at once")
        .unwrap();
    assert_eq!(first.version, 2, "an offline subscriber gets the latest");
    bus.publish_policy(policy(7)).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a newer version arrives")
        .unwrap();
    assert_eq!(next.version, 7);
}

pub async fn a_watch_before_any_publish_waits_for_the_first(bus: Bus) {
    let mut watch = bus.watch_policy().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), watch.next())
            .await
            .is_err(),
        "nothing to deliver yet"
    );
    bus.publish_policy(policy(1)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the first publish arrives")
        .unwrap();
    assert_eq!(got.version, 1);
}

// --- events -------------------------------------------------------------------------------

/// Reads until `want` distinct ids arrived (acknowledging each batch) or `patience` passed.
pub async fn collect_ids(
    bus: &Bus,
    durable: &str,
    want: usize,
    patience: Duration,
) -> (Vec<uuid::Uuid>, usize) {
    let mut sub = bus.subscribe_events(durable).await.unwrap();
    let deadline = tokio::time::Instant::now() + patience;
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut deliveries = 0;
    while seen.len() < want && tokio::time::Instant::now() < deadline {
        let batch = match sub.next_batch(500, Duration::from_millis(500)).await {
            Ok(b) => b,
            Err(e) if e.is_unavailable() => continue,
            Err(e) => panic!("{e}"),
        };
        for r in &batch.events {
            deliveries += 1;
            if seen.insert(r.event.id()) {
                order.push(r.event.id());
            }
        }
        batch.ack().await.unwrap();
    }
    (order, deliveries)
}

pub async fn emitted_events_reach_a_subscriber_in_order(bus: Bus, durable: &str) {
    let emitter = bus.event_emitter(quick_emitter()).unwrap();
    let sent = events(300, "order");
    for e in &sent {
        assert!(emitter.emit(e.clone()));
    }
    assert!(
        emitter.flush(Duration::from_secs(10)).await,
        "{:?}",
        emitter.stats()
    );
    let (got, _) = collect_ids(&bus, durable, sent.len(), Duration::from_secs(10)).await;
    let want: Vec<_> = sent.iter().map(Event::id).collect();
    assert_eq!(got, want);
    let stats = emitter.stats();
    assert_eq!((stats.queued, stats.sent, stats.pending()), (300, 300, 0));
}

pub async fn an_unacknowledged_batch_is_delivered_again(bus: Bus, durable: &str) {
    let options = SubscribeOptions {
        ack_wait: Duration::from_millis(500),
    };
    let mut sub = bus.subscribe_events_with(durable, &options).await.unwrap();
    let emitter = bus.event_emitter(quick_emitter()).unwrap();
    let sent = events(3, "redeliver");
    for e in &sent {
        emitter.emit(e.clone());
    }
    assert!(emitter.flush(Duration::from_secs(10)).await);
    let first = sub.next_batch(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.events.len(), 3);
    assert!(first.events.iter().all(|r| r.delivery_count == 1));
    drop(first); // the Control Center crashed before storing it
    let again = sub.next_batch(10, Duration::from_secs(5)).await.unwrap();
    let ids: Vec<_> = again.events.iter().map(|r| r.event.id()).collect();
    assert_eq!(ids, sent.iter().map(Event::id).collect::<Vec<_>>());
    assert!(
        again.events.iter().all(|r| r.delivery_count == 2),
        "{again:?}"
    );
    again.ack().await.unwrap();
    let after = sub.next_batch(10, Duration::from_secs(1)).await.unwrap();
    assert!(
        after.is_empty(),
        "acknowledged events stay acknowledged: {after:?}"
    );
}

pub async fn an_event_sent_twice_is_delivered_once(bus: Bus, durable: &str) {
    let emitter = bus.event_emitter(quick_emitter()).unwrap();
    let one = events(1, "dup").remove(0);
    emitter.emit(one.clone());
    emitter.emit(one.clone());
    emitter.emit(Event::new(Component::Gateway, "dup.marker"));
    assert!(emitter.flush(Duration::from_secs(10)).await);
    let (ids, deliveries) = collect_ids(&bus, durable, 2, Duration::from_secs(5)).await;
    assert_eq!(ids.len(), 2);
    assert_eq!(deliveries, 2, "the duplicate id was dropped by the backend");
}

pub async fn each_durable_subscriber_gets_every_event(bus: Bus, a: &str, b: &str) {
    // Both exist before the events are published.
    drop(bus.subscribe_events(a).await.unwrap());
    drop(bus.subscribe_events(b).await.unwrap());
    let emitter = bus.event_emitter(quick_emitter()).unwrap();
    for e in events(20, "fanout") {
        emitter.emit(e);
    }
    assert!(emitter.flush(Duration::from_secs(10)).await);
    let (got_a, _) = collect_ids(&bus, a, 20, Duration::from_secs(5)).await;
    let (got_b, _) = collect_ids(&bus, b, 20, Duration::from_secs(5)).await;
    assert_eq!(got_a.len(), 20);
    assert_eq!(got_a, got_b);
}

// --- key-value ----------------------------------------------------------------------------

pub async fn create_refuses_a_present_key(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::from_secs(3600)).await.unwrap();
    kv.create("user-1", b"gw-1", None).await.unwrap();
    let err = kv.create("user-1", b"gw-2", None).await.unwrap_err();
    assert!(matches!(err, BusError::KeyExists { .. }), "{err:?}");
    assert_eq!(kv.get("user-1").await.unwrap().unwrap().value, b"gw-1");
}

pub async fn compare_and_swap_wins_only_at_the_expected_revision(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::ZERO).await.unwrap();
    let r1 = kv.put("code", b"unused", None).await.unwrap();
    let r2 = kv
        .compare_and_swap("code", r1, b"used-by-a", None)
        .await
        .unwrap();
    assert!(r2 > r1);
    let err = kv
        .compare_and_swap("code", r1, b"used-by-b", None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BusError::RevisionMismatch { expected, .. } if expected == r1),
        "{err:?}"
    );
    let entry = kv.get("code").await.unwrap().unwrap();
    assert_eq!(
        (entry.value.as_slice(), entry.revision),
        (&b"used-by-a"[..], r2)
    );
}

pub async fn compare_and_swap_on_an_absent_key_fails(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::ZERO).await.unwrap();
    let err = kv
        .compare_and_swap("nobody", 1, b"x", None)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
}

pub async fn an_entry_is_absent_once_its_ttl_passed(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::from_secs(60)).await.unwrap();
    let ttl = Some(Duration::from_secs(1));
    kv.put("session", b"s", ttl).await.unwrap();
    let entry = kv.get("session").await.unwrap().unwrap();
    assert!(entry.expires_at.is_some());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(kv.get("session").await.unwrap(), None);
}

pub async fn an_expired_key_can_be_created_again_but_not_swapped(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::from_secs(60)).await.unwrap();
    let old = kv
        .create("lock", b"a", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let err = kv
        .compare_and_swap("lock", old, b"a", None)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "a lapsed holder cannot renew: {err:?}");
    kv.create("lock", b"b", None).await.unwrap();
    assert_eq!(kv.get("lock").await.unwrap().unwrap().value, b"b");
}

pub async fn a_ttl_beyond_the_bucket_max_age_is_refused(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::from_secs(10)).await.unwrap();
    let err = kv
        .put("k", b"v", Some(Duration::from_secs(11)))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::TtlTooLong { .. }), "{err:?}");
}

pub async fn a_deleted_key_is_absent_and_can_be_created(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::ZERO).await.unwrap();
    kv.put("k", b"v", None).await.unwrap();
    kv.delete("k").await.unwrap();
    assert_eq!(kv.get("k").await.unwrap(), None);
    kv.delete("k").await.unwrap();
    kv.create("k", b"again", None).await.unwrap();
}

pub async fn concurrent_increments_are_never_lost(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::from_secs(600)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let kv = Arc::clone(&kv);
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                kv.increment("fails.user-9", 1, Some(Duration::from_secs(600)))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = kv.get("fails.user-9").await.unwrap().unwrap();
    assert_eq!(total.value, b"100");
}

pub async fn an_increment_keeps_the_window_of_the_first(bus: Bus, bucket: &str) {
    let kv = bus.kv(bucket, Duration::from_secs(60)).await.unwrap();
    let window = Some(Duration::from_secs(2));
    assert_eq!(kv.increment("n", 1, window).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(kv.increment("n", 2, window).await.unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        kv.increment("n", 1, window).await.unwrap(),
        1,
        "the window of the first increment ended; a new one starts"
    );
}

pub async fn buckets_do_not_share_keys(bus: Bus, a: &str, b: &str) {
    let ka = bus.kv(a, Duration::ZERO).await.unwrap();
    let kb = bus.kv(b, Duration::ZERO).await.unwrap();
    ka.put("k", b"a", None).await.unwrap();
    assert_eq!(kb.get("k").await.unwrap(), None);
}

pub async fn a_watch_outlives_the_bus_handle_it_came_from(bus: Bus, publisher: Bus) {
    let mut watch = bus.watch_policy().await.unwrap();
    drop(bus);
    publisher.publish_policy(policy(1)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the policy arrives")
        .expect("the watch is still open");
    assert_eq!(got.version, 1);
}

pub async fn concurrent_publishers_never_make_the_version_go_back(a: Bus, b: Bus, watcher: Bus) {
    let mut watch = watcher.watch_policy().await.unwrap();
    let publish = |bus: Bus, versions: Vec<u64>| async move {
        for v in versions {
            match bus.publish_policy(policy(v)).await {
                Ok(()) | Err(BusError::StaleVersion { .. }) => {}
                Err(e) => panic!("version {v}: {e}"),
            }
        }
    };
    let odd = tokio::spawn(publish(a, (1..=19).step_by(2).collect()));
    let even = tokio::spawn(publish(b, (2..=20).step_by(2).collect()));
    odd.await.unwrap();
    even.await.unwrap();
    assert_eq!(watcher.latest_policy().await.unwrap().unwrap().version, 20);
    let mut seen = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(500), watch.next()).await {
        seen.push(p.version);
        if p.version == 20 {
            break;
        }
    }
    assert_eq!(seen.last(), Some(&20), "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seen:?}"
    );
}
