//! What makes a block valid on top of a tip, in one place (docs/design.md §4.3): the engine
//! checks proposals, synced blocks and an observer's blocks with [`check_block`], and
//! builds its own with [`build_block`], which meets the same rules by construction.

use std::sync::{Arc, Mutex};

use ebill_ledger::{
    BlockError, ChangeSet, Context, Prepared, StateError, TxError, VerifiedSignatures,
    apply_block_prepared, select_prepared,
};
use ebill_store::Store;
use ebill_types::{Block, Genesis, Hash32, Header, SignedTx, TxId, ValidatorSet};
use thiserror::Error;

use crate::mempool::{Candidates, Mempool, lock};
use crate::verify::{Split, preverify_split};

/// The last final block, which the next one must extend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTip {
    /// Its height (0: only the genesis).
    pub height: u64,
    /// Its hash (the genesis hash at height 0).
    pub hash: Hash32,
    /// Its time in Unix milliseconds (0 at height 0).
    pub time_ms: u64,
}

/// Why a block is not a valid next block. The block's fault, never this node's: a
/// local failure (the store cannot be read) is a [`StateError`] instead.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InvalidBlock {
    /// It belongs to another chain.
    #[error("chain id {found:?}")]
    ChainId {
        /// The chain id it carries.
        found: String,
    },
    /// It is not at the next height.
    #[error("height {found} on a tip of {tip}")]
    Height {
        /// Its height.
        found: u64,
        /// The tip's height.
        tip: u64,
    },
    /// It does not extend the tip.
    #[error("previous hash {found} is not the tip {tip}")]
    PrevHash {
        /// The previous hash it carries.
        found: Hash32,
        /// The tip's hash.
        tip: Hash32,
    },
    /// It names another validator set.
    #[error("validator set hash {found} is not {expected}")]
    ValidatorSet {
        /// The hash it carries.
        found: Hash32,
        /// The genesis validator set's hash.
        expected: Hash32,
    },
    /// Its proposer is not a validator.
    #[error("proposer {0} is not a validator")]
    Proposer(u32),
    /// Its time does not move forward.
    #[error("time {found_ms} is not after the previous block's {tip_ms}")]
    TimeNotAfterTip {
        /// Its time.
        found_ms: u64,
        /// The tip's time.
        tip_ms: u64,
    },
    /// Its time is ahead of this node's clock by more than the allowed drift.
    #[error("time {found_ms} is ahead of this node's clock (latest allowed {latest_ms})")]
    TimeAhead {
        /// Its time.
        found_ms: u64,
        /// The latest time accepted.
        latest_ms: u64,
    },
    /// Its state root is not the state tree's root after its execution.
    #[error("state root {found} is not {expected}")]
    StateRoot {
        /// The root it carries.
        found: Hash32,
        /// The root it must carry.
        expected: Hash32,
    },
    /// Its body is not the one its header commits to (count or transaction root).
    #[error("body: {0}")]
    Body(String),
    /// Its transactions are over the genesis limit in bytes.
    #[error("{found} bytes of transactions, limit {limit}")]
    TooManyBytes {
        /// Bytes of its transactions.
        found: usize,
        /// The genesis limit.
        limit: u64,
    },
    /// A transaction does not apply, or the block is over another genesis limit.
    #[error("{0}")]
    Execution(BlockError),
}

/// What a block is checked against.
#[derive(Clone, Copy, Debug)]
pub struct BlockRules<'a> {
    /// The chain.
    pub genesis: &'a Genesis,
    /// Its validator set.
    pub validators: &'a ValidatorSet,
    /// The tip the block must extend.
    pub tip: ChainTip,
    /// For a proposal, the latest block time accepted (this node's clock plus the
    /// allowed drift); `None` for a block certified by a quorum, whose time was checked
    /// by the validators that signed it.
    pub latest_time_ms: Option<u64>,
    /// Cores signature checks may use.
    pub cores: usize,
}

/// The state tree's update for `changes` on the tip, kept in the changes for the
/// commit (so the tree is computed once per block).
fn with_tree_update(store: &dyn Store, mut changes: ChangeSet) -> Result<ChangeSet, StateError> {
    let update = ebill_store::state_update(store, &changes)?;
    changes.tree = Some(update);
    Ok(changes)
}

