//! Per-address activity profiles: the aggregates of the Kaggle address-fraud set
//! (`../shared/data/chain/kaggle_eth_fraud`), kept incrementally from the blocks the monitor
//! sees, so an address model trained on that set scores live addresses (`ml-address`).
//!
//! A profile is a fixed-size value (no per-transaction allocation): running count/sum/min/max
//! series, first/last times, and distinct-counterparty sketches. The set's semantics are
//! followed where its data shows them: values in ether (token amounts in units of 10^18, the
//! usual decimals, since the monitor does not look decimals up); "sent to contract" is value
//! sent with contract creations (nearly always zero in the set, as it is here); its four ERC-20
//! "avg time between" columns are zero in every row, so the profile reports zero too.

use argus_core::{Address, ChainTx, FastMap, TokenEvent, U256};

/// The profile's features in order, named as the Kaggle set's columns (leading and trailing
/// spaces trimmed). An address model names its features from this list.
pub const PROFILE_FEATURES: [&str; 45] = [
    "Avg min between sent tnx",
    "Avg min between received tnx",
    "Time Diff between first and last (Mins)",
    "Sent tnx",
    "Received Tnx",
    "Number of Created Contracts",
    "Unique Received From Addresses",
    "Unique Sent To Addresses",
    "min value received",
    "max value received",
    "avg val received",
    "min val sent",
    "max val sent",
    "avg val sent",
    "min value sent to contract",
    "max val sent to contract",
    "avg value sent to contract",
    "total transactions (including tnx to create contract",
    "total Ether sent",
    "total ether received",
    "total ether sent contracts",
    "total ether balance",
    "Total ERC20 tnxs",
    "ERC20 total Ether received",
    "ERC20 total ether sent",
    "ERC20 total Ether sent contract",
    "ERC20 uniq sent addr",
    "ERC20 uniq rec addr",
    "ERC20 uniq sent addr.1",
    "ERC20 uniq rec contract addr",
    "ERC20 avg time between sent tnx",
    "ERC20 avg time between rec tnx",
    "ERC20 avg time between rec 2 tnx",
    "ERC20 avg time between contract tnx",
    "ERC20 min val rec",
    "ERC20 max val rec",
    "ERC20 avg val rec",
    "ERC20 min val sent",
    "ERC20 max val sent",
    "ERC20 avg val sent",
    "ERC20 min val sent contract",
    "ERC20 max val sent contract",
    "ERC20 avg val sent contract",
    "ERC20 uniq sent token name",
    "ERC20 uniq rec token name",
];

/// Count, sum, min and max of a stream of amounts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Series {
    n: u32,
    sum: f64,
    min: f64,
    max: f64,
}

impl Series {
    fn add(&mut self, v: f64) {
        if self.n == 0 {
            (self.min, self.max) = (v, v);
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.n = self.n.saturating_add(1);
        self.sum += v;
    }

    fn avg(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / f64::from(self.n)
        }
    }
}

/// First and last time of a stream of events and how many: the mean gap in minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Times {
    n: u32,
    first: u64,
    last: u64,
}

impl Times {
    fn add(&mut self, ts: u64) {
        if self.n == 0 {
            self.first = ts;
        }
        self.n = self.n.saturating_add(1);
        self.last = self.last.max(ts);
    }

    fn span_min(&self) -> f64 {
        self.last.saturating_sub(self.first) as f64 / 60.0
    }

    fn mean_gap_min(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.span_min() / f64::from(self.n - 1)
        }
    }
}

/// A 128-bit linear-counting sketch of a set of addresses: within a few percent up to about a
/// hundred members, then a growing underestimate that saturates near 620. Counts in the set are
/// heavy-tailed and the model sees them through log1p, where that error is small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Distinct(u128);

