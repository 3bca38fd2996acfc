//! The ABI facts fraud detection needs: method selectors of approvals and transfers, and the
//! standard token event signatures (ERC-20, ERC-721, ERC-1155), decoded from raw bytes.

use argus_core::{Address, Call, TokenEvent, H256, U256};

/// `keccak256("Transfer(address,address,uint256)")`: ERC-20 (3 topics) and ERC-721 (4 topics).
pub const TOPIC_TRANSFER: [u8; 32] = hex32("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
/// `Approval(address,address,uint256)`.
pub const TOPIC_APPROVAL: [u8; 32] = hex32("8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925");
/// `ApprovalForAll(address,address,bool)`.
pub const TOPIC_APPROVAL_FOR_ALL: [u8; 32] = hex32("17307eab39ab6107e8899845ad3d59bd9653f200f220920489ca2b5937696c31");
/// `TransferSingle(address,address,address,uint256,uint256)`.
pub const TOPIC_TRANSFER_SINGLE: [u8; 32] = hex32("c3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62");
/// `TransferBatch(address,address,address,uint256[],uint256[])`.
pub const TOPIC_TRANSFER_BATCH: [u8; 32] = hex32("4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb");

pub const SEL_TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
pub const SEL_APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
pub const SEL_INCREASE_ALLOWANCE: [u8; 4] = [0x39, 0x50, 0x93, 0x51];
/// EIP-2612 `permit(address,address,uint256,uint256,uint8,bytes32,bytes32)`.
pub const SEL_PERMIT: [u8; 4] = [0xd5, 0x05, 0xac, 0xcf];
/// DAI's `permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)`.
pub const SEL_PERMIT_DAI: [u8; 4] = [0x8f, 0xcb, 0xaf, 0x0c];
pub const SEL_SET_APPROVAL_FOR_ALL: [u8; 4] = [0xa2, 0x2c, 0xb4, 0x65];
pub const SEL_TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
/// `multicall(bytes[])`.
pub const SEL_MULTICALL: [u8; 4] = [0xac, 0x96, 0x50, 0xd8];
/// `multicall(uint256,bytes[])` (Uniswap's deadline variant).
pub const SEL_MULTICALL_DEADLINE: [u8; 4] = [0x5a, 0xe4, 0x01, 0xdc];

const fn hex32(s: &str) -> [u8; 32] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex in a constant"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0_u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nib(b[2 * i]) * 16 + nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// The `i`-th 32-byte argument word after the selector.
fn word(args: &[u8], i: usize) -> Option<&[u8; 32]> {
    args.get(32 * i..32 * (i + 1)).and_then(|w| w.try_into().ok())
}

fn addr(args: &[u8], i: usize) -> Option<Address> {
    word(args, i).map(Address::from_word)
}

fn uint(args: &[u8], i: usize) -> Option<U256> {
    word(args, i).map(U256::from_be_bytes)
}

fn boolean(args: &[u8], i: usize) -> Option<bool> {
    uint(args, i).map(|v| !v.is_zero())
}

/// The call a transaction makes, from its `to` and input bytes.
pub fn decode_call(to: Option<Address>, input: &[u8]) -> Call {
    if to.is_none() {
        return Call::Create;
    }
    if input.is_empty() {
        return Call::Plain;
    }
    let Some(selector) = input.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
        return Call::Other { selector: [0; 4] };
    };
    let a = &input[4..];
    let decoded = match selector {
        SEL_TRANSFER => (|| Some(Call::Transfer { to: addr(a, 0)?, value: uint(a, 1)? }))(),
        SEL_APPROVE => (|| Some(Call::Approve { spender: addr(a, 0)?, value: uint(a, 1)? }))(),
        SEL_INCREASE_ALLOWANCE => (|| Some(Call::IncreaseAllowance { spender: addr(a, 0)?, added: uint(a, 1)? }))(),
        SEL_PERMIT => (|| Some(Call::Permit { owner: addr(a, 0)?, spender: addr(a, 1)?, value: uint(a, 2)? }))(),
        SEL_PERMIT_DAI => (|| {
            let allowed = boolean(a, 4)?;
            Some(Call::Permit {
                owner: addr(a, 0)?,
                spender: addr(a, 1)?,
                value: if allowed { U256::MAX } else { U256::ZERO },
            })
        })(),
        SEL_SET_APPROVAL_FOR_ALL => {
            (|| Some(Call::SetApprovalForAll { operator: addr(a, 0)?, approved: boolean(a, 1)? }))()
        }
        SEL_TRANSFER_FROM => (|| Some(Call::TransferFrom { from: addr(a, 0)?, to: addr(a, 1)?, value: uint(a, 2)? }))(),
        SEL_MULTICALL => array_len(a, 0).map(|calls| Call::Multicall { calls }),
        SEL_MULTICALL_DEADLINE => array_len(a, 1).map(|calls| Call::Multicall { calls }),
        _ => None,
    };
    decoded.unwrap_or(Call::Other { selector })
}

