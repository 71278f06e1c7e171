//! `haetae crypto`: prints the approved-algorithm registry and checks a deployment's
//! cryptographic choices against the KISA/NIST policy (`haetae-crypto` owns the rules).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use haetae_crypto::registry::{REGISTRY, Restriction};
use haetae_crypto::{CryptoPolicy, DeploymentChoices};

/// `haetae crypto ...`
#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Print every algorithm haetae knows, with family, strength, standard and status today.
    Algorithms,
    /// Check a deployment's choices (TOML: `[policy]` and `[[choice]]`, see docs/crypto.md).
    /// Exits 1 when any choice is refused.
    Check {
        /// The choices file (a deployment's cryptographic choices, not the main configuration).
        #[arg(value_name = "CONFIG")]
        choices: PathBuf,
    },
}

/// Runs a `haetae crypto` subcommand.
pub fn run(command: &CryptoCommand) -> anyhow::Result<ExitCode> {
    match command {
        CryptoCommand::Algorithms => {
            print!("{}", algorithm_table(&CryptoPolicy::kisa_today()));
            Ok(ExitCode::SUCCESS)
        }
        CryptoCommand::Check { choices } => check(choices),
    }
}

fn algorithm_table(policy: &CryptoPolicy) -> String {
    let mut rows = vec![[
        "ALGORITHM".to_owned(),
        "FAMILY".to_owned(),
        "BITS".to_owned(),
        "ORIGIN".to_owned(),
        format!("STATUS ({})", policy.as_of),
        "STANDARD".to_owned(),
    ]];
    for info in REGISTRY {
        let standard = match info.restriction {
            Restriction::Refused { instead, .. } => format!("use {instead}"),
            _ => info.standard.to_owned(),
        };
        rows.push([
            info.name.to_owned(),
            info.family.to_string(),
            if info.strength_bits == 0 {
                "-".to_owned()
            } else {
                info.strength_bits.to_string()
            },
            match info.origin {
                haetae_crypto::Origin::Korea => "KR".to_owned(),
                haetae_crypto::Origin::International => "intl".to_owned(),
            },
            policy.status(info),
            standard,
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the choices file {name}"))?;
    let choices = DeploymentChoices::parse(&name, &text)?;
    let policy = choices.policy(&name, time::OffsetDateTime::now_utc().date())?;
    println!(
        "policy: minimum {} bits as of {}",
        policy.effective_minimum(),
        policy.as_of
    );
    let verdicts = choices.check(&policy);
    let mut refused = 0;
    for verdict in &verdicts {
        let label = if verdict.choice.used_for.is_empty() {
            verdict.choice.purpose.to_string()
        } else {
            format!("{} ({})", verdict.choice.used_for, verdict.choice.purpose)
        };
        match &verdict.result {
            Ok(approval) => {
                let until = approval
                    .valid_until
                    .map(|d| format!(", valid until {d}"))
                    .unwrap_or_default();
                println!(
                    "ok       {label}: {} ({}-bit{until})",
                    approval.name, approval.strength_bits
                );
            }
            Err(err) => {
                refused += 1;
                println!("REFUSED  {label}: {err}");
            }
        }
    }
    println!("{} choice(s), {} refused", verdicts.len(), refused);
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_algorithm_table_has_a_header_and_one_line_per_registry_row() {
        let table = algorithm_table(&CryptoPolicy::kisa(date!(2026 - 11 - 23)));
        let lines: Vec<_> = table.lines().collect();
        assert!(lines[0].starts_with("ALGORITHM"));
        assert_eq!(lines.len(), REGISTRY.len() + 1);
        let rsa = lines.iter().find(|l| l.starts_with("RSA-1024 ")).unwrap();
        assert!(rsa.contains("refused"), "{rsa}");
    }
}
