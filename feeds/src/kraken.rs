//! Kraken spot websocket v1 (`wss://ws.kraken.com`): trades, spreads, tickers and the `book-N`
//! channel with its CRC32 checksum.
//!
//! The book keeps every level's price and volume strings exactly as received, because the
//! checksum is computed over them: after applying *all* levels of a message and truncating each
//! side to the subscribed depth, take the top 10 asks (ascending) and top 10 bids (descending),
//! remove `.` and leading zeros from price and volume, concatenate, CRC32 (unsigned) == `c`.

use std::collections::BTreeMap;

use argus_core::{BookAction, BookDelta, DeltaFlags, Price, Qty, Side, Trade, UnixNanos};
use serde_json::Value;

use crate::FeedError;

/// One side: price in 1e-9 units (i128: real books hold asks at 9,999,999,997 CHF, beyond
/// `Price`'s range) -> (price string, volume string).
type Ladder = BTreeMap<i128, (String, String)>;

/// A non-negative decimal string in 1e-9 units, exactly.
pub(crate) fn key(s: &str) -> Result<i128, FeedError> {
    let bad = || malformed(&format!("bad price `{s}`"));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || int.len() > 28 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.bytes().skip(9).any(|b| b != b'0') {
        return Err(bad());
    }
    let mut v: i128 = int.parse().map_err(|_| bad())?;
    for i in 0..9 {
        v = v * 10 + frac.as_bytes().get(i).map_or(0, |b| i128::from(b - b'0'));
    }
    Ok(v)
}

/// A pair's book at the subscribed depth.
#[derive(Debug, Clone, Default)]
pub struct KrakenBook {
    depth: usize,
    bids: Ladder,
    asks: Ladder,
    /// Levels kept for the checksum but beyond `Price`'s range, so not in the core book.
    pub out_of_range: u64,
}

/// One trade of either version, with the pair and venue time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrakenTrade {
    pub symbol: String,
    pub ts_ns: u64,
    pub trade: Trade,
}

/// Kraken v1's decimal seconds (`"1618678132.927716"`) in nanoseconds.
fn seconds_ns(s: &str) -> u64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    whole.parse::<u64>().unwrap_or(0).saturating_mul(1_000_000_000).saturating_add(frac.parse().unwrap_or(0))
}

/// What a v1 frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KrakenV1 {
    /// `{"event": ...}`: heartbeat, status, subscription ack.
    Event,
    Trades(Vec<KrakenTrade>),
    /// Best bid/ask from `spread` or `ticker`.
    Quote {
        pair: String,
    },
    Book {
        pair: String,
        depth: usize,
        snapshot: bool,
        levels: Vec<(Side, String, String)>,
        checksum: Option<u32>,
    },
}

fn malformed(what: &str) -> FeedError {
    FeedError::Recording { line: 0, reason: format!("kraken v1: {what}") }
}

