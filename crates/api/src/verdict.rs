//! The verdict on a bill (docs/design.md §9.3): what the public learns from the code,
//! number and check code of a bill, and what `POST /v1/verify` answers for an authentic
//! bill file.
//!
//! A wrong check code and an unknown bill are one and the same answer
//! ([`ApiError::bill_not_found`]) after the same work ([`find_bill`], [`Decoys`]): the
//! same store reads, one record decoded, the check code compared in constant time, so
//! that neither the body nor the time taken tells them apart.

use std::sync::{Mutex, MutexGuard};

pub use ebill_api_types::{HistoryView, IssuerView, Verdict};
use ebill_ledger::{BillRecord, TxLocation};
use ebill_store::Store;
use ebill_types::{
    Bill, BillCode, BillId, BillNumber, CheckCode, CreditCode, Genesis, Hash32, SignedTx,
    Timestamp, TxBody, TxId,
};
use serde::Serialize;

use crate::error::ApiError;

/// A bill found on chain with its issuing transaction and where it was committed.
#[derive(Clone, Debug)]
pub struct OnChainBill {
    /// The ledger's record: status and history.
    pub record: BillRecord,
    /// The IssueBill transaction as committed.
    pub issue_tx: SignedTx,
    /// The bill in it.
    pub bill: Bill,
    /// Where the IssueBill transaction is.
    pub location: TxLocation,
    /// Hash of the block that holds it.
    pub block_hash: Hash32,
}

fn storage(e: ebill_store::StoreError) -> ApiError {
    ApiError::internal("reading the store", &e)
}

/// The bill ids that [`find_bill`] reads besides the one asked for, so that a lookup
/// of a bill on chain and one of a bill not on chain do the same work.
///
/// A store answers a key it holds more slowly than one it does not (a bloom filter
/// dismisses most absent keys; a present one is read and its record decoded), which
/// told, over a few hundred requests, whether a wrong check code was for a real bill.
/// So every lookup reads two keys, one present and one absent, and decodes one record:
/// the bill asked for and, if it is on chain, the last id found absent; if it is not,
/// the last bill found. Both paths copy the slots, and write one back, under the same
/// lock. The ids in the slots come from earlier requests and are never answered.
#[derive(Debug)]
pub struct Decoys {
    ids: Mutex<DecoyIds>,
    /// Read (and missed) until a request has named an absent id: a valid id that no
    /// issuer holds unless a genesis grants the prefix `00`.
    fallback_absent: Option<BillId>,
    /// Compared against until a request has named a bill on chain.
    dummy_code: CheckCode,
}

#[derive(Clone, Copy, Debug, Default)]
struct DecoyIds {
    found: Option<BillId>,
    missed: Option<BillId>,
}

