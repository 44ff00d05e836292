//! What goes in and out of the state machine: messages, events, effects, evidence.

use ebill_types::{CommitCertificate, Hash32, SignedProposal, SignedVote};

/// A consensus message as it travels between validators (and as it sits in the WAL).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Message {
    /// A proposer's signed proposal of a block hash.
    Proposal(SignedProposal),
    /// A signed prevote or precommit.
    Vote(SignedVote),
}

impl Message {
    /// Height of the message.
    pub fn height(&self) -> u64 {
        match self {
            Message::Proposal(p) => p.proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }

    /// Round of the message.
    pub fn round(&self) -> u32 {
        match self {
            Message::Proposal(p) => p.proposal.round,
            Message::Vote(v) => v.vote.round,
        }
    }

    /// Index of the validator that signed it.
    pub fn signer(&self) -> u32 {
        match self {
            Message::Proposal(p) => p.proposal.proposer,
            Message::Vote(v) => v.vote.validator,
        }
    }
}

impl From<Message> for Event {
    fn from(m: Message) -> Self {
        match m {
            Message::Proposal(p) => Event::Proposal(p),
            Message::Vote(v) => Event::Vote(v),
        }
    }
}

/// One entry of the write-ahead log: an own vote or proposal, written durably before it
/// was broadcast (see [`Effect::PersistVote`], [`Effect::PersistProposal`]).
pub type WalEntry = Message;

/// The step a timeout belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum TimeoutStep {
    /// timeoutPropose: no (usable) proposal came; prevote nil (paper lines 57-60).
    Propose,
    /// timeoutPrevote: 2f+1 prevotes but no polka; precommit nil (lines 61-64).
    Prevote,
    /// timeoutPrecommit: 2f+1 precommits but no decision; next round (lines 65-67).
    Precommit,
}

/// The step of the current round (paper: step_p), plus `Decided` once the height is
/// decided and the instance waits for [`Event::StartHeight`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Step {
    /// Waiting for the proposal.
    Propose,
    /// Prevoted; waiting for prevotes.
    Prevote,
    /// Precommitted; waiting for precommits.
    Precommit,
    /// The height is decided ([`Effect::Commit`] was emitted).
    Decided,
}

/// An input to [`crate::Consensus::on_event`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// Start a new height (after the commit of the previous one, or after catching up).
    /// Ignored unless `height` is above the current height.
    StartHeight {
        /// The new height.
        height: u64,
    },
    /// A proposal from the network (hostile: checked here).
    Proposal(SignedProposal),
    /// A vote from the network (hostile: checked here).
    Vote(SignedVote),
    /// A timeout scheduled by [`Effect::ScheduleTimeout`] has expired.
    Timeout {
        /// Its height.
        height: u64,
        /// Its round.
        round: u32,
        /// Its step.
        step: TimeoutStep,
    },
    /// The ledger's verdict on a block asked for by [`Effect::CheckBlock`] (paper: valid(v)).
    BlockChecked {
        /// Height of the block.
        height: u64,
        /// The block hash.
        block: Hash32,
        /// Whether the block is valid on top of the current tip.
        valid: bool,
    },
    /// The node's answer to [`Effect::RequestProposalValue`] (paper: getValue()): a block
    /// it built, holds, and considers valid.
    ProposalValue {
        /// Height asked for.
        height: u64,
        /// Round asked for.
        round: u32,
        /// Hash of the block to propose.
        block: Hash32,
    },
    /// A commit certificate for the current height learned outside the vote flow (block
    /// sync, or a peer answering a lagging validator). If it verifies
    /// (`CommitCertificate::verify`), its precommits enter the log and the height is
    /// decided by line 49 as usual; otherwise it is dropped and counted.
    Certificate(CommitCertificate),
    /// Broadcast again this validator's own proposal and votes of the current round
    /// (identical bytes, nothing new is signed), and relay the 2f+1 prevotes behind its
    /// validValue (other validators' signed votes). A node sends it periodically when its
    /// network can lose messages (Tendermint's liveness assumes that every message
    /// between correct validators is eventually delivered); it is never needed on a
    /// reliable network.
    Rebroadcast,
}

/// Proof that one validator signed two conflicting messages.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Evidence {
    /// Two different votes of one kind, height and round by one validator.
    ConflictingVotes {
        /// The vote seen first (the one counted).
        first: SignedVote,
        /// The conflicting one.
        second: SignedVote,
    },
    /// Two different proposals for one height and round by its proposer.
    ConflictingProposals {
        /// The proposal seen first (the one used).
        first: SignedProposal,
        /// The conflicting one.
        second: SignedProposal,
    },
}

impl Evidence {
    /// Index of the validator that equivocated.
    pub fn offender(&self) -> u32 {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.validator,
            Evidence::ConflictingProposals { first, .. } => first.proposal.proposer,
        }
    }
}

/// An output of the state machine. The node carries out the effects of one call **in
/// order**: above all, a `PersistVote`/`PersistProposal` must be durable before the
/// `Broadcast` of the same message that follows it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Effect {
    /// This validator is the proposer and has no validValue: build a block for
    /// `height` on top of the tip, keep its bytes, and answer with
    /// [`Event::ProposalValue`] (paper line 18, getValue()).
    RequestProposalValue {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
    },
    /// A proposal names `block`: fetch its bytes if needed, check it against the ledger
    /// and answer with [`Event::BlockChecked`]. Asked once per block hash and height.
    CheckBlock {
        /// Height.
        height: u64,
        /// Round of the proposal (informational).
        round: u32,
        /// The block hash.
        block: Hash32,
    },
    /// Write this own vote durably to the WAL, before the `Broadcast` that follows.
    PersistVote(SignedVote),
    /// Write this own proposal durably to the WAL, before the `Broadcast` that follows.
    PersistProposal(SignedProposal),
    /// Send to all other validators. The message is already processed locally: do not
    /// deliver it back (if you do, it is ignored as a duplicate). Usually an own message;
    /// after `Event::Rebroadcast` it can also relay another validator's signed vote.
    Broadcast(Message),
    /// Deliver [`Event::Timeout`] with these fields at (or after) `at_ms`. Timeouts are
    /// never cancelled: a stale one is ignored when it fires.
    ScheduleTimeout {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Step.
        step: TimeoutStep,
        /// When, on the clock of the `now_ms` arguments.
        at_ms: u64,
    },
    /// `block` is decided at `height` (paper line 49-51): 2f+1 precommits for it in one
    /// round, given as `certificate`. Store block and certificate (one synced batch),
    /// then send [`Event::StartHeight`] with `height + 1`. The certificate passes
    /// `CommitCertificate::verify`. The node may not have the block's bytes yet (it can
    /// have missed the proposal): it must then fetch them by hash.
    Commit {
        /// Height.
        height: u64,
        /// The decided block hash.
        block: Hash32,
        /// The 2f+1 precommits, sorted by validator index.
        certificate: CommitCertificate,
    },
    /// A validator equivocated; record or report it.
    Evidence(Evidence),
}
