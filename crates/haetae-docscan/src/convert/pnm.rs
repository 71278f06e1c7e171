//! Netpbm images (PBM/PGM/PPM, `P1`–`P6`), which the type detector leaves unknown, rebuilt:
//! the header read (magic, width, height, maximum value; whitespace and `#` comments between
//! the fields), every sample read — ASCII (`P1`–`P3`) or binary (`P4`–`P6`, 8 or 16 bits a
//! sample by the maximum value) — and checked against the maximum, and the picture written
//! anew in the binary form of its kind (`P4`, `P5`, `P6`) without comments and without
//! anything after the pixels. Only the first image of a multi-image file is kept (the rest
//! is listed as removed). Limits: the samples ≤ `memory_bytes`.
//!
//! Failures are `CONVERT-PNM-HEADER` (a field missing or out of range), `-SAMPLE` (an ASCII
//! sample that is not a number, or one above the maximum: names the sample),
//! `-TRUNCATED` (fewer samples than the header says), `-SIZE` (over the memory budget).

use super::{ConvertError, Disarmed, Removed};
use crate::filetype::FileType;
use crate::limits::Limits;

fn fail(code: &str, at: String, message: String) -> ConvertError {
    ConvertError::at(code, at, message)
}

/// Whether `data` starts like a Netpbm image (`P1`–`P6` and whitespace).
pub(super) fn sniff(data: &[u8]) -> bool {
    matches!(data, [b'P', b'1'..=b'6', w, ..] if w.is_ascii_whitespace() || *w == b'#')
}

