//! The byte-level codec under every remote-support message: a bounds-checked [`Reader`] that
//! never panics and says where it stopped, the [`Codec`] trait the typed messages implement,
//! and the one frame layout they all share.
//!
//! A frame is `version: u8 | type: u8 | length: u32 (big-endian) | body`, where `length` is
//! exactly the number of body bytes that follow. Integers are big-endian. Variable-length
//! fields carry their own length prefix (`u16` or `u32`) and a per-field maximum that is
//! checked before anything is allocated.

/// The protocol version every frame starts with.
pub const VERSION: u8 = 1;

/// Bytes before a frame's body: version, type, length.
pub const FRAME_HEADER: usize = 6;

/// Why bytes are not a valid message. Every variant names the field and the offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("{what} at offset {at}: needs {need} more bytes, {have} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Offset of the field.
        at: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// A length prefix above the field's maximum.
    #[error("{what} at offset {at}: length {len} exceeds the maximum of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Offset of the length prefix.
        at: usize,
        /// The length claimed.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A type or enum tag this version does not define.
    #[error("{what} at offset {at}: unknown value {value:#04x}")]
    Unknown {
        /// The field.
        what: &'static str,
        /// Offset of the tag.
        at: usize,
        /// The value found.
        value: u32,
    },
    /// A frame from another protocol version.
    #[error("frame version {got} is not supported (this side speaks version {VERSION})")]
    Version {
        /// The version byte found.
        got: u8,
    },
    /// Text that is not UTF-8.
    #[error("{what} at offset {at}: not valid UTF-8")]
    Utf8 {
        /// The field.
        what: &'static str,
        /// Offset of the text.
        at: usize,
    },
    /// A value that is well-formed but not allowed (a path in a file name, a URL scheme).
    #[error("{what} at offset {at}: {why}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Offset of the field.
        at: usize,
        /// What rule it breaks.
        why: &'static str,
    },
    /// Bytes after the end of a message.
    #[error("{count} unexpected bytes after the message at offset {at}")]
    Trailing {
        /// Where the message ended.
        at: usize,
        /// How many bytes follow.
        count: usize,
    },
}

/// A cursor over untrusted bytes: every read checks the length first and reports the field.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`; offsets in errors count from their start.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            pos: 0,
            base: 0,
        }
    }

    /// A reader whose error offsets start at `base` (a body inside a frame).
    #[must_use]
    pub fn at(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    /// The offset of the next byte, as errors report it.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Takes `n` bytes.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let have = self.remaining();
        if n > have {
            return Err(DecodeError::Truncated {
                what,
                at: self.offset(),
                need: n,
                have,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A fixed-size array.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// One byte.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A big-endian `u16`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian `i16`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A big-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A boolean: exactly 0 or 1.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`], [`DecodeError::Invalid`] for any other byte.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        let at = self.offset();
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid {
                what,
                at,
                why: "a boolean must be 0 or 1",
            }),
        }
    }

    /// Bytes with a `u16` length prefix, at most `max`.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`], [`DecodeError::Truncated`].
    pub fn bytes16(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let at = self.offset();
        let len = usize::from(self.u16(what)?);
        self.bounded(len, max, at, what)
    }

    /// Bytes with a `u32` length prefix, at most `max`.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`], [`DecodeError::Truncated`].
    pub fn bytes32(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let at = self.offset();
        let len = usize::try_from(self.u32(what)?).unwrap_or(usize::MAX);
        self.bounded(len, max, at, what)
    }

    fn bounded(
        &mut self,
        len: usize,
        max: usize,
        at: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong { what, at, len, max });
        }
        self.take(len, what)
    }

    /// UTF-8 text with a `u16` length prefix, at most `max` bytes.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`], [`DecodeError::Truncated`], [`DecodeError::Utf8`].
    pub fn string(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        let at = self.offset();
        let raw = self.bytes16(max, what)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Utf8 { what, at: at + 2 })
    }

    /// Fails unless every byte was read.
    ///
    /// # Errors
    /// [`DecodeError::Trailing`].
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::Trailing {
                at: self.offset(),
                count,
            }),
        }
    }
}

/// Appends big-endian fields and length-prefixed values. Encoders only write values that
/// fit their prefix: constructors and decoders enforce the same maxima.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Writer::default()
    }

    /// The bytes written.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }
    /// A `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// An `i16`.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A boolean as 0 or 1.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    /// Raw bytes, no prefix.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.out.extend_from_slice(v);
        self
    }
    /// Bytes with a `u16` prefix; longer input is cut at `u16::MAX` (never reached: every
    /// field's maximum is lower and enforced where values are made).
    pub fn bytes16(&mut self, v: &[u8]) -> &mut Self {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.u16(len);
        self.raw(&v[..usize::from(len)])
    }
    /// Bytes with a `u32` prefix (cut at `u32::MAX`, likewise never reached).
    pub fn bytes32(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(&v[..usize::try_from(len).unwrap_or(v.len())])
    }
    /// Text with a `u16` prefix.
    pub fn string(&mut self, v: &str) -> &mut Self {
        self.bytes16(v.as_bytes())
    }
}

/// A wire type: encodes itself and reads itself back from untrusted bytes.
pub trait Codec: Sized {
    /// Appends the encoding.
    fn encode(&self, w: &mut Writer);
    /// Reads one value.
    ///
    /// # Errors
    /// Whatever is wrong with the bytes; never panics.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The encoding as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }

    /// Decodes exactly one value from all of `bytes`.
    ///
    /// # Errors
    /// As [`Codec::read`], plus [`DecodeError::Trailing`].
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// Wraps a body as a frame of type `ty`.
#[must_use]
pub fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(VERSION).u8(ty).bytes32(body);
    w.into_bytes()
}

/// Splits a frame into its type and body, checking version, `max_body` and that the length
/// covers the rest exactly.
///
/// # Errors
/// [`DecodeError::Version`], [`DecodeError::TooLong`], [`DecodeError::Truncated`],
/// [`DecodeError::Trailing`].
pub fn unframe(bytes: &[u8], max_body: usize) -> Result<(u8, &[u8]), DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8("frame version")?;
    if version != VERSION {
        return Err(DecodeError::Version { got: version });
    }
    let ty = r.u8("frame type")?;
    let body = r.bytes32(max_body, "frame body")?;
    r.finish()?;
    Ok((ty, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let f = frame(7, b"abc");
        assert_eq!(f, [1, 7, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(unframe(&f, 16).unwrap(), (7, &b"abc"[..]));
    }

    #[test]
    fn a_frame_longer_than_its_length_is_refused() {
        let mut f = frame(7, b"abc");
        f.push(0);
        assert!(matches!(
            unframe(&f, 16),
            Err(DecodeError::Trailing { at: 9, count: 1 })
        ));
    }

    #[test]
    fn a_huge_length_is_refused_before_allocation() {
        let f = [1, 7, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            unframe(&f, 16),
            Err(DecodeError::TooLong { at: 2, .. })
        ));
    }

    #[test]
    fn another_version_is_named() {
        assert_eq!(unframe(&[2, 0], 16), Err(DecodeError::Version { got: 2 }));
    }

    #[test]
    fn a_boolean_is_zero_or_one() {
        assert!(Reader::new(&[2]).bool("flag").is_err());
        assert!(Reader::new(&[1]).bool("flag").unwrap());
    }

    #[test]
    fn bad_utf8_reports_the_text_offset() {
        let mut r = Reader::at(&[0, 1, 0xff], 10);
        assert_eq!(
            r.string(8, "chat text"),
            Err(DecodeError::Utf8 {
                what: "chat text",
                at: 12
            })
        );
    }
}
