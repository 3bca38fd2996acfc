//! argus-backtest: history on disk and its replay.
//!
//! [`tape`] stores the exact event stream the hot thread consumed as Parquet (one row per
//! [`argus_core::MarketEvent`], decimals as `Decimal128(38, 9)`, readable by pyarrow, pandas,
//! DuckDB) and reads it back as an iterator of events, so a backtest runs the very same hot loop
//! as live trading. It must not depend on tokio, tch or websocket crates.
//!
//! ```no_run
//! use argus_backtest::tape::TapeReader;
//! let events = TapeReader::open("session.parquet".as_ref())?;
//! for ev in events {
//!     let _ev = ev?;
//! }
//! # Ok::<(), argus_backtest::BacktestError>(())
//! ```

pub mod catalog;
mod error;
pub mod import;
mod page_header;
mod pages;
pub mod raw;
pub mod sim;
pub mod tape;
pub mod throughput;

pub use error::BacktestError;
