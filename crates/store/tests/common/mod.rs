//! Shared helpers of the store tests: a chain of real, signed, certified blocks built
//! by the ledger over the store under test, and a checker that every read returns what
//! was committed.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::collections::BTreeMap;

use ebill_ledger::{BillRecord, ChangeSet, Context, apply_block, preverify};
use ebill_store::{Store, Tip};
use ebill_types::dev::{
    DEV_GENESIS_TIME_MS, dev_genesis, dev_issuer_code, dev_issuer_key, dev_reimburser_code,
    dev_reimburser_key, dev_validator_key, sample_bill,
};
use ebill_types::{
    BillId, Block, CheckCode, CommitCertificate, CommitSignature, Genesis, Hash32, Header,
    SignedTx, Tx, TxBody, Vote, VoteKind,
};

/// Everything committed for one block.
#[derive(Clone, Debug)]
pub struct Committed {
    pub block: Block,
    pub cert: CommitCertificate,
    pub changes: ChangeSet,
}

pub fn genesis() -> Genesis {
    dev_genesis()
}

/// Block time of `height`: one second per block after the genesis.
pub fn block_time_ms(height: u64) -> u64 {
    u64::try_from(DEV_GENESIS_TIME_MS).unwrap() + height * 1000
}

/// The IssueBill transaction of sample bill `number`, issued at `time_ms`.
pub fn issue_tx(chain_id: &str, number: u64, time_ms: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(sample_bill(
            number,
            1_000 + number % 10_000,
            i64::try_from(time_ms).unwrap(),
        )),
    }
    .sign_unit(chain_id, &dev_issuer_key())
}

/// The bill id of sample bill `number`.
pub fn bill_id(number: u64) -> BillId {
    sample_bill(number, 1, 0).id()
}

/// The check code of the bill issued by `issue`.
pub fn check_code_of(issue: &SignedTx) -> CheckCode {
    issue.to_signed_bill().unwrap().check_code
}

pub fn lock_tx(chain_id: &str, bill: BillId, check_code: CheckCode, nonce: u64) -> SignedTx {
    Tx {
        nonce,
        body: TxBody::Lock {
            unit: dev_reimburser_code(),
            bill,
            check_code,
        },
    }
    .sign_unit(chain_id, &dev_reimburser_key())
}

pub fn unlock_tx(chain_id: &str, bill: BillId, nonce: u64) -> SignedTx {
    Tx {
        nonce,
        body: TxBody::Unlock {
            unit: dev_reimburser_code(),
            bill,
        },
    }
    .sign_unit(chain_id, &dev_reimburser_key())
}

pub fn reimburse_tx(chain_id: &str, bill: BillId, check_code: CheckCode, nonce: u64) -> SignedTx {
    Tx {
        nonce,
        body: TxBody::ConfirmReimbursed {
            unit: dev_reimburser_code(),
            bill,
            check_code,
        },
    }
    .sign_unit(chain_id, &dev_reimburser_key())
}

pub fn reverse_tx(chain_id: &str, bill: BillId, nonce: u64) -> SignedTx {
    Tx {
        nonce,
        body: TxBody::RedReverse {
            issuer: dev_issuer_code(),
            bill,
            reason: "wrong amount".to_owned(),
        },
    }
    .sign_unit(chain_id, &dev_issuer_key())
}

pub fn header(
    genesis: &Genesis,
    height: u64,
    prev_hash: Hash32,
    txs: &[SignedTx],
    state_root: Hash32,
) -> Header {
    let validators = genesis.validator_set().unwrap();
    Header {
        chain_id: genesis.chain_id.clone(),
        height,
        prev_hash,
        time_ms: block_time_ms(height),
        proposer: validators.proposer(height, 0),
        tx_root: Block::tx_root(txs),
        tx_count: u32::try_from(txs.len()).unwrap(),
        validator_set_hash: validators.hash(),
        state_root,
    }
}

/// A real commit certificate of the one dev validator.
pub fn certify(genesis: &Genesis, header: &Header) -> CommitCertificate {
    let block = header.hash();
    let vote = Vote {
        kind: VoteKind::Precommit,
        height: header.height,
        round: 0,
        block: Some(block),
        validator: 0,
    };
    let signed = vote.sign(&genesis.chain_id, &dev_validator_key());
    CommitCertificate {
        height: header.height,
        round: 0,
        block,
        signatures: vec![CommitSignature {
            validator: 0,
            signature: signed.signature,
        }],
    }
}

/// Executes `txs` as the next block over the committed state of `store` (signatures
/// batch-verified first) and returns what to commit; does not commit.
pub fn next_block<S: Store>(store: &S, genesis: &Genesis, txs: Vec<SignedTx>) -> Committed {
    let (height, prev) = match store.tip().unwrap() {
        Some(Tip { height, hash }) => (height + 1, hash),
        None => (1, store.genesis_hash().unwrap().unwrap()),
    };
    let verified = preverify(store, genesis, &txs).unwrap();
    let ctx = Context {
        genesis,
        height,
        time_ms: block_time_ms(height),
    };
    let changes = apply_block(store, ctx, &txs, Some(&verified)).unwrap();
    let root = ebill_store::state_update(store, &changes).unwrap().root;
    let header = header(genesis, height, prev, &txs, root);
    let cert = certify(genesis, &header);
    Committed {
        block: Block { header, txs },
        cert,
        changes,
    }
}

