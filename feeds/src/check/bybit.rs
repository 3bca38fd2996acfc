//! Bybit v5 (spot and linear): `orderbook.<depth>.<SYM>` snapshot/delta with `u` continuity
//! (a snapshot or `u == 1` resets), `publicTrade`, `tickers`.

use std::collections::BTreeMap;

use argus_core::{BookAction, BookDelta, DeltaFlags, MarketEventKind, Price, Qty, Quote, Side, Trade};
use serde_json::Value;

use super::{millis, CheckReport, Checker, Emitter, SymbolBook};
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
}

impl BybitChecker {
    fn book(&mut self, ty: &str, d: &Value, ts: u64, r: &RawRecord, report: &mut CheckReport) -> Result<(), String> {
        let (line, recv) = (r.line, r.ts_ns);
        let emit = &mut self.emit;
        let s = d["s"].as_str().ok_or("orderbook without `s`")?.to_owned();
        let u = d["u"].as_u64().ok_or("orderbook without `u`")?;
        let sym = self.syms.entry(s.clone()).or_default();
        let reset = ty == "snapshot" || u == 1;
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
                emit.broken(&s, ts, recv);
                return Ok(());
            }
        }
        let view = sym.view.get_or_insert_with(SymbolBook::new);
        let flags = if reset { DeltaFlags::SNAPSHOT } else { 0 };
        if reset {
            emit.stage(view.clear_for_snapshot(u));
        }
        let mut n = 0;
        let applied = (|| -> Result<(), String> {
            for (k, side) in [("b", Side::Buy), ("a", Side::Sell)] {
                for l in d[k].as_array().ok_or(format!("orderbook without `{k}`"))? {
                    let (p, q) = (l[0].as_str().ok_or("level price")?, l[1].as_str().ok_or("level size")?);
                    let price = Price::parse(p).map_err(|e| format!("price `{p}`: {e}"))?;
                    let qty = Qty::parse_size(q).map_err(|e| format!("size `{q}`: {e}"))?;
                    view.learn(p, q);
                    let delta = BookDelta {
                        action: BookAction::Update,
                        side,
                        flags: DeltaFlags(flags),
                        price,
                        qty,
                        sequence: u,
                    };
                    view.apply(&delta);
                    emit.stage(delta);
                    n += 1;
                }
            }
            Ok(())
        })();
        report.count("delta", n);
        if let Err(e) = applied {
            // Part of the message applied, part not: the book no longer matches the venue's.
            // A break like a gap: stale until a fresh snapshot (live: resubscribe).
            report.gaps += 1;
            sym.broken = true;
            view.synced = false;
            emit.broken(&s, ts, recv);
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
        emit.flush(&s, ts, recv);
        Ok(())
    }

    fn frame(&mut self, v: &Value, r: &RawRecord, report: &mut CheckReport) -> Result<(), String> {
        let Some(topic) = v["topic"].as_str() else {
            // Subscription acks, pongs.
            if v.get("op").is_some() || v.get("success").is_some() {
                report.count("ignored", 1);
                return Ok(());
            }
            return Err("neither `topic` nor `op`".to_owned());
        };
        let ty = v["type"].as_str().unwrap_or("snapshot");
        let channel = topic.split('.').next().unwrap_or_default();
        // `cts` is the matching engine's time of a book message, `ts` the frame's.
        let ts = millis(if v["cts"].is_null() { &v["ts"] } else { &v["cts"] });
        match channel {
            "orderbook" => self.book(ty, &v["data"], ts, r, report)?,
            "publicTrade" => {
                let trades = v["data"].as_array().ok_or("publicTrade without data array")?;
                for t in trades {
                    let trade = Trade {
                        price: Price::parse(t["p"].as_str().unwrap_or("?")).map_err(|e| format!("trade p: {e}"))?,
                        qty: Qty::parse_size(t["v"].as_str().unwrap_or("?")).map_err(|e| format!("trade v: {e}"))?,
                        trade_id: t["i"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
                        aggressor: if t["S"] == "Sell" { Side::Sell } else { Side::Buy },
                    };
                    let sym = t["s"].as_str().unwrap_or_default();
                    self.emit.event(sym, millis(&t["T"]), r.ts_ns, MarketEventKind::Trade(trade));
                }
                report.count("trade", trades.len() as u64);
            }
            "tickers" => {
                // Linear tickers carry the top of book (deltas only the fields that changed);
                // spot tickers carry none.
                let d = &v["data"];
                let field = |k: &str| d[k].as_str().map(str::to_owned);
                if let (Some(bp), Some(bs), Some(ap), Some(az), Some(sym)) =
                    (field("bid1Price"), field("bid1Size"), field("ask1Price"), field("ask1Size"), field("symbol"))
                {
                    let bad = |e: argus_core::ParseFixedError| format!("ticker: {e}");
                    let quote = Quote {
                        bid_price: Price::parse(&bp).map_err(bad)?,
                        bid_qty: Qty::parse_size(&bs).map_err(bad)?,
                        ask_price: Price::parse(&ap).map_err(bad)?,
                        ask_qty: Qty::parse_size(&az).map_err(bad)?,
                    };
                    self.emit.event(&sym, millis(&v["ts"]), r.ts_ns, MarketEventKind::Quote(quote));
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
        super::json_frame(r, report, |v, report| self.frame(v, r, report));
    }

    fn collect_events(&mut self) -> bool {
        self.emit.enable()
    }

    fn take_events(&mut self, out: &mut Vec<(String, argus_core::MarketEvent)>) {
        self.emit.take(out);
    }

    fn books(&self) -> Vec<(String, super::BookReport)> {
        self.syms.iter().filter_map(|(s, i)| i.view.as_ref().map(|v| (s.clone(), v.report()))).collect()
    }
}
