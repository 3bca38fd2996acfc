//! Kraken spot websocket v1 (`wss://ws.kraken.com`): trades, spreads, tickers and the `book-N`
//! channel with its CRC32 checksum.
//!
//! The book keeps every level's price and volume strings exactly as received, because the
//! checksum is computed over them: after applying *all* levels of a message and truncating each
//! side to the subscribed depth, take the top 10 asks (ascending) and top 10 bids (descending),
//! remove `.` and leading zeros from price and volume, concatenate, CRC32 (unsigned) == `c`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use argus_core::{BookAction, BookDelta, DeltaFlags, Price, Qty, Quote, Side, Trade, UnixNanos};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::check::wire::{self, Head, Level, Lit};
use crate::FeedError;

/// One side: price in 1e-9 units (i128: real books hold asks at 9,999,999,997 CHF, beyond
/// `Price`'s range) -> (price, volume) as the venue wrote them.
type Ladder = BTreeMap<i128, (Lit, Lit)>;

/// A non-negative decimal string in 1e-9 units, exactly.
pub(crate) fn key(s: &str) -> Result<i128, FeedError> {
    let bad = || malformed(&format!("bad price `{s}`"));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    // Nearly every price: at most 9 digits each side of the point fit a u64 in 1e-9 units
    // (< 10^18), one pass checking and accumulating, without 128-bit multiplies.
    if !int.is_empty() && int.len() <= 9 && frac.len() <= 9 {
        let mut v: u64 = 0;
        for &b in int.as_bytes().iter().chain(frac.as_bytes()) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return Err(bad());
            }
            v = v * 10 + u64::from(d);
        }
        return Ok(i128::from(v * 10_u64.pow(9 - frac.len() as u32)));
    }
    key_wide(s)
}

/// [`key`] for any length: 128-bit arithmetic.
fn key_wide(s: &str) -> Result<i128, FeedError> {
    let bad = || malformed(&format!("bad price `{s}`"));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || int.len() > 28 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.bytes().skip(9).any(|b| b != b'0') {
        return Err(bad());
    }
    let mut v: i128 = 0;
    for b in int.bytes() {
        v = v * 10 + i128::from(b - b'0');
    }
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
    /// The last checksum computed (with its padding), valid while `top_changed` is false.
    last_checksum: Option<(Option<u8>, Option<u8>, u32)>,
    /// A level within either side's top 10 (all the checksum reads) changed since.
    top_changed: bool,
}

/// One trade of either version, with the pair and venue time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrakenTrade<'a> {
    pub symbol: &'a str,
    pub ts_ns: u64,
    pub trade: Trade,
}

/// A best bid and offer of either version, with the pair and venue time (0 when the frame
/// carries none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrakenQuote<'a> {
    pub symbol: &'a str,
    pub ts_ns: u64,
    pub quote: Quote,
}

fn quote(bid: &str, bid_qty: &str, ask: &str, ask_qty: &str) -> Result<Quote, FeedError> {
    let px = |v: &str| Price::parse(v).map_err(|source| FeedError::Decimal { field: "quote price", source });
    let sz = |v: &str| Qty::parse_size(v).map_err(|source| FeedError::Decimal { field: "quote size", source });
    Ok(Quote { bid_price: px(bid)?, bid_qty: sz(bid_qty)?, ask_price: px(ask)?, ask_qty: sz(ask_qty)? })
}

/// Kraken v1's decimal seconds (`"1618678132.927716"`) in nanoseconds.
fn seconds_ns(s: &str) -> u64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut ns: u64 = 0;
    for i in 0..9 {
        let d = frac.as_bytes().get(i).copied().unwrap_or(b'0');
        if !d.is_ascii_digit() {
            return 0;
        }
        ns = ns * 10 + u64::from(d - b'0');
    }
    whole.parse::<u64>().unwrap_or(0).saturating_mul(1_000_000_000).saturating_add(ns)
}

/// A book level as received: side, price and volume strings.
pub type KrakenLevel<'a> = (Side, &'a str, &'a str);

/// Anything that reads as a book level: a decoded frame's borrowed levels or owned ones.
pub trait AsLevel {
    fn level(&self) -> KrakenLevel<'_>;
}

impl<S: AsRef<str>> AsLevel for &(Side, S, S) {
    fn level(&self) -> KrakenLevel<'_> {
        (self.0, self.1.as_ref(), self.2.as_ref())
    }
}

impl AsLevel for KrakenLevel<'_> {
    fn level(&self) -> KrakenLevel<'_> {
        *self
    }
}

