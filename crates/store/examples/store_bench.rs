//! The ledger and store benchmark (issue 2): in one process,
//!
//! 1. ledger apply (`ebill_ledger::apply_block`, signatures pre-verified and not
//!    timed) plus `RocksStore::commit_block`, blocks of 5,000 bills: bills per second;
//! 2. ed25519 signature checks of the same transactions on one core: the chain's rule
//!    (`ebill_types::keys::verify_many`, `verify_strict` each, in calls of 256), one by
//!    one, and for comparison ed25519-dalek's batch check, which the chain does not use
//!    because it accepts signatures `verify_strict` refuses (ADR 0003): signatures per
//!    second;
//! 3. bytes on disk per bill after a full compaction;
//! 4. point reads of bills and transactions by id (what verification queries do).
//!
//! Runs in any profile: `cargo run -p ebill-store --example store_bench` (dev profile:
//! dependencies at opt-level 3, our crates at 1) or `cargo bench -p ebill-store`
//! (release). Environment: `EBILL_BENCH_BILLS` (default 100000), `EBILL_BENCH_DIR`
//! (default a temporary directory).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ebill_ledger::{Context, apply_block, preverify};
use ebill_store::{MemStore, RocksStore, Store};
use ebill_types::dev::{DEV_GENESIS_TIME_MS, dev_genesis, dev_issuer_key};
use ebill_types::keys::verify_many;
use ebill_types::{Block, Header, PublicKey, Signature, SignedTx, Tx, TxBody};

const BILLS_PER_BLOCK: usize = 5_000;
const BATCH: usize = 256;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn per_s(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// This thread's time on a CPU and time waiting for one (runnable, but another process
/// had the core), in ns, from `/proc/thread-self/schedstat`; zeros where unavailable.
fn schedstat_ns() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap_or(0));
    (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
}

/// Time spent in a phase: wall clock, and the part of it this thread waited for a CPU
/// held by another process. On a shared machine, wall minus that wait is what the
/// phase costs when it has a core to itself (fsync waits stay in it).
#[derive(Clone, Copy, Default)]
struct Meter {
    wall: Duration,
    runqueue_wait: Duration,
}

impl Meter {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (_, wait0) = schedstat_ns();
        let t = Instant::now();
        let out = f();
        self.wall += t.elapsed();
        let (_, wait1) = schedstat_ns();
        self.runqueue_wait += Duration::from_nanos(wait1.saturating_sub(wait0));
        out
    }

    fn add(self, other: Meter) -> Meter {
        Meter {
            wall: self.wall + other.wall,
            runqueue_wait: self.runqueue_wait + other.runqueue_wait,
        }
    }

    fn own(&self) -> Duration {
        self.wall.saturating_sub(self.runqueue_wait)
    }

    /// "wall rate | rate without run-queue wait"
    fn rates(&self, n: usize, unit: &str) -> String {
        format!(
            "{:.0} {unit} | {:.0} {unit}",
            per_s(n, self.wall),
            per_s(n, self.own())
        )
    }
}

