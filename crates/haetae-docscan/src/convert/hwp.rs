//! HWP 5.0 to a plain-text rendition: the paragraph text of every `BodyText/SectionN`
//! stream, one paragraph a line.
//!
//! The `FileHeader` says whether the streams are raw-deflate compressed; a password-,
//! DRM- or distribution-protected document (whose body is encrypted) answers
//! [`ConvertError::Encrypted`], as an encrypted PDF does: it is not a broken file, and
//! its text cannot be read without the key. Each section is inflated under the ratio cap
//! and the memory budget, its records walked (tag 10 bits, level 10 bits, size 12 bits,
//! 0xFFF meaning a 32-bit size follows), and every `HWPTAG_PARA_TEXT` (67) decoded as
//! UTF-16LE: the inline and extended controls (1–9, 11, 12, 14–23: a table, a picture, a
//! field, a footnote...) occupy 8 code units and are skipped whole, 9 (tab, an inline
//! control) becomes a tab, 10 a line break, 13 ends the paragraph, 24 is a hyphen and
//! 30/31 are spaces. A paragraph without a text record (an empty line) still gives a line.
//! The records are walked here rather than through the verifier's
//! [`parse_records`](crate::formats::hwp::parse_records), which stops at the scan's entry
//! budget: a rendition must have every paragraph or fail. Failures are `CONVERT-HWP-*`
//! with the stream and the record's offset in the inflated stream.

use super::cfb_write::{self, Keep};
use super::rendition::{self, check_size, check_time, push_utf16, utf16_units};
use super::{ConvertError, Disarmed, Removed};
use crate::bytes::{le32, slice};
use crate::container::cfb::DirEntry;
use crate::container::inflate::{Framing, InflateError, inflate_partial};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::limits::Limits;

const PREFIX: &str = "CONVERT-HWP";
const SIGNATURE: &[u8] = b"HWP Document File";
/// `HWPTAG_PARA_HEADER` (`HWPTAG_BEGIN` + 50).
const TAG_PARA_HEADER: u32 = 0x10 + 50;
/// `HWPTAG_PARA_TEXT` (`HWPTAG_BEGIN` + 51).
const TAG_PARA_TEXT: u32 = 0x10 + 51;
/// Most sections read (`Section0` .. `Section9999`).
const MAX_SECTIONS: usize = 10_000;

/// The text rendition of an HWP 5.0 document.
pub(super) fn render(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    let Some(header) = rendition::stream(data, &cfb, "FileHeader", &mut ctx, PREFIX)? else {
        return Err(ConvertError::at(
            "CONVERT-HWP-FILEHEADER",
            "stream FileHeader".into(),
            "the document has no FileHeader stream".into(),
        ));
    };
    if header.len() < 40 || !header.starts_with(SIGNATURE) {
        return Err(ConvertError::at(
            "CONVERT-HWP-FILEHEADER",
            "stream FileHeader".into(),
            format!(
                "a FileHeader of {} bytes without the \"HWP Document File\" signature and flags",
                header.len()
            ),
        ));
    }
    let flags = le32(&header, 36).unwrap_or(0);
    // Bit 1 password, bit 4 DRM: encrypted with a key the file does not hold.
    if flags & (2 | 0x10) != 0 {
        return Err(ConvertError::Encrypted(FileType::Hwp));
    }
    // Bit 2: a distribution document, whose text is in ViewText, encrypted with a key the
    // file carries (BodyText holds a notice).
    let distribution = flags & 4 != 0;
    let storage = if distribution { "ViewText" } else { "BodyText" };
    let compressed = flags & 1 != 0;
    let mut text = String::new();
    let mut read = vec!["FileHeader".to_owned()];
    for n in 0..MAX_SECTIONS {
        let path = format!("{storage}/Section{n}");
        let Some(raw) = rendition::stream(data, &cfb, &path, &mut ctx, PREFIX)? else {
            break;
        };
        let raw = if distribution {
            distribution_decrypt(&raw, &path)?
        } else {
            raw
        };
        let content = if compressed {
            inflate(&raw, &path, &ctx)?
        } else {
            raw
        };
        section_text(&content, &path, &mut text, &mut ctx)?;
        read.push(path);
    }
    if read.len() == 1 {
        return Err(ConvertError::at(
            "CONVERT-HWP-BODYTEXT",
            format!("storage {storage}"),
            format!("the document has no {storage}/Section0 stream"),
        ));
    }
    let mut d = rendition::finish(text, &cfb, FileType::Hwp, &read);
    if distribution {
        d.removed.push(Removed {
            what: "distribution document: the text of its ViewText sections, decrypted with the \
                   key the file carries (copy and print restrictions do not carry over)"
                .into(),
            location: "storage ViewText".into(),
        });
    }
    Ok(d)
}

