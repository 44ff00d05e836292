//! [`RocksStore`]: the [`Store`] contract on RocksDB.
//!
//! One column family per kind of record (see [`crate::cf`]). A block commit is one
//! `WriteBatch` written with `sync = true`, so the RocksDB write-ahead log holds either
//! the whole batch or none of it after a crash; the genesis record and the consensus
//! write-ahead log appends are synced too.
//!
//! Tuning: the point-lookup families (bills, transaction index, block index, units)
//! carry 10-bit bloom filters in their tables and whole-key bloom filters in their
//! memtables, because the ledger mostly asks for keys that do not exist yet (a new
//! bill, a new transaction id); index and filter blocks live in one shared LRU block
//! cache. Memtables are 64 MiB for the families a 5,000-transaction block fills
//! (about 1.3 MB of transactions and 0.6 MB of bill records per block), so that a
//! block never waits for a flush. Values are compressed with LZ4, except the state tree's
//! (hashes, which do not compress). The state tree keeps all of a bucket's leaves in one
//! record (`keys::tree_leaves_key`), which a block extends with a merge operand of its
//! own leaves (`keys::merge_tree_leaves` folds them), so a block's update reads its
//! buckets with one batched point lookup (RocksDB's MultiGet, sorted keys) through
//! whole-key bloom filters, as the point-lookup families do (ADR 0017).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ebill_ledger::{
    BillRecord, ChangeSet, GovState, ProposalRecord, StateError, StateView, TxLocation, UnitRecord,
};
use ebill_types::tx::ProposalId;
use ebill_types::{
    BillId, Block, Canonical, CommitCertificate, CreditCode, Genesis, Hash32, Header, SignedTx,
    TxId,
};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBWithThreadMode, Direction, IteratorMode, Options, ReadOptions, SingleThreaded, WriteBatch,
    WriteOptions,
};

use crate::index::{
    self, BillKeys, BillRun, BillVisitor, EntryVisitor, Index, IndexOp, KeyRun, RefusedTx,
    even_splits,
};
use crate::keys::{self, cf};
use crate::{FORMAT_VERSION, Store, StoreError, Tip, check_commit, tree_change_of};
use ebill_types::state_store::{LeafSource, MAX_CUT, Slot, SlotWrite, StoredTree, TreeChange};
use ebill_types::state_tree::{LeafUpdate, StateKey, StateProof, TreeError};

type Db = DBWithThreadMode<SingleThreaded>;

const MIB: usize = 1024 * 1024;

/// Tuning of a [`RocksStore`].
#[derive(Clone, Debug)]
pub struct RocksConfig {
    /// Shared LRU block cache (data, index and filter blocks), bytes.
    pub block_cache_bytes: usize,
    /// Memtable size of the large column families (transactions, bills, transaction
    /// index), bytes.
    pub write_buffer_bytes: usize,
    /// Background flush and compaction threads.
    pub background_jobs: i32,
    /// Depth of the state tree's buckets for a store created now (≤
    /// `ebill_types::state_store::MAX_CUT`); a store keeps the depth it was created with.
    pub tree_cut: usize,
}

impl Default for RocksConfig {
    fn default() -> Self {
        Self {
            block_cache_bytes: 256 * MIB,
            write_buffer_bytes: 64 * MIB,
            background_jobs: 4,
            tree_cut: TREE_CUT,
        }
    }
}

/// The chain in RocksDB. See the module documentation for the layout and tuning.
pub struct RocksStore {
    db: Db,
    path: PathBuf,
    /// The tip, cached; its lock also serialises commits so that checking the tip and
    /// writing the next block are one step.
    tip: Mutex<Option<Tip>>,
    /// Serialises write-ahead log appends (sequence numbers).
    wal_lock: Mutex<()>,
    /// The next sequence number of the refused-transaction log; its lock serialises
    /// appends.
    refused_next: Mutex<u64>,
    /// The committed top of the state tree (`ebill_types::state_store`). A commit holds
    /// its write lock from the write of its batch until the top matches it, and a proof
    /// its read lock while it reads leaves, so a proof never mixes two versions.
    tree: RwLock<StoredTree>,
    /// Depth of the tree's buckets, as recorded in the store: what a leaves record's
    /// bucket index counts (`keys::tree_leaves_key`). Set once at open, equal to `tree`'s
    /// cut; kept apart because leaves are read while the top's read lock is held
    /// (`StoredTree::change`, `prove`), where taking it again could wait behind a writer.
    tree_cut: usize,
    /// Benchmarks only: commits write no audit index entries, to time what they cost.
    #[cfg(feature = "bench")]
    bench_skip_indexes: std::sync::atomic::AtomicBool,
}

/// Default depth of a [`RocksStore`]'s state tree buckets (`ebill_types::state_store`):
/// the top keeps 2^21 slots (about 69 MiB once every bucket holds a leaf), and at 10^7
/// keys a bucket holds about 10 leaves. Part of a store's layout (its bucket records are
/// the slots of this depth): recorded when the store is created.
pub const TREE_CUT: usize = 20;

/// Upper bound of every audit index key (the longest is 44 bytes).
const INDEX_KEY_END: [u8; 64] = [0xff; 64];

/// Bills indexed per batch by a rebuild.
const REINDEX_BATCH_BILLS: usize = 10_000;

