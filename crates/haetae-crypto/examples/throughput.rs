//! Single-core throughput of haetae's cipher suites, for `bench/crypto.sh`: encrypts a
//! 16 KiB buffer repeatedly for a fixed time per suite and prints `SUITE MB/s` lines
//! (MB = 10^6 bytes, the unit `openssl speed` uses). Like `openssl speed`, it divides by the
//! CPU time the thread spent (Linux `/proc/thread-self/schedstat`), so other load on the
//! machine does not count against either side; elsewhere it falls back to wall time.
//!
//! `cargo run --release -p haetae-crypto --example throughput -- [SECONDS] SUITE...`

use std::time::{Duration, Instant};

/// Nanoseconds this thread has run on a CPU, when the kernel says.
fn cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

use haetae_crypto::{CipherSuite, SymmetricCipher};

const BUFFER: usize = 16 * 1024;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let seconds: f64 = match args.peek().and_then(|a| a.parse().ok()) {
        Some(s) => {
            args.next();
            s
        }
        None => 2.0,
    };
    let suites: Vec<String> = args.collect();
    if suites.is_empty() {
        eprintln!(
            "usage: throughput [SECONDS] SUITE... (e.g. AES-256-GCM ARIA-256-GCM SEED-128-CBC)"
        );
        std::process::exit(2);
    }
    for name in suites {
        let suite = match CipherSuite::parse(&name) {
            Ok(suite) => suite,
            Err(err) => {
                eprintln!("throughput: {err}");
                std::process::exit(2);
            }
        };
        let key = vec![0x42u8; suite.cipher.key_len()];
        let nonce = vec![0x24u8; suite.nonce_len()];
        let cipher = SymmetricCipher::new(suite, &key).expect("key length matches the suite");
        let data = vec![0x5au8; BUFFER];
        // Warm up (CPU frequency, caches), then measure.
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_millis(200) {
            std::hint::black_box(cipher.encrypt(&nonce, &[], &data).expect("encrypt"));
        }
        let start = Instant::now();
        let cpu_start = cpu_nanos();
        let mut bytes = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            std::hint::black_box(
                cipher
                    .encrypt(&nonce, &[], std::hint::black_box(&data))
                    .expect("encrypt"),
            );
            bytes += BUFFER as u64;
        }
        let elapsed = match (cpu_start, cpu_nanos()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => start.elapsed().as_secs_f64(),
        };
        let mbps = bytes as f64 / elapsed / 1e6;
        println!("{suite} {mbps:.1}");
    }
}
