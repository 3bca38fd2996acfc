//! The Binance websocket task: connect, decode, keep the book synced, reconnect, and push events
//! into the bounded queue of the hot thread. The same code runs live and against the replay
//! server; only the base URLs differ.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argus_core::{InstrumentId, MarketEvent, MarketEventKind, UnixNanos};
use crossbeam_channel::{Sender, TrySendError};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{info, warn};

use super::normalize::{BinanceNormalizer, Decoded};
use super::sync::{parse_snapshot, DepthSync, SyncStatus};
use crate::stats::FeedStats;
use crate::tap::RawTap;
use crate::{http, tap, FeedError};

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
    /// Binance closes a connection after 24 h: after this long a successor is opened and takes
    /// over once it has caught up (make before break; the book is kept). Zero: never.
    pub max_session: Duration,
    /// No market data (trades, diffs, quotes) for this long while the connection lives (it
    /// still answers pings): the instrument is stale, so the feed reconnects and rebuilds the
    /// book instead of letting anything trade on it. Zero turns the check off.
    pub stale_after: Duration,
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
    /// Where to copy every frame and snapshot body as received (`feeds record --raw`).
    pub raw_tap: Option<RawTap>,
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
            stale_after: Duration::from_secs(60),
            max_session: Duration::from_secs(23 * 3600),
            ping_interval: Duration::from_secs(20),
            max_message_bytes: 16 << 20,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(30),
            end_on_close: false,
            usdm: false,
            queue_policy: QueuePolicy::Block,
            raw_tap: None,
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
    let mut dedup = Dedup::default();
    let mut attempt = 0_u32;
    loop {
        let started = tokio::time::Instant::now();
        let end = session(&cfg, &normalizer, &mut sync, &mut dedup, &tx, &stats, &mut shutdown).await;
        if started.elapsed() >= cfg.backoff_cap {
            // A session that lived a while was a success: the count is of consecutive failures.
            attempt = 0;
        }
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
            Ok(End::Stale) if !cfg.reconnect => return Err(FeedError::Stalled { secs: cfg.stale_after.as_secs_f64() }),
            Ok(End::Stale) => {}
            Err(e) if e.is_terminal() => return Err(e),
            Err(error) => {
                FeedStats::inc(&stats.disconnects);
                warn!(venue = "binance", %error, "feed disconnected");
                if !cfg.reconnect {
                    return Err(error);
                }
            }
        }
        sync.reset();
        // Tell the hot thread at once: a cleared book is not synced, so risk blocks
        // risk-increasing orders until the fresh snapshot has been applied (or for good, when
        // the feed gives up below).
        send_resets([cfg.instrument], &tx, &stats)?;
        attempt += 1;
        if attempt > cfg.max_reconnects {
            return Err(FeedError::GaveUp { reconnects: cfg.max_reconnects });
        }
        FeedStats::inc(&stats.reconnects);
        let backoff = backoff(cfg.backoff_base, cfg.backoff_cap, attempt);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// How often to look for stale instruments: a quarter of `stale_after` (at least 10 ms), so
/// one is found at most 25 % late.
pub(crate) fn stale_check_period(stale_after: Duration) -> Duration {
    (stale_after / 4).max(Duration::from_millis(10))
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
    /// The connection lived but the instrument's market data stopped.
    Stale,
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest a planned handover waits for the new connection to catch up with the old one; past
/// it the feed switches anyway (a gap then resyncs the book the usual way).
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Frames a standby connection may buffer during a handover.
const HANDOVER_MAX_FRAMES: usize = 100_000;

async fn connect(cfg: &BinanceFeedConfig, url: &str) -> Result<WsStream, FeedError> {
    let ws_cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_message_bytes));
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_cfg), true).await?;
    Ok(ws)
}

/// The last trade id, quote update id and mark time passed on: what a second connection repeats
/// (the overlap of a planned reconnect) is dropped and counted, not delivered twice.
#[derive(Debug, Default)]
struct Dedup {
    trade_id: u64,
    quote_update_id: u64,
    mark_ts: u64,
}

/// True, and remembered, when `id` is past `*last`; 0 is a frame without an id (always new).
fn first_time(last: &mut u64, id: u64) -> bool {
    if id != 0 && id <= *last {
        return false;
    }
    *last = id.max(*last);
    true
}

