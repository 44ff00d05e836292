//! [`MemStore`]: the [`Store`] contract in memory, for tests and the simulator.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use ebill_ledger::{
    BillRecord, ChangeSet, GovState, ProposalRecord, StateError, StateView, TxLocation, UnitRecord,
};
use ebill_types::state_store::{LeafMap, StoredTree, TreeChange};
use ebill_types::state_tree::{LeafUpdate, StateKey, StateProof, TreeError};
use ebill_types::tx::ProposalId;
use ebill_types::{
    BillId, Block, CommitCertificate, CreditCode, Genesis, Hash32, Header, SignedTx, TxId,
};

use crate::index::{
    self, BillKeys, BillRun, BillVisitor, EntryVisitor, Index, IndexOp, KeyRun, RefusedTx,
    even_splits,
};
use crate::{Store, StoreError, Tip, check_commit, tree_change_of};

#[derive(Default)]
struct Inner {
    genesis_hash: Option<Hash32>,
    tip: Option<Tip>,
    blocks: BTreeMap<u64, Block>,
    certificates: BTreeMap<u64, CommitCertificate>,
    block_index: HashMap<Hash32, u64>,
    tx_index: HashMap<TxId, TxLocation>,
    bills: HashMap<BillId, BillRecord>,
    units: BTreeMap<CreditCode, UnitRecord>,
    governance: Option<GovState>,
    proposals: BTreeMap<ProposalId, ProposalRecord>,
    wal: BTreeMap<(u64, u32), Vec<u8>>,
    tree: MemTree,
    last_cosigned: Option<crate::Cosigned>,
    /// The audit indexes, by [`Index::position`].
    indexes: [BTreeMap<Vec<u8>, Vec<u8>>; 5],
    refused: VecDeque<RefusedTx>,
}

impl Inner {
    fn apply_index(&mut self, ops: Vec<IndexOp>) {
        for op in ops {
            let map = &mut self.indexes[op.index.position()];
            match op.value {
                Some(v) => {
                    map.insert(op.key, v);
                }
                None => {
                    map.remove(&op.key);
                }
            }
        }
    }
}

/// Depth of the in-memory store's buckets (`ebill_types::state_store`): small, so that
/// the stores of a simulation cost little and the tests go below the cut at a few
/// hundred keys.
const MEM_TREE_CUT: usize = 8;

/// The state tree in memory: the same top a [`crate::RocksStore`] keeps, over leaves in
/// a sorted map.
struct MemTree {
    top: StoredTree,
    leaves: LeafMap,
}

impl Default for MemTree {
    fn default() -> Self {
        MemTree {
            top: StoredTree::new(MEM_TREE_CUT),
            leaves: LeafMap::default(),
        }
    }
}

impl MemTree {
    fn change(&self, updates: &[LeafUpdate]) -> Result<TreeChange, TreeError> {
        self.top.change(&self.leaves, updates)
    }

    fn commit(&mut self, change: &TreeChange) {
        self.leaves.commit(change);
        self.top.commit(change);
    }
}

/// A store in memory behind a read-write lock. Nothing survives the process; every
/// other behaviour (refusals, atomic commits, reads) is that of [`crate::RocksStore`].
#[derive(Default)]
pub struct MemStore {
    inner: RwLock<Inner>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave a half-applied commit: a commit
    // checks everything first and then only inserts into maps. So a poisoned lock is
    // still consistent and is taken over.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Store::scan_bills`] over `inner`, read-locked by the caller.
    fn scan_locked(
        inner: &Inner,
        keys: BillKeys<'_>,
        visit: &mut BillVisitor<'_>,
    ) -> Result<(), StoreError> {
        let mut ids: Vec<&BillId> = inner
            .bills
            .keys()
            .filter(|id| {
                let key = id.key();
                key.as_slice() >= keys.from && keys.holds(&key)
            })
            .collect();
        ids.sort_unstable_by_key(|id| id.key());
        for id in ids {
            let Some(rec) = inner.bills.get(id) else {
                continue;
            };
            let key = id.key();
            let facts = match inner.indexes[Index::Facts.position()].get(key.as_slice()) {
                Some(v) => index::decode_facts(&key, v)?,
                None => {
                    return Err(StoreError::Corrupt {
                        what: format!("idx_bill_facts/{id}"),
                        reason: "the bill has no facts: reindex".to_owned(),
                    });
                }
            };
            if !visit(rec, &facts)? {
                break;
            }
        }
        Ok(())
    }
}

