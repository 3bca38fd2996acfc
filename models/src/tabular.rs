//! Tabular binary classifiers (`argus models train tabular`, `argus models eval`): any labelled
//! CSV; numeric columns become features (signed log1p, then standardised on the training split;
//! missing values take the training median), an MLP trained with tch (Adam, class-weighted BCE,
//! early stopping on the validation split, fixed seed), and a model directory:
//! `model.toml` (schema, normalisation, threshold, metrics, sha256 of the weights) plus
//! `weights.safetensors`.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

use crate::mlp::{Mlp, RowNet};
use crate::train::auc;
use crate::ModelError;

/// A CSV table of strings.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Rows whose field count differs from the header (skipped, counted).
    pub bad_rows: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.display().to_string(), source }
}

fn bad(dir: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Manifest { dir: dir.display().to_string(), reason: reason.into() }
}

/// Splits one CSV record (RFC 4180 quotes; no embedded newlines).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

impl Table {
    /// Reads a CSV file with a header row.
    ///
    /// # Errors
    /// Unreadable file or no header.
    pub fn read_csv(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let mut lines = text.lines();
        let header = lines.next().ok_or_else(|| bad(path, "empty CSV"))?;
        let columns: Vec<String> = split_csv(header).into_iter().map(|c| c.trim().to_owned()).collect();
        let mut t = Table { columns, rows: Vec::new(), bad_rows: 0 };
        for l in lines.filter(|l| !l.is_empty()) {
            let r = split_csv(l);
            if r.len() == t.columns.len() {
                t.rows.push(r);
            } else {
                t.bad_rows += 1;
            }
        }
        Ok(t)
    }

    /// Columns whose every non-empty value is a number (and that have at least one), in order.
    pub fn numeric_columns(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&c| {
                let mut any = false;
                let all = self.rows.iter().all(|r| {
                    let v = r[c].trim();
                    any |= !v.is_empty();
                    v.is_empty() || num(v).is_some()
                });
                all && any
            })
            .collect()
    }

    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name.trim())
    }
}

/// A CSV field as a number: `None` when empty, `nan`, unparsable or infinite.
pub fn num(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("nan") {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn signed_log1p(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

/// The decimal shape of a value as f64's shortest round-trip form writes it: the power of ten
/// of its last significant digit and its count of significant digits. Round numbers are what
/// people and scripts type, and scripts repeat their odd ones: `1.8e18` -> (17, 2),
/// `20609467870` -> (1, 10), `0.25` -> (-2, 2), `0` -> (0, 0). Allocation-free.
pub fn decimal_shape(x: f64) -> (f64, f64) {
    if x == 0.0 || !x.is_finite() {
        return (0.0, 0.0);
    }
    // Whole numbers below 2^53 (wei amounts, gas): every one is exact in f64 and its neighbours
    // are at most 1 away, so the shortest round-trip form is the integer's own digits.
    let a = x.abs();
    if a < 9_007_199_254_740_992.0 && a.fract() == 0.0 {
        let mut n = a as u64;
        let mut zeros = 0_u32;
        while n.is_multiple_of(10) {
            n /= 10;
            zeros += 1;
        }
        let digits = n.checked_ilog10().map_or(1, |l| l + 1);
        return (f64::from(zeros), f64::from(digits));
    }
    // Any other value: its shortest round-trip digits (ryu: the same digits as `{:e}`, without
    // the formatting machinery), read off as written: `ddd.ddd`, `0.00ddd` or `d.ddde±x`.
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(a).as_bytes();
    let (mantissa, exp) = match s.iter().position(|&b| b == b'e') {
        Some(e) => {
            let t = std::str::from_utf8(&s[e + 1..]).ok().and_then(|t| t.parse::<i32>().ok());
            (&s[..e], t.unwrap_or(0))
        }
        None => (s, 0),
    };
    let after_point = mantissa.iter().position(|&b| b == b'.').map_or(0, |p| mantissa.len() - p - 1);
    let (mut digits, mut zeros, mut leading) = (0_i32, 0_i32, true);
    for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
        leading &= b == b'0';
        if !leading {
            digits += 1;
            zeros = if b == b'0' { zeros + 1 } else { 0 };
        }
    }
    let after_point = i32::try_from(after_point).unwrap_or(0);
    (f64::from(exp - after_point + zeros), f64::from(digits - zeros))
}

fn label(s: &str) -> Option<f32> {
    match s.trim() {
        "1" | "1.0" | "true" | "True" | "TRUE" => Some(1.0),
        "0" | "0.0" | "false" | "False" | "FALSE" => Some(0.0),
        _ => None,
    }
}

/// How the validation rows are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The last rows (time-ordered data).
    Ordered,
    /// A seeded shuffle (independent rows, e.g. one per address).
    Random,
}

/// Training parameters.
#[derive(Debug, Clone)]
pub struct TabularConfig {
    pub name: String,
    pub label: String,
    pub drop: Vec<String>,
    pub split: Split,
    pub val_fraction: f64,
    pub epochs: usize,
    pub patience: usize,
    pub learning_rate: f64,
    pub hidden: Vec<i64>,
    pub seed: u64,
    pub device: Device,
    pub data: String,
    /// Also feed each column's [`decimal_shape`] (two more inputs per column).
    pub decimal_shape: bool,
    /// After early stopping, train again on training and validation rows together for the
    /// chosen epochs (the threshold stays the one validation chose).
    pub refit: bool,
}

/// Binary classification metrics at a threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, Deserialize)]
pub struct Metrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub threshold: f64,
    pub n: u64,
    pub positives: u64,
}

