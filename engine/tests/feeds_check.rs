//! `argus feeds check` on real captures of every venue, against reference books the test builds
//! itself from the raw JSON (serde_json values, f64-ordered levels, the venues' own strings).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(rel)
}

fn check(venue: &str, inputs: &[&str]) -> Value {
    let mut c = Command::new(env!("CARGO_BIN_EXE_argus"));
    c.args(["feeds", "check", "--venue", venue, "--json"]);
    for i in inputs {
        c.arg("--input").arg(data(i));
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The JSON frames of a capture (cryptofeed `<ts>: <frame>` lines, REST lines with their URL).
fn frames(rel: &str) -> Vec<(Option<String>, Value)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(data(rel)).unwrap()).read_to_string(&mut text).unwrap();
    text.lines()
        .filter_map(|l| {
            if l.starts_with('{') {
                return Some((None, serde_json::from_str(l).unwrap()));
            }
            let (head, rest) = l.split_once(' ')?;
            if let Some(body) = rest.strip_prefix("-> ") {
                let body = body.split_once(": ")?.1;
                return Some((Some(head.to_owned()), serde_json::from_str(body).unwrap()));
            }
            head.ends_with(':').then(|| (None, serde_json::from_str(rest).unwrap()))
        })
        .collect()
}

/// A reference L2 book: f64 bit patterns order positive prices; values keep the venue strings.
#[derive(Default, Debug)]
struct Ref {
    bids: BTreeMap<u64, (String, String)>,
    asks: BTreeMap<u64, (String, String)>,
}

impl Ref {
    fn set(&mut self, bid: bool, p: &str, q: &str) {
        let k = p.parse::<f64>().unwrap().to_bits();
        let side = if bid { &mut self.bids } else { &mut self.asks };
        if q.parse::<f64>().unwrap() == 0.0 {
            side.remove(&k);
        } else {
            side.insert(k, (p.to_owned(), q.to_owned()));
        }
    }

    fn levels(&mut self, bid: bool, v: &Value) {
        for l in v.as_array().unwrap() {
            self.set(bid, l[0].as_str().unwrap(), l[1].as_str().unwrap());
        }
    }

    fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
    }

    fn assert_matches(&self, got: &Value, name: &str) {
        let top = |l: Option<&(String, String)>| l.map_or(Value::Null, |(p, q)| serde_json::json!([p, q]));
        let num = |v: &Value| {
            v.as_array().map(|a| a.iter().map(|x| x.as_str().unwrap().parse::<f64>().unwrap()).collect::<Vec<_>>())
        };
        // Exact venue strings where the venue prints fixed precision; numerically equal always.
        assert_eq!(num(&got["best_bid"]), num(&top(self.bids.values().next_back())), "{name} best bid");
        assert_eq!(num(&got["best_ask"]), num(&top(self.asks.values().next())), "{name} best ask");
        assert_eq!(got["bid_levels"], self.bids.len(), "{name} bid levels");
        assert_eq!(got["ask_levels"], self.asks.len(), "{name} ask levels");
        assert_eq!(got["synced"], true, "{name}");
    }

    fn assert_exact(&self, got: &Value, name: &str) {
        let top = |l: Option<&(String, String)>| l.map_or(Value::Null, |(p, q)| serde_json::json!([p, q]));
        assert_eq!(got["best_bid"], top(self.bids.values().next_back()), "{name} best bid string");
        assert_eq!(got["best_ask"], top(self.asks.values().next()), "{name} best ask string");
        self.assert_matches(got, name);
    }
}

fn clean(r: &Value) {
    assert_eq!(r["errors"], 0, "{:#}", r["error_samples"]);
    assert_eq!(r["gaps"], 0);
    assert_eq!(r["checksum"]["failed"], 0);
}

