//! Configuration of one validator's consensus instance: who it is, whom it votes with,
//! and how long it waits.

use ebill_types::{Keypair, ValidatorSet};
use thiserror::Error;

use crate::message::TimeoutStep;

/// The timeout of one step: `base_ms + round * increment_ms` (saturating), so that
/// timeouts grow per round and eventually exceed the real message delay after GST.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimeoutSchedule {
    /// Duration in round 0.
    pub base_ms: u64,
    /// Added per round.
    pub increment_ms: u64,
}

impl TimeoutSchedule {
    /// A schedule.
    pub const fn new(base_ms: u64, increment_ms: u64) -> Self {
        Self {
            base_ms,
            increment_ms,
        }
    }

    /// The duration of the timeout in `round`.
    pub fn duration_ms(&self, round: u32) -> u64 {
        self.base_ms
            .saturating_add(self.increment_ms.saturating_mul(u64::from(round)))
    }
}

/// Timeouts of the three steps (paper: timeoutPropose, timeoutPrevote, timeoutPrecommit).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Timeouts {
    /// How long a validator waits for the proposal of a round.
    pub propose: TimeoutSchedule,
    /// How long it waits after 2f+1 prevotes of any kind before precommitting nil.
    pub prevote: TimeoutSchedule,
    /// How long it waits after 2f+1 precommits of any kind before the next round.
    pub precommit: TimeoutSchedule,
}

impl Default for Timeouts {
    /// 3000+500r ms to propose, 1000+500r ms for each vote step (CometBFT's defaults).
    fn default() -> Self {
        Self {
            propose: TimeoutSchedule::new(3_000, 500),
            prevote: TimeoutSchedule::new(1_000, 500),
            precommit: TimeoutSchedule::new(1_000, 500),
        }
    }
}

impl Timeouts {
    /// The duration of the timeout of `step` in `round`.
    pub fn duration_ms(&self, step: TimeoutStep, round: u32) -> u64 {
        match step {
            TimeoutStep::Propose => self.propose.duration_ms(round),
            TimeoutStep::Prevote => self.prevote.duration_ms(round),
            TimeoutStep::Precommit => self.precommit.duration_ms(round),
        }
    }
}

/// A planted bug, so that the simulator can prove its checkers fire. Exists only with the
/// cargo feature `bugs`.
#[cfg(feature = "bugs")]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bug {
    /// Ignore lockedValue/lockedRound when prevoting (lines 23 and 29 always pass the
    /// lock test): breaks agreement across rounds.
    NoLock,
    /// Use f+1 instead of 2f+1 for every quorum (the f+1 of round skipping stays): breaks
    /// agreement, and the commit certificates fail `CommitCertificate::verify`.
    SmallQuorum,
    /// Emit no `PersistVote`/`PersistProposal` effects, and let `Consensus::restore`
    /// ignore the WAL it is given: a restarted validator may sign conflicting votes.
    NoWal,
}

/// The configuration of one validator. Build it with [`Config::new`] (the struct is
/// `#[non_exhaustive]`, so that the feature `bugs` can add a field without breaking
/// anyone), then adjust public fields or use the `with_*` methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The chain id, part of every signed vote and proposal.
    pub chain_id: String,
    /// The fixed validator set (from genesis).
    pub validators: ValidatorSet,
    /// This validator's index in `validators`.
    pub validator_index: u32,
    /// This validator's signing key; its public key must be that of `validator_index`.
    pub keypair: Keypair,
    /// Step timeouts.
    pub timeouts: Timeouts,
    /// The planted bug, if any (feature `bugs` only).
    #[cfg(feature = "bugs")]
    pub bug: Option<Bug>,
}

impl Config {
    /// A configuration with the default timeouts.
    pub fn new(
        chain_id: impl Into<String>,
        validators: ValidatorSet,
        validator_index: u32,
        keypair: Keypair,
    ) -> Self {
        Self {
            chain_id: chain_id.into(),
            validators,
            validator_index,
            keypair,
            timeouts: Timeouts::default(),
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }

    /// The same with other timeouts.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The same with a planted bug (feature `bugs` only).
    #[cfg(feature = "bugs")]
    pub fn with_bug(mut self, bug: Option<Bug>) -> Self {
        self.bug = bug;
        self
    }

    /// Checks that the key is the one the validator set names at `validator_index`.
    pub fn check(&self) -> Result<(), ConfigError> {
        let n = self.validators.len();
        let v = self
            .validators
            .get(self.validator_index)
            .ok_or(ConfigError::UnknownValidator {
                index: self.validator_index,
                n,
            })?;
        if v.public_key != self.keypair.public() {
            return Err(ConfigError::KeyMismatch {
                index: self.validator_index,
            });
        }
        if self.chain_id.is_empty() {
            return Err(ConfigError::EmptyChainId);
        }
        Ok(())
    }
}

/// Why a consensus instance could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The own index is not in the validator set.
    #[error("validator index {index} is not in a set of {n} validators")]
    UnknownValidator {
        /// The configured index.
        index: u32,
        /// Size of the set.
        n: usize,
    },
    /// The keypair does not belong to the validator at the index.
    #[error("the keypair is not that of validator {index}")]
    KeyMismatch {
        /// The configured index.
        index: u32,
    },
    /// No chain id.
    #[error("the chain id is empty")]
    EmptyChainId,
    /// A WAL entry was signed by another validator.
    #[error(
        "WAL entry at height {height} round {round} is by validator {signer}, not by us ({own})"
    )]
    WalForeignEntry {
        /// Height of the entry.
        height: u64,
        /// Round of the entry.
        round: u32,
        /// Its signer.
        signer: u32,
        /// Our index.
        own: u32,
    },
    /// A WAL entry's signature does not verify: the WAL is corrupt.
    #[error("WAL entry at height {height} round {round} has a bad signature")]
    WalBadSignature {
        /// Height of the entry.
        height: u64,
        /// Round of the entry.
        round: u32,
    },
    /// Two different own votes of one kind, or two own proposals, for one round: the WAL
    /// records an equivocation we must never have made.
    #[error("WAL holds two conflicting own messages at height {height} round {round}")]
    WalConflict {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
    },
    /// The WAL has entries of a height above the one we are asked to resume: the store is
    /// behind the WAL, which the node must never let happen.
    #[error("WAL has entries of height {wal_height}, above the height {height} to resume")]
    WalAhead {
        /// Highest height in the WAL.
        wal_height: u64,
        /// The height asked for.
        height: u64,
    },
    /// Heights start at 1.
    #[error("height 0 does not exist (heights start at 1)")]
    ZeroHeight,
}
