//! What risk remembers between intents: positions and marks per instrument (exposure), our live
//! orders (open and in-flight counts, self-trade prevention, cancel-on-halt), and token buckets
//! per venue and per instrument (order and cancel rates).
//!
//! Everything is preallocated when instruments are registered at start-up; the per-intent path
//! only reads and updates fixed slots.

use argus_core::{ClientOrderId, InstrumentId, Money, OrderIntent, Side, Venue, FIXED_SCALE};

/// A sustained rate with a burst allowance: a token bucket of `burst` tokens refilled at
/// `per_sec` tokens per second. Venue limits map onto it directly (Binance spot: 10 orders/s,
/// burst 100 per 10 s; Kraken's decaying counter: `per_sec` = decay, `burst` = max counter).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: u32,
}

/// Tokens are counted in pico-tokens so refill stays in integers: at `per_sec` tokens per
/// second the bucket gains `per_sec * 1000` pico-tokens per nanosecond.
const PICO: u64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    pico: u64,
    cap: u64,
    per_ns: u64,
    last: u64,
}

impl TokenBucket {
    pub(crate) fn new(r: Rate) -> Self {
        let cap = u64::from(r.burst).saturating_mul(PICO);
        Self { pico: cap, cap, per_ns: (r.per_sec * 1000.0).round() as u64, last: 0 }
    }

    fn available(&self, now: u64) -> u64 {
        let gained = u128::from(now.saturating_sub(self.last)) * u128::from(self.per_ns);
        (u128::from(self.pico) + gained).min(u128::from(self.cap)) as u64
    }

    pub(crate) fn can_take(&self, now: u64) -> bool {
        self.available(now) >= PICO
    }

    /// Takes one token (or what is left, never below zero).
    pub(crate) fn take(&mut self, now: u64) {
        self.pico = self.available(now).saturating_sub(PICO);
        self.last = self.last.max(now);
    }
}

/// Per-instrument state risk keeps.
#[derive(Debug, Clone, Copy)]
struct Holding {
    venue: Venue,
    /// Position in 1e-9 base units, from fills.
    qty: i64,
    /// Last mark (mid) in 1e-9 quote units; 0 before any.
    mark: i64,
    orders: Option<TokenBucket>,
    cancels: Option<TokenBucket>,
}

/// One of our orders the venue may still fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveOrder {
    pub id: ClientOrderId,
    pub instrument: InstrumentId,
    pub side: Side,
    /// Limit price, 1e-9 units.
    pub price: i64,
    /// Acknowledged as resting on the book (else still in flight).
    pub resting: bool,
}

/// Exposure limits in quote currency; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExposureLimits {
    /// Sum of |position x mark| over one venue's instruments.
    pub max_gross_per_venue: Option<Money>,
    /// |Sum of position x mark| over one venue's instruments.
    pub max_net_per_venue: Option<Money>,
    pub max_gross_total: Option<Money>,
    pub max_net_total: Option<Money>,
}

/// Gross and net notional, in 1e-9 quote units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exposure {
    pub gross: i128,
    pub net: i128,
}

impl Exposure {
    fn add(&mut self, notional: i128) {
        self.gross += notional.abs();
        self.net += notional;
    }
}

#[derive(Debug)]
pub(crate) struct Ledger {
    holdings: Vec<Option<Holding>>,
    venue_orders: [Option<TokenBucket>; Venue::ALL.len()],
    venue_cancels: [Option<TokenBucket>; Venue::ALL.len()],
    live: Vec<LiveOrder>,
    in_flight: u32,
    resting: u32,
}

fn notional(qty: i64, mark: i64) -> i128 {
    i128::from(qty) * i128::from(mark) / i128::from(FIXED_SCALE)
}

impl Ledger {
    pub(crate) fn new(venue_orders: Option<Rate>, venue_cancels: Option<Rate>, live_capacity: usize) -> Self {
        Self {
            holdings: Vec::new(),
            venue_orders: [venue_orders.map(TokenBucket::new); Venue::ALL.len()],
            venue_cancels: [venue_cancels.map(TokenBucket::new); Venue::ALL.len()],
            live: Vec::with_capacity(live_capacity),
            in_flight: 0,
            resting: 0,
        }
    }

    pub(crate) fn register(&mut self, id: InstrumentId, venue: Venue, orders: Option<Rate>, cancels: Option<Rate>) {
        let i = id.0 as usize;
        if self.holdings.len() <= i {
            self.holdings.resize(i + 1, None);
        }
        self.holdings[i] = Some(Holding {
            venue,
            qty: 0,
            mark: 0,
            orders: orders.map(TokenBucket::new),
            cancels: cancels.map(TokenBucket::new),
        });
    }

    pub(crate) fn venue_of(&self, id: InstrumentId) -> Option<Venue> {
        self.holding(id).map(|h| h.venue)
    }

