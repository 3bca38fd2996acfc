#!/usr/bin/env bash
# Architecture checks that the compiler cannot make:
#  * core, strategies and risk depend on no I/O, async or libtorch crate;
#  * only argus-risk enables argus-core's `approve` feature (the one way to build Approved<T>).
set -euo pipefail
fail=0
for pkg in argus-core argus-strategies argus-risk; do
  bad=$(cargo tree -p "$pkg" -e normal --prefix none 2>/dev/null | grep -E '^(tokio|tch|torch-sys|tungstenite|tokio-tungstenite|arrow|parquet|prometheus|hyper|reqwest) ' || true)
  if [ -n "$bad" ]; then
    echo "FAIL: $pkg depends on: $bad"; fail=1
  else
    echo "ok: $pkg has no I/O, async or libtorch dependency"
  fi
done
approvers=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
m = json.load(sys.stdin)
for p in m["packages"]:
    for d in p["dependencies"]:
        if d["name"] == "argus-core" and "approve" in d.get("features", []):
            print(p["name"])
')
if [ "$approvers" != "argus-risk" ]; then
  echo "FAIL: argus-core/approve enabled by: ${approvers:-nobody} (only argus-risk may)"; fail=1
else
  echo "ok: only argus-risk can approve orders"
fi
# The release binary must run with no environment (rpath) and, with a CUDA libtorch, load
# libtorch_cuda at run time when CUDA is asked for (it is not linked: see engine/build.rs), or
# `--device auto` would silently fall back to CPU on a GPU machine. Without a GPU the answer is
# "not available"; a backend that did not load says so.
if [ -x target/release/argus ]; then
  if [ -e .venv/libtorch/lib/libtorch_cuda.so ] && env -i target/release/argus models bench \
      --model models/zoo/btcusdt_alpha --device cuda --batch 1 --json 2>&1 | grep -q "CUDA backend did not load"; then
    echo "FAIL: target/release/argus cannot load libtorch_cuda"; fail=1
  else
    echo "ok: argus loads libtorch_cuda when CUDA is asked for"
  fi
  if env -i target/release/argus --version >/dev/null; then
    echo "ok: argus runs with an empty environment"
  else
    echo "FAIL: argus needs environment variables to start"; fail=1
  fi
fi
# Deployment files are checked with the real Prometheus tooling.
promtool check config deploy/prometheus.yml >/dev/null && promtool check rules deploy/argus-rules.yml >/dev/null \
  && echo "ok: deploy/prometheus.yml and argus-rules.yml pass promtool" || { echo "FAIL: promtool rejects deploy/"; fail=1; }
exit $fail