/// Per-frame processing of one feed: decode, drop repeats, keep the book synced, queue. It
/// outlives a connection in a planned handover.
struct Flow<'a> {
    cfg: &'a BinanceFeedConfig,
    normalizer: &'a BinanceNormalizer,
    sync: &'a mut DepthSync,
    dedup: &'a mut Dedup,
    tx: &'a Sender<MarketEvent>,
    stats: &'a FeedStats,
    decoded: Vec<MarketEvent>,
    ready: Vec<MarketEvent>,
    snapshot: Option<JoinHandle<Result<Vec<u8>, FeedError>>>,
    snapshot_tries: u32,
    /// When market data last arrived (pongs do not count): stale-instrument detection.
    last_data: tokio::time::Instant,
}

impl Flow<'_> {
    /// One text frame received at `ts_recv`.
    fn frame(&mut self, text: &Utf8Bytes, ts_recv: UnixNanos) -> Result<(), FeedError> {
        tap::send(self.cfg.raw_tap.as_ref(), ts_recv, text)?;
        let stats = self.stats;
        self.decoded.clear();
        self.ready.clear();
        let decoded = self.normalizer.normalize_str(text.as_str(), ts_recv, &mut self.decoded);
        if matches!(decoded, Ok(d) if d != Decoded::Ignored) {
            self.last_data = tokio::time::Instant::now();
        }
        match decoded {
            Ok(kind @ (Decoded::Trade | Decoded::BookTicker { .. } | Decoded::Mark | Decoded::Liquidation)) => {
                let first = self.decoded.first().copied();
                let dedup = &mut *self.dedup;
                // The counter of the frame's kind, and the id it must be past to be new.
                let (counter, seen) = match (kind, first.map(|e| e.kind)) {
                    (Decoded::Trade, Some(MarketEventKind::Trade(t))) => {
                        (&stats.frames_trade, Some((&mut dedup.trade_id, t.trade_id)))
                    }
                    (Decoded::Trade, _) => (&stats.frames_trade, None),
                    (Decoded::BookTicker { update_id }, _) => {
                        (&stats.frames_book_ticker, Some((&mut dedup.quote_update_id, update_id)))
                    }
                    (Decoded::Mark, _) => {
                        (&stats.frames_derivative, Some((&mut dedup.mark_ts, first.map_or(0, |e| e.ts_exchange.0))))
                    }
                    _ => (&stats.frames_derivative, None),
                };
                FeedStats::inc(counter);
                if seen.is_some_and(|(last, id)| !first_time(last, id)) {
                    FeedStats::inc(&stats.duplicates);
                } else {
                    self.ready.extend_from_slice(&self.decoded);
                }
            }
            Ok(Decoded::Depth { first_update_id, final_update_id, prev_final_update_id }) => {
                FeedStats::inc(&stats.frames_depth);
                let before = self.sync.stats();
                let status = self.sync.on_diff(
                    first_update_id,
                    final_update_id,
                    prev_final_update_id,
                    &self.decoded,
                    &mut self.ready,
                );
                account(stats, before, self.sync);
                if status == SyncStatus::NeedSnapshot && self.snapshot.is_none() {
                    let fetch = http::get_owned(self.cfg.snapshot_url(), self.cfg.snapshot_timeout);
                    self.snapshot = Some(tokio::spawn(fetch));
                }
            }
            Ok(Decoded::Ignored) => FeedStats::inc(&stats.frames_ignored),
            Err(error) => {
                FeedStats::inc(&stats.malformed);
                warn!(venue = "binance", %error, "malformed frame");
            }
        }
        self.send()
    }

    /// The snapshot request ended: apply it, or ask again (a few times, then give up).
    fn snapshot_done(
        &mut self,
        res: Result<Result<Vec<u8>, FeedError>, tokio::task::JoinError>,
    ) -> Result<(), FeedError> {
        let stats = self.stats;
        let ts_recv = now();
        self.ready.clear();
        let applied = match res {
            Ok(Ok(body)) => {
                FeedStats::inc(&stats.snapshots);
                if self.cfg.raw_tap.is_some() {
                    let text = String::from_utf8_lossy(&body).into_owned().into();
                    tap::send(self.cfg.raw_tap.as_ref(), ts_recv, &text)?;
                }
                parse_snapshot(&body).and_then(|s| {
                    let before = self.sync.stats();
                    let r = self.sync.on_snapshot(&s, ts_recv, &mut self.ready);
                    account(stats, before, self.sync);
                    r
                })
            }
            Ok(Err(e)) => Err(e),
            Err(join) => Err(FeedError::Http(join.to_string())),
        };
        match applied {
            Ok(SyncStatus::Synced) => {
                self.snapshot_tries = 0;
                info!(venue = "binance", "book synced");
            }
            Ok(SyncStatus::NeedSnapshot) | Err(_) => {
                if let Err(error) = &applied {
                    FeedStats::inc(&stats.snapshot_failures);
                    warn!(venue = "binance", %error, "snapshot failed");
                }
                self.snapshot_tries += 1;
                if self.snapshot_tries > 5 {
                    return Err(FeedError::NoSnapshot { failures: u64::from(self.snapshot_tries) });
                }
                let delay = Duration::from_millis(200 * u64::from(self.snapshot_tries));
                let url = self.cfg.snapshot_url();
                let timeout = self.cfg.snapshot_timeout;
                self.snapshot = Some(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    http::get(&url, timeout).await
                }));
            }
        }
        self.send()
    }

    fn send(&mut self) -> Result<(), FeedError> {
        if stamp_and_send(&mut self.ready, self.tx, self.stats, self.cfg.queue_policy)? {
            drop_resync(self.cfg, self.sync, self.tx, self.stats, &mut self.snapshot)?;
        }
        Ok(())
    }
}

