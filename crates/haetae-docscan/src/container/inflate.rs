//! Deflate and zlib decompression with a hard output cap, so a bomb stops at the cap instead
//! of exhausting memory. Built on zlib-rs (through `flate2`'s safe streaming API), whose
//! decoder picks its SIMD paths at run time. [`inflate_with`] hands the output to a sink in
//! pieces through a reused 256 KiB buffer, so [`inflate_count`] measures without keeping
//! it; [`inflate_into`] writes straight into a caller's vector (no copy through a buffer).
//! Decoder states are reused between calls on the same thread.

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};

/// The stream framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Raw deflate (ZIP, HWP).
    Raw,
    /// zlib header and Adler-32 trailer (PNG, PDF `FlateDecode`).
    Zlib,
}

/// Why an inflate stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The output would exceed the cap; `consumed` input bytes gave `cap` output bytes.
    OverCap {
        /// Input bytes read when the cap was reached.
        consumed: usize,
    },
    /// The input ended before the final block.
    Truncated {
        /// Output produced before the end.
        produced: u64,
    },
    /// Invalid data (bad block type, code lengths, distance too far back, bad checksum).
    Corrupt {
        /// Input offset near the error.
        consumed: usize,
        /// Output produced before the error.
        produced: u64,
    },
}

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InflateError::OverCap { consumed } => {
                write!(f, "output exceeds the cap after {consumed} input bytes")
            }
            InflateError::Truncated { produced } => {
                write!(
                    f,
                    "stream ends before its final block ({produced} bytes out)"
                )
            }
            InflateError::Corrupt { consumed, produced } => write!(
                f,
                "invalid compressed data near input byte {consumed} ({produced} bytes out)"
            ),
        }
    }
}

/// A successful inflate: how much output, and how much input the stream used (anything
/// after it is trailing data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inflated {
    /// Output bytes.
    pub produced: u64,
    /// Input bytes the stream used.
    pub consumed: usize,
}

/// Size of the buffer [`inflate_with`] decodes through. Large, because zlib copies every
/// call's last 32 KiB of output into its window: the fewer calls, the fewer copies.
const SCRATCH: usize = 256 * 1024;

/// Per-thread reusable state: zlib-rs allocates its state and window on creation, which
/// costs more than inflating a small stream.
#[derive(Default)]
struct Cache {
    raw: Option<Decompress>,
    zlib: Option<Decompress>,
    scratch: Vec<u8>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// A decoder for `framing` (reset if reused) and the scratch buffer, taken out of the
/// thread's cache; a nested call (a sink that inflates) just gets fresh ones.
fn take(framing: Framing, with_scratch: bool) -> (Decompress, Vec<u8>) {
    let zlib = framing == Framing::Zlib;
    let (cached, scratch) = CACHE
        .try_with(|c| {
            c.try_borrow_mut().map_or((None, Vec::new()), |mut c| {
                let d = if zlib { c.zlib.take() } else { c.raw.take() };
                let s = if with_scratch {
                    std::mem::take(&mut c.scratch)
                } else {
                    Vec::new()
                };
                (d, s)
            })
        })
        .unwrap_or((None, Vec::new()));
    let decoder = match cached {
        Some(mut d) => {
            d.reset(zlib);
            d
        }
        None => Decompress::new(zlib),
    };
    let scratch = if with_scratch && scratch.len() != SCRATCH {
        vec![0u8; SCRATCH]
    } else {
        scratch
    };
    (decoder, scratch)
}

fn give_back(framing: Framing, decoder: Decompress, scratch: Vec<u8>) {
    let _ = CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if framing == Framing::Zlib {
                c.zlib = Some(decoder);
            } else {
                c.raw = Some(decoder);
            }
            if scratch.len() == SCRATCH {
                c.scratch = scratch;
            }
        }
    });
}

/// Input and output bytes a call moved.
fn progress(d: &Decompress, before: (u64, u64)) -> (usize, usize) {
    (
        usize::try_from(d.total_in() - before.0).unwrap_or(0),
        usize::try_from(d.total_out() - before.1).unwrap_or(0),
    )
}

