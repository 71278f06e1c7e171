//! A strict ZIP reader: end-of-central-directory (and ZIP64) records, central and local
//! headers compared with each other, entry data inside the file and not overlapping, names
//! without path traversal, and entry reads capped by the ratio and memory budgets.

use std::borrow::Cow;

use haetae_core::Severity;

use crate::bytes::{le16, le32, le64, slice};
use crate::container::crc32::Crc32;
use crate::container::inflate::{Framing, InflateError, inflate_into, inflate_with};
use crate::context::ScanContext;
use crate::finding::Location;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;

/// One entry as the central directory describes it, with its data located and checked.
#[derive(Debug, Clone)]
pub struct ZipEntry {
    /// Position in the central directory.
    pub index: usize,
    /// The name (lossy UTF-8).
    pub name: String,
    /// General-purpose flags.
    pub flags: u16,
    /// Compression method (0 stored, 8 deflate).
    pub method: u16,
    /// Declared CRC-32.
    pub crc: u32,
    /// Declared compressed size.
    pub compressed: u64,
    /// Declared uncompressed size.
    pub uncompressed: u64,
    /// Offset of the local header.
    pub local_offset: u64,
    /// The entry's data range in the file, when it lies inside it.
    pub data: Option<(usize, usize)>,
}

impl ZipEntry {
    /// Whether the entry is encrypted.
    #[must_use]
    pub fn encrypted(&self) -> bool {
        self.flags & 1 != 0
    }

    /// Whether the name ends with `/` (a directory).
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    fn loc(&self) -> Location {
        Location::part(format!("entry {} ({})", self.index, self.name))
    }
}

/// A parsed archive.
#[derive(Debug, Clone, Default)]
pub struct ZipArchive {
    /// Entries in central-directory order (up to the entry budget).
    pub entries: Vec<ZipEntry>,
}

