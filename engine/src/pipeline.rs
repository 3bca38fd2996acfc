//! Wiring: feed task(s) on a tokio runtime -> bounded crossbeam queue -> hot thread, metrics
//! endpoint beside them, report at the end. Demo and live differ only in the base URLs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use argus_backtest::sim::{SimConfig, SimExchange};
use argus_core::{InstrumentSpec, InstrumentTable, MarketEvent, Reject, Venue};
use argus_core::{ScoreError, Scorer};
use argus_feeds::binance::{self, BinanceFeedConfig};
use argus_feeds::check::CheckVenue;
use argus_feeds::venue::VenueFeedConfig;
use argus_feeds::FeedStats;
use argus_models::batch::{BatchConfig, BatchInference, BatchedScorer};
use argus_models::market::{MarketModelPaths, MarketScorer};
use argus_models::mlp::{device_name, parse_device};
use argus_risk::{RiskChain, RiskConfig};
use argus_strategies::{AnyStrategy, Scripted, ScriptedOrder, SignalTaker, SignalTakerConfig};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::audit::Audit;
use crate::control;
use crate::hot::{HotCounters, HotThread};
use crate::latency::StageLatencies;
use crate::metrics::{self, Metrics};
use crate::recorder::Recorder;
use crate::report::{FeedReport, Frames, ModelReport, QueueReport, Report, VenueReport, WatchedReport};
use crate::spin::SpinRecv;

/// One feed of a live run: a venue and the symbols to subscribe there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPlan {
    pub venue: CheckVenue,
    /// Symbols as the venue writes them (`BTCUSDT`, `BTC-USDT`, `BTC-USD`, `BTC/USD`).
    pub symbols: Vec<String>,
    /// Websocket URL (Binance: the base URL); the venue's public endpoint when `None`.
    pub url: Option<String>,
    /// Binance: the REST base URL for depth snapshots; the venue's own when `None`.
    pub rest_url: Option<String>,
    /// End this feed when the server closes the stream (replays) instead of reconnecting.
    pub end_on_close: bool,
    /// A symbol without market data this long on a live connection is stale (the feed
    /// reconnects); `None` keeps the feed's default (60 s), zero turns the check off.
    pub stale_after: Option<Duration>,
}

impl FeedPlan {
    /// One Binance spot symbol against the given endpoints (demo, `live` without `--config`).
    pub fn binance_spot(symbol: &str, ws_base: String, rest_base: String) -> Self {
        Self {
            venue: CheckVenue::BinanceSpot,
            symbols: vec![symbol.to_ascii_uppercase()],
            url: Some(ws_base),
            rest_url: Some(rest_base),
            end_on_close: false,
            stale_after: None,
        }
    }
}

/// `argus live --config FILE`: the venues and symbols to subscribe, and what to trade.
///
/// ```toml
/// trade = "binance-spot:BTCUSDT"   # optional; the first feed's first symbol otherwise
///
/// [[feed]]
/// venue = "binance-spot"           # binance-spot | binance-usdm | coinbase | kraken | bybit | okx
/// symbols = ["BTCUSDT"]
///
/// [[feed]]
/// venue = "okx"
/// symbols = ["BTC-USDT", "ETH-USDT"]
/// url = "wss://ws.okx.com:8443/ws/v5/public"   # optional: the venue's public endpoint
///
/// [[instrument]]                   # optional: trading rules risk checks orders against
/// venue = "okx"                    # (the venue's REST API's otherwise)
/// symbol = "BTC-USDT"
/// tick = "0.1"                     # price increment
/// lot = "0.00000001"               # quantity increment
/// min_qty = "0.00001"              # optional: one lot
/// max_qty = "10000"                # optional: no bound
/// min_notional = "0"               # optional: none
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveFile {
    pub trade: Option<String>,
    #[serde(rename = "feed")]
    pub feeds: Vec<LiveFeedEntry>,
    #[serde(rename = "instrument", default)]
    pub instruments: Vec<LiveInstrumentEntry>,
}

/// `[[instrument]]`: an instrument's trading rules, as decimal strings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveInstrumentEntry {
    pub venue: String,
    pub symbol: String,
    pub tick: String,
    pub lot: String,
    pub min_qty: Option<String>,
    pub max_qty: Option<String>,
    pub min_notional: Option<String>,
}

