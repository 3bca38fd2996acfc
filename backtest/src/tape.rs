//! The event tape: market events as Parquet rows.
//!
//! | column | type | set for |
//! |---|---|---|
//! | `ts_exchange_ns`, `ts_recv_ns` | uint64 | all (0 = the venue sent no time) |
//! | `instrument` | uint32 | all |
//! | `kind` | utf8: `trade`, `quote`, `delta` | all |
//! | `side` | utf8: `buy`, `sell` | trade (aggressor), delta |
//! | `action` | utf8: `add`, `update`, `delete`, `clear` | delta |
//! | `flags` | uint8 (1 snapshot, 2 last of message) | delta |
//! | `price`, `qty` | decimal128(38, 9) | trade, delta |
//! | `id` | uint64 | trade id, delta sequence |
//! | `bid_price`, `bid_qty`, `ask_price`, `ask_qty` | decimal128(38, 9) | quote |
//!
//! Values are exact: decimals carry the fixed-point units unchanged.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use argus_core::{
    BookAction, BookDelta, DeltaFlags, InstrumentId, Liquidation, MarkPrice, MarketEvent, MarketEventKind, Price, Qty,
    Quote, Side, Trade, UnixNanos,
};
use arrow::array::{
    Array, ArrayRef, Decimal128Array, Decimal128Builder, RecordBatch, StringArray, StringBuilder, UInt32Array,
    UInt32Builder, UInt64Array, UInt64Builder, UInt8Array, UInt8Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::BacktestError;

const PRECISION: u8 = 38;
const SCALE: i8 = 9;
/// Rows buffered before a record batch is written.
pub const BATCH_ROWS: usize = 65_536;

/// The tape's Arrow schema.
pub fn schema() -> SchemaRef {
    let dec = || DataType::Decimal128(PRECISION, SCALE);
    Arc::new(Schema::new(vec![
        Field::new("ts_exchange_ns", DataType::UInt64, false),
        Field::new("ts_recv_ns", DataType::UInt64, false),
        Field::new("instrument", DataType::UInt32, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("side", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, true),
        Field::new("flags", DataType::UInt8, true),
        Field::new("price", dec(), true),
        Field::new("qty", dec(), true),
        Field::new("id", DataType::UInt64, true),
        Field::new("bid_price", dec(), true),
        Field::new("bid_qty", dec(), true),
        Field::new("ask_price", dec(), true),
        Field::new("ask_qty", dec(), true),
        // Futures marks: `price` is the mark, these the index, funding rate and next funding.
        Field::new("index_price", dec(), true),
        Field::new("funding_rate", dec(), true),
        Field::new("next_funding_ns", DataType::UInt64, true),
    ]))
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn action_str(a: BookAction) -> &'static str {
    match a {
        BookAction::Add => "add",
        BookAction::Update => "update",
        BookAction::Delete => "delete",
        BookAction::Clear => "clear",
    }
}

fn decimal() -> Decimal128Builder {
    Decimal128Builder::new().with_data_type(DataType::Decimal128(PRECISION, SCALE))
}

struct Builders {
    ts_exchange: UInt64Builder,
    ts_recv: UInt64Builder,
    instrument: UInt32Builder,
    kind: StringBuilder,
    side: StringBuilder,
    action: StringBuilder,
    flags: UInt8Builder,
    price: Decimal128Builder,
    qty: Decimal128Builder,
    id: UInt64Builder,
    bid_price: Decimal128Builder,
    bid_qty: Decimal128Builder,
    ask_price: Decimal128Builder,
    ask_qty: Decimal128Builder,
    index_price: Decimal128Builder,
    funding_rate: Decimal128Builder,
    next_funding: UInt64Builder,
    rows: usize,
}

impl Builders {
    fn new() -> Self {
        Self {
            ts_exchange: UInt64Builder::new(),
            ts_recv: UInt64Builder::new(),
            instrument: UInt32Builder::new(),
            kind: StringBuilder::new(),
            side: StringBuilder::new(),
            action: StringBuilder::new(),
            flags: UInt8Builder::new(),
            price: decimal(),
            qty: decimal(),
            id: UInt64Builder::new(),
            bid_price: decimal(),
            bid_qty: decimal(),
            ask_price: decimal(),
            ask_qty: decimal(),
            index_price: decimal(),
            funding_rate: decimal(),
            next_funding: UInt64Builder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, ev: &MarketEvent) {
        self.ts_exchange.append_value(ev.ts_exchange.0);
        self.ts_recv.append_value(ev.ts_recv.0);
        self.instrument.append_value(ev.instrument.0);
        let quote_nulls = |b: &mut Self| {
            b.bid_price.append_null();
            b.bid_qty.append_null();
            b.ask_price.append_null();
            b.ask_qty.append_null();
        };
        if let MarketEventKind::Mark(m) = ev.kind {
            self.index_price.append_value(i128::from(m.index.units()));
            self.funding_rate.append_value(i128::from(m.funding_rate.units()));
            self.next_funding.append_value(m.next_funding.0);
        } else {
            self.index_price.append_null();
            self.funding_rate.append_null();
            self.next_funding.append_null();
        }
        match ev.kind {
            MarketEventKind::Mark(m) => {
                self.kind.append_value("mark");
                self.side.append_null();
                self.action.append_null();
                self.flags.append_null();
                self.price.append_value(i128::from(m.mark.units()));
                self.qty.append_null();
                self.id.append_null();
                quote_nulls(self);
            }
            MarketEventKind::Liquidation(l) => {
                self.kind.append_value("liquidation");
                self.side.append_value(side_str(l.side));
                self.action.append_null();
                self.flags.append_null();
                self.price.append_value(i128::from(l.price.units()));
                self.qty.append_value(i128::from(l.qty.units()));
                self.id.append_null();
                quote_nulls(self);
            }
            MarketEventKind::Trade(t) => {
                self.kind.append_value("trade");
                self.side.append_value(side_str(t.aggressor));
                self.action.append_null();
                self.flags.append_null();
                self.price.append_value(i128::from(t.price.units()));
                self.qty.append_value(i128::from(t.qty.units()));
                self.id.append_value(t.trade_id);
                quote_nulls(self);
            }
            MarketEventKind::Delta(d) => {
                self.kind.append_value("delta");
                self.side.append_value(side_str(d.side));
                self.action.append_value(action_str(d.action));
                self.flags.append_value(d.flags.0);
                self.price.append_value(i128::from(d.price.units()));
                self.qty.append_value(i128::from(d.qty.units()));
                self.id.append_value(d.sequence);
                quote_nulls(self);
            }
            MarketEventKind::Quote(q) => {
                self.kind.append_value("quote");
                self.side.append_null();
                self.action.append_null();
                self.flags.append_null();
                self.price.append_null();
                self.qty.append_null();
                self.id.append_null();
                self.bid_price.append_value(i128::from(q.bid_price.units()));
                self.bid_qty.append_value(i128::from(q.bid_qty.units()));
                self.ask_price.append_value(i128::from(q.ask_price.units()));
                self.ask_qty.append_value(i128::from(q.ask_qty.units()));
            }
        }
        self.rows += 1;
    }

    fn finish(&mut self) -> Result<RecordBatch, BacktestError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ts_exchange.finish()),
            Arc::new(self.ts_recv.finish()),
            Arc::new(self.instrument.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.side.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.price.finish()),
            Arc::new(self.qty.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.bid_price.finish()),
            Arc::new(self.bid_qty.finish()),
            Arc::new(self.ask_price.finish()),
            Arc::new(self.ask_qty.finish()),
            Arc::new(self.index_price.finish()),
            Arc::new(self.funding_rate.finish()),
            Arc::new(self.next_funding.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(schema(), cols)?)
    }
}

/// Writes events to a Parquet tape, a record batch every [`BATCH_ROWS`] events.
pub struct TapeWriter {
    writer: ArrowWriter<File>,
    builders: Builders,
    rows: u64,
}

impl std::fmt::Debug for TapeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapeWriter").field("rows", &self.rows).finish()
    }
}

