//! `haetae gateway` and the gateway part of `haetae up`: builds the security filter engine
//! from the configuration, takes its policy from the file (or the last good one on disk),
//! reloads it on SIGHUP and file change, follows the bus, and serves until Ctrl-C/SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::lifecycle::{runtime, wait_for_stop};
use anyhow::Context;
use clap::Args;
use haetae_bus::{Bus, EmitterOptions, NatsOptions};
use haetae_core::config::BusBackend;
use haetae_core::{Config, PolicySnapshot};
use haetae_gateway::{
    EventSink, EventTee, FilterRegistry, Gateway, LastGoodPolicy, LogEventSink, ModuleTrust,
    RunningGateway, watch_bus_policy_with, watch_policy_file,
};

/// `haetae gateway` flags.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Check the settings and the policy, print every problem, and exit (0 when valid).
    #[arg(long)]
    check: bool,
}

/// Runs `haetae gateway`.
pub fn run(
    config: &Config,
    config_path: Option<&Path>,
    args: &GatewayArgs,
) -> anyhow::Result<ExitCode> {
    if args.check {
        return check(config);
    }
    runtime()?.block_on(async {
        let bus = connect_bus(config).await;
        let running = start(config, config_path, Shape::Standalone, bus).await?;
        wait_for_stop().await;
        eprintln!("haetae gateway: stopping; in-flight requests may finish");
        running.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn check(config: &Config) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let _guard = rt.enter();
    let log_sink = Arc::new(LogEventSink::default());
    let gateway = Gateway::new(
        &config.gateway,
        Arc::clone(&log_sink) as Arc<dyn EventSink>,
        FilterRegistry::standard(),
    )?;
    let Some(policy) = &config.policy else {
        println!("settings ok; the file has no [policy] section");
        return Ok(ExitCode::SUCCESS);
    };
    let applied = gateway.apply_policy(policy);
    // The policy event goes to the log from the sink's writer thread: let it finish.
    rt.block_on(log_sink.flush(Duration::from_secs(2)));
    match applied {
        Ok(()) => {
            println!(
                "ok: policy version {}, {} service(s), {} filter(s), {} mapping(s)",
                policy.version,
                policy.services.len(),
                policy.filters.len(),
                policy.mappings.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            println!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A started gateway and what it needs to stop cleanly.
pub struct Running {
    /// The listeners.
    pub gateway: RunningGateway,
    /// The policy version it started with (0: none yet).
    pub policy_version: u64,
    emitter: Option<Arc<haetae_bus::EventEmitter>>,
    log_sink: Arc<LogEventSink>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and flushes or spools events.
    pub async fn stop(self) {
        self.gateway.shutdown().await;
        // The log sink writes from its own thread: let it finish what it was given.
        if !self.log_sink.flush(Duration::from_secs(2)).await {
            eprintln!("haetae: some events were not written to the log before exit");
        }
        if let Some(emitter) = self.emitter {
            let stats = emitter.shutdown(Duration::from_secs(5)).await;
            if stats.pending() > 0 {
                eprintln!(
                    "haetae: {} event(s) kept in the spool for later",
                    stats.pending()
                );
            }
        }
    }
}

/// How the gateway is deployed, which decides where its events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `haetae gateway`: with NATS, events go to the bus; with the in-process bus nobody
    /// else is in the process to read them, so they go to the log only.
    Standalone,
    /// `haetae up`: events go to the in-process bus (for the parts in this process) and,
    /// when the log shows them, to the log.
    Embedded,
}

/// The bus the configuration names. A gateway must start and serve during a NATS outage:
/// it connects in the background, so events spool to disk and the policy comes from the
/// file or the last good one until the server answers. `None` only when the bus cannot be
/// used at all (the reason is logged).
pub async fn connect_bus(config: &Config) -> Option<Bus> {
    let connected = match config.bus.backend {
        BusBackend::Embedded => Ok(Bus::in_process()),
        BusBackend::Nats => {
            Bus::connect_nats_in_background(&config.bus.nats_url, NatsOptions::default()).await
        }
    };
    match connected {
        Ok(bus) => Some(bus),
        Err(e) => {
            // The URL may carry a password: log it redacted.
            tracing::error!(
                "cannot use the bus at {} ({e}); events go to the log only and the policy comes from the file or the last good one",
                haetae_bus::redacted_url(&config.bus.nats_url)
            );
            None
        }
    }
}

/// Builds the gateway, applies its first policy and starts serving. `bus` is the one the
/// process shares (see [`connect_bus`]); with none, events go to the log only.
pub async fn start(
    config: &Config,
    config_path: Option<&Path>,
    shape: Shape,
    bus: Option<Bus>,
) -> anyhow::Result<Running> {
    let last_good = LastGoodPolicy::in_data_dir(&config.data_dir);
    let trust = ModuleTrust::from_config(&config.wasm).map_err(anyhow::Error::msg)?;
    let log_writer = Arc::new(LogEventSink::default());
    let log_sink: Arc<dyn EventSink> = Arc::clone(&log_writer) as Arc<dyn EventSink>;
    let (sink, emitter, kv) = match &bus {
        Some(bus) => {
            let emitter = Arc::new(
                bus.event_emitter(EmitterOptions::spooled(
                    config.data_dir.join("spool").join("gateway-events"),
                ))
                .context("cannot start the event emitter")?,
            );
            let kv = match bus.kv("gateway", Duration::from_secs(24 * 3600)).await {
                Ok(kv) => Some(kv),
                Err(e) => {
                    tracing::warn!(
                        "no shared state on the bus ({e}); filters that need it will fail per their policy"
                    );
                    None
                }
            };
            let log_shows_events = tracing::enabled!(target: "haetae::event", tracing::Level::INFO);
            let sink: Arc<dyn EventSink> = match (config.bus.backend, shape) {
                (BusBackend::Nats, _) => Arc::clone(&emitter) as Arc<dyn EventSink>,
                (BusBackend::Embedded, Shape::Standalone) => Arc::clone(&log_sink),
                (BusBackend::Embedded, Shape::Embedded) if log_shows_events => {
                    Arc::new(EventTee(vec![
                        Arc::clone(&emitter) as Arc<dyn EventSink>,
                        Arc::clone(&log_sink),
                    ]))
                }
                (BusBackend::Embedded, Shape::Embedded) => {
                    Arc::clone(&emitter) as Arc<dyn EventSink>
                }
            };
            (sink, Some(emitter), kv)
        }
        None => (log_sink, None, None),
    };
    let gateway = Arc::new(Gateway::with_shared_state(
        &config.gateway,
        sink,
        kv,
        FilterRegistry::standard(),
    )?);
    let policy: Option<PolicySnapshot> = match &config.policy {
        Some(p) => Some(p.clone()),
        None => match last_good.load() {
            Ok(Some(p)) => {
                eprintln!(
                    "haetae gateway: using the last good policy (version {}) from {}",
                    p.version,
                    last_good.path().display()
                );
                Some(p)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        },
    };
    match &policy {
        Some(p) => {
            if let Err(errors) = gateway.apply_policy(p) {
                anyhow::bail!(
                    "the policy in {} cannot be run; nothing was started.\n{errors}",
                    config_path.map_or_else(
                        || last_good.path().display().to_string(),
                        |p| p.display().to_string()
                    )
                );
            }
            if let Err(e) = last_good.save(p) {
                tracing::warn!(
                    "cannot keep the last good policy in {}: {e}",
                    last_good.path().display()
                );
            }
        }
        None => eprintln!(
            "haetae gateway: no policy yet; every request gets {} until one arrives",
            config.gateway.default_upstream.as_deref().map_or_else(
                || config.gateway.default_status.to_string(),
                |u| format!("forwarded to {u}")
            )
        ),
    }
    let running = gateway.start().await?;
    eprintln!(
        "haetae gateway: listening on http{}://{} (admin http://{}/health, /metrics), policy version {}",
        if config.gateway.tls_cert.is_some() {
            "s"
        } else {
            ""
        },
        running.addr,
        running.admin_addr,
        gateway.policy_version()
    );
    if let Some(path) = config_path.filter(|_| config.policy.is_some()) {
        tokio::spawn(watch_policy_file(
            Arc::clone(&gateway),
            path.to_owned(),
            Some(last_good.clone()),
            Duration::from_millis(config.gateway.policy_poll_ms),
            running.shutdown_signal(),
        ));
    }
    if let Some(bus) = bus {
        tokio::spawn(watch_bus_policy_with(
            Arc::clone(&gateway),
            bus,
            Some(last_good),
            trust,
            running.shutdown_signal(),
        ));
    }
    Ok(Running {
        policy_version: gateway.policy_version(),
        gateway: running,
        emitter,
        log_sink: log_writer,
    })
}
