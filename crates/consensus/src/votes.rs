//! The message log of one height: per round, the proposal and the votes, with tallies.
//! Bounded by construction: at most one vote per (round, kind, validator) and one
//! proposal per round are kept; rounds are bounded by the caller (the round window).

use std::collections::{BTreeMap, BTreeSet};

use ebill_types::{CommitSignature, Hash32, SignedProposal, SignedVote, VoteKind};

/// What adding a vote did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AddVote {
    /// New, counted.
    Added,
    /// The very same vote was there already.
    Duplicate,
    /// The validator already voted differently; `first` is the vote that counts. Only
    /// reported once per (validator, round, kind).
    Conflict { first: SignedVote },
    /// A conflict already reported.
    ConflictAgain,
}

/// The votes of one kind in one round: the first vote of each validator counts, and an
/// equivocator's later votes count too for values proposed at the height (see
/// [`VoteSet::add_extra`]).
#[derive(Default, Debug)]
pub(crate) struct VoteSet {
    votes: BTreeMap<u32, SignedVote>,
    tally: BTreeMap<Option<Hash32>, usize>,
    reported: BTreeSet<u32>,
    /// Conflicting votes of equivocators, one per (validator, value), only for values
    /// some proposal of the height names (so bounded by the stored proposals).
    extra: BTreeMap<(u32, Hash32), SignedVote>,
}

impl VoteSet {
    pub(crate) fn get(&self, validator: u32) -> Option<&SignedVote> {
        self.votes.get(&validator)
    }

    /// Adds a vote whose signature and validator index were checked by the caller.
    pub(crate) fn add(&mut self, vote: SignedVote) -> AddVote {
        let validator = vote.vote.validator;
        match self.votes.get(&validator) {
            Some(first) if *first == vote => AddVote::Duplicate,
            Some(first) => {
                if self.reported.insert(validator) {
                    AddVote::Conflict { first: *first }
                } else {
                    AddVote::ConflictAgain
                }
            }
            None => {
                self.votes.insert(validator, vote);
                *self.tally.entry(vote.vote.block).or_insert(0) += 1;
                AddVote::Added
            }
        }
    }

    /// Counts a vote that conflicts with the validator's first one, for its value, as
    /// the paper does (every received message counts). Without this, a polka or a
    /// decision that leaned on an equivocator's vote stays invisible to a validator that
    /// counted the equivocator's other vote first: a validator locked on that value
    /// then refuses every other one, the others can never see the polka that would
    /// unlock them, and the height stalls (found by crates/sim). The caller passes only
    /// votes for values proposed at the height; returns whether the vote was new.
    pub(crate) fn add_extra(&mut self, vote: SignedVote) -> bool {
        let Some(block) = vote.vote.block else {
            return false;
        };
        let validator = vote.vote.validator;
        if self
            .votes
            .get(&validator)
            .is_none_or(|first| first.vote.block == Some(block))
            || self.extra.contains_key(&(validator, block))
        {
            return false;
        }
        self.extra.insert((validator, block), vote);
        *self.tally.entry(Some(block)).or_insert(0) += 1;
        true
    }

    /// Votes for `block` (`None`: nil).
    pub(crate) fn count(&self, block: &Option<Hash32>) -> usize {
        self.tally.get(block).copied().unwrap_or(0)
    }

    /// Votes of any kind ("2f+1 ⟨PREVOTE, h, r, ∗⟩").
    pub(crate) fn total(&self) -> usize {
        self.votes.len()
    }

    /// The non-nil values with at least `threshold` votes, lowest hash first.
    pub(crate) fn blocks_with(&self, threshold: usize) -> impl Iterator<Item = Hash32> + '_ {
        self.tally
            .iter()
            .filter(move |(_, c)| **c >= threshold)
            .filter_map(|(b, _)| *b)
    }

    /// The votes for `block` (an equivocator's counted extra vote included), in
    /// increasing validator order.
    pub(crate) fn votes_for(&self, block: Hash32) -> impl Iterator<Item = &SignedVote> + '_ {
        let mut votes: Vec<&SignedVote> = self
            .votes
            .values()
            .filter(|v| v.vote.block == Some(block))
            .chain(
                self.extra
                    .iter()
                    .filter(|((_, b), _)| *b == block)
                    .map(|(_, v)| v),
            )
            .collect();
        votes.sort_by_key(|v| v.vote.validator);
        votes.into_iter()
    }

    /// Signatures of the votes for `block`, in increasing validator order.
    pub(crate) fn signatures_for(&self, block: Hash32) -> Vec<CommitSignature> {
        self.votes_for(block)
            .map(|v| CommitSignature {
                validator: v.vote.validator,
                signature: v.signature,
            })
            .collect()
    }
}

/// Proposal and votes of one round.
#[derive(Default, Debug)]
pub(crate) struct RoundLog {
    pub(crate) proposal: Option<SignedProposal>,
    pub(crate) proposal_conflict_reported: bool,
    pub(crate) prevotes: VoteSet,
    pub(crate) precommits: VoteSet,
}

impl RoundLog {
    pub(crate) fn votes(&self, kind: VoteKind) -> &VoteSet {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    pub(crate) fn votes_mut(&mut self, kind: VoteKind) -> &mut VoteSet {
        match kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        }
    }
}
