//! Static instrument metadata, looked up by [`InstrumentId`].

use crate::{InstrumentId, Venue};

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
}

/// Instruments of a run, indexed by [`InstrumentId`]. Built at start-up, read-only afterwards.
#[derive(Debug, Clone, Default)]
pub struct InstrumentTable {
    instruments: Vec<Instrument>,
}

impl InstrumentTable {
    /// Adds an instrument and returns its id.
    pub fn add(&mut self, venue: Venue, symbol: &str, price_decimals: u8, size_decimals: u8) -> InstrumentId {
        let id = InstrumentId(self.instruments.len() as u32);
        self.instruments.push(Instrument { id, venue, symbol: symbol.to_owned(), price_decimals, size_decimals });
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
