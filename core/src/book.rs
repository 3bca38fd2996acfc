//! An exact, bounded L2 order book.
//!
//! Each side is a sorted array with the best level at the end, so the common case (changes near
//! the touch) moves few bytes and lookups are a binary search. Capacity is fixed at construction:
//! applying deltas never allocates. When a side is full, the level farthest from the touch is
//! evicted and counted, never silently lost.

use crate::{BookAction, BookDelta, Price, Qty, Side};

/// Fewest levels a side must be able to hold (Binance sends up to 5000 per side).
pub const MIN_BOOK_LEVELS: usize = 5000;

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub price: Price,
    pub qty: Qty,
}

/// One side of the book, sorted from worst to best.
#[derive(Debug, Clone)]
struct Ladder {
    side: Side,
    levels: Vec<Level>,
    cap: usize,
}

impl Ladder {
    fn new(side: Side, cap: usize) -> Self {
        Self { side, levels: Vec::with_capacity(cap), cap }
    }

    /// Sort key: ascending, best last.
    #[inline]
    fn key(&self, p: Price) -> i64 {
        match self.side {
            Side::Buy => p.units(),
            Side::Sell => p.units().saturating_neg(),
        }
    }

    #[inline]
    fn find(&self, p: Price) -> Result<usize, usize> {
        let k = self.key(p);
        self.levels.binary_search_by(|l| self.key(l.price).cmp(&k))
    }

    /// Sets a level; zero deletes. Returns true when a level had to be evicted or dropped.
    fn set(&mut self, price: Price, qty: Qty) -> bool {
        match self.find(price) {
            Ok(i) if qty.is_zero() => {
                self.levels.remove(i);
                false
            }
            Ok(i) => {
                self.levels[i].qty = qty;
                false
            }
            Err(_) if qty.is_zero() => false,
            Err(mut i) => {
                let mut evicted = false;
                if self.levels.len() == self.cap {
                    if i == 0 {
                        // Worse than every level we keep: drop it.
                        return true;
                    }
                    self.levels.remove(0);
                    i -= 1;
                    evicted = true;
                }
                self.levels.insert(i, Level { price, qty });
                evicted
            }
        }
    }

    fn delete(&mut self, price: Price) {
        if let Ok(i) = self.find(price) {
            self.levels.remove(i);
        }
    }

    #[inline]
    fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }

    /// Levels from best to worst.
    fn iter(&self) -> impl Iterator<Item = &Level> {
        self.levels.iter().rev()
    }
}

/// An L2 book for one instrument.
#[derive(Debug, Clone)]
pub struct OrderBook {
    bids: Ladder,
    asks: Ladder,
    /// Sequence of the last applied delta.
    sequence: u64,
    /// Levels dropped because a side was at capacity.
    evicted: u64,
}

impl OrderBook {
    /// A book keeping up to `max_levels` per side (at least [`MIN_BOOK_LEVELS`]).
    pub fn new(max_levels: usize) -> Self {
        let cap = max_levels.max(MIN_BOOK_LEVELS);
        Self { bids: Ladder::new(Side::Buy, cap), asks: Ladder::new(Side::Sell, cap), sequence: 0, evicted: 0 }
    }

    /// Applies one delta.
    #[inline]
    pub fn apply(&mut self, d: &BookDelta) {
        let ladder = match d.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        match d.action {
            BookAction::Add | BookAction::Update => {
                if ladder.set(d.price, d.qty) {
                    self.evicted += 1;
                }
            }
            BookAction::Delete => ladder.delete(d.price),
            BookAction::Clear => {
                self.bids.levels.clear();
                self.asks.levels.clear();
            }
        }
        self.sequence = d.sequence;
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best()
    }

    /// Levels of one side from best to worst.
    pub fn levels(&self, side: Side) -> impl Iterator<Item = &Level> {
        match side {
            Side::Buy => self.bids.iter(),
            Side::Sell => self.asks.iter(),
        }
    }

    /// Displayed quantity at `price` on `side` (zero when there is no such level).
    pub fn qty_at(&self, side: Side, price: Price) -> Qty {
        let ladder = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        ladder.find(price).map_or(Qty::ZERO, |i| ladder.levels[i].qty)
    }

