//! A real little chain, built deterministically from the dev keys (`ebill_types::dev`),
//! and the proof bundle of its one bill with a history: the same chain as
//! `crates/types/tests/proof.rs` builds. Four validators (quorum 3); an issuing unit and
//! a reimbursing unit registered after genesis by two of the three regulators; the
//! issuer's key rotated before it issues; the bill locked and unlocked by one reimbursing
//! unit and reimbursed by the genesis one; "filler" bills of the genesis issuer around
//! them (each provable on its own). Certificates carry three or four precommits, so a
//! certificate with one of its four signatures removed is still a valid certificate.
//!
//! The bundles are of version 1 (no state proof): the chain's headers carry a zero
//! state root, as before the state tree, so the chain has no state evidence to prove a
//! version 2 bundle with. A version 2 mutant that verifies is therefore always a finding
//! (`crate::oracle`), and the state-proof checks are fuzzed for refusals only.

use std::sync::OnceLock;

use ebill_types::dev::{self, dev_key};
use ebill_types::merkle::{self, InclusionProof};
use ebill_types::proof::{BUNDLE_VERSION_1, ProofBundle, ProvedTx, verify_bundle};
use ebill_types::{
    Bill, BillCode, BillId, Block, CodePrefix, CommitCertificate, CommitSignature, CreditCode,
    Genesis, Hash32, Header, SignedTx, Tx, TxBody, Vote, VoteKind,
};

/// The reference chain's id.
pub const CHAIN: &str = "ebill-fuzz";
/// Time of its first block.
const T0: u64 = 1_767_196_800_000 + 3_600_000;

/// The chain, its certificates and the bundle of its bill.
#[derive(Debug)]
pub struct Reference {
    /// Four dev validators, the dev units and regulators.
    pub genesis: Genesis,
    /// `genesis.hash()`.
    pub genesis_hash: Hash32,
    /// The blocks, heights 1, 2, ...
    pub blocks: Vec<Block>,
    /// The commit certificate of each block.
    pub certs: Vec<CommitCertificate>,
    /// The bill with a history.
    pub bill: BillId,
    /// Its bundle: registration, key rotation, registration of the reimbursing unit,
    /// issue, lock, unlock, reimbursement. It verifies.
    pub bundle: ProofBundle,
    /// Smaller bundles that verify too: a filler bill's, and a prefix of the history.
    pub other_bundles: Vec<ProofBundle>,
}

