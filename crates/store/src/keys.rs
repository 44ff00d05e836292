//! Column family names and the byte layout of keys and small values.
//!
//! Integers in keys are big-endian so that RocksDB's byte order is numeric order:
//! a block's transactions are one contiguous key range, and so are a height's
//! write-ahead log entries.

use ebill_ledger::TxLocation;
use ebill_types::Hash32;

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
    /// index (u24 BE) ‖ key hash (32 bytes) -> value hash (32 bytes), one record per
    /// leaf (see [`super::tree_leaf_key`]); `b` ‖ bucket index
    /// (u32 BE) -> the bucket's `Slot` (hash, leaf class: 33 bytes).
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

/// First byte of a state tree leaf's key in `state_tree`.
pub(crate) const TREE_LEAF: u8 = b'l';
/// First byte of a state tree bucket's key in `state_tree`.
pub(crate) const TREE_BUCKET: u8 = b'b';

/// Bytes of a leaf key that name its bucket: `l` ‖ bucket index (u24 BE). The state
/// tree's column family takes them as its RocksDB prefix, so that its prefix bloom
/// filters let a bucket's seek skip every sorted run that holds none of its leaves
/// (ADR 0016).
pub(crate) const TREE_LEAF_PREFIX_LEN: usize = 4;

/// `l` ‖ the key's bucket index at depth `cut` (u24 BE) ‖ key hash. The bucket index is
/// the hash's first `cut` bits, so key order is still hash order.
pub(crate) fn tree_leaf_key(cut: usize, key: &Hash32) -> [u8; TREE_LEAF_PREFIX_LEN + 32] {
    let bucket = ebill_types::state_store::position(key, cut).to_be_bytes();
    let mut out = [TREE_LEAF; TREE_LEAF_PREFIX_LEN + 32];
    out[1..TREE_LEAF_PREFIX_LEN].copy_from_slice(&bucket[1..]);
    out[TREE_LEAF_PREFIX_LEN..].copy_from_slice(&key.0);
    out
}

/// A leaf record of a tree cut at `cut`: [`tree_leaf_key`] and a 32-byte value hash;
/// `None` for any other form, or for a key whose prefix is not its hash's bucket.
pub(crate) fn decode_tree_leaf(
    cut: usize,
    k: &[u8],
    v: &[u8],
) -> Option<ebill_types::state_tree::LeafUpdate> {
    if k.len() != TREE_LEAF_PREFIX_LEN + 32 || k[0] != TREE_LEAF {
        return None;
    }
    let key = Hash32(k[TREE_LEAF_PREFIX_LEN..].try_into().ok()?);
    if k != tree_leaf_key(cut, &key).as_slice() {
        return None;
    }
    Some(ebill_types::state_tree::LeafUpdate {
        key,
        value: Hash32(v.try_into().ok()?),
    })
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
    fn leaf_keys_sort_as_their_hashes_do() {
        let hashes = [
            hash([0, 0, 0, 0], 0),
            hash([0, 0, 0, 1], 0xff),
            hash([0x00, 0x10, 0, 0], 0),
            hash([0x7f, 0xff, 0xff, 0xff], 0xff),
            hash([0x80, 0, 0, 0], 0),
            hash([0xab, 0xcd, 0xef, 0x01], 3),
            hash([0xab, 0xcd, 0xef, 0x01], 4),
            hash([0xff, 0xff, 0xff, 0xff], 0xff),
        ];
        for cut in [0, 1, 8, 20, 24] {
            for pair in hashes.windows(2) {
                assert!(pair[0] < pair[1]);
                assert!(
                    tree_leaf_key(cut, &pair[0]) < tree_leaf_key(cut, &pair[1]),
                    "cut {cut}: {} before {}",
                    pair[0],
                    pair[1]
                );
            }
            for h in &hashes {
                let leaf = decode_tree_leaf(cut, &tree_leaf_key(cut, h), &[9; 32]).unwrap();
                assert_eq!(leaf.key, *h);
                assert_eq!(leaf.value, Hash32([9; 32]));
            }
        }
    }

    #[test]
    fn leaf_key_prefix_is_the_bucket() {
        let h = hash([0xab, 0xcd, 0xef, 0x01], 0);
        assert_eq!(tree_leaf_key(20, &h)[..4], [b'l', 0x0a, 0xbc, 0xde]);
        assert_eq!(tree_leaf_key(24, &h)[..4], [b'l', 0xab, 0xcd, 0xef]);
        assert_eq!(tree_leaf_key(0, &h)[..4], [b'l', 0, 0, 0]);
    }

    #[test]
    fn malformed_leaf_records_are_refused() {
        let h = hash([0xab, 0xcd, 0xef, 0x01], 0);
        let good = tree_leaf_key(20, &h);
        // A prefix that is not the hash's bucket.
        let mut wrong_prefix = good;
        wrong_prefix[3] ^= 1;
        assert!(decode_tree_leaf(20, &wrong_prefix, &[0; 32]).is_none());
        // The key of another cut.
        assert!(decode_tree_leaf(24, &good, &[0; 32]).is_none());
        // The layout before format 7 (`l` ‖ key hash), and other lengths.
        let mut old = vec![b'l'];
        old.extend_from_slice(&h.0);
        assert!(decode_tree_leaf(20, &old, &[0; 32]).is_none());
        assert!(decode_tree_leaf(20, &good[..35], &[0; 32]).is_none());
        // A bucket key, and a value cut short.
        assert!(decode_tree_leaf(20, &tree_bucket_key(5), &[0; 32]).is_none());
        assert!(decode_tree_leaf(20, &good, &[0; 31]).is_none());
    }
}
