//! The bus on a real NATS JetStream server: the shared contract (`tests/contract`), then what
//! only a distributed bus has to show: two handles (a gateway and a Control Center) on one
//! server, and a server restart in the middle of event delivery.
//!
//! Needs `HAETAE_TEST_NATS` (e.g. `nats://127.0.0.1:4222`); every test works in its own
//! namespace (streams and buckets `t_<random>_*`) and removes it afterwards, so tests run
//! concurrently. The restart test starts a private `nats-server` (from `HAETAE_NATS_SERVER`,
//! `/usr/sbin/nats-server` or `PATH`).

mod contract;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use haetae_bus::{Bus, EmitterOptions, NatsOptions, SubscribeOptions};
use tokio::time::Instant;

fn nats_url() -> String {
    std::env::var("HAETAE_TEST_NATS").expect(
        "HAETAE_TEST_NATS is not set: point it at a NATS server with JetStream, e.g. nats://127.0.0.1:4222",
    )
}

/// A private namespace on the test server, removed when dropped (even after a failure).
struct Namespace {
    url: String,
    name: String,
}

impl Namespace {
    fn new() -> Namespace {
        Namespace::on(nats_url())
    }

    fn on(url: String) -> Namespace {
        let id = uuid::Uuid::now_v7().simple().to_string();
        Namespace {
            url,
            name: format!("t_{}", &id[id.len() - 20..]),
        }
    }

    fn options(&self) -> NatsOptions {
        NatsOptions {
            namespace: self.name.clone(),
            request_timeout: Duration::from_secs(2),
            event_max_age: Duration::from_secs(3600),
            // JetStream reserves max_bytes per stream up front: the default 8 GiB fails on a
            // server whose disk has less room (error 10047), and tests write a few MiB.
            event_max_bytes: 64 * 1024 * 1024,
            ..NatsOptions::default()
        }
    }

    async fn bus(&self) -> Bus {
        Bus::connect_nats(&self.url, self.options())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let url = self.url.clone();
        let prefixes = [format!("{}_", self.name), format!("KV_{}_", self.name)];
        // Drop cannot await; clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            rt.block_on(async move {
                let Ok(Ok(client)) =
                    tokio::time::timeout(Duration::from_secs(2), async_nats::connect(&url)).await
                else {
                    return;
                };
                let js = async_nats::jetstream::new(client);
                let names: Vec<String> = js
                    .stream_names()
                    .filter_map(|n| async move { n.ok() })
                    .collect()
                    .await;
                for name in names {
                    if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                        let _ = js.delete_stream(&name).await;
                    }
                }
            });
        })
        .join();
    }
}