/// What a v1 frame was. Strings point into the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KrakenV1<'a> {
    /// `{"event": ...}`: heartbeat, status, subscription ack.
    Event,
    Trades(Vec<KrakenTrade<'a>>),
    /// Best bid/ask from `spread` (with its time) or `ticker` (time 0: it carries none).
    Quote(KrakenQuote<'a>),
    Book {
        pair: &'a str,
        depth: usize,
        snapshot: bool,
        levels: Vec<KrakenLevel<'a>>,
        checksum: Option<u32>,
    },
}

fn malformed(what: &str) -> FeedError {
    FeedError::Recording { line: 0, reason: format!("kraken v1: {what}") }
}

/// A v1 frame's outline: an event object, or the array's elements (at most six: channel id,
/// up to two payloads, channel name, pair), each left unparsed.
enum Outline<'a> {
    Event,
    OtherObject,
    Array { items: [Option<&'a RawValue>; 6], len: usize },
}

impl<'de: 'a, 'a> Deserialize<'de> for Outline<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A key, compared with `event` without keeping it.
        struct IsEvent(bool);
        impl<'de> Deserialize<'de> for IsEvent {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct K;
                impl Visitor<'_> for K {
                    type Value = IsEvent;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<IsEvent, E> {
                        Ok(IsEvent(v == "event"))
                    }
                }
                d.deserialize_str(K)
            }
        }
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Outline<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object or a channel array")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outline<'a>, A::Error> {
                let mut event = false;
                while let Some(IsEvent(k)) = map.next_key()? {
                    event |= k;
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(if event { Outline::Event } else { Outline::OtherObject })
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Outline<'a>, A::Error> {
                let mut items = [None; 6];
                let mut len = 0;
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    let slot = items.get_mut(len).ok_or_else(|| de::Error::invalid_length(len + 1, &self))?;
                    *slot = Some(item);
                    len += 1;
                }
                Ok(Outline::Array { items, len })
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One object of a v1 book payload: a snapshot's `as`/`bs`, an update's `a`/`b` and `c`.
#[derive(Deserialize)]
struct BookPart<'a> {
    #[serde(borrow, rename = "as")]
    snap_asks: Option<&'a RawValue>,
    #[serde(borrow, rename = "bs")]
    snap_bids: Option<&'a RawValue>,
    #[serde(borrow)]
    a: Option<&'a RawValue>,
    #[serde(borrow)]
    b: Option<&'a RawValue>,
    #[serde(borrow)]
    c: Option<&'a str>,
}

fn as_str(raw: &RawValue) -> Option<&str> {
    serde_json::from_str(raw.get()).ok()
}

/// Decodes one v1 frame (pure; no book state).
///
/// # Errors
/// Malformed JSON or a layout that is not Kraken v1.
pub fn decode_v1(frame: &str) -> Result<KrakenV1<'_>, FeedError> {
    let (items, len) = match serde_json::from_str::<Outline<'_>>(frame)? {
        Outline::Event => return Ok(KrakenV1::Event),
        Outline::OtherObject => return Err(malformed("neither an event nor an array")),
        Outline::Array { items, len } => (items, len),
    };
    if len < 4 {
        return Err(malformed("array shorter than 4"));
    }
    let item = |i: usize| items[i].ok_or_else(|| malformed("array entry"));
    let pair = as_str(item(len - 1)?).ok_or_else(|| malformed("no pair"))?;
    let channel = as_str(item(len - 2)?).ok_or_else(|| malformed("no channel name"))?;
    let bad = |what: &'static str| move |e: String| malformed(&format!("{what}: {e}"));
    match channel {
        "trade" => {
            let mut out = Vec::new();
            wire::for_each(item(1)?, |Head([p, q, t, side]): Head<'_, 4>| {
                key(p).map_err(|e| e.to_string())?;
                let trade = Trade {
                    price: Price::parse(p).map_err(|e| format!("price: {e}"))?,
                    qty: Qty::parse_size(q).map_err(|e| format!("volume: {e}"))?,
                    trade_id: 0,
                    aggressor: if side == "s" { Side::Sell } else { Side::Buy },
                };
                out.push(KrakenTrade { symbol: pair, ts_ns: seconds_ns(t), trade });
                Ok(())
            })
            .map_err(bad("trade payload"))?;
            Ok(KrakenV1::Trades(out))
        }
        "spread" => {
            // `[bid, ask, time, bidVolume, askVolume]`
            let Head([bid, ask, t, bid_qty, ask_qty]) =
                serde_json::from_str(item(1)?.get()).map_err(|e| malformed(&format!("spread payload: {e}")))?;
            Ok(KrakenV1::Quote(KrakenQuote {
                symbol: pair,
                ts_ns: seconds_ns(t),
                quote: quote(bid, bid_qty, ask, ask_qty)?,
            }))
        }
        "ticker" => {
            /// `a` and `b` are `[price, wholeLotVolume, lotVolume]`; the rest is not a quote.
            #[derive(Deserialize)]
            struct Ticker<'a> {
                #[serde(borrow)]
                a: (&'a str, IgnoredAny, &'a str),
                #[serde(borrow)]
                b: (&'a str, IgnoredAny, &'a str),
            }
            let t: Ticker<'_> =
                serde_json::from_str(item(1)?.get()).map_err(|e| malformed(&format!("ticker payload: {e}")))?;
            Ok(KrakenV1::Quote(KrakenQuote { symbol: pair, ts_ns: 0, quote: quote(t.b.0, t.b.2, t.a.0, t.a.2)? }))
        }
        c if c.starts_with("book-") => {
            let depth = c[5..].parse::<usize>().map_err(|_| malformed("book depth"))?;
            let mut levels = Vec::new();
            let mut checksum = None;
            let mut snapshot = false;
            for i in 1..len - 2 {
                let raw = item(i)?;
                if raw.get() == "null" {
                    continue;
                }
                let part: BookPart<'_> =
                    serde_json::from_str(raw.get()).map_err(|e| malformed(&format!("book payload: {e}")))?;
                for (ls, side, snap) in [
                    (part.snap_asks, Side::Sell, true),
                    (part.snap_bids, Side::Buy, true),
                    (part.a, Side::Sell, false),
                    (part.b, Side::Buy, false),
                ] {
                    let Some(ls) = ls else { continue };
                    snapshot |= snap;
                    wire::for_each(ls, |Level(p, q)| {
                        levels.push((side, p, q));
                        Ok(())
                    })
                    .map_err(bad("levels"))?;
                }
                if let Some(c) = part.c {
                    checksum = Some(c.parse::<u32>().map_err(|_| malformed("checksum"))?);
                }
            }
            Ok(KrakenV1::Book { pair, depth, snapshot, levels, checksum })
        }
        other => Err(malformed(&format!("unknown channel `{other}`"))),
    }
}

