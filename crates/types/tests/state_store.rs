//! The state tree as stores keep it (`ebill_types::state_store`: the top in memory, the
//! leaves beside it) held against the reference tree of binary nodes
//! (`state_tree::apply`/`prove`, itself held against a naive root in
//! tests/state_tree.rs). On random batches, at cuts from 0 (one bucket) to 10 (every
//! leaf alone in its bucket at these sizes): the same root after every batch, the same
//! proof for every key present or absent, each proof verifies and one for another value
//! or key is refused; the top rebuilt from its bucket slots is the same top.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashMap;

use common::deterministic;

use ebill_types::hash::Hash32;
use ebill_types::state_store::{BucketLeaves, LeafMap as Leaves, SlotWrite, StoredTree, position};
use ebill_types::state_tree::{
    self, LeafUpdate, NodeKey, NodeReader, TreeError, TreeNode, node_hash,
};
use proptest::prelude::*;

/// The reference: binary nodes in a map.
#[derive(Default)]
struct Nodes(HashMap<NodeKey, TreeNode>);

impl NodeReader for Nodes {
    fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError> {
        Ok(self.0.get(key).copied())
    }
}

/// A stored tree and its reference, moved together.
struct Both {
    top: StoredTree,
    leaves: Leaves,
    nodes: Nodes,
}

impl Both {
    fn new(cut: usize) -> Both {
        Both {
            top: StoredTree::new(cut),
            leaves: Leaves::default(),
            nodes: Nodes::default(),
        }
    }

    fn apply(&mut self, updates: &[LeafUpdate]) -> Hash32 {
        let reference = state_tree::apply(&self.nodes, updates).unwrap();
        for w in reference.writes {
            self.nodes.0.insert(w.key, w.node);
        }
        let change = self.top.change(&self.leaves, updates).unwrap();
        assert_eq!(change.root, reference.root, "cut {}", self.top.cut());
        self.leaves.commit(&change);
        // The batch's leaves bucket by bucket are the changed buckets, in order.
        let cut = self.top.cut();
        let touched: Vec<u32> = change.buckets().iter().map(|w| w.index).collect();
        let runs: Vec<BucketLeaves<'_>> = change.bucket_leaves().collect();
        assert_eq!(runs.iter().map(|r| r.index).collect::<Vec<_>>(), touched);
        assert!(
            runs.iter()
                .all(|r| r.leaves.iter().all(|l| position(&l.key, cut) == r.index))
        );
        let rejoined: Vec<LeafUpdate> = runs.iter().flat_map(|r| r.leaves.to_vec()).collect();
        assert_eq!(rejoined, updates);
        self.top.commit(&change);
        assert_eq!(self.top.root(), reference.root);
        reference.root
    }

    fn check(&self, root: &Hash32, probes: &[Hash32]) {
        for (k, v) in &self.leaves.0 {
            let p = self.top.prove(&self.leaves, k).unwrap();
            assert_eq!(p, state_tree::prove(&self.nodes, k).unwrap());
            p.verify_member(root, k, v).unwrap();
            assert!(p.verify_member(root, k, &h(u64::MAX)).is_err());
        }
        for k in probes.iter().filter(|k| !self.leaves.0.contains_key(k)) {
            let p = self.top.prove(&self.leaves, k).unwrap();
            assert_eq!(p, state_tree::prove(&self.nodes, k).unwrap());
            p.verify_absent(root, k).unwrap();
            assert!(p.verify_member(root, k, &h(0)).is_err());
        }
        // The top a store rebuilds when it opens: from the bucket slots alone.
        let cut = self.top.cut();
        let buckets: Vec<SlotWrite> = (0..1u32 << cut)
            .map(|index| SlotWrite {
                index,
                slot: self.top.slot(cut, index),
            })
            .filter(|w| w.slot.hash != state_tree::EMPTY)
            .collect();
        let rebuilt = StoredTree::from_buckets(cut, buckets).unwrap();
        assert_eq!(rebuilt.root(), *root);
        for depth in 0..=cut {
            for index in 0..1u32 << depth {
                assert_eq!(rebuilt.slot(depth, index), self.top.slot(depth, index));
            }
        }
    }
}

fn h(n: u64) -> Hash32 {
    Hash32::digest(&n.to_be_bytes())
}

fn batch(pairs: impl IntoIterator<Item = (Hash32, Hash32)>) -> Vec<LeafUpdate> {
    let mut v: Vec<LeafUpdate> = pairs
        .into_iter()
        .map(|(key, value)| LeafUpdate { key, value })
        .collect();
    v.sort_by_key(|u| u.key);
    v
}

