//! The audit indexes: what regulators search and count by, kept beside the chain and
//! outside consensus (no header or state root covers them).
//!
//! Each index is its own column family in [`crate::RocksStore`] (an ordered map in
//! [`crate::MemStore`]) and is written in the same batch as the block whose bills it
//! describes, so an index is never ahead of or behind the blocks. Every entry is a
//! function of one bill's record and its issue ([`bill_entries`]), so the indexes can
//! be rebuilt from the stored bills at any time ([`crate::Store::reindex`],
//! `ebill-node reindex`) and must come out byte for byte the same.
//!
//! Times in keys are the block time of the bill's issue (ms since the epoch), which the
//! validators agreed on; the issuer's own `issued_at` is kept in [`BillFacts`].
//! Integers in keys are big-endian, so key order is time order.

use ebill_ledger::{BillRecord, BillStatus, ChangeSet};
use ebill_types::bill::BillKind;
use ebill_types::codec::{Canonical, DecodeError, Decoder, Encoder};
use ebill_types::{BillId, Block, CreditCode, Fen, Timestamp, TxBody, TxId, TxKind};
use serde::Serialize;

use crate::StoreError;

/// One audit index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Index {
    /// `BillId::key()` -> canonical [`BillFacts`]: what a bill record does not hold.
    Facts,
    /// issuer (18) ‖ issue time ms (u64 BE) ‖ bill key (18) -> empty.
    IssuerTime,
    /// unit (18) ‖ bill key (18) -> empty: every bill a reimbursing unit locked or
    /// confirmed reimbursed.
    Reimburser,
    /// bill kind tag (1) ‖ issue time ms (u64 BE) ‖ bill key (18) -> empty.
    Kind,
    /// status tag (1, [`status_tag`]) ‖ bill key (18) -> empty: the status now.
    Status,
}

impl Index {
    /// Every index, in a fixed order.
    pub const ALL: [Index; 5] = [
        Index::Facts,
        Index::IssuerTime,
        Index::Reimburser,
        Index::Kind,
        Index::Status,
    ];

    /// Its column family.
    pub fn cf_name(self) -> &'static str {
        match self {
            Index::Facts => "idx_bill_facts",
            Index::IssuerTime => "idx_issuer_time",
            Index::Reimburser => "idx_reimburser",
            Index::Kind => "idx_kind",
            Index::Status => "idx_status",
        }
    }

    /// Its position in [`Index::ALL`].
    pub fn position(self) -> usize {
        self as usize
    }
}

/// What the audit needs of a bill beyond its record, taken from its IssueBill
/// transaction when it is committed. Never changes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct BillFacts {
    /// Its kind.
    pub kind: BillKind,
    /// Its total, fen.
    pub total: Fen,
    /// When the issuer says it issued it, with the issuer's offset.
    pub issued_at: Timestamp,
}

/// Layout version of [`BillFacts`] values.
const FACTS_VERSION: u8 = 1;

impl Canonical for BillFacts {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.u8(FACTS_VERSION);
        self.kind.encode_to(enc);
        enc.u64(self.total.0);
        self.issued_at.encode_to(enc);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let v = dec.u8("bill facts version")?;
        if v != FACTS_VERSION {
            return Err(DecodeError::InvalidTag {
                what: "bill facts version",
                value: u64::from(v),
            });
        }
        Ok(Self {
            kind: BillKind::decode_from(dec)?,
            total: Fen(dec.u64("total")?),
            issued_at: Timestamp::decode_from(dec)?,
        })
    }
}

impl BillFacts {
    /// The facts of a bill body.
    pub fn of(bill: &ebill_types::Bill) -> Self {
        Self {
            kind: bill.kind,
            total: bill.total,
            issued_at: bill.issued_at,
        }
    }
}

/// One write to an index: a put, or a delete when `value` is `None`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IndexOp {
    /// Which index.
    pub index: Index,
    /// The key.
    pub key: Vec<u8>,
    /// The value; `None` deletes the key.
    pub value: Option<Vec<u8>>,
}

impl IndexOp {
    fn put(index: Index, key: Vec<u8>, value: Vec<u8>) -> Self {
        Self {
            index,
            key,
            value: Some(value),
        }
    }
    fn delete(index: Index, key: Vec<u8>) -> Self {
        Self {
            index,
            key,
            value: None,
        }
    }
}

/// Every status, in tag order ([`status_tag`]).
pub const STATUS_NAMES: [&str; 5] = [
    "issued",
    "locked",
    "reimbursed",
    "reversed",
    "paper_exchanged",
];

