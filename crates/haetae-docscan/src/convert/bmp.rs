//! BMP decoded in full (1/2/4/8-bit palette, 16/24/32-bit `BI_RGB`, `BI_BITFIELDS` and
//! `BI_ALPHABITFIELDS` masks, RLE8/RLE4 with every run and delta checked against the
//! picture) and re-encoded as a plain bottom-up BMP: `BITMAPINFOHEADER`, `BI_RGB`, 24 bits
//! per pixel, or 32 when the picture has an alpha channel that is not fully opaque. Only
//! the pixels (and the resolution) survive: colour-space and ICC profile data of the V4/V5
//! headers, gaps before the pixels and bytes after them are dropped.
//!
//! OS/2 2.x headers, 64-bit pixels and embedded JPEG/PNG (`BI_JPEG`, `BI_PNG`) are legal but
//! not rebuilt:
//! [`ConvertError::Unsupported`].
//!
//! Limits: the decoded picture (4 bytes per pixel) at most `memory_bytes`.

use super::{ConvertError, Disarmed, Removed};
use crate::filetype::FileType;
use crate::limits::Limits;

fn le16(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_le_bytes)
}

fn le32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
}

/// `N` bytes at `at` (zeros past the end; callers check lengths first).
fn take<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    data.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

fn fail(code: &str, location: String, message: String) -> ConvertError {
    ConvertError::at(code, location, message)
}

/// One channel of a bit-field pixel: where it sits and how wide it is.
#[derive(Clone, Copy)]
struct Field {
    mask: u32,
    shift: u32,
    bits: u32,
}

impl Field {
    fn new(mask: u32, name: &str) -> Result<Field, ConvertError> {
        let shift = if mask == 0 { 0 } else { mask.trailing_zeros() };
        let bits = mask.count_ones();
        // Contiguous: the mask shifted down is all ones.
        if mask != 0 && (mask >> shift).trailing_ones() != bits {
            return Err(fail(
                "CONVERT-BMP-MASK",
                "info header".into(),
                format!("the {name} mask {mask:#010x} is not one run of bits"),
            ));
        }
        Ok(Field { mask, shift, bits })
    }

    /// The channel scaled to 0..=255 (`default` when the mask is empty).
    fn get(self, px: u32, default: u8) -> u8 {
        if self.bits == 0 {
            return default;
        }
        let v = u64::from((px & self.mask) >> self.shift);
        let max = (1u64 << self.bits) - 1;
        u8::try_from((v * 255 + max / 2) / max).unwrap_or(255)
    }
}

/// The header fields the decode needs.
struct Info {
    header: usize,
    width: u64,
    height: u64,
    top_down: bool,
    bpp: u16,
    compression: u32,
    colours: u32,
    xppm: u32,
    yppm: u32,
}

fn info(data: &[u8]) -> Result<Info, ConvertError> {
    let header = le32(data, 14).unwrap_or(0) as usize;
    let truncated = || {
        fail(
            "CONVERT-BMP-TRUNCATED",
            "info header".into(),
            format!("the file ends inside its {header}-byte info header"),
        )
    };
    if data.len() < 14 + header.max(12) {
        return Err(truncated());
    }
    if header == 12 {
        return Ok(Info {
            header,
            width: u64::from(le16(data, 18).unwrap_or(0)),
            height: u64::from(le16(data, 20).unwrap_or(0)),
            top_down: false,
            bpp: le16(data, 24).unwrap_or(0),
            compression: 0,
            colours: 0,
            xppm: 0,
            yppm: 0,
        });
    }
    if matches!(header, 16 | 64) {
        // OS/2 2.x headers (with Huffman 1D and RLE24): legal, not rebuilt here.
        return Err(ConvertError::Unsupported(FileType::Bmp));
    }
    if !matches!(header, 40 | 52 | 56 | 108 | 124) {
        return Err(fail(
            "CONVERT-BMP-HEADER",
            "info header".into(),
            format!("a {header}-byte info header is not a Windows BMP header"),
        ));
    }
    let width = i64::from(le32(data, 18).map_or(0, |v| i32::from_le_bytes(v.to_le_bytes())));
    let height = i64::from(le32(data, 22).map_or(0, |v| i32::from_le_bytes(v.to_le_bytes())));
    if le16(data, 26) != Some(1) {
        return Err(fail(
            "CONVERT-BMP-PLANES",
            "info header".into(),
            format!("{} colour planes (must be 1)", le16(data, 26).unwrap_or(0)),
        ));
    }
    if width <= 0 || height == 0 {
        return Err(fail(
            "CONVERT-BMP-DIMENSIONS",
            "info header".into(),
            format!("{width}x{height} pixels (width must be positive, height non-zero)"),
        ));
    }
    Ok(Info {
        header,
        width: width.unsigned_abs(),
        height: height.unsigned_abs(),
        top_down: height < 0,
        bpp: le16(data, 28).unwrap_or(0),
        compression: le32(data, 30).unwrap_or(0),
        colours: le32(data, 46).unwrap_or(0),
        xppm: le32(data, 38).unwrap_or(0),
        yppm: le32(data, 42).unwrap_or(0),
    })
}

