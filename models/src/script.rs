//! TorchScript models: a `.pt` file written by PyTorch's `torch.jit.script` or `torch.jit.trace`
//! (`module.save(path)`), loaded with libtorch's own loader and run in eval mode under
//! `no_grad`. A bare file carries no card, so its inputs are every numeric column of a table, in
//! order (missing values as NaN), and its scores are the module's raw outputs.

use std::path::{Path, PathBuf};

use tch::{CModule, Device, Kind, Tensor};

use crate::tabular::Table;
use crate::ModelError;

/// Whether `path` names a TorchScript file rather than a model directory.
pub fn is_torchscript(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "pt" || e == "pth" || e == "torchscript")
}

/// A loaded TorchScript module that maps an `[n, d]` float tensor to one score per row.
#[derive(Debug)]
pub struct ScriptModel {
    module: CModule,
    device: Device,
    path: PathBuf,
}

impl ScriptModel {
    /// Loads `path` onto `device`.
    ///
    /// # Errors
    /// A file libtorch cannot load as TorchScript (named).
    pub fn load(path: &Path, device: Device) -> Result<Self, ModelError> {
        let mut module = CModule::load_on_device(path, device).map_err(|e| ModelError::Manifest {
            dir: path.display().to_string(),
            reason: format!("not a TorchScript module libtorch can load: {e}"),
        })?;
        module.set_eval();
        Ok(ScriptModel { module, device, path: path.to_owned() })
    }

    /// The module itself, for benchmarks against the bare libtorch call.
    pub fn module(&self) -> &CModule {
        &self.module
    }

    /// Scores `n` rows of `d` values (row-major): one output per row.
    ///
    /// # Errors
    /// A module that fails on the input or returns something other than `[n]` or `[n, 1]`.
    pub fn score_rows(&self, x: &[f32], n: usize, d: usize) -> Result<Vec<f32>, ModelError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let y = tch::no_grad(|| -> Result<Tensor, ModelError> {
            let xs = crate::mlp::input_tensor(x, n, d, &mut Vec::new())?.f_to_device(self.device)?;
            Ok(self.module.forward_ts(&[xs])?)
        })?;
        let shape = y.size();
        if !(shape == [n as i64] || shape == [n as i64, 1]) {
            return Err(ModelError::Manifest {
                dir: self.path.display().to_string(),
                reason: format!(
                    "returned shape {shape:?} for {n} rows; one score per row ([{n}] or [{n}, 1]) is needed"
                ),
            });
        }
        let y = y.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?.f_view([-1])?;
        let mut out = vec![0.0_f32; n];
        y.f_copy_data(&mut out, n)?;
        Ok(out)
    }

    /// Scores every row of `table` over its numeric columns; returns the scores and the columns
    /// used, in order.
    ///
    /// # Errors
    /// A table without numeric columns, or the module's errors.
    pub fn score(&self, table: &Table) -> Result<(Vec<f32>, Vec<String>), ModelError> {
        let cols = table.numeric_columns();
        if cols.is_empty() {
            return Err(ModelError::Manifest {
                dir: self.path.display().to_string(),
                reason: "the input has no numeric column".into(),
            });
        }
        let mut x = Vec::with_capacity(table.rows.len() * cols.len());
        for r in &table.rows {
            x.extend(cols.iter().map(|&c| crate::tabular::num(&r[c]).map_or(f32::NAN, |v| v as f32)));
        }
        let names = cols.iter().map(|&c| table.columns[c].clone()).collect();
        Ok((self.score_rows(&x, table.rows.len(), cols.len())?, names))
    }
}
