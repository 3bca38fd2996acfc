//! `argus data import` into the catalog, read back with pyarrow and checked against the source
//! files parsed independently (Python's `decimal`), including rejected rows and their reasons.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(rel)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("argus-import-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn import(args: &[&str], inputs: &[PathBuf], out: &Path) -> Value {
    let mut c = Command::new(env!("CARGO_BIN_EXE_argus"));
    c.args(["data", "import"]).args(args).arg("--out").arg(out);
    for i in inputs {
        c.arg("--input").arg(i);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn python(script: &str, args: &[&Path]) -> String {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let o = Command::new(py).args(["-c", script]).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn tardis_csvs_land_exactly_in_the_catalog() {
    let out = tmp("tardis");
    let files: Vec<PathBuf> = [
        "tardis/bitmex_trades_XBTUSD.csv",
        "tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv",
        "tardis/binance-futures_book_snapshot_5_BTCUSDT.csv",
        "tardis/huobi-dm-swap_quotes_BTC-USD.csv",
    ]
    .iter()
    .map(|f| data(f))
    .collect();
    let r = import(&["--format", "tardis"], &files, &out);
    assert_eq!(r["rows_read"], 45);
    assert_eq!(r["rows_rejected"], 0);
    // 10 trades, 15 L2 rows + 1 clear, 10 snapshots x (1 clear + 10 levels), 10 quotes.
    assert_eq!(r["rows_written"], 10 + 16 + 110 + 10);
    let script = r#"
import sys, csv, decimal, pyarrow.dataset as ds
root, src = sys.argv[1], sys.argv[2]
D = decimal.Decimal
def table(t):
    return ds.dataset(f"{root}/{t}", format="parquet", partitioning="hive").to_table().to_pylist()
trades = table("trades")
rows = list(csv.DictReader(open(f"{src}/bitmex_trades_XBTUSD.csv")))
assert [t["price"] for t in trades] == [int(D(r["price"]) * 10**9) for r in rows]
assert [t["size"] for t in trades] == [int(D(r["amount"]) * 10**9) for r in rows]
assert [t["aggressor"] for t in trades] == [r["side"] for r in rows]
assert [t["ts_exchange_ns"] for t in trades] == [int(r["timestamp"]) * 1000 for r in rows]
deltas = [d for d in table("deltas") if d["venue"] == "deribit"]
l2 = list(csv.DictReader(open(f"{src}/deribit_incremental_book_L2_BTC-PERPETUAL.csv")))
assert deltas[0]["action"] == "clear" and deltas[0]["is_snapshot"]
assert [(d["side"], d["price"], d["size"]) for d in deltas[1:]] == [("buy" if r["side"] == "bid" else "sell", int(D(r["price"]) * 10**9), int(D(r["amount"]) * 10**9)) for r in l2]
# One `is_last` per exchange message (rows sharing local_timestamp).
assert sum(d["is_last"] for d in deltas) == len({r["local_timestamp"] for r in l2})
snaps = [d for d in table("deltas") if d["venue"] == "binance-futures"]
assert sum(d["action"] == "clear" for d in snaps) == 10 and sum(d["is_last"] for d in snaps) == 10
quotes = table("quotes")
q = list(csv.DictReader(open(f"{src}/huobi-dm-swap_quotes_BTC-USD.csv")))
assert [x["ask_price"] for x in quotes] == [int(D(r["ask_price"]) * 10**9) for r in q]
print("ok")
"#;
    assert_eq!(python(script, &[&out, &data("tardis")]), "ok");
}

#[test]
fn raw_binance_capture_imports_every_event_and_bad_rows_are_counted() {
    let out = tmp("raw");
    let r = import(
        &["--format", "raw", "--venue", "binance-spot"],
        &[data("binance_spot/btcusdt_20240808.jsonl.gz")],
        &out,
    );
    assert_eq!(r["rows_rejected"], 0);
    let counts = python(
        "import sys, pyarrow.dataset as ds\nprint(*[ds.dataset(f'{sys.argv[1]}/{t}', format='parquet', partitioning='hive').count_rows() for t in ['trades','quotes','deltas']])",
        &[&out],
    );
    let n: Vec<u64> = counts.split(' ').map(|x| x.parse().unwrap()).collect();
    assert_eq!(&n[..2], &[9757, 28040]);
    assert_eq!(n.iter().sum::<u64>(), r["rows_written"].as_u64().unwrap());

    // Binance public-data trades (synthetic rows in the documented layout, both timestamp eras)
    // with two bad rows: each is rejected with its reason, the rest imported.
    let dir = tmp("csv-src");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("BTCUSDT-trades-2025-01-01.csv");
    std::fs::write(
        &f,
        "1,61837.63,0.02,1236.75,1723161255342,true,true\n\
         2,61837.64,0.01,618.37,1735689600123456,false,true\n\
         3,not-a-price,0.01,1,1735689600123457,false,true\n\
         4,61837.65,0.01,618.37,1735689600123458,maybe,true\n",
    )
    .unwrap();
    let out = tmp("csv");
    let r = import(&["--format", "binance-csv"], &[f], &out);
    assert_eq!(
        (r["rows_read"].as_u64(), r["rows_written"].as_u64(), r["rows_rejected"].as_u64()),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(r["rejected"]["bad id, price or quantity"], 1);
    assert_eq!(r["rejected"]["bad is_buyer_maker"], 1);
    let got = python(
        "import sys, pyarrow.dataset as ds\nt = ds.dataset(f'{sys.argv[1]}/trades', format='parquet', partitioning='hive').to_table().sort_by('trade_id')\nprint(t.column('ts_exchange_ns').to_pylist(), t.column('aggressor').to_pylist(), sorted(set(t.column('date').to_pylist())))",
        &[&out],
    );
    assert_eq!(got, "[1723161255342000000, 1735689600123456000] ['sell', 'buy'] ['2024-08-08', '2025-01-01']");
}

#[test]
fn backtest_from_the_catalog_equals_the_backtest_of_the_raw_recording() {
    let out = tmp("bt-catalog");
    let rec = data("binance_spot/btcusdt_20240808.jsonl.gz");
    import(&["--format", "raw", "--venue", "binance-spot"], std::slice::from_ref(&rec), &out);
    let run = |args: &[&str]| -> Value {
        let dir = tmp(&format!("bt-report-{}", args.len()));
        let o = Command::new(env!("CARGO_BIN_EXE_argus"))
            .args(["backtest", "--device", "cpu", "--metrics-addr", "off", "--report"])
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
    };
    let from_catalog = run(&["--catalog", out.to_str().unwrap(), "--venue", "binance_spot", "--symbol", "BTCUSDT"]);
    let from_raw = run(&["--recording", rec.to_str().unwrap()]);
    assert_eq!(from_catalog["events"], from_raw["events"]);
    assert_eq!(from_catalog["orders"], from_raw["orders"]);
    assert_eq!(from_catalog["pnl"], from_raw["pnl"]);
    assert!(from_catalog["orders"]["approved"].as_u64().unwrap() > 0);
    // A time window replays only its part of the day.
    let part = run(&[
        "--catalog",
        out.to_str().unwrap(),
        "--symbol",
        "BTCUSDT",
        "--from",
        "2024-08-08T23:58:00",
        "--to",
        "2024-08-09T00:00:00",
    ]);
    let (n, all) = (part["events"].as_u64().unwrap(), from_catalog["events"].as_u64().unwrap());
    assert!(n > 0 && n < all, "{n} of {all}");
    // Unknown symbols are a clear error.
    let o = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["backtest", "--device", "cpu", "--catalog", out.to_str().unwrap(), "--symbol", "ETHUSDT"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no catalog data"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn sweep_runs_every_combination_and_the_default_point_matches_a_plain_backtest() {
    let rec = data("binance_spot/btcusdt_20240808.jsonl.gz");
    let dir = tmp("sweep");
    let o = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["backtest", "--device", "cpu", "--metrics-addr", "off", "--recording"])
        .arg(&rec)
        .args(["--sweep", "entry_bps=0.4,0.6", "--sweep", "target_qty=0.01,0.02", "--report"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(rows.len(), 4);
    let plain_dir = tmp("sweep-plain");
    let p = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["backtest", "--device", "cpu", "--metrics-addr", "off", "--recording"])
        .arg(&rec)
        .arg("--report")
        .arg(&plain_dir)
        .output()
        .unwrap();
    assert!(p.status.success());
    let plain: Value = serde_json::from_str(&std::fs::read_to_string(plain_dir.join("report.json")).unwrap()).unwrap();
    // The defaults are entry_bps 0.6 and target_qty 0.01.
    let default = rows.iter().find(|r| r["params"]["entry_bps"] == 0.6 && r["params"]["target_qty"] == 0.01).unwrap();
    assert_eq!(default["orders"], plain["orders"]);
    assert_eq!(default["pnl"], plain["pnl"]);
    // A bigger target trades the same intents at twice the size.
    let double = rows.iter().find(|r| r["params"]["entry_bps"] == 0.6 && r["params"]["target_qty"] == 0.02).unwrap();
    assert_eq!(double["orders"]["intents"], plain["orders"]["intents"]);
    assert_ne!(double["pnl"]["fees"], plain["pnl"]["fees"]);
    let bad = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["backtest", "--device", "cpu", "--recording"])
        .arg(&rec)
        .args(["--sweep", "nonsense=1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown field `nonsense`"));
}

#[test]
fn binance_klines_land_exactly_in_the_bars_table() {
    let out = tmp("klines");
    let dir = tmp("klines-src");
    std::fs::create_dir_all(&dir).unwrap();
    // The two real days, plus a copy of the first with one broken row.
    let src = std::fs::read_to_string(data("binance_csv/ADABTC-1m-2021-11-27.csv")).unwrap();
    let broken = dir.join("ADABTC-1m-2021-11-26.csv");
    std::fs::write(
        &broken,
        "1637884800000,0.1,0.05,0.2,0.1,1,1637884859999,1,1,1,1,0\n1637884860000,x,1,1,1,1,1637884919999,1,1,1,1,0\n",
    )
    .unwrap();
    let files = [data("binance_csv/ADABTC-1m-2021-11-27.csv"), data("binance_csv/ADABTC-1m-2021-11-28.csv"), broken];
    let r = import(&["--format", "binance-csv", "--symbol", "ADABTC"], &files, &out);
    assert_eq!(r["rows_read"], 10 + 11 + 2);
    assert_eq!(r["rows_written"], 21);
    assert_eq!(r["rows_rejected"], 2);
    assert_eq!(r["rejected"]["inconsistent high/low"], 1);
    assert_eq!(r["rejected"]["bad price or volume"], 1);
    assert!(src.lines().count() == 10);
    let script = r#"
import sys, csv, decimal, pyarrow.dataset as ds, pyarrow.parquet as pq
root, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
D = decimal.Decimal
rows = ds.dataset(f"{root}/bars", format="parquet", partitioning="hive").to_table().sort_by("ts_open_ns").to_pylist()
src = [r for f in (a, b) for r in csv.reader(open(f))]
assert len(rows) == len(src) == 21, len(rows)
for r, s in zip(rows, src):
    assert r["ts_open_ns"] == int(s[0]) * 1_000_000 and r["ts_close_ns"] == int(s[6]) * 1_000_000
    for col, i in [("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5), ("quote_volume", 7),
                   ("taker_buy_volume", 9), ("taker_buy_quote_volume", 10)]:
        assert D(r[col]) / D(10**9) == D(s[i]), (col, r[col], s[i])
    assert r["trades"] == int(s[8]) and r["interval"] == "1m"
    assert r["symbol"] == "ADABTC" and r["venue"] == "binance_spot"
f = ds.dataset(f"{root}/bars", format="parquet", partitioning="hive").files
meta = pq.read_schema(f[0]).metadata
assert meta[b"argus.scale"] == b"9" and meta[b"argus.interval"] == b"1m"
print(len(rows), sorted(set(str(x["date"]) for x in rows)))
"#;
    let outp = python(
        script,
        &[&out, &data("binance_csv/ADABTC-1m-2021-11-27.csv"), &data("binance_csv/ADABTC-1m-2021-11-28.csv")],
    );
    assert_eq!(outp, "21 ['2021-11-27', '2021-11-28']");
}

#[test]
fn nautilus_catalog_parquet_lands_exactly() {
    // data/nautilus was written by nautilus_trader 1.221.0's own ParquetDataCatalog
    // (scripts/make_nautilus_fixture.py): 128-bit fixed-point columns at 1e16.
    let out = tmp("nautilus");
    let r = import(&["--format", "nautilus"], &[data("nautilus")], &out);
    assert_eq!(r["rows_read"], 12_000 + 300 + 200);
    assert_eq!(r["rows_written"], 12_500);
    assert_eq!(r["rows_rejected"], 0);
    let script = r#"
import sys, glob, pyarrow.dataset as ds, pyarrow.parquet as pq
root, src = sys.argv[1], sys.argv[2]
def ours(t):
    return ds.dataset(f"{root}/{t}", format="parquet", partitioning="hive").to_table().to_pylist()
def theirs(kind):
    [f] = glob.glob(f"{src}/data/{kind}/*/*.parquet")
    return pq.read_table(f).to_pylist()
fx = lambda b: int.from_bytes(b, "little", signed=True) // 10**7
n = 0
for a, b in zip(ours("trades"), theirs("trade_tick")):
    assert (a["price"], a["size"]) == (fx(b["price"]), fx(b["size"])), (a, b)
    assert a["aggressor"] == {1: "buy", 2: "sell"}[b["aggressor_side"]] and a["trade_id"] == int(b["trade_id"])
    assert (a["ts_exchange_ns"], a["ts_recv_ns"]) == (b["ts_event"], b["ts_init"])
    assert a["venue"] == "binance" and a["symbol"] == "BTCUSDT"
    n += 1
acts = {1: "add", 2: "update", 3: "delete", 4: "clear"}
for a, b in zip(ours("deltas"), theirs("order_book_delta")):
    assert a["action"] == acts[b["action"]] and a["sequence"] == b["sequence"], (a, b)
    if b["action"] != 4:
        assert (a["price"], a["size"]) == (fx(b["price"]), fx(b["size"])) and a["side"] == {1: "buy", 2: "sell"}[b["side"]]
    assert a["is_last"] == bool(b["flags"] & 128) and a["is_snapshot"] == bool(b["flags"] & 32)
    n += 1
for a, b in zip(ours("quotes"), theirs("quote_tick")):
    assert (a["bid_price"], a["ask_price"], a["bid_size"], a["ask_size"]) == tuple(fx(b[k]) for k in ("bid_price", "ask_price", "bid_size", "ask_size"))
    n += 1
print(n)
"#;
    assert_eq!(python(script, &[&out, &data("nautilus")]), "12500");
    // The imported catalog replays: the book is whole after the snapshot.
    let o = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["bench", "replay", "--venue", "binance", "--symbol", "BTCUSDT", "--repeat", "1", "--json", "--catalog"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["events"], 12_500);
}

#[test]
fn sweeps_reach_risk_limits_too() {
    let rec = data("binance_spot/btcusdt_20240808.jsonl.gz");
    let dir = tmp("sweep-risk");
    let o = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["backtest", "--device", "cpu", "--metrics-addr", "off", "--recording"])
        .arg(&rec)
        .args(["--sweep", "risk.max_order_qty=0.005,0.05", "--report"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    let by = |q: &str| rows.iter().find(|r| r["params"]["risk.max_order_qty"] == q.parse::<f64>().unwrap()).unwrap();
    // Every intent is 0.01 or more: a 0.005 limit refuses them all, by that reason.
    let tight = by("0.005");
    assert_eq!(tight["orders"]["approved"], 0);
    assert_eq!(tight["orders"]["rejected"]["max_order_qty"], tight["orders"]["intents"]);
    assert!(by("0.05")["orders"]["approved"].as_u64().unwrap() > 0);
    let bad = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["backtest", "--device", "cpu", "--recording"])
        .arg(&rec)
        .args(["--sweep", "risk.max_orderqty=1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("max_orderqty"), "{}", String::from_utf8_lossy(&bad.stderr));
}

/// Copies every part of `src` into `dst` shifted by 0..days days (timestamps and date
/// partition), a month of catalog from one session.
const SHIFT: &str = r#"
import sys, glob, os, datetime, pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc
src, dst, days = sys.argv[1], sys.argv[2], int(sys.argv[3])
DAY = 86_400 * 10**9
for path in glob.glob(f"{src}/*/venue=*/symbol=*/date=*/*.parquet"):
    table, venue, symbol, date, name = os.path.relpath(path, src).split(os.sep)
    t = pq.read_table(path)
    d0 = datetime.date.fromisoformat(date.split("=")[1])
    for k in range(days):
        cols = [pc.add(t[c], pa.scalar(k * DAY, pa.uint64())) if c.startswith("ts_") else t[c] for c in t.column_names]
        d = f"{dst}/{table}/{venue}/{symbol}/date={d0 + datetime.timedelta(days=k)}"
        os.makedirs(d, exist_ok=True)
        pq.write_table(pa.Table.from_arrays(cols, schema=t.schema), f"{d}/{name}", compression="zstd")
"#;

fn replay(catalog: &Path) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["bench", "replay", "--repeat", "1", "--json", "--catalog"])
        .arg(catalog)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Replay streams: a 30-day catalog replays in the memory one day takes (parts are opened when
/// the merge reaches them and closed when done), and every event of every day comes through.
#[test]
fn replay_memory_stays_flat_over_a_month() {
    let day = tmp("one-day");
    import(&["--format", "raw", "--venue", "binance-spot"], &[data("binance_spot/btcusdt_20240808.jsonl.gz")], &day);
    let month = tmp("month");
    python(SHIFT, &[&day, &month, Path::new("30")]);
    let (one, thirty) = (replay(&day), replay(&month));
    assert_eq!(thirty["events"].as_u64().unwrap(), 30 * one["events"].as_u64().unwrap());
    // pyarrow's parts (its page headers carry statistics) go through argus's own page reader
    // like argus's, and every day ends in the same book: the values decoded are the same.
    assert_eq!((one["parts"].as_u64(), one["parts_paged"].as_u64()), (Some(3), Some(3)), "{one}");
    assert_eq!((thirty["parts"].as_u64(), thirty["parts_paged"].as_u64()), (Some(90), Some(90)), "{thirty}");
    assert_eq!((one["bad_rows"].as_u64(), thirty["bad_rows"].as_u64()), (Some(0), Some(0)));
    assert_eq!(thirty["book_digest"], one["book_digest"]);
    let (a, b) = (one["peak_rss_bytes"].as_u64().unwrap(), thirty["peak_rss_bytes"].as_u64().unwrap());
    // Holding every part open (a decoded batch each) grew ~3.4 MiB a day: ~100 MiB here.
    assert!(b < a + (24 << 20), "peak RSS {} MiB for 30 days vs {} MiB for one", b >> 20, a >> 20);
}
