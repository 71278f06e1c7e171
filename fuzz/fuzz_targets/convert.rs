//! The disarm rebuilds (`haetae_docscan::convert`): the first byte picks the format (OOXML
//! package, HWPX, RTF, text, PNG, JPEG, GIF, BMP, TIFF or PDF); the rest is the file. A rebuild may fail, never
//! panic or hang.
#![no_main]
use haetae_docscan::FileType;
use haetae_docscan::convert::disarm;
use haetae_docscan::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = match pick % 10 {
        0 => FileType::Docx,
        1 => FileType::Hwpx,
        2 => FileType::Rtf,
        3 => FileType::Png,
        4 => FileType::Jpeg,
        5 => FileType::Gif,
        6 => FileType::Bmp,
        7 => FileType::Tiff,
        8 => FileType::Pdf,
        _ => FileType::Text,
    };
    let _ = disarm(rest, kind, &Limits::default());
});
