//! Measures how fast the store ingests events: 100 batches of 1000 gateway-shaped events
//! into SQLite (a temporary file) and, when `HAETAE_TEST_PG` is set, into PostgreSQL (a
//! private schema, dropped afterwards). Prints events per second for each. Build with
//! `--release` for numbers worth comparing (`bench/control-ingest.sh` does):
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

/// CPU seconds (user + system) used so far by this process and, summed, by every process
/// named `postgres` on this machine (the server's backends, WAL writer, checkpointer).
/// Linux `/proc` in `USER_HZ` ticks (100 a second); zeros elsewhere.
fn cpu_seconds() -> (f64, f64) {
    fn ticks(stat: &str) -> u64 {
        // Fields after the command name in parentheses: state is the 3rd field, utime and
        // stime the 14th and 15th.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return 0;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(11) + n(12)
    }
    let own = std::fs::read_to_string("/proc/self/stat").map_or(0, |s| ticks(&s));
    let mut server = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let path = entry.path();
            let is_pg = std::fs::read_to_string(path.join("comm"))
                .is_ok_and(|c| c.trim_end() == "postgres");
            if is_pg {
                server += std::fs::read_to_string(path.join("stat")).map_or(0, |s| ticks(&s));
            }
        }
    }
    #[allow(clippy::cast_precision_loss)]
    (own as f64 / 100.0, server as f64 / 100.0)
}

async fn measure(name: &str, store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    let batches: Vec<Vec<Event>> = (0..BATCHES).map(batch).collect();
    let (own0, server0) = cpu_seconds();
    let start = Instant::now();
    for b in &batches {
        store.insert_events(b).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let (own1, server1) = cpu_seconds();
    let total = BATCHES * BATCH;
    #[allow(clippy::cast_precision_loss)]
    let (rate, per_event) = (total as f64 / secs, 1e6 / total as f64);
    let (own, server) = (own1 - own0, server1 - server0);
    // On a loaded machine the wall-clock rate says more about the neighbours than about
    // the code; the CPU time per event does not (much), and its inverse is the rate one
    // free core would give a batch at a time (fsync waits aside).
    let cpu = own + if name == "postgres" { server } else { 0.0 };
    println!(
        "{name}: {total} events in {secs:.2} s = {rate:.0} events/s; CPU per event: \
         this process {:.1} us{}; one free core: {:.0} events/s",
        own * per_event,
        if name == "postgres" {
            format!(", PostgreSQL {:.1} us", server * per_event)
        } else {
            String::new()
        },
        if cpu > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let r = total as f64 / cpu;
            r
        } else {
            f64::NAN
        },
    );
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
        let result = measure("postgres", &pg).await;
        pg.close().await;
        // The schema holds the 100,000 events just written: drop it.
        let admin = sqlx::PgPool::connect(&url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await?;
        admin.close().await;
        result?;
    }
    Ok(())
}
