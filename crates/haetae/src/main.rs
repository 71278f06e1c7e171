//! The `haetae` command: thin glue over the library crates. Every subcommand parses its
//! flags, loads the configuration (`haetae-core`), and hands over to the crate that owns
//! the work.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use haetae_core::{Config, LogFormat};

mod control;
mod crypto;
mod gateway;
mod lifecycle;
mod quarantine;
mod relay;
mod remote;
mod scan;
mod up;

/// haetae: a security platform for online financial services.
#[derive(Debug, Parser)]
#[command(name = "haetae", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Configuration file (TOML). `HAETAE_*` variables override it; flags override both.
    #[arg(long, short = 'c', global = true, env = "HAETAE_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter: `error`, `warn`, `info`, `debug`, `trace`, or per crate
    /// (`haetae_gateway=debug,info`).
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log line format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process on the embedded default (SQLite file, in-process bus).
    Up(up::UpArgs),
    /// Inspect documents and images against their format's rules.
    Scan(scan::ScanArgs),
    /// The document inspector's encrypted quarantine: list, show, restore, purge, audit.
    Quarantine(quarantine::QuarantineArgs),
    /// Run the security filter engine (reverse proxy with per-service filter chains).
    Gateway(gateway::GatewayArgs),
    /// Run the Security Control Center (UI, API, storage).
    Control(control::ControlArgs),
    /// Run the remote-support relay (pairs agent and customer by one-time code, forwards
    /// end-to-end encrypted frames).
    Relay(relay::RelayArgs),
    /// Remote support: the recording key pair, and decrypting a session recording.
    #[command(subcommand)]
    Remote(remote::RemoteCommand),
    /// The native customer helper for remote support (X11): pair with the customer's page,
    /// inject the agent's input with consent, verify signed updates.
    Helper(haetae_helper::cli::HelperArgs),
    /// The approved cryptography: list the algorithms, check a deployment's choices.
    #[command(subcommand)]
    Crypto(crypto::CryptoCommand),
    /// Print the version and the git commit this binary was built from.
    Version,
}

/// mimalloc instead of glibc's malloc: the gateway allocates per request on the worker
/// threads and frees events on the writer thread, a pattern glibc handles by draining the
/// worker's cache into its slow path. Measured with `bench/gateway-instr.sh`: about 11 %
/// fewer instructions per request through the filter chain.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("haetae: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(&cli.global)?;
    init_logging(&config)?;
    match &cli.command {
        Command::Crypto(command) => crypto::run(command),
        Command::Version => {
            println!(
                "haetae {} (commit {})",
                env!("CARGO_PKG_VERSION"),
                env!("HAETAE_GIT_COMMIT")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Up(args) => up::run(&config, cli.global.config.as_deref(), args),
        Command::Scan(args) => scan::run(&config, args),
        Command::Quarantine(args) => quarantine::run(&config, args),
        Command::Gateway(args) => gateway::run(&config, cli.global.config.as_deref(), args),
        Command::Control(args) => control::run(&config, args),
        Command::Relay(args) => relay::run(&config, args),
        Command::Remote(command) => remote::run(command),
        Command::Helper(args) => Ok(haetae_helper::cli::main(args, false)),
    }
}

fn load_config(global: &GlobalArgs) -> anyhow::Result<Config> {
    let text = match &global.config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read configuration file {}", path.display()))?,
        ),
        None => None,
    };
    let name = global
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let loaded = Config::load(
        text.as_deref().map(|t| (name.as_str(), t)),
        std::env::vars(),
    )?;
    for warning in &loaded.warnings {
        eprintln!("haetae: warning: {warning}");
    }
    let mut config = loaded.config;
    if let Some(level) = &global.log_level {
        config.log.level.clone_from(level);
    }
    if let Some(format) = global.log_format {
        config.log.format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    Ok(config)
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("invalid log level {:?}", config.log.level))?;
    // Colour only for a person at a terminal; files and log shippers get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_every_subcommand() {
        let help = Cli::command().render_long_help().to_string();
        for sub in [
            "up",
            "scan",
            "quarantine",
            "gateway",
            "control",
            "relay",
            "remote",
            "helper",
            "crypto",
            "version",
        ] {
            assert!(
                help.contains(&format!("\n  {sub} ")),
                "{sub} missing from:\n{help}"
            );
        }
    }
}
