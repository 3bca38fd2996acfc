//! `argus models bench`: a model's batch-1 latency as argus calls it, beside the bare libtorch
//! call it wraps (the same network on a ready input tensor), and its batched throughput, on
//! one device. Accepts a market model (alpha or anomaly directory), a tabular model (a
//! directory whose `model.toml` says `kind = "tabular"`) or a TorchScript file.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use argus_models::card::card_kind;
use argus_models::market::MarketModel;
use argus_models::mlp::device_name;
use argus_models::script::{is_torchscript, ScriptModel};
use argus_models::tabular::TabularModel;
use hdrhistogram::Histogram;
use serde::Serialize;
use tch::{Device, Tensor};

/// Latency percentiles of one way of calling the model, in nanoseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub calls: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// What `argus models bench` measured.
#[derive(Debug, Serialize)]
pub struct ModelBench {
    pub model: String,
    pub kind: &'static str,
    pub device: String,
    pub inputs: usize,
    pub torch_threads: i32,
    /// Batch 1 through argus's scoring call (normalisation, tensor in, result out).
    pub batch1: Percentiles,
    /// Batch 1 through the bare network on a ready input tensor (libtorch alone).
    pub raw_tch_batch1: Percentiles,
    /// `batch1.p50_ns - raw_tch_batch1.p50_ns`.
    pub overhead_p50_ns: i64,
    /// Market models in `f32` and tabular models: the layers argus runs one row through (`addmm_out` into tensors
    /// made at load, `relu_` in place; [`argus_models::mlp::RowNet`]) on a ready input tensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_row_batch1: Option<Percentiles>,
    /// `batch1.p50_ns - raw_row_batch1.p50_ns`: what argus adds around those layers
    /// (standardising, the input tensor, the copy out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_overhead_p50_ns: Option<i64>,
    pub batch: usize,
    /// Rows per second through the batched call (copy in, forward, copy out).
    pub batched_scores_per_sec: f64,
    /// Market models: the micro-batching inference thread, fed as fast as it takes requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_thread: Option<ThreadBench>,
    /// With `--anomaly`: the hot thread's scorer, this alpha model and that anomaly model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scorer: Option<ScorerBench>,
}

/// The hot thread's scorer at batch 1: both models as one network, and one after the other.
#[derive(Debug, Serialize)]
pub struct ScorerBench {
    pub anomaly: String,
    /// Whether the scorer runs both as one network (both native networks in `f32`).
    pub fused: bool,
    /// `[signal, anomaly]` per event, as the hot thread calls it.
    pub batch1: Percentiles,
    /// The alpha model's score, then the anomaly model's.
    pub separate_batch1: Percentiles,
    /// Rows per second, `--batch` rows a call, through both models as one batched pass (when
    /// fused)...
    pub batched_rows_per_sec: f64,
    /// ... and through each model's own batched call, one after the other.
    pub separate_batched_rows_per_sec: f64,
    /// The micro-batching inference thread over both models (fused on a GPU, separate on the
    /// CPU), fed as fast as it takes requests.
    pub inference_thread: ThreadBench,
}

/// Rows per second through `f` (`batch` rows a call) over about a second.
fn throughput(batch: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let (t0, mut rows) = (Instant::now(), 0_u64);
    while t0.elapsed().as_secs_f64() < 1.0 {
        f()?;
        rows += batch as u64;
    }
    Ok(rows as f64 / t0.elapsed().as_secs_f64())
}

/// What to run, besides the model.
#[derive(Debug, Clone)]
pub struct Options {
    pub device: Device,
    /// Rows per batch for the throughput figure.
    pub batch: usize,
    /// Batch-1 calls timed each way.
    pub calls: usize,
    /// The input width of a TorchScript file (it has no card).
    pub script_inputs: usize,
    /// libtorch intra-op threads.
    pub threads: i32,
    /// fp16 (CUDA only).
    pub half: bool,
    /// An anomaly model to time beside an alpha model, as the hot thread's scorer.
    pub anomaly: Option<std::path::PathBuf>,
    /// Most rows per batch of the inference thread under saturation.
    pub thread_batch: usize,
}

