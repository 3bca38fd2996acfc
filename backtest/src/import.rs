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

/// Bytes of input files read so far by this process's importers (for progress bars).
pub static BYTES_READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A reader that adds what it reads to [`BYTES_READ`].
struct Counting<R>(R);

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        BYTES_READ.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

fn open(path: &Path) -> Result<Box<dyn BufRead>, BacktestError> {
    let io = |source| BacktestError::Io { path: path.display().to_string(), source };
    let mut f = BufReader::new(Counting(std::fs::File::open(path).map_err(io)?));
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
    // trades: id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]
    // aggTrades: agg_id,price,qty,first_id,last_id,time,is_buyer_maker[,is_best_match]
    let (time_col, maker_col, min_cols) = match kind {
        BinanceCsvKind::Trades => (4, 5, 6),
        BinanceCsvKind::AggTrades => (5, 6, 7),
    };
    binance_rows(path, report, |f, report| {
        if f.len() < min_cols {
            return Ok(Err("wrong column count"));
        }
        let (Ok(id), Ok(price), Ok(qty)) = (f[0].parse::<u64>(), Price::parse(f[1]), Qty::parse(f[2])) else {
            return Ok(Err("bad id, price or quantity"));
        };
        let Some(ts) = binance_time(f[time_col]) else {
            return Ok(Err("bad timestamp"));
        };
        let aggressor = match f[maker_col].to_ascii_lowercase().as_str() {
            // The buyer is the maker: the taker sold.
            "true" => Side::Sell,
            "false" => Side::Buy,
            _ => return Ok(Err("bad is_buyer_maker")),
        };
        let e = event(ts, UnixNanos(0), MarketEventKind::Trade(Trade { price, qty, trade_id: id, aggressor }));
        out.write(venue, symbol, &e)?;
        report.rows_written += 1;
        Ok(Ok(()))
    })
}

/// Runs `row` over every data row of a Binance public-data CSV (with or without a header; blank
/// lines skipped), split on commas. A row it turns down is rejected with the reason it gives,
/// and so is an unreadable line; an error it returns ends the import.
fn binance_rows(
    path: &Path,
    report: &mut ImportReport,
    mut row: impl FnMut(&[&str], &mut ImportReport) -> Result<Result<(), &'static str>, BacktestError>,
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
        if let Err(reason) = row(&f, report)? {
            report.reject(&name, n, reason);
        }
    }
    Ok(())
}

/// NautilusTrader catalog kinds this importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NautilusKind {
    Trades,
    Deltas,
    Quotes,
}

/// A NautilusTrader fixed-point column: `fixed_size_binary[16]` (high-precision builds: i128 at
/// 1e16) or `fixed_size_binary[8]` (standard builds: i64 at 1e9), little-endian; as 1e-9 units,
/// or `None` when the value has digits beyond 1e-9 or does not fit.
fn nautilus_fixed(a: &arrow::array::FixedSizeBinaryArray, i: usize) -> Option<i64> {
    use arrow::array::Array;
    if a.is_null(i) {
        return None;
    }
    let b = a.value(i);
    match b.len() {
        16 => {
            let raw = i128::from_le_bytes(b.try_into().ok()?);
            // Nautilus' "undefined" sentinels are far outside any real price.
            if raw % 10_000_000 != 0 {
                return None;
            }
            i64::try_from(raw / 10_000_000).ok()
        }
        8 => Some(i64::from_le_bytes(b.try_into().ok()?)),
        _ => None,
    }
}

