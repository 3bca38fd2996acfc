//! What the venue targets share: a run of frames (one per line) through a venue's live
//! normalizer and book sync, as `argus live` feeds them.

use argus_core::{MarketEventKind, UnixNanos};
use argus_feeds::check::{CheckVenue, LiveChecker};

/// Feeds each line of `data` to a fresh live checker of `venue`: nothing may panic and no
/// event may carry a negative size.
pub fn stream(venue: CheckVenue, data: &[u8]) {
    let mut checker = LiveChecker::new(venue);
    let text = String::from_utf8_lossy(data);
    for (i, line) in text.lines().enumerate() {
        checker.on_frame(line, UnixNanos(i as u64 + 1), |_, ev| match ev.kind {
            MarketEventKind::Delta(d) => assert!(d.qty.units() >= 0, "negative level size"),
            MarketEventKind::Trade(t) => assert!(t.qty.units() >= 0, "negative trade size"),
            _ => {}
        });
    }
}
