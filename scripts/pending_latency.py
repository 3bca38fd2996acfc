#!/usr/bin/env python3
"""Send-to-alert latency of `argus monitor`, pending warnings beside block alerts, on a local ganache.

  python3 scripts/pending_latency.py [N]      (needs `make build ganache`; 127.0.0.1 only)

Starts ganache and `argus monitor --pending` with a one-address label pack, then N times: pays
the labelled address with the miner stopped and times eth_sendTransaction -> the pending
warning in the alerts file; then N payments with the miner running (instamine) and times
eth_sendTransaction -> the block alert. Prints percentiles in ms (polling the file every 0.5 ms).
"""
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCAM = "0x80d7bb18521acbef32d7906502ebe94928690e93"
FROM = "0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc(port, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}", body, {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=30))["result"]


def wait_line(path, pred, timeout=30.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with open(path) as f:
                for line in f:
                    if pred(json.loads(line)):
                        return time.monotonic()
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.0005)
    raise SystemExit("timed out waiting for an alert")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    tmp = tempfile.mkdtemp()
    labels, alerts = os.path.join(tmp, "labels.txt"), os.path.join(tmp, "alerts.jsonl")
    open(labels, "w").write(SCAM + "\n")
    port = free_port()
    node = subprocess.Popen([os.path.join(ROOT, "deploy/ganache/node_modules/.bin/ganache"), "--server.host", "127.0.0.1",
                             "--server.port", str(port), "--wallet.deterministic", "--logging.quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mon = None
    try:
        for _ in range(300):
            try:
                rpc(port, "eth_blockNumber", [])
                break
            except OSError:
                time.sleep(0.2)
        mon = subprocess.Popen([os.path.join(ROOT, "target/release/argus"), "monitor", "--rpc", f"ws://127.0.0.1:{port}",
                                "--pending", "--quiet", "--labels", labels, "--alerts-jsonl", alerts],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Connected once a first payment's block alert arrives.
        rpc(port, "eth_sendTransaction", [{"from": FROM, "to": SCAM, "value": "0x1"}])
        time.sleep(2)
        rpc(port, "eth_sendTransaction", [{"from": FROM, "to": SCAM, "value": "0x1"}])
        wait_line(alerts, lambda a: not a.get("pending"))
        pending, mined = [], []
        rpc(port, "miner_stop", [])
        for _ in range(n):
            t0 = time.monotonic()
            h = rpc(port, "eth_sendTransaction", [{"from": FROM, "to": SCAM, "value": "0x1"}])
            pending.append(wait_line(alerts, lambda a: a.get("tx_hash") == h and a.get("pending")) - t0)
        rpc(port, "miner_start", [])
        time.sleep(1)
        for _ in range(n):
            t0 = time.monotonic()
            h = rpc(port, "eth_sendTransaction", [{"from": FROM, "to": SCAM, "value": "0x1"}])
            mined.append(wait_line(alerts, lambda a: a.get("tx_hash") == h and not a.get("pending")) - t0)
        for name, xs in (("pending warning", pending), ("block alert (instamine)", mined)):
            ms = [x * 1e3 for x in xs]
            print(f"{name}: n {len(ms)}, send->alert p50 {pct(ms, 0.5):.1f} ms, p90 {pct(ms, 0.9):.1f} ms, max {max(ms):.1f} ms")
    finally:
        if mon:
            mon.send_signal(signal.SIGTERM)
            mon.wait()
        node.kill()
        node.wait()


if __name__ == "__main__":
    main()
