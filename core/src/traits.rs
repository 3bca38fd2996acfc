//! The boundaries between stages. Each stage is a trait so the hot thread can be wired with the
//! live or the simulated implementation without knowing which.

use crate::{
    Approved, ClientOrderId, ExecReport, InstrumentId, MarketEvent, MarketStatus, OrderBook, OrderIntent, Position,
    UnixNanos,
};

/// Model outputs for the current event.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scores {
    /// Expected short-horizon mid return, in basis points.
    pub signal: f32,
    /// Probability that the coming move is abnormal (0..1).
    pub anomaly: f32,
}

/// What strategies and risk checks may look at. Borrowed from the hot thread for one event.
#[derive(Debug, Clone, Copy)]
pub struct State<'a> {
    pub now: UnixNanos,
    pub instrument: InstrumentId,
    pub book: &'a OrderBook,
    /// Feature vector in the order of the model manifest.
    pub features: &'a [f32],
    pub scores: Scores,
    pub position: &'a Position,
    pub market: MarketStatus,
}

impl State<'_> {
    /// True when filling `o` completely shrinks the position without flipping its sign.
    pub fn reduces_risk(&self, o: &OrderIntent) -> bool {
        let before = self.position.qty.units();
        match self.position.after(o.side, o.qty) {
            Some(after) => {
                let after = after.units();
                before != 0 && after.signum() * before.signum() >= 0 && after.unsigned_abs() < before.unsigned_abs()
            }
            None => false,
        }
    }
}

/// Turns events into order intents. Pure: no I/O, no clocks but `State::now`.
pub trait Strategy {
    /// Appends zero or more intents to `out` (a caller-owned buffer, cleared by the caller).
    fn on_event(&mut self, ev: &MarketEvent, st: &State<'_>, out: &mut Vec<OrderIntent>);

    /// The next receive-clock time at which the strategy wants [`Strategy::on_timer`], if any.
    /// The hot thread fires it before the first event received after that time.
    fn next_timer(&self) -> Option<UnixNanos> {
        None
    }

    /// A timer set by [`Strategy::next_timer`] is due; `st.now` is its time.
    fn on_timer(&mut self, st: &State<'_>, out: &mut Vec<OrderIntent>) {
        let _ = (st, out);
    }
}

/// Why the risk chain refused an intent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    MaxOrderQty,
    MaxPosition,
    MaxNotional,
    PriceBand,
    OrderRate,
    AnomalyBlock,
    /// No two-sided book to price the order against.
    NoMarket,
    /// The kill switch is engaged.
    Halted,
    /// The engine is reducing risk and this order would not.
    ReducingOnly,
    /// No trading rules for the instrument, or it is not tradable.
    UnknownInstrument,
    /// Limit price not on the instrument's tick.
    OffTick,
    /// Quantity not on the instrument's lot step.
    OffLot,
    /// Quantity outside the instrument's min/max.
    QtyOutOfRange,
    /// Notional below the venue minimum.
    MinNotional,
    /// The book is resetting or resyncing.
    BookNotReady,
    /// The book has not changed for longer than allowed.
    StaleBook,
    /// Gross notional exposure (per venue or in total) would exceed its limit.
    MaxGrossExposure,
    /// Net notional exposure (per venue or in total) would exceed its limit.
    MaxNetExposure,
    /// Too many of our orders rest on books.
    MaxOpenOrders,
    /// Too many orders sent and not yet acknowledged.
    MaxInFlight,
    /// The order would cross one of our own resting orders.
    SelfTrade,
    /// Our clock and the venue's disagree by more than allowed (or no measurement yet).
    ClockSkew,
    /// The strategy's own loss limit halted it.
    StrategyHalted,
    /// The strategy's own drawdown limit allows it only risk-reducing orders.
    StrategyReducingOnly,
    /// Cancel refused by the cancel-rate limit.
    CancelRate,
}

impl Reject {
    /// Every reason, for reports and metric labels.
    pub const ALL: [Reject; 25] = [
        Reject::MaxOrderQty,
        Reject::MaxPosition,
        Reject::MaxNotional,
        Reject::PriceBand,
        Reject::OrderRate,
        Reject::AnomalyBlock,
        Reject::NoMarket,
        Reject::Halted,
        Reject::ReducingOnly,
        Reject::UnknownInstrument,
        Reject::OffTick,
        Reject::OffLot,
        Reject::QtyOutOfRange,
        Reject::MinNotional,
        Reject::BookNotReady,
        Reject::StaleBook,
        Reject::MaxGrossExposure,
        Reject::MaxNetExposure,
        Reject::MaxOpenOrders,
        Reject::MaxInFlight,
        Reject::SelfTrade,
        Reject::ClockSkew,
        Reject::StrategyHalted,
        Reject::StrategyReducingOnly,
        Reject::CancelRate,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Reject::MaxOrderQty => "max_order_qty",
            Reject::MaxPosition => "max_position",
            Reject::MaxNotional => "max_notional",
            Reject::PriceBand => "price_band",
            Reject::OrderRate => "order_rate",
            Reject::AnomalyBlock => "anomaly_block",
            Reject::NoMarket => "no_market",
            Reject::Halted => "halted",
            Reject::ReducingOnly => "reducing_only",
            Reject::UnknownInstrument => "unknown_instrument",
            Reject::OffTick => "off_tick",
            Reject::OffLot => "off_lot",
            Reject::QtyOutOfRange => "qty_out_of_range",
            Reject::MinNotional => "min_notional",
            Reject::BookNotReady => "book_not_ready",
            Reject::StaleBook => "stale_book",
            Reject::MaxGrossExposure => "max_gross_exposure",
            Reject::MaxNetExposure => "max_net_exposure",
            Reject::MaxOpenOrders => "max_open_orders",
            Reject::MaxInFlight => "max_in_flight",
            Reject::SelfTrade => "self_trade",
            Reject::ClockSkew => "clock_skew",
            Reject::StrategyHalted => "strategy_halted",
            Reject::StrategyReducingOnly => "strategy_reducing_only",
            Reject::CancelRate => "cancel_rate",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// One pre-trade check.
pub trait RiskCheck {
    fn check(&self, o: &OrderIntent, st: &State<'_>) -> Result<(), Reject>;
}

/// Why an executor refused an approved order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("no liquidity at or inside the limit")]
    NoLiquidity,
    #[error("execution queue full")]
    QueueFull,
    #[error("no such open order")]
    UnknownOrder,
    #[error("venue rejected the order: {0}")]
    Venue(String),
}

/// Sends approved orders somewhere: a paper simulator or a venue gateway.
pub trait Executor {
    /// # Errors
    /// When the order cannot be sent or filled.
    fn submit(&mut self, o: Approved<OrderIntent>) -> Result<ClientOrderId, ExecError>;
    /// Asks the venue to cancel an open order.
    ///
    /// # Errors
    /// When the order is not open there or the request cannot be sent.
    fn cancel(&mut self, id: ClientOrderId) -> Result<(), ExecError>;
    /// Moves the reports received since the last call into `out`, oldest first.
    fn poll(&mut self, out: &mut Vec<ExecReport>);
}

/// Why a model could not score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scoring failed: {0}")]
pub struct ScoreError(pub String);

/// Scores a feature vector.
pub trait Scorer {
    /// Writes one value per model output into `out`.
    ///
    /// # Errors
    /// When the model fails; the hot thread counts it and skips the event's decision.
    fn score(&mut self, features: &[f32], out: &mut [f32]) -> Result<(), ScoreError>;
}
