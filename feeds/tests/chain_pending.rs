//! The chain feed's pending transactions against a scripted node on a real loopback websocket:
//! a burst of announcements is fetched in one JSON-RPC batch, a node that sends whole
//! transactions is not asked for them at all, and a node that refuses the whole-transaction
//! subscription gets the hash form. (ganache, in engine/tests/monitor_ganache.rs, announces one
//! hash at a time, so these paths need a node that can be told what to send.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argus_core::{ChainEvent, H256};
use argus_feeds::chain::{run_chain_feed, ChainFeedConfig, ChainFeedStats};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// How the scripted node answers `eth_subscribe ["newPendingTransactions", true]`.
#[derive(Clone, Copy, PartialEq)]
enum FullTx {
    /// Accepts it and announces whole transactions.
    Sends,
    /// Refuses it (as nodes without the option do); hashes only.
    Refuses,
}

/// What the node saw: every request's method, and the size of every batch.
#[derive(Default)]
struct Seen {
    methods: Vec<String>,
    batches: Vec<usize>,
}

fn hash(i: usize) -> String {
    format!("0x{:064x}", 0xabc0 + i)
}

/// A pending transaction object; `mined` ones carry a block number.
fn tx_object(i: usize, mined: bool) -> Value {
    json!({
        "hash": hash(i),
        "blockNumber": if mined { json!("0x5") } else { Value::Null },
        "transactionIndex": if mined { json!("0x0") } else { Value::Null },
        "from": format!("0x{:040x}", 0x1000 + i),
        "to": format!("0x{:040x}", 0x2000 + i),
        "value": "0xde0b6b3a7640000",
        "nonce": format!("0x{i:x}"),
        "gas": "0x5208",
        "gasPrice": "0x3b9aca00",
        "input": "0x",
        "type": "0x0",
    })
}

/// The node's answer to one request: its result, or an error for the refused whole-transaction
/// subscription.
fn answer(req: &Value, full: FullTx, dropped: usize) -> Value {
    let id = req["id"].clone();
    let result = match req["method"].as_str().unwrap() {
        "eth_chainId" => json!("0x539"),
        "eth_blockNumber" => json!("0x10"),
        // Blocks are not this test's subject: "not yet available" makes the feed wait.
        "eth_getBlockByNumber" => Value::Null,
        "eth_subscribe" if req["params"][0] == "newHeads" => json!("0xhead"),
        "eth_subscribe" if req["params"].as_array().unwrap().len() == 2 && full == FullTx::Refuses => {
            return json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "invalid argument 1"}});
        }
        "eth_subscribe" => json!("0xpend"),
        "eth_getTransactionByHash" => {
            let h = req["params"][0].as_str().unwrap();
            let i = (0..64).find(|&i| hash(i) == h).unwrap();
            // One announced transaction was dropped before the feed asked.
            if i == dropped {
                Value::Null
            } else {
                tx_object(i, false)
            }
        }
        m => panic!("unexpected method {m}"),
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Serves one connection: answers requests, and right after the pending subscription sends
/// `n` announcements back to back.
async fn node(listener: TcpListener, full: FullTx, n: usize, dropped: usize, seen: Arc<Mutex<Seen>>) {
    let (sock, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(sock).await.unwrap();
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let req: Value = serde_json::from_str(text.as_str()).unwrap();
        let reply = match &req {
            Value::Array(calls) => {
                let mut s = seen.lock().unwrap();
                s.batches.push(calls.len());
                s.methods.extend(calls.iter().map(|c| c["method"].as_str().unwrap().to_owned()));
                drop(s);
                Value::Array(calls.iter().map(|c| answer(c, full, dropped)).collect())
            }
            one => {
                seen.lock().unwrap().methods.push(one["method"].as_str().unwrap().to_owned());
                answer(one, full, dropped)
            }
        };
        let subscribed_pending = reply["result"] == "0xpend";
        ws.send(Message::text(reply.to_string())).await.unwrap();
        if subscribed_pending {
            for i in 0..n {
                let result = match full {
                    // One of them already mined by the time it is announced.
                    FullTx::Sends => tx_object(i, i == dropped),
                    FullTx::Refuses => json!(hash(i)),
                };
                let note = json!({"jsonrpc": "2.0", "method": "eth_subscription",
                    "params": {"subscription": "0xpend", "result": result}});
                ws.send(Message::text(note.to_string())).await.unwrap();
            }
        }
    }
}

/// Runs the feed against the scripted node until `want` pending transactions arrive: their
/// hashes in delivery order, the feed's stats and what the node saw.
async fn run(
    full: FullTx,
    n: usize,
    dropped: usize,
    want: usize,
) -> (Vec<H256>, Arc<ChainFeedStats>, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    tokio::spawn(node(listener, full, n, dropped, seen.clone()));
    let mut cfg = ChainFeedConfig::new(&format!("ws://127.0.0.1:{port}"));
    cfg.pending = true;
    cfg.max_reconnects = 0;
    cfg.request_timeout = Duration::from_secs(10);
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let stats = Arc::new(ChainFeedStats::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let feed = tokio::spawn(run_chain_feed(cfg, tx, stats.clone(), shutdown));
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < want && Instant::now() < deadline {
        match rx.try_recv() {
            Ok(ChainEvent::Pending(p)) => got.push(p.tx.hash),
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    stop.send(true).unwrap();
    feed.await.unwrap().unwrap();
    assert!(rx.try_recv().is_err(), "more pending transactions than announced");
    (got, stats, seen)
}

fn hashes(ids: impl Iterator<Item = usize>) -> Vec<H256> {
    ids.map(|i| H256::from_hex(&hash(i)).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_announced_hashes_is_fetched_in_one_batch() {
    let (n, dropped) = (40, 17);
    let (got, stats, seen) = run(FullTx::Refuses, n, dropped, n - 1).await;
    assert_eq!(got, hashes((0..n).filter(|&i| i != dropped)), "every transaction but the dropped one, in order");
    assert_eq!(stats.pending_announced.load(Ordering::Relaxed), n as u64);
    assert_eq!(stats.pending_delivered.load(Ordering::Relaxed), n as u64 - 1);
    let seen = seen.lock().unwrap();
    // The node refused the whole-transaction form, so the feed asked again for hashes.
    let subscribes = seen.methods.iter().filter(|m| *m == "eth_subscribe").count();
    assert_eq!(subscribes, 3, "newHeads, the refused full form, the hash form: {:?}", seen.methods);
    // All forty were queued before the feed turned to them: one batch of forty, no single calls.
    assert_eq!(seen.batches, vec![n], "{:?}", seen.methods);
    assert_eq!(seen.methods.iter().filter(|m| *m == "eth_getTransactionByHash").count(), n);
    assert_eq!(stats.pending_fetches.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_transactions_announced_are_not_fetched_again() {
    let (n, mined) = (12, 4);
    let (got, stats, seen) = run(FullTx::Sends, n, mined, n - 1).await;
    assert_eq!(got, hashes((0..n).filter(|&i| i != mined)), "every transaction but the mined one, in order");
    assert_eq!(stats.pending_announced.load(Ordering::Relaxed), n as u64);
    assert_eq!(stats.pending_delivered.load(Ordering::Relaxed), n as u64 - 1);
    assert_eq!(stats.pending_fetches.load(Ordering::Relaxed), 0);
    let seen = seen.lock().unwrap();
    assert!(!seen.methods.iter().any(|m| m == "eth_getTransactionByHash"), "{:?}", seen.methods);
    assert!(seen.batches.is_empty());
}
