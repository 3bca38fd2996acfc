//! An exact, bounded L2 order book.
//!
//! Each side is a price-indexed ladder (hftbacktest's ROIVector idea, kept exact): a dense
//! window of slots, one per tick, around the touch, where setting, deleting and finding a
//! level is an index computation; levels outside the window, or off the tick grid, live in a
//! small sorted array beside it. The tick is given or inferred from the prices seen (the gcd of
//! their distances), so no level is ever rounded or dropped for being unusual: it only takes
//! the slower path. When the touch leaves the window, the window is rebuilt around it.
//!
//! Capacity is fixed at construction: applying deltas never allocates. When a side is full,
//! the level farthest from the touch is evicted and counted, never silently lost.

use crate::{BookAction, BookDelta, Price, Qty, Side};

/// Fewest levels a side must be able to hold (Binance sends up to 5000 per side).
pub const MIN_BOOK_LEVELS: usize = 5000;

/// Slots in each side's dense window (1 MiB of quantities per side; a whole book with its far
/// pools is ~3.3 MB resident under the binary's mimalloc, ~3 ms to make, was ~1.6 MB): on
/// Binance BTCUSDT (0.01 tick) it spans about $1,300, so most of a 5000-level book's diffs
/// land in it rather than in the sorted far part (replay book time 3.8 -> 3.1 ms for the
/// bundled session against 1 << 15 slots; BENCHMARKS.md, twelfth session).
const WINDOW_SLOTS: usize = 1 << 17;

/// Levels per chunk of the far part (512 bytes).
const FAR_CHUNK: usize = 32;

/// Distinct prices a side sees before it infers the tick and opens its window.
const TICK_SAMPLE: u32 = 32;

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub price: Price,
    pub qty: Qty,
}

/// Levels the window does not hold, sorted by key ascending (worst first, best last), in
/// chunks of at most `chunk` entries: an insert or delete moves the entries of one chunk, not
/// of the whole side (deep Binance levels come and go all the time). Chunks come from a pool
/// sized at construction; any two neighbouring chunks hold at least `chunk / 2` levels
/// together (a delete merges them otherwise), so `4 * cap / chunk + 2` chunks always suffice.
#[derive(Debug, Clone)]
struct Far {
    chunk: usize,
    /// The pool: chunk `c` owns `items[c * chunk..(c + 1) * chunk]`, of which `lens[c]` are used.
    items: Vec<(i64, Qty)>,
    lens: Vec<usize>,
    /// Ids of the chunks in use, in key order; none is empty.
    order: Vec<usize>,
    /// The first key of each chunk in `order` (searched without touching the chunks).
    firsts: Vec<i64>,
    free: Vec<usize>,
    len: usize,
}

/// A place in [`Far`]: index into `order`, then into that chunk.
type FarPos = (usize, usize);

impl Far {
    fn new(cap: usize, chunk: usize) -> Self {
        let chunk = chunk.max(2);
        let chunks = 4 * cap / chunk + 2;
        Self {
            chunk,
            items: vec![(0, Qty::ZERO); chunks * chunk],
            lens: vec![0; chunks],
            order: Vec::with_capacity(chunks),
            firsts: Vec::with_capacity(chunks),
            free: (0..chunks).rev().collect(),
            len: 0,
        }
    }

    #[inline]
    fn used(&self, j: usize) -> &[(i64, Qty)] {
        let c = self.order[j];
        &self.items[c * self.chunk..c * self.chunk + self.lens[c]]
    }

    /// Where key `k` is, or where it would go.
    #[inline]
    fn find(&self, k: i64) -> Result<FarPos, FarPos> {
        if self.order.is_empty() {
            return Err((0, 0));
        }
        // The last chunk whose first key is <= k (or the first chunk).
        let j = self.firsts.partition_point(|&f| f <= k).saturating_sub(1);
        match self.used(j).binary_search_by(|l| l.0.cmp(&k)) {
            Ok(i) => Ok((j, i)),
            Err(i) => Err((j, i)),
        }
    }

    #[inline]
    fn at(&self, (j, i): FarPos) -> (i64, Qty) {
        self.items[self.order[j] * self.chunk + i]
    }

    #[inline]
    fn set_qty(&mut self, (j, i): FarPos, qty: Qty) {
        self.items[self.order[j] * self.chunk + i].1 = qty;
    }

