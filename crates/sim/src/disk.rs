//! A validator's disk: a [`MemStore`] that survives crashes, behind a wrapper that
//! injects the faults a real disk and process have: a commit that fails (the engine
//! stops, the node restarts), a crash right after a commit is durable (before the node
//! could tell anyone), and, as a planted bug, a commit that forgets its state-tree
//! update. The engine sees only the `Store` trait, as in a node.

use std::sync::{Arc, Mutex, PoisonError};

use ebill_ledger::{BillRecord, ChangeSet, StateError, StateView, TxLocation, UnitRecord};
use ebill_store::{MemStore, Store, StoreError, Tip};
use ebill_types::state_store::TreeChange;
use ebill_types::{
    BillId, Block, CommitCertificate, CreditCode, Genesis, Hash32, Header, SignedTx, TxId,
};

/// What the next commit does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CommitFault {
    /// Commits.
    #[default]
    None,
    /// Fails before writing anything (a full disk, an I/O error).
    FailBefore,
    /// Writes everything, then the process dies before the engine hears back.
    CrashAfter,
    /// Planted bug: writes the block but not its state-tree update.
    SkipStateUpdate,
}

/// Faults injected so far, by kind (for the run's report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InjectedFaults {
    /// Commits refused before writing.
    pub failed_commits: u64,
    /// Crashes right after a durable commit.
    pub crashes_after_commit: u64,
    /// Commits without their tree update (planted bug).
    pub skipped_state_updates: u64,
}

/// A commit that became durable just before an injected crash: the engine never got
/// to report it, so the checkers hear of it from here.
#[derive(Clone, Debug)]
pub struct UnreportedCommit {
    /// The block.
    pub block: Block,
    /// Its certificate.
    pub certificate: CommitCertificate,
    /// Its changes.
    pub changes: ChangeSet,
}

