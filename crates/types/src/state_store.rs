//! The state tree as a store keeps it: the hashes of its upper levels in memory, its
//! leaves on disk, and nothing in between. ADR 0014 (docs/adr/0014-state-tree-top-and-leaves.md)
//! says why and what it costs.
//!
//! The tree is [`crate::state_tree`]'s binary sparse Merkle tree, unchanged: same
//! hashes, same root, same proofs. Only what is stored differs:
//! - **the top** ([`StoredTree`]): for every position of depths `0 ..= cut`, the hash of
//!   its subtree and whether it holds no leaf, one, or more ([`Slot`]), in dense arrays
//!   (level `d` has `2^d` slots). The positions at depth `cut` are the **buckets**; a
//!   store persists their slots (one small record each) and rebuilds the levels above
//!   from them when it opens ([`StoredTree::from_buckets`]);
//! - **the leaves**: key hash -> value hash, read by bucket ([`LeafSource`]); a
//!   store may keep a bucket's leaves in one record and write a batch's leaves
//!   bucket by bucket ([`TreeChange::bucket_leaves`]; `RocksStore` does, ADR 0017).
//!
//! Below the cut nothing is stored: a bucket's subtree is hashed from its leaves
//! ([`crate::state_tree::subtree_hash`]) when one of them changes, and a proof's
//! siblings under the cut are hashed the same way.
//!
//! [`StoredTree::change`] takes one block's updates as one sorted batch: it reads each
//! touched bucket once (none for a bucket that held no leaf), hashes each touched
//! bucket and each of its ancestors once, and returns a [`TreeChange`] that the store
//! writes with the block and then hands to [`StoredTree::commit`]. The committed top is
//! never touched before the write has returned, so a failed commit leaves it as it was.

use crate::hash::Hash32;
use crate::state_tree::{
    EMPTY, LeafUpdate, ProofEnd, StateProof, TreeError, bit, node_hash, subtree_hash,
};

/// The deepest cut a [`StoredTree`] takes: level 24 alone is 2^24 slots (~550 MiB).
pub const MAX_CUT: usize = 24;

/// How many leaves a subtree holds, as far as hashing cares: a subtree of one leaf is
/// that leaf (it collapses), one of two or more is an internal node.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Leaves {
    /// An empty subtree ([`EMPTY`]).
    #[default]
    None,
    /// One leaf: the subtree's hash is the leaf's hash.
    One,
    /// Two or more.
    Many,
}

impl Leaves {
    /// The class of a subtree that holds `count` leaves.
    pub fn of_count(count: usize) -> Leaves {
        match count {
            0 => Leaves::None,
            1 => Leaves::One,
            _ => Leaves::Many,
        }
    }

    /// Its byte in a stored bucket record.
    pub fn to_byte(self) -> u8 {
        match self {
            Leaves::None => 0,
            Leaves::One => 1,
            Leaves::Many => 2,
        }
    }

    /// Reads [`Leaves::to_byte`].
    pub fn from_byte(b: u8) -> Option<Leaves> {
        match b {
            0 => Some(Leaves::None),
            1 => Some(Leaves::One),
            2 => Some(Leaves::Many),
            _ => None,
        }
    }
}

/// One position of the top: its subtree's hash and how many leaves it holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Slot {
    /// The subtree's hash ([`EMPTY`] if it holds no leaf).
    pub hash: Hash32,
    /// How many leaves it holds.
    pub leaves: Leaves,
}

impl Slot {
    /// An empty subtree.
    pub const EMPTY: Slot = Slot {
        hash: EMPTY,
        leaves: Leaves::None,
    };

    /// The slot of a parent whose children are `left` and `right`: the tree's collapse
    /// rule, in the one place the top applies it.
    pub fn parent(left: &Slot, right: &Slot) -> Slot {
        match (left.leaves, right.leaves) {
            (Leaves::None, Leaves::None) => Slot::EMPTY,
            (Leaves::One, Leaves::None) => *left,
            (Leaves::None, Leaves::One) => *right,
            _ => Slot {
                hash: node_hash(&left.hash, &right.hash),
                leaves: Leaves::Many,
            },
        }
    }

