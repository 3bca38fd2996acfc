//! The stateless checks. Each is one [`RiskCheck`] with one reason.

use argus_core::{notional_units, Money, OrderIntent, Qty, Reject, RiskCheck, State};

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

#[derive(Debug, Clone, Copy)]
pub struct AnomalyBlock(pub f32);

impl RiskCheck for AnomalyBlock {
    fn check(&self, _: &OrderIntent, st: &State<'_>) -> Result<(), Reject> {
        // NaN scores fail closed.
        if st.scores.anomaly.is_nan() || st.scores.anomaly > self.0 {
            return Err(Reject::AnomalyBlock);
        }
        Ok(())
    }
}