// --- the contract -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_published_policy_is_the_latest() {
    let ns = Namespace::new();
    contract::a_published_policy_is_the_latest(ns.bus().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_version_not_greater_than_the_current_is_refused() {
    let ns = Namespace::new();
    contract::a_version_not_greater_than_the_current_is_refused(ns.bus().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn an_invalid_policy_is_refused_with_its_problems() {
    let ns = Namespace::new();
    contract::an_invalid_policy_is_refused_with_its_problems(ns.bus().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_watch_starts_with_the_latest_then_gets_each_newer() {
    let ns = Namespace::new();
    contract::a_watch_starts_with_the_latest_then_gets_each_newer(ns.bus().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_watch_before_any_publish_waits_for_the_first() {
    let ns = Namespace::new();
    contract::a_watch_before_any_publish_waits_for_the_first(ns.bus().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn emitted_events_reach_a_subscriber_in_order() {
    let ns = Namespace::new();
    contract::emitted_events_reach_a_subscriber_in_order(ns.bus().await, "center").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn an_unacknowledged_batch_is_delivered_again() {
    let ns = Namespace::new();
    contract::an_unacknowledged_batch_is_delivered_again(ns.bus().await, "center").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn an_event_sent_twice_is_delivered_once() {
    let ns = Namespace::new();
    contract::an_event_sent_twice_is_delivered_once(ns.bus().await, "center").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn each_durable_subscriber_gets_every_event() {
    let ns = Namespace::new();
    contract::each_durable_subscriber_gets_every_event(ns.bus().await, "center_a", "center_b")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn create_refuses_a_present_key() {
    let ns = Namespace::new();
    contract::create_refuses_a_present_key(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn compare_and_swap_wins_only_at_the_expected_revision() {
    let ns = Namespace::new();
    contract::compare_and_swap_wins_only_at_the_expected_revision(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn compare_and_swap_on_an_absent_key_fails() {
    let ns = Namespace::new();
    contract::compare_and_swap_on_an_absent_key_fails(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn an_entry_is_absent_once_its_ttl_passed() {
    let ns = Namespace::new();
    contract::an_entry_is_absent_once_its_ttl_passed(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn an_expired_key_can_be_created_again_but_not_swapped() {
    let ns = Namespace::new();
    contract::an_expired_key_can_be_created_again_but_not_swapped(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_ttl_beyond_the_bucket_max_age_is_refused() {
    let ns = Namespace::new();
    contract::a_ttl_beyond_the_bucket_max_age_is_refused(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_deleted_key_is_absent_and_can_be_created() {
    let ns = Namespace::new();
    contract::a_deleted_key_is_absent_and_can_be_created(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn concurrent_increments_are_never_lost() {
    let ns = Namespace::new();
    contract::concurrent_increments_are_never_lost(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn an_increment_keeps_the_window_of_the_first() {
    let ns = Namespace::new();
    contract::an_increment_keeps_the_window_of_the_first(ns.bus().await, "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn buckets_do_not_share_keys() {
    let ns = Namespace::new();
    contract::buckets_do_not_share_keys(ns.bus().await, "b1", "b2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_watch_outlives_the_bus_handle_it_came_from() {
    let ns = Namespace::new();
    contract::a_watch_outlives_the_bus_handle_it_came_from(ns.bus().await, ns.bus().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn concurrent_publishers_never_make_the_version_go_back() {
    let ns = Namespace::new();
    contract::concurrent_publishers_never_make_the_version_go_back(
        ns.bus().await,
        ns.bus().await,
        ns.bus().await,
    )
    .await;
}

// --- two handles on one server -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_policy_reaches_two_gateways_on_other_handles_and_the_time_is_measured() {
    let ns = Namespace::new();
    let center = ns.bus().await;
    let mut gateways = Vec::new();
    for _ in 0..2 {
        gateways.push(ns.bus().await.watch_policy().await.unwrap());
    }
    let mut took = Vec::new();
    for version in 1..=50 {
        let start = Instant::now();
        center
            .publish_policy(contract::policy(version))
            .await
            .unwrap();
        for (i, watch) in gateways.iter_mut().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(5), watch.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("version {version} did not reach gateway {i} within 5 s")
                })
                .unwrap();
            assert_eq!(got.version, version);
        }
        // Publish to both gateways running it: the slower of the two.
        took.push(start.elapsed());
    }
    took.sort();
    let p50 = took[took.len() / 2];
    let p99 = took[took.len() * 99 / 100];
    let max = took[took.len() - 1];
    println!(
        "policy propagation over NATS to 2 gateways, 50 publishes: p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );
    assert!(
        max < Duration::from_secs(1),
        "the issue asks for < 1 s; max {max:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_gateway_that_connects_later_gets_the_latest_policy_first() {
    let ns = Namespace::new();
    let center = ns.bus().await;
    for version in [1, 2, 3] {
        center
            .publish_policy(contract::policy(version))
            .await
            .unwrap();
    }
    let late_gateway = ns.bus().await;
    let mut watch = late_gateway.watch_policy().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the latest arrives at once")
        .unwrap();
    assert_eq!(first.version, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn of_two_gateways_swapping_the_same_revision_exactly_one_wins() {
    let ns = Namespace::new();
    let a = ns
        .bus()
        .await
        .kv("codes", Duration::from_secs(600))
        .await
        .unwrap();
    let b = ns
        .bus()
        .await
        .kv("codes", Duration::from_secs(600))
        .await
        .unwrap();
    let revision = a
        .create("123456", b"unused", Some(Duration::from_secs(300)))
        .await
        .unwrap();
    let seen_by_b = b.get("123456").await.unwrap().unwrap();
    assert_eq!(seen_by_b.revision, revision);
    let (ra, rb) = tokio::join!(
        a.compare_and_swap("123456", revision, b"used-by-agent-a", None),
        b.compare_and_swap("123456", revision, b"used-by-agent-b", None),
    );
    assert!(ra.is_ok() != rb.is_ok(), "exactly one wins: {ra:?} {rb:?}");
    let loser = ra.err().or(rb.err()).unwrap();
    assert!(loser.is_conflict(), "{loser:?}");
}

// --- a NATS restart in the middle ----------------------------------------------------------

/// A nats-server of our own, so the test can stop and start it.
struct PrivateServer {
    binary: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("HAETAE_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let debian = PathBuf::from("/usr/sbin/nats-server");
    if debian.exists() {
        return debian;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .find(|p| p.exists())
        })
        .expect("nats-server not found: install it (Debian: apt-get install nats-server) or set HAETAE_NATS_SERVER")
}

impl PrivateServer {
    /// A port and a store for a server that is not running yet.
    fn reserved() -> PrivateServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        PrivateServer {
            binary: nats_server_binary(),
            port,
            store: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    async fn start() -> PrivateServer {
        let mut server = PrivateServer::reserved();
        server.resume().await;
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server on the same port and store and waits until it accepts clients.
    async fn resume(&mut self) {
        let child = tokio::process::Command::new(&self.binary)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (no graceful shutdown) and waits for it to be gone.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

async fn connect_with_patience(ns: &Namespace) -> Bus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Bus::connect_nats(&ns.url, ns.options()).await {
            Ok(bus) => return bus,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for JetStream: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn no_event_is_lost_and_the_policy_watch_resumes_when_nats_restarts_in_the_middle() {
    // The shared server is not touched, but the suite runs with the others.
    let _ = nats_url();
    let mut server = PrivateServer::start().await;
    let ns = Namespace::on(server.url());
    let center = connect_with_patience(&ns).await;
    let gateway = connect_with_patience(&ns).await;
    drop(center.subscribe_events("center").await.unwrap());
    center.publish_policy(contract::policy(1)).await.unwrap();
    let mut policy = gateway.watch_policy().await.unwrap();
    assert_eq!(policy.next().await.unwrap().version, 1);
    let spool = tempfile::tempdir().unwrap();
    let emitter = gateway
        .event_emitter(EmitterOptions {
            linger: Duration::from_millis(5),
            retry_interval: Duration::from_millis(250),
            publish_timeout: Duration::from_secs(1),
            ..EmitterOptions::spooled(spool.path())
        })
        .unwrap();
    let mut sent = Vec::new();
    let mut emit = |n: usize, tag: &str| {
        for e in contract::events(n, tag) {
            sent.push(e.id());
            assert!(emitter.emit(e));
        }
    };

    emit(200, "before");
    assert!(
        emitter.flush(Duration::from_secs(10)).await,
        "{:?}",
        emitter.stats()
    );

    server.kill().await;
    let outage = Instant::now();
    for _ in 0..10 {
        emit(30, "during");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during = emitter.stats();
    println!("during the outage: {during:?}");
    assert!(
        during.spooled > 0,
        "events were spooled while NATS was down: {during:?}"
    );
    let files = std::fs::read_dir(spool.path()).unwrap().count();
    assert!(files > 0, "the spool folder holds batches");

    server.resume().await;
    emit(200, "after");
    // The Control Center publishes once NATS is back; the gateway's watch resumes by itself.
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = center.publish_policy(contract::policy(2)).await {
        assert!(Instant::now() < deadline, "publish after the restart: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resumed = tokio::time::timeout(Duration::from_secs(15), policy.next())
        .await
        .expect("the gateway gets the policy published after the restart")
        .unwrap();
    assert_eq!(resumed.version, 2);
    assert!(
        emitter.flush(Duration::from_secs(30)).await,
        "everything delivered after the restart: {:?}",
        emitter.stats()
    );
    println!(
        "delivered everything {:?} after the outage began",
        outage.elapsed()
    );

    let mut sub = center
        .subscribe_events_with("center", &SubscribeOptions::default())
        .await
        .unwrap();
    let mut got = HashSet::new();
    let mut deliveries = 0usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < sent.len() && Instant::now() < deadline {
        match sub.next_batch(500, Duration::from_millis(500)).await {
            Ok(batch) => {
                deliveries += batch.events.len();
                got.extend(batch.events.iter().map(|r| r.event.id()));
                batch.ack().await.unwrap();
            }
            Err(e) => {
                eprintln!("fetch: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let want: HashSet<_> = sent.iter().copied().collect();
    let missing = want.difference(&got).count();
    let stats = emitter.stats();
    println!(
        "emitted {}, received {} distinct in {deliveries} deliveries, missing {missing}; {stats:?}",
        want.len(),
        got.len()
    );
    assert_eq!(missing, 0, "no event is lost");
    assert_eq!(got.len(), 700);
    assert_eq!(stats.dropped_backlog, 0);
    assert_eq!(
        std::fs::read_dir(spool.path()).unwrap().count(),
        0,
        "the spool is empty again"
    );
    drop(ns);
    server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs HAETAE_TEST_NATS"]
async fn a_gateway_started_while_nats_is_down_spools_then_catches_up() {
    let _ = nats_url();
    let mut server = PrivateServer::reserved();
    let ns = Namespace::on(server.url());
    let gateway = tokio::time::timeout(
        Duration::from_secs(2),
        Bus::connect_nats_in_background(&ns.url, ns.options()),
    )
    .await
    .expect("returns at once although nothing listens")
    .unwrap();
    let mut policy = gateway.watch_policy().await.unwrap();
    let spool = tempfile::tempdir().unwrap();
    let emitter = gateway
        .event_emitter(EmitterOptions {
            linger: Duration::from_millis(5),
            retry_interval: Duration::from_millis(250),
            publish_timeout: Duration::from_secs(1),
            ..EmitterOptions::spooled(spool.path())
        })
        .unwrap();
    let sent = contract::events(100, "cold-start");
    for e in &sent {
        assert!(emitter.emit(e.clone()));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while emitter.stats().backlog < 100 {
        assert!(Instant::now() < deadline, "{:?}", emitter.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gateway.latest_policy().await.unwrap_err().is_unavailable());

    server.resume().await;
    let center = connect_with_patience(&ns).await;
    center.publish_policy(contract::policy(1)).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(15), policy.next())
        .await
        .expect("the gateway gets the policy once NATS is up")
        .unwrap();
    assert_eq!(first.version, 1);
    assert!(
        emitter.flush(Duration::from_secs(30)).await,
        "{:?}",
        emitter.stats()
    );
    let (got, _) = contract::collect_ids(&center, "center", 100, Duration::from_secs(15)).await;
    let mut want: Vec<_> = sent.iter().map(haetae_core::Event::id).collect();
    let mut got_sorted = got.clone();
    want.sort();
    got_sorted.sort();
    assert_eq!(
        got_sorted, want,
        "every event emitted before NATS existed arrives"
    );
    drop(ns);
    server.kill().await;
}
