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
    // Sized once and filled in place: one copy the compiler vectorises (pushing four bytes at a
    // time checked the capacity per value: 7 % of a CPU inference thread's time).
    bytes.clear();
    bytes.resize(x.len() * 4, 0);
    for (b, v) in bytes.chunks_exact_mut(4).zip(x) {
        b.copy_from_slice(&v.to_ne_bytes());
    }
    Tensor::f_from_data_size(bytes, &[rows as i64, cols as i64], tch::Kind::Float)
}

/// One row's input tensor, made once and refilled in place on every call: scoring a row makes
/// no input tensor (libtorch allocates its storage and tensor object, ~0.55 µs on CPU per call;
/// BENCHMARKS.md, models, fifteenth session). On a GPU the row is written into a host tensor and
/// copied into a device tensor that is also made once.
#[derive(Debug)]
pub struct RowInput {
    /// `[1, n]` `f32` on the CPU, contiguous, made by [`RowInput::new`] and never shared:
    /// [`write_row`] relies on all three.
    host: Tensor,
    /// `[1, n]` on the device, when that is not the CPU.
    device: Option<Tensor>,
    n: usize,
}

impl RowInput {
    /// An input for rows of `n > 0` values on `device`.
    ///
    /// # Errors
    /// `n == 0`, or torch failures.
    pub fn new(n: usize, device: Device) -> Result<Self, tch::TchError> {
        if n == 0 {
            return Err(tch::TchError::Shape("a row input needs at least one value".into()));
        }
        let shape = [1, n as i64];
        let host = Tensor::f_zeros(shape, (tch::Kind::Float, Device::Cpu))?;
        let device = match device {
            Device::Cpu => None,
            d => Some(Tensor::f_zeros(shape, (tch::Kind::Float, d))?),
        };
        Ok(Self { host, device, n })
    }

    /// Values per row.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: a row input holds at least one value.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes `x` into the tensor and returns it, on the device.
    ///
    /// # Errors
    /// `x` is not `len()` values, or the copy to the device fails.
    pub fn fill(&mut self, x: &[f32]) -> Result<&Tensor, tch::TchError> {
        if x.len() != self.n {
            return Err(tch::TchError::Shape(format!("{} values for a row of {}", x.len(), self.n)));
        }
        write_row(&mut self.host, x);
        match &mut self.device {
            Some(d) => {
                d.f_copy_(&self.host)?;
                Ok(d)
            }
            None => Ok(&self.host),
        }
    }
}

