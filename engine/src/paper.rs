//! Paper execution: approved IOC orders fill immediately against the current book, walking the
//! levels up to the limit, paying a taker fee. The simulated fills do not deplete the book (our
//! sizes are small next to the displayed depth); that bias is documented in the report.

use argus_core::{
    notional_units, Approved, ClientOrderId, ExecError, Executor, Fill, Money, OrderBook, OrderIntent, Price, Qty,
    Side, FIXED_SCALE,
};

/// Fills approved orders against a book.
#[derive(Debug)]
pub struct PaperExecutor {
    fee_bps: i64,
    next_id: u64,
    fills: Vec<Fill>,
}

impl PaperExecutor {
    pub fn new(fee_bps: i64) -> Self {
        Self { fee_bps, next_id: 1, fills: Vec::with_capacity(64) }
    }

    /// The executor bound to the book as it is now.
    pub fn at<'a>(&'a mut self, book: &'a OrderBook) -> PaperVenue<'a> {
        PaperVenue { exec: self, book }
    }
}

/// [`PaperExecutor`] with the book to fill against.
#[derive(Debug)]
pub struct PaperVenue<'a> {
    exec: &'a mut PaperExecutor,
    book: &'a OrderBook,
}

impl Executor for PaperVenue<'_> {
    fn submit(&mut self, o: Approved<OrderIntent>) -> Result<ClientOrderId, ExecError> {
        let o = o.into_inner();
        let mut left = o.qty.units();
        let mut filled = 0_i64;
        let mut notional = 0_i128;
        let mut levels = 0_u32;
        for l in self.book.levels(o.side.opposite()) {
            let inside = match o.side {
                Side::Buy => l.price <= o.limit,
                Side::Sell => l.price >= o.limit,
            };
            if !inside || left == 0 {
                break;
            }
            let take = left.min(l.qty.units());
            notional += notional_units(l.price, Qty::from_units(take));
            filled += take;
            left -= take;
            levels += 1;
        }
        if filled == 0 {
            return Err(ExecError::NoLiquidity);
        }
        let id = ClientOrderId(self.exec.next_id);
        self.exec.next_id += 1;
        let avg = notional * i128::from(FIXED_SCALE) / i128::from(filled);
        self.exec.fills.push(Fill {
            order: id,
            instrument: o.instrument,
            side: o.side,
            qty: Qty::from_units(filled),
            avg_price: Price::from_units(i64::try_from(avg).unwrap_or(i64::MAX)),
            notional: Money(notional),
            fee: Money(notional * i128::from(self.exec.fee_bps) / 10_000),
            levels,
            ts: o.ts,
        });
        Ok(id)
    }

    fn cancel(&mut self, _: ClientOrderId) -> Result<(), ExecError> {
        // Paper orders are immediate-or-cancel: none is ever left open to cancel.
        Err(ExecError::UnknownOrder)
    }

    fn poll_fills(&mut self, out: &mut Vec<Fill>) {
        out.append(&mut self.exec.fills);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::{BookAction, BookDelta, DeltaFlags, InstrumentId, MarketStatus, TimeInForce, UnixNanos};

    fn book() -> OrderBook {
        let mut b = OrderBook::new(0);
        for (side, px, qty) in
            [(Side::Sell, "100", "1"), (Side::Sell, "101", "2"), (Side::Sell, "105", "5"), (Side::Buy, "99", "3")]
        {
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

    // Approval is risk's job; tests reach the executor through a real chain with loose limits.
    fn approve(o: OrderIntent, b: &OrderBook) -> Approved<OrderIntent> {
        let cfg = argus_risk::RiskConfig {
            max_order_qty: Qty::parse("100").unwrap(),
            max_position: Qty::parse("100").unwrap(),
            max_notional: Money(1_000_000 * 1_000_000_000),
            price_band_bps: 10_000,
            max_orders_per_window: 100,
            rate_window_ns: 1,
            anomaly_threshold: 1.0,
            max_book_age_ns: u64::MAX,
            exposure: argus_risk::ExposureLimits::default(),
            ..argus_risk::RiskConfig::default()
        };
        let pos = argus_core::Position::default();
        let st = argus_core::State {
            now: UnixNanos(0),
            instrument: InstrumentId(0),
            book: b,
            features: &[],
            scores: argus_core::Scores::default(),
            position: &pos,
            market: MarketStatus::permissive(),
        };
        let chain = argus_risk::RiskChain::new(cfg).unwrap();
        chain.with_instrument(InstrumentId(0), argus_core::Venue::Sim).evaluate(o, &st).unwrap()
    }

    #[test]
    fn ioc_buy_walks_levels_up_to_the_limit_and_pays_fees() {
        let b = book();
        let mut exec = PaperExecutor::new(10);
        let mut fills = Vec::new();
        let mut venue = exec.at(&b);
        venue.submit(approve(order(Side::Buy, "4", "101"), &b)).unwrap();
        venue.poll_fills(&mut fills);
        assert_eq!(fills.len(), 1);
        let f = fills[0];
        // 1 @ 100 + 2 @ 101; the 105 level is outside the limit.
        assert_eq!(f.qty, Qty::parse("3").unwrap());
        assert_eq!(f.notional.to_string(), "302");
        assert_eq!(f.avg_price.to_string(), "100.666666666");
        assert_eq!(f.fee.to_string(), "0.302");
        assert_eq!(f.levels, 2);
    }

    #[test]
    fn nothing_inside_the_limit_is_an_error() {
        let b = book();
        let mut exec = PaperExecutor::new(1);
        let mut venue = exec.at(&b);
        assert_eq!(venue.submit(approve(order(Side::Sell, "1", "99.5"), &b)), Err(ExecError::NoLiquidity));
        let mut fills = Vec::new();
        venue.poll_fills(&mut fills);
        assert!(fills.is_empty());
    }
}
