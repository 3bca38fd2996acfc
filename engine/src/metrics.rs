//! Prometheus metrics: names defined once, a registry, per-batch publishing from the hot thread,
//! and a tiny `/metrics` HTTP endpoint.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use prometheus::core::Collector;
use prometheus::proto;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::latency::{Stage, StageBuckets, BUCKET_BOUNDS_NS};

pub const FEED_FRAMES_TOTAL: &str = "argus_feed_frames_total";
pub const FEED_MALFORMED_TOTAL: &str = "argus_feed_malformed_frames_total";
pub const FEED_DISCONNECTS_TOTAL: &str = "argus_feed_disconnects_total";
pub const FEED_GAPS_TOTAL: &str = "argus_feed_book_gaps_total";
pub const FEED_SNAPSHOTS_TOTAL: &str = "argus_feed_snapshots_total";
pub const QUEUE_DEPTH: &str = "argus_queue_depth_events";
pub const QUEUE_FULL_TOTAL: &str = "argus_queue_full_waits_total";
pub const QUEUE_DROPPED_TOTAL: &str = "argus_queue_dropped_events_total";
pub const BOOK_UPDATES_TOTAL: &str = "argus_book_updates_total";
pub const BOOK_LEVELS: &str = "argus_book_levels";
pub const MODEL_SCORES_TOTAL: &str = "argus_model_scores_total";
pub const MODEL_ERRORS_TOTAL: &str = "argus_model_errors_total";
pub const ORDERS_TOTAL: &str = "argus_orders_total";
pub const FILLS_TOTAL: &str = "argus_fills_total";
pub const POSITION: &str = "argus_position_base_nano";
pub const PNL: &str = "argus_pnl_quote_nano";
pub const STAGE_LATENCY: &str = "argus_stage_latency_seconds";
pub const RISK_STATE: &str = "argus_risk_state";
pub const AUDIT_DROPPED_TOTAL: &str = "argus_audit_dropped_total";
pub const RISK_STATE_CHANGES_TOTAL: &str = "argus_risk_state_changes_total";
pub const RISK_EXPOSURE: &str = "argus_risk_exposure_quote_nano";
pub const RISK_LIVE_ORDERS: &str = "argus_risk_live_orders";
pub const VENUE_CONNECTED: &str = "argus_venue_connected";
pub const VENUE_FRAMES_TOTAL: &str = "argus_venue_frames_total";
pub const VENUE_DECODE_ERRORS_TOTAL: &str = "argus_venue_decode_errors_total";
pub const VENUE_GAPS_TOTAL: &str = "argus_venue_gaps_total";
pub const VENUE_RESYNCS_TOTAL: &str = "argus_venue_resyncs_total";
pub const VENUE_CHECKSUM_FAILURES_TOTAL: &str = "argus_venue_checksum_failures_total";
pub const VENUE_RECONNECTS_TOTAL: &str = "argus_venue_reconnects_total";
pub const VENUE_EVENTS_TOTAL: &str = "argus_venue_events_total";
pub const VENUE_STALE_TOTAL: &str = "argus_venue_stale_instruments_total";
pub const VENUE_PLANNED_RECONNECTS_TOTAL: &str = "argus_venue_planned_reconnects_total";
pub const VENUE_FRAME_TO_QUEUE: &str = "argus_venue_frame_to_queue_seconds";
const VENUE_FRAME_TO_QUEUE_HELP: &str = "From a frame read off the socket to its events in the hot thread's queue";

/// Every metric of a run.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub frames: IntCounterVec,
    pub malformed: IntCounter,
    pub disconnects: IntCounter,
    pub gaps: IntCounter,
    pub snapshots: IntCounter,
    pub queue_depth: IntGauge,
    pub queue_full: IntCounter,
    pub queue_dropped: IntCounter,
    pub book_updates: IntCounter,
    pub book_levels: IntGaugeVec,
    pub model_scores: IntCounter,
    pub model_errors: IntCounter,
    pub orders: IntCounterVec,
    pub fills: IntCounter,
    pub position: IntGauge,
    pub pnl: IntGaugeVec,
    pub risk_state: IntGauge,
    pub risk_changes: IntCounter,
    pub risk_exposure: IntGaugeVec,
    pub risk_live_orders: IntGaugeVec,
    pub audit_dropped: IntCounter,
    pub latency: Arc<Mutex<Vec<StageBuckets>>>,
}

