//! Scans the files named on the command line one after another on one thread, the way
//! `haetae scan --json -j 1` does (open, `scan_reader`, one JSON line each), and prints
//! files, bytes and MB/s to stderr. For profiling the engine without building the whole
//! `haetae` binary:
//!
//! ```text
//! cargo build --release -p haetae-docscan --no-default-features --example scan_files
//! valgrind --tool=callgrind target/release/examples/scan_files $(find ../shared/corpora/office -type f)
//! ```
use std::io::Write;
use std::time::Instant;

use haetae_docscan::{Limits, scan_reader};

fn main() {
    let limits = Limits::default();
    let started = Instant::now();
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut out = std::io::stdout().lock();
    for path in std::env::args().skip(1) {
        let Ok(f) = std::fs::File::open(&path) else {
            eprintln!("cannot open {path}");
            continue;
        };
        match scan_reader(std::io::BufReader::new(f), Some(&path), &limits) {
            Ok(r) => {
                files += 1;
                bytes += r.size;
                if let Ok(line) = serde_json::to_string(&r) {
                    let _ = writeln!(out, "{line}");
                }
            }
            Err(e) => eprintln!("cannot read {path}: {e}"),
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "{files} files, {bytes} bytes, {secs:.3} s, {:.1} MB/s",
        bytes as f64 / 1e6 / secs
    );
}