/// The root a change set carries after [`with_tree_update`].
fn root_of(changes: &ChangeSet) -> Hash32 {
    changes.tree.as_ref().map_or(Hash32::ZERO, |t| t.root)
}

/// The valid signatures of `prepared` (a block's transactions): those of transactions
/// that wait in `mempool` were verified at admission; the others are checked here,
/// spread over threads as `split` says, against the keys `store` holds, unless
/// `checked_ahead` holds them already (see [`check_block`]).
pub fn block_signatures(
    store: &dyn Store,
    genesis: &Genesis,
    mempool: &Mutex<Mempool>,
    prepared: &[Prepared<'_>],
    split: Split,
    checked_ahead: Option<VerifiedSignatures>,
) -> Result<VerifiedSignatures, StateError> {
    let ids: Vec<TxId> = prepared.iter().map(|p| p.id).collect();
    let known = lock(mempool).verified_for(&ids);
    let mut verified = known.verified;
    match checked_ahead {
        Some(ahead) => verified.extend(ahead),
        None if !known.unseen.is_empty() => {
            let rest: Vec<&Prepared<'_>> = known.unseen.iter().map(|&i| &prepared[i]).collect();
            verified.extend(preverify_split(store, genesis, &rest, split)?);
        }
        None => {}
    }
    Ok(verified)
}

/// Every rule a block must meet on top of `rules.tip`: the changes it makes if it does.
/// The outer error is a local failure; the inner one the block's fault. Signatures that
/// wait in `mempool` were verified at admission and are not verified again; nor are
/// those in `checked_ahead`, the [`block_signatures`] of this block computed while the
/// block before it was being committed. Either is only a set of signatures known to be
/// valid for a given key: execution checks every signature against the key in force
/// and verifies itself any that the set lacks (a key the block before changed), so a
/// set computed on an older state is never wrong, only less complete.
pub fn check_block(
    rules: &BlockRules<'_>,
    store: &dyn Store,
    mempool: &Mutex<Mempool>,
    block: &Block,
    checked_ahead: Option<VerifiedSignatures>,
) -> Result<Result<ChangeSet, InvalidBlock>, StateError> {
    let h = &block.header;
    let genesis = rules.genesis;
    let tip = rules.tip;
    if h.chain_id != genesis.chain_id {
        return Ok(Err(InvalidBlock::ChainId {
            found: h.chain_id.clone(),
        }));
    }
    if Some(h.height) != tip.height.checked_add(1) {
        return Ok(Err(InvalidBlock::Height {
            found: h.height,
            tip: tip.height,
        }));
    }
    if h.prev_hash != tip.hash {
        return Ok(Err(InvalidBlock::PrevHash {
            found: h.prev_hash,
            tip: tip.hash,
        }));
    }
    let set_hash = rules.validators.hash();
    if h.validator_set_hash != set_hash {
        return Ok(Err(InvalidBlock::ValidatorSet {
            found: h.validator_set_hash,
            expected: set_hash,
        }));
    }
    if rules.validators.get(h.proposer).is_none() {
        return Ok(Err(InvalidBlock::Proposer(h.proposer)));
    }
    if h.time_ms <= tip.time_ms {
        return Ok(Err(InvalidBlock::TimeNotAfterTip {
            found_ms: h.time_ms,
            tip_ms: tip.time_ms,
        }));
    }
    if let Some(latest_ms) = rules.latest_time_ms
        && h.time_ms > latest_ms
    {
        return Ok(Err(InvalidBlock::TimeAhead {
            found_ms: h.time_ms,
            latest_ms,
        }));
    }
    // Each transaction is encoded and hashed once for every check below.
    let prepared = Prepared::all(&block.txs, genesis.chain_id.as_str());
    let leaves: Vec<Hash32> = prepared.iter().map(Prepared::leaf_hash).collect();
    if let Err(e) = block.check_body_leaves(&leaves) {
        return Ok(Err(InvalidBlock::Body(e.to_string())));
    }
    let bytes: usize = prepared.iter().map(|p| p.encoded.len()).sum();
    let limit = u64::from(genesis.params.max_block_bytes);
    if u64::try_from(bytes).map_or(true, |b| b > limit) {
        return Ok(Err(InvalidBlock::TooManyBytes {
            found: bytes,
            limit,
        }));
    }
    let verified = block_signatures(
        store,
        genesis,
        mempool,
        &prepared,
        Split::on_demand(rules.cores),
        checked_ahead,
    )?;
    let ctx = Context {
        genesis,
        height: h.height,
        time_ms: h.time_ms,
    };
    let changes = match apply_block_prepared(store, ctx, &prepared, Some(&verified)) {
        Ok(changes) => changes,
        Err(BlockError::State(e)) => return Err(e),
        Err(e) => return Ok(Err(InvalidBlock::Execution(e))),
    };
    let changes = with_tree_update(store, changes)?;
    let expected = root_of(&changes);
    if h.state_root != expected {
        return Ok(Err(InvalidBlock::StateRoot {
            found: h.state_root,
            expected,
        }));
    }
    Ok(Ok(changes))
}

/// A block built by this validator, with the changes it makes and the waiting
/// transactions that no longer apply (dropped from the mempool).
#[derive(Debug)]
pub struct Built {
    /// The block.
    pub block: Arc<Block>,
    /// Its changes.
    pub changes: ChangeSet,
    /// Waiting transactions refused on this tip, with why.
    pub dropped: Vec<DroppedTx>,
}

/// A waiting transaction that no longer applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedTx {
    /// Its id.
    pub id: TxId,
    /// Why it no longer applies.
    pub error: TxError,
}

