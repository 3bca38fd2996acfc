//! Fixed-point decimals: [`Price`] and [`Qty`].
//!
//! Both are an `i64` count of `10^-9` units, so every venue decimal string with up to nine
//! fractional digits is represented exactly; parsing never goes through `f64`. Arithmetic is
//! checked: an overflow is an error value, never a wrap.

use std::fmt;
use std::str::FromStr;

/// Number of fractional digits kept by [`Price`] and [`Qty`].
pub const FIXED_DECIMALS: u8 = 9;
/// `10^FIXED_DECIMALS`.
pub const FIXED_SCALE: i64 = 1_000_000_000;

/// Why a decimal string could not be read as a fixed-point value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseFixedError {
    #[error("empty decimal string")]
    Empty,
    #[error("invalid character at byte {0}")]
    InvalidChar(usize),
    #[error("more than {FIXED_DECIMALS} significant fractional digits")]
    TooPrecise,
    #[error("value out of range")]
    Overflow,
    #[error("negative where only sizes >= 0 make sense")]
    Negative,
}

/// Parses `[-+]digits[.digits]` into units of `10^-9`, exactly.
///
/// Trailing zeros past the ninth fractional digit are accepted (`"1.0000000000"`), other digits
/// there are [`ParseFixedError::TooPrecise`] rather than silently rounded.
///
/// # Errors
/// Any malformed input or a value outside `i64` units.
#[inline]
pub fn parse_fixed(s: &[u8]) -> Result<i64, ParseFixedError> {
    match parse_fixed_fast(s) {
        Some(units) => Ok(units),
        None => parse_fixed_checked(s),
    }
}

/// `10^(9 - n)` for `n` fractional digits read.
const FRAC_POW: [u64; 10] = [1_000_000_000, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

/// The common case of [`parse_fixed`] without per-byte bookkeeping: `None` for anything
/// unusual, valid or not; [`parse_fixed_checked`] then decides and names the error.
#[inline]
fn parse_fixed_fast(s: &[u8]) -> Option<i64> {
    let (units, read) = parse_fixed_prefix(s)?;
    (read == s.len()).then_some(units)
}

/// Reads the decimal at the start of `s` (`[-+]`, at most 18 integer digits, an optional `.`
/// and fraction read eight digits at a time) and returns its units and the bytes it spans, so
/// a scanner can parse a number in place and check what follows. `None` when `s` does not
/// start with such a number or it has a nonzero digit past the ninth fractional place.
#[inline]
pub fn parse_fixed_prefix(s: &[u8]) -> Option<(i64, usize)> {
    let (neg, sign) = match *s.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let b = &s[sign..];
    let mut i = 0;
    let mut int: u64 = 0;
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i == 18 {
            return None;
        }
        int = int * 10 + u64::from(d);
        i += 1;
    }
    let int_digits = i;
    let mut frac: u64 = 0;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        let rest = &b[i + 1..];
        let mut j = 0;
        if let Some(v) = rest.first_chunk::<8>().and_then(|c| eight_digits(*c)) {
            frac = v;
            j = 8;
        }
        while j < usize::from(FIXED_DECIMALS) {
            match rest.get(j).map(|c| c.wrapping_sub(b'0')) {
                Some(d) if d <= 9 => frac = frac * 10 + u64::from(d),
                _ => break,
            }
            j += 1;
        }
        frac_digits = j;
        // Past the ninth place only zeros are exact.
        while rest.get(j) == Some(&b'0') {
            j += 1;
        }
        if rest.get(j).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        i += 1 + j;
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    let frac = frac * FRAC_POW[frac_digits];
    let units = i64::try_from(int).ok()?.checked_mul(FIXED_SCALE)?.checked_add(i64::try_from(frac).ok()?)?;
    Some((if neg { -units } else { units }, sign + i))
}

