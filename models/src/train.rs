//! Training the MLP with tch on replayed market data.
//!
//! Samples come from the same book and feature code as the hot thread: at every trade, the
//! feature vector and the mid. Targets: the mid return over the next `horizon` trades (signal,
//! bps) and whether its size is in the top 5% of the training set (anomaly). The split is
//! chronological: the tail is held out and only scored, never trained on.

use std::path::Path;

use argus_core::{MarketEvent, MarketEventKind, OrderBook};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Reduction, Tensor};

use crate::features::{Features, FEATURE_NAMES, N_FEATURES};
use crate::manifest::{Manifest, TrainingInfo, FORMAT_MLP_V1};
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
    pub horizon_trades: usize,
    pub hidden: Vec<i64>,
    pub epochs: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Fraction of the (chronological) samples held out at the end.
    pub val_fraction: f64,
    /// Describes the data in the manifest.
    pub data: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            name: "btcusdt_mlp".into(),
            horizon_trades: 50,
            hidden: vec![32, 32],
            epochs: 400,
            learning_rate: 3e-3,
            seed: 7,
            val_fraction: 0.3,
            data: String::new(),
        }
    }
}

const MAX_TARGET_BPS: f64 = 50.0;

/// Trains on `samples` and writes `out_dir/{manifest.json, weights.safetensors}`.
///
/// # Errors
/// Too few samples, torch failures, or I/O.
pub fn train(samples: &[Sample], cfg: &TrainConfig, out_dir: &Path) -> Result<Manifest, ModelError> {
    let h = cfg.horizon_trades;
    if samples.len() < h + 200 {
        return Err(ModelError::NotEnoughData(samples.len()));
    }
    let n = samples.len() - h;
    let fwd: Vec<f32> = (0..n)
        .map(|i| ((samples[i + h].mid / samples[i].mid - 1.0) * 1e4).clamp(-MAX_TARGET_BPS, MAX_TARGET_BPS) as f32)
        .collect();
    let split = ((n as f64) * (1.0 - cfg.val_fraction)) as usize;
    // Leave a horizon between train and validation so no target overlaps.
    let val_start = (split + h).min(n);
    let (train_idx, val_idx) = (0..split, val_start..n);
    if train_idx.len() < 100 || val_idx.len() < 50 {
        return Err(ModelError::NotEnoughData(samples.len()));
    }

    let mut mean = [0.0_f64; N_FEATURES];
    let mut var = [0.0_f64; N_FEATURES];
    for i in train_idx.clone() {
        for (j, x) in samples[i].features.iter().enumerate() {
            mean[j] += f64::from(*x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= split as f64);
    for i in train_idx.clone() {
        for (j, x) in samples[i].features.iter().enumerate() {
            var[j] += (f64::from(*x) - mean[j]).powi(2);
        }
    }
    let std: Vec<f32> = var.iter().map(|v| (v / split as f64).sqrt().max(1e-6) as f32).collect();
    let mean: Vec<f32> = mean.iter().map(|m| *m as f32).collect();

    let mut abs_train: Vec<f32> = fwd[..split].iter().map(|r| r.abs()).collect();
    abs_train.sort_by(f32::total_cmp);
    let threshold = abs_train[(abs_train.len() * 95 / 100).min(abs_train.len() - 1)];

    let matrix = |idx: std::ops::Range<usize>| -> Result<(Tensor, Tensor, Tensor), ModelError> {
        let mut x = Vec::with_capacity(idx.len() * N_FEATURES);
        let mut ys = Vec::with_capacity(idx.len());
        let mut ya = Vec::with_capacity(idx.len());
        for i in idx.clone() {
            for (j, v) in samples[i].features.iter().enumerate() {
                x.push((v - mean[j]) / std[j]);
            }
            ys.push(fwd[i]);
            ya.push(if fwd[i].abs() > threshold { 1.0_f32 } else { 0.0 });
        }
        let rows = idx.len() as i64;
        Ok((
            Tensor::f_from_slice(&x)?.f_view([rows, N_FEATURES as i64])?,
            Tensor::f_from_slice(&ys)?.f_view([rows, 1])?,
            Tensor::f_from_slice(&ya)?.f_view([rows, 1])?,
        ))
    };
    let (xt, yst, yat) = matrix(train_idx.clone())?;
    let (xv, ysv, yav) = matrix(val_idx.clone())?;

    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let mlp = Mlp::new(&vs.root(), N_FEATURES as i64, &cfg.hidden, 2);
    let mut opt = nn::Adam::default().build(&vs, cfg.learning_rate)?;
    let mut train_loss = f32::NAN;
    for _ in 0..cfg.epochs {
        let y = mlp.forward(&xt)?;
        let sig = y.f_narrow(1, 0, 1)?;
        let anom = y.f_narrow(1, 1, 1)?;
        let loss = sig
            .f_mse_loss(&yst, Reduction::Mean)?
            .f_add(&anom.f_binary_cross_entropy_with_logits::<Tensor>(&yat, None, None, Reduction::Mean)?)?;
        opt.zero_grad();
        loss.f_backward()?;
        opt.step();
        train_loss = loss.f_double_value(&[])? as f32;
    }

    let (val_corr, val_auc) = tch::no_grad(|| -> Result<(f32, f32), ModelError> {
        let y = mlp.forward(&xv)?;
        let pred_sig = to_vec(&y.f_narrow(1, 0, 1)?)?;
        let pred_anom = to_vec(&y.f_narrow(1, 1, 1)?)?;
        Ok((pearson(&pred_sig, &to_vec(&ysv)?), auc(&pred_anom, &to_vec(&yav)?)))
    })?;

    std::fs::create_dir_all(out_dir)
        .map_err(|source| ModelError::Io { path: out_dir.display().to_string(), source })?;
    let weights = "weights.safetensors";
    vs.save(out_dir.join(weights))?;
    let manifest = Manifest {
        name: cfg.name.clone(),
        format: FORMAT_MLP_V1.to_owned(),
        weights: weights.to_owned(),
        features: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
        mean,
        std,
        hidden: cfg.hidden.clone(),
        outputs: vec!["signal_bps".into(), "anomaly".into()],
        training: TrainingInfo {
            data: cfg.data.clone(),
            samples_train: train_idx.len(),
            samples_val: val_idx.len(),
            epochs: cfg.epochs,
            seed: cfg.seed,
            horizon_trades: h,
            anomaly_threshold_bps: threshold,
            train_loss,
            val_signal_corr: val_corr,
            val_anomaly_auc: val_auc,
        },
    };
    manifest.save(out_dir)?;
    Ok(manifest)
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
