//! The anomaly rules: open and versioned, all in this one module, so that anyone who
//! holds the chain (an observer) can recompute every hit. Each rule is a pure function
//! of the bills (their records and [`BillFacts`]), the node's log of refused
//! transactions, the tip's block time and the thresholds of [`RuleConfig`] (the node
//! config's `[audit]` table). A hit names its rule and version and the transactions
//! that are its evidence.
//!
//! A rule whose meaning changes gets a new version; its id stays.

use std::collections::BTreeMap;

use ebill_ledger::{BillRecord, BillStatus};
use ebill_store::index::{BillFacts, RefusedTx};
use ebill_types::{BillId, CreditCode, TxId, TxKind};
use serde::Serialize;

/// Most evidence transactions one hit lists (a count says how many there were).
pub const MAX_EVIDENCE: usize = 50;

/// One rule: its id, version and what it flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Stable id.
    pub id: &'static str,
    /// Version of its definition.
    pub version: u32,
    /// What it flags.
    pub description: &'static str,
}

/// A bill locked for longer than `locked_max_days` (by the tip's block time).
pub const LOCKED_TOO_LONG: RuleInfo = RuleInfo {
    id: "locked_too_long",
    version: 1,
    description: "a bill locked for reimbursement for longer than locked_max_days, as of the tip's block time",
};
/// A red reversal after a lock or a reimbursement attempt.
pub const REVERSAL_AFTER_LOCK: RuleInfo = RuleInfo {
    id: "reversal_after_lock",
    version: 1,
    description: "a bill red-reversed after it was locked, or after this node refused an attempt to lock or reimburse it",
};
/// An issuer's red-reversal rate above the threshold.
pub const REVERSAL_RATE: RuleInfo = RuleInfo {
    id: "reversal_rate",
    version: 1,
    description: "an issuer that issued at least reversal_rate_min_bills bills and red-reversed more than reversal_rate_max_permille per mille of them",
};
/// A gap in an issuer's numbering.
pub const NUMBERING_GAP: RuleInfo = RuleInfo {
    id: "numbering_gap",
    version: 1,
    description: "consecutive bill numbers of one issuer and bill code more than numbering_max_gap apart",
};
/// A burst of an issuer's bills.
pub const NUMBERING_BURST: RuleInfo = RuleInfo {
    id: "numbering_burst",
    version: 1,
    description: "more than burst_max_bills bills of one issuer within burst_window_s seconds of block time",
};
/// A bill issued outside its issuer's declared hours.
pub const OUTSIDE_HOURS: RuleInfo = RuleInfo {
    id: "outside_hours",
    version: 1,
    description: "a bill whose issued_at, in the issuer's own offset, is outside the issuer's declared hours",
};
/// Repeated refused reimbursement attempts of one bill.
pub const REPEATED_REFUSED_REIMBURSEMENT: RuleInfo = RuleInfo {
    id: "repeated_refused_reimbursement",
    version: 1,
    description: "at least refused_max_attempts lock or reimbursement attempts of one bill refused by this node",
};

/// Every rule, in the order they run.
pub const RULES: [RuleInfo; 7] = [
    LOCKED_TOO_LONG,
    REVERSAL_AFTER_LOCK,
    REVERSAL_RATE,
    NUMBERING_GAP,
    NUMBERING_BURST,
    OUTSIDE_HOURS,
    REPEATED_REFUSED_REIMBURSEMENT,
];

/// Hours of the day, in minutes from midnight: `[start, end)`; a window whose end is
/// before its start runs past midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Hours {
    /// First minute of the day inside.
    pub start_min: u16,
    /// First minute after.
    pub end_min: u16,
}

impl Hours {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not HH:MM-HH:MM");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let minutes = |t: &str| -> Result<u16, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let h: u16 = h.parse().map_err(|_| bad())?;
            let m: u16 = m.parse().map_err(|_| bad())?;
            if h > 24 || m > 59 || (h == 24 && m != 0) {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        Ok(Self {
            start_min: minutes(a)?,
            end_min: minutes(b)?,
        })
    }

