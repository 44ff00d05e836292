//! # ebill-api-types
//!
//! Answer types of the node's HTTP API (`crates/api`), shared by the server, which
//! serialises them, and the client (`ebill`), which reads them: one definition of each
//! answer, typed on both sides, and no RocksDB or HTTP server in the client's build. The
//! OpenAPI document (`GET /v1/openapi.json`) describes the same shapes.
//!
//! So far: the error body, a transaction's status and the node's status. Other answers
//! are still read as JSON values by the client.

use ebill_types::{Hash32, TxId};
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
}
