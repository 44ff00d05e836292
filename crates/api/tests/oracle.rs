//! No timing oracle for existence (issue 16, item 4): a lookup of a bill on chain with a
//! wrong check code and a lookup of a bill not on chain do the same store reads, with
//! the same outcomes (one hit, one miss, one record decoded), on every route that looks
//! bills up, the taxpayers' pages included. Times are measured by `scripts/timing_oracle.py`, not here: this test
//! pins the work, which is what the times follow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use common::{TestBackend, get, post_json};
use ebill_api::router;
use ebill_ledger::{BillRecord, StateError, StateView, TxLocation, UnitRecord};
use ebill_store::{MemStore, Store, StoreError, Tip};
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{
    BillId, Block, CommitCertificate, CreditCode, Genesis, Hash32, Header, SignedTx, Tx, TxBody,
    TxId,
};

/// A store that logs every read the API makes, with whether it found something.
struct LoggingStore {
    inner: Arc<MemStore>,
    log: Mutex<Vec<(&'static str, bool)>>,
}

impl LoggingStore {
    fn note<T>(&self, what: &'static str, r: &Result<Option<T>, StoreError>) {
        let found = matches!(r, Ok(Some(_)));
        self.log.lock().unwrap().push((what, found));
    }

    /// The reads since the last call, sorted (the order of two reads is not work).
    fn take(&self) -> Vec<(&'static str, bool)> {
        let mut v = std::mem::take(&mut *self.log.lock().unwrap());
        v.sort();
        v
    }
}

impl StateView for LoggingStore {
    fn bill(&self, id: &BillId) -> Result<Option<BillRecord>, StateError> {
        self.inner.bill(id)
    }
    fn unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StateError> {
        self.inner.unit(code)
    }
    fn tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StateError> {
        self.inner.tx_location(id)
    }
    fn governance(&self) -> Result<Option<ebill_ledger::GovState>, StateError> {
        self.inner.governance()
    }
    fn proposal(
        &self,
        id: &ebill_types::tx::ProposalId,
    ) -> Result<Option<ebill_ledger::ProposalRecord>, StateError> {
        self.inner.proposal(id)
    }
}

impl Store for LoggingStore {
    fn state_root(&self) -> Result<Hash32, StoreError> {
        self.inner.state_root()
    }
    fn prove_state(
        &self,
        key: &ebill_types::state_tree::StateKey,
    ) -> Result<ebill_types::state_tree::StateProof, StoreError> {
        self.inner.prove_state(key)
    }
    fn tree_change(
        &self,
        updates: &[ebill_types::state_tree::LeafUpdate],
    ) -> Result<ebill_types::state_store::TreeChange, StoreError> {
        self.inner.tree_change(updates)
    }
    fn init_genesis(&self, genesis: &Genesis) -> Result<(), StoreError> {
        self.inner.init_genesis(genesis)
    }
    fn genesis_hash(&self) -> Result<Option<Hash32>, StoreError> {
        self.inner.genesis_hash()
    }
    fn tip(&self) -> Result<Option<Tip>, StoreError> {
        self.inner.tip()
    }
    fn commit_block(
        &self,
        block: &Block,
        cert: &CommitCertificate,
        changes: &ebill_ledger::ChangeSet,
    ) -> Result<(), StoreError> {
        self.inner.commit_block(block, cert, changes)
    }
    fn header(&self, height: u64) -> Result<Option<Header>, StoreError> {
        let r = self.inner.header(height);
        self.note("header", &r);
        r
    }
    fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let r = self.inner.block(height);
        self.note("block", &r);
        r
    }
    fn height_of_block(&self, hash: &Hash32) -> Result<Option<u64>, StoreError> {
        self.inner.height_of_block(hash)
    }
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StoreError> {
        let r = self.inner.certificate(height);
        self.note("certificate", &r);
        r
    }
    fn tx(&self, id: &TxId) -> Result<Option<(SignedTx, TxLocation)>, StoreError> {
        let r = self.inner.tx(id);
        self.note("tx", &r);
        r
    }
    fn find_bill(&self, id: &BillId) -> Result<Option<BillRecord>, StoreError> {
        let r = self.inner.find_bill(id);
        self.note("find_bill", &r);
        r
    }
    fn find_unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StoreError> {
        let r = self.inner.find_unit(code);
        self.note("find_unit", &r);
        r
    }
    fn find_tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        let r = self.inner.find_tx_location(id);
        self.note("find_tx_location", &r);
        r
    }
    fn find_governance(&self) -> Result<Option<ebill_ledger::GovState>, StoreError> {
        self.inner.find_governance()
    }
    fn find_proposal(
        &self,
        id: &ebill_types::tx::ProposalId,
    ) -> Result<Option<ebill_ledger::ProposalRecord>, StoreError> {
        self.inner.find_proposal(id)
    }
    fn proposals(&self) -> Result<Vec<ebill_ledger::ProposalRecord>, StoreError> {
        self.inner.proposals()
    }
    fn units(&self) -> Result<Vec<UnitRecord>, StoreError> {
        self.inner.units()
    }
    fn wal_append(&self, height: u64, entry: &[u8]) -> Result<(), StoreError> {
        self.inner.wal_append(height, entry)
    }
    fn wal_entries(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.wal_entries(height)
    }
    fn index_scan(
        &self,
        index: ebill_store::index::Index,
        from: &[u8],
        until: Option<&[u8]>,
        visit: &mut ebill_store::index::EntryVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.inner.index_scan(index, from, until, visit)
    }
    fn index_get(
        &self,
        index: ebill_store::index::Index,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.index_get(index, key)
    }
    fn scan_bills(
        &self,
        keys: ebill_store::index::BillKeys<'_>,
        visit: &mut ebill_store::index::BillVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.inner.scan_bills(keys, visit)
    }
    fn scan_bill_runs(
        &self,
        runs: &mut [ebill_store::index::BillRun<'_>],
    ) -> Result<(), StoreError> {
        self.inner.scan_bill_runs(runs)
    }
    fn bill_splits(&self, parts: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.bill_splits(parts)
    }
    fn reindex(&self) -> Result<u64, StoreError> {
        self.inner.reindex()
    }
    fn refused_append(&self, refused: &ebill_store::index::RefusedTx) -> Result<(), StoreError> {
        self.inner.refused_append(refused)
    }
    fn refused_log(
        &self,
        visit: &mut dyn FnMut(&ebill_store::index::RefusedTx) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.inner.refused_log(visit)
    }
    fn wal_prune_below(&self, height: u64) -> Result<(), StoreError> {
        self.inner.wal_prune_below(height)
    }
    fn last_cosigned(&self) -> Result<Option<ebill_store::Cosigned>, StoreError> {
        self.inner.last_cosigned()
    }
    fn record_cosigned(&self, cosigned: ebill_store::Cosigned) -> Result<(), StoreError> {
        self.inner.record_cosigned(cosigned)
    }
    fn disk_size_bytes(&self) -> Result<u64, StoreError> {
        self.inner.disk_size_bytes()
    }
    fn compact(&self) -> Result<(), StoreError> {
        self.inner.compact()
    }
}

