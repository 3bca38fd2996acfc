//! `argus monitor`: chain feeds (one tokio task per JSON-RPC websocket) -> a bounded queue ->
//! the monitor thread (detectors per chain, the ML scorer) -> sinks (stdout JSONL, a file, a
//! webhook with retries and a dead-letter file, Prometheus counters).
//!
//! Nothing is lost silently: the feeds wait when the monitor is behind; a webhook alert that
//! cannot be delivered after its retries, or finds the delivery queue full, goes to the
//! dead-letter file and is counted; a file sink that fails stops the run with the alert on stderr.

pub mod bench;
pub mod labels;
mod scorer;
mod sinks;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use argus_core::ChainEvent;
use argus_feeds::chain::{run_chain_feed, ChainFeedConfig, ChainFeedStats};
use argus_risk::onchain::{Alert, LabelSet, Monitor, MonitorConfig, MonitorStats};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

pub use scorer::{AddressModelScorer, ModelScorer};
pub use sinks::{ChainMetrics, Sinks, WebhookConfig};

/// Everything a run needs: `argus monitor --config FILE` (TOML) with the command line's flags
/// merged over it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorPlan {
    pub rpc: Vec<String>,
    pub labels: Vec<PathBuf>,
    pub suppress: Vec<PathBuf>,
    pub model: Option<PathBuf>,
    /// Address model over the Kaggle aggregates (e.g. models/zoo/eth_address_fraud).
    pub address_model: Option<PathBuf>,
    pub alerts_jsonl: Option<PathBuf>,
    pub webhook: Option<String>,
    /// Default: `argus-webhook-undelivered.jsonl` in the working directory.
    pub webhook_dead_letter: Option<PathBuf>,
    pub from_block: Option<u64>,
    pub to_block: Option<u64>,
    pub chain_id: Option<u64>,
    pub metrics_addr: Option<SocketAddr>,
    /// Do not print alerts on stdout.
    pub quiet: bool,
    /// Also check pending transactions (early warnings, `"pending": true`).
    pub pending: bool,
    pub monitor: MonitorConfig,
    pub webhook_retry: WebhookConfig,
}

impl MonitorPlan {
    pub fn dead_letter(&self) -> PathBuf {
        self.webhook_dead_letter.clone().unwrap_or_else(|| PathBuf::from("argus-webhook-undelivered.jsonl"))
    }
}

/// What the run did, printed as JSON on stderr at the end.
#[derive(Debug, Serialize)]
pub struct MonitorSummary {
    pub labels: usize,
    pub suppressed_addresses: usize,
    pub chains: BTreeMap<u64, MonitorStats>,
    pub alerts_by_detector: BTreeMap<String, u64>,
    pub feeds: Vec<FeedSummary>,
    /// From the feed receiving a block to its alerts written, per block (ms).
    pub block_latency_ms: Latency,
    pub webhook: sinks::WebhookSummary,
}

#[derive(Debug, Serialize)]
pub struct FeedSummary {
    pub rpc: String,
    pub chain_id: u64,
    pub blocks: u64,
    pub backfilled: u64,
    pub heads: u64,
    pub reorgs: u64,
    pub orphaned: u64,
    pub reconnects: u64,
    pub rpc_errors: u64,
    pub decode_errors: u64,
    pub last_block: u64,
    /// Pending transactions announced by the node, and those fetched and checked (`--pending`).
    pub pending_announced: u64,
    pub pending_delivered: u64,
    /// Requests that fetched announced hashes (a batch counts once).
    pub pending_fetches: u64,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Default)]