    /// Whether minute-of-day `m` is inside.
    pub fn contains(&self, m: u16) -> bool {
        if self.start_min <= self.end_min {
            self.start_min <= m && m < self.end_min
        } else {
            m >= self.start_min || m < self.end_min
        }
    }
}

/// The rules' thresholds (node config `[audit]`).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleConfig {
    /// [`LOCKED_TOO_LONG`]: days.
    pub locked_max_days: u64,
    /// [`REVERSAL_RATE`]: per mille of the bills issued.
    pub reversal_rate_max_permille: u64,
    /// [`REVERSAL_RATE`]: fewest bills issued before the rate counts.
    pub reversal_rate_min_bills: u64,
    /// [`NUMBERING_GAP`]: most numbers skipped between two consecutive bills.
    pub numbering_max_gap: u64,
    /// [`NUMBERING_BURST`]: most bills in one window.
    pub burst_max_bills: u64,
    /// [`NUMBERING_BURST`]: the window, seconds.
    pub burst_window_s: u64,
    /// [`OUTSIDE_HOURS`]: each issuer's declared hours; an issuer not named here is
    /// checked against `default_hours`, or not at all.
    pub declared_hours: BTreeMap<CreditCode, Hours>,
    /// [`OUTSIDE_HOURS`]: the hours of every issuer not in `declared_hours`.
    pub default_hours: Option<Hours>,
    /// [`REPEATED_REFUSED_REIMBURSEMENT`]: refused attempts that make a hit.
    pub refused_max_attempts: u64,
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            locked_max_days: 30,
            reversal_rate_max_permille: 50,
            reversal_rate_min_bills: 20,
            numbering_max_gap: 1_000,
            burst_max_bills: 10_000,
            burst_window_s: 60,
            declared_hours: BTreeMap::new(),
            default_hours: None,
            refused_max_attempts: 3,
        }
    }
}

/// A bill as the rules see it.
#[derive(Clone, Debug)]
pub struct AuditBill {
    /// Its record, with its history.
    pub record: BillRecord,
    /// Its facts.
    pub facts: BillFacts,
}

impl AuditBill {
    fn issue_time_ms(&self) -> u64 {
        self.record.history.first().map_or(0, |h| h.time_ms)
    }
}

pub use ebill_api_types::audit::Hit;

fn hit(
    rule: RuleInfo,
    bill: Option<BillId>,
    issuer: Option<CreditCode>,
    detail: String,
    mut evidence: Vec<TxId>,
) -> Hit {
    let evidence_count = evidence.len();
    evidence.truncate(MAX_EVIDENCE);
    Hit {
        rule: rule.id.to_owned(),
        version: rule.version,
        bill,
        issuer,
        detail,
        evidence,
        evidence_count,
    }
}

const DAY_MS: u64 = 86_400_000;

/// [`LOCKED_TOO_LONG`].
pub fn locked_too_long(bills: &[AuditBill], now_ms: u64, cfg: &RuleConfig) -> Vec<Hit> {
    let max_ms = cfg.locked_max_days.saturating_mul(DAY_MS);
    bills
        .iter()
        .filter_map(|b| {
            let BillStatus::Locked { by, .. } = b.record.status else {
                return None;
            };
            let lock = b
                .record
                .history
                .iter()
                .rev()
                .find(|h| h.action == TxKind::Lock)?;
            let held_ms = now_ms.saturating_sub(lock.time_ms);
            (held_ms > max_ms).then(|| {
                hit(
                    LOCKED_TOO_LONG,
                    Some(b.record.id),
                    Some(b.record.issuer),
                    format!(
                        "locked by {by} for {} days (more than {})",
                        held_ms / DAY_MS,
                        cfg.locked_max_days
                    ),
                    vec![lock.tx_id],
                )
            })
        })
        .collect()
}

