//! argus-strategies: pure decision logic, `events + state -> order intents`.
//!
//! Strategies never perform I/O, read clocks or allocate per event: they see a
//! [`argus_core::State`] and write intents into a caller-owned buffer. Whether they run live or in
//! a backtest, they cannot tell.
//!
//! ```
//! use argus_strategies::{SignalTaker, SignalTakerConfig};
//! let s = SignalTaker::new(SignalTakerConfig::default());
//! # let _ = s;
//! ```

mod signal_taker;

pub use signal_taker::{SignalTaker, SignalTakerConfig};
