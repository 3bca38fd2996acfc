//! `argus live --config`: three venues at once (Binance spot from the bundled recording through
//! its replay server; OKX and Kraken from real captures through loopback servers that speak
//! like those venues) into the one hot thread. The traded book and every watched book end as
//! `feeds check` builds them from the same captures, per-venue health is reported and served
//! as Prometheus metrics that pass promtool, and bad configurations are refused clearly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use argus_core::{Price, Qty};
use argus_feeds::check::{self, CheckVenue};
use argus_feeds::rawlog::MergedInputs;
use argus_feeds::recording::RecordingReader;
use argus_feeds::replay::{capture_frames, CaptureServer, Faults, ReplayServer, Speed};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn data(rel: &str) -> PathBuf {
    root().join("data").join(rel)
}

fn argus() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_argus"));
    c.current_dir(root());
    c
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("argus-live-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `[price, qty]` strings as exact fixed-point values.
fn level(v: &Value) -> (Price, Qty) {
    (Price::parse(v[0].as_str().unwrap()).unwrap(), Qty::parse(v[1].as_str().unwrap()).unwrap())
}

fn checked(venue: CheckVenue, file: &str, symbol: &str) -> ((Price, Qty), (Price, Qty)) {
    let r = check::check(venue, MergedInputs::open(&[data(file)]).unwrap());
    let b = &r.books[symbol];
    let l = |x: &Option<[String; 2]>| {
        let [p, q] = x.as_ref().unwrap();
        (Price::parse(p).unwrap(), Qty::parse(q).unwrap())
    };
    (l(&b.best_bid), l(&b.best_ask))
}

const OKX: &str = "okx/cryptofeed_OKX.ws.1.0.log.gz";
const KRAKEN: &str = "kraken/cryptofeed_KRAKEN.ws.50.0.log.gz";

#[test]
fn three_venues_feed_one_hot_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let frames = RecordingReader::read_all(&data("binance_spot/btcusdt_20240808.jsonl.gz")).unwrap();
    // Binance at 60x (about 6 s) leaves time to scrape metrics; the captures go at full speed.
    let binance = rt.block_on(ReplayServer::start(&frames, Speed::Factor(60.0), Faults::default())).unwrap();
    let okx = rt.block_on(CaptureServer::start(capture_frames(&[data(OKX)]).unwrap(), Vec::new())).unwrap();
    let kraken = rt.block_on(CaptureServer::start(capture_frames(&[data(KRAKEN)]).unwrap(), Vec::new())).unwrap();
    let config = tmp("live.toml");
    std::fs::write(
        &config,
        format!(
            r#"trade = "binance-spot:BTCUSDT"

[[feed]]
venue = "binance-spot"
symbols = ["BTCUSDT"]
url = "{}"
rest_url = "{}"
end_on_close = true

[[feed]]
venue = "okx"
symbols = ["BTC-USDT", "UNI-USD-SWAP"]
url = "{}"
end_on_close = true

[[feed]]
venue = "kraken"
symbols = ["XBT/CHF"]
url = "{}"
end_on_close = true
"#,
            binance.ws_base(),
            binance.rest_base(),
            okx.url(),
            kraken.url()
        ),
    )
    .unwrap();
    let report = tmp("live.json");
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut child = argus()
        .args(["live", "--config"])
        .arg(&config)
        .args(["--device", "cpu", "--control-addr", "off", "--metrics-addr", &addr, "--report-json"])
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut body = None;
    while Instant::now() < deadline && body.is_none() {
        if let Some(b) = common::scrape(&addr) {
            if b.contains(r#"argus_venue_frames_total{venue="okx"}"#) && b.contains(r#"venue="kraken""#) {
                body = Some(b);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{stderr}");
    let body = body.expect("per-venue metrics scraped while running");
    for name in [
        "argus_venue_connected",
        "argus_venue_gaps_total",
        "argus_venue_checksum_failures_total",
        "argus_venue_stale_instruments_total",
        "argus_venue_frame_to_queue_seconds_count",
    ] {
        assert!(body.contains(&format!("{name}{{venue=\"binance_spot\"}}")), "{name} missing:\n{body}");
    }
    assert!(body.contains(r#"argus_venue_frame_to_queue_seconds_bucket{venue="okx",le="0.00001"}"#), "{body}");
    common::assert_promtool_accepts(&body);

    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["book"]["instrument"], "BTCUSDT", "the strategy trades the configured instrument");
    for venue in ["binance_spot", "okx", "kraken"] {
        let v = &r["venues"][venue];
        assert!(v["frames"].as_u64().unwrap() > 0 && v["events"].as_u64().unwrap() > 0, "{venue}: {v}");
        assert_eq!(v["decode_errors"], 0, "{venue}");
        assert_eq!(v["checksum_failures"], 0, "{venue}");
        assert_eq!(v["stale_instruments"], 0, "{venue}: data flowed throughout");
        let (p50, p99) = (v["frame_to_queue_p50_ns"].as_u64(), v["frame_to_queue_p99_ns"].as_u64());
        assert!(p50.is_some_and(|p| p > 0) && p50 <= p99, "{venue}: frame-to-queue latency measured: {v}");
    }
    let sent: u64 = ["binance_spot", "okx", "kraken"].iter().map(|v| r["venues"][v]["events"].as_u64().unwrap()).sum();
    assert_eq!(r["events"].as_u64().unwrap(), sent, "the hot thread consumed every event of every venue");
    for (key, venue, file, symbol) in [
        ("okx:BTC-USDT", CheckVenue::Okx, OKX, "BTC-USDT"),
        ("okx:UNI-USD-SWAP", CheckVenue::Okx, OKX, "UNI-USD-SWAP"),
        ("kraken:XBT/CHF", CheckVenue::Kraken, KRAKEN, "XBT/CHF"),
    ] {
        let w = &r["watched"][key];
        assert_eq!(w["synced"], true, "{key}: {w}");
        assert_eq!((level(&w["best_bid"]), level(&w["best_ask"])), checked(venue, file, symbol), "{key}");
    }
    assert!(r["watched"]["okx:BTC-USDT"]["trades"].as_u64().unwrap() > 0);
    assert!(r["watched"].get("binance_spot:BTCUSDT").is_none(), "the traded instrument is not a watched one");
}

#[test]
fn bad_live_configs_are_refused_clearly() {
    for (text, want) in [
        ("[[feed]]\nvenue = \"ftx\"\nsymbols = [\"BTC-USD\"]\n", "unknown venue `ftx` (one of binance-spot"),
        ("[[feed]]\nvenue = \"okx\"\nsymbols = []\n", "feed `okx` has no symbols"),
        ("trade = \"okx:ETH-USDT\"\n[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\"]\n", "not among the feeds"),
        ("[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\"]\nsymbol = \"x\"\n", "unknown field `symbol`"),
        ("[[feed]]\nvenue = \"kraken\"\nsymbols = [\"XBT/USD\"]\nrest_url = \"http://x\"\n", "rest_url is for Binance"),
        ("[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\", \"btc-usdt\"]\n", "configured twice"),
        ("[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\"]\nstale_after_s = -1\n", "stale_after_s must be"),
    ] {
        let path = tmp("bad.toml");
        std::fs::write(&path, text).unwrap();
        let mut child = argus()
            .args(["live", "--metrics-addr", "off", "--control-addr", "off", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A configuration that slipped through would start connecting to the venue: fail fast.
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("accepted a bad configuration: {text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(!status.success(), "{text}");
        assert!(err.contains(want), "{text}: {err}");
    }
}
