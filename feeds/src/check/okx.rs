//! OKX v5: `books*` snapshot/update with `seqId`/`prevSeqId` continuity and the signed CRC32
//! checksum over the top 25 levels as original strings; `trades`, `tickers`, `bbo-tbt`.

use std::collections::BTreeMap;

use argus_core::{BookAction, BookDelta, DeltaFlags, MarketEventKind, Price, Qty, Quote, Side, Trade};
use serde_json::Value;

use super::{millis, CheckReport, Checker, Emitter, SymbolBook};
use crate::kraken::key;
use crate::rawlog::RawRecord;

type Ladder = BTreeMap<i128, (String, String)>;

#[derive(Default)]
struct Inst {
    bids: Ladder,
    asks: Ladder,
    view: Option<SymbolBook>,
    seq: Option<i64>,
    broken: bool,
}

#[derive(Default)]
pub(crate) struct OkxChecker {
    insts: BTreeMap<String, Inst>,
    emit: Emitter,
}

/// OKX's checksum of a book: top 25 bids (desc) and asks (asc) interleaved, `px:sz` joined by
/// `:`, CRC32 as a signed 32-bit integer.
pub(crate) fn okx_checksum(bids: &Ladder, asks: &Ladder) -> i32 {
    let b: Vec<_> = bids.values().rev().take(25).collect();
    let a: Vec<_> = asks.values().take(25).collect();
    let mut parts: Vec<&str> = Vec::with_capacity(100);
    for i in 0..b.len().max(a.len()) {
        if let Some((p, q)) = b.get(i) {
            parts.push(p);
            parts.push(q);
        }
        if let Some((p, q)) = a.get(i) {
            parts.push(p);
            parts.push(q);
        }
    }
    crc32fast::hash(parts.join(":").as_bytes()) as i32
}

impl Inst {
    fn apply(&mut self, side: Side, px: &str, sz: &str, flags: u8, emit: &mut Emitter) -> Result<(), String> {
        let k = key(px).map_err(|e| e.to_string())?;
        let qty = Qty::parse_size(sz).map_err(|e| format!("size `{sz}`: {e}"))?;
        let ladder = if side == Side::Buy { &mut self.bids } else { &mut self.asks };
        if qty.units() == 0 {
            ladder.remove(&k);
        } else {
            ladder.insert(k, (px.to_owned(), sz.to_owned()));
        }
        let view = self.view.get_or_insert_with(SymbolBook::new);
        view.learn(px, sz);
        if let Ok(units) = i64::try_from(k) {
            let d = BookDelta {
                action: BookAction::Update,
                side,
                flags: DeltaFlags(flags),
                price: Price::from_units(units),
                qty,
                sequence: 0,
            };
            view.apply(&d);
            emit.stage(d);
        }
        Ok(())
    }
}

/// Best bid and offer from OKX's strings (an empty side reads as zero).
fn okx_quote(bp: &Value, bs: &Value, ap: &Value, asz: &Value) -> Result<Quote, String> {
    let px = |v: &Value| match v.as_str() {
        None | Some("") => Ok(Price::ZERO),
        Some(s) => Price::parse(s).map_err(|e| format!("quote price `{s}`: {e}")),
    };
    let sz = |v: &Value| match v.as_str() {
        None | Some("") => Ok(Qty::ZERO),
        Some(s) => Qty::parse_size(s).map_err(|e| format!("quote size `{s}`: {e}")),
    };
    Ok(Quote { bid_price: px(bp)?, bid_qty: sz(bs)?, ask_price: px(ap)?, ask_qty: sz(asz)? })
}

