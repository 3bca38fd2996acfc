//! `argus chain decode` against ethereum-etl's own expected parses of the same JSON-RPC
//! responses (blocks and transactions CSVs from its test suite).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn job(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/chain/ethereum_etl_rpc/test_export_blocks_job").join(case)
}

fn csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let header: Vec<&str> = header.split(',').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| header.iter().zip(l.split(',')).map(|(h, v)| ((*h).to_owned(), v.to_owned())).collect())
        .collect()
}

/// Our value as ethereum-etl's CSV prints it: strings as is, null empty.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn blocks_and_transactions_match_ethereum_etl() {
    let mut checked_txs = 0;
    let mut checked_blocks = 0;
    for case in ["blocks_with_transactions", "block_with_logs", "block_without_transactions"] {
        let dir = job(case);
        let mut responses: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("web3_response"))
            .collect();
        responses.sort();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_argus"));
        cmd.args(["chain", "decode", "--json"]);
        for r in &responses {
            cmd.arg("--input").arg(r);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let blocks: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let by_hash: HashMap<String, &Value> = blocks.iter().map(|b| (cell(&b["hash"]), b)).collect();
        for want in csv(&dir.join("expected_blocks.csv")) {
            let got = by_hash[&want["hash"]];
            for (k, v) in &want {
                if k == "withdrawals" && v.is_empty() {
                    continue;
                }
                assert_eq!(&cell(&got[k]), v, "{case} block {} field {k}", want["hash"]);
            }
            checked_blocks += 1;
        }
        let txs: HashMap<String, &Value> = blocks
            .iter()
            .flat_map(|b| b["transactions"].as_array().unwrap().iter())
            .map(|t| (cell(&t["hash"]), t))
            .collect();
        let expected = csv(&dir.join("expected_transactions.csv"));
        assert_eq!(txs.len(), expected.len(), "{case}");
        for want in expected {
            let got = txs[&want["hash"]];
            for (k, v) in &want {
                assert_eq!(&cell(&got[k]), v, "{case} tx {} field {k}", want["hash"]);
            }
            checked_txs += 1;
        }
    }
    assert!(checked_blocks >= 4 && checked_txs >= 4, "{checked_blocks} blocks, {checked_txs} txs");
}

#[test]
fn rpc_errors_and_garbage_are_reported() {
    let dir = std::env::temp_dir().join(format!("argus-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("err.jsonl");
    std::fs::write(&f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"header not found\"}}\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["chain", "decode", "--json", "--input"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("header not found"));
    std::fs::write(&f, "{not json\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_argus")).args(["chain", "decode", "--input"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":1: not JSON"), "{}", String::from_utf8_lossy(&out.stderr));
}
