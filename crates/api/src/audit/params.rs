//! The audit API's query parameters, parsed strictly: each bad value is a 400 with its
//! own stable code, naming the parameter.

use ebill_store::index;
use ebill_types::bill::BillKind;
use ebill_types::{CreditCode, Fen, Timestamp};

use crate::error::ApiError;

/// Error codes of the audit API (besides the shared ones of [`crate::error::codes`]).
pub mod codes {
    /// `issuer` or `reimburser` is not a credit code.
    pub const INVALID_CREDIT_CODE: &str = "invalid_credit_code";
    /// `kind` is not a bill kind.
    pub const INVALID_KIND: &str = "invalid_kind";
    /// `status` is not a bill status.
    pub const INVALID_STATUS: &str = "invalid_status";
    /// `from` or `to` is not an RFC 3339 time or a date.
    pub const INVALID_TIME: &str = "invalid_time";
    /// `min_total` or `max_total` is not an amount in fen.
    pub const INVALID_AMOUNT: &str = "invalid_amount";
    /// `from` is not before `to`, or `min_total` is over `max_total`.
    pub const INVALID_RANGE: &str = "invalid_range";
    /// `cursor` is not one this query gave out.
    pub const INVALID_CURSOR: &str = "invalid_cursor";
    /// `limit` is not 1 to [`super::MAX_PAGE_BILLS`].
    pub const INVALID_LIMIT: &str = "invalid_limit";
    /// `group_by` is not issuer, kind, day or month.
    pub const INVALID_GROUP_BY: &str = "invalid_group_by";
    /// `rule` is not the id of a rule.
    pub const INVALID_RULE: &str = "invalid_rule";
    /// The range holds more bills than one answer may go through.
    pub const RANGE_TOO_LARGE: &str = "range_too_large";
}

/// China Standard Time, in minutes east of UTC: the offset in which a bare date
/// (`2026-12-01`) and the `day` and `month` groups are read.
pub const CHINA_OFFSET_MIN: i16 = 480;

/// A parameter's value, or `None` when it is absent or empty.
fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// A credit code parameter.
pub fn credit_code(name: &str, v: &Option<String>) -> Result<Option<CreditCode>, ApiError> {
    present(v)
        .map(|s| {
            CreditCode::parse(s).map_err(|e| {
                ApiError::bad_request(codes::INVALID_CREDIT_CODE, format!("{name}: {e}"))
            })
        })
        .transpose()
}

/// A bill kind parameter (its JSON name, like `medical_outpatient`).
pub fn kind(v: &Option<String>) -> Result<Option<BillKind>, ApiError> {
    present(v)
        .map(|s| {
            BillKind::ALL
                .iter()
                .copied()
                .find(|k| k.as_str() == s)
                .ok_or_else(|| {
                    let names: Vec<&str> = BillKind::ALL.iter().map(|k| k.as_str()).collect();
                    ApiError::bad_request(
                        codes::INVALID_KIND,
                        format!("kind: {s:?} is not one of {}", names.join(", ")),
                    )
                })
        })
        .transpose()
}

/// A status parameter, as its index tag.
pub fn status(v: &Option<String>) -> Result<Option<u8>, ApiError> {
    present(v)
        .map(|s| {
            index::status_tag_of_name(s).ok_or_else(|| {
                ApiError::bad_request(
                    codes::INVALID_STATUS,
                    format!(
                        "status: {s:?} is not one of {}",
                        index::STATUS_NAMES.join(", ")
                    ),
                )
            })
        })
        .transpose()
}

/// A time parameter in ms since the epoch: RFC 3339 with an offset, or a date
/// `YYYY-MM-DD` read as its midnight in China (+08:00).
pub fn time_ms(name: &str, v: &Option<String>) -> Result<Option<u64>, ApiError> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    let bad = |why: String| ApiError::bad_request(codes::INVALID_TIME, format!("{name}: {why}"));
    let ts = if s.len() == 10 && !s.contains('T') {
        Timestamp::parse(&format!("{s}T00:00:00+08:00"))
    } else {
        Timestamp::parse(s)
    }
    .map_err(|e| bad(e.to_string()))?;
    u64::try_from(ts.unix_ms)
        .map(Some)
        .map_err(|_| bad("before 1970".to_owned()))
}

