//! The chain: the kill switch and strategy state, the stateless checks in a fixed order, then
//! the stateful ones (exposure, live orders, self-trade, rates), then approval.

use argus_core::{
    Approved, ClientOrderId, Fill, InstrumentId, Money, OrderIntent, Reject, RiskCheck, State, StrategyId, Venue,
};

use crate::checks::{
    AnomalyBlock, ClockSkew, MarketState, MaxNotional, MaxOrderQty, MaxPosition, OrderShape, PriceBand,
};
use crate::config::{ConfigError, RiskConfig};
use crate::ledger::{Exposure, Ledger, LiveOrder};
use crate::switch::{KillSwitch, RiskState};

/// A state change as the chain observed it, with the counts before it took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub state: RiskState,
    pub intents_before: u64,
    pub approved_before: u64,
}

/// Transitions kept for the report; later ones are only counted.
const MAX_TRANSITIONS: usize = 64;

/// Strategies with their own loss state; intents from ids beyond fail closed.
pub const MAX_STRATEGIES: usize = 64;

/// One day of venue time.
const DAY_NS: u64 = 86_400_000_000_000;

/// The checks in evaluation order; an audit record names how many ran.
pub const CHECKS: [&str; 15] = [
    "risk_state",
    "strategy_state",
    "order_shape",
    "max_order_qty",
    "max_position",
    "max_notional",
    "market_state",
    "clock_skew",
    "price_band",
    "anomaly",
    "exposure",
    "live_orders",
    "self_trade",
    "order_rate_window",
    "rate_buckets",
];

/// Counts of outcomes, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiskStats {
    pub approved: u64,
    pub rejected: [u64; Reject::ALL.len()],
}

/// Loss state of one strategy.
#[derive(Debug, Clone, Copy)]
struct StrategyBook {
    state: RiskState,
    peak: i128,
}

/// See the module docs.
#[derive(Debug)]
pub struct RiskChain {
    cfg: RiskConfig,
    max_qty: MaxOrderQty,
    max_pos: MaxPosition,
    max_notional: MaxNotional,
    band: PriceBand,
    anomaly: AnomalyBlock,
    market: MarketState,
    skew: ClockSkew,
    /// Ring of the last approvals' times (preallocated; capacity = max orders per window).
    recent: Vec<u64>,
    head: usize,
    ledger: Ledger,
    switch: KillSwitch,
    seen: RiskState,
    transitions: Vec<Transition>,
    peak_equity: i128,
    /// UTC day (venue time) and equity at its start, for the daily loss limit.
    day: u64,
    day_start_equity: i128,
    strategies: [StrategyBook; MAX_STRATEGIES],
    /// Cancel-on-halt has been issued for the current halt.
    halt_cancels_issued: bool,
    /// Checks evaluated for the last intent (see [`CHECKS`]).
    last_checks: u8,
    stats: RiskStats,
}