fn rocks_err(e: rocksdb::Error) -> StoreError {
    StoreError::RocksDb(e.into_string())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below either writes one batch or nothing: a panic inside
    // one leaves the cached tip equal to what is on disk, so a poisoned lock is still
    // consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// The top's write lock is held over a batch's write and `StoredTree::commit`, which
// only assigns slots: a panic there can leave the top behind the disk, which the next
// open rebuilds from the bucket records.
fn read_tree(t: &RwLock<StoredTree>) -> RwLockReadGuard<'_, StoredTree> {
    t.read().unwrap_or_else(|e| e.into_inner())
}

fn write_tree(t: &RwLock<StoredTree>) -> RwLockWriteGuard<'_, StoredTree> {
    t.write().unwrap_or_else(|e| e.into_inner())
}

fn cf_options(name: &str, cache: &Cache, config: &RocksConfig) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_format_version(5);
    let mut opts = Options::default();
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Lz4);
    opts.set_level_compaction_dynamic_level_bytes(true);
    match name {
        cf::BILLS
        | cf::TX_INDEX
        | cf::BLOCK_INDEX
        | cf::UNITS
        | cf::IDX_BILL_FACTS
        | cf::STATE_TREE => {
            table.set_bloom_filter(10.0, false);
            table.set_whole_key_filtering(true);
            opts.set_memtable_prefix_bloom_ratio(0.05);
            opts.set_memtable_whole_key_filtering(true);
            let big = name == cf::BILLS || name == cf::TX_INDEX || name == cf::STATE_TREE;
            opts.set_write_buffer_size(if big {
                config.write_buffer_bytes
            } else {
                8 * MIB
            });
            if name == cf::STATE_TREE {
                // Hashes do not compress. A block writes only its own leaves of a
                // bucket, as a merge operand; reads and compactions fold them in.
                opts.set_compression_type(DBCompressionType::None);
                opts.set_bottommost_compression_type(DBCompressionType::None);
                opts.set_merge_operator_associative(
                    "ebill_tree_leaves_v1",
                    |_key, existing, operands| keys::merge_tree_leaves(existing, operands),
                );
            }
        }
        cf::BLOCK_TXS => {
            // Read back by block (a contiguous key range) or by one point get through
            // the transaction index: larger blocks compress better.
            table.set_block_size(16 * 1024);
            opts.set_write_buffer_size(config.write_buffer_bytes);
        }
        _ => {
            opts.set_write_buffer_size(8 * MIB);
        }
    }
    opts.set_max_write_buffer_number(4);
    opts.set_block_based_table_factory(&table);
    opts
}

/// The RocksDB database at `path` with the store's column families and their options
/// (the state tree's merge operator among them), created if `create`.
fn open_db(path: &Path, config: &RocksConfig, create: bool) -> Result<Db, StoreError> {
    let cache = Cache::new_lru_cache(config.block_cache_bytes);
    let mut db_opts = Options::default();
    db_opts.create_if_missing(create);
    db_opts.create_missing_column_families(create);
    db_opts.set_max_background_jobs(config.background_jobs);
    db_opts.set_bytes_per_sync(MIB as u64);
    db_opts.set_keep_log_file_num(4);
    db_opts.set_max_total_wal_size(512 * MIB as u64);
    let descriptors = cf::ALL
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name, &cache, config)));
    Db::open_cf_descriptors(&db_opts, path, descriptors).map_err(rocks_err)
}

impl RocksStore {
    /// The RocksDB database of an existing store, opened as the store opens it but
    /// without any of its checks, for repair tools and for tests that damage records.
    /// Anything that opens a store's database must open it so: the state tree's
    /// leaves are merge operands that only the store's merge operator can fold
    /// (ADR 0017), and a database opened without it cannot flush or compact them.
    pub fn open_raw(path: impl AsRef<Path>) -> Result<rocksdb::DB, StoreError> {
        open_db(path.as_ref(), &RocksConfig::default(), false)
    }

