//! The Binance websocket task: connect, decode, keep the book synced, reconnect, and push events
//! into the bounded queue of the hot thread. The same code runs live and against the replay
//! server; only the base URLs differ.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argus_core::{InstrumentId, MarketEvent, UnixNanos};
use crossbeam_channel::{Sender, TrySendError};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tracing::{info, warn};

use super::normalize::{BinanceNormalizer, Decoded};
use super::sync::{parse_snapshot, DepthSync, SyncStatus};
use crate::stats::FeedStats;
use crate::{http, FeedError};

/// Live endpoints of Binance spot.
pub const SPOT_WS_BASE: &str = "wss://stream.binance.com:9443";
pub const SPOT_REST_BASE: &str = "https://api.binance.com";
/// Live endpoints of Binance USD-M futures.
pub const USDM_WS_BASE: &str = "wss://fstream.binance.com";
pub const USDM_REST_BASE: &str = "https://fapi.binance.com";

/// Where and what to subscribe.
#[derive(Debug, Clone)]
pub struct BinanceFeedConfig {
    pub ws_base: String,
    pub rest_base: String,
    /// REST path of the depth snapshot (`/api/v3/depth` spot, `/fapi/v1/depth` USD-M).
    pub snapshot_path: String,
    pub symbol: String,
    pub instrument: InstrumentId,
    /// Levels asked of the snapshot (Binance allows up to 5000).
    pub depth_limit: u32,
    /// Reconnect after a lost connection (live), or end the feed (replay).
    pub reconnect: bool,
    pub max_reconnects: u32,
    pub snapshot_timeout: Duration,
    /// A connection silent for this long is dead (half-open TCP, stalled venue): reconnect.
    pub read_timeout: Duration,
    /// We ping the venue this often; its pong (or any frame) keeps the connection alive.
    pub ping_interval: Duration,
    /// Frames larger than this are refused (the connection is then re-established).
    pub max_message_bytes: usize,
    /// Reconnect backoff: `base * 2^attempt`, capped, each delay jittered to 50-100%.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// A close frame from the server ends the feed even when `reconnect` is set (replays end
    /// that way; live venues close for maintenance and the 24 h limit, so live reconnects).
    pub end_on_close: bool,
    /// USD-M futures (adds mark price and liquidation streams).
    pub usdm: bool,
    /// What to do when the hot thread's queue is full.
    pub queue_policy: QueuePolicy,
}

impl BinanceFeedConfig {
    /// Spot defaults for `symbol` against the given endpoints.
    pub fn spot(symbol: &str, instrument: InstrumentId, ws_base: &str, rest_base: &str) -> Self {
        Self {
            ws_base: ws_base.trim_end_matches('/').to_owned(),
            rest_base: rest_base.trim_end_matches('/').to_owned(),
            snapshot_path: "/api/v3/depth".to_owned(),
            symbol: symbol.to_ascii_uppercase(),
            instrument,
            depth_limit: 1000,
            reconnect: true,
            max_reconnects: 100,
            snapshot_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(20),
            max_message_bytes: 16 << 20,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(30),
            end_on_close: false,
            usdm: false,
            queue_policy: QueuePolicy::Block,
        }
    }

    /// USD-M futures defaults: `/fapi/v1/depth`, plus mark price (1 s) and liquidation streams.
    pub fn usdm(symbol: &str, instrument: InstrumentId, ws_base: &str, rest_base: &str) -> Self {
        Self {
            snapshot_path: "/fapi/v1/depth".to_owned(),
            usdm: true,
            ..Self::spot(symbol, instrument, ws_base, rest_base)
        }
    }

    fn stream_url(&self) -> String {
        let s = self.symbol.to_ascii_lowercase();
        let extra = if self.usdm { format!("/{s}@markPrice@1s/{s}@forceOrder") } else { String::new() };
        format!("{}/stream?streams={s}@trade/{s}@depth@100ms/{s}@bookTicker{extra}", self.ws_base)
    }

    fn snapshot_url(&self) -> String {
        format!("{}{}?symbol={}&limit={}", self.rest_base, self.snapshot_path, self.symbol, self.depth_limit)
    }
}

/// Wall-clock now.
pub fn now() -> UnixNanos {
    UnixNanos(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64))
}

