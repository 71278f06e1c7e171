//! JPEG rebuilt segment by segment with only what decoding needs: SOI, the JFIF APP0 and
//! Adobe APP14 headers, quantisation and Huffman tables, frame and scan headers, restart
//! intervals, the entropy-coded data, EOI. Comments, EXIF/XMP (APP1), ICC profiles (APP2),
//! Photoshop resources (APP13), other application segments and anything after EOI are
//! dropped. The entropy-coded data is copied as it is, not decoded and re-encoded: the
//! verifier checks the tables and headers it depends on.

use super::{ConvertError, Disarmed, Removed};
use crate::filetype::FileType;

/// Whether a segment with `marker` (and, for `APPn`, its identifier) is kept.
fn keep(marker: u8, body: &[u8]) -> bool {
    match marker {
        // DQT, DHT, DAC, DRI
        0xDB | 0xC4 | 0xCC | 0xDD => true,
        // SOF0-15 but DHT (C4), JPG (C8), DAC (CC)
        0xC0..=0xCF => marker != 0xC8,
        0xE0 => body.starts_with(b"JFIF\0") || body.starts_with(b"JFXX\0"),
        0xEE => body.starts_with(b"Adobe"),
        _ => false,
    }
}

fn name(marker: u8) -> String {
    match marker {
        0xFE => "comment (COM)".into(),
        0xE1 => "EXIF/XMP metadata (APP1)".into(),
        0xE2 => "ICC profile or FlashPix data (APP2)".into(),
        0xED => "Photoshop resources (APP13)".into(),
        0xE0..=0xEF => format!("application segment APP{}", marker - 0xE0),
        m => format!("segment 0xFF{m:02X}"),
    }
}

pub(super) fn rebuild(data: &[u8]) -> Result<Disarmed, ConvertError> {
    if data.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err(ConvertError::at(
            "CONVERT-JPEG-SOI",
            "byte 0".into(),
            "no start-of-image marker".into(),
        ));
    }
    let mut out = vec![0xFF, 0xD8];
    let mut removed = Vec::new();
    let (mut frame, mut scan) = (false, false);
    let mut at = 2usize;
    loop {
        // Fill bytes before a marker are legal.
        while data.get(at) == Some(&0xFF) && data.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (data.get(at), data.get(at + 1)) else {
            return Err(ConvertError::at(
                "CONVERT-JPEG-MARKER",
                format!("byte {at}"),
                "a marker was expected (or the file ends before EOI)".into(),
            ));
        };
        if marker == 0xD9 {
            out.extend([0xFF, 0xD9]);
            at += 2;
            break;
        }
        if matches!(marker, 0x01 | 0xD0..=0xD8) {
            return Err(ConvertError::at(
                "CONVERT-JPEG-MARKER",
                format!("byte {at}"),
                format!("marker 0xFF{marker:02X} outside a scan"),
            ));
        }
        let len = data
            .get(at + 2..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b: [u8; 2]| usize::from(u16::from_be_bytes(b)));
        let segment = data
            .get(at..at + 2 + len)
            .filter(|_| len >= 2)
            .ok_or_else(|| {
                ConvertError::at(
                    "CONVERT-JPEG-SEGMENT",
                    format!("{} at byte {at}", name(marker)),
                    format!("length {len} is below 2 or runs past the end"),
                )
            })?;
        let body = segment.get(4..).unwrap_or_default();
        at += 2 + len;
        if marker == 0xDA {
            if !frame {
                return Err(ConvertError::at(
                    "CONVERT-JPEG-STRUCTURE",
                    format!("byte {}", at - 2 - len),
                    "a scan before any frame header".into(),
                ));
            }
            scan = true;
            out.extend_from_slice(segment);
            // Entropy-coded data: up to the next marker that is not a stuffed 0xFF00 or a
            // restart marker.
            let start = at;
            while let Some(&b) = data.get(at) {
                if b == 0xFF {
                    match data.get(at + 1) {
                        Some(0x00 | 0xD0..=0xD7) => at += 2,
                        Some(0xFF) => at += 1,
                        _ => break,
                    }
                } else {
                    at += 1;
                }
            }
            out.extend_from_slice(data.get(start..at).unwrap_or_default());
            continue;
        }
        if keep(marker, body) {
            frame |= matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            out.extend_from_slice(segment);
        } else {
            removed.push(Removed {
                what: name(marker),
                location: format!("byte {}", at - 2 - len),
            });
        }
    }
    if !frame || !scan {
        return Err(ConvertError::at(
            "CONVERT-JPEG-STRUCTURE",
            "file".into(),
            "no frame header or no scan: nothing to decode".into(),
        ));
    }
    if at < data.len() {
        removed.push(Removed {
            what: format!("{} bytes after EOI", data.len() - at),
            location: format!("byte {at}"),
        });
    }
    Ok(Disarmed {
        bytes: out,
        file_type: FileType::Jpeg,
        removed,
    })
}
