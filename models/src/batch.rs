//! An inference thread that micro-batches: requests (an event sequence and its feature vector)
//! arrive on a bounded queue; the thread takes the first, then more until it has `max_batch` or
//! `max_wait` has passed since the first arrived, scores them ([`MarketScorer::score_rows`]: one
//! pass through both models on a GPU, one per model on the CPU), and returns each result on a second queue tagged with its sequence. For CUDA (one kernel
//! launch per batch instead of per event) and for models too heavy to run inline.
//!
//! The hot thread never blocks on it: [`BatchInference::try_submit`] fails when the request
//! queue is full (the caller counts the drop) and [`BatchInference::try_recv`] polls.
//! [`BatchedScorer`] wraps it as a [`Scorer`]: each call submits the event and answers with the
//! newest result back (so scores trail the events by the inference latency, and the lag is
//! counted); until the first result arrives the anomaly is NaN, which risk treats as blocking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use argus_core::{ScoreError, Scorer};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use tch::Device;

use crate::features::N_FEATURES;
use crate::market::{MarketModelPaths, MarketScorer};
use crate::ModelError;

/// When a batch is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most rows per batch.
    pub max_batch: usize,
    /// Longest a request waits for others to join its batch.
    pub max_wait: Duration,
    /// Request and response queue capacity.
    pub capacity: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_batch: 256, max_wait: Duration::from_micros(200), capacity: 65_536 }
    }
}

/// One scoring request.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub seq: u64,
    pub features: [f32; N_FEATURES],
}

/// One result: `[signal_bps, anomaly]` for event `seq`, or `ok = false` when its batch failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Response {
    pub seq: u64,
    pub scores: [f32; 2],
    pub ok: bool,
}

/// Counters of the inference thread.
#[derive(Debug, Default)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub rows: AtomicU64,
    pub largest_batch: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// The handle the hot thread holds.
#[derive(Debug)]
pub struct BatchInference {
    tx: Option<Sender<Request>>,
    rx: Receiver<Response>,
    stats: Arc<BatchStats>,
    thread: Option<JoinHandle<()>>,
}

impl BatchInference {
    /// Starts the thread and loads the models on it (so CUDA state lives on that thread).
    ///
    /// # Errors
    /// The models' load errors, or a thread that cannot be spawned.
    pub fn spawn(paths: MarketModelPaths, device: Device, half: bool, cfg: BatchConfig) -> Result<Self, ModelError> {
        let (tx, req_rx) = bounded::<Request>(cfg.capacity.max(1));
        let (resp_tx, rx) = bounded::<Response>(cfg.capacity.max(1));
        let (ready_tx, ready_rx) = bounded::<Result<(), ModelError>>(1);
        let stats = Arc::new(BatchStats::default());
        let st = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("argus-inference".into())
            .spawn(move || {
                let scorer = match MarketScorer::load(&paths, device, half).and_then(|s| warm_up(&s, cfg).map(|()| s)) {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                serve(&scorer, &req_rx, &resp_tx, cfg, &st);
            })
            .map_err(|source| ModelError::Io { path: "argus-inference thread".into(), source })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { tx: Some(tx), rx, stats, thread: Some(thread) }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ModelError::Manifest { dir: "argus-inference".into(), reason: "the thread died".into() }),
        }
    }

    /// Queues a request without blocking; `false` when the queue is full (count the drop).
    #[inline]
    pub fn try_submit(&self, seq: u64, features: &[f32; N_FEATURES]) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.try_send(Request { seq, features: *features }).is_ok())
    }

    /// The next result, if one is ready.
    #[inline]
    pub fn try_recv(&self) -> Option<Response> {
        self.rx.try_recv().ok()
    }

    /// The next result, waiting up to `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Response> {
        self.rx.recv_timeout(timeout).ok()
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    /// Stops taking requests, lets the thread finish what is queued, and returns every result
    /// not yet received.
    pub fn finish(mut self) -> Vec<Response> {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.rx.try_iter().collect()
    }
}

