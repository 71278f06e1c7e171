//! The ZIP reader and the OOXML/HWPX/ODF verifiers (input starts with a local header).
#![no_main]
use haetae_docscan::{Limits, scan_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = b"PK\x03\x04".to_vec();
    file.extend_from_slice(data);
    let _ = scan_bytes(&file, Some("fuzz.docx"), &Limits::default());
});