    /// Stored form of a bucket's slot: the hash, then [`Leaves::to_byte`].
    pub fn to_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[..32].copy_from_slice(&self.hash.0);
        out[32] = self.leaves.to_byte();
        out
    }

    /// Reads [`Slot::to_bytes`], refusing any other form (a slot that says it is empty
    /// but carries a hash, or the reverse).
    pub fn from_bytes(bytes: &[u8]) -> Option<Slot> {
        let (hash, class) = bytes.split_at_checked(32)?;
        let [class] = class else { return None };
        let mut h = Hash32::ZERO;
        h.0.copy_from_slice(hash);
        let slot = Slot {
            hash: h,
            leaves: Leaves::from_byte(*class)?,
        };
        ((slot.leaves == Leaves::None) == (slot.hash == EMPTY)).then_some(slot)
    }
}

/// The first `depth` bits of `key` as a number: its position at that depth
/// (`depth` ≤ [`MAX_CUT`]).
pub fn position(key: &Hash32, depth: usize) -> u32 {
    assert!(
        depth <= MAX_CUT,
        "position at depth {depth} above the cut limit"
    );
    if depth == 0 {
        return 0;
    }
    let top = u32::from_be_bytes([key.0[0], key.0[1], key.0[2], key.0[3]]);
    top >> (32 - depth)
}

/// The smallest key hash at `index` of depth `depth`: where its leaves start in key order.
pub fn first_key(depth: usize, index: u32) -> Hash32 {
    assert!(
        depth <= MAX_CUT,
        "position at depth {depth} above the cut limit"
    );
    let mut key = Hash32::ZERO;
    if depth > 0 {
        key.0[..4].copy_from_slice(&(index << (32 - depth)).to_be_bytes());
    }
    key
}

/// The key hashes under one position, in key order: from `start` up to `end`
/// (exclusive), or to the last key if `end` is `None`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KeyRange {
    /// The first key under the position.
    pub start: Hash32,
    /// The first key past it, if there is one.
    pub end: Option<Hash32>,
}

impl KeyRange {
    /// The keys under `index` of depth `depth` (≤ [`MAX_CUT`]).
    pub fn of(depth: usize, index: u32) -> KeyRange {
        KeyRange {
            start: first_key(depth, index),
            end: (u64::from(index) + 1 < 1u64 << depth).then(|| first_key(depth, index + 1)),
        }
    }
}

/// Where a store reads leaves from.
pub trait LeafSource {
    /// The leaves under each of `positions` (indices at `depth`, sorted, distinct),
    /// each position's sorted by key, in the order asked. `depth` ≤ [`MAX_CUT`].
    fn leaves_under(
        &self,
        depth: usize,
        positions: &[u32],
    ) -> Result<Vec<Vec<LeafUpdate>>, TreeError>;
}

/// Leaves in a sorted map: the leaf source of a store in memory, and of tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeafMap(pub std::collections::BTreeMap<Hash32, Hash32>);

impl LeafMap {
    /// Writes the leaves of `change`.
    pub fn commit(&mut self, change: &TreeChange) {
        for l in &change.leaves {
            self.0.insert(l.key, l.value);
        }
    }
}

impl LeafSource for LeafMap {
    fn leaves_under(
        &self,
        depth: usize,
        positions: &[u32],
    ) -> Result<Vec<Vec<LeafUpdate>>, TreeError> {
        Ok(positions
            .iter()
            .map(|&p| {
                let range = KeyRange::of(depth, p);
                let leaves = match range.end {
                    Some(end) => self.0.range(range.start..end),
                    None => self.0.range(range.start..),
                };
                leaves
                    .map(|(key, value)| LeafUpdate {
                        key: *key,
                        value: *value,
                    })
                    .collect()
            })
            .collect())
    }
}

/// A changed slot of the top.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SlotWrite {
    /// Its index in its level.
    pub index: u32,
    /// Its new content.
    pub slot: Slot,
}

