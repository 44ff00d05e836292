//! Money as integer fen (分), and decimal quantities, with their strict string forms.
//!
//! Inside, money is a `u64` count of fen. At every edge it is a decimal string with at
//! most two places (`"12.50"`, `"3"`, `"0.5"`); it is always written with exactly two
//! (`"12.50"`). A JSON number, a third decimal, a sign, an exponent, spaces or leading
//! zeros are refused: nothing about money is guessed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Why a decimal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AmountError {
    /// Not of the form `digits[.digits]`.
    #[error("{0:?} is not a plain decimal (digits, optionally '.' and at most {1} decimals)")]
    Malformed(String, u32),
    /// Too large to hold.
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Parses `digits[.digits]` with at most `places` decimals into an integer scaled by
/// `10^places`. No sign, no exponent, no leading zeros (except a lone `0`), no spaces.
fn parse_scaled(s: &str, places: u32) -> Result<u64, AmountError> {
    let bad = || AmountError::Malformed(s.to_owned(), places);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int.is_empty() || int.len() > 19 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if int.len() > 1 && int.starts_with('0') {
        return Err(bad());
    }
    let frac = frac.unwrap_or("");
    if s.contains('.') && frac.is_empty() {
        return Err(bad());
    }
    if frac.len() > places as usize || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let overflow = || AmountError::Overflow(s.to_owned());
    let int: u64 = int.parse().map_err(|_| overflow())?;
    let mut frac_val: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    for _ in frac.len()..places as usize {
        frac_val *= 10;
    }
    int.checked_mul(10u64.pow(places))
        .and_then(|v| v.checked_add(frac_val))
        .ok_or_else(overflow)
}

/// An amount of money in fen (1/100 yuan). Never negative.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(pub u64);

impl Fen {
    /// Parses the decimal string form (`"12.50"`, `"12.5"`, `"12"`).
    pub fn parse(s: &str) -> Result<Self, AmountError> {
        parse_scaled(s, 2).map(Self)
    }

    /// Sum, or `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Debug for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fen({self})")
    }
}

/// A quantity of an item, a decimal with at most four places, held as ten-thousandths.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(pub u64);

impl Quantity {
    /// Decimal places a quantity may have.
    pub const PLACES: u32 = 4;
    /// Ten-thousandths per unit.
    pub const SCALE: u64 = 10_000;

    /// Parses the decimal string form (`"1"`, `"0.5"`, `"2.125"`).
    pub fn parse(s: &str) -> Result<Self, AmountError> {
        parse_scaled(s, Self::PLACES).map(Self)
    }

    /// `quantity × unit_price`, rounded half up to whole fen; `None` on overflow.
    pub fn times(self, unit_price: Fen) -> Option<Fen> {
        let product = u128::from(self.0) * u128::from(unit_price.0);
        let rounded = (product + u128::from(Self::SCALE / 2)) / u128::from(Self::SCALE);
        u64::try_from(rounded).ok().map(Fen)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / Self::SCALE;
        let frac = self.0 % Self::SCALE;
        if frac == 0 {
            return write!(f, "{int}");
        }
        let digits = format!("{frac:04}");
        write!(f, "{int}.{}", digits.trim_end_matches('0'))
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({self})")
    }
}

macro_rules! decimal_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Only a JSON string is accepted: a number would be a float on the way.
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

decimal_serde!(Fen);
decimal_serde!(Quantity);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_parses_strictly_and_prints_two_places() {
        assert_eq!(Fen::parse("12.50"), Ok(Fen(1250)));
        assert_eq!(Fen::parse("12.5"), Ok(Fen(1250)));
        assert_eq!(Fen::parse("0"), Ok(Fen(0)));
        assert_eq!(Fen::parse("0.01"), Ok(Fen(1)));
        for bad in [
            "",
            "-1",
            "+1",
            "1.",
            ".5",
            "1.234",
            "01",
            "1e3",
            " 1",
            "1 ",
            "1,00",
            "１",
            "99999999999999999999",
        ] {
            assert!(Fen::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Fen(1250).to_string(), "12.50");
        assert_eq!(Fen(5).to_string(), "0.05");
    }

    #[test]
    fn json_numbers_are_refused() {
        assert!(serde_json::from_str::<Fen>("12.5").is_err());
        assert_eq!(
            serde_json::from_str::<Fen>("\"12.5\"").ok(),
            Some(Fen(1250))
        );
    }

    #[test]
    fn quantity_times_price_rounds_half_up() {
        let q = Quantity::parse("0.5").ok();
        assert_eq!(q, Some(Quantity(5000)));
        assert_eq!(Quantity(5000).times(Fen(3)), Some(Fen(2)));
        assert_eq!(Quantity(10_000).times(Fen(1250)), Some(Fen(1250)));
        assert_eq!(Quantity(25_000).to_string(), "2.5");
        assert_eq!(Quantity(10_000).to_string(), "1");
    }
}