/// Eight ASCII digits (first digit in the lowest byte) as a number, or `None` if any byte is
/// not a digit (the SWAR reduction of simdjson's `parse_eight_digits_unrolled`).
#[inline]
fn eight_digits(chunk: [u8; 8]) -> Option<u64> {
    let v = u64::from_le_bytes(chunk);
    let high = v & 0xF0F0_F0F0_F0F0_F0F0;
    let carry = (v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4;
    if high | carry != 0x3333_3333_3333_3333 {
        return None;
    }
    let v = (v & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561) >> 8;
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    Some((v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32)
}

/// [`parse_fixed`] byte by byte, with every error named.
fn parse_fixed_checked(s: &[u8]) -> Result<i64, ParseFixedError> {
    let (neg, digits) = match s.first() {
        None => return Err(ParseFixedError::Empty),
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        Some(_) => (false, s),
    };
    if digits.is_empty() {
        return Err(ParseFixedError::Empty);
    }
    let offset = s.len() - digits.len();
    let mut int: i64 = 0;
    let mut frac: i64 = 0;
    let mut frac_digits: u8 = 0;
    let mut seen_dot = false;
    let mut seen_digit = false;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                let d = i64::from(c - b'0');
                if seen_dot {
                    if frac_digits < FIXED_DECIMALS {
                        frac = frac * 10 + d;
                        frac_digits += 1;
                    } else if d != 0 {
                        return Err(ParseFixedError::TooPrecise);
                    }
                } else {
                    int = int.checked_mul(10).and_then(|v| v.checked_add(d)).ok_or(ParseFixedError::Overflow)?;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return Err(ParseFixedError::InvalidChar(offset + i)),
        }
    }
    if !seen_digit {
        return Err(ParseFixedError::Empty);
    }
    frac *= 10_i64.pow(u32::from(FIXED_DECIMALS - frac_digits));
    let units = int.checked_mul(FIXED_SCALE).and_then(|v| v.checked_add(frac)).ok_or(ParseFixedError::Overflow)?;
    Ok(if neg { -units } else { units })
}

/// Writes `units` with exactly `decimals` fractional digits (at most nine; extra digits of
/// `units` are truncated toward zero), the way venues print their fixed-precision strings.
fn write_fixed(f: &mut fmt::Formatter<'_>, units: i64, decimals: u8) -> fmt::Result {
    let decimals = decimals.min(FIXED_DECIMALS);
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let int = abs / FIXED_SCALE as u64;
    let frac = abs % FIXED_SCALE as u64;
    if decimals == 0 {
        return write!(f, "{sign}{int}");
    }
    let frac = frac / 10_u64.pow(u32::from(FIXED_DECIMALS - decimals));
    write!(f, "{sign}{int}.{frac:0width$}", width = usize::from(decimals))
}

/// The fewest fractional digits that show `units` exactly.
fn min_decimals(units: i64) -> u8 {
    let mut frac = units.unsigned_abs() % FIXED_SCALE as u64;
    if frac == 0 {
        return 0;
    }
    let mut d = FIXED_DECIMALS;
    while frac.is_multiple_of(10) {
        frac /= 10;
        d -= 1;
    }
    d
}

macro_rules! fixed_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(i64);

        impl $name {
            pub const ZERO: Self = Self(0);
            pub const MAX: Self = Self(i64::MAX);

            /// From raw `10^-9` units.
            #[inline]
            pub const fn from_units(units: i64) -> Self {
                Self(units)
            }

            /// Raw `10^-9` units.
            #[inline]
            pub const fn units(self) -> i64 {
                self.0
            }

            /// A whole number of units of one.
            ///
            /// # Errors
            /// When `v * 10^9` does not fit.
            pub fn from_int(v: i64) -> Result<Self, ParseFixedError> {
                v.checked_mul(FIXED_SCALE).map(Self).ok_or(ParseFixedError::Overflow)
            }

            /// Parses a venue decimal string exactly.
            ///
            /// # Errors
            /// See [`parse_fixed`].
            #[inline]
            pub fn parse(s: &str) -> Result<Self, ParseFixedError> {
                parse_fixed(s.as_bytes()).map(Self)
            }

            #[inline]
            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }

            #[inline]
            pub fn checked_add(self, rhs: Self) -> Option<Self> {
                self.0.checked_add(rhs.0).map(Self)
            }

            #[inline]
            pub fn checked_sub(self, rhs: Self) -> Option<Self> {
                self.0.checked_sub(rhs.0).map(Self)
            }

            #[inline]
            pub fn checked_neg(self) -> Option<Self> {
                self.0.checked_neg().map(Self)
            }

            /// Lossy conversion for features and models; never used for accounting.
            #[inline]
            pub fn as_f64(self) -> f64 {
                self.0 as f64 / FIXED_SCALE as f64
            }

            /// Display with a fixed number of fractional digits (the venue's precision), so a
            /// parsed venue string prints back byte for byte.
            pub fn display_with(self, decimals: u8) -> impl fmt::Display {
                struct D(i64, u8);
                impl fmt::Display for D {
                    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write_fixed(f, self.0, self.1)
                    }
                }
                D(self.0, decimals)
            }
        }

        /// Shortest exact form: `61837.63`, `0.001`, `5`.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_fixed(f, self.0, min_decimals(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        /// Config files write decimals as strings (`"0.05"`), read exactly.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl FromStr for $name {
            type Err = ParseFixedError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

