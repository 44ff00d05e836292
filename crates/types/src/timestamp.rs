//! Points in time as RFC 3339 text with an offset at the edge, and as milliseconds since
//! the Unix epoch plus the offset in minutes inside (so that the text round-trips).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::codec::{Canonical, DecodeError, Decoder, Encoder};

/// Why a time was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeError {
    /// Not RFC 3339 with an offset.
    #[error("{0:?} is not an RFC 3339 time with an offset (like 2026-11-29T10:15:00+08:00)")]
    Malformed(String),
    /// Finer than a millisecond.
    #[error("{0:?} is more precise than a millisecond")]
    TooPrecise(String),
    /// Out of the range this system holds.
    #[error("time out of range")]
    OutOfRange,
}

/// The widest offset from UTC, in minutes, that RFC 3339 can write: 23:59.
pub const MAX_OFFSET_MIN: u16 = 23 * 60 + 59;

/// A moment with the offset it was written in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub unix_ms: i64,
    /// The offset from UTC it is shown in, in minutes (+480 for China).
    pub offset_min: i16,
}

impl Timestamp {
    /// Parses RFC 3339 text such as `2026-11-29T10:15:00+08:00`.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| TimeError::Malformed(s.into()))?;
        let nanos = dt.unix_timestamp_nanos();
        if nanos % 1_000_000 != 0 {
            return Err(TimeError::TooPrecise(s.into()));
        }
        let unix_ms = i64::try_from(nanos / 1_000_000).map_err(|_| TimeError::OutOfRange)?;
        let offset_min = dt.offset().whole_minutes();
        let ts = Self {
            unix_ms,
            offset_min,
        };
        ts.to_datetime()?;
        Ok(ts)
    }

    /// The last millisecond of a calendar day `YYYY-MM-DD` in China (+08:00): how a
    /// qualification date (开票资格有效期至) is written. RFC 3339 text is read as it is.
    pub fn end_of_day(s: &str) -> Result<Self, TimeError> {
        if s.contains('T') {
            return Self::parse(s);
        }
        let bad = || TimeError::Malformed(s.into());
        let mut parts = s.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        let day: u8 = d.parse().map_err(|_| bad())?;
        let month = time::Month::try_from(month).map_err(|_| bad())?;
        let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
        let offset = UtcOffset::from_hms(8, 0, 0).map_err(|_| TimeError::OutOfRange)?;
        let end = date
            .with_hms_milli(23, 59, 59, 999)
            .map_err(|_| bad())?
            .assume_offset(offset);
        let unix_ms = i64::try_from(end.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| TimeError::OutOfRange)?;
        let ts = Self {
            unix_ms,
            offset_min: 480,
        };
        ts.to_datetime()?;
        Ok(ts)
    }

    /// Whether a qualification that holds until this moment has lapsed at block time
    /// `block_time_ms`: strictly after it. The ledger (which refuses what a lapsed unit
    /// signs) and the offline verifier (which refuses it in a bundle) both ask this.
    pub fn lapsed_at(&self, block_time_ms: u64) -> bool {
        i128::from(block_time_ms) > i128::from(self.unix_ms)
    }

    /// A UTC moment from milliseconds since the epoch.
    pub fn from_unix_ms(unix_ms: i64) -> Self {
        Self {
            unix_ms,
            offset_min: 0,
        }
    }

    fn to_datetime(self) -> Result<OffsetDateTime, TimeError> {
        // RFC 3339 writes offset hours 00 to 23; `time` holds up to 25:59. An offset in
        // between would decode from canonical bytes but have no text form, so that a bill
        // carrying it could never be shown (found by fuzzing, docs/fuzzing.md).
        if self.offset_min.unsigned_abs() > MAX_OFFSET_MIN {
            return Err(TimeError::OutOfRange);
        }
        let offset = UtcOffset::from_whole_seconds(i32::from(self.offset_min) * 60)
            .map_err(|_| TimeError::OutOfRange)?;
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_ms) * 1_000_000)
            .map_err(|_| TimeError::OutOfRange)?;
        // Years outside 0000..=9999 have no RFC 3339 form.
        let shown = dt.to_offset(offset);
        if !(0..=9999).contains(&shown.year()) {
            return Err(TimeError::OutOfRange);
        }
        Ok(shown)
    }

    /// RFC 3339 text in the stored offset.
    pub fn to_rfc3339(&self) -> Result<String, TimeError> {
        self.to_datetime()?
            .format(&Rfc3339)
            .map_err(|_| TimeError::OutOfRange)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_rfc3339() {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}ms{:+}min", self.unix_ms, self.offset_min),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.to_rfc3339().map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Canonical for Timestamp {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.i64(self.unix_ms).i16(self.offset_min);
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let ts = Self {
            unix_ms: dec.i64("time")?,
            offset_min: dec.i16("time offset")?,
        };
        ts.to_datetime().map_err(|e| DecodeError::Invalid {
            what: "time",
            reason: e.to_string(),
        })?;
        Ok(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_day_is_the_last_millisecond_in_china() {
        let t = Timestamp::end_of_day("2099-12-31");
        assert_eq!(t.as_ref().map(|t| t.unix_ms), Ok(4_102_415_999_999));
        assert_eq!(
            t.map(|t| t.to_string()).as_deref(),
            Ok("2099-12-31T23:59:59.999+08:00")
        );
        for bad in [
            "2027-02-30",
            "2027-1-01",
            "27-01-01",
            "2027-01-01-01",
            "tomorrow",
        ] {
            assert!(Timestamp::end_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trips_with_offset() {
        let s = "2026-11-29T10:15:00+08:00";
        let ts = Timestamp::parse(s).ok();
        assert_eq!(ts.map(|t| t.offset_min), Some(480));
        assert_eq!(ts.and_then(|t| t.to_rfc3339().ok()).as_deref(), Some(s));
        assert_eq!(
            Timestamp::parse("2026-11-29T02:15:00Z").map(|t| t.unix_ms),
            ts.map(|t| t.unix_ms).ok_or(TimeError::OutOfRange)
        );
    }

    #[test]
    fn refuses_missing_offset_and_sub_millisecond() {
        assert!(Timestamp::parse("2026-11-29T10:15:00").is_err());
        assert!(Timestamp::parse("2026-11-29").is_err());
        assert!(matches!(
            Timestamp::parse("2026-11-29T10:15:00.0000001+08:00"),
            Err(TimeError::TooPrecise(_))
        ));
    }
}
