//! # ebill-api-types
//!
//! Answer types of the node's HTTP API (`crates/api`), shared by the server, which
//! serialises them, and the client (`ebill`), which reads them: one definition of each
//! answer, typed on both sides, and no RocksDB or HTTP server in the client's build. The
//! OpenAPI document (`GET /v1/openapi.json`) describes the same shapes.
//!
//! So far: the error body, a transaction's status, a batch's results, a block, the
//! verdict on a bill, governance proposals, the registry, the node's status, and the
//! operator's audit answers ([`audit`]).

pub mod audit;

use ebill_ledger::{ProposalOutcome, ProposalStatus};
use ebill_types::bill::Currency;
use ebill_types::genesis::Regulators;
use ebill_types::{
    BillCode, BillKind, BillNumber, CheckCode, CodePrefix, CommitCertificate, CreditCode, Fen,
    Hash32, Item, Payer, PublicKey, Timestamp, TxBody, TxId,
};
use serde::{Deserialize, Serialize};

/// The body of every failure: `{"error": {"code", "message", "tx_id"?}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

/// The `error` object of an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// Stable snake_case code.
    pub code: String,
    /// Human message.
    pub message: String,
    /// The transaction concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<TxId>,
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// Admitted, not final yet.
    Pending,
    /// In a final block.
    Committed,
    /// Refused after admission (dropped from the mempool).
    Rejected,
}

impl TxState {
    /// The name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            TxState::Pending => "pending",
            TxState::Committed => "committed",
            TxState::Rejected => "rejected",
        }
    }
}

/// The answer of `POST /v1/txs` and `GET /v1/txs/{id}`, and a batch item's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxAnswer {
    /// The transaction id.
    pub tx_id: TxId,
    /// Where it stands.
    pub status: TxState,
    /// Height of its block, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Position in its block, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Rejection code (`rejected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Rejection message (`rejected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One item of the answer of `POST /v1/txs/batch`, in the order of the request: a
/// status, or an error (with the transaction id where it is known).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchItem {
    /// Refused: `{"tx_id"?, "error": {"code", "message"}}`.
    Err {
        /// The transaction's id, where the item decoded far enough to have one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tx_id: Option<TxId>,
        /// Why.
        error: ErrorObject,
    },
    /// Admitted or final.
    Ok(TxAnswer),
}

/// The answer of `POST /v1/txs/batch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// One per item of the request, in its order.
    pub results: Vec<BatchItem>,
    /// Items not in error.
    pub accepted: usize,
    /// Items in error.
    pub rejected: usize,
    /// With `?wait=commit`: items committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<usize>,
    /// With `?wait=commit`: items still pending when the wait timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<usize>,
}

/// The answer of `GET /v1/blocks/latest` and `GET /v1/blocks/{height}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Height (1 for the first block).
    pub height: u64,
    /// Block hash (of the header).
    pub hash: Hash32,
    /// Chain id.
    pub chain_id: String,
    /// Previous block's hash (the genesis hash for block 1).
    pub prev_hash: Hash32,
    /// Block time (RFC 3339, UTC).
    pub time: Timestamp,
    /// Index of the proposer in the validator set.
    pub proposer: u32,
    /// RFC 6962 root of the transactions.
    pub tx_root: Hash32,
    /// Number of transactions.
    pub tx_count: u32,
    /// Hash of the validator set.
    pub validator_set_hash: Hash32,
    /// Root of the state tree after this block.
    pub state_root: Hash32,
    /// Transaction ids, in block order.
    pub tx_ids: Vec<TxId>,
    /// The commit certificate that makes it final.
    pub certificate: Option<CommitCertificate>,
}

/// The issuing unit of a bill, with its registered name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerView {
    /// Unified social credit code.
    pub credit_code: CreditCode,
    /// Registered name.
    pub name: String,
}

/// One step of a bill's life as the public sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    /// `issue_bill`, `lock`, `unlock`, `confirm_reimbursed`, `red_reverse`,
    /// `exchange_paper`.
    pub action: String,
    /// The unit that did it.
    pub by: CreditCode,
    /// Height of its block.
    pub height: u64,
    /// Its block's time (RFC 3339, UTC).
    pub time: Timestamp,
    /// The transaction.
    pub tx_id: TxId,
}

