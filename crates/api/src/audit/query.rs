//! The audit queries over a store's indexes: a page of bills, one bill in full, the
//! statistics and the rules' input. Each runs on a blocking thread and reads at most a
//! bounded number of index entries per answer.

use std::collections::BTreeMap;

pub use ebill_api_types::audit::{BillDetail, BillRow, BillsPage, GroupStats, StatsReport, Tally};
use ebill_ledger::{BillRecord, BillStatus};
use ebill_store::index::{self, BillFacts, BillKeys, BillRun, Index};
use ebill_store::{Store, StoreError};
use ebill_types::bill::BillKind;
use ebill_types::{BillId, CreditCode, Fen, TxBody, TxKind};

use super::params::{Window, china_day, civil_from_days, codes};
use super::rules::AuditBill;
use crate::error::ApiError;
use ebill_store::index::RefusedTx;

/// Most bills on one page.
pub const MAX_PAGE_BILLS: u64 = 1_000;
/// Bills on a page when `limit` is not given.
pub const DEFAULT_PAGE_BILLS: u64 = 100;
/// Most index entries one page reads; a page that reads them all without filling up
/// ends early, with a cursor to go on from.
pub const MAX_SCAN_PER_PAGE: usize = 100_000;
/// Most bills the anomaly rules take in one answer: narrow `from`/`to` beyond it.
pub const MAX_RULE_BILLS: usize = 2_000_000;

/// What `bills?...` filters by.
#[derive(Clone, Debug, Default)]
pub struct BillFilter {
    /// Issued by.
    pub issuer: Option<CreditCode>,
    /// Locked or reimbursed by.
    pub reimburser: Option<CreditCode>,
    /// Of this kind.
    pub kind: Option<BillKind>,
    /// In this status now (index tag).
    pub status: Option<u8>,
    /// Issued (block time) in this window.
    pub window: Option<Window>,
    /// Total at least.
    pub min_total: Option<Fen>,
    /// Total at most.
    pub max_total: Option<Fen>,
}

fn bill_row(rec: &BillRecord, facts: &BillFacts) -> BillRow {
    {
        BillRow {
            code: rec.id.code.as_str().to_owned(),
            number: rec.id.number.as_str().to_owned(),
            issuer: rec.issuer,
            kind: facts.kind,
            total_fen: facts.total.0,
            issued_at: facts.issued_at,
            issue_time_ms: issue_time_ms(rec),
            issue_height: rec.issue_height(),
            status: rec.status,
        }
    }
}

fn issue_time_ms(rec: &BillRecord) -> u64 {
    rec.history.first().map_or(0, |h| h.time_ms)
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal("reading the audit indexes", &e)
}

/// Which index a query reads, and the key range in it.
struct Drive {
    tag: char,
    index: Index,
    start: Vec<u8>,
    end: Vec<u8>,
}

fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.push(0xff);
    end.extend_from_slice(&[0xff; 64]);
    end
}

impl Drive {
    fn choose(f: &BillFilter) -> Self {
        let w = f.window.unwrap_or(Window {
            from_ms: 0,
            to_ms: u64::MAX,
        });
        if let Some(issuer) = &f.issuer {
            let mut start = issuer.as_bytes().to_vec();
            start.extend_from_slice(&w.from_ms.to_be_bytes());
            let mut end = issuer.as_bytes().to_vec();
            end.extend_from_slice(&w.to_ms.to_be_bytes());
            return Self {
                tag: 'i',
                index: Index::IssuerTime,
                start,
                end,
            };
        }
        if let Some(unit) = &f.reimburser {
            return Self {
                tag: 'r',
                index: Index::Reimburser,
                start: unit.as_bytes().to_vec(),
                end: prefix_end(unit.as_bytes()),
            };
        }
        if let Some(kind) = f.kind {
            let mut start = vec![kind.tag()];
            start.extend_from_slice(&w.from_ms.to_be_bytes());
            let mut end = vec![kind.tag()];
            end.extend_from_slice(&w.to_ms.to_be_bytes());
            return Self {
                tag: 'k',
                index: Index::Kind,
                start,
                end,
            };
        }
        if let Some(tag) = f.status {
            return Self {
                tag: 's',
                index: Index::Status,
                start: vec![tag],
                end: prefix_end(&[tag]),
            };
        }
        Self {
            tag: 'a',
            index: Index::Facts,
            start: Vec::new(),
            end: vec![0xff; 64],
        }
    }

    fn cursor(&self, last_key: &[u8]) -> String {
        format!("{}{}", self.tag, hex::encode(last_key))
    }

