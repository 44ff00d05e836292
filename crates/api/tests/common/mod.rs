//! A [`Backend`] over a `MemStore` with the dev genesis: every submitted transaction is
//! applied at once as a one-transaction block with a real commit certificate signed by
//! the dev validator. With `hold` set, transactions are admitted and left pending.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    dead_code
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use ebill_api::{Backend, NodeMetrics, Rejection, Role, TxOutcome, TxStatus};
use ebill_ledger::{BlockError, Context, ErrorCode, TxError, TxLocation, apply_block};
use ebill_store::{MemStore, Store};
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{Block, Genesis, Header, SignedTx, TxId};
use tokio::sync::oneshot;
use tower::ServiceExt;

pub struct TestBackend {
    genesis: Genesis,
    mem: Arc<MemStore>,
    store: Arc<dyn Store>,
    statuses: Mutex<HashMap<TxId, TxStatus>>,
    waiters: Mutex<HashMap<TxId, Vec<oneshot::Sender<TxOutcome>>>>,
    rejections: Mutex<BTreeMap<String, u64>>,
    commit_lock: Mutex<()>,
    /// Admit without committing (for timeouts).
    pub hold: AtomicBool,
    /// The keys of the genesis witnesses (regulators' observers), which co-sign every
    /// checkpoint asked for ([`TestBackend::with_witnesses`]).
    pub witness_keys: Vec<ebill_types::Keypair>,
}

impl TestBackend {
    pub fn new() -> Arc<Self> {
        Self::with_store(|mem| mem)
    }

    /// Like [`TestBackend::new`], with the API reading through `wrap(store)` (commits go
    /// to the `MemStore` itself).
    pub fn with_store(wrap: impl FnOnce(Arc<MemStore>) -> Arc<dyn Store>) -> Arc<Self> {
        Self::build(dev::dev_genesis(), Vec::new(), wrap)
    }

    /// The dev genesis with two regulators' observers (`dev_key("observer", 0 and 1)`),
    /// whose co-signatures of every checkpoint the backend holds.
    pub fn with_witnesses() -> Arc<Self> {
        let mut genesis = dev::dev_genesis();
        let keys: Vec<ebill_types::Keypair> = (0..2).map(|i| dev::dev_key("observer", i)).collect();
        genesis.observers = keys
            .iter()
            .enumerate()
            .map(|(i, k)| ebill_types::genesis::Observer {
                name: format!("witness-{i}"),
                public_key: k.public(),
                regulator: Some(genesis.regulators.keys[i].public_key),
            })
            .collect();
        genesis.validate().unwrap();
        Self::build(genesis, keys, |mem| mem)
    }

    fn build(
        genesis: Genesis,
        witness_keys: Vec<ebill_types::Keypair>,
        wrap: impl FnOnce(Arc<MemStore>) -> Arc<dyn Store>,
    ) -> Arc<Self> {
        let mem = Arc::new(MemStore::new());
        mem.init_genesis(&genesis).unwrap();
        let store: Arc<dyn Store> = wrap(mem.clone());
        Arc::new(Self {
            genesis,
            mem,
            store,
            statuses: Mutex::default(),
            waiters: Mutex::default(),
            rejections: Mutex::default(),
            commit_lock: Mutex::new(()),
            hold: AtomicBool::new(false),
            witness_keys,
        })
    }

    fn reject(&self, id: TxId, r: Rejection) -> Result<TxId, Rejection> {
        *self
            .rejections
            .lock()
            .unwrap()
            .entry(r.code.as_str().to_owned())
            .or_default() += 1;
        // A duplicate of a committed transaction leaves it committed.
        let mut statuses = self.statuses.lock().unwrap();
        if !matches!(statuses.get(&id), Some(TxStatus::Committed(_))) {
            statuses.insert(id, TxStatus::Rejected(r.clone()));
        }
        Err(r)
    }

