//! An embedded exchange that replays a recording on loopback, speaking the venue's own protocol:
//! websocket frames on `/stream` (Binance's combined-stream path) and the recorded REST depth
//! snapshot on `/api/v3/depth` (or `/fapi/v1/depth`), so the real adapter connects and syncs
//! exactly as it does against the venue. Faults (dropped connection, lost or corrupted frames) can
//! be injected for tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

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
            _ => Err(format!(
                "speed must be a positive number or `max`, got `{s}`"
            )),
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
}

struct Shared {
    frames: Vec<(u64, Utf8Bytes)>,
    snapshot: Option<String>,
    speed: Speed,
    faults: Faults,
}

/// A running replay server.
#[derive(Debug)]
pub struct ReplayServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ReplayServer {
    /// Binds `127.0.0.1:0` and serves `frames` to every websocket client, from the start.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start(
        frames: &[RecordedFrame],
        speed: Speed,
        faults: Faults,
    ) -> Result<Self, FeedError> {
        let snapshot = frames
            .iter()
            .find(|f| f.is_snapshot())
            .map(|f| f.frame.clone());
        let ws_frames = frames
            .iter()
            .filter(|f| !f.is_snapshot())
            .map(|f| (f.ts_recv_ns, Utf8Bytes::from(f.frame.clone())))
            .collect();
        let shared = Arc::new(Shared {
            frames: ws_frames,
            snapshot,
            speed,
            faults,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Err(error) = serve(stream, shared).await {
                        tracing::debug!(%error, "replay connection ended");
                    }
                });
            }
        });
        Ok(Self { addr, task })
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
        return replay_ws(stream, &shared).await;
    }
    // Plain HTTP: read the request head and answer once.
    let mut buf = vec![0_u8; 8192];
    let _ = stream.read(&mut buf).await?;
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (status, body) = if path.starts_with("/api/v3/depth") || path.starts_with("/fapi/v1/depth")
    {
        match (&shared.snapshot, shared.faults.no_snapshot) {
            (Some(s), false) => ("200 OK", s.clone()),
            _ => (
                "503 Service Unavailable",
                r#"{"code":-1003,"msg":"snapshot unavailable"}"#.to_owned(),
            ),
        }
    } else {
        (
            "404 Not Found",
            r#"{"code":-1100,"msg":"unknown path"}"#.to_owned(),
        )
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

async fn replay_ws(stream: TcpStream, shared: &Shared) -> Result<(), FeedError> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    let start = Instant::now();
    let t0 = shared.frames.first().map_or(0, |f| f.0);
    for (i, (ts, frame)) in shared.frames.iter().enumerate() {
        if shared.faults.drop_after == Some(i) {
            // Abrupt loss: no close handshake.
            return Ok(());
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
            Message::Text(Utf8Bytes::from_static(
                "{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"p\":",
            ))
        } else {
            Message::Text(frame.clone())
        };
        ws.feed(msg).await?;
        if i % 64 == 63 {
            ws.flush().await?;
        }
    }
    ws.flush().await?;
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "end of recording".into(),
    })))
    .await?;
    // Wait for the client's close reply so every frame is delivered before the socket closes.
    use futures_util::StreamExt;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    Ok(())
}
