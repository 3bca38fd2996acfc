//! On-chain vocabulary: addresses, hashes, decoded transactions with their token events, and
//! the chain events the monitor thread consumes (a block, or the retraction of an orphaned one).
//!
//! Everything here is already decoded: the chain feed turns JSON-RPC into these types at the
//! edge, and detectors never see hex strings.

use std::fmt;

use crate::U256;

/// A 20-byte account or contract address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 20]);

/// A 32-byte hash (block, transaction) or log topic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct H256(pub [u8; 32]);

/// Not a `0x`-prefixed hex string of the expected length.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected 0x and {expected} hex digits, got `{got}`")]
pub struct HexError {
    pub expected: usize,
    pub got: String,
}

/// The value of each ASCII hex digit; `0xff` for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xff_u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The value of a hex digit (any case), `None` for any other byte. A table lookup: JSON-RPC
/// blocks are mostly hex, so this is the decoder's inner loop.
#[inline]
pub fn hex_digit(b: u8) -> Option<u8> {
    let v = HEX_VALUE[usize::from(b)];
    (v != 0xff).then_some(v)
}

/// Decodes hex digit pairs into `out` (`hex` twice as long); false on a non-hex byte.
#[inline]
pub fn decode_hex_into(hex: &[u8], out: &mut [u8]) -> bool {
    let mut bad = 0_u8;
    for (pair, o) in hex.chunks_exact(2).zip(out.iter_mut()) {
        let (hi, lo) = (HEX_VALUE[usize::from(pair[0])], HEX_VALUE[usize::from(pair[1])]);
        // Invalid digits are 0xff: any one sets the high bit.
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0xf);
    }
    bad & 0x80 == 0
}

fn parse_fixed_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let err = || HexError { expected: N * 2, got: s.chars().take(80).collect() };
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).ok_or_else(err)?.as_bytes();
    if h.len() != N * 2 {
        return Err(err());
    }
    let mut out = [0_u8; N];
    if !decode_hex_into(h, &mut out) {
        return Err(err());
    }
    Ok(out)
}

/// Lower-case hex digits of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

/// `0x` + lower-case hex in one write (alerts format many addresses and hashes).
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut buf = [0_u8; 2 + 64];
    buf[..2].copy_from_slice(b"0x");
    let n = bytes.len().min(32);
    hex_into(&bytes[..n], &mut buf[2..2 + 2 * n]);
    // Only ASCII hex digits were written.
    f.write_str(std::str::from_utf8(&buf[..2 + 2 * n]).map_err(|_| fmt::Error)?)
}

impl Address {
    /// `0x000…0`: the mint source and burn sink of token transfers.
    pub const ZERO: Address = Address([0; 20]);

    /// Parses `0x` + 40 hex digits (any case).
    ///
    /// # Errors
    /// Wrong prefix, length or digit.
    pub fn from_hex(s: &str) -> Result<Self, HexError> {
        parse_fixed_hex::<20>(s).map(Address)
    }

    /// The address in the low 20 bytes of an ABI word or log topic.
    pub fn from_word(w: &[u8; 32]) -> Self {
        let mut a = [0_u8; 20];
        a.copy_from_slice(&w[12..]);
        Address(a)
    }

    /// Lower-case hex digits without `0x`, for prefix/suffix comparisons.
    pub fn hex_digits(&self) -> [u8; 40] {
        let mut out = [0_u8; 40];
        hex_into(&self.0, &mut out);
        out
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 20]
    }
}

impl H256 {
    /// Parses `0x` + 64 hex digits (any case).
    ///
    /// # Errors
    /// Wrong prefix, length or digit.
    pub fn from_hex(s: &str) -> Result<Self, HexError> {
        parse_fixed_hex::<32>(s).map(H256)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Display for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Debug for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// A token event decoded from a log, by the standard event signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenEvent {
    /// ERC-20 `Transfer(from, to, value)` (three topics and a 32-byte value).
    Transfer { token: Address, from: Address, to: Address, value: U256 },
    /// ERC-20 `Approval(owner, spender, value)`.
    Approval { token: Address, owner: Address, spender: Address, value: U256 },
    /// ERC-721 `Transfer(from, to, tokenId)` (four topics).
    NftTransfer { token: Address, from: Address, to: Address, token_id: U256 },
    /// ERC-721/1155 `ApprovalForAll(owner, operator, approved)`.
    ApprovalForAll { token: Address, owner: Address, operator: Address, approved: bool },
    /// ERC-1155 `TransferSingle` / `TransferBatch` (a batch counts its ids).
    MultiTransfer { token: Address, operator: Address, from: Address, to: Address, ids: u32 },
}

/// The method a transaction calls, for the selectors that matter to fraud detection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// No input: a plain value transfer.
    Plain,
    Transfer {
        to: Address,
        value: U256,
    },
    Approve {
        spender: Address,
        value: U256,
    },
    IncreaseAllowance {
        spender: Address,
        added: U256,
    },
    /// EIP-2612 `permit` (and DAI's variant: `value` is then 0 or max by `allowed`).
    Permit {
        owner: Address,
        spender: Address,
        value: U256,
    },
    SetApprovalForAll {
        operator: Address,
        approved: bool,
    },
    TransferFrom {
        from: Address,
        to: Address,
        value: U256,
    },
    /// `multicall(bytes[])` or `multicall(uint256,bytes[])`: how many inner calls.
    Multicall {
        calls: u32,
    },
    /// Contract creation (no `to`).
    Create,
    /// Any other selector, or input too short to decode as its selector's arguments.
    Other {
        selector: [u8; 4],
    },
}

