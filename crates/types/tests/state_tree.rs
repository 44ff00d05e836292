//! The state tree held against a second, naive implementation: the root of a sorted set
//! of leaves computed from scratch by recursion over bits. On random batches applied
//! one after another: the same roots, every key's proof verifies, a proof with another
//! value or for another key is refused, absent keys are proved absent and present ones
//! are not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::{BTreeMap, HashMap};

use common::deterministic;

use ebill_types::Canonical;
use ebill_types::hash::Hash32;
use ebill_types::state_tree::{
    self, EMPTY, LeafUpdate, NodeKey, NodeReader, StateProof, TreeError, TreeNode, bit, leaf_hash,
    node_hash,
};
use proptest::prelude::*;

/// The nodes in a map, as a store keeps them.
#[derive(Default)]
struct Nodes(HashMap<NodeKey, TreeNode>);

impl NodeReader for Nodes {
    fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError> {
        Ok(self.0.get(key).copied())
    }
}

impl Nodes {
    fn apply(&mut self, updates: &[LeafUpdate]) -> Hash32 {
        let u = state_tree::apply(self, updates).unwrap();
        for w in u.writes {
            self.0.insert(w.key, w.node);
        }
        u.root
    }
}

/// The root from scratch: an empty set is EMPTY, one leaf is its hash, more split on
/// the bit at `depth`.
fn naive_root(leaves: &[(Hash32, Hash32)], depth: usize) -> Hash32 {
    match leaves {
        [] => EMPTY,
        [(k, v)] => leaf_hash(k, v),
        _ => {
            let split = leaves.partition_point(|(k, _)| !bit(k, depth));
            node_hash(
                &naive_root(&leaves[..split], depth + 1),
                &naive_root(&leaves[split..], depth + 1),
            )
        }
    }
}

fn h(n: u64) -> Hash32 {
    Hash32::digest(&n.to_be_bytes())
}

fn check_all(nodes: &Nodes, model: &BTreeMap<Hash32, Hash32>, root: &Hash32, absent: &[Hash32]) {
    let leaves: Vec<(Hash32, Hash32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(*root, naive_root(&leaves, 0));
    assert_eq!(nodes.tree_root().unwrap(), *root);
    for (k, v) in model {
        let p = state_tree::prove(nodes, k).unwrap();
        p.verify_member(root, k, v).unwrap();
        assert!(p.verify_member(root, k, &h(u64::MAX)).is_err());
        assert!(p.verify_absent(root, k).is_err());
        let bytes = p.to_canonical_bytes();
        assert_eq!(StateProof::from_canonical_bytes(&bytes).unwrap(), p);
    }
    for k in absent.iter().filter(|k| !model.contains_key(k)) {
        let p = state_tree::prove(nodes, k).unwrap();
        p.verify_absent(root, k).unwrap();
        assert!(p.verify_member(root, k, &h(0)).is_err());
        // The same proof does not show another key absent, unless that key's path
        // ends at the same place: then it is a proof for it too, and must be right.
        for other in model.keys().take(3) {
            assert!(p.verify_absent(root, other).is_err());
        }
    }
}

#[test]
fn an_empty_tree_has_the_empty_root_and_proves_every_key_absent() {
    let nodes = Nodes::default();
    assert_eq!(nodes.tree_root().unwrap(), EMPTY);
    let p = state_tree::prove(&nodes, &h(1)).unwrap();
    p.verify_absent(&EMPTY, &h(1)).unwrap();
    let u = state_tree::apply(&nodes, &[]).unwrap();
    assert_eq!(u.root, EMPTY);
    assert!(u.writes.is_empty());
}

#[test]
fn unsorted_or_repeated_updates_are_refused() {
    let nodes = Nodes::default();
    let (a, b) = if h(1) < h(2) {
        (h(1), h(2))
    } else {
        (h(2), h(1))
    };
    let up = |k| LeafUpdate {
        key: k,
        value: h(9),
    };
    assert_eq!(
        state_tree::apply(&nodes, &[up(b), up(a)]),
        Err(TreeError::Unsorted)
    );
    assert_eq!(
        state_tree::apply(&nodes, &[up(a), up(a)]),
        Err(TreeError::Unsorted)
    );
}

#[test]
fn two_keys_sharing_a_long_prefix_sit_below_a_chain_of_one_sided_nodes() {
    let mut a = Hash32([0u8; 32]);
    let mut b = Hash32([0u8; 32]);
    a.0[31] = 0b0000_0010;
    b.0[31] = 0b0000_0011;
    let mut nodes = Nodes::default();
    let root = nodes.apply(&[
        LeafUpdate {
            key: a,
            value: h(1),
        },
        LeafUpdate {
            key: b,
            value: h(2),
        },
    ]);
    let model: BTreeMap<Hash32, Hash32> = [(a, h(1)), (b, h(2))].into();
    check_all(
        &nodes,
        &model,
        &root,
        &[Hash32([0xff; 32]), Hash32([0u8; 32])],
    );
    let p = state_tree::prove(&nodes, &a).unwrap();
    assert_eq!(p.siblings.len(), 256, "the two keys part at the last bit");
    // The encoding skips the 255 empty siblings: depth, map, one hash, the end.
    assert_eq!(p.to_canonical_bytes().len(), 2 + 32 + 32 + 1 + 64);
}

#[test]
fn a_tampered_node_is_reported_not_followed() {
    let mut nodes = Nodes::default();
    let updates: Vec<LeafUpdate> = {
        let mut v: Vec<LeafUpdate> = (0..8)
            .map(|i| LeafUpdate {
                key: h(i),
                value: h(100 + i),
            })
            .collect();
        v.sort_by_key(|u| u.key);
        v
    };
    nodes.apply(&updates);
    let child = NodeKey::ROOT.child(false);
    nodes.0.insert(
        child,
        TreeNode::Leaf {
            key: h(1),
            value: h(1),
        },
    );
    let more = [LeafUpdate {
        key: Hash32([0u8; 32]),
        value: h(5),
    }];
    assert!(matches!(
        state_tree::apply(&nodes, &more),
        Err(TreeError::Corrupt { depth: 1, .. })
    ));
}

proptest! {
    #![proptest_config(deterministic(48))]

    /// Batches of inserts and value changes over a small key space (so that batches
    /// both add keys and change existing ones), against the naive root.
    #[test]
    fn batches_match_the_naive_tree(
        batches in proptest::collection::vec(
            proptest::collection::btree_map(0u64..300, 0u64..1_000, 0..40),
            1..8,
        ),
        probes in proptest::collection::vec(0u64..400, 0..10),
    ) {
        let mut nodes = Nodes::default();
        let mut model: BTreeMap<Hash32, Hash32> = BTreeMap::new();
        for batch in &batches {
            let mut updates: Vec<LeafUpdate> = batch
                .iter()
                .map(|(k, v)| LeafUpdate { key: h(*k), value: h(1_000_000 + v) })
                .collect();
            updates.sort_by_key(|u| u.key);
            for u in &updates {
                model.insert(u.key, u.value);
            }
            let root = nodes.apply(&updates);
            let absent: Vec<Hash32> = probes.iter().map(|p| h(*p)).collect();
            check_all(&nodes, &model, &root, &absent);
        }
    }
}
