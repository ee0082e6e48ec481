use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{DomainError, shown};

/// A point in time, UTC, with microsecond precision: microseconds since the Unix
/// epoch. Rendered as RFC 3339 with exactly six fraction digits
/// (`2026-11-27T17:51:20.123456Z`), which sorts lexicographically in time order and
/// parses back to the same value. Years 0001 to 9999 only.
///
/// This crate does not read the clock for timestamps: stores make them from
/// [`SystemTime`] with [`Timestamp::from_system_time`] (or from an injected clock).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// 0001-01-01T00:00:00Z in microseconds since the epoch.
const MIN_MICROS: i64 = -62_135_596_800 * MICROS_PER_SEC;
/// 9999-12-31T23:59:59.999999Z in microseconds since the epoch.
const MAX_MICROS: i64 = 253_402_300_800 * MICROS_PER_SEC - 1;

impl Timestamp {
    /// The Unix epoch.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// From microseconds since the Unix epoch; refused outside years 0001..=9999.
    pub fn from_unix_micros(micros: i64) -> Result<Self, DomainError> {
        if (MIN_MICROS..=MAX_MICROS).contains(&micros) {
            Ok(Self(micros))
        } else {
            Err(DomainError::InvalidTimestamp {
                value: micros.to_string(),
                reason: "outside years 0001 to 9999",
            })
        }
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_unix_micros(self) -> i64 {
        self.0
    }

    /// From a [`SystemTime`], truncated to the microsecond and clamped to the
    /// supported range.
    pub fn from_system_time(t: SystemTime) -> Self {
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(MAX_MICROS),
            Err(e) => i64::try_from(e.duration().as_micros()).map_or(MIN_MICROS, |m| -m),
        };
        Self(micros.clamp(MIN_MICROS, MAX_MICROS))
    }

    /// Parses exactly the form [`Display`](fmt::Display) renders.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::InvalidTimestamp {
            value: shown(value),
            reason,
        };
        let b = value.as_bytes();
        let shape = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
        if b.len() != shape.len()
            || !b.iter().zip(shape).all(|(c, s)| {
                if *s == b'd' {
                    c.is_ascii_digit()
                } else {
                    c == s
                }
            })
        {
            return Err(err("expected YYYY-MM-DDTHH:MM:SS.ffffffZ"));
        }
        let num = |r: std::ops::Range<usize>| {
            b[r].iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
        };
        let (year, month, day) = (num(0..4), num(5..7), num(8..10));
        let (hour, minute, second, micro) = (num(11..13), num(14..16), num(17..19), num(20..26));
        if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(err("no such date"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(err("no such time of day"));
        }
        let days = days_from_civil(year, month, day);
        let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second;
        Ok(Self(secs * MICROS_PER_SEC + micro))
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(MICROS_PER_SEC);
        let micro = self.0.rem_euclid(MICROS_PER_SEC);
        let days = secs.div_euclid(SECS_PER_DAY);
        let tod = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micro:06}Z",
            tod / 3600,
            tod % 3600 / 60,
            tod % 60
        )
    }
}

impl FromStr for Timestamp {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        let t = Timestamp::from_unix_micros(1_795_802_280_123_456).unwrap();
        assert_eq!(t.to_string(), "2026-11-27T17:58:00.123456Z");
        assert_eq!(Timestamp::parse("2026-11-27T17:58:00.123456Z").unwrap(), t);
        assert_eq!(
            Timestamp::from_unix_micros(MIN_MICROS).unwrap().to_string(),
            "0001-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_unix_micros(MAX_MICROS).unwrap().to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
        assert!(Timestamp::from_unix_micros(MAX_MICROS + 1).is_err());
        assert!(Timestamp::parse("2025-02-29T00:00:00.000000Z").is_err());
        assert!(Timestamp::parse("2024-02-29T00:00:00.000000Z").is_ok());
        assert!(Timestamp::parse("2024-02-29 00:00:00Z").is_err());
    }
}
