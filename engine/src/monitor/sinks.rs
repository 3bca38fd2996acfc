//! Where alerts go: stdout (JSON lines), a JSONL file, a webhook (HTTP POST, retried with
//! backoff, never dropped silently: what cannot be delivered is appended to a dead-letter file
//! and counted), and Prometheus counters.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use argus_feeds::chain::ChainFeedStats;
use argus_risk::onchain::{Alert, MonitorStats};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::warn;

use super::MonitorPlan;

pub const CHAIN_BLOCKS_TOTAL: &str = "argus_chain_blocks_total";
pub const CHAIN_TXS_TOTAL: &str = "argus_chain_transactions_total";
pub const CHAIN_ALERTS_TOTAL: &str = "argus_chain_alerts_total";
pub const CHAIN_RETRACTED_TOTAL: &str = "argus_chain_alerts_retracted_total";
pub const CHAIN_SUPPRESSED_TOTAL: &str = "argus_chain_alerts_suppressed_total";
pub const CHAIN_HEAD: &str = "argus_chain_head_block";
pub const CHAIN_BLOCK_LATENCY: &str = "argus_chain_block_latency_seconds";
pub const CHAIN_FEED_EVENTS_TOTAL: &str = "argus_chain_feed_events_total";
pub const CHAIN_FEED_CONNECTED: &str = "argus_chain_feed_connected";
pub const CHAIN_WEBHOOK_TOTAL: &str = "argus_chain_webhook_deliveries_total";

/// Webhook delivery settings (`[webhook_retry]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Tries per alert before it goes to the dead-letter file.
    pub attempts: u32,
    pub backoff_ms: u64,
    pub backoff_cap_ms: u64,
    pub timeout_ms: u64,
    /// Alerts waiting for delivery; when full, new alerts go straight to the dead-letter file.
    pub queue: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig { attempts: 6, backoff_ms: 200, backoff_cap_ms: 10_000, timeout_ms: 5_000, queue: 10_000 }
    }
}

/// What the webhook sink did.
#[derive(Debug, Default, Serialize)]
pub struct WebhookSummary {
    pub sent: u64,
    pub retries: u64,
    /// Written to the dead-letter file after the last attempt failed (or the queue was full).
    pub dead_lettered: u64,
    pub dead_letter_file: Option<String>,
}

#[derive(Debug, Default)]
struct WebhookCounts {
    sent: AtomicU64,
    retries: AtomicU64,
    dead: AtomicU64,
}

/// The monitor's Prometheus metrics.
#[derive(Debug, Clone)]
pub struct ChainMetrics {
    pub registry: Registry,
    blocks: IntCounterVec,
    txs: IntCounterVec,
    alerts: IntCounterVec,
    retracted: IntCounterVec,
    suppressed: IntCounterVec,
    head: IntGaugeVec,
    latency: HistogramVec,
    feed: IntCounterVec,
    connected: IntGaugeVec,
    webhook: IntCounterVec,
}

/// Feed counters already published (Prometheus counters only go up by deltas).
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedCounters([u64; 10]);