/// The hot thread's scorer over `alpha` and `anomaly`, timed fused and one model after the other.
fn scorer(alpha: &Path, anomaly: &Path, o: &Options, x: &[f32]) -> Result<ScorerBench> {
    use argus_core::Scorer;
    use argus_models::features::N_FEATURES;
    use argus_models::market::{MarketModelPaths, MarketScorer};
    let paths = MarketModelPaths { alpha: alpha.to_owned(), anomaly: Some(anomaly.to_owned()) };
    let mut s = MarketScorer::load(&paths, o.device, o.half)?;
    let mut out = [0.0_f32; 2];
    let row = &x[..N_FEATURES];
    let batch1 = time(o.calls, || s.score(row, &mut out).map_err(|e| anyhow::anyhow!(e.0)))?;
    let separate_batch1 = time(o.calls, || {
        s.alpha.score_one(row).map_err(|e| anyhow::anyhow!(e.0))?;
        match &mut s.anomaly {
            Some(m) => m.score_one(row).map_err(|e| anyhow::anyhow!(e.0)).map(|_| ()),
            None => Ok(()),
        }
    })?;
    let n = o.batch.max(1);
    let rows = &x[..n * N_FEATURES];
    let (mut signal, mut score) = (vec![0.0_f32; n], vec![0.0_f32; n]);
    let batched_rows_per_sec = throughput(n, || Ok(s.score_rows_as(true, rows, n, &mut signal, &mut score)?))?;
    let separate_batched_rows_per_sec =
        throughput(n, || Ok(s.score_rows_as(false, rows, n, &mut signal, &mut score)?))?;
    Ok(ScorerBench {
        anomaly: anomaly.display().to_string(),
        fused: s.is_fused(),
        batch1,
        separate_batch1,
        batched_rows_per_sec,
        separate_batched_rows_per_sec,
        inference_thread: inference_thread(&paths, o.device, o.half, o.thread_batch.max(1), x)?,
    })
}

/// The inference thread under saturation: requests submitted whenever its queue has room.
#[derive(Debug, Serialize)]
pub struct ThreadBench {
    pub max_batch: usize,
    pub max_wait_us: u64,
    pub requests: u64,
    pub scores_per_sec: f64,
    pub mean_batch: f64,
    /// Submit to result received, per request.
    pub latency: Percentiles,
}

/// Drives a [`BatchInference`] of the models at `paths` with `requests` requests, keeping at
/// most four batches in flight.
fn inference_thread(
    paths: &argus_models::market::MarketModelPaths,
    device: Device,
    half: bool,
    max_batch: usize,
    x: &[f32],
) -> Result<ThreadBench> {
    use argus_models::batch::{BatchConfig, BatchInference};
    use argus_models::features::N_FEATURES;
    use std::sync::atomic::Ordering;
    let max_wait = std::time::Duration::from_micros(200);
    let cfg = BatchConfig { max_batch, max_wait, capacity: max_batch * 4 };
    let inf = BatchInference::spawn(paths.clone(), device, half, cfg)?;
    let requests = 200_000_u64;
    let mut row = [0.0_f32; N_FEATURES];
    let mut sent_at = vec![Instant::now(); requests as usize + 1];
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let (mut next, mut got) = (1_u64, 0_u64);
    let t0 = Instant::now();
    while got < requests {
        while next <= requests {
            let o = (next as usize * N_FEATURES) % (x.len() - N_FEATURES);
            row.copy_from_slice(&x[o..o + N_FEATURES]);
            sent_at[next as usize] = Instant::now();
            if !inf.try_submit(next, &row) {
                break;
            }
            next += 1;
        }
        while let Some(r) = inf.try_recv() {
            anyhow::ensure!(r.ok, "the inference thread failed a batch");
            h.record((sent_at[r.seq as usize].elapsed().as_nanos() as u64).max(1))?;
            got += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let batches = inf.stats().batches.load(Ordering::Relaxed);
    Ok(ThreadBench {
        max_batch,
        max_wait_us: max_wait.as_micros() as u64,
        requests,
        scores_per_sec: requests as f64 / secs,
        mean_batch: requests as f64 / batches.max(1) as f64,
        latency: percentiles(&h),
    })
}

// One per benchmark run: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Target {
    Market(MarketModel),
    Tabular(TabularModel),
    Script(ScriptModel, usize),
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    Percentiles {
        calls: h.len(),
        mean_ns: h.mean(),
        p50_ns: h.value_at_quantile(0.50),
        p90_ns: h.value_at_quantile(0.90),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
        max_ns: h.max(),
    }
}

/// Times `calls` calls of `f` (after `calls / 10` unrecorded warm-up calls).
fn time(calls: usize, mut f: impl FnMut() -> Result<()>) -> Result<Percentiles> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for _ in 0..calls / 10 {
        f()?;
    }
    for _ in 0..calls {
        let t = Instant::now();
        f()?;
        h.record((t.elapsed().as_nanos() as u64).max(1))?;
    }
    Ok(percentiles(&h))
}

/// Deterministic inputs in a plausible range (no model sees constant rows).
fn inputs(n: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
        })
        .collect()
}

