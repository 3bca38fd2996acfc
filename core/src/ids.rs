//! Identifiers and small enums shared by every stage.

use std::fmt;

/// Nanoseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixNanos(pub u64);

impl UnixNanos {
    /// From milliseconds, as venues send event times.
    #[inline]
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms.saturating_mul(1_000_000))
    }

    /// A UTC timestamp as venues print it: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS`, with an optional
    /// fraction of up to 9 digits (more are cut) and an optional `Z` or `+00:00` (`2023-02-09T20:32:50.714964855Z`).
    /// `None` for anything else, times before 1970 and other offsets.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00")).unwrap_or(s);
        let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
        let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
        let (Some(Some(y)), Some(Some(m)), Some(Some(day)), None) = (d.next(), d.next(), d.next(), d.next()) else {
            return None;
        };
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
        let (Some(Some(hh)), Some(Some(mm)), Some(Some(ss)), None) = (t.next(), t.next(), t.next(), t.next()) else {
            return None;
        };
        if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        let mut nanos = 0_u64;
        for (i, c) in frac.bytes().enumerate() {
            let digit = c.checked_sub(b'0').filter(|d| *d <= 9)?;
            if i < 9 {
                nanos = nanos * 10 + u64::from(digit);
            }
        }
        nanos *= 10_u64.pow(9_u32.saturating_sub(frac.len() as u32));
        // days_from_civil (Howard Hinnant).
        let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
        Some(Self(secs.checked_mul(1_000_000_000)?.checked_add(nanos)?))
    }

    /// Nanoseconds from `earlier` to `self`, zero when `earlier` is later.
    #[inline]
    pub const fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Debug for UnixNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ns", self.0)
    }
}

/// Where an event came from or an order goes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Venue {
    BinanceSpot,
    BinanceUsdm,
    Coinbase,
    Kraken,
    Bybit,
    Okx,
    /// A simulated venue (paper trading, backtest).
    Sim,
}

impl Venue {
    /// Every venue, in [`Venue::index`] order.
    pub const ALL: [Venue; 7] =
        [Venue::BinanceSpot, Venue::BinanceUsdm, Venue::Coinbase, Venue::Kraken, Venue::Bybit, Venue::Okx, Venue::Sim];

    /// Dense index, for per-venue arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Venue::BinanceSpot => "binance_spot",
            Venue::BinanceUsdm => "binance_usdm",
            Venue::Coinbase => "coinbase",
            Venue::Kraken => "kraken",
            Venue::Bybit => "bybit",
            Venue::Okx => "okx",
            Venue::Sim => "sim",
        }
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which strategy of a run produced an intent; per-strategy loss limits key on it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct StrategyId(pub u16);

/// Index into the [`crate::InstrumentTable`]; cheap to copy and compare on the hot path.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct InstrumentId(pub u32);

/// An order id chosen by argus, unique within a run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ClientOrderId(pub u64);

/// Book side or order direction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Bid side / buy order.
    Buy,
    /// Ask side / sell order.
    Sell,
}

impl Side {
    #[inline]
    pub const fn opposite(self) -> Self {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// `+1` for buys, `-1` for sells.
    #[inline]
    pub const fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UnixNanos;

    #[test]
    fn rfc3339_as_venues_print_it() {
        let p = |s| UnixNanos::parse_rfc3339(s).map(|t| t.0);
        assert_eq!(p("1970-01-01"), Some(0));
        assert_eq!(p("2024-08-08T00:00:00Z"), Some(1_723_075_200_000_000_000));
        assert_eq!(p("2023-02-09T20:32:50.714964855Z"), Some(1_675_974_770_714_964_855));
        assert_eq!(p("2023-02-09T20:32:50.7Z"), Some(1_675_974_770_700_000_000));
        assert_eq!(p("2023-02-09T20:32:50.7149648551Z"), Some(1_675_974_770_714_964_855), "past 9 digits cut");
        assert_eq!(p("2023-02-09 20:32:50+00:00"), Some(1_675_974_770_000_000_000));
        for bad in
            ["", "2023-02-09T20:32", "2023-13-01", "2023-02-09T20:32:50.7x", "1969-12-31", "2023-02-09T20:32:50+01:00"]
        {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
