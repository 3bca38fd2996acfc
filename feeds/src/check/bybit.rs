//! Bybit v5 (spot and linear): `orderbook.<depth>.<SYM>` snapshot/delta with `u` continuity
//! (a snapshot or `u == 1` resets), `publicTrade`, `tickers`.

use std::collections::BTreeMap;

use argus_core::{BookAction, BookDelta, DeltaFlags, MarketEventKind, Price, Qty, Quote, Side, Trade};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::wire::{self, levels_exact, Level, Levels, Num};
use super::{CheckReport, Checker, Emitter, SymbolBook};
use crate::rawlog::RawRecord;

#[derive(Default)]
struct Sym {
    view: Option<SymbolBook>,
    u: Option<u64>,
    broken: bool,
}

#[derive(Default)]
pub(crate) struct BybitChecker {
    syms: BTreeMap<String, Sym>,
    emit: Emitter,
    /// Tests: read every frame through serde (the reference the exact path is held to).
    serde_only: bool,
    /// Where the exact reader found the levels of the push being read (reused).
    at: Vec<wire::LevelAt>,
}

/// A push (`topic`, `type`, `ts`, `data`; `cts` on books) or a reply (`op`, `success`).
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    topic: Option<&'a str>,
    #[serde(borrow, rename = "type")]
    ty: Option<&'a str>,
    #[serde(default)]
    ts: Num,
    cts: Option<Num>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    op: Option<&'a RawValue>,
    #[serde(borrow)]
    success: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct BookData<'a> {
    #[serde(borrow)]
    s: Option<&'a str>,
    u: Option<u64>,
    #[serde(borrow)]
    b: Option<&'a RawValue>,
    #[serde(borrow)]
    a: Option<&'a RawValue>,
}

/// An `orderbook` push's data, however it was read.
struct Book<'a> {
    s: Option<&'a str>,
    u: Option<u64>,
    b: Option<Levels<'a>>,
    a: Option<Levels<'a>>,
}

impl<'a> From<BookData<'a>> for Book<'a> {
    fn from(d: BookData<'a>) -> Self {
        Book { s: d.s, u: d.u, b: d.b.map(Levels::Json), a: d.a.map(Levels::Json) }
    }
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct TradeData<'a> {
    #[serde(borrow)]
    p: Option<&'a str>,
    #[serde(borrow)]
    v: Option<&'a str>,
    #[serde(default)]
    i: Num,
    #[serde(borrow)]
    S: Option<&'a str>,
    #[serde(borrow)]
    s: Option<&'a str>,
    #[serde(default)]
    T: Num,
}

#[derive(Deserialize)]
struct TickerData<'a> {
    #[serde(borrow, rename = "bid1Price")]
    bid_px: Option<&'a str>,
    #[serde(borrow, rename = "bid1Size")]
    bid_sz: Option<&'a str>,
    #[serde(borrow, rename = "ask1Price")]
    ask_px: Option<&'a str>,
    #[serde(borrow, rename = "ask1Size")]
    ask_sz: Option<&'a str>,
    #[serde(borrow)]
    symbol: Option<&'a str>,
}

impl BybitChecker {
    fn book(
        &mut self,
        reset_ty: bool,
        d: &Book<'_>,
        ts: u64,
        r: &RawRecord,
        report: &mut CheckReport,
    ) -> Result<(), String> {
        let (line, recv) = (r.line, r.ts_ns);
        let emit = &mut self.emit;
        let s = d.s.ok_or("orderbook without `s`")?;
        let u = d.u.ok_or("orderbook without `u`")?;
        if !self.syms.contains_key(s) {
            self.syms.insert(s.to_owned(), Sym::default());
        }
        let Some(sym) = self.syms.get_mut(s) else { return Ok(()) };
        let reset = reset_ty || u == 1;
        if !reset {
            let synced = sym.view.as_ref().is_some_and(|v| v.synced);
            if !synced {
                if !sym.broken {
                    report.error(format!("line {line}: {s} delta before its snapshot"));
                }
                return Ok(());
            }
            if sym.u.is_some_and(|last| u != last + 1) {
                report.gaps += 1;
                sym.broken = true;
                if let Some(v) = &mut sym.view {
                    v.synced = false;
                }
                emit.broken(s, ts, recv);
                return Ok(());
            }
        }
        let view = sym.view.get_or_insert_with(SymbolBook::new);
        let flags = if reset { DeltaFlags::SNAPSHOT } else { 0 };
        if reset {
            emit.stage(view.clear_for_snapshot(u));
        }
        let mut n = 0;
        let mut applied = Ok(());
        for (levels, side, name) in [(d.b, Side::Buy, "b"), (d.a, Side::Sell, "a")] {
            let Some(levels) = levels else {
                applied = Err(format!("orderbook without `{name}`"));
                break;
            };
            applied = levels.for_each(|Level(p, q)| {
                let price = Price::parse(p).map_err(|e| format!("price `{p}`: {e}"))?;
                let qty = Qty::parse_size(q).map_err(|e| format!("size `{q}`: {e}"))?;
                view.learn(p, q);
                let delta =
                    BookDelta { action: BookAction::Update, side, flags: DeltaFlags(flags), price, qty, sequence: u };
                view.apply(&delta);
                emit.stage(delta);
                n += 1;
                Ok(())
            });
            if applied.is_err() {
                break;
            }
        }
        report.count("delta", n);
        if let Err(e) = applied {
            // Part of the message applied, part not: the book no longer matches the venue's.
            // A break like a gap: stale until a fresh snapshot (live: resubscribe).
            report.gaps += 1;
            sym.broken = true;
            view.synced = false;
            emit.broken(s, ts, recv);
            return Err(e);
        }
        sym.u = Some(u);
        if reset {
            if sym.broken {
                report.resyncs += 1;
            }
            sym.broken = false;
            view.synced = true;
        }
        emit.flush(s, ts, recv);
        Ok(())
    }

