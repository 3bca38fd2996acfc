//! End-to-end: the `argus` binary replays the bundled recording through its embedded server and
//! the live pipeline; results are checked against values computed here, independently, from the
//! recording file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const RECORDING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_spot/btcusdt_20240808.jsonl.gz");

fn argus() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_argus"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("argus-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `"61837.63000000"` -> integer of 1e-8 units; Binance prints exactly 8 decimals.
fn key(s: &str) -> u128 {
    let (i, f) = s.split_once('.').unwrap();
    assert_eq!(f.len(), 8, "{s}");
    format!("{i}{f}").parse().unwrap()
}

struct Expected {
    trade: u64,
    depth: u64,
    book_ticker: u64,
    snapshot: u64,
    best_bid: [String; 2],
    best_ask: [String; 2],
    bid_levels: usize,
    ask_levels: usize,
}

/// Binance's documented procedure, written again from scratch over `serde_json::Value`.
fn expected() -> Expected {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(RECORDING).unwrap());
    let (mut trade, mut depth, mut book_ticker, mut snapshot) = (0, 0, 0, 0);
    let mut diffs: Vec<(u64, u64, Value)> = Vec::new();
    let mut snap: Option<Value> = None;
    for line in BufReader::new(gz).lines() {
        let line = line.unwrap();
        let (_, frame) = line.split_once(' ').unwrap();
        let v: Value = serde_json::from_str(frame).unwrap();
        if v.get("lastUpdateId").is_some() {
            snapshot += 1;
            snap = Some(v);
            continue;
        }
        let stream = v["stream"].as_str().unwrap();
        if stream.ends_with("@trade") {
            trade += 1;
        } else if stream.ends_with("@bookTicker") {
            book_ticker += 1;
        } else if stream.contains("@depth") {
            depth += 1;
            let d = &v["data"];
            diffs.push((d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap(), d.clone()));
        }
    }
    let snap = snap.unwrap();
    let last = snap["lastUpdateId"].as_u64().unwrap();
    let mut bids: BTreeMap<u128, (String, String)> = BTreeMap::new();
    let mut asks: BTreeMap<u128, (String, String)> = BTreeMap::new();
    let load = |side: &mut BTreeMap<u128, (String, String)>, levels: &Value| {
        for l in levels.as_array().unwrap() {
            let (p, q) = (l[0].as_str().unwrap(), l[1].as_str().unwrap());
            if key(q) == 0 {
                side.remove(&key(p));
            } else {
                side.insert(key(p), (p.to_owned(), q.to_owned()));
            }
        }
    };
    load(&mut bids, &snap["bids"]);
    load(&mut asks, &snap["asks"]);
    let mut prev: Option<u64> = None;
    for (first, fin, d) in diffs.iter().filter(|(_, u, _)| *u > last) {
        match prev {
            None => assert!(*first <= last + 1, "first diff must straddle the snapshot"),
            Some(p) => assert_eq!(*first, p + 1, "recording has a gap"),
        }
        prev = Some(*fin);
        load(&mut bids, &d["b"]);
        load(&mut asks, &d["a"]);
    }
    let (bp, (bps, bqs)) = bids.iter().next_back().unwrap();
    let (ap, (aps, aqs)) = asks.iter().next().unwrap();
    assert!(bp < ap);
    Expected {
        trade,
        depth,
        book_ticker,
        snapshot,
        best_bid: [bps.clone(), bqs.clone()],
        best_ask: [aps.clone(), aqs.clone()],
        bid_levels: bids.len(),
        ask_levels: asks.len(),
    }
}

