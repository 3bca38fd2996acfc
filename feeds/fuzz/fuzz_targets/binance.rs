//! One Binance frame (any bytes): decoding never panics, an error leaves the output buffer as
//! it was, and the `&str` entry point agrees with the byte one.
#![no_main]

use argus_core::{InstrumentId, MarketEventKind, UnixNanos};
use argus_feeds::binance::BinanceNormalizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let n = BinanceNormalizer::new([("BTCUSDT", InstrumentId(0))]);
    let mut out = Vec::new();
    let bytes = n.normalize(data, UnixNanos(1), &mut out).map_err(|e| e.to_string());
    if bytes.is_err() {
        assert!(out.is_empty(), "a failed frame left events behind");
    }
    for ev in &out {
        match ev.kind {
            MarketEventKind::Delta(d) => assert!(d.qty.units() >= 0, "negative level size"),
            MarketEventKind::Trade(t) => assert!(t.qty.units() >= 0, "negative trade size"),
            _ => {}
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mut again = Vec::new();
        let s = n.normalize_str(text, UnixNanos(1), &mut again).map_err(|e| e.to_string());
        assert_eq!((s, again), (bytes, out), "normalize_str disagrees with normalize");
    }
});
