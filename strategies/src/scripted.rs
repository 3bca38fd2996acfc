//! Orders from a script: one JSON object per line,
//! `{"ts_ns": 1723075200123000000, "side": "buy", "type": "market", "qty": "0.01"}` or
//! `{"ts_ns": …, "side": "sell", "type": "limit", "qty": "0.01", "price": "56980.5"}`
//! (`"tif": "gtc"` by default for limits, or `"ioc"`). `ts_ns` is on the receive-time clock: the
//! order leaves once every event received at or before it has been applied, before the first one
//! received after it.
//!
//! A market order is an immediate-or-cancel limit `market_slippage_bps` through the opposite
//! touch (Binance's market orders have the same kind of price protection); with no opposite side
//! it carries no usable price and risk refuses it as `no_market`.

use argus_core::{MarketEvent, OrderIntent, Price, Qty, Side, State, Strategy, StrategyId, TimeInForce, UnixNanos};

/// What an order line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptedKind {
    Market,
    Limit { price: Price, tif: TimeInForce },
}

/// One line of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptedOrder {
    pub ts: UnixNanos,
    pub side: Side,
    pub qty: Qty,
    pub kind: ScriptedKind,
}

/// A line that is not an order, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ScriptError {
    pub line: usize,
    pub msg: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    ts_ns: u64,
    side: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    qty: &'a str,
    price: Option<&'a str>,
    tif: Option<&'a str>,
}

