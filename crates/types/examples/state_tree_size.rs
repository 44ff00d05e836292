//! Measures the state tree in memory: updates per second for sorted batches of 5,000
//! new keys, and the size of membership proofs, at growing numbers of keys.
//!
//! ```text
//! cargo run --release -p ebill-types --example state_tree_size -- 1000000
//! ```
//!
//! The tree lives in a hash map here, so the rate is the tree's own cost (hashing and
//! node handling), not RocksDB's; the node's rate with RocksDB is the benchmark's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::time::Instant;

use ebill_types::Canonical;
use ebill_types::hash::Hash32;
use ebill_types::state_tree::{self, LeafUpdate, NodeKey, NodeReader, TreeError, TreeNode};

#[derive(Default)]
struct Nodes(HashMap<NodeKey, TreeNode>);

impl NodeReader for Nodes {
    fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError> {
        Ok(self.0.get(key).copied())
    }
}

fn key(n: u64) -> Hash32 {
    Hash32::digest(&n.to_le_bytes())
}

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("a number of keys"))
        .unwrap_or(1_000_000);
    let batch = 5_000u64;
    let mut nodes = Nodes::default();
    let mut done = 0u64;
    let mut next_report = 10_000u64;
    let mut update_secs = 0f64;
    let mut updates = 0u64;
    while done < total {
        let mut ups: Vec<LeafUpdate> = (done..(done + batch).min(total))
            .map(|n| LeafUpdate {
                key: key(n),
                value: Hash32::digest(&n.to_be_bytes()),
            })
            .collect();
        ups.sort_unstable_by_key(|u| u.key);
        let t = Instant::now();
        let u = state_tree::apply(&nodes, &ups).unwrap();
        for w in u.writes {
            nodes.0.insert(w.key, w.node);
        }
        update_secs += t.elapsed().as_secs_f64();
        updates += ups.len() as u64;
        done += ups.len() as u64;
        if done >= next_report || done == total {
            let samples = 1_000u64.min(done);
            let mut bytes = 0usize;
            let mut max = 0usize;
            let mut depth = 0usize;
            for i in 0..samples {
                let n = i * (done / samples);
                let p = state_tree::prove(&nodes, &key(n)).unwrap();
                let b = p.to_canonical_bytes().len();
                bytes += b;
                max = max.max(b);
                depth += p.siblings.len();
            }
            println!(
                "{{\"keys\":{done},\"updates_per_s\":{:.0},\"proof_bytes_mean\":{:.0},\"proof_bytes_max\":{max},\"depth_mean\":{:.1}}}",
                updates as f64 / update_secs,
                bytes as f64 / samples as f64,
                depth as f64 / samples as f64
            );
            next_report *= 10;
            update_secs = 0.0;
            updates = 0;
        }
    }
}
