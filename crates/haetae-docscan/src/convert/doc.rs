//! Word 97–2003 (`.doc`, MS-DOC) to a plain-text rendition.
//!
//! The FIB at the start of the `WordDocument` stream gives the table stream (`0Table` or
//! `1Table`), the lengths of the text stories (main text, footnotes, headers, comments,
//! endnotes, text boxes) and where the CLX is; the CLX's piece table maps character
//! positions to their bytes in `WordDocument`, each piece either compressed (one CP1252
//! byte a character) or UTF-16LE. Every story is rendered in order, with Word's control
//! characters mapped: 13 (paragraph), 11 (line break), 12 (page or section break) and 14
//! (column break) to a newline, 7 (cell mark) to a tab and a 7 right after a cell mark (the
//! row mark) to a newline — without the table properties an empty last cell reads as a row
//! end —, 9 a tab, 30 (non-breaking hyphen) `-`; object anchors and other controls are
//! dropped. Of a field (0x13 instruction 0x14 result 0x15, nested) only the result is kept:
//! no `DDEAUTO`, `INCLUDETEXT` or `HYPERLINK` instruction survives.
//!
//! A Word 6/95 document (`wIdent` 0xA5DC) has another FIB and no table stream: its text
//! is one byte a character, from `fcMin` in `WordDocument` for a file saved in full, or
//! through the piece table at the FIB's `fcClx` (0x160, in `WordDocument` too) after an
//! incremental save (`fComplex`); the stories' lengths are at 0x34..0x54. The bytes are in
//! the system's ANSI code page: the document properties' code page (`\x05SummaryInformation`)
//! when it is a Windows 8-bit one, CP1251 and CP1252 decoded; otherwise CP1252, and the
//! `removed` list says so when any byte is above 0x7F (the fonts' code pages are not read).
//!
//! An encrypted or XOR-obfuscated document (`fEncrypted`) answers
//! [`ConvertError::Encrypted`]: it is not broken, and has no rendition without the
//! password. A Word 97 `wIdent` with an `nFib` below Word 97's (0xC0) fails with
//! `CONVERT-DOC-VERSION`. Other failures are `CONVERT-DOC-*` naming the stream and the FIB
//! field, CLX offset or piece.

use super::cfb_write::{self, Keep};
use super::rendition::{self, check_size, check_time, push_utf16, utf16_units};
use super::{ConvertError, Disarmed, Removed};
use crate::bytes::{le16, le32, slice};
use crate::container::cfb::{Cfb, DirEntry};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::limits::Limits;

const PREFIX: &str = "CONVERT-DOC";
/// `FibBase.wIdent`.
const W_IDENT: u16 = 0xA5EC;
/// `wIdent` of Word 6 and Word 95 documents, whose FIB and text layout differ.
const W_IDENT_WORD6: u16 = 0xA5DC;
/// The FIB's variable part starts after `FibBase` (32 bytes).
const FIB_BASE: usize = 32;
/// `fcClx` is the 34th pair of `FibRgFcLcb97`.
const CLX_PAIR: usize = 33;

fn fail(code: &str, at: impl Into<String>, message: impl Into<String>) -> ConvertError {
    ConvertError::at(code, at.into(), message.into())
}

