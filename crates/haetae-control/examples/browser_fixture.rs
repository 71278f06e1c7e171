//! A Control Center for the browser tests (`tests/browser/`): starts on a free port with a
//! fresh SQLite folder and the in-process bus, prints `LISTENING <url>`, then reads one ECS
//! event (JSON) per line from stdin and emits it on the bus through an `EventEmitter`, the
//! same path a gateway's events take to the ingest. `EMITTED <id>` confirms each one; EOF
//! stops it.

use std::time::Duration;

use haetae_bus::{Bus, EmitterOptions};
use haetae_control::{ControlCenter, ControlOptions};
use haetae_core::Event;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let bus = Bus::in_process();
    let options = ControlOptions {
        listen: "127.0.0.1:0".parse()?,
        database_url: None,
        data_dir: dir.path().to_path_buf(),
        retention_days: 0,
        secure_cookies: false,
        admin_password: Some(
            std::env::var("HAETAE_ADMIN_PASSWORD")
                .unwrap_or_else(|_| "browser test password".into()),
        ),
        tls: None,
        relay_handoff: None,
        agent_tickets: None,
        recording_key: None,
        wasm: Default::default(),
    };
    let center = ControlCenter::start(options, bus.clone()).await?;
    println!("LISTENING http://{}", center.local_addr());
    let emitter = bus.event_emitter(EmitterOptions {
        linger: Duration::from_millis(5),
        ..EmitterOptions::default()
    })?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        match Event::from_json(&line) {
            Ok(event) => {
                let id = event.id();
                emitter.emit(event);
                emitter.flush(Duration::from_secs(5)).await;
                println!("EMITTED {id}");
            }
            Err(e) => println!("ERROR {e}"),
        }
    }
    emitter.shutdown(Duration::from_secs(5)).await;
    center.shutdown().await;
    Ok(())
}
