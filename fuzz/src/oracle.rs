//! When a bundle that verifies is a false verification.
//!
//! The fuzzer cannot sign as a validator, so every certified block it can show is one of
//! the reference chain's. A bundle that verifies against the reference genesis is
//! therefore *justified* only if it claims nothing the chain does not hold:
//!
//! - its version is one the verifier reads, its chain id and genesis hash are the
//!   chain's (the verifier's own inputs), and it carries no state proof (the reference
//!   chain has none: `crate::reference`);
//! - every entry is a genuine (transaction, header, inclusion proof) triple of the chain:
//!   the header equal to a block's header, the transaction equal to the transaction at
//!   `proof.leaf_index` of that block, the proof equal to the one the tree gives;
//! - every entry's certificate names that block's height, round and hash, and holds at
//!   least a quorum of distinct validators whose signatures are all among the block's
//!   genuine precommits.
//!
//! That is the whole of "semantically neutral": dropping entries (a prefix of a history
//! proves an earlier status, as the verifier documents), proving another bill of the
//! chain, or a certificate with fewer (but still a quorum of) genuine precommits. Any
//! other difference from the chain that still verifies is a finding. On top of that the
//! verdict must be about the bundle it was given: the bill named, every entry counted,
//! the highest height.

use std::collections::BTreeSet;

use ebill_types::proof::{
    BUNDLE_VERSION, BUNDLE_VERSION_1, BUNDLE_VERSION_2, ProofBundle, Verified,
};

use crate::reference::Reference;

/// Why a bundle that verified should not have, or `None` if it is justified.
pub fn unjustified(r: &Reference, m: &ProofBundle) -> Option<String> {
    if ![BUNDLE_VERSION_1, BUNDLE_VERSION_2, BUNDLE_VERSION].contains(&m.version) {
        return Some(format!("version {}", m.version));
    }
    // The reference chain's headers have a zero state root (see `crate::reference`): no
    // state proof of it can be genuine.
    if m.state.is_some() {
        return Some("a state proof, which the reference chain cannot have".into());
    }
    if m.chain_id != r.genesis.chain_id {
        return Some(format!("chain id {:?}", m.chain_id));
    }
    if m.genesis_hash != r.genesis_hash {
        return Some(format!("genesis hash {}", m.genesis_hash));
    }
    let quorum = r.genesis.validator_set().ok()?.quorum();
    for (i, e) in m.entries.iter().enumerate() {
        let Some(b) = r.blocks.iter().position(|b| b.header == e.header) else {
            return Some(format!("entry {i}: header {:?} is no block's", e.header));
        };
        let block = &r.blocks[b];
        let Ok(index) = usize::try_from(e.proof.leaf_index) else {
            return Some(format!("entry {i}: leaf index {}", e.proof.leaf_index));
        };
        if block.txs.get(index) != Some(&e.tx) {
            return Some(format!(
                "entry {i}: transaction {:?} is not the one at position {index} of block {}",
                e.tx,
                b + 1
            ));
        }
        let genuine = r.entry(b, index);
        if e.proof != genuine.proof {
            return Some(format!(
                "entry {i}: proof {:?} is not the tree's {:?}",
                e.proof, genuine.proof
            ));
        }
        let (c, g) = (&e.certificate, &genuine.certificate);
        if c.height != g.height || c.round != g.round || c.block != g.block {
            return Some(format!(
                "entry {i}: certificate for height {} round {} block {}",
                c.height, c.round, c.block
            ));
        }
        let validators: BTreeSet<u32> = c.signatures.iter().map(|s| s.validator).collect();
        if validators.len() < quorum || validators.len() != c.signatures.len() {
            return Some(format!(
                "entry {i}: certificate of {} signatures by {} validators, quorum {quorum}",
                c.signatures.len(),
                validators.len()
            ));
        }
        if let Some(s) = c.signatures.iter().find(|s| !g.signatures.contains(s)) {
            return Some(format!(
                "entry {i}: precommit {s:?} is not one of block {}'s",
                b + 1
            ));
        }
    }
    None
}

/// Panics if `m`, which verified as `v`, is a false verification or `v` misreports it.
pub fn assert_justified(r: &Reference, m: &ProofBundle, v: &Verified) {
    if let Some(why) = unjustified(r, m) {
        panic!("a bundle that is not the chain's verified ({why}):\n{m:#?}\nverdict: {v:#?}");
    }
    assert_eq!(v.bill.bill.id(), m.bill, "verdict about another bill");
    assert_eq!(v.entries, m.entries.len(), "verdict counts other entries");
    assert_eq!(v.state_height, None, "a state height without a state proof");
    assert_eq!(
        Some(v.height),
        m.entries.iter().map(|e| e.header.height).max(),
        "verdict at another height"
    );
    for (i, e) in m.entries.iter().enumerate() {
        if let Some(id) = e.tx.tx.body.bill_id() {
            assert_eq!(id, m.bill, "entry {i} is about bill {id}, not {}", m.bill);
        }
    }
}