impl LiveInstrumentEntry {
    /// The rules, checked: tick and lot positive, bounds positive and ordered.
    fn spec(&self) -> Result<InstrumentSpec> {
        let name = format!("[[instrument]] {}:{}", self.venue, self.symbol);
        let dec = |field: &str, v: &str| -> Result<i64> {
            let u = argus_core::parse_fixed(v.as_bytes()).map_err(|e| anyhow::anyhow!("{name}: {field} `{v}`: {e}"))?;
            anyhow::ensure!(u > 0 || (field == "min_notional" && u == 0), "{name}: {field} must be > 0, got `{v}`");
            Ok(u)
        };
        let tick = dec("tick", &self.tick)?;
        let lot = dec("lot", &self.lot)?;
        let min_qty = self.min_qty.as_deref().map(|v| dec("min_qty", v)).transpose()?.unwrap_or(lot);
        let max_qty = self.max_qty.as_deref().map(|v| dec("max_qty", v)).transpose()?;
        anyhow::ensure!(max_qty.is_none_or(|m| m >= min_qty), "{name}: max_qty is below min_qty");
        let min_notional = self.min_notional.as_deref().map(|v| dec("min_notional", v)).transpose()?;
        Ok(argus_feeds::rules::spec(tick, lot, Some(min_qty), max_qty, min_notional, true))
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveFeedEntry {
    pub venue: String,
    pub symbols: Vec<String>,
    pub url: Option<String>,
    /// The venue's REST base: Binance's depth snapshots and trading rules, the other venues'
    /// trading rules.
    pub rest_url: Option<String>,
    /// End the feed when the server closes the stream (replays) instead of reconnecting.
    #[serde(default)]
    pub end_on_close: bool,
    /// Seconds without market data for a symbol on a live connection before the feed calls it
    /// stale and reconnects (default 60; 0 turns the check off).
    pub stale_after_s: Option<f64>,
}

impl LiveFile {
    /// Parses and checks a live configuration: known venues, symbols given once, the traded
    /// instrument among them.
    ///
    /// # Errors
    /// Malformed TOML, unknown keys or venues, empty or repeated symbols, a `trade` not subscribed.
    pub fn parse(text: &str) -> Result<LivePlan> {
        let file: LiveFile = toml::from_str(text)?;
        anyhow::ensure!(!file.feeds.is_empty(), "no [[feed]] configured");
        let venue = |name: &str| {
            CheckVenue::parse(name)
                .with_context(|| format!("unknown venue `{name}` (one of {})", CheckVenue::NAMES.join(", ")))
        };
        let mut plans: Vec<FeedPlan> = Vec::new();
        for f in file.feeds {
            let v = venue(&f.venue)?;
            anyhow::ensure!(!f.symbols.is_empty(), "feed `{}` has no symbols", f.venue);
            for (i, s) in f.symbols.iter().enumerate() {
                let same = |x: &String| x.eq_ignore_ascii_case(s);
                let seen =
                    f.symbols[..i].iter().any(same) || plans.iter().any(|p| p.venue == v && p.symbols.iter().any(same));
                anyhow::ensure!(!seen, "{}:{s} is configured twice", f.venue);
            }
            let stale_after = match f.stale_after_s {
                None => None,
                Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
                Some(s) => anyhow::bail!("feed `{}`: stale_after_s must be a number of seconds >= 0, got {s}", f.venue),
            };
            plans.push(FeedPlan {
                venue: v,
                symbols: f.symbols,
                url: f.url,
                rest_url: f.rest_url,
                end_on_close: f.end_on_close,
                stale_after,
            });
        }
        let mut rules: Vec<(CheckVenue, String, InstrumentSpec)> = Vec::new();
        for i in &file.instruments {
            let v = venue(&i.venue)?;
            anyhow::ensure!(
                plans.iter().any(|p| p.venue == v && p.symbols.iter().any(|x| x.eq_ignore_ascii_case(&i.symbol))),
                "[[instrument]] {}:{} is not among the feeds' symbols",
                i.venue,
                i.symbol
            );
            anyhow::ensure!(
                !rules.iter().any(|(rv, rs, _)| *rv == v && rs.eq_ignore_ascii_case(&i.symbol)),
                "[[instrument]] {}:{} is configured twice",
                i.venue,
                i.symbol
            );
            rules.push((v, i.symbol.clone(), i.spec()?));
        }
        let trade = match file.trade {
            None => None,
            Some(t) => {
                let (v, s) = t.split_once(':').with_context(|| format!("trade `{t}`: expected `venue:symbol`"))?;
                let v = venue(v)?;
                anyhow::ensure!(
                    plans.iter().any(|p| p.venue == v && p.symbols.iter().any(|x| x.eq_ignore_ascii_case(s))),
                    "trade `{t}` is not among the feeds' symbols"
                );
                Some((v, s.to_owned()))
            }
        };
        Ok(LivePlan { feeds: plans, trade, rules })
    }
}

/// What a live run subscribes and trades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePlan {
    pub feeds: Vec<FeedPlan>,
    /// Venue and symbol of the traded instrument; the first feed's first symbol when `None`.
    pub trade: Option<(CheckVenue, String)>,
    /// Trading rules given in the configuration (`[[instrument]]`), by venue and symbol.
    pub rules: Vec<(CheckVenue, String, InstrumentSpec)>,
}

/// The core venue of a feed venue.
pub const fn core_venue(v: CheckVenue) -> Venue {
    match v {
        CheckVenue::BinanceSpot => Venue::BinanceSpot,
        CheckVenue::BinanceUsdm => Venue::BinanceUsdm,
        CheckVenue::Bybit => Venue::Bybit,
        CheckVenue::Coinbase => Venue::Coinbase,
        CheckVenue::Kraken => Venue::Kraken,
        CheckVenue::Okx => Venue::Okx,
    }
}

/// The feed venue of a core venue (`None` for the simulated one).
pub const fn feed_venue(v: Venue) -> Option<CheckVenue> {
    Some(match v {
        Venue::BinanceSpot => CheckVenue::BinanceSpot,
        Venue::BinanceUsdm => CheckVenue::BinanceUsdm,
        Venue::Bybit => CheckVenue::Bybit,
        Venue::Coinbase => CheckVenue::Coinbase,
        Venue::Kraken => CheckVenue::Kraken,
        Venue::Okx => CheckVenue::Okx,
        Venue::Sim => return None,
    })
}

/// Everything a pipeline run needs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// What to subscribe: every event of every feed goes through the one hot thread.
    pub feeds: Vec<FeedPlan>,
    /// The instrument the strategy trades (venue and symbol); the first feed's first symbol
    /// when `None`. Every other instrument is watched: its book is kept and reported.
    pub trade: Option<(CheckVenue, String)>,
    /// Trading rules from the configuration; they win over the venue's and the built-in ones.
    pub rules: Vec<(CheckVenue, String, InstrumentSpec)>,
    pub models: MarketModelPaths,
    pub device: String,
    /// Run the models in fp16 (CUDA only).
    pub half: bool,
    pub inference: Inference,
    pub metrics_addr: Option<SocketAddr>,
    pub queue_capacity: usize,
    pub queue_policy: argus_feeds::binance::QueuePolicy,
    pub book_levels: usize,
    pub strategy: SignalTakerConfig,
    pub risk: RiskConfig,
    /// The simulated exchange paper orders go to.
    pub sim: SimConfig,
    pub reconnect: bool,
    /// Record every event the hot thread consumes to this Parquet tape.
    pub record: Option<PathBuf>,
    /// Polls of an empty queue before the hot thread parks (0 = park at once).
    pub spin_polls: u32,
    /// Audit log of every risk decision (`.jsonl` or `.parquet`).
    pub audit: Option<crate::audit::AuditTarget>,
    /// Risk control endpoint; served only when a token is set.
    pub control_addr: Option<SocketAddr>,
    pub control_token: Option<String>,
}

