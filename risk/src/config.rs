//! Risk limits.

use argus_core::{Money, Qty};

use crate::ledger::{ExposureLimits, Rate};

/// Limits of the risk chain. Every limit is inclusive.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    pub max_order_qty: Qty,
    /// Largest absolute position after the order fills completely.
    pub max_position: Qty,
    /// Largest `limit * qty` of one order, in quote currency.
    pub max_notional: Money,
    /// Limit price at most this many basis points away from mid.
    pub price_band_bps: i64,
    /// At most this many approvals in any `rate_window_ns`.
    pub max_orders_per_window: u32,
    pub rate_window_ns: u64,
    /// Block every order while the model's anomaly score is above this.
    pub anomaly_threshold: f32,
    /// Loss from the start (realized + unrealized - fees) that halts trading.
    pub max_loss: Option<Money>,
    /// Fall from peak equity that moves the engine to reducing-only.
    pub max_drawdown: Option<Money>,
    /// Risk-increasing orders need a book changed within this much venue time.
    pub max_book_age_ns: u64,
    /// Gross and net notional per venue and in total.
    pub exposure: ExposureLimits,
    /// Our orders resting on books, all venues together.
    pub max_open_orders: u32,
    /// Orders sent and not yet acknowledged.
    pub max_in_flight: u32,
    /// Token buckets for new orders, per venue and per instrument.
    pub order_rate_per_venue: Option<Rate>,
    pub order_rate_per_instrument: Option<Rate>,
    /// Token buckets for cancels, per venue and per instrument.
    pub cancel_rate_per_venue: Option<Rate>,
    pub cancel_rate_per_instrument: Option<Rate>,
    /// Loss since the start of the UTC day (venue time) that halts trading. The baseline resets
    /// at midnight; a halt does not lift by itself.
    pub max_daily_loss: Option<Money>,
    /// Per strategy: loss from its start that halts the strategy.
    pub strategy_max_loss: Option<Money>,
    /// Per strategy: fall from its peak equity that leaves it reducing-only.
    pub strategy_max_drawdown: Option<Money>,
    /// Risk-increasing orders need |receive time - venue time| of the latest event within this.
    /// Off by default: replays of old recordings through `demo` carry years of apparent skew.
    pub max_clock_skew_ns: Option<u64>,
    /// When the engine halts, cancel every open order.
    pub cancel_on_halt: bool,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            max_order_qty: Qty::from_units(50_000_000), // 0.05
            max_position: Qty::from_units(20_000_000),  // 0.02
            max_notional: Money(5_000 * 1_000_000_000), // 5000 quote
            price_band_bps: 20,
            max_orders_per_window: 5,
            rate_window_ns: 10_000_000_000,
            anomaly_threshold: 0.5,
            max_loss: None,
            max_drawdown: None,
            max_book_age_ns: 5_000_000_000,
            exposure: ExposureLimits {
                max_gross_per_venue: None,
                max_net_per_venue: None,
                max_gross_total: Some(Money(10_000 * 1_000_000_000)),
                max_net_total: Some(Money(10_000 * 1_000_000_000)),
            },
            max_open_orders: 50,
            max_in_flight: 8,
            // Binance spot's documented order limit: 100 per 10 s.
            order_rate_per_venue: Some(Rate { per_sec: 10.0, burst: 100 }),
            order_rate_per_instrument: None,
            cancel_rate_per_venue: Some(Rate { per_sec: 10.0, burst: 100 }),
            cancel_rate_per_instrument: None,
            max_daily_loss: None,
            strategy_max_loss: None,
            strategy_max_drawdown: None,
            max_clock_skew_ns: None,
            cancel_on_halt: true,
        }
    }
}

/// Invalid limits; [`RiskConfig::validate`] reports them all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid risk config: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// Most approvals the rate limiter can track.
pub const MAX_RATE_WINDOW_ORDERS: u32 = 4096;

/// Most open plus in-flight orders risk tracks.
pub const MAX_LIVE_ORDERS: u32 = 4096;

impl RiskConfig {
    /// # Errors
    /// Every invalid limit, in one error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs = Vec::new();
        if self.max_order_qty.units() <= 0 {
            errs.push("max_order_qty must be positive".to_owned());
        }
        if self.max_position.units() < 0 {
            errs.push("max_position must not be negative".to_owned());
        }
        if self.max_notional.0 <= 0 {
            errs.push("max_notional must be positive".to_owned());
        }
        if !(0..=10_000).contains(&self.price_band_bps) {
            errs.push("price_band_bps must be within 0..=10000".to_owned());
        }
        if self.max_orders_per_window > MAX_RATE_WINDOW_ORDERS {
            errs.push(format!("max_orders_per_window must be at most {MAX_RATE_WINDOW_ORDERS}"));
        }
        if self.rate_window_ns == 0 {
            errs.push("rate_window_ns must be positive".to_owned());
        }
        if self.max_loss.is_some_and(|m| m.0 <= 0) {
            errs.push("max_loss must be positive".to_owned());
        }
        if self.max_drawdown.is_some_and(|m| m.0 <= 0) {
            errs.push("max_drawdown must be positive".to_owned());
        }
        if self.max_book_age_ns == 0 {
            errs.push("max_book_age_ns must be positive".to_owned());
        }
        let limits = [
            ("exposure.max_gross_per_venue", self.exposure.max_gross_per_venue),
            ("exposure.max_net_per_venue", self.exposure.max_net_per_venue),
            ("exposure.max_gross_total", self.exposure.max_gross_total),
            ("exposure.max_net_total", self.exposure.max_net_total),
            ("max_daily_loss", self.max_daily_loss),
            ("strategy_max_loss", self.strategy_max_loss),
            ("strategy_max_drawdown", self.strategy_max_drawdown),
        ];
        for (name, m) in limits {
            if m.is_some_and(|m| m.0 <= 0) {
                errs.push(format!("{name} must be positive"));
            }
        }
        let rates = [
            ("order_rate_per_venue", self.order_rate_per_venue),
            ("order_rate_per_instrument", self.order_rate_per_instrument),
            ("cancel_rate_per_venue", self.cancel_rate_per_venue),
            ("cancel_rate_per_instrument", self.cancel_rate_per_instrument),
        ];
        for (name, r) in rates {
            if let Some(r) = r {
                if !(r.per_sec.is_finite() && r.per_sec > 0.0 && r.per_sec <= 1e6) {
                    errs.push(format!("{name}.per_sec must be within (0, 1000000]"));
                }
                if r.burst == 0 || r.burst > 1_000_000 {
                    errs.push(format!("{name}.burst must be within 1..=1000000"));
                }
            }
        }
        if self.max_open_orders > MAX_LIVE_ORDERS || self.max_in_flight > MAX_LIVE_ORDERS {
            errs.push(format!("max_open_orders and max_in_flight must be at most {MAX_LIVE_ORDERS}"));
        }
        if self.max_clock_skew_ns == Some(0) {
            errs.push("max_clock_skew_ns must be positive".to_owned());
        }
        if !self.anomaly_threshold.is_finite() {
            errs.push("anomaly_threshold must be finite".to_owned());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(errs))
        }
    }
}
