//! The Ethereum chain feed: a JSON-RPC websocket session (`eth_subscribe newHeads`) that
//! delivers every canonical block in order with its receipts, reorg-safe and gap-free.
//!
//! * Each head triggers a sync from the last delivered block to the head: full blocks
//!   (`eth_getBlockByNumber(n, true)`), receipts (`eth_getBlockReceipts`, or a batch of
//!   `eth_getTransactionReceipt` where the node lacks it), and `eth_getCode` for approval
//!   grantees (EOA or contract), cached.
//! * A block whose parent is not our tip orphans the tip (`ChainEvent::Orphaned`, newest first)
//!   until the chains meet again; a head at or below our tip orphans what it replaces.
//! * On reconnect (capped exponential backoff with jitter), blocks missed while away are
//!   backfilled from the last delivered one. `from_block` starts from history.
//! * The consumer queue is bounded; the feed waits when it is full (a block is never dropped).
//! * With `pending`, `eth_subscribe newPendingTransactions` too, asking for whole transactions
//!   (geth, Erigon, Nethermind; a node that refuses gets the hash form). Announced hashes are
//!   fetched (`eth_getTransactionByHash`, every announcement already arrived in one JSON-RPC
//!   batch), approval grantees looked up (one batch too), and each transaction is delivered as
//!   `ChainEvent::Pending` before any block holds it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argus_core::{Address, ChainEvent, PendingTx, H256};
use crossbeam_channel::{Sender, TrySendError};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tracing::{info, warn};

use super::block::{approval_grantees, call_grantee, parse_pending, parse_pending_object, RawBlock, Receipts};
use super::decode::DecodeError;
use crate::FeedError;

/// Where and how to follow one chain.
#[derive(Clone, Debug)]
pub struct ChainFeedConfig {
    /// `ws://` or `wss://` JSON-RPC endpoint.
    pub url: String,
    /// Start here (history) instead of at the current head.
    pub from_block: Option<u64>,
    /// The chain id the node must report (`eth_chainId`); `None` accepts any.
    pub expect_chain_id: Option<u64>,
    /// A request unanswered for this long fails the session (and reconnects).
    pub request_timeout: Duration,
    /// No head for this long: ping; no answer either: the connection is dead.
    pub idle_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub max_reconnects: u32,
    /// Delivered blocks remembered to detect reorgs.
    pub reorg_depth: usize,
    /// Stop after delivering this block (history runs and tests).
    pub to_block: Option<u64>,
    /// Also follow the node's pending transactions (`newPendingTransactions`).
    pub pending: bool,
}

impl ChainFeedConfig {
    pub fn new(url: &str) -> Self {
        ChainFeedConfig {
            url: url.to_owned(),
            from_block: None,
            expect_chain_id: None,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(30),
            max_reconnects: u32::MAX,
            reorg_depth: 128,
            to_block: None,
            pending: false,
        }
    }
}

/// Counters of one chain feed (read by metrics).
#[derive(Debug, Default)]
pub struct ChainFeedStats {
    pub chain_id: AtomicU64,
    pub connected: AtomicU64,
    pub reconnects: AtomicU64,
    pub heads: AtomicU64,
    pub blocks: AtomicU64,
    /// Blocks fetched because no head announced them (catch-up, reconnect, `from_block`).
    pub backfilled: AtomicU64,
    pub reorgs: AtomicU64,
    pub orphaned: AtomicU64,
    /// Reorgs deeper than `reorg_depth`: the fork point was not found in memory.
    pub deep_reorgs: AtomicU64,
    pub rpc_errors: AtomicU64,
    pub decode_errors: AtomicU64,
    pub queue_full: AtomicU64,
    pub last_block: AtomicU64,
    /// Receive time of the last head minus its block timestamp, ms (how late the node is).
    pub head_lag_ms: AtomicU64,
    /// Pending transactions announced, and of those delivered (the rest were mined, dropped
    /// or replaced before the feed fetched them).
    pub pending_announced: AtomicU64,
    pub pending_delivered: AtomicU64,
    /// Requests that fetched announced hashes (one per batch; none when the node announces
    /// whole transactions).
    pub pending_fetches: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Pending announcements fetched in one request at most.
const PENDING_BATCH: usize = 256;

/// The JSON-RPC session: requests with ids, responses matched by id, subscription notifications
/// queued until the sync loop asks for them.
struct Rpc {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
    notifications: VecDeque<Value>,
    timeout: Duration,
}

impl Rpc {
    async fn send(&mut self, body: Value) -> Result<(), FeedError> {
        self.ws.send(Message::text(body.to_string())).await?;
        Ok(())
    }

