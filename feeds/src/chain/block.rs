//! A block (`eth_getBlockByNumber(n, true)`) and its receipts into [`ChainBlock`]: typed
//! addresses and hashes, exact 256-bit values, the decoded call and token events of every
//! transaction. Used by the live feed and by offline tests alike.

use std::collections::HashMap;

use argus_core::{Address, ChainBlock, ChainTx, H256, U256};
use serde::Deserialize;
use serde_json::Value;

use super::abi::{decode_call, decode_log, hex_bytes};
use super::decode::DecodeError;

// The JSON-RPC shapes, borrowing every string from the input (hex never holds escapes), with
// the fields detectors need; everything else (logsBloom, signatures, ...) is skipped unparsed.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcBlock<'a> {
    number: Option<&'a str>,
    hash: Option<&'a str>,
    parent_hash: Option<&'a str>,
    timestamp: Option<&'a str>,
    #[serde(borrow, default)]
    transactions: Vec<RpcTx<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcTx<'a> {
    hash: Option<&'a str>,
    block_number: Option<&'a str>,
    transaction_index: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    value: Option<&'a str>,
    nonce: Option<&'a str>,
    gas: Option<&'a str>,
    gas_price: Option<&'a str>,
    max_fee_per_gas: Option<&'a str>,
    input: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcReceipt<'a> {
    transaction_hash: Option<&'a str>,
    gas_used: Option<&'a str>,
    status: Option<&'a str>,
    effective_gas_price: Option<&'a str>,
    contract_address: Option<&'a str>,
    #[serde(borrow, default)]
    logs: Vec<RpcLog<'a>>,
}

#[derive(Debug, Deserialize)]
struct RpcLog<'a> {
    address: Option<&'a str>,
    #[serde(borrow, default)]
    topics: Vec<&'a str>,
    data: Option<&'a str>,
}

/// A JSON-RPC response whose `result` is parsed in the same pass as the envelope.
#[derive(Deserialize)]
struct Response<T> {
    result: Option<T>,
    error: Option<RpcErr>,
}

impl<T> Response<T> {
    fn into_result(self) -> Result<Option<T>, DecodeError> {
        match self.error {
            Some(e) => Err(DecodeError::Rpc { code: e.code.unwrap_or(0), message: e.message.unwrap_or_default() }),
            None => Ok(self.result),
        }
    }
}

#[derive(Deserialize)]
struct RpcErr {
    code: Option<i64>,
    message: Option<String>,
}

fn field(name: &str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Field { field: name.to_owned(), reason: reason.into() }
}

fn need<T>(v: Option<T>, k: &str) -> Result<T, DecodeError> {
    v.ok_or_else(|| field(k, "missing"))
}

fn u256(v: Option<&str>, k: &str) -> Result<Option<U256>, DecodeError> {
    v.map(|s| U256::from_hex(s).map_err(|e| field(k, e.to_string()))).transpose()
}

fn u64_of(v: Option<&str>, k: &str) -> Result<Option<u64>, DecodeError> {
    u256(v, k)?.map(|x| x.as_u64().ok_or_else(|| field(k, "does not fit in 64 bits"))).transpose()
}

fn address(v: Option<&str>, k: &str) -> Result<Option<Address>, DecodeError> {
    v.map(|s| Address::from_hex(s).map_err(|e| field(k, e.to_string()))).transpose()
}

fn hash(v: Option<&str>, k: &str) -> Result<Option<H256>, DecodeError> {
    v.map(|s| H256::from_hex(s).map_err(|e| field(k, e.to_string()))).transpose()
}

