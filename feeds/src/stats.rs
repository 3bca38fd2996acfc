//! Counters a feed task publishes; read by metrics and reports from other threads.

use std::sync::atomic::{AtomicU64, Ordering};

/// Frame and fault counters of one feed. Updated with relaxed atomics once per frame.
#[derive(Debug, Default)]
pub struct FeedStats {
    pub frames_trade: AtomicU64,
    pub frames_depth: AtomicU64,
    pub frames_book_ticker: AtomicU64,
    /// USD-M mark price and liquidation frames.
    pub frames_derivative: AtomicU64,
    pub frames_ignored: AtomicU64,
    pub snapshots: AtomicU64,
    pub malformed: AtomicU64,
    pub disconnects: AtomicU64,
    pub reconnects: AtomicU64,
    pub gaps: AtomicU64,
    pub stale_diffs: AtomicU64,
    pub snapshot_failures: AtomicU64,
    /// Book checksums that did not match (OKX, Kraken).
    pub checksum_failures: AtomicU64,
    /// Books rebuilt from a fresh snapshot after a gap or checksum failure.
    pub resyncs: AtomicU64,
    pub events_sent: AtomicU64,
    /// 1 while a websocket connection is up, 0 otherwise.
    pub connected: AtomicU64,
    /// Times the queue to the hot thread was full (the feed waited, or dropped the event).
    pub queue_full: AtomicU64,
    /// Events dropped on a full queue (`QueuePolicy::Drop`).
    pub dropped: AtomicU64,
    /// Instruments found silent past the feed's `stale_after` while their connection lived
    /// (each one reconnects the feed, so its book is rebuilt rather than trusted).
    pub stale_instruments: AtomicU64,
    /// Connections replaced before the venue's lifetime limit, the new one opened first.
    pub planned_reconnects: AtomicU64,
    /// Trades and quotes a second connection repeated (the overlap of a planned reconnect),
    /// dropped rather than delivered twice.
    pub duplicates: AtomicU64,
    /// From a frame read off the socket to its last event in the hot thread's queue.
    pub frame_to_queue: LatencyBuckets,
}

/// Upper bounds, in ns, of the latency histogram buckets shared by every latency argus
/// publishes (the frame-to-queue one here, the pipeline stages in the engine); the last bucket
/// is unbounded.
pub const LATENCY_BOUNDS_NS: [u64; 16] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// A latency histogram over [`LATENCY_BOUNDS_NS`], updated with relaxed atomics by the
/// feed task and read at scrape time (fixed size: recording never allocates).
#[derive(Debug, Default)]
pub struct LatencyBuckets {
    counts: [AtomicU64; LATENCY_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

/// A point-in-time copy of [`LatencyBuckets`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySnapshot {
    /// Per bucket (not cumulative); the last one counts samples above every bound.
    pub counts: [u64; LATENCY_BOUNDS_NS.len() + 1],
    pub sum_ns: u64,
}

impl LatencyBuckets {
    #[inline]
    pub fn record(&self, ns: u64) {
        let i = LATENCY_BOUNDS_NS.partition_point(|&b| b < ns);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

impl LatencySnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1), in ns: an upper estimate.
    /// `None` without samples, or when the quantile lies above the last bound.
    pub fn quantile_bound_ns(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return LATENCY_BOUNDS_NS.get(i).copied();
            }
        }
        None
    }
}

impl FeedStats {
    #[inline]
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Websocket frames read, whatever they carried (malformed ones included).
    pub fn frames(&self) -> u64 {
        [
            &self.frames_trade,
            &self.frames_depth,
            &self.frames_book_ticker,
            &self.frames_derivative,
            &self.frames_ignored,
            &self.malformed,
        ]
        .iter()
        .map(|c| Self::get(c))
        .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_the_bucket_of_their_upper_bound() {
        let b = LatencyBuckets::default();
        for ns in [1, 500, 501, 1_000, 7_000, 2_000_000_000] {
            b.record(ns);
        }
        let s = b.snapshot();
        assert_eq!(s.count(), 6);
        assert_eq!(s.sum_ns, 1 + 500 + 501 + 1_000 + 7_000 + 2_000_000_000);
        assert_eq!(&s.counts[..7], &[1, 0, 1, 2, 0, 0, 1]);
        assert_eq!(s.counts[LATENCY_BOUNDS_NS.len()], 1, "above every bound");
        assert_eq!(s.quantile_bound_ns(0.5), Some(1_000));
        assert_eq!(s.quantile_bound_ns(0.0), Some(100));
        assert_eq!(s.quantile_bound_ns(1.0), None, "the slowest sample is past the last bound");
        assert_eq!(LatencySnapshot::default().quantile_bound_ns(0.5), None);
    }
}