/// A second connection opened before the first one's lifetime ends (make before break): its
/// frames are held until the first connection has caught up with where it starts ([`Begins`]).
struct Standby {
    ws: WsStream,
    opened: tokio::time::Instant,
    frames: Vec<(UnixNanos, Utf8Bytes)>,
    begins: Begins,
    scratch: Vec<MarketEvent>,
}

impl Standby {
    fn new(ws: WsStream) -> Self {
        Self {
            ws,
            opened: tokio::time::Instant::now(),
            frames: Vec::with_capacity(1024),
            begins: Begins::default(),
            scratch: Vec::with_capacity(1024),
        }
    }

    fn hold(&mut self, ts_recv: UnixNanos, text: Utf8Bytes, normalizer: &BinanceNormalizer) {
        self.scratch.clear();
        if let Ok(kind) = normalizer.normalize_str(text.as_str(), ts_recv, &mut self.scratch) {
            self.begins.note(kind, self.scratch.first());
        }
        self.frames.push((ts_recv, text));
    }

    /// The old connection has caught up with this one, or the handover has waited long enough.
    fn ready(&self, sync: &DepthSync, passed: &Dedup) -> bool {
        self.opened.elapsed() > HANDOVER_TIMEOUT
            || self.frames.len() >= HANDOVER_MAX_FRAMES
            || self.begins.caught_up(sync.last_update_id(), passed)
    }
}

/// Where a successor connection's streams begin, learnt from the frames it holds.
#[derive(Debug, Default)]
struct Begins {
    /// `U` of its first depth diff.
    first_depth: Option<u64>,
    /// Its first trade id, quote update id and mark time (0: none yet).
    first: Dedup,
    /// Its first frame with an id: once the old connection has delivered that one too, it has
    /// delivered everything sent before the new connection began.
    start: Option<Start>,
}

/// A frame by its id: a trade's, a quote's book update id, a mark's time, a diff's final id.
#[derive(Debug, Clone, Copy)]
enum Start {
    Trade(u64),
    Quote(u64),
    Mark(u64),
    Depth(u64),
}

impl Begins {
    /// Takes in one held frame: its kind and first event.
    fn note(&mut self, kind: Decoded, first_event: Option<&MarketEvent>) {
        let first = |at: &mut u64, id: u64| {
            if *at == 0 {
                *at = id;
            }
        };
        let start = match (kind, first_event.map(|e| e.kind)) {
            (Decoded::Depth { first_update_id, final_update_id, .. }, _) => {
                self.first_depth.get_or_insert(first_update_id);
                Some(Start::Depth(final_update_id))
            }
            (Decoded::Trade, Some(MarketEventKind::Trade(t))) => {
                first(&mut self.first.trade_id, t.trade_id);
                Some(Start::Trade(t.trade_id))
            }
            (Decoded::BookTicker { update_id }, _) => {
                first(&mut self.first.quote_update_id, update_id);
                Some(Start::Quote(update_id))
            }
            (Decoded::Mark, Some(_)) => {
                let ts = first_event.map_or(0, |e| e.ts_exchange.0);
                first(&mut self.first.mark_ts, ts);
                Some(Start::Mark(ts))
            }
            _ => None,
        };
        if self.start.is_none() {
            self.start = start.filter(|s| !matches!(s, Start::Trade(0) | Start::Quote(0) | Start::Mark(0)));
        }
    }

