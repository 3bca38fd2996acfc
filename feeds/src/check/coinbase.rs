//! Coinbase: the Exchange (ex-Pro) feed found in recordings (`snapshot`/`l2update`, `match`,
//! `ticker`) and Advanced Trade (`l2_data`, `market_trades`, per-connection `sequence_num`).

use std::collections::BTreeMap;

use argus_core::{BookAction, BookDelta, DeltaFlags, MarketEventKind, Price, Qty, Quote, Side, Trade, UnixNanos};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::wire::{self, Level, Num};
use super::{CheckReport, Checker, Emitter, SymbolBook};
use crate::rawlog::RawRecord;

#[derive(Default)]
pub(crate) struct CoinbaseChecker {
    books: BTreeMap<String, SymbolBook>,
    /// Advanced Trade's last `sequence_num` (per connection, across channels).
    last_seq: Option<u64>,
    /// Products whose book broke and waits for a snapshot.
    broken: Vec<String>,
    emit: Emitter,
    /// Receive time of the frame being read.
    recv: u64,
    /// An `l2_data` push read by [`CoinbaseChecker::l2_data_exact`]: each update's side and
    /// where its price and size are in the frame (reused from frame to frame).
    at: Vec<(Side, wire::LevelAt)>,
    /// A `market_trades` push read by [`CoinbaseChecker::market_trades_exact`]: each trade's
    /// id and the places of its product, price, size, side and time (reused).
    trades_at: Vec<(u64, [std::ops::Range<usize>; 5])>,
    /// Tests: read every frame through serde (the reference the exact path is held to).
    serde_only: bool,
}

/// Every field either feed puts at the top level of a frame: Exchange messages are told apart
/// by `type`, Advanced Trade ones by `channel`.
#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow, rename = "type")]
    ty: Option<&'a str>,
    #[serde(borrow)]
    channel: Option<&'a str>,
    #[serde(borrow)]
    product_id: Option<&'a str>,
    #[serde(borrow)]
    bids: Option<&'a RawValue>,
    #[serde(borrow)]
    asks: Option<&'a RawValue>,
    #[serde(borrow)]
    changes: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a str>,
    #[serde(borrow)]
    price: Option<&'a str>,
    #[serde(borrow)]
    size: Option<&'a str>,
    #[serde(borrow)]
    side: Option<&'a str>,
    #[serde(default)]
    trade_id: Num,
    #[serde(borrow)]
    best_bid: Option<&'a str>,
    #[serde(borrow)]
    best_bid_size: Option<&'a str>,
    #[serde(borrow)]
    best_ask: Option<&'a str>,
    #[serde(borrow)]
    best_ask_size: Option<&'a str>,
    sequence_num: Option<u64>,
    #[serde(borrow)]
    timestamp: Option<&'a str>,
    #[serde(borrow)]
    events: Option<&'a RawValue>,
}

/// An Exchange `l2update` change: `["buy", price, size]`.
#[derive(Deserialize)]
struct Change<'a>(#[serde(borrow)] &'a str, #[serde(borrow)] &'a str, #[serde(borrow)] &'a str);

/// An Advanced Trade event: `l2_data` carries `updates`, `market_trades` `trades`, `ticker`
/// `tickers`.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, rename = "type")]
    ty: Option<&'a str>,
    #[serde(borrow)]
    product_id: Option<&'a str>,
    #[serde(borrow)]
    updates: Option<&'a RawValue>,
    #[serde(borrow)]
    trades: Option<&'a RawValue>,
    #[serde(borrow)]
    tickers: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Update<'a> {
    #[serde(borrow)]
    side: Option<&'a str>,
    #[serde(borrow)]
    event_time: Option<&'a str>,
    #[serde(borrow)]
    price_level: Option<&'a str>,
    #[serde(borrow)]
    new_quantity: Option<&'a str>,
}

#[derive(Deserialize)]
struct AtTrade<'a> {
    #[serde(default)]
    trade_id: Num,
    #[serde(borrow)]
    product_id: Option<&'a str>,
    #[serde(borrow)]
    price: Option<&'a str>,
    #[serde(borrow)]
    size: Option<&'a str>,
    #[serde(borrow)]
    side: Option<&'a str>,
    #[serde(borrow)]
    time: Option<&'a str>,
}

