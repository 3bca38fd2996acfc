//! The hot path allocates nothing per event once warm (DESIGN §5): a counting global allocator
//! watches the hot thread replaying the bundled recording with the real model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use argus_backtest::sim::SimConfig;
use argus_core::{InstrumentId, InstrumentSpec, MarketEvent, Venue};
use argus_engine::pipeline::{HotSetup, StrategySetup};
use argus_feeds::offline::BinanceRecording;
use argus_risk::RiskConfig;
use argus_strategies::SignalTakerConfig;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hot_thread_step_does_not_allocate_after_warmup() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let events: Vec<_> =
        BinanceRecording::open(&root.join("data/binance_spot/btcusdt_20240808.jsonl.gz"), "BTCUSDT", InstrumentId(0))
            .unwrap()
            .collect();
    let setup = HotSetup {
        models: argus_models::market::MarketModelPaths {
            alpha: root.join("models/zoo/btcusdt_alpha"),
            anomaly: Some(root.join("models/zoo/btcusdt_anomaly")),
        },
        device: "cpu".into(),
        half: false,
        inference: argus_engine::pipeline::Inference::Inline,
        book_levels: 5000,
        strategy: StrategySetup::SignalTaker(SignalTakerConfig::default()),
        risk: RiskConfig::default(),
        sim: SimConfig::default(),
        journal_every_ns: None,
        audit: None,
    };
    let (mut hot, _) =
        setup.build(InstrumentId(0), Venue::BinanceSpot, InstrumentSpec::BINANCE_SPOT_BTCUSDT, false).unwrap();
    // A second instrument (the same stream re-tagged) is watched: its book is kept too.
    hot.watch([InstrumentId(0), InstrumentId(1)], 5000);
    let watched = |ev: &MarketEvent| MarketEvent { instrument: InstrumentId(1), ..*ev };
    // Warm-up: the snapshot fills the books to their working size.
    let warm = 20_000;
    for ev in &events[..warm] {
        hot.step(ev);
        hot.step(&watched(ev));
    }
    COUNTING.store(true, Ordering::SeqCst);
    for ev in &events[warm..] {
        hot.step(ev);
        hot.step(&watched(ev));
    }
    COUNTING.store(false, Ordering::SeqCst);
    let n = (events.len() - warm) as u64;
    let allocs = ALLOCS.load(Ordering::SeqCst);
    assert!(hot.counters.scores > 5_000, "the model ran");
    assert!(hot.counters.intents > 0, "the strategy traded");
    assert!(hot.counters.fills > 0, "the simulated venue filled orders");
    let w = hot.watched[1].as_ref().unwrap();
    assert_eq!(w.events, events.len() as u64, "every re-tagged event reached the watched book");
    assert!(w.synced && w.book.best_bid() == hot.book.best_bid(), "the watched book equals the traded one");
    assert_eq!(allocs, 0, "{allocs} allocations over {n} events");
}
