//! Typed, borrowing JSON readers shared by the venue checkers: a frame is parsed once into
//! structs whose strings point into it (no `serde_json::Value`, no allocation per field), arrays
//! are visited element by element instead of collected, and the decimals a checksum needs are
//! kept inline.
//!
//! Numeric strings are borrowed, so one written with a JSON escape (no venue does that) fails
//! to read as a clear error instead of being copied.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use argus_core::UnixNanos;

/// Parses a whole frame as `T`.
pub(crate) fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("malformed frame: {e}"))
}

/// Calls `f` on each element of the JSON array `raw`, read as `T`, without collecting them.
/// The first error, of the JSON or of `f`, ends the walk and is returned.
pub(crate) fn for_each<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    f: impl FnMut(T) -> Result<(), String>,
) -> Result<(), String> {
    let mut failed = None;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let walked = de.deserialize_seq(Each { f, failed: &mut failed, _t: PhantomData });
    match (failed, walked) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(format!("malformed array: {e}")),
        (None, Ok(())) => Ok(()),
    }
}

struct Each<'f, F, T> {
    f: F,
    failed: &'f mut Option<String>,
    _t: PhantomData<fn() -> T>,
}

impl<'de, F, T> Visitor<'de> for Each<'_, F, T>
where
    F: FnMut(T) -> Result<(), String>,
    T: Deserialize<'de>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element_seed(PhantomData::<T>)? {
            if let Err(e) = (self.f)(item) {
                *self.failed = Some(e);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// A book level written as an array whose first two entries are the price and size strings
/// (`["30233.6", "3", "0", "1"]` on OKX, `["0.5", "12"]` on Bybit and Coinbase); the rest is
/// skipped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Level<'a>(pub &'a str, pub &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Level<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Head::<2>::deserialize(d).map(|Head([p, q])| Level(p, q))
    }
}

/// The first `N` entries of an array, all strings (Kraken's `[price, volume, time, side, ...]`);
/// the rest is skipped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a, const N: usize>(pub [&'a str; N]);

impl<'de: 'a, 'a, const N: usize> Deserialize<'de> for Head<'a, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, const N: usize>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a, const N: usize> Visitor<'de> for V<'a, N> {
            type Value = Head<'a, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at least {N} strings")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Head<'a, N>, A::Error> {
                let mut out = [""; N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Head(out))
            }
        }
        d.deserialize_seq(V::<N>(PhantomData))
    }
}

/// The first element of a JSON array (`None` when it is empty); the rest is skipped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct First<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<fn() -> T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// An unsigned integer the venue writes as a JSON number or a decimal string (ids, sequence
/// numbers, millisecond times). Anything else reads as absent (zero), as `Value` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Num(pub u64);

