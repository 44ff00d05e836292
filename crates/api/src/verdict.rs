//! The verdict on a bill (design section 9): what the public learns from the code,
//! number and check code of a bill, and what `POST /v1/verify` answers for an authentic
//! bill file.
//!
//! A wrong check code and an unknown bill are one and the same answer
//! ([`ApiError::bill_not_found`]), and the check code is compared in constant time,
//! against a dummy when the bill does not exist, so that neither the body nor the
//! comparison tells them apart.

use ebill_ledger::{BillRecord, TxLocation};
use ebill_store::Store;
use ebill_types::bill::Currency;
use ebill_types::{
    Bill, BillCode, BillId, BillKind, BillNumber, CheckCode, CreditCode, Fen, Genesis, Hash32,
    Item, Payer, SignedTx, Timestamp, TxBody, TxId,
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

/// Finds a bill by id, only if `check_code` is its check code. `None` for an unknown
/// bill and for a wrong check code alike.
pub fn find_bill(
    store: &dyn Store,
    id: &BillId,
    check_code: &CheckCode,
) -> Result<Option<OnChainBill>, ApiError> {
    let record = store.find_bill(id).map_err(storage)?;
    // Compare against a dummy when there is no record, so that both paths do the same
    // constant-time comparison.
    let dummy = CheckCode::derive(&ebill_types::Signature([0; 64]));
    let expected = record.as_ref().map_or(dummy, |r| r.check_code);
    let matches = expected.ct_eq(check_code);
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

/// The issuing unit as the public sees it.
#[derive(Clone, Debug, Serialize)]
pub struct IssuerView {
    /// Unified social credit code.
    pub credit_code: CreditCode,
    /// Registered name.
    pub name: String,
}

/// One step of a bill's life as the public sees it.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryView {
    /// `issue_bill`, `lock`, `unlock`, `confirm_reimbursed`, `red_reverse`,
    /// `exchange_paper`.
    pub action: &'static str,
    /// The unit that did it.
    pub by: CreditCode,
    /// Height of its block.
    pub height: u64,
    /// Its block's time (RFC 3339, UTC).
    pub time: Timestamp,
    /// The transaction.
    pub tx_id: TxId,
}

/// The verdict on an authentic bill.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Always true here: the bill is on chain with this check code.
    pub authentic: bool,
    /// True: the block holding it is final (has a commit certificate).
    #[serde(rename = "final")]
    pub is_final: bool,
    /// `issued`, `locked`, `reimbursed`, `reversed` or `paper_exchanged`.
    pub status: &'static str,
    /// 票据代码.
    pub code: BillCode,
    /// 票据号码.
    pub number: BillNumber,
    /// 校验码.
    pub check_code: CheckCode,
    /// The kind of bill.
    pub kind: BillKind,
    /// The issuing unit.
    pub issuer: IssuerView,
    /// The total, a two-decimal string.
    pub total: Fen,
    /// Always `CNY`.
    pub currency: Currency,
    /// When it was issued (RFC 3339 with the issuer's offset).
    pub issued_at: Timestamp,
    /// The payer, masked.
    pub payer: Payer,
    /// The lines of the bill.
    pub items: Vec<Item>,
    /// Height of the block holding the IssueBill transaction.
    pub height: u64,
    /// Hash of that block.
    pub block_hash: Hash32,
    /// The IssueBill transaction id.
    pub tx_id: TxId,
    /// Every step from the issue on.
    pub history: Vec<HistoryView>,
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

impl Verdict {
    /// The verdict on a bill found by [`find_bill`].
    pub fn build(
        store: &dyn Store,
        genesis: &Genesis,
        found: &OnChainBill,
    ) -> Result<Self, ApiError> {
        let bill = &found.bill;
        let record = &found.record;
        Ok(Self {
            authentic: true,
            is_final: true,
            status: record.status.as_str(),
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
                    action: h.action.as_str(),
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
