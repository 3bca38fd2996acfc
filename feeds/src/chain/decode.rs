//! `eth_getBlockByNumber(n, true)` responses to ethereum-etl's `blocks` and `transactions`
//! fields: hashes and data stay hex, every quantity becomes an exact decimal string (256-bit),
//! absent fields are `null`. Legacy, EIP-2930, EIP-1559 and EIP-4844 transactions.

use argus_core::U256;
use serde_json::{json, Map, Value};

/// Why a response could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("not a block: {0}")]
    NotABlock(String),
    #[error("field `{field}`: {reason}")]
    Field { field: String, reason: String },
}

fn field(name: &str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Field { field: name.to_owned(), reason: reason.into() }
}

/// A hex quantity as a decimal string; `null` when absent or null.
fn qty(o: &Map<String, Value>, k: &str) -> Result<Value, DecodeError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::String(s)) => {
            U256::from_hex(s).map(|v| Value::String(v.to_string())).map_err(|e| field(k, e.to_string()))
        }
        Some(other) => Err(field(k, format!("expected a hex string, got {other}"))),
    }
}

/// A hex data/hash string kept as is (lower-cased); `null` when absent.
fn data(o: &Map<String, Value>, k: &str) -> Result<Value, DecodeError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::String(s)) if s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Value::String(s.to_ascii_lowercase()))
        }
        Some(other) => Err(field(k, format!("expected hex data, got {other}"))),
    }
}

/// One decoded block with its transactions, in ethereum-etl field names.
///
/// # Errors
/// A JSON-RPC error response, a missing block, or a malformed field (named).
pub fn decode_block(response: &Value) -> Result<Value, DecodeError> {
    if let Some(e) = response.get("error") {
        return Err(DecodeError::Rpc {
            code: e["code"].as_i64().unwrap_or(0),
            message: e["message"].as_str().unwrap_or("").to_owned(),
        });
    }
    let b = response.get("result").unwrap_or(response);
    let b = b.as_object().ok_or_else(|| DecodeError::NotABlock(truncate(b)))?;
    if !b.contains_key("hash") || !b.contains_key("number") {
        return Err(DecodeError::NotABlock("no hash or number".to_owned()));
    }
    let txs = match b.get("transactions") {
        Some(Value::Array(a)) => a.as_slice(),
        None => &[],
        Some(other) => return Err(field("transactions", format!("expected an array, got {}", truncate(other)))),
    };
    let timestamp = qty(b, "timestamp")?;
    let mut transactions = Vec::with_capacity(txs.len());
    for (i, t) in txs.iter().enumerate() {
        let t = t
            .as_object()
            .ok_or_else(|| field(&format!("transactions[{i}]"), "a hash, not a full transaction (call with `true`)"))?;
        transactions.push(decode_tx(t, &timestamp).map_err(|e| match e {
            DecodeError::Field { field: f, reason } => {
                DecodeError::Field { field: format!("transactions[{i}].{f}"), reason }
            }
            other => other,
        })?);
    }
    let withdrawals = match b.get("withdrawals") {
        Some(Value::Array(ws)) => {
            let mut out = Vec::with_capacity(ws.len());
            for w in ws {
                let w = w.as_object().ok_or_else(|| field("withdrawals", "entry is not an object"))?;
                out.push(json!({
                    "index": qty(w, "index")?,
                    "validator_index": qty(w, "validatorIndex")?,
                    "address": data(w, "address")?,
                    "amount": qty(w, "amount")?,
                }));
            }
            Value::Array(out)
        }
        _ => Value::Null,
    };
    Ok(json!({
        "type": "block",
        "number": qty(b, "number")?,
        "hash": data(b, "hash")?,
        "parent_hash": data(b, "parentHash")?,
        "nonce": data(b, "nonce")?,
        "sha3_uncles": data(b, "sha3Uncles")?,
        "logs_bloom": data(b, "logsBloom")?,
        "transactions_root": data(b, "transactionsRoot")?,
        "state_root": data(b, "stateRoot")?,
        "receipts_root": data(b, "receiptsRoot")?,
        "miner": data(b, "miner")?,
        "difficulty": qty(b, "difficulty")?,
        "total_difficulty": qty(b, "totalDifficulty")?,
        "size": qty(b, "size")?,
        "extra_data": data(b, "extraData")?,
        "gas_limit": qty(b, "gasLimit")?,
        "gas_used": qty(b, "gasUsed")?,
        "timestamp": timestamp,
        "transaction_count": txs.len().to_string(),
        "base_fee_per_gas": qty(b, "baseFeePerGas")?,
        "withdrawals_root": data(b, "withdrawalsRoot")?,
        "withdrawals": withdrawals,
        "blob_gas_used": qty(b, "blobGasUsed")?,
        "excess_blob_gas": qty(b, "excessBlobGas")?,
        "transactions": transactions,
    }))
}