impl Distinct {
    pub fn add(&mut self, a: &Address) {
        let mut k = [0_u8; 8];
        k.copy_from_slice(&a.0[12..20]);
        let h = u64::from_le_bytes(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 |= 1_u128 << (h >> 57);
    }

    pub fn estimate(&self) -> f64 {
        const M: f64 = 128.0;
        let zeros = f64::from(self.0.count_zeros());
        if zeros == 0.0 {
            M * M.ln()
        } else {
            -M * (zeros / M).ln()
        }
    }
}

/// What one address did, as far as the monitor has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Profile {
    sent: Series,
    received: Series,
    sent_times: Times,
    received_times: Times,
    all_times: Times,
    created: u32,
    creation_value: Series,
    sent_to: Distinct,
    received_from: Distinct,
    token_txs: u32,
    token_received: Series,
    token_sent: Series,
    token_sent_contract: Series,
    token_sent_to: Distinct,
    token_received_from: Distinct,
    token_sent_to_contract: Distinct,
    tokens_sent: Distinct,
    tokens_received: Distinct,
    /// Seen emitting token events, created, or called with input.
    pub is_contract: bool,
    /// An `ml-address` alert was raised for it.
    pub alerted: bool,
}

fn ether(v: &U256) -> f64 {
    v.to_f64() / 1e18
}

impl Profile {
    /// Transactions it sent, received and created (the set's "total transactions").
    pub fn total_txs(&self) -> u32 {
        self.sent.n.saturating_add(self.received.n)
    }

    /// Its side of a successful transaction it sent at `ts` (a creation counts as sent).
    pub fn on_sent(&mut self, tx: &ChainTx, ts: u64) {
        let v = ether(&tx.value);
        self.sent.add(v);
        self.sent_times.add(ts);
        self.all_times.add(ts);
        if let Some(to) = tx.to.or(tx.created) {
            self.sent_to.add(&to);
        }
        if tx.created.is_some() {
            self.created = self.created.saturating_add(1);
            self.creation_value.add(v);
        }
    }

    /// Its side of a successful transaction sent to it at `ts`.
    pub fn on_received(&mut self, tx: &ChainTx, ts: u64) {
        self.received.add(ether(&tx.value));
        self.received_times.add(ts);
        self.all_times.add(ts);
        self.received_from.add(&tx.from);
    }

    /// Its side of an ERC-20 transfer it sent (`to_contract`: the recipient is a known contract).
    pub fn on_token_sent(&mut self, ev: &TokenEvent, to_contract: bool) {
        if let TokenEvent::Transfer { token, to, value, .. } = ev {
            let v = ether(value);
            self.token_txs = self.token_txs.saturating_add(1);
            self.token_sent.add(v);
            self.token_sent_to.add(to);
            self.tokens_sent.add(token);
            if to_contract {
                self.token_sent_contract.add(v);
                self.token_sent_to_contract.add(to);
            }
        }
    }

    /// Its side of an ERC-20 transfer it received.
    pub fn on_token_received(&mut self, ev: &TokenEvent) {
        if let TokenEvent::Transfer { token, from, value, .. } = ev {
            self.token_txs = self.token_txs.saturating_add(1);
            self.token_received.add(ether(value));
            self.token_received_from.add(from);
            self.tokens_received.add(token);
        }
    }

    /// What the profile holds, in a sentence for an alert's reason.
    pub fn describe(&self) -> String {
        format!(
            "{} sent ({:.4} ether), {} received ({:.4} ether) from ~{:.0} addresses, {} contracts created, \
             {} token transfers, over {:.0} min",
            self.sent.n,
            self.sent.sum,
            self.received.n,
            self.received.sum,
            self.received_from.estimate(),
            self.created,
            self.token_txs,
            self.all_times.span_min()
        )
    }