#[derive(Deserialize)]
struct AtTicker<'a> {
    #[serde(borrow)]
    product_id: Option<&'a str>,
    #[serde(borrow)]
    best_bid: Option<&'a str>,
    #[serde(borrow)]
    best_bid_quantity: Option<&'a str>,
    #[serde(borrow)]
    best_ask: Option<&'a str>,
    #[serde(borrow)]
    best_ask_quantity: Option<&'a str>,
}

/// The head every Advanced Trade push shares, read exactly up to its first event's `type`
/// (`{"channel":"CHANNEL","client_id":"..","timestamp":"..","sequence_num":N,"events":[{"type":
/// ".."`): the places of `timestamp` and `type`, and the sequence number.
fn advanced_head(
    c: &mut wire::Exact<'_>,
    channel: &str,
) -> Option<(std::ops::Range<usize>, u64, std::ops::Range<usize>)> {
    c.lit(b"{\"channel\":")?;
    let ch = c.text()?;
    (c.str(ch) == channel).then_some(())?;
    c.lit(b",\"client_id\":")?;
    c.text()?;
    c.lit(b",\"timestamp\":")?;
    let ts = c.text()?;
    c.lit(b",\"sequence_num\":")?;
    let seq = u64::try_from(c.int()?).ok()?;
    c.lit(b",\"events\":[{\"type\":")?;
    let ty = c.text()?;
    Some((ts, seq, ty))
}

/// A venue's RFC 3339 timestamp in nanoseconds (0 when absent or unreadable).
fn rfc3339(s: Option<&str>) -> u64 {
    s.and_then(UnixNanos::parse_rfc3339).map_or(0, |t| t.0)
}

fn trade(price: Option<&str>, size: Option<&str>, id: Num, aggressor: Side) -> Result<Trade, String> {
    Ok(Trade {
        price: Price::parse(price.unwrap_or("?")).map_err(|e| format!("trade price: {e}"))?,
        qty: Qty::parse_size(size.unwrap_or("?")).map_err(|e| format!("trade size: {e}"))?,
        trade_id: id.0,
        aggressor,
    })
}

fn quote(bp: Option<&str>, bs: Option<&str>, ap: Option<&str>, az: Option<&str>) -> Result<Quote, String> {
    let bad = |e: argus_core::ParseFixedError| format!("ticker: {e}");
    Ok(Quote {
        bid_price: Price::parse(bp.unwrap_or("?")).map_err(bad)?,
        bid_qty: Qty::parse_size(bs.unwrap_or("?")).map_err(bad)?,
        ask_price: Price::parse(ap.unwrap_or("?")).map_err(bad)?,
        ask_qty: Qty::parse_size(az.unwrap_or("?")).map_err(bad)?,
    })
}

fn level(side: Side, p: &str, q: &str, flags: u8) -> Result<BookDelta, String> {
    let price = Price::parse(p).map_err(|e| format!("price `{p}`: {e}"))?;
    let qty = Qty::parse_size(q).map_err(|e| format!("size `{q}`: {e}"))?;
    Ok(BookDelta { action: BookAction::Update, side, flags: DeltaFlags(flags), price, qty, sequence: 0 })
}

/// Where one message's levels go: the product's book, the emitter, the report.
struct Apply<'c> {
    book: &'c mut SymbolBook,
    emit: &'c mut Emitter,
    report: &'c mut CheckReport,
    product: &'c str,
    flags: u8,
    line: u64,
    n: u64,
}

impl Apply<'_> {
    fn level(&mut self, side: Side, p: &str, q: &str) {
        match level(side, p, q, self.flags) {
            Ok(d) => {
                self.book.learn(p, q);
                self.book.apply(&d);
                self.emit.stage(d);
                self.n += 1;
            }
            // A bad level (real captures hold `0.-10000`) is counted; the rest of the
            // message still applies, as a venue-side typo must not kill the book.
            Err(e) => self.report.error(format!("line {}: {}: {e}", self.line, self.product)),
        }
    }
}

