//! The `state` section: the state tree in RocksDB on one core, as a block commit uses it.
//!
//! A scratch store is filled with `keys` leaves in sorted batches of 5,000 (a block's
//! worth of new bills); then, at that size, more batches of new keys and batches of
//! changes of existing keys are timed, each batch read, hashed and written (unsynced)
//! as a commit would. Proof sizes are the canonical bytes of membership proofs of
//! existing keys; the size at 10^9 keys is extrapolated from the measured depth, one
//! 32-byte sibling per doubling (the tree is a binary tree over uniform hashes).

use std::time::Instant;

use anyhow::{Context, Result};
use ebill_store::{RocksConfig, RocksStore, Store};
use ebill_types::Canonical;
use ebill_types::hash::Hash32;
use ebill_types::state_tree::{self, LeafUpdate};
use serde::Serialize;

use crate::stats::r2;

/// Updates per batch: one block of new bills.
const BATCH: u64 = 5_000;
/// Batches timed at the full size, of each kind.
const TIMED_BATCHES: u64 = 20;
/// Membership proofs sampled for their size.
const PROOF_SAMPLES: u64 = 1_000;

/// The `state` section of the report.
#[derive(Serialize, Clone, Debug)]
pub struct StateReport {
    /// Leaves in the tree when timed.
    pub keys: u64,
    /// New keys per second at `keys`, in sorted batches of 5,000 (read, hash, write).
    pub updates_per_s: f64,
    /// Changed values of existing keys per second at `keys`, in batches of 5,000.
    pub changes_per_s: f64,
    /// Mean canonical size of a membership proof at `keys`.
    pub proof_bytes: f64,
    /// Largest of the sampled proofs.
    pub proof_bytes_max: u64,
    /// Mean number of siblings (the depth where a path ends).
    pub depth_mean: f64,
    /// `proof_bytes` extrapolated to 10^9 keys.
    pub proof_bytes_at_1e9: f64,
    /// Seconds the fill took (untimed part of the section).
    pub fill_s: f64,
    /// Depth of the store's tree buckets.
    pub tree_cut: u64,
    /// The store's RocksDB block cache.
    pub block_cache_bytes: u64,
}

fn key(n: u64) -> Hash32 {
    Hash32::digest(&n.to_le_bytes())
}

fn value(n: u64, version: u64) -> Hash32 {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&n.to_le_bytes());
    b[8..].copy_from_slice(&version.to_le_bytes());
    Hash32::digest(&b)
}

fn batch(ids: impl Iterator<Item = u64>, version: u64) -> Vec<LeafUpdate> {
    let mut ups: Vec<LeafUpdate> = ids
        .map(|n| LeafUpdate {
            key: key(n),
            value: value(n, version),
        })
        .collect();
    ups.sort_unstable_by_key(|u| u.key);
    ups
}

/// Fills a scratch store tuned by `config` to `keys` leaves and times the tree there.
pub fn run(keys: u64, config: &RocksConfig) -> Result<StateReport> {
    let tmp = tempfile::tempdir()?;
    let store =
        RocksStore::open_with(tmp.path().join("state"), config).context("open a scratch store")?;
    let fill_start = Instant::now();
    let mut done = 0u64;
    while done < keys {
        let end = (done + BATCH).min(keys);
        store.bench_apply_tree(&batch(done..end, 0))?;
        done = end;
        if done.is_multiple_of(1_000_000) {
            eprintln!("state: {done} keys");
        }
    }
    let fill_s = fill_start.elapsed().as_secs_f64();

    // New keys at this size: the tree grows by 2% over the timed batches.
    let start = Instant::now();
    for b in 0..TIMED_BATCHES {
        let from = keys + b * BATCH;
        store.bench_apply_tree(&batch(from..from + BATCH, 0))?;
    }
    let updates_per_s = (TIMED_BATCHES * BATCH) as f64 / start.elapsed().as_secs_f64();
    let total = keys + TIMED_BATCHES * BATCH;

    // Changes of existing keys spread over the whole tree (a stride through the ids).
    let stride = (total / BATCH).max(1);
    let start = Instant::now();
    for b in 0..TIMED_BATCHES {
        let ids = (0..BATCH).map(|i| (i * stride + b) % total);
        let mut ups = batch(ids, b + 1);
        ups.dedup_by_key(|u| u.key);
        store.bench_apply_tree(&ups)?;
    }
    let changes_per_s = (TIMED_BATCHES * BATCH) as f64 / start.elapsed().as_secs_f64();

    let root = store.state_root()?;
    let mut bytes = 0u64;
    let mut max = 0u64;
    let mut depth = 0u64;
    for i in 0..PROOF_SAMPLES {
        let n = i * (total / PROOF_SAMPLES);
        let k = key(n);
        let proof = store.bench_prove_tree(&k)?;
        // Some keys were changed above: membership is checked against the value of the
        // leaf the proof ends at, which must be this key's own leaf.
        let state_tree::ProofEnd::Leaf { key: end, value } = proof.end else {
            anyhow::bail!("key {n} is missing from the tree");
        };
        anyhow::ensure!(end == k, "the proof of key {n} ends at another leaf");
        proof
            .verify_member(&root, &k, &value)
            .with_context(|| format!("the proof of key {n}"))?;
        let size = proof.to_canonical_bytes().len() as u64;
        bytes += size;
        max = max.max(size);
        depth += proof.siblings.len() as u64;
    }
    let proof_bytes = bytes as f64 / PROOF_SAMPLES as f64;
    let depth_mean = depth as f64 / PROOF_SAMPLES as f64;
    let proof_bytes_at_1e9 = proof_bytes + 32.0 * (1e9 / total as f64).log2().max(0.0);
    Ok(StateReport {
        keys: total,
        updates_per_s: r2(updates_per_s),
        changes_per_s: r2(changes_per_s),
        proof_bytes: r2(proof_bytes),
        proof_bytes_max: max,
        depth_mean: r2(depth_mean),
        proof_bytes_at_1e9: r2(proof_bytes_at_1e9),
        fill_s: r2(fill_s),
        tree_cut: config.tree_cut as u64,
        block_cache_bytes: config.block_cache_bytes as u64,
    })
}