impl ChainMetrics {
    /// # Errors
    /// Registration failures (duplicate names: a programming error).
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let blocks = counter(CHAIN_BLOCKS_TOTAL, "Blocks processed by the monitor", &["chain"])?;
        let txs = counter(CHAIN_TXS_TOTAL, "Transactions processed by the monitor", &["chain"])?;
        let alerts =
            counter(CHAIN_ALERTS_TOTAL, "Alerts raised, by detector and severity", &["chain", "detector", "severity"])?;
        let retracted =
            counter(CHAIN_RETRACTED_TOTAL, "Alerts retracted because their block was orphaned", &["chain"])?;
        let suppressed = counter(CHAIN_SUPPRESSED_TOTAL, "Alerts dropped by the suppression list", &["chain"])?;
        let feed = counter(
            CHAIN_FEED_EVENTS_TOTAL,
            "Chain feed events by kind (heads, blocks, backfilled, reorgs, orphaned, reconnects, rpc_errors)",
            &["rpc", "kind"],
        )?;
        let webhook =
            counter(CHAIN_WEBHOOK_TOTAL, "Webhook deliveries by outcome (sent, retry, dead_letter)", &["outcome"])?;
        let head = IntGaugeVec::new(Opts::new(CHAIN_HEAD, "Last block processed"), &["chain"])?;
        registry.register(Box::new(head.clone()))?;
        let connected =
            IntGaugeVec::new(Opts::new(CHAIN_FEED_CONNECTED, "1 while the feed's websocket is up"), &["rpc"])?;
        registry.register(Box::new(connected.clone()))?;
        let latency = HistogramVec::new(
            HistogramOpts::new(CHAIN_BLOCK_LATENCY, "From receiving a block to its alerts written")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            &["chain"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        Ok(ChainMetrics {
            registry,
            blocks,
            txs,
            alerts,
            retracted,
            suppressed,
            head,
            latency,
            feed,
            connected,
            webhook,
        })
    }

    pub fn observe_block(&self, chain: u64, number: u64, took_ns: u64, txs: usize) {
        let c = chain.to_string();
        self.blocks.with_label_values(&[&c]).inc();
        self.txs.with_label_values(&[&c]).inc_by(txs as u64);
        self.head.with_label_values(&[&c]).set(i64::try_from(number).unwrap_or(i64::MAX));
        self.latency.with_label_values(&[&c]).observe(took_ns as f64 / 1e9);
    }

    pub fn observe_alert(&self, a: &Alert) {
        self.alerts.with_label_values(&[&a.chain_id.to_string(), a.detector, a.severity.as_str()]).inc();
    }

    pub fn observe_monitor(&self, chain: u64, s: &MonitorStats) {
        let c = chain.to_string();
        let set = |v: &IntCounterVec, total: u64| {
            let m = v.with_label_values(&[&c]);
            m.inc_by(total.saturating_sub(m.get()));
        };
        set(&self.retracted, s.retracted);
        set(&self.suppressed, s.suppressed);
    }

    pub fn observe_feed(&self, rpc: &str, s: &ChainFeedStats, prev: &mut FeedCounters) {
        let now = [
            s.heads.load(Ordering::Relaxed),
            s.blocks.load(Ordering::Relaxed),
            s.backfilled.load(Ordering::Relaxed),
            s.reorgs.load(Ordering::Relaxed),
            s.orphaned.load(Ordering::Relaxed),
            s.reconnects.load(Ordering::Relaxed),
            s.rpc_errors.load(Ordering::Relaxed),
            s.pending_announced.load(Ordering::Relaxed),
            s.pending_delivered.load(Ordering::Relaxed),
            s.pending_fetches.load(Ordering::Relaxed),
        ];
        let kinds = [
            "heads",
            "blocks",
            "backfilled",
            "reorgs",
            "orphaned",
            "reconnects",
            "rpc_errors",
            "pending_announced",
            "pending_delivered",
            "pending_fetches",
        ];
        for (i, kind) in kinds.iter().enumerate() {
            self.feed.with_label_values(&[rpc, kind]).inc_by(now[i].saturating_sub(prev.0[i]));
        }
        prev.0 = now;
        self.connected.with_label_values(&[rpc]).set(i64::try_from(s.connected.load(Ordering::Relaxed)).unwrap_or(0));
    }
}

/// Every configured sink.
#[derive(Debug)]
pub struct Sinks {
    stdout: bool,
    file: Option<(PathBuf, BufWriter<File>)>,
    webhook: Option<(mpsc::Sender<String>, tokio::task::JoinHandle<()>)>,
    dead_letter: PathBuf,
    counts: Arc<WebhookCounts>,
    metrics: ChainMetrics,
}

impl Sinks {
    /// Opens the file (appending) and starts the webhook task.
    ///
    /// # Errors
    /// The alerts file cannot be opened, or the webhook URL is not http(s).
    pub fn open(plan: &MonitorPlan, rt: &tokio::runtime::Runtime, metrics: ChainMetrics) -> Result<Self> {
        let file = match &plan.alerts_jsonl {
            Some(p) => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("opening the alerts file {}", p.display()))?;
                Some((p.clone(), BufWriter::new(f)))
            }
            None => None,
        };
        let counts = Arc::new(WebhookCounts::default());
        let webhook = match &plan.webhook {
            Some(url) => {
                anyhow::ensure!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "--webhook must be an http(s) URL: {url}"
                );
                let (tx, rx) = mpsc::channel(plan.webhook_retry.queue.max(1));
                let task = rt.spawn(deliver(
                    url.clone(),
                    rx,
                    plan.webhook_retry.clone(),
                    plan.dead_letter(),
                    counts.clone(),
                    metrics.clone(),
                ));
                Some((tx, task))
            }
            None => None,
        };
        Ok(Sinks { stdout: !plan.quiet, file, webhook, dead_letter: plan.dead_letter(), counts, metrics })
    }

    /// Writes one alert to every sink.
    ///
    /// # Errors
    /// The alerts file failed (the alert is printed on stderr so it is not lost).
    pub fn write(&mut self, a: &Alert) -> Result<()> {
        let line = serde_json::to_string(a)?;
        self.metrics.observe_alert(a);
        if self.stdout {
            println!("{line}");
        }
        if let Some((path, f)) = &mut self.file {
            if let Err(e) = writeln!(f, "{line}") {
                eprintln!("{line}");
                return Err(e)
                    .with_context(|| format!("writing the alerts file {} (alert printed on stderr)", path.display()));
            }
        }
        if let Some((tx, _)) = &self.webhook {
            match tx.try_send(line) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(body) | mpsc::error::TrySendError::Closed(body)) => {
                    warn!("webhook queue full: alert written to the dead-letter file");
                    dead_letter(&self.dead_letter, &body, &self.counts, &self.metrics);
                }
            }
        }
        Ok(())
    }

    /// Flushes the file after each block, so a crash loses no written block's alerts.
    ///
    /// # Errors
    /// The alerts file failed.
    pub fn flush(&mut self) -> Result<()> {
        if let Some((path, f)) = &mut self.file {
            f.flush().with_context(|| format!("flushing {}", path.display()))?;
        }
        Ok(())
    }

    /// Waits for the webhook task to deliver (or dead-letter) everything queued.
    ///
    /// # Errors
    /// The alerts file failed at its last flush.
    pub fn close(mut self, rt: &tokio::runtime::Runtime) -> Result<WebhookSummary> {
        self.flush()?;
        let had_webhook = self.webhook.is_some();
        if let Some((tx, task)) = self.webhook.take() {
            drop(tx);
            let _ = rt.block_on(task);
        }
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Ok(WebhookSummary {
            sent: g(&self.counts.sent),
            retries: g(&self.counts.retries),
            dead_lettered: g(&self.counts.dead),
            dead_letter_file: had_webhook.then(|| self.dead_letter.display().to_string()),
        })
    }
}