/// A book push read in Kraken's own layout by [`book_v1_exact`] or [`book_v2_exact`]; its
/// levels are in the caller's [`ExactLevels`].
#[derive(Debug, Clone)]
pub struct ExactBook<'a> {
    pub pair: &'a str,
    /// v1: from the channel name (`book-N`); v2: 0 (the subscription's ack tells it).
    pub depth: usize,
    pub snapshot: bool,
    pub checksum: Option<u32>,
    /// Where each level array's levels are in [`ExactLevels`], with their side, in the order
    /// serde's reading applies them (object by object; in each, `as`, `bs`, `a`, `b`).
    parts: [(Side, usize, usize); 4],
    n: usize,
}

/// The places of the levels [`book_v1_exact`] or [`book_v2_exact`] checked: kept by the caller
/// from frame to frame so that reading a push allocates nothing once it has grown to the
/// deepest snapshot.
#[derive(Debug, Default)]
pub struct ExactLevels(Vec<wire::LevelAt>);

impl<'a> ExactBook<'a> {
    /// Every level of `frame` (the one this was read from), in order.
    pub fn levels<'l>(
        &'l self,
        frame: &'a str,
        at: &'l ExactLevels,
    ) -> impl Iterator<Item = KrakenLevel<'a>> + Clone + 'l {
        let text = move |r: &std::ops::Range<usize>| frame.get(r.clone()).unwrap_or_default();
        self.parts[..self.n].iter().flat_map(move |&(side, from, to)| {
            at.0.get(from..to).unwrap_or_default().iter().map(move |l| (side, text(&l.px), text(&l.sz)))
        })
    }
}