    /// Opens (creating if missing) the store at `path` with the default tuning.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, &RocksConfig::default())
    }

    /// Opens (creating if missing) the store at `path`.
    pub fn open_with(path: impl AsRef<Path>, config: &RocksConfig) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)
            .map_err(|e| StoreError::Io(format!("creating {}: {e}", path.display())))?;
        let db = open_db(&path, config, true)?;
        let mut store = Self {
            db,
            path,
            tip: Mutex::new(None),
            wal_lock: Mutex::new(()),
            tree: RwLock::new(StoredTree::new(0)),
            tree_cut: 0,
            refused_next: Mutex::new(0),
            #[cfg(feature = "bench")]
            bench_skip_indexes: std::sync::atomic::AtomicBool::new(false),
        };
        if let Some(v) = store.get(cf::META, keys::META_FORMAT)? {
            let found = keys::decode_format(&v)?;
            if found != FORMAT_VERSION {
                return Err(StoreError::UnsupportedFormat {
                    found,
                    expected: FORMAT_VERSION,
                });
            }
        }
        let tip = match store.get(cf::META, keys::META_TIP)? {
            Some(v) => Some(keys::decode_tip(&v)?),
            None => None,
        };
        if let Some(t) = tip {
            // The tip and its block are written in one batch: one without the other
            // is not a crash, it is damage.
            let stored = store.header(t.height)?.map(|h| h.hash());
            if stored != Some(t.hash) {
                return Err(StoreError::Corrupt {
                    what: "meta/tip".to_owned(),
                    reason: format!(
                        "tip is height {} hash {}, but the stored header there hashes to {:?}",
                        t.height, t.hash, stored
                    ),
                });
            }
        }
        if config.tree_cut > MAX_CUT {
            return Err(StoreError::Inconsistent(format!(
                "state tree cut {} above the largest, {MAX_CUT}",
                config.tree_cut
            )));
        }
        let cut = match store.get(cf::META, keys::META_TREE_CUT)? {
            Some(v) => keys::decode_tree_cut(&v, MAX_CUT)?,
            None => config.tree_cut,
        };
        store.tree_cut = cut;
        *write_tree(&store.tree) = store.load_tree(cut)?;
        if let Some(t) = tip {
            let root = read_tree(&store.tree).root();
            let header_root = store.header(t.height)?.map(|h| h.state_root);
            if header_root != Some(root) {
                return Err(StoreError::Corrupt {
                    what: "state_tree".to_owned(),
                    reason: format!(
                        "the stored tree's root {root} is not the tip's state root {header_root:?}"
                    ),
                });
            }
        }
        *lock(&store.tip) = tip;
        *lock(&store.refused_next) = store.last_refused_seq()?.map_or(0, |s| s + 1);
        Ok(store)
    }

    fn last_refused_seq(&self) -> Result<Option<u64>, StoreError> {
        let handle = self.cf(cf::REFUSED_LOG)?;
        let mut it = self.db.raw_iterator_cf(handle);
        it.seek_to_last();
        match it.key() {
            Some(k) => Ok(Some(keys::decode_height("refused_log key", k)?)),
            None => {
                it.status().map_err(rocks_err)?;
                Ok(None)
            }
        }
    }

    fn index_cf(&self, index: Index) -> Result<&ColumnFamily, StoreError> {
        self.cf(index.cf_name())
    }

    fn put_index(&self, batch: &mut WriteBatch, ops: &[IndexOp]) -> Result<(), StoreError> {
        let mut handles = Vec::with_capacity(Index::ALL.len());
        for i in Index::ALL {
            handles.push(self.index_cf(i)?);
        }
        for op in ops {
            let h = handles[op.index.position()];
            match &op.value {
                Some(v) => batch.put_cf(h, &op.key, v),
                None => batch.delete_cf(h, &op.key),
            }
        }
        Ok(())
    }

    fn put_governance(
        &self,
        batch: &mut WriteBatch,
        changes: &ChangeSet,
    ) -> Result<(), StoreError> {
        let gov = self.cf(cf::GOVERNANCE)?;
        if let Some(g) = &changes.governance {
            batch.put_cf(gov, keys::GOV_STATE, g.to_canonical_bytes());
        }
        for (id, rec) in &changes.proposals {
            batch.put_cf(gov, keys::proposal_key(id), rec.to_canonical_bytes());
        }
        Ok(())
    }

    /// The top of the stored tree, rebuilt from its bucket records.
    fn load_tree(&self, cut: usize) -> Result<StoredTree, StoreError> {
        let handle = self.cf(cf::STATE_TREE)?;
        let mut buckets = Vec::new();
        let mut it = self.db.raw_iterator_cf(handle);
        it.seek([keys::TREE_BUCKET]);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k.first() != Some(&keys::TREE_BUCKET) {
                break;
            }
            let bad = |reason: &str| StoreError::Corrupt {
                what: format!("state_tree/bucket {k:02x?}"),
                reason: reason.to_owned(),
            };
            let index = keys::decode_tree_bucket_key(k).ok_or_else(|| bad("malformed key"))?;
            let slot = Slot::from_bytes(v).ok_or_else(|| bad("malformed slot"))?;
            buckets.push(SlotWrite { index, slot });
            it.next();
        }
        it.status().map_err(rocks_err)?;
        Ok(StoredTree::from_buckets(cut, buckets)?)
    }

    /// Puts what `change` writes into `batch`: each changed bucket's new leaves, as a
    /// merge operand of its leaves record, and its slot.
    fn put_tree(&self, batch: &mut WriteBatch, change: &TreeChange) -> Result<(), StoreError> {
        let tree = self.cf(cf::STATE_TREE)?;
        let mut written = 0usize;
        for bucket in change.bucket_leaves() {
            batch.merge_cf(
                tree,
                keys::tree_leaves_key(bucket.index),
                keys::encode_tree_leaves(bucket.leaves),
            );
            written += 1;
        }
        assert_eq!(
            written,
            change.buckets().len(),
            "a tree change whose leaves are not its buckets'"
        );
        for bucket in change.buckets() {
            batch.put_cf(
                tree,
                keys::tree_bucket_key(bucket.index),
                bucket.slot.to_bytes(),
            );
        }
        Ok(())
    }

    /// Writes `batch` (synced if `sync`) and makes `change` the committed top, both
    /// under the top's write lock.
    fn write_with_tree(
        &self,
        batch: WriteBatch,
        change: &TreeChange,
        sync: bool,
    ) -> Result<(), StoreError> {
        let mut tree = write_tree(&self.tree);
        if sync {
            self.sync_write(batch)?;
        } else {
            self.db.write(batch).map_err(rocks_err)?;
        }
        tree.commit(change);
        Ok(())
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::RocksDb(format!("column family {name} is missing")))
    }

    fn get(&self, family: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let handle = self.cf(family)?;
        Ok(self
            .db
            .get_pinned_cf(handle, key)
            .map_err(rocks_err)?
            .map(|v| v.to_vec()))
    }

    /// Reads `key` and decodes it in place (no copy of the value).
    fn get_with<T>(
        &self,
        family: &str,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let handle = self.cf(family)?;
        match self.db.get_pinned_cf(handle, key).map_err(rocks_err)? {
            Some(v) => f(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Appends a WAL record for `height` after the last one, synced or not.
    fn wal_append_with(&self, height: u64, entry: &[u8], sync: bool) -> Result<(), StoreError> {
        let _appending = lock(&self.wal_lock);
        let handle = self.cf(cf::CONSENSUS_WAL)?;
        let mut it = self.db.raw_iterator_cf(handle);
        it.seek_for_prev(keys::pair_key(height, u32::MAX));
        let seq = match it.key() {
            Some(k) => match keys::split_pair_key("consensus_wal key", k)? {
                (h, last) if h == height => last.checked_add(1).ok_or_else(|| {
                    StoreError::Inconsistent(format!("write-ahead log of height {height} is full"))
                })?,
                _ => 0,
            },
            None => {
                it.status().map_err(rocks_err)?;
                0
            }
        };
        drop(it);
        let mut batch = WriteBatch::default();
        batch.put_cf(handle, keys::pair_key(height, seq), entry);
        if sync {
            self.sync_write(batch)
        } else {
            self.db.write(batch).map_err(rocks_err)
        }
    }

    fn sync_write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).map_err(rocks_err)
    }

    /// Sum of the sizes of the SST files of every column family (RocksDB's own count,
    /// without write-ahead log and manifest).
    pub fn sst_size_bytes(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for name in cf::ALL {
            let handle = self.cf(name)?;
            total += self
                .db
                .property_int_value_cf(handle, rocksdb::properties::TOTAL_SST_FILES_SIZE)
                .map_err(rocks_err)?
                .unwrap_or(0);
        }
        Ok(total)
    }

    /// [`Store::scan_bills`] over `snapshot`.
    fn scan_run(
        &self,
        snapshot: &rocksdb::SnapshotWithThreadMode<'_, Db>,
        keys: BillKeys<'_>,
        visit: &mut BillVisitor<'_>,
    ) -> Result<(), StoreError> {
        let bills = snapshot.iterator_cf(
            self.cf(cf::BILLS)?,
            IteratorMode::From(keys.from, Direction::Forward),
        );
        let mut facts = snapshot.iterator_cf(
            self.index_cf(Index::Facts)?,
            IteratorMode::From(keys.from, Direction::Forward),
        );
        for item in bills {
            let (k, v) = item.map_err(rocks_err)?;
            if !keys.holds(&k) {
                break;
            }
            let what = || format!("bills/{}", String::from_utf8_lossy(&k));
            let rec = keys::decode::<BillRecord>(what, &v)?;
            let (fk, fv) = match facts.next() {
                Some(f) => f.map_err(rocks_err)?,
                None => (Box::default(), Box::default()),
            };
            if fk != k {
                return Err(StoreError::Corrupt {
                    what: format!("idx_bill_facts/{}", rec.id),
                    reason: "the facts do not line up with the bills: reindex".to_owned(),
                });
            }
            let f = index::decode_facts(&fk, &fv)?;
            if !visit(&rec, &f)? {
                break;
            }
        }
        Ok(())
    }
}

