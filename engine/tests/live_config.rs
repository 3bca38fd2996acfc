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
const COINBASE: &str = "coinbase/cryptofeed_COINBASE.ws.28.0.log.gz";
const BYBIT: &str = "bybit/2024-12-01_XRPUSDT_ob500.data.gz";

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

const OKX_FEED: &str = "[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\"]\n";

/// An `[[instrument]]` table for OKX's `symbol` with the given rule lines.
fn instrument(symbol: &str, rules: &str) -> String {
    format!("\n[[instrument]]\nvenue = \"okx\"\nsymbol = \"{symbol}\"\n{rules}\n")
}

#[test]
fn bad_live_configs_are_refused_clearly() {
    for (text, want) in [
        ("[[feed]]\nvenue = \"ftx\"\nsymbols = [\"BTC-USD\"]\n", "unknown venue `ftx` (one of binance-spot"),
        ("[[feed]]\nvenue = \"okx\"\nsymbols = []\n", "feed `okx` has no symbols"),
        ("trade = \"okx:ETH-USDT\"\n[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\"]\n", "not among the feeds"),
        ("[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\"]\nsymbol = \"x\"\n", "unknown field `symbol`"),
        ("[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\", \"btc-usdt\"]\n", "configured twice"),
        ("[[feed]]\nvenue = \"okx\"\nsymbols = [\"BTC-USDT\"]\nstale_after_s = -1\n", "stale_after_s must be"),
        (
            &format!("{OKX_FEED}{}", instrument("ETH-USDT", "tick = \"0.1\"\nlot = \"1\"")),
            "is not among the feeds' symbols",
        ),
        (&format!("{OKX_FEED}{}", instrument("BTC-USDT", "tick = \"0\"\nlot = \"1\"")), "tick must be > 0"),
        (&format!("{OKX_FEED}{}", instrument("BTC-USDT", "tick = \"0.1\"\nlot = \"x\"")), "lot `x`"),
        (
            &format!(
                "{OKX_FEED}{}",
                instrument("BTC-USDT", "tick = \"0.1\"\nlot = \"1\"\nmin_qty = \"5\"\nmax_qty = \"2\"")
            ),
            "max_qty is below min_qty",
        ),
        (
            &format!("{OKX_FEED}{}", instrument("BTC-USDT", "tick = \"0.1\"\nlot = \"1\"\nstep = \"1\"")),
            "unknown field `step`",
        ),
        (&format!("{OKX_FEED}{}", instrument("BTC-USDT", "lot = \"1\"")), "missing field `tick`"),
        (
            &format!(
                "{OKX_FEED}{}{}",
                instrument("BTC-USDT", "tick = \"0.1\"\nlot = \"1\""),
                instrument("btc-usdt", "tick = \"1\"\nlot = \"1\"")
            ),
            "[[instrument]] okx:btc-usdt is configured twice",
        ),
    ] {
        let text: &str = text;
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

/// `argus live --config` to the end of its feeds; its JSON report.
fn live_report(config: &Path, name: &str) -> Value {
    let report = tmp(&format!("{name}.json"));
    let out = argus()
        .args(["live", "--device", "cpu", "--control-addr", "off", "--metrics-addr", "off", "--config"])
        .arg(config)
        .arg("--report-json")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

/// The traded instrument's rules come from the venue's `exchangeInfo` when it answers, and from
/// `[[instrument]]` over it: risk checks orders against them (a minimum notional no order
/// reaches rejects every one), and the report says which rules and whose.
#[test]
fn trading_rules_come_from_the_venue_or_the_config() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let frames = RecordingReader::read_all(&data("binance_spot/btcusdt_20240808.jsonl.gz")).unwrap();
    let info = std::fs::read_to_string(data("binance_spot/exchange_info_btcusdt.json")).unwrap();
    // The venue now asks for a million USDT an order.
    let strict = info.replace(r#""minNotional":"5.00000000""#, r#""minNotional":"1000000.00000000""#);
    assert_ne!(strict, info);
    let run = |server: &ReplayServer, extra: &str, name: &str| -> Value {
        let config = tmp(&format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\nurl = \"{}\"\nrest_url = \"{}\"\nend_on_close = true\n{extra}",
                server.ws_base(),
                server.rest_base()
            ),
        )
        .unwrap();
        live_report(&config, name)
    };
    let approved = |r: &Value| r["orders"]["approved"].as_u64().unwrap();
    let rejected = |r: &Value, why: &str| r["orders"]["rejected"][why].as_u64().unwrap_or(0);

    let venue = rt.block_on(ReplayServer::start(&frames, Speed::Max, Faults::default())).unwrap();
    venue.set_exchange_info(strict);
    let r = run(&venue, "", "venue-rules");
    let rules = &r["risk"]["rules"];
    assert_eq!(rules["source"], "venue", "{rules}");
    assert_eq!(rules["min_notional"], "1000000", "{rules}");
    assert_eq!((&rules["tick"], &rules["lot"], &rules["tradable"]), (&"0.01".into(), &"0.00001".into(), &true.into()));
    assert_eq!(approved(&r), 0, "no order reaches a million USDT: {}", r["orders"]);
    assert!(rejected(&r, "min_notional") > 0, "the venue's minimum notional rejected orders: {}", r["orders"]);
    drop(venue);

    // `[[instrument]]` wins over the venue: the bundled run's own rules, orders approved again.
    let venue = rt.block_on(ReplayServer::start(&frames, Speed::Max, Faults::default())).unwrap();
    venue.set_exchange_info(info.replace(r#""minNotional":"5.00000000""#, r#""minNotional":"1000000.00000000""#));
    let own = "\n[[instrument]]\nvenue = \"binance-spot\"\nsymbol = \"BTCUSDT\"\ntick = \"0.01\"\nlot = \"0.00001\"\nmin_notional = \"5\"\n";
    let r = run(&venue, own, "config-rules");
    assert_eq!(r["risk"]["rules"]["source"], "config", "{}", r["risk"]["rules"]);
    assert_eq!(r["risk"]["rules"]["max_qty"], Value::Null, "no max_qty configured: unbounded");
    assert!(approved(&r) > 0, "{}", r["orders"]);
    assert_eq!(rejected(&r, "min_notional"), 0, "{}", r["orders"]);
    drop(venue);

    // A venue that does not answer exchangeInfo: the built-in BTCUSDT rules, said so.
    let venue = rt.block_on(ReplayServer::start(&frames, Speed::Max, Faults::default())).unwrap();
    let r = run(&venue, "", "built-in-rules");
    assert_eq!(r["risk"]["rules"]["source"], "built-in", "{}", r["risk"]["rules"]);
    assert!(approved(&r) > 0, "{}", r["orders"]);
}

/// `argus live` on one venue's capture (`venue`, `capture`, trading `symbol`; the feed's URL
/// ends in `ws_path`) with a REST server answering `rules_body`: the report's `risk.rules` and
/// the requests the server saw.
fn rules_from_rest(
    venue: &str,
    (capture, ws_path): (&str, &str),
    symbol: &str,
    rules_body: &'static str,
) -> (Value, Vec<String>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let feed = rt.block_on(CaptureServer::start(capture_frames(&[data(capture)]).unwrap(), Vec::new())).unwrap();
    let (rest, seen) = common::rest_server(rules_body);
    let config = tmp(&format!("{venue}-rules.toml"));
    std::fs::write(
        &config,
        format!(
            "trade = \"{venue}:{symbol}\"\n[[feed]]\nvenue = \"{venue}\"\nsymbols = [\"{symbol}\"]\nurl = \"{}{ws_path}\"\nrest_url = \"{rest}\"\nend_on_close = true\n",
            feed.url()
        ),
    )
    .unwrap();
    let r = live_report(&config, &format!("{venue}-rules"));
    let seen = seen.lock().unwrap().clone();
    (r["risk"]["rules"].clone(), seen)
}

/// OKX's rules come from its instruments endpoint (`rest_url`): the run asks for the traded
/// instrument by type and id, and risk checks against what the venue answered.
#[test]
fn okx_rules_come_from_its_instruments_endpoint() {
    let (rules, seen) = rules_from_rest(
        "okx",
        (OKX, ""),
        "BTC-USDT",
        r#"{"code":"0","msg":"","data":[{"instType":"SPOT","instId":"BTC-USDT","tickSz":"0.1","lotSz":"0.00000001","minSz":"0.00001","maxLmtSz":"9999999999","state":"live"}]}"#,
    );
    assert_eq!(rules["source"], "venue", "{rules}");
    assert_eq!(
        (&rules["tick"], &rules["lot"], &rules["min_qty"]),
        (&"0.1".into(), &"0.00000001".into(), &"0.00001".into())
    );
    assert_eq!(rules["max_qty"], Value::Null, "past fixed point: unbounded");
    assert_eq!(
        seen,
        ["GET /api/v5/public/instruments?instType=SPOT&instId=BTC-USDT HTTP/1.1"],
        "one request, for the traded instrument"
    );
}

/// Coinbase's come from its product (here the Exchange API's shape, as the capture's feed).
#[test]
fn coinbase_rules_come_from_its_product() {
    let (rules, seen) = rules_from_rest(
        "coinbase",
        (COINBASE, ""),
        "SKL-USD",
        r#"{"id":"SKL-USD","base_currency":"SKL","quote_currency":"USD","quote_increment":"0.0001","base_increment":"0.01",
           "min_market_funds":"1","status":"online","trading_disabled":false,"cancel_only":false}"#,
    );
    assert_eq!(rules["source"], "venue", "{rules}");
    assert_eq!(
        (&rules["tick"], &rules["lot"], &rules["min_notional"]),
        (&"0.0001".into(), &"0.01".into(), &"1".into())
    );
    assert_eq!(rules["tradable"], true, "{rules}");
    assert_eq!(seen, ["GET /api/v3/brokerage/market/products/SKL-USD HTTP/1.1"]);
}

/// Bybit's come from instruments-info, in the category the feed's URL names (linear here).
#[test]
fn bybit_rules_come_from_instruments_info_in_the_feeds_category() {
    let (rules, seen) = rules_from_rest(
        "bybit",
        (BYBIT, "/v5/public/linear"),
        "XRPUSDT",
        r#"{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"XRPUSDT","status":"Trading",
           "priceFilter":{"minPrice":"0.0001","maxPrice":"199.9998","tickSize":"0.0001"},
           "lotSizeFilter":{"maxOrderQty":"1000000","minOrderQty":"1","qtyStep":"1","minNotionalValue":"5"}}]}}"#,
    );
    assert_eq!(rules["source"], "venue", "{rules}");
    assert_eq!((&rules["tick"], &rules["lot"], &rules["max_qty"]), (&"0.0001".into(), &"1".into(), &"1000000".into()));
    assert_eq!(seen, ["GET /v5/market/instruments-info?category=linear&symbol=XRPUSDT HTTP/1.1"]);
}

/// Kraken's come from AssetPairs (every pair), the traded one found by its websocket name; a
/// pair in cancel-only mode is not tradable.
#[test]
fn kraken_rules_come_from_its_asset_pairs() {
    let (rules, seen) = rules_from_rest(
        "kraken",
        (KRAKEN, ""),
        "XBT/CHF",
        r#"{"error":[],"result":{"XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","pair_decimals":1,"lot_decimals":8,"ordermin":"0.0001","costmin":"0.5","tick_size":"0.1","status":"online"},
           "XBTCHF":{"altname":"XBTCHF","wsname":"XBT/CHF","pair_decimals":1,"lot_decimals":8,"ordermin":"0.0001","costmin":"0.5","tick_size":"0.1","status":"cancel_only"}}}"#,
    );
    assert_eq!(rules["source"], "venue", "{rules}");
    assert_eq!((&rules["tick"], &rules["min_notional"]), (&"0.1".into(), &"0.5".into()), "{rules}");
    assert_eq!(rules["tradable"], false, "cancel-only: {rules}");
    assert_eq!(seen, ["GET /0/public/AssetPairs HTTP/1.1"]);
}
