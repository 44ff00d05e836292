//! Transactions (docs/design.md §3) and their canonical signed bytes (§5;
//! docs/spec/transaction.md).
//!
//! A transaction's id is the SHA-256 of its signing bytes: the domain tag
//! `ebill/tx/v1`, the chain id, the nonce and the body. Signatures are outside the id,
//! so that a governance transaction signed by another subset of regulators is still the
//! same transaction and can never be applied twice. The block's Merkle tree commits to
//! the whole signed encoding (see `Block`), so signatures are fixed by the chain too.

use serde::{Deserialize, Serialize};

use crate::bill::{Bill, BillId, CheckCode, CodePrefix, SignedBill, wire_enum};
use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::credit_code::CreditCode;
use crate::hash::Hash32;
use crate::keys::{Keypair, PublicKey, Signature};
use crate::limits;
use crate::text::check_text;
use crate::timestamp::Timestamp;

/// A transaction id: SHA-256 of the signing bytes.
pub type TxId = Hash32;

/// Domain tag of transaction signing bytes.
pub const TX_DOMAIN: &str = "ebill/tx/v1";

wire_enum!(
    /// The kind of a transaction, its wire tag and its JSON name.
    TxKind, "transaction kind", {
        /// Issue a bill.
        IssueBill = 1, "issue_bill";
        /// Red-reverse (冲红) a bill.
        RedReverse = 2, "red_reverse";
        /// Exchange a bill for paper (换开).
        ExchangePaper = 3, "exchange_paper";
        /// Lock a bill for reimbursement.
        Lock = 4, "lock";
        /// Release a lock.
        Unlock = 5, "unlock";
        /// Confirm a bill reimbursed (final).
        ConfirmReimbursed = 6, "confirm_reimbursed";
        /// Register an issuing unit.
        RegisterIssuer = 7, "register_issuer";
        /// Register a reimbursing unit.
        RegisterReimburser = 8, "register_reimburser";
        /// Revoke a unit.
        RevokeUnit = 9, "revoke_unit";
        /// Replace a unit's key.
        RotateKey = 10, "rotate_key";
        /// Replace an issuer's code prefixes.
        SetPrefixes = 11, "set_prefixes";
        /// Extend a unit's qualification (开票资格) to a new date.
        RenewQualification = 12, "renew_qualification";
        /// Add a regulator.
        AddRegulator = 13, "add_regulator";
        /// Remove a regulator.
        RemoveRegulator = 14, "remove_regulator";
        /// Change how many regulators must agree.
        SetThreshold = 15, "set_threshold";
        /// Put a governance action to the regulators (one regulator signs).
        Propose = 16, "propose";
        /// Approve a pending proposal (one regulator signs).
        Approve = 17, "approve";
        /// Reject a pending proposal (one regulator signs).
        Reject = 18, "reject";
        /// Withdraw a pending proposal (its proposer signs).
        Withdraw = 19, "withdraw";
    }
);

/// A proposal id: SHA-256 of [`PROPOSAL_DOMAIN`], the chain id and the canonical bytes
/// of the `Propose` body (action, expiry, base sequence), see [`TxBody::proposal_id`].
pub type ProposalId = Hash32;

/// Domain tag of proposal ids.
pub const PROPOSAL_DOMAIN: &str = "ebill/gov-proposal/v1";

impl TxKind {
    /// Whether this kind is a governance action: what k of n regulators sign directly,
    /// and what a proposal may carry.
    pub fn is_gov_action(self) -> bool {
        matches!(
            self,
            TxKind::RegisterIssuer
                | TxKind::RegisterReimburser
                | TxKind::RevokeUnit
                | TxKind::RotateKey
                | TxKind::SetPrefixes
                | TxKind::RenewQualification
                | TxKind::AddRegulator
                | TxKind::RemoveRegulator
                | TxKind::SetThreshold
        )
    }
}

