//! argus-core: the vocabulary every other crate speaks.
//!
//! Fixed-point [`Price`]/[`Qty`] parsed exactly from venue strings, ids, `Copy` market events,
//! order intents, the bounded [`OrderBook`], position accounting, and the traits between stages
//! ([`Strategy`], [`RiskCheck`], [`Executor`], [`Scorer`]).
//!
//! It must not depend on tokio, tch, websocket or any I/O crate: everything here is pure, so it
//! runs the same live, in backtest and in tests.
//!
//! ```
//! use argus_core::{Price, Qty};
//! let p = Price::parse("61837.63000000").unwrap();
//! assert_eq!(p.display_with(8).to_string(), "61837.63000000");
//! assert_eq!(Qty::parse("0.5").unwrap().units(), 500_000_000);
//! ```

mod book;
mod chain;
mod event;
mod fixed;
mod hash;
mod ids;
mod instrument;
mod order;
mod portfolio;
mod traits;
mod u256;

pub use book::{Level, LevelIter, OrderBook, MIN_BOOK_LEVELS};
pub use chain::{
    decode_hex_into, hex_digit, Address, Call, ChainBlock, ChainEvent, ChainTx, HexError, PendingTx, TokenEvent, H256,
};
pub use event::{
    BookAction, BookDelta, DeltaFlags, Liquidation, MarkPrice, MarketEvent, MarketEventKind, Quote, Trade,
};
pub use fixed::{
    notional_units, parse_fixed, parse_fixed_prefix, Money, ParseFixedError, Price, Qty, FIXED_DECIMALS, FIXED_SCALE,
};
pub use hash::{FastHasher, FastMap, FastSet, FastState};
pub use ids::{ClientOrderId, InstrumentId, Side, StrategyId, UnixNanos, Venue};
pub use instrument::{Instrument, InstrumentSpec, InstrumentTable, MarketStatus};
pub use order::{Approved, CloseReason, ExecReport, Fill, OrderIntent, TimeInForce};
pub use portfolio::Position;
pub use traits::{ExecError, Executor, Reject, RiskCheck, ScoreError, Scorer, Scores, State, Strategy};
pub use u256::{U256Error, U256};