/// A v1 `book-N` push exactly as Kraken lays it out, read in one pass without serde:
/// `[id,{"a":[["p","q","t"(,"r")],..],"c":"123"}(,{..}),"book-N","PAIR"]`, one or two objects
/// with `as`/`bs` (snapshot) or `a`/`b` levels and an optional checksum, no whitespace, strings
/// without escapes. `None` for anything else (other channels, events, any difference at all):
/// [`decode_v1`] then reads the frame, so this path only takes frames it reads the same way.
pub fn book_v1_exact<'a>(frame: &'a str, at: &mut ExactLevels) -> Option<ExactBook<'a>> {
    at.0.clear();
    let mut c = wire::Exact::new(frame);
    c.lit(b"[")?;
    c.int()?;
    let mut book =
        ExactBook { pair: "", depth: 0, snapshot: false, checksum: None, parts: [(Side::Buy, 0, 0); 4], n: 0 };
    let mut objects = 0;
    while c.take(b",{") {
        objects += 1;
        // `as`, `bs`, `a`, `b` (serde's field order): where their levels are in `at`.
        let mut slots: [Option<(usize, usize)>; 4] = [None; 4];
        let mut checksum = None;
        loop {
            let slot = if c.take(b"\"as\":") {
                0
            } else if c.take(b"\"bs\":") {
                1
            } else if c.take(b"\"a\":") {
                2
            } else if c.take(b"\"b\":") {
                3
            } else {
                c.lit(b"\"c\":")?;
                let r = c.text()?;
                let t = c.str(r);
                let digits = !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
                // A repeated key is serde's error to report.
                (digits && checksum.is_none()).then_some(())?;
                checksum = Some(t.parse::<u32>().ok()?);
                if c.take(b",") {
                    continue;
                }
                break;
            };
            slots[slot].is_none().then_some(())?;
            let from = at.0.len();
            wire::levels_exact(&mut c, |l| at.0.push(l))?;
            slots[slot] = Some((from, at.0.len()));
            if !c.take(b",") {
                break;
            }
        }
        c.lit(b"}")?;
        for (slot, side) in [(0, Side::Sell), (1, Side::Buy), (2, Side::Sell), (3, Side::Buy)] {
            let Some((from, to)) = slots[slot] else { continue };
            *book.parts.get_mut(book.n)? = (side, from, to);
            book.n += 1;
            book.snapshot |= slot < 2;
        }
        if checksum.is_some() {
            book.checksum = checksum;
        }
    }
    (1..=2).contains(&objects).then_some(())?;
    c.lit(b",")?;
    let r = c.text()?;
    let depth = c.str(r).strip_prefix("book-")?;
    (!depth.is_empty() && depth.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
    book.depth = depth.parse().ok()?;
    c.lit(b",")?;
    let r = c.text()?;
    book.pair = c.str(r);
    c.lit(b"]")?;
    c.end()?;
    Some(book)
}

/// A v2 `book` push exactly as Kraken lays it out, read in one pass without serde:
/// `{"channel":"book","type":"..","data":[{"symbol":"..","bids":[{"price":N,"qty":N},..],
/// "asks":[..],"checksum":N(,"timestamp":"..")}]}` with one entry, every number a plain decimal
/// (no exponent: its text is then the decimal itself, with no conversion), no whitespace,
/// strings without escapes. `None` for anything else: [`decode_v2`] then reads the frame.
pub fn book_v2_exact<'a>(frame: &'a str, at: &mut ExactLevels) -> Option<ExactBook<'a>> {
    fn levels(c: &mut wire::Exact<'_>, at: &mut ExactLevels) -> Option<()> {
        c.lit(b"[")?;
        if c.take(b"]") {
            return Some(());
        }
        loop {
            c.lit(b"{\"price\":")?;
            let px = c.plain_number()?;
            c.lit(b",\"qty\":")?;
            let sz = c.plain_number()?;
            c.lit(b"}")?;
            at.0.push(wire::LevelAt { px, sz });
            if !c.take(b",") {
                break;
            }
        }
        c.lit(b"]")
    }
    at.0.clear();
    let mut c = wire::Exact::new(frame);
    c.lit(b"{\"channel\":\"book\",\"type\":")?;
    let ty = c.text()?;
    c.lit(b",\"data\":[{\"symbol\":")?;
    let symbol = c.text()?;
    c.lit(b",\"bids\":")?;
    levels(&mut c, at)?;
    let bids = at.0.len();
    c.lit(b",\"asks\":")?;
    levels(&mut c, at)?;
    c.lit(b",\"checksum\":")?;
    let checksum = u32::try_from(c.int()?).ok()?;
    if c.take(b",\"timestamp\":") {
        c.text()?;
    }
    c.lit(b"}]}")?;
    c.end()?;
    Some(ExactBook {
        pair: c.str(symbol),
        depth: 0,
        snapshot: c.str(ty) == "snapshot",
        checksum: Some(checksum),
        parts: [(Side::Buy, 0, bids), (Side::Sell, bids, at.0.len()), (Side::Buy, 0, 0), (Side::Buy, 0, 0)],
        n: 2,
    })
}

/// A trade read by [`trades_v2_exact`]: the trade, its venue time and where its symbol is in
/// the frame.
pub type PlacedTrade = (Trade, u64, std::ops::Range<usize>);