/// Imports NautilusTrader catalog Parquet: `trade_tick`, `order_book_delta` and `quote_tick`
/// files (a file, or a directory searched recursively; other Nautilus tables such as instruments
/// are skipped and listed). The symbol and venue come from the file's `instrument_id` metadata
/// (`BTCUSDT.BINANCE` -> symbol `BTCUSDT`, venue `binance` unless `venue` is given); `ts_event`
/// becomes the exchange time and `ts_init` the receive time.
///
/// # Errors
/// Unreadable files or directories, or a catalog write failure.
pub fn nautilus(
    path: &Path,
    venue: Option<&str>,
    out: &mut CatalogWriter,
    report: &mut ImportReport,
    skipped: &mut Vec<String>,
) -> Result<(), BacktestError> {
    use arrow::array::{Array, FixedSizeBinaryArray, StringArray, UInt64Array, UInt8Array};
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| BacktestError::Io { path: p, source }
    };
    if path.is_dir() {
        let mut entries: Vec<_> =
            std::fs::read_dir(path).map_err(io(path))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() || p.extension().is_some_and(|e| e == "parquet") {
                nautilus(&p, venue, out, report, skipped)?;
            }
        }
        return Ok(());
    }
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(io(path))?;
    if let Ok(m) = file.metadata() {
        BYTES_READ.fetch_add(m.len(), std::sync::atomic::Ordering::Relaxed);
    }
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?;
    let schema = builder.schema().clone();
    let has = |c: &str| schema.column_with_name(c).is_some();
    let kind = if has("aggressor_side") {
        NautilusKind::Trades
    } else if has("action") && has("side") {
        NautilusKind::Deltas
    } else if has("bid_price") && has("ask_price") {
        NautilusKind::Quotes
    } else {
        skipped.push(name);
        return Ok(());
    };
    let Some(iid) = schema.metadata().get("instrument_id") else {
        report.reject(&name, 0, "no instrument_id in the file metadata");
        return Ok(());
    };
    let (symbol, iv) = iid.rsplit_once('.').unwrap_or((iid.as_str(), "nautilus"));
    let venue = venue.map_or_else(|| iv.to_ascii_lowercase(), str::to_owned);
    let mut line = 0_u64;
    for batch in builder.with_batch_size(8192).build()? {
        let b = match batch {
            Ok(b) => b,
            Err(e) => {
                report.reject(&name, line, &format!("unreadable batch: {e}"));
                return Ok(());
            }
        };
        let col = |c: &str| b.column_by_name(c);
        let fixed = |c: &str| col(c).and_then(|a| a.as_any().downcast_ref::<FixedSizeBinaryArray>());
        let u64c = |c: &str| col(c).and_then(|a| a.as_any().downcast_ref::<UInt64Array>());
        let u8c = |c: &str| col(c).and_then(|a| a.as_any().downcast_ref::<UInt8Array>());
        let (Some(ts_event), Some(ts_init)) = (u64c("ts_event"), u64c("ts_init")) else {
            report.reject(&name, line, "ts_event/ts_init are not uint64");
            return Ok(());
        };
        for i in 0..b.num_rows() {
            line += 1;
            report.rows_read += 1;
            let (x, r) = (UnixNanos(ts_event.value(i)), UnixNanos(ts_init.value(i)));
            let kind = match kind {
                NautilusKind::Trades => {
                    let (Some(p), Some(q), Some(ag), Some(id)) = (
                        fixed("price"),
                        fixed("size"),
                        u8c("aggressor_side"),
                        col("trade_id").and_then(|a| a.as_any().downcast_ref::<StringArray>()),
                    ) else {
                        report.reject(&name, line, "trade columns of unexpected types");
                        return Ok(());
                    };
                    let aggressor = match ag.value(i) {
                        1 => Side::Buy,
                        2 => Side::Sell,
                        _ => {
                            report.reject(&name, line, "no aggressor side");
                            continue;
                        }
                    };
                    let (Some(price), Some(qty)) = (nautilus_fixed(p, i), nautilus_fixed(q, i)) else {
                        report.reject(&name, line, "price or size beyond 1e-9 or out of range");
                        continue;
                    };
                    MarketEventKind::Trade(Trade {
                        price: Price::from_units(price),
                        qty: Qty::from_units(qty),
                        trade_id: id64(id.value(i)),
                        aggressor,
                    })
                }
                NautilusKind::Quotes => {
                    let (Some(bp), Some(ap), Some(bq), Some(aq)) =
                        (fixed("bid_price"), fixed("ask_price"), fixed("bid_size"), fixed("ask_size"))
                    else {
                        report.reject(&name, line, "quote columns of unexpected types");
                        return Ok(());
                    };
                    let v =
                        [nautilus_fixed(bp, i), nautilus_fixed(bq, i), nautilus_fixed(ap, i), nautilus_fixed(aq, i)];
                    let [Some(bp), Some(bq), Some(ap), Some(aq)] = v else {
                        report.reject(&name, line, "price or size beyond 1e-9 or out of range");
                        continue;
                    };
                    MarketEventKind::Quote(Quote {
                        bid_price: Price::from_units(bp),
                        bid_qty: Qty::from_units(bq),
                        ask_price: Price::from_units(ap),
                        ask_qty: Qty::from_units(aq),
                    })
                }
                NautilusKind::Deltas => {
                    let (Some(act), Some(sd), Some(p), Some(q), Some(fl), Some(seq)) =
                        (u8c("action"), u8c("side"), fixed("price"), fixed("size"), u8c("flags"), u64c("sequence"))
                    else {
                        report.reject(&name, line, "delta columns of unexpected types");
                        return Ok(());
                    };
                    // Nautilus RecordFlag: F_LAST = 128, F_SNAPSHOT = 32.
                    let f = fl.value(i);
                    let flags = (if f & 128 != 0 { DeltaFlags::LAST } else { 0 })
                        | (if f & 32 != 0 { DeltaFlags::SNAPSHOT } else { 0 });
                    let action = match act.value(i) {
                        1 => BookAction::Add,
                        2 => BookAction::Update,
                        3 => BookAction::Delete,
                        4 => BookAction::Clear,
                        _ => {
                            report.reject(&name, line, "unknown book action");
                            continue;
                        }
                    };
                    let side = match (sd.value(i), action) {
                        (1, _) => Side::Buy,
                        (2, _) => Side::Sell,
                        (_, BookAction::Clear) => Side::Buy,
                        _ => {
                            report.reject(&name, line, "no side");
                            continue;
                        }
                    };
                    let (price, qty) = match action {
                        BookAction::Clear => (0, 0),
                        _ => match (nautilus_fixed(p, i), nautilus_fixed(q, i)) {
                            (Some(p), Some(q)) => (p, q),
                            _ => {
                                report.reject(&name, line, "price or size beyond 1e-9 or out of range");
                                continue;
                            }
                        },
                    };
                    MarketEventKind::Delta(BookDelta {
                        action,
                        side,
                        flags: DeltaFlags(flags),
                        price: Price::from_units(price),
                        qty: Qty::from_units(qty),
                        sequence: seq.value(i),
                    })
                }
            };
            out.write(&venue, symbol, &event(x, r, kind))?;
            report.rows_written += 1;
        }
    }
    Ok(())
}

