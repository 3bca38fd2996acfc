#!/usr/bin/env python3
"""Writes data/nautilus/: a NautilusTrader 1.221.0 ParquetDataCatalog made by nautilus_trader itself
from the start of the bundled Binance spot session (argus catalog -> Nautilus objects -> its catalog
writer), to test `argus data import --format nautilus` against the real encoding.

    bash scripts/compare_replay.sh   # makes .venv-compare with nautilus_trader
    .venv-compare/bin/python scripts/make_nautilus_fixture.py /tmp/cat data/nautilus
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from compare_replay import load, nautilus_objects  # noqa: E402
from nautilus_trader.persistence.catalog import ParquetDataCatalog  # noqa: E402

src, out = sys.argv[1], sys.argv[2]
deltas, trades, quotes = load(src, "binance_spot", "BTCUSDT")
inst, data = nautilus_objects(deltas.slice(0, 12000), trades.slice(0, 300), quotes.slice(0, 200), False)
shutil.rmtree(out, ignore_errors=True)
cat = ParquetDataCatalog(out)
cat.write_data([inst])
for kind in ("OrderBookDelta", "TradeTick", "QuoteTick"):
    cat.write_data(sorted([d for d in data if type(d).__name__ == kind], key=lambda x: x.ts_init))
