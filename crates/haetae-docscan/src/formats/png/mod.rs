//! PNG (ISO/IEC 15948): signature, chunk lengths and CRCs, IHDR (length 13, legal bit
//! depth / colour type pairs, dimensions — CVE-2004-0599), PLTE/tRNS/sBIT/hIST lengths
//! (CVE-2004-0597, CVE-2015-8126 class), the inflated IDAT size against
//! rows × (1 + row bytes) with the filter byte of every row, capped zTXt/iCCP/iTXt, IEND.

use haetae_core::Severity;

use crate::bytes::{be32, slice, u8_at};
use crate::container::crc32::Crc32;
use crate::container::inflate::{Framing, InflateError, inflate_count, inflate_partial};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats::Format;

/// The PNG format.
#[derive(Debug, Clone, Copy)]
pub struct Png;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

impl Format for Png {
    fn name(&self) -> &'static str {
        "png"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        // Also a mangled signature (bad bytes, CR/LF conversion) when the first chunk
        // is still IHDR: the file means to be a PNG and is broken.
        let near_ihdr = (8..=16).any(|o| slice(data, o, 4) == Some(b"IHDR"));
        (data.starts_with(&SIGNATURE) || (slice(data, 1, 3) == Some(b"PNG") && near_ihdr))
            .then_some(FileType::Png)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        verify(data, ctx);
        FileType::Png
    }
}

#[derive(Default)]
struct Header {
    width: u32,
    height: u32,
    depth: u8,
    colour: u8,
    interlace: u8,
}

impl Header {
    fn channels(&self) -> u64 {
        match self.colour {
            2 => 3,
            4 => 2,
            6 => 4,
            _ => 1,
        }
    }

    /// Bytes of one row of `w` pixels, without the filter byte.
    fn row_bytes(&self, w: u64) -> u64 {
        (w * self.channels() * u64::from(self.depth)).div_ceil(8)
    }

    /// Bytes the inflated IDAT stream must hold: every (sub-)image row with its filter byte.
    fn raw_size(&self) -> u64 {
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        if self.interlace == 0 {
            return h * (1 + self.row_bytes(w));
        }
        const PASSES: [(u64, u64, u64, u64); 7] = [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ];
        PASSES
            .iter()
            .map(|&(x0, y0, dx, dy)| {
                let pw = w.saturating_sub(x0).div_ceil(dx);
                let ph = h.saturating_sub(y0).div_ceil(dy);
                if pw == 0 || ph == 0 {
                    0
                } else {
                    ph * (1 + self.row_bytes(pw))
                }
            })
            .sum()
    }
}

fn legal_depth(colour: u8, depth: u8) -> bool {
    match colour {
        0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(depth, 8 | 16),
        _ => false,
    }
}

