//! Training alpha and anomaly models on the bundled recording writes model directories that
//! load and score; model directories that do not match this build are refused with an error
//! naming the first difference; the micro-batching inference thread returns what inline scoring
//! returns, tagged with each request's sequence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use argus_core::{InstrumentId, Scorer};
use argus_feeds::offline::BinanceRecording;
use argus_models::batch::{BatchConfig, BatchInference};
use argus_models::card::{MarketKind, ModelCard};
use argus_models::features::{FEATURE_NAMES, N_FEATURES};
use argus_models::market::{MarketModel, MarketModelPaths, MarketScorer};
use argus_models::train::{collect_samples, train, Sample, TrainConfig};
use argus_models::ModelError;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("argus-models-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn samples() -> Vec<Sample> {
    let events =
        BinanceRecording::open(&root().join("data/binance_spot/btcusdt_20240808.jsonl.gz"), "BTCUSDT", InstrumentId(0))
            .unwrap();
    collect_samples(events, 5000)
}

fn zoo() -> MarketModelPaths {
    MarketModelPaths {
        alpha: root().join("models/zoo/btcusdt_alpha"),
        anomaly: Some(root().join("models/zoo/btcusdt_anomaly")),
    }
}

#[test]
fn alpha_trains_deterministically_and_beats_the_zero_forecast() {
    // Same seed, same weights holds for a fixed libtorch thread count (reductions split by
    // thread). The count is process-global and loading a model sets it to 1 for the hot thread;
    // fix it here so a model loading in a parallel test cannot change it halfway.
    tch::set_num_threads(1);
    let samples = samples();
    assert_eq!(samples.len(), 9757, "one sample per trade");
    let cfg = TrainConfig { max_epochs: 40, ..TrainConfig::new(MarketKind::Alpha) };
    let (a, b) = (tmp("alpha-a"), tmp("alpha-b"));
    let mut epochs = 0;
    let ca = train(&samples, &cfg, &a, &mut |p| epochs = p.epoch).unwrap();
    let cb = train(&samples, &cfg, &b, &mut |_| {}).unwrap();
    assert_eq!(ca.weights_sha256, cb.weights_sha256, "same seed, same weights");
    assert_eq!(epochs as u64, ca.training.epochs_run, "progress reported every epoch");
    assert!(ca.training.samples_train > 6000 && ca.training.samples_test > 1300);
    // On the latest 15 % nothing was tuned on, the forecast correlates with what happened and
    // its error is below that of forecasting no move.
    assert!(ca.test["corr"] > 0.1, "{:?}", ca.test);
    assert!(ca.test["rmse_bps"] < ca.test["baseline_rmse_bps"], "{:?}", ca.test);
    assert!(ca.test["hit_rate"] > 0.5, "{:?}", ca.test);

    let loaded = ModelCard::load(&a).unwrap();
    assert_eq!(loaded, ca, "the card round-trips through model.toml");
    let mut m = MarketModel::load(&a, tch::Device::Cpu, false).unwrap();
    let mut seen = Vec::new();
    for s in samples.iter().step_by(997) {
        let v = m.score_one(&s.features).unwrap();
        assert!(v.is_finite());
        seen.push(v);
    }
    assert!(seen.windows(2).any(|w| w[0] != w[1]), "scores depend on the features");
    assert!(m.score_one(&[0.0; N_FEATURES - 1]).is_err(), "wrong width is an error");
}

#[test]
fn anomaly_threshold_is_calibrated_to_the_alert_rate() {
    let samples = samples();
    let cfg = TrainConfig { max_epochs: 30, alert_rate: 0.02, ..TrainConfig::new(MarketKind::Anomaly) };
    let dir = tmp("anomaly");
    let card = train(&samples, &cfg, &dir, &mut |_| {}).unwrap();
    let rate = card.validation["alert_rate"];
    assert!((rate - 0.02).abs() < 0.005, "validation alert rate {rate}");
    // The test split was not calibrated on: its rate lands near the target, not at 0 or 1.
    let test_rate = card.test["alert_rate"];
    assert!(test_rate > 0.002 && test_rate < 0.2, "test alert rate {test_rate}");
    // Beats chance at what it is for: reconstruction error ranks the large coming moves above
    // the rest, and alerts are richer in them than the test split as a whole.
    assert!(card.test["large_move_auc"] > 0.6, "{:?}", card.test);
    assert!(card.test["large_move_rate_in_alerts"] > 2.0 * card.test["large_move_base_rate"], "{:?}", card.test);
    // Scored inline, the same share of held-out rows crosses 0.5 (= the threshold).
    let m = MarketModel::load(&dir, tch::Device::Cpu, false).unwrap();
    let start = (card.training.samples_train + 50) as usize;
    let val = &samples[start..start + card.training.samples_val as usize];
    let rows: Vec<f32> = val.iter().flat_map(|s| s.features).collect();
    let mut out = vec![0.0; val.len()];
    m.score_rows(&rows, val.len(), &mut out).unwrap();
    let flagged = out.iter().filter(|s| **s > 0.5).count() as f64 / val.len() as f64;
    // (Rows within float rounding of the threshold may land either side.)
    assert!((flagged - rate).abs() <= 3.0 / val.len() as f64, "inline {flagged} vs card {rate}");
    assert!(out.iter().all(|s| (0.0..1.0).contains(s)));
}

