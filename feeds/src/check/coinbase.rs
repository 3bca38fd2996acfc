//! Coinbase: the Exchange (ex-Pro) feed found in recordings (`snapshot`/`l2update`, `match`,
//! `ticker`) and Advanced Trade (`l2_data`, `market_trades`, per-connection `sequence_num`).

use std::collections::BTreeMap;

use argus_core::{BookAction, BookDelta, DeltaFlags, MarketEventKind, Price, Qty, Quote, Side, Trade};
use serde_json::Value;

use super::{rfc3339, CheckReport, Checker, Emitter, SymbolBook};
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
}

fn trade(price: &Value, size: &Value, id: &Value, aggressor: Side) -> Result<Trade, String> {
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    Ok(Trade {
        price: Price::parse(&s(price)).map_err(|e| format!("trade price: {e}"))?,
        qty: Qty::parse_size(&s(size)).map_err(|e| format!("trade size: {e}"))?,
        trade_id: id.as_u64().or_else(|| id.as_str().and_then(|s| s.parse().ok())).unwrap_or(0),
        aggressor,
    })
}

fn quote(bp: &Value, bs: &Value, ap: &Value, asz: &Value) -> Result<Quote, String> {
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let bad = |e: argus_core::ParseFixedError| format!("ticker: {e}");
    Ok(Quote {
        bid_price: Price::parse(&s(bp)).map_err(bad)?,
        bid_qty: Qty::parse_size(&s(bs)).map_err(bad)?,
        ask_price: Price::parse(&s(ap)).map_err(bad)?,
        ask_qty: Qty::parse_size(&s(asz)).map_err(bad)?,
    })
}

fn level(side: Side, p: &str, q: &str, flags: u8) -> Result<BookDelta, String> {
    let price = Price::parse(p).map_err(|e| format!("price `{p}`: {e}"))?;
    let qty = Qty::parse_size(q).map_err(|e| format!("size `{q}`: {e}"))?;
    Ok(BookDelta { action: BookAction::Update, side, flags: DeltaFlags(flags), price, qty, sequence: 0 })
}

