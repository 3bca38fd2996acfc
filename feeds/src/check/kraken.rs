//! Kraken v1: trades, spread/ticker quotes, and `book-N` with every checksum verified.

use std::collections::BTreeMap;

use argus_core::BookDelta;

use super::{CheckReport, Checker, SymbolBook};
use crate::kraken::{decode_v1, KrakenBook, KrakenV1};
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
}

impl Checker for KrakenChecker {
    fn on_ws(&mut self, r: &RawRecord, report: &mut CheckReport) {
        report.frames += 1;
        let frame = match decode_v1(&r.body) {
            Ok(f) => f,
            Err(e) => return report.error(format!("line {}: {e}", r.line)),
        };
        match frame {
            KrakenV1::Event => report.count("ignored", 1),
            KrakenV1::Trades { count, .. } => report.count("trade", count),
            KrakenV1::Quote { .. } => report.count("quote", 1),
            KrakenV1::Book { pair, depth, snapshot, levels, checksum } => {
                let p = self.pairs.entry(pair.clone()).or_insert_with(|| Pair {
                    book: KrakenBook::new(depth),
                    view: SymbolBook::new(),
                    broken: false,
                });
                for (_, px, q) in &levels {
                    p.view.learn(px, q);
                }
                self.deltas.clear();
                let applied = if snapshot {
                    p.book.snapshot(&levels, &mut self.deltas)
                } else if !p.view.synced && !p.broken {
                    return report.error(format!("line {}: {pair} update before its snapshot", r.line));
                } else {
                    p.book.update(&levels, &mut self.deltas)
                };
                report.count("delta", self.deltas.len() as u64);
                for d in &self.deltas {
                    p.view.apply(d);
                }
                if let Err(e) = applied {
                    p.view.synced = false;
                    p.broken = true;
                    return report.error(format!("line {}: {e}", r.line));
                }
                if snapshot {
                    if p.broken {
                        report.resyncs += 1;
                    }
                    p.broken = false;
                    p.view.synced = true;
                }
                if let Some(c) = checksum {
                    if p.book.checksum() == c {
                        report.checksum.ok += 1;
                    } else {
                        report.checksum.failed += 1;
                        // Stale until a fresh snapshot (live: resubscribe).
                        p.view.synced = false;
                        p.broken = true;
                    }
                }
            }
        }
    }

    fn on_rest(&mut self, _: &RawRecord, _: &str, report: &mut CheckReport) {
        report.count("ignored", 1);
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
