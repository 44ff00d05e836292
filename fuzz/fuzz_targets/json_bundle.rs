//! Proof bundles as JSON (what `ebill verify-proof` reads): no panic; what parses
//! serialises and parses back equal; `decode_any` reads it the same; a bundle that
//! verifies is justified by the reference chain (`ebill_fuzz::oracle`).
#![no_main]

use ebill_fuzz::oracle::assert_justified;
use ebill_fuzz::reference::Reference;
use ebill_fuzz::seeds;
use ebill_types::proof::{ProofBundle, verify_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("json_bundle");
        Reference::get();
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(m) = ProofBundle::from_json(text) else {
            return;
        };
        let back = ProofBundle::from_json(&m.to_json())
            .unwrap_or_else(|e| panic!("a parsed bundle does not parse back from its JSON: {e}"));
        assert_eq!(back, m, "bundle changes through JSON");
        if data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            assert_eq!(ProofBundle::decode_any(data).ok().as_ref(), Some(&m));
        }
        let r = Reference::get();
        if let Ok(v) = verify_bundle(&m, &r.genesis) {
            assert_justified(r, &m, &v);
        }
    }
);
