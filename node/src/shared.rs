//! State shared between the HTTP API (tokio tasks) and the engine thread: the mempool,
//! who waits for which transaction, recent rejections and counters. Implements the
//! API's [`Backend`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{SystemTime, UNIX_EPOCH};

use ebill_api::{AdmissionCode, Backend, NodeMetrics, Rejection, Role, TxOutcome, TxStatus};
use ebill_engine::mempool::{Insert, Mempool, lock};
use ebill_engine::verify::{available_cores, preverify_parallel};
use ebill_ledger::{Context, ErrorCode, Executor, Prepared, TxError, TxLocation};
use ebill_store::Store;
use ebill_types::checkpoint::{Added, Checkpoint, CheckpointBook, Cosignature};
use ebill_types::{Actor, Auth, CreditCode, Genesis, PublicKey, Signature, SignedTx, TxId};
use tokio::sync::oneshot;

use crate::engine::ToEngine;
use crate::network::{Outbound, OutboundQueue};

/// Where transactions come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client of this node's API: admitted ones are gossiped to the other nodes.
    Client,
    /// Another node's gossip: admitted here, not gossiped again.
    Peer,
}

/// Rejections remembered for `GET /v1/txs/{id}`.
const MAX_REMEMBERED_REJECTIONS: usize = 100_000;
/// Watched transactions above which abandoned waiters are swept.
const MAX_WATCHED_TXS: usize = 100_000;
/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Recent rejections, the least recently asked about or remembered going first.
struct Rejections {
    by_id: lru::LruCache<TxId, Rejection>,
}

impl Default for Rejections {
    fn default() -> Self {
        Self {
            by_id: lru::LruCache::new(
                std::num::NonZeroUsize::new(MAX_REMEMBERED_REJECTIONS)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            ),
        }
    }
}

impl Rejections {
    fn remember(&mut self, id: TxId, r: Rejection) {
        self.by_id.put(id, r);
    }
}

/// The node's shared state.
pub struct Shared {
    genesis: Genesis,
    store: Arc<dyn Store>,
    role: Role,
    /// Admitted transactions waiting for a block.
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    watchers: Mutex<HashMap<TxId, Vec<oneshot::Sender<TxOutcome>>>>,
    rejections: Mutex<Rejections>,
    rejection_counts: Mutex<BTreeMap<String, u64>>,
    committed_txs: AtomicU64,
    height: AtomicU64,
    syncing: AtomicBool,
    peers: AtomicU64,
    engine: Mutex<Option<mpsc::Sender<ToEngine>>>,
    network: Mutex<Option<Arc<OutboundQueue>>>,
    /// The libp2p client, for its counters.
    net_client: Mutex<Option<ebill_net::Client>>,
    /// The engine's consensus counters, published after each of its steps.
    consensus_stats: Mutex<Option<ebill_consensus::Stats>>,
    /// Witnesses' co-signatures of checkpoints, and conflicts.
    checkpoints: Mutex<CheckpointBook>,
    /// This node's own latest co-signature, if it is a witness (re-sent now and then).
    own_cosignature: Mutex<Option<(Checkpoint, Cosignature)>>,
    /// The height of the last final block, for the audit stream's waiters.
    commits: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Shared state over an opened store.
    pub fn new(
        genesis: Genesis,
        store: Arc<dyn Store>,
        role: Role,
        mempool: Arc<Mutex<Mempool>>,
    ) -> Self {
        let height = store.tip().ok().flatten().map(|t| t.height).unwrap_or(0);
        Self {
            store,
            role,
            mempool,
            watchers: Mutex::new(HashMap::new()),
            rejections: Mutex::new(Rejections::default()),
            rejection_counts: Mutex::new(BTreeMap::new()),
            committed_txs: AtomicU64::new(0),
            height: AtomicU64::new(height),
            syncing: AtomicBool::new(false),
            peers: AtomicU64::new(0),
            engine: Mutex::new(None),
            network: Mutex::new(None),
            net_client: Mutex::new(None),
            consensus_stats: Mutex::new(None),
            checkpoints: Mutex::new(CheckpointBook::new(&genesis)),
            own_cosignature: Mutex::new(None),
            genesis,
            commits: tokio::sync::watch::Sender::new(height),
        }
    }

