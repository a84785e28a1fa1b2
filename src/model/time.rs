//! Parsing and rendering of instants.
//!
//! Instants are UTC microseconds since the Unix epoch ([`Micros`]). Parsing accepts the ISO 8601 /
//! RFC 3339 extended forms clients send; rendering is Panko's (`datetime.isoformat()` of a naive
//! UTC value). Both are hand-written over bytes: they run for every event and every datetime trait
//! of an ingest batch, and a strict grammar is easier to state (and test) than chrono's lenient
//! format strings.

use std::fmt::Write as _;

use super::Micros;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// 0001-01-01T00:00:00 UTC, the earliest instant Python's `datetime` (and so Panko) can render.
pub const MIN_INSTANT: Micros = -62_135_596_800_000_000;

/// 9999-12-31T23:59:59.999999 UTC, the latest instant Python's `datetime` can render.
pub const MAX_INSTANT: Micros = 253_402_300_799_999_999;

/// Parses an ISO 8601 / RFC 3339 instant into UTC microseconds.
///
/// Accepted: `YYYY-MM-DD` (midnight UTC), or the date, then `T`, `t` or a space, then `HH:MM`,
/// `HH:MM:SS` or `HH:MM:SS.f…` (any number of fraction digits; past six they are truncated, never
/// rounded), then optionally `Z`, `z`, `±HH:MM`, `±HHMM` or `±HH`. No offset means UTC. The result
/// must lie within [`MIN_INSTANT`]..=[`MAX_INSTANT`] after conversion to UTC; anything else is
/// `None`.
pub fn parse_instant(s: &str) -> Option<Micros> {
    let mut cursor = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
    let days = cursor.date()?;
    let mut micros = days * MICROS_PER_DAY;
    if !cursor.at_end() {
        if !matches!(cursor.next()?, b'T' | b't' | b' ') {
            return None;
        }
        micros += cursor.time_of_day()?;
        micros -= cursor.offset()?;
    }
    if !cursor.at_end() {
        return None;
    }
    (MIN_INSTANT..=MAX_INSTANT)
        .contains(&micros)
        .then_some(micros)
}

/// Renders an instant as Panko does: `2014-01-01T05:00:00`, with `.ffffff` only when the
/// microseconds are non-zero, and no offset.
///
/// Instants outside [`MIN_INSTANT`]..=[`MAX_INSTANT`] cannot come from [`parse_instant`]; they are
/// rendered with a signed, expanded year (`+10000-…`, `-0001-…`) rather than panicking.
pub fn format_instant(m: Micros) -> String {
    let days = m.div_euclid(MICROS_PER_DAY);
    let of_day = m.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let hour = of_day / MICROS_PER_HOUR;
    let minute = of_day % MICROS_PER_HOUR / MICROS_PER_MINUTE;
    let second = of_day % MICROS_PER_MINUTE / MICROS_PER_SECOND;
    let micros = of_day % MICROS_PER_SECOND;

    if (0..=9999).contains(&year) {
        // The common case, written digit by digit: this runs for every event and datetime trait
        // of every page, where `write!` was a measurable share of a list request's CPU.
        let mut out = [0u8; 26];
        put_digits(&mut out[0..4], year as u64);
        out[4] = b'-';
        put_digits(&mut out[5..7], month as u64);
        out[7] = b'-';
        put_digits(&mut out[8..10], day as u64);
        out[10] = b'T';
        put_digits(&mut out[11..13], hour as u64);
        out[13] = b':';
        put_digits(&mut out[14..16], minute as u64);
        out[16] = b':';
        put_digits(&mut out[17..19], second as u64);
        let len = if micros == 0 {
            19
        } else {
            out[19] = b'.';
            put_digits(&mut out[20..26], micros as u64);
            26
        };
        // Only ASCII digits and separators were written.
        return String::from_utf8_lossy(&out[..len]).into_owned();
    }
    let mut out = String::with_capacity(32);
    // Writing to a String cannot fail.
    let _ = if year < 0 {
        write!(out, "-{:04}", year.unsigned_abs())
    } else {
        write!(out, "+{year}")
    };
    let _ = write!(
        out,
        "-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
    );
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out
}

