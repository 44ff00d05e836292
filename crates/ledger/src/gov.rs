//! Governance state: the governance record (sequence number, regulator set, threshold)
//! and the proposals regulators vote on, with the one rule of how a proposal's votes
//! decide its end ([`ProposalRecord::status_at`], [`ProposalRecord::cannot_pass`]).
//! The executor in [`crate::apply`] checks and writes them; the canonical bytes here are
//! the values of the state tree's `Regulators` and `Proposal` leaves
//! (docs/spec/governance.md).

use ebill_types::codec::{Canonical, DecodeError, Decoder, Encoder};
use ebill_types::genesis::{Regulator, Regulators};
use ebill_types::tx::ProposalId;
use ebill_types::{Hash32, PublicKey, TxBody, TxId, limits};
use serde::{Deserialize, Serialize};

/// The governance record: what governance transactions are checked against.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GovState {
    /// How many governance actions have executed since genesis (direct or by
    /// proposal). A proposal names the value it was written against.
    pub gov_seq: u64,
    /// The regulators in force and their threshold.
    pub regulators: Regulators,
}

impl GovState {
    /// The record at genesis: sequence 0, the genesis regulators.
    pub fn genesis(regulators: &Regulators) -> Self {
        Self {
            gov_seq: 0,
            regulators: regulators.clone(),
        }
    }
}

fn encode_regulators(enc: &mut Encoder, r: &Regulators) {
    enc.u16(r.threshold);
    enc.seq(&r.keys, |e, k| {
        e.str(&k.name);
        k.public_key.encode_to(e);
    });
}

fn decode_regulators(dec: &mut Decoder<'_>) -> Result<Regulators, DecodeError> {
    let threshold = dec.u16("threshold")?;
    let keys = dec.seq("regulators", limits::MAX_REGULATORS, |d| {
        Ok(Regulator {
            name: d.str("regulator name", limits::MAX_NAME_BYTES)?.to_owned(),
            public_key: PublicKey::decode_from(d)?,
        })
    })?;
    Ok(Regulators { threshold, keys })
}

impl Canonical for GovState {
    /// gov_seq (u64), threshold (u16), then each regulator's name and key.
    fn encode_to(&self, enc: &mut Encoder) {
        enc.u64(self.gov_seq);
        encode_regulators(enc, &self.regulators);
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            gov_seq: dec.u64("governance sequence")?,
            regulators: decode_regulators(dec)?,
        })
    }
}

/// One regulator's vote on a proposal.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Vote {
    /// The regulator: its index in the proposal's regulator set.
    pub index: u16,
    /// The height of the block that holds the vote.
    pub height: u64,
    /// The transaction (the `Propose` for the proposer's own approval).
    pub tx_id: TxId,
}

/// How a proposal ended, as recorded in the state. An expired proposal is recorded as
/// `Pending`: expiry is a fact of the height ([`ProposalRecord::status_at`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProposalOutcome {
    /// Still open (or expired, past `expires_at_height`).
    Pending,
    /// Its action executed.
    Executed {
        /// In this block.
        height: u64,
        /// By this transaction (the approval that reached the threshold).
        tx_id: TxId,
    },
    /// Enough regulators rejected it that it can no longer pass.
    Rejected {
        /// In this block.
        height: u64,
    },
    /// Its proposer withdrew it.
    Withdrawn {
        /// In this block.
        height: u64,
    },
}

/// A proposal's status as seen at a height.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Open for votes.
    Pending,
    /// Executed.
    Executed,
    /// Rejected.
    Rejected,
    /// Withdrawn.
    Withdrawn,
    /// Past its last height without passing.
    Expired,
}

impl ProposalStatus {
    /// Every status.
    pub const ALL: [ProposalStatus; 5] = [
        ProposalStatus::Pending,
        ProposalStatus::Executed,
        ProposalStatus::Rejected,
        ProposalStatus::Withdrawn,
        ProposalStatus::Expired,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Executed => "executed",
            ProposalStatus::Rejected => "rejected",
            ProposalStatus::Withdrawn => "withdrawn",
            ProposalStatus::Expired => "expired",
        }
    }

    /// Reads a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A proposal and its votes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProposalRecord {
    /// Its id.
    pub id: ProposalId,
    /// The governance action it carries.
    pub action: TxBody,
    /// The last height at which it may pass.
    pub expires_at_height: u64,
    /// The governance sequence number it was written against.
    pub base_gov_seq: u64,
    /// The regulators and threshold in force when it was proposed: the votes that
    /// count are theirs, by index in this set.
    pub regulators: Regulators,
    /// The proposer's index in `regulators`.
    pub proposer: u16,
    /// Height of the `Propose`.
    pub proposed_height: u64,
    /// The `Propose` transaction.
    pub propose_tx: TxId,
    /// Approvals, the proposer's first, in order; each regulator at most once.
    pub approvals: Vec<Vote>,
    /// Rejections, in order; each regulator at most once, and never one who approved.
    pub rejections: Vec<Vote>,
    /// How it ended, if it did.
    pub outcome: ProposalOutcome,
}

