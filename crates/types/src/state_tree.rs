//! The state tree: an authenticated map of the whole ledger state, whose root every
//! block header carries (`Header::state_root`, the root **after** the block). ADR 0009
//! says why this design.
//!
//! A binary sparse Merkle tree over 256-bit keys, in the manner of the Jellyfish Merkle
//! Tree without its 16-ary nodes: a key is the SHA-256 of a [`StateKey`] under a domain
//! tag, its bits (most significant first) the path from the root; a subtree holding
//! one leaf is that leaf, placed at the shallowest depth where its path is its own; an
//! empty subtree hashes to [`EMPTY`] (all zeros, which no SHA-256 output is).
//!
//! - leaf hash: SHA-256(0x10 ‖ key hash ‖ value hash)
//! - node hash: SHA-256(0x11 ‖ left ‖ right)
//! - key hash: SHA-256(canonical(`"ebill/state-key/v1"`) ‖ namespace byte ‖ key bytes)
//! - value hash: SHA-256(canonical(`"ebill/state-value/v1"`) ‖ namespace byte ‖ value
//!   bytes)
//!
//! The prefixes 0x10/0x11 differ from the transaction tree's 0x00/0x01 (RFC 6962,
//! [`crate::merkle`]), so no node of one tree is a node of the other.
//!
//! Keys are only inserted or updated, never deleted (a bill, a unit, a proposal and the
//! governance record stay in the state for good), so a position in the tree, once used, stays used.
//! A [`StateProof`] proves a key's value (membership) or that no value exists for it
//! (absence) against a root.
//!
//! [`apply`] and [`prove`] work on the tree's binary nodes ([`NodeReader`]): they are the
//! reference form of the tree, against which the golden vectors and the property tests
//! hold the form stores keep, [`crate::state_store`] (the top in memory, the leaves on
//! disk, no interior nodes stored).

use std::ops::Range;

use thiserror::Error;

use crate::bill::BillId;
use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::credit_code::CreditCode;
use crate::hash::Hash32;
use crate::status::BillStatus;
use crate::tx::{TxId, TxKind};

/// The hash of an empty subtree (and the root of an empty tree).
pub const EMPTY: Hash32 = Hash32::ZERO;
/// Prefix byte of a leaf's hash.
pub const LEAF_PREFIX: u8 = 0x10;
/// Prefix byte of an interior node's hash.
pub const NODE_PREFIX: u8 = 0x11;
/// Domain tag of key hashes.
pub const KEY_DOMAIN: &str = "ebill/state-key/v1";
/// Domain tag of value hashes.
pub const VALUE_DOMAIN: &str = "ebill/state-value/v1";
/// Domain tag of a bill's history digest.
pub const HISTORY_DOMAIN: &str = "ebill/bill-history/v1";
/// Bits of a key: the deepest a leaf can sit.
pub const KEY_BITS: usize = 256;

/// What the state maps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StateKey {
    /// A bill -> its [`BillState`].
    Bill(BillId),
    /// A unit -> its registry record.
    Unit(CreditCode),
    /// The governance record: the governance sequence number, the regulator set in
    /// force and its threshold.
    Regulators,
    /// A governance proposal -> its record (action, votes, status).
    Proposal(Hash32),
}

impl StateKey {
    /// The namespace byte that separates the kinds of key and value.
    pub fn namespace(&self) -> u8 {
        match self {
            StateKey::Bill(_) => 1,
            StateKey::Unit(_) => 2,
            StateKey::Regulators => 3,
            StateKey::Proposal(_) => 4,
        }
    }

    /// The key's 256-bit path in the tree.
    pub fn hash(&self) -> Hash32 {
        let mut enc = Encoder::with_domain(KEY_DOMAIN);
        enc.u8(self.namespace());
        match self {
            StateKey::Bill(id) => id.encode_to(&mut enc),
            StateKey::Unit(code) => code.encode_to(&mut enc),
            StateKey::Regulators => {}
            StateKey::Proposal(id) => id.encode_to(&mut enc),
        }
        Hash32::digest(&enc.finish())
    }

