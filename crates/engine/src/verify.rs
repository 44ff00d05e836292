//! Signature checks spread over the machine's cores when there are many: admission of a
//! large batch, a block whose transactions this node has not seen, an observer catching
//! up. The result is the same set of verified signatures whichever way the work is
//! split, so the engine stays deterministic.

use ebill_ledger::{Prepared, StateError, StateView, VerifiedSignatures, preverify_prepared};
use ebill_types::Genesis;

/// From this many transactions on, signatures are checked on several cores: 512
/// `verify_strict` checks take about 20 ms on one core, far more than starting a thread,
/// while a busy node already runs smaller admissions side by side.
pub const PARALLEL_VERIFY_MIN_TXS: usize = 512;
/// The least each core is given once the work is split.
const PARALLEL_VERIFY_MIN_CHUNK: usize = 256;
/// The least each core is given when the checks run beside the engine's own work (the
/// next synced block's signatures, while the engine commits the one before): nothing
/// else waits on these threads, so a split pays as soon as a part outweighs starting a
/// thread (64 checks take about 2 ms).
const BESIDE_VERIFY_MIN_CHUNK: usize = 64;

/// How signature checks are spread over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Most threads.
    pub cores: usize,
    /// Below this many transactions, one thread (the caller's).
    pub min_txs: usize,
    /// The least each thread is given.
    pub min_chunk: usize,
}

impl Split {
    /// For checks the caller waits on (admission, a block's own check): split from
    /// [`PARALLEL_VERIFY_MIN_TXS`] on.
    pub fn on_demand(cores: usize) -> Self {
        Self {
            cores,
            min_txs: PARALLEL_VERIFY_MIN_TXS,
            min_chunk: PARALLEL_VERIFY_MIN_CHUNK,
        }
    }

    /// For checks that run beside the engine's own work: split from two chunks of
    /// [`BESIDE_VERIFY_MIN_CHUNK`] on.
    pub fn beside(cores: usize) -> Self {
        Self {
            cores,
            min_txs: 2 * BESIDE_VERIFY_MIN_CHUNK,
            min_chunk: BESIDE_VERIFY_MIN_CHUNK,
        }
    }
}

/// Verifies the signatures of `txs` against `view` and `genesis`, on up to `cores`
/// threads (1: on the caller's thread), split as [`Split::on_demand`].
pub fn preverify_parallel<V: StateView + Sync + ?Sized>(
    view: &V,
    genesis: &Genesis,
    txs: &[&Prepared<'_>],
    cores: usize,
) -> Result<VerifiedSignatures, StateError> {
    preverify_split(view, genesis, txs, Split::on_demand(cores))
}

/// Verifies the signatures of `txs` against `view` and `genesis`, spread over threads
/// as `split` says.
pub fn preverify_split<V: StateView + Sync + ?Sized>(
    view: &V,
    genesis: &Genesis,
    txs: &[&Prepared<'_>],
    split: Split,
) -> Result<VerifiedSignatures, StateError> {
    if txs.len() < split.min_txs.max(2) || split.cores < 2 {
        return preverify_prepared(view, genesis, txs);
    }
    let chunk = txs.len().div_ceil(split.cores).max(split.min_chunk).max(1);
    let parts: Vec<Result<VerifiedSignatures, StateError>> = std::thread::scope(|s| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .map(|part| s.spawn(move || preverify_prepared(view, genesis, part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(StateError("verifier thread panicked".into())))
            })
            .collect()
    });
    let mut all = VerifiedSignatures::default();
    for part in parts {
        all.extend(part?);
    }
    Ok(all)
}

/// The cores this machine has (1 if it cannot tell).
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
