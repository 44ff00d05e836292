//! Absence proofs: a good one verifies in both forms; a bill that is in the tree cannot
//! be proved absent, however its path is dressed up; every byte of the binary form
//! matters; hostile input is refused without a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, HashMap};

use ebill_types::absence::{
    ABSENCE_VERSION, AbsenceKind, AbsenceProof, MAX_ABSENCE_BYTES, is_absence_proof, verify_absence,
};
use ebill_types::dev::{self, dev_key};
use ebill_types::proof::{Link, ProofBundle};
use ebill_types::state_tree::{
    self, LeafUpdate, NodeKey, NodeReader, ProofEnd, StateKey, StateProof, TreeError, TreeNode,
};
use ebill_types::{
    BillId, Canonical, CommitCertificate, CommitSignature, Genesis, Hash32, Header, Vote, VoteKind,
};

const CHAIN: &str = "ebill-absence-test";
/// Bills in the tree: enough that a path is ~10 levels deep, so that a changed bill
/// number does not land in the same empty subtree by chance.
const BILLS_IN_TREE: u64 = 1000;

#[derive(Default)]
struct Nodes(HashMap<NodeKey, TreeNode>);

impl NodeReader for Nodes {
    fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError> {
        Ok(self.0.get(key).copied())
    }
}

fn bill(n: u64) -> BillId {
    dev::sample_bill(n, 100, dev::DEV_GENESIS_TIME_MS).id()
}

struct Chain {
    genesis: Genesis,
    nodes: Nodes,
    header: Header,
    certificate: CommitCertificate,
}

fn certify(header: &Header, signers: &[u32]) -> CommitCertificate {
    let hash = header.hash();
    CommitCertificate {
        height: header.height,
        round: 0,
        block: hash,
        signatures: signers
            .iter()
            .map(|&v| CommitSignature {
                validator: v,
                signature: Vote {
                    kind: VoteKind::Precommit,
                    height: header.height,
                    round: 0,
                    block: Some(hash),
                    validator: v,
                }
                .sign(CHAIN, &dev_key("validator", v))
                .signature,
            })
            .collect(),
    }
}

/// A tree of bills 1..=BILLS_IN_TREE (values: any hash) under a certified header.
fn chain() -> Chain {
    let genesis = dev::dev_genesis_with(CHAIN, 4);
    let mut leaves = BTreeMap::new();
    for n in 1..=BILLS_IN_TREE {
        let key = StateKey::Bill(bill(n));
        leaves.insert(key.hash(), key.value_hash(&n.to_be_bytes()));
    }
    let updates: Vec<LeafUpdate> = leaves
        .iter()
        .map(|(k, v)| LeafUpdate { key: *k, value: *v })
        .collect();
    let mut nodes = Nodes::default();
    let update = state_tree::apply(&nodes, &updates).unwrap();
    for w in update.writes {
        nodes.0.insert(w.key, w.node);
    }
    let header = Header {
        chain_id: CHAIN.into(),
        height: 7,
        prev_hash: Hash32::digest(b"block 6"),
        time_ms: 1_700_000_007_000,
        proposer: 3,
        tx_root: Hash32::ZERO,
        tx_count: 0,
        validator_set_hash: genesis.validator_set().unwrap().hash(),
        state_root: update.root,
    };
    let certificate = certify(&header, &[0, 2, 3]);
    Chain {
        genesis,
        nodes,
        header,
        certificate,
    }
}

fn absence(c: &Chain, id: BillId, proof: &StateProof) -> AbsenceProof {
    AbsenceProof {
        kind: AbsenceKind::Absence,
        version: ABSENCE_VERSION,
        chain_id: CHAIN.into(),
        genesis_hash: c.genesis.hash(),
        bill: id,
        header: c.header.clone(),
        certificate: c.certificate.clone(),
        proof: proof.to_canonical_bytes(),
    }
}

fn proof_of(c: &Chain, id: BillId) -> StateProof {
    state_tree::prove(&c.nodes, &StateKey::Bill(id).hash()).unwrap()
}

fn link(p: &AbsenceProof, genesis: &Genesis) -> Link {
    verify_absence(p, genesis).unwrap_err().link
}

#[test]
fn a_proof_for_a_never_issued_bill_verifies_in_both_forms() {
    let c = chain();
    let missing = bill(BILLS_IN_TREE + 17);
    let p = absence(&c, missing, &proof_of(&c, missing));
    let v = verify_absence(&p, &c.genesis).unwrap();
    assert_eq!(v.bill, missing);
    assert_eq!(v.height, 7);
    assert_eq!(v.time_ms, 1_700_000_007_000);
    assert_eq!(v.block_hash, c.header.hash());

    let json = p.to_json();
    assert!(json.contains("\"kind\": \"absence\""), "{json}");
    assert!(is_absence_proof(json.as_bytes()));
    assert!(is_absence_proof(&p.to_bytes()));
    assert_eq!(AbsenceProof::decode_any(json.as_bytes()).as_ref(), Ok(&p));
    assert_eq!(AbsenceProof::decode_any(&p.to_bytes()).as_ref(), Ok(&p));

    // Neither form is taken for a bundle, nor a bundle for an absence proof.
    assert!(ProofBundle::decode_any(json.as_bytes()).is_err());
    assert!(ProofBundle::decode_any(&p.to_bytes()).is_err());
    assert!(!is_absence_proof(b"{\"version\": 2}"));
    assert!(!is_absence_proof(b"not a proof"));
    // A JSON form without `kind`, or with another, is refused.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["kind"] = "bundle".into();
    assert!(AbsenceProof::from_json(&v.to_string()).is_err());
    v.as_object_mut().unwrap().remove("kind");
    assert!(AbsenceProof::from_json(&v.to_string()).is_err());
}

