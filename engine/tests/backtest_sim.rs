//! The simulated exchange behind `argus backtest`: scripted orders fill exactly as the book
//! stood (computed here independently from the recording), latency moves that moment, resting
//! orders pay maker fees, the report files are read back by pyarrow, and the same inputs give
//! byte-identical outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use argus_core::{BookAction, InstrumentId, MarketEvent, MarketEventKind, OrderBook, Price, Qty, Side};
use argus_feeds::offline::BinanceRecording;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn recording() -> PathBuf {
    root().join("data/binance_spot/btcusdt_20240808.jsonl.gz")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("argus-sim-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const RISK: &str = r#"
max_order_qty = "5"
max_position = "10"
max_notional = "1000000"
price_band_bps = 1000
max_orders_per_window = 100
rate_window_ns = 1_000_000_000
anomaly_threshold = 1.0
max_book_age_ns = 60_000_000_000
[exposure]
max_gross_total = "10000000"
max_net_total = "10000000"
"#;

struct Order {
    ts: u64,
    side: Side,
    qty: &'static str,
    limit: Option<String>,
}

fn script(orders: &[Order]) -> String {
    orders
        .iter()
        .map(|o| {
            let side = if o.side == Side::Buy { "buy" } else { "sell" };
            match &o.limit {
                None => format!(r#"{{"ts_ns": {}, "side": "{side}", "type": "market", "qty": "{}"}}"#, o.ts, o.qty),
                Some(p) => format!(
                    r#"{{"ts_ns": {}, "side": "{side}", "type": "limit", "qty": "{}", "price": "{p}"}}"#,
                    o.ts, o.qty
                ),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn backtest(dir: &Path, script_text: &str, extra: &[&str]) -> Value {
    backtest_with(dir, script_text, RISK, extra)
}

fn backtest_with(dir: &Path, script_text: &str, risk: &str, extra: &[&str]) -> Value {
    std::fs::write(dir.join("orders.jsonl"), script_text).unwrap();
    std::fs::write(dir.join("risk.toml"), risk).unwrap();
    let report = dir.join("report");
    let o = Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg("backtest")
        .arg("--recording")
        .arg(recording())
        .args(["--strategy", "scripted", "--script"])
        .arg(dir.join("orders.jsonl"))
        .arg("--risk-config")
        .arg(dir.join("risk.toml"))
        .args(["--device", "cpu", "--metrics-addr", "off", "--control-addr", "off", "--report"])
        .arg(&report)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(report.join("summary.json")).unwrap()).unwrap()
}

/// The report's Parquet files through pyarrow, as JSON.
fn read_back(report: &Path) -> Value {
    let py = root().join(".venv/bin/python");
    let script = r#"
import sys, json, pyarrow.parquet as pq
out = {}
for t in ["orders", "fills", "equity"]:
    out[t] = [{k: str(v) for k, v in r.items()} for r in pq.read_table(f"{sys.argv[1]}/{t}.parquet").to_pylist()]
print(json.dumps(out))
"#;
    let o = Command::new(py).args(["-c", script]).arg(report).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// What a taker order gets, computed here from the recording: the book after every event received
/// at or before `arrive`, minus what earlier orders took from levels the venue has not updated since.
struct Reference {
    events: Vec<MarketEvent>,
    next: usize,
    book: OrderBook,
    taken: HashMap<(bool, i64), i64>,
}

impl Reference {
    fn new() -> Self {
        let events = BinanceRecording::open(&recording(), "BTCUSDT", InstrumentId(0)).unwrap().collect();
        Self { events, next: 0, book: OrderBook::new(5000), taken: HashMap::new() }
    }

    fn advance(&mut self, t: u64) {
        while let Some(e) = self.events.get(self.next) {
            if e.ts_recv.0 > t {
                break;
            }
            if let MarketEventKind::Delta(d) = e.kind {
                self.book.apply(&d);
                if d.action == BookAction::Clear {
                    self.taken.clear();
                } else {
                    self.taken.remove(&(d.side == Side::Buy, d.price.units()));
                }
            }
            self.next += 1;
        }
    }

    /// Limit of a market order at `ts`: the opposite touch 10 bps through, on the 0.01 tick.
    fn market_limit(&mut self, ts: u64, side: Side) -> i64 {
        self.advance(ts);
        let tick = 10_000_000_i64;
        match side {
            Side::Buy => {
                let p = self.book.best_ask().unwrap().price.units();
                (p + p * 10 / 10_000 + tick - 1).div_euclid(tick) * tick
            }
            Side::Sell => {
                let p = self.book.best_bid().unwrap().price.units();
                (p - p * 10 / 10_000).div_euclid(tick) * tick
            }
        }
    }

    /// (filled qty, notional) of a taker order arriving at `arrive`, in 1e-9 units.
    fn take(&mut self, arrive: u64, side: Side, qty: i64, limit: i64) -> (i64, i128) {
        self.advance(arrive);
        let far = side.opposite();
        let (mut left, mut notional) = (qty, 0_i128);
        let levels: Vec<_> = self.book.levels(far).collect();
        for l in levels {
            let inside = if side == Side::Buy { l.price.units() <= limit } else { l.price.units() >= limit };
            if !inside || left == 0 {
                break;
            }
            let key = (far == Side::Buy, l.price.units());
            let gone = self.taken.get(&key).copied().unwrap_or(0);
            let take = left.min(l.qty.units() - gone);
            if take <= 0 {
                continue;
            }
            notional += i128::from(l.price.units()) * i128::from(take) / 1_000_000_000;
            left -= take;
            *self.taken.entry(key).or_default() += take;
        }
        (qty - left, notional)
    }
}

fn dec(v: &Value) -> i128 {
    let s = v.as_str().unwrap();
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let neg = i.starts_with('-');
    let units = i.trim_start_matches('-').parse::<i128>().unwrap() * 1_000_000_000
        + format!("{f:0<9}")[..9].parse::<i128>().unwrap();
    if neg {
        -units
    } else {
        units
    }
}

fn market_orders(first: u64) -> Vec<Order> {
    (0..8)
        .map(|k| Order {
            ts: first + 60_000_000_000 + k * 20_000_000_000 + 123_456,
            side: if k % 2 == 0 { Side::Buy } else { Side::Sell },
            qty: "0.75",
            limit: None,
        })
        .collect()
}

fn check_market_fills(latency_ns: u64, extra: &[&str], name: &str) {
    let mut reference = Reference::new();
    let first = reference.events[0].ts_recv.0;
    let orders = market_orders(first);
    let dir = tmp(name);
    let summary = backtest(&dir, &script(&orders), extra);
    let files = read_back(&dir.join("report"));
    let fills = files["fills"].as_array().unwrap();
    assert_eq!(summary["trades"].as_u64().unwrap() as usize, fills.len());
    assert_eq!(summary["intents"], 8);
    assert_eq!(summary["approved"], 8, "{summary}");
    let mut expected = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        let limit = reference.market_limit(o.ts, o.side);
        let qty = Qty::parse(o.qty).unwrap().units();
        let (filled, notional) = reference.take(o.ts + latency_ns, o.side, qty, limit);
        assert!(filled > 0, "order {i} finds liquidity");
        expected.push((i as u64 + 1, filled, notional, o.ts + latency_ns));
    }
    assert_eq!(fills.len(), expected.len());
    for (f, (order, qty, notional, ts)) in fills.iter().zip(expected) {
        assert_eq!(f["order"].as_str().unwrap().parse::<u64>().unwrap(), order);
        assert_eq!(dec(&f["qty"]), i128::from(qty), "order {order} quantity");
        assert_eq!(dec(&f["notional"]), notional, "order {order} notional");
        // Taker fee of 1 bp, truncated to 1e-9.
        assert_eq!(dec(&f["fee"]), notional * 100 / 1_000_000, "order {order} fee");
        assert_eq!(f["maker"], "False");
        assert_eq!(f["ts_ns"].as_str().unwrap().parse::<u64>().unwrap(), ts);
    }
    // Every order is accounted for in orders.parquet with its fate.
    let rows = files["orders"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["status"] == "filled" || r["status"] == "expired"), "{rows:?}");
}

#[test]
fn scripted_market_orders_fill_against_the_book_as_it_stood() {
    check_market_fills(0, &[], "zero");
}

#[test]
fn order_latency_moves_the_fill_to_the_arrival_time() {
    // 40 ms is several depth diffs and many trades later on this recording.
    check_market_fills(40_000_000, &["--order-latency", "40ms"], "latency");
}

#[test]
fn resting_orders_pay_the_maker_fee_or_stay_open() {
    let mut reference = Reference::new();
    let first = reference.events[0].ts_recv.0;
    let t = first + 120_000_000_000;
    reference.advance(t);
    let bid = reference.book.best_bid().unwrap().price;
    let ask = reference.book.best_ask().unwrap().price;
    // A buy 5% under the market never fills; a sell at the ask joins the queue there.
    let far = Price::from_units(bid.units() / 100 * 95 / 10_000_000 * 10_000_000);
    let orders = [
        Order { ts: t, side: Side::Buy, qty: "0.01", limit: Some(far.to_string()) },
        Order { ts: t + 1, side: Side::Sell, qty: "0.01", limit: Some(ask.to_string()) },
    ];
    let dir = tmp("maker");
    let summary = backtest(&dir, &script(&orders), &["--maker-fee-bps", "-0.5", "--queue-model", "prob"]);
    assert_eq!(summary["sim"]["queue_model"], "prob:3");
    let files = read_back(&dir.join("report"));
    let rows = files["orders"].as_array().unwrap();
    assert_eq!(rows[0]["status"], "open", "the far bid rests to the end");
    assert_eq!(summary["sim"]["resting_at_end"].as_u64().unwrap(), u64::from(rows[1]["status"] == "open") + 1);
    for f in files["fills"].as_array().unwrap() {
        assert_eq!(f["order"], "2");
        assert_eq!(f["maker"], "True");
        assert_eq!(dec(&f["price"]), i128::from(ask.units()), "a maker fill is at our limit");
        // -0.5 bp: a rebate.
        assert_eq!(dec(&f["fee"]), -dec(&f["notional"]) * 50 / 1_000_000);
    }
    assert_eq!(summary["maker_fills"].as_u64().unwrap() as usize, files["fills"].as_array().unwrap().len());
}

#[test]
fn a_halt_cancels_resting_orders_through_the_venue() {
    let mut reference = Reference::new();
    let first = reference.events[0].ts_recv.0;
    let t = first + 60_000_000_000;
    reference.advance(t);
    let bid = reference.book.best_bid().unwrap().price;
    let far = Price::from_units(bid.units() / 100 * 95 / 10_000_000 * 10_000_000);
    // A resting bid far away, then a round trip whose fees (1 bp each way on ~11,000 USDT) lose
    // more than max_loss: the halt cancels the bid.
    let orders = [
        Order { ts: t, side: Side::Buy, qty: "0.01", limit: Some(far.to_string()) },
        Order { ts: t + 1_000_000_000, side: Side::Buy, qty: "0.2", limit: None },
        Order { ts: t + 2_000_000_000, side: Side::Sell, qty: "0.2", limit: None },
    ];
    let dir = tmp("halt");
    let cfg = RISK.replacen("[exposure]", "max_loss = \"1\"\ncancel_on_halt = true\n[exposure]", 1);
    let summary = backtest_with(&dir, &script(&orders), &cfg, &["--order-latency", "5ms"]);
    let report: Value = serde_json::from_slice(&std::fs::read(dir.join("report/report.json")).unwrap()).unwrap();
    assert_eq!(report["risk"]["state"], "halted", "{}", report["risk"]);
    assert_eq!(report["risk"]["halt_cancels"], 1);
    assert_eq!(summary["sim"]["cancelled"], 1);
    assert_eq!(summary["sim"]["resting_at_end"], 0);
    let files = read_back(&dir.join("report"));
    let o = &files["orders"].as_array().unwrap()[0];
    assert_eq!(o["status"], "cancelled");
    // The loss is known once the buy's fill is back (5 ms after it executed); the cancel then
    // takes 5 ms to the venue and its answer 5 ms back.
    let fill: u64 = files["fills"][0]["ts_ns"].as_str().unwrap().parse().unwrap();
    let closed: u64 = o["closed_ns"].as_str().unwrap().parse().unwrap();
    assert!(closed >= fill + 15_000_000, "fill at {fill}, cancel confirmed at {closed}");
}

#[test]
fn same_inputs_give_byte_identical_outputs() {
    let first = Reference::new().events[0].ts_recv.0;
    let text = script(&market_orders(first));
    let (a, b) = (tmp("det-a"), tmp("det-b"));
    let sa = backtest(&a, &text, &["--order-latency", "recorded", "--md-latency", "recorded"]);
    let sb = backtest(&b, &text, &["--order-latency", "recorded", "--md-latency", "recorded"]);
    for f in ["orders.parquet", "fills.parquet", "equity.parquet"] {
        let (x, y) =
            (std::fs::read(a.join("report").join(f)).unwrap(), std::fs::read(b.join("report").join(f)).unwrap());
        assert!(!x.is_empty());
        assert_eq!(x, y, "{f} differs between identical runs");
    }
    let strip = |mut v: Value| {
        let m = v.as_object_mut().unwrap();
        m.remove("wall_seconds");
        m.remove("events_per_sec");
        v
    };
    assert_eq!(strip(sa.clone()), strip(sb));
    // The summary carries the statistics the issue lists.
    for k in [
        "pnl",
        "realized",
        "unrealized",
        "fees",
        "return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "turnover",
        "trades",
        "hit_rate",
        "events_replayed",
        "events_per_sec",
    ] {
        assert!(sa.get(k).is_some(), "summary lacks {k}");
    }
    assert!(sa["events_replayed"].as_u64().unwrap() > 100_000);
    let html = std::fs::read_to_string(a.join("report/report.html")).unwrap();
    for title in ["Equity", "Drawdown", "Position", "Mid price with fills", "latency"] {
        assert!(html.contains(title), "report.html lacks {title}");
    }
    assert!(!html.contains("<script src") && !html.contains("http"), "the report opens offline");
}

#[test]
fn bad_scripts_name_every_bad_line() {
    let dir = tmp("bad");
    std::fs::write(dir.join("s.jsonl"), "{\"ts_ns\": 1, \"side\": \"buy\", \"type\": \"market\", \"qty\": \"1\"}\nnope\n{\"ts_ns\": 2, \"side\": \"up\", \"type\": \"market\", \"qty\": \"1\"}\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_argus"))
        .arg("backtest")
        .arg("--recording")
        .arg(recording())
        .args(["--strategy", "scripted", "--script"])
        .arg(dir.join("s.jsonl"))
        .args(["--metrics-addr", "off"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 bad line(s)") && err.contains("line 2") && err.contains("line 3: side `up`"), "{err}");
}

/// Trading rules for instruments argus has none built in for: an OKX catalog's BTC-USDT takes
/// no order without `--rules` and takes them with an `[[instrument]]` file; a Binance
/// `exchangeInfo` body's minimum notional rejects the bundled run's orders under it; a rules
/// file without the instrument is a clear error.
#[test]
fn rules_files_make_other_instruments_tradable() {
    let dir = tmp("rules");
    let argus = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_argus"));
        c.current_dir(root());
        c
    };
    let catalog = dir.join("catalog");
    let o = argus()
        .args(["data", "import", "--format", "raw", "--venue", "okx", "--input"])
        .arg(root().join("data/okx/cryptofeed_OKX.ws.1.0.log.gz"))
        .arg("--out")
        .arg(&catalog)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A market order before the capture's first event (no book to price it against), and two
    // inside its last second (2022-05-13, OKX venue time).
    let orders = dir.join("okx_orders.jsonl");
    std::fs::write(
        &orders,
        r#"{"ts_ns": 1, "side": "buy", "type": "market", "qty": "0.001"}
{"ts_ns": 1652459226000000000, "side": "buy", "type": "market", "qty": "0.001"}
{"ts_ns": 1652459226500000000, "side": "sell", "type": "market", "qty": "0.001"}
"#,
    )
    .unwrap();
    let okx = |extra: &[&std::ffi::OsStr]| -> std::process::Output {
        let report = dir.join("okx.json");
        let _ = std::fs::remove_file(&report);
        argus()
            .arg("backtest")
            .arg("--catalog")
            .arg(&catalog)
            .args(["--venue", "okx", "--symbol", "BTC-USDT", "--strategy", "scripted", "--script"])
            .arg(&orders)
            .args(["--device", "cpu", "--report-json"])
            .arg(&report)
            .args(extra)
            .output()
            .unwrap()
    };
    let report = || -> Value { serde_json::from_slice(&std::fs::read(dir.join("okx.json")).unwrap()).unwrap() };

    let o = okx(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give --rules"), "the run says why every order is refused");
    let r = report();
    assert_eq!(r["risk"]["rules"]["source"], "none");
    assert_eq!(r["orders"]["approved"], 0);
    assert_eq!(r["orders"]["rejected"]["unknown_instrument"], 3, "{}", r["orders"]);

    // The shipped example rules.
    let example = root().join("deploy/rules.example.toml");
    let o = okx(&["--rules".as_ref(), example.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report();
    assert_eq!(r["risk"]["rules"]["source"], "file");
    assert_eq!(r["risk"]["rules"]["tick"], "0.1");
    assert_eq!((&r["orders"]["approved"], &r["orders"]["fills"]), (&2.into(), &2.into()), "{}", r["orders"]);
    assert_eq!(r["orders"]["rejected"]["no_market"], 1, "unpriced: {}", r["orders"]);

    // The venue's own reply, saved by `argus data rules` from a loopback OKX: its instruments
    // body, with a minimum size no order meets.
    let (rest, seen) = common::rest_server(
        r#"{"code":"0","msg":"","data":[{"instType":"SPOT","instId":"BTC-USDT","tickSz":"0.1","lotSz":"0.00000001","minSz":"0.01","maxLmtSz":"9999999999","state":"live"}]}"#,
    );
    let okx_json = dir.join("okx_instruments.json");
    let fetch = |symbol: &str| {
        argus()
            .args(["data", "rules", "--venue", "okx", "--symbol", symbol, "--rest-url", &rest, "--out"])
            .arg(&okx_json)
            .output()
            .unwrap()
    };
    let o = fetch("ETH-USDT");
    assert!(!o.status.success(), "the venue does not list it");
    assert!(String::from_utf8_lossy(&o.stderr).contains("ETH-USDT"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!okx_json.exists(), "nothing saved for an instrument the reply does not hold");
    let o = fetch("BTC-USDT");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((&printed["rules"]["min_qty"], &printed["rules"]["tick"]), (&"0.01".into(), &"0.1".into()), "{printed}");
    assert_eq!(
        seen.lock().unwrap().last().map(String::as_str),
        Some("GET /api/v5/public/instruments?instType=SPOT&instId=BTC-USDT HTTP/1.1")
    );
    let o = okx(&["--rules".as_ref(), okx_json.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report();
    assert_eq!((&r["risk"]["rules"]["source"], &r["risk"]["rules"]["min_qty"]), (&"file".into(), &"0.01".into()));
    assert_eq!(r["orders"]["rejected"]["qty_out_of_range"], 2, "{}", r["orders"]);
    assert_eq!(r["pnl"]["position"], "0", "bought and sold back");

    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[instrument]]\nvenue = \"okx\"\nsymbol = \"ETH-USDT\"\ntick = \"0.01\"\nlot = \"0.000001\"\n",
    )
    .unwrap();
    let o = okx(&["--rules".as_ref(), rules.as_os_str()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no [[instrument]] for okx:BTC-USDT"), "{err}");

    // The bundled Binance run under a venue that asks for a million USDT an order.
    let info = std::fs::read_to_string(root().join("data/binance_spot/exchange_info_btcusdt.json")).unwrap();
    let strict = info.replace(r#""minNotional":"5.00000000""#, r#""minNotional":"1000000.00000000""#);
    assert_ne!(strict, info);
    let info_path = dir.join("exchange_info.json");
    std::fs::write(&info_path, strict).unwrap();
    let reference = Reference::new();
    let first = reference.events[0].ts_recv.0;
    let summary = backtest(&dir, &script(&market_orders(first)), &["--rules", info_path.to_str().unwrap()]);
    assert_eq!((&summary["intents"], &summary["approved"]), (&8.into(), &0.into()), "{summary}");
    let r: Value = serde_json::from_slice(&std::fs::read(dir.join("report/report.json")).unwrap()).unwrap();
    assert_eq!(r["risk"]["rules"]["source"], "file");
    assert_eq!(r["risk"]["rules"]["min_notional"], "1000000");
    assert_eq!(r["orders"]["rejected"]["min_notional"], 8, "{}", r["orders"]);
}
