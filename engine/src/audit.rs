//! The risk audit trail: every decision of the risk chain (the intent, the outcome and reason,
//! and the state it was decided in) appended to a file on its own thread, as JSON lines
//! (`.jsonl`) or Parquet (`.parquet`).
//!
//! The hot thread never waits on the audit: records go through a bounded queue with `try_send`;
//! a full queue is counted (`argus_audit_dropped_total`, alert `ArgusAuditDropping`) and reported,
//! never silent.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use argus_core::{OrderIntent, Reject, Side};
use argus_risk::RiskState;
use arrow::array::{ArrayRef, Float32Builder, Int64Builder, RecordBatch, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use parquet::arrow::ArrowWriter;
use serde::Serialize;
use tracing::error;

/// One risk decision.
#[derive(Debug, Clone, Copy)]
pub struct AuditRecord {
    /// Sequence number of the intent in this run.
    pub seq: u64,
    pub intent: OrderIntent,
    /// `None` when approved.
    pub reject: Option<Reject>,
    pub state: RiskState,
    /// Position before the order, in 1e-9 base units.
    pub position: i64,
    /// Mid price in 1e-9 units (0 without a two-sided book).
    pub mid: i64,
    pub signal: f32,
    pub anomaly: f32,
}

/// Outcome of the audit trail of a run.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub path: String,
    pub records: u64,
    /// Records not written because the queue was full or the file failed.
    pub dropped: u64,
    pub error: Option<String>,
}

/// Handle held by the hot thread.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: Sender<AuditRecord>,
    dropped: Arc<AtomicU64>,
}

impl AuditSink {
    /// Queues a record without waiting; a full queue counts a drop.
    #[inline]
    pub fn record(&self, r: AuditRecord) {
        match self.tx.try_send(r) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread.
#[derive(Debug)]
pub struct Audit {
    sink: AuditSink,
    handle: JoinHandle<(u64, u64, Option<String>)>,
    path: PathBuf,
}

/// Queue capacity between the hot thread and the audit writer.
pub const AUDIT_QUEUE: usize = 1 << 14;

impl Audit {
    /// Creates the file (`.parquet` or JSON lines) and starts the writer.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn start(path: &Path) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating audit log {}", path.display()))?;
        let parquet = path.extension().is_some_and(|e| e == "parquet");
        let (tx, rx) = crossbeam_channel::bounded(AUDIT_QUEUE);
        let owned = path.to_path_buf();
        let handle = std::thread::Builder::new().name("argus-audit".into()).spawn(move || {
            let r = if parquet { write_parquet(file, &rx) } else { write_jsonl(file, &rx) };
            match r {
                Ok(n) => (n, 0, None),
                Err((n, e)) => {
                    error!(path = %owned.display(), error = %e, "audit log failed");
                    // Keep draining so the hot thread never sees a full queue because of us;
                    // everything after the failure counts as dropped.
                    let rest = rx.iter().count() as u64;
                    (n, rest, Some(format!("{e:#}")))
                }
            }
        })?;
        Ok(Self { sink: AuditSink { tx, dropped: Arc::new(AtomicU64::new(0)) }, handle, path: path.to_path_buf() })
    }

    pub fn sink(&self) -> AuditSink {
        self.sink.clone()
    }

    /// Flushes and closes; call after the hot thread has finished.
    pub fn finish(self) -> AuditReport {
        let dropped = self.sink.dropped();
        drop(self.sink);
        let (records, lost, error) = self.handle.join().unwrap_or((0, 0, Some("audit thread panicked".into())));
        AuditReport { path: self.path.display().to_string(), records, dropped: dropped + lost, error }
    }
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn outcome(r: &AuditRecord) -> (&'static str, &'static str) {
    match r.reject {
        None => ("approved", ""),
        Some(reason) => ("rejected", reason.as_str()),
    }
}

type WriteResult = std::result::Result<u64, (u64, anyhow::Error)>;

fn write_jsonl(file: File, rx: &Receiver<AuditRecord>) -> WriteResult {
    let mut w = BufWriter::new(file);
    let mut n = 0;
    for r in rx.iter() {
        let (out, reason) = outcome(&r);
        let line = serde_json::json!({
            "seq": r.seq,
            "ts_ns": r.intent.ts.0,
            "instrument": r.intent.instrument.0,
            "side": side(r.intent.side),
            "qty": r.intent.qty.to_string(),
            "limit": r.intent.limit.to_string(),
            "outcome": out,
            "reason": reason,
            "risk_state": r.state.as_str(),
            "position": argus_core::Qty::from_units(r.position).to_string(),
            "mid": argus_core::Price::from_units(r.mid).to_string(),
            "signal": r.signal,
            "anomaly": r.anomaly,
        });
        writeln!(w, "{line}").map_err(|e| (n, e.into()))?;
        n += 1;
    }
    w.flush().map_err(|e| (n, e.into()))?;
    Ok(n)
}

fn write_parquet(file: File, rx: &Receiver<AuditRecord>) -> WriteResult {
    let schema = Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("ts_ns", DataType::UInt64, false),
        Field::new("side", DataType::Utf8, false),
        Field::new("qty_nano", DataType::Int64, false),
        Field::new("limit_nano", DataType::Int64, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("risk_state", DataType::Utf8, false),
        Field::new("position_nano", DataType::Int64, false),
        Field::new("mid_nano", DataType::Int64, false),
        Field::new("signal", DataType::Float32, false),
        Field::new("anomaly", DataType::Float32, false),
    ]));
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), None).map_err(|e| (0, e.into()))?;
    let mut n = 0_u64;
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(4096);
    let flush = |batch: &mut Vec<AuditRecord>, writer: &mut ArrowWriter<File>| -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (mut seq, mut ts, mut sd, mut qty, mut lim) = (
            UInt64Builder::new(),
            UInt64Builder::new(),
            StringBuilder::new(),
            Int64Builder::new(),
            Int64Builder::new(),
        );
        let (mut out, mut why, mut st) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
        let (mut pos, mut mid, mut sig, mut anom) =
            (Int64Builder::new(), Int64Builder::new(), Float32Builder::new(), Float32Builder::new());
        for r in batch.iter() {
            let (o, reason) = outcome(r);
            seq.append_value(r.seq);
            ts.append_value(r.intent.ts.0);
            sd.append_value(side(r.intent.side));
            qty.append_value(r.intent.qty.units());
            lim.append_value(r.intent.limit.units());
            out.append_value(o);
            why.append_value(reason);
            st.append_value(r.state.as_str());
            pos.append_value(r.position);
            mid.append_value(r.mid);
            sig.append_value(r.signal);
            anom.append_value(r.anomaly);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(seq.finish()),
            Arc::new(ts.finish()),
            Arc::new(sd.finish()),
            Arc::new(qty.finish()),
            Arc::new(lim.finish()),
            Arc::new(out.finish()),
            Arc::new(why.finish()),
            Arc::new(st.finish()),
            Arc::new(pos.finish()),
            Arc::new(mid.finish()),
            Arc::new(sig.finish()),
            Arc::new(anom.finish()),
        ];
        writer.write(&RecordBatch::try_new(Arc::clone(&schema), cols)?)?;
        batch.clear();
        Ok(())
    };
    for r in rx.iter() {
        batch.push(r);
        n += 1;
        if batch.len() == batch.capacity() {
            flush(&mut batch, &mut writer).map_err(|e| (n, e))?;
        }
    }
    flush(&mut batch, &mut writer).map_err(|e| (n, e))?;
    writer.close().map_err(|e| (n, e.into()))?;
    Ok(n)
}