/// Runs the benchmark and prints its table.
pub fn main() {
    let bills = env_usize("EBILL_BENCH_BILLS", 100_000);
    let blocks = bills.div_ceil(BILLS_PER_BLOCK);
    let genesis = dev_genesis();
    let chain = genesis.chain_id.as_str();
    let validators = genesis.validator_set().unwrap();
    let profile = if cfg!(debug_assertions) {
        "dev (deps opt-level 3, ebill crates opt-level 1)"
    } else {
        "release"
    };
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "ebill store benchmark: {bills} bills in blocks of {BILLS_PER_BLOCK}, profile {profile}, load average {}",
        loadavg()
    );

    // ---- untimed preparation: signed transactions of every block ----
    let t = Instant::now();
    let issuer = dev_issuer_key();
    let block_time = |h: u64| u64::try_from(DEV_GENESIS_TIME_MS).unwrap() + h * 1000;
    let all_txs: Vec<Vec<SignedTx>> = (0..blocks)
        .map(|b| {
            let h = b as u64 + 1;
            let n = BILLS_PER_BLOCK.min(bills - b * BILLS_PER_BLOCK);
            (0..n)
                .map(|i| {
                    let number = (b * BILLS_PER_BLOCK + i + 1) as u64;
                    let bill = ebill_types::dev::sample_bill(
                        number,
                        1_000 + number % 10_000,
                        i64::try_from(block_time(h)).unwrap(),
                    );
                    Tx {
                        nonce: 0,
                        body: TxBody::IssueBill(bill),
                    }
                    .sign_unit(chain, &issuer)
                })
                .collect()
        })
        .collect();
    println!(
        "  (signed {bills} transactions in {:.1} s, untimed)",
        t.elapsed().as_secs_f64()
    );

    let tmp;
    let dir = match std::env::var("EBILL_BENCH_DIR") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().join("db")
        }
    };
    let store = RocksStore::open(&dir).unwrap();
    store.init_genesis(&genesis).unwrap();
    // The same state in memory, to tell the ledger's own cost from RocksDB reads.
    let mem = MemStore::new();
    mem.init_genesis(&genesis).unwrap();

    // ---- 1. apply + commit ----
    let mut apply_time = Meter::default();
    let mut mem_apply_time = Meter::default();
    let mut root_time = Meter::default();
    let mut commit_time = Meter::default();
    let mut prev = genesis.hash();
    let mut ids = Vec::with_capacity(bills);
    for (b, txs) in all_txs.iter().enumerate() {
        let height = b as u64 + 1;
        let verified = preverify(&store, &genesis, txs).unwrap();
        let ctx = Context {
            genesis: &genesis,
            height,
            time_ms: block_time(height),
        };
        let changes = apply_time.time(|| apply_block(&store, ctx, txs, Some(&verified)).unwrap());
        let mem_changes =
            mem_apply_time.time(|| apply_block(&mem, ctx, txs, Some(&verified)).unwrap());
        assert_eq!(mem_changes, changes);
        let tx_root = root_time.time(|| Block::tx_root(txs));
        let header = Header {
            chain_id: chain.to_owned(),
            height,
            prev_hash: prev,
            time_ms: block_time(height),
            proposer: validators.proposer(height, 0),
            tx_root,
            tx_count: u32::try_from(txs.len()).unwrap(),
            validator_set_hash: validators.hash(),
            state_root: ebill_store::state_update(&store, &changes).unwrap().root,
        };
        let hash = header.hash();
        let cert = ebill_types::dev::dev_certificate(chain, height, hash);
        ids.extend(changes.txs.iter().copied());
        let block = Block {
            header,
            txs: txs.clone(),
        };
        commit_time.time(|| store.commit_block(&block, &cert, &changes).unwrap());
        mem.commit_block(&block, &cert, &changes).unwrap();
        prev = hash;
    }

    // ---- 2. signatures, one core ----
    let msgs: Vec<(PublicKey, Vec<u8>, Signature)> = all_txs
        .iter()
        .flatten()
        .map(|stx| {
            let ebill_types::Auth::Unit(sig) = &stx.auth else {
                unreachable!()
            };
            (issuer.public(), stx.tx.signing_bytes(chain), *sig)
        })
        .collect();
    let batch_n = msgs.len().min(51_200);
    let mut batch_time = Meter::default();
    let ok = batch_time.time(|| {
        let mut ok = 0usize;
        for chunk in msgs[..batch_n].chunks(BATCH) {
            let items: Vec<(&PublicKey, &[u8], &Signature)> =
                chunk.iter().map(|(k, m, s)| (k, m.as_slice(), s)).collect();
            ok += verify_many(&items).into_iter().filter(|v| *v).count();
        }
        ok
    });
    assert_eq!(ok, batch_n);
    // The same signatures in ed25519-dalek's batch check: what the chain gave up for one
    // signature rule (ADR 0003). Not used anywhere else.
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&issuer.public().0).unwrap();
    let mut raw_batch_time = Meter::default();
    raw_batch_time.time(|| {
        for chunk in msgs[..batch_n].chunks(BATCH) {
            let m: Vec<&[u8]> = chunk.iter().map(|(_, m, _)| m.as_slice()).collect();
            let s: Vec<ed25519_dalek::Signature> = chunk
                .iter()
                .map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(&s.0))
                .collect();
            let k = vec![vk; chunk.len()];
            ed25519_dalek::verify_batch(&m, &s, &k).unwrap();
        }
    });
    let single_n = msgs.len().min(20_000);
    let mut single_time = Meter::default();
    single_time.time(|| {
        for (k, m, s) in &msgs[..single_n] {
            k.verify(m, s).unwrap();
        }
    });
    let pre_n = all_txs[0].len();
    let mut pre_time = Meter::default();
    let v = pre_time.time(|| preverify(&store, &genesis, &all_txs[0]).unwrap());
    assert_eq!(v.len(), pre_n);

    // ---- 4. point reads (before compaction: as a running node sees them) ----
    let reads = ids.len().min(100_000);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let pick: Vec<usize> = (0..reads)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % ids.len() as u64) as usize
        })
        .collect();
    let bill_ids: Vec<ebill_types::BillId> = pick
        .iter()
        .map(|&i| ebill_types::dev::sample_bill((i + 1) as u64, 1, 0).id())
        .collect();
    let mut bill_read_time = Meter::default();
    bill_read_time.time(|| {
        for id in &bill_ids {
            assert!(store.find_bill(id).unwrap().is_some());
        }
    });
    let mut tx_read_time = Meter::default();
    tx_read_time.time(|| {
        for &i in &pick {
            assert!(store.tx(&ids[i]).unwrap().is_some());
        }
    });

    // ---- 3. bytes on disk ----
    let t = Instant::now();
    store.compact().unwrap();
    let compact_time = t.elapsed();
    let disk = store.disk_size_bytes().unwrap();
    let sst = store.sst_size_bytes().unwrap();

    let total = apply_time.add(commit_time);
    let ms_per_block = |m: &Meter| m.own().as_secs_f64() * 1e3 / blocks as f64;
    println!();
    println!("| measurement | measured (wall) | without run-queue wait | target |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| ledger apply + store commit, blocks of {BILLS_PER_BLOCK} | {} | >= 100,000 bills/s |",
        total.rates(bills, "bills/s")
    );
    println!(
        "| - ledger apply over RocksStore ({:.1} ms/block) | {} | |",
        ms_per_block(&apply_time),
        apply_time.rates(bills, "bills/s")
    );
    println!(
        "| - store commit, one synced batch ({:.1} ms/block) | {} | |",
        ms_per_block(&commit_time),
        commit_time.rates(bills, "bills/s")
    );
    println!(
        "| (ledger apply over MemStore, for comparison, {:.1} ms/block) | {} | |",
        ms_per_block(&mem_apply_time),
        mem_apply_time.rates(bills, "bills/s")
    );
    println!(
        "| apply + tx Merkle root + commit | {} | |",
        total.add(root_time).rates(bills, "bills/s")
    );
    println!(
        "| ed25519 verify_many (verify_strict each, {BATCH} per call), 1 core | {} | >= 40,000 sig/s (batch; see ADR 0003) |",
        batch_time.rates(batch_n, "sig/s")
    );
    println!(
        "| ed25519-dalek verify_batch (not used: ADR 0003), 1 core | {} | |",
        raw_batch_time.rates(batch_n, "sig/s")
    );
    println!(
        "| ed25519 verify_strict one by one, 1 core | {} | (~17,000 sig/s) |",
        single_time.rates(single_n, "sig/s")
    );
    println!(
        "| ledger preverify of one block (signing bytes + verify_many) | {} | |",
        pre_time.rates(pre_n, "tx/s")
    );
    println!(
        "| bytes on disk per bill after full compaction | {:.0} B (SST files only: {:.0} B) | | < 1,024 B |",
        disk as f64 / bills as f64,
        sst as f64 / bills as f64
    );
    println!(
        "| point read: bill record by id | {} | (20,000 GET/s later) |",
        bill_read_time.rates(reads, "reads/s")
    );
    println!(
        "| point read: transaction by id (index + body) | {} | |",
        tx_read_time.rates(reads, "reads/s")
    );
    println!();
    println!(
        "  (database {:.1} MiB after compaction in {:.1} s; {blocks} blocks)",
        disk as f64 / (1024.0 * 1024.0),
        compact_time.as_secs_f64()
    );
    println!("  (load average at the end: {})", loadavg());
}
