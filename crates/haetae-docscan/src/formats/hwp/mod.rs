//! HWP 5.0 (Hancom's "HWP 5.0 file format", revision 1.3), inside an OLE2 compound file:
//! the `FileHeader` (signature, version, property flags), the record streams (`DocInfo`,
//! BodyText/SectionN) with their raw-deflate compression under a ratio cap, record headers
//! (tag 10 bits, level 10 bits, size 12 bits with the 0xFFF extended size), `BIN_DATA` records
//! against the `BinData/BIN%04X.ext` streams, embedded PostScript (Ghostscript
//! CVE-2017-8291, used against Korean targets), OLE objects and scripts.

use haetae_core::Severity;

use crate::bytes::{le16, le32, slice};
use crate::container::cfb::{Cfb, DirEntry, EntryKind};
use crate::container::inflate::{Framing, InflateError, inflate_partial};
use crate::context::ScanContext;
use crate::finding::{Finding, FindingClass, Location};

const SIGNATURE: &[u8] = b"HWP Document File";
const TAG_BEGIN: u32 = 0x10;
const TAG_DOCUMENT_PROPERTIES: u32 = TAG_BEGIN;
const TAG_ID_MAPPINGS: u32 = TAG_BEGIN + 1;
const TAG_BIN_DATA: u32 = TAG_BEGIN + 2;

/// The `FileHeader` property flags that matter for verification.
#[derive(Debug, Clone, Copy, Default)]
pub struct Properties {
    /// Streams are raw-deflate compressed.
    pub compressed: bool,
    /// The document is password-encrypted.
    pub password: bool,
    /// A distribution document (read-only, encrypted `ViewText`).
    pub distribution: bool,
    /// Scripts are stored.
    pub script: bool,
    /// DRM-protected.
    pub drm: bool,
}

/// Verifies an HWP 5.0 file whose compound-file container `cfb` is already parsed.
pub fn verify(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) {
    let Some(props) = file_header(data, cfb, ctx) else {
        return;
    };
    if props.password || props.drm {
        ctx.active(
            "HWP-ENCRYPTED",
            Severity::Low,
            Location::part("FileHeader"),
            "the document is password- or DRM-protected: its records cannot be verified",
        );
        return;
    }
    let mut bin_items: Vec<(u16, String, usize)> = Vec::new();
    if let Some(e) = cfb.find("DocInfo") {
        if let Some(records) = read_records_stream(data, cfb, e, props, ctx) {
            for (index, rec) in records.iter().enumerate() {
                if rec.tag == TAG_BIN_DATA
                    && let Some(item) = bin_data_item(&rec.body)
                {
                    bin_items.push((item.0, item.1, index));
                }
            }
        }
    } else {
        ctx.structure(
            "HWP-STREAM-MISSING",
            Severity::Medium,
            Location::part("DocInfo"),
            "the DocInfo stream is missing",
        );
    }
    if !props.distribution {
        for e in cfb.entries.iter().filter(|e| {
            e.reachable && e.kind == EntryKind::Stream && e.path.starts_with("BodyText/")
        }) {
            if ctx.out_of_time() {
                return;
            }
            let _ = read_records_stream(data, cfb, e, props, ctx);
        }
    }
    for (id, ext, index) in &bin_items {
        let name = format!("BinData/BIN{id:04X}.{ext}");
        if cfb.find(&name).is_none() {
            ctx.structure(
                "HWP-BINDATA-MISSING",
                Severity::Medium,
                Location::part(format!("DocInfo > record {index} (BIN_DATA)")),
                format!("BIN_DATA item {id} names the stream {name}, which does not exist"),
            );
        }
    }
    for e in cfb
        .entries
        .iter()
        .filter(|e| e.reachable && e.kind == EntryKind::Stream && e.path.starts_with("BinData/"))
    {
        if ctx.out_of_time() {
            return;
        }
        check_bin_stream(data, cfb, e, props, ctx);
    }
    check_scripts(data, cfb, props, ctx);
}