/// What a transaction does.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TxBody {
    /// Issue a bill; signed by the issuer named in it.
    IssueBill(Bill),
    /// Red-reverse a bill: Issued -> Reversed; signed by its issuer.
    RedReverse {
        /// The bill's issuer.
        issuer: CreditCode,
        /// The bill.
        bill: BillId,
        /// Why.
        reason: String,
    },
    /// Exchange a bill for paper: Issued -> PaperExchanged; signed by its issuer.
    ExchangePaper {
        /// The bill's issuer.
        issuer: CreditCode,
        /// The bill.
        bill: BillId,
    },
    /// Lock a bill for reimbursement: Issued -> Locked(unit).
    Lock {
        /// The reimbursing unit.
        unit: CreditCode,
        /// The bill.
        bill: BillId,
        /// The bill's check code: proof that the unit holds the bill.
        check_code: CheckCode,
    },
    /// Release a lock: Locked(unit) -> Issued; signed by the lock holder.
    Unlock {
        /// The unit holding the lock.
        unit: CreditCode,
        /// The bill.
        bill: BillId,
    },
    /// Confirm reimbursed: Issued or Locked(unit) -> Reimbursed, final.
    ConfirmReimbursed {
        /// The reimbursing unit.
        unit: CreditCode,
        /// The bill.
        bill: BillId,
        /// The bill's check code.
        check_code: CheckCode,
    },
    /// Register an issuing unit; k of n regulators.
    RegisterIssuer {
        /// The unit's credit code.
        credit_code: CreditCode,
        /// Its name.
        name: String,
        /// Its signing key.
        public_key: PublicKey,
        /// Bill-code prefixes it may issue under.
        code_prefixes: Vec<CodePrefix>,
        /// Its qualification (开票资格) holds until this moment; after it, by block
        /// time, the unit signs nothing new until renewed.
        valid_until: Timestamp,
    },
    /// Register a reimbursing unit; k of n regulators.
    RegisterReimburser {
        /// The unit's credit code.
        credit_code: CreditCode,
        /// Its name.
        name: String,
        /// Its signing key.
        public_key: PublicKey,
    },
    /// Revoke a unit: it signs nothing new; what it signed stays valid.
    RevokeUnit {
        /// The unit.
        credit_code: CreditCode,
        /// Why.
        reason: String,
    },
    /// Replace a unit's key.
    RotateKey {
        /// The unit.
        credit_code: CreditCode,
        /// The new key.
        public_key: PublicKey,
    },
    /// Replace an issuer's bill-code prefixes; k of n regulators.
    SetPrefixes {
        /// The issuing unit.
        credit_code: CreditCode,
        /// Its new prefixes (replacing the old ones).
        code_prefixes: Vec<CodePrefix>,
    },
    /// Set a unit's qualification to a new date; k of n regulators.
    RenewQualification {
        /// The unit.
        credit_code: CreditCode,
        /// The new end of its qualification.
        valid_until: Timestamp,
    },
    /// Add a regulator to the set; k of n regulators.
    AddRegulator {
        /// A human name.
        name: String,
        /// Its governance key.
        public_key: PublicKey,
    },
    /// Remove a regulator from the set; k of n regulators.
    RemoveRegulator {
        /// Its governance key.
        public_key: PublicKey,
    },
    /// Change the threshold k; k of n regulators.
    SetThreshold {
        /// The new threshold.
        threshold: u16,
    },
    /// Put a governance action to the regulators; signed by one regulator (index in the
    /// regulator set in force), whose signature counts as the first approval.
    Propose {
        /// The action: a governance body ([`TxKind::is_gov_action`]).
        action: Box<TxBody>,
        /// The last height at which it may still pass.
        expires_at_height: u64,
        /// The governance sequence number it was written against: it executes only if
        /// no governance action executed since.
        base_gov_seq: u64,
    },
    /// Approve a proposal; one regulator of the set in force when it was proposed
    /// (index in that set).
    Approve {
        /// The proposal.
        proposal: ProposalId,
    },
    /// Reject a proposal; one regulator of the set in force when it was proposed.
    Reject {
        /// The proposal.
        proposal: ProposalId,
    },
    /// Withdraw a proposal; its proposer.
    Withdraw {
        /// The proposal.
        proposal: ProposalId,
    },
}

