//! Records the events the hot thread consumes to a Parquet tape, on its own thread.
//!
//! The hot thread hands each event over a bounded queue and waits when the queue is full rather
//! than drop anything; a tape that fails to write is reported as an error with the number of
//! events it lost, never silently.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use argus_backtest::tape::TapeWriter;
use argus_core::MarketEvent;
use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;
use tracing::error;

/// Outcome of a recording.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingReport {
    pub path: String,
    pub rows: u64,
    /// Events handed to the recorder that are not on the tape.
    pub lost: u64,
    pub error: Option<String>,
}

/// A running recorder.
#[derive(Debug)]
pub struct Recorder {
    tx: Sender<MarketEvent>,
    handle: JoinHandle<RecordingReport>,
}

/// Queue capacity between the hot thread and the recorder.
const QUEUE: usize = 1 << 16;

impl Recorder {
    /// Creates the tape and starts the recorder thread.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn start(path: &Path) -> anyhow::Result<Self> {
        let writer = TapeWriter::create(path)?;
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let path = path.to_path_buf();
        let handle =
            std::thread::Builder::new().name("argus-recorder".into()).spawn(move || record(writer, &rx, path))?;
        Ok(Self { tx, handle })
    }

    /// The sending side for the hot thread.
    pub fn sender(&self) -> Sender<MarketEvent> {
        self.tx.clone()
    }

    /// Waits for every queued event to be written and the file closed.
    pub fn finish(self) -> RecordingReport {
        drop(self.tx);
        self.handle.join().unwrap_or_else(|_| RecordingReport {
            path: String::new(),
            rows: 0,
            lost: 0,
            error: Some("recorder thread panicked".into()),
        })
    }
}

fn record(mut writer: TapeWriter, rx: &Receiver<MarketEvent>, path: PathBuf) -> RecordingReport {
    let mut failure: Option<String> = None;
    let mut received = 0_u64;
    for ev in rx.iter() {
        // Keep draining after a failure so the hot thread never blocks on a dead sink.
        received += 1;
        if failure.is_none() {
            if let Err(e) = writer.write(&ev) {
                error!(path = %path.display(), error = %e, "tape write failed");
                failure = Some(e.to_string());
            }
        }
    }
    if failure.is_none() {
        if let Err(e) = writer.finish() {
            error!(path = %path.display(), error = %e, "closing the tape failed");
            failure = Some(e.to_string());
        }
    }
    // A tape without its footer is unreadable: on any failure, everything handed over is lost.
    let (rows, lost) = if failure.is_some() { (0, received) } else { (received, 0) };
    RecordingReport { path: path.display().to_string(), rows, lost, error: failure }
}
