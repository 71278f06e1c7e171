//! GIF (87a/89a): header and logical screen, colour tables, extension and image blocks,
//! frames inside the screen, LZW minimum code size 2..8 and every code of every frame
//! checked against the growing code table, truncation.

use haetae_core::Severity;

use crate::bytes::{le16, u8_at};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::Location;
use crate::formats::Format;

/// The GIF format.
#[derive(Debug, Clone, Copy)]
pub struct Gif;

impl Format for Gif {
    fn name(&self) -> &'static str {
        "gif"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        (data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a")).then_some(FileType::Gif)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        verify(data, ctx);
        FileType::Gif
    }
}

/// Collects the data sub-blocks starting at `pos`; returns the bytes and the position after
/// the terminator, or `None` when the file ends first.
fn sub_blocks(data: &[u8], mut pos: usize, keep: bool) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    loop {
        let n = usize::from(u8_at(data, pos)?);
        pos += 1;
        if n == 0 {
            return Some((out, pos));
        }
        let block = data.get(pos..pos + n)?;
        if keep {
            out.extend_from_slice(block);
        }
        pos += n;
    }
}

fn truncated(ctx: &mut ScanContext, at: usize, what: &str) {
    ctx.structure(
        "GIF-TRUNCATED",
        Severity::Medium,
        Location::at(at),
        format!("the file ends inside {what}"),
    );
}

fn verify(data: &[u8], ctx: &mut ScanContext) {
    let (Some(sw), Some(sh), Some(flags)) = (le16(data, 6), le16(data, 8), u8_at(data, 10)) else {
        truncated(ctx, data.len(), "the logical screen descriptor");
        return;
    };
    let mut pos = 13usize;
    if flags & 0x80 != 0 {
        pos += 3 * (2usize << (flags & 7));
    }
    let mut frame = 0usize;
    loop {
        if ctx.out_of_time() || !ctx.count_entry() {
            return;
        }
        let Some(b) = u8_at(data, pos) else {
            truncated(ctx, pos, "the block list (no trailer)");
            return;
        };
        match b {
            0x3B => return,
            0x21 => {
                let Some((_, next)) = sub_blocks(data, pos + 2, false) else {
                    truncated(ctx, pos, "an extension block");
                    return;
                };
                pos = next;
            }
            0x2C => {
                frame += 1;
                let at = pos;
                let (Some(x), Some(y), Some(w), Some(h), Some(f)) = (
                    le16(data, pos + 1),
                    le16(data, pos + 3),
                    le16(data, pos + 5),
                    le16(data, pos + 7),
                    u8_at(data, pos + 9),
                ) else {
                    truncated(ctx, pos, "an image descriptor");
                    return;
                };
                let loc = || Location::at(at).with_part(format!("frame {frame}"));
                if u32::from(x) + u32::from(w) > u32::from(sw)
                    || u32::from(y) + u32::from(h) > u32::from(sh)
                {
                    ctx.structure(
                        "GIF-FRAME-BOUNDS",
                        Severity::Medium,
                        loc(),
                        format!("frame {w}x{h} at ({x},{y}) leaves the {sw}x{sh} screen"),
                    );
                }
                pos += 10;
                if f & 0x80 != 0 {
                    pos += 3 * (2usize << (f & 7));
                }
                let Some(min) = u8_at(data, pos) else {
                    truncated(ctx, pos, "image data");
                    return;
                };
                if !(2..=8).contains(&min) {
                    ctx.structure(
                        "GIF-LZW-MIN-CODE",
                        Severity::High,
                        loc(),
                        format!("LZW minimum code size {min} (must be 2..8)"),
                    );
                    return;
                }
                let Some((lzw, next)) = sub_blocks(data, pos + 1, true) else {
                    truncated(ctx, pos, "image data");
                    return;
                };
                if let Some((code, bit)) = check_lzw(&lzw, min) {
                    ctx.structure(
                        "GIF-LZW-CODE",
                        Severity::High,
                        loc(),
                        format!("LZW code {code} at bit {bit} is beyond the code table"),
                    );
                }
                pos = next;
            }
            other => {
                ctx.structure(
                    "GIF-BLOCK",
                    Severity::Medium,
                    Location::at(pos),
                    format!("unknown block introducer {other:#04x}"),
                );
                return;
            }
        }
    }
}

/// Walks the LZW code stream without decoding pixels; the first code that refers past the
/// table (and the bit where it starts), if any.
fn check_lzw(bytes: &[u8], min: u8) -> Option<(u32, usize)> {
    let clear = 1u32 << min;
    let end = clear + 1;
    let mut size = u32::from(min) + 1;
    let mut next = clear + 2;
    let mut prev: Option<u32> = None;
    let mut bit = 0usize;
    let total = bytes.len() * 8;
    while bit + size as usize <= total {
        let mut code = 0u32;
        for k in 0..size as usize {
            let b = bit + k;
            let byte = bytes.get(b / 8).copied().unwrap_or(0);
            code |= u32::from((byte >> (b % 8)) & 1) << k;
        }
        let at = bit;
        bit += size as usize;
        if code == clear {
            size = u32::from(min) + 1;
            next = clear + 2;
            prev = None;
            continue;
        }
        if code == end {
            return None;
        }
        match prev {
            None => {
                if code > clear {
                    return Some((code, at));
                }
            }
            Some(_) => {
                if code > next {
                    return Some((code, at));
                }
                if next < 4096 {
                    next += 1;
                }
            }
        }
        if next == (1 << size) && size < 12 {
            size += 1;
        }
        prev = Some(code);
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::testing::findings_of;

    /// A 1x1 GIF with a 2-colour table; `min` and `lzw` are the image data.
    fn gif(min: u8, lzw: &[u8], x: u16) -> Vec<u8> {
        let mut f = b"GIF89a".to_vec();
        f.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0]);
        f.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
        f.push(0x2C);
        f.extend_from_slice(&x.to_le_bytes());
        f.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0]);
        f.push(min);
        f.push(lzw.len() as u8);
        f.extend_from_slice(lzw);
        f.extend_from_slice(&[0, 0x3B]);
        f
    }

    #[test]
    fn a_one_pixel_image_is_clean() {
        // codes (3 bits): clear=4, 0, end=5 -> bits 100 000 101 -> 0x44, 0x01
        assert_eq!(findings_of(&gif(2, &[0x44, 0x01], 0), "a.gif"), vec![]);
    }

    #[test]
    fn a_code_beyond_the_table_is_reported() {
        // clear=4, then code 7 (table holds 0..=5)
        assert_eq!(
            findings_of(&gif(2, &[0x3C, 0x00], 0), "a.gif")[0].0,
            "GIF-LZW-CODE"
        );
    }

    #[test]
    fn a_minimum_code_size_above_eight_is_reported() {
        assert_eq!(
            findings_of(&gif(12, &[0], 0), "a.gif")[0].0,
            "GIF-LZW-MIN-CODE"
        );
    }

    #[test]
    fn a_frame_outside_the_screen_is_reported() {
        assert_eq!(
            findings_of(&gif(2, &[0x44, 0x01], 5), "a.gif")[0].0,
            "GIF-FRAME-BOUNDS"
        );
    }

    #[test]
    fn a_missing_trailer_is_truncation() {
        let mut f = gif(2, &[0x44, 0x01], 0);
        f.pop();
        assert_eq!(findings_of(&f, "a.gif")[0].0, "GIF-TRUNCATED");
    }
}