/// Runs the feed until the stream ends (replay), reconnects run out, or `shutdown` turns true.
///
/// # Errors
/// Terminal failures: the hot thread went away, or the first connection could not be made.
pub async fn run(
    cfg: BinanceFeedConfig,
    tx: Sender<MarketEvent>,
    stats: Arc<FeedStats>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), FeedError> {
    let normalizer = BinanceNormalizer::new([(cfg.symbol.as_str(), cfg.instrument)]);
    let mut sync = DepthSync::new(cfg.instrument);
    let mut attempt = 0_u32;
    loop {
        let end = session(&cfg, &normalizer, &mut sync, &tx, &stats, &mut shutdown).await;
        stats.connected.store(0, std::sync::atomic::Ordering::Relaxed);
        match end {
            Ok(End::Closed) if !sync.is_synced() && FeedStats::get(&stats.snapshot_failures) > 0 => {
                return Err(FeedError::NoSnapshot { failures: FeedStats::get(&stats.snapshot_failures) });
            }
            Ok(End::Shutdown) | Ok(End::Closed) if !cfg.reconnect || cfg.end_on_close || *shutdown.borrow() => {
                return Ok(())
            }
            Ok(End::Shutdown) => return Ok(()),
            Ok(End::Closed) => warn!(venue = "binance", "stream closed by server"),
            Err(e) if e.is_terminal() => return Err(e),
            Err(error) => {
                FeedStats::inc(&stats.disconnects);
                warn!(venue = "binance", %error, "feed disconnected");
                if !cfg.reconnect {
                    return Err(error);
                }
            }
        }
        attempt += 1;
        if attempt > cfg.max_reconnects {
            return Err(FeedError::GaveUp { reconnects: cfg.max_reconnects });
        }
        FeedStats::inc(&stats.reconnects);
        sync.reset();
        // Tell the hot thread at once: a cleared book is not synced, so risk blocks
        // risk-increasing orders until the fresh snapshot has been applied.
        send_resets([cfg.instrument], &tx, &stats)?;
        let backoff = backoff(cfg.backoff_base, cfg.backoff_cap, attempt);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Capped exponential backoff with jitter (50-100% of the step), so many clients cut off at
/// once do not reconnect in lockstep.
pub fn backoff(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let step = base.saturating_mul(2_u32.saturating_pow(attempt.min(20))).min(cap);
    // xorshift over the clock's nanoseconds: jitter needs no cryptographic randomness.
    let mut x = now().0 | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let frac = 0.5 + (x % 1000) as f64 / 2000.0;
    step.mul_f64(frac)
}

enum End {
    Closed,
    Shutdown,
}

async fn session(
    cfg: &BinanceFeedConfig,
    normalizer: &BinanceNormalizer,
    sync: &mut DepthSync,
    tx: &Sender<MarketEvent>,
    stats: &FeedStats,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<End, FeedError> {
    let url = cfg.stream_url();
    let ws_cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_message_bytes));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_cfg), true).await?;
    let mut last_rx = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(cfg.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    stats.connected.store(1, std::sync::atomic::Ordering::Relaxed);
    info!(venue = "binance", url = %url, "connected");
    let mut decoded = Vec::with_capacity(4096);
    let mut ready = Vec::with_capacity(8192);
    let mut snapshot: Option<JoinHandle<Result<Vec<u8>, FeedError>>> = None;
    let mut snapshot_tries = 0_u32;
    let result = loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(msg) = msg else { break Err(FeedError::ConnectionLost) };
                last_rx = tokio::time::Instant::now();
                let ts_recv = now();
                let text = match msg? {
                    Message::Text(t) => t,
                    Message::Binary(_) => { FeedStats::inc(&stats.malformed); continue; }
                    Message::Close(_) => break Ok(End::Closed),
                    _ => continue,
                };
                decoded.clear();
                ready.clear();
                match normalizer.normalize(text.as_bytes(), ts_recv, &mut decoded) {
                    Ok(Decoded::Trade) => { FeedStats::inc(&stats.frames_trade); ready.extend_from_slice(&decoded); }
                    Ok(Decoded::BookTicker) => { FeedStats::inc(&stats.frames_book_ticker); ready.extend_from_slice(&decoded); }
                    Ok(Decoded::Mark | Decoded::Liquidation) => { FeedStats::inc(&stats.frames_derivative); ready.extend_from_slice(&decoded); }
                    Ok(Decoded::Depth { first_update_id, final_update_id, prev_final_update_id }) => {
                        FeedStats::inc(&stats.frames_depth);
                        let before = sync.stats();
                        let status = sync.on_diff(first_update_id, final_update_id, prev_final_update_id, &decoded, &mut ready);
                        account(stats, before, sync);
                        if status == SyncStatus::NeedSnapshot && snapshot.is_none() {
                            snapshot = Some(tokio::spawn(http::get_owned(cfg.snapshot_url(), cfg.snapshot_timeout)));
                        }
                    }
                    Ok(Decoded::Ignored) => FeedStats::inc(&stats.frames_ignored),
                    Err(error) => {
                        FeedStats::inc(&stats.malformed);
                        warn!(venue = "binance", %error, "malformed frame");
                    }
                }
                if stamp_and_send(&mut ready, tx, stats, cfg.queue_policy)? {
                    drop_resync(cfg, sync, tx, stats, &mut snapshot)?;
                }
            }
            res = async {
                match snapshot.as_mut() {
                    Some(h) => h.await,
                    None => std::future::pending().await,
                }
            }, if snapshot.is_some() => {
                snapshot = None;
                let ts_recv = now();
                ready.clear();
                let applied = match res {
                    Ok(Ok(body)) => {
                        FeedStats::inc(&stats.snapshots);
                        parse_snapshot(&body).and_then(|s| {
                            let before = sync.stats();
                            let r = sync.on_snapshot(&s, ts_recv, &mut ready);
                            account(stats, before, sync);
                            r
                        })
                    }
                    Ok(Err(e)) => Err(e),
                    Err(join) => Err(FeedError::Http(join.to_string())),
                };
                match applied {
                    Ok(SyncStatus::Synced) => { snapshot_tries = 0; info!(venue = "binance", "book synced"); }
                    Ok(SyncStatus::NeedSnapshot) | Err(_) => {
                        if let Err(error) = &applied {
                            FeedStats::inc(&stats.snapshot_failures);
                            warn!(venue = "binance", %error, "snapshot failed");
                        }
                        snapshot_tries += 1;
                        if snapshot_tries > 5 {
                            break Err(FeedError::NoSnapshot { failures: u64::from(snapshot_tries) });
                        }
                        let delay = Duration::from_millis(200 * u64::from(snapshot_tries));
                        let url = cfg.snapshot_url();
                        let timeout = cfg.snapshot_timeout;
                        snapshot = Some(tokio::spawn(async move { tokio::time::sleep(delay).await; http::get(&url, timeout).await }));
                    }
                }
                if stamp_and_send(&mut ready, tx, stats, cfg.queue_policy)? {
                    drop_resync(cfg, sync, tx, stats, &mut snapshot)?;
                }
            }
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                break Ok(End::Shutdown);
            }
            _ = tokio::time::sleep_until(last_rx + cfg.read_timeout) => {
                break Err(FeedError::Stalled { secs: cfg.read_timeout.as_secs_f64() });
            }
            _ = ping.tick() => {
                if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                    break Err(e.into());
                }
            }
        }
    };
    if let Some(h) = snapshot {
        if matches!(result, Ok(End::Closed)) && !sync.is_synced() {
            // The stream ended while the book waited for its snapshot: learn how that request
            // ended, so a venue that never serves one is reported as such, not as a clean close.
            match tokio::time::timeout(cfg.snapshot_timeout, h).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(error))) => {
                    FeedStats::inc(&stats.snapshot_failures);
                    warn!(venue = "binance", %error, "snapshot failed");
                }
                Ok(Err(_)) | Err(_) => FeedStats::inc(&stats.snapshot_failures),
            }
        } else {
            h.abort();
        }
    }
    if matches!(result, Ok(End::Closed)) {
        let _ = ws.close(None).await;
    }
    result
}

