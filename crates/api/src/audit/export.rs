//! `GET /admin/v1/export?table=bills|events|units&format=csv&from_height=&to_height=`:
//! one table of the chain between two heights (both inclusive) as CSV, with a fixed
//! column schema per table ([`SCHEMA_VERSION`]; the columns are [`BILLS_COLUMNS`],
//! [`EVENTS_COLUMNS`] and [`UNITS_COLUMNS`], documented in docs/spec/export.md).
//!
//! Rows come from the committed blocks themselves, so two honest nodes give the same
//! bytes for the same range: the answer is bounded by [`MAX_EXPORT_HEIGHTS`] heights and
//! [`MAX_EXPORT_ROWS`] rows (422 `range_too_large` beyond either), and the response
//! headers `x-ebill-schema-version`, `x-ebill-rows`, `x-ebill-to-height` and
//! `x-ebill-block-hash` (the block at `to_height`, the checkpoint) say what it holds.
//! Money is integer fen; every time is given twice, unix ms and RFC 3339 (block times
//! in China Standard Time, +08:00; a bill's `issued_at` in the offset its issuer gave).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use ebill_ledger::UnitRole;
use ebill_store::Store;
use ebill_types::{Hash32, SignedTx, Timestamp, TxBody};
use serde::Deserialize;

use super::AdminState;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::routes::blocking;

/// The version of the column schemas below; a change of any column is a new version.
pub const SCHEMA_VERSION: u32 = 1;
/// Most heights one export covers.
pub const MAX_EXPORT_HEIGHTS: u64 = 10_000;
/// Most rows one export holds.
pub const MAX_EXPORT_ROWS: u64 = 1_000_000;

/// Columns of `bills`: one row per bill issued in the range.
pub const BILLS_COLUMNS: &[&str] = &[
    "height",
    "block_time_ms",
    "block_time",
    "tx_id",
    "code",
    "number",
    "kind",
    "issuer",
    "issued_at_ms",
    "issued_at",
    "total_fen",
    "currency",
    "payer_type",
    "payer_name",
    "payer_id",
    "item_count",
    "related_code",
    "related_number",
];
/// Columns of `events`: one row per bill transaction (issue, red reversal, paper
/// exchange, lock, unlock, reimbursement) in the range.
pub const EVENTS_COLUMNS: &[&str] = &[
    "height",
    "block_time_ms",
    "block_time",
    "tx_index",
    "tx_id",
    "kind",
    "code",
    "number",
    "unit",
    "reason",
];
/// Columns of `units`: one row per registry event of a unit (registration, key
/// rotation, revocation, whether by a direct transaction or an executed proposal) in the
/// range, ordered by height then transaction id, with the unit's name and role as they
/// stand at the tip.
pub const UNITS_COLUMNS: &[&str] = &[
    "height",
    "block_time_ms",
    "block_time",
    "tx_id",
    "kind",
    "credit_code",
    "name",
    "role",
    "revoked_at_height",
];

/// Stable error codes of the export.
pub mod codes {
    /// `table` is not bills, events or units.
    pub const INVALID_TABLE: &str = "invalid_table";
    /// `format` is not csv.
    pub const INVALID_FORMAT: &str = "invalid_format";
    /// A height is not a whole number, or `from_height` is above `to_height`.
    pub const INVALID_HEIGHT: &str = "invalid_height";
    /// `to_height` is above the tip.
    pub const HEIGHT_BEYOND_TIP: &str = "height_beyond_tip";
    /// The node was started without a key to sign manifests with.
    pub const NO_SIGNING_KEY: &str = "no_signing_key";
}

/// A table of the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Bills issued.
    Bills,
    /// Bill transactions.
    Events,
    /// Registry transactions.
    Units,
}

impl Table {
    /// Every table, in the order of the manifest.
    pub const ALL: [Table; 3] = [Table::Bills, Table::Events, Table::Units];

    /// Its name in `table=` and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Bills => "bills",
            Table::Events => "events",
            Table::Units => "units",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Its columns.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Bills => BILLS_COLUMNS,
            Table::Events => EVENTS_COLUMNS,
            Table::Units => UNITS_COLUMNS,
        }
    }
}

/// `export?...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    table: Option<String>,
    format: Option<String>,
    from_height: Option<String>,
    to_height: Option<String>,
}

/// One finished export.
#[derive(Clone, Debug)]
pub struct Export {
    /// The CSV bytes, header row first.
    pub csv: Vec<u8>,
    /// Rows, not counting the header.
    pub rows: u64,
    /// First height.
    pub from_height: u64,
    /// Last height.
    pub to_height: u64,
    /// Hash of the block at `to_height`.
    pub block_hash: Hash32,
}

fn height(name: &str, v: &Option<String>) -> Result<Option<u64>, ApiError> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(codes::INVALID_HEIGHT, format!("{name}: {s:?}"))),
        Some(s) => Err(ApiError::bad_request(
            codes::INVALID_HEIGHT,
            format!("{name}: {s:?} is not a height"),
        )),
    }
}

