//! Column family names and the byte layout of keys and small values.
//!
//! Integers in keys are big-endian so that RocksDB's byte order is numeric order:
//! a block's transactions are one contiguous key range, and so are a height's
//! write-ahead log entries.

use ebill_ledger::TxLocation;
use ebill_types::Hash32;
use ebill_types::state_tree::LeafUpdate;

use crate::{StoreError, Tip};

/// Column family names (docs/design.md §7.1).
pub mod cf {
    /// height (u64 BE) -> canonical `Header`.
    pub const BLOCKS: &str = "blocks";
    /// (height u64 BE, index u32 BE) -> canonical `SignedTx`.
    pub const BLOCK_TXS: &str = "block_txs";
    /// height (u64 BE) -> canonical `CommitCertificate`.
    pub const CERTIFICATES: &str = "certificates";
    /// block hash (32 bytes) -> height (u64 BE).
    pub const BLOCK_INDEX: &str = "block_index";
    /// transaction id (32 bytes) -> (height u64 BE, index u32 BE).
    pub const TX_INDEX: &str = "tx_index";
    /// `BillId::key()` (18 bytes) -> canonical `BillRecord` (status history inside).
    pub const BILLS: &str = "bills";
    /// credit code (18 bytes) -> canonical `UnitRecord`.
    pub const UNITS: &str = "units";
    /// (height u64 BE, seq u32 BE) -> opaque bytes.
    pub const CONSENSUS_WAL: &str = "consensus_wal";
    /// `tip`, `genesis_hash`, `format_version`.
    pub const META: &str = "meta";
    /// The latest version of the state tree (`ebill_types::state_store`): `l` ‖ bucket
    /// index (u24 BE) -> the bucket's leaves, key hash ‖ value hash (64 bytes each) in
    /// key order, one record per bucket that holds any, each block's leaves a merge
    /// operand of it (see [`super::tree_leaves_key`], [`super::merge_tree_leaves`]);
    /// `b` ‖ bucket index (u32 BE) -> the bucket's `Slot` (hash, leaf class: 33 bytes).
    pub const STATE_TREE: &str = "state_tree";

    /// `state` -> canonical `GovState`; `proposal/` ‖ id (32 bytes) -> canonical
    /// `ProposalRecord`.
    pub const GOVERNANCE: &str = "governance";

    /// The audit indexes ([`crate::index::Index`], outside consensus).
    pub const IDX_BILL_FACTS: &str = "idx_bill_facts";
    /// See [`crate::index::Index::IssuerTime`].
    pub const IDX_ISSUER_TIME: &str = "idx_issuer_time";
    /// See [`crate::index::Index::Reimburser`].
    pub const IDX_REIMBURSER: &str = "idx_reimburser";
    /// See [`crate::index::Index::Kind`].
    pub const IDX_KIND: &str = "idx_kind";
    /// See [`crate::index::Index::Status`].
    pub const IDX_STATUS: &str = "idx_status";
    /// seq (u64 BE) -> canonical `RefusedTx`: the bounded log of refused transactions.
    pub const REFUSED_LOG: &str = "refused_log";

    /// Every column family, in a fixed order.
    pub const ALL: [&str; 17] = [
        BLOCKS,
        BLOCK_TXS,
        CERTIFICATES,
        BLOCK_INDEX,
        TX_INDEX,
        BILLS,
        UNITS,
        CONSENSUS_WAL,
        META,
        STATE_TREE,
        GOVERNANCE,
        IDX_BILL_FACTS,
        IDX_ISSUER_TIME,
        IDX_REIMBURSER,
        IDX_KIND,
        IDX_STATUS,
        REFUSED_LOG,
    ];
}

/// Governance key of the governance record.
pub(crate) const GOV_STATE: &[u8] = b"state";
/// Governance key prefix of proposals.
pub(crate) const GOV_PROPOSAL: &[u8] = b"proposal/";

/// Governance key of a proposal.
pub(crate) fn proposal_key(id: &Hash32) -> Vec<u8> {
    let mut k = GOV_PROPOSAL.to_vec();
    k.extend_from_slice(&id.0);
    k
}

/// First byte of the key of a state tree bucket's leaves in `state_tree`.
pub(crate) const TREE_LEAVES: u8 = b'l';
/// First byte of a state tree bucket's key in `state_tree`.
pub(crate) const TREE_BUCKET: u8 = b'b';

/// Bytes of one leaf in a bucket's leaves record: key hash then value hash.
pub(crate) const TREE_LEAF_BYTES: usize = 64;