    /// The hash of `value`, the canonical bytes of this key's value.
    pub fn value_hash(&self, value: &[u8]) -> Hash32 {
        let mut enc = Encoder::with_domain(VALUE_DOMAIN);
        enc.u8(self.namespace());
        let mut bytes = enc.finish();
        bytes.extend_from_slice(value);
        Hash32::digest(&bytes)
    }
}

/// SHA-256(0x10 ‖ key ‖ value).
pub fn leaf_hash(key: &Hash32, value: &Hash32) -> Hash32 {
    Hash32::digest_parts(&[&[LEAF_PREFIX], &key.0, &value.0])
}

/// SHA-256(0x11 ‖ left ‖ right).
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    Hash32::digest_parts(&[&[NODE_PREFIX], &left.0, &right.0])
}

/// Bit `depth` of `key`, most significant first: `false` goes left.
pub fn bit(key: &Hash32, depth: usize) -> bool {
    assert!(depth < KEY_BITS, "bit {depth} of a 256-bit key");
    key.0[depth / 8] & (0x80 >> (depth % 8)) != 0
}

/// Whether `a` and `b` agree on their first `bits` bits.
fn same_prefix(a: &Hash32, b: &Hash32, bits: usize) -> bool {
    (0..bits).all(|d| bit(a, d) == bit(b, d))
}

// ----- a bill's state -----

/// A bill's record in the state tree: its status now and a digest of its whole history,
/// so that a proof of this record proves every transaction of the bill up to the root's
/// height, and that there is no other.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BillState {
    /// The status now (with the holder of a lock, the reimbursing unit...).
    pub status: BillStatus,
    /// How many transactions the bill has had, its issue included.
    pub history_len: u32,
    /// The IssueBill transaction.
    pub issue_tx: TxId,
    /// The last transaction of the bill.
    pub last_tx: TxId,
    /// The height of the last transaction.
    pub last_height: u64,
    /// [`history_step`] folded over every transaction of the bill, in order, from
    /// [`Hash32::ZERO`]: the hash chain to every earlier record.
    pub history_digest: Hash32,
}

/// One step of a bill's history, as the history digest chains it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HistoryStep {
    /// What was done.
    pub action: TxKind,
    /// By which unit.
    pub by: CreditCode,
    /// Height of the block.
    pub height: u64,
    /// Time of the block, Unix ms.
    pub time_ms: u64,
    /// The transaction.
    pub tx_id: TxId,
}

/// The history digest after `step`: SHA-256(canonical(`"ebill/bill-history/v1"`) ‖
/// previous digest ‖ action tag ‖ unit ‖ height ‖ time ‖ tx id).
pub fn history_step(previous: &Hash32, step: &HistoryStep) -> Hash32 {
    let mut enc = Encoder::with_domain(HISTORY_DOMAIN);
    previous.encode_to(&mut enc);
    enc.u8(step.action.tag());
    step.by.encode_to(&mut enc);
    enc.u64(step.height).u64(step.time_ms);
    step.tx_id.encode_to(&mut enc);
    Hash32::digest(&enc.finish())
}

/// A bill's history digest: [`history_step`] folded over its steps in order, from
/// [`Hash32::ZERO`]. The ledger's leaf and the proof verifier's replay both use it.
pub fn history_digest(steps: impl IntoIterator<Item = HistoryStep>) -> Hash32 {
    steps
        .into_iter()
        .fold(Hash32::ZERO, |d, step| history_step(&d, &step))
}

impl Canonical for BillState {
    fn encode_to(&self, enc: &mut Encoder) {
        self.status.encode_to(enc);
        enc.u32(self.history_len);
        self.issue_tx.encode_to(enc);
        self.last_tx.encode_to(enc);
        enc.u64(self.last_height);
        self.history_digest.encode_to(enc);
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: BillStatus::decode_from(dec)?,
            history_len: dec.u32("history length")?,
            issue_tx: Hash32::decode_from(dec)?,
            last_tx: Hash32::decode_from(dec)?,
            last_height: dec.u64("last height")?,
            history_digest: Hash32::decode_from(dec)?,
        })
    }
}

