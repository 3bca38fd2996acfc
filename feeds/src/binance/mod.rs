//! Binance spot and USD-M: normalizer, book sync and websocket task.

pub mod client;
pub mod normalize;
pub mod rules;
pub mod sync;

pub use client::{run, BinanceFeedConfig, QueuePolicy};
pub use normalize::{BinanceNormalizer, Decoded};
pub use rules::parse_exchange_info;
pub use sync::{parse_snapshot, DepthSync, Snapshot, SyncStats, SyncStatus};
