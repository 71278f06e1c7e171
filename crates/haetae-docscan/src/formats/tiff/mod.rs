//! TIFF (6.0, classic): byte order and magic, IFD offsets inside the file and not looping,
//! entry counts and field types, out-of-line values inside the file, and strip/tile offsets
//! and byte counts inside the file with matching counts (CVE-2010-0188 class).

use haetae_core::Severity;

use crate::bytes::{be16, be32, le16, le32};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats::Format;

/// The TIFF format.
#[derive(Debug, Clone, Copy)]
pub struct Tiff;

impl Format for Tiff {
    fn name(&self) -> &'static str {
        "tiff"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        (data.starts_with(b"II*\0") || data.starts_with(b"MM\0*")).then_some(FileType::Tiff)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        verify(data, ctx);
        FileType::Tiff
    }
}

struct Reader<'d> {
    data: &'d [u8],
    big: bool,
}

impl Reader<'_> {
    fn u16(&self, off: usize) -> Option<u16> {
        if self.big {
            be16(self.data, off)
        } else {
            le16(self.data, off)
        }
    }
    fn u32(&self, off: usize) -> Option<u32> {
        if self.big {
            be32(self.data, off)
        } else {
            le32(self.data, off)
        }
    }
    /// Values of a SHORT or LONG array field.
    fn values(&self, entry: usize) -> Vec<u64> {
        let kind = self.u16(entry + 2).unwrap_or(0);
        let count = self.u32(entry + 4).unwrap_or(0) as usize;
        let size = if kind == 3 { 2 } else { 4 };
        let at = if count * size <= 4 {
            entry + 8
        } else {
            self.u32(entry + 8).unwrap_or(0) as usize
        };
        (0..count.min(1 << 20))
            .map_while(|i| {
                if kind == 3 {
                    self.u16(at + 2 * i).map(u64::from)
                } else {
                    self.u32(at + 4 * i).map(u64::from)
                }
            })
            .collect()
    }
}

fn type_size(kind: u16) -> Option<u64> {
    Some(match kind {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        _ => return None,
    })
}

