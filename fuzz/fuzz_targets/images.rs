//! The image verifiers: the first byte picks JPEG, PNG, GIF, BMP or TIFF magic.
#![no_main]
use haetae_docscan::{Limits, scan_bytes};
use libfuzzer_sys::fuzz_target;

const MAGIC: [&[u8]; 5] = [
    b"\xFF\xD8\xFF",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"BM\0\0\0\0\0\0\0\0\0\0\0\0\x28\0\0\0",
    b"II*\0",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let magic = MAGIC[usize::from(pick) % MAGIC.len()];
    let mut file = magic.to_vec();
    file.extend_from_slice(rest);
    let _ = scan_bytes(&file, None, &Limits::default());
});
