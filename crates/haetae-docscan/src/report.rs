//! The result of scanning one file ([`Report`]) and the entry points that make one:
//! [`scan_bytes`] for bytes in memory and [`scan_reader`] for a stream of unknown length.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use haetae_core::{Severity, Verdict};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::context::ScanContext;
use crate::filetype::{Agreement, FileType, agreement};
use crate::finding::{Finding, FindingClass, Location};
use crate::formats;
use crate::limits::Limits;

/// What the inspector concluded about one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The name the file came with (path, upload name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// The type the name's extension claims, if it is one we know.
    pub claimed_type: Option<FileType>,
    /// The type the content shows.
    pub detected_type: FileType,
    /// The worst verdict over the findings.
    pub verdict: Verdict,
    /// Everything found, in the order found.
    pub findings: Vec<Finding>,
    /// Wall-clock time of the scan in milliseconds.
    pub elapsed_ms: f64,
    /// Why the file could not be scanned, if it could not (I/O errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// A report for a file that could not be read.
    #[must_use]
    pub fn unreadable(path: Option<String>, error: String) -> Report {
        Report {
            path,
            size: 0,
            sha256: String::new(),
            claimed_type: None,
            detected_type: FileType::Unknown,
            verdict: Verdict::Suspicious,
            findings: Vec::new(),
            elapsed_ms: 0.0,
            error: Some(error),
        }
    }

    /// The highest severity among the findings.
    #[must_use]
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Scans a file held in memory. `name_hint` is the name it came with (for the claimed
/// type); the scan stays within `limits` and never panics.
#[must_use]
pub fn scan_bytes(data: &[u8], name_hint: Option<&str>, limits: &Limits) -> Report {
    let digest = Sha256::digest(data);
    scan_with_digest(data, name_hint, limits, &hex(&digest), Instant::now(), None)
}

fn scan_with_digest(
    data: &[u8],
    name_hint: Option<&str>,
    limits: &Limits,
    sha256: &str,
    started: Instant,
    pre: Option<Finding>,
) -> Report {
    let claimed = name_hint.and_then(FileType::from_name);
    let mut ctx = ScanContext::new(limits, data.len());
    if let Some(f) = pre {
        ctx.report(f);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let detected = formats::verify_any(data, &mut ctx);
        (detected, ctx)
    }));
    let (detected, findings) = match outcome {
        Ok((detected, mut ctx)) => {
            if let Some(claimed) = claimed {
                mismatch(claimed, detected, &mut ctx);
            } else if detected.is_executable() {
                ctx.active(
                    "EXECUTABLE",
                    Severity::Medium,
                    Location::default(),
                    format!("the file is a {detected} program"),
                );
            }
            (detected, ctx.into_findings())
        }
        Err(_) => (
            FileType::Unknown,
            vec![Finding::new(
                "INTERNAL-PANIC",
                Severity::Medium,
                FindingClass::Limit,
                Location::default(),
                "the verifier failed on this file; please report it to the haetae developers with the file's SHA-256",
            )],
        ),
    };
    let verdict = findings
        .iter()
        .map(Finding::verdict)
        .max()
        .unwrap_or(Verdict::Clean);
    Report {
        path: name_hint.map(str::to_owned),
        size: data.len() as u64,
        sha256: sha256.to_owned(),
        claimed_type: claimed,
        detected_type: detected,
        verdict,
        findings,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        error: None,
    }
}

fn mismatch(claimed: FileType, detected: FileType, ctx: &mut ScanContext) {
    let (sev, what) = match agreement(claimed, detected) {
        Agreement::Same => return,
        Agreement::DisguisedExecutable => (Severity::Critical, "a disguised program"),
        Agreement::Different if detected == FileType::Unknown => {
            (Severity::Medium, "content of no known type")
        }
        Agreement::Different => (Severity::Medium, "a different kind of file"),
        Agreement::SameFamily => (Severity::Low, "a related format"),
    };
    ctx.report(Finding::new(
        "TYPE-MISMATCH",
        sev,
        FindingClass::TypeMismatch,
        Location::default(),
        format!("named as {claimed} but the content is {detected}: {what}"),
    ));
}