/// The length of a dynamic array whose offset is argument `i`.
fn array_len(args: &[u8], i: usize) -> Option<u32> {
    let offset = uint(args, i)?.as_u64()?;
    let at = usize::try_from(offset).ok()?;
    let len = args.get(at..at + 32).and_then(|w| <&[u8; 32]>::try_from(w).ok()).map(U256::from_be_bytes)?;
    u32::try_from(len.as_u64()?).ok()
}

/// A token event from a log's emitter, topics and data; `None` for any other event (or a log
/// too short for its signature, which a non-standard contract can emit).
pub fn decode_log(emitter: Address, topics: &[H256], data: &[u8]) -> Option<TokenEvent> {
    let t0 = topics.first()?.0;
    let topic_addr = |i: usize| topics.get(i).map(|t| Address::from_word(&t.0));
    match (t0, topics.len()) {
        (TOPIC_TRANSFER, 3) => Some(TokenEvent::Transfer {
            token: emitter,
            from: topic_addr(1)?,
            to: topic_addr(2)?,
            value: uint(data, 0)?,
        }),
        (TOPIC_TRANSFER, 4) => Some(TokenEvent::NftTransfer {
            token: emitter,
            from: topic_addr(1)?,
            to: topic_addr(2)?,
            token_id: U256::from_be_bytes(&topics[3].0),
        }),
        (TOPIC_APPROVAL, 3) => Some(TokenEvent::Approval {
            token: emitter,
            owner: topic_addr(1)?,
            spender: topic_addr(2)?,
            value: uint(data, 0)?,
        }),
        // ERC-721 Approval(owner, approved, tokenId): one token, reported as an approval of 1.
        (TOPIC_APPROVAL, 4) => Some(TokenEvent::Approval {
            token: emitter,
            owner: topic_addr(1)?,
            spender: topic_addr(2)?,
            value: U256::from_u64(1),
        }),
        (TOPIC_APPROVAL_FOR_ALL, 3) => Some(TokenEvent::ApprovalForAll {
            token: emitter,
            owner: topic_addr(1)?,
            operator: topic_addr(2)?,
            approved: boolean(data, 0)?,
        }),
        (TOPIC_TRANSFER_SINGLE, 4) => Some(TokenEvent::MultiTransfer {
            token: emitter,
            operator: topic_addr(1)?,
            from: topic_addr(2)?,
            to: topic_addr(3)?,
            ids: 1,
        }),
        (TOPIC_TRANSFER_BATCH, 4) => Some(TokenEvent::MultiTransfer {
            token: emitter,
            operator: topic_addr(1)?,
            from: topic_addr(2)?,
            to: topic_addr(3)?,
            ids: array_len(data, 0)?,
        }),
        _ => None,
    }
}

