//! Windows metafiles (WMF, EMF), which the type detector leaves unknown, rebuilt record by
//! record: every record's size checked against the file, the drawing records kept as they
//! are, and the records that carry anything but drawing dropped — WMF `META_ESCAPE`
//! (0x0626: printer escapes, `SETABORTPROC`'s code pointer, embedded EMF and comments) and
//! EMF `EMR_GDICOMMENT` (70: comments, embedded EMF+ records and EMF spool data), and data
//! after the end-of-file record. The header's size and record counts are written anew (and
//! a WMF placeable header's checksum). The drawing records themselves (bitmaps included)
//! are copied, not re-interpreted. An EMF+ picture drawn only through its comments is left
//! with the EMF records of its fallback: a reader then shows that, or nothing.
//!
//! Failures are `CONVERT-WMF-HEADER`/`CONVERT-EMF-HEADER` (no valid header),
//! `-RECORD` (a record shorter than its header or running past the file: names its offset),
//! `-EOF` (no end-of-file record), `-LIMIT` (more records than 100 × `max_entries`).

use super::{ConvertError, Disarmed, Removed};
use crate::bytes::{le16, le32, slice};
use crate::filetype::FileType;
use crate::limits::Limits;

const PLACEABLE_KEY: u32 = 0x9AC6_CDD7;
const META_ESCAPE: u16 = 0x0626;
const META_EOF: u16 = 0x0000;
const EMR_HEADER: u32 = 1;
const EMR_EOF: u32 = 14;
const EMR_GDICOMMENT: u32 = 70;
const EMF_SIGNATURE: u32 = 0x464D_4520;

fn fail(code: &str, at: String, message: String) -> ConvertError {
    ConvertError::at(code, at, message)
}

/// Whether `data` starts like a WMF (placeable or not) or an EMF.
pub(super) fn sniff(data: &[u8]) -> bool {
    le32(data, 0) == Some(PLACEABLE_KEY)
        || wmf_header_at(data, 0)
        || (le32(data, 0) == Some(EMR_HEADER) && le32(data, 40) == Some(EMF_SIGNATURE))
}

/// A WMF `META_HEADER` at `at`: type 1 or 2, header size 9 words, version 0x0100/0x0300.
fn wmf_header_at(data: &[u8], at: usize) -> bool {
    matches!(le16(data, at), Some(1 | 2))
        && le16(data, at + 2) == Some(9)
        && matches!(le16(data, at + 4), Some(0x0100 | 0x0300))
}

/// Rebuilds a WMF or EMF.
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    if le32(data, 0) == Some(EMR_HEADER) {
        emf(data, limits)
    } else {
        wmf(data, limits)
    }
}

fn record_limit(limits: &Limits) -> u64 {
    limits.max_entries.saturating_mul(100)
}

