//! A stream of frames (one per line) through a venue's live normalizer and book sync, the
//! venue picked by the first byte: nothing panics and no event carries a negative size.
#![no_main]

use argus_feeds::check::CheckVenue;
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
    argus_feeds_fuzz::stream(VENUES[usize::from(pick) % VENUES.len()], rest);
});