    /// True once the old connection (its book at `book_last`, its last trade, quote and mark
    /// passed on in `passed`) has delivered everything sent before this one began: it has
    /// delivered this one's first frame too (a connection's streams come in one order), its
    /// book holds every update before this one's first diff (or it is not synced, so there is
    /// nothing to keep), and it has reached this one's first trade, quote and mark (trade ids
    /// are consecutive; quote ids and mark times must overlap).
    fn caught_up(&self, book_last: Option<u64>, passed: &Dedup) -> bool {
        let book = match (book_last, self.first_depth) {
            (None, _) => true,
            (Some(last), Some(first)) => last + 1 >= first,
            (Some(_), None) => false,
        };
        let overlap = match self.start {
            None => false,
            Some(Start::Trade(id)) => passed.trade_id >= id,
            Some(Start::Quote(id)) => passed.quote_update_id >= id,
            Some(Start::Mark(ts)) => passed.mark_ts >= ts,
            Some(Start::Depth(last)) => book_last.is_none_or(|l| l >= last),
        };
        // 0: this connection has not sent one yet (or the frames carry no id).
        let reached = |last: u64, first: u64| first == 0 || last >= first;
        overlap
            && book
            && reached(passed.trade_id + 1, self.first.trade_id)
            && reached(passed.quote_update_id, self.first.quote_update_id)
            && reached(passed.mark_ts, self.first.mark_ts)
    }
}

/// Makes `standby` the connection: the old one is closed in the background, the book is kept,
/// and the held frames go through the flow (repeats dropped, the depth chain taken up).
fn take_over(ws: &mut WsStream, standby: Standby, flow: &mut Flow<'_>) -> Result<(), FeedError> {
    let mut old = std::mem::replace(ws, standby.ws);
    tokio::spawn(async move {
        let _ = old.close(None).await;
    });
    flow.sync.handover();
    FeedStats::inc(&flow.stats.planned_reconnects);
    info!(venue = "binance", symbol = %flow.cfg.symbol, held = standby.frames.len(), "switched to the new connection");
    for (ts_recv, text) in &standby.frames {
        flow.frame(text, *ts_recv)?;
    }
    Ok(())
}

async fn standby_next(standby: &mut Option<Standby>) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match standby {
        Some(s) => s.ws.next().await,
        None => std::future::pending().await,
    }
}

