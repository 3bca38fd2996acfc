//! Microstructure features, updated incrementally on the hot thread without allocating.
//!
//! The order of [`FEATURE_NAMES`] is the model input order; a model card names its features
//! and loading fails at the first difference. Everything runs on venue time (the exchange
//! timestamp; an event without one happens at the latest venue time seen), never on receive
//! time, so a replay computes exactly what live computed.
//!
//! Windows are exponentially decayed sums, `S(t) = S(t0)·exp(-(t - t0)/τ) + x`: constant memory
//! and work per event, and the sum over the last τ seconds up to a constant factor. Rates
//! (`*_intensity_*`) are `S/τ`, per second.

use argus_core::{BookAction, MarketEvent, MarketEventKind, OrderBook, Side, FIXED_SCALE};

/// Feature names, in input order.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "spread_bps",
    "microprice_offset_bps",
    "quote_imbalance",
    "imbalance_top1",
    "imbalance_top5",
    "imbalance_top20",
    "ofi_1s",
    "ofi_10s",
    "signed_volume_1s",
    "signed_volume_30s",
    "trade_intensity_1s",
    "trade_intensity_30s",
    "volatility_fast_bps",
    "volatility_slow_bps",
    "vwap_deviation_30s_bps",
    "trade_size_z",
    "round_size_share",
    "cancel_intensity_1s",
];
pub const N_FEATURES: usize = 18;

/// Window lengths, seconds.
const FAST_S: f64 = 1.0;
const MID_S: f64 = 10.0;
const SLOW_S: f64 = 30.0;
/// EWMA weights of a new squared mid return in the two volatilities.
const VOL_FAST: f64 = 0.1;
const VOL_SLOW: f64 = 0.01;
/// EWMA weight of a new trade in the trade-size and round-size statistics.
const SIZE_ALPHA: f64 = 0.02;

/// Exponentially decayed sums over one window length.
#[derive(Debug, Clone, Copy)]
struct Decayed<const K: usize> {
    sums: [f64; K],
}

impl<const K: usize> Default for Decayed<K> {
    fn default() -> Self {
        Self { sums: [0.0; K] }
    }
}

impl<const K: usize> Decayed<K> {
    #[inline]
    fn decay(&mut self, factor: f64) {
        for s in &mut self.sums {
            *s *= factor;
        }
    }
}

/// Best bid and ask as last seen (price, qty), for the order-flow imbalance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Top {
    bid: f64,
    bid_qty: f64,
    ask: f64,
    ask_qty: f64,
}

impl Top {
    fn valid(&self) -> bool {
        self.bid > 0.0 && self.ask > self.bid
    }

    /// Cont, Kukanov and Stoikov's order-flow imbalance of the move from `self` to `new`:
    /// bid-side demand arriving minus ask-side supply arriving, in base units.
    fn ofi(&self, new: &Top) -> f64 {
        let mut e = 0.0;
        if new.bid >= self.bid {
            e += new.bid_qty;
        }
        if new.bid <= self.bid {
            e -= self.bid_qty;
        }
        if new.ask <= self.ask {
            e -= new.ask_qty;
        }
        if new.ask >= self.ask {
            e += self.ask_qty;
        }
        e
    }
}

/// Incremental feature state for one instrument.
#[derive(Debug, Clone, Default)]
pub struct Features {
    quote: Option<Top>,
    last_top: Option<Top>,
    /// Event time (ns) the windows were last decayed to.
    now_ns: u64,
    /// [ofi, signed volume, trades, cancels]
    fast: Decayed<4>,
    /// [ofi]
    mid: Decayed<1>,
    /// [signed volume, trades, price·qty, qty]
    slow: Decayed<4>,
    var_fast: f64,
    var_slow: f64,
    last_mid: Option<f64>,
    last_log_size: f64,
    log_size_mean: f64,
    log_size_var: f64,
    round_share: f64,
    trades_seen: u64,
    values: [f32; N_FEATURES],
}

fn top_of(book: &OrderBook) -> Option<Top> {
    let (b, a) = (book.best_bid()?, book.best_ask()?);
    Some(Top { bid: b.price.as_f64(), bid_qty: b.qty.as_f64(), ask: a.price.as_f64(), ask_qty: a.qty.as_f64() })
}