fn wmf(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let placeable = le32(data, 0) == Some(PLACEABLE_KEY);
    let start = if placeable { 22 } else { 0 };
    if !wmf_header_at(data, start) {
        return Err(fail(
            "CONVERT-WMF-HEADER",
            format!("byte {start}"),
            "no META_HEADER (type 1 or 2, 9 words, version 0x0100 or 0x0300)".into(),
        ));
    }
    let header = slice(data, start, 18).unwrap_or_default();
    let mut records: Vec<&[u8]> = Vec::new();
    let mut removed = Vec::new();
    let mut pos = start + 18;
    let mut max_words = 3u32;
    let mut count = 0u64;
    let end = loop {
        let at = format!("record at byte {pos}");
        let (Some(words), Some(function)) = (le32(data, pos), le16(data, pos + 4)) else {
            return Err(fail(
                "CONVERT-WMF-EOF",
                at,
                "the file ends without a META_EOF record".into(),
            ));
        };
        let len = usize::try_from(words)
            .unwrap_or(usize::MAX)
            .saturating_mul(2);
        let Some(record) = slice(data, pos, len).filter(|_| words >= 3) else {
            return Err(fail(
                "CONVERT-WMF-RECORD",
                at,
                format!(
                    "a record of {words} words is shorter than its header or runs past the file"
                ),
            ));
        };
        count += 1;
        if count > record_limit(limits) {
            return Err(fail(
                "CONVERT-WMF-LIMIT",
                at,
                format!("more than {} records", record_limit(limits)),
            ));
        }
        if function == META_ESCAPE {
            let escape = le16(record, 6).unwrap_or(0);
            removed.push(Removed {
                what: format!("escape record (function {escape:#06x}: printer escape, comment or embedded data)"),
                location: at,
            });
        } else {
            max_words = max_words.max(words);
            records.push(record);
        }
        pos += len;
        if function == META_EOF {
            break pos;
        }
    };
    if end < data.len() {
        removed.push(Removed {
            what: format!("{} bytes after the META_EOF record", data.len() - end),
            location: format!("byte {end}"),
        });
    }
    let mut out = Vec::with_capacity(data.len());
    if let Some(p) = slice(data, 0, 22).filter(|_| placeable) {
        let mut p = p.to_vec();
        let checksum = (0..10).fold(0u16, |acc, i| acc ^ le16(&p, i * 2).unwrap_or(0));
        if let Some(c) = p.get_mut(20..22) {
            c.copy_from_slice(&checksum.to_le_bytes());
        }
        out.extend_from_slice(&p);
    }
    let total_words = 9 + records.iter().map(|r| r.len() / 2).sum::<usize>();
    let mut h = header.to_vec();
    if let Some(size) = h.get_mut(6..10) {
        size.copy_from_slice(&u32::try_from(total_words).unwrap_or(u32::MAX).to_le_bytes());
    }
    if let Some(max) = h.get_mut(12..16) {
        max.copy_from_slice(&max_words.to_le_bytes());
    }
    out.extend_from_slice(&h);
    for r in records {
        out.extend_from_slice(r);
    }
    Ok(Disarmed {
        bytes: out,
        file_type: FileType::Unknown,
        removed,
    })
}