/// Inflates `input` into `sink` in pieces, at most `cap` bytes in all.
pub fn inflate_with(
    input: &[u8],
    framing: Framing,
    cap: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<Inflated, InflateError> {
    let (mut decoder, mut scratch) = take(framing, true);
    let result = through_scratch(&mut decoder, &mut scratch, input, cap, sink);
    give_back(framing, decoder, scratch);
    result
}

fn through_scratch(
    decoder: &mut Decompress,
    scratch: &mut [u8],
    input: &[u8],
    cap: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<Inflated, InflateError> {
    let mut in_pos = 0usize;
    let mut produced: u64 = 0;
    loop {
        let rest = input.get(in_pos..).unwrap_or_default();
        let before = (decoder.total_in(), decoder.total_out());
        let status = decoder.decompress(rest, scratch, FlushDecompress::None);
        let (read, written) = progress(decoder, before);
        in_pos += read;
        if written > 0 {
            let chunk = scratch.get(..written).unwrap_or_default();
            let room = cap.saturating_sub(produced);
            if written as u64 > room {
                let keep = usize::try_from(room).unwrap_or(0);
                sink(chunk.get(..keep).unwrap_or_default());
                return Err(InflateError::OverCap { consumed: in_pos });
            }
            sink(chunk);
            produced += written as u64;
        }
        match status {
            Ok(Status::StreamEnd) => {
                return Ok(Inflated {
                    produced,
                    consumed: in_pos,
                });
            }
            // No progress with room to write: the input ran out before the final block.
            Ok(Status::Ok | Status::BufError) if read == 0 && written == 0 => {
                return Err(InflateError::Truncated { produced });
            }
            Ok(_) => {}
            Err(_) => {
                return Err(InflateError::Corrupt {
                    consumed: in_pos,
                    produced,
                });
            }
        }
    }
}

/// Inflates `input` onto the end of `out`, at most `cap` bytes; on error `out` keeps what
/// was produced (never more than `cap`). Reserve capacity in `out` first when the size is
/// known: the output is written straight into it.
pub fn inflate_into(
    input: &[u8],
    framing: Framing,
    cap: u64,
    out: &mut Vec<u8>,
) -> Result<Inflated, InflateError> {
    let (mut decoder, scratch) = take(framing, false);
    let result = into_vec(&mut decoder, input, cap, out);
    give_back(framing, decoder, scratch);
    result
}

fn into_vec(
    decoder: &mut Decompress,
    input: &[u8],
    cap: u64,
    out: &mut Vec<u8>,
) -> Result<Inflated, InflateError> {
    let base = out.len();
    // One byte past the cap is room enough to see that the stream goes on.
    let limit = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
    let mut in_pos = 0usize;
    loop {
        let produced = out.len() - base;
        if out.len() == out.capacity() {
            let grow = produced
                .max(64 * 1024)
                .min(limit.saturating_sub(produced))
                .max(1);
            out.reserve_exact(grow);
        }
        let rest = input.get(in_pos..).unwrap_or_default();
        let before = (decoder.total_in(), decoder.total_out());
        let status = decoder.decompress_vec(rest, out, FlushDecompress::None);
        let (read, written) = progress(decoder, before);
        in_pos += read;
        let produced = (out.len() - base) as u64;
        if produced > cap {
            out.truncate(base + usize::try_from(cap).unwrap_or(0));
            return Err(InflateError::OverCap { consumed: in_pos });
        }
        match status {
            Ok(Status::StreamEnd) => {
                return Ok(Inflated {
                    produced,
                    consumed: in_pos,
                });
            }
            Ok(Status::Ok | Status::BufError)
                if read == 0 && written == 0 && out.len() < out.capacity() =>
            {
                return Err(InflateError::Truncated { produced });
            }
            Ok(_) => {}
            Err(_) => {
                return Err(InflateError::Corrupt {
                    consumed: in_pos,
                    produced,
                });
            }
        }
    }
}

/// Inflates into a new buffer of at most `cap` bytes.
pub fn inflate_to_vec(input: &[u8], framing: Framing, cap: u64) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    inflate_into(input, framing, cap, &mut out)?;
    Ok(out)
}

/// Inflates into a buffer like [`inflate_to_vec`], but keeps what was produced on error.
pub fn inflate_partial(
    input: &[u8],
    framing: Framing,
    cap: u64,
) -> (Vec<u8>, Result<Inflated, InflateError>) {
    let mut out = Vec::new();
    let r = inflate_into(input, framing, cap, &mut out);
    (out, r)
}

/// Measures the inflated size without keeping the output.
pub fn inflate_count(input: &[u8], framing: Framing, cap: u64) -> Result<Inflated, InflateError> {
    inflate_with(input, framing, cap, &mut |_| {})
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored (uncompressed) deflate stream of `data`, for fixtures.
    pub(crate) fn stored_deflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = data.chunks(65535).collect();
        if chunks.is_empty() {
            out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
        }
        for (i, c) in chunks.iter().enumerate() {
            out.push(u8::from(i + 1 == chunks.len()));
            let n = c.len() as u16;
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&(!n).to_le_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let big = vec![0u8; 1 << 20];
        let packed = miniz_oxide::deflate::compress_to_vec(&big, 9);
        assert!(matches!(
            inflate_count(&packed, Framing::Raw, 1000),
            Err(InflateError::OverCap { .. })
        ));
        assert_eq!(
            inflate_count(&packed, Framing::Raw, 1 << 21)
                .unwrap()
                .produced,
            1 << 20
        );
    }

    #[test]
    fn a_cut_stream_is_truncated() {
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&[7u8; 5000], 6);
        let cut = &packed[..packed.len() / 2];
        assert!(matches!(
            inflate_to_vec(cut, Framing::Zlib, 1 << 20),
            Err(InflateError::Truncated { .. })
        ));
    }

    #[test]
    fn stored_fixture_round_trips() {
        let s = stored_deflate(b"hello");
        assert_eq!(inflate_to_vec(&s, Framing::Raw, 100).unwrap(), b"hello");
    }
}