fn run_demo(extra: &[&str], report: &Path) -> Value {
    let out = argus()
        .args(["demo", "--speed", "max", "--metrics-addr", "off", "--device", "cpu", "--report-json"])
        .arg(report)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "argus demo failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

#[test]
fn demo_at_max_speed_is_exact() {
    let want = expected();
    let r = run_demo(&[], &tmp("exact.json"));
    let f = &r["frames"];
    assert_eq!(f["trade"], want.trade);
    assert_eq!(f["depth"], want.depth);
    assert_eq!(f["book_ticker"], want.book_ticker);
    assert_eq!(f["snapshot"], want.snapshot);
    assert_eq!(f["malformed"], 0);
    assert_eq!(r["queue"]["dropped"], 0, "every frame in at --speed max");
    let b = &r["book"];
    assert_eq!(b["instrument"], "BTCUSDT");
    assert_eq!(b["best_bid"], serde_json::json!(want.best_bid));
    assert_eq!(b["best_ask"], serde_json::json!(want.best_ask));
    assert_eq!(b["bid_levels"], want.bid_levels);
    assert_eq!(b["ask_levels"], want.ask_levels);

    let lat = r["latency_ns"].as_object().unwrap();
    for stage in ["receive->decode", "decode->hot thread", "book", "features", "model", "strategy", "risk"] {
        let s = &lat[stage];
        let (p50, p99, p999, max) = (
            s["p50"].as_u64().unwrap(),
            s["p99"].as_u64().unwrap(),
            s["p999"].as_u64().unwrap(),
            s["max"].as_u64().unwrap(),
        );
        assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{stage}: {s}");
        assert!(s["count"].as_u64().unwrap() > 0, "{stage} never measured");
    }
    assert_eq!(lat["model"]["count"], want.trade, "every trade scored");

    let o = &r["orders"];
    let rejected: u64 = o["rejected"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(o["intents"].as_u64().unwrap(), o["approved"].as_u64().unwrap() + rejected);
    assert!(o["intents"].as_u64().unwrap() > 0, "the strategy never traded");
    assert!(o["fills"].as_u64().unwrap() <= o["approved"].as_u64().unwrap());
    for k in ["realized", "unrealized", "fees"] {
        r["pnl"][k].as_str().unwrap().parse::<f64>().unwrap();
    }
    assert_eq!(r["model"]["name"], "btcusdt_alpha");
    assert_eq!(r["model"]["anomaly"], "btcusdt_anomaly");
    let rules = &r["risk"]["rules"];
    assert_eq!(rules["source"], "venue", "the replayed venue's exchangeInfo: {rules}");
    assert_eq!((&rules["tick"], &rules["min_notional"]), (&"0.01".into(), &"5".into()), "{rules}");
    assert_eq!(r["model"]["inference"], "inline");
    assert_eq!(r["model"]["device"], "cpu");
    assert_eq!(r["model"]["scores"], want.trade);
}

/// The micro-batching inference thread behind the live pipeline: every trade is submitted,
/// decisions use the newest score back, and what was not answered in time is counted.
#[test]
fn demo_with_the_inference_thread_scores_every_trade_or_counts_it() {
    let want = expected();
    let r = run_demo(&["--inference", "batched", "--batch-max", "32", "--batch-wait-us", "100"], &tmp("batched.json"));
    let m = &r["model"];
    assert_eq!(m["inference"], "batched (max 32 rows, 100 us)");
    let (scores, errors) = (m["scores"].as_u64().unwrap(), m["errors"].as_u64().unwrap());
    assert_eq!(scores + errors, want.trade, "each trade either got a score or counted as unscored");
    assert!(scores > want.trade / 2, "most trades got a score back: {m}");
    assert_eq!(m["dropped"], 0, "the request queue never filled");
    let o = &r["orders"];
    let rejected: u64 = o["rejected"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(o["intents"].as_u64().unwrap(), o["approved"].as_u64().unwrap() + rejected);
    assert_eq!(r["book"]["best_bid"], serde_json::json!(want.best_bid));

    // Backtests stay inline (deterministic): asking for the thread there is an error.
    let o = argus()
        .args(["backtest", "--recording", RECORDING, "--inference", "batched", "--metrics-addr", "off"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--inference batched is for live runs"));
}

fn run_json(args: &[&str], report: &Path) -> Value {
    let out = argus().args(args).arg("--report-json").arg(report).output().unwrap();
    assert!(out.status.success(), "argus {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

/// One code path: decisions run on venue time after a warm-up anchored at the first trade, and
/// the replay server never runs ahead of the recorded snapshot, so live replays at any speed, a
/// backtest of the tape they recorded and a backtest of the raw recording all decide the same.
#[test]
fn live_replays_and_backtests_agree() {
    let tape = tmp("session.parquet");
    let common = ["--metrics-addr", "off", "--device", "cpu"];
    let mut args = vec!["demo", "--speed", "max", "--record", tape.to_str().unwrap()];
    args.extend(common);
    let live_max = run_json(&args, &tmp("live-max.json"));
    let mut args = vec!["demo", "--speed", "100"];
    args.extend(common);
    let live_paced = run_json(&args, &tmp("live-100.json"));
    let mut args = vec!["backtest", "--tape", tape.to_str().unwrap()];
    args.extend(common);
    let from_tape = run_json(&args, &tmp("bt-tape.json"));
    let mut args = vec!["backtest", "--recording", RECORDING];
    args.extend(common);
    let from_recording = run_json(&args, &tmp("bt-rec.json"));

    assert_eq!(live_max["recording"]["rows"], live_max["events"]);
    assert_eq!(live_max["recording"]["lost"], 0);
    for (name, r) in [("live 100x", &live_paced), ("tape", &from_tape), ("recording", &from_recording)] {
        assert_eq!(r["orders"], live_max["orders"], "{name}: orders differ");
        assert_eq!(r["pnl"], live_max["pnl"], "{name}: pnl differs");
        assert_eq!(r["book"]["best_bid"], live_max["book"]["best_bid"], "{name}");
        assert_eq!(r["book"]["best_ask"], live_max["book"]["best_ask"], "{name}");
        assert_eq!(r["model"]["scores"], live_max["model"]["scores"], "{name}");
    }
    assert_eq!(from_tape["events"], live_max["events"]);

    // The tape is plain Parquet: pyarrow reads it back with the same content.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = r#"
import sys, pyarrow.parquet as pq, pyarrow.compute as pc
t = pq.read_table(sys.argv[1])
trades = t.filter(pc.equal(t["kind"], "trade"))
print(t.num_rows, trades.num_rows, trades["price"][0].as_py(), t.schema.field("price").type)
"#;
    let out = Command::new(&python).args(["-c", script]).arg(&tape).output().expect("run `make venv` for pyarrow");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields[0], live_max["events"].to_string());
    assert_eq!(fields[1], "9757");
    assert_eq!(fields[2], "61837.630000000", "first trade of the recording, exact");
    assert_eq!(fields[3], "decimal128(38,");
}

#[test]
fn metrics_are_served_while_running_and_pass_promtool() {
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut child = argus()
        .args(["demo", "--speed", "60", "--device", "cpu", "--metrics-addr", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut body = None;
    while Instant::now() < deadline {
        if let Some(b) = common::scrape(&addr) {
            if b.contains("argus_feed_frames_total{type=\"trade\"}") && b.contains("argus_stage_latency_seconds_bucket")
            {
                body = Some(b);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let body = body.expect("no metrics scraped while the demo ran");
    let _ = child.kill();
    let _ = child.wait();
    for name in [
        "argus_book_updates_total",
        "argus_queue_depth_events",
        "argus_model_scores_total",
        "argus_orders_total",
        "argus_position_base_nano",
        "argus_pnl_quote_nano",
    ] {
        assert!(body.contains(name), "{name} missing");
    }
    common::assert_promtool_accepts(&body);
}

#[test]
fn ctrl_c_stops_cleanly_and_still_reports() {
    let report = tmp("interrupted.json");
    let child = argus()
        .args(["demo", "--speed", "5", "--metrics-addr", "off", "--device", "cpu", "--report-json"])
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("argus report"), "{stdout}");
    assert!(stdout.contains("rules    tick 0.01  lot 0.00001") && stdout.contains("(venue)"), "{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let trades = r["frames"]["trade"].as_u64().unwrap();
    assert!(trades > 0 && trades < 9757, "interrupted run saw {trades} trades");
}

#[test]
fn malformed_recording_is_a_clear_error() {
    let bad = tmp("bad.jsonl");
    std::fs::write(&bad, "1723161253937085768 {\"stream\":\"btcusdt@trade\",\"data\":{}}\nnot-a-timestamp {}\n")
        .unwrap();
    let out = argus().args(["demo", "--metrics-addr", "off", "--recording"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recording line 2"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_failing_tape_is_reported_not_silent() {
    let out = argus()
        .args(["demo", "--speed", "max", "--metrics-addr", "off", "--device", "cpu", "--record", "/dev/full"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a lost recording must fail the run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("argus report"), "the report is still printed");
    assert!(stdout.contains("tape     /dev/full  rows 0  lost 163871  FAILED"), "{stdout}");
    assert!(stderr.contains("recording to /dev/full failed (163871 events lost)"), "{stderr}");
    let missing =
        argus().args(["demo", "--metrics-addr", "off", "--record", "/no/such/dir/t.parquet"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/dir/t.parquet"));
}

#[test]
fn risk_config_files_are_validated() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["deploy/risk.example.json", "deploy/risk.example.toml"] {
        let ok = argus()
            .args(["backtest", "--recording", RECORDING, "--device", "cpu", "--risk-config"])
            .arg(root.join(file))
            .output()
            .unwrap();
        assert!(ok.status.success(), "{file}: {}", String::from_utf8_lossy(&ok.stderr));
    }
    let toml_bad = tmp("bad-risk.toml");
    std::fs::write(
        &toml_bad,
        "max_order_qty = \"0\"\nrate_window_ns = 0\norder_rate_per_venue = { per_sec = 0, burst = 0 }\n\
         [exposure]\nmax_gross_total = \"-1\"\n",
    )
    .unwrap();
    let out = argus().args(["backtest", "--recording", RECORDING, "--risk-config"]).arg(&toml_bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "max_order_qty must be positive",
        "rate_window_ns must be positive",
        "order_rate_per_venue.per_sec",
        "order_rate_per_venue.burst",
        "exposure.max_gross_total must be positive",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let bad = tmp("bad-risk.json");
    std::fs::write(&bad, r#"{"max_order_qty": "0", "price_band_bps": -3, "rate_window_ns": 0}"#).unwrap();
    let out = argus().args(["backtest", "--recording", RECORDING, "--risk-config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for msg in ["max_order_qty must be positive", "price_band_bps", "rate_window_ns must be positive"] {
        assert!(err.contains(msg), "every error at once; missing `{msg}` in {err}");
    }
    let unknown = tmp("unknown-risk.json");
    std::fs::write(&unknown, r#"{"max_qty": "1"}"#).unwrap();
    let out = argus().args(["backtest", "--recording", RECORDING, "--risk-config"]).arg(&unknown).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `max_qty`"));
}
