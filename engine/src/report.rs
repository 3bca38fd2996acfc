//! The end-of-run report: printed for humans, written as JSON with `--report-json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use argus_core::{Instrument, Reject, Side};
use serde::Serialize;

use crate::hot::HotThread;
use crate::latency::Stage;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub frames: Frames,
    pub book: BookReport,
    pub latency_ns: BTreeMap<&'static str, LatencySummary>,
    pub orders: Orders,
    pub pnl: Pnl,
    pub model: ModelReport,
    pub events: u64,
    pub queue: QueueReport,
    pub feed: FeedReport,
    pub wall_seconds: f64,
    pub risk: RiskReport,
    /// The simulated exchange: its settings and what it did.
    pub sim: SimReport,
    /// The audit log, when `--audit` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<crate::audit::AuditReport>,
    /// The Parquet tape, when `--record` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<crate::recorder::RecordingReport>,
    /// Live runs: each venue's feed health, keyed by venue.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub venues: BTreeMap<String, VenueReport>,
    /// Live runs over several instruments: the books of those not traded, keyed
    /// `venue:symbol`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub watched: BTreeMap<String, WatchedReport>,
}

/// One venue's feed over a live run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct VenueReport {
    pub frames: u64,
    pub events: u64,
    pub decode_errors: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub checksum_failures: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    pub queue_full_waits: u64,
    pub stale_instruments: u64,
    pub planned_reconnects: u64,
    /// Frame read -> events queued, upper bounds of the histogram buckets holding the median
    /// and the 99th percentile (null without samples or past the last bucket).
    pub frame_to_queue_p50_ns: Option<u64>,
    pub frame_to_queue_p99_ns: Option<u64>,
}

impl VenueReport {
    pub fn of(s: &argus_feeds::FeedStats) -> Self {
        use argus_feeds::FeedStats as F;
        Self {
            frames: s.frames(),
            events: F::get(&s.events_sent),
            decode_errors: F::get(&s.malformed),
            gaps: F::get(&s.gaps),
            resyncs: F::get(&s.resyncs),
            checksum_failures: F::get(&s.checksum_failures),
            disconnects: F::get(&s.disconnects),
            reconnects: F::get(&s.reconnects),
            queue_full_waits: F::get(&s.queue_full),
            stale_instruments: F::get(&s.stale_instruments),
            planned_reconnects: F::get(&s.planned_reconnects),
            frame_to_queue_p50_ns: s.frame_to_queue.snapshot().quantile_bound_ns(0.5),
            frame_to_queue_p99_ns: s.frame_to_queue.snapshot().quantile_bound_ns(0.99),
        }
    }
}

/// A watched (not traded) instrument's book at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct WatchedReport {
    pub best_bid: Option<[String; 2]>,
    pub best_ask: Option<[String; 2]>,
    pub bid_levels: usize,
    pub ask_levels: usize,
    pub synced: bool,
    pub events: u64,
    pub trades: u64,
    pub quotes: u64,
    pub deltas: u64,
}

