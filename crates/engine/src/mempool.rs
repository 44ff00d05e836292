//! The mempool: admitted transactions waiting for a block, in arrival order, bounded in
//! count and bytes, de-duplicated by transaction id.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ebill_ledger::VerifiedSignatures;
use ebill_types::{PublicKey, Signature, SignedTx, TxId};

/// Locks a mutex; a poisoned one means another thread panicked while holding it, and
/// its data is still the best there is (every critical section on the mempool is short
/// and keeps its invariants between statements).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A waiting transaction offered to the block builder.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its id.
    pub id: TxId,
    /// The transaction.
    pub tx: Arc<SignedTx>,
}

/// The oldest waiting transactions, with the signatures verified at their admission.
#[derive(Debug, Default)]
pub struct Candidates {
    /// In arrival order.
    pub txs: Vec<Candidate>,
    /// Signatures verified at admission.
    pub verified: VerifiedSignatures,
}

/// What [`Mempool::verified_for`] finds.
#[derive(Debug, Default)]
pub struct KnownSignatures {
    /// Signatures verified at admission, of the transactions that wait here.
    pub verified: VerifiedSignatures,
    /// Positions (in the ids asked for) of the transactions that do not wait here, or
    /// wait without verified signatures.
    pub unseen: Vec<usize>,
}

/// One waiting transaction.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The transaction.
    pub tx: Arc<SignedTx>,
    /// Its canonical size in bytes.
    pub len_bytes: usize,
    /// Signatures verified at admission: (key, signature).
    pub verified: Vec<(PublicKey, Signature)>,
    seq: u64,
}

/// The result of an insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// Added.
    Added,
    /// Already waiting: nothing changed.
    AlreadyPending,
    /// The mempool is full (count or bytes); nothing changed.
    Full,
}

/// Admitted transactions in arrival order.
#[derive(Debug)]
pub struct Mempool {
    max_txs: usize,
    max_bytes: usize,
    bytes: usize,
    next_seq: u64,
    order: BTreeMap<u64, TxId>,
    entries: HashMap<TxId, Entry>,
}

impl Mempool {
    /// An empty mempool holding at most `max_txs` transactions and `max_bytes` bytes.
    pub fn new(max_txs: usize, max_bytes: usize) -> Self {
        Self {
            max_txs,
            max_bytes,
            bytes: 0,
            next_seq: 0,
            order: BTreeMap::new(),
            entries: HashMap::new(),
        }
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `id` waits here.
    pub fn contains(&self, id: &TxId) -> bool {
        self.entries.contains_key(id)
    }

    /// Room for `count` more transactions of `bytes` bytes in all.
    pub fn has_room(&self, count: usize, bytes: usize) -> bool {
        self.entries.len() + count <= self.max_txs && self.bytes + bytes <= self.max_bytes
    }

    /// Adds a transaction at the back.
    pub fn insert(
        &mut self,
        id: TxId,
        tx: Arc<SignedTx>,
        len_bytes: usize,
        verified: Vec<(PublicKey, Signature)>,
    ) -> Insert {
        if self.entries.contains_key(&id) {
            return Insert::AlreadyPending;
        }
        if !self.has_room(1, len_bytes) {
            return Insert::Full;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, id);
        self.bytes += len_bytes;
        self.entries.insert(
            id,
            Entry {
                tx,
                len_bytes,
                verified,
                seq,
            },
        );
        Insert::Added
    }

    /// Removes transactions (committed or dropped); unknown ids are ignored.
    pub fn remove(&mut self, ids: &[TxId]) {
        for id in ids {
            if let Some(e) = self.entries.remove(id) {
                self.order.remove(&e.seq);
                assert!(
                    self.bytes >= e.len_bytes,
                    "mempool byte count below an entry"
                );
                self.bytes -= e.len_bytes;
            }
        }
        assert_eq!(
            self.order.len(),
            self.entries.len(),
            "mempool order and entries disagree"
        );
    }

    /// Signatures verified at admission for those of `ids` that wait here, and the
    /// positions (in `ids`) of those that do not.
    pub fn verified_for(&self, ids: &[TxId]) -> KnownSignatures {
        let mut verified = VerifiedSignatures::default();
        let mut unseen = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match self.entries.get(id) {
                Some(e) if !e.verified.is_empty() => {
                    for (key, sig) in &e.verified {
                        verified.insert(*id, *key, *sig);
                    }
                }
                _ => unseen.push(i),
            }
        }
        KnownSignatures { verified, unseen }
    }

    /// The oldest transactions, up to `max_txs` of them and `max_bytes` in all, with the
    /// signatures verified at their admission.
    pub fn candidates(&self, max_txs: usize, max_bytes: usize) -> Candidates {
        let mut out = Vec::new();
        let mut verified = VerifiedSignatures::default();
        let mut bytes = 0;
        for id in self.order.values() {
            if out.len() >= max_txs {
                break;
            }
            let Some(e) = self.entries.get(id) else {
                continue;
            };
            if bytes + e.len_bytes > max_bytes {
                break;
            }
            bytes += e.len_bytes;
            for (key, sig) in &e.verified {
                verified.insert(*id, *key, *sig);
            }
            out.push(Candidate {
                id: *id,
                tx: Arc::clone(&e.tx),
            });
        }
        Candidates { txs: out, verified }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebill_types::dev;

    fn tx(n: u64) -> (TxId, Arc<SignedTx>) {
        let stx = ebill_types::Tx {
            nonce: 0,
            body: ebill_types::TxBody::IssueBill(dev::sample_bill(n, 100, 0)),
        }
        .sign_unit("t", &dev::dev_issuer_key());
        (stx.tx.id("t"), Arc::new(stx))
    }

    #[test]
    fn bounded_deduplicated_and_in_order() {
        let mut m = Mempool::new(2, 10_000);
        let (a, ta) = tx(1);
        let (b, tb) = tx(2);
        let (c, tc) = tx(3);
        assert_eq!(m.insert(a, ta.clone(), 100, vec![]), Insert::Added);
        assert_eq!(m.insert(a, ta, 100, vec![]), Insert::AlreadyPending);
        assert_eq!(m.insert(b, tb, 100, vec![]), Insert::Added);
        assert_eq!(m.insert(c, tc.clone(), 100, vec![]), Insert::Full);
        let ids: Vec<TxId> = m.candidates(10, 10_000).txs.iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![a, b]);
        m.remove(&[a]);
        assert_eq!(m.insert(c, tc, 100, vec![]), Insert::Added);
        let ids: Vec<TxId> = m.candidates(10, 150).txs.iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![b]);
        assert_eq!(m.len(), 2);
        assert_eq!(m.bytes(), 200);
    }
}
