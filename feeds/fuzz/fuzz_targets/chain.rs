//! JSON-RPC responses (a block, then its receipts after a NUL byte): the one-pass block and
//! receipt parsers and the ethereum-etl decoder never panic, and a block that parses builds or
//! fails with an error.
#![no_main]

use argus_feeds::chain::block::{RawBlock, Receipts};
use argus_feeds::chain::decode::{decode_block, responses};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (block, receipts) = text.split_once('\0').unwrap_or((text, ""));
    if let Ok(Some(raw)) = RawBlock::from_response(block) {
        let _ = raw.tx_hashes();
        let receipts = match Receipts::from_response(receipts) {
            Ok(Some(r)) => r,
            _ => Receipts::none(),
        };
        let _ = raw.build(1, receipts, 0);
    }
    if let Ok(values) = responses(text) {
        for v in &values {
            let _ = decode_block(v);
        }
    }
});