impl Metrics {
    /// # Errors
    /// Duplicate or invalid metric definitions (a programming error).
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let frames = IntCounterVec::new(Opts::new(FEED_FRAMES_TOTAL, "Websocket frames received, by type"), &["type"])?;
        registry.register(Box::new(frames.clone()))?;
        let book_levels = IntGaugeVec::new(Opts::new(BOOK_LEVELS, "Levels in the book, by side"), &["side"])?;
        registry.register(Box::new(book_levels.clone()))?;
        let orders = IntCounterVec::new(Opts::new(ORDERS_TOTAL, "Order intents by risk outcome"), &["outcome"])?;
        registry.register(Box::new(orders.clone()))?;
        let pnl = IntGaugeVec::new(Opts::new(PNL, "PnL in 1e-9 quote units, by kind"), &["kind"])?;
        registry.register(Box::new(pnl.clone()))?;
        let risk_exposure = IntGaugeVec::new(
            Opts::new(RISK_EXPOSURE, "Notional exposure in 1e-9 quote units at the last marks, all venues"),
            &["kind"],
        )?;
        registry.register(Box::new(risk_exposure.clone()))?;
        let risk_live_orders =
            IntGaugeVec::new(Opts::new(RISK_LIVE_ORDERS, "Our orders the venues may still fill"), &["state"])?;
        registry.register(Box::new(risk_live_orders.clone()))?;
        let latency = Arc::new(Mutex::new(vec![StageBuckets::default(); Stage::ALL.len()]));
        registry.register(Box::new(LatencyCollector::new(Arc::clone(&latency))?))?;
        Ok(Self {
            frames,
            malformed: counter(FEED_MALFORMED_TOTAL, "Frames that failed to decode")?,
            disconnects: counter(FEED_DISCONNECTS_TOTAL, "Lost websocket connections")?,
            gaps: counter(FEED_GAPS_TOTAL, "Depth sequence gaps (each forces a resync)")?,
            snapshots: counter(FEED_SNAPSHOTS_TOTAL, "REST depth snapshots fetched")?,
            queue_depth: gauge(QUEUE_DEPTH, "Events waiting in the feed -> hot thread queue")?,
            queue_full: counter(QUEUE_FULL_TOTAL, "Times a feed waited on a full queue")?,
            queue_dropped: counter(QUEUE_DROPPED_TOTAL, "Events dropped between feed and hot thread")?,
            book_updates: counter(BOOK_UPDATES_TOTAL, "Book deltas applied")?,
            book_levels,
            model_scores: counter(MODEL_SCORES_TOTAL, "Model inferences")?,
            model_errors: counter(MODEL_ERRORS_TOTAL, "Model inferences that failed")?,
            orders,
            fills: counter(FILLS_TOTAL, "Paper fills")?,
            position: gauge(POSITION, "Position in 1e-9 base units")?,
            pnl,
            risk_state: gauge(RISK_STATE, "Kill switch: 0 active, 1 reducing, 2 halted")?,
            risk_changes: counter(RISK_STATE_CHANGES_TOTAL, "Kill switch state changes")?,
            risk_exposure,
            risk_live_orders,
            audit_dropped: counter(AUDIT_DROPPED_TOTAL, "Risk decisions not audited (queue full or file failed)")?,
            latency,
            registry,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        render(&self.registry)
    }
}

/// The text exposition of every metric in `registry`.
pub fn render(registry: &Registry) -> Vec<u8> {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for valid families.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    buf
}

/// Per-venue feed health, read from the feeds' own atomic counters at scrape time (nothing to
/// publish from the hot thread). Venues with several connections (one per Binance symbol) share
/// one set of counters.
#[derive(Debug)]
pub struct VenueCollector {
    feeds: Vec<(String, Arc<argus_feeds::FeedStats>)>,
    descs: Vec<prometheus::core::Desc>,
}

/// Name, help, and whether the value is a gauge.
type VenueFamily = (&'static str, &'static str, bool, fn(&argus_feeds::FeedStats) -> u64);

const VENUE_FAMILIES: [VenueFamily; 10] = [
    (VENUE_CONNECTED, "1 while the venue's websocket is connected", true, |s| s.connected.load(Ordering::Relaxed)),
    (VENUE_FRAMES_TOTAL, "Websocket frames received", false, argus_feeds::FeedStats::frames),
    (VENUE_DECODE_ERRORS_TOTAL, "Frames that failed to decode", false, |s| s.malformed.load(Ordering::Relaxed)),
    (VENUE_GAPS_TOTAL, "Book sequence gaps", false, |s| s.gaps.load(Ordering::Relaxed)),
    (VENUE_RESYNCS_TOTAL, "Books rebuilt from a fresh snapshot after a gap or checksum failure", false, |s| {
        s.resyncs.load(Ordering::Relaxed)
    }),
    (VENUE_CHECKSUM_FAILURES_TOTAL, "Book checksums that did not match", false, |s| {
        s.checksum_failures.load(Ordering::Relaxed)
    }),
    (VENUE_RECONNECTS_TOTAL, "Reconnections after a lost or closed connection", false, |s| {
        s.reconnects.load(Ordering::Relaxed)
    }),
    (VENUE_EVENTS_TOTAL, "Events queued to the hot thread", false, |s| s.events_sent.load(Ordering::Relaxed)),
    (VENUE_STALE_TOTAL, "Instruments silent past stale_after on a live connection (each reconnects)", false, |s| {
        s.stale_instruments.load(Ordering::Relaxed)
    }),
    (
        VENUE_PLANNED_RECONNECTS_TOTAL,
        "Connections replaced before the venue's lifetime limit, the successor opened first (book kept)",
        false,
        |s| s.planned_reconnects.load(Ordering::Relaxed),
    ),
];

impl VenueCollector {
    /// # Errors
    /// Invalid metric definitions (a programming error).
    pub fn new(feeds: Vec<(String, Arc<argus_feeds::FeedStats>)>) -> prometheus::Result<Self> {
        let descs = VENUE_FAMILIES
            .iter()
            .map(|(name, help, _, _)| (*name, *help))
            .chain([(VENUE_FRAME_TO_QUEUE, VENUE_FRAME_TO_QUEUE_HELP)])
            .map(|(name, help)| {
                prometheus::core::Desc::new(
                    name.to_owned(),
                    help.to_owned(),
                    vec!["venue".to_owned()],
                    Default::default(),
                )
            })
            .collect::<prometheus::Result<_>>()?;
        Ok(Self { feeds, descs })
    }
}

impl Collector for VenueCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        VENUE_FAMILIES
            .iter()
            .map(|(name, help, gauge, read)| {
                let mut mf = proto::MetricFamily::default();
                mf.set_name((*name).to_owned());
                mf.set_help((*help).to_owned());
                mf.set_field_type(if *gauge { proto::MetricType::GAUGE } else { proto::MetricType::COUNTER });
                for (venue, stats) in &self.feeds {
                    let mut m = venue_metric(venue);
                    let v = read(stats) as f64;
                    if *gauge {
                        let mut g = proto::Gauge::default();
                        g.set_value(v);
                        m.set_gauge(g);
                    } else {
                        let mut c = proto::Counter::default();
                        c.set_value(v);
                        m.set_counter(c);
                    }
                    mf.mut_metric().push(m);
                }
                mf
            })
            .chain([self.frame_to_queue()])
            .collect()
    }
}

