//! The downloadable helper: `haetae-helper run --launch FILE --self-delete`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = haetae_helper::cli::StandaloneCli::parse();
    haetae_helper::cli::main(&cli.args, true)
}
