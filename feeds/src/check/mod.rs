//! `argus feeds check`: recorded raw frames through the same normalizers and book syncs that
//! live uses, summarised: frames, events by type, errors, gaps, resyncs, checksums and the final
//! books.
//!
//! Each venue has a checker that owns one book per symbol and follows the venue's documented
//! procedure; anything it cannot use is counted as an error with a sample kept for the report.

mod binance;
mod bybit;
mod coinbase;
mod kraken;
mod okx;
pub(crate) mod wire;

use std::collections::BTreeMap;

use argus_core::{
    BookAction, BookDelta, DeltaFlags, InstrumentId, MarketEvent, MarketEventKind, OrderBook, Price, Qty, Side,
    UnixNanos,
};
use serde::Serialize;

use crate::rawlog::{MergedInputs, RawKind, RawRecord};

/// Venues `feeds check` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckVenue {
    BinanceSpot,
    BinanceUsdm,
    Bybit,
    Coinbase,
    Kraken,
    Okx,
}

impl CheckVenue {
    /// The names `--venue` takes.
    pub const NAMES: [&'static str; 6] = ["binance-spot", "binance-usdm", "bybit", "coinbase", "kraken", "okx"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "binance-spot" => Some(Self::BinanceSpot),
            "binance-usdm" => Some(Self::BinanceUsdm),
            "bybit" => Some(Self::Bybit),
            "coinbase" => Some(Self::Coinbase),
            "kraken" => Some(Self::Kraken),
            "okx" => Some(Self::Okx),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BinanceSpot => "binance-spot",
            Self::BinanceUsdm => "binance-usdm",
            Self::Bybit => "bybit",
            Self::Coinbase => "coinbase",
            Self::Kraken => "kraken",
            Self::Okx => "okx",
        }
    }
}

/// Checksum verdicts (venues that send checksums).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChecksumReport {
    pub ok: u64,
    pub failed: u64,
}

/// A book at the end of the capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookReport {
    /// `[price, qty]` as the venue prints them; `null` for an empty side.
    pub best_bid: Option<[String; 2]>,
    pub best_ask: Option<[String; 2]>,
    pub bid_levels: usize,
    pub ask_levels: usize,
    /// False when the book ended stale (a gap or a checksum failure not yet repaired).
    pub synced: bool,
}

/// The summary `feeds check --json` prints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub venue: String,
    /// Websocket frames read (REST bodies are counted in `rest`).
    pub frames: u64,
    pub rest: u64,
    /// Normalized events by type: `trade`, `quote`, `delta`, plus frames ignored by design.
    pub events: BTreeMap<String, u64>,
    /// Lines and frames that could not be used.
    pub errors: u64,
    /// Up to 20 error messages, first seen first.
    pub error_samples: Vec<String>,
    /// Sequence breaks detected.
    pub gaps: u64,
    /// Books rebuilt from a fresh snapshot after a gap or checksum failure.
    pub resyncs: u64,
    pub checksum: ChecksumReport,
    pub books: BTreeMap<String, BookReport>,
}

const MAX_ERROR_SAMPLES: usize = 20;

impl CheckReport {
    fn error(&mut self, msg: impl Into<String>) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(msg.into());
        }
    }

    fn count(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        // Looked up by `&str` first: the key is allocated once per kind, not once per frame.
        match self.events.get_mut(kind) {
            Some(count) => *count += n,
            None => {
                self.events.insert(kind.to_owned(), n);
            }
        }
    }

    /// Counts normalized events by type.
    fn count_events(&mut self, evs: &[MarketEvent]) {
        let (mut t, mut q, mut d, mut m, mut l) = (0, 0, 0, 0, 0);
        for e in evs {
            match e.kind {
                MarketEventKind::Trade(_) => t += 1,
                MarketEventKind::Quote(_) => q += 1,
                MarketEventKind::Delta(_) => d += 1,
                MarketEventKind::Mark(_) => m += 1,
                MarketEventKind::Liquidation(_) => l += 1,
            }
        }
        self.count("trade", t);
        self.count("quote", q);
        self.count("delta", d);
        self.count("mark_price", m);
        self.count("liquidation", l);
    }
}

