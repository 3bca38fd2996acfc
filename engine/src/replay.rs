//! Backtests: history replayed through the same hot thread as live trading, with no socket and
//! no wall clock in any decision.

use anyhow::Result;
use argus_core::{BookAction, InstrumentTable, MarketEvent, MarketEventKind, Venue};
use std::time::Instant;

use crate::pipeline::HotSetup;
use crate::report::{FeedReport, Frames, QueueReport, Report};

/// What a backtest produced.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// Orders, fills and equity, when the setup asked for a journal.
    pub journal: Option<Box<crate::journal::Journal>>,
}

/// Runs `events` through the hot thread. `malformed` counts input rows the source skipped.
///
/// # Errors
/// Model or configuration failures.
pub fn run(
    events: impl Iterator<Item = MarketEvent>,
    symbol: &str,
    setup: &HotSetup,
    malformed: &std::cell::Cell<u64>,
) -> Result<Outcome> {
    let mut instruments = InstrumentTable::default();
    let spec = crate::pipeline::spot_spec(symbol);
    let instrument = instruments.add(Venue::BinanceSpot, symbol, 8, 8, spec);
    let (mut hot, mut model) = setup.build(instrument, Venue::BinanceSpot, spec, false)?;
    let audit = setup.audit.as_ref().map(crate::audit::Audit::start).transpose()?;
    hot.audit = audit.as_ref().map(crate::audit::Audit::sink);
    let mut frames = Frames::default();
    let started = Instant::now();
    let counted = events.inspect(|ev| match ev.kind {
        MarketEventKind::Trade(_) => frames.trade += 1,
        MarketEventKind::Quote(_) => frames.book_ticker += 1,
        MarketEventKind::Delta(d) if d.action == BookAction::Clear && d.flags.is_snapshot() => frames.snapshot += 1,
        MarketEventKind::Delta(d) if d.flags.is_last() && !d.flags.is_snapshot() => frames.depth += 1,
        MarketEventKind::Delta(_) | MarketEventKind::Mark(_) | MarketEventKind::Liquidation(_) => {}
    });
    hot.run(counted, u64::MAX, |_| {});
    frames.malformed = malformed.get();
    model.scores = hot.counters.scores;
    model.errors = hot.counters.model_errors;
    let instrument = instruments.get(instrument).ok_or_else(|| anyhow::anyhow!("instrument table"))?;
    let mut report = Report::build(
        &hot,
        instrument,
        frames,
        model,
        QueueReport::default(),
        FeedReport::default(),
        started.elapsed().as_secs_f64(),
    );
    let journal = hot.journal.take();
    drop(hot);
    report.audit = audit.map(crate::audit::Audit::finish);
    Ok(Outcome { report, journal })
}
