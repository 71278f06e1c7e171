//! JPEG (ITU T.81 / JFIF / Exif): walks the marker segments and checks each against the
//! standard: lengths (< 2, past the end), COM length (CVE-2004-0200, GDI+), DHT counts and
//! class/id ranges (CVE-2013-6630 class), DQT, SOF fields and dimensions, SOS before SOF and
//! its component references, DRI length, duplicate JFIF/Exif segments, data after EOI.

use haetae_core::Severity;

use crate::bytes::{be16, slice, u8_at};
use crate::context::ScanContext;
use crate::filetype::FileType;
use crate::finding::{Finding, FindingClass, Location};
use crate::formats::Format;

/// The JPEG format.
#[derive(Debug, Clone, Copy)]
pub struct Jpeg;

fn marker_name(m: u8) -> String {
    match m {
        0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => format!("SOF{}", m - 0xC0),
        0xC4 => "DHT".into(),
        0xCC => "DAC".into(),
        0xD8 => "SOI".into(),
        0xD9 => "EOI".into(),
        0xDA => "SOS".into(),
        0xDB => "DQT".into(),
        0xDD => "DRI".into(),
        0xE0..=0xEF => format!("APP{}", m - 0xE0),
        0xFE => "COM".into(),
        _ => format!("marker {m:#04x}"),
    }
}

impl Format for Jpeg {
    fn name(&self) -> &'static str {
        "jpeg"
    }

    fn detect(&self, data: &[u8]) -> Option<FileType> {
        data.starts_with(&[0xFF, 0xD8, 0xFF])
            .then_some(FileType::Jpeg)
    }

    fn verify(&self, data: &[u8], ctx: &mut ScanContext) -> FileType {
        verify(data, ctx);
        FileType::Jpeg
    }
}

struct Frame {
    components: Vec<u8>,
}

