#!/usr/bin/env bash
# Replay throughput side by side with hftbacktest 2.4.4 and NautilusTrader 1.221.0 (the newest for
# Python 3.11), on the bundled real Binance spot session, on this machine, in one run.
#   bash scripts/compare_replay.sh [OUT.json]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-compare
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import hftbacktest, nautilus_trader' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    hftbacktest==2.4.4 nautilus_trader==1.221.0 pyarrow numpy
fi
[ -x target/release/argus ] || make build
CAT=$(mktemp -d)
trap 'rm -rf "$CAT"' EXIT
./target/release/argus data import --format raw --venue binance-spot \
  --input data/binance_spot/btcusdt_20240808.jsonl.gz --out "$CAT" >/dev/null
"$VENV/bin/python" scripts/compare_replay.py --argus target/release/argus --catalog "$CAT" --repeat 5 \
  ${1:+--json "$1"}
