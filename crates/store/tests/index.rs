//! The audit indexes: written with each block, for both stores the same, and rebuilt
//! by `reindex` to exactly what the commits left; and the bounded refused-transaction
//! log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeMap;

use common::{bill_id, expected_bills, genesis, small_history};
use ebill_store::index::{self, Index, MAX_REFUSED_LOG, RefusedTx};
use ebill_store::{MemStore, RocksStore, Store};
use ebill_types::dev::{dev_issuer_code, dev_reimburser_code};
use ebill_types::{Hash32, TxKind};

type Snapshot = BTreeMap<Index, Vec<(Vec<u8>, Vec<u8>)>>;

/// Every entry of every audit index.
fn snapshot(store: &dyn Store) -> Snapshot {
    let mut out = Snapshot::new();
    for i in Index::ALL {
        let mut entries = Vec::new();
        store
            .index_scan(i, &[], None, &mut |k, v| {
                entries.push((k.to_vec(), v.to_vec()));
                Ok(true)
            })
            .unwrap();
        out.insert(i, entries);
    }
    out
}

fn keys_of(s: &Snapshot, i: Index) -> Vec<Vec<u8>> {
    s[&i].iter().map(|(k, _)| k.clone()).collect()
}

/// What the small history must leave in the indexes, checked entry by entry.
fn check_contents(store: &dyn Store, history: &[common::Committed]) {
    let s = snapshot(store);
    let bills = expected_bills(history);
    assert_eq!(bills.len(), 15);
    assert_eq!(s[&Index::Facts].len(), bills.len());
    assert_eq!(s[&Index::IssuerTime].len(), bills.len());
    assert_eq!(s[&Index::Kind].len(), bills.len());
    // One status key per bill: the one it has now (old ones deleted).
    let mut want_status: Vec<Vec<u8>> = bills
        .values()
        .map(|r| index::status_key(index::status_tag(&r.status), &r.id))
        .collect();
    want_status.sort();
    assert_eq!(keys_of(&s, Index::Status), want_status);
    // Bill 1 locked then reimbursed, 2 locked, unlocked, locked, 3 locked, 5 reimbursed.
    let mut want_reimb: Vec<Vec<u8>> = [1, 2, 3, 5]
        .iter()
        .map(|n| index::reimburser_key(&dev_reimburser_code(), &bill_id(*n)))
        .collect();
    want_reimb.sort();
    assert_eq!(keys_of(&s, Index::Reimburser), want_reimb);
    for r in bills.values() {
        let t = r.history[0].time_ms;
        let facts = store.bill_facts(&r.id).unwrap().unwrap();
        assert!(
            s[&Index::IssuerTime]
                .iter()
                .any(|(k, _)| *k == index::issuer_time_key(&dev_issuer_code(), t, &r.id))
        );
        assert!(
            s[&Index::Kind]
                .iter()
                .any(|(k, _)| *k == index::kind_key(facts.kind, t, &r.id))
        );
    }
    // The issuer index is in time order: bills 1..=10 (block 1) before 11..=15.
    let ordered: Vec<_> = s[&Index::IssuerTime]
        .iter()
        .map(|(k, _)| index::bill_of_key(k).unwrap())
        .collect();
    let pos = |n| ordered.iter().position(|b| *b == bill_id(n)).unwrap();
    assert!((1..=10).all(|n| (11..=15).all(|m| pos(n) < pos(m))));
    // scan_bills: every bill with its facts, in key order, once.
    let mut seen = Vec::new();
    store
        .scan_bills(index::BillKeys::ALL, &mut |rec, facts| {
            assert_eq!(Some(*facts), store.bill_facts(&rec.id).unwrap());
            assert_eq!(Some(rec), bills.get(&rec.id));
            seen.push(rec.id.key());
            Ok(true)
        })
        .unwrap();
    assert_eq!(seen.len(), bills.len());
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    runs_cover_every_bill_once(store, &seen);
}