/// The index tag of a status (1 issued, 2 locked, 3 reimbursed, 4 reversed, 5 paper
/// exchanged): the first byte of its canonical encoding.
pub fn status_tag(s: &BillStatus) -> u8 {
    match s {
        BillStatus::Issued => 1,
        BillStatus::Locked { .. } => 2,
        BillStatus::Reimbursed { .. } => 3,
        BillStatus::Reversed { .. } => 4,
        BillStatus::PaperExchanged { .. } => 5,
    }
}

/// The tag of a status named as the API names it ([`BillStatus::as_str`]).
pub fn status_tag_of_name(name: &str) -> Option<u8> {
    STATUS_NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// Key of [`Index::IssuerTime`].
pub fn issuer_time_key(issuer: &CreditCode, time_ms: u64, bill: &BillId) -> Vec<u8> {
    let mut k = Vec::with_capacity(44);
    k.extend_from_slice(issuer.as_bytes());
    k.extend_from_slice(&time_ms.to_be_bytes());
    k.extend_from_slice(&bill.key());
    k
}

/// Key of [`Index::Kind`].
pub fn kind_key(kind: BillKind, time_ms: u64, bill: &BillId) -> Vec<u8> {
    let mut k = Vec::with_capacity(27);
    k.push(kind.tag());
    k.extend_from_slice(&time_ms.to_be_bytes());
    k.extend_from_slice(&bill.key());
    k
}

/// Key of [`Index::Reimburser`].
pub fn reimburser_key(unit: &CreditCode, bill: &BillId) -> Vec<u8> {
    let mut k = Vec::with_capacity(36);
    k.extend_from_slice(unit.as_bytes());
    k.extend_from_slice(&bill.key());
    k
}

/// Key of [`Index::Status`].
pub fn status_key(tag: u8, bill: &BillId) -> Vec<u8> {
    let mut k = Vec::with_capacity(19);
    k.push(tag);
    k.extend_from_slice(&bill.key());
    k
}

/// The bill id in the last 18 bytes of an index key.
pub fn bill_of_key(key: &[u8]) -> Result<BillId, StoreError> {
    let start = key
        .len()
        .checked_sub(18)
        .ok_or_else(|| StoreError::Corrupt {
            what: "audit index key".to_owned(),
            reason: format!("{} bytes, shorter than a bill key", key.len()),
        })?;
    BillId::from_canonical_bytes(&key[start..]).map_err(|e| StoreError::Corrupt {
        what: "audit index key".to_owned(),
        reason: e.to_string(),
    })
}

/// Block time of a record's issue.
fn issue_time_ms(record: &BillRecord) -> u64 {
    record.history.first().map(|h| h.time_ms).unwrap_or(0)
}

/// The units that locked or confirmed the bill reimbursed in `entries`.
fn reimbursers<'a>(
    entries: impl Iterator<Item = &'a ebill_ledger::HistoryEntry>,
) -> impl Iterator<Item = CreditCode> {
    entries
        .filter(|h| matches!(h.action, TxKind::Lock | TxKind::ConfirmReimbursed))
        .map(|h| h.by)
}

/// Every index entry of one bill (puts only): what [`crate::Store::reindex`] writes,
/// and what a commit leaves.
pub fn bill_entries(record: &BillRecord, facts: &BillFacts) -> Vec<IndexOp> {
    let id = &record.id;
    let t = issue_time_ms(record);
    let mut ops = vec![
        IndexOp::put(Index::Facts, id.key().to_vec(), facts.to_canonical_bytes()),
        IndexOp::put(
            Index::IssuerTime,
            issuer_time_key(&record.issuer, t, id),
            Vec::new(),
        ),
        IndexOp::put(Index::Kind, kind_key(facts.kind, t, id), Vec::new()),
        IndexOp::put(
            Index::Status,
            status_key(status_tag(&record.status), id),
            Vec::new(),
        ),
    ];
    for unit in reimbursers(record.history.iter()) {
        ops.push(IndexOp::put(
            Index::Reimburser,
            reimburser_key(&unit, id),
            Vec::new(),
        ));
    }
    ops
}

/// The index writes of a committed block: every entry of the bills it issues, and for
/// the bills it changes the new status (the other status keys deleted) and the units
/// that locked or reimbursed them in this block.
pub fn block_ops(block: &Block, changes: &ChangeSet) -> Result<Vec<IndexOp>, StoreError> {
    let height = block.header.height;
    let issued: std::collections::HashMap<TxId, BillFacts> = block
        .txs
        .iter()
        .zip(&changes.txs)
        .filter_map(|(tx, id)| match &tx.tx.body {
            TxBody::IssueBill(bill) => Some((*id, BillFacts::of(bill))),
            _ => None,
        })
        .collect();
    let mut ops = Vec::with_capacity(changes.bills.len() * 5);
    for (id, record) in &changes.bills {
        if record.issue_height() == height {
            let facts = issued.get(&record.issue_tx()).ok_or_else(|| {
                StoreError::Inconsistent(format!(
                    "bill {id} is issued at height {height} by {}, which is not in the block",
                    record.issue_tx()
                ))
            })?;
            ops.extend(bill_entries(record, facts));
            continue;
        }
        let now = status_tag(&record.status);
        for tag in 1..=5u8 {
            if tag != now {
                ops.push(IndexOp::delete(Index::Status, status_key(tag, id)));
            }
        }
        ops.push(IndexOp::put(Index::Status, status_key(now, id), Vec::new()));
        let this_block = record.history.iter().filter(|h| h.height == height);
        for unit in reimbursers(this_block) {
            ops.push(IndexOp::put(
                Index::Reimburser,
                reimburser_key(&unit, id),
                Vec::new(),
            ));
        }
    }
    Ok(ops)
}

