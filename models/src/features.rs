//! Microstructure features, updated incrementally on the hot thread without allocating.
//!
//! The order of [`FEATURE_NAMES`] is the model input order; a model manifest names its features
//! and loading fails unless they match.

use argus_core::{MarketEvent, MarketEventKind, OrderBook, Quote, Side};

/// Feature names, in input order.
pub const FEATURE_NAMES: [&str; N_FEATURES] =
    ["spread_bps", "microprice_offset_bps", "imbalance_top5", "quote_imbalance", "trade_flow", "volatility_bps"];
pub const N_FEATURES: usize = 6;

/// Levels per side in the depth imbalance.
const TOP_N: usize = 5;
/// EWMA weight of a new trade in the signed flow.
const FLOW_ALPHA: f64 = 0.05;
/// EWMA weight of a new squared mid return in the volatility.
const VOL_ALPHA: f64 = 0.02;

/// Incremental feature state for one instrument.
#[derive(Debug, Clone, Default)]
pub struct Features {
    quote: Option<Quote>,
    flow: f64,
    var_bps2: f64,
    last_mid: Option<f64>,
    values: [f32; N_FEATURES],
}

impl Features {
    pub fn new() -> Self {
        Self::default()
    }

    /// Current feature vector.
    #[inline]
    pub fn values(&self) -> &[f32; N_FEATURES] {
        &self.values
    }

    /// Mid from the freshest top of book: the venue quote if seen, else the depth book.
    pub fn mid(&self, book: &OrderBook) -> Option<f64> {
        match self.quote {
            Some(q) if q.ask_price > q.bid_price => Some((q.bid_price.as_f64() + q.ask_price.as_f64()) / 2.0),
            _ => book.mid_units().map(|m| m as f64 / argus_core::FIXED_SCALE as f64),
        }
    }

    /// Updates after `ev` was applied to `book`.
    pub fn update(&mut self, ev: &MarketEvent, book: &OrderBook) {
        match ev.kind {
            MarketEventKind::Quote(q) => self.quote = Some(q),
            MarketEventKind::Trade(t) => {
                let signed = t.qty.as_f64() * t.aggressor.sign() as f64;
                self.flow += FLOW_ALPHA * (signed - self.flow);
            }
            MarketEventKind::Delta(d) if !d.flags.is_last() => return,
            MarketEventKind::Delta(_) => {}
            // Futures marks and liquidations do not move these features (yet).
            MarketEventKind::Mark(_) | MarketEventKind::Liquidation(_) => return,
        }
        let Some(mid) = self.mid(book) else { return };
        if let Some(last) = self.last_mid {
            if last > 0.0 && mid != last {
                let r = (mid / last - 1.0) * 1e4;
                self.var_bps2 += VOL_ALPHA * (r * r - self.var_bps2);
            }
        }
        self.last_mid = Some(mid);
        let (spread, micro, qimb) = match self.quote {
            Some(q) if q.ask_price > q.bid_price => {
                let (b, a) = (q.bid_price.as_f64(), q.ask_price.as_f64());
                let (bq, aq) = (q.bid_qty.as_f64(), q.ask_qty.as_f64());
                let total = bq + aq;
                let microprice = if total > 0.0 { (b * aq + a * bq) / total } else { mid };
                let qimb = if total > 0.0 { (bq - aq) / total } else { 0.0 };
                ((a - b) / mid * 1e4, (microprice - mid) / mid * 1e4, qimb)
            }
            _ => match (book.best_bid(), book.best_ask()) {
                (Some(b), Some(a)) => ((a.price.as_f64() - b.price.as_f64()) / mid * 1e4, 0.0, 0.0),
                _ => (0.0, 0.0, 0.0),
            },
        };
        let depth = |side| book.levels(side).take(TOP_N).map(|l| l.qty.as_f64()).sum::<f64>();
        let (bd, ad) = (depth(Side::Buy), depth(Side::Sell));
        let imb = if bd + ad > 0.0 { (bd - ad) / (bd + ad) } else { 0.0 };
        self.values =
            [spread as f32, micro as f32, imb as f32, qimb as f32, self.flow as f32, self.var_bps2.sqrt() as f32];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::{InstrumentId, Price, Qty, Trade, UnixNanos};

    fn ev(kind: MarketEventKind) -> MarketEvent {
        MarketEvent {
            ts_exchange: UnixNanos(0),
            ts_recv: UnixNanos(0),
            instrument: InstrumentId(0),
            decode_ns: 0,
            kind,
        }
    }

    #[test]
    fn quote_and_trades_move_the_features() {
        let book = OrderBook::new(0);
        let mut f = Features::new();
        let q = Quote {
            bid_price: Price::parse("100").unwrap(),
            bid_qty: Qty::parse("3").unwrap(),
            ask_price: Price::parse("100.02").unwrap(),
            ask_qty: Qty::parse("1").unwrap(),
        };
        f.update(&ev(MarketEventKind::Quote(q)), &book);
        let v = *f.values();
        assert!((v[0] - 1.9998).abs() < 1e-3, "spread {v:?}");
        assert!(v[1] > 0.0, "microprice leans to the ask when bids are heavier");
        assert!((v[3] - 0.5).abs() < 1e-6);
        let t = Trade {
            price: Price::parse("100.02").unwrap(),
            qty: Qty::parse("2").unwrap(),
            trade_id: 1,
            aggressor: Side::Buy,
        };
        f.update(&ev(MarketEventKind::Trade(t)), &book);
        assert!((f.values()[4] - 0.1).abs() < 1e-6);
    }
}
