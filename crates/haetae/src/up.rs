//! `haetae up`: the embedded deployment. One process runs the Security Control Center and a
//! gateway on one shared bus (in-process by default), so events from the gateway reach the
//! Center's dashboard and policies published in the Center reach the gateway.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use haetae_control::{ControlCenter, ControlOptions};
use haetae_core::Config;

use crate::gateway::{self, Shape};
use crate::lifecycle::{runtime, wait_for_stop};

/// Runs `haetae up` until Ctrl-C or SIGTERM.
pub fn run(config: &Config, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let Some(bus) = gateway::connect_bus(config).await else {
            anyhow::bail!(
                "haetae up needs a message bus: check [bus] in the configuration (the embedded default needs nothing)"
            );
        };
        let center = ControlCenter::start(
            ControlOptions::from_config(config, std::env::vars()),
            bus.clone(),
        )
        .await
        .context("cannot start the Control Center")?;
        let running = match gateway::start(config, config_path, Shape::Embedded, Some(bus)).await
        {
            Ok(running) => running,
            Err(e) => {
                center.shutdown().await;
                return Err(e);
            }
        };

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
        for (part, status) in [
            ("Control Center", center_status.as_str()),
            ("gateway", gateway_status.as_str()),
            ("document inspector", "haetae scan PATH... (command line)"),
            ("remote-support relay", "not available yet"),
        ] {
            eprintln!("  {part:<21} {status}");
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
        running.stop().await;
        center.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