/// Most entries the refused-transaction log keeps; older ones are dropped as new ones
/// come.
pub const MAX_REFUSED_LOG: u64 = 100_000;

/// Longest message kept in a [`RefusedTx`], bytes.
pub const MAX_REFUSED_MESSAGE_BYTES: usize = 256;

/// A transaction this node refused (its ledger rules said no), kept in a bounded,
/// persistent log for the audit's rules; node-local, outside consensus.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct RefusedTx {
    /// Wall-clock time of the refusal, ms since the epoch.
    pub time_ms: u64,
    /// The transaction.
    pub tx_id: TxId,
    /// Its kind.
    pub kind: TxKind,
    /// The bill it concerns, if any.
    pub bill: Option<BillId>,
    /// The unit that signed it, if one did.
    pub unit: Option<CreditCode>,
    /// The stable rejection code.
    pub code: String,
    /// The rejection message, cut to [`MAX_REFUSED_MESSAGE_BYTES`].
    pub message: String,
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn truncate_to(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl Canonical for RefusedTx {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.u64(self.time_ms);
        self.tx_id.encode_to(enc);
        enc.u8(self.kind.tag());
        enc.option(self.bill.as_ref(), |e, b| b.encode_to(e));
        enc.option(self.unit.as_ref(), |e, u| u.encode_to(e));
        enc.str(&self.code);
        enc.str(&self.message);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let time_ms = dec.u64("time")?;
        let tx_id = ebill_types::Hash32::decode_from(dec)?;
        let tag = dec.u8("kind")?;
        let kind = TxKind::ALL.iter().copied().find(|k| k.tag() == tag).ok_or(
            DecodeError::InvalidTag {
                what: "kind",
                value: u64::from(tag),
            },
        )?;
        Ok(Self {
            time_ms,
            tx_id,
            kind,
            bill: dec.option("bill", BillId::decode_from)?,
            unit: dec.option("unit", CreditCode::decode_from)?,
            code: dec.str("code", 64)?.to_owned(),
            message: dec.str("message", MAX_REFUSED_MESSAGE_BYTES)?.to_owned(),
        })
    }
}

/// A visitor of index entries in key order: returns `Ok(false)` to stop.
pub type EntryVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, StoreError> + 'a;

/// A run of bill keys ([`BillId::key`](ebill_types::BillId::key)) a scan visits:
/// from `from` (inclusive; empty: the first bill) to `until` (exclusive; `None`: past
/// the last bill).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BillKeys<'k> {
    /// The first key visited, if a bill has it.
    pub from: &'k [u8],
    /// The first key not visited.
    pub until: Option<&'k [u8]>,
}

impl<'k> BillKeys<'k> {
    /// Every bill.
    pub const ALL: BillKeys<'static> = BillKeys {
        from: &[],
        until: None,
    };

    /// Whether `key`, at or above `from`, is still inside the run.
    pub fn holds(&self, key: &[u8]) -> bool {
        self.until.is_none_or(|u| key < u)
    }

    /// The runs that `splits` (strictly increasing keys, [`Store::bill_splits`]) cut every
    /// bill into, in key order.
    ///
    /// [`Store::bill_splits`]: crate::Store::bill_splits
    pub fn runs(splits: &'k [Vec<u8>]) -> Vec<BillKeys<'k>> {
        let mut from: &[u8] = &[];
        let mut out = Vec::with_capacity(splits.len() + 1);
        for s in splits {
            out.push(BillKeys {
                from,
                until: Some(s.as_slice()),
            });
            from = s.as_slice();
        }
        out.push(BillKeys { from, until: None });
        out
    }
}

/// Keys in order from a first key on, and how many entries they hold: a table file of
/// a column family, or one key of the memory store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct KeyRun {
    /// The run's first key.
    pub first_key: Vec<u8>,
    /// Entries from it on, up to the next run.
    pub entries: u64,
}

