//! Per-message cost of the feed paths (`argus bench feeds`), each frame timed on its own so the
//! report has percentiles, not just a mean. Binance: every frame of a recording decoded by the
//! live normalizer, depth diffs sequenced by the live sync and applied to the exact book. The
//! other venues (`--venue`): every websocket frame of a capture through the connection's
//! normalizer and book sync (`LiveChecker`, checksums verified), as the live feed runs it.

use std::path::Path;
use std::time::Instant;

use argus_core::{InstrumentId, MarketEvent, MarketEventKind, OrderBook, UnixNanos};
use argus_feeds::binance::{parse_snapshot, BinanceNormalizer, Decoded, DepthSync};
use argus_feeds::check::{CheckVenue, LiveChecker};
use argus_feeds::rawlog::{MergedInputs, RawKind};
use argus_feeds::recording::{RecordedFrame, RecordingReader};
use hdrhistogram::Histogram;

/// Percentiles of one kind of frame, in nanoseconds per frame.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FrameCost {
    pub frames: u64,
    /// Mean book levels per frame (depth diffs only).
    pub mean_levels: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
}

impl FrameCost {
    /// One line of the text report: `what`, the frame count, percentiles, and the mean of
    /// `per_frame` (e.g. "levels") where the kind has any.
    pub fn line(&self, what: &str, per_frame: &str) -> String {
        let per = if self.mean_levels > 0.0 {
            format!(" ({:.1} {per_frame}/frame)", self.mean_levels)
        } else {
            String::new()
        };
        format!(
            "{what:<12} {:>8} frames: p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns, mean {:.0} ns{per}",
            self.frames, self.p50_ns, self.p90_ns, self.p99_ns, self.p999_ns, self.mean_ns
        )
    }
}

/// What `argus bench feeds` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedBenchReport {
    pub venue: &'static str,
    pub input: String,
    pub passes: usize,
    /// `depthUpdate` decoded, sequenced and applied to the book.
    pub depth: FrameCost,
    /// `trade` decoded to its event.
    pub trade: FrameCost,
    /// `bookTicker` decoded to its quote.
    pub book_ticker: FrameCost,
    /// Cost of the two clock reads around each frame (included in every figure above).
    pub timer_overhead_ns: u64,
    /// Frames per second over all passes, timing included.
    pub frames_per_sec: f64,
    /// Best bid and ask after the last pass, as `[price, qty]` strings: the work was real.
    pub best_bid: Option<[String; 2]>,
    pub best_ask: Option<[String; 2]>,
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum FeedBenchError {
    #[error(transparent)]
    Feed(#[from] argus_feeds::FeedError),
    #[error(transparent)]
    Histogram(#[from] hdrhistogram::CreationError),
    #[error("frame on line {line} did not decode: {source}")]
    Frame { line: u64, source: argus_feeds::FeedError },
    #[error("the recording has no depth snapshot, so no book can be synced")]
    NoSnapshot,
    #[error("the capture has no websocket frames")]
    NoFrames,
    #[error(
        "the capture did not check clean ({errors} errors), so its timings would not be of the real path: {sample}"
    )]
    Unclean { errors: u64, sample: String },
}

/// What `argus bench feeds --venue V` reports for a venue read through its `LiveChecker`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VenueBenchReport {
    pub venue: &'static str,
    pub inputs: Vec<String>,
    pub passes: usize,
    /// Frames that changed a book (snapshots and updates, checksum verified where sent);
    /// `mean_levels` is the book events per frame.
    pub book: FrameCost,
    /// Frames with trades and nothing for a book.
    pub trade: FrameCost,
    /// Frames with quotes only.
    pub quote: FrameCost,
    /// Acks, heartbeats and channels the checker ignores.
    pub other: FrameCost,
    pub timer_overhead_ns: u64,
    pub frames_per_sec: f64,
}