/// One kline (candlestick) of a Binance public-data klines CSV, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub open_ns: u64,
    pub close_ns: u64,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume: i64,
    pub quote_volume: i64,
    pub trades: u64,
    pub taker_buy_volume: i64,
    pub taker_buy_quote_volume: i64,
}

/// The interval of a klines file from its name (`ADABTC-1m-2021-11-27.csv` -> `1m`).
pub fn kline_interval(path: &Path) -> Option<String> {
    const INTERVALS: [&str; 16] =
        ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo"];
    let name = path.file_name()?.to_string_lossy().into_owned();
    name.split(['-', '_', '.']).find(|p| INTERVALS.contains(p)).map(str::to_owned)
}

/// Imports a Binance klines CSV (`open_time,open,high,low,close,volume,close_time,quote_volume,
/// count,taker_buy_volume,taker_buy_quote_volume,ignore`; ms or µs times) into the catalog's
/// `bars` table: `<root>/bars/venue=<v>/symbol=<s>/date=<open day>/part-<interval>-<n>.parquet`,
/// fixed-point int64 columns (scale 9 in the metadata), written to a temp file and renamed.
///
/// # Errors
/// The file cannot be read, or the Parquet files cannot be written.
pub fn binance_klines(
    path: &Path,
    venue: &str,
    symbol: &str,
    interval: &str,
    root: &Path,
    report: &mut ImportReport,
) -> Result<Vec<std::path::PathBuf>, BacktestError> {
    let mut days: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    binance_rows(path, report, |f, _| {
        if f.len() < 11 {
            return Ok(Err("wrong column count"));
        }
        let fx = |s: &str| argus_core::parse_fixed(s.as_bytes()).ok();
        let (Some(open_t), Some(close_t)) = (binance_time(f[0]), binance_time(f[6])) else {
            return Ok(Err("bad timestamp"));
        };
        let vals = [f[1], f[2], f[3], f[4], f[5], f[7], f[9], f[10]].map(fx);
        let (Some(o), Some(h), Some(l), Some(c), Some(v), Some(qv), Some(tb), Some(tbq)) =
            (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7])
        else {
            return Ok(Err("bad price or volume"));
        };
        let Ok(trades) = f[8].parse::<u64>() else {
            return Ok(Err("bad trade count"));
        };
        if !(l <= o && l <= c && h >= o && h >= c && l <= h) {
            return Ok(Err("inconsistent high/low"));
        }
        let day = crate::catalog::date(i64::try_from(open_t.0 / 86_400_000_000_000).unwrap_or(0));
        days.entry(day).or_default().push(Bar {
            open_ns: open_t.0,
            close_ns: close_t.0,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
            quote_volume: qv,
            trades,
            taker_buy_volume: tb,
            taker_buy_quote_volume: tbq,
        });
        Ok(Ok(()))
    })?;
    let mut written = Vec::new();
    for (day, bars) in days {
        let dir = root
            .join("bars")
            .join(format!("venue={}", crate::catalog::safe(venue)))
            .join(format!("symbol={}", crate::catalog::safe(symbol)))
            .join(format!("date={day}"));
        std::fs::create_dir_all(&dir).map_err(crate::catalog::io(&dir))?;
        let k = std::fs::read_dir(&dir).map_err(crate::catalog::io(&dir))?.count();
        let path = dir.join(format!("part-{interval}-{k:06}.parquet"));
        write_bars(&path, venue, symbol, interval, &bars)?;
        report.rows_written += bars.len() as u64;
        written.push(path);
    }
    Ok(written)
}

