//! The Parquet catalog: market data per table, venue, symbol and day, in a Hive layout that
//! pyarrow, pandas and DuckDB read directly (partition columns come from the path):
//!
//! ```text
//! <root>/<table>/venue=<venue>/symbol=<SYMBOL>/date=<YYYY-MM-DD>/part-<HH>-<seq>.parquet
//! ```
//!
//! | table | columns (besides `ts_exchange_ns`, `ts_recv_ns`: uint64, 0 = not sent) |
//! |---|---|
//! | `trades` | `price`, `size` (int64), `trade_id` (uint64), `aggressor` (`buy`/`sell`) |
//! | `deltas` | `action` (`add`/`update`/`delete`/`clear`), `side`, `price`, `size`, `sequence` (uint64), `flags` (uint8), `is_snapshot`, `is_last` (bool) |
//! | `quotes` | `bid_price`, `bid_size`, `ask_price`, `ask_size` |
//! | `marks` | `mark_price`, `index_price`, `funding_rate` (int64), `next_funding_ns` (uint64) |
//! | `liquidations` | `side`, `price`, `size` |
//!
//! Prices, sizes and rates are fixed-point integers: value = integer / 10^9. The scale is in
//! the schema metadata (`argus.scale = 9`) and on each such field (`scale = 9`). Files are zstd
//! compressed. A part is written to a hidden temporary file and renamed into place when it is
//! complete, so readers never see half a file and a crash loses only the part being written.
//! Rows go to the partition of their receive time (exchange time when there is none).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argus_core::{BookAction, MarketEvent, MarketEventKind, Side};
use arrow::array::{ArrayRef, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder, UInt64Builder, UInt8Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::pages::{Kind, PageColumns};
use crate::BacktestError;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BacktestError + '_ {
    move |source| BacktestError::Io { path: path.display().to_string(), source }
}

/// Version of the layout above, in every file's metadata.
pub const LAYOUT_VERSION: &str = "1";

/// Rows buffered per part before a record batch is written.
const BATCH: usize = 16_384;

/// Rows Arrow reads at a time per open part, for parts not laid out as argus writes them
/// (arrow arrays of 8 bytes a column).
const READ_BATCH: usize = 8192;

/// Rows decoded into a part's column buffers at a time (8 KiB a column, so the rows being
/// emitted stay in cache). A power of two: [`event_at`] masks its row index with it.
const DECODE_ROWS: usize = 1024;

/// Most columns a table's decoder reads (deltas).
const MAX_COLS: usize = 8;

/// Most rows in one data page of a catalog part.
const PAGE_ROWS: usize = 1 << 17;

/// The zstd level of every catalog file. Level 1 finds no match shorter than 6 bytes, so the
/// dictionaries of 8-byte prices, sizes and times (neighbours share their high bytes) are stored
/// mostly as literals, which decode ~2x faster than level 3's many short matches: a replay
/// spends ~25 % less time in zstd for ~12 % more bytes (BENCHMARKS.md, eighteenth session).
pub(crate) const ZSTD_LEVEL: i32 = 1;

/// The catalog's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Trades,
    Deltas,
    Quotes,
    Marks,
    Liquidations,
}

impl Table {
    pub const ALL: [Table; 5] = [Table::Trades, Table::Deltas, Table::Quotes, Table::Marks, Table::Liquidations];

    pub const fn as_str(self) -> &'static str {
        match self {
            Table::Trades => "trades",
            Table::Deltas => "deltas",
            Table::Quotes => "quotes",
            Table::Marks => "marks",
            Table::Liquidations => "liquidations",
        }
    }

    /// The columns the reader decodes, in order, and what each becomes in the decoder's
    /// column buffers (the others, like `is_snapshot`, repeat `flags`). At most [`MAX_COLS`].
    fn columns_read(self) -> &'static [(&'static str, Kind)] {
        use Kind::{Int32, Int64, Text};
        const TS: (&str, Kind) = ("ts_exchange_ns", Int64);
        const RECV: (&str, Kind) = ("ts_recv_ns", Int64);
        match self {
            Table::Trades => {
                &[TS, RECV, ("price", Int64), ("size", Int64), ("trade_id", Int64), ("aggressor", Text(side_code))]
            }
            Table::Deltas => &[
                TS,
                RECV,
                ("action", Text(action_code)),
                ("side", Text(side_code)),
                ("price", Int64),
                ("size", Int64),
                ("sequence", Int64),
                ("flags", Int32),
            ],
            Table::Quotes => {
                &[TS, RECV, ("bid_price", Int64), ("bid_size", Int64), ("ask_price", Int64), ("ask_size", Int64)]
            }
            Table::Marks => &[
                TS,
                RECV,
                ("mark_price", Int64),
                ("index_price", Int64),
                ("funding_rate", Int64),
                ("next_funding_ns", Int64),
            ],
            Table::Liquidations => &[TS, RECV, ("side", Text(side_code)), ("price", Int64), ("size", Int64)],
        }
    }

    fn of(kind: &MarketEventKind) -> Self {
        match kind {
            MarketEventKind::Trade(_) => Table::Trades,
            MarketEventKind::Delta(_) => Table::Deltas,
            MarketEventKind::Quote(_) => Table::Quotes,
            MarketEventKind::Mark(_) => Table::Marks,
            MarketEventKind::Liquidation(_) => Table::Liquidations,
        }
    }

    /// The Arrow schema of the table, with the fixed-point scale in its metadata.
    pub fn schema(self, venue: &str, symbol: &str) -> SchemaRef {
        let fixed = |name: &str| {
            Field::new(name, DataType::Int64, false)
                .with_metadata(HashMap::from([("scale".to_owned(), "9".to_owned())]))
        };
        let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
        let u64f = |name: &str| Field::new(name, DataType::UInt64, false);
        let mut fields = vec![u64f("ts_exchange_ns"), u64f("ts_recv_ns")];
        match self {
            Table::Trades => fields.extend([fixed("price"), fixed("size"), u64f("trade_id"), utf8("aggressor")]),
            Table::Deltas => fields.extend([
                utf8("action"),
                utf8("side"),
                fixed("price"),
                fixed("size"),
                u64f("sequence"),
                Field::new("flags", DataType::UInt8, false),
                Field::new("is_snapshot", DataType::Boolean, false),
                Field::new("is_last", DataType::Boolean, false),
            ]),
            Table::Quotes => {
                fields.extend([fixed("bid_price"), fixed("bid_size"), fixed("ask_price"), fixed("ask_size")])
            }
            Table::Marks => fields.extend([
                fixed("mark_price"),
                fixed("index_price"),
                fixed("funding_rate"),
                u64f("next_funding_ns"),
            ]),
            Table::Liquidations => fields.extend([utf8("side"), fixed("price"), fixed("size")]),
        }
        let meta = HashMap::from([
            ("argus.scale".to_owned(), "9".to_owned()),
            ("argus.layout_version".to_owned(), LAYOUT_VERSION.to_owned()),
            ("argus.table".to_owned(), self.as_str().to_owned()),
            ("argus.venue".to_owned(), venue.to_owned()),
            ("argus.symbol".to_owned(), symbol.to_owned()),
        ]);
        Arc::new(Schema::new_with_metadata(fields, meta))
    }
}

