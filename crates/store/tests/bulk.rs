//! 100,000 bills committed in blocks of 5,000 through the ledger, and read back (every
//! bill record and every transaction by id), after a close and reopen.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Instant;

use ebill_store::{RocksStore, Store};

const BILLS: u64 = 100_000;
const PER_BLOCK: u64 = 5_000;

#[test]
fn hundred_thousand_bills_committed_and_read_back() {
    let started = Instant::now();
    let g = common::genesis();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut history = Vec::new();
    {
        let store = RocksStore::open(&path).unwrap();
        store.init_genesis(&g).unwrap();
        for b in 0..BILLS / PER_BLOCK {
            let height = b + 1;
            let time = common::block_time_ms(height);
            let txs = (0..PER_BLOCK)
                .map(|i| common::issue_tx(&g.chain_id, b * PER_BLOCK + i + 1, time))
                .collect();
            history.push(common::commit_next(&store, &g, txs));
        }
    }
    let committed = started.elapsed();
    let store = RocksStore::open(&path).unwrap();
    let tip = store.tip().unwrap().unwrap();
    assert_eq!(tip.height, BILLS / PER_BLOCK);
    let mut bills = 0u64;
    for c in &history {
        let h = c.block.header.height;
        assert_eq!(store.header(h).unwrap().as_ref(), Some(&c.block.header));
        assert_eq!(store.certificate(h).unwrap().as_ref(), Some(&c.cert));
        for (i, (tx, id)) in c.block.txs.iter().zip(&c.changes.txs).enumerate() {
            let (stored, loc) = store.tx(id).unwrap().expect("transaction by id");
            assert_eq!(&stored, tx);
            assert_eq!((loc.height, loc.index as usize), (h, i));
        }
        for (id, rec) in &c.changes.bills {
            assert_eq!(store.find_bill(id).unwrap().as_ref(), Some(rec));
            bills += 1;
        }
    }
    assert_eq!(bills, BILLS);
    // Whole blocks read back too (the last one, 5,000 transactions).
    let last = history.last().unwrap();
    assert_eq!(store.block(tip.height).unwrap().as_ref(), Some(&last.block));
    eprintln!(
        "100,000 bills: built, signed and committed in {:.1} s, read back in {:.1} s",
        committed.as_secs_f64(),
        (started.elapsed() - committed).as_secs_f64()
    );
}