    /// The profile as [`PROFILE_FEATURES`], appended to `out`.
    pub fn features(&self, out: &mut Vec<f64>) {
        let (s, r, c) = (&self.sent, &self.received, &self.creation_value);
        let (ts, tr, tc) = (&self.token_sent, &self.token_received, &self.token_sent_contract);
        out.extend([
            self.sent_times.mean_gap_min(),
            self.received_times.mean_gap_min(),
            self.all_times.span_min(),
            f64::from(s.n),
            f64::from(r.n),
            f64::from(self.created),
            self.received_from.estimate(),
            self.sent_to.estimate(),
            r.min,
            r.max,
            r.avg(),
            s.min,
            s.max,
            s.avg(),
            c.min,
            c.max,
            c.avg(),
            f64::from(self.total_txs()),
            s.sum,
            r.sum,
            c.sum,
            r.sum - s.sum,
            f64::from(self.token_txs),
            tr.sum,
            ts.sum,
            tc.sum,
            self.token_sent_to.estimate(),
            self.token_received_from.estimate(),
            self.token_sent_to_contract.estimate(),
            self.tokens_received.estimate(),
            0.0,
            0.0,
            0.0,
            0.0,
            tr.min,
            tr.max,
            tr.avg(),
            ts.min,
            ts.max,
            ts.avg(),
            tc.min,
            tc.max,
            tc.avg(),
            self.tokens_sent.estimate(),
            self.tokens_received.estimate(),
        ]);
    }
}

/// One address's profile in the table, with its place in the current block's bookkeeping.
#[derive(Clone, Copy, Debug)]
struct Slot {
    address: Address,
    profile: Profile,
    /// The block (table epoch) in which its undo entry was last written.
    journaled: u64,
    /// The block in which it last changed, and the position of that transaction.
    touched: u64,
    touched_pos: usize,
}

/// The profiles of every tracked address, with the per-block bookkeeping the monitor needs:
/// which profiles changed in the current block (to score them) and their values before it (to
/// undo an orphaned block). Profiles live in one array and the address index points into it, so
/// an address is hashed once per update and the block's bookkeeping is array work.
#[derive(Debug, Default)]
pub struct ProfileTable {
    index: FastMap<Address, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    epoch: u64,
    touched: Vec<u32>,
    undo: Vec<(Address, Option<Profile>)>,
    /// A retired block's undo log, kept for its capacity (a block changes hundreds of
    /// profiles: growing a fresh log each block cost more than the profiles' updates).
    spare: Vec<(Address, Option<Profile>)>,
}