impl OkxChecker {
    fn book(
        &mut self,
        inst_id: &str,
        action: &str,
        d: &Value,
        r: &RawRecord,
        report: &mut CheckReport,
    ) -> Result<(), String> {
        let (line, ts, recv) = (r.line, millis(&d["ts"]), r.ts_ns);
        let inst = self.insts.entry(inst_id.to_owned()).or_default();
        let emit = &mut self.emit;
        let snapshot = action == "snapshot";
        if !snapshot && !inst.view.as_ref().is_some_and(|v| v.synced) {
            if !inst.broken {
                report.error(format!("line {line}: {inst_id} update before its snapshot"));
            }
            return Ok(());
        }
        let (seq, prev) = (d["seqId"].as_i64(), d["prevSeqId"].as_i64());
        if !snapshot {
            if let (Some(last), Some(prev)) = (inst.seq, prev) {
                if prev != last {
                    report.gaps += 1;
                    inst.broken = true;
                    if let Some(v) = &mut inst.view {
                        v.synced = false;
                    }
                    emit.broken(inst_id, ts, recv);
                    return Ok(());
                }
            }
        }
        if snapshot {
            inst.bids.clear();
            inst.asks.clear();
            emit.stage(inst.view.get_or_insert_with(SymbolBook::new).clear_for_snapshot(0));
        }
        let flags = if snapshot { DeltaFlags::SNAPSHOT } else { 0 };
        let mut n = 0;
        let applied = (|| -> Result<(), String> {
            for (k, side) in [("bids", Side::Buy), ("asks", Side::Sell)] {
                for l in d[k].as_array().ok_or(format!("book without `{k}`"))? {
                    let (px, sz) = (l[0].as_str().ok_or("level price")?, l[1].as_str().ok_or("level size")?);
                    inst.apply(side, px, sz, flags, emit)?;
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
            inst.broken = true;
            if let Some(v) = &mut inst.view {
                v.synced = false;
            }
            emit.broken(inst_id, ts, recv);
            return Err(e);
        }
        inst.seq = seq.or(inst.seq);
        if snapshot {
            if inst.broken {
                report.resyncs += 1;
            }
            inst.broken = false;
            if let Some(v) = &mut inst.view {
                v.synced = true;
            }
        }
        if let Some(c) = d["checksum"].as_i64() {
            if i64::from(okx_checksum(&inst.bids, &inst.asks)) == c {
                report.checksum.ok += 1;
            } else {
                report.checksum.failed += 1;
                inst.broken = true;
                if let Some(v) = &mut inst.view {
                    v.synced = false;
                }
                emit.broken(inst_id, ts, recv);
                return Ok(());
            }
        }
        emit.flush(inst_id, ts, recv);
        Ok(())
    }

    fn frame(&mut self, v: &Value, r: &RawRecord, report: &mut CheckReport) -> Result<(), String> {
        if v.get("event").is_some() {
            report.count("ignored", 1);
            return Ok(());
        }
        let channel = v["arg"]["channel"].as_str().ok_or("no arg.channel")?;
        let data = v["data"].as_array().ok_or("no data")?;
        let arg_inst = v["arg"]["instId"].as_str().unwrap_or_default();
        match channel {
            "trades" | "trades-all" => {
                for t in data {
                    let trade = Trade {
                        price: Price::parse(t["px"].as_str().unwrap_or("?")).map_err(|e| format!("trade px: {e}"))?,
                        qty: Qty::parse_size(t["sz"].as_str().unwrap_or("?")).map_err(|e| format!("trade sz: {e}"))?,
                        trade_id: t["tradeId"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
                        aggressor: if t["side"] == "sell" { Side::Sell } else { Side::Buy },
                    };
                    let inst = t["instId"].as_str().unwrap_or(arg_inst);
                    self.emit.event(inst, millis(&t["ts"]), r.ts_ns, MarketEventKind::Trade(trade));
                }
                report.count("trade", data.len() as u64);
            }
            "tickers" | "bbo-tbt" => {
                for q in data {
                    let quote = if channel == "tickers" {
                        okx_quote(&q["bidPx"], &q["bidSz"], &q["askPx"], &q["askSz"])
                    } else {
                        okx_quote(&q["bids"][0][0], &q["bids"][0][1], &q["asks"][0][0], &q["asks"][0][1])
                    }?;
                    let inst = q["instId"].as_str().unwrap_or(arg_inst);
                    self.emit.event(inst, millis(&q["ts"]), r.ts_ns, MarketEventKind::Quote(quote));
                }
                report.count("quote", data.len() as u64);
            }
            c if c.starts_with("books") => {
                let inst_id = v["arg"]["instId"].as_str().ok_or("no arg.instId")?.to_owned();
                // books5 and bbo-style channels send whole snapshots every time.
                let action = v["action"].as_str().unwrap_or("snapshot");
                for d in data {
                    self.book(&inst_id, action, d, r, report)?;
                }
            }
            _ => report.count("ignored", 1),
        }
        Ok(())
    }
}

impl Checker for OkxChecker {
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
        // OKX trims trailing zeros: report the venue's own strings, from the ladders.
        self.insts
            .iter()
            .filter_map(|(s, i)| {
                i.view.as_ref().map(|v| {
                    let mut r = v.report();
                    r.best_bid = super::best_strings(i.bids.values().rev());
                    r.best_ask = super::best_strings(i.asks.values());
                    r.bid_levels = i.bids.len();
                    r.ask_levels = i.asks.len();
                    (s.clone(), r)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_vectors_from_the_real_capture_verify() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/okx/okx_v5_books_checksum_vectors_verified.json"
        ));
        let cases: Vec<Value> = serde_json::from_str(text).unwrap();
        assert!(!cases.is_empty());
        for c in cases {
            let s = c["checksum_input_string"].as_str().unwrap();
            assert_eq!(i64::from(crc32fast::hash(s.as_bytes()) as i32), c["expected_checksum"].as_i64().unwrap());
        }
        let mut bids = Ladder::new();
        let mut asks = Ladder::new();
        bids.insert(key("30233.6").unwrap(), ("30233.6".into(), "3".into()));
        asks.insert(key("30238.8").unwrap(), ("30238.8".into(), "2".into()));
        assert_eq!(okx_checksum(&bids, &asks), crc32fast::hash(b"30233.6:3:30238.8:2") as i32);
    }
}
