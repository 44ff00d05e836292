//! Signed transactions from bytes (gossip, blocks, bundles, the store): no panic; strict
//! (decode then encode gives the same bytes); `decode_bounded` agrees with the plain
//! decoder; whatever decodes goes through the ledger's admission, as sent and re-signed.
#![no_main]

use ebill_fuzz::ledger::Ledger;
use ebill_fuzz::{seeds, strict};
use ebill_types::SignedTx;
use ebill_types::limits::MAX_TX_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("decode_tx");
        Ledger::get();
    },
    |data: &[u8]| {
        let tx = strict::<SignedTx>("signed transaction", data);
        let bounded = SignedTx::decode_bounded(data, MAX_TX_BYTES).ok();
        if data.len() <= MAX_TX_BYTES {
            assert_eq!(tx, bounded, "decode_bounded disagrees with the decoder");
        } else {
            assert!(bounded.is_none(), "decode_bounded took an oversized transaction");
        }
        if let Some(tx) = tx {
            let ledger = Ledger::get();
            let _ = tx.tx.id(&ledger.genesis.chain_id);
            let _ = tx.tx.body.validate(&ledger.genesis.params);
            let _ = tx.to_signed_bill();
            ledger.admit_both(&tx);
        }
    }
);