impl Reference {
    /// The reference, built once per process.
    pub fn get() -> &'static Reference {
        static REF: OnceLock<Reference> = OnceLock::new();
        REF.get_or_init(build)
    }

    /// The genuine entry for transaction `tx` of block `block` (indices taken modulo the
    /// chain's sizes), with that block's whole certificate.
    pub fn entry(&self, block: usize, tx: usize) -> ProvedTx {
        let b = block % self.blocks.len();
        let block = &self.blocks[b];
        let i = tx % block.txs.len();
        let leaves = Block::leaf_hashes(&block.txs);
        ProvedTx {
            tx: block.txs[i].clone(),
            proof: InclusionProof {
                leaf_index: i as u64,
                tree_size: leaves.len() as u64,
                path: merkle::inclusion_path(&leaves, i).expect("index below the size"),
            },
            header: block.header.clone(),
            certificate: self.certs[b].clone(),
        }
    }

    /// Every bill id that a transaction of the chain names.
    pub fn bill_ids(&self) -> Vec<BillId> {
        let mut ids: Vec<BillId> = self
            .blocks
            .iter()
            .flat_map(|b| b.txs.iter().filter_map(|t| t.tx.body.bill_id()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

fn certify(genesis: &Genesis, header: &Header, signers: &[u32]) -> CommitCertificate {
    let hash = header.hash();
    CommitCertificate {
        height: header.height,
        round: 1,
        block: hash,
        signatures: signers
            .iter()
            .map(|&v| CommitSignature {
                validator: v,
                signature: Vote {
                    kind: VoteKind::Precommit,
                    height: header.height,
                    round: 1,
                    block: Some(hash),
                    validator: v,
                }
                .sign(&genesis.chain_id, &dev_key("validator", v))
                .signature,
            })
            .collect(),
    }
}

fn governance(body: TxBody) -> SignedTx {
    let regs = dev::dev_regulator_keys();
    Tx { nonce: 7, body }.sign_regulators(CHAIN, &[(0, &regs[0]), (2, &regs[2])])
}

fn filler(n: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(900 + n, 100 + n, T0 as i64)),
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key())
}

fn issuer_b() -> CreditCode {
    dev::test_credit_code('B', 7)
}

fn reimburser_a() -> CreditCode {
    dev::test_credit_code('A', 5)
}

fn bill_b() -> Bill {
    let mut bill = dev::sample_bill(42, 1250, T0 as i64);
    bill.code = BillCode::parse("33020126").expect("eight digits");
    bill.issuer = issuer_b();
    bill
}

fn bundle_of(genesis: &Genesis, bill: BillId, entries: Vec<ProvedTx>) -> ProofBundle {
    ProofBundle {
        version: BUNDLE_VERSION_1,
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis.hash(),
        bill,
        entries,
        state: None,
        witnesses: Vec::new(),
    }
}

fn build() -> Reference {
    let genesis = dev::dev_genesis_with(CHAIN, 4);
    let old_key = dev_key("issuer", 7);
    let new_key = dev_key("issuer", 8);
    let a_key = dev_key("reimburser", 5);

    let register = governance(TxBody::RegisterIssuer {
        credit_code: issuer_b(),
        name: "杭州市第二医院".into(),
        public_key: old_key.public(),
        code_prefixes: vec![CodePrefix::parse("3302").expect("digits")],
        valid_until: ebill_types::dev::dev_valid_until(),
    });
    let rotate = governance(TxBody::RotateKey {
        credit_code: issuer_b(),
        public_key: new_key.public(),
    });
    let register_a = governance(TxBody::RegisterReimburser {
        credit_code: reimburser_a(),
        name: "某保险公司".into(),
        public_key: a_key.public(),
    });
    let issue = Tx {
        nonce: 0,
        body: TxBody::IssueBill(bill_b()),
    }
    .sign_unit(CHAIN, &new_key);
    let signed = issue.to_signed_bill().expect("a unit-signed issue");
    let bill = signed.bill.id();
    let lock = Tx {
        nonce: 11,
        body: TxBody::Lock {
            unit: reimburser_a(),
            bill,
            check_code: signed.check_code,
        },
    }
    .sign_unit(CHAIN, &a_key);
    let unlock = Tx {
        nonce: 12,
        body: TxBody::Unlock {
            unit: reimburser_a(),
            bill,
        },
    }
    .sign_unit(CHAIN, &a_key);
    let confirm = Tx {
        nonce: 13,
        body: TxBody::ConfirmReimbursed {
            unit: dev::dev_reimburser_code(),
            bill,
            check_code: signed.check_code,
        },
    }
    .sign_unit(CHAIN, &dev::dev_reimburser_key());

    // (transactions, signers); the bill's entries are at these (block, index).
    let layout: Vec<(Vec<SignedTx>, &[u32])> = vec![
        (vec![filler(1), register, filler(2)], &[0, 1, 3]),
        (vec![rotate, filler(3), register_a], &[0, 1, 2, 3]),
        (
            vec![filler(4), filler(5), filler(6), filler(7), issue],
            &[1, 2, 3],
        ),
        (vec![lock, filler(8)], &[0, 2, 3]),
        (vec![filler(9), filler(10), unlock], &[0, 1, 2]),
        (vec![confirm], &[0, 1, 3]),
    ];
    let vset_hash = genesis
        .validator_set()
        .expect("the dev genesis has a valid validator set")
        .hash();
    let mut blocks: Vec<Block> = Vec::new();
    let mut certs = Vec::new();
    for (txs, signers) in layout {
        let height = blocks.len() as u64 + 1;
        let header = Header {
            chain_id: genesis.chain_id.clone(),
            height,
            prev_hash: blocks
                .last()
                .map_or_else(|| genesis.hash(), |b| b.header.hash()),
            time_ms: T0 + height * 1000,
            proposer: (height % 4) as u32,
            tx_root: Block::tx_root(&txs),
            tx_count: txs.len() as u32,
            validator_set_hash: vset_hash,
            state_root: Hash32::ZERO,
        };
        certs.push(certify(&genesis, &header, signers));
        blocks.push(Block { header, txs });
    }
    let mut r = Reference {
        genesis_hash: genesis.hash(),
        genesis,
        blocks,
        certs,
        bill,
        bundle: ProofBundle {
            version: BUNDLE_VERSION_1,
            chain_id: String::new(),
            genesis_hash: Hash32::ZERO,
            bill,
            entries: Vec::new(),
            state: None,
            witnesses: Vec::new(),
        },
        other_bundles: Vec::new(),
    };
    let at = [(0, 1), (1, 0), (1, 2), (2, 4), (3, 0), (4, 2), (5, 0)];
    let entries = at.iter().map(|&(b, i)| r.entry(b, i)).collect();
    r.bundle = bundle_of(&r.genesis, bill, entries);
    let filler_entry = r.entry(2, 1);
    let filler_bill = filler_entry
        .tx
        .tx
        .body
        .bill_id()
        .expect("a filler issues a bill");
    r.other_bundles = vec![
        bundle_of(&r.genesis, filler_bill, vec![filler_entry]),
        bundle_of(
            &r.genesis,
            bill,
            at[..5].iter().map(|&(b, i)| r.entry(b, i)).collect(),
        ),
    ];
    for b in std::iter::once(&r.bundle).chain(&r.other_bundles) {
        if let Err(e) = verify_bundle(b, &r.genesis) {
            panic!(
                "the reference bundle of bill {} does not verify: {e}",
                b.bill
            );
        }
    }
    r
}
