//! Building a bill's proof bundle from the store (docs/design.md §8).
//!
//! The bundle holds, each with its Merkle path, block header and commit certificate:
//! the bill's IssueBill transaction, every later lifecycle transaction of the bill (from
//! its record's history), and the registry changes after genesis (registration, key
//! rotations, revocation: the unit record's events) of the issuer and of every unit
//! that acted on the bill, so that the key valid at each height is proved too.
//! [`ebill_types::proof::verify_bundle`] checks it offline against the genesis.
//!
//! It also holds the bill's state proof (bundle versions 2 and 3): the bill's record in the
//! state tree with its path to the state root of the latest final header, and that
//! header's certificate, read so that record, path and header belong together.
//!
//! The caller checks the bill's check code first (the route answers the same 404 for an
//! unknown bill and a wrong check code); this module only assembles.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use ebill_ledger::TxLocation;
use ebill_store::{Store, StoreError};
use ebill_types::merkle::{self, InclusionProof};
use ebill_types::proof::{
    BUNDLE_VERSION, MAX_BUNDLE_ENTRIES, ProofBundle, ProvedTx, StateEvidence,
};
use ebill_types::state_tree::StateKey;
use ebill_types::{
    BillId, Block, Canonical, CommitCertificate, CreditCode, Genesis, Header, TxBody, TxId,
};
use thiserror::Error;

/// Why a bundle could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    /// No such bill.
    #[error("no bill {0}")]
    UnknownBill(BillId),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The store lacks something its own records point at.
    #[error("inconsistent store: {0}")]
    Inconsistent(String),
    /// More entries than a bundle may hold.
    #[error("the bundle would hold {0} entries, over the limit of {MAX_BUNDLE_ENTRIES}")]
    TooLarge(usize),
    /// New blocks kept coming while the bundle was read; the caller may try again.
    #[error("the chain moved on while the bundle was read {0} times; try again")]
    Busy(usize),
}

impl BundleError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::UnknownBill(_) => "bill_not_found",
            BundleError::Store(_) | BundleError::Inconsistent(_) => "internal",
            BundleError::TooLarge(_) => "bundle_too_large",
            BundleError::Busy(_) => "overloaded",
        }
    }
}

/// Merkle trees of recent blocks, shared by every proof request: a final block never
/// changes, so its tree is computed once and answers every path in O(log n). Bounded to
/// `capacity` blocks; the least recently used goes first.
#[derive(Debug)]
pub struct TreeCache {
    inner: std::sync::Mutex<lru::LruCache<u64, std::sync::Arc<merkle::MerkleTree>>>,
}