impl StateView for RocksStore {
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

/// Benchmarks only (feature `bench`): the state tree alone, outside any block.
impl RocksStore {
    /// Whether commits write the audit index entries: always, except in a benchmark
    /// that switched them off to time them.
    fn writes_indexes(&self) -> bool {
        #[cfg(feature = "bench")]
        {
            !self
                .bench_skip_indexes
                .load(std::sync::atomic::Ordering::Relaxed)
        }
        #[cfg(not(feature = "bench"))]
        {
            true
        }
    }
}

#[cfg(feature = "bench")]
impl RocksStore {
    /// Makes later commits write no audit index entries (`false`), or write them again:
    /// for benchmarks that time what the indexes cost a commit. A store committed to
    /// without them answers the audit API wrongly until `reindex`.
    pub fn bench_write_indexes(&self, on: bool) {
        self.bench_skip_indexes
            .store(!on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits until RocksDB has no flush or compaction running or pending: for benchmarks
    /// that time reads of a store just filled, so that they measure a store at rest and
    /// not the compactions the fill left behind.
    pub fn bench_settle(&self) -> Result<(), StoreError> {
        let mut opts = rocksdb::WaitForCompactOptions::default();
        opts.set_flush(true);
        self.db.wait_for_compact(&opts).map_err(rocks_err)
    }

    /// Applies `updates` (sorted by key, each once) to the state tree and writes the
    /// nodes in one unsynced batch, outside any block; returns the new root. The tree no
    /// longer matches the blocks afterwards, so this is for a scratch store that holds
    /// nothing else (the benchmark's `state` section).
    pub fn bench_apply_tree(
        &self,
        updates: &[ebill_types::state_tree::LeafUpdate],
    ) -> Result<Hash32, StoreError> {
        let change = self.tree_change(updates)?;
        let mut batch = WriteBatch::default();
        self.put_tree(&mut batch, &change)?;
        self.write_with_tree(batch, &change, false)?;
        Ok(change.root)
    }

    /// The state proof of a key hash (a `state` benchmark's keys are hashes of no
    /// [`StateKey`]).
    pub fn bench_prove_tree(&self, key: &Hash32) -> Result<StateProof, StoreError> {
        Ok(read_tree(&self.tree).prove(self, key)?)
    }
}

/// A RocksDB error reading the leaves of `bucket` (or of the buckets from it): damage
/// (RocksDB's corruption, among it a merge operand the store's merge operator refused)
/// is reported as an unreadable record, anything else as a storage error.
fn tree_read_err(bucket: u32, e: rocksdb::Error) -> TreeError {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => unreadable_leaves(bucket, e.into_string()),
        _ => TreeError::Storage(e.into_string()),
    }
}

/// The leaves record of `bucket` is damaged, for `reason`.
fn unreadable_leaves(bucket: u32, reason: String) -> TreeError {
    TreeError::Unreadable {
        what: format!("state_tree/leaves {bucket:06x}"),
        reason,
    }
}

/// Leaves by position. At the buckets' depth, one batched point lookup of the buckets'
/// records (sorted keys, so RocksDB visits each table's blocks in order); above it, one
/// scan over the records of the buckets under each position.
impl LeafSource for RocksStore {
    fn leaves_under(
        &self,
        depth: usize,
        positions: &[u32],
    ) -> Result<Vec<Vec<LeafUpdate>>, TreeError> {
        let cut = self.tree_cut;
        if depth > cut {
            return Err(TreeError::Storage(format!(
                "leaves asked for at depth {depth}, below the buckets at {cut}"
            )));
        }
        let handle = self.cf(cf::STATE_TREE)?;
        let malformed = |bucket: u32| unreadable_leaves(bucket, "malformed record".to_owned());
        if depth == cut {
            let record_keys: Vec<[u8; 4]> = positions
                .iter()
                .map(|&b| keys::tree_leaves_key(b))
                .collect();
            let found = self.db.batched_multi_get_cf(handle, &record_keys, true);
            if found.len() != positions.len() {
                return Err(TreeError::Storage(format!(
                    "asked RocksDB for {} buckets, got {}",
                    positions.len(),
                    found.len()
                )));
            }
            return positions
                .iter()
                .zip(found)
                .map(
                    |(&bucket, value)| match value.map_err(|e| tree_read_err(bucket, e))? {
                        Some(v) => keys::decode_tree_leaves(cut, bucket, &v)
                            .ok_or_else(|| malformed(bucket)),
                        None => Ok(Vec::new()),
                    },
                )
                .collect();
        }
        let span = cut - depth;
        let mut it = self.db.raw_iterator_cf(handle);
        let mut out = Vec::with_capacity(positions.len());
        for &p in positions {
            let first = p << span;
            let end = (u64::from(p) + 1) << span;
            let mut leaves = Vec::new();
            it.seek(keys::tree_leaves_key(first));
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if k.first() != Some(&keys::TREE_LEAVES) {
                    break;
                }
                let bucket =
                    keys::decode_tree_leaves_key(k).ok_or_else(|| TreeError::Unreadable {
                        what: format!("state_tree/leaves {k:02x?}"),
                        reason: "malformed key".to_owned(),
                    })?;
                if u64::from(bucket) >= end {
                    break;
                }
                leaves.extend(
                    keys::decode_tree_leaves(cut, bucket, v).ok_or_else(|| malformed(bucket))?,
                );
                it.next();
            }
            it.status().map_err(|e| tree_read_err(first, e))?;
            out.push(leaves);
        }
        Ok(out)
    }
}

impl Store for RocksStore {
    fn init_genesis(&self, genesis: &Genesis) -> Result<(), StoreError> {
        let given = genesis.hash();
        let _commit = lock(&self.tip);
        if let Some(stored) = self.genesis_hash()? {
            return if stored == given {
                Ok(())
            } else {
                Err(StoreError::GenesisMismatch { stored, given })
            };
        }
        let changes = ebill_ledger::genesis_changes(genesis);
        let change = tree_change_of(&changes, |u| self.tree_change(u))?;
        let units = self.cf(cf::UNITS)?;
        let meta = self.cf(cf::META)?;
        let mut batch = WriteBatch::default();
        for (code, rec) in &changes.units {
            batch.put_cf(units, code.as_bytes(), rec.to_canonical_bytes());
        }
        self.put_governance(&mut batch, &changes)?;
        self.put_tree(&mut batch, &change)?;
        batch.put_cf(meta, keys::META_FORMAT, FORMAT_VERSION.to_be_bytes());
        batch.put_cf(meta, keys::META_GENESIS, given.0);
        let cut = read_tree(&self.tree).cut();
        batch.put_cf(meta, keys::META_TREE_CUT, (cut as u32).to_be_bytes());
        self.write_with_tree(batch, &change, true)
    }

