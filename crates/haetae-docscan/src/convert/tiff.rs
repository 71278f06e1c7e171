//! Baseline TIFF decoded in full and re-encoded uncompressed. Every page (IFD) of either
//! byte order: strips, no compression / `PackBits` / LZW / Deflate (with the horizontal
//! predictor), bilevel and grey at 1/2/4/8/16 bits, palette at 1-8 bits, RGB and RGBA at 8
//! or 16 bits, chunky. The copy is little-endian, one IFD per page with one strip and only
//! the tags the picture needs (size, samples, photometric, palette, extra samples,
//! resolution, orientation); every other tag — EXIF/GPS IFDs, XMP, IPTC, Photoshop, ICC,
//! descriptive text, private tags, sub-IFDs — is dropped and reported.
//!
//! Legal but not rebuilt here ([`ConvertError::Unsupported`]): `BigTIFF`, tiles, planar
//! separation, JPEG/CCITT/other compressions, CMYK/YCbCr/Lab, float samples.
//!
//! Limits: pages at most `max_entries`; the decoded pixels of all pages at most
//! `memory_bytes`.

use std::collections::HashSet;

use super::{ConvertError, Disarmed, Removed};
use crate::container::inflate::{Framing, inflate_to_vec};
use crate::filetype::FileType;
use crate::limits::Limits;

fn fail(code: &str, location: String, message: String) -> ConvertError {
    ConvertError::at(code, location, message)
}

fn unsupported() -> ConvertError {
    ConvertError::Unsupported(FileType::Tiff)
}

#[derive(Clone, Copy)]
struct Order {
    big: bool,
}

impl Order {
    fn u16(self, data: &[u8], at: usize) -> Option<u16> {
        let b: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(self, data: &[u8], at: usize) -> Option<u32> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

/// One IFD entry as read.
struct Tag {
    id: u16,
    kind: u16,
    count: u32,
    /// Where the value is (inline in the entry or at its offset).
    value_at: usize,
    entry_at: usize,
}

fn kind_size(kind: u16) -> Option<usize> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

/// The integer values of a BYTE/SHORT/LONG tag (at most `max` of them).
fn values(
    data: &[u8],
    o: Order,
    t: &Tag,
    max: usize,
    page: usize,
) -> Result<Vec<u64>, ConvertError> {
    let count = t.count as usize;
    if count > max {
        return Err(fail(
            "CONVERT-TIFF-TAG",
            format!("page {page}, tag {} at byte {}", t.id, t.entry_at),
            format!("{count} values, at most {max} expected"),
        ));
    }
    let bad = || {
        fail(
            "CONVERT-TIFF-TAG",
            format!("page {page}, tag {} at byte {}", t.id, t.entry_at),
            format!(
                "type {} with {count} values runs past the end of the file",
                t.kind
            ),
        )
    };
    (0..count)
        .map(|i| match t.kind {
            1 => data.get(t.value_at + i).map(|&b| u64::from(b)),
            3 => o.u16(data, t.value_at + 2 * i).map(u64::from),
            4 => o.u32(data, t.value_at + 4 * i).map(u64::from),
            _ => None,
        })
        .map(|v| v.ok_or_else(bad))
        .collect()
}

/// Un-PackBits into at most `cap` bytes.
fn packbits(src: &[u8], cap: usize) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(cap);
    let mut i = 0usize;
    while out.len() < cap {
        let Some(&n) = src.get(i) else { break };
        let n = i8::from_le_bytes([n]);
        if n >= 0 {
            let len = usize::from(n.unsigned_abs()) + 1;
            let lit = src.get(i + 1..i + 1 + len).ok_or(i)?;
            out.extend_from_slice(lit);
            i += 1 + len;
        } else if n != -128 {
            let len = usize::from(n.unsigned_abs()) + 1;
            let &b = src.get(i + 1).ok_or(i)?;
            out.extend(std::iter::repeat_n(b, len));
            i += 2;
        } else {
            i += 1;
        }
    }
    out.truncate(cap);
    Ok(out)
}

/// TIFF LZW (most significant bit first, code width one step early) into at most `cap`
/// bytes; the failure is the bit where a bad code starts.
fn lzw(src: &[u8], cap: usize) -> Result<Vec<u8>, (usize, String)> {
    if src.len() >= 2 && src.first() == Some(&0) && src.get(1).is_some_and(|b| b & 1 == 1) {
        return Err((0, "old-style (LSB-first) LZW is not baseline".into()));
    }
    const CLEAR: usize = 256;
    const END: usize = 257;
    // Each entry: (offset of its bytes in `out` — strings are always earlier output, length).
    let mut table: Vec<(usize, usize)> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(cap);
    let mut width = 9usize;
    let mut bit = 0usize;
    let total = src.len() * 8;
    let mut prev: Option<(usize, usize)> = None;
    let reset = |table: &mut Vec<(usize, usize)>| {
        table.clear();
        table.extend((0..258).map(|_| (0, 0)));
    };
    reset(&mut table);
    while out.len() < cap && bit + width <= total {
        let mut code = 0usize;
        for k in 0..width {
            let b = bit + k;
            let byte = src.get(b / 8).copied().unwrap_or(0);
            code = (code << 1) | usize::from((byte >> (7 - b % 8)) & 1);
        }
        let at = bit;
        bit += width;
        if code == CLEAR {
            reset(&mut table);
            width = 9;
            prev = None;
            continue;
        }
        if code == END {
            break;
        }
        let start = out.len();
        let piece = if code < 256 {
            out.push(u8::try_from(code).unwrap_or(0));
            (start, 1)
        } else if let Some(&(off, len)) = table.get(code).filter(|_| code < table.len()) {
            out.extend_from_within(off..off + len);
            (start, len)
        } else if code == table.len() {
            let Some((off, len)) = prev else {
                return Err((at, format!("code {code} with no string before it")));
            };
            out.extend_from_within(off..off + len);
            let first = out.get(off).copied().unwrap_or(0);
            out.push(first);
            (start, len + 1)
        } else {
            return Err((
                at,
                format!(
                    "code {code} is beyond the code table ({} entries)",
                    table.len()
                ),
            ));
        };
        if let Some((off, len)) = prev
            && table.len() < 4096
        {
            // The previous string plus the first byte of this one: contiguous in `out`.
            table.push((off, len + 1));
        }
        prev = Some(piece);
        // "Early change": the width grows one code before the table needs it.
        width = match table.len() {
            n if n >= 2047 => 12,
            n if n >= 1023 => 11,
            n if n >= 511 => 10,
            _ => 9,
        };
    }
    out.truncate(cap);
    Ok(out)
}

/// A decoded page, ready to write.
struct Page {
    width: u32,
    height: u32,
    bits: u16,
    samples: u16,
    photometric: u16,
    extra: Option<u16>,
    palette: Vec<u16>,
    resolution: Option<([u8; 8], [u8; 8], u16)>,
    orientation: Option<u16>,
    /// Pixels, rows top to bottom, 16-bit samples little-endian.
    pixels: Vec<u8>,
}

const KEPT: [u16; 17] = [
    254, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 282, 283, 284, 296, 320,
];

fn tag_name(id: u16) -> &'static str {
    match id {
        269 => "DocumentName",
        270 => "ImageDescription",
        271 => "Make",
        272 => "Model",
        305 => "Software",
        306 => "DateTime",
        315 => "Artist",
        316 => "HostComputer",
        330 => "SubIFDs",
        700 => "XMP",
        33432 => "Copyright",
        33723 => "IPTC",
        34377 => "Photoshop resources",
        34665 => "EXIF IFD",
        34675 => "ICC profile",
        34853 => "GPS IFD",
        37724 => "Photoshop layers",
        40965 => "Interoperability IFD",
        50341 => "PrintIM",
        _ if id >= 32768 => "private",
        _ => "non-baseline",
    }
}

