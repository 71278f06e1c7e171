//! `OfficeArt` (MS-ODRAW) drawing records, shared by Excel (`MSODRAWINGGROUP`/`MSODRAWING`),
//! `PowerPoint` (`PPDrawingGroup`, `PPDrawing`, the `Pictures` stream) and Word. The record
//! tree is checked (8-byte headers, children inside their container, `OfficeArt` record
//! types inside `OfficeArt` containers, the fixed sizes of the fixed-size atoms), and every
//! picture (BLIP) is located and its image scanned with the same engine: a malformed JPEG
//! or PNG inside a spreadsheet reaches the same GDI+/libpng code as a standalone one.

use haetae_core::Severity;

use crate::bytes::{le16, le32, slice};
use crate::container::inflate::{Framing, InflateError, inflate_count};
use crate::context::ScanContext;
use crate::finding::Location;

/// Where a drawing stream came from, for locations: the CFB stream path and a name of the
/// concatenated part (`drawing group`, `sheet 2 drawing`).
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// CFB stream path (`Workbook`).
    pub stream: &'a str,
    /// The drawing part inside it.
    pub part: &'a str,
    /// Offset of the part's first byte in the stream, when the part is contiguous there.
    pub base: Option<usize>,
}

impl Origin<'_> {
    fn loc(&self, offset: usize, what: impl std::fmt::Display) -> Location {
        let mut l = Location::part(format!("{} > {what}", self.part));
        l.path = vec![self.stream.to_owned()];
        l.offset = Some(self.base.map_or(offset, |b| b + offset) as u64);
        l
    }
}

/// Records that hold other `OfficeArt` records.
const fn is_container(kind: u16) -> bool {
    matches!(kind, 0xF000..=0xF005 | 0xF118)
}

/// Fixed body sizes of atoms readers copy into fixed structures.
const fn fixed_size(kind: u16) -> Option<u32> {
    match kind {
        0xF008 | 0xF00A => Some(8),           // FDG, FSP
        0xF009 | 0xF00F | 0xF11E => Some(16), // FSPGR, ChildAnchor, SplitMenuColors
        0xF012 => Some(24),                   // FConnectorRule
        _ => None,
    }
}

/// Walks a drawing part: `data` is the concatenated `OfficeArt` bytes.
pub fn verify(data: &[u8], origin: &Origin, ctx: &mut ScanContext) {
    let mut blips = 0usize;
    // The ends of the enclosing containers.
    let mut stack: Vec<usize> = Vec::new();
    let mut pos = 0usize;
    let mut records = 0usize;
    while pos < data.len() {
        if ctx.out_of_time() || records > 200_000 {
            return;
        }
        records += 1;
        while stack.last().is_some_and(|&end| pos >= end) {
            stack.pop();
        }
        let end = stack.last().copied().unwrap_or(data.len());
        let (Some(vi), Some(kind), Some(len)) =
            (le16(data, pos), le16(data, pos + 2), le32(data, pos + 4))
        else {
            // Trailing bytes shorter than a header at the top level are padding.
            if !stack.is_empty() {
                ctx.structure(
                    "OFFICEART-RECORD-TRUNCATED",
                    Severity::High,
                    origin.loc(pos, format!("record {records}")),
                    "the drawing data ends inside a record header",
                );
            }
            return;
        };
        let what = || format!("record {records} (type {kind:#06x})");
        let body = pos + 8;
        let body_end = body.saturating_add(len as usize);
        if body_end > end {
            ctx.structure(
                "OFFICEART-RECORD-LENGTH",
                Severity::High,
                origin.loc(pos, what()),
                format!("a record of {len} bytes runs past its container (ends at {end})"),
            );
            return;
        }
        if !stack.is_empty() && kind < 0xF000 {
            ctx.structure(
                "OFFICEART-RECORD-TYPE",
                Severity::Medium,
                origin.loc(pos, what()),
                format!(
                    "record type {kind:#06x} inside an OfficeArt container (types start at 0xf000)"
                ),
            );
            return;
        }
        if let Some(size) = fixed_size(kind)
            && len != size
        {
            ctx.structure(
                "OFFICEART-RECORD-SIZE",
                Severity::High,
                origin.loc(pos, what()),
                format!("a record of type {kind:#06x} holds {size} bytes, this one declares {len}"),
            );
            return;
        }
        let body_bytes = data.get(body..body_end).unwrap_or_default();
        if vi & 0x0F == 0x0F && is_container(kind) {
            if stack.len() >= 64 {
                ctx.structure(
                    "OFFICEART-RECORD-DEPTH",
                    Severity::High,
                    origin.loc(pos, what()),
                    "drawing containers nest more than 64 deep",
                );
                return;
            }
            stack.push(body_end);
            pos = body;
            continue;
        }
        match kind {
            0xF007 => {
                if let Some(blip) = bse_blip(body_bytes, body, origin, records, ctx) {
                    blips += 1;
                    check_blip(blip.0, blip.1, origin, blips, ctx);
                }
            }
            0xF018..=0xF117 => {
                blips += 1;
                check_blip(
                    data.get(pos..body_end).unwrap_or_default(),
                    pos,
                    origin,
                    blips,
                    ctx,
                );
            }
            _ => {}
        }
        pos = body_end;
    }
}