/// What one batch of updates does to the stored tree: computed by
/// [`StoredTree::change`], written by the store with its block, then made the committed
/// top by [`StoredTree::commit`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeChange {
    /// The root after the batch.
    pub root: Hash32,
    /// The leaves to write (the batch itself, sorted by key).
    pub leaves: Vec<LeafUpdate>,
    /// The changed slots of each depth, `0 ..= cut` (sorted by index); those of depth
    /// `cut` are the bucket records to write. Empty if the batch was.
    pub levels: Vec<Vec<SlotWrite>>,
}

impl TreeChange {
    /// The changed buckets (slots at the cut), whose records a store writes.
    pub fn buckets(&self) -> &[SlotWrite] {
        self.levels.last().map_or(&[], Vec::as_slice)
    }

    /// [`TreeChange::leaves`] bucket by bucket, in the order of [`TreeChange::buckets`]
    /// (every changed bucket has a leaf of the batch, and every leaf changes its bucket).
    pub fn bucket_leaves(&self) -> impl Iterator<Item = BucketLeaves<'_>> {
        let cut = self.levels.len().saturating_sub(1);
        self.leaves
            .chunk_by(move |a, b| position(&a.key, cut) == position(&b.key, cut))
            .map(move |leaves| BucketLeaves {
                index: leaves.first().map_or(0, |l| position(&l.key, cut)),
                leaves,
            })
    }
}

/// The leaves a batch writes in one bucket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BucketLeaves<'a> {
    /// The bucket's index at the cut.
    pub index: u32,
    /// The batch's leaves in it, sorted by key; never empty.
    pub leaves: &'a [LeafUpdate],
}

/// The top of the tree, depths `0 ..= cut`, in memory.
pub struct StoredTree {
    cut: usize,
    /// Level `d`'s hashes, `2^d` of them (zeroed memory: the OS maps it on first touch).
    hashes: Vec<Vec<[u8; 32]>>,
    /// Level `d`'s [`Leaves::to_byte`]s.
    classes: Vec<Vec<u8>>,
}

impl StoredTree {
    /// The top of an empty tree, cut at depth `cut` (≤ [`MAX_CUT`]).
    pub fn new(cut: usize) -> StoredTree {
        assert!(cut <= MAX_CUT, "state tree cut {cut} above {MAX_CUT}");
        StoredTree {
            cut,
            hashes: (0..=cut).map(|d| vec![[0u8; 32]; 1 << d]).collect(),
            classes: (0..=cut).map(|d| vec![0u8; 1 << d]).collect(),
        }
    }

    /// The top over the stored bucket slots (`(index, slot)` at depth `cut`, any order,
    /// each index once): the levels above are hashed from them, each touched position
    /// once.
    pub fn from_buckets(
        cut: usize,
        buckets: impl IntoIterator<Item = SlotWrite>,
    ) -> Result<StoredTree, TreeError> {
        let mut tree = StoredTree::new(cut);
        let mut level: Vec<SlotWrite> = buckets.into_iter().collect();
        level.sort_unstable_by_key(|w| w.index);
        if level.windows(2).any(|w| w[0].index == w[1].index) {
            return Err(TreeError::Unreadable {
                what: "state tree buckets".into(),
                reason: "a bucket stored twice".into(),
            });
        }
        if level.last().is_some_and(|w| w.index >= 1 << cut) {
            return Err(TreeError::Unreadable {
                what: "state tree buckets".into(),
                reason: format!("a bucket beyond the 2^{cut} of the cut"),
            });
        }
        let levels = tree.levels_above(level);
        tree.commit(&TreeChange {
            root: EMPTY,
            leaves: Vec::new(),
            levels,
        });
        Ok(tree)
    }

    /// The depth of the buckets.
    pub fn cut(&self) -> usize {
        self.cut
    }

    /// The root.
    pub fn root(&self) -> Hash32 {
        self.slot(0, 0).hash
    }

