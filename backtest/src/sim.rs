//! The simulated exchange: the paper venue of live runs and the venue of backtests.
//!
//! It sits beside the hot thread and sees every market event twice: [`SimExchange::before_event`]
//! (the venue handles the requests that reached it before the event happened there, against the
//! book as it stood) and [`SimExchange::after_event`] (trades and book changes work through our
//! resting orders). Clocks:
//!
//! - local time is an event's receive time (its exchange time when none was recorded);
//! - venue time is local time minus the market-data latency: a constant, or `recorded`, the
//!   event's own exchange time;
//! - a request sent at local time `t` reaches the venue at `t + order latency` (a constant, or
//!   `recorded`: the latest receive-minus-exchange delay seen), and the venue's answer comes back
//!   after the same latency.
//!
//! Taker orders walk the book levels up to their limit; what we take is remembered per level until
//! the venue's own data next changes that level, so repeated orders cannot take the same liquidity
//! twice. Resting limit orders join the back of their level's queue: trades at the level eat the
//! queue ahead of us first; cancels ahead of us are modelled `conservative` (never: the queue ahead
//! only shrinks when the level shrinks below it) or `prob[:n]` (hftbacktest's power model: a
//! decrease is split between ahead and behind in proportion to `behind^n` and `ahead^n`). A trade
//! through our price, or the opposite side crossing it, fills the whole remainder. Maker and taker
//! fills pay their own fees (negative fees are rebates).
//!
//! Nothing here allocates per event: buffers are preallocated and only grow (never drop) if a run
//! keeps more orders in flight than they hold.

use std::collections::VecDeque;

use argus_core::{
    notional_units, Approved, ClientOrderId, CloseReason, ExecError, ExecReport, Executor, Fill, MarketEvent,
    MarketEventKind, Money, OrderBook, OrderIntent, Price, Qty, Side, TimeInForce, UnixNanos, FIXED_SCALE,
};

/// Requests the venue can have in flight before `submit` answers [`ExecError::QueueFull`].
pub const MAX_PENDING: usize = 4096;

/// A latency model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Nanoseconds.
    Constant(u64),
    /// The recorded receive-minus-exchange delay of the market data.
    Recorded,
}

impl Latency {
    /// `recorded`, or a duration: `250us`, `3ms`, `1s`, `1500ns` or bare nanoseconds.
    ///
    /// # Errors
    /// Anything else, with the text.
    pub fn parse(s: &str) -> Result<Self, SimConfigError> {
        if s == "recorded" {
            return Ok(Latency::Recorded);
        }
        let (num, mult) = [("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)]
            .iter()
            .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n, *m)))
            .unwrap_or((s, 1));
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .map(Latency::Constant)
            .ok_or_else(|| SimConfigError(format!("latency `{s}`: expected `recorded` or a duration like 250us")))
    }
}

/// How cancels ahead of a resting order are estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QueueModel {
    /// Only trades at our price move us forward; the queue ahead shrinks with the level, never more.
    Conservative,
    /// A level decrease is split between the queue ahead and behind (power `n`).
    Probabilistic { power: f64 },
}

impl QueueModel {
    /// `conservative`, `prob` (power 3) or `prob:<n>`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<Self, SimConfigError> {
        match s.split_once(':') {
            None if s == "conservative" => Ok(QueueModel::Conservative),
            None if s == "prob" => Ok(QueueModel::Probabilistic { power: 3.0 }),
            Some(("prob", n)) => match n.parse::<f64>() {
                Ok(power) if power.is_finite() && power > 0.0 => Ok(QueueModel::Probabilistic { power }),
                _ => Err(SimConfigError(format!("queue model `{s}`: the power must be a positive number"))),
            },
            _ => Err(SimConfigError(format!("queue model `{s}`: expected conservative, prob or prob:<n>"))),
        }
    }
}

/// A bad simulator setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SimConfigError(pub String);