impl StateView for MemStore {
    fn bill(&self, id: &BillId) -> Result<Option<BillRecord>, StateError> {
        Ok(self.find_bill(id)?)
    }
    fn unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StateError> {
        Ok(self.find_unit(code)?)
    }
    fn tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StateError> {
        Ok(self.find_tx_location(id)?)
    }
    fn governance(&self) -> Result<Option<GovState>, StateError> {
        Ok(self.find_governance()?)
    }
    fn proposal(&self, id: &ProposalId) -> Result<Option<ProposalRecord>, StateError> {
        Ok(self.find_proposal(id)?)
    }
}

impl Store for MemStore {
    fn init_genesis(&self, genesis: &Genesis) -> Result<(), StoreError> {
        let given = genesis.hash();
        let mut inner = self.write();
        match inner.genesis_hash {
            Some(stored) if stored == given => Ok(()),
            Some(stored) => Err(StoreError::GenesisMismatch { stored, given }),
            None => {
                let changes = ebill_ledger::genesis_changes(genesis);
                let change = tree_change_of(&changes, |u| Ok(inner.tree.change(u)?))?;
                inner.tree.commit(&change);
                inner.units.extend(changes.units);
                inner.governance = changes.governance;
                inner.proposals.extend(changes.proposals);
                inner.genesis_hash = Some(given);
                Ok(())
            }
        }
    }

    fn genesis_hash(&self) -> Result<Option<Hash32>, StoreError> {
        Ok(self.read().genesis_hash)
    }

    fn tip(&self) -> Result<Option<Tip>, StoreError> {
        Ok(self.read().tip)
    }

    fn commit_block(
        &self,
        block: &Block,
        cert: &CommitCertificate,
        changes: &ChangeSet,
    ) -> Result<(), StoreError> {
        let hash = block.header.hash();
        let mut inner = self.write();
        let change = tree_change_of(changes, |u| Ok(inner.tree.change(u)?))?;
        check_commit(
            inner.genesis_hash,
            inner.tip,
            block,
            hash,
            cert,
            changes,
            change.root,
        )?;
        let index_ops = index::block_ops(block, changes)?;
        inner.tree.commit(&change);
        inner.apply_index(index_ops);
        let height = block.header.height;
        for (i, id) in changes.txs.iter().enumerate() {
            inner.tx_index.insert(*id, TxLocation::in_block(height, i));
        }
        for (id, rec) in &changes.bills {
            inner.bills.insert(*id, rec.clone());
        }
        for (code, rec) in &changes.units {
            inner.units.insert(*code, rec.clone());
        }
        if let Some(g) = &changes.governance {
            inner.governance = Some(g.clone());
        }
        for (id, rec) in &changes.proposals {
            inner.proposals.insert(*id, rec.clone());
        }
        inner.blocks.insert(height, block.clone());
        inner.certificates.insert(height, cert.clone());
        inner.block_index.insert(hash, height);
        inner.tip = Some(Tip { height, hash });
        Ok(())
    }

    fn header(&self, height: u64) -> Result<Option<Header>, StoreError> {
        Ok(self.read().blocks.get(&height).map(|b| b.header.clone()))
    }

    fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        Ok(self.read().blocks.get(&height).cloned())
    }

    fn height_of_block(&self, hash: &Hash32) -> Result<Option<u64>, StoreError> {
        Ok(self.read().block_index.get(hash).copied())
    }

    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StoreError> {
        Ok(self.read().certificates.get(&height).cloned())
    }

    fn tx(&self, id: &TxId) -> Result<Option<(SignedTx, TxLocation)>, StoreError> {
        let inner = self.read();
        let Some(loc) = inner.tx_index.get(id).copied() else {
            return Ok(None);
        };
        let tx = inner
            .blocks
            .get(&loc.height)
            .and_then(|b| b.txs.get(loc.index as usize))
            .cloned()
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("tx_index/{id}"),
                reason: format!(
                    "points at height {} index {}, which is not stored",
                    loc.height, loc.index
                ),
            })?;
        Ok(Some((tx, loc)))
    }

    fn find_bill(&self, id: &BillId) -> Result<Option<BillRecord>, StoreError> {
        Ok(self.read().bills.get(id).cloned())
    }

    fn find_unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StoreError> {
        Ok(self.read().units.get(code).cloned())
    }

    fn find_tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        Ok(self.read().tx_index.get(id).copied())
    }

    fn find_governance(&self) -> Result<Option<GovState>, StoreError> {
        Ok(self.read().governance.clone())
    }

    fn find_proposal(&self, id: &ProposalId) -> Result<Option<ProposalRecord>, StoreError> {
        Ok(self.read().proposals.get(id).cloned())
    }

    fn proposals(&self) -> Result<Vec<ProposalRecord>, StoreError> {
        Ok(self.read().proposals.values().cloned().collect())
    }

    fn units(&self) -> Result<Vec<UnitRecord>, StoreError> {
        Ok(self.read().units.values().cloned().collect())
    }

    fn wal_append(&self, height: u64, entry: &[u8]) -> Result<(), StoreError> {
        let mut inner = self.write();
        let seq = match inner
            .wal
            .range((height, 0)..=(height, u32::MAX))
            .next_back()
        {
            Some((&(_, last), _)) => last.checked_add(1).ok_or_else(|| {
                StoreError::Inconsistent(format!("write-ahead log of height {height} is full"))
            })?,
            None => 0,
        };
        inner.wal.insert((height, seq), entry.to_vec());
        Ok(())
    }

    fn wal_entries(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .read()
            .wal
            .range((height, 0)..=(height, u32::MAX))
            .map(|(_, v)| v.clone())
            .collect())
    }

    fn wal_prune_below(&self, height: u64) -> Result<(), StoreError> {
        let mut inner = self.write();
        let kept = inner.wal.split_off(&(height, 0));
        inner.wal = kept;
        Ok(())
    }

    fn last_cosigned(&self) -> Result<Option<crate::Cosigned>, StoreError> {
        Ok(self.read().last_cosigned)
    }

    fn record_cosigned(&self, cosigned: crate::Cosigned) -> Result<(), StoreError> {
        self.write().last_cosigned = Some(cosigned);
        Ok(())
    }

    fn disk_size_bytes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn index_scan(
        &self,
        index: Index,
        from: &[u8],
        until: Option<&[u8]>,
        visit: &mut EntryVisitor<'_>,
    ) -> Result<(), StoreError> {
        let inner = self.read();
        for (k, v) in inner.indexes[index.position()].range(from.to_vec()..) {
            if until.is_some_and(|u| k.as_slice() >= u) || !visit(k, v)? {
                break;
            }
        }
        Ok(())
    }

    fn index_get(&self, index: Index, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().indexes[index.position()].get(key).cloned())
    }

    fn scan_bills(
        &self,
        keys: BillKeys<'_>,
        visit: &mut BillVisitor<'_>,
    ) -> Result<(), StoreError> {
        Self::scan_locked(&self.read(), keys, visit)
    }

    fn scan_bill_runs(&self, runs: &mut [BillRun<'_>]) -> Result<(), StoreError> {
        // One after the other under one read lock: the same moment for every run.
        let moment = self.read();
        for run in runs.iter_mut() {
            Self::scan_locked(&moment, run.keys, &mut *run.visit)?;
        }
        Ok(())
    }

    fn bill_splits(&self, parts: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut runs: Vec<KeyRun> = self
            .read()
            .bills
            .keys()
            .map(|id| KeyRun {
                first_key: id.key().to_vec(),
                entries: 1,
            })
            .collect();
        runs.sort();
        Ok(even_splits(&runs, parts))
    }

    fn reindex(&self) -> Result<u64, StoreError> {
        let mut inner = self.write();
        let mut ops = Vec::new();
        for rec in inner.bills.values() {
            let issue = inner.tx_index.get(&rec.issue_tx()).and_then(|loc| {
                inner
                    .blocks
                    .get(&loc.height)
                    .and_then(|b| b.txs.get(loc.index as usize))
                    .map(|tx| (tx.clone(), *loc))
            });
            let facts = index::facts_from_issue(rec, issue)?;
            ops.extend(index::bill_entries(rec, &facts));
        }
        let count = inner.bills.len() as u64;
        for map in &mut inner.indexes {
            map.clear();
        }
        inner.apply_index(ops);
        Ok(count)
    }

    fn refused_append(&self, refused: &RefusedTx) -> Result<(), StoreError> {
        let mut inner = self.write();
        if inner.refused.len() as u64 >= index::MAX_REFUSED_LOG {
            inner.refused.pop_front();
        }
        inner.refused.push_back(refused.clone());
        Ok(())
    }

    fn refused_log(
        &self,
        visit: &mut dyn FnMut(&RefusedTx) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for r in &self.read().refused {
            if !visit(r)? {
                break;
            }
        }
        Ok(())
    }

    fn state_root(&self) -> Result<ebill_types::Hash32, StoreError> {
        Ok(self.read().tree.top.root())
    }

    fn prove_state(&self, key: &StateKey) -> Result<StateProof, StoreError> {
        let inner = self.read();
        Ok(inner.tree.top.prove(&inner.tree.leaves, &key.hash())?)
    }

    fn tree_change(&self, updates: &[LeafUpdate]) -> Result<TreeChange, StoreError> {
        Ok(self.read().tree.change(updates)?)
    }

    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