/// Writes `n` as decimal digits filling `out`, zero-padded on the left.
fn put_digits(out: &mut [u8], mut n: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The current time, truncated to microseconds.
pub fn now_micros() -> Micros {
    chrono::Utc::now().timestamp_micros()
}

/// A forward-only reader over the bytes of an instant.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<i64> {
        let mut value = 0;
        for _ in 0..count {
            let byte = self.peek().filter(u8::is_ascii_digit)?;
            value = value * 10 + i64::from(byte - b'0');
            self.pos += 1;
        }
        Some(value)
    }

    /// `YYYY-MM-DD` as days since 1970-01-01. Year 0 is let through: an offset may still carry
    /// the instant into year 1, and the caller checks the final range.
    fn date(&mut self) -> Option<i64> {
        let year = self.digits(4)?;
        self.expect(b'-')?;
        let month = self.digits(2)?;
        self.expect(b'-')?;
        let day = self.digits(2)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        Some(days_from_civil(year, month, day))
    }

    /// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f…` as microseconds since midnight.
    fn time_of_day(&mut self) -> Option<i64> {
        let hour = self.digits(2)?;
        self.expect(b':')?;
        let minute = self.digits(2)?;
        let (second, fraction) = if self.eat(b':') {
            let second = self.digits(2)?;
            let fraction = if self.eat(b'.') { self.fraction()? } else { 0 };
            (second, fraction)
        } else {
            (0, 0)
        };
        // No 24:00 and no leap second: neither can be stored as a Python datetime.
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        Some(
            hour * MICROS_PER_HOUR
                + minute * MICROS_PER_MINUTE
                + second * MICROS_PER_SECOND
                + fraction,
        )
    }

    /// One or more fraction digits as microseconds; digits past the sixth are dropped (truncation
    /// keeps an instant from ever moving into the next second, day or year).
    fn fraction(&mut self) -> Option<i64> {
        let mut micros = 0;
        let mut count = 0;
        while let Some(byte) = self.peek().filter(u8::is_ascii_digit) {
            if count < 6 {
                micros = micros * 10 + i64::from(byte - b'0');
            }
            count += 1;
            self.pos += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..6 {
            micros *= 10;
        }
        Some(micros)
    }

    /// The optional UTC offset (`Z`, `z`, `±HH:MM`, `±HHMM`, `±HH`) in microseconds east of UTC.
    fn offset(&mut self) -> Option<i64> {
        let sign = match self.peek() {
            None => return Some(0),
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Some(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            Some(_) => return None,
        };
        self.pos += 1;
        let hours = self.digits(2)?;
        let minutes = if self.at_end() {
            0
        } else {
            self.eat(b':');
            self.digits(2)?
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * (hours * MICROS_PER_HOUR + minutes * MICROS_PER_MINUTE))
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are small by construction (1..=31 and 1..=12).
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use proptest::prelude::*;

    /// The expected value through chrono, an independent implementation.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> Micros {
        Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|date| date.and_hms_micro_opt(h, mi, s, us))
                .expect("valid test date"),
        )
        .timestamp_micros()
    }

    #[test]
    fn bounds_are_python_datetime_min_and_max() {
        assert_eq!(MIN_INSTANT, utc(1, 1, 1, 0, 0, 0, 0));
        assert_eq!(MAX_INSTANT, utc(9999, 12, 31, 23, 59, 59, 999_999));
        assert_eq!(format_instant(MIN_INSTANT), "0001-01-01T00:00:00");
        assert_eq!(format_instant(MAX_INSTANT), "9999-12-31T23:59:59.999999");
    }

    #[test]
    fn accepts_the_documented_forms() {
        let midnight = utc(2014, 1, 1, 0, 0, 0, 0);
        let five = utc(2014, 1, 1, 5, 0, 0, 0);
        let cases: &[(&str, Micros)] = &[
            ("2014-01-01", midnight),
            ("2014-01-01T05:00", five),
            ("2014-01-01t05:00", five),
            ("2014-01-01 05:00", five),
            ("2014-01-01T05:00:00", five),
            ("2014-01-01T05:00:00Z", five),
            ("2014-01-01T05:00:00z", five),
            ("2014-01-01T05:00Z", five),
            ("2014-01-01T05:00:00+00:00", five),
            ("2014-01-01T05:00:00-00:00", five),
            ("2014-01-01T05:00:00.1", five + 100_000),
            ("2014-01-01T05:00:00.123456", five + 123_456),
            ("2014-01-01T05:00:00.000005", five + 5),
            ("2014-01-01T05:00:00.1234567", five + 123_456),
            ("2014-01-01T05:00:00.9999999999999", five + 999_999),
            ("2014-01-01T07:00:00+02:00", five),
            ("2014-01-01T07:00:00+0200", five),
            ("2014-01-01T07:00:00+02", five),
            ("2014-01-01T03:30:00-01:30", five),
            ("2014-01-01T03:30:00-0130", five),
            ("2014-01-01T05:00+00", five),
            ("2014-01-01T07:00:00.5+02:00", five + 500_000),
            ("1970-01-01", 0),
            ("1969-12-31T23:59:59.999999", -1),
            ("2000-02-29", utc(2000, 2, 29, 0, 0, 0, 0)),
            ("2024-02-29T12:00:00", utc(2024, 2, 29, 12, 0, 0, 0)),
            ("0001-01-01T00:00:00", MIN_INSTANT),
            ("9999-12-31T23:59:59.999999", MAX_INSTANT),
            ("9999-12-31T23:59:59.9999999", MAX_INSTANT),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_instant(text), Some(*expected), "{text}");
        }
    }

    #[test]
    fn offsets_cross_day_and_year_boundaries() {
        assert_eq!(
            parse_instant("2014-01-01T01:00:00+02:00"),
            Some(utc(2013, 12, 31, 23, 0, 0, 0))
        );
        assert_eq!(
            parse_instant("2013-12-31T23:00:00-02:00"),
            Some(utc(2014, 1, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            parse_instant("2016-02-28T22:00:00-03:00"),
            Some(utc(2016, 2, 29, 1, 0, 0, 0))
        );
        assert_eq!(
            parse_instant("2016-03-01T00:30:00+01:00"),
            Some(utc(2016, 2, 29, 23, 30, 0, 0))
        );
        assert_eq!(
            parse_instant("2014-01-01T00:00:00.25+23:59"),
            Some(utc(2013, 12, 31, 0, 1, 0, 250_000))
        );
        // Year 0 and year 10000 are fine locally when the offset brings them into range ...
        assert_eq!(
            parse_instant("0000-12-31T23:00:00-01:00"),
            Some(MIN_INSTANT)
        );
        assert_eq!(
            parse_instant("10000-01-01T00:00:00+01:00"),
            None,
            "five-digit years are not ISO extended form"
        );
        // ... and rejected when it does not.
        assert_eq!(parse_instant("0000-12-31T23:00:00"), None);
        assert_eq!(parse_instant("0001-01-01T00:00:00+00:01"), None);
        assert_eq!(parse_instant("0001-01-01T00:59:59+01:00"), None);
        assert_eq!(parse_instant("9999-12-31T23:59:59-00:01"), None);
        assert_eq!(
            parse_instant("9999-12-31T23:59:59+00:01"),
            Some(utc(9999, 12, 31, 23, 58, 59, 0))
        );
    }

    #[test]
    fn truncates_fractions_never_rounds() {
        assert_eq!(
            parse_instant("2014-12-31T23:59:59.9999999"),
            Some(utc(2014, 12, 31, 23, 59, 59, 999_999))
        );
        assert_eq!(
            parse_instant("2014-01-01T00:00:00.0000009"),
            Some(utc(2014, 1, 1, 0, 0, 0, 0))
        );
        assert_eq!(
            parse_instant("1969-12-31T23:59:59.0000019"),
            Some(-MICROS_PER_SECOND + 1)
        );
    }

    #[test]
    fn rejects_everything_else() {
        let rejected = [
            "",
            " 2014-01-01",
            "2014-01-01 ",
            "2014-01-01T05:00:00 ",
            "\t2014-01-01T05:00:00",
            "2014-1-01",
            "2014-01-1",
            "14-01-01",
            "20140101",
            "20140101T050000",
            "2014-01-01T0500",
            "2014-01-01T05",
            "2014-01-01T",
            "2014-01-01T5:00",
            "2014-01-01T05:0",
            "2014-01-01T05:00:0",
            "2014-01-01T05:00:00.",
            "2014-01-01T05:00:00,5",
            "2014-01-01T05:00.5",
            "2014-01-01X05:00:00",
            "2014-01-01T05:00:00ZZ",
            "2014-01-01T05:00:00Z+01:00",
            "2014-01-01T05:00:00+1",
            "2014-01-01T05:00:00+01:",
            "2014-01-01T05:00:00+01:0",
            "2014-01-01T05:00:00+010",
            "2014-01-01T05:00:00+01:00:00",
            "2014-01-01T05:00:00+24:00",
            "2014-01-01T05:00:00+01:60",
            "2014-01-01T05:00:00 +01:00",
            "2014-01-01T05:00:00UTC",
            "2014-01-01Z",
            "2014-01-01+01:00",
            "2014-01-01T24:00:00",
            "2014-01-01T23:60:00",
            "2014-12-31T23:59:60",
            "2014-00-01",
            "2014-13-01",
            "2014-01-00",
            "2014-01-32",
            "2014-02-29",
            "1900-02-29",
            "2014-04-31",
            "2014-W01-1",
            "2014-001",
            "2014-01",
            "2014",
            "-2014-01-01",
            "+2014-01-01",
            "0000-01-01",
            "2014/01/01",
            "2014-01-01T05:00:00.-1",
            "2014-01-01T05:00:00.1a",
            "２０１４-01-01",
            "2014-01-01T05:00:00\u{0}",
        ];
        for text in rejected {
            assert_eq!(parse_instant(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_like_python_isoformat() {
        assert_eq!(format_instant(0), "1970-01-01T00:00:00");
        assert_eq!(
            format_instant(utc(2014, 1, 1, 5, 0, 0, 0)),
            "2014-01-01T05:00:00"
        );
        assert_eq!(
            format_instant(utc(2013, 12, 31, 6, 0, 0, 123_456)),
            "2013-12-31T06:00:00.123456"
        );
        assert_eq!(
            format_instant(utc(2020, 1, 1, 0, 0, 0, 5)),
            "2020-01-01T00:00:00.000005"
        );
        assert_eq!(format_instant(-1), "1969-12-31T23:59:59.999999");
        assert_eq!(
            format_instant(utc(999, 3, 4, 1, 2, 3, 0)),
            "0999-03-04T01:02:03"
        );
    }

    #[test]
    fn formats_out_of_range_values_without_panicking() {
        assert_eq!(format_instant(MAX_INSTANT + 1), "+10000-01-01T00:00:00");
        assert_eq!(
            format_instant(MIN_INSTANT - 1),
            "0000-12-31T23:59:59.999999"
        );
        assert!(format_instant(i64::MIN).starts_with('-'));
        assert!(format_instant(i64::MAX).starts_with('+'));
    }

    #[test]
    fn now_is_microsecond_precise_and_current() {
        let before = Utc::now().timestamp_micros();
        let now = now_micros();
        let after = Utc::now().timestamp_micros();
        assert!(before <= now && now <= after);
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(m in MIN_INSTANT..=MAX_INSTANT) {
            let text = format_instant(m);
            prop_assert_eq!(parse_instant(&text), Some(m), "{}", text);
        }

        #[test]
        fn agrees_with_chrono(m in MIN_INSTANT..=MAX_INSTANT) {
            let expected = chrono::DateTime::from_timestamp_micros(m)
                .expect("in chrono's range")
                .naive_utc()
                .format("%Y-%m-%dT%H:%M:%S%.6f")
                .to_string();
            let text = format_instant(m);
            let full = if text.len() == 19 { format!("{text}.000000") } else { text };
            prop_assert_eq!(full, expected);
        }

        #[test]
        fn offsets_convert_to_utc(
            m in (MIN_INSTANT + MICROS_PER_DAY)..(MAX_INSTANT - MICROS_PER_DAY),
            east in -(23 * 60 + 59i64)..=(23 * 60 + 59),
        ) {
            let local = format_instant(m + east * MICROS_PER_MINUTE);
            let sign = if east < 0 { '-' } else { '+' };
            let text = format!("{local}{sign}{:02}:{:02}", east.abs() / 60, east.abs() % 60);
            prop_assert_eq!(parse_instant(&text), Some(m), "{}", text);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_instant(&s);
        }

        #[test]
        fn never_panics_on_near_misses(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{0,9})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?") {
            if let Some(m) = parse_instant(&s) {
                prop_assert!((MIN_INSTANT..=MAX_INSTANT).contains(&m));
            }
        }
    }
}
