//! The one error shape of the API, `{"error": {"code": "...", "message": "..."}}`, and the
//! mapping from rejection codes to HTTP statuses.
//!
//! Every failure of every route goes through [`ApiError`], so that no client ever sees
//! axum's plain-text rejections. The mapping (documented in the crate README):
//!
//! | status | meaning | codes |
//! | --- | --- | --- |
//! | 400 | the request is malformed | `malformed_json`, `invalid_json`, `invalid_tx`, `invalid_query`, `invalid_path`, `missing_check_code`, ... |
//! | 403 | the signer may not do this | `unit_revoked`, `wrong_role`, `not_bill_issuer` |
//! | 404 | no such thing (or a wrong check code: the same answer) | `bill_not_found`, `tx_not_found`, `block_not_found`, `checkpoint_not_found`, `not_found` |
//! | 409 | conflicts with the committed state | `bill_exists`, `duplicate_tx`, `already_reimbursed`, `locked_by_other`, ... |
//! | 413 | too large | `body_too_large`, `batch_too_large` |
//! | 415 | not JSON | `unsupported_media_type` |
//! | 429 | over a lookup limit of the verification pages | `too_many_lookups` |
//! | 422 | well-formed but semantically invalid | `bad_signature`, `unknown_issuer`, `amounts_inconsistent`, ... |
//! | 500 | failed inside the node (logged) | `internal` |
//! | 503 | the node cannot take it now | `mempool_full`, `node_not_ready`, `not_a_validator`, `shutting_down` |
//! | 504 | `?wait=commit` ran out of time | `timeout` |

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ebill_types::TxId;
use serde::Serialize;

use ebill_ledger::ErrorCode;

use crate::backend::{AdmissionCode, RejectCode, Rejection};

/// Declares the API-level codes as constants and lists them in `ALL` (one place: the
/// OpenAPI document's code enumeration is built from `ALL`).
macro_rules! api_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal;)+) => {
        $($(#[$doc])* pub const $name: &str = $code;)+

        /// Every API-level code.
        pub const ALL: &[&str] = &[$($name,)+];
    };
}

/// API-level error codes (the ledger's own codes pass through unchanged).
pub mod codes {
    api_codes! {
            /// No route with this path.
            NOT_FOUND = "not_found";
            /// The route exists, not with this method.
            METHOD_NOT_ALLOWED = "method_not_allowed";
            /// The body is not declared `application/json`.
            UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type";
            /// The body is not JSON at all (syntax error, truncated).
            MALFORMED_JSON = "malformed_json";
            /// The body is JSON of the wrong shape: unknown or missing field, wrong type, a
            /// JSON number for money, a malformed value.
            INVALID_JSON = "invalid_json";
            /// The body could not be read.
            INVALID_BODY = "invalid_body";
            /// The body is over the route's byte limit.
            BODY_TOO_LARGE = "body_too_large";
            /// A batch has more transactions than allowed.
            BATCH_TOO_LARGE = "batch_too_large";
            /// The query string does not parse (unknown parameter, bad value).
            INVALID_QUERY = "invalid_query";
            /// A path parameter does not parse (bill code, number, height, tx id).
            INVALID_PATH = "invalid_path";
            /// A bill query without `check_code`.
            MISSING_CHECK_CODE = "missing_check_code";
            /// A check code that is not 6 characters of `[0-9a-z]`.
            INVALID_CHECK_CODE = "invalid_check_code";
            /// No such bill, or not with this check code (one answer for both).
            BILL_NOT_FOUND = "bill_not_found";
            /// No such transaction known to this node.
            TX_NOT_FOUND = "tx_not_found";
            /// No such block.
            BLOCK_NOT_FOUND = "block_not_found";
            /// No checkpoint final here is co-signed by a regulator's observer yet.
            CHECKPOINT_NOT_FOUND = "checkpoint_not_found";
            /// `?wait=commit` ran out of time; the transaction may still commit.
            TIMEOUT = "timeout";
            /// The node is shutting down.
            SHUTTING_DOWN = "shutting_down";
            /// Something failed inside the node (storage); logged, never detailed to clients.
            INTERNAL = "internal";
            /// A proof bundle would hold more entries than a bundle may.
            BUNDLE_TOO_LARGE = "bundle_too_large";
            /// The request's body did not arrive within the body read timeout.
            BODY_TIMEOUT = "body_timeout";
            /// The node is answering as many requests as it may (load shedding).
            OVERLOADED = "overloaded";
            /// The node has as many connections open as it may (in total or from this address).
            TOO_MANY_CONNECTIONS = "too_many_connections";
            /// The bill exists (an absence proof was asked for an issued bill; the ledger's
            /// rejection of a second IssueBill has the same code).
            BILL_EXISTS = "bill_exists";
            /// Over a lookup limit of the verification pages (per bill per day, per client per
            /// minute).
            TOO_MANY_LOOKUPS = "too_many_lookups";
            /// The node has no final block yet.
            NODE_NOT_READY = "node_not_ready";
            /// No governance proposal with this id.
            PROPOSAL_NOT_FOUND = "proposal_not_found";
            /// No unit with this credit code.
            UNIT_NOT_FOUND = "unit_not_found";
    }
}

/// An error answer: HTTP status, stable code, human message, and for transaction errors
/// the transaction id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: Cow<'static, str>,
    /// Human message.
    pub message: String,
    /// The transaction concerned, where there is one (`timeout`, rejections of a
    /// submitted transaction).
    pub tx_id: Option<TxId>,
    /// Close the connection after this answer (`Connection: close`): the request was
    /// not read to its end.
    pub close_connection: bool,
}