/// A book delta was dropped on a full queue: the hot thread's book is wrong. Announce it gone and
/// sync again from a fresh snapshot (the diffs from now on are buffered until it arrives).
fn drop_resync(
    cfg: &BinanceFeedConfig,
    sync: &mut DepthSync,
    tx: &Sender<MarketEvent>,
    stats: &FeedStats,
    snapshot: &mut Option<JoinHandle<Result<Vec<u8>, FeedError>>>,
) -> Result<(), FeedError> {
    FeedStats::inc(&stats.resyncs);
    sync.reset();
    send_resets([cfg.instrument], tx, stats)?;
    if snapshot.is_none() {
        *snapshot = Some(tokio::spawn(http::get_owned(cfg.snapshot_url(), cfg.snapshot_timeout)));
    }
    Ok(())
}

/// A `Clear` delta: the book is gone until the next snapshot.
pub(crate) fn book_reset(instrument: InstrumentId) -> MarketEvent {
    MarketEvent {
        ts_exchange: UnixNanos(0),
        ts_recv: now(),
        instrument,
        decode_ns: 0,
        kind: argus_core::MarketEventKind::Delta(argus_core::BookDelta {
            action: argus_core::BookAction::Clear,
            side: argus_core::Side::Buy,
            flags: argus_core::DeltaFlags(0),
            price: argus_core::Price::ZERO,
            qty: argus_core::Qty::ZERO,
            sequence: 0,
        }),
    }
}

