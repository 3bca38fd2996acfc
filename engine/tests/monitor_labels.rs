//! Label packs in the formats found in the wild, read from ../shared/data/chain at run time
//! (several are GPL or unlicensed, so they are not bundled): each file's addresses, labels and
//! sources, with the expected counts computed independently (Python's csv/yaml/json).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use argus_core::Address;
use argus_engine::monitor::labels::{load_labels, load_suppression};
use argus_risk::onchain::{LabelKind, LabelSet};

fn chain(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/chain").join(rel)
}

fn addr(s: &str) -> Address {
    Address::from_hex(s).unwrap()
}

#[test]
fn forta_csv_graphsense_yaml_cryptoscamdb_scamsniffer_and_mew() {
    let mut set = LabelSet::default();
    let r = load_labels(&chain("forta_labelled_datasets/labels/1/etherscan_malicious_labels.csv"), &mut set).unwrap();
    assert_eq!((r.addresses, r.bad), (7780, 0));
    let l = &set.get(&addr("0x80d7bb18521acbef32d7906502ebe94928690e93"))[0];
    assert_eq!(l.label, "Fake_Phishing1772");
    assert_eq!(l.source, "1/etherscan_malicious_labels.csv");
    assert_eq!(l.kind, LabelKind::Bad);

    // GraphSense OFAC tag pack: 572 tags, 150 of them Ethereum addresses, the pack's label.
    let r = load_labels(&chain("graphsense_tagpacks/ofac.yaml"), &mut set).unwrap();
    assert_eq!(r.addresses, 150);
    assert_eq!(r.addresses + r.other_chains + r.bad, 572);
    let l = set.get(&addr("0x8576acc5c05d6ce88f4e49bf65bdf0c62f91353c"));
    assert!(l.iter().any(|l| l.label == "Asset listed under US Treasury OFAC Sanctions List (user)"), "{l:?}");

    // CryptoScamDB: entries with `addresses: {ETH: [...]}` labelled by their name and category.
    let r = load_labels(&chain("cryptoscamdb/urls.yaml"), &mut set).unwrap();
    assert_eq!(r.addresses, 3984);
    let l = set.get(&addr("0xD0cC2B24980CBCCA47EF755Da88B220a82291407"));
    assert!(
        l.iter().any(|l| l.label == "myelherwallel.com (Phishing)" && l.source == "cryptoscamdb/urls.yaml"),
        "{l:?}"
    );
    assert!(l.len() >= 2, "also labelled by the Forta list: {l:?}");

    // ScamSniffer: a bare array, and domain -> addresses.
    let r = load_labels(&chain("scamsniffer/address.json"), &mut set).unwrap();
    assert_eq!(r.addresses, 2530);
    let r = load_labels(&chain("scamsniffer/combined.json"), &mut set).unwrap();
    assert_eq!(r.addresses, 3021);
    let l = set.get(&addr("0x3da02e1f29bcbed185eca0d3299efd46e6e7e155"));
    assert!(l.iter().any(|l| l.label == "degenalgo.art"), "{l:?}");

    // MEW darklist: objects with a comment; one entry has a name where its address should be.
    let r = load_labels(&chain("mew_darklist_2017_fork/addresses-darklist.json"), &mut set).unwrap();
    assert_eq!((r.addresses, r.bad), (55, 1));
    let l = set.get(&addr("0xf0a924661b0263e5ce12756d07f45b8668c53380"));
    assert!(l.iter().any(|l| l.label.starts_with("Ziber.io is now offline")), "{l:?}");

    // Forta's false-positive list as a suppression list.
    let mut benign = HashSet::new();
    let r = load_suppression(&chain("forta_starter_kits_eval/scam_detector_fp_list.csv"), &mut benign).unwrap();
    assert_eq!(r.addresses + r.bad, 1416);
    assert!(benign.contains(&addr("0x000000000022d473030f116ddee9f6b43ac78ba3")), "Permit2 is benign");
}

#[test]
fn broken_packs_are_errors_and_bad_rows_are_counted() {
    let dir = std::env::temp_dir().join(format!("argus-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let mut set = LabelSet::default();
    let e = load_labels(&bad, &mut set).unwrap_err();
    assert!(format!("{e:#}").contains("parsing"), "{e:#}");
    let csv = dir.join("mixed.csv");
    std::fs::write(
        &csv,
        "address,label\n0x12,too short\n,\n0x722122dF12D4e14e13Ac3b6895a86e84145b6967,Tornado.Cash: Router\n",
    )
    .unwrap();
    let r = load_labels(&csv, &mut set).unwrap();
    assert_eq!((r.addresses, r.bad), (1, 2));
    assert!(set.is_mixer(&addr("0x722122dF12D4e14e13Ac3b6895a86e84145b6967")));
    assert!(load_labels(&dir.join("missing.csv"), &mut set).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
