//! Bybit v5 (spot and linear): `orderbook.<depth>.<SYM>` snapshot/delta with `u` continuity
//! (a snapshot or `u == 1` resets), `publicTrade`, `tickers`.

use std::collections::BTreeMap;

use argus_core::{BookAction, BookDelta, DeltaFlags, Price, Qty, Side};
use serde_json::Value;

use super::{CheckReport, Checker, SymbolBook};
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
}

impl BybitChecker {
    fn book(&mut self, ty: &str, d: &Value, line: u64, report: &mut CheckReport) -> Result<(), String> {
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
                return Ok(());
            }
        }
        let view = sym.view.get_or_insert_with(SymbolBook::new);
        let flags = if reset { DeltaFlags::SNAPSHOT } else { 0 };
        if reset {
            view.clear_for_snapshot(u);
        }
        let mut n = 0;
        for (k, side) in [("b", Side::Buy), ("a", Side::Sell)] {
            for l in d[k].as_array().ok_or(format!("orderbook without `{k}`"))? {
                let (p, q) = (l[0].as_str().ok_or("level price")?, l[1].as_str().ok_or("level size")?);
                let price = Price::parse(p).map_err(|e| format!("price `{p}`: {e}"))?;
                let qty = Qty::parse(q).map_err(|e| format!("size `{q}`: {e}"))?;
                view.learn(p, q);
                view.apply(&BookDelta {
                    action: BookAction::Update,
                    side,
                    flags: DeltaFlags(flags),
                    price,
                    qty,
                    sequence: u,
                });
                n += 1;
            }
        }
        report.count("delta", n);
        sym.u = Some(u);
        if reset {
            if sym.broken {
                report.resyncs += 1;
            }
            sym.broken = false;
            view.synced = true;
        }
        Ok(())
    }

    fn frame(&mut self, v: &Value, line: u64, report: &mut CheckReport) -> Result<(), String> {
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
        match channel {
            "orderbook" => self.book(ty, &v["data"], line, report)?,
            "publicTrade" => {
                let trades = v["data"].as_array().ok_or("publicTrade without data array")?;
                for t in trades {
                    Price::parse(t["p"].as_str().unwrap_or("?")).map_err(|e| format!("trade p: {e}"))?;
                }
                report.count("trade", trades.len() as u64);
            }
            "tickers" => report.count("quote", 1),
            _ => report.count("ignored", 1),
        }
        Ok(())
    }
}

impl Checker for BybitChecker {
    fn on_ws(&mut self, r: &RawRecord, report: &mut CheckReport) {
        super::json_frame(r, report, |v, report| self.frame(v, r.line, report));
    }

    fn books(&self) -> Vec<(String, super::BookReport)> {
        self.syms.iter().filter_map(|(s, i)| i.view.as_ref().map(|v| (s.clone(), v.report()))).collect()
    }
}
