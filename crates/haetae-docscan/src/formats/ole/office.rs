//! Application streams inside Microsoft Office compound files, checked where readers trust
//! declared sizes and offsets: the Word FIB and its table-stream ranges, the Excel BIFF
//! record stream and sheet offsets, the `PowerPoint` record tree, Outlook property streams,
//! and the `EncryptionInfo` header of encrypted packages.

use haetae_core::Severity;

use crate::bytes::{le16, le32};
use crate::container::cfb::{Cfb, DirEntry, EntryKind};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::Location;
use crate::formats::zip::xml;

fn stream_loc(e: &DirEntry, offset: usize, part: String) -> Location {
    let mut l = Location::at(offset).with_part(part);
    l.path = vec![e.path.clone()];
    l
}

fn read(data: &[u8], cfb: &Cfb, path: &str, ctx: &mut ScanContext) -> Option<(DirEntry, Vec<u8>)> {
    let e = cfb.find(path)?.clone();
    let content = cfb.read_stream(data, &e, ctx)?;
    ctx.release(content.len() as u64);
    Some((e, content))
}

/// Runs the checks that apply to `kind`.
pub fn verify(data: &[u8], cfb: &Cfb, kind: FileType, ctx: &mut ScanContext) {
    match kind {
        FileType::Doc => word(data, cfb, ctx),
        FileType::Xls => excel(data, cfb, ctx),
        FileType::Ppt => powerpoint(data, cfb, ctx),
        FileType::Msg => outlook(cfb, ctx),
        _ => {}
    }
    if cfb.find("EncryptionInfo").is_some() {
        encryption_info(data, cfb, ctx);
    }
}

fn word(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) {
    let Some((e, fib)) = read(data, cfb, "WordDocument", ctx) else {
        return;
    };
    if cfb.find("EncryptedPackage").is_some() {
        return; // an encrypted OOXML package with a placeholder Word stream
    }
    let ident = le16(&fib, 0).unwrap_or(0);
    if ident == 0xA5DC {
        return; // Word 6/95: an older FIB layout, not checked further
    }
    if ident != 0xA5EC {
        ctx.structure(
            "DOC-FIB",
            Severity::High,
            stream_loc(&e, 0, "FIB".into()),
            format!("FIB identifier {ident:#06x} (must be 0xa5ec)"),
        );
        return;
    }
    let flags = le16(&fib, 0x0A).unwrap_or(0);
    if flags & 0x0100 != 0 {
        ctx.active(
            "DOC-ENCRYPTED",
            Severity::Low,
            stream_loc(&e, 0x0A, "FIB".into()),
            "the document is encrypted: its text cannot be verified",
        );
        return;
    }
    let table_name = if flags & 0x0200 != 0 {
        "1Table"
    } else {
        "0Table"
    };
    let Some(table) = cfb.find(table_name) else {
        ctx.structure(
            "DOC-TABLE-STREAM",
            Severity::High,
            stream_loc(&e, 0x0A, "FIB".into()),
            format!("the FIB names the table stream {table_name}, which does not exist"),
        );
        return;
    };
    if table.kind != EntryKind::Stream {
        ctx.structure(
            "DOC-TABLE-STREAM",
            Severity::High,
            Location::part(table.path.clone()),
            format!("{table_name} is a storage, not the table stream the FIB needs"),
        );
        return;
    }
    let table_size = table.size;
    let csw = usize::from(le16(&fib, 0x20).unwrap_or(0));
    let cslw_at = 0x22 + 2 * csw;
    let cslw = usize::from(le16(&fib, cslw_at).unwrap_or(0));
    let cb_at = cslw_at + 2 + 4 * cslw;
    let Some(pairs) = le16(&fib, cb_at) else {
        ctx.structure(
            "DOC-FIB",
            Severity::High,
            stream_loc(&e, cb_at, "FIB".into()),
            "the FIB is cut off before its offset table",
        );
        return;
    };
    // FibRgFcLcb97 and later: (fc, lcb) pairs that locate structures in the table stream.
    // Only the Word 97 block is checked: later blocks hold fields some writers leave stale.
    // Pair 87 is skipped: on the valid corpus Word leaves it stale in many documents.
    for i in (0..usize::from(pairs).min(93)).filter(|&i| i != 87) {
        let at = cb_at + 2 + 8 * i;
        let (Some(fc), Some(lcb)) = (le32(&fib, at), le32(&fib, at + 4)) else {
            ctx.structure(
                "DOC-FIB",
                Severity::High,
                stream_loc(&e, at, "FIB".into()),
                format!("the FIB declares {pairs} offset pairs but ends at pair {i}"),
            );
            return;
        };
        if lcb > 0 && u64::from(fc) + u64::from(lcb) > table_size {
            ctx.structure(
                "DOC-FIB-RANGE",
                Severity::High,
                stream_loc(&e, at, format!("FIB pair {i}")),
                format!("a structure at {fc} of {lcb} bytes lies outside the {table_size}-byte table stream"),
            );
            return;
        }
    }
}

