//! Storage pages of the state tree: four binary levels of [`crate::state_tree`] in one
//! record, so that a store reads a path of depth d in ⌈(d+1)/4⌉ point reads, not d+1.
//! ADR 0011 (docs/adr/0011-state-tree-pages.md) says why and what it costs.
//!
//! Paging is a storage layout only: the tree, its hashes, its root and its proofs are
//! those of the binary tree; [`crate::state_tree::apply`] still reads and writes binary
//! nodes ([`NodeKey`], [`TreeNode`]), and a store maps them to pages with
//! [`PageKey::of`] and [`page_writes`].
//!
//! A page at level `l` holds the positions of depths `4l .. 4l+4` under one path of
//! `4l` bits: up to 15 binary nodes, in slots numbered as a heap (slot 0 the page's
//! root, slots `2^r - 1 ..` the positions of relative depth `r`).
//!
//! Encoding (strict: one page, one encoding), pre-order from the page's root:
//! - `0`: no node at this position;
//! - `1` ‖ key hash ‖ value hash: a leaf;
//! - `2` then, at relative depths 0–2, the encodings of the two children; at relative
//!   depth 3 (whose children are the roots of the pages below) the two child hashes.
//!
//! The left/right hashes of an internal node above relative depth 3 are not stored: the
//! decoder recomputes them from the children (at most 14 node hashes per page), so a
//! stored page cannot contradict itself.

use std::collections::BTreeMap;

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::hash::Hash32;
use crate::state_tree::{EMPTY, KEY_BITS, NodeKey, NodeWrite, TreeNode};

/// Binary levels per page.
pub const PAGE_LEVELS: usize = 4;
/// Binary positions per page (1 + 2 + 4 + 8).
pub const PAGE_SLOTS: usize = (1 << PAGE_LEVELS) - 1;
/// The deepest page level: its page holds only the position at depth 256.
pub const MAX_PAGE_LEVEL: u16 = (KEY_BITS / PAGE_LEVELS) as u16;

const TAG_EMPTY: u8 = 0;
const TAG_LEAF: u8 = 1;
const TAG_INTERNAL: u8 = 2;

/// Where a page sits: its level (its root's depth is `4 × level`) and the first
/// `4 × level` bits of its path (the rest zero).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PageKey {
    /// The page level, 0 (the root page) to [`MAX_PAGE_LEVEL`].
    pub level: u16,
    /// The path of the page's root position.
    pub path: Hash32,
}

/// A binary position inside its page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PageSlot {
    /// The page.
    pub page: PageKey,
    /// The slot, `0 .. PAGE_SLOTS`.
    pub slot: usize,
}

impl PageKey {
    /// The root page.
    pub const ROOT: PageKey = PageKey {
        level: 0,
        path: Hash32::ZERO,
    };

    /// Depth of the page's root position.
    pub fn root_depth(&self) -> usize {
        usize::from(self.level) * PAGE_LEVELS
    }

    /// The page and slot of a binary position.
    pub fn of(node: &NodeKey) -> PageSlot {
        let depth = usize::from(node.depth);
        let level = depth / PAGE_LEVELS;
        let root_depth = level * PAGE_LEVELS;
        let rel = depth - root_depth;
        let mut index = 0usize;
        for d in root_depth..depth {
            index = (index << 1) | usize::from(path_bit(&node.path, d));
        }
        PageSlot {
            page: PageKey {
                // At most 256 / 4 = 64.
                level: level as u16,
                path: masked(&node.path, root_depth),
            },
            slot: (1 << rel) - 1 + index,
        }
    }

    /// The binary position of `slot` in this page.
    pub fn node_key(&self, slot: usize) -> NodeKey {
        assert!(slot < PAGE_SLOTS, "slot {slot} of a page");
        let rel = usize::BITS as usize - 1 - (slot + 1).leading_zeros() as usize;
        let index = slot + 1 - (1 << rel);
        let mut key = NodeKey {
            depth: self.root_depth() as u16,
            path: self.path,
        };
        for r in (0..rel).rev() {
            key = key.child(index >> r & 1 == 1);
        }
        key
    }

