//! OKX v5: `books*` snapshot/update with `seqId`/`prevSeqId` continuity and the signed CRC32
//! checksum over the top 25 levels as original strings; `trades`, `tickers`, `bbo-tbt`.

use std::collections::BTreeMap;

use argus_core::{BookAction, BookDelta, DeltaFlags, Price, Qty, Side};
use serde_json::Value;

use super::{CheckReport, Checker, SymbolBook};
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
    fn apply(&mut self, side: Side, px: &str, sz: &str, flags: u8) -> Result<(), String> {
        let k = key(px).map_err(|e| e.to_string())?;
        let qty = Qty::parse(sz).map_err(|e| format!("size `{sz}`: {e}"))?;
        let ladder = if side == Side::Buy { &mut self.bids } else { &mut self.asks };
        if qty.units() == 0 {
            ladder.remove(&k);
        } else {
            ladder.insert(k, (px.to_owned(), sz.to_owned()));
        }
        let view = self.view.get_or_insert_with(SymbolBook::new);
        view.learn(px, sz);
        if let Ok(units) = i64::try_from(k) {
            view.apply(&BookDelta {
                action: BookAction::Update,
                side,
                flags: DeltaFlags(flags),
                price: Price::from_units(units),
                qty,
                sequence: 0,
            });
        }
        Ok(())
    }
}

impl OkxChecker {
    fn book(
        &mut self,
        inst_id: &str,
        action: &str,
        d: &Value,
        line: u64,
        report: &mut CheckReport,
    ) -> Result<(), String> {
        let inst = self.insts.entry(inst_id.to_owned()).or_default();
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
                    return Ok(());
                }
            }
        }
        if snapshot {
            inst.bids.clear();
            inst.asks.clear();
            inst.view.get_or_insert_with(SymbolBook::new).clear_for_snapshot(0);
        }
        let flags = if snapshot { DeltaFlags::SNAPSHOT } else { 0 };
        let mut n = 0;
        for (k, side) in [("bids", Side::Buy), ("asks", Side::Sell)] {
            for l in d[k].as_array().ok_or(format!("book without `{k}`"))? {
                let (px, sz) = (l[0].as_str().ok_or("level price")?, l[1].as_str().ok_or("level size")?);
                inst.apply(side, px, sz, flags)?;
                n += 1;
            }
        }
        report.count("delta", n);
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
            }
        }
        Ok(())
    }

    fn frame(&mut self, v: &Value, line: u64, report: &mut CheckReport) -> Result<(), String> {
        if v.get("event").is_some() {
            report.count("ignored", 1);
            return Ok(());
        }
        let channel = v["arg"]["channel"].as_str().ok_or("no arg.channel")?;
        let data = v["data"].as_array().ok_or("no data")?;
        match channel {
            "trades" | "trades-all" => {
                for t in data {
                    Price::parse(t["px"].as_str().unwrap_or("?")).map_err(|e| format!("trade px: {e}"))?;
                }
                report.count("trade", data.len() as u64);
            }
            "tickers" | "bbo-tbt" => report.count("quote", data.len() as u64),
            c if c.starts_with("books") => {
                let inst_id = v["arg"]["instId"].as_str().ok_or("no arg.instId")?.to_owned();
                // books5 and bbo-style channels send whole snapshots every time.
                let action = v["action"].as_str().unwrap_or("snapshot");
                for d in data {
                    self.book(&inst_id, action, d, line, report)?;
                }
            }
            _ => report.count("ignored", 1),
        }
        Ok(())
    }
}

impl Checker for OkxChecker {
    fn on_ws(&mut self, r: &RawRecord, report: &mut CheckReport) {
        super::json_frame(r, report, |v, report| self.frame(v, r.line, report));
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
