//! One Binance frame (any bytes): decoding never panics, an error leaves the output buffer as
//! it was, the `&str` entry point agrees with the byte one, and both agree with the serde
//! reader alone (the exact-layout reader and the scanner change nothing but speed).
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
    let mut reference = Vec::new();
    let r = n.normalize_reference(data, UnixNanos(1), &mut reference).map_err(|e| e.to_string());
    assert_eq!((&r, &reference), (&bytes, &out), "the fast readers disagree with serde");
    if let Ok(text) = std::str::from_utf8(data) {
        let mut again = Vec::new();
        let s = n.normalize_str(text, UnixNanos(1), &mut again).map_err(|e| e.to_string());
        assert_eq!((s, again), (bytes, out), "normalize_str disagrees with normalize");
    }
});
