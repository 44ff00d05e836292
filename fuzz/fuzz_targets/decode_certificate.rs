//! Commit certificates from bytes: no panic; strict; a certificate that verifies for a
//! block of the reference chain is a quorum of that block's genuine precommits.
#![no_main]

use std::collections::BTreeSet;

use ebill_fuzz::reference::Reference;
use ebill_fuzz::{seeds, strict};
use ebill_types::CommitCertificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("decode_certificate");
    },
    |data: &[u8]| {
        let Some(c) = strict::<CommitCertificate>("commit certificate", data) else {
            return;
        };
        let r = Reference::get();
        let Ok(vs) = r.genesis.validator_set() else {
            return;
        };
        for (b, block) in r.blocks.iter().enumerate() {
            let hash = block.header.hash();
            if c.verify(&r.genesis.chain_id, block.header.height, &hash, &vs).is_ok() {
                let genuine = &r.certs[b];
                let signers: BTreeSet<u32> = c.signatures.iter().map(|s| s.validator).collect();
                assert!(signers.len() == c.signatures.len(), "a validator counted twice: {c:?}");
                assert!(signers.len() >= vs.quorum(), "no quorum: {c:?}");
                assert!(
                    c.round == genuine.round && c.signatures.iter().all(|s| genuine.signatures.contains(s)),
                    "a certificate the fuzzer made verifies for block {}: {c:?}",
                    b + 1
                );
            }
        }
    }
);