#[test]
fn the_bundled_models_match_this_build_and_score() {
    let mut s = MarketScorer::load(&zoo(), tch::Device::Cpu, false).unwrap();
    assert_eq!(s.alpha.card().kind, MarketKind::Alpha);
    assert_eq!(s.anomaly.as_ref().unwrap().card().kind, MarketKind::Anomaly);
    let all = samples();
    let mut out = [0.0_f32; 2];
    s.score(&all[5000].features, &mut out).unwrap();
    assert!(out[0].is_finite() && (0.0..1.0).contains(&out[1]), "{out:?}");
    // Both run as one network; each model alone scores the same, also when the two cards
    // standardise differently.
    let shifted = edited_from(&zoo().anomaly.unwrap(), "shifted", &|t| {
        for f in features(t) {
            let f = f.as_table_mut().unwrap();
            let (mean, std) = (f["mean"].as_float().unwrap(), f["std"].as_float().unwrap());
            f.insert("mean".into(), (mean + 0.5 * std).into());
        }
    });
    let other = MarketModelPaths { anomaly: Some(shifted), ..zoo() };
    let mut s2 = MarketScorer::load(&other, tch::Device::Cpu, false).unwrap();
    for s in [&mut s, &mut s2] {
        assert!(s.is_fused());
        for sample in all.iter().step_by(37).take(300) {
            s.score(&sample.features, &mut out).unwrap();
            let alone = [
                s.alpha.score_one(&sample.features).unwrap(),
                s.anomaly.as_mut().unwrap().score_one(&sample.features).unwrap(),
            ];
            for k in 0..2 {
                assert!((out[k] - alone[k]).abs() <= 1e-5 * alone[k].abs().max(1.0), "{k}: {out:?} vs {alone:?}");
            }
        }
        assert!(s.score(&all[0].features[..17], &mut out).is_err());
        // A batch through the fused network (the inference thread's path) equals each model's
        // own batch, row by row.
        let rows: Vec<f32> = all.iter().step_by(37).take(300).flat_map(|s| s.features).collect();
        let n = rows.len() / N_FEATURES;
        let (mut signal, mut anomaly) = (vec![0.0_f32; n], vec![0.0_f32; n]);
        s.score_rows_as(true, &rows, n, &mut signal, &mut anomaly).unwrap();
        let (mut want_signal, mut want_anomaly) = (vec![0.0_f32; n], vec![0.0_f32; n]);
        s.alpha.score_rows(&rows, n, &mut want_signal).unwrap();
        s.anomaly.as_ref().unwrap().score_rows(&rows, n, &mut want_anomaly).unwrap();
        let (mut cpu_signal, mut cpu_anomaly) = (vec![0.0_f32; n], vec![0.0_f32; n]);
        s.score_rows(&rows, n, &mut cpu_signal, &mut cpu_anomaly).unwrap();
        assert_eq!((&cpu_signal, &cpu_anomaly), (&want_signal, &want_anomaly), "the CPU batches each model alone");
        for (got, want) in [(&signal, &want_signal), (&anomaly, &want_anomaly)] {
            for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "row {i}: {g} vs {w}");
            }
        }
        assert!(signal.iter().any(|v| *v != signal[0]) && anomaly.iter().any(|v| *v != anomaly[0]));
        assert!(s.score_rows(&rows[..rows.len() - 1], n, &mut signal, &mut anomaly).is_err());
    }
    let err =
        MarketScorer::load(&MarketModelPaths { alpha: zoo().anomaly.unwrap(), anomaly: None }, tch::Device::Cpu, false)
            .unwrap_err();
    assert!(err.to_string().contains("anomaly model where an alpha model is needed"), "{err}");
    let err = MarketModel::load(&zoo().alpha, tch::Device::Cpu, true).unwrap_err();
    assert!(err.to_string().contains("fp16 inference needs a CUDA device"), "{err}");
}

/// A copy of the bundled alpha directory with its card edited.
fn edited(name: &str, edit: &dyn Fn(&mut toml::Table)) -> PathBuf {
    edited_from(&zoo().alpha, name, edit)
}