fn verify(data: &[u8], ctx: &mut ScanContext) {
    let mut pos = 2usize;
    let mut index = 0usize;
    let mut frame: Option<Frame> = None;
    let mut seen_jfif = false;
    let mut seen_exif = false;
    loop {
        if ctx.out_of_time() {
            return;
        }
        index += 1;
        // Fill bytes (0xFF) may precede a marker.
        let Some(first) = u8_at(data, pos) else {
            ctx.structure(
                "JPEG-NO-EOI",
                Severity::Low,
                Location::at(pos),
                "the file ends without an EOI marker",
            );
            return;
        };
        if first != 0xFF {
            ctx.structure(
                "JPEG-MARKER-EXPECTED",
                Severity::Medium,
                Location::at(pos).with_part(format!("segment {index}")),
                format!("byte {first:#04x} where a marker must start"),
            );
            return;
        }
        while u8_at(data, pos + 1) == Some(0xFF) {
            pos += 1;
        }
        let Some(m) = u8_at(data, pos + 1) else {
            ctx.structure(
                "JPEG-SEGMENT-TRUNCATED",
                Severity::Medium,
                Location::at(pos),
                "the file ends inside a marker",
            );
            return;
        };
        let seg_at = pos;
        let name = marker_name(m);
        let loc = || Location::at(seg_at).with_part(format!("segment {index} ({name})"));
        match m {
            0xD9 => {
                let after = data.len().saturating_sub(pos + 2);
                if after > 0 {
                    ctx.structure(
                        "JPEG-DATA-AFTER-EOI",
                        Severity::Low,
                        Location::at(pos + 2),
                        format!(
                            "{after} bytes follow the EOI marker (appended payload or polyglot)"
                        ),
                    );
                    let tail = data.get(pos + 2..).unwrap_or_default();
                    if tail.len() > 16 && !tail.iter().all(|&b| b == 0 || b == 0xFF) {
                        ctx.scan_embedded(tail, "data after EOI");
                    }
                }
                return;
            }
            0x01 | 0xD0..=0xD7 => {
                pos += 2;
                continue;
            }
            0xD8 => {
                ctx.structure(
                    "JPEG-SOI-REPEATED",
                    Severity::Medium,
                    loc(),
                    "a second SOI marker inside the image",
                );
                pos += 2;
                continue;
            }
            0x00 => {
                ctx.structure(
                    "JPEG-MARKER-EXPECTED",
                    Severity::Medium,
                    loc(),
                    "a stuffed zero where a marker must be",
                );
                return;
            }
            _ => {}
        }
        let Some(len) = be16(data, pos + 2) else {
            ctx.structure(
                "JPEG-SEGMENT-TRUNCATED",
                Severity::Medium,
                loc(),
                "the file ends inside a segment header",
            );
            return;
        };
        let len = usize::from(len);
        if len < 2 {
            if m == 0xFE {
                ctx.report(
                    Finding::new(
                        "JPEG-COM-LENGTH",
                        Severity::Critical,
                        FindingClass::Structure,
                        loc(),
                        format!("COM segment length {len} (must be at least 2): GDI+ underflows it into a 4 GB copy"),
                    )
                    .cve(&["CVE-2004-0200"]),
                );
            } else {
                ctx.structure(
                    "JPEG-SEGMENT-LENGTH",
                    Severity::High,
                    loc(),
                    format!("segment length {len} (must be at least 2)"),
                );
            }
            return;
        }
        let Some(body) = slice(data, pos + 4, len - 2) else {
            ctx.structure(
                "JPEG-SEGMENT-TRUNCATED",
                Severity::High,
                loc(),
                format!(
                    "segment length {len} runs past the end of the file ({} bytes left)",
                    data.len().saturating_sub(pos + 2)
                ),
            );
            return;
        };
        match m {
            0xC4 => check_dht(body, ctx, &loc),
            0xDB => check_dqt(body, ctx, &loc),
            0xDD if len != 4 => ctx.structure(
                "JPEG-DRI-LENGTH",
                Severity::High,
                loc(),
                format!("DRI length {len} (must be 4)"),
            ),
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                if frame.is_some() {
                    ctx.structure(
                        "JPEG-SOF-DUPLICATE",
                        Severity::Medium,
                        loc(),
                        "a second frame header",
                    );
                }
                frame = check_sof(body, ctx, &loc);
            }
            0xDA => {
                let Some(f) = &frame else {
                    ctx.structure(
                        "JPEG-SOS-BEFORE-SOF",
                        Severity::High,
                        loc(),
                        "a scan starts before any frame header (SOF) defines the image",
                    );
                    return;
                };
                check_sos(body, f, ctx, &loc);
                // Skip the entropy-coded data to the next real marker.
                let mut p = pos + 2 + len;
                loop {
                    let Some(rel) = data
                        .get(p..)
                        .and_then(|t| t.iter().position(|&b| b == 0xFF))
                    else {
                        ctx.structure(
                            "JPEG-NO-EOI",
                            Severity::Low,
                            Location::at(data.len()),
                            "the file ends inside the scan data without an EOI marker",
                        );
                        return;
                    };
                    p += rel;
                    match u8_at(data, p + 1) {
                        Some(0x00 | 0xD0..=0xD7 | 0xFF) | None => p += 1,
                        Some(_) => break,
                    }
                }
                pos = p;
                continue;
            }
            0xE0 if body.starts_with(b"JFIF\0") => {
                if seen_jfif {
                    ctx.structure(
                        "JPEG-APP-DUPLICATE",
                        Severity::Low,
                        loc(),
                        "a second JFIF header",
                    );
                }
                seen_jfif = true;
            }
            0xE1 if body.starts_with(b"Exif\0") => {
                if seen_exif {
                    ctx.structure(
                        "JPEG-APP-DUPLICATE",
                        Severity::Low,
                        loc(),
                        "a second Exif header",
                    );
                }
                seen_exif = true;
            }
            _ => {}
        }
        pos += 2 + len;
    }
}

fn check_dht(body: &[u8], ctx: &mut ScanContext, loc: &dyn Fn() -> Location) {
    let mut p = 0usize;
    let mut table = 0;
    while p < body.len() {
        table += 1;
        let tc_th = u8_at(body, p).unwrap_or(0);
        let (class, id) = (tc_th >> 4, tc_th & 0x0F);
        if class > 1 || id > 3 {
            ctx.report(
                Finding::new(
                    "JPEG-DHT-CLASS",
                    Severity::High,
                    FindingClass::Structure,
                    loc().with_part(format!("{} table {table}", loc().part.unwrap_or_default())),
                    format!("Huffman table class {class}, id {id} (class must be 0-1, id 0-3)"),
                )
                .cve(&["CVE-2013-6630"]),
            );
            return;
        }
        let Some(counts) = slice(body, p + 1, 16) else {
            ctx.structure(
                "JPEG-DHT-LENGTH",
                Severity::High,
                loc(),
                format!("Huffman table {table} is cut off by the segment length"),
            );
            return;
        };
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 {
            ctx.report(
                Finding::new(
                    "JPEG-DHT-COUNT",
                    Severity::High,
                    FindingClass::Structure,
                    loc(),
                    format!("Huffman table {table} declares {total} codes (at most 256)"),
                )
                .cve(&["CVE-2013-6630"]),
            );
            return;
        }
        if p + 17 + total > body.len() {
            ctx.structure(
                "JPEG-DHT-LENGTH",
                Severity::High,
                loc(),
                format!("Huffman table {table} needs {total} values past the segment end"),
            );
            return;
        }
        p += 17 + total;
    }
}

