//! Binance spot / USD-M frames to core events, without allocating.
//!
//! One hand-written serde visitor reads trade, aggTrade, depthUpdate and bookTicker frames, raw or
//! wrapped in the combined-stream envelope `{"stream":..,"data":{..}}`. Depth levels are parsed
//! straight into the caller's output buffer, so a frame costs no heap allocation.

use std::fmt;

use argus_core::{
    parse_fixed, parse_fixed_prefix, BookAction, BookDelta, DeltaFlags, InstrumentId, Liquidation, MarkPrice,
    MarketEvent, MarketEventKind, Price, Qty, Quote, Side, Trade, UnixNanos,
};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::FeedError;

/// What a frame turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// One trade event was written.
    Trade,
    /// One quote event was written.
    BookTicker {
        /// `u`: the order book update id the quote reflects (0 when the frame has none).
        update_id: u64,
    },
    /// A depth diff: its level deltas were written, flagged but not yet sequenced by a sync.
    Depth {
        /// `U`: first update id in the event.
        first_update_id: u64,
        /// `u`: final update id in the event.
        final_update_id: u64,
        /// `pu` (USD-M only): final update id of the previous event.
        prev_final_update_id: Option<u64>,
    },
    /// USD-M `markPriceUpdate`: one mark event (mark, index, funding) was written.
    Mark,
    /// USD-M `forceOrder`: one liquidation event was written.
    Liquidation,
    /// A well-formed frame of a kind argus does not use (klines, subscription acks, ...).
    Ignored,
}

/// Decodes Binance frames for a fixed set of symbols.
#[derive(Debug, Clone, Default)]
pub struct BinanceNormalizer {
    symbols: Vec<(String, InstrumentId)>,
    any_symbol: bool,
}

