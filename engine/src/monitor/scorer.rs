//! The ML detectors' models: tabular model directories (`argus models train tabular`) whose
//! features are transaction fields (`ml-tx`, each block's transactions as one batch) or the
//! Kaggle address aggregates of a [`argus_risk::onchain::Profile`] (`ml-address`, each block's
//! changed addresses as one batch).

use std::path::Path;

use anyhow::{Context, Result};
use argus_core::{ChainBlock, ChainTx};
use argus_models::tabular::TabularModel;
use argus_risk::onchain::{AddressScorer, TxScorer, PROFILE_FEATURES};

/// Transaction features the monitor provides, by the column names of the BLTE set
/// (`../shared/data/chain/blte_tx`) and ethereum-etl.
pub const TX_FEATURES: [&str; 8] =
    ["block_timestamp", "block_number", "gas", "receipt_gas_used", "gas_price", "value", "nonce", "transaction_index"];

fn feature(name: &str, b: &ChainBlock, tx: &ChainTx) -> Option<f64> {
    Some(match name {
        "block_timestamp" => b.timestamp as f64,
        "block_number" => b.number as f64,
        "gas" => tx.gas as f64,
        "receipt_gas_used" => tx.gas_used? as f64,
        "gas_price" => tx.gas_price.to_f64(),
        "value" => tx.value.to_f64(),
        "nonce" => tx.nonce as f64,
        "transaction_index" => f64::from(tx.index),
        _ => return None,
    })
}

/// A tabular model on the CPU and its `name vN` for alerts' `model_version`.
fn load_tabular(dir: &Path) -> Result<(TabularModel, String)> {
    let model =
        TabularModel::load(dir, tch::Device::Cpu).with_context(|| format!("loading model {}", dir.display()))?;
    let version = format!("{} v{}", model.card.name, model.card.version);
    Ok((model, version))
}

/// A loaded transaction model.
#[derive(Debug)]
pub struct ModelScorer {
    model: TabularModel,
    version: String,
    columns: Vec<String>,
    raw: Vec<Option<f64>>,
    x: Vec<f32>,
}

impl ModelScorer {
    /// Loads a tabular model whose features are all transaction features.
    ///
    /// # Errors
    /// The model cannot be loaded (hash, card), or needs a feature the monitor does not have
    /// (named, e.g. the address-level Kaggle model's aggregates).
    pub fn load(dir: &Path) -> Result<Self> {
        let (model, version) = load_tabular(dir)?;
        let columns: Vec<String> = model.card.features.iter().map(|f| f.name.clone()).collect();
        if let Some(missing) = columns.iter().find(|c| !TX_FEATURES.contains(&c.as_str())) {
            anyhow::bail!(
                "model {} needs feature `{missing}`, which is not a transaction feature the monitor provides ({})",
                dir.display(),
                TX_FEATURES.join(", ")
            );
        }
        Ok(ModelScorer { model, version, columns, raw: Vec::new(), x: Vec::new() })
    }
}

impl TxScorer for ModelScorer {
    fn score_block(&mut self, block: &ChainBlock, txs: &[usize], out: &mut Vec<f32>) -> Result<(), String> {
        if txs.is_empty() {
            return Ok(());
        }
        self.raw.clear();
        for tx in txs.iter().filter_map(|&i| block.txs.get(i)) {
            self.raw.extend(self.columns.iter().map(|c| feature(c, block, tx)));
        }
        self.model.score_values(&self.raw, &mut self.x, out).map_err(|e| e.to_string())
    }

    fn threshold(&self) -> f32 {
        self.model.card.threshold as f32
    }

    fn version(&self) -> &str {
        &self.version
    }
}

/// A loaded address model: its features are profile aggregates, found by the Kaggle column
/// names (surrounding spaces ignored).
#[derive(Debug)]
pub struct AddressModelScorer {
    model: TabularModel,
    version: String,
    /// For each model feature, its index in [`PROFILE_FEATURES`].
    columns: Vec<usize>,
    raw: Vec<Option<f64>>,
    x: Vec<f32>,
}

impl AddressModelScorer {
    /// Loads a tabular model whose features are all profile aggregates.
    ///
    /// # Errors
    /// The model cannot be loaded, or needs a feature a profile does not keep (named).
    pub fn load(dir: &Path) -> Result<Self> {
        let (model, version) = load_tabular(dir)?;
        let mut columns = Vec::with_capacity(model.card.features.len());
        for f in &model.card.features {
            let name = f.name.trim();
            let Some(i) = PROFILE_FEATURES.iter().position(|p| *p == name) else {
                anyhow::bail!(
                    "model {} needs feature `{name}`, which is not an address aggregate the monitor keeps \
                     (the Kaggle address-set columns)",
                    dir.display()
                );
            };
            columns.push(i);
        }
        Ok(AddressModelScorer { model, version, columns, raw: Vec::new(), x: Vec::new() })
    }
}

impl AddressScorer for AddressModelScorer {
    fn score_profiles(&mut self, rows: &[f64], out: &mut Vec<f32>) -> Result<(), String> {
        self.raw.clear();
        for row in rows.chunks_exact(PROFILE_FEATURES.len()) {
            self.raw.extend(self.columns.iter().map(|&i| Some(row[i])));
        }
        self.model.score_values(&self.raw, &mut self.x, out).map_err(|e| e.to_string())
    }

    fn threshold(&self) -> f32 {
        self.model.card.threshold as f32
    }

    fn version(&self) -> &str {
        &self.version
    }
}
