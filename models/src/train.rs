//! Training market models with tch on replayed market data (`argus models train alpha|anomaly`).
//!
//! Samples come from the same book and feature code as the hot thread: at every trade, the
//! feature vector and the mid. `alpha` regresses the mid return over the next `horizon` trades
//! (bps); `anomaly` is an autoencoder of the feature vector whose reconstruction-error threshold
//! is calibrated to a target alert rate on the validation split. Splits are chronological:
//! train, validation (early stopping, calibration), and the latest rows as the test split.

use std::collections::BTreeMap;
use std::path::Path;

use argus_core::{MarketEvent, MarketEventKind, OrderBook};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Reduction, Tensor};

use crate::card::{FeatureNorm, MarketKind, ModelCard, Training, FORMAT_MLP};
use crate::features::{Features, FEATURE_NAMES, N_FEATURES};
use crate::mlp::Mlp;
use crate::ModelError;

/// One training row: the features at a trade and the mid then.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub features: [f32; N_FEATURES],
    pub mid: f64,
}

/// Replays `events` through a book and [`Features`], sampling at each trade.
pub fn collect_samples(events: impl Iterator<Item = MarketEvent>, book_levels: usize) -> Vec<Sample> {
    let mut book = OrderBook::new(book_levels);
    let mut feats = Features::new();
    let mut out = Vec::new();
    for ev in events {
        if let MarketEventKind::Delta(d) = ev.kind {
            book.apply(&d);
        }
        feats.update(&ev, &book);
        if matches!(ev.kind, MarketEventKind::Trade(_)) {
            if let Some(mid) = feats.mid(&book) {
                out.push(Sample { features: *feats.values(), mid });
            }
        }
    }
    out
}

/// Training parameters.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub name: String,
    pub kind: MarketKind,
    /// Alpha: the target is the mid move over this many trades. Anomaly: the horizon of the
    /// large-move labels its AUC is reported on.
    pub horizon_trades: usize,
    /// Hidden widths (anomaly: the encoder, bottleneck and decoder, e.g. `[16, 4, 16]`).
    pub hidden: Vec<i64>,
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation loss (the best epoch is kept).
    pub patience: usize,
    pub learning_rate: f64,
    pub batch_size: usize,
    pub seed: u64,
    /// Chronological shares of the samples: train, then validation, then test (the latest).
    pub val_fraction: f64,
    pub test_fraction: f64,
    /// Anomaly: the share of validation events the threshold flags.
    pub alert_rate: f64,
    pub device: Device,
    /// Describes the data in the card.
    pub data: String,
}

impl TrainConfig {
    /// The defaults for `kind`.
    pub fn new(kind: MarketKind) -> Self {
        let (name, hidden) = match kind {
            MarketKind::Alpha => ("btcusdt_alpha", vec![32, 32]),
            MarketKind::Anomaly => ("btcusdt_anomaly", vec![16, 4, 16]),
        };
        Self {
            name: name.into(),
            kind,
            horizon_trades: 50,
            hidden,
            max_epochs: 200,
            patience: 15,
            learning_rate: 1e-3,
            batch_size: 256,
            seed: 7,
            val_fraction: 0.15,
            test_fraction: 0.15,
            alert_rate: 0.01,
            device: Device::Cpu,
            data: String::new(),
        }
    }
}

/// One epoch's figures, for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct EpochProgress {
    pub epoch: usize,
    pub max_epochs: usize,
    pub train_loss: f32,
    pub val_loss: f32,
    pub best_epoch: usize,
}

const MAX_TARGET_BPS: f64 = 50.0;
/// Large moves (the anomaly model's AUC labels): |forward move| above this training quantile.
const LARGE_MOVE_QUANTILE: f64 = 0.95;

/// Seeded Fisher-Yates (splitmix64): the same order for the same seed on every machine.
fn shuffle(idx: &mut [usize], seed: &mut u64) {
    for i in (1..idx.len()).rev() {
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        idx.swap(i, (z % (i as u64 + 1)) as usize);
    }
}

fn quantile(v: &[f32], q: f64) -> f32 {
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    s.get(((s.len() as f64 * q) as usize).min(s.len().saturating_sub(1))).copied().unwrap_or(0.0)
}