    fn genesis_hash(&self) -> Result<Option<Hash32>, StoreError> {
        self.get_with(cf::META, keys::META_GENESIS, |v| {
            keys::decode_hash("meta/genesis_hash", v)
        })
    }

    fn tip(&self) -> Result<Option<Tip>, StoreError> {
        Ok(*lock(&self.tip))
    }

    fn commit_block(
        &self,
        block: &Block,
        cert: &CommitCertificate,
        changes: &ChangeSet,
    ) -> Result<(), StoreError> {
        let header_bytes = block.header.to_canonical_bytes();
        let hash = Hash32::digest(&header_bytes);
        let mut tip = lock(&self.tip);
        let change = tree_change_of(changes, |u| self.tree_change(u))?;
        check_commit(
            self.genesis_hash()?,
            *tip,
            block,
            hash,
            cert,
            changes,
            change.root,
        )?;
        let height = block.header.height;

        let blocks = self.cf(cf::BLOCKS)?;
        let block_txs = self.cf(cf::BLOCK_TXS)?;
        let certificates = self.cf(cf::CERTIFICATES)?;
        let block_index = self.cf(cf::BLOCK_INDEX)?;
        let tx_index = self.cf(cf::TX_INDEX)?;
        let bills = self.cf(cf::BILLS)?;
        let units = self.cf(cf::UNITS)?;
        let meta = self.cf(cf::META)?;

        // About 250 bytes per transaction and 120 per bill record, plus keys.
        let mut batch = WriteBatch::with_capacity_bytes(
            header_bytes.len() + block.txs.len() * 400 + changes.bills.len() * 160 + 4096,
        );
        batch.put_cf(blocks, keys::height_key(height), &header_bytes);
        for (i, (tx, id)) in block.txs.iter().zip(&changes.txs).enumerate() {
            let index = TxLocation::in_block(height, i).index;
            batch.put_cf(
                block_txs,
                keys::pair_key(height, index),
                tx.to_canonical_bytes(),
            );
            batch.put_cf(
                tx_index,
                id.0,
                keys::location_value(TxLocation { height, index }),
            );
        }
        batch.put_cf(
            certificates,
            keys::height_key(height),
            cert.to_canonical_bytes(),
        );
        batch.put_cf(block_index, hash.0, keys::height_key(height));
        for (id, rec) in &changes.bills {
            batch.put_cf(bills, id.key(), rec.to_canonical_bytes());
        }
        for (code, rec) in &changes.units {
            batch.put_cf(units, code.as_bytes(), rec.to_canonical_bytes());
        }
        self.put_governance(&mut batch, changes)?;
        self.put_tree(&mut batch, &change)?;
        if self.writes_indexes() {
            self.put_index(&mut batch, &index::block_ops(block, changes)?)?;
        }
        let new_tip = Tip { height, hash };
        batch.put_cf(meta, keys::META_TIP, keys::tip_value(new_tip));
        self.write_with_tree(batch, &change, true)?;
        *tip = Some(new_tip);
        Ok(())
    }