/// Settings of the simulated exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    pub order_latency: Latency,
    pub md_latency: Latency,
    pub queue: QueueModel,
    /// Fees in parts per million of notional (1 bp = 100); negative is a rebate.
    pub maker_fee_ppm: i64,
    pub taker_fee_ppm: i64,
    /// Remember liquidity we took until the venue's data next changes the level.
    pub deplete: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            order_latency: Latency::Constant(0),
            md_latency: Latency::Constant(0),
            queue: QueueModel::Conservative,
            maker_fee_ppm: 0,
            taker_fee_ppm: 1_000,
            deplete: true,
        }
    }
}

/// Converts basis points (as users write fees) to parts per million.
pub fn bps_to_ppm(bps: f64) -> i64 {
    (bps * 100.0).round() as i64
}

/// What the simulator did, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimStats {
    pub orders: u64,
    pub cancels: u64,
    pub taker_fills: u64,
    pub maker_fills: u64,
    /// Immediate-or-cancel orders that left the venue with a remainder unfilled.
    pub expired: u64,
    pub cancelled: u64,
    /// Cancels that arrived after their order was done.
    pub cancel_rejects: u64,
    /// Most orders resting at once.
    pub max_resting: u64,
}

#[derive(Debug, Clone, Copy)]
enum Request {
    New(ClientOrderId, OrderIntent),
    Cancel(ClientOrderId),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    arrive: u64,
    req: Request,
}

#[derive(Debug, Clone, Copy)]
struct Resting {
    id: ClientOrderId,
    o: OrderIntent,
    left: i64,
    /// Estimated quantity ahead of us in the level's queue.
    ahead: i64,
    /// The level's displayed quantity when we last looked.
    level: i64,
}

#[derive(Debug, Clone, Copy)]
struct Taken {
    side: Side,
    price: Price,
    qty: i64,
}

/// See the module docs.
#[derive(Debug)]
pub struct SimExchange {
    cfg: SimConfig,
    next_id: u64,
    local_now: u64,
    /// Latest receive-minus-exchange delay, for [`Latency::Recorded`].
    delay: u64,
    pending: VecDeque<Pending>,
    resting: Vec<Resting>,
    /// Reports with the local time they arrive, in arrival order.
    reports: VecDeque<(u64, ExecReport)>,
    taken: Vec<Taken>,
    stats: SimStats,
}

