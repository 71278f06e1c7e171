//! Policy propagation in the distributed shape: a Control Center on PostgreSQL publishes
//! through NATS to two gateways (all in this process, over real sockets); for each of N
//! publishes, the time from sending `POST /api/v1/policy/publish` until both gateways run
//! the new version (polled every millisecond). Prints p50, p90, p99 and the maximum. The
//! issue's target: p99 <= 200 ms.
//!
//! ```sh
//! HAETAE_TEST_PG=postgres://postgres@127.0.0.1:5432/test HAETAE_TEST_NATS=nats://127.0.0.1:4222 \
//!   cargo run --release -p haetae-control --example propagation -- 100
//! ```
//! (`bench/control-propagation.sh` does this.)

#[path = "../tests/support/cluster.rs"]
mod cluster;

use std::time::Duration;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100);
    let Some((pg, nats)) = cluster::services() else {
        return Err("set HAETAE_TEST_PG and HAETAE_TEST_NATS".into());
    };
    let mut c = cluster::Cluster::start(&pg, &nats, 2).await;
    let mut both = Vec::with_capacity(n);
    let mut call = Vec::with_capacity(n);
    for i in 0..n {
        let policy = cluster::traffic_policy(c.upstream, &format!("p{i}"));
        let (version, sent) = c.publish(&policy).await;
        call.push(sent.elapsed());
        let took = c
            .wait_running(version, sent, Duration::from_secs(10))
            .await
            .ok_or_else(|| format!("version {version} did not reach both gateways in 10 s"))?;
        both.push(took.into_iter().max().unwrap_or_default());
    }
    both.sort();
    call.sort();
    println!(
        "propagation to 2 gateways over {n} publishes: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&both, 50.0)),
        ms(percentile(&both, 90.0)),
        ms(percentile(&both, 99.0)),
        ms(percentile(&both, 100.0)),
    );
    println!(
        "  (of which the publish call until its answer: p50 {:.1} ms, p99 {:.1} ms)",
        ms(percentile(&call, 50.0)),
        ms(percentile(&call, 99.0)),
    );
    for g in c.gateways.drain(..).collect::<Vec<_>>() {
        g.stop().await;
    }
    c.stop_center().await;
    Ok(())
}