fn file_header(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) -> Option<Properties> {
    let e = cfb.find("FileHeader")?;
    let content = cfb.read_stream(data, e, ctx)?;
    ctx.release(content.len() as u64);
    let loc = Location::part("FileHeader");
    if content.len() < 40 {
        ctx.structure(
            "HWP-FILEHEADER",
            Severity::High,
            loc,
            format!("FileHeader of {} bytes (256 expected)", content.len()),
        );
        return None;
    }
    if !content.starts_with(SIGNATURE) {
        ctx.structure(
            "HWP-SIGNATURE",
            Severity::High,
            loc,
            "the FileHeader does not start with \"HWP Document File\"",
        );
        return None;
    }
    let version = le32(&content, 32).unwrap_or(0);
    let flags = le32(&content, 36).unwrap_or(0);
    if version >> 24 != 5 {
        ctx.structure(
            "HWP-VERSION",
            Severity::Medium,
            loc.clone(),
            format!(
                "version {}.{}.{}.{} (this verifier knows 5.x)",
                version >> 24,
                (version >> 16) & 0xFF,
                (version >> 8) & 0xFF,
                version & 0xFF
            ),
        );
    }
    Some(Properties {
        compressed: flags & 1 != 0,
        password: flags & 2 != 0,
        distribution: flags & 4 != 0,
        script: flags & 8 != 0,
        drm: flags & 0x10 != 0,
    })
}

/// A record: tag, level, offset in the (inflated) stream, body.
#[derive(Debug, Clone)]
pub struct Record {
    /// Tag id (10 bits).
    pub tag: u32,
    /// Nesting level (10 bits).
    pub level: u32,
    /// Offset of the header in the stream.
    pub offset: usize,
    /// The record's data.
    pub body: Vec<u8>,
}

fn stream_content(
    data: &[u8],
    cfb: &Cfb,
    e: &DirEntry,
    compressed: bool,
    ctx: &mut ScanContext,
) -> Option<Vec<u8>> {
    let raw = cfb.read_stream(data, e, ctx)?;
    ctx.release(raw.len() as u64);
    if !compressed {
        return Some(raw);
    }
    let cap = ctx.inflate_cap(raw.len()) as u64;
    let (out, result) = inflate_partial(&raw, Framing::Raw, cap);
    match result {
        Ok(_) => Some(out),
        Err(InflateError::OverCap { .. }) => {
            ctx.structure(
                "HWP-DEFLATE-RATIO",
                Severity::High,
                Location::part(e.path.clone()),
                format!(
                    "the stream inflates past {cap} bytes from {} (ratio above {})",
                    raw.len(),
                    ctx.limits().max_ratio
                ),
            );
            None
        }
        Err(err) => {
            ctx.structure(
                "HWP-DEFLATE",
                Severity::High,
                Location::part(e.path.clone()),
                format!("the compressed stream is broken: {err}"),
            );
            None
        }
    }
}

fn read_records_stream(
    data: &[u8],
    cfb: &Cfb,
    e: &DirEntry,
    props: Properties,
    ctx: &mut ScanContext,
) -> Option<Vec<Record>> {
    let content = stream_content(data, cfb, e, props.compressed, ctx)?;
    Some(parse_records(&content, &e.path, ctx))
}

/// Parses a record stream, reporting header problems with the record index and offset.
pub fn parse_records(content: &[u8], stream: &str, ctx: &mut ScanContext) -> Vec<Record> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut prev_level: Option<u32> = None;
    while pos < content.len() {
        if ctx.out_of_time() || !ctx.count_entry() {
            break;
        }
        let index = out.len();
        let loc = |off: usize| {
            let mut l = Location::at(off).with_part(format!("record {index}"));
            l.path = vec![stream.to_owned()];
            l
        };
        let Some(h) = le32(content, pos) else {
            ctx.structure(
                "HWP-RECORD-TRUNCATED",
                Severity::High,
                loc(pos),
                "the stream ends inside a record header",
            );
            break;
        };
        let tag = h & 0x3FF;
        let level = (h >> 10) & 0x3FF;
        let mut size = (h >> 20) as usize;
        let mut body_at = pos + 4;
        if size == 0xFFF {
            let Some(ext) = le32(content, pos + 4) else {
                ctx.structure(
                    "HWP-RECORD-TRUNCATED",
                    Severity::High,
                    loc(pos),
                    "the stream ends inside an extended record size",
                );
                break;
            };
            size = ext as usize;
            body_at += 4;
        }
        let Some(body) = slice(content, body_at, size) else {
            ctx.structure(
                "HWP-RECORD-TRUNCATED",
                Severity::High,
                loc(pos),
                format!(
                    "record of {size} bytes runs past the end of the stream ({} bytes left)",
                    content.len().saturating_sub(body_at)
                ),
            );
            break;
        };
        if tag < TAG_BEGIN {
            ctx.structure(
                "HWP-RECORD-TAG",
                Severity::Medium,
                loc(pos),
                format!("tag {tag:#x} is below HWPTAG_BEGIN (0x10)"),
            );
        }
        let max_level = prev_level.map_or(0, |p| p + 1);
        if level > max_level {
            ctx.structure(
                "HWP-RECORD-LEVEL",
                Severity::Medium,
                loc(pos),
                format!(
                    "level {level} after level {} (a level may grow by one)",
                    prev_level.unwrap_or(0)
                ),
            );
        }
        let fixed_ok = match tag {
            TAG_DOCUMENT_PROPERTIES => size == 26,
            TAG_ID_MAPPINGS => size.is_multiple_of(4) && (36..=80).contains(&size),
            _ => true,
        };
        if !fixed_ok {
            ctx.structure(
                "HWP-RECORD-SIZE",
                Severity::High,
                loc(pos),
                format!("record tag {tag:#x} of {size} bytes, which does not fit its fixed layout"),
            );
        }
        prev_level = Some(level);
        out.push(Record {
            tag,
            level,
            offset: pos,
            body: body.to_vec(),
        });
        pos = body_at + size;
    }
    out
}

