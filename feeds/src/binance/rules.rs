//! An instrument's trading rules from Binance's `exchangeInfo` (spot
//! `GET /api/v3/exchangeInfo?symbol=`, USD-M `GET /fapi/v1/exchangeInfo`): price tick, lot step,
//! quantity bounds and minimum notional, the filters risk checks every order against.
//!
//! Filters read (<https://developers.binance.com/docs/binance-spot-api-docs/filters>):
//! `PRICE_FILTER.tickSize` (0 turns the rule off), `LOT_SIZE.stepSize`, `.minQty`, `.maxQty`,
//! and the minimum notional from spot's `NOTIONAL.minNotional` (or the older
//! `MIN_NOTIONAL.minNotional`) or USD-M's `MIN_NOTIONAL.notional`. A symbol whose `status` is not
//! `TRADING` is not tradable.

use argus_core::InstrumentSpec;
use serde::Deserialize;

use crate::rules::{dec, dec_max, spec};
use crate::FeedError;

/// Spot's `exchangeInfo` path (takes `?symbol=`).
pub const SPOT_EXCHANGE_INFO_PATH: &str = "/api/v3/exchangeInfo";
/// USD-M's `exchangeInfo` path (lists every symbol).
pub const USDM_EXCHANGE_INFO_PATH: &str = "/fapi/v1/exchangeInfo";

#[derive(Deserialize)]
struct RawInfo {
    symbols: Vec<RawSymbol>,
}

