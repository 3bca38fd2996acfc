//! The live task of OKX, Bybit, Coinbase and Kraken against a real websocket server on loopback
//! that speaks like the venue (subscription first, snapshot first on every subscription), fed
//! with real captures: the books the hot thread would hold equal `feeds check`'s, and a lost
//! frame resyncs the book through a fresh subscription.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argus_core::{InstrumentId, MarketEvent, MarketEventKind, OrderBook, Price, Qty, Side};
use argus_feeds::binance::QueuePolicy;
use argus_feeds::check::{self, CheckVenue};
use argus_feeds::rawlog::MergedInputs;
use argus_feeds::replay::{capture_frames, CaptureServer};
use argus_feeds::venue::{self, VenueFeedConfig};
use argus_feeds::FeedStats;
use tokio::sync::watch;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(rel)
}

struct Outcome {
    books: Vec<OrderBook>,
    synced: Vec<bool>,
    trades: u64,
    resets: u64,
    stats: Arc<FeedStats>,
    server_connections: u64,
    received: Vec<String>,
}

async fn run(venue: CheckVenue, file: &str, symbols: &[&str], skip_first: Vec<usize>) -> Outcome {
    run_with(venue, file, symbols, skip_first, 1 << 16, QueuePolicy::Block, Pause::No).await
}

/// How the consumer (the hot thread's stand-in) falls behind before it keeps up.
#[derive(Clone, Copy)]
enum Pause {
    No,
    /// It reads nothing until the feed has dropped something (at most 10 s).
    UntilDropped,
    /// It reads nothing for this long.
    For(std::time::Duration),
}