/// Parses a script; blank lines and lines starting with `#` are skipped. Every bad line is
/// reported, not just the first. Orders are returned in time order (stable for equal times).
///
/// # Errors
/// The bad lines.
pub fn parse_script(text: &str) -> Result<Vec<ScriptedOrder>, Vec<ScriptError>> {
    let (mut orders, mut errors) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match parse_line(t) {
            Ok(o) => orders.push(o),
            Err(msg) => errors.push(ScriptError { line: i + 1, msg }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    orders.sort_by_key(|o| o.ts);
    Ok(orders)
}

fn parse_line(t: &str) -> Result<ScriptedOrder, String> {
    let l: Line<'_> = serde_json::from_str(t).map_err(|e| e.to_string())?;
    let side = match l.side {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        s => return Err(format!("side `{s}`: expected buy or sell")),
    };
    let qty = Qty::parse(l.qty).map_err(|e| format!("qty `{}`: {e}", l.qty))?;
    if qty.units() <= 0 {
        return Err(format!("qty `{}`: must be positive", l.qty));
    }
    let kind = match (l.kind, l.price) {
        ("market", None) => {
            if l.tif.is_some() {
                return Err("a market order has no tif".into());
            }
            ScriptedKind::Market
        }
        ("market", Some(_)) => return Err("a market order has no price".into()),
        ("limit", Some(p)) => {
            let price = Price::parse(p).map_err(|e| format!("price `{p}`: {e}"))?;
            if price.units() <= 0 {
                return Err(format!("price `{p}`: must be positive"));
            }
            let tif = match l.tif.unwrap_or("gtc") {
                "gtc" => TimeInForce::Gtc,
                "ioc" => TimeInForce::Ioc,
                s => return Err(format!("tif `{s}`: expected gtc or ioc")),
            };
            ScriptedKind::Limit { price, tif }
        }
        ("limit", None) => return Err("a limit order needs a price".into()),
        (k, _) => return Err(format!("type `{k}`: expected market or limit")),
    };
    Ok(ScriptedOrder { ts: UnixNanos(l.ts_ns), side, qty, kind })
}

/// Plays a script. See the module docs.
#[derive(Debug, Clone)]
pub struct Scripted {
    orders: Vec<ScriptedOrder>,
    next: usize,
    market_slippage_bps: i64,
    id: StrategyId,
}

impl Scripted {
    /// `orders` in time order (as [`parse_script`] returns them).
    pub fn new(orders: Vec<ScriptedOrder>, market_slippage_bps: i64, id: StrategyId) -> Self {
        Self { orders, next: 0, market_slippage_bps, id }
    }

    /// Orders not yet sent.
    pub fn remaining(&self) -> usize {
        self.orders.len() - self.next
    }
}

impl Strategy for Scripted {
    fn on_event(&mut self, _: &MarketEvent, _: &State<'_>, _: &mut Vec<OrderIntent>) {}

    fn next_timer(&self) -> Option<UnixNanos> {
        self.orders.get(self.next).map(|o| o.ts)
    }

    fn on_timer(&mut self, st: &State<'_>, out: &mut Vec<OrderIntent>) {
        while let Some(o) = self.orders.get(self.next).copied() {
            if o.ts > st.now {
                break;
            }
            self.next += 1;
            let (limit, tif) = match o.kind {
                ScriptedKind::Limit { price, tif } => (price, tif),
                ScriptedKind::Market => (market_limit(o.side, st, self.market_slippage_bps), TimeInForce::Ioc),
            };
            out.push(OrderIntent {
                instrument: st.instrument,
                side: o.side,
                qty: o.qty,
                limit,
                tif,
                ts: st.now,
                strategy: self.id,
            });
        }
    }
}

/// The opposite touch moved `bps` further, on the instrument's tick (rounded away from the touch);
/// 0 (unpriced) when there is no opposite touch.
fn market_limit(side: Side, st: &State<'_>, bps: i64) -> Price {
    let touch = match side {
        Side::Buy => st.book.best_ask(),
        Side::Sell => st.book.best_bid(),
    };
    let Some(touch) = touch else {
        // Unpriced: risk rejects it as `no_market`.
        return Price::from_units(0);
    };
    let p = i128::from(touch.price.units());
    let tick = i128::from(st.market.spec.map_or(1, |s| s.tick.units()).max(1));
    let raw = match side {
        Side::Buy => p + p * i128::from(bps) / 10_000,
        Side::Sell => p - p * i128::from(bps) / 10_000,
    };
    let on_grid = match side {
        Side::Buy => (raw + tick - 1).div_euclid(tick) * tick,
        Side::Sell => raw.div_euclid(tick) * tick,
    };
    Price::from_units(i64::try_from(on_grid).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn script_lines_parse_and_every_bad_line_is_named() {
        let ok = "# a comment\n{\"ts_ns\": 20, \"side\": \"sell\", \"type\": \"limit\", \"qty\": \"0.5\", \"price\": \"101.25\"}\n\n{\"ts_ns\": 10, \"side\": \"buy\", \"type\": \"market\", \"qty\": \"1\"}\n";
        let o = parse_script(ok).unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!((o[0].ts, o[0].kind), (UnixNanos(10), ScriptedKind::Market));
        assert_eq!(o[1].kind, ScriptedKind::Limit { price: Price::parse("101.25").unwrap(), tif: TimeInForce::Gtc });
        let bad = [
            r#"{"ts_ns": 1, "side": "hold", "type": "market", "qty": "1"}"#,
            r#"{"ts_ns": 1, "side": "buy", "type": "limit", "qty": "1"}"#,
            r#"{"ts_ns": 1, "side": "buy", "type": "market", "qty": "-1"}"#,
            r#"{"ts_ns": 1, "side": "buy", "type": "market", "qty": "1", "price": "2"}"#,
            r#"{"ts_ns": 1, "side": "buy", "type": "stop", "qty": "1"}"#,
            r#"{"ts_ns": "x", "side": "buy", "type": "market", "qty": "1"}"#,
            r#"{"ts_ns": 1, "side": "buy", "type": "limit", "qty": "1", "price": "1", "tif": "fok"}"#,
            r#"{"ts_ns": 1, "side": "buy", "type": "market", "qty": "1", "extra": 1}"#,
            "not json",
        ]
        .join("\n");
        let e = parse_script(&bad).unwrap_err();
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), (1..=9).collect::<Vec<_>>());
        assert!(e[0].msg.contains("hold") && e[1].msg.contains("needs a price") && e[4].msg.contains("stop"));
    }
}