fn shape(what: &str, e: &serde_json::Error) -> DecodeError {
    DecodeError::NotABlock(format!("{what}: {e}"))
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
/// a transaction without a receipt keeps `success`/`gas_used` unknown and no events). Accepts
/// whole responses or bare results.
///
/// # Errors
/// A missing or malformed field, named with the transaction's position.
pub fn parse_block(chain_id: u64, block: &Value, receipts: &[Value], recv_ns: u64) -> Result<ChainBlock, DecodeError> {
    let b = RpcBlock::deserialize(result_of(block)?).map_err(|e| shape("block", &e))?;
    let mut rs = Vec::with_capacity(receipts.len());
    for r in receipts {
        let r = result_of(r)?;
        if !r.is_null() {
            rs.push(RpcReceipt::deserialize(r).map_err(|e| shape("receipt", &e))?);
        }
    }
    build(chain_id, b, rs, recv_ns)
}

/// An `eth_getBlockByNumber(n, true)` response parsed in one pass, every string borrowed from
/// the response text: what the feed needs before it asks for the receipts (the transaction
/// hashes), then [`RawBlock::build`] makes the typed block. The fast path of the live feed.
#[derive(Debug)]
pub struct RawBlock<'a>(RpcBlock<'a>);

impl<'a> RawBlock<'a> {
    /// The block of a whole response text; `None` when the node answered `null` (a head it
    /// cannot serve yet).
    ///
    /// # Errors
    /// A JSON-RPC error response, or not a block with full transactions.
    pub fn from_response(text: &'a str) -> Result<Option<Self>, DecodeError> {
        let r: Response<RpcBlock<'a>> = serde_json::from_str(text).map_err(|e| shape("block", &e))?;
        Ok(r.into_result()?.map(RawBlock))
    }

    /// The transactions' hashes, in block order (to ask for receipts one by one).
    pub fn tx_hashes(&self) -> Vec<&'a str> {
        self.0.transactions.iter().filter_map(|t| t.hash).collect()
    }

    /// How many transactions the block holds.
    pub fn tx_count(&self) -> usize {
        self.0.transactions.len()
    }

    /// The typed block with its receipts' outcomes and token events.
    ///
    /// # Errors
    /// A missing or malformed field, named with the transaction's position.
    pub fn build(self, chain_id: u64, receipts: Receipts<'_>, recv_ns: u64) -> Result<ChainBlock, DecodeError> {
        build(chain_id, self.0, receipts.0, recv_ns)
    }
}

/// A block's receipts parsed in one pass (strings borrowed): the `result` of
/// `eth_getBlockReceipts`, or a JSON array of receipts gathered one by one.
#[derive(Debug)]
pub struct Receipts<'a>(Vec<RpcReceipt<'a>>);

impl<'a> Receipts<'a> {
    /// No receipts (a block without transactions): transactions keep their outcome unknown.
    pub fn none() -> Self {
        Receipts(Vec::new())
    }

    /// The receipts of an `eth_getBlockReceipts` response text; `None` when its result is not
    /// an array (`null`: the node does not have them).
    ///
    /// # Errors
    /// A JSON-RPC error response (e.g. the method is unknown), or malformed receipts.
    pub fn from_response(text: &'a str) -> Result<Option<Self>, DecodeError> {
        let r: Response<Vec<Option<RpcReceipt<'a>>>> = serde_json::from_str(text).map_err(|e| shape("receipts", &e))?;
        Ok(r.into_result()?.map(|v| Receipts(v.into_iter().flatten().collect())))
    }

    /// Receipts from a JSON array text (`null` entries skipped).
    ///
    /// # Errors
    /// Malformed receipts.
    pub fn from_array(text: &'a str) -> Result<Self, DecodeError> {
        let v: Vec<Option<RpcReceipt<'a>>> = serde_json::from_str(text).map_err(|e| shape("receipts", &e))?;
        Ok(Receipts(v.into_iter().flatten().collect()))
    }
}

/// A pending transaction: the result of `eth_getTransactionByHash`, decoded as in a block
/// (`index` 0). `None` when the node no longer knows it (dropped or replaced) or a block holds
/// it already (the block path sees it then).
///
/// # Errors
/// A JSON-RPC error response, or a malformed transaction.
pub fn parse_pending(text: &str) -> Result<Option<ChainTx>, DecodeError> {
    let r: Response<RpcTx<'_>> = serde_json::from_str(text).map_err(|e| shape("transaction", &e))?;
    r.into_result()?.map_or(Ok(None), pending_tx)
}