/// Who must sign a transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Actor {
    /// One registered unit.
    Unit(CreditCode),
    /// k of the n regulators in force (the genesis set until governance changes it).
    Regulators,
    /// One regulator: a proposal, or a vote on one.
    Regulator,
}

impl TxBody {
    /// The kind.
    pub fn kind(&self) -> TxKind {
        match self {
            TxBody::IssueBill(_) => TxKind::IssueBill,
            TxBody::RedReverse { .. } => TxKind::RedReverse,
            TxBody::ExchangePaper { .. } => TxKind::ExchangePaper,
            TxBody::Lock { .. } => TxKind::Lock,
            TxBody::Unlock { .. } => TxKind::Unlock,
            TxBody::ConfirmReimbursed { .. } => TxKind::ConfirmReimbursed,
            TxBody::RegisterIssuer { .. } => TxKind::RegisterIssuer,
            TxBody::RegisterReimburser { .. } => TxKind::RegisterReimburser,
            TxBody::RevokeUnit { .. } => TxKind::RevokeUnit,
            TxBody::RotateKey { .. } => TxKind::RotateKey,
            TxBody::SetPrefixes { .. } => TxKind::SetPrefixes,
            TxBody::RenewQualification { .. } => TxKind::RenewQualification,
            TxBody::AddRegulator { .. } => TxKind::AddRegulator,
            TxBody::RemoveRegulator { .. } => TxKind::RemoveRegulator,
            TxBody::SetThreshold { .. } => TxKind::SetThreshold,
            TxBody::Propose { .. } => TxKind::Propose,
            TxBody::Approve { .. } => TxKind::Approve,
            TxBody::Reject { .. } => TxKind::Reject,
            TxBody::Withdraw { .. } => TxKind::Withdraw,
        }
    }

    /// The id of a `Propose` body on `chain_id` (`None` for any other body).
    pub fn proposal_id(&self, chain_id: &str) -> Option<ProposalId> {
        if !matches!(self, TxBody::Propose { .. }) {
            return None;
        }
        let mut enc = Encoder::with_domain(PROPOSAL_DOMAIN);
        enc.str(chain_id);
        self.encode_to(&mut enc);
        Some(Hash32::digest(&enc.finish()))
    }

    /// The unit a governance action concerns, if any.
    pub fn gov_unit(&self) -> Option<CreditCode> {
        match self {
            TxBody::RegisterIssuer { credit_code, .. }
            | TxBody::RegisterReimburser { credit_code, .. }
            | TxBody::RevokeUnit { credit_code, .. }
            | TxBody::RotateKey { credit_code, .. }
            | TxBody::SetPrefixes { credit_code, .. }
            | TxBody::RenewQualification { credit_code, .. } => Some(*credit_code),
            _ => None,
        }
    }

    /// Who must sign it.
    pub fn actor(&self) -> Actor {
        match self {
            TxBody::IssueBill(bill) => Actor::Unit(bill.issuer),
            TxBody::RedReverse { issuer, .. } | TxBody::ExchangePaper { issuer, .. } => {
                Actor::Unit(*issuer)
            }
            TxBody::Lock { unit, .. }
            | TxBody::Unlock { unit, .. }
            | TxBody::ConfirmReimbursed { unit, .. } => Actor::Unit(*unit),
            TxBody::Propose { .. }
            | TxBody::Approve { .. }
            | TxBody::Reject { .. }
            | TxBody::Withdraw { .. } => Actor::Regulator,
            _ => Actor::Regulators,
        }
    }

