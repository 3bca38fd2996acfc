//! Market models on the hot thread: an `alpha` model (the mid move over a horizon, bps) and an
//! `anomaly` model (an autoencoder whose reconstruction error is compared with a calibrated
//! threshold), each a model directory ([`ModelCard`] + weights) or a bare TorchScript file.
//!
//! [`MarketModel`] scores one feature vector inline (batch 1: a [`RowNet`] whose tensors are made
//! at load, one libtorch thread, warmed up at load) or a batch of rows; [`MarketScorer`] pairs
//! the two behind [`argus_core::Scorer`] (as one network when both are native `f32` MLPs),
//! writing `[signal_bps, anomaly]` with `anomaly = e / (e + threshold)`:
//! 0.5 exactly at the calibrated threshold, so risk's anomaly gate (0.5 by default) blocks the
//! events the model was calibrated to flag.

use std::path::{Path, PathBuf};

use argus_core::{ScoreError, Scorer};
use tch::{nn, CModule, Device, Kind, Tensor};

use crate::card::{FeatureNorm, MarketKind, ModelCard, Training, FORMAT_MLP, FORMAT_TORCHSCRIPT};
use crate::features::{FEATURE_NAMES, N_FEATURES};
use crate::mlp::{Mlp, RowInput, RowNet};
use crate::script::is_torchscript;
use crate::ModelError;

/// The network behind a card.
#[derive(Debug)]
enum Net {
    Mlp {
        mlp: Mlp,
        // Kept alive: the layers' tensors live in it.
        _vs: nn::VarStore,
    },
    Script(CModule),
}

/// One loaded market model.
#[derive(Debug)]
pub struct MarketModel {
    card: ModelCard,
    net: Net,
    device: Device,
    kind: Kind,
    mean: [f32; N_FEATURES],
    inv_std: [f32; N_FEATURES],
    /// `mean` and `inv_std` as `[1, N_FEATURES]` tensors on the device: batches off the CPU
    /// are standardised and finished there ([`MarketModel::score_rows`]).
    mean_t: Tensor,
    inv_std_t: Tensor,
    buf: [f32; N_FEATURES],
    out: [f32; N_FEATURES],
    /// The input tensor, made once (TorchScript and fp16 models; [`RowNet`] has its own).
    input: RowInput,
    /// The network for one row at a time, for native networks in `f32` (TorchScript and fp16
    /// models run through `forward`).
    row: Option<RowNet>,
}

/// `net` on `x`, cast to `kind` first when that is not `f32`.
fn net_forward(net: &Net, kind: Kind, x: &Tensor) -> Result<Tensor, tch::TchError> {
    let half;
    let x = if kind == Kind::Float {
        x
    } else {
        half = x.f_to_kind(kind)?;
        &half
    };
    match net {
        Net::Mlp { mlp, .. } => mlp.forward(x),
        Net::Script(m) => m.forward_ts(&[x]),
    }
}

/// The fused pair's batch as tensor operations on the device (also callable on the CPU, where
/// tests hold it equal to the row loop): one copy in, both networks as one, `2n` scores out.
fn fused_rows_tensors(
    a: &MarketModel,
    b: &MarketModel,
    f: &Fused,
    rows: &[f32],
    n: usize,
    signal: &mut [f32],
    anomaly: &mut [f32],
) -> Result<(), ModelError> {
    let scores = tch::no_grad(|| -> Result<Tensor, tch::TchError> {
        let raw = rows_on(rows, n, a.device)?;
        let (xa, xb) = (a.standardize_rows(&raw)?, b.standardize_rows(&raw)?);
        let y = f.net.forward_rows(&Tensor::f_cat(&[&xa, &xb], 1)?)?;
        let sa = a.finish_rows(&xa, &y.f_narrow(1, 0, 1)?)?;
        let sb = b.finish_rows(&xb, &y.f_narrow(1, 1, N_FEATURES as i64)?)?;
        Tensor::f_stack(&[sa, sb], 0)?.f_to_device(Device::Cpu)
    })?;
    copy_scores(&a.card.name, &scores.f_get(0)?, &mut signal[..n])?;
    copy_scores(&b.card.name, &scores.f_get(1)?, &mut anomaly[..n])
}

