//! A short run of Bybit frames (one per line, seeded from the bundled capture) through its live
//! normalizer and book sync: nothing panics and no event carries a negative size. The
//! `venues` target mixes all venues; this one gives Bybit a corpus of its own.
#![no_main]

use argus_feeds::check::CheckVenue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| argus_feeds_fuzz::stream(CheckVenue::Bybit, data));