/// The text rendition of a Word 97–2003 document.
pub(super) fn render(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let Some(word) = rendition::stream(data, &cfb, "WordDocument", &mut ctx, PREFIX)? else {
        return Err(fail(
            "CONVERT-DOC-WORDDOCUMENT",
            "file",
            "the compound file has no WordDocument stream",
        ));
    };
    let fib_at = "stream WordDocument, FIB";
    let field = |off: usize, name: &str| {
        le16(&word, off).ok_or_else(|| {
            fail(
                "CONVERT-DOC-FIB",
                fib_at,
                format!("the stream ends before the FIB's {name} (byte {off})"),
            )
        })
    };
    let ident = field(0, "wIdent")?;
    if ident == W_IDENT_WORD6 {
        return word6(data, &word, &cfb, &mut ctx);
    }
    if ident != W_IDENT {
        return Err(fail(
            "CONVERT-DOC-FIB",
            fib_at,
            "wIdent is not 0xA5EC: not a Word binary document",
        ));
    }
    let n_fib = field(2, "nFib")?;
    if n_fib < 0xC0 {
        return Err(fail(
            "CONVERT-DOC-VERSION",
            fib_at,
            format!(
                "nFib {n_fib}: a Word 6/95 (or older) document, whose text layout this rendition does not read"
            ),
        ));
    }
    let flags = field(0x0A, "flags")?;
    if flags & 0x0100 != 0 {
        return Err(ConvertError::Encrypted(FileType::Doc));
    }
    let table_name = if flags & 0x0200 != 0 {
        "1Table"
    } else {
        "0Table"
    };
    let csw = usize::from(field(FIB_BASE, "csw")?);
    let lw_count_at = FIB_BASE + 2 + csw * 2;
    let cslw = usize::from(field(lw_count_at, "cslw")?);
    let lw_at = lw_count_at + 2;
    let blob_count_at = lw_at + cslw * 4;
    let pairs = usize::from(field(blob_count_at, "cbRgFcLcb")?);
    if cslw < 11 || pairs <= CLX_PAIR {
        return Err(fail(
            "CONVERT-DOC-FIB",
            fib_at,
            format!("cslw {cslw} and cbRgFcLcb {pairs} are too small for a Word 97 FIB"),
        ));
    }
    // ccpText, ccpFtn, ccpHdd, (ccpMcr, reserved), ccpAtn, ccpEdn, ccpTxbx, ccpHdrTxbx.
    let mut stories = 0u64;
    for index in [3usize, 4, 5, 7, 8, 9, 10] {
        let v = le32(&word, lw_at + index * 4).ok_or_else(|| {
            fail(
                "CONVERT-DOC-FIB",
                fib_at,
                "the stream ends inside FibRgLw97",
            )
        })?;
        stories += u64::from(v);
    }
    let clx_field = blob_count_at + 2 + CLX_PAIR * 8;
    let (Some(fc_clx), Some(lcb_clx)) = (le32(&word, clx_field), le32(&word, clx_field + 4)) else {
        return Err(fail(
            "CONVERT-DOC-FIB",
            fib_at,
            "the stream ends before fcClx/lcbClx",
        ));
    };
    let Some(table) = rendition::stream(data, &cfb, table_name, &mut ctx, PREFIX)? else {
        return Err(fail(
            "CONVERT-DOC-TABLE",
            fib_at,
            format!("fWhichTblStm names {table_name}, which the file does not have"),
        ));
    };
    let clx = slice(&table, fc_clx as usize, lcb_clx as usize).ok_or_else(|| {
        fail(
            "CONVERT-DOC-CLX",
            format!("stream {table_name}, byte {fc_clx}"),
            format!(
                "the CLX ({lcb_clx} bytes) runs past the table stream's {} bytes",
                table.len()
            ),
        )
    })?;
    let plc = piece_table(clx, table_name, fc_clx)?;
    let mut out = Renderer::default();
    let pieces = (plc.len() - 4) / 12;
    let pcd_at = (pieces + 1) * 4;
    for i in 0..pieces {
        let at = format!("stream {table_name}, piece {i}");
        check_time(&mut ctx, PREFIX, &at)?;
        let cp0 = u64::from(le32(plc, i * 4).unwrap_or(0));
        let cp1 = u64::from(le32(plc, i * 4 + 4).unwrap_or(0));
        if cp1 < cp0 {
            return Err(fail(
                "CONVERT-DOC-PIECES",
                at,
                format!("the piece's character positions go backwards ({cp0} to {cp1})"),
            ));
        }
        let end = cp1.min(stories);
        if cp0 >= end {
            continue;
        }
        let n = usize::try_from(end - cp0).unwrap_or(usize::MAX);
        let raw = le32(plc, pcd_at + i * 8 + 2).unwrap_or(0);
        let compressed = raw & 0x4000_0000 != 0;
        let fc = (raw & 0x3FFF_FFFF) as usize;
        let (start, len) = if compressed {
            (fc / 2, n)
        } else {
            (fc, n.saturating_mul(2))
        };
        let Some(bytes) = slice(&word, start, len) else {
            return Err(fail(
                "CONVERT-DOC-PIECE",
                format!("{at} (CP {cp0}..{end})"),
                format!(
                    "its {len} bytes at WordDocument byte {start} run past the stream's {} bytes",
                    word.len()
                ),
            ));
        };
        if compressed {
            for &b in bytes {
                out.push(rendition::cp1252(b));
            }
        } else {
            let mut chars = String::new();
            push_utf16(&mut chars, utf16_units(bytes));
            chars.chars().for_each(|c| out.push(c));
        }
        check_size(&out.text, &ctx, PREFIX, &at)?;
    }
    let read = ["WordDocument".to_owned(), table_name.to_owned()];
    Ok(rendition::finish(out.text, &cfb, FileType::Doc, &read))
}

/// Top-level streams a Word 97–2003 copy keeps: the text and its formatting, pictures
/// (`Data`), the document properties and the class id.
const KEPT: [&str; 7] = [
    "WordDocument",
    "0Table",
    "1Table",
    "Data",
    "\u{5}SummaryInformation",
    "\u{5}DocumentSummaryInformation",
    "\u{1}CompObj",
];

/// Field types whose instruction fetches or runs something outside the document.
const EXTERNAL_FIELDS: [&str; 6] = [
    "DDE",
    "DDEAUTO",
    "INCLUDETEXT",
    "INCLUDEPICTURE",
    "INCLUDE",
    "IMPORT",
];

