//! argus-engine: the `argus` binary's library half: the hot thread, its journal, latency
//! accounting, metrics, reports and the wiring of feeds to the hot thread.
//!
//! `anyhow` is allowed here and only here.

pub mod audit;
pub mod control;
pub mod feed_bench;
pub mod hot;
pub mod journal;
pub mod latency;
pub mod metrics;
pub mod model_bench;
pub mod monitor;
pub mod pipeline;
pub mod record;
pub mod recorder;
pub mod replay;
pub mod report;
pub mod spin;