/// Builds and commits the next block.
pub fn commit_next<S: Store>(store: &S, genesis: &Genesis, txs: Vec<SignedTx>) -> Committed {
    let c = next_block(store, genesis, txs);
    store.commit_block(&c.block, &c.cert, &c.changes).unwrap();
    c
}

/// A short history with every kind of bill change: 3 blocks.
/// Block 1 issues bills 1..=10; block 2 locks 1, 2, 3, reverses 4 and issues 11..=15;
/// block 3 reimburses 1 (locked) and 5 (open), unlocks 2 and locks it again.
pub fn small_history<S: Store>(store: &S, genesis: &Genesis) -> Vec<Committed> {
    let chain = genesis.chain_id.as_str();
    let issues: Vec<SignedTx> = (1..=10)
        .map(|n| issue_tx(chain, n, block_time_ms(1)))
        .collect();
    let cc = |n: u64| check_code_of(&issues[usize::try_from(n - 1).unwrap()]);
    let b1 = commit_next(store, genesis, issues.clone());
    let mut txs2 = vec![
        lock_tx(chain, bill_id(1), cc(1), 1),
        lock_tx(chain, bill_id(2), cc(2), 1),
        lock_tx(chain, bill_id(3), cc(3), 1),
        reverse_tx(chain, bill_id(4), 1),
    ];
    txs2.extend((11..=15).map(|n| issue_tx(chain, n, block_time_ms(2))));
    let b2 = commit_next(store, genesis, txs2);
    let txs3 = vec![
        reimburse_tx(chain, bill_id(1), cc(1), 2),
        reimburse_tx(chain, bill_id(5), cc(5), 2),
        unlock_tx(chain, bill_id(2), 2),
        lock_tx(chain, bill_id(2), cc(2), 3),
    ];
    let b3 = commit_next(store, genesis, txs3);
    vec![b1, b2, b3]
}

/// The bill records after `history`, folded from its change sets.
pub fn expected_bills(history: &[Committed]) -> BTreeMap<BillId, BillRecord> {
    let mut out = BTreeMap::new();
    for c in history {
        for (id, rec) in &c.changes.bills {
            out.insert(*id, rec.clone());
        }
    }
    out
}

/// Checks that every read of `store` returns what `history` committed (and nothing
/// past it), through the [`Store`] reads and the ledger's [`StateView`].
pub fn assert_committed<S: Store>(store: &S, genesis: &Genesis, history: &[Committed]) {
    assert_eq!(store.genesis_hash().unwrap(), Some(genesis.hash()));
    let last = history.last().map(|c| Tip {
        height: c.block.header.height,
        hash: c.block.header.hash(),
    });
    assert_eq!(store.tip().unwrap(), last);
    for c in history {
        let h = c.block.header.height;
        let hash = c.block.header.hash();
        assert_eq!(store.header(h).unwrap().as_ref(), Some(&c.block.header));
        assert_eq!(store.block(h).unwrap().as_ref(), Some(&c.block));
        assert_eq!(store.height_of_block(&hash).unwrap(), Some(h));
        assert_eq!(store.block_by_hash(&hash).unwrap().as_ref(), Some(&c.block));
        assert_eq!(store.certificate(h).unwrap().as_ref(), Some(&c.cert));
        for (i, (tx, id)) in c.block.txs.iter().zip(&c.changes.txs).enumerate() {
            let loc = ebill_ledger::TxLocation {
                height: h,
                index: u32::try_from(i).unwrap(),
            };
            assert_eq!(store.tx(id).unwrap(), Some((tx.clone(), loc)));
            assert_eq!(store.tx_location(id).unwrap(), Some(loc));
        }
    }
    for (id, rec) in expected_bills(history) {
        assert_eq!(store.find_bill(&id).unwrap().as_ref(), Some(&rec));
        assert_eq!(store.bill(&id).unwrap(), Some(rec));
    }
    for u in ebill_ledger::genesis_changes(genesis).units.values() {
        assert_eq!(store.unit(&u.credit_code).unwrap().as_ref(), Some(u));
    }
    let next = last.map_or(1, |t| t.height + 1);
    assert_eq!(store.header(next).unwrap(), None);
    assert_eq!(store.block(next).unwrap(), None);
    assert_eq!(store.certificate(next).unwrap(), None);
    assert_eq!(store.block(0).unwrap(), None);
    assert_eq!(store.tx(&Hash32([7; 32])).unwrap(), None);
    assert_eq!(store.bill(&bill_id(9_999_999)).unwrap(), None);
    assert_eq!(store.height_of_block(&Hash32([7; 32])).unwrap(), None);
}
