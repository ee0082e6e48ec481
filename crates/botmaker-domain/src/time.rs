use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

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
const NANOS_PER_MICRO: i128 = 1_000;
/// 0001-01-01T00:00:00Z in microseconds since the epoch.
const MIN_MICROS: i64 = -62_135_596_800 * MICROS_PER_SEC;
/// 9999-12-31T23:59:59.999999Z in microseconds since the epoch.
const MAX_MICROS: i64 = 253_402_300_800 * MICROS_PER_SEC - 1;

/// The one rendering, for `time` to format: four-digit year, `T`, six fraction digits,
/// `Z`. Fixed width, so the strings sort like the times they name.
const FORMAT: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
/// The date and the time-of-day halves of [`FORMAT`], parsed apart so that a refusal
/// can say which half names nothing.
const DATE: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]");
const TIME_OF_DAY: &[BorrowedFormatItem<'_>] =
    format_description!("[hour]:[minute]:[second].[subsecond digits:6]");

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
        // The shape is checked by hand first, so that every malformed input gets the
        // same refusal ("expected …") before any calendar question is asked; `time`
        // would name whichever component it failed to read first.
        let shape = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
        let b = value.as_bytes();
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
        // All ASCII now, so these byte ranges are character boundaries. The date is
        // asked first: a string wrong in both halves is "no such date".
        let date = value
            .get(0..10)
            .and_then(|d| Date::parse(d, DATE).ok())
            // `time` knows a year 0 (1 BC); the supported range starts at 0001.
            .filter(|d| d.year() >= 1)
            .ok_or_else(|| err("no such date"))?;
        let time = value
            .get(11..26)
            .and_then(|t| time::Time::parse(t, TIME_OF_DAY).ok())
            .ok_or_else(|| err("no such time of day"))?;
        let nanos = PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp_nanos();
        // Six fraction digits: a whole number of microseconds, and years 0001..=9999
        // always fit an i64 of them.
        i64::try_from(nanos / NANOS_PER_MICRO)
            .map(Self)
            .map_err(|_| err("outside years 0001 to 9999"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither step can fail for a value in years 0001..=9999, which every
        // constructor guarantees; an error here would be a broken invariant.
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * NANOS_PER_MICRO)
            .map_err(|_| fmt::Error)?;
        f.write_str(&at.format(FORMAT).map_err(|_| fmt::Error)?)
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
    use proptest::prelude::*;

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

    /// The refusals and their messages, one per reason.
    #[test]
    fn refusals_name_the_value_and_the_reason() {
        let message = |s: &str| Timestamp::parse(s).unwrap_err().to_string();
        assert_eq!(
            message("2024-02-29 00:00:00Z"),
            "invalid timestamp \"2024-02-29 00:00:00Z\": expected YYYY-MM-DDTHH:MM:SS.ffffffZ"
        );
        for shape in [
            "2024-02-29T00:00:00.00000Z",
            "2024-02-29T00:00:00.000000z",
            "2024-02-29t00:00:00.000000Z",
            "2024-02-29T00:00:00.000000+00:00",
            "+2024-02-29T00:00:00.000000Z",
            "１９７０-01-01T00:00:00.000000Z",
        ] {
            assert!(
                message(shape).ends_with("expected YYYY-MM-DDTHH:MM:SS.ffffffZ"),
                "{shape}"
            );
        }
        for date in [
            // The microsecond before the range: a string the shape allows.
            "0000-12-31T23:59:59.999999Z",
            "2025-02-29T00:00:00.000000Z",
            "2025-13-01T00:00:00.000000Z",
            "2025-00-01T00:00:00.000000Z",
            "2025-04-31T00:00:00.000000Z",
            "2025-01-00T00:00:00.000000Z",
            // Both halves wrong: the date is named.
            "2025-02-30T24:00:00.000000Z",
        ] {
            assert_eq!(
                message(date),
                format!("invalid timestamp \"{date}\": no such date")
            );
        }
        for time in [
            "2025-01-01T24:00:00.000000Z",
            "2025-01-01T00:60:00.000000Z",
            "2016-12-31T23:59:60.000000Z",
        ] {
            assert_eq!(
                message(time),
                format!("invalid timestamp \"{time}\": no such time of day")
            );
        }
        assert_eq!(
            Timestamp::from_unix_micros(MIN_MICROS - 1)
                .unwrap_err()
                .to_string(),
            "invalid timestamp \"-62135596800000001\": outside years 0001 to 9999"
        );
    }

    fn any_supported() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(MIN_MICROS),
            Just(MAX_MICROS),
            MIN_MICROS..=MIN_MICROS + 2 * 86_400 * MICROS_PER_SEC,
            MAX_MICROS - 2 * 86_400 * MICROS_PER_SEC..=MAX_MICROS,
            MIN_MICROS..=MAX_MICROS,
        ]
    }

    proptest! {
        /// Every supported value, the range ends included, renders in the one fixed
        /// shape and parses back to itself.
        #[test]
        fn round_trips_over_the_whole_range(micros in any_supported()) {
            let t = Timestamp::from_unix_micros(micros).unwrap();
            let s = t.to_string();
            prop_assert_eq!(s.len(), 27);
            prop_assert!(s.ends_with('Z') && s.as_bytes()[19] == b'.', "{}", s);
            prop_assert_eq!(Timestamp::parse(&s).unwrap(), t);
            prop_assert_eq!(t.as_unix_micros(), micros);
            prop_assert_eq!(s.parse::<Timestamp>().unwrap(), t);
        }

        /// Just outside the range (and anywhere beyond it) is refused.
        #[test]
        fn refuses_just_outside_the_range(k in 1i64..=86_400 * MICROS_PER_SEC, far in any::<i64>()) {
            prop_assert!(Timestamp::from_unix_micros(MIN_MICROS - k).is_err());
            prop_assert!(Timestamp::from_unix_micros(MAX_MICROS + k).is_err());
            prop_assert_eq!(
                Timestamp::from_unix_micros(far).is_ok(),
                (MIN_MICROS..=MAX_MICROS).contains(&far)
            );
        }
    }
}
