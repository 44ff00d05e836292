//! Canonical binary encoding: the only bytes that are ever signed or hashed.
//!
//! The rules (docs/design.md §5, specified byte by byte in docs/spec/encoding.md): fixed-width big-endian integers, byte strings and text
//! with a `u32` big-endian length prefix, no maps, no floats, and a domain tag in front of
//! every signed form. Every read is bounded, and [`Decoder::finish`] refuses trailing
//! bytes, so a value has exactly one encoding and a decoder never accepts a second one.

use thiserror::Error;

/// Why canonical bytes could not be decoded. Every variant is a refusal of hostile or
/// corrupt input, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("input ends early: needed {needed} more bytes for {what}")]
    UnexpectedEnd {
        /// What was being read.
        what: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Bytes were left after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A length prefix exceeded the limit for that field.
    #[error("{what} is {len} long, over the limit of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A tag, enum discriminant or flag had a value with no meaning.
    #[error("invalid {what}: {value}")]
    InvalidTag {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// The domain tag in front of a signed form was not the expected one.
    #[error("wrong domain tag: expected {expected}")]
    WrongDomain {
        /// The expected tag.
        expected: &'static str,
    },
    /// Text was not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    BadUtf8(&'static str),
    /// A value decoded but broke a rule of its type (for example a bill code that is not
    /// eight digits).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// Writes canonical bytes.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder that starts with a domain tag (length-prefixed, so that no tag is a
    /// prefix of another's encoding).
    pub fn with_domain(domain: &str) -> Self {
        let mut enc = Self::new();
        enc.str(domain);
        enc
    }

    /// The bytes written so far.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian two's-complement `i64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian two's-complement `i16`.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a boolean as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Appends fixed-width bytes with no prefix (hashes, keys, signatures).
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a `u32`-length-prefixed byte string.
    ///
    /// # Panics
    /// If `v` is longer than `u32::MAX`: no value of this system comes near it, so that
    /// is a bug, not input.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or_else(|_| {
            unreachable!("canonical byte string over 4 GiB: {} bytes", v.len())
        });
        self.u32(len);
        self.fixed(v)
    }

    /// Appends `u32`-length-prefixed UTF-8 text.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Appends an optional value: a 0 byte for none, a 1 byte and the value for some.
    pub fn option<T>(&mut self, v: Option<&T>, f: impl FnOnce(&mut Self, &T)) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
                self
            }
        }
    }

    /// Appends a `u32` count and then each item.
    pub fn seq<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Self, &T)) -> &mut Self {
        let len = u32::try_from(items.len())
            .unwrap_or_else(|_| unreachable!("canonical sequence over 4G items: {}", items.len()));
        self.u32(len);
        for item in items {
            f(self, item);
        }
        self
    }
}

/// Reads canonical bytes, refusing anything out of bounds.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A decoder over `buf` that first requires the domain tag `domain`.
    pub fn with_domain(buf: &'a [u8], domain: &'static str) -> Result<Self, DecodeError> {
        let mut dec = Self::new(buf);
        let tag = dec.bytes("domain tag", domain.len())?;
        if tag != domain.as_bytes() {
            return Err(DecodeError::WrongDomain { expected: domain });
        }
        Ok(dec)
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Reads exactly `n` bytes.
    pub fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(what, N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `i64`.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `i16`.
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    /// Reads a boolean; any byte other than 0 or 1 is refused.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError::InvalidTag {
                what,
                value: u64::from(v),
            }),
        }
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::TooLong { what, len, max });
        }
        self.take(what, len)
    }

    /// Reads length-prefixed UTF-8 text of at most `max` bytes.
    pub fn str(&mut self, what: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes(what, max)?).map_err(|_| DecodeError::BadUtf8(what))
    }

    /// Reads an optional value written by [`Encoder::option`].
    pub fn option<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.bool(what)? {
            Ok(Some(f(self)?))
        } else {
            Ok(None)
        }
    }

    /// Reads a sequence of at most `max` items written by [`Encoder::seq`].
    pub fn seq<T>(
        &mut self,
        what: &'static str,
        max: usize,
        mut f: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::TooLong { what, len, max });
        }
        // Every item takes at least one byte, so a count beyond the bytes left is a lie:
        // refuse it before reserving memory for it.
        if len > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: len - self.remaining(),
            });
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(f(self)?);
        }
        Ok(out)
    }
}

/// A type with exactly one canonical byte form.
pub trait Canonical: Sized {
    /// Writes the canonical form.
    fn encode_to(&self, enc: &mut Encoder);

    /// Reads the canonical form, leaving the decoder after it.
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError>;

    /// The canonical bytes.
    fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut enc = Encoder::new();
        self.encode_to(&mut enc);
        enc.finish()
    }

    /// Decodes a whole buffer, refusing trailing bytes.
    fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(bytes);
        let v = Self::decode_from(&mut dec)?;
        dec.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_strings_length_prefixed() {
        let mut enc = Encoder::new();
        enc.u16(0x0102).u32(3).str("ab").bool(true);
        assert_eq!(
            enc.finish(),
            vec![1, 2, 0, 0, 0, 3, 0, 0, 0, 2, b'a', b'b', 1]
        );
    }

    #[test]
    fn decoder_refuses_trailing_bytes_and_bad_bools() {
        let dec = Decoder::new(&[1]);
        assert_eq!(dec.finish(), Err(DecodeError::TrailingBytes(1)));
        let mut dec = Decoder::new(&[2]);
        assert!(matches!(
            dec.bool("flag"),
            Err(DecodeError::InvalidTag { .. })
        ));
    }

    #[test]
    fn decoder_refuses_lengths_over_limit_and_lying_counts() {
        let mut enc = Encoder::new();
        enc.str("hello");
        let bytes = enc.finish();
        assert!(matches!(
            Decoder::new(&bytes).str("name", 4),
            Err(DecodeError::TooLong { .. })
        ));
        // A sequence that claims a billion items in four bytes.
        let bytes = [0x3b, 0x9a, 0xca, 0x00];
        assert!(
            Decoder::new(&bytes)
                .seq("items", usize::MAX, |d| d.u8("x"))
                .is_err()
        );
    }

    #[test]
    fn domain_tag_must_match() {
        let bytes = Encoder::with_domain("ebill/a/v1").finish();
        assert!(Decoder::with_domain(&bytes, "ebill/a/v1").is_ok());
        assert!(matches!(
            Decoder::with_domain(&bytes, "ebill/b/v1"),
            Err(DecodeError::WrongDomain { .. })
        ));
    }
}