/// Trains an alpha or anomaly model on `samples` (in time order) and writes `out_dir/model.toml`
/// and `out_dir/weights.safetensors`. Adam on shuffled mini-batches (seeded), early stopping on
/// the validation split (the best epoch's weights are kept), metrics on validation and on the
/// latest split nothing was tuned on. A horizon of samples separates the splits so that no
/// target overlaps the next split.
///
/// # Errors
/// Too few samples, torch failures, or I/O.
pub fn train(
    samples: &[Sample],
    cfg: &TrainConfig,
    out_dir: &Path,
    progress: &mut dyn FnMut(&EpochProgress),
) -> Result<ModelCard, ModelError> {
    let h = cfg.horizon_trades;
    if samples.len() < h + 500 {
        return Err(ModelError::NotEnoughData(samples.len()));
    }
    let n = samples.len() - h;
    let fwd: Vec<f32> = (0..n)
        .map(|i| ((samples[i + h].mid / samples[i].mid - 1.0) * 1e4).clamp(-MAX_TARGET_BPS, MAX_TARGET_BPS) as f32)
        .collect();
    let a = ((n as f64) * (1.0 - cfg.val_fraction - cfg.test_fraction)) as usize;
    let b = ((n as f64) * (1.0 - cfg.test_fraction)) as usize;
    let (train_idx, val_idx, test_idx) = (0..a, (a + h).min(b)..b, (b + h).min(n)..n);
    if train_idx.len() < 200 || val_idx.len() < 50 || test_idx.len() < 50 {
        return Err(ModelError::NotEnoughData(samples.len()));
    }

    let d = N_FEATURES;
    let mut mean = [0.0_f64; N_FEATURES];
    let mut var = [0.0_f64; N_FEATURES];
    for s in &samples[train_idx.clone()] {
        for (j, x) in s.features.iter().enumerate() {
            mean[j] += f64::from(*x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= a as f64);
    for s in &samples[train_idx.clone()] {
        for (j, x) in s.features.iter().enumerate() {
            var[j] += (f64::from(*x) - mean[j]).powi(2);
        }
    }
    // A feature constant on the training rows stays unscaled (std 1) rather than exploding
    // whatever live value differs.
    let std: Vec<f64> = var.iter().map(|v| (v / a as f64).sqrt()).map(|s| if s > 1e-9 { s } else { 1.0 }).collect();

    let abs_train: Vec<f32> = fwd[train_idx.clone()].iter().map(|r| r.abs()).collect();
    let large = quantile(&abs_train, LARGE_MOVE_QUANTILE);
    let target_sd = {
        let t = &fwd[train_idx.clone()];
        let m = t.iter().map(|v| f64::from(*v)).sum::<f64>() / t.len() as f64;
        (t.iter().map(|v| (f64::from(*v) - m).powi(2)).sum::<f64>() / t.len() as f64).sqrt().max(1e-6)
    };
    let output_scale = if cfg.kind == MarketKind::Alpha { target_sd } else { 1.0 };

    let matrix = |idx: std::ops::Range<usize>| -> Result<(Tensor, Tensor), ModelError> {
        let mut x = Vec::with_capacity(idx.len() * d);
        let mut y = Vec::with_capacity(idx.len());
        for i in idx.clone() {
            for (j, v) in samples[i].features.iter().enumerate() {
                x.push(((f64::from(*v) - mean[j]) / std[j]) as f32);
            }
            y.push((f64::from(fwd[i]) / output_scale) as f32);
        }
        let rows = idx.len() as i64;
        Ok((
            Tensor::f_from_slice(&x)?.f_view([rows, d as i64])?.f_to_device(cfg.device)?,
            Tensor::f_from_slice(&y)?.f_view([rows, 1])?.f_to_device(cfg.device)?,
        ))
    };
    let (xt, yt) = matrix(train_idx.clone())?;
    let (xv, yv) = matrix(val_idx.clone())?;
    let (xs, _) = matrix(test_idx.clone())?;

    let outputs = match cfg.kind {
        MarketKind::Alpha => 1,
        MarketKind::Anomaly => d as i64,
    };
    let loss_of = |mlp: &Mlp, x: &Tensor, y: &Tensor| -> Result<Tensor, tch::TchError> {
        let p = mlp.forward(x)?;
        match cfg.kind {
            MarketKind::Alpha => p.f_mse_loss(y, Reduction::Mean),
            MarketKind::Anomaly => p.f_mse_loss(x, Reduction::Mean),
        }
    };

    let mut vs = nn::VarStore::new(cfg.device);
    let mlp = Mlp::seeded(&vs.root(), d as i64, &cfg.hidden, outputs, cfg.seed);
    let mut best_vs = nn::VarStore::new(cfg.device);
    let _best_mlp = Mlp::new(&best_vs.root(), d as i64, &cfg.hidden, outputs);
    best_vs.copy(&vs)?;
    let mut opt = nn::Adam::default().build(&vs, cfg.learning_rate)?;
    let mut order: Vec<usize> = (0..a).collect();
    let mut rng = cfg.seed;
    let (mut best_loss, mut best_epoch, mut epochs_run) = (f32::INFINITY, 0, 0);
    let bs = cfg.batch_size.max(1);
    for epoch in 1..=cfg.max_epochs {
        shuffle(&mut order, &mut rng);
        let (mut sum, mut batches) = (0.0_f64, 0);
        for chunk in order.chunks(bs) {
            let idx: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
            let idx = Tensor::f_from_slice(&idx)?.f_to_device(cfg.device)?;
            let (xb, yb) = (xt.f_index_select(0, &idx)?, yt.f_index_select(0, &idx)?);
            let loss = loss_of(&mlp, &xb, &yb)?;
            opt.zero_grad();
            loss.f_backward()?;
            opt.step();
            sum += loss.f_double_value(&[])?;
            batches += 1;
        }
        let val_loss = tch::no_grad(|| loss_of(&mlp, &xv, &yv))?.f_double_value(&[])? as f32;
        epochs_run = epoch;
        if val_loss < best_loss {
            best_loss = val_loss;
            best_epoch = epoch;
            best_vs.copy(&vs)?;
        }
        progress(&EpochProgress {
            epoch,
            max_epochs: cfg.max_epochs,
            train_loss: (sum / f64::from(batches.max(1))) as f32,
            val_loss,
            best_epoch,
        });
        if epoch - best_epoch >= cfg.patience {
            break;
        }
    }
    vs.copy(&best_vs)?;

    // Per-row network outputs on a split: the prediction (alpha) or reconstruction error.
    let per_row = |x: &Tensor| -> Result<Vec<f32>, ModelError> {
        tch::no_grad(|| {
            let p = mlp.forward(x)?;
            let v = match cfg.kind {
                MarketKind::Alpha => p.f_mul_scalar(output_scale)?,
                MarketKind::Anomaly => p.f_sub(x)?.f_square()?.f_mean_dim(1, false, Kind::Float)?,
            };
            to_vec(&v)
        })
    };
    let (mut pv, mut ps) = (per_row(&xv)?, per_row(&xs)?);
    let mut output_scale = output_scale;
    if cfg.kind == MarketKind::Alpha {
        // Calibrate the forecast's size on validation: the least-squares slope (through the
        // origin) of the realised move on the forecast, never negative. A forecast that ranks
        // moves well but overshoots their size would otherwise lose to forecasting no move.
        let val_truth = &fwd[val_idx.clone()];
        let (pp, py) = pv.iter().zip(val_truth).fold((0.0_f64, 0.0_f64), |(pp, py), (p, y)| {
            (pp + f64::from(*p) * f64::from(*p), py + f64::from(*p) * f64::from(*y))
        });
        let slope = if pp > 0.0 { (py / pp).max(0.0) } else { 0.0 };
        output_scale *= slope;
        for p in pv.iter_mut().chain(ps.iter_mut()) {
            *p = (f64::from(*p) * slope) as f32;
        }
    }
    let threshold = match cfg.kind {
        MarketKind::Alpha => None,
        MarketKind::Anomaly => Some(f64::from(quantile(&pv, 1.0 - cfg.alert_rate)).max(1e-9)),
    };
    let split_metrics = |pred: &[f32], idx: std::ops::Range<usize>| -> BTreeMap<String, f64> {
        let truth = &fwd[idx];
        let mut m = BTreeMap::new();
        m.insert("n".into(), truth.len() as f64);
        match (cfg.kind, threshold) {
            (MarketKind::Anomaly, Some(t)) => {
                let labels: Vec<f32> = truth.iter().map(|r| if r.abs() > large { 1.0 } else { 0.0 }).collect();
                let alerts = pred.iter().filter(|e| f64::from(**e) > t).count();
                let hits = pred.iter().zip(&labels).filter(|(e, l)| f64::from(**e) > t && **l > 0.5).count();
                let base = labels.iter().sum::<f32>() as f64 / labels.len().max(1) as f64;
                m.insert("alert_rate".into(), alerts as f64 / pred.len().max(1) as f64);
                m.insert("large_move_auc".into(), f64::from(auc(pred, &labels)));
                m.insert("large_move_base_rate".into(), base);
                m.insert(
                    "large_move_rate_in_alerts".into(),
                    if alerts > 0 { hits as f64 / alerts as f64 } else { 0.0 },
                );
                m.insert("median_error".into(), f64::from(quantile(pred, 0.5)));
            }
            _ => {
                let (mut agree, mut counted) = (0_u64, 0_u64);
                let (mut se, mut se0) = (0.0_f64, 0.0_f64);
                for (p, r) in pred.iter().zip(truth) {
                    se += f64::from(p - r).powi(2);
                    se0 += f64::from(*r).powi(2);
                    if *r != 0.0 && *p != 0.0 {
                        counted += 1;
                        agree += u64::from((*p > 0.0) == (*r > 0.0));
                    }
                }
                let k = truth.len().max(1) as f64;
                m.insert("corr".into(), f64::from(pearson(pred, truth)));
                m.insert("hit_rate".into(), if counted > 0 { agree as f64 / counted as f64 } else { 0.5 });
                m.insert("rmse_bps".into(), (se / k).sqrt());
                m.insert("baseline_rmse_bps".into(), (se0 / k).sqrt());
            }
        }
        m
    };
    let mut validation = split_metrics(&pv, val_idx.clone());
    validation.insert("loss".into(), f64::from(best_loss));
    let test = split_metrics(&ps, test_idx.clone());

    std::fs::create_dir_all(out_dir)
        .map_err(|source| ModelError::Io { path: out_dir.display().to_string(), source })?;
    let weights = "weights.safetensors";
    vs.save(out_dir.join(weights))?;
    let card = ModelCard {
        name: cfg.name.clone(),
        version: 1,
        kind: cfg.kind,
        task: cfg.kind.task().into(),
        format: FORMAT_MLP.into(),
        weights: weights.into(),
        weights_sha256: crate::tabular::sha256_file(&out_dir.join(weights))?,
        preferred_device: "cpu".into(),
        input_shape: vec![-1, d as i64],
        output_shape: vec![-1, outputs],
        outputs: match cfg.kind {
            MarketKind::Alpha => vec!["signal_bps".into()],
            MarketKind::Anomaly => FEATURE_NAMES.iter().map(|f| format!("{f}_reconstructed")).collect(),
        },
        hidden: cfg.hidden.clone(),
        output_scale,
        threshold,
        training: Training {
            data: cfg.data.clone(),
            samples_train: train_idx.len() as u64,
            samples_val: val_idx.len() as u64,
            samples_test: test_idx.len() as u64,
            seed: cfg.seed,
            max_epochs: cfg.max_epochs as u64,
            epochs_run: epochs_run as u64,
            learning_rate: cfg.learning_rate,
            batch_size: bs as u64,
            horizon_trades: h as u64,
            target_alert_rate: (cfg.kind == MarketKind::Anomaly).then_some(cfg.alert_rate),
        },
        validation,
        test,
        features: FEATURE_NAMES
            .iter()
            .zip(mean.iter().zip(&std))
            .map(|(name, (m, s))| FeatureNorm { name: (*name).into(), mean: *m, std: *s })
            .collect(),
    };
    card.save(out_dir)?;
    Ok(card)
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    let t = t.f_to_kind(Kind::Float)?.f_contiguous()?.f_view([-1])?;
    let n = t.size().first().copied().unwrap_or(0) as usize;
    let mut v = vec![0.0_f32; n];
    t.f_copy_data(&mut v, n)?;
    Ok(v)
}

/// Pearson correlation; 0 when either side is constant.
pub fn pearson(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let ma = a.iter().map(|x| f64::from(*x)).sum::<f64>() / n;
    let mb = b.iter().map(|x| f64::from(*x)).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(*x) - ma, f64::from(*y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return 0.0;
    }
    (sab / (saa * sbb).sqrt()) as f32
}

/// ROC AUC of `scores` for binary `labels` (Mann-Whitney, ties counted half); 0.5 if one class.
pub fn auc(scores: &[f32], labels: &[f32]) -> f32 {
    let mut idx: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    idx.sort_by(|&i, &j| scores[i].total_cmp(&scores[j]));
    let (mut rank_sum, mut pos, mut i) = (0.0_f64, 0.0_f64, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] > 0.5 {
                rank_sum += avg_rank;
                pos += 1.0;
            }
        }
        i = j + 1;
    }
    let neg = idx.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    ((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_right_on_known_inputs() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-6);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(auc(&[0.1, 0.9, 0.8, 0.2], &[0.0, 1.0, 1.0, 0.0]), 1.0);
        assert_eq!(auc(&[0.9, 0.1], &[0.0, 1.0]), 0.0);
        assert_eq!(auc(&[0.5, 0.5], &[0.0, 1.0]), 0.5);
    }
}