    /// The slot at `index` of depth `depth`.
    pub fn slot(&self, depth: usize, index: u32) -> Slot {
        let i = index as usize;
        Slot {
            hash: Hash32(self.hashes[depth][i]),
            leaves: Leaves::from_byte(self.classes[depth][i])
                .unwrap_or_else(|| unreachable!("the top stores only Leaves::to_byte values")),
        }
    }

    fn set(&mut self, depth: usize, w: &SlotWrite) {
        let i = w.index as usize;
        self.hashes[depth][i] = w.slot.hash.0;
        self.classes[depth][i] = w.slot.leaves.to_byte();
    }

    /// Makes `change` the committed top: called once its write has returned.
    pub fn commit(&mut self, change: &TreeChange) {
        assert!(
            change.levels.is_empty() || change.levels.len() == self.cut + 1,
            "a tree change of {} levels for a top of {}",
            change.levels.len(),
            self.cut + 1
        );
        for (depth, writes) in change.levels.iter().enumerate() {
            for w in writes {
                self.set(depth, w);
            }
        }
    }

    /// The changed slots of every depth from the changed buckets (sorted, distinct),
    /// root first.
    fn levels_above(&self, buckets: Vec<SlotWrite>) -> Vec<Vec<SlotWrite>> {
        let mut levels = vec![Vec::new(); self.cut + 1];
        levels[self.cut] = buckets;
        for depth in (0..self.cut).rev() {
            let below = &levels[depth + 1];
            let mut here: Vec<SlotWrite> = Vec::with_capacity(below.len() / 2 + 1);
            let mut i = 0;
            while i < below.len() {
                let parent = below[i].index >> 1;
                let (left, right) = (parent << 1, (parent << 1) | 1);
                let mut child = |index: u32| match below.get(i) {
                    Some(w) if w.index == index => {
                        i += 1;
                        w.slot
                    }
                    _ => self.slot(depth + 1, index),
                };
                let l = child(left);
                let r = child(right);
                here.push(SlotWrite {
                    index: parent,
                    slot: Slot::parent(&l, &r),
                });
            }
            levels[depth] = here;
        }
        levels
    }

    /// What `updates` (sorted by key, each key once; inserts and changes, no deletions)
    /// do to the tree whose leaves `source` holds. Reads each touched bucket that holds
    /// a leaf once, in one [`LeafSource::leaves_under`] call; writes nothing.
    pub fn change<S: LeafSource + ?Sized>(
        &self,
        source: &S,
        updates: &[LeafUpdate],
    ) -> Result<TreeChange, TreeError> {
        if updates.windows(2).any(|w| w[0].key >= w[1].key) {
            return Err(TreeError::Unsorted);
        }
        if updates.is_empty() {
            return Ok(TreeChange {
                root: self.root(),
                leaves: Vec::new(),
                levels: Vec::new(),
            });
        }
        let cut = self.cut;
        // The batch's buckets, each with its run of updates.
        let mut runs: Vec<(u32, std::ops::Range<usize>)> = Vec::new();
        for (i, u) in updates.iter().enumerate() {
            let b = position(&u.key, cut);
            match runs.last_mut() {
                Some((last, range)) if *last == b => range.end = i + 1,
                _ => runs.push((b, i..i + 1)),
            }
        }
        let to_read: Vec<u32> = runs
            .iter()
            .map(|(b, _)| *b)
            .filter(|b| self.slot(cut, *b).leaves != Leaves::None)
            .collect();
        let read = source.leaves_under(cut, &to_read)?;
        if read.len() != to_read.len() {
            return Err(TreeError::Storage(format!(
                "asked for the leaves of {} buckets, got {}",
                to_read.len(),
                read.len()
            )));
        }
        let mut read = to_read.iter().zip(read);
        let mut buckets = Vec::with_capacity(runs.len());
        let mut merged: Vec<LeafUpdate> = Vec::new();
        for (b, range) in runs {
            let stored = self.slot(cut, b);
            let old = if stored.leaves == Leaves::None {
                Vec::new()
            } else {
                match read.next() {
                    Some((&rb, leaves)) if rb == b => leaves,
                    _ => unreachable!("the buckets read are the batch's non-empty ones, in order"),
                }
            };
            if Leaves::of_count(old.len()) != stored.leaves
                || old.iter().any(|l| position(&l.key, cut) != b)
                || old.windows(2).any(|w| w[0].key >= w[1].key)
            {
                return Err(TreeError::Corrupt {
                    depth: cut as u16,
                    problem: "a bucket whose leaves are not the ones its slot counts",
                });
            }
            merge_leaves(&old, &updates[range], &mut merged);
            buckets.push(SlotWrite {
                index: b,
                slot: Slot {
                    hash: subtree_hash(cut, &merged),
                    leaves: Leaves::of_count(merged.len()),
                },
            });
        }
        let levels = self.levels_above(buckets);
        let root = levels[0]
            .first()
            .map(|w| w.slot.hash)
            .unwrap_or_else(|| unreachable!("a non-empty batch changes the root"));
        Ok(TreeChange {
            root,
            leaves: updates.to_vec(),
            levels,
        })
    }

