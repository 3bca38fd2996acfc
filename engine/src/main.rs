//! `argus`: low-latency crypto trading and fraud-detection engine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use argus_backtest::sim::{bps_to_ppm, Latency, QueueModel, SimConfig};
use argus_backtest::tape::TapeReader;
use argus_core::InstrumentId;
use argus_engine::pipeline::StrategySetup;
use argus_engine::pipeline::{self, PipelineConfig};
use argus_engine::replay;
use argus_engine::report::Report;
use argus_feeds::offline::BinanceRecording;
use argus_feeds::recording::RecordingReader;
use argus_feeds::replay::{Faults, ReplayServer, Speed};
use argus_models::train::{collect_samples, train, TrainConfig};
use argus_risk::RiskConfig;
use argus_strategies::SignalTakerConfig;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use tokio::sync::watch;
use tracing::info;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bundled data, found from the working directory or the source tree.
const RECORDING: &str = "data/binance_spot/btcusdt_20240808.jsonl.gz";
const EXCHANGE_INFO: &str = "data/binance_spot/exchange_info_btcusdt.json";
const ALPHA_MODEL: &str = "models/zoo/btcusdt_alpha";
const ANOMALY_MODEL: &str = "models/zoo/btcusdt_anomaly";

#[derive(Parser, Debug)]
#[command(name = "argus", version, about = "Low-latency crypto trading and fraud-detection engine")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Replay the bundled recording through an embedded Binance-compatible server and the full
    /// live pipeline: feed -> book -> features -> model -> strategy -> risk -> simulated fills.
    Demo(DemoArgs),
    /// Connect to real venues (Binance spot by default; any of the six with --config) and paper-trade.
    Live(LiveArgs),
    /// Replay history through the same hot thread, without sockets: a Parquet tape recorded
    /// with `--record`, or a raw venue recording.
    Backtest(BacktestArgs),
    /// Switch a running engine's risk state over its control endpoint (token from
    /// ARGUS_CONTROL_TOKEN).
    Risk {
        /// halt, reduce, resume or state.
        action: RiskAction,
        #[arg(long, default_value = "127.0.0.1:9899")]
        control_addr: String,
    },
    /// Watch Ethereum chains for fraud: JSON-RPC websocket feeds -> detectors (label packs, ice
    /// phishing, address poisoning, drainer sweeps, large transfers, mixers, an ML model) ->
    /// explained alerts on stdout (JSON lines), a file, a webhook, and Prometheus.
    Monitor(MonitorArgs),
    /// Ethereum tooling.
    Chain {
        #[command(subcommand)]
        cmd: ChainCmd,
    },
    /// History tooling: import third-party files into the Parquet catalog.
    Data {
        #[command(subcommand)]
        cmd: DataCmd,
    },
    /// Feed tooling.
    Feeds {
        #[command(subcommand)]
        cmd: FeedsCmd,
    },
    /// Model tooling.
    Models {
        #[command(subcommand)]
        cmd: ModelsCmd,
    },
    /// Benchmarks on this machine.
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// Chain monitor throughput on one core: JSON-RPC block + receipts decoded, every detector,
    /// and the model scoring each transaction, over generated mainnet-shaped blocks.
    Chain {
        #[arg(long, default_value_t = 200)]
        blocks: usize,
        /// Transactions per block.
        #[arg(long, default_value_t = 200)]
        txs: usize,
        /// Distinct addresses the traffic is drawn from.
        #[arg(long, default_value_t = 50_000)]
        accounts: u64,
        /// Tabular transaction model ("none" for rules only).
        #[arg(long, default_value = "models/zoo/eth_tx_phishing")]
        model: String,
        /// Tabular address model over the kept profiles ("none" to skip).
        #[arg(long, default_value = "models/zoo/eth_address_fraud")]
        address_model: String,
        /// Runs of each pass (decode, rules, whole); the median and the best are reported.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        #[arg(long)]
        json: bool,
    },
    /// Per-frame cost of a feed path, timed one by one (percentiles). Binance (the default):
    /// each frame of a recording decoded, depth diffs sequenced and applied to the exact book.
    /// `--venue okx|bybit|coinbase|kraken`: each websocket frame of a capture (the bundled one
    /// by default) through the venue's live normalizer and book sync.
    Feeds {
        /// okx, bybit, coinbase or kraken; without it, Binance spot.
        #[arg(long)]
        venue: Option<String>,
        /// The recording (Binance) or capture files (other venues); each has a bundled default.
        #[arg(long = "input")]
        inputs: Vec<PathBuf>,
        #[arg(long, default_value = "BTCUSDT")]
        symbol: String,
        /// Passes over the recording (each from a fresh book).
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        #[arg(long)]
        json: bool,
    },
    /// Replay throughput: stream the catalog in time order into an exact book, no strategy, on
    /// one core; events = book levels + trades + quotes.
    Replay {
        #[arg(long)]
        catalog: PathBuf,
        #[arg(long, default_value = "binance_spot")]
        venue: String,
        #[arg(long, default_value = "BTCUSDT")]
        symbol: String,
        /// Replays to run (each re-reads the files); the best and the median are reported.
        #[arg(long, default_value_t = 10)]
        repeat: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Alpha model: a directory (model.toml + weights) or a TorchScript file over the pipeline's
    /// features [default: models/zoo/btcusdt_alpha].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Anomaly model directory, or `none` [default: models/zoo/btcusdt_anomaly].
    #[arg(long)]
    anomaly_model: Option<String>,
    /// Inference device: auto, cpu, cuda, cuda:N. `auto` uses the GPU, when there is one, for
    /// fp16, for an inference thread of --batch-max 4096 or more, and for an alpha model whose
    /// card says `preferred_device = "cuda"`; else the CPU, which is faster per row inline and
    /// at smaller batches for the shipped models (measured; BENCHMARKS.md).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Run the models in fp16 (CUDA only).
    #[arg(long)]
    half: bool,
    /// `inline`: batch 1 on the hot thread, every trade scored before its decision. `batched`:
    /// an inference thread micro-batches (up to --batch-max events or --batch-wait-us) and
    /// decisions use the newest score back (live runs; backtests always score inline).
    #[arg(long, value_parser = ["inline", "batched"], default_value = "inline")]
    inference: String,
    /// batched: most events per batch.
    #[arg(long, default_value_t = 256)]
    batch_max: usize,
    /// batched: longest an event waits for its batch to fill, in microseconds.
    #[arg(long, default_value_t = 200)]
    batch_wait_us: u64,
    /// Prometheus endpoint address ("off" disables it).
    #[arg(long, default_value = "127.0.0.1:9898")]
    metrics_addr: String,
    /// Write the report as JSON here.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Capacity of the feed -> hot thread queue, in events.
    #[arg(long, default_value_t = 1 << 16)]
    queue_capacity: usize,
    /// When the queue is full: `block` (the feed waits; nothing lost) or `drop` (the feed drops
    /// and counts; a book that lost a delta is announced broken and resynced from a snapshot).
    #[arg(long, default_value = "block", value_parser = ["block", "drop"])]
    queue_policy: String,
    /// Levels kept per book side (at least 5000).
    #[arg(long, default_value_t = 5000)]
    book_levels: usize,
    /// Taker fee of simulated fills, in basis points.
    #[arg(long, default_value_t = 1.0)]
    fee_bps: f64,
    /// Maker fee of simulated fills, in basis points (negative: a rebate).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    maker_fee_bps: f64,
    /// Simulated order latency each way: `recorded` (the data's receive-minus-exchange delay) or
    /// a duration (`0`, `250us`, `2ms`).
    #[arg(long, default_value = "0")]
    order_latency: String,
    /// Market-data latency: `recorded` (venue time = the event's exchange time) or a duration
    /// (venue time = receive time minus it).
    #[arg(long, default_value = "0")]
    md_latency: String,
    /// Queue position of resting orders: `conservative`, `prob` or `prob:<power>`.
    #[arg(long, default_value = "conservative")]
    queue_model: String,
    /// Risk limits: a TOML file (or JSON for `*.json`) with RiskConfig fields; defaults otherwise.
    #[arg(long)]
    risk_config: Option<PathBuf>,
    /// Polls of an empty queue before the hot thread parks: spinning trades a core for wake-up
    /// latency; worth it only with a core to spare for the hot thread (0 = always park).
    #[arg(long, default_value_t = 0)]
    spin_polls: u32,
    /// Risk control endpoint (POST /risk/halt|reduce|resume, GET /risk/state); needs a bearer
    /// token in ARGUS_CONTROL_TOKEN ("off" disables it).
    #[arg(long, default_value = "127.0.0.1:9899")]
    control_addr: String,
    /// Audit every risk decision to this file: JSON lines, or Parquet with a `.parquet` name.
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Close the audit part and open the next (`audit.1.parquet`, ...) after this many records.
    #[arg(long, default_value_t = argus_engine::audit::DEFAULT_ROTATE_RECORDS, value_parser = clap::value_parser!(u64).range(1..))]
    audit_rotate_records: u64,
    /// Record every event the hot thread consumes to this Parquet tape (replay it with
    /// `argus backtest --tape`).
    #[arg(long)]
    record: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Replay speed: a factor of recorded time, or `max`.
    #[arg(long, default_value = "20")]
    speed: Speed,
    /// Recording to replay (`<recv_ns> <frame>` lines, optionally gzipped).
    #[arg(long)]
    recording: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct LiveArgs {
    /// Venues and symbols to subscribe (TOML: `trade = "venue:symbol"` and `[[feed]]` tables
    /// with `venue`, `symbols`, optional `url`, `rest_url`, `end_on_close`); replaces
    /// --symbol, --ws-base and --rest-base. Every feed goes through the one hot thread: the
    /// strategy trades one instrument, the others' books are kept and reported.
    #[arg(long, conflicts_with_all = ["symbol", "ws_base", "rest_base"])]
    config: Option<PathBuf>,
    /// Binance spot symbol (without --config).
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    #[arg(long, default_value = argus_feeds::binance::client::SPOT_WS_BASE)]
    ws_base: String,
    #[arg(long, default_value = argus_feeds::binance::client::SPOT_REST_BASE)]
    rest_base: String,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum RiskAction {
    Halt,
    Reduce,
    Resume,
    State,
}

#[derive(Args, Debug)]
struct BacktestArgs {
    /// Parquet event tape.
    #[arg(long, conflicts_with_all = ["recording", "catalog"], required_unless_present_any = ["recording", "catalog"])]
    tape: Option<PathBuf>,
    /// Parquet catalog root (`argus feeds record`, `argus data import`).
    #[arg(long, conflicts_with = "recording")]
    catalog: Option<PathBuf>,
    /// The data's venue (a catalog's as written there, e.g. `binance_spot`, `okx`).
    #[arg(long, default_value = "binance_spot")]
    venue: String,
    /// The instrument's trading rules (tick, lot, min/max qty, min notional): the venue's REST
    /// reply saved as JSON (Binance exchangeInfo, OKX instruments, Bybit instruments-info,
    /// Coinbase product, Kraken AssetPairs), or TOML `[[instrument]]` tables as in `argus live
    /// --config`.
    /// Only Binance spot BTCUSDT has rules built in: without them, risk rejects every order for
    /// any other instrument.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Start (inclusive): `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` (UTC) or nanoseconds.
    #[arg(long)]
    from: Option<String>,
    /// End (inclusive), same forms.
    #[arg(long)]
    to: Option<String>,
    #[arg(long, value_parser = ["signal_taker", "scripted"], default_value = "signal_taker")]
    strategy: String,
    /// scripted: the orders, one JSON object per line
    /// (`{"ts_ns":…, "side":"buy|sell", "type":"market|limit", "qty":"…", "price":"…"}`).
    #[arg(long, required_if_eq("strategy", "scripted"))]
    script: Option<PathBuf>,
    /// scripted: a market order's limit, in basis points through the opposite touch.
    #[arg(long, default_value_t = 10)]
    market_slippage_bps: i64,
    /// Capital the report's return, turnover and drawdown are relative to (quote currency).
    #[arg(long, default_value = "10000")]
    capital: String,
    /// Equity-curve sampling interval (venue time) for the report: a duration like `1s`, `100ms`.
    #[arg(long, default_value = "1s")]
    equity_every: String,
    /// Strategy parameters (TOML or JSON by extension; keys of the strategy's config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for `summary.json`, `orders.parquet`, `fills.parquet`, `equity.parquet`,
    /// `report.html` and the engine's `report.json` (the human summary still goes to stdout).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Parameter grid over the strategy's config keys and, prefixed `risk.`, the risk limits, e.g.
    /// `--sweep entry_bps=0.4,0.6,0.8 --sweep risk.max_position=0.01,0.02`: every combination runs
    /// (in parallel across cores) and the results are tabulated (and written to
    /// `<report>/sweep.json`).
    #[arg(long)]
    sweep: Vec<String>,
    /// Raw recording (`<recv_ns> <frame>` lines, optionally gzipped), decoded like the live feed.
    #[arg(long)]
    recording: Option<PathBuf>,
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct MonitorArgs {
    /// JSON-RPC websocket endpoint (ws:// or wss://); repeat for several chains.
    #[arg(long)]
    rpc: Vec<String>,
    /// Label pack (CSV, TSV, JSON, YAML or one address per line); repeat for several.
    #[arg(long)]
    labels: Vec<PathBuf>,
    /// Known-benign addresses (same formats): alerts blaming them are dropped and counted.
    #[arg(long)]
    suppress: Vec<PathBuf>,
    /// A tabular model directory over transaction features (e.g. models/zoo/eth_tx_phishing).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A tabular model directory over address aggregates kept per address (the Kaggle set's
    /// columns, e.g. models/zoo/eth_address_fraud): the `ml-address` detector.
    #[arg(long)]
    address_model: Option<PathBuf>,
    /// Append alerts (JSON lines) to this file, flushed after every block.
    #[arg(long)]
    alerts_jsonl: Option<PathBuf>,
    /// POST every alert (JSON) to this URL, retried with backoff.
    #[arg(long)]
    webhook: Option<String>,
    /// Where alerts the webhook never accepted go (default: `argus-webhook-undelivered.jsonl`).
    #[arg(long)]
    webhook_dead_letter: Option<PathBuf>,
    /// Start from this block (backfill history) instead of the current head.
    #[arg(long)]
    from_block: Option<u64>,
    /// Stop after this block (history runs).
    #[arg(long)]
    to_block: Option<u64>,
    /// Refuse a node that serves another chain id.
    #[arg(long)]
    chain_id: Option<u64>,
    /// TOML with the same keys as these flags (underscores) plus [monitor] thresholds and
    /// [webhook_retry]; see deploy/monitor.example.toml. Flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics on this address.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Do not print alerts on stdout.
    #[arg(long)]
    quiet: bool,
    /// Also check transactions while they are pending (`newPendingTransactions`): labelled
    /// parties and approvals to labelled addresses or EOAs raise early warnings
    /// (`"pending": true`) before any block holds them.
    #[arg(long)]
    pending: bool,
}

#[derive(Subcommand, Debug)]
enum ChainCmd {
    /// Decode raw JSON-RPC `eth_getBlockByNumber(.., true)` responses (a document, a batch, or
    /// one per line) into one JSON object per block with its `transactions`, in ethereum-etl's
    /// field names, integers as exact decimal strings.
    Decode {
        #[arg(long = "input", required = true)]
        inputs: Vec<PathBuf>,
        /// One JSON object per line (the default prints a short line per block).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum DataCmd {
    /// Import files into the catalog; prints rows read/written/rejected (with reasons) as JSON.
    Import {
        #[arg(long, value_parser = ["raw", "tardis", "binance-csv", "nautilus"])]
        format: String,
        /// raw: the capture's venue (as `feeds check`); binance-csv, nautilus: the catalog venue name
        /// (nautilus default: from the instrument id, `BTCUSDT.BINANCE` -> `binance`).
        #[arg(long)]
        venue: Option<String>,
        /// tardis: trades|incremental_book_L2|book_snapshot|quotes; binance-csv: trades|aggTrades|klines.
        /// Default: from the file name.
        #[arg(long)]
        kind: Option<String>,
        /// binance-csv: the symbol (default: the file name's prefix, `BTCUSDT-trades-...`).
        #[arg(long)]
        symbol: Option<String>,
        #[arg(long = "input", required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_parser = ["hour", "day"], default_value = "day")]
        rotate: String,
    },
    /// Fetch an instrument's trading rules from its venue's public REST API (as `argus live`
    /// does at start-up), check them, and save the venue's reply for `argus backtest --rules`;
    /// prints the rules as JSON.
    Rules {
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(argus_feeds::check::CheckVenue::NAMES))]
        venue: String,
        /// The venue's own spelling (`BTCUSDT`, `BTC-USDT`, `BTC/USD`, `BTC-USD-SWAP`).
        #[arg(long)]
        symbol: String,
        /// The venue's REST base (default: its public one).
        #[arg(long)]
        rest_url: Option<String>,
        /// The feed's websocket URL, where it picks the market: Bybit's category
        /// (`.../v5/public/linear`), Coinbase's API (`wss://ws-feed.exchange.coinbase.com`).
        #[arg(long)]
        ws_url: Option<String>,
        /// Where the venue's reply is saved.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum FeedsCmd {
    /// Run recorded raw frames through the live normalizer and book sync and summarise: frames,
    /// events by type, errors, gaps, resyncs, checksums and the final books. Inputs may be bare
    /// JSON lines, `<recv_ns> <frame>` (hftbacktest) or cryptofeed logs (REST bodies from a second
    /// --input are merged by time); gzip is read transparently.
    Check {
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(argus_feeds::check::CheckVenue::NAMES))]
        venue: String,
        #[arg(long = "input", required = true)]
        inputs: Vec<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record live market data into the Parquet catalog
    /// (`<out>/<table>/venue=../symbol=../date=../part-HH-N.parquet`) until Ctrl-C or SIGTERM;
    /// parts are renamed into place only when complete.
    Record {
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(argus_feeds::check::CheckVenue::NAMES))]
        venue: String,
        /// Comma-separated venue symbols.
        #[arg(long, value_delimiter = ',', required = true)]
        symbols: Vec<String>,
        #[arg(long)]
        out: PathBuf,
        /// Part length.
        #[arg(long, value_parser = ["hour", "day"], default_value = "hour")]
        rotate: String,
        /// Override the venue's websocket URL (Binance: base URL; e.g. a local replay).
        #[arg(long)]
        ws_base: Option<String>,
        /// Override Binance's REST base URL (with --ws-base).
        #[arg(long)]
        rest_base: Option<String>,
        /// Stop when the server closes the stream instead of reconnecting (replays).
        #[arg(long)]
        end_on_close: bool,
        /// Also keep every frame as received (and Binance's REST snapshots), as gzip
        /// `<recv_ns> <frame>` lines under OUT/raw/venue=V/date=D/ (`feeds check` reads them).
        #[arg(long)]
        raw: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ModelsCmd {
    /// Train a model. `alpha` (default): the mid move over `--horizon` trades, from the same book
    /// and feature code as the hot thread. `anomaly`: an autoencoder over those features, its
    /// threshold calibrated to `--alert-rate`. Both read a raw recording (`.jsonl[.gz]`), a
    /// Parquet tape (`.parquet`) or a catalog directory (`--venue`, `--symbol`). `tabular`: a
    /// classifier on any labelled CSV (`--label`, `--drop`).
    Train {
        #[arg(value_parser = ["alpha", "anomaly", "tabular"])]
        kind: Option<String>,
        /// Recording, tape or catalog (alpha, anomaly) or CSV table (tabular)
        /// [default for alpha and anomaly: the bundled BTCUSDT recording].
        #[arg(long, alias = "recording")]
        data: Option<PathBuf>,
        /// Model directory to write [default: models/zoo/btcusdt_<kind>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Most epochs (training stops earlier when validation stops improving).
        #[arg(long)]
        epochs: Option<usize>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// alpha: predict the mid move over this many trades.
        #[arg(long, default_value_t = 50)]
        horizon: usize,
        /// anomaly: the share of validation events the threshold flags.
        #[arg(long, default_value_t = 0.01)]
        alert_rate: f64,
        /// alpha, anomaly: epochs without a better validation loss before stopping.
        #[arg(long, default_value_t = 15)]
        patience: usize,
        /// alpha, anomaly from a catalog: its venue.
        #[arg(long, default_value = "binance_spot")]
        venue: String,
        /// alpha, anomaly: the symbol (recordings and catalogs).
        #[arg(long, default_value = "BTCUSDT")]
        symbol: String,
        /// tabular: the 0/1 label column.
        #[arg(long)]
        label: Option<String>,
        /// tabular: columns never used as features (ids, row numbers, addresses).
        #[arg(long, value_delimiter = ',')]
        drop: Vec<String>,
        /// tabular: validation rows = the last ones (`ordered`, time-ordered data) or a seeded
        /// shuffle (`random`, independent rows).
        #[arg(long, value_parser = ["ordered", "random"], default_value = "ordered")]
        split: String,
        /// tabular: also feed each column's decimal shape (power of ten of the last significant
        /// digit, significant digits): round and scripted amounts, gas limits and prices.
        #[arg(long)]
        decimal_shape: bool,
        /// tabular: after early stopping, train again on training and validation rows together
        /// for the epochs it chose, keeping its threshold (test rows stay held out).
        #[arg(long)]
        refit: bool,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Score every row of a CSV with a tabular model: writes `row,score,flagged` (one output row
    /// per input row, in order; `flagged` at the model's threshold). An alpha or anomaly model
    /// finds its features by column name and writes `row,score` (signal in bps, or the anomaly
    /// score, 0.5 at its threshold). A TorchScript file
    /// (`.pt`, from `torch.jit.script`/`trace`) takes every numeric column in order and writes
    /// `row,score` (its raw output).
    Score {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Batch-1 latency percentiles (argus's call beside the bare libtorch call) and batched
    /// throughput of a model: the market MLP or a tabular directory, or a TorchScript file.
    Bench {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Rows per batch for the throughput figure.
        #[arg(long, default_value_t = 4096)]
        batch: usize,
        /// Batch-1 calls timed each way.
        #[arg(long, default_value_t = 20_000)]
        calls: usize,
        /// Input width of a TorchScript file (it has no card).
        #[arg(long, default_value_t = 32)]
        inputs: usize,
        /// libtorch intra-op threads (1: inline on one core, as the hot thread runs it).
        #[arg(long, default_value_t = 1)]
        threads: i32,
        /// fp16 (CUDA only; market models).
        #[arg(long)]
        half: bool,
        /// With an alpha model: also time the hot thread's scorer, this alpha model and this
        /// anomaly model as one network, beside the two scored one after the other.
        #[arg(long)]
        anomaly: Option<PathBuf>,
        /// Most rows per batch of the inference thread (timed under saturation), as
        /// `--batch-max` of a run.
        #[arg(long, default_value_t = 256)]
        thread_batch: usize,
        #[arg(long)]
        json: bool,
    },
    /// Metrics of a tabular model on a labelled CSV, at the model's threshold.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        label: String,
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
    // Before any torch call (libtorch looks its CUDA hooks up once); without a GPU the backend
    // is never loaded, which spares every command ~350 MB and ~0.2 s.
    if argus_models::cuda::gpu_present() {
        if let Err(e) = argus_models::cuda::load_backend() {
            tracing::debug!("no CUDA: {e}");
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("argus: error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, `: `-joined like anyhow's `{:#}`, leaving out a cause whose text
/// the error above it already includes (typed errors often show their source's message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A bundled file: relative to the working directory, else to the source tree.
fn bundled(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Command::Demo(args) => demo(args),
        Command::Live(args) => live(args),
        Command::Backtest(args) => backtest(args),
        Command::Risk { action, control_addr } => {
            let (method, path) = match action {
                RiskAction::Halt => ("POST", "/risk/halt"),
                RiskAction::Reduce => ("POST", "/risk/reduce"),
                RiskAction::Resume => ("POST", "/risk/resume"),
                RiskAction::State => ("GET", "/risk/state"),
            };
            let token = std::env::var(argus_engine::control::TOKEN_ENV).ok();
            let (code, body) = argus_engine::control::request(&control_addr, method, path, token.as_deref())
                .with_context(|| format!("contacting {control_addr}"))?;
            println!("{}", body.trim());
            if code != 200 {
                anyhow::bail!("{method} {path}: HTTP {code}");
            }
            Ok(())
        }
        Command::Feeds { cmd: FeedsCmd::Check { venue, inputs, json } } => feeds_check(&venue, &inputs, json),
        Command::Monitor(args) => monitor(args),
        Command::Chain { cmd: ChainCmd::Decode { inputs, json } } => chain_decode(&inputs, json),
        Command::Data { cmd: DataCmd::Import { format, venue, kind, symbol, inputs, out, rotate } } => {
            data_import(&format, venue.as_deref(), kind.as_deref(), symbol.as_deref(), &inputs, &out, &rotate)
        }
        Command::Data { cmd: DataCmd::Rules { venue, symbol, rest_url, ws_url, out } } => {
            data_rules(&venue, &symbol, rest_url.as_deref(), ws_url.as_deref(), &out)
        }
        Command::Feeds {
            cmd: FeedsCmd::Record { venue, symbols, out, rotate, ws_base, rest_base, end_on_close, raw },
        } => {
            let cfg = argus_engine::record::RecordConfig {
                venue,
                symbols,
                out,
                rotation: if rotate == "day" {
                    argus_backtest::catalog::Rotation::Day
                } else {
                    argus_backtest::catalog::Rotation::Hour
                },
                ws_base,
                rest_base,
                end_on_close,
                raw,
            };
            let rt = runtime()?;
            let shutdown = shutdown_on_signals(&rt);
            let summary = argus_engine::record::run(&rt, &cfg, shutdown)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            if let Some(e) = &summary.error {
                anyhow::bail!("catalog write failed ({} events lost): {e}", summary.lost);
            }
            if let Some(e) = summary.raw.as_ref().and_then(|r| r.error.as_ref()) {
                anyhow::bail!(
                    "raw frame write failed ({} frames lost): {e}",
                    summary.raw.as_ref().map_or(0, |r| r.lost)
                );
            }
            Ok(())
        }
        Command::Bench { cmd: BenchCmd::Chain { blocks, txs, accounts, model, address_model, repeat, json } } => {
            tch::set_num_threads(1);
            let model = (model != "none").then(|| PathBuf::from(model));
            let address_model = (address_model != "none").then(|| PathBuf::from(address_model));
            let r = argus_engine::monitor::bench::run(
                blocks,
                txs,
                accounts,
                model.as_deref(),
                address_model.as_deref(),
                repeat,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{} transactions ({} logs, {:.1} MB of JSON), median of {} runs {:.3} s: {:.0} tx/s \
                     decode+detect+score (best {:.0}; {:.0} decode+detect, {:.0} decode only); {} alerts; \
                     model {}; address model {} ({} profiles scored)",
                    r.transactions,
                    r.logs,
                    r.json_bytes as f64 / 1e6,
                    r.repeat,
                    r.seconds,
                    r.tx_per_sec,
                    r.tx_per_sec_best,
                    r.rules_only_tx_per_sec,
                    r.decode_only_tx_per_sec,
                    r.alerts,
                    r.model.as_deref().unwrap_or("none"),
                    r.address_model.as_deref().unwrap_or("none"),
                    r.addresses_scored
                );
            }
            Ok(())
        }
        Command::Bench { cmd: BenchCmd::Feeds { venue: Some(venue), inputs, repeat, json, .. } } => {
            bench_venue(&venue, inputs, repeat, json)
        }
        Command::Bench { cmd: BenchCmd::Feeds { venue: None, inputs, symbol, repeat, json } } => {
            let input = match inputs.as_slice() {
                [] => PathBuf::from("data/binance_spot/btcusdt_20240808.jsonl.gz"),
                [one] => one.clone(),
                _ => anyhow::bail!("the Binance bench reads one recording (--input FILE)"),
            };
            let r = argus_engine::feed_bench::run(&input, &symbol, repeat)
                .with_context(|| format!("benchmarking the feed path on {}", input.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                for (what, c) in [("depthUpdate", &r.depth), ("trade", &r.trade), ("bookTicker", &r.book_ticker)] {
                    println!("{}", c.line(what, "levels"));
                }
                println!(
                    "{} passes, {:.2} M frames/s; timer overhead {} ns per frame (included)",
                    r.passes,
                    r.frames_per_sec / 1e6,
                    r.timer_overhead_ns
                );
            }
            Ok(())
        }
        Command::Bench { cmd: BenchCmd::Replay { catalog, venue, symbol, repeat, json } } => {
            bench_replay(&catalog, &venue, &symbol, repeat, json)
        }
        Command::Models {
            cmd: ModelsCmd::Bench { model, device, batch, calls, inputs, threads, half, anomaly, thread_batch, json },
        } => {
            let device = argus_models::mlp::parse_device(&device)?;
            let opts = argus_engine::model_bench::Options {
                device,
                batch,
                calls,
                script_inputs: inputs,
                threads,
                half,
                anomaly,
                thread_batch,
            };
            let r = argus_engine::model_bench::run(&model, &opts)
                .with_context(|| format!("benchmarking {}", model.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{} ({}, {} inputs) on {} with {} thread(s): batch 1 p50 {} ns, p99 {} ns (bare tch p50 {} ns, p99 {} ns: overhead {} ns); batch {}: {:.0} scores/s",
                    r.model, r.kind, r.inputs, r.device, r.torch_threads, r.batch1.p50_ns, r.batch1.p99_ns,
                    r.raw_tch_batch1.p50_ns, r.raw_tch_batch1.p99_ns, r.overhead_p50_ns, r.batch, r.batched_scores_per_sec
                );
                if let (Some(raw), Some(over)) = (&r.raw_row_batch1, r.row_overhead_p50_ns) {
                    println!("the same layers on a ready input tensor: p50 {} ns (argus adds {over} ns)", raw.p50_ns);
                }
                if let Some(s) = &r.scorer {
                    println!(
                        "scorer with {} ({}): batch 1 p50 {} ns, p99 {} ns; one model after the other p50 {} ns, p99 {} ns",
                        s.anomaly,
                        if s.fused { "one network" } else { "not fused" },
                        s.batch1.p50_ns,
                        s.batch1.p99_ns,
                        s.separate_batch1.p50_ns,
                        s.separate_batch1.p99_ns
                    );
                    let t = &s.inference_thread;
                    println!(
                        "scorer batched ({} rows): {:.0} rows/s (one model after the other {:.0}); its inference thread: {:.0} rows/s, mean batch {:.1}, submit-to-result p50 {} ns, p99 {} ns",
                        r.batch,
                        s.batched_rows_per_sec,
                        s.separate_batched_rows_per_sec,
                        t.scores_per_sec,
                        t.mean_batch,
                        t.latency.p50_ns,
                        t.latency.p99_ns
                    );
                }
                if let Some(t) = &r.inference_thread {
                    println!(
                        "inference thread (max batch {}, {} us): {:.0} scores/s, mean batch {:.1}, submit-to-result p50 {} ns, p99 {} ns",
                        t.max_batch, t.max_wait_us, t.scores_per_sec, t.mean_batch, t.latency.p50_ns, t.latency.p99_ns
                    );
                }
            }
            Ok(())
        }
        Command::Models { cmd: ModelsCmd::Score { model, input, out, device } }
            if argus_models::script::is_torchscript(&model) =>
        {
            let dev = argus_models::mlp::parse_device(&device)?;
            let m = argus_models::script::ScriptModel::load(&model, dev)?;
            let t = argus_models::tabular::Table::read_csv(&input)?;
            let (scores, columns) = m.score(&t)?;
            let mut text = String::with_capacity(scores.len() * 24 + 16);
            text.push_str("row,score\n");
            for (i, s) in scores.iter().enumerate() {
                text.push_str(&format!("{i},{s}\n"));
            }
            write_atomically(&out, text.as_bytes())?;
            eprintln!(
                "scored {} rows over {} numeric columns ({} ... {}; {} malformed rows skipped) -> {}",
                scores.len(),
                columns.len(),
                columns.first().map_or("", String::as_str),
                columns.last().map_or("", String::as_str),
                t.bad_rows,
                out.display()
            );
            Ok(())
        }
        Command::Models { cmd: ModelsCmd::Score { model, input, out, device } }
            if argus_models::card::card_kind(&model).is_ok_and(|k| k == "alpha" || k == "anomaly") =>
        {
            let dev = argus_models::mlp::parse_device(&device)?;
            let m = argus_models::market::MarketModel::load(&model, dev, false)
                .with_context(|| format!("loading {}", model.display()))?;
            let t = argus_models::tabular::Table::read_csv(&input)?;
            let scores = m.score_table(&t)?;
            let mut text = String::with_capacity(scores.len() * 24 + 16);
            text.push_str("row,score\n");
            for (i, s) in scores.iter().enumerate() {
                match s {
                    Some(s) => text.push_str(&format!("{i},{s}\n")),
                    None => text.push_str(&format!("{i},\n")),
                }
            }
            write_atomically(&out, text.as_bytes())?;
            let missing = scores.iter().filter(|s| s.is_none()).count();
            eprintln!(
                "scored {} rows with {} model {} ({missing} rows with a missing feature left empty, {} malformed rows skipped) -> {}",
                scores.len() - missing,
                m.card().kind.name(),
                m.card().name,
                t.bad_rows,
                out.display()
            );
            Ok(())
        }
        Command::Models { cmd: ModelsCmd::Score { model, input, out, device } } => {
            let dev = argus_models::mlp::parse_device(&device)?;
            let m = argus_models::tabular::TabularModel::load(&model, dev)
                .with_context(|| format!("loading {}", model.display()))?;
            let t = argus_models::tabular::Table::read_csv(&input)?;
            let scores = m.score(&t)?;
            let mut text = String::with_capacity(scores.len() * 24 + 32);
            text.push_str("row,score,flagged\n");
            for (i, s) in scores.iter().enumerate() {
                text.push_str(&format!("{i},{s},{}\n", f64::from(*s) >= m.card.threshold));
            }
            write_atomically(&out, text.as_bytes())?;
            let flagged = scores.iter().filter(|s| f64::from(**s) >= m.card.threshold).count();
            eprintln!(
                "scored {} rows ({flagged} flagged, {} malformed rows skipped) -> {}",
                scores.len(),
                t.bad_rows,
                out.display()
            );
            Ok(())
        }
        Command::Models { cmd: ModelsCmd::Eval { model, data, label, device, json } } => {
            let dev = argus_models::mlp::parse_device(&device)?;
            let m = argus_models::tabular::TabularModel::load(&model, dev)
                .with_context(|| format!("loading {}", model.display()))?;
            let t = argus_models::tabular::Table::read_csv(&data)?;
            let metrics = m.eval(&t, &label)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&metrics)?);
            } else {
                println!(
                    "{}: precision {:.3} recall {:.3} f1 {:.3} roc_auc {:.4} pr_auc {:.4} at threshold {:.4} (n {}, positives {})",
                    m.card.name, metrics.precision, metrics.recall, metrics.f1, metrics.roc_auc, metrics.pr_auc,
                    metrics.threshold, metrics.n, metrics.positives
                );
            }
            Ok(())
        }
        Command::Models {
            cmd:
                ModelsCmd::Train {
                    kind: Some(k),
                    data,
                    out,
                    epochs,
                    seed,
                    label,
                    drop,
                    split,
                    decimal_shape,
                    refit,
                    device,
                    ..
                },
        } if k == "tabular" => {
            use argus_models::tabular::{train_tabular, Split, Table, TabularConfig};
            let data = data.context("tabular training needs --data FILE.csv")?;
            let label = label.context("tabular training needs --label COLUMN")?;
            let t = Table::read_csv(&data)?;
            let out = out.context("tabular training needs --out DIR")?;
            let cfg = TabularConfig {
                name: out.file_name().map_or("tabular".into(), |n| n.to_string_lossy().into_owned()),
                label,
                drop,
                split: if split == "random" { Split::Random } else { Split::Ordered },
                val_fraction: 0.15,
                epochs: epochs.unwrap_or(2000),
                patience: 100,
                learning_rate: 3e-3,
                hidden: vec![64, 32],
                seed,
                device: argus_models::mlp::parse_device(&device)?,
                data: data.display().to_string(),
                decimal_shape,
                refit,
            };
            let card = train_tabular(&t, &cfg, &out)?;
            let v = card.test;
            println!(
                "trained {} on {} rows{} ({} validation, {} test, {} split, {} features, {} epochs); test: precision {:.3} recall {:.3} f1 {:.3} roc_auc {:.4} pr_auc {:.4} -> {}",
                card.name, card.rows_train, if card.refit { " (refit on training + validation)" } else { "" }, card.rows_val, card.rows_test, card.split, card.features.len(), card.epochs_run,
                v.precision, v.recall, v.f1, v.roc_auc, v.pr_auc, out.display()
            );
            Ok(())
        }
        Command::Models {
            cmd:
                ModelsCmd::Train {
                    kind, data, out, epochs, seed, horizon, alert_rate, patience, venue, symbol, device, ..
                },
        } => {
            use argus_models::card::MarketKind;
            let kind = if kind.as_deref() == Some("anomaly") { MarketKind::Anomaly } else { MarketKind::Alpha };
            let data = data.unwrap_or_else(|| bundled(RECORDING));
            let mut cfg = TrainConfig::new(kind);
            let out = out.unwrap_or_else(|| PathBuf::from(format!("models/zoo/btcusdt_{}", kind.name())));
            cfg.name = out.file_name().map_or_else(|| cfg.name.clone(), |n| n.to_string_lossy().into_owned());
            cfg.max_epochs = epochs.unwrap_or(cfg.max_epochs);
            cfg.seed = seed;
            cfg.horizon_trades = horizon;
            cfg.alert_rate = alert_rate;
            cfg.patience = patience;
            cfg.device = argus_models::mlp::parse_device(&device)?;
            cfg.data = data.display().to_string();
            let samples = training_samples(&data, &venue, &symbol)?;
            info!(samples = samples.len(), "collected training samples");
            let bar = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let card = train(&samples, &cfg, &out, &mut |p| {
                if bar {
                    let done = p.epoch * 30 / p.max_epochs.max(1);
                    eprint!(
                        "\r[{}{}] epoch {}/{}  train {:.4}  validation {:.4}  best epoch {}   ",
                        "#".repeat(done),
                        " ".repeat(30 - done),
                        p.epoch,
                        p.max_epochs,
                        p.train_loss,
                        p.val_loss,
                        p.best_epoch
                    );
                }
            })?;
            if bar {
                eprintln!();
            }
            let fmt = |m: &std::collections::BTreeMap<String, f64>| {
                m.iter().map(|(k, v)| format!("{k} {v:.4}")).collect::<Vec<_>>().join(", ")
            };
            println!(
                "trained {} ({}) on {} samples ({} validation, {} test), {} epochs; validation: {}; test: {} -> {}",
                card.name,
                card.kind.name(),
                card.training.samples_train,
                card.training.samples_val,
                card.training.samples_test,
                card.training.epochs_run,
                fmt(&card.validation),
                fmt(&card.test),
                out.display()
            );
            Ok(())
        }
    }
}

#[derive(serde::Serialize)]
struct ImportSummary {
    format: String,
    #[serde(flatten)]
    report: argus_backtest::import::ImportReport,
    files: Vec<String>,
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.fff][Z]` (UTC) or plain nanoseconds, to nanoseconds.
fn parse_time(s: &str) -> Result<u64> {
    if let Ok(ns) = s.parse::<u64>() {
        return Ok(ns);
    }
    argus_core::UnixNanos::parse_rfc3339(s)
        .map(|t| t.0)
        .ok_or_else(|| anyhow::anyhow!("bad time `{s}` (YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or nanoseconds)"))
}

/// As [`parse_time`], but a bare date means the end of that day.
fn parse_time_end(s: &str) -> Result<u64> {
    let t = parse_time(s)?;
    Ok(if s.len() == 10 && s.as_bytes()[4] == b'-' { t + 86_400_000_000_000 - 1 } else { t })
}

fn data_import(
    format: &str,
    venue: Option<&str>,
    kind: Option<&str>,
    symbol: Option<&str>,
    inputs: &[PathBuf],
    out: &Path,
    rotate: &str,
) -> Result<()> {
    use argus_backtest::catalog::{CatalogWriter, Rotation};
    use argus_backtest::import::{self, BinanceCsvKind, ImportReport, TardisKind};
    // Raw captures go through the feed readers, which do not count bytes: no bar for them.
    let _progress = (format != "raw").then(|| Progress::start(inputs));
    let rotation = if rotate == "hour" { Rotation::Hour } else { Rotation::Day };
    let mut writer =
        CatalogWriter::new(out, rotation).with_context(|| format!("creating catalog {}", out.display()))?;
    let mut report = ImportReport::default();
    let mut bar_files: Vec<String> = Vec::new();
    let file_name = |p: &Path| p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let n = inputs.len();
    match format {
        "nautilus" => {
            let mut skipped = Vec::new();
            for (i, p) in inputs.iter().enumerate() {
                eprintln!("[{}/{n}] {}", i + 1, p.display());
                import::nautilus(p, venue, &mut writer, &mut report, &mut skipped)
                    .with_context(|| format!("importing {}", p.display()))?;
            }
            for s in skipped {
                eprintln!("skipped (not trades, deltas or quotes): {s}");
            }
        }
        "raw" => {
            let v = venue.context("--format raw needs --venue")?;
            let cv = argus_feeds::check::CheckVenue::parse(v).with_context(|| format!("unknown venue `{v}`"))?;
            let catalog_venue = v.replace('-', "_");
            let merged = argus_feeds::rawlog::MergedInputs::open(inputs).context("opening --input")?;
            eprintln!("importing {n} raw capture file(s) for {v}");
            let mut failure: Option<anyhow::Error> = None;
            let mut written = 0_u64;
            let r = argus_feeds::check::events(cv, merged, &mut |sym: &str, ev: &argus_core::MarketEvent| {
                if failure.is_none() {
                    match writer.write(&catalog_venue, sym, ev) {
                        Ok(()) => written += 1,
                        Err(e) => failure = Some(e.into()),
                    }
                }
            })
            .map_err(|e| anyhow::anyhow!(e))?;
            if let Some(e) = failure {
                return Err(e.context("writing the catalog"));
            }
            report.rows_read = r.frames + r.rest;
            report.rows_written = written;
            for s in &r.error_samples {
                report.reject("", 0, s);
            }
            // Errors beyond the samples are still counted.
            let extra = r.errors.saturating_sub(r.error_samples.len() as u64);
            if extra > 0 {
                report.rows_rejected += extra;
                *report.rejected.entry("more errors (see feeds check)".to_owned()).or_default() += extra;
            }
        }
        "tardis" => {
            for (i, p) in inputs.iter().enumerate() {
                let name = file_name(p);
                let k = kind.unwrap_or(&name);
                let k = if k.contains("incremental_book_L2") {
                    TardisKind::IncrementalBookL2
                } else if k.contains("book_snapshot") {
                    TardisKind::BookSnapshot
                } else if k.contains("quotes") {
                    TardisKind::Quotes
                } else if k.contains("trades") {
                    TardisKind::Trades
                } else {
                    anyhow::bail!("{}: cannot tell the Tardis kind; give --kind", p.display());
                };
                eprintln!("[{}/{n}] {}", i + 1, p.display());
                import::tardis(p, k, &mut writer, &mut report).with_context(|| format!("importing {}", p.display()))?;
            }
        }
        _ => {
            for (i, p) in inputs.iter().enumerate() {
                let name = file_name(p);
                let k = match kind {
                    Some("aggTrades") => Some(BinanceCsvKind::AggTrades),
                    Some("trades") => Some(BinanceCsvKind::Trades),
                    Some("klines") => None,
                    Some(other) => anyhow::bail!("unknown binance-csv kind `{other}` (trades, aggTrades, klines)"),
                    None if name.contains("aggTrades") => Some(BinanceCsvKind::AggTrades),
                    None if name.contains("trades") => Some(BinanceCsvKind::Trades),
                    None if import::kline_interval(p).is_some() => None,
                    None => anyhow::bail!("{}: cannot tell trades, aggTrades or klines; give --kind", p.display()),
                };
                let sym = match symbol {
                    Some(s) => s.to_ascii_uppercase(),
                    None => name
                        .split('-')
                        .next()
                        .filter(|s| !s.is_empty())
                        .map(str::to_ascii_uppercase)
                        .with_context(|| format!("{}: give --symbol", p.display()))?,
                };
                eprintln!("[{}/{n}] {}", i + 1, p.display());
                let venue = venue.unwrap_or("binance_spot");
                match k {
                    Some(k) => import::binance_csv(p, k, venue, &sym, &mut writer, &mut report)
                        .with_context(|| format!("importing {}", p.display()))?,
                    None => {
                        let interval = import::kline_interval(p)
                            .with_context(|| format!("{}: no interval (1m, 1h, ...) in the file name", p.display()))?;
                        let parts = import::binance_klines(p, venue, &sym, &interval, out, &mut report)
                            .with_context(|| format!("importing {}", p.display()))?;
                        bar_files.extend(parts.iter().map(|p| p.display().to_string()));
                    }
                }
            }
        }
    }
    let parts = writer.finish().context("closing the catalog")?;
    let summary = ImportSummary {
        format: format.to_owned(),
        report,
        files: parts.iter().map(|p| p.path.display().to_string()).chain(bar_files).collect(),
    };
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn monitor(args: MonitorArgs) -> Result<()> {
    use argus_engine::monitor::{self, MonitorPlan};
    let mut plan: MonitorPlan = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => MonitorPlan::default(),
    };
    // Flags win over the file.
    let over = |flag: Vec<PathBuf>, conf: &mut Vec<PathBuf>| {
        if !flag.is_empty() {
            *conf = flag;
        }
    };
    if !args.rpc.is_empty() {
        plan.rpc = args.rpc;
    }
    over(args.labels, &mut plan.labels);
    over(args.suppress, &mut plan.suppress);
    plan.model = args.model.or(plan.model);
    plan.address_model = args.address_model.or(plan.address_model);
    plan.alerts_jsonl = args.alerts_jsonl.or(plan.alerts_jsonl);
    plan.webhook = args.webhook.or(plan.webhook);
    plan.webhook_dead_letter = args.webhook_dead_letter.or(plan.webhook_dead_letter);
    plan.from_block = args.from_block.or(plan.from_block);
    plan.to_block = args.to_block.or(plan.to_block);
    plan.chain_id = args.chain_id.or(plan.chain_id);
    plan.metrics_addr = args.metrics_addr.or(plan.metrics_addr);
    plan.quiet |= args.quiet;
    plan.pending |= args.pending;
    let rt = runtime()?;
    let shutdown = shutdown_on_signals(&rt);
    let summary = monitor::run(&plan, &rt, shutdown)?;
    eprintln!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn chain_decode(inputs: &[PathBuf], json: bool) -> Result<()> {
    use argus_feeds::chain::decode::{decode_block, responses};
    let mut errors = 0_u64;
    for p in inputs {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let docs = responses(&text).map_err(|(line, e)| anyhow::anyhow!("{}:{line}: not JSON: {e}", p.display()))?;
        for (i, d) in docs.iter().enumerate() {
            match decode_block(d) {
                Ok(b) if json => println!("{b}"),
                Ok(b) => println!(
                    "block {} {} txs {} time {}",
                    b["number"].as_str().unwrap_or("?"),
                    b["hash"].as_str().unwrap_or("?"),
                    b["transaction_count"].as_str().unwrap_or("?"),
                    b["timestamp"].as_str().unwrap_or("?")
                ),
                Err(e) => {
                    errors += 1;
                    eprintln!("{} response {}: {e}", p.display(), i + 1);
                }
            }
        }
    }
    if errors > 0 {
        anyhow::bail!("{errors} response(s) could not be decoded");
    }
    Ok(())
}

/// `argus bench feeds --venue V`: per-frame cost through the venue's live normalizer.
fn bench_venue(venue: &str, inputs: Vec<PathBuf>, repeat: usize, json: bool) -> Result<()> {
    use argus_feeds::check::CheckVenue;
    let v = CheckVenue::parse(venue).with_context(|| format!("unknown venue `{venue}`"))?;
    let inputs = if inputs.is_empty() {
        let bundled = match v {
            CheckVenue::Okx => "data/okx/cryptofeed_OKX.ws.1.0.log.gz",
            CheckVenue::Bybit => "data/bybit/2024-12-01_XRPUSDT_ob500.data.gz",
            CheckVenue::Coinbase => "data/coinbase/cryptofeed_COINBASE.ws.28.0.log.gz",
            CheckVenue::Kraken => "data/kraken/cryptofeed_KRAKEN.ws.50.0.log.gz",
            CheckVenue::BinanceSpot | CheckVenue::BinanceUsdm => {
                anyhow::bail!("Binance's live path is its own client: run `argus bench feeds` without --venue")
            }
        };
        vec![PathBuf::from(bundled)]
    } else {
        inputs
    };
    let r = argus_engine::feed_bench::run_venue(v, &inputs, repeat)
        .with_context(|| format!("benchmarking the {venue} feed path"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    for (what, c) in [("book", &r.book), ("trade", &r.trade), ("quote", &r.quote), ("other", &r.other)] {
        if c.frames > 0 {
            println!("{}", c.line(what, "book events"));
        }
    }
    println!(
        "{}: {} passes, {:.2} M frames/s; timer overhead {} ns per frame (included)",
        r.venue,
        r.passes,
        r.frames_per_sec / 1e6,
        r.timer_overhead_ns
    );
    Ok(())
}

fn feeds_check(venue: &str, inputs: &[PathBuf], json: bool) -> Result<()> {
    use argus_feeds::check::{check, CheckVenue};
    let venue = CheckVenue::parse(venue).with_context(|| format!("unknown venue `{venue}`"))?;
    let merged = argus_feeds::rawlog::MergedInputs::open(inputs).context("opening --input")?;
    let r = check(venue, merged);
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{}: {} frames, {} REST, events {:?}, {} errors, {} gaps, {} resyncs, checksum ok {} failed {}",
            r.venue, r.frames, r.rest, r.events, r.errors, r.gaps, r.resyncs, r.checksum.ok, r.checksum.failed
        );
        for (s, b) in &r.books {
            println!(
                "  {s:<12} bid {:?} ask {:?} levels {}/{}{}",
                b.best_bid,
                b.best_ask,
                b.bid_levels,
                b.ask_levels,
                if b.synced { "" } else { " (stale)" }
            );
        }
        for e in &r.error_samples {
            println!("  error: {e}");
        }
    }
    Ok(())
}

/// `argus data rules`: the venue's reply saved to `out`, the rules read from it printed.
fn data_rules(venue: &str, symbol: &str, rest_url: Option<&str>, ws_url: Option<&str>, out: &Path) -> Result<()> {
    let check_venue =
        argus_feeds::check::CheckVenue::parse(venue).with_context(|| format!("unknown venue `{venue}`"))?;
    let fetch = argus_feeds::rules::fetch_venue_rules(
        check_venue,
        rest_url,
        ws_url,
        symbol,
        std::time::Duration::from_secs(10),
    );
    let (body, spec) = runtime()?.block_on(fetch).with_context(|| format!("{venue} trading rules for {symbol}"))?;
    std::fs::write(out, &body).with_context(|| format!("writing {}", out.display()))?;
    let mut rules = argus_engine::report::RulesReport::of(Some(spec));
    rules.source = "venue";
    let json = serde_json::json!({ "venue": venue, "symbol": symbol, "saved": out, "rules": rules });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().thread_name("argus-io").build()?)
}

/// Risk limits from TOML (or JSON by extension), plus the control endpoint's bearer token if the
/// file sets `control_token`.
fn load_risk_config(p: &Path) -> Result<(RiskConfig, Option<String>)> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let ctx = || format!("parsing {}", p.display());
    let token_of = |v: Option<String>| v.filter(|t| !t.is_empty());
    if p.extension().is_some_and(|e| e == "json") {
        let mut v: serde_json::Value = serde_json::from_str(&text).with_context(ctx)?;
        let token = match v.as_object_mut().and_then(|o| o.remove("control_token")) {
            Some(serde_json::Value::String(t)) => Some(t),
            Some(_) => anyhow::bail!("{}: control_token must be a string", p.display()),
            None => None,
        };
        Ok((serde_json::from_value(v).with_context(ctx)?, token_of(token)))
    } else {
        let mut t: toml::Table = toml::from_str(&text).with_context(ctx)?;
        let token = match t.remove("control_token") {
            Some(toml::Value::String(s)) => Some(s),
            Some(_) => anyhow::bail!("{}: control_token must be a string", p.display()),
            None => None,
        };
        Ok((RiskConfig::deserialize(toml::Value::Table(t)).with_context(ctx)?, token_of(token)))
    }
}

fn audit_target(run: &RunArgs) -> Option<argus_engine::audit::AuditTarget> {
    run.audit.clone().map(|path| argus_engine::audit::AuditTarget { path, rotate_records: run.audit_rotate_records })
}

fn pipeline_config(run: &RunArgs, plan: pipeline::LivePlan, reconnect: bool) -> Result<PipelineConfig> {
    let metrics_addr = match run.metrics_addr.as_str() {
        "off" => None,
        a => Some(a.parse::<SocketAddr>().with_context(|| format!("--metrics-addr `{a}`"))?),
    };
    let control_addr = match run.control_addr.as_str() {
        "off" => None,
        a => Some(a.parse::<SocketAddr>().with_context(|| format!("--control-addr `{a}`"))?),
    };
    let (risk, file_token) = match &run.risk_config {
        Some(p) => load_risk_config(p)?,
        None => (RiskConfig::default(), None),
    };
    risk.validate()?;
    // The environment wins over the file, so a deployment can rotate the token without edits.
    let control_token = std::env::var(argus_engine::control::TOKEN_ENV).ok().filter(|t| !t.is_empty()).or(file_token);
    Ok(PipelineConfig {
        feeds: plan.feeds,
        trade: plan.trade,
        rules: plan.rules,
        models: argus_models::market::MarketModelPaths {
            alpha: run.model.clone().unwrap_or_else(|| bundled(ALPHA_MODEL)),
            anomaly: match run.anomaly_model.as_deref() {
                Some("none") => None,
                Some(p) => Some(PathBuf::from(p)),
                None => Some(bundled(ANOMALY_MODEL)),
            },
        },
        device: run.device.clone(),
        half: run.half,
        inference: match run.inference.as_str() {
            "batched" => argus_engine::pipeline::Inference::Batched(argus_models::batch::BatchConfig {
                max_batch: run.batch_max.max(1),
                max_wait: std::time::Duration::from_micros(run.batch_wait_us),
                ..Default::default()
            }),
            _ => argus_engine::pipeline::Inference::Inline,
        },
        metrics_addr,
        queue_capacity: run.queue_capacity.max(1024),
        queue_policy: run.queue_policy.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        book_levels: run.book_levels,
        strategy: SignalTakerConfig::default(),
        risk,
        sim: SimConfig {
            order_latency: Latency::parse(&run.order_latency).context("--order-latency")?,
            md_latency: Latency::parse(&run.md_latency).context("--md-latency")?,
            queue: QueueModel::parse(&run.queue_model).context("--queue-model")?,
            maker_fee_ppm: bps_to_ppm(run.maker_fee_bps),
            taker_fee_ppm: bps_to_ppm(run.fee_bps),
            deplete: true,
        },
        reconnect,
        record: run.record.clone(),
        spin_polls: run.spin_polls,
        audit: audit_target(run),
        control_addr,
        control_token,
    })
}

/// Ctrl-C turns the shutdown flag; the pipeline drains and still reports.
fn shutdown_on_ctrl_c(rt: &tokio::runtime::Runtime) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            info!("interrupted; stopping feeds and writing the report");
            let _ = tx.send(true);
        }
    });
    rx
}

/// Ctrl-C or SIGTERM (systemd, docker stop) turns the shutdown flag.
fn shutdown_on_signals(rt: &tokio::runtime::Runtime) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    rt.spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        info!("stopping: flushing open files");
        let _ = tx.send(true);
    });
    rx
}

fn finish(report: &Report, path: Option<&Path>) -> Result<()> {
    print!("{}", report.human());
    if let Some(p) = path {
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?;
        info!(path = %p.display(), "report written");
    }
    if let Some(a) = &report.audit {
        if let Some(e) = &a.error {
            anyhow::bail!("audit log {} failed ({} records dropped): {e}", a.path, a.dropped);
        }
        if a.dropped > 0 {
            tracing::warn!(path = %a.path, dropped = a.dropped, "audit queue overflowed; records were dropped");
        }
    }
    if let Some(r) = &report.recording {
        if r.error.is_some() || r.lost > 0 {
            anyhow::bail!(
                "recording to {} failed ({} events lost): {}",
                r.path,
                r.lost,
                r.error.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(())
}

/// Training samples for market models from a raw recording, a Parquet tape or a catalog.
fn training_samples(data: &Path, venue: &str, symbol: &str) -> Result<Vec<argus_models::train::Sample>> {
    const BOOK_LEVELS: usize = 5000;
    if data.is_dir() {
        let reader = argus_backtest::catalog::CatalogReader::open(data, venue, symbol, 0, u64::MAX)
            .with_context(|| format!("opening catalog {}", data.display()))?;
        return Ok(collect_samples(reader, BOOK_LEVELS));
    }
    if data.extension().is_some_and(|e| e == "parquet") {
        let reader = TapeReader::open(data).with_context(|| format!("opening tape {}", data.display()))?;
        let mut bad = 0_u64;
        let samples = collect_samples(reader.filter_map(|r| r.map_err(|_| bad += 1).ok()), BOOK_LEVELS);
        anyhow::ensure!(bad == 0, "{}: {bad} unreadable tape rows", data.display());
        return Ok(samples);
    }
    let events = BinanceRecording::open(data, symbol, InstrumentId(0))
        .with_context(|| format!("opening recording {}", data.display()))?;
    Ok(collect_samples(events, BOOK_LEVELS))
}

/// One backtest over the source the arguments name.
fn run_backtest(args: &BacktestArgs, setup: &argus_engine::pipeline::HotSetup) -> Result<replay::Outcome> {
    let malformed = std::cell::Cell::new(0_u64);
    let venue = argus_core::Venue::ALL
        .into_iter()
        .find(|v| v.as_str() == args.venue.replace('-', "_"))
        .with_context(|| format!("unknown venue `{}`", args.venue))?;
    let rules =
        args.rules.as_deref().map(|p| argus_engine::pipeline::rules_from_file(p, venue, &args.symbol)).transpose()?;
    match (&args.tape, &args.recording) {
        (Some(tape), _) => {
            let reader = TapeReader::open(tape).with_context(|| format!("opening tape {}", tape.display()))?;
            let events = reader.filter_map(|r| match r {
                Ok(ev) => Some(ev),
                Err(error) => {
                    tracing::warn!(%error, "skipping bad tape row");
                    malformed.set(malformed.get() + 1);
                    None
                }
            });
            replay::run(events, venue, &args.symbol, rules, setup, &malformed)
        }
        (None, Some(rec)) => {
            let events = BinanceRecording::open(rec, &args.symbol, InstrumentId(0))?;
            replay::run(events, venue, &args.symbol, rules, setup, &malformed)
        }
        (None, None) => {
            let root = args.catalog.as_ref().context("give --tape, --recording or --catalog")?;
            let from = args.from.as_deref().map(parse_time).transpose()?.unwrap_or(0);
            let to = args.to.as_deref().map(parse_time_end).transpose()?.unwrap_or(u64::MAX);
            let reader = argus_backtest::catalog::CatalogReader::open(root, &args.venue, &args.symbol, from, to)
                .with_context(|| format!("opening catalog {}", root.display()))?;
            replay::run(reader, venue, &args.symbol, rules, setup, &malformed)
        }
    }
}

/// A JSON value for a sweep value: a number when it reads as one, else a string.
fn sweep_value(v: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(v).ok().filter(|x| x.is_number()).unwrap_or_else(|| v.into())
}

/// Runs the grid of `--sweep` values, one backtest per combination, across cores.
fn sweep(args: &BacktestArgs, base: &argus_engine::pipeline::HotSetup) -> Result<()> {
    let mut grid: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for s in &args.sweep {
        let (k, vs) = s.split_once('=').with_context(|| format!("--sweep `{s}`: expected key=v1,v2,..."))?;
        let vals: Vec<&str> = vs.split(',').filter(|v| !v.is_empty()).collect();
        anyhow::ensure!(!vals.is_empty(), "--sweep `{s}`: no values");
        grid = grid
            .into_iter()
            .flat_map(|combo| vals.iter().map(move |v| [combo.clone(), vec![(k.to_owned(), (*v).to_owned())]].concat()))
            .collect();
    }
    // Each combination's strategy config: the base (--config or defaults) with the swept keys;
    // a key the strategy does not have is an error before anything runs.
    let base_json = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)?;
            if p.extension().is_some_and(|e| e == "json") {
                serde_json::from_str::<serde_json::Value>(&text)?
            } else {
                serde_json::to_value(toml::from_str::<toml::Table>(&text)?)?
            }
        }
        None => serde_json::json!({}),
    };
    // `risk.<key>` (or `risk.exposure.<key>`) sweeps a risk limit over the --risk-config file.
    let risk_json = match &args.run.risk_config {
        Some(p) => {
            let text = std::fs::read_to_string(p)?;
            let mut v = if p.extension().is_some_and(|e| e == "json") {
                serde_json::from_str::<serde_json::Value>(&text)?
            } else {
                serde_json::to_value(toml::from_str::<toml::Table>(&text)?)?
            };
            if let Some(o) = v.as_object_mut() {
                o.remove("control_token");
            }
            v
        }
        None => serde_json::json!({}),
    };
    let mut setups = Vec::with_capacity(grid.len());
    for combo in &grid {
        let mut v = base_json.clone();
        let mut risk = risk_json.clone();
        for (k, val) in combo.iter().filter(|(k, _)| k.starts_with("risk.")) {
            let path: Vec<&str> = k.split('.').skip(1).collect();
            let num = sweep_value(val);
            let mut slot = &mut risk;
            for seg in &path {
                slot = &mut slot[*seg];
            }
            *slot = num.clone();
            if serde_json::from_value::<RiskConfig>(risk.clone()).is_err() {
                let mut slot = &mut risk;
                for seg in &path {
                    slot = &mut slot[*seg];
                }
                *slot = serde_json::Value::String(val.clone());
            }
        }
        let risk: RiskConfig = serde_json::from_value(risk).with_context(|| format!("risk limits for {combo:?}"))?;
        risk.validate().with_context(|| format!("risk limits for {combo:?}"))?;
        for (k, val) in combo.iter().filter(|(k, _)| !k.starts_with("risk.")) {
            // Numbers stay numbers unless the key is an exact decimal (a string in configs).
            let num = sweep_value(val);
            let as_num = serde_json::from_value::<SignalTakerConfig>(serde_json::json!({ k.as_str(): num.clone() }));
            v[k] = if as_num.is_ok() { num } else { serde_json::Value::String(val.clone()) };
        }
        let strategy: SignalTakerConfig =
            serde_json::from_value(v).with_context(|| format!("strategy config for {combo:?}"))?;
        let mut setup = base.clone();
        setup.strategy = StrategySetup::SignalTaker(strategy);
        setup.risk = risk;
        setup.audit = None;
        setup.journal_every_ns = None;
        setups.push(setup);
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(grid.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Report>>>> =
        grid.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= setups.len() {
                    break;
                }
                let r = run_backtest(args, &setups[i]).map(|o| o.report);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    let mut rows = Vec::with_capacity(grid.len());
    println!(
        "{:<48} {:>7} {:>8} {:>6} {:>16} {:>14} {:>14}",
        "params", "intents", "approved", "fills", "realized", "fees", "unrealized"
    );
    for (combo, slot) in grid.iter().zip(results) {
        let r = slot.into_inner().ok().flatten().context("sweep run did not finish")??;
        let params: String = combo.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        println!(
            "{params:<48} {:>7} {:>8} {:>6} {:>16} {:>14} {:>14}",
            r.orders.intents, r.orders.approved, r.orders.fills, r.pnl.realized, r.pnl.fees, r.pnl.unrealized
        );
        rows.push(serde_json::json!({
            "params": combo.iter().map(|(k, v)| (k.clone(), sweep_value(v))).collect::<serde_json::Map<_, _>>(),
            "orders": r.orders,
            "pnl": r.pnl,
            "events": r.events,
        }));
    }
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir)?;
        let p = dir.join("sweep.json");
        std::fs::write(&p, serde_json::to_string_pretty(&rows)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// A progress bar on stderr for imports (when stderr is a terminal): bytes of the input files
/// read so far, against their total size. Stops when dropped.
struct Progress {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(inputs: &[PathBuf]) -> Self {
        use std::io::IsTerminal as _;
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let total: u64 = inputs.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        if !std::io::stderr().is_terminal() || total == 0 {
            return Self { stop, thread: None };
        }
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let done = argus_backtest::import::BYTES_READ.load(Ordering::Relaxed).min(total);
                let frac = done as f64 / total as f64;
                let bar: String = (0..30).map(|i| if (i as f64) < frac * 30.0 { '#' } else { '-' }).collect();
                let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3) / 1e6;
                eprint!(
                    "\r[{bar}] {:5.1}%  {:.1}/{:.1} MB  {rate:.1} MB/s ",
                    frac * 100.0,
                    done as f64 / 1e6,
                    total as f64 / 1e6
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            eprintln!();
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

fn bench_replay(catalog: &Path, venue: &str, symbol: &str, repeat: usize, json: bool) -> Result<()> {
    use argus_backtest::throughput::replay_into_book;
    let mut runs = Vec::with_capacity(repeat);
    let mut counts = None;
    // Parts opened, of those decoded page by page, and rows that were not events.
    let mut parts = (0, 0, 0);
    for _ in 0..repeat.max(1) {
        let mut reader = argus_backtest::catalog::CatalogReader::open(catalog, venue, symbol, 0, u64::MAX)
            .with_context(|| format!("opening catalog {}", catalog.display()))?;
        let mut book = argus_core::OrderBook::new(5000);
        let t = std::time::Instant::now();
        let c = replay_into_book(reader.by_ref(), &mut book);
        runs.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(counts.is_none_or(|k| k == c), "two replays of the same files differ");
        counts = Some(c);
        let (opened, paged) = reader.parts_opened();
        parts = (opened, paged, reader.bad_rows);
    }
    let c = counts.context("no replay ran")?;
    runs.sort_by(f64::total_cmp);
    let (best, median) = (runs[0], runs[runs.len() / 2]);
    let out = serde_json::json!({
        "events": c.events(),
        "levels": c.levels,
        "trades": c.trades,
        "quotes": c.quotes,
        "runs": runs.len(),
        "best_seconds": best,
        "median_seconds": median,
        "events_per_sec_best": c.events() as f64 / best,
        "events_per_sec_median": c.events() as f64 / median,
        "peak_rss_bytes": peak_rss(),
        "book_digest": c.book_digest,
        "parts": parts.0,
        "parts_paged": parts.1,
        "bad_rows": parts.2,
    });
    if json {
        println!("{out}");
    } else {
        println!(
            "replay {} events ({} levels, {} trades, {} quotes): median {:.1} M events/s, best {:.1} M/s, peak RSS {} MiB",
            c.events(),
            c.levels,
            c.trades,
            c.quotes,
            c.events() as f64 / median / 1e6,
            c.events() as f64 / best / 1e6,
            peak_rss().unwrap_or(0) >> 20
        );
    }
    Ok(())
}

fn backtest(args: BacktestArgs) -> Result<()> {
    if args.run.record.is_some() {
        anyhow::bail!("--record is for live runs; a backtest already has its tape");
    }
    let cfg =
        pipeline_config(&args.run, pipeline::LivePlan { feeds: Vec::new(), trade: None, rules: Vec::new() }, false)?;
    let mut setup = cfg.hot_setup();
    anyhow::ensure!(
        setup.inference == argus_engine::pipeline::Inference::Inline,
        "--inference batched is for live runs: a backtest scores every trade inline, so the same inputs give the same outputs"
    );
    let capital = argus_core::Money(i128::from(
        argus_core::Price::parse(&args.capital).map_err(|e| anyhow::anyhow!("--capital: {e}"))?.units(),
    ));
    anyhow::ensure!(capital.0 > 0, "--capital must be positive");
    let every = match Latency::parse(&args.equity_every).context("--equity-every")? {
        Latency::Constant(ns) if ns > 0 => ns,
        _ => anyhow::bail!("--equity-every: a positive duration like 1s"),
    };
    if args.strategy == "scripted" {
        anyhow::ensure!(args.sweep.is_empty(), "--sweep sweeps signal_taker parameters; not with a script");
        let path = args.script.as_ref().context("--strategy scripted needs --script FILE")?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let orders = argus_strategies::parse_script(&text).map_err(|errors| {
            let shown: Vec<String> = errors.iter().take(20).map(ToString::to_string).collect();
            anyhow::anyhow!("{}: {} bad line(s):\n  {}", path.display(), errors.len(), shown.join("\n  "))
        })?;
        setup.strategy = StrategySetup::Scripted { orders, market_slippage_bps: args.market_slippage_bps };
    } else if let Some(p) = &args.config {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        setup.strategy = StrategySetup::SignalTaker(if p.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        } else {
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        });
    }
    if !args.sweep.is_empty() {
        return sweep(&args, &setup);
    }
    let Some(dir) = &args.report else {
        let outcome = run_backtest(&args, &setup)?;
        return finish(&outcome.report, args.run.report_json.as_deref());
    };
    setup.journal_every_ns = Some(every);
    let outcome = run_backtest(&args, &setup)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let journal = outcome.journal.context("the backtest kept no journal")?;
    journal.write_parquet(dir)?;
    let summary = argus_engine::journal::summary(&outcome.report, &journal, capital);
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    let latency: Vec<(String, f64)> = outcome
        .report
        .latency_ns
        .iter()
        .filter(|(_, l)| l.count > 0)
        .flat_map(|(k, l)| [(format!("{k} p50"), l.p50 as f64), (format!("{k} p99"), l.p99 as f64)])
        .collect();
    let title = format!("{} {}", args.venue, args.symbol);
    let path = dir.join("report.html");
    std::fs::write(&path, argus_engine::journal::html(&journal, &summary.performance, &title, &latency))
        .with_context(|| format!("writing {}", path.display()))?;
    finish(&outcome.report, Some(&dir.join("report.json")))
}

fn demo(args: DemoArgs) -> Result<()> {
    let rt = runtime()?;
    let path = args.recording.clone().unwrap_or_else(|| bundled(RECORDING));
    let frames = RecordingReader::read_all(&path).with_context(|| format!("reading recording {}", path.display()))?;
    let server = rt.block_on(ReplayServer::start(&frames, args.speed, Faults::default()))?;
    info!(addr = %server.addr(), frames = frames.len(), speed = ?args.speed, "replay server up");
    // The venue's trading rules, as the live run reads them from Binance.
    let info = bundled(EXCHANGE_INFO);
    server.set_exchange_info(std::fs::read_to_string(&info).with_context(|| format!("reading {}", info.display()))?);
    let feed = pipeline::FeedPlan::binance_spot("BTCUSDT", server.ws_base(), server.rest_base());
    let cfg =
        pipeline_config(&args.run, pipeline::LivePlan { feeds: vec![feed], trade: None, rules: Vec::new() }, false)?;
    let shutdown = shutdown_on_ctrl_c(&rt);
    let report = pipeline::run(&rt, &cfg, shutdown)?;
    drop(server);
    finish(&report, args.run.report_json.as_deref())
}

fn live(args: LiveArgs) -> Result<()> {
    let rt = runtime()?;
    let plan = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            pipeline::LiveFile::parse(&text).with_context(|| format!("live config {}", path.display()))?
        }
        None => pipeline::LivePlan {
            feeds: vec![pipeline::FeedPlan::binance_spot(&args.symbol, args.ws_base.clone(), args.rest_base.clone())],
            trade: None,
            rules: Vec::new(),
        },
    };
    let cfg = pipeline_config(&args.run, plan, true)?;
    let shutdown = shutdown_on_ctrl_c(&rt);
    let report = pipeline::run(&rt, &cfg, shutdown)?;
    finish(&report, args.run.report_json.as_deref())
}

/// Whole file or nothing: written beside, then renamed over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
