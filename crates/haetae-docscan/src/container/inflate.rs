//! Deflate and zlib decompression with a hard output cap, so a bomb stops at the cap instead
//! of exhausting memory. Built on `miniz_oxide`'s core decompressor with a caller-owned
//! buffer: [`inflate_count`] measures without keeping the output.

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

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

fn flags_for(framing: Framing) -> u32 {
    match framing {
        Framing::Raw => 0,
        Framing::Zlib => {
            inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER | inflate_flags::TINFL_FLAG_COMPUTE_ADLER32
        }
    }
}

/// Inflates `input` into `sink` in pieces, at most `cap` bytes in all.
pub fn inflate_with(
    input: &[u8],
    framing: Framing,
    cap: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<Inflated, InflateError> {
    const WINDOW: usize = 32 * 1024;
    let mut state = Box::<DecompressorOxide>::default();
    let mut window = vec![0u8; WINDOW];
    let mut in_pos = 0usize;
    let mut out_pos = 0usize;
    let mut produced: u64 = 0;
    let flags = flags_for(framing);
    loop {
        let rest = input.get(in_pos..).unwrap_or_default();
        let (status, read, written) = decompress(&mut state, rest, &mut window, out_pos, flags);
        in_pos += read;
        if written > 0 {
            let chunk = window.get(out_pos..out_pos + written).unwrap_or_default();
            let room = cap.saturating_sub(produced);
            if written as u64 > room {
                let keep = usize::try_from(room).unwrap_or(0);
                sink(chunk.get(..keep).unwrap_or_default());
                return Err(InflateError::OverCap { consumed: in_pos });
            }
            sink(chunk);
            produced += written as u64;
        }
        out_pos = (out_pos + written) & (WINDOW - 1);
        match status {
            TINFLStatus::Done => {
                return Ok(Inflated {
                    produced,
                    consumed: in_pos,
                });
            }
            TINFLStatus::HasMoreOutput => {}
            TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                return Err(InflateError::Truncated { produced });
            }
            _ => {
                return Err(InflateError::Corrupt {
                    consumed: in_pos,
                    produced,
                });
            }
        }
        if read == 0 && written == 0 {
            return Err(InflateError::Truncated { produced });
        }
    }
}

/// Inflates into a new buffer of at most `cap` bytes.
pub fn inflate_to_vec(input: &[u8], framing: Framing, cap: u64) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    inflate_with(input, framing, cap, &mut |c| out.extend_from_slice(c))?;
    Ok(out)
}

/// Inflates into a buffer like [`inflate_to_vec`], but keeps what was produced on error.
pub fn inflate_partial(
    input: &[u8],
    framing: Framing,
    cap: u64,
) -> (Vec<u8>, Result<Inflated, InflateError>) {
    let mut out = Vec::new();
    let r = inflate_with(input, framing, cap, &mut |c| out.extend_from_slice(c));
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
