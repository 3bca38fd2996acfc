#!/usr/bin/env bash
# Issue 4's GPU figures and checks, in one run on a machine with an NVIDIA GPU.
#
# Build here, carry the stripped binary, run there (the device machine of .library/device):
#   make build && mkdir -p out && strip -o out/argus target/release/argus
#   run: OUT=$OUT bash scripts/gpu_check.sh out/argus        (carry: out/argus)
# Without a GPU, DEVICE=cpu runs the same steps on the CPU (a dry run of the script itself).
#
# Writes into $OUT (default out/gpu-check): nvidia-smi.txt, bench_*.json, scores_*.csv,
# demo_*.json and summary.txt; exits non-zero when a check fails:
#   * the shipped tabular model scores the same rows on the GPU as on the CPU (1e-4 absolute);
#   * the demo makes the same orders and fills with the models on the GPU as on the CPU;
#   * a TorchScript module exported by the machine's PyTorch scores the same on the GPU in argus
#     as in PyTorch on the GPU (1e-5), when that PyTorch can be imported.
# Every step runs even when one before it failed; failures are named in summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/argus}
OUT=${OUT:-out/gpu-check}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
# Output names for the second device (`cpu-again` on a dry run, so nothing is overwritten).
TAG=$DEVICE
[ "$DEVICE" != cpu ] || TAG=cpu-again
# libtorch first on the library path (the device machine sets LD_LIBRARY_PATH to its driver's
# folders, without torch's).
for d in /opt/torch/.venv/lib/python3*/site-packages/torch/lib .venv/lib/python3*/site-packages/torch/lib; do
  if [ -d "$d" ]; then
    case $d in /*) ;; *) d=$PWD/$d ;; esac
    export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    break
  fi
done
{ nvidia-smi 2>&1 || echo "no nvidia-smi"; } > "$OUT/nvidia-smi.txt"
summary="$OUT/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
fail=0
failed() { say "FAIL: $*"; fail=1; }

# 1. Latency and throughput: batch 1 (argus's call, the bare libtorch call, the row net), the
#    hot thread's fused pair, batched throughput at growing batches, fp16, the inference thread.
bench() {
  local name=$1; shift
  if ! "$BIN" models bench "$@" --json > "$OUT/bench_$name.json" 2> "$OUT/bench_$name.err"; then
    failed "bench $name: $(tail -3 "$OUT/bench_$name.err")"; return 0
  fi
  python3 - "$OUT/bench_$name.json" "$name" <<'PY' | tee -a "$summary"
import json, sys
d = json.load(open(sys.argv[1]))
s = d.get("scorer") or {}
t = d.get("inference_thread") or {}
print(f"{sys.argv[2]}: device {d['device']} batch1 p50 {d['batch1']['p50_ns']} ns, bare p50 "
      f"{d['raw_tch_batch1']['p50_ns']} ns, batch {d['batch']} {d['batched_scores_per_sec'] / 1e6:.2f} M scores/s"
      + (f", fused pair p50 {s['batch1']['p50_ns']} ns, pair batched {s['batched_rows_per_sec'] / 1e6:.2f} M rows/s fused"
         f" vs {s['separate_batched_rows_per_sec'] / 1e6:.2f} separate, pair inference thread"
         f" {s['inference_thread']['scores_per_sec'] / 1e6:.2f} M/s" if s else "")
      + (f", inference thread {t['scores_per_sec'] / 1e6:.2f} M/s p50 {t['latency']['p50_ns']} ns" if t else ""))
PY
}
zoo=models/zoo
bench alpha_cpu --model $zoo/btcusdt_alpha --anomaly $zoo/btcusdt_anomaly --device cpu
for b in 4096 65536 1048576; do
  bench "alpha_${DEVICE}_$b" --model $zoo/btcusdt_alpha --anomaly $zoo/btcusdt_anomaly --device "$DEVICE" --batch $b
done
if [ "$DEVICE" != cpu ]; then
  bench "alpha_${DEVICE}_half" --model $zoo/btcusdt_alpha --device "$DEVICE" --half --batch 1048576
fi
bench "tx_$DEVICE" --model $zoo/eth_tx_phishing --device "$DEVICE" --batch 65536

# 2. The same scores on both devices: 20,000 transactions-like rows through the shipped
#    transaction model.
rows="$OUT/tx_rows.csv"
awk 'BEGIN { srand(7); print "gas,receipt_gas_used,gas_price,value";
  for (i = 0; i < 20000; i++) printf "%d,%d,%d,%.0f\n", 21000 + int(rand() * 300000), 21000 + int(rand() * 100000),
    int(1e9 * (1 + rand() * 80)), 10 ^ (12 + rand() * 7) }' > "$rows"
"$BIN" models score --model $zoo/eth_tx_phishing --input "$rows" --out "$OUT/scores_cpu.csv" --device cpu || failed "score cpu"
"$BIN" models score --model $zoo/eth_tx_phishing --input "$rows" --out "$OUT/scores_$TAG.csv" --device "$DEVICE" || failed "score $DEVICE"
diff=$(paste -d, "$OUT/scores_cpu.csv" "$OUT/scores_$TAG.csv" | awk -F, 'NR > 1 { d = $2 - $5; if (d < 0) d = -d; if (d > m) m = d; n++ }
  END { printf "%d %.3g", n, m }')
say "tabular scores cpu vs $DEVICE: rows, max abs difference: $diff"
awk -v d="${diff#* }" -v n="${diff% *}" 'BEGIN { exit !(n == 20000 && d <= 1e-4) }' || failed "scores differ"

# 3. The demo's decisions with the models on each device (inline batch 1 on the hot thread).
for pair in "cpu|cpu" "$DEVICE|$TAG"; do
  dev=${pair%%|*} tag=${pair#*|}
  "$BIN" demo --speed max --device "$dev" --metrics-addr off --report-json "$OUT/demo_$tag.json" > "$OUT/demo_$tag.txt" 2>&1 \
    || failed "demo on $dev: $(tail -3 "$OUT/demo_$tag.txt")"
done
if ! python3 - "$OUT/demo_cpu.json" "$OUT/demo_$TAG.json" <<'PY' | tee -a "$summary"; then fail=1; fi
import json, sys
runs = [json.load(open(p)) for p in sys.argv[1:3]]
def decisions(d):
    o = d["orders"]
    return (o["intents"], o["approved"], o["fills"], d["pnl"]["realized"], d["pnl"]["position"])
for d in runs:
    m, lat = d["model"], d["latency_ns"].get("model", {})
    print(f"demo, models on {m['device']}: {m['scores']} scores, {m['errors']} errors, model stage "
          f"p50 {lat.get('p50')} ns p99 {lat.get('p99')} ns; intents, approved, fills, realized, position: "
          f"{decisions(d)}")
same = decisions(runs[0]) == decisions(runs[1]) and all(d["model"]["errors"] == 0 for d in runs)
print("demo decisions equal on both devices" if same else "FAIL: demo decisions differ (or model errors)")
sys.exit(0 if same else 1)
PY

# 4. The demo with the inference thread micro-batching on the device (decisions use the newest
#    score back, so they may differ from inline; reported, not compared).
"$BIN" demo --speed max --device "$DEVICE" --inference batched --metrics-addr off \
  --report-json "$OUT/demo_${TAG}_batched.json" > "$OUT/demo_${TAG}_batched.txt" 2>&1 || failed "batched demo"
python3 - "$OUT/demo_${TAG}_batched.json" <<'PY' | tee -a "$summary" || failed "batched demo report"
import json, sys
d = json.load(open(sys.argv[1]))
m, lat = d["model"], d["latency_ns"].get("model", {})
print(f"demo batched inference on {m['device']}: {m['scores']} scores, {m['errors']} errors, model stage p50 "
      f"{lat.get('p50')} ns p99 {lat.get('p99')} ns; orders {d['orders']}")
PY

# 5. TorchScript interop on the device: a module exported by this machine's PyTorch scores the
#    same rows in argus as in PyTorch, both on the device.
if python3 -c 'import torch' 2> /dev/null; then
  python3 - "$OUT" "$DEVICE" <<'PY'
import sys, csv, torch
d, dev = sys.argv[1], sys.argv[2]
torch.manual_seed(11)
m = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1), torch.nn.Sigmoid()).eval()
scripted = torch.jit.script(m)
scripted.save(f"{d}/scripted.pt")
x = torch.randn(2000, 32) * torch.logspace(-2, 2, 32)
with torch.no_grad():
    y = scripted.to(dev)(x.to(dev)).squeeze(1).cpu()
with open(f"{d}/ts_inputs.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([f"f{i}" for i in range(32)])
    for row in x.tolist():
        w.writerow([repr(v) for v in row])
open(f"{d}/ts_expected.txt", "w").write("\n".join(repr(v) for v in y.tolist()))
PY
  "$BIN" models score --model "$OUT/scripted.pt" --input "$OUT/ts_inputs.csv" --out "$OUT/ts_scores.csv" --device "$DEVICE" \
    || failed "torchscript score on $DEVICE"
  python3 - "$OUT" "$DEVICE" <<'PY' | tee -a "$summary" || fail=1
import sys
d = sys.argv[1]
e = [float(v) for v in open(f"{d}/ts_expected.txt").read().split()]
g = [float(l.split(",")[1]) for l in open(f"{d}/ts_scores.csv").read().splitlines()[1:]]
worst = max(abs(a - b) for a, b in zip(e, g)) if len(e) == len(g) else float("inf")
ok = len(e) == len(g) == 2000 and worst <= 1e-5
print(f"torchscript on {sys.argv[2]}: {len(g)} rows, largest difference from PyTorch {worst:.3g}" + ("" if ok else " FAIL"))
sys.exit(0 if ok else 1)
PY
else
  say "torchscript step skipped: python3 has no torch"
fi
say "done: $(date -u +%FT%TZ), fail=$fail"
exit $fail