    /// The key after which a cursor resumes: it must be from this query's index and
    /// range.
    fn resume(&self, cursor: &str) -> Result<Vec<u8>, ApiError> {
        let bad = || {
            ApiError::bad_request(
                codes::INVALID_CURSOR,
                "cursor: not a cursor of this query (pass next_cursor back unchanged, with the same filters)",
            )
        };
        let rest = cursor.strip_prefix(self.tag).ok_or_else(bad)?;
        if rest.len() > 256 {
            return Err(bad());
        }
        let key = hex::decode(rest).map_err(|_| bad())?;
        if key < self.start || key >= self.end {
            return Err(bad());
        }
        let mut after = key;
        after.push(0);
        Ok(after)
    }
}

fn matches(f: &BillFilter, rec: &BillRecord, facts: &BillFacts, index_tag: char) -> bool {
    if f.issuer.is_some_and(|i| i != rec.issuer) {
        return false;
    }
    if let Some(unit) = &f.reimburser
        && index_tag != 'r'
        && !rec
            .history
            .iter()
            .any(|h| h.by == *unit && matches!(h.action, TxKind::Lock | TxKind::ConfirmReimbursed))
    {
        return false;
    }
    if f.kind.is_some_and(|k| k != facts.kind) {
        return false;
    }
    if f.status
        .is_some_and(|s| s != index::status_tag(&rec.status))
    {
        return false;
    }
    if f.window.is_some_and(|w| !w.contains(issue_time_ms(rec))) {
        return false;
    }
    if f.min_total.is_some_and(|m| facts.total < m) || f.max_total.is_some_and(|m| facts.total > m)
    {
        return false;
    }
    true
}

/// A page of the bills that match `filter`, from `cursor` on.
pub fn list_bills(
    store: &dyn Store,
    filter: &BillFilter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<BillsPage, ApiError> {
    if let (Some(a), Some(b)) = (filter.min_total, filter.max_total)
        && a > b
    {
        return Err(ApiError::bad_request(
            codes::INVALID_RANGE,
            "min_total is over max_total",
        ));
    }
    let drive = Drive::choose(filter);
    let from = match cursor {
        Some(c) => drive.resume(c)?,
        None => drive.start.clone(),
    };
    let mut bills = Vec::new();
    let mut scanned = 0usize;
    let mut last: Option<Vec<u8>> = None;
    let mut more = false;
    let mut failure: Option<ApiError> = None;
    store
        .index_scan(drive.index, &from, Some(&drive.end), &mut |k, _| {
            if bills.len() == limit || scanned == MAX_SCAN_PER_PAGE {
                more = true;
                return Ok(false);
            }
            scanned += 1;
            last = Some(k.to_vec());
            let id = index::bill_of_key(k)?;
            let (Some(rec), Some(facts)) = (store.find_bill(&id)?, store.bill_facts(&id)?) else {
                failure = Some(ApiError::internal(
                    "reading the audit indexes",
                    &format!("index entry for {id} without a bill or its facts: reindex"),
                ));
                return Ok(false);
            };
            if matches(filter, &rec, &facts, drive.tag) {
                bills.push(bill_row(&rec, &facts));
            }
            Ok(true)
        })
        .map_err(store_err)?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(BillsPage {
        bills,
        next_cursor: if more {
            last.map(|k| drive.cursor(&k))
        } else {
            None
        },
    })
}

/// The full record of `id`, or `None` if no such bill.
pub fn bill_detail(store: &dyn Store, id: &BillId) -> Result<Option<BillDetail>, ApiError> {
    let Some(rec) = store.find_bill(id).map_err(store_err)? else {
        return Ok(None);
    };
    let issue = store.tx(&rec.issue_tx()).map_err(store_err)?;
    let Some(TxBody::IssueBill(bill)) = issue.map(|(tx, _)| tx.tx.body) else {
        return Err(ApiError::internal(
            "reading a bill",
            &format!("bill {id} has no stored IssueBill transaction"),
        ));
    };
    Ok(Some(BillDetail {
        bill,
        issue_height: rec.issue_height(),
        status: rec.status,
        history: rec.history,
        check_code: rec.check_code,
    }))
}

/// How `stats` groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// By issuing unit.
    Issuer,
    /// By bill kind.
    Kind,
    /// By day of issue (block time, China).
    Day,
    /// By month of issue (block time, China).
    Month,
}