/// The verdict on an authentic bill: `GET /v1/bills/{code}/{number}?check_code=` and
/// `POST /v1/verify` of a file that matches the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Always true here: the bill is on chain with this check code.
    pub authentic: bool,
    /// True: the block holding it is final (has a commit certificate).
    #[serde(rename = "final")]
    pub is_final: bool,
    /// `issued`, `locked`, `reimbursed`, `reversed` or `paper_exchanged`.
    pub status: String,
    /// 票据代码.
    pub code: BillCode,
    /// 票据号码.
    pub number: BillNumber,
    /// 校验码.
    pub check_code: CheckCode,
    /// The kind of bill.
    pub kind: BillKind,
    /// The issuing unit.
    pub issuer: IssuerView,
    /// The total, a two-decimal string.
    pub total: Fen,
    /// Always `CNY`.
    pub currency: Currency,
    /// When it was issued (RFC 3339 with the issuer's offset).
    pub issued_at: Timestamp,
    /// The payer, masked.
    pub payer: Payer,
    /// The lines of the bill.
    pub items: Vec<Item>,
    /// Height of the block holding the IssueBill transaction.
    pub height: u64,
    /// Hash of that block.
    pub block_hash: Hash32,
    /// The IssueBill transaction id.
    pub tx_id: TxId,
    /// Every step from the issue on.
    pub history: Vec<HistoryView>,
}

/// A regulator as a proposal names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegulatorView {
    /// Index in the proposal's regulator set (what a vote's signature names).
    pub index: u16,
    /// Name.
    pub name: String,
    /// Governance key.
    pub public_key: PublicKey,
}

/// One vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteView {
    /// The regulator.
    pub regulator: RegulatorView,
    /// Height of its block.
    pub height: u64,
    /// The transaction.
    pub tx_id: TxId,
}

/// A proposal as answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    /// Its id.
    pub id: Hash32,
    /// The action's kind (`register_issuer`, ...).
    pub kind: String,
    /// The action.
    pub action: TxBody,
    /// Status at the next height.
    pub status: ProposalStatus,
    /// Whether a governance action executed since it was written (it can no longer
    /// pass; approvals are refused `stale_proposal`).
    pub stale: bool,
    /// The governance sequence it was written against.
    pub base_gov_seq: u64,
    /// Last height at which it may pass.
    pub expires_at_height: u64,
    /// Height of the proposal.
    pub proposed_height: u64,
    /// The proposer.
    pub proposer: Option<RegulatorView>,
    /// Approvals needed (the threshold of its regulator set).
    pub threshold: u16,
    /// Approvals still missing.
    pub approvals_missing: usize,
    /// The regulators who count, the set in force when it was proposed.
    pub regulators: Vec<RegulatorView>,
    /// Approvals, the proposer's first.
    pub approvals: Vec<VoteView>,
    /// Rejections.
    pub rejections: Vec<VoteView>,
    /// How it ended (`pending` until then, also when expired).
    pub outcome: ProposalOutcome,
}

/// The list answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalList {
    /// The tip height the statuses are read at (statuses are for the next block).
    pub height: u64,
    /// The governance sequence number now (what a new proposal is written against).
    pub gov_seq: u64,
    /// The regulators in force and their threshold.
    pub regulators: Regulators,
    /// How many proposals matched (the list holds at most the newest 1000).
    pub total: usize,
    /// The proposals, newest first.
    pub proposals: Vec<ProposalView>,
}

/// The answer about one proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalAnswer {
    /// The tip height.
    pub height: u64,
    /// The governance sequence number now.
    pub gov_seq: u64,
    /// The proposal.
    pub proposal: ProposalView,
}

/// One registry change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// What happened.
    pub action: String,
    /// At which height.
    pub height: u64,
    /// The transaction (for a change by proposal: the approval that executed it).
    pub tx_id: TxId,
}