impl ZipArchive {
    /// The entry with this exact name.
    #[must_use]
    pub fn entry(&self, name: &str) -> Option<&ZipEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

fn find_eocd(data: &[u8]) -> Option<usize> {
    let min = data.len().checked_sub(22)?;
    let lowest = min.saturating_sub(65535);
    let mut pos = min;
    loop {
        if le32(data, pos) == Some(EOCD_SIG) {
            return Some(pos);
        }
        if pos == lowest {
            return None;
        }
        pos -= 1;
    }
}

fn traversal(name: &str) -> bool {
    let n = name.replace('\\', "/");
    n.starts_with('/') || n.split('/').any(|c| c == "..") || n.as_bytes().get(1) == Some(&b':')
}

/// Parses the archive's directory and checks every header. Problems become findings;
/// returns `None` when there is no usable directory at all.
pub fn parse(data: &[u8], ctx: &mut ScanContext) -> Option<ZipArchive> {
    let Some(eocd) = find_eocd(data) else {
        ctx.structure(
            "ZIP-NO-EOCD",
            Severity::High,
            Location::at(data.len()),
            "no end-of-central-directory record in the last 64 KiB: the archive is truncated or not a ZIP",
        );
        return None;
    };
    let disk = le16(data, eocd + 4)?;
    let cd_disk = le16(data, eocd + 6)?;
    let n_disk = le16(data, eocd + 8)?;
    let n_total = le16(data, eocd + 10)?;
    let mut cd_size = u64::from(le32(data, eocd + 12)?);
    let mut cd_off = u64::from(le32(data, eocd + 16)?);
    let mut count = u64::from(n_total);
    let eocd_loc = Location::at(eocd).with_part("end of central directory");
    if disk != 0 || cd_disk != 0 || n_disk != n_total {
        ctx.structure(
            "ZIP-EOCD-FIELDS",
            Severity::High,
            eocd_loc.clone(),
            format!("multi-disk fields in a single file: disk {disk}, directory disk {cd_disk}, {n_disk} entries on disk vs {n_total} in all"),
        );
    }
    let wants64 = n_total == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_off == 0xFFFF_FFFF;
    if le32(data, eocd.wrapping_sub(20)) == Some(ZIP64_LOCATOR_SIG) && eocd >= 20 {
        let z64 = le64(data, eocd - 20 + 8).unwrap_or(u64::MAX);
        let z = usize::try_from(z64).unwrap_or(usize::MAX);
        if le32(data, z) == Some(ZIP64_EOCD_SIG) {
            count = le64(data, z + 32).unwrap_or(count);
            cd_size = le64(data, z + 40).unwrap_or(cd_size);
            cd_off = le64(data, z + 48).unwrap_or(cd_off);
        } else {
            ctx.structure(
                "ZIP-ZIP64",
                Severity::High,
                Location::at(eocd - 20).with_part("zip64 locator"),
                format!("the ZIP64 locator points to offset {z64}, where there is no ZIP64 end-of-central-directory record"),
            );
        }
    } else if wants64 && cd_off == 0xFFFF_FFFF {
        ctx.structure(
            "ZIP-ZIP64",
            Severity::High,
            eocd_loc.clone(),
            "the directory fields say ZIP64 but there is no ZIP64 locator",
        );
    }
    let cd_end = cd_off.saturating_add(cd_size);
    if cd_end > eocd as u64 {
        ctx.structure(
            "ZIP-EOCD-FIELDS",
            Severity::High,
            eocd_loc.clone(),
            format!("central directory at {cd_off} of {cd_size} bytes runs past the end record at {eocd}"),
        );
    }
    let mut archive = ZipArchive::default();
    let mut pos = usize::try_from(cd_off).unwrap_or(usize::MAX);
    // Some writers prepend data (self-extractors) and leave offsets relative to the archive.
    let shift = (eocd as u64).saturating_sub(cd_end);
    if shift > 0 && le32(data, pos) != Some(CENTRAL_SIG) {
        pos = pos.saturating_add(usize::try_from(shift).unwrap_or(0));
        ctx.structure(
            "ZIP-PREFIX-DATA",
            Severity::Low,
            Location::at(0),
            format!("{shift} bytes precede the archive (a self-extractor or a polyglot file)"),
        );
    }
    let mut ranges: Vec<(usize, usize, usize)> = Vec::new();
    let mut index = 0usize;
    while le32(data, pos) == Some(CENTRAL_SIG) {
        if !ctx.count_entry() || ctx.out_of_time() {
            break;
        }
        let Some(hdr) = slice(data, pos, 46) else {
            break;
        };
        let flags = le16(hdr, 8).unwrap_or(0);
        let method = le16(hdr, 10).unwrap_or(0);
        let crc = le32(hdr, 16).unwrap_or(0);
        let mut compressed = u64::from(le32(hdr, 20).unwrap_or(0));
        let mut uncompressed = u64::from(le32(hdr, 24).unwrap_or(0));
        let name_len = usize::from(le16(hdr, 28).unwrap_or(0));
        let extra_len = usize::from(le16(hdr, 30).unwrap_or(0));
        let comment_len = usize::from(le16(hdr, 32).unwrap_or(0));
        let mut local_offset = u64::from(le32(hdr, 42).unwrap_or(0));
        let name_bytes = slice(data, pos + 46, name_len).unwrap_or_default();
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = slice(data, pos + 46 + name_len, extra_len).unwrap_or_default();
        // ZIP64 extended information: only the fields that are saturated appear, in order.
        let mut e = 0;
        while let (Some(id), Some(len)) = (le16(extra, e), le16(extra, e + 2)) {
            let body = slice(extra, e + 4, usize::from(len)).unwrap_or_default();
            if id == 1 {
                let mut f = 0;
                if uncompressed == 0xFFFF_FFFF {
                    uncompressed = le64(body, f).unwrap_or(uncompressed);
                    f += 8;
                }
                if compressed == 0xFFFF_FFFF {
                    compressed = le64(body, f).unwrap_or(compressed);
                    f += 8;
                }
                if local_offset == 0xFFFF_FFFF {
                    local_offset = le64(body, f).unwrap_or(local_offset);
                }
            }
            e += 4 + usize::from(len);
        }
        let mut entry = ZipEntry {
            index,
            name,
            flags,
            method,
            crc,
            compressed,
            uncompressed,
            local_offset,
            data: None,
        };
        if traversal(&entry.name) {
            ctx.structure(
                "ZIP-PATH-TRAVERSAL",
                Severity::High,
                entry.loc(),
                format!("entry name {:?} leaves the extraction folder", entry.name),
            );
        }
        locate_data(data, &mut entry, shift, ctx);
        if let Some((start, len)) = entry.data {
            if let Some(&(_, _, other)) = ranges
                .iter()
                .find(|(s, l, _)| start < s + l && *s < start + len.max(1))
            {
                ctx.structure(
                    "ZIP-OVERLAP",
                    Severity::High,
                    entry.loc(),
                    format!("entry data at {start}..{} overlaps entry {other} (a zip-bomb construction)", start + len),
                );
            }
            if ranges.len() < 4096 {
                ranges.push((start, len, index));
            }
        }
        archive.entries.push(entry);
        index += 1;
        pos = pos + 46 + name_len + extra_len + comment_len;
    }
    if (index as u64) < count && !ctx.out_of_time() && index < ctx.limits().max_entries as usize {
        ctx.structure(
            "ZIP-ENTRY-COUNT",
            Severity::High,
            Location::at(pos).with_part("central directory"),
            format!("the end record announces {count} entries but the directory holds {index}"),
        );
    }
    Some(archive)
}

fn locate_data(data: &[u8], entry: &mut ZipEntry, shift: u64, ctx: &mut ScanContext) {
    let local = entry.local_offset.saturating_add(shift);
    let at = usize::try_from(local).unwrap_or(usize::MAX);
    if le32(data, at) != Some(LOCAL_SIG) {
        ctx.structure(
            "ZIP-LOCAL-HEADER",
            Severity::High,
            entry.loc(),
            format!("no local header at offset {local} where the central directory points"),
        );
        return;
    }
    let (Some(lname_len), Some(lextra_len)) = (le16(data, at + 26), le16(data, at + 28)) else {
        return;
    };
    let lname = slice(data, at + 30, usize::from(lname_len)).unwrap_or_default();
    if lname != entry.name.as_bytes() && String::from_utf8_lossy(lname) != entry.name {
        ctx.structure(
            "ZIP-LOCAL-MISMATCH",
            Severity::High,
            entry.loc().clone(),
            format!(
                "the local header names it {:?}: tools that read local headers see a different file",
                String::from_utf8_lossy(lname)
            ),
        );
    }
    let lmethod = le16(data, at + 8).unwrap_or(0);
    if lmethod != entry.method {
        ctx.structure(
            "ZIP-LOCAL-MISMATCH",
            Severity::High,
            entry.loc(),
            format!(
                "local header method {lmethod}, central directory method {}",
                entry.method
            ),
        );
    }
    let start = at + 30 + usize::from(lname_len) + usize::from(lextra_len);
    let len = usize::try_from(entry.compressed).unwrap_or(usize::MAX);
    if start.checked_add(len).is_none_or(|end| end > data.len()) {
        ctx.structure(
            "ZIP-DATA-PAST-EOF",
            Severity::High,
            entry.loc(),
            format!(
                "{} compressed bytes from offset {start} run past the end of the file ({} bytes)",
                entry.compressed,
                data.len()
            ),
        );
        return;
    }
    entry.data = Some((start, len));
}

/// Reads an entry's content, inflating with the ratio and memory caps and checking the
/// declared size and CRC. `None` when it cannot be read (a finding says why).
pub fn read<'d>(data: &'d [u8], entry: &ZipEntry, ctx: &mut ScanContext) -> Option<Cow<'d, [u8]>> {
    read_inner(data, entry, ctx, true)
}

