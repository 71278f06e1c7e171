//! The OfficeArt drawing-record walker (Excel drawing groups, PowerPoint drawings and
//! Pictures streams) on raw bytes, and the pictures it hands to the whole engine.
#![no_main]
use haetae_docscan::formats::ole::officeart::{Origin, verify};
use haetae_docscan::{Limits, ScanContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut ctx = ScanContext::new(&limits, data.len());
    let origin = Origin {
        stream: "Workbook",
        part: "drawing group",
        base: Some(0),
    };
    verify(data, &origin, &mut ctx);
    let _ = ctx.into_findings();
});