/// Precision/recall/F1 at `threshold`, ROC AUC, and PR AUC (average precision).
pub fn metrics(scores: &[f32], labels: &[f32], threshold: f64) -> Metrics {
    let (mut tp, mut fp, mut fn_) = (0_u64, 0_u64, 0_u64);
    for (s, y) in scores.iter().zip(labels) {
        let pred = f64::from(*s) >= threshold;
        match (pred, *y > 0.5) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    let precision = if tp + fp > 0 { tp as f64 / (tp + fp) as f64 } else { 0.0 };
    let recall = if tp + fn_ > 0 { tp as f64 / (tp + fn_) as f64 } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    let positives = labels.iter().filter(|y| **y > 0.5).count() as u64;
    // Average precision: mean precision at each positive, scores descending.
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut hits, mut ap) = (0_u64, 0.0_f64);
    for (rank, &i) in idx.iter().enumerate() {
        if labels[i] > 0.5 {
            hits += 1;
            ap += hits as f64 / (rank + 1) as f64;
        }
    }
    let pr_auc = if positives > 0 { ap / positives as f64 } else { 0.0 };
    Metrics {
        precision,
        recall,
        f1,
        roc_auc: f64::from(auc(scores, labels)),
        pr_auc,
        threshold,
        n: scores.len() as u64,
        positives,
    }
}

/// The threshold that maximises F1 on (`scores`, `labels`).
fn best_threshold(scores: &[f32], labels: &[f32]) -> f64 {
    let mut cands: Vec<f32> = scores.to_vec();
    cands.sort_by(f32::total_cmp);
    cands.dedup();
    let step = (cands.len() / 400).max(1);
    let mut best = (0.5, -1.0);
    for c in cands.iter().step_by(step) {
        let f = metrics(scores, labels, f64::from(*c)).f1;
        if f > best.1 {
            best = (f64::from(*c), f);
        }
    }
    best.0
}

/// One feature column of a tabular model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    /// Of signed log1p of the training values (missing values take the median).
    pub median: f64,
    pub mean: f64,
    pub std: f64,
    /// With the `+decimal_shape` transform: mean and std of the column's [`decimal_shape`]
    /// (last-digit power, significant digits) on the training rows; empty otherwise.
    #[serde(default)]
    pub shape_mean: Vec<f64>,
    #[serde(default)]
    pub shape_std: Vec<f64>,
}

