//! Binance's documented local order book procedure.
//!
//! 1. Open the stream and buffer depth diffs.
//! 2. Fetch a REST snapshot.
//! 3. Drop buffered diffs with `u <= lastUpdateId`.
//! 4. The first applied diff must have `U <= lastUpdateId + 1 <= u`.
//! 5. Every later diff must continue the chain: `U == prev.u + 1` (spot) or `pu == prev.u` (USD-M).
//!    On USD-M a first diff with `pu == lastUpdateId` also continues the snapshot (ids there are
//!    not contiguous, so `U` may lie far beyond `lastUpdateId + 1`).
//!
//! A break is a gap: the book is stale, so the sync buffers again and asks for a new snapshot.
//! Output is a stream of deltas the hot thread can apply blindly: a snapshot starts with a `Clear`.

use argus_core::{
    BookAction, BookDelta, DeltaFlags, InstrumentId, MarketEvent, MarketEventKind, Price, Qty, Side, UnixNanos,
};

use crate::FeedError;

/// Most diff deltas buffered while waiting for a snapshot; older frames are dropped past it.
pub const MAX_BUFFERED_DELTAS: usize = 1 << 16;

/// A REST depth snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub last_update_id: u64,
    pub bids: Vec<(Price, Qty)>,
    pub asks: Vec<(Price, Qty)>,
}

#[derive(serde::Deserialize)]
struct RawSnapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    asks: Vec<(&'a str, &'a str)>,
}

/// Parses `GET /api/v3/depth` (or `/fapi/v1/depth`) JSON.
///
/// # Errors
/// Malformed JSON or decimals.
pub fn parse_snapshot(body: &[u8]) -> Result<Snapshot, FeedError> {
    let raw: RawSnapshot<'_> = serde_json::from_slice(body)?;
    let levels = |v: &[(&str, &str)], field: &'static str| -> Result<Vec<(Price, Qty)>, FeedError> {
        v.iter()
            .map(|(p, q)| {
                Ok((
                    Price::parse(p).map_err(|source| FeedError::Decimal { field, source })?,
                    Qty::parse_size(q).map_err(|source| FeedError::Decimal { field, source })?,
                ))
            })
            .collect()
    };
    Ok(Snapshot {
        last_update_id: raw.last_update_id,
        bids: levels(&raw.bids, "bids")?,
        asks: levels(&raw.asks, "asks")?,
    })
}

/// Where the sync stands after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    /// Buffering diffs; a snapshot is needed (fetch one unless a fetch is in flight).
    NeedSnapshot,
    /// The book downstream is consistent.
    Synced,
}

/// Counters kept by the sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub snapshots_applied: u64,
    pub stale_diffs_dropped: u64,
    pub gaps: u64,
    pub buffer_overflows: u64,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    first: u64,
    last: u64,
    prev: Option<u64>,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Buffering,
    /// Snapshot applied, waiting for the diff that straddles it.
    AwaitFirst {
        last: u64,
    },
    Synced {
        last: u64,
    },
}

/// Book sync state for one instrument.
#[derive(Debug)]
pub struct DepthSync {
    instrument: InstrumentId,
    phase: Phase,
    buffer: Vec<MarketEvent>,
    frames: Vec<Frame>,
    stats: SyncStats,
}

impl DepthSync {
    pub fn new(instrument: InstrumentId) -> Self {
        Self {
            instrument,
            phase: Phase::Buffering,
            buffer: Vec::with_capacity(4096),
            frames: Vec::with_capacity(64),
            stats: SyncStats::default(),
        }
    }

    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    pub fn is_synced(&self) -> bool {
        !matches!(self.phase, Phase::Buffering)
    }

    /// The id of the last update the book holds, once synced.
    pub fn last_update_id(&self) -> Option<u64> {
        match self.phase {
            Phase::AwaitFirst { last } | Phase::Synced { last } => Some(last),
            Phase::Buffering => None,
        }
    }

    /// A planned switch to a second connection of the same stream: the book is kept, and the new
    /// connection's diffs are taken up the way the first diffs after a snapshot are: repeats of
    /// what was applied (`u <= last`) are dropped, the first one applied must straddle
    /// (`U <= last + 1 <= u`, or `pu == last` on USD-M), and anything else is a gap.
    pub fn handover(&mut self) {
        if let Phase::Synced { last } = self.phase {
            self.phase = Phase::AwaitFirst { last };
        }
    }

    /// Forgets all state (after a reconnect): the next snapshot starts over.
    pub fn reset(&mut self) {
        self.phase = Phase::Buffering;
        self.buffer.clear();
        self.frames.clear();
    }