    /// An `orderbook` push in Bybit's own layout (`{"topic":"orderbook..","type":..,"ts":..,
    /// "data":{"s":..,"b":[..],"a":[..],"u":..(,"seq":..)}(,"cts":..)}`), walked once without
    /// serde and then applied as [`Self::frame`] would; `None` (nothing done) for anything
    /// else. A 500-level snapshot is otherwise scanned three times over before its levels are read.
    fn book_exact(&mut self, r: &RawRecord, report: &mut CheckReport) -> Option<Result<(), String>> {
        wire::with_buffer(self, |c| &mut c.at, |c, at| c.book_exact_in(r, report, at))
    }

    fn book_exact_in(
        &mut self,
        r: &RawRecord,
        report: &mut CheckReport,
        at: &mut Vec<wire::LevelAt>,
    ) -> Option<Result<(), String>> {
        let mut c = wire::Exact::new(&r.body);
        let uint = |c: &mut wire::Exact<'_>| c.int().and_then(|v| u64::try_from(v).ok());
        c.lit(b"{\"topic\":")?;
        let topic = c.text()?;
        (c.str(topic).split('.').next() == Some("orderbook")).then_some(())?;
        c.lit(b",\"type\":")?;
        let ty = c.text()?;
        c.lit(b",\"ts\":")?;
        let ts = uint(&mut c)?;
        c.lit(b",\"data\":{\"s\":")?;
        let sym = c.text()?;
        c.lit(b",\"b\":")?;
        levels_exact(&mut c, |l| at.push(l))?;
        let n_bids = at.len();
        c.lit(b",\"a\":")?;
        levels_exact(&mut c, |l| at.push(l))?;
        c.lit(b",\"u\":")?;
        let u = uint(&mut c)?;
        if c.take(b",\"seq\":") {
            c.int()?;
        }
        c.lit(b"}")?;
        let cts = if c.take(b",\"cts\":") { Some(uint(&mut c)?) } else { None };
        c.lit(b"}")?;
        c.end()?;
        let book = Book {
            s: Some(c.str(sym)),
            u: Some(u),
            b: Some(Levels::Placed(&r.body, at.get(..n_bids).unwrap_or_default())),
            a: Some(Levels::Placed(&r.body, at.get(n_bids..).unwrap_or_default())),
        };
        let ts = Num(cts.unwrap_or(ts)).millis_ns();
        Some(self.book(c.str(ty) == "snapshot", &book, ts, r, report))
    }

