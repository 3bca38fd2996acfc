//! Market events: the only thing that crosses from feeds (live or replayed) into the hot thread.
//!
//! Every event is a small `Copy` value with both the exchange and the local receive time, so the
//! same stream can be replayed bit for bit and latency can be measured per stage.

use crate::{InstrumentId, Price, Qty, Side, UnixNanos};

/// A public trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    pub price: Price,
    pub qty: Qty,
    pub trade_id: u64,
    /// Side of the taker (aggressor).
    pub aggressor: Side,
}

/// Best bid and offer as pushed by the venue (e.g. Binance `bookTicker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    pub bid_price: Price,
    pub bid_qty: Qty,
    pub ask_price: Price,
    pub ask_qty: Qty,
}

/// A futures mark price with its index and funding (Binance USD-M `markPriceUpdate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkPrice {
    pub mark: Price,
    pub index: Price,
    /// Funding rate of the current period as a fraction (`0.0001` = 1 bp), exact.
    pub funding_rate: Price,
    /// When the next funding happens (zero for contracts without funding).
    pub next_funding: UnixNanos,
}

/// A forced liquidation order executed by the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liquidation {
    /// Side of the liquidation order: `Sell` liquidates a long.
    pub side: Side,
    /// Average fill price (the order price before any fill).
    pub price: Price,
    /// Filled quantity (the order quantity before any fill).
    pub qty: Qty,
}

/// What a [`BookDelta`] does to a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookAction {
    /// Insert a level that should not exist yet (snapshots).
    Add,
    /// Set a level's size; a zero size deletes it (venue diffs).
    Update,
    /// Remove a level.
    Delete,
    /// Remove every level of the book (before a snapshot, on a resync).
    Clear,
}

/// Flags carried by a [`BookDelta`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DeltaFlags(pub u8);

impl DeltaFlags {
    /// Part of a snapshot rather than an incremental diff.
    pub const SNAPSHOT: u8 = 1;
    /// Last delta of a venue message: the book is consistent after it.
    pub const LAST: u8 = 2;

    #[inline]
    pub const fn is_snapshot(self) -> bool {
        self.0 & Self::SNAPSHOT != 0
    }

    #[inline]
    pub const fn is_last(self) -> bool {
        self.0 & Self::LAST != 0
    }
}

/// One level change of an L2 book: a superset of Nautilus `OrderBookDelta`, Tardis
/// `incremental_book_L2` and hftbacktest depth events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookDelta {
    pub action: BookAction,
    pub side: Side,
    pub flags: DeltaFlags,
    pub price: Price,
    pub qty: Qty,
    /// Venue sequence (Binance final update id `u`).
    pub sequence: u64,
}

/// The payload of a [`MarketEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketEventKind {
    Trade(Trade),
    Quote(Quote),
    Delta(BookDelta),
    Mark(MarkPrice),
    Liquidation(Liquidation),
}

/// A normalized market event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketEvent {
    /// Venue event time.
    pub ts_exchange: UnixNanos,
    /// Local time the frame carrying this event was read off the socket.
    pub ts_recv: UnixNanos,
    pub instrument: InstrumentId,
    /// Nanoseconds from `ts_recv` until decoding finished (saturates at ~4.3 s).
    pub decode_ns: u32,
    pub kind: MarketEventKind,
}

// Events are copied through queues by value: keep them to one cache line.
const _: () = assert!(std::mem::size_of::<MarketEvent>() <= 64);

impl MarketEvent {
    /// True when this event ends a venue message (trades, quotes, the last delta of a diff).
    #[inline]
    pub fn ends_message(&self) -> bool {
        match self.kind {
            MarketEventKind::Delta(d) => d.flags.is_last(),
            _ => true,
        }
    }

    /// When decoding finished.
    #[inline]
    pub fn ts_decoded(&self) -> UnixNanos {
        UnixNanos(self.ts_recv.0 + u64::from(self.decode_ns))
    }
}