    /// The bill it concerns, if any.
    pub fn bill_id(&self) -> Option<BillId> {
        match self {
            TxBody::IssueBill(bill) => Some(bill.id()),
            TxBody::RedReverse { bill, .. }
            | TxBody::ExchangePaper { bill, .. }
            | TxBody::Lock { bill, .. }
            | TxBody::Unlock { bill, .. }
            | TxBody::ConfirmReimbursed { bill, .. } => Some(*bill),
            _ => None,
        }
    }

    /// Checks the rules that need no ledger state (field formats and limits, the bounds
    /// of the chain's `params`).
    pub fn validate(&self, params: &crate::genesis::Params) -> Result<(), crate::bill::BillError> {
        match self {
            TxBody::IssueBill(bill) => bill.validate(params),
            TxBody::RedReverse { reason, .. } | TxBody::RevokeUnit { reason, .. } => {
                check_text("reason", reason, limits::MAX_REASON_BYTES, false)
            }
            TxBody::RegisterIssuer {
                name,
                code_prefixes,
                ..
            } => {
                check_text("name", name, limits::MAX_NAME_BYTES, false)?;
                check_prefixes(code_prefixes)
            }
            TxBody::SetPrefixes { code_prefixes, .. } => check_prefixes(code_prefixes),
            TxBody::RegisterReimburser { name, .. } | TxBody::AddRegulator { name, .. } => {
                check_text("name", name, limits::MAX_NAME_BYTES, false)
            }
            TxBody::SetThreshold { threshold } => {
                if *threshold == 0 || usize::from(*threshold) > limits::MAX_REGULATORS {
                    return Err(crate::bill::BillError::Field {
                        field: "threshold",
                        reason: format!("1 to {}", limits::MAX_REGULATORS),
                    });
                }
                Ok(())
            }
            TxBody::Propose { action, .. } => {
                if !action.kind().is_gov_action() {
                    return Err(crate::bill::BillError::Field {
                        field: "action",
                        reason: format!("{} is not a governance action", action.kind().as_str()),
                    });
                }
                action.validate(params)
            }
            _ => Ok(()),
        }
    }
}

/// 1 to [`limits::MAX_CODE_PREFIXES`] prefixes, none twice.
fn check_prefixes(code_prefixes: &[CodePrefix]) -> Result<(), crate::bill::BillError> {
    if code_prefixes.is_empty() || code_prefixes.len() > limits::MAX_CODE_PREFIXES {
        return Err(crate::bill::BillError::Field {
            field: "code_prefixes",
            reason: format!("1 to {} prefixes", limits::MAX_CODE_PREFIXES),
        });
    }
    let distinct: std::collections::BTreeSet<_> = code_prefixes.iter().collect();
    if distinct.len() != code_prefixes.len() {
        return Err(crate::bill::BillError::Field {
            field: "code_prefixes",
            reason: "a prefix appears twice".into(),
        });
    }
    Ok(())
}