    pub fn depth(&self, side: Side) -> usize {
        match side {
            Side::Buy => self.bids.levels.len(),
            Side::Sell => self.asks.levels.len(),
        }
    }

    /// Capacity of each side.
    pub fn capacity(&self) -> usize {
        self.bids.cap
    }

    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Levels dropped since construction because a side was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Mid price in `10^-9` units, when both sides exist.
    pub fn mid_units(&self) -> Option<i64> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        Some(b.price.units() / 2 + a.price.units() / 2 + (b.price.units() % 2 + a.price.units() % 2) / 2)
    }

    /// True when the best bid is at or above the best ask.
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some(b), Some(a)) if b.price >= a.price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeltaFlags;
    use proptest::prelude::*;

    fn delta(side: Side, px: i64, qty: i64) -> BookDelta {
        BookDelta {
            action: BookAction::Update,
            side,
            flags: DeltaFlags::default(),
            price: Price::from_units(px),
            qty: Qty::from_units(qty),
            sequence: 0,
        }
    }

    #[test]
    fn keeps_best_at_top_and_deletes_on_zero() {
        let mut b = OrderBook::new(0);
        b.apply(&delta(Side::Buy, 100, 1));
        b.apply(&delta(Side::Buy, 101, 2));
        b.apply(&delta(Side::Sell, 103, 3));
        b.apply(&delta(Side::Sell, 102, 4));
        assert_eq!(b.best_bid().map(|l| l.price.units()), Some(101));
        assert_eq!(b.best_ask().map(|l| l.price.units()), Some(102));
        b.apply(&delta(Side::Sell, 102, 0));
        assert_eq!(b.best_ask().map(|l| l.qty.units()), Some(3));
        let bids: Vec<i64> = b.levels(Side::Buy).map(|l| l.price.units()).collect();
        assert_eq!(bids, vec![101, 100]);
        // Deleting a level that does not exist is a no-op.
        b.apply(&delta(Side::Buy, 50, 0));
        assert_eq!(b.depth(Side::Buy), 2);
    }

    #[test]
    fn full_side_evicts_the_worst_level() {
        let mut b = OrderBook::new(MIN_BOOK_LEVELS);
        for i in 0..MIN_BOOK_LEVELS as i64 {
            b.apply(&delta(Side::Buy, 1000 + i, 1));
        }
        // Worse than all: dropped and counted.
        b.apply(&delta(Side::Buy, 1, 1));
        assert_eq!(b.depth(Side::Buy), MIN_BOOK_LEVELS);
        assert_eq!(b.evicted(), 1);
        // Better than the worst: the worst goes.
        b.apply(&delta(Side::Buy, 1_000_000, 1));
        assert_eq!(b.depth(Side::Buy), MIN_BOOK_LEVELS);
        assert_eq!(b.levels(Side::Buy).last().map(|l| l.price.units()), Some(1001));
        assert_eq!(b.evicted(), 2);
    }

    proptest! {
        // Book invariants: sorted strictly, no zero-size level, and the same content as a
        // reference map.
        #[test]
        fn matches_reference_model(ops in proptest::collection::vec((any::<bool>(), 1_i64..200, 0_i64..4), 0..400)) {
            let mut b = OrderBook::new(0);
            let mut bids = std::collections::BTreeMap::new();
            let mut asks = std::collections::BTreeMap::new();
            for (buy, px, qty) in ops {
                let side = if buy { Side::Buy } else { Side::Sell };
                b.apply(&delta(side, px, qty));
                let m = if buy { &mut bids } else { &mut asks };
                if qty == 0 { m.remove(&px); } else { m.insert(px, qty); }
            }
            let got_bids: Vec<(i64, i64)> = b.levels(Side::Buy).map(|l| (l.price.units(), l.qty.units())).collect();
            let want_bids: Vec<(i64, i64)> = bids.iter().rev().map(|(p, q)| (*p, *q)).collect();
            prop_assert_eq!(got_bids, want_bids);
            let got_asks: Vec<(i64, i64)> = b.levels(Side::Sell).map(|l| (l.price.units(), l.qty.units())).collect();
            let want_asks: Vec<(i64, i64)> = asks.iter().map(|(p, q)| (*p, *q)).collect();
            prop_assert_eq!(got_asks, want_asks);
            prop_assert!(b.levels(Side::Buy).all(|l| !l.qty.is_zero()));
        }
    }
}
