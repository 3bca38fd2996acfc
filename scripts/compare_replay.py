#!/usr/bin/env python3
"""Replay throughput, side by side: argus vs hftbacktest 2.4.4 vs NautilusTrader 1.221.0.

Every engine replays the same real data -- the argus catalog of the bundled Binance spot BTCUSDT
session (book levels, trades, best bid/offer) -- with its order book maintained and no strategy,
on this machine, in one run. Throughput is always "events" as the argus issue counts them
(book levels + trades + quotes) divided by the engine's replay time; conversions into each
engine's own objects happen before its clock starts.

    python3 scripts/compare_replay.py --argus target/release/argus --catalog /tmp/cat [--json out.json]

Run through `scripts/compare_replay.sh`, which makes the venv with the pinned packages.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow.dataset as ds


def load(catalog, venue, symbol):
    def table(name):
        path = os.path.join(catalog, name, f"venue={venue}", f"symbol={symbol}")
        if not os.path.isdir(path):
            return None
        return ds.dataset(path, format="parquet", partitioning="hive").to_table()

    return table("deltas"), table("trades"), table("quotes")


def argus(binary, catalog, venue, symbol, repeat):
    out = subprocess.run(
        [binary, "bench", "replay", "--catalog", catalog, "--venue", venue, "--symbol", symbol,
         "--repeat", str(repeat), "--json"],
        check=True, capture_output=True, text=True,
    )
    r = json.loads(out.stdout)
    return {"events": r["events"], "median_s": r["median_seconds"], "best_s": r["best_seconds"],
            "peak_rss_bytes": r["peak_rss_bytes"]}


def hftbacktest_events(deltas, trades, quotes):
    from hftbacktest.types import (BUY_EVENT, DEPTH_BBO_EVENT, DEPTH_CLEAR_EVENT, DEPTH_EVENT,
                                   DEPTH_SNAPSHOT_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT,
                                   TRADE_EVENT, event_dtype)
    rows = []
    d = deltas.to_pydict()
    for i in range(deltas.num_rows):
        side = BUY_EVENT if d["side"][i] == "buy" else SELL_EVENT
        action = d["action"][i]
        if action == "clear":
            ev = DEPTH_CLEAR_EVENT
        elif d["is_snapshot"][i]:
            ev = DEPTH_SNAPSHOT_EVENT
        else:
            ev = DEPTH_EVENT
        qty = 0.0 if action == "delete" else d["size"][i] / 1e9
        rows.append((EXCH_EVENT | LOCAL_EVENT | ev | side, d["ts_exchange_ns"][i], d["ts_recv_ns"][i],
                     d["price"][i] / 1e9, qty, 0, 0, 0.0))
    t = trades.to_pydict()
    for i in range(trades.num_rows):
        side = BUY_EVENT if t["aggressor"][i] == "buy" else SELL_EVENT
        rows.append((EXCH_EVENT | LOCAL_EVENT | TRADE_EVENT | side, t["ts_exchange_ns"][i], t["ts_recv_ns"][i],
                     t["price"][i] / 1e9, t["size"][i] / 1e9, 0, 0, 0.0))
    if quotes is not None:
        q = quotes.to_pydict()
        for i in range(quotes.num_rows):
            ts_x = q["ts_exchange_ns"][i] or q["ts_recv_ns"][i]
            rows.append((EXCH_EVENT | LOCAL_EVENT | DEPTH_BBO_EVENT | BUY_EVENT, ts_x, q["ts_recv_ns"][i],
                         q["bid_price"][i] / 1e9, q["bid_size"][i] / 1e9, 0, 0, 0.0))
            rows.append((EXCH_EVENT | LOCAL_EVENT | DEPTH_BBO_EVENT | SELL_EVENT, ts_x, q["ts_recv_ns"][i],
                         q["ask_price"][i] / 1e9, q["ask_size"][i] / 1e9, 0, 0, 0.0))
    arr = np.array(rows, dtype=event_dtype)
    # Snapshots carry no venue time in the capture: give them their receive time.
    zero = arr["exch_ts"] == 0
    arr["exch_ts"][zero] = arr["local_ts"][zero]
    arr = arr[np.argsort(arr["local_ts"], kind="stable")]
    # Exchange time must not run ahead of receive time, and each clock must be ordered for its side.
    arr["exch_ts"] = np.minimum(arr["exch_ts"], arr["local_ts"])
    from hftbacktest.data.validation import correct_event_order
    return correct_event_order(arr, np.argsort(arr["exch_ts"], kind="stable"),
                               np.argsort(arr["local_ts"], kind="stable"))


def hftbacktest_run(arr, roi, repeat):
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest, ROIVectorMarketDepthBacktest
    times = []
    for _ in range(repeat):
        asset = (BacktestAsset().data([arr]).linear_asset(1.0).constant_order_latency(0, 0)
                 .risk_adverse_queue_model().no_partial_fill_exchange().trading_value_fee_model(0.0, 0.0)
                 .tick_size(0.01).lot_size(0.00001).last_trades_capacity(0))
        if roi:
            px = arr["px"][arr["px"] > 0]
            asset = asset.roi_lb(float(np.floor(px.min() * 0.9))).roi_ub(float(np.ceil(px.max() * 1.1)))
            hbt = ROIVectorMarketDepthBacktest([asset])
        else:
            hbt = HashMapMarketDepthBacktest([asset])
        t = time.perf_counter()
        while hbt.elapse(3_600_000_000_000) == 0:
            pass
        times.append(time.perf_counter() - t)
        hbt.close()
    return times


def nautilus_objects(deltas, trades, quotes, batched):
    from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDeltas, QuoteTick, TradeTick
    from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.objects import Price, Quantity
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    inst = TestInstrumentProvider.btcusdt_binance()
    iid = inst.id
    px = lambda units: Price(units / 1e9, 2)
    sz = lambda units: Quantity(units / 1e9, 6)
    actions = {"add": BookAction.ADD, "update": BookAction.UPDATE, "delete": BookAction.DELETE,
               "clear": BookAction.CLEAR}
    out = []
    d = deltas.to_pydict()
    batch = []
    for i in range(deltas.num_rows):
        ts = d["ts_recv_ns"][i]
        action = actions[d["action"][i]]
        if d["action"][i] == "update" and d["size"][i] == 0:
            action = BookAction.DELETE
        side = OrderSide.BUY if d["side"][i] == "buy" else OrderSide.SELL
        flags = RecordFlag.F_LAST if d["is_last"][i] else 0
        if d["is_snapshot"][i]:
            flags |= RecordFlag.F_SNAPSHOT
        order = BookOrder(side, px(d["price"][i]), sz(d["size"][i]), 0) if action != BookAction.CLEAR else None
        delta = OrderBookDelta(iid, action, order, flags, d["sequence"][i], ts, ts)
        if batched:
            batch.append(delta)
            if d["is_last"][i]:
                out.append(OrderBookDeltas(iid, batch))
                batch = []
        else:
            out.append(delta)
    t = trades.to_pydict()
    for i in range(trades.num_rows):
        ts = t["ts_recv_ns"][i]
        side = AggressorSide.BUYER if t["aggressor"][i] == "buy" else AggressorSide.SELLER
        out.append(TradeTick(iid, px(t["price"][i]), sz(t["size"][i]), side, TradeId(str(t["trade_id"][i])), ts, ts))
    if quotes is not None:
        q = quotes.to_pydict()
        for i in range(quotes.num_rows):
            ts = q["ts_recv_ns"][i]
            out.append(QuoteTick(iid, px(q["bid_price"][i]), px(q["ask_price"][i]), sz(q["bid_size"][i]),
                                 sz(q["ask_size"][i]), ts, ts))
    return inst, out


def nautilus_run(inst, data, repeat):
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.enums import AccountType, BookType, OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money
    times = []
    for _ in range(repeat):
        engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
        engine.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.CASH,
                         base_currency=None, starting_balances=[Money(1_000_000, USDT), Money(10, BTC)],
                         book_type=BookType.L2_MBP)
        engine.add_instrument(inst)
        engine.add_data(data)
        t = time.perf_counter()
        engine.run()
        times.append(time.perf_counter() - t)
        engine.dispose()
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--argus", default="target/release/argus")
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--venue", default="binance_spot")
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    deltas, trades, quotes = load(a.catalog, a.venue, a.symbol)
    events = deltas.num_rows + trades.num_rows + (quotes.num_rows if quotes is not None else 0)
    results = {}

    def record(name, times, note, runs=None):
        med = statistics.median(times)
        results[name] = {"median_s": med, "best_s": min(times), "events_per_sec": events / med, "note": note}
        print(f"{name:<28} {events / med / 1e6:8.2f} M events/s  (median of {runs or len(times)}, {note})", flush=True)

    r = argus(a.argus, a.catalog, a.venue, a.symbol, max(a.repeat, 10))
    assert r["events"] == events, (r["events"], events)
    record("argus", [r["median_s"]], "Parquet catalog -> exact price-indexed book, one core", max(a.repeat, 10))
    arr = hftbacktest_events(deltas, trades, quotes)
    record("hftbacktest HashMap", hftbacktest_run(arr, False, a.repeat), f"{len(arr)} rows in memory")
    record("hftbacktest ROIVector", hftbacktest_run(arr, True, a.repeat), f"{len(arr)} rows in memory")
    for batched in (False, True):
        inst, data = nautilus_objects(deltas, trades, quotes, batched)
        name = "nautilus " + ("batched deltas" if batched else "one delta per level")
        record(name, nautilus_run(inst, data, max(1, a.repeat // 2)), f"{len(data)} objects, L2_MBP book")
    base = results["argus"]["events_per_sec"]
    for k, v in results.items():
        v["argus_ratio"] = base / v["events_per_sec"]
    print("\nargus / other:", ", ".join(f"{k} {v['argus_ratio']:.2f}x" for k, v in results.items() if k != "argus"))
    meta = {"events": events, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d")}
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
