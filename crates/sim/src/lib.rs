//! # ebill-sim
//!
//! A deterministic simulator of a whole ebill cluster from one `u64` seed: N validators,
//! each the node's own engine (`ebill-engine`: consensus, ledger, mempool, WAL) over an
//! in-memory store (`ebill-store`'s `MemStore`) that survives crashes;
//! clients submitting random bill lifecycles, conflicting ones included; a network with
//! random delays, losses, duplicates, reordering and partitions that heal at GST;
//! crashes and restarts from store + WAL; up to f Byzantine validators that equivocate
//! and send garbage. Checkers run after every step (see [`checker`]), and after GST the
//! run demands progress within a stated bound ([`RunConfig::liveness_bound_ms`]).
//!
//! Everything is a function of the seed: one SplitMix64 generator ([`rng::Rng`]), a
//! simulated clock, one discrete-event queue ordered by (time, sequence number), no
//! threads, no wall clock, no hash-map iteration. The same seed replays the same run
//! ([`RunReport::trace_digest`] is equal).
//!
//! Modules: [`rng`] (randomness), [`network`] (messages and their fates), [`node`] (one
//! validator: the node's engine and the glue a node has around it), [`byzantine`] (the adversary),
//! [`workload`] (the clients), [`checker`] (safety checkers), [`run`] (the event loop).
//! The binary `ebill-sim` runs many seeds; see `docs/simulation.md`.

pub mod byzantine;
pub mod checker;
pub mod corrupt;
pub mod disk;
pub mod network;
pub mod node;
pub mod rng;
pub mod run;
pub mod workload;

pub use checker::Violation;
pub use node::PlantedBug;
pub use run::{RunConfig, RunReport, Summary, describe_failure, run_seed, run_seeds};