impl BinanceNormalizer {
    /// `symbols`: venue symbols (any case) and the instrument each maps to.
    pub fn new<'a>(symbols: impl IntoIterator<Item = (&'a str, InstrumentId)>) -> Self {
        Self { symbols: symbols.into_iter().map(|(s, id)| (s.to_ascii_uppercase(), id)).collect(), any_symbol: false }
    }

    /// Maps one more venue symbol (any case) to `id`.
    pub fn add_symbol(&mut self, symbol: &str, id: InstrumentId) {
        self.symbols.push((symbol.to_ascii_uppercase(), id));
    }

    /// Like [`Self::normalize`], but maps every symbol to instrument 0 (for tools that follow
    /// whatever a recording carries).
    ///
    /// # Errors
    /// As [`Self::normalize`], minus unknown symbols.
    pub fn normalize_any_symbol(
        &mut self,
        frame: &[u8],
        ts_recv: UnixNanos,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Decoded, FeedError> {
        self.any_symbol = true;
        self.normalize(frame, ts_recv, out)
    }

    fn instrument(&self, symbol: &str) -> Result<InstrumentId, FeedError> {
        if self.any_symbol {
            return Ok(InstrumentId(0));
        }
        // Venues send the symbols upper case, as they are kept: the exact compare almost
        // always answers.
        self.symbols
            .iter()
            .find(|(s, _)| s == symbol)
            .or_else(|| self.symbols.iter().find(|(s, _)| s.eq_ignore_ascii_case(symbol)))
            .map(|(_, id)| *id)
            .ok_or_else(|| FeedError::UnknownSymbol(symbol.to_owned()))
    }

    /// Decodes one frame, appending its events to `out`.
    ///
    /// # Errors
    /// Malformed JSON, decimals or missing fields, or an unknown symbol. On error `out` is left as
    /// it was.
    pub fn normalize(
        &self,
        frame: &[u8],
        ts_recv: UnixNanos,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Decoded, FeedError> {
        self.normalize_with(Input::Bytes(frame), ts_recv, out, First::Exact)
    }

    /// [`Self::normalize`] for a frame already known to be UTF-8 (a websocket text frame, a
    /// line read as a `String`), whose strings are then sliced out without validating the
    /// bytes a second time: the live path.
    ///
    /// # Errors
    /// As [`Self::normalize`].
    pub fn normalize_str(
        &self,
        frame: &str,
        ts_recv: UnixNanos,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Decoded, FeedError> {
        self.normalize_with(Input::Text(frame), ts_recv, out, First::Exact)
    }

    /// [`Self::normalize`] through the serde visitor alone: the reference the faster readers
    /// are held equal to (by the unit tests and the `binance` fuzz target).
    ///
    /// # Errors
    /// As [`Self::normalize`].
    #[doc(hidden)]
    pub fn normalize_reference(
        &self,
        frame: &[u8],
        ts_recv: UnixNanos,
        out: &mut Vec<MarketEvent>,
    ) -> Result<Decoded, FeedError> {
        self.normalize_with(Input::Bytes(frame), ts_recv, out, First::Serde)
    }

    /// [`Self::normalize`], starting at the path `first` (tests hold the three equal).
    fn normalize_with(
        &self,
        input: Input<'_>,
        ts_recv: UnixNanos,
        out: &mut Vec<MarketEvent>,
        first: First,
    ) -> Result<Decoded, FeedError> {
        let start = out.len();
        let result = self.normalize_inner(input, ts_recv, out, start, first);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn normalize_inner(
        &self,
        input: Input<'_>,
        ts_recv: UnixNanos,
        out: &mut Vec<MarketEvent>,
        start: usize,
        first: First,
    ) -> Result<Decoded, FeedError> {
        let fast = first != First::Serde;
        let text = match input {
            Input::Text(t) => Some(t),
            // The fast path needs text; bytes that are not UTF-8 go to serde, which names the error.
            Input::Bytes(b) if fast => std::str::from_utf8(b).ok(),
            Input::Bytes(_) => None,
        };
        let frame = match input {
            Input::Text(t) => t.as_bytes(),
            Input::Bytes(b) => b,
        };
        if first == First::Exact {
            if let Some(kind) = text.and_then(|t| self.exact(t, ts_recv, out, start)) {
                return Ok(kind);
            }
        }
        let mut f = Fields::default();
        if text.is_none_or(|t| Scanner::frame(t, &mut f, out, ts_recv).is_none()) {
            // Anything the fast scanner does not take (escapes, non-ASCII text, forceOrder
            // objects, malformed JSON) goes through serde, which decides and names the error.
            out.truncate(start);
            f = Fields::default();
            let mut de = serde_json::Deserializer::from_slice(frame);
            FrameSeed { f: &mut f, out, ts_recv }.deserialize(&mut de)?;
            de.end()?;
        }
        let kind = f.classify()?;
        if kind == Decoded::Ignored {
            out.truncate(start);
            return Ok(kind);
        }
        let Some(symbol) = f.s else { return Err(FeedError::MissingField("s")) };
        let instrument = self.instrument(symbol)?;
        match kind {
            Decoded::Mark => {
                let mark = MarkPrice {
                    mark: decimal("p", f.p)?,
                    // 2019 frames carry only the mark and funding.
                    index: f.index.map_or(Ok(Price::ZERO), |s| decimal("i", Some(s)))?,
                    funding_rate: f.funding_rate.map_or(Ok(Price::ZERO), |s| decimal("r", Some(s)))?,
                    next_funding: f.trade_time.map_or(UnixNanos(0), UnixNanos::from_millis),
                };
                out.push(event(f.event_time, ts_recv, instrument, MarketEventKind::Mark(mark)));
            }
            Decoded::Liquidation => {
                let o = f.force.as_ref().ok_or(FeedError::MissingField("o"))?;
                let side = match o.S {
                    "BUY" => Side::Buy,
                    "SELL" => Side::Sell,
                    _ => return Err(FeedError::MissingField("o.S")),
                };
                let filled: Qty = decimal("o.z", o.z.or(Some("0")))?;
                let avg: Price = decimal("o.ap", o.ap.or(Some("0")))?;
                let liq = Liquidation {
                    side,
                    price: if avg.units() > 0 { avg } else { decimal("o.p", Some(o.p))? },
                    qty: if filled.units() > 0 { filled } else { decimal("o.q", Some(o.q))? },
                };
                out.push(event(o.T.or(f.event_time), ts_recv, instrument, MarketEventKind::Liquidation(liq)));
            }
            Decoded::Trade => {
                let trade = Trade {
                    price: decimal("p", f.p)?,
                    qty: decimal("q", f.q)?,
                    // 2019 USD-M aggTrades carry no id at all.
                    trade_id: f.t.or(f.a_num).unwrap_or(0),
                    // `m`: the buyer is the maker, so the taker sold.
                    aggressor: match f.m {
                        Some(true) => Side::Sell,
                        Some(false) => Side::Buy,
                        None => return Err(FeedError::MissingField("m")),
                    },
                };
                out.push(event(f.trade_time.or(f.event_time), ts_recv, instrument, MarketEventKind::Trade(trade)));
            }
            Decoded::BookTicker { .. } => {
                let quote = Quote {
                    bid_price: decimal("b", f.b_str)?,
                    bid_qty: decimal("B", f.bid_qty)?,
                    ask_price: decimal("a", f.a_str)?,
                    ask_qty: decimal("A", f.ask_qty)?,
                };
                out.push(event(f.event_time, ts_recv, instrument, MarketEventKind::Quote(quote)));
            }
            Decoded::Depth { final_update_id, .. } => {
                let ts_exchange = f.event_time.map_or(UnixNanos(0), UnixNanos::from_millis);
                for ev in &mut out[start..] {
                    ev.instrument = instrument;
                    ev.ts_exchange = ts_exchange;
                    if let MarketEventKind::Delta(d) = &mut ev.kind {
                        d.sequence = final_update_id;
                    }
                }
                mark_last(&mut out[start..]);
            }
            Decoded::Ignored => {}
        }
        Ok(kind)
    }
}

impl BinanceNormalizer {
    /// The frames that are nearly all of a session (spot `trade`, `bookTicker` and
    /// `depthUpdate`, bare or in the combined-stream envelope), matched against the exact
    /// layout Binance sends them in: every key in its place, compared as one run of bytes with
    /// the punctuation around it. `None` (with `out` as it was) for anything else, which the
    /// general scanner then reads; both give the same events for every frame this takes
    /// (tests hold the three paths equal on every real and mangled frame).
    fn exact(&self, text: &str, ts_recv: UnixNanos, out: &mut Vec<MarketEvent>, start: usize) -> Option<Decoded> {
        let mut c = Scanner { s: text, b: text.as_bytes(), i: 0 };
        let wrapped = c.take(b"{\"stream\":");
        if wrapped {
            c.text()?;
            c.lit(b",\"data\":")?;
        }
        let kind = if c.take(b"{\"e\":\"trade\",\"E\":") {
            c.number()?;
            // USD-M sends the trade time here, spot after the quantity.
            let usdm_time = if c.take(b",\"T\":") { Some(c.number()?) } else { None };
            c.lit(b",\"s\":")?;
            let symbol = c.text()?;
            c.lit(b",\"t\":")?;
            let trade_id = c.number()?;
            c.lit(b",\"p\":")?;
            let price = c.text()?;
            c.lit(b",\"q\":")?;
            let qty = c.text()?;
            let (trade_time, buyer_maker) = match usdm_time {
                Some(t) => {
                    c.lit(b",\"X\":")?;
                    c.text()?;
                    c.lit(b",\"m\":")?;
                    (t, c.boolean()?)
                }
                None => {
                    c.lit(b",\"T\":")?;
                    let t = c.number()?;
                    c.lit(b",\"m\":")?;
                    let m = c.boolean()?;
                    c.lit(b",\"M\":")?;
                    c.boolean()?;
                    (t, m)
                }
            };
            c.close(wrapped)?;
            let trade = Trade {
                price: Price::parse(price).ok()?,
                qty: Qty::parse_size(qty).ok()?,
                trade_id,
                aggressor: if buyer_maker { Side::Sell } else { Side::Buy },
            };
            let instrument = self.instrument(symbol).ok()?;
            out.push(event(Some(trade_time), ts_recv, instrument, MarketEventKind::Trade(trade)));
            Decoded::Trade
        } else if let Some(usdm) = c.either(b"{\"u\":", b"{\"e\":\"bookTicker\",\"u\":") {
            // USD-M names the event and ends with the transaction and event times.
            let update_id = c.number()?;
            c.lit(b",\"s\":")?;
            let symbol = c.text()?;
            c.lit(b",\"b\":")?;
            let bid = c.text()?;
            c.lit(b",\"B\":")?;
            let bid_qty = c.text()?;
            c.lit(b",\"a\":")?;
            let ask = c.text()?;
            c.lit(b",\"A\":")?;
            let ask_qty = c.text()?;
            let event_time = if usdm {
                c.lit(b",\"T\":")?;
                c.number()?;
                c.lit(b",\"E\":")?;
                Some(c.number()?)
            } else {
                None
            };
            c.close(wrapped)?;
            let quote = Quote {
                bid_price: Price::parse(bid).ok()?,
                bid_qty: Qty::parse_size(bid_qty).ok()?,
                ask_price: Price::parse(ask).ok()?,
                ask_qty: Qty::parse_size(ask_qty).ok()?,
            };
            let instrument = self.instrument(symbol).ok()?;
            out.push(event(event_time, ts_recv, instrument, MarketEventKind::Quote(quote)));
            Decoded::BookTicker { update_id }
        } else if c.take(b"{\"e\":\"depthUpdate\",\"E\":") {
            let event_time = c.number()?;
            // USD-M adds the transaction time and `pu`.
            if c.take(b",\"T\":") {
                c.number()?;
            }
            c.lit(b",\"s\":")?;
            let symbol = c.text()?;
            c.lit(b",\"U\":")?;
            let first_update_id = c.number()?;
            c.lit(b",\"u\":")?;
            let final_update_id = c.number()?;
            let prev_final_update_id = if c.take(b",\"pu\":") { Some(c.number()?) } else { None };
            // Everything but the levels comes first, so each delta is written whole.
            let head = MarketEvent {
                instrument: self.instrument(symbol).ok()?,
                ts_exchange: UnixNanos::from_millis(event_time),
                ..delta_event(Side::Buy, Price::ZERO, Qty::ZERO, ts_recv)
            };
            let bid = BookDelta {
                action: BookAction::Update,
                side: Side::Buy,
                flags: DeltaFlags::default(),
                price: Price::ZERO,
                qty: Qty::ZERO,
                sequence: final_update_id,
            };
            let ask = BookDelta { side: Side::Sell, ..bid };
            let levels = c.take(b",\"b\":") && c.levels_exact(&head, bid, out).is_some();
            let levels = levels && c.take(b",\"a\":") && c.levels_exact(&head, ask, out).is_some();
            if !levels || c.close(wrapped).is_none() {
                out.truncate(start);
                return None;
            }
            mark_last(&mut out[start..]);
            Decoded::Depth { first_update_id, final_update_id, prev_final_update_id }
        } else {
            return None;
        };
        Some(kind)
    }
}

fn event(ms: Option<u64>, ts_recv: UnixNanos, instrument: InstrumentId, kind: MarketEventKind) -> MarketEvent {
    MarketEvent {
        ts_exchange: ms.map_or(UnixNanos(0), UnixNanos::from_millis),
        ts_recv,
        instrument,
        decode_ns: 0,
        kind,
    }
}

/// Flags the last of a message's deltas: the book is whole again after it.
fn mark_last(deltas: &mut [MarketEvent]) {
    if let Some(MarketEventKind::Delta(d)) = deltas.last_mut().map(|e| &mut e.kind) {
        d.flags.0 |= DeltaFlags::LAST;
    }
}

pub(crate) fn delta_event(side: Side, price: Price, qty: Qty, ts_recv: UnixNanos) -> MarketEvent {
    MarketEvent {
        ts_exchange: UnixNanos(0),
        ts_recv,
        instrument: InstrumentId(0),
        decode_ns: 0,
        kind: MarketEventKind::Delta(BookDelta {
            action: BookAction::Update,
            side,
            flags: DeltaFlags::default(),
            price,
            qty,
            sequence: 0,
        }),
    }
}

fn decimal<T: FromDecimal>(field: &'static str, s: Option<&str>) -> Result<T, FeedError> {
    let Some(s) = s else { return Err(FeedError::MissingField(field)) };
    T::from_decimal(s).map_err(|source| FeedError::Decimal { field, source })
}

trait FromDecimal: Sized {
    fn from_decimal(s: &str) -> Result<Self, argus_core::ParseFixedError>;
}
impl FromDecimal for Price {
    fn from_decimal(s: &str) -> Result<Self, argus_core::ParseFixedError> {
        Price::parse(s)
    }
}
impl FromDecimal for Qty {
    fn from_decimal(s: &str) -> Result<Self, argus_core::ParseFixedError> {
        Qty::parse_size(s)
    }
}

/// The first of the three readers a frame is offered to; each passes on what it does not take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum First {
    /// [`BinanceNormalizer::exact`]: the usual frames in Binance's own layout.
    Exact,
    /// [`Scanner::frame`]: any strict JSON without escapes or non-ASCII text.
    #[cfg_attr(not(test), allow(dead_code, reason = "only the tests start here"))]
    Scanner,
    /// The serde visitor: everything, and the one that names errors.
    Serde,
}

/// A frame as the caller has it.
#[derive(Clone, Copy)]
enum Input<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
}

/// Fields seen in a frame; borrowed from the frame bytes.
#[derive(Default)]
struct Fields<'de> {
    e: Option<&'de str>,
    event_time: Option<u64>,
    trade_time: Option<u64>,
    s: Option<&'de str>,
    t: Option<u64>,
    p: Option<&'de str>,
    q: Option<&'de str>,
    m: Option<bool>,
    first_id: Option<u64>,
    final_id: Option<u64>,
    prev_final_id: Option<u64>,
    b_str: Option<&'de str>,
    a_str: Option<&'de str>,
    a_num: Option<u64>,
    bid_qty: Option<&'de str>,
    ask_qty: Option<&'de str>,
    levels: bool,
    result_or_id: bool,
    index: Option<&'de str>,
    funding_rate: Option<&'de str>,
    force: Option<ForceOrder<'de>>,
}