/// Decodes one v1 frame (pure; no book state).
///
/// # Errors
/// Malformed JSON or a layout that is not Kraken v1.
pub fn decode_v1(frame: &str) -> Result<KrakenV1, FeedError> {
    let v: Value = serde_json::from_str(frame)?;
    if v.get("event").is_some() {
        return Ok(KrakenV1::Event);
    }
    let a = v.as_array().ok_or_else(|| malformed("neither an event nor an array"))?;
    if a.len() < 4 {
        return Err(malformed("array shorter than 4"));
    }
    let pair = a[a.len() - 1].as_str().ok_or_else(|| malformed("no pair"))?.to_owned();
    let channel = a[a.len() - 2].as_str().ok_or_else(|| malformed("no channel name"))?;
    let payload = &a[1..a.len() - 2];
    match channel {
        "trade" => {
            let trades = payload[0].as_array().ok_or_else(|| malformed("trade payload"))?;
            let mut out = Vec::with_capacity(trades.len());
            for t in trades {
                let t = t.as_array().ok_or_else(|| malformed("trade entry"))?;
                let (p, q) = (str_at(t, 0)?, str_at(t, 1)?);
                key(p)?;
                let trade = Trade {
                    price: Price::parse(p).map_err(|source| FeedError::Decimal { field: "price", source })?,
                    qty: Qty::parse_size(q).map_err(|source| FeedError::Decimal { field: "volume", source })?,
                    trade_id: 0,
                    aggressor: if str_at(t, 3)? == "s" { Side::Sell } else { Side::Buy },
                };
                out.push(KrakenTrade { symbol: pair.clone(), ts_ns: seconds_ns(str_at(t, 2)?), trade });
            }
            Ok(KrakenV1::Trades(out))
        }
        "spread" | "ticker" => Ok(KrakenV1::Quote { pair }),
        c if c.starts_with("book-") => {
            let depth = c[5..].parse::<usize>().map_err(|_| malformed("book depth"))?;
            let mut levels = Vec::new();
            let mut checksum = None;
            let mut snapshot = false;
            for d in payload.iter().filter(|d| !d.is_null()) {
                let d = d.as_object().ok_or_else(|| malformed("book payload"))?;
                for (key, side) in [("as", Side::Sell), ("bs", Side::Buy), ("a", Side::Sell), ("b", Side::Buy)] {
                    let Some(ls) = d.get(key) else { continue };
                    snapshot |= key.len() == 2;
                    for l in ls.as_array().ok_or_else(|| malformed("levels"))? {
                        let l = l.as_array().ok_or_else(|| malformed("level"))?;
                        levels.push((side, str_at(l, 0)?.to_owned(), str_at(l, 1)?.to_owned()));
                    }
                }
                if let Some(c) = d.get("c") {
                    let c = c.as_str().ok_or_else(|| malformed("checksum"))?;
                    checksum = Some(c.parse::<u32>().map_err(|_| malformed("checksum"))?);
                }
            }
            Ok(KrakenV1::Book { pair, depth, snapshot, levels, checksum })
        }
        other => Err(malformed(&format!("unknown channel `{other}`"))),
    }
}

fn str_at(a: &[Value], i: usize) -> Result<&str, FeedError> {
    a.get(i).and_then(Value::as_str).ok_or_else(|| malformed("level field"))
}

impl KrakenBook {
    pub fn new(depth: usize) -> Self {
        Self { depth: depth.max(1), ..Self::default() }
    }

    /// Replaces the book with a snapshot's levels; emits `Clear` + adds.
    ///
    /// # Errors
    /// A malformed decimal (the book is then left cleared).
    pub fn snapshot(&mut self, levels: &[(Side, String, String)], out: &mut Vec<BookDelta>) -> Result<(), FeedError> {
        self.bids.clear();
        self.asks.clear();
        out.push(delta(BookAction::Clear, Side::Buy, Price::ZERO, Qty::ZERO, DeltaFlags::SNAPSHOT));
        self.apply(levels, out, DeltaFlags::SNAPSHOT)
    }

    /// Applies an update's levels in order, then truncates to depth.
    ///
    /// # Errors
    /// A malformed decimal (levels before it stay applied; the caller marks the book stale).
    pub fn update(&mut self, levels: &[(Side, String, String)], out: &mut Vec<BookDelta>) -> Result<(), FeedError> {
        self.apply(levels, out, 0)
    }

    fn apply(
        &mut self,
        levels: &[(Side, String, String)],
        out: &mut Vec<BookDelta>,
        flags: u8,
    ) -> Result<(), FeedError> {
        for (side, p, q) in levels {
            let k = key(p)?;
            let qty = Qty::parse_size(q).map_err(|source| FeedError::Decimal { field: "volume", source })?;
            // The core book holds what `Price` can; the rest only feeds the checksum.
            let price = i64::try_from(k).ok().map(Price::from_units);
            let ladder = if *side == Side::Buy { &mut self.bids } else { &mut self.asks };
            if qty.units() == 0 {
                if ladder.remove(&k).is_some() {
                    if let Some(price) = price {
                        out.push(delta(BookAction::Delete, *side, price, qty, flags));
                    }
                }
            } else {
                if ladder.insert(k, (p.clone(), q.clone())).is_none() && price.is_none() {
                    self.out_of_range += 1;
                }
                if let Some(price) = price {
                    out.push(delta(BookAction::Update, *side, price, qty, flags));
                }
            }
        }
        // Levels pushed beyond the subscribed depth leave silently on Kraken's side.
        while self.bids.len() > self.depth {
            if let Some((px, _)) = self.bids.pop_first() {
                if let Ok(px) = i64::try_from(px) {
                    out.push(delta(BookAction::Delete, Side::Buy, Price::from_units(px), Qty::ZERO, flags));
                }
            }
        }
        while self.asks.len() > self.depth {
            if let Some((px, _)) = self.asks.pop_last() {
                if let Ok(px) = i64::try_from(px) {
                    out.push(delta(BookAction::Delete, Side::Sell, Price::from_units(px), Qty::ZERO, flags));
                }
            }
        }
        if let Some(last) = out.last_mut() {
            last.flags.0 |= DeltaFlags::LAST;
        }
        Ok(())
    }

