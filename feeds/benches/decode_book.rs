//! Decode + book update per venue frame, on real frames from the bundled recording.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use argus_core::{InstrumentId, MarketEvent, MarketEventKind, OrderBook, UnixNanos};
use argus_feeds::binance::{parse_snapshot, BinanceNormalizer};
use argus_feeds::recording::RecordingReader;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn frames() -> (Vec<String>, Vec<String>, Vec<String>, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/binance_spot/btcusdt_20240808.jsonl.gz");
    let (mut depth, mut trade, mut ticker, mut snap) = (Vec::new(), Vec::new(), Vec::new(), String::new());
    for f in RecordingReader::open(&path).unwrap() {
        let f = f.unwrap();
        if f.is_snapshot() {
            snap = f.frame;
        } else if f.frame.contains("depthUpdate") {
            depth.push(f.frame);
        } else if f.frame.contains("@trade") {
            trade.push(f.frame);
        } else {
            ticker.push(f.frame);
        }
    }
    (depth, trade, ticker, snap)
}

fn bench(c: &mut Criterion) {
    let (depth, trade, ticker, snap) = frames();
    let norm = BinanceNormalizer::new([("BTCUSDT", InstrumentId(0))]);
    let mut out: Vec<MarketEvent> = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("binance_spot");

    // Decode only, one kind of frame at a time.
    for (name, frames) in
        [("normalize_trade_frames", &trade), ("normalize_book_ticker_frames", &ticker), ("decode_depth_frames", &depth)]
    {
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for f in frames {
                    out.clear();
                    norm.normalize_str(black_box(f.as_str()), UnixNanos(0), &mut out).unwrap();
                }
            })
        });
    }

    // Decode + apply every depth diff of the session onto the snapshot book.
    let snapshot = parse_snapshot(snap.as_bytes()).unwrap();
    let mut base = OrderBook::new(5000);
    for (side, levels) in [(argus_core::Side::Buy, &snapshot.bids), (argus_core::Side::Sell, &snapshot.asks)] {
        for &(price, qty) in levels {
            base.apply(&argus_core::BookDelta {
                action: argus_core::BookAction::Add,
                side,
                flags: argus_core::DeltaFlags::default(),
                price,
                qty,
                sequence: 0,
            });
        }
    }
    // The book alone: every level of every diff, already decoded.
    let mut levels = Vec::new();
    for f in &depth {
        out.clear();
        norm.normalize_str(f, UnixNanos(0), &mut out).unwrap();
        levels.extend(out.iter().filter_map(|e| match e.kind {
            MarketEventKind::Delta(d) => Some(d),
            _ => None,
        }));
    }
    g.throughput(Throughput::Elements(levels.len() as u64));
    g.bench_function("apply_depth_levels", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |book| {
                for d in &levels {
                    book.apply(d);
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(depth.len() as u64));
    g.bench_function("decode_and_apply_depth_frames", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |book| {
                for f in &depth {
                    out.clear();
                    norm.normalize_str(f, UnixNanos(0), &mut out).unwrap();
                    for ev in &out {
                        if let MarketEventKind::Delta(d) = ev.kind {
                            book.apply(&d);
                        }
                    }
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
