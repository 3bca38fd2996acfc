//! placeholder
pub fn probe() -> bool { tch::Cuda::is_available() }