impl ProfileTable {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, a: &Address) -> Option<&Profile> {
        self.index.get(a).and_then(|&i| self.slots.get(i as usize)).map(|s| &s.profile)
    }

    /// Starts a block: no profile has changed in it yet.
    pub fn begin_block(&mut self) {
        self.epoch += 1;
        self.touched.clear();
    }

    /// The slot of `a`'s profile, created (while fewer than `max` are kept) on first sight; the
    /// first change in a block records the profile's value before it for [`Self::take_undo`].
    pub fn slot(&mut self, a: Address, max: usize) -> Option<u32> {
        let full = self.index.len() >= max;
        match self.index.entry(a) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let i = *e.get();
                let s = self.slots.get_mut(i as usize)?;
                if s.journaled != self.epoch {
                    s.journaled = self.epoch;
                    self.undo.push((a, Some(s.profile)));
                }
                Some(i)
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                if full {
                    return None;
                }
                let fresh =
                    Slot { address: a, profile: Profile::default(), journaled: self.epoch, touched: 0, touched_pos: 0 };
                let i = match self.free.pop() {
                    Some(i) => {
                        *self.slots.get_mut(i as usize)? = fresh;
                        i
                    }
                    None => {
                        self.slots.push(fresh);
                        u32::try_from(self.slots.len() - 1).ok()?
                    }
                };
                e.insert(i);
                self.undo.push((a, None));
                Some(i)
            }
        }
    }

    /// The profile in slot `i`.
    pub fn at(&mut self, i: u32) -> Option<&mut Profile> {
        self.slots.get_mut(i as usize).map(|s| &mut s.profile)
    }

    /// Marks slot `i` changed by the block's transaction at `pos` (the last one wins).
    pub fn touch(&mut self, i: u32, pos: usize) {
        if let Some(s) = self.slots.get_mut(i as usize) {
            if s.touched != self.epoch {
                s.touched = self.epoch;
                self.touched.push(i);
            }
            s.touched_pos = pos;
        }
    }

    /// The profiles changed in the current block: (slot, address, profile, position of the last
    /// transaction that changed it).
    pub fn touched(&self) -> impl Iterator<Item = (u32, &Address, &Profile, usize)> + '_ {
        self.touched
            .iter()
            .filter_map(|&i| self.slots.get(i as usize).map(|s| (i, &s.address, &s.profile, s.touched_pos)))
    }

    /// The block's undo log (each changed profile's value before the block, `None`: created in
    /// it), leaving it empty for the next block.
    pub fn take_undo(&mut self) -> Vec<(Address, Option<Profile>)> {
        let next = std::mem::take(&mut self.spare);
        std::mem::replace(&mut self.undo, next)
    }

    /// Takes back the undo log of a block past reorg depth, to reuse its memory.
    pub fn recycle(&mut self, mut undo: Vec<(Address, Option<Profile>)>) {
        if undo.capacity() > self.spare.capacity() {
            undo.clear();
            self.spare = undo;
        }
    }

    /// Undoes an orphaned block's changes.
    pub fn restore(&mut self, undo: Vec<(Address, Option<Profile>)>) {
        for (a, before) in undo.into_iter().rev() {
            match before {
                Some(p) => {
                    if let Some(s) = self.index.get(&a).and_then(|&i| self.slots.get_mut(i as usize)) {
                        s.profile = p;
                    }
                }
                None => {
                    if let Some(i) = self.index.remove(&a) {
                        self.free.push(i);
                    }
                }
            }
        }
    }
}

/// A model that scores address profiles (the `ml-address` detector); implemented over tch by
/// the binary, so this crate stays pure.
pub trait AddressScorer: Send {
    /// One score in 0..1 per row of `rows` (each [`PROFILE_FEATURES`] long), appended to `out`.
    ///
    /// # Errors
    /// A message saying why the rows could not be scored (counted; rules still run).
    fn score_profiles(&mut self, rows: &[f64], out: &mut Vec<f32>) -> Result<(), String>;
    /// Scores at or above this alert.
    fn threshold(&self) -> f32;
    /// `name vN`, written into each alert's `model_version`.
    fn version(&self) -> &str;
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::{Call, H256};

    fn tx(from: u8, to: u8, wei: u64) -> ChainTx {
        ChainTx {
            hash: H256([from; 32]),
            index: 0,
            from: Address([from; 20]),
            to: Some(Address([to; 20])),
            value: U256::from_u64(wei),
            nonce: 0,
            gas: 21_000,
            gas_price: U256::ZERO,
            gas_used: Some(21_000),
            success: Some(true),
            created: None,
            call: Call::Plain,
            events: vec![],
        }
    }

    fn feature(p: &Profile, name: &str) -> f64 {
        let mut v = Vec::new();
        p.features(&mut v);
        assert_eq!(v.len(), PROFILE_FEATURES.len());
        v[PROFILE_FEATURES.iter().position(|n| *n == name).expect("a profile feature")]
    }