fn excel(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) {
    let Some((e, wb)) = read(data, cfb, "Workbook", ctx).or_else(|| read(data, cfb, "Book", ctx))
    else {
        return;
    };
    let mut pos = 0usize;
    let mut index = 0usize;
    let mut sheets: Vec<(usize, u32)> = Vec::new();
    let mut bofs: Vec<usize> = Vec::new();
    let mut encrypted = false;
    while pos + 4 <= wb.len() {
        if ctx.out_of_time() {
            return;
        }
        let kind = le16(&wb, pos).unwrap_or(0);
        let len = usize::from(le16(&wb, pos + 2).unwrap_or(0));
        if kind == 0 && len == 0 {
            break; // padding after the last EOF
        }
        let loc = || stream_loc(&e, pos, format!("record {index} (type {kind:#06x})"));
        if index == 0 && kind != 0x0809 && kind != 0x0409 && kind != 0x0209 {
            ctx.structure(
                "XLS-BOF",
                Severity::High,
                loc(),
                "the workbook stream does not start with a BOF record",
            );
            return;
        }
        if len > 8224 {
            ctx.structure(
                "XLS-RECORD-LENGTH",
                Severity::High,
                loc(),
                format!("record length {len} (BIFF8 records hold at most 8224 bytes)"),
            );
            return;
        }
        if pos + 4 + len > wb.len() {
            ctx.structure(
                "XLS-RECORD-TRUNCATED",
                Severity::High,
                loc(),
                format!("record of {len} bytes runs past the end of the stream"),
            );
            return;
        }
        if kind >= 0x2000 {
            // BIFF8 record types stay below 0x1100 (chart records are 0x10xx).
            ctx.structure(
                "XLS-RECORD-TYPE",
                Severity::Medium,
                loc(),
                format!("record type {kind:#06x} does not exist in BIFF8"),
            );
        }
        match kind {
            0x0809 => bofs.push(pos),
            0x0085 => sheets.push((index, le32(&wb, pos + 4).unwrap_or(0))),
            0x002F => encrypted = true,
            _ => {}
        }
        pos += 4 + len;
        index += 1;
    }
    if encrypted {
        ctx.active(
            "XLS-ENCRYPTED",
            Severity::Low,
            Location::part(e.path.clone()),
            "the workbook is encrypted: only its record framing was verified",
        );
        return;
    }
    for (index, off) in sheets {
        if !bofs.contains(&(off as usize)) {
            ctx.structure(
                "XLS-SHEET-OFFSET",
                Severity::High,
                stream_loc(&e, off as usize, format!("BOUNDSHEET record {index}")),
                format!("the sheet's stream position {off} is not the start of a BOF record"),
            );
            return;
        }
    }
}

