//! Recordings decoded offline through the same normalizer and book sync as the live task, as an
//! iterator of events: the input of training and of replays that need no socket.

use std::path::Path;

use argus_core::{InstrumentId, MarketEvent, UnixNanos};

use crate::binance::{parse_snapshot, BinanceNormalizer, Decoded, DepthSync};
use crate::recording::RecordingReader;
use crate::FeedError;

/// Frame counts of an offline decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfflineStats {
    pub trade: u64,
    pub depth: u64,
    pub book_ticker: u64,
    /// USD-M mark price and liquidation frames.
    pub derivative: u64,
    pub snapshot: u64,
    pub ignored: u64,
    pub malformed: u64,
}

/// Decodes a Binance recording (`<recv_ns> <frame>` lines with inline REST snapshots).
#[derive(Debug)]
pub struct BinanceRecording {
    reader: RecordingReader,
    normalizer: BinanceNormalizer,
    sync: DepthSync,
    decoded: Vec<MarketEvent>,
    ready: Vec<MarketEvent>,
    next: usize,
    stats: OfflineStats,
}

impl BinanceRecording {
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path, symbol: &str, instrument: InstrumentId) -> Result<Self, FeedError> {
        Ok(Self {
            reader: RecordingReader::open(path)?,
            normalizer: BinanceNormalizer::new([(symbol, instrument)]),
            sync: DepthSync::new(instrument),
            decoded: Vec::with_capacity(4096),
            ready: Vec::with_capacity(8192),
            next: 0,
            stats: OfflineStats::default(),
        })
    }

    pub fn stats(&self) -> OfflineStats {
        self.stats
    }

    pub fn sync_stats(&self) -> crate::binance::SyncStats {
        self.sync.stats()
    }

    /// Decodes the next line into `ready`; false at end of file.
    fn fill(&mut self) -> bool {
        self.ready.clear();
        self.next = 0;
        while self.ready.is_empty() {
            let frame = match self.reader.next() {
                None => return false,
                Some(Err(_)) => {
                    self.stats.malformed += 1;
                    continue;
                }
                Some(Ok(f)) => f,
            };
            let ts = UnixNanos(frame.ts_recv_ns);
            if frame.is_snapshot() {
                self.stats.snapshot += 1;
                match parse_snapshot(frame.frame.as_bytes()) {
                    Ok(s) if !self.sync.is_synced() => {
                        // A stale snapshot leaves the sync buffering for the next one.
                        let _ = self.sync.on_snapshot(&s, ts, &mut self.ready);
                    }
                    Ok(_) => {}
                    Err(_) => self.stats.malformed += 1,
                }
                continue;
            }
            self.decoded.clear();
            match self.normalizer.normalize_str(&frame.frame, ts, &mut self.decoded) {
                Ok(Decoded::Trade) => {
                    self.stats.trade += 1;
                    self.ready.extend_from_slice(&self.decoded);
                }
                Ok(Decoded::Mark | Decoded::Liquidation) => {
                    self.stats.derivative += 1;
                    self.ready.extend_from_slice(&self.decoded);
                }
                Ok(Decoded::BookTicker { .. }) => {
                    self.stats.book_ticker += 1;
                    self.ready.extend_from_slice(&self.decoded);
                }
                Ok(Decoded::Depth { first_update_id, final_update_id, prev_final_update_id }) => {
                    self.stats.depth += 1;
                    self.sync.on_diff(
                        first_update_id,
                        final_update_id,
                        prev_final_update_id,
                        &self.decoded,
                        &mut self.ready,
                    );
                }
                Ok(Decoded::Ignored) => self.stats.ignored += 1,
                Err(_) => self.stats.malformed += 1,
            }
        }
        true
    }
}

impl Iterator for BinanceRecording {
    type Item = MarketEvent;

    fn next(&mut self) -> Option<MarketEvent> {
        if self.next >= self.ready.len() && !self.fill() {
            return None;
        }
        let ev = self.ready[self.next];
        self.next += 1;
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::{MarketEventKind, OrderBook};

    #[test]
    fn bundled_recording_decodes_completely_and_syncs_once() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_spot/btcusdt_20240808.jsonl.gz"));
        let mut rec = BinanceRecording::open(path, "BTCUSDT", InstrumentId(0)).unwrap();
        let mut book = OrderBook::new(5000);
        let mut trades = 0;
        for ev in rec.by_ref() {
            match ev.kind {
                MarketEventKind::Delta(d) => book.apply(&d),
                MarketEventKind::Trade(_) => trades += 1,
                MarketEventKind::Quote(_) | MarketEventKind::Mark(_) | MarketEventKind::Liquidation(_) => {}
            }
        }
        let s = rec.stats();
        assert_eq!((s.trade, s.depth, s.book_ticker, s.snapshot, s.malformed), (9757, 3451, 28040, 1, 0));
        assert_eq!(trades, 9757);
        assert_eq!(rec.sync_stats().gaps, 0);
        assert_eq!(rec.sync_stats().stale_diffs_dropped, 2);
        assert!(!book.is_crossed());
        assert!(book.depth(argus_core::Side::Buy) > 1000);
    }
}
