//! The audit API for regulators, on the operator's listener only
//! ([`crate::admin_router`], never the public router): search the bills, count them,
//! run the open anomaly rules, and watch a credit code's new bills as they become final.
//!
//! - `GET /admin/v1/bills?issuer=&reimburser=&kind=&status=&from=&to=&min_total=&max_total=&cursor=&limit=`
//! - `GET /admin/v1/bills/{code}/{number}`: the bill as issued (payer unmasked) and its
//!   whole history
//! - `GET /admin/v1/stats?group_by=issuer|kind|day|month&from=&to=`
//! - `GET /admin/v1/anomalies?rule=&from=&to=` and `GET /admin/v1/rules`
//! - `GET /admin/v1/export?table=bills|events|units&format=csv|parquet|xlsx&from_height=&to_height=`:
//!   a table between two heights as CSV, Parquet or xlsx, streamed ([`export`],
//!   [`format`], [`streamed`])
//! - `GET /admin/v1/stream?issuer=CODE`: server-sent events, one `bill` event per bill
//!   issued under the code, as its block becomes final
//!
//! Amounts are integer fen; times are RFC 3339 or `YYYY-MM-DD` (midnight in China);
//! `from` is inclusive and `to` exclusive, on the block time of a bill's issue.

pub mod export;
pub mod format;
pub mod params;
pub mod query;
pub mod rules;
pub mod stream;
pub mod streamed;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::backend::Backend;
use crate::error::{ApiError, ApiResult, json};
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::bills::parse_bill_id;
use crate::routes::blocking;
use params::{Window, codes};
use query::{BillFilter, DEFAULT_PAGE_BILLS, GroupBy, MAX_PAGE_BILLS};

/// Route templates of the audit API, exactly as registered.
pub mod paths {
    /// Search bills.
    pub const BILLS: &str = "/admin/v1/bills";
    /// One bill in full.
    pub const BILL: &str = "/admin/v1/bills/{code}/{number}";
    /// Statistics.
    pub const STATS: &str = "/admin/v1/stats";
    /// Hits of the anomaly rules.
    pub const ANOMALIES: &str = "/admin/v1/anomalies";
    /// The rules and their thresholds.
    pub const RULES: &str = "/admin/v1/rules";
    /// A table as CSV, Parquet or xlsx.
    pub const EXPORT: &str = "/admin/v1/export";
    /// The signed manifest of every table over a range.
    pub const EXPORT_MANIFEST: &str = "/admin/v1/export/manifest";
    /// New bills of one issuer, as server-sent events.
    pub const STREAM: &str = "/admin/v1/stream";
}

/// Settings of the audit API (node config `[audit]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditConfig {
    /// The anomaly rules' thresholds.
    pub rules: rules::RuleConfig,
}

/// State of the operator's routes.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) audit: Arc<AuditConfig>,
    /// The node's key, which signs export manifests; `None` where no key is given.
    pub(crate) signer: Option<Arc<ebill_types::Keypair>>,
    /// Places for exports being written ([`export::MAX_CONCURRENT_EXPORTS`]).
    pub(crate) exports: Arc<tokio::sync::Semaphore>,
}

/// `bills?...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillsQuery {
    issuer: Option<String>,
    reimburser: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    min_total: Option<String>,
    max_total: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// `GET /admin/v1/bills`.
pub(crate) async fn bills(
    State(st): State<AdminState>,
    ApiQuery(q): ApiQuery<BillsQuery>,
) -> ApiResult {
    let window = if q.from.is_some() || q.to.is_some() {
        Some(Window::parse(&q.from, &q.to)?)
    } else {
        None
    };
    let filter = BillFilter {
        issuer: params::credit_code("issuer", &q.issuer)?,
        reimburser: params::credit_code("reimburser", &q.reimburser)?,
        kind: params::kind(&q.kind)?,
        status: params::status(&q.status)?,
        window,
        min_total: params::fen("min_total", &q.min_total)?,
        max_total: params::fen("max_total", &q.max_total)?,
    };
    let limit = params::bounded(
        "limit",
        codes::INVALID_LIMIT,
        &q.limit,
        DEFAULT_PAGE_BILLS,
        MAX_PAGE_BILLS,
    )?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let backend = st.backend.clone();
    let page = blocking(move || {
        query::list_bills(backend.store().as_ref(), &filter, cursor.as_deref(), limit)
    })
    .await?;
    Ok(json(StatusCode::OK, &page))
}