impl Canonical for TxBody {
    fn encode_to(&self, enc: &mut Encoder) {
        self.kind().encode_to(enc);
        match self {
            TxBody::IssueBill(bill) => bill.encode_to(enc),
            TxBody::RedReverse {
                issuer,
                bill,
                reason,
            } => {
                issuer.encode_to(enc);
                bill.encode_to(enc);
                enc.str(reason);
            }
            TxBody::ExchangePaper { issuer, bill } => {
                issuer.encode_to(enc);
                bill.encode_to(enc);
            }
            TxBody::Lock {
                unit,
                bill,
                check_code,
            }
            | TxBody::ConfirmReimbursed {
                unit,
                bill,
                check_code,
            } => {
                unit.encode_to(enc);
                bill.encode_to(enc);
                check_code.encode_to(enc);
            }
            TxBody::Unlock { unit, bill } => {
                unit.encode_to(enc);
                bill.encode_to(enc);
            }
            TxBody::RegisterIssuer {
                credit_code,
                name,
                public_key,
                code_prefixes,
                valid_until,
            } => {
                credit_code.encode_to(enc);
                enc.str(name);
                public_key.encode_to(enc);
                enc.seq(code_prefixes, |e, p| p.encode_to(e));
                valid_until.encode_to(enc);
            }
            TxBody::RegisterReimburser {
                credit_code,
                name,
                public_key,
            } => {
                credit_code.encode_to(enc);
                enc.str(name);
                public_key.encode_to(enc);
            }
            TxBody::RevokeUnit {
                credit_code,
                reason,
            } => {
                credit_code.encode_to(enc);
                enc.str(reason);
            }
            TxBody::RotateKey {
                credit_code,
                public_key,
            } => {
                credit_code.encode_to(enc);
                public_key.encode_to(enc);
            }
            TxBody::SetPrefixes {
                credit_code,
                code_prefixes,
            } => {
                credit_code.encode_to(enc);
                enc.seq(code_prefixes, |e, p| p.encode_to(e));
            }
            TxBody::RenewQualification {
                credit_code,
                valid_until,
            } => {
                credit_code.encode_to(enc);
                valid_until.encode_to(enc);
            }
            TxBody::AddRegulator { name, public_key } => {
                enc.str(name);
                public_key.encode_to(enc);
            }
            TxBody::RemoveRegulator { public_key } => public_key.encode_to(enc),
            TxBody::SetThreshold { threshold } => {
                enc.u16(*threshold);
            }
            TxBody::Propose {
                action,
                expires_at_height,
                base_gov_seq,
            } => {
                action.encode_to(enc);
                enc.u64(*expires_at_height).u64(*base_gov_seq);
            }
            TxBody::Approve { proposal }
            | TxBody::Reject { proposal }
            | TxBody::Withdraw { proposal } => proposal.encode_to(enc),
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let kind = TxKind::decode_from(dec)?;
        Self::decode_fields(kind, dec)
    }
}

impl TxBody {
    /// The fields of a body of `kind` (its tag read already). A proposal's action is
    /// read only after its tag is known to be a governance action, so proposals do not
    /// nest.
    fn decode_fields(kind: TxKind, dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match kind {
            TxKind::IssueBill => TxBody::IssueBill(Bill::decode_from(dec)?),
            TxKind::RedReverse => TxBody::RedReverse {
                issuer: CreditCode::decode_from(dec)?,
                bill: BillId::decode_from(dec)?,
                reason: dec.str("reason", limits::MAX_REASON_BYTES)?.to_owned(),
            },
            TxKind::ExchangePaper => TxBody::ExchangePaper {
                issuer: CreditCode::decode_from(dec)?,
                bill: BillId::decode_from(dec)?,
            },
            TxKind::Lock => TxBody::Lock {
                unit: CreditCode::decode_from(dec)?,
                bill: BillId::decode_from(dec)?,
                check_code: CheckCode::decode_from(dec)?,
            },
            TxKind::Unlock => TxBody::Unlock {
                unit: CreditCode::decode_from(dec)?,
                bill: BillId::decode_from(dec)?,
            },
            TxKind::ConfirmReimbursed => TxBody::ConfirmReimbursed {
                unit: CreditCode::decode_from(dec)?,
                bill: BillId::decode_from(dec)?,
                check_code: CheckCode::decode_from(dec)?,
            },
            TxKind::RegisterIssuer => TxBody::RegisterIssuer {
                credit_code: CreditCode::decode_from(dec)?,
                name: dec.str("name", limits::MAX_NAME_BYTES)?.to_owned(),
                public_key: PublicKey::decode_from(dec)?,
                code_prefixes: dec.seq(
                    "code prefixes",
                    limits::MAX_CODE_PREFIXES,
                    CodePrefix::decode_from,
                )?,
                valid_until: Timestamp::decode_from(dec)?,
            },
            TxKind::RegisterReimburser => TxBody::RegisterReimburser {
                credit_code: CreditCode::decode_from(dec)?,
                name: dec.str("name", limits::MAX_NAME_BYTES)?.to_owned(),
                public_key: PublicKey::decode_from(dec)?,
            },
            TxKind::RevokeUnit => TxBody::RevokeUnit {
                credit_code: CreditCode::decode_from(dec)?,
                reason: dec.str("reason", limits::MAX_REASON_BYTES)?.to_owned(),
            },
            TxKind::RotateKey => TxBody::RotateKey {
                credit_code: CreditCode::decode_from(dec)?,
                public_key: PublicKey::decode_from(dec)?,
            },
            TxKind::SetPrefixes => TxBody::SetPrefixes {
                credit_code: CreditCode::decode_from(dec)?,
                code_prefixes: dec.seq(
                    "code prefixes",
                    limits::MAX_CODE_PREFIXES,
                    CodePrefix::decode_from,
                )?,
            },
            TxKind::RenewQualification => TxBody::RenewQualification {
                credit_code: CreditCode::decode_from(dec)?,
                valid_until: Timestamp::decode_from(dec)?,
            },
            TxKind::AddRegulator => TxBody::AddRegulator {
                name: dec.str("name", limits::MAX_NAME_BYTES)?.to_owned(),
                public_key: PublicKey::decode_from(dec)?,
            },
            TxKind::RemoveRegulator => TxBody::RemoveRegulator {
                public_key: PublicKey::decode_from(dec)?,
            },
            TxKind::SetThreshold => TxBody::SetThreshold {
                threshold: dec.u16("threshold")?,
            },
            TxKind::Propose => {
                let inner = TxKind::decode_from(dec)?;
                if !inner.is_gov_action() {
                    return Err(DecodeError::Invalid {
                        what: "proposal action",
                        reason: format!("{} is not a governance action", inner.as_str()),
                    });
                }
                TxBody::Propose {
                    action: Box::new(Self::decode_fields(inner, dec)?),
                    expires_at_height: dec.u64("expires at height")?,
                    base_gov_seq: dec.u64("base governance sequence")?,
                }
            }
            TxKind::Approve => TxBody::Approve {
                proposal: Hash32::decode_from(dec)?,
            },
            TxKind::Reject => TxBody::Reject {
                proposal: Hash32::decode_from(dec)?,
            },
            TxKind::Withdraw => TxBody::Withdraw {
                proposal: Hash32::decode_from(dec)?,
            },
        })
    }
}

