//! The store contract, written once over [`Store`] and run for [`RocksStore`] and
//! [`MemStore`]; then what only a store on disk can show: reopening, refusing a
//! different genesis or layout, and reporting corrupt bytes as errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{Committed, assert_committed, commit_next, genesis, issue_tx, next_block};
use ebill_ledger::StateView;
use ebill_store::{MemStore, RocksStore, Store, StoreError, Tip, cf};
use ebill_types::dev::dev_genesis_with;
use ebill_types::{CommitCertificate, Hash32};

fn rocks() -> (tempfile::TempDir, RocksStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path().join("db")).unwrap();
    (dir, store)
}

// ---- the contract, for any store ----

fn reads_return_what_was_committed<S: Store>(store: &S) {
    let g = genesis();
    assert_eq!(store.genesis_hash().unwrap(), None);
    store.init_genesis(&g).unwrap();
    store.init_genesis(&g).unwrap(); // idempotent
    assert_eq!(store.tip().unwrap(), None);
    assert_committed(store, &g, &[]);
    let history = common::small_history(store, &g);
    assert_committed(store, &g, &history);

    // The status history of a bill is complete: bill 2 was issued, locked, unlocked,
    // locked again.
    let rec = store.find_bill(&common::bill_id(2)).unwrap().unwrap();
    let actions: Vec<&str> = rec.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions, ["issue_bill", "lock", "unlock", "lock"]);
    assert_eq!(rec.status.as_str(), "locked");
    assert_eq!(
        store
            .find_bill(&common::bill_id(1))
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "reimbursed"
    );
}

fn refuses_what_does_not_extend_the_tip<S: Store>(store: &S) {
    let g = genesis();
    let chain = g.chain_id.as_str();
    // Built over a scratch store: this one has no genesis yet.
    let scratch = MemStore::new();
    scratch.init_genesis(&g).unwrap();
    let b1 = next_block(
        &scratch,
        &g,
        vec![issue_tx(chain, 1, common::block_time_ms(1))],
    );
    assert_eq!(
        store.commit_block(&b1.block, &b1.cert, &b1.changes),
        Err(StoreError::NoGenesis)
    );
    store.init_genesis(&g).unwrap();
    assert_eq!(
        store.init_genesis(&dev_genesis_with("ebill-other", 1)),
        Err(StoreError::GenesisMismatch {
            stored: g.hash(),
            given: dev_genesis_with("ebill-other", 1).hash(),
        })
    );

    // Height 1 must name the genesis as its previous block.
    let mut wrong_prev = b1.clone();
    wrong_prev.block.header.prev_hash = Hash32([9; 32]);
    wrong_prev.cert = common::certify(&g, &wrong_prev.block.header);
    assert!(matches!(
        store.commit_block(&wrong_prev.block, &wrong_prev.cert, &wrong_prev.changes),
        Err(StoreError::NotNext { tip: 0, got: 1, .. })
    ));
    // Height 2 before height 1.
    let mut too_high = b1.clone();
    too_high.block.header.height = 2;
    too_high.cert = common::certify(&g, &too_high.block.header);
    assert!(matches!(
        store.commit_block(&too_high.block, &too_high.cert, &too_high.changes),
        Err(StoreError::NotNext { tip: 0, got: 2, .. })
    ));
    // A certificate of another block.
    let other_cert = CommitCertificate {
        block: Hash32([1; 32]),
        ..b1.cert.clone()
    };
    assert!(matches!(
        store.commit_block(&b1.block, &other_cert, &b1.changes),
        Err(StoreError::Inconsistent(_))
    ));
    // Changes of another length.
    let mut short = b1.changes.clone();
    short.txs.clear();
    assert!(matches!(
        store.commit_block(&b1.block, &b1.cert, &short),
        Err(StoreError::Inconsistent(_))
    ));
    assert_eq!(store.tip().unwrap(), None, "a refusal writes nothing");
    assert_eq!(store.header(1).unwrap(), None);

    store
        .commit_block(&b1.block, &b1.cert, &b1.changes)
        .unwrap();
    // The same block again, and a fork of height 1, no longer extend the tip.
    assert!(matches!(
        store.commit_block(&b1.block, &b1.cert, &b1.changes),
        Err(StoreError::NotNext { tip: 1, got: 1, .. })
    ));
    let b2 = next_block(
        store,
        &g,
        vec![issue_tx(chain, 2, common::block_time_ms(2))],
    );
    let mut fork = b2.clone();
    fork.block.header.prev_hash = Hash32([3; 32]);
    fork.cert = common::certify(&g, &fork.block.header);
    assert!(matches!(
        store.commit_block(&fork.block, &fork.cert, &fork.changes),
        Err(StoreError::NotNext { tip: 1, got: 2, .. })
    ));
    store
        .commit_block(&b2.block, &b2.cert, &b2.changes)
        .unwrap();
    assert_committed(store, &g, &[b1, b2]);
}