    fn frame(&mut self, r: &RawRecord, report: &mut CheckReport) -> Result<(), String> {
        if !self.serde_only {
            if let Some(done) = self.book_exact(r, report) {
                return done;
            }
        }
        let f: Frame<'_> = wire::parse(&r.body)?;
        let Some(topic) = f.topic else {
            // Subscription acks, pongs.
            if f.op.is_some() || f.success.is_some() {
                report.count("ignored", 1);
                return Ok(());
            }
            return Err("neither `topic` nor `op`".to_owned());
        };
        let snapshot = f.ty.unwrap_or("snapshot") == "snapshot";
        let channel = topic.split('.').next().unwrap_or_default();
        // `cts` is the matching engine's time of a book message, `ts` the frame's.
        let ts = f.cts.unwrap_or(f.ts).millis_ns();
        match channel {
            "orderbook" => {
                let d: BookData<'_> = serde_json::from_str(f.data.map_or("null", RawValue::get))
                    .map_err(|e| format!("orderbook data: {e}"))?;
                self.book(snapshot, &d.into(), ts, r, report)?;
            }
            "publicTrade" => {
                let data = f.data.ok_or("publicTrade without data array")?;
                let mut n = 0;
                wire::for_each(data, |t: TradeData<'_>| {
                    let trade = Trade {
                        price: Price::parse(t.p.unwrap_or("?")).map_err(|e| format!("trade p: {e}"))?,
                        qty: Qty::parse_size(t.v.unwrap_or("?")).map_err(|e| format!("trade v: {e}"))?,
                        trade_id: t.i.0,
                        aggressor: if t.S == Some("Sell") { Side::Sell } else { Side::Buy },
                    };
                    self.emit.event(t.s.unwrap_or_default(), t.T.millis_ns(), r.ts_ns, MarketEventKind::Trade(trade));
                    n += 1;
                    Ok(())
                })
                .map_err(|e| format!("publicTrade: {e}"))?;
                report.count("trade", n);
            }
            "tickers" => {
                // Linear tickers carry the top of book (deltas only the fields that changed);
                // spot tickers carry none.
                let d: Option<TickerData<'_>> = serde_json::from_str(f.data.map_or("null", RawValue::get))
                    .map_err(|e| format!("tickers data: {e}"))?;
                if let Some(TickerData {
                    bid_px: Some(bp),
                    bid_sz: Some(bs),
                    ask_px: Some(ap),
                    ask_sz: Some(az),
                    symbol: Some(sym),
                }) = d
                {
                    let bad = |e: argus_core::ParseFixedError| format!("ticker: {e}");
                    let quote = Quote {
                        bid_price: Price::parse(bp).map_err(bad)?,
                        bid_qty: Qty::parse_size(bs).map_err(bad)?,
                        ask_price: Price::parse(ap).map_err(bad)?,
                        ask_qty: Qty::parse_size(az).map_err(bad)?,
                    };
                    self.emit.event(sym, f.ts.millis_ns(), r.ts_ns, MarketEventKind::Quote(quote));
                }
                report.count("quote", 1);
            }
            _ => report.count("ignored", 1),
        }
        Ok(())
    }
}

impl Checker for BybitChecker {
    fn on_ws(&mut self, r: &RawRecord, report: &mut CheckReport) {
        super::frame(r, report, |report| self.frame(r, report));
    }

    fn collect_events(&mut self) -> bool {
        self.emit.enable()
    }

    fn take_events(&mut self, f: &mut dyn FnMut(&str, &argus_core::MarketEvent)) {
        self.emit.take(f);
    }

    fn books(&self) -> Vec<(String, super::BookReport)> {
        self.syms.iter().filter_map(|(s, i)| i.view.as_ref().map(|v| (s.clone(), v.report()))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rawlog::{MergedInputs, RawKind};

    use crate::check::run_frame as run;

    #[test]
    fn exact_books_read_as_serde_does_on_real_and_damaged_frames() {
        let (mut fast, mut slow) =
            (BybitChecker::default(), BybitChecker { serde_only: true, ..BybitChecker::default() });
        fast.collect_events();
        slow.collect_events();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/bybit/2024-12-01_XRPUSDT_ob500.data.gz");
        let mut books: Vec<String> = Vec::new();
        for r in MergedInputs::open(&[path.into()]).unwrap() {
            assert_eq!(run(&mut fast, &r), run(&mut slow, &r), "{}", r.body);
            books.push(r.body);
        }
        // Spot's layout (no `cts`), a linear snapshot without `seq`, and a restart (`u` = 1).
        books.push(r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1733011200800,"data":{"s":"XRPUSDT","b":[["1.9531","0"]],"a":[],"u":20255870,"seq":1}}"#.to_owned());
        books.push(r#"{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1672304484978,"data":{"s":"BTCUSDT","b":[["16493.50","0.006"]],"a":[["16611.00","0.029"]],"u":1},"cts":1672304484976}"#.to_owned());
        assert!(books.len() > 40, "{}", books.len());
        let probe = |body: &str| {
            let r = RawRecord { ts_ns: 7, kind: RawKind::Ws, body: body.to_owned(), input: 0, line: 1 };
            BybitChecker::default().book_exact(&r, &mut CheckReport::default()).is_some()
        };
        assert!(books.iter().all(|b| probe(b)), "a real push fell back to serde");
        let small = books.iter().filter(|b| b.len() < 1000).take(10).chain(books.iter().rev().take(2));
        let damaged = crate::check::run_damaged(&mut fast, &mut slow, small);
        assert!(damaged > 10_000, "{damaged}");
    }
}
