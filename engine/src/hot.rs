//! The hot thread: one synchronous loop over an event source (live queue or replay) that keeps
//! the book, computes features, scores trades, runs the strategy, gates intents through risk and
//! executes approved orders. No allocation, lock, log line or `.await` per event: buffers are
//! preallocated, metrics are counted locally and published every `publish_every` events.

use std::time::Instant;

use argus_backtest::sim::SimExchange;
use argus_core::{
    BookAction, ClientOrderId, CloseReason, ExecReport, Executor, InstrumentId, MarketEvent, MarketEventKind,
    MarketStatus, Money, OrderBook, OrderIntent, Position, Reject, Scorer, Scores, State, Strategy, StrategyId,
    UnixNanos,
};
use argus_models::features::Features;
use argus_risk::RiskChain;

use crate::audit::{AuditRecord, AuditSink};
use crate::journal::Journal;
use crate::latency::{Stage, StageLatencies};

/// The view strategies and risk get. A macro rather than a method so that it borrows only the
/// fields it reads, leaving `risk` and `exec` free to be borrowed mutably beside it.
macro_rules! state {
    ($hot:ident, $now:expr) => {
        State {
            now: $now,
            instrument: $hot.instrument,
            book: &$hot.book,
            features: $hot.features.values(),
            scores: $hot.scores,
            position: &$hot.position,
            market: $hot.market,
        }
    };
}

/// Counters kept by the hot thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HotCounters {
    pub events: u64,
    pub trades: u64,
    pub quotes: u64,
    pub deltas: u64,
    pub scores: u64,
    pub model_errors: u64,
    pub intents: u64,
    pub approved: u64,
    pub rejected: [u64; Reject::ALL.len()],
    pub fills: u64,
    /// Orders the venue refused to take (its request queue was full).
    pub exec_errors: u64,
    /// Immediate-or-cancel orders that found nothing (more) to take.
    pub expired: u64,
    /// Cancels that reached the venue after their order was done.
    pub cancel_rejects: u64,
    /// Timers strategies asked for that fired.
    pub timers: u64,
    /// Cancels sent because the engine halted, and those the venue refused.
    pub halt_cancels: u64,
    pub cancel_errors: u64,
}

/// A book the hot thread keeps for an instrument it watches but does not trade (other symbols
/// and venues of a live run): exact, with its health, for reports, metrics and, later,
/// cross-venue features.
#[derive(Debug)]
pub struct WatchedBook {
    pub book: OrderBook,
    /// Whole: the last message ended a snapshot or diff, and no `Clear` came since.
    pub synced: bool,
    pub events: u64,
    pub trades: u64,
    pub quotes: u64,
    pub deltas: u64,
    pub last_venue_ts: UnixNanos,
}

impl WatchedBook {
    fn on_event(&mut self, ev: &MarketEvent) {
        self.events += 1;
        self.last_venue_ts = self.last_venue_ts.max(ev.ts_exchange);
        match ev.kind {
            MarketEventKind::Delta(d) => {
                self.book.apply(&d);
                self.deltas += 1;
                if d.action == BookAction::Clear {
                    self.synced = false;
                } else if d.flags.is_last() {
                    self.synced = true;
                }
            }
            MarketEventKind::Trade(_) => self.trades += 1,
            MarketEventKind::Quote(_) => self.quotes += 1,
            MarketEventKind::Mark(_) | MarketEventKind::Liquidation(_) => {}
        }
    }
}

/// Wiring of the hot thread.
#[derive(Debug)]
pub struct HotThread<Sc, St> {
    pub instrument: InstrumentId,
    pub book: OrderBook,
    pub features: Features,
    pub scorer: Sc,
    pub strategy: St,
    pub risk: RiskChain,
    pub exec: SimExchange,
    pub position: Position,
    /// Instrument rules and book health, read by risk.
    pub market: MarketStatus,
    /// Latest venue time seen on any event.
    last_venue_ts: UnixNanos,
    pub scores: Scores,
    pub latency: StageLatencies,
    pub counters: HotCounters,
    /// Measure ingress latency against the wall clock (live) or not (replays of old data).
    pub live_clock: bool,
    /// Where risk decisions are audited, if anywhere.
    pub audit: Option<AuditSink>,
    /// Orders, fills and the equity curve, kept for backtest reports (never live).
    pub journal: Option<Box<Journal>>,
    /// Books of watched instruments, indexed by instrument id (`None` for the traded one and
    /// for instruments not watched, whose events take the traded path as before).
    pub watched: Vec<Option<WatchedBook>>,
    intents: Vec<OrderIntent>,
    reports: Vec<ExecReport>,
    cancels: Vec<ClientOrderId>,
    out: [f32; 2],
}