impl Drop for BatchInference {
    fn drop(&mut self) {
        self.tx = None;
        // Results nobody will read must not block the thread's exit.
        while self.rx.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs a full batch of zero rows through each model a few times before the thread says it is
/// ready: loading warms the one-row path only, and libtorch's first calls on a batch shape are
/// far slower than the rest (its kernels and buffers set up), which would otherwise delay the
/// first answers while the hot thread is already submitting.
fn warm_up(scorer: &MarketScorer, cfg: BatchConfig) -> Result<(), ModelError> {
    let n = cfg.max_batch.max(1);
    let rows = vec![0.0_f32; n * N_FEATURES];
    let (mut signal, mut anomaly) = (vec![0.0_f32; n], vec![0.0_f32; n]);
    for _ in 0..3 {
        scorer.score_rows(&rows, n, &mut signal, &mut anomaly)?;
    }
    Ok(())
}

fn serve(scorer: &MarketScorer, rx: &Receiver<Request>, tx: &Sender<Response>, cfg: BatchConfig, stats: &BatchStats) {
    let max = cfg.max_batch.max(1);
    let mut batch: Vec<Request> = Vec::with_capacity(max);
    let mut rows: Vec<f32> = Vec::with_capacity(max * N_FEATURES);
    let (mut signal, mut anomaly) = (vec![0.0_f32; max], vec![0.0_f32; max]);
    loop {
        batch.clear();
        match rx.recv() {
            Ok(r) => batch.push(r),
            Err(_) => return,
        }
        let deadline = Instant::now() + cfg.max_wait;
        while batch.len() < max {
            match rx.recv_deadline(deadline) {
                Ok(r) => batch.push(r),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        rows.clear();
        for r in &batch {
            rows.extend_from_slice(&r.features);
        }
        let n = batch.len();
        let ok = scorer.score_rows(&rows, n, &mut signal, &mut anomaly).is_ok();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.rows.fetch_add(n as u64, Ordering::Relaxed);
        stats.largest_batch.fetch_max(n as u64, Ordering::Relaxed);
        if !ok {
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
        for (i, r) in batch.iter().enumerate() {
            let scores = if ok { [signal[i], anomaly[i]] } else { [0.0, f32::NAN] };
            // Blocks only when the reader is behind: backpressure reaches `try_submit`.
            if tx.send(Response { seq: r.seq, scores, ok }).is_err() {
                return;
            }
        }
    }
}

/// [`BatchInference`] behind the hot thread's [`Scorer`] interface: submit, answer with the
/// newest result.
#[derive(Debug)]
pub struct BatchedScorer {
    inference: BatchInference,
    seq: u64,
    latest: Option<Response>,
    /// Requests refused because the queue was full.
    pub dropped: u64,
    /// Sum over calls of how many events the answer trailed by (mean lag = lag_sum / calls).
    pub lag_sum: u64,
    pub calls: u64,
}

impl BatchedScorer {
    pub fn new(inference: BatchInference) -> Self {
        Self { inference, seq: 0, latest: None, dropped: 0, lag_sum: 0, calls: 0 }
    }

    pub fn inference(&self) -> &BatchInference {
        &self.inference
    }
}

impl Scorer for BatchedScorer {
    fn score(&mut self, features: &[f32], out: &mut [f32]) -> Result<(), ScoreError> {
        let f: &[f32; N_FEATURES] = features
            .try_into()
            .map_err(|_| ScoreError(format!("expected {N_FEATURES} features, got {}", features.len())))?;
        if out.len() < 2 {
            return Err(ScoreError("expected room for 2 outputs".into()));
        }
        self.seq += 1;
        self.calls += 1;
        if !self.inference.try_submit(self.seq, f) {
            self.dropped += 1;
        }
        while let Some(r) = self.inference.try_recv() {
            if self.latest.is_none_or(|l| r.seq > l.seq) {
                self.latest = Some(r);
            }
        }
        match self.latest {
            Some(r) if r.ok => {
                self.lag_sum += self.seq - r.seq;
                out[0] = r.scores[0];
                out[1] = r.scores[1];
                Ok(())
            }
            Some(_) => Err(ScoreError("the latest batch failed".into())),
            None => Err(ScoreError("no result from the inference thread yet".into())),
        }
    }
}