/// Copies `x` over the values of `t`, a tensor [`RowInput::new`] made with `x.len()` values.
///
/// tch has no safe call that writes into an existing tensor from a slice (each makes a new
/// tensor), so this is one of the two places with `unsafe` in argus outside tests (the other
/// loads the CUDA backend, `cuda.rs`; the counting allocator of `engine/tests/no_alloc.rs` is
/// the one in tests).
#[allow(unsafe_code)]
fn write_row(t: &mut Tensor, x: &[f32]) {
    let dst = t.data_ptr().cast::<f32>();
    // SAFETY: `t` is a contiguous `f32` CPU tensor of exactly `x.len()` (> 0) values, made by
    // `RowInput::new` (checked by `fill`), so `dst` is non-null, aligned for `f32` and valid
    // for `x.len()` writes; its storage belongs to libtorch, not to any Rust value, so `x`
    // cannot overlap it. `t` is private to its `RowInput` and never viewed or shared, and
    // `&mut` excludes any libtorch call reading it meanwhile (CPU ops finish before they
    // return).
    unsafe { std::ptr::copy_nonoverlapping(x.as_ptr(), dst, x.len()) }
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

/// One row at a time through one or more MLPs that read the same row, as a single network whose
/// tensors are all made at load: weights transposed and contiguous, every layer writing into its
/// own output tensor (`addmm_out`, then `relu_` in place). Per call libtorch makes only the
/// input tensor; `linear` instead makes a transposed view and an output tensor per layer, and
/// costs about twice as much at batch 1 (BENCHMARKS.md, models, fourteenth session).
///
/// Several networks run side by side: the fused network's input is their inputs laid end to
/// end, each layer is block-diagonal, and its output is their outputs in order. A network
/// shallower than the deepest one carries its output through the remaining ReLU layers as the
/// pair `(relu(z), relu(-z))` and reads it back as their difference, which is exact: one of the
/// two is zero, and multiplying by ±1 and adding zeros round nothing.
#[derive(Debug)]
pub struct RowNet {
    layers: Vec<RowLayer>,
    inputs: usize,
    outputs: usize,
    device: Device,
    input: RowInput,
}

#[derive(Debug)]
struct RowLayer {
    /// `[in, out]`, contiguous.
    w_t: Tensor,
    /// `[1, out]`.
    bias: Tensor,
    /// `[1, out]`, written by every call.
    out: Tensor,
}

/// A dense layer in row-major `f32`: `w` is `[out][in]`.
#[derive(Debug, Clone, PartialEq)]
struct Dense {
    inputs: usize,
    outputs: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Dense {
    fn zeros(inputs: usize, outputs: usize) -> Self {
        Self { inputs, outputs, w: vec![0.0; inputs * outputs], b: vec![0.0; outputs] }
    }

    /// `[W; -W]`, `[b; -b]`: the output as the pair `(z, -z)`, ReLU'd by the next step.
    fn split(&self) -> Self {
        let mut w = self.w.clone();
        w.extend(self.w.iter().map(|v| -v));
        let mut b = self.b.clone();
        b.extend(self.b.iter().map(|v| -v));
        Self { inputs: self.inputs, outputs: 2 * self.outputs, w, b }
    }

    /// `(p, q) -> (relu(p - q), relu(q - p))`: carries a split output through a ReLU layer.
    fn carry(k: usize) -> Self {
        let mut d = Self::zeros(2 * k, 2 * k);
        for i in 0..k {
            d.w[i * 2 * k + i] = 1.0;
            d.w[i * 2 * k + k + i] = -1.0;
            d.w[(k + i) * 2 * k + i] = -1.0;
            d.w[(k + i) * 2 * k + k + i] = 1.0;
        }
        d
    }

    /// `(p, q) -> p - q`: reads a split output back.
    fn join(k: usize) -> Self {
        let mut d = Self::zeros(2 * k, k);
        for i in 0..k {
            d.w[i * 2 * k + i] = 1.0;
            d.w[i * 2 * k + k + i] = -1.0;
        }
        d
    }

    /// The block-diagonal layer of `blocks`.
    fn diagonal(blocks: &[Dense]) -> Self {
        let inputs = blocks.iter().map(|b| b.inputs).sum();
        let outputs = blocks.iter().map(|b| b.outputs).sum();
        let mut d = Self::zeros(inputs, outputs);
        let (mut r0, mut c0) = (0, 0);
        for blk in blocks {
            for r in 0..blk.outputs {
                let row = &blk.w[r * blk.inputs..(r + 1) * blk.inputs];
                d.w[(r0 + r) * inputs + c0..(r0 + r) * inputs + c0 + blk.inputs].copy_from_slice(row);
                d.b[r0 + r] = blk.b[r];
            }
            r0 += blk.outputs;
            c0 += blk.inputs;
        }
        d
    }
}

/// The layers of several networks as one: see [`RowNet`].
fn fuse(nets: &[Vec<Dense>]) -> Vec<Dense> {
    let depth = nets.iter().map(Vec::len).max().unwrap_or(0);
    (0..depth)
        .map(|l| {
            let blocks: Vec<Dense> = nets
                .iter()
                .filter_map(|net| {
                    let last = net.len().checked_sub(1)?;
                    let k = net.get(last)?.outputs;
                    Some(match l.cmp(&last) {
                        std::cmp::Ordering::Less => net[l].clone(),
                        std::cmp::Ordering::Equal if l + 1 == depth => net[l].clone(),
                        std::cmp::Ordering::Equal => net[l].split(),
                        std::cmp::Ordering::Greater if l + 1 == depth => Dense::join(k),
                        std::cmp::Ordering::Greater => Dense::carry(k),
                    })
                })
                .collect();
            Dense::diagonal(&blocks)
        })
        .collect()
}

fn floats(t: &Tensor) -> Result<Vec<f32>, tch::TchError> {
    let t = t.f_to_device(Device::Cpu)?.f_to_kind(tch::Kind::Float)?.f_contiguous()?;
    let n = t.numel();
    let mut v = vec![0.0_f32; n];
    t.f_copy_data(&mut v, n)?;
    Ok(v)
}

impl Mlp {
    fn dense(&self) -> Result<Vec<Dense>, tch::TchError> {
        self.layers
            .iter()
            .map(|l| {
                let size = l.ws.size();
                let (outputs, inputs) = match size[..] {
                    [o, i] => (o as usize, i as usize),
                    _ => return Err(tch::TchError::Shape(format!("a linear layer's weights are {size:?}"))),
                };
                let b = match &l.bs {
                    Some(b) => floats(b)?,
                    None => vec![0.0; outputs],
                };
                Ok(Dense { inputs, outputs, w: floats(&l.ws)?, b })
            })
            .collect()
    }
}

impl RowNet {
    /// `nets` side by side on `device`, in `f32`.
    ///
    /// # Errors
    /// No networks, or torch failures.
    pub fn new(nets: &[&Mlp], device: Device) -> Result<Self, tch::TchError> {
        let dense = nets.iter().map(|n| n.dense()).collect::<Result<Vec<_>, _>>()?;
        let fused = fuse(&dense);
        let (Some(first), Some(last)) = (fused.first(), fused.last()) else {
            return Err(tch::TchError::Shape("no layers to run".into()));
        };
        let (inputs, outputs) = (first.inputs, last.outputs);
        let opts = (tch::Kind::Float, device);
        let layers = fused
            .iter()
            .map(|d| {
                let mut w_t = vec![0.0_f32; d.w.len()];
                for r in 0..d.outputs {
                    for c in 0..d.inputs {
                        w_t[c * d.outputs + r] = d.w[r * d.inputs + c];
                    }
                }
                let shape = [d.inputs as i64, d.outputs as i64];
                Ok(RowLayer {
                    w_t: Tensor::f_from_slice(&w_t)?.f_view(shape)?.f_to_device(device)?,
                    bias: Tensor::f_from_slice(&d.b)?.f_view([1, d.outputs as i64])?.f_to_device(device)?,
                    out: Tensor::f_zeros([1, d.outputs as i64], opts)?,
                })
            })
            .collect::<Result<Vec<_>, tch::TchError>>()?;
        Ok(Self { layers, inputs, outputs, device, input: RowInput::new(inputs, device)? })
    }

    /// Values in: the networks' inputs end to end.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Values out: the networks' outputs end to end.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Runs one row `x` into `out[..outputs]`.
    ///
    /// # Errors
    /// `x` or `out` of the wrong length, or torch failures.
    pub fn run(&mut self, x: &[f32], out: &mut [f32]) -> Result<(), tch::TchError> {
        let k = self.outputs;
        if out.len() < k {
            return Err(tch::TchError::Shape(format!("room for {} outputs, {k} needed", out.len())));
        }
        let device = self.device;
        let Self { layers, input, .. } = self;
        let y = run_layers(layers, input.fill(x)?)?;
        if device == Device::Cpu {
            y.f_copy_data(&mut out[..k], k)
        } else {
            y.f_to_device(Device::Cpu)?.f_copy_data(&mut out[..k], k)
        }
    }

    /// The layers alone on a ready `[1, inputs]` input tensor on this net's device: what [`run`]
    /// adds around it is making that tensor and copying the output out (benchmarks time both).
    ///
    /// # Errors
    /// An input of another shape, or torch failures.
    ///
    /// [`run`]: RowNet::run
    pub fn forward(&mut self, input: &Tensor) -> Result<&Tensor, tch::TchError> {
        run_layers(&mut self.layers, input)
    }

    /// The same layers on a batch: `input` is `[n, inputs]` on this net's device, the result
    /// `[n, outputs]` (new tensors: batches are not the per-event path).
    ///
    /// # Errors
    /// An input of another width, or torch failures.
    pub fn forward_rows(&self, input: &Tensor) -> Result<Tensor, tch::TchError> {
        let _guard = tch::no_grad_guard();
        let n = self.layers.len();
        let mut x = input.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.bias.f_addmm(&x, &layer.w_t)?;
            if i + 1 < n {
                x = x.f_relu_()?;
            }
        }
        Ok(x)
    }
}

/// Runs `layers` on `input`, each into its own output tensor; the last one's is the result.
fn run_layers<'a>(layers: &'a mut [RowLayer], input: &Tensor) -> Result<&'a Tensor, tch::TchError> {
    let _guard = tch::no_grad_guard();
    let n = layers.len();
    for i in 0..n {
        let (done, rest) = layers.split_at_mut(i);
        let Some(layer) = rest.first_mut() else { break };
        let src = done.last().map_or(input, |p| &p.out);
        let _ = layer.bias.f_addmm_out(&layer.out, src, &layer.w_t)?;
        if i + 1 < n {
            let _ = layer.out.f_relu_()?;
        }
    }
    layers.last().map(|l| &l.out).ok_or_else(|| tch::TchError::Shape("no layers".into()))
}