/// An `OfficeArtFBSE` (MS-ODRAW 2.2.32): 36 fixed bytes, a name of `cbName` bytes, then
/// the picture record itself when it is stored inline. Returns the inline BLIP record.
fn bse_blip<'d>(
    body: &'d [u8],
    at: usize,
    origin: &Origin,
    index: usize,
    ctx: &mut ScanContext,
) -> Option<(&'d [u8], usize)> {
    let Some(cb_name) = body.get(33).copied() else {
        ctx.structure(
            "OFFICEART-RECORD-SIZE",
            Severity::High,
            origin.loc(at, format!("record {index} (FBSE)")),
            format!("a picture entry of {} bytes (at least 36)", body.len()),
        );
        return None;
    };
    let inline = 36 + usize::from(cb_name);
    if inline > body.len() {
        ctx.structure(
            "OFFICEART-RECORD-SIZE",
            Severity::High,
            origin.loc(at + 33, format!("record {index} (FBSE)")),
            format!(
                "a picture name of {cb_name} bytes runs past the {}-byte entry",
                body.len()
            ),
        );
        return None;
    }
    (inline + 8 <= body.len()).then(|| (body.get(inline..).unwrap_or_default(), at + inline))
}

/// The kind of picture a BLIP record type holds, and the instances (one or two 16-byte
/// UIDs) MS-ODRAW 2.2.23 allows for it.
fn blip_kind(kind: u16) -> Option<(&'static str, [u16; 4], bool)> {
    Some(match kind {
        0xF01A => ("emf", [0x3D4, 0x3D5, 0, 0], true),
        0xF01B => ("wmf", [0x216, 0x217, 0, 0], true),
        0xF01C => ("pict", [0x542, 0x543, 0, 0], true),
        0xF01D | 0xF02A => ("jpeg", [0x46A, 0x46B, 0x6E2, 0x6E3], false),
        0xF01E => ("png", [0x6E0, 0x6E1, 0, 0], false),
        0xF01F => ("dib", [0x7A8, 0x7A9, 0, 0], false),
        0xF029 => ("tiff", [0x6E4, 0x6E5, 0, 0], false),
        _ => return None,
    })
}

