//! The state tree stored in pages (`ebill_types::state_page`) against the same tree
//! stored one binary node per record: on random batches (with keys that share long
//! prefixes, down to two keys that differ only in their last bit), the same roots, the
//! same node at every position, the same proofs; every stored page decodes to itself
//! and re-encodes to its bytes; a damaged page is refused, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashMap;

use common::deterministic;

use ebill_types::hash::Hash32;
use ebill_types::state_page::{self, PAGE_SLOTS, Page, PageKey};
use ebill_types::state_tree::{self, LeafUpdate, NodeKey, NodeReader, TreeError, TreeNode};
use proptest::prelude::*;

/// One binary node per record.
#[derive(Default)]
struct Nodes(HashMap<NodeKey, TreeNode>);

impl NodeReader for Nodes {
    fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError> {
        Ok(self.0.get(key).copied())
    }
}

/// Encoded pages, as `RocksStore` keeps them (without its cache).
#[derive(Default)]
struct Pages(HashMap<PageKey, Vec<u8>>);

impl Pages {
    fn page(&self, key: &PageKey) -> Option<Page> {
        self.0
            .get(key)
            .map(|bytes| Page::decode(key, bytes).expect("a stored page decodes"))
    }

    fn apply(&mut self, updates: &[LeafUpdate]) -> Hash32 {
        let u = state_tree::apply(self, updates).unwrap();
        let pages = state_page::page_writes(&u.writes, |keys| {
            Ok::<_, ()>(keys.iter().map(|k| self.page(k)).collect())
        })
        .unwrap();
        for (key, page) in pages {
            self.0.insert(key, page.encode());
        }
        u.root
    }
}

impl NodeReader for Pages {
    fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError> {
        let at = PageKey::of(key);
        Ok(self.page(&at.page).and_then(|p| p.get(at.slot)))
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

/// Key `n`: mostly uniform hashes; some share 250 bits with key 0's twin family, and
/// two differ from each other only in the last bit.
fn key(n: u64) -> Hash32 {
    match n % 10 {
        0 => {
            let mut k = Hash32([0xa5; 32]);
            k.0[31] = (n / 10) as u8;
            k
        }
        _ => Hash32::digest(&n.to_be_bytes()),
    }
}

fn check_same(nodes: &Nodes, pages: &Pages) {
    assert_eq!(nodes.tree_root().unwrap(), pages.tree_root().unwrap());
    for (at, node) in &nodes.0 {
        assert_eq!(pages.tree_node(at).unwrap(), Some(*node), "node at {at:?}");
    }
    let paged_nodes: usize = pages
        .0
        .iter()
        .map(|(k, bytes)| {
            let page = Page::decode(k, bytes).unwrap();
            assert_eq!(&page.encode(), bytes, "one page, one encoding");
            page.len()
        })
        .sum();
    assert_eq!(paged_nodes, nodes.0.len(), "no node more or less in pages");
}

#[test]
fn keys_differing_only_in_the_last_bit_sit_at_depth_256_in_the_last_page() {
    let a = Hash32([0x5a; 32]);
    let mut b = a;
    b.0[31] ^= 1;
    let mut ups = vec![
        LeafUpdate {
            key: a,
            value: Hash32([1; 32]),
        },
        LeafUpdate {
            key: b,
            value: Hash32([2; 32]),
        },
    ];
    ups.sort_by_key(|u| u.key);
    let mut nodes = Nodes::default();
    let mut pages = Pages::default();
    assert_eq!(nodes.apply(&ups), pages.apply(&ups));
    check_same(&nodes, &pages);
    assert!(
        pages
            .0
            .keys()
            .any(|k| k.level == state_page::MAX_PAGE_LEVEL)
    );
    let proof = state_tree::prove(&pages, &a).unwrap();
    assert_eq!(proof, state_tree::prove(&nodes, &a).unwrap());
    assert_eq!(proof.siblings.len(), 256);
}

#[test]
fn damaged_pages_are_refused() {
    let mut pages = Pages::default();
    let ups: Vec<LeafUpdate> = {
        let mut v: Vec<LeafUpdate> = (0..50)
            .map(|n| LeafUpdate {
                key: key(n),
                value: Hash32::digest(&[n as u8]),
            })
            .collect();
        v.sort_by_key(|u| u.key);
        v
    };
    pages.apply(&ups);
    let (root_key, root_bytes) = pages.0.get_key_value(&PageKey::ROOT).unwrap();
    let page = Page::decode(root_key, root_bytes).unwrap();
    assert_eq!(page.len(), PAGE_SLOTS, "50 keys fill the root page");
    let mut trailing = root_bytes.clone();
    trailing.push(0);
    assert!(Page::decode(root_key, &trailing).is_err(), "trailing byte");
    assert!(Page::decode(root_key, &[0]).is_err(), "an empty page");
    assert!(Page::decode(root_key, &[7]).is_err(), "unknown tag");
    assert!(
        Page::decode(root_key, &root_bytes[..root_bytes.len() - 1]).is_err(),
        "truncated"
    );
    // A leaf stored in a page whose path is not its own.
    let (leaf_page, leaf_bytes) = pages
        .0
        .iter()
        .find(|(k, b)| k.level > 0 && b[0] == 1)
        .expect("a page whose root is a leaf");
    let mut other = *leaf_page;
    other.path.0[0] ^= 0x80;
    assert!(
        Page::decode(&other, leaf_bytes).is_err(),
        "a leaf off its path"
    );
    assert!(Page::decode(leaf_page, leaf_bytes).is_ok());
    // Every byte of a full page changed: decoded or refused, never a panic.
    for i in 0..root_bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = root_bytes.clone();
            bytes[i] ^= flip;
            if let Ok(p) = Page::decode(root_key, &bytes) {
                assert_eq!(
                    p.encode(),
                    bytes,
                    "a page that decodes re-encodes to itself"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(deterministic(48))]

    /// Batches of inserts and value changes, applied through pages and through binary
    /// nodes: the same roots, nodes and proofs after every batch.
    #[test]
    fn apply_through_pages_equals_apply_through_binary_nodes(
        batches in proptest::collection::vec(
            proptest::collection::btree_map(0u64..400, 0u64..1_000, 0..60),
            1..8,
        ),
        probes in proptest::collection::vec(0u64..500, 0..10),
    ) {
        let mut nodes = Nodes::default();
        let mut pages = Pages::default();
        for batch in &batches {
            let mut updates: Vec<LeafUpdate> = batch
                .iter()
                .map(|(k, v)| LeafUpdate { key: key(*k), value: Hash32::digest(&v.to_be_bytes()) })
                .collect();
            updates.sort_by_key(|u| u.key);
            prop_assert_eq!(nodes.apply(&updates), pages.apply(&updates));
            check_same(&nodes, &pages);
            for p in &probes {
                let k = key(*p);
                prop_assert_eq!(
                    state_tree::prove(&pages, &k).unwrap(),
                    state_tree::prove(&nodes, &k).unwrap()
                );
            }
        }
    }
}