#[allow(clippy::too_many_lines)]
fn verify(data: &[u8], ctx: &mut ScanContext) {
    if !data.starts_with(&SIGNATURE) {
        ctx.structure(
            "PNG-SIGNATURE",
            Severity::High,
            Location::at(0),
            format!(
                "signature bytes {:02x?} (must be 89 50 4e 47 0d 0a 1a 0a; CR/LF conversion or tampering)",
                data.get(..8).unwrap_or(data)
            ),
        );
        return;
    }
    let mut pos = 8usize;
    let mut index = 0usize;
    let mut hdr: Option<Header> = None;
    let mut palette_entries: Option<usize> = None;
    let mut idat: Vec<(usize, usize)> = Vec::new();
    let mut idat_done = false;
    let mut seen_iend = false;
    while pos < data.len() {
        if ctx.out_of_time() || !ctx.count_entry() {
            return;
        }
        index += 1;
        let (Some(len), Some(kind)) = (be32(data, pos), slice(data, pos + 4, 4)) else {
            ctx.structure(
                "PNG-CHUNK-TRUNCATED",
                Severity::High,
                Location::at(pos).with_part(format!("chunk {index}")),
                "the file ends inside a chunk header",
            );
            return;
        };
        let name = String::from_utf8_lossy(kind).into_owned();
        let at = pos;
        let loc = || Location::at(at).with_part(format!("chunk {index} ({name})"));
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            ctx.structure(
                "PNG-CHUNK-TYPE",
                Severity::High,
                loc(),
                format!("chunk type bytes {kind:02x?} are not letters"),
            );
            return;
        }
        if len > 0x7FFF_FFFF {
            ctx.structure(
                "PNG-CHUNK-LENGTH",
                Severity::High,
                loc(),
                format!("chunk length {len} exceeds 2^31-1"),
            );
            return;
        }
        let len = len as usize;
        let Some(body) = slice(data, pos + 8, len) else {
            ctx.structure(
                "PNG-CHUNK-TRUNCATED",
                Severity::High,
                loc(),
                format!("chunk length {len} runs past the end of the file"),
            );
            return;
        };
        let critical = kind.first().is_some_and(u8::is_ascii_uppercase);
        match be32(data, pos + 8 + len) {
            None => {
                ctx.structure(
                    "PNG-CHUNK-TRUNCATED",
                    Severity::High,
                    loc(),
                    "the file ends before the chunk's CRC",
                );
                return;
            }
            Some(stored) => {
                let mut crc = Crc32::default();
                crc.update(kind);
                crc.update(body);
                if crc.value() != stored {
                    ctx.structure(
                        "PNG-CRC",
                        if critical {
                            Severity::High
                        } else {
                            Severity::Medium
                        },
                        loc(),
                        format!("CRC {stored:#010x}, computed {:#010x}", crc.value()),
                    );
                }
            }
        }
        if index == 1 && kind != b"IHDR" {
            ctx.structure(
                "PNG-IHDR-MISSING",
                Severity::High,
                loc(),
                "the first chunk is not IHDR",
            );
            return;
        }
        if seen_iend {
            ctx.structure(
                "PNG-AFTER-IEND",
                Severity::Medium,
                loc(),
                "a chunk after IEND",
            );
        }
        if kind != b"IDAT" && !idat.is_empty() {
            idat_done = true;
        }
        match kind {
            b"IHDR" => {
                if index != 1 {
                    ctx.structure("PNG-IHDR-DUPLICATE", Severity::High, loc(), "a second IHDR");
                } else {
                    hdr = check_ihdr(body, ctx, &loc);
                    if hdr.is_none() {
                        return;
                    }
                }
            }
            b"PLTE" => {
                let depth_max = hdr.as_ref().map_or(256, |h| {
                    if h.colour == 3 {
                        1usize << h.depth.min(8)
                    } else {
                        256
                    }
                });
                if !len.is_multiple_of(3) || len == 0 || len / 3 > depth_max {
                    ctx.report(
                        Finding::new(
                            "PNG-PLTE-LENGTH",
                            Severity::High,
                            FindingClass::Structure,
                            loc(),
                            format!("palette of {len} bytes (a multiple of 3, at most {depth_max} entries)"),
                        )
                        .cve(&["CVE-2015-8126"]),
                    );
                }
                if hdr.as_ref().is_some_and(|h| h.colour == 0 || h.colour == 4) {
                    ctx.structure(
                        "PNG-PLTE-FORBIDDEN",
                        Severity::Medium,
                        loc(),
                        "a palette in a greyscale image",
                    );
                }
                palette_entries = Some(len / 3);
            }
            b"tRNS" => {
                let ok = match hdr.as_ref().map_or(0, |h| h.colour) {
                    0 => len == 2,
                    2 => len == 6,
                    3 => palette_entries.is_some_and(|n| len <= n),
                    _ => false,
                };
                if !ok {
                    ctx.report(
                        Finding::new(
                            "PNG-TRNS-LENGTH",
                            Severity::High,
                            FindingClass::Structure,
                            loc(),
                            format!("tRNS of {len} bytes does not fit the colour type and palette"),
                        )
                        .cve(&["CVE-2004-0597"]),
                    );
                }
            }
            b"sBIT" => {
                let want = match hdr.as_ref().map_or(0, |h| h.colour) {
                    0 => 1,
                    2 | 3 => 3,
                    4 => 2,
                    _ => 4,
                };
                if len != want {
                    ctx.report(
                        Finding::new(
                            "PNG-SBIT-LENGTH",
                            Severity::High,
                            FindingClass::Structure,
                            loc(),
                            format!("sBIT of {len} bytes (must be {want} for this colour type)"),
                        )
                        .cve(&["CVE-2004-0597"]),
                    );
                }
            }
            b"hIST" if palette_entries.is_none_or(|n| len != 2 * n) => {
                ctx.report(
                    Finding::new(
                        "PNG-HIST-LENGTH",
                        Severity::High,
                        FindingClass::Structure,
                        loc(),
                        format!("hIST of {len} bytes (must be 2 per palette entry)"),
                    )
                    .cve(&["CVE-2004-0597"]),
                );
            }
            b"IDAT" => {
                if idat_done {
                    ctx.structure(
                        "PNG-IDAT-SPLIT",
                        Severity::Medium,
                        loc(),
                        "IDAT chunks are not consecutive",
                    );
                }
                idat.push((pos + 8, len));
            }
            b"zTXt" | b"iCCP" => check_compressed_text(body, 0, ctx, &loc),
            b"iTXt" => check_compressed_text(body, 2, ctx, &loc),
            b"IEND" => {
                seen_iend = true;
                let after = data.len().saturating_sub(pos + 12);
                if after > 0 {
                    ctx.structure(
                        "PNG-DATA-AFTER-IEND",
                        Severity::Low,
                        Location::at(pos + 12),
                        format!("{after} bytes follow IEND"),
                    );
                    return;
                }
            }
            _ => {}
        }
        pos += 12 + len;
    }
    if let Some(h) = &hdr {
        if h.colour == 3 && palette_entries.is_none() {
            ctx.structure(
                "PNG-PLTE-MISSING",
                Severity::High,
                Location::part("PLTE"),
                "a palette image without a PLTE chunk",
            );
        }
        if idat.is_empty() {
            ctx.structure(
                "PNG-IDAT-MISSING",
                Severity::High,
                Location::part("IDAT"),
                "no image data (IDAT) chunk",
            );
        } else {
            check_idat(data, &idat, h, ctx);
        }
    }
    if !seen_iend {
        ctx.structure(
            "PNG-IEND-MISSING",
            Severity::Medium,
            Location::at(data.len()),
            "the file ends without an IEND chunk",
        );
    }
}