/// Up to `parts - 1` first keys of `runs` (sorted by first key) that cut them into
/// parts of about equal entries: the first key of each run at which the entries before
/// it reach the next part's share.
pub(crate) fn even_splits(runs: &[KeyRun], parts: usize) -> Vec<Vec<u8>> {
    let total: u128 = runs.iter().map(|r| u128::from(r.entries)).sum();
    let parts = u128::try_from(parts).unwrap_or(u128::MAX);
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut before: u128 = 0;
    for run in runs {
        let next = u128::try_from(out.len()).unwrap_or(u128::MAX) + 1;
        if next >= parts {
            break;
        }
        let share = total * next / parts;
        let after_last = out.last().is_none_or(|last| *last < run.first_key);
        if before > 0 && before >= share && after_last && !run.first_key.is_empty() {
            out.push(run.first_key.clone());
        }
        before += u128::from(run.entries);
    }
    out
}

/// A visitor of bills with their facts in bill-key order: returns `Ok(false)` to stop.
pub type BillVisitor<'a> = dyn FnMut(&BillRecord, &BillFacts) -> Result<bool, StoreError> + 'a;

/// A [`BillVisitor`] that may run on another thread.
pub type SendBillVisitor<'a> =
    dyn FnMut(&BillRecord, &BillFacts) -> Result<bool, StoreError> + Send + 'a;

/// One run of a scan on several threads ([`Store::scan_bill_runs`]): its keys, and the
/// visitor of its bills, which runs on a thread of its own.
///
/// [`Store::scan_bill_runs`]: crate::Store::scan_bill_runs
pub struct BillRun<'a> {
    /// The bills it visits.
    pub keys: BillKeys<'a>,
    /// Their visitor.
    pub visit: Box<SendBillVisitor<'a>>,
}

/// Decodes a facts value read from the store.
pub(crate) fn decode_facts(key: &[u8], v: &[u8]) -> Result<BillFacts, StoreError> {
    BillFacts::from_canonical_bytes(v).map_err(|e| StoreError::Corrupt {
        what: format!("idx_bill_facts/{}", String::from_utf8_lossy(key)),
        reason: e.to_string(),
    })
}

/// The facts of a stored bill from its IssueBill transaction, for a rebuild.
pub(crate) fn facts_from_issue(
    record: &BillRecord,
    issue: Option<(ebill_types::SignedTx, ebill_ledger::TxLocation)>,
) -> Result<BillFacts, StoreError> {
    match issue.as_ref().map(|(tx, _)| &tx.tx.body) {
        Some(TxBody::IssueBill(bill)) if bill.id() == record.id => Ok(BillFacts::of(bill)),
        _ => Err(StoreError::Corrupt {
            what: format!("bills/{}", record.id),
            reason: format!(
                "its issue transaction {} is not a stored IssueBill of this bill",
                record.issue_tx()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn runs(entries: &[u64]) -> Vec<KeyRun> {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| KeyRun {
                first_key: vec![u8::try_from(i).unwrap() + 1],
                entries: *e,
            })
            .collect()
    }

    #[test]
    fn even_splits_cut_at_run_starts_near_equal_shares() {
        // 10 runs of 10: two parts cut at the sixth run's start, four at 3, 6 and 8.
        assert_eq!(even_splits(&runs(&[10; 10]), 2), vec![vec![6]]);
        assert_eq!(
            even_splits(&runs(&[10; 10]), 4),
            vec![vec![4], vec![6], vec![9]]
        );
        // One big run cannot be cut; nor can anything into one part.
        assert!(even_splits(&runs(&[100]), 4).is_empty());
        assert!(even_splits(&runs(&[10; 10]), 1).is_empty());
        assert!(even_splits(&runs(&[10; 10]), 0).is_empty());
        assert!(even_splits(&[], 4).is_empty());
        // A run that holds several shares gives one cut after it, not several at one key.
        assert_eq!(even_splits(&runs(&[1, 100, 1]), 4), vec![vec![3]]);
        // Never more than parts - 1 keys, each above the one before.
        for parts in 2..12 {
            let s = even_splits(&runs(&[3, 0, 7, 1, 1, 9, 2, 2, 5, 4]), parts);
            assert!(s.len() < parts);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn runs_of_splits_cover_the_key_space_once() {
        let splits = vec![vec![5], vec![9]];
        let r = BillKeys::runs(&splits);
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0],
            BillKeys {
                from: &[],
                until: Some(&[5][..])
            }
        );
        assert_eq!(
            r[1],
            BillKeys {
                from: &[5],
                until: Some(&[9][..])
            }
        );
        assert_eq!(
            r[2],
            BillKeys {
                from: &[9],
                until: None
            }
        );
        assert!(r[0].holds(&[4, 255]) && !r[0].holds(&[5]));
        assert_eq!(BillKeys::runs(&[]), vec![BillKeys::ALL]);
    }
}