    fn worst(&self) -> Option<i64> {
        self.firsts.first().copied()
    }

    fn best(&self) -> Option<(i64, Qty)> {
        self.order.last().map(|&c| self.items[c * self.chunk + self.lens[c] - 1])
    }

    /// A chunk from the pool (the bound above makes the pool enough; growing it rather than
    /// failing keeps the book exact should that ever be wrong).
    fn alloc(&mut self) -> usize {
        let c = self.free.pop().unwrap_or_else(|| {
            self.lens.push(0);
            self.items.resize(self.items.len() + self.chunk, (0, Qty::ZERO));
            self.lens.len() - 1
        });
        self.lens[c] = 0;
        c
    }

    /// Inserts at `pos` (from [`Far::find`]), splitting a full chunk in two.
    fn insert(&mut self, pos: FarPos, k: i64, qty: Qty) {
        let (mut j, mut i) = pos;
        if self.order.is_empty() {
            let c = self.alloc();
            self.order.push(c);
            self.firsts.push(k);
            (j, i) = (0, 0);
        }
        let c = self.order[j];
        if self.lens[c] == self.chunk {
            let (n, half) = (self.alloc(), self.chunk / 2);
            self.items.copy_within(c * self.chunk + half..(c + 1) * self.chunk, n * self.chunk);
            (self.lens[n], self.lens[c]) = (self.chunk - half, half);
            self.order.insert(j + 1, n);
            self.firsts.insert(j + 1, self.items[n * self.chunk].0);
            if i > half {
                (j, i) = (j + 1, i - half);
            }
        }
        let c = self.order[j];
        let (base, used) = (c * self.chunk, self.lens[c]);
        self.items.copy_within(base + i..base + used, base + i + 1);
        self.items[base + i] = (k, qty);
        self.firsts[j] = self.items[base].0;
        self.lens[c] += 1;
        self.len += 1;
    }

    /// Appends a level with a key above every other one.
    fn push(&mut self, k: i64, qty: Qty) {
        let c = match self.order.last() {
            Some(&c) if self.lens[c] < self.chunk => c,
            _ => {
                let c = self.alloc();
                self.order.push(c);
                self.firsts.push(k);
                c
            }
        };
        self.items[c * self.chunk + self.lens[c]] = (k, qty);
        self.lens[c] += 1;
        self.len += 1;
    }

    fn remove(&mut self, (j, i): FarPos) {
        let c = self.order[j];
        let (base, used) = (c * self.chunk, self.lens[c]);
        self.items.copy_within(base + i + 1..base + used, base + i);
        self.lens[c] -= 1;
        self.len -= 1;
        if self.lens[c] == 0 {
            self.order.remove(j);
            self.firsts.remove(j);
            self.free.push(c);
        } else {
            self.firsts[j] = self.items[base].0;
        }
        self.rebalance(j);
    }

    /// Merges chunk `j` with a neighbour while the two hold fewer than `chunk / 2` levels.
    fn rebalance(&mut self, mut j: usize) {
        let half = self.chunk / 2;
        let pair = |s: &Self, j: usize| s.lens[s.order[j]] + s.lens[s.order[j + 1]];
        loop {
            if j > 0 && j < self.order.len() && pair(self, j - 1) < half {
                self.merge(j - 1);
                j -= 1;
            } else if j + 1 < self.order.len() && pair(self, j) < half {
                self.merge(j);
            } else {
                return;
            }
        }
    }

    /// Moves chunk `j + 1`'s levels to the end of chunk `j` and frees it.
    fn merge(&mut self, j: usize) {
        let (a, b) = (self.order[j], self.order[j + 1]);
        let (la, lb) = (self.lens[a], self.lens[b]);
        self.items.copy_within(b * self.chunk..b * self.chunk + lb, a * self.chunk + la);
        (self.lens[a], self.lens[b]) = (la + lb, 0);
        self.order.remove(j + 1);
        self.firsts.remove(j + 1);
        self.free.push(b);
    }

    fn clear(&mut self) {
        for &c in &self.order {
            self.lens[c] = 0;
        }
        self.free.append(&mut self.order);
        self.firsts.clear();
        self.len = 0;
    }

