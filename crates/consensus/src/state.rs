//! The Tendermint state machine (arXiv 1807.04938, Algorithm 1). Comments cite the
//! paper's line numbers; docs/consensus.md has the full map.

use std::collections::BTreeMap;

use ebill_types::{
    CommitCertificate, Hash32, Proposal, SignedProposal, SignedVote, Vote, VoteKind,
};

#[cfg(feature = "bugs")]
use crate::config::Bug;
use crate::config::{Config, ConfigError};
use crate::message::{Effect, Event, Evidence, Message, Step, TimeoutStep, WalEntry};
use crate::votes::{AddVote, RoundLog};

/// Messages of the current height are kept only for rounds up to `round + ROUND_WINDOW`;
/// beyond that they are verified and count for round skipping (line 55) but are not
/// stored. This bounds the message log to `(round + ROUND_WINDOW + 1) * (2n + 1)`.
pub const ROUND_WINDOW: u32 = 32;

/// Messages of the next height (`height + 1`) are buffered for rounds below this, one
/// per (round, kind, validator), and replayed at [`Event::StartHeight`].
pub const NEXT_HEIGHT_ROUNDS: u32 = 4;

/// Bound on rule firings in one call; exceeding it is a bug in this crate.
const MAX_RULE_FIRINGS: usize = 100_000;

/// A value together with a round: lockedValue/lockedRound or validValue/validRound.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ValueRound {
    /// The block hash.
    pub block: Hash32,
    /// The round.
    pub round: u32,
}

/// Counters of what was refused or noticed; for metrics and tests.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Stats {
    /// Votes or proposals whose signature did not verify.
    pub bad_signatures: u64,
    /// Votes naming a validator index outside the set.
    pub unknown_validators: u64,
    /// Proposals not signed by the proposer of their height and round.
    pub wrong_proposer: u64,
    /// Proposals with a pol_round not below their round.
    pub invalid_pol_round: u64,
    /// Messages of past heights, or of the current height once decided.
    pub old_height: u64,
    /// Messages of the next height buffered for replay.
    pub next_height_buffered: u64,
    /// Messages of future heights dropped (beyond the next height, or buffer slots taken).
    pub future_dropped: u64,
    /// Messages of the current height with a round beyond the window (not stored).
    pub far_round: u64,
    /// Exact duplicates.
    pub duplicates: u64,
    /// Equivocations seen (evidence emitted).
    pub equivocations: u64,
    /// Times this validator was about to sign a message conflicting with one it had
    /// already signed and refused (re-broadcasting the old one). Zero unless something
    /// is wrong; the simulator should assert it.
    pub refused_conflicting_signatures: u64,
    /// Certificates (Event::Certificate) that did not verify.
    pub bad_certificates: u64,
    /// Events that did not apply (stale timeouts, late answers, StartHeight not ahead).
    pub ignored_events: u64,
}

/// What is known of a proposed block's validity (paper: valid(v)).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Validity {
    Pending,
    Valid,
    Invalid,
}

/// One validator's Tendermint instance. See the crate documentation for the contract.
#[derive(Debug)]
pub struct Consensus {
    config: Config,
    /// h_p.
    height: u64,
    /// round_p.
    round: u32,
    /// step_p (or Decided).
    step: Step,
    /// lockedValue_p / lockedRound_p (None: nil / -1).
    locked: Option<ValueRound>,
    /// validValue_p / validRound_p (None: nil / -1).
    valid: Option<ValueRound>,
    /// The message log of this height, by round.
    rounds: BTreeMap<u32, RoundLog>,
    /// valid(v) for the blocks proposed at this height.
    validity: BTreeMap<Hash32, Validity>,
    /// Every vote this validator signed at this height: never sign another for a key.
    own_votes: BTreeMap<(u32, VoteKind), SignedVote>,
    /// Every proposal this validator signed at this height.
    own_proposals: BTreeMap<u32, SignedProposal>,
    /// Per validator, the highest round of this height it sent a valid message for.
    highest_round_of: Vec<Option<u32>>,
    /// Round for which a RequestProposalValue is outstanding.
    awaiting_value: Option<u32>,
    /// Line 34 "for the first time", for the current round.
    prevote_timeout_scheduled: bool,
    /// Line 47 "for the first time", for the current round.
    precommit_timeout_scheduled: bool,
    /// Line 36 "for the first time", for the current round.
    polka_seen: bool,
    /// The decision of this height.
    decision: Option<CommitCertificate>,
    /// Verified messages of height + 1, keyed by (round, kind, signer); kind 0 is a
    /// proposal, 1 a prevote, 2 a precommit.
    next_height: BTreeMap<(u32, u8, u32), Message>,
    /// Highest height of any validly signed message seen (a hint that we are behind).
    highest_height_seen: u64,
    stats: Stats,
}

