//! The chain: stateless checks in a fixed order, then the order-rate limit, then approval.

use argus_core::{Approved, Money, OrderIntent, Reject, RiskCheck, State};

use crate::checks::{AnomalyBlock, MarketState, MaxNotional, MaxOrderQty, MaxPosition, OrderShape, PriceBand};
use crate::config::{ConfigError, RiskConfig};
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

/// Counts of outcomes, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiskStats {
    pub approved: u64,
    pub rejected: [u64; Reject::ALL.len()],
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
    /// Ring of the last approvals' times (preallocated; capacity = max orders per window).
    recent: Vec<u64>,
    head: usize,
    switch: KillSwitch,
    seen: RiskState,
    transitions: Vec<Transition>,
    peak_equity: i128,
    stats: RiskStats,
}

impl RiskChain {
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
            recent: Vec::with_capacity(cfg.max_orders_per_window as usize),
            head: 0,
            switch: KillSwitch::new(),
            seen: RiskState::Active,
            transitions: Vec::with_capacity(MAX_TRANSITIONS),
            peak_equity: 0,
            stats: RiskStats::default(),
            cfg,
        })
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

    /// Feeds the current equity (realized + unrealized - fees, quote units): a loss beyond
    /// `max_loss` halts, a fall from peak beyond `max_drawdown` moves to reducing-only.
    pub fn on_equity(&mut self, equity: Money) {
        self.peak_equity = self.peak_equity.max(equity.0);
        if self.cfg.max_loss.is_some_and(|m| -equity.0 > m.0) {
            self.switch.escalate(RiskState::Halted);
        } else if self.cfg.max_drawdown.is_some_and(|m| self.peak_equity - equity.0 > m.0) {
            self.switch.escalate(RiskState::Reducing);
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
            if self.transitions.len() < MAX_TRANSITIONS {
                let intents = self.stats.approved + self.stats.rejected.iter().sum::<u64>();
                self.transitions.push(Transition {
                    state,
                    intents_before: intents,
                    approved_before: self.stats.approved,
                });
            }
        }
        let r = self.evaluate_inner(&o, st, state);
        match r {
            Ok(()) => {
                self.record_approval(st.now.0);
                self.stats.approved += 1;
                Ok(Approved::new_by_risk(o))
            }
            Err(reason) => {
                self.stats.rejected[reason.index()] += 1;
                Err(reason)
            }
        }
    }

    fn evaluate_inner(&self, o: &OrderIntent, st: &State<'_>, state: RiskState) -> Result<(), Reject> {
        match state {
            RiskState::Halted => return Err(Reject::Halted),
            RiskState::Reducing if !st.reduces_risk(o) => return Err(Reject::ReducingOnly),
            _ => {}
        }
        let checks: [&dyn RiskCheck; 7] =
            [&OrderShape, &self.max_qty, &self.max_pos, &self.max_notional, &self.market, &self.band, &self.anomaly];
        for c in checks {
            c.check(o, st)?;
        }
        self.check_rate(st.now.0)
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
    use argus_core::{
        BookAction, BookDelta, DeltaFlags, InstrumentId, MarketStatus, Money, OrderBook, Position, Price, Qty, Scores,
        Side, TimeInForce, UnixNanos,
    };
    use proptest::prelude::*;

    fn book() -> OrderBook {
        let mut b = OrderBook::new(0);
        for (side, px) in [(Side::Buy, "100"), (Side::Sell, "100.02")] {
            b.apply(&BookDelta {
                action: BookAction::Add,
                side,
                flags: DeltaFlags::default(),
                price: Price::parse(px).unwrap(),
                qty: Qty::parse("5").unwrap(),
                sequence: 1,
            });
        }
        b
    }

    fn intent(side: Side, qty: &str, limit: &str) -> OrderIntent {
        OrderIntent {
            instrument: InstrumentId(0),
            side,
            qty: Qty::parse(qty).unwrap(),
            limit: Price::parse(limit).unwrap(),
            tif: TimeInForce::Ioc,
            ts: UnixNanos(0),
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
        }
    }

    #[test]
    fn each_limit_rejects_with_its_reason() {
        let (b, mut pos) = (book(), Position::default());
        let mut chain = RiskChain::new(cfg()).unwrap();
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
        let mut chain = RiskChain::new(RiskConfig { max_orders_per_window: 100, ..cfg() }).unwrap();
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
        let mut chain =
            RiskChain::new(RiskConfig { max_loss: Some(Money(100)), max_drawdown: Some(Money(50)), ..cfg() }).unwrap();
        chain.on_equity(Money(200));
        assert_eq!(chain.switch().state(), RiskState::Active);
        chain.on_equity(Money(140));
        assert_eq!(chain.switch().state(), RiskState::Reducing, "60 below the peak");
        chain.on_equity(Money(-101));
        assert_eq!(chain.switch().state(), RiskState::Halted);
        chain.on_equity(Money(500));
        assert_eq!(chain.switch().state(), RiskState::Halted, "recovering does not re-arm");
    }

    #[test]
    fn invalid_config_reports_every_error() {
        let bad = RiskConfig { max_order_qty: Qty::ZERO, price_band_bps: -1, rate_window_ns: 0, ..cfg() };
        let err = RiskChain::new(bad).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    proptest! {
        // HALTED approves nothing; REDUCING approves only risk-reducing orders.
        #[test]
        fn states_bound_what_passes(
            orders in proptest::collection::vec((any::<bool>(), 1_i64..300, -300_i64..300), 1..60),
            halted in any::<bool>(),
        ) {
            let b = book();
            let loose = RiskConfig { max_order_qty: Qty::parse("5").unwrap(), max_position: Qty::parse("5").unwrap(), max_notional: Money(1_000 * 1_000_000_000), price_band_bps: 20, max_orders_per_window: 4096, rate_window_ns: 1, anomaly_threshold: 0.9, max_loss: None, max_drawdown: None, max_book_age_ns: u64::MAX };
            let mut chain = RiskChain::new(loose).unwrap();
            chain.switch().set(if halted { RiskState::Halted } else { RiskState::Reducing });
            for (i, (buy, qty_centi, pos_centi)) in orders.into_iter().enumerate() {
                let mut pos = Position::default();
                pos.qty = Qty::from_units(pos_centi * 10_000_000);
                let side = if buy { Side::Buy } else { Side::Sell };
                let o = OrderIntent { instrument: InstrumentId(0), side, qty: Qty::from_units(qty_centi * 10_000_000), limit: Price::parse(if buy { "100.02" } else { "100" }).unwrap(), tif: TimeInForce::Ioc, ts: UnixNanos(0) };
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
            shrink_qty in 0_i64..100, shrink_band in 0_i64..10, shrink_anom in 0.0_f32..0.5,
        ) {
            let b = book();
            let pos = Position::default();
            let loose_cfg = RiskConfig { max_order_qty: Qty::parse("2").unwrap(), max_position: Qty::parse("3").unwrap(), max_notional: Money(300 * 1_000_000_000), price_band_bps: 20, max_orders_per_window: 4096, rate_window_ns: 1, anomaly_threshold: 0.8, max_loss: None, max_drawdown: None, max_book_age_ns: u64::MAX };
            let tight_cfg = RiskConfig { max_order_qty: Qty::from_units(loose_cfg.max_order_qty.units() - shrink_qty * 10_000_000), price_band_bps: 20 - shrink_band, anomaly_threshold: 0.8 - shrink_anom, ..loose_cfg };
            let mut loose = RiskChain::new(loose_cfg).unwrap();
            let mut tight = RiskChain::new(tight_cfg).unwrap();
            for (i, (buy, qty_centi, off_bps, anomaly)) in orders.into_iter().enumerate() {
                let mid = 100_010_000_000_i64;
                let limit = Price::from_units(mid + mid / 10_000 * off_bps);
                let o = OrderIntent { instrument: InstrumentId(0), side: if buy { Side::Buy } else { Side::Sell }, qty: Qty::from_units(qty_centi * 10_000_000), limit, tif: TimeInForce::Ioc, ts: UnixNanos(0) };
                let st = State { now: UnixNanos(i as u64 * 10), instrument: InstrumentId(0), book: &b, features: &[], scores: Scores { signal: 0.0, anomaly }, position: &pos, market: MarketStatus::permissive() };
                let t = tight.evaluate(o, &st).is_ok();
                let l = loose.evaluate(o, &st).is_ok();
                prop_assert!(!t || l, "tight approved what loose rejected");
            }
        }
    }
}
