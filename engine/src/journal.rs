//! What a backtest keeps for its report: every order with its fate, every fill, and the equity
//! curve sampled on venue time. Written as `orders.parquet`, `fills.parquet`, `equity.parquet`,
//! summarised into `summary.json` and drawn into a self-contained `report.html`.
//!
//! Everything here is a function of the replayed events and the configuration: the same inputs
//! give byte-identical files (the wall-clock fields `wall_seconds` and `events_per_sec` of the
//! summary, and the latency plot, are the only measurements of this machine).

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use argus_core::{ClientOrderId, CloseReason, Fill, Money, OrderIntent, Position, Side, TimeInForce, UnixNanos};
use arrow::array::{ArrayRef, BooleanArray, Decimal128Array, StringArray, UInt64Array};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;

/// One order and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRow {
    pub id: u64,
    /// Local time the order left.
    pub sent_ns: u64,
    pub side: Side,
    pub qty: i64,
    pub limit: i64,
    pub tif: TimeInForce,
    pub filled: i64,
    /// `open` until the venue closes it.
    pub status: &'static str,
    pub closed_ns: u64,
}

/// One fill, with the position after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillRow {
    /// Venue time of the execution.
    pub ts_ns: u64,
    /// Local time we learnt of it.
    pub recv_ns: u64,
    pub order: u64,
    pub side: Side,
    pub qty: i64,
    pub price: i64,
    pub notional: i128,
    pub fee: i128,
    pub maker: bool,
    pub position: i64,
    /// Realised PnL this fill booked, before its fee.
    pub realized: i128,
}

/// One point of the equity curve (quote currency, `10^-9` units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EquityRow {
    pub ts_ns: u64,
    pub mid: i64,
    pub position: i64,
    pub realized: i128,
    pub unrealized: i128,
    pub fees: i128,
    /// realized - fees + unrealized.
    pub equity: i128,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub orders: Vec<OrderRow>,
    pub fills: Vec<FillRow>,
    pub equity: Vec<EquityRow>,
    every_ns: u64,
    next_sample: u64,
    /// Realised PnL already attributed to a fill.
    realized_seen: i128,
}

impl Journal {
    /// A journal sampling equity every `every_ns` of venue time.
    pub fn new(every_ns: u64) -> Self {
        Self { every_ns: every_ns.max(1), ..Self::default() }
    }

    pub fn every_ns(&self) -> u64 {
        self.every_ns
    }

    pub fn on_sent(&mut self, id: ClientOrderId, o: &OrderIntent, now: UnixNanos) {
        self.orders.push(OrderRow {
            id: id.0,
            sent_ns: now.0,
            side: o.side,
            qty: o.qty.units(),
            limit: o.limit.units(),
            tif: o.tif,
            filled: 0,
            status: "open",
            closed_ns: 0,
        });
    }

    fn order_mut(&mut self, id: ClientOrderId) -> Option<&mut OrderRow> {
        // Ids are handed out in sending order, so the row is usually at index id - 1.
        let guess = usize::try_from(id.0.saturating_sub(1)).unwrap_or(usize::MAX);
        match self.orders.get(guess) {
            Some(r) if r.id == id.0 => self.orders.get_mut(guess),
            _ => self.orders.iter_mut().find(|r| r.id == id.0),
        }
    }

    pub fn on_fill(&mut self, f: &Fill, now: UnixNanos, after: &Position) {
        let booked = after.realized.0 - self.realized_seen;
        self.realized_seen = after.realized.0;
        if let Some(o) = self.order_mut(f.order) {
            o.filled += f.qty.units();
        }
        self.fills.push(FillRow {
            ts_ns: f.ts.0,
            recv_ns: now.0,
            order: f.order.0,
            side: f.side,
            qty: f.qty.units(),
            price: f.avg_price.units(),
            notional: f.notional.0,
            fee: f.fee.0,
            maker: f.maker,
            position: after.qty.units(),
            realized: booked,
        });
    }

    pub fn on_closed(&mut self, id: ClientOrderId, reason: CloseReason, now: UnixNanos) {
        if let Some(o) = self.order_mut(id) {
            o.status = reason.as_str();
            o.closed_ns = now.0;
        }
    }

    /// A point of the curve if `every_ns` has passed since the last one.
    #[inline]
    pub fn sample(&mut self, ts: UnixNanos, mid: i64, p: &Position) {
        if ts.0 >= self.next_sample {
            self.sample_now(ts, mid, p);
        }
    }