/// A whole transaction as `newPendingTransactions` announces it on nodes that send them
/// (`None` when a block holds it already).
pub fn parse_pending_object(text: &str) -> Result<Option<ChainTx>, DecodeError> {
    pending_tx(serde_json::from_str(text).map_err(|e| shape("transaction", &e))?)
}

fn pending_tx(t: RpcTx<'_>) -> Result<Option<ChainTx>, DecodeError> {
    if t.block_number.is_some() {
        return Ok(None);
    }
    Ok(Some(build_tx(RpcTx { transaction_index: Some("0x0"), ..t }, None)?))
}

/// The address an approval call grants an allowance or operator rights to.
pub fn call_grantee(call: &argus_core::Call) -> Option<Address> {
    use argus_core::Call;
    match *call {
        Call::Approve { spender, .. }
        | Call::IncreaseAllowance { spender, .. }
        | Call::Permit { spender, .. }
        | Call::SetApprovalForAll { operator: spender, .. } => Some(spender),
        _ => None,
    }
}

fn build(
    chain_id: u64,
    b: RpcBlock<'_>,
    receipts: Vec<RpcReceipt<'_>>,
    recv_ns: u64,
) -> Result<ChainBlock, DecodeError> {
    let number = need(u64_of(b.number, "number")?, "number")?;
    let block_hash = need(hash(b.hash, "hash")?, "hash")?;
    let parent_hash = need(hash(b.parent_hash, "parentHash")?, "parentHash")?;
    let timestamp = need(u64_of(b.timestamp, "timestamp")?, "timestamp")?;
    let mut hashes = Vec::with_capacity(receipts.len());
    for r in &receipts {
        hashes.push(need(r.transaction_hash, "transactionHash")?);
    }
    // Nodes return receipts in block order: take the receipt at the transaction's position
    // when its hash matches, and index them by hash only when one does not.
    let mut receipts: Vec<Option<RpcReceipt<'_>>> = receipts.into_iter().map(Some).collect();
    let mut by_hash: Option<HashMap<&str, usize>> = None;
    let mut txs = Vec::with_capacity(b.transactions.len());
    for (i, t) in b.transactions.into_iter().enumerate() {
        let receipt = t.hash.and_then(|h| {
            let at = if hashes.get(i) == Some(&h) {
                i
            } else {
                let index = by_hash.get_or_insert_with(|| hashes.iter().enumerate().map(|(j, h)| (*h, j)).collect());
                *index.get(h)?
            };
            receipts.get_mut(at)?.take()
        });
        let tx = build_tx(t, receipt).map_err(|e| match e {
            DecodeError::Field { field: f, reason } => {
                DecodeError::Field { field: format!("transactions[{i}].{f}"), reason }
            }
            other => other,
        })?;
        txs.push(tx);
    }
    Ok(ChainBlock { chain_id, number, hash: block_hash, parent_hash, timestamp, recv_ns, txs, grantees: Vec::new() })
}