impl GroupBy {
    /// Parses `issuer|kind|day|month`.
    pub fn parse(v: &Option<String>) -> Result<Self, ApiError> {
        match v.as_deref().unwrap_or("issuer") {
            "issuer" => Ok(Self::Issuer),
            "kind" => Ok(Self::Kind),
            "day" => Ok(Self::Day),
            "month" => Ok(Self::Month),
            other => Err(ApiError::bad_request(
                codes::INVALID_GROUP_BY,
                format!("group_by: {other:?} is not one of issuer, kind, day, month"),
            )),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Self::Issuer => "issuer",
            Self::Kind => "kind",
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

fn tally(t: &mut Tally, fen: u64) {
    t.count += 1;
    t.amount_fen = t.amount_fen.saturating_add(fen);
}

/// A group's statistics as they are gathered: the answer's, and the times to
/// reimbursement its median is taken from.
#[derive(Default)]
struct GroupAcc {
    stats: GroupStats,
    to_reimbursement_ms: Vec<u64>,
}

impl GroupAcc {
    fn new(key: String) -> Self {
        Self {
            stats: GroupStats {
                key,
                ..GroupStats::default()
            },
            to_reimbursement_ms: Vec::new(),
        }
    }

    fn add(&mut self, rec: &BillRecord, facts: &BillFacts) {
        let fen = facts.total.0;
        let g = &mut self.stats;
        tally(&mut g.issued, fen);
        match rec.status {
            BillStatus::Issued => tally(&mut g.open, fen),
            BillStatus::Locked { .. } => tally(&mut g.locked, fen),
            BillStatus::Reversed { .. } => tally(&mut g.reversed, fen),
            BillStatus::PaperExchanged { .. } => tally(&mut g.paper_exchanged, fen),
            BillStatus::Reimbursed { .. } => {
                tally(&mut g.reimbursed, fen);
                if let Some(h) = rec
                    .history
                    .iter()
                    .find(|h| h.action == TxKind::ConfirmReimbursed)
                {
                    self.to_reimbursement_ms
                        .push(h.time_ms.saturating_sub(issue_time_ms(rec)));
                }
            }
        }
    }

    /// Adds the bills of `other`, a group of other bills.
    fn merge(&mut self, other: GroupAcc) {
        let (g, o) = (&mut self.stats, other.stats);
        for (mine, theirs) in [
            (&mut g.issued, o.issued),
            (&mut g.open, o.open),
            (&mut g.locked, o.locked),
            (&mut g.reversed, o.reversed),
            (&mut g.paper_exchanged, o.paper_exchanged),
            (&mut g.reimbursed, o.reimbursed),
        ] {
            mine.count += theirs.count;
            mine.amount_fen = mine.amount_fen.saturating_add(theirs.amount_fen);
        }
        self.to_reimbursement_ms.extend(other.to_reimbursement_ms);
    }

    fn finish(mut self) -> GroupStats {
        let g = &mut self.stats;
        let n = g.issued.count.max(1) as f64;
        g.reversed_rate = g.reversed.count as f64 / n;
        g.reimbursed_share = g.reimbursed.count as f64 / n;
        let v = &mut self.to_reimbursement_ms;
        if !v.is_empty() {
            let mid = (v.len() - 1) / 2;
            let (_, m, _) = v.select_nth_unstable(mid);
            g.median_ms_to_reimbursement = Some(*m);
        }
        self.stats
    }
}

/// The key of the group `rec` falls in: borrowed from the bill, or from `days` (the
/// day's text, made once per day), so that grouping allocates nothing per bill.
fn group_key<'k>(
    by: GroupBy,
    rec: &'k BillRecord,
    facts: &BillFacts,
    days: &'k mut BTreeMap<i64, String>,
) -> &'k str {
    match by {
        GroupBy::Issuer => rec.issuer.as_str(),
        GroupBy::Kind => facts.kind.as_str(),
        GroupBy::Day | GroupBy::Month => {
            let day = china_day(issue_time_ms(rec));
            let s = days.entry(day).or_insert_with(|| {
                let (y, m, d) = civil_from_days(day);
                format!("{y:04}-{m:02}-{d:02}")
            });
            if by == GroupBy::Month { &s[..7] } else { s }
        }
    }
}

/// Most threads one `stats` answer scans the bills on.
pub const MAX_STATS_THREADS: usize = 4;

/// The statistics of one run of bills, as a scan gathers them.
#[derive(Default)]
struct Partial {
    groups: BTreeMap<String, GroupAcc>,
    /// The group of the last bill added, taken out of `groups`: in key order bills
    /// mostly come in runs of one group (an issuer's numbers, issued day by day), so
    /// most of them find their group without a lookup.
    current: Option<GroupAcc>,
    total: GroupAcc,
    days: BTreeMap<i64, String>,
}

impl Partial {
    fn add(&mut self, by: GroupBy, rec: &BillRecord, facts: &BillFacts) {
        let key = group_key(by, rec, facts, &mut self.days);
        self.total.add(rec, facts);
        if self.current.as_ref().is_none_or(|c| c.stats.key != key) {
            let next = self
                .groups
                .remove(key)
                .unwrap_or_else(|| GroupAcc::new(key.to_owned()));
            if let Some(done) = self.current.replace(next) {
                self.groups.insert(done.stats.key.clone(), done);
            }
        }
        if let Some(group) = self.current.as_mut() {
            group.add(rec, facts);
        }
    }