    /// Levels ascending.
    fn iter(&self) -> impl Iterator<Item = (i64, Qty)> + '_ {
        (0..self.order.len()).flat_map(|j| self.used(j).iter().copied())
    }

    /// A cursor at the best level, for walking down with [`Far::prev`]: (chunks left, levels
    /// left in the last of them).
    fn top(&self) -> FarPos {
        let j = self.order.len();
        (j, j.checked_sub(1).map_or(0, |j| self.used(j).len()))
    }

    /// The level under a cursor from [`Far::top`], and the cursor moved one level down.
    #[inline]
    fn prev(&self, (j, i): FarPos) -> Option<((i64, Qty), FarPos)> {
        let (jj, ii) = (j.checked_sub(1)?, i.checked_sub(1)?);
        let l = self.at((jj, ii));
        let next = if ii > 0 { (j, ii) } else { (jj, jj.checked_sub(1).map_or(0, |k| self.used(k).len())) };
        Some((l, next))
    }
}

/// The dense part of a side: slot `i` holds the level whose key is `base + i * tick`.
#[derive(Debug, Clone)]
struct Window {
    tick: i64,
    /// `u64::MAX / tick`: a slot is found with a multiply, not a division (see [`Window::slot`]).
    magic: u64,
    base: i64,
    /// Quantity units per slot, meaningful only where `occupied` has the slot's bit: a
    /// delete clears the bit and leaves the slot as it was (one store miss fewer). Plain
    /// integers, so the allocation comes zeroed (`calloc`) instead of written when a book is made.
    slots: Vec<i64>,
    /// One bit per slot, set when the slot holds a level: the truth of which slots are levels,
    /// and the next level below or above is found 64 slots at a time (a deep window is mostly
    /// empty).
    occupied: Vec<u64>,
    count: usize,
    /// Highest and lowest occupied slots (meaningful when `count > 0`).
    best: usize,
    worst: usize,
}

impl Window {
    /// An empty window of `slots` slots (allocated here, once per side).
    fn new(slots: usize) -> Self {
        Self {
            tick: 1,
            magic: u64::MAX,
            base: 0,
            slots: vec![0; slots],
            occupied: vec![0; slots.div_ceil(64)],
            count: 0,
            best: 0,
            worst: 0,
        }
    }

    /// Puts the window on a grid (`tick > 0`).
    fn regrid(&mut self, tick: i64, base: i64) {
        (self.tick, self.base) = (tick, base);
        self.magic = u64::MAX / tick.unsigned_abs().max(1);
    }

    /// The slot of key `k`, if the window covers it on its grid.
    ///
    /// `q = d * magic / 2^64` is `d / tick` or one less (the magic number rounds down by
    /// less than one unit), so one conditional step makes it the exact quotient and remainder:
    /// a multiply instead of a 64-bit division on every delta.
    #[inline]
    fn slot(&self, k: i64) -> Option<usize> {
        let d = u64::try_from(k.checked_sub(self.base)?).ok()?;
        let tick = self.tick as u64;
        let mut q = ((u128::from(d) * u128::from(self.magic)) >> 64) as u64;
        let mut r = d - q * tick;
        if r >= tick {
            q += 1;
            r -= tick;
        }
        (r == 0 && q < self.slots.len() as u64).then_some(q as usize)
    }

    /// Whether slot `i` holds a level: its bit, not the slot itself. The bitmap (16 KiB a side)
    /// stays in cache where the 1 MiB of slots does not, so a delta only ever stores into its
    /// slot and the store buffer absorbs the miss instead of the pipeline waiting on a load.
    #[inline]
    fn holds(&self, i: usize) -> bool {
        self.occupied[i / 64] & (1 << (i % 64)) != 0
    }

    /// The quantity in slot `i`, which must hold a level (see [`Window::holds`]).
    #[inline]
    fn qty(&self, i: usize) -> Qty {
        Qty::from_units(self.slots[i])
    }

    #[inline]
    fn key(&self, i: usize) -> i64 {
        self.base + i as i64 * self.tick
    }

    /// Key of the highest slot.
    fn top(&self) -> i64 {
        self.key(self.slots.len() - 1)
    }

