//! Bounds-checked reads of fixed-width integers from untrusted bytes: every read returns
//! `None` past the end instead of panicking, so parsers turn short input into findings.

/// `len` bytes at `off`, if all are inside `data`.
#[must_use]
pub fn slice(data: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    data.get(off..off.checked_add(len)?)
}

/// The bytes from `off` to the end (empty past the end).
#[must_use]
pub fn tail(data: &[u8], off: usize) -> &[u8] {
    data.get(off..).unwrap_or_default()
}

/// One byte.
#[must_use]
pub fn u8_at(data: &[u8], off: usize) -> Option<u8> {
    data.get(off).copied()
}

/// Little-endian u16.
#[must_use]
pub fn le16(data: &[u8], off: usize) -> Option<u16> {
    let b = slice(data, off, 2)?;
    Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
}

/// Little-endian u32.
#[must_use]
pub fn le32(data: &[u8], off: usize) -> Option<u32> {
    let b: [u8; 4] = slice(data, off, 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Little-endian u64.
#[must_use]
pub fn le64(data: &[u8], off: usize) -> Option<u64> {
    let b: [u8; 8] = slice(data, off, 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Big-endian u16.
#[must_use]
pub fn be16(data: &[u8], off: usize) -> Option<u16> {
    let b = slice(data, off, 2)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Big-endian u32.
#[must_use]
pub fn be32(data: &[u8], off: usize) -> Option<u32> {
    let b: [u8; 4] = slice(data, off, 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Position of the first occurrence of `needle` in `hay` at or after `from`.
#[must_use]
pub fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let rest = hay.get(from..)?;
    let at = if let [byte] = needle {
        memchr::memchr(*byte, rest)
    } else {
        memchr::memmem::find(rest, needle)
    }?;
    Some(from + at)
}

/// Whether `needle` occurs in `hay`, ASCII case-insensitively.
#[must_use]
pub fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return false;
    };
    // Jump between candidates for the first byte (either case) with SIMD, then compare.
    let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lo, up, hay).any(|at| {
        hay.get(at..at + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_return_none() {
        assert_eq!(le32(&[1, 2, 3], 0), None);
        assert_eq!(le16(&[1, 2, 3], usize::MAX), None);
        assert_eq!(be16(&[1, 2], 0), Some(0x0102));
    }

    #[test]
    fn case_insensitive_search_finds_either_case() {
        assert!(contains_ignore_case(b"xx<!doctype y", b"<!DOCTYPE"));
        assert!(contains_ignore_case(
            b"New-Object Net.WebClient",
            b"new-object net.webclient"
        ));
        assert!(!contains_ignore_case(b"<!DOCTYP", b"<!DOCTYPE"));
        assert!(!contains_ignore_case(b"abc", b""));
    }

    #[test]
    fn find_locates_needles_after_the_start() {
        assert_eq!(find(b"abcabc", b"bc", 2), Some(4));
        assert_eq!(find(b"abc", b"x", 0), None);
        assert_eq!(find(b"abc", b"bc", 99), None);
    }
}