/// A v2 `trade` push exactly as Kraken lays it out, read in one pass without serde:
/// `{"channel":"trade","type":"..","data":[{"symbol":"..","side":"..","price":N,"qty":N,
/// "ord_type":"..","trade_id":N,"timestamp":".."},..]}`, every number a plain decimal and every
/// trade valid (its decimals parse); the trades go to `out` (cleared first). `None` for anything
/// else, which [`decode_v2`] then reads (and reports, when something is wrong).
pub fn trades_v2_exact(frame: &str, out: &mut Vec<PlacedTrade>) -> Option<()> {
    out.clear();
    let mut c = wire::Exact::new(frame);
    c.lit(b"{\"channel\":\"trade\",\"type\":")?;
    c.text()?;
    c.lit(b",\"data\":[")?;
    if !c.take(b"]") {
        loop {
            c.lit(b"{\"symbol\":")?;
            let symbol = c.text()?;
            c.lit(b",\"side\":")?;
            let side = c.text()?;
            c.lit(b",\"price\":")?;
            let price = c.plain_number()?;
            c.lit(b",\"qty\":")?;
            let qty = c.plain_number()?;
            c.lit(b",\"ord_type\":")?;
            c.text()?;
            c.lit(b",\"trade_id\":")?;
            let id = u64::try_from(c.int()?).ok()?;
            c.lit(b",\"timestamp\":")?;
            let ts = c.text()?;
            c.lit(b"}")?;
            let trade = Trade {
                price: Price::parse(c.str(price)).ok()?,
                qty: Qty::parse_size(c.str(qty)).ok()?,
                trade_id: id,
                aggressor: if c.str(side) == "sell" { Side::Sell } else { Side::Buy },
            };
            let ts_ns = UnixNanos::parse_rfc3339(c.str(ts)).map_or(0, |t| t.0);
            out.push((trade, ts_ns, symbol));
            if !c.take(b",") {
                break;
            }
        }
        c.lit(b"]")?;
    }
    c.lit(b"}")?;
    c.end()
}

/// Feeds a decimal's checksum form to `crc`: without `.` and leading zeros. With `pad_to`, the
/// fraction is first widened with zeros to that many digits (v2's fixed precision).
fn checksum_part(crc: &mut wire::Crc, v: &[u8], pad_to: Option<u8>) {
    const ZEROS: [u8; 32] = [b'0'; 32];
    // All zeros (and points): nothing, and a zero appended to it is a leading zero too.
    let Some(start) = v.iter().position(|&b| b != b'0' && b != b'.') else { return };
    let dot = v.iter().position(|&b| b == b'.');
    match dot {
        Some(d) if d > start => {
            crc.push(&v[start..d]);
            crc.push(&v[d + 1..]);
        }
        _ => crc.push(&v[start..]),
    }
    if let Some(pad) = pad_to {
        let frac = dot.map_or(0, |d| v.len() - d - 1);
        let mut missing = usize::from(pad).saturating_sub(frac);
        while missing > 0 {
            let n = missing.min(ZEROS.len());
            crc.push(&ZEROS[..n]);
            missing -= n;
        }
    }
}

impl KrakenBook {
    pub fn new(depth: usize) -> Self {
        Self { depth: depth.max(1), top_changed: true, ..Self::default() }
    }

    /// Replaces the book with a snapshot's levels; emits `Clear` + adds.
    ///
    /// # Errors
    /// A malformed decimal (the book is then left cleared).
    pub fn snapshot<L: AsLevel>(
        &mut self,
        levels: impl IntoIterator<Item = L>,
        out: &mut Vec<BookDelta>,
    ) -> Result<(), FeedError> {
        self.bids.clear();
        self.asks.clear();
        self.top_changed = true;
        out.push(delta(BookAction::Clear, Side::Buy, Price::ZERO, Qty::ZERO, DeltaFlags::SNAPSHOT));
        self.apply(levels, out, DeltaFlags::SNAPSHOT)
    }

    /// Applies an update's levels in order, then truncates to depth.
    ///
    /// # Errors
    /// A malformed decimal (levels before it stay applied; the caller marks the book stale).
    pub fn update<L: AsLevel>(
        &mut self,
        levels: impl IntoIterator<Item = L>,
        out: &mut Vec<BookDelta>,
    ) -> Result<(), FeedError> {
        self.apply(levels, out, 0)
    }