/// An amount parameter in integer fen.
pub fn fen(name: &str, v: &Option<String>) -> Result<Option<Fen>, ApiError> {
    present(v)
        .map(|s| {
            if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::bad_request(
                    codes::INVALID_AMOUNT,
                    format!("{name}: {s:?} is not a whole number of fen"),
                ));
            }
            s.parse::<u64>()
                .map(Fen)
                .map_err(|e| ApiError::bad_request(codes::INVALID_AMOUNT, format!("{name}: {e}")))
        })
        .transpose()
}

/// A `[from, to)` time window: `from` inclusive, `to` exclusive, ms since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First ms in the window.
    pub from_ms: u64,
    /// First ms after it.
    pub to_ms: u64,
}

impl Window {
    /// The window of `from` and `to` (either may be absent: the whole chain).
    pub fn parse(from: &Option<String>, to: &Option<String>) -> Result<Self, ApiError> {
        let w = Self {
            from_ms: time_ms("from", from)?.unwrap_or(0),
            to_ms: time_ms("to", to)?.unwrap_or(u64::MAX),
        };
        if w.from_ms >= w.to_ms {
            return Err(ApiError::bad_request(
                codes::INVALID_RANGE,
                "from must be before to",
            ));
        }
        Ok(w)
    }

    /// Whether `ms` is in the window.
    pub fn contains(&self, ms: u64) -> bool {
        self.from_ms <= ms && ms < self.to_ms
    }
}

/// A positive integer parameter within `1..=max`, `default` when absent.
pub fn bounded(
    name: &str,
    code: &'static str,
    v: &Option<String>,
    default: u64,
    max: u64,
) -> Result<u64, ApiError> {
    let Some(s) = present(v) else {
        return Ok(default);
    };
    match s.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            code,
            format!("{name}: {s:?} is not a whole number from 1 to {max}"),
        )),
    }
}

/// The civil date (year, month, day) of a day number (days since 1970-01-01): Howard
/// Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // Bounded above: d is 1..=31 and m 1..=12.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// The China (+08:00) day number of a block time.
pub fn china_day(ms: u64) -> i64 {
    let shifted = i128::from(ms) + i128::from(CHINA_OFFSET_MIN) * 60_000;
    i64::try_from(shifted.div_euclid(86_400_000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_423), (2025, 12, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2026-11-30T16:00:00Z is 2026-12-01 00:00 in China.
        let ms = Timestamp::parse("2026-11-30T16:00:00Z").unwrap().unix_ms;
        assert_eq!(
            civil_from_days(china_day(u64::try_from(ms).unwrap())),
            (2026, 12, 1)
        );
        assert_eq!(
            civil_from_days(china_day(u64::try_from(ms - 1).unwrap())),
            (2026, 11, 30)
        );
    }

    #[test]
    fn bad_values_have_their_codes() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(kind(&s("nope")).unwrap_err().code, codes::INVALID_KIND);
        assert_eq!(status(&s("open")).unwrap_err().code, codes::INVALID_STATUS);
        assert_eq!(
            fen("min_total", &s("1.5")).unwrap_err().code,
            codes::INVALID_AMOUNT
        );
        assert_eq!(
            time_ms("from", &s("yesterday")).unwrap_err().code,
            codes::INVALID_TIME
        );
        assert_eq!(
            Window::parse(&s("2026-12-02"), &s("2026-12-01"))
                .unwrap_err()
                .code,
            codes::INVALID_RANGE
        );
        assert_eq!(
            credit_code("issuer", &s("123")).unwrap_err().code,
            codes::INVALID_CREDIT_CODE
        );
        assert_eq!(
            bounded("limit", codes::INVALID_LIMIT, &s("0"), 10, 100)
                .unwrap_err()
                .code,
            codes::INVALID_LIMIT
        );
        assert_eq!(
            bounded("limit", codes::INVALID_LIMIT, &None, 10, 100).unwrap(),
            10
        );
        assert_eq!(
            time_ms("from", &s("2026-12-01")).unwrap(),
            Some(
                u64::try_from(
                    Timestamp::parse("2026-12-01T00:00:00+08:00")
                        .unwrap()
                        .unix_ms
                )
                .unwrap()
            )
        );
    }
}
