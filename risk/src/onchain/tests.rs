#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn addr(hex40: &str) -> Address {
    Address::from_hex(&format!("0x{hex40}")).unwrap()
}

fn a(n: u8) -> Address {
    Address([n; 20])
}

struct Chain {
    number: u64,
    ts: u64,
}

impl Chain {
    fn new() -> Chain {
        Chain { number: 100, ts: 1_700_000_000 }
    }

    fn block(&mut self, txs: Vec<ChainTx>, grantees: Vec<(Address, bool)>) -> ChainEvent {
        self.number += 1;
        self.ts += 12;
        let mut h = [0_u8; 32];
        h[..8].copy_from_slice(&self.number.to_be_bytes());
        let mut txs = txs;
        for (i, t) in txs.iter_mut().enumerate() {
            t.index = i as u32;
            t.hash.0[..8].copy_from_slice(&self.number.to_be_bytes());
            t.hash.0[8] = i as u8;
        }
        ChainEvent::Block(Box::new(ChainBlock {
            chain_id: 1,
            number: self.number,
            hash: H256(h),
            parent_hash: H256::default(),
            timestamp: self.ts,
            recv_ns: 0,
            txs,
            grantees,
        }))
    }
}

fn tx(from: Address, to: Option<Address>, value: u64, call: Call, events: Vec<TokenEvent>) -> ChainTx {
    ChainTx {
        hash: H256::default(),
        index: 0,
        from,
        to,
        value: U256::from_u64(value),
        nonce: 0,
        gas: 21_000,
        gas_price: U256::from_u64(1),
        gas_used: Some(21_000),
        success: Some(true),
        created: None,
        call,
        events,
    }
}

fn run(m: &mut Monitor, ev: &ChainEvent) -> Vec<Alert> {
    let mut out = Vec::new();
    m.on_event(ev, &mut out);
    out
}

fn detectors(alerts: &[Alert]) -> Vec<&'static str> {
    alerts.iter().map(|a| a.detector).collect()
}

/// A tenth of an ether, so that multiples fit in a u64.
const ETH: u64 = 100_000_000_000_000_000;

#[test]
fn ice_phishing_then_drain_then_incident() {
    let mut m = Monitor::new(MonitorConfig::default(), LabelSet::default(), HashSet::new());
    let mut c = Chain::new();
    let (victim, token, router, phisher) = (a(1), a(2), a(3), a(4));
    // Approving a contract (a router) is normal.
    let ok = tx(
        victim,
        Some(token),
        0,
        Call::Approve { spender: router, value: U256::MAX },
        vec![TokenEvent::Approval { token, owner: victim, spender: router, value: U256::MAX }],
    );
    assert!(run(&mut m, &c.block(vec![ok], vec![(router, true)])).is_empty());
    // Approving a fresh EOA is ice phishing.
    let bad = tx(
        victim,
        Some(token),
        0,
        Call::Approve { spender: phisher, value: U256::MAX },
        vec![TokenEvent::Approval { token, owner: victim, spender: phisher, value: U256::MAX }],
    );
    let alerts = run(&mut m, &c.block(vec![bad], vec![(phisher, false)]));
    assert_eq!(detectors(&alerts), ["ice-phishing"]);
    let ice = &alerts[0];
    assert_eq!(ice.severity, Severity::High, "a fresh EOA");
    assert!(ice.reason.contains("an unlimited amount") && ice.reason.contains("no transactions"), "{}", ice.reason);
    assert_eq!(ice.addresses[1].role, "spender");
    assert_eq!(ice.id, "1:102:0:ice-phishing:0");
    // The phisher pulls the tokens: a drain naming the approval alert, and an incident.
    let drain = tx(
        phisher,
        Some(token),
        0,
        Call::TransferFrom { from: victim, to: a(5), value: U256::from_u64(7) },
        vec![TokenEvent::Transfer { token, from: victim, to: a(5), value: U256::from_u64(7) }],
    );
    let alerts = run(&mut m, &c.block(vec![drain], vec![]));
    assert_eq!(detectors(&alerts), ["ice-phishing-drain", "incident"]);
    assert_eq!(alerts[0].related, vec![ice.id.clone()]);
    assert_eq!(alerts[1].severity, Severity::Critical);
    assert_eq!(alerts[1].related.len(), 2);
    // An unlooked-up grantee is not assumed to be an EOA.
    let unknown = tx(a(6), Some(token), 0, Call::Approve { spender: a(7), value: U256::MAX }, vec![]);
    assert!(run(&mut m, &c.block(vec![unknown], vec![])).is_empty());
}

