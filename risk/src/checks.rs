//! The stateless checks. Each is one [`RiskCheck`] with one reason.

use argus_core::{notional_units, Money, OrderIntent, Qty, Reject, RiskCheck, State};

/// Instrument known and tradable, price on tick, quantity on lot and within min/max, notional at
/// least the venue minimum. An unpriced order (limit 0: a market order finds no touch to price
/// it against) is `no_market` while the book has no two sides.
#[derive(Debug, Clone, Copy)]
pub struct OrderShape;

impl RiskCheck for OrderShape {
    fn check(&self, o: &OrderIntent, st: &State<'_>) -> Result<(), Reject> {
        let spec = st.market.spec.filter(|s| s.tradable).ok_or(Reject::UnknownInstrument)?;
        if o.limit.units() <= 0 && st.book.mid_units().is_none() {
            return Err(Reject::NoMarket);
        }
        if spec.tick.units() <= 0 || o.limit.units() <= 0 || o.limit.units() % spec.tick.units() != 0 {
            return Err(Reject::OffTick);
        }
        if spec.lot.units() <= 0 || o.qty.units() % spec.lot.units() != 0 {
            return Err(Reject::OffLot);
        }
        if o.qty < spec.min_qty || o.qty > spec.max_qty {
            return Err(Reject::QtyOutOfRange);
        }
        if notional_units(o.limit, o.qty) < spec.min_notional.0 {
            return Err(Reject::MinNotional);
        }
        Ok(())
    }
}

/// Risk-increasing orders need a synced book that changed within `max_age_ns` (venue time).
#[derive(Debug, Clone, Copy)]
pub struct MarketState {
    pub max_age_ns: u64,
}

impl RiskCheck for MarketState {
    fn check(&self, o: &OrderIntent, st: &State<'_>) -> Result<(), Reject> {
        if st.reduces_risk(o) {
            return Ok(());
        }
        if !st.market.book_synced {
            return Err(Reject::BookNotReady);
        }
        if st.now.since(st.market.last_book_update) > self.max_age_ns {
            return Err(Reject::StaleBook);
        }
        Ok(())
    }
}

/// Risk-increasing orders need our clock within `max_ns` of the venue's: |receive time - venue
/// time| of the latest event (network delay included). No measurement yet fails closed.
#[derive(Debug, Clone, Copy)]
pub struct ClockSkew(pub Option<u64>);