fn check_ihdr(body: &[u8], ctx: &mut ScanContext, loc: &dyn Fn() -> Location) -> Option<Header> {
    if body.len() != 13 {
        ctx.structure(
            "PNG-IHDR-LENGTH",
            Severity::High,
            loc(),
            format!("IHDR of {} bytes (must be 13)", body.len()),
        );
        return None;
    }
    let h = Header {
        width: be32(body, 0)?,
        height: be32(body, 4)?,
        depth: u8_at(body, 8)?,
        colour: u8_at(body, 9)?,
        interlace: u8_at(body, 12)?,
    };
    if h.width == 0 || h.height == 0 || h.width > 0x7FFF_FFFF || h.height > 0x7FFF_FFFF {
        ctx.report(
            Finding::new(
                "PNG-IHDR-DIMENSIONS",
                Severity::High,
                FindingClass::Structure,
                loc(),
                format!("{}x{} pixels (each 1..2^31-1)", h.width, h.height),
            )
            .cve(&["CVE-2004-0599"]),
        );
        return None;
    }
    if !legal_depth(h.colour, h.depth) {
        ctx.report(
            Finding::new(
                "PNG-IHDR-DEPTH-COLOUR",
                Severity::High,
                FindingClass::Structure,
                loc(),
                format!(
                    "bit depth {} with colour type {} is not a legal pair",
                    h.depth, h.colour
                ),
            )
            .cve(&["CVE-2015-8126"]),
        );
        return None;
    }
    if u8_at(body, 10) != Some(0) || u8_at(body, 11) != Some(0) || h.interlace > 1 {
        ctx.structure(
            "PNG-IHDR-METHOD",
            Severity::High,
            loc(),
            format!(
                "compression {}, filter {}, interlace {} (must be 0, 0, 0-1)",
                u8_at(body, 10).unwrap_or(0),
                u8_at(body, 11).unwrap_or(0),
                h.interlace
            ),
        );
        return None;
    }
    Some(h)
}