/// Hex data (`0x…`, even length) to bytes.
pub fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let h = s.strip_prefix("0x")?.as_bytes();
    if h.len() % 2 != 0 {
        return None;
    }
    let mut out = vec![0_u8; h.len() / 2];
    argus_core::decode_hex_into(h, &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w_addr(a: &Address) -> Vec<u8> {
        let mut w = vec![0_u8; 12];
        w.extend_from_slice(&a.0);
        w
    }
    fn w_u(v: u64) -> Vec<u8> {
        let mut w = vec![0_u8; 24];
        w.extend_from_slice(&v.to_be_bytes());
        w
    }

    #[test]
    fn selectors_decode_their_arguments() {
        let token = Some(Address([7; 20]));
        let spender = Address([0xab; 20]);
        let input = [SEL_APPROVE.to_vec(), w_addr(&spender), w_u(1000)].concat();
        assert_eq!(decode_call(token, &input), Call::Approve { spender, value: U256::from_u64(1000) });
        let input = [SEL_SET_APPROVAL_FOR_ALL.to_vec(), w_addr(&spender), w_u(1)].concat();
        assert_eq!(decode_call(token, &input), Call::SetApprovalForAll { operator: spender, approved: true });
        let owner = Address([1; 20]);
        let input = [SEL_PERMIT.to_vec(), w_addr(&owner), w_addr(&spender), w_u(5), w_u(0), w_u(27)].concat();
        assert_eq!(decode_call(token, &input), Call::Permit { owner, spender, value: U256::from_u64(5) });
        let input = [SEL_TRANSFER_FROM.to_vec(), w_addr(&owner), w_addr(&spender), w_u(9)].concat();
        assert_eq!(
            decode_call(token, &input),
            Call::TransferFrom { from: owner, to: spender, value: U256::from_u64(9) }
        );
        // multicall(bytes[]) with two inner calls: offset 0x20, length 2.
        let input = [SEL_MULTICALL.to_vec(), w_u(32), w_u(2)].concat();
        assert_eq!(decode_call(token, &input), Call::Multicall { calls: 2 });
        // Truncated arguments are not a panic: the selector is kept.
        assert_eq!(decode_call(token, &SEL_APPROVE), Call::Other { selector: SEL_APPROVE });
        assert_eq!(decode_call(token, &[1, 2]), Call::Other { selector: [0; 4] });
        assert_eq!(decode_call(token, &[]), Call::Plain);
        assert_eq!(decode_call(None, &[0x60]), Call::Create);
    }

    #[test]
    fn token_events_by_signature_and_topic_count() {
        let token = Address([9; 20]);
        let t = |a: &Address| {
            let mut w = [0_u8; 32];
            w[12..].copy_from_slice(&a.0);
            H256(w)
        };
        let (a, b) = (Address([1; 20]), Address([2; 20]));
        let ev = decode_log(token, &[H256(TOPIC_TRANSFER), t(&a), t(&b)], &w_u(100));
        assert_eq!(ev, Some(TokenEvent::Transfer { token, from: a, to: b, value: U256::from_u64(100) }));
        let mut id = [0_u8; 32];
        id[31] = 42;
        let ev = decode_log(token, &[H256(TOPIC_TRANSFER), t(&a), t(&b), H256(id)], &[]);
        assert_eq!(ev, Some(TokenEvent::NftTransfer { token, from: a, to: b, token_id: U256::from_u64(42) }));
        let ev = decode_log(token, &[H256(TOPIC_APPROVAL_FOR_ALL), t(&a), t(&b)], &w_u(1));
        assert_eq!(ev, Some(TokenEvent::ApprovalForAll { token, owner: a, operator: b, approved: true }));
        // An ERC-20 Transfer without its value word is not decoded (and not a panic).
        assert_eq!(decode_log(token, &[H256(TOPIC_TRANSFER), t(&a), t(&b)], &[]), None);
        assert_eq!(decode_log(token, &[], &[]), None);
        assert_eq!(hex_bytes("0x0aff"), Some(vec![10, 255]));
        assert_eq!(hex_bytes("0x0af"), None);
    }
}