impl Consensus {
    /// A fresh instance at `height`, round 0, with nothing signed yet. The effects start
    /// round 0 (a proposer asks for a value, the others schedule timeoutPropose).
    ///
    /// Use [`Consensus::restore`] instead when the WAL may hold own messages of `height`.
    pub fn new(
        config: Config,
        height: u64,
        now_ms: u64,
    ) -> Result<(Self, Vec<Effect>), ConfigError> {
        Self::restore(config, height, &[], now_ms)
    }

    /// An instance rebuilt after a crash from the own messages in the WAL.
    ///
    /// `wal` holds what the node persisted for [`Effect::PersistVote`] and
    /// [`Effect::PersistProposal`]; entries of heights below `height` are skipped (the
    /// node may pass its whole WAL), entries above it are an error (the store is behind
    /// the WAL). The instance resumes at the highest round found in the WAL with the
    /// step reached there, lockedValue/lockedRound from its latest non-nil precommit
    /// (validValue/validRound likewise), re-broadcasts its messages of that round and
    /// never signs a vote or proposal differing from one in the WAL for the same round
    /// and kind. With an empty WAL this is [`Consensus::new`].
    pub fn restore(
        config: Config,
        height: u64,
        wal: &[WalEntry],
        now_ms: u64,
    ) -> Result<(Self, Vec<Effect>), ConfigError> {
        config.check()?;
        if height == 0 {
            return Err(ConfigError::ZeroHeight);
        }
        let n = config.validators.len();
        let mut c = Self {
            config,
            height,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            rounds: BTreeMap::new(),
            validity: BTreeMap::new(),
            own_votes: BTreeMap::new(),
            own_proposals: BTreeMap::new(),
            highest_round_of: vec![None; n],
            awaiting_value: None,
            prevote_timeout_scheduled: false,
            precommit_timeout_scheduled: false,
            polka_seen: false,
            decision: None,
            next_height: BTreeMap::new(),
            highest_height_seen: height,
            stats: Stats::default(),
        };
        let wal = if c.bug_no_wal() { &[][..] } else { wal };
        c.load_wal(wal)?;
        let mut effects = Vec::new();
        c.resume(now_ms, &mut effects);
        c.process(now_ms, &mut effects);
        Ok((c, effects))
    }

    /// Feeds one event; returns the effects to carry out, in order.
    pub fn on_event(&mut self, now_ms: u64, event: Event) -> Vec<Effect> {
        let mut effects = Vec::new();
        match event {
            Event::StartHeight { height } => self.start_height(now_ms, height, &mut effects),
            Event::Proposal(p) => self.on_proposal(p, false, &mut effects),
            Event::Vote(v) => self.on_vote(v, false, &mut effects),
            Event::Timeout {
                height,
                round,
                step,
            } => self.on_timeout(now_ms, height, round, step, &mut effects),
            Event::BlockChecked {
                height,
                block,
                valid,
            } => self.on_block_checked(height, block, valid),
            Event::ProposalValue {
                height,
                round,
                block,
            } => self.on_proposal_value(height, round, block, &mut effects),
            Event::Certificate(cert) => self.on_certificate(&cert, &mut effects),
            Event::Rebroadcast => self.rebroadcast(&mut effects),
        }
        self.process(now_ms, &mut effects);
        effects
    }

    // ----- accessors -----

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current height (h_p).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The current round (round_p).
    pub fn round(&self) -> u32 {
        self.round
    }

    /// The current step (step_p), or `Decided`.
    pub fn step(&self) -> Step {
        self.step
    }

    /// lockedValue/lockedRound.
    pub fn locked(&self) -> Option<ValueRound> {
        self.locked
    }

    /// validValue/validRound.
    pub fn valid(&self) -> Option<ValueRound> {
        self.valid
    }

    /// The commit certificate of the current height, once decided.
    pub fn decision(&self) -> Option<&CommitCertificate> {
        self.decision.as_ref()
    }

