//! An instrument's trading rules from its venue's public REST API, read once when a live run
//! starts: Binance's `exchangeInfo` ([`crate::binance::rules`]), OKX's
//! `GET /api/v5/public/instruments`, Bybit's `GET /v5/market/instruments-info` and Coinbase's
//! product (`GET /api/v3/brokerage/market/products/{id}`, or the Exchange API's
//! `GET /products/{id}`) and Kraken's `GET /0/public/AssetPairs`.
//!
//! Each venue's fields map onto [`InstrumentSpec`]: the price tick, the quantity step, the
//! quantity bounds, the minimum notional, and whether the instrument takes orders now.

use std::time::Duration;

use argus_core::{parse_fixed, InstrumentSpec, Money, Price, Qty};
use serde::Deserialize;

use crate::check::CheckVenue;
use crate::FeedError;

/// OKX's public REST base.
pub const OKX_REST_BASE: &str = "https://www.okx.com";
/// Bybit's public REST base.
pub const BYBIT_REST_BASE: &str = "https://api.bybit.com";
/// Coinbase Advanced Trade's public REST base.
pub const COINBASE_REST_BASE: &str = "https://api.coinbase.com";
/// Kraken's public REST base.
pub const KRAKEN_REST_BASE: &str = "https://api.kraken.com";

/// A decimal field, exact; `None` for an absent or empty one (venues send `""` for n/a).
pub(crate) fn dec(field: &'static str, s: Option<&str>) -> Result<Option<i64>, FeedError> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => match parse_fixed(s.as_bytes()) {
            Ok(v) if v < 0 => Err(FeedError::Decimal { field, source: argus_core::ParseFixedError::Negative }),
            Ok(v) => Ok(Some(v)),
            Err(source) => Err(FeedError::Decimal { field, source }),
        },
    }
}

/// An upper bound: one past what fixed point holds is no bound at all (OKX's `maxLmtSz` of
/// 9,999,999,999 units, Binance's `maxQty` of 900 billion on small coins).
pub(crate) fn dec_max(field: &'static str, s: Option<&str>) -> Result<Option<i64>, FeedError> {
    match dec(field, s) {
        Err(FeedError::Decimal { source: argus_core::ParseFixedError::Overflow, .. }) => Ok(Some(i64::MAX)),
        other => other,
    }
}

/// The rules from their parts (fixed-point units); a zero tick or step leaves only the
/// fixed-point grid, an absent minimum quantity is one step, a zero or absent maximum is no
/// bound, an absent minimum notional is none.
pub fn spec(
    tick: i64,
    step: i64,
    min_qty: Option<i64>,
    max_qty: Option<i64>,
    min_notional: Option<i64>,
    tradable: bool,
) -> InstrumentSpec {
    let step = step.max(1);
    InstrumentSpec {
        tick: Price::from_units(tick.max(1)),
        lot: Qty::from_units(step),
        min_qty: Qty::from_units(min_qty.unwrap_or(step).max(1)),
        max_qty: max_qty.filter(|&m| m > 0).map_or(Qty::MAX, Qty::from_units),
        min_notional: Money(i128::from(min_notional.unwrap_or(0))),
        tradable,
    }
}

