//! Backtests: history replayed through the same hot thread as live trading, with no socket and
//! no wall clock in any decision.

use anyhow::Result;
use argus_core::{BookAction, InstrumentSpec, InstrumentTable, MarketEvent, MarketEventKind, Venue};
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

/// Runs `events` (of `symbol` on `venue`) through the hot thread. `rules` are the instrument's
/// trading rules (`--rules`); without them only Binance spot BTCUSDT has rules built in, and
/// risk rejects every order for any other instrument. `malformed` counts input rows the source
/// skipped.
///
/// # Errors
/// Model or configuration failures.
pub fn run(
    events: impl Iterator<Item = MarketEvent>,
    venue: Venue,
    symbol: &str,
    rules: Option<InstrumentSpec>,
    setup: &HotSetup,
    malformed: &std::cell::Cell<u64>,
) -> Result<Outcome> {
    let mut instruments = InstrumentTable::default();
    let built_in =
        if venue == Venue::BinanceSpot { crate::pipeline::spot_spec(symbol) } else { crate::pipeline::untradable() };
    let spec = rules.unwrap_or(built_in);
    if !spec.tradable {
        tracing::warn!(%venue, symbol, "no trading rules for this instrument: risk rejects every order (give --rules)");
    }
    let instrument = instruments.add(venue, symbol, 8, 8, spec);
    let (mut hot, mut model) = setup.build(instrument, venue, spec, false)?;
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
    if rules.is_some() {
        report.risk.rules.source = "file";
    }
    let journal = hot.journal.take();
    drop(hot);
    report.audit = audit.map(crate::audit::Audit::finish);
    Ok(Outcome { report, journal })
}