/// What the hot thread is built from; shared by live runs and backtests.
#[derive(Debug, Clone)]
pub struct HotSetup {
    pub models: MarketModelPaths,
    pub device: String,
    pub half: bool,
    pub inference: Inference,
    pub book_levels: usize,
    pub strategy: StrategySetup,
    pub risk: RiskConfig,
    pub sim: SimConfig,
    /// Keep a [`crate::journal::Journal`] sampling equity this often (backtest reports).
    pub journal_every_ns: Option<u64>,
    /// Audit log for backtests (live runs start theirs in `run`).
    pub audit: Option<crate::audit::AuditTarget>,
}

/// Which strategy a hot thread runs, with its parameters.
#[derive(Debug, Clone)]
pub enum StrategySetup {
    SignalTaker(SignalTakerConfig),
    /// Orders from a script (`argus backtest --strategy scripted --script FILE`).
    Scripted {
        orders: Vec<ScriptedOrder>,
        market_slippage_bps: i64,
    },
}

impl StrategySetup {
    pub fn build(&self) -> AnyStrategy {
        match self {
            StrategySetup::SignalTaker(c) => AnyStrategy::SignalTaker(SignalTaker::new(*c)),
            StrategySetup::Scripted { orders, market_slippage_bps } => {
                AnyStrategy::Scripted(Scripted::new(orders.clone(), *market_slippage_bps, argus_core::StrategyId(0)))
            }
        }
    }
}

/// How the hot thread gets its scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inference {
    /// Batch 1 on the hot thread itself: every trade scored before its decision (deterministic;
    /// what backtests use).
    #[default]
    Inline,
    /// On an inference thread that micro-batches; decisions use the newest result back.
    Batched(BatchConfig),
}

/// The scorer a hot thread runs: inline models or the inference thread.
// The inline scorer's buffers live in the hot thread itself: no pointer to chase per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyScorer {
    Inline(MarketScorer),
    Batched(BatchedScorer),
}

impl Scorer for AnyScorer {
    #[inline]
    fn score(&mut self, features: &[f32], out: &mut [f32]) -> Result<(), ScoreError> {
        match self {
            AnyScorer::Inline(s) => s.score(features, out),
            AnyScorer::Batched(s) => s.score(features, out),
        }
    }
}

/// The smallest `--batch-max` whose inference thread `--device auto` puts on a GPU.
pub const AUTO_GPU_MIN_BATCH: usize = 4096;