#[test]
fn binance_spot_and_usdm_cryptofeed_captures() {
    for (venue, ws, http) in [
        (
            "binance-spot",
            "binance_spot/cryptofeed_BINANCE.ws.1.0.log.gz",
            "binance_spot/cryptofeed_BINANCE.http.0.0.log.gz",
        ),
        (
            "binance-usdm",
            "binance_usdm/cryptofeed_BINANCE_FUTURES.ws.1.0.log.gz",
            "binance_usdm/cryptofeed_BINANCE_FUTURES.http.0.0.log.gz",
        ),
    ] {
        let r = check(venue, &[ws, http]);
        clean(&r);
        // Reference: the snapshot, then every diff with u > lastUpdateId, in stream order.
        let mut books: BTreeMap<String, (u64, Ref)> = BTreeMap::new();
        for (url, v) in frames(http) {
            let url = url.unwrap();
            let sym = url.split("symbol=").nth(1).unwrap().split('&').next().unwrap().to_owned();
            let mut b = Ref::default();
            b.levels(true, &v["bids"]);
            b.levels(false, &v["asks"]);
            books.insert(sym, (v["lastUpdateId"].as_u64().unwrap(), b));
        }
        let mut diffs = 0;
        for (_, v) in frames(ws) {
            let d = &v["data"];
            if d["e"] != "depthUpdate" {
                continue;
            }
            diffs += 1;
            let (last, b) = books.get_mut(d["s"].as_str().unwrap()).unwrap();
            if d["u"].as_u64().unwrap() > *last {
                b.levels(true, &d["b"]);
                b.levels(false, &d["a"]);
            }
        }
        assert!(diffs > 100);
        assert_eq!(r["books"].as_object().unwrap().len(), books.len());
        for (sym, (_, b)) in &books {
            b.assert_exact(&r["books"][sym], sym);
        }
    }
}

#[test]
fn hftbacktest_capture_with_its_inline_snapshot() {
    let r = check("binance-spot", &["binance_spot/btcusdt_20240808.jsonl.gz"]);
    clean(&r);
    // Counts documented for the capture: trade x9757, bookTicker x28040, depth x3451, 1 snapshot.
    assert_eq!(r["frames"], 9757 + 28040 + 3451);
    assert_eq!(r["rest"], 1);
    assert_eq!(r["events"]["trade"], 9757);
    assert_eq!(r["events"]["quote"], 28040);
    assert_eq!(r["books"]["BTCUSDT"]["synced"], true);

    // `argus bench feeds` runs the same frames through the same path, one by one: every frame
    // timed and the same book at the end.
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["bench", "feeds", "--repeat", "1", "--json", "--input"])
        .arg(data("binance_spot/btcusdt_20240808.jsonl.gz"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&b["trade"]["frames"], &b["book_ticker"]["frames"], &b["depth"]["frames"]),
        (&9757.into(), &28040.into(), &3451.into())
    );
    assert!(b["depth"]["p50_ns"].as_u64().unwrap() > 0);
    assert!(b["depth"]["p50_ns"].as_u64() <= b["depth"]["p99_ns"].as_u64());
    assert_eq!(b["best_bid"], r["books"]["BTCUSDT"]["best_bid"]);
    assert_eq!(b["best_ask"], r["books"]["BTCUSDT"]["best_ask"]);
}

#[test]
fn kraken_v1_book_checksums_all_verify() {
    let rel = "kraken/cryptofeed_KRAKEN.ws.50.0.log.gz";
    let r = check("kraken", &[rel]);
    clean(&r);
    let mut books: BTreeMap<String, Ref> = BTreeMap::new();
    let mut checksums = 0;
    for (_, v) in frames(rel) {
        let Some(a) = v.as_array() else { continue };
        let pair = a[a.len() - 1].as_str().unwrap().to_owned();
        let b = books.entry(pair).or_default();
        for d in &a[1..a.len() - 2] {
            for (k, bid) in [("as", false), ("bs", true), ("a", false), ("b", true)] {
                if let Some(ls) = d.get(k) {
                    b.levels(bid, ls);
                }
            }
            checksums += usize::from(d.get("c").is_some());
        }
        b.truncate(1000);
    }
    assert!(checksums > 500);
    assert_eq!(r["checksum"]["ok"], checksums, "every checksum verified");
    for (pair, b) in &books {
        b.assert_exact(&r["books"][pair], pair);
    }
}

