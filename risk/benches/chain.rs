//! The full risk chain per order intent: every check, the kill-switch read and the rate window.
//! Criterion gives the mean; a per-call pass with hdrhistogram gives the tail.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use argus_core::{
    BookAction, BookDelta, DeltaFlags, InstrumentId, MarketStatus, OrderBook, OrderIntent, Position, Price, Qty,
    Scores, Side, State, StrategyId, TimeInForce, UnixNanos, Venue,
};
use argus_risk::{Rate, RiskChain, RiskConfig};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn setup() -> (OrderBook, Vec<OrderIntent>) {
    let mut b = OrderBook::new(5000);
    for i in 0..1000 {
        for (side, px) in
            [(Side::Buy, 61_837_630_000_000 - i * 10_000_000), (Side::Sell, 61_837_640_000_000 + i * 10_000_000)]
        {
            b.apply(&BookDelta {
                action: BookAction::Add,
                side,
                flags: DeltaFlags::default(),
                price: Price::from_units(px),
                qty: Qty::from_units(100_000_000),
                sequence: 1,
            });
        }
    }
    let intents = (0..1024)
        .map(|i| OrderIntent {
            instrument: InstrumentId(0),
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
            qty: Qty::from_units(10_000_000),
            limit: Price::from_units(if i % 2 == 0 { 61_840_000_000_000 } else { 61_835_000_000_000 }),
            tif: TimeInForce::Ioc,
            ts: UnixNanos(i),
            strategy: StrategyId(0),
        })
        .collect();
    (b, intents)
}

fn bench(c: &mut Criterion) {
    let (book, intents) = setup();
    let pos = Position::default();
    // Limits that approve: the full chain runs for every intent.
    // Token buckets at 1 per µs (the loop's clock step) keep every stateful check in the path.
    let fast = Some(Rate { per_sec: 1e6, burst: 1_000_000 });
    let cfg = RiskConfig {
        max_orders_per_window: 4096,
        rate_window_ns: 1,
        order_rate_per_venue: fast,
        order_rate_per_instrument: fast,
        // The book in `State` never ages: the clock runs, the market does not move.
        max_book_age_ns: u64::MAX,
        ..RiskConfig::default()
    };
    let mut chain = RiskChain::new(cfg).unwrap().with_instrument(InstrumentId(0), Venue::BinanceSpot);
    let mut now = 0_u64;
    let mut g = c.benchmark_group("risk_chain");
    g.throughput(Throughput::Elements(intents.len() as u64));
    g.bench_function("evaluate_approving_intents", |b| {
        b.iter(|| {
            for o in &intents {
                now += 1_000;
                let st = State {
                    now: UnixNanos(now),
                    instrument: InstrumentId(0),
                    book: &book,
                    features: &[],
                    scores: Scores::default(),
                    position: &pos,
                    market: MarketStatus::permissive(),
                };
                black_box(chain.evaluate(*o, &st).is_ok());
            }
        })
    });
    g.finish();

    // Tail latency per call, net of the clock's own cost.
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
    let clock = {
        let t = Instant::now();
        for _ in 0..100_000 {
            black_box(Instant::now());
        }
        t.elapsed().as_nanos() as u64 / 100_000
    };
    for round in 0..1_000 {
        for o in &intents {
            now += 1_000;
            let st = State {
                now: UnixNanos(now),
                instrument: InstrumentId(0),
                book: &book,
                features: &[],
                scores: Scores::default(),
                position: &pos,
                market: MarketStatus::permissive(),
            };
            let t = Instant::now();
            black_box(chain.evaluate(*o, &st).is_ok());
            let ns = (t.elapsed().as_nanos() as u64).saturating_sub(clock).max(1);
            if round > 0 {
                hist.saturating_record(ns);
            }
        }
    }
    let stats = chain.stats();
    let reasons: Vec<_> = argus_core::Reject::ALL.iter().filter(|r| stats.rejected[r.index()] > 0).collect();
    assert!(reasons.is_empty(), "every intent must run the whole chain; rejected for {reasons:?}");
    println!(
        "risk_chain per intent (net of {clock} ns clock): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns, n {}",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
        hist.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