/// The `o` object of a USD-M `forceOrder` frame.
#[derive(serde::Deserialize)]
#[allow(non_snake_case)]
struct ForceOrder<'a> {
    s: &'a str,
    S: &'a str,
    q: &'a str,
    p: &'a str,
    ap: Option<&'a str>,
    z: Option<&'a str>,
    T: Option<u64>,
}

impl Fields<'_> {
    fn classify(&self) -> Result<Decoded, FeedError> {
        match self.e {
            Some("trade") | Some("aggTrade") => Ok(Decoded::Trade),
            Some("depthUpdate") => Ok(Decoded::Depth {
                first_update_id: self.first_id.ok_or(FeedError::MissingField("U"))?,
                final_update_id: self.final_id.ok_or(FeedError::MissingField("u"))?,
                prev_final_update_id: self.prev_final_id,
            }),
            Some("bookTicker") => Ok(Decoded::BookTicker { update_id: self.final_id.unwrap_or(0) }),
            Some("markPriceUpdate") => Ok(Decoded::Mark),
            Some("forceOrder") => Ok(Decoded::Liquidation),
            Some(_) => Ok(Decoded::Ignored),
            None if self.b_str.is_some() && self.a_str.is_some() && self.final_id.is_some() => {
                Ok(Decoded::BookTicker { update_id: self.final_id.unwrap_or(0) })
            }
            // Subscription acknowledgements: {"result":null,"id":1}.
            None if self.result_or_id => Ok(Decoded::Ignored),
            None => Err(FeedError::UnknownMessage),
        }
    }
}