/// Checks an entry like [`read`] without keeping its content.
pub fn check(data: &[u8], entry: &ZipEntry, ctx: &mut ScanContext) {
    let _ = read_inner(data, entry, ctx, false);
}

fn read_inner<'d>(
    data: &'d [u8],
    entry: &ZipEntry,
    ctx: &mut ScanContext,
    keep: bool,
) -> Option<Cow<'d, [u8]>> {
    let (start, len) = entry.data?;
    let raw = slice(data, start, len)?;
    if entry.encrypted() {
        ctx.note(
            "ZIP-ENCRYPTED",
            entry.loc(),
            "the entry is encrypted and cannot be verified",
        );
        return None;
    }
    let ratio = ctx.limits().max_ratio;
    if entry.uncompressed > entry.compressed.max(1).saturating_mul(ratio) {
        ctx.structure(
            "ZIP-RATIO",
            Severity::High,
            entry.loc(),
            format!(
                "declares {} bytes from {} compressed (ratio above {ratio})",
                entry.uncompressed, entry.compressed
            ),
        );
        return None;
    }
    match entry.method {
        0 => {
            if entry.uncompressed != entry.compressed {
                ctx.structure(
                    "ZIP-SIZE-MISMATCH",
                    Severity::High,
                    entry.loc(),
                    format!(
                        "stored entry declares {} bytes but holds {}",
                        entry.uncompressed, entry.compressed
                    ),
                );
            }
            check_crc(entry, raw, ctx);
            Some(Cow::Borrowed(raw))
        }
        8 => {
            let cap = (ctx.inflate_cap(len) as u64).min(entry.uncompressed.saturating_add(1));
            if keep && !ctx.reserve(cap, entry.loc()) {
                return None;
            }
            // Sized once from the declared size (already capped): no regrowth copies.
            let mut out = if keep {
                Vec::with_capacity(usize::try_from(cap).unwrap_or(0).min(64 << 20))
            } else {
                Vec::new()
            };
            let mut crc = Crc32::default();
            let result = if keep {
                // Straight into the buffer, checksummed after: no copy through a window.
                let r = inflate_into(raw, Framing::Raw, cap, &mut out);
                crc.update(&out);
                ctx.release(cap);
                r
            } else {
                inflate_with(raw, Framing::Raw, cap, &mut |c| crc.update(c))
            };
            match result {
                Ok(done) => {
                    if done.produced != entry.uncompressed {
                        ctx.structure(
                            "ZIP-SIZE-MISMATCH",
                            Severity::High,
                            entry.loc(),
                            format!(
                                "declares {} bytes but inflates to {}",
                                entry.uncompressed, done.produced
                            ),
                        );
                    } else if crc.value() != entry.crc && entry.flags & 8 == 0 {
                        crc_finding(entry, crc.value(), ctx);
                    }
                }
                Err(InflateError::OverCap { .. }) => {
                    ctx.structure(
                        "ZIP-SIZE-MISMATCH",
                        Severity::High,
                        entry.loc(),
                        format!(
                            "declares {} bytes but inflates to more (stopped at {cap})",
                            entry.uncompressed
                        ),
                    );
                    return None;
                }
                Err(e) => {
                    ctx.structure(
                        "ZIP-INFLATE",
                        Severity::High,
                        entry.loc(),
                        format!("deflate data is broken: {e}"),
                    );
                    return None;
                }
            }
            keep.then_some(Cow::Owned(out))
        }
        m => {
            ctx.note(
                "ZIP-METHOD",
                entry.loc(),
                format!("compression method {m} is not verified"),
            );
            None
        }
    }
}