#[allow(clippy::too_many_lines)]
fn read_page(
    data: &[u8],
    o: Order,
    ifd: usize,
    page: usize,
    budget: &mut u64,
    removed: &mut Vec<Removed>,
) -> Result<(Page, usize), ConvertError> {
    let here = |what: &str| format!("page {page}, {what}");
    let n = usize::from(o.u16(data, ifd).ok_or_else(|| {
        fail(
            "CONVERT-TIFF-IFD",
            here(&format!("IFD at byte {ifd}")),
            "the IFD runs past the end of the file".into(),
        )
    })?);
    let next = o.u32(data, ifd + 2 + 12 * n).ok_or_else(|| {
        fail(
            "CONVERT-TIFF-IFD",
            here(&format!("IFD at byte {ifd}")),
            format!("{n} entries run past the end of the file"),
        )
    })? as usize;
    let mut tags: Vec<Tag> = Vec::with_capacity(n);
    for k in 0..n {
        let e = ifd + 2 + 12 * k;
        let (id, kind, count) = (
            o.u16(data, e).unwrap_or(0),
            o.u16(data, e + 2).unwrap_or(0),
            o.u32(data, e + 4).unwrap_or(0),
        );
        let Some(size) = kind_size(kind) else {
            removed.push(Removed {
                what: format!("TIFF tag {id} of unknown type {kind}"),
                location: here(&format!("entry at byte {e}")),
            });
            continue;
        };
        let len = size.saturating_mul(count as usize);
        let value_at = if len <= 4 {
            e + 8
        } else {
            o.u32(data, e + 8).unwrap_or(0) as usize
        };
        if value_at.saturating_add(len) > data.len() {
            return Err(fail(
                "CONVERT-TIFF-TAG",
                here(&format!("tag {id} at byte {e}")),
                format!("{len} bytes of value at byte {value_at} run past the end of the file"),
            ));
        }
        if !KEPT.contains(&id) && !matches!(id, 277 | 317 | 338 | 339 | 322 | 323 | 324 | 325) {
            removed.push(Removed {
                what: format!("TIFF tag {id} ({})", tag_name(id)),
                location: here(&format!("entry at byte {e}")),
            });
        }
        tags.push(Tag {
            id,
            kind,
            count,
            value_at,
            entry_at: e,
        });
    }
    let tag = |id: u16| tags.iter().find(|t| t.id == id);
    let one = |id: u16, default: Option<u64>| -> Result<u64, ConvertError> {
        match tag(id) {
            Some(t) => values(data, o, t, 1, page)?
                .first()
                .copied()
                .ok_or_else(|| {
                    fail(
                        "CONVERT-TIFF-TAG",
                        here(&format!("tag {id} at byte {}", t.entry_at)),
                        "no value".into(),
                    )
                }),
            None => default.ok_or_else(|| {
                fail(
                    "CONVERT-TIFF-TAG",
                    here(&format!("IFD at byte {ifd}")),
                    format!("required tag {id} is missing"),
                )
            }),
        }
    };
    if tag(322).is_some() || tag(324).is_some() {
        return Err(unsupported());
    }
    let width = one(256, None)?;
    let height = one(257, None)?;
    let compression = one(259, Some(1))?;
    let photometric = one(262, None)?;
    let samples = one(277, Some(1))?;
    let planar = one(284, Some(1))?;
    let predictor = one(317, Some(1))?;
    let fill = one(266, Some(1))?;
    if tag(339)
        .is_some_and(|t| values(data, o, t, 16, page).is_ok_and(|v| v.iter().any(|&f| f != 1)))
    {
        return Err(unsupported());
    }
    let bits_all = match tag(258) {
        Some(t) => values(data, o, t, 16, page)?,
        None => vec![1],
    };
    let bits = bits_all.first().copied().unwrap_or(1);
    if bits_all.iter().any(|&b| b != bits) {
        return Err(unsupported());
    }
    if !matches!(compression, 1 | 5 | 8 | 32946 | 32773)
        || !matches!(photometric, 0..=3)
        || planar != 1 && samples > 1
        || fill != 1
    {
        return Err(unsupported());
    }
    let colour_samples = if photometric == 2 { 3 } else { 1 };
    let extra_samples = samples.checked_sub(colour_samples).unwrap_or(u64::MAX);
    let depth_ok = match photometric {
        0 | 1 => matches!(bits, 1 | 2 | 4 | 8 | 16),
        2 => matches!(bits, 8 | 16),
        _ => matches!(bits, 1 | 2 | 4 | 8),
    };
    if width == 0
        || height == 0
        || !depth_ok
        || extra_samples > 1
        || (extra_samples == 1 && bits < 8)
    {
        return Err(fail(
            "CONVERT-TIFF-IMAGE",
            here(&format!("IFD at byte {ifd}")),
            format!(
                "{width}x{height}, photometric {photometric}, {samples} samples of {bits} bits is not a baseline image"
            ),
        ));
    }
    if !matches!(predictor, 1 | 2) || (predictor == 2 && bits < 8) {
        return Err(unsupported());
    }
    let row_bytes = (width * samples * bits).div_ceil(8);
    let size = row_bytes.saturating_mul(height);
    if size > *budget {
        return Err(fail(
            "CONVERT-TIFF-SIZE",
            here(&format!("IFD at byte {ifd}")),
            format!("{width}x{height} needs {size} bytes, above the memory budget left"),
        ));
    }
    *budget -= size;
    let rows_per_strip = one(278, Some(height))?.clamp(1, height);
    let strips = height.div_ceil(rows_per_strip);
    let (Some(offsets_tag), Some(counts_tag)) = (tag(273), tag(279)) else {
        return Err(fail(
            "CONVERT-TIFF-STRIP",
            here(&format!("IFD at byte {ifd}")),
            "no StripOffsets or StripByteCounts".into(),
        ));
    };
    let max = usize::try_from(strips).unwrap_or(usize::MAX);
    let offsets = values(data, o, offsets_tag, max, page)?;
    let counts = values(data, o, counts_tag, max, page)?;
    if offsets.len() != max || counts.len() != max {
        return Err(fail(
            "CONVERT-TIFF-STRIP",
            here(&format!("tag 273 at byte {}", offsets_tag.entry_at)),
            format!(
                "{} offsets and {} byte counts for {strips} strips",
                offsets.len(),
                counts.len()
            ),
        ));
    }
    let row_len = usize::try_from(row_bytes).unwrap_or(usize::MAX);
    let mut pixels: Vec<u8> = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    for (s, (&off, &count)) in offsets.iter().zip(&counts).enumerate() {
        let first_row = s as u64 * rows_per_strip;
        let rows = rows_per_strip.min(height - first_row);
        let want = usize::try_from(rows * row_bytes).unwrap_or(usize::MAX);
        let at = usize::try_from(off).unwrap_or(usize::MAX);
        let strip_loc = || here(&format!("strip {} at byte {at}", s + 1));
        let src = data
            .get(at..at.saturating_add(usize::try_from(count).unwrap_or(usize::MAX)))
            .ok_or_else(|| {
                fail(
                    "CONVERT-TIFF-STRIP",
                    strip_loc(),
                    format!(
                        "{count} bytes run past the end of the file ({} bytes)",
                        data.len()
                    ),
                )
            })?;
        let mut strip = match compression {
            1 => src.get(..want).unwrap_or(src).to_vec(),
            32773 => packbits(src, want).map_err(|i| {
                fail(
                    "CONVERT-TIFF-PACKBITS",
                    here(&format!("strip {} at byte {}", s + 1, at + i)),
                    "a run runs past the end of the strip".into(),
                )
            })?,
            5 => lzw(src, want).map_err(|(bit, message)| {
                fail(
                    "CONVERT-TIFF-LZW",
                    here(&format!("strip {} at byte {}", s + 1, at + bit / 8)),
                    message,
                )
            })?,
            _ => inflate_to_vec(src, Framing::Zlib, want as u64).map_err(|e| {
                fail(
                    "CONVERT-TIFF-DEFLATE",
                    strip_loc(),
                    format!("the strip does not inflate: {e:?}"),
                )
            })?,
        };
        if strip.len() < want {
            return Err(fail(
                "CONVERT-TIFF-STRIP",
                strip_loc(),
                format!(
                    "{} bytes decoded, {want} needed for {rows} rows",
                    strip.len()
                ),
            ));
        }
        strip.truncate(want);
        let bytes_per_sample = usize::try_from(bits / 8).unwrap_or(1).max(1);
        let spp = usize::try_from(samples).unwrap_or(1);
        for row in strip.chunks_mut(row_len.max(1)) {
            if bits == 16 {
                // To native little-endian sample values first.
                if o.big {
                    for p in row.chunks_exact_mut(2) {
                        p.swap(0, 1);
                    }
                }
                if predictor == 2 {
                    let stride = 2 * spp;
                    for i in stride..row.len().saturating_sub(1) {
                        if i % 2 == 0 {
                            let (a, b) = (
                                u16::from_le_bytes([
                                    row.get(i - stride).copied().unwrap_or(0),
                                    row.get(i - stride + 1).copied().unwrap_or(0),
                                ]),
                                u16::from_le_bytes([
                                    row.get(i).copied().unwrap_or(0),
                                    row.get(i + 1).copied().unwrap_or(0),
                                ]),
                            );
                            let v = b.wrapping_add(a).to_le_bytes();
                            if let Some(p) = row.get_mut(i..i + 2) {
                                p.copy_from_slice(&v);
                            }
                        }
                    }
                }
            } else if predictor == 2 {
                let stride = bytes_per_sample * spp;
                for i in stride..row.len() {
                    let a = row.get(i - stride).copied().unwrap_or(0);
                    if let Some(v) = row.get_mut(i) {
                        *v = v.wrapping_add(a);
                    }
                }
            }
        }
        pixels.extend_from_slice(&strip);
    }
    let palette = if photometric == 3 {
        let t = tag(320).ok_or_else(|| {
            fail(
                "CONVERT-TIFF-PALETTE",
                here(&format!("IFD at byte {ifd}")),
                "a palette image without a ColorMap".into(),
            )
        })?;
        let need = 3usize << bits;
        let v = values(data, o, t, need, page)?;
        if v.len() != need {
            return Err(fail(
                "CONVERT-TIFF-PALETTE",
                here(&format!("tag 320 at byte {}", t.entry_at)),
                format!("{} ColorMap values, {need} needed for {bits} bits", v.len()),
            ));
        }
        v.into_iter()
            .map(|x| u16::try_from(x).unwrap_or(u16::MAX))
            .collect()
    } else {
        Vec::new()
    };
    let extra = if extra_samples == 1 {
        Some(match tag(338) {
            Some(t) => values(data, o, t, 1, page)?
                .first()
                .map_or(0, |&v| u16::try_from(v).unwrap_or(0)),
            None => 0,
        })
    } else {
        None
    };
    let rational = |id: u16| {
        tag(id)
            .filter(|t| t.kind == 5 && t.count == 1)
            .and_then(|t| {
                let (a, b) = (o.u32(data, t.value_at)?, o.u32(data, t.value_at + 4)?);
                let mut r = [0u8; 8];
                r.get_mut(..4)?.copy_from_slice(&a.to_le_bytes());
                r.get_mut(4..)?.copy_from_slice(&b.to_le_bytes());
                Some(r)
            })
    };
    let resolution = match (rational(282), rational(283)) {
        (Some(x), Some(y)) => Some((x, y, u16::try_from(one(296, Some(2))?).unwrap_or(2))),
        _ => None,
    };
    let orientation = match tag(274) {
        Some(_) => {
            Some(u16::try_from(one(274, None)?).unwrap_or(1)).filter(|v| (1..=8).contains(v))
        }
        None => None,
    };
    let narrow = |v: u64| u16::try_from(v).unwrap_or(0);
    Ok((
        Page {
            width: u32::try_from(width).unwrap_or(0),
            height: u32::try_from(height).unwrap_or(0),
            bits: narrow(bits),
            samples: narrow(samples),
            photometric: narrow(photometric),
            extra,
            palette,
            resolution,
            orientation,
            pixels,
        },
        next,
    ))
}

