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

    fn poll_fills(&mut self, out: &mut Vec<Fill>) {
        out.append(&mut self.exec.fills);
    }
}