impl Num {
    /// Milliseconds since the epoch, in nanoseconds.
    pub(crate) fn millis_ns(self) -> u64 {
        UnixNanos::from_millis(self.0).0
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer or a decimal string")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(u64::try_from(v).unwrap_or(0)))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Num, E> {
                Ok(Num(0))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                Ok(Num(v.parse().unwrap_or(0)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
                Ok(Num(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A decimal as the venue wrote it, held inline: the checksum ladders keep one per price and
/// size of every level, and a heap string each would cost two allocations per level.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lit {
    len: u8,
    bytes: [u8; Lit::CAP],
}

impl Lit {
    pub(crate) const CAP: usize = 31;

    /// `s`, or an error when it is longer than any decimal a venue prints.
    pub(crate) fn new(s: &str) -> Result<Self, String> {
        let n = s.len();
        if n > Self::CAP {
            return Err(format!("decimal `{s}` longer than {} bytes", Self::CAP));
        }
        let mut bytes = [0; Self::CAP];
        bytes[..n].copy_from_slice(s.as_bytes());
        Ok(Self { len: n as u8, bytes })
    }

    pub(crate) fn as_str(&self) -> &str {
        // Built from a `&str` cut at its end: always UTF-8.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A CRC32 over text given piece by piece, gathered in a buffer and hashed in large blocks
/// (crc32fast's fast path wants long inputs; a checksum's pieces are a few bytes each).
pub(crate) struct Crc {
    hasher: crc32fast::Hasher,
    buf: [u8; 2048],
    len: usize,
}

impl Crc {
    pub(crate) fn new() -> Self {
        Self { hasher: crc32fast::Hasher::new(), buf: [0; 2048], len: 0 }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
            if bytes.len() > self.buf.len() {
                self.hasher.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    pub(crate) fn finish(mut self) -> u32 {
        self.hasher.update(&self.buf[..self.len]);
        self.hasher.finalize()
    }
}

impl fmt::Debug for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A venue's symbols, each given a small index once; events carry the index, not a string.
#[derive(Debug, Default)]
pub(crate) struct Symbols {
    names: Vec<Box<str>>,
    last: usize,
}

impl Symbols {
    pub(crate) fn index(&mut self, s: &str) -> u32 {
        if self.names.get(self.last).is_some_and(|n| **n == *s) {
            return self.last as u32;
        }
        let i = match self.names.iter().position(|n| **n == *s) {
            Some(i) => i,
            None => {
                self.names.push(s.into());
                self.names.len() - 1
            }
        };
        self.last = i;
        i as u32
    }

    pub(crate) fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("?", |n| n)
    }
}

/// A cursor over a frame laid out exactly as a venue sends it: fixed runs of keys and
/// punctuation compared as bytes, strings without escapes, quoted integers. Every method
/// answers `None` at the first difference, and the caller then hands the frame to serde: the
/// exact path only ever takes frames serde reads the same way.
pub(crate) struct Exact<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Exact<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self { s, i: 0 }
    }

    /// Steps over `bytes` if they come next.
    #[inline]
    pub(crate) fn lit<const N: usize>(&mut self, bytes: &[u8; N]) -> Option<()> {
        let hit = self.s.as_bytes()[self.i..].first_chunk::<N>() == Some(bytes);
        hit.then(|| self.i += N)
    }

    /// Whether `bytes` come next (stepping over them if so).
    #[inline]
    pub(crate) fn take<const N: usize>(&mut self, bytes: &[u8; N]) -> bool {
        self.lit(bytes).is_some()
    }

    /// A JSON string with no escapes or control bytes: the range of its contents.
    #[inline]
    pub(crate) fn text(&mut self) -> Option<std::ops::Range<usize>> {
        self.lit(b"\"")?;
        let rest = &self.s.as_bytes()[self.i..];
        let len = rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        (rest[len] == b'"').then_some(())?;
        let start = self.i;
        self.i += len + 1;
        Some(start..start + len)
    }

    /// A string of 1 to 19 ASCII digits (so it fits a `u64`), as [`Num`] reads it.
    #[inline]
    pub(crate) fn digits(&mut self) -> Option<u64> {
        let r = self.text()?;
        let b = &self.s.as_bytes()[r];
        (!b.is_empty() && b.len() <= 19 && b.iter().all(u8::is_ascii_digit)).then_some(())?;
        Some(b.iter().fold(0, |v, d| v * 10 + u64::from(d - b'0')))
    }

    /// A JSON integer of at most 18 digits (so it fits an `i64`), as serde reads one.
    #[inline]
    pub(crate) fn int(&mut self) -> Option<i64> {
        let rest = &self.s.as_bytes()[self.i..];
        let neg = rest.first() == Some(&b'-');
        let digits = &rest[usize::from(neg)..];
        let len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
        // No leading zero (JSON has none), no `-0` (serde reads it as a float) and no fraction
        // or exponent (serde would not read those as an integer).
        let zero_led = digits.first() == Some(&b'0');
        let ok = (1..=18).contains(&len)
            && (!zero_led || (len == 1 && !neg))
            && !matches!(digits.get(len), Some(b'.' | b'e' | b'E'));
        ok.then_some(())?;
        let v = digits[..len].iter().fold(0_i64, |v, d| v * 10 + i64::from(d - b'0'));
        self.i += usize::from(neg) + len;
        Some(if neg { -v } else { v })
    }

    /// A JSON number written as a plain non-negative decimal (`0`, `12`, `0.5`, `1797.30`: no
    /// sign, no exponent, no leading zero, as JSON allows): the range of its text, which is the
    /// decimal exactly as the venue wrote it.
    #[inline]
    pub(crate) fn plain_number(&mut self) -> Option<std::ops::Range<usize>> {
        let rest = &self.s.as_bytes()[self.i..];
        let int = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        (int > 0 && (rest[0] != b'0' || int == 1)).then_some(())?;
        let mut len = int;
        if rest.get(len) == Some(&b'.') {
            let frac = rest[len + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            (frac > 0).then_some(())?;
            len += 1 + frac;
        }
        (!matches!(rest.get(len), Some(b'e' | b'E'))).then_some(())?;
        let start = self.i;
        self.i += len;
        Some(start..start + len)
    }

    /// Where the cursor is, in bytes from the start.
    pub(crate) fn pos(&self) -> usize {
        self.i
    }

    /// The text of `range` (from [`Self::text`]).
    pub(crate) fn str(&self, range: std::ops::Range<usize>) -> &'a str {
        self.s.get(range).unwrap_or_default()
    }

    /// Nothing follows.
    pub(crate) fn end(&self) -> Option<()> {
        (self.i == self.s.len()).then_some(())
    }
}

/// A book push's levels: a JSON array read through serde, or the places of those that
/// [`levels_exact`] already checked in the frame.
#[derive(Clone, Copy)]
pub(crate) enum Levels<'a> {
    Json(&'a RawValue),
    Placed(&'a str, &'a [LevelAt]),
}

impl<'a> Levels<'a> {
    /// Calls `f` on each level in order; the first error ends the walk.
    pub(crate) fn for_each(self, mut f: impl FnMut(Level<'a>) -> Result<(), String>) -> Result<(), String> {
        match self {
            Levels::Json(raw) => for_each(raw, f),
            Levels::Placed(frame, at) => {
                let text = |r: &std::ops::Range<usize>| frame.get(r.clone()).unwrap_or_default();
                at.iter().try_for_each(|l| f(Level(text(&l.px), text(&l.sz))))
            }
        }
    }
}

/// A level as the venues lay it out: `["px","sz"(,"..")*]`, all strings without escapes
/// (OKX adds two more, Bybit none); the ranges of the price and size.
#[inline]
fn level_exact(c: &mut Exact<'_>) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    c.lit(b"[")?;
    let px = c.text()?;
    c.lit(b",")?;
    let sz = c.text()?;
    while c.take(b",") {
        c.text()?;
    }
    c.lit(b"]")?;
    Some((px, sz))
}

/// Runs `f` on `owner` with the buffer `field` picks taken out of it (so that `f` may use
/// `owner` mutably while filling it), cleared first and put back after: an exact reader's
/// scratch space, reused from frame to frame without allocating.
pub(crate) fn with_buffer<O, T, R>(
    owner: &mut O,
    field: fn(&mut O) -> &mut Vec<T>,
    f: impl FnOnce(&mut O, &mut Vec<T>) -> R,
) -> R {
    let mut buf = std::mem::take(field(owner));
    buf.clear();
    let r = f(owner, &mut buf);
    *field(owner) = buf;
    r
}

/// Where a checked level's price and size strings are in the frame.
#[derive(Debug, Clone)]
pub(crate) struct LevelAt {
    pub px: std::ops::Range<usize>,
    pub sz: std::ops::Range<usize>,
}

/// A whole array of such levels (`[` .. `]`), handing `each` every level's place as it is
/// checked (so that the levels are applied without walking the text again); the range of what
/// is inside the brackets.
pub(crate) fn levels_exact(c: &mut Exact<'_>, mut each: impl FnMut(LevelAt)) -> Option<std::ops::Range<usize>> {
    c.lit(b"[")?;
    let start = c.pos();
    if !c.take(b"]") {
        loop {
            let (px, sz) = level_exact(c)?;
            each(LevelAt { px, sz });
            if !c.take(b",") {
                break;
            }
        }
        c.lit(b"]")?;
    }
    Some(start..c.pos() - 1)
}

/// Tests: a frame cut at every byte, and `n` copies each with one byte replaced by JSON's
/// punctuation, digits or letters (xorshift from `rng`): what an exact reader must either read
/// as serde does or leave to serde.
#[cfg(test)]
pub(crate) fn damaged(body: &str, n: usize, rng: &mut u64) -> Vec<String> {
    let mut out: Vec<String> = (0..body.len()).filter_map(|cut| body.get(..cut)).map(str::to_owned).collect();
    for _ in 0..n {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let mut b = body.as_bytes().to_vec();
        let at = (*rng as usize) % b.len().max(1);
        let bytes = b"\"{}[],:.-+e0 19\\\x01tfnx";
        if let Some(c) = b.get_mut(at) {
            *c = bytes[(*rng >> 32) as usize % bytes.len()];
        }
        out.extend(String::from_utf8(b).ok());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_walked_in_order_and_the_first_error_wins() {
        let raw: &RawValue = serde_json::from_str(r#"[["1.5","2","0","3"],["1.4","0"]]"#).unwrap();
        let mut seen = Vec::new();
        for_each(raw, |Level(p, q)| {
            seen.push((p, q));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [("1.5", "2"), ("1.4", "0")]);
        assert_eq!(for_each(raw, |_: Level<'_>| Err("mine".into())), Err("mine".to_owned()));
        for bad in [r#"[["1"]]"#, r#"[[1,2]]"#, r#"{"a":1}"#, r#"[["1\u0030","2"]]"#] {
            let raw: &RawValue = serde_json::from_str(bad).unwrap();
            let r = for_each(raw, |_: Level<'_>| Ok(()));
            assert!(r.as_ref().is_err_and(|e| e.starts_with("malformed array")), "{bad}: {r:?}");
        }
    }

    #[test]
    fn first_takes_the_head_of_an_array() {
        let f: First<Level<'_>> = serde_json::from_str(r#"[["1","2"],["3","4"]]"#).unwrap();
        assert_eq!(f.0.map(|l| (l.0, l.1)), Some(("1", "2")));
        let f: First<Level<'_>> = serde_json::from_str("[]").unwrap();
        assert!(f.0.is_none());
    }

    #[test]
    fn numbers_read_from_either_form_and_odd_ones_read_as_zero() {
        let n: Vec<Num> = serde_json::from_str(r#"[7, "8", "x", -1, 1.5, null]"#).unwrap();
        assert_eq!(n, [Num(7), Num(8), Num(0), Num(0), Num(0), Num(0)]);
        assert_eq!(Num(1_700_000_000_123).millis_ns(), 1_700_000_000_123_000_000);
    }

    #[test]
    fn exact_integers_are_the_ones_serde_reads_as_i64() {
        let cases = [
            "0",
            "-0",
            "7",
            "-855196043",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "01",
            "-",
            "1.5",
            "1e3",
            "1E3",
            "-01",
            "",
            "x",
            "12}",
            "--1",
        ];
        for text in cases {
            let serde = serde_json::from_str::<i64>(text).ok();
            let mut c = Exact::new(text);
            match c.int() {
                // Taken: serde reads the same number from the same bytes.
                Some(v) => assert_eq!(serde_json::from_str::<i64>(&text[..c.pos()]).ok(), Some(v), "{text}"),
                // Refused: serde may read it (19 digits), but then the serde path does.
                None => assert!(serde.is_none() || text.trim_start_matches('-').len() > 18, "{text}"),
            }
        }
        assert_eq!(Exact::new("-855196043,").int(), Some(-855_196_043));
        assert_eq!(Exact::new("12}").int(), Some(12));
    }

    #[test]
    fn literals_keep_their_text_and_refuse_what_does_not_fit() {
        assert_eq!(Lit::new("30233.60").unwrap().as_str(), "30233.60");
        assert_eq!(Lit::new("").unwrap().as_str(), "");
        assert!(Lit::new(&"9".repeat(Lit::CAP)).is_ok());
        assert!(Lit::new(&"9".repeat(Lit::CAP + 1)).is_err());
    }

    #[test]
    fn crc_in_pieces_equals_crc_at_once() {
        let text: Vec<u8> = (0..5000_u32).map(|i| b'0' + (i % 10) as u8).collect();
        for piece in [1, 7, 2047, 2048, 2049, 5000] {
            let mut c = Crc::new();
            text.chunks(piece).for_each(|p| c.push(p));
            assert_eq!(c.finish(), crc32fast::hash(&text), "pieces of {piece}");
        }
        assert_eq!(Crc::new().finish(), crc32fast::hash(b""));
    }

    #[test]
    fn symbols_get_stable_indices() {
        let mut s = Symbols::default();
        assert_eq!((s.index("A"), s.index("B"), s.index("A"), s.index("B")), (0, 1, 0, 1));
        assert_eq!((s.name(1), s.name(9)), ("B", "?"));
    }
}