impl TapeWriter {
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> Result<Self, BacktestError> {
        let file =
            File::create(path).map_err(|source| BacktestError::Io { path: path.display().to_string(), source })?;
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        Ok(Self { writer: ArrowWriter::try_new(file, schema(), Some(props))?, builders: Builders::new(), rows: 0 })
    }

    /// Buffers one event; writes a batch when the buffer is full.
    ///
    /// # Errors
    /// When a full batch cannot be written.
    pub fn write(&mut self, ev: &MarketEvent) -> Result<(), BacktestError> {
        self.builders.push(ev);
        self.rows += 1;
        if self.builders.rows >= BATCH_ROWS {
            let batch = self.builders.finish()?;
            self.writer.write(&batch)?;
        }
        Ok(())
    }

    /// Rows accepted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes what is buffered and the Parquet footer; returns the row count.
    ///
    /// # Errors
    /// When the last batch or the footer cannot be written: the tape is then incomplete.
    pub fn finish(mut self) -> Result<u64, BacktestError> {
        if self.builders.rows > 0 {
            let batch = self.builders.finish()?;
            self.writer.write(&batch)?;
        }
        self.writer.close()?;
        Ok(self.rows)
    }
}

/// Reads a tape back as events, in order.
pub struct TapeReader {
    batches: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    next: usize,
    row: u64,
}

