//! Trades toward a target position chosen by the model's signal, taking liquidity with IOC limit
//! orders a few basis points through the touch.

use argus_core::{
    MarketEvent, MarketEventKind, OrderIntent, Price, Qty, Side, State, Strategy, StrategyId, TimeInForce,
};

/// Parameters of [`SignalTaker`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalTakerConfig {
    /// Go long above `+entry_bps` of predicted return, short below `-entry_bps`.
    pub entry_bps: f32,
    /// Size of the target position, in base units.
    pub target_qty: Qty,
    /// Worst price accepted, in basis points through the opposite touch.
    pub slippage_bps: i64,
    /// Minimum time between two intents.
    pub cooldown_ns: u64,
    /// No intents until this long after the first trade seen: features need history, and a
    /// fixed anchor in venue time makes replays decide identically at any speed.
    pub warmup_ns: u64,
    /// Stamped on every intent; per-strategy loss limits key on it.
    pub id: StrategyId,
}

impl Default for SignalTakerConfig {
    fn default() -> Self {
        Self {
            entry_bps: 0.6,
            target_qty: Qty::from_units(10_000_000), // 0.01 BTC
            slippage_bps: 5,
            cooldown_ns: 1_000_000_000,
            id: StrategyId(0),
            warmup_ns: 5_000_000_000,
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct SignalTaker {
    cfg: SignalTakerConfig,
    last_intent_ns: Option<u64>,
    first_trade_ns: Option<u64>,
}

impl SignalTaker {
    pub fn new(cfg: SignalTakerConfig) -> Self {
        Self { cfg, last_intent_ns: None, first_trade_ns: None }
    }
}

impl Strategy for SignalTaker {
    fn on_event(&mut self, ev: &MarketEvent, st: &State<'_>, out: &mut Vec<OrderIntent>) {
        if !matches!(ev.kind, MarketEventKind::Trade(_)) {
            return;
        }
        let first = *self.first_trade_ns.get_or_insert(st.now.0);
        if st.now.0.saturating_sub(first) < self.cfg.warmup_ns {
            return;
        }
        if self.last_intent_ns.is_some_and(|t| st.now.0.saturating_sub(t) < self.cfg.cooldown_ns) {
            return;
        }
        let signal = st.scores.signal;
        let target = if signal > self.cfg.entry_bps {
            self.cfg.target_qty.units()
        } else if signal < -self.cfg.entry_bps {
            -self.cfg.target_qty.units()
        } else {
            return;
        };
        let delta = target.saturating_sub(st.position.qty.units());
        if delta == 0 {
            return;
        }
        let side = if delta > 0 { Side::Buy } else { Side::Sell };
        let touch = match side {
            Side::Buy => st.book.best_ask(),
            Side::Sell => st.book.best_bid(),
        };
        let (Some(touch), Some(spec)) = (touch, st.market.spec) else { return };
        let slip = touch.price.units() / 10_000 * self.cfg.slippage_bps;
        let raw = touch.price.units().saturating_add(side.sign() * slip);
        // On the venue's grid: the limit rounds toward the touch (never more aggressive than
        // intended), the size down to the lot.
        let tick = spec.tick.units().max(1);
        let limit = match side {
            Side::Buy => raw.div_euclid(tick) * tick,
            Side::Sell => (raw + tick - 1).div_euclid(tick) * tick,
        };
        let lot = spec.lot.units().max(1);
        let qty = delta.saturating_abs() / lot * lot;
        if qty == 0 {
            return;
        }
        let limit = Price::from_units(limit);
        out.push(OrderIntent {
            instrument: st.instrument,
            side,
            qty: Qty::from_units(qty),
            limit,
            tif: TimeInForce::Ioc,
            ts: st.now,
            strategy: self.cfg.id,
        });
        self.last_intent_ns = Some(st.now.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::{
        BookAction, BookDelta, DeltaFlags, InstrumentId, MarketStatus, OrderBook, Position, Scores, Trade, UnixNanos,
    };

    fn book() -> OrderBook {
        let mut b = OrderBook::new(0);
        for (side, px) in [(Side::Buy, "100"), (Side::Sell, "101")] {
            b.apply(&BookDelta {
                action: BookAction::Add,
                side,
                flags: DeltaFlags::default(),
                price: Price::parse(px).unwrap(),
                qty: Qty::parse("1").unwrap(),
                sequence: 1,
            });
        }
        b
    }

    fn trade(ts: u64) -> MarketEvent {
        MarketEvent {
            ts_exchange: UnixNanos(ts),
            ts_recv: UnixNanos(ts),
            instrument: InstrumentId(0),
            decode_ns: 0,
            kind: MarketEventKind::Trade(Trade {
                price: Price::from_units(1),
                qty: Qty::from_units(1),
                trade_id: 1,
                aggressor: Side::Buy,
            }),
        }
    }

    #[test]
    fn waits_for_warmup_from_the_first_trade() {
        let (b, pos) = (book(), Position::default());
        let mut s = SignalTaker::new(SignalTakerConfig::default());
        let mut out = Vec::new();
        let st = |now| State {
            now: UnixNanos(now),
            instrument: InstrumentId(0),
            book: &b,
            features: &[],
            scores: Scores { signal: 5.0, anomaly: 0.0 },
            position: &pos,
            market: MarketStatus::permissive(),
        };
        s.on_event(&trade(1_000), &st(1_000), &mut out);
        s.on_event(&trade(4_000_000_000), &st(4_000_000_000), &mut out);
        assert!(out.is_empty());
        s.on_event(&trade(5_000_001_000), &st(5_000_001_000), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn follows_signal_to_target_and_respects_cooldown() {
        let (b, pos) = (book(), Position::default());
        let mut s = SignalTaker::new(SignalTakerConfig { warmup_ns: 0, ..SignalTakerConfig::default() });
        let mut out = Vec::new();
        let st = |now, signal| State {
            now: UnixNanos(now),
            instrument: InstrumentId(0),
            book: &b,
            features: &[],
            scores: Scores { signal, anomaly: 0.0 },
            position: &pos,
            market: MarketStatus::permissive(),
        };
        s.on_event(&trade(0), &st(0, 0.1), &mut out);
        assert!(out.is_empty(), "signal below entry");
        s.on_event(&trade(0), &st(0, 2.0), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].side, Side::Buy);
        assert_eq!(out[0].limit, Price::parse("101.0505").unwrap());
        s.on_event(&trade(1), &st(1, -2.0), &mut out);
        assert_eq!(out.len(), 1, "cooldown");
        s.on_event(&trade(2_000_000_000), &st(2_000_000_000, -2.0), &mut out);
        assert_eq!(out[1].side, Side::Sell);
        assert_eq!(out[1].qty, SignalTakerConfig::default().target_qty);
    }
}
