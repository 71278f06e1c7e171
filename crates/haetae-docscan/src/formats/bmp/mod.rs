//! BMP (Windows DIB): file and info header sizes, planes, bit depth and compression pairs,
//! dimensions whose pixel size overflows (CVE-2016-6823 class), pixel data offset and size
//! inside the file, palette counts, and RLE4/RLE8 runs that leave the bitmap (CVE-2013-2729
//! class). Embedded JPEG/PNG bitmaps are scanned with the same engine.

use haetae_core::Severity;

use crate::bytes::{le16, le32, u8_at};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats::Format;

/// The BMP format.
#[derive(Debug, Clone, Copy)]
pub struct Bmp;

impl Format for Bmp {
    fn name(&self) -> &'static str {
        "bmp"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        let hdr = le32(data, 14)?;
        (data.starts_with(b"BM") && matches!(hdr, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124))
            .then_some(FileType::Bmp)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        verify(data, ctx);
        FileType::Bmp
    }
}

fn verify(data: &[u8], ctx: &mut ScanContext) {
    let off_bits = le32(data, 10).unwrap_or(0) as usize;
    let hdr = le32(data, 14).unwrap_or(0) as usize;
    let hloc = || Location::at(14).with_part("info header");
    let (width, height, planes, bpp, compression, clr_used) = if hdr == 12 {
        (
            i64::from(le16(data, 18).unwrap_or(0)),
            i64::from(le16(data, 20).unwrap_or(0)),
            le16(data, 22).unwrap_or(0),
            le16(data, 24).unwrap_or(0),
            0,
            0,
        )
    } else {
        let Some(clr) = le32(data, 46) else {
            ctx.structure(
                "BMP-TRUNCATED",
                Severity::High,
                hloc(),
                format!("the file ends inside its {hdr}-byte info header"),
            );
            return;
        };
        (
            i64::from(le32(data, 18).unwrap_or(0) as i32),
            i64::from(le32(data, 22).unwrap_or(0) as i32),
            le16(data, 26).unwrap_or(0),
            le16(data, 28).unwrap_or(0),
            le32(data, 30).unwrap_or(0),
            le32(data, 46).map_or(clr, |c| c),
        )
    };
    if planes != 1 {
        ctx.structure(
            "BMP-PLANES",
            Severity::Medium,
            hloc(),
            format!("{planes} colour planes (must be 1)"),
        );
    }
    let known_depth = matches!(bpp, 1 | 2 | 4 | 8 | 16 | 24 | 32 | 64);
    let embedded = bpp == 0 && matches!(compression, 4 | 5);
    if !known_depth && !embedded {
        ctx.structure(
            "BMP-BPP",
            Severity::High,
            hloc(),
            format!("{bpp} bits per pixel is not a BMP depth"),
        );
        return;
    }
    if width <= 0 || height == 0 {
        ctx.structure(
            "BMP-DIMENSIONS",
            Severity::High,
            hloc(),
            format!("{width}x{height} pixels (width must be positive, height non-zero)"),
        );
        return;
    }
    let rows = height.unsigned_abs();
    let row_bytes = (width.unsigned_abs() * u64::from(bpp)).div_ceil(32) * 4;
    let pixels = row_bytes.saturating_mul(rows);
    if pixels > u64::from(u32::MAX) {
        ctx.report(
            Finding::new(
                "BMP-PIXEL-OVERFLOW",
                Severity::High,
                FindingClass::Structure,
                hloc(),
                format!(
                    "{width}x{height} at {bpp} bits needs {pixels} bytes, past 32-bit arithmetic"
                ),
            )
            .cve(&["CVE-2016-6823"]),
        );
        return;
    }
    let ok_pair = match compression {
        0 | 4 | 5 => true,
        1 => bpp == 8 && height > 0,
        2 => bpp == 4 && height > 0,
        3 | 6 => bpp == 16 || bpp == 32,
        _ => false,
    };
    if !ok_pair {
        ctx.structure(
            "BMP-COMPRESSION",
            Severity::High,
            hloc(),
            format!("compression {compression} with {bpp} bits per pixel (height {height})"),
        );
        return;
    }
    let header_end = 14 + hdr;
    if off_bits < header_end || off_bits > data.len() {
        ctx.structure(
            "BMP-OFFSET",
            Severity::High,
            Location::at(10).with_part("file header"),
            format!(
                "pixel data offset {off_bits} is outside {header_end}..{}",
                data.len()
            ),
        );
        return;
    }
    if bpp <= 8 {
        let max = 1u32 << bpp;
        let entry = if hdr == 12 { 3 } else { 4 };
        let room = (off_bits - header_end) / entry;
        if clr_used > max {
            ctx.structure(
                "BMP-PALETTE",
                Severity::High,
                hloc(),
                format!("{clr_used} palette colours for {bpp} bits per pixel (at most {max})"),
            );
        } else if (clr_used as usize) > room {
            ctx.structure(
                "BMP-PALETTE",
                Severity::High,
                hloc(),
                format!("{clr_used} palette colours do not fit before the pixel data ({room} do)"),
            );
        }
    }
    let body = data.get(off_bits..).unwrap_or_default();
    match compression {
        0 | 3 | 6 => {
            if (body.len() as u64) < pixels {
                ctx.structure(
                    "BMP-PIXELS-TRUNCATED",
                    Severity::Medium,
                    Location::at(off_bits).with_part("pixel data"),
                    format!("{} bytes of pixel data, {pixels} needed", body.len()),
                );
            }
        }
        1 | 2 => check_rle(
            body,
            off_bits,
            width.unsigned_abs(),
            rows,
            compression == 2,
            ctx,
        ),
        _ => {
            ctx.scan_embedded(body, "embedded bitmap");
        }
    }
}