fn check_crc(entry: &ZipEntry, content: &[u8], ctx: &mut ScanContext) {
    let mut crc = Crc32::default();
    crc.update(content);
    if crc.value() != entry.crc && entry.flags & 8 == 0 {
        crc_finding(entry, crc.value(), ctx);
    }
}

fn crc_finding(entry: &ZipEntry, actual: u32, ctx: &mut ScanContext) {
    ctx.structure(
        "ZIP-CRC",
        Severity::Medium,
        entry.loc(),
        format!(
            "CRC-32 is {actual:#010x}, the directory says {:#010x}",
            entry.crc
        ),
    );
}

/// Builds small ZIP files for tests (stored or deflated entries).
#[cfg(test)]
pub(crate) mod build {
    use crate::container::crc32::crc32;

    /// An archive of `(name, content, deflate?)` entries.
    pub(crate) fn zip(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, content, deflate) in entries {
            let packed = if *deflate {
                miniz_oxide::deflate::compress_to_vec(content, 6)
            } else {
                content.to_vec()
            };
            let method: u16 = if *deflate { 8 } else { 0 };
            let off = out.len() as u32;
            let crc = crc32(content);
            {
                let (buf, sig) = (&mut out, 0x0403_4b50u32);
                buf.extend_from_slice(&sig.to_le_bytes());
                buf.extend_from_slice(&20u16.to_le_bytes());
                buf.extend_from_slice(&0u16.to_le_bytes());
                buf.extend_from_slice(&method.to_le_bytes());
                buf.extend_from_slice(&[0; 4]);
                buf.extend_from_slice(&crc.to_le_bytes());
                buf.extend_from_slice(&(packed.len() as u32).to_le_bytes());
                buf.extend_from_slice(&(content.len() as u32).to_le_bytes());
                buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
                buf.extend_from_slice(&0u16.to_le_bytes());
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(&packed);
            }
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&0u16.to_le_bytes());
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0; 4]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            central.extend_from_slice(&(content.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&off.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_off = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let n = entries.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn codes(data: &[u8]) -> Vec<String> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, data.len());
        if let Some(a) = parse(data, &mut ctx) {
            for e in &a.entries {
                check(data, e, &mut ctx);
            }
        }
        ctx.into_findings().into_iter().map(|f| f.code).collect()
    }

    #[test]
    fn a_well_formed_archive_has_no_findings() {
        let z = build::zip(&[("a.txt", b"hello hello hello", true), ("b", b"x", false)]);
        assert_eq!(codes(&z), Vec::<String>::new());
    }

    #[test]
    fn a_dot_dot_name_is_path_traversal() {
        let z = build::zip(&[("../../etc/passwd", b"x", false)]);
        assert_eq!(codes(&z), ["ZIP-PATH-TRAVERSAL"]);
    }

    #[test]
    fn a_high_ratio_entry_is_a_bomb() {
        let z = build::zip(&[("zeros", &vec![0u8; 1 << 20], true)]);
        assert_eq!(codes(&z), ["ZIP-RATIO"]);
    }

    #[test]
    fn a_wrong_crc_is_reported() {
        let mut z = build::zip(&[("a", b"abc", false)]);
        z[30 + 1 + 1] ^= 0xFF; // flip the stored content's second byte
        assert_eq!(codes(&z), ["ZIP-CRC"]);
    }

    #[test]
    fn a_truncated_archive_has_no_end_record() {
        let z = build::zip(&[("a", b"abc", false)]);
        assert_eq!(codes(&z[..z.len() - 30]), ["ZIP-NO-EOCD"]);
    }
}