    /// The next occupied slot strictly below `i`.
    #[inline]
    fn below(&self, i: usize) -> Option<usize> {
        let (w, b) = (i / 64, i % 64);
        let here = self.occupied.get(w).map_or(0, |&m| m & ((1_u64 << b) - 1));
        if here != 0 {
            return Some(w * 64 + 63 - here.leading_zeros() as usize);
        }
        let j = self.occupied.get(..w)?.iter().rposition(|&m| m != 0)?;
        Some(j * 64 + 63 - self.occupied[j].leading_zeros() as usize)
    }

    /// The next occupied slot strictly above `i`.
    #[inline]
    fn above(&self, i: usize) -> Option<usize> {
        let i = i + 1;
        let (w, b) = (i / 64, i % 64);
        let here = self.occupied.get(w).map_or(0, |&m| m & (u64::MAX << b));
        if here != 0 {
            return Some(w * 64 + here.trailing_zeros() as usize);
        }
        let j = w + 1 + self.occupied.get(w + 1..)?.iter().position(|&m| m != 0)?;
        Some(j * 64 + self.occupied[j].trailing_zeros() as usize)
    }

    fn insert(&mut self, i: usize, qty: Qty) {
        self.slots[i] = qty.units();
        self.occupied[i / 64] |= 1 << (i % 64);
        if self.count == 0 {
            (self.best, self.worst) = (i, i);
        } else {
            self.best = self.best.max(i);
            self.worst = self.worst.min(i);
        }
        self.count += 1;
    }

    fn remove(&mut self, i: usize) {
        self.occupied[i / 64] &= !(1 << (i % 64));
        self.count -= 1;
        if self.count == 0 {
            return;
        }
        if i == self.best {
            self.best = self.below(i).unwrap_or(self.worst);
        }
        if i == self.worst {
            self.worst = self.above(i).unwrap_or(self.best);
        }
    }

    fn clear(&mut self) {
        if self.count > 0 {
            self.occupied[self.worst / 64..=self.best / 64].fill(0);
        }
        self.count = 0;
    }
}

