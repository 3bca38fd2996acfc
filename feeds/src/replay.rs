//! An embedded exchange that replays a recording on loopback, speaking the venue's own protocol:
//! websocket frames on `/stream` (Binance's combined-stream path) and the recorded REST depth
//! snapshot on `/api/v3/depth` (or `/fapi/v1/depth`), so the real adapter connects and syncs
//! exactly as it does against the venue; `exchangeInfo` too when given one
//! ([`ReplayServer::set_exchange_info`]). Faults (dropped connection, lost or corrupted frames) can
//! be injected for tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use argus_core::{MarketEventKind, OrderBook, Side, UnixNanos};

use crate::binance::{parse_snapshot, BinanceNormalizer, Decoded};
use crate::recording::RecordedFrame;
use crate::FeedError;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Recorded inter-arrival times divided by this factor.
    Factor(f64),
    /// As fast as the client reads.
    Max,
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match s.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(format!("speed must be a positive number or `max`, got `{s}`")),
        }
    }
}

/// Faults to inject, by 0-based index among the websocket frames.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Close the TCP connection abruptly (no close frame) after this many frames.
    pub drop_after: Option<usize>,
    /// Frames never sent (a sequence gap for depth streams).
    pub skip: Vec<usize>,
    /// Frames replaced by malformed bytes.
    pub corrupt: Vec<usize>,
    /// Answer snapshot requests with HTTP 503.
    pub no_snapshot: bool,
    /// On the first connection only: stop sending after this many frames, keeping the
    /// connection open (a stalled venue or a half-open TCP connection).
    pub stall_after: Option<usize>,
    /// On the first connection only: stop sending market data after this many frames but keep
    /// answering pings (a venue whose streams stop while the connection lives).
    pub mute_after: Option<usize>,
    /// On the first connection only: send a frame of this many bytes in place of frame 100.
    pub oversized: Option<usize>,
}

struct Shared {
    frames: Vec<(u64, Utf8Bytes)>,
    /// Websocket frames recorded before the REST snapshot was answered in the original session.
    snapshot_at: Option<usize>,
    speed: Speed,
    faults: Faults,
    /// The exchange's own book: the recorded snapshot plus every diff replayed since, so a
    /// client that resyncs mid-stream gets a snapshot consistent with what it was sent.
    book: Mutex<ExchangeBook>,
    /// Connections served so far (first-connection-only faults key on it).
    connections: std::sync::atomic::AtomicU64,
    /// Live mode: one stream, paced once, that every connection joins where it stands.
    live: Option<LiveStream>,
    /// `GET /api/v3/exchangeInfo` (and `/fapi/v1/exchangeInfo`) body; 404 when unset.
    exchange_info: Mutex<Option<String>>,
}

struct LiveStream {
    /// `None` ends the stream.
    tx: tokio::sync::broadcast::Sender<Option<Utf8Bytes>>,
    started: std::sync::atomic::AtomicBool,
}

/// Book state of the simulated exchange.
struct ExchangeBook {
    normalizer: BinanceNormalizer,
    book: OrderBook,
    /// `lastUpdateId` of the book, `None` until the recorded snapshot is loaded.
    last_update_id: Option<u64>,
    recorded: Option<String>,
    /// The first snapshot request of a connection gets the recorded snapshot, as the venue
    /// served it in the original session; later ones (resyncs) get the book as it is now.
    recorded_served: bool,
    scratch: Vec<argus_core::MarketEvent>,
}

impl ExchangeBook {
    fn new(recorded: Option<String>) -> Self {
        let mut b = Self {
            normalizer: BinanceNormalizer::new([]),
            book: OrderBook::new(20_000),
            last_update_id: None,
            recorded: None,
            recorded_served: false,
            scratch: Vec::new(),
        };
        if let Some(snap) = recorded.as_deref().and_then(|s| parse_snapshot(s.as_bytes()).ok()) {
            for (side, levels) in [(Side::Buy, &snap.bids), (Side::Sell, &snap.asks)] {
                for &(price, qty) in levels {
                    b.book.apply(&argus_core::BookDelta {
                        action: argus_core::BookAction::Add,
                        side,
                        flags: argus_core::DeltaFlags::default(),
                        price,
                        qty,
                        sequence: snap.last_update_id,
                    });
                }
            }
            b.last_update_id = Some(snap.last_update_id);
        }
        b.recorded = recorded;
        b
    }

    /// Applies a depth frame the exchange has published (sent or lost in transit).
    fn publish(&mut self, frame: &str) {
        let Some(last) = self.last_update_id else { return };
        self.scratch.clear();
        // Any symbol: the exchange book follows whatever the recording carries.
        let decoded = self.normalizer.normalize_any_symbol(frame.as_bytes(), UnixNanos(0), &mut self.scratch);
        if let Ok(Decoded::Depth { final_update_id, .. }) = decoded {
            if final_update_id <= last {
                return;
            }
            for ev in &self.scratch {
                if let MarketEventKind::Delta(d) = ev.kind {
                    self.book.apply(&d);
                }
            }
            self.last_update_id = Some(final_update_id);
        }
    }

