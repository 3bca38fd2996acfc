//! Replay from the catalog: the bundled Binance spot session imported into a temporary catalog
//! (the same path as `argus data import --format raw`), then read back in time order, with and
//! without the book. What `argus bench replay` measures, split into its parts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use argus_backtest::catalog::{CatalogReader, CatalogWriter, Rotation};
use argus_backtest::throughput::replay_into_book;
use argus_core::{MarketEvent, OrderBook, MIN_BOOK_LEVELS};
use argus_feeds::check::CheckVenue;
use argus_feeds::rawlog::MergedInputs;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// The binary's allocator, so the split below adds up to what `argus bench replay` measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Imports the bundled session into a fresh catalog under the temporary directory.
fn catalog() -> PathBuf {
    let rec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/binance_spot/btcusdt_20240808.jsonl.gz");
    let root = std::env::temp_dir().join(format!("argus-bench-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut w = CatalogWriter::new(&root, Rotation::Day).unwrap();
    let inputs = MergedInputs::open(&[rec]).unwrap();
    argus_feeds::check::events(CheckVenue::BinanceSpot, inputs, &mut |sym: &str, ev: &MarketEvent| {
        w.write("binance_spot", sym, ev).unwrap();
    })
    .unwrap();
    w.finish().unwrap();
    root
}

fn open(root: &Path) -> CatalogReader {
    CatalogReader::open(root, "binance_spot", "BTCUSDT", 0, u64::MAX).unwrap()
}

fn bench(c: &mut Criterion) {
    let root = catalog();
    let events: Vec<MarketEvent> = open(&root).collect();
    let counts = replay_into_book(events.iter().copied(), &mut OrderBook::new(MIN_BOOK_LEVELS));
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(counts.events()));
    g.sample_size(20);
    g.bench_function("read_merge_only", |b| b.iter(|| black_box(open(&root).count())));
    g.bench_function("book_from_memory", |b| {
        b.iter(|| {
            let mut book = OrderBook::new(MIN_BOOK_LEVELS);
            black_box(replay_into_book(events.iter().copied(), &mut book))
        })
    });
    g.bench_function("catalog_to_book", |b| {
        b.iter(|| {
            let mut book = OrderBook::new(MIN_BOOK_LEVELS);
            let c = replay_into_book(open(&root), &mut book);
            assert_eq!(c, counts);
            c
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, bench);
criterion_main!(benches);
