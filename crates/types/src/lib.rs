//! # ebill-types
//!
//! The vocabulary of ebill: bills, transactions, blocks, votes and certificates, their
//! canonical signed bytes, hashing, keys, the RFC 6962 Merkle tree and the genesis
//! document. Pure: no I/O, no clock, no randomness; everything here is a value and a
//! function of values.
//!
//! The byte formats are pinned by golden vectors in `tests/vectors/`; a change to any of
//! them is a protocol change.

pub mod absence;
#[cfg(feature = "adversary")]
pub mod adversary;
pub mod bill;
pub mod block;
pub mod checkpoint;
pub mod codec;
pub mod credit_code;
pub mod dev;
pub mod export;
pub mod genesis;
pub mod hash;
pub mod hexfmt;
pub mod keyfile;
pub mod keys;
pub mod limits;
pub mod merkle;
pub mod money;
pub mod proof;
pub mod receipt_link;
pub mod state_store;
pub mod state_tree;
pub mod status;
pub mod text;
pub mod timestamp;
pub mod transition;
pub mod tx;

pub use absence::{AbsenceProof, VerifiedAbsence, verify_absence};
pub use bill::{
    Bill, BillCode, BillError, BillId, BillKind, BillNumber, CheckCode, CodePrefix, Item, Payer,
    PayerType, SignedBill,
};
pub use block::{
    Block, CommitCertificate, CommitSignature, Header, Proposal, SignedProposal, SignedVote,
    Validator, ValidatorSet, Vote, VoteKind,
};
pub use codec::{Canonical, DecodeError, Decoder, Encoder};
pub use credit_code::CreditCode;
pub use genesis::{Genesis, Params};
pub use hash::Hash32;
pub use keys::{Keypair, PublicKey, Signature};
pub use money::{Fen, Quantity};
pub use status::BillStatus;
pub use timestamp::Timestamp;
pub use tx::{Actor, Auth, RegulatorSignature, SignedTx, Tx, TxBody, TxId, TxKind};
