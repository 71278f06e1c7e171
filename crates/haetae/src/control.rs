//! `haetae control`: runs the Security Control Center alone (the distributed shape: NATS for
//! the bus, PostgreSQL for storage), or verifies its audit log and exits.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use haetae_bus::Bus;
use haetae_control::{ControlCenter, ControlOptions, Store};
use haetae_core::Config;

use crate::lifecycle::{runtime, wait_for_stop};

/// `haetae control` flags.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// Verify the audit log's hash chain, print the result, and exit (0 when intact, 1 when
    /// a row was modified, removed or inserted).
    #[arg(long)]
    verify_audit: bool,
    /// Serve the session cookie with `Secure` (the Center is reached over HTTPS through a
    /// TLS-terminating proxy).
    #[arg(long)]
    secure_cookies: bool,
    /// Delete events older than this many days (0 keeps everything).
    #[arg(long, default_value_t = 90)]
    retention_days: u32,
}

/// Runs `haetae control`.
pub fn run(config: &Config, args: &ControlArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        if args.verify_audit {
            return verify_audit(config).await;
        }
        let bus = Bus::from_config(&config.bus)
            .await
            .context("cannot reach the message bus (bus.backend / bus.nats_url)")?;
        let mut options = ControlOptions::from_config(config, std::env::vars());
        options.secure_cookies = args.secure_cookies;
        options.retention_days = args.retention_days;
        let handle = ControlCenter::start(options, bus).await?;
        println!("haetae control: Security Control Center on http://{}", handle.local_addr());
        if let Some(admin) = handle.initial_admin() {
            if admin.generated {
                println!(
                    "haetae control: first start: user {:?} with password {:?} (shown only this once; change it after logging in)",
                    admin.username, admin.password
                );
            } else {
                println!(
                    "haetae control: first start: user {:?} with the password from {}",
                    admin.username,
                    haetae_control::center::ADMIN_PASSWORD_VAR
                );
            }
        }
        wait_for_stop().await;
        eprintln!("haetae control: stopping");
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn verify_audit(config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::open(config.control.database_url.as_deref(), &config.data_dir).await?;
    let v = store.verify_audit_log().await?;
    store.close().await;
    if v.intact {
        println!("audit log intact: {} rows verified", v.rows);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "audit log TAMPERED at row {}: {}",
            v.first_bad_seq.unwrap_or(0),
            v.problem.unwrap_or_default()
        );
        Ok(ExitCode::FAILURE)
    }
}