    pub fn sample_now(&mut self, ts: UnixNanos, mid: i64, p: &Position) {
        let unrealized = p.unrealized(mid).0;
        let row = EquityRow {
            ts_ns: ts.0,
            mid,
            position: p.qty.units(),
            realized: p.realized.0,
            unrealized,
            fees: p.fees.0,
            equity: p.realized.0 - p.fees.0 + unrealized,
        };
        match self.equity.last_mut() {
            Some(last) if last.ts_ns == ts.0 => *last = row,
            _ => self.equity.push(row),
        }
        self.next_sample = (ts.0 / self.every_ns + 1).saturating_mul(self.every_ns);
    }

    /// Writes the three Parquet files into `dir`.
    ///
    /// # Errors
    /// I/O or encoding failures, naming the file.
    pub fn write_parquet(&self, dir: &Path) -> Result<()> {
        let side = |s: Side| if s == Side::Buy { "buy" } else { "sell" };
        let u = |v: Vec<u64>| Arc::new(UInt64Array::from(v)) as ArrayRef;
        let s = |v: Vec<&str>| Arc::new(StringArray::from(v)) as ArrayRef;
        let o = &self.orders;
        write(
            &dir.join("orders.parquet"),
            &[
                ("id", u(o.iter().map(|r| r.id).collect())),
                ("sent_ns", u(o.iter().map(|r| r.sent_ns).collect())),
                ("side", s(o.iter().map(|r| side(r.side)).collect())),
                ("type", s(o.iter().map(|r| if r.tif == TimeInForce::Ioc { "ioc" } else { "gtc" }).collect())),
                ("qty", dec(o.iter().map(|r| i128::from(r.qty)))?),
                ("limit", dec(o.iter().map(|r| i128::from(r.limit)))?),
                ("filled", dec(o.iter().map(|r| i128::from(r.filled)))?),
                ("status", s(o.iter().map(|r| r.status).collect())),
                ("closed_ns", u(o.iter().map(|r| r.closed_ns).collect())),
            ],
        )?;
        let f = &self.fills;
        write(
            &dir.join("fills.parquet"),
            &[
                ("ts_ns", u(f.iter().map(|r| r.ts_ns).collect())),
                ("recv_ns", u(f.iter().map(|r| r.recv_ns).collect())),
                ("order", u(f.iter().map(|r| r.order).collect())),
                ("side", s(f.iter().map(|r| side(r.side)).collect())),
                ("qty", dec(f.iter().map(|r| i128::from(r.qty)))?),
                ("price", dec(f.iter().map(|r| i128::from(r.price)))?),
                ("notional", dec(f.iter().map(|r| r.notional))?),
                ("fee", dec(f.iter().map(|r| r.fee))?),
                ("maker", Arc::new(BooleanArray::from(f.iter().map(|r| r.maker).collect::<Vec<_>>())) as ArrayRef),
                ("position", dec(f.iter().map(|r| i128::from(r.position)))?),
                ("realized", dec(f.iter().map(|r| r.realized))?),
            ],
        )?;
        let e = &self.equity;
        write(
            &dir.join("equity.parquet"),
            &[
                ("ts_ns", u(e.iter().map(|r| r.ts_ns).collect())),
                ("mid", dec(e.iter().map(|r| i128::from(r.mid)))?),
                ("position", dec(e.iter().map(|r| i128::from(r.position)))?),
                ("realized", dec(e.iter().map(|r| r.realized))?),
                ("unrealized", dec(e.iter().map(|r| r.unrealized))?),
                ("fees", dec(e.iter().map(|r| r.fees))?),
                ("equity", dec(e.iter().map(|r| r.equity))?),
            ],
        )
    }

