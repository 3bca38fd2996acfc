//! argus-risk: the pre-trade gate. The only crate that can turn an
//! [`argus_core::OrderIntent`] into an [`argus_core::Approved`] order.
//!
//! Pure: no I/O, no clock but `State::now`, no allocation per order. Every check fails closed:
//! without a two-sided book nothing is approved.
//!
//! [`onchain`] is the other kind of risk: fraud detectors over decoded Ethereum blocks, as pure
//! as the order gate (blocks in, explained alerts out).
//!
//! ```
//! use argus_risk::{RiskChain, RiskConfig};
//! let chain = RiskChain::new(RiskConfig::default()).unwrap();
//! # let _ = chain;
//! ```

mod chain;
mod checks;
mod config;
mod ledger;
pub mod onchain;
mod switch;

pub use chain::Transition;
pub use chain::{RiskChain, RiskStats, CHECKS, MAX_STRATEGIES};
pub use checks::{AnomalyBlock, ClockSkew, MarketState, MaxNotional, MaxOrderQty, MaxPosition, OrderShape, PriceBand};
pub use config::{ConfigError, RiskConfig, MAX_LIVE_ORDERS};
pub use ledger::{Exposure, ExposureLimits, LiveOrder, Rate};
pub use switch::{KillSwitch, RiskState};
