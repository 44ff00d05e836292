//! Blocks from bytes (proposals, announcements, sync, the store): no panic; strict;
//! `decode_bounded` with the widest bounds agrees with the plain decoder and never takes
//! more than its bounds; the body checks and transaction ids of whatever decodes.
#![no_main]

use ebill_fuzz::reference::Reference;
use ebill_fuzz::{seeds, strict};
use ebill_types::Block;
use ebill_types::limits::{MAX_BLOCK_TXS, MAX_TX_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("decode_block");
    },
    |data: &[u8]| {
        let block = strict::<Block>("block", data);
        let bounded = Block::decode_bounded(data, MAX_BLOCK_TXS, MAX_TX_BYTES).ok();
        assert_eq!(block, bounded, "decode_bounded disagrees with the decoder");
        // Tight bounds: never more transactions, nor a bigger one, than allowed.
        let (max_txs, max_tx) = (3, 600);
        if let Ok(b) = Block::decode_bounded(data, max_txs, max_tx) {
            assert!(b.txs.len() <= max_txs, "{} transactions over a bound of {max_txs}", b.txs.len());
            for t in &b.txs {
                let n = ebill_types::Canonical::to_canonical_bytes(t).len();
                assert!(n <= max_tx, "a transaction of {n} bytes over a bound of {max_tx}");
            }
        }
        if let Some(b) = block {
            let _ = b.header.hash();
            if b.check_body().is_ok() {
                assert_eq!(b.header.tx_count as usize, b.txs.len());
                assert_eq!(Block::tx_root(&b.txs), b.header.tx_root);
            }
            let _ = b.tx_ids();
            let r = Reference::get();
            if let Ok(vs) = r.genesis.validator_set() {
                let _ = vs.proposer(b.header.height, 0);
            }
        }
    }
);