    /// Handles one diff whose deltas are `deltas`; appends what the book should apply to `out`.
    pub fn on_diff(
        &mut self,
        first: u64,
        last: u64,
        prev: Option<u64>,
        deltas: &[MarketEvent],
        out: &mut Vec<MarketEvent>,
    ) -> SyncStatus {
        match self.phase {
            Phase::Buffering => {
                self.buffer_frame(first, last, prev, deltas);
                SyncStatus::NeedSnapshot
            }
            Phase::AwaitFirst { last: id } | Phase::Synced { last: id } => {
                if last <= id {
                    self.stats.stale_diffs_dropped += 1;
                    return SyncStatus::Synced;
                }
                let continues = match self.phase {
                    // USD-M ids are not contiguous: a diff whose `pu` is the snapshot's id
                    // continues it exactly even when its `U` is far beyond.
                    Phase::AwaitFirst { .. } => first <= id + 1 || prev == Some(id),
                    _ => match prev {
                        Some(pu) => pu == id,
                        None => first == id + 1,
                    },
                };
                if continues {
                    out.extend_from_slice(deltas);
                    self.phase = Phase::Synced { last };
                    SyncStatus::Synced
                } else {
                    self.stats.gaps += 1;
                    self.reset();
                    self.buffer_frame(first, last, prev, deltas);
                    SyncStatus::NeedSnapshot
                }
            }
        }
    }

    fn buffer_frame(&mut self, first: u64, last: u64, prev: Option<u64>, deltas: &[MarketEvent]) {
        while !self.frames.is_empty() && self.buffer.len() + deltas.len() > MAX_BUFFERED_DELTAS {
            let f = self.frames.remove(0);
            self.buffer.drain(f.start..f.end);
            let n = f.end - f.start;
            for g in &mut self.frames {
                g.start -= n;
                g.end -= n;
            }
            self.stats.buffer_overflows += 1;
        }
        let start = self.buffer.len();
        self.buffer.extend_from_slice(deltas);
        self.frames.push(Frame { first, last, prev, start, end: self.buffer.len() });
    }

