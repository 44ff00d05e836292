//! Strict lowercase hex for the JSON forms of hashes, keys and signatures.

use thiserror::Error;

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    /// Wrong number of digits.
    #[error("expected {expected} hex digits, got {got}")]
    Length {
        /// Digits expected.
        expected: usize,
        /// Digits found.
        got: usize,
    },
    /// A character that is not a lowercase hex digit.
    #[error("not lowercase hex")]
    NotLowerHex,
}

/// Decodes exactly `N` bytes from `2N` lowercase hex digits.
pub fn decode_fixed<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    if s.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            got: s.len(),
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(HexError::NotLowerHex);
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| HexError::NotLowerHex)?;
    Ok(out)
}

/// Serde helpers for a fixed-size byte array as lowercase hex.
pub mod serde_fixed {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as lowercase hex.
    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Deserialises strict lowercase hex of exactly `N` bytes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::decode_fixed::<N>(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers for variable-length bytes as lowercase hex (bounded by the caller's
/// own limits after decoding; uppercase and odd lengths are refused).
pub mod bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes lowercase hex.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Reads lowercase hex of an even length.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(serde::de::Error::custom("expected lowercase hex"));
        }
        hex::decode(&s).map_err(serde::de::Error::custom)
    }
}