/// One transaction with its receipt's outcome and token events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTx {
    pub hash: H256,
    pub index: u32,
    pub from: Address,
    pub to: Option<Address>,
    pub value: U256,
    pub nonce: u64,
    pub gas: u64,
    /// Effective gas price from the receipt, or the transaction's `gasPrice`/`maxFeePerGas`.
    pub gas_price: U256,
    pub gas_used: Option<u64>,
    /// `Some(false)` for a reverted transaction; `None` when no receipt status was given.
    pub success: Option<bool>,
    pub created: Option<Address>,
    pub call: Call,
    pub events: Vec<TokenEvent>,
}

/// One block, decoded, with the facts the feed looked up for its detectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBlock {
    pub chain_id: u64,
    pub number: u64,
    pub hash: H256,
    pub parent_hash: H256,
    /// Seconds since the epoch (the block's own timestamp).
    pub timestamp: u64,
    /// When the feed received the head, ns since the epoch.
    pub recv_ns: u64,
    pub txs: Vec<ChainTx>,
    /// The approval grantees the feed looked up (`eth_getCode`), with whether each holds code.
    /// A grantee not listed was not looked up, and detectors must not assume it is an EOA.
    pub grantees: Vec<(Address, bool)>,
}

/// What the chain feed hands the monitor thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainEvent {
    /// A canonical block, in order (a block's parent was delivered before it).
    Block(Box<ChainBlock>),
    /// A previously delivered block was orphaned by a reorg; newest first, then the canonical
    /// replacements follow as `Block`s.
    Orphaned { chain_id: u64, number: u64, hash: H256 },
    /// A transaction the node announced before any block holds it (`newPendingTransactions`):
    /// no receipt, no logs, and it may never be mined. The same transaction comes again inside
    /// its block if it is.
    Pending(Box<PendingTx>),
}

/// A pending transaction with the facts the feed looked up for its detectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingTx {
    pub chain_id: u64,
    /// When the feed took the announcement up (after any block sync already under way), ns
    /// since the epoch.
    pub recv_ns: u64,
    /// Decoded as in a block; `index` is 0 and the receipt's fields are unknown.
    pub tx: ChainTx,
    /// The grantee of an approval call, looked up (`eth_getCode`): with whether it holds code.
    pub grantees: Vec<(Address, bool)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let a = Address::from_hex("0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1").unwrap();
        assert_eq!(a.to_string(), "0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1");
        assert_eq!(&a.hex_digits()[..4], b"90f8");
        assert!(Address::from_hex("0x90f8").is_err());
        assert!(Address::from_hex("90f8bf6a479f320ead074411a4b0e7944ea8c9c1").is_err());
        assert!(Address::from_hex("0xz0f8bf6a479f320ead074411a4b0e7944ea8c9c1").is_err());
        let mut w = [0_u8; 32];
        w[12..].copy_from_slice(&a.0);
        assert_eq!(Address::from_word(&w), a);
        let h = H256::from_hex(&format!("0x{}", "ab".repeat(32))).unwrap();
        assert_eq!(h.to_string(), format!("0x{}", "ab".repeat(32)));
    }

    #[test]
    fn the_hex_table_agrees_with_to_digit_on_every_byte() {
        for b in 0..=255_u8 {
            assert_eq!(hex_digit(b).map(u32::from), (b as char).to_digit(16), "byte {b}");
            // A bad byte anywhere in a pair is caught, whichever half it is in.
            let mut out = [0_u8; 2];
            let ok = (b as char).is_ascii_hexdigit();
            assert_eq!(decode_hex_into(&[b, b'0', b'1', b'f'], &mut out), ok);
            assert_eq!(decode_hex_into(&[b'a', b'0', b'1', b], &mut out), ok);
        }
        let mut out = [0_u8; 3];
        assert!(decode_hex_into(b"00fFa7", &mut out));
        assert_eq!(out, [0x00, 0xff, 0xa7]);
    }
}
