//! The two scales every haetae part shares: how bad a finding or decision is ([`Severity`]),
//! and what the document inspector concludes about a file ([`Verdict`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How serious a finding, decision or event is. Ordered: `Info < Low < ... < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording, needs no action.
    Info,
    /// A weak signal or a risky but common feature.
    Low,
    /// Needs a look by the security team.
    Medium,
    /// Likely an attack or a dangerous file; acted on by default.
    High,
    /// An attack or a disguised executable; acted on and alerted at once.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in JSON, configuration and the UI.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The numeric form written to ECS `event.severity`, using the bands of Elastic's
    /// detection rules (low 21, medium 47, high 73, critical 99) so SIEM dashboards sort
    /// haetae events with everything else.
    #[must_use]
    pub const fn ecs_number(self) -> u8 {
        match self {
            Severity::Info => 1,
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
            Severity::Critical => 99,
        }
    }

    /// The inverse of [`Severity::ecs_number`] for any number a SIEM may hold: each band
    /// starts at its own number (0..=20 is `Info`, 21..=46 `Low`, and so on).
    #[must_use]
    pub const fn from_ecs_number(n: u64) -> Severity {
        match n {
            0..=20 => Severity::Info,
            21..=46 => Severity::Low,
            47..=72 => Severity::Medium,
            73..=98 => Severity::High,
            _ => Severity::Critical,
        }
    }

    /// The syslog (RFC 5424) severity for forwarding: critical=2 ... info=6.
    #[must_use]
    pub const fn syslog_severity(self) -> u8 {
        match self {
            Severity::Critical => 2,
            Severity::High => 3,
            Severity::Medium => 4,
            Severity::Low => 5,
            Severity::Info => 6,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a severity name that is not one of `info`, `low`, `medium`, `high`, `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected one of info, low, medium, high, critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// The document inspector's conclusion about one file. Ordered: `Clean < Suspicious <
/// Vulnerable`, so the verdict of a container is the maximum over its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Well-formed and without active content.
    Clean,
    /// Well-formed, but carries active content or risky features (macros, JavaScript,
    /// external links, DDE, embedded executables).
    Suspicious,
    /// Breaks its format's rules in a way that can exploit a reader, or disguises an
    /// executable as a document.
    Vulnerable,
}

impl Verdict {
    /// The lowercase name used in JSON and the UI.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Suspicious => "suspicious",
            Verdict::Vulnerable => "vulnerable",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered_from_info_to_critical() {
        assert!(Severity::Info < Severity::Low);
        assert!(Severity::High < Severity::Critical);
        assert_eq!(Severity::ALL.iter().max(), Some(&Severity::Critical));
    }

    #[test]
    fn ecs_numbers_round_trip_and_bands_cover_every_number() {
        for sev in Severity::ALL {
            assert_eq!(Severity::from_ecs_number(u64::from(sev.ecs_number())), sev);
        }
        assert_eq!(Severity::from_ecs_number(0), Severity::Info);
        assert_eq!(Severity::from_ecs_number(50), Severity::Medium);
        assert_eq!(Severity::from_ecs_number(u64::MAX), Severity::Critical);
    }

    #[test]
    fn severity_parses_case_insensitively_and_names_the_choices_on_error() {
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        let err = "severe".parse::<Severity>().unwrap_err().to_string();
        assert!(err.contains("info, low, medium, high, critical"), "{err}");
    }

    #[test]
    fn container_verdict_is_the_worst_of_its_parts() {
        let parts = [Verdict::Clean, Verdict::Vulnerable, Verdict::Suspicious];
        assert_eq!(parts.into_iter().max(), Some(Verdict::Vulnerable));
    }
}
