//! The websocket task of the venues whose books arrive whole over the socket (OKX, Bybit,
//! Coinbase, Kraken): subscribe, keep the connection alive, read frames through the venue's
//! [`LiveChecker`] (the normalizer and book sync `feeds check` runs on captures) and push events
//! into the hot thread's bounded queue. A gap or checksum failure resyncs the book the way these
//! venues allow: a fresh subscription, whose first book message is a snapshot. The broken book
//! is announced downstream at once (a `Clear`), so nothing trades on it meanwhile.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use argus_core::{InstrumentId, MarketEvent};
use crossbeam_channel::Sender;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tracing::{info, warn};

use crate::binance::client::{backoff, now, send_resets, stale_check_period, stamp_and_send, QueuePolicy};
use crate::check::{CheckVenue, LiveChecker};
use crate::stats::FeedStats;
use crate::tap::RawTap;
use crate::{tap, FeedError};

/// Where and what to subscribe on one of the snapshot-over-websocket venues.
#[derive(Debug, Clone)]
pub struct VenueFeedConfig {
    pub venue: CheckVenue,
    pub url: String,
    /// Venue symbols (`BTC-USDT` on OKX, `BTCUSDT` on Bybit, `BTC-USD` on Coinbase, `BTC/USD`
    /// on Kraken) and the instruments they map to. Events of other symbols are dropped and
    /// counted as ignored frames.
    pub symbols: Vec<(String, InstrumentId)>,
    /// Book depth asked of the venue (where the channel takes one).
    pub depth: u32,
    pub reconnect: bool,
    pub max_reconnects: u32,
    pub read_timeout: Duration,
    /// A subscribed symbol without market data for this long while the connection lives is
    /// stale: the feed reconnects and takes fresh snapshots. Zero turns the check off.
    pub stale_after: Duration,
    pub ping_interval: Duration,
    pub max_message_bytes: usize,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// A close frame ends the feed (replays); live venues close for maintenance, so live reconnects.
    pub end_on_close: bool,
    /// What to do when the hot thread's queue is full.
    pub queue_policy: QueuePolicy,
    /// Where to copy every frame as received (`feeds record --raw`).
    pub raw_tap: Option<RawTap>,
}

impl VenueFeedConfig {
    /// Live defaults for `venue`; `url` overrides the venue's public endpoint.
    pub fn new(venue: CheckVenue, symbols: Vec<(String, InstrumentId)>, url: Option<&str>) -> Self {
        Self {
            venue,
            url: url.map_or_else(|| default_url(venue).to_owned(), str::to_owned),
            symbols,
            depth: match venue {
                CheckVenue::Kraken => 100,
                _ => 50,
            },
            reconnect: true,
            max_reconnects: 100,
            read_timeout: Duration::from_secs(30),
            stale_after: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            max_message_bytes: 16 << 20,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(30),
            end_on_close: false,
            queue_policy: QueuePolicy::Block,
            raw_tap: None,
        }
    }
}

/// Public market-data endpoints.
pub const fn default_url(venue: CheckVenue) -> &'static str {
    match venue {
        CheckVenue::BinanceSpot => "wss://stream.binance.com:9443",
        CheckVenue::BinanceUsdm => "wss://fstream.binance.com",
        CheckVenue::Okx => "wss://ws.okx.com:8443/ws/v5/public",
        CheckVenue::Bybit => "wss://stream.bybit.com/v5/public/spot",
        CheckVenue::Coinbase => "wss://advanced-trade-ws.coinbase.com",
        CheckVenue::Kraken => "wss://ws.kraken.com/v2",
    }
}