/// One BLIP record (header included) at offset `at` of the drawing part.
fn check_blip(rec: &[u8], at: usize, origin: &Origin, index: usize, ctx: &mut ScanContext) {
    let (Some(vi), Some(kind)) = (le16(rec, 0), le16(rec, 2)) else {
        return;
    };
    let body = rec.get(8..).unwrap_or_default();
    let what = || format!("picture {index} (type {kind:#06x})");
    let Some((name, instances, metafile)) = blip_kind(kind) else {
        ctx.structure(
            "OFFICEART-BLIP-TYPE",
            Severity::Medium,
            origin.loc(at, what()),
            format!("picture record type {kind:#06x} does not exist"),
        );
        return;
    };
    let inst = vi >> 4;
    let Some(slot) = instances.iter().position(|&i| i == inst && i != 0) else {
        ctx.structure(
            "OFFICEART-BLIP-INSTANCE",
            Severity::Medium,
            origin.loc(at, what()),
            format!("instance {inst:#x} is not one a {name} picture may have"),
        );
        return;
    };
    let uids = 1 + slot % 2;
    if metafile {
        check_metafile(body, 16 * uids, at, origin, &what(), ctx);
        return;
    }
    let Some(image) = body.get(16 * uids + 1..) else {
        ctx.structure(
            "OFFICEART-BLIP-SIZE",
            Severity::High,
            origin.loc(at, what()),
            format!(
                "a {}-byte picture record ends inside its header",
                body.len()
            ),
        );
        return;
    };
    if name == "dib" {
        return; // a headerless bitmap: the BMP verifier needs the file header
    }
    let inner = format!("{} > {} > {}", origin.stream, origin.part, what());
    ctx.scan_embedded(image, &inner);
}

