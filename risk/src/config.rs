//! Risk limits.

use argus_core::{Money, Qty};

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
        }
    }
}

/// Invalid limits; [`RiskConfig::validate`] reports them all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid risk config: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// Most approvals the rate limiter can track.
pub const MAX_RATE_WINDOW_ORDERS: u32 = 4096;

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
