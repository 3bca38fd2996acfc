//! Static instrument metadata, looked up by [`InstrumentId`].

use crate::{InstrumentId, Money, Price, Qty, UnixNanos, Venue};

/// Trading rules of an instrument, as the venue publishes them (Binance `exchangeInfo` filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentSpec {
    /// Price increment (`PRICE_FILTER.tickSize`).
    pub tick: Price,
    /// Quantity increment (`LOT_SIZE.stepSize`).
    pub lot: Qty,
    pub min_qty: Qty,
    pub max_qty: Qty,
    /// Smallest `price * qty` accepted (`NOTIONAL.minNotional`).
    pub min_notional: Money,
    pub tradable: bool,
}

impl InstrumentSpec {
    /// Binance spot BTCUSDT.
    pub const BINANCE_SPOT_BTCUSDT: Self = Self {
        tick: Price::from_units(10_000_000),
        lot: Qty::from_units(10_000),
        min_qty: Qty::from_units(10_000),
        max_qty: Qty::from_units(9_000 * 1_000_000_000),
        min_notional: Money(5 * 1_000_000_000),
        tradable: true,
    };

    /// No constraints beyond the fixed-point grid: for tests and tools without venue metadata.
    pub const UNCONSTRAINED: Self = Self {
        tick: Price::from_units(1),
        lot: Qty::from_units(1),
        min_qty: Qty::from_units(1),
        max_qty: Qty::MAX,
        min_notional: Money(0),
        tradable: true,
    };
}

/// What the hot thread knows about the market of the instrument an order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketStatus {
    /// `None` when the instrument is unknown: every order is rejected.
    pub spec: Option<InstrumentSpec>,
    /// False from a book reset until its snapshot has been applied.
    pub book_synced: bool,
    /// Venue time of the last applied book change.
    pub last_book_update: UnixNanos,
    /// Receive time minus venue time of the latest event that carried both, in nanoseconds:
    /// network delay plus the skew between our clock and the venue's. `None` before any.
    pub clock_skew_ns: Option<i64>,
}

impl MarketStatus {
    /// A synced book under [`InstrumentSpec::UNCONSTRAINED`], updated at time zero.
    pub const fn permissive() -> Self {
        Self {
            spec: Some(InstrumentSpec::UNCONSTRAINED),
            book_synced: true,
            last_book_update: UnixNanos(0),
            clock_skew_ns: Some(0),
        }
    }
}

/// What a venue lists: symbol and the precision it prints prices and sizes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    pub id: InstrumentId,
    pub venue: Venue,
    /// Venue symbol as sent on the wire, e.g. `BTCUSDT`.
    pub symbol: String,
    /// Fractional digits of the venue's price strings.
    pub price_decimals: u8,
    /// Fractional digits of the venue's size strings.
    pub size_decimals: u8,
    pub spec: InstrumentSpec,
}

/// Instruments of a run, indexed by [`InstrumentId`]. Built at start-up, read-only afterwards.
#[derive(Debug, Clone, Default)]
pub struct InstrumentTable {
    instruments: Vec<Instrument>,
}

impl InstrumentTable {
    /// Adds an instrument and returns its id.
    pub fn add(
        &mut self,
        venue: Venue,
        symbol: &str,
        price_decimals: u8,
        size_decimals: u8,
        spec: InstrumentSpec,
    ) -> InstrumentId {
        let id = InstrumentId(self.instruments.len() as u32);
        self.instruments.push(Instrument { id, venue, symbol: symbol.to_owned(), price_decimals, size_decimals, spec });
        id
    }

    pub fn get(&self, id: InstrumentId) -> Option<&Instrument> {
        self.instruments.get(id.0 as usize)
    }

    /// Finds an instrument by venue and symbol (case-insensitive).
    pub fn find(&self, venue: Venue, symbol: &str) -> Option<&Instrument> {
        self.instruments.iter().find(|i| i.venue == venue && i.symbol.eq_ignore_ascii_case(symbol))
    }

    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Instrument> {
        self.instruments.iter()
    }
}
