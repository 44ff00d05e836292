//! The bundle verifier on mutated bytes of valid bundles (the seeds are the reference
//! bundles, binary and JSON; libFuzzer mutates them): a bundle that decodes and verifies
//! must be justified by the reference chain (`ebill_fuzz::oracle`), so no byte-level
//! change makes a false bundle verify.
#![no_main]

use ebill_fuzz::oracle::assert_justified;
use ebill_fuzz::reference::Reference;
use ebill_fuzz::seeds;
use ebill_types::proof::{ProofBundle, verify_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("verify_bytes");
        Reference::get();
    },
    |data: &[u8]| {
        let Ok(m) = ProofBundle::decode_any(data) else {
            return;
        };
        let r = Reference::get();
        if let Ok(v) = verify_bundle(&m, &r.genesis) {
            assert_justified(r, &m, &v);
        }
    }
);