    /// Storage key: the level (1 byte) then the path's first ⌈4·level/8⌉ bytes. Keys of
    /// distinct pages differ.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.root_depth().div_ceil(8);
        let mut out = Vec::with_capacity(1 + n);
        // At most 64.
        out.push(self.level as u8);
        out.extend_from_slice(&self.path.0[..n]);
        out
    }

    /// Reads [`PageKey::to_bytes`], refusing any other form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let bad = |reason: &'static str| DecodeError::Invalid {
            what: "state tree page key",
            reason: reason.into(),
        };
        let (&level, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        if u16::from(level) > MAX_PAGE_LEVEL {
            return Err(bad("deeper than 256"));
        }
        let key = PageKey {
            level: u16::from(level),
            path: Hash32::ZERO,
        };
        let n = key.root_depth().div_ceil(8);
        if rest.len() != n {
            return Err(bad("path length does not match the level"));
        }
        let mut path = Hash32::ZERO;
        path.0[..n].copy_from_slice(rest);
        if masked(&path, key.root_depth()) != path {
            return Err(bad("bits beyond the level are set"));
        }
        Ok(PageKey { path, ..key })
    }
}

fn path_bit(path: &Hash32, depth: usize) -> bool {
    path.0[depth / 8] & (0x80 >> (depth % 8)) != 0
}

/// `path` with every bit from `bits` on cleared.
fn masked(path: &Hash32, bits: usize) -> Hash32 {
    let mut out = *path;
    for (i, b) in out.0.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    out
}

/// One page's binary nodes, by slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Page {
    slots: [Option<TreeNode>; PAGE_SLOTS],
}

impl Page {
    /// The node in `slot`, if any.
    pub fn get(&self, slot: usize) -> Option<TreeNode> {
        self.slots[slot]
    }

    /// Puts `node` in `slot`.
    pub fn set(&mut self, slot: usize, node: TreeNode) {
        self.slots[slot] = Some(node);
    }

    /// Whether the page holds no node (such a page is never stored).
    pub fn is_empty(&self) -> bool {
        self.slots[0].is_none()
    }

    /// How many nodes the page holds.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// The canonical bytes (see the module documentation).
    ///
    /// Panics if the page contradicts itself (a node under an empty position or under
    /// a leaf, an internal node whose empty side has a node below it): the tree never
    /// writes such a page, so one would be a bug in the caller.
    pub fn encode(&self) -> Vec<u8> {
        let mut enc = Encoder::new();
        self.encode_slot(0, 0, &mut enc);
        enc.finish()
    }

    fn encode_slot(&self, slot: usize, rel: usize, enc: &mut Encoder) {
        match self.slots[slot] {
            None => {
                enc.u8(TAG_EMPTY);
                if rel + 1 < PAGE_LEVELS {
                    self.assert_vacant(2 * slot + 1);
                    self.assert_vacant(2 * slot + 2);
                }
            }
            Some(TreeNode::Leaf { key, value }) => {
                enc.u8(TAG_LEAF).fixed(&key.0).fixed(&value.0);
                if rel + 1 < PAGE_LEVELS {
                    self.assert_vacant(2 * slot + 1);
                    self.assert_vacant(2 * slot + 2);
                }
            }
            Some(TreeNode::Internal { left, right }) => {
                enc.u8(TAG_INTERNAL);
                if rel + 1 == PAGE_LEVELS {
                    enc.fixed(&left.0).fixed(&right.0);
                } else {
                    for (child, side) in [(2 * slot + 1, left), (2 * slot + 2, right)] {
                        assert_eq!(
                            self.slots[child].is_none(),
                            side == EMPTY,
                            "invariant: a page's internal node and its child in slot {child} disagree on emptiness"
                        );
                        self.encode_slot(child, rel + 1, enc);
                    }
                }
            }
        }
    }

    fn assert_vacant(&self, slot: usize) {
        assert!(
            self.slots[slot].is_none(),
            "invariant: a page has a node in slot {slot} below an empty position or a leaf"
        );
        if 2 * slot + 2 < PAGE_SLOTS {
            self.assert_vacant(2 * slot + 1);
            self.assert_vacant(2 * slot + 2);
        }
    }

    /// Reads [`Page::encode`] of the page at `key`, refusing any other form: an empty
    /// page, a leaf off the page's path, an internal node with two empty sides, a node
    /// deeper than 256, trailing bytes.
    pub fn decode(key: &PageKey, bytes: &[u8]) -> Result<Page, DecodeError> {
        let mut dec = Decoder::new(bytes);
        let mut page = Page::default();
        let root = NodeKey {
            // At most 256.
            depth: key.root_depth() as u16,
            path: key.path,
        };
        if page.decode_slot(&mut dec, root, 0, 0)? == EMPTY {
            return Err(invalid("a stored page is empty"));
        }
        dec.finish()?;
        Ok(page)
    }