// ----- nodes and their storage -----

/// Where a node sits: its depth and the first `depth` bits of its path (the rest zero).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeKey {
    /// Depth from the root (0).
    pub depth: u16,
    /// The path's first `depth` bits, the rest zero.
    pub path: Hash32,
}

impl NodeKey {
    /// The root's position.
    pub const ROOT: NodeKey = NodeKey {
        depth: 0,
        path: Hash32::ZERO,
    };

    /// The child on side `right`.
    pub fn child(&self, right: bool) -> NodeKey {
        let d = usize::from(self.depth);
        assert!(d < KEY_BITS, "a node at depth {d} has no children");
        let mut path = self.path;
        if right {
            path.0[d / 8] |= 0x80 >> (d % 8);
        }
        NodeKey {
            depth: self.depth + 1,
            path,
        }
    }

    /// Storage key: depth (2 bytes, big-endian) then the path's first ⌈depth/8⌉ bytes.
    /// Distinct positions have distinct keys.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = usize::from(self.depth).div_ceil(8);
        let mut out = Vec::with_capacity(2 + n);
        out.extend_from_slice(&self.depth.to_be_bytes());
        out.extend_from_slice(&self.path.0[..n]);
        out
    }

    /// Reads [`NodeKey::to_bytes`], refusing any other form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let bad = |reason: &'static str| DecodeError::Invalid {
            what: "state tree node key",
            reason: reason.into(),
        };
        let (d, rest) = bytes.split_at_checked(2).ok_or_else(|| bad("too short"))?;
        let depth = u16::from_be_bytes([d[0], d[1]]);
        if usize::from(depth) > KEY_BITS {
            return Err(bad("deeper than 256"));
        }
        let n = usize::from(depth).div_ceil(8);
        if rest.len() != n {
            return Err(bad("path length does not match the depth"));
        }
        let mut path = Hash32::ZERO;
        path.0[..n].copy_from_slice(rest);
        let key = NodeKey { depth, path };
        if key.masked() != key {
            return Err(bad("bits beyond the depth are set"));
        }
        Ok(key)
    }

    fn masked(&self) -> NodeKey {
        let d = usize::from(self.depth);
        let mut path = self.path;
        for (i, b) in path.0.iter_mut().enumerate() {
            let keep = d.saturating_sub(i * 8).min(8);
            *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        }
        NodeKey {
            depth: self.depth,
            path,
        }
    }
}

/// A node of the tree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TreeNode {
    /// A key and its value's hash.
    Leaf {
        /// The key's hash (its path).
        key: Hash32,
        /// The value's hash.
        value: Hash32,
    },
    /// Two subtrees (at least two leaves below, so at most one side is [`EMPTY`]).
    Internal {
        /// The left subtree's hash.
        left: Hash32,
        /// The right subtree's hash.
        right: Hash32,
    },
}

impl TreeNode {
    /// Its hash.
    pub fn hash(&self) -> Hash32 {
        match self {
            TreeNode::Leaf { key, value } => leaf_hash(key, value),
            TreeNode::Internal { left, right } => node_hash(left, right),
        }
    }
}

impl Canonical for TreeNode {
    fn encode_to(&self, enc: &mut Encoder) {
        match self {
            TreeNode::Leaf { key, value } => {
                enc.u8(1);
                key.encode_to(enc);
                value.encode_to(enc);
            }
            TreeNode::Internal { left, right } => {
                enc.u8(2);
                left.encode_to(enc);
                right.encode_to(enc);
            }
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match dec.u8("state tree node")? {
            1 => Ok(TreeNode::Leaf {
                key: Hash32::decode_from(dec)?,
                value: Hash32::decode_from(dec)?,
            }),
            2 => Ok(TreeNode::Internal {
                left: Hash32::decode_from(dec)?,
                right: Hash32::decode_from(dec)?,
            }),
            v => Err(DecodeError::InvalidTag {
                what: "state tree node",
                value: u64::from(v),
            }),
        }
    }
}

/// Why the tree could not be read or updated.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TreeError {
    /// The node store failed.
    #[error("state tree storage: {0}")]
    Storage(String),
    /// A stored node does not decode.
    #[error("corrupt {what}: {reason}")]
    Unreadable {
        /// The record.
        what: String,
        /// Why.
        reason: String,
    },
    /// A node the tree names is missing or does not hash to what its parent says, or
    /// stored leaves disagree with the top that counts them.
    #[error("state tree node at depth {depth} is {problem}")]
    Corrupt {
        /// Its depth.
        depth: u16,
        /// What is wrong there ("missing", "not the node its parent names", ...).
        problem: &'static str,
    },
    /// The updates given were not sorted by key or named a key twice.
    #[error("state tree updates must be sorted by key, each key once")]
    Unsorted,
}

