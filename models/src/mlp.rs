//! The MLP: `features -> [signal_bps, anomaly_logit]`, built on a tch `VarStore` so the same
//! variables are trained, saved as safetensors and loaded for inference.

use std::path::Path;

use argus_core::{ScoreError, Scorer};
use tch::{nn, Device, Kind, Tensor};

use crate::features::{FEATURE_NAMES, N_FEATURES};
use crate::manifest::Manifest;
use crate::ModelError;

/// Network layers over a var store.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<nn::Linear>,
}

impl Mlp {
    pub fn new(root: &nn::Path<'_>, inputs: i64, hidden: &[i64], outputs: i64) -> Self {
        let mut layers = Vec::new();
        let mut width = inputs;
        for (i, &h) in hidden.iter().chain(std::iter::once(&outputs)).enumerate() {
            layers.push(nn::linear(root / format!("l{i}"), width, h, Default::default()));
            width = h;
        }
        Self { layers }
    }

    /// Fallible forward pass (libtorch errors are values, not panics).
    ///
    /// # Errors
    /// Shape or device mismatches.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, tch::TchError> {
        let mut x = xs.shallow_clone();
        let last = self.layers.len().saturating_sub(1);
        for (i, l) in self.layers.iter().enumerate() {
            x = x.f_linear(&l.ws, l.bs.as_ref())?;
            if i < last {
                x = x.f_relu()?;
            }
        }
        Ok(x)
    }
}

/// Which device to run on.
///
/// # Errors
/// `cuda` asked for on a machine without a usable GPU, or an unknown name.
pub fn parse_device(s: &str) -> Result<Device, ModelError> {
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if tch::Cuda::is_available() && (n as i64) < tch::Cuda::device_count() => Ok(Device::Cuda(n)),
            _ => Err(ModelError::Device(s.to_owned())),
        },
    }
}

/// Human name of a device: `cpu`, `cuda:0`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".to_owned(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A loaded model directory, scoring one feature vector at a time.
#[derive(Debug)]
pub struct TchScorer {
    manifest: Manifest,
    // Kept alive: the layers' tensors live in it.
    _vs: nn::VarStore,
    mlp: Mlp,
    device: Device,
    buf: [f32; N_FEATURES],
    out: [f32; 2],
}

impl TchScorer {
    /// Loads `dir` (manifest + weights) onto `device` and warms it up.
    ///
    /// # Errors
    /// Bad manifest, features that do not match this build's [`FEATURE_NAMES`], or weights that
    /// do not fit the declared shape.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let manifest = Manifest::load(dir)?;
        if manifest.features.iter().map(String::as_str).ne(FEATURE_NAMES.iter().copied()) {
            return Err(ModelError::Manifest {
                dir: dir.display().to_string(),
                reason: format!("model features {:?} differ from this build's {:?}", manifest.features, FEATURE_NAMES),
            });
        }
        let mut vs = nn::VarStore::new(device);
        let mlp = Mlp::new(&vs.root(), N_FEATURES as i64, &manifest.hidden, 2);
        vs.load(dir.join(&manifest.weights))?;
        if device == Device::Cpu {
            // Inline batch-1 inference on the hot thread: one thread, no pool hand-offs.
            tch::set_num_threads(1);
        }
        let mut s = Self { manifest, _vs: vs, mlp, device, buf: [0.0; N_FEATURES], out: [0.0; 2] };
        let warm = [0.0_f32; N_FEATURES];
        let mut out = [0.0_f32; 2];
        for _ in 0..50 {
            s.score(&warm, &mut out)
                .map_err(|e| ModelError::Manifest { dir: dir.display().to_string(), reason: e.0 })?;
        }
        Ok(s)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The network itself, for benchmarks against the bare libtorch call.
    pub fn network(&self) -> &Mlp {
        &self.mlp
    }

    pub fn device(&self) -> Device {
        self.device
    }

    fn run(&mut self) -> Result<(), tch::TchError> {
        let _guard = tch::no_grad_guard();
        // `f_view_` with a borrowed size: `f_view` would box the shape on every call.
        let input = Tensor::f_from_slice(&self.buf)?
            .f_view_([1_i64, N_FEATURES as i64].as_slice())?
            .f_to_device(self.device)?;
        let y = self.mlp.forward(&input)?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
        y.f_copy_data(&mut self.out, 2)
    }
}

impl Scorer for TchScorer {
    fn score(&mut self, features: &[f32], out: &mut [f32]) -> Result<(), ScoreError> {
        if features.len() != N_FEATURES || out.len() < 2 {
            return Err(ScoreError(format!("expected {N_FEATURES} features and 2 outputs")));
        }
        for (i, x) in features.iter().enumerate() {
            self.buf[i] = (x - self.manifest.mean[i]) / self.manifest.std[i];
        }
        self.run().map_err(|e| ScoreError(e.to_string()))?;
        out[0] = self.out[0];
        out[1] = 1.0 / (1.0 + (-self.out[1]).exp());
        Ok(())
    }
}
