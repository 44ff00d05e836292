//! Answers of the audit API on the operator's listener (`/admin/v1/...`, crates/api's
//! `audit` module): a page of bills, one bill in full, statistics, anomaly hits and the
//! stream's bill events.

use ebill_ledger::{BillStatus, HistoryEntry};
use ebill_types::bill::BillKind;
use ebill_types::{Bill, BillId, CreditCode, Timestamp, TxId};
use serde::{Deserialize, Serialize};

/// One bill in a list: no payer (that is in the full record only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BillRow {
    /// Bill code.
    pub code: String,
    /// Bill number.
    pub number: String,
    /// Issuer.
    pub issuer: CreditCode,
    /// Kind.
    pub kind: BillKind,
    /// Total, fen.
    pub total_fen: u64,
    /// The issuer's `issued_at`.
    pub issued_at: Timestamp,
    /// Block time of the issue, ms.
    pub issue_time_ms: u64,
    /// Height of the issue.
    pub issue_height: u64,
    /// Status now (`status`, and `by` and `height` where the status has them).
    #[serde(flatten)]
    pub status: BillStatus,
}

/// A page of bills.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BillsPage {
    /// The bills, in the order of the index read.
    pub bills: Vec<BillRow>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// One bill in full, for the operator: the bill as issued (payer unmasked), its
/// record with every step, and its facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BillDetail {
    /// The bill as its issuer signed it.
    pub bill: Bill,
    /// Status now.
    pub status: BillStatus,
    /// Every step, from the issue on.
    pub history: Vec<HistoryEntry>,
    /// The check code.
    pub check_code: ebill_types::CheckCode,
    /// Height of the issue.
    pub issue_height: u64,
}

/// A count and an amount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Bills.
    pub count: u64,
    /// Their totals, fen.
    pub amount_fen: u64,
}

/// The statistics of one group. Every bill counts once in `issued` and once in the
/// tally of its status now (`reimbursed`, `reversed`, `paper_exchanged`, `locked`,
/// `open`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// The group's key: a credit code, a kind, `YYYY-MM-DD` or `YYYY-MM`.
    pub key: String,
    /// Issued.
    pub issued: Tally,
    /// Red-reversed.
    pub reversed: Tally,
    /// `reversed.count / issued.count`.
    pub reversed_rate: f64,
    /// Reimbursed.
    pub reimbursed: Tally,
    /// `reimbursed.count / issued.count`.
    pub reimbursed_share: f64,
    /// Median block time from issue to reimbursement, ms (the lower median); absent
    /// when none was reimbursed.
    pub median_ms_to_reimbursement: Option<u64>,
    /// Exchanged for paper.
    pub paper_exchanged: Tally,
    /// Locked now.
    pub locked: Tally,
    /// Still open (issued, neither locked nor final).
    pub open: Tally,
}

/// `stats`: every group, by key, and the whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    /// How the groups are made.
    pub group_by: String,
    /// The window (block time of issue), ms: `from_ms` inclusive, `to_ms` exclusive.
    pub from_ms: u64,
    /// See `from_ms`.
    pub to_ms: u64,
    /// Height of the tip the statistics are of.
    pub height: u64,
    /// The groups, by key.
    pub groups: Vec<GroupStats>,
    /// Every bill in the window.
    pub total: GroupStats,
}

/// One rule as an answer names it: its id, version and what it flags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleView {
    /// Stable id.
    pub id: String,
    /// Version of its definition.
    pub version: u32,
    /// What it flags.
    pub description: String,
}

/// One hit of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The rule's id.
    pub rule: String,
    /// The rule's version.
    pub version: u32,
    /// The bill concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill: Option<BillId>,
    /// The issuer concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<CreditCode>,
    /// What was found, in words.
    pub detail: String,
    /// The transactions that show it (at most a bounded number).
    pub evidence: Vec<TxId>,
    /// How many evidence transactions there were in all.
    pub evidence_count: usize,
}

/// The answer of `GET /admin/v1/anomalies`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomaliesReport {
    /// Height of the tip the rules ran at.
    pub height: u64,
    /// That tip's block time, ms (what "now" is to the rules).
    pub now_ms: u64,
    /// The window (block time of issue), ms: `from_ms` inclusive.
    pub from_ms: u64,
    /// `to_ms` exclusive.
    pub to_ms: u64,
    /// The rules that ran.
    pub rules: Vec<RuleView>,
    /// Their hits.
    pub hits: Vec<Hit>,
}

/// One bill in `GET /admin/v1/stream`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillEvent {
    /// Bill code.
    pub code: String,
    /// Bill number.
    pub number: String,
    /// Issuer (the watched code).
    pub issuer: CreditCode,
    /// Kind.
    pub kind: BillKind,
    /// Total, fen.
    pub total_fen: u64,
    /// The issuer's `issued_at`.
    pub issued_at: Timestamp,
    /// Height of the block.
    pub height: u64,
    /// Block time, ms.
    pub block_time_ms: u64,
    /// The IssueBill transaction.
    pub tx_id: TxId,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A row's status is flattened into it (`"status": "locked", "by", "height"`) and
    /// reads back whole, beside the row's own `issue_height`.
    #[test]
    fn a_bill_row_reads_back_with_its_flattened_status() {
        let by = CreditCode::parse("91330000MA2ABCDE1L").unwrap();
        let row = BillRow {
            code: "33010124".into(),
            number: "0000000001".into(),
            issuer: by,
            kind: BillKind::MedicalOutpatient,
            total_fen: 12_345,
            issued_at: Timestamp::from_unix_ms(1_764_547_200_000),
            issue_time_ms: 1_764_547_200_500,
            issue_height: 3,
            status: BillStatus::Locked { by, height: 7 },
        };
        let text = serde_json::to_string(&row).unwrap();
        assert!(text.contains(r#""status":"locked""#), "{text}");
        assert!(text.contains(r#""height":7"#), "{text}");
        assert_eq!(serde_json::from_str::<BillRow>(&text).unwrap(), row);
    }
}