/// One symbol's book and the precision its venue prints.
#[derive(Debug)]
pub(crate) struct SymbolBook {
    pub book: OrderBook,
    pub price_decimals: u8,
    pub size_decimals: u8,
    pub synced: bool,
}

impl SymbolBook {
    pub(crate) fn new() -> Self {
        Self { book: OrderBook::new(argus_core::MIN_BOOK_LEVELS), price_decimals: 0, size_decimals: 0, synced: false }
    }

    /// Widens the printed precision to cover `price` and `size` as the venue wrote them.
    pub(crate) fn learn(&mut self, price: &str, size: &str) {
        self.price_decimals = self.price_decimals.max(decimals(price));
        self.size_decimals = self.size_decimals.max(decimals(size));
    }

    pub(crate) fn apply_all(&mut self, evs: &[MarketEvent]) {
        for e in evs {
            if let MarketEventKind::Delta(d) = e.kind {
                self.apply(&d);
            }
        }
    }

    pub(crate) fn apply(&mut self, d: &BookDelta) {
        self.book.apply(d);
    }

    /// Empties the book before a snapshot's levels; returns the `Clear` it applied.
    pub(crate) fn clear_for_snapshot(&mut self, sequence: u64) -> BookDelta {
        let clear = BookDelta {
            action: BookAction::Clear,
            side: Side::Buy,
            flags: DeltaFlags(DeltaFlags::SNAPSHOT),
            price: Price::ZERO,
            qty: Qty::ZERO,
            sequence,
        };
        self.book.apply(&clear);
        clear
    }

    pub(crate) fn report(&self) -> BookReport {
        let fmt = |l: Option<argus_core::Level>| {
            l.map(|l| {
                [
                    l.price.display_with(self.price_decimals).to_string(),
                    l.qty.display_with(self.size_decimals).to_string(),
                ]
            })
        };
        BookReport {
            best_bid: fmt(self.book.best_bid()),
            best_ask: fmt(self.book.best_ask()),
            bid_levels: self.book.depth(Side::Buy),
            ask_levels: self.book.depth(Side::Sell),
            synced: self.synced,
        }
    }
}

/// The normalized events a checker hands on once asked to ([`Checker::collect_events`]), each
/// with the venue's symbol (the caller maps it to its instrument). A message's book levels are
/// staged and flushed together, the last one flagged [`DeltaFlags::LAST`]: the book is whole
/// after it. A broken book is announced with a `Clear` (no snapshot flag), so whatever applies
/// the stream marks it stale until the venue's next snapshot ends.
#[derive(Debug, Default)]
pub(crate) struct Emitter {
    /// Events with the index of their symbol in `symbols`.
    out: Option<Vec<(u32, MarketEvent)>>,
    symbols: wire::Symbols,
    staged: Vec<BookDelta>,
}

impl Emitter {
    pub(crate) fn enable(&mut self) -> bool {
        self.out = Some(Vec::with_capacity(8192));
        true
    }

    pub(crate) fn event(&mut self, symbol: &str, ts_exchange: u64, ts_recv: u64, kind: MarketEventKind) {
        if let Some(out) = &mut self.out {
            out.push((self.symbols.index(symbol), untagged(ts_exchange, ts_recv, kind)));
        }
    }

    /// Stages one level of the message being read.
    pub(crate) fn stage(&mut self, d: BookDelta) {
        if self.out.is_some() {
            self.staged.push(d);
        }
    }

    /// Emits the staged levels; the last ends the message.
    pub(crate) fn flush(&mut self, symbol: &str, ts_exchange: u64, ts_recv: u64) {
        let n = self.staged.len();
        let Some(out) = &mut self.out else { return };
        if n == 0 {
            return;
        }
        let sym = self.symbols.index(symbol);
        out.reserve(n);
        for (i, d) in self.staged.drain(..).enumerate() {
            let mut d = d;
            if i + 1 == n {
                d.flags.0 |= DeltaFlags::LAST;
            }
            out.push((sym, untagged(ts_exchange, ts_recv, MarketEventKind::Delta(d))));
        }
    }