impl<Sc: Scorer, St: Strategy> HotThread<Sc, St> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        instrument: InstrumentId,
        book_levels: usize,
        scorer: Sc,
        strategy: St,
        risk: RiskChain,
        exec: SimExchange,
        latency: StageLatencies,
        live_clock: bool,
    ) -> Self {
        Self {
            instrument,
            book: OrderBook::new(book_levels),
            features: Features::new(),
            scorer,
            strategy,
            risk,
            exec,
            position: Position::default(),
            market: MarketStatus {
                spec: None,
                book_synced: false,
                last_book_update: UnixNanos(0),
                clock_skew_ns: None,
            },
            last_venue_ts: UnixNanos(0),
            scores: Scores::default(),
            latency,
            counters: HotCounters::default(),
            live_clock,
            audit: None,
            journal: None,
            watched: Vec::new(),
            intents: Vec::with_capacity(16),
            reports: Vec::with_capacity(64),
            cancels: Vec::with_capacity(argus_risk::MAX_LIVE_ORDERS as usize),
            out: [0.0; 2],
        }
    }

    /// Runs until `source` ends, calling `publish` every `publish_every` events and at the end.
    pub fn run(
        &mut self,
        source: impl Iterator<Item = MarketEvent>,
        publish_every: u64,
        mut publish: impl FnMut(&Self),
    ) {
        for ev in source {
            self.step(&ev);
            if self.counters.events.is_multiple_of(publish_every) {
                publish(self);
            }
        }
        self.finish();
        publish(self);
    }

    /// End of input: due timers fire against the final book, the venue answers everything in
    /// flight, and the journal gets its last equity point.
    pub fn finish(&mut self) {
        self.fire_timers(u64::MAX);
        self.exec.finish(&self.book);
        self.apply_reports();
        if let (Some(j), Some(mid)) = (self.journal.as_deref_mut(), self.book.mid_units()) {
            j.sample_now(self.last_venue_ts, mid, &self.position);
        }
    }

    /// Keeps books for `instruments` besides the traded one (allocated here, once).
    pub fn watch(&mut self, instruments: impl IntoIterator<Item = InstrumentId>, book_levels: usize) {
        for id in instruments {
            let i = id.0 as usize;
            if id == self.instrument {
                continue;
            }
            if self.watched.len() <= i {
                self.watched.resize_with(i + 1, || None);
            }
            self.watched[i] = Some(WatchedBook {
                book: OrderBook::new(book_levels),
                synced: false,
                events: 0,
                trades: 0,
                quotes: 0,
                deltas: 0,
                last_venue_ts: UnixNanos(0),
            });
        }
    }

    /// Processes one event.
    #[inline]
    pub fn step(&mut self, ev: &MarketEvent) {
        let t0 = Instant::now();
        self.counters.events += 1;
        if let Some(Some(w)) = self.watched.get_mut(ev.instrument.0 as usize) {
            w.on_event(ev);
            return;
        }
        if self.live_clock && ev.ends_message() {
            let now = argus_feeds::binance::client::now();
            self.latency.record(Stage::ReceiveDecode, u64::from(ev.decode_ns));
            self.latency.record(Stage::DecodeHot, now.since(ev.ts_decoded()));
        }
        self.last_venue_ts = self.last_venue_ts.max(ev.ts_exchange);
        if ev.ts_exchange.0 != 0 && ev.ts_recv.0 != 0 {
            self.market.clock_skew_ns = Some(ev.ts_recv.0.wrapping_sub(ev.ts_exchange.0) as i64);
        }
        let local = if ev.ts_recv.0 != 0 { ev.ts_recv.0 } else { ev.ts_exchange.0 };
        self.fire_timers(local);
        self.exec.before_event(ev, &self.book);
        match ev.kind {
            MarketEventKind::Delta(d) => {
                self.book.apply(&d);
                self.counters.deltas += 1;
                if d.action == BookAction::Clear {
                    self.market.book_synced = false;
                } else if d.flags.is_last() {
                    // Snapshots carry no venue time: they are as fresh as the stream around them.
                    self.market.book_synced = true;
                    self.market.last_book_update = self.last_venue_ts;
                }
            }
            MarketEventKind::Trade(_) => self.counters.trades += 1,
            MarketEventKind::Quote(_) => self.counters.quotes += 1,
            MarketEventKind::Mark(_) | MarketEventKind::Liquidation(_) => {}
        }
        self.exec.after_event(ev, &self.book);
        self.apply_reports();
        if let Some(j) = self.journal.as_deref_mut() {
            if let Some(mid) = self.book.mid_units() {
                j.sample(self.last_venue_ts, mid, &self.position);
            }
        }
        let t1 = Instant::now();
        self.latency.record(Stage::Book, nanos(t0, t1));
        self.features.update(ev, &self.book);
        let t2 = Instant::now();
        self.latency.record(Stage::Features, nanos(t1, t2));
        if !matches!(ev.kind, MarketEventKind::Trade(_)) {
            return;
        }
        match self.scorer.score(self.features.values(), &mut self.out) {
            Ok(()) => {
                self.scores = Scores { signal: self.out[0], anomaly: self.out[1] };
                self.counters.scores += 1;
            }
            Err(_) => {
                // Fail closed: without a fresh score, the anomaly gate blocks orders.
                self.scores = Scores { signal: 0.0, anomaly: f32::NAN };
                self.counters.model_errors += 1;
            }
        }
        let t3 = Instant::now();
        self.latency.record(Stage::Model, nanos(t2, t3));
        // Decisions run on venue time, so a replay decides the same at any speed.
        let now = if ev.ts_exchange.0 != 0 { ev.ts_exchange } else { ev.ts_recv };
        if let Some(mark) = self.book.mid_units() {
            // Mark-to-market equity feeds the loss limits, which can escalate the kill switch.
            let p = &self.position;
            let equity = Money(p.realized.0 - p.fees.0 + p.unrealized(mark).0);
            self.risk.on_mark(self.instrument, mark);
            self.risk.on_equity(now.0, equity);
            // One strategy per hot thread today: its equity is the thread's.
            self.risk.on_strategy_equity(StrategyId(0), equity);
        }
        self.cancel_on_halt(now);
        self.intents.clear();
        let st = state!(self, now);
        self.strategy.on_event(ev, &st, &mut self.intents);
        let t4 = Instant::now();
        self.latency.record(Stage::Strategy, nanos(t3, t4));
        if self.intents.is_empty() {
            return;
        }
        self.submit_intents(now);
        self.latency.record(Stage::Risk, nanos(t4, Instant::now()));
    }
}

