//! A bounded in-memory cache of committed state tree pages
//! ([`ebill_types::state_page`]), so that the upper levels of the tree, which every
//! block touches, are not read from disk again and again, and so that a block's commit
//! finds the pages its update just read.
//!
//! It only ever holds what is on disk: pages enter it from a read of the committed
//! store, or from [`PageCache::committed`] after the write of a commit returned. A
//! crash loses it, and nothing more. A read that raced with a commit does not enter it
//! (each commit bumps a generation; a read fills the cache only if the generation it
//! saw before reading is still current).
//!
//! Eviction is by two generations (a cheap approximation of LRU): new and re-used pages
//! go to `hot`; when `hot` is full it becomes `cold` and the old `cold` is dropped; a
//! page found in `cold` moves back to `hot`. At most `max_pages` pages are held.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use ebill_types::state_page::{Page, PageKey, PageSlot};
use ebill_types::state_tree::TreeNode;

/// Pages of the state tree a [`crate::RocksStore`] keeps in memory by default: the four
/// upper page levels of a tree (binary depths 0–15, 69,905 pages when full) fit, at
/// about 1 KiB a page, in under 70 MiB.
pub const TREE_CACHE_PAGES: usize = 65_536;

pub(crate) struct PageCache {
    inner: Mutex<Inner>,
}

/// A page shared between the cache and a commit in progress (pages are ~1 KiB: moving
/// pointers, not pages, keeps the cache's maps cheap to grow and to rotate).
pub(crate) type SharedPage = Arc<Page>;

/// A fast hash of page keys (FxHash's multiply-rotate over 8-byte words): the keys are
/// positions in a tree of SHA-256 paths, not chosen by anyone, so no flooding
/// resistance is needed, and every tree read looks one up.
#[derive(Default)]
struct PageKeyHasher(u64);

impl Hasher for PageKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type PageMap = HashMap<PageKey, SharedPage, BuildHasherDefault<PageKeyHasher>>;

struct Inner {
    generation: u64,
    hot: PageMap,
    cold: PageMap,
    /// Pages per generation: half the bound.
    per_generation: usize,
}

impl Inner {
    fn find(&mut self, key: &PageKey) -> Option<&SharedPage> {
        if !self.hot.contains_key(key) {
            let page = self.cold.remove(key)?;
            self.insert(*key, page);
        }
        self.hot.get(key)
    }

    fn insert(&mut self, key: PageKey, page: SharedPage) {
        if self.per_generation == 0 {
            return;
        }
        if self.hot.len() >= self.per_generation && !self.hot.contains_key(&key) {
            self.cold = std::mem::take(&mut self.hot);
        }
        self.cold.remove(&key);
        self.hot.insert(key, page);
    }
}

/// What a lookup found: the nodes of the slots whose page is cached, and the
/// generation to fill the rest with.
pub(crate) struct Lookup {
    /// Per slot asked: `Some(node or none)` if its page is cached, `None` if not.
    pub nodes: Vec<Option<Option<TreeNode>>>,
    /// The generation before any disk read that follows.
    pub generation: u64,
}

impl PageCache {
    pub fn new(max_pages: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                generation: 0,
                hot: PageMap::default(),
                cold: PageMap::default(),
                per_generation: max_pages / 2,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the maps consistent (inserts and removes of
        // whole entries), so a poisoned lock is still a usable cache.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nodes of `slots` whose pages are cached.
    pub fn nodes(&self, slots: &[PageSlot]) -> Lookup {
        let mut inner = self.lock();
        let nodes = slots
            .iter()
            .map(|s| inner.find(&s.page).map(|p| p.get(s.slot)))
            .collect();
        Lookup {
            nodes,
            generation: inner.generation,
        }
    }

    /// The cached pages of `keys`, and the generation to fill the rest with.
    pub fn pages(&self, keys: &[PageKey]) -> (Vec<Option<SharedPage>>, u64) {
        let mut inner = self.lock();
        let pages = keys.iter().map(|k| inner.find(k).cloned()).collect();
        (pages, inner.generation)
    }

    /// Adds pages read from the committed store, if no commit happened since
    /// `generation` was taken (else they may be older than the disk).
    pub fn fill(&self, generation: u64, pages: impl IntoIterator<Item = (PageKey, SharedPage)>) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        for (key, page) in pages {
            inner.insert(key, page);
        }
    }

    /// Records the pages a commit wrote, once its write has returned.
    pub fn committed(&self, pages: &[(PageKey, SharedPage)]) {
        let mut inner = self.lock();
        inner.generation += 1;
        for (key, page) in pages {
            inner.insert(*key, Arc::clone(page));
        }
    }

    /// Pages held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        let inner = self.lock();
        inner.hot.len() + inner.cold.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebill_types::Hash32;

    fn page(n: u8) -> (PageKey, SharedPage) {
        let mut path = Hash32::ZERO;
        path.0[0] = n & 0xf0;
        path.0[1] = n << 4;
        let key = PageKey { level: 3, path };
        let mut page = Page::default();
        page.set(
            0,
            TreeNode::Leaf {
                key: Hash32([n; 32]),
                value: Hash32([n; 32]),
            },
        );
        (key, Arc::new(page))
    }

    #[test]
    fn holds_at_most_its_bound_and_keeps_what_is_used() {
        let cache = PageCache::new(8);
        cache.committed(&[page(0)]);
        for n in 1..40 {
            cache.committed(&[page(n)]);
            // Page 0 is used after every commit: it must survive them all.
            let (found, _) = cache.pages(&[page(0).0]);
            assert_eq!(found[0], Some(page(0).1), "after page {n}");
            assert!(cache.len() <= 8);
        }
        let (found, _) = cache.pages(&[page(1).0]);
        assert_eq!(found[0], None, "an old page unused is evicted");
    }

    #[test]
    fn a_fill_from_before_a_commit_is_dropped() {
        let cache = PageCache::new(8);
        let slot = PageSlot {
            page: page(5).0,
            slot: 0,
        };
        let before = cache.nodes(&[slot]);
        assert_eq!(before.nodes, vec![None]);
        let (key, newer) = page(5);
        let mut newer = *newer;
        newer.set(
            0,
            TreeNode::Leaf {
                key: Hash32([5; 32]),
                value: Hash32([9; 32]),
            },
        );
        let newer = Arc::new(newer);
        cache.committed(&[(key, Arc::clone(&newer))]);
        // A read that started before the commit comes back with the old page.
        cache.fill(before.generation, [page(5)]);
        let (found, _) = cache.pages(&[key]);
        assert_eq!(found[0], Some(newer));
    }

    #[test]
    fn a_cache_of_size_zero_holds_nothing() {
        let cache = PageCache::new(0);
        cache.committed(&[page(1)]);
        assert_eq!(cache.len(), 0);
    }
}