fn write_ahead_log<S: Store>(store: &S) {
    assert!(store.wal_entries(5).unwrap().is_empty());
    store.wal_append(5, b"prevote").unwrap();
    store.wal_append(6, b"proposal").unwrap();
    store.wal_append(5, b"precommit").unwrap();
    store.wal_append(5, b"").unwrap();
    assert_eq!(
        store.wal_entries(5).unwrap(),
        vec![b"prevote".to_vec(), b"precommit".to_vec(), Vec::new()]
    );
    assert_eq!(store.wal_entries(6).unwrap(), vec![b"proposal".to_vec()]);
    store.wal_prune_below(6).unwrap();
    assert!(store.wal_entries(5).unwrap().is_empty());
    assert_eq!(store.wal_entries(6).unwrap(), vec![b"proposal".to_vec()]);
    store.wal_append(6, b"prevote").unwrap();
    assert_eq!(
        store.wal_entries(6).unwrap(),
        vec![b"proposal".to_vec(), b"prevote".to_vec()]
    );
    store.wal_append(u64::MAX, b"last").unwrap();
    assert_eq!(store.wal_entries(u64::MAX).unwrap(), vec![b"last".to_vec()]);
}

#[test]
fn mem_reads_return_what_was_committed() {
    reads_return_what_was_committed(&MemStore::new());
}

#[test]
fn rocks_reads_return_what_was_committed() {
    let (_dir, store) = rocks();
    reads_return_what_was_committed(&store);
}

#[test]
fn mem_refuses_what_does_not_extend_the_tip() {
    refuses_what_does_not_extend_the_tip(&MemStore::new());
}

#[test]
fn rocks_refuses_what_does_not_extend_the_tip() {
    let (_dir, store) = rocks();
    refuses_what_does_not_extend_the_tip(&store);
}

#[test]
fn mem_write_ahead_log() {
    write_ahead_log(&MemStore::new());
}

#[test]
fn rocks_write_ahead_log() {
    let (_dir, store) = rocks();
    write_ahead_log(&store);
}

#[test]
fn a_witness_record_survives_close_and_reopen_and_is_checked() {
    use ebill_store::Cosigned;
    assert_eq!(MemStore::new().last_cosigned(), Ok(None));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let signed = Cosigned {
        height: 42,
        hash: Hash32([9; 32]),
    };
    {
        let store = RocksStore::open(&path).unwrap();
        assert_eq!(store.last_cosigned(), Ok(None));
        store.record_cosigned(signed).unwrap();
        assert_eq!(store.last_cosigned(), Ok(Some(signed)));
    }
    {
        let store = RocksStore::open(&path).unwrap();
        assert_eq!(store.last_cosigned(), Ok(Some(signed)));
    }
    // A record of the wrong length is corrupt, not a panic.
    {
        let db = raw_db(&path);
        let meta = db.cf_handle(cf::META).unwrap();
        db.put_cf(meta, b"last_cosigned", [1u8; 7]).unwrap();
    }
    let store = RocksStore::open(&path).unwrap();
    assert!(matches!(
        store.last_cosigned(),
        Err(StoreError::Corrupt { .. })
    ));
}

// ---- on disk only ----

#[test]
fn everything_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let g = genesis();
    let mut history: Vec<Committed>;
    {
        let store = RocksStore::open(&path).unwrap();
        store.init_genesis(&g).unwrap();
        history = common::small_history(&store, &g);
        store.wal_append(4, b"vote").unwrap();
    }
    {
        let store = RocksStore::open(&path).unwrap();
        assert_committed(&store, &g, &history);
        assert_eq!(store.wal_entries(4).unwrap(), vec![b"vote".to_vec()]);
        store.init_genesis(&g).unwrap();
        assert!(matches!(
            store.init_genesis(&dev_genesis_with("ebill-other", 1)),
            Err(StoreError::GenesisMismatch { .. })
        ));
        // The chain goes on after a reopen.
        let chain = g.chain_id.as_str();
        history.push(commit_next(
            &store,
            &g,
            vec![issue_tx(chain, 100, common::block_time_ms(4))],
        ));
        store.compact().unwrap();
    }
    let store = RocksStore::open(&path).unwrap();
    assert_committed(&store, &g, &history);
    assert_eq!(
        store.tip().unwrap().map(|t| t.height),
        Some(4),
        "tip after reopen"
    );
    assert!(store.disk_size_bytes().unwrap() > 0);
}