/// Writes the pages as a little-endian TIFF: per page the pixels (one strip), then its IFD
/// and the values that do not fit in an entry.
fn write(pages: &[Page]) -> Result<Vec<u8>, ConvertError> {
    let too_big = || {
        fail(
            "CONVERT-TIFF-SIZE",
            "file".into(),
            "the copy would be above 4 GiB".into(),
        )
    };
    let mut out = b"II*\0\0\0\0\0".to_vec();
    let mut link = 4usize;
    for p in pages {
        let strip_at = u32::try_from(out.len()).map_err(|_| too_big())?;
        out.extend_from_slice(&p.pixels);
        if out.len() % 2 == 1 {
            out.push(0);
        }
        // (tag, type, count, value bytes)
        let mut entries: Vec<(u16, u16, u32, Vec<u8>)> = Vec::new();
        let short = |v: u16| v.to_le_bytes().to_vec();
        let long = |v: u32| v.to_le_bytes().to_vec();
        entries.push((256, 4, 1, long(p.width)));
        entries.push((257, 4, 1, long(p.height)));
        entries.push((
            258,
            3,
            u32::from(p.samples),
            (0..p.samples).flat_map(|_| p.bits.to_le_bytes()).collect(),
        ));
        entries.push((259, 3, 1, short(1)));
        entries.push((262, 3, 1, short(p.photometric)));
        entries.push((273, 4, 1, long(strip_at)));
        if let Some(v) = p.orientation {
            entries.push((274, 3, 1, short(v)));
        }
        entries.push((277, 3, 1, short(p.samples)));
        entries.push((278, 4, 1, long(p.height)));
        entries.push((
            279,
            4,
            1,
            long(u32::try_from(p.pixels.len()).map_err(|_| too_big())?),
        ));
        if let Some((x, y, unit)) = p.resolution {
            entries.push((282, 5, 1, x.to_vec()));
            entries.push((283, 5, 1, y.to_vec()));
            entries.push((296, 3, 1, short(unit)));
        }
        if p.samples > 1 {
            entries.push((284, 3, 1, short(1)));
        }
        if !p.palette.is_empty() {
            entries.push((
                320,
                3,
                u32::try_from(p.palette.len()).map_err(|_| too_big())?,
                p.palette.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
        }
        if let Some(e) = p.extra {
            entries.push((338, 3, 1, short(e)));
        }
        let ifd_at = out.len();
        if let Some(slot) = out.get_mut(link..link + 4) {
            slot.copy_from_slice(&u32::try_from(ifd_at).map_err(|_| too_big())?.to_le_bytes());
        }
        let count = u16::try_from(entries.len()).unwrap_or(0);
        let mut extra_at = ifd_at + 2 + 12 * entries.len() + 4;
        let mut tail: Vec<u8> = Vec::new();
        out.extend(count.to_le_bytes());
        for (id, kind, n, value) in &entries {
            out.extend(id.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(n.to_le_bytes());
            if value.len() <= 4 {
                let mut v = value.clone();
                v.resize(4, 0);
                out.extend(v);
            } else {
                out.extend(
                    u32::try_from(extra_at)
                        .map_err(|_| too_big())?
                        .to_le_bytes(),
                );
                tail.extend_from_slice(value);
                extra_at += value.len();
                if value.len() % 2 == 1 {
                    tail.push(0);
                    extra_at += 1;
                }
            }
        }
        link = out.len();
        out.extend([0; 4]);
        out.extend(tail);
    }
    Ok(out)
}

pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    let o = match data.get(..4) {
        Some(b"II*\0") => Order { big: false },
        Some(b"MM\0*") => Order { big: true },
        Some(b"II+\0" | b"MM\0+") => return Err(unsupported()),
        _ => {
            return Err(fail(
                "CONVERT-TIFF-HEADER",
                "byte 0".into(),
                "not a TIFF header".into(),
            ));
        }
    };
    let mut ifd = o.u32(data, 4).unwrap_or(0) as usize;
    let mut seen = HashSet::new();
    let mut pages = Vec::new();
    let mut removed = Vec::new();
    let mut budget = limits.memory_bytes;
    while ifd != 0 {
        let page = pages.len() + 1;
        if !seen.insert(ifd) {
            return Err(fail(
                "CONVERT-TIFF-IFD",
                format!("page {page}, IFD at byte {ifd}"),
                "the IFD chain loops".into(),
            ));
        }
        if pages.len() as u64 >= limits.max_entries {
            return Err(fail(
                "CONVERT-TIFF-LIMIT",
                format!("page {page}, IFD at byte {ifd}"),
                format!("more than {} pages", limits.max_entries),
            ));
        }
        let (p, next) = read_page(data, o, ifd, page, &mut budget, &mut removed)?;
        pages.push(p);
        ifd = next;
    }
    if pages.is_empty() {
        return Err(fail("CONVERT-TIFF-IFD", "byte 4".into(), "no IFD".into()));
    }
    Ok(Disarmed {
        bytes: write(&pages)?,
        file_type: FileType::Tiff,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIFF writer for fixtures, in either byte order: `pages` of (tags, strips); each
    /// tag is (id, type, values as u32), written inline or after the IFD.
    type Tags = Vec<(u16, u16, Vec<u32>)>;

    fn tiff(big: bool, pages: &[(Tags, Vec<Vec<u8>>)]) -> Vec<u8> {
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = if big {
            b"MM\0*".to_vec()
        } else {
            b"II*\0".to_vec()
        };
        out.extend([0; 4]);
        let mut link = 4;
        for (tags, strips) in pages {
            let mut offsets = Vec::new();
            for s in strips {
                offsets.push(u32::try_from(out.len()).unwrap());
                out.extend_from_slice(s);
            }
            let mut tags = tags.clone();
            tags.push((273, 4, offsets));
            tags.push((
                279,
                4,
                strips
                    .iter()
                    .map(|s| u32::try_from(s.len()).unwrap())
                    .collect(),
            ));
            tags.sort_by_key(|t| t.0);
            let ifd = out.len();
            let at = u32::try_from(ifd).unwrap();
            out[link..link + 4].copy_from_slice(&w32(at));
            let mut extra = ifd + 2 + 12 * tags.len() + 4;
            let mut tail = Vec::new();
            out.extend(w16(u16::try_from(tags.len()).unwrap()));
            for (id, kind, vals) in &tags {
                let mut bytes = Vec::new();
                for &v in vals {
                    match kind {
                        1 | 2 | 7 => bytes.push(u8::try_from(v).unwrap()),
                        3 => bytes.extend(w16(u16::try_from(v).unwrap())),
                        _ => bytes.extend(w32(v)),
                    }
                }
                let count = if *kind == 5 {
                    vals.len() / 2
                } else {
                    vals.len()
                };
                out.extend(w16(*id));
                out.extend(w16(*kind));
                out.extend(w32(u32::try_from(count).unwrap()));
                if bytes.len() <= 4 {
                    bytes.resize(4, 0);
                    out.extend(bytes);
                } else {
                    out.extend(w32(u32::try_from(extra).unwrap()));
                    extra += bytes.len();
                    tail.extend(bytes);
                }
            }
            link = out.len();
            out.extend([0; 4]);
            out.extend(tail);
        }
        out
    }

    /// A TIFF LZW encoder for fixtures (MSB-first, early change, clear at 4094).
    fn lzw_encode(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut acc, mut nbits) = (0u64, 0u32);
        let mut put = |code: usize, width: u32, out: &mut Vec<u8>| {
            acc = (acc << width) | u64::try_from(code).unwrap();
            nbits += width;
            while nbits >= 8 {
                out.push(u8::try_from((acc >> (nbits - 8)) & 0xFF).unwrap());
                nbits -= 8;
            }
        };
        let width_for = |next: usize| match next + 1 {
            n if n >= 2048 => 12,
            n if n >= 1024 => 11,
            n if n >= 512 => 10,
            _ => 9,
        };
        let mut dict: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
        let mut next = 258;
        put(256, 9, &mut out);
        let mut cur: Vec<u8> = Vec::new();
        for &b in data {
            let mut cand = cur.clone();
            cand.push(b);
            if cand.len() == 1 || dict.contains_key(&cand) {
                cur = cand;
                continue;
            }
            let code = if cur.len() == 1 {
                usize::from(cur[0])
            } else {
                dict[&cur]
            };
            put(code, width_for(next - 1), &mut out);
            dict.insert(cand, next);
            next += 1;
            if next == 4094 {
                put(256, width_for(next - 1), &mut out);
                dict.clear();
                next = 258;
            }
            cur = vec![b];
        }
        if !cur.is_empty() {
            let code = if cur.len() == 1 {
                usize::from(cur[0])
            } else {
                dict[&cur]
            };
            put(code, width_for(next - 1), &mut out);
            next += 1;
        }
        put(257, width_for(next - 1), &mut out);
        if nbits > 0 {
            out.push(u8::try_from((acc << (8 - nbits)) & 0xFF).unwrap());
        }
        out
    }

    fn packbits_encode(data: &[u8]) -> Vec<u8> {
        // Literal runs of up to 128, with a repeat run wherever 3+ bytes repeat.
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let mut run = 1;
            while i + run < data.len() && data[i + run] == data[i] && run < 128 {
                run += 1;
            }
            if run >= 3 {
                out.push(u8::try_from(257 - run).unwrap());
                out.push(data[i]);
                i += run;
            } else {
                let n = (data.len() - i).min(128).min(2);
                out.push(u8::try_from(n - 1).unwrap());
                out.extend_from_slice(&data[i..i + n]);
                i += n;
            }
        }
        out
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
    }

    /// Parses the copy back: per page (width, height, tags present, pixels).
    fn pages_of(copy: &[u8]) -> Vec<(Vec<u16>, Vec<u8>)> {
        let mut budget = u64::MAX;
        let mut removed = Vec::new();
        let o = Order { big: false };
        assert_eq!(&copy[..4], b"II*\0");
        let mut ifd = o.u32(copy, 4).unwrap() as usize;
        let mut out = Vec::new();
        while ifd != 0 {
            let n = usize::from(o.u16(copy, ifd).unwrap());
            let ids = (0..n)
                .map(|k| o.u16(copy, ifd + 2 + 12 * k).unwrap())
                .collect();
            let (p, next) = read_page(copy, o, ifd, 1, &mut budget, &mut removed).unwrap();
            out.push((ids, p.pixels));
            ifd = next;
        }
        assert!(removed.is_empty());
        out
    }

    fn rgb_pixels(w: usize, h: usize) -> Vec<u8> {
        (0..w * h * 3)
            .map(|i| u8::try_from((i * 7 + i / 5) % 251).unwrap())
            .collect()
    }

    fn rgb_tags(w: u32, h: u32, compression: u32, rows: u32) -> Vec<(u16, u16, Vec<u32>)> {
        vec![
            (256, 4, vec![w]),
            (257, 4, vec![h]),
            (258, 3, vec![8, 8, 8]),
            (259, 3, vec![compression]),
            (262, 3, vec![2]),
            (277, 3, vec![3]),
            (278, 4, vec![rows]),
        ]
    }

    #[test]
    fn every_compression_and_byte_order_decodes_to_the_same_pixels() {
        let (w, h) = (13u32, 7u32);
        let px = rgb_pixels(13, 7);
        let row = 13 * 3;
        let strips =
            |f: &dyn Fn(&[u8]) -> Vec<u8>| -> Vec<Vec<u8>> { px.chunks(row * 3).map(f).collect() };
        for big in [false, true] {
            for (compression, f) in [
                (1u32, &(|s: &[u8]| s.to_vec()) as &dyn Fn(&[u8]) -> Vec<u8>),
                (32773, &packbits_encode),
                (5, &lzw_encode),
                (8, &zlib),
            ] {
                let t = tiff(big, &[(rgb_tags(w, h, compression, 3), strips(f))]);
                let d = rebuild(&t, &Limits::default())
                    .unwrap_or_else(|e| panic!("{compression} {big}: {e}"));
                let pages = pages_of(&d.bytes);
                assert_eq!(pages.len(), 1);
                assert_eq!(
                    pages[0].1, px,
                    "compression {compression}, big-endian {big}"
                );
                assert_eq!(
                    pages[0].0,
                    [256, 257, 258, 259, 262, 273, 277, 278, 279, 284]
                );
            }
        }
    }

    #[test]
    fn lzw_survives_a_table_reset() {
        let data: Vec<u8> = (0..40_000u32)
            .map(|i| u8::try_from((i * i / 7 + i / 3) % 256).unwrap())
            .collect();
        assert_eq!(lzw(&lzw_encode(&data), data.len()).unwrap(), data);
    }

    #[test]
    fn predictor_and_16_bit_big_endian_samples_are_undone() {
        // 16-bit grey, big-endian, predictor 2, deflate: values 1000, 1010, 990 -> diffs.
        let mut diffs = Vec::new();
        for v in [1000u16, 10, 0u16.wrapping_sub(20)] {
            diffs.extend(v.to_be_bytes());
        }
        let tags = vec![
            (256, 4, vec![3]),
            (257, 4, vec![1]),
            (258, 3, vec![16]),
            (259, 3, vec![8]),
            (262, 3, vec![1]),
            (317, 3, vec![2]),
        ];
        let d = rebuild(
            &tiff(true, &[(tags, vec![zlib(&diffs)])]),
            &Limits::default(),
        )
        .unwrap();
        let mut expected = Vec::new();
        for v in [1000u16, 1010, 990] {
            expected.extend(v.to_le_bytes());
        }
        assert_eq!(pages_of(&d.bytes)[0].1, expected);
    }

    #[test]
    fn metadata_goes_pages_and_palette_stay() {
        let grey = vec![
            (256, 4, vec![8]),
            (257, 4, vec![2]),
            (258, 3, vec![1]),
            (262, 3, vec![0]),
            (
                270,
                2,
                b"secret note\0".iter().map(|&b| u32::from(b)).collect(),
            ),
            (282, 5, vec![300, 1]),
            (283, 5, vec![300, 1]),
            (
                700,
                7,
                b"<x:xmpmeta/>".iter().map(|&b| u32::from(b)).collect(),
            ),
            (34665, 4, vec![8]),
        ];
        let palette = vec![
            (256, 4, vec![2]),
            (257, 4, vec![1]),
            (258, 3, vec![2]),
            (262, 3, vec![3]),
            (320, 3, (0..12).map(|i| i * 5000).collect()),
            (33723, 4, vec![1]),
        ];
        let t = tiff(
            false,
            &[
                (grey, vec![vec![0b1010_0101, 0xFF]]),
                (palette, vec![vec![0b0111_0000]]),
            ],
        );
        let d = rebuild(&t, &Limits::default()).unwrap();
        let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "TIFF tag 270 (ImageDescription)",
                "TIFF tag 700 (XMP)",
                "TIFF tag 34665 (EXIF IFD)",
                "TIFF tag 33723 (IPTC)"
            ]
        );
        assert!(d.removed[3].location.starts_with("page 2,"));
        let pages = pages_of(&d.bytes);
        assert_eq!(
            pages[0],
            (
                vec![256, 257, 258, 259, 262, 273, 277, 278, 279, 282, 283, 296],
                vec![0b1010_0101, 0xFF]
            )
        );
        assert_eq!(
            pages[1],
            (
                vec![256, 257, 258, 259, 262, 273, 277, 278, 279, 320],
                vec![0b0111_0000]
            )
        );
        let text = String::from_utf8_lossy(&d.bytes);
        assert!(!text.contains("secret") && !text.contains("xmpmeta"));
        let again = rebuild(&d.bytes, &Limits::default()).unwrap();
        assert_eq!((again.bytes, again.removed), (d.bytes, vec![]));
    }

    #[test]
    fn broken_files_fail_with_page_and_place_and_limits_hold() {
        let ok = tiff(false, &[(rgb_tags(4, 4, 1, 4), vec![rgb_pixels(4, 4)])]);
        assert!(rebuild(&ok, &Limits::default()).is_ok());
        let failure = |t: &[u8], limits: &Limits| match rebuild(t, limits) {
            Err(ConvertError::Failed(f)) => (f[0].code.clone(), f[0].location.clone()),
            other => panic!("{other:?}"),
        };
        let short = tiff(false, &[(rgb_tags(4, 4, 1, 4), vec![rgb_pixels(4, 3)])]);
        let (code, at) = failure(&short, &Limits::default());
        assert_eq!(
            (code.as_str(), at.as_str()),
            ("CONVERT-TIFF-STRIP", "page 1, strip 1 at byte 8")
        );
        // An LZW code beyond the table: clear (256), then 300, 9 bits each.
        let bad = tiff(
            false,
            &[(rgb_tags(4, 4, 5, 4), vec![vec![0x80, 0x4B, 0x00]])],
        );
        assert_eq!(failure(&bad, &Limits::default()).0, "CONVERT-TIFF-LZW");
        let mut looped = ok.clone();
        let ifd = u32::from_le_bytes(looped[4..8].try_into().unwrap()) as usize;
        let n = usize::from(u16::from_le_bytes(looped[ifd..ifd + 2].try_into().unwrap()));
        looped[ifd + 2 + 12 * n..ifd + 6 + 12 * n]
            .copy_from_slice(&u32::try_from(ifd).unwrap().to_le_bytes());
        assert_eq!(failure(&looped, &Limits::default()).0, "CONVERT-TIFF-IFD");
        let few = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        let two = tiff(
            false,
            &[
                (rgb_tags(4, 4, 1, 4), vec![rgb_pixels(4, 4)]),
                (rgb_tags(4, 4, 1, 4), vec![rgb_pixels(4, 4)]),
            ],
        );
        let (code, at) = failure(&two, &few);
        assert_eq!(code, "CONVERT-TIFF-LIMIT");
        assert!(at.starts_with("page 2, IFD at byte "), "{at}");
        let small = Limits {
            memory_bytes: 60,
            ..Limits::default()
        };
        let (code, at) = failure(&two, &small);
        assert_eq!(code, "CONVERT-TIFF-SIZE");
        assert!(at.starts_with("page 2,"), "{at}");
        assert_eq!(
            rebuild(b"II+\0", &Limits::default()).unwrap_err(),
            ConvertError::Unsupported(FileType::Tiff)
        );
        assert_eq!(
            failure(b"IX*\0", &Limits::default()).0,
            "CONVERT-TIFF-HEADER"
        );
    }
}