/// Whether `--device auto` keeps the hot thread's models on the CPU even with a GPU there.
/// Measured on an H200 machine (BENCHMARKS.md, twenty-first session): one row inline costs
/// ~70-150 us through the GPU against 6-8 us on the CPU, and the inference thread under
/// saturation is faster on the CPU at 256 and 1,024-row batches (alpha 3.2 and 4.9 M/s against
/// 1.6 and 3.4) and on the GPU from 4,096 (4.7-6.1 against 2.2-3.1). fp16 needs the GPU.
pub fn auto_prefers_cpu(inference: Inference, half: bool) -> bool {
    !half
        && match inference {
            Inference::Inline => true,
            Inference::Batched(b) => b.max_batch < AUTO_GPU_MIN_BATCH,
        }
}

/// Whether the alpha model's card names a GPU as its `preferred_device` (a model its author
/// measured faster there overrides [`auto_prefers_cpu`]). A bare TorchScript file has no card;
/// a card that cannot be read prefers nothing here, and loading the model reports why.
pub fn card_prefers_gpu(model: &std::path::Path) -> bool {
    !argus_models::script::is_torchscript(model)
        && argus_models::card::ModelCard::load(model).is_ok_and(|c| c.preferred_device.starts_with("cuda"))
}

/// A hot thread wired with the real models, strategy, risk chain and simulated exchange.
pub type Hot = HotThread<AnyScorer, AnyStrategy>;

impl HotSetup {
    /// Loads the model and builds the hot thread; logs the device in use.
    ///
    /// # Errors
    /// Unknown device, bad model directory or invalid risk limits.
    pub fn build(
        &self,
        instrument: argus_core::InstrumentId,
        venue: Venue,
        spec: InstrumentSpec,
        live_clock: bool,
    ) -> Result<(Hot, ModelReport)> {
        let device = if self.device == "auto"
            && auto_prefers_cpu(self.inference, self.half)
            && !card_prefers_gpu(&self.models.alpha)
        {
            tch::Device::Cpu
        } else {
            parse_device(&self.device)?
        };
        let m = &self.models;
        let loaded = MarketScorer::load(m, device, self.half).with_context(|| {
            format!(
                "loading models {}{}",
                m.alpha.display(),
                m.anomaly.as_ref().map(|a| format!(" and {}", a.display())).unwrap_or_default()
            )
        })?;
        let name = loaded.alpha.card().name.clone();
        let anomaly = loaded.anomaly.as_ref().map(|a| a.card().name.clone());
        info!(device = %device_name(device), alpha = %name, anomaly = ?anomaly, "models loaded");
        let (scorer, inference) = match self.inference {
            Inference::Inline => (AnyScorer::Inline(loaded), "inline".to_owned()),
            Inference::Batched(b) => {
                drop(loaded);
                let inf = BatchInference::spawn(m.clone(), device, self.half, b)?;
                let how = format!("batched (max {} rows, {} us)", b.max_batch, b.max_wait.as_micros());
                (AnyScorer::Batched(BatchedScorer::new(inf)), how)
            }
        };
        let model = ModelReport {
            name,
            anomaly,
            device: device_name(device),
            half: self.half,
            inference,
            scores: 0,
            errors: 0,
            dropped: 0,
        };
        let mut hot = HotThread::new(
            instrument,
            self.book_levels,
            scorer,
            self.strategy.build(),
            // One hot thread trades one instrument.
            RiskChain::new(self.risk)?.with_instrument(instrument, venue),
            SimExchange::new(self.sim),
            StageLatencies::new()?,
            live_clock,
        );
        hot.market.spec = Some(spec);
        hot.journal = self.journal_every_ns.map(|every| Box::new(crate::journal::Journal::new(every)));
        Ok((hot, model))
    }
}

impl PipelineConfig {
    pub fn hot_setup(&self) -> HotSetup {
        HotSetup {
            models: self.models.clone(),
            device: self.device.clone(),
            half: self.half,
            inference: self.inference,
            book_levels: self.book_levels,
            strategy: StrategySetup::SignalTaker(self.strategy),
            risk: self.risk,
            sim: self.sim,
            journal_every_ns: None,
            audit: self.audit.clone(),
        }
    }
}

/// Rules of an instrument argus has no venue metadata for: risk rejects its orders.
pub fn untradable() -> InstrumentSpec {
    InstrumentSpec { tradable: false, ..InstrumentSpec::UNCONSTRAINED }
}

/// Trading rules for a Binance spot symbol. Only BTCUSDT's are built in; any other symbol gets a
/// non-tradable spec, so risk rejects its orders until real venue metadata is loaded.
pub fn spot_spec(symbol: &str) -> InstrumentSpec {
    if symbol.eq_ignore_ascii_case("BTCUSDT") {
        InstrumentSpec::BINANCE_SPOT_BTCUSDT
    } else {
        untradable()
    }
}

/// `[[instrument]]` tables alone: a backtest's `--rules` file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(rename = "instrument")]
    instruments: Vec<LiveInstrumentEntry>,
}

