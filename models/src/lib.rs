//! argus-models: features, libtorch inference and training.
//!
//! * [`features::Features`]: microstructure features updated per event without allocating.
//! * [`mlp::TchScorer`]: a model directory (`manifest.json` + `weights.safetensors`) loaded with
//!   tch onto CPU or CUDA, implementing [`argus_core::Scorer`].
//! * [`train`]: trains that MLP on replayed market data and writes a model directory.
//! * [`tabular`]: classifiers on labelled tables (`argus models train tabular`).
//! * [`script::ScriptModel`]: a TorchScript file exported by PyTorch, scored as-is.
//!
//! This is the only crate (with the engine) that links libtorch; `core`, `strategies` and `risk`
//! never do.
//!
//! ```no_run
//! use argus_models::mlp::{parse_device, TchScorer};
//! use argus_core::Scorer;
//! let mut m = TchScorer::load("models/zoo/btcusdt_mlp".as_ref(), parse_device("auto")?)?;
//! let mut out = [0.0_f32; 2];
//! m.score(&[0.0; 6], &mut out)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod features;
pub mod manifest;
pub mod mlp;
pub mod script;
pub mod tabular;
pub mod train;

pub use error::ModelError;