fn emf(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    if le32(data, 40) != Some(EMF_SIGNATURE) || le32(data, 4).is_none_or(|s| s < 88) {
        return Err(fail(
            "CONVERT-EMF-HEADER",
            "record at byte 0".into(),
            "no EMR_HEADER with the \" EMF\" signature".into(),
        ));
    }
    let mut records: Vec<&[u8]> = Vec::new();
    let mut removed = Vec::new();
    let mut pos = 0usize;
    let mut count = 0u64;
    let end = loop {
        let at = format!("record at byte {pos}");
        let (Some(kind), Some(size)) = (le32(data, pos), le32(data, pos + 4)) else {
            return Err(fail(
                "CONVERT-EMF-EOF",
                at,
                "the file ends without an EMR_EOF record".into(),
            ));
        };
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        let Some(record) = slice(data, pos, len).filter(|_| len >= 8 && len % 4 == 0) else {
            return Err(fail(
                "CONVERT-EMF-RECORD",
                at,
                format!(
                    "a record of {size} bytes is shorter than its header, not a multiple of 4, or runs past the file"
                ),
            ));
        };
        count += 1;
        if count > record_limit(limits) {
            return Err(fail(
                "CONVERT-EMF-LIMIT",
                at,
                format!("more than {} records", record_limit(limits)),
            ));
        }
        if kind == EMR_GDICOMMENT {
            let ident = le32(record, 12).unwrap_or(0);
            let what = match ident {
                0x2B46_4D45 => "EMF+ records",
                0x4349_4447 => "public comment (embedded metafile or other data)",
                0x0000_0000 => "spool data",
                _ => "private comment",
            };
            removed.push(Removed {
                what: format!("comment record: {what}"),
                location: at,
            });
        } else if pos > 0 && kind == EMR_HEADER {
            removed.push(Removed {
                what: "a second header record".into(),
                location: at,
            });
        } else {
            records.push(record);
        }
        pos += len;
        if kind == EMR_EOF {
            break pos;
        }
    };
    if end < data.len() {
        removed.push(Removed {
            what: format!("{} bytes after the EMR_EOF record", data.len() - end),
            location: format!("byte {end}"),
        });
    }
    let total: usize = records.iter().map(|r| r.len()).sum();
    let count = records.len();
    let mut out = Vec::with_capacity(total);
    for (i, r) in records.into_iter().enumerate() {
        let start = out.len();
        out.extend_from_slice(r);
        if i == 0 {
            if let Some(b) = out.get_mut(start + 48..start + 52) {
                b.copy_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes());
            }
            if let Some(b) = out.get_mut(start + 52..start + 56) {
                b.copy_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
            }
        }
    }
    Ok(Disarmed {
        bytes: out,
        file_type: FileType::Unknown,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wmf_record(function: u16, params: &[u8]) -> Vec<u8> {
        let words = u32::try_from(3 + params.len() / 2).unwrap();
        let mut r = words.to_le_bytes().to_vec();
        r.extend_from_slice(&function.to_le_bytes());
        r.extend_from_slice(params);
        r
    }

    fn wmf_file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut placeable = PLACEABLE_KEY.to_le_bytes().to_vec();
        placeable.extend_from_slice(&[0; 18]);
        let mut h = vec![1, 0, 9, 0, 0, 3];
        h.extend_from_slice(&[0; 12]);
        let mut f = placeable;
        f.extend(h);
        for r in records {
            f.extend_from_slice(r);
        }
        f
    }

    #[test]
    fn wmf_escapes_go_and_the_header_is_rewritten() {
        let line = wmf_record(0x0213, &[10, 0, 20, 0]);
        // SETABORTPROC (escape 9) with a code pointer.
        let escape = wmf_record(META_ESCAPE, &[9, 0, 4, 0, 0x41, 0x41, 0x41, 0x41]);
        let mut data = wmf_file(&[line.clone(), escape, wmf_record(META_EOF, &[])]);
        data.extend_from_slice(b"trailing");
        assert!(sniff(&data));
        let d = rebuild(&data, &Limits::default()).unwrap();
        let expected = wmf_file(&[line, wmf_record(META_EOF, &[])]);
        assert_eq!(d.bytes.len(), expected.len());
        assert_eq!(&d.bytes[22 + 18..], &expected[22 + 18..]);
        // Size in words: header 9 + 5 + 3; max record 5 words; the placeable checksum.
        assert_eq!(le32(&d.bytes, 22 + 6), Some(17));
        assert_eq!(le32(&d.bytes, 22 + 12), Some(5));
        let checksum = (0..10).fold(0u16, |a, i| a ^ le16(&d.bytes, i * 2).unwrap());
        assert_eq!(le16(&d.bytes, 20), Some(checksum));
        assert!(d.removed.iter().any(|r| r.what.contains("0x0009")));
        assert!(
            d.removed
                .iter()
                .any(|r| r.what.contains("after the META_EOF"))
        );
        // A record running past the file.
        let mut cut = wmf_file(&[wmf_record(0x0213, &[10, 0, 20, 0])]);
        cut.truncate(cut.len() - 2);
        assert!(matches!(rebuild(&cut, &Limits::default()),
            Err(ConvertError::Failed(f)) if f[0].code == "CONVERT-WMF-RECORD"));
    }

    fn emf_record(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut r = kind.to_le_bytes().to_vec();
        r.extend_from_slice(&u32::try_from(8 + body.len()).unwrap().to_le_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn emf_comments_go_and_the_counts_are_rewritten() {
        let mut header = vec![0u8; 80];
        header[32..36].copy_from_slice(&EMF_SIGNATURE.to_le_bytes());
        let comment = emf_record(EMR_GDICOMMENT, b"\x08\x00\x00\x00EMF+\x01\x40\x00\x00");
        let ellipse = emf_record(42, &[0; 16]);
        let data = [
            emf_record(EMR_HEADER, &header),
            comment,
            ellipse.clone(),
            emf_record(EMR_EOF, &[0; 12]),
        ]
        .concat();
        assert!(sniff(&data));
        let d = rebuild(&data, &Limits::default()).unwrap();
        assert_eq!(d.bytes.len(), 88 + ellipse.len() + 20);
        assert_eq!(
            le32(&d.bytes, 48),
            Some(u32::try_from(d.bytes.len()).unwrap())
        );
        assert_eq!(le32(&d.bytes, 52), Some(3));
        assert_eq!(d.removed[0].what, "comment record: EMF+ records");
        let no_eof = [emf_record(EMR_HEADER, &header), ellipse].concat();
        assert!(matches!(rebuild(&no_eof, &Limits::default()),
            Err(ConvertError::Failed(f)) if f[0].code == "CONVERT-EMF-EOF"));
    }
}
