//! The kill switch on a running engine: HTTP (with and without the token), the CLI and SIGUSR1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use argus_engine::control::request;
use serde_json::Value;

const TOKEN: &str = "t0ken-for-tests";

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("argus-risk-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn argus() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_argus"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

fn demo(control: &str, report: &PathBuf) -> Child {
    argus()
        .args([
            "demo",
            "--speed",
            "40",
            "--metrics-addr",
            "off",
            "--device",
            "cpu",
            "--control-addr",
            control,
            "--report-json",
        ])
        .arg(report)
        .env("ARGUS_CONTROL_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_until_up(control: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if matches!(request(control, "GET", "/risk/state", Some(TOKEN)), Ok((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("control endpoint never came up");
}

fn report(child: Child, path: &PathBuf) -> Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn halt_over_http_stops_approvals_mid_stream() {
    let control = free_addr();
    let path = tmp("http-halt.json");
    let child = demo(&control, &path);
    wait_until_up(&control);
    assert_eq!(request(&control, "POST", "/risk/halt", None).unwrap().0, 401);
    assert_eq!(request(&control, "POST", "/risk/halt", Some("wrong")).unwrap().0, 401);
    assert_eq!(request(&control, "GET", "/risk/state", None).unwrap().0, 401);
    // Let the strategy trade for a while (about 80 s of the session).
    std::thread::sleep(Duration::from_secs(2));
    let cli =
        argus().args(["risk", "halt", "--control-addr", &control]).env("ARGUS_CONTROL_TOKEN", TOKEN).output().unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert!(String::from_utf8_lossy(&cli.stdout).contains(r#""state":"halted""#));
    let r = report(child, &path);
    assert_eq!(r["risk"]["state"], "halted");
    let t = &r["risk"]["transitions"][0];
    assert_eq!(t["state"], "halted");
    let approved_before = t["approved_before"].as_u64().unwrap();
    assert!(approved_before > 0, "the halt came after some approvals: {r}");
    assert_eq!(r["orders"]["approved"].as_u64().unwrap(), approved_before, "nothing approved after the halt");
    assert!(r["orders"]["rejected"]["halted"].as_u64().unwrap() > 0, "later intents were rejected as halted");
}

#[test]
fn control_token_can_come_from_the_risk_config() {
    let control = free_addr();
    let cfg = tmp("token-risk.toml");
    std::fs::write(&cfg, "control_token = \"from-the-file\"\nmax_position = \"0.02\"\n").unwrap();
    let mut child = argus()
        .args(["demo", "--speed", "10", "--metrics-addr", "off", "--device", "cpu", "--control-addr", &control])
        .arg("--risk-config")
        .arg(&cfg)
        .env_remove("ARGUS_CONTROL_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut up = false;
    while !up && Instant::now() < deadline {
        up = matches!(request(&control, "GET", "/risk/state", Some("from-the-file")), Ok((200, _)));
        std::thread::sleep(Duration::from_millis(50));
    }
    let without = request(&control, "POST", "/risk/halt", None).map(|r| r.0);
    let wrong = request(&control, "POST", "/risk/halt", Some(TOKEN)).map(|r| r.0);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(up, "endpoint never answered the file's token");
    assert_eq!(without.unwrap(), 401);
    assert_eq!(wrong.unwrap(), 401);
}

#[test]
fn sigusr1_halts_and_resume_is_refused_without_the_token() {
    let control = free_addr();
    let path = tmp("sigusr1.json");
    let child = demo(&control, &path);
    wait_until_up(&control);
    std::thread::sleep(Duration::from_millis(500));
    assert!(Command::new("kill").args(["-USR1", &child.id().to_string()]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    let (code, body) = request(&control, "GET", "/risk/state", Some(TOKEN)).unwrap();
    assert_eq!((code, body.contains("halted")), (200, true), "{body}");
    let no_token = argus()
        .args(["risk", "resume", "--control-addr", &control])
        .env_remove("ARGUS_CONTROL_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("HTTP 401"));
    let r = report(child, &path);
    assert_eq!(r["risk"]["state"], "halted");
    assert!(r["orders"]["rejected"]["halted"].as_u64().unwrap() > 0);
}

#[test]
fn every_risk_decision_is_audited() {
    let jsonl = tmp("audit.jsonl");
    let report_path = tmp("audit-report.json");
    // A tight order-rate limit, so that the log holds approvals and rejections both.
    let limits = tmp("rate-limit.toml");
    std::fs::write(&limits, "max_orders_per_window = 2\nrate_window_ns = 120_000_000_000\n").unwrap();
    let out = argus()
        .args([
            "demo",
            "--speed",
            "max",
            "--metrics-addr",
            "off",
            "--control-addr",
            "off",
            "--device",
            "cpu",
            "--risk-config",
        ])
        .arg(&limits)
        .arg("--audit")
        .arg(&jsonl)
        .arg("--report-json")
        .arg(&report_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let lines: Vec<Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, r["orders"]["intents"].as_u64().unwrap());
    assert_eq!(r["audit"]["records"], lines.len());
    assert_eq!(r["audit"]["dropped"], 0);
    let approved = lines.iter().filter(|l| l["outcome"] == "approved").count() as u64;
    assert_eq!(approved, r["orders"]["approved"].as_u64().unwrap());
    assert!(approved > 0 && approved < lines.len() as u64, "approvals and rejections: {approved} of {}", lines.len());
    for l in lines.iter().filter(|l| l["outcome"] == "rejected") {
        let reason = l["reason"].as_str().unwrap();
        assert!(r["orders"]["rejected"][reason].as_u64().unwrap() > 0, "reason {reason} not in the report");
    }
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=lines.len() as u64).collect::<Vec<_>>(), "in order, none missing");
    for l in &lines {
        // Approvals ran every check; a rejection names the check that refused.
        let ran = l["checks_run"].as_u64().unwrap() as usize;
        assert_eq!(l["last_check"], argus_risk::CHECKS[ran - 1]);
        if l["outcome"] == "approved" {
            assert_eq!(ran, argus_risk::CHECKS.len());
        }
    }

    // The same decisions as Parquet, from a backtest, read back by pyarrow.
    let parquet = tmp("audit.parquet");
    let recording = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_spot/btcusdt_20240808.jsonl.gz");
    let bt = argus()
        .args(["backtest", "--device", "cpu", "--recording", recording, "--risk-config"])
        .arg(&limits)
        .arg("--audit")
        .arg(&parquet)
        .output()
        .unwrap();
    assert!(bt.status.success(), "{}", String::from_utf8_lossy(&bt.stderr));
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let py = Command::new(python)
        .args(["-c", "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows, t.column('outcome').to_pylist().count('approved'))"])
        .arg(&parquet)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), format!("{} {}", lines.len(), approved));

    // Rotation: 20 records per part, every part a complete Parquet file, nothing lost or doubled.
    let rotated = tmp("rotated.parquet");
    let rotated_report = tmp("rotated-report.json");
    let bt = argus()
        .args([
            "backtest",
            "--device",
            "cpu",
            "--recording",
            recording,
            "--audit-rotate-records",
            "20",
            "--risk-config",
        ])
        .arg(&limits)
        .arg("--audit")
        .arg(&rotated)
        .arg("--report-json")
        .arg(&rotated_report)
        .output()
        .unwrap();
    assert!(bt.status.success(), "{}", String::from_utf8_lossy(&bt.stderr));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&rotated_report).unwrap()).unwrap();
    let files: Vec<String> =
        r["audit"]["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();
    let n = lines.len();
    assert_eq!(files.len(), n.div_ceil(20), "{files:?}");
    assert_eq!(files[1], tmp("rotated.1.parquet").display().to_string());
    let py = Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
        .args(["-c", "import sys, pyarrow.parquet as pq; print(' '.join(str(pq.read_table(f).num_rows) for f in sys.argv[1:]), sum(pq.read_table(f).column('seq').to_pylist() == sorted(pq.read_table(f).column('seq').to_pylist()) for f in sys.argv[1:]))"])
        .args(&files)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let mut want: Vec<String> = (0..files.len()).map(|i| (n - i * 20).min(20).to_string()).collect();
    want.push(files.len().to_string());
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), want.join(" "));

    // A failing audit file fails the run, with the count of what it lost.
    let full = argus()
        .args([
            "demo",
            "--speed",
            "max",
            "--metrics-addr",
            "off",
            "--control-addr",
            "off",
            "--device",
            "cpu",
            "--audit",
            "/dev/full",
        ])
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&full.stderr).contains("audit log /dev/full failed"),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
}