fn build_tx(t: RpcTx<'_>, receipt: Option<RpcReceipt<'_>>) -> Result<ChainTx, DecodeError> {
    let to = address(t.to, "to")?;
    let input = match t.input {
        Some(s) => hex_bytes(s).ok_or_else(|| field("input", "not hex data"))?,
        None => Vec::new(),
    };
    let mut tx = ChainTx {
        hash: need(hash(t.hash, "hash")?, "hash")?,
        index: u32::try_from(need(u64_of(t.transaction_index, "transactionIndex")?, "transactionIndex")?)
            .map_err(|_| field("transactionIndex", "too large"))?,
        from: need(address(t.from, "from")?, "from")?,
        to,
        value: u256(t.value, "value")?.unwrap_or(U256::ZERO),
        nonce: u64_of(t.nonce, "nonce")?.unwrap_or(0),
        gas: u64_of(t.gas, "gas")?.unwrap_or(0),
        gas_price: match u256(t.gas_price, "gasPrice")? {
            Some(p) => p,
            None => u256(t.max_fee_per_gas, "maxFeePerGas")?.unwrap_or(U256::ZERO),
        },
        gas_used: None,
        success: None,
        created: None,
        call: decode_call(to, &input),
        events: Vec::new(),
    };
    if let Some(r) = receipt {
        tx.gas_used = u64_of(r.gas_used, "gasUsed")?;
        tx.success = u256(r.status, "status")?.map(|s| s.as_u64() == Some(1));
        if let Some(p) = u256(r.effective_gas_price, "effectiveGasPrice")? {
            tx.gas_price = p;
        }
        tx.created = address(r.contract_address, "contractAddress")?;
        let mut topics = Vec::with_capacity(4);
        for (j, l) in r.logs.into_iter().enumerate() {
            let emitter = need(address(l.address, "logs.address")?, "logs.address")?;
            topics.clear();
            for t in &l.topics {
                topics.push(H256::from_hex(t).map_err(|e| field(&format!("logs[{j}].topics"), e.to_string()))?);
            }
            let data = match l.data {
                Some(s) => hex_bytes(s).ok_or_else(|| field(&format!("logs[{j}].data"), "not hex data"))?,
                None => Vec::new(),
            };
            if let Some(ev) = decode_log(emitter, &topics, &data) {
                tx.events.push(ev);
            }
        }
    }
    Ok(tx)
}

/// The addresses granted an allowance or operator rights in a block, which the feed looks up
/// (`eth_getCode`) so detectors can tell an EOA from a contract.
pub fn approval_grantees(block: &ChainBlock) -> Vec<Address> {
    use argus_core::TokenEvent;
    let mut out = Vec::new();
    for tx in &block.txs {
        out.extend(call_grantee(&tx.call));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// ganache 7.9.2's answer for a transaction sent while its miner was stopped.
    const PENDING: &str = r#"{"id":5,"jsonrpc":"2.0","result":{"type":"0x2","hash":"0x1d2449c81ed288b4e8492eb446ea46a6c44307b422f2614dc051f6dcf7c06b96","chainId":"0x539","nonce":"0x0","blockHash":null,"blockNumber":null,"transactionIndex":null,"from":"0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1","to":"0xffcf8fdee72ac11b5c542428b35eef5769c409f0","value":"0x1","maxPriorityFeePerGas":"0x3b9aca00","maxFeePerGas":"0x4201eab3","gasPrice":"0x4201eab3","gas":"0x15f90","input":"0x","accessList":[],"v":"0x0","r":"0x8991c8bbd0b468b7052b9e070914d4451b7223d1bfedbfc7a5c55f53ce76449d","s":"0x2cdcbd70b0acfaaee305113f7954e7855425e98cfb0101fed4c94209a276aa8c","yParity":"0x0"}}"#;

    #[test]
    fn a_pending_transaction_decodes_and_a_mined_or_unknown_one_is_none() {
        let t = parse_pending(PENDING).unwrap().unwrap();
        assert_eq!(t.hash.to_string(), "0x1d2449c81ed288b4e8492eb446ea46a6c44307b422f2614dc051f6dcf7c06b96");
        assert_eq!(t.from.to_string(), "0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1");
        assert_eq!((t.index, t.value, t.gas, t.success, t.gas_used), (0, U256::from_u64(1), 0x15f90, None, None));
        assert_eq!(t.call, argus_core::Call::Plain);
        let mined = PENDING.replace(r#""blockNumber":null"#, r#""blockNumber":"0x1""#);
        assert_eq!(parse_pending(&mined).unwrap(), None);
        assert_eq!(parse_pending(r#"{"id":5,"jsonrpc":"2.0","result":null}"#).unwrap(), None);
        let err = parse_pending(r#"{"id":5,"jsonrpc":"2.0","error":{"code":-32000,"message":"boom"}}"#);
        assert!(matches!(err, Err(DecodeError::Rpc { code: -32000, .. })), "{err:?}");
        assert!(parse_pending(&PENDING.replace(r#""from":"0x90f8"#, r#""from":"0xzz"#)).is_err());
    }
}
