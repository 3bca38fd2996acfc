"""Seed corpora for the cargo-fuzz targets from the bundled real captures (`make fuzz`).

binance: single frames; venues: runs of frames behind the byte that picks the venue (the
order fuzz_targets/venues.rs lists them in); okx, bybit, coinbase, kraken: runs of five of
that venue's frames; chain: ethereum-etl JSON-RPC block responses.
"""
import gzip
import hashlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "feeds/fuzz/corpus"
# Same order as VENUES in feeds/fuzz/fuzz_targets/venues.rs.
VENUES = {
    0: "binance_spot/cryptofeed_BINANCE.ws.1.0.log.gz",
    1: "binance_usdm/cryptofeed_BINANCE_FUTURES.ws.1.0.log.gz",
    2: "bybit/2024-12-01_XRPUSDT_ob500.data.gz",
    3: "coinbase/cryptofeed_COINBASE.ws.28.0.log.gz",
    4: "kraken/cryptofeed_KRAKEN.ws.50.0.log.gz",
    5: "okx/cryptofeed_OKX.ws.1.0.log.gz",
}
RECV_NS = re.compile(r"^\d{16,20} (\{.*)$")
CRYPTOFEED = re.compile(r"^\d+\.\d+: (.*)$")


def frames(path, limit):
    """Websocket frames of a capture: bare JSON, `<recv_ns> <frame>` or cryptofeed lines."""
    out = []
    with gzip.open(ROOT / "data" / path, "rt", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = RECV_NS.match(line) or CRYPTOFEED.match(line)
            frame = m.group(1) if m else (line if line.startswith(("{", "[")) else None)
            if frame and not frame.startswith('{"lastUpdateId"'):
                out.append(frame)
            if len(out) >= limit:
                break
    return out


def put(target, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


for frame in frames("binance_spot/btcusdt_20240808.jsonl.gz", 400)[::4]:
    put("binance", frame.encode())
for pick, path in VENUES.items():
    fs = frames(path, 120)
    for i in range(0, len(fs), 20):
        put("venues", bytes([pick]) + "\n".join(fs[i : i + 20]).encode())
# One target per venue besides Binance: runs of five frames, no picking byte.
for name, pick in {"bybit": 2, "coinbase": 3, "kraken": 4, "okx": 5}.items():
    fs = frames(VENUES[pick], 120)
    for i in range(0, len(fs), 5):
        put(name, "\n".join(fs[i : i + 5]).encode())
for p in sorted((ROOT / "data/chain/ethereum_etl_rpc").rglob("*.json")):
    put("chain", p.read_bytes()[:200_000])
print(f"seeded {OUT}: " + ", ".join(f"{d.name} {len(list(d.iterdir()))}" for d in sorted(OUT.iterdir())))