    /// Decodes the subtree at `slot` (position `at`, relative depth `rel`) and returns
    /// its hash.
    fn decode_slot(
        &mut self,
        dec: &mut Decoder<'_>,
        at: NodeKey,
        slot: usize,
        rel: usize,
    ) -> Result<Hash32, DecodeError> {
        let node = match dec.u8("state tree page node")? {
            TAG_EMPTY => return Ok(EMPTY),
            TAG_LEAF => {
                let key = Hash32(dec.array("state tree leaf key")?);
                let value = Hash32(dec.array("state tree leaf value")?);
                if masked(&key, usize::from(at.depth)) != at.path {
                    return Err(invalid("a leaf off the page's path"));
                }
                TreeNode::Leaf { key, value }
            }
            TAG_INTERNAL => {
                if usize::from(at.depth) >= KEY_BITS {
                    return Err(invalid("an internal node at depth 256"));
                }
                let (left, right) = if rel + 1 == PAGE_LEVELS {
                    (
                        Hash32(dec.array("state tree child hash")?),
                        Hash32(dec.array("state tree child hash")?),
                    )
                } else {
                    let left = self.decode_slot(dec, at.child(false), 2 * slot + 1, rel + 1)?;
                    let right = self.decode_slot(dec, at.child(true), 2 * slot + 2, rel + 1)?;
                    (left, right)
                };
                if left == EMPTY && right == EMPTY {
                    return Err(invalid("an internal node with two empty sides"));
                }
                TreeNode::Internal { left, right }
            }
            v => {
                return Err(DecodeError::InvalidTag {
                    what: "state tree page node",
                    value: u64::from(v),
                });
            }
        };
        self.slots[slot] = Some(node);
        Ok(node.hash())
    }
}

fn invalid(reason: &'static str) -> DecodeError {
    DecodeError::Invalid {
        what: "state tree page",
        reason: reason.into(),
    }
}

/// The pages that `writes` (one update's nodes) change, each with its content after the
/// update: the page as stored (`stored`, `None` if there is none) with the written
/// slots replaced. Sorted by page key.
///
/// A binary tree update rewrites every ancestor of a node it writes, so each changed
/// page's root slot is written and a page `stored` does not know is new.
pub fn page_writes<E>(
    writes: &[NodeWrite],
    mut stored: impl FnMut(&[PageKey]) -> Result<Vec<Option<Page>>, E>,
) -> Result<Vec<(PageKey, Page)>, E> {
    let mut by_page: BTreeMap<PageKey, Vec<(usize, TreeNode)>> = BTreeMap::new();
    for w in writes {
        let at = PageKey::of(&w.key);
        by_page.entry(at.page).or_default().push((at.slot, w.node));
    }
    let keys: Vec<PageKey> = by_page.keys().copied().collect();
    let old = stored(&keys)?;
    assert_eq!(
        old.len(),
        keys.len(),
        "invariant: one stored page per key asked"
    );
    Ok(by_page
        .into_iter()
        .zip(old)
        .map(|((key, slots), old)| {
            let mut page = old.unwrap_or_default();
            for (slot, node) in slots {
                page.set(slot, node);
            }
            assert!(
                !page.is_empty(),
                "invariant: an update writes the root slot of every page it changes"
            );
            (key, page)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_positions_agree() {
        let mut path = Hash32::ZERO;
        path.0[0] = 0b1011_0110;
        path.0[1] = 0b0100_0000;
        for depth in 0..=12u16 {
            let key = NodeKey {
                depth,
                path: masked(&path, usize::from(depth)),
            };
            let at = PageKey::of(&key);
            assert_eq!(at.page.level, depth / 4);
            assert_eq!(at.page.node_key(at.slot), key);
        }
        let deepest = NodeKey {
            depth: 256,
            path: Hash32([0xff; 32]),
        };
        let at = PageKey::of(&deepest);
        assert_eq!((at.page.level, at.slot), (MAX_PAGE_LEVEL, 0));
        assert_eq!(at.page.node_key(0), deepest);
    }

    #[test]
    fn page_keys_round_trip_strictly() {
        let key = PageKey::of(&NodeKey {
            depth: 5,
            path: masked(&Hash32([0xab; 32]), 5),
        })
        .page;
        assert_eq!(key.level, 1);
        assert_eq!(PageKey::from_bytes(&key.to_bytes()), Ok(key));
        assert_eq!(
            PageKey::from_bytes(&PageKey::ROOT.to_bytes()),
            Ok(PageKey::ROOT)
        );
        let mut bad = key.to_bytes();
        bad[1] |= 0x01;
        assert!(PageKey::from_bytes(&bad).is_err(), "bit past the level");
        assert!(PageKey::from_bytes(&[65]).is_err());
        assert!(PageKey::from_bytes(&[1]).is_err(), "missing path byte");
        assert!(PageKey::from_bytes(&[]).is_err());
    }
}
