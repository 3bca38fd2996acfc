//! `argus models bench`: a model's batch-1 latency as argus calls it, beside the bare libtorch
//! call it wraps (the same network on a ready input tensor), and its batched throughput, on
//! one device. Accepts the market MLP (a directory with `manifest.json`), a tabular model (a
//! directory with `model.toml`) or a TorchScript file.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use argus_core::Scorer;
use argus_models::mlp::{device_name, TchScorer};
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
    pub batch: usize,
    /// Rows per second through the batched call (copy in, forward, copy out).
    pub batched_scores_per_sec: f64,
}

enum Target {
    Market(TchScorer),
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
pub fn run(
    path: &Path,
    device: Device,
    batch: usize,
    calls: usize,
    script_inputs: usize,
    threads: i32,
) -> Result<ModelBench> {
    let (mut target, kind) = if is_torchscript(path) {
        (Target::Script(ScriptModel::load(path, device)?, script_inputs), "torchscript")
    } else if path.join("model.toml").exists() {
        (Target::Tabular(TabularModel::load(path, device)?), "tabular")
    } else {
        (Target::Market(TchScorer::load(path, device)?), "market_mlp")
    };
    // After loading: the market MLP's loader sets one thread for inline CPU inference.
    tch::set_num_threads(threads.max(1));
    let d = match &target {
        Target::Market(m) => m.manifest().features.len(),
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
    let mut pair = [0.0_f32; 2];

    let batch1 = time(calls, || {
        match &mut target {
            Target::Market(m) => m.score(&x[..d], &mut pair).map_err(|e| anyhow::anyhow!(e.0))?,
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
    let raw_tch_batch1 = time(calls, || {
        let _g = tch::no_grad_guard();
        let y = match &target {
            Target::Market(m) => m.network().forward(&one)?,
            Target::Tabular(m) => m.network().forward(&one)?,
            Target::Script(m, _) => m.module().forward_ts(&[&one])?,
        };
        // Wait for the result as argus does (it matters on CUDA).
        y.f_double_value(&[0, 0]).or_else(|_| y.f_double_value(&[0]))?;
        Ok(())
    })?;

    let batch = batch.max(1);
    let t0 = Instant::now();
    let mut rows = 0_u64;
    while t0.elapsed().as_secs_f64() < 1.0 {
        match &target {
            Target::Tabular(m) => {
                out.clear();
                m.score_values(&raw[..batch * d], &mut scratch, &mut out)?;
            }
            Target::Script(m, _) => {
                m.score_rows(&x[..batch * d], batch, d)?;
            }
            Target::Market(m) => {
                let _g = tch::no_grad_guard();
                let xs =
                    Tensor::f_from_slice(&x[..batch * d])?.f_view([batch as i64, d as i64])?.f_to_device(device)?;
                let y = m.network().forward(&xs)?.f_to_device(Device::Cpu)?;
                out.resize(batch * 2, 0.0);
                y.f_copy_data(&mut out, batch * 2)?;
            }
        }
        rows += batch as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(ModelBench {
        model: path.display().to_string(),
        kind,
        device: device_name(device),
        inputs: d,
        torch_threads: tch::get_num_threads(),
        overhead_p50_ns: batch1.p50_ns as i64 - raw_tch_batch1.p50_ns as i64,
        batch1,
        raw_tch_batch1,
        batch,
        batched_scores_per_sec: rows as f64 / secs,
    })
}