/// The smallest batch standardised and finished on the GPU: below it the kernel launches those
/// take cost more than doing them on the CPU (the inference thread's 256-row batches of the pair:
/// 0.85 -> 1.2-1.3 M scores/s on the H200 with them on the CPU; BENCHMARKS.md).
const DEVICE_SIDE_MIN_ROWS: usize = 1024;

/// `n` rows of `rows` as a `[n, N_FEATURES]` tensor on `device` (one copy into a host tensor,
/// one to the device).
fn rows_on(rows: &[f32], n: usize, device: Device) -> Result<Tensor, tch::TchError> {
    // Staging through page-locked memory was tried on the H200: no faster at 65,536 or 1M rows,
    // and libtorch 2.11 warns on every `pin_memory(device)` call (BENCHMARKS.md).
    Tensor::f_from_slice(rows)?.f_view([n as i64, N_FEATURES as i64])?.f_to_device(device)
}

/// Copies a batch's scores (`[n]` `f32` on the CPU) into `out`, which must be `n` long.
fn copy_scores(model: &str, scores: &Tensor, out: &mut [f32]) -> Result<(), ModelError> {
    if scores.numel() != out.len() {
        return Err(bad(
            Path::new(model),
            format!("the network gave {:?} scores for {} rows", scores.size(), out.len()),
        ));
    }
    scores.f_copy_data(out, out.len())?;
    Ok(())
}

fn bad(dir: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Manifest { dir: dir.display().to_string(), reason: reason.into() }
}

/// A feature vector must be the pipeline's width.
#[inline]
fn check_width(features: &[f32]) -> Result<(), ScoreError> {
    if features.len() == N_FEATURES {
        Ok(())
    } else {
        Err(ScoreError(format!("expected {N_FEATURES} features, got {}", features.len())))
    }
}

/// `dst[i] = (features[i] - mean[i]) * inv_std[i]`.
#[inline]
fn standardize(mean: &[f32], inv_std: &[f32], features: &[f32], dst: &mut [f32]) {
    for (((d, x), m), s) in dst.iter_mut().zip(features).zip(mean).zip(inv_std) {
        *d = (x - m) * s;
    }
}

/// The card a bare TorchScript file stands for: an alpha model over the pipeline's features,
/// raw (mean 0, std 1), in order.
fn bare_card(path: &Path) -> Result<ModelCard, ModelError> {
    Ok(ModelCard {
        name: path.file_stem().map_or_else(|| "torchscript".into(), |s| s.to_string_lossy().into_owned()),
        version: 1,
        kind: MarketKind::Alpha,
        task: MarketKind::Alpha.task().into(),
        format: FORMAT_TORCHSCRIPT.into(),
        weights: path.display().to_string(),
        weights_sha256: crate::tabular::sha256_file(path)?,
        preferred_device: "cpu".into(),
        input_shape: vec![-1, N_FEATURES as i64],
        output_shape: vec![-1, 1],
        outputs: vec!["signal_bps".into()],
        hidden: Vec::new(),
        output_scale: 1.0,
        threshold: None,
        training: Training {
            data: String::new(),
            samples_train: 0,
            samples_val: 0,
            samples_test: 0,
            seed: 0,
            max_epochs: 0,
            epochs_run: 0,
            learning_rate: 0.0,
            batch_size: 0,
            horizon_trades: 0,
            target_alert_rate: None,
        },
        validation: Default::default(),
        test: Default::default(),
        features: FEATURE_NAMES.iter().map(|n| FeatureNorm { name: (*n).into(), mean: 0.0, std: 1.0 }).collect(),
    })
}