    /// Best bid as the venue wrote it.
    pub fn best_bid(&self) -> Option<(&str, &str)> {
        self.bids.values().next_back().map(|(p, q)| (p.as_str(), q.as_str()))
    }

    /// Best ask as the venue wrote it.
    pub fn best_ask(&self) -> Option<(&str, &str)> {
        self.asks.values().next().map(|(p, q)| (p.as_str(), q.as_str()))
    }

    /// Levels per side (bids, asks), including any beyond `Price`'s range.
    pub fn depths(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// The v2 checksum: like v1, over numbers formatted at the pair's precision.
    pub fn checksum_v2(&self, price_decimals: u8, qty_decimals: u8) -> u32 {
        let mut s = String::with_capacity(512);
        let mut push = |v: &str, d: u8| {
            let padded = pad(v, d);
            let digits: String = padded.chars().filter(|c| *c != '.').collect();
            s.push_str(digits.trim_start_matches('0'));
        };
        for (p, q) in self.asks.values().take(10) {
            push(p, price_decimals);
            push(q, qty_decimals);
        }
        for (p, q) in self.bids.values().rev().take(10) {
            push(p, price_decimals);
            push(q, qty_decimals);
        }
        crc32fast::hash(s.as_bytes())
    }

    /// The v1 checksum of the book as it stands.
    pub fn checksum(&self) -> u32 {
        let mut s = String::with_capacity(512);
        let mut push = |p: &str, q: &str| {
            for part in [p, q] {
                let digits: String = part.chars().filter(|c| *c != '.').collect();
                s.push_str(digits.trim_start_matches('0'));
            }
        };
        for (p, q) in self.asks.values().take(10) {
            push(p, q);
        }
        for (p, q) in self.bids.values().rev().take(10) {
            push(p, q);
        }
        crc32fast::hash(s.as_bytes())
    }
}

/// `v` with exactly `d` fractional digits (zeros appended; never shortened).
fn pad(v: &str, d: u8) -> String {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let mut s = String::with_capacity(int.len() + 1 + usize::from(d));
    s.push_str(int);
    if d > 0 || !frac.is_empty() {
        s.push('.');
        s.push_str(frac);
        for _ in frac.len()..usize::from(d) {
            s.push('0');
        }
    }
    s
}

/// A JSON number's text as a plain decimal: `5.325e-05` -> `0.00005325`, `45281.0` unchanged.
///
/// # Errors
/// Not a non-negative JSON number.
pub fn plain_decimal(raw: &str) -> Result<String, FeedError> {
    let bad = || malformed(&format!("bad number `{raw}`"));
    let (mantissa, exp) = match raw.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().map_err(|_| bad())?),
        None => (raw, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if exp == 0 {
        return Ok(mantissa.to_owned());
    }
    let digits = format!("{int}{frac}");
    let point = i32::try_from(int.len()).map_err(|_| bad())? + exp;
    let out = if point <= 0 {
        format!("0.{}{}", "0".repeat(point.unsigned_abs() as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    let trimmed = out.trim_start_matches('0');
    Ok(if trimmed.starts_with('.') || trimmed.is_empty() { format!("0{trimmed}") } else { trimmed.to_owned() })
}

/// One v2 `book` entry, with numbers as the venue wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrakenV2Book {
    pub symbol: String,
    pub levels: Vec<(Side, String, String)>,
    pub checksum: Option<u32>,
}

/// What a v2 frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KrakenV2 {
    /// Heartbeats, status, acks; a `book` subscribe ack carries the depth.
    Control {
        book_depth: Option<(String, usize)>,
    },
    Trades(Vec<KrakenTrade>),
    Quotes(u64),
    Book {
        snapshot: bool,
        books: Vec<KrakenV2Book>,
    },
}

#[derive(serde::Deserialize)]
struct RawV2Level<'a> {
    #[serde(borrow)]
    price: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    qty: &'a serde_json::value::RawValue,
}

#[derive(serde::Deserialize)]
struct RawV2Book<'a> {
    symbol: String,
    #[serde(borrow, default)]
    bids: Vec<RawV2Level<'a>>,
    #[serde(borrow, default)]
    asks: Vec<RawV2Level<'a>>,
    checksum: Option<u32>,
}

