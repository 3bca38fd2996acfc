//! `argus feeds record` against the loopback replay server: a SIGTERM mid-stream closes every
//! part, pyarrow reads back exactly the rows the command reports, in the Hive layout, and the raw
//! frames kept beside them replay through `feeds check` to the same trades.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use argus_feeds::recording::RecordingReader;
use argus_feeds::replay::{Faults, ReplayServer, Speed};
use serde_json::Value;

const RECORDING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_spot/btcusdt_20240808.jsonl.gz");

#[test]
fn sigterm_mid_stream_loses_nothing_and_pyarrow_reads_the_catalog() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let frames = RecordingReader::read_all(Path::new(RECORDING)).unwrap();
    let server = rt.block_on(ReplayServer::start(&frames, Speed::Factor(30.0), Faults::default())).unwrap();
    let out = std::env::temp_dir().join(format!("argus-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let child = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["feeds", "record", "--venue", "binance-spot", "--symbols", "btcusdt", "--raw", "--out"])
        .arg(&out)
        .args(["--ws-base", &server.ws_base(), "--rest-base", &server.rest_base()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let s: Value = serde_json::from_slice(&done.stdout).unwrap();
    let trades = s["rows"]["trades"].as_u64().unwrap();
    let deltas = s["rows"]["deltas"].as_u64().unwrap();
    let quotes = s["rows"]["quotes"].as_u64().unwrap();
    assert!(trades > 0 && deltas > 0 && quotes > 0, "{s}");
    assert!(trades < 9757, "stopped mid-stream: {s}");
    assert_eq!(s["events"].as_u64().unwrap(), trades + deltas + quotes);
    assert_eq!(s["lost"], 0);
    // No temporary file is left behind; every part is complete.
    let mut stack = vec![out.clone()];
    let mut raw_files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.starts_with(out.join("raw/venue=binance_spot")) {
                assert!(p.to_string_lossy().ends_with(".log.gz"), "stray file {}", p.display());
                raw_files.push(p);
            } else {
                assert!(p.extension().is_some_and(|x| x == "parquet"), "stray file {}", p.display());
            }
        }
    }
    // The raw frames: every one the feed read (the REST snapshot included), replayable.
    let raw = &s["raw"];
    assert_eq!(raw["lost"], 0, "{raw}");
    assert_eq!(raw["files"].as_array().unwrap().len(), raw_files.len(), "{raw}");
    let mut check = Command::new(env!("CARGO_BIN_EXE_argus"));
    check.args(["feeds", "check", "--venue", "binance-spot", "--json"]);
    for f in &raw_files {
        check.arg("--input").arg(f);
    }
    let check = check.output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let c: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(c["errors"], 0, "{c}");
    assert_eq!(c["gaps"], 0, "{c}");
    assert!(c["rest"].as_u64().unwrap() >= 1, "the depth snapshot was kept: {c}");
    assert_eq!(c["frames"].as_u64().unwrap() + c["rest"].as_u64().unwrap(), raw["frames"].as_u64().unwrap(), "{c}");
    assert_eq!(c["events"]["trade"].as_u64().unwrap(), trades, "the raw frames hold the recorded trades: {c}");
    assert_eq!(c["events"]["quote"].as_u64().unwrap(), quotes, "{c}");
    assert_eq!(c["books"]["BTCUSDT"]["synced"], true, "{c}");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = r#"
import sys, pyarrow.dataset as ds
root = sys.argv[1]
out = []
for t in ["trades", "deltas", "quotes"]:
    d = ds.dataset(f"{root}/{t}", format="parquet", partitioning="hive")
    tab = d.to_table()
    out.append(str(tab.num_rows))
    assert set(tab.column("symbol").to_pylist()) == {"BTCUSDT"}, t
    assert set(tab.column("venue").to_pylist()) == {"binance_spot"}, t
    assert d.schema.metadata[b"argus.scale"] == b"9"
d = ds.dataset(f"{root}/deltas", format="parquet", partitioning="hive").to_table()
first = d.slice(0, 1).to_pylist()[0]
assert first["action"] == "clear" and first["is_snapshot"], first
t = ds.dataset(f"{root}/trades", format="parquet", partitioning="hive").to_table()
px = t.column("price").to_pylist()
assert all(50_000 * 10**9 < p < 70_000 * 10**9 for p in px), "BTC prices in 1e-9 units"
print(" ".join(out))
"#;
    let py = Command::new(python).args(["-c", script]).arg(&out).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), format!("{trades} {deltas} {quotes}"));
    drop(server);
    let _ = std::fs::remove_dir_all(&out);
}

/// OKX through its live task (a loopback server replaying a real capture) records the same
/// rows for BTC-USDT as importing that capture offline: one normalizer, live or not.
#[test]
fn okx_records_what_the_offline_import_of_its_capture_holds() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/okx/cryptofeed_OKX.ws.1.0.log.gz");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let frames = argus_feeds::replay::capture_frames(std::slice::from_ref(&capture)).unwrap();
    let server = rt.block_on(argus_feeds::replay::CaptureServer::start(frames, Vec::new())).unwrap();
    let base = std::env::temp_dir().join(format!("argus-record-okx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (live, offline) = (base.join("live"), base.join("offline"));
    let rec = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["feeds", "record", "--venue", "okx", "--symbols", "BTC-USDT", "--end-on-close", "--out"])
        .arg(&live)
        .args(["--ws-base", &server.url()])
        .output()
        .unwrap();
    assert!(rec.status.success(), "{}", String::from_utf8_lossy(&rec.stderr));
    let s: Value = serde_json::from_slice(&rec.stdout).unwrap();
    assert_eq!(s["lost"], 0);
    assert!(s["rows"]["deltas"].as_u64().unwrap() > 0 && s["rows"]["trades"].as_u64().unwrap() > 0, "{s}");
    let imp = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["data", "import", "--format", "raw", "--venue", "okx", "--input"])
        .arg(&capture)
        .arg("--out")
        .arg(&offline)
        .output()
        .unwrap();
    assert!(imp.status.success(), "{}", String::from_utf8_lossy(&imp.stderr));
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = r#"
import sys, pyarrow.dataset as ds, pyarrow.compute as pc
def rows(root, t):
    tab = ds.dataset(f"{root}/{t}", format="parquet", partitioning="hive").to_table()
    tab = tab.filter(pc.equal(tab["symbol"], "BTC-USDT"))
    cols = [c for c in tab.column_names if c not in ("ts_recv_ns", "date")]
    return tab.select(cols).to_pylist()
for t in ["trades", "deltas", "quotes"]:
    a, b = rows(sys.argv[1], t), rows(sys.argv[2], t)
    assert len(a) > 0 and a == b, (t, len(a), len(b))
    print(t, len(a))
"#;
    let py = Command::new(python).args(["-c", script]).arg(&live).arg(&offline).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let text = String::from_utf8_lossy(&py.stdout);
    assert!(text.contains(&format!("deltas {}", s["rows"]["deltas"])), "{text} vs {s}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn bad_record_arguments_are_refused_clearly() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_argus"))
            .args(["feeds", "record", "--out", "/tmp/x"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--venue", "ftx", "--symbols", "BTC-USD"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown venue");
    let out =
        run(&["--venue", "kraken", "--symbols", "XBT/USD", "--ws-base", "ws://127.0.0.1:9", "--rest-base", "http://x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rest-base is for Binance"));
    let out = run(&["--venue", "binance-spot", "--symbols", "BTCUSDT", "--ws-base", "ws://127.0.0.1:9"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ws-base and --rest-base together"));
}