impl MarketModel {
    /// Loads a model directory (or a bare TorchScript file) onto `device`, checks the weights'
    /// hash and that its features are this pipeline's [`FEATURE_NAMES`], and warms it up.
    /// `half` runs it in fp16 (CUDA only).
    ///
    /// # Errors
    /// A bad card, hash or schema mismatch (the first differing feature is named), weights of
    /// another shape, or fp16 asked for off CUDA.
    pub fn load(path: &Path, device: Device, half: bool) -> Result<Self, ModelError> {
        let (card, weights) = if is_torchscript(path) {
            (bare_card(path)?, path.to_owned())
        } else {
            let card = ModelCard::load(path)?;
            let w = path.join(&card.weights);
            (card, w)
        };
        card.check_schema(&FEATURE_NAMES, path)?;
        if half && !device.is_cuda() {
            return Err(bad(path, "fp16 inference needs a CUDA device (use --device cuda or drop --half)"));
        }
        let kind = if half { Kind::Half } else { Kind::Float };
        let width = N_FEATURES as i64;
        let outputs = card.output_shape.get(1).copied().unwrap_or(1);
        let net = match card.format.as_str() {
            FORMAT_MLP => {
                let mut vs = nn::VarStore::new(device);
                let mlp = Mlp::new(&vs.root(), width, &card.hidden, outputs);
                vs.load(&weights)?;
                if half {
                    vs.half();
                }
                Net::Mlp { mlp, _vs: vs }
            }
            _ => {
                let mut m = CModule::load_on_device(&weights, device)
                    .map_err(|e| bad(path, format!("not a TorchScript module libtorch can load: {e}")))?;
                m.set_eval();
                if half {
                    m.to(device, Kind::Half, false);
                }
                Net::Script(m)
            }
        };
        if device == Device::Cpu {
            // Inline batch-1 inference on the hot thread: one thread, no pool hand-offs.
            tch::set_num_threads(1);
        }
        let mut mean = [0.0_f32; N_FEATURES];
        let mut inv_std = [1.0_f32; N_FEATURES];
        for (i, f) in card.features.iter().enumerate() {
            mean[i] = f.mean as f32;
            inv_std[i] = (1.0 / f.std) as f32;
        }
        let row = match &net {
            Net::Mlp { mlp, .. } if kind == Kind::Float => Some(RowNet::new(&[mlp], device)?),
            _ => None,
        };
        let on_device = |v: &[f32; N_FEATURES]| Tensor::f_from_slice(v)?.f_view([1, width])?.f_to_device(device);
        let (mean_t, inv_std_t) = (on_device(&mean)?, on_device(&inv_std)?);
        let mut m = Self {
            card,
            net,
            device,
            kind,
            mean,
            inv_std,
            mean_t,
            inv_std_t,
            buf: [0.0; N_FEATURES],
            out: [0.0; N_FEATURES],
            input: RowInput::new(N_FEATURES, device)?,
            row,
        };
        // Prove the network's output shape is what the card says, then warm up.
        let probe = Tensor::f_from_slice(&[0.0_f32; N_FEATURES])?.f_view([1, width])?.f_to_device(device)?;
        let shape = tch::no_grad(|| m.forward(&probe))?.size();
        if shape != [1, outputs] {
            return Err(bad(path, format!("the network returns {shape:?} for one row; the card says [1, {outputs}]")));
        }
        for _ in 0..50 {
            m.score_one(&[0.0; N_FEATURES]).map_err(|e| bad(path, format!("scoring a zero vector: {}", e.0)))?;
        }
        Ok(m)
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The raw network on standardised inputs, for benchmarks against the bare libtorch call.
    ///
    /// # Errors
    /// Torch failures.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        net_forward(&self.net, self.kind, x)
    }

    fn outputs(&self) -> usize {
        match self.card.kind {
            MarketKind::Alpha => 1,
            MarketKind::Anomaly => N_FEATURES,
        }
    }

    /// The score of one unstandardised feature vector: the signal in bps (alpha) or
    /// `e / (e + threshold)` (anomaly).
    ///
    /// # Errors
    /// Wrong width or torch failures.
    pub fn score_one(&mut self, features: &[f32]) -> Result<f32, ScoreError> {
        check_width(features)?;
        standardize(&self.mean, &self.inv_std, features, &mut self.buf);
        self.run().map_err(|e| ScoreError(e.to_string()))?;
        Ok(self.finish(&self.buf, &self.out))
    }

    /// Standardises `features` into `dst` with this model's card.
    #[inline]
    fn standardize(&self, features: &[f32], dst: &mut [f32]) {
        standardize(&self.mean, &self.inv_std, features, dst);
    }