    /// One call; the response's `error` becomes `FeedError::Rpc`.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, FeedError> {
        let text = self.call_text(method, params).await?;
        rpc_result(method, serde_json::from_str(&text)?)
    }

    /// One call, answered with the response's text (blocks and receipts are decoded from it
    /// without building a tree).
    async fn call_text(&mut self, method: &str, params: Value) -> Result<String, FeedError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await?;
        self.wait(|f| matches!(f, Frame::One { id: Some(i), .. } if *i == id)).await
    }

    /// Queues the notifications that have already arrived, without waiting for more.
    fn queue_arrived(&mut self) -> Result<(), FeedError> {
        for _ in 0..PENDING_BATCH {
            let Some(frame) = self.ws.next().now_or_never() else { return Ok(()) };
            if let Some(text) = self.frame(frame)? {
                if matches!(classify(&text)?, Frame::One { subscription: true, .. }) {
                    self.notifications.push_back(serde_json::from_str(&text)?);
                }
            }
        }
        Ok(())
    }

    /// A batch; responses come back in request order (errors included, per element).
    async fn batch(&mut self, calls: &[(&str, Value)]) -> Result<Vec<Value>, FeedError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.next_id;
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| json!({"jsonrpc": "2.0", "id": first + i as u64, "method": m, "params": p}))
            .collect();
        self.next_id += calls.len() as u64;
        self.send(Value::Array(body)).await?;
        let text = self.wait(|f| matches!(f, Frame::Batch { first_id: Some(i) } if *i >= first)).await?;
        let mut by_id: HashMap<u64, Value> = HashMap::new();
        if let Value::Array(items) = serde_json::from_str(&text)? {
            for r in items {
                if let Some(id) = r.get("id").and_then(Value::as_u64) {
                    by_id.insert(id, r);
                }
            }
        }
        (0..calls.len() as u64)
            .map(|i| {
                by_id.remove(&(first + i)).ok_or_else(|| FeedError::Rpc {
                    method: calls[0].0.to_owned(),
                    code: 0,
                    message: "batch response incomplete".to_owned(),
                })
            })
            .collect()
    }

    /// Reads frames until `is_it` matches one, queueing notifications met on the way. Only the
    /// envelope is parsed here.
    async fn wait(&mut self, is_it: impl Fn(&Frame) -> bool) -> Result<String, FeedError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| FeedError::Stalled { secs: self.timeout.as_secs_f64() })?;
            let Some(text) = self.frame(frame)? else { continue };
            let f = classify(&text)?;
            if is_it(&f) {
                return Ok(text);
            }
            if matches!(f, Frame::One { subscription: true, .. }) {
                self.notifications.push_back(serde_json::from_str(&text)?);
            }
        }
    }

    /// A text frame; control frames are `None`; a closed stream is an error.
    fn frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<Option<String>, FeedError> {
        match frame {
            None => Err(FeedError::ConnectionLost),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(Message::Text(t))) => Ok(Some(t.as_str().to_owned())),
            Some(Ok(Message::Binary(b))) => String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| FeedError::Http("binary frame is not UTF-8".to_owned())),
            Some(Ok(Message::Close(_))) => Err(FeedError::ConnectionLost),
            Some(Ok(_)) => Ok(None),
        }
    }
}

/// A frame's envelope: a response (with its id), a notification, or a batch of responses.
enum Frame {
    One { id: Option<u64>, subscription: bool },
    Batch { first_id: Option<u64> },
}

#[derive(serde::Deserialize)]
struct Head<'a> {
    id: Option<u64>,
    #[serde(borrow)]
    method: Option<&'a str>,
}

fn classify(text: &str) -> Result<Frame, FeedError> {
    if text.trim_start().starts_with('[') {
        let heads: Vec<Head<'_>> = serde_json::from_str(text)?;
        return Ok(Frame::Batch { first_id: heads.iter().filter_map(|h| h.id).min() });
    }
    let h: Head<'_> = serde_json::from_str(text)?;
    Ok(Frame::One { id: h.id, subscription: h.method == Some("eth_subscription") })
}

