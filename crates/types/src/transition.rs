//! The one rule of a bill's status transitions: which lifecycle transaction may apply to
//! a bill in which status, and the status it leaves. The ledger applies it to the state;
//! the offline verifier replays a proof bundle with it; neither writes it again.

use thiserror::Error;

use crate::credit_code::CreditCode;
use crate::status::BillStatus;
use crate::tx::TxKind;

/// A transaction that changes a bill's status (its issue aside).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lifecycle {
    /// Red-reverse (冲红), by the issuer.
    RedReverse,
    /// Exchange for paper (换开), by the issuer.
    ExchangePaper,
    /// Lock for reimbursement, by a reimbursing unit.
    Lock,
    /// Release a lock, by its holder.
    Unlock,
    /// Confirm the bill reimbursed (final), by a reimbursing unit.
    ConfirmReimbursed,
}

impl Lifecycle {
    /// Every lifecycle action.
    pub const ALL: [Lifecycle; 5] = [
        Lifecycle::RedReverse,
        Lifecycle::ExchangePaper,
        Lifecycle::Lock,
        Lifecycle::Unlock,
        Lifecycle::ConfirmReimbursed,
    ];

    /// The action of a transaction kind, if it is a lifecycle transaction.
    pub fn of(kind: TxKind) -> Option<Self> {
        match kind {
            TxKind::RedReverse => Some(Lifecycle::RedReverse),
            TxKind::ExchangePaper => Some(Lifecycle::ExchangePaper),
            TxKind::Lock => Some(Lifecycle::Lock),
            TxKind::Unlock => Some(Lifecycle::Unlock),
            TxKind::ConfirmReimbursed => Some(Lifecycle::ConfirmReimbursed),
            _ => None,
        }
    }

    /// Whether the transaction carries the bill's check code (lock and reimbursement,
    /// which only a holder of the paper or the electronic bill can ask for).
    pub fn needs_check_code(self) -> bool {
        matches!(self, Lifecycle::Lock | Lifecycle::ConfirmReimbursed)
    }
}

/// Why a lifecycle transaction cannot apply to a bill in its status. Each maps to one
/// stable rejection code of the ledger.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Error)]
pub enum TransitionError {
    /// A red reversal or paper exchange by a unit that did not issue the bill.
    #[error("the bill was issued by {issuer}")]
    NotBillIssuer {
        /// The bill's issuer.
        issuer: CreditCode,
    },
    /// A lock or reimbursement with a check code that is not the bill's.
    #[error("the check code does not match the bill")]
    CheckCodeMismatch,
    /// The bill is reimbursed: final.
    #[error("the bill was already reimbursed by {by} at height {height}")]
    AlreadyReimbursed {
        /// The reimbursing unit.
        by: CreditCode,
        /// When.
        height: u64,
    },
    /// The bill is red-reversed: final.
    #[error("the bill was red-reversed at height {height}")]
    AlreadyReversed {
        /// When.
        height: u64,
    },
    /// The bill is exchanged for paper: final for electronic reimbursement.
    #[error("the bill was exchanged for paper at height {height}")]
    PaperExchanged {
        /// When.
        height: u64,
    },
    /// The bill is locked, and the action needs it open (a red reversal, a paper
    /// exchange, or a second lock by the holder).
    #[error("the bill is locked by {holder} since height {height}")]
    BillLocked {
        /// The unit holding the lock.
        holder: CreditCode,
        /// Since when.
        height: u64,
    },
    /// The bill is locked by another unit.
    #[error("the bill is locked by {holder} since height {height}")]
    LockedByOther {
        /// The unit holding the lock.
        holder: CreditCode,
        /// Since when.
        height: u64,
    },
    /// An unlock of a bill that is not locked.
    #[error("the bill is not locked")]
    NotLocked,
}

/// What the transition is checked against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TransitionFacts {
    /// The bill's issuer.
    pub issuer: CreditCode,
    /// Whether the transaction's check code is the bill's (ignored by actions that
    /// carry none).
    pub check_code_matches: bool,
}

/// The status after `action` by unit `by` at `height`, or why it cannot apply. The order
/// of the checks is part of the rule (it decides which error a transaction gets): the
/// issuer or check code first, then a final status, then the lock.
pub fn transition(
    status: BillStatus,
    action: Lifecycle,
    by: CreditCode,
    height: u64,
    facts: TransitionFacts,
) -> Result<BillStatus, TransitionError> {
    match action {
        Lifecycle::RedReverse | Lifecycle::ExchangePaper => {
            if by != facts.issuer {
                return Err(TransitionError::NotBillIssuer {
                    issuer: facts.issuer,
                });
            }
            refuse_final(status)?;
            if let BillStatus::Locked { by: holder, height } = status {
                return Err(TransitionError::BillLocked { holder, height });
            }
            Ok(if action == Lifecycle::RedReverse {
                BillStatus::Reversed { height }
            } else {
                BillStatus::PaperExchanged { height }
            })
        }
        Lifecycle::Lock | Lifecycle::ConfirmReimbursed => {
            if !facts.check_code_matches {
                return Err(TransitionError::CheckCodeMismatch);
            }
            refuse_final(status)?;
            if let BillStatus::Locked {
                by: holder,
                height: since,
            } = status
            {
                if holder != by {
                    return Err(TransitionError::LockedByOther {
                        holder,
                        height: since,
                    });
                }
                if action == Lifecycle::Lock {
                    return Err(TransitionError::BillLocked {
                        holder,
                        height: since,
                    });
                }
            }
            Ok(if action == Lifecycle::Lock {
                BillStatus::Locked { by, height }
            } else {
                BillStatus::Reimbursed { by, height }
            })
        }
        Lifecycle::Unlock => {
            refuse_final(status)?;
            match status {
                BillStatus::Locked { by: holder, .. } if holder == by => Ok(BillStatus::Issued),
                BillStatus::Locked {
                    by: holder,
                    height: since,
                } => Err(TransitionError::LockedByOther {
                    holder,
                    height: since,
                }),
                _ => Err(TransitionError::NotLocked),
            }
        }
    }
}

/// Refuses any change of a bill in a final status, naming who made it final and when.
fn refuse_final(status: BillStatus) -> Result<(), TransitionError> {
    match status {
        BillStatus::Reimbursed { by, height } => {
            Err(TransitionError::AlreadyReimbursed { by, height })
        }
        BillStatus::Reversed { height } => Err(TransitionError::AlreadyReversed { height }),
        BillStatus::PaperExchanged { height } => Err(TransitionError::PaperExchanged { height }),
        BillStatus::Issued | BillStatus::Locked { .. } => Ok(()),
    }
}