    /// `GET /api/v3/depth` body.
    fn snapshot_json(&mut self, limit: usize) -> Option<String> {
        if !self.recorded_served {
            self.recorded_served = true;
            if let Some(rec) = &self.recorded {
                return Some(rec.clone());
            }
        }
        let last = self.last_update_id?;
        let side = |s: Side| -> String {
            self.book
                .levels(s)
                .take(limit)
                .map(|l| format!("[\"{}\",\"{}\"]", l.price.display_with(8), l.qty.display_with(8)))
                .collect::<Vec<_>>()
                .join(",")
        };
        Some(format!("{{\"lastUpdateId\":{last},\"bids\":[{}],\"asks\":[{}]}}", side(Side::Buy), side(Side::Sell)))
    }
}

/// A running replay server.
pub struct ReplayServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl ReplayServer {
    /// Binds `127.0.0.1:0` and serves `frames` to every websocket client, from the start.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start(frames: &[RecordedFrame], speed: Speed, faults: Faults) -> Result<Self, FeedError> {
        Self::start_with(frames, speed, faults, false).await
    }

    /// Like a venue: the recording plays once, from the first connection on, and each
    /// connection receives it from the moment it joins (two connections at once get the same
    /// frames at the same time, as on Binance during a planned reconnect). No faults.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start_live(frames: &[RecordedFrame], speed: Speed) -> Result<Self, FeedError> {
        Self::start_with(frames, speed, Faults::default(), true).await
    }

    async fn start_with(frames: &[RecordedFrame], speed: Speed, faults: Faults, live: bool) -> Result<Self, FeedError> {
        let snapshot = frames.iter().find(|f| f.is_snapshot()).map(|f| f.frame.clone());
        let ws_frames = frames
            .iter()
            .filter(|f| !f.is_snapshot())
            .map(|f| (f.ts_recv_ns, Utf8Bytes::from(f.frame.clone())))
            .collect();
        let snapshot_at = frames.iter().position(RecordedFrame::is_snapshot);
        let book = Mutex::new(ExchangeBook::new(snapshot));
        let shared = Arc::new(Shared {
            frames: ws_frames,
            snapshot_at,
            speed,
            faults,
            book,
            connections: std::sync::atomic::AtomicU64::new(0),
            live: live.then(|| LiveStream {
                // Room for the whole recording: a slow client is never lagged out.
                tx: tokio::sync::broadcast::channel(frames.len() + 1).0,
                started: std::sync::atomic::AtomicBool::new(false),
            }),
            exchange_info: Mutex::new(None),
        });
        let served = Arc::clone(&shared);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&served);
                tokio::spawn(async move {
                    if let Err(error) = serve(stream, shared).await {
                        tracing::debug!(%error, "replay connection ended");
                    }
                });
            }
        });
        Ok(Self { addr, task, shared })
    }

    /// Answers `GET /api/v3/exchangeInfo` and `/fapi/v1/exchangeInfo` with `body` (the venue's
    /// JSON, as `argus_feeds::binance::parse_exchange_info` reads it) from now on.
    pub fn set_exchange_info(&self, body: String) {
        if let Ok(mut info) = self.shared.exchange_info.lock() {
            *info = Some(body);
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for websocket streams (`ws://127.0.0.1:port`).
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Base URL for REST (`http://127.0.0.1:port`).
    pub fn rest_base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl std::fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) -> Result<(), FeedError> {
    stream.set_nodelay(true)?;
    let mut head = [0_u8; 2048];
    let n = stream.peek(&mut head).await?;
    let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    if head.contains("upgrade: websocket") {
        if shared.live.is_some() {
            return live_ws(stream, shared).await;
        }
        return replay_ws(stream, &shared).await;
    }
    // Plain HTTP: read the request head and answer once.
    let mut buf = vec![0_u8; 8192];
    let _ = stream.read(&mut buf).await?;
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (status, body) = if path.starts_with("/api/v3/depth") || path.starts_with("/fapi/v1/depth") {
        let limit = path
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("limit="))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(100)
            .min(5000);
        let snap = if shared.faults.no_snapshot {
            None
        } else {
            shared.book.lock().ok().and_then(|mut b| b.snapshot_json(limit))
        };
        match snap {
            Some(s) => ("200 OK", s),
            None => ("503 Service Unavailable", r#"{"code":-1003,"msg":"snapshot unavailable"}"#.to_owned()),
        }
    } else if path.starts_with("/api/v3/exchangeinfo") || path.starts_with("/fapi/v1/exchangeinfo") {
        match shared.exchange_info.lock().ok().and_then(|i| i.clone()) {
            Some(body) => ("200 OK", body),
            None => ("404 Not Found", r#"{"code":-1100,"msg":"no exchangeInfo served"}"#.to_owned()),
        }
    } else {
        ("404 Not Found", r#"{"code":-1100,"msg":"unknown path"}"#.to_owned())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// A connection to the live stream: the frames from now on, then a close frame at its end.
async fn live_ws(stream: TcpStream, shared: Arc<Shared>) -> Result<(), FeedError> {
    use futures_util::StreamExt;
    let ws = tokio_tungstenite::accept_async(stream).await?;
    shared.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let Some(live) = shared.live.as_ref() else { return Ok(()) };
    let mut rx = live.tx.subscribe();
    if !live.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
        tokio::spawn(broadcast(Arc::clone(&shared)));
    }
    let (mut tx, mut client) = ws.split();
    // Reading answers the client's pings.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = client.next().await {} });
    while let Ok(Some(frame)) = rx.recv().await {
        tx.send(Message::Text(frame)).await?;
    }
    tx.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "end of recording".into() }))).await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    Ok(())
}

