//! Every byte string through the whole engine (detection, every verifier, recursion).
#![no_main]
use haetae_docscan::{Limits, scan_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = scan_bytes(data, None, &Limits::default());
});