fn account(stats: &FeedStats, before: super::sync::SyncStats, sync: &DepthSync) {
    let after = sync.stats();
    stats.gaps.fetch_add(after.gaps - before.gaps, std::sync::atomic::Ordering::Relaxed);
    stats
        .stale_diffs
        .fetch_add(after.stale_diffs_dropped - before.stale_diffs_dropped, std::sync::atomic::Ordering::Relaxed);
}

/// What a feed does when the hot thread's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueuePolicy {
    /// Wait for room: nothing is lost; the socket is read more slowly meanwhile (a venue may
    /// cut a consumer that falls too far behind, which then reconnects).
    #[default]
    Block,
    /// Never wait for trades, quotes and incremental deltas: drop them and count them. A dropped
    /// delta leaves the hot thread's book wrong, so the feed announces that book broken (a
    /// `Clear`) and resyncs it from a fresh snapshot; resets and snapshot levels always wait.
    Drop,
}

impl std::str::FromStr for QueuePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "block" => Ok(Self::Block),
            "drop" => Ok(Self::Drop),
            _ => Err(format!("queue policy must be `block` or `drop`, got `{s}`")),
        }
    }
}

/// Stamps decode latency and pushes events under `policy`. Returns true when a book delta was
/// dropped (the caller must resync that book).
pub(crate) fn stamp_and_send(
    ready: &mut [MarketEvent],
    tx: &Sender<MarketEvent>,
    stats: &FeedStats,
    policy: QueuePolicy,
) -> Result<bool, FeedError> {
    let done = now();
    for ev in ready.iter_mut() {
        ev.decode_ns = u32::try_from(done.since(ev.ts_recv)).unwrap_or(u32::MAX);
    }
    let (mut sent, mut lost_book) = (0_u64, false);
    for ev in ready.iter() {
        match tx.try_send(*ev) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(ev)) => {
                FeedStats::inc(&stats.queue_full);
                // Snapshots and resets are what a resync is made of: they always wait, or a
                // snapshot larger than the queue would be dropped and resynced forever.
                let resync = matches!(ev.kind, argus_core::MarketEventKind::Delta(d)
                    if d.flags.is_snapshot() || d.action == argus_core::BookAction::Clear);
                if policy == QueuePolicy::Block || resync {
                    tokio::task::block_in_place(|| tx.send(ev)).map_err(|_| FeedError::QueueClosed)?;
                    sent += 1;
                } else {
                    FeedStats::inc(&stats.dropped);
                    lost_book |= matches!(ev.kind, argus_core::MarketEventKind::Delta(_));
                }
            }
            Err(TrySendError::Disconnected(_)) => return Err(FeedError::QueueClosed),
        }
    }
    stats.events_sent.fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
    Ok(lost_book)
}

/// Sends book resets for `instruments`, waiting for room whatever the policy: the hot thread
/// must learn that its book is gone.
pub(crate) fn send_resets(
    instruments: impl IntoIterator<Item = InstrumentId>,
    tx: &Sender<MarketEvent>,
    stats: &FeedStats,
) -> Result<(), FeedError> {
    let mut resets: Vec<MarketEvent> = instruments.into_iter().map(book_reset).collect();
    stamp_and_send(&mut resets, tx, stats, QueuePolicy::Block).map(|_| ())
}