#[test]
fn address_poisoning_by_lookalike() {
    let mut m = Monitor::new(MonitorConfig::default(), LabelSet::default(), HashSet::new());
    let mut c = Chain::new();
    let victim = a(1);
    let friend = addr("abcd111111111111111111111111111111119876");
    let mimic = addr("abcd222222222222222222222222222222229876");
    let other = addr("ffff222222222222222222222222222222229876");
    run(&mut m, &c.block(vec![tx(victim, Some(friend), ETH, Call::Plain, vec![])], vec![]));
    // Dust from an unrelated address is not poisoning.
    assert!(run(&mut m, &c.block(vec![tx(other, Some(victim), 0, Call::Plain, vec![])], vec![])).is_empty());
    // A zero-value token transferFrom(victim -> mimic), sent by the poisoner.
    let token = a(9);
    let ev = TokenEvent::Transfer { token, from: victim, to: mimic, value: U256::ZERO };
    let alerts = run(
        &mut m,
        &c.block(
            vec![tx(a(8), Some(token), 0, Call::TransferFrom { from: victim, to: mimic, value: U256::ZERO }, vec![ev])],
            vec![],
        ),
    );
    assert_eq!(detectors(&alerts), ["address-poisoning"]);
    assert!(alerts[0].reason.contains(&friend.to_string()), "{}", alerts[0].reason);
    let roles: Vec<_> = alerts[0].addresses.iter().map(|p| p.role).collect();
    assert_eq!(roles, ["victim", "poisoner", "impersonated"]);
    // The same moves still pending are named from the call alone: dust ether from the mimic, a
    // zero-value token `transfer` to the victim (token dust is 0 units by default), the zero-value `transferFrom`; a real payment from
    // the mimic, or dust from the friend itself, is not poisoning.
    for call in [
        tx(mimic, Some(victim), 1, Call::Plain, vec![]),
        tx(mimic, Some(token), 0, Call::Transfer { to: victim, value: U256::ZERO }, vec![]),
        tx(a(8), Some(token), 0, Call::TransferFrom { from: victim, to: mimic, value: U256::ZERO }, vec![]),
    ] {
        let alerts = run(&mut m, &pending(call, vec![]));
        assert_eq!(detectors(&alerts), ["address-poisoning"]);
        assert!(alerts[0].pending && alerts[0].reason.starts_with("pending: "), "{:?}", alerts[0]);
        let parties: Vec<_> = alerts[0].addresses.iter().map(|p| (p.role, p.address.clone())).collect();
        assert_eq!(
            parties,
            [("victim", victim.to_string()), ("poisoner", mimic.to_string()), ("impersonated", friend.to_string())]
        );
    }
    assert!(run(&mut m, &pending(tx(mimic, Some(victim), 5 * ETH, Call::Plain, vec![]), vec![])).is_empty());
    assert!(run(&mut m, &pending(tx(friend, Some(victim), 0, Call::Plain, vec![]), vec![])).is_empty());
    assert_eq!(m.stats().pending_alerts, 3);
}

#[test]
fn drainer_sweep_counts_distinct_approvers() {
    let mut m = Monitor::new(MonitorConfig::default(), LabelSet::default(), HashSet::new());
    let mut c = Chain::new();
    let (token, drainer_contract, operator) = (a(2), a(3), a(4));
    // Three victims approve the drainer contract (a contract: no ice-phishing alert).
    for v in [10, 11, 12] {
        let t = tx(
            a(v),
            Some(token),
            0,
            Call::Approve { spender: drainer_contract, value: U256::MAX },
            vec![TokenEvent::Approval { token, owner: a(v), spender: drainer_contract, value: U256::MAX }],
        );
        assert!(run(&mut m, &c.block(vec![t], vec![(drainer_contract, true)])).is_empty());
    }
    // A pool paying out to someone does not count: nobody approved anyone.
    let swap = tx(
        a(20),
        Some(a(21)),
        0,
        Call::Other { selector: [1, 2, 3, 4] },
        vec![TokenEvent::Transfer { token, from: a(21), to: a(20), value: U256::from_u64(5) }],
    );
    assert!(run(&mut m, &c.block(vec![swap], vec![])).is_empty());
    // The operator calls the contract, which pulls all three.
    let events = [10, 11, 12]
        .iter()
        .map(|v| TokenEvent::Transfer { token, from: a(*v), to: operator, value: U256::from_u64(100) })
        .collect();
    let sweep = tx(operator, Some(drainer_contract), 0, Call::Multicall { calls: 3 }, events);
    let alerts = run(&mut m, &c.block(vec![sweep], vec![]));
    assert_eq!(detectors(&alerts), ["drainer-sweep"]);
    assert_eq!(alerts[0].addresses.iter().filter(|p| p.role == "victim").count(), 3);
}

