//! # ebill-store
//!
//! Durable storage of the chain (docs/design.md §7): block headers and transactions,
//! commit certificates, the block and transaction indexes, the ledger state (bill
//! records with their status history, the registry of units), the consensus
//! write-ahead log and a little metadata (tip, genesis hash, format version); beside
//! them, outside consensus, the audit indexes and the bounded log of refused
//! transactions ([`index`]), written with the block they describe and rebuilt by
//! [`Store::reindex`].
//!
//! Two implementations sit behind one trait, [`Store`]:
//! - [`RocksStore`]: RocksDB with one column family per kind of record. Committing a
//!   block is one synced `WriteBatch`, so that after a crash a node has either all of a
//!   block (header, transactions, certificate, indexes, state changes, new tip) or none
//!   of it.
//! - [`MemStore`]: the same contract in memory, for tests and the simulator.
//!
//! Values are the canonical encodings of `ebill-types` and `ebill-ledger` (never a
//! serializer's incidental output), decoded strictly; a value that does not decode is
//! reported as [`StoreError::Corrupt`] naming its key, never a panic.
//!
//! Both stores implement [`ebill_ledger::StateView`] over the committed state, so the
//! ledger executes the next block directly against them.

pub mod index;
#[cfg(feature = "rocksdb")]
mod keys;
mod mem;
#[cfg(feature = "rocksdb")]
mod rocks;

use ebill_ledger::{
    BillRecord, ChangeSet, GovState, ProposalRecord, StateError, TxLocation, UnitRecord,
};
use ebill_types::state_store::TreeChange;
use ebill_types::state_tree::{LeafUpdate, StateKey, StateProof, TreeError};
use ebill_types::tx::ProposalId;
use ebill_types::{
    BillId, Block, CommitCertificate, CreditCode, Genesis, Hash32, Header, SignedTx, TxId,
};
use thiserror::Error;

use crate::index::{BillFacts, BillKeys, BillRun, BillVisitor, EntryVisitor, Index, RefusedTx};

#[cfg(feature = "rocksdb")]
pub use keys::cf;
pub use mem::MemStore;
#[cfg(feature = "rocksdb")]
pub use rocks::{RocksConfig, RocksStore, TREE_CUT};

/// Version of the on-disk layout; a store written with another version is refused.
/// 2: the state tree (column family `state_tree`) and a state root in every header.
/// 3: governance (column family `governance`: the governance record and proposals) and
/// qualification dates in unit records.
/// 4: the state tree stored in pages of four binary levels (ADR 0011), not one record
/// per binary node.
/// 5: the audit indexes (column families `idx_*`, [`index`]) and the refused-transaction
/// log (`refused_log`).
/// 6: the state tree stored as its leaves and the slots of its buckets
/// (`ebill_types::state_store`, ADR 0014), not in pages.
/// 7: a state tree leaf's key begins with its bucket, the family's RocksDB prefix, and
/// the family has prefix bloom filters (ADR 0016).
/// 8: all of a bucket's leaves in one record, `l` ‖ bucket -> leaves, written as merge
/// operands and read by point lookups through whole-key bloom filters (ADR 0017).
pub const FORMAT_VERSION: u32 = 8;

/// The last committed block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tip {
    /// Its height (1 for the first block).
    pub height: u64,
    /// Its hash.
    pub hash: Hash32,
}

/// A checkpoint a witness co-signed: height and block hash.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cosigned {
    /// The block's height.
    pub height: u64,
    /// The block's hash.
    pub hash: Hash32,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("i/o: {0}")]
    Io(String),
    /// RocksDB reported an error.
    #[error("rocksdb: {0}")]
    RocksDb(String),
    /// Bytes read from the store are not what was written: the key names the record.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// The record (column family and key).
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// The store holds another chain.
    #[error("the store holds genesis {stored}, not {given}")]
    GenesisMismatch {
        /// Genesis hash in the store.
        stored: Hash32,
        /// Genesis hash given.
        given: Hash32,
    },
    /// A block was committed before the genesis was recorded.
    #[error("no genesis recorded: call init_genesis first")]
    NoGenesis,
    /// The block does not extend the tip: wrong height or wrong previous hash.
    #[error(
        "block {got} with previous hash {got_prev} does not extend the tip at height {tip} (hash {expected_prev})"
    )]
    NotNext {
        /// Height of the tip (0: only the genesis).
        tip: u64,
        /// Height of the block offered.
        got: u64,
        /// The previous hash a next block must carry (the genesis hash for height 1).
        expected_prev: Hash32,
        /// The previous hash the block carries.
        got_prev: Hash32,
    },
    /// Block, certificate and changes do not belong together.
    #[error("inconsistent commit: {0}")]
    Inconsistent(String),
    /// The store was written with another layout version.
    #[error(
        "store format version {found}, this build reads only {expected}: keep the old directory for the build that wrote it, and sync this node from genesis into an empty one"
    )]
    UnsupportedFormat {
        /// Version on disk.
        found: u32,
        /// Version of this build.
        expected: u32,
    },
}

