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

mod scripted;
mod signal_taker;

pub use scripted::{parse_script, ScriptError, Scripted, ScriptedKind, ScriptedOrder};
pub use signal_taker::{SignalTaker, SignalTakerConfig};

use argus_core::{MarketEvent, OrderIntent, State, Strategy, UnixNanos};

/// The strategies a run can be configured with, behind one type for the hot thread.
#[derive(Debug, Clone)]
pub enum AnyStrategy {
    SignalTaker(SignalTaker),
    Scripted(Scripted),
}

impl Strategy for AnyStrategy {
    #[inline]
    fn on_event(&mut self, ev: &MarketEvent, st: &State<'_>, out: &mut Vec<OrderIntent>) {
        match self {
            AnyStrategy::SignalTaker(s) => s.on_event(ev, st, out),
            AnyStrategy::Scripted(s) => s.on_event(ev, st, out),
        }
    }

    #[inline]
    fn next_timer(&self) -> Option<UnixNanos> {
        match self {
            AnyStrategy::SignalTaker(s) => s.next_timer(),
            AnyStrategy::Scripted(s) => s.next_timer(),
        }
    }

    fn on_timer(&mut self, st: &State<'_>, out: &mut Vec<OrderIntent>) {
        match self {
            AnyStrategy::SignalTaker(s) => s.on_timer(st, out),
            AnyStrategy::Scripted(s) => s.on_timer(st, out),
        }
    }
}
