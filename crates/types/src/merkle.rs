//! The Merkle tree of RFC 6962 (section 2.1): leaf hash SHA-256(0x00 || leaf), node hash
//! SHA-256(0x01 || left || right), the left subtree the largest power of two below the
//! size, so that an odd node is promoted, never duplicated. Any RFC 6962 / RFC 9162
//! verifier checks the inclusion proofs made here.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::hash::Hash32;

/// Longest inclusion path a tree of up to 2^32 leaves can have.
pub const MAX_PATH_LEN: usize = 32;

/// The hash of a leaf: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash32(h.finalize().into())
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

/// The root of an empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash32 {
    Hash32::digest(&[])
}

/// The largest power of two strictly less than `n` (n >= 2).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root over leaf hashes (MTH of RFC 6962).
pub fn root_from_leaf_hashes(leaves: &[Hash32]) -> Hash32 {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(
                &root_from_leaf_hashes(&leaves[..k]),
                &root_from_leaf_hashes(&leaves[k..]),
            )
        }
    }
}

/// The audit path of leaf `index` (PATH of RFC 6962), from the leaf upwards.
pub fn inclusion_path(leaves: &[Hash32], index: usize) -> Option<Vec<Hash32>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(leaves, index, &mut path);
    Some(path)
}

fn path_into(leaves: &[Hash32], index: usize, out: &mut Vec<Hash32>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if index < k {
        path_into(&leaves[..k], index, out);
        out.push(root_from_leaf_hashes(&leaves[k..]));
    } else {
        path_into(&leaves[k..], index - k, out);
        out.push(root_from_leaf_hashes(&leaves[..k]));
    }
}

/// A whole tree, every level kept, for answering many inclusion paths of one block in
/// O(log n) each. Built bottom-up, an odd last node promoted to the next level unchanged,
/// which gives exactly the RFC 6962 tree (tested against [`root_from_leaf_hashes`] and
/// [`inclusion_path`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf hashes; the last level is the root alone.
    levels: Vec<Vec<Hash32>>,
}

impl MerkleTree {
    /// The tree over `leaves` (leaf hashes).
    pub fn new(leaves: Vec<Hash32>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let mut up = Vec::with_capacity(below.len().div_ceil(2));
            for pair in below.chunks(2) {
                match pair {
                    [l, r] => up.push(node_hash(l, r)),
                    [odd] => up.push(*odd),
                    _ => {}
                }
            }
            levels.push(up);
        }
        Self { levels }
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// True for a tree of no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: usize) -> Option<&Hash32> {
        self.levels.first().and_then(|l| l.get(index))
    }

    /// The root.
    pub fn root(&self) -> Hash32 {
        match self.levels.last().and_then(|l| l.first()) {
            Some(r) if !self.is_empty() => *r,
            _ => empty_root(),
        }
    }

    /// The audit path of leaf `index`, from the leaf upwards (the same as
    /// [`inclusion_path`] over the leaves).
    pub fn path(&self, index: usize) -> Option<Vec<Hash32>> {
        if index >= self.len() {
            return None;
        }
        let mut path = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            // A promoted odd node has no sibling on its level: nothing to add.
            if let Some(h) = level.get(sibling) {
                path.push(*h);
            }
            i /= 2;
        }
        Some(path)
    }
}

/// Why an inclusion proof failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    /// The index is not below the tree size.
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// The path has the wrong length for this index and size.
    #[error("path length is wrong for this leaf index and tree size")]
    WrongLength,
    /// The path leads to another root.
    #[error("path leads to root {computed}, not {expected}")]
    RootMismatch {
        /// What the path computes.
        computed: Hash32,
        /// The root it had to reach.
        expected: Hash32,
    },
}

/// An inclusion proof of one leaf in a tree of `tree_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Position of the leaf, from 0.
    pub leaf_index: u64,
    /// Leaves in the tree.
    pub tree_size: u64,
    /// Sibling hashes from the leaf upwards.
    pub path: Vec<Hash32>,
}

impl InclusionProof {
    /// Verifies that `leaf` (a leaf hash) is at `leaf_index` of the tree with `root`
    /// (the algorithm of RFC 9162, section 2.1.3.2).
    pub fn verify(&self, leaf: &Hash32, root: &Hash32) -> Result<(), ProofError> {
        if self.leaf_index >= self.tree_size {
            return Err(ProofError::IndexOutOfRange {
                index: self.leaf_index,
                size: self.tree_size,
            });
        }
        let mut fn_ = self.leaf_index;
        let mut sn = self.tree_size - 1;
        let mut r = *leaf;
        for p in &self.path {
            if sn == 0 {
                return Err(ProofError::WrongLength);
            }
            if fn_ & 1 == 1 || fn_ == sn {
                r = node_hash(p, &r);
                if fn_ & 1 == 0 {
                    while fn_ & 1 == 0 && fn_ != 0 {
                        fn_ >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = node_hash(&r, p);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        if sn != 0 {
            return Err(ProofError::WrongLength);
        }
        if r != *root {
            return Err(ProofError::RootMismatch {
                computed: r,
                expected: *root,
            });
        }
        Ok(())
    }
}

impl Canonical for InclusionProof {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.u64(self.leaf_index).u64(self.tree_size);
        enc.seq(&self.path, |e, h| h.encode_to(e));
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            leaf_index: dec.u64("leaf index")?,
            tree_size: dec.u64("tree size")?,
            path: dec.seq("merkle path", MAX_PATH_LEN, Hash32::decode_from)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves of the RFC 6962 test data used by Certificate Transparency
    /// implementations, with the published roots of the first 1..=8 leaves.
    fn ct_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn roots_match_the_rfc6962_reference_data() {
        let leaves: Vec<Hash32> = ct_leaves().iter().map(|l| leaf_hash(l)).collect();
        for n in 1..=8 {
            assert_eq!(
                root_from_leaf_hashes(&leaves[..n]).to_hex(),
                CT_ROOTS[n - 1],
                "root of {n} leaves"
            );
        }
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_kept_tree_is_the_rfc6962_tree() {
        for n in 0..=130usize {
            let leaves: Vec<Hash32> = (0..n as u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let tree = MerkleTree::new(leaves.clone());
            assert_eq!(tree.root(), root_from_leaf_hashes(&leaves), "n={n}");
            for i in 0..n {
                assert_eq!(tree.path(i), inclusion_path(&leaves, i), "n={n} i={i}");
            }
            assert_eq!(tree.path(n), None);
        }
    }

    #[test]
    fn every_path_verifies_for_its_leaf_only() {
        for n in 1..=40usize {
            let leaves: Vec<Hash32> = (0..n as u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let root = root_from_leaf_hashes(&leaves);
            for i in 0..n {
                let path = inclusion_path(&leaves, i).unwrap_or_default();
                let proof = InclusionProof {
                    leaf_index: i as u64,
                    tree_size: n as u64,
                    path,
                };
                assert_eq!(proof.verify(&leaves[i], &root), Ok(()), "n={n} i={i}");
                for (j, other) in leaves.iter().enumerate() {
                    if j != i {
                        assert!(proof.verify(other, &root).is_err());
                    }
                }
            }
        }
    }
}