impl From<TreeError> for StoreError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::Storage(s) => StoreError::Io(s),
            TreeError::Unreadable { what, reason } => StoreError::Corrupt { what, reason },
            other => StoreError::Corrupt {
                what: "state_tree".into(),
                reason: other.to_string(),
            },
        }
    }
}

impl From<StoreError> for TreeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { what, reason } => TreeError::Unreadable { what, reason },
            other => TreeError::Storage(other.to_string()),
        }
    }
}

impl From<StoreError> for StateError {
    fn from(e: StoreError) -> Self {
        StateError(e.to_string())
    }
}

/// Storage of the chain and the committed ledger state. Implementations are safe to
/// share between threads; commits are serialised inside.
pub trait Store: ebill_ledger::StateView + Send + Sync {
    /// On first open: records the genesis hash, the genesis units
    /// ([`ebill_ledger::genesis_changes`]) and the state tree of the genesis state in
    /// one synced batch. Later: refuses a different genesis
    /// ([`StoreError::GenesisMismatch`]); the same one is a no-op.
    fn init_genesis(&self, genesis: &Genesis) -> Result<(), StoreError>;

    /// The recorded genesis hash, if any.
    fn genesis_hash(&self) -> Result<Option<Hash32>, StoreError>;

    /// The last committed block; `None` before block 1.
    fn tip(&self) -> Result<Option<Tip>, StoreError>;

    /// Commits a final block with its certificate and the state changes of its
    /// execution, atomically and durably (one synced batch): header, every transaction
    /// (by position and by id), certificate, block hash index, bill and unit records,
    /// new tip.
    ///
    /// The state tree is updated in the same batch: with `changes.tree` if given (it
    /// must have been computed by [`state_update`] against this store's tip), else
    /// computed here.
    ///
    /// Refuses a block that does not extend the tip ([`StoreError::NotNext`]: height
    /// must be tip + 1 and the previous hash the tip's hash, or the genesis hash for
    /// height 1), a certificate for another block, changes whose transaction count
    /// differs from the block's and a header whose state root is not the tree's root
    /// after the changes ([`StoreError::Inconsistent`]). `changes.txs` must be the ids
    /// of `block.txs` in order, as [`ebill_ledger::apply_block`] returns them.
    fn commit_block(
        &self,
        block: &Block,
        cert: &CommitCertificate,
        changes: &ChangeSet,
    ) -> Result<(), StoreError>;

    /// The header at `height`.
    fn header(&self, height: u64) -> Result<Option<Header>, StoreError>;

    /// The block at `height`, with all its transactions.
    fn block(&self, height: u64) -> Result<Option<Block>, StoreError>;

    /// The height of the block with this hash.
    fn height_of_block(&self, hash: &Hash32) -> Result<Option<u64>, StoreError>;

