//! `argus bench chain`: the monitor's per-transaction cost on one core — JSON-RPC bytes of a
//! block and its receipts decoded into typed transactions, every detector's state updated, and
//! every transaction scored by the model (one batch per block), and every changed address
//! profile scored by the address model (one batch per block) — over generated blocks shaped
//! like mainnet traffic (ether payments, ERC-20 transfers, approvals, swaps with several logs).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use argus_core::ChainEvent;
use argus_feeds::chain::block::{RawBlock, Receipts};
use argus_risk::onchain::{AddressScorer, Alert, LabelSet, Monitor, MonitorConfig, TxScorer};
use serde::Serialize;

use super::{AddressModelScorer, ModelScorer};

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct ChainBench {
    pub blocks: usize,
    pub txs_per_block: usize,
    pub transactions: u64,
    pub logs: u64,
    pub json_bytes: u64,
    pub alerts: u64,
    pub alerts_by_detector: std::collections::BTreeMap<String, u64>,
    /// Times each pass ran (each on a fresh monitor); the figures are medians over them, with
    /// the best run beside (a shared host's neighbours slow single runs by up to 2x).
    pub repeat: usize,
    /// Whole pipeline: decode + detectors + models (median run).
    pub seconds: f64,
    pub tx_per_sec: f64,
    pub tx_per_sec_best: f64,
    /// The same blocks without the models (decode + detectors).
    pub rules_only_tx_per_sec: f64,
    pub rules_only_tx_per_sec_best: f64,
    /// JSON decoding into typed blocks alone.
    pub decode_only_tx_per_sec: f64,
    pub decode_only_tx_per_sec_best: f64,
    pub model: Option<String>,
    pub address_model: Option<String>,
    /// Address profiles the address model scored in the whole-pipeline pass.
    pub addresses_scored: u64,
    /// Inside the transaction model's and the address model's scoring calls, per whole-pipeline
    /// run (mean over the runs).
    pub tx_model_seconds: f64,
    pub address_model_seconds: f64,
}

/// A scorer whose calls are timed (the bench's breakdown of where the time goes).
struct Timed<S> {
    inner: S,
    spent: Arc<AtomicU64>,
}

