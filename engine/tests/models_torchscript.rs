//! TorchScript interop: modules exported by PyTorch itself (the project venv's torch 2.11.0,
//! `torch.jit.script` and `torch.jit.trace`) score the same inputs in argus within 1e-5, and
//! files that cannot be used fail with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn argus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_argus"))
}

/// Runs `script` from a file in `dir` (`torch.jit.script` reads the module's source).
fn python(script: &str, dir: &Path) {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let file = dir.join("export.py");
    std::fs::write(&file, script).unwrap();
    let o = one_thread(&mut Command::new(py)).arg(&file).arg(dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Exports a scripted and a traced 32-64-1 MLP, a two-output module, and 500 input rows (a text
/// column argus must skip, 32 numeric ones) with PyTorch's own outputs for both modules.
const EXPORT: &str = r#"
import sys, csv, torch
d = sys.argv[1]
torch.manual_seed(11)
class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(32, 64)
        self.b = torch.nn.Linear(64, 1)
    def forward(self, x):
        return torch.sigmoid(self.b(torch.tanh(self.a(x))))
class Two(torch.nn.Module):
    def forward(self, x):
        return torch.stack([x.sum(1), x.mean(1)], 1)
m = Mlp().eval()
x = torch.randn(500, 32) * torch.logspace(-2, 2, 32)
scripted = torch.jit.script(m)
scripted.save(f"{d}/scripted.pt")
traced = torch.jit.trace(m, x[:4])
traced.save(f"{d}/traced.pt")
torch.jit.script(Two()).save(f"{d}/two.pt")
with open(f"{d}/not_a_module.pt", "wb") as f:
    f.write(b"this is not a zip archive")
with torch.no_grad():
    y = scripted(x).squeeze(1)
with open(f"{d}/inputs.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id"] + [f"f{i}" for i in range(32)])
    for i, row in enumerate(x.tolist()):
        w.writerow([f"row-{i}"] + [repr(v) for v in row])
with open(f"{d}/expected.txt", "w") as f:
    f.write("\n".join(repr(v) for v in y.tolist()))
"#;

/// Both sides compute on one thread. With several, the BLAS may pick its thread count by the
/// machine's load (MKL_DYNAMIC), and a different split of the first layer's float32 sums
/// (inputs up to 1e2) moves outputs by ~1e-5: measured 1.5e-5 once under `make test`'s load,
/// 2.9e-8 (the CSV's rounding) on one thread every time.
fn one_thread(c: &mut Command) -> &mut Command {
    c.env("OMP_NUM_THREADS", "1").env("MKL_NUM_THREADS", "1")
}

fn score(model: &Path, input: &Path, out: &Path) -> std::process::Output {
    one_thread(&mut argus())
        .args(["models", "score", "--model"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn pytorch_exports_score_the_same_in_argus() {
    let dir: PathBuf = std::env::temp_dir().join(format!("argus-torchscript-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    python(EXPORT, &dir);
    let expected: Vec<f64> =
        std::fs::read_to_string(dir.join("expected.txt")).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(expected.len(), 500);
    for file in ["scripted.pt", "traced.pt"] {
        let out = dir.join(format!("{file}.csv"));
        let o = score(&dir.join(file), &dir.join("inputs.csv"), &out);
        assert!(o.status.success(), "{file}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("32 numeric columns"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("row,score"));
        let got: Vec<f64> = lines.map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
        assert_eq!(got.len(), expected.len());
        let worst = got.iter().zip(&expected).map(|(g, e)| (g - e).abs()).fold(0.0, f64::max);
        eprintln!("{file}: largest difference from PyTorch {worst:e}");
        assert!(worst <= 1e-5, "{file}: largest difference from PyTorch {worst}");
        // Not a constant: the outputs spread, so equality means something.
        let (lo, hi) = got.iter().fold((1.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        assert!(hi - lo > 0.1, "{file}: outputs span only {lo}..{hi}");
    }
    // Two outputs per row is not a score: named, with the shape.
    let o = score(&dir.join("two.pt"), &dir.join("inputs.csv"), &dir.join("two.csv"));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("[500, 2]"), "{}", String::from_utf8_lossy(&o.stderr));
    // A file that is not TorchScript.
    let o = score(&dir.join("not_a_module.pt"), &dir.join("inputs.csv"), &dir.join("bad.csv"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a TorchScript module"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!dir.join("bad.csv").exists() && !dir.join("two.csv").exists(), "no partial output");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two rule-like modules over the monitor's raw features: `rich` flags transactions carrying
/// more than 5 ether (column 5 of the transaction features is `value` in wei), `busy` flags
/// addresses that sent at least 3 transactions (column 3 of the profile aggregates is
/// `Sent tnx`); `narrow` indexes a column the monitor does not provide.
const MONITOR_EXPORT: &str = r#"
import sys, torch
d = sys.argv[1]
class Rich(torch.nn.Module):
    def forward(self, x):
        return (x[:, 5] > 5e18).float()
class Busy(torch.nn.Module):
    def forward(self, x):
        return (x[:, 3] >= 3).float().unsqueeze(1)
class Narrow(torch.nn.Module):
    def forward(self, x):
        return x[:, 60]
torch.jit.script(Rich()).save(f"{d}/rich.pt")
torch.jit.script(Busy()).save(f"{d}/busy.pt")
torch.jit.script(Narrow()).save(f"{d}/narrow.pt")
"#;

#[test]
fn a_bare_torchscript_file_is_a_monitor_model() {
    use argus_core::{Address, Call, ChainBlock, ChainEvent, ChainTx, H256, U256};
    use argus_engine::monitor::{AddressModelScorer, ModelScorer};
    use argus_risk::onchain::{LabelSet, Monitor, MonitorConfig, TxScorer};

    let dir: PathBuf = std::env::temp_dir().join(format!("argus-torchscript-monitor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    python(MONITOR_EXPORT, &dir);

    let ether = |n: u64| U256::from_dec_str(&format!("{n}000000000000000000")).unwrap();
    let tx = |i: u8, from: u8, wei: U256| ChainTx {
        hash: H256([i; 32]),
        index: u32::from(i),
        from: Address([from; 20]),
        to: Some(Address([0x77; 20])),
        value: wei,
        nonce: u64::from(i),
        gas: 21_000,
        gas_price: U256::from_u64(1_000_000_000),
        gas_used: Some(21_000),
        success: Some(true),
        created: None,
        call: Call::Plain,
        events: vec![],
    };
    let block = ChainBlock {
        chain_id: 1,
        number: 100,
        hash: H256([0xb1; 32]),
        parent_hash: H256([0xb0; 32]),
        timestamp: 1_700_000_000,
        recv_ns: 0,
        txs: vec![tx(1, 1, ether(1)), tx(2, 2, ether(10)), tx(3, 1, ether(2)), tx(4, 1, ether(3))],
        grantees: vec![],
    };

    let mut rich = ModelScorer::load(&dir.join("rich.pt")).unwrap();
    assert_eq!(rich.version(), "rich (TorchScript)");
    assert_eq!(rich.threshold(), 0.5);
    let mut scores = Vec::new();
    rich.score_block(&block, &[0, 1, 2], &mut scores).unwrap();
    assert_eq!(scores, vec![0.0, 1.0, 0.0]);
    let mut narrow = ModelScorer::load(&dir.join("narrow.pt")).unwrap();
    let e = narrow.score_block(&block, &[0], &mut Vec::new()).unwrap_err();
    assert!(e.contains("60") || e.contains("index"), "{e}");

    // In the monitor: the 10-ether transaction raises `ml-tx`, and the address that sent three
    // transactions raises `ml-address`, each naming the file as its model.
    let mut m = Monitor::new(
        MonitorConfig { address_min_txs: 1, ..MonitorConfig::default() },
        LabelSet::default(),
        Default::default(),
    )
    .with_scorer(Box::new(rich))
    .with_address_scorer(Box::new(AddressModelScorer::load(&dir.join("busy.pt")).unwrap()));
    let mut alerts = Vec::new();
    m.on_event(&ChainEvent::Block(Box::new(block)), &mut alerts);
    let ml: Vec<_> = alerts.iter().filter(|a| a.detector.starts_with("ml-")).collect();
    assert_eq!(ml.len(), 2, "{ml:#?}");
    let tx_alert = ml.iter().find(|a| a.detector == "ml-tx").unwrap();
    assert_eq!(tx_alert.tx_hash, Some(H256([2; 32]).to_string()));
    assert_eq!(tx_alert.model_version.as_deref(), Some("rich (TorchScript)"));
    let address_alert = ml.iter().find(|a| a.detector == "ml-address").unwrap();
    assert!(address_alert.addresses.iter().any(|p| p.address == Address([1; 20]).to_string()), "{address_alert:?}");
    assert_eq!(address_alert.model_version.as_deref(), Some("busy (TorchScript)"));
    assert_eq!(m.stats().score_errors, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