fn dead_letter(path: &Path, body: &str, counts: &WebhookCounts, metrics: &ChainMetrics) {
    counts.dead.fetch_add(1, Ordering::Relaxed);
    metrics.webhook.with_label_values(&["dead_letter"]).inc();
    let written = OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| writeln!(f, "{body}"));
    if let Err(e) = written {
        // Last resort: the alert goes to stderr rather than nowhere.
        eprintln!("dead-letter file {} failed ({e}); undelivered alert: {body}", path.display());
    }
}

async fn deliver(
    url: String,
    mut rx: mpsc::Receiver<String>,
    cfg: WebhookConfig,
    dead: PathBuf,
    counts: Arc<WebhookCounts>,
    metrics: ChainMetrics,
) {
    let timeout = Duration::from_millis(cfg.timeout_ms);
    while let Some(body) = rx.recv().await {
        let mut delivered = false;
        for attempt in 0..cfg.attempts.max(1) {
            match argus_feeds::http::post_json(&url, body.as_bytes(), timeout).await {
                Ok(()) => {
                    delivered = true;
                    break;
                }
                Err(error) => {
                    warn!(%url, attempt, %error, "webhook delivery failed");
                    if attempt + 1 < cfg.attempts {
                        counts.retries.fetch_add(1, Ordering::Relaxed);
                        metrics.webhook.with_label_values(&["retry"]).inc();
                        let wait = argus_feeds::binance::client::backoff(
                            Duration::from_millis(cfg.backoff_ms),
                            Duration::from_millis(cfg.backoff_cap_ms),
                            attempt,
                        );
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        if delivered {
            counts.sent.fetch_add(1, Ordering::Relaxed);
            metrics.webhook.with_label_values(&["sent"]).inc();
        } else {
            dead_letter(&dead, &body, &counts, &metrics);
        }
    }
}