fn check_dqt(body: &[u8], ctx: &mut ScanContext, loc: &dyn Fn() -> Location) {
    let mut p = 0usize;
    while p < body.len() {
        let pq_tq = u8_at(body, p).unwrap_or(0);
        let (precision, id) = (pq_tq >> 4, pq_tq & 0x0F);
        if precision > 1 || id > 3 {
            ctx.structure(
                "JPEG-DQT-FIELDS",
                Severity::High,
                loc(),
                format!(
                    "quantisation table precision {precision}, id {id} (precision 0-1, id 0-3)"
                ),
            );
            return;
        }
        let size = if precision == 0 { 64 } else { 128 };
        if p + 1 + size > body.len() {
            ctx.structure(
                "JPEG-DQT-LENGTH",
                Severity::High,
                loc(),
                "a quantisation table is cut off by the segment length",
            );
            return;
        }
        p += 1 + size;
    }
}

fn check_sof(body: &[u8], ctx: &mut ScanContext, loc: &dyn Fn() -> Location) -> Option<Frame> {
    let (Some(precision), Some(height), Some(width), Some(nc)) =
        (u8_at(body, 0), be16(body, 1), be16(body, 3), u8_at(body, 5))
    else {
        ctx.structure(
            "JPEG-SOF-LENGTH",
            Severity::High,
            loc(),
            "frame header shorter than its fixed 6 bytes",
        );
        return None;
    };
    if body.len() != 6 + 3 * usize::from(nc) {
        ctx.structure(
            "JPEG-SOF-LENGTH",
            Severity::High,
            loc(),
            format!(
                "frame header of {} bytes for {nc} components (must be {})",
                body.len(),
                6 + 3 * usize::from(nc)
            ),
        );
        return None;
    }
    if nc == 0 || width == 0 || !(2..=16).contains(&precision) {
        ctx.structure(
            "JPEG-SOF-FIELDS",
            Severity::High,
            loc(),
            format!("frame {width}x{height}, {nc} components, precision {precision}: width, components and precision must be non-zero"),
        );
    }
    let mut components = Vec::new();
    for c in 0..usize::from(nc) {
        let id = u8_at(body, 6 + 3 * c).unwrap_or(0);
        let sampling = u8_at(body, 7 + 3 * c).unwrap_or(0);
        let tq = u8_at(body, 8 + 3 * c).unwrap_or(0);
        let (h, v) = (sampling >> 4, sampling & 0x0F);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
            ctx.structure(
                "JPEG-SOF-COMPONENT",
                Severity::High,
                loc(),
                format!(
                    "component {c}: sampling {h}x{v} (1-4 each), quantisation table {tq} (0-3)"
                ),
            );
        }
        components.push(id);
    }
    Some(Frame { components })
}