impl CoinbaseChecker {
    /// Applies one product's levels, which `levels` hands to its [`Apply`] and returns the
    /// message's time (0: use `ts`); `snapshot` clears the book first. A message that breaks
    /// off part-way (malformed) leaves the book stale until the next snapshot.
    fn apply(
        &mut self,
        product: &str,
        snapshot: bool,
        ts: u64,
        line: u64,
        report: &mut CheckReport,
        levels: impl FnOnce(&mut Apply<'_>) -> Result<u64, String>,
    ) -> Result<(), String> {
        let was_broken = self.broken.iter().any(|p| p == product);
        let recv = self.recv;
        if !self.books.contains_key(product) {
            self.books.insert(product.to_owned(), SymbolBook::new());
        }
        let Some(book) = self.books.get_mut(product) else { return Ok(()) };
        let emit = &mut self.emit;
        if !snapshot && !book.synced {
            if !was_broken {
                report.error(format!("line {line}: {product} update before its snapshot"));
            }
            return Ok(());
        }
        if snapshot {
            emit.stage(book.clear_for_snapshot(0));
        }
        let flags = if snapshot { DeltaFlags::SNAPSHOT } else { 0 };
        let mut a = Apply { book, emit, report, product, flags, line, n: 0 };
        let read = levels(&mut a);
        let n = a.n;
        report.count("delta", n);
        let msg_ts = match read {
            Ok(t) => t,
            Err(e) => {
                book.synced = false;
                if !was_broken {
                    self.broken.push(product.to_owned());
                }
                emit.broken(product, ts, recv);
                return Err(e);
            }
        };
        emit.flush(product, if msg_ts == 0 { ts } else { msg_ts }, recv);
        if snapshot {
            book.synced = true;
            if was_broken {
                report.resyncs += 1;
                self.broken.retain(|p| p != product);
            }
        }
        Ok(())
    }

    fn exchange(&mut self, m: &Msg<'_>, ty: &str, line: u64, report: &mut CheckReport) -> Result<(), String> {
        let product = m.product_id.unwrap_or_default();
        match ty {
            "snapshot" => {
                let (bids, asks) = (m.bids.ok_or("snapshot without `bids`")?, m.asks.ok_or("snapshot without `asks`")?);
                // Snapshots carry no time: they are as fresh as the frame.
                self.apply(product, true, 0, line, report, |a| {
                    for (levels, side) in [(bids, Side::Buy), (asks, Side::Sell)] {
                        wire::for_each(levels, |Level(p, q)| {
                            a.level(side, p, q);
                            Ok(())
                        })?;
                    }
                    Ok(0)
                })?;
            }
            "l2update" => {
                let changes = m.changes.ok_or("l2update without `changes`")?;
                self.apply(product, false, rfc3339(m.time), line, report, |a| {
                    wire::for_each(changes, |Change(side, p, q)| {
                        let side = match side {
                            "buy" => Side::Buy,
                            "sell" => Side::Sell,
                            other => return Err(format!("bad change side `{other}`")),
                        };
                        a.level(side, p, q);
                        Ok(())
                    })?;
                    Ok(0)
                })?;
            }
            "match" | "last_match" => {
                // `side` is the maker's: a `sell` maker was hit by a buyer.
                let aggressor = if m.side == Some("sell") { Side::Buy } else { Side::Sell };
                let t = trade(m.price, m.size, m.trade_id, aggressor)?;
                self.emit.event(product, rfc3339(m.time), self.recv, MarketEventKind::Trade(t));
                report.count("trade", 1);
            }
            "ticker" => {
                if m.best_bid_size.is_some() {
                    let q = quote(m.best_bid, m.best_bid_size, m.best_ask, m.best_ask_size)?;
                    self.emit.event(product, rfc3339(m.time), self.recv, MarketEventKind::Quote(q));
                }
                report.count("quote", 1);
            }
            "heartbeat" | "subscriptions" | "error" | "status" => report.count("ignored", 1),
            other => return Err(format!("unknown message type `{other}`")),
        }
        Ok(())
    }

    /// Advanced Trade's per-connection `sequence_num`: a jump marks every book stale.
    fn sequence(&mut self, seq: Option<u64>, frame_ts: u64, report: &mut CheckReport) {
        let Some(seq) = seq else { return };
        if let Some(last) = self.last_seq {
            if seq != last + 1 && seq > last {
                // One sequence for the whole connection: every book is suspect.
                report.gaps += 1;
                for (p, b) in &mut self.books {
                    if b.synced {
                        b.synced = false;
                        self.broken.push(p.clone());
                        self.emit.broken(p, frame_ts, self.recv);
                    }
                }
            }
        }
        self.last_seq = Some(seq);
    }

    /// An Advanced Trade `l2_data` push with one event in Coinbase's own layout
    /// (`{"channel":"l2_data","client_id":"..","timestamp":"..","sequence_num":N,"events":[{"type":
    /// "..","product_id":"..","updates":[{"side":"bid|offer","event_time":"..","price_level":"..",
    /// "new_quantity":".."},..]}]}`), checked whole in one pass without serde and then applied as
    /// [`Self::advanced`] would; `None` (nothing done) for anything else.
    fn l2_data_exact(&mut self, r: &RawRecord, report: &mut CheckReport) -> Option<Result<(), String>> {
        wire::with_buffer(self, |c| &mut c.at, |c, at| c.l2_data_exact_in(r, report, at))
    }

    fn l2_data_exact_in(
        &mut self,
        r: &RawRecord,
        report: &mut CheckReport,
        at: &mut Vec<(Side, wire::LevelAt)>,
    ) -> Option<Result<(), String>> {
        let body = r.body.as_str();
        let mut c = wire::Exact::new(body);
        let (ts, seq, ty) = advanced_head(&mut c, "l2_data")?;
        c.lit(b",\"product_id\":")?;
        let product = c.text()?;
        c.lit(b",\"updates\":[")?;
        // The message's time is its first level's.
        let mut first_time = None;
        if !c.take(b"]") {
            loop {
                c.lit(b"{\"side\":")?;
                let side = c.text()?;
                let side = match c.str(side) {
                    "bid" => Side::Buy,
                    "offer" | "ask" => Side::Sell,
                    _ => return None,
                };
                c.lit(b",\"event_time\":")?;
                let t = c.text()?;
                first_time.get_or_insert(t);
                c.lit(b",\"price_level\":")?;
                let px = c.text()?;
                c.lit(b",\"new_quantity\":")?;
                let sz = c.text()?;
                c.lit(b"}")?;
                at.push((side, wire::LevelAt { px, sz }));
                if !c.take(b",") {
                    break;
                }
            }
            c.lit(b"]")?;
        }
        c.lit(b"}]}")?;
        c.end()?;
        let frame_ts = rfc3339(Some(c.str(ts)));
        self.sequence(Some(seq), frame_ts, report);
        let msg_ts = first_time.map_or(0, |t| rfc3339(Some(c.str(t))));
        let text = |r: &std::ops::Range<usize>| body.get(r.clone()).unwrap_or_default();
        let applied = self.apply(c.str(product), c.str(ty) == "snapshot", frame_ts, r.line, report, |a| {
            for (side, l) in at.iter() {
                a.level(*side, text(&l.px), text(&l.sz));
            }
            Ok(msg_ts)
        });
        Some(applied)
    }

    /// An Advanced Trade `market_trades` push with one event in Coinbase's own layout
    /// (`{"channel":"market_trades","client_id":"..","timestamp":"..","sequence_num":N,"events":
    /// [{"type":"..","trades":[{"trade_id":"..","product_id":"..","price":"..","size":"..","side":
    /// "..","time":".."},..]}]}`), checked whole without serde and then emitted as
    /// [`Self::advanced`] would; `None` (nothing done) for anything else.
    fn market_trades_exact(&mut self, r: &RawRecord, report: &mut CheckReport) -> Option<Result<(), String>> {
        wire::with_buffer(self, |c| &mut c.trades_at, |c, at| c.market_trades_exact_in(r, report, at))
    }

    fn market_trades_exact_in(
        &mut self,
        r: &RawRecord,
        report: &mut CheckReport,
        at: &mut Vec<(u64, [std::ops::Range<usize>; 5])>,
    ) -> Option<Result<(), String>> {
        let body = r.body.as_str();
        let mut c = wire::Exact::new(body);
        let (ts, seq, _) = advanced_head(&mut c, "market_trades")?;
        c.lit(b",\"trades\":[")?;
        if !c.take(b"]") {
            loop {
                c.lit(b"{\"trade_id\":")?;
                let id = c.digits()?;
                c.lit(b",\"product_id\":")?;
                let product = c.text()?;
                c.lit(b",\"price\":")?;
                let price = c.text()?;
                c.lit(b",\"size\":")?;
                let size = c.text()?;
                c.lit(b",\"side\":")?;
                let side = c.text()?;
                c.lit(b",\"time\":")?;
                let time = c.text()?;
                c.lit(b"}")?;
                at.push((id, [product, price, size, side, time]));
                if !c.take(b",") {
                    break;
                }
            }
            c.lit(b"]")?;
        }
        c.lit(b"}]}")?;
        c.end()?;
        self.sequence(Some(seq), rfc3339(Some(c.str(ts))), report);
        let text = |r: &std::ops::Range<usize>| body.get(r.clone()).unwrap_or_default();
        for (id, [product, price, size, side, time]) in at.iter() {
            // Advanced Trade reports the taker's side.
            let aggressor = if text(side) == "SELL" { Side::Sell } else { Side::Buy };
            let t = match trade(Some(text(price)), Some(text(size)), Num(*id), aggressor) {
                Ok(t) => t,
                Err(e) => return Some(Err(e)),
            };
            self.emit.event(text(product), rfc3339(Some(text(time))), self.recv, MarketEventKind::Trade(t));
        }
        report.count("trade", at.len() as u64);
        Some(Ok(()))
    }

    fn advanced(&mut self, m: &Msg<'_>, channel: &str, line: u64, report: &mut CheckReport) -> Result<(), String> {
        let frame_ts = rfc3339(m.timestamp);
        self.sequence(m.sequence_num, frame_ts, report);
        let events = m.events.ok_or("no `events`")?;
        match channel {
            "l2_data" => wire::for_each(events, |e: Event<'_>| {
                let product = e.product_id.ok_or("event without product_id")?;
                let updates = e.updates.ok_or("event without updates")?;
                self.apply(product, e.ty == Some("snapshot"), frame_ts, line, report, |a| {
                    // The message's time is its first level's.
                    let mut ts = None;
                    wire::for_each(updates, |u: Update<'_>| {
                        let side = match u.side {
                            Some("bid") => Side::Buy,
                            Some("offer" | "ask") => Side::Sell,
                            other => return Err(format!("bad update side {other:?}")),
                        };
                        ts.get_or_insert_with(|| rfc3339(u.event_time));
                        a.level(side, u.price_level.unwrap_or("?"), u.new_quantity.unwrap_or("?"));
                        Ok(())
                    })?;
                    Ok(ts.unwrap_or(0))
                })
            })?,
            "market_trades" => {
                let mut n = 0;
                wire::for_each(events, |e: Event<'_>| {
                    let Some(trades) = e.trades else { return Ok(()) };
                    wire::for_each(trades, |t: AtTrade<'_>| {
                        // Advanced Trade reports the taker's side.
                        let aggressor = if t.side == Some("SELL") { Side::Sell } else { Side::Buy };
                        let tr = trade(t.price, t.size, t.trade_id, aggressor)?;
                        let product = t.product_id.unwrap_or_default();
                        self.emit.event(product, rfc3339(t.time), self.recv, MarketEventKind::Trade(tr));
                        n += 1;
                        Ok(())
                    })
                })?;
                report.count("trade", n);
            }
            "ticker" | "ticker_batch" => {
                wire::for_each(events, |e: Event<'_>| {
                    let Some(tickers) = e.tickers else { return Ok(()) };
                    wire::for_each(tickers, |t: AtTicker<'_>| {
                        if t.best_bid_quantity.is_some() {
                            let q = quote(t.best_bid, t.best_bid_quantity, t.best_ask, t.best_ask_quantity)?;
                            let product = t.product_id.unwrap_or_default();
                            self.emit.event(product, frame_ts, self.recv, MarketEventKind::Quote(q));
                        }
                        Ok(())
                    })
                })?;
                report.count("quote", 1);
            }
            _ => report.count("ignored", 1),
        }
        Ok(())
    }
}