    fn apply<L: AsLevel>(
        &mut self,
        levels: impl IntoIterator<Item = L>,
        out: &mut Vec<BookDelta>,
        flags: u8,
    ) -> Result<(), FeedError> {
        for level in levels {
            let (side, p, q) = level.level();
            let k = key(p)?;
            let qty = Qty::parse_size(q).map_err(|source| FeedError::Decimal { field: "volume", source })?;
            // The core book holds what `Price` can; the rest only feeds the checksum.
            let price = i64::try_from(k).ok().map(Price::from_units);
            if !self.top_changed {
                self.top_changed = self.in_top(side, k);
            }
            let ladder = if side == Side::Buy { &mut self.bids } else { &mut self.asks };
            if qty.units() == 0 {
                if ladder.remove(&k).is_some() {
                    if let Some(price) = price {
                        out.push(delta(BookAction::Delete, side, price, qty, flags));
                    }
                }
            } else {
                let lit = |s: &str| Lit::new(s).map_err(|e| malformed(&e));
                if ladder.insert(k, (lit(p)?, lit(q)?)).is_none() && price.is_none() {
                    self.out_of_range += 1;
                }
                if let Some(price) = price {
                    out.push(delta(BookAction::Update, side, price, qty, flags));
                }
            }
        }
        // Levels pushed beyond the subscribed depth leave silently on Kraken's side (beyond
        // the top 10 too, unless the depth is 10 or less).
        self.top_changed |= self.depth <= 10;
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

    /// Whether a level at `k` on `side` is among the 10 the checksum reads (or would be, once
    /// inserted): a change anywhere deeper leaves the checksum as it was.
    fn in_top(&self, side: Side, k: i128) -> bool {
        match side {
            Side::Buy => self.bids.keys().rev().nth(9).is_none_or(|tenth| k >= *tenth),
            Side::Sell => self.asks.keys().nth(9).is_none_or(|tenth| k <= *tenth),
        }
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
    pub fn checksum_v2(&mut self, price_decimals: u8, qty_decimals: u8) -> u32 {
        self.checksum_with(Some(price_decimals), Some(qty_decimals))
    }

    /// The v1 checksum of the book as it stands.
    pub fn checksum(&mut self) -> u32 {
        self.checksum_with(None, None)
    }

    /// Top 10 asks (ascending) then top 10 bids (descending), each price and volume without
    /// `.` and leading zeros, CRC32 over the concatenation (fed piece by piece). Computed again
    /// only after a change reached either side's top 10 (or the padding changed).
    fn checksum_with(&mut self, price_pad: Option<u8>, qty_pad: Option<u8>) -> u32 {
        if let Some((pp, qp, c)) = self.last_checksum {
            if !self.top_changed && (pp, qp) == (price_pad, qty_pad) {
                return c;
            }
        }
        let c = self.compute_checksum(price_pad, qty_pad);
        self.last_checksum = Some((price_pad, qty_pad, c));
        self.top_changed = false;
        c
    }

    fn compute_checksum(&self, price_pad: Option<u8>, qty_pad: Option<u8>) -> u32 {
        let mut crc = wire::Crc::new();
        for (p, q) in self.asks.values().take(10).chain(self.bids.values().rev().take(10)) {
            checksum_part(&mut crc, p.as_bytes(), price_pad);
            checksum_part(&mut crc, q.as_bytes(), qty_pad);
        }
        crc.finish()
    }
}

/// `v` with exactly `d` fractional digits (zeros appended; never shortened).
#[cfg(test)]
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
pub fn plain_decimal(raw: &str) -> Result<Cow<'_, str>, FeedError> {
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
        return Ok(Cow::Borrowed(mantissa));
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
    Ok(Cow::Owned(if trimmed.starts_with('.') || trimmed.is_empty() {
        format!("0{trimmed}")
    } else {
        trimmed.to_owned()
    }))
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
pub enum KrakenV2<'a> {
    /// Heartbeats, status, acks; a `book` subscribe ack carries the depth.
    Control {
        book_depth: Option<(String, usize)>,
    },
    Trades(Vec<KrakenTrade<'a>>),
    /// `ticker` entries' best bid and offer.
    Quotes(Vec<KrakenQuote<'a>>),
    Book {
        snapshot: bool,
        books: Vec<KrakenV2Book>,
    },
    /// The `instrument` channel's pairs: symbol, price and quantity precision (the decimals
    /// the v2 checksum formats each number with).
    Instruments(Vec<(String, u8, u8)>),
}

/// One pair of the `instrument` channel (the fields argus needs).
#[derive(Deserialize)]
struct V2Pair {
    symbol: String,
    price_precision: u8,
    qty_precision: u8,
}

#[derive(Deserialize)]
struct V2Instruments {
    #[serde(default)]
    pairs: Vec<V2Pair>,
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

/// A v2 frame's top level, each part left unparsed until its channel is known.
#[derive(Deserialize)]
struct V2Frame<'a> {
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    channel: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    ty: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// Decodes one v2 frame (`{"channel": ...}` or a `{"method": ...}` ack).
///
/// # Errors
/// Malformed JSON or numbers.
pub fn decode_v2<'a>(frame: &'a str) -> Result<KrakenV2<'a>, FeedError> {
    let f: V2Frame<'_> = serde_json::from_str(frame)?;
    if f.method.is_some() {
        let r: Value = f.result.map_or(Ok(Value::Null), |r| serde_json::from_str(r.get()))?;
        let depth = (r["channel"] == "book")
            .then(|| Some((r["symbol"].as_str()?.to_owned(), usize::try_from(r["depth"].as_u64()?).ok()?)))
            .flatten();
        return Ok(KrakenV2::Control { book_depth: depth });
    }
    let text = |raw: Option<&RawValue>| raw.and_then(|v| serde_json::from_str::<Cow<'_, str>>(v.get()).ok());
    let channel = text(f.channel).ok_or_else(|| malformed("v2 frame without channel"))?;
    let data = f.data.map_or("null", RawValue::get);
    match &*channel {
        "book" => {
            let entries: Vec<RawV2Book<'_>> = serde_json::from_str(data)?;
            let mut books = Vec::with_capacity(entries.len());
            for b in entries {
                let mut levels = Vec::with_capacity(b.bids.len() + b.asks.len());
                for (side, ls) in [(Side::Buy, &b.bids), (Side::Sell, &b.asks)] {
                    for l in ls {
                        levels.push((
                            side,
                            plain_decimal(l.price.get())?.into_owned(),
                            plain_decimal(l.qty.get())?.into_owned(),
                        ));
                    }
                }
                books.push(KrakenV2Book { symbol: b.symbol, levels, checksum: b.checksum });
            }
            // Re-serialised captures may drop `type`; a frame without it is taken as an update.
            Ok(KrakenV2::Book { snapshot: text(f.ty).as_deref() == Some("snapshot"), books })
        }
        "trade" => {
            #[derive(Deserialize)]
            struct V2Trade<'a> {
                #[serde(borrow)]
                symbol: Option<&'a str>,
                #[serde(borrow)]
                price: Option<&'a RawValue>,
                #[serde(borrow)]
                qty: Option<&'a RawValue>,
                #[serde(default)]
                trade_id: wire::Num,
                #[serde(borrow)]
                side: Option<&'a str>,
                #[serde(borrow)]
                timestamp: Option<&'a str>,
            }
            let trades: Vec<V2Trade<'_>> = f.data.map_or(Ok(Vec::new()), |d| serde_json::from_str(d.get()))?;
            let mut out = Vec::with_capacity(trades.len());
            for t in trades {
                fn num(v: Option<&RawValue>) -> Result<Cow<'_, str>, FeedError> {
                    plain_decimal(v.map_or("null", RawValue::get))
                }
                let trade = Trade {
                    price: Price::parse(&num(t.price)?)
                        .map_err(|source| FeedError::Decimal { field: "price", source })?,
                    qty: Qty::parse_size(&num(t.qty)?).map_err(|source| FeedError::Decimal { field: "qty", source })?,
                    trade_id: t.trade_id.0,
                    aggressor: if t.side == Some("sell") { Side::Sell } else { Side::Buy },
                };
                let ts_ns = t.timestamp.and_then(UnixNanos::parse_rfc3339).map_or(0, |t| t.0);
                out.push(KrakenTrade { symbol: t.symbol.unwrap_or_default(), ts_ns, trade });
            }
            Ok(KrakenV2::Trades(out))
        }
        "ticker" => {
            #[derive(Deserialize)]
            struct V2Ticker<'a> {
                #[serde(borrow)]
                symbol: &'a str,
                #[serde(borrow)]
                bid: &'a RawValue,
                #[serde(borrow)]
                bid_qty: &'a RawValue,
                #[serde(borrow)]
                ask: &'a RawValue,
                #[serde(borrow)]
                ask_qty: &'a RawValue,
                #[serde(borrow)]
                timestamp: Option<&'a str>,
            }
            let tickers: Vec<V2Ticker<'_>> = f.data.map_or(Ok(Vec::new()), |d| serde_json::from_str(d.get()))?;
            let mut out = Vec::with_capacity(tickers.len());
            for t in tickers {
                let n = |v: &'a RawValue| plain_decimal(v.get());
                let quote = quote(&n(t.bid)?, &n(t.bid_qty)?, &n(t.ask)?, &n(t.ask_qty)?)?;
                let ts_ns = t.timestamp.and_then(UnixNanos::parse_rfc3339).map_or(0, |t| t.0);
                out.push(KrakenQuote { symbol: t.symbol, ts_ns, quote });
            }
            Ok(KrakenV2::Quotes(out))
        }
        "instrument" => {
            let i: V2Instruments = serde_json::from_str(data)?;
            Ok(KrakenV2::Instruments(
                i.pairs.into_iter().map(|p| (p.symbol, p.price_precision, p.qty_precision)).collect(),
            ))
        }
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
    fn checksum_parts_match_the_recipe_spelled_out() {
        let naive = |v: &str, d: Option<u8>| {
            let v = d.map_or_else(|| v.to_owned(), |d| pad(v, d));
            let digits: String = v.chars().filter(|c| *c != '.').collect();
            digits.trim_start_matches('0').to_owned()
        };
        let values =
            ["0.05005", "123.45", "10.0", "0.0", "0", "100", "0.00000500", "45281.0", "9999999997.00000", ".5", "5."];
        for v in values {
            for d in [None, Some(0), Some(1), Some(5), Some(9)] {
                let mut crc = wire::Crc::new();
                checksum_part(&mut crc, v.as_bytes(), d);
                assert_eq!(crc.finish(), crc32fast::hash(naive(v, d).as_bytes()), "{v} {d:?}");
            }
        }
    }

    #[test]
    fn kept_checksum_equals_one_computed_afresh_after_every_update() {
        // Changes deep in a book keep the last checksum; any within either side's top 10
        // (inserts, deletes, truncation at a shallow depth) must recompute it. `v1` is checked
        // with v1's recipe, `v2` (the same updates) with v2's padding.
        for depth in [10, 12, 30] {
            let (mut v1, mut out) = (KrakenBook::new(depth), Vec::new());
            let lv = |side, p: u32, q: u32| (side, format!("{}.{:02}", p / 100, p % 100), format!("{q}.5"));
            let mut snap = Vec::new();
            for i in 0..depth as u32 {
                snap.push(lv(Side::Buy, 10_000 - 10 * i, i + 1));
                snap.push(lv(Side::Sell, 10_010 + 10 * i, i + 1));
            }
            v1.snapshot(&snap, &mut out).unwrap();
            let mut v2 = v1.clone();
            let mut rng = 0x2545_f491_u64;
            let (mut kept, mut recomputed) = (0, 0);
            let mut update = |v1: &mut KrakenBook, v2: &mut KrakenBook, level: &(Side, String, String)| {
                v1.update(std::slice::from_ref(level), &mut out).unwrap();
                v2.update(std::slice::from_ref(level), &mut out).unwrap();
                let changed = v1.top_changed;
                assert_eq!(v1.checksum(), v1.compute_checksum(None, None), "depth {depth}: {level:?}");
                assert_eq!(v2.checksum_v2(4, 3), v2.compute_checksum(Some(4), Some(3)), "depth {depth}: {level:?}");
                changed
            };
            for _ in 0..3_000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let side = if rng & 1 == 0 { Side::Buy } else { Side::Sell };
                // Mostly on the snapshot's grid, around the 10th level and beyond.
                let off = (rng >> 8) as u32 % 40 * 5;
                let px = if side == Side::Buy { 10_005 - off } else { 10_005 + off };
                let q = if (rng >> 20).is_multiple_of(3) { 0 } else { (rng >> 24) as u32 % 50 };
                if update(&mut v1, &mut v2, &lv(side, px, q)) {
                    recomputed += 1;
                } else {
                    kept += 1;
                }
            }
            // The 10th level itself, on each side (its volume is in the checksum), and the 11th.
            for side in [Side::Buy, Side::Sell] {
                for nth in [9, 10] {
                    let at = if side == Side::Buy { v1.bids.keys().rev().nth(nth) } else { v1.asks.keys().nth(nth) };
                    let Some(&k) = at else { continue };
                    let changed = update(&mut v1, &mut v2, &lv(side, u32::try_from(k / 10_000_000).unwrap(), 77));
                    assert_eq!(changed, nth == 9 || depth <= 10, "depth {depth}: level {nth} of {side:?}");
                }
            }
            assert!(recomputed > 100, "depth {depth}: {recomputed} recomputed");
            if depth > 10 {
                assert!(kept > 100, "depth {depth}: only {kept} updates kept the checksum");
            } else {
                assert_eq!(kept, 0, "a book-10 truncation can reach the top 10");
            }
        }
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
        // Both sides of the 64-bit fast path, and what neither takes.
        assert_eq!(key("999999999.999999999").unwrap(), 999_999_999_999_999_999);
        assert_eq!(key("9999999999.999999999").unwrap(), 9_999_999_999_999_999_999);
        assert_eq!(key("99999999999.5").unwrap(), 99_999_999_999_500_000_000);
        assert_eq!(key("12345678901234567890123456.78").unwrap(), 12_345_678_901_234_567_890_123_456_780_000_000);
        assert_eq!(
            (key("1.").unwrap(), key("0").unwrap(), key("2.5000000000").unwrap()),
            (1_000_000_000, 0, 2_500_000_000)
        );
        for bad in ["", ".5", "1.x", "1.5a", "x1", "1 ", "12345678901.2.3", "1.00000000x", "1\u{663}"] {
            assert!(key(bad).is_err(), "{bad}");
        }
        // The 64-bit path and the 128-bit one agree on every string, good or bad.
        let mut r = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r % n
        };
        let mut fast = 0;
        for _ in 0..200_000 {
            let mut t = String::new();
            for _ in 0..next(12) {
                t.push(char::from(b'0' + next(10) as u8));
            }
            if next(4) > 0 {
                t.push('.');
                for _ in 0..next(12) {
                    t.push(char::from(b'0' + next(10) as u8));
                }
            }
            if next(50) == 0 && !t.is_empty() {
                let at = next(t.len() as u64) as usize;
                t.replace_range(at..=at, ["x", "-", "/", ":", " "][next(5) as usize]);
            }
            let (a, b) = (key(&t).ok(), key_wide(&t).ok());
            assert_eq!(a, b, "`{t}`");
            fast += usize::from(a.is_some() && t.split('.').all(|p| p.len() <= 9));
        }
        assert!(fast > 50_000, "only {fast} strings took the 64-bit path");
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
