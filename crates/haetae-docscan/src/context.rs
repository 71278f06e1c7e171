//! The state of one scan shared by every verifier it runs: the findings so far, the path
//! through containers, and the budgets (time, memory, depth, entries) left.

use std::time::Instant;

use haetae_core::Severity;

use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats;
use crate::limits::Limits;

/// One scan in progress. Verifiers report through it and ask it before spending budget.
#[derive(Debug)]
pub struct ScanContext<'l> {
    limits: &'l Limits,
    started: Instant,
    findings: Vec<Finding>,
    path: Vec<String>,
    memory_held: u64,
    entries: u64,
    out_of_time: bool,
    /// Calls to [`ScanContext::out_of_time`] since it last read the clock.
    clock_skips: u32,
    entries_exhausted: bool,
}

/// [`ScanContext::out_of_time`] reads the clock on every this-many-th call. Verifiers ask
/// once per record or entry, millions of times in a large workbook, and a clock read costs
/// more than a record check: one in eight keeps the budget's overshoot to a few iterations.
const CLOCK_STRIDE: u32 = 8;

impl<'l> ScanContext<'l> {
    /// A fresh scan under `limits`; the file's own bytes count against the memory budget.
    #[must_use]
    pub fn new(limits: &'l Limits, file_len: usize) -> Self {
        ScanContext {
            limits,
            started: Instant::now(),
            findings: Vec::new(),
            path: Vec::new(),
            memory_held: file_len as u64,
            entries: 0,
            out_of_time: false,
            clock_skips: 0,
            entries_exhausted: false,
        }
    }

