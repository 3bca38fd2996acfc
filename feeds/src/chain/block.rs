//! A block (`eth_getBlockByNumber(n, true)`) and its receipts into [`ChainBlock`]: typed
//! addresses and hashes, exact 256-bit values, the decoded call and token events of every
//! transaction. Used by the live feed and by offline tests alike.

use argus_core::{Address, ChainBlock, ChainTx, H256, U256};
use serde_json::{Map, Value};

use super::abi::{decode_call, decode_log, hex_bytes};
use super::decode::DecodeError;

fn field(name: &str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Field { field: name.to_owned(), reason: reason.into() }
}

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Result<Option<&'a str>, DecodeError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(field(k, format!("expected a string, got {other}"))),
    }
}

fn u256_of(o: &Map<String, Value>, k: &str) -> Result<Option<U256>, DecodeError> {
    str_of(o, k)?.map(|s| U256::from_hex(s).map_err(|e| field(k, e.to_string()))).transpose()
}

fn u64_of(o: &Map<String, Value>, k: &str) -> Result<Option<u64>, DecodeError> {
    u256_of(o, k)?.map(|v| v.as_u64().ok_or_else(|| field(k, "does not fit in 64 bits"))).transpose()
}

fn need<T>(v: Option<T>, k: &str) -> Result<T, DecodeError> {
    v.ok_or_else(|| field(k, "missing"))
}

fn addr_of(o: &Map<String, Value>, k: &str) -> Result<Option<Address>, DecodeError> {
    str_of(o, k)?.map(|s| Address::from_hex(s).map_err(|e| field(k, e.to_string()))).transpose()
}

fn hash_of(o: &Map<String, Value>, k: &str) -> Result<Option<H256>, DecodeError> {
    str_of(o, k)?.map(|s| H256::from_hex(s).map_err(|e| field(k, e.to_string()))).transpose()
}

/// The result object of a JSON-RPC response, or the value itself when it is a bare object.
///
/// # Errors
/// A JSON-RPC error response.
pub fn result_of(response: &Value) -> Result<&Value, DecodeError> {
    if let Some(e) = response.get("error") {
        return Err(DecodeError::Rpc {
            code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: e.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
        });
    }
    Ok(response.get("result").unwrap_or(response))
}

/// Decodes a block with full transactions and the receipts of those transactions (any order;
/// a transaction without a receipt keeps `success`/`gas_used` unknown and no events).
///
/// # Errors
/// A missing or malformed field, named with the transaction's position.
pub fn parse_block(chain_id: u64, block: &Value, receipts: &[Value], recv_ns: u64) -> Result<ChainBlock, DecodeError> {
    let b = result_of(block)?.as_object().ok_or_else(|| DecodeError::NotABlock("not an object".to_owned()))?;
    let number = need(u64_of(b, "number")?, "number")?;
    let hash = need(hash_of(b, "hash")?, "hash")?;
    let parent_hash = need(hash_of(b, "parentHash")?, "parentHash")?;
    let timestamp = need(u64_of(b, "timestamp")?, "timestamp")?;
    let mut by_hash = std::collections::HashMap::with_capacity(receipts.len());
    for (i, r) in receipts.iter().enumerate() {
        let r = result_of(r)?;
        if r.is_null() {
            continue;
        }
        let r = r.as_object().ok_or_else(|| field(&format!("receipts[{i}]"), "not an object"))?;
        let h = need(hash_of(r, "transactionHash")?, "transactionHash")?;
        by_hash.insert(h, r);
    }
    let txs = match b.get("transactions") {
        Some(Value::Array(a)) => a.as_slice(),
        None => &[],
        Some(_) => return Err(field("transactions", "not an array")),
    };
    let mut out = Vec::with_capacity(txs.len());
    for (i, t) in txs.iter().enumerate() {
        let t = t.as_object().ok_or_else(|| field(&format!("transactions[{i}]"), "a hash, not a full transaction"))?;
        let tx = parse_tx(t, &by_hash).map_err(|e| match e {
            DecodeError::Field { field: f, reason } => {
                DecodeError::Field { field: format!("transactions[{i}].{f}"), reason }
            }
            other => other,
        })?;
        out.push(tx);
    }
    Ok(ChainBlock { chain_id, number, hash, parent_hash, timestamp, recv_ns, txs: out, grantees: Vec::new() })
}