/// Expands RLE8/RLE4 data into one palette index per pixel (rows bottom-up, as stored).
/// Pixels the runs skip (deltas, early line ends) stay index 0.
fn rle(
    body: &[u8],
    base: usize,
    width: usize,
    height: usize,
    four: bool,
) -> Result<Vec<u8>, ConvertError> {
    let mut out = vec![0u8; width * height];
    let (mut x, mut y) = (0usize, 0usize);
    let mut i = 0usize;
    let overrun =
        |at: usize, what: String| fail("CONVERT-BMP-RLE", format!("byte {}", base + at), what);
    while let (Some(&n), Some(&v)) = (body.get(i), body.get(i + 1)) {
        let at = i;
        i += 2;
        if n > 0 {
            let n = usize::from(n);
            if y >= height || x + n > width {
                return Err(overrun(
                    at,
                    format!("a run of {n} at ({x},{y}) leaves the {width}x{height} picture"),
                ));
            }
            for k in 0..n {
                let px = if four {
                    if k % 2 == 0 { v >> 4 } else { v & 15 }
                } else {
                    v
                };
                if let Some(slot) = out.get_mut(y * width + x + k) {
                    *slot = px;
                }
            }
            x += n;
            continue;
        }
        match v {
            0 => {
                x = 0;
                y += 1;
            }
            1 => return Ok(out),
            2 => {
                let (Some(&dx), Some(&dy)) = (body.get(i), body.get(i + 1)) else {
                    return Err(overrun(at, "a delta runs past the end of the data".into()));
                };
                i += 2;
                x += usize::from(dx);
                y += usize::from(dy);
                if x > width || y > height || (y == height && x > 0) {
                    return Err(overrun(
                        at,
                        format!("a delta to ({x},{y}) leaves the {width}x{height} picture"),
                    ));
                }
            }
            n => {
                let n = usize::from(n);
                let bytes = if four { n.div_ceil(2) } else { n };
                let Some(literal) = body.get(i..i + bytes) else {
                    return Err(overrun(
                        at,
                        format!("{n} literal pixels run past the end of the data"),
                    ));
                };
                if y >= height || x + n > width {
                    return Err(overrun(
                        at,
                        format!(
                            "{n} literal pixels at ({x},{y}) leave the {width}x{height} picture"
                        ),
                    ));
                }
                for k in 0..n {
                    let b = literal
                        .get(if four { k / 2 } else { k })
                        .copied()
                        .unwrap_or(0);
                    let px = if four {
                        if k % 2 == 0 { b >> 4 } else { b & 15 }
                    } else {
                        b
                    };
                    if let Some(slot) = out.get_mut(y * width + x + k) {
                        *slot = px;
                    }
                }
                x += n;
                i += bytes + bytes % 2;
            }
        }
    }
    // Data that ends without an end-of-bitmap code: what was drawn is the picture.
    Ok(out)
}

