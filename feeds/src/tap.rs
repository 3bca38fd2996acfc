//! A tap on the raw frames a feed reads, for recording them as they came (`argus feeds record
//! --raw`): the websocket text frames and, on Binance, the REST depth snapshots, each with its
//! receive time. Frames are reference-counted bytes, so tapping copies nothing; a full tap
//! waits for room (a recording must be complete), like the event queue's `Block` policy.

use argus_core::UnixNanos;
use crossbeam_channel::{Sender, TrySendError};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::FeedError;

/// One frame as received.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub ts_recv: UnixNanos,
    pub text: Utf8Bytes,
}

/// Where a feed sends its raw frames.
pub type RawTap = Sender<RawFrame>;

/// Sends `text` down the tap, if there is one.
///
/// # Errors
/// The recorder went away.
pub(crate) fn send(tap: Option<&RawTap>, ts_recv: UnixNanos, text: &Utf8Bytes) -> Result<(), FeedError> {
    let Some(tap) = tap else { return Ok(()) };
    match tap.try_send(RawFrame { ts_recv, text: text.clone() }) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(frame)) => {
            tokio::task::block_in_place(|| tap.send(frame)).map_err(|_| FeedError::QueueClosed)
        }
        Err(TrySendError::Disconnected(_)) => Err(FeedError::QueueClosed),
    }
}