pub struct Latency {
    pub blocks: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// A model instance for one more chain: the one loaded at start-up first, then fresh loads.
fn instance<T>(first: &mut Option<T>, dir: Option<&Path>, load: fn(&Path) -> Result<T>) -> Result<Option<T>> {
    match (first.take(), dir) {
        (Some(s), _) => Ok(Some(s)),
        (None, Some(dir)) => load(dir).map(Some),
        (None, None) => Ok(None),
    }
}

fn now_ns() -> u64 {
    argus_feeds::binance::client::now().0
}

/// Runs the monitor until every feed ends (`to_block`), or `shutdown` turns true.
///
/// # Errors
/// Unreadable label packs or model, a sink that cannot be opened or fails, a metrics address
/// that cannot be bound, or a feed that fails terminally (wrong chain id).
pub fn run(
    plan: &MonitorPlan,
    rt: &tokio::runtime::Runtime,
    shutdown: watch::Receiver<bool>,
) -> Result<MonitorSummary> {
    if let Err(errs) = plan.monitor.validate() {
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        anyhow::bail!("invalid monitor config:\n  {}", text.join("\n  "));
    }
    anyhow::ensure!(!plan.rpc.is_empty(), "no --rpc endpoint given");
    let mut label_set = LabelSet::default();
    for p in &plan.labels {
        let r = labels::load_labels(p, &mut label_set)?;
        info!(file = %r.file, addresses = r.addresses, other_chains = r.other_chains, bad = r.bad, "label pack loaded");
    }
    let mut suppress = HashSet::new();
    for p in &plan.suppress {
        let r = labels::load_suppression(p, &mut suppress)?;
        info!(file = %r.file, addresses = r.addresses, "suppression list loaded");
    }
    // Loaded once now to fail early; each chain then gets its own instance.
    let mut first_model = match &plan.model {
        Some(dir) => Some(ModelScorer::load(dir)?),
        None => None,
    };
    let mut first_address_model = match &plan.address_model {
        Some(dir) => Some(AddressModelScorer::load(dir)?),
        None => None,
    };
    let metrics = ChainMetrics::new()?;
    if let Some(addr) = plan.metrics_addr {
        let (bound, _task) = rt
            .block_on(crate::metrics::serve(addr, metrics.registry.clone()))
            .with_context(|| format!("binding the metrics endpoint {addr}"))?;
        info!(%bound, "metrics at /metrics");
    }
    let mut sinks = Sinks::open(plan, rt, metrics.clone())?;

    let (tx, rx) = crossbeam_channel::bounded::<ChainEvent>(1024);
    let mut feeds = Vec::new();
    for url in &plan.rpc {
        let mut cfg = ChainFeedConfig::new(url);
        cfg.from_block = plan.from_block;
        cfg.to_block = plan.to_block;
        cfg.expect_chain_id = plan.chain_id;
        cfg.reorg_depth = plan.monitor.reorg_depth.max(2);
        cfg.pending = plan.pending;
        let stats = Arc::new(ChainFeedStats::default());
        let task = rt.spawn(run_chain_feed(cfg, tx.clone(), stats.clone(), shutdown.clone()));
        feeds.push((url.clone(), stats, task));
    }
    drop(tx);

    let mut monitors: HashMap<u64, Monitor> = HashMap::new();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut by_detector: BTreeMap<String, u64> = BTreeMap::new();
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
    let mut last_publish = Instant::now();
    let mut published = vec![sinks::FeedCounters::default(); feeds.len()];
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(ev) => {
                let chain_id = match &ev {
                    ChainEvent::Block(b) => b.chain_id,
                    ChainEvent::Orphaned { chain_id, .. } => *chain_id,
                    ChainEvent::Pending(p) => p.chain_id,
                };
                let m = match monitors.entry(chain_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let mut m = Monitor::new(plan.monitor.clone(), label_set.clone(), suppress.clone());
                        if let Some(s) = instance(&mut first_model, plan.model.as_deref(), ModelScorer::load)? {
                            m = m.with_scorer(Box::new(s));
                        }
                        let address = plan.address_model.as_deref();
                        if let Some(s) = instance(&mut first_address_model, address, AddressModelScorer::load)? {
                            m = m.with_address_scorer(Box::new(s));
                        }
                        e.insert(m)
                    }
                };
                alerts.clear();
                m.on_event(&ev, &mut alerts);
                for a in &alerts {
                    *by_detector.entry(a.detector.to_owned()).or_default() += 1;
                    sinks.write(a)?;
                }
                sinks.flush()?;
                if let ChainEvent::Block(b) = &ev {
                    let took = now_ns().saturating_sub(b.recv_ns);
                    let _ = hist.record(took.max(1));
                    metrics.observe_block(b.chain_id, b.number, took, b.txs.len());
                }
                metrics.observe_monitor(chain_id, &m.stats());
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if last_publish.elapsed() > Duration::from_millis(500) {
            for ((url, stats, _), prev) in feeds.iter().zip(published.iter_mut()) {
                metrics.observe_feed(url, stats, prev);
            }
            last_publish = Instant::now();
        }
    }
    for ((url, stats, _), prev) in feeds.iter().zip(published.iter_mut()) {
        metrics.observe_feed(url, stats, prev);
    }
    let webhook = sinks.close(rt)?;
    let mut feed_summaries = Vec::new();
    let mut terminal = None;
    for (url, stats, task) in feeds {
        let error = match rt.block_on(task) {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                warn!(rpc = %url, error = %e, "chain feed ended with an error");
                if e.is_terminal() || matches!(e, argus_feeds::FeedError::GaveUp { .. }) {
                    terminal.get_or_insert_with(|| format!("{url}: {e}"));
                }
                Some(e.to_string())
            }
            Err(e) => Some(format!("feed task failed: {e}")),
        };
        let g = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        feed_summaries.push(FeedSummary {
            rpc: url,
            chain_id: g(&stats.chain_id),
            blocks: g(&stats.blocks),
            backfilled: g(&stats.backfilled),
            heads: g(&stats.heads),
            reorgs: g(&stats.reorgs),
            orphaned: g(&stats.orphaned),
            reconnects: g(&stats.reconnects),
            rpc_errors: g(&stats.rpc_errors),
            decode_errors: g(&stats.decode_errors),
            last_block: g(&stats.last_block),
            pending_announced: g(&stats.pending_announced),
            pending_delivered: g(&stats.pending_delivered),
            pending_fetches: g(&stats.pending_fetches),
            error,
        });
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    let summary = MonitorSummary {
        labels: label_set.len(),
        suppressed_addresses: suppress.len(),
        chains: monitors.iter().map(|(k, m)| (*k, m.stats())).collect(),
        alerts_by_detector: by_detector,
        feeds: feed_summaries,
        block_latency_ms: Latency {
            blocks: hist.len(),
            p50: ms(hist.value_at_quantile(0.5)),
            p99: ms(hist.value_at_quantile(0.99)),
            max: ms(hist.max()),
        },
        webhook,
    };
    if let Some(t) = terminal {
        eprintln!("{}", serde_json::to_string(&summary)?);
        anyhow::bail!("chain feed failed: {t}");
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_example_config_parses_and_validates() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitor.example.toml");
        let plan: MonitorPlan = toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        assert_eq!(plan.rpc, ["ws://127.0.0.1:8545"]);
        assert_eq!(plan.monitor.sweep_victims, 3);
        assert_eq!(plan.webhook_retry.attempts, 6);
        plan.monitor.validate().unwrap();
        let typo = toml::from_str::<MonitorPlan>("[monitor]\nsweep_victim = 3\n").unwrap_err().to_string();
        assert!(typo.contains("sweep_victim"), "{typo}");
    }
}