fn check_compressed_text(
    body: &[u8],
    extra_after_keyword: usize,
    ctx: &mut ScanContext,
    loc: &dyn Fn() -> Location,
) {
    let Some(nul) = body.iter().take(80).position(|&b| b == 0) else {
        ctx.structure(
            "PNG-TEXT-KEYWORD",
            Severity::Medium,
            loc(),
            "keyword longer than 79 bytes or not terminated",
        );
        return;
    };
    if extra_after_keyword == 2 && u8_at(body, nul + 1) != Some(1) {
        return; // iTXt without compression
    }
    let start = nul + 1 + extra_after_keyword;
    let start = if extra_after_keyword == 2 {
        // iTXt: flag, method, language tag\0, translated keyword\0
        let mut p = start;
        for _ in 0..2 {
            match body.get(p..).and_then(|t| t.iter().position(|&b| b == 0)) {
                Some(n) => p += n + 1,
                None => return,
            }
        }
        p
    } else {
        start + 1
    };
    let packed = body.get(start..).unwrap_or_default();
    let cap = ctx.inflate_cap(packed.len()) as u64;
    match inflate_count(packed, Framing::Zlib, cap) {
        Ok(_) => {}
        Err(InflateError::OverCap { .. }) => ctx.structure(
            "PNG-TEXT-RATIO",
            Severity::High,
            loc(),
            format!("compressed text inflates past {cap} bytes (a decompression bomb)"),
        ),
        Err(e) => ctx.structure(
            "PNG-TEXT-INFLATE",
            Severity::Medium,
            loc(),
            format!("compressed text is broken: {e}"),
        ),
    }
}

