//! Signed votes from bytes: no panic; strict; a vote that verifies against the golden
//! validator set is one of the golden votes, unchanged (the fuzzer has no validator key).
#![no_main]

use ebill_fuzz::ledger::Ledger;
use ebill_fuzz::{seeds, strict};
use ebill_types::SignedVote;
use ebill_types::codec::Canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("decode_vote");
    },
    |data: &[u8]| {
        let Some(v) = strict::<SignedVote>("signed vote", data) else {
            return;
        };
        let g = &Ledger::get().genesis;
        let Ok(vs) = g.validator_set() else {
            return;
        };
        if v.verify(&g.chain_id, &vs) {
            let genuine = seeds::for_target("decode_vote");
            assert!(
                genuine.iter().any(|s| SignedVote::from_canonical_bytes(s).ok() == Some(v)),
                "a vote the fuzzer made verifies: {v:?}"
            );
        }
    }
);