    /// The highest height of any validly signed message seen: above `height() + 1` it
    /// means this validator is behind and the node should catch up (sync blocks).
    pub fn highest_height_seen(&self) -> u64 {
        self.highest_height_seen
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The own vote of `kind` at `round` of the current height, if signed.
    pub fn own_vote(&self, round: u32, kind: VoteKind) -> Option<&SignedVote> {
        self.own_votes.get(&(round, kind))
    }

    // ----- thresholds and planted bugs -----

    /// 2f+1 (paper), i.e. floor(2n/3)+1 for any n.
    fn quorum(&self) -> usize {
        if self.bug_small_quorum() {
            return self.config.validators.honest_threshold();
        }
        self.config.validators.quorum()
    }

    /// f+1.
    fn honest(&self) -> usize {
        self.config.validators.honest_threshold()
    }

    #[cfg(feature = "bugs")]
    fn bug_no_lock(&self) -> bool {
        self.config.bug == Some(Bug::NoLock)
    }
    #[cfg(not(feature = "bugs"))]
    fn bug_no_lock(&self) -> bool {
        false
    }
    #[cfg(feature = "bugs")]
    fn bug_small_quorum(&self) -> bool {
        self.config.bug == Some(Bug::SmallQuorum)
    }
    #[cfg(not(feature = "bugs"))]
    fn bug_small_quorum(&self) -> bool {
        false
    }
    #[cfg(feature = "bugs")]
    fn bug_no_wal(&self) -> bool {
        self.config.bug == Some(Bug::NoWal)
    }
    #[cfg(not(feature = "bugs"))]
    fn bug_no_wal(&self) -> bool {
        false
    }

    fn me(&self) -> u32 {
        self.config.validator_index
    }

    fn is_proposer(&self, round: u32) -> bool {
        self.config.validators.proposer(self.height, round) == self.me()
    }

    fn decided(&self) -> bool {
        self.decision.is_some()
    }

    // ----- restart -----

    fn load_wal(&mut self, wal: &[WalEntry]) -> Result<(), ConfigError> {
        let me = self.me();
        for entry in wal {
            let (height, round) = (entry.height(), entry.round());
            if height < self.height {
                continue;
            }
            if height > self.height {
                return Err(ConfigError::WalAhead {
                    wal_height: height,
                    height: self.height,
                });
            }
            if entry.signer() != me {
                return Err(ConfigError::WalForeignEntry {
                    height,
                    round,
                    signer: entry.signer(),
                    own: me,
                });
            }
            let chain_id = &self.config.chain_id;
            let validators = &self.config.validators;
            let ok = match entry {
                Message::Vote(v) => v.verify(chain_id, validators),
                Message::Proposal(p) => p.verify(chain_id, validators),
            };
            if !ok {
                return Err(ConfigError::WalBadSignature { height, round });
            }
            let conflict = match entry {
                Message::Vote(v) => {
                    let prev = self.own_votes.insert((round, v.vote.kind), *v);
                    prev.is_some_and(|p| p != *v)
                }
                Message::Proposal(p) => {
                    let prev = self.own_proposals.insert(round, *p);
                    prev.is_some_and(|q| q != *p)
                }
            };
            if conflict {
                return Err(ConfigError::WalConflict { height, round });
            }
        }
        Ok(())
    }

    /// Enters the round and step recorded in the WAL (or round 0 if it is empty).
    fn resume(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        let top_vote = self.own_votes.keys().map(|(r, _)| *r).max();
        let top_proposal = self.own_proposals.keys().copied().max();
        let Some(round) = top_vote.max(top_proposal) else {
            self.start_round(now_ms, 0, effects);
            return;
        };
        // Our own messages go into the log (they count towards our tallies), our own
        // proposals are valid by construction.
        let own: Vec<SignedVote> = self.own_votes.values().copied().collect();
        for v in own {
            self.note_round(v.vote.validator, v.vote.round);
            self.rounds
                .entry(v.vote.round)
                .or_default()
                .votes_mut(v.vote.kind)
                .add(v);
        }
        let props: Vec<SignedProposal> = self.own_proposals.values().copied().collect();
        for p in props {
            self.note_round(p.proposal.proposer, p.proposal.round);
            self.rounds.entry(p.proposal.round).or_default().proposal = Some(p);
            self.validity.insert(p.proposal.block, Validity::Valid);
        }
        // lockedValue/lockedRound: only line 38 sets them, always together with a
        // non-nil precommit (line 40), so the latest non-nil own precommit is the lock.
        self.locked = self
            .own_votes
            .iter()
            .filter(|((_, kind), _)| *kind == VoteKind::Precommit)
            .filter_map(|((r, _), v)| v.vote.block.map(|block| ValueRound { block, round: *r }))
            .max_by_key(|vr| vr.round);
        // We saw a polka for the locked value in its round (line 36): a sound validValue.
        self.valid = self.locked;
        let precommitted = self.own_votes.contains_key(&(round, VoteKind::Precommit));
        let prevoted = self.own_votes.contains_key(&(round, VoteKind::Prevote));
        if !precommitted && !prevoted {
            // Only our proposal at this round: start_round re-broadcasts it.
            self.start_round(now_ms, round, effects);
            return;
        }
        self.round = round;
        self.reset_round_flags();
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            if let Some(v) = self.own_votes.get(&(round, kind)) {
                effects.push(Effect::Broadcast(Message::Vote(*v)));
            }
        }
        if let Some(p) = self.own_proposals.get(&round) {
            effects.push(Effect::Broadcast(Message::Proposal(*p)));
        }
        // The votes received before the crash are lost, so the timeout that lines 34/47
        // would schedule on 2f+1 of them is scheduled now: whatever comes, this round
        // ends (moving on is always safe; re-signing is prevented by own_votes).
        if precommitted {
            self.step = Step::Precommit;
            self.precommit_timeout_scheduled = true;
            self.schedule(now_ms, TimeoutStep::Precommit, effects);
        } else {
            self.step = Step::Prevote;
            self.prevote_timeout_scheduled = true;
            self.schedule(now_ms, TimeoutStep::Prevote, effects);
        }
    }

