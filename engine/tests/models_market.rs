//! Market models from the CLI: training from a Parquet catalog gives the very weights training
//! from the raw recording gives (one data path); a TorchScript module exported by PyTorch, put
//! in a model directory with its card, scores like PyTorch and drives a backtest; a card whose
//! features differ from the pipeline's is refused naming the first difference; `models bench`
//! reports the micro-batching inference thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use argus_models::features::FEATURE_NAMES;
use serde_json::Value;

const RECORDING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_spot/btcusdt_20240808.jsonl.gz");

fn argus() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_argus"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("argus-market-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn weights_sha(dir: &Path) -> String {
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(dir.join("model.toml")).unwrap()).unwrap();
    t["weights_sha256"].as_str().unwrap().to_owned()
}

#[test]
fn training_from_a_catalog_equals_training_from_the_recording() {
    let d = tmp("catalog");
    let cat = d.join("cat");
    ok(&argus()
        .args(["data", "import", "--format", "raw", "--venue", "binance-spot", "--input", RECORDING, "--out"])
        .arg(&cat)
        .output()
        .unwrap());
    let (from_cat, from_rec) = (d.join("alpha-cat"), d.join("alpha-rec"));
    let train = |data: &Path, out: &Path| {
        ok(&argus()
            .args(["models", "train", "alpha", "--epochs", "5", "--data"])
            .arg(data)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap())
    };
    let said = train(&cat, &from_cat);
    train(Path::new(RECORDING), &from_rec);
    assert!(said.contains("6794 samples"), "{said}");
    assert_eq!(weights_sha(&from_cat), weights_sha(&from_rec), "same events, same features, same weights");

    let anomaly = d.join("anomaly");
    let said = ok(&argus()
        .args(["models", "train", "anomaly", "--epochs", "20", "--alert-rate", "0.05", "--data"])
        .arg(&cat)
        .arg("--out")
        .arg(&anomaly)
        .output()
        .unwrap());
    let card: toml::Table = toml::from_str(&std::fs::read_to_string(anomaly.join("model.toml")).unwrap()).unwrap();
    assert_eq!(card["kind"].as_str(), Some("anomaly"), "{said}");
    let rate = card["validation"]["alert_rate"].as_float().unwrap();
    assert!((rate - 0.05).abs() < 0.005, "calibrated to the asked rate: {rate}");
}

/// Exports a scripted 18-8-1 module and 300 feature rows with PyTorch's outputs after the card's
/// standardisation, and writes the model directory's card (sha256 by hashlib).
const EXPORT: &str = r#"
import sys, csv, hashlib, torch
d, names = sys.argv[1], sys.argv[2].split(",")
torch.manual_seed(5)
class Alpha(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(18, 8)
        self.b = torch.nn.Linear(8, 1)
    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))
m = Alpha().eval()
torch.jit.script(m).save(d + "/model.pt")
mean = torch.linspace(-1, 1, 18)
std = torch.logspace(-1, 1, 18)
x = torch.randn(300, 18) * std + mean
with torch.no_grad():
    y = m((x - mean) / std).squeeze(1) * 2.5
