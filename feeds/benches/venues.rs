//! Every venue's checker (normalizer + book sync/checksum) over its real capture, in memory:
//! time per frame from raw text to normalized, applied, verified book state.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use argus_core::UnixNanos;
use argus_feeds::check::{check_records, CheckVenue, LiveChecker};
use argus_feeds::rawlog::{MergedInputs, RawKind, RawRecord};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(rel)
}

fn records(files: &[&str]) -> Vec<RawRecord> {
    MergedInputs::open(&files.iter().map(|f| data(f)).collect::<Vec<_>>()).unwrap().collect()
}

fn bench(c: &mut Criterion) {
    let cases: [(&str, CheckVenue, &[&str]); 6] = [
        (
            "binance_spot_cryptofeed",
            CheckVenue::BinanceSpot,
            &["binance_spot/cryptofeed_BINANCE.ws.1.0.log.gz", "binance_spot/cryptofeed_BINANCE.http.0.0.log.gz"],
        ),
        (
            "binance_usdm_cryptofeed",
            CheckVenue::BinanceUsdm,
            &[
                "binance_usdm/cryptofeed_BINANCE_FUTURES.ws.1.0.log.gz",
                "binance_usdm/cryptofeed_BINANCE_FUTURES.http.0.0.log.gz",
            ],
        ),
        ("kraken_v1_book1000", CheckVenue::Kraken, &["kraken/cryptofeed_KRAKEN.ws.50.0.log.gz"]),
        ("coinbase_exchange_level2", CheckVenue::Coinbase, &["coinbase/cryptofeed_COINBASE.ws.28.0.log.gz"]),
        ("okx_books", CheckVenue::Okx, &["okx/cryptofeed_OKX.ws.1.0.log.gz"]),
        ("bybit_orderbook500", CheckVenue::Bybit, &["bybit/2024-12-01_XRPUSDT_ob500.data.gz"]),
    ];
    let mut g = c.benchmark_group("feeds_check");
    for (name, venue, files) in cases {
        let recs = records(files);
        let report = check_records(venue, &recs);
        assert_eq!(report.errors, 0, "{name}: {:?}", report.error_samples);
        g.throughput(Throughput::Elements(recs.len() as u64));
        g.bench_function(name, |b| b.iter(|| black_box(check_records(venue, &recs))));
    }
    g.finish();

    // The live path: the websocket frames alone through the connection's normalizer, every
    // event handed out with its symbol (what the venue task maps and queues). Binance's live
    // path is its own client (the `decode_book` benches); its REST snapshots are not frames.
    let mut g = c.benchmark_group("live_frames");
    for (name, venue, files) in
        cases.into_iter().filter(|c| !matches!(c.1, CheckVenue::BinanceSpot | CheckVenue::BinanceUsdm))
    {
        let frames: Vec<(u64, String)> =
            records(files).into_iter().filter(|r| matches!(r.kind, RawKind::Ws)).map(|r| (r.ts_ns, r.body)).collect();
        g.throughput(Throughput::Elements(frames.len() as u64));
        // Each timed pass runs on a checker that has seen the capture once already, outside the
        // timing: its books exist (their ladders are allocated once per symbol), and every
        // capture opens each book with a snapshot, so a second pass is valid and reads the same.
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut live = LiveChecker::new(venue);
                    for (ts, text) in &frames {
                        live.on_frame(text, UnixNanos(*ts), |_, _| {});
                    }
                    live
                },
                |mut live| {
                    let mut events = 0;
                    for (ts, text) in &frames {
                        live.on_frame(text, UnixNanos(*ts), |_, e| {
                            events += 1;
                            black_box(e);
                        });
                    }
                    assert_eq!(live.report().errors, 0, "{:?}", live.report().error_samples);
                    black_box(events)
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