    // ----- events -----

    fn start_height(&mut self, now_ms: u64, height: u64, effects: &mut Vec<Effect>) {
        if height <= self.height {
            self.stats.ignored_events += 1;
            return;
        }
        let buffered = if height == self.height + 1 {
            std::mem::take(&mut self.next_height)
        } else {
            BTreeMap::new()
        };
        self.height = height;
        self.highest_height_seen = self.highest_height_seen.max(height);
        // Line 53: reset locked/valid values and the message log.
        self.round = 0;
        self.step = Step::Propose;
        self.locked = None;
        self.valid = None;
        self.rounds.clear();
        self.validity.clear();
        self.own_votes.clear();
        self.own_proposals.clear();
        self.highest_round_of.iter_mut().for_each(|r| *r = None);
        self.awaiting_value = None;
        self.decision = None;
        self.next_height.clear();
        self.start_round(now_ms, 0, effects);
        for msg in buffered.into_values() {
            match msg {
                Message::Proposal(p) => self.on_proposal(p, true, effects),
                Message::Vote(v) => self.on_vote(v, true, effects),
            }
        }
    }

    /// Checks a message's height. Returns true if it is for the current, undecided
    /// height; buffers or drops it otherwise.
    fn admit_height(&mut self, msg: Message, verified: bool) -> bool {
        let height = msg.height();
        if height < self.height || (height == self.height && self.decided()) {
            self.stats.old_height += 1;
            return false;
        }
        if height == self.height {
            return true;
        }
        // A future height: verify before it may occupy a buffer slot or move the hint.
        if !verified && !self.verify_message(&msg, height) {
            return false;
        }
        self.highest_height_seen = self.highest_height_seen.max(height);
        let round = msg.round();
        if height != self.height + 1 || round >= NEXT_HEIGHT_ROUNDS {
            self.stats.future_dropped += 1;
            return false;
        }
        let kind = match msg {
            Message::Proposal(_) => 0,
            Message::Vote(v) => match v.vote.kind {
                VoteKind::Prevote => 1,
                VoteKind::Precommit => 2,
            },
        };
        let key = (round, kind, msg.signer());
        match self.next_height.entry(key) {
            std::collections::btree_map::Entry::Occupied(_) => self.stats.future_dropped += 1,
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(msg);
                self.stats.next_height_buffered += 1;
            }
        }
        false
    }

    /// Signature and signer checks of a message of `height` (proposer rule included).
    fn verify_message(&mut self, msg: &Message, height: u64) -> bool {
        let validators = &self.config.validators;
        match msg {
            Message::Proposal(p) => {
                if p.proposal.proposer != validators.proposer(height, p.proposal.round) {
                    self.stats.wrong_proposer += 1;
                    return false;
                }
                if !p.verify(&self.config.chain_id, validators) {
                    self.stats.bad_signatures += 1;
                    return false;
                }
            }
            Message::Vote(v) => {
                if validators.get(v.vote.validator).is_none() {
                    self.stats.unknown_validators += 1;
                    return false;
                }
                if !v.verify(&self.config.chain_id, validators) {
                    self.stats.bad_signatures += 1;
                    return false;
                }
            }
        }
        true
    }

    /// Records that `validator` reached `round` (for line 55).
    fn note_round(&mut self, validator: u32, round: u32) {
        if let Some(slot) = self.highest_round_of.get_mut(validator as usize) {
            *slot = Some(slot.map_or(round, |r| r.max(round)));
        }
    }

    fn on_proposal(&mut self, sp: SignedProposal, verified: bool, effects: &mut Vec<Effect>) {
        let msg = Message::Proposal(sp);
        if !self.admit_height(msg, verified) {
            return;
        }
        let p = sp.proposal;
        if let Some(stored) = self.rounds.get(&p.round).and_then(|r| r.proposal)
            && stored == sp
        {
            self.stats.duplicates += 1;
            return;
        }
        if !verified && !self.verify_message(&msg, self.height) {
            return;
        }
        self.note_round(p.proposer, p.round);
        if p.round > self.round.saturating_add(ROUND_WINDOW) {
            self.stats.far_round += 1;
            return;
        }
        if p.pol_round.is_some_and(|vr| vr >= p.round) {
            // Algorithm 1 only knows vr < round (line 28); such a proposal is never used.
            self.stats.invalid_pol_round += 1;
            return;
        }
        let log = self.rounds.entry(p.round).or_default();
        match log.proposal {
            Some(first) => {
                if !log.proposal_conflict_reported {
                    log.proposal_conflict_reported = true;
                    self.stats.equivocations += 1;
                    effects.push(Effect::Evidence(Evidence::ConflictingProposals {
                        first,
                        second: sp,
                    }));
                }
            }
            None => {
                log.proposal = Some(sp);
                if p.round >= self.round && !self.validity.contains_key(&p.block) {
                    self.validity.insert(p.block, Validity::Pending);
                    effects.push(Effect::CheckBlock {
                        height: self.height,
                        round: p.round,
                        block: p.block,
                    });
                }
            }
        }
    }

    fn on_vote(&mut self, sv: SignedVote, verified: bool, effects: &mut Vec<Effect>) {
        let msg = Message::Vote(sv);
        if !self.admit_height(msg, verified) {
            return;
        }
        let v = sv.vote;
        if let Some(stored) = self
            .rounds
            .get(&v.round)
            .and_then(|r| r.votes(v.kind).get(v.validator))
            && *stored == sv
        {
            self.stats.duplicates += 1;
            return;
        }
        if !verified && !self.verify_message(&msg, self.height) {
            return;
        }
        self.note_round(v.validator, v.round);
        if v.round > self.round.saturating_add(ROUND_WINDOW) {
            self.stats.far_round += 1;
            return;
        }
        self.add_vote(sv, effects);
    }

    fn add_vote(&mut self, sv: SignedVote, effects: &mut Vec<Effect>) {
        let v = sv.vote;
        let outcome = self
            .rounds
            .entry(v.round)
            .or_default()
            .votes_mut(v.kind)
            .add(sv);
        match outcome {
            AddVote::Added => {}
            AddVote::Duplicate => self.stats.duplicates += 1,
            AddVote::ConflictAgain => {
                if !self.add_extra_vote(sv) {
                    self.stats.duplicates += 1;
                }
            }
            AddVote::Conflict { first } => {
                self.stats.equivocations += 1;
                effects.push(Effect::Evidence(Evidence::ConflictingVotes {
                    first,
                    second: sv,
                }));
                self.add_extra_vote(sv);
            }
        }
    }

    /// Counts an equivocator's conflicting vote too if its value is proposed at this
    /// height (see `VoteSet::add_extra`); bounded by the stored proposals.
    fn add_extra_vote(&mut self, sv: SignedVote) -> bool {
        let v = sv.vote;
        let proposed = v.block.is_some_and(|b| {
            self.rounds
                .values()
                .any(|log| log.proposal.is_some_and(|p| p.proposal.block == b))
        });
        proposed
            && self
                .rounds
                .get_mut(&v.round)
                .is_some_and(|log| log.votes_mut(v.kind).add_extra(sv))
    }

    fn on_certificate(&mut self, cert: &CommitCertificate, effects: &mut Vec<Effect>) {
        if cert.height != self.height || self.decided() {
            self.stats.ignored_events += 1;
            return;
        }
        // A hostile certificate is at most n signatures of one round, and is refused
        // whole unless a quorum of them verifies (so no round-window check is needed).
        if cert.signatures.len() > self.config.validators.len()
            || cert
                .verify(
                    &self.config.chain_id,
                    self.height,
                    &cert.block,
                    &self.config.validators,
                )
                .is_err()
        {
            self.stats.bad_certificates += 1;
            return;
        }
        // Its precommits enter the log, where they can expose an equivocation; the
        // decision is the certificate itself (a verified quorum), even where the log
        // counted an equivocator's other precommit first.
        for s in &cert.signatures {
            let sv = SignedVote {
                vote: Vote {
                    kind: VoteKind::Precommit,
                    height: cert.height,
                    round: cert.round,
                    block: Some(cert.block),
                    validator: s.validator,
                },
                signature: s.signature,
            };
            self.note_round(s.validator, cert.round);
            self.add_vote(sv, effects);
        }
        self.decide(cert.clone(), effects);
    }

    fn on_timeout(
        &mut self,
        now_ms: u64,
        height: u64,
        round: u32,
        step: TimeoutStep,
        effects: &mut Vec<Effect>,
    ) {
        if height != self.height || round != self.round || self.decided() {
            self.stats.ignored_events += 1;
            return;
        }
        match step {
            // Lines 57-60: OnTimeoutPropose.
            TimeoutStep::Propose if self.step == Step::Propose => {
                self.awaiting_value = None;
                self.cast_vote(VoteKind::Prevote, None, effects);
                self.step = Step::Prevote;
            }
            // Lines 61-64: OnTimeoutPrevote.
            TimeoutStep::Prevote if self.step == Step::Prevote => {
                self.cast_vote(VoteKind::Precommit, None, effects);
                self.step = Step::Precommit;
            }
            // Lines 65-67: OnTimeoutPrecommit.
            TimeoutStep::Precommit => match round.checked_add(1) {
                Some(next) => self.start_round(now_ms, next, effects),
                None => self.stats.ignored_events += 1,
            },
            _ => self.stats.ignored_events += 1,
        }
    }

    fn on_block_checked(&mut self, height: u64, block: Hash32, valid: bool) {
        if height != self.height {
            self.stats.ignored_events += 1;
            return;
        }
        match self.validity.get_mut(&block) {
            Some(v @ Validity::Pending) => {
                *v = if valid {
                    Validity::Valid
                } else {
                    Validity::Invalid
                };
            }
            _ => self.stats.ignored_events += 1,
        }
    }

    fn on_proposal_value(
        &mut self,
        height: u64,
        round: u32,
        block: Hash32,
        effects: &mut Vec<Effect>,
    ) {
        if height != self.height
            || round != self.round
            || self.awaiting_value != Some(round)
            || self.step != Step::Propose
            || self.decided()
        {
            self.stats.ignored_events += 1;
            return;
        }
        self.awaiting_value = None;
        // The node built the block: valid by construction.
        self.validity.insert(block, Validity::Valid);
        self.propose(block, None, effects);
    }

    fn rebroadcast(&mut self, effects: &mut Vec<Effect>) {
        if let Some(p) = self.own_proposals.get(&self.round) {
            effects.push(Effect::Broadcast(Message::Proposal(*p)));
        }
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            if let Some(v) = self.own_votes.get(&(self.round, kind)) {
                effects.push(Effect::Broadcast(Message::Vote(*v)));
            }
        }
        // Relay the polka behind validValue (2f+1 signed prevotes, mostly other
        // validators'): a validator that missed it cannot accept a proposal with that
        // POL round (line 28) and, if it is locked on an older value, would refuse the
        // value forever. The paper's gossip assumption delivers these; this makes it so.
        if let Some(vv) = self.valid
            && let Some(log) = self.rounds.get(&vv.round)
        {
            effects.extend(
                log.prevotes
                    .votes_for(vv.block)
                    .map(|v| Effect::Broadcast(Message::Vote(*v))),
            );
        }
    }

    // ----- actions -----

    fn reset_round_flags(&mut self) {
        self.prevote_timeout_scheduled = false;
        self.precommit_timeout_scheduled = false;
        self.polka_seen = false;
        self.awaiting_value = None;
    }

    fn schedule(&self, now_ms: u64, step: TimeoutStep, effects: &mut Vec<Effect>) {
        let duration_ms = self.config.timeouts.duration_ms(step, self.round);
        effects.push(Effect::ScheduleTimeout {
            height: self.height,
            round: self.round,
            step,
            at_ms: now_ms.saturating_add(duration_ms),
        });
    }

    /// Lines 11-21: StartRound(round).
    fn start_round(&mut self, now_ms: u64, round: u32, effects: &mut Vec<Effect>) {
        assert!(
            round >= self.round || (round == 0 && self.rounds.is_empty()),
            "rounds never go back: {} -> {round}",
            self.round
        );
        self.round = round; // line 12
        self.step = Step::Propose; // line 13
        self.reset_round_flags();
        self.note_round(self.me(), round);
        if self.is_proposer(round) {
            // line 14
            if let Some(p) = self.own_proposals.get(&round).copied() {
                // Restart: already proposed in this round; send the same proposal again.
                effects.push(Effect::Broadcast(Message::Proposal(p)));
            } else if let Some(vv) = self.valid {
                // lines 15-16, 19
                self.propose(vv.block, Some(vv.round), effects);
            } else {
                // line 18: getValue(), answered by Event::ProposalValue. Deviation: the
                // proposer also schedules timeoutPropose, in case the answer never comes.
                self.awaiting_value = Some(round);
                effects.push(Effect::RequestProposalValue {
                    height: self.height,
                    round,
                });
                self.schedule(now_ms, TimeoutStep::Propose, effects);
            }
        } else {
            // line 21
            self.schedule(now_ms, TimeoutStep::Propose, effects);
        }
    }

    /// Line 19: broadcast ⟨PROPOSAL, h_p, round_p, v, vr⟩ (persisted first).
    fn propose(&mut self, block: Hash32, pol_round: Option<u32>, effects: &mut Vec<Effect>) {
        let round = self.round;
        debug_assert!(self.is_proposer(round), "only the proposer proposes");
        debug_assert!(
            pol_round.is_none_or(|vr| vr < round),
            "validRound {pol_round:?} must be below the round {round}"
        );
        let sp = match self.own_proposals.get(&round) {
            Some(prev) => {
                if prev.proposal.block != block || prev.proposal.pol_round != pol_round {
                    self.stats.refused_conflicting_signatures += 1;
                }
                *prev
            }
            None => {
                let sp = Proposal {
                    height: self.height,
                    round,
                    block,
                    pol_round,
                    proposer: self.me(),
                }
                .sign(&self.config.chain_id, &self.config.keypair);
                self.own_proposals.insert(round, sp);
                if !self.bug_no_wal() {
                    effects.push(Effect::PersistProposal(sp));
                }
                sp
            }
        };
        effects.push(Effect::Broadcast(Message::Proposal(sp)));
        self.validity
            .entry(sp.proposal.block)
            .or_insert(Validity::Valid);
        let log = self.rounds.entry(round).or_default();
        if log.proposal.is_none() {
            log.proposal = Some(sp);
        }
    }

    /// Signs (persisting first) and broadcasts a vote of the current round, or, if one
    /// of this kind was signed already, broadcasts that one again and signs nothing.
    fn cast_vote(&mut self, kind: VoteKind, block: Option<Hash32>, effects: &mut Vec<Effect>) {
        let round = self.round;
        let sv = match self.own_votes.get(&(round, kind)) {
            Some(prev) => {
                if prev.vote.block != block {
                    self.stats.refused_conflicting_signatures += 1;
                }
                *prev
            }
            None => {
                let sv = Vote {
                    kind,
                    height: self.height,
                    round,
                    block,
                    validator: self.me(),
                }
                .sign(&self.config.chain_id, &self.config.keypair);
                self.own_votes.insert((round, kind), sv);
                if !self.bug_no_wal() {
                    effects.push(Effect::PersistVote(sv));
                }
                sv
            }
        };
        effects.push(Effect::Broadcast(Message::Vote(sv)));
        self.add_vote(sv, effects);
    }

    // ----- the upon rules -----

    /// Applies the upon rules until none fires.
    fn process(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        for _ in 0..MAX_RULE_FIRINGS {
            if self.decided() {
                return;
            }
            let fired = self.try_decide(effects)
                || self.try_skip_round(now_ms, effects)
                || self.try_prevote(effects)
                || self.try_polka_current(effects)
                || self.try_polka_nil(effects)
                || self.try_prevote_timeout(now_ms, effects)
                || self.try_precommit_timeout(now_ms, effects);
            if !fired {
                return;
            }
        }
        debug_assert!(
            false,
            "upon rules fired {MAX_RULE_FIRINGS} times in one call"
        );
    }

    /// Lines 49-54: 2f+1 ⟨PRECOMMIT, h_p, r, id(v)⟩ for some round r decide v.
    /// Deviation: the proposal and valid(v) are not required (see docs/consensus.md).
    fn try_decide(&mut self, effects: &mut Vec<Effect>) -> bool {
        let quorum = self.quorum();
        let found = self.rounds.iter().find_map(|(r, log)| {
            log.precommits
                .blocks_with(quorum)
                .next()
                .map(|b| (*r, b, log.precommits.signatures_for(b)))
        });
        let Some((round, block, signatures)) = found else {
            return false;
        };
        debug_assert!(signatures.len() >= quorum, "a decision needs a quorum");
        let certificate = CommitCertificate {
            height: self.height,
            round,
            block,
            signatures,
        };
        self.decide(certificate, effects);
        true
    }

    /// Lines 51-52: decision_p[h_p] = v; the node then starts h_p + 1 (line 52-54) with
    /// Event::StartHeight.
    fn decide(&mut self, certificate: CommitCertificate, effects: &mut Vec<Effect>) {
        assert!(!self.decided(), "height {} decided twice", self.height);
        assert_eq!(
            certificate.height, self.height,
            "certificate of another height"
        );
        self.step = Step::Decided;
        self.awaiting_value = None;
        effects.push(Effect::Commit {
            height: self.height,
            block: certificate.block,
            certificate: certificate.clone(),
        });
        self.decision = Some(certificate);
    }

    /// Line 55: f+1 messages of a round above round_p start that round. Generalised:
    /// with f+1 validators each at a round above round_p, start the highest round that
    /// f+1 of them have reached (so at least one correct validator is there).
    fn try_skip_round(&mut self, now_ms: u64, effects: &mut Vec<Effect>) -> bool {
        let mut higher: Vec<u32> = self
            .highest_round_of
            .iter()
            .flatten()
            .copied()
            .filter(|r| *r > self.round)
            .collect();
        let need = self.honest();
        if higher.len() < need {
            return false;
        }
        higher.sort_unstable_by(|a, b| b.cmp(a));
        let Some(target) = higher.get(need - 1).copied() else {
            return false;
        };
        debug_assert!(target > self.round, "a skip goes forward");
        self.start_round(now_ms, target, effects);
        true
    }

    /// Lines 22-27 and 28-33: prevote for the proposal of round_p, or nil.
    fn try_prevote(&mut self, effects: &mut Vec<Effect>) -> bool {
        if self.step != Step::Propose {
            return false;
        }
        let Some(p) = self
            .rounds
            .get(&self.round)
            .and_then(|log| log.proposal)
            .map(|sp| sp.proposal)
        else {
            return false;
        };
        let locked = if self.bug_no_lock() {
            None
        } else {
            self.locked
        };
        let acceptable = match p.pol_round {
            // Line 23: lockedRound = -1 ∨ lockedValue = v.
            None => locked.is_none_or(|l| l.block == p.block),
            // Line 28: needs 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩ with vr < round_p.
            Some(vr) => {
                debug_assert!(vr < p.round, "pol_round checked on receipt");
                let polka = self
                    .rounds
                    .get(&vr)
                    .map_or(0, |log| log.prevotes.count(&Some(p.block)));
                if polka < self.quorum() {
                    return false;
                }
                // Line 29: lockedRound ≤ vr ∨ lockedValue = v.
                locked.is_none_or(|l| l.round <= vr || l.block == p.block)
            }
        };
        let vote = match self.validity.get(&p.block) {
            Some(Validity::Valid) if acceptable => Some(p.block), // lines 24, 30
            Some(Validity::Valid) | Some(Validity::Invalid) => None, // lines 26, 32
            Some(Validity::Pending) | None => return false,       // wait for BlockChecked
        };
        self.cast_vote(VoteKind::Prevote, vote, effects);
        self.step = Step::Prevote; // lines 27, 33
        true
    }

    /// Lines 36-43: the proposal of round_p, valid, with 2f+1 prevotes for it.
    fn try_polka_current(&mut self, effects: &mut Vec<Effect>) -> bool {
        if self.polka_seen || !matches!(self.step, Step::Prevote | Step::Precommit) {
            return false;
        }
        let Some(log) = self.rounds.get(&self.round) else {
            return false;
        };
        let Some(p) = log.proposal.map(|sp| sp.proposal) else {
            return false;
        };
        if log.prevotes.count(&Some(p.block)) < self.quorum()
            || self.validity.get(&p.block) != Some(&Validity::Valid)
        {
            return false;
        }
        self.polka_seen = true;
        let here = ValueRound {
            block: p.block,
            round: self.round,
        };
        if self.step == Step::Prevote {
            self.locked = Some(here); // lines 38-39
            self.cast_vote(VoteKind::Precommit, Some(p.block), effects); // line 40
            self.step = Step::Precommit; // line 41
        }
        self.valid = Some(here); // lines 42-43
        true
    }

    /// Lines 44-46: 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step = prevote.
    fn try_polka_nil(&mut self, effects: &mut Vec<Effect>) -> bool {
        if self.step != Step::Prevote {
            return false;
        }
        let nil = self
            .rounds
            .get(&self.round)
            .map_or(0, |log| log.prevotes.count(&None));
        if nil < self.quorum() {
            return false;
        }
        self.cast_vote(VoteKind::Precommit, None, effects);
        self.step = Step::Precommit;
        true
    }

    /// Lines 34-35: 2f+1 prevotes of any kind, step = prevote, first time.
    fn try_prevote_timeout(&mut self, now_ms: u64, effects: &mut Vec<Effect>) -> bool {
        if self.step != Step::Prevote || self.prevote_timeout_scheduled {
            return false;
        }
        let total = self
            .rounds
            .get(&self.round)
            .map_or(0, |log| log.prevotes.total());
        if total < self.quorum() {
            return false;
        }
        self.prevote_timeout_scheduled = true;
        self.schedule(now_ms, TimeoutStep::Prevote, effects);
        true
    }

    /// Lines 47-48: 2f+1 precommits of any kind, first time.
    fn try_precommit_timeout(&mut self, now_ms: u64, effects: &mut Vec<Effect>) -> bool {
        if self.precommit_timeout_scheduled {
            return false;
        }
        let total = self
            .rounds
            .get(&self.round)
            .map_or(0, |log| log.precommits.total());
        if total < self.quorum() {
            return false;
        }
        self.precommit_timeout_scheduled = true;
        self.schedule(now_ms, TimeoutStep::Precommit, effects);
        true
    }
}