    /// Keeps a ledger refusal of a bill's lifecycle transaction in the store's bounded
    /// refused-transaction log, the evidence of the audit rules on repeated attempts. A
    /// log that cannot be written costs only that evidence: it is logged, not fatal.
    fn log_refused(&self, tx: &SignedTx, id: TxId, e: &TxError) {
        let body = &tx.tx.body;
        let Some(bill) = body.bill_id() else {
            return;
        };
        let unit = match body.actor() {
            Actor::Unit(u) => Some(u),
            _ => None,
        };
        let refused = ebill_store::index::RefusedTx {
            time_ms: wall_ms(),
            tx_id: id,
            kind: body.kind(),
            bill: Some(bill),
            unit,
            code: e.code.as_str().to_owned(),
            message: ebill_store::index::truncate_to(
                &e.message,
                ebill_store::index::MAX_REFUSED_MESSAGE_BYTES,
            ),
        };
        if let Err(err) = self.store.refused_append(&refused) {
            tracing::warn!(error = %err, "cannot keep a refused transaction in the audit log");
        }
    }

    /// Connects the engine's input, so that admission can wake it.
    pub fn connect_engine(&self, tx: mpsc::Sender<ToEngine>) {
        *lock(&self.engine) = Some(tx);
    }

    /// Connects the libp2p client, whose counters `/metrics` shows.
    pub fn connect_net_client(&self, client: ebill_net::Client) {
        *lock(&self.net_client) = Some(client);
    }

    /// The engine's consensus counters after its last step.
    pub(crate) fn set_consensus_stats(&self, stats: Option<ebill_consensus::Stats>) {
        *lock(&self.consensus_stats) = stats;
    }

    /// Connects the network, so that admitted transactions reach the other nodes.
    pub fn connect_network(&self, out: Arc<OutboundQueue>) {
        *lock(&self.network) = Some(out);
    }

    /// Transactions gossiped by another node: admitted like a client's, not gossiped
    /// again. Rejections are counted, and otherwise dropped: nobody waits for them here.
    pub fn admit_from_peer(&self, txs: Vec<SignedTx>) {
        // An observer keeps no mempool: other nodes' transactions are the validators'
        // business, and checking them here would only burn a core.
        if self.role == Role::Observer {
            return;
        }
        let _ = self.admit(txs, Origin::Peer);
    }

    fn wake_engine(&self) {
        if let Some(tx) = lock(&self.engine).as_ref() {
            // The engine may have stopped (shutdown); then nobody needs waking.
            let _ = tx.send(ToEngine::Input(ebill_engine::Input::TxsAdded));
        }
    }

    fn reject(&self, id: Option<TxId>, r: Rejection) -> Rejection {
        *lock(&self.rejection_counts)
            .entry(r.code.as_str().to_owned())
            .or_insert(0) += 1;
        if let Some(id) = id {
            lock(&self.rejections).remember(id, r.clone());
        }
        r
    }

    /// Called by the engine after a block is stored: resolves watchers and counters.
    pub(crate) fn on_committed(&self, height: u64, ids: &[TxId]) {
        self.height.store(height, Ordering::Release);
        self.commits.send_replace(height);
        self.committed_txs
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        let mut watchers = lock(&self.watchers);
        for (i, id) in ids.iter().enumerate() {
            if let Some(ws) = watchers.remove(id) {
                let at = TxLocation::in_block(height, i);
                for w in ws {
                    let _ = w.send(TxOutcome::Committed(at));
                }
            }
        }
    }

    /// Called by the engine host after a block is stored: its checkpoint is final here.
    pub(crate) fn note_final(&self, checkpoint: &Checkpoint) {
        let mut book = lock(&self.checkpoints);
        let before = book.conflicts().len();
        book.note_final(checkpoint);
        if book.conflicts().len() > before {
            tracing::error!(
                height = checkpoint.height,
                "CONFLICT: a witness co-signed another block than the one final here"
            );
        }
    }

    /// This node's own co-signature, as a witness: kept, and re-sent now and then.
    pub(crate) fn on_own_cosignature(&self, checkpoint: Checkpoint, cosig: Cosignature) {
        self.on_cosignature(&checkpoint, &cosig);
        *lock(&self.own_cosignature) = Some((checkpoint, cosig));
    }

    /// This node's latest co-signature, if it is a witness that signed one.
    pub fn own_cosignature(&self) -> Option<(Checkpoint, Cosignature)> {
        lock(&self.own_cosignature).clone()
    }