/// How long one part covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Hour,
    Day,
}

impl Rotation {
    pub(crate) fn period(self, ts_ns: u64) -> u64 {
        match self {
            Rotation::Hour => ts_ns / 3_600_000_000_000,
            Rotation::Day => ts_ns / 86_400_000_000_000,
        }
    }
}

/// Column builders of one table (one per open part, so the size spread is harmless).
#[allow(clippy::large_enum_variant)]
enum Cols {
    Trades(Int64Builder, Int64Builder, UInt64Builder, StringBuilder),
    Deltas(
        StringBuilder,
        StringBuilder,
        Int64Builder,
        Int64Builder,
        UInt64Builder,
        UInt8Builder,
        BooleanBuilder,
        BooleanBuilder,
    ),
    Quotes(Int64Builder, Int64Builder, Int64Builder, Int64Builder),
    Marks(Int64Builder, Int64Builder, Int64Builder, UInt64Builder),
    Liquidations(StringBuilder, Int64Builder, Int64Builder),
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

impl Cols {
    fn new(t: Table) -> Self {
        let i = Int64Builder::new;
        match t {
            Table::Trades => Cols::Trades(i(), i(), UInt64Builder::new(), StringBuilder::new()),
            Table::Deltas => Cols::Deltas(
                StringBuilder::new(),
                StringBuilder::new(),
                i(),
                i(),
                UInt64Builder::new(),
                UInt8Builder::new(),
                BooleanBuilder::new(),
                BooleanBuilder::new(),
            ),
            Table::Quotes => Cols::Quotes(i(), i(), i(), i()),
            Table::Marks => Cols::Marks(i(), i(), i(), UInt64Builder::new()),
            Table::Liquidations => Cols::Liquidations(StringBuilder::new(), i(), i()),
        }
    }

    fn push(&mut self, kind: &MarketEventKind) {
        match (self, kind) {
            (Cols::Trades(p, s, id, a), MarketEventKind::Trade(t)) => {
                p.append_value(t.price.units());
                s.append_value(t.qty.units());
                id.append_value(t.trade_id);
                a.append_value(side_str(t.aggressor));
            }
            (Cols::Deltas(action, side, p, s, seq, flags, snap, last), MarketEventKind::Delta(d)) => {
                action.append_value(match d.action {
                    BookAction::Add => "add",
                    BookAction::Update => "update",
                    BookAction::Delete => "delete",
                    BookAction::Clear => "clear",
                });
                side.append_value(side_str(d.side));
                p.append_value(d.price.units());
                s.append_value(d.qty.units());
                seq.append_value(d.sequence);
                flags.append_value(d.flags.0);
                snap.append_value(d.flags.is_snapshot());
                last.append_value(d.flags.is_last());
            }
            (Cols::Quotes(bp, bs, ap, az), MarketEventKind::Quote(q)) => {
                bp.append_value(q.bid_price.units());
                bs.append_value(q.bid_qty.units());
                ap.append_value(q.ask_price.units());
                az.append_value(q.ask_qty.units());
            }
            (Cols::Marks(m, i, f, n), MarketEventKind::Mark(k)) => {
                m.append_value(k.mark.units());
                i.append_value(k.index.units());
                f.append_value(k.funding_rate.units());
                n.append_value(k.next_funding.0);
            }
            (Cols::Liquidations(side, p, s), MarketEventKind::Liquidation(l)) => {
                side.append_value(side_str(l.side));
                p.append_value(l.price.units());
                s.append_value(l.qty.units());
            }
            // `Table::of` picks the builders, so kinds always match.
            _ => {}
        }
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        match self {
            Cols::Trades(p, s, id, a) => {
                vec![Arc::new(p.finish()), Arc::new(s.finish()), Arc::new(id.finish()), Arc::new(a.finish())]
            }
            Cols::Deltas(action, side, p, s, seq, flags, snap, last) => vec![
                Arc::new(action.finish()),
                Arc::new(side.finish()),
                Arc::new(p.finish()),
                Arc::new(s.finish()),
                Arc::new(seq.finish()),
                Arc::new(flags.finish()),
                Arc::new(snap.finish()),
                Arc::new(last.finish()),
            ],
            Cols::Quotes(bp, bs, ap, az) => {
                vec![Arc::new(bp.finish()), Arc::new(bs.finish()), Arc::new(ap.finish()), Arc::new(az.finish())]
            }
            Cols::Marks(m, i, f, n) => {
                vec![Arc::new(m.finish()), Arc::new(i.finish()), Arc::new(f.finish()), Arc::new(n.finish())]
            }
            Cols::Liquidations(side, p, s) => vec![Arc::new(side.finish()), Arc::new(p.finish()), Arc::new(s.finish())],
        }
    }
}

/// A part being written.
struct Part {
    period: u64,
    schema: SchemaRef,
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    ts_exchange: UInt64Builder,
    ts_recv: UInt64Builder,
    cols: Cols,
    buffered: usize,
    rows: u64,
}

impl Part {
    fn flush(&mut self) -> Result<(), BacktestError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let mut cols: Vec<ArrayRef> = vec![Arc::new(self.ts_exchange.finish()), Arc::new(self.ts_recv.finish())];
        cols.extend(self.cols.finish());
        self.writer.write(&RecordBatch::try_new(Arc::clone(&self.schema), cols)?)?;
        self.buffered = 0;
        Ok(())
    }

    /// Flushes, closes and renames the part into place.
    fn close(mut self) -> Result<(PathBuf, u64), BacktestError> {
        self.flush()?;
        self.writer.close()?;
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        Ok((self.path, self.rows))
    }
}

/// One closed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartWritten {
    pub path: PathBuf,
    pub table: Table,
    pub rows: u64,
}

/// Writes events into the catalog; call [`CatalogWriter::finish`] to close the open parts.
pub struct CatalogWriter {
    root: PathBuf,
    rotation: Rotation,
    open: HashMap<(Table, String, String), Part>,
    seq: u64,
    written: Vec<PartWritten>,
    /// How parts are encoded (tests write other layouts to hold the readers to them).
    props: WriterProperties,
}