/// An embedded `BIN_DATA` item: its id and extension.
fn bin_data_item(body: &[u8]) -> Option<(u16, String)> {
    let attr = le16(body, 0)?;
    if attr & 0xF == 0 {
        return None; // a link to an outside file
    }
    let id = le16(body, 2)?;
    let n = usize::from(le16(body, 4)?);
    let units: Vec<u16> = (0..n).filter_map(|i| le16(body, 6 + 2 * i)).collect();
    let ext = String::from_utf16_lossy(&units);
    let ext = if attr & 0xF == 2 {
        "OLE".to_owned()
    } else {
        ext
    };
    Some((id, ext))
}

fn check_bin_stream(
    data: &[u8],
    cfb: &Cfb,
    e: &DirEntry,
    props: Properties,
    ctx: &mut ScanContext,
) {
    let Some(raw) = cfb.read_stream(data, e, ctx) else {
        return;
    };
    ctx.release(raw.len() as u64);
    // BinData items are compressed individually; fall back to the stored bytes when the
    // item is kept uncompressed.
    let content = if props.compressed {
        let cap = ctx.inflate_cap(raw.len()) as u64;
        match inflate_partial(&raw, Framing::Raw, cap) {
            (out, Ok(_)) => out,
            (_, Err(InflateError::OverCap { .. })) => {
                ctx.structure(
                    "HWP-DEFLATE-RATIO",
                    Severity::High,
                    Location::part(e.path.clone()),
                    format!("the embedded item inflates past {cap} bytes"),
                );
                return;
            }
            (_, Err(_)) => raw,
        }
    } else {
        raw
    };
    let lname = e.name.to_ascii_lowercase();
    if lname.ends_with(".eps") || lname.ends_with(".ps") || content.starts_with(b"%!") {
        ctx.report(
            Finding::new(
                "HWP-EPS",
                Severity::High,
                FindingClass::ActiveContent,
                Location::part(e.path.clone()),
                "an embedded PostScript program, run by Ghostscript when the document is rendered",
            )
            .cve(&["CVE-2017-8291"]),
        );
    }
    if lname.ends_with(".ole") {
        let declared = le32(&content, 0).unwrap_or(0) as usize;
        if declared + 4 != content.len() {
            ctx.structure(
                "HWP-BINDATA-SIZE",
                Severity::Medium,
                Location::at(0).with_part(e.path.clone()),
                format!(
                    "OLE item declares {declared} bytes, holds {}",
                    content.len().saturating_sub(4)
                ),
            );
        }
        ctx.active(
            "HWP-OLE-OBJECT",
            Severity::Low,
            Location::part(e.path.clone()),
            "an embedded OLE object",
        );
        ctx.scan_embedded(content.get(4..).unwrap_or_default(), &e.path);
    } else {
        ctx.scan_embedded(&content, &e.path);
    }
}

fn check_scripts(data: &[u8], cfb: &Cfb, props: Properties, ctx: &mut ScanContext) {
    let Some(e) = cfb.find("Scripts/DefaultJScript") else {
        return;
    };
    // Scripts are often stored uncompressed even in compressed documents.
    let Some(raw) = cfb.read_stream(data, e, ctx) else {
        return;
    };
    ctx.release(raw.len() as u64);
    let cap = ctx.inflate_cap(raw.len()) as u64;
    let content = match inflate_partial(&raw, Framing::Raw, cap) {
        (out, Ok(_)) if props.compressed => out,
        _ => raw,
    };
    if !is_script_skeleton(&content) {
        ctx.active(
            "HWP-SCRIPT",
            Severity::Medium,
            Location::part(e.path.clone()),
            "the document carries JScript that runs on document events",
        );
    }
}

