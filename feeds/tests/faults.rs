//! The real Binance client against the real replay server on loopback, with injected faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use argus_core::{InstrumentId, MarketEvent, MarketEventKind, OrderBook};
use argus_feeds::binance::{self, BinanceFeedConfig};
use argus_feeds::offline::BinanceRecording;
use argus_feeds::recording::{RecordedFrame, RecordingReader};
use argus_feeds::replay::{Faults, ReplayServer, Speed};
use argus_feeds::{FeedError, FeedStats};
use tokio::sync::watch;

const RECORDING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/binance_spot/btcusdt_20240808.jsonl.gz");

fn frames() -> Vec<RecordedFrame> {
    RecordingReader::read_all(Path::new(RECORDING)).unwrap()
}

struct Outcome {
    result: Result<(), FeedError>,
    stats: Arc<FeedStats>,
    book: OrderBook,
    /// `Clear` deltas outside snapshots: the feed telling the hot thread its book is gone.
    resets: u64,
}

async fn run_with(frames: &[RecordedFrame], faults: Faults, reconnect: bool, max_reconnects: u32) -> Outcome {
    run_cfg(frames, faults, |c| BinanceFeedConfig { reconnect, max_reconnects, ..c }).await
}

async fn run_cfg(
    frames: &[RecordedFrame],
    faults: Faults,
    tune: impl FnOnce(BinanceFeedConfig) -> BinanceFeedConfig,
) -> Outcome {
    let server = ReplayServer::start(frames, Speed::Max, faults).await.unwrap();
    let (tx, rx) = crossbeam_channel::bounded::<MarketEvent>(1 << 16);
    let consumer = std::thread::spawn(move || {
        let mut book = OrderBook::new(5000);
        let mut resets = 0;
        for ev in rx.iter() {
            if let MarketEventKind::Delta(d) = ev.kind {
                book.apply(&d);
                resets += u64::from(d.action == argus_core::BookAction::Clear && !d.flags.is_snapshot());
            }
        }
        (book, resets)
    });
    let cfg = tune(BinanceFeedConfig::spot("BTCUSDT", InstrumentId(0), &server.ws_base(), &server.rest_base()));
    let stats = Arc::new(FeedStats::default());
    let (_stop, shutdown) = watch::channel(false);
    let result = binance::run(cfg, tx, Arc::clone(&stats), shutdown).await;
    let (book, resets) = tokio::task::spawn_blocking(move || consumer.join().unwrap()).await.unwrap();
    Outcome { result, stats, book, resets }
}

/// `book` equals the offline decode of the whole recording, level for level.
fn assert_reference_book(book: &OrderBook) {
    let r = reference_book();
    assert!(book.levels(argus_core::Side::Buy).eq(r.levels(argus_core::Side::Buy)), "bid ladders differ");
    assert!(book.levels(argus_core::Side::Sell).eq(r.levels(argus_core::Side::Sell)), "ask ladders differ");
}

fn reference_book() -> OrderBook {
    let mut book = OrderBook::new(5000);
    for ev in BinanceRecording::open(Path::new(RECORDING), "BTCUSDT", InstrumentId(0)).unwrap() {
        if let MarketEventKind::Delta(d) = ev.kind {
            book.apply(&d);
        }
    }
    book
}

