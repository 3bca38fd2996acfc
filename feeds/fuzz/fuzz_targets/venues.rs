//! A stream of frames (one per line) through a venue's live normalizer and book sync, the
//! venue picked by the first byte: nothing panics and no event carries a negative size.
#![no_main]

use argus_core::{MarketEventKind, UnixNanos};
use argus_feeds::check::{CheckVenue, LiveChecker};
use libfuzzer_sys::fuzz_target;

const VENUES: [CheckVenue; 6] = [
    CheckVenue::BinanceSpot,
    CheckVenue::BinanceUsdm,
    CheckVenue::Bybit,
    CheckVenue::Coinbase,
    CheckVenue::Kraken,
    CheckVenue::Okx,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let venue = VENUES[usize::from(pick) % VENUES.len()];
    let mut checker = LiveChecker::new(venue);
    let text = String::from_utf8_lossy(rest);
    for (i, line) in text.lines().enumerate() {
        checker.on_frame(line, UnixNanos(i as u64 + 1), |_, ev| match ev.kind {
            MarketEventKind::Delta(d) => assert!(d.qty.units() >= 0, "negative level size"),
            MarketEventKind::Trade(t) => assert!(t.qty.units() >= 0, "negative trade size"),
            _ => {}
        });
    }
});