struct FrameSeed<'f, 'de, 'o> {
    f: &'f mut Fields<'de>,
    out: &'o mut Vec<MarketEvent>,
    ts_recv: UnixNanos,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_, 'de, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_, 'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Binance websocket frame object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let FrameSeed { f, out, ts_recv } = self;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "data" => map.next_value_seed(FrameSeed { f: &mut *f, out: &mut *out, ts_recv })?,
                "e" => f.e = Some(map.next_value()?),
                "E" => f.event_time = Some(map.next_value()?),
                "T" => f.trade_time = Some(map.next_value()?),
                "s" => f.s = Some(map.next_value()?),
                "t" => f.t = Some(map.next_value()?),
                "p" => f.p = Some(map.next_value()?),
                "q" => f.q = Some(map.next_value()?),
                "m" => f.m = Some(map.next_value()?),
                "U" => f.first_id = Some(map.next_value()?),
                "u" => f.final_id = Some(map.next_value()?),
                "pu" => f.prev_final_id = Some(map.next_value()?),
                "i" => f.index = Some(map.next_value()?),
                "r" => f.funding_rate = Some(map.next_value()?),
                // `forceOrder`'s order object; in 24hrTicker `o` is the open price.
                "o" => {
                    let raw: &'de serde_json::value::RawValue = map.next_value()?;
                    if raw.get().starts_with('{') {
                        let o: ForceOrder<'de> = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                        f.s = f.s.or(Some(o.s));
                        f.force = Some(o);
                    }
                }
                "B" => f.bid_qty = Some(map.next_value()?),
                "A" => f.ask_qty = Some(map.next_value()?),
                "b" => match side_value(map.next_value()?, Side::Buy, ts_recv, out).map_err(de::Error::custom)? {
                    SideValue::Str(s) => f.b_str = Some(s),
                    SideValue::Num(_) => return Err(de::Error::custom("`b` must be a price or levels")),
                    SideValue::Levels => f.levels = true,
                },
                "a" => match side_value(map.next_value()?, Side::Sell, ts_recv, out).map_err(de::Error::custom)? {
                    SideValue::Str(s) => f.a_str = Some(s),
                    SideValue::Num(n) => f.a_num = Some(n),
                    SideValue::Levels => f.levels = true,
                },
                "result" | "id" => {
                    f.result_or_id = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `b`/`a` are a price string (bookTicker), an id (aggTrade `a`) or level arrays (depthUpdate).
enum SideValue<'de> {
    Str(&'de str),
    Num(u64),
    Levels,
}

/// Reads a `b`/`a` value, already checked to be well-formed JSON. Depth levels are scanned
/// straight from the bytes into `out` (the generic visitor cost more than the levels' parse).
fn side_value<'de>(
    raw: &'de serde_json::value::RawValue,
    side: Side,
    ts_recv: UnixNanos,
    out: &mut Vec<MarketEvent>,
) -> Result<SideValue<'de>, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'[') => {
            let mut levels = Scanner { s: text, b: text.as_bytes(), i: 0 };
            levels.read(side, ts_recv, out)?;
            Ok(SideValue::Levels)
        }
        Some(b'"') => serde_json::from_str(text).map(SideValue::Str).map_err(|e| e.to_string()),
        _ => serde_json::from_str(text).map(SideValue::Num).map_err(|e| e.to_string()),
    }
}

/// A cursor over frame bytes: `[[price, qty], ...]` level arrays with both as JSON strings,
/// and the fast path over whole frames.
struct Scanner<'a> {
    /// The text, valid UTF-8 as a whole (checked once), so each string in it is sliced out
    /// without validating it again.
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Nesting the fast path skips through before it defers to serde.
const FAST_MAX_DEPTH: u32 = 16;

impl<'a> Scanner<'a> {
    /// Reads a whole frame the way [`FrameSeed`] does, or `None` for anything it does not take
    /// (then nothing it wrote counts): no escapes, ASCII text only, strict JSON numbers.
    fn frame(frame: &'a str, f: &mut Fields<'a>, out: &mut Vec<MarketEvent>, ts_recv: UnixNanos) -> Option<()> {
        let mut c = Scanner { s: frame, b: frame.as_bytes(), i: 0 };
        c.object(f, out, ts_recv, 0)?;
        (c.peek().is_none()).then_some(())
    }