    /// Applies and commits one transaction as its own block.
    fn commit_one(&self, tx: SignedTx) -> Result<TxId, Rejection> {
        let _guard = self.commit_lock.lock().unwrap();
        let chain_id = self.genesis.chain_id.clone();
        let id = tx.tx.id(&chain_id);
        let tip = self.mem.tip().unwrap();
        let height = tip.map_or(1, |t| t.height + 1);
        let prev_hash = tip.map_or_else(|| self.genesis.hash(), |t| t.hash);
        let time_ms = DEV_GENESIS_TIME_MS as u64 + height * 1000;
        let ctx = Context {
            genesis: &self.genesis,
            height,
            time_ms,
        };
        let txs = vec![tx];
        let changes = match apply_block(self.mem.as_ref(), ctx, &txs, None) {
            Ok(c) => c,
            Err(BlockError::Rejected { error, .. }) => return self.reject(id, error.into()),
            Err(e) => {
                return self.reject(id, TxError::new(ErrorCode::InvalidTx, e.to_string()).into());
            }
        };
        let header = Header {
            chain_id: chain_id.clone(),
            height,
            prev_hash,
            time_ms,
            proposer: 0,
            tx_root: Block::tx_root(&txs),
            tx_count: 1,
            validator_set_hash: self.genesis.validator_set().unwrap().hash(),
            state_root: ebill_store::state_update(self.mem.as_ref(), &changes)
                .unwrap()
                .root,
        };
        let hash = header.hash();
        let cert = ebill_types::dev::dev_certificate(&chain_id, height, hash);
        let block = Block { header, txs };
        self.mem.commit_block(&block, &cert, &changes).unwrap();
        let loc = TxLocation { height, index: 0 };
        self.statuses
            .lock()
            .unwrap()
            .insert(id, TxStatus::Committed(loc));
        for w in self.waiters.lock().unwrap().remove(&id).unwrap_or_default() {
            let _ = w.send(TxOutcome::Committed(loc));
        }
        Ok(id)
    }
}

impl Backend for TestBackend {
    fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    fn submit(&self, txs: Vec<SignedTx>) -> Vec<Result<TxId, Rejection>> {
        txs.into_iter()
            .map(|tx| {
                if self.hold.load(Ordering::SeqCst) {
                    let id = tx.tx.id(&self.genesis.chain_id);
                    self.statuses.lock().unwrap().insert(id, TxStatus::Pending);
                    Ok(id)
                } else {
                    self.commit_one(tx)
                }
            })
            .collect()
    }
    fn watch(&self, id: TxId) -> oneshot::Receiver<TxOutcome> {
        let (tx, rx) = oneshot::channel();
        match self.tx_status(&id) {
            TxStatus::Committed(loc) => {
                let _ = tx.send(TxOutcome::Committed(loc));
            }
            TxStatus::Rejected(r) => {
                let _ = tx.send(TxOutcome::Rejected(r));
            }
            TxStatus::Pending | TxStatus::Unknown => {
                self.waiters.lock().unwrap().entry(id).or_default().push(tx);
            }
        }
        rx
    }
    fn tx_status(&self, id: &TxId) -> TxStatus {
        self.statuses
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or(TxStatus::Unknown)
    }
    fn role(&self) -> Role {
        Role::Validator
    }
    fn cosignatures(
        &self,
        checkpoint: &ebill_types::checkpoint::Checkpoint,
    ) -> Vec<ebill_types::checkpoint::Cosignature> {
        self.witness_keys
            .iter()
            .map(|k| checkpoint.cosign(k))
            .collect()
    }
    fn checkpoints(&self) -> ebill_api::CheckpointsView {
        let latest = self.mem.tip().unwrap().and_then(|t| {
            let header = self.mem.header(t.height).unwrap()?;
            let checkpoint = ebill_types::checkpoint::Checkpoint::of(&header);
            let cosignatures = self.cosignatures(&checkpoint);
            (!cosignatures.is_empty()).then_some(ebill_types::checkpoint::CosignedCheckpoint {
                checkpoint,
                final_here: true,
                cosignatures,
            })
        });
        ebill_api::CheckpointsView {
            latest,
            ..Default::default()
        }
    }
    fn peers(&self) -> usize {
        0
    }
    fn syncing(&self) -> bool {
        false
    }
    fn metrics(&self) -> NodeMetrics {
        let statuses = self.statuses.lock().unwrap();
        NodeMetrics {
            height: self.mem.tip().unwrap().map_or(0, |t| t.height),
            committed_txs: statuses
                .values()
                .filter(|s| matches!(s, TxStatus::Committed(_)))
                .count() as u64,
            mempool_txs: statuses
                .values()
                .filter(|s| matches!(s, TxStatus::Pending))
                .count() as u64,
            rejections: self.rejections.lock().unwrap().clone(),
            ..NodeMetrics::default()
        }
    }
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a JSON error answer with this status and code; returns the error object.
    pub fn assert_error(&self, status: StatusCode, code: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.headers.get("content-type").unwrap(),
            "application/json",
            "body: {}",
            self.text()
        );
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "body: {}", self.text());
        assert!(v["error"]["message"].is_string(), "body: {}", self.text());
        v["error"].clone()
    }
}

pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    call(app, Method::GET, uri, None, Vec::new()).await
}

pub async fn post_json(app: &Router, uri: &str, body: impl Into<Vec<u8>>) -> Answer {
    call(
        app,
        Method::POST,
        uri,
        Some("application/json"),
        body.into(),
    )
    .await
}
