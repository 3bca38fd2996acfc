//! The risk audit trail: every decision of the risk chain (the intent, the outcome and reason,
//! and the state it was decided in) appended to a file on its own thread, as JSON lines
//! (`.jsonl`) or Parquet (`.parquet`).
//!
//! Rotation: after `rotate_records` records the part is closed (a Parquet part gets its footer
//! and is complete from then on) and the next opens beside it: `audit.parquet`,
//! `audit.1.parquet`, `audit.2.parquet`, ... The report lists every part.
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
    /// How many of the chain's checks ran ([`argus_risk::CHECKS`] order): all of them when
    /// approved, else up to and including the one that rejected.
    pub checks_run: u8,
}

/// Outcome of the audit trail of a run.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub path: String,
    /// Every part written, in order (the first is `path`).
    pub files: Vec<String>,
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
    handle: JoinHandle<Outcome>,
    path: PathBuf,
}

/// What the writer thread did.
type Outcome = (Vec<PathBuf>, u64, u64, Option<String>);

/// Where the audit goes and how often it rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTarget {
    pub path: PathBuf,
    /// Records per part.
    pub rotate_records: u64,
}

/// Records per audit part unless told otherwise.
pub const DEFAULT_ROTATE_RECORDS: u64 = 1_000_000;

/// Queue capacity between the hot thread and the audit writer.
pub const AUDIT_QUEUE: usize = 1 << 14;

impl Audit {
    /// Creates the first part (`.parquet` or JSON lines) and starts the writer, which rotates
    /// to a new part every `rotate_records` records.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn start(target: &AuditTarget) -> Result<Self> {
        let (path, rotate_records) = (target.path.as_path(), target.rotate_records);
        let file = File::create(path).with_context(|| format!("creating audit log {}", path.display()))?;
        let parquet = path.extension().is_some_and(|e| e == "parquet");
        let (tx, rx) = crossbeam_channel::bounded(AUDIT_QUEUE);
        let owned = path.to_path_buf();
        let rotate = rotate_records.max(1);
        let handle = std::thread::Builder::new().name("argus-audit".into()).spawn(move || {
            let mut files = vec![owned.clone()];
            let mut written = 0;
            let mut file = Some(file);
            let mut first = None;
            loop {
                let part = match file.take() {
                    Some(f) => Ok(f),
                    None => {
                        let p = part_path(&owned, files.len());
                        let f = File::create(&p).with_context(|| format!("creating audit log {}", p.display()));
                        files.push(p);
                        f
                    }
                };
                let r = part.map_err(|e| (0, e)).and_then(|f| {
                    if parquet {
                        write_parquet(f, first.take(), &rx, rotate)
                    } else {
                        write_jsonl(f, first.take(), &rx, rotate)
                    }
                });
                match r {
                    Ok(n) => {
                        written += n;
                        // A full part: the next record, if any, opens the next one.
                        match rx.recv() {
                            Ok(next) if n == rotate => first = Some(next),
                            Ok(_) | Err(_) => return (files, written, 0, None),
                        }
                    }
                    Err((n, e)) => {
                        error!(path = %owned.display(), error = %e, "audit log failed");
                        // Keep draining so the hot thread never sees a full queue because of us;
                        // everything after the failure counts as dropped.
                        let rest = rx.iter().count() as u64;
                        return (files, written + n, rest, Some(format!("{e:#}")));
                    }
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
        let (files, records, lost, error) =
            self.handle.join().unwrap_or((Vec::new(), 0, 0, Some("audit thread panicked".into())));
        AuditReport {
            path: self.path.display().to_string(),
            files: files.iter().map(|p| p.display().to_string()).collect(),
            records,
            dropped: dropped + lost,
            error,
        }
    }
}

/// Part `k` of an audit log: `audit.parquet` -> `audit.k.parquet` (`k` > 0).
fn part_path(path: &Path, k: usize) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{k}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{k}"),
    };
    path.with_file_name(name)
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

/// Up to `limit` records: `first`, then from `rx` until it closes.
fn records<'a>(
    first: Option<AuditRecord>,
    rx: &'a Receiver<AuditRecord>,
    limit: u64,
) -> impl Iterator<Item = AuditRecord> + 'a {
    first.into_iter().chain(rx.iter()).take(usize::try_from(limit).unwrap_or(usize::MAX))
}

fn check_name(r: &AuditRecord) -> &'static str {
    usize::from(r.checks_run).checked_sub(1).and_then(|i| argus_risk::CHECKS.get(i)).copied().unwrap_or("")
}

fn write_jsonl(file: File, first: Option<AuditRecord>, rx: &Receiver<AuditRecord>, limit: u64) -> WriteResult {
    let mut w = BufWriter::new(file);
    let mut n = 0;
    for r in records(first, rx, limit) {
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
            "strategy": r.intent.strategy.0,
            "checks_run": r.checks_run,
            "last_check": check_name(&r),
        });
        writeln!(w, "{line}").map_err(|e| (n, e.into()))?;
        n += 1;
    }
    w.flush().map_err(|e| (n, e.into()))?;
    Ok(n)
}

fn write_parquet(file: File, first: Option<AuditRecord>, rx: &Receiver<AuditRecord>, limit: u64) -> WriteResult {
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
        Field::new("strategy", DataType::UInt64, false),
        Field::new("checks_run", DataType::UInt64, false),
        Field::new("last_check", DataType::Utf8, false),
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
        let (mut strat, mut ran, mut last) = (UInt64Builder::new(), UInt64Builder::new(), StringBuilder::new());
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
            strat.append_value(u64::from(r.intent.strategy.0));
            ran.append_value(u64::from(r.checks_run));
            last.append_value(check_name(r));
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
            Arc::new(strat.finish()),
            Arc::new(ran.finish()),
            Arc::new(last.finish()),
        ];
        writer.write(&RecordBatch::try_new(Arc::clone(&schema), cols)?)?;
        batch.clear();
        Ok(())
    };
    for r in records(first, rx, limit) {
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