    /// The network [`score_one`](Self::score_one) runs, for native networks in `f32`
    /// (benchmarks time its layers alone).
    pub fn row_net(&mut self) -> Option<&mut RowNet> {
        self.row.as_mut()
    }

    /// The native network in `f32`, if that is what this model is.
    fn mlp_f32(&self) -> Option<&Mlp> {
        match &self.net {
            Net::Mlp { mlp, .. } if self.kind == Kind::Float => Some(mlp),
            _ => None,
        }
    }

    fn run(&mut self) -> Result<(), tch::TchError> {
        let k = self.outputs();
        if let Some(row) = &mut self.row {
            return row.run(&self.buf, &mut self.out[..k]);
        }
        let _guard = tch::no_grad_guard();
        let Self { input, buf, net, kind, out, .. } = self;
        // The output's shape was checked once at load (`Tensor::size` allocates).
        let y = net_forward(net, *kind, input.fill(buf)?)?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
        y.f_copy_data(&mut out[..k], k)
    }

    /// Turns one row's network output into its score.
    #[inline]
    fn finish(&self, x: &[f32], y: &[f32]) -> f32 {
        match self.card.kind {
            MarketKind::Alpha => (f64::from(y[0]) * self.card.output_scale) as f32,
            MarketKind::Anomaly => {
                let e = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / N_FEATURES as f32;
                let t = self.card.threshold.unwrap_or(1.0) as f32;
                e / (e + t)
            }
        }
    }

    /// [`standardize`](Self::standardize) for a batch `[n, N_FEATURES]` on the device.
    fn standardize_rows(&self, raw: &Tensor) -> Result<Tensor, tch::TchError> {
        raw.f_sub(&self.mean_t)?.f_mul(&self.inv_std_t)
    }

    /// [`finish`](Self::finish) for a batch on the device: standardised inputs `xs` `[n, d]`
    /// and the network's outputs `y` (any float kind) give the scores `[n]` in `f32`.
    fn finish_rows(&self, xs: &Tensor, y: &Tensor) -> Result<Tensor, tch::TchError> {
        match self.card.kind {
            MarketKind::Alpha => {
                y.f_select(1, 0)?.f_to_kind(Kind::Double)?.f_mul_scalar(self.card.output_scale)?.f_to_kind(Kind::Float)
            }
            MarketKind::Anomaly => {
                let diff = xs.f_sub(&y.f_to_kind(Kind::Float)?)?;
                let e = diff.f_mul(&diff)?.f_mean_dim(Some([1_i64].as_slice()), false, Kind::Float)?;
                e.f_div(&e.f_add_scalar(self.card.threshold.unwrap_or(1.0))?)
            }
        }
    }

    /// Scores `n` unstandardised rows (row-major) in one call into `out[..n]`. Off the CPU the
    /// rows go to the device as they are, in one copy, and come back as `n` scores: the
    /// standardising and finishing run there too, so one CPU core does not bound a GPU batch.
    ///
    /// # Errors
    /// Wrong lengths or torch failures.
    pub fn score_rows(&self, rows: &[f32], n: usize, out: &mut [f32]) -> Result<(), ModelError> {
        let d = N_FEATURES;
        if rows.len() != n * d || out.len() < n {
            return Err(bad(Path::new(&self.card.name), format!("{} values for {n} rows of {d}", rows.len())));
        }
        if n == 0 {
            return Ok(());
        }
        if self.device != Device::Cpu && n >= DEVICE_SIDE_MIN_ROWS {
            return self.score_rows_tensors(rows, n, out);
        }
        let mut x = Vec::with_capacity(rows.len());
        for r in rows.chunks_exact(d) {
            x.extend(r.iter().enumerate().map(|(i, v)| (v - self.mean[i]) * self.inv_std[i]));
        }
        let k = self.outputs();
        let y = tch::no_grad(|| -> Result<Tensor, tch::TchError> {
            let xs = crate::mlp::input_tensor(&x, n, d, &mut Vec::new())?.f_to_device(self.device)?;
            self.forward(&xs)?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()
        })?;
        if y.numel() != n * k {
            return Err(bad(
                Path::new(&self.card.name),
                format!("the network returned {:?} for {n} rows, the card says [{n}, {k}]", y.size()),
            ));
        }
        let mut ys = vec![0.0_f32; n * k];
        y.f_copy_data(&mut ys, n * k)?;
        for (i, o) in out.iter_mut().take(n).enumerate() {
            *o = self.finish(&x[i * d..(i + 1) * d], &ys[i * k..(i + 1) * k]);
        }
        Ok(())
    }

