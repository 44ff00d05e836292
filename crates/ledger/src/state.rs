//! What the ledger knows: bill records with their history, the registry of units, and
//! which transactions were applied. Read through [`StateView`]; changed only through a
//! [`ChangeSet`] that a block's execution produces and a store commits atomically.

use std::collections::{BTreeMap, BTreeSet};

use ebill_types::codec::{Canonical, DecodeError, Decoder, Encoder};
pub use ebill_types::status::BillStatus;
use ebill_types::{BillId, CheckCode, CodePrefix, CreditCode, Hash32, PublicKey, TxId, TxKind};
use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::gov::{GovState, ProposalRecord};
use ebill_types::tx::ProposalId;

/// Where a committed transaction is: block height and position in the block.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Position in the block, from 0.
    pub index: u32,
}

impl TxLocation {
    /// The location of the transaction at `position` in the block at `height`.
    ///
    /// # Panics
    /// If `position` does not fit in `u32`: a block's transaction count is bounded by
    /// `u32` (the header's `tx_count`) before it is committed, so a larger position is a
    /// bug, not an input to clamp.
    pub fn in_block(height: u64, position: usize) -> Self {
        let index = u32::try_from(position);
        assert!(
            index.is_ok(),
            "invariant: transaction position {position} of block {height} exceeds u32"
        );
        Self {
            height,
            index: index.unwrap_or(u32::MAX),
        }
    }
}

/// One step in a bill's life.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// What was done.
    pub action: TxKind,
    /// By which unit.
    pub by: CreditCode,
    /// At which height.
    pub height: u64,
    /// Block time, ms since the epoch.
    pub time_ms: u64,
    /// The transaction.
    pub tx_id: TxId,
}

/// Everything the ledger keeps about one bill. The bill itself is in its IssueBill
/// transaction, found by `issue_tx`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BillRecord {
    /// The bill.
    pub id: BillId,
    /// Its issuer.
    pub issuer: CreditCode,
    /// Its check code.
    pub check_code: CheckCode,
    /// Its status now.
    pub status: BillStatus,
    /// Every step from issue on, in order; the first is the issue.
    pub history: Vec<HistoryEntry>,
}

impl BillRecord {
    /// The IssueBill transaction id.
    pub fn issue_tx(&self) -> TxId {
        self.history
            .first()
            .map(|h| h.tx_id)
            .unwrap_or(Hash32::ZERO)
    }

    /// Height at which it was issued.
    pub fn issue_height(&self) -> u64 {
        self.history.first().map(|h| h.height).unwrap_or(0)
    }
}

fn kind_from_tag(tag: u8) -> Result<TxKind, DecodeError> {
    TxKind::ALL
        .iter()
        .copied()
        .find(|k| k.tag() == tag)
        .ok_or(DecodeError::InvalidTag {
            what: "history action",
            value: u64::from(tag),
        })
}

impl Canonical for BillRecord {
    fn encode_to(&self, enc: &mut Encoder) {
        self.id.encode_to(enc);
        self.issuer.encode_to(enc);
        self.check_code.encode_to(enc);
        self.status.encode_to(enc);
        enc.seq(&self.history, |e, h| {
            e.u8(h.action.tag());
            h.by.encode_to(e);
            e.u64(h.height).u64(h.time_ms);
            h.tx_id.encode_to(e);
        });
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: BillId::decode_from(dec)?,
            issuer: CreditCode::decode_from(dec)?,
            check_code: CheckCode::decode_from(dec)?,
            status: BillStatus::decode_from(dec)?,
            history: dec.seq(
                "bill history",
                ebill_types::limits::MAX_BILL_HISTORY + 1,
                |d| {
                    Ok(HistoryEntry {
                        action: kind_from_tag(d.u8("action")?)?,
                        by: CreditCode::decode_from(d)?,
                        height: d.u64("height")?,
                        time_ms: d.u64("time")?,
                        tx_id: Hash32::decode_from(d)?,
                    })
                },
            )?,
        })
    }
}

/// A unit's role.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum UnitRole {
    /// Issues bills under these code prefixes.
    Issuer {
        /// Allowed prefixes.
        code_prefixes: Vec<CodePrefix>,
    },
    /// Locks and reimburses bills.
    Reimburser,
}

/// A registry change of a unit, for proofs of which key was valid when.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UnitEvent {
    /// What happened (RegisterIssuer, RegisterReimburser, RotateKey, RevokeUnit).
    pub action: TxKind,
    /// At which height.
    pub height: u64,
    /// The transaction.
    pub tx_id: TxId,
}

/// A registered unit.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UnitRecord {
    /// Its credit code.
    pub credit_code: CreditCode,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: UnitRole,
    /// Its current key.
    pub public_key: PublicKey,
    /// Height of revocation, if revoked.
    pub revoked_at: Option<u64>,
    /// Registry changes after genesis (empty for a unit of the genesis never changed).
    pub events: Vec<UnitEvent>,
    /// The end of its qualification (开票资格), if it lapses: after it, by block time,
    /// the unit signs nothing new until renewed; what it signed stays valid.
    #[serde(default)]
    pub valid_until: Option<ebill_types::Timestamp>,
}