impl Checker for CoinbaseChecker {
    fn on_ws(&mut self, r: &RawRecord, report: &mut CheckReport) {
        self.recv = r.ts_ns;
        super::frame(r, report, |report| {
            if !self.serde_only {
                if let Some(done) = self.l2_data_exact(r, report) {
                    return done;
                }
                if let Some(done) = self.market_trades_exact(r, report) {
                    return done;
                }
            }
            let m: Msg<'_> = wire::parse(&r.body)?;
            if let Some(ch) = m.channel {
                self.advanced(&m, ch, r.line, report)
            } else if let Some(ty) = m.ty {
                self.exchange(&m, ty, r.line, report)
            } else {
                Err("neither `type` nor `channel`".to_owned())
            }
        });
    }

    fn books(&self) -> Vec<(String, super::BookReport)> {
        self.books.iter().map(|(s, b)| (s.clone(), b.report())).collect()
    }

    fn collect_events(&mut self) -> bool {
        self.emit.enable()
    }

    fn take_events(&mut self, f: &mut dyn FnMut(&str, &argus_core::MarketEvent)) {
        self.emit.take(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::run_frame as run;
    use crate::rawlog::{MergedInputs, RawKind};

    /// An Advanced Trade `l2_data` push in the documented layout.
    fn l2(seq: u64, ty: &str, product: &str, updates: &[(&str, &str, &str)]) -> String {
        let ups: Vec<String> = updates
            .iter()
            .map(|(side, px, sz)| {
                format!(r#"{{"side":"{side}","event_time":"2026-12-04T08:00:0{seq}.5Z","price_level":"{px}","new_quantity":"{sz}"}}"#)
            })
            .collect();
        format!(
            r#"{{"channel":"l2_data","client_id":"","timestamp":"2026-12-04T08:00:0{seq}.6Z","sequence_num":{seq},"events":[{{"type":"{ty}","product_id":"{product}","updates":[{}]}}]}}"#,
            ups.join(",")
        )
    }

    /// Two checkers collecting events: the exact paths on, and serde only (the reference).
    fn fast_and_slow() -> (CoinbaseChecker, CoinbaseChecker) {
        let (mut fast, mut slow) =
            (CoinbaseChecker::default(), CoinbaseChecker { serde_only: true, ..CoinbaseChecker::default() });
        fast.collect_events();
        slow.collect_events();
        (fast, slow)
    }

    #[test]
    fn exact_l2_data_reads_as_serde_does_on_sessions_and_damaged_frames() {
        let (mut fast, mut slow) = fast_and_slow();
        let snapshot = l2(
            0,
            "snapshot",
            "ETH-USD",
            &[
                ("bid", "3001.50", "2.5"),
                ("offer", "3002.00", "1.25"),
                ("bid", "3001.00", "4"),
                ("offer", "3002.50", "0.5"),
            ],
        );
        let update = l2(1, "update", "ETH-USD", &[("bid", "3001.50", "0"), ("offer", "3001.75", "0.1")]);
        let mut frames = vec![
            snapshot.clone(),
            update.clone(),
            l2(2, "update", "ETH-USD", &[("ask", "3002.00", "3")]),
            l2(3, "update", "ETH-USD", &[]),
            // A jump in the connection's sequence: every book stale until its next snapshot.
            l2(5, "update", "ETH-USD", &[("bid", "3000.00", "1")]),
            l2(6, "snapshot", "ETH-USD", &[("bid", "3000.00", "1"), ("offer", "3000.50", "2")]),
            l2(7, "update", "BTC-USD", &[("bid", "90000.00", "1")]),
            // Left to serde: a side it does not know, two events in one push, an escape.
            l2(8, "update", "ETH-USD", &[("buy", "3000.25", "1")]),
            update
                .replace("}]}]}", "}]},{\"type\":\"update\",\"product_id\":\"ETH-USD\",\"updates\":[]}]}")
                .replace("\"sequence_num\":1", "\"sequence_num\":9"),
            l2(10, "update", "ETH-USD", &[("bid", "3000.00", "2")]).replace("ETH-USD", "ETH\\u002dUSD"),
            l2(11, "update", "ETH-USD", &[("offer", "0.-10000", "2")]),
        ];
        let mut exact = 0;
        for (i, body) in frames.iter().enumerate() {
            let r = RawRecord { ts_ns: 7, kind: RawKind::Ws, body: body.clone(), input: 0, line: i as u64 + 1 };
            assert_eq!(run(&mut fast, &r), run(&mut slow, &r), "{body}");
            let mut probe = CoinbaseChecker::default();
            exact += usize::from(probe.l2_data_exact(&r, &mut CheckReport::default()).is_some());
        }
        // All but the three left to serde.
        assert_eq!(exact, frames.len() - 3);
        // The Exchange capture after them (its own layout, all through serde) changes nothing.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/cryptofeed_COINBASE.ws.28.0.log.gz");
        for r in MergedInputs::open(&[path.into()]).unwrap().take(300) {
            assert_eq!(run(&mut fast, &r), run(&mut slow, &r), "{}", r.body);
        }
        frames.truncate(3);
        let damaged = crate::check::run_damaged(&mut fast, &mut slow, frames.iter());
        assert!(damaged > 1_000, "{damaged}");
        // The session's book as both read it.
        let books =
            |c: &CoinbaseChecker| c.books().into_iter().map(|(s, b)| (s, b.best_bid, b.best_ask)).collect::<Vec<_>>();
        assert_eq!(books(&fast), books(&slow));
    }

    #[test]
    fn exact_market_trades_read_as_serde_does_on_sessions_and_damaged_frames() {
        let (mut fast, mut slow) = fast_and_slow();
        let push = |seq: u64, trades: &[(&str, &str, &str, &str)]| {
            let ts: Vec<String> = trades
                .iter()
                .enumerate()
                .map(|(i, (id, px, sz, side))| {
                    format!(r#"{{"trade_id":{id},"product_id":"ETH-USD","price":"{px}","size":"{sz}","side":"{side}","time":"2026-12-04T08:00:0{i}.25Z"}}"#)
                })
                .collect();
            format!(
                r#"{{"channel":"market_trades","client_id":"","timestamp":"2026-12-04T08:00:0{seq}.5Z","sequence_num":{seq},"events":[{{"type":"update","trades":[{}]}}]}}"#,
                ts.join(",")
            )
        };
        let frames = [
            push(1, &[("\"101\"", "3001.50", "0.25", "BUY"), ("\"102\"", "3001.00", "1.5", "SELL")]),
            push(2, &[]),
            // A jump in the sequence; a bad price after a good trade (the good one is out).
            push(4, &[("\"103\"", "3000.00", "2", "SELL"), ("\"104\"", "0.-10000", "1", "BUY")]),
            // Left to serde: a numeric id, a signed one.
            push(5, &[("105", "3000.25", "1", "BUY")]),
            push(6, &[("\"+106\"", "3000.25", "1", "BUY")]),
        ];
        let mut exact = 0;
        for (i, body) in frames.iter().enumerate() {
            let r = RawRecord { ts_ns: 7, kind: RawKind::Ws, body: body.clone(), input: 0, line: i as u64 + 1 };
            let out = run(&mut fast, &r);
            assert_eq!(out, run(&mut slow, &r), "{body}");
            let mut probe = CoinbaseChecker::default();
            exact += usize::from(probe.market_trades_exact(&r, &mut CheckReport::default()).is_some());
            if i == 0 {
                assert_eq!(out.1.len(), 2, "both trades out");
            }
        }
        assert_eq!(exact, 3);
        let damaged = crate::check::run_damaged(&mut fast, &mut slow, frames[..3].iter());
        assert!(damaged > 1_000, "{damaged}");
    }
}
