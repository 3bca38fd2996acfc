//! argus-feeds: venue adapters from wire frames to [`argus_core::MarketEvent`]s.
//!
//! Each venue has a pure, synchronous normalizer (`frame bytes -> events` into a caller-owned
//! buffer, tested from fixture files without a socket) and a tokio task around it that owns the
//! websocket: subscribe, ping, reconnect, book resync, and backpressure into the bounded queue
//! of the hot thread. [`replay::ReplayServer`] serves a recording on loopback with the venue's
//! own protocol, so demos and tests exercise the live code path.
//!
//! This crate must not depend on tch or on strategy/risk code.
//!
//! ```
//! use argus_core::{InstrumentId, UnixNanos};
//! use argus_feeds::binance::{BinanceNormalizer, Decoded};
//! let n = BinanceNormalizer::new([("BTCUSDT", InstrumentId(0))]);
//! let mut out = Vec::new();
//! let frame = br#"{"u":1,"s":"BTCUSDT","b":"1.0","B":"2","a":"1.1","A":"3"}"#;
//! assert_eq!(n.normalize(frame, UnixNanos(0), &mut out).unwrap(), Decoded::BookTicker { update_id: 1 });
//! ```

pub mod binance;
pub mod chain;
pub mod check;
mod error;
pub mod http;
pub mod kraken;
pub mod offline;
pub mod rawlog;
pub mod recording;
pub mod replay;
pub mod rules;
pub mod stats;
pub mod tap;
pub mod venue;

pub use error::FeedError;
pub use stats::FeedStats;