    /// Applies a snapshot: emits `Clear` + its levels, then the buffered diffs that follow it.
    ///
    /// # Errors
    /// [`FeedError::StaleSnapshot`] when the snapshot is older than every buffered diff (fetch
    /// again); nothing is emitted then.
    pub fn on_snapshot(
        &mut self,
        snap: &Snapshot,
        ts_recv: UnixNanos,
        out: &mut Vec<MarketEvent>,
    ) -> Result<SyncStatus, FeedError> {
        let id = snap.last_update_id;
        let fresh: Vec<Frame> = self.frames.iter().copied().filter(|f| f.last > id).collect();
        if let Some(f) = fresh.first() {
            if f.first > id + 1 {
                // Diffs between the snapshot and the buffer are lost: this snapshot is too old.
                return Err(FeedError::StaleSnapshot { snapshot: id, first: f.first });
            }
        }
        self.stats.stale_diffs_dropped += (self.frames.len() - fresh.len()) as u64;
        let snap_event = |action, side, price, qty, flags| MarketEvent {
            ts_exchange: UnixNanos(0),
            ts_recv,
            instrument: self.instrument,
            decode_ns: 0,
            kind: MarketEventKind::Delta(BookDelta {
                action,
                side,
                flags: DeltaFlags(flags),
                price,
                qty,
                sequence: id,
            }),
        };
        let total = snap.bids.len() + snap.asks.len();
        let last_flags = DeltaFlags::SNAPSHOT | DeltaFlags::LAST;
        out.push(snap_event(
            BookAction::Clear,
            Side::Buy,
            Price::ZERO,
            Qty::ZERO,
            if total == 0 { last_flags } else { DeltaFlags::SNAPSHOT },
        ));
        let levels = snap.bids.iter().map(|l| (Side::Buy, l)).chain(snap.asks.iter().map(|l| (Side::Sell, l)));
        for (i, (side, &(price, qty))) in levels.enumerate() {
            let flags = if i + 1 == total { last_flags } else { DeltaFlags::SNAPSHOT };
            out.push(snap_event(BookAction::Add, side, price, qty, flags));
        }
        self.stats.snapshots_applied += 1;
        self.phase = Phase::AwaitFirst { last: id };
        let buffer = std::mem::take(&mut self.buffer);
        self.frames.clear();
        let mut status = SyncStatus::Synced;
        for f in fresh {
            status = self.on_diff(f.first, f.last, f.prev, &buffer[f.start..f.end], out);
        }
        if self.buffer.capacity() == 0 {
            self.buffer = buffer;
            self.buffer.clear();
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binance::normalize::delta_event;
    use argus_core::OrderBook;

    fn diff(n: usize) -> Vec<MarketEvent> {
        (0..n)
            .map(|i| delta_event(Side::Buy, Price::from_units(100 + i as i64), Qty::from_units(1), UnixNanos(0)))
            .collect()
    }

    fn snap(id: u64) -> Snapshot {
        Snapshot {
            last_update_id: id,
            bids: vec![(Price::from_units(10), Qty::from_units(1))],
            asks: vec![(Price::from_units(20), Qty::from_units(2))],
        }
    }

    #[test]
    fn documented_procedure_drops_stale_and_applies_straddling_diff() {
        // Shape of the bundled recording: diffs u=202, 207 are stale; 208..224 straddles 218.
        let mut s = DepthSync::new(InstrumentId(0));
        let mut out = Vec::new();
        assert_eq!(s.on_diff(189, 202, None, &diff(2), &mut out), SyncStatus::NeedSnapshot);
        assert_eq!(s.on_diff(203, 207, None, &diff(1), &mut out), SyncStatus::NeedSnapshot);
        assert_eq!(s.on_diff(208, 224, None, &diff(3), &mut out), SyncStatus::NeedSnapshot);
        assert!(out.is_empty());
        assert_eq!(s.on_snapshot(&snap(218), UnixNanos(0), &mut out).unwrap(), SyncStatus::Synced);
        // Clear + 2 levels + 3 deltas of the straddling diff.
        assert_eq!(out.len(), 6);
        assert_eq!(s.stats().stale_diffs_dropped, 2);
        let mut book = OrderBook::new(0);
        for e in &out {
            if let MarketEventKind::Delta(d) = e.kind {
                book.apply(&d);
            }
        }
        assert_eq!(book.depth(Side::Buy), 4);
        assert_eq!(s.on_diff(225, 230, None, &diff(1), &mut out), SyncStatus::Synced);
    }

    #[test]
    fn a_handover_takes_up_a_new_connection_whose_diffs_are_cut_differently() {
        let mut s = DepthSync::new(InstrumentId(0));
        let mut out = Vec::new();
        s.on_snapshot(&snap(100), UnixNanos(0), &mut out).unwrap();
        assert_eq!(s.on_diff(101, 120, None, &diff(1), &mut out), SyncStatus::Synced);
        // Without a handover, a diff that overlaps what was applied breaks the chain.
        let mut strict = DepthSync::new(InstrumentId(0));
        strict.on_snapshot(&snap(100), UnixNanos(0), &mut out).unwrap();
        strict.on_diff(101, 120, None, &diff(1), &mut out);
        assert_eq!(strict.on_diff(111, 125, None, &diff(1), &mut out), SyncStatus::NeedSnapshot);
        // The new connection's windows: 96-110 (already applied), then 111-125 straddling 120.
        s.handover();
        assert_eq!(s.last_update_id(), Some(120));
        out.clear();
        assert_eq!(s.on_diff(96, 110, None, &diff(1), &mut out), SyncStatus::Synced);
        assert!(out.is_empty(), "a repeat is dropped");
        assert_eq!(s.on_diff(111, 125, None, &diff(2), &mut out), SyncStatus::Synced);
        assert_eq!(out.len(), 2, "the straddling diff is applied");
        assert_eq!(s.on_diff(126, 130, None, &diff(1), &mut out), SyncStatus::Synced);
        assert_eq!(s.stats().gaps, 0);
        // And a real gap after a handover is still one.
        s.handover();
        assert_eq!(s.on_diff(140, 150, None, &diff(1), &mut out), SyncStatus::NeedSnapshot);
        assert_eq!(s.stats().gaps, 1);
    }

    #[test]
    fn gap_triggers_resync() {
        let mut s = DepthSync::new(InstrumentId(0));
        let mut out = Vec::new();
        s.on_snapshot(&snap(100), UnixNanos(0), &mut out).unwrap();
        assert_eq!(s.on_diff(99, 105, None, &diff(1), &mut out), SyncStatus::Synced);
        assert_eq!(s.on_diff(107, 110, None, &diff(1), &mut out), SyncStatus::NeedSnapshot);
        assert_eq!(s.stats().gaps, 1);
        assert!(!s.is_synced());
        out.clear();
        assert_eq!(s.on_snapshot(&snap(108), UnixNanos(0), &mut out).unwrap(), SyncStatus::Synced);
        assert_eq!(out.len(), 3 + 1);
    }

    #[test]
    fn too_old_snapshot_is_refused() {
        let mut s = DepthSync::new(InstrumentId(0));
        let mut out = Vec::new();
        s.on_diff(300, 310, None, &diff(1), &mut out);
        assert!(matches!(s.on_snapshot(&snap(200), UnixNanos(0), &mut out), Err(FeedError::StaleSnapshot { .. })));
        assert!(out.is_empty());
        assert!(s.on_snapshot(&snap(305), UnixNanos(0), &mut out).is_ok());
    }

    #[test]
    fn usdm_uses_previous_final_id() {
        let mut s = DepthSync::new(InstrumentId(0));
        let mut out = Vec::new();
        s.on_snapshot(&snap(100), UnixNanos(0), &mut out).unwrap();
        assert_eq!(s.on_diff(90, 105, Some(89), &diff(1), &mut out), SyncStatus::Synced);
        assert_eq!(s.on_diff(120, 130, Some(105), &diff(1), &mut out), SyncStatus::Synced);
        assert_eq!(s.on_diff(140, 150, Some(131), &diff(1), &mut out), SyncStatus::NeedSnapshot);
    }

    #[test]
    fn real_snapshot_parses() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/binance_spot/samples/hftbacktest_rest_depth_snapshot.jsonl"
        ))
        .unwrap();
        let s = parse_snapshot(text.trim().as_bytes()).unwrap();
        assert_eq!(s.last_update_id, 50_093_239_218);
        assert_eq!((s.bids.len(), s.asks.len()), (1000, 1000));
        assert!(parse_snapshot(br#"{"lastUpdateId":1,"bids":[["x","1"]],"asks":[]}"#).is_err());
    }
}