    fn object(&mut self, f: &mut Fields<'a>, out: &mut Vec<MarketEvent>, ts_recv: UnixNanos, depth: u32) -> Option<()> {
        if depth > FAST_MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            // One-letter keys (nearly all of them) dispatch on their byte.
            match key {
                [c] => match c {
                    b'e' => f.e = Some(self.text()?),
                    b'E' => f.event_time = Some(self.number()?),
                    b'T' => f.trade_time = Some(self.number()?),
                    b's' => f.s = Some(self.text()?),
                    b't' => f.t = Some(self.number()?),
                    b'p' => f.p = Some(self.text()?),
                    b'q' => f.q = Some(self.text()?),
                    b'm' => f.m = Some(self.boolean()?),
                    b'U' => f.first_id = Some(self.number()?),
                    b'u' => f.final_id = Some(self.number()?),
                    b'i' => f.index = Some(self.text()?),
                    b'r' => f.funding_rate = Some(self.text()?),
                    b'B' => f.bid_qty = Some(self.text()?),
                    b'A' => f.ask_qty = Some(self.text()?),
                    b'b' | b'a' => {
                        let (side, is_bid) = if *c == b'b' { (Side::Buy, true) } else { (Side::Sell, false) };
                        match self.peek()? {
                            b'[' => {
                                self.read(side, ts_recv, out).ok()?;
                                f.levels = true;
                            }
                            b'"' if is_bid => f.b_str = Some(self.text()?),
                            b'"' => f.a_str = Some(self.text()?),
                            _ if is_bid => return None,
                            _ => f.a_num = Some(self.number()?),
                        }
                    }
                    // forceOrder's nested order (or 24hrTicker's open): serde's path.
                    b'o' => return None,
                    _ => self.skip(0)?,
                },
                b"data" => self.object(f, out, ts_recv, depth + 1)?,
                b"pu" => f.prev_final_id = Some(self.number()?),
                b"result" | b"id" => {
                    f.result_or_id = true;
                    self.skip(0)?;
                }
                _ => self.skip(0)?,
            }
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An object key's bytes (no escapes or control bytes; keys are only compared).
    #[inline]
    fn key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let len = rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[len] != b'"' || !rest[..len].is_ascii() {
            return None;
        }
        self.i += len + 1;
        Some(&rest[..len])
    }

