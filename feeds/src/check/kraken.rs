//! Kraken v1: trades, spread/ticker quotes, and `book-N` with every checksum verified.

use std::collections::BTreeMap;

use argus_core::{BookDelta, MarketEventKind};

use super::{wire, CheckReport, Checker, Emitter, SymbolBook};
use crate::kraken::{
    book_v1_exact, book_v2_exact, decode_v1, decode_v2, trades_v2_exact, ExactLevels, KrakenBook, KrakenLevel,
    KrakenQuote, KrakenTrade, KrakenV1, KrakenV2, PlacedTrade,
};
use crate::rawlog::RawRecord;

struct Pair {
    book: KrakenBook,
    view: SymbolBook,
    /// A checksum failed since the last snapshot.
    broken: bool,
}

#[derive(Default)]
pub(crate) struct KrakenChecker {
    pairs: BTreeMap<String, Pair>,
    deltas: Vec<BookDelta>,
    /// v2 book depth per symbol, from the subscribe ack (default 10).
    v2_depth: BTreeMap<String, usize>,
    /// v2 price and quantity precision per symbol, from the `instrument` channel: what the
    /// checksum formats numbers with. Without it, the most decimals seen in the pair's levels
    /// stand in (right once any level shows its full precision).
    v2_precision: BTreeMap<String, (u8, u8)>,
    emit: Emitter,
    /// Receive time of the frame being read.
    recv: u64,
    /// Where the exact reader found the levels of the frame being read.
    at: ExactLevels,
    /// The trades of the v2 push being read by the exact reader (reused).
    trades_at: Vec<PlacedTrade>,
    /// Tests: read every frame through serde (the reference the exact path is held to).
    serde_only: bool,
}