/// [`REVERSAL_AFTER_LOCK`].
pub fn reversal_after_lock(bills: &[AuditBill], refused: &[RefusedTx]) -> Vec<Hit> {
    let mut attempts: BTreeMap<BillId, Vec<&RefusedTx>> = BTreeMap::new();
    for r in refused {
        if let (Some(bill), TxKind::Lock | TxKind::ConfirmReimbursed) = (r.bill, r.kind) {
            attempts.entry(bill).or_default().push(r);
        }
    }
    bills
        .iter()
        .filter_map(|b| {
            let rev = b
                .record
                .history
                .iter()
                .find(|h| h.action == TxKind::RedReverse)?;
            let mut evidence: Vec<TxId> = b
                .record
                .history
                .iter()
                .filter(|h| h.height <= rev.height && h.action == TxKind::Lock)
                .map(|h| h.tx_id)
                .collect();
            let locks = evidence.len();
            let refused_before: Vec<TxId> = attempts
                .get(&b.record.id)
                .map(|v| {
                    v.iter()
                        .filter(|r| r.time_ms <= rev.time_ms)
                        .map(|r| r.tx_id)
                        .collect()
                })
                .unwrap_or_default();
            if locks == 0 && refused_before.is_empty() {
                return None;
            }
            let refused_count = refused_before.len();
            evidence.extend(refused_before);
            evidence.push(rev.tx_id);
            Some(hit(
                REVERSAL_AFTER_LOCK,
                Some(b.record.id),
                Some(b.record.issuer),
                format!(
                    "red-reversed at height {} after {locks} lock(s) and {refused_count} refused attempt(s)",
                    rev.height
                ),
                evidence,
            ))
        })
        .collect()
}

/// [`REVERSAL_RATE`].
pub fn reversal_rate(bills: &[AuditBill], cfg: &RuleConfig) -> Vec<Hit> {
    let mut by_issuer: BTreeMap<CreditCode, (u64, Vec<TxId>)> = BTreeMap::new();
    for b in bills {
        let e = by_issuer.entry(b.record.issuer).or_default();
        e.0 += 1;
        if let Some(rev) = b
            .record
            .history
            .iter()
            .find(|h| h.action == TxKind::RedReverse)
        {
            e.1.push(rev.tx_id);
        }
    }
    by_issuer
        .into_iter()
        .filter_map(|(issuer, (issued, reversals))| {
            let reversed = reversals.len() as u64;
            let over = issued >= cfg.reversal_rate_min_bills
                && reversed.saturating_mul(1000)
                    > cfg.reversal_rate_max_permille.saturating_mul(issued);
            over.then(|| {
                hit(
                    REVERSAL_RATE,
                    None,
                    Some(issuer),
                    format!(
                        "{reversed} of {issued} bills red-reversed ({} per mille, more than {})",
                        reversed * 1000 / issued.max(1),
                        cfg.reversal_rate_max_permille
                    ),
                    reversals,
                )
            })
        })
        .collect()
}

/// The bill number as an integer (ten digits always fit).
fn number_of(id: &BillId) -> u64 {
    id.number.as_str().parse().unwrap_or(0)
}

/// [`NUMBERING_GAP`].
pub fn numbering_gap(bills: &[AuditBill], cfg: &RuleConfig) -> Vec<Hit> {
    let mut series: BTreeMap<(CreditCode, String), Vec<(u64, &AuditBill)>> = BTreeMap::new();
    for b in bills {
        series
            .entry((b.record.issuer, b.record.id.code.as_str().to_owned()))
            .or_default()
            .push((number_of(&b.record.id), b));
    }
    let mut hits = Vec::new();
    for ((issuer, code), mut numbers) in series {
        numbers.sort_by_key(|(n, _)| *n);
        for w in numbers.windows(2) {
            let (a, b) = (w[0], w[1]);
            let skipped = b.0.saturating_sub(a.0).saturating_sub(1);
            if skipped > cfg.numbering_max_gap {
                hits.push(hit(
                    NUMBERING_GAP,
                    Some(b.1.record.id),
                    Some(issuer),
                    format!(
                        "code {code}: {skipped} numbers skipped between {} and {} (more than {})",
                        a.1.record.id.number.as_str(),
                        b.1.record.id.number.as_str(),
                        cfg.numbering_max_gap
                    ),
                    vec![a.1.record.issue_tx(), b.1.record.issue_tx()],
                ));
            }
        }
    }
    hits
}