impl<S: TxScorer> TxScorer for Timed<S> {
    fn score_block(
        &mut self,
        block: &argus_core::ChainBlock,
        txs: &[usize],
        out: &mut Vec<f32>,
    ) -> std::result::Result<(), String> {
        let t0 = Instant::now();
        let r = self.inner.score_block(block, txs, out);
        self.spent.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
    fn threshold(&self) -> f32 {
        self.inner.threshold()
    }
    fn version(&self) -> &str {
        self.inner.version()
    }
}

impl<S: AddressScorer> AddressScorer for Timed<S> {
    fn score_profiles(&mut self, rows: &[f64], out: &mut Vec<f32>) -> std::result::Result<(), String> {
        let t0 = Instant::now();
        let r = self.inner.score_profiles(rows, out);
        self.spent.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
    fn threshold(&self) -> f32 {
        self.inner.threshold()
    }
    fn version(&self) -> &str {
        self.inner.version()
    }
}

/// xorshift64*: deterministic traffic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn addr(i: u64) -> String {
    format!("0x{:040x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) as u128 * 0x1_0000_0001 + u128::from(i))
}

fn word(a: &str) -> String {
    format!("0x{:0>64}", a.trim_start_matches("0x"))
}

const TRANSFER: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
const APPROVAL: &str = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925";

/// One block's `eth_getBlockByNumber(n, true)` and `eth_getBlockReceipts` responses.
fn block_json(rng: &mut Rng, number: u64, txs: usize, accounts: u64) -> (String, String) {
    let tokens: Vec<String> = (0..20).map(|i| addr(1_000_000 + i)).collect();
    let mut t = Vec::with_capacity(txs);
    let mut r = Vec::with_capacity(txs);
    let bhash = format!("0x{:064x}", number);
    for i in 0..txs {
        let from = addr(rng.below(accounts));
        let to_acct = addr(rng.below(accounts));
        let token = &tokens[rng.below(20) as usize];
        let hash = format!("0x{:056x}{:08x}", number, i);
        let kind = rng.below(10);
        let value =
            if kind < 4 { format!("0x{:x}", rng.below(5_000_000_000_000_000_000) + 1) } else { "0x0".to_owned() };
        let amount = format!("0x{:064x}", rng.below(1 << 60));
        // Gas as wallets send it: used by the kind of call, limit ~20 % above, price 15-45 gwei.
        let used = match kind {
            0..=3 => 21_000,
            4..=7 => 34_000 + rng.below(30_000),
            8 => 26_000 + rng.below(20_000),
            _ => 110_000 + rng.below(120_000),
        };
        let gas = used + used / 5;
        let price = 15_000_000_000 + rng.below(30_000_000_000);
        let (to, input, logs) = match kind {
            0..=3 => (to_acct.clone(), "0x".to_owned(), Vec::new()),
            4..=7 => (
                token.clone(),
                format!("0xa9059cbb{}{}", &word(&to_acct)[2..], &amount[2..]),
                vec![(token.clone(), vec![TRANSFER.to_owned(), word(&from), word(&to_acct)], amount.clone())],
            ),
            8 => (
                token.clone(),
                format!("0x095ea7b3{}{}", &word(&to_acct)[2..], &amount[2..]),
                vec![(token.clone(), vec![APPROVAL.to_owned(), word(&from), word(&to_acct)], amount.clone())],
            ),
            _ => {
                let pool = addr(2_000_000 + rng.below(50));
                let other = &tokens[rng.below(20) as usize];
                (
                    addr(3_000_000),
                    format!("0x5ae401dc{:064x}{:064x}{:064x}", 1_700_000_000_u64, 64, 0),
                    vec![
                        (token.clone(), vec![TRANSFER.to_owned(), word(&from), word(&pool)], amount.clone()),
                        (other.clone(), vec![TRANSFER.to_owned(), word(&pool), word(&from)], amount.clone()),
                        (pool.clone(), vec![format!("0x{:064x}", 0xabcdef_u64)], amount.clone()),
                    ],
                )
            }
        };
        t.push(format!(
            r#"{{"hash":"{hash}","nonce":"0x{:x}","blockHash":"{bhash}","blockNumber":"0x{number:x}","transactionIndex":"0x{i:x}","from":"{from}","to":"{to}","value":"{value}","gas":"0x{gas:x}","gasPrice":"0x{price:x}","maxFeePerGas":"0x{price:x}","maxPriorityFeePerGas":"0x3b9aca00","input":"{input}","type":"0x2","chainId":"0x1","v":"0x1","r":"0x{:064x}","s":"0x{:064x}"}}"#,
            rng.below(1000),
            rng.next(),
            rng.next()
        ));
        let logs: Vec<String> = logs
            .iter()
            .enumerate()
            .map(|(j, (emitter, topics, data))| {
                let topics: Vec<String> = topics.iter().map(|x| format!("\"{x}\"")).collect();
                format!(
                    r#"{{"address":"{emitter}","topics":[{}],"data":"{data}","blockNumber":"0x{number:x}","transactionHash":"{hash}","transactionIndex":"0x{i:x}","blockHash":"{bhash}","logIndex":"0x{j:x}","removed":false}}"#,
                    topics.join(",")
                )
            })
            .collect();
        r.push(format!(
            r#"{{"transactionHash":"{hash}","transactionIndex":"0x{i:x}","blockHash":"{bhash}","blockNumber":"0x{number:x}","from":"{from}","to":"{to}","cumulativeGasUsed":"0x5208","gasUsed":"0x{used:x}","contractAddress":null,"logs":[{}],"logsBloom":"0x{}","status":"0x1","effectiveGasPrice":"0x{price:x}","type":"0x2"}}"#,
            logs.join(","),
            "0".repeat(512)
        ));
    }
    let block = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"number":"0x{number:x}","hash":"{bhash}","parentHash":"0x{:064x}","timestamp":"0x{:x}","gasLimit":"0x1c9c380","gasUsed":"0x1","baseFeePerGas":"0x3b9aca00","miner":"{}","transactions":[{}]}}}}"#,
        number.saturating_sub(1),
        1_700_000_000 + number * 12,
        addr(7),
        t.join(",")
    );
    (block, format!(r#"{{"jsonrpc":"2.0","id":2,"result":[{}]}}"#, r.join(",")))
}

/// Runs the benchmark: `blocks` blocks of `txs` transactions among `accounts` addresses.
///
/// # Errors
/// The model cannot be loaded, or a generated block does not decode (a bug).
pub fn run(
    blocks: usize,
    txs: usize,
    accounts: u64,
    model: Option<&Path>,
    address_model: Option<&Path>,
    repeat: usize,
) -> Result<ChainBench> {
    let repeat = repeat.max(1);
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let data: Vec<(String, String)> =
        (0..blocks).map(|b| block_json(&mut rng, 18_000_000 + b as u64, txs, accounts)).collect();
    let json_bytes = data.iter().map(|(b, r)| (b.len() + r.len()) as u64).sum();
    let mut by_detector = std::collections::BTreeMap::new();
    let mut scored = 0;
    // Each pass counts its own alerts by detector; the report keeps the last whole pass's.
    let mut pass = |scorer: Option<Timed<ModelScorer>>,
                    address_scorer: Option<Timed<AddressModelScorer>>,
                    detect: bool|
     -> Result<(f64, u64, u64)> {
        let mut m = Monitor::new(MonitorConfig::default(), LabelSet::default(), Default::default());
        if let Some(s) = scorer {
            m = m.with_scorer(Box::new(s));
        }
        if let Some(s) = address_scorer {
            m = m.with_address_scorer(Box::new(s));
        }
        let mut alerts: Vec<Alert> = Vec::new();
        let (mut n_alerts, mut logs) = (0_u64, 0_u64);
        by_detector.clear();
        let t0 = Instant::now();
        for (b, r) in &data {
            // What the live feed does: each response parsed once, strings borrowed.
            let block = RawBlock::from_response(b)?.context("a generated block is null")?;
            let receipts = Receipts::from_response(r)?.context("generated receipts are null")?;
            let parsed = block.build(1, receipts, 0)?;
            logs += parsed.txs.iter().map(|t| t.events.len() as u64).sum::<u64>();
            if detect {
                alerts.clear();
                m.on_event(&ChainEvent::Block(Box::new(parsed)), &mut alerts);
                n_alerts += alerts.len() as u64;
                for a in &alerts {
                    *by_detector.entry(a.detector.to_owned()).or_insert(0_u64) += 1;
                }
            }
        }
        anyhow::ensure!(m.stats().score_errors == 0, "the model failed on {} blocks", m.stats().score_errors);
        scored = m.stats().addresses_scored;
        Ok((t0.elapsed().as_secs_f64(), n_alerts, logs))
    };
    let total = (blocks * txs) as f64;
    let (tx_spent, address_spent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (mut version, mut address_version) = (None, None);
    let (mut decode, mut rules, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    let (mut alerts, mut logs) = (0, 0);
    // The three passes interleaved, so a slow spell of the host falls on all of them alike.
    for _ in 0..repeat {
        let (s, _, l) = pass(None, None, false)?;
        decode.push(s);
        logs = l;
        rules.push(pass(None, None, true)?.0);
        let scorer = model.map(ModelScorer::load).transpose()?;
        version = scorer.as_ref().map(|s| TxScorer::version(s).to_owned());
        let scorer = scorer.map(|inner| Timed { inner, spent: Arc::clone(&tx_spent) });
        let address_scorer = address_model.map(AddressModelScorer::load).transpose()?;
        address_version = address_scorer.as_ref().map(|s| AddressScorer::version(s).to_owned());
        let address_scorer = address_scorer.map(|inner| Timed { inner, spent: Arc::clone(&address_spent) });
        let (s, a, _) = pass(scorer, address_scorer, true)?;
        whole.push(s);
        alerts = a;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    let ((decode_s, decode_best), (rules_s, rules_best), (seconds, best)) =
        (median(&mut decode), median(&mut rules), median(&mut whole));
    Ok(ChainBench {
        blocks,
        txs_per_block: txs,
        transactions: (blocks * txs) as u64,
        logs,
        json_bytes,
        alerts,
        alerts_by_detector: by_detector,
        repeat,
        seconds,
        tx_per_sec: total / seconds,
        tx_per_sec_best: total / best,
        rules_only_tx_per_sec: total / rules_s,
        rules_only_tx_per_sec_best: total / rules_best,
        decode_only_tx_per_sec: total / decode_s,
        decode_only_tx_per_sec_best: total / decode_best,
        model: version,
        address_model: address_version,
        addresses_scored: scored,
        tx_model_seconds: tx_spent.load(Ordering::Relaxed) as f64 / 1e9 / repeat as f64,
        address_model_seconds: address_spent.load(Ordering::Relaxed) as f64 / 1e9 / repeat as f64,
    })
}