impl VenueCollector {
    fn frame_to_queue(&self) -> proto::MetricFamily {
        let mut mf = proto::MetricFamily::default();
        mf.set_name(VENUE_FRAME_TO_QUEUE.to_owned());
        mf.set_help(VENUE_FRAME_TO_QUEUE_HELP.to_owned());
        mf.set_field_type(proto::MetricType::HISTOGRAM);
        for (venue, stats) in &self.feeds {
            let snap = stats.frame_to_queue.snapshot();
            let mut h = proto::Histogram::default();
            h.set_sample_count(snap.count());
            h.set_sample_sum(snap.sum_ns as f64 / 1e9);
            let mut cumulative = 0;
            let buckets = argus_feeds::stats::LATENCY_BOUNDS_NS
                .iter()
                .zip(snap.counts)
                .map(|(bound, count)| {
                    cumulative += count;
                    let mut bucket = proto::Bucket::default();
                    bucket.set_upper_bound(*bound as f64 / 1e9);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect();
            h.set_bucket(buckets);
            let mut m = venue_metric(venue);
            m.set_histogram(h);
            mf.mut_metric().push(m);
        }
        mf
    }
}

/// A sample labelled with its venue.
fn venue_metric(venue: &str) -> proto::Metric {
    let mut label = proto::LabelPair::default();
    label.set_name("venue".to_owned());
    label.set_value(venue.to_owned());
    let mut m = proto::Metric::default();
    m.set_label(vec![label]);
    m
}

/// Exposes the hot thread's stage buckets (published per batch) as Prometheus histograms.
#[derive(Debug)]
struct LatencyCollector {
    shared: Arc<Mutex<Vec<StageBuckets>>>,
    desc: prometheus::core::Desc,
}

impl LatencyCollector {
    fn new(shared: Arc<Mutex<Vec<StageBuckets>>>) -> prometheus::Result<Self> {
        let desc = prometheus::core::Desc::new(
            STAGE_LATENCY.to_owned(),
            "Per-stage latency of the pipeline".to_owned(),
            vec!["stage".to_owned()],
            Default::default(),
        )?;
        Ok(Self { shared, desc })
    }
}

impl Collector for LatencyCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let stages = match self.shared.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut mf = proto::MetricFamily::default();
        mf.set_name(STAGE_LATENCY.to_owned());
        mf.set_help("Per-stage latency of the pipeline".to_owned());
        mf.set_field_type(proto::MetricType::HISTOGRAM);
        for (stage, b) in Stage::ALL.iter().zip(stages.iter()) {
            let mut h = proto::Histogram::default();
            h.set_sample_count(b.count);
            h.set_sample_sum(b.sum_ns as f64 / 1e9);
            let mut cumulative = 0;
            let mut buckets = Vec::with_capacity(BUCKET_BOUNDS_NS.len());
            for (i, bound) in BUCKET_BOUNDS_NS.iter().enumerate() {
                cumulative += b.counts[i];
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(*bound as f64 / 1e9);
                bucket.set_cumulative_count(cumulative);
                buckets.push(bucket);
            }
            h.set_bucket(buckets);
            let mut label = proto::LabelPair::default();
            label.set_name("stage".to_owned());
            label.set_value(stage.metric_label().to_owned());
            let mut m = proto::Metric::default();
            m.set_label(vec![label]);
            m.set_histogram(h);
            mf.mut_metric().push(m);
        }
        vec![mf]
    }
}

