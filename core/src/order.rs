//! Order intents, approvals and fills.

use crate::{ClientOrderId, InstrumentId, Money, Price, Qty, Side, StrategyId, UnixNanos};

/// How long an order may rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInForce {
    /// Fill what is available up to the limit now; cancel the rest.
    Ioc,
    /// Rest on the book until cancelled.
    Gtc,
}

/// What a strategy would like to do. It has no effect until risk approves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderIntent {
    pub instrument: InstrumentId,
    pub side: Side,
    pub qty: Qty,
    /// Worst acceptable price.
    pub limit: Price,
    pub tif: TimeInForce,
    /// When the strategy decided.
    pub ts: UnixNanos,
    /// Who decided; per-strategy loss limits key on it.
    pub strategy: StrategyId,
}

/// A value that passed the risk chain.
///
/// Executors accept only `Approved<OrderIntent>`, and only `argus-risk` can build one: the
/// constructor exists only with this crate's `approve` feature, which no crate but `argus-risk`
/// enables (`make test` checks the dependency graph for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approved<T>(T);

impl<T> Approved<T> {
    /// Marks `inner` approved. Only the risk chain calls this.
    #[cfg(feature = "approve")]
    #[doc(hidden)]
    pub fn new_by_risk(inner: T) -> Self {
        Self(inner)
    }

    pub fn inner(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

/// An execution of (part of) an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    pub order: ClientOrderId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub qty: Qty,
    /// Volume-weighted price of this fill, truncated to `10^-9`.
    pub avg_price: Price,
    /// Exact quote amount exchanged.
    pub notional: Money,
    /// Fee paid, in quote currency.
    pub fee: Money,
    /// Book levels the fill walked through.
    pub levels: u32,
    /// Venue time of the execution.
    pub ts: UnixNanos,
    /// True when our resting order provided the liquidity (maker fee), false when it took it.
    pub maker: bool,
}

/// Why an order is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Filled,
    Cancelled,
    /// Immediate-or-cancel remainder with nothing (more) to take.
    Expired,
}

impl CloseReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Filled => "filled",
            CloseReason::Cancelled => "cancelled",
            CloseReason::Expired => "expired",
        }
    }
}

/// What a venue tells us about our orders, in the order it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecReport {
    /// The order rests on the venue's book.
    Resting(ClientOrderId),
    Fill(Fill),
    /// Nothing more will happen to the order.
    Closed {
        id: ClientOrderId,
        reason: CloseReason,
    },
    /// A cancel reached the venue after the order was done.
    CancelRejected(ClientOrderId),
}