with open(d + "/rows.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(names)
    for r in x.tolist():
        w.writerow([repr(v) for v in r])
with open(d + "/expected.csv", "w") as f:
    f.write("\n".join(repr(v) for v in y.tolist()) + "\n")
sha = hashlib.sha256(open(d + "/model.pt", "rb").read()).hexdigest()
card = f'''name = "pytorch_alpha"
version = 1
kind = "alpha"
task = "regression"
format = "torchscript"
weights = "model.pt"
weights_sha256 = "{sha}"
preferred_device = "cpu"
input_shape = [-1, 18]
output_shape = [-1, 1]
outputs = ["signal_bps"]
output_scale = 2.5

[training]
data = "torch.randn"
samples_train = 0
samples_val = 0
samples_test = 0
seed = 5
max_epochs = 0
epochs_run = 0
learning_rate = 0.0
batch_size = 0
horizon_trades = 50
'''
for n, mu, s in zip(names, mean.tolist(), std.tolist()):
    card += f'\n[[features]]\nname = "{n}"\nmean = {mu!r}\nstd = {s!r}\n'
open(d + "/model/model.toml", "w").write(card)
"#;

#[test]
fn a_pytorch_module_in_a_model_directory_scores_like_pytorch_and_trades() {
    let d = tmp("torchscript");
    std::fs::create_dir_all(d.join("model")).unwrap();
    let script = d.join("export.py");
    std::fs::write(&script, EXPORT).unwrap();
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    ok(&Command::new(py).arg(&script).arg(&d).arg(FEATURE_NAMES.join(",")).output().unwrap());
    let model = d.join("model");
    std::fs::copy(d.join("model.pt"), model.join("model.pt")).unwrap();

    let out = d.join("scores.csv");
    ok(&argus()
        .args(["models", "score", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(d.join("rows.csv"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let want: Vec<f64> =
        std::fs::read_to_string(d.join("expected.csv")).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    let got: Vec<f64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split_once(',').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(got.len(), 300, "one output row per input row");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "row {i}: argus {g}, pytorch {w}");
    }

    // The same directory drives a backtest as the alpha model; so does the bare file.
    let backtest = |model: &Path, name: &str| -> Output {
        let report = d.join(format!("{name}.json"));
        let o = argus()
            .args(["backtest", "--recording", RECORDING, "--anomaly-model", "none", "--device", "cpu"])
            .args(["--metrics-addr", "off", "--model"])
            .arg(model)
            .arg("--report-json")
            .arg(&report)
            .output()
            .unwrap();
        if o.status.success() {
            let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
            assert_eq!(r["model"]["name"], name);
            assert_eq!(r["model"]["anomaly"], Value::Null);
            assert_eq!(r["model"]["scores"].as_u64(), r["frames"]["trade"].as_u64(), "every trade scored");
            assert_eq!(r["model"]["errors"], 0);
        }
        o
    };
    ok(&backtest(&model, "pytorch_alpha"));
    ok(&backtest(&d.join("model.pt"), "model"));

    // A card whose features are in another order is refused, naming the first difference.
    let card = std::fs::read_to_string(model.join("model.toml")).unwrap();
    let swapped = card
        .replacen(&format!("name = \"{}\"", FEATURE_NAMES[0]), "name = \"@0\"", 1)
        .replacen(&format!("name = \"{}\"", FEATURE_NAMES[1]), &format!("name = \"{}\"", FEATURE_NAMES[0]), 1)
        .replacen("name = \"@0\"", &format!("name = \"{}\"", FEATURE_NAMES[1]), 1);
    std::fs::write(model.join("model.toml"), swapped).unwrap();
    let o = backtest(&model, "swapped");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let want =
        format!("feature 0: the model expects `{}`, the pipeline provides `{}`", FEATURE_NAMES[1], FEATURE_NAMES[0]);
    assert!(err.contains(&want), "{err}");

    // Weights that do not hash to the card's sha256 are refused.
    std::fs::write(model.join("model.toml"), &card).unwrap();
    std::fs::write(model.join("model.pt"), b"not the exported module").unwrap();
    let o = backtest(&model, "tampered");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("hash to sha256"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn models_bench_reports_batch1_overhead_and_the_inference_thread() {
    let o = argus()
        .args(["models", "bench", "--model", "models/zoo/btcusdt_alpha", "--calls", "2000", "--batch", "512"])
        .args(["--anomaly", "models/zoo/btcusdt_anomaly", "--json"])
        .output()
        .unwrap();
    let r: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(r["kind"], "alpha");
    assert_eq!(r["inputs"], 18);
    // Both paths were timed call by call (how they compare is the bench's finding, and a
    // timing ratio swings with the machine's load, so it is not asserted here).
    let s = &r["scorer"];
    assert_eq!(s["fused"], true, "{s}");
    assert!(s["anomaly"].as_str().unwrap().ends_with("btcusdt_anomaly"));
    for (k, p) in [
        ("batch1", &r["batch1"]),
        ("raw_tch_batch1", &r["raw_tch_batch1"]),
        ("raw_row_batch1", &r["raw_row_batch1"]),
        ("scorer.batch1", &s["batch1"]),
        ("scorer.separate_batch1", &s["separate_batch1"]),
    ] {
        assert_eq!(p["calls"], 2000, "{k}: {p}");
        let (p50, p99, max) =
            (p["p50_ns"].as_u64().unwrap(), p["p99_ns"].as_u64().unwrap(), p["max_ns"].as_u64().unwrap());
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{k}: {p}");
    }
    let overhead = r["batch1"]["p50_ns"].as_i64().unwrap() - r["raw_tch_batch1"]["p50_ns"].as_i64().unwrap();
    assert_eq!(r["overhead_p50_ns"].as_i64().unwrap(), overhead);
    let row_overhead = r["batch1"]["p50_ns"].as_i64().unwrap() - r["raw_row_batch1"]["p50_ns"].as_i64().unwrap();
    assert_eq!(r["row_overhead_p50_ns"].as_i64().unwrap(), row_overhead);
    assert!(r["batched_scores_per_sec"].as_f64().unwrap() > 0.0);
    let t = &r["inference_thread"];
    assert_eq!(t["requests"], 200_000);
    assert!(t["scores_per_sec"].as_f64().unwrap() > 0.0);
    assert!(t["mean_batch"].as_f64().unwrap() > 1.0, "requests were batched: {t}");
    assert!(t["latency"]["p50_ns"].as_u64().unwrap() <= t["latency"]["p99_ns"].as_u64().unwrap());
    // The pair batched, fused and one model after the other, and its inference thread.
    assert!(
        s["batched_rows_per_sec"].as_f64().unwrap() > 0.0 && s["separate_batched_rows_per_sec"].as_f64().unwrap() > 0.0
    );
    let t = &s["inference_thread"];
    assert_eq!((t["requests"].as_u64(), t["max_batch"].as_u64()), (Some(200_000), Some(256)));
    assert!(t["mean_batch"].as_f64().unwrap() > 1.0, "requests were batched: {t}");

    // An anomaly model is timed beside an alpha model only.
    let o = argus()
        .args(["models", "bench", "--model", "models/zoo/btcusdt_anomaly", "--calls", "100", "--batch", "8"])
        .args(["--anomaly", "models/zoo/btcusdt_anomaly"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--anomaly goes with an alpha model"));
}
