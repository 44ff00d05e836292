//! The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters from a
//! 31-character alphabet, the last a check character over the first 17.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The 31 characters of GB 32100 (no I, O, S, V, Z), in value order.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1..=17: 3^(i-1) mod 31.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why a credit code was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CreditCodeError {
    /// Not 18 characters.
    #[error("a unified social credit code has 18 characters, not {0}")]
    Length(usize),
    /// A character outside the GB 32100 alphabet (digits and upper-case letters except I, O, S, V, Z).
    #[error("character {0:?} is not allowed in a unified social credit code")]
    BadChar(char),
    /// The check character does not match.
    #[error("check character is {found:?}, expected {expected:?}")]
    BadCheck {
        /// The last character given.
        found: char,
        /// What the first 17 characters require.
        expected: char,
    },
}

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character for the first 17 characters of a code.
pub fn check_char(first17: &[u8]) -> Result<char, CreditCodeError> {
    let mut sum = 0u32;
    for (i, &c) in first17.iter().enumerate().take(17) {
        let v = value_of(c).ok_or(CreditCodeError::BadChar(char::from(c)))?;
        sum += v * WEIGHTS[i];
    }
    let check = (31 - sum % 31) % 31;
    Ok(char::from(ALPHABET[check as usize]))
}

/// A validated unified social credit code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode([u8; 18]);

impl CreditCode {
    /// Validates `s`: length, alphabet and check character.
    pub fn parse(s: &str) -> Result<Self, CreditCodeError> {
        let bytes = s.as_bytes();
        if s.chars().count() != 18 || bytes.len() != 18 {
            return Err(CreditCodeError::Length(s.chars().count()));
        }
        for &b in bytes {
            if value_of(b).is_none() {
                return Err(CreditCodeError::BadChar(char::from(b)));
            }
        }
        let expected = check_char(&bytes[..17])?;
        let found = char::from(bytes[17]);
        if found != expected {
            return Err(CreditCodeError::BadCheck { found, expected });
        }
        let mut out = [0u8; 18];
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// Completes 17 characters with their check character (for making test and dev
    /// codes; real codes come from the registry).
    pub fn complete(first17: &str) -> Result<Self, CreditCodeError> {
        if first17.len() != 17 {
            return Err(CreditCodeError::Length(first17.len() + 1));
        }
        let c = check_char(first17.as_bytes())?;
        Self::parse(&format!("{first17}{c}"))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Every byte is from ALPHABET, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_else(|_| unreachable!("credit code is ASCII"))
    }

    /// The 18 bytes.
    pub fn as_bytes(&self) -> &[u8; 18] {
        &self.0
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CreditCode({})", self.as_str())
    }
}

impl Serialize for CreditCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CreditCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl crate::codec::Canonical for CreditCode {
    fn encode_to(&self, enc: &mut crate::codec::Encoder) {
        enc.fixed(&self.0);
    }

    fn decode_from(dec: &mut crate::codec::Decoder<'_>) -> Result<Self, crate::codec::DecodeError> {
        let bytes: [u8; 18] = dec.array("credit code")?;
        let s = std::str::from_utf8(&bytes)
            .map_err(|_| crate::codec::DecodeError::BadUtf8("credit code"))?;
        Self::parse(s).map_err(|e| crate::codec::DecodeError::Invalid {
            what: "credit code",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_real_format_codes_validate() {
        // Published example codes with correct check characters.
        assert!(CreditCode::parse("91350100M000100Y43").is_ok());
        assert!(CreditCode::parse("91110000802100433B").is_ok());
    }

    #[test]
    fn wrong_check_length_and_alphabet_are_refused() {
        assert!(matches!(
            CreditCode::parse("91350100M000100Y44"),
            Err(CreditCodeError::BadCheck { .. })
        ));
        assert!(matches!(
            CreditCode::parse("91350100M000100Y4"),
            Err(CreditCodeError::Length(17))
        ));
        assert!(matches!(
            CreditCode::parse("91350100I000100Y43"),
            Err(CreditCodeError::BadChar('I'))
        ));
        assert!(matches!(
            CreditCode::parse("91350100m000100Y43"),
            Err(CreditCodeError::BadChar('m'))
        ));
    }

    #[test]
    fn complete_adds_the_check_character() {
        let code = CreditCode::complete("12330000470000000").ok();
        assert!(code.is_some());
    }
}