#[test]
fn known_bad_mixer_and_suppression() {
    let mut labels = LabelSet::default();
    let (scam, mixer, relayer) = (a(0xee), a(0x70), a(0x71));
    labels.insert(scam, Label::classify("Fake_Phishing1772".into(), "forta/etherscan_malicious_labels.csv".into()));
    labels.insert(mixer, Label::classify("Tornado.Cash: 1 ETH".into(), "test pack".into()));
    labels.insert(relayer, Label::classify("Fake_Phishing1".into(), "pack".into()));
    let mut m = Monitor::new(MonitorConfig::default(), labels, [relayer].into_iter().collect());
    let mut c = Chain::new();
    let alerts = run(&mut m, &c.block(vec![tx(a(1), Some(scam), ETH, Call::Plain, vec![])], vec![]));
    assert_eq!(detectors(&alerts), ["known-bad"]);
    assert_eq!(alerts[0].labels[0].label, "Fake_Phishing1772");
    assert_eq!(alerts[0].labels[0].source, "forta/etherscan_malicious_labels.csv");
    assert_eq!(alerts[0].severity, Severity::High);
    // Suppressed addresses raise nothing, and are counted.
    assert!(run(&mut m, &c.block(vec![tx(a(1), Some(relayer), ETH, Call::Plain, vec![])], vec![])).is_empty());
    // A mixer withdrawal call funds its caller, whose contract deployment is then flagged.
    let dep = run(&mut m, &c.block(vec![tx(a(1), Some(mixer), ETH, Call::Plain, vec![])], vec![]));
    assert_eq!(detectors(&dep), ["mixer"]);
    assert!(dep[0].reason.contains("Tornado.Cash"));
    let wd = run(
        &mut m,
        &c.block(vec![tx(a(5), Some(mixer), 0, Call::Other { selector: [0x21, 0xa0, 0xad, 0xb6] }, vec![])], vec![]),
    );
    assert_eq!(detectors(&wd), ["mixer"]);
    let mut create = tx(a(5), None, 0, Call::Create, vec![]);
    create.created = Some(a(0x55));
    let alerts = run(&mut m, &c.block(vec![create], vec![]));
    assert_eq!(detectors(&alerts), ["mixer-funded-contract", "incident"]);
    assert!(m.stats().suppressed >= 1);
}

#[test]
fn large_transfers_relative_to_own_history_and_retraction() {
    let mut m = Monitor::new(MonitorConfig::default(), LabelSet::default(), HashSet::new());
    let mut c = Chain::new();
    let whale = a(1);
    for i in 0..5 {
        assert!(run(&mut m, &c.block(vec![tx(whale, Some(a(2)), ETH + i, Call::Plain, vec![])], vec![])).is_empty());
    }
    // Nine times the largest is not enough; ten times is.
    assert!(run(&mut m, &c.block(vec![tx(whale, Some(a(2)), 9 * ETH, Call::Plain, vec![])], vec![])).is_empty());
    let big = c.block(vec![tx(whale, Some(a(3)), 90 * ETH + 100, Call::Plain, vec![])], vec![]);
    let alerts = run(&mut m, &big);
    assert_eq!(detectors(&alerts), ["large-transfer"]);
    assert!(alerts[0].reason.contains("9000000000000000100 wei"), "{}", alerts[0].reason);
    // Its block is orphaned: the alert is retracted by id.
    let ChainEvent::Block(b) = &big else { unreachable!() };
    let r = run(&mut m, &ChainEvent::Orphaned { chain_id: 1, number: b.number, hash: b.hash });
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].retracts.as_deref(), Some(alerts[0].id.as_str()));
    assert_eq!(m.stats().retracted, 1);
    // An unknown block retracts nothing.
    assert!(run(&mut m, &ChainEvent::Orphaned { chain_id: 1, number: 5, hash: H256::default() }).is_empty());
}