impl SimExchange {
    pub fn new(cfg: SimConfig) -> Self {
        Self {
            cfg,
            next_id: 1,
            local_now: 0,
            delay: 0,
            pending: VecDeque::with_capacity(MAX_PENDING),
            resting: Vec::with_capacity(1024),
            reports: VecDeque::with_capacity(4096),
            taken: Vec::with_capacity(256),
            stats: SimStats::default(),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// Orders resting on the simulated book now.
    pub fn resting(&self) -> usize {
        self.resting.len()
    }

    /// The local clock (latest event receive time or timer).
    pub fn local_now(&self) -> UnixNanos {
        UnixNanos(self.local_now)
    }

    /// A timer fires at local time `t`: requests sent now leave at `t`.
    pub fn set_local_time(&mut self, t: UnixNanos) {
        self.local_now = self.local_now.max(t.0);
    }

    #[inline]
    fn local_of(ev: &MarketEvent) -> u64 {
        if ev.ts_recv.0 != 0 {
            ev.ts_recv.0
        } else {
            ev.ts_exchange.0
        }
    }

    /// When `ev` happened at the venue, under the market-data latency model.
    #[inline]
    fn venue_of(&self, ev: &MarketEvent) -> u64 {
        match self.cfg.md_latency {
            Latency::Constant(d) => Self::local_of(ev).saturating_sub(d),
            Latency::Recorded if ev.ts_exchange.0 != 0 => ev.ts_exchange.0,
            Latency::Recorded => Self::local_of(ev),
        }
    }

    #[inline]
    fn order_latency(&self) -> u64 {
        match self.cfg.order_latency {
            Latency::Constant(d) => d,
            Latency::Recorded => self.delay,
        }
    }

    /// Before `ev` is applied to `book`: the venue handles every request that reached it before
    /// `ev` happened there, against `book` as it stands.
    #[inline]
    pub fn before_event(&mut self, ev: &MarketEvent, book: &OrderBook) {
        let local = Self::local_of(ev);
        self.local_now = self.local_now.max(local);
        if ev.ts_exchange.0 != 0 && ev.ts_recv.0 != 0 {
            self.delay = ev.ts_recv.0.saturating_sub(ev.ts_exchange.0);
        }
        if self.pending.is_empty() {
            return;
        }
        let venue_now = self.venue_of(ev);
        while let Some(p) = self.pending.front().copied() {
            if p.arrive >= venue_now {
                break;
            }
            self.pending.pop_front();
            self.handle(p, book);
        }
    }

    /// After `ev` was applied to `book`: trades and level changes move our resting orders.
    #[inline]
    pub fn after_event(&mut self, ev: &MarketEvent, book: &OrderBook) {
        if self.resting.is_empty() && self.taken.is_empty() {
            return;
        }
        let now = self.venue_of(ev);
        match ev.kind {
            MarketEventKind::Trade(t) => self.on_trade(t.price, t.qty.units(), t.aggressor, now),
            MarketEventKind::Delta(d) if d.action == argus_core::BookAction::Clear => self.taken.clear(),
            MarketEventKind::Delta(d) => {
                if let Some(i) = self.taken.iter().position(|t| t.side == d.side && t.price == d.price) {
                    self.taken.swap_remove(i);
                }
                if !d.flags.is_snapshot() {
                    self.on_level(d.side, d.price, book.qty_at(d.side, d.price).units());
                }
                self.on_cross(book, now);
            }
            MarketEventKind::Quote(_) | MarketEventKind::Mark(_) | MarketEventKind::Liquidation(_) => {}
        }
    }

    /// End of data: requests still in flight are handled against the final book, and every report
    /// becomes deliverable.
    pub fn finish(&mut self, book: &OrderBook) {
        while let Some(p) = self.pending.pop_front() {
            self.handle(p, book);
        }
        self.local_now = u64::MAX;
    }

    fn handle(&mut self, p: Pending, book: &OrderBook) {
        match p.req {
            Request::New(id, o) => self.execute(id, o, p.arrive, book),
            Request::Cancel(id) => {
                if let Some(i) = self.resting.iter().position(|r| r.id == id) {
                    self.resting.remove(i);
                    self.stats.cancelled += 1;
                    self.report(p.arrive, ExecReport::Closed { id, reason: CloseReason::Cancelled });
                } else {
                    self.stats.cancel_rejects += 1;
                    self.report(p.arrive, ExecReport::CancelRejected(id));
                }
            }
        }
    }

    /// A new order at the venue at `now`: take what crosses, then rest or expire the remainder.
    fn execute(&mut self, id: ClientOrderId, o: OrderIntent, now: u64, book: &OrderBook) {
        let mut left = o.qty.units();
        let (mut filled, mut notional, mut levels) = (0_i64, 0_i128, 0_u32);
        let far = o.side.opposite();
        for l in book.levels(far) {
            let inside = match o.side {
                Side::Buy => l.price <= o.limit,
                Side::Sell => l.price >= o.limit,
            };
            if !inside || left == 0 {
                break;
            }
            let gone = self.taken.iter().find(|t| t.side == far && t.price == l.price).map_or(0, |t| t.qty);
            let take = left.min(l.qty.units() - gone);
            if take <= 0 {
                continue;
            }
            notional += notional_units(l.price, Qty::from_units(take));
            filled += take;
            left -= take;
            levels += 1;
            if self.cfg.deplete {
                match self.taken.iter_mut().find(|t| t.side == far && t.price == l.price) {
                    Some(t) => t.qty += take,
                    None => self.taken.push(Taken { side: far, price: l.price, qty: take }),
                }
            }
        }
        if filled > 0 {
            self.stats.taker_fills += 1;
            let fill = self.fill(id, &o, filled, notional, levels, now, false);
            self.report(now, ExecReport::Fill(fill));
        }
        if left == 0 {
            self.report(now, ExecReport::Closed { id, reason: CloseReason::Filled });
            return;
        }
        if o.tif == TimeInForce::Ioc {
            self.stats.expired += 1;
            self.report(now, ExecReport::Closed { id, reason: CloseReason::Expired });
            return;
        }
        let level = book.qty_at(o.side, o.limit).units();
        self.resting.push(Resting { id, o, left, ahead: level, level });
        self.stats.max_resting = self.stats.max_resting.max(self.resting.len() as u64);
        self.report(now, ExecReport::Resting(id));
    }

    /// A public trade at the venue: the queue ahead of us at its price goes first.
    fn on_trade(&mut self, price: Price, qty: i64, aggressor: Side, now: u64) {
        let mut i = 0;
        while i < self.resting.len() {
            let r = &mut self.resting[i];
            if r.o.side != aggressor.opposite() {
                i += 1;
                continue;
            }
            let through = match r.o.side {
                Side::Buy => price < r.o.limit,
                Side::Sell => price > r.o.limit,
            };
            let fill = if through {
                r.left
            } else if price == r.o.limit {
                let beyond = qty - r.ahead;
                r.ahead = (r.ahead - qty).max(0);
                beyond.clamp(0, r.left)
            } else {
                0
            };
            if fill > 0 && self.maker_fill(i, fill, now) {
                continue;
            }
            i += 1;
        }
    }

    /// The venue's level at (`side`, `price`) now shows `qty`.
    fn on_level(&mut self, side: Side, price: Price, qty: i64) {
        let model = self.cfg.queue;
        for r in self.resting.iter_mut().filter(|r| r.o.side == side && r.o.limit == price) {
            if let QueueModel::Probabilistic { power } = model {
                let change = r.level - qty;
                if change > 0 {
                    let front = r.ahead as f64;
                    let back = (r.level - r.ahead).max(0) as f64;
                    let (fb, ff) = (back.powf(power), front.powf(power));
                    let prob = if fb + ff > 0.0 { fb / (fb + ff) } else { 0.5 };
                    let c = change as f64;
                    let est = front - (1.0 - prob) * c + (back - prob * c).min(0.0);
                    r.ahead = est.round().max(0.0) as i64;
                }
            }
            r.ahead = r.ahead.min(qty);
            r.level = qty;
        }
    }

    /// The opposite side at or through a resting price fills it: the venue would have matched.
    fn on_cross(&mut self, book: &OrderBook, now: u64) {
        let (bid, ask) = (book.best_bid().map(|l| l.price), book.best_ask().map(|l| l.price));
        let mut i = 0;
        while i < self.resting.len() {
            let r = self.resting[i];
            let crossed = match r.o.side {
                Side::Buy => ask.is_some_and(|a| a <= r.o.limit),
                Side::Sell => bid.is_some_and(|b| b >= r.o.limit),
            };
            if crossed && self.maker_fill(i, r.left, now) {
                continue;
            }
            i += 1;
        }
    }

    /// Fills `qty` of resting order `i` at its limit; true when that completed (and removed) it.
    fn maker_fill(&mut self, i: usize, qty: i64, now: u64) -> bool {
        let r = self.resting[i];
        let notional = notional_units(r.o.limit, Qty::from_units(qty));
        self.stats.maker_fills += 1;
        let fill = self.fill(r.id, &r.o, qty, notional, 1, now, true);
        self.report(now, ExecReport::Fill(fill));
        if qty >= r.left {
            self.resting.remove(i);
            self.report(now, ExecReport::Closed { id: r.id, reason: CloseReason::Filled });
            return true;
        }
        self.resting[i].left -= qty;
        false
    }

    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        id: ClientOrderId,
        o: &OrderIntent,
        qty: i64,
        notional: i128,
        levels: u32,
        now: u64,
        maker: bool,
    ) -> Fill {
        let avg = notional * i128::from(FIXED_SCALE) / i128::from(qty.max(1));
        let ppm = if maker { self.cfg.maker_fee_ppm } else { self.cfg.taker_fee_ppm };
        Fill {
            order: id,
            instrument: o.instrument,
            side: o.side,
            qty: Qty::from_units(qty),
            avg_price: Price::from_units(i64::try_from(avg).unwrap_or(i64::MAX)),
            notional: Money(notional),
            fee: Money(notional * i128::from(ppm) / 1_000_000),
            levels,
            ts: UnixNanos(now),
            maker,
        }
    }

    /// Queues a report made at venue time `at`; it reaches us one order latency later.
    fn report(&mut self, at: u64, r: ExecReport) {
        let due = at.saturating_add(self.order_latency());
        // Arrival order; equal times keep the order they were made in.
        let i = self.reports.partition_point(|(t, _)| *t <= due);
        self.reports.insert(i, (due, r));
    }

    fn send(&mut self, req: Request) -> Result<(), ExecError> {
        if self.pending.len() >= MAX_PENDING {
            return Err(ExecError::QueueFull);
        }
        let arrive = self.local_now.saturating_add(self.order_latency());
        let i = self.pending.partition_point(|p| p.arrive <= arrive);
        self.pending.insert(i, Pending { arrive, req });
        Ok(())
    }
}

impl Executor for SimExchange {
    fn submit(&mut self, o: Approved<OrderIntent>) -> Result<ClientOrderId, ExecError> {
        let id = ClientOrderId(self.next_id);
        self.send(Request::New(id, o.into_inner()))?;
        self.next_id += 1;
        self.stats.orders += 1;
        Ok(id)
    }

