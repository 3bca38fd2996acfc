//! Errors of the backtest crate.

/// Reading or writing history failed.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("i/o on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("tape row {row}: {reason}")]
    BadRow { row: u64, reason: String },
    #[error("tape schema: {0}")]
    Schema(String),
}