    /// Announces a broken book: downstream empties it and waits for a snapshot.
    pub(crate) fn broken(&mut self, symbol: &str, ts_exchange: u64, ts_recv: u64) {
        self.staged.clear();
        let clear = BookDelta {
            action: BookAction::Clear,
            side: Side::Buy,
            flags: DeltaFlags(0),
            price: Price::ZERO,
            qty: Qty::ZERO,
            sequence: 0,
        };
        self.event(symbol, ts_exchange, ts_recv, MarketEventKind::Delta(clear));
    }

    /// Hands every event collected since the last call to `f`, with its symbol.
    pub(crate) fn take(&mut self, f: &mut dyn FnMut(&str, &MarketEvent)) {
        if let Some(out) = &mut self.out {
            for (sym, e) in out.drain(..) {
                f(self.symbols.name(sym), &e);
            }
        }
    }
}

/// An event before the caller maps its symbol to an instrument.
fn untagged(ts_exchange: u64, ts_recv: u64, kind: MarketEventKind) -> MarketEvent {
    MarketEvent {
        ts_exchange: UnixNanos(ts_exchange),
        ts_recv: UnixNanos(ts_recv),
        instrument: InstrumentId(0),
        decode_ns: 0,
        kind,
    }
}

/// Fractional digits of a decimal string (`"0.35130000"` -> 8).
pub(crate) fn decimals(s: &str) -> u8 {
    s.split_once('.').map_or(0, |(_, f)| u8::try_from(f.len()).unwrap_or(u8::MAX).min(9))
}

/// What every venue checker does with records.
pub(crate) trait Checker: Send {
    fn on_ws(&mut self, r: &RawRecord, report: &mut CheckReport);
    /// REST bodies; venues whose books need none ignore them.
    fn on_rest(&mut self, _r: &RawRecord, _url: &str, report: &mut CheckReport) {
        report.count("ignored", 1);
    }
    /// Final books, keyed by the venue's symbol.
    fn books(&self) -> Vec<(String, BookReport)>;

    /// Keep the normalized events (those a live book would apply) for [`Checker::take_events`].
    /// False when the venue's checker does not produce events yet.
    fn collect_events(&mut self) -> bool {
        false
    }

    /// Hands every event collected since the last call to `f`, with its symbol.
    fn take_events(&mut self, _f: &mut dyn FnMut(&str, &MarketEvent)) {}
}

/// Counts a websocket frame and reads it with `f`; a failure is an error of the report with
/// the line number.
pub(crate) fn frame(r: &RawRecord, report: &mut CheckReport, f: impl FnOnce(&mut CheckReport) -> Result<(), String>) {
    report.frames += 1;
    if let Err(e) = f(report) {
        report.error(format!("line {}: {e}", r.line));
    }
}

/// One venue's normalizer and book sync on a live connection: websocket frames in, events out,
/// with the same code `feeds check` and `data import` run on captures. Its report counts what
/// the connection has seen (frames, errors, gaps, checksums).
pub struct LiveChecker {
    inner: Box<dyn Checker>,
    report: CheckReport,
    /// The frame as the checkers read it, its buffer reused from frame to frame.
    record: RawRecord,
}

impl LiveChecker {
    pub fn new(venue: CheckVenue) -> Self {
        let mut inner = checker(venue);
        inner.collect_events();
        let record = RawRecord { ts_ns: 0, kind: RawKind::Ws, body: String::with_capacity(1 << 16), input: 0, line: 0 };
        Self { inner, report: CheckReport { venue: venue.as_str().to_owned(), ..CheckReport::default() }, record }
    }

    /// Reads one frame and hands each of its events to `f`, with the venue's symbol.
    pub fn on_frame(&mut self, text: &str, ts_recv: UnixNanos, mut f: impl FnMut(&str, &MarketEvent)) {
        let r = &mut self.record;
        r.ts_ns = ts_recv.0;
        r.line += 1;
        r.body.clear();
        r.body.push_str(text);
        self.inner.on_ws(r, &mut self.report);
        self.inner.take_events(&mut f);
    }

    pub fn report(&self) -> &CheckReport {
        &self.report
    }
}

impl std::fmt::Debug for LiveChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChecker").field("report", &self.report).finish_non_exhaustive()
    }
}

