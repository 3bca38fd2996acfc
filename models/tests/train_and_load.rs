//! Training on the bundled recording writes a model directory that loads and scores, and model
//! directories that do not match this build are refused with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use argus_core::{InstrumentId, Scorer};
use argus_feeds::offline::BinanceRecording;
use argus_models::features::N_FEATURES;
use argus_models::manifest::Manifest;
use argus_models::mlp::TchScorer;
use argus_models::train::{collect_samples, train, TrainConfig};
use argus_models::ModelError;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("argus-models-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn trains_saves_loads_and_scores_deterministically() {
    let events =
        BinanceRecording::open(&root().join("data/binance_spot/btcusdt_20240808.jsonl.gz"), "BTCUSDT", InstrumentId(0))
            .unwrap();
    let samples = collect_samples(events, 5000);
    assert_eq!(samples.len(), 9757, "one sample per trade");
    let cfg = TrainConfig { epochs: 60, ..TrainConfig::default() };
    let (a, b) = (tmp("a"), tmp("b"));
    let ma = train(&samples, &cfg, &a).unwrap();
    let mb = train(&samples, &cfg, &b).unwrap();
    assert_eq!(ma.training.train_loss, mb.training.train_loss, "same seed, same model");
    assert!(ma.training.train_loss.is_finite());
    assert!(ma.training.samples_val > 2000 && ma.training.samples_train > 6000);
    assert!((0.0..=1.0).contains(&ma.training.val_anomaly_auc));

    let mut scorer = TchScorer::load(&a, tch::Device::Cpu).unwrap();
    let mut out = [0.0_f32; 2];
    let mut seen = Vec::new();
    for s in samples.iter().step_by(997) {
        scorer.score(&s.features, &mut out).unwrap();
        assert!(out[0].is_finite());
        assert!((0.0..=1.0).contains(&out[1]), "anomaly is a probability");
        seen.push(out);
    }
    assert!(seen.windows(2).any(|w| w[0] != w[1]), "scores depend on the features");
    assert!(scorer.score(&[0.0; N_FEATURES - 1], &mut out).is_err(), "wrong width is an error");
}

#[test]
fn the_bundled_model_matches_this_build() {
    let m = Manifest::load(&root().join("models/zoo/btcusdt_mlp")).unwrap();
    assert_eq!(m.features.len(), N_FEATURES);
    TchScorer::load(&root().join("models/zoo/btcusdt_mlp"), tch::Device::Cpu).unwrap();
}

#[test]
fn mismatched_model_directories_are_refused() {
    let src = root().join("models/zoo/btcusdt_mlp");
    let copy = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> PathBuf {
        let d = tmp(name);
        std::fs::copy(src.join("weights.safetensors"), d.join("weights.safetensors")).unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(src.join("manifest.json")).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(d.join("manifest.json"), v.to_string()).unwrap();
        d
    };
    let renamed = copy("renamed", &|v| v["features"][0] = "spread".into());
    let err = TchScorer::load(&renamed, tch::Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("differ from this build"), "{err}");
    let zero_std = copy("zero-std", &|v| v["std"][2] = 0.0.into());
    assert!(matches!(TchScorer::load(&zero_std, tch::Device::Cpu), Err(ModelError::Manifest { .. })));
    let wrong_shape = copy("shape", &|v| v["hidden"] = serde_json::json!([16, 16]));
    assert!(TchScorer::load(&wrong_shape, tch::Device::Cpu).is_err(), "weights of another shape");
    assert!(matches!(TchScorer::load(&tmp("empty"), tch::Device::Cpu), Err(ModelError::Io { .. })));
}