fn raw_db(path: &std::path::Path) -> rocksdb::DB {
    RocksStore::open_raw(path).unwrap()
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let g = genesis();
    let history = {
        let store = RocksStore::open(&path).unwrap();
        store.init_genesis(&g).unwrap();
        common::small_history(&store, &g)
    };
    let tx_of_block2 = history[1].changes.txs[0];
    let tx_of_block3 = history[2].changes.txs[1];
    let bill7_leaf = ebill_types::state_tree::StateKey::Bill(common::bill_id(7)).hash();
    let bill8_leaf = ebill_types::state_tree::StateKey::Bill(common::bill_id(8)).hash();
    {
        let db = raw_db(&path);
        let put = |family: &str, key: &[u8], value: &[u8]| {
            db.put_cf(db.cf_handle(family).unwrap(), key, value)
                .unwrap();
        };
        put(cf::BILLS, &common::bill_id(7).key(), b"\x00garbage");
        // The leaves record of bill 7's bucket, `l` ‖ bucket (u24 BE) -> 64-byte leaves:
        // cut short.
        let bucket = ebill_types::state_store::position(&bill7_leaf, ebill_store::TREE_CUT);
        let mut leaves_key = vec![b'l'];
        leaves_key.extend_from_slice(&bucket.to_be_bytes()[1..]);
        let mut record = bill7_leaf.0.to_vec();
        record.push(0x07);
        put(cf::STATE_TREE, &leaves_key, &record);
        // A merge operand of bill 8's bucket that is not whole leaves: the store's
        // merge operator refuses to fold it.
        let bucket8 = ebill_types::state_store::position(&bill8_leaf, ebill_store::TREE_CUT);
        let mut leaves8 = vec![b'l'];
        leaves8.extend_from_slice(&bucket8.to_be_bytes()[1..]);
        db.merge_cf(db.cf_handle(cf::STATE_TREE).unwrap(), &leaves8, [0x08; 63])
            .unwrap();
        put(cf::BLOCKS, &1u64.to_be_bytes(), b"not a header");
        put(cf::CERTIFICATES, &2u64.to_be_bytes(), &[0xff; 3]);
        put(cf::TX_INDEX, &tx_of_block2.0, &[0; 5]);
        put(cf::BLOCK_INDEX, &history[2].block.header.hash().0, &[1]);
        // Block 3 loses a transaction; its index entry now points nowhere.
        let mut key = 3u64.to_be_bytes().to_vec();
        key.extend_from_slice(&1u32.to_be_bytes());
        db.delete_cf(db.cf_handle(cf::BLOCK_TXS).unwrap(), &key)
            .unwrap();
        // A unit record with a trailing byte.
        let unit = ebill_types::dev::dev_issuer_code();
        let mut rec = db
            .get_cf(db.cf_handle(cf::UNITS).unwrap(), unit.as_bytes())
            .unwrap()
            .unwrap();
        rec.push(0);
        put(cf::UNITS, unit.as_bytes(), &rec);
    }
    let store = RocksStore::open(&path).unwrap();
    let corrupt = |r: StoreError, key: &str| match r {
        StoreError::Corrupt { what, .. } => assert!(what.starts_with(key), "{what} vs {key}"),
        other => panic!("expected Corrupt for {key}, got {other:?}"),
    };
    corrupt(
        store.find_bill(&common::bill_id(7)).unwrap_err(),
        "bills/33010126/0000000007",
    );
    assert!(store.bill(&common::bill_id(7)).is_err(), "StateView too");
    corrupt(
        store
            .prove_state(&ebill_types::state_tree::StateKey::Bill(common::bill_id(7)))
            .unwrap_err(),
        "state_tree/",
    );
    corrupt(
        store
            .prove_state(&ebill_types::state_tree::StateKey::Bill(common::bill_id(8)))
            .unwrap_err(),
        "state_tree/leaves",
    );
    corrupt(store.header(1).unwrap_err(), "blocks/1");
    corrupt(store.block(1).unwrap_err(), "blocks/1");
    corrupt(store.certificate(2).unwrap_err(), "certificates/2");
    corrupt(store.tx(&tx_of_block2).unwrap_err(), "tx_index/");
    assert!(store.tx_location(&tx_of_block2).is_err());
    corrupt(
        store
            .height_of_block(&history[2].block.header.hash())
            .unwrap_err(),
        "block_index/",
    );
    corrupt(store.block(3).unwrap_err(), "block_txs/3");
    corrupt(store.tx(&tx_of_block3).unwrap_err(), "tx_index/");
    corrupt(
        store
            .find_unit(&ebill_types::dev::dev_issuer_code())
            .unwrap_err(),
        "units/",
    );
    // What is intact still reads.
    assert_eq!(store.block(2).unwrap().as_ref(), Some(&history[1].block));
    assert_eq!(
        store.tip().unwrap(),
        Some(Tip {
            height: 3,
            hash: history[2].block.header.hash()
        })
    );
    drop(store);

    // A damaged tip, or a tip whose block is missing, refuses to open.
    {
        let db = raw_db(&path);
        db.put_cf(db.cf_handle(cf::META).unwrap(), b"tip", [1, 2, 3])
            .unwrap();
    }
    assert!(matches!(
        RocksStore::open(&path),
        Err(StoreError::Corrupt { what, .. }) if what == "meta/tip"
    ));
    {
        let db = raw_db(&path);
        let mut tip = 9u64.to_be_bytes().to_vec();
        tip.extend_from_slice(&[0; 32]);
        db.put_cf(db.cf_handle(cf::META).unwrap(), b"tip", tip)
            .unwrap();
    }
    assert!(matches!(
        RocksStore::open(&path),
        Err(StoreError::Corrupt { what, .. }) if what == "meta/tip"
    ));
    // Another layout version.
    {
        let db = raw_db(&path);
        db.put_cf(
            db.cf_handle(cf::META).unwrap(),
            b"format_version",
            99u32.to_be_bytes(),
        )
        .unwrap();
    }
    assert!(matches!(
        RocksStore::open(&path),
        Err(StoreError::UnsupportedFormat {
            found: 99,
            expected: ebill_store::FORMAT_VERSION
        })
    ));
}

