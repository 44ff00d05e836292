//! This machine's own limits, measured in the same run as the system: ed25519 one by one
//! and through `verify_many` in calls of 256 on one core, synced RocksDB batch writes,
//! SHA-256, cores.

use std::time::Instant;

use ebill_types::keys::verify_many;
use ebill_types::{Keypair, PublicKey, Signature};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `limits` section of the report.
#[derive(Serialize, Clone, Debug)]
pub struct Limits {
    pub verify_per_s_one_core: f64,
    /// Signatures per second through `verify_many`, the path every node takes. The key
    /// keeps its name from when that was a batch check; since ADR 0003's revision it is
    /// `verify_strict` each, with each distinct key decompressed once per call.
    pub batch_verify_per_s_one_core: f64,
    pub rocksdb_sync_writes_per_s: f64,
    pub sha256_mb_per_s: f64,
    pub cores: usize,
}

fn signed_messages(n: usize) -> Vec<(PublicKey, Vec<u8>, Signature)> {
    // Transaction-sized messages (an IssueBill's signing bytes are ~350 bytes).
    (0..n)
        .map(|i| {
            let key = Keypair::from_seed([(i % 251) as u8; 32]);
            let msg: Vec<u8> = (0..350).map(|j| ((i * 31 + j) % 256) as u8).collect();
            let sig = key.sign(&msg);
            (key.public(), msg, sig)
        })
        .collect()
}

/// Measures everything; `quick` uses fewer samples.
pub fn measure(quick: bool) -> anyhow::Result<Limits> {
    let n = if quick { 2_048 } else { 8_192 };
    let items = signed_messages(n);

    let start = Instant::now();
    let mut ok = 0usize;
    for (k, m, s) in &items {
        ok += usize::from(k.verify(m, s).is_ok());
    }
    let single = n as f64 / start.elapsed().as_secs_f64();
    anyhow::ensure!(ok == n, "single verification failed");

    let start = Instant::now();
    let mut ok = 0usize;
    for chunk in items.chunks(256) {
        let refs: Vec<(&PublicKey, &[u8], &Signature)> =
            chunk.iter().map(|(k, m, s)| (k, m.as_slice(), s)).collect();
        ok += verify_many(&refs).into_iter().filter(|b| *b).count();
    }
    let batch = n as f64 / start.elapsed().as_secs_f64();
    anyhow::ensure!(ok == n, "verify_many failed");

    let data = vec![0xa5u8; 1024 * 1024];
    let mb = if quick { 64 } else { 256 };
    let start = Instant::now();
    let mut h = Sha256::new();
    for _ in 0..mb {
        h.update(&data);
    }
    let digest = h.finalize();
    let sha = f64::from(mb) / start.elapsed().as_secs_f64();
    anyhow::ensure!(digest.len() == 32, "sha256");

    let dir = tempfile::tempdir()?;
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let db = rocksdb::DB::open(&opts, dir.path())?;
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    let writes = if quick { 300 } else { 1_000 };
    let value = vec![0x5au8; 600];
    let start = Instant::now();
    for i in 0u32..writes {
        let mut batch = rocksdb::WriteBatch::default();
        batch.put(i.to_be_bytes(), &value);
        db.write_opt(batch, &wo)?;
    }
    let sync_writes = f64::from(writes) / start.elapsed().as_secs_f64();

    Ok(Limits {
        verify_per_s_one_core: single,
        batch_verify_per_s_one_core: batch,
        rocksdb_sync_writes_per_s: sync_writes,
        sha256_mb_per_s: sha,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    })
}