/// Serves `GET /metrics` until the task is dropped.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(addr: SocketAddr, registry: Registry) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let registry = registry.clone();
            tokio::spawn(async move {
                // The request head may arrive in several segments: read to its blank line
                // (bounded in size and time, so a slow or endless client costs nothing).
                let mut buf = [0_u8; 8192];
                let mut n = 0;
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
                while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout_at(deadline, s.read(&mut buf[n..])).await {
                        Ok(Ok(k)) if k > 0 => n += k,
                        _ => break,
                    }
                }
                let req = String::from_utf8_lossy(&buf[..n]);
                let (status, body, ctype) = if req.starts_with("GET /metrics") {
                    ("200 OK", render(&registry), "text/plain; version=0.0.4")
                } else {
                    ("404 Not Found", b"try /metrics\n".to_vec(), "text/plain")
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Ok((bound, handle))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_request_head_split_across_segments_is_served() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let registry = Registry::new();
        let c = prometheus::IntCounter::new("argus_test_total", "a test counter").unwrap();
        c.inc_by(7);
        registry.register(Box::new(c)).unwrap();
        let (addr, _task) = rt.block_on(serve("127.0.0.1:0".parse().unwrap(), registry)).unwrap();
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            s.write_all(b"GET /metr").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            s.write_all(b"ics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        });
        let out = rt.block_on(async { tokio::task::spawn_blocking(move || client.join().unwrap()).await.unwrap() });
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.contains("argus_test_total 7"), "{out}");
    }
}