/// Scans a stream of unknown length (an upload, a socket, a large file): hashes as it
/// reads and holds at most `limits.memory_bytes`. A larger stream is hashed to its end and
/// detected from its start, with a `LIMIT-MEMORY` finding instead of a verification.
pub fn scan_reader(
    mut reader: impl Read,
    name_hint: Option<&str>,
    limits: &Limits,
) -> std::io::Result<Report> {
    let started = Instant::now();
    let budget = usize::try_from(limits.memory_bytes / 2).unwrap_or(usize::MAX);
    // Read straight into the buffer the verifiers get (no copy through a read buffer),
    // and hash it in one pass.
    let mut data = Vec::new();
    (&mut reader).take(budget as u64).read_to_end(&mut data)?;
    let mut hasher = Sha256::new();
    hasher.update(&data);
    let mut total = data.len() as u64;
    if data.len() >= budget {
        // Over the budget: the rest is hashed and counted, not kept.
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(buf.get(..n).unwrap_or_default());
            total += n as u64;
        }
    }
    let sha = hex(&hasher.finalize());
    if total as usize > data.len() {
        let mut report = scan_with_digest(&[], name_hint, limits, &sha, started, None);
        let detected = formats::detect(&data).map_or(FileType::Unknown, |(_, t)| t);
        report.size = total;
        report.detected_type = detected;
        report.findings.retain(|f| f.code != "TYPE-MISMATCH");
        report.findings.push(Finding::new(
            "LIMIT-MEMORY",
            Severity::Medium,
            FindingClass::Limit,
            Location::default(),
            format!(
                "{total} bytes is more than half the memory budget ({} bytes); detected from its start only. Raise limits.memory_bytes to verify it",
                limits.memory_bytes
            ),
        ));
        report.verdict = report
            .findings
            .iter()
            .map(Finding::verdict)
            .max()
            .unwrap_or(Verdict::Clean);
        return Ok(report);
    }
    Ok(scan_with_digest(
        &data, name_hint, limits, &sha, started, None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_named_as_a_pdf_is_vulnerable() {
        let mut pe = vec![0u8; 256];
        pe[0] = b'M';
        pe[1] = b'Z';
        pe[0x3C] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        let r = scan_bytes(&pe, Some("invoice.pdf"), &Limits::default());
        assert_eq!(r.detected_type, FileType::Pe);
        assert_eq!(r.verdict, Verdict::Vulnerable);
        assert!(
            r.findings
                .iter()
                .any(|f| f.code == "TYPE-MISMATCH" && f.severity == Severity::Critical)
        );
    }

    #[test]
    fn the_report_carries_the_sha256_of_the_content() {
        let r = scan_bytes(b"abc", None, &Limits::default());
        assert_eq!(
            r.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_stream_entry_point_agrees_with_the_bytes_entry_point() {
        let data = b"plain text, nothing else\n".repeat(100);
        let a = scan_bytes(&data, Some("a.txt"), &Limits::default());
        let b = scan_reader(&data[..], Some("a.txt"), &Limits::default()).unwrap();
        assert_eq!(
            (a.sha256, a.verdict, a.detected_type),
            (b.sha256, b.verdict, b.detected_type)
        );
    }

    #[test]
    fn a_stream_over_the_memory_budget_is_a_limit_finding() {
        let limits = Limits {
            memory_bytes: 1000,
            ..Limits::default()
        };
        let data = vec![b'a'; 5000];
        let r = scan_reader(&data[..], Some("a.txt"), &limits).unwrap();
        assert_eq!(r.size, 5000);
        assert_eq!(r.verdict, Verdict::Suspicious);
        assert!(r.findings.iter().any(|f| f.code == "LIMIT-MEMORY"));
    }
}
