//! `model.toml`, the card of a market model directory: what the model is (kind, task), what it
//! expects (feature names in order with their normalisation, input and output shapes), how to
//! run it (weights file and format, sha256, preferred device) and how it was made (data,
//! samples, seed, epochs) with its validation and test metrics.
//!
//! ```toml
//! name = "btcusdt_alpha"
//! version = 1
//! kind = "alpha"                      # or "anomaly"
//! task = "regression"                 # or "anomaly_detection"
//! format = "mlp-safetensors"          # or "torchscript"
//! weights = "weights.safetensors"
//! weights_sha256 = "…"
//! preferred_device = "cpu"
//! input_shape = [-1, 18]
//! output_shape = [-1, 1]
//! outputs = ["signal_bps"]
//! hidden = [32, 32]
//! output_scale = 3.1                  # network output × scale = signal in bps
//! [training] …
//! [validation] …
//! [test] …
//! [[features]]
//! name = "spread_bps"
//! mean = 0.18
//! std = 0.41
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::ModelError;

pub const CARD_FILE: &str = "model.toml";
pub const FORMAT_MLP: &str = "mlp-safetensors";
pub const FORMAT_TORCHSCRIPT: &str = "torchscript";

/// What a market model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarketKind {
    /// The mid-price move over a horizon, in basis points.
    Alpha,
    /// An autoencoder: reconstruction error against a calibrated threshold.
    Anomaly,
}

impl MarketKind {
    pub fn name(self) -> &'static str {
        match self {
            MarketKind::Alpha => "alpha",
            MarketKind::Anomaly => "anomaly",
        }
    }

    pub fn task(self) -> &'static str {
        match self {
            MarketKind::Alpha => "regression",
            MarketKind::Anomaly => "anomaly_detection",
        }
    }
}

/// One input feature and its standardisation (`(x - mean) / std`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureNorm {
    pub name: String,
    pub mean: f64,
    pub std: f64,
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    pub data: String,
    pub samples_train: u64,
    pub samples_val: u64,
    pub samples_test: u64,
    pub seed: u64,
    pub max_epochs: u64,
    pub epochs_run: u64,
    pub learning_rate: f64,
    pub batch_size: u64,
    /// Alpha: the target is the mid move over this many trades; anomaly: the horizon of the
    /// large-move labels its AUC is measured on.
    pub horizon_trades: u64,
    /// Anomaly: the share of events the threshold was calibrated to flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_alert_rate: Option<f64>,
}

/// `model.toml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub name: String,
    pub version: u32,
    pub kind: MarketKind,
    pub task: String,
    pub format: String,
    pub weights: String,
    pub weights_sha256: String,
    pub preferred_device: String,
    /// `[-1, features]`: any batch of rows.
    pub input_shape: Vec<i64>,
    pub output_shape: Vec<i64>,
    pub outputs: Vec<String>,
    /// Hidden layer widths of an `mlp-safetensors` network (empty for TorchScript).
    #[serde(default)]
    pub hidden: Vec<i64>,
    /// Alpha: network output × this = signal in bps.
    #[serde(default = "one")]
    pub output_scale: f64,
    /// Anomaly: reconstruction error (mean squared, standardised units) at the calibrated rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub training: Training,
    /// On the validation split (which chose the epoch and, for anomaly, the threshold).
    #[serde(default)]
    pub validation: BTreeMap<String, f64>,
    /// On the latest, held-out split nothing was tuned on.
    #[serde(default)]
    pub test: BTreeMap<String, f64>,
    pub features: Vec<FeatureNorm>,
}