fn powerpoint(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) {
    let Some((e, doc)) = read(data, cfb, "PowerPoint Document", ctx) else {
        return;
    };
    let current = read(data, cfb, "Current User", ctx);
    // CurrentUserAtom.headerToken 0xF3D1C4DF: the document stream is encrypted.
    if current
        .as_ref()
        .is_some_and(|(_, c)| le32(c, 12) == Some(0xF3D1_C4DF))
    {
        ctx.active(
            "PPT-ENCRYPTED",
            Severity::Low,
            Location::part(e.path.clone()),
            "the presentation is encrypted: its records cannot be verified",
        );
        return;
    }
    // Records: u16 version/instance (version 0xF = container), u16 type, u32 length.
    let mut stack: Vec<usize> = vec![doc.len()];
    let mut pos = 0usize;
    let mut index = 0usize;
    while pos < doc.len() {
        if ctx.out_of_time() || index > 1_000_000 {
            return;
        }
        while stack.last().is_some_and(|&end| pos >= end) && stack.len() > 1 {
            stack.pop();
        }
        let end = stack.last().copied().unwrap_or(doc.len());
        let (Some(ver), Some(kind), Some(len)) =
            (le16(&doc, pos), le16(&doc, pos + 2), le32(&doc, pos + 4))
        else {
            ctx.structure(
                "PPT-RECORD-TRUNCATED",
                Severity::High,
                stream_loc(&e, pos, format!("record {index}")),
                "the stream ends inside a record header",
            );
            return;
        };
        let body_end = (pos + 8).saturating_add(len as usize);
        if body_end > end {
            // Medium: some valid files written by old versions have overrunning atoms.
            ctx.structure(
                "PPT-RECORD-LENGTH",
                Severity::Medium,
                stream_loc(&e, pos, format!("record {index} (type {kind:#06x})")),
                format!("record of {len} bytes runs past its container (ends at {end})"),
            );
            return;
        }
        if ver & 0x0F == 0x0F {
            stack.push(body_end);
            pos += 8;
        } else {
            pos = body_end;
        }
        index += 1;
    }
    if let Some((cu, current)) = current {
        let offset = le32(&current, 16).unwrap_or(0);
        if offset as usize + 8 > doc.len() {
            ctx.structure(
                "PPT-CURRENT-EDIT",
                Severity::High,
                stream_loc(&cu, 16, "CurrentUserAtom".into()),
                format!(
                    "the current edit is at {offset}, outside the {}-byte document stream",
                    doc.len()
                ),
            );
        }
    }
}

fn outlook(cfb: &Cfb, ctx: &mut ScanContext) {
    for e in &cfb.entries {
        if !e.reachable || e.name != "__properties_version1.0" {
            continue;
        }
        let depth = e.path.matches('/').count();
        let header = if depth == 0 {
            32
        } else if e.path.starts_with("__substg1.0_3701000D") {
            24
        } else {
            8
        };
        if e.size < header || (e.size - header) % 16 != 0 {
            ctx.structure(
                "MSG-PROPERTIES",
                Severity::High,
                Location::part(e.path.clone()),
                format!(
                    "property stream of {} bytes: a {header}-byte header then 16-byte entries",
                    e.size
                ),
            );
        }
    }
}

fn encryption_info(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) {
    let Some((e, info)) = read(data, cfb, "EncryptionInfo", ctx) else {
        return;
    };
    let (major, minor) = (le16(&info, 0).unwrap_or(0), le16(&info, 2).unwrap_or(0));
    let loc = |off: usize, part: &str| stream_loc(&e, off, part.to_owned());
    match (major, minor) {
        (4, 4) => {
            if let Err(err) = xml::check_well_formed(info.get(8..).unwrap_or_default()) {
                ctx.structure(
                    "ENCRYPTION-INFO",
                    Severity::High,
                    loc(8 + err.offset, "agile descriptor"),
                    format!(
                        "the agile encryption descriptor is not well-formed XML: {}",
                        err.message
                    ),
                );
            }
        }
        (2..=4, 2) | (3 | 4, 3) => {
            let header_size = le32(&info, 8).unwrap_or(u32::MAX) as usize;
            let verifier_at = 12usize.saturating_add(header_size);
            let salt = le32(&info, verifier_at);
            if header_size < 32 || salt != Some(16) {
                ctx.structure(
                    "ENCRYPTION-INFO",
                    Severity::High,
                    loc(8, "header"),
                    format!("encryption header of {header_size} bytes with verifier salt size {salt:?} (header >= 32, salt 16)"),
                );
            }
        }
        _ => ctx.structure(
            "ENCRYPTION-INFO",
            Severity::High,
            loc(0, "version"),
            format!("encryption version {major}.{minor} does not exist"),
        ),
    }
}