/// The state tree of a `RocksStore` gives the same roots and proofs as a `MemStore`'s
/// (cut at depth 8), with its buckets at the default depth (each leaf alone in its
/// bucket here), at depth 2 (several leaves a bucket, proofs below the cut) and at 0
/// (one bucket), and again after a reopen (the top rebuilt from the bucket records,
/// the depth read from the store, not from the configuration).
#[test]
fn the_state_tree_matches_across_stores_and_survives_reopen() {
    use ebill_types::state_tree::StateKey;
    let g = genesis();
    let mem = MemStore::new();
    mem.init_genesis(&g).unwrap();
    let mem_history = common::small_history(&mem, &g);
    let keys: Vec<StateKey> = (1..=20)
        .map(|n| StateKey::Bill(common::bill_id(n)))
        .chain([
            StateKey::Regulators,
            StateKey::Unit(ebill_types::dev::dev_issuer_code()),
        ])
        .collect();
    for cut in [ebill_store::TREE_CUT, 2, 0] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let config = ebill_store::RocksConfig {
                tree_cut: cut,
                ..ebill_store::RocksConfig::default()
            };
            let store = RocksStore::open_with(&path, &config).unwrap();
            store.init_genesis(&g).unwrap();
            let history = common::small_history(&store, &g);
            for (a, b) in history.iter().zip(&mem_history) {
                assert_eq!(
                    a.block.header.state_root, b.block.header.state_root,
                    "block {} with a cut at {cut}",
                    a.block.header.height
                );
            }
            for k in &keys {
                assert_eq!(store.prove_state(k).unwrap(), mem.prove_state(k).unwrap());
            }
        }
        let store = RocksStore::open(&path).unwrap();
        assert_eq!(store.state_root().unwrap(), mem.state_root().unwrap());
        for k in &keys {
            assert_eq!(store.prove_state(k).unwrap(), mem.prove_state(k).unwrap());
        }
        // A bucket's leaves are merge operands until a flush or compaction folds them
        // (ADR 0017): the same proofs once they are folded.
        store.compact().unwrap();
        for k in &keys {
            assert_eq!(store.prove_state(k).unwrap(), mem.prove_state(k).unwrap());
        }
    }
}