/// The `kind` a directory's `model.toml` declares (`alpha`, `anomaly`, `tabular`).
///
/// # Errors
/// No readable card, or one without a `kind`.
pub fn card_kind(dir: &Path) -> Result<String, ModelError> {
    let path = dir.join(CARD_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
    let t: toml::Table = toml::from_str(&text).map_err(|e| bad(dir, format!("{CARD_FILE}: {e}")))?;
    t.get("kind")
        .and_then(|k| k.as_str())
        .map(str::to_owned)
        .ok_or_else(|| bad(dir, format!("{CARD_FILE} has no `kind`")))
}

fn one() -> f64 {
    1.0
}

fn bad(dir: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Manifest { dir: dir.display().to_string(), reason: reason.into() }
}

impl ModelCard {
    /// Reads `dir/model.toml`, checks it is self-consistent and that the weights file hashes to
    /// the recorded sha256.
    ///
    /// # Errors
    /// Missing or malformed card, inconsistent shapes, or a hash mismatch.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(CARD_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
        let card: ModelCard = toml::from_str(&text).map_err(|e| bad(dir, format!("{CARD_FILE}: {e}")))?;
        card.validate(dir)?;
        let sha = crate::tabular::sha256_file(&dir.join(&card.weights))?;
        if sha != card.weights_sha256 {
            return Err(bad(
                dir,
                format!("weights {} hash to sha256 {sha}, the card says {}", card.weights, card.weights_sha256),
            ));
        }
        Ok(card)
    }

    fn validate(&self, dir: &Path) -> Result<(), ModelError> {
        let n = self.features.len() as i64;
        let mut errs = Vec::new();
        if self.format != FORMAT_MLP && self.format != FORMAT_TORCHSCRIPT {
            errs.push(format!("unknown format `{}` (want {FORMAT_MLP} or {FORMAT_TORCHSCRIPT})", self.format));
        }
        if self.task != self.kind.task() {
            errs.push(format!("task `{}` does not fit kind {:?} (want {})", self.task, self.kind, self.kind.task()));
        }
        if self.input_shape != [-1, n] {
            errs.push(format!("input_shape {:?} does not fit {n} features (want [-1, {n}])", self.input_shape));
        }
        let want_out = match self.kind {
            MarketKind::Alpha => 1,
            MarketKind::Anomaly => n,
        };
        if self.output_shape != [-1, want_out] {
            errs.push(format!("output_shape {:?}: a {:?} model has [-1, {want_out}]", self.output_shape, self.kind));
        }
        if let Some(f) = self.features.iter().find(|f| !f.std.is_finite() || f.std <= 0.0) {
            errs.push(format!("feature `{}` has std {}; every std must be positive", f.name, f.std));
        }
        if self.kind == MarketKind::Anomaly && !self.threshold.is_some_and(|t| t.is_finite() && t > 0.0) {
            errs.push("an anomaly model needs a positive threshold".into());
        }
        if self.format == FORMAT_MLP && self.hidden.is_empty() {
            errs.push("an mlp-safetensors model lists its hidden layers".into());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(bad(dir, errs.join("; ")))
        }
    }

    /// Checks that the model's features are exactly `provided`, in order; the error names the
    /// first difference.
    ///
    /// # Errors
    /// The first position where the names differ, or the first name one side lacks.
    pub fn check_schema(&self, provided: &[&str], dir: &Path) -> Result<(), ModelError> {
        let want = self.features.iter().map(|f| f.name.as_str());
        for (i, pair) in want.zip(provided.iter().copied()).enumerate() {
            if pair.0 != pair.1 {
                return Err(bad(
                    dir,
                    format!("feature {i}: the model expects `{}`, the pipeline provides `{}`", pair.0, pair.1),
                ));
            }
        }
        let (m, p) = (self.features.len(), provided.len());
        if m > p {
            return Err(bad(
                dir,
                format!(
                    "feature {p}: the model expects `{}`, the pipeline provides only {p} features",
                    self.features[p].name
                ),
            ));
        }
        if p > m {
            return Err(bad(
                dir,
                format!("feature {m}: the pipeline provides `{}`, the model takes only {m} features", provided[m]),
            ));
        }
        Ok(())
    }

    /// Writes `dir/model.toml`.
    ///
    /// # Errors
    /// I/O failures.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(CARD_FILE);
        let text = toml::to_string(self).map_err(|e| bad(dir, e.to_string()))?;
        let text = format!("# argus market model card (argus models train {})\n{text}", self.kind.name());
        std::fs::write(&path, text).map_err(|source| ModelError::Io { path: path.display().to_string(), source })
    }
}