/// The runs that `bill_splits` cuts the bills into visit, one after the other, exactly
/// the bills one whole scan visits (`all`, their keys in order).
fn runs_cover_every_bill_once(store: &dyn Store, all: &[[u8; 18]]) {
    for parts in [1, 2, 3, 4, 16] {
        let splits = store.bill_splits(parts).unwrap();
        assert!(
            splits.len() < parts.max(1),
            "{parts} parts: {} splits",
            splits.len()
        );
        assert!(splits.windows(2).all(|w| w[0] < w[1]));
        let mut seen = Vec::new();
        for run in index::BillKeys::runs(&splits) {
            store
                .scan_bills(run, &mut |rec, _| {
                    seen.push(rec.id.key());
                    Ok(true)
                })
                .unwrap();
        }
        assert_eq!(seen, all, "{parts} parts");
    }
}

fn rebuild_is_identical<S: Store>(store: &S) -> Vec<common::Committed> {
    let g = genesis();
    store.init_genesis(&g).unwrap();
    let history = small_history(store, &g);
    check_contents(store, &history);
    let committed = snapshot(store);
    assert_eq!(store.reindex().unwrap(), 15);
    assert_eq!(snapshot(store), committed, "reindex rebuilt other contents");
    check_contents(store, &history);
    history
}

#[test]
fn mem_reindex_rebuilds_identical_contents() {
    rebuild_is_identical(&MemStore::new());
}

#[test]
fn rocks_reindex_rebuilds_identical_contents_and_matches_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (rocks_snapshot, history) = {
        let store = RocksStore::open(&path).unwrap();
        let history = rebuild_is_identical(&store);
        (snapshot(&store), history)
    };
    // Both stores index the same history identically.
    let mem = MemStore::new();
    mem.init_genesis(&genesis()).unwrap();
    small_history(&mem, &genesis());
    assert_eq!(snapshot(&mem), rocks_snapshot);
    // And the indexes survive a reopen (which writes the bills to a table file, so
    // that `bill_splits` reads them from the files).
    let store = RocksStore::open(&path).unwrap();
    assert_eq!(snapshot(&store), rocks_snapshot);
    check_contents(&store, &history);
}

fn refused(n: u64) -> RefusedTx {
    RefusedTx {
        time_ms: n,
        tx_id: Hash32::digest(&n.to_be_bytes()),
        kind: TxKind::ConfirmReimbursed,
        bill: Some(bill_id(1)),
        unit: Some(dev_reimburser_code()),
        code: "bill_locked".to_owned(),
        message: index::truncate_to(&"锁".repeat(200), index::MAX_REFUSED_MESSAGE_BYTES),
    }
}

fn log_of(store: &dyn Store) -> Vec<RefusedTx> {
    let mut out = Vec::new();
    store
        .refused_log(&mut |r| {
            out.push(r.clone());
            Ok(true)
        })
        .unwrap();
    out
}

#[test]
fn refused_log_is_bounded_and_persistent() {
    let mem = MemStore::new();
    for n in 0..MAX_REFUSED_LOG + 3 {
        mem.refused_append(&refused(n)).unwrap();
    }
    let log = log_of(&mem);
    assert_eq!(log.len() as u64, MAX_REFUSED_LOG);
    assert_eq!(log[0].time_ms, 3, "the oldest are dropped first");
    assert!(log[0].message.len() <= index::MAX_REFUSED_MESSAGE_BYTES);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = RocksStore::open(&path).unwrap();
        for n in 0..5 {
            store.refused_append(&refused(n)).unwrap();
        }
    }
    let store = RocksStore::open(&path).unwrap();
    store.refused_append(&refused(5)).unwrap();
    let log = log_of(&store);
    assert_eq!(
        log.iter().map(|r| r.time_ms).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5],
        "appends after a reopen continue the log"
    );
    assert_eq!(log[5], refused(5));
}
