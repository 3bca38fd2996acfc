//! The hot-thread step (book -> features -> model -> strategy -> risk -> paper fill) over the
//! whole bundled session with the real model on CPU.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use argus_core::{InstrumentId, InstrumentSpec, MarketEventKind};
use argus_engine::pipeline::HotSetup;
use argus_feeds::offline::BinanceRecording;
use argus_risk::RiskConfig;
use argus_strategies::SignalTakerConfig;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let events: Vec<_> =
        BinanceRecording::open(&root.join("data/binance_spot/btcusdt_20240808.jsonl.gz"), "BTCUSDT", InstrumentId(0))
            .unwrap()
            .collect();
    let trades = events.iter().filter(|e| matches!(e.kind, MarketEventKind::Trade(_))).count();
    let setup = HotSetup {
        models: argus_models::market::MarketModelPaths {
            alpha: root.join("models/zoo/btcusdt_alpha"),
            anomaly: Some(root.join("models/zoo/btcusdt_anomaly")),
        },
        device: "cpu".into(),
        half: false,
        inference: argus_engine::pipeline::Inference::Inline,
        book_levels: 5000,
        strategy: argus_engine::pipeline::StrategySetup::SignalTaker(SignalTakerConfig::default()),
        risk: RiskConfig::default(),
        sim: argus_backtest::sim::SimConfig::default(),
        journal_every_ns: None,
        audit: None,
    };
    let make = || {
        setup
            .build(InstrumentId(0), argus_core::Venue::BinanceSpot, InstrumentSpec::BINANCE_SPOT_BTCUSDT, false)
            .unwrap()
            .0
    };
    let mut g = c.benchmark_group("hot_thread");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function(format!("replay_session_{}_events_{}_trades", events.len(), trades), |b| {
        b.iter_batched_ref(
            make,
            |hot| {
                for ev in &events {
                    hot.step(ev);
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
