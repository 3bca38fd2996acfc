//! Scores a row `N` times through the hot thread's scorer (`pair`: the bundled alpha and anomaly
//! models, fused) or the alpha model alone (`alpha`): a fixed program whose allocation count
//! `scripts/count_allocs.sh` takes at two values of `N`, so the difference is what scoring a
//! row allocates.
//!
//! `cargo run --release -p argus-models --example row_allocs -- pair|alpha N`

use std::path::PathBuf;

use argus_core::Scorer;
use argus_models::features::N_FEATURES;
use argus_models::market::{MarketModel, MarketModelPaths, MarketScorer};
use tch::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: row_allocs pair|alpha N";
    let mut args = std::env::args().skip(1);
    let pair_mode = match args.next().as_deref() {
        Some("pair") => true,
        Some("alpha") => false,
        _ => return Err(usage.into()),
    };
    let n: usize = args.next().ok_or(usage)?.parse()?;
    let zoo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("zoo");
    tch::set_num_threads(1);
    let paths = MarketModelPaths { alpha: zoo.join("btcusdt_alpha"), anomaly: Some(zoo.join("btcusdt_anomaly")) };
    let mut pair = MarketScorer::load(&paths, Device::Cpu, false)?;
    let mut alpha = MarketModel::load(&paths.alpha, Device::Cpu, false)?;
    let mut x = [0.0_f32; N_FEATURES];
    let (mut out, mut sum) = ([0.0_f32; 2], 0.0_f64);
    for i in 0..n {
        x[i % N_FEATURES] = (i % 97) as f32 * 0.01;
        if pair_mode {
            pair.score(&x, &mut out)?;
        } else {
            out = [alpha.score_one(&x)?, 0.0];
        }
        sum += f64::from(out[0]) + f64::from(out[1]);
    }
    println!("scored {n} rows (sum {sum:.3})");
    Ok(())
}
