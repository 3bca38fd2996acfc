//! Per-stage latency: an hdrhistogram per stage for exact percentiles in the report, and fixed
//! buckets published to Prometheus per batch. Recording never allocates.

use hdrhistogram::Histogram;

/// Pipeline stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    ReceiveDecode,
    DecodeHot,
    Book,
    Features,
    Model,
    Strategy,
    Risk,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::ReceiveDecode,
        Stage::DecodeHot,
        Stage::Book,
        Stage::Features,
        Stage::Model,
        Stage::Strategy,
        Stage::Risk,
    ];

    /// Key in the report's `latency_ns`.
    pub const fn report_key(self) -> &'static str {
        match self {
            Stage::ReceiveDecode => "receive->decode",
            Stage::DecodeHot => "decode->hot thread",
            Stage::Book => "book",
            Stage::Features => "features",
            Stage::Model => "model",
            Stage::Strategy => "strategy",
            Stage::Risk => "risk",
        }
    }

    /// Prometheus label value.
    pub const fn metric_label(self) -> &'static str {
        match self {
            Stage::ReceiveDecode => "receive_decode",
            Stage::DecodeHot => "decode_hot",
            Stage::Book => "book",
            Stage::Features => "features",
            Stage::Model => "model",
            Stage::Strategy => "strategy",
            Stage::Risk => "risk",
        }
    }
}

/// Upper bounds of the Prometheus buckets, in ns (the same as the feeds' frame-to-queue ones).
pub use argus_feeds::stats::LATENCY_BOUNDS_NS as BUCKET_BOUNDS_NS;

/// Cumulative-free bucket counts of one stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageBuckets {
    pub counts: [u64; BUCKET_BOUNDS_NS.len()],
    pub count: u64,
    pub sum_ns: u64,
}

/// Largest value tracked exactly (60 s); larger values are clamped.
const MAX_TRACKED_NS: u64 = 60_000_000_000;

/// Histograms of every stage.
#[derive(Debug, Clone)]
pub struct StageLatencies {
    hist: Vec<Histogram<u64>>,
    buckets: Vec<StageBuckets>,
}

impl StageLatencies {
    /// 3 significant digits from 1 ns to 60 s: fixed, preallocated tables.
    ///
    /// # Errors
    /// Never for these constant bounds; typed for honesty.
    pub fn new() -> Result<Self, hdrhistogram::CreationError> {
        let hist = Stage::ALL
            .iter()
            .map(|_| Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { hist, buckets: vec![StageBuckets::default(); Stage::ALL.len()] })
    }

    #[inline]
    pub fn record(&mut self, stage: Stage, ns: u64) {
        let v = ns.clamp(1, MAX_TRACKED_NS);
        let i = stage as usize;
        // Saturating: the value was clamped into range, so this cannot fail.
        self.hist[i].saturating_record(v);
        let b = &mut self.buckets[i];
        let slot = BUCKET_BOUNDS_NS.iter().position(|&ub| v <= ub).unwrap_or(BUCKET_BOUNDS_NS.len() - 1);
        b.counts[slot] += 1;
        b.count += 1;
        b.sum_ns += v;
    }

    pub fn histogram(&self, stage: Stage) -> &Histogram<u64> {
        &self.hist[stage as usize]
    }

    pub fn buckets(&self) -> &[StageBuckets] {
        &self.buckets
    }
}