/// Plays the recording once into the live stream, at the server's speed, keeping the
/// exchange book and the recorded snapshot's place in the stream as a replay does.
async fn broadcast(shared: Arc<Shared>) {
    let Some(live) = shared.live.as_ref() else { return };
    let start = Instant::now();
    let t0 = shared.frames.first().map_or(0, |f| f.0);
    for (i, (ts, frame)) in shared.frames.iter().enumerate() {
        if frame.as_str().contains("depthUpdate") {
            if let Ok(mut b) = shared.book.lock() {
                b.publish(frame.as_str());
            }
        }
        if Some(i) == shared.snapshot_at {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !shared.book.lock().is_ok_and(|b| b.recorded_served) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        match shared.speed {
            Speed::Factor(f) => {
                let due = Duration::from_nanos(((ts.saturating_sub(t0)) as f64 / f) as u64);
                let elapsed = start.elapsed();
                if due > elapsed + Duration::from_millis(1) {
                    tokio::time::sleep(due - elapsed).await;
                }
            }
            Speed::Max if i % 64 == 63 => tokio::task::yield_now().await,
            Speed::Max => {}
        }
        let _ = live.tx.send(Some(frame.clone()));
    }
    let _ = live.tx.send(None);
}

async fn replay_ws(stream: TcpStream, shared: &Shared) -> Result<(), FeedError> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    // A new session replays from the start: the exchange's book starts over with it.
    if let Ok(mut b) = shared.book.lock() {
        let recorded = b.recorded.take();
        *b = ExchangeBook::new(recorded);
    }
    let start = Instant::now();
    let t0 = shared.frames.first().map_or(0, |f| f.0);
    let first = shared.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
    for (i, (ts, frame)) in shared.frames.iter().enumerate() {
        if shared.faults.drop_after == Some(i) {
            // Abrupt loss: no close handshake.
            return Ok(());
        }
        if first && shared.faults.stall_after == Some(i) {
            ws.flush().await?;
            // Silent and deaf (not even pongs) but open, until the client gives up on us.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        if first && shared.faults.mute_after == Some(i) {
            ws.flush().await?;
            // Reading answers the client's pings (tungstenite queues and flushes the pongs).
            use futures_util::StreamExt;
            while let Some(Ok(_)) = ws.next().await {}
            return Ok(());
        }
        if first && i == 100 {
            if let Some(n) = shared.faults.oversized {
                ws.send(Message::Text("x".repeat(n).into())).await?;
            }
        }
        if frame.as_str().contains("depthUpdate") {
            if let Ok(mut b) = shared.book.lock() {
                b.publish(frame.as_str());
            }
        }
        if Some(i) == shared.snapshot_at && !shared.faults.no_snapshot {
            // Causality: the original session had its snapshot before these frames. Never run
            // ahead of that REST answer (matters at `--speed max`), so every replay of a
            // recording puts the snapshot at the same point of the stream.
            ws.flush().await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while !shared.book.lock().is_ok_and(|b| b.recorded_served) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if shared.faults.skip.contains(&i) {
            continue;
        }
        if let Speed::Factor(f) = shared.speed {
            let due = Duration::from_nanos(((ts.saturating_sub(t0)) as f64 / f) as u64);
            let elapsed = start.elapsed();
            if due > elapsed + Duration::from_millis(1) {
                ws.flush().await?;
                tokio::time::sleep(due - elapsed).await;
            }
        }
        let msg = if shared.faults.corrupt.contains(&i) {
            Message::Text(Utf8Bytes::from_static("{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"p\":"))
        } else {
            Message::Text(frame.clone())
        };
        ws.feed(msg).await?;
        if i % 64 == 63 {
            ws.flush().await?;
        }
    }
    ws.flush().await?;
    ws.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "end of recording".into() }))).await?;
    // Wait for the client's close reply so every frame is delivered before the socket closes.
    use futures_util::StreamExt;
    let _ = tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = ws.next().await {} }).await;
    Ok(())
}