    /// A string without escapes or non-ASCII bytes.
    #[inline]
    fn text(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let len = rest.iter().position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))?;
        if rest[len] != b'"' {
            return None;
        }
        let start = self.i;
        self.i += len + 1;
        self.s.get(start..start + len)
    }

    /// A JSON integer that fits `u64` (no sign, fraction, exponent or leading zero).
    #[inline]
    fn number(&mut self) -> Option<u64> {
        self.peek()?;
        let rest = &self.b[self.i..];
        // One pass: up to 19 digits cannot overflow a u64; longer numbers go to serde.
        let (mut v, mut digits) = (0_u64, 0);
        while let Some(d) = rest.get(digits).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9) {
            if digits == 19 {
                return None;
            }
            v = v * 10 + u64::from(d);
            digits += 1;
        }
        if digits == 0 || (digits > 1 && rest[0] == b'0') || matches!(rest.get(digits), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.i += digits;
        Some(v)
    }

    fn boolean(&mut self) -> Option<bool> {
        self.peek()?;
        let rest = &self.b[self.i..];
        let (v, n) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.i += n;
        Some(v)
    }

    /// Skips one well-formed value (strictly: what serde would accept; `None` otherwise).
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > FAST_MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.text().map(drop),
            b'{' | b'[' => {
                let close = if self.next()? == b'{' { b'}' } else { b']' };
                let object = close == b'}';
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if object {
                        self.key()?;
                        self.eat(b':')?;
                    }
                    self.skip(depth + 1)?;
                    match self.next()? {
                        b',' => {}
                        c if c == close => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' | b'f' => self.boolean().map(drop),
            b'n' if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Some(())
            }
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`
    fn skip_number(&mut self) -> Option<()> {
        let b = self.b;
        let mut i = self.i;
        let digits = |i: &mut usize| {
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - start
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let start = i;
        let n = digits(&mut i);
        if n == 0 || (n > 1 && b[start] == b'0') {
            return None;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
        }
        self.i = i;
        Some(())
    }

    /// Whether `bytes` come next, exactly (no whitespace skipped), stepping over them if so.
    #[inline]
    fn take<const N: usize>(&mut self, bytes: &[u8; N]) -> bool {
        // A fixed-size compare: a few integer compares, not a `memcmp` call.
        let hit = self.b[self.i..].first_chunk::<N>() == Some(bytes);
        if hit {
            self.i += N;
        }
        hit
    }

    /// [`Self::take`] where nothing else may come.
    #[inline]
    fn lit<const N: usize>(&mut self, bytes: &[u8; N]) -> Option<()> {
        self.take(bytes).then_some(())
    }

    /// [`Self::read`] for levels laid out exactly as Binance sends them
    /// (`[["61837.63000000","3.78826000"],...]`, no whitespace); `None` for anything else.
    /// Each delta is `delta` (side, sequence) at the level's price and quantity, in an event
    /// like `head` (instrument, times).
    #[inline]
    fn levels_exact(&mut self, head: &MarketEvent, delta: BookDelta, out: &mut Vec<MarketEvent>) -> Option<()> {
        self.lit(b"[")?;
        if self.take(b"]") {
            return Some(());
        }
        loop {
            self.lit(b"[\"")?;
            let (price, n) = parse_fixed_prefix(&self.b[self.i..])?;
            self.i += n;
            self.lit(b"\",\"")?;
            let (qty, n) = parse_fixed_prefix(&self.b[self.i..])?;
            self.i += n;
            if qty < 0 || !self.take(b"\"]") {
                return None;
            }
            let (price, qty) = (Price::from_units(price), Qty::from_units(qty));
            out.push(MarketEvent { kind: MarketEventKind::Delta(BookDelta { price, qty, ..delta }), ..*head });
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Steps over `a` (`Some(false)`) or `b` (`Some(true)`), whichever comes next.
    #[inline]
    fn either<const A: usize, const B: usize>(&mut self, a: &[u8; A], b: &[u8; B]) -> Option<bool> {
        if self.take(a) {
            Some(false)
        } else {
            self.take(b).then_some(true)
        }
    }

    /// The end of an exactly laid out frame: its `}` (and the envelope's), then nothing.
    #[inline]
    fn close(&mut self, wrapped: bool) -> Option<()> {
        let closed = if wrapped { self.take(b"}}") } else { self.take(b"}") };
        (closed && self.i == self.b.len()).then_some(())
    }

    #[inline]
    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn read(&mut self, side: Side, ts_recv: UnixNanos, out: &mut Vec<MarketEvent>) -> Result<(), String> {
        self.expect(b'[')?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.expect(b'[')?;
            let price = Price::from_units(self.decimal("price")?);
            self.expect(b',')?;
            let at = self.i;
            let qty = self.decimal("qty")?;
            if qty < 0 {
                let text = String::from_utf8_lossy(&self.b[at..self.i]);
                return Err(format!("level qty {}: {}", text.trim(), argus_core::ParseFixedError::Negative));
            }
            self.expect(b']')?;
            out.push(delta_event(side, price, Qty::from_units(qty), ts_recv));
            match self.next() {
                Some(b',') => {}
                Some(b']') => return Ok(()),
                _ => return Err("levels: expected `,` or `]`".into()),
            }
        }
    }

    /// The next byte that is not JSON whitespace.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn expect(&mut self, want: u8) -> Result<(), String> {
        match self.next() {
            Some(c) if c == want => Ok(()),
            _ => Err(format!("levels: expected `{}` at byte {}", char::from(want), self.i)),
        }
    }

    /// A decimal in a JSON string, parsed in place; anything else in the quotes (an escape
    /// included) is an error naming the text.
    #[inline]
    fn decimal(&mut self, what: &str) -> Result<i64, String> {
        self.expect(b'"')?;
        let rest = &self.b[self.i..];
        if let Some((units, n)) = parse_fixed_prefix(rest) {
            if rest.get(n) == Some(&b'"') {
                self.i += n + 1;
                return Ok(units);
            }
        }
        let len = rest.iter().position(|&c| c == b'"').ok_or("levels: unterminated string")?;
        let text = &rest[..len];
        Err(match parse_fixed(text) {
            Err(e) => format!("level {what} `{}`: {e}", String::from_utf8_lossy(text)),
            Ok(_) => format!("level {what} `{}`: unreadable", String::from_utf8_lossy(text)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_spot/samples");

    fn norm() -> BinanceNormalizer {
        BinanceNormalizer::new([
            ("BTCUSDT", InstrumentId(0)),
            ("ETHUSDT", InstrumentId(1)),
            ("NKNUSDT", InstrumentId(2)),
        ])
    }

    #[test]
    fn decodes_usdm_mark_price_and_liquidations() {
        // Binance's documented markPriceUpdate and a real `!forceOrder@arr` frame (2021-10-19).
        let mark = br#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000,"st":1}"#;
        let mut out = Vec::new();
        assert_eq!(norm().normalize(mark, UnixNanos(1), &mut out).unwrap(), Decoded::Mark);
        let MarketEventKind::Mark(m) = out[0].kind else { panic!("{out:?}") };
        assert_eq!(m.mark, Price::parse("11794.15").unwrap());
        assert_eq!(m.index, Price::parse("11784.62659091").unwrap());
        assert_eq!(m.funding_rate, Price::parse("0.00038167").unwrap());
        assert_eq!(m.next_funding, UnixNanos::from_millis(1_562_306_400_000));
        let liq = br#"{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1634653599186,"o":{"s":"IOTXUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"3661","p":"0.06606","ap":"0.06669","X":"FILLED","l":"962","z":"3661","T":1634653599180}}}"#;
        let mut n = norm();
        n.add_symbol("IOTXUSDT", InstrumentId(3));
        out.clear();
        assert_eq!(n.normalize(liq, UnixNanos(1), &mut out).unwrap(), Decoded::Liquidation);
        let MarketEventKind::Liquidation(l) = out[0].kind else { panic!("{out:?}") };
        assert_eq!(
            (l.side, l.price, l.qty),
            (Side::Sell, Price::parse("0.06669").unwrap(), Qty::parse("3661").unwrap())
        );
        assert_eq!(
            (out[0].instrument, out[0].ts_exchange),
            (InstrumentId(3), UnixNanos::from_millis(1_634_653_599_180))
        );
        // 24hrTicker's `o` is the open price, not an order.
        let ticker = br#"{"e":"24hrTicker","E":1,"s":"BTCUSDT","o":"10311.91","c":"1"}"#;
        assert_eq!(norm().normalize(ticker, UnixNanos(1), &mut out).unwrap(), Decoded::Ignored);
        let bad = br#"{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SIDEWAYS","q":"1","p":"1"}}"#;
        assert!(norm().normalize(bad, UnixNanos(1), &mut out).is_err());
    }

    #[test]
    fn decodes_trade_frame() {
        let frame = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
        let mut out = Vec::new();
        assert_eq!(norm().normalize(frame, UnixNanos(7), &mut out).unwrap(), Decoded::Trade);
        assert_eq!(out.len(), 1);
        let MarketEventKind::Trade(t) = out[0].kind else { panic!("not a trade") };
        assert_eq!(t.price.display_with(8).to_string(), "61837.63000000");
        assert_eq!(t.qty.to_string(), "0.02");
        assert_eq!(t.trade_id, 3_735_683_259);
        assert_eq!(t.aggressor, Side::Sell);
        assert_eq!(out[0].ts_exchange, UnixNanos::from_millis(1_723_161_255_342));
        assert_eq!(out[0].ts_recv, UnixNanos(7));
    }

    #[test]
    fn decodes_depth_with_every_level_and_last_flag() {
        let frame = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":7,"b":[["1.0","2"],["0.5","0"]],"a":[["2.0","1"]]}}"#;
        let mut out = Vec::new();
        let got = norm().normalize(frame, UnixNanos(0), &mut out).unwrap();
        assert_eq!(got, Decoded::Depth { first_update_id: 5, final_update_id: 7, prev_final_update_id: None });
        assert_eq!(out.len(), 3);
        let flags: Vec<(Side, bool, u64)> = out
            .iter()
            .map(|e| match e.kind {
                MarketEventKind::Delta(d) => (d.side, d.flags.is_last(), d.sequence),
                _ => panic!("not a delta"),
            })
            .collect();
        assert_eq!(flags, vec![(Side::Buy, false, 7), (Side::Buy, false, 7), (Side::Sell, true, 7)]);
    }

    #[test]
    fn depth_levels_read_any_json_spacing_and_nothing_looser() {
        let compact = br#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":7,"b":[["1.0","2"],["0.5","0"]],"a":[]}"#;
        let spaced = b"{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"BTCUSDT\",\"U\":5,\"u\":7,\"b\" : [ [ \"1.0\" ,\n\t\"2\" ] ,\r\n [\"0.5\",\"0\"] ] ,\"a\":[ ]}";
        let (mut a, mut b) = (Vec::new(), Vec::new());
        norm().normalize(compact, UnixNanos(0), &mut a).unwrap();
        norm().normalize(spaced, UnixNanos(0), &mut b).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a, b);
        for levels in [
            r#"[["1","2","3"]]"#,
            r#"[[1,2]]"#,
            r#"[["1","-2"]]"#,
            r#"[["1\u0030","2"]]"#,
            r#"[["1"]]"#,
            r#"[["1","2"]"3"]"#,
            r#"[{"p":"1","q":"2"}]"#,
        ] {
            let frame = format!(r#"{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":7,"b":{levels},"a":[]}}"#);
            let mut out = Vec::new();
            assert!(norm().normalize(frame.as_bytes(), UnixNanos(0), &mut out).is_err(), "{levels}");
            assert!(out.is_empty(), "{levels}");
        }
    }

    /// Same events, same outcome, and for errors the same message, from each of the three
    /// readers first. Returns whether the exact-layout reader took the frame.
    fn same_as_serde(n: &BinanceNormalizer, frame: &[u8]) -> bool {
        let (mut fast, mut scanned, mut slow) = (Vec::new(), Vec::new(), Vec::new());
        let a = n.normalize_with(Input::Bytes(frame), UnixNanos(3), &mut fast, First::Exact).map_err(|e| e.to_string());
        let s = n.normalize_with(Input::Bytes(frame), UnixNanos(3), &mut scanned, First::Scanner);
        let b = n.normalize_with(Input::Bytes(frame), UnixNanos(3), &mut slow, First::Serde).map_err(|e| e.to_string());
        assert_eq!(a, b, "{}", String::from_utf8_lossy(frame));
        assert_eq!(s.map_err(|e| e.to_string()), b, "{}", String::from_utf8_lossy(frame));
        assert_eq!(fast, slow, "{}", String::from_utf8_lossy(frame));
        assert_eq!(scanned, slow, "{}", String::from_utf8_lossy(frame));
        let mut exact = Vec::new();
        let took = std::str::from_utf8(frame).ok().and_then(|t| n.exact(t, UnixNanos(3), &mut exact, 0));
        match took {
            Some(kind) => assert_eq!((Ok(kind), &exact), (a.clone(), &fast), "{}", String::from_utf8_lossy(frame)),
            None => assert!(exact.is_empty(), "{}", String::from_utf8_lossy(frame)),
        }
        // Text already known to be UTF-8 takes the same scanner without the validation.
        if let Ok(text) = std::str::from_utf8(frame) {
            let mut from_str = Vec::new();
            let c = n.normalize_str(text, UnixNanos(3), &mut from_str).map_err(|e| e.to_string());
            assert_eq!((c, from_str), (a, fast), "{text}");
        }
        took.is_some()
    }

    #[test]
    fn integers_of_nineteen_and_twenty_digits_decode_as_serde_does() {
        // Found by `make fuzz`: the one-pass integer read multiplied past u64 on a 20th digit.
        let n = norm();
        for t in ["9999999999999999999", "18446744073709551615", "18446744073709551616", "99999999999999999999"] {
            let frame =
                format!(r#"{{"e":"trade","E":1,"s":"BTCUSDT","t":{t},"p":"1.0","q":"2.0","T":1,"m":true,"M":true}}"#);
            same_as_serde(&n, frame.as_bytes());
            let mut out = Vec::new();
            let r = n.normalize_str(&frame, UnixNanos(0), &mut out);
            match t.parse::<u64>() {
                Ok(id) => assert!(matches!(out[0].kind, MarketEventKind::Trade(tr) if tr.trade_id == id), "{t}"),
                Err(_) => assert!(r.is_err() && out.is_empty(), "{t} does not fit a u64"),
            }
        }
    }

    #[test]
    fn fast_scanner_agrees_with_serde_on_real_and_mangled_frames() {
        let mut n = norm();
        n.add_symbol("IOTXUSDT", InstrumentId(3));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_spot/btcusdt_20240808.jsonl.gz");
        let frames: Vec<String> = crate::recording::RecordingReader::read_all(std::path::Path::new(path))
            .unwrap()
            .into_iter()
            .map(|f| f.frame)
            .filter(|f| !f.starts_with("{\"lastUpdateId\""))
            .collect();
        assert!(frames.len() > 40_000);
        // Every real frame; then, on a sample, every truncation and single-byte change that
        // matters to JSON (quotes, brackets, digits, signs, escapes, non-ASCII, whitespace).
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        let (mut mangled, mut exact) = (0, 0);
        for (k, frame) in frames.iter().enumerate() {
            exact += usize::from(same_as_serde(&n, frame.as_bytes()));
            if k % 97 != 0 {
                continue;
            }
            let b = frame.as_bytes();
            for cut in (0..b.len()).step_by(7) {
                same_as_serde(&n, &b[..cut]);
            }
            for _ in 0..40 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let mut m = b.to_vec();
                let at = (rng as usize) % m.len();
                let bytes = b"\"{}[],:.-+e0 19\\\xc3\x01tfn";
                m[at] = bytes[(rng >> 32) as usize % bytes.len()];
                same_as_serde(&n, &m);
                mangled += 1;
            }
        }
        assert!(mangled > 10_000, "{mangled}");
        // Binance's own layout is every frame of the session.
        assert_eq!(exact, frames.len());
        // USD-M: its depth diffs (with `T` and `pu`) take the exact reader too.
        let usdm =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_usdm/cryptofeed_BINANCE_FUTURES.ws.1.0.log.gz");
        for (i, s) in ["AKROUSDT", "CTKUSDT", "KEEPUSDT", "SUSHIUSDT"].into_iter().enumerate() {
            n.add_symbol(s, InstrumentId(10 + i as u32));
        }
        let (mut depth, mut exact) = (0, 0);
        for r in crate::rawlog::MergedInputs::open(&[usdm.into()]).unwrap() {
            let took = same_as_serde(&n, r.body.as_bytes());
            if r.body.contains(r#""e":"depthUpdate""#) {
                depth += 1;
                exact += usize::from(took);
            }
        }
        assert!(depth > 100 && exact == depth, "{exact} of {depth}");
        // And its trades and book tickers (from the full BTCUSDT stream's layout).
        for frame in [
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256321,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#,
            r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256314}}"#,
        ] {
            assert!(same_as_serde(&n, frame.as_bytes()), "{frame}");
            for (from, to) in
                [(r#""X":"MARKET""#, r#""X":null"#), (r#","E":1723161256314"#, ""), (r#""T":"#, r#""t":"#)]
            {
                if !frame.contains(from) {
                    continue;
                }
                assert!(!same_as_serde(&n, frame.replacen(from, to, 1).as_bytes()), "{frame} {from}");
            }
        }
        for frame in [
            &br#"{"e":"trade","E":01,"s":"BTCUSDT","t":1,"p":"1","q":"1","m":true}"#[..],
            br#"{"e":"trade","E":1.0,"s":"BTCUSDT","t":1,"p":"1","q":"1","m":true}"#,
            br#"{"e":"trade","E":18446744073709551616,"s":"BTCUSDT","t":1,"p":"1","q":"1","m":true}"#,
            br#"{"e":"tr\u0061de","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","m":true}"#,
            br#"{"e":"trade","x":[1,{"y":[-0.5e+3,null,"\n"]}],"s":"BTCUSDT","t":1,"p":"1","q":"1","m":false}"#,
            br#"{"e":"trade","x":[1,{"y":[-01]}],"s":"BTCUSDT","t":1,"p":"1","q":"1","m":false}"#,
            br#"{"data":{"data":{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","m":false}}}"#,
            br#"{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","m":false} x"#,
            br#"{"e":"forceOrder","E":1634653599186,"o":{"s":"IOTXUSDT","S":"SELL","q":"3661","p":"0.06606"}}"#,
            br#"{"result":null,"id":1}"#,
            br#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":7,"b":5,"a":[]}"#,
            br#"{"e":"aggTrade","E":1,"s":"BTCUSDT","a":-5,"p":"1","q":"1","m":true}"#,
        ] {
            same_as_serde(&n, frame);
        }
        // Binance's layout, bare: taken by the exact reader; near misses are left to the others.
        let trade = r#"{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"61837.63","q":"0.02","T":1,"m":false,"M":true}"#;
        let quote = r#"{"u":5,"s":"BTCUSDT","b":"1.5","B":"2","a":"1.6","A":"3"}"#;
        let depth = r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":7,"b":[["1","2"]],"a":[["3","0.0"]]}"#;
        for frame in [trade, quote, depth] {
            assert!(same_as_serde(&n, frame.as_bytes()), "{frame}");
            let wrapped = format!(r#"{{"stream":"x","data":{frame}}}"#);
            assert!(same_as_serde(&n, wrapped.as_bytes()), "{wrapped}");
            for (from, to) in [(",", " ,"), ("BTCUSDT", "NOSUCHPAIR"), (r#""s""#, r#""S""#), ("}", "} ")] {
                assert!(!same_as_serde(&n, frame.replacen(from, to, 1).as_bytes()), "{frame} {from}");
            }
        }
        for near in [
            trade.replace(r#""M":true"#, r#""M":null"#),
            format!("{trade}{{}}"),
            depth.replace(r#""0.0""#, "0"),
            depth.replace(r#""2""#, r#""-2""#),
            depth.replace("[[", "[ ["),
            depth.replace(r#""1","2""#, r#""1" ,"2""#),
            trade.replace("0.02", "-0.02"),
            quote.replace(r#""2""#, r#""2e0""#),
        ] {
            assert!(!same_as_serde(&n, near.as_bytes()), "{near}");
        }
        let deep = format!("{}{}", "{\"data\":".repeat(200), "}".repeat(200));
        same_as_serde(&n, deep.as_bytes());
    }

    #[test]
    fn decodes_book_ticker_and_agg_trade() {
        let mut out = Vec::new();
        let bt = br#"{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}"#;
        assert_eq!(
            norm().normalize(bt, UnixNanos(0), &mut out).unwrap(),
            Decoded::BookTicker { update_id: 50093239212 }
        );
        let agg = br#"{"e":"aggTrade","E":1,"s":"ETHUSDT","a":226532,"p":"1.5","q":"2","f":1,"l":2,"T":3,"m":false,"M":true,"st":0}"#;
        assert_eq!(norm().normalize(agg, UnixNanos(0), &mut out).unwrap(), Decoded::Trade);
        let MarketEventKind::Trade(t) = out[1].kind else { panic!("not a trade") };
        assert_eq!((t.trade_id, t.aggressor, out[1].instrument), (226_532, Side::Buy, InstrumentId(1)));
    }

    #[test]
    fn every_real_sample_decodes() {
        let mut n = 0;
        for file in [
            "hftbacktest_trade.jsonl",
            "hftbacktest_bookTicker.jsonl",
            "hftbacktest_depth_100ms.jsonl",
            "cryptofeed_aggTrade.jsonl",
            "cryptofeed_bookTicker.jsonl",
            "cryptofeed_depth_100ms.jsonl",
            "cryptofeed_kline_1m.jsonl",
        ] {
            let text = std::fs::read_to_string(format!("{SAMPLES}/{file}")).unwrap();
            for line in text.lines().filter(|l| !l.is_empty()) {
                let mut out = Vec::new();
                let norm = BinanceNormalizer::new([
                    ("BTCUSDT", InstrumentId(0)),
                    ("NKNUSDT", InstrumentId(1)),
                    ("BLZETH", InstrumentId(2)),
                    ("LRCBTC", InstrumentId(3)),
                    ("RUNEEUR", InstrumentId(4)),
                ]);
                let got = norm.normalize(line.as_bytes(), UnixNanos(0), &mut out);
                assert!(got.is_ok(), "{file}: {got:?} for {line}");
                if file.contains("kline") {
                    assert_eq!(got.unwrap(), Decoded::Ignored);
                    assert!(out.is_empty());
                }
                n += 1;
            }
        }
        assert!(n >= 20, "only {n} samples read");
    }

    #[test]
    fn malformed_frames_are_errors_and_leave_output_untouched() {
        let cases: [&[u8]; 8] = [
            b"",
            b"not json",
            br#"{"e":"trade","s":"BTCUSDT","t":1,"p":"1.x","q":"1","m":true}"#,
            br#"{"e":"trade","s":"BTCUSDT","t":1,"q":"1","m":true}"#,
            br#"{"e":"trade","s":"DOGEUSDT","t":1,"p":"1","q":"1","m":true}"#,
            br#"{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"b":[["1","1"],["oops","1"]],"a":[]}"#,
            br#"{"e":"depthUpdate","s":"BTCUSDT","U":1,"b":[],"a":[]}"#,
            br#"{"hello":1}"#,
        ];
        for frame in cases {
            let mut out = vec![delta_event(Side::Buy, Price::ZERO, Qty::ZERO, UnixNanos(0))];
            assert!(norm().normalize(frame, UnixNanos(0), &mut out).is_err(), "{}", String::from_utf8_lossy(frame));
            assert_eq!(out.len(), 1);
        }
    }
}