    /// The limits of this scan.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        self.limits
    }

    /// Records a finding, prefixed with the current container path.
    pub fn report(&mut self, mut finding: Finding) {
        if !self.path.is_empty() {
            let mut path = self.path.clone();
            path.append(&mut finding.location.path);
            finding.location.path = path;
        }
        // A hostile file can break the same rule a million times; keep the report bounded.
        if self.findings.len() < 1000 {
            self.findings.push(finding);
        }
    }

    /// Shorthand for a structure finding.
    pub fn structure(&mut self, code: &str, sev: Severity, loc: Location, msg: impl Into<String>) {
        self.report(Finding::new(code, sev, FindingClass::Structure, loc, msg));
    }

    /// Shorthand for an active-content finding.
    pub fn active(&mut self, code: &str, sev: Severity, loc: Location, msg: impl Into<String>) {
        self.report(Finding::new(
            code,
            sev,
            FindingClass::ActiveContent,
            loc,
            msg,
        ));
    }

    /// Shorthand for a note.
    pub fn note(&mut self, code: &str, loc: Location, msg: impl Into<String>) {
        self.report(Finding::new(
            code,
            Severity::Info,
            FindingClass::Note,
            loc,
            msg,
        ));
    }

    /// The findings so far.
    #[must_use]
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Takes the findings out, ending the scan.
    #[must_use]
    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    /// Whether the time budget is spent; the first time it is, records `LIMIT-TIME`.
    /// Verifiers call this in every loop over untrusted counts and stop when it says so.
    pub fn out_of_time(&mut self) -> bool {
        if self.out_of_time {
            return true;
        }
        // The first call reads the clock, then every CLOCK_STRIDE-th.
        if self.clock_skips > 0 {
            self.clock_skips -= 1;
            return false;
        }
        self.clock_skips = CLOCK_STRIDE - 1;
        if self.started.elapsed() > self.limits.time {
            self.out_of_time = true;
            let limit = self.limits.time.as_millis();
            self.report(Finding::new(
                "LIMIT-TIME",
                Severity::Medium,
                FindingClass::Limit,
                Location::default(),
                format!("verification stopped after the time budget of {limit} ms; raise limits.time to verify the rest"),
            ));
        }
        self.out_of_time
    }

    /// Counts one container entry; `false` (and `LIMIT-ENTRIES`, once) when over budget.
    pub fn count_entry(&mut self) -> bool {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            if !self.entries_exhausted {
                self.entries_exhausted = true;
                let max = self.limits.max_entries;
                self.report(Finding::new(
                    "LIMIT-ENTRIES",
                    Severity::Medium,
                    FindingClass::Limit,
                    Location::default(),
                    format!("more than {max} container entries; the rest were not verified"),
                ));
            }
            return false;
        }
        true
    }

    /// Memory still free under the budget.
    #[must_use]
    pub fn memory_left(&self) -> u64 {
        self.limits.memory_bytes.saturating_sub(self.memory_held)
    }

    /// Reserves `bytes` of the memory budget for a decompressed part; release it with
    /// [`ScanContext::release`]. On `false` a `LIMIT-MEMORY` finding names `what`.
    pub fn reserve(&mut self, bytes: u64, what: Location) -> bool {
        if bytes > self.memory_left() {
            let budget = self.limits.memory_bytes;
            self.report(Finding::new(
                "LIMIT-MEMORY",
                Severity::Medium,
                FindingClass::Limit,
                what,
                format!("needs {bytes} bytes, more than the memory budget of {budget} bytes allows; part not verified"),
            ));
            return false;
        }
        self.memory_held += bytes;
        true
    }

    /// Gives back memory reserved with [`ScanContext::reserve`].
    pub fn release(&mut self, bytes: u64) {
        self.memory_held = self.memory_held.saturating_sub(bytes);
    }

    /// The most a part compressed to `compressed` bytes may inflate to: the ratio cap, and
    /// never more than the memory left.
    #[must_use]
    pub fn inflate_cap(&self, compressed: usize) -> usize {
        let by_ratio = (compressed as u64)
            .saturating_mul(self.limits.max_ratio)
            .max(64 * 1024);
        usize::try_from(by_ratio.min(self.memory_left())).unwrap_or(usize::MAX)
    }

    /// How deep in containers the scan is now.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.path.len()
    }

    /// Scans an embedded file (ZIP entry, OLE stream, RTF object, PDF attachment) with the
    /// same engine, its findings carrying `name` in their path. Returns the detected type.
    pub fn scan_embedded(&mut self, data: &[u8], name: &str) -> FileType {
        if self.depth() as u64 >= u64::from(self.limits.max_depth) {
            let max = self.limits.max_depth;
            self.report(Finding::new(
                "LIMIT-DEPTH",
                Severity::Medium,
                FindingClass::Limit,
                Location::part(name),
                format!("containers nest deeper than {max}; this part was not verified"),
            ));
            return FileType::Unknown;
        }
        if self.out_of_time() {
            return FileType::Unknown;
        }
        self.path.push(name.to_owned());
        let detected = formats::verify_any(data, self);
        if detected.is_executable() {
            self.report(Finding::new(
                "EMBEDDED-EXECUTABLE",
                Severity::High,
                FindingClass::ActiveContent,
                Location::default(),
                format!("an embedded {detected} program"),
            ));
        }
        self.path.pop();
        detected
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_spent_time_budget_is_seen_at_the_first_check_and_reported_once() {
        let limits = Limits {
            time: Duration::ZERO,
            ..Limits::default()
        };
        let mut ctx = ScanContext::new(&limits, 0);
        std::thread::sleep(Duration::from_millis(1));
        assert!(ctx.out_of_time());
        assert!((0..20).all(|_| ctx.out_of_time()));
        let codes: Vec<String> = ctx.into_findings().into_iter().map(|f| f.code).collect();
        assert_eq!(codes, ["LIMIT-TIME"]);
    }

    #[test]
    fn checks_between_clock_reads_see_the_budget_within_the_stride() {
        let limits = Limits {
            time: Duration::from_millis(20),
            ..Limits::default()
        };
        let mut ctx = ScanContext::new(&limits, 0);
        assert!(!ctx.out_of_time());
        std::thread::sleep(Duration::from_millis(30));
        // The clock is read again at most CLOCK_STRIDE checks later.
        let first = (1..=CLOCK_STRIDE).find(|_| ctx.out_of_time());
        assert!(first.is_some());
        assert_eq!(ctx.findings().len(), 1);
    }
}
