//! Measures how fast the store ingests events: 100 batches of 1000 gateway-shaped events
//! into SQLite (a temporary file) and, when `HAETAE_TEST_PG` is set, into PostgreSQL (a
//! private schema). Prints events per second for each. Build with `--release` for numbers
//! worth comparing:
//!
//! ```sh
//! HAETAE_TEST_PG=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p haetae-control --example ingest_rate
//! ```

use std::time::Instant;

use haetae_control::Store;
use haetae_core::{Component, Event, Outcome, Severity};

const BATCHES: usize = 100;
const BATCH: usize = 1000;

fn batch(n: usize) -> Vec<Event> {
    (0..BATCH)
        .map(|i| {
            Event::new(Component::Gateway, "restrict.block")
                .outcome(Outcome::Failure)
                .severity(Severity::High)
                .user_id(format!("user-{}", (n * BATCH + i) % 5000))
                .device_id(format!("device-{}", i % 300))
                .service_id("transfer")
                .filter("restrict-1")
                .instance("gw-1")
                .source_ip("203.0.113.7".parse().expect("an address"))
                .url_path("/bank/transfer")
                .http_method("POST")
                .http_status(302)
        })
        .collect()
}

async fn measure(name: &str, store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    let batches: Vec<Vec<Event>> = (0..BATCHES).map(batch).collect();
    let start = Instant::now();
    for b in &batches {
        store.insert_events(b).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = BATCHES * BATCH;
    #[allow(clippy::cast_precision_loss)]
    let rate = total as f64 / secs;
    println!("{name}: {total} events in {secs:.2} s = {rate:.0} events/s");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let sqlite = Store::open(None, dir.path()).await?;
    measure("sqlite", &sqlite).await?;
    if let Ok(url) = std::env::var("HAETAE_TEST_PG") {
        let schema = format!("haetae_rate_{}", uuid::Uuid::now_v7().simple());
        let pg = Store::open_postgres(&url, Some(&schema)).await?;
        measure("postgres", &pg).await?;
    }
    Ok(())
}