#[test]
fn reverted_transactions_raise_nothing_and_config_is_validated() {
    let mut m = Monitor::new(MonitorConfig::default(), LabelSet::default(), HashSet::new());
    let mut c = Chain::new();
    let mut t = tx(a(1), Some(a(2)), 0, Call::Approve { spender: a(4), value: U256::MAX }, vec![]);
    t.success = Some(false);
    assert!(run(&mut m, &c.block(vec![t], vec![(a(4), false)])).is_empty());
    let bad = MonitorConfig { dust_wei: "1.5".into(), sweep_victims: 1, ..MonitorConfig::default() };
    let errs = bad.validate().unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(MonitorConfig::default().validate().is_ok());
}

/// Scores an address by how many distinct senders paid it (a stand-in for a trained model, so
/// the detector's bookkeeping is checked exactly).
struct ManyPayers;

impl AddressScorer for ManyPayers {
    fn score_profiles(&mut self, rows: &[f64], out: &mut Vec<f32>) -> Result<(), String> {
        let payers = PROFILE_FEATURES.iter().position(|f| *f == "Unique Received From Addresses").unwrap();
        out.extend(rows.chunks_exact(PROFILE_FEATURES.len()).map(|r| if r[payers] >= 2.5 { 0.9 } else { 0.1 }));
        Ok(())
    }
    fn threshold(&self) -> f32 {
        0.5
    }
    fn version(&self) -> &str {
        "payers v1"
    }
}

#[test]
fn address_model_scores_changed_profiles_and_alerts_once() {
    let mut m = Monitor::new(MonitorConfig::default(), LabelSet::default(), HashSet::new())
        .with_address_scorer(Box::new(ManyPayers));
    let mut c = Chain::new();
    let collector = a(0x50);
    // Two payments from one payer: below `address_min_txs` (3), nobody is scored.
    let out = run(&mut m, &c.block(vec![tx(a(1), Some(collector), ETH, Call::Plain, vec![]); 2], vec![]));
    assert!(out.is_empty());
    assert_eq!(m.stats().addresses_scored, 0, "no address has 3 transactions yet");
    // A second payer: 3 receipts, scored, 2 payers is under the stand-in's bar; a third alerts.
    let out = run(&mut m, &c.block(vec![tx(a(2), Some(collector), ETH, Call::Plain, vec![])], vec![]));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(m.stats().addresses_scored, 1);
    let out = run(&mut m, &c.block(vec![tx(a(3), Some(collector), ETH, Call::Plain, vec![])], vec![]));
    assert_eq!(detectors(&out), ["ml-address"]);
    assert_eq!(out[0].model_version.as_deref(), Some("payers v1"));
    assert!(out[0].reason.contains("4 received (0.4000 ether)"), "{}", out[0].reason);
    assert_eq!(out[0].id, "1:103:0:ml-address:0");
    let p = m.profile(&collector).unwrap();
    assert!(p.alerted && !p.is_contract);
    // Once alerted, more payments do not alert again; a contract is never scored.
    let token = a(0x70);
    let transfer = TokenEvent::Transfer { token, from: a(4), to: collector, value: U256::from_u64(5) };
    let out = run(&mut m, &c.block(vec![tx(a(4), Some(token), 0, Call::Plain, vec![transfer]); 3], vec![]));
    assert!(out.is_empty(), "{out:?}");
    assert!(m.profile(&token).unwrap().is_contract);
    assert_eq!(m.profile(&collector).unwrap().total_txs(), 4);
}