/// Depth imbalance over the best `n` levels per side, in [-1, 1].
fn imbalance(book: &OrderBook, n: usize) -> f64 {
    let depth = |side| book.levels(side).take(n).map(|l| l.qty.as_f64()).sum::<f64>();
    let (b, a) = (depth(Side::Buy), depth(Side::Sell));
    if b + a > 0.0 {
        (b - a) / (b + a)
    } else {
        0.0
    }
}

/// A size with one significant digit (`0.5`, `2`, `0.003`, `100`): what people type.
fn is_round(units: i64) -> bool {
    let mut u = units.unsigned_abs();
    if u == 0 {
        return false;
    }
    while u.is_multiple_of(10) {
        u /= 10;
    }
    u < 10
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
            Some(q) if q.valid() => Some((q.bid + q.ask) / 2.0),
            _ => book.mid_units().map(|m| m as f64 / FIXED_SCALE as f64),
        }
    }

    /// Decays every window to event time `t` (ns); time never runs backwards here.
    #[inline]
    fn advance(&mut self, t: u64) {
        if t <= self.now_ns {
            return;
        }
        if self.now_ns != 0 {
            let dt = (t - self.now_ns) as f64 * 1e-9;
            self.fast.decay((-dt / FAST_S).exp());
            self.mid.decay((-dt / MID_S).exp());
            self.slow.decay((-dt / SLOW_S).exp());
        }
        self.now_ns = t;
    }

    /// Updates after `ev` was applied to `book`.
    pub fn update(&mut self, ev: &MarketEvent, book: &OrderBook) {
        // Venue time only: an event without one (Binance's bookTicker, snapshots) happens at
        // the latest venue time seen. Receive times differ between a live run and its replay.
        self.advance(ev.ts_exchange.0);
        match ev.kind {
            MarketEventKind::Quote(q) => {
                self.quote = Some(Top {
                    bid: q.bid_price.as_f64(),
                    bid_qty: q.bid_qty.as_f64(),
                    ask: q.ask_price.as_f64(),
                    ask_qty: q.ask_qty.as_f64(),
                });
            }
            MarketEventKind::Trade(tr) => {
                let (p, q) = (tr.price.as_f64(), tr.qty.as_f64());
                let signed = q * tr.aggressor.sign() as f64;
                self.fast.sums[1] += signed;
                self.fast.sums[2] += 1.0;
                self.slow.sums[0] += signed;
                self.slow.sums[1] += 1.0;
                self.slow.sums[2] += p * q;
                self.slow.sums[3] += q;
                if q > 0.0 {
                    let l = q.ln();
                    self.last_log_size = l;
                    if self.trades_seen == 0 {
                        self.log_size_mean = l;
                    }
                    let d = l - self.log_size_mean;
                    self.log_size_mean += SIZE_ALPHA * d;
                    self.log_size_var += SIZE_ALPHA * (d * d - self.log_size_var);
                }
                let round = if is_round(tr.qty.units()) { 1.0 } else { 0.0 };
                self.round_share += SIZE_ALPHA * (round - self.round_share);
                self.trades_seen += 1;
            }
            MarketEventKind::Delta(d) => {
                let removes = d.action == BookAction::Delete || (d.action == BookAction::Update && d.qty.units() == 0);
                if removes && !d.flags.is_snapshot() {
                    self.fast.sums[3] += 1.0;
                }
                if !d.flags.is_last() {
                    return;
                }
            }
            // Futures marks and liquidations do not move these features (yet).
            MarketEventKind::Mark(_) | MarketEventKind::Liquidation(_) => return,
        }
        self.recompute(book);
    }

    fn recompute(&mut self, book: &OrderBook) {
        let top = match self.quote {
            Some(q) if q.valid() => Some(q),
            _ => top_of(book),
        };
        if let Some(top) = top {
            if let Some(prev) = self.last_top.filter(|p| p != &top) {
                let e = prev.ofi(&top);
                self.fast.sums[0] += e;
                self.mid.sums[0] += e;
            }
            self.last_top = Some(top);
        }
        let Some(mid) = self.mid(book) else { return };
        if let Some(last) = self.last_mid {
            if last > 0.0 && mid != last {
                let r = (mid / last - 1.0) * 1e4;
                self.var_fast += VOL_FAST * (r * r - self.var_fast);
                self.var_slow += VOL_SLOW * (r * r - self.var_slow);
            }
        }
        self.last_mid = Some(mid);
        let (spread, micro, qimb) = match self.quote {
            Some(q) if q.valid() => {
                let total = q.bid_qty + q.ask_qty;
                let microprice = if total > 0.0 { (q.bid * q.ask_qty + q.ask * q.bid_qty) / total } else { mid };
                let qimb = if total > 0.0 { (q.bid_qty - q.ask_qty) / total } else { 0.0 };
                ((q.ask - q.bid) / mid * 1e4, (microprice - mid) / mid * 1e4, qimb)
            }
            _ => match top {
                Some(t) => ((t.ask - t.bid) / mid * 1e4, 0.0, 0.0),
                None => (0.0, 0.0, 0.0),
            },
        };
        let vwap_dev = if self.slow.sums[3] > 0.0 {
            let vwap = self.slow.sums[2] / self.slow.sums[3];
            (mid - vwap) / mid * 1e4
        } else {
            0.0
        };
        let size_z = match (self.last_trade_log_size(), self.log_size_var.sqrt()) {
            (Some(l), sd) if sd > 1e-9 => (l - self.log_size_mean) / sd,
            _ => 0.0,
        };
        self.values = [
            spread as f32,
            micro as f32,
            qimb as f32,
            imbalance(book, 1) as f32,
            imbalance(book, 5) as f32,
            imbalance(book, 20) as f32,
            self.fast.sums[0] as f32,
            self.mid.sums[0] as f32,
            self.fast.sums[1] as f32,
            self.slow.sums[0] as f32,
            (self.fast.sums[2] / FAST_S) as f32,
            (self.slow.sums[1] / SLOW_S) as f32,
            self.var_fast.sqrt() as f32,
            self.var_slow.sqrt() as f32,
            vwap_dev as f32,
            size_z as f32,
            self.round_share as f32,
            (self.fast.sums[3] / FAST_S) as f32,
        ];
    }

    /// Log size of the latest trade with a size.
    fn last_trade_log_size(&self) -> Option<f64> {
        (self.trades_seen > 0).then_some(self.last_log_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::{BookDelta, DeltaFlags, InstrumentId, Price, Qty, Quote, Trade, UnixNanos};

    fn ev(t_ms: u64, kind: MarketEventKind) -> MarketEvent {
        MarketEvent {
            ts_exchange: UnixNanos(t_ms * 1_000_000),
            ts_recv: UnixNanos(t_ms * 1_000_000),
            instrument: InstrumentId(0),
            decode_ns: 0,
            kind,
        }
    }

    fn quote(bid: &str, bq: &str, ask: &str, aq: &str) -> MarketEventKind {
        MarketEventKind::Quote(Quote {
            bid_price: Price::parse(bid).unwrap(),
            bid_qty: Qty::parse(bq).unwrap(),
            ask_price: Price::parse(ask).unwrap(),
            ask_qty: Qty::parse(aq).unwrap(),
        })
    }

    fn trade(price: &str, qty: &str, aggressor: Side) -> MarketEventKind {
        MarketEventKind::Trade(Trade {
            price: Price::parse(price).unwrap(),
            qty: Qty::parse(qty).unwrap(),
            trade_id: 1,
            aggressor,
        })
    }

    fn idx(name: &str) -> usize {
        FEATURE_NAMES.iter().position(|n| *n == name).unwrap()
    }

    #[test]
    fn quote_and_trades_move_the_features() {
        let book = OrderBook::new(0);
        let mut f = Features::new();
        f.update(&ev(1, quote("100", "3", "100.02", "1")), &book);
        let v = *f.values();
        assert!((v[idx("spread_bps")] - 1.9998).abs() < 1e-3, "spread {v:?}");
        assert!(v[idx("microprice_offset_bps")] > 0.0, "microprice leans to the ask when bids are heavier");
        assert!((v[idx("quote_imbalance")] - 0.5).abs() < 1e-6);
        f.update(&ev(1, trade("100.02", "2", Side::Buy)), &book);
        let v = *f.values();
        assert!((v[idx("signed_volume_1s")] - 2.0).abs() < 1e-6);
        assert!((v[idx("trade_intensity_1s")] - 1.0).abs() < 1e-6);
        assert!((v[idx("round_size_share")] - SIZE_ALPHA as f32).abs() < 1e-6, "2 is a round size");
        // One second later the 1 s window has decayed by e, the 30 s one barely.
        f.update(&ev(1001, trade("100.02", "0.123", Side::Sell)), &book);
        let v = *f.values();
        let want = 2.0 * (-1.0_f64).exp() - 0.123;
        assert!((f64::from(v[idx("signed_volume_1s")]) - want).abs() < 1e-5, "{v:?}");
        let want_slow = 2.0 * (-1.0_f64 / 30.0).exp() - 0.123;
        assert!((f64::from(v[idx("signed_volume_30s")]) - want_slow).abs() < 1e-5);
        assert!(v[idx("trade_size_z")] < 0.0, "a smaller trade than usual");
        // VWAP is the trade price: mid (100.01) sits 1 bp below it.
        assert!((v[idx("vwap_deviation_30s_bps")] + 0.99990).abs() < 1e-3, "{v:?}");
    }

    #[test]
    fn order_flow_imbalance_follows_cont_kukanov_stoikov() {
        let book = OrderBook::new(0);
        let mut f = Features::new();
        f.update(&ev(1, quote("100", "3", "101", "2")), &book);
        assert_eq!(f.values()[idx("ofi_1s")], 0.0, "no move yet");
        // Bid size grows at the same price: +1 of demand.
        f.update(&ev(1, quote("100", "4", "101", "2")), &book);
        assert!((f.values()[idx("ofi_1s")] - 1.0).abs() < 1e-6);
        // Bid steps up (+5 new), ask steps down (-1 new supply): +1 + 5 - 1.
        f.update(&ev(1, quote("100.5", "5", "100.9", "1")), &book);
        assert!((f.values()[idx("ofi_1s")] - 5.0).abs() < 1e-6, "{:?}", f.values());
        assert!((f.values()[idx("ofi_10s")] - 5.0).abs() < 1e-6);
    }

    #[test]
    fn depth_imbalance_and_cancels_come_from_the_book() {
        let mut book = OrderBook::new(0);
        let mut f = Features::new();
        let level = |side, price: &str, qty: &str, last: bool| {
            let flags = DeltaFlags(if last { DeltaFlags::LAST } else { 0 });
            BookDelta {
                action: BookAction::Update,
                side,
                flags,
                price: Price::parse(price).unwrap(),
                qty: Qty::parse(qty).unwrap(),
                sequence: 1,
            }
        };
        let ds = [
            level(Side::Buy, "99", "1", false),
            level(Side::Buy, "98", "9", false),
            level(Side::Sell, "101", "3", false),
            level(Side::Sell, "102", "1", true),
        ];
        for d in ds {
            book.apply(&d);
            f.update(&ev(5, MarketEventKind::Delta(d)), &book);
        }
        let v = *f.values();
        assert!((v[idx("imbalance_top1")] + 0.5).abs() < 1e-6, "1 vs 3");
        assert!((v[idx("imbalance_top5")] - 6.0 / 14.0).abs() < 1e-6, "10 vs 4");
        assert_eq!(v[idx("cancel_intensity_1s")], 0.0);
        let gone = level(Side::Buy, "98", "0", true);
        book.apply(&gone);
        f.update(&ev(5, MarketEventKind::Delta(gone)), &book);
        assert!((f.values()[idx("cancel_intensity_1s")] - 1.0).abs() < 1e-6);
        assert!(is_round(Qty::parse("0.5").unwrap().units()) && !is_round(Qty::parse("0.15").unwrap().units()));
    }
}