/// Which device to run on.
///
/// # Errors
/// `cuda` asked for on a machine without a usable GPU, or an unknown name.
pub fn parse_device(s: &str) -> Result<Device, ModelError> {
    if s == "auto" || s.starts_with("cuda") {
        // The binary loads the backend at start on a GPU machine; a library caller gets it
        // here (before its first torch call, see `cuda`). `auto` without it is the CPU.
        let loaded = crate::cuda::load_backend();
        if s != "auto" {
            loaded?;
        }
    }
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

    /// Each network alone through `forward`, on its slice of `x`.
    fn alone(nets: &[Mlp], widths: &[(usize, usize)], x: &[f32]) -> Vec<f32> {
        let mut want = Vec::new();
        let mut at = 0;
        for (net, &(i, o)) in nets.iter().zip(widths) {
            let t = Tensor::from_slice(&x[at..at + i]).view([1, i as i64]);
            let y = tch::no_grad(|| net.forward(&t)).unwrap();
            let mut v = vec![0.0_f32; o];
            y.copy_data(&mut v, o);
            want.extend(v);
            at += i;
        }
        want
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "output {i}: {g} vs {w} ({got:?} vs {want:?})");
        }
    }

    #[test]
    fn a_row_net_runs_networks_of_any_depth_side_by_side_as_each_alone() {
        // Depths 1 to 4, so every way of carrying an output to the end is used.
        let specs: [(i64, &[i64], i64); 4] = [(3, &[], 2), (5, &[7], 1), (4, &[8, 3], 3), (6, &[4, 6, 2], 5)];
        let stores: Vec<nn::VarStore> = specs.iter().map(|_| nn::VarStore::new(Device::Cpu)).collect();
        let nets: Vec<Mlp> = specs
            .iter()
            .zip(&stores)
            .enumerate()
            .map(|(s, ((i, h, o), vs))| Mlp::seeded(&vs.root(), *i, h, *o, s as u64 + 1))
            .collect();
        let widths: Vec<(usize, usize)> = specs.iter().map(|(i, _, o)| (*i as usize, *o as usize)).collect();
        let refs: Vec<&Mlp> = nets.iter().collect();
        let mut fused = RowNet::new(&refs, Device::Cpu).unwrap();
        assert_eq!((fused.inputs(), fused.outputs()), (18, 11));
        let mut got = vec![0.0_f32; 11];
        for row in 0..5 {
            // Rows that drive many units negative and positive, so the ReLUs and carries bite.
            let x: Vec<f32> = (0..18).map(|i| (((i * 37 + row * 11) % 13) as f32 - 6.0) * 0.7).collect();
            fused.run(&x, &mut got).unwrap();
            close(&got, &alone(&nets, &widths, &x));
        }
        // Each network alone as a row net, too.
        let x: Vec<f32> = (0..18).map(|i| (i as f32 - 9.0) * 0.4).collect();
        let want = alone(&nets, &widths, &x);
        let (mut at_in, mut at_out) = (0, 0);
        for (net, &(i, o)) in nets.iter().zip(&widths) {
            let mut one = RowNet::new(&[net], Device::Cpu).unwrap();
            let mut y = vec![0.0_f32; o];
            one.run(&x[at_in..at_in + i], &mut y).unwrap();
            close(&y, &want[at_out..at_out + o]);
            at_in += i;
            at_out += o;
        }
        assert!(fused.run(&x[..17], &mut got).is_err());
        assert!(fused.run(&x, &mut got[..10]).is_err());
        assert!(RowNet::new(&[], Device::Cpu).is_err());
    }

    #[test]
    fn a_row_input_holds_the_last_row_written_and_refuses_other_widths() {
        let mut input = RowInput::new(5, Device::Cpu).unwrap();
        let mut back = [0.0_f32; 5];
        for r in 0..4 {
            let x: Vec<f32> = (0..5).map(|i| (r * 5 + i) as f32 * 0.25 - 2.0).collect();
            let t = input.fill(&x).unwrap();
            assert_eq!(t.size(), [1, 5]);
            t.f_copy_data(&mut back, 5).unwrap();
            assert_eq!(back.as_slice(), x.as_slice(), "row {r}");
        }
        // The tensor is made once: refilling writes the same storage.
        let first = input.fill(&[1.0; 5]).unwrap().data_ptr();
        assert_eq!(input.fill(&[2.0; 5]).unwrap().data_ptr(), first);
        assert!(input.fill(&[0.0; 4]).is_err());
        assert!(input.fill(&[0.0; 6]).is_err());
        assert!(RowInput::new(0, Device::Cpu).is_err());
    }

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
