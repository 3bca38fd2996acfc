//! Address labels from label packs (known scams, phishing, exploits, sanctions, mixers) and the
//! suppression list of known-benign addresses. Parsing files is the binary's job; this is the
//! lookup the detectors use.

use argus_core::{Address, FastMap};

/// What a label says about an address, for the detectors that care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LabelKind {
    /// Scam, phishing, exploit, heist, drainer, sanctions: interacting with it is an alert.
    Bad,
    /// A mixer (Tornado Cash and the like): interaction is noteworthy, funding from it matters.
    Mixer,
}

/// One label of one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub label: String,
    pub source: String,
    pub kind: LabelKind,
}

impl Label {
    /// A label whose text names a mixer is a [`LabelKind::Mixer`]; anything else in a pack of
    /// bad addresses is [`LabelKind::Bad`].
    pub fn classify(label: String, source: String) -> Label {
        let l = label.to_ascii_lowercase();
        let kind = if l.contains("mixer") || l.contains("tornado") { LabelKind::Mixer } else { LabelKind::Bad };
        Label { label, source, kind }
    }
}

/// Every labelled address, each with all of its labels (several packs may name it).
#[derive(Clone, Debug, Default)]
pub struct LabelSet {
    map: FastMap<Address, Vec<Label>>,
}

impl LabelSet {
    pub fn insert(&mut self, address: Address, label: Label) {
        let v = self.map.entry(address).or_default();
        if !v.contains(&label) {
            v.push(label);
        }
    }

    pub fn get(&self, address: &Address) -> &[Label] {
        self.map.get(address).map_or(&[], Vec::as_slice)
    }

    pub fn is_mixer(&self, address: &Address) -> bool {
        self.get(address).iter().any(|l| l.kind == LabelKind::Mixer)
    }

    pub fn is_bad(&self, address: &Address) -> bool {
        self.get(address).iter().any(|l| l.kind == LabelKind::Bad)
    }

    pub fn addresses(&self) -> impl Iterator<Item = Address> + '_ {
        self.map.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