/// The trading rules of `symbol` on `venue` from a file: the venue's own REST reply (JSON, as
/// a live run reads it: Binance `exchangeInfo`, OKX instruments, Bybit instruments-info,
/// Coinbase product, Kraken AssetPairs) or TOML `[[instrument]]` tables as in a live
/// configuration (`venue` spelled either way, `binance-spot` or `binance_spot`).
///
/// # Errors
/// Unreadable or malformed files, bad rules, or no rules for the instrument in the file.
pub fn rules_from_file(path: &std::path::Path, venue: Venue, symbol: &str) -> Result<InstrumentSpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim_start().starts_with('{') {
        let feed =
            feed_venue(venue).with_context(|| format!("{}: no REST rules format for {venue}", path.display()))?;
        return argus_feeds::rules::parse_rules(feed, text.as_bytes(), symbol)
            .with_context(|| format!("{}: {venue} rules for {symbol}", path.display()));
    }
    let file: RulesFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let entry = file
        .instruments
        .iter()
        .find(|i| {
            i.venue.replace('-', "_").eq_ignore_ascii_case(venue.as_str()) && i.symbol.eq_ignore_ascii_case(symbol)
        })
        .with_context(|| format!("{}: no [[instrument]] for {venue}:{symbol}", path.display()))?;
    entry.spec()
}

/// How long a live run waits for the venue's trading rules at start-up.
const RULES_TIMEOUT: Duration = Duration::from_secs(10);

/// The traded instrument's trading rules and where they came from (`risk.rules.source` in the
/// report): the configuration's `[[instrument]]` (`config`), else the venue's own (`venue`:
/// read once at start-up from its public REST API, `argus_feeds::rules`), else
/// built in (`built-in`: Binance spot BTCUSDT), else none (`none`: not tradable, risk rejects
/// every order). A venue that does not answer is logged and the next source used: the run
/// keeps its market data either way.
fn traded_rules(rt: &Runtime, cfg: &PipelineConfig, traded: &argus_core::Instrument) -> (InstrumentSpec, &'static str) {
    if let Some(plan) = cfg.feeds.iter().find(|p| core_venue(p.venue) == traded.venue) {
        let configured = cfg.rules.iter().find(|(v, s, _)| *v == plan.venue && s.eq_ignore_ascii_case(&traded.symbol));
        if let Some((_, _, spec)) = configured {
            return (*spec, "config");
        }
        let fetch = argus_feeds::rules::fetch_venue_rules(
            plan.venue,
            plan.rest_url.as_deref(),
            plan.url.as_deref(),
            &traded.symbol,
            RULES_TIMEOUT,
        );
        match rt.block_on(fetch) {
            Ok((_, spec)) => {
                info!(symbol = %traded.symbol, tick = %spec.tick, lot = %spec.lot, tradable = spec.tradable, "trading rules from the venue");
                return (spec, "venue");
            }
            Err(error) => warn!(%error, symbol = %traded.symbol, "no trading rules from the venue"),
        }
    }
    (traded.spec, if traded.spec.tradable { "built-in" } else { "none" })
}

/// Events the hot thread publishes metrics after.
const PUBLISH_EVERY: u64 = 1024;

