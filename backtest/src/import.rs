//! Importers from third-party history files into the catalog: Tardis CSVs (`trades`,
//! `incremental_book_L2`, `book_snapshot_N`, `quotes`) and Binance public-data CSVs (`trades`,
//! `aggTrades`; millisecond and microsecond eras). Every row is read exactly (no floats); a bad
//! row is counted under its reason and the import goes on.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use argus_core::{
    BookAction, BookDelta, DeltaFlags, InstrumentId, MarketEvent, MarketEventKind, Price, Qty, Quote, Side, Trade,
    UnixNanos,
};
use flate2::read::MultiGzDecoder;
use serde::Serialize;

use crate::catalog::CatalogWriter;
use crate::BacktestError;

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub rows_read: u64,
    /// Catalog rows written (a book snapshot row becomes many level rows).
    pub rows_written: u64,
    pub rows_rejected: u64,
    /// Rejections by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Up to 20 rejected rows as `file:line: reason`.
    pub samples: Vec<String>,
}

impl ImportReport {
    pub fn reject(&mut self, file: &str, line: u64, reason: &str) {
        self.rows_rejected += 1;
        *self.rejected.entry(reason.to_owned()).or_default() += 1;
        if self.samples.len() < 20 {
            self.samples.push(format!("{file}:{line}: {reason}"));
        }
    }
}

/// Tardis CSV kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TardisKind {
    Trades,
    IncrementalBookL2,
    BookSnapshot,
    Quotes,
}

/// Binance public-data CSV kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinanceCsvKind {
    Trades,
    AggTrades,
}

fn open(path: &Path) -> Result<Box<dyn BufRead>, BacktestError> {
    let io = |source| BacktestError::Io { path: path.display().to_string(), source };
    let mut f = BufReader::new(std::fs::File::open(path).map_err(io)?);
    let gz = f.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let r: Box<dyn Read> = if gz { Box::new(MultiGzDecoder::new(f)) } else { Box::new(f) };
    Ok(Box::new(BufReader::with_capacity(1 << 16, r)))
}

fn micros(s: &str) -> Option<UnixNanos> {
    s.parse::<u64>().ok().and_then(|v| v.checked_mul(1000)).map(UnixNanos)
}

/// Binance timestamps: milliseconds, or microseconds for spot files from 2025 on.
fn binance_time(s: &str) -> Option<UnixNanos> {
    let v = s.parse::<u64>().ok()?;
    // 1e14 µs is 1973; 1e14 ms is year 5138: the magnitude tells the era.
    if v >= 100_000_000_000_000 {
        v.checked_mul(1000).map(UnixNanos)
    } else {
        v.checked_mul(1_000_000).map(UnixNanos)
    }
}

fn side(s: &str) -> Option<Side> {
    match s {
        "buy" | "bid" => Some(Side::Buy),
        "sell" | "ask" => Some(Side::Sell),
        _ => None,
    }
}

