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

/// Verifies the signatures of `txs` against `view` and `genesis`, on up to `cores`
/// threads (1: on the caller's thread).
pub fn preverify_parallel<V: StateView + Sync + ?Sized>(
    view: &V,
    genesis: &Genesis,
    txs: &[&Prepared<'_>],
    cores: usize,
) -> Result<VerifiedSignatures, StateError> {
    if txs.len() < PARALLEL_VERIFY_MIN_TXS || cores < 2 {
        return preverify_prepared(view, genesis, txs);
    }
    let chunk = txs.len().div_ceil(cores).max(PARALLEL_VERIFY_MIN_CHUNK);
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
