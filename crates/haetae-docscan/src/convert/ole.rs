//! Compound files of no known application (`FileType::Cfb`: Corel, Visio, a bare VBA
//! project, an OLE object...) to a plain-text rendition: the readable text runs of their
//! streams, one run a line under the stream's name. Without the application's format the
//! rendition cannot tell text from data, so it keeps what reads as text: runs of at least
//! 6 one-byte characters (printable ASCII and CP1252 letters, tab) or of UTF-16LE
//! characters (printable ASCII, Latin-1 and Latin Extended-A, Hangul; 4 or more with an
//! ASCII letter, else 8 or more), each with at least one letter.
//!
//! Streams of macros and objects are not read at all (their "text" is code or another
//! document): anything under a `VBA`, `_VBA_PROJECT_CUR`, `_VBA_PROJECT`, `Macros` or
//! `ObjectPool` storage, `PROJECT`/`PROJECTwm`, and the OLE object streams (`\x01Ole`,
//! `\x01Ole10Native`, `\x01CompObj`, `\x03ObjInfo`). Every stream is listed in `removed`
//! (the binary format is not carried; a stream whose runs were kept is listed too, since its
//! data is not). Failures are `CONVERT-CFB-*`: the compound file (`-CFB`), a stream that
//! cannot be read (`-STREAM`), the text over the budget (`-SIZE`) or time (`-TIME`).

use super::cfb_write::{self, Keep};
use super::rendition::{self, check_size, check_time};
use super::{ConvertError, Disarmed};
use crate::container::cfb::{DirEntry, EntryKind};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::limits::Limits;

const PREFIX: &str = "CONVERT-CFB";
/// Storages whose streams are code or embedded documents.
const ACTIVE_STORAGES: [&str; 5] = [
    "VBA",
    "_VBA_PROJECT_CUR",
    "_VBA_PROJECT",
    "Macros",
    "ObjectPool",
];
/// Streams of a VBA project or an OLE object.
const ACTIVE_STREAMS: [&str; 6] = [
    "PROJECT",
    "PROJECTwm",
    "\u{1}Ole",
    "\u{1}Ole10Native",
    "\u{1}CompObj",
    "\u{3}ObjInfo",
];

/// Whether the stream at `path` holds macros or an object (not read).
fn active(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    parts
        .iter()
        .any(|p| ACTIVE_STORAGES.iter().any(|a| a.eq_ignore_ascii_case(p)))
        || ACTIVE_STREAMS.iter().any(|a| a.eq_ignore_ascii_case(name))
}

fn one_byte_text(b: u8) -> bool {
    matches!(b, 0x20..=0x7E | 0xA0..=0xFF | b'\t')
}

fn wide_text(u: u16) -> bool {
    matches!(u, 0x20..=0x7E | 0xA0..=0x17F | 0xAC00..=0xD7A3 | 0x09)
}

/// The one-byte text runs of `bytes`.
fn byte_runs(bytes: &[u8], out: &mut Vec<String>) {
    for run in bytes.split(|&b| !one_byte_text(b)) {
        if run.len() >= 6 && run.iter().any(u8::is_ascii_alphabetic) {
            out.push(run.iter().map(|&b| rendition::cp1252(b)).collect());
        }
    }
}

/// The UTF-16LE text runs of `bytes` starting at even and at odd offsets.
fn wide_runs(bytes: &[u8], out: &mut Vec<String>) {
    for start in [0usize, 1] {
        let units: Vec<u16> =
            rendition::utf16_units(bytes.get(start..).unwrap_or_default()).collect();
        for run in units.split(|&u| !wide_text(u)) {
            let ascii_letter = run
                .iter()
                .any(|&u| u8::try_from(u).is_ok_and(|b| b.is_ascii_alphabetic()));
            let long = run.len() >= 8
                && run
                    .iter()
                    .any(|&u| char::from_u32(u32::from(u)).is_some_and(char::is_alphabetic));
            if (run.len() >= 4 && ascii_letter) || long {
                let mut s = String::new();
                rendition::push_utf16(&mut s, run.iter().copied());
                out.push(s);
            }
        }
    }
}

/// The text rendition of a compound file of no known application.
pub(super) fn render(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let mut text = String::new();
    let paths: Vec<String> = cfb
        .entries
        .iter()
        .filter(|e| e.reachable && e.kind == EntryKind::Stream && !active(&e.path))
        .map(|e| e.path.clone())
        .collect();
    for path in paths {
        let at = format!("stream {path}");
        check_time(&mut ctx, PREFIX, &at)?;
        let Some(bytes) = rendition::stream(data, &cfb, &path, &mut ctx, PREFIX)? else {
            continue;
        };
        let mut runs = Vec::new();
        byte_runs(&bytes, &mut runs);
        wide_runs(&bytes, &mut runs);
        if runs.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        // The stream's name without its control-character prefix (`\x05SummaryInformation`).
        let shown: String = path.chars().filter(|c| !c.is_control()).collect();
        text.push_str(&format!("[{shown}]\n"));
        for run in runs {
            text.push_str(run.trim());
            text.push('\n');
        }
        check_size(&text, &ctx, PREFIX, &at)?;
    }
    // Nothing counts as read: the data of every stream stays out of the copy.
    Ok(rendition::finish(text, &cfb, FileType::Cfb, &[]))
}

