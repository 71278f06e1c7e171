//! Application streams inside Microsoft Office compound files, checked where readers trust
//! declared sizes and offsets: the Word FIB and its table-stream ranges, the Excel BIFF
//! record stream and sheet offsets, the `PowerPoint` record tree, Outlook property streams,
//! and the `EncryptionInfo` header of encrypted packages.

use haetae_core::Severity;

use crate::bytes::{le16, le32, le64};
use crate::container::cfb::{Cfb, DirEntry, EntryKind};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::Location;
use crate::formats::ole::officeart;
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
        FileType::Msg => outlook(data, cfb, ctx),
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
            Severity::Medium,
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
    let mut group = Vec::new();
    let mut xf_reported = false;
    let mut group_base: Option<usize> = None;
    let mut last_kind = 0u16;
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
            0x00E0 if len == 20 && !encrypted && !xf_reported && le16(&wb, 4) == Some(0x0600) => {
                if let Some(problem) = xf_problem(wb.get(pos + 4..pos + 24).unwrap_or_default()) {
                    xf_reported = true;
                    ctx.structure("XLS-XF-FIELD", Severity::Medium, loc(), problem);
                }
            }
            _ => {}
        }
        // MSODRAWINGGROUP (0xEB), continued by CONTINUE (0x3C) records, holds the
        // workbook's OfficeArt drawing group with its pictures. (A sheet's MSODRAWING
        // records are not self-contained: their container lengths count OBJ and TXO data.)
        if kind == 0x00EB || (kind == 0x003C && last_kind == 0x00EB) {
            // Offsets name stream bytes only while the group is one record.
            group_base = group.is_empty().then_some(pos + 4);
            group.extend_from_slice(wb.get(pos + 4..pos + 4 + len).unwrap_or_default());
        }
        if kind != 0x003C {
            last_kind = kind;
        }
        pos += 4 + len;
        index += 1;
    }
    if !group.is_empty() && !encrypted {
        let origin = officeart::Origin {
            stream: &e.path,
            part: "drawing group",
            base: group_base,
        };
        officeart::verify(&group, &origin, ctx);
    }
    if encrypted {
        ctx.active(
            "XLS-ENCRYPTED",
            Severity::Medium,
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

/// The enumerated fields of a BIFF8 XF record (MS-XLS 2.4.353) that readers use as table
/// indexes: border styles 0..=13, fill pattern 0..=18, vertical alignment 0..=4, reading
/// order 0..=2, rotation 0..=180 or 255.
fn xf_problem(xf: &[u8]) -> Option<String> {
    let (Some(&align), Some(&rot), Some(&indent)) = (xf.get(6), xf.get(7), xf.get(8)) else {
        return None;
    };
    let borders = le32(xf, 10)?;
    let more = le32(xf, 14)?;
    let styles = [
        ("left", borders & 0xF),
        ("right", borders >> 4 & 0xF),
        ("top", borders >> 8 & 0xF),
        ("bottom", borders >> 12 & 0xF),
        ("diagonal", more >> 21 & 0xF),
    ];
    if let Some((side, style)) = styles.iter().find(|(_, v)| *v > 13) {
        return Some(format!("{side} border style {style} (styles are 0..13)"));
    }
    let fill = more >> 26;
    if fill > 18 {
        return Some(format!("fill pattern {fill} (patterns are 0..18)"));
    }
    let valign = align >> 4 & 0x7;
    if valign > 4 {
        return Some(format!("vertical alignment {valign} (0..4)"));
    }
    let order = indent >> 6;
    if order > 2 {
        return Some(format!("reading order {order} (0..2)"));
    }
    if rot > 180 && rot != 255 {
        return Some(format!("text rotation {rot} (0..180 or 255)"));
    }
    None
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
            Severity::Medium,
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
        // PPDrawingGroup and PPDrawing wrap OfficeArt drawing data.
        if kind == 0x040B || kind == 0x040C {
            let part = format!("record {index} (drawing)");
            let origin = officeart::Origin {
                stream: &e.path,
                part: &part,
                base: Some(pos + 8),
            };
            officeart::verify(doc.get(pos + 8..body_end).unwrap_or_default(), &origin, ctx);
        }
        if ver & 0x0F == 0x0F {
            stack.push(body_end);
            pos += 8;
        } else {
            pos = body_end;
        }
        index += 1;
    }
    // The Pictures stream is a sequence of BLIP records: every picture is scanned.
    if let Some((pe, pictures)) = read(data, cfb, "Pictures", ctx) {
        let origin = officeart::Origin {
            stream: &pe.path,
            part: "pictures",
            base: Some(0),
        };
        officeart::verify(&pictures, &origin, ctx);
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

fn outlook(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) {
    let streams: Vec<DirEntry> = cfb
        .entries
        .iter()
        .filter(|e| e.reachable && e.name == "__properties_version1.0")
        .cloned()
        .collect();
    for e in streams {
        if ctx.out_of_time() {
            return;
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
            continue;
        }
        let Some(props) = cfb.read_stream(data, &e, ctx) else {
            continue;
        };
        ctx.release(props.len() as u64);
        let folder = e.path.strip_suffix(&e.name).unwrap_or_default();
        let mut at = usize::try_from(header).unwrap_or(usize::MAX);
        let mut index = 0usize;
        while let (Some(tag), Some(size)) = (le32(&props, at), le32(&props, at + 8)) {
            check_msg_property(cfb, &e, folder, tag, size, at, index, ctx);
            at += 16;
            index += 1;
        }
    }
}

/// A property whose value lives in its own `__substg1.0_TTTTPPPP` stream (MS-OXMSG 2.4.2):
/// the stream must exist, and its size must match the entry's (strings count their
/// terminator, binaries do not).
#[allow(clippy::too_many_arguments)]
fn check_msg_property(
    cfb: &Cfb,
    props: &DirEntry,
    folder: &str,
    tag: u32,
    size: u32,
    at: usize,
    index: usize,
    ctx: &mut ScanContext,
) {
    let kind = tag & 0xFFFF;
    let terminator: Option<u64> = match kind {
        0x001F => Some(2),
        0x001E => Some(1),
        0x0102 => Some(0),
        // Objects, and multi-valued properties (a length or value stream of the same name).
        0x000D | 0x1002..=0x1007 | 0x1014 | 0x101E | 0x101F | 0x1040 | 0x1048 | 0x1102 => None,
        _ => return,
    };
    let name = format!("{folder}__substg1.0_{tag:08X}");
    let loc = || stream_loc(props, at, format!("property {index} ({tag:#010x})"));
    let Some(value) = cfb.find(&name) else {
        ctx.structure(
            "MSG-PROPERTY-STREAM",
            Severity::High,
            loc(),
            format!("the property's value stream {name} does not exist"),
        );
        return;
    };
    if let Some(t) = terminator
        && value.kind == EntryKind::Stream
        && u64::from(size) != value.size + t
        && !(t > 0 && size == 0 && value.size == 0)
    {
        ctx.structure(
            "MSG-PROPERTY-SIZE",
            Severity::Medium,
            loc(),
            format!(
                "the property declares {size} bytes, its stream holds {} (+{t} for the terminator)",
                value.size
            ),
        );
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
            let descriptor = info.get(8..).unwrap_or_default();
            if let Err(err) = xml::check_well_formed(descriptor) {
                ctx.structure(
                    "ENCRYPTION-INFO",
                    Severity::High,
                    loc(8 + err.offset, "agile descriptor"),
                    format!(
                        "the agile encryption descriptor is not well-formed XML: {}",
                        err.message
                    ),
                );
            } else if let Some((element, problem)) = agile_problem(descriptor) {
                ctx.structure(
                    "ENCRYPTION-INFO",
                    Severity::High,
                    loc(8, &format!("agile descriptor <{element}>")),
                    problem,
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
    encrypted_package(data, cfb, ctx);
}

/// `EncryptedPackage` starts with the size of the decrypted package (MS-OFFCRYPTO 2.3.4.4):
/// readers allocate it before decrypting, so it may not exceed the encrypted bytes.
fn encrypted_package(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) {
    let Some(e) = cfb.find("EncryptedPackage").cloned() else {
        return;
    };
    let Some(head) = cfb.read_prefix(data, &e, 8, ctx) else {
        return;
    };
    ctx.release(head.len() as u64);
    let held = e.size.saturating_sub(8);
    match le64(&head, 0) {
        Some(declared) if declared > held => ctx.structure(
            "ENCRYPTED-PACKAGE-SIZE",
            Severity::High,
            stream_loc(&e, 0, "StreamSize".into()),
            format!("declares a {declared}-byte package but holds {held} encrypted bytes"),
        ),
        None => ctx.structure(
            "ENCRYPTED-PACKAGE-SIZE",
            Severity::High,
            stream_loc(&e, 0, "StreamSize".into()),
            format!(
                "a {}-byte stream cannot hold the 8-byte package size",
                e.size
            ),
        ),
        _ => {}
    }
}

/// Hash sizes of the hash algorithms MS-OFFCRYPTO 2.3.4.10 allows.
fn hash_size(algorithm: &str) -> Option<u64> {
    match algorithm {
        "MD5" | "MD4" | "MD2" | "RIPEMD-128" => Some(16),
        "SHA1" | "RIPEMD-160" => Some(20),
        "SHA256" => Some(32),
        "SHA384" => Some(48),
        "SHA512" | "WHIRLPOOL" => Some(64),
        _ => None,
    }
}

/// Decoded length of a base64 value, `None` when it is not base64.
fn base64_len(v: &str) -> Option<u64> {
    let v = v.trim();
    let body = v.trim_end_matches('=');
    let pad = v.len() - body.len();
    if !v.len().is_multiple_of(4)
        || pad > 2
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return None;
    }
    Some((v.len() / 4 * 3 - pad) as u64)
}

/// The first rule of MS-OFFCRYPTO 2.3.4.10 that `<keyData>` or a password
/// `<encryptedKey>` breaks: required attributes, their ranges, and salts and hashes whose
/// decoded sizes match the declared ones. Readers size buffers from these numbers.
fn agile_problem(descriptor: &[u8]) -> Option<(&'static str, String)> {
    let key_data = xml::elements(descriptor, b"keyData");
    let Some(kd) = key_data.first() else {
        return Some(("encryption", "no <keyData> element".to_owned()));
    };
    if let Some(p) = key_params_problem(kd) {
        return Some(("keyData", p));
    }
    for ek in xml::elements(descriptor, b"p:encryptedKey") {
        if let Some(p) = key_params_problem(ek) {
            return Some(("p:encryptedKey", p));
        }
        let spin = xml::attr(ek, b"spinCount").and_then(|v| v.parse::<u64>().ok());
        if spin.is_none_or(|n| n > 10_000_000) {
            return Some((
                "p:encryptedKey",
                format!("spinCount {spin:?} (required, at most 10,000,000)"),
            ));
        }
        for name in [
            "encryptedVerifierHashInput",
            "encryptedVerifierHashValue",
            "encryptedKeyValue",
        ] {
            if xml::attr(ek, name.as_bytes())
                .as_deref()
                .and_then(base64_len)
                .is_none()
            {
                return Some(("p:encryptedKey", format!("{name} is missing or not base64")));
            }
        }
    }
    None
}

fn key_params_problem(tag: &[u8]) -> Option<String> {
    let num = |name: &[u8]| xml::attr(tag, name).and_then(|v| v.trim().parse::<u64>().ok());
    let (salt, block, bits, hash) = (
        num(b"saltSize"),
        num(b"blockSize"),
        num(b"keyBits"),
        num(b"hashSize"),
    );
    let (Some(salt), Some(block), Some(bits), Some(hash)) = (salt, block, bits, hash) else {
        return Some(format!(
            "saltSize {salt:?}, blockSize {block:?}, keyBits {bits:?}, hashSize {hash:?}: all four are required numbers"
        ));
    };
    let cipher = xml::attr(tag, b"cipherAlgorithm").unwrap_or_default();
    let chaining = xml::attr(tag, b"cipherChaining").unwrap_or_default();
    let hash_alg = xml::attr(tag, b"hashAlgorithm").unwrap_or_default();
    if !(1..=65536).contains(&salt)
        || !(2..=4096).contains(&block)
        || bits == 0
        || !bits.is_multiple_of(8)
    {
        return Some(format!(
            "saltSize {salt} (1..65536), blockSize {block} (2..4096), keyBits {bits} (a positive multiple of 8)"
        ));
    }
    let cipher_ok = match cipher.as_str() {
        "AES" => block == 16 && matches!(bits, 128 | 192 | 256),
        "RC2" | "DES" | "DESX" | "3DES" | "3DES_112" => block == 8,
        _ => false,
    };
    if !cipher_ok {
        return Some(format!(
            "cipherAlgorithm {cipher:?} with blockSize {block} and keyBits {bits} is not a block cipher the format allows"
        ));
    }
    if chaining != "ChainingModeCBC" && chaining != "ChainingModeCFB" {
        return Some(format!("cipherChaining {chaining:?} does not exist"));
    }
    match hash_size(&hash_alg) {
        Some(n) if n == hash => {}
        expected => {
            return Some(format!(
                "hashAlgorithm {hash_alg:?} with hashSize {hash} (the algorithm's size is {expected:?})"
            ));
        }
    }
    let salt_value = xml::attr(tag, b"saltValue");
    let decoded = salt_value.as_deref().and_then(base64_len);
    if decoded != Some(salt) {
        return Some(format!(
            "saltValue decodes to {decoded:?} bytes, saltSize says {salt}"
        ));
    }
    None
}