async fn run_with(
    venue: CheckVenue,
    file: &str,
    symbols: &[&str],
    skip_first: Vec<usize>,
    capacity: usize,
    policy: QueuePolicy,
    pause: Pause,
) -> Outcome {
    let stats = Arc::new(FeedStats::default());
    let watched = Arc::clone(&stats);
    let server = CaptureServer::start(capture_frames(&[data(file)]).unwrap(), skip_first).await.unwrap();
    let (tx, rx) = crossbeam_channel::bounded::<MarketEvent>(capacity);
    let n = symbols.len();
    let consumer = std::thread::spawn(move || {
        let mut books: Vec<OrderBook> = (0..n).map(|_| OrderBook::new(argus_core::MIN_BOOK_LEVELS)).collect();
        let (mut synced, mut trades, mut resets) = (vec![false; n], 0, 0);
        match pause {
            Pause::No => {}
            Pause::UntilDropped => {
                let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while FeedStats::get(&watched.dropped) == 0 && std::time::Instant::now() < give_up {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            Pause::For(d) => std::thread::sleep(d),
        }
        for ev in rx.iter() {
            let i = ev.instrument.0 as usize;
            match ev.kind {
                MarketEventKind::Delta(d) => {
                    books[i].apply(&d);
                    if d.action == argus_core::BookAction::Clear && !d.flags.is_snapshot() {
                        resets += 1;
                        synced[i] = false;
                    } else if d.flags.is_last() {
                        synced[i] = true;
                    }
                }
                MarketEventKind::Trade(_) => trades += 1,
                _ => {}
            }
        }
        (books, synced, trades, resets)
    });
    let ids = symbols.iter().enumerate().map(|(i, s)| ((*s).to_owned(), InstrumentId(i as u32))).collect();
    let cfg = VenueFeedConfig {
        end_on_close: true,
        queue_policy: policy,
        ..VenueFeedConfig::new(venue, ids, Some(&server.url()))
    };
    let (_stop, shutdown) = watch::channel(false);
    venue::run(cfg, tx, Arc::clone(&stats), shutdown).await.unwrap();
    let (books, synced, trades, resets) = tokio::task::spawn_blocking(move || consumer.join().unwrap()).await.unwrap();
    Outcome {
        books,
        synced,
        trades,
        resets,
        stats,
        server_connections: server.connections(),
        received: server.received(),
    }
}

/// Best bid and best ask.
type Top = (Option<(Price, Qty)>, Option<(Price, Qty)>);

/// Tops of the books `feeds check` builds from the same capture.
fn checked_tops(venue: CheckVenue, file: &str) -> BTreeMap<String, Top> {
    let r = check::check(venue, MergedInputs::open(&[data(file)]).unwrap());
    let lv = |l: &Option<[String; 2]>| l.as_ref().map(|[p, q]| (Price::parse(p).unwrap(), Qty::parse(q).unwrap()));
    r.books.iter().map(|(s, b)| (s.clone(), (lv(&b.best_bid), lv(&b.best_ask)))).collect()
}

fn top(b: &OrderBook) -> Top {
    let l = |s: Side| match s {
        Side::Buy => b.best_bid().map(|l| (l.price, l.qty)),
        Side::Sell => b.best_ask().map(|l| (l.price, l.qty)),
    };
    (l(Side::Buy), l(Side::Sell))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_live_books_equal_the_checked_capture() {
    let file = "okx/cryptofeed_OKX.ws.1.0.log.gz";
    let symbols = ["BTC-USDT", "UNI-USD-SWAP"];
    let o = run(CheckVenue::Okx, file, &symbols, Vec::new()).await;
    let want = checked_tops(CheckVenue::Okx, file);
    for (i, s) in symbols.iter().enumerate() {
        assert!(o.synced[i], "{s} synced");
        assert_eq!(top(&o.books[i]), want[*s], "{s} top of book");
    }
    assert!(o.trades > 0);
    assert_eq!(FeedStats::get(&o.stats.malformed), 0);
    assert!(
        FeedStats::get(&o.stats.frames_depth) > 0 && FeedStats::get(&o.stats.frames_ignored) > 0,
        "BTC-USD-220527 not subscribed: ignored"
    );
    let sub = &o.received[0];
    assert!(sub.contains(r#""op":"subscribe""#) && sub.contains(r#"{"channel":"books","instId":"BTC-USDT"}"#), "{sub}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bybit_frame_resyncs_through_a_fresh_subscription() {
    let file = "bybit/2024-12-01_XRPUSDT_ob500.data.gz";
    let o = run(CheckVenue::Bybit, file, &["XRPUSDT"], vec![9]).await;
    assert_eq!(FeedStats::get(&o.stats.gaps), 1);
    assert_eq!(FeedStats::get(&o.stats.resyncs), 1);
    assert_eq!(o.server_connections, 2, "resubscribed on a new connection");
    assert!(o.resets >= 1, "the broken book was announced downstream");
    assert!(o.synced[0], "whole again after the fresh snapshot");
    assert_eq!(top(&o.books[0]), checked_tops(CheckVenue::Bybit, file)["XRPUSDT"]);
    assert!(o.received.iter().any(|m| m.contains("orderbook.50.XRPUSDT")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_and_coinbase_live_books_equal_the_checked_captures() {
    for (venue, file, symbols) in [
        (CheckVenue::Kraken, "kraken/cryptofeed_KRAKEN.ws.50.0.log.gz", vec!["XBT/CHF", "ETH/CHF"]),
        // v2, what the live task subscribes to today: a real session's snapshot and update.
        (CheckVenue::Kraken, "kraken/snippets_real_kraken_v2_book.jsonl", vec!["ETH/USD", "BTC/USD"]),
        (CheckVenue::Coinbase, "coinbase/cryptofeed_COINBASE.ws.28.0.log.gz", vec!["SKL-USD", "DASH-BTC"]),
    ] {
        let o = run(venue, file, &symbols, Vec::new()).await;
        let want = checked_tops(venue, file);
        for (i, s) in symbols.iter().enumerate() {
            assert!(o.synced[i], "{s} synced");
            assert_eq!(top(&o.books[i]), want[*s], "{s} top of book");
        }
        assert_eq!(FeedStats::get(&o.stats.checksum_failures), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_policy_counts_what_it_drops_and_resyncs_the_book() {
    let file = "okx/cryptofeed_OKX.ws.1.0.log.gz";
    let symbols = ["BTC-USDT", "UNI-USD-SWAP"];
    // The two books' snapshots (1,042 events) fit the queue; the 800 updates after them do not.
    let o = run_with(CheckVenue::Okx, file, &symbols, Vec::new(), 1100, QueuePolicy::Drop, Pause::UntilDropped).await;
    let dropped = FeedStats::get(&o.stats.dropped);
    assert!(dropped > 0, "a stalled consumer behind the queue makes the feed drop");
    assert!(FeedStats::get(&o.stats.resyncs) >= 1, "a lost delta resyncs the books");
    assert!(o.server_connections >= 2, "by a fresh subscription");
    assert!(o.resets >= 1, "the consumer was told its books were gone");
    let want = checked_tops(CheckVenue::Okx, file);
    for (i, s) in symbols.iter().enumerate() {
        assert!(o.synced[i], "{s} whole again");
        assert_eq!(top(&o.books[i]), want[*s], "{s} exact after the resync");
    }
    // Blocking instead: a stalled consumer loses nothing and needs no resync.
    let stall = Pause::For(std::time::Duration::from_millis(300));
    let b = run_with(CheckVenue::Okx, file, &symbols, Vec::new(), 1100, QueuePolicy::Block, stall).await;
    assert_eq!(FeedStats::get(&b.stats.dropped), 0);
    assert_eq!(FeedStats::get(&b.stats.resyncs), 0);
    assert!(FeedStats::get(&b.stats.queue_full) > 0, "it waited instead");
}

/// Market data that stops while the connection lives (the venue still answers every ping, so
/// the read timeout never fires): each subscribed symbol is found stale, the books are
/// announced gone, and the feed reconnects for fresh snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_silent_on_a_live_connection_are_found_stale_and_resubscribed() {
    let file = "okx/cryptofeed_OKX.ws.1.0.log.gz";
    let server = CaptureServer::start_held_open(capture_frames(&[data(file)]).unwrap()).await.unwrap();
    let (tx, rx) = crossbeam_channel::bounded::<MarketEvent>(1 << 16);
    let consumer = std::thread::spawn(move || {
        rx.iter()
            .filter(|e| matches!(e.kind, MarketEventKind::Delta(d) if d.action == argus_core::BookAction::Clear && !d.flags.is_snapshot()))
            .count()
    });
    let ids = vec![("BTC-USDT".to_owned(), InstrumentId(0)), ("UNI-USD-SWAP".to_owned(), InstrumentId(1))];
    let ms = std::time::Duration::from_millis;
    let cfg = VenueFeedConfig {
        stale_after: ms(400),
        ping_interval: ms(50),
        read_timeout: std::time::Duration::from_secs(30),
        max_reconnects: 1,
        backoff_base: ms(10),
        ..VenueFeedConfig::new(CheckVenue::Okx, ids, Some(&server.url()))
    };
    let stats = Arc::new(FeedStats::default());
    let (_stop, shutdown) = watch::channel(false);
    let feed = venue::run(cfg, tx, Arc::clone(&stats), shutdown);
    let result = tokio::time::timeout(std::time::Duration::from_secs(20), feed)
        .await
        .expect("found stale long before the 30 s read timeout");
    let resets = tokio::task::spawn_blocking(move || consumer.join().unwrap()).await.unwrap();
    assert!(matches!(result, Err(argus_feeds::FeedError::GaveUp { reconnects: 1 })), "{result:?}");
    let stale = FeedStats::get(&stats.stale_instruments);
    assert!((2..=4).contains(&stale), "each of two connections went stale ({stale} symbols counted)");
    assert_eq!(FeedStats::get(&stats.reconnects), 1);
    assert_eq!(FeedStats::get(&stats.disconnects), 0, "the connection itself never failed");
    assert_eq!(server.connections(), 2);
    assert!(server.received().iter().filter(|m| m.as_str() == "ping").count() >= 2, "pings were answered meanwhile");
    assert_eq!(resets, 4, "both books announced gone after each stale connection");
}
