//! What a verifier reports: a [`Finding`] with a stable code, a severity, a class, a precise
//! [`Location`] (container path, byte offset, part), a message and CVE references, and the
//! one table that turns findings into a file's [`Verdict`].

use std::fmt;

use haetae_core::{Severity, Verdict};
use serde::{Deserialize, Serialize};

/// What kind of problem a finding describes; the verdict table reads it with the severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingClass {
    /// The bytes break the format's own rules (sizes, offsets, counts, checksums).
    Structure,
    /// Well-formed, but active or risky content: macros, scripts, external links, DDE,
    /// embedded objects or executables.
    ActiveContent,
    /// The content is not what the name claims.
    TypeMismatch,
    /// A scan limit (time, memory, depth, entries) stopped the verification early.
    Limit,
    /// Facts worth recording that are neither risky nor broken (encryption, versions).
    Note,
}

/// Where in a file a finding is: the path through containers, a byte offset inside the
/// innermost part, and a short name of the part (`segment 3 (COM)`, `record 17`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Container path from the outer file inwards (`word/embeddings/oleObject1.bin`,
    /// `Equation Native`). Empty for the top-level file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// Byte offset inside the innermost part (the file itself when `path` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The structure at that place: segment, chunk, record, object or entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

impl Location {
    /// A location at a byte offset.
    #[must_use]
    pub fn at(offset: usize) -> Self {
        Location {
            path: Vec::new(),
            offset: Some(offset as u64),
            part: None,
        }
    }

    /// A location naming a part without an offset.
    #[must_use]
    pub fn part(part: impl Into<String>) -> Self {
        Location {
            path: Vec::new(),
            offset: None,
            part: Some(part.into()),
        }
    }

    /// Adds the name of the structure at this place.
    #[must_use]
    pub fn with_part(mut self, part: impl Into<String>) -> Self {
        self.part = Some(part.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        for (i, p) in self.path.iter().enumerate() {
            if i > 0 {
                f.write_str(" > ")?;
            }
            f.write_str(p)?;
            wrote = true;
        }
        if let Some(part) = &self.part {
            if wrote {
                f.write_str(" > ")?;
            }
            f.write_str(part)?;
            wrote = true;
        }
        if let Some(offset) = self.offset {
            if wrote {
                f.write_str(" ")?;
            }
            write!(f, "@{offset:#x}")?;
            wrote = true;
        }
        if !wrote {
            f.write_str("file")?;
        }
        Ok(())
    }
}

/// One rule a file breaks, or one risky feature it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier (`JPEG-COM-LENGTH`); documented in `docs/docscan.md`.
    pub code: String,
    /// How serious it is.
    pub severity: Severity,
    /// What kind of problem it is.
    pub class: FindingClass,
    /// Where it is.
    pub location: Location,
    /// What is wrong, in one sentence, with the numbers that show it.
    pub message: String,
    /// CVE identifiers of known exploits of this kind of flaw.
    #[serde(default)]
    pub cve: Vec<String>,
}

impl Finding {
    /// A new finding; add CVEs with [`Finding::cve`].
    #[must_use]
    pub fn new(
        code: &str,
        severity: Severity,
        class: FindingClass,
        location: Location,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            code: code.to_owned(),
            severity,
            class,
            location,
            message: message.into(),
            cve: Vec::new(),
        }
    }

    /// Adds CVE references.
    #[must_use]
    pub fn cve(mut self, ids: &[&str]) -> Self {
        self.cve.extend(ids.iter().map(|s| (*s).to_owned()));
        self
    }

    /// The verdict this finding alone calls for; see [`verdict_for`].
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        verdict_for(self.class, self.severity)
    }
}

/// The one table from (class, severity) to verdict. A file's verdict is the worst over its
/// findings (and `clean` without findings).
///
/// | class           | info, low  | medium     | high        | critical   |
/// |-----------------|------------|------------|-------------|------------|
/// | structure       | clean      | suspicious | vulnerable  | vulnerable |
/// | active-content  | clean      | suspicious | suspicious  | vulnerable |
/// | type-mismatch   | clean      | suspicious | suspicious  | vulnerable |
/// | limit           | suspicious | suspicious | suspicious  | suspicious |
/// | note            | clean      | clean      | clean       | clean      |
///
/// Limits are never `clean`: a file that could not be verified to the end is not known to
/// be safe.
#[must_use]
pub const fn verdict_for(class: FindingClass, severity: Severity) -> Verdict {
    match (class, severity) {
        (FindingClass::Note, _)
        | (
            FindingClass::Structure | FindingClass::ActiveContent | FindingClass::TypeMismatch,
            Severity::Info | Severity::Low,
        ) => Verdict::Clean,
        (FindingClass::Structure, Severity::High | Severity::Critical)
        | (FindingClass::ActiveContent | FindingClass::TypeMismatch, Severity::Critical) => {
            Verdict::Vulnerable
        }
        _ => Verdict::Suspicious,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_structure_findings_make_a_file_vulnerable() {
        assert_eq!(
            verdict_for(FindingClass::Structure, Severity::High),
            Verdict::Vulnerable
        );
    }

    #[test]
    fn active_content_is_suspicious_until_critical() {
        assert_eq!(
            verdict_for(FindingClass::ActiveContent, Severity::High),
            Verdict::Suspicious
        );
        assert_eq!(
            verdict_for(FindingClass::ActiveContent, Severity::Critical),
            Verdict::Vulnerable
        );
    }

    #[test]
    fn a_limit_is_never_clean() {
        for sev in Severity::ALL {
            assert_eq!(verdict_for(FindingClass::Limit, sev), Verdict::Suspicious);
        }
    }

    #[test]
    fn location_prints_path_part_and_offset() {
        let mut loc = Location::at(0x20).with_part("segment 2 (COM)");
        loc.path = vec!["a.zip".into(), "x.jpg".into()];
        assert_eq!(loc.to_string(), "a.zip > x.jpg > segment 2 (COM) @0x20");
        assert_eq!(Location::default().to_string(), "file");
    }
}