    #[test]
    fn aggregates_follow_the_kaggle_columns() {
        let mut p = Profile::default();
        // Sends 1, 3 and 2 ether to two addresses at minutes 0, 10 and 30; receives 10 once.
        for (to, eth, min) in [(2, 1, 0), (3, 3, 10), (2, 2, 30)] {
            p.on_sent(&tx(1, to, eth * 1_000_000_000_000_000_000), min * 60);
        }
        p.on_received(&tx(9, 1, 10_000_000_000_000_000_000), 40 * 60);
        assert_eq!(feature(&p, "Sent tnx"), 3.0);
        assert_eq!(feature(&p, "Received Tnx"), 1.0);
        assert_eq!(feature(&p, "Avg min between sent tnx"), 15.0);
        assert_eq!(feature(&p, "Avg min between received tnx"), 0.0);
        assert_eq!(feature(&p, "Time Diff between first and last (Mins)"), 40.0);
        assert_eq!(feature(&p, "min val sent"), 1.0);
        assert_eq!(feature(&p, "max val sent"), 3.0);
        assert_eq!(feature(&p, "avg val sent"), 2.0);
        assert_eq!(feature(&p, "total Ether sent"), 6.0);
        assert_eq!(feature(&p, "total ether balance"), 4.0);
        assert_eq!(feature(&p, "total transactions (including tnx to create contract"), 4.0);
        assert!((feature(&p, "Unique Sent To Addresses") - 2.0).abs() < 0.05);
        assert!((feature(&p, "Unique Received From Addresses") - 1.0).abs() < 0.05);
        // Tokens: 600 units (18 decimals) received from one sender of one token.
        let t = TokenEvent::Transfer {
            token: Address([0xaa; 20]),
            from: Address([5; 20]),
            to: Address([1; 20]),
            value: U256::from_dec_str("600000000000000000000").expect("a number"),
        };
        p.on_token_received(&t);
        assert_eq!(feature(&p, "Total ERC20 tnxs"), 1.0);
        assert_eq!(feature(&p, "ERC20 max val rec"), 600.0);
        assert!((feature(&p, "ERC20 uniq rec token name") - 1.0).abs() < 0.05);
        assert_eq!(feature(&p, "ERC20 uniq sent token name"), 0.0);
    }

    #[test]
    fn table_undoes_a_block_and_reuses_freed_slots() {
        let mut t = ProfileTable::default();
        let (a, b, c) = (Address([1; 20]), Address([2; 20]), Address([3; 20]));
        t.begin_block();
        let i = t.slot(a, 10).unwrap();
        t.at(i).unwrap().on_sent(&tx(1, 2, 5), 60);
        t.touch(i, 0);
        let block1 = t.take_undo();
        assert_eq!(block1, vec![(a, None)]);
        let after1 = *t.get(&a).unwrap();

        t.begin_block();
        assert_eq!(t.touched().count(), 0, "a new block starts with nothing changed");
        for pos in 0..3 {
            let i = t.slot(a, 10).unwrap();
            t.at(i).unwrap().on_sent(&tx(1, 2, 7), 120);
            t.touch(i, pos);
        }
        let j = t.slot(b, 10).unwrap();
        t.touch(j, 1);
        let touched: Vec<_> = t.touched().map(|(_, addr, _, pos)| (*addr, pos)).collect();
        assert_eq!(touched, vec![(a, 2), (b, 1)], "each address once, with its last position");
        let block2 = t.take_undo();
        assert_eq!(block2.len(), 2, "one undo entry per changed address: {block2:?}");
        t.restore(block2);
        assert_eq!(*t.get(&a).unwrap(), after1);
        assert!(t.get(&b).is_none() && t.len() == 1);

        t.begin_block();
        assert_eq!(t.slot(c, 10), Some(j), "the freed slot is reused");
        assert_eq!(*t.get(&c).unwrap(), Profile::default());
        assert_eq!(t.slot(b, 2), None, "full: not tracked");
    }

    #[test]
    fn distinct_sketch_counts_small_sets_closely() {
        let mut d = Distinct::default();
        assert_eq!(d.estimate(), 0.0);
        for i in 0..50_u32 {
            let mut a = [0_u8; 20];
            a[12..16].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
            a[16..20].copy_from_slice(&(i ^ 0x5bd1_e995).to_be_bytes());
            let addr = Address(a);
            d.add(&addr);
            d.add(&addr); // repeats count once
        }
        let e = d.estimate();
        assert!((40.0..60.0).contains(&e), "50 distinct estimated as {e}");
    }
}
