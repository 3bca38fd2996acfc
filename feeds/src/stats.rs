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