/// A transaction before signing.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tx {
    /// Makes otherwise identical transactions distinct (lock, unlock, lock again). Must be
    /// 0 for IssueBill, whose bill id already makes it unique, so that the signed bill
    /// file alone rebuilds its transaction.
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
}

impl Tx {
    /// The bytes that are signed: domain tag, chain id, nonce, body.
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        let mut enc = Encoder::with_domain(TX_DOMAIN);
        enc.str(chain_id).u64(self.nonce);
        self.body.encode_to(&mut enc);
        enc.finish()
    }

    /// The transaction id on `chain_id`.
    pub fn id(&self, chain_id: &str) -> TxId {
        Hash32::digest(&self.signing_bytes(chain_id))
    }

    /// Signs as a unit.
    pub fn sign_unit(self, chain_id: &str, key: &Keypair) -> SignedTx {
        let signature = key.sign(&self.signing_bytes(chain_id));
        SignedTx {
            tx: self,
            auth: Auth::Unit(signature),
        }
    }

    /// Signs as one regulator (a proposal or a vote): `index` in the regulator set that
    /// counts for it.
    pub fn sign_regulator(self, chain_id: &str, index: u16, key: &Keypair) -> SignedTx {
        self.sign_regulators(chain_id, &[(index, key)])
    }

    /// Signs as regulators: `keys` are (index in the regulator set in force, key).
    pub fn sign_regulators(self, chain_id: &str, keys: &[(u16, &Keypair)]) -> SignedTx {
        let msg = self.signing_bytes(chain_id);
        let mut sigs: Vec<RegulatorSignature> = keys
            .iter()
            .map(|(index, key)| RegulatorSignature {
                index: *index,
                signature: key.sign(&msg),
            })
            .collect();
        sigs.sort_by_key(|s| s.index);
        SignedTx {
            tx: self,
            auth: Auth::Regulators(sigs),
        }
    }
}