    /// [`score_rows`](Self::score_rows) as tensor operations on the model's device (also
    /// callable on the CPU, where tests hold it equal to the row loop).
    fn score_rows_tensors(&self, rows: &[f32], n: usize, out: &mut [f32]) -> Result<(), ModelError> {
        let scores = tch::no_grad(|| -> Result<Tensor, tch::TchError> {
            let xs = self.standardize_rows(&rows_on(rows, n, self.device)?)?;
            self.finish_rows(&xs, &self.forward(&xs)?)?.f_to_device(Device::Cpu)
        })?;
        copy_scores(&self.card.name, &scores, &mut out[..n])
    }

    /// Scores every row of `table`, finding the model's features by column name (the first
    /// missing column is named). A row with an empty or non-numeric feature gets `None`.
    ///
    /// # Errors
    /// A missing feature column, or torch failures.
    pub fn score_table(&self, table: &crate::tabular::Table) -> Result<Vec<Option<f32>>, ModelError> {
        let mut cols = Vec::with_capacity(N_FEATURES);
        for f in &self.card.features {
            cols.push(
                table.col(&f.name).ok_or_else(|| {
                    bad(Path::new(&self.card.name), format!("input has no feature column `{}`", f.name))
                })?,
            );
        }
        let mut rows = Vec::with_capacity(table.rows.len() * N_FEATURES);
        let mut complete = Vec::with_capacity(table.rows.len());
        for r in &table.rows {
            let vals: Option<Vec<f32>> = cols.iter().map(|&c| crate::tabular::num(&r[c]).map(|v| v as f32)).collect();
            complete.push(vals.is_some());
            rows.extend(vals.unwrap_or_default());
        }
        let n = rows.len() / N_FEATURES;
        let mut scores = vec![0.0_f32; n];
        self.score_rows(&rows, n, &mut scores)?;
        let mut it = scores.into_iter();
        Ok(complete.into_iter().map(|ok| if ok { it.next() } else { None }).collect())
    }
}

/// The hot thread's scorer: an alpha model and, optionally, an anomaly model.
#[derive(Debug)]
pub struct MarketScorer {
    pub alpha: MarketModel,
    pub anomaly: Option<MarketModel>,
    /// Both models as one network, when both are native networks in `f32`: one libtorch
    /// pass per event instead of two.
    fused: Option<Fused>,
}

/// The alpha and anomaly networks side by side ([`RowNet`]): input `[alpha's standardised
/// features, anomaly's]`, output `[alpha's output, anomaly's reconstruction]`.
#[derive(Debug)]
struct Fused {
    net: RowNet,
    x: [f32; 2 * N_FEATURES],
    y: [f32; 1 + N_FEATURES],
}

impl Fused {
    fn new(alpha: &MarketModel, anomaly: &MarketModel) -> Result<Option<Self>, ModelError> {
        let (Some(a), Some(b)) = (alpha.mlp_f32(), anomaly.mlp_f32()) else { return Ok(None) };
        let net = RowNet::new(&[a, b], alpha.device)?;
        if net.outputs() != 1 + N_FEATURES {
            return Err(bad(
                Path::new(&alpha.card.name),
                format!("alpha and anomaly together give {} outputs, not {}", net.outputs(), 1 + N_FEATURES),
            ));
        }
        let mut f = Self { net, x: [0.0; 2 * N_FEATURES], y: [0.0; 1 + N_FEATURES] };
        let mut out = [0.0; 2];
        for _ in 0..50 {
            f.score(alpha, anomaly, &[0.0; N_FEATURES], &mut out).map_err(|e| bad(Path::new(&alpha.card.name), e.0))?;
        }
        Ok(Some(f))
    }