    /// The proof of `key`'s path in the tree whose leaves `source` holds: siblings from
    /// the top above the cut, hashed from the bucket's leaves below it. The proof is
    /// checked against the root before it is returned, so damaged leaves give an error,
    /// never a proof that fails elsewhere.
    pub fn prove<S: LeafSource + ?Sized>(
        &self,
        source: &S,
        key: &Hash32,
    ) -> Result<StateProof, TreeError> {
        let proof = self.path_of(source, key)?;
        let root = self.root();
        let leads_to_root = match proof.end {
            ProofEnd::Leaf { key: k, value } if k == *key => {
                proof.verify_member(&root, key, &value).is_ok()
            }
            _ => proof.verify_absent(&root, key).is_ok(),
        };
        if !leads_to_root {
            return Err(TreeError::Corrupt {
                depth: u16::try_from(proof.siblings.len()).unwrap_or(u16::MAX),
                problem: "on a path whose leaves do not hash to the root",
            });
        }
        Ok(proof)
    }

    fn path_of<S: LeafSource + ?Sized>(
        &self,
        source: &S,
        key: &Hash32,
    ) -> Result<StateProof, TreeError> {
        let mut siblings = Vec::new();
        for depth in 0..=self.cut {
            let at = position(key, depth);
            let here = self.slot(depth, at);
            match here.leaves {
                Leaves::None => {
                    return Ok(StateProof {
                        siblings,
                        end: ProofEnd::Empty,
                    });
                }
                Leaves::One => {
                    let leaves = self.read_one(source, depth, at)?;
                    return match leaves.as_slice() {
                        [one] => Ok(StateProof {
                            siblings,
                            end: ProofEnd::Leaf {
                                key: one.key,
                                value: one.value,
                            },
                        }),
                        _ => Err(TreeError::Corrupt {
                            depth: depth as u16,
                            problem: "a one-leaf subtree without exactly one leaf",
                        }),
                    };
                }
                Leaves::Many if depth < self.cut => {
                    siblings.push(
                        self.slot(depth + 1, (at << 1) | u32::from(!bit(key, depth)))
                            .hash,
                    );
                }
                Leaves::Many => {}
            }
        }
        // Below the cut: the bucket's subtree, hashed from its leaves.
        let leaves = self.read_one(source, self.cut, position(key, self.cut))?;
        if leaves.len() < 2 {
            return Err(TreeError::Corrupt {
                depth: self.cut as u16,
                problem: "a bucket whose leaves are not the ones its slot counts",
            });
        }
        let mut under: &[LeafUpdate] = &leaves;
        let mut depth = self.cut;
        loop {
            match under {
                [] => {
                    return Ok(StateProof {
                        siblings,
                        end: ProofEnd::Empty,
                    });
                }
                [one] => {
                    return Ok(StateProof {
                        siblings,
                        end: ProofEnd::Leaf {
                            key: one.key,
                            value: one.value,
                        },
                    });
                }
                _ => {
                    assert!(
                        depth < crate::state_tree::KEY_BITS,
                        "two distinct keys part before bit 256"
                    );
                    let split = under.partition_point(|u| !bit(&u.key, depth));
                    let (left, right) = under.split_at(split);
                    let (own, other) = if bit(key, depth) {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    siblings.push(subtree_hash(depth + 1, other));
                    under = own;
                    depth += 1;
                }
            }
        }
    }

    fn read_one<S: LeafSource + ?Sized>(
        &self,
        source: &S,
        depth: usize,
        at: u32,
    ) -> Result<Vec<LeafUpdate>, TreeError> {
        let mut read = source.leaves_under(depth, &[at])?;
        match (read.pop(), read.is_empty()) {
            (Some(leaves), true) => Ok(leaves),
            _ => Err(TreeError::Storage(
                "asked for the leaves of one position, got another count".into(),
            )),
        }
    }
}

/// `old` (sorted, distinct) with `new` (sorted, distinct) merged in, a key of both
/// taking `new`'s value, into `out`: how a bucket's leaves take a batch's, in the tree
/// and in a store that folds a bucket's writes itself (`RocksStore`'s merge operator).
pub fn merge_leaves(old: &[LeafUpdate], new: &[LeafUpdate], out: &mut Vec<LeafUpdate>) {
    out.clear();
    out.reserve(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match old[i].key.cmp(&new[j].key) {
            std::cmp::Ordering::Less => {
                out.push(old[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(new[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(new[j]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&old[i..]);
    out.extend_from_slice(&new[j..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_first_keys_agree() {
        let mut key = Hash32::ZERO;
        key.0[0] = 0b1011_0000;
        key.0[2] = 0xff;
        assert_eq!(position(&key, 0), 0);
        assert_eq!(position(&key, 1), 1);
        assert_eq!(position(&key, 4), 0b1011);
        assert_eq!(position(&key, 24), 0b1011_0000_0000_0000_1111_1111);
        let first = first_key(4, 0b1011);
        assert_eq!(position(&first, 4), 0b1011);
        assert!(first <= key);
    }

    #[test]
    fn key_ranges_cover_their_position() {
        assert_eq!(
            KeyRange::of(0, 0),
            KeyRange {
                start: Hash32::ZERO,
                end: None
            }
        );
        let last = KeyRange::of(24, (1 << 24) - 1);
        assert_eq!(last.end, None);
        assert_eq!(position(&last.start, 24), (1 << 24) - 1);
        let r = KeyRange::of(3, 5);
        assert_eq!(r.start.0[0], 0b1010_0000);
        assert_eq!(r.end.map(|e| e.0[0]), Some(0b1100_0000));
    }

    #[test]
    fn slot_bytes_are_strict() {
        let slot = Slot {
            hash: Hash32::digest(b"x"),
            leaves: Leaves::Many,
        };
        assert_eq!(Slot::from_bytes(&slot.to_bytes()), Some(slot));
        assert_eq!(Slot::from_bytes(&Slot::EMPTY.to_bytes()), Some(Slot::EMPTY));
        let mut bad = slot.to_bytes();
        bad[32] = 0;
        assert_eq!(Slot::from_bytes(&bad), None, "empty class with a hash");
        bad[32] = 3;
        assert_eq!(Slot::from_bytes(&bad), None, "unknown class");
        assert_eq!(Slot::from_bytes(&bad[..32]), None, "short");
    }

    #[test]
    fn merge_takes_new_values() {
        let l = |k: u8, v: u8| LeafUpdate {
            key: Hash32([k; 32]),
            value: Hash32([v; 32]),
        };
        let mut out = vec![l(0, 0)];
        merge_leaves(&[l(1, 1), l(3, 3)], &[l(2, 9), l(3, 8), l(4, 7)], &mut out);
        assert_eq!(out, vec![l(1, 1), l(2, 9), l(3, 8), l(4, 7)]);
    }
}
