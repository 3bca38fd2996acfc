//! `argus feeds record`: live venue data into the Parquet catalog.
//!
//! Feed tasks (one per symbol on Binance, one per venue elsewhere) push normalized events into a
//! bounded queue; one writer thread
//! appends them to the catalog (`argus_backtest::catalog`), rotating parts by hour or day. On
//! Ctrl-C or SIGTERM the feeds stop, the queue drains, and every open part is closed and renamed
//! into place, so nothing already received is lost; a crash loses only the parts being written
//! (hidden `.tmp` files). A failing sink fails the command with the count of what it lost.
//! With `--raw`, the feeds also copy every frame they read (and Binance's REST snapshots) to a
//! second writer thread that keeps them under `<out>/raw/` (`argus_backtest::raw`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use argus_backtest::catalog::{CatalogWriter, Rotation, Table};
use argus_core::{InstrumentId, MarketEvent};
use argus_feeds::binance::{self, BinanceFeedConfig};
use argus_feeds::check::CheckVenue;
use argus_feeds::venue::VenueFeedConfig;
use argus_feeds::FeedStats;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

/// What to record.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// Any venue of `feeds check` (`binance-spot`, `binance-usdm`, `bybit`, `coinbase`, `kraken`, `okx`).
    pub venue: String,
    pub symbols: Vec<String>,
    pub out: PathBuf,
    pub rotation: Rotation,
    pub ws_base: Option<String>,
    pub rest_base: Option<String>,
    /// End when the server closes the stream (replays) instead of reconnecting.
    pub end_on_close: bool,
    /// Also keep every frame as received, under `<out>/raw/` (`argus_backtest::raw`).
    pub raw: bool,
}

/// Rows written per table, and the parts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecordSummary {
    pub venue: String,
    pub symbols: Vec<String>,
    pub events: u64,
    pub rows: std::collections::BTreeMap<&'static str, u64>,
    pub files: Vec<String>,
    /// Events the catalog could not take (with the first error).
    pub lost: u64,
    pub error: Option<String>,
    pub feed_errors: Vec<String>,
    /// `--raw`: frames kept, their files, and frames the raw files could not take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawSummary>,
}

/// The raw frames of a `--raw` recording.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RawSummary {
    pub frames: u64,
    pub files: Vec<String>,
    pub lost: u64,
    pub error: Option<String>,
}

