//! argus-models: features, libtorch inference and training.
//!
//! * [`features::Features`]: microstructure features updated per event without allocating.
//! * [`card::ModelCard`]: `model.toml`, the card of a market model directory (schema,
//!   normalisation, shapes, sha256 of the weights, training facts and metrics).
//! * [`market::MarketScorer`]: the alpha and anomaly models loaded with tch onto CPU or CUDA,
//!   implementing [`argus_core::Scorer`] inline on the hot thread.
//! * [`batch::BatchInference`]: an inference thread that micro-batches scoring requests.
//! * [`train`]: trains alpha and anomaly models on replayed market data.
//! * [`tabular`]: classifiers on labelled tables (`argus models train tabular`).
//! * [`script::ScriptModel`]: a TorchScript file exported by PyTorch, scored as-is.
//!
//! This is the only crate (with the engine) that links libtorch; `core`, `strategies` and `risk`
//! never do.
//!
//! ```no_run
//! use argus_models::market::{MarketModelPaths, MarketScorer};
//! use argus_models::mlp::parse_device;
//! use argus_models::features::N_FEATURES;
//! use argus_core::Scorer;
//! let paths = MarketModelPaths {
//!     alpha: "models/zoo/btcusdt_alpha".into(),
//!     anomaly: Some("models/zoo/btcusdt_anomaly".into()),
//! };
//! let mut m = MarketScorer::load(&paths, parse_device("auto")?, false)?;
//! let mut out = [0.0_f32; 2];
//! m.score(&[0.0; N_FEATURES], &mut out)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch;
pub mod card;
pub mod cuda;
mod error;
pub mod features;
pub mod market;
pub mod mlp;
pub mod script;
pub mod tabular;
pub mod train;

pub use error::ModelError;
