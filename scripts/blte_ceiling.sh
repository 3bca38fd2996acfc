#!/usr/bin/env bash
# Issue 6's BLTE comparison, reproducible: argus's transaction model (one `argus models train
# tabular --refit` per seed) beside a scikit-learn random forest on the same ordered split, and
# what the four features can reach at all (the best F1 at any threshold, in hindsight).
#   bash scripts/blte_ceiling.sh [SEEDS]     # default: 1 2 3 4
# Needs scikit-learn and pandas (installed into .venv-sklearn on first use). ~30 s a seed here.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-sklearn
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sklearn, pandas' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check scikit-learn==1.9.1 pandas
fi
[ -x target/release/argus ] || make build
DATA=${BLTE:-../shared/data/chain/blte_tx/early.csv}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SEEDS=${1:-1 2 3 4}
for s in $SEEDS; do
  ./target/release/argus models train tabular --data "$DATA" --label class \
    --drop block_timestamp,block_number --split ordered --decimal-shape --refit --seed "$s" \
    --out "$WORK/seed$s" >/dev/null
  ./target/release/argus models score --model "$WORK/seed$s" --input "$DATA" \
    --out "$WORK/seed$s.csv" >/dev/null
done
"$VENV/bin/python" scripts/blte_ceiling.py --data "$DATA" --work "$WORK" --seeds $SEEDS