fn verify(data: &[u8], ctx: &mut ScanContext) {
    let r = Reader {
        data,
        big: data.starts_with(b"MM"),
    };
    let mut next = r.u32(4).unwrap_or(0) as usize;
    let mut seen: Vec<usize> = Vec::new();
    let mut index = 0usize;
    while next != 0 {
        if ctx.out_of_time() || !ctx.count_entry() {
            return;
        }
        let loc = |part: String| Location::at(next).with_part(part);
        if seen.contains(&next) {
            ctx.structure(
                "TIFF-IFD-LOOP",
                Severity::High,
                loc(format!("IFD {index}")),
                format!("IFD {index} points back to the IFD at {next}"),
            );
            return;
        }
        seen.push(next);
        let Some(n) = r.u16(next) else {
            ctx.structure(
                "TIFF-IFD-OFFSET",
                Severity::High,
                loc(format!("IFD {index}")),
                format!(
                    "IFD offset {next} is past the end of the file ({})",
                    data.len()
                ),
            );
            return;
        };
        let n = usize::from(n);
        let end = next + 2 + 12 * n;
        if end + 4 > data.len() {
            ctx.structure(
                "TIFF-IFD-COUNT",
                Severity::High,
                loc(format!("IFD {index}")),
                format!("{n} entries of 12 bytes run past the end of the file"),
            );
            return;
        }
        let mut strips: [(Option<usize>, Option<usize>); 2] = [(None, None), (None, None)];
        for i in 0..n {
            if !ctx.count_entry() {
                return;
            }
            let e = next + 2 + 12 * i;
            let tag = r.u16(e).unwrap_or(0);
            let kind = r.u16(e + 2).unwrap_or(0);
            let count = u64::from(r.u32(e + 4).unwrap_or(0));
            let eloc = || Location::at(e).with_part(format!("IFD {index} entry {i} (tag {tag})"));
            let Some(size) = type_size(kind) else {
                ctx.structure(
                    "TIFF-ENTRY-TYPE",
                    Severity::Low,
                    eloc(),
                    format!("field type {kind} is unknown"),
                );
                continue;
            };
            let bytes = size.saturating_mul(count);
            if bytes > 4 {
                let at = u64::from(r.u32(e + 8).unwrap_or(0));
                if at.saturating_add(bytes) > data.len() as u64 {
                    ctx.structure(
                        "TIFF-VALUE-OFFSET",
                        Severity::High,
                        eloc(),
                        format!("{count} values ({bytes} bytes) at offset {at} run past the end of the file"),
                    );
                    continue;
                }
            }
            match tag {
                273 => strips[0].0 = Some(e),
                279 => strips[0].1 = Some(e),
                324 => strips[1].0 = Some(e),
                325 => strips[1].1 = Some(e),
                _ => {}
            }
        }
        for (offsets, counts) in strips {
            let (Some(o), Some(c)) = (offsets, counts) else {
                continue;
            };
            let (offs, lens) = (r.values(o), r.values(c));
            if offs.len() != lens.len() {
                ctx.structure(
                    "TIFF-STRIP-COUNT",
                    Severity::High,
                    Location::at(o).with_part(format!("IFD {index}")),
                    format!(
                        "{} strip offsets but {} byte counts",
                        offs.len(),
                        lens.len()
                    ),
                );
            }
            if let Some((k, (off, len))) = offs
                .iter()
                .zip(&lens)
                .enumerate()
                .find(|(_, (off, len))| off.saturating_add(**len) > data.len() as u64)
            {
                ctx.report(
                    Finding::new(
                        "TIFF-STRIP-BOUNDS",
                        Severity::High,
                        FindingClass::Structure,
                        Location::at(o).with_part(format!("IFD {index} strip {k}")),
                        format!(
                            "strip {k} at {off} of {len} bytes runs past the end of the file ({})",
                            data.len()
                        ),
                    )
                    .cve(&["CVE-2010-0188"]),
                );
            }
        }
        next = r.u32(end).unwrap_or(0) as usize;
        index += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::findings_of;

    /// A little-endian TIFF with one IFD holding one strip at `strip_off` of `strip_len`.
    fn tiff(strip_off: u32, strip_len: u32, next: u32) -> Vec<u8> {
        let mut f = b"II*\0".to_vec();
        f.extend_from_slice(&8u32.to_le_bytes());
        f.extend_from_slice(&2u16.to_le_bytes());
        for (tag, val) in [(273u16, strip_off), (279u16, strip_len)] {
            f.extend_from_slice(&tag.to_le_bytes());
            f.extend_from_slice(&4u16.to_le_bytes());
            f.extend_from_slice(&1u32.to_le_bytes());
            f.extend_from_slice(&val.to_le_bytes());
        }
        f.extend_from_slice(&next.to_le_bytes());
        f.extend_from_slice(&[0; 16]);
        f
    }

    #[test]
    fn a_strip_inside_the_file_is_clean() {
        assert_eq!(findings_of(&tiff(30, 16, 0), "a.tif"), vec![]);
    }

    #[test]
    fn a_strip_past_the_end_is_reported() {
        assert_eq!(
            findings_of(&tiff(30, 5000, 0), "a.tif"),
            vec![(
                "TIFF-STRIP-BOUNDS".to_owned(),
                "IFD 0 strip 0 @0xa".to_owned()
            )]
        );
    }

    #[test]
    fn an_ifd_pointing_to_itself_is_a_loop() {
        assert_eq!(findings_of(&tiff(30, 16, 8), "a.tif")[0].0, "TIFF-IFD-LOOP");
    }

    #[test]
    fn an_ifd_past_the_end_is_reported() {
        assert_eq!(
            findings_of(&tiff(30, 16, 9999), "a.tif")[0].0,
            "TIFF-IFD-OFFSET"
        );
    }
}
