//! Ethereum: JSON-RPC decoding (ethereum-etl's schema for `argus chain decode`; typed blocks,
//! calls and token events for the monitor) and the websocket chain feed.

pub mod abi;
pub mod block;
pub mod decode;
pub mod feed;

pub use feed::{run_chain_feed, ChainFeedConfig, ChainFeedStats};