/// The same-format copy of a compound file of no known application: every storage and
/// stream but macro projects and embedded objects (the names [`active`] knows), the rest
/// copied as they are. The rendition is made first (a failure there is the conversion's
/// finding).
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let _ = render(data, limits)?;
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let keep = |e: &DirEntry| {
        let name = e.path.rsplit('/').next().unwrap_or_default();
        if ACTIVE_STORAGES.iter().any(|a| a.eq_ignore_ascii_case(name))
            && e.kind == EntryKind::Storage
        {
            if name.eq_ignore_ascii_case("ObjectPool") {
                Keep::Drop("embedded OLE objects")
            } else {
                Keep::Drop("macro project (VBA)")
            }
        } else if active(&e.path) {
            Keep::Drop("macro project stream or OLE object stream")
        } else if cfb_write::named(&e.path, "Equation Native") {
            Keep::Drop("Equation Editor 3.0 object")
        } else if cfb_write::named(&e.path, "Package") {
            Keep::Drop("embedded package")
        } else {
            Keep::Yes
        }
    };
    cfb_write::copy_as(
        data,
        &cfb,
        &mut ctx,
        PREFIX,
        FileType::Cfb,
        &keep,
        &mut |_, _, _| Ok(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::cfb::build::cfb;

    #[test]
    fn text_runs_of_streams_and_no_macro_text() {
        let mut main = vec![0u8, 1, 2, 0xFF, 0x10];
        main.extend_from_slice(b"Quarterly results\x00\x01\x02ab\x00\x00\x00");
        main.extend("North 계좌".encode_utf16().flat_map(u16::to_le_bytes));
        main.extend_from_slice(&[0x01, 0x00, 0x02]);
        let file = cfb(&[
            ("PerfectOffice_MAIN", &main),
            (
                "VBA/Module1",
                b"Attribute VB_Name = \"Module1\" Sub AutoOpen()",
            ),
            ("PROJECT", b"ID=\"{00000000}\" Document=ThisDocument"),
        ]);
        let d = render(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert_eq!(
            String::from_utf8(d.bytes).unwrap(),
            "[PerfectOffice_MAIN]\nQuarterly results\nNorth 계좌\n"
        );
        for gone in [
            "stream VBA/Module1",
            "stream PROJECT",
            "stream PerfectOffice_MAIN",
        ] {
            assert!(d.removed.iter().any(|r| r.location == gone), "{gone}");
        }
        // Macros only: an empty rendition (one empty line), every stream removed.
        let vba = cfb(&[("VBA/Module1", b"Sub AutoOpen() Shell \"cmd\" End Sub")]);
        let d = render(&vba, &Limits::default()).unwrap();
        assert_eq!(d.bytes, b"\n");
        match render(b"\xd0\xcf\x11\xe0", &Limits::default()) {
            Err(ConvertError::Failed(f)) => assert_eq!(f[0].code, "CONVERT-CFB-CFB"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_compound_copy_keeps_data_streams_and_drops_macros_and_objects() {
        let file = cfb(&[
            ("PerfectOffice_MAIN", &[3u8; 5000]),
            ("Equation Native", &[1u8; 40]),
            ("VBA/Module1", b"Sub AutoOpen()"),
            ("PROJECT", b"ID="),
            ("\u{1}Ole10Native", b"MZ"),
        ]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Cfb);
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, d.bytes.len());
        let c = crate::container::cfb::Cfb::parse(&d.bytes, &mut ctx).unwrap();
        let kept: Vec<&str> = c
            .entries
            .iter()
            .filter(|e| e.reachable && e.kind == EntryKind::Stream)
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(kept, ["PerfectOffice_MAIN"]);
        let e = c.find("PerfectOffice_MAIN").unwrap();
        assert_eq!(
            c.read_stream(&d.bytes, e, &mut ctx).unwrap(),
            vec![3u8; 5000]
        );
        for gone in [
            "storage VBA",
            "stream PROJECT",
            "stream \u{1}Ole10Native",
            "stream Equation Native",
        ] {
            assert!(
                d.removed.iter().any(|r| r.location == gone),
                "{gone}: {:?}",
                d.removed
            );
        }
    }
}