/// A unit as answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitView {
    /// Credit code.
    pub credit_code: CreditCode,
    /// Name.
    pub name: String,
    /// `issuer` or `reimburser`.
    pub role: String,
    /// Bill-code prefixes of an issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_prefixes: Option<Vec<CodePrefix>>,
    /// Current key.
    pub public_key: PublicKey,
    /// `active`, `revoked`, or `qualification_expired` (by the tip block's time).
    pub status: String,
    /// Height of the revocation.
    pub revoked_at: Option<u64>,
    /// End of its qualification, if it lapses.
    pub valid_until: Option<Timestamp>,
    /// Whether it was registered by the genesis.
    pub in_genesis: bool,
    /// Its registry changes after genesis.
    pub history: Vec<EventView>,
}

/// The registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitList {
    /// The tip height the statuses are read at.
    pub height: u64,
    /// Every unit, by credit code.
    pub units: Vec<UnitView>,
}

/// A proof of the unit's record in the state tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordProof {
    /// The height whose header's `state_root` the proof leads to.
    pub height: u64,
    /// That state root.
    pub state_root: Hash32,
    /// The record's canonical bytes (the leaf's value: its hash is the leaf's value
    /// hash under namespace 2, docs/spec/governance.md), hex.
    #[serde(with = "ebill_types::hexfmt::bytes")]
    pub record: Vec<u8>,
    /// The canonical `StateProof`, hex.
    #[serde(with = "ebill_types::hexfmt::bytes")]
    pub proof: Vec<u8>,
}

/// One unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitAnswer {
    /// The tip height.
    pub height: u64,
    /// The unit.
    pub unit: UnitView,
    /// The proof of its record as of `height`.
    pub state_proof: RecordProof,
}

/// The node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Votes in consensus.
    Validator,
    /// Replicates and re-verifies; votes in nothing.
    Observer,
}

/// The answer of `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// Chain id.
    pub chain_id: String,
    /// Genesis hash.
    pub genesis_hash: Hash32,
    /// Height of the last final block (0 before block 1).
    pub height: u64,
    /// Its hash (null before block 1).
    pub tip_hash: Option<Hash32>,
    /// `validator` or `observer`.
    pub role: Role,
    /// Connected peers.
    pub peers: usize,
    /// True while catching up.
    pub syncing: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An answer reads back as what was written, and optional fields are left out.
    #[test]
    fn answers_round_trip() {
        let a = TxAnswer {
            tx_id: Hash32([7; 32]),
            status: TxState::Committed,
            height: Some(3),
            index: Some(0),
            code: None,
            message: None,
        };
        let text = serde_json::to_string(&a).unwrap();
        assert!(!text.contains("code"), "{text}");
        assert!(text.contains("\"status\":\"committed\""), "{text}");
        assert_eq!(serde_json::from_str::<TxAnswer>(&text).unwrap(), a);
        let e: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"bill_exists","message":"m"}}"#).unwrap();
        assert_eq!(e.error.code, "bill_exists");
        assert_eq!(e.error.tx_id, None);
    }

    /// A batch item is read as the variant the server wrote: an error item (which has
    /// a `tx_id` too) never passes for a status, nor a status for an error.
    #[test]
    fn batch_items_read_back_as_their_variant() {
        let ok = BatchItem::Ok(TxAnswer {
            tx_id: Hash32([1; 32]),
            status: TxState::Pending,
            height: None,
            index: None,
            code: None,
            message: None,
        });
        let err = BatchItem::Err {
            tx_id: Some(Hash32([2; 32])),
            error: ErrorObject {
                code: "bad_signature".into(),
                message: "m".into(),
                tx_id: None,
            },
        };
        let answer = BatchAnswer {
            results: vec![ok, err],
            accepted: 1,
            rejected: 1,
            committed: None,
            pending: None,
        };
        let text = serde_json::to_string(&answer).unwrap();
        assert!(!text.contains("committed"), "{text}");
        assert_eq!(serde_json::from_str::<BatchAnswer>(&text).unwrap(), answer);
    }
}
