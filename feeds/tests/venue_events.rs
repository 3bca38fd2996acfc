//! Every venue's checker hands on the events a live book would apply: rebuilding the books from
//! those events alone gives the books `feeds check` verified (checksums included), trades come
//! out one per venue trade with venue time, and a sequence gap is announced downstream with a
//! `Clear` so nothing trades on the broken book until the next snapshot completes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use argus_core::{BookAction, MarketEvent, MarketEventKind, OrderBook, Price, Qty, Side};
use argus_feeds::check::{self, CheckReport, CheckVenue};
use argus_feeds::rawlog::MergedInputs;

fn data(rel: &str) -> PathBuf {
    // Absolute paths (temporary files) pass through `join` unchanged.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(rel)
}

struct Rebuilt {
    books: BTreeMap<String, (OrderBook, bool)>,
    trades: u64,
    quotes: u64,
    clears_unflagged: u64,
    trade_times: Vec<u64>,
}

fn rebuild(venue: CheckVenue, file: &str) -> (CheckReport, Rebuilt) {
    let inputs = MergedInputs::open(&[data(file)]).unwrap();
    let mut r = Rebuilt { books: BTreeMap::new(), trades: 0, quotes: 0, clears_unflagged: 0, trade_times: Vec::new() };
    let report = check::events(venue, inputs, &mut |sym: &str, ev: &MarketEvent| match ev.kind {
        MarketEventKind::Delta(d) => {
            let (book, synced) =
                r.books.entry(sym.to_owned()).or_insert_with(|| (OrderBook::new(argus_core::MIN_BOOK_LEVELS), false));
            book.apply(&d);
            if d.action == BookAction::Clear && !d.flags.is_snapshot() {
                r.clears_unflagged += 1;
                *synced = false;
            } else if d.flags.is_last() {
                *synced = true;
            }
        }
        MarketEventKind::Trade(_) => {
            r.trades += 1;
            r.trade_times.push(ev.ts_exchange.0);
        }
        MarketEventKind::Quote(_) => r.quotes += 1,
        _ => {}
    })
    .unwrap();
    (report, r)
}

/// The rebuilt book's top equals the checked book's (the report prints the venue's strings).
/// `beyond_range`: levels the venue's ladder may hold that `Price` cannot (Kraken's XBT/CHF has
/// an ask at 9,999,999,997 CHF, past the ±9.2e9 that 9 decimals allow in an i64).
fn assert_books_match(report: &CheckReport, r: &Rebuilt, beyond_range: usize) {
    assert!(!report.books.is_empty());
    for (sym, want) in &report.books {
        let (book, synced) = r.books.get(sym).unwrap_or_else(|| panic!("{sym}: no deltas emitted"));
        assert_eq!(*synced, want.synced, "{sym}: synced");
        if !want.synced {
            continue;
        }
        let level = |side: Side| match side {
            Side::Buy => book.best_bid(),
            Side::Sell => book.best_ask(),
        };
        for (side, top) in [(Side::Buy, &want.best_bid), (Side::Sell, &want.best_ask)] {
            let got = level(side).map(|l| (l.price, l.qty));
            let want = top.as_ref().map(|[p, q]| (Price::parse(p).unwrap(), Qty::parse(q).unwrap()));
            assert_eq!(got, want, "{sym} {side:?} top");
        }
        for (got, want, side) in
            [(book.depth(Side::Buy), want.bid_levels, "bid"), (book.depth(Side::Sell), want.ask_levels, "ask")]
        {
            assert!(got <= want && want - got <= beyond_range, "{sym} {side} levels: {got} rebuilt, {want} checked");
        }
    }
}

#[test]
fn okx_events_rebuild_the_checked_books() {
    let (report, r) = rebuild(CheckVenue::Okx, "okx/cryptofeed_OKX.ws.1.0.log.gz");
    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert!(report.checksum.ok >= 40 && report.checksum.failed == 0, "{:?}", report.checksum);
    assert_books_match(&report, &r, 0);
    assert_eq!(r.trades, report.events.get("trade").copied().unwrap_or(0));
    assert!(r.trades > 0 && r.trade_times.iter().all(|t| *t > 1_500_000_000_000_000_000), "venue times in ns");
}

