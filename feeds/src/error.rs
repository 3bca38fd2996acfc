//! Errors of the feeds crate.

use argus_core::ParseFixedError;

/// Anything that can go wrong between a socket and a [`argus_core::MarketEvent`].
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("malformed frame: {0}")]
    Json(#[from] serde_json::Error),
    #[error("malformed decimal in field `{field}`: {source}")]
    Decimal { field: &'static str, source: ParseFixedError },
    #[error("frame has no field `{0}`")]
    MissingField(&'static str),
    #[error("unknown symbol `{0}`")]
    UnknownSymbol(String),
    #[error("unknown message type")]
    UnknownMessage,
    #[error("book sequence gap: expected first id {expected}, got {got}")]
    SequenceGap { expected: u64, got: u64 },
    #[error("snapshot {snapshot} is older than the first buffered diff ({first})")]
    StaleSnapshot { snapshot: u64, first: u64 },
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("http: {0}")]
    Http(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot open `{path}`")]
    Open { path: String, source: std::io::Error },
    #[error("invalid url `{0}`")]
    Url(String),
    #[error("recording line {line}: {reason}")]
    Recording { line: u64, reason: String },
    #[error("no usable depth snapshot ({failures} failed attempts): the book never synced")]
    NoSnapshot { failures: u64 },
    #[error("gave up after {reconnects} reconnects")]
    GaveUp { reconnects: u32 },
    #[error("connection lost without a close frame")]
    ConnectionLost,
    #[error("no frame for {secs} s: connection presumed dead")]
    Stalled { secs: f64 },
    #[error("event queue closed")]
    QueueClosed,
    #[error("JSON-RPC `{method}` failed ({code}): {message}")]
    Rpc { method: String, code: i64, message: String },
    #[error("the node serves chain id {got}, not the configured {expected}")]
    WrongChain { expected: u64, got: u64 },
}

impl FeedError {
    /// A file that could not be opened, by name.
    pub fn open(path: &std::path::Path, source: std::io::Error) -> Self {
        FeedError::Open { path: path.display().to_string(), source }
    }

    /// True when retrying cannot help (bad configuration, closed consumer).
    pub fn is_terminal(&self) -> bool {
        matches!(self, FeedError::Url(_) | FeedError::QueueClosed | FeedError::WrongChain { .. })
    }
}