impl Canonical for Tx {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.u64(self.nonce);
        self.body.encode_to(enc);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: dec.u64("nonce")?,
            body: TxBody::decode_from(dec)?,
        })
    }
}

/// One regulator's signature on a governance transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegulatorSignature {
    /// Position of the regulator in the regulator set that counts: the set in force for
    /// a direct action or a proposal, the proposal's own set for a vote on it.
    pub index: u16,
    /// Its signature over the signing bytes.
    pub signature: Signature,
}

/// The signatures on a transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// One unit's signature.
    Unit(Signature),
    /// Regulators' signatures, in strictly increasing index order.
    Regulators(Vec<RegulatorSignature>),
}

impl Canonical for Auth {
    fn encode_to(&self, enc: &mut Encoder) {
        match self {
            Auth::Unit(sig) => {
                enc.u8(1);
                sig.encode_to(enc);
            }
            Auth::Regulators(sigs) => {
                enc.u8(2);
                enc.seq(sigs, |e, s| {
                    e.u16(s.index);
                    s.signature.encode_to(e);
                });
            }
        }
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match dec.u8("auth")? {
            1 => Ok(Auth::Unit(Signature::decode_from(dec)?)),
            2 => {
                let sigs = dec.seq("regulator signatures", limits::MAX_REGULATORS, |d| {
                    Ok(RegulatorSignature {
                        index: d.u16("regulator index")?,
                        signature: Signature::decode_from(d)?,
                    })
                })?;
                // One canonical form: strictly increasing indices.
                if sigs.windows(2).any(|w| w[0].index >= w[1].index) {
                    return Err(DecodeError::Invalid {
                        what: "regulator signatures",
                        reason: "indices must strictly increase".into(),
                    });
                }
                Ok(Auth::Regulators(sigs))
            }
            v => Err(DecodeError::InvalidTag {
                what: "auth",
                value: u64::from(v),
            }),
        }
    }
}

/// A signed transaction: what clients submit, blocks carry and Merkle leaves commit to.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTx {
    /// The transaction.
    pub tx: Tx,
    /// Its signatures.
    pub auth: Auth,
}

impl SignedTx {
    /// The IssueBill transaction that a signed bill file stands for.
    pub fn from_signed_bill(signed: &SignedBill) -> Self {
        SignedTx {
            tx: Tx {
                nonce: 0,
                body: TxBody::IssueBill(signed.bill.clone()),
            },
            auth: Auth::Unit(signed.signature),
        }
    }

    /// The signed bill file of an IssueBill transaction.
    pub fn to_signed_bill(&self) -> Option<SignedBill> {
        match (&self.tx.body, &self.auth) {
            (TxBody::IssueBill(bill), Auth::Unit(sig)) => Some(SignedBill {
                bill: bill.clone(),
                signature: *sig,
                check_code: CheckCode::derive(sig),
            }),
            _ => None,
        }
    }

    /// Decodes a signed transaction of at most `max_bytes`, refusing any other form.
    pub fn decode_bounded(bytes: &[u8], max_bytes: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLong {
                what: "transaction",
                len: bytes.len(),
                max: max_bytes,
            });
        }
        Self::from_canonical_bytes(bytes)
    }
}

impl Canonical for SignedTx {
    fn encode_to(&self, enc: &mut Encoder) {
        self.tx.encode_to(enc);
        self.auth.encode_to(enc);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            tx: Tx::decode_from(dec)?,
            auth: Auth::decode_from(dec)?,
        })
    }
}