/// [`NUMBERING_BURST`]: one hit per burst (a window found, the scan goes on after it).
pub fn numbering_burst(bills: &[AuditBill], cfg: &RuleConfig) -> Vec<Hit> {
    let window_ms = cfg.burst_window_s.saturating_mul(1000);
    let max = usize::try_from(cfg.burst_max_bills).unwrap_or(usize::MAX);
    let mut by_issuer: BTreeMap<CreditCode, Vec<&AuditBill>> = BTreeMap::new();
    for b in bills {
        by_issuer.entry(b.record.issuer).or_default().push(b);
    }
    let mut hits = Vec::new();
    for (issuer, mut list) in by_issuer {
        list.sort_by_key(|b| (b.issue_time_ms(), b.record.id));
        let mut start = 0;
        let mut end = 0;
        while start < list.len() {
            let t0 = list[start].issue_time_ms();
            while end < list.len() && list[end].issue_time_ms() < t0.saturating_add(window_ms) {
                end += 1;
            }
            let n = end - start;
            if n > max {
                let burst = &list[start..end];
                hits.push(hit(
                    NUMBERING_BURST,
                    None,
                    Some(issuer),
                    format!(
                        "{n} bills within {} s from {} (more than {max})",
                        cfg.burst_window_s, burst[0].record.id
                    ),
                    burst.iter().map(|b| b.record.issue_tx()).collect(),
                ));
                start = end;
            } else {
                start += 1;
            }
        }
    }
    hits
}

/// Minute of the day of `issued_at` in its own offset.
fn local_minute(facts: &BillFacts) -> u16 {
    let ms = i128::from(facts.issued_at.unix_ms) + i128::from(facts.issued_at.offset_min) * 60_000;
    let of_day = ms.rem_euclid(i128::from(DAY_MS));
    u16::try_from(of_day / 60_000).unwrap_or(0)
}

/// [`OUTSIDE_HOURS`].
pub fn outside_hours(bills: &[AuditBill], cfg: &RuleConfig) -> Vec<Hit> {
    bills
        .iter()
        .filter_map(|b| {
            let hours = cfg
                .declared_hours
                .get(&b.record.issuer)
                .or(cfg.default_hours.as_ref())?;
            let m = local_minute(&b.facts);
            (!hours.contains(m)).then(|| {
                hit(
                    OUTSIDE_HOURS,
                    Some(b.record.id),
                    Some(b.record.issuer),
                    format!(
                        "issued at {:02}:{:02} local time, outside {:02}:{:02}-{:02}:{:02}",
                        m / 60,
                        m % 60,
                        hours.start_min / 60,
                        hours.start_min % 60,
                        hours.end_min / 60,
                        hours.end_min % 60
                    ),
                    vec![b.record.issue_tx()],
                )
            })
        })
        .collect()
}