/// Read access to the latest version of the tree's nodes.
pub trait NodeReader {
    /// The node at `key`, if the tree has one there.
    fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError>;
    /// The nodes at `keys` (sorted, one depth), in the same order. The default reads
    /// them one by one; a store that can batch point reads does so here.
    fn tree_nodes(&self, keys: &[NodeKey]) -> Result<Vec<Option<TreeNode>>, TreeError> {
        keys.iter().map(|k| self.tree_node(k)).collect()
    }
    /// The current root ([`EMPTY`] for an empty tree).
    fn tree_root(&self) -> Result<Hash32, TreeError> {
        Ok(self.tree_node(&NodeKey::ROOT)?.map_or(EMPTY, |n| n.hash()))
    }
}

/// A key's new value, by hashes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LeafUpdate {
    /// The key's hash.
    pub key: Hash32,
    /// Its new value's hash.
    pub value: Hash32,
}

/// A node written by an update.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NodeWrite {
    /// Where.
    pub key: NodeKey,
    /// What.
    pub node: TreeNode,
}

/// What one batch of updates does to the tree: the new root and every node to write
/// (each position once, overwriting what was there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeUpdate {
    /// The root after the batch.
    pub root: Hash32,
    /// The nodes to write.
    pub writes: Vec<NodeWrite>,
}

