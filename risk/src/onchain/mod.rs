//! On-chain fraud detection: pure detectors over decoded blocks ([`ChainEvent`]) that keep
//! per-address state incrementally and explain every alert. No I/O: the chain feed delivers
//! blocks, the binary runs [`Monitor`] on its own thread and writes the alerts to sinks.
//!
//! Detectors (each alert names one): `known-bad` (label packs), `ice-phishing` (allowance or
//! operator rights granted to an EOA) and `ice-phishing-drain` (that grantee then moving the
//! victim's tokens), `address-poisoning` (zero-value or dust transfers involving a look-alike of
//! a recent counterparty), `drainer-sweep` (one spender pulling many approvers' tokens in a
//! window), `large-transfer` (relative to the sender's own history), `mixer` and
//! `mixer-funded-contract`; `ml-tx` and `ml-address` (models over each transaction and over
//! each address's [`Profile`], kept incrementally); `incident` groups an attacker's alerts
//! (Forta's meta-detectors).
//!
//! ```
//! use argus_core::{Address, Call, ChainBlock, ChainEvent, ChainTx, H256, U256};
//! use argus_risk::onchain::{Alert, Label, LabelSet, Monitor, MonitorConfig};
//!
//! let scam = Address([0xee; 20]);
//! let mut labels = LabelSet::default();
//! labels.insert(scam, Label::classify("Fake_Phishing1".into(), "pack.csv".into()));
//! let mut monitor = Monitor::new(MonitorConfig::default(), labels, Default::default());
//! let pay = ChainTx {
//!     hash: H256([1; 32]), index: 0, from: Address([1; 20]), to: Some(scam), value: U256::from_u64(1),
//!     nonce: 0, gas: 21_000, gas_price: U256::ZERO, gas_used: Some(21_000), success: Some(true),
//!     created: None, call: Call::Plain, events: vec![],
//! };
//! let block = ChainBlock {
//!     chain_id: 1, number: 7, hash: H256([7; 32]), parent_hash: H256([6; 32]), timestamp: 0,
//!     recv_ns: 0, txs: vec![pay], grantees: vec![],
//! };
//! let mut alerts: Vec<Alert> = Vec::new();
//! monitor.on_event(&ChainEvent::Block(Box::new(block)), &mut alerts);
//! assert_eq!(alerts[0].detector, "known-bad");
//! assert_eq!(alerts[0].id, "1:7:0:known-bad:0");
//! ```

mod alert;
mod labels;
mod profile;

use std::collections::{HashSet, VecDeque};

use argus_core::{Address, Call, ChainBlock, ChainEvent, ChainTx, FastMap, FastSet, PendingTx, TokenEvent, H256, U256};
use serde::{Deserialize, Serialize};

pub use alert::{Alert, LabelHit, Party, Severity};
pub use labels::{Label, LabelKind, LabelSet};
pub use profile::{AddressScorer, Distinct, Profile, ProfileTable, PROFILE_FEATURES};

