//! A process killed between (or during) commits loses nothing committed.
//!
//! This test binary plays two roles. As the parent it starts itself again
//! (`std::env::current_exe()`) with `EBILL_STORE_CRASH_CHILD=<data dir>`; the child
//! opens a [`RocksStore`] there and commits blocks in a loop, printing
//! `committed <height>` after each `commit_block` returns. The parent reads those
//! lines, sends SIGKILL after some of them, reopens the store and checks that every
//! height the child reported is there and complete, and that nothing of a later block
//! is (a block is all there or not at all). Three rounds on the same directory: each
//! child continues the chain from the tip it finds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ebill_store::{RocksStore, Store, cf};
use ebill_types::{Block, SignedTx};

const CHILD_ENV: &str = "EBILL_STORE_CRASH_CHILD";
const TEST_NAME: &str = "killed_child_loses_nothing_committed";
/// Bills per block: big enough that a kill often lands inside a commit.
const BILLS_PER_BLOCK: u64 = 400;
/// Blocks the parent waits for before each kill.
const COMMITS_PER_ROUND: u64 = 12;
const ROUNDS: usize = 3;
/// The whole test, all rounds.
const DEADLINE: Duration = Duration::from_secs(180);

/// The transactions of block `height`: the same in every process.
fn block_txs(chain_id: &str, height: u64) -> Vec<SignedTx> {
    let time = common::block_time_ms(height);
    (0..BILLS_PER_BLOCK)
        .map(|i| common::issue_tx(chain_id, height * 10_000 + i, time))
        .collect()
}

/// The child: commit blocks forever (until killed), reporting each. The next block is
/// built before the report, so that the commit of the next block starts right after
/// it: the parent's SIGKILL then mostly lands inside `commit_block`.
fn child(dir: &Path) {
    let g = common::genesis();
    let store = RocksStore::open(dir).unwrap();
    store.init_genesis(&g).unwrap();
    let first = store.tip().unwrap().map_or(1, |t| t.height + 1);
    let mut next = common::next_block(&store, &g, block_txs(&g.chain_id, first));
    loop {
        let height = next.block.header.height;
        store
            .commit_block(&next.block, &next.cert, &next.changes)
            .unwrap();
        next = common::next_block(&store, &g, block_txs(&g.chain_id, height + 1));
        // stdout is line-buffered: the line leaves the process with the newline.
        println!("committed {height}");
    }
}

/// Checks the store after a kill: every block up to the tip complete, nothing beyond.
fn check_after_kill(dir: &Path, reported: u64) -> u64 {
    let g = common::genesis();
    let validators = g.validator_set().unwrap();
    let store = RocksStore::open(dir).unwrap();
    let tip = store.tip().unwrap().expect("a tip after reported commits");
    assert!(
        tip.height >= reported,
        "the child reported height {reported} committed, the store's tip is {}",
        tip.height
    );
    let mut prev = g.hash();
    for h in 1..=tip.height {
        let block: Block = store
            .block(h)
            .unwrap()
            .unwrap_or_else(|| panic!("block {h} missing"));
        let hash = block.header.hash();
        assert_eq!(block.header.prev_hash, prev, "chain broken at {h}");
        assert_eq!(block.check_body(), Ok(()), "body of block {h}");
        assert_eq!(block.txs, block_txs(&g.chain_id, h), "transactions of {h}");
        let cert = store.certificate(h).unwrap().expect("certificate");
        cert.verify(&g.chain_id, h, &hash, &validators).unwrap();
        assert_eq!(store.height_of_block(&hash).unwrap(), Some(h));
        for (i, tx) in block.txs.iter().enumerate() {
            let id = tx.tx.id(&g.chain_id);
            let (stored, loc) = store.tx(&id).unwrap().expect("indexed");
            assert_eq!(&stored, tx);
            assert_eq!((loc.height, loc.index as usize), (h, i));
            let bill = match &tx.tx.body {
                ebill_types::TxBody::IssueBill(b) => b.id(),
                _ => unreachable!(),
            };
            let rec = store.find_bill(&bill).unwrap().expect("bill record");
            assert_eq!(rec.issue_tx(), id);
            assert_eq!(rec.issue_height(), h);
        }
        prev = hash;
    }
    let next = tip.height + 1;
    assert_eq!(store.header(next).unwrap(), None);
    assert_eq!(store.certificate(next).unwrap(), None);
    for i in 0..BILLS_PER_BLOCK {
        let id = common::bill_id(next * 10_000 + i);
        assert_eq!(store.find_bill(&id).unwrap(), None, "bill of block {next}");
    }
    drop(store);
    // Below the store's reads: no transaction of a later block in the raw column.
    let db = RocksStore::open_raw(dir).unwrap();
    let mut it = db.raw_iterator_cf(db.cf_handle(cf::BLOCK_TXS).unwrap());
    it.seek_to_last();
    let last = it.key().expect("transactions stored");
    let last_height = u64::from_be_bytes(last[..8].try_into().unwrap());
    assert_eq!(last_height, tip.height, "transactions beyond the tip");
    tip.height
}

#[test]
fn killed_child_loses_nothing_committed() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let exe = std::env::current_exe().unwrap();
    let mut tip = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, recv) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness may print its own text in front of the first line.
                if let Some((_, h)) = line.rsplit_once("committed ")
                    && send.send(h.trim().parse::<u64>().unwrap()).is_err()
                {
                    break;
                }
            }
        });
        let mut reported = tip;
        while reported < tip + COMMITS_PER_ROUND {
            let left = DEADLINE.saturating_sub(started.elapsed());
            match recv.recv_timeout(left) {
                Ok(h) => {
                    assert_eq!(h, reported + 1, "heights are reported in order");
                    reported = h;
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!("round {round}: child stopped reporting after height {reported}: {e}");
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines the child printed before it died count as reported too.
        reader.join().unwrap();
        while let Ok(h) = recv.try_recv() {
            reported = h;
        }
        tip = check_after_kill(&dir, reported);
        eprintln!("round {round}: killed after height {reported}, store tip {tip}");
    }
    assert!(tip >= ROUNDS as u64 * COMMITS_PER_ROUND);
}