fn check_idat(data: &[u8], idat: &[(usize, usize)], h: &Header, ctx: &mut ScanContext) {
    let expected = h.raw_size();
    let loc = Location::at(idat.first().map_or(0, |i| i.0)).with_part("IDAT");
    let total: usize = idat.iter().map(|i| i.1).sum();
    let mut packed = Vec::with_capacity(total);
    for &(s, l) in idat {
        packed.extend_from_slice(slice(data, s, l).unwrap_or_default());
    }
    let cap = expected.saturating_add(1);
    if !ctx.reserve(cap, loc.clone()) {
        return;
    }
    let (raw, result) = inflate_partial(&packed, Framing::Zlib, cap);
    ctx.release(cap);
    match result {
        Err(InflateError::OverCap { .. }) => {
            ctx.structure(
                "PNG-IDAT-SIZE",
                Severity::High,
                loc,
                format!(
                    "image data inflates past the {expected} bytes that {}x{} pixels need",
                    h.width, h.height
                ),
            );
            return;
        }
        Err(InflateError::Truncated { produced }) => {
            ctx.structure(
                "PNG-IDAT-TRUNCATED",
                Severity::Medium,
                loc.clone(),
                format!("image data stream ends early: {produced} of {expected} bytes"),
            );
        }
        Err(e) => {
            ctx.structure(
                "PNG-IDAT-INFLATE",
                Severity::High,
                loc,
                format!("image data is broken: {e}"),
            );
            return;
        }
        Ok(done) => {
            if done.produced < expected {
                ctx.structure(
                    "PNG-IDAT-SIZE",
                    Severity::Medium,
                    loc.clone(),
                    format!(
                        "image data inflates to {} bytes, {expected} expected",
                        done.produced
                    ),
                );
            }
        }
    }
    if h.interlace == 0 {
        let stride = usize::try_from(1 + h.row_bytes(u64::from(h.width))).unwrap_or(usize::MAX);
        for (row, chunk) in raw.chunks(stride).enumerate() {
            if chunk.first().is_some_and(|&f| f > 4) {
                ctx.structure(
                    "PNG-FILTER-TYPE",
                    Severity::High,
                    loc,
                    format!(
                        "row {row} has filter type {} (0-4)",
                        chunk.first().copied().unwrap_or(0)
                    ),
                );
                return;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::container::crc32::crc32;
    use crate::testing::findings_of;

    fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        let mut c = kind.to_vec();
        c.extend_from_slice(body);
        v.extend_from_slice(&crc32(&c).to_be_bytes());
        v
    }

    fn ihdr(w: u32, h: u32, depth: u8, colour: u8) -> Vec<u8> {
        let mut b = w.to_be_bytes().to_vec();
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[depth, colour, 0, 0, 0]);
        b
    }

    /// A valid 4x4 8-bit greyscale PNG, with `extra` chunks before IDAT.
    pub(crate) fn png_with(header: &[u8], extra: &[u8]) -> Vec<u8> {
        let raw = vec![0u8; 4 * 5];
        let mut f = SIGNATURE.to_vec();
        f.extend(chunk(b"IHDR", header));
        f.extend_from_slice(extra);
        f.extend(chunk(
            b"IDAT",
            &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
        ));
        f.extend(chunk(b"IEND", &[]));
        f
    }

    fn codes(data: &[u8]) -> Vec<String> {
        findings_of(data, "x.png")
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    #[test]
    fn a_valid_greyscale_image_is_clean() {
        assert_eq!(
            codes(&png_with(&ihdr(4, 4, 8, 0), &[])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_mangled_signature_is_reported() {
        let mut f = png_with(&ihdr(4, 4, 8, 0), &[]);
        f[0] = 0x88;
        assert_eq!(codes(&f), ["PNG-SIGNATURE"]);
    }

    #[test]
    fn a_bad_ihdr_crc_is_reported_at_the_chunk() {
        let mut f = png_with(&ihdr(4, 4, 8, 0), &[]);
        f[29] ^= 1;
        assert_eq!(
            findings_of(&f, "x.png"),
            vec![("PNG-CRC".to_owned(), "chunk 1 (IHDR) @0x8".to_owned())]
        );
    }

    #[test]
    fn an_illegal_depth_colour_pair_is_reported() {
        assert_eq!(
            codes(&png_with(&ihdr(4, 4, 3, 2), &[])),
            ["PNG-IHDR-DEPTH-COLOUR"]
        );
    }

    #[test]
    fn zero_width_is_reported() {
        assert_eq!(
            codes(&png_with(&ihdr(0, 4, 8, 0), &[])),
            ["PNG-IHDR-DIMENSIONS"]
        );
    }

    #[test]
    fn a_trns_of_the_wrong_length_is_reported() {
        let f = png_with(&ihdr(4, 4, 8, 0), &chunk(b"tRNS", &[0; 7]));
        assert_eq!(codes(&f), ["PNG-TRNS-LENGTH"]);
    }

    #[test]
    fn image_data_larger_than_the_pixels_is_reported() {
        let mut f = SIGNATURE.to_vec();
        f.extend(chunk(b"IHDR", &ihdr(4, 4, 8, 0)));
        f.extend(chunk(
            b"IDAT",
            &miniz_oxide::deflate::compress_to_vec_zlib(&[0u8; 4000], 6),
        ));
        f.extend(chunk(b"IEND", &[]));
        assert_eq!(codes(&f), ["PNG-IDAT-SIZE"]);
    }

    #[test]
    fn a_missing_idat_is_reported() {
        let mut f = SIGNATURE.to_vec();
        f.extend(chunk(b"IHDR", &ihdr(4, 4, 8, 0)));
        f.extend(chunk(b"IEND", &[]));
        assert_eq!(codes(&f), ["PNG-IDAT-MISSING"]);
    }
}
