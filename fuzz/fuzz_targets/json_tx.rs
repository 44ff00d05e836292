//! Signed transactions as JSON (the public API's submit body): no panic; what parses
//! serialises and parses back equal; whatever the ledger admits (as sent, or re-signed
//! with the keys it names) survives its canonical form, so every node can decode the
//! block that carries it.
#![no_main]

use ebill_fuzz::ledger::Ledger;
use ebill_fuzz::{json_round_trip, seeds};
use ebill_types::{SignedTx, Tx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("json_tx");
        Ledger::get();
    },
    |data: &[u8]| {
        if let Ok(tx) = serde_json::from_slice::<SignedTx>(data) {
            json_round_trip("signed transaction", &tx);
            let ledger = Ledger::get();
            let _ = tx.tx.body.validate(&ledger.genesis.params);
            ledger.admit_both(&tx);
        }
        if let Ok(tx) = serde_json::from_slice::<Tx>(data) {
            json_round_trip("transaction", &tx);
        }
    }
);