/// Decodes one v2 frame (`{"channel": ...}` or a `{"method": ...}` ack).
///
/// # Errors
/// Malformed JSON or numbers.
pub fn decode_v2(frame: &str) -> Result<KrakenV2, FeedError> {
    let v: Value = serde_json::from_str(frame)?;
    if v.get("method").is_some() {
        let r = &v["result"];
        let depth = (r["channel"] == "book")
            .then(|| Some((r["symbol"].as_str()?.to_owned(), usize::try_from(r["depth"].as_u64()?).ok()?)))
            .flatten();
        return Ok(KrakenV2::Control { book_depth: depth });
    }
    let channel = v["channel"].as_str().ok_or_else(|| malformed("v2 frame without channel"))?;
    let count = || v["data"].as_array().map_or(0, |a| a.len() as u64);
    match channel {
        "book" => {
            #[derive(serde::Deserialize)]
            struct Frame<'a> {
                #[serde(rename = "type")]
                ty: Option<String>,
                #[serde(borrow)]
                data: Vec<RawV2Book<'a>>,
            }
            let f: Frame<'_> = serde_json::from_str(frame)?;
            let mut books = Vec::with_capacity(f.data.len());
            for b in f.data {
                let mut levels = Vec::with_capacity(b.bids.len() + b.asks.len());
                for (side, ls) in [(Side::Buy, &b.bids), (Side::Sell, &b.asks)] {
                    for l in ls {
                        levels.push((side, plain_decimal(l.price.get())?, plain_decimal(l.qty.get())?));
                    }
                }
                books.push(KrakenV2Book { symbol: b.symbol, levels, checksum: b.checksum });
            }
            // Re-serialised captures may drop `type`; a frame without it is a snapshot only
            // when it carries no checksum-less partial update semantics, so default to update.
            Ok(KrakenV2::Book { snapshot: f.ty.as_deref() == Some("snapshot"), books })
        }
        "trade" => {
            let mut out = Vec::new();
            for t in v["data"].as_array().map_or(&[][..], Vec::as_slice) {
                let num = |k: &str| plain_decimal(&t[k].to_string());
                let trade = Trade {
                    price: Price::parse(&num("price")?)
                        .map_err(|source| FeedError::Decimal { field: "price", source })?,
                    qty: Qty::parse_size(&num("qty")?).map_err(|source| FeedError::Decimal { field: "qty", source })?,
                    trade_id: t["trade_id"].as_u64().unwrap_or(0),
                    aggressor: if t["side"] == "sell" { Side::Sell } else { Side::Buy },
                };
                let symbol = t["symbol"].as_str().unwrap_or_default().to_owned();
                let ts_ns = t["timestamp"].as_str().and_then(UnixNanos::parse_rfc3339).map_or(0, |t| t.0);
                out.push(KrakenTrade { symbol, ts_ns, trade });
            }
            Ok(KrakenV2::Trades(out))
        }
        "ticker" => Ok(KrakenV2::Quotes(count())),
        _ => Ok(KrakenV2::Control { book_depth: None }),
    }
}