impl WatchedReport {
    pub fn of(w: &crate::hot::WatchedBook, instrument: &Instrument) -> Self {
        let level = |l: Option<argus_core::Level>| {
            l.map(|l| {
                [
                    l.price.display_with(instrument.price_decimals).to_string(),
                    l.qty.display_with(instrument.size_decimals).to_string(),
                ]
            })
        };
        Self {
            best_bid: level(w.book.best_bid()),
            best_ask: level(w.book.best_ask()),
            bid_levels: w.book.depth(Side::Buy),
            ask_levels: w.book.depth(Side::Sell),
            synced: w.synced,
            events: w.events,
            trades: w.trades,
            quotes: w.quotes,
            deltas: w.deltas,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Frames {
    pub trade: u64,
    pub depth: u64,
    pub book_ticker: u64,
    pub snapshot: u64,
    pub ignored: u64,
    pub malformed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BookReport {
    pub instrument: String,
    /// `[price, qty]` as the venue prints them.
    pub best_bid: Option<[String; 2]>,
    pub best_ask: Option<[String; 2]>,
    pub bid_levels: usize,
    pub ask_levels: usize,
    pub sequence: u64,
    pub evicted_levels: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencySummary {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Orders {
    pub intents: u64,
    pub approved: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub fills: u64,
    pub exec_errors: u64,
    /// Immediate-or-cancel orders that found nothing (more) to take.
    pub expired: u64,
    pub cancel_rejects: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    pub order_latency: String,
    pub md_latency: String,
    pub queue_model: String,
    pub maker_fee_bps: f64,
    pub taker_fee_bps: f64,
    #[serde(flatten)]
    pub stats: argus_backtest::sim::SimStats,
    pub resting_at_end: usize,
}

impl SimReport {
    fn of(sim: &argus_backtest::sim::SimExchange) -> Self {
        use argus_backtest::sim::{Latency, QueueModel};
        let lat = |l: Latency| match l {
            Latency::Constant(ns) => format!("{ns}ns"),
            Latency::Recorded => "recorded".to_owned(),
        };
        let c = sim.config();
        Self {
            order_latency: lat(c.order_latency),
            md_latency: lat(c.md_latency),
            queue_model: match c.queue {
                QueueModel::Conservative => "conservative".to_owned(),
                QueueModel::Probabilistic { power } => format!("prob:{power}"),
            },
            maker_fee_bps: c.maker_fee_ppm as f64 / 100.0,
            taker_fee_bps: c.taker_fee_ppm as f64 / 100.0,
            stats: sim.stats(),
            resting_at_end: sim.resting(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Pnl {
    pub realized: String,
    pub unrealized: String,
    pub fees: String,
    pub position: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// The alpha model's name.
    pub name: String,
    /// The anomaly model's name, if one runs.
    pub anomaly: Option<String>,
    pub device: String,
    /// fp16 inference.
    pub half: bool,
    /// `inline`, or `batched (...)` on the inference thread.
    pub inference: String,
    pub scores: u64,
    pub errors: u64,
    /// Requests the inference thread's full queue refused.
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskReport {
    /// Kill-switch state at the end: `active`, `reducing` or `halted`.
    pub state: &'static str,
    pub state_changes: u64,
    /// State changes as the risk chain saw them, with the counts before each took effect.
    pub transitions: Vec<TransitionReport>,
    /// Gross and net notional over all venues at the last marks (quote currency).
    pub exposure_gross: String,
    pub exposure_net: String,
    /// Orders still live at the end: sent and unacknowledged, and resting.
    pub in_flight: u32,
    pub open_orders: u32,
    /// Cancels sent on halt, and those the venue refused.
    pub halt_cancels: u64,
    pub cancel_errors: u64,
    /// The traded instrument's trading rules, as risk checked orders against them.
    pub rules: RulesReport,
}

/// An instrument's trading rules in a report (decimal strings).
#[derive(Debug, Clone, Serialize)]
pub struct RulesReport {
    /// `config` (`[[instrument]]`), `venue` (read from it at start-up), `file` (a backtest's
    /// `--rules`), `built-in` or `none`.
    pub source: &'static str,
    pub tradable: bool,
    pub tick: String,
    pub lot: String,
    pub min_qty: String,
    /// `null` when unbounded.
    pub max_qty: Option<String>,
    pub min_notional: String,
}

impl RulesReport {
    pub fn of(spec: Option<argus_core::InstrumentSpec>) -> Self {
        let Some(s) = spec else {
            return Self {
                source: "none",
                tradable: false,
                tick: String::new(),
                lot: String::new(),
                min_qty: String::new(),
                max_qty: None,
                min_notional: String::new(),
            };
        };
        Self {
            source: if s.tradable { "built-in" } else { "none" },
            tradable: s.tradable,
            tick: s.tick.to_string(),
            lot: s.lot.to_string(),
            min_qty: s.min_qty.to_string(),
            max_qty: (s.max_qty != argus_core::Qty::MAX).then(|| s.max_qty.to_string()),
            min_notional: s.min_notional.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct TransitionReport {
    pub state: &'static str,
    pub intents_before: u64,
    pub approved_before: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueReport {
    pub capacity: usize,
    /// `block` or `drop` (`--queue-policy`).
    pub policy: &'static str,
    pub full_waits: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FeedReport {
    pub disconnects: u64,
    pub reconnects: u64,
    pub gaps: u64,
    pub stale_diffs: u64,
    pub snapshot_failures: u64,
}

impl Report {
    /// Builds the report from the hot thread's final state.
    pub fn build<Sc, St>(
        hot: &HotThread<Sc, St>,
        instrument: &Instrument,
        frames: Frames,
        model: ModelReport,
        queue: QueueReport,
        feed: FeedReport,
        wall_seconds: f64,
    ) -> Self {
        let level = |l: Option<argus_core::Level>| {
            l.map(|l| {
                [
                    l.price.display_with(instrument.price_decimals).to_string(),
                    l.qty.display_with(instrument.size_decimals).to_string(),
                ]
            })
        };
        let latency_ns = Stage::ALL
            .iter()
            .map(|&s| {
                let h = hot.latency.histogram(s);
                let n = h.len();
                let q = |p: f64| if n == 0 { 0 } else { h.value_at_quantile(p) };
                (
                    s.report_key(),
                    LatencySummary {
                        p50: q(0.5),
                        p99: q(0.99),
                        p999: q(0.999),
                        max: if n == 0 { 0 } else { h.max() },
                        count: n,
                    },
                )
            })
            .collect();
        let c = &hot.counters;
        let mark = hot.book.mid_units().unwrap_or(0);
        Self {
            frames,
            book: BookReport {
                instrument: instrument.symbol.clone(),
                best_bid: level(hot.book.best_bid()),
                best_ask: level(hot.book.best_ask()),
                bid_levels: hot.book.depth(Side::Buy),
                ask_levels: hot.book.depth(Side::Sell),
                sequence: hot.book.sequence(),
                evicted_levels: hot.book.evicted(),
            },
            latency_ns,
            orders: Orders {
                intents: c.intents,
                approved: c.approved,
                rejected: Reject::ALL.iter().map(|r| (r.as_str(), c.rejected[r.index()])).collect(),
                fills: c.fills,
                exec_errors: c.exec_errors,
                expired: c.expired,
                cancel_rejects: c.cancel_rejects,
            },
            pnl: Pnl {
                realized: hot.position.realized.to_string(),
                unrealized: hot.position.unrealized(mark).to_string(),
                fees: hot.position.fees.to_string(),
                position: hot.position.qty.to_string(),
            },
            model,
            events: c.events,
            queue,
            feed,
            wall_seconds,
            risk: RiskReport {
                state: hot.risk.switch().state().as_str(),
                state_changes: hot.risk.switch().changes(),
                transitions: hot
                    .risk
                    .transitions()
                    .iter()
                    .map(|t| TransitionReport {
                        state: t.state.as_str(),
                        intents_before: t.intents_before,
                        approved_before: t.approved_before,
                    })
                    .collect(),
                exposure_gross: argus_core::Money(hot.risk.exposure(None).gross).to_string(),
                exposure_net: argus_core::Money(hot.risk.exposure(None).net).to_string(),
                in_flight: hot.risk.order_counts().0,
                open_orders: hot.risk.order_counts().1,
                halt_cancels: c.halt_cancels,
                cancel_errors: c.cancel_errors,
                rules: RulesReport::of(hot.market.spec),
            },
            sim: SimReport::of(&hot.exec),
            recording: None,
            venues: BTreeMap::new(),
            watched: BTreeMap::new(),
            audit: None,
        }
    }

    /// A short human summary.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let f = &self.frames;
        let _ = writeln!(s, "argus report ({:.1} s wall)", self.wall_seconds);
        let _ = writeln!(
            s,
            "  frames   trade {}  depth {}  bookTicker {}  snapshot {}  malformed {}  ({} events to the hot thread)",
            f.trade, f.depth, f.book_ticker, f.snapshot, f.malformed, self.events
        );
        let b = &self.book;
        let show = |l: &Option<[String; 2]>| l.as_ref().map_or("-".to_owned(), |[p, q]| format!("{q} @ {p}"));
        let _ = writeln!(
            s,
            "  book     {}  bid {}  ask {}  levels {}/{}",
            b.instrument,
            show(&b.best_bid),
            show(&b.best_ask),
            b.bid_levels,
            b.ask_levels
        );
        let _ = writeln!(s, "  latency  (ns)          p50      p99     p999      max    count");
        for st in Stage::ALL {
            if let Some(l) = self.latency_ns.get(st.report_key()) {
                let _ = writeln!(
                    s,
                    "    {:<18} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    st.report_key(),
                    l.p50,
                    l.p99,
                    l.p999,
                    l.max,
                    l.count
                );
            }
        }
        let o = &self.orders;
        let rejected: Vec<String> =
            o.rejected.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            s,
            "  orders   intents {}  approved {}  fills {}  rejected [{}]",
            o.intents,
            o.approved,
            o.fills,
            rejected.join(", ")
        );
        let p = &self.pnl;
        let _ = writeln!(
            s,
            "  pnl      realized {}  unrealized {}  fees {}  position {}",
            p.realized, p.unrealized, p.fees, p.position
        );
        let _ = writeln!(s, "  risk     state {}  changes {}", self.risk.state, self.risk.state_changes);
        let r = &self.risk.rules;
        if r.tradable {
            let _ = writeln!(
                s,
                "  rules    tick {}  lot {}  qty {}..{}  min notional {}  ({})",
                r.tick,
                r.lot,
                r.min_qty,
                r.max_qty.as_deref().unwrap_or("unbounded"),
                r.min_notional,
                r.source
            );
        } else {
            let _ = writeln!(s, "  rules    not tradable: risk rejects every order  ({})", r.source);
        }
        let m = &self.model;
        let _ = writeln!(
            s,
            "  model    {} + {} on {}{} ({})  scores {}  errors {}",
            m.name,
            m.anomaly.as_deref().unwrap_or("no anomaly model"),
            m.device,
            if m.half { " fp16" } else { "" },
            m.inference,
            m.scores,
            m.errors
        );
        let q = &self.queue;
        let _ = writeln!(s, "  queue    capacity {}  full-waits {}  dropped {}", q.capacity, q.full_waits, q.dropped);
        if let Some(a) = &self.audit {
            let status = a.error.as_deref().map_or_else(|| "ok".to_owned(), |e| format!("FAILED: {e}"));
            let _ = writeln!(s, "  audit    {}  records {}  dropped {}  {status}", a.path, a.records, a.dropped);
        }
        if let Some(r) = &self.recording {
            let status = r.error.as_deref().map_or_else(|| "ok".to_owned(), |e| format!("FAILED: {e}"));
            let _ = writeln!(s, "  tape     {}  rows {}  lost {}  {status}", r.path, r.rows, r.lost);
        }
        s
    }
}
