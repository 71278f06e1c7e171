//! The CFB reader and the OLE/HWP/Office verifiers: the input is prefixed with the
//! compound-file signature so the fuzzer spends its time past the magic.
#![no_main]
use haetae_docscan::container::cfb::SIGNATURE;
use haetae_docscan::{Limits, scan_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = SIGNATURE.to_vec();
    file.extend_from_slice(data);
    let _ = scan_bytes(&file, Some("fuzz.doc"), &Limits::default());
});
