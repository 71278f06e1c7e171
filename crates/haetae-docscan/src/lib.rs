//! haetae's document inspector: finds dangerous documents and images without malware
//! signatures, by checking that a file is what its name claims and that its structure
//! follows its format's own rules (sizes, offsets, counts, checksums, decompression ratios),
//! and by naming active content (macros, scripts, external links, embedded programs).
//!
//! Each format lives in `formats/<name>/` behind the same [`formats::Format`] trait; the
//! container readers (OLE2/CFB, ZIP, deflate with caps) are shared in [`container`]. Every
//! parser is bounded by [`Limits`] and never panics: a broken or hostile file becomes a
//! [`Report`] with [`Finding`]s and a [`Verdict`](haetae_core::Verdict).
//!
//! ```
//! use haetae_core::Verdict;
//! use haetae_docscan::{Limits, scan_bytes};
//!
//! // A JPEG whose comment segment has length 1: the GDI+ exploit of CVE-2004-0200.
//! let jpeg = [0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01, 0xFF, 0xD9];
//! let report = scan_bytes(&jpeg, Some("photo.jpg"), &Limits::default());
//! assert_eq!(report.verdict, Verdict::Vulnerable);
//! assert_eq!(report.findings[0].code, "JPEG-COM-LENGTH");
//! assert_eq!(report.findings[0].cve, ["CVE-2004-0200"]);
//! ```
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
#![cfg_attr(
    test,
    allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)
)]

pub mod bytes;
pub mod container;
pub mod context;
pub mod convert;
pub mod filetype;
pub mod finding;
pub mod formats;
pub mod limits;
pub mod report;
pub mod sarif;

// Issue 5: what happens after a scan (see docs/docscan-actions.md).
#[cfg(feature = "store")]
pub mod analysis;
#[cfg(feature = "store")]
pub mod kb;
#[cfg(feature = "store")]
pub mod quarantine;
#[cfg(feature = "store")]
pub mod report_html;

pub use context::ScanContext;
pub use filetype::FileType;
pub use finding::{Finding, FindingClass, Location, verdict_for};
pub use limits::Limits;
pub use report::{Report, scan_bytes, scan_reader};

#[cfg(test)]
pub(crate) mod testing {
    use crate::{Limits, scan_bytes};

    /// `(code, location)` of every finding in a scan of `data` named `name`.
    pub(crate) fn findings_of(data: &[u8], name: &str) -> Vec<(String, String)> {
        scan_bytes(data, Some(name), &Limits::default())
            .findings
            .into_iter()
            .map(|f| (f.code, f.location.to_string()))
            .collect()
    }
}
