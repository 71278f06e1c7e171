//! `haetae relay`: the remote-support relay (`haetae-remote`) on its own. Access codes live in
//! the bus's shared KV (NATS in the distributed shape, so several relays share them); events
//! go to the bus and to the log.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use haetae_bus::EmitterOptions;
use haetae_core::{Config, Event};
use haetae_remote::codes::{AccessCodes, BUCKET, BUCKET_MAX_AGE, CodePolicy};
use haetae_remote::relay::{EventOut, RelayConfig, RunningRelay, serve, serve_handed};

use crate::gateway::connect_bus;
use crate::lifecycle::{runtime, wait_for_stop};

/// `haetae relay` flags.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on for WebSocket connections (put TLS in front: the gateway or
    /// another terminator on port 443).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// This relay's id, stored with the codes it issues.
    #[arg(long, default_value = "relay-1")]
    relay_id: String,
    /// Digits per access code (6-9).
    #[arg(long, default_value_t = 9)]
    code_digits: u32,
    /// How long an access code stays valid, in seconds (at most 1800).
    #[arg(long, default_value_t = 300)]
    code_ttl: u64,
    /// Networks agents may connect from (CIDR; repeat the flag). Default: loopback only.
    #[arg(long = "agent-network")]
    agent_networks: Vec<ipnet::IpNet>,
    /// Browser origins accepted (repeat the flag); none given accepts any.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Seconds without traffic after which a session ends.
    #[arg(long, default_value_t = 120)]
    idle_timeout: u64,
    /// Bytes per second one session may forward.
    #[arg(long, default_value_t = 4 << 20)]
    session_bytes_per_sec: u64,
    /// Seconds after its relay was last heard of during which a session can be resumed on
    /// another relay sharing the bus (failover; at most 3600).
    #[arg(long, default_value_t = 60)]
    resume_window: u64,
    /// Seconds the first side back after a lost connection waits for the other.
    #[arg(long, default_value_t = 30)]
    resume_wait: u64,
}

/// Runs `haetae relay`.
pub fn run(config: &Config, args: &RelayArgs) -> anyhow::Result<ExitCode> {
    let mut relay_config = RelayConfig {
        relay_id: args.relay_id.clone(),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        session_bytes_per_sec: args.session_bytes_per_sec,
        allowed_origins: args.allowed_origins.clone(),
        resume: haetae_remote::registry::RegistryPolicy {
            resume_window: Duration::from_secs(args.resume_window),
            resume_wait: Duration::from_secs(args.resume_wait),
            ..haetae_remote::registry::RegistryPolicy::default()
        },
        ..RelayConfig::default()
    };
    if !args.agent_networks.is_empty() {
        relay_config.agent_networks.clone_from(&args.agent_networks);
    }
    let policy = CodePolicy {
        digits: args.code_digits,
        ttl: Duration::from_secs(args.code_ttl),
        ..CodePolicy::default()
    };
    runtime()?.block_on(async {
        let bus = connect_bus(config).await.context(
            "the relay keeps its access codes in the bus's KV; it cannot start without it",
        )?;
        let relay = start(
            config,
            &bus,
            RelayAt::Listen(args.listen),
            relay_config,
            policy,
        )
        .await?;
        eprintln!(
            "haetae relay: listening on {} (WebSocket; bus: {})",
            relay.running.url(),
            bus.backend_name()
        );
        wait_for_stop().await;
        eprintln!("haetae relay: stopping; connected clients are told");
        relay.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// A relay serving with its event emitter (`haetae relay`, and inside `haetae up`).
pub(crate) struct Relay {
    pub(crate) running: RunningRelay,
    emitter: Arc<haetae_bus::EventEmitter>,
}

impl Relay {
    /// Stops the relay (clients are told), then flushes its events.
    pub(crate) async fn stop(self) {
        self.running.stop().await;
        self.emitter.shutdown(Duration::from_secs(5)).await;
    }
}

/// Where a relay takes its connections from.
pub(crate) enum RelayAt {
    /// Its own listener.
    Listen(SocketAddr),
    /// Connections the Control Center hands over (`GET /relay` on the Center's address).
    Center(
        SocketAddr,
        tokio::sync::mpsc::Receiver<(tokio::net::TcpStream, SocketAddr)>,
    ),
}

/// Starts a relay whose codes live in `bus`'s KV and whose events go to the bus (spooled
/// under the data folder while the bus is away) and to the log.
pub(crate) async fn start(
    config: &Config,
    bus: &haetae_bus::Bus,
    at: RelayAt,
    relay_config: RelayConfig,
    policy: CodePolicy,
) -> anyhow::Result<Relay> {
    // A relay on NATS starts while the bus still connects in the background: the bucket is
    // asked for again for a while before giving up.
    let mut tries = 0;
    let kv = loop {
        match bus.kv(BUCKET, BUCKET_MAX_AGE).await {
            Ok(kv) => break kv,
            Err(e) if tries < 60 => {
                tries += 1;
                tracing::debug!(error = %e, "relay: the access-code bucket is not reachable yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e).context("cannot open the access-code bucket"),
        }
    };
    let codes = AccessCodes::new(kv, policy, relay_config.relay_id.clone())?;
    let emitter = Arc::new(
        bus.event_emitter(EmitterOptions::spooled(
            config.data_dir.join("spool").join("relay-events"),
        ))
        .context("cannot start the event emitter")?,
    );
    let sink = Arc::clone(&emitter);
    let events: EventOut = Arc::new(move |e: Event| {
        tracing::info!(target: "haetae::events", "{}", e.to_json());
        sink.emit(e);
    });
    let started = match at {
        RelayAt::Listen(listen) => serve(listen, relay_config, codes, events).await,
        RelayAt::Center(addr, handed) => serve_handed(addr, handed, relay_config, codes, events),
    };
    let running = match started {
        Ok(r) => r,
        Err(e) => {
            emitter.shutdown(Duration::from_secs(1)).await;
            return Err(e.into());
        }
    };
    Ok(Relay { running, emitter })
}