/// Whether a `DefaultJScript` stream (length-prefixed UTF-16 strings: header, source, ...)
/// holds only the skeleton Hancom writes into most documents: the `Documents` declarations
/// and empty `OnDocument_*` handlers with comments.
fn is_script_skeleton(content: &[u8]) -> bool {
    let mut text = String::new();
    let mut pos = 0usize;
    while let Some(n) = le32(content, pos) {
        let n = n as usize;
        if n > content.len() / 2 {
            break;
        }
        let units: Vec<u16> = (0..n)
            .filter_map(|i| le16(content, pos + 4 + 2 * i))
            .collect();
        text.push_str(&String::from_utf16_lossy(&units));
        text.push('\n');
        pos += 4 + 2 * n;
    }
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .flat_map(|l| l.split(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
        .filter(|w| !w.is_empty())
        .all(|w| {
            matches!(
                w,
                "var"
                    | "Documents"
                    | "XHwpDocuments"
                    | "Document"
                    | "Active_XHwpDocument"
                    | "function"
            ) || w.starts_with("OnDocument_")
        })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn record(tag: u32, level: u32, body: &[u8]) -> Vec<u8> {
        let h = tag | (level << 10) | ((body.len() as u32) << 20);
        let mut v = h.to_le_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn codes(stream: &[u8]) -> Vec<(String, String)> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, 0);
        let _ = parse_records(stream, "DocInfo", &mut ctx);
        ctx.into_findings()
            .into_iter()
            .map(|f| (f.code, f.location.to_string()))
            .collect()
    }

    #[test]
    fn well_formed_records_have_no_findings() {
        let mut s = record(TAG_DOCUMENT_PROPERTIES, 0, &[0; 26]);
        s.extend(record(TAG_ID_MAPPINGS, 0, &[0; 72]));
        s.extend(record(0x13, 1, &[1, 2, 3]));
        assert_eq!(codes(&s), vec![]);
    }

    #[test]
    fn a_record_past_the_stream_end_is_reported_with_its_index() {
        let mut s = record(TAG_DOCUMENT_PROPERTIES, 0, &[0; 26]);
        s.extend(record(0x13, 0, &[0; 10]));
        s.truncate(s.len() - 4);
        assert_eq!(
            codes(&s),
            vec![(
                "HWP-RECORD-TRUNCATED".to_owned(),
                "DocInfo > record 1 @0x1e".to_owned()
            )]
        );
    }

    #[test]
    fn a_level_jump_is_reported() {
        let mut s = record(0x13, 0, &[]);
        s.extend(record(0x13, 3, &[]));
        assert_eq!(codes(&s)[0].0, "HWP-RECORD-LEVEL");
    }

    #[test]
    fn a_fixed_size_record_of_the_wrong_size_is_reported() {
        let s = record(TAG_DOCUMENT_PROPERTIES, 0, &[0; 20]);
        assert_eq!(codes(&s)[0].0, "HWP-RECORD-SIZE");
    }

    fn script(parts: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for p in parts {
            let u: Vec<u16> = p.encode_utf16().collect();
            v.extend_from_slice(&(u.len() as u32).to_le_bytes());
            for x in u {
                v.extend_from_slice(&x.to_le_bytes());
            }
        }
        v
    }

    #[test]
    fn the_default_script_skeleton_is_not_active_content() {
        let s = script(&[
            "var Documents = XHwpDocuments;\r\nvar Document = Documents.Active_XHwpDocument;\r\n",
            "function OnDocument_New()\r\n{\r\n\t//todo : \r\n}\r\n",
        ]);
        assert!(is_script_skeleton(&s));
    }

    #[test]
    fn a_script_with_code_is_not_the_skeleton() {
        let s = script(&[
            "function OnDocument_Open()\r\n{ new ActiveXObject(\"WScript.Shell\").Run(\"calc\"); }",
        ]);
        assert!(!is_script_skeleton(&s));
    }

    #[test]
    fn the_extended_size_is_honoured() {
        let body = vec![0u8; 5000];
        let mut s = (0x13u32 | (0xFFF << 20)).to_le_bytes().to_vec();
        s.extend_from_slice(&5000u32.to_le_bytes());
        s.extend_from_slice(&body);
        assert_eq!(codes(&s), vec![]);
    }
}