/// A [`MemStore`] with injected commit faults.
pub struct FaultyStore {
    unreported: Mutex<Option<UnreportedCommit>>,
    inner: Arc<MemStore>,
    next: Mutex<CommitFault>,
    /// Set when a fault that ends the process fired: the node must crash and restart.
    crashed: Mutex<bool>,
    injected: Mutex<InjectedFaults>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultyStore {
    /// A store over `inner`, injecting nothing until told.
    pub fn new(inner: Arc<MemStore>) -> Self {
        Self {
            unreported: Mutex::new(None),
            inner,
            next: Mutex::new(CommitFault::None),
            crashed: Mutex::new(false),
            injected: Mutex::new(InjectedFaults::default()),
        }
    }

    /// The store underneath (what survives).
    pub fn inner(&self) -> &Arc<MemStore> {
        &self.inner
    }

    /// Makes the next commit do `fault`.
    pub fn arm(&self, fault: CommitFault) {
        *lock(&self.next) = fault;
    }

    /// Whether an injected fault ended the process (and clears the mark).
    pub fn take_crash(&self) -> bool {
        std::mem::take(&mut *lock(&self.crashed))
    }

    /// The commit an injected crash kept the engine from reporting, if any.
    pub fn take_unreported(&self) -> Option<UnreportedCommit> {
        lock(&self.unreported).take()
    }

    /// Faults injected so far.
    pub fn injected(&self) -> InjectedFaults {
        *lock(&self.injected)
    }
}

impl StateView for FaultyStore {
    fn bill(&self, id: &BillId) -> Result<Option<BillRecord>, StateError> {
        self.inner.bill(id)
    }
    fn unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StateError> {
        self.inner.unit(code)
    }
    fn tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StateError> {
        self.inner.tx_location(id)
    }
    fn governance(&self) -> Result<Option<ebill_ledger::GovState>, StateError> {
        self.inner.governance()
    }
    fn proposal(
        &self,
        id: &ebill_types::tx::ProposalId,
    ) -> Result<Option<ebill_ledger::ProposalRecord>, StateError> {
        self.inner.proposal(id)
    }
}

impl Store for FaultyStore {
    fn state_root(&self) -> Result<Hash32, StoreError> {
        self.inner.state_root()
    }
    fn prove_state(
        &self,
        key: &ebill_types::state_tree::StateKey,
    ) -> Result<ebill_types::state_tree::StateProof, StoreError> {
        self.inner.prove_state(key)
    }
    fn tree_change(
        &self,
        updates: &[ebill_types::state_tree::LeafUpdate],
    ) -> Result<ebill_types::state_store::TreeChange, StoreError> {
        self.inner.tree_change(updates)
    }
    fn init_genesis(&self, genesis: &Genesis) -> Result<(), StoreError> {
        self.inner.init_genesis(genesis)
    }
    fn genesis_hash(&self) -> Result<Option<Hash32>, StoreError> {
        self.inner.genesis_hash()
    }
    fn tip(&self) -> Result<Option<Tip>, StoreError> {
        self.inner.tip()
    }
    fn commit_block(
        &self,
        block: &Block,
        cert: &CommitCertificate,
        changes: &ChangeSet,
    ) -> Result<(), StoreError> {
        let fault = std::mem::take(&mut *lock(&self.next));
        match fault {
            CommitFault::None => self.inner.commit_block(block, cert, changes),
            CommitFault::FailBefore => {
                lock(&self.injected).failed_commits += 1;
                *lock(&self.crashed) = true;
                Err(StoreError::Io(
                    "injected: the disk refused the write".into(),
                ))
            }
            CommitFault::CrashAfter => {
                self.inner.commit_block(block, cert, changes)?;
                *lock(&self.unreported) = Some(UnreportedCommit {
                    block: block.clone(),
                    certificate: cert.clone(),
                    changes: changes.clone(),
                });
                lock(&self.injected).crashes_after_commit += 1;
                *lock(&self.crashed) = true;
                Err(StoreError::Io(
                    "injected: the process died after the commit".into(),
                ))
            }
            CommitFault::SkipStateUpdate => {
                lock(&self.injected).skipped_state_updates += 1;
                let mut forgetful = changes.clone();
                forgetful.tree = Some(TreeChange {
                    root: block.header.state_root,
                    leaves: Vec::new(),
                    levels: Vec::new(),
                });
                self.inner.commit_block(block, cert, &forgetful)
            }
        }
    }
    fn header(&self, height: u64) -> Result<Option<Header>, StoreError> {
        self.inner.header(height)
    }
    fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.inner.block(height)
    }
    fn height_of_block(&self, hash: &Hash32) -> Result<Option<u64>, StoreError> {
        self.inner.height_of_block(hash)
    }
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StoreError> {
        self.inner.certificate(height)
    }
    fn tx(&self, id: &TxId) -> Result<Option<(SignedTx, TxLocation)>, StoreError> {
        self.inner.tx(id)
    }
    fn find_bill(&self, id: &BillId) -> Result<Option<BillRecord>, StoreError> {
        self.inner.find_bill(id)
    }
    fn find_unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StoreError> {
        self.inner.find_unit(code)
    }
    fn find_tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        self.inner.find_tx_location(id)
    }
    fn find_governance(&self) -> Result<Option<ebill_ledger::GovState>, StoreError> {
        self.inner.find_governance()
    }
    fn find_proposal(
        &self,
        id: &ebill_types::tx::ProposalId,
    ) -> Result<Option<ebill_ledger::ProposalRecord>, StoreError> {
        self.inner.find_proposal(id)
    }
    fn proposals(&self) -> Result<Vec<ebill_ledger::ProposalRecord>, StoreError> {
        self.inner.proposals()
    }
    fn units(&self) -> Result<Vec<UnitRecord>, StoreError> {
        self.inner.units()
    }
    fn wal_append(&self, height: u64, entry: &[u8]) -> Result<(), StoreError> {
        self.inner.wal_append(height, entry)
    }
    fn wal_entries(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.wal_entries(height)
    }
    fn index_scan(
        &self,
        index: ebill_store::index::Index,
        from: &[u8],
        until: Option<&[u8]>,
        visit: &mut ebill_store::index::EntryVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.inner.index_scan(index, from, until, visit)
    }
    fn index_get(
        &self,
        index: ebill_store::index::Index,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.index_get(index, key)
    }
    fn scan_bills(
        &self,
        keys: ebill_store::index::BillKeys<'_>,
        visit: &mut ebill_store::index::BillVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.inner.scan_bills(keys, visit)
    }
    fn scan_bill_runs(
        &self,
        runs: &mut [ebill_store::index::BillRun<'_>],
    ) -> Result<(), StoreError> {
        self.inner.scan_bill_runs(runs)
    }
    fn bill_splits(&self, parts: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.bill_splits(parts)
    }
    fn reindex(&self) -> Result<u64, StoreError> {
        self.inner.reindex()
    }
    fn refused_append(&self, refused: &ebill_store::index::RefusedTx) -> Result<(), StoreError> {
        self.inner.refused_append(refused)
    }
    fn refused_log(
        &self,
        visit: &mut dyn FnMut(&ebill_store::index::RefusedTx) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.inner.refused_log(visit)
    }
    fn wal_prune_below(&self, height: u64) -> Result<(), StoreError> {
        self.inner.wal_prune_below(height)
    }
    fn last_cosigned(&self) -> Result<Option<ebill_store::Cosigned>, StoreError> {
        self.inner.last_cosigned()
    }
    fn record_cosigned(&self, cosigned: ebill_store::Cosigned) -> Result<(), StoreError> {
        self.inner.record_cosigned(cosigned)
    }
    fn disk_size_bytes(&self) -> Result<u64, StoreError> {
        self.inner.disk_size_bytes()
    }
    fn compact(&self) -> Result<(), StoreError> {
        self.inner.compact()
    }
}
