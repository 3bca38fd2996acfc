//! A fast keyed hasher for tables keyed by addresses, hashes and ids.
//!
//! std's SipHash spends most of a lookup hashing a 20-byte address. [`FastState`] folds the key
//! eight bytes at a time with a 64x64->128-bit multiply (the construction of foldhash and
//! wyhash), keyed per table from std's random source: fast, and an attacker who grinds
//! addresses offline cannot aim them at one bucket without the key (a chain monitor's keys are
//! attacker-chosen, so an unkeyed hash would be a denial-of-service lever).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = HashMap<K, V, FastState>;
/// A `HashSet` with [`FastState`].
pub type FastSet<K> = HashSet<K, FastState>;

/// Two random 64-bit keys per table.
#[derive(Clone, Copy, Debug)]
pub struct FastState {
    k0: u64,
    k1: u64,
}

impl Default for FastState {
    fn default() -> Self {
        let r = RandomState::new();
        let (mut a, mut b) = (r.build_hasher(), r.build_hasher());
        a.write_u8(0);
        b.write_u8(1);
        // Odd multipliers keep every bit of the folded product live.
        FastState { k0: a.finish() | 1, k1: b.finish() | 1 }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.k0, k: self.k1 }
    }
}

/// See [`FastState`].
#[derive(Clone, Copy, Debug)]
pub struct FastHasher {
    h: u64,
    k: u64,
}

const PI: u64 = 0x243f_6a88_85a3_08d3;

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl FastHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        self.h = fold(self.h ^ v, self.k ^ PI).rotate_left(23);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0_u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0_u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length tells "ab" from "ab\0".
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.mix(u64::from(v));
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold(self.h, self.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Address;
    use std::hash::BuildHasher;

    #[test]
    fn equal_keys_hash_equal_and_tables_are_keyed() {
        let s = FastState::default();
        let a = Address([7; 20]);
        assert_eq!(s.hash_one(a), s.hash_one(Address([7; 20])));
        assert_ne!(s.hash_one(a), s.hash_one(Address([8; 20])));
        // Another table, another key: the same address lands elsewhere.
        assert_ne!(s.hash_one(a), FastState::default().hash_one(a));
        // Lengths and trailing zeros are told apart.
        assert_ne!(s.hash_one([1_u8].as_slice()), s.hash_one([1_u8, 0].as_slice()));
    }

    #[test]
    fn addresses_differing_in_one_byte_spread_over_buckets() {
        // Addresses ground to share all but one byte must not share a bucket of a 1024-bucket
        // table more than chance allows.
        let s = FastState::default();
        for pos in [0, 7, 8, 15, 19] {
            let mut buckets = std::collections::HashSet::new();
            for v in 0..=255_u8 {
                let mut a = [0x42_u8; 20];
                a[pos] = v;
                buckets.insert(s.hash_one(Address(a)) & 1023);
            }
            assert!(buckets.len() > 200, "byte {pos}: 256 addresses in {} buckets", buckets.len());
        }
    }
}