/// The subscription messages for `symbols`, in the venue's own protocol.
pub fn subscriptions(venue: CheckVenue, symbols: &[&str], depth: u32) -> Vec<String> {
    let list = serde_json::to_string(symbols).unwrap_or_else(|_| "[]".to_owned());
    match venue {
        CheckVenue::Okx => {
            let args: Vec<String> = symbols
                .iter()
                .flat_map(|s| ["books", "trades", "bbo-tbt"].map(|c| format!(r#"{{"channel":"{c}","instId":"{s}"}}"#)))
                .collect();
            vec![format!(r#"{{"op":"subscribe","args":[{}]}}"#, args.join(","))]
        }
        CheckVenue::Bybit => {
            let topics: Vec<String> = symbols
                .iter()
                .flat_map(|s| {
                    [format!("\"orderbook.{depth}.{s}\""), format!("\"publicTrade.{s}\""), format!("\"tickers.{s}\"")]
                })
                .collect();
            vec![format!(r#"{{"op":"subscribe","args":[{}]}}"#, topics.join(","))]
        }
        CheckVenue::Coinbase => ["level2", "market_trades", "ticker", "heartbeats"]
            .iter()
            .map(|c| format!(r#"{{"type":"subscribe","product_ids":{list},"channel":"{c}"}}"#))
            .collect(),
        CheckVenue::Kraken => vec![
            // First the pairs' precisions, which the book checksums format numbers with.
            r#"{"method":"subscribe","params":{"channel":"instrument"}}"#.to_owned(),
            format!(r#"{{"method":"subscribe","params":{{"channel":"book","symbol":{list},"depth":{depth}}}}}"#),
            format!(r#"{{"method":"subscribe","params":{{"channel":"trade","symbol":{list}}}}}"#),
            format!(
                r#"{{"method":"subscribe","params":{{"channel":"ticker","symbol":{list},"event_trigger":"bbo"}}}}"#
            ),
        ],
        // Binance subscribes through the stream URL (its own task).
        CheckVenue::BinanceSpot | CheckVenue::BinanceUsdm => Vec::new(),
    }
}

/// The venue's application-level ping, where it wants one besides websocket pings.
const fn app_ping(venue: CheckVenue) -> Option<&'static str> {
    match venue {
        CheckVenue::Okx => Some("ping"),
        CheckVenue::Bybit => Some(r#"{"op":"ping"}"#),
        CheckVenue::Kraken => Some(r#"{"method":"ping"}"#),
        _ => None,
    }
}

enum End {
    Closed,
    Shutdown,
    /// A book broke: subscribe afresh for its snapshot.
    Resync,
    /// A symbol's market data stopped while the connection lived.
    Stale,
}

/// Runs the feed until the stream ends (replay), reconnects run out, or `shutdown` turns true.
///
/// # Errors
/// Terminal failures: the hot thread went away, or reconnects ran out.
pub async fn run(
    cfg: VenueFeedConfig,
    tx: Sender<MarketEvent>,
    stats: Arc<FeedStats>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), FeedError> {
    let venue = cfg.venue.as_str();
    let mut attempt = 0_u32;
    loop {
        let started = tokio::time::Instant::now();
        let end = session(&cfg, &tx, &stats, &mut shutdown).await;
        if started.elapsed() >= cfg.backoff_cap {
            // A session that lived a while was a success: the count is of consecutive failures.
            attempt = 0;
        }
        stats.connected.store(0, Ordering::Relaxed);
        match end {
            Ok(End::Shutdown) => return Ok(()),
            Ok(End::Closed) if !cfg.reconnect || cfg.end_on_close || *shutdown.borrow() => return Ok(()),
            Ok(End::Closed) => warn!(venue, "stream closed by server"),
            Ok(End::Stale) if !cfg.reconnect => return Err(FeedError::Stalled { secs: cfg.stale_after.as_secs_f64() }),
            Ok(End::Stale) => {}
            Ok(End::Resync) => {
                // The broken book was announced downstream; resubscribe for its snapshot.
                FeedStats::inc(&stats.resyncs);
                info!(venue, "book broken: resubscribing for a fresh snapshot");
                tokio::select! {
                    _ = tokio::time::sleep(cfg.backoff_base) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                continue;
            }
            Err(e) if e.is_terminal() => return Err(e),
            Err(error) => {
                FeedStats::inc(&stats.disconnects);
                warn!(venue, %error, "feed disconnected");
                if !cfg.reconnect {
                    return Err(error);
                }
            }
        }
        // The books are gone until the new subscription's snapshots (or for good, when the
        // feed gives up below).
        send_resets(cfg.symbols.iter().map(|(_, i)| *i), &tx, &stats)?;
        attempt += 1;
        if attempt > cfg.max_reconnects {
            return Err(FeedError::GaveUp { reconnects: cfg.max_reconnects });
        }
        FeedStats::inc(&stats.reconnects);
        tokio::select! {
            _ = tokio::time::sleep(backoff(cfg.backoff_base, cfg.backoff_cap, attempt)) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

async fn session(
    cfg: &VenueFeedConfig,
    tx: &Sender<MarketEvent>,
    stats: &FeedStats,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<End, FeedError> {
    let venue = cfg.venue.as_str();
    let ws_cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_message_bytes));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(cfg.url.as_str(), Some(ws_cfg), true).await?;
    let names: Vec<&str> = cfg.symbols.iter().map(|(s, _)| s.as_str()).collect();
    for sub in subscriptions(cfg.venue, &names, cfg.depth) {
        ws.send(Message::Text(sub.into())).await?;
    }
    stats.connected.store(1, Ordering::Relaxed);
    info!(venue, url = %cfg.url, symbols = ?names, "connected and subscribed");
    let mut checker = LiveChecker::new(cfg.venue);
    let mut last_rx = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(cfg.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut ready = Vec::with_capacity(8192);
    // When each subscribed symbol last had market data (the subscription counts as a start).
    let mut last_data = vec![tokio::time::Instant::now(); cfg.symbols.len()];
    let mut stale_check = tokio::time::interval(stale_check_period(cfg.stale_after));
    stale_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(msg) = msg else { return Err(FeedError::ConnectionLost) };
                last_rx = tokio::time::Instant::now();
                let ts_recv = now();
                let text = match msg? {
                    Message::Text(t) => t,
                    Message::Binary(_) => { FeedStats::inc(&stats.malformed); continue; }
                    Message::Close(_) => return Ok(End::Closed),
                    _ => continue,
                };
                if text.as_str() == "pong" {
                    continue;
                }
                tap::send(cfg.raw_tap.as_ref(), ts_recv, &text)?;
                let before = Counters::of(checker.report());
                ready.clear();
                let frame_at = tokio::time::Instant::now();
                checker.on_frame(text.as_str(), ts_recv, |sym, ev| {
                    if let Some(i) = cfg.symbols.iter().position(|(s, _)| s == sym) {
                        last_data[i] = frame_at;
                        ready.push(MarketEvent { instrument: cfg.symbols[i].1, ..*ev });
                    }
                });
                let after = Counters::of(checker.report());
                account(stats, before, after, &ready);
                if stamp_and_send(&mut ready, tx, stats, cfg.queue_policy)? {
                    // A dropped delta: the hot thread's books are wrong. Announce them gone
                    // and take fresh snapshots.
                    send_resets(cfg.symbols.iter().map(|(_, i)| *i), tx, stats)?;
                    let _ = ws.close(None).await;
                    return Ok(End::Resync);
                }
                if after.gaps > before.gaps || after.checksum_failed > before.checksum_failed {
                    let _ = ws.close(None).await;
                    return Ok(End::Resync);
                }
            }
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                return Ok(End::Shutdown);
            }
            _ = tokio::time::sleep_until(last_rx + cfg.read_timeout) => {
                return Err(FeedError::Stalled { secs: cfg.read_timeout.as_secs_f64() });
            }
            _ = ping.tick() => {
                let msg = app_ping(cfg.venue).map_or_else(|| Message::Ping(Default::default()), |p| Message::Text(p.into()));
                ws.send(msg).await?;
            }
            _ = stale_check.tick(), if !cfg.stale_after.is_zero() => {
                let stale: Vec<&str> = cfg.symbols.iter().zip(&last_data)
                    .filter(|(_, t)| t.elapsed() > cfg.stale_after)
                    .map(|((s, _), _)| s.as_str())
                    .collect();
                if !stale.is_empty() {
                    stats.stale_instruments.fetch_add(stale.len() as u64, Ordering::Relaxed);
                    warn!(venue, symbols = ?stale, "no market data on a live connection: reconnecting");
                    let _ = ws.close(None).await;
                    return Ok(End::Stale);
                }
            }
        }
    }
}

/// The checker's fault counters, before and after a frame.
#[derive(Debug, Clone, Copy)]
struct Counters {
    errors: u64,
    gaps: u64,
    checksum_failed: u64,
}

impl Counters {
    fn of(r: &crate::check::CheckReport) -> Self {
        Self { errors: r.errors, gaps: r.gaps, checksum_failed: r.checksum.failed }
    }
}

/// Frame counters by what the frame carried, and the checker's faults, into the feed's stats.
fn account(stats: &FeedStats, before: Counters, after: Counters, sent: &[MarketEvent]) {
    use argus_core::MarketEventKind as K;
    let kind = |f: fn(&K) -> bool| sent.iter().any(|e| f(&e.kind));
    let counter = if after.errors > before.errors {
        &stats.malformed
    } else if kind(|k| matches!(k, K::Delta(_))) {
        &stats.frames_depth
    } else if kind(|k| matches!(k, K::Trade(_))) {
        &stats.frames_trade
    } else if kind(|k| matches!(k, K::Quote(_))) {
        &stats.frames_book_ticker
    } else if kind(|k| matches!(k, K::Mark(_) | K::Liquidation(_))) {
        &stats.frames_derivative
    } else {
        &stats.frames_ignored
    };
    FeedStats::inc(counter);
    stats.gaps.fetch_add(after.gaps - before.gaps, Ordering::Relaxed);
    stats.checksum_failures.fetch_add(after.checksum_failed - before.checksum_failed, Ordering::Relaxed);
}
