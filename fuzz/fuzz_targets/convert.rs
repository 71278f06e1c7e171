//! The disarm rebuilds (`haetae_docscan::convert`): the first byte picks the format (OOXML
//! package, HWPX, RTF, text, PNG, JPEG, GIF, BMP, TIFF, PDF, or the text renditions of
//! HWP, DOC, XLS and PPT); the rest is the file. A conversion may fail, never panic or hang.
#![no_main]
use haetae_docscan::FileType;
use haetae_docscan::convert::disarm;
use haetae_docscan::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = match pick % 14 {
        0 => FileType::Docx,
        1 => FileType::Hwpx,
        2 => FileType::Rtf,
        3 => FileType::Png,
        4 => FileType::Jpeg,
        5 => FileType::Gif,
        6 => FileType::Bmp,
        7 => FileType::Tiff,
        8 => FileType::Pdf,
        9 => FileType::Hwp,
        10 => FileType::Doc,
        11 => FileType::Xls,
        12 => FileType::Ppt,
        _ => FileType::Text,
    };
    let _ = disarm(rest, kind, &Limits::default());
});
