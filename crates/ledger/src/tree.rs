//! The ledger state as leaves of the state tree (`ebill_types::state_tree`): each bill's
//! [`BillState`] (status now, and a digest chaining its whole history), each unit's
//! registry record, the governance record (sequence, regulators, threshold) and each
//! proposal. A block's [`ChangeSet`] becomes one sorted
//! batch of leaf updates, applied to the tree in the same commit as the block.

use ebill_types::Hash32;
use ebill_types::codec::Canonical;
use ebill_types::state_tree::{BillState, HistoryStep, LeafUpdate, StateKey, history_digest};

use crate::state::{BillRecord, ChangeSet};

/// A bill's leaf in the state tree, from its record.
pub fn bill_state(record: &BillRecord) -> BillState {
    let first = record.history.first();
    let last = record.history.last();
    let history_digest = history_digest(record.history.iter().map(|h| HistoryStep {
        action: h.action,
        by: h.by,
        height: h.height,
        time_ms: h.time_ms,
        tx_id: h.tx_id,
    }));
    // The ledger refuses a change past the history limit (`history_full`), so a longer
    // history is a bug; clamping its length would put a wrong leaf in the tree.
    assert!(
        record.history.len() <= ebill_types::limits::MAX_BILL_HISTORY + 1,
        "invariant: a bill history of {} entries",
        record.history.len()
    );
    BillState {
        status: record.status,
        history_len: u32::try_from(record.history.len()).unwrap_or(u32::MAX),
        issue_tx: first.map_or(Hash32::ZERO, |h| h.tx_id),
        last_tx: last.map_or(Hash32::ZERO, |h| h.tx_id),
        last_height: last.map_or(0, |h| h.height),
        history_digest,
    }
}

/// The leaf updates of a change set, sorted by key hash (each key once).
pub fn state_updates(changes: &ChangeSet) -> Vec<LeafUpdate> {
    let mut out = Vec::with_capacity(changes.bills.len() + changes.units.len() + 1);
    for (id, record) in &changes.bills {
        let key = StateKey::Bill(*id);
        out.push(LeafUpdate {
            key: key.hash(),
            value: key.value_hash(&bill_state(record).to_canonical_bytes()),
        });
    }
    for (code, record) in &changes.units {
        let key = StateKey::Unit(*code);
        out.push(LeafUpdate {
            key: key.hash(),
            value: key.value_hash(&record.to_canonical_bytes()),
        });
    }
    if let Some(g) = &changes.governance {
        let key = StateKey::Regulators;
        out.push(LeafUpdate {
            key: key.hash(),
            value: key.value_hash(&g.to_canonical_bytes()),
        });
    }
    for (id, record) in &changes.proposals {
        let key = StateKey::Proposal(*id);
        out.push(LeafUpdate {
            key: key.hash(),
            value: key.value_hash(&record.to_canonical_bytes()),
        });
    }
    out.sort_unstable_by_key(|u| u.key);
    // Distinct ids and codes hash to distinct keys unless SHA-256 collides.
    assert!(
        out.windows(2).all(|w| w[0].key != w[1].key),
        "two state keys hash alike"
    );
    out
}