impl ApiError {
    /// An error with an API-level code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            tx_id: None,
            close_connection: false,
        }
    }

    /// Attaches the transaction concerned.
    pub fn with_tx(mut self, id: TxId) -> Self {
        self.tx_id = Some(id);
        self
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The one answer for an unknown bill and for a wrong check code: same status, code
    /// and message, byte for byte, so that the API is no oracle for guessing.
    pub fn bill_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::BILL_NOT_FOUND,
            "no bill with this code, number and check code",
        )
    }

    /// 408 `body_timeout`, closing the connection: the body did not arrive in time.
    pub fn body_timeout() -> Self {
        Self {
            close_connection: true,
            ..Self::new(
                StatusCode::REQUEST_TIMEOUT,
                codes::BODY_TIMEOUT,
                "the request body did not arrive within the body read timeout",
            )
        }
    }

    /// 500: logs `what` and `detail` and tells the client only that it failed inside.
    pub fn internal(what: &str, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(what, %detail, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            format!("internal error: {what}"),
        )
    }

    /// A rejected transaction, with the status its code maps to.
    pub fn rejection(r: &Rejection) -> Self {
        Self {
            status: status_for_rejection(r.code),
            code: Cow::Borrowed(r.code.as_str()),
            message: r.message.clone(),
            tx_id: None,
            close_connection: false,
        }
    }
}

/// The HTTP status of a rejection code: 400 malformed, 403 not allowed to, 409
/// conflicts with state, 422 semantically invalid, 500 failed inside, 503 not now.
/// Exhaustive: a code added to the ledger does not compile until it has a status here.
pub fn status_for_rejection(code: RejectCode) -> StatusCode {
    match code {
        RejectCode::Admission(c) => match c {
            AdmissionCode::MempoolFull | AdmissionCode::NotAValidator => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AdmissionCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        },
        RejectCode::Ledger(c) => match c {
            ErrorCode::InvalidTx => StatusCode::BAD_REQUEST,
            ErrorCode::UnitRevoked
            | ErrorCode::WrongRole
            | ErrorCode::NotBillIssuer
            | ErrorCode::QualificationExpired
            | ErrorCode::NotARegulator
            | ErrorCode::NotProposer => StatusCode::FORBIDDEN,
            ErrorCode::BillExists
            | ErrorCode::DuplicateTx
            | ErrorCode::AlreadyReimbursed
            | ErrorCode::AlreadyReversed
            | ErrorCode::PaperExchanged
            | ErrorCode::LockedByOther
            | ErrorCode::BillLocked
            | ErrorCode::NotLocked
            | ErrorCode::HistoryFull
            | ErrorCode::UnitExists
            | ErrorCode::AlreadyRevoked
            | ErrorCode::StaleProposal
            | ErrorCode::ProposalExists
            | ErrorCode::ProposalExecuted
            | ErrorCode::ProposalRejected
            | ErrorCode::ProposalWithdrawn
            | ErrorCode::ProposalExpired
            | ErrorCode::AlreadyVoted
            | ErrorCode::RegulatorExists => StatusCode::CONFLICT,
            ErrorCode::InvalidBill
            | ErrorCode::AmountsInconsistent
            | ErrorCode::UnknownIssuer
            | ErrorCode::UnknownReimburser
            | ErrorCode::UnknownUnit
            | ErrorCode::BadSignature
            | ErrorCode::InsufficientSignatures
            | ErrorCode::UnknownRegulator
            | ErrorCode::CodePrefixNotAllowed
            | ErrorCode::IssuedAtOutOfWindow
            | ErrorCode::UnknownBill
            | ErrorCode::CheckCodeMismatch
            | ErrorCode::BadKey
            | ErrorCode::UnknownProposal
            | ErrorCode::BadThreshold
            | ErrorCode::BadExpiry => StatusCode::UNPROCESSABLE_ENTITY,
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ebill_api_types::ErrorBody {
            error: ebill_api_types::ErrorObject {
                code: self.code.to_string(),
                message: self.message.clone(),
                tx_id: self.tx_id,
            },
        };
        // An error body always serialises (strings and a hash); the fallback is a
        // fixed JSON text, never plain text.
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        });
        let mut resp = json_bytes(self.status, bytes);
        if self.close_connection {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// A response with a JSON body already serialised.
pub(crate) fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serialises `value` as the JSON body of a `status` answer; a value that does not
/// serialise (a time out of range) is a 500 JSON error, never a plain-text one.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => ApiError::internal("serialising the answer", &e).into_response(),
    }
}

/// The result type of handlers.
pub type ApiResult = Result<Response, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ledger code is the client's doing (4xx); only the node's own failure is a
    /// 5xx, so no internal error can be told to a client as its fault.
    #[test]
    fn every_ledger_code_is_a_client_error_and_internal_is_500() {
        for &code in ErrorCode::ALL {
            let status = status_for_rejection(RejectCode::Ledger(code));
            assert!(status.is_client_error(), "{code} answers {status}");
        }
        assert_eq!(
            status_for_rejection(RejectCode::Admission(AdmissionCode::Internal)),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        for code in [AdmissionCode::MempoolFull, AdmissionCode::NotAValidator] {
            assert_eq!(
                status_for_rejection(RejectCode::Admission(code)),
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
    }

    /// The answer carries the code's stable string.
    #[test]
    fn a_rejection_answers_its_code_string() {
        let r = Rejection::from(ebill_ledger::TxError::new(
            ErrorCode::AlreadyReimbursed,
            "x",
        ));
        let e = ApiError::rejection(&r);
        assert_eq!(e.code, "already_reimbursed");
        assert_eq!(e.status, StatusCode::CONFLICT);
    }
}
