//! What a node offers the HTTP API. The node implements [`Backend`]; tests can implement
//! it over a `MemStore` without consensus.

use std::collections::BTreeMap;
use std::sync::Arc;

use ebill_ledger::{TxError, TxLocation};
use ebill_store::Store;
use ebill_types::{Genesis, SignedTx, TxId};
use serde::Serialize;
use tokio::sync::oneshot;

/// Why a transaction was not admitted to the mempool. `code` is stable: a ledger
/// [`ebill_ledger::ErrorCode`] string, or one of `mempool_full`, `invalid_tx`,
/// `node_not_ready`, `not_a_validator`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Stable machine-readable code.
    pub code: String,
    /// Human message naming the facts.
    pub message: String,
}

impl From<TxError> for Rejection {
    fn from(e: TxError) -> Self {
        Self {
            code: e.code.as_str().to_owned(),
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

/// The node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Votes in consensus.
    Validator,
    /// Replicates and re-verifies; votes in nothing.
    Observer,
}

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
}