impl Canonical for UnitRecord {
    fn encode_to(&self, enc: &mut Encoder) {
        self.credit_code.encode_to(enc);
        enc.str(&self.name);
        match &self.role {
            UnitRole::Issuer { code_prefixes } => {
                enc.u8(1);
                enc.seq(code_prefixes, |e, p| p.encode_to(e));
            }
            UnitRole::Reimburser => {
                enc.u8(2);
            }
        }
        self.public_key.encode_to(enc);
        enc.option(self.revoked_at.as_ref(), |e, h| {
            e.u64(*h);
        });
        enc.seq(&self.events, |e, ev| {
            e.u8(ev.action.tag()).u64(ev.height);
            ev.tx_id.encode_to(e);
        });
        enc.option(self.valid_until.as_ref(), |e, t| t.encode_to(e));
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let credit_code = CreditCode::decode_from(dec)?;
        let name = dec
            .str("unit name", ebill_types::limits::MAX_NAME_BYTES)?
            .to_owned();
        let role = match dec.u8("unit role")? {
            1 => UnitRole::Issuer {
                code_prefixes: dec.seq(
                    "code prefixes",
                    ebill_types::limits::MAX_CODE_PREFIXES,
                    CodePrefix::decode_from,
                )?,
            },
            2 => UnitRole::Reimburser,
            v => {
                return Err(DecodeError::InvalidTag {
                    what: "unit role",
                    value: u64::from(v),
                });
            }
        };
        Ok(Self {
            credit_code,
            name,
            role,
            public_key: PublicKey::decode_from(dec)?,
            revoked_at: dec.option("revoked at", |d| d.u64("height"))?,
            events: dec.seq("unit events", MAX_UNIT_EVENTS, |d| {
                Ok(UnitEvent {
                    action: kind_from_tag(d.u8("action")?)?,
                    height: d.u64("height")?,
                    tx_id: Hash32::decode_from(d)?,
                })
            })?,
            valid_until: dec.option("valid until", ebill_types::Timestamp::decode_from)?,
        })
    }
}

/// Registry changes one unit may take (registration, key rotations, prefix changes,
/// renewals, revocation).
pub const MAX_UNIT_EVENTS: usize = 66;

/// Read access to the state as of the last committed block.
pub trait StateView {
    /// A bill's record.
    fn bill(&self, id: &BillId) -> Result<Option<BillRecord>, StateError>;
    /// A unit's record.
    fn unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StateError>;
    /// Where a transaction was committed, if it was.
    fn tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StateError>;
    /// The governance record; `None` in a state that never had one written (then the
    /// genesis regulators at sequence 0 are in force).
    fn governance(&self) -> Result<Option<GovState>, StateError>;
    /// A proposal's record.
    fn proposal(&self, id: &ProposalId) -> Result<Option<ProposalRecord>, StateError>;
}

/// The state changes of one block: what a store writes, in one batch, with the block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Bills created or changed, with their new records.
    pub bills: BTreeMap<BillId, BillRecord>,
    /// Units created or changed.
    pub units: BTreeMap<CreditCode, UnitRecord>,
    /// Transactions applied, in block order, with their ids.
    pub txs: Vec<TxId>,
    /// The governance record, when it changes (at genesis, and with every governance
    /// action executed).
    pub governance: Option<GovState>,
    /// Proposals created or changed.
    pub proposals: BTreeMap<ProposalId, ProposalRecord>,
    /// The state tree's update for these changes, once computed against the state they
    /// apply to (the engine computes it to check a block's state root; a store computes
    /// it itself when it is absent).
    pub tree: Option<ebill_types::state_store::TreeChange>,
}

/// A whole state in memory: for tests, the simulator and the in-memory store.
#[derive(Clone, Debug, Default)]
pub struct MemState {
    /// Bills.
    pub bills: BTreeMap<BillId, BillRecord>,
    /// Units.
    pub units: BTreeMap<CreditCode, UnitRecord>,
    /// Applied transactions.
    pub txs: BTreeMap<TxId, TxLocation>,
    /// The governance record.
    pub governance: Option<GovState>,
    /// Proposals.
    pub proposals: BTreeMap<ProposalId, ProposalRecord>,
}

impl MemState {
    /// Applies a block's changes at `height`.
    pub fn commit(&mut self, height: u64, changes: &ChangeSet) {
        for (id, rec) in &changes.bills {
            self.bills.insert(*id, rec.clone());
        }
        for (code, rec) in &changes.units {
            self.units.insert(*code, rec.clone());
        }
        if let Some(g) = &changes.governance {
            self.governance = Some(g.clone());
        }
        for (id, rec) in &changes.proposals {
            self.proposals.insert(*id, rec.clone());
        }
        for (i, tx) in changes.txs.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or_else(|_| unreachable!("block over 4G txs"));
            let previous = self.txs.insert(*tx, TxLocation { height, index });
            assert!(previous.is_none(), "transaction {tx} committed twice");
        }
    }

    /// Ids of every bill.
    pub fn bill_ids(&self) -> BTreeSet<BillId> {
        self.bills.keys().copied().collect()
    }
}

impl StateView for MemState {
    fn bill(&self, id: &BillId) -> Result<Option<BillRecord>, StateError> {
        Ok(self.bills.get(id).cloned())
    }
    fn unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StateError> {
        Ok(self.units.get(code).cloned())
    }
    fn tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StateError> {
        Ok(self.txs.get(id).copied())
    }
    fn governance(&self) -> Result<Option<GovState>, StateError> {
        Ok(self.governance.clone())
    }
    fn proposal(&self, id: &ProposalId) -> Result<Option<ProposalRecord>, StateError> {
        Ok(self.proposals.get(id).cloned())
    }
}