    /// Puts the current group back among the others.
    fn settle(&mut self) {
        if let Some(done) = self.current.take() {
            self.groups.insert(done.stats.key.clone(), done);
        }
    }

    /// Adds the bills of `other`, a run of other bills.
    fn merge(&mut self, mut other: Partial) {
        self.settle();
        other.settle();
        self.total.merge(other.total);
        for (key, acc) in other.groups {
            match self.groups.get_mut(&key) {
                Some(g) => g.merge(acc),
                None => {
                    self.groups.insert(key, acc);
                }
            }
        }
    }
}

/// The statistics of the bills issued in `window`, grouped. The bills are scanned in
/// runs of about equal size on up to [`MAX_STATS_THREADS`] threads (the machine's
/// cores), as of one moment, and the runs' counts added up: the same answer as one
/// scan's.
pub fn stats(store: &dyn Store, by: GroupBy, window: Window) -> Result<StatsReport, ApiError> {
    let height = store.tip().map_err(store_err)?.map_or(0, |t| t.height);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_STATS_THREADS);
    let splits = store.bill_splits(threads).map_err(store_err)?;
    let keys = BillKeys::runs(&splits);
    let mut partials: Vec<Partial> = keys.iter().map(|_| Partial::default()).collect();
    let mut runs: Vec<BillRun<'_>> = keys
        .iter()
        .zip(partials.iter_mut())
        .map(|(keys, partial)| BillRun {
            keys: *keys,
            visit: Box::new(move |rec, facts| {
                if window.contains(issue_time_ms(rec)) {
                    partial.add(by, rec, facts);
                }
                Ok(true)
            }),
        })
        .collect();
    store.scan_bill_runs(&mut runs).map_err(store_err)?;
    drop(runs);
    let mut all = Partial::default();
    for p in partials {
        all.merge(p);
    }
    all.settle();
    let groups = all.groups.into_values().map(GroupAcc::finish).collect();
    let mut total = all.total.finish();
    total.key = "total".to_owned();
    Ok(StatsReport {
        group_by: by.as_str().to_owned(),
        from_ms: window.from_ms,
        to_ms: window.to_ms,
        height,
        groups,
        total,
    })
}

/// What the rules run over: the bills issued in `window`, the refused log of the
/// window, and the tip's block time.
pub struct RuleInput {
    /// The bills.
    pub bills: Vec<AuditBill>,
    /// The refused transactions.
    pub refused: Vec<RefusedTx>,
    /// Block time of the tip, ms (0 before block 1).
    pub now_ms: u64,
    /// Height of the tip.
    pub height: u64,
}

/// Loads the rules' input.
pub fn rule_input(store: &dyn Store, window: Window) -> Result<RuleInput, ApiError> {
    let tip = store.tip().map_err(store_err)?;
    let height = tip.map_or(0, |t| t.height);
    let now_ms = match tip {
        Some(t) => store
            .header(t.height)
            .map_err(store_err)?
            .map_or(0, |h| h.time_ms),
        None => 0,
    };
    let mut bills = Vec::new();
    let mut too_many = false;
    store
        .scan_bills(BillKeys::ALL, &mut |rec, facts| {
            if window.contains(issue_time_ms(rec)) {
                if bills.len() == MAX_RULE_BILLS {
                    too_many = true;
                    return Ok(false);
                }
                bills.push(AuditBill {
                    record: rec.clone(),
                    facts: *facts,
                });
            }
            Ok(true)
        })
        .map_err(store_err)?;
    if too_many {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            codes::RANGE_TOO_LARGE,
            format!("more than {MAX_RULE_BILLS} bills in the window: narrow from and to"),
        ));
    }
    let mut refused = Vec::new();
    store
        .refused_log(&mut |r| {
            if window.contains(r.time_ms) {
                refused.push(r.clone());
            }
            Ok(true)
        })
        .map_err(store_err)?;
    Ok(RuleInput {
        bills,
        refused,
        now_ms,
        height,
    })
}