impl std::fmt::Debug for TapeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapeReader").field("row", &self.row).finish()
    }
}

impl TapeReader {
    /// # Errors
    /// Missing file, not Parquet, or a schema other than [`schema`].
    pub fn open(path: &Path) -> Result<Self, BacktestError> {
        let file = File::open(path).map_err(|source| BacktestError::Io { path: path.display().to_string(), source })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        let want = schema();
        let got = builder.schema();
        for f in want.fields() {
            match got.field_with_name(f.name()) {
                Ok(g) if g.data_type() == f.data_type() => {}
                Ok(g) => {
                    return Err(BacktestError::Schema(format!(
                        "column `{}` is {}, expected {}",
                        f.name(),
                        g.data_type(),
                        f.data_type()
                    )))
                }
                Err(_) => return Err(BacktestError::Schema(format!("missing column `{}`", f.name()))),
            }
        }
        Ok(Self { batches: builder.with_batch_size(8192).build()?, batch: None, next: 0, row: 0 })
    }

    fn decode(&self, b: &RecordBatch, i: usize) -> Result<MarketEvent, BacktestError> {
        let bad = |reason: &str| BacktestError::BadRow { row: self.row, reason: reason.to_owned() };
        let col = |name: &str| b.column_by_name(name).ok_or_else(|| bad(&format!("no column {name}")));
        let u64s = |name: &str| -> Result<&UInt64Array, BacktestError> {
            col(name)?.as_any().downcast_ref::<UInt64Array>().ok_or_else(|| bad(name))
        };
        let strs = |name: &str| -> Result<&StringArray, BacktestError> {
            col(name)?.as_any().downcast_ref::<StringArray>().ok_or_else(|| bad(name))
        };
        let dec = |name: &str| -> Result<i64, BacktestError> {
            let a = col(name)?.as_any().downcast_ref::<Decimal128Array>().ok_or_else(|| bad(name))?;
            if a.is_null(i) {
                return Err(bad(&format!("{name} is null")));
            }
            i64::try_from(a.value(i)).map_err(|_| bad(&format!("{name} out of range")))
        };
        let side = |s: &StringArray| -> Result<Side, BacktestError> {
            match s.is_valid(i).then(|| s.value(i)) {
                Some("buy") => Ok(Side::Buy),
                Some("sell") => Ok(Side::Sell),
                _ => Err(bad("side")),
            }
        };
        let instrument = col("instrument")?.as_any().downcast_ref::<UInt32Array>().ok_or_else(|| bad("instrument"))?;
        let ids = u64s("id")?;
        let id = || if ids.is_valid(i) { Ok(ids.value(i)) } else { Err(bad("id is null")) };
        let kind = match strs("kind")?.value(i) {
            "trade" => MarketEventKind::Trade(Trade {
                price: Price::from_units(dec("price")?),
                qty: Qty::from_units(dec("qty")?),
                trade_id: id()?,
                aggressor: side(strs("side")?)?,
            }),
            "quote" => MarketEventKind::Quote(Quote {
                bid_price: Price::from_units(dec("bid_price")?),
                bid_qty: Qty::from_units(dec("bid_qty")?),
                ask_price: Price::from_units(dec("ask_price")?),
                ask_qty: Qty::from_units(dec("ask_qty")?),
            }),
            "delta" => {
                let flags = col("flags")?.as_any().downcast_ref::<UInt8Array>().ok_or_else(|| bad("flags"))?;
                let actions = strs("action")?;
                let action = match actions.is_valid(i).then(|| actions.value(i)) {
                    Some("add") => BookAction::Add,
                    Some("update") => BookAction::Update,
                    Some("delete") => BookAction::Delete,
                    Some("clear") => BookAction::Clear,
                    _ => return Err(bad("action")),
                };
                MarketEventKind::Delta(BookDelta {
                    action,
                    side: side(strs("side")?)?,
                    flags: DeltaFlags(if flags.is_valid(i) { flags.value(i) } else { 0 }),
                    price: Price::from_units(dec("price")?),
                    qty: Qty::from_units(dec("qty")?),
                    sequence: id()?,
                })
            }
            "mark" => {
                let next = u64s("next_funding_ns")?;
                MarketEventKind::Mark(MarkPrice {
                    mark: Price::from_units(dec("price")?),
                    index: Price::from_units(dec("index_price")?),
                    funding_rate: Price::from_units(dec("funding_rate")?),
                    next_funding: UnixNanos(if next.is_valid(i) { next.value(i) } else { 0 }),
                })
            }
            "liquidation" => MarketEventKind::Liquidation(Liquidation {
                side: side(strs("side")?)?,
                price: Price::from_units(dec("price")?),
                qty: Qty::from_units(dec("qty")?),
            }),
            other => return Err(bad(&format!("unknown kind `{other}`"))),
        };
        Ok(MarketEvent {
            ts_exchange: UnixNanos(u64s("ts_exchange_ns")?.value(i)),
            ts_recv: UnixNanos(u64s("ts_recv_ns")?.value(i)),
            instrument: InstrumentId(instrument.value(i)),
            decode_ns: 0,
            kind,
        })
    }
}