    /// The block with this hash.
    fn block_by_hash(&self, hash: &Hash32) -> Result<Option<Block>, StoreError> {
        match self.height_of_block(hash)? {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }

    /// The commit certificate of the block at `height`.
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StoreError>;

    /// A committed transaction by id, with where it is.
    fn tx(&self, id: &TxId) -> Result<Option<(SignedTx, TxLocation)>, StoreError>;

    /// A bill's record with its full status history (the typed-error form of
    /// [`ebill_ledger::StateView::bill`]).
    fn find_bill(&self, id: &BillId) -> Result<Option<BillRecord>, StoreError>;

    /// A unit's record (typed-error form of [`ebill_ledger::StateView::unit`]).
    fn find_unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StoreError>;

    /// Where a transaction was committed (typed-error form of
    /// [`ebill_ledger::StateView::tx_location`]).
    fn find_tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StoreError>;

    /// The governance record (typed-error form of
    /// [`ebill_ledger::StateView::governance`]).
    fn find_governance(&self) -> Result<Option<GovState>, StoreError>;

    /// A proposal (typed-error form of [`ebill_ledger::StateView::proposal`]).
    fn find_proposal(&self, id: &ProposalId) -> Result<Option<ProposalRecord>, StoreError>;

    /// Every proposal, by id.
    fn proposals(&self) -> Result<Vec<ProposalRecord>, StoreError>;

    /// Every registered unit, by credit code.
    fn units(&self) -> Result<Vec<UnitRecord>, StoreError>;

    /// Consensus write-ahead log: appends one of our own signed votes or proposals
    /// (opaque bytes) for `height`, durably (synced) — call it before sending.
    fn wal_append(&self, height: u64, entry: &[u8]) -> Result<(), StoreError>;

    /// Like [`Store::wal_append`] but without waiting for the disk: for records whose
    /// loss in a power failure costs only what not writing them would (a process that
    /// is killed still keeps them). Stores without a cheaper way append durably.
    fn wal_append_unsynced(&self, height: u64, entry: &[u8]) -> Result<(), StoreError> {
        self.wal_append(height, entry)
    }

    /// The write-ahead log entries of `height`, in the order appended.
    fn wal_entries(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Drops the write-ahead log entries of every height below `height`.
    fn wal_prune_below(&self, height: u64) -> Result<(), StoreError>;

    /// The last checkpoint this node co-signed as a witness (a regulator's observer):
    /// its height and block hash ([`ebill_types::checkpoint`]).
    fn last_cosigned(&self) -> Result<Option<Cosigned>, StoreError>;

    /// Records, durably (synced), that this node co-signs the block `hash` at `height`:
    /// called before the co-signature leaves the node, as votes are written to the WAL
    /// before they are sent, so that a witness that restarts never co-signs another
    /// block at a height it signed.
    fn record_cosigned(&self, cosigned: Cosigned) -> Result<(), StoreError>;

    /// Approximate size on disk in bytes (0 for a store in memory).
    fn disk_size_bytes(&self) -> Result<u64, StoreError>;

    /// Runs a full manual compaction (a no-op in memory).
    fn compact(&self) -> Result<(), StoreError>;

    /// Visits the entries of an audit `index` with keys in `[from, until)` (`until`
    /// `None`: to the end) in key order, until the visitor returns `Ok(false)`.
    fn index_scan(
        &self,
        index: Index,
        from: &[u8],
        until: Option<&[u8]>,
        visit: &mut EntryVisitor<'_>,
    ) -> Result<(), StoreError>;

    /// One entry of an audit index.
    fn index_get(&self, index: Index, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// The facts of a bill ([`Index::Facts`]).
    fn bill_facts(&self, id: &BillId) -> Result<Option<BillFacts>, StoreError> {
        match self.index_get(Index::Facts, &id.key())? {
            Some(v) => index::decode_facts(&id.key(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Visits every bill of `keys` with its facts in bill-key order, until the visitor
    /// returns `Ok(false)`. A bill without facts is [`StoreError::Corrupt`]: run
    /// [`Store::reindex`].
    fn scan_bills(&self, keys: BillKeys<'_>, visit: &mut BillVisitor<'_>)
    -> Result<(), StoreError>;

    /// Visits the bills of each run with its visitor, the runs on threads of their own
    /// at once, all of them as of one moment: a commit meanwhile is seen by every run or
    /// by none. Fails with the first failure in run order.
    fn scan_bill_runs(&self, runs: &mut [BillRun<'_>]) -> Result<(), StoreError>;

    /// Up to `parts - 1` bill keys, strictly increasing, that cut the bills into runs of
    /// about equal size, so that a scan of every bill can run on several cores (each run
    /// a [`BillKeys`] between two of them). An estimate: the runs may differ in size, and
    /// a store that cannot tell, or holds few bills, gives fewer keys or none.
    fn bill_splits(&self, parts: usize) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Rebuilds every audit index from the stored bills and their issue transactions:
    /// drops what the indexes hold and writes [`index::bill_entries`] of every bill.
    /// Commits wait meanwhile. Returns the number of bills indexed.
    fn reindex(&self) -> Result<u64, StoreError>;

    /// Appends a refused transaction to the bounded log (at most
    /// [`index::MAX_REFUSED_LOG`] entries, the oldest dropped first); not synced: losing
    /// the last refusals in a power failure costs only evidence of attempts.
    fn refused_append(&self, refused: &RefusedTx) -> Result<(), StoreError>;

    /// Visits the refused-transaction log, oldest first, until the visitor returns
    /// `Ok(false)`.
    fn refused_log(
        &self,
        visit: &mut dyn FnMut(&RefusedTx) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// The state root as of the tip (of the genesis state before block 1).
    fn state_root(&self) -> Result<Hash32, StoreError>;

    /// The path of `key` in the state tree as of the tip: a membership proof if it has
    /// a value, an absence proof if not. The store checks the proof against its root
    /// before it answers.
    fn prove_state(&self, key: &StateKey) -> Result<StateProof, StoreError>;

    /// What `updates` (sorted by key, each key once) would do to the state tree as of
    /// the tip: the new root and what to write. Computed, not written: a commit writes
    /// it ([`Store::commit_block`] with `changes.tree`).
    fn tree_change(&self, updates: &[LeafUpdate]) -> Result<TreeChange, StoreError>;
}

/// The state tree's change for `changes` applied to `store`'s tip: the new root, for a
/// block's header, and what to write with the block.
pub fn state_update<S: Store + ?Sized>(
    store: &S,
    changes: &ChangeSet,
) -> Result<TreeChange, StoreError> {
    store.tree_change(&ebill_ledger::state_updates(changes))
}

/// `changes.tree`, or the change `compute` makes of the changes' leaf updates if they
/// do not carry one (each store computes it against its tip under its own lock).
pub(crate) fn tree_change_of<'a>(
    changes: &'a ChangeSet,
    compute: impl FnOnce(&[LeafUpdate]) -> Result<TreeChange, StoreError>,
) -> Result<std::borrow::Cow<'a, TreeChange>, StoreError> {
    match &changes.tree {
        Some(c) => Ok(std::borrow::Cow::Borrowed(c)),
        None => Ok(std::borrow::Cow::Owned(compute(
            &ebill_ledger::state_updates(changes),
        )?)),
    }
}

/// Checks what every store checks before a commit: the block extends `tip`, the
/// certificate is for it, and the changes are as long as its body. Returns the block
/// hash.
pub(crate) fn check_commit(
    genesis_hash: Option<Hash32>,
    tip: Option<Tip>,
    block: &Block,
    block_hash: Hash32,
    cert: &CommitCertificate,
    changes: &ChangeSet,
    state_root: Hash32,
) -> Result<(), StoreError> {
    let Some(genesis_hash) = genesis_hash else {
        return Err(StoreError::NoGenesis);
    };
    let (tip_height, expected_prev) = match tip {
        Some(t) => (t.height, t.hash),
        None => (0, genesis_hash),
    };
    let h = &block.header;
    if h.height != tip_height.wrapping_add(1) || h.prev_hash != expected_prev {
        return Err(StoreError::NotNext {
            tip: tip_height,
            got: h.height,
            expected_prev,
            got_prev: h.prev_hash,
        });
    }
    if cert.height != h.height || cert.block != block_hash {
        return Err(StoreError::Inconsistent(format!(
            "certificate is for height {} block {}, not height {} block {}",
            cert.height, cert.block, h.height, block_hash
        )));
    }
    if h.tx_count as usize != block.txs.len() || changes.txs.len() != block.txs.len() {
        return Err(StoreError::Inconsistent(format!(
            "header counts {} transactions, body has {}, changes list {}",
            h.tx_count,
            block.txs.len(),
            changes.txs.len()
        )));
    }
    if h.state_root != state_root {
        return Err(StoreError::Inconsistent(format!(
            "header state root {} is not {}, the root after the block's changes",
            h.state_root, state_root
        )));
    }
    if u32::try_from(block.txs.len()).is_err() {
        return Err(StoreError::Inconsistent(format!(
            "{} transactions in one block",
            block.txs.len()
        )));
    }
    Ok(())
}