/// Thresholds of the detectors (`[monitor]` in `argus monitor --config`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Native transfers at or below this many wei are dust (address poisoning).
    pub dust_wei: String,
    /// Token transfers at or below this many base units are dust.
    pub dust_token_units: String,
    /// Hex digits after `0x` a look-alike shares with the address it mimics.
    pub poison_prefix: usize,
    /// Hex digits at the end a look-alike shares.
    pub poison_suffix: usize,
    /// Recent counterparties remembered per address.
    pub counterparties: usize,
    /// Distinct approvers one spender must sweep within the window for `drainer-sweep`.
    pub sweep_victims: usize,
    pub sweep_window_secs: u64,
    /// A transfer this many times the sender's previous largest is `large-transfer`...
    pub large_factor: f64,
    /// ...once the sender has this many earlier transfers of the asset.
    pub large_min_history: u32,
    /// Alerts about one attacker within this window form an incident...
    pub incident_window_secs: u64,
    /// ...once this many alerts from at least two detectors arrived.
    pub incident_min_alerts: usize,
    /// Addresses with per-address state kept; beyond it new addresses are not tracked (counted).
    pub max_tracked: usize,
    /// Blocks whose alerts are kept for retraction on a reorg.
    pub reorg_depth: usize,
    /// `ml-address` scores an address once it has sent or received this many transactions.
    pub address_min_txs: u32,
    /// `ml-tx` scores only transactions that carry ether. The BLTE training set has no benign
    /// zero-value transaction (all 772 are scams), so a model trained on it has learned nothing
    /// about token transfers and approvals, which carry none.
    pub ml_tx_ether_only: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            dust_wei: "10000000000000".to_owned(),
            dust_token_units: "0".to_owned(),
            poison_prefix: 4,
            poison_suffix: 4,
            counterparties: 16,
            sweep_victims: 3,
            sweep_window_secs: 600,
            large_factor: 10.0,
            large_min_history: 5,
            incident_window_secs: 3600,
            incident_min_alerts: 2,
            max_tracked: 5_000_000,
            reorg_depth: 64,
            address_min_txs: 3,
            ml_tx_ether_only: true,
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("monitor config `{key}`: {reason}")]
pub struct MonitorConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl MonitorConfig {
    /// Every problem at once.
    ///
    /// # Errors
    /// Unparsable amounts, zero widths or windows.
    pub fn validate(&self) -> Result<(), Vec<MonitorConfigError>> {
        let mut errs = Vec::new();
        let mut bad = |key, reason: String| errs.push(MonitorConfigError { key, reason });
        if let Err(e) = U256::from_dec_str(&self.dust_wei) {
            bad("dust_wei", e.to_string());
        }
        if let Err(e) = U256::from_dec_str(&self.dust_token_units) {
            bad("dust_token_units", e.to_string());
        }
        if self.poison_prefix + self.poison_suffix == 0 || self.poison_prefix + self.poison_suffix >= 40 {
            bad("poison_prefix", "prefix + suffix must be within 1..40 hex digits".to_owned());
        }
        if self.sweep_victims < 2 {
            bad("sweep_victims", "must be at least 2".to_owned());
        }
        if self.large_factor.is_nan() || self.large_factor <= 1.0 {
            bad("large_factor", "must be above 1".to_owned());
        }
        if self.counterparties == 0 || self.reorg_depth == 0 || self.incident_min_alerts < 2 {
            bad(
                "counterparties",
                "counterparties and reorg_depth must be positive, incident_min_alerts >= 2".to_owned(),
            );
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

/// What the monitor has done, for metrics and the end-of-run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MonitorStats {
    pub blocks: u64,
    pub txs: u64,
    pub token_events: u64,
    pub alerts: u64,
    /// Alerts dropped because an involved attacker address is on the suppression list.
    pub suppressed: u64,
    pub retracted: u64,
    pub orphaned_blocks: u64,
    /// New addresses not tracked because `max_tracked` was reached.
    pub untracked: u64,
    /// Blocks the model could not score (the rules still ran).
    pub score_errors: u64,
    /// Address profiles scored by the address model.
    pub addresses_scored: u64,
    /// Pending transactions checked, and the early warnings they raised (also in `alerts`).
    pub pending_txs: u64,
    pub pending_alerts: u64,
    /// Block alerts that confirm an early warning (the same transaction and detector): their
    /// `related` names the pending alert.
    pub pending_confirmed: u64,
}

/// Transactions with early warnings kept for linking to their block's alerts: the oldest are
/// forgotten first (a pending transaction may never be mined).
const WARNED_MAX: usize = 65_536;

#[derive(Default)]
struct AddrState {
    sent: u32,
    counterparties: VecDeque<Address>,
    funded_by_mixer: bool,
}

/// Running statistics of one sender's transfers of one asset (`None` = ether).
#[derive(Default, Clone, Copy)]
struct Flow {
    n: u32,
    max: f64,
}

struct Grant {
    owner: Address,
    token: Address,
    /// The `ice-phishing` alert that flagged the grant, when it did.
    flagged: Option<String>,
}

#[derive(Default)]
struct Incident {
    first_ts: u64,
    alerts: Vec<String>,
    detectors: Vec<&'static str>,
    severity: Option<Severity>,
    emitted: bool,
}

/// A block still within reorg depth: its alerts (to retract) and what it changed in the
/// address profiles (to undo).
struct Recent {
    number: u64,
    hash: H256,
    alerts: Vec<Alert>,
    undo: Vec<(Address, Option<Profile>)>,
}

/// A model that scores every transaction of a block (the ML detector); implemented over tch by
/// the binary, so this crate stays pure.
pub trait TxScorer: Send {
    /// One score in 0..1 per listed transaction of `block` (`txs`: positions in `block.txs`),
    /// in order, appended to `out`.
    ///
    /// # Errors
    /// A message saying why the block could not be scored (counted; rules still run).
    fn score_block(&mut self, block: &ChainBlock, txs: &[usize], out: &mut Vec<f32>) -> Result<(), String>;
    /// Scores at or above this alert.
    fn threshold(&self) -> f32;
    /// `name vN`, written into each alert's `model_version`.
    fn version(&self) -> &str;
}

/// The chain monitor: all detectors and their state.
pub struct Monitor {
    scorer: Option<Box<dyn TxScorer>>,
    /// Positions of the current block's transactions the model scored, and their scores.
    scored: Vec<usize>,
    scores: Vec<f32>,
    address_scorer: Option<Box<dyn AddressScorer>>,
    profiles: ProfileTable,
    /// Scratch of the address scoring: (position, address), feature rows, scores.
    candidates: Vec<(usize, Address, u32)>,
    rows: Vec<f64>,
    cfg: MonitorConfig,
    dust_wei: U256,
    dust_token: U256,
    labels: LabelSet,
    suppress: FastSet<Address>,
    addrs: FastMap<Address, AddrState>,
    flows: FastMap<(Address, Option<Address>), Flow>,
    /// Grants by spender: who allowed this spender to move which token.
    grants: FastMap<Address, Vec<Grant>>,
    sweeps: FastMap<Address, VecDeque<(u64, Address)>>,
    incidents: FastMap<Address, Incident>,
    recent: VecDeque<Recent>,
    /// Early warnings by transaction hash, `(detector, alert id)`, until the transaction's block
    /// is processed; `warned_order` forgets the oldest beyond [`WARNED_MAX`].
    warned: FastMap<H256, Vec<(&'static str, String)>>,
    warned_order: VecDeque<H256>,
    stats: MonitorStats,
    seq: u32,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("stats", &self.stats).field("tracked", &self.addrs.len()).finish()
    }
}

impl Monitor {
    /// A monitor with its label packs and suppression list. Invalid amounts in `cfg` fall back to
    /// zero; call [`MonitorConfig::validate`] first to report them.
    pub fn new(cfg: MonitorConfig, labels: LabelSet, suppress: HashSet<Address>) -> Monitor {
        Monitor {
            scorer: None,
            scored: Vec::new(),
            scores: Vec::new(),
            address_scorer: None,
            profiles: ProfileTable::default(),
            candidates: Vec::new(),
            rows: Vec::new(),
            dust_wei: U256::from_dec_str(&cfg.dust_wei).unwrap_or(U256::ZERO),
            dust_token: U256::from_dec_str(&cfg.dust_token_units).unwrap_or(U256::ZERO),
            cfg,
            labels,
            suppress: suppress.into_iter().collect(),
            addrs: FastMap::default(),
            flows: FastMap::default(),
            grants: FastMap::default(),
            sweeps: FastMap::default(),
            incidents: FastMap::default(),
            recent: VecDeque::new(),
            warned: FastMap::default(),
            warned_order: VecDeque::new(),
            stats: MonitorStats::default(),
            seq: 0,
        }
    }

    /// Adds the ML detector (`ml-tx`): every transaction scored, alerts at the threshold.
    pub fn with_scorer(mut self, scorer: Box<dyn TxScorer>) -> Monitor {
        self.scorer = Some(scorer);
        self
    }

    /// Adds the address model (`ml-address`): each address's [`Profile`] is kept from the blocks
    /// seen and scored when it changes, once it has `address_min_txs` transactions; an address
    /// alerts once.
    pub fn with_address_scorer(mut self, scorer: Box<dyn AddressScorer>) -> Monitor {
        self.address_scorer = Some(scorer);
        self
    }

    /// The profile kept for `a`, when the address model is on and `a` was seen.
    pub fn profile(&self, a: &Address) -> Option<&Profile> {
        self.profiles.get(a)
    }

    pub fn stats(&self) -> MonitorStats {
        self.stats
    }

    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    /// Handles one chain event, appending the alerts it raises (or retracts) to `out`.
    pub fn on_event(&mut self, ev: &ChainEvent, out: &mut Vec<Alert>) {
        match ev {
            ChainEvent::Block(b) => self.on_block(b, out),
            ChainEvent::Orphaned { number, hash, .. } => self.on_orphaned(*number, hash, out),
            ChainEvent::Pending(p) => self.on_pending(p, out),
        }
    }

    /// Withdraws every alert of an orphaned block and restores the address profiles it changed
    /// (orphans arrive newest first, so undoing each in turn restores the fork point). Other
    /// per-address statistics the block updated are kept (they only steer thresholds).
    fn on_orphaned(&mut self, number: u64, hash: &H256, out: &mut Vec<Alert>) {
        self.stats.orphaned_blocks += 1;
        if let Some(i) = self.recent.iter().position(|r| r.number == number && r.hash == *hash) {
            if let Some(r) = self.recent.remove(i) {
                for a in r.alerts {
                    self.stats.retracted += 1;
                    out.push(a.retraction(hash));
                }
                self.profiles.restore(r.undo);
            }
        }
    }

    fn on_block(&mut self, b: &ChainBlock, out: &mut Vec<Alert>) {
        self.stats.blocks += 1;
        self.seq = 0;
        let start = out.len();
        self.scores.clear();
        self.scored.clear();
        if let Some(scorer) = self.scorer.as_mut() {
            // The model's domain: successful transactions, and by default only those carrying
            // ether (see `ml_tx_ether_only`).
            let ether_only = self.cfg.ml_tx_ether_only;
            self.scored.extend(
                b.txs
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.success != Some(false) && (!ether_only || t.value > U256::ZERO))
                    .map(|(i, _)| i),
            );
            if scorer.score_block(b, &self.scored, &mut self.scores).is_err() || self.scores.len() != self.scored.len()
            {
                self.stats.score_errors += 1;
                self.scores.clear();
                self.scored.clear();
            }
        }
        let mut next_scored = 0;
        self.profiles.begin_block();
        for (i, tx) in b.txs.iter().enumerate() {
            self.stats.txs += 1;
            self.stats.token_events += tx.events.len() as u64;
            self.on_tx(b, tx, out);
            if let (Some(&pos), Some(&score)) = (self.scored.get(next_scored), self.scores.get(next_scored)) {
                if pos == i {
                    next_scored += 1;
                    self.ml(b, tx, score, out);
                }
            }
            if self.address_scorer.is_some() && tx.success != Some(false) {
                self.profile_tx(b, i, tx);
            }
        }
        if self.address_scorer.is_some() {
            self.score_addresses(b, out);
        }
        if !self.warned.is_empty() {
            // The block settled these transactions: their warnings were linked or never will be.
            for tx in &b.txs {
                self.warned.remove(&tx.hash);
            }
        }
        let undo = self.profiles.take_undo();
        self.recent.push_back(Recent { number: b.number, hash: b.hash, alerts: out[start..].to_vec(), undo });
        while self.recent.len() > self.cfg.reorg_depth {
            if let Some(r) = self.recent.pop_front() {
                self.profiles.recycle(r.undo);
            }
        }
    }

    fn ml(&mut self, b: &ChainBlock, tx: &ChainTx, score: f32, out: &mut Vec<Alert>) {
        let Some(scorer) = self.scorer.as_ref() else { return };
        if score < scorer.threshold() || tx.success == Some(false) {
            return;
        }
        let version = scorer.version().to_owned();
        let mut a = Alert::new(b, Some(tx), "ml-tx", Severity::Medium).party(&tx.from, "sender").reason(format!(
            "model {version} scores this transaction {score:.3} (alert threshold {:.3})",
            scorer.threshold()
        ));
        if let Some(to) = tx.to {
            a = a.party(&to, "recipient");
        }
        a.score = f64::from(score);
        a.model_version = Some(version);
        self.emit(b, tx, a, None, out);
    }

    /// The slot of `a`'s profile (none for the zero address, or when the table is full).
    fn profile_slot(&mut self, a: Address) -> Option<u32> {
        if a == Address::ZERO {
            return None;
        }
        let slot = self.profiles.slot(a, self.cfg.max_tracked);
        if slot.is_none() {
            self.stats.untracked += 1;
        }
        slot
    }

    /// Updates the profiles of everyone a successful transaction involves.
    fn profile_tx(&mut self, b: &ChainBlock, pos: usize, tx: &ChainTx) {
        let ts = b.timestamp;
        if let Some(i) = self.profile_slot(tx.from) {
            if let Some(p) = self.profiles.at(i) {
                p.on_sent(tx, ts);
            }
            self.profiles.touch(i, pos);
        }
        if let Some(to) = tx.to {
            if let Some(i) = self.profile_slot(to) {
                if let Some(p) = self.profiles.at(i) {
                    p.on_received(tx, ts);
                    p.is_contract |= tx.call != Call::Plain;
                }
                self.profiles.touch(i, pos);
            }
        }
        if let Some(c) = tx.created {
            if let Some(p) = self.profile_slot(c).and_then(|i| self.profiles.at(i)) {
                p.is_contract = true;
            }
        }
        for ev in &tx.events {
            if let TokenEvent::Transfer { token, from, to, .. } = *ev {
                if let Some(p) = self.profile_slot(token).and_then(|i| self.profiles.at(i)) {
                    p.is_contract = true;
                }
                let to_slot = self.profile_slot(to);
                let to_contract = to_slot.and_then(|i| self.profiles.at(i)).is_some_and(|p| p.is_contract);
                if let Some(i) = self.profile_slot(from) {
                    if let Some(p) = self.profiles.at(i) {
                        p.on_token_sent(ev, to_contract);
                    }
                    self.profiles.touch(i, pos);
                }
                if let Some(i) = to_slot {
                    if let Some(p) = self.profiles.at(i) {
                        p.on_token_received(ev);
                    }
                    self.profiles.touch(i, pos);
                }
            }
        }
    }

    /// Scores the changed profiles of the block's externally owned addresses as one batch.
    fn score_addresses(&mut self, b: &ChainBlock, out: &mut Vec<Alert>) {
        let min = self.cfg.address_min_txs;
        self.candidates.clear();
        for (i, a, p, pos) in self.profiles.touched() {
            if !p.alerted && !p.is_contract && p.total_txs() >= min {
                self.candidates.push((pos, *a, i));
            }
        }
        if self.candidates.is_empty() {
            return;
        }
        // Block order, then address: the same blocks give the same alerts in the same order.
        self.candidates.sort_unstable();
        self.rows.clear();
        for &(_, _, i) in &self.candidates {
            if let Some(p) = self.profiles.at(i) {
                p.features(&mut self.rows);
            }
        }
        self.scores.clear();
        let Some(scorer) = self.address_scorer.as_mut() else { return };
        if scorer.score_profiles(&self.rows, &mut self.scores).is_err() || self.scores.len() != self.candidates.len() {
            self.stats.score_errors += 1;
            return;
        }
        self.stats.addresses_scored += self.candidates.len() as u64;
        let threshold = scorer.threshold();
        let version = scorer.version().to_owned();
        let (candidates, scores) = (std::mem::take(&mut self.candidates), std::mem::take(&mut self.scores));
        for (&(pos, a, i), &score) in candidates.iter().zip(&scores) {
            let (Some(tx), Some(p)) = (b.txs.get(pos), self.profiles.at(i)) else { continue };
            if score < threshold {
                continue;
            }
            p.alerted = true;
            let mut alert =
                Alert::new(b, Some(tx), "ml-address", Severity::Medium).party(&a, "subject").reason(format!(
                    "model {version} scores the activity of {a} {score:.3} (alert threshold {threshold:.3}): {}",
                    p.describe()
                ));
            alert.score = f64::from(score);
            alert.model_version = Some(version.clone());
            self.emit(b, tx, alert, Some(a), out);
        }
        (self.candidates, self.scores) = (candidates, scores);
    }

    fn on_tx(&mut self, b: &ChainBlock, tx: &ChainTx, out: &mut Vec<Alert>) {
        if tx.success == Some(false) {
            // A reverted transaction moved nothing; its sender still paid gas and was seen.
            self.note_sender(tx.from);
            return;
        }
        self.known_bad(b, tx, out);
        self.mixer(b, tx, out);
        self.approvals(b, tx, out);
        self.drains_and_sweeps(b, tx, out);
        self.poisoning(b, tx, out);
        self.large_transfers(b, tx, out);
        self.learn(tx);
    }

    fn emit(&mut self, b: &ChainBlock, tx: &ChainTx, mut a: Alert, attacker: Option<Address>, out: &mut Vec<Alert>) {
        if let Some(att) = attacker {
            if self.suppress.contains(&att) {
                self.stats.suppressed += 1;
                return;
            }
        }
        a.id = format!("{}:{}:{}:{}:{}", b.chain_id, b.number, tx.index, a.detector, self.seq);
        self.seq += 1;
        if let Some(warnings) = self.warned.get(&tx.hash) {
            let before = a.related.len();
            a.related.extend(warnings.iter().filter(|(d, _)| *d == a.detector).map(|(_, id)| id.clone()));
            self.stats.pending_confirmed += (a.related.len() - before) as u64;
        }
        self.stats.alerts += 1;
        let incident = attacker.and_then(|att| self.aggregate(b, &a, att));
        out.push(a);
        if let Some(inc) = incident {
            self.stats.alerts += 1;
            out.push(inc);
        }
    }

    /// Adds an alert to its attacker's incident; returns the incident alert when it forms.
    fn aggregate(&mut self, b: &ChainBlock, a: &Alert, attacker: Address) -> Option<Alert> {
        let window = self.cfg.incident_window_secs;
        let min = self.cfg.incident_min_alerts;
        let inc = self.incidents.entry(attacker).or_default();
        if inc.alerts.is_empty() || b.timestamp.saturating_sub(inc.first_ts) > window {
            *inc = Incident { first_ts: b.timestamp, ..Incident::default() };
        }
        inc.alerts.push(a.id.clone());
        if !inc.detectors.contains(&a.detector) {
            inc.detectors.push(a.detector);
        }
        inc.severity = Some(inc.severity.map_or(a.severity, |s| s.max(a.severity)));
        if inc.emitted || inc.alerts.len() < min || inc.detectors.len() < 2 {
            return None;
        }
        inc.emitted = true;
        let mut alert = Alert::new(b, None, "incident", inc.severity.unwrap_or(Severity::Medium).raised());
        alert.id = format!("{}:{}:incident:{attacker}", b.chain_id, b.number);
        alert.tx_hash.clone_from(&a.tx_hash);
        alert.related.clone_from(&inc.alerts);
        alert.reason = format!(
            "{attacker} is behind {} alerts from {} detectors ({}) within {} s",
            inc.alerts.len(),
            inc.detectors.len(),
            inc.detectors.join(", "),
            window
        );
        Some(alert.party(&attacker, "attacker"))
    }

    fn note_sender(&mut self, a: Address) {
        if let Some(s) = self.state(a) {
            s.sent = s.sent.saturating_add(1);
        }
    }

    fn state(&mut self, a: Address) -> Option<&mut AddrState> {
        if !self.addrs.contains_key(&a) && self.addrs.len() >= self.cfg.max_tracked {
            self.stats.untracked += 1;
            return None;
        }
        Some(self.addrs.entry(a).or_default())
    }

    fn label_hits(&self, a: &Address, hits: &mut Vec<LabelHit>) {
        for l in self.labels.get(a) {
            if l.kind == LabelKind::Bad {
                hits.push(LabelHit { address: a.to_string(), label: l.label.clone(), source: l.source.clone() });
            }
        }
    }

    /// Early warnings on a transaction still in the mempool, from the checks that need no
    /// receipt: labelled parties (the sender, the recipient, whoever the call names), an
    /// approval call granting to a labelled address or an EOA, and a direct `transferFrom` on an
    /// allowance already flagged, dust (a plain payment, `transfer` or `transferFrom`) from or to
    /// a look-alike of a recent counterparty. Nothing is learned from it (it may never be mined,
    /// and its block brings it again) and it joins no incident; its warnings are remembered only
    /// so that the block's alerts can name them.
    fn on_pending(&mut self, p: &PendingTx, out: &mut Vec<Alert>) {
        self.stats.pending_txs += 1;
        let tx = &p.tx;
        let mut parties: Vec<(Address, &'static str)> = vec![(tx.from, "sender")];
        parties.extend(tx.to.map(|to| (to, "recipient")));
        match tx.call {
            Call::Transfer { to, .. } => parties.push((to, "token-recipient")),
            Call::TransferFrom { from, to, .. } => parties.extend([(from, "token-sender"), (to, "token-recipient")]),
            Call::Approve { spender, .. } | Call::IncreaseAllowance { spender, .. } | Call::Permit { spender, .. } => {
                parties.push((spender, "spender"))
            }
            Call::SetApprovalForAll { operator, .. } => parties.push((operator, "operator")),
            _ => {}
        }
        let before = out.len();
        if !self.labels.is_empty() {
            let alert = Alert::pending(p, "known-bad", Severity::Medium);
            if let Some((mut alert, _)) = self.labelled_parties(tx.from, &parties, alert) {
                alert.reason = format!("pending: {}", alert.reason);
                out.push(alert);
            }
        }
        if let Some((owner, token, grantee, amount)) = call_grant(tx).filter(|g| g.2 != g.0) {
            let is_eoa = p.grantees.iter().find(|(a, _)| *a == grantee).map(|(_, code)| !code);
            let labelled = self.labels.is_bad(&grantee);
            let fresh = self.addrs.get(&grantee).is_none_or(|s| s.sent == 0);
            if (is_eoa == Some(true) || labelled) && !self.suppress.contains(&grantee) {
                let why = grantee_reasons(is_eoa == Some(true), fresh, labelled);
                let severity = if labelled || fresh { Severity::High } else { Severity::Medium };
                let mut a = Alert::pending(p, "ice-phishing", severity)
                    .party(&owner, "victim")
                    .party(&grantee, "spender")
                    .party(&token, "token")
                    .reason(format!(
                        "pending: {owner} is about to let {grantee} ({}) spend {} of token {token}",
                        why.join(", "),
                        granted(amount)
                    ));
                let mut hits = Vec::new();
                self.label_hits(&grantee, &mut hits);
                a.labels = hits;
                out.push(a);
            }
        }
        // A direct `transferFrom` by a spender whose allowance an `ice-phishing` alert flagged:
        // the drain, announced before it lands.
        if let (Call::TransferFrom { from: victim, .. }, Some(token)) = (&tx.call, tx.to) {
            let spender = tx.from;
            let flagged = self
                .grants
                .get(&spender)
                .and_then(|gs| gs.iter().find(|g| g.owner == *victim && g.token == token))
                .and_then(|g| g.flagged.clone());
            if let Some(origin) = flagged.filter(|_| !self.suppress.contains(&spender)) {
                let mut a = Alert::pending(p, "ice-phishing-drain", Severity::Critical)
                    .party(victim, "victim")
                    .party(&spender, "spender")
                    .party(&token, "token")
                    .reason(format!(
                        "pending: {spender} is about to move token {token} out of {victim} using the allowance \
                         flagged by alert {origin}"
                    ));
                a.related = vec![origin];
                out.push(a);
            }
        }
        // Dust from a look-alike, announced by the call itself (a fake token's event-only
        // transfer shows only in its block's logs).
        let dust = match (&tx.call, tx.to) {
            (Call::Plain, Some(to)) if tx.value <= self.dust_wei => Some((tx.from, to, None, tx.value)),
            (&Call::Transfer { to, value }, Some(token)) if value <= self.dust_token => {
                Some((tx.from, to, Some(token), value))
            }
            (&Call::TransferFrom { from, to, value }, Some(token)) if value <= self.dust_token => {
                Some((from, to, Some(token), value))
            }
            _ => None,
        };
        if let Some((from, to, token, value)) = dust {
            if let Some((victim, mimic, real)) = self.poisoned(from, to).filter(|p| !self.suppress.contains(&p.1)) {
                let reason = self.poison_reason(victim, mimic, real, token, value);
                out.push(
                    Alert::pending(p, "address-poisoning", Severity::High)
                        .party(&victim, "victim")
                        .party(&mimic, "poisoner")
                        .party(&real, "impersonated")
                        .reason(format!("pending: {reason}")),
                );
            }
        }
        self.stats.pending_alerts += (out.len() - before) as u64;
        self.stats.alerts += (out.len() - before) as u64;
        if out.len() > before {
            self.remember_warnings(tx.hash, &out[before..]);
        }
    }

    /// Keeps a pending transaction's warnings so that its block's alerts can name them.
    fn remember_warnings(&mut self, hash: H256, alerts: &[Alert]) {
        let entry = self.warned.entry(hash).or_default();
        if entry.is_empty() {
            self.warned_order.push_back(hash);
        }
        for a in alerts {
            if !entry.iter().any(|(_, id)| *id == a.id) {
                entry.push((a.detector, a.id.clone()));
            }
        }
        while self.warned_order.len() > WARNED_MAX {
            if let Some(old) = self.warned_order.pop_front() {
                self.warned.remove(&old);
            }
        }
    }

    fn known_bad(&mut self, b: &ChainBlock, tx: &ChainTx, out: &mut Vec<Alert>) {
        if self.labels.is_empty() {
            return;
        }
        let mut parties: Vec<(Address, &'static str)> = vec![(tx.from, "sender")];
        if let Some(to) = tx.to {
            parties.push((to, "recipient"));
        }
        if let Some(c) = tx.created {
            parties.push((c, "created"));
        }
        for ev in &tx.events {
            match *ev {
                TokenEvent::Transfer { from, to, .. }
                | TokenEvent::NftTransfer { from, to, .. }
                | TokenEvent::MultiTransfer { from, to, .. } => {
                    parties.push((from, "token-sender"));
                    parties.push((to, "token-recipient"));
                }
                TokenEvent::Approval { spender, .. } => parties.push((spender, "spender")),
                TokenEvent::ApprovalForAll { operator, .. } => parties.push((operator, "operator")),
            }
        }
        let alert = Alert::new(b, Some(tx), "known-bad", Severity::Medium);
        if let Some((alert, attacker)) = self.labelled_parties(tx.from, &parties, alert) {
            self.emit(b, tx, alert, attacker, out);
        }
    }

    /// The `known-bad` alert over `parties` (address, role; the sender first), or `None` when
    /// none is labelled bad (suppressed addresses skipped and counted).
    fn labelled_parties(
        &mut self,
        sender: Address,
        parties: &[(Address, &'static str)],
        mut alert: Alert,
    ) -> Option<(Alert, Option<Address>)> {
        let mut hits = Vec::new();
        let mut attacker = None;
        let mut seen = HashSet::new();
        for &(a, role) in parties {
            if !seen.insert(a) || !self.labels.is_bad(&a) {
                continue;
            }
            if self.suppress.contains(&a) {
                self.stats.suppressed += 1;
                continue;
            }
            self.label_hits(&a, &mut hits);
            if matches!(role, "sender" | "recipient" | "spender" | "operator" | "created") {
                alert.severity = Severity::High;
                alert.score = 0.8;
            }
            attacker.get_or_insert(a);
            alert = alert.party(&a, role);
        }
        if hits.is_empty() {
            return None;
        }
        let names: Vec<String> =
            hits.iter().map(|h| format!("{} is labelled \"{}\" by {}", h.address, h.label, h.source)).collect();
        alert.reason = format!("transaction involves labelled addresses: {}", names.join("; "));
        alert.labels = hits;
        if sender != attacker.unwrap_or_default() {
            alert = alert.party(&sender, "sender");
        }
        Some((alert, attacker))
    }

    fn mixer(&mut self, b: &ChainBlock, tx: &ChainTx, out: &mut Vec<Alert>) {
        // Deposits into a mixer.
        if let Some(to) = tx.to {
            if self.labels.is_mixer(&to) && !tx.value.is_zero() {
                let a = Alert::new(b, Some(tx), "mixer", Severity::Low)
                    .party(&tx.from, "depositor")
                    .party(&to, "mixer")
                    .reason(format!(
                        "{} deposited {} wei into mixer {to} ({})",
                        tx.from,
                        tx.value,
                        self.mixer_name(&to)
                    ));
                self.emit(b, tx, a, Some(tx.from), out);
            }
        }
        // Funds out of a mixer (tokens; ether withdrawals are internal transfers seen by their
        // recipient's later activity, so a relayer's withdrawal call marks its recipient below).
        let mut funded = Vec::new();
        for ev in &tx.events {
            if let TokenEvent::Transfer { from, to, .. } = ev {
                if self.labels.is_mixer(from) {
                    funded.push((*from, *to));
                }
            }
        }
        if tx.to.is_some_and(|t| self.labels.is_mixer(&t)) && tx.value.is_zero() {
            // A withdrawal call: Tornado's `withdraw` names the recipient as its 3rd argument, but
            // the relayer (tx.from) is the address we can attribute without a trace.
            funded.push((tx.to.unwrap_or_default(), tx.from));
        }
        for (mixer, to) in funded {
            if let Some(s) = self.state(to) {
                s.funded_by_mixer = true;
            }
            let a = Alert::new(b, Some(tx), "mixer", Severity::Low)
                .party(&mixer, "mixer")
                .party(&to, "recipient")
                .reason(format!("{to} received funds from mixer {mixer} ({})", self.mixer_name(&mixer)));
            self.emit(b, tx, a, Some(to), out);
        }
        if matches!(tx.call, Call::Create) && self.addrs.get(&tx.from).is_some_and(|s| s.funded_by_mixer) {
            let created = tx.created.map(|c| c.to_string()).unwrap_or_else(|| "a contract".to_owned());
            let mut a = Alert::new(b, Some(tx), "mixer-funded-contract", Severity::High)
                .party(&tx.from, "deployer")
                .reason(format!("{} was funded from a mixer and deployed {created}", tx.from));
            if let Some(c) = tx.created {
                a = a.party(&c, "contract");
            }
            self.emit(b, tx, a, Some(tx.from), out);
        }
    }

    fn mixer_name(&self, a: &Address) -> String {
        self.labels.get(a).iter().find(|l| l.kind == LabelKind::Mixer).map_or_else(String::new, |l| l.label.clone())
    }

    fn approvals(&mut self, b: &ChainBlock, tx: &ChainTx, out: &mut Vec<Alert>) {
        // (owner, token, grantee, amount or "all") from the logs, and from calls whose token did
        // not log an Approval (the call names the grant all the same).
        let mut grants: Vec<(Address, Address, Address, Option<U256>)> = Vec::new();
        for ev in &tx.events {
            match *ev {
                // An Approval logged in someone else's transaction is an allowance being spent
                // (older ERC-20s log the decrease on transferFrom), unless a permit granted it.
                TokenEvent::Approval { token, owner, spender, value }
                    if !value.is_zero()
                        && (owner == tx.from || matches!(tx.call, Call::Permit { .. } | Call::Multicall { .. })) =>
                {
                    grants.push((owner, token, spender, Some(value)))
                }
                TokenEvent::ApprovalForAll { token, owner, operator, approved: true } if owner == tx.from => {
                    grants.push((owner, token, operator, None))
                }
                _ => {}
            }
        }
        if grants.is_empty() {
            grants.extend(call_grant(tx));
        }
        for (owner, token, grantee, amount) in grants {
            if grantee == owner {
                continue;
            }
            let is_eoa = b.grantees.iter().find(|(a, _)| *a == grantee).map(|(_, code)| !code);
            let labelled = self.labels.is_bad(&grantee);
            let fresh = self.addrs.get(&grantee).is_none_or(|s| s.sent == 0);
            let flagged = if is_eoa == Some(true) || labelled {
                let what = granted(amount);
                let severity = if labelled || fresh { Severity::High } else { Severity::Medium };
                let why = grantee_reasons(is_eoa == Some(true), fresh, labelled);
                let mut a = Alert::new(b, Some(tx), "ice-phishing", severity)
                    .party(&owner, "victim")
                    .party(&grantee, "spender")
                    .party(&token, "token")
                    .reason(format!("{owner} let {grantee} ({}) spend {what} of token {token}", why.join(", ")));
                let mut hits = Vec::new();
                self.label_hits(&grantee, &mut hits);
                a.labels = hits;
                let before = out.len();
                self.emit(b, tx, a, Some(grantee), out);
                out.get(before).map(|a| a.id.clone())
            } else {
                None
            };
            let list = self.grants.entry(grantee).or_default();
            if let Some(g) = list.iter_mut().find(|g| g.owner == owner && g.token == token) {
                g.flagged = flagged.or(g.flagged.take());
            } else if list.len() < 10_000 {
                list.push(Grant { owner, token, flagged });
            }
        }
    }

    /// Token moves out of approvers by their grantee: a flagged grant being used is a drain; many
    /// approvers swept by one spender within the window is a drainer sweep.
    fn drains_and_sweeps(&mut self, b: &ChainBlock, tx: &ChainTx, out: &mut Vec<Alert>) {
        let spenders = [Some(tx.from), tx.to];
        let mut victims: Vec<(Address, Address, Address, Option<String>)> = Vec::new(); // (victim, token, spender, flag)
        for ev in &tx.events {
            let (token, from) = match *ev {
                TokenEvent::Transfer { token, from, .. }
                | TokenEvent::NftTransfer { token, from, .. }
                | TokenEvent::MultiTransfer { token, from, .. } => (token, from),
                _ => continue,
            };
            if from == tx.from {
                continue;
            }
            for spender in spenders.iter().flatten() {
                if let Some(g) =
                    self.grants.get(spender).and_then(|gs| gs.iter().find(|g| g.owner == from && g.token == token))
                {
                    if !victims.iter().any(|v| v.0 == from && v.1 == token) {
                        victims.push((from, token, *spender, g.flagged.clone()));
                    }
                    break;
                }
            }
        }
        for (victim, token, spender, flagged) in &victims {
            if let Some(origin) = flagged {
                let mut a = Alert::new(b, Some(tx), "ice-phishing-drain", Severity::Critical)
                    .party(victim, "victim")
                    .party(spender, "spender")
                    .party(token, "token")
                    .reason(format!(
                        "{spender} moved token {token} out of {victim} using the allowance flagged by alert {origin}"
                    ));
                a.related = vec![origin.clone()];
                self.emit(b, tx, a, Some(*spender), out);
            }
        }
        let window = self.cfg.sweep_window_secs;
        let need = self.cfg.sweep_victims;
        let mut by_spender: Vec<Address> = victims.iter().map(|v| v.2).collect();
        by_spender.dedup();
        for spender in by_spender {
            let q = self.sweeps.entry(spender).or_default();
            for v in victims.iter().filter(|v| v.2 == spender) {
                if !q.iter().any(|(_, a)| *a == v.0) {
                    q.push_back((b.timestamp, v.0));
                }
            }
            while q.front().is_some_and(|(t, _)| b.timestamp.saturating_sub(*t) > window) {
                q.pop_front();
            }
            if q.len() >= need {
                let swept: Vec<Address> = q.iter().map(|(_, a)| *a).collect();
                q.clear();
                let mut a = Alert::new(b, Some(tx), "drainer-sweep", Severity::High)
                    .party(&spender, "spender")
                    .reason(format!("{spender} moved tokens out of {} approvers within {window} s", swept.len()));
                for v in &swept {
                    a = a.party(v, "victim");
                }
                self.emit(b, tx, a, Some(spender), out);
            }
        }
    }

    fn lookalike(&self, a: &Address, b: &Address) -> bool {
        if a == b {
            return false;
        }
        let (x, y) = (a.hex_digits(), b.hex_digits());
        let (p, s) = (self.cfg.poison_prefix, self.cfg.poison_suffix);
        x[..p] == y[..p] && x[40 - s..] == y[40 - s..]
    }

    fn poisoning(&mut self, b: &ChainBlock, tx: &ChainTx, out: &mut Vec<Alert>) {
        let mut moves: Vec<(Address, Address, Option<Address>, U256)> = Vec::new();
        if let Some(to) = tx.to {
            if matches!(tx.call, Call::Plain) && tx.value <= self.dust_wei {
                moves.push((tx.from, to, None, tx.value));
            }
        }
        for ev in &tx.events {
            if let TokenEvent::Transfer { token, from, to, value } = *ev {
                if value <= self.dust_token {
                    moves.push((from, to, Some(token), value));
                }
            }
        }
        for (from, to, token, value) in moves {
            if let Some((victim, mimic, real)) = self.poisoned(from, to) {
                let a = Alert::new(b, Some(tx), "address-poisoning", Severity::High)
                    .party(&victim, "victim")
                    .party(&mimic, "poisoner")
                    .party(&real, "impersonated")
                    .reason(self.poison_reason(victim, mimic, real, token, value));
                self.emit(b, tx, a, Some(mimic), out);
            }
        }
    }

    /// A dust move `from -> to` as poisoning: `(victim, mimic, impersonated)` when either the
    /// victim receives it from a look-alike of someone it dealt with, or (a zero-value
    /// `transferFrom`) the victim appears to pay a look-alike.
    fn poisoned(&self, from: Address, to: Address) -> Option<(Address, Address, Address)> {
        [(to, from), (from, to)].into_iter().find_map(|(victim, mimic)| {
            let s = self.addrs.get(&victim)?;
            let real = s.counterparties.iter().find(|c| self.lookalike(c, &mimic))?;
            Some((victim, mimic, *real))
        })
    }

    fn poison_reason(
        &self,
        victim: Address,
        mimic: Address,
        real: Address,
        token: Option<Address>,
        value: U256,
    ) -> String {
        let asset = token.map_or_else(|| "ether".to_owned(), |t| format!("token {t}"));
        format!(
            "{mimic} mimics {real}, a recent counterparty of {victim} (same first {} and last {} hex digits), in a {value}-unit {asset} transfer",
            self.cfg.poison_prefix, self.cfg.poison_suffix
        )
    }

    fn large_transfers(&mut self, b: &ChainBlock, tx: &ChainTx, out: &mut Vec<Alert>) {
        let mut sends: Vec<(Address, Option<Address>, U256)> = Vec::new();
        if !tx.value.is_zero() {
            sends.push((tx.from, None, tx.value));
        }
        for ev in &tx.events {
            if let TokenEvent::Transfer { token, from, value, .. } = *ev {
                if !value.is_zero() {
                    sends.push((from, Some(token), value));
                }
            }
        }
        for (from, token, value) in sends {
            let v = value.to_f64();
            let f = self.flows.get(&(from, token)).copied().unwrap_or_default();
            if f.n >= self.cfg.large_min_history && v >= self.cfg.large_factor * f.max {
                let asset = token.map_or_else(|| "wei".to_owned(), |t| format!("base units of token {t}"));
                let a =
                    Alert::new(b, Some(tx), "large-transfer", Severity::Medium).party(&from, "sender").reason(format!(
                        "{from} sent {value} {asset}, {:.1}x the largest of its {} earlier transfers",
                        v / f.max.max(1.0),
                        f.n
                    ));
                self.emit(b, tx, a, None, out);
            }
            if self.flows.len() < self.cfg.max_tracked || self.flows.contains_key(&(from, token)) {
                let e = self.flows.entry((from, token)).or_default();
                e.n = e.n.saturating_add(1);
                e.max = e.max.max(v);
            }
        }
    }

    /// Remembers who dealt with whom (real transfers only, not dust) and who sends.
    fn learn(&mut self, tx: &ChainTx) {
        self.note_sender(tx.from);
        let mut pairs: Vec<(Address, Address)> = Vec::new();
        if let Some(to) = tx.to {
            if tx.value > self.dust_wei {
                pairs.push((tx.from, to));
            }
        }
        for ev in &tx.events {
            if let TokenEvent::Transfer { from, to, value, .. } = *ev {
                if value > self.dust_token {
                    pairs.push((from, to));
                }
            }
        }
        let cap = self.cfg.counterparties;
        for (a, c) in pairs {
            for (x, y) in [(a, c), (c, a)] {
                if let Some(s) = self.state(x) {
                    if let Some(i) = s.counterparties.iter().position(|p| *p == y) {
                        s.counterparties.remove(i);
                    }
                    s.counterparties.push_back(y);
                    while s.counterparties.len() > cap {
                        s.counterparties.pop_front();
                    }
                }
            }
        }
    }
}

/// The grant an approval call makes, as `(owner, token, grantee, amount)` (`None`: all tokens,
/// `setApprovalForAll`); zero-value approvals (revocations) grant nothing.
fn call_grant(tx: &ChainTx) -> Option<(Address, Address, Address, Option<U256>)> {
    let token = tx.to?;
    match tx.call {
        Call::Approve { spender, value } | Call::IncreaseAllowance { spender, added: value } if !value.is_zero() => {
            Some((tx.from, token, spender, Some(value)))
        }
        Call::Permit { owner, spender, value } if !value.is_zero() => Some((owner, token, spender, Some(value))),
        Call::SetApprovalForAll { operator, approved: true } => Some((tx.from, token, operator, None)),
        _ => None,
    }
}

/// Why a grantee is suspect, in words: an EOA (fresh or not) and/or a labelled address.
fn grantee_reasons(eoa: bool, fresh: bool, labelled: bool) -> Vec<&'static str> {
    let mut why = Vec::new();
    if eoa {
        why.push(if fresh { "an EOA with no transactions of its own" } else { "an EOA, not a contract" });
    }
    if labelled {
        why.push("a labelled address");
    }
    why
}

/// What a grant lets the grantee spend, in words.
fn granted(amount: Option<U256>) -> String {
    match amount {
        None => "all tokens (setApprovalForAll)".to_owned(),
        Some(v) if v == U256::MAX => "an unlimited amount".to_owned(),
        Some(v) => format!("{v} base units"),
    }
}

#[cfg(test)]
mod tests;