fn delta(action: BookAction, side: Side, price: Price, qty: Qty, flags: u8) -> BookDelta {
    BookDelta { action, side, flags: DeltaFlags(flags), price, qty, sequence: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/kraken/kraken_v1_book_checksum_vectors_verified.json"
    ));

    #[test]
    fn checksum_string_follows_the_documented_recipe() {
        let mut b = KrakenBook::new(10);
        let mut out = Vec::new();
        let lv = |side, p: &str, q: &str| (side, p.to_owned(), q.to_owned());
        b.snapshot(&[lv(Side::Sell, "0.05005", "0.00000500"), lv(Side::Buy, "0.05000", "0.00000500")], &mut out)
            .unwrap();
        // "5005" + "500" + "5000" + "500"
        assert_eq!(b.checksum(), crc32fast::hash(b"50055005000500"));
    }

    #[test]
    fn verified_vectors_decode_and_carry_their_checksum() {
        let v: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
        assert!(!v.is_empty());
        for case in v {
            let raw = case["raw_message"].to_string();
            let KrakenV1::Book { checksum, .. } = decode_v1(&raw).unwrap() else { panic!("not a book frame") };
            let want = u32::try_from(case["expected_checksum"].as_u64().unwrap()).unwrap();
            assert_eq!(checksum, Some(want));
            let input = case["checksum_input_string"].as_str().unwrap();
            assert_eq!(crc32fast::hash(input.as_bytes()), want, "the vector's own string");
        }
    }

    #[test]
    fn v2_doc_and_real_snapshots_verify_their_checksums() {
        let doc = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/kraken/kraken_v2_doc_book_snapshot_BTCUSD_checksum_3310070434.json"
        ));
        let KrakenV2::Book { snapshot: true, books } = decode_v2(doc).unwrap() else { panic!("not a snapshot") };
        let mut b = KrakenBook::new(10);
        b.snapshot(&books[0].levels, &mut Vec::new()).unwrap();
        assert_eq!(b.checksum_v2(1, 8), 3_310_070_434);
        assert_eq!(books[0].checksum, Some(3_310_070_434));
        assert_eq!(plain_decimal("5.325e-05").unwrap(), "0.00005325");
        assert_eq!(plain_decimal("1.5E3").unwrap(), "1500");
        assert_eq!(plain_decimal("45281.0").unwrap(), "45281.0");
        assert_eq!(pad("0.053", 8), "0.05300000");
        assert!(plain_decimal("-1").is_err() && plain_decimal("1e").is_err());
    }

    #[test]
    fn updates_delete_zero_volumes_and_truncate_to_depth() {
        let mut b = KrakenBook::new(2);
        let mut out = Vec::new();
        let lv = |side, p: &str, q: &str| (side, p.to_owned(), q.to_owned());
        b.snapshot(&[lv(Side::Buy, "10.0", "1"), lv(Side::Buy, "9.0", "1"), lv(Side::Sell, "11.0", "1")], &mut out)
            .unwrap();
        out.clear();
        b.update(&[lv(Side::Buy, "10.5", "2"), lv(Side::Sell, "11.0", "0.0")], &mut out).unwrap();
        assert_eq!(b.bids.len(), 2, "9.0 fell off the depth");
        assert!(b.asks.is_empty());
        assert!(out.iter().any(|d| d.action == BookAction::Delete && d.price == Price::parse("9").unwrap()));
        assert!(out.last().unwrap().flags.is_last());
        // A real ask beyond `Price`'s range stays in the checksum ladder, out of the core book.
        out.clear();
        b.update(&[lv(Side::Sell, "9999999997.00000", "0.001")], &mut out).unwrap();
        assert_eq!((b.asks.len(), b.out_of_range, out.len()), (1, 1, 0));
        assert_eq!(key("0.000022900").unwrap(), 22_900);
        assert!(key("1.0000000001").is_err() && key("-1").is_err() && key("1e5").is_err());
        for bad in ["[1,{\"a\":[[\"x\",\"1\",\"0\"]]},\"book-10\",\"X/Y\"]", "[1,2]", "{", "[1,{},\"candles\",\"X/Y\"]"]
        {
            let r = decode_v1(bad).and_then(|f| match f {
                KrakenV1::Book { levels, .. } => KrakenBook::new(10).update(&levels, &mut Vec::new()),
                _ => Ok(()),
            });
            assert!(r.is_err(), "{bad}");
        }
    }
}