/// No query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

/// `GET /admin/v1/bills/{code}/{number}`.
pub(crate) async fn bill(
    State(st): State<AdminState>,
    ApiPath((code, number)): ApiPath<(String, String)>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult {
    let id = parse_bill_id(&code, &number)?;
    let backend = st.backend.clone();
    let detail = blocking(move || query::bill_detail(backend.store().as_ref(), &id)).await?;
    match detail {
        Some(d) => Ok(json(StatusCode::OK, &d)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            crate::error::codes::BILL_NOT_FOUND,
            format!("no bill {id}"),
        )),
    }
}

/// `stats?...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    group_by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /admin/v1/stats`.
pub(crate) async fn stats(
    State(st): State<AdminState>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult {
    let by = GroupBy::parse(&q.group_by)?;
    let window = Window::parse(&q.from, &q.to)?;
    let backend = st.backend.clone();
    let report = blocking(move || query::stats(backend.store().as_ref(), by, window)).await?;
    Ok(json(StatusCode::OK, &report))
}

/// `anomalies?...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomaliesQuery {
    rule: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /admin/v1/anomalies`.
pub(crate) async fn anomalies(
    State(st): State<AdminState>,
    ApiQuery(q): ApiQuery<AnomaliesQuery>,
) -> ApiResult {
    let window = Window::parse(&q.from, &q.to)?;
    let only = q.rule.filter(|r| !r.is_empty());
    if let Some(r) = &only
        && !rules::RULES.iter().any(|i| i.id == r)
    {
        let ids: Vec<&str> = rules::RULES.iter().map(|r| r.id).collect();
        return Err(ApiError::bad_request(
            codes::INVALID_RULE,
            format!("rule: {r:?} is not one of {}", ids.join(", ")),
        ));
    }
    let backend = st.backend.clone();
    let cfg = st.audit.clone();
    let rule_filter = only.clone();
    let (input, hits) = blocking(move || {
        let input = query::rule_input(backend.store().as_ref(), window)?;
        let hits = rules::run(
            &input.bills,
            &input.refused,
            input.now_ms,
            &cfg.rules,
            rule_filter.as_deref(),
        );
        Ok((input, hits))
    })
    .await?;
    let report = ebill_api_types::audit::AnomaliesReport {
        height: input.height,
        now_ms: input.now_ms,
        from_ms: window.from_ms,
        to_ms: window.to_ms,
        rules: rules::RULES
            .iter()
            .filter(|r| only.as_deref().is_none_or(|o| o == r.id))
            .map(|r| ebill_api_types::audit::RuleView {
                id: r.id.to_owned(),
                version: r.version,
                description: r.description.to_owned(),
            })
            .collect(),
        hits,
    };
    Ok(json(StatusCode::OK, &report))
}

/// `GET /admin/v1/rules`: every rule with its version, and the thresholds in force.
pub(crate) async fn rule_list(
    State(st): State<AdminState>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult {
    let c = &st.audit.rules;
    let hours: std::collections::BTreeMap<&str, String> = c
        .declared_hours
        .iter()
        .map(|(code, h)| (code.as_str(), hours_text(h)))
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "rules": rules::RULES,
            "config": {
                "locked_max_days": c.locked_max_days,
                "reversal_rate_max_permille": c.reversal_rate_max_permille,
                "reversal_rate_min_bills": c.reversal_rate_min_bills,
                "numbering_max_gap": c.numbering_max_gap,
                "burst_max_bills": c.burst_max_bills,
                "burst_window_s": c.burst_window_s,
                "refused_max_attempts": c.refused_max_attempts,
                "default_hours": c.default_hours.as_ref().map(hours_text),
                "declared_hours": hours,
            }
        }),
    ))
}

fn hours_text(h: &rules::Hours) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        h.start_min / 60,
        h.start_min % 60,
        h.end_min / 60,
        h.end_min % 60
    )
}