/// [`REPEATED_REFUSED_REIMBURSEMENT`]: over the refused log entries given (the caller
/// picks the time window).
pub fn repeated_refused_reimbursement(refused: &[RefusedTx], cfg: &RuleConfig) -> Vec<Hit> {
    let mut by_bill: BTreeMap<BillId, Vec<&RefusedTx>> = BTreeMap::new();
    for r in refused {
        if let (Some(bill), TxKind::Lock | TxKind::ConfirmReimbursed) = (r.bill, r.kind) {
            by_bill.entry(bill).or_default().push(r);
        }
    }
    by_bill
        .into_iter()
        .filter(|(_, v)| v.len() as u64 >= cfg.refused_max_attempts)
        .map(|(bill, v)| {
            let mut codes: Vec<&str> = v.iter().map(|r| r.code.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            hit(
                REPEATED_REFUSED_REIMBURSEMENT,
                Some(bill),
                None,
                format!(
                    "{} refused lock or reimbursement attempts ({}), at least {}",
                    v.len(),
                    codes.join(", "),
                    cfg.refused_max_attempts
                ),
                v.iter().map(|r| r.tx_id).collect(),
            )
        })
        .collect()
}

/// Runs the rules (only `only` if given), in [`RULES`] order.
pub fn run(
    bills: &[AuditBill],
    refused: &[RefusedTx],
    now_ms: u64,
    cfg: &RuleConfig,
    only: Option<&str>,
) -> Vec<Hit> {
    let wanted = |r: RuleInfo| only.is_none_or(|id| id == r.id);
    let mut hits = Vec::new();
    if wanted(LOCKED_TOO_LONG) {
        hits.extend(locked_too_long(bills, now_ms, cfg));
    }
    if wanted(REVERSAL_AFTER_LOCK) {
        hits.extend(reversal_after_lock(bills, refused));
    }
    if wanted(REVERSAL_RATE) {
        hits.extend(reversal_rate(bills, cfg));
    }
    if wanted(NUMBERING_GAP) {
        hits.extend(numbering_gap(bills, cfg));
    }
    if wanted(NUMBERING_BURST) {
        hits.extend(numbering_burst(bills, cfg));
    }
    if wanted(OUTSIDE_HOURS) {
        hits.extend(outside_hours(bills, cfg));
    }
    if wanted(REPEATED_REFUSED_REIMBURSEMENT) {
        hits.extend(repeated_refused_reimbursement(refused, cfg));
    }
    hits
}

#[cfg(test)]
mod tests {
    //! Each rule with a planted case, and a clean case beside it that it must not flag.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ebill_ledger::HistoryEntry;
    use ebill_types::bill::BillKind;
    use ebill_types::{BillCode, BillNumber, Fen, Hash32, Timestamp};

    const T0: u64 = 1_795_000_000_000;

    fn issuer(n: u8) -> CreditCode {
        let base = ["12100000MB0000001", "12100000MB0000002"];
        CreditCode::complete(base[usize::from(n)]).unwrap()
    }
    fn reimburser() -> CreditCode {
        CreditCode::complete("11100000MB0000009").unwrap()
    }
    fn tx(tag: &str, n: u64) -> TxId {
        Hash32::digest(format!("{tag}/{n}").as_bytes())
    }
    fn id(code: &str, number: u64) -> BillId {
        BillId {
            code: BillCode::parse(code).unwrap(),
            number: BillNumber::parse(&format!("{number:010}")).unwrap(),
        }
    }
    fn entry(action: TxKind, by: CreditCode, height: u64, time_ms: u64, t: TxId) -> HistoryEntry {
        HistoryEntry {
            action,
            by,
            height,
            time_ms,
            tx_id: t,
        }
    }
    /// Bill `number` of issuer `i`, issued at `time_ms` (block time) whose issued_at is
    /// `local` ("HH:MM" in +08:00).
    fn bill(i: u8, number: u64, time_ms: u64, local: &str) -> AuditBill {
        let bid = id("11010126", number);
        let issued_at = Timestamp::parse(&format!("2026-12-01T{local}:00+08:00")).unwrap();
        AuditBill {
            record: BillRecord {
                id: bid,
                issuer: issuer(i),
                check_code: ebill_types::CheckCode::parse("abc123").unwrap(),
                status: BillStatus::Issued,
                history: vec![entry(
                    TxKind::IssueBill,
                    issuer(i),
                    number,
                    time_ms,
                    tx("issue", number),
                )],
            },
            facts: BillFacts {
                kind: BillKind::MedicalOutpatient,
                total: Fen(1000),
                issued_at,
            },
        }
    }
    fn lock(b: &mut AuditBill, height: u64, time_ms: u64) -> TxId {
        let t = tx("lock", number_of(&b.record.id) * 1000 + height);
        b.record
            .history
            .push(entry(TxKind::Lock, reimburser(), height, time_ms, t));
        b.record.status = BillStatus::Locked {
            by: reimburser(),
            height,
        };
        t
    }
    fn unlock(b: &mut AuditBill, height: u64, time_ms: u64) {
        let t = tx("unlock", number_of(&b.record.id) * 1000 + height);
        b.record
            .history
            .push(entry(TxKind::Unlock, reimburser(), height, time_ms, t));
        b.record.status = BillStatus::Issued;
    }
    fn reverse(b: &mut AuditBill, height: u64, time_ms: u64) -> TxId {
        let t = tx("reverse", number_of(&b.record.id) * 1000 + height);
        let by = b.record.issuer;
        b.record
            .history
            .push(entry(TxKind::RedReverse, by, height, time_ms, t));
        b.record.status = BillStatus::Reversed { height };
        t
    }
    fn refused(bill: BillId, n: u64, time_ms: u64) -> RefusedTx {
        RefusedTx {
            time_ms,
            tx_id: tx("refused", n),
            kind: TxKind::ConfirmReimbursed,
            bill: Some(bill),
            unit: Some(reimburser()),
            code: "wrong_check_code".to_owned(),
            message: String::new(),
        }
    }
    fn rule_ids(hits: &[Hit]) -> Vec<(&str, Option<BillId>)> {
        hits.iter().map(|h| (h.rule.as_str(), h.bill)).collect()
    }

    #[test]
    fn every_rule_is_listed_once_with_a_version() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        assert!(RULES.iter().all(|r| r.version >= 1));
    }

    #[test]
    fn plants_locked_too_long() {
        let cfg = RuleConfig::default();
        let mut old = bill(0, 1, T0, "10:00");
        let lock_tx = lock(&mut old, 2, T0 + 1000);
        let mut recent = bill(0, 2, T0, "10:00");
        lock(&mut recent, 3, T0 + 20 * DAY_MS);
        let now = T0 + 1000 + 31 * DAY_MS;
        let hits = locked_too_long(&[old.clone(), recent], now, &cfg);
        assert_eq!(
            rule_ids(&hits),
            vec![("locked_too_long", Some(old.record.id))]
        );
        assert_eq!(hits[0].evidence, vec![lock_tx]);
        assert_eq!(hits[0].version, 1);
        // Exactly N days is not more than N.
        assert!(locked_too_long(&[old], T0 + 1000 + 30 * DAY_MS, &cfg).is_empty());
    }

    #[test]
    fn plants_reversal_after_lock_or_refused_attempt() {
        let mut locked_first = bill(0, 1, T0, "10:00");
        let l = lock(&mut locked_first, 2, T0 + 1);
        unlock(&mut locked_first, 3, T0 + 2);
        let r = reverse(&mut locked_first, 4, T0 + 3);
        let mut tried_first = bill(0, 2, T0, "10:00");
        let r2 = reverse(&mut tried_first, 5, T0 + 10);
        let attempt = refused(tried_first.record.id, 7, T0 + 5);
        let late_attempt = refused(tried_first.record.id, 8, T0 + 11);
        let mut plain = bill(0, 3, T0, "10:00");
        reverse(&mut plain, 4, T0 + 3);
        let hits = reversal_after_lock(
            &[locked_first.clone(), tried_first.clone(), plain],
            &[attempt.clone(), late_attempt],
        );
        assert_eq!(
            rule_ids(&hits),
            vec![
                ("reversal_after_lock", Some(locked_first.record.id)),
                ("reversal_after_lock", Some(tried_first.record.id)),
            ]
        );
        assert_eq!(hits[0].evidence, vec![l, r]);
        assert_eq!(
            hits[1].evidence,
            vec![attempt.tx_id, r2],
            "the later attempt is no evidence"
        );
    }

    #[test]
    fn plants_reversal_rate() {
        let cfg = RuleConfig {
            reversal_rate_max_permille: 100,
            reversal_rate_min_bills: 10,
            ..RuleConfig::default()
        };
        let mut bills = Vec::new();
        // Issuer 0: 3 of 10 reversed (300 per mille). Issuer 1: 1 of 10 (100: not more).
        for n in 0..10 {
            let mut b = bill(0, n, T0, "10:00");
            if n < 3 {
                reverse(&mut b, 9, T0 + 1);
            }
            bills.push(b);
            let mut b = bill(1, 100 + n, T0, "10:00");
            if n < 1 {
                reverse(&mut b, 9, T0 + 1);
            }
            bills.push(b);
        }
        let hits = reversal_rate(&bills, &cfg);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].issuer, Some(issuer(0)));
        assert_eq!(hits[0].evidence_count, 3);
        // Too few bills: no rate.
        let few = RuleConfig {
            reversal_rate_min_bills: 11,
            ..cfg
        };
        assert!(reversal_rate(&bills, &few).is_empty());
    }

    #[test]
    fn plants_numbering_gap_and_burst() {
        let cfg = RuleConfig {
            numbering_max_gap: 10,
            burst_max_bills: 5,
            burst_window_s: 60,
            ..RuleConfig::default()
        };
        // Issuer 0: 1..=5 then 100 (94 skipped); issuer 1: 200..=210, no gap over 10.
        let mut bills: Vec<AuditBill> = (1..=5)
            .map(|n| bill(0, n, T0 + n * 120_000, "10:00"))
            .collect();
        bills.push(bill(0, 100, T0 + 10 * 120_000, "10:00"));
        let gaps = numbering_gap(&bills, &cfg);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].bill, Some(id("11010126", 100)));
        assert_eq!(gaps[0].evidence, vec![tx("issue", 5), tx("issue", 100)]);
        assert!(
            numbering_burst(&bills, &cfg).is_empty(),
            "two minutes apart: no burst"
        );
        // Issuer 1: 6 bills in 10 seconds.
        let burst: Vec<AuditBill> = (200..206)
            .map(|n| bill(1, n, T0 + (n - 200) * 2_000, "10:00"))
            .collect();
        let hits = numbering_burst(&burst, &cfg);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].issuer, Some(issuer(1)));
        assert_eq!(hits[0].evidence_count, 6);
        assert!(numbering_gap(&burst, &cfg).is_empty());
    }

    #[test]
    fn plants_outside_hours() {
        let mut cfg = RuleConfig::default();
        cfg.declared_hours
            .insert(issuer(0), Hours::parse("08:00-18:00").unwrap());
        let night = bill(0, 1, T0, "23:30");
        let day = bill(0, 2, T0, "09:15");
        let undeclared = bill(1, 3, T0, "03:00");
        let hits = outside_hours(&[night.clone(), day, undeclared.clone()], &cfg);
        assert_eq!(
            rule_ids(&hits),
            vec![("outside_hours", Some(night.record.id))]
        );
        assert!(hits[0].detail.contains("23:30"));
        cfg.default_hours = Some(Hours::parse("22:00-06:00").unwrap());
        let hits = outside_hours(&[undeclared], &cfg);
        assert!(hits.is_empty(), "03:00 is inside an overnight window");
        assert!(Hours::parse("8-18").is_err());
        assert!(Hours::parse("08:00-25:00").is_err());
    }

    #[test]
    fn plants_repeated_refused_reimbursement() {
        let cfg = RuleConfig::default();
        let target = id("11010126", 9);
        let other = id("11010126", 10);
        let log: Vec<RefusedTx> = vec![
            refused(target, 1, T0),
            refused(other, 2, T0),
            refused(target, 3, T0 + 1),
            refused(target, 4, T0 + 2),
            refused(other, 5, T0 + 3),
        ];
        let hits = repeated_refused_reimbursement(&log, &cfg);
        assert_eq!(
            rule_ids(&hits),
            vec![("repeated_refused_reimbursement", Some(target))]
        );
        assert_eq!(
            hits[0].evidence,
            vec![tx("refused", 1), tx("refused", 3), tx("refused", 4)]
        );
        // run() filters by rule id.
        let all = run(&[], &log, T0, &cfg, Some("repeated_refused_reimbursement"));
        assert_eq!(all, hits);
        assert!(run(&[], &log, T0, &cfg, Some("locked_too_long")).is_empty());
    }
}