/// A copy of the model directory `src` with its card edited.
fn edited_from(src: &Path, name: &str, edit: &dyn Fn(&mut toml::Table)) -> PathBuf {
    let d = tmp(name);
    std::fs::copy(src.join("weights.safetensors"), d.join("weights.safetensors")).unwrap();
    let mut t: toml::Table = toml::from_str(&std::fs::read_to_string(src.join("model.toml")).unwrap()).unwrap();
    edit(&mut t);
    std::fs::write(d.join("model.toml"), toml::to_string(&t).unwrap()).unwrap();
    d
}

fn load_err(dir: &Path) -> String {
    MarketModel::load(dir, tch::Device::Cpu, false).unwrap_err().to_string()
}

fn features(t: &mut toml::Table) -> &mut Vec<toml::Value> {
    t.get_mut("features").unwrap().as_array_mut().unwrap()
}

#[test]
fn mismatched_model_directories_are_refused_naming_the_difference() {
    let renamed = edited("renamed", &|t| {
        features(t)[3].as_table_mut().unwrap().insert("name".into(), "imbalance_top2".into());
    });
    let e = load_err(&renamed);
    assert!(e.contains("feature 3: the model expects `imbalance_top2`, the pipeline provides `imbalance_top1`"), "{e}");

    let fewer = edited("fewer", &|t| {
        features(t).pop();
        t.insert("input_shape".into(), toml::Value::Array(vec![(-1).into(), 17.into()]));
    });
    let e = load_err(&fewer);
    let last = FEATURE_NAMES[N_FEATURES - 1];
    assert!(e.contains(&format!("feature 17: the pipeline provides `{last}`, the model takes only 17")), "{e}");

    let shape = edited("shape", &|t| {
        t.insert("input_shape".into(), toml::Value::Array(vec![(-1).into(), 6.into()]));
    });
    assert!(load_err(&shape).contains("input_shape [-1, 6] does not fit 18 features"));

    let hash = edited("hash", &|t| {
        t.insert("weights_sha256".into(), "00".repeat(32).into());
    });
    assert!(load_err(&hash).contains("the card says 0000"), "{}", load_err(&hash));

    let zero_std = edited("zero-std", &|t| {
        features(t)[2].as_table_mut().unwrap().insert("std".into(), 0.0.into());
    });
    assert!(load_err(&zero_std).contains("every std must be positive"));

    let hidden = edited("hidden", &|t| {
        t.insert("hidden".into(), toml::Value::Array(vec![16.into(), 16.into()]));
    });
    assert!(MarketModel::load(&hidden, tch::Device::Cpu, false).is_err(), "weights of another shape");
    assert!(matches!(MarketModel::load(&tmp("empty"), tch::Device::Cpu, false), Err(ModelError::Io { .. })));
}

#[test]
fn the_inference_thread_micro_batches_and_matches_inline_scores() {
    let samples = samples();
    let mut inline = MarketScorer::load(&zoo(), tch::Device::Cpu, false).unwrap();
    let cfg = BatchConfig { max_batch: 64, max_wait: Duration::from_millis(2), capacity: 4096 };
    let inf = BatchInference::spawn(zoo(), tch::Device::Cpu, false, cfg).unwrap();
    let picked: Vec<&Sample> = samples.iter().step_by(7).take(1000).collect();
    // Submitted in one burst, so batches fill.
    for (i, s) in picked.iter().enumerate() {
        assert!(inf.try_submit(i as u64 + 1, &s.features), "queue has room");
    }
    let mut got = Vec::new();
    while got.len() < picked.len() {
        got.push(inf.recv_timeout(Duration::from_secs(20)).expect("every request answered"));
    }
    let st = inf.stats();
    let batches = st.batches.load(std::sync::atomic::Ordering::Relaxed);
    let largest = st.largest_batch.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(st.rows.load(std::sync::atomic::Ordering::Relaxed), 1000);
    assert!(batches < 100, "{batches} batches for 1000 queued rows");
    assert!(largest <= 64, "max_batch respected: {largest}");
    assert!(inf.finish().is_empty());
    let mut seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=1000).collect::<Vec<_>>(), "each request answered once, tagged with its sequence");
    let mut out = [0.0_f32; 2];
    for r in &got {
        assert!(r.ok);
        inline.score(&picked[(r.seq - 1) as usize].features, &mut out).unwrap();
        for k in 0..2 {
            assert!(
                (r.scores[k] - out[k]).abs() <= 1e-5 * out[k].abs().max(1.0),
                "seq {} {k}: {r:?} vs {out:?}",
                r.seq
            );
        }
    }
}