/// `l` ‖ bucket index (u24 BE): the key of the record that holds all of a bucket's
/// leaves (ADR 0017). Bucket indices are below 2^`MAX_CUT` = 2^24, so three bytes hold
/// them, and key order is bucket order, which is key-hash order.
pub(crate) fn tree_leaves_key(bucket: u32) -> [u8; 4] {
    assert!(
        bucket < 1 << ebill_types::state_store::MAX_CUT,
        "bucket {bucket} beyond the deepest cut"
    );
    let b = bucket.to_be_bytes();
    [TREE_LEAVES, b[1], b[2], b[3]]
}

/// Reads [`tree_leaves_key`]; `None` for any other form.
pub(crate) fn decode_tree_leaves_key(k: &[u8]) -> Option<u32> {
    match k {
        [TREE_LEAVES, a, b, c] => Some(u32::from_be_bytes([0, *a, *b, *c])),
        _ => None,
    }
}

/// A bucket's leaves as its record holds them: each leaf's key hash and value hash
/// (64 bytes), in key order.
pub(crate) fn encode_tree_leaves(leaves: &[LeafUpdate]) -> Vec<u8> {
    let mut out = Vec::with_capacity(leaves.len() * TREE_LEAF_BYTES);
    for leaf in leaves {
        out.extend_from_slice(&leaf.key.0);
        out.extend_from_slice(&leaf.value.0);
    }
    out
}

/// A run of leaves as records and merge operands hold them: a non-empty whole number
/// of 64-byte leaves, keys strictly ascending; `None` for any other form.
fn decode_leaf_run(v: &[u8]) -> Option<Vec<LeafUpdate>> {
    if v.is_empty() || !v.len().is_multiple_of(TREE_LEAF_BYTES) {
        return None;
    }
    let mut out: Vec<LeafUpdate> = Vec::with_capacity(v.len() / TREE_LEAF_BYTES);
    for leaf in v.chunks_exact(TREE_LEAF_BYTES) {
        let (key, value) = leaf.split_at(32);
        let key = Hash32(key.try_into().ok()?);
        if out.last().is_some_and(|prev| prev.key >= key) {
            return None;
        }
        out.push(LeafUpdate {
            key,
            value: Hash32(value.try_into().ok()?),
        });
    }
    Some(out)
}

/// The leaves record of a bucket after the merge operands `operands` (oldest first)
/// on `existing`: each is a run of leaves ([`decode_leaf_run`]; an operand is one
/// batch's leaves in the bucket), folded in with the tree's own rule
/// (`ebill_types::state_store::merge_leaves`: a key in a later run takes its value from
/// there). RocksDB's merge operator for the family (ADR 0017), run on reads and in
/// compactions; `None` (which RocksDB reports as corruption) for a run of another form.
/// It checks no bucket: [`decode_tree_leaves`] does, on every read.
pub(crate) fn merge_tree_leaves<'a>(
    existing: Option<&'a [u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Vec<u8>> {
    let mut acc = match existing {
        Some(run) => decode_leaf_run(run)?,
        None => Vec::new(),
    };
    let mut merged = Vec::new();
    for run in operands {
        ebill_types::state_store::merge_leaves(&acc, &decode_leaf_run(run)?, &mut merged);
        std::mem::swap(&mut acc, &mut merged);
    }
    Some(encode_tree_leaves(&acc))
}

/// Reads the leaves record of bucket `bucket` of a tree cut at `cut`: a run of leaves
/// ([`decode_leaf_run`]) whose keys are all in that bucket; `None` for any other form.
pub(crate) fn decode_tree_leaves(cut: usize, bucket: u32, v: &[u8]) -> Option<Vec<LeafUpdate>> {
    let leaves = decode_leaf_run(v)?;
    leaves
        .iter()
        .all(|l| ebill_types::state_store::position(&l.key, cut) == bucket)
        .then_some(leaves)
}

/// `b` ‖ bucket index (u32 BE).
pub(crate) fn tree_bucket_key(index: u32) -> [u8; 5] {
    let mut out = [TREE_BUCKET; 5];
    out[1..].copy_from_slice(&index.to_be_bytes());
    out
}

/// Reads [`tree_bucket_key`]; `None` for any other form.
pub(crate) fn decode_tree_bucket_key(k: &[u8]) -> Option<u32> {
    let (&tag, index) = k.split_first()?;
    (tag == TREE_BUCKET).then_some(())?;
    Some(u32::from_be_bytes(index.try_into().ok()?))
}