fn write_bars(path: &Path, venue: &str, symbol: &str, interval: &str, bars: &[Bar]) -> Result<(), BacktestError> {
    use arrow::array::{ArrayRef, Int64Array, StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::collections::HashMap;
    use std::sync::Arc;
    let fixed = |n: &str| {
        Field::new(n, DataType::Int64, false).with_metadata(HashMap::from([("scale".to_owned(), "9".to_owned())]))
    };
    let fields = vec![
        Field::new("ts_open_ns", DataType::UInt64, false),
        Field::new("ts_close_ns", DataType::UInt64, false),
        Field::new("interval", DataType::Utf8, false),
        fixed("open"),
        fixed("high"),
        fixed("low"),
        fixed("close"),
        fixed("volume"),
        fixed("quote_volume"),
        Field::new("trades", DataType::UInt64, false),
        fixed("taker_buy_volume"),
        fixed("taker_buy_quote_volume"),
    ];
    let meta = HashMap::from([
        ("argus.scale".to_owned(), "9".to_owned()),
        ("argus.table".to_owned(), "bars".to_owned()),
        ("argus.venue".to_owned(), venue.to_owned()),
        ("argus.symbol".to_owned(), symbol.to_owned()),
        ("argus.interval".to_owned(), interval.to_owned()),
    ]);
    let schema = Arc::new(Schema::new_with_metadata(fields, meta));
    let i = |f: fn(&Bar) -> i64| Arc::new(Int64Array::from_iter_values(bars.iter().map(f))) as ArrayRef;
    let u = |f: fn(&Bar) -> u64| Arc::new(UInt64Array::from_iter_values(bars.iter().map(f))) as ArrayRef;
    let cols = vec![
        u(|b| b.open_ns),
        u(|b| b.close_ns),
        Arc::new(StringArray::from_iter_values(bars.iter().map(|_| interval))) as ArrayRef,
        i(|b| b.open),
        i(|b| b.high),
        i(|b| b.low),
        i(|b| b.close),
        i(|b| b.volume),
        i(|b| b.quote_volume),
        u(|b| b.trades),
        i(|b| b.taker_buy_volume),
        i(|b| b.taker_buy_quote_volume),
    ];
    let batch = arrow::record_batch::RecordBatch::try_new(Arc::clone(&schema), cols)?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let file = std::fs::File::create(&tmp).map_err(crate::catalog::io(&tmp))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::try_new(
            crate::catalog::ZSTD_LEVEL,
        )?))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props))?;
    w.write(&batch)?;
    w.close()?;
    std::fs::rename(&tmp, path).map_err(crate::catalog::io(path))?;
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

    #[test]
    fn kline_intervals_come_from_file_names() {
        assert_eq!(kline_interval(Path::new("x/ADABTC-1m-2021-11-27.csv")).as_deref(), Some("1m"));
        assert_eq!(kline_interval(Path::new("BTCUSDT-1h-2025-01.zip.csv")).as_deref(), Some("1h"));
        assert_eq!(kline_interval(Path::new("BTCUSDT-trades.csv")), None);
    }
}
