//! The ML detectors' models: tabular model directories (`argus models train tabular`) whose
//! features are transaction fields (`ml-tx`, each block's transactions as one batch) or the
//! Kaggle address aggregates of a [`argus_risk::onchain::Profile`] (`ml-address`, each block's
//! changed addresses as one batch), or bare TorchScript files over all of those features.

use std::path::Path;

use anyhow::{Context, Result};
use argus_core::{ChainBlock, ChainTx};
use argus_models::script::ScriptModel;
use argus_models::tabular::TabularModel;
use argus_risk::onchain::{AddressScorer, TxScorer, PROFILE_FEATURES};

/// Transaction features the monitor provides, by the column names of the BLTE set
/// (`../shared/data/chain/blte_tx`) and ethereum-etl.
pub const TX_FEATURES: [&str; 8] =
    ["block_timestamp", "block_number", "gas", "receipt_gas_used", "gas_price", "value", "nonce", "transaction_index"];

/// The value of [`TX_FEATURES`]`[i]` for a transaction (`None`: unknown, e.g. no receipt).
fn feature(i: usize, b: &ChainBlock, tx: &ChainTx) -> Option<f64> {
    Some(match i {
        0 => b.timestamp as f64,
        1 => b.number as f64,
        2 => tx.gas as f64,
        3 => tx.gas_used? as f64,
        4 => tx.gas_price.to_f64(),
        5 => tx.value.to_f64(),
        6 => tx.nonce as f64,
        7 => f64::from(tx.index),
        _ => return None,
    })
}

/// A model as the monitor runs it: a tabular model directory (its card names the features and
/// how to normalise them), or a bare TorchScript file (`.pt`) that takes every feature the
/// monitor provides, raw and in order (unknown values as NaN), and returns one probability per
/// row; a bare file carries no card, so it alerts at [`SCRIPT_THRESHOLD`].
#[derive(Debug)]
enum Net {
    Tabular(Box<TabularModel>),
    Script(ScriptModel),
}

/// The alert threshold of a bare TorchScript model (its output read as a probability).
pub const SCRIPT_THRESHOLD: f32 = 0.5;

/// A loaded model, its features (indices into the monitor's feature list), threshold and
/// `name vN` for alerts' `model_version`.
#[derive(Debug)]
struct Loaded {
    net: Net,
    version: String,
    threshold: f32,
    columns: Vec<usize>,
    raw: Vec<Option<f64>>,
    x: Vec<f32>,
}

impl Loaded {
    /// Loads `path` (directory or `.pt`) on the CPU; a directory's features must all be in
    /// `provided` (`what` names that list in the error).
    fn load(path: &Path, provided: &[&str], what: &str) -> Result<Self> {
        let (net, version, threshold, columns) = if argus_models::script::is_torchscript(path) {
            let model = ScriptModel::load(path, tch::Device::Cpu)
                .with_context(|| format!("loading TorchScript model {}", path.display()))?;
            let name = path.file_stem().map_or("torchscript".into(), |n| n.to_string_lossy().into_owned());
            (Net::Script(model), format!("{name} (TorchScript)"), SCRIPT_THRESHOLD, (0..provided.len()).collect())
        } else {
            let model = TabularModel::load(path, tch::Device::Cpu)
                .with_context(|| format!("loading model {}", path.display()))?;
            let mut columns = Vec::with_capacity(model.card.features.len());
            for f in &model.card.features {
                let name = f.name.trim();
                let Some(i) = provided.iter().position(|p| *p == name) else {
                    anyhow::bail!(
                        "model {} needs feature `{name}`, which is not {what} the monitor provides ({})",
                        path.display(),
                        provided.join(", ")
                    );
                };
                columns.push(i);
            }
            let version = format!("{} v{}", model.card.name, model.card.version);
            let threshold = model.card.threshold as f32;
            (Net::Tabular(Box::new(model)), version, threshold, columns)
        };
        Ok(Loaded { net, version, threshold, columns, raw: Vec::new(), x: Vec::new() })
    }

    /// Scores the rows gathered in `self.raw` (each `self.columns.len()` long).
    fn score(&mut self, out: &mut Vec<f32>) -> Result<(), String> {
        match &mut self.net {
            Net::Tabular(m) => m.score_values(&self.raw, &mut self.x, out).map_err(|e| e.to_string()),
            Net::Script(m) => {
                let d = self.columns.len();
                self.x.clear();
                self.x.extend(self.raw.iter().map(|v| v.map_or(f32::NAN, |v| v as f32)));
                let n = self.raw.len() / d.max(1);
                out.extend(m.score_rows(&self.x, n, d).map_err(|e| e.to_string())?);
                Ok(())
            }
        }
    }
}

/// A loaded transaction model (`ml-tx`).
#[derive(Debug)]
pub struct ModelScorer(Loaded);

impl ModelScorer {
    /// Loads a tabular model directory whose features are all transaction features, or a bare
    /// TorchScript file over all of [`TX_FEATURES`].
    ///
    /// # Errors
    /// The model cannot be loaded (hash, card, not TorchScript), or needs a feature the monitor
    /// does not have (named, e.g. the address-level Kaggle model's aggregates).
    pub fn load(path: &Path) -> Result<Self> {
        Loaded::load(path, &TX_FEATURES, "a transaction feature").map(ModelScorer)
    }
}

impl TxScorer for ModelScorer {
    fn score_block(&mut self, block: &ChainBlock, txs: &[usize], out: &mut Vec<f32>) -> Result<(), String> {
        if txs.is_empty() {
            return Ok(());
        }
        let m = &mut self.0;
        m.raw.clear();
        for tx in txs.iter().filter_map(|&i| block.txs.get(i)) {
            m.raw.extend(m.columns.iter().map(|&c| feature(c, block, tx)));
        }
        m.score(out)
    }

    fn threshold(&self) -> f32 {
        self.0.threshold
    }

    fn version(&self) -> &str {
        &self.0.version
    }
}

/// A loaded address model (`ml-address`): its features are profile aggregates, found by the
/// Kaggle column names (surrounding spaces ignored); a bare TorchScript file takes all of
/// [`PROFILE_FEATURES`].
#[derive(Debug)]
pub struct AddressModelScorer(Loaded);

impl AddressModelScorer {
    /// Loads a tabular model whose features are all profile aggregates, or a bare TorchScript
    /// file.
    ///
    /// # Errors
    /// The model cannot be loaded, or needs a feature a profile does not keep (named).
    pub fn load(path: &Path) -> Result<Self> {
        Loaded::load(path, &PROFILE_FEATURES, "an address aggregate (the Kaggle address-set columns)")
            .map(AddressModelScorer)
    }
}

impl AddressScorer for AddressModelScorer {
    fn score_profiles(&mut self, rows: &[f64], out: &mut Vec<f32>) -> Result<(), String> {
        let m = &mut self.0;
        m.raw.clear();
        for row in rows.chunks_exact(PROFILE_FEATURES.len()) {
            m.raw.extend(m.columns.iter().map(|&i| row.get(i).copied()));
        }
        m.score(out)
    }

    fn threshold(&self) -> f32 {
        self.0.threshold
    }

    fn version(&self) -> &str {
        &self.0.version
    }
}