#[derive(Deserialize)]
struct RawSymbol {
    symbol: String,
    status: String,
    filters: Vec<RawFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFilter {
    filter_type: String,
    tick_size: Option<String>,
    step_size: Option<String>,
    min_qty: Option<String>,
    max_qty: Option<String>,
    min_notional: Option<String>,
    /// USD-M's `MIN_NOTIONAL` names its field `notional`.
    notional: Option<String>,
}

/// The rules of `symbol` (case-insensitive) in an `exchangeInfo` body.
///
/// # Errors
/// Malformed JSON or decimals, a symbol not listed, a missing `PRICE_FILTER` or `LOT_SIZE`, or a
/// step, tick or bound that is negative.
pub fn parse_exchange_info(body: &[u8], symbol: &str) -> Result<InstrumentSpec, FeedError> {
    let info: RawInfo = serde_json::from_slice(body)?;
    let s = info
        .symbols
        .iter()
        .find(|s| s.symbol.eq_ignore_ascii_case(symbol))
        .ok_or_else(|| FeedError::UnknownSymbol(symbol.to_owned()))?;
    let filter = |kind: &str| s.filters.iter().find(|f| f.filter_type == kind);
    let price = filter("PRICE_FILTER").ok_or(FeedError::MissingField("PRICE_FILTER"))?;
    let lot = filter("LOT_SIZE").ok_or(FeedError::MissingField("LOT_SIZE"))?;
    let tick = dec("PRICE_FILTER.tickSize", price.tick_size.as_deref())?
        .ok_or(FeedError::MissingField("PRICE_FILTER.tickSize"))?;
    let step =
        dec("LOT_SIZE.stepSize", lot.step_size.as_deref())?.ok_or(FeedError::MissingField("LOT_SIZE.stepSize"))?;
    let min_qty = dec("LOT_SIZE.minQty", lot.min_qty.as_deref())?;
    let max_qty = dec_max("LOT_SIZE.maxQty", lot.max_qty.as_deref())?;
    let min_notional = match filter("NOTIONAL").or_else(|| filter("MIN_NOTIONAL")) {
        Some(f) => dec("NOTIONAL.minNotional", f.min_notional.as_deref().or(f.notional.as_deref()))?,
        None => None,
    };
    Ok(spec(tick, step, min_qty, max_qty, min_notional, s.status == "TRADING"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::{Money, Price, Qty};

    /// Spot `exchangeInfo?symbol=BTCUSDT` as the venue answers it (filters trimmed to those
    /// argus reads plus two it ignores; values as published for BTCUSDT in 2024).
    const SPOT: &str = r#"{"timezone":"UTC","serverTime":1723075200000,"rateLimits":[],"exchangeFilters":[],
      "symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","baseAssetPrecision":8,
      "quoteAsset":"USDT","quotePrecision":8,"orderTypes":["LIMIT","MARKET"],"filters":[
      {"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},
      {"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"},
      {"filterType":"ICEBERG_PARTS","limit":10},
      {"filterType":"MARKET_LOT_SIZE","minQty":"0.00000000","maxQty":"123.45","stepSize":"0.00000000"},
      {"filterType":"NOTIONAL","minNotional":"5.00000000","applyMinToMarket":true,"maxNotional":"9000000.00000000","applyMaxToMarket":false,"avgPriceMins":5}]}]}"#;

    #[test]
    fn spot_btcusdt_rules_are_the_built_in_ones() {
        let spec = parse_exchange_info(SPOT.as_bytes(), "btcusdt").unwrap();
        assert_eq!(spec, InstrumentSpec::BINANCE_SPOT_BTCUSDT);
    }

    #[test]
    fn usdm_min_notional_field_and_status() {
        let body = r#"{"symbols":[
          {"symbol":"ETHUSDT","status":"TRADING","filters":[
            {"filterType":"PRICE_FILTER","minPrice":"39.86","maxPrice":"306177","tickSize":"0.01"},
            {"filterType":"LOT_SIZE","stepSize":"0.001","maxQty":"10000","minQty":"0.001"},
            {"filterType":"MIN_NOTIONAL","notional":"20"}]},
          {"symbol":"BTCUSDT","status":"SETTLING","filters":[
            {"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},
            {"filterType":"LOT_SIZE","stepSize":"0.001","maxQty":"1000","minQty":"0.001"},
            {"filterType":"MIN_NOTIONAL","notional":"100"}]}]}"#;
        let eth = parse_exchange_info(body.as_bytes(), "ETHUSDT").unwrap();
        assert_eq!(eth.tick, Price::parse("0.01").unwrap());
        assert_eq!(eth.lot, Qty::parse("0.001").unwrap());
        assert_eq!(eth.max_qty, Qty::parse("10000").unwrap());
        assert_eq!(eth.min_notional, Money(20_000_000_000));
        assert!(eth.tradable);
        let huge = body.replace(r#""maxQty":"10000""#, r#""maxQty":"900000000000.00000000""#);
        assert_eq!(
            parse_exchange_info(huge.as_bytes(), "ETHUSDT").unwrap().max_qty,
            Qty::MAX,
            "past fixed point: no bound"
        );
        let btc = parse_exchange_info(body.as_bytes(), "BTCUSDT").unwrap();
        assert_eq!(btc.tick, Price::parse("0.1").unwrap());
        assert_eq!(btc.min_notional, Money(100_000_000_000));
        assert!(!btc.tradable, "a symbol that is not TRADING takes no orders");
    }

    #[test]
    fn bad_bodies_are_named_errors() {
        let missing = r#"{"symbols":[{"symbol":"X","status":"TRADING","filters":[
            {"filterType":"PRICE_FILTER","tickSize":"0.01"}]}]}"#;
        assert!(matches!(parse_exchange_info(missing.as_bytes(), "X"), Err(FeedError::MissingField("LOT_SIZE"))));
        assert!(matches!(parse_exchange_info(SPOT.as_bytes(), "ETHUSDT"), Err(FeedError::UnknownSymbol(_))));
        let bad = SPOT.replace("\"0.01000000\"}", "\"0.0x\"}");
        assert!(matches!(
            parse_exchange_info(bad.as_bytes(), "BTCUSDT"),
            Err(FeedError::Decimal { field: "PRICE_FILTER.tickSize", .. })
        ));
        let negative = SPOT.replace("\"stepSize\":\"0.00001000\"", "\"stepSize\":\"-1\"");
        assert!(matches!(parse_exchange_info(negative.as_bytes(), "BTCUSDT"), Err(FeedError::Decimal { .. })));
        assert!(matches!(
            parse_exchange_info(br#"{"code":-1121,"msg":"Invalid symbol."}"#, "X"),
            Err(FeedError::Json(_))
        ));
    }

    #[test]
    fn a_zero_tick_turns_the_price_rule_off() {
        let body = SPOT.replace("\"tickSize\":\"0.01000000\"", "\"tickSize\":\"0.00000000\"");
        let spec = parse_exchange_info(body.as_bytes(), "BTCUSDT").unwrap();
        assert_eq!(spec.tick, Price::from_units(1));
    }
}