#[test]
fn bybit_events_rebuild_the_checked_books() {
    let (report, r) = rebuild(CheckVenue::Bybit, "bybit/2024-12-01_XRPUSDT_ob500.data.gz");
    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert_books_match(&report, &r, 0);
    assert_eq!((report.gaps, r.clears_unflagged), (0, 0));
}

#[test]
fn a_bybit_gap_is_announced_and_the_book_stays_stale() {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(data("bybit/2024-12-01_XRPUSDT_ob500.data.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    // Lose the tenth message: `u` jumps by two.
    let lossy: Vec<&str> = text.lines().enumerate().filter(|(i, _)| *i != 9).map(|(_, l)| l).collect();
    let path = std::env::temp_dir().join(format!("argus-bybit-gap-{}.jsonl", std::process::id()));
    std::fs::write(&path, lossy.join("\n")).unwrap();
    let (report, r) = rebuild(CheckVenue::Bybit, path.to_str().unwrap());
    assert_eq!(report.gaps, 1);
    assert_eq!(r.clears_unflagged, 1, "the gap is announced downstream");
    let (book, synced) = &r.books["XRPUSDT"];
    assert!(!synced && !report.books["XRPUSDT"].synced, "stale until a snapshot");
    assert_eq!(book.depth(Side::Buy) + book.depth(Side::Sell), 0, "nothing left to trade on");
    // Deltas after the gap are not applied (nor emitted) until a snapshot.
    assert!(report.errors == 0, "{:?}", report.error_samples);
}

#[test]
fn coinbase_events_rebuild_the_checked_books() {
    let (report, r) = rebuild(CheckVenue::Coinbase, "coinbase/cryptofeed_COINBASE.ws.28.0.log.gz");
    assert_books_match(&report, &r, 0);
    // 2021 tickers carry no sizes (added ~2022): not a quote, so none goes out.
    assert_eq!((r.trades, r.quotes), (25, 0), "every match; no sizeless quote");
    assert!(r.trade_times.iter().all(|t| *t > 1_500_000_000_000_000_000), "RFC 3339 venue times read");
}

#[test]
fn kraken_events_rebuild_the_checked_books() {
    let (report, r) = rebuild(CheckVenue::Kraken, "kraken/cryptofeed_KRAKEN.ws.50.0.log.gz");
    assert!(report.checksum.ok > 100 && report.checksum.failed == 0, "{:?}", report.checksum);
    assert_books_match(&report, &r, 1);
    assert_eq!(r.trades, report.events.get("trade").copied().unwrap_or(0));
}

/// The capture with the first frame containing `marker` rewritten so its first size after
/// `size_key` is negative.
fn with_negative_size(file: &str, marker: &str, find: &str, replace: &str) -> PathBuf {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(data(file)).unwrap()).read_to_string(&mut text).unwrap();
    let i = text.find(marker).unwrap();
    let j = i + text[i..].find(find).unwrap();
    text.replace_range(j..j + find.len(), replace);
    let path = std::env::temp_dir().join(format!("argus-negative-{}-{}", std::process::id(), file.replace('/', "-")));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_negative_size_breaks_the_book_instead_of_entering_it() {
    for (venue, file, marker, find, replace, sym) in [
        (
            CheckVenue::Okx,
            "okx/cryptofeed_OKX.ws.1.0.log.gz",
            r#""action":"update""#,
            r#"["30261","4""#,
            r#"["30261","-4""#,
            "BTC-USD-220527",
        ),
        (
            CheckVenue::Bybit,
            "bybit/2024-12-01_XRPUSDT_ob500.data.gz",
            r#""type":"delta""#,
            r#"["1.9531","6198"]"#,
            r#"["1.9531","-6198"]"#,
            "XRPUSDT",
        ),
    ] {
        let path = with_negative_size(file, marker, find, replace);
        let (report, r) = rebuild(venue, path.to_str().unwrap());
        assert!(report.errors >= 1, "{}: counted", venue.as_str());
        assert!(report.error_samples[0].contains("negative"), "{:?}", report.error_samples);
        assert!(report.gaps >= 1 && r.clears_unflagged >= 1, "{}: broken and announced", venue.as_str());
        let (book, _) = &r.books[sym];
        for side in [Side::Buy, Side::Sell] {
            assert!(book.levels(side).all(|l| l.qty.units() > 0), "{}: a negative level entered", venue.as_str());
        }
    }
}
