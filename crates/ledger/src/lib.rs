//! # ebill-ledger
//!
//! The pure state machine of ebill (docs/design.md §3): the rules of every transaction,
//! applied to a read-only state view, producing either a [`ChangeSet`] for a store to
//! commit atomically with the block, or a rejection with a stable [`ErrorCode`] and a
//! message that names the conflicting fact. No I/O, no clock, no randomness: the block
//! time comes in through [`Context`].
//!
//! Invariants kept (and tested by property tests over random histories): a bill id is
//! issued at most once; a bill is reimbursed at most once; a reversed or
//! paper-exchanged bill is never reimbursed; a revoked unit signs nothing new; a
//! rejected transaction changes nothing; a transaction id is applied at most once.

pub mod apply;
pub mod error;
pub mod gov;
pub mod state;
pub mod tree;

pub use apply::{
    Context, Executor, Prepared, Selection, VerifiedSignatures, apply_block, apply_block_prepared,
    genesis_changes, preverify, preverify_prepared, select, select_prepared,
};
pub use error::{BlockError, ErrorCode, StateError, TxError};
pub use gov::{GovState, ProposalOutcome, ProposalRecord, ProposalStatus, Vote};
pub use state::{
    BillRecord, BillStatus, ChangeSet, HistoryEntry, MemState, StateView, TxLocation, UnitEvent,
    UnitRecord, UnitRole,
};
pub use tree::{bill_state, state_updates};