#[allow(clippy::too_many_lines)]
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    if data.get(..2) != Some(b"BM") {
        return Err(fail(
            "CONVERT-BMP-SIGNATURE",
            "byte 0".into(),
            "not a BM signature".into(),
        ));
    }
    let h = info(data)?;
    let (width, height) = (
        usize::try_from(h.width).unwrap_or(usize::MAX),
        usize::try_from(h.height).unwrap_or(usize::MAX),
    );
    let need = h.width.saturating_mul(h.height).saturating_mul(4);
    if need > limits.memory_bytes {
        return Err(fail(
            "CONVERT-BMP-SIZE",
            "info header".into(),
            format!(
                "{}x{} pixels need {need} bytes, above the memory budget",
                h.width, h.height
            ),
        ));
    }
    let bpp = h.bpp;
    let pair = match h.compression {
        0 => matches!(bpp, 1 | 2 | 4 | 8 | 16 | 24 | 32),
        1 => bpp == 8 && !h.top_down,
        2 => bpp == 4 && !h.top_down,
        3 | 6 => matches!(bpp, 16 | 32),
        _ => false,
    };
    // Legal forms without a rebuild here: 64-bit pixels, an embedded JPEG or PNG (4, 5).
    let legal_other =
        (h.compression == 0 && bpp == 64) || (bpp == 0 && matches!(h.compression, 4 | 5));
    if legal_other {
        return Err(ConvertError::Unsupported(FileType::Bmp));
    }
    if !pair {
        return Err(fail(
            "CONVERT-BMP-COMPRESSION",
            "info header".into(),
            format!(
                "compression {} at {bpp} bits per pixel{} has no rebuild",
                h.compression,
                if h.top_down { " (top-down)" } else { "" }
            ),
        ));
    }
    let header_end = 14 + h.header;
    // Masks: in the header from 52 bytes on, else right after a 40-byte header.
    let masks_at = 14 + 40;
    let (mut red, mut green, mut blue, mut alpha) = match (h.compression, bpp) {
        (3 | 6, _) => {
            let n = if h.compression == 6 || h.header >= 56 {
                4
            } else {
                3
            };
            let get = |k: usize| le32(data, masks_at + 4 * k);
            let (Some(r), Some(g), Some(b)) = (get(0), get(1), get(2)) else {
                return Err(fail(
                    "CONVERT-BMP-TRUNCATED",
                    "colour masks".into(),
                    "the file ends inside the colour masks".into(),
                ));
            };
            (r, g, b, if n == 4 { get(3).unwrap_or(0) } else { 0 })
        }
        (_, 16) => (0x7C00, 0x03E0, 0x001F, 0),
        (_, 32) => (0x00FF_0000, 0x0000_FF00, 0x0000_00FF, 0),
        _ => (0, 0, 0, 0),
    };
    let masks_end = if h.header == 40 && matches!(h.compression, 3 | 6) {
        masks_at + if h.compression == 6 { 16 } else { 12 }
    } else {
        header_end
    };
    if bpp == 16 {
        // Only the low 16 bits exist.
        red &= 0xFFFF;
        green &= 0xFFFF;
        blue &= 0xFFFF;
        alpha &= 0xFFFF;
    }
    let fields = [
        Field::new(red, "red")?,
        Field::new(green, "green")?,
        Field::new(blue, "blue")?,
        Field::new(alpha, "alpha")?,
    ];
    let off_bits = le32(data, 10).unwrap_or(0) as usize;
    if off_bits < masks_end || off_bits > data.len() {
        return Err(fail(
            "CONVERT-BMP-OFFSET",
            "file header".into(),
            format!(
                "pixel data offset {off_bits} is outside {masks_end}..{}",
                data.len()
            ),
        ));
    }
    // Palette.
    let entry = if h.header == 12 { 3 } else { 4 };
    let mut palette: Vec<[u8; 3]> = Vec::new();
    if bpp <= 8 {
        let max = 1u32 << bpp;
        let count = if h.colours == 0 { max } else { h.colours };
        if count > max {
            return Err(fail(
                "CONVERT-BMP-PALETTE",
                "info header".into(),
                format!("{count} palette colours for {bpp} bits per pixel (at most {max})"),
            ));
        }
        let room = (off_bits - masks_end) / entry;
        // Old files often declare none and store fewer than 2^bpp: take what fits.
        let count = if h.colours == 0 {
            (count as usize).min(room)
        } else {
            count as usize
        };
        if count > room || count == 0 {
            return Err(fail(
                "CONVERT-BMP-PALETTE",
                format!("byte {masks_end}"),
                format!("{count} palette colours do not fit before the pixel data ({room} do)"),
            ));
        }
        for k in 0..count {
            let at = masks_end + k * entry;
            let [b, g, r] = take::<3>(data, at);
            palette.push([r, g, b]);
        }
    }
    let mut removed = Vec::new();
    let used_header = masks_end + palette.len() * entry;
    if h.header > 40 {
        removed.push(Removed {
            what: format!(
                "BMP {}-byte header fields beyond BITMAPINFOHEADER (colour space, masks)",
                h.header
            ),
            location: "info header".into(),
        });
    }
    if h.header == 124 {
        let (cs, p_off, p_len) = (
            le32(data, 14 + 56).unwrap_or(0),
            le32(data, 14 + 112).unwrap_or(0),
            le32(data, 14 + 116).unwrap_or(0),
        );
        if (cs == 0x4D42_4544 || cs == 0x4C49_4E4B) && p_len > 0 {
            removed.push(Removed {
                what: format!(
                    "BMP {} colour profile ({p_len} bytes)",
                    if cs == 0x4D42_4544 {
                        "embedded"
                    } else {
                        "linked"
                    }
                ),
                location: format!("byte {}", 14 + p_off as usize),
            });
        }
    }
    if off_bits > used_header {
        removed.push(Removed {
            what: format!(
                "{} bytes between the header and the pixels",
                off_bits - used_header
            ),
            location: format!("byte {used_header}"),
        });
    }

    // Decode into RGBA, top row first.
    let mut rgba = vec![[0u8; 4]; width * height];
    let body = data.get(off_bits..).unwrap_or_default();
    let row_of = |stored: usize| {
        if h.top_down {
            stored
        } else {
            height - 1 - stored
        }
    };
    let colour = |index: u8, x: usize, y: usize| -> Result<[u8; 3], ConvertError> {
        palette.get(usize::from(index)).copied().ok_or_else(|| {
            fail(
                "CONVERT-BMP-PALETTE",
                format!("pixel ({x},{y})"),
                format!(
                    "palette index {index} is past the {}-colour palette",
                    palette.len()
                ),
            )
        })
    };
    let consumed = if matches!(h.compression, 1 | 2) {
        let indices = rle(body, off_bits, width, height, h.compression == 2)?;
        for stored in 0..height {
            let y = row_of(stored);
            for x in 0..width {
                let index = indices.get(stored * width + x).copied().unwrap_or(0);
                let [r, g, b] = colour(index, x, y)?;
                if let Some(slot) = rgba.get_mut(y * width + x) {
                    *slot = [r, g, b, 255];
                }
            }
        }
        body.len()
    } else {
        let stride =
            usize::try_from((h.width * u64::from(bpp)).div_ceil(32) * 4).unwrap_or(usize::MAX);
        let total = stride.saturating_mul(height);
        if body.len() < total {
            return Err(fail(
                "CONVERT-BMP-TRUNCATED",
                format!(
                    "pixel row {} (byte {})",
                    body.len() / stride.max(1),
                    off_bits + body.len() / stride.max(1) * stride
                ),
                format!("{} bytes of pixel data, {total} needed", body.len()),
            ));
        }
        for stored in 0..height {
            let y = row_of(stored);
            let row = body
                .get(stored * stride..(stored + 1) * stride)
                .unwrap_or_default();
            for x in 0..width {
                let px: [u8; 4] = if bpp <= 8 {
                    let bit = x * usize::from(bpp);
                    let byte = row.get(bit / 8).copied().unwrap_or(0);
                    let shift = 8 - usize::from(bpp) - bit % 8;
                    let index = (byte >> shift) & u8::try_from((1u16 << bpp) - 1).unwrap_or(255);
                    let [r, g, b] = colour(index, x, y)?;
                    [r, g, b, 255]
                } else if bpp == 24 {
                    let [b, g, r] = take::<3>(row, x * 3);
                    [r, g, b, 255]
                } else {
                    let v = if bpp == 16 {
                        u32::from(u16::from_le_bytes(take::<2>(row, x * 2)))
                    } else {
                        u32::from_le_bytes(take::<4>(row, x * 4))
                    };
                    let [r, g, b, a] = fields;
                    [r.get(v, 0), g.get(v, 0), b.get(v, 0), a.get(v, 255)]
                };
                if let Some(slot) = rgba.get_mut(y * width + x) {
                    *slot = px;
                }
            }
        }
        total
    };
    if body.len() > consumed {
        removed.push(Removed {
            what: format!("{} bytes after the pixels", body.len() - consumed),
            location: format!("byte {}", off_bits + consumed),
        });
    }

    let with_alpha = rgba.iter().any(|&[_, _, _, a]| a != 255);
    let out_bpp: u16 = if with_alpha { 32 } else { 24 };
    let stride = (width * usize::from(out_bpp) / 8).div_ceil(4) * 4;
    let size = 54 + stride * height;
    let too_big = || {
        fail(
            "CONVERT-BMP-SIZE",
            "file".into(),
            format!("a {size}-byte bitmap is above 4 GiB"),
        )
    };
    let file_size = u32::try_from(size).map_err(|_| too_big())?;
    let image_size = u32::try_from(stride * height).map_err(|_| too_big())?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"BM");
    out.extend(file_size.to_le_bytes());
    out.extend([0; 4]);
    out.extend(54u32.to_le_bytes());
    out.extend(40u32.to_le_bytes());
    out.extend(u32::try_from(width).map_err(|_| too_big())?.to_le_bytes());
    out.extend(u32::try_from(height).map_err(|_| too_big())?.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(out_bpp.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(image_size.to_le_bytes());
    out.extend(h.xppm.to_le_bytes());
    out.extend(h.yppm.to_le_bytes());
    out.extend([0; 8]);
    for row in rgba.chunks(width.max(1)).rev() {
        let start = out.len();
        for &[r, g, b, a] in row {
            out.extend([b, g, r]);
            if with_alpha {
                out.push(a);
            }
        }
        out.resize(start + stride, 0);
    }
    Ok(Disarmed {
        bytes: out,
        file_type: FileType::Bmp,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bitmap with a `header`-byte info header (40, 108, 124), optional masks after a
    /// 40-byte header, a palette (BGRA entries), a gap and the pixel bytes.
    #[allow(clippy::too_many_arguments)]
    fn bmp(
        header: u32,
        w: i32,
        h: i32,
        bpp: u16,
        compression: u32,
        masks: &[u32],
        palette: &[[u8; 3]],
        gap: usize,
        pixels: &[u8],
    ) -> Vec<u8> {
        let mut info = Vec::new();
        info.extend(header.to_le_bytes());
        info.extend(w.to_le_bytes());
        info.extend(h.to_le_bytes());
        info.extend(1u16.to_le_bytes());
        info.extend(bpp.to_le_bytes());
        info.extend(compression.to_le_bytes());
        info.extend(u32::try_from(pixels.len()).unwrap().to_le_bytes());
        info.extend(2835u32.to_le_bytes());
        info.extend(2835u32.to_le_bytes());
        info.extend(u32::try_from(palette.len()).unwrap().to_le_bytes());
        info.extend(0u32.to_le_bytes());
        if header > 40 {
            for k in 0..4 {
                info.extend(masks.get(k).copied().unwrap_or(0).to_le_bytes());
            }
            info.resize(usize::try_from(header).unwrap(), 0);
        } else {
            for m in masks {
                info.extend(m.to_le_bytes());
            }
        }
        for c in palette {
            info.extend([c[2], c[1], c[0], 0]);
        }
        info.extend(vec![0xAA; gap]);
        let off = 14 + info.len();
        let mut f = b"BM".to_vec();
        f.extend(u32::try_from(off + pixels.len()).unwrap().to_le_bytes());
        f.extend([0; 4]);
        f.extend(u32::try_from(off).unwrap().to_le_bytes());
        f.extend(info);
        f.extend_from_slice(pixels);
        f
    }

    /// The copy's pixels (RGB or RGBA per the copy's depth, turned from the stored BGR),
    /// top row first.
    fn pixels_of(copy: &[u8]) -> (u16, Vec<Vec<u8>>) {
        assert_eq!(&copy[..2], b"BM");
        assert_eq!(le32(copy, 14), Some(40));
        assert_eq!(le32(copy, 30), Some(0));
        let (w, h) = (
            le32(copy, 18).unwrap() as usize,
            le32(copy, 22).unwrap() as usize,
        );
        let bpp = le16(copy, 28).unwrap();
        let bytes = usize::from(bpp / 8);
        let stride = (w * bytes).div_ceil(4) * 4;
        assert_eq!(copy.len(), 54 + stride * h);
        let rows = (0..h)
            .rev()
            .map(|y| {
                let mut row = copy[54 + y * stride..54 + y * stride + w * bytes].to_vec();
                for p in row.chunks_exact_mut(bytes) {
                    p.swap(0, 2);
                }
                row
            })
            .collect();
        (bpp, rows)
    }

    const PAL: [[u8; 3]; 4] = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]];

    #[test]
    fn palette_depths_decode_to_the_same_colours() {
        // 3x2, bottom-up: stored row 0 is the bottom row (indices 3 2 1), top row 0 1 2.
        let one = bmp(
            40,
            3,
            2,
            1,
            0,
            &[],
            &PAL[..2],
            0,
            &[0b1010_0000, 0, 0, 0, 0b0100_0000, 0, 0, 0],
        );
        let (bpp, rows) = pixels_of(&rebuild(&one, &Limits::default()).unwrap().bytes);
        assert_eq!(bpp, 24);
        assert_eq!(
            rows,
            [
                vec![0, 0, 0, 255, 0, 0, 0, 0, 0],
                vec![255, 0, 0, 0, 0, 0, 255, 0, 0]
            ]
        );
        let expected = [
            vec![0, 0, 0, 255, 0, 0, 0, 255, 0],
            vec![0, 0, 255, 0, 255, 0, 255, 0, 0],
        ];
        let four = bmp(
            40,
            3,
            2,
            4,
            0,
            &[],
            &PAL,
            0,
            &[0x32, 0x10, 0, 0, 0x01, 0x20, 0, 0],
        );
        assert_eq!(
            pixels_of(&rebuild(&four, &Limits::default()).unwrap().bytes).1,
            expected
        );
        let eight = bmp(40, 3, 2, 8, 0, &[], &PAL, 0, &[3, 2, 1, 0, 0, 1, 2, 0]);
        assert_eq!(
            pixels_of(&rebuild(&eight, &Limits::default()).unwrap().bytes).1,
            expected
        );
        let two = bmp(
            40,
            3,
            2,
            2,
            0,
            &[],
            &PAL,
            0,
            &[0b1110_0100, 0, 0, 0, 0b0001_1000, 0, 0, 0],
        );
        assert_eq!(
            pixels_of(&rebuild(&two, &Limits::default()).unwrap().bytes).1,
            expected
        );
        // Top-down storage: the same picture with rows in reading order.
        let top = bmp(40, 3, -2, 8, 0, &[], &PAL, 0, &[0, 1, 2, 0, 3, 2, 1, 0]);
        assert_eq!(
            pixels_of(&rebuild(&top, &Limits::default()).unwrap().bytes).1,
            expected
        );
        // RLE8: a run of two 0s and a literal... bottom row: literal 3 2 1; top: run.
        let rle8 = bmp(
            40,
            3,
            2,
            8,
            1,
            &[],
            &PAL,
            0,
            &[0, 3, 3, 2, 1, 0, 0, 0, 1, 0, 1, 1, 1, 2, 0, 1],
        );
        assert_eq!(
            pixels_of(&rebuild(&rle8, &Limits::default()).unwrap().bytes).1,
            expected
        );
        // RLE4: bottom row a literal of 3 nibbles, top row a run (0,1 alternating) + 2.
        let rle4 = bmp(
            40,
            3,
            2,
            4,
            2,
            &[],
            &PAL,
            0,
            &[0, 3, 0x32, 0x10, 0, 0, 2, 0x01, 1, 0x22, 0, 1],
        );
        assert_eq!(
            pixels_of(&rebuild(&rle4, &Limits::default()).unwrap().bytes).1,
            expected
        );
    }

    #[test]
    fn bitfields_and_alpha_are_read_through_their_masks() {
        // 16-bit 5-6-5: white, pure red.
        let px = [0xFF, 0xFF, 0x00, 0xF8];
        let f = bmp(40, 2, 1, 16, 3, &[0xF800, 0x07E0, 0x001F], &[], 0, &px);
        let (bpp, rows) = pixels_of(&rebuild(&f, &Limits::default()).unwrap().bytes);
        assert_eq!((bpp, rows), (24, vec![vec![255, 255, 255, 255, 0, 0]]));
        // 16-bit BI_RGB is 5-5-5: 0x7C00 is red.
        let f = bmp(40, 1, 1, 16, 0, &[], &[], 0, &[0x00, 0x7C, 0, 0]);
        assert_eq!(
            pixels_of(&rebuild(&f, &Limits::default()).unwrap().bytes).1,
            [vec![255, 0, 0]]
        );
        // 32-bit V5 with an alpha mask: a half-transparent pixel keeps its alpha.
        let f = bmp(
            124,
            1,
            1,
            32,
            3,
            &[0x00FF_0000, 0x0000_FF00, 0x0000_00FF, 0xFF00_0000],
            &[],
            0,
            &[1, 2, 3, 0x80],
        );
        let d = rebuild(&f, &Limits::default()).unwrap();
        assert_eq!(pixels_of(&d.bytes), (32, vec![vec![3, 2, 1, 0x80]]));
        assert!(d.removed[0].what.contains("124-byte header"));
        // 32-bit BI_RGB: the fourth byte is not alpha.
        let f = bmp(40, 1, 1, 32, 0, &[], &[], 0, &[1, 2, 3, 0]);
        assert_eq!(
            pixels_of(&rebuild(&f, &Limits::default()).unwrap().bytes),
            (24, vec![vec![3, 2, 1]])
        );
        let f = bmp(
            40,
            1,
            1,
            32,
            3,
            &[0xF0F0, 0xFF00, 0xFF],
            &[],
            0,
            &[1, 2, 3, 0],
        );
        assert_eq!(code(&f), "CONVERT-BMP-MASK");
    }

    #[test]
    fn hidden_bytes_go_and_are_reported() {
        let mut f = bmp(40, 1, 1, 24, 0, &[], &[], 7, &[1, 2, 3, 0]);
        f.extend_from_slice(b"MZ payload");
        let d = rebuild(&f, &Limits::default()).unwrap();
        let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "7 bytes between the header and the pixels",
                "10 bytes after the pixels"
            ]
        );
        assert_eq!(d.bytes.len(), 58);
        assert!(!d.bytes.windows(2).any(|w| w == b"MZ"));
        let again = rebuild(&d.bytes, &Limits::default()).unwrap();
        assert_eq!((again.bytes, again.removed), (d.bytes, vec![]));
    }

    fn code(f: &[u8]) -> String {
        match rebuild(f, &Limits::default()) {
            Err(ConvertError::Failed(e)) => format!("{} @ {}", e[0].code, e[0].location),
            other => panic!("{other:?}"),
        }
        .split(" @ ")
        .next()
        .unwrap_or_default()
        .to_string()
    }

    #[test]
    fn overruns_and_broken_headers_fail_with_their_place() {
        // RLE8 run of 4 in a 3-pixel row.
        let f = bmp(40, 3, 2, 8, 1, &[], &PAL, 0, &[4, 1, 0, 1]);
        let Err(ConvertError::Failed(e)) = rebuild(&f, &Limits::default()) else {
            panic!()
        };
        assert_eq!(e[0].code, "CONVERT-BMP-RLE");
        assert_eq!(e[0].location, format!("byte {}", f.len() - 4));
        // A delta below the last row.
        assert_eq!(
            code(&bmp(40, 3, 2, 8, 1, &[], &PAL, 0, &[0, 2, 0, 5, 0, 1])),
            "CONVERT-BMP-RLE"
        );
        // A literal that runs out of data.
        assert_eq!(
            code(&bmp(40, 3, 2, 8, 1, &[], &PAL, 0, &[0, 3, 1])),
            "CONVERT-BMP-RLE"
        );
        // An index past a 2-colour palette.
        let f = bmp(40, 1, 1, 8, 0, &[], &PAL[..2], 0, &[3, 0, 0, 0]);
        let Err(ConvertError::Failed(e)) = rebuild(&f, &Limits::default()) else {
            panic!()
        };
        assert_eq!(
            (e[0].code.as_str(), e[0].location.as_str()),
            ("CONVERT-BMP-PALETTE", "pixel (0,0)")
        );
        // Pixel rows cut short.
        let f = bmp(40, 2, 2, 24, 0, &[], &[], 0, &[0; 10]);
        let Err(ConvertError::Failed(e)) = rebuild(&f, &Limits::default()) else {
            panic!()
        };
        assert_eq!(
            (e[0].code.as_str(), e[0].location.as_str()),
            ("CONVERT-BMP-TRUNCATED", "pixel row 1 (byte 62)")
        );
        assert_eq!(
            code(&bmp(40, 0, 2, 24, 0, &[], &[], 0, &[])),
            "CONVERT-BMP-DIMENSIONS"
        );
        assert_eq!(
            rebuild(
                &bmp(40, 1, 1, 64, 0, &[], &[], 0, &[0; 8]),
                &Limits::default()
            )
            .unwrap_err(),
            ConvertError::Unsupported(FileType::Bmp)
        );
        assert_eq!(
            code(&bmp(40, 1, 1, 12, 0, &[], &[], 0, &[0; 4])),
            "CONVERT-BMP-COMPRESSION"
        );
        assert_eq!(
            code(&bmp(40, 1, -1, 8, 1, &[], &PAL, 0, &[0, 1])),
            "CONVERT-BMP-COMPRESSION"
        );
        assert_eq!(
            code(&bmp(60, 1, 1, 24, 0, &[], &[], 0, &[0; 4])),
            "CONVERT-BMP-HEADER"
        );
        assert_eq!(
            rebuild(
                &bmp(64, 1, 1, 24, 0, &[], &[], 0, &[0; 4]),
                &Limits::default()
            )
            .unwrap_err(),
            ConvertError::Unsupported(FileType::Bmp)
        );
        assert_eq!(
            code(b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0"),
            "CONVERT-BMP-TRUNCATED"
        );
        let mut bad_offset = bmp(40, 1, 1, 24, 0, &[], &[], 0, &[0; 4]);
        bad_offset[10] = 200;
        assert_eq!(code(&bad_offset), "CONVERT-BMP-OFFSET");
        let big = bmp(40, 30_000, 30_000, 24, 0, &[], &[], 0, &[]);
        assert_eq!(code(&big), "CONVERT-BMP-SIZE");
    }
}
