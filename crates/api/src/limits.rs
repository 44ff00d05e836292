//! Limits of the HTTP API, with their units in their names.

use std::time::Duration;

/// Largest body of `POST /v1/txs` and `POST /v1/verify`: the JSON form of one signed
/// transaction or bill file. The ledger's own limit is on the canonical bytes (64 KiB by
/// default); JSON with its field names is larger, so the HTTP limit is twice that.
pub const MAX_TX_BODY_BYTES: usize = 128 * 1024;

/// Largest body of `POST /v1/txs/batch`.
pub const MAX_BATCH_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Most transactions in one batch; more is 413 `batch_too_large`.
pub const MAX_BATCH_TXS: usize = 10_000;

/// How long `?wait=commit` waits by default.
pub const WAIT_COMMIT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// Blocks whose Merkle trees the proof route keeps (about 320 KB each for 5,000
/// transactions).
pub const PROOF_TREE_CACHE_BLOCKS: usize = 64;
