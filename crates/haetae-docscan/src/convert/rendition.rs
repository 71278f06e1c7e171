//! What the OLE2 text renditions (HWP 5.0, DOC, XLS, PPT) share: the compound file opened
//! with the crate's strict CFB reader, streams read under the memory budget, UTF-16LE
//! decoding, and the finished rendition — UTF-8 text whose `removed` list names every
//! stream of the original that the text does not carry (macros, objects, pictures,
//! scripts): a rendition is not a rebuild of the binary format.

use super::{ConvertError, Disarmed, Removed};
use crate::bytes::{le16, le32};
use crate::container::cfb::{Cfb, EntryKind};
use crate::context::ScanContext;
use crate::filetype::FileType;

/// Most streams named one by one in the `removed` list; the rest are counted.
const MAX_LISTED: usize = 64;

/// Parses the compound file, or fails with `{prefix}-CFB`.
pub(super) fn open(data: &[u8], ctx: &mut ScanContext, prefix: &str) -> Result<Cfb, ConvertError> {
    Cfb::parse(data, ctx).ok_or_else(|| {
        ConvertError::at(
            &format!("{prefix}-CFB"),
            "file".into(),
            "no readable compound-file header and directory".into(),
        )
    })
}

/// Reads the stream at `path` (`None` when there is none), or fails with `{prefix}-STREAM`
/// when its sector chain cannot be followed or it does not fit the memory budget.
pub(super) fn stream(
    data: &[u8],
    cfb: &Cfb,
    path: &str,
    ctx: &mut ScanContext,
    prefix: &str,
) -> Result<Option<Vec<u8>>, ConvertError> {
    let Some(e) = cfb.find(path) else {
        return Ok(None);
    };
    if e.kind != EntryKind::Stream {
        return Ok(None);
    }
    let Some(content) = cfb.read_stream(data, e, ctx) else {
        return Err(ConvertError::at(
            &format!("{prefix}-STREAM"),
            format!("stream {path}"),
            format!(
                "the stream's {} bytes cannot be read (broken sector chain or over the memory budget)",
                e.size
            ),
        ));
    };
    ctx.release(content.len() as u64);
    Ok(Some(content))
}

/// CP1252 for 0x80..=0x9F (U+FFFD where CP1252 has no character).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{FFFD}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{FFFD}', 'Ž',
    '\u{FFFD}', '\u{FFFD}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{FFFD}',
    'ž', 'Ÿ',
];

/// One CP1252 byte as a character (Latin-1 but for 0x80..=0x9F).
pub(super) fn cp1252(b: u8) -> char {
    if (0x80..0xA0).contains(&b) {
        CP1252_HIGH
            .get(usize::from(b - 0x80))
            .copied()
            .unwrap_or(char::REPLACEMENT_CHARACTER)
    } else {
        char::from(b)
    }
}

/// CP1251 (Cyrillic) for 0x80..=0xBF; 0xC0..=0xFF are U+0410..=U+044F.
const CP1251_HIGH: [char; 64] = [
    'Ђ', 'Ѓ', '‚', 'ѓ', '„', '…', '†', '‡', '€', '‰', 'Љ', '‹', 'Њ', 'Ќ', 'Ћ', 'Џ', //
    'ђ', '‘', '’', '“', '”', '•', '–', '—', '\u{FFFD}', '™', 'љ', '›', 'њ', 'ќ', 'ћ', 'џ', //
    '\u{A0}', 'Ў', 'ў', 'Ј', '¤', 'Ґ', '¦', '§', 'Ё', '©', 'Є', '«', '¬', '\u{AD}', '®',
    'Ї', //
    '°', '±', 'І', 'і', 'ґ', 'µ', '¶', '·', 'ё', '№', 'є', '»', 'ј', 'Ѕ', 'ѕ', 'ї',
];

/// The 8-bit code pages decoded by [`decode_8bit`]; others are read as CP1252.
pub(super) fn known_codepage(codepage: u32) -> bool {
    matches!(codepage, 1251 | 1252 | 367 | 20127 | 28591 | 65001)
}