impl RiskChain {
    /// A chain that knows no instrument yet: register each with [`RiskChain::with_instrument`].
    ///
    /// # Errors
    /// Invalid limits.
    pub fn new(cfg: RiskConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            max_qty: MaxOrderQty(cfg.max_order_qty),
            max_pos: MaxPosition(cfg.max_position),
            max_notional: MaxNotional(cfg.max_notional),
            band: PriceBand(cfg.price_band_bps),
            anomaly: AnomalyBlock(cfg.anomaly_threshold),
            market: MarketState { max_age_ns: cfg.max_book_age_ns },
            skew: ClockSkew(cfg.max_clock_skew_ns),
            recent: Vec::with_capacity(cfg.max_orders_per_window as usize),
            head: 0,
            ledger: Ledger::new(
                cfg.order_rate_per_venue,
                cfg.cancel_rate_per_venue,
                (cfg.max_open_orders + cfg.max_in_flight) as usize,
            ),
            switch: KillSwitch::new(),
            seen: RiskState::Active,
            transitions: Vec::with_capacity(MAX_TRANSITIONS),
            peak_equity: 0,
            day: 0,
            day_start_equity: 0,
            strategies: [StrategyBook { state: RiskState::Active, peak: 0 }; MAX_STRATEGIES],
            halt_cancels_issued: false,
            last_checks: 0,
            stats: RiskStats::default(),
            cfg,
        })
    }

    /// Registers an instrument and its venue (start-up only). Intents for unregistered
    /// instruments are rejected as unknown.
    #[must_use]
    pub fn with_instrument(mut self, id: InstrumentId, venue: Venue) -> Self {
        self.ledger.register(id, venue, self.cfg.order_rate_per_instrument, self.cfg.cancel_rate_per_instrument);
        self
    }

    pub fn config(&self) -> &RiskConfig {
        &self.cfg
    }

    pub fn stats(&self) -> RiskStats {
        self.stats
    }

    /// The kill switch this chain obeys; clone it for the control plane.
    pub fn switch(&self) -> &KillSwitch {
        &self.switch
    }

    /// State changes observed at evaluation time, oldest first (at most 64).
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// How many of [`CHECKS`] ran for the last intent (all of them when it was approved).
    pub fn last_checks(&self) -> u8 {
        self.last_checks
    }

    /// Our orders the venues may still fill.
    pub fn live_orders(&self) -> &[LiveOrder] {
        self.ledger.live()
    }

    /// Orders sent and not yet acknowledged, and orders resting.
    pub fn order_counts(&self) -> (u32, u32) {
        (self.ledger.in_flight(), self.ledger.resting())
    }

    /// Gross and net exposure of one venue, or of all with `None`, at the last marks.
    pub fn exposure(&self, venue: Option<Venue>) -> Exposure {
        self.ledger.exposure(venue, InstrumentId(u32::MAX), 0, 0)
    }

    /// Feeds the current equity (realized + unrealized - fees, quote units) at venue time `now`:
    /// a loss beyond `max_loss` or beyond `max_daily_loss` since the UTC day began halts, a fall
    /// from peak beyond `max_drawdown` moves to reducing-only.
    pub fn on_equity(&mut self, now: u64, equity: Money) {
        let day = now / DAY_NS;
        if day != self.day {
            self.day = day;
            self.day_start_equity = equity.0;
        }
        self.peak_equity = self.peak_equity.max(equity.0);
        if self.cfg.max_loss.is_some_and(|m| -equity.0 > m.0)
            || self.cfg.max_daily_loss.is_some_and(|m| self.day_start_equity - equity.0 > m.0)
        {
            self.switch.escalate(RiskState::Halted);
        } else if self.cfg.max_drawdown.is_some_and(|m| self.peak_equity - equity.0 > m.0) {
            self.switch.escalate(RiskState::Reducing);
        }
    }

    /// Feeds one strategy's equity: its own loss and drawdown limits halt it or leave it
    /// reducing-only, without touching other strategies. A global resume re-arms them all.
    pub fn on_strategy_equity(&mut self, strategy: StrategyId, equity: Money) {
        let Some(s) = self.strategies.get_mut(usize::from(strategy.0)) else { return };
        s.peak = s.peak.max(equity.0);
        let to = if self.cfg.strategy_max_loss.is_some_and(|m| -equity.0 > m.0) {
            RiskState::Halted
        } else if self.cfg.strategy_max_drawdown.is_some_and(|m| s.peak - equity.0 > m.0) {
            RiskState::Reducing
        } else {
            return;
        };
        if to as u8 > s.state as u8 {
            s.state = to;
        }
    }

    /// State of one strategy's own limits.
    pub fn strategy_state(&self, strategy: StrategyId) -> RiskState {
        self.strategies.get(usize::from(strategy.0)).map_or(RiskState::Halted, |s| s.state)
    }

    /// Latest mid of an instrument, for exposure.
    pub fn on_mark(&mut self, instrument: InstrumentId, mark_units: i64) {
        self.ledger.set_mark(instrument, mark_units);
    }

    /// An approved order left for the venue under `id`.
    pub fn on_sent(&mut self, id: ClientOrderId, o: &OrderIntent) {
        self.ledger.on_sent(id, o);
    }

    /// The venue acknowledged `id` as resting on its book.
    pub fn on_resting(&mut self, id: ClientOrderId) {
        self.ledger.on_resting(id);
    }

    /// `id` is done: filled, cancelled, expired or rejected.
    pub fn on_closed(&mut self, id: ClientOrderId) {
        self.ledger.on_closed(id);
    }

    /// A fill, for exposure.
    pub fn on_fill(&mut self, f: &Fill) {
        self.ledger.on_fill(f.instrument, f.side, f.qty.units());
    }

    /// Position risk holds for an instrument, from fills.
    pub fn position(&self, instrument: InstrumentId) -> i64 {
        self.ledger.position(instrument)
    }

    /// Gates a cancel through the cancel-rate buckets at venue time `now`.
    ///
    /// # Errors
    /// [`Reject::CancelRate`] when a bucket is empty; [`Reject::UnknownInstrument`] when the
    /// instrument is not registered.
    pub fn approve_cancel(&mut self, instrument: InstrumentId, now: u64) -> Result<(), Reject> {
        let venue = self.ledger.venue_of(instrument).ok_or(Reject::UnknownInstrument)?;
        if !self.ledger.rate_ok(venue, instrument, now, true) {
            self.stats.rejected[Reject::CancelRate.index()] += 1;
            return Err(Reject::CancelRate);
        }
        self.ledger.take_rate(venue, instrument, now, true);
        Ok(())
    }

    /// When the engine is halted and `cancel_on_halt` is set, the live orders to cancel, once
    /// per halt. Kill-switch cancels bypass the cancel-rate buckets (and still spend tokens).
    pub fn cancels_on_halt(&mut self, now: u64, out: &mut Vec<ClientOrderId>) {
        if self.switch.state() != RiskState::Halted {
            self.halt_cancels_issued = false;
            return;
        }
        if self.halt_cancels_issued || !self.cfg.cancel_on_halt {
            return;
        }
        self.halt_cancels_issued = true;
        for i in 0..self.ledger.live().len() {
            let l = self.ledger.live()[i];
            if let Some(v) = self.ledger.venue_of(l.instrument) {
                self.ledger.take_rate(v, l.instrument, now, true);
            }
            out.push(l.id);
        }
    }

    /// Runs every check; the first failure is the reason.
    ///
    /// # Errors
    /// The [`Reject`] reason.
    pub fn evaluate(&mut self, o: OrderIntent, st: &State<'_>) -> Result<Approved<OrderIntent>, Reject> {
        let state = self.switch.state();
        if state != self.seen {
            self.seen = state;
            if state == RiskState::Active {
                // An operator's resume re-arms every strategy too.
                for s in &mut self.strategies {
                    s.state = RiskState::Active;
                }
            }
            if self.transitions.len() < MAX_TRANSITIONS {
                let intents = self.stats.approved + self.stats.rejected.iter().sum::<u64>();
                self.transitions.push(Transition {
                    state,
                    intents_before: intents,
                    approved_before: self.stats.approved,
                });
            }
        }
        if let Some(mid) = st.book.mid_units() {
            if st.instrument == o.instrument {
                self.ledger.set_mark(o.instrument, mid);
            }
        }
        let mut ran = 0_u8;
        let r = self.evaluate_inner(&o, st, state, &mut ran);
        self.last_checks = ran;
        match r {
            Ok(venue) => {
                self.record_approval(st.now.0);
                self.ledger.take_rate(venue, o.instrument, st.now.0, false);
                self.stats.approved += 1;
                Ok(Approved::new_by_risk(o))
            }
            Err(reason) => {
                self.stats.rejected[reason.index()] += 1;
                Err(reason)
            }
        }
    }

    /// Returns the instrument's venue when every check passes. `ran` counts the checks begun.
    fn evaluate_inner(&self, o: &OrderIntent, st: &State<'_>, state: RiskState, ran: &mut u8) -> Result<Venue, Reject> {
        *ran = 1;
        match state {
            RiskState::Halted => return Err(Reject::Halted),
            RiskState::Reducing if !st.reduces_risk(o) => return Err(Reject::ReducingOnly),
            _ => {}
        }
        *ran += 1;
        match self.strategy_state(o.strategy) {
            RiskState::Halted => return Err(Reject::StrategyHalted),
            RiskState::Reducing if !st.reduces_risk(o) => return Err(Reject::StrategyReducingOnly),
            _ => {}
        }
        let checks: [&dyn RiskCheck; 8] = [
            &OrderShape,
            &self.max_qty,
            &self.max_pos,
            &self.max_notional,
            &self.market,
            &self.skew,
            &self.band,
            &self.anomaly,
        ];
        for c in checks {
            *ran += 1;
            c.check(o, st)?;
        }
        *ran += 1;
        let venue = self.ledger.venue_of(o.instrument).ok_or(Reject::UnknownInstrument)?;
        self.check_exposure(o, venue)?;
        *ran += 1;
        if self.ledger.in_flight() >= self.cfg.max_in_flight {
            return Err(Reject::MaxInFlight);
        }
        if o.tif == argus_core::TimeInForce::Gtc && self.ledger.resting() >= self.cfg.max_open_orders {
            return Err(Reject::MaxOpenOrders);
        }
        *ran += 1;
        if self.ledger.would_self_trade(o) {
            return Err(Reject::SelfTrade);
        }
        *ran += 1;
        self.check_rate(st.now.0)?;
        *ran += 1;
        if !self.ledger.rate_ok(venue, o.instrument, st.now.0, false) {
            return Err(Reject::OrderRate);
        }
        Ok(venue)
    }

    /// Gross and net notional after a complete fill, per venue and in total, valued at marks.
    /// An order that does not grow an exceeded measure passes (it reduces exposure).
    fn check_exposure(&self, o: &OrderIntent, venue: Venue) -> Result<(), Reject> {
        let lim = &self.cfg.exposure;
        let delta = o.qty.units().saturating_mul(o.side.sign());
        let px = o.limit.units();
        let scopes = [
            (Some(venue), lim.max_gross_per_venue, lim.max_net_per_venue),
            (None, lim.max_gross_total, lim.max_net_total),
        ];
        for (scope, gross, net) in scopes {
            if gross.is_none() && net.is_none() {
                continue;
            }
            let before = self.ledger.exposure(scope, o.instrument, 0, px);
            let after = self.ledger.exposure(scope, o.instrument, delta, px);
            if gross.is_some_and(|g| after.gross > g.0 && after.gross > before.gross) {
                return Err(Reject::MaxGrossExposure);
            }
            if net.is_some_and(|n| after.net.abs() > n.0 && after.net.abs() > before.net.abs()) {
                return Err(Reject::MaxNetExposure);
            }
        }
        Ok(())
    }

    fn check_rate(&self, now: u64) -> Result<(), Reject> {
        let cap = self.cfg.max_orders_per_window as usize;
        if cap == 0 {
            return Err(Reject::OrderRate);
        }
        if self.recent.len() < cap {
            return Ok(());
        }
        // `head` is the oldest of the last `cap` approvals.
        if now.saturating_sub(self.recent[self.head]) < self.cfg.rate_window_ns {
            return Err(Reject::OrderRate);
        }
        Ok(())
    }

    fn record_approval(&mut self, now: u64) {
        let cap = self.cfg.max_orders_per_window as usize;
        if self.recent.len() < cap {
            self.recent.push(now);
        } else {
            self.recent[self.head] = now;
            self.head = (self.head + 1) % cap;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tests::two_sided;
    use crate::ledger::{ExposureLimits, Rate};
    use argus_core::{MarketStatus, OrderBook, Position, Price, Qty, Scores, Side, TimeInForce, UnixNanos};
    use proptest::prelude::*;

    fn book() -> OrderBook {
        two_sided("100", "100.02", "5")
    }

    fn intent(side: Side, qty: &str, limit: &str) -> OrderIntent {
        OrderIntent {
            instrument: InstrumentId(0),
            side,
            qty: Qty::parse(qty).unwrap(),
            limit: Price::parse(limit).unwrap(),
            tif: TimeInForce::Ioc,
            ts: UnixNanos(0),
            strategy: StrategyId(0),
        }
    }

    fn cfg() -> RiskConfig {
        RiskConfig {
            max_order_qty: Qty::parse("1").unwrap(),
            max_position: Qty::parse("2").unwrap(),
            max_notional: Money(150 * 1_000_000_000),
            price_band_bps: 10,
            max_orders_per_window: 2,
            rate_window_ns: 1000,
            anomaly_threshold: 0.5,
            max_loss: None,
            max_drawdown: None,
            max_book_age_ns: 1_000_000,
            exposure: ExposureLimits::default(),
            order_rate_per_venue: None,
            cancel_rate_per_venue: None,
            ..RiskConfig::default()
        }
    }

    /// A chain over instrument 0 on the simulated venue.
    fn chain(cfg: RiskConfig) -> RiskChain {
        RiskChain::new(cfg).unwrap().with_instrument(InstrumentId(0), Venue::Sim)
    }

    #[test]
    fn each_limit_rejects_with_its_reason() {
        let (b, mut pos) = (book(), Position::default());
        let mut chain = chain(cfg());
        let mk = |now: u64, anomaly: f32| (now, anomaly);
        let cases = [
            (intent(Side::Buy, "1.5", "100.02"), mk(0, 0.0), Err(Reject::MaxOrderQty)),
            (intent(Side::Buy, "1", "160"), mk(0, 0.0), Err(Reject::MaxNotional)),
            (intent(Side::Buy, "1", "100.5"), mk(0, 0.0), Err(Reject::PriceBand)),
            (intent(Side::Buy, "1", "100.02"), mk(0, 0.9), Err(Reject::AnomalyBlock)),
            (intent(Side::Buy, "1", "100.02"), mk(0, f32::NAN), Err(Reject::AnomalyBlock)),
            (intent(Side::Buy, "1", "100.02"), mk(0, 0.1), Ok(())),
            (intent(Side::Sell, "1", "100"), mk(10, 0.1), Ok(())),
            (intent(Side::Sell, "1", "100"), mk(20, 0.1), Err(Reject::OrderRate)),
            (intent(Side::Sell, "1", "100"), mk(1000, 0.1), Ok(())),
        ];
        for (i, (o, (now, anomaly), want)) in cases.into_iter().enumerate() {
            let st = State {
                now: UnixNanos(now),
                instrument: InstrumentId(0),
                book: &b,
                features: &[],
                scores: Scores { signal: 0.0, anomaly },
                position: &pos,
                market: MarketStatus::permissive(),
            };
            assert_eq!(chain.evaluate(o, &st).map(|_| ()), want, "case {i}");
        }
        pos.qty = Qty::parse("1.5").unwrap();
        let st = State {
            now: UnixNanos(5000),
            instrument: InstrumentId(0),
            book: &b,
            features: &[],
            scores: Scores::default(),
            position: &pos,
            market: MarketStatus::permissive(),
        };
        assert_eq!(chain.evaluate(intent(Side::Buy, "1", "100.02"), &st).map(|_| ()), Err(Reject::MaxPosition));
        chain.switch().set(RiskState::Halted);
        assert_eq!(chain.evaluate(intent(Side::Sell, "1", "100"), &st).map(|_| ()), Err(Reject::Halted));
        assert_eq!(chain.stats().approved, 3);
        let empty = OrderBook::new(0);
        chain.switch().set(RiskState::Active);
        let st = State {
            now: UnixNanos(9000),
            instrument: InstrumentId(0),
            book: &empty,
            features: &[],
            scores: Scores::default(),
            position: &pos,
            market: MarketStatus::permissive(),
        };
        assert_eq!(chain.evaluate(intent(Side::Sell, "1", "100"), &st).map(|_| ()), Err(Reject::NoMarket));
    }

    #[test]
    fn reducing_passes_only_orders_that_shrink_the_position() {
        let b = book();
        let mut chain = chain(RiskConfig { max_orders_per_window: 100, ..cfg() });
        chain.switch().set(RiskState::Reducing);
        let mut pos = Position::default();
        pos.qty = Qty::parse("1").unwrap();
        let cases = [
            (Side::Sell, "0.5", Ok(())),
            (Side::Sell, "1", Ok(())),                      // closing to flat
            (Side::Sell, "1.5", Err(Reject::ReducingOnly)), // flips to short
            (Side::Buy, "0.1", Err(Reject::ReducingOnly)),  // grows the long
        ];
        for (i, (side, qty, want)) in cases.into_iter().enumerate() {
            let limit = if side == Side::Sell { "100" } else { "100.02" };
            let s = State {
                now: UnixNanos(i as u64),
                instrument: InstrumentId(0),
                book: &b,
                features: &[],
                scores: Scores::default(),
                position: &pos,
                market: MarketStatus::permissive(),
            };
            assert_eq!(chain.evaluate(intent(side, qty, limit), &s).map(|_| ()), want, "case {i}");
        }
        assert_eq!(
            chain.transitions(),
            &[Transition { state: RiskState::Reducing, intents_before: 0, approved_before: 0 }]
        );
    }

    #[test]
    fn loss_limits_escalate_the_switch() {
        let mut chain = chain(RiskConfig { max_loss: Some(Money(100)), max_drawdown: Some(Money(50)), ..cfg() });
        chain.on_equity(0, Money(200));
        assert_eq!(chain.switch().state(), RiskState::Active);
        chain.on_equity(0, Money(140));
        assert_eq!(chain.switch().state(), RiskState::Reducing, "60 below the peak");
        chain.on_equity(0, Money(-101));
        assert_eq!(chain.switch().state(), RiskState::Halted);
        chain.on_equity(0, Money(500));
        assert_eq!(chain.switch().state(), RiskState::Halted, "recovering does not re-arm");
    }

    #[test]
    fn invalid_config_reports_every_error() {
        let bad = RiskConfig { max_order_qty: Qty::ZERO, price_band_bps: -1, rate_window_ns: 0, ..cfg() };
        let err = RiskChain::new(bad).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    fn st<'a>(b: &'a OrderBook, pos: &'a Position, now: u64) -> State<'a> {
        State {
            now: UnixNanos(now),
            instrument: InstrumentId(0),
            book: b,
            features: &[],
            scores: Scores::default(),
            position: pos,
            market: MarketStatus::permissive(),
        }
    }

    fn loose() -> RiskConfig {
        RiskConfig {
            max_order_qty: Qty::parse("100").unwrap(),
            max_position: Qty::parse("100").unwrap(),
            max_notional: Money(1_000_000 * 1_000_000_000),
            max_orders_per_window: 4096,
            rate_window_ns: 1,
            max_book_age_ns: u64::MAX,
            ..cfg()
        }
    }

    fn fill(side: Side, qty: &str) -> Fill {
        Fill {
            order: ClientOrderId(0),
            instrument: InstrumentId(0),
            side,
            qty: Qty::parse(qty).unwrap(),
            avg_price: Price::parse("100").unwrap(),
            notional: Money(0),
            fee: Money(0),
            levels: 1,
            ts: UnixNanos(0),
            maker: false,
        }
    }

    #[test]
    fn unregistered_instruments_fail_closed() {
        let (b, pos) = (book(), Position::default());
        let mut chain = RiskChain::new(cfg()).unwrap();
        assert_eq!(
            chain.evaluate(intent(Side::Buy, "1", "100.02"), &st(&b, &pos, 0)).map(|_| ()),
            Err(Reject::UnknownInstrument)
        );
        assert_eq!(chain.approve_cancel(InstrumentId(0), 0), Err(Reject::UnknownInstrument));
    }

    #[test]
    fn exposure_limits_per_venue_and_total_spare_reducing_orders() {
        let (b, pos) = (book(), Position::default());
        let q = 1_000_000_000_i128;
        // Marks at mid 100.01; limits in quote.
        type Case = (ExposureLimits, &'static str, Side, &'static str, Result<(), Reject>);
        let table: [Case; 7] = [
            (
                ExposureLimits { max_gross_total: Some(Money(300 * q)), ..Default::default() },
                "0",
                Side::Buy,
                "2",
                Ok(()),
            ),
            (
                ExposureLimits { max_gross_total: Some(Money(300 * q)), ..Default::default() },
                "2",
                Side::Buy,
                "1",
                Err(Reject::MaxGrossExposure),
            ),
            (
                ExposureLimits { max_gross_total: Some(Money(100 * q)), ..Default::default() },
                "2",
                Side::Sell,
                "1",
                Ok(()),
            ),
            (
                ExposureLimits { max_gross_per_venue: Some(Money(150 * q)), ..Default::default() },
                "1",
                Side::Buy,
                "1",
                Err(Reject::MaxGrossExposure),
            ),
            (
                ExposureLimits { max_net_per_venue: Some(Money(150 * q)), ..Default::default() },
                "-1",
                Side::Sell,
                "1",
                Err(Reject::MaxNetExposure),
            ),
            (
                ExposureLimits { max_net_total: Some(Money(150 * q)), ..Default::default() },
                "-1",
                Side::Buy,
                "2",
                Ok(()),
            ),
            (
                ExposureLimits { max_net_total: Some(Money(50 * q)), ..Default::default() },
                "-1",
                Side::Buy,
                "3",
                Err(Reject::MaxNetExposure),
            ),
        ];
        for (i, (limits, held, side, qty, want)) in table.into_iter().enumerate() {
            let mut chain = chain(RiskConfig { exposure: limits, ..loose() });
            let held = Qty::parse(held).unwrap().units();
            if held != 0 {
                let s = if held > 0 { Side::Buy } else { Side::Sell };
                chain.on_fill(&fill(s, &Qty::from_units(held.abs()).to_string()));
            }
            let limit = if side == Side::Buy { "100.02" } else { "100" };
            assert_eq!(chain.evaluate(intent(side, qty, limit), &st(&b, &pos, 0)).map(|_| ()), want, "case {i}");
        }
    }

    #[test]
    fn exposure_counts_other_instruments_on_the_same_venue() {
        let (b, pos) = (book(), Position::default());
        let q = 1_000_000_000_i128;
        let limits = ExposureLimits { max_gross_per_venue: Some(Money(250 * q)), ..Default::default() };
        let mut chain = chain(RiskConfig { exposure: limits, ..loose() })
            .with_instrument(InstrumentId(1), Venue::Sim)
            .with_instrument(InstrumentId(2), Venue::Okx);
        chain.on_mark(InstrumentId(1), 100_000_000_000);
        chain.on_mark(InstrumentId(2), 100_000_000_000);
        chain.on_fill(&Fill { instrument: InstrumentId(2), ..fill(Side::Buy, "5") });
        assert!(
            chain.evaluate(intent(Side::Buy, "2", "100.02"), &st(&b, &pos, 0)).is_ok(),
            "other venue's 500 does not count"
        );
        chain.on_fill(&Fill { instrument: InstrumentId(1), ..fill(Side::Sell, "1") });
        assert_eq!(
            chain.evaluate(intent(Side::Buy, "2", "100.02"), &st(&b, &pos, 1)).map(|_| ()),
            Err(Reject::MaxGrossExposure)
        );
        let e = chain.exposure(Some(Venue::Okx));
        assert_eq!((e.gross, e.net), (500 * q, 500 * q));
    }

    #[test]
    fn live_orders_bound_in_flight_and_open_and_prevent_self_trades() {
        let (b, pos) = (book(), Position::default());
        let mut chain = chain(RiskConfig { max_in_flight: 2, max_open_orders: 1, ..loose() });
        let gtc = |side, qty, limit| OrderIntent { tif: TimeInForce::Gtc, ..intent(side, qty, limit) };
        let o1 = gtc(Side::Sell, "1", "100.01");
        assert!(chain.evaluate(o1, &st(&b, &pos, 0)).is_ok());
        chain.on_sent(ClientOrderId(1), &o1);
        // A buy at or above our own resting sell would trade with it.
        assert_eq!(chain.evaluate(gtc(Side::Buy, "1", "100.01"), &st(&b, &pos, 1)).map(|_| ()), Err(Reject::SelfTrade));
        assert!(chain.evaluate(gtc(Side::Buy, "1", "100"), &st(&b, &pos, 2)).is_ok(), "below it does not");
        chain.on_sent(ClientOrderId(2), &gtc(Side::Buy, "1", "100"));
        assert_eq!(chain.order_counts(), (2, 0));
        assert_eq!(
            chain.evaluate(gtc(Side::Buy, "1", "99.99"), &st(&b, &pos, 3)).map(|_| ()),
            Err(Reject::MaxInFlight)
        );
        chain.on_resting(ClientOrderId(1));
        assert_eq!(chain.order_counts(), (1, 1));
        assert_eq!(
            chain.evaluate(gtc(Side::Buy, "1", "99.99"), &st(&b, &pos, 4)).map(|_| ()),
            Err(Reject::MaxOpenOrders)
        );
        // An IOC order never rests, so the open-order limit does not apply to it.
        assert!(chain.evaluate(intent(Side::Buy, "1", "99.99"), &st(&b, &pos, 5)).is_ok());
        chain.on_closed(ClientOrderId(1));
        chain.on_closed(ClientOrderId(2));
        chain.on_closed(ClientOrderId(99));
        assert_eq!(chain.order_counts(), (0, 0));
        assert!(
            chain.evaluate(gtc(Side::Buy, "1", "100.01"), &st(&b, &pos, 6)).is_ok(),
            "no self-trade once it is gone"
        );
    }

    #[test]
    fn token_buckets_limit_orders_per_venue_and_instrument_and_cancels() {
        let (b, pos) = (book(), Position::default());
        let s = 1_000_000_000_u64;
        let mut chain = chain(RiskConfig {
            order_rate_per_venue: Some(Rate { per_sec: 1.0, burst: 3 }),
            order_rate_per_instrument: Some(Rate { per_sec: 0.5, burst: 2 }),
            cancel_rate_per_venue: Some(Rate { per_sec: 1.0, burst: 1 }),
            ..loose()
        });
        let buy = intent(Side::Buy, "1", "100.02");
        assert_eq!(chain.evaluate(buy, &st(&b, &pos, 10 * s)).map(|_| ()), Ok(()));
        assert!(chain.evaluate(buy, &st(&b, &pos, 10 * s)).is_ok());
        assert_eq!(
            chain.evaluate(buy, &st(&b, &pos, 10 * s)).map(|_| ()),
            Err(Reject::OrderRate),
            "instrument burst 2"
        );
        assert_eq!(chain.evaluate(buy, &st(&b, &pos, 11 * s)).map(|_| ()), Err(Reject::OrderRate), "0.5/s: not yet");
        assert!(chain.evaluate(buy, &st(&b, &pos, 12 * s)).is_ok(), "one instrument token after 2 s");
        // Rejected orders spend nothing.
        assert_eq!(chain.stats().approved, 3);
        assert_eq!(chain.approve_cancel(InstrumentId(0), 10 * s), Ok(()));
        assert_eq!(chain.approve_cancel(InstrumentId(0), 10 * s), Err(Reject::CancelRate));
        assert_eq!(chain.approve_cancel(InstrumentId(0), 11 * s), Ok(()));
        assert_eq!(chain.stats().rejected[Reject::CancelRate.index()], 1);
    }

    #[test]
    fn daily_loss_halts_and_its_baseline_resets_at_midnight() {
        let day = DAY_NS;
        let mut chain = chain(RiskConfig { max_daily_loss: Some(Money(100)), ..cfg() });
        chain.on_equity(day + 1, Money(1_000));
        chain.on_equity(day + 2, Money(901));
        assert_eq!(chain.switch().state(), RiskState::Active, "99 down on the day");
        // Next day: the baseline is the equity at its first update.
        chain.on_equity(2 * day, Money(850));
        chain.on_equity(2 * day + 5, Money(751));
        assert_eq!(chain.switch().state(), RiskState::Active, "99 down on the new day, 249 overall");
        chain.on_equity(2 * day + 6, Money(749));
        assert_eq!(chain.switch().state(), RiskState::Halted);
        chain.on_equity(3 * day, Money(749));
        assert_eq!(chain.switch().state(), RiskState::Halted, "a new day does not lift a halt");
    }

    #[test]
    fn strategy_limits_stop_only_that_strategy_until_resumed() {
        let (b, mut pos) = (book(), Position::default());
        pos.qty = Qty::parse("1").unwrap();
        let mut chain = chain(RiskConfig {
            strategy_max_loss: Some(Money(100)),
            strategy_max_drawdown: Some(Money(50)),
            ..loose()
        });
        let by = |s: u16, side, qty| {
            let limit = if side == Side::Buy { "100.02" } else { "100" };
            OrderIntent { strategy: StrategyId(s), ..intent(side, qty, limit) }
        };
        chain.on_strategy_equity(StrategyId(1), Money(200));
        chain.on_strategy_equity(StrategyId(1), Money(140));
        assert_eq!(chain.strategy_state(StrategyId(1)), RiskState::Reducing);
        assert_eq!(
            chain.evaluate(by(1, Side::Buy, "0.5"), &st(&b, &pos, 0)).map(|_| ()),
            Err(Reject::StrategyReducingOnly)
        );
        assert!(chain.evaluate(by(1, Side::Sell, "0.5"), &st(&b, &pos, 1)).is_ok());
        assert!(chain.evaluate(by(0, Side::Buy, "0.5"), &st(&b, &pos, 2)).is_ok(), "strategy 0 is untouched");
        chain.on_strategy_equity(StrategyId(1), Money(-101));
        assert_eq!(chain.evaluate(by(1, Side::Sell, "0.5"), &st(&b, &pos, 3)).map(|_| ()), Err(Reject::StrategyHalted));
        let beyond = u16::try_from(MAX_STRATEGIES).unwrap();
        assert_eq!(
            chain.evaluate(by(beyond, Side::Sell, "0.5"), &st(&b, &pos, 4)).map(|_| ()),
            Err(Reject::StrategyHalted)
        );
        chain.switch().set(RiskState::Halted);
        let _ = chain.evaluate(by(0, Side::Sell, "0.5"), &st(&b, &pos, 5));
        chain.switch().set(RiskState::Active);
        assert!(chain.evaluate(by(1, Side::Sell, "0.5"), &st(&b, &pos, 6)).is_ok(), "resume re-arms strategies");
    }

    #[test]
    fn halt_cancels_every_live_order_once() {
        let mut chain = chain(loose());
        let mut out = Vec::new();
        for id in 1..=3 {
            let o = OrderIntent { tif: TimeInForce::Gtc, ..intent(Side::Buy, "1", "99") };
            chain.on_sent(ClientOrderId(id), &o);
        }
        chain.on_resting(ClientOrderId(2));
        chain.cancels_on_halt(0, &mut out);
        assert!(out.is_empty(), "active: nothing to cancel");
        chain.switch().set(RiskState::Halted);
        chain.cancels_on_halt(0, &mut out);
        out.sort();
        assert_eq!(out, [ClientOrderId(1), ClientOrderId(2), ClientOrderId(3)]);
        out.clear();
        chain.cancels_on_halt(1, &mut out);
        assert!(out.is_empty(), "once per halt");
    }

    #[test]
    fn cancel_on_halt_can_be_turned_off() {
        let mut chain = chain(RiskConfig { cancel_on_halt: false, ..loose() });
        chain.on_sent(ClientOrderId(1), &intent(Side::Buy, "1", "99"));
        chain.switch().set(RiskState::Halted);
        let mut out = Vec::new();
        chain.cancels_on_halt(0, &mut out);
        assert!(out.is_empty(), "cancel_on_halt = false");
    }

    #[test]
    fn approvals_run_every_check_and_rejections_name_how_far_they_got() {
        let (b, pos) = (book(), Position::default());
        let mut chain = chain(loose());
        assert!(chain.evaluate(intent(Side::Buy, "1", "100.02"), &st(&b, &pos, 0)).is_ok());
        assert_eq!(usize::from(chain.last_checks()), CHECKS.len());
        chain.switch().set(RiskState::Halted);
        assert!(chain.evaluate(intent(Side::Buy, "1", "100.02"), &st(&b, &pos, 1)).is_err());
        assert_eq!(chain.last_checks(), 1);
    }

    proptest! {
        // HALTED approves nothing; REDUCING approves only risk-reducing orders.
        #[test]
        fn states_bound_what_passes(
            orders in proptest::collection::vec((any::<bool>(), 1_i64..300, -300_i64..300), 1..60),
            halted in any::<bool>(),
        ) {
            let b = book();
            let loose = RiskConfig { max_order_qty: Qty::parse("5").unwrap(), max_position: Qty::parse("5").unwrap(), max_notional: Money(1_000 * 1_000_000_000), price_band_bps: 20, max_orders_per_window: 4096, rate_window_ns: 1, anomaly_threshold: 0.9, max_book_age_ns: u64::MAX, ..cfg() };
            let mut chain = chain(loose);
            chain.switch().set(if halted { RiskState::Halted } else { RiskState::Reducing });
            for (i, (buy, qty_centi, pos_centi)) in orders.into_iter().enumerate() {
                let mut pos = Position::default();
                pos.qty = Qty::from_units(pos_centi * 10_000_000);
                let side = if buy { Side::Buy } else { Side::Sell };
                let o = OrderIntent { instrument: InstrumentId(0), side, qty: Qty::from_units(qty_centi * 10_000_000), limit: Price::parse(if buy { "100.02" } else { "100" }).unwrap(), tif: TimeInForce::Ioc, ts: UnixNanos(0), strategy: StrategyId(0) };
                let st = State { now: UnixNanos(i as u64), instrument: InstrumentId(0), book: &b, features: &[], scores: Scores::default(), position: &pos, market: MarketStatus::permissive() };
                let ok = chain.evaluate(o, &st).is_ok();
                if halted {
                    prop_assert!(!ok);
                } else if ok {
                    let after = pos.after(side, o.qty).unwrap().units();
                    prop_assert!(after.unsigned_abs() < pos.qty.units().unsigned_abs() && after.signum() * pos.qty.units().signum() >= 0);
                }
            }
        }

        // Tighter limits never approve more.
        #[test]
        fn tighter_limits_never_approve_more(
            orders in proptest::collection::vec((any::<bool>(), 1_i64..300, -40_i64..40, 0.0_f32..1.0), 1..60),
            shrink_qty in 0_i64..100, shrink_band in 0_i64..10, shrink_anom in 0.0_f32..0.5, shrink_exposure in 0_i128..200,
        ) {
            let b = book();
            let pos = Position::default();
            let loose_cfg = RiskConfig { max_order_qty: Qty::parse("2").unwrap(), max_position: Qty::parse("3").unwrap(), max_notional: Money(300 * 1_000_000_000), price_band_bps: 20, max_orders_per_window: 4096, rate_window_ns: 1, anomaly_threshold: 0.8, max_book_age_ns: u64::MAX, exposure: ExposureLimits { max_gross_total: Some(Money(250 * 1_000_000_000)), max_net_per_venue: Some(Money(250 * 1_000_000_000)), ..ExposureLimits::default() }, ..cfg() };
            let tight_exposure = ExposureLimits { max_gross_total: Some(Money((250 - shrink_exposure) * 1_000_000_000)), ..loose_cfg.exposure };
            let tight_cfg = RiskConfig { max_order_qty: Qty::from_units(loose_cfg.max_order_qty.units() - shrink_qty * 10_000_000), price_band_bps: 20 - shrink_band, anomaly_threshold: 0.8 - shrink_anom, exposure: tight_exposure, ..loose_cfg };
            let mut loose = chain(loose_cfg);
            let mut tight = chain(tight_cfg);
            for (i, (buy, qty_centi, off_bps, anomaly)) in orders.into_iter().enumerate() {
                let mid = 100_010_000_000_i64;
                let limit = Price::from_units(mid + mid / 10_000 * off_bps);
                let o = OrderIntent { instrument: InstrumentId(0), side: if buy { Side::Buy } else { Side::Sell }, qty: Qty::from_units(qty_centi * 10_000_000), limit, tif: TimeInForce::Ioc, ts: UnixNanos(0), strategy: StrategyId(0) };
                let st = State { now: UnixNanos(i as u64 * 10), instrument: InstrumentId(0), book: &b, features: &[], scores: Scores { signal: 0.0, anomaly }, position: &pos, market: MarketStatus::permissive() };
                let t = tight.evaluate(o, &st).is_ok();
                let l = loose.evaluate(o, &st).is_ok();
                prop_assert!(!t || l, "tight approved what loose rejected");
            }
        }
    }
}