#[test]
fn an_orphaned_block_restores_the_profiles_it_changed() {
    let mut m = Monitor::new(MonitorConfig::default(), LabelSet::default(), HashSet::new())
        .with_address_scorer(Box::new(ManyPayers));
    let mut c = Chain::new();
    let collector = a(0x50);
    run(&mut m, &c.block(vec![tx(a(1), Some(collector), ETH, Call::Plain, vec![]); 2], vec![]));
    let before = *m.profile(&collector).unwrap();
    // The block that makes it alert (two new payers), then a reorg orphans it.
    let ev = c.block(
        vec![tx(a(2), Some(collector), ETH, Call::Plain, vec![]), tx(a(3), Some(collector), ETH, Call::Plain, vec![])],
        vec![],
    );
    let out = run(&mut m, &ev);
    assert_eq!(detectors(&out), ["ml-address"]);
    let ChainEvent::Block(b) = &ev else { unreachable!() };
    let out = run(&mut m, &ChainEvent::Orphaned { chain_id: 1, number: b.number, hash: b.hash });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].retracts.as_deref(), Some("1:102:1:ml-address:0"));
    assert_eq!(*m.profile(&collector).unwrap(), before, "the profile is as before the orphaned block");
    assert!(m.profile(&a(2)).is_none() && m.profile(&a(3)).is_none(), "first seen there: gone again");
    // The canonical block with the same payments alerts again.
    let out = run(
        &mut m,
        &c.block(
            vec![
                tx(a(2), Some(collector), ETH, Call::Plain, vec![]),
                tx(a(3), Some(collector), ETH, Call::Plain, vec![]),
            ],
            vec![],
        ),
    );
    assert_eq!(detectors(&out), ["ml-address"]);
}

/// Flags everything it is asked about.
struct FlagAll;

impl TxScorer for FlagAll {
    fn score_block(&mut self, _: &ChainBlock, txs: &[usize], out: &mut Vec<f32>) -> Result<(), String> {
        out.extend(txs.iter().map(|_| 1.0));
        Ok(())
    }
    fn threshold(&self) -> f32 {
        0.5
    }
    fn version(&self) -> &str {
        "all v1"
    }
}

#[test]
fn the_transaction_model_scores_only_its_domain() {
    let token = a(0x70);
    let transfer = TokenEvent::Transfer { token, from: a(1), to: a(2), value: U256::from_u64(5) };
    let txs = vec![
        tx(a(1), Some(a(2)), ETH, Call::Plain, vec![]),
        tx(a(1), Some(token), 0, Call::Plain, vec![transfer]),
        ChainTx { success: Some(false), ..tx(a(3), Some(a(2)), ETH, Call::Plain, vec![]) },
    ];
    for (ether_only, expected) in [(true, 1), (false, 2)] {
        let cfg = MonitorConfig { ml_tx_ether_only: ether_only, ..MonitorConfig::default() };
        let mut m = Monitor::new(cfg, LabelSet::default(), HashSet::new()).with_scorer(Box::new(FlagAll));
        let out = run(&mut m, &Chain::new().block(txs.clone(), vec![]));
        let ml: Vec<&Alert> = out.iter().filter(|a| a.detector == "ml-tx").collect();
        assert_eq!(ml.len(), expected, "ether_only {ether_only}: {out:?}");
        assert_eq!(ml[0].id, "1:101:0:ml-tx:0");
        assert!(ml.iter().all(|a| !a.id.contains(":2:")), "a reverted transaction is never scored");
    }
}

fn pending(t: ChainTx, grantees: Vec<(Address, bool)>) -> ChainEvent {
    let mut t = t;
    (t.gas_used, t.success) = (None, None);
    t.hash.0[0] = 0xaa;
    ChainEvent::Pending(Box::new(PendingTx { chain_id: 1, recv_ns: 1_700_000_000_123_000_000, tx: t, grantees }))
}