/// One side of the book.
#[derive(Debug, Clone)]
struct Ladder {
    side: Side,
    cap: usize,
    len: usize,
    window_slots: usize,
    window: Option<Window>,
    far: Far,
    /// Tick inference before the window opens: the first key, the gcd of distances to it and
    /// how many distinct prices went into it.
    anchor: Option<i64>,
    gcd: i64,
    samples: u32,
    /// Scratch for rebuilding the window, and the window until it opens (both allocated at
    /// construction, so opening the window allocates nothing).
    scratch: Vec<(i64, Qty)>,
    spare: Option<Window>,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ladder {
    fn new(side: Side, cap: usize, tick: Option<Price>, window_slots: usize, far_chunk: usize) -> Self {
        let mut ladder = Self {
            side,
            cap,
            len: 0,
            window_slots,
            window: None,
            far: Far::new(cap, far_chunk),
            anchor: None,
            gcd: 0,
            samples: 0,
            scratch: Vec::with_capacity(cap),
            spare: Some(Window::new(window_slots)),
        };
        if let Some(t) = tick.filter(|t| t.units() > 0) {
            ladder.gcd = t.units();
            ladder.samples = TICK_SAMPLE;
        }
        ladder
    }

    /// Sort key: larger is better on both sides.
    #[inline]
    fn key(&self, p: Price) -> i64 {
        match self.side {
            Side::Buy => p.units(),
            Side::Sell => p.units().saturating_neg(),
        }
    }

    #[inline]
    fn price(&self, k: i64) -> Price {
        Price::from_units(match self.side {
            Side::Buy => k,
            Side::Sell => k.saturating_neg(),
        })
    }

    #[inline]
    fn get(&self, k: i64) -> Qty {
        if let Some(w) = &self.window {
            if let Some(i) = w.slot(k) {
                return if w.holds(i) { w.qty(i) } else { Qty::ZERO };
            }
        }
        self.far.find(k).map_or(Qty::ZERO, |p| self.far.at(p).1)
    }

    /// Sets a level; zero deletes. Returns true when a level had to be evicted or dropped.
    #[inline]
    fn set(&mut self, price: Price, qty: Qty) -> bool {
        let k = self.key(price);
        if let Some(w) = self.window.as_mut() {
            if let Some(i) = w.slot(k) {
                if w.holds(i) {
                    if qty.is_zero() {
                        w.remove(i);
                        self.len -= 1;
                        if w.count == 0 && self.far.len > 0 {
                            self.recenter(None);
                        }
                    } else {
                        w.slots[i] = qty.units();
                    }
                    return false;
                }
                if qty.is_zero() {
                    return false;
                }
                let evicted = self.len == self.cap;
                if evicted && !self.evict_below(k) {
                    return true;
                }
                if let Some(w) = self.window.as_mut() {
                    w.insert(i, qty);
                }
                self.len += 1;
                return evicted;
            }
        }
        self.set_far(k, qty)
    }

    fn set_far(&mut self, k: i64, qty: Qty) -> bool {
        match self.far.find(k) {
            Ok(p) if qty.is_zero() => {
                self.far.remove(p);
                self.len -= 1;
                false
            }
            Ok(p) => {
                self.far.set_qty(p, qty);
                false
            }
            Err(_) if qty.is_zero() => false,
            Err(_) => {
                let evicted = self.len == self.cap;
                if evicted && !self.evict_below(k) {
                    return true;
                }
                // Eviction may have shifted the far levels.
                let p = self.far.find(k).unwrap_or_else(|p| p);
                self.far.insert(p, k, qty);
                self.len += 1;
                self.learn(k);
                match &self.window {
                    Some(w) if k > w.top() || w.count == 0 => self.recenter(Some(k)),
                    Some(w) if k > w.base && (k - w.base) % w.tick != 0 => {
                        // Inside the window but off its grid: the tick was a multiple of the
                        // real one. Refine it and rebuild.
                        self.gcd = gcd(w.tick, k - w.base);
                        self.recenter(None);
                    }
                    _ => {}
                }
                evicted
            }
        }
    }

    /// Feeds the tick inference; opens the window once enough distinct prices were seen.
    fn learn(&mut self, k: i64) {
        if self.window.is_some() {
            return;
        }
        match self.anchor {
            None => self.anchor = Some(k),
            Some(a) => {
                if let Some(d) = k.checked_sub(a).and_then(i64::checked_abs) {
                    self.gcd = gcd(self.gcd, d);
                    self.samples += 1;
                }
            }
        }
        if self.samples >= TICK_SAMPLE {
            self.recenter(None);
        }
    }

    /// Removes the worst level if it is worse than `k`; false when `k` itself is the worst.
    fn evict_below(&mut self, k: i64) -> bool {
        let far_worst = self.far.worst();
        let window_worst = self.window.as_ref().filter(|w| w.count > 0).map(|w| (w.key(w.worst), w.worst));
        match (far_worst, window_worst) {
            (Some(f), Some((wk, _))) if f < wk => {
                if k < f {
                    return false;
                }
                self.far.remove((0, 0));
            }
            (_, Some((wk, i))) => {
                if k < wk {
                    return false;
                }
                if let Some(w) = self.window.as_mut() {
                    w.remove(i);
                }
            }
            (Some(f), None) => {
                if k < f {
                    return false;
                }
                self.far.remove((0, 0));
            }
            (None, None) => return false,
        }
        self.len -= 1;
        true
    }

    /// Rebuilds the window with the current tick so that `best` (or the best level held) sits
    /// three quarters of the way up, leaving room for the touch to improve.
    fn recenter(&mut self, best: Option<i64>) {
        let tick = self.gcd;
        if tick <= 0 || tick > i64::MAX / (4 * self.window_slots as i64) {
            return;
        }
        let Some(best) = best.or_else(|| self.best_entry().map(|l| l.0)) else {
            return;
        };
        let base = best.saturating_sub((3 * self.window_slots / 4) as i64 * tick);
        if base.checked_add(self.window_slots as i64 * tick).is_none() {
            // Prices at the edge of the range: the sorted part holds them.
            return;
        }
        // Every level, ascending, into the scratch buffer.
        self.scratch.clear();
        self.scratch.extend(self.far.iter());
        if let Some(w) = self.window.as_mut() {
            let mut i = (w.count > 0).then_some(w.worst);
            while let Some(j) = i {
                self.scratch.push((w.key(j), w.qty(j)));
                i = if j == w.best { None } else { w.above(j) };
            }
            w.clear();
        }
        self.scratch.sort_unstable_by_key(|l| l.0);
        let (spare, slots) = (&mut self.spare, self.window_slots);
        let w = self.window.get_or_insert_with(|| spare.take().unwrap_or_else(|| Window::new(slots)));
        w.regrid(tick, base);
        self.far.clear();
        for &(k, qty) in &self.scratch {
            match w.slot(k) {
                Some(i) => w.insert(i, qty),
                None => self.far.push(k, qty),
            }
        }
    }

    /// The best level as `(key, qty)`.
    #[inline]
    fn best_entry(&self) -> Option<(i64, Qty)> {
        let far = self.far.best();
        let window = self.window.as_ref().filter(|w| w.count > 0).map(|w| (w.key(w.best), w.qty(w.best)));
        match (far, window) {
            (Some(f), Some(w)) => Some(if f.0 > w.0 { f } else { w }),
            (f, w) => f.or(w),
        }
    }

    #[inline]
    fn best(&self) -> Option<Level> {
        self.best_entry().map(|(k, qty)| Level { price: self.price(k), qty })
    }

    fn clear(&mut self) {
        self.far.clear();
        if let Some(w) = self.window.as_mut() {
            w.clear();
        }
        self.len = 0;
    }

    /// Levels from best to worst.
    fn iter(&self) -> LevelIter<'_> {
        let next_slot = self.window.as_ref().filter(|w| w.count > 0).map(|w| w.best);
        LevelIter { ladder: self, far: self.far.top(), next_slot }
    }
}