/// A stable 64-bit id for venues with string trade ids (UUIDs): FNV-1a.
fn id64(s: &str) -> u64 {
    s.parse::<u64>().unwrap_or_else(|_| {
        s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

fn event(ts_exchange: UnixNanos, ts_recv: UnixNanos, kind: MarketEventKind) -> MarketEvent {
    MarketEvent { ts_exchange, ts_recv, instrument: InstrumentId(0), decode_ns: 0, kind }
}

fn delta(action: BookAction, side: Side, price: Price, qty: Qty, flags: u8) -> MarketEventKind {
    MarketEventKind::Delta(BookDelta { action, side, flags: DeltaFlags(flags), price, qty, sequence: 0 })
}

/// Imports one Tardis CSV; venue and symbol come from its `exchange` and `symbol` columns.
///
/// # Errors
/// The file cannot be read, or the catalog cannot be written.
pub fn tardis(
    path: &Path,
    kind: TardisKind,
    out: &mut CatalogWriter,
    report: &mut ImportReport,
) -> Result<(), BacktestError> {
    let name = path.display().to_string();
    let mut lines = open(path)?.lines();
    let header = match lines.next() {
        Some(h) => h.map_err(|source| BacktestError::Io { path: name.clone(), source })?,
        None => return Ok(()),
    };
    let cols: Vec<&str> = header.split(',').collect();
    let col = |n: &str| cols.iter().position(|c| *c == n);
    let (Some(ex), Some(sym), Some(ts), Some(lts)) =
        (col("exchange"), col("symbol"), col("timestamp"), col("local_timestamp"))
    else {
        return Err(BacktestError::Schema(format!("{name}: not a Tardis CSV header: {header}")));
    };
    // incremental_book_L2: rows of one message share local_timestamp; flag the last one.
    let mut pending: Option<(String, String, MarketEvent)> = None;
    let mut in_snapshot = false;
    let flush =
        |p: Option<(String, String, MarketEvent)>, last: bool, out: &mut CatalogWriter, report: &mut ImportReport| {
            if let Some((v, s, mut e)) = p {
                if let MarketEventKind::Delta(d) = &mut e.kind {
                    if last {
                        d.flags.0 |= DeltaFlags::LAST;
                    }
                }
                out.write(&v, &s, &e).map(|()| report.rows_written += 1)
            } else {
                Ok(())
            }
        };
    for (i, line) in lines.enumerate() {
        let n = i as u64 + 2;
        let line = match line {
            Ok(l) => l,
            Err(_) => {
                report.reject(&name, n, "unreadable line");
                continue;
            }
        };
        if line.is_empty() {
            continue;
        }
        report.rows_read += 1;
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != cols.len() {
            report.reject(&name, n, "wrong column count");
            continue;
        }
        let (Some(t_ex), Some(t_recv)) = (micros(f[ts]), micros(f[lts])) else {
            report.reject(&name, n, "bad timestamp");
            continue;
        };
        let (venue, symbol) = (f[ex], f[sym]);
        let px = |c: Option<usize>| c.and_then(|c| Price::parse(f[c]).ok());
        let qty = |c: Option<usize>| c.and_then(|c| Qty::parse(f[c]).ok());
        match kind {
            TardisKind::Trades => {
                let (Some(p), Some(q)) = (px(col("price")), qty(col("amount"))) else {
                    report.reject(&name, n, "bad price or amount");
                    continue;
                };
                let Some(aggressor) = col("side").and_then(|c| side(f[c])) else {
                    report.reject(&name, n, "unknown aggressor side");
                    continue;
                };
                let trade_id = col("id").map_or(0, |c| id64(f[c]));
                let e = event(t_ex, t_recv, MarketEventKind::Trade(Trade { price: p, qty: q, trade_id, aggressor }));
                out.write(venue, symbol, &e)?;
                report.rows_written += 1;
            }
            TardisKind::Quotes => {
                let (Some(bp), Some(bq), Some(ap), Some(aq)) =
                    (px(col("bid_price")), qty(col("bid_amount")), px(col("ask_price")), qty(col("ask_amount")))
                else {
                    report.reject(&name, n, "empty or bad quote");
                    continue;
                };
                let q = Quote { bid_price: bp, bid_qty: bq, ask_price: ap, ask_qty: aq };
                out.write(venue, symbol, &event(t_ex, t_recv, MarketEventKind::Quote(q)))?;
                report.rows_written += 1;
            }
            TardisKind::IncrementalBookL2 => {
                let snap = col("is_snapshot").is_some_and(|c| f[c] == "true");
                let (Some(s), Some(p), Some(q)) =
                    (col("side").and_then(|c| side(f[c])), px(col("price")), qty(col("amount")))
                else {
                    report.reject(&name, n, "bad side, price or amount");
                    continue;
                };
                let same_msg = pending.as_ref().is_some_and(|(_, _, e)| e.ts_recv == t_recv);
                flush(pending.take(), !same_msg, out, report)?;
                if snap && !in_snapshot {
                    // A snapshot run after updates resets the book.
                    let clear = event(
                        t_ex,
                        t_recv,
                        delta(BookAction::Clear, Side::Buy, Price::ZERO, Qty::ZERO, DeltaFlags::SNAPSHOT),
                    );
                    out.write(venue, symbol, &clear)?;
                    report.rows_written += 1;
                }
                in_snapshot = snap;
                let flags = if snap { DeltaFlags::SNAPSHOT } else { 0 };
                pending = Some((
                    venue.to_owned(),
                    symbol.to_owned(),
                    event(t_ex, t_recv, delta(BookAction::Update, s, p, q, flags)),
                ));
            }
            TardisKind::BookSnapshot => {
                let mut levels = Vec::new();
                let mut bad = false;
                for (prefix, s) in [("asks", Side::Sell), ("bids", Side::Buy)] {
                    for k in 0.. {
                        let (Some(pc), Some(qc)) =
                            (col(&format!("{prefix}[{k}].price")), col(&format!("{prefix}[{k}].amount")))
                        else {
                            break;
                        };
                        if f[pc].is_empty() {
                            continue;
                        }
                        match (Price::parse(f[pc]), Qty::parse(f[qc])) {
                            (Ok(p), Ok(q)) => levels.push((s, p, q)),
                            _ => bad = true,
                        }
                    }
                }
                if bad {
                    report.reject(&name, n, "bad level");
                    continue;
                }
                let flags = DeltaFlags::SNAPSHOT;
                let clear_last = if levels.is_empty() { DeltaFlags::LAST } else { 0 };
                out.write(
                    venue,
                    symbol,
                    &event(
                        t_ex,
                        t_recv,
                        delta(BookAction::Clear, Side::Buy, Price::ZERO, Qty::ZERO, flags | clear_last),
                    ),
                )?;
                let count = levels.len();
                for (j, (s, p, q)) in levels.into_iter().enumerate() {
                    let last = if j + 1 == count { DeltaFlags::LAST } else { 0 };
                    out.write(venue, symbol, &event(t_ex, t_recv, delta(BookAction::Add, s, p, q, flags | last)))?;
                }
                report.rows_written += count as u64 + 1;
            }
        }
    }
    flush(pending.take(), true, out, report)
}

/// Imports one Binance public-data CSV (with or without a header) for `venue`/`symbol`.
///
/// # Errors
/// The file cannot be read, or the catalog cannot be written.
pub fn binance_csv(
    path: &Path,
    kind: BinanceCsvKind,
    venue: &str,
    symbol: &str,
    out: &mut CatalogWriter,
    report: &mut ImportReport,
) -> Result<(), BacktestError> {
    let name = path.display().to_string();
    for (i, line) in open(path)?.lines().enumerate() {
        let n = i as u64 + 1;
        let Ok(line) = line else {
            report.reject(&name, n, "unreadable line");
            continue;
        };
        if line.is_empty() || (n == 1 && line.starts_with(|c: char| c.is_ascii_alphabetic())) {
            continue;
        }
        report.rows_read += 1;
        let f: Vec<&str> = line.split(',').collect();
        // trades: id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]
        // aggTrades: agg_id,price,qty,first_id,last_id,time,is_buyer_maker[,is_best_match]
        let (time_col, maker_col, min_cols) = match kind {
            BinanceCsvKind::Trades => (4, 5, 6),
            BinanceCsvKind::AggTrades => (5, 6, 7),
        };
        if f.len() < min_cols {
            report.reject(&name, n, "wrong column count");
            continue;
        }
        let (Ok(id), Ok(price), Ok(qty)) = (f[0].parse::<u64>(), Price::parse(f[1]), Qty::parse(f[2])) else {
            report.reject(&name, n, "bad id, price or quantity");
            continue;
        };
        let Some(ts) = binance_time(f[time_col]) else {
            report.reject(&name, n, "bad timestamp");
            continue;
        };
        let aggressor = match f[maker_col].to_ascii_lowercase().as_str() {
            // The buyer is the maker: the taker sold.
            "true" => Side::Sell,
            "false" => Side::Buy,
            _ => {
                report.reject(&name, n, "bad is_buyer_maker");
                continue;
            }
        };
        let e = event(ts, UnixNanos(0), MarketEventKind::Trade(Trade { price, qty, trade_id: id, aggressor }));
        out.write(venue, symbol, &e)?;
        report.rows_written += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_timestamps_of_both_eras() {
        assert_eq!(binance_time("1723161255342"), Some(UnixNanos(1_723_161_255_342_000_000)));
        assert_eq!(binance_time("1735689600123456"), Some(UnixNanos(1_735_689_600_123_456_000)));
        assert_eq!(binance_time("x"), None);
        assert_eq!(id64("42"), 42);
        assert_ne!(id64("ccc3c1fa-212c"), id64("b46c84da-6942"));
    }
}