    /// Performance statistics over the run, against `capital`.
    pub fn stats(&self, capital: Money) -> Performance {
        let cap = capital.0.max(1) as f64;
        let equity: Vec<f64> = self.equity.iter().map(|r| r.equity as f64 / 1e9).collect();
        let rets: Vec<f64> = equity.windows(2).map(|w| (w[1] - w[0]) / (cap / 1e9)).collect();
        let n = rets.len() as f64;
        let mean = if n > 0.0 { rets.iter().sum::<f64>() / n } else { 0.0 };
        let var = if n > 1.0 { rets.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        let down = if n > 0.0 { (rets.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt() } else { 0.0 };
        // Periods per year of 365 days (crypto trades every day).
        let per_year = 365.0 * 86_400e9 / self.every_ns as f64;
        let ratio = |d: f64| if d > 0.0 { Some(mean / d * per_year.sqrt()) } else { None };
        let (mut peak, mut max_dd) = (f64::MIN, 0.0_f64);
        for &e in &equity {
            peak = peak.max(e);
            max_dd = max_dd.max(peak - e);
        }
        let closing: Vec<&FillRow> = self.fills.iter().filter(|f| f.realized != 0).collect();
        let wins = closing.iter().filter(|f| f.realized - f.fee > 0).count();
        let traded: i128 = self.fills.iter().map(|f| f.notional).sum();
        let last = self.equity.last().copied();
        let money = |v: i128| Money(v).to_string();
        Performance {
            capital: money(capital.0),
            pnl: money(last.map_or(0, |l| l.equity)),
            realized: money(last.map_or(0, |l| l.realized)),
            unrealized: money(last.map_or(0, |l| l.unrealized)),
            fees: money(last.map_or(0, |l| l.fees)),
            return_: last.map_or(0.0, |l| l.equity as f64 / cap),
            sharpe: ratio(var.sqrt()),
            sortino: ratio(down),
            max_drawdown: max_dd,
            max_drawdown_pct: max_dd / (cap / 1e9),
            turnover: traded as f64 / cap,
            traded_notional: money(traded),
            trades: self.fills.len() as u64,
            maker_fills: self.fills.iter().filter(|f| f.maker).count() as u64,
            closing_trades: closing.len() as u64,
            hit_rate: if closing.is_empty() { None } else { Some(wins as f64 / closing.len() as f64) },
            orders: self.orders.len() as u64,
            equity_points: self.equity.len() as u64,
            sample_every_ns: self.every_ns,
        }
    }
}

/// `summary.json`: performance, replay counts and speed, and the order/venue accounting.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub performance: Performance,
    pub events_replayed: u64,
    /// Measured on this machine: the only fields that differ between identical runs.
    pub wall_seconds: f64,
    pub events_per_sec: f64,
    pub intents: u64,
    pub approved: u64,
    pub rejected: std::collections::BTreeMap<&'static str, u64>,
    pub sim: crate::report::SimReport,
    pub position: String,
}

/// The summary of a finished backtest.
pub fn summary(r: &crate::report::Report, j: &Journal, capital: Money) -> Summary {
    Summary {
        performance: j.stats(capital),
        events_replayed: r.events,
        wall_seconds: r.wall_seconds,
        events_per_sec: if r.wall_seconds > 0.0 { r.events as f64 / r.wall_seconds } else { 0.0 },
        intents: r.orders.intents,
        approved: r.orders.approved,
        rejected: r.orders.rejected.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (*k, *n)).collect(),
        sim: r.sim.clone(),
        position: r.pnl.position.clone(),
    }
}

/// Performance of a run (the strategy part of `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Performance {
    pub capital: String,
    /// realized - fees + unrealized at the end.
    pub pnl: String,
    pub realized: String,
    pub unrealized: String,
    pub fees: String,
    /// pnl / capital.
    #[serde(rename = "return")]
    pub return_: f64,
    /// Annualised over equity-curve periods (365-day year); null without variation.
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    /// Largest peak-to-trough fall of equity (quote), and as a fraction of capital.
    pub max_drawdown: f64,
    pub max_drawdown_pct: f64,
    /// Traded notional / capital.
    pub turnover: f64,
    pub traded_notional: String,
    /// Fills.
    pub trades: u64,
    pub maker_fills: u64,
    /// Fills that booked realised PnL, and the share of those that won after their fee.
    pub closing_trades: u64,
    pub hit_rate: Option<f64>,
    pub orders: u64,
    pub equity_points: u64,
    pub sample_every_ns: u64,
}

fn dec(v: impl Iterator<Item = i128>) -> Result<ArrayRef> {
    Ok(Arc::new(Decimal128Array::from(v.collect::<Vec<_>>()).with_precision_and_scale(38, 9)?) as ArrayRef)
}