impl std::fmt::Debug for CatalogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogWriter").field("root", &self.root).field("open", &self.open.len()).finish()
    }
}

/// `YYYY-MM-DD` of a day number since the epoch (proleptic Gregorian).
pub(crate) fn date(days: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

/// The next file name `name(seq)` not yet in `dir`, and the hidden temp path it is written under
/// before being renamed into place. Never overwrites: a later run adds files beside earlier ones.
pub(crate) fn fresh_part(dir: &Path, seq: &mut u64, name: impl Fn(u64) -> String) -> (PathBuf, PathBuf) {
    loop {
        *seq += 1;
        let name = name(*seq);
        let path = dir.join(&name);
        if !path.exists() {
            return (path, dir.join(format!(".{name}.tmp")));
        }
    }
}

pub(crate) fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

impl CatalogWriter {
    /// # Errors
    /// When `root` cannot be created.
    pub fn new(root: &Path, rotation: Rotation) -> Result<Self, BacktestError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        // Pages of up to 2^17 rows (parquet's default is 20,000): each page is a zstd frame of
        // its own with its own tables, so fewer, larger pages read ~10 % faster for <1 % more
        // bytes (BENCHMARKS.md, twelfth session). The 1 MiB page size limit still holds.
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
            .set_data_page_row_count_limit(PAGE_ROWS)
            .build();
        let open = HashMap::new();
        Ok(Self { root: root.to_path_buf(), rotation, open, seq: 0, written: Vec::new(), props })
    }

    /// Appends one event of `venue`/`symbol` (symbol as the venue spells it).
    ///
    /// # Errors
    /// I/O or Parquet failures; the event is then not written (the caller counts it).
    pub fn write(&mut self, venue: &str, symbol: &str, ev: &MarketEvent) -> Result<(), BacktestError> {
        let table = Table::of(&ev.kind);
        let ts = if ev.ts_recv.0 != 0 { ev.ts_recv.0 } else { ev.ts_exchange.0 };
        let period = self.rotation.period(ts);
        let key = (table, venue.to_owned(), symbol.to_owned());
        if self.open.get(&key).is_some_and(|p| p.period != period) {
            if let Some(p) = self.open.remove(&key) {
                let (path, rows) = p.close()?;
                self.written.push(PartWritten { path, table, rows });
            }
        }
        if !self.open.contains_key(&key) {
            let part = self.open_part(table, venue, symbol, ts, period)?;
            self.open.insert(key.clone(), part);
        }
        let Some(part) = self.open.get_mut(&key) else { return Ok(()) };
        part.ts_exchange.append_value(ev.ts_exchange.0);
        part.ts_recv.append_value(ev.ts_recv.0);
        part.cols.push(&ev.kind);
        part.buffered += 1;
        part.rows += 1;
        if part.buffered >= BATCH {
            part.flush()?;
        }
        Ok(())
    }

    fn open_part(
        &mut self,
        table: Table,
        venue: &str,
        symbol: &str,
        ts: u64,
        period: u64,
    ) -> Result<Part, BacktestError> {
        let day = i64::try_from(ts / 86_400_000_000_000).unwrap_or(0);
        let hour = (ts / 3_600_000_000_000) % 24;
        let dir = self
            .root
            .join(table.as_str())
            .join(format!("venue={}", safe(venue)))
            .join(format!("symbol={}", safe(symbol)))
            .join(format!("date={}", date(day)));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let (path, tmp) = fresh_part(&dir, &mut self.seq, |seq| format!("part-{hour:02}-{seq:06}.parquet"));
        let schema = table.schema(venue, symbol);
        let props = Some(self.props.clone());
        let writer = ArrowWriter::try_new(File::create(&tmp).map_err(io(&tmp))?, Arc::clone(&schema), props)?;
        Ok(Part {
            period,
            schema,
            tmp,
            path,
            writer,
            ts_exchange: UInt64Builder::new(),
            ts_recv: UInt64Builder::new(),
            cols: Cols::new(table),
            buffered: 0,
            rows: 0,
        })
    }

    /// Parts closed so far.
    pub fn written(&self) -> &[PartWritten] {
        &self.written
    }

    /// Closes every open part (each renamed into place) and returns all parts written.
    ///
    /// # Errors
    /// The first part that could not be closed; the others are still closed.
    pub fn finish(mut self) -> Result<Vec<PartWritten>, BacktestError> {
        let mut first_err = None;
        let mut open: Vec<_> = self.open.drain().collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        for ((table, _, _), part) in open {
            match part.close() {
                Ok((path, rows)) => self.written.push(PartWritten { path, table, rows }),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(self.written),
        }
    }
}

/// Streams one venue/symbol of the catalog in time order (receive time, else exchange time),
/// merging every table and every part; ties keep table order (trades, deltas, quotes, marks,
/// liquidations) then part order, so a replay is deterministic.
///
/// Memory stays flat whatever the date range: a part is opened only when the merge reaches the
/// earliest time its footer statistics allow, and closed (its buffers freed) when it is done,
/// so only the parts that overlap in time (one per table, for a catalog written by argus) hold
/// a decoded batch at once.
pub struct CatalogReader {
    /// Sort key of each part's next event (`u64::MAX` once the part is done); for a part not
    /// yet opened, a lower bound (its footer's earliest timestamp). The current part's key may
    /// lag behind while a run is emitted; [`CatalogReader::next_slow`] refreshes it.
    heads: Vec<u64>,
    /// The part being emitted from, and the key it may emit up to before the merge looks again:
    /// events come in runs from one part (a depth message is many rows), so the minimum over all
    /// parts is found once per run, not once per event.
    cur: usize,
    limit: (u64, usize),
    parts: Vec<ReadPart>,
    from: u64,
    to: u64,
    /// Rows that could not be decoded (counted, skipped).
    pub bad_rows: u64,
    /// Whether parts laid out as argus writes them are decoded page by page (always, except in
    /// tests that hold the two decoders equal).
    direct: bool,
    /// Parts opened so far, and how many of them are decoded page by page.
    opened: (usize, usize),
}

impl std::fmt::Debug for CatalogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogReader").field("parts", &self.parts.len()).finish()
    }
}

/// A part of the catalog: not opened yet, being read, or done.
enum ReadPart {
    Pending(Table, PathBuf),
    Open(PartReader),
    Done,
}

