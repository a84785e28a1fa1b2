//! Python `repr(float)`, which is how Panko renders float trait values.
//!
//! Python 3 prints the shortest digit string that reads back to the same double, which is also
//! what Rust's `{:e}` produces; only the layout differs. Python's rule (`float_repr_style` "short",
//! mode `r`): with the value written as `0.d1d2…dn × 10^decpt`, use exponent notation when
//! `decpt <= -4` or `decpt > 16`, else positional notation, adding `.0` to integral values.

use std::fmt::Write as _;

/// Positional notation is used for decimal-point positions in `-3..=16`.
const MIN_POSITIONAL_DECPT: i32 = -3;
const MAX_POSITIONAL_DECPT: i32 = 16;

/// Renders `f` exactly as Python 3's `repr(f)` does (`0.1`, `100.0`, `1e-05`, `1e+16`, `inf`).
pub fn python_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    let scientific = shortest_scientific(f.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (lead, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));

    let mut out = String::with_capacity(scientific.len() + 8);
    if f.is_sign_negative() {
        out.push('-');
    }
    let decpt = exponent + 1;
    if (MIN_POSITIONAL_DECPT..=MAX_POSITIONAL_DECPT).contains(&decpt) {
        push_positional(&mut out, lead, rest, decpt);
    } else {
        push_exponential(&mut out, lead, rest, exponent);
    }
    out
}

/// The shortest round-trip digits of a finite, non-negative `f` as `d[.ddd]e[-]x`.
///
/// Rust's `{:e}` gives the shortest digits, and among equally short candidates the closest one;
/// when two candidates are exactly equally close (`1113178120592002.25` → `…2.2` or `…2.3`), it
/// takes the upper one, while Python's dtoa takes the even one. Rust's fixed-precision formatting
/// rounds the exact value half-to-even, so formatting to the same number of digits gives
/// Python's choice whenever that choice still reads back as `f`.
fn shortest_scientific(f: f64) -> String {
    let shortest = format!("{f:e}");
    let mantissa = shortest
        .split_once('e')
        .map_or(shortest.as_str(), |(m, _)| m);
    let digit_count = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let nearest_even = format!("{f:.*e}", digit_count.saturating_sub(1));
    if nearest_even != shortest && nearest_even.parse::<f64>() == Ok(f) {
        nearest_even
    } else {
        shortest
    }
}

/// `123.45`, `0.001`, `1200.0`: digits `lead` + `rest` with the point after `decpt` digits.
fn push_positional(out: &mut String, lead: &str, rest: &str, decpt: i32) {
    let digit_count = 1 + rest.len();
    if decpt <= 0 {
        out.push_str("0.");
        for _ in decpt..0 {
            out.push('0');
        }
        out.push_str(lead);
        out.push_str(rest);
        return;
    }
    // `decpt` is positive here, and at most 16.
    let int_digits = decpt.unsigned_abs() as usize;
    if int_digits >= digit_count {
        out.push_str(lead);
        out.push_str(rest);
        for _ in digit_count..int_digits {
            out.push('0');
        }
        out.push_str(".0");
    } else {
        let (int_rest, frac) = rest.split_at(int_digits - 1);
        out.push_str(lead);
        out.push_str(int_rest);
        out.push('.');
        out.push_str(frac);
    }
}

/// `1.5e-07`, `1e+22`: a signed exponent of at least two digits, and no `.0` on one digit.
fn push_exponential(out: &mut String, lead: &str, rest: &str, exponent: i32) {
    out.push_str(lead);
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    // Writing to a String cannot fail.
    let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::python_repr;
    use proptest::prelude::*;

    /// Each right-hand side was printed by CPython 3 `repr()`.
    const PYTHON: &[(f64, &str)] = &[
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (-1.5, "-1.5"),
        (100.0, "100.0"),
        (0.1, "0.1"),
        (0.5, "0.5"),
        (100.123456, "100.123456"),
        (123.456, "123.456"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1.0 / 3.0, "0.3333333333333333"),
        (2.0 / 3.0, "0.6666666666666666"),
        (std::f64::consts::PI, "3.141592653589793"),
        (std::f64::consts::E, "2.718281828459045"),
        (0.001, "0.001"),
        (0.0001, "0.0001"),
        (0.00012345, "0.00012345"),
        (0.00001, "1e-05"),
        (-0.00001, "-1e-05"),
        (1.2345e-5, "1.2345e-05"),
        (1e-7, "1e-07"),
        (1.5e-7, "1.5e-07"),
        (123456789.0, "123456789.0"),
        (1e15, "1000000000000000.0"),
        (1234567890123456.0, "1234567890123456.0"),
        (9007199254740992.0, "9007199254740992.0"),
        (9999999999999998.0, "9999999999999998.0"),
        (1e16, "1e+16"),
        (-1e16, "-1e+16"),
        (1e17, "1e+17"),
        (12345678901234567890.0, "1.2345678901234567e+19"),
        (1e22, "1e+22"),
        (1e100, "1e+100"),
        (1.5e300, "1.5e+300"),
        (5e-324, "5e-324"),
        (-5e-324, "-5e-324"),
        (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        (f64::EPSILON, "2.220446049250313e-16"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::MIN, "-1.7976931348623157e+308"),
        (1e-100, "1e-100"),
        (12.5e-10, "1.25e-09"),
        (99.99, "99.99"),
        // Exact ties between two shortest candidates go to the even digit: these are
        // -1113178120592002.25, 111659285584252.125 and 2053637337633904.25, written as exact
        // quotients.
        (-4452712482368009.0 / 4.0, "-1113178120592002.2"),
        (893274284674017.0 / 8.0, "111659285584252.12"),
        (8214549350535617.0 / 4.0, "2053637337633904.2"),
        (1e5, "100000.0"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
    ];

    #[test]
    fn matches_python_repr() {
        for (value, expected) in PYTHON {
            assert_eq!(python_repr(*value), *expected, "{value:e}");
        }
    }

    proptest! {
        #[test]
        fn reads_back_to_the_same_value(bits in any::<u64>()) {
            let value = f64::from_bits(bits);
            prop_assume!(value.is_finite());
            let text = python_repr(value);
            let back: f64 = text.parse().expect("python_repr output parses");
            prop_assert_eq!(back.to_bits(), value.to_bits(), "{}", text);
        }

        #[test]
        fn reads_back_ordinary_values(value in any::<f64>()) {
            prop_assume!(value.is_finite());
            let text = python_repr(value);
            prop_assert_eq!(text.parse::<f64>().ok(), Some(value), "{}", text);
        }
    }
}