/// The websocket frames of a raw capture (any format `feeds check` reads), in order.
///
/// # Errors
/// When a file cannot be opened.
pub fn capture_frames(paths: &[std::path::PathBuf]) -> Result<Vec<String>, FeedError> {
    Ok(crate::rawlog::MergedInputs::open(paths)?
        .filter(|r| matches!(r.kind, crate::rawlog::RawKind::Ws))
        .map(|r| r.body)
        .collect())
}

struct CaptureShared {
    frames: Vec<Utf8Bytes>,
    /// Frames lost on the first connection only (a gap the client must resync from).
    skip_first: Vec<usize>,
    connections: std::sync::atomic::AtomicU64,
    /// Every text message clients sent (subscriptions, pings), in order.
    received: Mutex<Vec<String>>,
    /// After the capture, keep the connection open answering pings instead of closing it.
    hold_open: bool,
}

/// A loopback venue for the snapshot-over-websocket venues (OKX, Bybit, Coinbase, Kraken):
/// each connection, once the client has sent its first message (the subscription), gets the
/// capture's frames from the start (so a resubscription starts with the snapshot, as on the
/// venue), as fast as it reads, then a close frame. Application pings (`ping`) get `pong`.
#[derive(Debug)]
pub struct CaptureServer {
    addr: SocketAddr,
    shared: Arc<CaptureShared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for CaptureShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureShared").field("frames", &self.frames.len()).finish_non_exhaustive()
    }
}

impl CaptureServer {
    /// Binds `127.0.0.1:0`.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start(frames: Vec<String>, skip_first: Vec<usize>) -> Result<Self, FeedError> {
        Self::start_with(frames, skip_first, false).await
    }

    /// Like [`CaptureServer::start`], but each connection stays open after the capture,
    /// answering pings and sending nothing else (market data that stopped on a live connection).
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start_held_open(frames: Vec<String>) -> Result<Self, FeedError> {
        Self::start_with(frames, Vec::new(), true).await
    }

    async fn start_with(frames: Vec<String>, skip_first: Vec<usize>, hold_open: bool) -> Result<Self, FeedError> {
        let shared = Arc::new(CaptureShared {
            frames: frames.into_iter().map(Utf8Bytes::from).collect(),
            skip_first,
            connections: std::sync::atomic::AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
            hold_open,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let serving = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    if let Err(error) = serve_capture(stream, shared).await {
                        tracing::debug!(%error, "capture connection ended");
                    }
                });
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// `ws://127.0.0.1:port/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Text messages clients have sent.
    pub fn received(&self) -> Vec<String> {
        self.shared.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for CaptureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_capture(stream: TcpStream, shared: Arc<CaptureShared>) -> Result<(), FeedError> {
    use futures_util::StreamExt;
    stream.set_nodelay(true)?;
    let ws = tokio_tungstenite::accept_async(stream).await?;
    let first = shared.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
    let (mut tx, mut rx) = ws.split();
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel::<()>();
    let reader_shared = Arc::clone(&shared);
    let reader = tokio::spawn(async move {
        let mut subscribed = Some(subscribed_tx);
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Text(t) = msg {
                if t.as_str() == "ping" {
                    let _ = pong_tx.send(());
                }
                if let Ok(mut r) = reader_shared.received.lock() {
                    r.push(t.as_str().to_owned());
                }
                if let Some(s) = subscribed.take() {
                    let _ = s.send(());
                }
            }
        }
    });
    // Nothing is sent before the client subscribes.
    if tokio::time::timeout(Duration::from_secs(10), subscribed_rx).await.is_err() {
        reader.abort();
        return Ok(());
    }
    for (i, frame) in shared.frames.iter().enumerate() {
        while pong_rx.try_recv().is_ok() {
            tx.feed(Message::Text(Utf8Bytes::from_static("pong"))).await?;
        }
        if first && shared.skip_first.contains(&i) {
            continue;
        }
        tx.feed(Message::Text(frame.clone())).await?;
        if i % 64 == 63 {
            tx.flush().await?;
        }
    }
    if shared.hold_open {
        tx.flush().await?;
        // Pongs until the client hangs up (the reader then drops the sender).
        while pong_rx.recv().await.is_some() {
            tx.send(Message::Text(Utf8Bytes::from_static("pong"))).await?;
        }
        return Ok(());
    }
    tx.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "end of capture".into() }))).await?;
    // The reader ends when the client answers the close (every frame delivered by then).
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    Ok(())
}