fn checker(venue: CheckVenue) -> Box<dyn Checker> {
    match venue {
        CheckVenue::BinanceSpot => Box::new(binance::BinanceChecker::new(false)),
        CheckVenue::BinanceUsdm => Box::new(binance::BinanceChecker::new(true)),
        CheckVenue::Bybit => Box::new(bybit::BybitChecker::default()),
        CheckVenue::Coinbase => Box::new(coinbase::CoinbaseChecker::default()),
        CheckVenue::Kraken => Box::new(kraken::KrakenChecker::default()),
        CheckVenue::Okx => Box::new(okx::OkxChecker::default()),
    }
}

fn feed(checker: &mut dyn Checker, r: &RawRecord, report: &mut CheckReport) {
    match &r.kind {
        RawKind::Ws => checker.on_ws(r, report),
        RawKind::Rest { url } => {
            report.rest += 1;
            checker.on_rest(r, url, report);
        }
    }
}

/// Runs the capture through the venue's checker.
pub fn check(venue: CheckVenue, mut inputs: MergedInputs) -> CheckReport {
    let mut report = CheckReport { venue: venue.as_str().to_owned(), ..CheckReport::default() };
    let mut checker = checker(venue);
    while let Some(r) = inputs.next() {
        for e in inputs.take_errors() {
            report.error(e.to_string());
        }
        feed(checker.as_mut(), &r, &mut report);
    }
    for e in inputs.take_errors() {
        report.error(e.to_string());
    }
    report.books = checker.books().into_iter().collect();
    report
}

/// Runs the capture through the venue's checker and hands every normalized event (trades,
/// quotes, marks, liquidations, and book deltas only once the book is synced) to `sink`.
///
/// # Errors
/// The venue's checker does not produce events yet (only counts and verifies).
pub fn events(
    venue: CheckVenue,
    mut inputs: MergedInputs,
    sink: &mut dyn FnMut(&str, &MarketEvent),
) -> Result<CheckReport, String> {
    let mut report = CheckReport { venue: venue.as_str().to_owned(), ..CheckReport::default() };
    let mut checker = checker(venue);
    if !checker.collect_events() {
        return Err(format!("importing {} captures is not supported yet (feeds check verifies them)", venue.as_str()));
    }
    while let Some(r) = inputs.next() {
        for e in inputs.take_errors() {
            report.error(e.to_string());
        }
        feed(checker.as_mut(), &r, &mut report);
        checker.take_events(sink);
    }
    for e in inputs.take_errors() {
        report.error(e.to_string());
    }
    report.books = checker.books().into_iter().collect();
    Ok(report)
}

/// Runs records already in memory (benchmarks, tools) through the venue's checker.
pub fn check_records<'a>(venue: CheckVenue, records: impl IntoIterator<Item = &'a RawRecord>) -> CheckReport {
    let mut report = CheckReport { venue: venue.as_str().to_owned(), ..CheckReport::default() };
    let mut checker = checker(venue);
    for r in records {
        feed(checker.as_mut(), r, &mut report);
    }
    report.books = checker.books().into_iter().collect();
    report
}

/// Tests: every body of `bodies` damaged 300 ways ([`wire::damaged`]) through both checkers,
/// which must report and emit the same; returns how many damaged frames were run.
#[cfg(test)]
pub(crate) fn run_damaged<'b>(
    fast: &mut dyn Checker,
    slow: &mut dyn Checker,
    bodies: impl Iterator<Item = &'b String>,
) -> usize {
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut n = 0;
    for (k, body) in bodies.enumerate() {
        for (j, body) in wire::damaged(body, 300, &mut rng).into_iter().enumerate() {
            let r =
                RawRecord { ts_ns: 7, kind: crate::rawlog::RawKind::Ws, body, input: 0, line: (k * 10_000 + j) as u64 };
            n += 1;
            assert_eq!(run_frame(fast, &r), run_frame(slow, &r), "{}", r.body);
        }
    }
    n
}

/// Tests: a frame through a checker, its report (as JSON) and the events it emitted.
#[cfg(test)]
pub(crate) fn run_frame(c: &mut dyn Checker, r: &RawRecord) -> (String, Vec<(String, argus_core::MarketEvent)>) {
    let mut report = CheckReport::default();
    c.on_ws(r, &mut report);
    let mut events = Vec::new();
    c.take_events(&mut |s, e| events.push((s.to_owned(), *e)));
    (serde_json::to_string(&report).unwrap_or_default(), events)
}
