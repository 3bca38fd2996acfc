//! Replay throughput: the catalog streamed in time order into an exact book, no strategy. What
//! `argus bench replay` measures and what the side-by-side script compares with hftbacktest and
//! NautilusTrader.

use argus_core::{MarketEvent, MarketEventKind, OrderBook};

/// What one replay went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayCounts {
    /// Book level changes (snapshot and diff levels, clears).
    pub levels: u64,
    pub trades: u64,
    pub quotes: u64,
    /// Marks and liquidations.
    pub other: u64,
    /// A checksum of the final book (best bid and ask units and depths), so the work is not
    /// optimised away and two replays can be compared.
    pub book_digest: u64,
}

impl ReplayCounts {
    /// Events as the issue counts them: book levels + trades + quotes.
    pub fn events(&self) -> u64 {
        self.levels + self.trades + self.quotes
    }
}

/// Applies every event to `book`, counting by kind.
pub fn replay_into_book(events: impl Iterator<Item = MarketEvent>, book: &mut OrderBook) -> ReplayCounts {
    let mut c = ReplayCounts::default();
    for ev in events {
        match ev.kind {
            MarketEventKind::Delta(d) => {
                book.apply(&d);
                c.levels += 1;
            }
            MarketEventKind::Trade(_) => c.trades += 1,
            MarketEventKind::Quote(_) => c.quotes += 1,
            MarketEventKind::Mark(_) | MarketEventKind::Liquidation(_) => c.other += 1,
        }
    }
    let units = |l: Option<argus_core::Level>| l.map_or(0, |l| l.price.units() as u64 ^ l.qty.units() as u64);
    c.book_digest = units(book.best_bid())
        .rotate_left(17)
        .wrapping_add(units(book.best_ask()))
        .wrapping_add((book.depth(argus_core::Side::Buy) as u64) << 32 | book.depth(argus_core::Side::Sell) as u64);
    c
}
