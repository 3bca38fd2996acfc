//! The model directory: `manifest.json` (what the model expects and how it was made) beside the
//! weights file.

use std::path::Path;

use crate::ModelError;

/// Training facts recorded with a model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    pub data: String,
    pub samples_train: usize,
    pub samples_val: usize,
    pub epochs: usize,
    pub seed: u64,
    pub horizon_trades: usize,
    /// |forward return| above this (bps) is labelled an abnormal move.
    pub anomaly_threshold_bps: f32,
    pub train_loss: f32,
    /// Pearson correlation of predicted and realized forward return on the held-out tail.
    pub val_signal_corr: f32,
    /// Area under the ROC curve of the anomaly head on the held-out tail.
    pub val_anomaly_auc: f32,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub format: String,
    /// Weights file, relative to the directory.
    pub weights: String,
    /// Input feature names, in order.
    pub features: Vec<String>,
    /// Per-feature normalization applied before the network.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub hidden: Vec<i64>,
    /// Output names, in order.
    pub outputs: Vec<String>,
    pub training: TrainingInfo,
}

pub const FORMAT_MLP_V1: &str = "argus-mlp-v1";

impl Manifest {
    /// Reads and checks `dir/manifest.json`.
    ///
    /// # Errors
    /// Missing or malformed manifest, or inconsistent lengths.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| ModelError::Manifest { dir: dir.display().to_string(), reason: e.to_string() })?;
        m.validate(dir)?;
        Ok(m)
    }

    fn validate(&self, dir: &Path) -> Result<(), ModelError> {
        let mut errs = Vec::new();
        if self.format != FORMAT_MLP_V1 {
            errs.push(format!("unknown format `{}`", self.format));
        }
        let n = self.features.len();
        if self.mean.len() != n || self.std.len() != n {
            errs.push(format!("{n} features but {} means and {} stds", self.mean.len(), self.std.len()));
        }
        if self.std.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            errs.push("every std must be positive".into());
        }
        if self.outputs.len() != 2 {
            errs.push(format!("expected 2 outputs (signal, anomaly), got {}", self.outputs.len()));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Manifest { dir: dir.display().to_string(), reason: errs.join("; ") })
        }
    }

    /// Writes `dir/manifest.json`.
    ///
    /// # Errors
    /// I/O failures.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join("manifest.json");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| ModelError::Manifest { dir: dir.display().to_string(), reason: e.to_string() })?;
        std::fs::write(&path, text + "\n").map_err(|source| ModelError::Io { path: path.display().to_string(), source })
    }
}
