//! # ebill-engine
//!
//! The engine of an ebill node as a sans-I/O state machine (docs/design.md §4.5): it joins
//! Tendermint consensus (`ebill-consensus`), the ledger's rules (`ebill-ledger`), the
//! mempool and the store (`ebill-store`'s [`Store`](ebill_store::Store) trait), and holds
//! every decision a node makes between them: when a height starts (a transaction waits,
//! a message of that height arrives, or the heartbeat is due; ADR 0004), building and
//! checking blocks ([`check_block`] is the one block-validity rule), persisting own
//! messages and block bytes to the WAL before they leave, committing final blocks,
//! catching up from peers' certified blocks, fetching block bytes it lacks, re-sending
//! while a round is stuck.
//!
//! It reads no clock, opens no socket and draws no random number: every call of
//! [`Engine::on_input`] brings the time (`now_ms`, monotonic, for consensus timeouts;
//! `wall_ms`, Unix, for block times) and returns [`Output`]s for its host to carry out.
//! The node (`ebill-node`) hosts it on a thread with channels, libp2p and the system
//! clocks; the simulator (`ebill-sim`) hosts the same code over its simulated network,
//! clocks, crashes and adversaries. What the simulator checks is what the node runs.
//!
//! An observer is an engine without consensus: it takes only certified blocks, checks
//! each certificate against the genesis validator set, re-executes every transaction,
//! and halts ([`EngineError::Mismatch`]) if anything does not hold. A regulator's
//! observer then co-signs the block's checkpoint ([`witness`]).

mod block;
mod engine;
mod io;
pub mod mempool;
pub mod sync;
pub mod verify;
pub mod wal;
pub mod witness;

pub use block::{
    BlockRules, Built, ChainTip, DroppedTx, InvalidBlock, block_signatures, build_block,
    check_block,
};
pub use engine::{Engine, EngineConfig, EngineError, EngineSetup};
pub use io::{CertifiedBlock, Committed, Input, Outbound, Output};
pub use mempool::Mempool;
pub use sync::SYNC_BATCH_BLOCKS;