impl<Sc, St: Strategy> HotThread<Sc, St> {
    /// Fires the strategy's timers due before local time `local` (the next event's receive time).
    #[inline]
    fn fire_timers(&mut self, local: u64) {
        while let Some(t) = self.strategy.next_timer() {
            if t.0 >= local {
                return;
            }
            self.counters.timers += 1;
            self.exec.set_local_time(t);
            self.intents.clear();
            let st = state!(self, t);
            self.strategy.on_timer(&st, &mut self.intents);
            self.submit_intents(t);
        }
    }
}

impl<Sc, St> HotThread<Sc, St> {
    /// Gates `self.intents` through risk and sends the approved ones to the venue.
    fn submit_intents(&mut self, now: UnixNanos) {
        for i in 0..self.intents.len() {
            let intent = self.intents[i];
            self.counters.intents += 1;
            let st = state!(self, now);
            let decision = self.risk.evaluate(intent, &st);
            if let Some(audit) = &self.audit {
                audit.record(AuditRecord {
                    seq: self.counters.intents,
                    intent,
                    reject: decision.as_ref().err().copied(),
                    state: self.risk.switch().state(),
                    position: self.position.qty.units(),
                    mid: self.book.mid_units().unwrap_or(0),
                    signal: self.scores.signal,
                    anomaly: self.scores.anomaly,
                    checks_run: self.risk.last_checks(),
                });
            }
            match decision {
                Ok(approved) => {
                    self.counters.approved += 1;
                    match self.exec.submit(approved) {
                        Ok(id) => {
                            self.risk.on_sent(id, &intent);
                            if let Some(j) = self.journal.as_deref_mut() {
                                j.on_sent(id, &intent, self.exec.local_now());
                            }
                        }
                        Err(_) => self.counters.exec_errors += 1,
                    }
                }
                Err(reason) => self.counters.rejected[reason.index()] += 1,
            }
        }
        // With no latency the venue answers before the next event; collect what is already due.
        self.apply_reports();
    }

    /// Applies the venue's answers that have reached us.
    #[inline]
    fn apply_reports(&mut self) {
        self.exec.poll(&mut self.reports);
        for r in self.reports.drain(..) {
            match r {
                ExecReport::Resting(id) => self.risk.on_resting(id),
                ExecReport::Fill(f) => {
                    self.position.apply(&f);
                    self.risk.on_fill(&f);
                    self.counters.fills += 1;
                    if let Some(j) = self.journal.as_deref_mut() {
                        j.on_fill(&f, self.exec.local_now(), &self.position);
                    }
                }
                ExecReport::Closed { id, reason } => {
                    self.risk.on_closed(id);
                    if reason == CloseReason::Expired {
                        self.counters.expired += 1;
                    }
                    if let Some(j) = self.journal.as_deref_mut() {
                        j.on_closed(id, reason, self.exec.local_now());
                    }
                }
                ExecReport::CancelRejected(_) => self.counters.cancel_rejects += 1,
            }
        }
    }

    /// Once per halt (when configured), cancels every order risk knows to be live.
    #[inline]
    fn cancel_on_halt(&mut self, now: UnixNanos) {
        self.risk.cancels_on_halt(now.0, &mut self.cancels);
        if self.cancels.is_empty() {
            return;
        }
        for &id in &self.cancels {
            self.counters.halt_cancels += 1;
            // The order is closed when the venue confirms the cancel (or that it had filled).
            if self.exec.cancel(id).is_err() {
                self.counters.cancel_errors += 1;
            }
        }
        self.cancels.clear();
    }
}

#[inline]
fn nanos(a: Instant, b: Instant) -> u64 {
    b.saturating_duration_since(a).as_nanos() as u64
}