/// Runs the benchmark: `calls` batch-1 calls each way, then batches of `batch` rows for about
/// a second. `script_inputs` is the input width of a TorchScript file (it has no card).
///
/// # Errors
/// The model cannot be loaded or fails on the generated inputs.
pub fn run(path: &Path, o: &Options) -> Result<ModelBench> {
    let Options { device, batch, calls, script_inputs, threads, half, .. } = *o;
    let (mut target, kind) = if is_torchscript(path) {
        (Target::Script(ScriptModel::load(path, device)?, script_inputs), "torchscript")
    } else if card_kind(path)? == "tabular" {
        (Target::Tabular(TabularModel::load(path, device)?), "tabular")
    } else {
        let m = MarketModel::load(path, device, half)?;
        let kind = m.card().kind.name();
        (Target::Market(m), kind)
    };
    // After loading: the market model's loader sets one thread for inline CPU inference.
    tch::set_num_threads(threads.max(1));
    let d = match &target {
        Target::Market(m) => m.card().features.len(),
        Target::Tabular(m) => m.card.features.len(),
        Target::Script(_, d) => *d,
    };
    // The width the network itself takes (a tabular column with decimal shape is three inputs).
    let net_d = match &target {
        Target::Tabular(m) => m.input_width(),
        _ => d,
    };
    let x = inputs(batch.max(1) * net_d.max(d));
    let one = Tensor::f_from_slice(&x[..net_d])?.f_view([1, net_d as i64])?.f_to_device(device)?;
    let raw: Vec<Option<f64>> = x.iter().map(|v| Some(f64::from(*v))).collect();
    let (mut scratch, mut out) = (Vec::new(), Vec::new());

    let batch1 = time(calls, || {
        match &mut target {
            Target::Market(m) => {
                m.score_one(&x[..d]).map_err(|e| anyhow::anyhow!(e.0))?;
            }
            Target::Tabular(m) => {
                out.clear();
                m.score_values(&raw[..d], &mut scratch, &mut out)?;
            }
            Target::Script(m, _) => {
                m.score_rows(&x[..d], 1, d)?;
            }
        }
        Ok(())
    })?;
    let mut first = [0.0_f32; 1];
    let raw_tch_batch1 = time(calls, || {
        let _g = tch::no_grad_guard();
        let y = match &target {
            Target::Market(m) => m.forward(&one)?,
            Target::Tabular(m) => m.network().forward(&one)?,
            Target::Script(m, _) => m.module().forward_ts(&[&one])?,
        };
        // Read the result out as argus does, in f32 (and wait for it: it matters on CUDA).
        let y = if y.kind() == tch::Kind::Float { y } else { y.f_to_kind(tch::Kind::Float)? };
        y.f_copy_data(&mut first, 1)?;
        Ok(())
    })?;
    let raw_row_batch1 = match &mut target {
        Target::Market(m) => match m.row_net() {
            Some(net) => Some(time(calls, || {
                net.forward(&one)?.f_copy_data(&mut first, 1)?;
                Ok(())
            })?),
            None => None,
        },
        Target::Tabular(m) => {
            let net = m.row_net();
            Some(time(calls, || {
                net.forward(&one)?.f_copy_data(&mut first, 1)?;
                Ok(())
            })?)
        }
        Target::Script(..) => None,
    };

    let batch = batch.max(1);
    let t0 = Instant::now();
    let mut rows = 0_u64;
    while t0.elapsed().as_secs_f64() < 1.0 {
        match &mut target {
            Target::Tabular(m) => {
                out.clear();
                m.score_values(&raw[..batch * d], &mut scratch, &mut out)?;
            }
            Target::Script(m, _) => {
                m.score_rows(&x[..batch * d], batch, d)?;
            }
            Target::Market(m) => {
                out.resize(batch, 0.0);
                m.score_rows(&x[..batch * d], batch, &mut out)?;
            }
        }
        rows += batch as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    let thread = match &target {
        Target::Market(m) if m.card().kind == argus_models::card::MarketKind::Alpha => {
            let alone = argus_models::market::MarketModelPaths { alpha: path.to_owned(), anomaly: None };
            Some(inference_thread(&alone, device, half, o.thread_batch.max(1), &x)?)
        }
        _ => None,
    };
    let scorer = match (&target, &o.anomaly) {
        (Target::Market(m), Some(a)) if m.card().kind == argus_models::card::MarketKind::Alpha => {
            Some(scorer(path, a, o, &x)?)
        }
        (_, Some(_)) => anyhow::bail!("--anomaly goes with an alpha model"),
        _ => None,
    };
    Ok(ModelBench {
        model: path.display().to_string(),
        kind,
        device: device_name(device),
        inputs: d,
        torch_threads: tch::get_num_threads(),
        overhead_p50_ns: batch1.p50_ns as i64 - raw_tch_batch1.p50_ns as i64,
        row_overhead_p50_ns: raw_row_batch1.as_ref().map(|r| batch1.p50_ns as i64 - r.p50_ns as i64),
        raw_row_batch1,
        batch1,
        raw_tch_batch1,
        batch,
        batched_scores_per_sec: rows as f64 / secs,
        inference_thread: thread,
        scorer,
    })
}
