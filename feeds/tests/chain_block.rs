//! Blocks, receipts and token events decoded into core types, checked against ethereum-etl's
//! expected parses of the same JSON-RPC responses (block 483920 and its four receipts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use argus_core::{Call, TokenEvent};
use argus_feeds::chain::block::{approval_grantees, parse_block, RawBlock, Receipts};
use serde_json::Value;

fn etl(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/chain/ethereum_etl_rpc").join(rel)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn block_483920_with_receipts_matches_ethereum_etl() {
    let block =
        json(&etl("test_export_blocks_job/block_with_logs/web3_response.eth_getBlockByNumber_0x76250_true.json"));
    let dir = etl("test_export_receipts_job/receipts_with_logs");
    let mut receipts = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("web3_response.eth_getTransactionReceipt") {
            receipts.push(json(&p));
        }
    }
    assert_eq!(receipts.len(), 4);
    let b = parse_block(1, &block, &receipts, 7).unwrap();
    assert_eq!(b.number, 483_920);
    assert_eq!(b.hash.to_string(), "0x246edb4b351d93c27926f4649bcf6c24366e2a7c7c718dc9158eea20c03bc6ae");
    assert_eq!(b.txs.len(), 4);

    // Receipts: status/gas as ethereum-etl's expected_receipts.csv (pre-Byzantium: no status).
    let expected = std::fs::read_to_string(dir.join("expected_receipts.csv")).unwrap();
    for line in expected.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        let tx = b.txs.iter().find(|t| t.hash.to_string() == c[0]).unwrap();
        assert_eq!(tx.index.to_string(), c[1]);
        assert_eq!(tx.gas_used.unwrap().to_string(), c[5]);
        assert_eq!(tx.created.map(|a| a.to_string()).unwrap_or_default(), c[6]);
        assert_eq!(tx.success, if c[8].is_empty() { None } else { Some(c[8] == "1") });
    }

    // Token transfers: every row of expected_token_transfers.csv, and nothing else.
    let expected = std::fs::read_to_string(etl(
        "test_export_token_transfers_job/block_with_transfers/expected_token_transfers.csv",
    ))
    .unwrap();
    let mut ours = Vec::new();
    for tx in &b.txs {
        for ev in &tx.events {
            if let TokenEvent::Transfer { token, from, to, value } = ev {
                ours.push(format!("{token},{from},{to},{value},{},{}", tx.hash, b.number));
            }
        }
    }
    let theirs: Vec<String> = expected
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{},{},{}", c[0], c[1], c[2], c[3], c[4], c[6])
        })
        .collect();
    assert_eq!(ours, theirs);
    // Those two transactions call `transfer(to, value)` on the token.
    let calls: Vec<&Call> = b.txs.iter().map(|t| &t.call).collect();
    assert_eq!(calls.iter().filter(|c| matches!(c, Call::Transfer { .. })).count(), 2, "{calls:?}");
    assert!(approval_grantees(&b).is_empty());

    // The text path (what the feed uses) decodes the same block.
    let block_text = std::fs::read_to_string(etl(
        "test_export_blocks_job/block_with_logs/web3_response.eth_getBlockByNumber_0x76250_true.json",
    ))
    .unwrap();
    let results: Vec<Value> = receipts.iter().map(|r| r["result"].clone()).collect();
    let receipts_text = serde_json::to_string(&results).unwrap();
    let raw = RawBlock::from_response(&block_text).unwrap().unwrap();
    let fast = raw.build(1, Receipts::from_array(&receipts_text).unwrap(), 7).unwrap();
    assert_eq!(fast, b);

    // The feed's one-pass path: the whole responses, receipts as `eth_getBlockReceipts` returns
    // them (block order) and shuffled (matched by hash), give the same block.
    let raw = RawBlock::from_response(&block_text).unwrap().unwrap();
    assert_eq!(raw.tx_count(), 4);
    let hashes: Vec<String> = raw.tx_hashes().iter().map(|h| h.to_string()).collect();
    let by_hash = |h: &str| results.iter().find(|r| r["transactionHash"] == h).unwrap().clone();
    let in_order: Vec<Value> = hashes.iter().map(|h| by_hash(h)).collect();
    let response = serde_json::json!({"jsonrpc": "2.0", "id": 2, "result": in_order}).to_string();
    let one_pass = raw.build(1, Receipts::from_response(&response).unwrap().unwrap(), 7).unwrap();
    assert_eq!(one_pass, b);
    let mut shuffled = in_order.clone();
    shuffled.rotate_left(1);
    let response = serde_json::json!({"jsonrpc": "2.0", "id": 2, "result": shuffled}).to_string();
    let raw = RawBlock::from_response(&block_text).unwrap().unwrap();
    assert_eq!(raw.build(1, Receipts::from_response(&response).unwrap().unwrap(), 7).unwrap(), b);
    // Without receipts the transactions are there, their outcome unknown.
    let raw = RawBlock::from_response(&block_text).unwrap().unwrap();
    let bare = raw.build(1, Receipts::none(), 7).unwrap();
    assert_eq!(bare.txs.len(), 4);
    assert!(bare.txs.iter().all(|t| t.success.is_none() && t.gas_used.is_none() && t.events.is_empty()));
    // `null` results and error responses.
    assert!(RawBlock::from_response(r#"{"jsonrpc":"2.0","id":1,"result":null}"#).unwrap().is_none());
    assert!(Receipts::from_response(r#"{"jsonrpc":"2.0","id":1,"result":null}"#).unwrap().is_none());
    let e = Receipts::from_response(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no method"}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("-32601"), "{e}");
}

#[test]
fn malformed_blocks_name_the_field() {
    let block = serde_json::json!({"result": {"number": "0x1", "hash": format!("0x{}", "11".repeat(32)),
        "parentHash": format!("0x{}", "00".repeat(32)), "timestamp": "0x5",
        "transactions": [{"hash": format!("0x{}", "22".repeat(32)), "transactionIndex": "0x0", "from": "0x12"}]}});
    let e = parse_block(1, &block, &[], 0).unwrap_err().to_string();
    assert!(e.contains("transactions[0].from"), "{e}");
    let err = serde_json::json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "header not found"}});
    assert!(parse_block(1, &err, &[], 0).unwrap_err().to_string().contains("header not found"));
    assert!(RawBlock::from_response(&err.to_string()).unwrap_err().to_string().contains("header not found"));
    // Transaction hashes instead of objects, and garbage, are errors, not panics.
    let hashes = r#"{"number":"0x1","hash":"0x11","parentHash":"0x00","timestamp":"0x1","transactions":["0xab"]}"#;
    assert!(RawBlock::from_response(&format!(r#"{{"result":{hashes}}}"#)).is_err());
    assert!(RawBlock::from_response("{").is_err());
    assert!(Receipts::from_array("[{").is_err());
}