/// Runs the pipeline until the feed ends or `shutdown` turns true.
///
/// # Errors
/// Model, metrics or configuration failures; a feed that fails terminally.
pub fn run(rt: &Runtime, cfg: &PipelineConfig, shutdown: watch::Receiver<bool>) -> Result<Report> {
    let mut instruments = InstrumentTable::default();
    let mut ids: Vec<Vec<argus_core::InstrumentId>> = Vec::with_capacity(cfg.feeds.len());
    for plan in &cfg.feeds {
        anyhow::ensure!(!plan.symbols.is_empty(), "feed {} has no symbols", plan.venue.as_str());
        let venue = core_venue(plan.venue);
        ids.push(
            plan.symbols
                .iter()
                .map(|s| {
                    // Display precision: venues print at most 8 decimals for these markets.
                    let spec = if venue == Venue::BinanceSpot { spot_spec(s) } else { untradable() };
                    instruments.add(venue, s, 8, 8, spec)
                })
                .collect(),
        );
    }
    let instrument = match &cfg.trade {
        Some((v, s)) => instruments
            .find(core_venue(*v), s)
            .map(|i| i.id)
            .with_context(|| format!("the traded instrument {}:{s} is not among the feeds", v.as_str()))?,
        None => *ids.first().and_then(|i| i.first()).context("no feeds configured")?,
    };
    let traded = instruments.get(instrument).context("instrument table")?.clone();
    let (spec, rules_source) = traded_rules(rt, cfg, &traded);
    let (mut hot, mut model) = cfg.hot_setup().build(instrument, traded.venue, spec, true)?;
    hot.watch(ids.iter().flatten().copied(), cfg.book_levels);
    let recorder = cfg.record.as_deref().map(Recorder::start).transpose()?;
    let audit = cfg.audit.as_ref().map(Audit::start).transpose()?;
    hot.audit = audit.as_ref().map(Audit::sink);
    let metrics = Metrics::new()?;
    let _metrics_server = match cfg.metrics_addr {
        Some(addr) => {
            let (bound, handle) = rt
                .block_on(metrics::serve(addr, metrics.registry.clone()))
                .with_context(|| format!("binding metrics on {addr}"))?;
            info!(addr = %bound, "serving /metrics");
            Some(handle)
        }
        None => None,
    };

    let switch = hot.risk.switch().clone();
    let _control = match (cfg.control_addr, &cfg.control_token) {
        (Some(addr), Some(token)) => {
            let (bound, handle) = rt
                .block_on(control::serve(addr, token.clone(), switch.clone()))
                .with_context(|| format!("binding control endpoint on {addr}"))?;
            info!(addr = %bound, "serving /risk control endpoint");
            Some(handle)
        }
        (Some(_), None) => {
            warn!("risk control endpoint disabled: set {} to enable it", control::TOKEN_ENV);
            None
        }
        (None, _) => None,
    };
    halt_on_sigusr1(rt, switch);

    let (tx, rx) = crossbeam_channel::bounded::<MarketEvent>(cfg.queue_capacity);
    // One set of counters per venue, shared by that venue's connections.
    let mut venue_stats: Vec<(String, Arc<FeedStats>)> = Vec::new();
    for plan in &cfg.feeds {
        let label = core_venue(plan.venue).as_str().to_owned();
        if !venue_stats.iter().any(|(v, _)| *v == label) {
            venue_stats.push((label, Arc::new(FeedStats::default())));
        }
    }
    metrics.registry.register(Box::new(metrics::VenueCollector::new(venue_stats.clone())?))?;
    let hot_stats: Vec<Arc<FeedStats>> = venue_stats.iter().map(|(_, s)| Arc::clone(s)).collect();
    let hot_metrics = metrics.clone();
    let rec_tx = recorder.as_ref().map(Recorder::sender);
    let cfg_spins = cfg.spin_polls;
    let started = Instant::now();
    let hot_thread = std::thread::Builder::new().name("argus-hot".into()).spawn(move || {
        let depth = rx.clone();
        let mut publisher = Publisher::default();
        // Tee to the recorder: a blocking send, so a slow disk slows us down but loses nothing.
        let source = SpinRecv::new(&rx, cfg_spins).inspect(|ev| {
            if let Some(tx) = &rec_tx {
                let _ = tx.send(*ev);
            }
        });
        hot.run(source, PUBLISH_EVERY, |h| publisher.publish(h, &hot_metrics, &hot_stats, depth.len()));
        drop(rec_tx);
        hot
    })?;

    let mut feeds = Vec::new();
    for (plan, ids) in cfg.feeds.iter().zip(&ids) {
        let label = core_venue(plan.venue).as_str();
        let stats = venue_stats.iter().find(|(v, _)| v == label).map(|(_, s)| Arc::clone(s)).context("venue stats")?;
        match plan.venue {
            CheckVenue::BinanceSpot | CheckVenue::BinanceUsdm => {
                let usdm = plan.venue == CheckVenue::BinanceUsdm;
                let ws = plan.url.as_deref().unwrap_or(if usdm {
                    binance::client::USDM_WS_BASE
                } else {
                    binance::client::SPOT_WS_BASE
                });
                let rest = plan.rest_url.as_deref().unwrap_or(if usdm {
                    binance::client::USDM_REST_BASE
                } else {
                    binance::client::SPOT_REST_BASE
                });
                // Binance streams one symbol per connection here (its own sync per book).
                for (symbol, id) in plan.symbols.iter().zip(ids) {
                    let base = if usdm {
                        BinanceFeedConfig::usdm(symbol, *id, ws, rest)
                    } else {
                        BinanceFeedConfig::spot(symbol, *id, ws, rest)
                    };
                    let feed_cfg = BinanceFeedConfig {
                        reconnect: cfg.reconnect,
                        end_on_close: plan.end_on_close,
                        queue_policy: cfg.queue_policy,
                        stale_after: plan.stale_after.unwrap_or(base.stale_after),
                        ..base
                    };
                    let task = binance::run(feed_cfg, tx.clone(), Arc::clone(&stats), shutdown.clone());
                    feeds.push((label, rt.spawn(task)));
                }
            }
            venue => {
                let symbols = plan.symbols.iter().cloned().zip(ids.iter().copied()).collect();
                let base = VenueFeedConfig::new(venue, symbols, plan.url.as_deref());
                let feed_cfg = VenueFeedConfig {
                    reconnect: cfg.reconnect,
                    end_on_close: plan.end_on_close,
                    queue_policy: cfg.queue_policy,
                    stale_after: plan.stale_after.unwrap_or(base.stale_after),
                    ..base
                };
                feeds.push((
                    label,
                    rt.spawn(argus_feeds::venue::run(feed_cfg, tx.clone(), Arc::clone(&stats), shutdown.clone())),
                ));
            }
        }
    }
    // The hot thread ends when every feed has ended and dropped its sender.
    drop(tx);
    for (venue, task) in feeds {
        match rt.block_on(task) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(venue, %error, "feed ended with an error"),
            Err(error) => warn!(venue, %error, "feed task failed"),
        }
    }
    let mut hot = hot_thread.join().map_err(|_| anyhow::anyhow!("hot thread panicked"))?;
    let wall = started.elapsed().as_secs_f64();
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let sum = |f: fn(&FeedStats) -> &std::sync::atomic::AtomicU64| -> u64 {
        venue_stats.iter().map(|(_, s)| get(f(s))).sum()
    };
    let frames = Frames {
        trade: sum(|s| &s.frames_trade),
        depth: sum(|s| &s.frames_depth),
        book_ticker: sum(|s| &s.frames_book_ticker),
        snapshot: sum(|s| &s.snapshots),
        ignored: sum(|s| &s.frames_ignored),
        malformed: sum(|s| &s.malformed),
    };
    model.scores = hot.counters.scores;
    model.errors = hot.counters.model_errors;
    if let AnyScorer::Batched(b) = &hot.scorer {
        model.dropped = b.dropped;
    }
    // `dropped`: what `--queue-policy drop` dropped, plus what was sent and never consumed
    // (zero unless the hot thread died).
    let sent = sum(|s| &s.events_sent);
    let queue = QueueReport {
        capacity: cfg.queue_capacity,
        policy: match cfg.queue_policy {
            argus_feeds::binance::QueuePolicy::Block => "block",
            argus_feeds::binance::QueuePolicy::Drop => "drop",
        },
        full_waits: sum(|s| &s.queue_full),
        dropped: sum(|s| &s.dropped) + sent.saturating_sub(hot.counters.events),
    };
    let feed = FeedReport {
        disconnects: sum(|s| &s.disconnects),
        reconnects: sum(|s| &s.reconnects),
        gaps: sum(|s| &s.gaps),
        stale_diffs: sum(|s| &s.stale_diffs),
        snapshot_failures: sum(|s| &s.snapshot_failures),
    };
    let mut report = Report::build(&hot, &traded, frames, model, queue, feed, wall);
    report.risk.rules.source = rules_source;
    report.venues = venue_stats.iter().map(|(v, s)| (v.clone(), VenueReport::of(s))).collect();
    for (i, w) in hot.watched.iter().enumerate() {
        let (Some(w), Some(inst)) = (w, instruments.get(argus_core::InstrumentId(i as u32))) else { continue };
        report.watched.insert(format!("{}:{}", inst.venue.as_str(), inst.symbol), WatchedReport::of(w, inst));
    }
    report.recording = recorder.map(Recorder::finish);
    // The hot thread's sink must go before the writer can see the end of its queue.
    hot.audit = None;
    report.audit = audit.map(Audit::finish);
    Ok(report)
}