    fn cancel(&mut self, id: ClientOrderId) -> Result<(), ExecError> {
        if id.0 == 0 || id.0 >= self.next_id {
            return Err(ExecError::UnknownOrder);
        }
        self.send(Request::Cancel(id))?;
        self.stats.cancels += 1;
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<ExecReport>) {
        while let Some((t, r)) = self.reports.front().copied() {
            if t > self.local_now {
                break;
            }
            self.reports.pop_front();
            out.push(r);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use argus_core::{
        BookAction, BookDelta, DeltaFlags, InstrumentId, MarketStatus, Position, State, StrategyId, Trade, Venue,
    };

    fn px(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }

    fn delta(side: Side, p: &str, qty: &str) -> BookDelta {
        BookDelta {
            action: BookAction::Update,
            side,
            flags: DeltaFlags(DeltaFlags::LAST),
            price: px(p),
            qty: q(qty),
            sequence: 1,
        }
    }

    fn book() -> OrderBook {
        let mut b = OrderBook::new(0);
        for (side, p, qty) in [(Side::Sell, "100", "1"), (Side::Sell, "101", "2"), (Side::Sell, "105", "5")] {
            b.apply(&delta(side, p, qty));
        }
        b.apply(&delta(Side::Buy, "99", "3"));
        b
    }

    fn ev(t: u64, kind: MarketEventKind) -> MarketEvent {
        MarketEvent {
            ts_exchange: UnixNanos(t),
            ts_recv: UnixNanos(t),
            instrument: InstrumentId(0),
            decode_ns: 0,
            kind,
        }
    }

    fn trade(t: u64, p: &str, qty: &str, aggressor: Side) -> MarketEvent {
        ev(t, MarketEventKind::Trade(Trade { price: px(p), qty: q(qty), trade_id: t, aggressor }))
    }

    fn order(side: Side, qty: &str, limit: &str, tif: TimeInForce) -> OrderIntent {
        OrderIntent {
            instrument: InstrumentId(0),
            side,
            qty: q(qty),
            limit: px(limit),
            tif,
            ts: UnixNanos(0),
            strategy: StrategyId(0),
        }
    }

    // Approval is risk's job; tests reach the venue through a real chain with loose limits.
    fn approve(o: OrderIntent, b: &OrderBook) -> Approved<OrderIntent> {
        let cfg = argus_risk::RiskConfig {
            max_order_qty: q("100"),
            max_position: q("100"),
            max_notional: Money(1_000_000 * 1_000_000_000),
            price_band_bps: 10_000,
            max_orders_per_window: 100,
            rate_window_ns: 1,
            anomaly_threshold: 1.0,
            max_book_age_ns: u64::MAX,
            exposure: argus_risk::ExposureLimits::default(),
            ..argus_risk::RiskConfig::default()
        };
        let pos = Position::default();
        let st = State {
            now: UnixNanos(0),
            instrument: InstrumentId(0),
            book: b,
            features: &[],
            scores: argus_core::Scores::default(),
            position: &pos,
            market: MarketStatus::permissive(),
        };
        let chain = argus_risk::RiskChain::new(cfg).unwrap();
        chain.with_instrument(InstrumentId(0), Venue::Sim).evaluate(o, &st).unwrap()
    }

    /// Runs one event through the venue the way the hot thread does.
    fn step(sim: &mut SimExchange, b: &mut OrderBook, e: &MarketEvent) -> Vec<ExecReport> {
        sim.before_event(e, b);
        if let MarketEventKind::Delta(d) = e.kind {
            b.apply(&d);
        }
        sim.after_event(e, b);
        let mut out = Vec::new();
        sim.poll(&mut out);
        out
    }

    fn fills(r: &[ExecReport]) -> Vec<Fill> {
        r.iter().filter_map(|r| if let ExecReport::Fill(f) = r { Some(*f) } else { None }).collect()
    }

    fn quiet(t: u64) -> MarketEvent {
        ev(t, MarketEventKind::Delta(delta(Side::Sell, "200", "1")))
    }

    #[test]
    fn ioc_buy_walks_levels_up_to_the_limit_and_pays_the_taker_fee() {
        let mut b = book();
        let mut sim = SimExchange::new(SimConfig { taker_fee_ppm: bps_to_ppm(10.0), ..SimConfig::default() });
        step(&mut sim, &mut b, &quiet(1));
        sim.submit(approve(order(Side::Buy, "4", "101", TimeInForce::Ioc), &b)).unwrap();
        let r = step(&mut sim, &mut b, &quiet(2));
        let f = fills(&r);
        assert_eq!(f.len(), 1);
        // 1 @ 100 + 2 @ 101; the 105 level is outside the limit.
        assert_eq!(f[0].qty, q("3"));
        assert_eq!(f[0].notional.to_string(), "302");
        assert_eq!(f[0].avg_price.to_string(), "100.666666666");
        assert_eq!(f[0].fee.to_string(), "0.302");
        assert_eq!((f[0].levels, f[0].maker), (2, false));
        assert_eq!(r.last(), Some(&ExecReport::Closed { id: ClientOrderId(1), reason: CloseReason::Expired }));
    }

    #[test]
    fn nothing_inside_the_limit_expires_without_a_fill() {
        let mut b = book();
        let mut sim = SimExchange::new(SimConfig::default());
        step(&mut sim, &mut b, &quiet(1));
        sim.submit(approve(order(Side::Sell, "1", "99.5", TimeInForce::Ioc), &b)).unwrap();
        let r = step(&mut sim, &mut b, &quiet(2));
        assert_eq!(r, vec![ExecReport::Closed { id: ClientOrderId(1), reason: CloseReason::Expired }]);
        assert_eq!(sim.stats().expired, 1);
    }

    #[test]
    fn taken_liquidity_stays_taken_until_the_venue_updates_the_level() {
        let mut b = book();
        let mut sim = SimExchange::new(SimConfig::default());
        step(&mut sim, &mut b, &quiet(1));
        for _ in 0..2 {
            sim.submit(approve(order(Side::Buy, "1", "100", TimeInForce::Ioc), &b)).unwrap();
        }
        let r = step(&mut sim, &mut b, &quiet(2));
        // The 1 at 100 went to the first order; the second finds nothing left inside its limit.
        assert_eq!(fills(&r).len(), 1);
        assert!(r.contains(&ExecReport::Closed { id: ClientOrderId(2), reason: CloseReason::Expired }));
        // The venue's next update of the level replaces our memory of it.
        step(&mut sim, &mut b, &ev(3, MarketEventKind::Delta(delta(Side::Sell, "100", "0.5"))));
        sim.submit(approve(order(Side::Buy, "1", "100", TimeInForce::Ioc), &b)).unwrap();
        let f = fills(&step(&mut sim, &mut b, &quiet(4)));
        assert_eq!(f[0].qty, q("0.5"));
        // Without depletion both orders get the same lot.
        let mut b = book();
        let mut sim = SimExchange::new(SimConfig { deplete: false, ..SimConfig::default() });
        step(&mut sim, &mut b, &quiet(1));
        for _ in 0..2 {
            sim.submit(approve(order(Side::Buy, "1", "100", TimeInForce::Ioc), &b)).unwrap();
        }
        assert_eq!(fills(&step(&mut sim, &mut b, &quiet(2))).len(), 2);
    }

    #[test]
    fn latency_delays_arrival_and_the_answer() {
        let mut b = book();
        let mut sim = SimExchange::new(SimConfig { order_latency: Latency::Constant(500), ..SimConfig::default() });
        step(&mut sim, &mut b, &quiet(1_000));
        sim.submit(approve(order(Side::Buy, "1", "101", TimeInForce::Ioc), &b)).unwrap();
        // Arrives at 1500: an event at 1400 happens before it, and its change is what the order meets.
        assert!(step(&mut sim, &mut b, &ev(1_400, MarketEventKind::Delta(delta(Side::Sell, "100", "0")))).is_empty());
        // Handled before the event at 1600, answered at 2000.
        assert!(step(&mut sim, &mut b, &quiet(1_600)).is_empty());
        let r = step(&mut sim, &mut b, &quiet(2_000));
        let f = fills(&r);
        assert_eq!((f[0].avg_price, f[0].ts), (px("101"), UnixNanos(1_500)));
    }

    #[test]
    fn recorded_latency_uses_the_data_own_delay() {
        let mut b = book();
        let cfg = SimConfig { order_latency: Latency::Recorded, md_latency: Latency::Recorded, ..SimConfig::default() };
        let mut sim = SimExchange::new(cfg);
        // Venue time 1000, received at 1300: 300 ns each way.
        let mut e = quiet(1_000);
        e.ts_recv = UnixNanos(1_300);
        step(&mut sim, &mut b, &e);
        sim.submit(approve(order(Side::Buy, "1", "101", TimeInForce::Ioc), &b)).unwrap();
        let at = |x: u64, r: u64| {
            let mut e = quiet(x);
            e.ts_recv = UnixNanos(r);
            e
        };
        // Sent at 1300, at the venue at 1600: the event of venue time 1550 comes first.
        assert!(step(&mut sim, &mut b, &at(1_550, 1_850)).is_empty());
        // Handled at venue time 1600, before the event of 1650; the answer takes that event's
        // 200 ns delay and is back at 1800, before its receive time.
        let f = fills(&step(&mut sim, &mut b, &at(1_650, 1_850)));
        assert_eq!((f.len(), f[0].ts), (1, UnixNanos(1_600)));
    }

    #[test]
    fn resting_order_waits_for_the_queue_ahead_conservatively() {
        let mut b = book();
        let mut sim = SimExchange::new(SimConfig { maker_fee_ppm: -100, ..SimConfig::default() });
        step(&mut sim, &mut b, &quiet(1));
        sim.submit(approve(order(Side::Buy, "2", "99", TimeInForce::Gtc), &b)).unwrap();
        let r = step(&mut sim, &mut b, &quiet(2));
        assert_eq!(r, vec![ExecReport::Resting(ClientOrderId(1))]);
        // 3 ahead of us. A trade of 1 at 99 leaves 2 ahead.
        assert!(fills(&step(&mut sim, &mut b, &trade(3, "99", "1", Side::Sell))).is_empty());
        // Conservative: the level shrinking to 2.5 says nothing about who cancelled: still 2 ahead.
        step(&mut sim, &mut b, &ev(4, MarketEventKind::Delta(delta(Side::Buy, "99", "2.5"))));
        // A trade of 3: 2 for the queue ahead, 1 for us.
        let f = fills(&step(&mut sim, &mut b, &trade(5, "99", "3", Side::Sell)));
        assert_eq!((f[0].qty, f[0].maker, f[0].avg_price), (q("1"), true, px("99")));
        assert_eq!(f[0].fee.to_string(), "-0.0099");
        // A trade through our price fills the rest.
        let r = step(&mut sim, &mut b, &trade(6, "98.5", "0.1", Side::Sell));
        assert_eq!(fills(&r)[0].qty, q("1"));
        assert!(r.contains(&ExecReport::Closed { id: ClientOrderId(1), reason: CloseReason::Filled }));
        assert_eq!(sim.resting(), 0);
    }

    #[test]
    fn the_probabilistic_queue_moves_forward_on_cancels() {
        let run = |queue: QueueModel| {
            let mut b = book();
            let mut sim = SimExchange::new(SimConfig { queue, ..SimConfig::default() });
            step(&mut sim, &mut b, &quiet(1));
            sim.submit(approve(order(Side::Buy, "1", "99", TimeInForce::Gtc), &b)).unwrap();
            step(&mut sim, &mut b, &quiet(2));
            // Someone joins behind us (3 -> 6), then 3 are cancelled (6 -> 3).
            step(&mut sim, &mut b, &ev(3, MarketEventKind::Delta(delta(Side::Buy, "99", "6"))));
            step(&mut sim, &mut b, &ev(4, MarketEventKind::Delta(delta(Side::Buy, "99", "3"))));
            // A 2-lot trade: does it reach us?
            fills(&step(&mut sim, &mut b, &trade(5, "99", "2", Side::Sell))).len()
        };
        assert_eq!(run(QueueModel::Conservative), 0, "3 still ahead");
        assert_eq!(run(QueueModel::Probabilistic { power: 3.0 }), 1, "cancels split ahead and behind");
    }

    #[test]
    fn the_book_crossing_a_resting_order_fills_it_and_cancels_arrive_late() {
        let mut b = book();
        let mut sim = SimExchange::new(SimConfig::default());
        step(&mut sim, &mut b, &quiet(1));
        sim.submit(approve(order(Side::Sell, "1", "102", TimeInForce::Gtc), &b)).unwrap();
        sim.submit(approve(order(Side::Sell, "1", "104", TimeInForce::Gtc), &b)).unwrap();
        step(&mut sim, &mut b, &quiet(2));
        // The bid moves up to 102: the venue matches our first ask at its price.
        let f = fills(&step(&mut sim, &mut b, &ev(3, MarketEventKind::Delta(delta(Side::Buy, "102", "1")))));
        assert_eq!((f.len(), f[0].avg_price, f[0].maker), (1, px("102"), true));
        // Cancelling the filled one is too late; the other is cancelled.
        sim.cancel(ClientOrderId(1)).unwrap();
        sim.cancel(ClientOrderId(2)).unwrap();
        let r = step(&mut sim, &mut b, &quiet(4));
        assert_eq!(
            r,
            vec![
                ExecReport::CancelRejected(ClientOrderId(1)),
                ExecReport::Closed { id: ClientOrderId(2), reason: CloseReason::Cancelled }
            ]
        );
        assert_eq!(sim.cancel(ClientOrderId(9)), Err(ExecError::UnknownOrder));
    }

    #[test]
    fn settings_parse_and_bad_ones_are_named() {
        assert_eq!(Latency::parse("250us").unwrap(), Latency::Constant(250_000));
        assert_eq!(Latency::parse("7").unwrap(), Latency::Constant(7));
        assert_eq!(Latency::parse("recorded").unwrap(), Latency::Recorded);
        assert!(Latency::parse("fast").unwrap_err().0.contains("fast"));
        assert_eq!(QueueModel::parse("prob:2").unwrap(), QueueModel::Probabilistic { power: 2.0 });
        assert!(QueueModel::parse("prob:-1").is_err());
        assert!(QueueModel::parse("fifo").is_err());
    }
}