impl KrakenChecker {
    /// Applies one book message (either version) and verifies its checksum.
    #[allow(clippy::too_many_arguments)]
    fn book<'l>(
        &mut self,
        pair: &str,
        depth: usize,
        snapshot: bool,
        levels: impl Iterator<Item = KrakenLevel<'l>> + Clone,
        checksum: Option<u32>,
        v2: bool,
        line: u64,
        report: &mut CheckReport,
    ) {
        if !self.pairs.contains_key(pair) {
            let p = Pair { book: KrakenBook::new(depth), view: SymbolBook::new(), broken: false };
            self.pairs.insert(pair.to_owned(), p);
        }
        let Some(p) = self.pairs.get_mut(pair) else { return };
        for (_, px, q) in levels.clone() {
            p.view.learn(px, q);
        }
        self.deltas.clear();
        let applied = if snapshot {
            p.book = KrakenBook::new(depth);
            p.book.snapshot(levels, &mut self.deltas)
        } else if !p.view.synced && !p.broken {
            return report.error(format!("line {line}: {pair} update before its snapshot"));
        } else {
            p.book.update(levels, &mut self.deltas)
        };
        report.count("delta", self.deltas.len() as u64);
        for d in &self.deltas {
            p.view.apply(d);
            self.emit.stage(*d);
        }
        // Book levels carry per-level times; the message's deltas go out untimed (the hot
        // thread dates them by the stream around them).
        let recv = self.recv;
        if let Err(e) = applied {
            p.view.synced = false;
            p.broken = true;
            self.emit.broken(pair, 0, recv);
            return report.error(format!("line {line}: {e}"));
        }
        if snapshot {
            if p.broken {
                report.resyncs += 1;
            }
            p.broken = false;
            p.view.synced = true;
        }
        if let Some(c) = checksum {
            let mine = if v2 {
                let (pp, qp) =
                    self.v2_precision.get(pair).copied().unwrap_or((p.view.price_decimals, p.view.size_decimals));
                p.book.checksum_v2(pp, qp)
            } else {
                p.book.checksum()
            };
            if mine == c {
                report.checksum.ok += 1;
            } else {
                report.checksum.failed += 1;
                // Stale until a fresh snapshot (live: resubscribe).
                p.view.synced = false;
                p.broken = true;
                return self.emit.broken(pair, 0, recv);
            }
        }
        self.emit.flush(pair, 0, recv);
    }

    fn trades(&mut self, trades: Vec<KrakenTrade<'_>>, report: &mut CheckReport) {
        report.count("trade", trades.len() as u64);
        for t in trades {
            self.emit.event(t.symbol, t.ts_ns, self.recv, MarketEventKind::Trade(t.trade));
        }
    }

    fn quote(&mut self, q: &KrakenQuote<'_>) {
        self.emit.event(q.symbol, q.ts_ns, self.recv, MarketEventKind::Quote(q.quote));
    }

    /// A book push in Kraken's own layout (v1 or v2), read by the exact reader and applied;
    /// false (nothing done) when the reader leaves the frame to serde.
    fn book_exact(&mut self, r: &RawRecord, report: &mut CheckReport, v2: bool) -> bool {
        if self.serde_only {
            return false;
        }
        let mut at = std::mem::take(&mut self.at);
        let read = if v2 { book_v2_exact } else { book_v1_exact };
        let done = read(&r.body, &mut at).map(|b| {
            let depth = if v2 { self.v2_depth.get(b.pair).copied().unwrap_or(10) } else { b.depth };
            let levels = b.levels(&r.body, &at);
            self.book(b.pair, depth, b.snapshot, levels, b.checksum, v2, r.line, report);
        });
        self.at = at;
        done.is_some()
    }

    /// A v2 trade push read by the exact reader and emitted; false (nothing done) when the
    /// reader leaves the frame to serde.
    fn trades_exact(&mut self, r: &RawRecord, report: &mut CheckReport) -> bool {
        if self.serde_only {
            return false;
        }
        wire::with_buffer(
            self,
            |c| &mut c.trades_at,
            |c, trades| {
                trades_v2_exact(&r.body, trades).map(|()| {
                    report.count("trade", trades.len() as u64);
                    for (trade, ts, symbol) in trades.iter() {
                        let symbol = r.body.get(symbol.clone()).unwrap_or_default();
                        c.emit.event(symbol, *ts, c.recv, MarketEventKind::Trade(*trade));
                    }
                })
            },
        )
        .is_some()
    }

    fn v2(&mut self, r: &RawRecord, report: &mut CheckReport) {
        if self.book_exact(r, report, true) || self.trades_exact(r, report) {
            return;
        }
        match decode_v2(&r.body) {
            Err(e) => report.error(format!("line {}: {e}", r.line)),
            Ok(KrakenV2::Control { book_depth }) => {
                if let Some((s, d)) = book_depth {
                    self.v2_depth.insert(s, d);
                }
                report.count("ignored", 1);
            }
            Ok(KrakenV2::Instruments(pairs)) => {
                for (symbol, pp, qp) in pairs {
                    self.v2_precision.insert(symbol, (pp, qp));
                }
                report.count("ignored", 1);
            }
            Ok(KrakenV2::Trades(t)) => self.trades(t, report),
            Ok(KrakenV2::Quotes(quotes)) => {
                report.count("quote", quotes.len() as u64);
                for q in &quotes {
                    self.quote(q);
                }
            }
            Ok(KrakenV2::Book { snapshot, books }) => {
                for b in books {
                    let depth = self.v2_depth.get(&b.symbol).copied().unwrap_or(10);
                    let levels = b.levels.iter().map(|(s, p, q)| (*s, p.as_str(), q.as_str()));
                    self.book(&b.symbol, depth, snapshot, levels, b.checksum, true, r.line, report);
                }
            }
        }
    }
}

impl Checker for KrakenChecker {
    fn on_ws(&mut self, r: &RawRecord, report: &mut CheckReport) {
        report.frames += 1;
        self.recv = r.ts_ns;
        let body = r.body.trim_start();
        // v2 book pushes (most of a v2 stream) without searching the whole frame for `event`.
        if body.starts_with("{\"channel\":\"book\",") || (body.starts_with('{') && !body.contains("\"event\"")) {
            return self.v2(r, report);
        }
        if self.book_exact(r, report, false) {
            return;
        }
        let frame = match decode_v1(&r.body) {
            Ok(f) => f,
            Err(e) => return report.error(format!("line {}: {e}", r.line)),
        };
        match frame {
            KrakenV1::Event => report.count("ignored", 1),
            KrakenV1::Trades(t) => self.trades(t, report),
            KrakenV1::Quote(q) => {
                report.count("quote", 1);
                self.quote(&q);
            }
            KrakenV1::Book { pair, depth, snapshot, levels, checksum } => {
                self.book(pair, depth, snapshot, levels.iter().copied(), checksum, false, r.line, report);
            }
        }
    }

    fn collect_events(&mut self) -> bool {
        self.emit.enable()
    }

    fn take_events(&mut self, f: &mut dyn FnMut(&str, &argus_core::MarketEvent)) {
        self.emit.take(f);
    }