/// Opens a part for reading. A part laid out as argus writes it (required columns, plain or
/// dictionary pages) is decoded page by page straight into column buffers; any other file of
/// the table's schema goes through Arrow: only the columns the decoder reads, text columns
/// (sides, actions) as dictionaries, so a row's text is a key into a handful of values decoded
/// once per page instead of a string copied per row.
fn open_part(table: Table, p: &Path, direct: bool) -> Result<PartReader, BacktestError> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::arrow::ProjectionMask;
    let f = File::open(p).map_err(io(p))?;
    let plain = ArrowReaderMetadata::load(&f, ArrowReaderOptions::new())?;
    let reader = |source| PartReader {
        table,
        source,
        cols: Box::new([[0; DECODE_ROWS]; MAX_COLS]),
        nulls: Vec::new(),
        rows: 0,
        pos: 0,
    };
    if direct {
        if let Some(pages) = PageColumns::try_open(&f, plain.metadata().clone(), table.columns_read()) {
            return Ok(reader(Source::Pages(pages)));
        }
    }
    let hinted: Vec<Field> = plain
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))),
            _ => f.as_ref().clone(),
        })
        .collect();
    let hint = Arc::new(Schema::new_with_metadata(hinted, plain.schema().metadata().clone()));
    // A file whose schema takes no hint is read as it is (the decoder takes plain text too).
    let meta = ArrowReaderMetadata::try_new(plain.metadata().clone(), ArrowReaderOptions::new().with_schema(hint))
        .unwrap_or(plain);
    let wanted: Vec<&str> = table.columns_read().iter().map(|(name, _)| *name).collect();
    let descr = meta.metadata().file_metadata().schema_descr_ptr();
    let leaves = (0..descr.num_columns()).filter(|&i| wanted.contains(&descr.column(i).name()));
    let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(f, meta)
        .with_projection(ProjectionMask::leaves(&descr, leaves))
        .with_batch_size(READ_BATCH)
        .build()?;
    Ok(reader(Source::Arrow { batches, batch: None, next_row: 0 }))
}

/// The earliest sort key a part can hold, from its footer's statistics (0 when unknown: the
/// part is then opened at once).
fn part_lower_bound(p: &Path) -> Result<u64, BacktestError> {
    use parquet::file::statistics::Statistics;
    let f = File::open(p).map_err(io(p))?;
    let meta = parquet::arrow::arrow_reader::ArrowReaderMetadata::load(&f, Default::default())?;
    let meta = meta.metadata();
    let schema = meta.file_metadata().schema_descr();
    let col = |name: &str| (0..schema.num_columns()).find(|&i| schema.column(i).name() == name);
    let Some(r) = col("ts_recv_ns") else { return Ok(0) };
    let mut lo = u64::MAX;
    for rg in meta.row_groups() {
        let min = |c: usize| match rg.column(c).statistics() {
            Some(Statistics::Int64(s)) => s.min_opt().map(|v| *v as u64),
            _ => None,
        };
        // A row without a receive time sorts by its exchange time, which bounds nothing about
        // the others: such a part is opened at once.
        match min(r) {
            Some(mr) if mr > 0 => lo = lo.min(mr),
            _ => return Ok(0),
        }
    }
    Ok(if lo == u64::MAX { 0 } else { lo })
}

/// Where a part's rows come from.
enum Source {
    /// Pages decoded directly (parts laid out as argus writes them).
    Pages(PageColumns),
    /// Record batches from Arrow (any other file), with the current batch and its first row
    /// not yet decoded.
    Arrow {
        batches: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        batch: Option<RecordBatch>,
        next_row: usize,
    },
}

struct PartReader {
    table: Table,
    source: Source,
    /// The next rows column by column: the table's column `c` (in [`Table::columns_read`]
    /// order) in `cols[c]`, text as codes (see [`side_code`]). Events are built from them as
    /// they are emitted.
    cols: Box<[[i64; DECODE_ROWS]; MAX_COLS]>,
    /// Which of those rows have a null somewhere (Arrow only; empty when none has).
    nulls: Vec<bool>,
    /// Rows in `cols`, and the next one to emit.
    rows: usize,
    pos: usize,
}

fn sort_ts(ev: &MarketEvent) -> u64 {
    if ev.ts_recv.0 != 0 {
        ev.ts_recv.0
    } else {
        ev.ts_exchange.0
    }
}

impl PartReader {
    /// The next row's event if it is one and already decoded.
    #[inline(always)]
    fn peek_fast(&self) -> Option<MarketEvent> {
        if self.pos < self.rows {
            self.event(self.pos)
        } else {
            None
        }
    }

    /// The event of row `i` of the buffers; `None` for a row that is not one (a null, an
    /// unknown text or flag value).
    #[inline(always)]
    fn event(&self, i: usize) -> Option<MarketEvent> {
        if self.nulls.get(i) == Some(&true) {
            return None;
        }
        event_at(self.table, &self.cols, i)
    }

    /// The next event without consuming it, skipping (and counting) rows that are not events
    /// and decoding the next rows when needed.
    #[inline]
    fn peek(&mut self, bad: &mut u64) -> Option<MarketEvent> {
        loop {
            while self.pos < self.rows {
                if let Some(ev) = self.event(self.pos) {
                    return Some(ev);
                }
                *bad += 1;
                self.pos += 1;
            }
            self.pos = 0;
            self.rows = 0;
            self.rows = self.load(bad)?;
        }
    }

    /// Decodes the part's next rows (at most [`DECODE_ROWS`]) into `cols`: how many, `None`
    /// once the part is done. Rows that cannot be decoded are counted in `bad`.
    fn load(&mut self, bad: &mut u64) -> Option<usize> {
        self.nulls.clear();
        match &mut self.source {
            Source::Pages(pages) => {
                let n = pages.rows_left.min(DECODE_ROWS as u64) as usize;
                if n == 0 {
                    return None;
                }
                if pages.fill(n, self.cols.as_flattened_mut(), DECODE_ROWS).is_err() {
                    // A page that cannot be decoded: the part's remaining rows are counted and
                    // the part ends.
                    *bad += pages.rows_left;
                    pages.rows_left = 0;
                    return None;
                }
                Some(n)
            }
            Source::Arrow { batches, batch, next_row } => loop {
                if let Some(b) = batch {
                    let end = b.num_rows().min(*next_row + DECODE_ROWS);
                    if *next_row < end {
                        let rows = *next_row..end;
                        *next_row = end;
                        let cols = self.cols.as_flattened_mut();
                        if arrow_columns(self.table, b, rows.clone(), cols, &mut self.nulls).is_some() {
                            return Some(rows.len());
                        }
                        // Columns of the wrong types: every row is bad.
                        *bad += rows.len() as u64;
                        continue;
                    }
                }
                match batches.next() {
                    Some(Ok(b)) => {
                        *batch = Some(b);
                        *next_row = 0;
                    }
                    Some(Err(_)) => {
                        *bad += 1;
                        return None;
                    }
                    None => return None,
                }
            },
        }
    }
}

