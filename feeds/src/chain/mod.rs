//! Ethereum: JSON-RPC block decoding into ethereum-etl's schema (integers as exact decimal
//! strings), the base of the chain feed and its detectors.

pub mod decode;
