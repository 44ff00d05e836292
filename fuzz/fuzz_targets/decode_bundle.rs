//! Proof bundles in binary form: no panic; strict (`from_bytes` then `to_bytes` gives the
//! same bytes); `decode_any` reads them the same; the verifier on whatever decodes, and
//! a bundle that verifies is justified by the reference chain (`ebill_fuzz::oracle`).
#![no_main]

use ebill_fuzz::oracle::assert_justified;
use ebill_fuzz::reference::Reference;
use ebill_fuzz::seeds;
use ebill_types::proof::{ProofBundle, verify_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("decode_bundle");
        Reference::get();
    },
    |data: &[u8]| {
        let Ok(m) = ProofBundle::from_bytes(data) else {
            return;
        };
        let again = m.to_bytes();
        assert!(again == data, "bundle bytes are not canonical:\n in:  {}\n out: {}", hex::encode(data), hex::encode(&again));
        if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            assert_eq!(ProofBundle::decode_any(data).ok().as_ref(), Some(&m), "decode_any reads the binary form otherwise");
        }
        let r = Reference::get();
        if let Ok(v) = verify_bundle(&m, &r.genesis) {
            assert_justified(r, &m, &v);
        }
    }
);