impl Default for Decoys {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoys {
    /// Empty slots.
    pub fn new() -> Self {
        let fallback_absent = match (BillCode::parse("00000000"), BillNumber::parse("0000000000")) {
            (Ok(code), Ok(number)) => Some(BillId { code, number }),
            _ => None,
        };
        Self {
            ids: Mutex::new(DecoyIds::default()),
            fallback_absent,
            dummy_code: CheckCode::derive(&ebill_types::Signature([0; 64])),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DecoyIds> {
        // Two ids copied in and out: a panic cannot leave them half written.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Finds a bill by id, only if `check_code` is its check code. `None` for an unknown
/// bill and for a wrong check code alike, after the same work (see [`Decoys`]): two
/// store reads, one hit and one miss, one record decoded, one constant-time comparison
/// of check codes.
pub fn find_bill(
    store: &dyn Store,
    decoys: &Decoys,
    id: &BillId,
    check_code: &CheckCode,
) -> Result<Option<OnChainBill>, ApiError> {
    // Copied out and written back after the reads: concurrent lookups do not wait on
    // each other's store reads.
    let slots = *decoys.lock();
    let asked = store.find_bill(id).map_err(storage)?;
    let on_chain = asked.is_some();
    let other_id = if on_chain {
        slots.missed.or(decoys.fallback_absent)
    } else {
        slots.found.or(decoys.fallback_absent)
    };
    let other = match other_id {
        Some(other_id) => store.find_bill(&other_id).map_err(storage)?,
        None => None,
    };
    {
        let mut slots = decoys.lock();
        if on_chain {
            slots.found = Some(*id);
        } else {
            slots.missed = Some(*id);
        }
    }
    // The record compared against: the bill's own, or the decoy's, or none (before any
    // bill was asked for); `matches` holds only for the bill's own.
    let (record, decoy) = if on_chain {
        (asked, other)
    } else {
        (other, asked)
    };
    drop(decoy);
    let expected = record.as_ref().map_or(decoys.dummy_code, |r| r.check_code);
    let matches = expected.ct_eq(check_code) & on_chain;
    let Some(record) = record.filter(|_| matches) else {
        return Ok(None);
    };
    let tx_id = record.issue_tx();
    let Some((issue_tx, location)) = store.tx(&tx_id).map_err(storage)? else {
        return Err(ApiError::internal(
            "bill record without its IssueBill transaction",
            &format!("bill {id}, tx {tx_id}"),
        ));
    };
    let TxBody::IssueBill(bill) = &issue_tx.tx.body else {
        return Err(ApiError::internal(
            "bill record points at a transaction that is not an IssueBill",
            &format!("bill {id}, tx {tx_id}"),
        ));
    };
    let bill = bill.clone();
    let Some(header) = store.header(location.height).map_err(storage)? else {
        return Err(ApiError::internal(
            "committed transaction without its block header",
            &format!("tx {tx_id} at height {}", location.height),
        ));
    };
    Ok(Some(OnChainBill {
        record,
        issue_tx,
        bill,
        location,
        block_hash: header.hash(),
    }))
}

/// The registered name of `code`: from the store's registry, else the genesis, else empty.
fn unit_name(store: &dyn Store, genesis: &Genesis, code: &CreditCode) -> Result<String, ApiError> {
    if let Some(u) = store.find_unit(code).map_err(storage)? {
        return Ok(u.name);
    }
    Ok(genesis
        .issuers
        .iter()
        .find(|u| u.credit_code == *code)
        .map(|u| u.name.clone())
        .unwrap_or_default())
}

/// Milliseconds since the epoch as a UTC timestamp (saturating; the serialiser refuses
/// what RFC 3339 cannot show).
fn utc(ms: u64) -> Timestamp {
    Timestamp::from_unix_ms(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The verdict on a bill found by [`find_bill`].
pub fn build_verdict(
    store: &dyn Store,
    genesis: &Genesis,
    found: &OnChainBill,
) -> Result<Verdict, ApiError> {
    {
        let bill = &found.bill;
        let record = &found.record;
        Ok(Verdict {
            authentic: true,
            is_final: true,
            status: record.status.as_str().to_owned(),
            code: bill.code,
            number: bill.number,
            check_code: record.check_code,
            kind: bill.kind,
            issuer: IssuerView {
                credit_code: bill.issuer,
                name: unit_name(store, genesis, &bill.issuer)?,
            },
            total: bill.total,
            currency: bill.currency,
            issued_at: bill.issued_at,
            payer: bill.payer.masked(),
            items: bill.items.clone(),
            height: found.location.height,
            block_hash: found.block_hash,
            tx_id: record.issue_tx(),
            history: record
                .history
                .iter()
                .map(|h| HistoryView {
                    action: h.action.as_str().to_owned(),
                    by: h.by,
                    height: h.height,
                    time: utc(h.time_ms),
                    tx_id: h.tx_id,
                })
                .collect(),
        })
    }
}

/// The answer of `POST /v1/verify` for a bill file whose code, number and check code are
/// on chain but whose contents or signature are not the ones committed.
#[derive(Clone, Debug, Serialize)]
pub struct NotAuthentic {
    /// Always false.
    pub authentic: bool,
    /// Always false: nothing final vouches for this file.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// 票据代码 of the file.
    pub code: BillCode,
    /// 票据号码 of the file.
    pub number: BillNumber,
    /// Why: `content_mismatch`, `signature_mismatch` or `check_code_mismatch`.
    pub reason: &'static str,
    /// The same in words.
    pub message: String,
    /// Fields of the file that differ from the bill on chain.
    pub differing_fields: Vec<&'static str>,
    /// The IssueBill transaction on chain for this code and number.
    pub on_chain_tx_id: TxId,
}

/// Fields in which two bills differ, by their JSON names.
pub fn differing_fields(a: &Bill, b: &Bill) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut cmp = |same: bool, name: &'static str| {
        if !same {
            out.push(name);
        }
    };
    cmp(a.code == b.code, "code");
    cmp(a.number == b.number, "number");
    cmp(a.kind == b.kind, "kind");
    cmp(a.issuer == b.issuer, "issuer");
    cmp(a.issued_at == b.issued_at, "issued_at");
    cmp(a.payer == b.payer, "payer");
    cmp(a.items == b.items, "items");
    cmp(a.total == b.total, "total");
    cmp(a.currency == b.currency, "currency");
    cmp(a.remark == b.remark, "remark");
    cmp(a.related == b.related, "related");
    out
}