/// What a Word 97–2003 copy leaves out of the storage at `path`.
fn policy(e: &DirEntry) -> Keep {
    if let Some(keep) = cfb_write::kept_top(e, &KEPT) {
        return keep;
    }
    let p = e.path.as_str();
    if p.eq_ignore_ascii_case("Macros") || p.eq_ignore_ascii_case("_VBA_PROJECT_CUR") {
        Keep::Drop("macro project (VBA)")
    } else if p.eq_ignore_ascii_case("ObjectPool") {
        Keep::Drop("embedded OLE objects")
    } else if p.eq_ignore_ascii_case("\u{1}Ole") {
        Keep::Drop("OLE link information")
    } else {
        Keep::Drop("storage or stream the document does not need")
    }
}

/// One field while the piece walk is inside it.
struct OpenField {
    /// Still in the instruction (before 0x14).
    instruction: bool,
    /// The instruction's own characters (nested fields left out), at most `MAX_INSTR`.
    text: String,
    /// `WordDocument` byte offset and width (1: compressed, 2: UTF-16) of each of them.
    at: Vec<(usize, u8)>,
    /// Character position of its 0x13.
    cp: u64,
}

/// Longest field instruction looked at whole.
const MAX_INSTR: usize = 65_536;

/// Blanks the instruction of a field that reaches outside the document.
fn close_instruction(
    f: &OpenField,
    word: &mut [u8],
    removed: &mut Vec<Removed>,
) -> Result<(), ConvertError> {
    let kind = f
        .text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !EXTERNAL_FIELDS.contains(&kind.as_str()) {
        return Ok(());
    }
    if f.text.chars().count() >= MAX_INSTR {
        return Err(fail(
            "CONVERT-DOC-FIELD",
            format!("stream WordDocument, field at CP {}", f.cp),
            format!("a {kind} field's instruction is longer than {MAX_INSTR} characters"),
        ));
    }
    for &(off, width) in &f.at {
        if let Some(b) = word.get_mut(off..off + usize::from(width)) {
            for (k, byte) in b.iter_mut().enumerate() {
                *byte = if k == 0 { b' ' } else { 0 };
            }
        }
    }
    let shown: String = f.text.trim().chars().take(80).collect();
    removed.push(Removed {
        what: format!("{kind} field instruction (blanked in place, its result kept)"),
        location: format!("stream WordDocument, field at CP {}: {shown}", f.cp),
    });
    Ok(())
}

