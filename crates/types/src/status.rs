//! A bill's status: what the ledger keeps and what a proof bundle proves.

use serde::{Deserialize, Serialize};

use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::credit_code::CreditCode;

/// A bill's status. Reimbursed, Reversed and PaperExchanged are final.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BillStatus {
    /// Issued and open.
    Issued,
    /// Locked for reimbursement by a unit.
    Locked {
        /// The unit holding the lock.
        by: CreditCode,
        /// When it locked.
        height: u64,
    },
    /// Reimbursed: final and irreversible.
    Reimbursed {
        /// The unit that reimbursed it.
        by: CreditCode,
        /// When.
        height: u64,
    },
    /// Red-reversed by its issuer: final.
    Reversed {
        /// When.
        height: u64,
    },
    /// Exchanged for paper: final for electronic reimbursement.
    PaperExchanged {
        /// When.
        height: u64,
    },
}

impl BillStatus {
    /// The status as the public contract names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            BillStatus::Issued => "issued",
            BillStatus::Locked { .. } => "locked",
            BillStatus::Reimbursed { .. } => "reimbursed",
            BillStatus::Reversed { .. } => "reversed",
            BillStatus::PaperExchanged { .. } => "paper_exchanged",
        }
    }

    /// True for a status that can never change again.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            BillStatus::Reimbursed { .. }
                | BillStatus::Reversed { .. }
                | BillStatus::PaperExchanged { .. }
        )
    }
}

impl Canonical for BillStatus {
    fn encode_to(&self, enc: &mut Encoder) {
        match self {
            BillStatus::Issued => {
                enc.u8(1);
            }
            BillStatus::Locked { by, height } => {
                enc.u8(2);
                by.encode_to(enc);
                enc.u64(*height);
            }
            BillStatus::Reimbursed { by, height } => {
                enc.u8(3);
                by.encode_to(enc);
                enc.u64(*height);
            }
            BillStatus::Reversed { height } => {
                enc.u8(4).u64(*height);
            }
            BillStatus::PaperExchanged { height } => {
                enc.u8(5).u64(*height);
            }
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match dec.u8("bill status")? {
            1 => BillStatus::Issued,
            2 => BillStatus::Locked {
                by: CreditCode::decode_from(dec)?,
                height: dec.u64("height")?,
            },
            3 => BillStatus::Reimbursed {
                by: CreditCode::decode_from(dec)?,
                height: dec.u64("height")?,
            },
            4 => BillStatus::Reversed {
                height: dec.u64("height")?,
            },
            5 => BillStatus::PaperExchanged {
                height: dec.u64("height")?,
            },
            v => {
                return Err(DecodeError::InvalidTag {
                    what: "bill status",
                    value: u64::from(v),
                });
            }
        })
    }
}
