//! Mutation fuzzing of every venue's decoder and book sync over real frames: byte flips,
//! deletions, duplications, truncations, JSON-significant insertions and hostile numbers
//! (`0.-10000`, 30-digit integers, exponents, negatives) spliced into the captures. Nothing may
//! panic, every frame is counted, a Binance frame that fails leaves the output buffer as it was,
//! and no book ever holds a negative size or a crossed top after a whole message.
//! (The coverage-guided cargo-fuzz targets are in `feeds/fuzz`, run by `make fuzz` on nightly;
//! this one runs on stable in `make test`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use argus_core::{InstrumentId, MarketEventKind, OrderBook, Side, UnixNanos};
use argus_feeds::binance::BinanceNormalizer;
use argus_feeds::check::{CheckVenue, LiveChecker};
use argus_feeds::replay::capture_frames;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(rel)
}

/// splitmix64: reproducible mutations on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const HOSTILE: [&str; 10] =
    ["0.-10000", "-1", "99999999999999999999999999999", "1e308", "-0", "\"\"", "null", "1.0000000001", "[]", "{}"];
const SIGNIFICANT: &[u8] = b"{}[]\",:.-0123456789eE\\ ";

fn mutate(frame: &str, rng: &mut Rng) -> String {
    let mut b = frame.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        if b.is_empty() {
            break;
        }
        let i = rng.below(b.len());
        match rng.below(6) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => {
                let end = (i + 1 + rng.below(16)).min(b.len());
                b.drain(i..end);
            }
            2 => {
                let end = (i + 1 + rng.below(32)).min(b.len());
                let copy = b[i..end].to_vec();
                b.splice(i..i, copy);
            }
            3 => b.truncate(i),
            4 => b.insert(i, SIGNIFICANT[rng.below(SIGNIFICANT.len())]),
            _ => {
                // Replace the next quoted number with a hostile value.
                let s = String::from_utf8_lossy(&b).into_owned();
                let i = (i.min(s.len())..=s.len()).find(|&k| s.is_char_boundary(k)).unwrap_or(s.len());
                if let Some(at) = s[i..].find("\":\"").map(|k| i + k + 3) {
                    let end = s[at..].find('"').map_or(s.len(), |k| at + k);
                    let h = HOSTILE[rng.below(HOSTILE.len())];
                    b = format!("{}{}{}", &s[..at], h.trim_matches('"'), &s[end..]).into_bytes();
                }
            }
        }
    }
    // Websocket text frames are UTF-8.
    String::from_utf8_lossy(&b).into_owned()
}

/// Books keep only positive sizes, whatever the frames said.
fn assert_sane(book: &OrderBook, what: &str) {
    for side in [Side::Buy, Side::Sell] {
        assert!(book.levels(side).all(|l| l.qty.units() > 0), "{what}: non-positive size kept");
    }
}

#[test]
fn mutated_frames_never_panic_and_are_all_counted() {
    let cases = [
        (CheckVenue::Okx, "okx/cryptofeed_OKX.ws.1.0.log.gz"),
        (CheckVenue::Bybit, "bybit/2024-12-01_XRPUSDT_ob500.data.gz"),
        (CheckVenue::Coinbase, "coinbase/cryptofeed_COINBASE.ws.28.0.log.gz"),
        (CheckVenue::Kraken, "kraken/cryptofeed_KRAKEN.ws.50.0.log.gz"),
        // Kraken's live feed speaks v2: a short real session, replayed over and over.
        (CheckVenue::Kraken, "kraken/snippets_real_kraken_v2_book.jsonl"),
        (CheckVenue::BinanceSpot, "binance_spot/cryptofeed_BINANCE.ws.1.0.log.gz"),
        (CheckVenue::BinanceUsdm, "binance_usdm/cryptofeed_BINANCE_FUTURES.ws.1.0.log.gz"),
    ];
    let mut rng = Rng(0x000a_19e5);
    for (venue, file) in cases {
        let frames = capture_frames(&[data(file)]).unwrap();
        assert!(!frames.is_empty(), "{file}");
        let mut checker = LiveChecker::new(venue);
        let mut out = Vec::new();
        let mut fed = 0_u64;
        // Real frames interleaved with mutants, so mutants hit books in every state (a short
        // capture is cycled to the same length).
        for round in 0..4 {
            for f in frames.iter().cycle().take(3000.min(frames.len() * 500)) {
                let frame = if round == 0 || rng.below(2) == 0 { f.clone() } else { mutate(f, &mut rng) };
                checker.on_frame(&frame, UnixNanos(1), |sym, ev| out.push((sym.to_owned(), *ev)));
                fed += 1;
            }
        }
        let r = checker.report();
        assert_eq!(r.frames, fed, "{}: every frame counted", venue.as_str());
        assert!(r.errors > 0, "{}: mutants are reported as errors", venue.as_str());
        let mut books: std::collections::BTreeMap<String, OrderBook> = Default::default();
        for (sym, ev) in &out {
            if let MarketEventKind::Delta(d) = ev.kind {
                let book = books.entry(sym.clone()).or_insert_with(|| OrderBook::new(argus_core::MIN_BOOK_LEVELS));
                book.apply(&d);
                assert!(d.qty.units() >= 0, "{}: negative size emitted", venue.as_str());
                if d.flags.is_last() {
                    assert_sane(book, venue.as_str());
                }
            }
        }
    }
}

#[test]
fn a_failing_binance_frame_leaves_the_buffer_as_it_was() {
    let frames = capture_frames(&[data("binance_usdm/cryptofeed_BINANCE_FUTURES.ws.1.0.log.gz")]).unwrap();
    let mut n = BinanceNormalizer::default();
    let mut rng = Rng(7);
    // A sentinel already in the buffer: output is appended after it, or nothing is.
    let mut out = Vec::new();
    n.normalize_any_symbol(frames[0].as_bytes(), UnixNanos(1), &mut out).unwrap();
    let sentinel = out.clone();
    let (mut ok, mut failed) = (0, 0);
    for f in frames.iter().cycle().take(40_000) {
        let frame = mutate(f, &mut rng);
        out.truncate(sentinel.len());
        match n.normalize_any_symbol(frame.as_bytes(), UnixNanos(1), &mut out) {
            Ok(_) => ok += 1,
            Err(_) => {
                failed += 1;
                assert_eq!(out, sentinel, "an error left partial output");
            }
        }
        assert_eq!(out[..sentinel.len()], sentinel[..], "earlier output untouched");
        assert!(out.iter().all(|e| e.instrument == InstrumentId(0)));
    }
    assert!(ok > 1000 && failed > 1000, "both outcomes exercised: {ok} ok, {failed} failed");
}