/// Text codes in column buffers: a side, an action, or -1 for text the catalog does not know.
fn side_code(t: &[u8]) -> i64 {
    match t {
        b"buy" => 0,
        b"sell" => 1,
        _ => -1,
    }
}

fn action_code(t: &[u8]) -> i64 {
    match t {
        b"add" => 0,
        b"update" => 1,
        b"delete" => 2,
        b"clear" => 3,
        _ => -1,
    }
}

fn side_of(code: i64) -> Option<Side> {
    match code {
        0 => Some(Side::Buy),
        1 => Some(Side::Sell),
        _ => None,
    }
}

fn action_of(code: i64) -> Option<BookAction> {
    match code {
        0 => Some(BookAction::Add),
        1 => Some(BookAction::Update),
        2 => Some(BookAction::Delete),
        3 => Some(BookAction::Clear),
        _ => None,
    }
}

/// Copies rows `rows` of an Arrow batch into the column buffers (the layout
/// [`PartReader::cols`] describes), marking rows with a null in `nulls`. `None` when a column
/// is missing or of a type the table does not have.
fn arrow_columns(
    table: Table,
    b: &RecordBatch,
    rows: std::ops::Range<usize>,
    cols: &mut [i64],
    nulls: &mut Vec<bool>,
) -> Option<()> {
    use arrow::array::{Array, AsArray, DictionaryArray};
    use arrow::datatypes::{Int32Type, Int64Type, UInt64Type, UInt8Type};
    let n = rows.len();
    for (c, &(name, kind)) in table.columns_read().iter().enumerate() {
        let a = b.column_by_name(name)?.slice(rows.start, n);
        let out = cols.get_mut(c * DECODE_ROWS..c * DECODE_ROWS + n)?;
        match (kind, a.data_type()) {
            (Kind::Int64, DataType::Int64) => out.copy_from_slice(a.as_primitive_opt::<Int64Type>()?.values()),
            (Kind::Int64, DataType::UInt64) => {
                for (o, &v) in out.iter_mut().zip(a.as_primitive_opt::<UInt64Type>()?.values()) {
                    *o = v as i64;
                }
            }
            (Kind::Int32, DataType::UInt8) => {
                for (o, &v) in out.iter_mut().zip(a.as_primitive_opt::<UInt8Type>()?.values()) {
                    *o = i64::from(v);
                }
            }
            (Kind::Text(code), DataType::Utf8) => {
                for (o, v) in out.iter_mut().zip(a.as_string_opt::<i32>()?.iter()) {
                    *o = v.map_or(-1, |s| code(s.as_bytes()));
                }
            }
            (Kind::Text(code), DataType::Dictionary(..)) => {
                let d = a.as_any().downcast_ref::<DictionaryArray<Int32Type>>()?;
                let values = d.values().as_string_opt::<i32>()?;
                let codes: Vec<i64> = values.iter().map(|v| v.map_or(-1, |s| code(s.as_bytes()))).collect();
                for (o, k) in out.iter_mut().zip(d.keys().values()) {
                    *o = usize::try_from(*k).ok().and_then(|k| codes.get(k)).copied().unwrap_or(-1);
                }
            }
            _ => return None,
        }
        if a.null_count() > 0 {
            nulls.resize(n, false);
            for (i, null) in nulls.iter_mut().enumerate() {
                *null |= a.is_null(i);
            }
        }
    }
    Some(())
}

/// The event of row `i` of a table's column buffers (`None`: an unknown text or flag value).
#[inline(always)]
fn event_at(table: Table, c: &[[i64; DECODE_ROWS]; MAX_COLS], i: usize) -> Option<MarketEvent> {
    use argus_core::{
        BookDelta, DeltaFlags, InstrumentId, Liquidation, MarkPrice, Price, Qty, Quote, Trade, UnixNanos,
    };
    // A power of two: the mask keeps every index below in bounds without a check.
    let i = i & (DECODE_ROWS - 1);
    let (px, qty) = (|v: i64| Price::from_units(v), |v: i64| Qty::from_units(v));
    let kind = match table {
        Table::Trades => MarketEventKind::Trade(Trade {
            price: px(c[2][i]),
            qty: qty(c[3][i]),
            trade_id: c[4][i] as u64,
            aggressor: side_of(c[5][i])?,
        }),
        Table::Deltas => MarketEventKind::Delta(BookDelta {
            action: action_of(c[2][i])?,
            side: side_of(c[3][i])?,
            price: px(c[4][i]),
            qty: qty(c[5][i]),
            sequence: c[6][i] as u64,
            flags: DeltaFlags(u8::try_from(c[7][i]).ok()?),
        }),
        Table::Quotes => MarketEventKind::Quote(Quote {
            bid_price: px(c[2][i]),
            bid_qty: qty(c[3][i]),
            ask_price: px(c[4][i]),
            ask_qty: qty(c[5][i]),
        }),
        Table::Marks => MarketEventKind::Mark(MarkPrice {
            mark: px(c[2][i]),
            index: px(c[3][i]),
            funding_rate: px(c[4][i]),
            next_funding: UnixNanos(c[5][i] as u64),
        }),
        Table::Liquidations => {
            MarketEventKind::Liquidation(Liquidation { side: side_of(c[2][i])?, price: px(c[3][i]), qty: qty(c[4][i]) })
        }
    };
    Some(MarketEvent {
        ts_exchange: UnixNanos(c[0][i] as u64),
        ts_recv: UnixNanos(c[1][i] as u64),
        instrument: InstrumentId(0),
        decode_ns: 0,
        kind,
    })
}

impl CatalogReader {
    /// Every part of `venue`/`symbol` whose date lies in `[from, to]` (ns; events outside are
    /// skipped too).
    ///
    /// # Errors
    /// Unreadable directories or Parquet files; no data at all for the venue and symbol.
    pub fn open(root: &Path, venue: &str, symbol: &str, from: u64, to: u64) -> Result<Self, BacktestError> {
        Self::open_with(root, venue, symbol, from, to, true)
    }

