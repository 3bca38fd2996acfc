//! Binance spot and USD-M: the live normalizer and `DepthSync`, one per symbol; REST snapshots
//! from cryptofeed's HTTP log (symbol from the URL) or inline in hftbacktest captures.

use std::collections::BTreeMap;

use argus_core::{InstrumentId, MarketEvent, UnixNanos};

use super::{CheckReport, Checker, SymbolBook};
use crate::binance::{parse_snapshot, BinanceNormalizer, Decoded, DepthSync};
use crate::rawlog::RawRecord;
use crate::FeedError;

struct Symbol {
    sync: DepthSync,
    book: SymbolBook,
    /// A gap was seen and the next snapshot is a resync.
    broken: bool,
    gaps_seen: u64,
    /// Depth diffs or a snapshot were seen: the symbol has a book to report.
    has_book: bool,
}

pub(crate) struct BinanceChecker {
    usdm: bool,
    normalizer: BinanceNormalizer,
    /// By instrument id (index).
    symbols: Vec<(String, Symbol)>,
    decoded: Vec<MarketEvent>,
    ready: Vec<MarketEvent>,
    /// Events kept for `take_events` when collecting.
    collected: Option<Vec<MarketEvent>>,
}

#[derive(serde::Deserialize)]
struct Levels<'a> {
    #[serde(borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    asks: Vec<(&'a str, &'a str)>,
}

impl BinanceChecker {
    pub(crate) fn new(usdm: bool) -> Self {
        Self {
            usdm,
            normalizer: BinanceNormalizer::default(),
            symbols: Vec::new(),
            decoded: Vec::with_capacity(4096),
            ready: Vec::with_capacity(8192),
            collected: None,
        }
    }

    fn id_of(&mut self, symbol: &str) -> InstrumentId {
        let symbol = symbol.to_ascii_uppercase();
        if let Some(i) = self.symbols.iter().position(|(s, _)| *s == symbol) {
            return InstrumentId(i as u32);
        }
        let id = InstrumentId(self.symbols.len() as u32);
        self.normalizer.add_symbol(&symbol, id);
        self.symbols.push((
            symbol,
            Symbol { sync: DepthSync::new(id), book: SymbolBook::new(), broken: false, gaps_seen: 0, has_book: false },
        ));
        id
    }

    fn snapshot(&mut self, symbol: Option<String>, r: &RawRecord, report: &mut CheckReport) {
        let id = match symbol {
            Some(s) => self.id_of(&s),
            // hftbacktest records snapshots inline without the symbol: the capture's only one.
            None if self.symbols.len() == 1 => InstrumentId(0),
            None => {
                report.error(format!("line {}: snapshot without a symbol in a multi-symbol capture", r.line));
                return;
            }
        };
        let snap = match parse_snapshot(r.body.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                report.error(format!("line {}: snapshot: {e}", r.line));
                return;
            }
        };
        let (_, sym) = &mut self.symbols[id.0 as usize];
        sym.has_book = true;
        if let Ok(levels) = serde_json::from_str::<Levels<'_>>(&r.body) {
            for (p, q) in levels.bids.iter().chain(levels.asks.iter()) {
                sym.book.learn(p, q);
            }
        }
        if sym.sync.is_synced() {
            // Still whole: a later snapshot has nothing to repair.
            return;
        }
        self.ready.clear();
        match sym.sync.on_snapshot(&snap, UnixNanos(r.ts_ns), &mut self.ready) {
            Ok(_) => {
                sym.book.apply_all(&self.ready);
                if let Some(c) = &mut self.collected {
                    c.extend_from_slice(&self.ready);
                }
                sym.book.synced = sym.sync.is_synced();
                if sym.broken && sym.book.synced {
                    report.resyncs += 1;
                    sym.broken = false;
                }
            }
            Err(e) => report.error(format!("line {}: {e}", r.line)),
        }
    }
}

/// `symbol=XYZ` from a REST URL.
fn symbol_in_url(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix("symbol=")).map(str::to_owned)
}

impl Checker for BinanceChecker {
    fn on_ws(&mut self, r: &RawRecord, report: &mut CheckReport) {
        if r.body.starts_with("{\"lastUpdateId\"") {
            report.rest += 1;
            self.snapshot(None, r, report);
            return;
        }
        report.frames += 1;
        self.decoded.clear();
        let ts = UnixNanos(r.ts_ns);
        let mut result = self.normalizer.normalize_str(&r.body, ts, &mut self.decoded);
        if let Err(FeedError::UnknownSymbol(s)) = &result {
            let s = s.clone();
            self.id_of(&s);
            result = self.normalizer.normalize_str(&r.body, ts, &mut self.decoded);
        }
        match result {
            Ok(Decoded::Trade | Decoded::BookTicker { .. } | Decoded::Mark | Decoded::Liquidation) => {
                report.count_events(&self.decoded);
                if let Some(c) = &mut self.collected {
                    c.extend_from_slice(&self.decoded);
                }
            }
            Ok(Decoded::Depth { first_update_id, final_update_id, prev_final_update_id }) => {
                report.count_events(&self.decoded);
                let Some(id) = self.decoded.first().map(|e| e.instrument) else { return };
                let usdm = self.usdm;
                let (_, sym) = &mut self.symbols[id.0 as usize];
                sym.has_book = true;
                if usdm && prev_final_update_id.is_none() {
                    report.error(format!("line {}: USD-M depth diff without `pu`", r.line));
                }
                self.ready.clear();
                sym.sync.on_diff(
                    first_update_id,
                    final_update_id,
                    prev_final_update_id,
                    &self.decoded,
                    &mut self.ready,
                );
                sym.book.apply_all(&self.ready);
                if let Some(c) = &mut self.collected {
                    c.extend_from_slice(&self.ready);
                }
                let gaps = sym.sync.stats().gaps;
                if gaps > sym.gaps_seen {
                    report.gaps += gaps - sym.gaps_seen;
                    sym.gaps_seen = gaps;
                    sym.broken = true;
                }
                sym.book.synced = sym.sync.is_synced();
            }
            Ok(Decoded::Ignored) => report.count("ignored", 1),
            Err(e) => report.error(format!("line {}: {e}", r.line)),
        }
    }

    fn on_rest(&mut self, r: &RawRecord, url: &str, report: &mut CheckReport) {
        if url.contains("/depth") {
            self.snapshot(symbol_in_url(url), r, report);
        } else {
            report.count("ignored", 1);
        }
    }

    fn collect_events(&mut self) -> bool {
        self.collected = Some(Vec::with_capacity(8192));
        true
    }

    fn take_events(&mut self, f: &mut dyn FnMut(&str, &MarketEvent)) {
        if let Some(c) = &mut self.collected {
            for e in c.drain(..) {
                f(self.symbols.get(e.instrument.0 as usize).map_or("?", |(s, _)| s.as_str()), &e);
            }
        }
    }

    fn books(&self) -> Vec<(String, super::BookReport)> {
        let v: BTreeMap<String, super::BookReport> = self
            .symbols
            .iter()
            .filter(|(_, sym)| sym.has_book)
            .map(|(s, sym)| (s.clone(), sym.book.report()))
            .collect();
        v.into_iter().collect()
    }
}