    fn books(&self) -> Vec<(String, super::BookReport)> {
        self.pairs
            .iter()
            .map(|(s, p)| {
                let mut r = p.view.report();
                r.best_bid = p.book.best_bid().map(|(a, b)| [a.to_owned(), b.to_owned()]);
                r.best_ask = p.book.best_ask().map(|(a, b)| [a.to_owned(), b.to_owned()]);
                (r.bid_levels, r.ask_levels) = p.book.depths();
                (s.clone(), r)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::run_frame as run;
    use crate::check::CheckVenue;
    use crate::rawlog::{MergedInputs, RawKind};

    /// Two checkers collecting events: the exact paths on, and serde only (the reference).
    fn fast_and_slow() -> (KrakenChecker, KrakenChecker) {
        let (mut fast, mut slow) =
            (KrakenChecker::default(), KrakenChecker { serde_only: true, ..KrakenChecker::default() });
        fast.collect_events();
        slow.collect_events();
        (fast, slow)
    }

    #[test]
    fn exact_books_read_as_serde_does_on_real_and_damaged_frames() {
        let (mut fast, mut slow) = fast_and_slow();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/kraken/cryptofeed_KRAKEN.ws.50.0.log.gz");
        let mut books: Vec<String> = Vec::new();
        let mut checked = 0;
        for (i, mut r) in MergedInputs::open(&[path.into()]).unwrap().enumerate() {
            // Every 10th record, if an update, as two objects with a checksum in each: the
            // last one counts (here the true one).
            if i % 10 == 0 && r.body.starts_with('[') {
                r.body = r.body.replacen("]],\"c\":\"", "]],\"c\":\"0\"},{\"a\":[],\"c\":\"", 1);
            }
            let fast_out = run(&mut fast, &r);
            assert_eq!(fast_out, run(&mut slow, &r), "{}", r.body);
            checked += u64::from(fast_out.0.contains("\"ok\":1"));
            if r.body.starts_with('[') && r.body.contains("\"book-") {
                books.push(r.body);
            }
        }
        assert!(checked > 800, "{checked} checksums verified");
        // Both sides in two objects with the checksum in the second (and in both: the last
        // counts), a republished level (`"r"`), a snapshot's `as`/`bs`, and a book without a
        // checksum (Kraken's 2019 layout).
        let pair = "\"book-1000\",\"XMR/USD\"]";
        for extra in [
            format!("[992,{{\"a\":[[\"355.03000000\",\"2.00000000\",\"1618678134.1\"]]}},{{\"b\":[[\"354.11000000\",\"1.00000000\",\"1618678134.2\",\"r\"]],\"c\":\"12345\"}},{pair}"),
            format!("[992,{{\"a\":[],\"c\":\"1\"}},{{\"b\":[],\"c\":\"4\"}},{pair}"),
            format!("[992,{{\"as\":[[\"355.00000000\",\"1.00000000\",\"1\"]],\"bs\":[[\"354.00000000\",\"1.00000000\",\"1\"]]}},{pair}"),
            format!("[992,{{\"b\":[[\"354.50000000\",\"3.00000000\",\"1618678134.3\"]]}},{pair}"),
        ] {
            books.push(extra);
        }
        assert!(books.len() > 800, "{}", books.len());
        assert!(books.iter().filter(|b| b.contains("},{")).count() > 50);
        for b in &books {
            assert!(book_v1_exact(b, &mut ExactLevels::default()).is_some(), "a real push fell back to serde: {b}");
        }
        let small = books.iter().filter(|b| b.len() < 1000).take(30).chain(books.iter().rev().take(4));
        let damaged = crate::check::run_damaged(&mut fast, &mut slow, small);
        assert!(damaged > 10_000, "{damaged}");
    }

    #[test]
    fn exact_v2_books_read_as_serde_does_on_real_doc_and_damaged_frames() {
        let (mut fast, mut slow) = fast_and_slow();
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/kraken/");
        let read = |name: &str| std::fs::read_to_string(format!("{data}{name}")).unwrap();
        // The real session (ack, snapshot, update, a re-serialised frame without `type`), then
        // the documentation's frames with their whitespace taken out.
        let mut frames: Vec<String> = read("snippets_real_kraken_v2_book.jsonl").lines().map(str::to_owned).collect();
        for doc in [
            "kraken_v2_doc_book_snapshot_BTCUSD_checksum_3310070434.json",
            "kraken_v2_doc_book_snapshot_MATICUSD.json",
            "kraken_v2_doc_book_update_MATICUSD.json",
        ] {
            frames.push(read(doc).chars().filter(|c| !c.is_whitespace()).collect());
        }
        // Numbers the exact path leaves to serde: an exponent (converted there), a sign.
        let update = frames[2].clone();
        frames.push(update.replace("\"qty\":1.56601318", "\"qty\":1.5e-05"));
        frames.push(update.replace("\"qty\":1.56601318", "\"qty\":-1.5"));
        frames.push(update.clone());
        let mut exact = 0;
        for (i, body) in frames.iter().enumerate() {
            let r = RawRecord { ts_ns: 7, kind: RawKind::Ws, body: body.clone(), input: 0, line: i as u64 + 1 };
            let out = run(&mut fast, &r);
            assert_eq!(out, run(&mut slow, &r), "{body}");
            exact += usize::from(book_v2_exact(body, &mut ExactLevels::default()).is_some());
        }
        // Snapshot and update of the real session, the three documentation frames, and the
        // update again; not the ack, the frame without `type`, nor the odd numbers.
        assert_eq!(exact, 6);
        let report = run(&mut fast, &RawRecord { ts_ns: 7, kind: RawKind::Ws, body: update, input: 0, line: 99 }).0;
        assert!(report.contains("\"ok\":1"), "the real update's checksum verifies: {report}");
        let books: Vec<String> = frames.into_iter().filter(|f| f.len() < 1500 && f.contains("\"book\",")).collect();
        let damaged = crate::check::run_damaged(&mut fast, &mut slow, books.iter());
        assert!(damaged > 5_000, "{damaged}");
    }

    #[test]
    fn v2_checksums_use_the_instrument_channels_precisions() {
        let session =
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/kraken/snippets_real_kraken_v2_book.jsonl"));
        // The `instrument` snapshot's layout (docs.kraken.com, websocket-v2/instrument), one pair.
        let instrument = |pp: u8, qp: u8| {
            format!(
                r#"{{"channel":"instrument","type":"snapshot","data":{{"assets":[{{"id":"ETH","status":"enabled","precision":10,"precision_display":5,"borrowable":true,"collateral_value":1.0,"margin_rate":0.02}}],"pairs":[{{"symbol":"ETH/USD","base":"ETH","quote":"USD","status":"online","qty_precision":{qp},"qty_increment":0.00000001,"price_precision":{pp},"cost_precision":5,"marginable":true,"has_index":true,"cost_min":0.5,"tick_size":0.01,"price_increment":0.01,"qty_min":0.002}}]}}}}"#
            )
        };
        // Real ETH/USD snapshot + update and BTC/USD snapshot: three checksums. Announced
        // precisions are used (a wrong one fails ETH/USD's); without any, the levels' own
        // decimals stand in.
        for (announced, ok) in [(None, 3), (Some((2, 8)), 3), (Some((3, 8)), 1), (Some((2, 9)), 1)] {
            for serde_only in [false, true] {
                let mut c = KrakenChecker { serde_only, ..KrakenChecker::default() };
                let mut report = CheckReport::default();
                let frames =
                    announced.map(|(pp, qp)| instrument(pp, qp)).into_iter().chain(session.lines().map(str::to_owned));
                for (i, body) in frames.enumerate() {
                    c.on_ws(
                        &RawRecord { ts_ns: 7, kind: RawKind::Ws, body, input: 0, line: i as u64 + 1 },
                        &mut report,
                    );
                }
                assert_eq!(report.errors, 0, "{:?}", report.error_samples);
                assert_eq!(report.checksum.ok, ok, "{announced:?}, serde only: {serde_only}");
                assert_eq!(report.checksum.failed, 3 - ok, "{announced:?}");
                assert_eq!(c.v2_precision.get("ETH/USD").copied(), announced);
            }
        }
    }

    #[test]
    fn tickers_and_spreads_become_quotes() {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/kraken/");
        let quotes = |files: &[&str]| {
            let inputs: Vec<std::path::PathBuf> = files.iter().map(|f| format!("{data}{f}").into()).collect();
            let mut out = Vec::new();
            let r = crate::check::events(CheckVenue::Kraken, MergedInputs::open(&inputs).unwrap(), &mut |s, e| {
                if let MarketEventKind::Quote(q) = e.kind {
                    out.push((s.to_owned(), e.ts_exchange.0, q));
                }
            })
            .unwrap();
            (r, out)
        };
        let px = |s: &str| argus_core::Price::parse(s).unwrap();
        let sz = |s: &str| argus_core::Qty::parse_size(s).unwrap();
        // v1 `ticker` (the real 2021 session): every frame a quote, best bid below best ask.
        let (r, q) = quotes(&["cryptofeed_KRAKEN.ws.49.0.log"]);
        assert_eq!((r.errors, r.events.get("quote").copied()), (0, Some(18)), "{:?}", r.error_samples);
        assert_eq!(q.len(), 18);
        assert!(q.iter().all(|(_, _, q)| q.bid_price < q.ask_price && q.bid_qty.units() > 0));
        // `[996,{"a":["355.24000000",27,"27.19106411"],"b":["354.32000000",6,"6.87748868"],..},"ticker","XMR/USD"]`
        let xmr = q.iter().find(|(s, _, _)| s == "XMR/USD").unwrap().2;
        assert_eq!((xmr.bid_price, xmr.bid_qty), (px("354.32"), sz("6.87748868")));
        assert_eq!((xmr.ask_price, xmr.ask_qty), (px("355.24"), sz("27.19106411")));
        // v1 `spread` (tardis' real frames): bid, ask, time, volumes.
        let (r, q) = quotes(&["tardis_node_kraken_v1_messages.jsonl"]);
        // (Its book updates come without their snapshots: those are the only errors.)
        assert!(r.error_samples.iter().all(|e| e.contains("before its snapshot")), "{:?}", r.error_samples);
        assert_eq!(q.len(), 2, "{q:?}");
        let (_, ts, xbt) = q.iter().find(|(s, _, _)| s == "XBT/USD").unwrap();
        assert_eq!((xbt.bid_price, xbt.ask_price), (px("43770.2"), px("43770.3")));
        assert_eq!((xbt.bid_qty, xbt.ask_qty, *ts), (sz("0.00917717"), sz("0.3167044"), 1_633_053_779_916_349_000));
        // v2 `ticker` (the documentation's example): numbers, and a time.
        let mut c = KrakenChecker::default();
        c.collect_events();
        let doc = r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,"ask":0.10036,"ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17,"timestamp":"2023-09-25T09:04:31.742648Z"}]}"#;
        let (report, events) =
            run(&mut c, &RawRecord { ts_ns: 7, kind: RawKind::Ws, body: doc.to_owned(), input: 0, line: 1 });
        assert!(report.contains("\"quote\":1") && report.contains("\"errors\":0"), "{report}");
        let [(sym, e)] = &events[..] else { panic!("{events:?}") };
        let MarketEventKind::Quote(q) = e.kind else { panic!("{e:?}") };
        assert_eq!((sym.as_str(), q.bid_price, q.bid_qty), ("ALGO/USD", px("0.10025"), sz("740.0")));
        assert_eq!((q.ask_price, q.ask_qty), (px("0.10036"), sz("1361.44813783")));
        assert_eq!(e.ts_exchange.0, argus_core::UnixNanos::parse_rfc3339("2023-09-25T09:04:31.742648Z").unwrap().0);
        // A ticker that is not one is an error, not a quote.
        let bad = doc.replace("\"bid\":0.10025", "\"bid\":\"x\"");
        let (report, events) = run(&mut c, &RawRecord { ts_ns: 7, kind: RawKind::Ws, body: bad, input: 0, line: 2 });
        assert!(report.contains("\"errors\":1") && events.is_empty(), "{report}");
    }

    #[test]
    fn exact_v2_trades_read_as_serde_does_on_pushes_and_damaged_frames() {
        let (mut fast, mut slow) = fast_and_slow();
        // The documented layout.
        let trade = |side: &str, px: &str, qty: &str, id: &str| {
            format!(
                r#"{{"symbol":"BTC/USD","side":"{side}","price":{px},"qty":{qty},"ord_type":"limit","trade_id":{id},"timestamp":"2026-12-04T08:00:00.123456Z"}}"#
            )
        };
        let push =
            |trades: &[String]| format!(r#"{{"channel":"trade","type":"update","data":[{}]}}"#, trades.join(","));
        let frames = [
            push(&[
                trade("buy", "91944.2", "0.00027625", "10218208"),
                trade("sell", "91910.5", "0.0001246", "10218209"),
            ]),
            push(&[]),
            // Left to serde: an exponent, a negative id, a bad decimal (an error there).
            push(&[trade("buy", "9.1e4", "1", "7")]),
            push(&[trade("buy", "91900", "1", "-7")]),
            push(&[trade("buy", "91900", "1", "7"), trade("sell", "0.00000000000001", "1", "8")]),
        ];
        let mut exact = 0;
        for (i, body) in frames.iter().enumerate() {
            let r = RawRecord { ts_ns: 7, kind: RawKind::Ws, body: body.clone(), input: 0, line: i as u64 + 1 };
            let out = run(&mut fast, &r);
            assert_eq!(out, run(&mut slow, &r), "{body}");
            exact += usize::from(trades_v2_exact(body, &mut Vec::new()).is_some());
            if i == 0 {
                assert_eq!(out.1.len(), 2, "{out:?}");
            }
        }
        assert_eq!(exact, 2);
        let damaged = crate::check::run_damaged(&mut fast, &mut slow, frames[..2].iter());
        assert!(damaged > 500, "{damaged}");
    }
}