impl RiskCheck for ClockSkew {
    fn check(&self, o: &OrderIntent, st: &State<'_>) -> Result<(), Reject> {
        let Some(max) = self.0 else { return Ok(()) };
        if st.reduces_risk(o) {
            return Ok(());
        }
        match st.market.clock_skew_ns {
            Some(skew) if skew.unsigned_abs() <= max => Ok(()),
            _ => Err(Reject::ClockSkew),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MaxOrderQty(pub Qty);

impl RiskCheck for MaxOrderQty {
    fn check(&self, o: &OrderIntent, _: &State<'_>) -> Result<(), Reject> {
        if o.qty.units() <= 0 || o.qty > self.0 {
            return Err(Reject::MaxOrderQty);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MaxPosition(pub Qty);

impl RiskCheck for MaxPosition {
    fn check(&self, o: &OrderIntent, st: &State<'_>) -> Result<(), Reject> {
        match st.position.after(o.side, o.qty) {
            Some(q) if q.units().checked_abs().is_some_and(|a| a <= self.0.units()) => Ok(()),
            _ => Err(Reject::MaxPosition),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MaxNotional(pub Money);

impl RiskCheck for MaxNotional {
    fn check(&self, o: &OrderIntent, _: &State<'_>) -> Result<(), Reject> {
        if notional_units(o.limit, o.qty).abs() > self.0 .0 {
            return Err(Reject::MaxNotional);
        }
        Ok(())
    }
}

/// Limit within `bps` of mid; no two-sided book means no order.
#[derive(Debug, Clone, Copy)]
pub struct PriceBand(pub i64);

impl RiskCheck for PriceBand {
    fn check(&self, o: &OrderIntent, st: &State<'_>) -> Result<(), Reject> {
        if st.book.is_crossed() {
            return Err(Reject::NoMarket);
        }
        let mid = st.book.mid_units().ok_or(Reject::NoMarket)?;
        let dist = (i128::from(o.limit.units()) - i128::from(mid)).abs() * 10_000;
        if dist > i128::from(mid) * i128::from(self.0) {
            return Err(Reject::PriceBand);
        }
        Ok(())
    }
}

/// Blocks risk-increasing orders while the model's anomaly score is above the threshold.
#[derive(Debug, Clone, Copy)]
pub struct AnomalyBlock(pub f32);

impl RiskCheck for AnomalyBlock {
    fn check(&self, o: &OrderIntent, st: &State<'_>) -> Result<(), Reject> {
        // NaN scores fail closed.
        if (st.scores.anomaly.is_nan() || st.scores.anomaly > self.0) && !st.reduces_risk(o) {
            return Err(Reject::AnomalyBlock);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use argus_core::{
        BookAction, BookDelta, DeltaFlags, InstrumentId, InstrumentSpec, MarketStatus, OrderBook, Position, Price,
        Scores, Side, TimeInForce, UnixNanos,
    };

    /// A book of one level a side, `qty` each.
    pub(crate) fn two_sided(bid: &str, ask: &str, qty: &str) -> OrderBook {
        let mut b = OrderBook::new(0);
        for (side, px) in [(Side::Buy, bid), (Side::Sell, ask)] {
            b.apply(&BookDelta {
                action: BookAction::Add,
                side,
                flags: DeltaFlags::default(),
                price: Price::parse(px).unwrap(),
                qty: Qty::parse(qty).unwrap(),
                sequence: 1,
            });
        }
        b
    }

    fn order(side: Side, qty: &str, limit: &str) -> OrderIntent {
        OrderIntent {
            instrument: InstrumentId(0),
            side,
            qty: Qty::parse(qty).unwrap(),
            limit: Price::parse(limit).unwrap(),
            tif: TimeInForce::Ioc,
            ts: UnixNanos(0),
            strategy: argus_core::StrategyId(0),
        }
    }

    #[test]
    fn order_shape_follows_the_venue_rules() {
        let (empty, pos) = (OrderBook::new(0), Position::default());
        let book = two_sided("61837.63", "61837.64", "1");
        let spec = InstrumentSpec::BINANCE_SPOT_BTCUSDT;
        let st = |spec: Option<InstrumentSpec>| State {
            now: UnixNanos(0),
            instrument: InstrumentId(0),
            book: &book,
            features: &[],
            scores: Scores::default(),
            position: &pos,
            market: MarketStatus { spec, ..MarketStatus::permissive() },
        };
        type Case = (Option<InstrumentSpec>, &'static str, &'static str, Result<(), Reject>);
        let cases: [Case; 9] = [
            (Some(spec), "0.001", "61837.63", Ok(())),
            (Some(spec), "0.00001", "61837.63", Err(Reject::MinNotional)), // 0.62 USDT < 5
            (Some(spec), "0.001", "61837.635", Err(Reject::OffTick)),
            (Some(spec), "0.000015", "61837.63", Err(Reject::OffLot)),
            (Some(spec), "0.000000", "61837.63", Err(Reject::QtyOutOfRange)),
            (Some(spec), "9000.00001", "61837.63", Err(Reject::QtyOutOfRange)),
            (Some(spec), "0.001", "0", Err(Reject::OffTick)),
            (None, "0.001", "61837.63", Err(Reject::UnknownInstrument)),
            (Some(InstrumentSpec { tradable: false, ..spec }), "0.001", "61837.63", Err(Reject::UnknownInstrument)),
        ];
        for (i, (spec, qty, px, want)) in cases.into_iter().enumerate() {
            assert_eq!(OrderShape.check(&order(Side::Buy, qty, px), &st(spec)), want, "case {i}");
        }
        // A market order with no touch to price it: unpriced, and said so.
        let no_book = State { book: &empty, ..st(Some(spec)) };
        assert_eq!(OrderShape.check(&order(Side::Buy, "0.001", "0"), &no_book), Err(Reject::NoMarket));
        assert_eq!(OrderShape.check(&order(Side::Buy, "0.001", "61837.635"), &no_book), Err(Reject::OffTick));
    }

    #[test]
    fn market_state_blocks_only_risk_increasing_orders() {
        let book = OrderBook::new(0);
        let mut long = Position::default();
        long.qty = Qty::parse("1").unwrap();
        let check = MarketState { max_age_ns: 100 };
        let st = |synced: bool, now: u64, pos| State {
            now: UnixNanos(now),
            instrument: InstrumentId(0),
            book: &book,
            features: &[],
            scores: Scores::default(),
            position: pos,
            market: MarketStatus {
                book_synced: synced,
                last_book_update: UnixNanos(1_000),
                ..MarketStatus::permissive()
            },
        };
        let buy = order(Side::Buy, "1", "1");
        let sell = order(Side::Sell, "0.5", "1");
        assert_eq!(check.check(&buy, &st(true, 1_100, &long)), Ok(()), "exactly at the age limit");
        assert_eq!(check.check(&buy, &st(true, 1_101, &long)), Err(Reject::StaleBook));
        assert_eq!(check.check(&buy, &st(false, 1_000, &long)), Err(Reject::BookNotReady));
        assert_eq!(check.check(&sell, &st(false, 9_999, &long)), Ok(()), "reducing passes");
    }

    #[test]
    fn clock_skew_blocks_risk_increasing_orders_beyond_the_bound() {
        let book = OrderBook::new(0);
        let mut long = Position::default();
        long.qty = Qty::parse("1").unwrap();
        let st = |skew: Option<i64>| State {
            now: UnixNanos(0),
            instrument: InstrumentId(0),
            book: &book,
            features: &[],
            scores: Scores::default(),
            position: &long,
            market: MarketStatus { clock_skew_ns: skew, ..MarketStatus::permissive() },
        };
        let (buy, sell) = (order(Side::Buy, "1", "1"), order(Side::Sell, "1", "1"));
        let check = ClockSkew(Some(1_000));
        let cases = [
            (buy, Some(1_000), Ok(())),
            (buy, Some(-1_000), Ok(())),
            (buy, Some(1_001), Err(Reject::ClockSkew)),
            (buy, Some(-1_001), Err(Reject::ClockSkew)),
            (buy, Some(i64::MIN), Err(Reject::ClockSkew)),
            (buy, None, Err(Reject::ClockSkew)),
            (sell, None, Ok(())),
            (sell, Some(i64::MAX), Ok(())),
        ];
        for (i, (o, skew, want)) in cases.into_iter().enumerate() {
            assert_eq!(check.check(&o, &st(skew)), want, "case {i}");
        }
        assert_eq!(ClockSkew(None).check(&buy, &st(None)), Ok(()), "off");
    }
}