/// Records until the feeds end or `shutdown` turns true.
///
/// # Errors
/// Unknown venue, unusable output directory, or a sink that failed (after writing what it could).
pub fn run(rt: &tokio::runtime::Runtime, cfg: &RecordConfig, shutdown: watch::Receiver<bool>) -> Result<RecordSummary> {
    let check_venue = CheckVenue::parse(&cfg.venue)
        .with_context(|| format!("unknown venue `{}` (one of {})", cfg.venue, CheckVenue::NAMES.join(", ")))?;
    let usdm = check_venue == CheckVenue::BinanceUsdm;
    let binance = matches!(check_venue, CheckVenue::BinanceSpot | CheckVenue::BinanceUsdm);
    anyhow::ensure!(
        !binance || cfg.ws_base.is_some() == cfg.rest_base.is_some(),
        "Binance needs --ws-base and --rest-base together (depth snapshots come over REST)"
    );
    anyhow::ensure!(
        binance || cfg.rest_base.is_none(),
        "--rest-base is for Binance ({} sends book snapshots over the websocket)",
        cfg.venue
    );
    let venue_name = crate::pipeline::core_venue(check_venue).as_str();
    let writer = CatalogWriter::new(&cfg.out, cfg.rotation)
        .with_context(|| format!("creating catalog {}", cfg.out.display()))?;
    let symbols: Vec<String> = cfg.symbols.iter().map(|s| s.to_ascii_uppercase()).collect();
    let (tx, rx) = crossbeam_channel::bounded::<MarketEvent>(1 << 16);
    let names = symbols.clone();
    let venue = venue_name.to_owned();
    let sink = std::thread::Builder::new().name("argus-record".into()).spawn(move || {
        let mut writer = writer;
        let (mut events, mut lost, mut error) = (0_u64, 0_u64, None::<String>);
        for ev in rx.iter() {
            let symbol = names.get(ev.instrument.0 as usize).map_or("?", String::as_str);
            match writer.write(&venue, symbol, &ev) {
                Ok(()) => events += 1,
                Err(e) => {
                    lost += 1;
                    error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let parts = match writer.finish() {
            Ok(p) => p,
            Err(e) => {
                error.get_or_insert_with(|| e.to_string());
                Vec::new()
            }
        };
        (events, lost, error, parts)
    })?;
    let (raw_tap, raw_sink) = if cfg.raw {
        let (tap, sink) = raw_sink(&cfg.out, venue_name, cfg.rotation)?;
        (Some(tap), Some(sink))
    } else {
        (None, None)
    };
    let mut feeds = Vec::new();
    if !binance {
        // One connection carries every symbol; books arrive whole over the socket.
        let ids = symbols.iter().enumerate().map(|(i, s)| (s.clone(), InstrumentId(i as u32))).collect();
        let feed = VenueFeedConfig {
            end_on_close: cfg.end_on_close,
            raw_tap: raw_tap.clone(),
            ..VenueFeedConfig::new(check_venue, ids, cfg.ws_base.as_deref())
        };
        let stats = Arc::new(FeedStats::default());
        let (tx, stop, venue) = (tx.clone(), shutdown.clone(), cfg.venue.clone());
        feeds.push(rt.spawn(async move {
            argus_feeds::venue::run(feed, tx, stats, stop).await.map_err(|e| format!("{venue}: {e}"))
        }));
    }
    for (i, s) in symbols.iter().enumerate().filter(|_| binance) {
        let id = InstrumentId(i as u32);
        let (ws, rest) = match (&cfg.ws_base, &cfg.rest_base, usdm) {
            (Some(w), Some(r), _) => (w.clone(), r.clone()),
            (_, _, false) => (binance::client::SPOT_WS_BASE.to_owned(), binance::client::SPOT_REST_BASE.to_owned()),
            (_, _, true) => (binance::client::USDM_WS_BASE.to_owned(), binance::client::USDM_REST_BASE.to_owned()),
        };
        let mut feed =
            if usdm { BinanceFeedConfig::usdm(s, id, &ws, &rest) } else { BinanceFeedConfig::spot(s, id, &ws, &rest) };
        feed.end_on_close = cfg.end_on_close;
        feed.raw_tap.clone_from(&raw_tap);
        let stats = Arc::new(FeedStats::default());
        let tx = tx.clone();
        let stop = shutdown.clone();
        let sym = s.clone();
        feeds.push(rt.spawn(async move {
            let r = binance::run(feed, tx, stats, stop).await;
            r.map_err(|e| format!("{sym}: {e}"))
        }));
    }
    drop(tx);
    drop(raw_tap);
    info!(venue = venue_name, symbols = ?symbols, out = %cfg.out.display(), "recording");
    let mut feed_errors = Vec::new();
    for f in feeds {
        match rt.block_on(f) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "feed ended with an error");
                feed_errors.push(e);
            }
            Err(e) => feed_errors.push(format!("feed task: {e}")),
        }
    }
    let (events, lost, error, parts) = sink.join().map_err(|_| anyhow::anyhow!("record writer panicked"))?;
    let raw = match raw_sink {
        Some(s) => Some(s.join().map_err(|_| anyhow::anyhow!("raw frame writer panicked"))?),
        None => None,
    };
    let mut rows = std::collections::BTreeMap::new();
    for t in Table::ALL {
        let n: u64 = parts.iter().filter(|p| p.table == t).map(|p| p.rows).sum();
        if n > 0 {
            rows.insert(t.as_str(), n);
        }
    }
    let summary = RecordSummary {
        venue: cfg.venue.clone(),
        symbols,
        events,
        rows,
        files: parts.iter().map(|p| p.path.display().to_string()).collect(),
        lost,
        error,
        feed_errors,
        raw,
    };
    Ok(summary)
}

/// The raw frame writer: a thread draining the feeds' tap into `<out>/raw/`. A frame it cannot
/// write is counted (with the first error) and the rest still go to disk.
fn raw_sink(
    out: &std::path::Path,
    venue: &str,
    rotation: Rotation,
) -> Result<(argus_feeds::tap::RawTap, std::thread::JoinHandle<RawSummary>)> {
    let mut writer = argus_backtest::raw::RawWriter::new(out, venue, rotation)
        .with_context(|| format!("creating {}/raw", out.display()))?;
    let (tap, frames) = crossbeam_channel::bounded::<argus_feeds::tap::RawFrame>(1 << 16);
    let sink = std::thread::Builder::new().name("argus-record-raw".into()).spawn(move || {
        let mut s = RawSummary::default();
        for f in frames.iter() {
            match writer.write(f.ts_recv.0, f.text.as_str()) {
                Ok(()) => s.frames += 1,
                Err(e) => {
                    s.lost += 1;
                    s.error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        match writer.finish() {
            Ok(files) => s.files = files.iter().map(|f| f.path.display().to_string()).collect(),
            Err(e) => {
                s.error.get_or_insert_with(|| e.to_string());
            }
        }
        s
    })?;
    Ok((tap, sink))
}