#[test]
fn an_issued_bill_cannot_be_proved_absent() {
    let c = chain();
    let issued = bill(42);
    let key = StateKey::Bill(issued).hash();
    let member = proof_of(&c, issued);
    assert!(matches!(member.end, ProofEnd::Leaf { key: k, .. } if k == key));

    // Its own membership path, claimed as absence.
    assert_eq!(
        link(&absence(&c, issued, &member), &c.genesis),
        Link::StateProof
    );
    // The same path ending empty, or at another key's leaf: the root no longer matches.
    let mut empty = member.clone();
    empty.end = ProofEnd::Empty;
    assert_eq!(
        link(&absence(&c, issued, &empty), &c.genesis),
        Link::StateProof
    );
    let mut other = member.clone();
    if let ProofEnd::Leaf { key: k, .. } = &mut other.end {
        k.0[31] ^= 1;
    }
    assert_eq!(
        link(&absence(&c, issued, &other), &c.genesis),
        Link::StateProof
    );
    // A shorter path (cut above the leaf, ending empty) does not hash to the root.
    let mut cut = member.clone();
    cut.siblings.pop();
    cut.end = ProofEnd::Empty;
    assert_eq!(
        link(&absence(&c, issued, &cut), &c.genesis),
        Link::StateProof
    );
    // Another bill's absence proof does not serve for this one.
    let missing = bill(BILLS_IN_TREE + 17);
    assert_eq!(
        link(&absence(&c, issued, &proof_of(&c, missing)), &c.genesis),
        Link::StateProof
    );
}

#[test]
fn each_link_is_named() {
    let c = chain();
    let missing = bill(BILLS_IN_TREE + 3);
    let good = absence(&c, missing, &proof_of(&c, missing));

    let other = dev::dev_genesis_with("another-chain", 4);
    assert_eq!(link(&good, &other), Link::GenesisHash);
    let mut p = good.clone();
    p.version = 2;
    assert_eq!(link(&p, &c.genesis), Link::Version);
    let mut p = good.clone();
    p.chain_id = "another-chain".into();
    assert_eq!(link(&p, &c.genesis), Link::ChainId);
    let mut p = good.clone();
    p.header.chain_id = "another-chain".into();
    assert_eq!(link(&p, &c.genesis), Link::HeaderChainId);
    let mut p = good.clone();
    p.header.validator_set_hash = Hash32::digest(b"other set");
    assert_eq!(link(&p, &c.genesis), Link::ValidatorSet);
    // Another header (another state root) with the old certificate.
    let mut p = good.clone();
    p.header.state_root = Hash32::digest(b"other root");
    assert_eq!(link(&p, &c.genesis), Link::Certificate);
    // A certificate of too few validators, for exactly this header.
    let mut p = good.clone();
    p.certificate = certify(&c.header, &[0, 1]);
    assert_eq!(link(&p, &c.genesis), Link::Certificate);
    // A state proof that does not decode.
    let mut p = good.clone();
    p.proof = vec![0xff; 3];
    assert_eq!(link(&p, &c.genesis), Link::StateProof);
}

/// Every byte of the binary form, changed one at a time, is refused.
#[test]
fn every_byte_of_the_binary_form_matters() {
    let c = chain();
    let missing = bill(BILLS_IN_TREE + 17);
    let p = absence(&c, missing, &proof_of(&c, missing));
    let bytes = p.to_bytes();
    let mut links = BTreeMap::new();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            match AbsenceProof::from_bytes(&b).and_then(|x| verify_absence(&x, &c.genesis)) {
                Ok(v) => panic!(
                    "byte {i} of {} ^ {flip:#x} changed and the proof still verifies: {v:?}",
                    bytes.len()
                ),
                Err(e) => *links.entry(e.link.as_str()).or_insert(0u32) += 1,
            }
        }
    }
    for l in ["decode", "certificate", "state_proof"] {
        assert!(links.contains_key(l), "{links:?}");
    }
    // Cut or extended, it is refused too.
    for n in 0..bytes.len() {
        assert!(AbsenceProof::from_bytes(&bytes[..n]).is_err(), "cut at {n}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(AbsenceProof::from_bytes(&longer).is_err());
}

#[test]
fn hostile_input_is_refused_without_a_panic() {
    assert!(AbsenceProof::from_bytes(&vec![0u8; MAX_ABSENCE_BYTES + 1]).is_err());
    assert!(AbsenceProof::decode_any(b"").is_err());
    assert!(AbsenceProof::decode_any(b"{").is_err());
    assert!(AbsenceProof::decode_any(&[0xff; 64]).is_err());
    // A huge declared length after the domain tag and version.
    let mut b = ebill_types::Encoder::with_domain(ebill_types::absence::ABSENCE_DOMAIN);
    b.u32(ABSENCE_VERSION).u32(u32::MAX);
    assert!(AbsenceProof::from_bytes(&b.finish()).is_err());
}