fn parse_tx(
    t: &Map<String, Value>,
    receipts: &std::collections::HashMap<H256, &Map<String, Value>>,
) -> Result<ChainTx, DecodeError> {
    let hash = need(hash_of(t, "hash")?, "hash")?;
    let to = addr_of(t, "to")?;
    let input = match str_of(t, "input")? {
        Some(s) => hex_bytes(s).ok_or_else(|| field("input", "not hex data"))?,
        None => Vec::new(),
    };
    let mut tx = ChainTx {
        hash,
        index: u32::try_from(need(u64_of(t, "transactionIndex")?, "transactionIndex")?)
            .map_err(|_| field("transactionIndex", "too large"))?,
        from: need(addr_of(t, "from")?, "from")?,
        to,
        value: u256_of(t, "value")?.unwrap_or(U256::ZERO),
        nonce: u64_of(t, "nonce")?.unwrap_or(0),
        gas: u64_of(t, "gas")?.unwrap_or(0),
        gas_price: match u256_of(t, "gasPrice")? {
            Some(p) => p,
            None => u256_of(t, "maxFeePerGas")?.unwrap_or(U256::ZERO),
        },
        gas_used: None,
        success: None,
        created: None,
        call: decode_call(to, &input),
        events: Vec::new(),
    };
    if let Some(r) = receipts.get(&hash) {
        tx.gas_used = u64_of(r, "gasUsed")?;
        tx.success = match str_of(r, "status")? {
            Some(s) => Some(U256::from_hex(s).map_err(|e| field("status", e.to_string()))?.as_u64() == Some(1)),
            None => None,
        };
        if let Some(p) = u256_of(r, "effectiveGasPrice")? {
            tx.gas_price = p;
        }
        tx.created = addr_of(r, "contractAddress")?;
        if let Some(Value::Array(logs)) = r.get("logs") {
            for (j, l) in logs.iter().enumerate() {
                let l = l.as_object().ok_or_else(|| field(&format!("logs[{j}]"), "not an object"))?;
                let emitter = need(addr_of(l, "address")?, "logs.address")?;
                let topics = match l.get("topics") {
                    Some(Value::Array(ts)) => ts
                        .iter()
                        .map(|v| v.as_str().and_then(|s| H256::from_hex(s).ok()))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| field(&format!("logs[{j}].topics"), "not 32-byte hex"))?,
                    _ => Vec::new(),
                };
                let data = match str_of(l, "data")? {
                    Some(s) => hex_bytes(s).ok_or_else(|| field(&format!("logs[{j}].data"), "not hex data"))?,
                    None => Vec::new(),
                };
                if let Some(ev) = decode_log(emitter, &topics, &data) {
                    tx.events.push(ev);
                }
            }
        }
    }
    Ok(tx)
}

/// The addresses granted an allowance or operator rights in a block, which the feed looks up
/// (`eth_getCode`) so detectors can tell an EOA from a contract.
pub fn approval_grantees(block: &ChainBlock) -> Vec<Address> {
    use argus_core::{Call, TokenEvent};
    let mut out = Vec::new();
    for tx in &block.txs {
        match tx.call {
            Call::Approve { spender, .. }
            | Call::IncreaseAllowance { spender, .. }
            | Call::Permit { spender, .. }
            | Call::SetApprovalForAll { operator: spender, .. } => out.push(spender),
            _ => {}
        }
        for ev in &tx.events {
            match ev {
                TokenEvent::Approval { spender, .. } | TokenEvent::ApprovalForAll { operator: spender, .. } => {
                    out.push(*spender)
                }
                _ => {}
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