impl CoinbaseChecker {
    /// Applies one product's levels; `snapshot` clears the book first.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        product: &str,
        snapshot: bool,
        levels: &[(Side, &str, &str)],
        ts: u64,
        line: u64,
        report: &mut CheckReport,
    ) {
        let was_broken = self.broken.iter().any(|p| p == product);
        let recv = self.recv;
        let book = self.books.entry(product.to_owned()).or_insert_with(SymbolBook::new);
        let emit = &mut self.emit;
        if !snapshot && !book.synced {
            if !was_broken {
                report.error(format!("line {line}: {product} update before its snapshot"));
            }
            return;
        }
        if snapshot {
            emit.stage(book.clear_for_snapshot(0));
        }
        let flags = if snapshot { DeltaFlags::SNAPSHOT } else { 0 };
        let mut n = 0;
        for &(side, p, q) in levels {
            match level(side, p, q, flags) {
                Ok(d) => {
                    book.learn(p, q);
                    book.apply(&d);
                    emit.stage(d);
                    n += 1;
                }
                // A bad level (real captures hold `0.-10000`) is counted; the rest of the
                // message still applies, as a venue-side typo must not kill the book.
                Err(e) => report.error(format!("line {line}: {product}: {e}")),
            }
        }
        report.count("delta", n);
        emit.flush(product, ts, recv);
        if snapshot {
            book.synced = true;
            if was_broken {
                report.resyncs += 1;
                self.broken.retain(|p| p != product);
            }
        }
    }

    fn exchange(&mut self, v: &Value, ty: &str, line: u64, report: &mut CheckReport) -> Result<(), String> {
        let product = v["product_id"].as_str().unwrap_or_default().to_owned();
        match ty {
            "snapshot" => {
                let mut levels = Vec::new();
                for (key, side) in [("bids", Side::Buy), ("asks", Side::Sell)] {
                    for l in v[key].as_array().ok_or(format!("snapshot without `{key}`"))? {
                        levels.push((side, l[0].as_str().unwrap_or("?"), l[1].as_str().unwrap_or("?")));
                    }
                }
                // Snapshots carry no time: they are as fresh as the frame.
                self.apply(&product, true, &levels, 0, line, report);
            }
            "l2update" => {
                let mut levels = Vec::new();
                for c in v["changes"].as_array().ok_or("l2update without `changes`")? {
                    let side = match c[0].as_str() {
                        Some("buy") => Side::Buy,
                        Some("sell") => Side::Sell,
                        _ => return Err(format!("bad change side {}", c[0])),
                    };
                    levels.push((side, c[1].as_str().unwrap_or("?"), c[2].as_str().unwrap_or("?")));
                }
                self.apply(&product, false, &levels, rfc3339(&v["time"]), line, report);
            }
            "match" | "last_match" => {
                // `side` is the maker's: a `sell` maker was hit by a buyer.
                let aggressor = if v["side"] == "sell" { Side::Buy } else { Side::Sell };
                let t = trade(&v["price"], &v["size"], &v["trade_id"], aggressor)?;
                self.emit.event(&product, rfc3339(&v["time"]), self.recv, MarketEventKind::Trade(t));
                report.count("trade", 1);
            }
            "ticker" => {
                if !v["best_bid_size"].is_null() {
                    let q = quote(&v["best_bid"], &v["best_bid_size"], &v["best_ask"], &v["best_ask_size"])?;
                    self.emit.event(&product, rfc3339(&v["time"]), self.recv, MarketEventKind::Quote(q));
                }
                report.count("quote", 1);
            }
            "heartbeat" | "subscriptions" | "error" | "status" => report.count("ignored", 1),
            other => return Err(format!("unknown message type `{other}`")),
        }
        Ok(())
    }

    fn advanced(&mut self, v: &Value, channel: &str, line: u64, report: &mut CheckReport) -> Result<(), String> {
        if let Some(seq) = v["sequence_num"].as_u64() {
            if let Some(last) = self.last_seq {
                if seq != last + 1 && seq > last {
                    // One sequence for the whole connection: every book is suspect.
                    report.gaps += 1;
                    for (p, b) in &mut self.books {
                        if b.synced {
                            b.synced = false;
                            self.broken.push(p.clone());
                            self.emit.broken(p, rfc3339(&v["timestamp"]), self.recv);
                        }
                    }
                }
            }
            self.last_seq = Some(seq);
        }
        let events = v["events"].as_array().ok_or("no `events`")?;
        match channel {
            "l2_data" => {
                for e in events {
                    let product = e["product_id"].as_str().ok_or("event without product_id")?.to_owned();
                    let snapshot = e["type"].as_str() == Some("snapshot");
                    let mut levels = Vec::new();
                    for u in e["updates"].as_array().ok_or("event without updates")? {
                        let side = match u["side"].as_str() {
                            Some("bid") => Side::Buy,
                            Some("offer" | "ask") => Side::Sell,
                            _ => return Err(format!("bad update side {}", u["side"])),
                        };
                        levels.push((
                            side,
                            u["price_level"].as_str().unwrap_or("?"),
                            u["new_quantity"].as_str().unwrap_or("?"),
                        ));
                    }
                    let ts = match rfc3339(&e["updates"][0]["event_time"]) {
                        0 => rfc3339(&v["timestamp"]),
                        t => t,
                    };
                    self.apply(&product, snapshot, &levels, ts, line, report);
                }
            }
            "market_trades" => {
                let mut n = 0;
                for e in events {
                    for t in e["trades"].as_array().map_or(&[][..], Vec::as_slice) {
                        // Advanced Trade reports the taker's side.
                        let aggressor = if t["side"] == "SELL" { Side::Sell } else { Side::Buy };
                        let tr = trade(&t["price"], &t["size"], &t["trade_id"], aggressor)?;
                        let product = t["product_id"].as_str().unwrap_or_default();
                        self.emit.event(product, rfc3339(&t["time"]), self.recv, MarketEventKind::Trade(tr));
                        n += 1;
                    }
                }
                report.count("trade", n);
            }
            "ticker" | "ticker_batch" => {
                for e in events {
                    for t in e["tickers"].as_array().map_or(&[][..], Vec::as_slice) {
                        if !t["best_bid_quantity"].is_null() {
                            let q = quote(
                                &t["best_bid"],
                                &t["best_bid_quantity"],
                                &t["best_ask"],
                                &t["best_ask_quantity"],
                            )?;
                            let product = t["product_id"].as_str().unwrap_or_default();
                            self.emit.event(product, rfc3339(&v["timestamp"]), self.recv, MarketEventKind::Quote(q));
                        }
                    }
                }
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
        super::json_frame(r, report, |v, report| {
            if let Some(ch) = v["channel"].as_str() {
                self.advanced(v, ch, r.line, report)
            } else if let Some(ty) = v["type"].as_str() {
                self.exchange(v, ty, r.line, report)
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

    fn take_events(&mut self, out: &mut Vec<(String, argus_core::MarketEvent)>) {
        self.emit.take(out);
    }
}