    fn header(&self, height: u64) -> Result<Option<Header>, StoreError> {
        self.get_with(cf::BLOCKS, &keys::height_key(height), |v| {
            keys::decode(|| format!("blocks/{height}"), v)
        })
    }

    fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let Some(header) = self.header(height)? else {
            return Ok(None);
        };
        let handle = self.cf(cf::BLOCK_TXS)?;
        let start = keys::pair_key(height, 0);
        let mut ro = ReadOptions::default();
        if let Some(next) = height.checked_add(1) {
            ro.set_iterate_upper_bound(keys::pair_key(next, 0).to_vec());
        }
        let iter =
            self.db
                .iterator_cf_opt(handle, ro, IteratorMode::From(&start, Direction::Forward));
        let mut txs = Vec::with_capacity(header.tx_count as usize);
        for item in iter {
            let (k, v) = item.map_err(rocks_err)?;
            let (h, index) = keys::split_pair_key("block_txs key", &k)?;
            let what = || format!("block_txs/{h}/{index}");
            if h != height || index as usize != txs.len() {
                return Err(StoreError::Corrupt {
                    what: what(),
                    reason: format!(
                        "found while reading transaction {} of block {height}",
                        txs.len()
                    ),
                });
            }
            txs.push(keys::decode::<SignedTx>(what, &v)?);
        }
        if txs.len() != header.tx_count as usize {
            return Err(StoreError::Corrupt {
                what: format!("block_txs/{height}"),
                reason: format!(
                    "{} transactions stored, the header counts {}",
                    txs.len(),
                    header.tx_count
                ),
            });
        }
        Ok(Some(Block { header, txs }))
    }

    fn height_of_block(&self, hash: &Hash32) -> Result<Option<u64>, StoreError> {
        self.get_with(cf::BLOCK_INDEX, &hash.0, |v| {
            keys::decode_height(&format!("block_index/{hash}"), v)
        })
    }

    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StoreError> {
        self.get_with(cf::CERTIFICATES, &keys::height_key(height), |v| {
            keys::decode(|| format!("certificates/{height}"), v)
        })
    }

    fn tx(&self, id: &TxId) -> Result<Option<(SignedTx, TxLocation)>, StoreError> {
        let Some(loc) = self.find_tx_location(id)? else {
            return Ok(None);
        };
        let key = keys::pair_key(loc.height, loc.index);
        let what = || format!("block_txs/{}/{}", loc.height, loc.index);
        match self.get_with(cf::BLOCK_TXS, &key, |v| keys::decode::<SignedTx>(what, v))? {
            Some(tx) => Ok(Some((tx, loc))),
            None => Err(StoreError::Corrupt {
                what: format!("tx_index/{id}"),
                reason: format!(
                    "points at height {} index {}, which is not stored",
                    loc.height, loc.index
                ),
            }),
        }
    }