/// Meta key of the tip: height (u64 BE) then hash (32 bytes).
pub(crate) const META_TIP: &[u8] = b"tip";
/// Meta key of the genesis hash (32 bytes).
pub(crate) const META_GENESIS: &[u8] = b"genesis_hash";
/// Meta key of the last checkpoint this node co-signed: height (u64 BE) then block
/// hash (32 bytes).
pub(crate) const META_COSIGNED: &[u8] = b"last_cosigned";
/// Meta key of the format version (u32 BE).
pub(crate) const META_FORMAT: &[u8] = b"format_version";
/// `meta` key of the state tree's bucket depth (u32 BE), written with the genesis.
pub(crate) const META_TREE_CUT: &[u8] = b"tree_cut";

/// Reads the stored bucket depth, refusing one above `max`.
pub(crate) fn decode_tree_cut(v: &[u8], max: usize) -> Result<usize, StoreError> {
    let bad = |reason: String| StoreError::Corrupt {
        what: "meta/tree_cut".to_owned(),
        reason,
    };
    let bytes: [u8; 4] = v
        .try_into()
        .map_err(|_| bad(format!("{} bytes, not 4", v.len())))?;
    let cut = u32::from_be_bytes(bytes) as usize;
    if cut > max {
        return Err(bad(format!("{cut} above the largest, {max}")));
    }
    Ok(cut)
}

/// Key of a height.
pub(crate) fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// Key of (height, u32): a block's transaction, or a write-ahead log entry.
pub(crate) fn pair_key(height: u64, second: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(&second.to_be_bytes());
    k
}

/// Splits a key made by [`pair_key`].
pub(crate) fn split_pair_key(what: &str, key: &[u8]) -> Result<(u64, u32), StoreError> {
    let k: [u8; 12] = key.try_into().map_err(|_| StoreError::Corrupt {
        what: what.to_owned(),
        reason: format!("key of {} bytes, expected 12", key.len()),
    })?;
    let mut h = [0u8; 8];
    h.copy_from_slice(&k[..8]);
    let mut s = [0u8; 4];
    s.copy_from_slice(&k[8..]);
    Ok((u64::from_be_bytes(h), u32::from_be_bytes(s)))
}

/// Value of a transaction index entry.
pub(crate) fn location_value(loc: TxLocation) -> [u8; 12] {
    pair_key(loc.height, loc.index)
}

/// Decodes a transaction index value.
pub(crate) fn decode_location(what: &str, v: &[u8]) -> Result<TxLocation, StoreError> {
    let (height, index) = split_pair_key(what, v)?;
    Ok(TxLocation { height, index })
}

/// Decodes a height value.
pub(crate) fn decode_height(what: &str, v: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        what: what.to_owned(),
        reason: format!("{} bytes, expected an 8-byte height", v.len()),
    })?;
    Ok(u64::from_be_bytes(b))
}

/// Decodes a 32-byte hash value.
pub(crate) fn decode_hash(what: &str, v: &[u8]) -> Result<Hash32, StoreError> {
    let b: [u8; 32] = v.try_into().map_err(|_| StoreError::Corrupt {
        what: what.to_owned(),
        reason: format!("{} bytes, expected a 32-byte hash", v.len()),
    })?;
    Ok(Hash32(b))
}

/// Value of the tip.
pub(crate) fn tip_value(tip: Tip) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&tip.height.to_be_bytes());
    v[8..].copy_from_slice(&tip.hash.0);
    v
}

/// Decodes the tip.
pub(crate) fn decode_tip(v: &[u8]) -> Result<Tip, StoreError> {
    if v.len() != 40 {
        return Err(StoreError::Corrupt {
            what: "meta/tip".to_owned(),
            reason: format!("{} bytes, expected 40", v.len()),
        });
    }
    Ok(Tip {
        height: decode_height("meta/tip", &v[..8])?,
        hash: decode_hash("meta/tip", &v[8..])?,
    })
}

/// Decodes the format version.
pub(crate) fn decode_format(v: &[u8]) -> Result<u32, StoreError> {
    let b: [u8; 4] = v.try_into().map_err(|_| StoreError::Corrupt {
        what: "meta/format_version".to_owned(),
        reason: format!("{} bytes, expected 4", v.len()),
    })?;
    Ok(u32::from_be_bytes(b))
}