impl TreeCache {
    /// A cache of at most `capacity` block trees (a tree of 5,000 leaves is ~320 KB); a
    /// capacity of 0 keeps one.
    pub fn new(capacity: usize) -> Self {
        let capacity = std::num::NonZeroUsize::new(capacity).unwrap_or(std::num::NonZeroUsize::MIN);
        Self {
            inner: std::sync::Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, lru::LruCache<u64, std::sync::Arc<merkle::MerkleTree>>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, height: u64) -> Option<std::sync::Arc<merkle::MerkleTree>> {
        self.lock().get(&height).cloned()
    }

    fn insert(&self, height: u64, tree: std::sync::Arc<merkle::MerkleTree>) {
        self.lock().put(height, tree);
    }

    /// The tree of block `height`, from the cache or built from the stored block.
    fn tree(
        &self,
        store: &dyn Store,
        height: u64,
    ) -> Result<std::sync::Arc<merkle::MerkleTree>, BundleError> {
        if let Some(t) = self.get(height) {
            return Ok(t);
        }
        let block = store.block(height)?.ok_or_else(|| {
            BundleError::Inconsistent(format!("block {height} is not in the store"))
        })?;
        let tree = std::sync::Arc::new(merkle::MerkleTree::new(Block::leaf_hashes(&block.txs)));
        if tree.root() != block.header.tx_root {
            return Err(BundleError::Inconsistent(format!(
                "block {height}'s transactions do not hash to its root"
            )));
        }
        self.insert(height, std::sync::Arc::clone(&tree));
        Ok(tree)
    }
}

/// Builds the proof bundle of `bill` from `store`.
pub fn build_bundle(
    store: &dyn Store,
    genesis: &Genesis,
    bill: &BillId,
) -> Result<ProofBundle, BundleError> {
    build_bundle_with(store, genesis, bill, &TreeCache::new(16))
}

/// Builds the proof bundle of `bill` from `store`, with block trees from `trees`.
pub fn build_bundle_with(
    store: &dyn Store,
    genesis: &Genesis,
    bill: &BillId,
    trees: &TreeCache,
) -> Result<ProofBundle, BundleError> {
    let (record, state) = read_state(store, bill)?;

    // The transactions: the bill's history, and the registry events of every unit in it.
    let mut ids: Vec<TxId> = record.history.iter().map(|h| h.tx_id).collect();
    let mut units: BTreeSet<CreditCode> = record.history.iter().map(|h| h.by).collect();
    units.insert(record.issuer);
    for code in &units {
        let Some(unit) = store.find_unit(code)? else {
            return Err(BundleError::Inconsistent(format!(
                "unit {code} acted on bill {bill} but has no record"
            )));
        };
        ids.extend(unit.events.iter().map(|e| e.tx_id));
        // A change made by a proposal: its Propose and every approval, so that the
        // verifier counts the regulators who passed it.
        for e in &unit.events {
            let Some((tx, _)) = store.tx(&e.tx_id)? else {
                continue;
            };
            let proposal = match &tx.tx.body {
                TxBody::Approve { proposal } => Some(*proposal),
                body @ TxBody::Propose { .. } => body.proposal_id(&genesis.chain_id),
                _ => None,
            };
            if let Some(id) = proposal
                && let Some(rec) = store.find_proposal(&id)?
            {
                ids.push(rec.propose_tx);
                ids.extend(rec.approvals.iter().map(|v| v.tx_id));
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_BUNDLE_ENTRIES {
        return Err(BundleError::TooLarge(ids.len()));
    }

    let mut located = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some((tx, loc)) = store.tx(id)? else {
            return Err(BundleError::Inconsistent(format!(
                "transaction {id} of bill {bill} is not in the store"
            )));
        };
        located.push((loc, tx));
    }
    located.sort_by_key(|(loc, _)| (loc.height, loc.index));

    // Per block: its tree (cached), header and certificate.
    let mut blocks: BTreeMap<
        u64,
        (
            std::sync::Arc<merkle::MerkleTree>,
            Header,
            CommitCertificate,
        ),
    > = BTreeMap::new();
    let mut entries = Vec::with_capacity(located.len());
    for (loc, tx) in located {
        let TxLocation { height, index } = loc;
        let (tree, header, cert) = match blocks.entry(height) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let tree = trees.tree(store, height)?;
                let header = store.header(height)?.ok_or_else(|| {
                    BundleError::Inconsistent(format!("block {height} has no header"))
                })?;
                let cert = store.certificate(height)?.ok_or_else(|| {
                    BundleError::Inconsistent(format!("block {height} has no certificate"))
                })?;
                e.insert((tree, header, cert))
            }
        };
        let i = index as usize;
        if tree.leaf(i) != Some(&merkle::leaf_hash(&tx.to_canonical_bytes())) {
            return Err(BundleError::Inconsistent(format!(
                "block {height} position {index} does not hold the indexed transaction"
            )));
        }
        let path = tree.path(i).ok_or_else(|| {
            BundleError::Inconsistent(format!(
                "position {index} is outside block {height} of {} transactions",
                tree.len()
            ))
        })?;
        entries.push(ProvedTx {
            tx,
            proof: InclusionProof {
                leaf_index: u64::from(index),
                tree_size: tree.len() as u64,
                path,
            },
            header: header.clone(),
            certificate: cert.clone(),
        });
    }

    Ok(ProofBundle {
        version: BUNDLE_VERSION,
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis.hash(),
        bill: *bill,
        entries,
        state: Some(state),
        // The witnesses' co-signatures are the node's, not the store's: the caller adds
        // them ([`crate::Backend::cosignatures`]).
        witnesses: Vec::new(),
    })
}

/// Reads of one bundle that may race a commit: at most this many tries.
const STATE_READ_TRIES: usize = 4;

/// The bill's record and its state evidence as of the tip, read so that they belong
/// together: the store's reads are not one snapshot, so a commit between them is seen
/// by checking the path against the header's root, and the read is made again.
fn read_state(
    store: &dyn Store,
    bill: &BillId,
) -> Result<(ebill_ledger::BillRecord, StateEvidence), BundleError> {
    let key = StateKey::Bill(*bill);
    for _ in 0..STATE_READ_TRIES {
        let Some(tip) = store.tip()? else {
            return Err(BundleError::UnknownBill(*bill));
        };
        let header = store.header(tip.height)?.ok_or_else(|| {
            BundleError::Inconsistent(format!("the tip {} has no header", tip.height))
        })?;
        let certificate = store.certificate(tip.height)?.ok_or_else(|| {
            BundleError::Inconsistent(format!("the tip {} has no certificate", tip.height))
        })?;
        let record = store
            .find_bill(bill)?
            .ok_or(BundleError::UnknownBill(*bill))?;
        let proof = store.prove_state(&key)?;
        let bytes = ebill_ledger::bill_state(&record).to_canonical_bytes();
        if proof
            .verify_member(&header.state_root, &key.hash(), &key.value_hash(&bytes))
            .is_ok()
        {
            return Ok((
                record,
                StateEvidence {
                    header,
                    certificate,
                    record: bytes,
                    proof: proof.to_canonical_bytes(),
                },
            ));
        }
    }
    Err(BundleError::Busy(STATE_READ_TRIES))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use ebill_ledger::{Context, apply_block};
    use ebill_store::MemStore;
    use ebill_types::dev::{self, dev_key};
    use ebill_types::proof::{BillStatus, Link, verify_bundle};
    use ebill_types::{
        BillCode, CodePrefix, CommitSignature, Header, SignedTx, Tx, TxBody, Vote, VoteKind,
    };

    use super::*;

    const CHAIN: &str = "ebill-api-proof";

    fn commit(store: &MemStore, genesis: &Genesis, txs: Vec<SignedTx>) {
        let height = store.tip().unwrap().map_or(1, |t| t.height + 1);
        let prev_hash = store
            .tip()
            .unwrap()
            .map_or_else(|| genesis.hash(), |t| t.hash);
        let time_ms = dev::DEV_GENESIS_TIME_MS as u64 + height * 1000;
        let changes = apply_block(
            store,
            Context {
                genesis,
                height,
                time_ms,
            },
            &txs,
            None,
        )
        .unwrap();
        let header = Header {
            chain_id: genesis.chain_id.clone(),
            height,
            prev_hash,
            time_ms,
            proposer: 0,
            tx_root: Block::tx_root(&txs),
            tx_count: txs.len() as u32,
            validator_set_hash: genesis.validator_set().unwrap().hash(),
            state_root: ebill_store::state_update(store, &changes).unwrap().root,
        };
        let hash = header.hash();
        let cert = CommitCertificate {
            height,
            round: 0,
            block: hash,
            signatures: [0u32, 2, 3]
                .iter()
                .map(|&v| CommitSignature {
                    validator: v,
                    signature: Vote {
                        kind: VoteKind::Precommit,
                        height,
                        round: 0,
                        block: Some(hash),
                        validator: v,
                    }
                    .sign(CHAIN, &dev_key("validator", v))
                    .signature,
                })
                .collect(),
        };
        store
            .commit_block(&Block { header, txs }, &cert, &changes)
            .unwrap();
    }

    #[test]
    fn a_bundle_built_from_a_store_verifies() {
        let genesis = dev::dev_genesis_with(CHAIN, 4);
        let store = MemStore::new();
        store.init_genesis(&genesis).unwrap();
        let regs = dev::dev_regulator_keys();
        let gov = |nonce: u64, body: TxBody| {
            Tx { nonce, body }.sign_regulators(CHAIN, &[(0, &regs[0]), (1, &regs[1])])
        };
        let code_b = dev::test_credit_code('B', 1);
        let t0 = dev::DEV_GENESIS_TIME_MS;
        let filler = |n: u64| {
            Tx {
                nonce: 0,
                body: TxBody::IssueBill(dev::sample_bill(100 + n, 500, t0)),
            }
            .sign_unit(CHAIN, &dev::dev_issuer_key())
        };
        commit(
            &store,
            &genesis,
            vec![
                filler(1),
                gov(
                    1,
                    TxBody::RegisterIssuer {
                        credit_code: code_b,
                        name: "B 医院".into(),
                        public_key: dev_key("issuer", 1).public(),
                        code_prefixes: vec![CodePrefix::parse("3302").unwrap()],
                        valid_until: ebill_types::dev::dev_valid_until(),
                    },
                ),
            ],
        );
        commit(
            &store,
            &genesis,
            vec![gov(
                2,
                TxBody::RotateKey {
                    credit_code: code_b,
                    public_key: dev_key("issuer", 2).public(),
                },
            )],
        );
        let mut bill = dev::sample_bill(7, 1250, t0);
        bill.code = BillCode::parse("33020126").unwrap();
        bill.issuer = code_b;
        let issue = Tx {
            nonce: 0,
            body: TxBody::IssueBill(bill.clone()),
        }
        .sign_unit(CHAIN, &dev_key("issuer", 2));
        let check_code = issue.to_signed_bill().unwrap().check_code;
        commit(&store, &genesis, vec![filler(2), filler(3), issue]);
        let unit = dev::dev_reimburser_code();
        let reimburser = dev::dev_reimburser_key();
        commit(
            &store,
            &genesis,
            vec![
                Tx {
                    nonce: 1,
                    body: TxBody::Lock {
                        unit,
                        bill: bill.id(),
                        check_code,
                    },
                }
                .sign_unit(CHAIN, &reimburser),
                filler(4),
            ],
        );
        // Taken now, the bundle proves "locked as of height 4"; it stays valid after
        // the reimbursement, but only as of height 4.
        let before = build_bundle(&store, &genesis, &bill.id()).unwrap();
        commit(
            &store,
            &genesis,
            vec![
                filler(5),
                Tx {
                    nonce: 2,
                    body: TxBody::ConfirmReimbursed {
                        unit,
                        bill: bill.id(),
                        check_code,
                    },
                }
                .sign_unit(CHAIN, &reimburser),
            ],
        );

        let bundle = build_bundle(&store, &genesis, &bill.id()).unwrap();
        assert_eq!(bundle.entries.len(), 5);
        let v = verify_bundle(&bundle, &genesis).unwrap();
        assert_eq!(v.bill.bill, bill);
        assert_eq!(v.bill.check_code, check_code);
        assert_eq!(
            v.status,
            BillStatus::Reimbursed {
                by: unit,
                height: 5
            }
        );
        assert_eq!(v.history.len(), 3);
        assert!(!v.issuer.in_genesis);
        assert_eq!(v.state_height, Some(5));
        // Both forms survive the trip.
        let again = ProofBundle::decode_any(&bundle.to_bytes()).unwrap();
        assert_eq!(verify_bundle(&again, &genesis), Ok(v));
        let old = verify_bundle(&before, &genesis).unwrap();
        assert_eq!(old.state_height, Some(4));
        assert_eq!(
            old.status,
            BillStatus::Locked {
                by: unit,
                height: 4
            }
        );

        // The state proof is what rules out a missing transaction: the new bundle
        // without its reimbursement entry is refused, naming the state proof.
        let mut cut = bundle.clone();
        cut.entries.pop();
        assert_eq!(
            verify_bundle(&cut, &genesis).map_err(|e| e.link),
            Err(Link::StateProof)
        );
        // And an old bundle cannot borrow a newer state proof.
        let mut mixed = before.clone();
        mixed.state = bundle.state.clone();
        assert_eq!(
            verify_bundle(&mixed, &genesis).map_err(|e| e.link),
            Err(Link::StateProof)
        );

        // A bill of the genesis issuer needs no registry entries.
        let other = dev::sample_bill(103, 500, t0).id();
        let bundle = build_bundle(&store, &genesis, &other).unwrap();
        assert_eq!(bundle.entries.len(), 1);
        assert_eq!(
            verify_bundle(&bundle, &genesis).map(|v| v.status),
            Ok(BillStatus::Issued)
        );

        let missing = dev::sample_bill(999, 500, t0).id();
        assert_eq!(
            build_bundle(&store, &genesis, &missing).map(|_| ()),
            Err(BundleError::UnknownBill(missing))
        );
    }

    /// Every byte of a v2 bundle's binary form, changed one at a time, is refused.
    #[test]
    fn every_byte_of_a_v2_bundle_matters() {
        let genesis = dev::dev_genesis_with(CHAIN, 4);
        let store = MemStore::new();
        store.init_genesis(&genesis).unwrap();
        let t0 = dev::DEV_GENESIS_TIME_MS;
        let issue = Tx {
            nonce: 0,
            body: TxBody::IssueBill(dev::sample_bill(5, 800, t0)),
        }
        .sign_unit(CHAIN, &dev::dev_issuer_key());
        let bill = dev::sample_bill(5, 800, t0).id();
        commit(&store, &genesis, vec![issue]);
        let bundle = build_bundle(&store, &genesis, &bill).unwrap();
        assert_eq!(
            verify_bundle(&bundle, &genesis).unwrap().state_height,
            Some(1)
        );
        let bytes = bundle.to_bytes();
        let mut links = std::collections::BTreeMap::new();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let refused = ProofBundle::from_bytes(&b).and_then(|x| verify_bundle(&x, &genesis));
            match refused {
                Ok(_) => panic!(
                    "byte {i} of {} changed and the bundle still verifies",
                    bytes.len()
                ),
                Err(e) => *links.entry(e.link.as_str()).or_insert(0u32) += 1,
            }
        }
        assert!(links.contains_key("state_proof"), "{links:?}");
    }
}
