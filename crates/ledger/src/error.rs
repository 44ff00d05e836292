//! Rejections: a stable machine-readable code and a message that names the facts.

use serde::{Deserialize, Serialize};
use thiserror::Error;

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $code:expr,)+) => {
        /// The stable code of a rejection. The strings are part of the public contract
        /// (API, CLI, metrics): add codes, never rename one.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code's string.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)+ }
            }
        }
    };
}

codes! {
    /// A field is malformed or breaks a limit.
    InvalidTx => "invalid_tx",
    /// A bill field breaks its rule.
    InvalidBill => "invalid_bill",
    /// Items do not add up to the total, or an amount is not quantity × price.
    AmountsInconsistent => "amounts_inconsistent",
    /// This transaction id was applied before.
    DuplicateTx => "duplicate_tx",
    /// The issuer named is not registered.
    UnknownIssuer => "unknown_issuer",
    /// The reimbursing unit named is not registered.
    UnknownReimburser => "unknown_reimburser",
    /// The unit named in a governance transaction is not registered.
    UnknownUnit => "unknown_unit",
    /// The unit was revoked and signs nothing new.
    UnitRevoked => "unit_revoked",
    /// The unit is registered in another role.
    WrongRole => "wrong_role",
    /// A signature does not verify.
    BadSignature => "bad_signature",
    /// Too few valid regulator signatures.
    InsufficientSignatures => "insufficient_signatures",
    /// A regulator index outside the genesis list.
    UnknownRegulator => "unknown_regulator",
    /// The bill code is not under a prefix the issuer is registered for.
    CodePrefixNotAllowed => "code_prefix_not_allowed",
    /// issued_at is outside the issue window around the block time.
    IssuedAtOutOfWindow => "issued_at_out_of_window",
    /// A bill with this code and number exists.
    BillExists => "bill_exists",
    /// No such bill.
    UnknownBill => "unknown_bill",
    /// The check code does not match the bill.
    CheckCodeMismatch => "check_code_mismatch",
    /// Only the bill's own issuer may do this.
    NotBillIssuer => "not_bill_issuer",
    /// The bill was reimbursed (final).
    AlreadyReimbursed => "already_reimbursed",
    /// The bill was red-reversed (final).
    AlreadyReversed => "already_reversed",
    /// The bill was exchanged for paper (final for e-reimbursement).
    PaperExchanged => "paper_exchanged",
    /// The bill is locked by another unit.
    LockedByOther => "locked_by_other",
    /// The bill is locked, and the action needs it unlocked.
    BillLocked => "bill_locked",
    /// Unlock of a bill that is not locked.
    NotLocked => "not_locked",
    /// The bill took its maximum number of changes.
    HistoryFull => "history_full",
    /// A unit with this credit code exists.
    UnitExists => "unit_exists",
    /// The key is invalid or weak.
    BadKey => "bad_key",
    /// The unit is revoked already.
    AlreadyRevoked => "already_revoked",
    /// The unit's qualification (开票资格) lapsed by block time: it signs nothing new
    /// until renewed.
    QualificationExpired => "qualification_expired",
    /// The signer is not in the regulator set that counts (the set in force, or the
    /// proposal's own set for a vote).
    NotARegulator => "not_a_regulator",
    /// A governance action executed since the proposal's base sequence number: it can
    /// no longer execute, and a new proposal must be written against the current state.
    StaleProposal => "stale_proposal",
    /// No proposal with this id.
    UnknownProposal => "unknown_proposal",
    /// A proposal with this id (the same action, expiry and base) exists.
    ProposalExists => "proposal_exists",
    /// The proposal executed already.
    ProposalExecuted => "proposal_executed",
    /// The proposal was rejected.
    ProposalRejected => "proposal_rejected",
    /// The proposal was withdrawn.
    ProposalWithdrawn => "proposal_withdrawn",
    /// The proposal is past its last height.
    ProposalExpired => "proposal_expired",
    /// The regulator voted on this proposal already.
    AlreadyVoted => "already_voted",
    /// Only the proposer may withdraw a proposal.
    NotProposer => "not_proposer",
    /// The key is a regulator already.
    RegulatorExists => "regulator_exists",
    /// The threshold would be 0 or above the number of regulators.
    BadThreshold => "bad_threshold",
    /// The proposal's last height is not after the current block, or too far.
    BadExpiry => "bad_expiry",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a transaction was rejected. It changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{code}: {message}")]
pub struct TxError {
    /// Stable code.
    pub code: ErrorCode,
    /// What happened, naming the conflicting facts.
    pub message: String,
}

impl TxError {
    /// A rejection.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The state could not be read: not the transaction's fault, and not a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("state read failed: {0}")]
pub struct StateError(pub String);

/// Why a block could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlockError {
    /// A transaction in it is rejected: the block is invalid.
    #[error("transaction {index} is rejected: {error}")]
    Rejected {
        /// Position in the block.
        index: usize,
        /// Why.
        error: TxError,
    },
    /// The block is over a limit of the genesis parameters.
    #[error("block over limit: {0}")]
    OverLimit(String),
    /// State could not be read.
    #[error(transparent)]
    State(#[from] StateError),
}