/// Applies `updates` (sorted by key, each key once; inserts and changes, no deletions)
/// to the tree `reader` holds. Reads and hashes each touched node once; writes nothing
/// itself.
///
/// It walks down one depth at a time and reads all the nodes it needs at that depth in
/// one [`NodeReader::tree_nodes`] call (sorted keys, so a store can batch the point
/// reads), then hashes the changed internal nodes bottom-up.
pub fn apply<R: NodeReader + ?Sized>(
    reader: &R,
    updates: &[LeafUpdate],
) -> Result<TreeUpdate, TreeError> {
    if updates.windows(2).any(|w| w[0].key >= w[1].key) {
        return Err(TreeError::Unsorted);
    }
    let mut writes = Vec::new();
    if updates.is_empty() {
        return Ok(TreeUpdate {
            root: reader.tree_root()?,
            writes,
        });
    }
    // Every position the batch changes, parents before children.
    let mut tasks: Vec<Task> = Vec::new();
    // The positions of one depth still to be read: (task, the hash its parent names,
    // or None for the root, which nothing names).
    let mut pending: Vec<(usize, Option<Hash32>)> = Vec::new();
    tasks.push(Task {
        at: NodeKey::ROOT,
        updates: 0..updates.len(),
        node: TaskNode::Unread,
    });
    pending.push((0, None));
    let mut keys: Vec<NodeKey> = Vec::new();
    while !pending.is_empty() {
        keys.clear();
        keys.extend(pending.iter().map(|&(t, _)| tasks[t].at));
        let nodes = reader.tree_nodes(&keys)?;
        if nodes.len() != keys.len() {
            return Err(TreeError::Storage(format!(
                "asked for {} tree nodes, got {}",
                keys.len(),
                nodes.len()
            )));
        }
        let mut next: Vec<(usize, Option<Hash32>)> = Vec::new();
        for (&(t, named), current) in pending.iter().zip(nodes) {
            let at = tasks[t].at;
            let range = tasks[t].updates.clone();
            if let Some(named) = named {
                match &current {
                    None => {
                        return Err(TreeError::Corrupt {
                            depth: at.depth,
                            problem: "missing",
                        });
                    }
                    Some(n) if n.hash() != named => {
                        return Err(TreeError::Corrupt {
                            depth: at.depth,
                            problem: "not the node its parent names",
                        });
                    }
                    Some(_) => {}
                }
            }
            let node = match current {
                None => TaskNode::Built(build(at, &updates[range], &mut writes)),
                Some(TreeNode::Leaf { key, value }) => {
                    // The leaf moves down (or changes) among the new ones, unless updated.
                    let mut merged: Vec<LeafUpdate> = updates[range].to_vec();
                    if let Err(pos) = merged.binary_search_by(|u| u.key.cmp(&key)) {
                        merged.insert(pos, LeafUpdate { key, value });
                    }
                    TaskNode::Built(build(at, &merged, &mut writes))
                }
                Some(TreeNode::Internal { left, right }) => {
                    let depth = usize::from(at.depth);
                    let split = range.start
                        + updates[range.clone()].partition_point(|u| !bit(&u.key, depth));
                    let mut child = |right_side: bool, hash: Hash32, sub: Range<usize>| {
                        if sub.is_empty() {
                            return Child::Same(hash);
                        }
                        let at = at.child(right_side);
                        if hash == EMPTY {
                            return Child::Built(build(at, &updates[sub], &mut writes));
                        }
                        tasks.push(Task {
                            at,
                            updates: sub,
                            node: TaskNode::Unread,
                        });
                        next.push((tasks.len() - 1, Some(hash)));
                        Child::Task(tasks.len() - 1)
                    };
                    let left = child(false, left, range.start..split);
                    let right = child(true, right, split..range.end);
                    TaskNode::Internal { left, right }
                }
            };
            tasks[t].node = node;
        }
        pending = next;
    }
    // Children were pushed after their parents: hash from the last task back.
    let mut hashes = vec![EMPTY; tasks.len()];
    for i in (0..tasks.len()).rev() {
        let hash = match &tasks[i].node {
            TaskNode::Built(h) => *h,
            TaskNode::Internal { left, right } => {
                let node = TreeNode::Internal {
                    left: left.hash(&hashes),
                    right: right.hash(&hashes),
                };
                writes.push(NodeWrite {
                    key: tasks[i].at,
                    node,
                });
                node.hash()
            }
            // Every task is pushed with its position to `pending` and read there.
            TaskNode::Unread => {
                unreachable!("state tree task at depth {} left unread", tasks[i].at.depth)
            }
        };
        hashes[i] = hash;
    }
    Ok(TreeUpdate {
        root: hashes[0],
        writes,
    })
}

/// A position the batch changes.
struct Task {
    at: NodeKey,
    /// The updates under it.
    updates: Range<usize>,
    node: TaskNode,
}

/// What the batch makes of a position.
enum TaskNode {
    /// Not read yet (only while walking down).
    Unread,
    /// A fresh subtree, built and hashed at once.
    Built(Hash32),
    /// An internal node whose children change below it.
    Internal { left: Child, right: Child },
}

/// One side of a changed internal node.
enum Child {
    /// Unchanged: no update goes this way.
    Same(Hash32),
    /// A fresh subtree where there was none.
    Built(Hash32),
    /// Changed: the task for that position.
    Task(usize),
}

impl Child {
    fn hash(&self, hashes: &[Hash32]) -> Hash32 {
        match self {
            Child::Same(h) | Child::Built(h) => *h,
            Child::Task(i) => hashes[*i],
        }
    }
}

/// A fresh subtree at `at` over `leaves` (sorted, distinct, all under `at`'s path).
fn build(at: NodeKey, leaves: &[LeafUpdate], writes: &mut Vec<NodeWrite>) -> Hash32 {
    match leaves {
        [] => EMPTY,
        [one] => {
            let node = TreeNode::Leaf {
                key: one.key,
                value: one.value,
            };
            writes.push(NodeWrite { key: at, node });
            node.hash()
        }
        _ => {
            let depth = usize::from(at.depth);
            assert!(depth < KEY_BITS, "two distinct keys part before bit 256");
            let split = leaves.partition_point(|u| !bit(&u.key, depth));
            let left = build(at.child(false), &leaves[..split], writes);
            let right = build(at.child(true), &leaves[split..], writes);
            let node = TreeNode::Internal { left, right };
            writes.push(NodeWrite { key: at, node });
            node.hash()
        }
    }
}

