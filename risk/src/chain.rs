//! The chain: stateless checks in a fixed order, then the order-rate limit, then approval.

use argus_core::{Approved, OrderIntent, Reject, RiskCheck, State};

use crate::checks::{AnomalyBlock, MaxNotional, MaxOrderQty, MaxPosition, PriceBand};
use crate::config::{ConfigError, RiskConfig};

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
    /// Ring of the last approvals' times (preallocated; capacity = max orders per window).
    recent: Vec<u64>,
    head: usize,
    halted: bool,
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
            recent: Vec::with_capacity(cfg.max_orders_per_window as usize),
            head: 0,
            halted: false,
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

    /// Engages or releases the kill switch; while engaged every intent is rejected.
    pub fn set_halted(&mut self, halted: bool) {
        self.halted = halted;
    }

    /// Runs every check; the first failure is the reason.
    ///
    /// # Errors
    /// The [`Reject`] reason.
    pub fn evaluate(&mut self, o: OrderIntent, st: &State<'_>) -> Result<Approved<OrderIntent>, Reject> {
        let r = self.evaluate_inner(&o, st);
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

    fn evaluate_inner(&self, o: &OrderIntent, st: &State<'_>) -> Result<(), Reject> {
        if self.halted {
            return Err(Reject::Halted);
        }
        let checks: [&dyn RiskCheck; 5] = [&self.max_qty, &self.max_pos, &self.max_notional, &self.band, &self.anomaly];
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
        BookAction, BookDelta, DeltaFlags, InstrumentId, Money, OrderBook, Position, Price, Qty, Scores, Side,
        TimeInForce, UnixNanos,
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
        };
        assert_eq!(chain.evaluate(intent(Side::Buy, "1", "100.02"), &st).map(|_| ()), Err(Reject::MaxPosition));
        chain.set_halted(true);
        assert_eq!(chain.evaluate(intent(Side::Sell, "1", "100"), &st).map(|_| ()), Err(Reject::Halted));
        assert_eq!(chain.stats().approved, 3);
        let empty = OrderBook::new(0);
        chain.set_halted(false);
        let st = State {
            now: UnixNanos(9000),
            instrument: InstrumentId(0),
            book: &empty,
            features: &[],
            scores: Scores::default(),
            position: &pos,
        };
        assert_eq!(chain.evaluate(intent(Side::Sell, "1", "100"), &st).map(|_| ()), Err(Reject::NoMarket));
    }

    #[test]
    fn invalid_config_reports_every_error() {
        let bad = RiskConfig { max_order_qty: Qty::ZERO, price_band_bps: -1, rate_window_ns: 0, ..cfg() };
        let err = RiskChain::new(bad).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    proptest! {
        // Tighter limits never approve more.
        #[test]
        fn tighter_limits_never_approve_more(
            orders in proptest::collection::vec((any::<bool>(), 1_i64..300, -40_i64..40, 0.0_f32..1.0), 1..60),
            shrink_qty in 0_i64..100, shrink_band in 0_i64..10, shrink_anom in 0.0_f32..0.5,
        ) {
            let b = book();
            let pos = Position::default();
            let loose_cfg = RiskConfig { max_order_qty: Qty::parse("2").unwrap(), max_position: Qty::parse("3").unwrap(), max_notional: Money(300 * 1_000_000_000), price_band_bps: 20, max_orders_per_window: 4096, rate_window_ns: 1, anomaly_threshold: 0.8 };
            let tight_cfg = RiskConfig { max_order_qty: Qty::from_units(loose_cfg.max_order_qty.units() - shrink_qty * 10_000_000), price_band_bps: 20 - shrink_band, anomaly_threshold: 0.8 - shrink_anom, ..loose_cfg };
            let mut loose = RiskChain::new(loose_cfg).unwrap();
            let mut tight = RiskChain::new(tight_cfg).unwrap();
            for (i, (buy, qty_centi, off_bps, anomaly)) in orders.into_iter().enumerate() {
                let mid = 100_010_000_000_i64;
                let limit = Price::from_units(mid + mid / 10_000 * off_bps);
                let o = OrderIntent { instrument: InstrumentId(0), side: if buy { Side::Buy } else { Side::Sell }, qty: Qty::from_units(qty_centi * 10_000_000), limit, tif: TimeInForce::Ioc, ts: UnixNanos(0) };
                let st = State { now: UnixNanos(i as u64 * 10), instrument: InstrumentId(0), book: &b, features: &[], scores: Scores { signal: 0.0, anomaly }, position: &pos };
                let t = tight.evaluate(o, &st).is_ok();
                let l = loose.evaluate(o, &st).is_ok();
                prop_assert!(!t || l, "tight approved what loose rejected");
            }
        }
    }
}
