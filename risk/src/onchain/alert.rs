//! The alert a security team acts on: which detector, how bad, who is involved in which role,
//! which labels matched and where they come from, and a sentence saying why.

use argus_core::{Address, ChainBlock, ChainTx, PendingTx, H256};
use serde::Serialize;

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One step more urgent (an incident is worse than its parts).
    pub fn raised(self) -> Severity {
        match self {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

/// An address and what it did in the alert (`attacker`, `victim`, `spender`, `labelled`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Party {
    pub address: String,
    pub role: &'static str,
}

/// A label-pack hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LabelHit {
    pub address: String,
    pub label: String,
    pub source: String,
}

/// One alert, as written to every sink (JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// `<chain>:<block>:<tx index>:<detector>:<n>`: deterministic, so a replay of the same
    /// blocks gives the same ids (and a retraction names the alert it withdraws).
    pub id: String,
    pub chain_id: u64,
    pub block_number: u64,
    pub block_hash: String,
    pub tx_hash: Option<String>,
    pub detector: &'static str,
    pub severity: Severity,
    /// 0..1: the detector's confidence (rule detectors use fixed levels, the model its score).
    pub score: f64,
    pub addresses: Vec<Party>,
    pub labels: Vec<LabelHit>,
    pub reason: String,
    pub model_version: Option<String>,
    /// The id of the alert this one withdraws (its block was orphaned by a reorg).
    pub retracts: Option<String>,
    /// Alerts this one follows from: those grouped into an `incident`, the `ice-phishing`
    /// alert whose allowance a drain uses, the early warning a block alert confirms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// The block's timestamp, seconds (a pending alert: when the transaction was announced).
    pub block_timestamp: u64,
    /// An early warning about a transaction no block holds yet (`block_number` 0, no
    /// `block_hash`); it may never be mined, and if it is, its block's alerts follow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl Alert {
    /// A new alert about `tx` (or the block itself when `tx` is `None`).
    pub fn new(block: &ChainBlock, tx: Option<&ChainTx>, detector: &'static str, severity: Severity) -> Alert {
        Alert {
            id: String::new(),
            chain_id: block.chain_id,
            block_number: block.number,
            block_hash: block.hash.to_string(),
            tx_hash: tx.map(|t| t.hash.to_string()),
            detector,
            severity,
            score: match severity {
                Severity::Info => 0.2,
                Severity::Low => 0.4,
                Severity::Medium => 0.6,
                Severity::High => 0.8,
                Severity::Critical => 0.95,
            },
            addresses: Vec::new(),
            labels: Vec::new(),
            reason: String::new(),
            model_version: None,
            retracts: None,
            related: Vec::new(),
            block_timestamp: block.timestamp,
            pending: false,
        }
    }

    /// A new alert about a pending transaction; its id is `<chain>:pending:<tx hash>:<detector>`.
    pub fn pending(p: &PendingTx, detector: &'static str, severity: Severity) -> Alert {
        let carrier = ChainBlock {
            chain_id: p.chain_id,
            number: 0,
            hash: H256::default(),
            parent_hash: H256::default(),
            timestamp: p.recv_ns / 1_000_000_000,
            recv_ns: p.recv_ns,
            txs: Vec::new(),
            grantees: Vec::new(),
        };
        let mut a = Alert::new(&carrier, Some(&p.tx), detector, severity);
        a.id = format!("{}:pending:{}:{detector}", p.chain_id, p.tx.hash);
        a.block_hash = String::new();
        a.pending = true;
        a
    }

    pub fn party(mut self, address: &Address, role: &'static str) -> Alert {
        self.addresses.push(Party { address: address.to_string(), role });
        self
    }

    pub fn reason(mut self, reason: String) -> Alert {
        self.reason = reason;
        self
    }

    /// The retraction of this alert, issued when its block is orphaned.
    pub fn retraction(&self, orphan: &H256) -> Alert {
        let mut r = self.clone();
        r.id = format!("{}:retract", self.id);
        r.retracts = Some(self.id.clone());
        r.severity = Severity::Info;
        r.reason =
            format!("retracted: block {} ({orphan}) was orphaned by a reorg; was: {}", self.block_number, self.reason);
        r
    }
}
