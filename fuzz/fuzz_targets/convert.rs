//! The disarm rebuilds (`haetae_docscan::convert`): the first byte picks the format (OOXML
//! package, HWPX, ODF, plain ZIP (members disarmed recursively), RTF, text, PNG, JPEG, GIF,
//! BMP, TIFF, PDF, the same-format compound-file rebuilds (or text renditions) of HWP,
//! DOC, XLS, PPT, Outlook MSG and other compound files, or an unknown type, which the
//! rebuilds sniff for formats the detector leaves unknown); the rest is the file. A
//! conversion may fail, never panic or hang; a rebuilt compound file must read back
//! through the strict CFB reader without a single structure finding.
#![no_main]
use haetae_docscan::FileType;
use haetae_docscan::convert::disarm;
use haetae_docscan::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = match pick % 19 {
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
        13 => FileType::Odf,
        14 => FileType::Zip,
        15 => FileType::Msg,
        16 => FileType::Cfb,
        17 => FileType::Unknown,
        _ => FileType::Text,
    };
    let limits = Limits::default();
    if let Ok(d) = disarm(rest, kind, &limits) {
        if d.file_type == kind && kind.family() == haetae_docscan::filetype::Family::Ole {
            let mut ctx = haetae_docscan::ScanContext::new(&limits, d.bytes.len());
            let parsed = haetae_docscan::container::cfb::Cfb::parse(&d.bytes, &mut ctx);
            let findings = ctx.into_findings();
            assert!(parsed.is_some() && findings.is_empty(), "{findings:?}");
        }
    }
});
