//! `haetae up`: the embedded deployment. One process runs the Security Control Center, a
//! gateway and the remote-support relay on one shared bus (in-process by default), so events
//! from the gateway and the relay reach the Center's dashboard, policies published in the
//! Center reach the gateway, and access codes live in the bus's KV.

use std::path::Path;
use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use haetae_control::{ControlCenter, ControlOptions};
use haetae_core::Config;

use crate::gateway::{self, Shape};
use crate::lifecycle::{runtime, wait_for_stop};

/// The relay's own address when it cannot share the Center's (the Center on HTTPS).
const DEFAULT_RELAY_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 7401),
);

/// `haetae up` flags.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Also run a small demo bank (login, balance, transfer, upload) behind the gateway,
    /// publish a demo policy and alert rules for it, and send it a little traffic (customers,
    /// a lost phone, an attacker), so the dashboard shows decisions at once.
    #[arg(long)]
    demo: bool,
    /// Where the demo bank listens (with --demo).
    #[arg(long, default_value = haetae_control::demo::APP_ADDR)]
    demo_listen: std::net::SocketAddr,
    /// Run the remote-support relay on its own address instead of at `/relay` on the Control
    /// Center's (with the Center on HTTPS it gets its own address anyway: 127.0.0.1:7401
    /// unless this says otherwise).
    #[arg(long)]
    relay_listen: Option<std::net::SocketAddr>,
}

/// Runs `haetae up` until Ctrl-C or SIGTERM.
pub fn run(config: &Config, config_path: Option<&Path>, args: &UpArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let Some(bus) = gateway::connect_bus(config).await else {
            anyhow::bail!(
                "haetae up needs a message bus: check [bus] in the configuration (the embedded default needs nothing)"
            );
        };
        let mut options = ControlOptions::from_config(config, std::env::vars());
        // The relay shares the Center's address (plain HTTP): connections asking for
        // `GET /relay` are handed to it.
        let (handoff, handed) = tokio::sync::mpsc::channel(64);
        let share = args.relay_listen.is_none() && options.tls.is_none();
        if share {
            options.relay_handoff = Some(handoff);
        }
        // Agents reach the relay only with a ticket the Center gives a logged-in user; the
        // key lives in this process alone (a restart makes outstanding tickets useless).
        let mut key = [0u8; 32];
        haetae_crypto::error::os_random(&mut key)
            .map_err(|e| anyhow::anyhow!("cannot draw the agent-ticket key: {e}"))?;
        let ticket_key = haetae_core::agent_ticket::TicketKey::from_bytes(key);
        key.fill(0);
        options.agent_tickets = Some(ticket_key.clone());
        let center = ControlCenter::start(options, bus.clone())
            .await
            .context("cannot start the Control Center")?;
        let relay_at = if share {
            crate::relay::RelayAt::Center(center.local_addr(), handed)
        } else {
            crate::relay::RelayAt::Listen(args.relay_listen.unwrap_or(DEFAULT_RELAY_LISTEN))
        };
        let running = match gateway::start(config, config_path, Shape::Embedded, Some(bus.clone())).await
        {
            Ok(running) => running,
            Err(e) => {
                center.shutdown().await;
                return Err(e);
            }
        };

        let relay = match crate::relay::start(
            config,
            &bus,
            relay_at,
            haetae_remote::relay::RelayConfig {
                agent_tickets: Some(ticket_key),
                ..haetae_remote::relay::RelayConfig::default()
            },
            haetae_remote::codes::CodePolicy::default(),
        )
        .await
        {
            Ok(relay) => relay,
            Err(e) => {
                running.stop().await;
                center.shutdown().await;
                return Err(e.context(
                    "cannot start the remote-support relay (choose another address with --relay-listen)",
                ));
            }
        };

        let (demo_stop, demo_stop_rx) = tokio::sync::watch::channel(false);
        let mut demo_tasks = Vec::new();
        let mut demo_status = None;
        if args.demo {
            let listener = match tokio::net::TcpListener::bind(args.demo_listen).await {
                Ok(l) => l,
                Err(e) => {
                    relay.stop().await;
                    running.stop().await;
                    center.shutdown().await;
                    anyhow::bail!(
                        "cannot listen on {} for the demo bank: {e}. Choose another address with --demo-listen",
                        args.demo_listen
                    );
                }
            };
            let app_addr = listener.local_addr().context("the demo bank's address")?;
            demo_tasks.push(haetae_control::demo::serve_app(listener, demo_stop_rx.clone()));
            let version = match haetae_control::demo::install(&center, app_addr).await {
                Ok(v) => v,
                Err(e) => {
                    let _ = demo_stop.send(true);
                    relay.stop().await;
                    running.stop().await;
                    center.shutdown().await;
                    anyhow::bail!("cannot install the demo policy: {}", e.body.error.message);
                }
            };
            demo_tasks.push(tokio::spawn(haetae_control::demo::traffic(
                running.gateway.addr,
                Duration::from_millis(1500),
                demo_stop_rx,
            )));
            demo_status = Some(format!(
                "http://{app_addr} behind the gateway, policy v{version}, sending demo traffic"
            ));
        }

        eprintln!(
            "haetae up: embedded deployment (data in {})",
            config.data_dir.display()
        );
        eprintln!("  part                  status");
        let center_status = format!("http://{}", center.local_addr());
        let gateway_status = format!(
            "http://{} (admin http://{}/health, /metrics), policy version {}",
            running.gateway.addr, running.gateway.admin_addr, running.policy_version
        );
        let relay_status = format!(
            "{} (WebSocket; agent console and customer page not built yet)",
            relay.running.url()
        );
        for (part, status) in [
            ("Control Center", center_status.as_str()),
            ("gateway", gateway_status.as_str()),
            ("document inspector", "haetae scan PATH... (command line)"),
            ("remote-support relay", relay_status.as_str()),
        ] {
            eprintln!("  {part:<21} {status}");
        }
        if let Some(status) = &demo_status {
            eprintln!("  {:<21} {status}", "demo bank");
        }
        if let Some(admin) = center.initial_admin() {
            if admin.generated {
                eprintln!(
                    "  first start: log in as {:?} with password {:?} (shown only this once; change it after logging in)",
                    admin.username, admin.password
                );
            } else {
                eprintln!(
                    "  first start: log in as {:?} with the password from {}",
                    admin.username,
                    haetae_control::center::ADMIN_PASSWORD_VAR
                );
            }
        }
        eprintln!("haetae up: running; Ctrl-C stops");

        wait_for_stop().await;
        eprintln!("haetae up: stopping");
        let _ = demo_stop.send(true);
        for t in demo_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        relay.stop().await;
        running.stop().await;
        center.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
