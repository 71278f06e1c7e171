//! PNG decoded in full (every IDAT inflated to exactly the size the header implies, every
//! row's filter reversed, Adam7 passes included) and re-encoded with only what the picture
//! needs: IHDR, PLTE, tRNS, the colour-space chunks without an embedded profile (sRGB,
//! gAMA, cHRM), the pixels, IEND. Text, time, EXIF, ICC profiles, private chunks and
//! anything after IEND are dropped.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

use super::{ConvertError, Disarmed, Removed};
use crate::container::inflate::{Framing, inflate_to_vec};
use crate::filetype::FileType;
use crate::limits::Limits;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
const KEEP_ANCILLARY: [&[u8; 4]; 4] = [b"tRNS", b"sRGB", b"gAMA", b"cHRM"];

fn be32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
}

/// Bytes per scanline (without the filter byte) for `width` pixels of `bits` bits.
fn row_bytes(width: u64, bits: u64) -> u64 {
    (width * bits).div_ceil(8)
}

/// The (width, height) of each Adam7 pass with pixels in it.
fn passes(width: u64, height: u64, interlaced: bool) -> Vec<(u64, u64)> {
    if !interlaced {
        return vec![(width, height)];
    }
    // (x start, y start, x step, y step)
    const ADAM7: [(u64, u64, u64, u64); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    ADAM7
        .iter()
        .map(|&(x0, y0, dx, dy)| {
            (
                width.saturating_sub(x0).div_ceil(dx),
                height.saturating_sub(y0).div_ceil(dy),
            )
        })
        .filter(|&(w, h)| w > 0 && h > 0)
        .collect()
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Reverses every row's filter (the decode); the first row with an unknown filter type is
/// the failure.
fn unfilter(raw: &[u8], passes: &[(u64, u64)], bits: u64) -> Result<(), ConvertError> {
    let bpp = usize::try_from(bits.div_ceil(8).max(1)).unwrap_or(1);
    let mut at = 0usize;
    for (p, &(w, h)) in passes.iter().enumerate() {
        let len = usize::try_from(row_bytes(w, bits)).unwrap_or(usize::MAX);
        let mut prev = vec![0u8; len];
        let mut cur = vec![0u8; len];
        for row in 0..h {
            let filter = raw.get(at).copied().unwrap_or(255);
            let line = raw.get(at + 1..at + 1 + len).unwrap_or_default();
            if filter > 4 || line.len() != len {
                return Err(ConvertError::at(
                    "CONVERT-PNG-FILTER",
                    format!("pass {} row {row}", p + 1),
                    format!("filter type {filter} is not one of 0-4"),
                ));
            }
            for i in 0..len {
                let x = line.get(i).copied().unwrap_or(0);
                let a = if i >= bpp {
                    cur.get(i - bpp).copied().unwrap_or(0)
                } else {
                    0
                };
                let b = prev.get(i).copied().unwrap_or(0);
                let c = if i >= bpp {
                    prev.get(i - bpp).copied().unwrap_or(0)
                } else {
                    0
                };
                let v = match filter {
                    0 => x,
                    1 => x.wrapping_add(a),
                    2 => x.wrapping_add(b),
                    3 => {
                        x.wrapping_add(u8::try_from((u16::from(a) + u16::from(b)) / 2).unwrap_or(0))
                    }
                    _ => x.wrapping_add(paeth(a, b, c)),
                };
                if let Some(slot) = cur.get_mut(i) {
                    *slot = v;
                }
            }
            std::mem::swap(&mut prev, &mut cur);
            at += 1 + len;
        }
    }
    Ok(())
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) -> Result<(), ConvertError> {
    let len = u32::try_from(body.len()).map_err(|_| {
        ConvertError::at(
            "CONVERT-PNG-SIZE",
            "IDAT".into(),
            "a chunk above 4 GiB".into(),
        )
    })?;
    out.extend(len.to_be_bytes());
    out.extend(kind);
    out.extend(body);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(body);
    out.extend(crc.finalize().to_be_bytes());
    Ok(())
}

pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    if data.get(..8) != Some(&SIGNATURE[..]) {
        return Err(ConvertError::at(
            "CONVERT-PNG-SIGNATURE",
            "byte 0".into(),
            "not a PNG signature".into(),
        ));
    }
    let mut removed = Vec::new();
    let mut ihdr: Option<&[u8]> = None;
    let mut plte: Option<&[u8]> = None;
    let mut kept: Vec<(&[u8; 4], &[u8])> = Vec::new();
    let mut idat: Vec<u8> = Vec::new();
    let mut at = 8usize;
    let mut ended = false;
    while let Some(len) = be32(data, at) {
        let len = len as usize;
        let kind: &[u8; 4] = data
            .get(at + 4..at + 8)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                ConvertError::at(
                    "CONVERT-PNG-CHUNK",
                    format!("byte {at}"),
                    "truncated chunk header".into(),
                )
            })?;
        let body = data.get(at + 8..at + 8 + len).ok_or_else(|| {
            ConvertError::at(
                "CONVERT-PNG-CHUNK",
                format!("chunk {} at byte {at}", String::from_utf8_lossy(kind)),
                format!("{len} bytes run past the end of the file"),
            )
        })?;
        let stored_crc = be32(data, at + 8 + len);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(body);
        if stored_crc != Some(crc.finalize()) {
            return Err(ConvertError::at(
                "CONVERT-PNG-CRC",
                format!("chunk {} at byte {at}", String::from_utf8_lossy(kind)),
                "the chunk's CRC does not match its content".into(),
            ));
        }
        match kind {
            b"IHDR" => ihdr = Some(body),
            b"PLTE" => plte = Some(body),
            b"IDAT" => {
                if idat.len() + body.len()
                    > usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX)
                {
                    return Err(ConvertError::at(
                        "CONVERT-PNG-SIZE",
                        format!("byte {at}"),
                        "compressed pixels above the memory budget".into(),
                    ));
                }
                idat.extend_from_slice(body);
            }
            b"IEND" => {
                ended = true;
                at += 12 + len;
                break;
            }
            k if KEEP_ANCILLARY.contains(&k) => kept.push((k, body)),
            other => removed.push(Removed {
                what: format!("{} chunk", String::from_utf8_lossy(other)),
                location: format!("byte {at}"),
            }),
        }
        at += 12 + len;
    }
    if !ended {
        return Err(ConvertError::at(
            "CONVERT-PNG-CHUNK",
            format!("byte {at}"),
            "no IEND chunk".into(),
        ));
    }
    if at < data.len() {
        removed.push(Removed {
            what: format!("{} bytes after IEND", data.len() - at),
            location: format!("byte {at}"),
        });
    }
    let h = ihdr.filter(|h| h.len() == 13).ok_or_else(|| {
        ConvertError::at(
            "CONVERT-PNG-IHDR",
            "IHDR".into(),
            "missing or not 13 bytes".into(),
        )
    })?;
    let width = u64::from(be32(h, 0).unwrap_or(0));
    let height = u64::from(be32(h, 4).unwrap_or(0));
    let (depth, colour, interlace) = (
        h.get(8).copied().unwrap_or(0),
        h.get(9).copied().unwrap_or(0),
        h.get(12).copied().unwrap_or(0),
    );
    let channels: u64 = match colour {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => 0,
    };
    let legal_depth = match colour {
        0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(depth, 1 | 2 | 4 | 8),
        _ => matches!(depth, 8 | 16),
    };
    if width == 0 || height == 0 || channels == 0 || !legal_depth || interlace > 1 {
        return Err(ConvertError::at(
            "CONVERT-PNG-IHDR",
            "IHDR".into(),
            format!(
                "{width}x{height}, colour type {colour}, depth {depth}, interlace {interlace} is not a legal image"
            ),
        ));
    }
    if colour == 3 && !plte.is_some_and(|p| !p.is_empty() && p.len() % 3 == 0 && p.len() <= 768) {
        return Err(ConvertError::at(
            "CONVERT-PNG-PLTE",
            "PLTE".into(),
            "a palette image without a legal palette".into(),
        ));
    }
    let bits = channels * u64::from(depth);
    let passes = passes(width, height, interlace == 1);
    let expected: u64 = passes
        .iter()
        .map(|&(w, h)| h * (1 + row_bytes(w, bits)))
        .sum();
    if expected > limits.memory_bytes {
        return Err(ConvertError::at(
            "CONVERT-PNG-SIZE",
            "IHDR".into(),
            format!("{width}x{height} needs {expected} bytes, above the memory budget"),
        ));
    }
    let raw = inflate_to_vec(&idat, Framing::Zlib, expected + 1).map_err(|e| {
        ConvertError::at(
            "CONVERT-PNG-DATA",
            "IDAT".into(),
            format!("the pixel data does not inflate: {e:?}"),
        )
    })?;
    if raw.len() as u64 != expected {
        return Err(ConvertError::at(
            "CONVERT-PNG-DATA",
            "IDAT".into(),
            format!(
                "the pixel data inflates to {} bytes; the header implies {expected}",
                raw.len()
            ),
        ));
    }
    unfilter(&raw, &passes, bits)?;

    let mut out = SIGNATURE.to_vec();
    chunk(&mut out, b"IHDR", h)?;
    for (k, body) in kept.iter().filter(|(k, _)| *k != b"tRNS") {
        chunk(&mut out, k, body)?;
    }
    if let Some(p) = plte {
        chunk(&mut out, b"PLTE", p)?;
    }
    for (k, body) in kept.iter().filter(|(k, _)| *k == b"tRNS") {
        chunk(&mut out, k, body)?;
    }
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
    enc.write_all(&raw)
        .and_then(|()| enc.flush())
        .map_err(|e| ConvertError::at("CONVERT-PNG-ENCODE", "IDAT".into(), e.to_string()))?;
    let packed = enc
        .finish()
        .map_err(|e| ConvertError::at("CONVERT-PNG-ENCODE", "IDAT".into(), e.to_string()))?;
    for piece in packed.chunks(1 << 20) {
        chunk(&mut out, b"IDAT", piece)?;
    }
    chunk(&mut out, b"IEND", &[])?;
    Ok(Disarmed {
        bytes: out,
        file_type: FileType::Png,
        removed,
    })
}
