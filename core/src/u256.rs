//! Exact unsigned 256-bit integers for on-chain values (wei amounts, token balances), parsed
//! from JSON-RPC quantities and printed as decimal strings.

use std::fmt;

/// An unsigned 256-bit integer, little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct U256([u64; 4]);

// Limbs are little-endian, so the derived (lexicographic) order would compare the least
// significant limb first: compare from the most significant one.
impl Ord for U256 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}
impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Not a `0x` hex quantity of at most 256 bits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a 256-bit hex quantity: `{0}`")]
pub struct U256Error(pub String);

impl U256 {
    pub const ZERO: U256 = U256([0; 4]);
    pub const MAX: U256 = U256([u64::MAX; 4]);

    /// A 32-byte big-endian ABI word.
    pub fn from_be_bytes(b: &[u8; 32]) -> Self {
        let mut limbs = [0_u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let start = 32 - 8 * (i + 1);
            let mut w = [0_u8; 8];
            w.copy_from_slice(&b[start..start + 8]);
            *limb = u64::from_be_bytes(w);
        }
        U256(limbs)
    }

    /// Parses a decimal string of digits (no sign, no point).
    ///
    /// # Errors
    /// A non-digit, an empty string, or a value beyond 256 bits.
    pub fn from_dec_str(s: &str) -> Result<Self, U256Error> {
        let err = || U256Error(s.chars().take(80).collect());
        if s.is_empty() {
            return Err(err());
        }
        let mut v = U256::ZERO;
        for b in s.bytes() {
            let d = (b as char).to_digit(10).ok_or_else(err)?;
            v = v.checked_mul_small(10).and_then(|m| m.checked_add(&U256::from_u64(u64::from(d)))).ok_or_else(err)?;
        }
        Ok(v)
    }

    fn checked_mul_small(&self, m: u64) -> Option<U256> {
        let mut out = [0_u64; 4];
        let mut carry: u128 = 0;
        for (i, o) in out.iter_mut().enumerate() {
            let p = u128::from(self.0[i]) * u128::from(m) + carry;
            *o = p as u64;
            carry = p >> 64;
        }
        (carry == 0).then_some(U256(out))
    }

    /// The nearest `f64` (for statistics and model features, never for accounting).
    pub fn to_f64(&self) -> f64 {
        self.0.iter().rev().fold(0.0, |acc, &l| acc * 18_446_744_073_709_551_616.0 + l as f64)
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(&self, rhs: &U256) -> Option<U256> {
        let mut out = [0_u64; 4];
        let mut carry = false;
        for (i, o) in out.iter_mut().enumerate() {
            let (s1, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *o = s2;
            carry = c1 || c2;
        }
        (!carry).then_some(U256(out))
    }

    pub const fn from_u64(v: u64) -> Self {
        U256([v, 0, 0, 0])
    }

    /// Parses a JSON-RPC quantity (`0x` + hex digits; `0x` alone is zero).
    ///
    /// # Errors
    /// No `0x` prefix, a non-hex digit, or more than 64 significant digits.
    pub fn from_hex(s: &str) -> Result<Self, U256Error> {
        let err = || U256Error(s.chars().take(80).collect());
        let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).ok_or_else(err)?;
        let h = h.trim_start_matches('0');
        if h.len() > 64 {
            return Err(err());
        }
        let mut limbs = [0_u64; 4];
        // Sixteen digits per limb, from the least significant end.
        for (limb, digits) in limbs.iter_mut().zip(h.as_bytes().rchunks(16)) {
            let mut v = 0_u64;
            for &b in digits {
                v = (v << 4) | u64::from(crate::chain::hex_digit(b).ok_or_else(err)?);
            }
            *limb = v;
        }
        Ok(U256(limbs))
    }

    /// The value when it fits in a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        (self.0[1] == 0 && self.0[2] == 0 && self.0[3] == 0).then_some(self.0[0])
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Divides in place by a small divisor, returning the remainder.
    fn div_rem_small(&mut self, d: u64) -> u64 {
        let mut rem: u128 = 0;
        for limb in self.0.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*limb);
            *limb = (cur / u128::from(d)) as u64;
            rem = cur % u128::from(d);
        }
        rem as u64
    }
}

impl fmt::Display for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut v = *self;
        // 10^19 is the largest power of ten in a u64: 19 digits per step.
        let mut chunks = Vec::with_capacity(5);
        while !v.is_zero() {
            chunks.push(v.div_rem_small(10_000_000_000_000_000_000));
        }
        let mut s = String::with_capacity(78);
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&c.to_string());
            } else {
                s.push_str(&format!("{c:019}"));
            }
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_to_decimal_exactly() {
        assert_eq!(U256::from_hex("0x0").unwrap().to_string(), "0");
        assert_eq!(U256::from_hex("0x").unwrap().to_string(), "0");
        assert_eq!(U256::from_hex("0x5f5e100").unwrap().to_string(), "100000000");
        assert_eq!(U256::from_hex("0x5f68e8131ecf80000").unwrap().to_string(), "110000000000000000000");
        let max = format!("0x{}", "f".repeat(64));
        assert_eq!(
            U256::from_hex(&max).unwrap().to_string(),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
        assert!(U256::from_hex(&format!("0x1{}", "0".repeat(64))).is_err());
        assert!(U256::from_hex("12").is_err() && U256::from_hex("0xzz").is_err());
        assert_eq!(U256::from_hex("0xff").unwrap().as_u64(), Some(255));
    }

    #[test]
    fn order_words_and_sums() {
        let big = U256::from_hex("0x10000000000000000").unwrap(); // 2^64
        let small = U256::from_u64(u64::MAX);
        assert!(big > small, "the high limb decides");
        let mut w = [0_u8; 32];
        w[23] = 1; // 2^64 big-endian
        assert_eq!(U256::from_be_bytes(&w), big);
        assert_eq!(small.checked_add(&U256::from_u64(1)), Some(big));
        assert_eq!(U256::MAX.checked_add(&U256::from_u64(1)), None);
        assert_eq!(U256::from_dec_str("18446744073709551616"), Ok(big));
        assert!(U256::from_dec_str("1e3").is_err() && U256::from_dec_str("").is_err());
        assert!(U256::from_dec_str(&"9".repeat(80)).is_err());
        assert!((big.to_f64() - 18_446_744_073_709_551_616.0).abs() < 1.0);
    }
}