fn rpc_result(method: &str, resp: Value) -> Result<Value, FeedError> {
    if let Some(e) = resp.get("error") {
        return Err(FeedError::Rpc {
            method: method.to_owned(),
            code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: e.get("message").and_then(Value::as_str).unwrap_or("").chars().take(200).collect(),
        });
    }
    Ok(resp.get("result").cloned().unwrap_or(Value::Null))
}

fn hex(n: u64) -> String {
    format!("0x{n:x}")
}

fn quantity(v: &Value) -> Option<u64> {
    let s = v.as_str()?.strip_prefix("0x")?;
    u64::from_str_radix(s, 16).ok()
}

/// The feed's memory across sessions: what was delivered, what the node supports.
struct Follow {
    delivered: VecDeque<(u64, H256)>,
    block_receipts: bool,
    code: HashMap<Address, bool>,
    chain_id: u64,
}

/// Follows one chain until shutdown, `to_block`, or reconnects run out.
///
/// # Errors
/// Terminal failures: the consumer went away, a wrong chain id, or reconnects exhausted.
pub async fn run_chain_feed(
    cfg: ChainFeedConfig,
    tx: Sender<ChainEvent>,
    stats: Arc<ChainFeedStats>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), FeedError> {
    let mut follow = Follow { delivered: VecDeque::new(), block_receipts: true, code: HashMap::new(), chain_id: 0 };
    let mut attempt = 0_u32;
    loop {
        let result = tokio::select! {
            r = session(&cfg, &mut follow, &tx, &stats) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        stats.connected.store(0, Ordering::Relaxed);
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.is_terminal() => return Err(e),
            Err(error) => warn!(url = %cfg.url, %error, "chain feed disconnected"),
        }
        attempt += 1;
        if attempt > cfg.max_reconnects {
            return Err(FeedError::GaveUp { reconnects: cfg.max_reconnects });
        }
        inc(&stats.reconnects);
        let wait = crate::binance::client::backoff(cfg.backoff_base, cfg.backoff_cap, attempt);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

async fn session(
    cfg: &ChainFeedConfig,
    follow: &mut Follow,
    tx: &Sender<ChainEvent>,
    stats: &ChainFeedStats,
) -> Result<(), FeedError> {
    let (ws, _) = tokio_tungstenite::connect_async(cfg.url.as_str()).await?;
    let mut rpc = Rpc { ws, next_id: 1, notifications: VecDeque::new(), timeout: cfg.request_timeout };
    let chain_id = quantity(&rpc.call("eth_chainId", json!([])).await?).ok_or(FeedError::MissingField("chainId"))?;
    if let Some(want) = cfg.expect_chain_id {
        if want != chain_id {
            return Err(FeedError::WrongChain { expected: want, got: chain_id });
        }
    }
    follow.chain_id = chain_id;
    stats.chain_id.store(chain_id, Ordering::Relaxed);
    let heads = rpc.call("eth_subscribe", json!(["newHeads"])).await?;
    let pending = if cfg.pending {
        // Whole transactions where the node can send them (no fetch at all), else hashes.
        match rpc.call("eth_subscribe", json!(["newPendingTransactions", true])).await {
            Ok(id) => Some(id),
            Err(FeedError::Rpc { .. }) => Some(rpc.call("eth_subscribe", json!(["newPendingTransactions"])).await?),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    stats.connected.store(1, Ordering::Relaxed);
    info!(url = %cfg.url, chain_id, "chain feed connected");
    // Catch up: from the block after the last delivered one (a reconnect), from `from_block`,
    // or from the current head.
    let head =
        quantity(&rpc.call("eth_blockNumber", json!([])).await?).ok_or(FeedError::MissingField("blockNumber"))?;
    // Nothing delivered yet: the first block is accepted whatever its parent.
    let start = cfg.from_block.unwrap_or(head);
    if sync(&mut rpc, cfg, follow, tx, stats, start, head, None).await? {
        return Ok(());
    }
    loop {
        let note = match rpc.notifications.pop_front() {
            Some(n) => n,
            None => {
                let frame = tokio::time::timeout(cfg.idle_timeout, rpc.ws.next()).await;
                match frame {
                    Ok(f) => match rpc.frame(f)? {
                        Some(text) if matches!(classify(&text)?, Frame::One { subscription: true, .. }) => {
                            serde_json::from_str::<Value>(&text)?
                        }
                        _ => continue,
                    },
                    Err(_) => {
                        // Quiet: prove the connection is alive with a cheap call.
                        rpc.call("eth_blockNumber", json!([])).await?;
                        continue;
                    }
                }
            }
        };
        let sub = &note["params"]["subscription"];
        if pending.as_ref().is_some_and(|p| p == sub) {
            // This announcement and the ones right behind it (already queued, or already
            // arrived on the socket), together.
            let is_pending = |n: &Value| pending.as_ref().is_some_and(|p| *p == n["params"]["subscription"]);
            let mut announced = vec![note];
            rpc.queue_arrived()?;
            while announced.len() < PENDING_BATCH && rpc.notifications.front().is_some_and(is_pending) {
                announced.extend(rpc.notifications.pop_front());
            }
            on_pending(&mut rpc, follow, tx, stats, &announced).await?;
            continue;
        }
        if *sub != heads {
            continue;
        }
        let head = &note["params"]["result"];
        let (Some(number), Some(hash)) = (
            head.get("number").and_then(quantity),
            head.get("hash").and_then(Value::as_str).and_then(|h| H256::from_hex(h).ok()),
        ) else {
            inc(&stats.decode_errors);
            continue;
        };
        inc(&stats.heads);
        if let Some(ts) = head.get("timestamp").and_then(quantity) {
            let now_ms = crate::binance::client::now().0 / 1_000_000;
            stats.head_lag_ms.store(now_ms.saturating_sub(ts.saturating_mul(1000)), Ordering::Relaxed);
        }
        if sync(&mut rpc, cfg, follow, tx, stats, 0, number, Some(hash)).await? {
            return Ok(());
        }
    }
}

/// Delivers blocks up to `head`: orphans what a head replaces, walks back on a parent
/// mismatch, fetches the rest. `start` is used only when nothing was delivered yet. Returns
/// true once `to_block` is delivered.
#[allow(clippy::too_many_arguments)]
async fn sync(
    rpc: &mut Rpc,
    cfg: &ChainFeedConfig,
    follow: &mut Follow,
    tx: &Sender<ChainEvent>,
    stats: &ChainFeedStats,
    start: u64,
    head: u64,
    head_hash: Option<H256>,
) -> Result<bool, FeedError> {
    if let Some(h) = head_hash {
        if follow.delivered.iter().any(|&(n, dh)| n == head && dh == h) {
            return Ok(false);
        }
        // A new block at or below our tip replaces everything from its height up.
        let mut reorged = false;
        while follow.delivered.back().is_some_and(|&(n, _)| n >= head) {
            if let Some((n, dh)) = follow.delivered.pop_back() {
                reorged = true;
                orphan(follow.chain_id, n, dh, tx, stats)?;
            }
        }
        if reorged {
            inc(&stats.reorgs);
        }
    }
    let mut in_reorg = false;
    loop {
        let next = follow.delivered.back().map_or(start, |&(n, _)| n + 1);
        if next > head || cfg.to_block.is_some_and(|t| next > t) {
            return Ok(cfg.to_block.is_some_and(|t| next > t));
        }
        let recv_ns = crate::binance::client::now().0;
        let response = rpc.call_text("eth_getBlockByNumber", json!([hex(next), true])).await?;
        // One pass over the response; the block's strings stay borrowed from it.
        let raw = match RawBlock::from_response(&response) {
            Ok(Some(raw)) => raw,
            // The node announced a head it cannot serve yet; the next head retries.
            Ok(None) => return Ok(false),
            Err(e) => {
                if !matches!(e, DecodeError::Rpc { .. }) {
                    inc(&stats.decode_errors);
                }
                return Err(rpc_error("eth_getBlockByNumber", &e));
            }
        };
        // The receipts, also parsed in one pass: a node without `eth_getBlockReceipts` says so
        // in the response, and (as for a `null` result) the receipts are fetched one by one.
        let whole = if raw.tx_count() > 0 && follow.block_receipts {
            Some(rpc.call_text("eth_getBlockReceipts", json!([hex(next)])).await?)
        } else {
            None
        };
        let from_block = match whole.as_deref().map(Receipts::from_response) {
            None => Ok(None),
            Some(Err(DecodeError::Rpc { code, message })) => {
                if !(code == -32601 || code == -32004 || message.contains("not")) {
                    return Err(rpc_error("eth_getBlockReceipts", &DecodeError::Rpc { code, message }));
                }
                info!(chain_id = follow.chain_id, "node has no eth_getBlockReceipts: per-transaction receipts");
                follow.block_receipts = false;
                Ok(None)
            }
            Some(parsed) => parsed,
        };
        let one_by_one;
        let parsed = match from_block {
            Ok(None) if raw.tx_count() > 0 => {
                one_by_one = receipts_one_by_one(rpc, &raw, stats).await?;
                Receipts::from_array(&one_by_one)
            }
            other => other.map(|r| r.unwrap_or_else(Receipts::none)),
        };
        let mut block = match parsed.and_then(|r| raw.build(follow.chain_id, r, recv_ns)) {
            Ok(b) => b,
            Err(error) => {
                // A block we cannot read would be a silent hole: count it and fail the session
                // so the block is fetched again after the reconnect.
                inc(&stats.decode_errors);
                return Err(rpc_error("eth_getBlockByNumber", &error));
            }
        };
        if let Some(&(tip_n, tip_h)) = follow.delivered.back() {
            if block.parent_hash != tip_h {
                // Our tip is not this block's parent: it was orphaned. Walk back.
                if !in_reorg {
                    inc(&stats.reorgs);
                    in_reorg = true;
                }
                follow.delivered.pop_back();
                orphan(follow.chain_id, tip_n, tip_h, tx, stats)?;
                if follow.delivered.is_empty() {
                    inc(&stats.deep_reorgs);
                    warn!(chain_id = follow.chain_id, block = tip_n, "reorg deeper than the blocks remembered");
                    return Err(FeedError::Rpc {
                        method: "reorg".to_owned(),
                        code: 0,
                        message: "fork point not found".to_owned(),
                    });
                }
                continue;
            }
        }
        block.grantees = grantee_code(rpc, follow, approval_grantees(&block), &hex(next), stats).await?;
        if head_hash.is_none() || block.number != head {
            inc(&stats.backfilled);
        }
        follow.delivered.push_back((block.number, block.hash));
        while follow.delivered.len() > cfg.reorg_depth {
            follow.delivered.pop_front();
        }
        stats.last_block.store(block.number, Ordering::Relaxed);
        inc(&stats.blocks);
        send(tx, ChainEvent::Block(Box::new(block)), stats)?;
    }
}

fn orphan(
    chain_id: u64,
    number: u64,
    hash: H256,
    tx: &Sender<ChainEvent>,
    stats: &ChainFeedStats,
) -> Result<(), FeedError> {
    inc(&stats.orphaned);
    send(tx, ChainEvent::Orphaned { chain_id, number, hash }, stats)
}

/// The block's receipts fetched one `eth_getTransactionReceipt` per transaction in one batch,
/// as a JSON array text.
async fn receipts_one_by_one(rpc: &mut Rpc, block: &RawBlock<'_>, stats: &ChainFeedStats) -> Result<String, FeedError> {
    let hashes = block.tx_hashes();
    let calls: Vec<(&str, Value)> = hashes.iter().map(|h| ("eth_getTransactionReceipt", json!([h]))).collect();
    let mut out = Vec::with_capacity(calls.len());
    for r in rpc.batch(&calls).await? {
        match rpc_result("eth_getTransactionReceipt", r) {
            Ok(v) => out.push(v),
            Err(e) => {
                inc(&stats.rpc_errors);
                return Err(e);
            }
        }
    }
    Ok(Value::Array(out).to_string())
}

fn rpc_error(method: &str, e: &DecodeError) -> FeedError {
    match e {
        DecodeError::Rpc { code, message } => {
            FeedError::Rpc { method: method.to_owned(), code: *code, message: message.clone() }
        }
        other => FeedError::Rpc { method: method.to_owned(), code: 0, message: other.to_string() },
    }
}

/// Whether each approval grantee holds code at this block (cached; a failed lookup leaves the
/// grantee out, so detectors do not assume it is an EOA).
async fn grantee_code(
    rpc: &mut Rpc,
    follow: &mut Follow,
    wanted: Vec<Address>,
    at: &str,
    stats: &ChainFeedStats,
) -> Result<Vec<(Address, bool)>, FeedError> {
    let missing: Vec<Address> = wanted.iter().filter(|a| !follow.code.contains_key(a)).copied().collect();
    let calls: Vec<(&str, Value)> = missing.iter().map(|a| ("eth_getCode", json!([a.to_string(), at]))).collect();
    for (a, r) in missing.iter().zip(rpc.batch(&calls).await?) {
        match rpc_result("eth_getCode", r) {
            Ok(Value::String(code)) => {
                if follow.code.len() > 1_000_000 {
                    follow.code.clear();
                }
                follow.code.insert(*a, code.len() > 2);
            }
            _ => inc(&stats.rpc_errors),
        }
    }
    Ok(wanted.iter().filter_map(|a| follow.code.get(a).map(|c| (*a, *c))).collect())
}

/// `newPendingTransactions` notifications: hashes (fetched, several in one batch) or whole
/// transactions (some nodes), each delivered unless a block holds it already or the node
/// dropped it.
async fn on_pending(
    rpc: &mut Rpc,
    follow: &mut Follow,
    tx: &Sender<ChainEvent>,
    stats: &ChainFeedStats,
    notes: &[Value],
) -> Result<(), FeedError> {
    let recv_ns = crate::binance::client::now().0;
    stats.pending_announced.fetch_add(notes.len() as u64, Ordering::Relaxed);
    let mut hashes = Vec::new();
    // Each transaction as its own JSON text, `true` for a whole one from a notification (those
    // first), `false` for a fetch's response (then, in announcement order).
    let mut texts: Vec<(bool, String)> = Vec::with_capacity(notes.len());
    for note in notes {
        let announced = &note["params"]["result"];
        if announced.get("from").is_some() {
            texts.push((true, announced.to_string()));
        } else if let Some(h) = announced.as_str().or_else(|| announced.get("hash").and_then(Value::as_str)) {
            hashes.push(h);
        } else {
            inc(&stats.decode_errors);
        }
    }
    if !hashes.is_empty() {
        inc(&stats.pending_fetches);
        if let [one] = hashes[..] {
            texts.push((false, rpc.call_text("eth_getTransactionByHash", json!([one])).await?));
        } else {
            let calls: Vec<(&str, Value)> = hashes.iter().map(|h| ("eth_getTransactionByHash", json!([h]))).collect();
            texts.extend(rpc.batch(&calls).await?.into_iter().map(|r| (false, r.to_string())));
        }
    }
    let mut ready = Vec::with_capacity(texts.len());
    for (whole, text) in texts {
        let parsed = if whole { parse_pending_object(&text) } else { parse_pending(&text) };
        match parsed {
            Ok(Some(t)) => ready.push(t),
            Ok(None) => {}
            Err(DecodeError::Rpc { code, message }) => {
                inc(&stats.rpc_errors);
                warn!(code, %message, "eth_getTransactionByHash failed");
            }
            Err(error) => {
                inc(&stats.decode_errors);
                warn!(%error, "undecodable pending transaction");
            }
        }
    }
    // Every approval's grantee not seen before, looked up in one batch.
    let wanted = ready.iter().filter_map(|t| call_grantee(&t.call)).collect();
    let code = grantee_code(rpc, follow, wanted, "latest", stats).await?;
    for pending in ready {
        let grantee = call_grantee(&pending.call);
        let grantees = code.iter().filter(|(a, _)| Some(*a) == grantee).take(1).copied().collect();
        inc(&stats.pending_delivered);
        let ev = PendingTx { chain_id: follow.chain_id, recv_ns, tx: pending, grantees };
        send(tx, ChainEvent::Pending(Box::new(ev)), stats)?;
    }
    Ok(())
}

/// Pushes one event, waiting (never dropping) while the monitor is behind.
fn send(tx: &Sender<ChainEvent>, ev: ChainEvent, stats: &ChainFeedStats) -> Result<(), FeedError> {
    match tx.try_send(ev) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(ev)) => {
            inc(&stats.queue_full);
            tokio::task::block_in_place(|| tx.send(ev)).map_err(|_| FeedError::QueueClosed)
        }
        Err(TrySendError::Disconnected(_)) => Err(FeedError::QueueClosed),
    }
}
