//! Building a bill's proof bundle from the store (design section 8).
//!
//! The bundle holds, each with its Merkle path, block header and commit certificate:
//! the bill's IssueBill transaction, every later lifecycle transaction of the bill (from
//! its record's history), and the registry changes after genesis (registration, key
//! rotations, revocation: the unit record's events) of the issuer and of every unit
//! that acted on the bill, so that the key valid at each height is proved too.
//! [`ebill_types::proof::verify_bundle`] checks it offline against the genesis.
//!
//! The caller checks the bill's check code first (the route answers the same 404 for an
//! unknown bill and a wrong check code); this module only assembles.

use std::collections::{BTreeMap, BTreeSet};

use ebill_ledger::TxLocation;
use ebill_store::{Store, StoreError};
use ebill_types::merkle::{self, InclusionProof};
use ebill_types::proof::{BUNDLE_VERSION, MAX_BUNDLE_ENTRIES, ProofBundle, ProvedTx};
use ebill_types::{BillId, Block, CommitCertificate, CreditCode, Genesis, Hash32, TxId};
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
}

impl BundleError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::UnknownBill(_) => "bill_not_found",
            BundleError::Store(_) | BundleError::Inconsistent(_) => "internal",
            BundleError::TooLarge(_) => "bundle_too_large",
        }
    }
}

/// Builds the proof bundle of `bill` from `store`.
pub fn build_bundle(
    store: &dyn Store,
    genesis: &Genesis,
    bill: &BillId,
) -> Result<ProofBundle, BundleError> {
    let record = store
        .find_bill(bill)?
        .ok_or(BundleError::UnknownBill(*bill))?;

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

    // One read per block: its leaf hashes, header and certificate.
    let mut blocks: BTreeMap<u64, (Block, Vec<Hash32>, CommitCertificate)> = BTreeMap::new();
    let mut entries = Vec::with_capacity(located.len());
    for (loc, tx) in located {
        let TxLocation { height, index } = loc;
        if !blocks.contains_key(&height) {
            let block = store.block(height)?.ok_or_else(|| {
                BundleError::Inconsistent(format!("block {height} is not in the store"))
            })?;
            let cert = store.certificate(height)?.ok_or_else(|| {
                BundleError::Inconsistent(format!("block {height} has no certificate"))
            })?;
            let leaves = Block::leaf_hashes(&block.txs);
            blocks.insert(height, (block, leaves, cert));
        }
        let Some((block, leaves, cert)) = blocks.get(&height) else {
            return Err(BundleError::Inconsistent(format!(
                "block {height} vanished"
            )));
        };
        let i = index as usize;
        if block.txs.get(i) != Some(&tx) {
            return Err(BundleError::Inconsistent(format!(
                "block {height} position {index} does not hold the indexed transaction"
            )));
        }
        let path = merkle::inclusion_path(leaves, i).ok_or_else(|| {
            BundleError::Inconsistent(format!(
                "position {index} is outside block {height} of {} transactions",
                leaves.len()
            ))
        })?;
        entries.push(ProvedTx {
            tx,
            proof: InclusionProof {
                leaf_index: u64::from(index),
                tree_size: leaves.len() as u64,
                path,
            },
            header: block.header.clone(),
            certificate: cert.clone(),
        });
    }

    Ok(ProofBundle {
        version: BUNDLE_VERSION,
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis.hash(),
        bill: *bill,
        entries,
    })
}
