//! The MLP every native argus model is made of, built on a tch `VarStore` so the same variables
//! are trained, saved as safetensors and loaded for inference; and device selection.

use std::sync::{Mutex, PoisonError};

use tch::{nn, Device, Tensor};

use crate::ModelError;

/// A `[rows, cols]` float tensor holding `x` (row-major), made in one step through `bytes`
/// (scratch, reused by callers that score often): `from_slice` then `view` makes a second
/// tensor and costs about 1 µs more per call on CPU (BENCHMARKS.md, models, thirteenth
/// session).
///
/// # Errors
/// `x` is not `rows * cols` values.
pub fn input_tensor(x: &[f32], rows: usize, cols: usize, bytes: &mut Vec<u8>) -> Result<Tensor, tch::TchError> {
    if rows.checked_mul(cols) != Some(x.len()) {
        return Err(tch::TchError::Convert(format!("{} values are not {rows} rows of {cols}", x.len())));
    }
    bytes.clear();
    for v in x {
        bytes.extend_from_slice(&v.to_ne_bytes());
    }
    Tensor::f_from_data_size(bytes, &[rows as i64, cols as i64], tch::Kind::Float)
}

/// Network layers over a var store.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<nn::Linear>,
}

/// libtorch's random generator is process-global. Every network construction draws its initial
/// weights from it, so constructions are serialised: a seeded build (training) sees exactly the
/// draws its seed gives, whatever other threads (a test binary's parallel tests, a model loading
/// beside a training run) are building at the same time.
static GENERATOR: Mutex<()> = Mutex::new(());

impl Mlp {
    /// A network whose initial weights are about to be replaced (loaded from a file).
    pub fn new(root: &nn::Path<'_>, inputs: i64, hidden: &[i64], outputs: i64) -> Self {
        let _guard = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
        Self::build(root, inputs, hidden, outputs)
    }

    /// A network initialised from libtorch's generator seeded with `seed`: the same weights for
    /// the same seed, even with other networks being built concurrently.
    pub fn seeded(root: &nn::Path<'_>, inputs: i64, hidden: &[i64], outputs: i64, seed: u64) -> Self {
        let _guard = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
        tch::manual_seed(seed as i64);
        Self::build(root, inputs, hidden, outputs)
    }

    fn build(root: &nn::Path<'_>, inputs: i64, hidden: &[i64], outputs: i64) -> Self {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn input_tensors_hold_their_rows_and_refuse_a_ragged_input() {
        let x: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        let mut bytes = Vec::new();
        let t = input_tensor(&x, 3, 4, &mut bytes).unwrap();
        assert_eq!(t.size(), [3, 4]);
        assert_eq!(t.kind(), tch::Kind::Float);
        let mut back = vec![0.0_f32; 12];
        t.f_view([-1]).unwrap().f_copy_data(&mut back, 12).unwrap();
        assert_eq!(back, x);
        assert_eq!(t.double_value(&[2, 1]), f64::from(x[9]));
        assert!(input_tensor(&x, 4, 4, &mut bytes).is_err());
        assert!(input_tensor(&x[..11], 3, 4, &mut bytes).is_err());
        assert!(input_tensor(&x, usize::MAX, 2, &mut bytes).is_err());
    }
}