fn issue(number: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(number, 1250, DEV_GENESIS_TIME_MS)),
    }
    .sign_unit(dev::DEV_CHAIN_ID, &dev::dev_issuer_key())
}

#[tokio::test]
async fn wrong_check_code_and_unknown_bill_do_the_same_reads() {
    let log: Arc<Mutex<Option<Arc<LoggingStore>>>> = Arc::default();
    let slot = log.clone();
    let backend = TestBackend::with_store(move |mem| {
        let s = Arc::new(LoggingStore {
            inner: mem,
            log: Mutex::default(),
        });
        *slot.lock().unwrap() = Some(s.clone());
        s
    });
    let store = log.lock().unwrap().clone().unwrap();
    let app = router(backend.clone());

    let on_chain = issue(1);
    let a = post_json(&app, "/v1/txs", serde_json::to_vec(&on_chain).unwrap()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
    let file = on_chain.to_signed_bill().unwrap();
    let right = file.check_code;
    let wrong = if right.as_str() == "000000" {
        "000001"
    } else {
        "000000"
    };
    let unknown = issue(2).to_signed_bill().unwrap();
    let uri = |id: &BillId, cc: &str, proof: bool| {
        let tail = if proof { "/proof" } else { "" };
        format!("/v1/bills/{}/{}{tail}?check_code={cc}", id.code, id.number)
    };
    let mut wrong_file = file.clone();
    wrong_file.check_code = ebill_types::CheckCode::parse(wrong).unwrap();
    let mut unknown_file = unknown.clone();
    unknown_file.check_code = ebill_types::CheckCode::parse(wrong).unwrap();

    // Both kinds, interleaved, on the three routes.
    for round in 0..3 {
        for proof in [false, true] {
            store.take();
            let a = get(&app, &uri(&file.bill.id(), wrong, proof)).await;
            a.assert_error(StatusCode::NOT_FOUND, "bill_not_found");
            let wrong_reads = store.take();
            let b = get(&app, &uri(&unknown.bill.id(), wrong, proof)).await;
            b.assert_error(StatusCode::NOT_FOUND, "bill_not_found");
            let unknown_reads = store.take();
            assert_eq!(a.body, b.body);
            assert_eq!(
                wrong_reads, unknown_reads,
                "round {round}, proof route: {proof}; a wrong check code read \
                 {wrong_reads:?}, an unknown bill {unknown_reads:?}"
            );
            assert_eq!(wrong_reads, vec![("find_bill", false), ("find_bill", true)]);
        }
        // The taxpayers' pages: result, QR code and print routes.
        for tail in ["", "/qr.svg", "/print"] {
            let page = |id: &BillId| format!("/b/{}/{}/{wrong}{tail}", id.code, id.number);
            store.take();
            let a = get(&app, &page(&file.bill.id())).await;
            let wrong_reads = store.take();
            let b = get(&app, &page(&unknown.bill.id())).await;
            let unknown_reads = store.take();
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text());
            assert_eq!(b.status, StatusCode::NOT_FOUND);
            assert_eq!(
                a.text().replace(file.bill.number.as_str(), "N"),
                b.text().replace(unknown.bill.number.as_str(), "N"),
                "page {tail:?}"
            );
            assert_eq!(wrong_reads, unknown_reads, "round {round}, page {tail:?}");
            assert_eq!(wrong_reads, vec![("find_bill", false), ("find_bill", true)]);
        }
        store.take();
        let a = post_json(&app, "/v1/verify", serde_json::to_vec(&wrong_file).unwrap()).await;
        a.assert_error(StatusCode::NOT_FOUND, "bill_not_found");
        let wrong_reads = store.take();
        let b = post_json(
            &app,
            "/v1/verify",
            serde_json::to_vec(&unknown_file).unwrap(),
        )
        .await;
        b.assert_error(StatusCode::NOT_FOUND, "bill_not_found");
        let unknown_reads = store.take();
        assert_eq!(a.body, b.body);
        assert_eq!(wrong_reads, unknown_reads, "round {round}, verify route");
    }

    // The right check code still answers the verdict.
    let a = get(&app, &uri(&file.bill.id(), right.as_str(), false)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
}