/// Levels of one side from best to worst: the window and the far levels merged.
#[derive(Debug, Clone)]
pub struct LevelIter<'a> {
    ladder: &'a Ladder,
    /// Cursor at the next far level (see [`Far::top`]).
    far: FarPos,
    /// The next occupied window slot to return.
    next_slot: Option<usize>,
}

impl Iterator for LevelIter<'_> {
    type Item = Level;

    #[inline]
    fn next(&mut self) -> Option<Level> {
        let far = self.ladder.far.prev(self.far);
        let slot = match (self.next_slot, self.ladder.window.as_ref()) {
            (Some(i), Some(w)) => Some((i, w)),
            _ => None,
        };
        let (k, qty) = match (far, slot) {
            (Some((f, _)), Some((i, w))) if f.0 < w.key(i) => {
                self.next_slot = if i == w.worst { None } else { w.below(i) };
                (w.key(i), w.qty(i))
            }
            (Some((f, next)), _) => {
                self.far = next;
                f
            }
            (None, Some((i, w))) => {
                self.next_slot = if i == w.worst { None } else { w.below(i) };
                (w.key(i), w.qty(i))
            }
            (None, None) => return None,
        };
        Some(Level { price: self.ladder.price(k), qty })
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
    /// A book keeping up to `max_levels` per side (at least [`MIN_BOOK_LEVELS`]); the tick is
    /// inferred from the prices seen.
    pub fn new(max_levels: usize) -> Self {
        Self::with_window(max_levels, None, WINDOW_SLOTS)
    }

    /// A book on a known price grid (the instrument's tick size).
    pub fn with_tick(max_levels: usize, tick: Price) -> Self {
        Self::with_window(max_levels, Some(tick), WINDOW_SLOTS)
    }

    fn with_window(max_levels: usize, tick: Option<Price>, slots: usize) -> Self {
        let cap = max_levels.max(MIN_BOOK_LEVELS);
        Self {
            bids: Ladder::new(Side::Buy, cap, tick, slots, FAR_CHUNK),
            asks: Ladder::new(Side::Sell, cap, tick, slots, FAR_CHUNK),
            sequence: 0,
            evicted: 0,
        }
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
            BookAction::Delete => {
                ladder.set(d.price, Qty::ZERO);
            }
            BookAction::Clear => {
                self.bids.clear();
                self.asks.clear();
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
    pub fn levels(&self, side: Side) -> LevelIter<'_> {
        self.ladder(side).iter()
    }

    /// Displayed quantity at `price` on `side` (zero when there is no such level).
    pub fn qty_at(&self, side: Side, price: Price) -> Qty {
        let ladder = self.ladder(side);
        ladder.get(ladder.key(price))
    }

    pub fn depth(&self, side: Side) -> usize {
        self.ladder(side).len
    }

    #[inline]
    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
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

    /// The sorted-array semantics as a reference: a map by key (larger is better) with the
    /// same rule when full (drop a level worse than all, else evict the worst).
    fn reference_set(m: &mut std::collections::BTreeMap<i64, i64>, cap: usize, k: i64, qty: i64) -> bool {
        if qty == 0 {
            m.remove(&k);
            return false;
        }
        if m.contains_key(&k) || m.len() < cap {
            m.insert(k, qty);
            return false;
        }
        if m.keys().next().is_some_and(|&w| k < w) {
            return true;
        }
        m.pop_first();
        m.insert(k, qty);
        true
    }

    fn small_book(cap: usize, slots: usize, tick: Option<i64>) -> OrderBook {
        let tick = tick.map(Price::from_units);
        OrderBook {
            bids: Ladder::new(Side::Buy, cap, tick, slots, 4),
            asks: Ladder::new(Side::Sell, cap, tick, slots, 4),
            sequence: 0,
            evicted: 0,
        }
    }

    #[test]
    fn window_opens_after_the_tick_is_inferred_and_refines_it() {
        let mut b = small_book(100, 16, None);
        for i in 0..40 {
            b.apply(&delta(Side::Buy, 1_000 + 10 * i, 1));
        }
        assert_eq!(b.bids.window.as_ref().map(|w| w.tick), Some(10));
        // Off the inferred grid but inside the window: the tick shrinks, nothing is lost.
        b.apply(&delta(Side::Buy, 1_385, 7));
        assert_eq!(b.bids.window.as_ref().map(|w| w.tick), Some(5));
        assert_eq!(b.qty_at(Side::Buy, Price::from_units(1_385)), Qty::from_units(7));
        assert_eq!(b.depth(Side::Buy), 41);
        assert_eq!(b.best_bid().map(|l| l.price.units()), Some(1_390));
    }

    #[test]
    fn prices_at_the_edge_of_the_range_stay_exact() {
        let mut b = small_book(100, 16, Some(1));
        for px in [i64::MAX - 3, i64::MAX - 1, i64::MAX, 5, i64::MAX - 2] {
            b.apply(&delta(Side::Buy, px, 1));
            b.apply(&delta(Side::Sell, px, 1));
        }
        let bids: Vec<i64> = b.levels(Side::Buy).map(|l| l.price.units()).collect();
        assert_eq!(bids, vec![i64::MAX, i64::MAX - 1, i64::MAX - 2, i64::MAX - 3, 5]);
        let asks: Vec<i64> = b.levels(Side::Sell).map(|l| l.price.units()).collect();
        assert_eq!(asks, vec![5, i64::MAX - 3, i64::MAX - 2, i64::MAX - 1, i64::MAX]);
    }

    proptest! {
        // The window finds a slot with a multiply; it must agree with the division everywhere:
        // on and off the grid, at the window's ends, for any tick and any distance.
        #[test]
        fn slot_by_multiply_equals_division(
            tick in prop_oneof![1_i64..20, 1_i64..=i64::MAX / 4, Just(1_000_000_i64)],
            base in any::<i64>(),
            q in 0_i64..64,
            off in prop_oneof![Just(0_i64), -3_i64..3, any::<i64>()],
        ) {
            let mut w = Window::new(48);
            w.regrid(tick, base);
            let k = base.saturating_add(q.saturating_mul(tick)).saturating_add(off);
            let want = k.checked_sub(base).filter(|d| *d >= 0 && d % tick == 0 && d / tick < 48).map(|d| (d / tick) as usize);
            prop_assert_eq!(w.slot(k), want);
        }

        // The price-indexed ladder against the reference on tiny windows and capacities, so
        // every path runs: window and far levels, off-grid prices, the touch leaving the
        // window, eviction from either part, clears.
        #[test]
        fn ladder_matches_the_sorted_reference(
            cap in 3_usize..40,
            slots in 4_usize..48,
            given_tick in proptest::option::of(1_i64..4),
            ops in proptest::collection::vec((0_u8..40, any::<bool>(), -150_i64..150, 0_i64..3), 0..500),
        ) {
            let mut b = small_book(cap, slots, given_tick.map(|t| t * 5));
            let pool = b.bids.far.lens.len();
            let (mut bids, mut asks) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new());
            let mut evicted = 0;
            for (kind, buy, px, qty) in ops {
                if kind == 0 {
                    b.apply(&BookDelta { action: BookAction::Clear, ..delta(Side::Buy, 0, 0) });
                    bids.clear();
                    asks.clear();
                    continue;
                }
                // Mostly on a 5-unit grid, sometimes off it.
                let px = 10_000 + px * 5 + i64::from(kind == 1);
                let side = if buy { Side::Buy } else { Side::Sell };
                b.apply(&delta(side, px, qty));
                let (m, k) = if buy { (&mut bids, px) } else { (&mut asks, -px) };
                evicted += u64::from(reference_set(m, cap, k, qty));
                let got: Vec<(i64, i64)> = b.levels(side).map(|l| (l.price.units(), l.qty.units())).collect();
                let want: Vec<(i64, i64)> = m.iter().rev().map(|(&k, &q)| (if buy { k } else { -k }, q)).collect();
                prop_assert_eq!(&got, &want);
                prop_assert_eq!(b.depth(side), want.len());
                let best = if buy { b.best_bid() } else { b.best_ask() };
                prop_assert_eq!(best.map(|l| (l.price.units(), l.qty.units())), want.first().copied());
                prop_assert_eq!(b.qty_at(side, Price::from_units(px)).units(), want.iter().find(|l| l.0 == px).map_or(0, |l| l.1));
                prop_assert_eq!(b.evicted(), evicted);
                // The far part's chunk pool is never outgrown (no allocation while applying).
                prop_assert_eq!((b.bids.far.lens.len(), b.asks.far.lens.len()), (pool, pool));
            }
        }

        // The chunked far part alone against a sorted map: inserts, updates, deletes (also
        // of the worst level, as eviction does), appends after a clear, both walks.
        #[test]
        fn far_chunks_match_a_sorted_map(
            chunk in 2_usize..12,
            ops in proptest::collection::vec((0_u8..20, 0_i64..120, 0_i64..3), 0..600),
        ) {
            let cap = 64;
            let mut far = Far::new(cap, chunk);
            let pool = far.lens.len();
            let mut m = std::collections::BTreeMap::new();
            for (kind, k, qty) in ops {
                match kind {
                    0 => {
                        // Rebuild by appends, as the window's recentering does.
                        let keep: Vec<(i64, Qty)> = far.iter().filter(|l| l.0 % 3 != 0).collect();
                        far.clear();
                        m.retain(|k, _| k % 3 != 0);
                        for (k, q) in keep {
                            far.push(k, q);
                        }
                    }
                    1 if far.len > 0 => {
                        far.remove((0, 0));
                        let w = *m.keys().next().unwrap();
                        m.remove(&w);
                    }
                    // Deletes outnumber inserts in some runs, so chunks shrink and merge.
                    _ => match (far.find(k), if kind >= 12 { 0 } else { qty }) {
                        (Ok(p), 0) => {
                            far.remove(p);
                            m.remove(&k);
                        }
                        (Ok(p), q) => {
                            far.set_qty(p, Qty::from_units(q));
                            m.insert(k, q);
                        }
                        (Err(_), 0) => {}
                        (Err(p), q) => {
                            if m.len() < cap {
                                far.insert(p, k, Qty::from_units(q));
                                m.insert(k, q);
                            }
                        }
                    },
                }
                let got: Vec<(i64, i64)> = far.iter().map(|(k, q)| (k, q.units())).collect();
                let want: Vec<(i64, i64)> = m.iter().map(|(&k, &q)| (k, q)).collect();
                prop_assert_eq!(&got, &want);
                let mut down = Vec::new();
                let mut cur = far.top();
                while let Some((l, next)) = far.prev(cur) {
                    down.push((l.0, l.1.units()));
                    cur = next;
                }
                prop_assert!(down.iter().rev().eq(want.iter()));
                prop_assert_eq!(far.len, want.len());
                prop_assert_eq!(far.worst(), want.first().map(|l| l.0));
                prop_assert_eq!(far.best().map(|l| (l.0, l.1.units())), want.last().copied());
                prop_assert!(far.order.iter().all(|&c| far.lens[c] > 0));
                prop_assert!(far.order.iter().map(|&c| far.items[c * chunk].0).eq(far.firsts.iter().copied()));
                prop_assert!(far.order.windows(2).all(|p| far.lens[p[0]] + far.lens[p[1]] >= chunk / 2));
                prop_assert_eq!(far.lens.len(), pool);
            }
        }

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