#[test]
fn pending_transactions_raise_early_warnings_and_change_nothing() {
    let mut labels = LabelSet::default();
    let scam = a(0xee);
    labels.insert(scam, Label::classify("Fake_Phishing1772".into(), "forta/etherscan_malicious_labels.csv".into()));
    let mut m = Monitor::new(MonitorConfig::default(), labels, HashSet::new());
    let (victim, token, router, phisher) = (a(1), a(2), a(3), a(4));
    // A payment to a labelled address, still pending: a known-bad early warning.
    let pay = tx(victim, Some(scam), ETH, Call::Plain, vec![]);
    let alerts = run(&mut m, &pending(pay.clone(), vec![]));
    assert_eq!(detectors(&alerts), ["known-bad"]);
    let w = &alerts[0];
    assert!(w.pending && w.block_number == 0 && w.block_hash.is_empty(), "{w:?}");
    assert_eq!(w.id, format!("1:pending:{}:known-bad", w.tx_hash.clone().unwrap()));
    assert_eq!(w.block_timestamp, 1_700_000_000);
    assert!(w.reason.starts_with("pending: ") && w.reason.contains("Fake_Phishing1772"), "{}", w.reason);
    // A token transfer call to the labelled address names it from the input alone (no logs).
    let call = Call::Transfer { to: scam, value: U256::from_u64(5) };
    let alerts = run(&mut m, &pending(tx(victim, Some(token), 0, call, vec![]), vec![]));
    assert_eq!(detectors(&alerts), ["known-bad"]);
    assert!(alerts[0].addresses.iter().any(|p| p.role == "token-recipient"));
    // Approving a fresh EOA while pending: ice phishing; approving a contract: nothing.
    let approve = |spender| tx(victim, Some(token), 0, Call::Approve { spender, value: U256::MAX }, vec![]);
    let alerts = run(&mut m, &pending(approve(phisher), vec![(phisher, false)]));
    assert_eq!(detectors(&alerts), ["ice-phishing"]);
    assert_eq!(alerts[0].severity, Severity::High);
    assert!(alerts[0].reason.contains("about to let") && alerts[0].reason.contains("an unlimited amount"));
    assert!(run(&mut m, &pending(approve(router), vec![(router, true)])).is_empty());
    // An unlooked-up grantee is not assumed to be an EOA; a revocation (zero) grants nothing.
    assert!(run(&mut m, &pending(approve(a(9)), vec![])).is_empty());
    let revoke = tx(victim, Some(token), 0, Call::Approve { spender: phisher, value: U256::ZERO }, vec![]);
    assert!(run(&mut m, &pending(revoke, vec![(phisher, false)])).is_empty());
    // Nothing was learned or recorded: once mined, the approval raises its own alert with the
    // block's id (the pending warnings took no id sequence, joined no incident).
    let s = m.stats();
    assert_eq!((s.pending_txs, s.pending_alerts, s.blocks, s.alerts), (6, 3, 0, 3));
    let mut c = Chain::new();
    let mined = tx(
        victim,
        Some(token),
        0,
        Call::Approve { spender: phisher, value: U256::MAX },
        vec![TokenEvent::Approval { token, owner: victim, spender: phisher, value: U256::MAX }],
    );
    let alerts = run(&mut m, &c.block(vec![mined], vec![(phisher, false)]));
    assert_eq!(detectors(&alerts), ["ice-phishing"]);
    assert!(!alerts[0].pending && alerts[0].id == "1:101:0:ice-phishing:0");
    // The phisher's pull on that allowance, pending: the drain, named before it lands. A pull
    // of another owner's tokens (no flagged allowance) raises nothing.
    let pull = |from| Call::TransferFrom { from, to: a(5), value: U256::from_u64(7) };
    let alerts = run(&mut m, &pending(tx(phisher, Some(token), 0, pull(victim), vec![]), vec![]));
    assert_eq!(detectors(&alerts), ["ice-phishing-drain"]);
    assert_eq!((alerts[0].severity, alerts[0].pending), (Severity::Critical, true));
    assert_eq!(alerts[0].related, ["1:101:0:ice-phishing:0"]);
    assert!(run(&mut m, &pending(tx(phisher, Some(token), 0, pull(a(6)), vec![]), vec![])).is_empty());
    assert_eq!(m.stats().pending_confirmed, 0);
    // The warned payment mined: its block alert names the early warning of the same detector
    // (and only that one); the link is made once, when the transaction's block settles it.
    let mut warned = H256::default();
    warned.0[0] = 0xaa;
    let mut mine = |c: &mut Chain| {
        let mut ev = c.block(vec![pay.clone()], vec![]);
        if let ChainEvent::Block(b) = &mut ev {
            b.txs[0].hash = warned;
        }
        run(&mut m, &ev)
    };
    let alerts = mine(&mut c);
    assert_eq!(detectors(&alerts), ["known-bad"]);
    assert_eq!(alerts[0].related, [format!("1:pending:{warned}:known-bad")]);
    let again = mine(&mut c);
    assert_eq!(m.stats().pending_confirmed, 1);
    assert!(again[0].related.is_empty(), "{again:?}");
}
