//! Position and PnL accounting with average cost, exact in `10^-9` quote units.

use crate::{Fill, Money, Qty, Side, FIXED_SCALE};

/// One instrument's position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Signed base quantity: positive long, negative short.
    pub qty: Qty,
    /// Signed cost of the open quantity (`sum(qty * price)` at entry).
    open_cost: i128,
    pub realized: Money,
    pub fees: Money,
}

impl Position {
    /// Applies a fill.
    pub fn apply(&mut self, fill: &Fill) {
        self.fees.0 += fill.fee.0;
        let pos = i128::from(self.qty.units());
        let dq = i128::from(fill.qty.units()) * i128::from(fill.side.sign());
        let signed_notional = fill.notional.0 * i128::from(fill.side.sign());
        if pos == 0 || pos.signum() == dq.signum() {
            self.open_cost += signed_notional;
            self.qty = Qty::from_units(saturate(pos + dq));
            return;
        }
        let closing = dq.abs().min(pos.abs());
        // Cost of the closed part, and the fill notional attributable to it.
        let closed_cost = self.open_cost * closing / pos.abs();
        let closing_notional = signed_notional * closing / dq.abs();
        // Selling `closing` of a long realizes proceeds - cost; buying back a short the opposite.
        self.realized.0 += -closing_notional - closed_cost;
        self.open_cost -= closed_cost;
        let rest = dq.abs() - closing;
        let new_pos = pos + dq;
        if rest > 0 {
            self.open_cost = signed_notional - closing_notional;
        }
        self.qty = Qty::from_units(saturate(new_pos));
        if new_pos == 0 {
            self.open_cost = 0;
        }
    }

    /// Mark-to-market PnL of the open quantity at `mark_units` (a price in `10^-9` units).
    pub fn unrealized(&self, mark_units: i64) -> Money {
        let value = i128::from(self.qty.units()) * i128::from(mark_units) / i128::from(FIXED_SCALE);
        Money(value - self.open_cost)
    }

    /// Quantity after a hypothetical fill of `qty` on `side`.
    pub fn after(&self, side: Side, qty: Qty) -> Option<Qty> {
        match side {
            Side::Buy => self.qty.checked_add(qty),
            Side::Sell => self.qty.checked_sub(qty),
        }
    }
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{notional_units, ClientOrderId, InstrumentId, Price, UnixNanos};

    fn fill(side: Side, qty: &str, px: &str) -> Fill {
        let (q, p) = (Qty::parse(qty).unwrap(), Price::parse(px).unwrap());
        Fill {
            order: ClientOrderId(1),
            instrument: InstrumentId(0),
            side,
            qty: q,
            avg_price: p,
            notional: Money(notional_units(p, q)),
            fee: Money(1),
            levels: 1,
            ts: UnixNanos(0),
            maker: false,
        }
    }

    #[test]
    fn long_round_trip_realizes_difference() {
        let mut p = Position::default();
        p.apply(&fill(Side::Buy, "2", "100"));
        p.apply(&fill(Side::Sell, "1", "110"));
        assert_eq!(p.realized.to_string(), "10");
        assert_eq!(p.qty.to_string(), "1");
        assert_eq!(p.unrealized(Price::parse("105").unwrap().units()).to_string(), "5");
        p.apply(&fill(Side::Sell, "1", "90"));
        assert_eq!(p.realized.to_string(), "0");
        assert_eq!(p.qty, Qty::ZERO);
        assert_eq!(p.fees, Money(3));
    }

    #[test]
    fn flip_from_short_to_long() {
        let mut p = Position::default();
        p.apply(&fill(Side::Sell, "1", "100"));
        p.apply(&fill(Side::Buy, "3", "90"));
        assert_eq!(p.realized.to_string(), "10");
        assert_eq!(p.qty.to_string(), "2");
        assert_eq!(p.unrealized(Price::parse("91").unwrap().units()).to_string(), "2");
    }
}