    fn holding(&self, id: InstrumentId) -> Option<&Holding> {
        self.holdings.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn holding_mut(&mut self, id: InstrumentId) -> Option<&mut Holding> {
        self.holdings.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    pub(crate) fn set_mark(&mut self, id: InstrumentId, mark: i64) {
        if let Some(h) = self.holding_mut(id) {
            h.mark = mark;
        }
    }

    pub(crate) fn on_fill(&mut self, id: InstrumentId, side: Side, qty: i64) {
        if let Some(h) = self.holding_mut(id) {
            h.qty = h.qty.saturating_add(qty.saturating_mul(side.sign()));
        }
    }

    pub(crate) fn position(&self, id: InstrumentId) -> i64 {
        self.holding(id).map_or(0, |h| h.qty)
    }

    /// Exposure of one venue (`Some`) or of everything (`None`), with `delta` base units added
    /// to `instrument` (valued at its mark, or at `fallback` before it has one).
    pub(crate) fn exposure(
        &self,
        venue: Option<Venue>,
        instrument: InstrumentId,
        delta: i64,
        fallback: i64,
    ) -> Exposure {
        let mut e = Exposure::default();
        for (i, h) in self.holdings.iter().enumerate() {
            let Some(h) = h else { continue };
            if venue.is_some_and(|v| v != h.venue) {
                continue;
            }
            let (qty, mark) = if i == instrument.0 as usize {
                (h.qty.saturating_add(delta), if h.mark > 0 { h.mark } else { fallback })
            } else {
                (h.qty, h.mark)
            };
            e.add(notional(qty, mark));
        }
        e
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight
    }

    pub(crate) fn resting(&self) -> u32 {
        self.resting
    }

    pub(crate) fn live(&self) -> &[LiveOrder] {
        &self.live
    }

    /// True when `o` would trade against one of our own live orders.
    pub(crate) fn would_self_trade(&self, o: &OrderIntent) -> bool {
        let limit = o.limit.units();
        self.live.iter().any(|l| {
            l.instrument == o.instrument
                && l.side != o.side
                && match o.side {
                    Side::Buy => limit >= l.price,
                    Side::Sell => limit <= l.price,
                }
        })
    }

    pub(crate) fn rate_ok(&self, venue: Venue, id: InstrumentId, now: u64, cancel: bool) -> bool {
        let (v, i) = if cancel {
            (&self.venue_cancels[venue.index()], self.holding(id).and_then(|h| h.cancels.as_ref()))
        } else {
            (&self.venue_orders[venue.index()], self.holding(id).and_then(|h| h.orders.as_ref()))
        };
        v.as_ref().is_none_or(|b| b.can_take(now)) && i.is_none_or(|b| b.can_take(now))
    }

    pub(crate) fn take_rate(&mut self, venue: Venue, id: InstrumentId, now: u64, cancel: bool) {
        let v = if cancel { &mut self.venue_cancels[venue.index()] } else { &mut self.venue_orders[venue.index()] };
        if let Some(b) = v {
            b.take(now);
        }
        if let Some(h) = self.holding_mut(id) {
            let i = if cancel { &mut h.cancels } else { &mut h.orders };
            if let Some(b) = i {
                b.take(now);
            }
        }
    }

    pub(crate) fn on_sent(&mut self, id: ClientOrderId, o: &OrderIntent) {
        self.live.push(LiveOrder {
            id,
            instrument: o.instrument,
            side: o.side,
            price: o.limit.units(),
            resting: false,
        });
        self.in_flight += 1;
    }

    pub(crate) fn on_resting(&mut self, id: ClientOrderId) {
        if let Some(l) = self.live.iter_mut().find(|l| l.id == id && !l.resting) {
            l.resting = true;
            self.in_flight -= 1;
            self.resting += 1;
        }
    }

    pub(crate) fn on_closed(&mut self, id: ClientOrderId) {
        if let Some(pos) = self.live.iter().position(|l| l.id == id) {
            let l = self.live.swap_remove(pos);
            if l.resting {
                self.resting -= 1;
            } else {
                self.in_flight -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_refills_at_its_rate_up_to_its_burst() {
        let mut b = TokenBucket::new(Rate { per_sec: 2.0, burst: 3 });
        let t0 = 10_000_000_000;
        for _ in 0..3 {
            assert!(b.can_take(t0));
            b.take(t0);
        }
        assert!(!b.can_take(t0), "burst spent");
        assert!(!b.can_take(t0 + 499_999_999), "half a second minus 1 ns is not a token at 2/s");
        assert!(b.can_take(t0 + 500_000_000));
        b.take(t0 + 500_000_000);
        assert!(!b.can_take(t0 + 500_000_000));
        assert!(b.can_take(t0 + 100_000_000_000));
        // Refill stops at the burst.
        for _ in 0..3 {
            b.take(t0 + 100_000_000_000);
        }
        assert!(!b.can_take(t0 + 100_000_000_000));
    }

    #[test]
    fn fractional_rates_are_exact_enough() {
        // Kraken-style 0.33 tokens/s: one token after 3.0303 s.
        let mut b = TokenBucket::new(Rate { per_sec: 0.33, burst: 1 });
        b.take(0);
        assert!(!b.can_take(3_030_000_000));
        assert!(b.can_take(3_031_000_000));
    }

    #[test]
    fn exposure_sums_per_venue_and_in_total() {
        let mut l = Ledger::new(None, None, 4);
        l.register(InstrumentId(0), Venue::BinanceSpot, None, None);
        l.register(InstrumentId(1), Venue::Okx, None, None);
        l.set_mark(InstrumentId(0), 100 * FIXED_SCALE);
        l.set_mark(InstrumentId(1), 50 * FIXED_SCALE);
        l.on_fill(InstrumentId(0), Side::Buy, 2 * FIXED_SCALE);
        l.on_fill(InstrumentId(1), Side::Sell, 3 * FIXED_SCALE);
        let q = i128::from(FIXED_SCALE);
        assert_eq!(l.exposure(None, InstrumentId(0), 0, 0), Exposure { gross: 350 * q, net: 50 * q });
        assert_eq!(l.exposure(Some(Venue::Okx), InstrumentId(0), 0, 0), Exposure { gross: 150 * q, net: -150 * q });
        assert_eq!(
            l.exposure(Some(Venue::BinanceSpot), InstrumentId(0), -FIXED_SCALE, 0),
            Exposure { gross: 100 * q, net: 100 * q }
        );
    }
}