fixed_type!(
    /// A price in quote currency, exact to `10^-9`.
    Price
);
fixed_type!(
    /// A quantity in base currency (or contracts), exact to `10^-9`. Signed so positions fit.
    Qty
);

impl Qty {
    /// Parses a size a venue prints (a book level, a trade): like [`Qty::parse`], but a negative
    /// value is an error rather than a level that would poison a book.
    ///
    /// # Errors
    /// See [`parse_fixed`]; [`ParseFixedError::Negative`] for `-x`.
    #[inline]
    pub fn parse_size(s: &str) -> Result<Self, ParseFixedError> {
        match Self::parse(s)? {
            q if q.0 < 0 => Err(ParseFixedError::Negative),
            q => Ok(q),
        }
    }
}

/// Quote-currency amount `price * qty`, exact, in `10^-9` units, as `i128` so no realistic
/// product overflows.
#[inline]
pub fn notional_units(price: Price, qty: Qty) -> i128 {
    i128::from(price.units()) * i128::from(qty.units()) / i128::from(FIXED_SCALE)
}

/// An exact quote-currency amount (PnL, fees, notional) in `10^-9` units.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Money(pub i128);

impl Money {
    pub const ZERO: Self = Self(0);

    /// Lossy conversion for metrics and displays; never used for accounting.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / FIXED_SCALE as f64
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_fixed(s.as_bytes()).map(|u| Money(i128::from(u))).map_err(serde::de::Error::custom)
    }
}