#[derive(Deserialize)]
struct OkxReply {
    code: String,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    data: Vec<OkxInstrument>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OkxInstrument {
    inst_id: String,
    tick_sz: String,
    lot_sz: String,
    min_sz: Option<String>,
    max_lmt_sz: Option<String>,
    state: String,
}

/// OKX `GET /api/v5/public/instruments` body: `tickSz`, `lotSz`, `minSz`, `maxLmtSz` (swap and
/// futures sizes are in contracts, as their books are), tradable when `state` is `live`.
///
/// # Errors
/// Malformed JSON or decimals, an error reply, or `symbol` not listed.
pub fn parse_okx(body: &[u8], symbol: &str) -> Result<InstrumentSpec, FeedError> {
    let r: OkxReply = serde_json::from_slice(body)?;
    if r.code != "0" {
        return Err(FeedError::Http(format!("OKX instruments: code {} {}", r.code, r.msg)));
    }
    let i = r
        .data
        .iter()
        .find(|i| i.inst_id.eq_ignore_ascii_case(symbol))
        .ok_or_else(|| FeedError::UnknownSymbol(symbol.to_owned()))?;
    let tick = dec("tickSz", Some(&i.tick_sz))?.ok_or(FeedError::MissingField("tickSz"))?;
    let step = dec("lotSz", Some(&i.lot_sz))?.ok_or(FeedError::MissingField("lotSz"))?;
    let min_qty = dec("minSz", i.min_sz.as_deref())?;
    let max_qty = dec_max("maxLmtSz", i.max_lmt_sz.as_deref())?;
    Ok(spec(tick, step, min_qty, max_qty, None, i.state == "live"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitReply {
    ret_code: i64,
    #[serde(default)]
    ret_msg: String,
    result: Option<BybitResult>,
}

#[derive(Deserialize)]
struct BybitResult {
    #[serde(default)]
    list: Vec<BybitInstrument>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitInstrument {
    symbol: String,
    status: String,
    price_filter: BybitPriceFilter,
    lot_size_filter: BybitLotFilter,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitPriceFilter {
    tick_size: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitLotFilter {
    /// Spot's quantity step.
    base_precision: Option<String>,
    /// Derivatives' quantity step.
    qty_step: Option<String>,
    min_order_qty: Option<String>,
    max_order_qty: Option<String>,
    /// Spot's minimum order value.
    min_order_amt: Option<String>,
    /// Derivatives' minimum order value.
    min_notional_value: Option<String>,
}

/// Bybit `GET /v5/market/instruments-info` body: `priceFilter.tickSize`, the quantity step
/// (`lotSizeFilter.basePrecision` on spot, `.qtyStep` on derivatives), `.minOrderQty`,
/// `.maxOrderQty` and the minimum value (`.minOrderAmt` / `.minNotionalValue`); tradable when
/// `status` is `Trading`.
///
/// # Errors
/// Malformed JSON or decimals, an error reply, or `symbol` not listed.
pub fn parse_bybit(body: &[u8], symbol: &str) -> Result<InstrumentSpec, FeedError> {
    let r: BybitReply = serde_json::from_slice(body)?;
    if r.ret_code != 0 {
        return Err(FeedError::Http(format!("Bybit instruments-info: retCode {} {}", r.ret_code, r.ret_msg)));
    }
    let i = r
        .result
        .iter()
        .flat_map(|r| &r.list)
        .find(|i| i.symbol.eq_ignore_ascii_case(symbol))
        .ok_or_else(|| FeedError::UnknownSymbol(symbol.to_owned()))?;
    let l = &i.lot_size_filter;
    let tick = dec("priceFilter.tickSize", Some(&i.price_filter.tick_size))?
        .ok_or(FeedError::MissingField("priceFilter.tickSize"))?;
    let step = dec("lotSizeFilter.qtyStep", l.qty_step.as_deref().or(l.base_precision.as_deref()))?
        .ok_or(FeedError::MissingField("lotSizeFilter.qtyStep"))?;
    let min_qty = dec("lotSizeFilter.minOrderQty", l.min_order_qty.as_deref())?;
    let max_qty = dec_max("lotSizeFilter.maxOrderQty", l.max_order_qty.as_deref())?;
    let min_notional =
        dec("lotSizeFilter.minOrderAmt", l.min_order_amt.as_deref().or(l.min_notional_value.as_deref()))?;
    Ok(spec(tick, step, min_qty, max_qty, min_notional, i.status == "Trading"))
}

#[derive(Deserialize)]
struct CoinbaseProduct {
    #[serde(alias = "id")]
    product_id: String,
    /// Advanced Trade's price tick (the Exchange API's is `quote_increment`).
    price_increment: Option<String>,
    quote_increment: Option<String>,
    base_increment: String,
    base_min_size: Option<String>,
    base_max_size: Option<String>,
    /// Advanced Trade's minimum order value (the Exchange API's is `min_market_funds`).
    quote_min_size: Option<String>,
    min_market_funds: Option<String>,
    status: String,
    #[serde(default)]
    trading_disabled: bool,
    #[serde(default)]
    is_disabled: bool,
    #[serde(default)]
    cancel_only: bool,
}

/// Coinbase product body (Advanced Trade or the Exchange API): the tick (`price_increment`,
/// else `quote_increment`), `base_increment`, `base_min_size`, `base_max_size` and the minimum
/// value (`quote_min_size`, else `min_market_funds`); tradable when `status` is `online` and
/// neither trading nor new orders are disabled.
///
/// # Errors
/// Malformed JSON or decimals, or a product other than `symbol`.
pub fn parse_coinbase(body: &[u8], symbol: &str) -> Result<InstrumentSpec, FeedError> {
    let p: CoinbaseProduct = serde_json::from_slice(body)?;
    if !p.product_id.eq_ignore_ascii_case(symbol) {
        return Err(FeedError::UnknownSymbol(symbol.to_owned()));
    }
    let tick = dec("price_increment", p.price_increment.as_deref().or(p.quote_increment.as_deref()))?
        .ok_or(FeedError::MissingField("price_increment"))?;
    let step = dec("base_increment", Some(&p.base_increment))?.ok_or(FeedError::MissingField("base_increment"))?;
    let min_qty = dec("base_min_size", p.base_min_size.as_deref())?;
    let max_qty = dec_max("base_max_size", p.base_max_size.as_deref())?;
    let min_notional = dec("quote_min_size", p.quote_min_size.as_deref().or(p.min_market_funds.as_deref()))?;
    let tradable = p.status.eq_ignore_ascii_case("online") && !p.trading_disabled && !p.is_disabled && !p.cancel_only;
    Ok(spec(tick, step, min_qty, max_qty, min_notional, tradable))
}

#[derive(Deserialize)]
struct KrakenReply {
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    result: std::collections::HashMap<String, KrakenPair>,
}

#[derive(Deserialize)]
struct KrakenPair {
    altname: Option<String>,
    wsname: Option<String>,
    lot_decimals: u32,
    ordermin: Option<String>,
    costmin: Option<String>,
    tick_size: Option<String>,
    /// Older replies carry only the price's decimals.
    pair_decimals: Option<u32>,
    #[serde(default)]
    status: Option<String>,
}

/// Kraken's websocket v2 names bitcoin `BTC` and dogecoin `DOGE`; `wsname` (v1) and the REST
/// names say `XBT` and `XDG`.
fn kraken_v1_name(symbol: &str) -> String {
    symbol
        .split('/')
        .map(|a| match a.to_ascii_uppercase().as_str() {
            "BTC" => "XBT".to_owned(),
            "DOGE" => "XDG".to_owned(),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A step of `decimals` decimal places in fixed-point units (`None` past fixed point's nine).
fn decimals_step(decimals: u32) -> Option<i64> {
    let places = u32::from(argus_core::FIXED_DECIMALS).checked_sub(decimals)?;
    10i64.checked_pow(places)
}

/// Kraken `GET /0/public/AssetPairs` body: the pair whose `wsname` is `symbol` (the websocket
/// v2 name, `BTC/USD`, matches v1's `XBT/USD`) or whose key or `altname` is; `tick_size` (else
/// `pair_decimals`), a quantity step of `lot_decimals` places, `ordermin`, `costmin`; tradable
/// when `status` is `online` (absent in older replies: online).
///
/// # Errors
/// Malformed JSON or decimals, an error reply, or `symbol` not listed.
pub fn parse_kraken(body: &[u8], symbol: &str) -> Result<InstrumentSpec, FeedError> {
    let r: KrakenReply = serde_json::from_slice(body)?;
    if !r.error.is_empty() {
        return Err(FeedError::Http(format!("Kraken AssetPairs: {}", r.error.join("; "))));
    }
    let v1 = kraken_v1_name(symbol);
    let (_, p) = r
        .result
        .iter()
        .find(|(key, p)| {
            let ws = p.wsname.as_deref().unwrap_or("");
            ws.eq_ignore_ascii_case(symbol)
                || ws.eq_ignore_ascii_case(&v1)
                || key.eq_ignore_ascii_case(symbol)
                || p.altname.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(symbol))
        })
        .ok_or_else(|| FeedError::UnknownSymbol(symbol.to_owned()))?;
    let tick = match dec("tick_size", p.tick_size.as_deref())? {
        Some(t) => t,
        None => p.pair_decimals.and_then(decimals_step).ok_or(FeedError::MissingField("tick_size"))?,
    };
    let step = decimals_step(p.lot_decimals).unwrap_or(1);
    let min_qty = dec("ordermin", p.ordermin.as_deref())?;
    let min_notional = dec("costmin", p.costmin.as_deref())?;
    let tradable = p.status.as_deref().is_none_or(|s| s == "online");
    Ok(spec(tick, step, min_qty, None, min_notional, tradable))
}

/// Where a venue's rules are asked for, relative to its REST base. `ws_url` (the feed's
/// websocket, when configured) tells Bybit's category and Coinbase's API apart.
/// Kraken's is every pair (its REST names differ from the websocket's).
pub fn rules_path(venue: CheckVenue, symbol: &str, ws_url: Option<&str>) -> String {
    let ws = ws_url.unwrap_or("");
    match venue {
        CheckVenue::BinanceSpot => {
            format!("{}?symbol={}", crate::binance::rules::SPOT_EXCHANGE_INFO_PATH, symbol.to_ascii_uppercase())
        }
        CheckVenue::BinanceUsdm => crate::binance::rules::USDM_EXCHANGE_INFO_PATH.to_owned(),
        CheckVenue::Okx => {
            let dated =
                symbol.rsplit('-').next().is_some_and(|s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()));
            let kind = if symbol.ends_with("-SWAP") {
                "SWAP"
            } else if dated {
                "FUTURES"
            } else {
                "SPOT"
            };
            format!("/api/v5/public/instruments?instType={kind}&instId={symbol}")
        }
        CheckVenue::Bybit => {
            let category =
                ["linear", "inverse", "option"].into_iter().find(|c| ws.contains(&format!("/{c}"))).unwrap_or("spot");
            format!("/v5/market/instruments-info?category={category}&symbol={symbol}")
        }
        CheckVenue::Coinbase if ws.contains("exchange.coinbase.com") => format!("/products/{symbol}"),
        CheckVenue::Coinbase => format!("/api/v3/brokerage/market/products/{symbol}"),
        CheckVenue::Kraken => "/0/public/AssetPairs".to_owned(),
    }
}

/// The venue's public REST base when none is configured (Coinbase: the Exchange API's when the
/// feed is its websocket).
pub fn default_rest_base(venue: CheckVenue, ws_url: Option<&str>) -> &'static str {
    match venue {
        CheckVenue::BinanceSpot => crate::binance::client::SPOT_REST_BASE,
        CheckVenue::BinanceUsdm => crate::binance::client::USDM_REST_BASE,
        CheckVenue::Okx => OKX_REST_BASE,
        CheckVenue::Bybit => BYBIT_REST_BASE,
        CheckVenue::Coinbase if ws_url.is_some_and(|u| u.contains("exchange.coinbase.com")) => {
            "https://api.exchange.coinbase.com"
        }
        CheckVenue::Coinbase => COINBASE_REST_BASE,
        CheckVenue::Kraken => KRAKEN_REST_BASE,
    }
}

/// Reads `symbol`'s rules in the venue's own format.
///
/// # Errors
/// As the venue's parser.
pub fn parse_rules(venue: CheckVenue, body: &[u8], symbol: &str) -> Result<InstrumentSpec, FeedError> {
    match venue {
        CheckVenue::BinanceSpot | CheckVenue::BinanceUsdm => crate::binance::parse_exchange_info(body, symbol),
        CheckVenue::Okx => parse_okx(body, symbol),
        CheckVenue::Bybit => parse_bybit(body, symbol),
        CheckVenue::Coinbase => parse_coinbase(body, symbol),
        CheckVenue::Kraken => parse_kraken(body, symbol),
    }
}

/// `GET`s `symbol`'s rules from the venue (`rest_base`, or its public one): the venue's reply
/// as it came (to save for backtests) and the rules read from it.
///
/// # Errors
/// As [`crate::http::get`] and [`parse_rules`].
pub async fn fetch_venue_rules(
    venue: CheckVenue,
    rest_base: Option<&str>,
    ws_url: Option<&str>,
    symbol: &str,
    timeout: Duration,
) -> Result<(Vec<u8>, InstrumentSpec), FeedError> {
    let path = rules_path(venue, symbol, ws_url);
    let base = rest_base.unwrap_or_else(|| default_rest_base(venue, ws_url));
    let body = crate::http::get(&format!("{}{path}", base.trim_end_matches('/')), timeout).await?;
    let spec = parse_rules(venue, &body, symbol)?;
    Ok((body, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }

    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }

    /// OKX's documented reply shape (fields trimmed), spot and swap.
    #[test]
    fn okx_instruments() {
        let body = r#"{"code":"0","msg":"","data":[{"instType":"SPOT","instId":"BTC-USDT","baseCcy":"BTC","quoteCcy":"USDT",
          "tickSz":"0.1","lotSz":"0.00000001","minSz":"0.00001","maxLmtSz":"9999999999","maxMktSz":"1000000","state":"live","ctVal":"","lever":"10"}]}"#;
        let s = parse_okx(body.as_bytes(), "BTC-USDT").unwrap();
        assert_eq!((s.tick, s.lot, s.min_qty), (p("0.1"), q("0.00000001"), q("0.00001")));
        assert_eq!(s.max_qty, Qty::MAX, "9,999,999,999 is past fixed point: no bound");
        assert_eq!(s.min_notional, Money(0));
        assert!(s.tradable);
        let swap = r#"{"code":"0","msg":"","data":[{"instType":"SWAP","instId":"BTC-USD-SWAP","ctVal":"100","lotSz":"1",
          "maxLmtSz":"100000000","minSz":"1","state":"suspend","tickSz":"0.1"}]}"#;
        let s = parse_okx(swap.as_bytes(), "BTC-USD-SWAP").unwrap();
        assert_eq!((s.lot, s.min_qty), (q("1"), q("1")), "contracts");
        assert!(!s.tradable, "a suspended instrument takes no orders");
        let err = r#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#;
        assert!(matches!(parse_okx(err.as_bytes(), "X-Y"), Err(FeedError::Http(m)) if m.contains("51001")));
        assert!(matches!(parse_okx(body.as_bytes(), "ETH-USDT"), Err(FeedError::UnknownSymbol(_))));
        let bad = body.replace(r#""tickSz":"0.1""#, r#""tickSz":"0,1""#);
        assert!(matches!(parse_okx(bad.as_bytes(), "BTC-USDT"), Err(FeedError::Decimal { field: "tickSz", .. })));
    }

    /// Bybit's documented reply shapes: spot (`basePrecision`, `minOrderAmt`) and linear
    /// (`qtyStep`, `minNotionalValue`).
    #[test]
    fn bybit_instruments() {
        let spot = r#"{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[{"symbol":"BTCUSDT","baseCoin":"BTC",
          "quoteCoin":"USDT","status":"Trading","lotSizeFilter":{"basePrecision":"0.000001","quotePrecision":"0.00000001",
          "minOrderQty":"0.000048","maxOrderQty":"71.73956243","minOrderAmt":"1","maxOrderAmt":"2000000"},
          "priceFilter":{"tickSize":"0.01"}}]},"retExtInfo":{},"time":1723075200000}"#;
        let s = parse_bybit(spot.as_bytes(), "BTCUSDT").unwrap();
        assert_eq!((s.tick, s.lot, s.min_qty, s.max_qty), (p("0.01"), q("0.000001"), q("0.000048"), q("71.73956243")));
        assert_eq!(s.min_notional, Money(1_000_000_000));
        assert!(s.tradable);
        let linear = r#"{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTCUSDT","status":"PreLaunch",
          "priceFilter":{"minPrice":"0.10","maxPrice":"199999.80","tickSize":"0.10"},
          "lotSizeFilter":{"maxOrderQty":"1190.000","minOrderQty":"0.001","qtyStep":"0.001","postOnlyMaxOrderQty":"1190.000","minNotionalValue":"5"}}]}}"#;
        let s = parse_bybit(linear.as_bytes(), "BTCUSDT").unwrap();
        assert_eq!((s.tick, s.lot, s.min_notional), (p("0.1"), q("0.001"), Money(5_000_000_000)));
        assert!(!s.tradable, "not yet trading");
        let err = r#"{"retCode":10001,"retMsg":"params error","result":{}}"#;
        assert!(matches!(parse_bybit(err.as_bytes(), "BTCUSDT"), Err(FeedError::Http(m)) if m.contains("10001")));
    }

    /// Coinbase Advanced Trade and Exchange product shapes.
    #[test]
    fn coinbase_products() {
        let advanced = r#"{"product_id":"BTC-USD","price":"60000.01","base_increment":"0.00000001","quote_increment":"0.01",
          "quote_min_size":"1","quote_max_size":"150000000","base_min_size":"0.00000001","base_max_size":"3400",
          "status":"online","trading_disabled":false,"is_disabled":false,"cancel_only":false,"price_increment":"0.01"}"#;
        let s = parse_coinbase(advanced.as_bytes(), "BTC-USD").unwrap();
        assert_eq!((s.tick, s.lot, s.min_qty, s.max_qty), (p("0.01"), q("0.00000001"), q("0.00000001"), q("3400")));
        assert_eq!(s.min_notional, Money(1_000_000_000));
        assert!(s.tradable);
        let exchange = r#"{"id":"ETH-USD","base_currency":"ETH","quote_currency":"USD","quote_increment":"0.01",
          "base_increment":"0.00000001","min_market_funds":"1","status":"online","trading_disabled":false,"cancel_only":true}"#;
        let s = parse_coinbase(exchange.as_bytes(), "ETH-USD").unwrap();
        assert_eq!((s.tick, s.min_qty, s.max_qty), (p("0.01"), q("0.00000001"), Qty::MAX));
        assert!(!s.tradable, "cancel-only takes no new orders");
        assert!(matches!(parse_coinbase(advanced.as_bytes(), "ETH-USD"), Err(FeedError::UnknownSymbol(_))));
    }

    /// Kraken's documented AssetPairs shape: the websocket v2 name `BTC/USD` finds `XBT/USD`.
    #[test]
    fn kraken_asset_pairs() {
        let body = r#"{"error":[],"result":{
          "XETHZUSD":{"altname":"ETHUSD","wsname":"ETH/USD","base":"XETH","quote":"ZUSD","pair_decimals":2,"lot_decimals":8,
            "lot_multiplier":1,"ordermin":"0.002","costmin":"0.5","tick_size":"0.01","status":"online"},
          "XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","aclass_base":"currency","base":"XXBT","aclass_quote":"currency",
            "quote":"ZUSD","lot":"unit","cost_decimals":5,"pair_decimals":1,"lot_decimals":8,"lot_multiplier":1,
            "leverage_buy":[2,3,4,5],"leverage_sell":[2,3,4,5],"fees":[[0,0.26],[50000,0.24]],"fees_maker":[[0,0.16]],
            "fee_volume_currency":"ZUSD","margin_call":80,"margin_stop":40,"ordermin":"0.0001","costmin":"0.5",
            "tick_size":"0.1","status":"online","long_position_limit":270,"short_position_limit":180},
          "XDGUSD":{"altname":"XDGUSD","wsname":"XDG/USD","pair_decimals":7,"lot_decimals":8,"ordermin":"30","status":"cancel_only"}}}"#;
        let s = parse_kraken(body.as_bytes(), "BTC/USD").unwrap();
        assert_eq!((s.tick, s.lot, s.min_qty, s.max_qty), (p("0.1"), q("0.00000001"), q("0.0001"), Qty::MAX));
        assert_eq!(s.min_notional, Money(500_000_000));
        assert!(s.tradable);
        assert_eq!(parse_kraken(body.as_bytes(), "XBTUSD").unwrap(), s, "the REST altname finds it too");
        assert_eq!(parse_kraken(body.as_bytes(), "ETH/USD").unwrap().tick, p("0.01"));
        let doge = parse_kraken(body.as_bytes(), "DOGE/USD").unwrap();
        assert_eq!(doge.tick, p("0.0000001"), "no tick_size: pair_decimals");
        assert!(!doge.tradable, "cancel-only takes no new orders");
        assert!(matches!(parse_kraken(body.as_bytes(), "SOL/USD"), Err(FeedError::UnknownSymbol(_))));
        let err = r#"{"error":["EQuery:Unknown asset pair"]}"#;
        assert!(
            matches!(parse_kraken(err.as_bytes(), "BTC/USD"), Err(FeedError::Http(m)) if m.contains("Unknown asset pair"))
        );
    }

    #[test]
    fn paths_follow_the_instrument_and_the_feed() {
        let path = rules_path;
        assert_eq!(path(CheckVenue::Okx, "BTC-USDT", None), "/api/v5/public/instruments?instType=SPOT&instId=BTC-USDT");
        assert!(path(CheckVenue::Okx, "BTC-USD-SWAP", None).contains("instType=SWAP"));
        assert!(path(CheckVenue::Okx, "BTC-USD-250328", None).contains("instType=FUTURES"));
        assert!(path(CheckVenue::Bybit, "BTCUSDT", None).contains("category=spot"));
        assert!(path(CheckVenue::Bybit, "BTCUSDT", Some("wss://stream.bybit.com/v5/public/linear"))
            .contains("category=linear"));
        assert_eq!(path(CheckVenue::Coinbase, "BTC-USD", None), "/api/v3/brokerage/market/products/BTC-USD");
        assert_eq!(
            path(CheckVenue::Coinbase, "BTC-USD", Some("wss://ws-feed.exchange.coinbase.com")),
            "/products/BTC-USD"
        );
        assert_eq!(path(CheckVenue::BinanceSpot, "btcusdt", None), "/api/v3/exchangeInfo?symbol=BTCUSDT");
        assert_eq!(path(CheckVenue::Kraken, "BTC/USD", None), "/0/public/AssetPairs");
    }
}