/// `GET /admin/v1/export`.
pub(crate) async fn export(
    State(st): State<AdminState>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult {
    let table_name = q.table.as_deref().unwrap_or("");
    let Some(table) = Table::parse(table_name) else {
        return Err(ApiError::bad_request(
            codes::INVALID_TABLE,
            format!("table: {table_name:?} is not one of bills, events, units"),
        ));
    };
    let format = q
        .format
        .as_deref()
        .filter(|f| !f.is_empty())
        .unwrap_or("csv");
    if format != "csv" {
        return Err(ApiError::bad_request(
            codes::INVALID_FORMAT,
            format!("format: {format:?} is not csv"),
        ));
    }
    let from = height("from_height", &q.from_height)?;
    let to = height("to_height", &q.to_height)?;
    let backend = st.backend.clone();
    let out = blocking(move || export_table(backend.store().as_ref(), table, from, to)).await?;
    let mut resp = (StatusCode::OK, out.csv).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert("x-ebill-schema-version", HeaderValue::from(SCHEMA_VERSION));
    h.insert("x-ebill-rows", HeaderValue::from(out.rows));
    h.insert("x-ebill-from-height", HeaderValue::from(out.from_height));
    h.insert("x-ebill-to-height", HeaderValue::from(out.to_height));
    if let Ok(v) = HeaderValue::from_str(&out.block_hash.to_hex()) {
        h.insert("x-ebill-block-hash", v);
    }
    Ok(resp)
}

fn store_err(e: ebill_store::StoreError) -> ApiError {
    ApiError::internal("reading blocks for an export", &e)
}

fn rfc3339(unix_ms: i64) -> String {
    Timestamp {
        unix_ms,
        offset_min: super::params::CHINA_OFFSET_MIN,
    }
    .to_rfc3339()
    .unwrap_or_default()
}

fn too_large(what: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        super::params::codes::RANGE_TOO_LARGE,
        what,
    )
}

/// Exports `table` from `from` (default 1) to `to` (default the tip), both inclusive.
pub fn export_table(
    store: &dyn Store,
    table: Table,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<Export, ApiError> {
    let tip = store.tip().map_err(store_err)?.map_or(0, |t| t.height);
    let to_height = to.unwrap_or(tip);
    let from_height = from.unwrap_or(1).max(1);
    if from_height > to_height {
        return Err(ApiError::bad_request(
            codes::INVALID_HEIGHT,
            format!("from_height {from_height} is above to_height {to_height}"),
        ));
    }
    if to_height - from_height >= MAX_EXPORT_HEIGHTS {
        return Err(too_large(format!(
            "more than {MAX_EXPORT_HEIGHTS} heights: export {from_height}..={to_height} in parts"
        )));
    }
    if to_height > tip {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::HEIGHT_BEYOND_TIP,
            format!("to_height {to_height} is above the tip {tip}"),
        ));
    }
    let header = store
        .header(to_height)
        .map_err(store_err)?
        .ok_or_else(|| ApiError::internal("an export", &format!("no block {to_height}")))?;
    let block_hash = header.hash();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let csv_err = |e: csv::Error| ApiError::internal("writing CSV", &e);
    w.write_record(table.columns()).map_err(csv_err)?;
    let mut rows: u64 = 0;
    if table == Table::Units {
        let mut events = Vec::new();
        for u in store.units().map_err(store_err)? {
            for e in &u.events {
                if (from_height..=to_height).contains(&e.height) {
                    let role = match u.role {
                        UnitRole::Issuer { .. } => "issuer",
                        UnitRole::Reimburser => "reimburser",
                    };
                    events.push((
                        e.height,
                        e.tx_id,
                        vec![
                            e.tx_id.to_hex(),
                            e.action.as_str().to_owned(),
                            u.credit_code.as_str().to_owned(),
                            u.name.clone(),
                            role.to_owned(),
                            u.revoked_at.map(|h| h.to_string()).unwrap_or_default(),
                        ],
                    ));
                }
            }
        }
        events.sort_by_key(|e| (e.0, e.1));
        let mut time_of = std::collections::BTreeMap::new();
        for (h, _, rest) in events {
            rows += 1;
            if rows > MAX_EXPORT_ROWS {
                return Err(too_large(format!(
                    "more than {MAX_EXPORT_ROWS} rows: export {from_height}..={to_height} in parts"
                )));
            }
            let time_ms = match time_of.get(&h) {
                Some(t) => *t,
                None => {
                    let t = store
                        .header(h)
                        .map_err(store_err)?
                        .ok_or_else(|| ApiError::internal("an export", &format!("no block {h}")))?
                        .time_ms;
                    time_of.insert(h, t);
                    t
                }
            };
            let mut rec = vec![
                h.to_string(),
                time_ms.to_string(),
                rfc3339(i64::try_from(time_ms).unwrap_or(i64::MAX)),
            ];
            rec.extend(rest);
            w.write_record(&rec).map_err(csv_err)?;
        }
    }
    let block_heights = from_height..=to_height;
    for h in block_heights.filter(|_| table != Table::Units) {
        let block = store
            .block(h)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::internal("an export", &format!("no block {h}")))?;
        let chain_id = block.header.chain_id.as_str();
        let time_ms = block.header.time_ms;
        let time = rfc3339(i64::try_from(time_ms).unwrap_or(i64::MAX));
        for (index, stx) in block.txs.iter().enumerate() {
            let row = match table {
                Table::Bills => bill_row(stx, chain_id),
                Table::Events => event_row(stx, chain_id, index),
                Table::Units => None,
            };
            let Some(rest) = row else { continue };
            rows += 1;
            if rows > MAX_EXPORT_ROWS {
                return Err(too_large(format!(
                    "more than {MAX_EXPORT_ROWS} rows: export {from_height}..={to_height} in parts"
                )));
            }
            let mut rec = vec![h.to_string(), time_ms.to_string(), time.clone()];
            rec.extend(rest);
            w.write_record(&rec).map_err(csv_err)?;
        }
    }
    let csv = w
        .into_inner()
        .map_err(|e| ApiError::internal("writing CSV", &e))?;
    Ok(Export {
        csv,
        rows,
        from_height,
        to_height,
        block_hash,
    })
}