/// The hash of the subtree at depth `depth` that holds exactly `leaves` (sorted,
/// distinct, all sharing their first `depth` bits): the tree's hashing rule over a set
/// of leaves, without the nodes ([`build`] also returns them).
pub fn subtree_hash(depth: usize, leaves: &[LeafUpdate]) -> Hash32 {
    match leaves {
        [] => EMPTY,
        [one] => leaf_hash(&one.key, &one.value),
        _ => {
            assert!(depth < KEY_BITS, "two distinct keys part before bit 256");
            let split = leaves.partition_point(|u| !bit(&u.key, depth));
            node_hash(
                &subtree_hash(depth + 1, &leaves[..split]),
                &subtree_hash(depth + 1, &leaves[split..]),
            )
        }
    }
}

// ----- proofs -----

/// Where a key's path ends in the tree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProofEnd {
    /// An empty subtree: no value for the key.
    Empty,
    /// A leaf: the key's own (membership), or another key's that shares the path so far
    /// (absence).
    Leaf {
        /// The leaf's key hash.
        key: Hash32,
        /// The leaf's value hash.
        value: Hash32,
    },
}

/// A key's path from the root: the sibling hash at each depth, root first, and where
/// the path ends.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StateProof {
    /// Sibling hashes from depth 0 down; as many as the depth where the path ends.
    pub siblings: Vec<Hash32>,
    /// What the path ends at.
    pub end: ProofEnd,
}

/// Why a state proof does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum StateProofError {
    /// The path does not hash to the root.
    #[error("the state proof does not lead to the root")]
    RootMismatch,
    /// A membership proof ends elsewhere than at the key's own leaf with that value.
    #[error("the state proof does not end at this key's leaf with this value")]
    NotThisLeaf,
    /// An absence proof ends at the key's own leaf, or at a leaf off the key's path.
    #[error("the state proof does not show the key absent")]
    NotAbsent,
}

/// The proof of `key`'s path in the tree `reader` holds.
pub fn prove<R: NodeReader + ?Sized>(reader: &R, key: &Hash32) -> Result<StateProof, TreeError> {
    let mut siblings = Vec::new();
    let mut at = NodeKey::ROOT;
    let mut node = reader.tree_node(&at)?;
    loop {
        match node {
            None => {
                return Ok(StateProof {
                    siblings,
                    end: ProofEnd::Empty,
                });
            }
            Some(TreeNode::Leaf { key: k, value }) => {
                return Ok(StateProof {
                    siblings,
                    end: ProofEnd::Leaf { key: k, value },
                });
            }
            Some(TreeNode::Internal { left, right }) => {
                let right_side = bit(key, usize::from(at.depth));
                let (next, sibling) = if right_side {
                    (right, left)
                } else {
                    (left, right)
                };
                siblings.push(sibling);
                at = at.child(right_side);
                node = if next == EMPTY {
                    None
                } else {
                    let n = reader.tree_node(&at)?.ok_or(TreeError::Corrupt {
                        depth: at.depth,
                        problem: "missing",
                    })?;
                    if n.hash() != next {
                        return Err(TreeError::Corrupt {
                            depth: at.depth,
                            problem: "not the node its parent names",
                        });
                    }
                    Some(n)
                };
            }
        }
    }
}