    /// A witness's co-signature from the network (or this node's own): verified and
    /// kept; a conflict it makes is logged and kept as evidence.
    pub fn on_cosignature(&self, checkpoint: &Checkpoint, cosig: &Cosignature) {
        match lock(&self.checkpoints).add(checkpoint, cosig) {
            Ok(Added::Conflict) => tracing::error!(
                height = checkpoint.height,
                block = %checkpoint.block_hash,
                witness = %cosig.key_id,
                "CONFLICT: two blocks at one height are co-signed or final"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(height = checkpoint.height, "co-signature refused: {e}"),
        }
    }

    /// Called by the engine when it drops a waiting transaction that no longer applies.
    pub(crate) fn on_dropped(&self, id: TxId, r: Rejection) {
        let r = self.reject(Some(id), r);
        if let Some(ws) = lock(&self.watchers).remove(&id) {
            for w in ws {
                let _ = w.send(TxOutcome::Rejected(r.clone()));
            }
        }
    }

    /// Height of the last final block.
    pub fn height(&self) -> u64 {
        self.height.load(Ordering::Acquire)
    }

    /// Marks whether the node is catching up.
    pub fn set_syncing(&self, syncing: bool) {
        self.syncing.store(syncing, Ordering::Relaxed);
    }

    /// Sets the number of connected peers.
    pub fn set_peers(&self, peers: usize) {
        self.peers.store(peers as u64, Ordering::Relaxed);
    }

    /// Admission: format, limits, duplicates, signatures (on every core for a
    /// large batch) and the ledger's rules against the last final state.
    fn admit(&self, txs: Vec<SignedTx>, origin: Origin) -> Vec<Result<TxId, Rejection>> {
        let chain_id = self.genesis.chain_id.as_str();
        let max_tx_bytes = self.genesis.params.max_tx_bytes as usize;
        let mut out: Vec<Option<Result<TxId, Rejection>>> = vec![None; txs.len()];
        // Each transaction is encoded and hashed once, here, for every step below.
        let prepared: Vec<Prepared<'_>> = Prepared::all(&txs, chain_id);
        let mut todo: Vec<usize> = Vec::with_capacity(txs.len());
        {
            let mempool = lock(&self.mempool);
            for (i, p) in prepared.iter().enumerate() {
                let len = p.encoded.len();
                if len > max_tx_bytes {
                    out[i] = Some(Err(self.reject(
                        Some(p.id),
                        Rejection::from(TxError::new(
                            ErrorCode::InvalidTx,
                            format!("transaction is {len} bytes, over the limit of {max_tx_bytes}"),
                        )),
                    )));
                } else if mempool.contains(&p.id) {
                    out[i] = Some(Ok(p.id));
                } else {
                    todo.push(i);
                }
            }
        }
        let view: &dyn Store = self.store.as_ref();
        let todo_refs: Vec<&Prepared<'_>> = todo.iter().map(|&i| &prepared[i]).collect();
        let verified = match preverify_parallel(view, &self.genesis, &todo_refs, available_cores())
        {
            Ok(v) => v,
            Err(e) => return self.all_failed(out, &prepared, &todo, &e),
        };
        let tip = match self.store.tip() {
            Ok(t) => t,
            Err(e) => return self.all_failed(out, &prepared, &todo, &e),
        };
        let ctx = Context {
            genesis: &self.genesis,
            height: tip.map(|t| t.height).unwrap_or(0) + 1,
            time_ms: wall_ms(),
        };
        // First the rules, against the last final state plus what this batch applies;
        // then the mempool, which takes the transactions themselves (moved, not copied).
        let mut exec = Executor::new(view, ctx).with_verified(&verified);
        let mut keys = UnitKeys::default();
        // (index, id, canonical length, signatures verified) of each that applies.
        let mut passed = Vec::new();
        for &i in &todo {
            let p = &prepared[i];
            match exec.apply_prepared(p) {
                Err(e) => {
                    out[i] = Some(Err(self.reject(Some(p.id), state_unreadable(&e))));
                }
                Ok(Err(e)) => {
                    self.log_refused(p.tx, p.id, &e);
                    out[i] = Some(Err(self.reject(Some(p.id), Rejection::from(e))));
                }
                // An observer keeps no mempool, so it needs no signature cache.
                Ok(Ok(_)) if self.role == Role::Observer => {
                    passed.push((i, p.id, p.encoded.len(), Vec::new()));
                }
                Ok(Ok(_)) => passed.push((
                    i,
                    p.id,
                    p.encoded.len(),
                    keys.admitted(p.tx, view, &self.genesis),
                )),
            }
        }
        drop(exec);
        drop(prepared);
        let mut slots: Vec<Option<SignedTx>> = txs.into_iter().map(Some).collect();
        let mut added = false;
        let mut gossip: Vec<SignedTx> = Vec::new();
        let forward_only = self.role == Role::Observer;
        for (i, id, len, sigs) in passed {
            let Some(tx) = slots[i].take() else {
                continue;
            };
            let result = if forward_only {
                // An observer takes part in no block: it checks, then forwards.
                gossip.push(tx);
                Ok(id)
            } else {
                let copy = (origin == Origin::Client).then(|| tx.clone());
                match lock(&self.mempool).insert(id, Arc::new(tx), len, sigs) {
                    Insert::Added => {
                        added = true;
                        gossip.extend(copy);
                        Ok(id)
                    }
                    Insert::AlreadyPending => Ok(id),
                    Insert::Full => Err(self.reject(
                        Some(id),
                        Rejection::admission(
                            AdmissionCode::MempoolFull,
                            "the mempool is full; try again after the next block",
                        ),
                    )),
                }
            };
            out[i] = Some(result);
        }
        if added {
            self.wake_engine();
        }
        if !gossip.is_empty()
            && let Some(out) = lock(&self.network).as_ref()
        {
            out.send(Outbound::Txs(gossip));
        }
        answers(out)
    }

    fn all_failed(
        &self,
        mut out: Vec<Option<Result<TxId, Rejection>>>,
        prepared: &[Prepared<'_>],
        todo: &[usize],
        why: &dyn std::fmt::Display,
    ) -> Vec<Result<TxId, Rejection>> {
        let r = state_unreadable(why);
        for &i in todo {
            out[i] = Some(Err(self.reject(Some(prepared[i].id), r.clone())));
        }
        answers(out)
    }
}

/// Every slot answered: each was filled on every path of admission, so an empty one is
/// a bug, answered as `internal` rather than dropped.
fn answers(out: Vec<Option<Result<TxId, Rejection>>>) -> Vec<Result<TxId, Rejection>> {
    out.into_iter()
        .map(|r| {
            debug_assert!(r.is_some(), "an admission slot was left unanswered");
            r.unwrap_or_else(|| {
                Err(Rejection::admission(
                    AdmissionCode::Internal,
                    "internal error: no answer",
                ))
            })
        })
        .collect()
}

/// A store that could not be read during admission: the node's failure, not the
/// transaction's. Logged in full; the client is told only that it failed inside.
fn state_unreadable(detail: &dyn std::fmt::Display) -> Rejection {
    tracing::error!(%detail, "admission could not read the state");
    Rejection::admission(
        AdmissionCode::Internal,
        "internal error: the state could not be read",
    )
}

/// The keys of acting units, read once per admission batch.
#[derive(Default)]
struct UnitKeys(HashMap<CreditCode, Option<PublicKey>>);

impl UnitKeys {
    /// The (key, signature) pairs that admission verified for `tx`, for the block
    /// builder's signature cache.
    fn admitted(
        &mut self,
        tx: &SignedTx,
        view: &dyn Store,
        genesis: &Genesis,
    ) -> Vec<(PublicKey, Signature)> {
        match (&tx.auth, tx.tx.body.actor()) {
            (Auth::Unit(sig), Actor::Unit(code)) => {
                let key = *self
                    .0
                    .entry(code)
                    .or_insert_with(|| view.unit(&code).ok().flatten().map(|u| u.public_key));
                key.map(|k| vec![(k, *sig)]).unwrap_or_default()
            }
            (Auth::Regulators(sigs), Actor::Regulators) => {
                // The set in force, as admission checked it.
                let regulators = match view.find_governance() {
                    Ok(Some(g)) => g.regulators,
                    Ok(None) => genesis.regulators.clone(),
                    Err(_) => return Vec::new(),
                };
                sigs.iter()
                    .filter_map(|s| {
                        regulators
                            .keys
                            .get(usize::from(s.index))
                            .map(|r| (r.public_key, s.signature))
                    })
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

impl Backend for Shared {
    fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn submit(&self, txs: Vec<SignedTx>) -> Vec<Result<TxId, Rejection>> {
        if self.role == Role::Observer && lock(&self.network).is_none() {
            return txs
                .iter()
                .map(|_| {
                    Err(Rejection::admission(
                        AdmissionCode::NotAValidator,
                        "this observer has no network to forward transactions on",
                    ))
                })
                .collect();
        }
        self.admit(txs, Origin::Client)
    }

    fn watch(&self, id: TxId) -> oneshot::Receiver<TxOutcome> {
        let (tx, rx) = oneshot::channel();
        let mut watchers = lock(&self.watchers);
        // Checked under the watchers lock: the engine stores a block before it takes this
        // lock to resolve watchers, so a commit is seen either here or there.
        match self.store.tx_location(&id) {
            Ok(Some(loc)) => {
                let _ = tx.send(TxOutcome::Committed(loc));
            }
            _ => {
                let rejected = lock(&self.rejections).by_id.get(&id).cloned();
                if let Some(r) = rejected.filter(|_| !lock(&self.mempool).contains(&id)) {
                    let _ = tx.send(TxOutcome::Rejected(r));
                    return rx;
                }
                // Waiters whose request gave up (timeout, closed connection) are
                // dropped here once there are many, so that transactions that never
                // resolve (forwarded by an observer and refused elsewhere) cannot grow
                // this map without bound.
                if watchers.len() >= MAX_WATCHED_TXS {
                    watchers.retain(|_, ws| {
                        ws.retain(|w| !w.is_closed());
                        !ws.is_empty()
                    });
                }
                watchers.entry(id).or_default().push(tx);
            }
        }
        rx
    }

    fn tx_status(&self, id: &TxId) -> TxStatus {
        if let Ok(Some(loc)) = self.store.tx_location(id) {
            return TxStatus::Committed(loc);
        }
        if lock(&self.mempool).contains(id) {
            return TxStatus::Pending;
        }
        match lock(&self.rejections).by_id.get(id) {
            Some(r) => TxStatus::Rejected(r.clone()),
            None => TxStatus::Unknown,
        }
    }

    fn role(&self) -> Role {
        self.role
    }

    fn commit_watch(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.commits.subscribe())
    }

    fn peers(&self) -> usize {
        usize::try_from(self.peers.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    fn syncing(&self) -> bool {
        self.syncing.load(Ordering::Relaxed)
    }

    fn metrics(&self) -> NodeMetrics {
        NodeMetrics {
            height: self.height.load(Ordering::Acquire),
            committed_txs: self.committed_txs.load(Ordering::Relaxed),
            mempool_txs: lock(&self.mempool).len() as u64,
            rejections: lock(&self.rejection_counts).clone(),
            dropped: self.dropped_counts(),
            net: self.net_counts(),
            consensus: self.consensus_counts(),
        }
    }

    fn cosignatures(&self, checkpoint: &Checkpoint) -> Vec<Cosignature> {
        lock(&self.checkpoints).cosignatures(checkpoint)
    }

    fn checkpoints(&self) -> ebill_api::CheckpointsView {
        let book = lock(&self.checkpoints);
        ebill_api::CheckpointsView {
            latest: book.latest_cosigned(),
            conflicts: book.conflicts().to_vec(),
            conflicts_dropped: book.conflicts_dropped,
        }
    }
}

impl Shared {
    fn net_stats(&self) -> Option<ebill_net::NetStats> {
        lock(&self.net_client).as_ref().map(|c| c.stats())
    }

    fn dropped_counts(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        if let Some(q) = lock(&self.network).as_ref() {
            m.insert("outbound_queue", q.dropped());
        }
        if let Some(s) = self.net_stats() {
            m.insert("net_events", s.events_dropped);
            m.insert("net_validations", s.validations_dropped);
            m.insert("net_inbound_requests", s.inbound_requests_dropped);
        }
        m
    }

    fn net_counts(&self) -> BTreeMap<&'static str, u64> {
        let Some(s) = self.net_stats() else {
            return BTreeMap::new();
        };
        BTreeMap::from([
            ("gossip_accepted", s.gossip_accepted),
            ("gossip_not_relayed", s.gossip_not_relayed),
            ("gossip_rejected", s.gossip_rejected),
            ("gossip_ignored", s.gossip_ignored),
            ("connections_denied", s.connections_denied),
            ("publish_duplicates", s.publish_duplicates),
        ])
    }

    fn consensus_counts(&self) -> BTreeMap<&'static str, u64> {
        let Some(s) = *lock(&self.consensus_stats) else {
            return BTreeMap::new();
        };
        BTreeMap::from([
            ("bad_signatures", s.bad_signatures),
            ("unknown_validators", s.unknown_validators),
            ("wrong_proposer", s.wrong_proposer),
            ("invalid_pol_round", s.invalid_pol_round),
            ("old_height", s.old_height),
            ("next_height_buffered", s.next_height_buffered),
            ("future_dropped", s.future_dropped),
            ("far_round", s.far_round),
            ("duplicates", s.duplicates),
            ("equivocations", s.equivocations),
            (
                "refused_conflicting_signatures",
                s.refused_conflicting_signatures,
            ),
            ("bad_certificates", s.bad_certificates),
            ("ignored_events", s.ignored_events),
        ])
    }
}