/// Times every websocket frame of a capture through `venue`'s live normalizer: one untimed
/// pass first (books and buffers set up, as on a connection that has been running), then
/// `passes` timed ones. Every capture opens its books with snapshots, so passes repeat cleanly.
///
/// # Errors
/// An unreadable capture, one without frames, or one that does not check clean.
pub fn run_venue(
    venue: CheckVenue,
    inputs: &[std::path::PathBuf],
    passes: usize,
) -> Result<VenueBenchReport, FeedBenchError> {
    let frames: Vec<(u64, String)> =
        MergedInputs::open(inputs)?.filter(|r| matches!(r.kind, RawKind::Ws)).map(|r| (r.ts_ns, r.body)).collect();
    if frames.is_empty() {
        return Err(FeedBenchError::NoFrames);
    }
    let mut live = LiveChecker::new(venue);
    let (mut book, mut trade, mut quote, mut other) = (Costs::new()?, Costs::new()?, Costs::new()?, Costs::new()?);
    for (ts, text) in &frames {
        live.on_frame(text, UnixNanos(*ts), |_, _| {});
    }
    let started = Instant::now();
    for _ in 0..passes.max(1) {
        for (ts, text) in &frames {
            let (mut deltas, mut trades, mut quotes) = (0_u64, 0_u64, 0_u64);
            let t0 = Instant::now();
            live.on_frame(text, UnixNanos(*ts), |_, e| match e.kind {
                MarketEventKind::Delta(_) => deltas += 1,
                MarketEventKind::Trade(_) => trades += 1,
                _ => quotes += 1,
            });
            let ns = t0.elapsed().as_nanos() as u64;
            let costs = if deltas > 0 {
                book.levels += deltas;
                &mut book
            } else if trades > 0 {
                &mut trade
            } else if quotes > 0 {
                &mut quote
            } else {
                &mut other
            };
            costs.record(ns);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let r = live.report();
    if r.errors > 0 {
        return Err(FeedBenchError::Unclean {
            errors: r.errors,
            sample: r.error_samples.first().cloned().unwrap_or_default(),
        });
    }
    Ok(VenueBenchReport {
        venue: venue.as_str(),
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        passes: passes.max(1),
        book: book.summary(),
        trade: trade.summary(),
        quote: quote.summary(),
        other: other.summary(),
        timer_overhead_ns: timer_overhead(),
        frames_per_sec: (frames.len() * passes.max(1)) as f64 / elapsed.max(1e-9),
    })
}

struct Costs {
    hist: Histogram<u64>,
    levels: u64,
}

impl Costs {
    fn new() -> Result<Self, hdrhistogram::CreationError> {
        Ok(Self { hist: Histogram::new_with_bounds(1, 60_000_000_000, 3)?, levels: 0 })
    }

    fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
    }

    fn summary(&self) -> FrameCost {
        let h = &self.hist;
        let n = h.len();
        FrameCost {
            frames: n,
            mean_levels: if n == 0 { 0.0 } else { self.levels as f64 / n as f64 },
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
        }
    }
}

/// Runs every frame of a Binance spot/USD-M recording of `symbol` `passes` times.
///
/// # Errors
/// An unreadable recording, a frame that does not decode, or no snapshot in the recording.
pub fn run(path: &Path, symbol: &str, passes: usize) -> Result<FeedBenchReport, FeedBenchError> {
    let frames: Vec<RecordedFrame> = RecordingReader::read_all(path)?;
    let snapshot_frame = frames.iter().find(|f| f.is_snapshot()).ok_or(FeedBenchError::NoSnapshot)?;
    let snapshot = parse_snapshot(snapshot_frame.frame.as_bytes())?;
    let norm = BinanceNormalizer::new([(symbol, InstrumentId(0))]);
    let (mut depth, mut trade, mut ticker) = (Costs::new()?, Costs::new()?, Costs::new()?);
    let (mut decoded, mut synced): (Vec<MarketEvent>, Vec<MarketEvent>) =
        (Vec::with_capacity(8192), Vec::with_capacity(16384));
    let mut book = OrderBook::new(5000);
    let started = Instant::now();
    let mut total = 0_u64;
    for _ in 0..passes.max(1) {
        book = OrderBook::new(5000);
        let mut sync = DepthSync::new(InstrumentId(0));
        for f in &frames {
            if f.is_snapshot() {
                // Snapshots come from REST, not the websocket: applied, not timed.
                synced.clear();
                sync.on_snapshot(&snapshot, UnixNanos(f.ts_recv_ns), &mut synced)?;
                apply(&mut book, &synced);
                continue;
            }
            let t0 = Instant::now();
            decoded.clear();
            let kind = norm
                .normalize_str(&f.frame, UnixNanos(f.ts_recv_ns), &mut decoded)
                .map_err(|source| FeedBenchError::Frame { line: f.line, source })?;
            if let Decoded::Depth { first_update_id, final_update_id, prev_final_update_id } = kind {
                synced.clear();
                sync.on_diff(first_update_id, final_update_id, prev_final_update_id, &decoded, &mut synced);
                apply(&mut book, &synced);
            }
            let ns = t0.elapsed().as_nanos() as u64;
            total += 1;
            match kind {
                Decoded::Depth { .. } => {
                    depth.record(ns);
                    depth.levels += decoded.len() as u64;
                }
                Decoded::Trade => trade.record(ns),
                Decoded::BookTicker { .. } => ticker.record(ns),
                _ => {}
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let level = |l: Option<argus_core::Level>| {
        l.map(|l| [l.price.display_with(8).to_string(), l.qty.display_with(8).to_string()])
    };
    Ok(FeedBenchReport {
        venue: "binance",
        input: path.display().to_string(),
        passes: passes.max(1),
        depth: depth.summary(),
        trade: trade.summary(),
        book_ticker: ticker.summary(),
        timer_overhead_ns: timer_overhead(),
        frames_per_sec: total as f64 / elapsed.max(1e-9),
        best_bid: level(book.best_bid()),
        best_ask: level(book.best_ask()),
    })
}

fn apply(book: &mut OrderBook, events: &[MarketEvent]) {
    for ev in events {
        if let MarketEventKind::Delta(d) = ev.kind {
            book.apply(&d);
        }
    }
}

/// Median cost of an empty timed region.
fn timer_overhead() -> u64 {
    let mut samples: Vec<u64> = (0..10_001)
        .map(|_| {
            let t0 = Instant::now();
            t0.elapsed().as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}