/// Builds the next block on `rules.tip` at `time_ms` (after the tip's time) from the
/// oldest waiting transactions, within the genesis limits; removes from the mempool
/// those that no longer apply.
pub fn build_block(
    rules: &BlockRules<'_>,
    store: &dyn Store,
    mempool: &Mutex<Mempool>,
    proposer: u32,
    time_ms: u64,
) -> Result<Built, StateError> {
    let genesis = rules.genesis;
    let params = &genesis.params;
    let max_txs = usize::try_from(params.max_block_txs).unwrap_or(usize::MAX);
    let max_bytes = usize::try_from(params.max_block_bytes).unwrap_or(usize::MAX);
    let Candidates {
        txs: candidates,
        verified,
    } = lock(mempool).candidates(max_txs, max_bytes);
    let txs: Vec<SignedTx> = candidates.iter().map(|c| (*c.tx).clone()).collect();
    let prepared = Prepared::all(&txs, genesis.chain_id.as_str());
    assert!(
        rules.tip.height < u64::MAX,
        "invariant: a tip at the last height"
    );
    let height = rules.tip.height + 1;
    assert!(
        time_ms > rules.tip.time_ms,
        "a block's time {time_ms} must be after its tip's {}",
        rules.tip.time_ms
    );
    let ctx = Context {
        genesis,
        height,
        time_ms,
    };
    let mut selection = select_prepared(store, ctx, &prepared, Some(&verified))?;
    selection.changes = with_tree_update(store, std::mem::take(&mut selection.changes))?;
    let dropped: Vec<DroppedTx> = selection
        .rejected
        .iter()
        .map(|(i, error)| DroppedTx {
            id: candidates[*i].id,
            error: error.clone(),
        })
        .collect();
    lock(mempool).remove(&dropped.iter().map(|d| d.id).collect::<Vec<_>>());
    let tx_root = ebill_types::merkle::root_from_leaf_hashes(
        &selection
            .accepted
            .iter()
            .map(|&i| prepared[i].leaf_hash())
            .collect::<Vec<_>>(),
    );
    drop(prepared);
    let mut slots: Vec<Option<SignedTx>> = txs.into_iter().map(Some).collect();
    let block_txs: Vec<SignedTx> = selection
        .accepted
        .iter()
        .filter_map(|&i| slots[i].take())
        .collect();
    assert_eq!(
        block_txs.len(),
        selection.accepted.len(),
        "every accepted candidate is taken once"
    );
    let tx_count = u32::try_from(block_txs.len())
        .map_err(|_| StateError(format!("{} transactions in one block", block_txs.len())))?;
    let header = Header {
        chain_id: genesis.chain_id.clone(),
        height,
        prev_hash: rules.tip.hash,
        time_ms,
        proposer,
        tx_root,
        tx_count,
        validator_set_hash: rules.validators.hash(),
        state_root: root_of(&selection.changes),
    };
    Ok(Built {
        block: Arc::new(Block {
            header,
            txs: block_txs,
        }),
        changes: selection.changes,
        dropped,
    })
}