/// A reader over the header's fields.
struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Fields<'_> {
    /// Skips whitespace and comments.
    fn skip(&mut self) {
        while let Some(&b) = self.data.get(self.pos) {
            if b == b'#' {
                while self
                    .data
                    .get(self.pos)
                    .is_some_and(|&c| c != b'\n' && c != b'\r')
                {
                    self.pos += 1;
                }
            } else if b.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The next decimal number (at most 10 digits).
    fn number(&mut self) -> Option<u64> {
        self.skip();
        let start = self.pos;
        while self.data.get(self.pos).is_some_and(u8::is_ascii_digit) && self.pos - start < 10 {
            self.pos += 1;
        }
        std::str::from_utf8(self.data.get(start..self.pos)?)
            .ok()?
            .parse()
            .ok()
    }
}

/// Rebuilds a Netpbm image.
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let kind = data.get(1).copied().unwrap_or(0);
    let mut f = Fields { data, pos: 2 };
    let header = |field: &str| {
        fail(
            "CONVERT-PNM-HEADER",
            "header".into(),
            format!("no valid {field}"),
        )
    };
    let width = f
        .number()
        .filter(|&w| w > 0)
        .ok_or_else(|| header("width"))?;
    let height = f
        .number()
        .filter(|&h| h > 0)
        .ok_or_else(|| header("height"))?;
    let bitmap = matches!(kind, b'1' | b'4');
    let max = if bitmap {
        1
    } else {
        f.number()
            .filter(|&m| (1..=65_535).contains(&m))
            .ok_or_else(|| header("maximum value (1..65535)"))?
    };
    let channels: u64 = if matches!(kind, b'3' | b'6') { 3 } else { 1 };
    let samples = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .filter(|&n| n.saturating_mul(2) <= limits.memory_bytes)
        .ok_or_else(|| {
            fail(
                "CONVERT-PNM-SIZE",
                "header".into(),
                format!(
                    "{width}×{height} pixels pass the memory budget of {} bytes",
                    limits.memory_bytes
                ),
            )
        })?;
    let samples = usize::try_from(samples).unwrap_or(usize::MAX);
    let wide = max > 255;
    let row_bytes = usize::try_from(width.div_ceil(8)).unwrap_or(usize::MAX);
    // The pixels: for a bitmap packed rows (P4), else samples of 1 or 2 bytes, big-endian.
    let mut pixels: Vec<u8> = Vec::new();
    let header_end = f.pos;
    let end;
    if kind >= b'4' {
        // Exactly one whitespace byte ends the header of a binary image.
        if !f.data.get(f.pos).is_some_and(u8::is_ascii_whitespace) {
            return Err(header("whitespace after the header"));
        }
        let start = f.pos + 1;
        let len = if bitmap {
            row_bytes.saturating_mul(usize::try_from(height).unwrap_or(usize::MAX))
        } else {
            samples.saturating_mul(if wide { 2 } else { 1 })
        };
        let Some(raw) = data.get(start..start.saturating_add(len)) else {
            return Err(fail(
                "CONVERT-PNM-TRUNCATED",
                format!("byte {start}"),
                format!(
                    "{len} bytes of pixels, {} in the file",
                    data.len().saturating_sub(start)
                ),
            ));
        };
        if !bitmap {
            for i in 0..samples {
                let v = if wide {
                    raw.get(2 * i..2 * i + 2).map_or(0, |p| {
                        u64::from(u16::from_be_bytes(p.try_into().unwrap_or_default()))
                    })
                } else {
                    raw.get(i).map_or(0, |&b| u64::from(b))
                };
                if v > max {
                    return Err(fail(
                        "CONVERT-PNM-SAMPLE",
                        format!("sample {i}"),
                        format!("{v} is above the maximum value {max}"),
                    ));
                }
            }
        }
        pixels.extend_from_slice(raw);
        end = start + len;
    } else {
        let out_len = if bitmap {
            row_bytes.saturating_mul(usize::try_from(height).unwrap_or(usize::MAX))
        } else {
            samples.saturating_mul(if wide { 2 } else { 1 })
        };
        pixels.resize(out_len, 0);
        for i in 0..samples {
            let v = if bitmap {
                // P1: one digit a pixel, whitespace optional.
                f.skip();
                let v = match f.data.get(f.pos) {
                    Some(b'0') => Some(0),
                    Some(b'1') => Some(1),
                    _ => None,
                };
                if v.is_some() {
                    f.pos += 1;
                }
                v
            } else {
                f.number()
            };
            let Some(v) = v else {
                f.skip();
                if f.pos >= data.len() {
                    return Err(fail(
                        "CONVERT-PNM-TRUNCATED",
                        format!("sample {i}"),
                        format!("the file ends after {i} of {samples} samples"),
                    ));
                }
                return Err(fail(
                    "CONVERT-PNM-SAMPLE",
                    format!("sample {i}"),
                    "not a number".into(),
                ));
            };
            if v > max {
                return Err(fail(
                    "CONVERT-PNM-SAMPLE",
                    format!("sample {i}"),
                    format!("{v} is above the maximum value {max}"),
                ));
            }
            if bitmap {
                let w = usize::try_from(width).unwrap_or(usize::MAX);
                let (row, col) = (i / w, i % w);
                if let Some(b) = pixels.get_mut(row * row_bytes + col / 8).filter(|_| v == 1) {
                    *b |= 0x80 >> (col % 8);
                }
            } else if wide {
                let b = u16::try_from(v).unwrap_or(u16::MAX).to_be_bytes();
                if let Some(p) = pixels.get_mut(2 * i..2 * i + 2) {
                    p.copy_from_slice(&b);
                }
            } else {
                if let Some(p) = pixels.get_mut(i) {
                    *p = u8::try_from(v).unwrap_or(u8::MAX);
                }
            }
        }
        end = f.pos.min(data.len());
    }
    let magic = match kind {
        b'1' | b'4' => "P4",
        b'2' | b'5' => "P5",
        _ => "P6",
    };
    let mut bytes = if bitmap {
        format!("{magic}\n{width} {height}\n").into_bytes()
    } else {
        format!("{magic}\n{width} {height}\n{max}\n").into_bytes()
    };
    bytes.extend_from_slice(&pixels);
    let mut removed = Vec::new();
    if data.get(2..header_end).is_some_and(|h| h.contains(&b'#')) {
        removed.push(Removed {
            what: "header comments".into(),
            location: "header".into(),
        });
    }
    let rest = data.get(end..).unwrap_or_default();
    if !rest.iter().all(u8::is_ascii_whitespace) {
        removed.push(Removed {
            what: format!(
                "{} bytes after the image (further images, other data)",
                data.len() - end
            ),
            location: format!("byte {end}"),
        });
    }
    Ok(Disarmed {
        bytes,
        file_type: FileType::Unknown,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_binary_images_are_rebuilt_binary() {
        let l = Limits::default();
        let d = rebuild(b"P2\n# made by hand\n3 1\n255\n0 128\n255\n", &l).unwrap();
        assert_eq!(d.bytes, b"P5\n3 1\n255\n\x00\x80\xff");
        let d = rebuild(b"P1\n4 2\n1010\n0 1 1 1\n", &l).unwrap();
        assert_eq!(d.bytes, b"P4\n4 2\n\xa0\x70");
        let mut ppm = b"P6 # rgb\n1 2 65535\n".to_vec();
        ppm.extend_from_slice(&[0, 1, 0, 2, 0, 3, 0xFF, 0xFF, 0, 0, 0x12, 0x34]);
        ppm.extend_from_slice(b"P6 1 1 255\n\x01\x02\x03");
        let d = rebuild(&ppm, &l).unwrap();
        assert_eq!(&d.bytes[..16], b"P6\n1 2\n65535\n\x00\x01\x00");
        assert_eq!(d.bytes.len(), 13 + 12);
        assert!(d.removed.iter().any(|r| r.what == "header comments"));
        assert!(d.removed.iter().any(|r| r.what.contains("after the image")));
        assert!(sniff(b"P5\n1 1\n255\n\x00") && !sniff(b"PK\x03\x04"));
    }

    #[test]
    fn broken_images_fail_with_a_place() {
        let l = Limits::default();
        let code = |d: &[u8]| match rebuild(d, &l) {
            Err(ConvertError::Failed(f)) => f[0].code.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(code(b"P5\n0 1\n255\n"), "CONVERT-PNM-HEADER");
        assert_eq!(code(b"P5\n2 2\n255\n\x00\x01"), "CONVERT-PNM-TRUNCATED");
        assert_eq!(code(b"P2\n2 1\n10\n3 11\n"), "CONVERT-PNM-SAMPLE");
        assert_eq!(code(b"P2\n2 1\n10\n3\n"), "CONVERT-PNM-TRUNCATED");
        assert_eq!(code(b"P2\n2 1\n10\n3 x\n"), "CONVERT-PNM-SAMPLE");
        assert_eq!(code(b"P5\n2 1\n100\n\x00\xc8"), "CONVERT-PNM-SAMPLE");
        assert_eq!(code(b"P6\n99999999 99999999\n255\n"), "CONVERT-PNM-SIZE");
    }
}