    #[inline]
    fn score(
        &mut self,
        alpha: &MarketModel,
        anomaly: &MarketModel,
        features: &[f32],
        out: &mut [f32],
    ) -> Result<(), ScoreError> {
        check_width(features)?;
        let (xa, xb) = self.x.split_at_mut(N_FEATURES);
        alpha.standardize(features, xa);
        anomaly.standardize(features, xb);
        self.net.run(&self.x, &mut self.y).map_err(|e| ScoreError(e.to_string()))?;
        out[0] = alpha.finish(&self.x[..N_FEATURES], &self.y[..1]);
        out[1] = anomaly.finish(&self.x[N_FEATURES..], &self.y[1..]);
        Ok(())
    }
}

/// Where the pipeline's market models come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketModelPaths {
    pub alpha: PathBuf,
    pub anomaly: Option<PathBuf>,
}

impl MarketScorer {
    /// Loads both models onto `device`.
    ///
    /// # Errors
    /// Either model's load errors; an alpha slot holding an anomaly model or the reverse.
    pub fn load(paths: &MarketModelPaths, device: Device, half: bool) -> Result<Self, ModelError> {
        let alpha = MarketModel::load(&paths.alpha, device, half)?;
        if alpha.card.kind != MarketKind::Alpha {
            return Err(bad(
                &paths.alpha,
                format!("a {} model where an alpha model is needed", alpha.card.kind.name()),
            ));
        }
        let anomaly = match &paths.anomaly {
            Some(p) => {
                let m = MarketModel::load(p, device, half)?;
                if m.card.kind != MarketKind::Anomaly {
                    return Err(bad(p, format!("a {} model where an anomaly model is needed", m.card.kind.name())));
                }
                Some(m)
            }
            None => None,
        };
        let fused = match &anomaly {
            Some(b) => Fused::new(&alpha, b)?,
            None => None,
        };
        Ok(Self { alpha, anomaly, fused })
    }

    /// Whether both models run as one network (both native networks in `f32`).
    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// Scores `n` unstandardised rows (row-major) into `signal[..n]` and `anomaly[..n]` (0
    /// without an anomaly model), as the inference thread does: on a GPU, fused, one batched
    /// pass through both networks (half the kernel launches); on the CPU each model's own batch,
    /// since there a batch is bound by arithmetic and the fused layers' zero blocks double it
    /// (measured: equal at 256 rows, fused 1.3-2.5x slower at 4096; BENCHMARKS.md).
    ///
    /// # Errors
    /// Wrong lengths or torch failures.
    pub fn score_rows(
        &self,
        rows: &[f32],
        n: usize,
        signal: &mut [f32],
        anomaly: &mut [f32],
    ) -> Result<(), ModelError> {
        self.score_rows_as(self.alpha.device != Device::Cpu, rows, n, signal, anomaly)
    }

    /// [`Self::score_rows`] fused (when the pair is fused) or not, whatever the device.
    ///
    /// # Errors
    /// Wrong lengths or torch failures.
    pub fn score_rows_as(
        &self,
        fused: bool,
        rows: &[f32],
        n: usize,
        signal: &mut [f32],
        anomaly: &mut [f32],
    ) -> Result<(), ModelError> {
        let d = N_FEATURES;
        if rows.len() != n * d || signal.len() < n || anomaly.len() < n {
            return Err(bad(Path::new(&self.alpha.card.name), format!("{} values for {n} rows of {d}", rows.len())));
        }
        let (Some(f), Some(b), true) = (&self.fused, &self.anomaly, fused) else {
            self.alpha.score_rows(rows, n, signal)?;
            return match &self.anomaly {
                Some(m) => m.score_rows(rows, n, anomaly),
                None => {
                    anomaly[..n].fill(0.0);
                    Ok(())
                }
            };
        };
        if n == 0 {
            return Ok(());
        }
        let a = &self.alpha;
        if a.device != Device::Cpu && n >= DEVICE_SIDE_MIN_ROWS {
            return fused_rows_tensors(a, b, f, rows, n, signal, anomaly);
        }
        let mut x = vec![0.0_f32; n * 2 * d];
        for (r, xr) in rows.chunks_exact(d).zip(x.chunks_exact_mut(2 * d)) {
            let (xa, xb) = xr.split_at_mut(d);
            a.standardize(r, xa);
            b.standardize(r, xb);
        }
        let k = 1 + d;
        let y = tch::no_grad(|| -> Result<Tensor, tch::TchError> {
            let xs = crate::mlp::input_tensor(&x, n, 2 * d, &mut Vec::new())?.f_to_device(a.device)?;
            f.net.forward_rows(&xs)?.f_to_device(Device::Cpu)?.f_contiguous()
        })?;
        let mut ys = vec![0.0_f32; n * k];
        y.f_copy_data(&mut ys, n * k)?;
        for (i, (xr, yr)) in x.chunks_exact(2 * d).zip(ys.chunks_exact(k)).enumerate() {
            signal[i] = a.finish(&xr[..d], &yr[..1]);
            anomaly[i] = b.finish(&xr[d..], &yr[1..]);
        }
        Ok(())
    }
}