fn decode_tx(t: &Map<String, Value>, block_timestamp: &Value) -> Result<Value, DecodeError> {
    let hashes = match t.get("blobVersionedHashes") {
        Some(Value::Array(a)) => Value::Array(
            a.iter()
                .map(|h| {
                    h.as_str()
                        .map(|s| Value::String(s.to_ascii_lowercase()))
                        .ok_or_else(|| field("blobVersionedHashes", "not a string"))
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => Value::Null,
    };
    Ok(json!({
        "type": "transaction",
        "hash": data(t, "hash")?,
        "nonce": qty(t, "nonce")?,
        "block_hash": data(t, "blockHash")?,
        "block_number": qty(t, "blockNumber")?,
        "transaction_index": qty(t, "transactionIndex")?,
        "from_address": data(t, "from")?,
        "to_address": data(t, "to")?,
        "value": qty(t, "value")?,
        "gas": qty(t, "gas")?,
        "gas_price": qty(t, "gasPrice")?,
        "input": data(t, "input")?,
        "block_timestamp": block_timestamp,
        "max_fee_per_gas": qty(t, "maxFeePerGas")?,
        "max_priority_fee_per_gas": qty(t, "maxPriorityFeePerGas")?,
        "transaction_type": qty(t, "type")?,
        "max_fee_per_blob_gas": qty(t, "maxFeePerBlobGas")?,
        "blob_versioned_hashes": hashes,
    }))
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}...", &s[..s.char_indices().nth(80).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

/// Every JSON-RPC response in `text`: one JSON document (a response, a batch array, or a bare
/// block), or one per line.
///
/// # Errors
/// Text that is neither, with the 1-based line of the first bad line.
pub fn responses(text: &str) -> Result<Vec<Value>, (u64, String)> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(match v {
            Value::Array(a) => a,
            other => vec![other],
        });
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Array(a)) => out.extend(a),
            Ok(v) => out.push(v),
            Err(e) => return Err((i as u64 + 1, e.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip1559_and_4844_fields_and_errors() {
        let block = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "number": "0x10", "hash": "0xAB", "timestamp": "0x5", "baseFeePerGas": "0x7",
            "transactions": [{"hash": "0x01", "nonce": "0x2", "from": "0xaa", "to": null, "value": "0xde0b6b3a7640000",
                "type": "0x3", "maxFeePerGas": "0x10", "maxFeePerBlobGas": "0x1", "blobVersionedHashes": ["0x01AB"],
                "input": "0x", "gas": "0x5208"}]}});
        let b = decode_block(&block).unwrap();
        assert_eq!(b["number"], "16");
        assert_eq!(b["hash"], "0xab");
        let t = &b["transactions"][0];
        assert_eq!(t["value"], "1000000000000000000");
        assert_eq!(t["to_address"], Value::Null);
        assert_eq!(t["transaction_type"], "3");
        assert_eq!(t["block_timestamp"], "5");
        assert_eq!(t["blob_versioned_hashes"], json!(["0x01ab"]));
        let err = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "header not found"}});
        assert!(matches!(decode_block(&err), Err(DecodeError::Rpc { code: -32000, .. })));
        let bad = json!({"result": {"number": "0x1", "hash": "0x1", "transactions": [{"value": "12"}]}});
        let e = decode_block(&bad).unwrap_err().to_string();
        assert!(e.contains("transactions[0].value"), "{e}");
        assert!(decode_block(&json!({"result": null})).is_err());
    }
}
