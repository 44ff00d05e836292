//! # ebill-consensus
//!
//! Tendermint BFT consensus (Buchman, Kwon, Milosevic, arXiv 1807.04938, Algorithm 1) as
//! a pure, sans-I/O state machine for one validator. No I/O, no clock, no randomness, no
//! threads: time comes in as `now_ms`, and everything the validator must do comes out as
//! [`Effect`]s. `docs/consensus.md` maps every line of the paper's algorithm to the code.
//!
//! Consensus decides on **block hashes** ([`ebill_types::Hash32`]); the node holds the
//! block bytes, builds blocks when asked ([`Effect::RequestProposalValue`]) and checks
//! proposed ones ([`Effect::CheckBlock`] → [`Event::BlockChecked`]), so that proposals
//! can carry transaction ids only (compact blocks) without any change here.
//!
//! ## Driving it
//!
//! ```text
//! let (mut c, effects) = Consensus::restore(config, height, &wal_entries_of_height, now_ms)?;
//! carry_out(effects);                      // in order!
//! loop {
//!     let event = next_event();            // network message, timer, ledger answer
//!     carry_out(c.on_event(now_ms, event));
//! }
//! ```
//!
//! Carrying out effects, in the order given:
//! - [`Effect::PersistVote`] / [`Effect::PersistProposal`]: append to the WAL and make it
//!   durable **before** the [`Effect::Broadcast`] of the same message that follows.
//! - [`Effect::Broadcast`]: send to the other validators (not back to this one).
//! - [`Effect::ScheduleTimeout`]: deliver [`Event::Timeout`] at `at_ms`.
//! - [`Effect::RequestProposalValue`]: build a block, answer [`Event::ProposalValue`].
//! - [`Effect::CheckBlock`]: check the block, answer [`Event::BlockChecked`].
//! - [`Effect::Commit`]: store block + certificate, then send [`Event::StartHeight`]
//!   with the next height; the WAL of older heights may then be pruned.
//! - [`Effect::Evidence`]: record it.
//!
//! Answers may come later, after other events; stale ones are ignored.
//!
//! ## Hostile input
//!
//! Votes and proposals are verified here (signature, validator index, proposer of the
//! height and round). Bad ones are dropped and counted in [`Stats`]; nothing a peer
//! sends can panic the instance or grow its memory without bound (see
//! [`ROUND_WINDOW`] and [`NEXT_HEIGHT_ROUNDS`]).
//!
//! ## Planted bugs
//!
//! With the cargo feature `bugs`, [`Config`] has a field `bug: Option<Bug>` (set it with
//! `Config::with_bug`) that plants one of `Bug::NoLock`, `Bug::SmallQuorum`,
//! `Bug::NoWal`, so that the simulator can prove that its checkers fire. Without the
//! feature, neither the type nor the field exists.

mod config;
mod message;
mod state;
mod votes;

#[cfg(test)]
mod tests;

#[cfg(feature = "bugs")]
pub use config::Bug;
pub use config::{Config, ConfigError, TimeoutSchedule, Timeouts};
pub use message::{Effect, Event, Evidence, Message, Step, TimeoutStep, WalEntry};
pub use state::{Consensus, NEXT_HEIGHT_ROUNDS, ROUND_WINDOW, Stats, ValueRound};