fn bill_row(stx: &SignedTx, chain_id: &str) -> Option<Vec<String>> {
    let TxBody::IssueBill(b) = &stx.tx.body else {
        return None;
    };
    let (related_code, related_number) = b.related.as_ref().map_or_else(
        || (String::new(), String::new()),
        |r| (r.code.as_str().to_owned(), r.number.as_str().to_owned()),
    );
    Some(vec![
        stx.tx.id(chain_id).to_hex(),
        b.code.as_str().to_owned(),
        b.number.as_str().to_owned(),
        b.kind.as_str().to_owned(),
        b.issuer.as_str().to_owned(),
        b.issued_at.unix_ms.to_string(),
        b.issued_at.to_rfc3339().unwrap_or_default(),
        b.total.0.to_string(),
        "CNY".to_owned(),
        b.payer.payer_type.as_str().to_owned(),
        b.payer.name.clone(),
        b.payer.id.clone(),
        b.items.len().to_string(),
        related_code,
        related_number,
    ])
}

fn event_row(stx: &SignedTx, chain_id: &str, index: usize) -> Option<Vec<String>> {
    let body = &stx.tx.body;
    let bill = body.bill_id()?;
    let unit = match body.actor() {
        ebill_types::tx::Actor::Unit(u) => u.as_str().to_owned(),
        _ => String::new(),
    };
    let reason = match body {
        TxBody::RedReverse { reason, .. } => reason.clone(),
        _ => String::new(),
    };
    Some(vec![
        index.to_string(),
        stx.tx.id(chain_id).to_hex(),
        body.kind().as_str().to_owned(),
        bill.code.as_str().to_owned(),
        bill.number.as_str().to_owned(),
        unit,
        reason,
    ])
}

/// `export/manifest?...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestQuery {
    from_height: Option<String>,
    to_height: Option<String>,
}

/// `GET /admin/v1/export/manifest?from_height=&to_height=`: exports every table over the
/// range (the same bytes `export` answers), and signs a manifest of their row counts and
/// SHA-256 with the node's key (docs/spec/export.md).
pub(crate) async fn manifest(
    State(st): State<AdminState>,
    ApiQuery(q): ApiQuery<ManifestQuery>,
) -> ApiResult {
    let Some(key) = st.signer.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::NO_SIGNING_KEY,
            "this node has no key to sign an export manifest with",
        ));
    };
    let from = height("from_height", &q.from_height)?;
    let to = height("to_height", &q.to_height)?;
    let backend = st.backend.clone();
    let m = blocking(move || {
        let store = backend.store();
        let mut files = Vec::new();
        let mut last = None;
        for table in Table::ALL {
            // Pin the range to the first table's, so a block committed meanwhile
            // does not split the files.
            let (f, t) = last.map_or((from, to), |(f, t)| (Some(f), Some(t)));
            let out = export_table(store.as_ref(), table, f, t)?;
            last = Some((out.from_height, out.to_height));
            files.push((table, out));
        }
        let first = files.first().map(|(_, o)| o.clone());
        let Some(first) = first else {
            return Err(ApiError::internal("an export", &"no tables"));
        };
        let body = ebill_types::export::ManifestBody {
            chain_id: backend.genesis().chain_id.clone(),
            genesis_hash: backend.genesis().hash(),
            from_height: first.from_height,
            to_height: first.to_height,
            block_hash: first.block_hash,
            files: files
                .iter()
                .map(|(t, o)| ebill_types::export::ExportFile {
                    table: t.as_str().to_owned(),
                    schema_version: SCHEMA_VERSION,
                    rows: o.rows,
                    sha256: Hash32::digest(&o.csv),
                })
                .collect(),
        };
        Ok(body.sign(&key))
    })
    .await?;
    Ok(crate::error::json(StatusCode::OK, &m))
}