#[test]
fn kraken_v2_checksums_verify_on_real_and_documented_books() {
    let r = check("kraken", &["kraken/snippets_real_kraken_v2_book.jsonl"]);
    clean(&r);
    assert_eq!(r["checksum"]["ok"], 3, "ETH/USD snapshot + update and a re-serialised BTC/USD snapshot");
    // The documentation's MATIC/USD snapshot and update, one frame a line.
    let dir = std::env::temp_dir().join(format!("argus-kraken-v2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("matic.jsonl");
    let mut text = String::new();
    for name in ["kraken_v2_doc_book_snapshot_MATICUSD.json", "kraken_v2_doc_book_update_MATICUSD.json"] {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(data(&format!("kraken/{name}"))).unwrap()).unwrap();
        text.push_str(&v.to_string());
        text.push('\n');
    }
    std::fs::write(&f, text).unwrap();
    let r = check("kraken", &[f.to_str().unwrap()]);
    clean(&r);
    assert_eq!(r["checksum"]["ok"], 2);
    assert_eq!(r["books"]["MATIC/USD"]["best_bid"], serde_json::json!(["0.5666", "4831.75496356"]));
}

#[test]
fn coinbase_okx_and_bybit_captures() {
    // Coinbase Exchange feed: snapshot then l2update changes.
    let rel = "coinbase/cryptofeed_COINBASE.ws.28.0.log.gz";
    let r = check("coinbase", &[rel]);
    clean(&r);
    let mut books: BTreeMap<String, Ref> = BTreeMap::new();
    for (_, v) in frames(rel) {
        let Some(p) = v["product_id"].as_str() else { continue };
        match v["type"].as_str().unwrap() {
            "snapshot" => {
                let b = books.entry(p.to_owned()).or_default();
                b.levels(true, &v["bids"]);
                b.levels(false, &v["asks"]);
            }
            "l2update" => {
                for c in v["changes"].as_array().unwrap() {
                    let b = books.get_mut(p).unwrap();
                    b.set(c[0] == "buy", c[1].as_str().unwrap(), c[2].as_str().unwrap());
                }
            }
            _ => {}
        }
    }
    assert_eq!(books.len(), 10);
    for (p, b) in &books {
        b.assert_matches(&r["books"][p], p);
    }

    // OKX: books snapshot/update, every checksum verified.
    let rel = "okx/cryptofeed_OKX.ws.1.0.log.gz";
    let r = check("okx", &[rel]);
    clean(&r);
    let mut books: BTreeMap<String, Ref> = BTreeMap::new();
    let mut checksums = 0;
    for (_, v) in frames(rel) {
        if v["arg"]["channel"] != "books" || v.get("data").is_none() {
            continue;
        }
        let b = books.entry(v["arg"]["instId"].as_str().unwrap().to_owned()).or_default();
        if v["action"] == "snapshot" {
            *b = Ref::default();
        }
        for d in v["data"].as_array().unwrap() {
            b.levels(true, &d["bids"]);
            b.levels(false, &d["asks"]);
            checksums += usize::from(d.get("checksum").is_some());
        }
    }
    assert_eq!(r["checksum"]["ok"], checksums);
    assert!(checksums > 20);
    for (i, b) in &books {
        b.assert_exact(&r["books"][i], i);
    }

    // Bybit: one 500-level snapshot and 49 deltas with u + 1 each.
    let rel = "bybit/2024-12-01_XRPUSDT_ob500.data.gz";
    let r = check("bybit", &[rel]);
    clean(&r);
    let mut b = Ref::default();
    for (_, v) in frames(rel) {
        b.levels(true, &v["data"]["b"]);
        b.levels(false, &v["data"]["a"]);
    }
    b.assert_exact(&r["books"]["XRPUSDT"], "XRPUSDT");
}

#[test]
fn bad_input_is_counted_with_its_line_and_unknown_venues_are_refused() {
    let dir = std::env::temp_dir().join(format!("argus-feeds-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.jsonl");
    std::fs::write(
        &f,
        "{\"arg\":{\"channel\":\"books\",\"instId\":\"X\"},\"action\":\"update\",\"data\":[{\"bids\":[],\"asks\":[]}]}\n\
         not a frame\n{\"arg\":{\"channel\":\"books\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["feeds", "check", "--venue", "okx", "--json", "--input"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["errors"], 3, "{r:#}");
    let samples = r["error_samples"].to_string();
    assert!(
        samples.contains("bad.jsonl:2") && samples.contains("line 3") && samples.contains("before its snapshot"),
        "{samples}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["feeds", "check", "--venue", "mtgox", "--input"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A missing input is named, and the system's reason is said once.
    let missing = dir.join("missing.jsonl.gz");
    for args in [&["feeds", "check", "--venue", "okx", "--input"][..], &["bench", "feeds", "--venue", "okx", "--input"]]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_argus")).args(args).arg(&missing).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("cannot open `{}`", missing.display())), "{err}");
        assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    }
}