fn ws_index_of(frames: &[RecordedFrame], pred: impl Fn(&RecordedFrame) -> bool) -> usize {
    frames.iter().filter(|f| !f.is_snapshot()).position(pred).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_replay_matches_offline_decode() {
    let frames = frames();
    let o = run_with(&frames, Faults::default(), false, 0).await;
    o.result.unwrap();
    assert_eq!(FeedStats::get(&o.stats.frames_trade), 9757);
    assert_eq!(FeedStats::get(&o.stats.frames_depth), 3451);
    assert_eq!(FeedStats::get(&o.stats.frames_book_ticker), 28040);
    assert_eq!(FeedStats::get(&o.stats.snapshots), 1);
    let r = reference_book();
    assert_eq!(o.book.best_bid(), r.best_bid());
    assert_eq!(o.book.best_ask(), r.best_ask());
    // The demo's first snapshot is the recorded one, so the whole book matches, level for level.
    assert_reference_book(&o.book);
    assert_eq!(o.resets, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_frame_is_counted_and_the_stream_goes_on() {
    let frames = frames();
    let trade = ws_index_of(&frames, |f| f.frame.contains("@trade"));
    let o = run_with(&frames, Faults { corrupt: vec![trade], ..Faults::default() }, false, 0).await;
    o.result.unwrap();
    assert_eq!(FeedStats::get(&o.stats.malformed), 1);
    assert_eq!(FeedStats::get(&o.stats.frames_trade), 9756);
    assert_eq!(o.book.best_bid(), reference_book().best_bid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_gap_resyncs_from_a_fresh_snapshot() {
    let frames = frames();
    let ws: Vec<&RecordedFrame> = frames.iter().filter(|f| !f.is_snapshot()).collect();
    // Lose a depth diff in the middle of the session.
    let lost = (ws.len() / 2..ws.len()).find(|&i| ws[i].frame.contains("depthUpdate")).unwrap();
    let o = run_with(&frames, Faults { skip: vec![lost], ..Faults::default() }, false, 0).await;
    o.result.unwrap();
    assert_eq!(FeedStats::get(&o.stats.gaps), 1);
    assert_eq!(FeedStats::get(&o.stats.snapshots), 2, "one initial snapshot, one resync");
    let r = reference_book();
    // After the resync the book is the exchange's again: top of book identical.
    assert_eq!(o.book.best_bid(), r.best_bid());
    assert_eq!(o.book.best_ask(), r.best_ask());
    let top = |b: &OrderBook| b.levels(argus_core::Side::Sell).take(100).collect::<Vec<_>>();
    assert_eq!(top(&o.book), top(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_reconnects_then_gives_up() {
    let frames = frames();
    let o = run_with(&frames, Faults { drop_after: Some(500), ..Faults::default() }, true, 2).await;
    let err = o.result.unwrap_err();
    assert!(err.to_string().contains("gave up after 2 reconnects"), "{err}");
    assert_eq!(FeedStats::get(&o.stats.disconnects), 3);
    assert_eq!(FeedStats::get(&o.stats.reconnects), 2);
    assert_eq!(o.resets, 3, "each lost connection clears the hot thread's book (the last one for good)");
    assert!(FeedStats::get(&o.stats.snapshots) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_snapshot_is_a_clear_error() {
    let frames = frames();
    let o = run_with(&frames[..2000], Faults { no_snapshot: true, ..Faults::default() }, false, 0).await;
    let err = o.result.unwrap_err();
    assert!(err.to_string().contains("snapshot"), "{err}");
    assert!(FeedStats::get(&o.stats.snapshot_failures) >= 1);
    assert!(matches!(err, FeedError::NoSnapshot { .. }));
    assert_eq!(o.book.depth(argus_core::Side::Buy), 0, "nothing applied without a snapshot");
}

/// A venue that goes silent (not even pongs) with the connection open: the read timeout declares
/// it dead, the feed reconnects, resyncs, and ends with the clean replay's book.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connection_times_out_and_recovers() {
    let frames = frames();
    let o = run_cfg(&frames, Faults { stall_after: Some(3000), ..Faults::default() }, |c| BinanceFeedConfig {
        reconnect: true,
        max_reconnects: 1,
        read_timeout: std::time::Duration::from_millis(400),
        ping_interval: std::time::Duration::from_millis(100),
        backoff_base: std::time::Duration::from_millis(10),
        end_on_close: true,
        ..c
    })
    .await;
    // The second connection replays to the end and the server closes it: a clean end.
    o.result.unwrap();
    assert_eq!(FeedStats::get(&o.stats.disconnects), 1);
    assert_eq!(FeedStats::get(&o.stats.reconnects), 1);
    assert_eq!(o.resets, 1);
    assert_reference_book(&o.book);
}

/// An oversized frame (garbage the size of a small file) is refused, not buffered: the feed
/// reconnects and still ends with the clean replay's book.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_is_refused_and_the_feed_recovers() {
    let frames = frames();
    let o = run_cfg(&frames, Faults { oversized: Some(2 << 20), ..Faults::default() }, |c| BinanceFeedConfig {
        reconnect: true,
        max_reconnects: 1,
        max_message_bytes: 1 << 20,
        backoff_base: std::time::Duration::from_millis(10),
        end_on_close: true,
        ..c
    })
    .await;
    o.result.unwrap();
    assert_eq!(FeedStats::get(&o.stats.disconnects), 1);
    assert_reference_book(&o.book);
}

/// A stream that stops while its connection lives (the venue keeps answering pings, so the
/// read timeout never fires): the instrument is found stale, the book announced gone, and the
/// feed reconnects and ends with the clean replay's book.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_muted_on_a_live_connection_is_found_stale_and_recovers() {
    let frames = frames();
    let run = run_cfg(&frames, Faults { mute_after: Some(3000), ..Faults::default() }, |c| BinanceFeedConfig {
        reconnect: true,
        max_reconnects: 1,
        read_timeout: std::time::Duration::from_secs(30),
        stale_after: std::time::Duration::from_millis(400),
        ping_interval: std::time::Duration::from_millis(50),
        backoff_base: std::time::Duration::from_millis(10),
        end_on_close: true,
        ..c
    });
    let o = tokio::time::timeout(std::time::Duration::from_secs(20), run)
        .await
        .expect("found stale long before the 30 s read timeout");
    o.result.unwrap();
    assert_eq!(FeedStats::get(&o.stats.stale_instruments), 1);
    assert_eq!(FeedStats::get(&o.stats.disconnects), 0, "the connection itself never failed");
    assert_eq!(FeedStats::get(&o.stats.reconnects), 1);
    assert_eq!(o.resets, 1);
    assert_reference_book(&o.book);
}

/// Binance ends every connection after 24 hours. Before that the feed opens a successor, holds
/// its frames until the old connection has caught up with where they start, and switches: the
/// book is kept (no new snapshot, no gap, no reset downstream), and the trades and quotes both
/// connections carried during the overlap are delivered once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_reconnects_keep_the_book_and_deliver_each_event_once() {
    let frames = frames();
    // The whole recording at 60x: about 6 s, so a 1.5 s lifetime means three or four handovers.
    let server = ReplayServer::start_live(&frames, Speed::Factor(60.0)).await.unwrap();
    let (tx, rx) = crossbeam_channel::bounded::<MarketEvent>(1 << 16);
    let consumer = std::thread::spawn(move || {
        let mut book = OrderBook::new(5000);
        let (mut trades, mut quotes, mut resets, mut ids_increase, mut last_id) = (0_u64, 0_u64, 0, true, 0);
        for ev in rx.iter() {
            match ev.kind {
                MarketEventKind::Delta(d) => {
                    book.apply(&d);
                    resets += u64::from(d.action == argus_core::BookAction::Clear && !d.flags.is_snapshot());
                }
                MarketEventKind::Trade(t) => {
                    trades += 1;
                    ids_increase &= t.trade_id > last_id;
                    last_id = t.trade_id;
                }
                MarketEventKind::Quote(_) => quotes += 1,
                _ => {}
            }
        }
        (book, trades, quotes, resets, ids_increase)
    });
    let cfg = BinanceFeedConfig {
        max_session: std::time::Duration::from_millis(1500),
        end_on_close: true,
        ..BinanceFeedConfig::spot("BTCUSDT", InstrumentId(0), &server.ws_base(), &server.rest_base())
    };
    let stats = Arc::new(FeedStats::default());
    let (_stop, shutdown) = watch::channel(false);
    let run = binance::run(cfg, tx, Arc::clone(&stats), shutdown);
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), run).await.expect("the replay ends");
    result.unwrap();
    let (book, trades, quotes, resets, ids_increase) =
        tokio::task::spawn_blocking(move || consumer.join().unwrap()).await.unwrap();
    let planned = FeedStats::get(&stats.planned_reconnects);
    assert!(planned >= 2, "{planned} planned reconnects");
    assert_eq!(FeedStats::get(&stats.gaps), 0);
    assert_eq!(FeedStats::get(&stats.resyncs), 0);
    assert_eq!(FeedStats::get(&stats.reconnects), 0, "no connection was lost");
    assert_eq!(FeedStats::get(&stats.snapshots), 1, "the book was kept across every handover");
    assert_eq!(resets, 0, "the hot thread never lost its book");
    let (want_trades, want_quotes) = BinanceRecording::open(Path::new(RECORDING), "BTCUSDT", InstrumentId(0))
        .unwrap()
        .fold((0, 0), |(t, q), ev| match ev.kind {
            MarketEventKind::Trade(_) => (t + 1, q),
            MarketEventKind::Quote(_) => (t, q + 1),
            _ => (t, q),
        });
    assert_eq!(trades, want_trades, "every trade once ({} repeats dropped)", FeedStats::get(&stats.duplicates));
    assert_eq!(
        quotes,
        want_quotes,
        "every quote once ({} repeats dropped, {planned} planned)",
        FeedStats::get(&stats.duplicates)
    );
    assert!(ids_increase, "trade ids strictly increase: none repeated, none out of order");
    assert_reference_book(&book);
}