/// `HWPTAG_DISTRIBUTE_DOC_DATA` (`HWPTAG_BEGIN` + 12): the 256 bytes before a distribution
/// document's encrypted section.
const TAG_DISTRIBUTE_DOC_DATA: u32 = 0x10 + 12;

/// The Microsoft C runtime's `rand()` sequence from `srand(seed)`, which the distribution
/// data's mask is made with.
struct MsvcRand(u32);

impl MsvcRand {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(214_013).wrapping_add(2_531_011);
        (self.0 >> 16) & 0x7FFF
    }
}

/// A distribution document's `ViewText/SectionN`: a `DISTRIBUTE_DOC_DATA` record of 256
/// bytes — its first 4 bytes (stored as they are) seed a mask (a random byte repeated 1–16 times, over and over)
/// that, once removed (exclusive or), shows at byte `4 + (seed & 15)` the AES-128 key — then the section,
/// encrypted with AES-128 in ECB mode. Returns the decrypted section (compressed or not, as
/// the `FileHeader` says).
fn distribution_decrypt(raw: &[u8], path: &str) -> Result<Vec<u8>, ConvertError> {
    use aes::cipher::{BlockCipherDecrypt, KeyInit};
    let at = format!("stream {path}");
    let header = le32(raw, 0).unwrap_or(0);
    let (Some(payload), true) = (
        slice(raw, 4, 256),
        header & 0x3FF == TAG_DISTRIBUTE_DOC_DATA && header >> 20 == 256,
    ) else {
        return Err(ConvertError::at(
            "CONVERT-HWP-DISTRIBUTION",
            at,
            "the section does not start with a 256-byte DISTRIBUTE_DOC_DATA record".into(),
        ));
    };
    let seed = le32(payload, 0).unwrap_or(0);
    let mut rand = MsvcRand(seed);
    let mut mask = Vec::with_capacity(256);
    while mask.len() < 256 {
        let byte = (rand.next() & 0xFF) as u8;
        let run = (rand.next() & 0xF) as usize + 1;
        mask.extend(std::iter::repeat_n(byte, run));
    }
    let decoded: Vec<u8> = payload.iter().zip(&mask).map(|(p, m)| p ^ m).collect();
    let key_at = 4 + (seed & 0xF) as usize;
    let cipher = slice(&decoded, key_at, 16)
        .and_then(|key| aes::Aes128::new_from_slice(key).ok())
        .ok_or_else(|| {
            ConvertError::at(
                "CONVERT-HWP-DISTRIBUTION",
                at.clone(),
                "no key in the distribution data".into(),
            )
        })?;
    let body = raw.get(260..).unwrap_or_default();
    if !body.len().is_multiple_of(16) {
        return Err(ConvertError::at(
            "CONVERT-HWP-DISTRIBUTION",
            at,
            format!(
                "{} encrypted bytes are not whole 16-byte AES blocks",
                body.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(body.len());
    for chunk in body.chunks_exact(16) {
        let mut block = aes::Block::default();
        block.copy_from_slice(chunk);
        cipher.decrypt_block(&mut block);
        out.extend_from_slice(&block);
    }
    Ok(out)
}

fn inflate(raw: &[u8], path: &str, ctx: &ScanContext) -> Result<Vec<u8>, ConvertError> {
    let cap = ctx.inflate_cap(raw.len()) as u64;
    let (out, result) = inflate_partial(raw, Framing::Raw, cap);
    match result {
        Ok(_) => Ok(out),
        Err(InflateError::OverCap { .. }) => Err(ConvertError::at(
            "CONVERT-HWP-DEFLATE-RATIO",
            format!("stream {path}"),
            format!(
                "the section inflates past {cap} bytes from {} (the ratio or memory cap)",
                raw.len()
            ),
        )),
        Err(e) => Err(ConvertError::at(
            "CONVERT-HWP-DEFLATE",
            format!("stream {path}"),
            format!("the compressed section is broken: {e}"),
        )),
    }
}

/// Appends the paragraphs of one inflated section to `text`.
fn section_text(
    content: &[u8],
    path: &str,
    text: &mut String,
    ctx: &mut ScanContext,
) -> Result<(), ConvertError> {
    let mut pos = 0usize;
    // A paragraph header whose text record has not come yet.
    let mut open_paragraph = false;
    while pos < content.len() {
        let at = format!("stream {path}, record at offset {pos}");
        check_time(ctx, PREFIX, &at)?;
        let Some(h) = le32(content, pos) else {
            return Err(ConvertError::at(
                "CONVERT-HWP-RECORD",
                at,
                "the section ends inside a record header".into(),
            ));
        };
        let tag = h & 0x3FF;
        let mut size = (h >> 20) as usize;
        let mut body_at = pos + 4;
        if size == 0xFFF {
            let Some(ext) = le32(content, body_at) else {
                return Err(ConvertError::at(
                    "CONVERT-HWP-RECORD",
                    at,
                    "the section ends inside an extended record size".into(),
                ));
            };
            size = ext as usize;
            body_at += 4;
        }
        let Some(body) = slice(content, body_at, size) else {
            return Err(ConvertError::at(
                "CONVERT-HWP-RECORD",
                at,
                format!(
                    "a record of {size} bytes runs past the end of the section ({} bytes left)",
                    content.len().saturating_sub(body_at)
                ),
            ));
        };
        match tag {
            TAG_PARA_HEADER => {
                if open_paragraph {
                    text.push('\n');
                }
                open_paragraph = true;
            }
            TAG_PARA_TEXT => {
                para_text(body, text).map_err(|unit| {
                    ConvertError::at(
                        "CONVERT-HWP-PARA-TEXT",
                        at.clone(),
                        format!(
                            "the control at code unit {unit} needs 8 units and the paragraph text ends first"
                        ),
                    )
                })?;
                open_paragraph = false;
            }
            _ => {}
        }
        check_size(text, ctx, PREFIX, &at)?;
        pos = body_at + size;
    }
    if open_paragraph {
        text.push('\n');
    }
    Ok(())
}

/// Decodes one `HWPTAG_PARA_TEXT` body as a line of `text`; `Err` is the code unit of a
/// control cut short.
fn para_text(body: &[u8], text: &mut String) -> Result<(), usize> {
    let units: Vec<u16> = utf16_units(body).collect();
    let mut run: Vec<u16> = Vec::new();
    let mut i = 0usize;
    let mut ended = false;
    while let Some(&u) = units.get(i) {
        if u >= 32 {
            run.push(u);
            i += 1;
            continue;
        }
        push_utf16(text, run.drain(..));
        match u {
            1..=9 | 11 | 12 | 14..=23 => {
                if i + 8 > units.len() {
                    return Err(i);
                }
                if u == 9 {
                    text.push('\t');
                }
                i += 8;
                continue;
            }
            10 => text.push('\n'),
            13 => {
                ended = true;
                break;
            }
            24 => text.push('-'),
            30 | 31 => text.push(' '),
            _ => {}
        }
        i += 1;
    }
    if !ended {
        push_utf16(text, run.drain(..));
    }
    text.push('\n');
    Ok(())
}

/// Top-level streams and storages an HWP copy keeps (`BinData` is sorted item by item).
const KEPT: [&str; 8] = [
    "FileHeader",
    "DocInfo",
    "BodyText",
    "ViewText",
    "PrvText",
    "PrvImage",
    "DocOptions",
    "\u{5}HwpSummaryInformation",
];
/// Picture formats a `BinData` item may keep.
const PICTURES: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "gif"];

/// What an HWP copy does with an entry: kept, dropped, or (a `BinData` item that is not a
/// picture) kept under its name with empty content, so `DocInfo`'s `BIN_DATA` records
/// still name an existing stream.
fn policy(e: &DirEntry) -> Keep {
    let p = e.path.as_str();
    let first = p.split('/').next().unwrap_or_default();
    if first.eq_ignore_ascii_case("Scripts") {
        return if cfb_write::top(p) {
            Keep::Drop("scripts (JScript macros)")
        } else {
            Keep::Drop("stream of a dropped storage")
        };
    }
    if first.eq_ignore_ascii_case("BinData") || KEPT.iter().any(|k| k.eq_ignore_ascii_case(first)) {
        Keep::Yes
    } else {
        Keep::Drop("storage or stream the document does not need")
    }
}

/// Whether a `BinData` item is a picture kept as it is.
fn picture(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| PICTURES.iter().any(|p| p.eq_ignore_ascii_case(ext)))
}

/// The content an emptied `BinData` item gets: an OLE item its 4-byte size and an empty
/// compound file, anything else nothing; raw-deflated when the document is compressed.
fn emptied(name: &str, compressed: bool) -> Result<Vec<u8>, ConvertError> {
    let mut plain = Vec::new();
    if name.to_ascii_lowercase().ends_with(".ole") {
        let empty = cfb_write::Compound::new(cfb_write::Meta::default())
            .write()
            .map_err(|w| ConvertError::at("CONVERT-HWP-WRITE", name.into(), w.to_string()))?;
        plain.extend_from_slice(&(empty.len() as u32).to_le_bytes());
        plain.extend_from_slice(&empty);
    }
    if !compressed {
        return Ok(plain);
    }
    use std::io::Write as _;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&plain)
        .and_then(|()| enc.finish())
        .map_err(|e| ConvertError::at("CONVERT-HWP-WRITE", name.into(), e.to_string()))
}

/// The same-format copy of an HWP 5.0 document: the rendition first (a failure there is
/// the conversion's finding, a protected document is refused), then the compound file
/// without `Scripts` (the document's `JScript`) and with only the [`KEPT`] streams; a
/// `BinData` item that is not a picture (an OLE object, PostScript, anything else) keeps
/// its name, so `DocInfo` stays consistent, but is emptied (an OLE object becomes an
/// empty compound file). The `FileHeader`'s "scripts saved" flag (bit 3) is cleared in
/// place. A document with PostScript items (`.eps`, `.ps`: an item's name gives its type,
/// so emptying it is not enough, and dropping it leaves `DocInfo` naming a missing
/// stream) keeps the text rendition.
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let mut rendition = render(data, limits)?;
    let mut ctx = ScanContext::new(limits, data.len());
    let cfb = rendition::open(data, &mut ctx, PREFIX)?;
    // PostScript is recognised by its item name: an emptied `.eps` item would still be one.
    if let Some(eps) = cfb.entries.iter().find(|e| {
        let p = e.path.to_ascii_lowercase();
        e.reachable && p.starts_with("bindata/") && (p.ends_with(".eps") || p.ends_with(".ps"))
    }) {
        rendition.removed.insert(
            0,
            Removed {
                what:
                    "no same-format copy: the document embeds PostScript (text rendition instead)"
                        .into(),
                location: format!("stream {}", eps.path),
            },
        );
        return Ok(rendition);
    }
    let compressed = rendition::stream(data, &cfb, "FileHeader", &mut ctx, PREFIX)?
        .and_then(|h| le32(&h, 36))
        .is_some_and(|f| f & 1 != 0);
    let mut edit = |path: &str, bytes: &mut Vec<u8>, removed: &mut Vec<Removed>| {
        if path.eq_ignore_ascii_case("FileHeader") {
            if let Some(flags) = bytes.get_mut(36) {
                *flags &= !0x08;
            }
        } else if path.len() > 8
            && path
                .get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("BinData/"))
            && !picture(path)
        {
            *bytes = emptied(path, compressed)?;
            removed.push(Removed {
                what: if path.to_ascii_lowercase().ends_with(".ole") {
                    "embedded OLE object (replaced by an empty compound file)".into()
                } else {
                    "embedded binary data that is not a picture (emptied)".into()
                },
                location: format!("stream {path}"),
            });
        }
        Ok(())
    };
    cfb_write::copy_as(
        data,
        &cfb,
        &mut ctx,
        PREFIX,
        FileType::Hwp,
        &policy,
        &mut edit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::cfb::build::cfb;

    fn record(tag: u32, level: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if body.len() >= 0xFFF {
            out.extend_from_slice(&(tag | (level << 10) | (0xFFF << 20)).to_le_bytes());
            out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        } else {
            let size = u32::try_from(body.len()).unwrap();
            out.extend_from_slice(&(tag | (level << 10) | (size << 20)).to_le_bytes());
        }
        out.extend_from_slice(body);
        out
    }

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// An 8-unit control `code` (its payload a fake control id).
    fn control(code: u16) -> Vec<u8> {
        let mut units = vec![code];
        units.extend_from_slice(&[0x6c74, 0x2062, 0, 0, 0, 0, code]);
        units.iter().flat_map(|u| u.to_le_bytes()).collect()
    }

    fn paragraph(parts: &[&[u8]]) -> Vec<u8> {
        let mut body = parts.concat();
        body.extend_from_slice(&13u16.to_le_bytes());
        let mut out = record(TAG_PARA_HEADER, 0, &[0; 22]);
        out.extend(record(TAG_PARA_TEXT, 1, &body));
        out.extend(record(0x10 + 52, 1, &[0; 8])); // PARA_CHAR_SHAPE
        out
    }

    fn file_header(flags: u32) -> Vec<u8> {
        let mut h = vec![0u8; 256];
        h[..SIGNATURE.len()].copy_from_slice(SIGNATURE);
        h[32..36].copy_from_slice(&0x0500_0006u32.to_le_bytes());
        h[36..40].copy_from_slice(&flags.to_le_bytes());
        h
    }

    fn hwp(flags: u32, sections: &[Vec<u8>]) -> Vec<u8> {
        let header = file_header(flags);
        let names: Vec<String> = (0..sections.len())
            .map(|n| format!("BodyText/Section{n}"))
            .collect();
        let mut streams: Vec<(&str, &[u8])> = vec![("FileHeader", &header)];
        streams.push(("DocInfo", b"\0\0\0\0"));
        for (name, s) in names.iter().zip(sections) {
            streams.push((name, s));
        }
        streams.push(("Scripts/DefaultJScript", b"evil()"));
        cfb(&streams)
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        miniz_oxide::deflate::compress_to_vec(data, 6)
    }

    fn text_of(data: &[u8]) -> String {
        let d = render(data, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        String::from_utf8(d.bytes).unwrap()
    }

    fn failure_code(data: &[u8]) -> (String, String) {
        match render(data, &Limits::default()) {
            Err(ConvertError::Failed(f)) => (f[0].code.clone(), f[0].location.clone()),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn compressed_sections_give_one_line_per_paragraph() {
        let mut s0 = paragraph(&[&utf16("송금 확인서")]);
        // A table (extended control 11) inside the line, then a tab (inline control 9).
        s0.extend(paragraph(&[
            &utf16("계좌"),
            &control(11),
            &utf16("번호"),
            &control(9),
            &utf16("123"),
        ]));
        // An empty paragraph: a header and no text record.
        s0.extend(record(TAG_PARA_HEADER, 0, &[0; 22]));
        s0.extend(paragraph(&[&utf16("a"), &10u16.to_le_bytes(), &utf16("b")]));
        let s1 = paragraph(&[&utf16("두 번째 구역")]);
        let data = hwp(1, &[deflate(&s0), deflate(&s1)]);
        assert_eq!(
            text_of(&data),
            "송금 확인서\n계좌번호\t123\n\na\nb\n두 번째 구역\n"
        );
        let d = render(&data, &Limits::default()).unwrap();
        assert!(
            d.removed
                .iter()
                .any(|r| r.location == "stream Scripts/DefaultJScript"),
            "{:?}",
            d.removed
        );
        assert!(!d.removed.iter().any(|r| r.location.contains("Section")));
    }

    #[test]
    fn uncompressed_section_and_extended_size_record() {
        let long = "가".repeat(3000);
        let s0 = paragraph(&[&utf16(&long)]);
        assert!(s0.len() > 0xFFF + 30);
        let data = hwp(0, &[s0]);
        assert_eq!(text_of(&data), format!("{long}\n"));
    }

    /// A distribution document's `ViewText` section holding `section` (deflated): the
    /// 256-byte distribution data with the AES key masked as the format does, then the
    /// section AES-128-ECB encrypted (zero-padded to whole blocks).
    fn distribution_section(section: &[u8], seed: u32, key: [u8; 16]) -> Vec<u8> {
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let mut decoded = [0x5Au8; 256];
        let at = 4 + (seed & 0xF) as usize;
        decoded[at..at + 16].copy_from_slice(&key);
        let mut rand = MsvcRand(seed);
        let mut mask = Vec::new();
        while mask.len() < 256 {
            let byte = (rand.next() & 0xFF) as u8;
            let run = (rand.next() & 0xF) as usize + 1;
            mask.extend(std::iter::repeat_n(byte, run));
        }
        let mut payload: Vec<u8> = decoded.iter().zip(&mask).map(|(d, m)| d ^ m).collect();
        // The seed itself is stored as it is.
        payload[..4].copy_from_slice(&seed.to_le_bytes());
        let mut out = record(TAG_DISTRIBUTE_DOC_DATA, 0, &payload);
        let mut plain = deflate(section);
        plain.resize(plain.len().div_ceil(16) * 16, 0);
        let cipher = aes::Aes128::new_from_slice(&key).unwrap();
        for chunk in plain.chunks_exact(16) {
            let mut block = aes::Block::default();
            block.copy_from_slice(chunk);
            cipher.encrypt_block(&mut block);
            out.extend_from_slice(&block);
        }
        out
    }

    #[test]
    fn distribution_documents_are_decrypted() {
        let view = distribution_section(
            &paragraph(&[&utf16("배포용 문서")]),
            0x5BF7_64BE,
            *b"0123456789abcdef",
        );
        // BodyText holds a notice; the text is in ViewText.
        let header = file_header(1 | 4);
        let notice = deflate(&paragraph(&[&utf16("notice")]));
        let data = cfb(&[
            ("FileHeader", &header),
            ("BodyText/Section0", &notice),
            ("ViewText/Section0", &view),
        ]);
        let d = render(&data, &Limits::default()).unwrap();
        assert_eq!(String::from_utf8(d.bytes).unwrap(), "배포용 문서\n");
        assert!(
            d.removed
                .iter()
                .any(|r| r.location == "stream BodyText/Section0")
        );
        assert!(
            d.removed
                .iter()
                .any(|r| r.what.starts_with("distribution document"))
        );
        // Cut inside an AES block; and no distribution data record.
        let mut cut = view.clone();
        cut.truncate(cut.len() - 3);
        let broken = cfb(&[("FileHeader", &header), ("ViewText/Section0", &cut)]);
        assert_eq!(failure_code(&broken).0, "CONVERT-HWP-DISTRIBUTION");
        let plain = cfb(&[("FileHeader", &header), ("ViewText/Section0", &notice)]);
        assert_eq!(failure_code(&plain).0, "CONVERT-HWP-DISTRIBUTION");
    }

    #[test]
    fn protected_documents_are_encrypted() {
        for flags in [1 | 2, 1 | 0x10] {
            let data = hwp(flags, &[deflate(&paragraph(&[&utf16("x")]))]);
            assert_eq!(
                render(&data, &Limits::default()).unwrap_err(),
                ConvertError::Encrypted(FileType::Hwp)
            );
        }
    }

    #[test]
    fn failures_name_code_stream_and_offset() {
        // A control cut short.
        let mut cut = record(TAG_PARA_HEADER, 0, &[0; 22]);
        let mut body = utf16("ab");
        body.extend_from_slice(&control(11)[..6]);
        cut.extend(record(TAG_PARA_TEXT, 1, &body));
        let (code, at) = failure_code(&hwp(0, &[cut]));
        assert_eq!(code, "CONVERT-HWP-PARA-TEXT");
        assert_eq!(at, "stream BodyText/Section0, record at offset 26");
        // A record running past the end.
        let mut past = paragraph(&[&utf16("x")]);
        past.extend_from_slice(&(TAG_PARA_TEXT | (100 << 20)).to_le_bytes());
        past.extend_from_slice(&[0; 10]);
        let at_offset = paragraph(&[&utf16("x")]).len();
        let (code, at) = failure_code(&hwp(0, &[past]));
        assert_eq!(code, "CONVERT-HWP-RECORD");
        assert_eq!(
            at,
            format!("stream BodyText/Section0, record at offset {at_offset}")
        );
        // Broken deflate data.
        let (code, at) = failure_code(&hwp(1, &[vec![0xFF; 40]]));
        assert_eq!(code, "CONVERT-HWP-DEFLATE");
        assert_eq!(at, "stream BodyText/Section0");
        // No body at all, no signature.
        assert_eq!(failure_code(&hwp(1, &[])).0, "CONVERT-HWP-BODYTEXT");
        let bad = cfb(&[("FileHeader", b"HWP Document"), ("BodyText/Section0", b"")]);
        assert_eq!(failure_code(&bad).0, "CONVERT-HWP-FILEHEADER");
        assert_eq!(failure_code(b"not a compound file").0, "CONVERT-HWP-CFB");
    }

    #[test]
    fn a_bomb_stops_at_the_memory_cap() {
        let s0 = paragraph(&[&utf16(&"x".repeat(2000))]).repeat(200);
        let data = hwp(1, &[deflate(&s0)]);
        let limits = Limits {
            memory_bytes: 200_000,
            ..Limits::default()
        };
        match render(&data, &limits) {
            Err(ConvertError::Failed(f)) => assert_eq!(f[0].code, "CONVERT-HWP-DEFLATE-RATIO"),
            other => panic!("{other:?}"),
        }
    }

    /// The streams of a compound file, sorted by path.
    fn streams_of(file: &[u8]) -> Vec<(String, Vec<u8>)> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, file.len());
        let cfb = crate::container::cfb::Cfb::parse(file, &mut ctx).unwrap();
        let mut out: Vec<(String, Vec<u8>)> = cfb
            .entries
            .iter()
            .filter(|e| e.reachable && e.kind == crate::container::cfb::EntryKind::Stream)
            .map(|e| (e.path.clone(), cfb.read_stream(file, e, &mut ctx).unwrap()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn an_hwp_copy_loses_its_scripts_and_ole_objects_and_keeps_pictures() {
        // Compressed, "scripts saved" (bit 3).
        let header = file_header(1 | 8);
        let section = deflate(&paragraph(&[&utf16("송금 확인서")]));
        let jpg = [1u8, 2, 3, 4, 5, 6, 7];
        // A DefaultJScript stream: length-prefixed UTF-16 strings, a handler that does work.
        let source = "function OnDocument_Open() { Run(\"calc\"); }";
        let mut script = (source.encode_utf16().count() as u32)
            .to_le_bytes()
            .to_vec();
        script.extend(utf16(source));
        let ole = deflate(&[4, 0, 0, 0, 1, 2, 3, 4]);
        let file = cfb(&[
            ("FileHeader", &header),
            ("DocInfo", &deflate(b"")),
            ("BodyText/Section0", &section),
            ("BinData/BIN0001.jpg", &jpg),
            ("BinData/BIN0002.OLE", &ole),
            ("PrvText", &utf16("송금")),
            ("Scripts/DefaultJScript", &deflate(&script)),
            ("Scripts/JScriptVersion", &[1, 0, 0, 0]),
        ]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Hwp);
        let after = streams_of(&d.bytes);
        let names: Vec<&str> = after.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "BinData/BIN0001.jpg",
                "BinData/BIN0002.OLE",
                "BodyText/Section0",
                "DocInfo",
                "FileHeader",
                "PrvText"
            ]
        );
        assert_eq!(after[0].1, jpg, "the picture is kept as it is");
        assert_eq!(after[2].1, section);
        // The OLE item: its size and an empty compound file, deflated as the document is.
        let (plain, _) = inflate_partial(&after[1].1, Framing::Raw, 1 << 20);
        let empty = streams_of(&plain[4..]);
        assert!(empty.is_empty());
        assert_eq!(le32(&plain, 0).unwrap() as usize, plain.len() - 4);
        // The header's "scripts saved" flag is cleared, nothing else.
        let mut want = header.clone();
        want[36] &= !8;
        assert_eq!(after[4].1, want);
        let whats: Vec<(&str, &str)> = d
            .removed
            .iter()
            .map(|r| (r.what.as_str(), r.location.as_str()))
            .collect();
        assert!(
            whats.contains(&("scripts (JScript macros)", "storage Scripts")),
            "{whats:?}"
        );
        assert!(
            whats.contains(&(
                "embedded OLE object (replaced by an empty compound file)",
                "stream BinData/BIN0002.OLE"
            )),
            "{whats:?}"
        );
        assert_eq!(text_of(&d.bytes), text_of(&file));
        let r = crate::scan_bytes(&d.bytes, Some("a.hwp"), &Limits::default());
        assert_eq!(r.detected_type, FileType::Hwp);
        assert!(
            r.findings.iter().all(|f| f.code != "HWP-SCRIPT"),
            "{:?}",
            r.findings
        );
        let r0 = crate::scan_bytes(&file, Some("a.hwp"), &Limits::default());
        assert!(
            r0.findings.iter().any(|f| f.code == "HWP-SCRIPT"),
            "{:?}",
            r0.findings
        );
    }

    #[test]
    fn an_hwp_with_postscript_keeps_its_rendition() {
        let header = file_header(0);
        let file = cfb(&[
            ("FileHeader", &header),
            ("DocInfo", b""),
            ("BodyText/Section0", &paragraph(&[&utf16("x")])),
            ("BinData/BIN0001.eps", b"%!PS"),
        ]);
        let d = rebuild(&file, &Limits::default()).unwrap();
        assert_eq!(d.file_type, FileType::Text);
        assert_eq!(d.removed[0].location, "stream BinData/BIN0001.eps");
    }
}