#[test]
fn an_empty_top_has_the_empty_root_and_proves_every_key_absent() {
    for cut in [0, 3, 20] {
        let top = StoredTree::new(cut);
        assert_eq!(top.root(), state_tree::EMPTY);
        let p = top.prove(&Leaves::default(), &h(1)).unwrap();
        p.verify_absent(&state_tree::EMPTY, &h(1)).unwrap();
        let c = top.change(&Leaves::default(), &[]).unwrap();
        assert_eq!(c.root, state_tree::EMPTY);
        assert!(c.levels.is_empty() && c.leaves.is_empty());
    }
}

#[test]
fn unsorted_or_repeated_updates_are_refused() {
    let top = StoredTree::new(4);
    let b = batch([(h(1), h(9)), (h(2), h(9))]);
    let reversed = [b[1], b[0]];
    assert_eq!(
        top.change(&Leaves::default(), &reversed),
        Err(TreeError::Unsorted)
    );
    assert_eq!(
        top.change(&Leaves::default(), &[b[0], b[0]]),
        Err(TreeError::Unsorted)
    );
}

/// Two keys that share their first 255 bits sit in one bucket at every cut, below a
/// chain of one-sided nodes that reaches from the cut to bit 255.
#[test]
fn two_keys_sharing_a_long_prefix_match_the_reference() {
    let mut a = Hash32([0u8; 32]);
    let mut b = Hash32([0u8; 32]);
    a.0[31] = 0b0000_0010;
    b.0[31] = 0b0000_0011;
    for cut in [0, 5, 16] {
        let mut both = Both::new(cut);
        let root = both.apply(&batch([(a, h(1)), (b, h(2))]));
        both.check(&root, &[Hash32([0xff; 32]), Hash32([0u8; 32])]);
        let p = both.top.prove(&both.leaves, &a).unwrap();
        assert_eq!(p.siblings.len(), 256);
    }
}

/// Leaves that do not match their bucket's slot are reported, not hashed into a root.
#[test]
fn a_bucket_that_lost_a_leaf_is_reported() {
    let mut both = Both::new(2);
    let updates = batch((0..40).map(|i| (h(i), h(100 + i))));
    both.apply(&updates);
    // Lose every leaf of the bucket of h(0) but one... or all of them.
    let b = position(&h(0), 2);
    let lost: Vec<Hash32> = both
        .leaves
        .0
        .keys()
        .filter(|k| position(k, 2) == b)
        .copied()
        .collect();
    assert!(lost.len() >= 2, "40 keys in 4 buckets");
    for k in &lost {
        both.leaves.0.remove(k);
    }
    let more = batch([(lost[0], h(7))]);
    assert!(matches!(
        both.top.change(&both.leaves, &more),
        Err(TreeError::Corrupt { depth: 2, .. })
    ));
    assert!(matches!(
        both.top.prove(&both.leaves, &lost[1]),
        Err(TreeError::Corrupt { .. })
    ));
}

/// A leaf whose value changed behind the tree's back gives an error from `prove`, not
/// a proof that fails at the verifier.
#[test]
fn a_changed_leaf_fails_the_proof_check() {
    let mut both = Both::new(3);
    let updates = batch((0..50).map(|i| (h(i), h(100 + i))));
    both.apply(&updates);
    both.leaves.0.insert(h(5), h(1));
    assert!(matches!(
        both.top.prove(&both.leaves, &h(5)),
        Err(TreeError::Corrupt { .. })
    ));
}

#[test]
fn stored_buckets_out_of_range_or_twice_are_refused() {
    let slot = ebill_types::state_store::Slot {
        hash: node_hash(&h(1), &h(2)),
        leaves: ebill_types::state_store::Leaves::Many,
    };
    assert!(StoredTree::from_buckets(2, [SlotWrite { index: 4, slot }]).is_err());
    assert!(
        StoredTree::from_buckets(
            2,
            [SlotWrite { index: 1, slot }, SlotWrite { index: 1, slot }]
        )
        .is_err()
    );
}

proptest! {
    #![proptest_config(deterministic(40))]

    /// Batches of inserts and value changes over a small key space, so that batches
    /// both add keys and change existing ones, at every kind of cut.
    #[test]
    fn batches_match_the_reference_tree(
        cut in prop_oneof![Just(0usize), Just(1), Just(3), Just(6), Just(10)],
        batches in proptest::collection::vec(
            proptest::collection::btree_map(0u64..300, 0u64..1_000, 0..60),
            1..6,
        ),
        probes in proptest::collection::vec(0u64..400, 0..10),
    ) {
        let mut both = Both::new(cut);
        let probes: Vec<Hash32> = probes.iter().map(|p| h(*p)).collect();
        for b in &batches {
            let root = both.apply(&batch(b.iter().map(|(k, v)| (h(*k), h(1_000_000 + v)))));
            both.check(&root, &probes);
        }
    }
}