    /// [`CatalogReader::open`], choosing whether argus-written parts are decoded page by page
    /// (`direct`) or through Arrow like any other file.
    fn open_with(
        root: &Path,
        venue: &str,
        symbol: &str,
        from: u64,
        to: u64,
        direct: bool,
    ) -> Result<Self, BacktestError> {
        let mut files = Vec::new();
        for table in Table::ALL {
            let dir = root
                .join(table.as_str())
                .join(format!("venue={}", safe(venue)))
                .join(format!("symbol={}", safe(symbol)));
            let Ok(days) = std::fs::read_dir(&dir) else { continue };
            let mut days: Vec<PathBuf> = days.filter_map(|d| d.ok().map(|d| d.path())).collect();
            days.sort();
            for day in days {
                let name = day.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let Some(d) = name.strip_prefix("date=") else { continue };
                let (lo, hi) = (
                    date(i64::try_from(from / 86_400_000_000_000).unwrap_or(0)),
                    date(i64::try_from(to / 86_400_000_000_000).unwrap_or(i64::MAX / 2)),
                );
                if d < lo.as_str() || (to != u64::MAX && d > hi.as_str()) {
                    continue;
                }
                let mut parts: Vec<PathBuf> = std::fs::read_dir(&day)
                    .map_err(io(&day))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                    .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                    .collect();
                parts.sort();
                files.extend(parts.into_iter().map(|p| (table, p)));
            }
        }
        if files.is_empty() {
            return Err(BacktestError::Schema(format!(
                "no catalog data for venue `{venue}` symbol `{symbol}` under {}",
                root.display()
            )));
        }
        let mut heads = Vec::with_capacity(files.len());
        let mut parts = Vec::with_capacity(files.len());
        for (table, p) in files {
            heads.push(part_lower_bound(&p)?.max(from));
            parts.push(ReadPart::Pending(table, p));
        }
        let mut r = Self { heads, cur: 0, limit: (0, 0), parts, from, to, bad_rows: 0, direct, opened: (0, 0) };
        r.select()?;
        Ok(r)
    }

    /// Parts opened so far, and how many of them are decoded page by page (the others go
    /// through Arrow: files not laid out as argus writes them).
    pub fn parts_opened(&self) -> (usize, usize) {
        self.opened
    }

    /// Key of part `i`'s next event inside `[from, to]`, skipping those before `from`; a part
    /// whose next event is after `to` is done (parts are in time order).
    /// A part that is done is closed.
    fn head(&mut self, i: usize) -> u64 {
        let ReadPart::Open(part) = &mut self.parts[i] else { return u64::MAX };
        while let Some(ev) = part.peek(&mut self.bad_rows) {
            let ts = sort_ts(&ev);
            if ts < self.from {
                part.pos += 1;
                continue;
            }
            if ts <= self.to {
                return ts;
            }
            break;
        }
        self.parts[i] = ReadPart::Done;
        u64::MAX
    }

    /// Picks the part with the smallest (key, index) and the runner-up key it may emit up to,
    /// opening parts whose lower bound comes first until an open part leads.
    ///
    /// # Errors
    /// A part that cannot be opened.
    fn select(&mut self) -> Result<(), BacktestError> {
        loop {
            let (mut best, mut second) = ((u64::MAX, usize::MAX), (u64::MAX, usize::MAX));
            for (i, &ts) in self.heads.iter().enumerate() {
                let k = (ts, i);
                if k < best {
                    second = best;
                    best = k;
                } else if k < second {
                    second = k;
                }
            }
            self.cur = best.1;
            self.limit = second;
            let Some(ReadPart::Pending(table, path)) = self.parts.get(best.1) else { return Ok(()) };
            let reader = open_part(*table, path, self.direct)?;
            self.opened.0 += 1;
            self.opened.1 += usize::from(matches!(reader.source, Source::Pages(_)));
            self.parts[best.1] = ReadPart::Open(reader);
            self.heads[best.1] = self.head(best.1);
        }
    }

    /// The next event when the current run cannot simply go on: refreshes the current part's
    /// head (the fast path leaves it behind), looks at every part if another may be due, and
    /// emits from the part that leads.
    #[inline(never)]
    fn next_slow(&mut self) -> Option<MarketEvent> {
        if self.cur < self.heads.len() {
            self.heads[self.cur] = self.head(self.cur);
        }
        let mut i = self.cur;
        let mut ts = *self.heads.get(i)?;
        if (ts, i) >= self.limit {
            // Another part may be due first: look at all of them once for the next run.
            if self.select().is_err() {
                // A part that cannot be opened mid-stream: counted, and the stream ends rather
                // than skipping its time range silently.
                self.bad_rows += 1;
                return None;
            }
            i = self.cur;
            ts = *self.heads.get(i)?;
        }
        if ts == u64::MAX {
            return None;
        }
        let Some(ReadPart::Open(part)) = self.parts.get_mut(i) else { return None };
        let ev = part.event(part.pos)?;
        part.pos += 1;
        Some(ev)
    }
}

impl Iterator for CatalogReader {
    type Item = MarketEvent;