/// `bytes` in `codepage`: CP1251, UTF-8 (65001; invalid sequences become U+FFFD), and CP1252
/// for everything else (ASCII and Latin-1 are CP1252 but for 0x80..=0x9F).
pub(super) fn decode_8bit(bytes: &[u8], codepage: u32) -> String {
    match codepage {
        65001 => String::from_utf8_lossy(bytes).into_owned(),
        1251 => bytes
            .iter()
            .map(|&b| match b {
                0..=0x7F => char::from(b),
                0x80..=0xBF => CP1251_HIGH
                    .get(usize::from(b - 0x80))
                    .copied()
                    .unwrap_or(char::REPLACEMENT_CHARACTER),
                _ => char::from_u32(0x0410 + u32::from(b - 0xC0))
                    .unwrap_or(char::REPLACEMENT_CHARACTER),
            })
            .collect(),
        _ => bytes.iter().map(|&b| cp1252(b)).collect(),
    }
}

/// The code page of the document's `\x05SummaryInformation` property set (its `PID_CODEPAGE`,
/// property 1, a 16-bit value), when the stream is there and well formed.
pub(super) fn summary_codepage(data: &[u8], cfb: &Cfb, ctx: &mut ScanContext) -> Option<u32> {
    let e = cfb.find("\u{5}SummaryInformation")?;
    let bytes = cfb.read_prefix(data, e, 4096, ctx)?;
    ctx.release(bytes.len() as u64);
    let section = le32(&bytes, 44)? as usize;
    let count = le32(&bytes, section + 4)? as usize;
    (0..count.min(256)).find_map(|i| {
        let at = section + 8 + i * 8;
        if le32(&bytes, at)? != 1 {
            return None;
        }
        let value = section + le32(&bytes, at + 4)? as usize;
        // VT_I2 (2), then the 16-bit code page (Windows writes 1200 or 65001 as signed).
        (le16(&bytes, value)? == 2).then(|| u32::from(le16(&bytes, value + 4).unwrap_or(0)))
    })
}

/// Decodes UTF-16LE code units (unpaired surrogates become U+FFFD) onto `out`.
pub(super) fn push_utf16(out: &mut String, units: impl IntoIterator<Item = u16>) {
    out.extend(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)));
}

/// The little-endian code units of `bytes` (an odd last byte is ignored).
pub(super) fn utf16_units(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes(p.try_into().unwrap_or_default()))
}

/// Fails with `{prefix}-SIZE` once the text passes the memory budget.
pub(super) fn check_size(
    text: &str,
    ctx: &ScanContext,
    prefix: &str,
    at: &str,
) -> Result<(), ConvertError> {
    let budget = ctx.limits().memory_bytes;
    if text.len() as u64 > budget {
        return Err(ConvertError::at(
            &format!("{prefix}-SIZE"),
            at.to_owned(),
            format!("the text passes the memory budget of {budget} bytes"),
        ));
    }
    Ok(())
}

/// Fails with `{prefix}-TIME` when the time budget is spent.
pub(super) fn check_time(
    ctx: &mut ScanContext,
    prefix: &str,
    at: &str,
) -> Result<(), ConvertError> {
    if ctx.out_of_time() {
        return Err(ConvertError::at(
            &format!("{prefix}-TIME"),
            at.to_owned(),
            format!("the time budget of {:?} ran out", ctx.limits().time),
        ));
    }
    Ok(())
}

/// The finished rendition of a `source`-typed document: `text` as UTF-8, and every stream
/// the text was not taken from listed as removed (`read` are the streams it was).
/// A document without text gives one empty line: an empty file is no text file to the
/// scanner (its type is unknown), and the copy must scan clean.
pub(super) fn finish(mut text: String, cfb: &Cfb, source: FileType, read: &[String]) -> Disarmed {
    if text.is_empty() {
        text.push('\n');
    }
    let mut removed = vec![Removed {
        what: format!(
            "binary {source:?} format (the copy is a plain-text rendition, not a rebuild)"
        ),
        location: "file".into(),
    }];
    let dropped: Vec<&str> = cfb
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Stream && e.reachable)
        .filter(|e| !read.iter().any(|r| r.eq_ignore_ascii_case(&e.path)))
        .map(|e| e.path.as_str())
        .collect();
    for path in dropped.iter().take(MAX_LISTED) {
        removed.push(Removed {
            what: "stream not in the text rendition".into(),
            location: format!("stream {path}"),
        });
    }
    if dropped.len() > MAX_LISTED {
        removed.push(Removed {
            what: format!(
                "{} more streams not in the text rendition",
                dropped.len() - MAX_LISTED
            ),
            location: "file".into(),
        });
    }
    Disarmed {
        bytes: text.into_bytes(),
        file_type: FileType::Text,
        removed,
    }
}