/// Shortest exact decimal form, like [`Price`].
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let int = abs / FIXED_SCALE as u128;
        let mut frac = abs % FIXED_SCALE as u128;
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let mut width = usize::from(FIXED_DECIMALS);
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        write!(f, "{sign}{int}.{frac:0width$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_venue_strings_exactly() {
        let cases = [
            ("61837.63000000", 61_837_630_000_000),
            ("0.00000000", 0),
            ("0.00100000", 1_000_000),
            ("1", FIXED_SCALE),
            ("-2.5", -2_500_000_000),
            (".5", 500_000_000),
            ("3.", 3 * FIXED_SCALE),
            ("0.000000001", 1),
            ("1.0000000000000", FIXED_SCALE),
        ];
        for (s, units) in cases {
            assert_eq!(Price::parse(s).map(Price::units), Ok(units), "{s}");
        }
    }

    #[test]
    fn eight_digits_reads_digits_and_only_digits() {
        assert_eq!(eight_digits(*b"12345678"), Some(12_345_678));
        assert_eq!(eight_digits(*b"00000009"), Some(9));
        assert_eq!(eight_digits(*b"99999999"), Some(99_999_999));
        for pos in 0..8 {
            for byte in (0..=255_u8).filter(|b| !b.is_ascii_digit()) {
                let mut chunk = *b"12345678";
                chunk[pos] = byte;
                assert_eq!(eight_digits(chunk), None, "byte {byte} at {pos}");
            }
        }
    }

    #[test]
    fn rejects_malformed_strings() {
        assert_eq!(Price::parse(""), Err(ParseFixedError::Empty));
        assert_eq!(Price::parse("-"), Err(ParseFixedError::Empty));
        assert_eq!(Price::parse("."), Err(ParseFixedError::Empty));
        assert_eq!(Price::parse("1.2.3"), Err(ParseFixedError::InvalidChar(3)));
        assert_eq!(Price::parse("1e5"), Err(ParseFixedError::InvalidChar(1)));
        assert_eq!(Price::parse("0.0000000001"), Err(ParseFixedError::TooPrecise));
        assert_eq!(Price::parse("9223372037"), Err(ParseFixedError::Overflow));
    }

    #[test]
    fn displays_with_venue_precision() {
        let p = Price::parse("61837.63000000").unwrap();
        assert_eq!(p.display_with(8).to_string(), "61837.63000000");
        assert_eq!(p.to_string(), "61837.63");
        assert_eq!(Qty::parse("-0.5").unwrap().display_with(3).to_string(), "-0.500");
        assert_eq!(Qty::ZERO.to_string(), "0");
    }

    #[test]
    fn money_displays_exactly() {
        assert_eq!(Money(-1_500_000_000).to_string(), "-1.5");
        assert_eq!(Money(12).to_string(), "0.000000012");
        assert_eq!(Money(0).to_string(), "0");
    }

    #[test]
    fn notional_is_exact() {
        let p = Price::parse("61837.63").unwrap();
        let q = Qty::parse("0.02").unwrap();
        assert_eq!(notional_units(p, q), 1_236_752_600_000);
    }

    proptest! {
        #[test]
        fn display_round_trips(units in any::<i64>()) {
            let p = Price::from_units(units);
            prop_assert_eq!(Price::parse(&p.to_string()), Ok(p));
        }

        #[test]
        fn venue_string_round_trips(int in 0_u64..9_000_000_000, frac in 0_u64..100_000_000) {
            let s = format!("{int}.{frac:08}");
            let q = Qty::parse(&s).unwrap();
            prop_assert_eq!(q.display_with(8).to_string(), s);
        }

        #[test]
        fn fast_parse_agrees_with_checked_parse(s in "[-+]?[0-9]{0,20}(\\.[0-9]{0,14})?[0-9.x]?") {
            prop_assert_eq!(parse_fixed(s.as_bytes()), parse_fixed_checked(s.as_bytes()));
        }

        #[test]
        fn prefix_parse_spans_exactly_the_number(s in "[-+]?[0-9]{0,20}(\\.[0-9]{0,14})?", tail in "[\",\\]x]?") {
            let text = format!("{s}{tail}");
            match parse_fixed_checked(s.as_bytes()) {
                Ok(units) if s.len() <= 40 => {
                    // The fast path may decline (19+ integer digits); when it answers, it is exact.
                    if let Some(got) = parse_fixed_prefix(text.as_bytes()) {
                        prop_assert_eq!(got, (units, s.len()));
                    }
                }
                _ => prop_assert!(parse_fixed_prefix(text.as_bytes()).is_none_or(|(_, n)| n < s.len())),
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = Price::parse(&s);
        }

        #[test]
        fn overflow_is_an_error(int in 9_223_372_037_u64..u64::MAX) {
            prop_assert_eq!(Price::parse(&int.to_string()), Err(ParseFixedError::Overflow));
        }

        #[test]
        fn checked_add_matches_i128(a in any::<i64>(), b in any::<i64>()) {
            let sum = i128::from(a) + i128::from(b);
            let got = Qty::from_units(a).checked_add(Qty::from_units(b));
            prop_assert_eq!(got.map(|q| i128::from(q.units())), i64::try_from(sum).ok().map(i128::from));
        }
    }
}