impl ProposalRecord {
    /// Its status for a transaction in the block at `height`.
    pub fn status_at(&self, height: u64) -> ProposalStatus {
        match self.outcome {
            ProposalOutcome::Executed { .. } => ProposalStatus::Executed,
            ProposalOutcome::Rejected { .. } => ProposalStatus::Rejected,
            ProposalOutcome::Withdrawn { .. } => ProposalStatus::Withdrawn,
            ProposalOutcome::Pending if height > self.expires_at_height => ProposalStatus::Expired,
            ProposalOutcome::Pending => ProposalStatus::Pending,
        }
    }

    /// The vote of regulator `index`, if it voted: `(approved, vote)`.
    pub fn vote_of(&self, index: u16) -> Option<(bool, &Vote)> {
        self.approvals
            .iter()
            .find(|v| v.index == index)
            .map(|v| (true, v))
            .or_else(|| {
                self.rejections
                    .iter()
                    .find(|v| v.index == index)
                    .map(|v| (false, v))
            })
    }

    /// Whether the approvals reach the proposal's threshold.
    pub fn passes(&self) -> bool {
        self.approvals.len() >= usize::from(self.regulators.threshold)
    }

    /// Whether so many rejected that the threshold can no longer be reached by the
    /// regulators who have not rejected.
    pub fn cannot_pass(&self) -> bool {
        self.regulators
            .keys
            .len()
            .saturating_sub(self.rejections.len())
            < usize::from(self.regulators.threshold)
    }

    /// Approvals still missing to reach the threshold.
    pub fn approvals_missing(&self) -> usize {
        usize::from(self.regulators.threshold).saturating_sub(self.approvals.len())
    }
}

fn encode_votes(enc: &mut Encoder, votes: &[Vote]) {
    enc.seq(votes, |e, v| {
        e.u16(v.index).u64(v.height);
        v.tx_id.encode_to(e);
    });
}

fn decode_votes(dec: &mut Decoder<'_>, what: &'static str) -> Result<Vec<Vote>, DecodeError> {
    dec.seq(what, limits::MAX_REGULATORS, |d| {
        Ok(Vote {
            index: d.u16("voter index")?,
            height: d.u64("vote height")?,
            tx_id: Hash32::decode_from(d)?,
        })
    })
}

impl Canonical for ProposalRecord {
    /// id, action (a canonical `TxBody`), expires_at_height (u64), base_gov_seq (u64),
    /// the regulator set (as in [`GovState`]), proposer (u16), proposed_height (u64),
    /// propose_tx, approvals, rejections (each a sequence of index u16, height u64, tx
    /// id), then the outcome: 0 pending, 1 executed (height, tx id), 2 rejected
    /// (height), 3 withdrawn (height).
    fn encode_to(&self, enc: &mut Encoder) {
        self.id.encode_to(enc);
        self.action.encode_to(enc);
        enc.u64(self.expires_at_height).u64(self.base_gov_seq);
        encode_regulators(enc, &self.regulators);
        enc.u16(self.proposer).u64(self.proposed_height);
        self.propose_tx.encode_to(enc);
        encode_votes(enc, &self.approvals);
        encode_votes(enc, &self.rejections);
        match self.outcome {
            ProposalOutcome::Pending => {
                enc.u8(0);
            }
            ProposalOutcome::Executed { height, tx_id } => {
                enc.u8(1).u64(height);
                tx_id.encode_to(enc);
            }
            ProposalOutcome::Rejected { height } => {
                enc.u8(2).u64(height);
            }
            ProposalOutcome::Withdrawn { height } => {
                enc.u8(3).u64(height);
            }
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let id = Hash32::decode_from(dec)?;
        let action = TxBody::decode_from(dec)?;
        if !action.kind().is_gov_action() {
            return Err(DecodeError::Invalid {
                what: "proposal action",
                reason: format!("{} is not a governance action", action.kind().as_str()),
            });
        }
        Ok(Self {
            id,
            action,
            expires_at_height: dec.u64("expires at height")?,
            base_gov_seq: dec.u64("base governance sequence")?,
            regulators: decode_regulators(dec)?,
            proposer: dec.u16("proposer")?,
            proposed_height: dec.u64("proposed height")?,
            propose_tx: Hash32::decode_from(dec)?,
            approvals: decode_votes(dec, "approvals")?,
            rejections: decode_votes(dec, "rejections")?,
            outcome: match dec.u8("proposal outcome")? {
                0 => ProposalOutcome::Pending,
                1 => ProposalOutcome::Executed {
                    height: dec.u64("height")?,
                    tx_id: Hash32::decode_from(dec)?,
                },
                2 => ProposalOutcome::Rejected {
                    height: dec.u64("height")?,
                },
                3 => ProposalOutcome::Withdrawn {
                    height: dec.u64("height")?,
                },
                v => {
                    return Err(DecodeError::InvalidTag {
                        what: "proposal outcome",
                        value: u64::from(v),
                    });
                }
            },
        })
    }
}