/// SIGUSR1 halts trading (the operator's panic button, no token needed: it takes local access).
fn halt_on_sigusr1(rt: &Runtime, switch: argus_risk::KillSwitch) {
    rt.spawn(async move {
        let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()) else {
            warn!("cannot install the SIGUSR1 handler");
            return;
        };
        while sig.recv().await.is_some() {
            let prev = switch.set(argus_risk::RiskState::Halted);
            warn!(from = prev.as_str(), "SIGUSR1: trading halted");
        }
    });
}

/// Turns local hot-thread counts into Prometheus updates, once per batch.
#[derive(Debug, Default)]
struct Publisher {
    hot: HotCounters,
    feed: [u64; 9],
}

impl Publisher {
    fn publish<Sc, St>(&mut self, h: &HotThread<Sc, St>, m: &Metrics, feeds: &[Arc<FeedStats>], queue_depth: usize) {
        let c = h.counters;
        let delta = |now: u64, last: u64| now.saturating_sub(last);
        m.book_updates.inc_by(delta(c.deltas, self.hot.deltas));
        m.model_scores.inc_by(delta(c.scores, self.hot.scores));
        m.model_errors.inc_by(delta(c.model_errors, self.hot.model_errors));
        m.fills.inc_by(delta(c.fills, self.hot.fills));
        m.orders.with_label_values(&["approved"]).inc_by(delta(c.approved, self.hot.approved));
        for r in Reject::ALL {
            m.orders
                .with_label_values(&[r.as_str()])
                .inc_by(delta(c.rejected[r.index()], self.hot.rejected[r.index()]));
        }
        self.hot = c;
        // All venues together; per-venue figures come from the VenueCollector at scrape time.
        let sum = |f: fn(&FeedStats) -> &std::sync::atomic::AtomicU64| -> u64 {
            feeds.iter().map(|s| FeedStats::get(f(s))).sum()
        };
        let f = [
            sum(|s| &s.frames_trade),
            sum(|s| &s.frames_depth),
            sum(|s| &s.frames_book_ticker),
            sum(|s| &s.malformed),
            sum(|s| &s.disconnects),
            sum(|s| &s.gaps),
            sum(|s| &s.snapshots),
            sum(|s| &s.queue_full),
            sum(|s| &s.dropped),
        ];
        m.frames.with_label_values(&["trade"]).inc_by(delta(f[0], self.feed[0]));
        m.frames.with_label_values(&["depth"]).inc_by(delta(f[1], self.feed[1]));
        m.frames.with_label_values(&["book_ticker"]).inc_by(delta(f[2], self.feed[2]));
        m.malformed.inc_by(delta(f[3], self.feed[3]));
        m.disconnects.inc_by(delta(f[4], self.feed[4]));
        m.gaps.inc_by(delta(f[5], self.feed[5]));
        m.snapshots.inc_by(delta(f[6], self.feed[6]));
        m.queue_full.inc_by(delta(f[7], self.feed[7]));
        m.queue_dropped.inc_by(delta(f[8], self.feed[8]));
        self.feed = f;
        m.queue_depth.set(queue_depth as i64);
        m.book_levels.with_label_values(&["bid"]).set(h.book.depth(argus_core::Side::Buy) as i64);
        m.book_levels.with_label_values(&["ask"]).set(h.book.depth(argus_core::Side::Sell) as i64);
        m.position.set(h.position.qty.units());
        let mark = h.book.mid_units().unwrap_or(0);
        let clamp = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
        m.pnl.with_label_values(&["realized"]).set(clamp(h.position.realized.0));
        m.pnl.with_label_values(&["unrealized"]).set(clamp(h.position.unrealized(mark).0));
        m.pnl.with_label_values(&["fees"]).set(clamp(h.position.fees.0));
        if let Some(a) = &h.audit {
            m.audit_dropped.inc_by(a.dropped().saturating_sub(m.audit_dropped.get()));
        }
        let switch = h.risk.switch();
        m.risk_state.set(switch.state() as i64);
        m.risk_changes.inc_by(switch.changes().saturating_sub(m.risk_changes.get()));
        let e = h.risk.exposure(None);
        m.risk_exposure.with_label_values(&["gross"]).set(clamp(e.gross));
        m.risk_exposure.with_label_values(&["net"]).set(clamp(e.net));
        let (in_flight, resting) = h.risk.order_counts();
        m.risk_live_orders.with_label_values(&["in_flight"]).set(i64::from(in_flight));
        m.risk_live_orders.with_label_values(&["open"]).set(i64::from(resting));
        if let Ok(mut shared) = m.latency.lock() {
            shared.copy_from_slice(h.latency.buckets());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_keeps_inline_and_small_batches_on_the_cpu() {
        let batched = |max_batch| {
            Inference::Batched(BatchConfig { max_batch, max_wait: Duration::from_micros(200), capacity: 4 * max_batch })
        };
        assert!(auto_prefers_cpu(Inference::Inline, false));
        assert!(auto_prefers_cpu(batched(256), false));
        assert!(auto_prefers_cpu(batched(AUTO_GPU_MIN_BATCH - 1), false));
        assert!(!auto_prefers_cpu(batched(AUTO_GPU_MIN_BATCH), false));
        assert!(!auto_prefers_cpu(batched(65_536), false));
        assert!(!auto_prefers_cpu(Inference::Inline, true), "fp16 needs the GPU");
        assert!(!auto_prefers_cpu(batched(256), true));
    }

    #[test]
    fn a_card_can_prefer_the_gpu() {
        let zoo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/zoo/btcusdt_alpha");
        assert!(!card_prefers_gpu(&zoo), "the shipped alpha model prefers the CPU");
        let dir = std::env::temp_dir().join(format!("argus-prefers-gpu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        for f in std::fs::read_dir(&zoo).expect("zoo").flatten() {
            std::fs::copy(f.path(), dir.join(f.file_name())).expect("copy");
        }
        let card = std::fs::read_to_string(dir.join("model.toml")).expect("card");
        assert!(card.contains("preferred_device = \"cpu\""));
        std::fs::write(
            dir.join("model.toml"),
            card.replace("preferred_device = \"cpu\"", "preferred_device = \"cuda\""),
        )
        .expect("write");
        assert!(card_prefers_gpu(&dir));
        assert!(!card_prefers_gpu(&dir.join("missing")), "no card: no preference");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The shipped example configuration parses as it is, and with its `[[instrument]]` example
    /// uncommented.
    #[test]
    fn the_shipped_live_config_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/live.toml");
        let text = std::fs::read_to_string(path).expect("deploy/live.toml");
        let plan = LiveFile::parse(&text).expect("parses");
        assert_eq!(plan.feeds.len(), 5);
        assert_eq!(plan.trade, Some((CheckVenue::BinanceSpot, "BTCUSDT".to_owned())));
        assert!(plan.rules.is_empty());
        let uncommented: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# [[instrument]]"))
            .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
            .collect();
        let with_rules = format!("{}{uncommented}", text.split("# [[instrument]]").next().unwrap_or(""));
        let plan = LiveFile::parse(&with_rules).expect("parses with [[instrument]]");
        let (venue, symbol, spec) = plan.rules.first().expect("one instrument");
        assert_eq!((*venue, symbol.as_str()), (CheckVenue::Okx, "BTC-USDT"));
        assert_eq!((spec.tick.to_string(), spec.max_qty.to_string()), ("0.1".to_owned(), "10000".to_owned()));
    }
}