/// A metafile picture (MS-ODRAW 2.2.31): `cbSize` uncompressed bytes, `cbSave` stored,
/// compression 0 (deflate) or 0xFE (none), filter 0xFE.
fn check_metafile(
    body: &[u8],
    header_at: usize,
    at: usize,
    origin: &Origin,
    what: &str,
    ctx: &mut ScanContext,
) {
    let Some(h) = slice(body, header_at, 34) else {
        ctx.structure(
            "OFFICEART-BLIP-SIZE",
            Severity::High,
            origin.loc(at, what.to_owned()),
            format!(
                "a {}-byte metafile record ends inside its header",
                body.len()
            ),
        );
        return;
    };
    let cb_size = le32(h, 0).unwrap_or(0);
    let cb_save = le32(h, 28).unwrap_or(0);
    let (compression, filter) = (h.get(32).copied(), h.get(33).copied());
    let data = body.get(header_at + 34..).unwrap_or_default();
    if cb_save as usize > data.len() {
        ctx.structure(
            "OFFICEART-BLIP-SIZE",
            Severity::High,
            origin.loc(at, what.to_owned()),
            format!(
                "the metafile declares {cb_save} stored bytes but the record holds {}",
                data.len()
            ),
        );
        return;
    }
    if !matches!(compression, Some(0 | 0xFE)) || filter != Some(0xFE) {
        ctx.structure(
            "OFFICEART-BLIP-FIELDS",
            Severity::Medium,
            origin.loc(at, what.to_owned()),
            format!(
                "metafile compression {compression:?} (0 or 0xfe) and filter {filter:?} (0xfe)"
            ),
        );
        return;
    }
    if compression == Some(0) {
        let stored = data.get(..cb_save as usize).unwrap_or_default();
        let cap = (ctx.inflate_cap(stored.len()) as u64).min(u64::from(cb_size) + 1);
        match inflate_count(stored, Framing::Zlib, cap) {
            Ok(done) if done.produced == u64::from(cb_size) => {}
            Ok(done) => ctx.structure(
                "OFFICEART-BLIP-SIZE",
                Severity::Medium,
                origin.loc(at, what.to_owned()),
                format!(
                    "the metafile declares {cb_size} bytes but inflates to {}",
                    done.produced
                ),
            ),
            Err(InflateError::OverCap { .. }) => ctx.structure(
                "OFFICEART-BLIP-SIZE",
                Severity::Medium,
                origin.loc(at, what.to_owned()),
                format!(
                    "the metafile declares {cb_size} bytes but inflates to more (stopped at {cap})"
                ),
            ),
            Err(e) => ctx.structure(
                "OFFICEART-BLIP-INFLATE",
                Severity::Medium,
                origin.loc(at, what.to_owned()),
                format!("the compressed metafile is broken: {e}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn rec(ver: u16, inst: u16, kind: u16, body: &[u8]) -> Vec<u8> {
        let mut r = (ver | inst << 4).to_le_bytes().to_vec();
        r.extend_from_slice(&kind.to_le_bytes());
        r.extend_from_slice(&(body.len() as u32).to_le_bytes());
        r.extend_from_slice(body);
        r
    }

    fn run(data: &[u8]) -> Vec<(String, String)> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, data.len());
        let origin = Origin {
            stream: "Workbook",
            part: "drawing group",
            base: Some(100),
        };
        verify(data, &origin, &mut ctx);
        ctx.into_findings()
            .into_iter()
            .map(|f| (f.code, f.location.to_string()))
            .collect()
    }

    /// A drawing group holding one picture entry with an inline BLIP of `blip` bytes.
    fn group(blip: &[u8]) -> Vec<u8> {
        let mut fbse = vec![0u8; 36];
        fbse.extend_from_slice(blip);
        let store = rec(0xF, 1, 0xF001, &rec(2, 6, 0xF007, &fbse));
        let mut body = rec(0, 0, 0xF006, &[0u8; 16]);
        body.extend_from_slice(&store);
        rec(0xF, 0, 0xF000, &body)
    }

    fn png_blip(png: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 17];
        b.extend_from_slice(png);
        rec(0, 0x6E0, 0xF01E, &b)
    }

    /// The smallest valid PNG: one black pixel.
    fn tiny_png() -> Vec<u8> {
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        let chunk = |p: &mut Vec<u8>, t: &[u8], d: &[u8]| {
            p.extend_from_slice(&(d.len() as u32).to_be_bytes());
            let mut c = t.to_vec();
            c.extend_from_slice(d);
            p.extend_from_slice(&c);
            p.extend_from_slice(&crate::container::crc32::crc32(&c).to_be_bytes());
        };
        chunk(&mut p, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        chunk(
            &mut p,
            b"IDAT",
            &miniz_oxide::deflate::compress_to_vec_zlib(&[0, 0], 6),
        );
        chunk(&mut p, b"IEND", &[]);
        p
    }

    #[test]
    fn a_drawing_group_with_a_valid_picture_is_clean() {
        assert_eq!(run(&group(&png_blip(&tiny_png()))), Vec::new());
    }

    #[test]
    fn a_broken_picture_inside_the_drawing_is_scanned_and_reported() {
        let mut png = tiny_png();
        let last = png.len() - 13;
        png[last] ^= 0xFF; // break the IDAT CRC
        let found = run(&group(&png_blip(&png)));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "PNG-CRC");
        assert!(
            found[0]
                .1
                .starts_with("Workbook > drawing group > picture 1 (type 0xf01e)")
        );
    }

    #[test]
    fn a_record_overrunning_its_container_is_reported() {
        let mut g = group(&png_blip(&tiny_png()));
        g[8 + 4] = 0xFF; // the FDGG's length
        assert_eq!(
            run(&g),
            vec![(
                "OFFICEART-RECORD-LENGTH".to_owned(),
                "Workbook > drawing group > record 2 (type 0xf006) @0x6c".to_owned()
            )]
        );
    }

    #[test]
    fn a_fixed_size_atom_of_the_wrong_size_is_reported() {
        let g = rec(0xF, 0, 0xF002, &rec(0, 0, 0xF008, &[0u8; 4]));
        assert_eq!(run(&g)[0].0, "OFFICEART-RECORD-SIZE");
    }

    #[test]
    fn a_picture_with_an_unknown_instance_is_reported() {
        let mut b = vec![0u8; 17];
        b.extend_from_slice(&tiny_png());
        assert_eq!(
            run(&group(&rec(0, 0x123, 0xF01E, &b)))[0].0,
            "OFFICEART-BLIP-INSTANCE"
        );
    }

    #[test]
    fn a_metafile_larger_than_declared_is_reported() {
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&[7u8; 1000], 6);
        let mut b = vec![0u8; 16];
        let mut h = [0u8; 34];
        h[0..4].copy_from_slice(&10u32.to_le_bytes()); // claims 10 bytes
        h[28..32].copy_from_slice(&(packed.len() as u32).to_le_bytes());
        h[32] = 0;
        h[33] = 0xFE;
        b.extend_from_slice(&h);
        b.extend_from_slice(&packed);
        assert_eq!(
            run(&group(&rec(0, 0x3D4, 0xF01A, &b)))[0].0,
            "OFFICEART-BLIP-SIZE"
        );
    }
}