/// Walks the piece table of a Word 97 document (verified by [`render`]) and blanks, in
/// `WordDocument`, the instructions of DDE, `DDEAUTO`, `INCLUDETEXT` and `INCLUDEPICTURE`
/// fields: the same number of spaces, so every character position, the field tables and
/// the field results stay as they are.
fn blank_fields(
    word: &mut [u8],
    table: &[u8],
    table_name: &str,
    removed: &mut Vec<Removed>,
) -> Result<(), ConvertError> {
    let fib_at = "stream WordDocument, FIB";
    let short = || fail("CONVERT-DOC-FIB", fib_at, "the FIB is too short");
    let csw = usize::from(le16(word, FIB_BASE).ok_or_else(short)?);
    let lw_count_at = FIB_BASE + 2 + csw * 2;
    let cslw = usize::from(le16(word, lw_count_at).ok_or_else(short)?);
    let lw_at = lw_count_at + 2;
    let blob_count_at = lw_at + cslw * 4;
    let mut stories = 0u64;
    for index in [3usize, 4, 5, 7, 8, 9, 10] {
        stories += u64::from(le32(word, lw_at + index * 4).ok_or_else(short)?);
    }
    let clx_field = blob_count_at + 2 + CLX_PAIR * 8;
    let (Some(fc_clx), Some(lcb_clx)) = (le32(word, clx_field), le32(word, clx_field + 4)) else {
        return Err(short());
    };
    let clx = slice(table, fc_clx as usize, lcb_clx as usize).ok_or_else(|| {
        fail(
            "CONVERT-DOC-CLX",
            format!("stream {table_name}"),
            "the CLX runs past the table stream",
        )
    })?;
    let plc = piece_table(clx, table_name, fc_clx)?.to_vec();
    let pieces = (plc.len() - 4) / 12;
    let pcd_at = (pieces + 1) * 4;
    let mut open: Vec<OpenField> = Vec::new();
    for i in 0..pieces {
        let cp0 = u64::from(le32(&plc, i * 4).unwrap_or(0));
        let cp1 = u64::from(le32(&plc, i * 4 + 4).unwrap_or(0));
        let end = cp1.min(stories);
        if cp0 >= end {
            continue;
        }
        let n = usize::try_from(end - cp0).unwrap_or(usize::MAX);
        let raw = le32(&plc, pcd_at + i * 8 + 2).unwrap_or(0);
        let compressed = raw & 0x4000_0000 != 0;
        let fc = (raw & 0x3FFF_FFFF) as usize;
        let (start, width) = if compressed { (fc / 2, 1u8) } else { (fc, 2u8) };
        for k in 0..n {
            let off = start + k * usize::from(width);
            let c = if compressed {
                word.get(off).map(|&b| rendition::cp1252(b))
            } else {
                le16(word, off)
                    .map(|u| char::from_u32(u32::from(u)).unwrap_or(char::REPLACEMENT_CHARACTER))
            };
            let Some(c) = c else {
                return Err(fail(
                    "CONVERT-DOC-PIECE",
                    format!("stream {table_name}, piece {i}"),
                    "the piece runs past the WordDocument stream",
                ));
            };
            match c {
                '\u{13}' => open.push(OpenField {
                    instruction: true,
                    text: String::new(),
                    at: Vec::new(),
                    cp: cp0 + k as u64,
                }),
                '\u{14}' => {
                    if let Some(top) = open.last_mut()
                        && top.instruction
                    {
                        top.instruction = false;
                        close_instruction(top, word, removed)?;
                    }
                }
                '\u{15}' => {
                    if let Some(top) = open.pop()
                        && top.instruction
                    {
                        close_instruction(&top, word, removed)?;
                    }
                }
                c => {
                    if let Some(top) = open.last_mut() {
                        if top.instruction && top.at.len() < MAX_INSTR {
                            top.text.push(c);
                            top.at.push((off, width));
                        } else if top.instruction {
                            top.text.push(' ');
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The same-format copy of a Word 97–2003 document: the rendition first (a failure there
/// is the conversion's finding, an encrypted file is refused), then the compound file
/// rebuilt with only [`KEPT`] streams and the instructions of external fields blanked. A
/// Word 6/95 document keeps its text rendition (its fields are not walked).
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let rendition = render(data, limits)?;
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let Some(word) = rendition::stream(data, &cfb, "WordDocument", &mut ctx, PREFIX)? else {
        return Ok(rendition);
    };
    if le16(&word, 0) != Some(W_IDENT) {
        return Ok(rendition);
    }
    let flags = le16(&word, 0x0A).unwrap_or(0);
    let table_name = if flags & 0x0200 != 0 {
        "1Table"
    } else {
        "0Table"
    };
    let table = rendition::stream(data, &cfb, table_name, &mut ctx, PREFIX)?.unwrap_or_default();
    let mut edit = |path: &str, bytes: &mut Vec<u8>, removed: &mut Vec<Removed>| {
        if path.eq_ignore_ascii_case("WordDocument") {
            blank_fields(bytes, &table, table_name, removed)?;
        }
        Ok(())
    };
    cfb_write::copy_as(
        data,
        &cfb,
        &mut ctx,
        PREFIX,
        FileType::Doc,
        &policy,
        &mut edit,
    )
}

/// The text rendition of a Word 6/95 document (`word` is its `WordDocument` stream).
fn word6(
    data: &[u8],
    word: &[u8],
    cfb: &Cfb,
    ctx: &mut ScanContext,
) -> Result<Disarmed, ConvertError> {
    let fib_at = "stream WordDocument, Word 6/95 FIB";
    let long = |off: usize, name: &str| {
        le32(word, off).ok_or_else(|| {
            fail(
                "CONVERT-DOC-FIB",
                fib_at,
                format!("the stream ends before the FIB's {name} (byte {off})"),
            )
        })
    };
    let flags = le16(word, 0x0A).unwrap_or(0);
    if flags & 0x0100 != 0 {
        return Err(ConvertError::Encrypted(FileType::Doc));
    }
    let fc_min = long(0x18, "fcMin")?;
    // ccpText, ccpFtn, ccpHdd, ccpMcr, ccpAtn, ccpEdn, ccpTxbx, ccpHdrTxbx: in CP order.
    let mut lengths = [0u64; 8];
    for (i, l) in lengths.iter_mut().enumerate() {
        *l = u64::from(long(0x34 + i * 4, "ccpText..ccpHdrTxbx")?);
    }
    // The CP ranges rendered: every story but the macro story (index 3).
    let mut ranges = Vec::new();
    let mut cp = 0u64;
    for (i, l) in lengths.iter().enumerate() {
        if i != 3 && *l > 0 {
            ranges.push((cp, cp + l));
        }
        cp += l;
    }
    let in_stories = |a: u64, b: u64| -> Vec<(u64, u64)> {
        ranges
            .iter()
            .filter_map(|&(s, e)| {
                let (x, y) = (a.max(s), b.min(e));
                (x < y).then_some((x, y))
            })
            .collect()
    };
    // (first CP, last CP, byte offset of the first) of each run of text.
    let mut pieces: Vec<(u64, u64, u64)> = Vec::new();
    if flags & 0x0004 != 0 {
        let fc_clx = long(0x160, "fcClx")?;
        let lcb_clx = long(0x164, "lcbClx")?;
        let clx = slice(word, fc_clx as usize, lcb_clx as usize).ok_or_else(|| {
            fail(
                "CONVERT-DOC-CLX",
                format!("stream WordDocument, byte {fc_clx}"),
                format!(
                    "the CLX ({lcb_clx} bytes) runs past the stream's {} bytes",
                    word.len()
                ),
            )
        })?;
        let plc = piece_table(clx, "WordDocument", fc_clx)?;
        let n = (plc.len() - 4) / 12;
        let pcd_at = (n + 1) * 4;
        for i in 0..n {
            let cp0 = u64::from(le32(plc, i * 4).unwrap_or(0));
            let cp1 = u64::from(le32(plc, i * 4 + 4).unwrap_or(0));
            if cp1 < cp0 {
                return Err(fail(
                    "CONVERT-DOC-PIECES",
                    format!("stream WordDocument, piece {i}"),
                    format!("the piece's character positions go backwards ({cp0} to {cp1})"),
                ));
            }
            let fc = u64::from(le32(plc, pcd_at + i * 8 + 2).unwrap_or(0));
            for (a, b) in in_stories(cp0, cp1) {
                pieces.push((a, b, fc + (a - cp0)));
            }
        }
    } else {
        for (a, b) in in_stories(0, cp) {
            pieces.push((a, b, u64::from(fc_min) + a));
        }
    }
    // The document properties' code page, when it is one of Windows' 8-bit ones (Word 6/95
    // writes the properties in the system's ANSI code page, as it does the text).
    let codepage = rendition::summary_codepage(data, cfb, ctx)
        .filter(|cp| (1250..=1258).contains(cp))
        .unwrap_or(1252);
    let mut out = Renderer::default();
    let mut high = false;
    for (i, (cp0, cp1, fc)) in pieces.into_iter().enumerate() {
        let at = format!("stream WordDocument, text run {i} (CP {cp0}..{cp1})");
        check_time(ctx, PREFIX, &at)?;
        let n = usize::try_from(cp1 - cp0).unwrap_or(usize::MAX);
        let bytes = usize::try_from(fc)
            .ok()
            .and_then(|fc| slice(word, fc, n))
            .ok_or_else(|| {
                fail(
                    "CONVERT-DOC-PIECE",
                    at.clone(),
                    format!(
                        "its {n} bytes at byte {fc} run past the stream's {} bytes",
                        word.len()
                    ),
                )
            })?;
        high |= bytes.iter().any(|&b| b >= 0x80);
        rendition::decode_8bit(bytes, codepage)
            .chars()
            .for_each(|c| out.push(c));
        check_size(&out.text, ctx, PREFIX, &at)?;
    }
    let mut d = rendition::finish(out.text, cfb, FileType::Doc, &["WordDocument".to_owned()]);
    if high && !rendition::known_codepage(codepage) {
        d.removed.push(Removed {
            what: format!(
                "Word 6/95 text in code page {codepage}: its characters above 0x7F are shown as CP1252 (no decoder for it)"
            ),
            location: "stream WordDocument".into(),
        });
    } else if high && codepage == 1252 {
        d.removed.push(Removed {
            what: "Word 6/95 8-bit text: no 8-bit code page in the document properties, shown as CP1252 (the fonts' code pages are not read)".into(),
            location: "stream WordDocument".into(),
        });
    }
    Ok(d)
}

/// The `PlcPcd` of the CLX (its `Prc` property groups skipped), checked for size.
fn piece_table<'a>(clx: &'a [u8], table: &str, base: u32) -> Result<&'a [u8], ConvertError> {
    let mut pos = 0usize;
    loop {
        let at = format!("stream {table}, CLX byte {}", u64::from(base) + pos as u64);
        match clx.get(pos) {
            Some(1) => {
                let cb = le16(clx, pos + 1).ok_or_else(|| {
                    fail("CONVERT-DOC-CLX", at.clone(), "the CLX ends inside a Prc")
                })?;
                pos += 3 + usize::from(cb);
            }
            Some(2) => {
                let lcb = le32(clx, pos + 1).unwrap_or(0) as usize;
                let plc = slice(clx, pos + 5, lcb).ok_or_else(|| {
                    fail(
                        "CONVERT-DOC-CLX",
                        at.clone(),
                        format!("the piece table's {lcb} bytes run past the CLX"),
                    )
                })?;
                if lcb < 16 || !(lcb - 4).is_multiple_of(12) {
                    return Err(fail(
                        "CONVERT-DOC-PIECES",
                        at,
                        format!("a piece table of {lcb} bytes is not 4 + 12n (n ≥ 1)"),
                    ));
                }
                return Ok(plc);
            }
            Some(other) => {
                return Err(fail(
                    "CONVERT-DOC-CLX",
                    at,
                    format!("clxt {other}: neither a Prc (1) nor the Pcdt (2)"),
                ));
            }
            None => {
                return Err(fail(
                    "CONVERT-DOC-CLX",
                    at,
                    "the CLX ends without a piece table",
                ));
            }
        }
    }
}

/// Word's characters to plain text: controls mapped, field instructions dropped.
#[derive(Default)]
struct Renderer {
    text: String,
    /// Open fields, innermost last: `true` while in the instruction.
    fields: Vec<bool>,
    /// The last character was a cell mark.
    after_cell: bool,
}

impl Renderer {
    fn push(&mut self, c: char) {
        match c {
            '\u{13}' => {
                self.fields.push(true);
                return;
            }
            '\u{14}' => {
                if let Some(top) = self.fields.last_mut() {
                    *top = false;
                }
                return;
            }
            '\u{15}' => {
                self.fields.pop();
                return;
            }
            _ => {}
        }
        if self.fields.iter().any(|&instruction| instruction) {
            return;
        }
        let cell = c == '\u{7}';
        match c {
            '\u{7}' if self.after_cell => {
                // The row mark: the row's last cell mark became a tab; end the line.
                if self.text.ends_with('\t') {
                    self.text.pop();
                }
                self.text.push('\n');
                self.after_cell = false;
                return;
            }
            '\u{7}' | '\t' => self.text.push('\t'),
            '\r' | '\u{b}' | '\u{c}' | '\u{e}' => self.text.push('\n'),
            '\u{1e}' => self.text.push('-'),
            c if u32::from(c) < 32 => {}
            c => self.text.push(c),
        }
        self.after_cell = cell;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::cfb::EntryKind;
    use crate::container::cfb::build::cfb;

    const FIB_LEN: usize = 1024;

    /// A Word 97 document whose text is `pieces` (text, compressed?) in order, as a
    /// main story of all of them; `flags` are `FibBase` flags besides `fWhichTblStm`.
    fn doc(pieces: &[(&str, bool)], flags: u16) -> Vec<u8> {
        let mut word = vec![0u8; FIB_LEN];
        word[0..2].copy_from_slice(&W_IDENT.to_le_bytes());
        word[2..4].copy_from_slice(&0xC1u16.to_le_bytes());
        word[0x0A..0x0C].copy_from_slice(&(flags | 0x0200).to_le_bytes());
        word[32..34].copy_from_slice(&14u16.to_le_bytes());
        word[62..64].copy_from_slice(&22u16.to_le_bytes());
        word[152..154].copy_from_slice(&93u16.to_le_bytes());
        let mut cps = vec![0u32];
        let mut pcds = Vec::new();
        for (text, compressed) in pieces {
            let fc = u32::try_from(word.len()).unwrap();
            let n = if *compressed {
                word.extend(text.chars().map(|c| u8::try_from(u32::from(c)).unwrap()));
                pcds.push((fc * 2) | 0x4000_0000);
                text.chars().count()
            } else {
                word.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
                pcds.push(fc);
                text.encode_utf16().count()
            };
            cps.push(cps.last().unwrap() + u32::try_from(n).unwrap());
        }
        let total = *cps.last().unwrap();
        word[76..80].copy_from_slice(&total.to_le_bytes()); // ccpText
        let mut plc = Vec::new();
        for cp in &cps {
            plc.extend_from_slice(&cp.to_le_bytes());
        }
        for fc in &pcds {
            plc.extend_from_slice(&[0, 0]);
            plc.extend_from_slice(&fc.to_le_bytes());
            plc.extend_from_slice(&[0, 0]);
        }
        let mut table = vec![0xAAu8; 16]; // something before the CLX
        let fc_clx = u32::try_from(table.len()).unwrap();
        table.extend_from_slice(&[1, 2, 0, 0x55, 0x66]); // a Prc of 2 bytes
        table.push(2);
        table.extend_from_slice(&u32::try_from(plc.len()).unwrap().to_le_bytes());
        table.extend_from_slice(&plc);
        let lcb = u32::try_from(table.len()).unwrap() - fc_clx;
        let clx_field = 154 + CLX_PAIR * 8;
        word[clx_field..clx_field + 4].copy_from_slice(&fc_clx.to_le_bytes());
        word[clx_field + 4..clx_field + 8].copy_from_slice(&lcb.to_le_bytes());
        cfb(&[
            ("WordDocument", &word),
            ("1Table", &table),
            ("Macros/VBA", b"Attribute VB_Name"),
        ])
    }

    fn text_of(data: &[u8]) -> String {
        let d = render(data, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        String::from_utf8(d.bytes).unwrap()
    }

    fn failure(data: &[u8]) -> (String, String) {
        match render(data, &Limits::default()) {
            Err(ConvertError::Failed(f)) => (f[0].code.clone(), f[0].location.clone()),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn compressed_and_unicode_pieces_with_controls_and_a_table() {
        let data = doc(
            &[
                ("Caf\u{e9} \u{80}5\r", true),
                ("송금 확인서\u{b}둘째 줄\r", false),
                ("a\u{7}b\u{7}\u{7}c\u{7}d\u{7}\u{7}end\u{1}\r", true),
            ],
            0,
        );
        assert_eq!(
            text_of(&data),
            "Café €5\n송금 확인서\n둘째 줄\na\tb\nc\td\nend\n"
        );
        let d = render(&data, &Limits::default()).unwrap();
        assert!(d.removed.iter().any(|r| r.location == "stream Macros/VBA"));
    }

    #[test]
    fn field_instructions_are_dropped_and_results_kept() {
        let data = doc(
            &[(
                "before \u{13} DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe \"/k calc\" \u{14}shown\u{15} after\r\
                 \u{13}INCLUDETEXT \"\\\\\\\\evil\\\\x\" \u{13}PAGE\u{14}3\u{15}\u{15}!\r",
                false,
            )],
            0,
        );
        let text = text_of(&data);
        assert_eq!(text, "before shown after\n!\n");
        assert!(!text.contains("DDE") && !text.contains("INCLUDE"));
    }

    #[test]
    fn encrypted_is_refused_and_old_word_fails() {
        let data = doc(&[("secret\r", true)], 0x0100);
        assert_eq!(
            render(&data, &Limits::default()).unwrap_err(),
            ConvertError::Encrypted(FileType::Doc)
        );
        let mut old = doc(&[("x\r", true)], 0);
        // nFib sits at byte 2 of WordDocument, the first stream: sector 0 of the file
        // when it is large enough, else the mini stream; patch it where it is.
        let at = old
            .windows(4)
            .position(|w| w == [0xEC, 0xA5, 0xC1, 0x00])
            .unwrap();
        old[at + 2] = 104;
        assert_eq!(failure(&old).0, "CONVERT-DOC-VERSION");
    }

    /// A Word 6/95 `WordDocument`: FIB, then `text` (8-bit) at `fcMin` 0x300 as the main
    /// story and `footnote` as the footnote story; `flags` in the FIB.
    fn word6(text: &[u8], footnote: &[u8], flags: u16) -> Vec<u8> {
        let mut w = vec![0u8; 0x300];
        w[0..2].copy_from_slice(&W_IDENT_WORD6.to_le_bytes());
        w[2..4].copy_from_slice(&101u16.to_le_bytes());
        w[0x0A..0x0C].copy_from_slice(&flags.to_le_bytes());
        w[0x18..0x1C].copy_from_slice(&0x300u32.to_le_bytes());
        w[0x34..0x38].copy_from_slice(&u32::try_from(text.len()).unwrap().to_le_bytes());
        w[0x38..0x3C].copy_from_slice(&u32::try_from(footnote.len()).unwrap().to_le_bytes());
        w.extend_from_slice(text);
        w.extend_from_slice(footnote);
        w
    }

    #[test]
    fn word6_documents_are_rendered() {
        let w = word6(
            b"Caf\xe9 \x93menu\x94\r\x13 HYPERLINK x \x14link\x15\r",
            b"note\r",
            0,
        );
        let d = render(&cfb(&[("WordDocument", &w)]), &Limits::default()).unwrap();
        assert_eq!(
            String::from_utf8(d.bytes).unwrap(),
            "Café “menu”\nlink\nnote\n"
        );
        assert!(d.removed.iter().any(|r| r.what.contains("CP1252")));
        // An incrementally saved one: the piece table at fcClx puts "world " first.
        let mut w = word6(b"hello world\r", b"", 0x0004);
        let fc_clx = u32::try_from(w.len()).unwrap();
        let mut plc = Vec::new();
        for cp in [0u32, 6, 12] {
            plc.extend_from_slice(&cp.to_le_bytes());
        }
        for fc in [0x300u32 + 6, 0x300] {
            plc.extend_from_slice(&[0, 0]);
            plc.extend_from_slice(&fc.to_le_bytes());
            plc.extend_from_slice(&[0, 0]);
        }
        // "world\r" then "hello " (12 characters in all: the main story).
        let mut clx = vec![2u8];
        clx.extend_from_slice(&u32::try_from(plc.len()).unwrap().to_le_bytes());
        clx.extend(plc);
        w[0x160..0x164].copy_from_slice(&fc_clx.to_le_bytes());
        w[0x164..0x168].copy_from_slice(&u32::try_from(clx.len()).unwrap().to_le_bytes());
        w.extend(clx);
        let d = render(&cfb(&[("WordDocument", &w)]), &Limits::default()).unwrap();
        assert_eq!(String::from_utf8(d.bytes).unwrap(), "world\nhello ");
        // Encrypted; and text running past the stream.
        let enc = word6(b"x", b"", 0x0100);
        assert_eq!(
            render(&cfb(&[("WordDocument", &enc)]), &Limits::default()).unwrap_err(),
            ConvertError::Encrypted(FileType::Doc)
        );
        let mut cut = word6(b"some text\r", b"", 0);
        cut.truncate(0x304);
        assert_eq!(
            failure(&cfb(&[("WordDocument", &cut)])).0,
            "CONVERT-DOC-PIECE"
        );
    }

    #[test]
    fn broken_piece_tables_name_where() {
        let mut data = doc(&[("hello\r", true)], 0);
        // Point the piece past the end of WordDocument.
        let fc = u32::try_from(FIB_LEN * 2).unwrap() | 0x4000_0000;
        let at = data.windows(4).position(|w| w == fc.to_le_bytes()).unwrap();
        data[at + 3] = 0x4F;
        let (code, location) = failure(&data);
        assert_eq!(code, "CONVERT-DOC-PIECE");
        assert!(location.starts_with("stream 1Table, piece 0"), "{location}");
        let plain = cfb(&[("WordDocument", b"\xEC\xA5")]);
        assert_eq!(failure(&plain).0, "CONVERT-DOC-FIB");
        let none = cfb(&[("Book", b"x")]);
        assert_eq!(failure(&none).0, "CONVERT-DOC-WORDDOCUMENT");
    }

    /// The streams of a compound file, sorted by path.
    fn streams_of(file: &[u8]) -> Vec<(String, Vec<u8>)> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, file.len());
        let cfb = Cfb::parse(file, &mut ctx).unwrap();
        let mut out: Vec<(String, Vec<u8>)> = cfb
            .entries
            .iter()
            .filter(|e| e.reachable && e.kind == EntryKind::Stream)
            .map(|e| (e.path.clone(), cfb.read_stream(file, e, &mut ctx).unwrap()))
            .collect();
        out.sort();
        out
    }

    /// Characters of the first (compressed) piece of the test document.
    fn before_len(_: &[u8]) -> usize {
        FIRST_PIECE.chars().count()
    }

    const FIRST_PIECE: &str = "Pay \u{13} DDEAUTO c:\\windows\\cmd.exe \"/c calc\" \u{14}now\u{15} page \u{13} PAGE \u{14}1\u{15}\r";

    #[test]
    fn a_doc_copy_loses_its_macros_and_external_field_instructions() {
        let file = doc(
            &[
                (FIRST_PIECE, true),
                (
                    "더 \u{13} INCLUDETEXT \"http://x.example/a\" \u{13} DATE \u{14}d\u{15} \u{14}inc\u{15}\r",
                    false,
                ),
            ],
            0,
        );
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Doc);
        let before = streams_of(&file);
        let after = streams_of(&d.bytes);
        let names: Vec<&str> = after.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["1Table", "WordDocument"]);
        assert_eq!(after[0], before[0], "the table stream is copied as it is");
        let (word0, word1) = (&before[2].1, &after[1].1);
        assert_eq!(word0.len(), word1.len());
        let tail = |w: &[u8]| w[FIB_LEN..].to_vec();
        let compressed_part = String::from_utf8_lossy(&tail(word1)).into_owned();
        assert!(!compressed_part.contains("DDEAUTO") && !compressed_part.contains("calc"));
        assert!(compressed_part.contains(" PAGE "), "other fields stay");
        // The UTF-16 piece follows the compressed one (whose length may be odd).
        let wide_at = FIB_LEN + before_len(&file);
        let wide: String = char::decode_utf16(
            word1[wide_at..]
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| u16::from_le_bytes([c[0], c[1]])),
        )
        .map(|c| c.unwrap_or('?'))
        .collect();
        assert!(!wide.contains("INCLUDETEXT") && !wide.contains("x.example"));
        assert!(wide.contains(" DATE "), "the nested field stays: {wide}");
        // Every byte that changed became a space (or a UTF-16 space's high byte).
        for (a, b) in word0.iter().zip(word1.iter()) {
            if a != b {
                assert!(*b == b' ' || *b == 0, "{a} -> {b}");
            }
        }
        let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
        assert!(whats.contains(&"macro project (VBA)"), "{whats:?}");
        assert!(
            whats
                .iter()
                .any(|w| w.starts_with("DDEAUTO field instruction"))
                && whats
                    .iter()
                    .any(|w| w.starts_with("INCLUDETEXT field instruction")),
            "{whats:?}"
        );
        // The results and the text read the same; the copy scans without macro findings.
        assert_eq!(text_of(&d.bytes), text_of(&file));
        let r = crate::scan_bytes(&d.bytes, Some("pay.doc"), &Limits::default());
        assert_eq!(r.detected_type, FileType::Doc);
        assert!(
            r.findings.iter().all(|f| !f.code.starts_with("OLE-")),
            "{:?}",
            r.findings
        );
        let r0 = crate::scan_bytes(&file, Some("pay.doc"), &Limits::default());
        assert!(
            r0.findings.iter().any(|f| f.code == "OLE-VBA"),
            "{:?}",
            r0.findings
        );
    }

    #[test]
    fn a_word6_document_and_an_encrypted_one_are_not_rebuilt() {
        let old = cfb(&[("WordDocument", &word6(b"Plain text\r", b"", 0))]);
        let d = rebuild(&old, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert_eq!(
            rebuild(&doc(&[("x", true)], 0x0100), &Limits::default()).unwrap_err(),
            ConvertError::Encrypted(FileType::Doc)
        );
    }
}