impl Iterator for TapeReader {
    type Item = Result<MarketEvent, BacktestError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = &self.batch {
                if self.next < b.num_rows() {
                    let r = self.decode(b, self.next);
                    self.next += 1;
                    self.row += 1;
                    return Some(r);
                }
            }
            match self.batches.next()? {
                Ok(b) => {
                    self.batch = Some(b);
                    self.next = 0;
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<MarketEvent> {
        let base = |kind| MarketEvent {
            ts_exchange: UnixNanos(5),
            ts_recv: UnixNanos(7),
            instrument: InstrumentId(2),
            decode_ns: 0,
            kind,
        };
        let mut v = Vec::new();
        for i in 0..(BATCH_ROWS as i64 + 10) {
            v.push(base(MarketEventKind::Delta(BookDelta {
                action: if i == 0 { BookAction::Clear } else { BookAction::Update },
                side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
                flags: DeltaFlags((i % 4) as u8),
                price: Price::from_units(61_837_630_000_000 + i),
                qty: Qty::from_units(i),
                sequence: i as u64,
            })));
        }
        v.push(base(MarketEventKind::Mark(MarkPrice {
            mark: Price::from_units(61_800_000_000_000),
            index: Price::from_units(61_790_000_000_000),
            funding_rate: Price::from_units(-37_500),
            next_funding: UnixNanos(1_723_161_600_000_000_000),
        })));
        v.push(base(MarketEventKind::Liquidation(Liquidation {
            side: Side::Sell,
            price: Price::from_units(61_000_000_000_000),
            qty: Qty::from_units(2_500_000_000),
        })));
        v.push(base(MarketEventKind::Trade(Trade {
            price: Price::from_units(-1),
            qty: Qty::from_units(i64::MAX),
            trade_id: u64::MAX,
            aggressor: Side::Sell,
        })));
        v.push(base(MarketEventKind::Quote(Quote {
            bid_price: Price::from_units(1),
            bid_qty: Qty::from_units(2),
            ask_price: Price::from_units(3),
            ask_qty: Qty::from_units(4),
        })));
        v
    }

    #[test]
    fn round_trips_every_kind_exactly_across_batches() {
        let dir = std::env::temp_dir().join(format!("argus-tape-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.parquet");
        let want = events();
        let mut w = TapeWriter::create(&path).unwrap();
        for e in &want {
            w.write(e).unwrap();
        }
        assert_eq!(w.finish().unwrap(), want.len() as u64);
        let got: Vec<MarketEvent> = TapeReader::open(&path).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn not_a_tape_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("argus-tape-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.parquet");
        std::fs::write(&path, b"definitely not parquet").unwrap();
        assert!(TapeReader::open(&path).is_err());
        assert!(matches!(TapeReader::open(&dir.join("missing.parquet")), Err(BacktestError::Io { .. })));
    }
}