async fn session(
    cfg: &BinanceFeedConfig,
    normalizer: &BinanceNormalizer,
    sync: &mut DepthSync,
    dedup: &mut Dedup,
    tx: &Sender<MarketEvent>,
    stats: &FeedStats,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<End, FeedError> {
    let url = cfg.stream_url();
    let mut ws = connect(cfg, &url).await?;
    let mut last_rx = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(cfg.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    stats.connected.store(1, std::sync::atomic::Ordering::Relaxed);
    info!(venue = "binance", url = %url, "connected");
    let mut flow = Flow {
        cfg,
        normalizer,
        sync,
        dedup,
        tx,
        stats,
        decoded: Vec::with_capacity(4096),
        ready: Vec::with_capacity(8192),
        snapshot: None,
        snapshot_tries: 0,
        last_data: tokio::time::Instant::now(),
    };
    let mut stale_check = tokio::time::interval(stale_check_period(cfg.stale_after));
    stale_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Planned reconnection before the venue's connection lifetime ends.
    let planned = !cfg.max_session.is_zero();
    let mut replace_at = tokio::time::Instant::now() + cfg.max_session;
    let mut standby: Option<Standby> = None;
    let result = loop {
        tokio::select! {
            msg = ws.next() => {
                let msg = match msg {
                    Some(Ok(m)) => m,
                    other => {
                        // The old connection ended while its successor stands by: carry on there.
                        if let Some(s) = standby.take() {
                            take_over(&mut ws, s, &mut flow)?;
                            replace_at = tokio::time::Instant::now() + cfg.max_session;
                            continue;
                        }
                        break match other {
                            Some(Err(e)) => Err(e.into()),
                            _ => Err(FeedError::ConnectionLost),
                        };
                    }
                };
                last_rx = tokio::time::Instant::now();
                let ts_recv = now();
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Binary(_) => { FeedStats::inc(&stats.malformed); continue; }
                    Message::Close(_) => {
                        if let Some(s) = standby.take() {
                            take_over(&mut ws, s, &mut flow)?;
                            replace_at = tokio::time::Instant::now() + cfg.max_session;
                            continue;
                        }
                        break Ok(End::Closed);
                    }
                    _ => continue,
                };
                flow.frame(&text, ts_recv)?;
                if standby.as_ref().is_some_and(|s| s.ready(flow.sync, flow.dedup)) {
                    if let Some(s) = standby.take() {
                        take_over(&mut ws, s, &mut flow)?;
                        replace_at = tokio::time::Instant::now() + cfg.max_session;
                    }
                }
            }
            msg = standby_next(&mut standby), if standby.is_some() => {
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(s) = standby.as_mut() {
                            s.hold(now(), text, normalizer);
                        }
                        if standby.as_ref().is_some_and(|s| s.ready(flow.sync, flow.dedup)) {
                            if let Some(s) = standby.take() {
                                take_over(&mut ws, s, &mut flow)?;
                                replace_at = tokio::time::Instant::now() + cfg.max_session;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        warn!(venue = "binance", "the new connection failed before the handover; trying again");
                        standby = None;
                        replace_at = tokio::time::Instant::now() + cfg.backoff_cap.min(cfg.max_session);
                    }
                    Some(Ok(_)) => {}
                }
            }
            _ = tokio::time::sleep_until(replace_at), if planned && standby.is_none() => {
                match tokio::time::timeout(HANDOVER_TIMEOUT, connect(cfg, &url)).await {
                    Ok(Ok(ws)) => {
                        info!(venue = "binance", symbol = %cfg.symbol, "connection lifetime nearly over: opened its successor");
                        standby = Some(Standby::new(ws));
                    }
                    Ok(Err(error)) => {
                        warn!(venue = "binance", %error, "could not open the successor connection; trying again");
                        replace_at = tokio::time::Instant::now() + cfg.backoff_cap.min(cfg.max_session);
                    }
                    Err(_) => {
                        warn!(venue = "binance", "successor connection timed out; trying again");
                        replace_at = tokio::time::Instant::now() + cfg.backoff_cap.min(cfg.max_session);
                    }
                }
            }
            res = async {
                match flow.snapshot.as_mut() {
                    Some(h) => h.await,
                    None => std::future::pending().await,
                }
            }, if flow.snapshot.is_some() => {
                flow.snapshot = None;
                if let Err(e) = flow.snapshot_done(res) {
                    break Err(e);
                }
            }
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                if let Some(mut s) = standby.take() {
                    let _ = s.ws.close(None).await;
                }
                break Ok(End::Shutdown);
            }
            _ = tokio::time::sleep_until(last_rx + cfg.read_timeout) => {
                break Err(FeedError::Stalled { secs: cfg.read_timeout.as_secs_f64() });
            }
            _ = ping.tick() => {
                if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                    break Err(e.into());
                }
                if let Some(s) = standby.as_mut() {
                    let _ = s.ws.send(Message::Ping(Default::default())).await;
                }
                if standby.as_ref().is_some_and(|s| s.ready(flow.sync, flow.dedup)) {
                    if let Some(s) = standby.take() {
                        take_over(&mut ws, s, &mut flow)?;
                        replace_at = tokio::time::Instant::now() + cfg.max_session;
                    }
                }
            }
            _ = stale_check.tick(), if !cfg.stale_after.is_zero() => {
                if flow.last_data.elapsed() > cfg.stale_after {
                    FeedStats::inc(&stats.stale_instruments);
                    warn!(venue = "binance", symbol = %cfg.symbol, silent_s = flow.last_data.elapsed().as_secs_f64(), "no market data on a live connection: reconnecting");
                    break Ok(End::Stale);
                }
            }
        }
    };
    if let Some(h) = flow.snapshot.take() {
        if matches!(result, Ok(End::Closed)) && !flow.sync.is_synced() {
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
    if matches!(result, Ok(End::Closed | End::Stale)) {
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
    let lost_book = push(ready, tx, stats, policy)?;
    // Every event of a frame shares its receive time: one sample per frame, once all are queued.
    if let Some(first) = ready.first() {
        stats.frame_to_queue.record(now().since(first.ts_recv));
    }
    Ok(lost_book)
}

/// Pushes events under `policy`; true when a book delta was dropped.
fn push(
    ready: &[MarketEvent],
    tx: &Sender<MarketEvent>,
    stats: &FeedStats,
    policy: QueuePolicy,
) -> Result<bool, FeedError> {
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
    let resets: Vec<MarketEvent> = instruments.into_iter().map(book_reset).collect();
    push(&resets, tx, stats, QueuePolicy::Block).map(|_| ())
}

#[cfg(test)]
mod tests {
    use argus_core::{InstrumentId, Price, Qty, Side, Trade};

    use super::*;

    fn diff(first: u64, last: u64) -> Decoded {
        Decoded::Depth { first_update_id: first, final_update_id: last, prev_final_update_id: None }
    }

    fn trade(id: u64) -> MarketEvent {
        let t = Trade { price: Price::from_units(1), qty: Qty::from_units(1), trade_id: id, aggressor: Side::Buy };
        MarketEvent {
            ts_exchange: UnixNanos(1),
            ts_recv: UnixNanos(1),
            instrument: InstrumentId(0),
            decode_ns: 0,
            kind: MarketEventKind::Trade(t),
        }
    }

    fn passed(trade_id: u64, quote_update_id: u64) -> Dedup {
        Dedup { trade_id, quote_update_id, mark_ts: 0 }
    }

    #[test]
    fn a_successor_that_begins_with_a_diff_waits_until_the_old_connection_has_delivered_that_diff() {
        // The successor's stream: diff 101..110, then a quote (book id 112) and a trade.
        let mut b = Begins::default();
        b.note(diff(101, 110), None);
        b.note(Decoded::BookTicker { update_id: 112 }, None);
        b.note(Decoded::Trade, Some(&trade(500)));
        // The old connection has the diff before it (book at 100) but not yet the quotes sent
        // between that diff and the successor's first frame: switching now would lose them.
        assert!(!b.caught_up(Some(100), &passed(499, 103)));
        // Once the old connection has delivered the successor's first diff, and with it every
        // frame sent before, the switch loses nothing (repeats are dropped by id).
        assert!(b.caught_up(Some(110), &passed(499, 112)));
        // Quotes and trades the successor has sent must have been reached too.
        assert!(!b.caught_up(Some(110), &passed(499, 111)));
        assert!(!b.caught_up(Some(110), &passed(498, 112)));
    }

    #[test]
    fn a_successor_that_begins_with_a_quote_needs_an_overlap_and_the_book_chain() {
        let mut b = Begins::default();
        b.note(Decoded::BookTicker { update_id: 205 }, None);
        assert!(!b.caught_up(Some(300), &passed(0, 205)), "no diff from the successor yet: the book would break");
        b.note(diff(301, 310), None);
        assert!(!b.caught_up(Some(300), &passed(0, 204)), "the old connection has not reached its first quote");
        assert!(b.caught_up(Some(300), &passed(0, 205)));
        assert!(!b.caught_up(Some(299), &passed(0, 205)), "a diff between them would be missing");
        // No book to keep (not synced): only the overlap counts.
        assert!(b.caught_up(None, &passed(0, 205)));
    }

    #[test]
    fn frames_without_ids_do_not_mark_where_a_successor_begins() {
        let mut b = Begins::default();
        b.note(Decoded::BookTicker { update_id: 0 }, None);
        b.note(Decoded::Ignored, None);
        assert!(!b.caught_up(None, &passed(10, 10)), "nothing to overlap with yet");
        b.note(Decoded::Trade, Some(&trade(42)));
        assert!(!b.caught_up(None, &passed(41, 0)));
        assert!(b.caught_up(None, &passed(42, 0)));
    }
}
