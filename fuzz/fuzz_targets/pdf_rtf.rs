//! The PDF and RTF verifiers (text-like formats): the first byte picks the header.
#![no_main]
use haetae_docscan::{Limits, scan_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut file = if pick & 1 == 0 { b"%PDF-1.7\n".to_vec() } else { b"{\\rtf1".to_vec() };
    file.extend_from_slice(rest);
    let _ = scan_bytes(&file, None, &Limits::default());
});