impl StateProof {
    /// The root this proof leads to for `key`'s path.
    fn root_for(&self, key: &Hash32) -> Result<Hash32, StateProofError> {
        if self.siblings.len() > KEY_BITS {
            return Err(StateProofError::RootMismatch);
        }
        let mut h = match self.end {
            ProofEnd::Empty => EMPTY,
            ProofEnd::Leaf { key, value } => leaf_hash(&key, &value),
        };
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            h = if bit(key, depth) {
                node_hash(sibling, &h)
            } else {
                node_hash(&h, sibling)
            };
        }
        Ok(h)
    }

    /// Checks that `key` has the value hashing to `value` in the tree of `root`.
    pub fn verify_member(
        &self,
        root: &Hash32,
        key: &Hash32,
        value: &Hash32,
    ) -> Result<(), StateProofError> {
        match self.end {
            ProofEnd::Leaf { key: k, value: v } if k == *key && v == *value => {}
            _ => return Err(StateProofError::NotThisLeaf),
        }
        if self.root_for(key)? != *root {
            return Err(StateProofError::RootMismatch);
        }
        Ok(())
    }

    /// Checks that `key` has no value in the tree of `root`.
    pub fn verify_absent(&self, root: &Hash32, key: &Hash32) -> Result<(), StateProofError> {
        match self.end {
            ProofEnd::Empty => {}
            // Another key's leaf where this key's path ends: it must share the path so
            // far (or it would not sit there) and be another key.
            ProofEnd::Leaf { key: k, .. }
                if k != *key && same_prefix(&k, key, self.siblings.len()) => {}
            ProofEnd::Leaf { .. } => return Err(StateProofError::NotAbsent),
        }
        if self.root_for(key)? != *root {
            return Err(StateProofError::RootMismatch);
        }
        Ok(())
    }
}

impl Canonical for StateProof {
    /// Depth (u16), a bitmap of the non-empty siblings (⌈depth/8⌉ bytes, bit i of the
    /// map for depth i, most significant first), the non-empty siblings in depth order,
    /// then the end: 0 (empty) or 1 with key and value hashes.
    fn encode_to(&self, enc: &mut Encoder) {
        let depth = self.siblings.len();
        enc.u16(u16::try_from(depth).unwrap_or(u16::MAX));
        let mut map = vec![0u8; depth.div_ceil(8)];
        for (i, s) in self.siblings.iter().enumerate() {
            if *s != EMPTY {
                map[i / 8] |= 0x80 >> (i % 8);
            }
        }
        enc.fixed(&map);
        for s in self.siblings.iter().filter(|s| **s != EMPTY) {
            s.encode_to(enc);
        }
        match self.end {
            ProofEnd::Empty => {
                enc.u8(0);
            }
            ProofEnd::Leaf { key, value } => {
                enc.u8(1);
                key.encode_to(enc);
                value.encode_to(enc);
            }
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let depth = usize::from(dec.u16("state proof depth")?);
        if depth > KEY_BITS {
            return Err(DecodeError::Invalid {
                what: "state proof depth",
                reason: format!("{depth} is deeper than 256"),
            });
        }
        let map = dec.take("state proof sibling map", depth.div_ceil(8))?;
        // Bits past the depth must be zero: one proof, one encoding.
        for i in depth..map.len() * 8 {
            if map[i / 8] & (0x80 >> (i % 8)) != 0 {
                return Err(DecodeError::Invalid {
                    what: "state proof sibling map",
                    reason: "bits past the depth are set".into(),
                });
            }
        }
        let mut siblings = Vec::with_capacity(depth);
        for i in 0..depth {
            if map[i / 8] & (0x80 >> (i % 8)) != 0 {
                let s = Hash32::decode_from(dec)?;
                if s == EMPTY {
                    return Err(DecodeError::Invalid {
                        what: "state proof sibling",
                        reason: "an empty sibling marked present".into(),
                    });
                }
                siblings.push(s);
            } else {
                siblings.push(EMPTY);
            }
        }
        let end = match dec.u8("state proof end")? {
            0 => ProofEnd::Empty,
            1 => ProofEnd::Leaf {
                key: Hash32::decode_from(dec)?,
                value: Hash32::decode_from(dec)?,
            },
            v => {
                return Err(DecodeError::InvalidTag {
                    what: "state proof end",
                    value: u64::from(v),
                });
            }
        };
        Ok(Self { siblings, end })
    }
}