fn check_sos(body: &[u8], frame: &Frame, ctx: &mut ScanContext, loc: &dyn Fn() -> Location) {
    let ns = u8_at(body, 0).unwrap_or(0);
    if ns == 0 || ns > 4 || body.len() != 4 + 2 * usize::from(ns) {
        ctx.structure(
            "JPEG-SOS-LENGTH",
            Severity::High,
            loc(),
            format!(
                "scan header of {} bytes for {ns} components (1-4 components, 4+2n bytes)",
                body.len()
            ),
        );
        return;
    }
    for c in 0..usize::from(ns) {
        let id = u8_at(body, 1 + 2 * c).unwrap_or(0);
        let tables = u8_at(body, 2 + 2 * c).unwrap_or(0);
        if !frame.components.contains(&id) {
            ctx.structure(
                "JPEG-SOS-COMPONENT",
                Severity::High,
                loc(),
                format!("the scan names component {id}, which the frame does not define"),
            );
        }
        if tables >> 4 > 3 || tables & 0x0F > 3 {
            ctx.structure(
                "JPEG-SOS-COMPONENT",
                Severity::High,
                loc(),
                format!(
                    "the scan selects Huffman tables {}/{} (0-3)",
                    tables >> 4,
                    tables & 0x0F
                ),
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::testing::findings_of;

    fn seg(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, marker];
        v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// A minimal baseline JPEG: SOI, JFIF, DQT, SOF0 (8x8 grey), DHT, SOS, data, EOI.
    pub(crate) fn jpeg_with(extra_before_sof: &[u8], dht: &[u8]) -> Vec<u8> {
        let mut f = vec![0xFF, 0xD8];
        f.extend(seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        f.extend(seg(0xDB, &[&[0u8][..], &[1u8; 64]].concat()));
        f.extend_from_slice(extra_before_sof);
        f.extend(seg(0xC0, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]));
        f.extend(seg(0xC4, dht));
        f.extend(seg(0xDA, &[1, 1, 0, 0, 63, 0]));
        f.extend_from_slice(&[0x12, 0x34, 0xFF, 0x00, 0x56]);
        f.extend_from_slice(&[0xFF, 0xD9]);
        f
    }

    fn good_dht() -> Vec<u8> {
        let mut d = vec![0x00, 0, 1];
        d.extend_from_slice(&[0; 14]);
        d.push(0);
        d
    }

    #[test]
    fn a_baseline_image_is_clean() {
        assert_eq!(findings_of(&jpeg_with(&[], &good_dht()), "a.jpg"), vec![]);
    }

    #[test]
    fn a_comment_of_length_one_is_the_gdiplus_exploit() {
        let com = [0xFF, 0xFE, 0x00, 0x01];
        let f = findings_of(&jpeg_with(&com, &good_dht()), "a.jpg");
        assert_eq!(
            f,
            vec![(
                "JPEG-COM-LENGTH".to_owned(),
                "segment 3 (COM) @0x59".to_owned()
            )]
        );
    }

    #[test]
    fn a_huffman_table_with_more_than_256_codes_is_reported() {
        let mut dht = vec![0x00];
        dht.extend_from_slice(&[255u8, 255]);
        dht.extend_from_slice(&[0; 14]);
        let f = findings_of(&jpeg_with(&[], &dht), "a.jpg");
        assert_eq!(f.first().map(|(c, _)| c.as_str()), Some("JPEG-DHT-COUNT"));
    }

    #[test]
    fn a_huffman_table_class_above_one_is_reported() {
        let mut dht = good_dht();
        dht[0] = 0x25;
        let f = findings_of(&jpeg_with(&[], &dht), "a.jpg");
        assert_eq!(f.first().map(|(c, _)| c.as_str()), Some("JPEG-DHT-CLASS"));
    }

    #[test]
    fn a_scan_before_the_frame_header_is_reported() {
        let mut f = vec![0xFF, 0xD8];
        f.extend(seg(0xDA, &[1, 1, 0, 0, 63, 0]));
        f.extend_from_slice(&[0xFF, 0xD9]);
        let codes = findings_of(&f, "a.jpg");
        assert_eq!(
            codes,
            vec![(
                "JPEG-SOS-BEFORE-SOF".to_owned(),
                "segment 1 (SOS) @0x2".to_owned()
            )]
        );
    }

    #[test]
    fn a_segment_running_past_the_end_is_reported() {
        let mut f = jpeg_with(&[], &good_dht());
        f.truncate(30);
        let codes = findings_of(&f, "a.jpg");
        assert_eq!(
            codes.first().map(|(c, _)| c.as_str()),
            Some("JPEG-SEGMENT-TRUNCATED")
        );
    }

    #[test]
    fn a_file_ending_inside_a_marker_is_truncated_and_does_not_hang() {
        // Found by the `images` fuzz target: FF D8 FF looped until the time budget.
        let codes = findings_of(&[0xFF, 0xD8, 0xFF], "a.jpg");
        assert_eq!(
            codes,
            vec![("JPEG-SEGMENT-TRUNCATED".to_owned(), "@0x2".to_owned())]
        );
    }

    #[test]
    fn a_zero_width_frame_is_reported() {
        let mut f = vec![0xFF, 0xD8];
        f.extend(seg(0xC0, &[8, 0, 8, 0, 0, 1, 1, 0x11, 0]));
        f.extend_from_slice(&[0xFF, 0xD9]);
        let codes = findings_of(&f, "a.jpg");
        assert_eq!(
            codes.first().map(|(c, _)| c.as_str()),
            Some("JPEG-SOF-FIELDS")
        );
    }
}