/// Decodes canonical bytes read from `what`, mapping a refusal to `Corrupt`.
pub(crate) fn decode<T: ebill_types::Canonical>(
    what: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    T::from_canonical_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what: what(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hash(first: [u8; 4], fill: u8) -> Hash32 {
        let mut h = [fill; 32];
        h[..4].copy_from_slice(&first);
        Hash32(h)
    }

    #[test]
    fn leaves_keys_sort_as_their_buckets_do() {
        let buckets = [0u32, 1, 0xff, 0x100, 0xabcdef, (1 << 24) - 1];
        for pair in buckets.windows(2) {
            assert!(tree_leaves_key(pair[0]) < tree_leaves_key(pair[1]));
        }
        for b in buckets {
            assert_eq!(decode_tree_leaves_key(&tree_leaves_key(b)), Some(b));
        }
        assert_eq!(tree_leaves_key(0x0abcde), [b'l', 0x0a, 0xbc, 0xde]);
        assert_eq!(decode_tree_leaves_key(&tree_bucket_key(5)), None);
        assert_eq!(decode_tree_leaves_key(&[b'l', 0, 0]), None);
        assert_eq!(decode_tree_leaves_key(&[b'l', 0, 0, 0, 0]), None);
    }

    #[test]
    fn leaves_records_round_trip() {
        let leaf = |k: [u8; 4], last: u8, v: u8| LeafUpdate {
            key: hash(k, last),
            value: Hash32([v; 32]),
        };
        // Bucket 0x0abcde at cut 20 holds keys beginning ab cd e.
        let leaves = [
            leaf([0xab, 0xcd, 0xe0, 0], 1, 1),
            leaf([0xab, 0xcd, 0xe0, 0], 2, 2),
            leaf([0xab, 0xcd, 0xef, 0xff], 0, 3),
        ];
        let bytes = encode_tree_leaves(&leaves);
        assert_eq!(bytes.len(), 3 * TREE_LEAF_BYTES);
        assert_eq!(
            decode_tree_leaves(20, 0x0abcde, &bytes),
            Some(leaves.to_vec())
        );
    }

    #[test]
    fn merge_operands_fold_newest_last() {
        let leaf = |k: u8, v: u8| LeafUpdate {
            key: hash([0xab, 0xcd, 0xe0, k], 0),
            value: Hash32([v; 32]),
        };
        let enc = |ls: &[LeafUpdate]| encode_tree_leaves(ls);
        let base = enc(&[leaf(1, 1), leaf(3, 3)]);
        let first = enc(&[leaf(2, 2), leaf(3, 4)]);
        let second = enc(&[leaf(0, 0), leaf(3, 5)]);
        let merged = merge_tree_leaves(Some(&base), [first.as_slice(), second.as_slice()]).unwrap();
        assert_eq!(
            merged,
            enc(&[leaf(0, 0), leaf(1, 1), leaf(2, 2), leaf(3, 5)])
        );
        // Associative: operands folded first, then onto the base, give the same record.
        let partial = merge_tree_leaves(None, [first.as_slice(), second.as_slice()]).unwrap();
        assert_eq!(
            merge_tree_leaves(Some(&base), [partial.as_slice()]),
            Some(merged)
        );
        assert_eq!(merge_tree_leaves(None, []), Some(Vec::new()));
        // Runs that are not whole, sorted leaves are refused, base or operand.
        let unsorted = enc(&[leaf(3, 3), leaf(1, 1)]);
        assert_eq!(merge_tree_leaves(Some(&unsorted), []), None);
        assert_eq!(merge_tree_leaves(Some(&base), [unsorted.as_slice()]), None);
        assert_eq!(merge_tree_leaves(Some(&base), [&first[..63]]), None);
        assert_eq!(merge_tree_leaves(Some(&base), [&[][..]]), None);
    }

    #[test]
    fn malformed_leaves_records_are_refused() {
        let leaf = |k: [u8; 4], last: u8| LeafUpdate {
            key: hash(k, last),
            value: Hash32([7; 32]),
        };
        let a = leaf([0xab, 0xcd, 0xe0, 0], 1);
        let b = leaf([0xab, 0xcd, 0xe0, 0], 2);
        let refused = |bytes: &[u8]| decode_tree_leaves(20, 0x0abcde, bytes);
        assert_eq!(refused(&[]), None, "an empty record");
        assert_eq!(
            refused(&encode_tree_leaves(&[a])[..63]),
            None,
            "a leaf cut short"
        );
        assert_eq!(refused(&encode_tree_leaves(&[b, a])), None, "out of order");
        assert_eq!(refused(&encode_tree_leaves(&[a, a])), None, "a key twice");
        let elsewhere = leaf([0xab, 0xcd, 0xf0, 0], 1);
        assert_eq!(
            refused(&encode_tree_leaves(&[a, elsewhere])),
            None,
            "a key of another bucket"
        );
        // The same leaves read at another cut are in another bucket.
        let bytes = encode_tree_leaves(&[a, b]);
        assert_eq!(decode_tree_leaves(24, 0x0abcde, &bytes), None);
        assert_eq!(decode_tree_leaves(24, 0xabcde0, &bytes), Some(vec![a, b]));
    }
}