impl Scorer for MarketScorer {
    /// `out = [signal_bps, anomaly]`; without an anomaly model the anomaly is 0.
    fn score(&mut self, features: &[f32], out: &mut [f32]) -> Result<(), ScoreError> {
        if out.len() < 2 {
            return Err(ScoreError("expected room for 2 outputs".into()));
        }
        if let (Some(f), Some(anomaly)) = (&mut self.fused, &self.anomaly) {
            return f.score(&self.alpha, anomaly, features, out);
        }
        out[0] = self.alpha.score_one(features)?;
        out[1] = match &mut self.anomaly {
            Some(m) => m.score_one(features)?,
            None => 0.0,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn zoo(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo").join(name)
    }

    /// `n` rows spread over ±3 standard deviations of each of the model's features.
    fn rows(m: &MarketModel, n: usize) -> Vec<f32> {
        let mut s = 0x2545_f491_4f6c_dd1d_u64;
        (0..n * N_FEATURES)
            .map(|i| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32 * 6.0 - 3.0;
                let j = i % N_FEATURES;
                m.mean[j] + u / m.inv_std[j]
            })
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{what}, row {i}: {g} vs {w}");
        }
        assert!(want.iter().any(|v| *v != want[0]), "{what}: every row scored the same");
    }

    /// The batch path a GPU takes (standardise, network, finish, all as tensor operations)
    /// run here on the CPU scores what the CPU's row loop scores: alpha, anomaly and the
    /// fused pair.
    #[test]
    fn device_batch_path_equals_the_row_loop() {
        let paths = MarketModelPaths { alpha: zoo("btcusdt_alpha"), anomaly: Some(zoo("btcusdt_anomaly")) };
        let s = MarketScorer::load(&paths, Device::Cpu, false).unwrap();
        let (a, b, f) = (&s.alpha, s.anomaly.as_ref().unwrap(), s.fused.as_ref().unwrap());
        let n = 500;
        let x = rows(a, n);
        for (m, what) in [(a, "alpha"), (b, "anomaly")] {
            let (mut want, mut got) = (vec![0.0_f32; n], vec![0.0_f32; n]);
            m.score_rows(&x, n, &mut want).unwrap();
            m.score_rows_tensors(&x, n, &mut got).unwrap();
            assert_close(&got, &want, what);
        }
        let (mut want_s, mut want_a) = (vec![0.0_f32; n], vec![0.0_f32; n]);
        s.score_rows_as(false, &x, n, &mut want_s, &mut want_a).unwrap();
        let (mut got_s, mut got_a) = (vec![0.0_f32; n], vec![0.0_f32; n]);
        fused_rows_tensors(a, b, f, &x, n, &mut got_s, &mut got_a).unwrap();
        assert_close(&got_s, &want_s, "fused alpha");
        assert_close(&got_a, &want_a, "fused anomaly");
        // Anomaly scores are e / (e + threshold): inside (0, 1), and not all near one end.
        assert!(got_a.iter().all(|v| (0.0..1.0).contains(v)));
    }
}