    /// The current part's next event while it stays inside the window and ahead of every other
    /// part (its head is then stale until [`Self::next_slow`] refreshes it); otherwise the slow
    /// path.
    #[inline(always)]
    fn next(&mut self) -> Option<MarketEvent> {
        if let Some(ReadPart::Open(part)) = self.parts.get_mut(self.cur) {
            if let Some(ev) = part.peek_fast() {
                let ts = sort_ts(&ev);
                if ts >= self.from && ts <= self.to && (ts, self.cur) < self.limit {
                    part.pos += 1;
                    return Some(ev);
                }
            }
        }
        self.next_slow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merge_interleaves_tables_in_time_order_and_ties_keep_table_order() {
        #![allow(clippy::unwrap_used)]
        use argus_core::{InstrumentId, Price, Qty, Quote, Trade, UnixNanos};
        let root = std::env::temp_dir().join(format!("argus-merge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let ev = |t: u64, kind| MarketEvent {
            ts_exchange: UnixNanos(t),
            ts_recv: UnixNanos(t),
            instrument: InstrumentId(0),
            decode_ns: 0,
            kind,
        };
        let trade = |t: u64| {
            ev(
                t,
                MarketEventKind::Trade(Trade {
                    price: Price::from_units(1),
                    qty: Qty::from_units(1),
                    trade_id: t,
                    aggressor: Side::Buy,
                }),
            )
        };
        let quote = |t: u64| {
            let (p, q) = (Price::from_units(1), Qty::from_units(1));
            ev(t, MarketEventKind::Quote(Quote { bid_price: p, bid_qty: q, ask_price: p, ask_qty: q }))
        };
        // Runs of several rows from one table, interleaved with the other, and a tie at 50.
        let base = 1_723_161_254_000_000_000_u64;
        let trades = [10, 11, 12, 50, 60, 61, 62, 63];
        let quotes = [5, 20, 21, 50, 55, 70];
        let mut w = CatalogWriter::new(&root, Rotation::Day).unwrap();
        for t in trades {
            w.write("v", "S", &trade(base + t)).unwrap();
        }
        for t in quotes {
            w.write("v", "S", &quote(base + t)).unwrap();
        }
        w.finish().unwrap();
        let got: Vec<(u64, bool)> = CatalogReader::open(&root, "v", "S", 0, u64::MAX)
            .unwrap()
            .map(|e| (e.ts_recv.0 - base, matches!(e.kind, MarketEventKind::Trade(_))))
            .collect();
        let want = [
            (5, false),
            (10, true),
            (11, true),
            (12, true),
            (20, false),
            (21, false),
            (50, true),
            (50, false),
            (55, false),
            (60, true),
            (61, true),
            (62, true),
            (63, true),
            (70, false),
        ];
        assert_eq!(got, want);
        // A window keeps only what lies inside it.
        let n = CatalogReader::open(&root, "v", "S", base + 12, base + 55).unwrap().count();
        assert_eq!(n, 6);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_large_part_reads_back_every_event_across_batches_pages_and_chunks() {
        #![allow(clippy::unwrap_used)]
        use argus_core::{BookAction, BookDelta, DeltaFlags, InstrumentId, Price, Qty, Trade, UnixNanos};
        // More rows than a read batch (and many decode chunks) in one part, with trades
        // interleaved so the merge switches parts in the middle of chunks: every event comes
        // back, equal, in order.
        let base = 1_723_161_254_000_000_000_u64;
        let mut want = Vec::new();
        for i in 0..(2 * READ_BATCH as u64 + 3 * DECODE_ROWS as u64 + 7) {
            let kind = if i % 7 == 3 {
                MarketEventKind::Trade(Trade {
                    price: Price::from_units(5_000 + i as i64),
                    qty: Qty::from_units(1 + i as i64 % 5),
                    trade_id: i,
                    aggressor: if i % 2 == 0 { Side::Buy } else { Side::Sell },
                })
            } else {
                MarketEventKind::Delta(BookDelta {
                    action: [BookAction::Add, BookAction::Update, BookAction::Delete][i as usize % 3],
                    side: if i % 5 < 2 { Side::Buy } else { Side::Sell },
                    flags: DeltaFlags((i % 4) as u8),
                    price: Price::from_units(4_000 + (i as i64 * 37) % 900),
                    qty: Qty::from_units(i as i64 % 11),
                    sequence: i / 3,
                })
            };
            let t = base + i / 2;
            want.push(MarketEvent {
                ts_exchange: UnixNanos(t - 5),
                ts_recv: UnixNanos(t),
                instrument: InstrumentId(0),
                decode_ns: 0,
                kind,
            });
        }
        let (root, _) = write_catalog("large", &want, None);
        let mut r = CatalogReader::open(&root, "v", "S", 0, u64::MAX).unwrap();
        let got: Vec<MarketEvent> = r.by_ref().collect();
        assert_eq!(r.bad_rows, 0);
        // Ties (two events a nanosecond) come back trades first (table order), each table in
        // written order: what a stable sort of the written events gives.
        want.sort_by_key(|e| (e.ts_recv.0, !matches!(e.kind, MarketEventKind::Trade(_))));
        assert_eq!(got.len(), want.len());
        assert!(got == want, "first difference at {:?}", got.iter().zip(&want).position(|(a, b)| a != b));
        let _ = std::fs::remove_dir_all(&root);
    }

    /// `events` written to a fresh catalog under the temporary directory (venue `v`, symbol
    /// `S`), with `props` instead of the writer's own when given: its root and parts.
    fn write_catalog(
        tag: &str,
        events: &[MarketEvent],
        props: Option<WriterProperties>,
    ) -> (PathBuf, Vec<PartWritten>) {
        #![allow(clippy::unwrap_used)]
        let root = std::env::temp_dir().join(format!("argus-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut w = CatalogWriter::new(&root, Rotation::Day).unwrap();
        if let Some(p) = props {
            w.props = p;
        }
        for ev in events {
            w.write("v", "S", ev).unwrap();
        }
        (root, w.finish().unwrap())
    }

    /// Every table's event kinds, many rows, ties between tables.
    fn mixed_events(n: u64) -> Vec<MarketEvent> {
        use argus_core::{
            BookAction, BookDelta, DeltaFlags, InstrumentId, Liquidation, MarkPrice, Price, Qty, Quote, Trade,
            UnixNanos,
        };
        let base = 1_723_161_254_000_000_000_u64;
        let side = |i: u64| if i % 5 < 2 { Side::Buy } else { Side::Sell };
        (0..n)
            .map(|i| {
                let p = Price::from_units(4_000_000_000_000 + (i as i64 * 7_919) % 90_000 * 10_000_000);
                let q = Qty::from_units((i as i64 * 31) % 1_000_003);
                let kind = match i % 23 {
                    3 | 9 | 15 => {
                        MarketEventKind::Trade(Trade { price: p, qty: q, trade_id: 10 * i, aggressor: side(i) })
                    }
                    5 | 17 => MarketEventKind::Quote(Quote {
                        bid_price: p,
                        bid_qty: q,
                        ask_price: p,
                        ask_qty: Qty::from_units(7),
                    }),
                    11 => MarketEventKind::Mark(MarkPrice {
                        mark: p,
                        index: Price::from_units(-(i as i64)),
                        funding_rate: Price::from_units(i as i64 % 3 - 1),
                        next_funding: UnixNanos(base + 8 * 3_600_000_000_000),
                    }),
                    21 => MarketEventKind::Liquidation(Liquidation { side: side(i), price: p, qty: q }),
                    _ => MarketEventKind::Delta(BookDelta {
                        action: [BookAction::Add, BookAction::Update, BookAction::Delete, BookAction::Clear]
                            [i as usize % 4],
                        side: side(i),
                        flags: DeltaFlags((i % 4) as u8),
                        price: p,
                        qty: q,
                        sequence: i / 3,
                    }),
                };
                let t = base + i / 2;
                MarketEvent {
                    ts_exchange: UnixNanos(t - 5),
                    ts_recv: UnixNanos(t),
                    instrument: InstrumentId(0),
                    decode_ns: 0,
                    kind,
                }
            })
            .collect()
    }

    #[test]
    fn the_page_decoder_and_arrow_read_every_layout_alike() {
        #![allow(clippy::unwrap_used)]
        use parquet::basic::Encoding;
        use parquet::file::properties::WriterVersion;
        let base = || WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()));
        // (name, properties, whether every part is decoded page by page)
        let layouts = [
            ("argus", None, true),
            // Many pages and row groups; dictionaries that overflow into plain pages mid-chunk.
            (
                "small pages",
                Some(
                    base()
                        .set_data_page_row_count_limit(97)
                        .set_write_batch_size(97)
                        .set_max_row_group_size(1_000)
                        .set_dictionary_page_size_limit(64)
                        .build(),
                ),
                true,
            ),
            ("plain", Some(base().set_dictionary_enabled(false).build()), true),
            ("uncompressed", Some(WriterProperties::builder().set_data_page_row_count_limit(500).build()), true),
            (
                "delta encoded",
                Some(
                    base()
                        .set_dictionary_enabled(false)
                        .set_column_encoding("ts_recv_ns".into(), Encoding::DELTA_BINARY_PACKED)
                        .set_column_encoding("price".into(), Encoding::DELTA_BINARY_PACKED)
                        .build(),
                ),
                false,
            ),
        ];
        let mut want = mixed_events(25_000);
        for (name, props, all_direct) in layouts.into_iter().chain([(
            "v2 pages",
            Some(base().set_writer_version(WriterVersion::PARQUET_2_0).set_data_page_row_count_limit(300).build()),
            false,
        )]) {
            let (root, _) = write_catalog(&format!("layout-{}", name.replace(' ', "-")), &want, props);
            want.sort_by_key(|e| (e.ts_recv.0, Table::of(&e.kind)));
            for direct in [true, false] {
                let mut r = CatalogReader::open_with(&root, "v", "S", 0, u64::MAX, direct).unwrap();
                let got: Vec<MarketEvent> = r.by_ref().collect();
                assert_eq!(r.bad_rows, 0, "{name}");
                assert_eq!(got.len(), want.len(), "{name} direct={direct}");
                let diff = got.iter().zip(&want).position(|(a, b)| a != b);
                assert!(diff.is_none(), "{name} direct={direct}: first difference at {diff:?}");
                let (opened, paged) = r.parts_opened();
                assert_eq!(opened, 5, "{name}");
                match (direct, all_direct) {
                    (false, _) => assert_eq!(paged, 0),
                    (true, true) => assert_eq!(paged, 5, "{name}"),
                    (true, false) if name == "delta encoded" => assert_eq!(paged, 0, "{name}"),
                    (true, false) => {}
                }
            }
            let _ = std::fs::remove_dir_all(&root);
        }
    }

    #[test]
    fn a_damaged_page_ends_its_part_and_every_row_left_is_counted() {
        #![allow(clippy::unwrap_used)]
        use std::io::{Seek, SeekFrom, Write};
        let want = mixed_events(5_000);
        let (root, parts) = write_catalog("damaged", &want, None);
        let deltas = parts.iter().find(|p| p.table == Table::Deltas).unwrap();
        // Zero the `price` column chunk of the deltas part (its footer stays intact).
        let meta = parquet::arrow::arrow_reader::ArrowReaderMetadata::load(
            &File::open(&deltas.path).unwrap(),
            Default::default(),
        )
        .unwrap();
        let descr = meta.metadata().file_metadata().schema_descr_ptr();
        let leaf = (0..descr.num_columns()).find(|&i| descr.column(i).name() == "price").unwrap();
        let (start, len) = meta.metadata().row_group(0).column(leaf).byte_range();
        let mut f = std::fs::OpenOptions::new().write(true).open(&deltas.path).unwrap();
        f.seek(SeekFrom::Start(start)).unwrap();
        f.write_all(&vec![0; len as usize]).unwrap();
        drop(f);
        let mut r = CatalogReader::open(&root, "v", "S", 0, u64::MAX).unwrap();
        let got: Vec<MarketEvent> = r.by_ref().collect();
        // The other tables come back whole; every deltas row is counted as bad, none is lost
        // without a trace.
        assert_eq!(r.bad_rows, deltas.rows);
        assert_eq!(got.len() as u64, want.len() as u64 - deltas.rows);
        assert!(got.iter().all(|e| !matches!(e.kind, MarketEventKind::Delta(_))));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn rows_with_nulls_or_unknown_text_are_counted_and_the_rest_read() {
        #![allow(clippy::unwrap_used)]
        use arrow::array::{Int64Array, StringArray, UInt64Array, UInt8Array};
        // A deltas part written by another tool: nullable columns, no `is_snapshot`/`is_last`,
        // two row groups; a null price, an unknown side and a null side.
        let root = std::env::temp_dir().join(format!("argus-badrows-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("deltas/venue=v/symbol=S/date=2024-08-09");
        std::fs::create_dir_all(&dir).unwrap();
        let base = 1_723_161_254_000_000_000_u64;
        let f = |n: &str, t: DataType| Field::new(n, t, true);
        let schema = Arc::new(Schema::new(vec![
            f("ts_exchange_ns", DataType::UInt64),
            f("ts_recv_ns", DataType::UInt64),
            f("action", DataType::Utf8),
            f("side", DataType::Utf8),
            f("price", DataType::Int64),
            f("size", DataType::Int64),
            f("sequence", DataType::UInt64),
            f("flags", DataType::UInt8),
        ]));
        let batch = |t0: u64, sides: Vec<Option<&str>>, prices: Vec<Option<i64>>| {
            let n = sides.len();
            let ts: Vec<u64> = (0..n as u64).map(|i| base + t0 + i).collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(UInt64Array::from(ts.clone())),
                    Arc::new(UInt64Array::from(ts)),
                    Arc::new(StringArray::from(vec!["add"; n])),
                    Arc::new(StringArray::from(sides)),
                    Arc::new(Int64Array::from(prices)),
                    Arc::new(Int64Array::from(vec![5; n])),
                    Arc::new(UInt64Array::from(vec![1; n])),
                    Arc::new(UInt8Array::from(vec![0; n])),
                ],
            )
            .unwrap()
        };
        let file = File::create(dir.join("part-00-000000.parquet")).unwrap();
        let mut w = ArrowWriter::try_new(file, schema.clone(), None).unwrap();
        w.write(&batch(0, vec![Some("buy"), Some("hold"), Some("sell")], vec![Some(10), Some(11), None])).unwrap();
        w.flush().unwrap();
        w.write(&batch(10, vec![Some("sell"), None, Some("buy")], vec![Some(20), Some(21), Some(22)])).unwrap();
        w.close().unwrap();
        let mut r = CatalogReader::open(&root, "v", "S", 0, u64::MAX).unwrap();
        let got: Vec<(u64, i64)> = r
            .by_ref()
            .map(|e| match e.kind {
                MarketEventKind::Delta(d) => (e.ts_recv.0 - base, d.price.units()),
                _ => (0, 0),
            })
            .collect();
        assert_eq!(got, [(0, 10), (10, 20), (12, 22)]);
        assert_eq!(r.bad_rows, 3);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_944), "2024-08-09");
        assert_eq!(date(11_016), "2000-02-29");
        assert_eq!(date(20_417), "2025-11-25");
    }
}
