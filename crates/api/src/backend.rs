//! What a node offers the HTTP API. The node implements [`Backend`]; tests can implement
//! it over a `MemStore` without consensus.

use std::collections::BTreeMap;
use std::sync::Arc;

use ebill_ledger::{ErrorCode, TxError, TxLocation};
use ebill_store::Store;
use ebill_types::checkpoint::{Checkpoint, Conflict, Cosignature, CosignedCheckpoint};
use ebill_types::{Genesis, SignedTx, TxId};
use serde::Serialize;
use tokio::sync::oneshot;

/// A code the node itself gives a transaction, before or beside the ledger's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdmissionCode {
    /// The mempool holds as much as it may; try again after the next block.
    MempoolFull,
    /// An observer without a network cannot forward transactions.
    NotAValidator,
    /// Something failed inside the node (the store could not be read); not the
    /// transaction's fault.
    Internal,
}

impl AdmissionCode {
    /// Every code.
    pub const ALL: &'static [AdmissionCode] = &[
        AdmissionCode::MempoolFull,
        AdmissionCode::NotAValidator,
        AdmissionCode::Internal,
    ];

    /// The code's string, part of the public contract.
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionCode::MempoolFull => "mempool_full",
            AdmissionCode::NotAValidator => "not_a_validator",
            AdmissionCode::Internal => "internal",
        }
    }
}

/// The stable code of a refused transaction: one of the ledger's rules, or the node's
/// own. Typed end to end, so that the HTTP status of every code is decided by one
/// exhaustive match ([`crate::error::status_for_rejection`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// A ledger rule refused it.
    Ledger(ErrorCode),
    /// The node refused it (full, not ready, internal failure).
    Admission(AdmissionCode),
}

impl RejectCode {
    /// The code's string, part of the public contract (API, CLI, metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Ledger(c) => c.as_str(),
            RejectCode::Admission(c) => c.as_str(),
        }
    }
}

impl std::fmt::Display for RejectCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RejectCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a transaction was not admitted to the mempool, or was dropped from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Stable machine-readable code.
    pub code: RejectCode,
    /// Human message naming the facts.
    pub message: String,
}

impl Rejection {
    /// A refusal by the node itself.
    pub fn admission(code: AdmissionCode, message: impl Into<String>) -> Self {
        Self {
            code: RejectCode::Admission(code),
            message: message.into(),
        }
    }
}

impl From<TxError> for Rejection {
    fn from(e: TxError) -> Self {
        Self {
            code: RejectCode::Ledger(e.code),
            message: e.message,
        }
    }
}

/// What finally happened to an admitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// Committed in a final block.
    Committed(TxLocation),
    /// Dropped from the mempool: it no longer applies (for example, the bill was
    /// reimbursed through another node first).
    Rejected(Rejection),
}

/// Where a transaction stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// In the mempool, waiting for a block.
    Pending,
    /// In a final block.
    Committed(TxLocation),
    /// Refused or dropped (remembered for a bounded time).
    Rejected(Rejection),
    /// Not known to this node.
    Unknown,
}

pub use ebill_api_types::Role;

/// Counters for `/metrics`, read at scrape time.
#[derive(Clone, Debug, Default)]
pub struct NodeMetrics {
    /// Height of the last final block.
    pub height: u64,
    /// Transactions committed since genesis.
    pub committed_txs: u64,
    /// Transactions waiting in the mempool.
    pub mempool_txs: u64,
    /// Rejections since start, by code.
    pub rejections: BTreeMap<String, u64>,
    /// Messages dropped since start, by where (`outbound_queue`, `net_events`,
    /// `net_validations`, `net_inbound_requests`): what a full queue refused to carry.
    pub dropped: BTreeMap<&'static str, u64>,
    /// The network layer's counters since start, by kind (gossip accepted, rejected,
    /// ignored, connections denied...).
    pub net: BTreeMap<&'static str, u64>,
    /// Consensus counters of the height in progress, by kind (bad signatures, old
    /// heights, duplicates, equivocations...): `ebill_consensus::Stats`.
    pub consensus: BTreeMap<&'static str, u64>,
}

/// Everything the HTTP API needs from a running node.
pub trait Backend: Send + Sync + 'static {
    /// The chain's genesis.
    fn genesis(&self) -> &Genesis;
    /// The committed state and blocks.
    fn store(&self) -> &Arc<dyn Store>;
    /// Admits transactions to the mempool (signature, format and state checks against
    /// the last final block); one answer per transaction, in order.
    fn submit(&self, txs: Vec<SignedTx>) -> Vec<Result<TxId, Rejection>>;
    /// Resolves once the transaction is final or dropped. Resolves at once for a
    /// transaction that is committed already. The sender is dropped (the receiver sees
    /// an error) if the node shuts down first.
    fn watch(&self, id: TxId) -> oneshot::Receiver<TxOutcome>;
    /// Where a transaction stands.
    fn tx_status(&self, id: &TxId) -> TxStatus;
    /// This node's role.
    fn role(&self) -> Role;
    /// Connected peers.
    fn peers(&self) -> usize;
    /// True while the node is catching up with the network.
    fn syncing(&self) -> bool;
    /// Counters for `/metrics`.
    fn metrics(&self) -> NodeMetrics;
    /// The height of the last final block, changing with each commit: what the audit
    /// stream waits on. `None` (the default) makes the stream look at the store's tip
    /// every [`crate::audit::stream::POLL_INTERVAL`].
    fn commit_watch(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// The witnesses' co-signatures this node holds for `checkpoint` (empty if none,
    /// and on a backend that keeps none).
    fn cosignatures(&self, checkpoint: &Checkpoint) -> Vec<Cosignature> {
        let _ = checkpoint;
        Vec::new()
    }
    /// The newest checkpoint final here that a witness co-signed, and the conflicts on
    /// record ([`ebill_types::checkpoint::CheckpointBook`]).
    fn checkpoints(&self) -> CheckpointsView {
        CheckpointsView::default()
    }
}

/// What a node holds of the witnesses' co-signatures.
#[derive(Clone, Debug, Default)]
pub struct CheckpointsView {
    /// The newest checkpoint final here that a witness co-signed.
    pub latest: Option<CosignedCheckpoint>,
    /// Conflicting checkpoints on record (evidence).
    pub conflicts: Vec<Conflict>,
    /// Conflicts seen after the record was full.
    pub conflicts_dropped: u64,
}