/// Writes one table, renaming it into place only when complete.
fn write(path: &Path, cols: &[(&str, ArrayRef)]) -> Result<()> {
    let fields: Vec<Field> = cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), false)).collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols.iter().map(|(_, a)| Arc::clone(a)).collect())?;
    let tmp = path.with_extension("parquet.tmp");
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?)).build();
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
    w.write(&batch).with_context(|| format!("writing {}", path.display()))?;
    w.close().with_context(|| format!("closing {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// A line chart as inline SVG: `(x, y)` points, x in ns.
fn svg_line(title: &str, pts: &[(f64, f64)], step: bool, marks: &[(f64, f64, bool)]) -> String {
    const W: f64 = 860.0;
    const H: f64 = 220.0;
    const PAD: f64 = 48.0;
    let mut s = String::new();
    let _ = write!(s, r#"<h2>{title}</h2><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}">"#);
    if pts.is_empty() {
        s.push_str(r#"<text x="20" y="40">no data</text></svg>"#);
        return s;
    }
    let all = pts.iter().map(|p| (p.0, p.1)).chain(marks.iter().map(|m| (m.0, m.1)));
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        (y0, y1) = (y0 - 1.0, y1 + 1.0);
    }
    let sx = |x: f64| PAD + (x - x0) / (x1 - x0) * (W - 2.0 * PAD);
    let sy = |y: f64| H - PAD / 2.0 - (y - y0) / (y1 - y0) * (H - PAD);
    let _ = write!(
        s,
        r##"<rect x="{PAD}" y="{}" width="{}" height="{}" fill="none" stroke="#ccc"/><text x="2" y="{}" font-size="10">{y1:.6}</text><text x="2" y="{}" font-size="10">{y0:.6}</text><text x="{PAD}" y="{H}" font-size="10">{:.0} s</text><text x="{}" y="{H}" font-size="10">{:.0} s</text>"##,
        PAD / 2.0,
        W - 2.0 * PAD,
        H - PAD,
        sy(y1) + 4.0,
        sy(y0),
        0.0,
        W - PAD - 30.0,
        (x1 - x0) / 1e9
    );
    s.push_str(r##"<polyline fill="none" stroke="#1f6feb" stroke-width="1.2" points=""##);
    let mut prev: Option<f64> = None;
    for &(x, y) in pts {
        if let (true, Some(py)) = (step, prev) {
            let _ = write!(s, "{:.1},{:.1} ", sx(x), sy(py));
        }
        let _ = write!(s, "{:.1},{:.1} ", sx(x), sy(y));
        prev = Some(y);
    }
    s.push_str(r#""/>"#);
    for &(x, y, buy) in marks {
        let (c, d) = if buy { ("#1a7f37", 5.0) } else { ("#cf222e", -5.0) };
        let (px, py) = (sx(x), sy(y));
        let _ = write!(
            s,
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{c}"/>"#,
            px,
            py,
            px - 4.0,
            py + d,
            px + 4.0,
            py + d
        );
    }
    s.push_str("</svg>");
    s
}

/// Bars as inline SVG: `(label, value)`.
fn svg_bars(title: &str, bars: &[(String, f64)]) -> String {
    const W: f64 = 860.0;
    const H: f64 = 220.0;
    let mut s = format!(r#"<h2>{title}</h2><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}">"#);
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1.0);
    let bw = (W - 60.0) / bars.len().max(1) as f64;
    for (i, (label, v)) in bars.iter().enumerate() {
        let h = v / max * (H - 50.0);
        let x = 40.0 + i as f64 * bw;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#8250df"/><text x="{x:.1}" y="{}" font-size="9">{label}</text>"##,
            H - 30.0 - h,
            (bw - 2.0).max(1.0),
            H - 15.0
        );
    }
    s.push_str("</svg>");
    s
}

/// The offline HTML report: equity, drawdown, position, price with fills, latency histogram.
pub fn html(j: &Journal, perf: &Performance, title: &str, latency: &[(String, f64)]) -> String {
    let t0 = j.equity.first().map_or(0, |e| e.ts_ns) as f64;
    let x = |ts: u64| ts as f64 - t0;
    let eq: Vec<(f64, f64)> = j.equity.iter().map(|e| (x(e.ts_ns), e.equity as f64 / 1e9)).collect();
    let mut peak = f64::MIN;
    let dd: Vec<(f64, f64)> = eq
        .iter()
        .map(|&(t, e)| {
            peak = peak.max(e);
            (t, e - peak)
        })
        .collect();
    let pos: Vec<(f64, f64)> = j.equity.iter().map(|e| (x(e.ts_ns), e.position as f64 / 1e9)).collect();
    let mid: Vec<(f64, f64)> = j.equity.iter().map(|e| (x(e.ts_ns), e.mid as f64 / 1e9)).collect();
    let fills: Vec<(f64, f64, bool)> =
        j.fills.iter().map(|f| (x(f.ts_ns), f.price as f64 / 1e9, f.side == Side::Buy)).collect();
    let summary = serde_json::to_string_pretty(perf).unwrap_or_default();
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>argus backtest: {t}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:auto}}pre{{background:#f6f8fa;padding:8px}}</style></head>
<body><h1>argus backtest: {t}</h1><pre>{summary}</pre>{a}{b}{c}{d}{e}</body></html>
"#,
        t = esc(title),
        summary = esc(&summary),
        a = svg_line("Equity (quote)", &eq, false, &[]),
        b = svg_line("Drawdown (quote)", &dd, false, &[]),
        c = svg_line("Position (base)", &pos, true, &[]),
        d = svg_line("Mid price with fills (green buy, red sell)", &mid, false, &fills),
        e = svg_bars("Hot-thread latency per stage (ns, p50 / p99)", latency),
    )
}
