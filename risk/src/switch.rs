//! The kill switch: ACTIVE, REDUCING (only risk-reducing orders pass) or HALTED (nothing passes).
//!
//! One atomic byte shared between the hot thread, which reads it once per order intent, and the
//! control plane (HTTP endpoint, CLI, signal, loss limits), which writes it. A change takes
//! effect for the very next intent.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// Trading state of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RiskState {
    Active = 0,
    Reducing = 1,
    Halted = 2,
}

impl RiskState {
    pub const fn as_str(self) -> &'static str {
        match self {
            RiskState::Active => "active",
            RiskState::Reducing => "reducing",
            RiskState::Halted => "halted",
        }
    }

    const fn from_u8(v: u8) -> Self {
        match v {
            0 => RiskState::Active,
            1 => RiskState::Reducing,
            // Any unknown value fails closed.
            _ => RiskState::Halted,
        }
    }
}

impl std::str::FromStr for RiskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" | "resume" => Ok(RiskState::Active),
            "reducing" | "reduce" => Ok(RiskState::Reducing),
            "halted" | "halt" => Ok(RiskState::Halted),
            _ => Err(format!("unknown risk state `{s}` (active, reducing, halted)")),
        }
    }
}

/// Shared handle to the engine's risk state. Clones share the state.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch {
    state: Arc<AtomicU8>,
    changes: Arc<AtomicU64>,
}

impl KillSwitch {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn state(&self) -> RiskState {
        RiskState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Sets the state; returns the previous one. Changes are counted.
    pub fn set(&self, s: RiskState) -> RiskState {
        let prev = RiskState::from_u8(self.state.swap(s as u8, Ordering::AcqRel));
        if prev != s {
            self.changes.fetch_add(1, Ordering::Relaxed);
        }
        prev
    }

    /// Moves to `s` only if that is stricter than the current state (automatic limits never
    /// loosen what an operator set).
    pub fn escalate(&self, s: RiskState) -> RiskState {
        let prev = RiskState::from_u8(self.state.fetch_max(s as u8, Ordering::AcqRel));
        if (s as u8) > (prev as u8) {
            self.changes.fetch_add(1, Ordering::Relaxed);
        }
        prev
    }

    /// State changes since start.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_escalate_and_count() {
        let k = KillSwitch::new();
        let other = k.clone();
        assert_eq!(k.state(), RiskState::Active);
        assert_eq!(other.set(RiskState::Reducing), RiskState::Active);
        assert_eq!(k.state(), RiskState::Reducing);
        k.escalate(RiskState::Active);
        assert_eq!(k.state(), RiskState::Reducing, "escalate never loosens");
        k.escalate(RiskState::Halted);
        assert_eq!(k.state(), RiskState::Halted);
        k.set(RiskState::Halted);
        assert_eq!(k.changes(), 2);
        assert_eq!("halt".parse::<RiskState>(), Ok(RiskState::Halted));
        assert!("stop".parse::<RiskState>().is_err());
    }
}
