//! The budgets one scan may spend: time, memory, container depth, entries, and the
//! decompression ratio above which a compressed part counts as a bomb.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Budgets for one file (with everything embedded in it). Exceeding one is a finding,
/// never a hang or an out-of-memory abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock budget per file.
    pub time: Duration,
    /// Bytes the scan may hold at once: the file itself plus every decompressed part.
    pub memory_bytes: u64,
    /// How deep containers may nest (a ZIP in an OLE object in a DOCX is depth 3).
    pub max_depth: u32,
    /// Entries (ZIP entries, CFB directory entries, PDF objects, ...) over the whole file.
    pub max_entries: u64,
    /// Largest decompressed/compressed size ratio a part may have.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_secs(10),
            memory_bytes: 256 * 1024 * 1024,
            max_depth: 10,
            max_entries: 10_000,
            max_ratio: 512,
        }
    }
}