impl FeatureSpec {
    /// Network inputs this column becomes.
    pub fn width(&self) -> usize {
        if self.shape_mean.len() == 2 && self.shape_std.len() == 2 {
            3
        } else {
            1
        }
    }

    /// Appends this column's inputs for one raw value (missing -> the training median, and a
    /// shape at its training mean).
    fn push(&self, raw: Option<f64>, x: &mut Vec<f32>) {
        let v = raw.map_or(self.median, signed_log1p);
        x.push(((v - self.mean) / self.std) as f32);
        if self.width() == 3 {
            match raw {
                Some(r) => {
                    let (p, d) = decimal_shape(r);
                    x.push(((p - self.shape_mean[0]) / self.shape_std[0]) as f32);
                    x.push(((d - self.shape_mean[1]) / self.shape_std[1]) as f32);
                }
                None => x.extend([0.0, 0.0]),
            }
        }
    }
}

fn mean_std(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count().max(1) as f64;
    let mean = v.clone().sum::<f64>() / n;
    let std = (v.map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-9);
    (mean, std)
}

/// `model.toml` of a tabular model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TabularCard {
    pub name: String,
    pub version: u32,
    pub kind: String,
    pub task: String,
    pub label: String,
    pub transform: String,
    pub hidden: Vec<i64>,
    pub threshold: f64,
    pub weights: String,
    pub weights_sha256: String,
    pub preferred_device: String,
    pub data: String,
    pub rows_train: u64,
    pub rows_val: u64,
    pub rows_test: u64,
    pub split: String,
    pub seed: u64,
    pub epochs_run: u64,
    /// Trained again on training and validation rows (`rows_train` counts both) after early
    /// stopping chose the epochs and the threshold; `validation` is the first network's.
    #[serde(default)]
    pub refit: bool,
    /// On the validation rows (which chose the epoch and the threshold).
    pub validation: Metrics,
    /// On held-out test rows nothing was tuned on: the honest numbers.
    pub test: Metrics,
    pub features: Vec<FeatureSpec>,
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl TabularCard {
    fn to_toml(&self) -> String {
        let mut s = format!(
            "# argus tabular model card\nname = {}\nversion = {}\nkind = {}\ntask = {}\nlabel = {}\ntransform = {}\n\
             hidden = {:?}\nthreshold = {}\nweights = {}\nweights_sha256 = {}\npreferred_device = {}\ndata = {}\n\
             rows_train = {}\nrows_val = {}\nrows_test = {}\nsplit = {}\nseed = {}\nepochs_run = {}\nrefit = {}\n",
            toml_str(&self.name),
            self.version,
            toml_str(&self.kind),
            toml_str(&self.task),
            toml_str(&self.label),
            toml_str(&self.transform),
            self.hidden,
            self.threshold,
            toml_str(&self.weights),
            toml_str(&self.weights_sha256),
            toml_str(&self.preferred_device),
            toml_str(&self.data),
            self.rows_train,
            self.rows_val,
            self.rows_test,
            toml_str(&self.split),
            self.seed,
            self.epochs_run,
            self.refit,
        );
        for (name, m) in [("validation", &self.validation), ("test", &self.test)] {
            s.push_str(&format!(
                "\n[{name}]\nprecision = {}\nrecall = {}\nf1 = {}\nroc_auc = {}\npr_auc = {}\nthreshold = {}\nn = {}\npositives = {}\n",
                m.precision, m.recall, m.f1, m.roc_auc, m.pr_auc, m.threshold, m.n, m.positives
            ));
        }
        for f in &self.features {
            s.push_str(&format!(
                "\n[[features]]\nname = {}\nmedian = {:?}\nmean = {:?}\nstd = {:?}\n",
                toml_str(&f.name),
                f.median,
                f.mean,
                f.std
            ));
            if f.width() == 3 {
                s.push_str(&format!("shape_mean = {:?}\nshape_std = {:?}\n", f.shape_mean, f.shape_std));
            }
        }
        s
    }
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Network inputs of every feature column.
fn input_width(features: &[FeatureSpec]) -> usize {
    features.iter().map(FeatureSpec::width).sum()
}

/// Feature matrix of `table`'s `rows` under `features` (see [`FeatureSpec::push`]).
fn matrix(table: &Table, rows: &[usize], features: &[FeatureSpec], cols: &[usize]) -> Vec<f32> {
    let mut x = Vec::with_capacity(rows.len() * input_width(features));
    for &r in rows {
        for (f, &c) in features.iter().zip(cols) {
            f.push(num(&table.rows[r][c]), &mut x);
        }
    }
    x
}

/// The probability of a logit.
#[inline]
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn scores(mlp: &Mlp, x: &[f32], n: usize, d: usize, device: Device) -> Result<Vec<f32>, ModelError> {
    tch::no_grad(|| {
        // Only the tensor operations that change something: each costs a libtorch dispatch
        // (a `view` alone measured ~1 µs on CPU), most of a batch-1 call's overhead over the
        // bare network.
        let mut xs = crate::mlp::input_tensor(x, n, d, &mut Vec::new())?;
        if device != Device::Cpu {
            xs = xs.f_to_device(device)?;
        }
        // The logits come back and the sigmoid is taken here, the same way for one row and for
        // many (training's validation scores too), so a threshold means the same everywhere.
        let mut z = mlp.forward(&xs)?;
        let mut v = vec![0.0_f32; n];
        if n == 1 {
            v[0] = z.f_double_value(&[0, 0])? as f32;
        } else {
            if z.kind() != Kind::Float {
                z = z.f_to_kind(Kind::Float)?;
            }
            if device != Device::Cpu {
                z = z.f_to_device(Device::Cpu)?;
            }
            z.f_view([-1])?.f_copy_data(&mut v, n)?;
        }
        for p in &mut v {
            *p = sigmoid(*p);
        }
        Ok(v)
    })
}

/// A network trained by [`fit`].
struct Fit {
    vs: nn::VarStore,
    mlp: Mlp,
    /// Epochs up to and including the one with the lowest validation loss.
    best_epochs: usize,
    epochs_run: usize,
}

/// Full-batch Adam on `x` (`y.len()` rows of `d`), positives weighted to count as much as
/// negatives. With validation rows: at most `epochs`, stopping `cfg.patience` epochs after the
/// lowest validation loss and keeping the weights from then; without: exactly `epochs`.
fn fit(
    cfg: &TabularConfig,
    d: usize,
    x: &[f32],
    y: &[f32],
    val: Option<(&[f32], &[f32])>,
    epochs: usize,
) -> Result<Fit, ModelError> {
    let dev = cfg.device;
    let vs = nn::VarStore::new(dev);
    let mlp = Mlp::seeded(&vs.root(), d as i64, &cfg.hidden, 1, cfg.seed);
    let mut opt = nn::Adam::default().build(&vs, cfg.learning_rate)?;
    let tensor = |v: &[f32], cols: usize| -> Result<Tensor, ModelError> {
        Ok(Tensor::f_from_slice(v)?.f_view([(v.len() / cols.max(1)) as i64, cols as i64])?.f_to_device(dev)?)
    };
    let (x_t, y_t) = (tensor(x, d)?, tensor(y, 1)?);
    let val = match val {
        Some((xv, yv)) => Some((tensor(xv, d)?, tensor(yv, 1)?)),
        None => None,
    };
    let pos = y.iter().filter(|y| **y > 0.5).count().max(1) as f64;
    let neg = (y.len() as f64 - pos).max(1.0);
    // Class weighting: positives count as much as negatives in total.
    let pos_weight = Tensor::f_from_slice(&[(neg / pos) as f32])?.f_to_device(dev)?;
    let mut best = (f64::INFINITY, 0_usize);
    let mut best_vars: Vec<Tensor> = Vec::new();
    let mut epochs_run = 0;
    for epoch in 0..epochs {
        epochs_run = epoch + 1;
        let loss = mlp.forward(&x_t)?.f_binary_cross_entropy_with_logits::<&Tensor>(
            &y_t,
            None,
            Some(&pos_weight),
            Reduction::Mean,
        )?;
        opt.zero_grad();
        loss.f_backward()?;
        opt.step();
        let Some((xv_t, yv_t)) = &val else { continue };
        let loss = tch::no_grad(|| -> Result<f64, ModelError> {
            Ok(mlp
                .forward(xv_t)?
                .f_binary_cross_entropy_with_logits::<&Tensor>(yv_t, None, Some(&pos_weight), Reduction::Mean)?
                .f_double_value(&[])?)
        })?;
        if loss < best.0 {
            best = (loss, epoch);
            best_vars = vs.trainable_variables().iter().map(|t| t.detach().copy()).collect();
        } else if epoch - best.1 >= cfg.patience {
            break;
        }
    }
    if val.is_none() {
        return Ok(Fit { vs, mlp, best_epochs: epochs_run, epochs_run });
    }
    tch::no_grad(|| -> Result<(), ModelError> {
        for (v, b) in vs.trainable_variables().iter_mut().zip(&best_vars) {
            v.f_copy_(b)?;
        }
        Ok(())
    })?;
    Ok(Fit { vs, mlp, best_epochs: best.1 + 1, epochs_run })
}

/// Trains a classifier on `table` and writes the model directory.
///
/// # Errors
/// No label column, labels that are not 0/1, too little data, or torch/I/O failures.
pub fn train_tabular(table: &Table, cfg: &TabularConfig, out: &Path) -> Result<TabularCard, ModelError> {
    let lc = table.col(&cfg.label).ok_or_else(|| bad(out, format!("no label column `{}`", cfg.label)))?;
    let mut rows: Vec<usize> = Vec::new();
    let mut y_all = vec![0.0_f32; table.rows.len()];
    for (i, r) in table.rows.iter().enumerate() {
        if let Some(y) = label(&r[lc]) {
            y_all[i] = y;
            rows.push(i);
        }
    }
    if rows.len() < 50 {
        return Err(ModelError::NotEnoughData(rows.len()));
    }
    if cfg.split == Split::Random {
        // Seeded Fisher-Yates (splitmix64).
        let mut s = cfg.seed;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for i in (1..rows.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            rows.swap(i, j);
        }
    }
    // Train | validation (early stopping, threshold) | test (the reported metrics): the test rows
    // never influence the model or its threshold.
    let n_hold = (((rows.len() as f64) * cfg.val_fraction).round() as usize).max(1);
    let (train_rows, held) = rows.split_at(rows.len() - 2 * n_hold);
    let (val_rows, test_rows) = held.split_at(n_hold);
    let drop: Vec<&str> = cfg.drop.iter().map(|d| d.trim()).collect();
    let mut features = Vec::new();
    let mut cols = Vec::new();
    for (c, name) in table.columns.iter().enumerate() {
        if c == lc || drop.contains(&name.as_str()) || name.is_empty() {
            continue;
        }
        // Numeric: every non-empty training value parses, and at least one exists.
        let vals: Vec<f64> = train_rows.iter().filter_map(|&r| num(&table.rows[r][c])).collect();
        let non_empty = train_rows.iter().filter(|&&r| !table.rows[r][c].trim().is_empty()).count();
        if vals.is_empty() || vals.len() != non_empty {
            continue;
        }
        let mut t: Vec<f64> = vals.iter().map(|v| signed_log1p(*v)).collect();
        t.sort_by(f64::total_cmp);
        let median = t[t.len() / 2];
        let (mean, std) = mean_std(train_rows.iter().map(|&r| num(&table.rows[r][c]).map_or(median, signed_log1p)));
        if std <= 1e-9 {
            // Constant on the training rows: no information, and any other value seen later
            // would be standardised into a huge input.
            continue;
        }
        let (mut shape_mean, mut shape_std) = (Vec::new(), Vec::new());
        if cfg.decimal_shape {
            for part in [|s: (f64, f64)| s.0, |s: (f64, f64)| s.1] {
                let (m, sd) = mean_std(vals.iter().map(|v| part(decimal_shape(*v))));
                shape_mean.push(m);
                shape_std.push(sd);
            }
        }
        features.push(FeatureSpec { name: name.clone(), median, mean, std, shape_mean, shape_std });
        cols.push(c);
    }
    if features.is_empty() {
        return Err(bad(out, "no numeric feature columns"));
    }
    let d = input_width(&features);
    let xt = matrix(table, train_rows, &features, &cols);
    let xv = matrix(table, val_rows, &features, &cols);
    let yt: Vec<f32> = train_rows.iter().map(|&r| y_all[r]).collect();
    let yv: Vec<f32> = val_rows.iter().map(|&r| y_all[r]).collect();
    let dev = cfg.device;
    let fit = fit(cfg, d, &xt, &yt, Some((&xv, &yv)), cfg.epochs)?;
    let epochs_run = fit.epochs_run;
    let sv = scores(&fit.mlp, &xv, yv.len(), d, dev)?;
    let threshold = best_threshold(&sv, &yv);
    let validation = metrics(&sv, &yv, threshold);
    // Refit: the same network, from the same seed, on training and validation rows together for
    // the epochs early stopping chose, keeping the threshold validation chose. On time-ordered
    // data the newest rows before the test part are the closest to what comes after.
    let (fit, fit_rows) = if cfg.refit {
        let (mut x, mut y) = (xt, yt);
        x.extend_from_slice(&xv);
        y.extend_from_slice(&yv);
        (self::fit(cfg, d, &x, &y, None, fit.best_epochs)?, train_rows.len() + val_rows.len())
    } else {
        (fit, train_rows.len())
    };
    let xs = matrix(table, test_rows, &features, &cols);
    let ys: Vec<f32> = test_rows.iter().map(|&r| y_all[r]).collect();
    let test = metrics(&scores(&fit.mlp, &xs, ys.len(), d, dev)?, &ys, threshold);

    std::fs::create_dir_all(out).map_err(io(out))?;
    let weights = "weights.safetensors";
    fit.vs.save(out.join(weights))?;
    let card = TabularCard {
        name: cfg.name.clone(),
        version: 1,
        kind: "tabular".into(),
        task: "binary_classification".into(),
        label: cfg.label.clone(),
        transform: if cfg.decimal_shape {
            "signed_log1p_standardize+decimal_shape".into()
        } else {
            "signed_log1p_standardize".into()
        },
        hidden: cfg.hidden.clone(),
        threshold,
        weights: weights.into(),
        weights_sha256: sha256_file(&out.join(weights))?,
        preferred_device: "cpu".into(),
        data: cfg.data.clone(),
        rows_train: fit_rows as u64,
        rows_val: val_rows.len() as u64,
        rows_test: test_rows.len() as u64,
        split: if cfg.split == Split::Random { "random".into() } else { "ordered".into() },
        seed: cfg.seed,
        epochs_run: epochs_run as u64,
        refit: cfg.refit,
        validation,
        test,
        features,
    };
    std::fs::write(out.join("model.toml"), card.to_toml()).map_err(io(&out.join("model.toml")))?;
    Ok(card)
}

/// A loaded tabular model.
#[derive(Debug)]
pub struct TabularModel {
    pub card: TabularCard,
    mlp: Mlp,
    _vs: nn::VarStore,
    device: Device,
    /// The network for one row at a time.
    row: RowNet,
}

impl TabularModel {
    /// Loads `dir/model.toml` and its weights, checking the weights' sha256.
    ///
    /// # Errors
    /// Missing or malformed card, hash mismatch, or torch errors.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let p = dir.join("model.toml");
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        let card: TabularCard = toml::from_str(&text).map_err(|e| bad(dir, format!("model.toml: {e}")))?;
        if card.kind != "tabular" {
            return Err(bad(dir, format!("kind `{}` is not a tabular model", card.kind)));
        }
        let w = dir.join(&card.weights);
        let sha = sha256_file(&w)?;
        if sha != card.weights_sha256 {
            return Err(bad(dir, format!("weights sha256 {sha} does not match the card's {}", card.weights_sha256)));
        }
        let mut vs = nn::VarStore::new(device);
        let mlp = Mlp::new(&vs.root(), input_width(&card.features) as i64, &card.hidden, 1);
        vs.load(&w)?;
        let row = RowNet::new(&[&mlp], device)?;
        Ok(Self { card, mlp, _vs: vs, device, row })
    }

    /// The network itself, for benchmarks against the bare libtorch call.
    pub fn network(&self) -> &Mlp {
        &self.mlp
    }

    /// The network one row at a time runs through, for benchmarks against the bare libtorch
    /// call.
    pub fn row_net(&mut self) -> &mut RowNet {
        &mut self.row
    }

    /// Network inputs per row (a column with decimal shape counts three).
    pub fn input_width(&self) -> usize {
        input_width(&self.card.features)
    }

    /// Scores every row of `table` that the schema allows; the table must carry every feature
    /// column (the first missing one is named).
    ///
    /// # Errors
    /// A missing feature column, or torch errors.
    pub fn score(&self, table: &Table) -> Result<Vec<f32>, ModelError> {
        let mut cols = Vec::with_capacity(self.card.features.len());
        for f in &self.card.features {
            cols.push(
                table.col(&f.name).ok_or_else(|| {
                    bad(Path::new(&self.card.name), format!("input has no feature column `{}`", f.name))
                })?,
            );
        }
        let rows: Vec<usize> = (0..table.rows.len()).collect();
        let x = matrix(table, &rows, &self.card.features, &cols);
        scores(&self.mlp, &x, rows.len(), input_width(&self.card.features), self.device)
    }

    /// Scores rows of raw values (`features.len()` per row, in the card's order; `None` =
    /// missing), appending one score per row to `out`. `x` is scratch space, reused.
    ///
    /// # Errors
    /// A ragged input, or torch errors.
    pub fn score_values(
        &mut self,
        raw: &[Option<f64>],
        x: &mut Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        let d = self.card.features.len();
        if d == 0 || !raw.len().is_multiple_of(d) {
            return Err(bad(
                Path::new(&self.card.name),
                format!("{} values is not a whole number of {d}-feature rows", raw.len()),
            ));
        }
        x.clear();
        for row in raw.chunks_exact(d) {
            for (v, f) in row.iter().zip(&self.card.features) {
                f.push(*v, x);
            }
        }
        let n = raw.len() / d;
        if n == 1 {
            // One row (a block with one transaction, an address looked up alone): the row net.
            let mut z = [0.0_f32];
            self.row.run(x, &mut z)?;
            out.push(sigmoid(z[0]));
        } else if n > 1 {
            out.extend(scores(&self.mlp, x, n, input_width(&self.card.features), self.device)?);
        }
        Ok(())
    }

    /// Metrics on a labelled table at the model's threshold; rows without a 0/1 label skipped.
    ///
    /// # Errors
    /// No label column, a missing feature column, or torch errors.
    pub fn eval(&self, table: &Table, label_col: &str) -> Result<Metrics, ModelError> {
        let lc = table
            .col(label_col)
            .ok_or_else(|| bad(Path::new(&self.card.name), format!("no label column `{label_col}`")))?;
        let s = self.score(table)?;
        let (mut ss, mut ys) = (Vec::new(), Vec::new());
        for (i, r) in table.rows.iter().enumerate() {
            if let Some(y) = label(&r[lc]) {
                ss.push(s[i]);
                ys.push(y);
            }
        }
        Ok(metrics(&ss, &ys, self.card.threshold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_metrics() {
        assert_eq!(split_csv(r#"a,"b,c","d""e",,"#), vec!["a", "b,c", "d\"e", "", ""]);
        let m = metrics(&[0.9, 0.8, 0.3, 0.1], &[1.0, 0.0, 1.0, 0.0], 0.5);
        assert_eq!((m.precision, m.recall, m.n, m.positives), (0.5, 0.5, 4, 2));
        assert!((m.roc_auc - 0.75).abs() < 1e-9);
        // AP: positives at ranks 1 and 3 -> (1/1 + 2/3) / 2.
        assert!((m.pr_auc - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn one_row_alone_scores_as_it_does_in_a_batch() {
        for name in ["eth_tx_phishing", "eth_address_fraud"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo").join(name);
            let mut m = TabularModel::load(&dir, Device::Cpu).unwrap();
            let d = m.card.features.len();
            // Values over many scales, some missing, as the monitor hands them over.
            let mut s = 0x9e37_79b9_7f4a_7c15_u64;
            let raw: Vec<Option<f64>> = (0..40 * d)
                .map(|i| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (i % 7 != 3).then(|| (s % 1_000) as f64 * 10f64.powi((s >> 62) as i32 - 2))
                })
                .collect();
            let (mut x, mut batch) = (Vec::new(), Vec::new());
            m.score_values(&raw, &mut x, &mut batch).unwrap();
            assert_eq!(batch.len(), 40);
            let mut alone = Vec::new();
            for row in raw.chunks_exact(d) {
                m.score_values(row, &mut x, &mut alone).unwrap();
            }
            for (i, (a, b)) in alone.iter().zip(&batch).enumerate() {
                assert!((a - b).abs() <= 1e-5, "{name} row {i}: alone {a}, in a batch {b}");
            }
            // (Random addresses all look benign to the address model; transactions vary.)
            if name == "eth_tx_phishing" {
                assert!(batch.iter().any(|p| *p > 0.01) && batch.iter().any(|p| *p < 0.99), "{name}: {batch:?}");
            }
        }
    }

    /// The shape as `{:e}` (std's shortest round-trip form) writes it.
    fn shape_by_format(x: f64) -> (f64, f64) {
        if x == 0.0 || !x.is_finite() {
            return (0.0, 0.0);
        }
        let mut s = format!("{:e}", x.abs());
        let e = s.find('e').unwrap();
        let sig = s[..e].bytes().filter(u8::is_ascii_digit).count() as f64;
        let exp: f64 = s.split_off(e + 1).parse().unwrap();
        (exp - (sig - 1.0), sig)
    }

    #[test]
    fn decimal_shape_of_any_value_matches_the_formatted_form() {
        // Whole numbers (the integer fast path), every finite f64 (random bit patterns cover
        // all exponents), and decimals as people and scripts type them (few digits at every
        // scale, the CSV's `x.0` floats).
        let mut v = 7_u64;
        for i in 0..500_000_u64 {
            v = v.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let x = match i % 7 {
                0 => f64::from_bits(v),
                1 => ((v >> 44) as f64) * 10_f64.powi((i % 60) as i32 - 30),
                2 => ((v >> 33) % 1_000_000) as f64 / 10_f64.powi((i % 9) as i32) * 1e18,
                3 => (v >> 11) as f64,
                4 => ((v >> 40) * 10_u64.pow((i % 12) as u32)) as f64,
                5 => (v % 1000) as f64,
                _ => -(((v >> 20) % 100_000) as f64) * 1e6,
            };
            assert_eq!(decimal_shape(x), shape_by_format(x), "{x:e}");
        }
    }

    #[test]
    fn decimal_shape_of_typed_and_scripted_numbers() {
        assert_eq!(decimal_shape(1.8e18), (17.0, 2.0));
        assert_eq!(decimal_shape(20_609_467_870.0), (1.0, 10.0));
        assert_eq!(decimal_shape(21_000.0), (3.0, 2.0));
        assert_eq!(decimal_shape(-0.25), (-2.0, 2.0));
        assert_eq!(decimal_shape(0.0), (0.0, 0.0));
        assert_eq!(decimal_shape(f64::NAN), (0.0, 0.0));
        // The CSV's float text and the exact integer give the same shape.
        assert_eq!(decimal_shape("22050000000.0".parse().unwrap()), decimal_shape(22_050_000_000.0));
    }
}
