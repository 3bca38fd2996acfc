//! Errors of the models crate.

/// Model loading, inference and training failures.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model directory {dir}: {reason}")]
    Manifest { dir: String, reason: String },
    #[error("i/o on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("device `{0}` is not available (use auto, cpu or cuda[:N])")]
    Device(String),
    #[error("libtorch's CUDA backend did not load: {0}")]
    CudaBackend(String),
    #[error("not enough training samples: {0}")]
    NotEnoughData(usize),
}