    fn find_bill(&self, id: &BillId) -> Result<Option<BillRecord>, StoreError> {
        self.get_with(cf::BILLS, &id.key(), |v| {
            keys::decode(|| format!("bills/{id}"), v)
        })
    }

    fn find_unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StoreError> {
        self.get_with(cf::UNITS, code.as_bytes(), |v| {
            keys::decode(|| format!("units/{code}"), v)
        })
    }

    fn find_tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        self.get_with(cf::TX_INDEX, &id.0, |v| {
            keys::decode_location(&format!("tx_index/{id}"), v)
        })
    }

    fn find_governance(&self) -> Result<Option<GovState>, StoreError> {
        self.get_with(cf::GOVERNANCE, keys::GOV_STATE, |v| {
            keys::decode(|| "governance/state".to_owned(), v)
        })
    }

    fn find_proposal(&self, id: &ProposalId) -> Result<Option<ProposalRecord>, StoreError> {
        self.get_with(cf::GOVERNANCE, &keys::proposal_key(id), |v| {
            keys::decode(|| format!("governance/proposal/{id}"), v)
        })
    }

    fn proposals(&self) -> Result<Vec<ProposalRecord>, StoreError> {
        let handle = self.cf(cf::GOVERNANCE)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            handle,
            IteratorMode::From(keys::GOV_PROPOSAL, Direction::Forward),
        ) {
            let (k, v) = item.map_err(rocks_err)?;
            if !k.starts_with(keys::GOV_PROPOSAL) {
                break;
            }
            out.push(keys::decode::<ProposalRecord>(
                || {
                    let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
                    format!("governance/{hex}")
                },
                &v,
            )?);
        }
        Ok(out)
    }

    fn units(&self) -> Result<Vec<UnitRecord>, StoreError> {
        let handle = self.cf(cf::UNITS)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(handle, IteratorMode::Start) {
            let (k, v) = item.map_err(rocks_err)?;
            out.push(keys::decode::<UnitRecord>(
                || format!("units/{}", String::from_utf8_lossy(&k)),
                &v,
            )?);
        }
        Ok(out)
    }

    fn wal_append(&self, height: u64, entry: &[u8]) -> Result<(), StoreError> {
        self.wal_append_with(height, entry, true)
    }

    fn wal_append_unsynced(&self, height: u64, entry: &[u8]) -> Result<(), StoreError> {
        self.wal_append_with(height, entry, false)
    }
    fn wal_entries(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let handle = self.cf(cf::CONSENSUS_WAL)?;
        let start = keys::pair_key(height, 0);
        let mut ro = ReadOptions::default();
        if let Some(next) = height.checked_add(1) {
            ro.set_iterate_upper_bound(keys::pair_key(next, 0).to_vec());
        }
        let mut out = Vec::new();
        for item in
            self.db
                .iterator_cf_opt(handle, ro, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item.map_err(rocks_err)?;
            let (h, _) = keys::split_pair_key("consensus_wal key", &k)?;
            if h != height {
                break;
            }
            out.push(v.into_vec());
        }
        Ok(out)
    }

    fn last_cosigned(&self) -> Result<Option<crate::Cosigned>, StoreError> {
        self.get_with(cf::META, keys::META_COSIGNED, |v| {
            let what = "meta/last_cosigned";
            if v.len() != 40 {
                return Err(StoreError::Corrupt {
                    what: what.into(),
                    reason: format!("{} bytes, expected 40", v.len()),
                });
            }
            let mut h = [0u8; 8];
            h.copy_from_slice(&v[..8]);
            Ok(crate::Cosigned {
                height: u64::from_be_bytes(h),
                hash: keys::decode_hash(what, &v[8..])?,
            })
        })
    }

    fn record_cosigned(&self, cosigned: crate::Cosigned) -> Result<(), StoreError> {
        let mut v = Vec::with_capacity(40);
        v.extend_from_slice(&cosigned.height.to_be_bytes());
        v.extend_from_slice(&cosigned.hash.0);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(cf::META)?, keys::META_COSIGNED, v);
        self.sync_write(batch)
    }

    fn wal_prune_below(&self, height: u64) -> Result<(), StoreError> {
        let handle = self.cf(cf::CONSENSUS_WAL)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(handle, keys::pair_key(0, 0), keys::pair_key(height, 0));
        self.db.write(batch).map_err(rocks_err)
    }

    fn index_scan(
        &self,
        index: Index,
        from: &[u8],
        until: Option<&[u8]>,
        visit: &mut EntryVisitor<'_>,
    ) -> Result<(), StoreError> {
        let handle = self.index_cf(index)?;
        let mut ro = ReadOptions::default();
        if let Some(u) = until {
            ro.set_iterate_upper_bound(u.to_vec());
        }
        for item in
            self.db
                .iterator_cf_opt(handle, ro, IteratorMode::From(from, Direction::Forward))
        {
            let (k, v) = item.map_err(rocks_err)?;
            if !visit(&k, &v)? {
                break;
            }
        }
        Ok(())
    }

    fn index_get(&self, index: Index, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(index.cf_name(), key)
    }

    fn scan_bills(
        &self,
        keys: BillKeys<'_>,
        visit: &mut BillVisitor<'_>,
    ) -> Result<(), StoreError> {
        // One snapshot for both iterators: a commit between their creation would
        // otherwise show one of them a bill the other lacks.
        let snapshot = self.db.snapshot();
        self.scan_run(&snapshot, keys, visit)
    }

    fn scan_bill_runs(&self, runs: &mut [BillRun<'_>]) -> Result<(), StoreError> {
        let snapshot = self.db.snapshot();
        let snapshot = &snapshot;
        std::thread::scope(|s| {
            let scans: Vec<_> = runs
                .iter_mut()
                .map(|run| s.spawn(move || self.scan_run(snapshot, run.keys, &mut *run.visit)))
                .collect();
            scans.into_iter().try_for_each(|scan| {
                scan.join()
                    .unwrap_or_else(|_| Err(StoreError::RocksDb("a scan thread panicked".into())))
            })
        })
    }

    fn bill_splits(&self, parts: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        // The table files of the bills' column family, each with its first key and its
        // number of entries (overwritten versions of a record included: an estimate).
        let mut files: Vec<KeyRun> = self
            .db
            .live_files()
            .map_err(rocks_err)?
            .into_iter()
            .filter(|f| f.column_family_name == cf::BILLS)
            .filter_map(|f| {
                f.start_key.map(|first_key| KeyRun {
                    first_key,
                    entries: f.num_entries,
                })
            })
            .collect();
        files.sort();
        Ok(even_splits(&files, parts))
    }

    fn reindex(&self) -> Result<u64, StoreError> {
        let _commits = lock(&self.tip);
        let mut clear = WriteBatch::default();
        for i in Index::ALL {
            clear.delete_range_cf(self.index_cf(i)?, &[][..], &INDEX_KEY_END[..]);
        }
        self.sync_write(clear)?;
        let mut count = 0u64;
        let mut ops = Vec::new();
        let mut pending = 0usize;
        for item in self
            .db
            .iterator_cf(self.cf(cf::BILLS)?, IteratorMode::Start)
        {
            let (k, v) = item.map_err(rocks_err)?;
            let rec = keys::decode::<BillRecord>(
                || format!("bills/{}", String::from_utf8_lossy(&k)),
                &v,
            )?;
            let facts = index::facts_from_issue(&rec, self.tx(&rec.issue_tx())?)?;
            ops.extend(index::bill_entries(&rec, &facts));
            count += 1;
            pending += 1;
            if pending == REINDEX_BATCH_BILLS {
                let mut batch = WriteBatch::default();
                self.put_index(&mut batch, &ops)?;
                self.db.write(batch).map_err(rocks_err)?;
                ops.clear();
                pending = 0;
            }
        }
        let mut batch = WriteBatch::default();
        self.put_index(&mut batch, &ops)?;
        self.sync_write(batch)?;
        Ok(count)
    }

    fn refused_append(&self, refused: &RefusedTx) -> Result<(), StoreError> {
        let mut next = lock(&self.refused_next);
        let handle = self.cf(cf::REFUSED_LOG)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            handle,
            keys::height_key(*next),
            refused.to_canonical_bytes(),
        );
        if let Some(old) = next.checked_sub(index::MAX_REFUSED_LOG) {
            batch.delete_cf(handle, keys::height_key(old));
        }
        self.db.write(batch).map_err(rocks_err)?;
        *next += 1;
        Ok(())
    }

    fn refused_log(
        &self,
        visit: &mut dyn FnMut(&RefusedTx) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for item in self
            .db
            .iterator_cf(self.cf(cf::REFUSED_LOG)?, IteratorMode::Start)
        {
            let (k, v) = item.map_err(rocks_err)?;
            let r = keys::decode::<RefusedTx>(
                || format!("refused_log/{}", String::from_utf8_lossy(&k)),
                &v,
            )?;
            if !visit(&r)? {
                break;
            }
        }
        Ok(())
    }

    fn disk_size_bytes(&self) -> Result<u64, StoreError> {
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| StoreError::Io(format!("reading {}: {e}", self.path.display())))?;
        let mut total = 0u64;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::Io(e.to_string()))?;
            let meta = entry
                .metadata()
                .map_err(|e| StoreError::Io(e.to_string()))?;
            if meta.is_file() {
                total += meta.len();
            }
        }
        Ok(total)
    }

    fn state_root(&self) -> Result<Hash32, StoreError> {
        Ok(read_tree(&self.tree).root())
    }

    fn prove_state(&self, key: &StateKey) -> Result<StateProof, StoreError> {
        Ok(read_tree(&self.tree).prove(self, &key.hash())?)
    }

    fn tree_change(&self, updates: &[LeafUpdate]) -> Result<TreeChange, StoreError> {
        Ok(read_tree(&self.tree).change(self, updates)?)
    }

    fn compact(&self) -> Result<(), StoreError> {
        for name in cf::ALL {
            let handle = self.cf(name)?;
            self.db.flush_cf(handle).map_err(rocks_err)?;
            let mut opts = rocksdb::CompactOptions::default();
            opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
            opts.set_exclusive_manual_compaction(true);
            self.db
                .compact_range_cf_opt(handle, None::<&[u8]>, None::<&[u8]>, &opts);
        }
        Ok(())
    }
}