fn check_rle(body: &[u8], base: usize, width: u64, height: u64, four: bool, ctx: &mut ScanContext) {
    let (mut x, mut y, mut p) = (0u64, 0u64, 0usize);
    let overrun = |ctx: &mut ScanContext, at: usize, x: u64, y: u64| {
        ctx.report(
            Finding::new(
                "BMP-RLE-OVERRUN",
                Severity::High,
                FindingClass::Structure,
                Location::at(base + at).with_part("RLE data"),
                format!("a run reaches pixel ({x},{y}) outside the {width}x{height} bitmap"),
            )
            .cve(&["CVE-2013-2729"]),
        );
    };
    loop {
        if ctx.out_of_time() {
            return;
        }
        let (Some(count), Some(value)) = (u8_at(body, p), u8_at(body, p + 1)) else {
            return; // a missing end-of-bitmap is tolerated by every reader
        };
        let at = p;
        p += 2;
        if count > 0 {
            x += u64::from(count);
            if x > width {
                overrun(ctx, at, x, y);
                return;
            }
            continue;
        }
        match value {
            0 => {
                x = 0;
                y += 1;
            }
            1 => return,
            2 => {
                let (dx, dy) = (u8_at(body, p).unwrap_or(0), u8_at(body, p + 1).unwrap_or(0));
                p += 2;
                x += u64::from(dx);
                y += u64::from(dy);
            }
            n => {
                x += u64::from(n);
                let bytes = if four {
                    usize::from(n).div_ceil(2)
                } else {
                    usize::from(n)
                };
                p += bytes + (bytes & 1);
            }
        }
        if x > width || y > height || (y == height && x > 0) {
            overrun(ctx, at, x, y);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::findings_of;

    fn bmp(w: i32, h: i32, bpp: u16, compression: u32, pixels: &[u8]) -> Vec<u8> {
        let palette = if bpp <= 8 { 4 * (1usize << bpp) } else { 0 };
        let off = 14 + 40 + palette;
        let mut f = b"BM".to_vec();
        f.extend_from_slice(&((off + pixels.len()) as u32).to_le_bytes());
        f.extend_from_slice(&[0; 4]);
        f.extend_from_slice(&(off as u32).to_le_bytes());
        f.extend_from_slice(&40u32.to_le_bytes());
        f.extend_from_slice(&w.to_le_bytes());
        f.extend_from_slice(&h.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&bpp.to_le_bytes());
        f.extend_from_slice(&compression.to_le_bytes());
        f.extend_from_slice(&[0; 20]);
        f.resize(off, 0);
        f.extend_from_slice(pixels);
        f
    }

    #[test]
    fn a_small_rgb_bitmap_is_clean() {
        assert_eq!(findings_of(&bmp(2, 2, 24, 0, &[0; 16]), "a.bmp"), vec![]);
    }

    #[test]
    fn an_rle_run_past_the_row_is_reported() {
        // 4x2 RLE8: a run of 200 pixels.
        let f = bmp(4, 2, 8, 1, &[200, 1, 0, 1]);
        assert_eq!(findings_of(&f, "a.bmp")[0].0, "BMP-RLE-OVERRUN");
    }

    #[test]
    fn a_delta_below_the_last_row_is_reported() {
        let f = bmp(4, 2, 8, 1, &[0, 2, 0, 9, 0, 1]);
        assert_eq!(findings_of(&f, "a.bmp")[0].0, "BMP-RLE-OVERRUN");
    }

    #[test]
    fn huge_dimensions_overflow() {
        let f = bmp(0x7FFF_FFFF, 0x7FFF_FFFF, 32, 0, &[]);
        assert_eq!(findings_of(&f, "a.bmp")[0].0, "BMP-PIXEL-OVERFLOW");
    }

    #[test]
    fn rle8_at_four_bits_is_a_bad_compression_pair() {
        let f = bmp(4, 2, 4, 1, &[0, 1]);
        assert_eq!(findings_of(&f, "a.bmp")[0].0, "BMP-COMPRESSION");
    }
}
